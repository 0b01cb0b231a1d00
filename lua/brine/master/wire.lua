-- The wire shared by the master, the minion and local clients: how a
-- message becomes bytes and back (msgpack, bounded), the checks every
-- received message passes before any code looks at its fields, Salt's
-- job ids, and the CURVE settings of each kind of socket. docs/protocol.md
-- describes the messages themselves.
local data = require("brine.data")
local posix = require("brine.posix")
local msgpack = require("brine.msgpack")

local M = {}

-- The largest message any socket accepts (ZMQ_MAXMSGSIZE) and decodes.
M.MAX_MESSAGE = 8 * 1024 * 1024
-- The deepest nesting a decoded message may have.
M.MAX_DEPTH = 64
-- The ZAP domains: one per kind of endpoint, so the handler knows which
-- rules apply to a connection.
M.DOMAIN_REQUEST = "brine-request"
M.DOMAIN_PUBLISH = "brine-publish"

-- The codec: brine.msgpack (engine/src/msgpack.c), bounded on unpack.
M.msgpack = msgpack

--- Packs a message map into bytes; raises when a value cannot be packed
--- (a function, a cycle).
---@param msg table
---@return string
function M.encode(msg)
  local bytes, err = msgpack.pack(msg)
  if not bytes then
    error("msgpack: " .. tostring(err), 0)
  end
  return bytes
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

return M
