-- An ELM327 OBD-II adapter played on the controlling end of a pty for the
-- specs, driven by the test's luv loop (which services.call runs while it
-- waits). It answers the AT commands the obd service and state use as an
-- ELM327 v1.5 does: ATZ/ATD/ATWS reset to the defaults (echo and line
-- feeds on, headers off, ATST 32, ATAT1, automatic protocol); ATE, ATL,
-- ATH, ATS, ATAT, ATST, ATSP set what they say; ATDPN and ATDP describe
-- the protocol; an unknown command or bad value answers "?". The simulated
-- car speaks ISO 15765-4 CAN 11/500 (protocol 6): the automatic search
-- finds it ("SEARCHING..." before the first answer), another fixed
-- protocol answers UNABLE TO CONNECT, and a PID the car lacks NO DATA.
local uv = require("luv")

local M = {}

-- ATDP's names of the protocols.
local PROTOCOLS = { ["1"] = "SAE J1850 PWM", ["2"] = "SAE J1850 VPW", ["3"] = "ISO 9141-2",
  ["4"] = "ISO 14230-4 (KWP 5BAUD)", ["5"] = "ISO 14230-4 (KWP FAST)",
  ["6"] = "ISO 15765-4 (CAN 11/500)", ["7"] = "ISO 15765-4 (CAN 29/500)",
  ["8"] = "ISO 15765-4 (CAN 11/250)", ["9"] = "ISO 15765-4 (CAN 29/250)",
  A = "SAE J1939 (CAN 29/250)", B = "USER1 (CAN 11/125)", C = "USER2 (CAN 11/50)" }

local CAR_PROTOCOL = "6"
local CAR = { ["010C"] = "41 0C 1A F8", ["010D"] = "41 0D 32", ["0105"] = "41 05 7B",
  ["0100"] = "41 00 BE 1F A8 13" }

local function reset(a)
  a.echo, a.linefeeds, a.headers, a.spaces = true, true, false, true
  a.timeout, a.adaptive, a.protocol, a.auto = 0x32, 1, "0", true
end

-- The answer to an OBD request: the car's frame, with the CAN header and
-- length byte when headers are on.
local function obd_answer(a, cmd)
  local prefix = ""
  if a.protocol == "0" then
    a.protocol, prefix = CAR_PROTOCOL, "SEARCHING...\r"
  elseif a.protocol ~= CAR_PROTOCOL then
    return "UNABLE TO CONNECT"
  end
  local frame = CAR[cmd]
  if not frame then
    return prefix .. "NO DATA"
  end
  if a.headers then
    local _, spaces = frame:gsub(" ", "")
    frame = string.format("7E8 %02X %s", spaces + 1, frame)
  end
  return prefix .. (a.spaces and frame or frame:gsub(" ", ""))
end

local function describe(a)
  if a.protocol == "0" then
    return "AUTO"
  end
  return (a.auto and "AUTO, " or "") .. PROTOCOLS[a.protocol]
end

-- Settings commands: pattern, and what to do with the captures (false: a
-- bad value, answered "?").
local SETTERS = {
  { "^ATE([01])$", function(a, v) a.echo = v == "1" end },
  { "^ATL([01])$", function(a, v) a.linefeeds = v == "1" end },
  { "^ATH([01])$", function(a, v) a.headers = v == "1" end },
  { "^ATS([01])$", function(a, v) a.spaces = v == "1" end },
  { "^ATAT([012])$", function(a, v) a.adaptive = tonumber(v) end },
  { "^ATST(%x%x)$", function(a, v)
    a.timeout = tonumber(v, 16) == 0 and 0x32 or tonumber(v, 16)
  end },
  { "^ATSP(A?)(%x)$", function(a, auto, p)
    if p ~= "0" and not PROTOCOLS[p] then
      return false
    end
    a.protocol, a.auto = p, p == "0" or auto == "A"
  end },
}

-- The adapter's answer to one command (without echo and prompt).
local function answer(a, cmd)
  if a.lacks[cmd] then
    return "?"
  elseif cmd == "ATZ" or cmd == "ATWS" then
    reset(a)
    return "\r\rELM327 v1.5"
  elseif cmd == "ATD" then
    reset(a)
    return "OK"
  elseif cmd == "ATI" then
    return "ELM327 v1.5"
  elseif cmd == "ATRV" then
    return "12.6V"
  elseif cmd == "ATDPN" then
    return (a.auto and "A" or "") .. a.protocol
  elseif cmd == "ATDP" then
    return describe(a)
  end
  for _, setter in ipairs(SETTERS) do
    local captures = { cmd:match(setter[1]) }
    if captures[1] then
      return setter[2](a, table.unpack(captures)) == false and "?" or "OK"
    end
  end
  if cmd:match("^%x%x%x%x$") then
    return obd_answer(a, cmd)
  end
  return "?"
end

--- Plays an adapter on `peer` (the controlling end of serial.openpty()).
---@param peer userdata the pty's controlling end
---@param options table|nil {lacks = {"ATAT2", ...}}: commands this clone answers "?"
---@return table adapter its settings (echo, linefeeds, headers, timeout, adaptive,
--- protocol, auto), `seen` (the commands received), `power_cycle()` (a reset
--- as after a power loss) and `stop()` (returns seen)
function M.start(peer, options)
  local a = { seen = {}, lacks = {} }
  for _, cmd in ipairs(options and options.lacks or {}) do
    a.lacks[cmd] = true
  end
  reset(a)
  local function send(text)
    peer:write(a.linefeeds and text:gsub("\r", "\r\n") or text)
  end
  local poll = uv.new_poll(peer:fileno())
  poll:start("r", function()
    while true do
      local raw = peer:read_line(0, "\r")
      if not raw then
        return
      end
      local cmd = raw:upper():gsub("%s", "")
      a.seen[#a.seen + 1] = cmd
      local echo = a.echo and raw .. "\r" or ""
      send(echo .. answer(a, cmd) .. "\r\r>")
    end
  end)
  function a.power_cycle()
    reset(a)
    send("\r\rELM327 v1.5\r\r>")
  end
  function a.stop()
    poll:stop()
    poll:close()
    uv.run("nowait")
    return a.seen
  end
  return a
end

return M
