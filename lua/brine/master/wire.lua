-- The wire shared by the master, the minion and local clients: how a
-- message becomes bytes and back (msgpack, bounded), the checks every
-- received message passes before any code looks at its fields, Salt's
-- job ids, and the CURVE settings of each kind of socket. docs/protocol.md
-- describes the messages themselves.
local data = require("brine.data")
local posix = require("brine.posix")

local M = {}

-- The largest message any socket accepts (ZMQ_MAXMSGSIZE) and decodes.
M.MAX_MESSAGE = 8 * 1024 * 1024
-- The deepest nesting a decoded message may have.
M.MAX_DEPTH = 64
-- The ZAP domains: one per kind of endpoint, so the handler knows which
-- rules apply to a connection.
M.DOMAIN_REQUEST = "brine-request"
M.DOMAIN_PUBLISH = "brine-publish"
M.DOMAIN_KEY = "brine-key"
-- The prefix of the User-Id given to a connection whose key is not
-- accepted: a control character, which no valid minion id contains.
M.UNAUTHENTICATED = "\1"

---------------------------------------------------------------------------
-- msgpack. brine.msgpack is the codec; until it is part of the build this
-- module carries a small one of its own with the same contract.
-- TODO: drop the built-in codec once brine.msgpack is merged.
---------------------------------------------------------------------------

local builtin = {}

local pack_value

