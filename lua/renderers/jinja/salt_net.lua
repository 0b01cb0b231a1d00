-- IP address parsing and Salt's network filters (is_ip, ipaddr, ipv4,
-- ipv6, ipwrap, network_hosts, network_size, ip_host), following Python's
-- ipaddress module: strict dotted quads (no leading zeros), IPv6 with `::`
-- compression and embedded IPv4, interfaces written ADDRESS/PREFIX, and
-- addresses printed in their canonical (RFC 5952) form.
local pyval = require("renderers.jinja.pyval")

local M = {}

local list = pyval.list
local raise = pyval.raise

-- ---------------------------------------------------------------- parsing

local function parse_v4(s)
  local parts = {}
  for p in (s .. "."):gmatch("([^.]*)%.") do parts[#parts + 1] = p end
  if #parts ~= 4 then return nil end
  local bytes = {}
  for i, p in ipairs(parts) do
    if not p:match("^%d+$") or #p > 3 or (#p > 1 and p:sub(1, 1) == "0") then return nil end
    local n = tonumber(p)
    if n > 255 then return nil end
    bytes[i] = n
  end
  return bytes
end

-- Sixteen bytes of an IPv6 address, or nil.
local function parse_v6(s)
  if s:find("%%") then s = s:match("^([^%%]*)%%") end
  if s == "" or s:find(":::") then return nil end
  local head, tail = s, nil
  local dc = s:find("::", 1, true)
  if dc then
    head, tail = s:sub(1, dc - 1), s:sub(dc + 2)
    if tail:find("::", 1, true) then return nil end
  end
  local function groups(part)
    local out = {}
    if part == "" then return out end
    local items = {}
    for g in (part .. ":"):gmatch("([^:]*):") do items[#items + 1] = g end
    for i, g in ipairs(items) do
      if i == #items and g:find("%.") then
        local v4 = parse_v4(g)
        if not v4 then return nil end
        out[#out + 1] = v4[1] * 256 + v4[2]
        out[#out + 1] = v4[3] * 256 + v4[4]
      else
        if not g:match("^%x%x?%x?%x?$") then return nil end
        out[#out + 1] = tonumber(g, 16)
      end
    end
    return out
  end
  local h, t = groups(head), groups(tail or "")
  if not h or not t then return nil end
  local n = #h + #t
  if (dc and n > 7) or (not dc and n ~= 8) then return nil end
  local all = {}
  for _, g in ipairs(h) do all[#all + 1] = g end
  for _ = 1, 8 - n do all[#all + 1] = 0 end
  for _, g in ipairs(t) do all[#all + 1] = g end
  local bytes = {}
  for i, g in ipairs(all) do
    bytes[2 * i - 1] = g // 256
    bytes[2 * i] = g % 256
  end
  return bytes
end

local function v4_text(b)
  return string.format("%d.%d.%d.%d", b[1], b[2], b[3], b[4])
end

local function v6_text(b)
  local g = {}
  for i = 1, 8 do g[i] = b[2 * i - 1] * 256 + b[2 * i] end
  local best_s, best_n, cur_s, cur_n = nil, 0, nil, 0
  for i = 1, 8 do
    if g[i] == 0 then
      if not cur_s then cur_s, cur_n = i, 0 end
      cur_n = cur_n + 1
      if cur_n > best_n then best_s, best_n = cur_s, cur_n end
    else
      cur_s = nil
    end
  end
  local hex = {}
  for i = 1, 8 do hex[i] = string.format("%x", g[i]) end
  if best_n < 2 then return table.concat(hex, ":") end
  local left = table.concat(hex, ":", 1, best_s - 1)
  local right = table.concat(hex, ":", best_s + best_n, 8)
  return left .. "::" .. right
end

---Parses an address or interface ("10.0.0.1", "10.1.2.3/24", "::1").
---@return table|nil {version=4|6, bytes=, prefix=, iface=bool}
function M.parse(s, allow_iface)
  if type(s) ~= "string" then return nil end
  local addr, prefix = s, nil
  local slash = s:find("/", 1, true)
  if slash then
    if not allow_iface then return nil end
    addr, prefix = s:sub(1, slash - 1), s:sub(slash + 1)
  end
  local version, bytes = 4, parse_v4(addr)
  local scope
  if not bytes then
    version, bytes = 6, parse_v6(addr)
    scope = addr:match("%%(.+)$")
  end
  if not bytes then return nil end
  local bits = version == 4 and 32 or 128
  local plen = bits
  if prefix then
    if prefix:match("^%d+$") then
      plen = tonumber(prefix)
    elseif version == 4 then
      local mask = parse_v4(prefix)
      if not mask then return nil end
      plen = 0
      for _, byte in ipairs(mask) do
        for bit = 7, 0, -1 do
          if byte & (1 << bit) ~= 0 then plen = plen + 1 end
        end
      end
    else
      return nil
    end
    if plen > bits then return nil end
  end
  return { version = version, bytes = bytes, prefix = plen, iface = prefix ~= nil, scope = scope }
end

local function addr_text(ip)
  if ip.version == 4 then return v4_text(ip.bytes) end
  return v6_text(ip.bytes) .. (ip.scope and ("%" .. ip.scope) or "")
end

---The address as Python's ipaddress prints it (with /prefix for an
---interface).
function M.text(ip)
  local s = addr_text(ip)
  if ip.iface then s = s .. "/" .. ip.prefix end
  return s
end

-- ---------------------------------------------------------------- properties

local function in_net(ip, net_text)
  local net = M.parse(net_text, true)
  if net.version ~= ip.version then return false end
  local full, rem = net.prefix // 8, net.prefix % 8
  for i = 1, full do
    if ip.bytes[i] ~= net.bytes[i] then return false end
  end
  if rem > 0 then
    local mask = (0xFF << (8 - rem)) & 0xFF
    if ip.bytes[full + 1] & mask ~= net.bytes[full + 1] & mask then return false end
  end
  return true
end

---Whether address text `addr` lies in network text `net_text`.
function M.in_network(addr, net_text)
  local ip = M.parse(addr, true)
  if not ip or not M.parse(net_text, true) then return false end
  return in_net(ip, net_text)
end

local function in_any(ip, nets)
  for _, n in ipairs(nets) do
    if in_net(ip, n) then return true end
  end
  return false
end

local PRIVATE4 = { "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
  "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
  "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32" }
local PRIVATE6 = { "::1/128", "::/128", "::ffff:0:0/96", "100::/64", "2001::/23",
  "2001:2::/48", "2001:db8::/32", "2001:10::/28", "fc00::/7", "fe80::/10" }
local RESERVED6 = { "::/8", "100::/8", "200::/7", "400::/6", "800::/5", "1000::/4", "4000::/3",
  "6000::/3", "8000::/3", "a000::/3", "c000::/3", "e000::/4", "f000::/5", "f800::/6",
  "fe00::/9" }

local PROPS = {
  ["private"] = function(ip) return in_any(ip, ip.version == 4 and PRIVATE4 or PRIVATE6) end,
  ["loopback"] = function(ip) return in_net(ip, ip.version == 4 and "127.0.0.0/8" or "::1/128") end,
  ["multicast"] = function(ip)
    return in_net(ip, ip.version == 4 and "224.0.0.0/4" or "ff00::/8")
  end,
  ["link-local"] = function(ip)
    return in_net(ip, ip.version == 4 and "169.254.0.0/16" or "fe80::/10")
  end,
  ["site-local"] = function(ip) return ip.version == 6 and in_net(ip, "fec0::/10") end,
  ["reserved"] = function(ip)
    if ip.version == 4 then return in_net(ip, "240.0.0.0/4") end
    return in_any(ip, RESERVED6)
  end,
  ["unspecified"] = function(ip)
    for _, b in ipairs(ip.bytes) do if b ~= 0 then return false end end
    return true
  end,
}
PROPS["global"] = function(ip)
  if ip.version == 4 and in_net(ip, "100.64.0.0/10") then return false end
  return not PROPS.private(ip)
end
PROPS["public"] = function(ip) return not PROPS.private(ip) end

-- Salt's _is_ipv: the canonical text when s is an address (or interface)
-- of that version passing every named option, else nil.
local function is_ipv(s, version, options)
  local ip = M.parse(s, true)
  if not ip or ip.version ~= version then return nil end
  if options ~= nil and options ~= require("brine.data").null and options ~= "" then
    for opt in tostring(options):gmatch("[^,]+") do
      local f = PROPS[opt:match("^%s*(.-)%s*$")]
      if f and not f(ip) then return nil end
    end
  end
  return M.text(ip)
end

local function is_seq(v)
  local k = pyval.kind(v)
  return k == "list" or k == "tuple"
end

local function ipv_filter(value, version, options)
  if type(value) == "string" then return is_ipv(value, version, options) end
  if is_seq(value) then
    local out = {}
    for _, a in ipairs(value) do
      local r = is_ipv(a, version, options)
      if r ~= nil then out[#out + 1] = r end
    end
    return list(out)
  end
  return nil
end

function M.ipv4(value, options) return ipv_filter(value, 4, options) end
function M.ipv6(value, options) return ipv_filter(value, 6, options) end

function M.ipaddr(value, options)
  local a, b = M.ipv4(value, options), M.ipv6(value, options)
  if a == nil or b == nil then return a or b end
  local out = {}
  for _, x in ipairs(a) do out[#out + 1] = x end
  for _, x in ipairs(b) do out[#out + 1] = x end
  return list(out)
end

function M.is_ip(value, options)
  return is_ipv(value, 4, options) ~= nil or is_ipv(value, 6, options) ~= nil
end
function M.is_ipv4(value, options) return is_ipv(value, 4, options) ~= nil end
function M.is_ipv6(value, options) return is_ipv(value, 6, options) ~= nil end

local function filter_ipaddr(value, options, version)
  local out
  if version == 4 then out = M.ipv4(value, options)
  elseif version == 6 then out = M.ipv6(value, options)
  else out = M.ipaddr(value, options) end
  if out == nil or (type(out) == "table" and #out == 0) then return nil end
  if type(out) ~= "table" then out = { out } end
  return out
end

local function apply(value, options, version, fn)
  local addrs = filter_ipaddr(value, options, version)
  if not addrs then return nil end
  if not is_seq(value) then return fn(addrs[1]) end
  local out = {}
  for i, a in ipairs(addrs) do out[i] = fn(a) end
  return list(out)
end

-- The network of an interface text, as a parsed address with host bits
-- cleared.
local function network_of(s)
  local ip = M.parse(s, true)
  local bytes = {}
  local full, rem = ip.prefix // 8, ip.prefix % 8
  for i = 1, #ip.bytes do
    if i <= full then bytes[i] = ip.bytes[i]
    elseif i == full + 1 and rem > 0 then bytes[i] = ip.bytes[i] & ((0xFF << (8 - rem)) & 0xFF)
    else bytes[i] = 0 end
  end
  return { version = ip.version, bytes = bytes, prefix = ip.prefix }
end

local function num_addresses(net)
  local bits = (net.version == 4 and 32 or 128) - net.prefix
  return pyval.pow(2, bits)
end

local MAX_HOSTS = 1 << 20

local function hosts(s)
  local net = network_of(s)
  local bits = (net.version == 4 and 32 or 128) - net.prefix
  if bits > 20 then
    raise("OverflowError", "network " .. s .. " has too many hosts to list")
  end
  local count = 1 << bits
  local out = {}
  local first, last = 0, count - 1
  if net.version == 4 and bits >= 2 then first, last = 1, count - 2 end
  if net.version == 6 and bits >= 1 then first = 1 end
  local nb = #net.bytes
  for n = first, last do
    local b = {}
    for i = 1, nb do b[i] = net.bytes[i] end
    local carry, i = n, nb
    while carry > 0 and i >= 1 do
      local sum = b[i] + (carry & 0xFF)
      b[i] = sum & 0xFF
      carry = (carry >> 8) + (sum >> 8)
      i = i - 1
    end
    out[#out + 1] = addr_text({ version = net.version, bytes = b })
  end
  assert(#out <= MAX_HOSTS)
  return list(out)
end

function M.network_hosts(value, options, version)
  return apply(value, options, version, hosts)
end

function M.network_size(value, options, version)
  return apply(value, options, version, function(a) return num_addresses(network_of(a)) end)
end

function M.ip_host(value, options, version)
  return apply(value, options, version, function(a)
    local ip = M.parse(a, true)
    ip.iface = true
    return M.text(ip)
  end)
end

function M.ipwrap(ip)
  local function wrap(s)
    local p = type(s) == "string" and M.parse(s, false)
    if p and p.version == 6 then return "[" .. s .. "]" end
    return s
  end
  if is_seq(ip) then
    local out = {}
    for i, s in ipairs(ip) do out[i] = wrap(s) end
    return list(out)
  end
  return wrap(ip)
end

return M
