-- gnss: a device service that reads NMEA 0183 from a GNSS receiver on a
-- serial port and keeps the latest fix. Any talker is accepted (GP, GN,
-- GL, GA, BD, ...); RMC gives time, position, speed and course, GGA the
-- fix quality, satellites, HDOP and altitude. A sentence whose checksum is
-- missing or wrong is dropped and counted, as is one that does not parse.
--
-- Settings (under services: in the minion config):
--   port      the device, e.g. /dev/ttyACM0 (required)
--   baud      line speed (default 9600, NMEA's usual rate)
--   max_age   seconds after which a fix counts as lost (default 10)
-- Requests: position -> the fix; status -> the receiver and the counters.
local serial = require("brine.hw.serial")
local data = require("brine.data")

local M = {}

local KNOTS_TO_KMH = 1.852

local function checksum(body)
  local x = 0
  for i = 1, #body do
    x = x ~ body:byte(i)
  end
  return x
end

--- Makes a whole sentence from its body: "GPGGA,..." -> "$GPGGA,...*47\r\n"
--- (for receiver simulators and tests).
function M.sentence(body)
  return string.format("$%s*%02X\r\n", body, checksum(body))
end

--- Splits and checks one NMEA sentence.
---@param line string e.g. "$GPGGA,...*47"
---@return table|nil {talker = "GP", type = "GGA", fields = {...}} (fields[1] follows the type)
---@return string|nil "checksum" or "malformed" when the sentence is dropped
function M.parse(line)
  local body, sum = line:match("^%$([^%$%*]+)%*(%x%x)%s*$")
  if not body then
    return nil, line:match("^%$[^%*]*$") and "checksum" or "malformed"
  end
  if checksum(body) ~= tonumber(sum, 16) then
    return nil, "checksum"
  end
  local fields = {}
  for field in (body .. ","):gmatch("([^,]*),") do
    fields[#fields + 1] = field
  end
  local talker, kind = table.remove(fields, 1):match("^(%u[%u%d])(%u%u%u)$")
  if not talker then
    return nil, "malformed"
  end
  return { talker = talker, type = kind, fields = fields }
end

-- "4807.038", "N" -> 48.1173 (degrees, negative south and west); the
-- text is split rather than divided, so no rounding error creeps in.
local function coordinate(value, hemisphere)
  local degrees, minutes = value:match("^(%d+)(%d%d%.?%d*)$")
  if not degrees or not hemisphere:match("^[NSEW]$") then
    return nil
  end
  local decimal = tonumber(degrees) + tonumber(minutes) / 60
  return (hemisphere == "S" or hemisphere == "W") and -decimal or decimal
end

-- "123519.00" and "230394" -> "1994-03-23T12:35:19.00Z"; NMEA's two-digit
-- year is taken as 19YY from 80 on, else 20YY.
local function timestamp(time, date)
  local hh, mm, ss = (time or ""):match("^(%d%d)(%d%d)(%d%d%.?%d*)$")
  local d, mo, yy = (date or ""):match("^(%d%d)(%d%d)(%d%d)$")
  if not hh or not d then
    return nil
  end
  local year = tonumber(yy) >= 80 and 1900 + tonumber(yy) or 2000 + tonumber(yy)
  return string.format("%04d-%s-%sT%s:%s:%sZ", year, mo, d, hh, mm, ss)
end

local function on_rmc(state, f, now)
  state.rmc_time = timestamp(f[1], f[9])
  if f[2] ~= "A" then
    state.fix_valid = false
    return
  end
  local lat, lon = coordinate(f[3], f[4]), coordinate(f[5], f[6])
  if not lat or not lon then
    return
  end
  state.fix = state.fix or {}
  local fix = state.fix
  fix.latitude, fix.longitude = lat, lon
  fix.speed_kmh = tonumber(f[7]) and tonumber(f[7]) * KNOTS_TO_KMH or nil
  fix.course = tonumber(f[8])
  fix.time = state.rmc_time
  state.fix_valid, state.fix_at = true, now
end

local function on_gga(state, f, now)
  local quality = tonumber(f[6]) or 0
  state.quality = quality
  state.satellites = tonumber(f[7])
  state.hdop = tonumber(f[8])
  if quality == 0 then
    return
  end
  local lat, lon = coordinate(f[2], f[3]), coordinate(f[4], f[5])
  if lat and lon then
    state.fix = state.fix or {}
    state.fix.latitude, state.fix.longitude = lat, lon
    state.fix.altitude = tonumber(f[9])
    state.fix_valid, state.fix_at = true, now
  end
end

local HANDLERS = { RMC = on_rmc, GGA = on_gga }

--- Feeds one line read from the receiver into the state (the counters and
--- the fix). `now` is a monotonic time in seconds.
function M.feed(state, line, now)
  state.last_line_at = now
  local s, problem = M.parse(line)
  if not s then
    state.counts[problem] = state.counts[problem] + 1
    return
  end
  state.counts.sentences = state.counts.sentences + 1
  state.talker = s.talker
  local handler = HANDLERS[s.type]
  if handler then
    handler(state, s.fields, now)
  else
    state.counts.ignored = state.counts.ignored + 1
  end
end

--- A fresh state for a receiver (used by init, and by tests of feed).
function M.new_state(config)
  return { config = config, max_age = tonumber(config.max_age) or 10,
    counts = { sentences = 0, checksum = 0, malformed = 0, ignored = 0 } }
end

function M.init(config, svc)
  if type(config.port) ~= "string" then
    return nil, "the gnss service needs a port setting (the receiver's device)"
  end
  local baud = math.tointeger(config.baud) or 9600
  local port, err = serial.open(config.port, { baud = baud })
  if not port then
    return nil, err
  end
  local state = M.new_state(config)
  state.port, state.baud = port, baud
  svc.log:info("reading NMEA from %s at %d baud", config.port, baud)
  return state
end

function M.loop(state, svc)
  while true do
    local line, err = svc:read_line(state.port)
    if not line then
      error(err, 0)   -- the receiver is gone: fail, and be restarted
    end
    M.feed(state, line, svc:now())
  end
end

local function age(state, at, now)
  return at and math.floor((now - at) * 1000 + 0.5) / 1000 or nil
end

--- The current fix, or nil and why there is none.
function M.position(state, now, max_age)
  max_age = tonumber(max_age) or state.max_age
  local fix = state.fix
  if not fix or not state.fix_at then
    return nil, string.format("no position fix yet (%d sentences read)",
      state.counts.sentences)
  end
  local fix_age = now - state.fix_at
  if not state.fix_valid or fix_age > max_age then
    return nil, string.format("no position fix for %.1f s (the receiver reports %s)", fix_age,
      state.fix_valid and "nothing new" or "no fix")
  end
  return data.map({ { "latitude", fix.latitude }, { "longitude", fix.longitude },
    { "altitude", fix.altitude }, { "speed_kmh", fix.speed_kmh }, { "course", fix.course },
    { "time", fix.time }, { "quality", state.quality }, { "satellites", state.satellites },
    { "hdop", state.hdop }, { "age", age(state, state.fix_at, now) } })
end

--- The receiver, its counters and whether there is a fix.
function M.status(state, now)
  local c = state.counts
  return data.map({ { "port", state.config.port }, { "baud", state.baud },
    { "talker", state.talker }, { "fix", (M.position(state, now)) ~= nil },
    { "sentences", c.sentences }, { "bad_checksum", c.checksum },
    { "malformed", c.malformed }, { "ignored", c.ignored },
    { "last_sentence_age", age(state, state.last_line_at, now) } })
end

function M.handle(state, method, args, svc)
  args = type(args) == "table" and args or {}
  if method == "position" then
    return M.position(state, svc:now(), args.max_age)
  elseif method == "status" then
    return M.status(state, svc:now())
  end
  return nil, string.format("unknown request '%s' (position or status)", method)
end

function M.close(state)
  state.port:close()
end

--- A custom grain: {gnss = {position = {...}}} while the gnss service has a
--- fix, {} otherwise. It waits at most half a second. From a file in
--- _grains/: `return { gnss = function() return require("services.gnss").grains(opts) end }`.
---@param opts table|nil minion options (for sock_dir)
---@param service string|nil the service's name (default "gnss")
function M.grains(opts, service)
  local pos = require("brine.services").call(service or "gnss", "position", nil, 0.5, opts)
  if not pos then
    return {}
  end
  return { gnss = { position = pos } }
end

return M
