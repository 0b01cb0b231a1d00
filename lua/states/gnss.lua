-- The gnss state module: checks that a GNSS receiver has a position fix
-- good enough for the job, through the gnss execution module and its
-- device service (lua/services/gnss.lua). It changes nothing, so test mode
-- gives the same result; a formula can make later states require it.
-- docs/writing-states.md is the contract a state function keeps.
-- luacheck: globals salt
local data = require("brine.data")

local M = {}

local null = data.null

M.__defaults__ = {
  fix = { max_age = null, min_satellites = null, max_hdop = null, timeout = 2 },
}

-- Why a fix is not good enough, or nil.
local function shortfall(pos, min_satellites, max_hdop)
  if min_satellites and (pos.satellites or 0) < min_satellites then
    return string.format("%s satellites, fewer than the %d wanted",
      tostring(pos.satellites or "no count of"), min_satellites)
  elseif max_hdop and not (pos.hdop and pos.hdop <= max_hdop) then
    return string.format("HDOP %s, above the %g wanted", tostring(pos.hdop or "unknown"),
      max_hdop)
  end
  return nil
end

--- Succeeds when the gnss service `name` has a fix no older than max_age
--- seconds, from at least min_satellites satellites, with an HDOP of at
--- most max_hdop (each check only when given). Fails with the reason
--- otherwise: no fix, the service down, too few satellites, a poor HDOP.
---@param name string the gnss service's name under services: (e.g. gnss)
---@param max_age number|nil seconds after which a fix counts as lost (the service's max_age)
---@param min_satellites integer|nil satellites the fix must use
---@param max_hdop number|nil the worst horizontal dilution of precision accepted
---@param timeout number seconds to wait for the service
function M.fix(name, max_age, min_satellites, max_hdop, timeout)
  local ret = data.map({ { "name", name }, { "changes", data.map() }, { "result", false },
    { "comment", "" } })
  local pos, err = salt["gnss.position"]({ __kwarg__ = true, max_age = max_age,
    timeout = timeout, service = name })
  if not pos then
    ret.comment = string.format("GNSS receiver %s has no fix: %s", name, err)
    return ret
  end
  local short = shortfall(pos, tonumber(min_satellites), tonumber(max_hdop))
  local where = string.format("%.5f, %.5f", pos.latitude, pos.longitude)
  if short then
    ret.comment = string.format("GNSS receiver %s has a fix at %s, but with %s", name, where,
      short)
    return ret
  end
  ret.result = true
  ret.comment = string.format("GNSS receiver %s has a fix at %s (%s satellites, HDOP %s,"
    .. " %s s old)", name, where, tostring(pos.satellites or "?"), tostring(pos.hdop or "?"),
    tostring(pos.age))
  return ret
end

return M
