-- The Lua side of the C embedding API (engine/include/brine.h): calls an
-- execution module function for brine_call_local() with arguments and a
-- result in JSON. One loader per engine, made on the first call from the
-- default configuration folder.
-- A C module of brine when this build has it, else nil (without asking
-- the file system, as a failed require would).
local function c_module(name)
  if package.loaded[name] or package.preload[name] then
    return require(name)
  end
  return nil
end

local M = {}

local state = {}

local function decode(text, what)
  local json = c_module("brine.json")
  if json then
    local value, err = json.decode(text)
    if value == nil then
      return nil, what .. ": " .. tostring(err)
    end
    return value
  end
  -- JSON is YAML flow syntax; the command line's reader handles it
  local dok, value = pcall(require("brine.args")._mini_load, text)
  if not dok then
    return nil, what .. ": not valid JSON: " .. tostring(value)
  end
  return value
end

local function encode(value)
  local json = c_module("brine.json")
  if json then
    return json.encode(value)
  end
  return require("outputters.json").dumps(value)
end

--- Sets the options the next calls use (a fresh loader is made for them).
---@param opts table
function M.configure(opts)
  state.opts, state.loader = opts, nil
end

local function get_loader()
  if not state.loader then
    local config = require("brine.config")
    local opts = state.opts
    if not opts then
      local err
      opts, err = config.load(nil, "minion")
      if not opts then
        return nil, err
      end
    end
    local loader = require("brine.loader")
    state.loader = loader.new(opts, loader.environment(opts))
  end
  return state.loader
end

--- Calls fun with a JSON array of positional arguments and a JSON object
--- of keyword arguments; returns the function's return value as JSON, or
--- nil and a message in salt-call's words.
---@param fun string "module.function"
---@param args_json string
---@param kwargs_json string
---@return string|nil result_json
---@return string|nil error
function M.call_local(fun, args_json, kwargs_json)
  local args, err = decode(args_json or "[]", "arguments")
  if args == nil then
    return nil, err
  end
  local kwargs
  kwargs, err = decode(kwargs_json or "{}", "keyword arguments")
  if kwargs == nil then
    return nil, err
  end
  local data = require("brine.data")
  if data.kind(args) ~= "array" and not (type(args) == "table" and next(args) == nil) then
    return nil, "arguments: a JSON array is expected"
  end
  if data.kind(kwargs) ~= "map" then
    return nil, "keyword arguments: a JSON object is expected"
  end
  local ld
  ld, err = get_loader()
  if not ld then
    return nil, err
  end
  local ok, value, message = pcall(ld.call, ld, fun, args, kwargs)
  if not ok then
    local loader = require("brine.loader")
    if loader.is_error(value) and value.kind == "invalid_args" then
      return nil, "Passed invalid arguments: " .. value.message .. "."
    end
    return nil, tostring(value)
  end
  if value == nil and type(message) == "string" then
    return nil, string.format("Error running '%s': %s", fun, message)
  end
  if value == nil then
    value = data.null
  end
  return encode(value)
end

return M
