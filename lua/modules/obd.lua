-- The obd execution module: asks the obd device service (lua/services/
-- obd.lua, declared under services: in the minion config) to query the
-- vehicle through its ELM327-style adapter. The service owns the adapter;
-- this module sends one request over the minion's service socket.
-- luacheck: globals opts
local services = require("brine.services")

local M = {}

M.__defaults__ = {
  query = { mode = 1, timeout = 10, service = "obd" },
  voltage = { timeout = 5, service = "obd" },
  status = { timeout = 5, service = "obd" },
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

return M
