-- obd: a device service for an ELM327-style OBD-II adapter on a serial
-- port (USB or Bluetooth serial). init resets the adapter and sets it up
-- (echo, line feeds and headers off, the protocol); each request sends
-- one command and waits for the adapter's ">" prompt. Requests are
-- answered one at a time, so commands never interleave on the line.
--
-- Settings (under services: in the minion config):
--   port      the adapter, e.g. /dev/ttyUSB0 or /dev/rfcomm0 (required)
--   baud      line speed (default 38400, the ELM327's default)
--   protocol  ATSP code, "0" (automatic, default) to "9" or "A"-"C"
--   timeout   seconds to wait for one answer (default 5: the first query
--             searches for the vehicle's protocol)
-- Requests: query {pid =, mode =} -> {pid, name, value, unit};
--   command {text = "ATRV"} -> the adapter's answer; status;
--   settings -> the adapter's settings; configure {protocol =, echo =,
--   linefeeds =, headers =, timeout_ms =, adaptive_timing =} -> the
--   settings once the given ones are applied.
--
-- An ELM327 reports its protocol (ATDPN, ATDP) and shows echo and line
-- feeds in every answer, but has no command that reports headers, the
-- response timeout (ATST) or adaptive timing (ATAT). The service owns the
-- adapter, so it keeps a record of those from the commands the adapter
-- accepted, and starts the record again from the ELM327's defaults when
-- the adapter resets: after ATZ, ATD or ATWS, and when an answer comes
-- back echoed while echo was off (the adapter lost power and restarted).
local serial = require("brine.hw.serial")
local data = require("brine.data")

local M = {}

-- Mode 01 PIDs brine decodes: name, unit, and the formula over the data
-- bytes A, B, ... (SAE J1979).
M.PIDS = {
  [0x04] = { "engine_load", "%", function(a) return a * 100 / 255 end },
  [0x05] = { "coolant_temp", "°C", function(a) return a - 40 end },
  [0x0B] = { "intake_pressure", "kPa", function(a) return a end },
  [0x0C] = { "rpm", "rpm", function(a, b) return (a * 256 + b) / 4 end },
  [0x0D] = { "speed", "km/h", function(a) return a end },
  [0x0F] = { "intake_temp", "°C", function(a) return a - 40 end },
  [0x10] = { "maf", "g/s", function(a, b) return (a * 256 + b) / 100 end },
  [0x11] = { "throttle", "%", function(a) return a * 100 / 255 end },
  [0x1F] = { "run_time", "s", function(a, b) return a * 256 + b end },
  [0x2F] = { "fuel_level", "%", function(a) return a * 100 / 255 end },
  [0x42] = { "module_voltage", "V", function(a, b) return (a * 256 + b) / 1000 end },
  [0x46] = { "ambient_temp", "°C", function(a) return a - 40 end },
  [0x5C] = { "oil_temp", "°C", function(a) return a - 40 end },
}

local BY_NAME = {}
for pid, def in pairs(M.PIDS) do
  BY_NAME[def[1]] = pid
end

-- Answers of the adapter that mean the command failed.
local FAILURES = { ["NO DATA"] = "no data (the vehicle does not report it)",
  ["?"] = "the adapter did not understand the command",
  ["UNABLE TO CONNECT"] = "the adapter cannot reach the vehicle (ignition off?)",
  ["CAN ERROR"] = "CAN error (wrong protocol, or the bus is not connected)",
  ["BUS INIT: ...ERROR"] = "bus initialisation failed", ["STOPPED"] = "the adapter stopped",
  ["BUFFER FULL"] = "the adapter's buffer is full" }

-- What an ELM327 starts with after a reset (line feeds depend on a pin:
-- they are seen in each answer instead).
local DEFAULTS = { echo = true, headers = false, timeout_ms = 200, adaptive_timing = 1 }

-- The settings configure applies, in this order.
M.SETTINGS = { "protocol", "echo", "linefeeds", "headers", "timeout_ms", "adaptive_timing" }

--- A PID from a number (12), hex text ("0C", "0x0C") or a name ("rpm").
function M.pid_of(pid)
  if math.type(pid) == "integer" then
    return pid
  elseif type(pid) == "string" then
    return BY_NAME[pid] or tonumber(pid:gsub("^0[xX]", ""), 16)
  end
  return nil
end

local function reset_record(state)
  for k, v in pairs(DEFAULTS) do
    state.settings[k] = v
  end
end

-- Updates the record of the adapter's settings after a command it
-- accepted; `seen` is what its answer showed (echo, line feeds).
local function note(state, svc, text, lines, seen)
  local s, cmd = state.settings, text:upper():gsub("%s", "")
  local was_echo = s.echo
  s.echo, s.linefeeds = seen.echo, seen.linefeeds
  if cmd == "ATZ" or cmd == "ATD" or cmd == "ATWS" then
    reset_record(state)
    return
  elseif seen.echo and not was_echo and not cmd:match("^ATE[01]$") then
    svc.log:warning("the adapter echoed %s while echo was off: it was reset (power loss?);"
      .. " its settings are back to the defaults", text)
    reset_record(state)
  end
  if lines[#lines] ~= "OK" then
    return
  end
  local flag, value = cmd:match("^AT([ELH])([01])$")
  local key = ({ E = "echo", L = "linefeeds", H = "headers" })[flag]
  if key then
    s[key] = value == "1"
  elseif cmd:match("^ATAT[012]$") then
    s.adaptive_timing = tonumber(cmd:sub(5))
  elseif cmd:match("^ATST%x%x$") then
    local units = tonumber(cmd:sub(5), 16)
    s.timeout_ms = units == 0 and DEFAULTS.timeout_ms or units * 4
  end
end

-- The lines of an answer, without echo, blank lines and "SEARCHING...",
-- and what the raw answer shows: {echo =, linefeeds =}.
local function answer_lines(buf, text)
  local lines, seen = {}, { echo = false, linefeeds = buf:find("\n", 1, true) ~= nil }
  for line in buf:gsub(">.*$", ""):gmatch("[^\r\n]+") do
    line = line:match("^%s*(.-)%s*$")
    if line == text then
      seen.echo = true
    elseif line ~= "" and line ~= "SEARCHING..." then
      lines[#lines + 1] = line
    end
  end
  return lines, seen
end

-- Sends one command and collects the answer up to the ">" prompt: the
-- answer's lines, without echo, blank lines and "SEARCHING...". Fails
-- with nil, message and, when the adapter answered with a failure such
-- as "?" or "NO DATA", that answer.
function M.command(state, svc, text)
  state.port:flush("input")
  local ok, err = state.port:write(text .. "\r", state.timeout)
  if not ok then
    return nil, err
  end
  local buf, deadline = "", svc:now() + state.timeout
  while not buf:find(">", 1, true) do
    local chunk
    chunk, err = svc:read(state.port, 256, deadline - svc:now())
    if not chunk then
      return nil, string.format("%s: %s", text, err)
    end
    buf = buf .. chunk
  end
  local lines, seen = answer_lines(buf, text)
  for _, line in ipairs(lines) do
    if FAILURES[line] then
      return nil, string.format("%s: %s", text, FAILURES[line]), table.concat(lines, " | ")
    end
  end
  note(state, svc, text, lines, seen)
  return lines
end

-- The data bytes of an answer line shown with headers (ATH1): a CAN frame
-- such as "7E8 04 41 0C 1A F8" (the header, a length byte, the data), or
-- another protocol's "48 6B 10 41 0C 1A F8 C4" (three header bytes, the
-- data, a checksum). nil when the line is not an answer to mode and pid.
local function headed_bytes(line, mode, pid)
  local t = {}
  for token in line:gmatch("%S+") do
    t[#t + 1] = token:match("^%x%x?%x?$") and tonumber(token, 16)
    if not t[#t] then
      return nil
    end
  end
  for i = 2, #t - 1 do
    if t[i] == 0x40 + mode and t[i + 1] == pid then
      local last = t[i - 1] == #t - i + 1 and #t or #t - 1
      return { table.unpack(t, i + 2, last) }
    end
  end
  return nil
end

--- Decodes the answer to a query: the data bytes after "41 PID" (headers
--- shown or not).
function M.decode(mode, pid, lines)
  local want = string.format("%02X%02X", 0x40 + mode, pid)
  for _, line in ipairs(lines) do
    local hex = line:gsub("%s", ""):upper()
    if hex:sub(1, 4) == want and hex:match("^%x+$") then
      local bytes = {}
      for byte in hex:sub(5):gmatch("%x%x") do
        bytes[#bytes + 1] = tonumber(byte, 16)
      end
      return bytes
    end
    local bytes = headed_bytes(line, mode, pid)
    if bytes then
      return bytes
    end
  end
  return nil, string.format("no answer to mode %02X PID %02X in %q", mode, pid,
    table.concat(lines, " | "))
end

function M.init(config, svc)
  if type(config.port) ~= "string" then
    return nil, "the obd service needs a port setting (the adapter's device)"
  end
  local port, err = serial.open(config.port, { baud = math.tointeger(config.baud) or 38400 })
  if not port then
    return nil, err
  end
  local state = { port = port, config = config, timeout = tonumber(config.timeout) or 5,
    queries = 0, failures = 0, settings = {} }
  reset_record(state)
  local setup = { "ATZ", "ATE0", "ATL0", "ATH0", "ATSP" .. tostring(config.protocol or "0") }
  for _, cmd in ipairs(setup) do
    local lines
    lines, err = M.command(state, svc, cmd)
    if not lines then
      port:close()
      return nil, "setting up the adapter: " .. err
    end
    if cmd == "ATZ" then
      state.version = lines[#lines]
    end
  end
  svc.log:info("%s on %s", tostring(state.version), config.port)
  return state
end

function M.query(state, svc, args)
  local mode = math.tointeger(args.mode) or 1
  local pid = M.pid_of(args.pid)
  if not pid or pid < 0 or pid > 0xFF then
    return nil, string.format("'%s' is not a PID (a number, hex such as 0C, or a name such as"
      .. " rpm)", tostring(args.pid))
  end
  state.queries = state.queries + 1
  local lines, err = M.command(state, svc, string.format("%02X%02X", mode, pid))
  local bytes = lines and M.decode(mode, pid, lines)
  if not bytes then
    state.failures = state.failures + 1
    return nil, err or select(2, M.decode(mode, pid, lines))
  end
  local def = mode == 1 and M.PIDS[pid]
  local out = data.map({ { "pid", string.format("%02X", pid) } })
  if def then
    out.name, out.value, out.unit = def[1], def[3](table.unpack(bytes)), def[2]
  else
    out.bytes = data.array(bytes)
  end
  return out
end

---------------------------------------------------------------------------
-- Settings
---------------------------------------------------------------------------

--- The ATSP code of a protocol: "0" (or "auto") for the automatic search,
--- "1"-"9" or "A"-"C"; nil for anything else.
function M.protocol_code(v)
  if math.type(v) == "integer" then
    v = tostring(v)
  end
  if type(v) ~= "string" then
    return nil
  end
  v = v:upper()
  if v == "AUTO" then
    return "0"
  end
  return #v == 1 and ("0123456789ABC"):find(v, 1, true) and v or nil
end

local function flag(prefix)
  return {
    value = function(v)
      if type(v) == "boolean" then
        return v
      end
    end,
    command = function(w) return prefix .. (w and "1" or "0") end,
    expected = "true or false",
  }
end

-- Per setting: its wanted value as `settings` reports it (nil: not a
-- valid value), whether a current value satisfies it, and its command.
-- A protocol is reported as ATDPN answers: "6", or "A6" while the
-- automatic search is on (it found 6); wanting the search is "A0".
local KINDS = {
  protocol = {
    value = function(v)
      local code = M.protocol_code(v)
      return code and (code == "0" and "A0" or code)
    end,
    same = function(current, wanted)
      return current == wanted or (wanted == "A0" and tostring(current):sub(1, 1) == "A")
    end,
    command = function(w) return "ATSP" .. (w == "A0" and "0" or w) end,
    expected = "0 or auto for the automatic search, 1-9 or A-C",
  },
  echo = flag("ATE"),
  linefeeds = flag("ATL"),
  headers = flag("ATH"),
  timeout_ms = {
    value = function(v)
      v = tonumber(v)
      return v and v >= 4 and v <= 1020 and math.floor(v / 4 + 0.5) * 4 or nil
    end,
    command = function(w) return string.format("ATST%02X", w // 4) end,
    expected = "4 to 1020 milliseconds, in steps of 4",
  },
  adaptive_timing = {
    value = function(v)
      v = v == false and 0 or v == true and 1 or math.tointeger(v)
      return v and v >= 0 and v <= 2 and v or nil
    end,
    command = function(w) return "ATAT" .. w end,
    expected = "0 (off), 1 or 2",
  },
}

--- Checks wanted settings and writes them as `settings` reports them.
---@param args table any of M.SETTINGS; nil and null values are left out
---@return table|nil wanted an ordered map
---@return string|nil problem naming the setting and the values it takes
function M.wanted(args)
  local out = data.map()
  for _, key in ipairs(M.SETTINGS) do
    local v = args[key]
    if v ~= nil and not data.is_null(v) then
      local w = KINDS[key].value(v)
      if w == nil then
        return nil, string.format("%s: '%s' is not a valid value (%s)", key, tostring(v),
          KINDS[key].expected)
      end
      out[key] = w
    end
  end
  return out
end

--- The wanted settings (from M.wanted) that the current ones do not
--- satisfy: an ordered map of setting -> {old =, new =}.
function M.differences(current, wanted)
  local out = data.map()
  for _, key in ipairs(M.SETTINGS) do
    local w, old = wanted[key], current[key]
    local same = KINDS[key].same
    if w ~= nil and not (same and same(old, w) or old == w) then
      out[key] = data.map({ { "old", old == nil and data.null or old }, { "new", w } })
    end
  end
  return out
end

--- The adapter's settings: protocol (ATDPN's answer) and protocol_name
--- (ATDP's), echo and linefeeds (as its answers show them), and headers,
--- timeout_ms and adaptive_timing from the service's record.
function M.settings(state, svc)
  local number, err = M.command(state, svc, "ATDPN")
  if not number then
    return nil, err
  elseif #number ~= 1 or not number[1]:match("^A?%x$") then
    return nil, string.format("ATDPN: the adapter answered '%s', not a protocol number",
      table.concat(number, " | "))
  end
  local name
  name, err = M.command(state, svc, "ATDP")
  if not name then
    return nil, err
  end
  local s = state.settings
  return data.map({ { "protocol", number[1] }, { "protocol_name", table.concat(name, " ") },
    { "echo", s.echo }, { "linefeeds", s.linefeeds }, { "headers", s.headers },
    { "timeout_ms", s.timeout_ms }, { "adaptive_timing", s.adaptive_timing } })
end

--- Applies the given settings in the order of M.SETTINGS, stopping at the
--- first command the adapter refuses; returns the settings afterwards, or
--- nil and the command with the adapter's answer.
function M.configure(state, svc, args)
  local wanted, problem = M.wanted(args)
  if not wanted then
    return nil, problem
  end
  for _, key in ipairs(M.SETTINGS) do
    if wanted[key] ~= nil then
      local cmd = KINDS[key].command(wanted[key])
      local lines, err, answer = M.command(state, svc, cmd)
      if not lines then
        return nil, answer and string.format("%s (it answered '%s')", err, answer) or err
      elseif lines[#lines] ~= "OK" then
        return nil, string.format("%s: the adapter answered '%s' instead of OK", cmd,
          table.concat(lines, " | "))
      end
    end
  end
  return M.settings(state, svc)
end

function M.handle(state, method, args, svc)
  args = type(args) == "table" and args or {}
  if method == "query" then
    return M.query(state, svc, args)
  elseif method == "command" then
    if type(args.text) ~= "string" or not args.text:match("^[%w ]+$") then
      return nil, "command needs text: letters, digits and spaces (e.g. ATRV)"
    end
    local lines, err = M.command(state, svc, args.text)
    return lines and table.concat(lines, "\n"), err
  elseif method == "status" then
    return data.map({ { "port", state.config.port }, { "adapter", state.version },
      { "queries", state.queries }, { "failures", state.failures } })
  elseif method == "settings" then
    return M.settings(state, svc)
  elseif method == "configure" then
    return M.configure(state, svc, args)
  end
  return nil, string.format("unknown request '%s' (query, command, status, settings or"
    .. " configure)", method)
end

function M.close(state)
  state.port:close()
end

return M