local function pack_array(out, t, n)
  if n < 16 then
    out[#out + 1] = string.char(0x90 + n)
  elseif n < 0x10000 then
    out[#out + 1] = string.pack(">BI2", 0xdc, n)
  else
    out[#out + 1] = string.pack(">BI4", 0xdd, n)
  end
  for i = 1, n do
    pack_value(out, t[i])
  end
end

local function pack_map(out, t)
  local keys = data.keys(t)
  local n = #keys
  if n < 16 then
    out[#out + 1] = string.char(0x80 + n)
  elseif n < 0x10000 then
    out[#out + 1] = string.pack(">BI2", 0xde, n)
  else
    out[#out + 1] = string.pack(">BI4", 0xdf, n)
  end
  for _, k in ipairs(keys) do
    pack_value(out, k)
    pack_value(out, t[k])
  end
end

local function pack_integer(out, v)
  if v >= 0 and v < 128 then
    out[#out + 1] = string.char(v)
  elseif v < 0 and v >= -32 then
    out[#out + 1] = string.pack(">i1", v)
  elseif v >= 0 and v < 0x100000000 then
    out[#out + 1] = string.pack(">BI4", 0xce, v)
  else
    out[#out + 1] = string.pack(">Bi8", 0xd3, v)
  end
end

pack_value = function(out, v)
  local kind = data.kind(v)
  if kind == "null" or v == nil then
    out[#out + 1] = "\xc0"
  elseif kind == "boolean" then
    out[#out + 1] = v and "\xc3" or "\xc2"
  elseif kind == "integer" then
    pack_integer(out, v)
  elseif kind == "float" then
    out[#out + 1] = string.pack(">Bd", 0xcb, v)
  elseif kind == "string" then
    local n = #v
    if n < 32 then
      out[#out + 1] = string.char(0xa0 + n)
    elseif n < 0x10000 then
      out[#out + 1] = string.pack(">BI2", 0xda, n)
    else
      out[#out + 1] = string.pack(">BI4", 0xdb, n)
    end
    out[#out + 1] = v
  elseif kind == "array" then
    pack_array(out, v, #v)
  elseif kind == "map" then
    pack_map(out, v)
  else
    error("msgpack: cannot pack a value of type " .. type(v), 0)
  end
end

function builtin.pack(v)
  local out = {}
  pack_value(out, v)
  return table.concat(out)
end

local unpack_value

local function need(s, pos, n)
  if pos + n - 1 > #s then
    error("msgpack: truncated at byte " .. pos, 0)
  end
end

local function unpack_container(s, pos, n, is_map, depth, limits)
  if depth > limits.max_depth then
    error("msgpack: nested deeper than " .. limits.max_depth, 0)
  end
  if n > #s - pos + 1 then
    error("msgpack: container of " .. n .. " items in a short message", 0)
  end
  local t = is_map and data.map() or data.array()
  for i = 1, n do
    local k, v
    if is_map then
      k, pos = unpack_value(s, pos, depth + 1, limits)
      v, pos = unpack_value(s, pos, depth + 1, limits)
      if type(k) ~= "string" and math.type(k) ~= "integer" then
        error("msgpack: map key of an unsupported type", 0)
      end
      t[k] = v
    else
      t[i], pos = unpack_value(s, pos, depth + 1, limits)
    end
  end
  return t, pos
end

local function unpack_str(s, pos, n)
  need(s, pos, n)
  return s:sub(pos, pos + n - 1), pos + n
end

local fixed = {
  [0xcc] = ">I1", [0xcd] = ">I2", [0xce] = ">I4", [0xcf] = ">I8",
  [0xd0] = ">i1", [0xd1] = ">i2", [0xd2] = ">i4", [0xd3] = ">i8",
  [0xca] = ">f", [0xcb] = ">d",
}
local sizes = { [0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8, [0xd0] = 1,
  [0xd1] = 2, [0xd2] = 4, [0xd3] = 8, [0xca] = 4, [0xcb] = 8 }

unpack_value = function(s, pos, depth, limits)
  need(s, pos, 1)
  local b = s:byte(pos)
  pos = pos + 1
  if b < 0x80 then return b, pos end
  if b >= 0xe0 then return b - 256, pos end
  if b >= 0xa0 and b < 0xc0 then return unpack_str(s, pos, b - 0xa0) end
  if b >= 0x90 and b < 0xa0 then return unpack_container(s, pos, b - 0x90, false, depth, limits) end
  if b >= 0x80 and b < 0x90 then return unpack_container(s, pos, b - 0x80, true, depth, limits) end
  if b == 0xc0 then return data.null, pos end
  if b == 0xc2 then return false, pos end
  if b == 0xc3 then return true, pos end
  if fixed[b] then
    need(s, pos, sizes[b])
    return string.unpack(fixed[b], s, pos)
  end
  local lenfmt = ({ [0xd9] = ">I1", [0xda] = ">I2", [0xdb] = ">I4", [0xc4] = ">I1",
    [0xc5] = ">I2", [0xc6] = ">I4", [0xdc] = ">I2", [0xdd] = ">I4", [0xde] = ">I2",
    [0xdf] = ">I4" })[b]
  if not lenfmt then
    error(string.format("msgpack: unsupported type byte 0x%02x", b), 0)
  end
  need(s, pos, string.packsize(lenfmt))
  local n
  n, pos = string.unpack(lenfmt, s, pos)
  if b == 0xdc or b == 0xdd then return unpack_container(s, pos, n, false, depth, limits) end
  if b == 0xde or b == 0xdf then return unpack_container(s, pos, n, true, depth, limits) end
  return unpack_str(s, pos, n)
end

function builtin.unpack(s, opts)
  local limits = { max_depth = opts and opts.max_depth or 512 }
  if opts and opts.max_size and #s > opts.max_size then
    return nil, "msgpack: message of " .. #s .. " bytes is over the limit"
  end
  local ok, v, pos = pcall(unpack_value, s, 1, 1, limits)
  if not ok then
    return nil, v
  end
  if pos <= #s then
    return nil, "msgpack: " .. (#s - pos + 1) .. " bytes after the value"
  end
  return v
end

local function codec()
  local ok, mp = pcall(require, "brine.msgpack")
  if ok then
    return mp
  end
  return builtin
end

M.msgpack = codec()

--- Packs a message map into bytes.
---@param msg table
---@return string
function M.encode(msg)
  return M.msgpack.pack(msg)
end

--- Decodes bytes into a message: a map whose `cmd` is a short string.
--- Refuses anything else, so callers can read fields without checking.
---@param bytes string
---@return table|nil message
---@return string|nil why it was refused
function M.decode(bytes)
  if type(bytes) ~= "string" then
    return nil, "not a byte string"
  end
  local ok, msg, err = pcall(M.msgpack.unpack, bytes,
    { max_size = M.MAX_MESSAGE, max_depth = M.MAX_DEPTH })
  if not ok then
    return nil, tostring(msg)
  end
  if msg == nil then
    return nil, err
  end
  if data.kind(msg) ~= "map" then
    return nil, "a message must be a map"
  end
  if type(msg.cmd) ~= "string" or #msg.cmd > 32 then
    return nil, "a message needs a 'cmd' string"
  end
  return msg
end

--- Reads a string field no longer than max bytes, or nil.
function M.str(msg, key, max)
  local v = msg[key]
  if type(v) == "string" and #v <= (max or 4096) then
    return v
  end
  return nil
end

---------------------------------------------------------------------------
-- Job ids
---------------------------------------------------------------------------

local last_jid = "0"

--- A new job id in Salt's format (YYYYMMDDhhmmssffffff, UTC), strictly
--- greater than every jid this process made before and than `floor`.
---@param floor string|nil a jid that the new one must exceed
---@return string
function M.new_jid(floor)
  local y, mo, d, h, mi, s, us = posix.now_parts()
  local jid = string.format("%04d%02d%02d%02d%02d%02d%06d", y, mo, d, h, mi, s, us)
  local prev = last_jid
  if floor and floor > prev then
    prev = floor
  end
  if #jid == #prev and jid <= prev then
    -- The clock went back or two jobs share a microsecond: count on from
    -- the last one, keeping the format.
    jid = string.format("%020d", math.tointeger(tonumber(prev:sub(7))) + 1)
    jid = prev:sub(1, 6) .. jid:sub(-14)
  end
  last_jid = jid
  return jid
end

--- True when s looks like a jid.
function M.is_jid(s)
  return type(s) == "string" and #s == 20 and s:match("^%d+$") ~= nil
end

---------------------------------------------------------------------------
-- Sockets
---------------------------------------------------------------------------

--- Options every network socket gets: bounded messages and queues,
--- TCP keepalive and ZeroMQ heartbeats so dead links are noticed.
function M.common_options(sock, opts)
  opts = opts or {}
  assert(sock:setopt("maxmsgsize", M.MAX_MESSAGE))
  assert(sock:setopt("sndhwm", opts.sndhwm or 10000))
  assert(sock:setopt("rcvhwm", opts.rcvhwm or 10000))
  assert(sock:setopt("tcp_keepalive", opts.tcp_keepalive == false and 0 or 1))
  if opts.tcp_keepalive_idle and opts.tcp_keepalive_idle > 0 then
    assert(sock:setopt("tcp_keepalive_idle", opts.tcp_keepalive_idle))
  end
  if opts.tcp_keepalive_cnt and opts.tcp_keepalive_cnt > 0 then
    assert(sock:setopt("tcp_keepalive_cnt", opts.tcp_keepalive_cnt))
  end
  if opts.tcp_keepalive_intvl and opts.tcp_keepalive_intvl > 0 then
    assert(sock:setopt("tcp_keepalive_intvl", opts.tcp_keepalive_intvl))
  end
  assert(sock:setopt("heartbeat_ivl", opts.heartbeat_ivl or 5000))
  assert(sock:setopt("heartbeat_timeout", opts.heartbeat_timeout or 15000))
end

--- Makes sock a CURVE server with the given key pair and ZAP domain.
function M.curve_server(sock, pub, sec, domain)
  assert(sock:setopt("curve_server", 1))
  assert(sock:setopt("curve_publickey", pub))
  assert(sock:setopt("curve_secretkey", sec))
  assert(sock:setopt("zap_domain", domain))
end

--- Makes sock a CURVE client of the server whose public key is given.
function M.curve_client(sock, pub, sec, server_pub)
  assert(sock:setopt("curve_publickey", pub))
  assert(sock:setopt("curve_secretkey", sec))
  assert(sock:setopt("curve_serverkey", server_pub))
end

--- A tcp:// endpoint for a host (an address, maybe IPv6) and port.
function M.endpoint(host, port)
  if host:find(":", 1, true) then
    return string.format("tcp://[%s]:%d", host, port)
  end
  return string.format("tcp://%s:%d", host, port)
end

M._builtin = builtin

return M
