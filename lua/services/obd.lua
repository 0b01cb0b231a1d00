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
--   command {text = "ATRV"} -> the adapter's answer; status.
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

--- A PID from a number (12), hex text ("0C", "0x0C") or a name ("rpm").
function M.pid_of(pid)
  if math.type(pid) == "integer" then
    return pid
  elseif type(pid) == "string" then
    return BY_NAME[pid] or tonumber(pid:gsub("^0[xX]", ""), 16)
  end
  return nil
end

-- Sends one command and collects the answer up to the ">" prompt: the
-- answer's lines, without echo, blank lines and "SEARCHING...".
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
  local lines = {}
  for line in buf:gsub(">.*$", ""):gmatch("[^\r\n]+") do
    line = line:match("^%s*(.-)%s*$")
    if line ~= "" and line ~= text and line ~= "SEARCHING..." then
      lines[#lines + 1] = line
    end
  end
  for _, line in ipairs(lines) do
    if FAILURES[line] then
      return nil, string.format("%s: %s", text, FAILURES[line])
    end
  end
  return lines
end

--- Decodes the answer to a mode 01 query: the data bytes after "41 PID".
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
    queries = 0, failures = 0 }
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
  end
  return nil, string.format("unknown request '%s' (query, command or status)", method)
end

function M.close(state)
  state.port:close()
end

return M
