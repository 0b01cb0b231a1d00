-- The jobs runner, as Salt's: reads the master's job cache
-- (brine.master.jobs) and asks the master which jobs are still running.
-- `context.master()` is the local client to the master (brine run sets it).
-- luacheck: globals opts context
local data = require("brine.data")
local posix = require("brine.posix")
local jobs = require("brine.master.jobs")

local M = {}

local null = data.null

M.__defaults__ = {
  list_jobs = { search_function = null, search_target = null },
  lookup_jid = { missing = true },
}

-- Salt's summary of a job: what ran, where, when.
local function summary(load)
  return data.map({ { "Function", load.fun }, { "Arguments", load.arg or data.array() },
    { "Target", load.tgt }, { "Target-type", load.tgt_type },
    { "User", load.user or "root" }, { "StartTime", jobs.jid_to_time(load.jid) } })
end

-- An optional argument that was given (not nil, not None).
local function given(v)
  return v ~= nil and v ~= null
end

local function matches_target(tgt, pattern)
  if type(tgt) == "table" then
    for _, t in ipairs(tgt) do
      if posix.fnmatch(pattern, tostring(t)) then
        return true
      end
    end
    return false
  end
  return posix.fnmatch(pattern, tostring(tgt))
end

--- Lists the jobs in the master's job cache, oldest first, optionally
--- only those whose function or target matches a glob.
function M.list_jobs(search_function, search_target)
  local cache = jobs.open(opts)
  local out = data.map()
  for _, jid in ipairs(cache:jids()) do
    local load = cache:load(jid)
    if load and (not given(search_function) or posix.fnmatch(search_function, load.fun))
        and (not given(search_target) or matches_target(load.tgt, search_target)) then
      out[jid] = summary(load)
    end
  end
  return out
end

--- The returns of a job by minion. With missing (the default, unlike
--- Salt: on an intermittent fleet the minions that still owe a return are
--- the question), the minions that have not returned are listed too, and
--- whether the master still holds the job for them.
function M.lookup_jid(jid, missing)
  local cache = jobs.open(opts)
  local load = cache:load(tostring(jid))
  if not load then
    return data.map()
  end
  local returns = cache:returns(load.jid)
  local out = data.map()
  for id, ret in pairs(returns) do
    out[id] = ret["return"]
  end
  if missing then
    for _, id in ipairs(cache:owed(load.jid, load, returns)) do
      out[id] = cache:held(load.jid, id)
        and "Minion did not return yet. [Job held until it reconnects]"
        or "Minion did not return. [No response]"
    end
  end
  return out
end

--- A job's summary, the minions it targeted and their results.
function M.print_job(jid)
  local cache = jobs.open(opts)
  local load = cache:load(tostring(jid))
  if not load then
    return data.map()
  end
  local job = summary(load)
  job.Minions = load.minions
  local result = data.map()
  for id, ret in pairs(cache:returns(load.jid)) do
    result[id] = data.map({ { "return", ret["return"] }, { "retcode", ret.retcode },
      { "success", ret.success } })
  end
  job.Result = result
  return data.map({ { load.jid, job } })
end

--- The jobs the master is still waiting on: each with the minions that
--- returned and those still running it (or holding it, when away).
function M.active()
  local status = assert(context.master():request({ cmd = "status" }))
  local cache = jobs.open(opts)
  local out = data.map()
  for _, jid in ipairs(status.active) do
    local load = cache:load(jid)
    if load then
      local returns = cache:returns(jid)
      local job = summary(load)
      job.Returned = data.array(data.keys(returns))
      job.Running = cache:owed(jid, load, returns)
      out[jid] = job
    end
  end
  return out
end

return M
