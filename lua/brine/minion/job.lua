-- Runs one job's function inside a forked worker and shapes the result as
-- Salt's return (return, retcode, success). Functions are found by the
-- module loader (brine.loader) over the minion's options, with grains and
-- pillar computed on first use, exactly as `brine call` finds them.
local data = require("brine.data")
local loader = require("brine.loader")

local M = {}

-- Python's truth of a value.
local function truthy(v)
  if v == false or v == data.null or v == 0 or v == "" then
    return false
  elseif type(v) == "table" then
    return next(v) ~= nil
  end
  return true
end

-- Salt's rule: a mapping whose `result` or `success` is false is a failure.
local function is_failure(value)
  if data.kind(value) ~= "map" then
    return false
  end
  for _, key in ipairs({ "result", "success" }) do
    if value[key] ~= nil and not truthy(value[key]) then
      return true
    end
  end
  return false
end

-- Calls the job's function; returns ok, value, retcode.
local function call(job, opts)
  local ld = loader.new(opts, loader.environment(opts))
  local entry = ld:entry(job.fun)
  if not entry then
    return false, ld:missing_fun_string(job.fun), 254
  end
  local kwarg = job.kwarg
  if entry.kwargs then
    kwarg.__pub_fun, kwarg.__pub_jid = job.fun, job.jid
    kwarg.__pub_tgt, kwarg.__pub_pid = job.tgt, loader.pid()
  end
  local ok, value, message = xpcall(ld.call, debug.traceback, ld, job.fun, job.arg, kwarg)
  if not ok then
    if loader.is_error(value) then
      return false, "Passed invalid arguments: " .. value.message, 1
    end
    return false, "An exception occurred in this function: " .. tostring(value), 1
  end
  if value == nil and type(message) == "string" then
    return false, message, 1
  end
  local retcode = math.tointeger(ld.context.retcode) or 0
  if retcode == 0 and is_failure(value) then
    retcode = 1
  end
  return true, value == nil and data.null or value, retcode
end

--- Runs a job message and returns the `_return` message for it.
---@param job table the job: jid, fun, arg, kwarg, tgt
---@param id string this minion's id
---@param opts table the minion's options
---@return table the `_return` message
function M.run(job, id, opts)
  job.arg = data.kind(job.arg) == "array" and job.arg or data.array()
  job.kwarg = data.kind(job.kwarg) == "map" and job.kwarg or data.map()
  local ok, value, retcode = call(job, opts)
  return data.map({ { "cmd", "_return" }, { "id", id }, { "jid", job.jid },
    { "fun", job.fun }, { "return", value }, { "retcode", retcode },
    { "success", ok and retcode == 0 } })
end

return M
