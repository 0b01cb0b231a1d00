-- The saltutil execution module, as Salt's: grains, pillar and the jobs
-- running on this minion.
-- running, find_job, signal_job, term_job, kill_job, term_all_jobs and
-- kill_all_jobs read the records the minion daemon keeps of its running
-- jobs (cachedir/proc/JID, msgpack: jid, fun, arg, tgt, tgt_type, user,
-- pid) and signal their workers.
-- refresh_grains computes this minion's grains again (core, custom grain
-- modules, the static grains file, the `grains:` option) into the table
-- every module of the call shares; sync_grains copies the custom grain
-- modules from the `_grains` folders of the file roots into
-- <extension_modules>/grains, where the grains loader finds them.
-- luacheck: globals grains opts __loader__
local data = require("brine.data")
local fs = require("brine.fs")
local minion_grains = require("brine.grains.minion")
local posix = require("brine.posix")

local M = {}

local null = data.null

M.__defaults__ = {
  refresh_pillar = { wait = false, timeout = 30, clean_cache = true },
  sync_grains = { saltenv = null, refresh = true, extmod_whitelist = null,
    extmod_blacklist = null, clean_pillar_cache = false },
}

-- Salt's clean_kwargs: the __pub_* keys a job adds are not arguments.
local function reject_kwargs(kwargs, allowed)
  local invalid = {}
  for k, v in pairs(kwargs) do
    if not allowed[k] and not tostring(k):match("^__") then
      invalid[#invalid + 1] = tostring(k) .. "=" .. require("outputters.raw").str(v)
    end
  end
  if #invalid > 0 then
    table.sort(invalid)
    error(require("brine.loader").error("invalid_kwargs",
      "The following keyword arguments are not valid: " .. table.concat(invalid, ", ")), 0)
  end
end

--- Computes the grains again, so that the rest of this call (and modules
--- holding `grains`) see changed custom grain modules, static grains and
--- configuration; then, unless refresh_pillar=False, the pillar too (as
--- saltutil.refresh_pillar does), since it may target by grains.
--- clean_pillar_cache is accepted for Salt's signature. Returns true.
function M.refresh_grains(kwargs)
  reject_kwargs(kwargs, { refresh_pillar = true, clean_pillar_cache = true })
  minion_grains.refresh(opts, grains)
  if kwargs.refresh_pillar ~= false then
    M.refresh_pillar()
  end
  return true
end

-- The minion daemon's pillar file (written when the master's answer
-- arrives) and its modification time, or nil.
local function pillar_file()
  local path = tostring(opts.cachedir) .. "/pillar"
  local st = posix.stat(path)
  return path, st and st.mtime
end

-- Waits up to timeout seconds for the minion daemon to receive a new
-- pillar (its file changes), then makes this call see it. True when it did.
local function wait_for_pillar(before, timeout)
  local deadline = posix.monotonic() + (tonumber(timeout) or 30)
  repeat
    local path, mtime = pillar_file()
    if mtime and mtime ~= before then
      local bytes = posix.read(path, 64 * 1024 * 1024)
      local ok, fresh = pcall(require("brine.msgpack").unpack, bytes or "")
      if ok and data.kind(fresh) == "map" then
        opts.pillar = fresh
        __loader__:refresh_pillar()
        return true
      end
    end
    posix.sleep(0.02)
  until posix.monotonic() > deadline
  return false
end

--- Compiles the pillar again. Masterless (`file_client: local`): from
--- pillar_roots with the current grains, so that the rest of this call,
--- and every module holding `pillar`, sees changed pillar files. Under a
--- master: asks the minion daemon to fetch it from the master again (the
--- jobs after it see it); with wait=True, waits up to `timeout` seconds for
--- it to arrive (this call then sees it too) and returns whether it did.
--- Returns false when there is no minion daemon to ask.
function M.refresh_pillar(wait, timeout, clean_cache) -- luacheck: ignore 212
  if opts.file_client == "local" then
    __loader__:refresh_pillar()
    return true
  end
  local daemon_pid = math.tointeger(opts._minion_pid)
  if not daemon_pid then
    return false
  end
  local _, before = pillar_file()
  if not posix.kill(daemon_pid, "USR1") then
    return false
  end
  if wait == true then
    return wait_for_pillar(before, timeout)
  end
  return true
end

-- A comma-separated string or a list, as a set of names; nil for none.
local function name_set(v)
  if v == nil or v == null then
    return nil
  end
  local set = {}
  if type(v) == "string" then
    for name in v:gmatch("[^,%s]+") do
      set[name] = true
    end
  else
    for _, name in ipairs(v) do
      set[tostring(name)] = true
    end
  end
  return set
end

