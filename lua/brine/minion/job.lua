-- Runs one job's function inside a forked worker and shapes the result as
-- Salt's return (return, retcode, success). The function is found by the
-- module loader (brine.loader); `call` below is the one place that talks
-- to it.
-- TODO: until brine.loader is part of the build, only the handful of test.*
-- functions below can run on a minion through the master.
local data = require("brine.data")
local posix = require("brine.posix")

local M = {}

local builtin = {}

function builtin.ping()
  return true
end

function builtin.echo(text)
  return text
end

function builtin.sleep(length)
  posix.sleep(tonumber(length) or 1)
  return true
end

function builtin.version()
  return require("brine.core").VERSION
end

function builtin.arg(...)
  local args = data.array({ ... })
  return data.map({ { "args", args }, { "kwargs", data.map() } })
end

function builtin.exception(message)
  error(message or "test.exception", 0)
end

local function builtin_call(fun, arg)
  local mod, name = fun:match("^([%w_]+)%.([%w_]+)$")
  if mod ~= "test" or not builtin[name] then
    return nil, string.format("'%s' is not available.", fun)
  end
  return builtin[name](table.unpack(arg, 1, #arg))
end

--- Calls `fun` with positional `arg` and keyword `kwarg`.
---@return any value
---@return string|nil error (the function is missing, or raised)
function M.call(fun, arg, kwarg, opts)
  local ok, loader = pcall(require, "brine.loader")
  if ok and type(loader) == "table" and type(loader.call) == "function" then
    return loader.call(fun, arg, kwarg, opts)
  end
  return builtin_call(fun, arg)
end

--- Runs a job message and returns the `_return` message for it.
function M.run(job, id, opts)
  local arg = data.kind(job.arg) == "array" and job.arg or data.array()
  local kwarg = data.kind(job.kwarg) == "map" and job.kwarg or data.map()
  local ok, value, err = xpcall(M.call, debug.traceback, job.fun, arg, kwarg, opts)
  local ret = data.map({ { "cmd", "_return" }, { "id", id }, { "jid", job.jid },
    { "fun", job.fun } })
  if not ok then
    ret["return"] = "An exception occurred in this function: " .. tostring(value)
    ret.retcode, ret.success = 1, false
  elseif value == nil and err then
    ret["return"] = err
    ret.retcode, ret.success = 1, false
  else
    if value == nil then
      value = data.null
    end
    ret["return"], ret.retcode, ret.success = value, 0, true
  end
  return ret
end

return M
