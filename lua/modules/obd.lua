-- The obd execution module: asks the obd device service (lua/services/
-- obd.lua, declared under services: in the minion config) to query the
-- vehicle through its ELM327-style adapter. The service owns the adapter;
-- this module sends one request over the minion's service socket.
-- luacheck: globals opts
local services = require("brine.services")
local null = require("brine.data").null

local M = {}

M.__defaults__ = {
  query = { mode = 1, timeout = 10, service = "obd" },
  voltage = { timeout = 5, service = "obd" },
  status = { timeout = 5, service = "obd" },
  settings = { timeout = 5, service = "obd" },
  configure = { protocol = null, echo = null, linefeeds = null, headers = null,
    timeout_ms = null, adaptive_timing = null, timeout = 10, service = "obd" },
}

--- Queries one PID: {pid = "0C", name = "rpm", value = 1726.0, unit = "rpm"}, or the raw
--- data bytes for a PID brine does not decode.
--- CLI example: brine call --local obd.query rpm
---@param pid any a number (12), hex text ("0C") or a name (rpm, speed, coolant_temp, ...)
---@param mode integer the OBD-II service (1: current data)
function M.query(pid, mode, timeout, service)
  return services.call(service, "query", { pid = pid, mode = mode }, timeout, opts)
end

--- The voltage at the adapter's supply pin (the vehicle's battery), in volts.
--- CLI example: brine call --local obd.voltage
function M.voltage(timeout, service)
  local text, err, code = services.call(service, "command", { text = "ATRV" }, timeout, opts)
  if not text then
    return nil, err, code
  end
  local volts = tonumber(text:match("^([%d%.]+)V"))
  if not volts then
    return nil, "the adapter answered ATRV with '" .. text .. "'"
  end
  return volts
end

--- The adapter's port and version, and how many queries it answered and failed.
function M.status(timeout, service)
  return services.call(service, "status", nil, timeout, opts)
end

--- The adapter's settings: protocol (as ATDPN answers: "6", or "A6" while
--- the automatic search is on), protocol_name (ATDP), echo, linefeeds,
--- headers, timeout_ms (ATST) and adaptive_timing (ATAT: 0 off, 1, 2).
--- Headers, timeout_ms and adaptive_timing cannot be read from an ELM327:
--- they come from the service's record of what the adapter accepted.
--- CLI example: brine call --local obd.settings service=car
function M.settings(timeout, service)
  return services.call(service, "settings", nil, timeout, opts)
end

--- Sets the adapter's settings that are given, in the order protocol,
--- echo, linefeeds, headers, timeout_ms, adaptive_timing; stops at the
--- first command the adapter refuses. Returns the settings afterwards.
--- They last until the adapter resets (the service's start resets it).
--- CLI example: brine call --local obd.configure protocol=6 headers=true timeout_ms=100
---@param protocol any 0 or auto (search), 1-9 or A-C (ATSP)
---@param echo boolean ATE0/ATE1
---@param linefeeds boolean ATL0/ATL1
---@param headers boolean ATH0/ATH1
---@param timeout_ms integer how long the adapter waits for the vehicle, 4-1020 ms (ATST)
---@param adaptive_timing integer 0 (off), 1 or 2 (ATAT)
function M.configure(protocol, echo, linefeeds, headers, timeout_ms, adaptive_timing, timeout,
                     service)
  local args = { protocol = protocol, echo = echo, linefeeds = linefeeds, headers = headers,
    timeout_ms = timeout_ms, adaptive_timing = adaptive_timing }
  return services.call(service, "configure", args, timeout, opts)
end

return M