-- The `_grains` module files of the file roots of the environments asked
-- for: module name -> source path (the first root holding a name wins).
local function sources(saltenv)
  local roots = type(opts.file_roots) == "table" and opts.file_roots or {}
  local envs = {}
  if type(saltenv) == "string" then
    envs = { saltenv }
  else
    for env in pairs(roots) do
      envs[#envs + 1] = env
    end
    table.sort(envs)
  end
  local found = {}
  for _, env in ipairs(envs) do
    for _, root in ipairs(type(roots[env]) == "table" and roots[env] or {}) do
      local dir = root .. "/_grains"
      for _, name in ipairs(fs.is_dir(dir) and fs.listdir(dir) or {}) do
        local mod = name:match("^([%w_]+)%.lua$")
        if mod and not found[mod] then
          found[mod] = dir .. "/" .. name
        end
      end
    end
  end
  return found
end

local function wanted(mod, white, black)
  return (not white or white[mod]) and not (black and black[mod])
end

-- Copies one module when its text differs; true when it was written.
local function copy_module(src, dest)
  local text, err = fs.read(src)
  if not text then
    return nil, err
  end
  if fs.exists(dest) and fs.read(dest) == text then
    return false
  end
  local ok
  ok, err = fs.write_atomic(dest, text)
  if not ok then
    return nil, err
  end
  return true
end

--- Copies the custom grain modules (`_grains/*.lua`) of the file roots
--- (of saltenv, else of every environment) into
--- <extension_modules>/grains and removes the ones no longer there.
--- Returns the list of modules written ("grains.<name>"), as Salt does;
--- refresh=True then computes the grains again.
function M.sync_grains(saltenv, refresh, extmod_whitelist, extmod_blacklist,
                       clean_pillar_cache) -- luacheck: ignore 212
  if type(opts.extension_modules) ~= "string" then
    return nil, "saltutil.sync_grains: the extension_modules option is not set"
  end
  local dest_dir = opts.extension_modules .. "/grains"
  local ok, err = fs.mkdir(dest_dir, tonumber("755", 8), true)
  if not ok and not fs.is_dir(dest_dir) then
    return nil, err
  end
  local white, black = name_set(extmod_whitelist), name_set(extmod_blacklist)
  local found, ret = sources(saltenv), data.array()
  for mod, src in pairs(found) do
    if wanted(mod, white, black) then
      local changed
      changed, err = copy_module(src, dest_dir .. "/" .. mod .. ".lua")
      if changed == nil then
        return nil, err
      elseif changed then
        ret[#ret + 1] = "grains." .. mod
      end
    end
  end
  for _, name in ipairs(fs.listdir(dest_dir) or {}) do
    local mod = name:match("^([%w_]+)%.lua$")
    if mod and not (found[mod] and wanted(mod, white, black)) then
      fs.remove(dest_dir .. "/" .. name)
    end
  end
  table.sort(ret)
  if refresh ~= false and refresh ~= null then
    minion_grains.refresh(opts, grains)
  end
  return ret
end

---------------------------------------------------------------------------
-- Jobs
---------------------------------------------------------------------------

local function proc_dir()
  return tostring(opts.cachedir) .. "/proc"
end

-- The record of a running job, or nil (a record whose worker is gone is
-- removed, as Salt does).
local function read_proc(jid)
  local path = proc_dir() .. "/" .. jid
  local bytes = posix.read(path, 1024 * 1024)
  local ok, rec = pcall(require("brine.msgpack").unpack, bytes or "")
  if not ok or data.kind(rec) ~= "map" or not math.tointeger(rec.pid) then
    return nil
  end
  if not posix.kill(rec.pid, 0) then
    posix.unlink(path)
    return nil
  end
  return rec
end

--- The jobs running on this minion (but the one asking), oldest first:
--- each job's jid, fun, arg, tgt, tgt_type, user and pid.
function M.running()
  local out, me = data.array(), posix.getpid()
  local jids = posix.listdir(proc_dir()) or {}
  table.sort(jids)
  for _, jid in ipairs(jids) do
    local rec = read_proc(jid)
    if rec and rec.pid ~= me then
      out[#out + 1] = rec
    end
  end
  return out
end

--- The record of the running job jid, or an empty mapping. A jid typed on
--- the command line arrives as text (brine.args keeps integers past 64 bits
--- exact as their digits); an integer jid from Lua matches too.
function M.find_job(jid)
  local want = math.type(jid) == "integer" and string.format("%d", jid) or tostring(jid)
  for _, rec in ipairs(M.running()) do
    if rec.jid == want then
      return rec
    end
  end
  return data.map()
end

--- Sends signal sig (a number, or a name such as TERM) to the worker of
--- job jid and the processes it started (the worker leads its own process
--- group). Returns Salt's sentences; "" when no such job runs.
function M.signal_job(jid, sig)
  local signal = math.tointeger(tonumber(sig)) or tostring(sig):upper()
  local rec = M.find_job(jid)
  if rec.pid == nil then
    return ""
  end
  jid = rec.jid
  local ok, sent = pcall(posix.kill, -rec.pid, signal)
  if ok and not sent then
    ok, sent = pcall(posix.kill, rec.pid, signal)
  end
  if not ok then
    error(require("brine.loader").error("invalid_args", tostring(sent)), 0)
  elseif not sent then
    posix.unlink(proc_dir() .. "/" .. jid)
    return string.format("Job %s was not running and job data has been cleaned up", jid)
  end
  return string.format("Signal %s sent to job %s at pid %d", tostring(sig), jid, rec.pid)
end

--- SIGTERM to the worker of job jid.
function M.term_job(jid)
  return M.signal_job(jid, 15)
end

--- SIGKILL to the worker of job jid: it ends at once, and the minion
--- returns an error saying the worker was killed.
function M.kill_job(jid)
  return M.signal_job(jid, 9)
end

-- Signals every running job (but the one asking); Salt's sentences, one
-- per job.
local function signal_all(sig)
  local out = data.array()
  for _, rec in ipairs(M.running()) do
    out[#out + 1] = M.signal_job(rec.jid, sig)
  end
  return out
end

--- SIGTERM to every running job (but this one).
function M.term_all_jobs()
  return signal_all(15)
end

--- SIGKILL to every running job (but this one).
function M.kill_all_jobs()
  return signal_all(9)
end

return M
