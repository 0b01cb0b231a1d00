-- The gnss execution module: asks the gnss device service (lua/services/
-- gnss.lua, declared under services: in the minion config) for the
-- receiver's fix. The service owns the serial port; this module only sends
-- a request over the minion's service socket, so it answers in
-- milliseconds and never touches the device.
-- luacheck: globals opts
local services = require("brine.services")

local M = {}

M.__defaults__ = {
  position = { max_age = require("brine.data").null, timeout = 2, service = "gnss" },
  status = { timeout = 2, service = "gnss" },
}

--- The current position: latitude and longitude (degrees, negative south
--- and west), altitude (m), speed_kmh, course (degrees), time (UTC, from the
--- receiver), quality, satellites, hdop and age (seconds since the fix).
--- CLI example: brine call --local gnss.position
---@param max_age number|nil seconds after which a fix counts as lost (the service's max_age)
---@param timeout number seconds to wait for the service
---@param service string the service's name under services:
function M.position(max_age, timeout, service)
  return services.call(service, "position", { max_age = max_age }, timeout, opts)
end

--- The receiver's port, talker, whether it has a fix, and how many
--- sentences were read, dropped for a bad checksum, malformed or ignored.
--- CLI example: brine call --local gnss.status
function M.status(timeout, service)
  return services.call(service, "status", nil, timeout, opts)
end

return M
