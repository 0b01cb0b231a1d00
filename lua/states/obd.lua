-- The obd state module: keeps an ELM327-style OBD-II adapter configured as
-- wanted. The adapter belongs to an obd device service (lua/services/
-- obd.lua); the state reads and sets its settings through the obd
-- execution module, so it never touches the device itself.
-- docs/writing-states.md is the contract a state function keeps.
-- luacheck: globals salt opts
local data = require("brine.data")
local obd = require("services.obd")

local M = {}

local null = data.null

M.__defaults__ = {
  configured = { protocol = null, echo = null, linefeeds = null, headers = null,
    timeout_ms = null, adaptive_timing = null, timeout = 10 },
}

local function new_ret(name)
  return data.map({ { "name", name }, { "changes", data.map() }, { "result", false },
    { "comment", "" } })
end

local function keys_of(map)
  return table.concat(data.keys(map), ", ")
end

-- What differs between two readings of the settings, for the wanted keys.
local function changed(before, after, wanted)
  local out = data.map()
  for key in pairs(wanted) do
    if before[key] ~= after[key] then
      out[key] = data.map({ { "old", before[key] }, { "new", after[key] } })
    end
  end
  return out
end

-- Sets the settings in `diff` (their values as the user wrote them) and
-- reads the settings again: the settings afterwards, or nil, and why the
-- adapter refused (the settings may be read even then).
local function apply(name, diff, args, timeout)
  local kwargs = { __kwarg__ = true, timeout = timeout, service = name }
  for key in pairs(diff) do
    kwargs[key] = args[key]
  end
  local after, err = salt["obd.configure"](kwargs)
  if after then
    return after
  end
  return salt["obd.settings"]({ __kwarg__ = true, timeout = timeout, service = name }), err
end

--- Makes the adapter of the obd service `name` use the settings given;
--- settings left out are not looked at. Changes only what differs and
--- reports each change as {old, new}; with test=True it reports what would
--- change and changes nothing. Fails (result False) when a setting is not
--- valid, the service does not answer, or the adapter refuses a command
--- (the comment gives the command and the adapter's answer).
--- The settings last until the adapter resets: the service resets it when
--- it starts, so apply this state after the service (re)starts.
---@param name string the obd service's name under services: (e.g. car)
---@param protocol any 0 or auto (the automatic search), 1-9 or A-C (ATSP)
---@param echo boolean echo the commands (ATE1) or not (ATE0)
---@param linefeeds boolean end lines with CR LF (ATL1) or CR (ATL0)
---@param headers boolean show the header bytes of answers (ATH1) or not (ATH0)
---@param timeout_ms integer how long the adapter waits for the vehicle, 4-1020 ms (ATST)
---@param adaptive_timing integer 0 (off), 1 or 2 (ATAT)
---@param timeout number seconds to wait for the service
function M.configured(name, protocol, echo, linefeeds, headers, timeout_ms, adaptive_timing,
                      timeout)
  local ret = new_ret(name)
  local args = { protocol = protocol, echo = echo, linefeeds = linefeeds, headers = headers,
    timeout_ms = timeout_ms, adaptive_timing = adaptive_timing }
  local wanted, problem = obd.wanted(args)
  if not wanted then
    ret.comment = "OBD adapter " .. name .. ": " .. problem
    return ret
  end

  local before, err = salt["obd.settings"]({ __kwarg__ = true, timeout = timeout,
    service = name })
  if not before then
    ret.comment = string.format("OBD adapter %s: cannot read its settings: %s", name, err)
    return ret
  end
  local diff = obd.differences(before, wanted)
  if next(diff) == nil then
    ret.result = true
    ret.comment = string.format("OBD adapter %s is already configured as wanted", name)
    return ret
  elseif opts.test then
    ret.result, ret.changes = null, diff
    ret.comment = string.format("OBD adapter %s would be configured: %s", name, keys_of(diff))
    return ret
  end

  local after
  after, err = apply(name, diff, args, timeout)
  ret.changes = after and changed(before, after, wanted) or ret.changes
  if err then
    ret.comment = string.format("OBD adapter %s could not be configured: %s", name, err)
  elseif next(obd.differences(after, wanted)) then
    ret.comment = string.format("OBD adapter %s accepted the settings but still reports %s"
      .. " different", name, keys_of(obd.differences(after, wanted)))
  else
    ret.result = true
    ret.comment = string.format("OBD adapter %s was configured: %s", name, keys_of(diff))
  end
  return ret
end

return M
