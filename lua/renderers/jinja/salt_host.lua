-- Salt's filters that look at the host or draw random numbers: which,
-- get_uid, is_text_file, is_bin_file, is_empty, list_files, file_hashsum,
-- random_shuffle, random_sample, random_hash, rand_str, gen_mac,
-- mac_str_to_bytes and filter_by_networks.
--
-- They read the machine through brine.fs, brine.sys, brine.proc and
-- brine.crypto. Random results come from the C library's generator or
-- libsodium, so a `seed` argument makes them repeatable within brine but
-- they never equal the numbers Python's Mersenne Twister would draw.
local pyval = require("renderers.jinja.pyval")
-- the IP helpers load when a filter first needs them, as in salt_filters
local function net() return require("renderers.jinja.salt_net") end

local M = {}

local raise, kind, list, null = pyval.raise, pyval.kind, pyval.list, require("brine.data").null

local function path_arg(v, fname)
  local s = pyval.text(v)
  if not s then
    raise("TypeError", fname .. "() expected a path string, got " .. pyval.type_name(v))
  end
  return s
end

local function fs() return require("brine.fs") end

-- The first `n` bytes of a file, or nil when it cannot be read.
local function head(path, n)
  local f = io.open(path, "rb")
  if not f then return nil end
  local block = f:read(n) or ""
  f:close()
  return block
end

-- Share of bytes outside printable ASCII and the usual control characters.
local function nontext_share(block)
  local n = 0
  for i = 1, #block do
    local b = block:byte(i)
    if not ((b >= 32 and b < 127) or b == 10 or b == 13 or b == 9 or b == 12 or b == 8) then
      n = n + 1
    end
  end
  return n / #block
end

local function is_text(path)
  local block = head(path, 512)
  if not block then return false end
  if block:find("\0", 1, true) then return false end
  if block == "" then return true end
  if utf8.len(block) then return true end
  return nontext_share(block) <= 0.30
end

local function is_binary(path)
  local st = fs().stat(path)
  if not st or st.type ~= "file" then return false end
  local block = head(path, 2048)
  if not block or block == "" then return false end
  if not utf8.len(block) then return true end
  if block:find("\0", 1, true) then return true end
  return nontext_share(block) > 0.30
end

local function list_files(dir)
  local out = { dir }
  local function walk(d)
    local names = fs().listdir(d)
    if not names then return end
    for _, name in ipairs(names) do
      local p = d:sub(-1) == "/" and d .. name or d .. "/" .. name
      out[#out + 1] = p
      local st = fs().lstat(p)
      if st and st.type == "directory" then walk(p) end
    end
  end
  walk(dir)
  table.sort(out)
  return list(out)
end

-- A Fisher-Yates shuffle; `seed` makes it repeatable.
local function shuffled(items, seed)
  if seed ~= nil and seed ~= null then
    local n = 0
    for c in pyval.str(seed):gmatch(".") do n = (n * 31 + c:byte()) % 2147483647 end
    math.randomseed(n)
  end
  for i = #items, 2, -1 do
    local j = math.random(i)
    items[i], items[j] = items[j], items[i]
  end
  if seed ~= nil and seed ~= null then math.randomseed() end
  return items
end

-- The addresses among `values` inside any of `networks` (CIDR strings).
local function in_networks(values, networks)
  local nets = {}
  for _, n in ipairs(pyval.iter(networks)) do
    local p = net().parse(pyval.str(n), true)
    if p then nets[#nets + 1] = pyval.str(n) end
  end
  local out = {}
  for _, v in ipairs(pyval.iter(values)) do
    for _, n in ipairs(nets) do
      -- an address is listed once per network holding it, as in Salt
      if net().in_network(pyval.str(v), n) then out[#out + 1] = v end
    end
  end
  return list(out)
end

-- which, get_uid and the file filters.
local function install_files(F, bind)

  F.which = function(_, v)
    local found = require("brine.proc").which(path_arg(v, "which"))
    return found or null
  end

  F.get_uid = function(_, v)
    local sys = require("brine.sys")
    if v == nil or v == null then return sys.euid and sys.euid() or null end
    local pw = sys.getpwnam(path_arg(v, "get_uid"))
    return pw and pw.uid or null
  end

  F.is_text_file = function(_, v) return is_text(path_arg(v, "is_text")) end
  F.is_bin_file = function(_, v) return is_binary(path_arg(v, "is_binary")) end
  F.is_empty = function(_, v)
    local st = fs().stat(path_arg(v, "is_empty"))
    return st ~= nil and st.size == 0
  end
  F.list_files = function(_, v) return list_files(path_arg(v, "list_files")) end

  F.file_hashsum = function(_, v, args, kwargs)
    local a = bind("get_hash", args, kwargs, { "form", "chunk_size" })
    local path = path_arg(v, "get_hash")
    local algo = a[1] ~= nil and a[1] ~= null and pyval.str(a[1]) or "sha256"
    local body, err = fs().read(path)
    if not body then raise("OSError", err or ("cannot read " .. path)) end
    local ok, hex = pcall(require("brine.crypto").hash, algo, body)
    if not ok then raise("ValueError", "Invalid hash type: " .. algo) end
    return hex
  end

end

-- The random filters, MAC helpers and filter_by_networks.
local function install_random(F, bind, lib)
  F.random_shuffle = function(_, v, args, kwargs)
    local a = bind("random_shuffle", args, kwargs, { "seed" })
    return list(shuffled(pyval.iter(v), a[1]))
  end

  F.random_sample = function(_, v, args, kwargs)
    local a = bind("random_sample", args, kwargs, { "size", "seed" })
    local items = shuffled(pyval.iter(v), a[2])
    local size = lib.as_int(a[1])
    if size < 0 or size > #items then
      raise("ValueError", "Sample larger than population or is negative")
    end
    local out = {}
    for i = 1, size do out[i] = items[i] end
    return list(out)
  end

  F.random_hash = function(_, v, args, kwargs)
    local a = bind("random_hash", args, kwargs, { "hash_type" })
    local algo = a[1] ~= nil and a[1] ~= null and pyval.str(a[1]) or "md5"
    local c = require("brine.crypto")
    local bound = (v ~= nil and v ~= null) and v or 9999999999
    local n = math.random(0, lib.as_int(bound))
    return c.hash(algo, tostring(n))
  end
  F.rand_str = F.random_hash

  F.gen_mac = function(_, v)
    local prefix = (v ~= nil and v ~= null) and pyval.str(v) or "AC:DE:48"
    return string.format("%s:%02X:%02X:%02X", prefix, math.random(0, 255), math.random(0, 255),
      math.random(0, 255))
  end

  F.mac_str_to_bytes = function(_, v)
    local s = pyval.str(v)
    local hex = s:gsub("[:%-%.]", "")
    if #hex ~= 12 or hex:find("%X") then raise("ValueError", "Invalid MAC address") end
    return pyval.bytes((hex:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)))
  end

  F.filter_by_networks = function(_, v, args, kwargs)
    local a = bind("filter_by_networks", args, kwargs, { "networks" })
    if a[1] == nil or a[1] == null then return v end
    if kind(v) == "dict" then
      local out = require("brine.data").map()
      for _, k in ipairs(pyval.keys(v)) do out[k] = in_networks(v[k], a[1]) end
      return out
    end
    return in_networks(v, a[1])
  end
end

---Adds the host and random filters to lib.filters.
function M.install(lib)
  install_files(lib.filters, lib.bind)
  install_random(lib.filters, lib.bind, lib)
end

return M
