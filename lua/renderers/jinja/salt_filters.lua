-- Salt's own Jinja filters (salt.utils.jinja, salt.utils.data,
-- salt.utils.stringutils, salt.utils.network, salt.utils.hashutils and the
-- SerializerExtension), in brine's value model.
--
-- M.install(lib) adds them to lib.filters, where lib is the filter library
-- (renderers.jinja.filters), whose helpers (bind, text, plain, pformat,
-- attrgetter) they use. Salt returns sets for some inputs and iterators
-- from the itertools filters; these return lists in a stable order.
local data = require("brine.data")
local pyval = require("renderers.jinja.pyval")
local methods = require("renderers.jinja.py_methods")
-- The regex engine and the IP helpers load when a filter first needs them:
-- most renders use neither, and loading them costs a first render time.
local function lazy(name)
  return setmetatable({}, { __index = function(t, k)
    local mod = require(name)
    setmetatable(t, { __index = mod })
    return mod[k]
  end })
end
local re = lazy("renderers.jinja.py_re")
local net = lazy("renderers.jinja.salt_net")

local M = {}

local null = data.null
local raise, str, kind = pyval.raise, pyval.str, pyval.kind
local truthy, eq, list, tuple = pyval.truthy, pyval.eq, pyval.list, pyval.tuple
local concat = table.concat

local function opt(v, default)
  if v == nil then return default end
  return v
end

local function flag(v) return v ~= nil and v ~= null and truthy(v) end

local function want_text(v, fname)
  local s = pyval.text(v)
  if s then return s end
  if kind(v) == "bytes" then return v.s end
  if pyval.is_undefined(v) then pyval.fail_undefined(v) end
  raise("TypeError", string.format("%s expected str, bytes or bytearray, got %s",
    fname or "argument", pyval.type_name(v)))
end

local function contains(t, v)
  for _, x in ipairs(t) do
    if eq(x, v) then return true end
  end
  return false
end

local function unique_list(items)
  local out = {}
  for _, v in ipairs(items) do
    if not contains(out, v) then out[#out + 1] = v end
  end
  return list(out)
end

-- ---------------------------------------------------------------- glob

---fnmatch-style glob (case-sensitive, as on POSIX) compiled to a regex.
local function glob_regex(pat)
  local out, i, n = {}, 1, #pat
  while i <= n do
    local c = pat:sub(i, i)
    if c == "*" then out[#out + 1] = ".*"
    elseif c == "?" then out[#out + 1] = "."
    elseif c == "[" then
      local j = i + 1
      if pat:sub(j, j) == "!" then j = j + 1 end
      if pat:sub(j, j) == "]" then j = j + 1 end
      while j <= n and pat:sub(j, j) ~= "]" do j = j + 1 end
      if j > n then
        out[#out + 1] = "\\["
      else
        local stuff = pat:sub(i + 1, j - 1):gsub("\\", "\\\\")
        if stuff:sub(1, 1) == "!" then stuff = "^" .. stuff:sub(2) end
        out[#out + 1] = "[" .. stuff .. "]"
        i = j
      end
    else
      out[#out + 1] = re.escape(c)
    end
    i = i + 1
  end
  return "(?s:" .. concat(out) .. ")\\Z"
end

function M.fnmatch(name, pat)
  return re.match(glob_regex(pat), name) ~= nil
end

-- Salt's expr_match: a glob, else an anchored regular expression.
local function expr_match(line, expr)
  if M.fnmatch(line, expr) then return true end
  local ok, m = pcall(re.match, "\\A" .. expr .. "\\Z", line)
  return ok and m ~= nil
end

-- ---------------------------------------------------------------- paths

---POSIX normpath.
local function normpath(p)
  if p == "" then return "." end
  local lead = p:match("^/+") or ""
  if #lead > 2 or #lead == 0 then lead = lead:sub(1, 1) end
  local parts = {}
  for comp in p:gmatch("[^/]+") do
    -- "." is dropped; ".." pops a component, and stays put at the root
    if comp == ".." and #parts > 0 and (lead ~= "" or parts[#parts] ~= "..") then
      parts[#parts] = nil
    elseif comp ~= "." and not (comp == ".." and lead ~= "") then
      parts[#parts + 1] = comp
    end
  end
  local s = lead .. concat(parts, "/")
  return s == "" and "." or s
end
M.normpath = normpath

local function path_join(parts)
  if #parts == 0 then return "" end
  local norm = {}
  for i, p in ipairs(parts) do norm[i] = normpath(want_text(p, "path_join")) end
  local ret = norm[1]
  for i = 2, #norm do
    local part = norm[i]:gsub("^/+", "")
    if ret == "" or ret:sub(-1) == "/" then ret = ret .. part else ret = ret .. "/" .. part end
  end
  return normpath(ret)
end

-- ---------------------------------------------------------------- encoding

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function crypto()
  return require("brine.crypto")
end

local function b64encode(s)
  local c = crypto()
  if c.base64_encode then return c.base64_encode(s) end
  local out = {}
  for i = 1, #s, 3 do
    local a, b, d = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (d or 0)
    local chunk = {}
    for k = 3, 0, -1 do
      local idx = (n >> (6 * k)) & 63
      chunk[#chunk + 1] = B64:sub(idx + 1, idx + 1)
    end
    if not b then chunk[3], chunk[4] = "=", "=" elseif not d then chunk[4] = "=" end
    out[#out + 1] = concat(chunk)
  end
  return concat(out)
end

local function b64decode(s)
  local c = crypto()
  if c.base64_decode then
    local r, err = c.base64_decode(s)
    if r == nil then raise("binascii.Error", err or "Incorrect padding") end
    return r
  end
  s = s:gsub("[^%w%+/=]", "")
  if #s % 4 ~= 0 then raise("binascii.Error", "Incorrect padding") end
  local out = {}
  for i = 1, #s, 4 do
    local n, pad = 0, 0
    for k = 0, 3 do
      local ch = s:sub(i + k, i + k)
      local v = B64:find(ch, 1, true)
      if ch == "=" then pad = pad + 1; v = 1 end
      n = (n << 6) | (v - 1)
    end
    local bytes = string.char((n >> 16) & 255, (n >> 8) & 255, n & 255)
    out[#out + 1] = bytes:sub(1, 3 - pad)
  end
  return concat(out)
end

local function hex_to_bytes(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

local function hash_hex(algo, s)
  return crypto().hash(algo, s)
end

-- ---------------------------------------------------------------- yaml/json

local function yaml_dump(v, flow)
  local yaml = require("brine.yaml")
  local plain = require("renderers.jinja.filters").plain(v)
  local s = yaml.dump(plain, { flow = flow, sort_keys = true })
  s = methods.strip(s)
  if s:sub(-4) == "\n..." then s = s:sub(1, -5) end
  return s
end

local YAML_ESC = {
  ["\0"] = "0", ["\a"] = "a", ["\b"] = "b", ["\t"] = "t", ["\n"] = "n", ["\v"] = "v",
  ["\f"] = "f", ["\r"] = "r", ["\27"] = "e", ['"'] = '"', ["\\"] = "\\",
}

---PyYAML's double-quoted scalar (allow_unicode off, no line folding).
function M.yaml_dquote(s)
  local out = {}
  for _, ch in ipairs(pyval.chars(s)) do
    local b = ch:byte()
    if YAML_ESC[ch] then
      out[#out + 1] = "\\" .. YAML_ESC[ch]
    elseif #ch == 1 and b >= 0x20 and b <= 0x7E then
      out[#out + 1] = ch
    else
      local cp = utf8.codepoint(ch)
      if cp == 0x85 then out[#out + 1] = "\\N"
      elseif cp == 0xA0 then out[#out + 1] = "\\_"
      elseif cp == 0x2028 then out[#out + 1] = "\\L"
      elseif cp == 0x2029 then out[#out + 1] = "\\P"
      elseif cp <= 0xFF then out[#out + 1] = string.format("\\x%02X", cp)
      elseif cp <= 0xFFFF then out[#out + 1] = string.format("\\u%04X", cp)
      else out[#out + 1] = string.format("\\U%08X", cp) end
    end
  end
  return '"' .. concat(out) .. '"'
end

---PyYAML's single-quoted scalar: quotes doubled, and a run of newlines
---written with one more newline (YAML folds a single one into a space).
function M.yaml_squote(s)
  s = s:gsub("'", "''"):gsub("\n+", function(run) return "\n" .. run end)
  return "'" .. s .. "'"
end

local function yaml_float(x)
  if x ~= x then return ".nan" end
  if x == math.huge then return ".inf" end
  if x == -math.huge then return "-.inf" end
  local r = pyval.float_repr(x):lower()
  if not r:find(".", 1, true) and r:find("e") then r = r:gsub("e", ".0e", 1) end
  return r
end

local function yaml_encode(v)
  local k = kind(v)
  if k == "none" then return "null" end
  if k == "bool" then return v and "true" or "false" end
  if k == "int" or k == "bigint" then return tostring(v) end
  if k == "float" then return yaml_float(v) end
  if k == "str" or k == "markup" then return M.yaml_dquote(pyval.text(v)) end
  local cls = ({ list = "list", tuple = "tuple", dict = "dict" })[k] or pyval.type_name(v)
  raise("TypeError", "yaml_encode() only works with YAML scalar data; failed for <class '"
    .. cls .. "'>")
end

-- ---------------------------------------------------------------- data

local function is_iter(v)
  local k = kind(v)
  return k == "list" or k == "tuple" or k == "dict" or k == "bytes"
    or (k == "object" and v.iter ~= nil)
end

local function flatten(v, levels, preserve_nulls, seen)
  if seen[v] then raise("RecursionError", "Reference cycle detected. Check input list.") end
  seen[v] = true
  local out = {}
  for _, el in ipairs(pyval.iter(v)) do
    local dropped = not preserve_nulls and (el == null or el == "None" or el == "null")
    if not dropped then
      if is_iter(el) and (levels == nil or levels >= 1) then
        for _, x in ipairs(flatten(el, levels and levels - 1, preserve_nulls, seen)) do
          out[#out + 1] = x
        end
      else
        out[#out + 1] = el
      end
    end
  end
  return list(out)
end

-- Salt's traverse_dict_and_list.
local function traverse(v, key, default, delim)
  for _, each in ipairs(methods.split(key, delim)) do
    local k = kind(v)
    if k == "list" then
      local idx = tonumber(each)
      if idx and math.type(idx) == "integer" then
        local n = #v
        if idx < 0 then idx = idx + n end
        if idx < 0 or idx >= n then return default end
        v = v[idx + 1]
      else
        local found = false
        for _, emb in ipairs(v) do
          if kind(emb) == "dict" and emb[each] ~= nil then
            v = emb[each]
            found = true
            break
          end
        end
        if not found then return default end
      end
    elseif k == "dict" then
      local nv = v[each]
      if nv == nil then return default end
      v = nv
    else
      return default
    end
  end
  return v
end

local function dict_rpartition(d, keys, delim)
  if keys:find(delim, 1, true) then
    local parts = methods.rsplit(keys, delim, 1)
    local ptr = d
    for _, k in ipairs(methods.split(parts[1], delim)) do
      if ptr[k] == nil or kind(ptr[k]) ~= "dict" then ptr[k] = data.map() end
      ptr = ptr[k]
    end
    return ptr, parts[2]
  end
  return d, keys
end

local function python_type(v)
  return "<class '" .. pyval.type_name(v) .. "'>"
end

-- ---------------------------------------------------------------- strings

local function camel_to_snake(s)
  local cs = pyval.chars(s)
  if #cs == 0 then return "" end
  local out = { methods.lower(cs[1]) }
  for i = 2, #cs do
    local ch = cs[i]
    if methods.is_upper_char(ch) then
      if methods.is_lower_char(cs[i - 1]) or (i ~= #cs and methods.is_lower_char(cs[i + 1])) then
        out[#out + 1] = "_"
      end
    end
    out[#out + 1] = methods.lower(ch)
  end
  return concat(out)
end

local function snake_to_camel(s, upper)
  local words = methods.split(s, "_")
  if upper then words[1] = methods.capitalize(words[1]) end
  for i = 2, #words do words[i] = methods.capitalize(words[i]) end
  return concat(words)
end

local function human_to_bytes(size, default_unit, handle_metric)
  local s = methods.strip(str(size))
  local value, unit = s:match("^([%d%.]*)%s*(.-)$")
  unit = unit:lower()
  if unit == "" then unit = default_unit:lower() end
  local num = tonumber(value)
  if not value:match("^%d*%.?%d*$") or num == nil then return 0 end
  local power = ("bkmgtpezy"):find(unit:sub(1, 1), 1, true)
  if not power then return 0 end
  power = power - 1
  local base = 1024
  if handle_metric and unit:sub(-1) == "b" and #unit == 2 then base = 1000 end
  local r = pyval.mul(num, pyval.pow(base, power))
  if math.type(r) == "float" then r = math.tointeger(r // 1) or r end
  return r
end

local function shell_quote(s)
  if s == "" then return "''" end
  if not s:find("[^%w@%%%+=:,%./%-_]") then return s end
  return "'" .. s:gsub("'", "'\"'\"'") .. "'"
end

local function to_num(v)
  local s = pyval.text(v)
  if not s then
    if kind(v) == "int" or kind(v) == "float" then return v end
    return v
  end
  local lib = require("renderers.jinja.filters")
  local i = lib.parse_int(s, 10)
  if i ~= nil then return i end
  local f = lib.parse_float(s)
  if f ~= nil then return f end
  return v
end

-- Unix timestamps to text in local time, as datetime.fromtimestamp().strftime().
local function strftime(v, fmt)
  fmt = fmt or "%Y-%m-%d"
  local t
  local k = kind(v)
  if v == nil or v == null then
    t = os.time()
  elseif k == "int" or k == "float" then
    t = v
  elseif k == "str" then
    if v:match("^%d+$") then t = tonumber(v)
    else
      t = require("renderers.jinja.filters").parse_float(v)
      if not t then
        raise("RuntimeError", "Unable to parse " .. v .. ". Consider installing timelib")
      end
    end
  else
    raise("RuntimeError", "Unable to parse " .. str(v) .. ". Consider installing timelib")
  end
  local secs = math.floor(t)
  local micro = math.floor((t - secs) * 1e6 + 0.5)
  fmt = fmt:gsub("%%%%", "\1"):gsub("%%f", string.format("%06d", micro)):gsub("\1", "%%%%")
  local ok, out = pcall(os.date, fmt, math.tointeger(secs))
  if not ok then raise("ValueError", "Invalid format string " .. pyval.repr(fmt)) end
  return out
end

local function uuid5(name)
  local ns = hex_to_bytes(("91633EBF-1C86-5E33-935A-28061F4B480E"):gsub("-", ""))
  local h = hex_to_bytes(hash_hex("sha1", ns .. name)):sub(1, 16)
  local b = { h:byte(1, 16) }
  b[7] = (b[7] & 0x0F) | 0x50
  b[9] = (b[9] & 0x3F) | 0x80
  local hex = {}
  for i = 1, 16 do hex[i] = string.format("%02x", b[i]) end
  local x = concat(hex)
  return x:sub(1, 8) .. "-" .. x:sub(9, 12) .. "-" .. x:sub(13, 16) .. "-" .. x:sub(17, 20)
    .. "-" .. x:sub(21)
end

-- ---------------------------------------------------------------- itertools

local function combos(pool, r, replace)
  local out, idx = {}, {}
  local n = #pool
  if r > n and not replace then return list() end
  if n == 0 and r > 0 then return list() end
  local function rec(start, depth)
    if depth > r then
      local t = {}
      for i = 1, r do t[i] = pool[idx[i]] end
      out[#out + 1] = tuple(t)
      return
    end
    for i = start, n do
      idx[depth] = i
      rec(replace and i or i + 1, depth + 1)
    end
  end
  rec(1, 1)
  return list(out)
end

local function permutations(pool, r)
  local n = #pool
  local out, used, cur = {}, {}, {}
  if r > n then return list() end
  local function rec(depth)
    if depth > r then
      local t = {}
      for i = 1, r do t[i] = pool[cur[i]] end
      out[#out + 1] = tuple(t)
      return
    end
    for i = 1, n do
      if not used[i] then
        used[i], cur[depth] = true, i
        rec(depth + 1)
        used[i] = false
      end
    end
  end
  rec(1)
  return list(out)
end

local function product(pools)
  local out = { {} }
  for _, pool in ipairs(pools) do
    local nxt = {}
    for _, prefix in ipairs(out) do
      for _, item in ipairs(pool) do
        local t = { table.unpack(prefix) }
        t[#t + 1] = item
        nxt[#nxt + 1] = t
      end
    end
    out = nxt
  end
  for i, t in ipairs(out) do out[i] = tuple(t) end
  return list(out)
end

-- ---------------------------------------------------------------- install

-- Set by M.install: the library's argument binder and text helper.
local bind, text

local function iter(v) return pyval.iter(v) end



-- To_bool, sequence, is_list, is_iter, skip, traverse, json_query, quote.
local function install_basic(F)
  F.to_bool = function(_, v)
    local k = kind(v)
    if k == "none" or k == "undefined" then return false end
    if k == "bool" then return v end
    if k == "str" or k == "markup" then
      local l = methods.lower(pyval.text(v))
      return l == "yes" or l == "1" or l == "true"
    end
    if k == "int" or k == "bigint" then return pyval.compare(v, 0) > 0 end
    if k == "list" or k == "dict" then return pyval.len(v) > 0 end
    return false
  end

  F.sequence = function(_, v)
    local k = kind(v)
    if k == "list" or k == "tuple" or k == "dict" then return v end
    return list({ v })
  end

  F.is_list = function(_, v) return kind(v) == "list" end
  F.is_iter = function(_, v) return is_iter(v) end
  F.skip = function() return "" end

  F.traverse = function(_, v, args, kwargs)
    local a = bind("traverse_dict_and_list", args, kwargs, { "key", "default", "delimiter" })
    return traverse(v, text(a[1]), opt(a[2], null), a[3] and text(a[3]) or ":")
  end

  F.json_query = function(_, v, args, kwargs)
    local a = bind("json_query", args, kwargs, { "expr" })
    return require("renderers.jinja.salt_jmespath").search(text(a[1]), v)
  end

  F.quote = function(_, v) return shell_quote(text(v)) end
end

-- The regex filters and uuid.
local function install_regex(F)
  local function re_flags(a, i)
    return { ignorecase = flag(a[i]), multiline = flag(a[i + 1]) }
  end

  local function groups_tuple(m)
    local g = m:groups()
    for i = 1, #g do if g[i] == false then g[i] = null end end
    return tuple(g)
  end

  F.regex_match = function(_, v, args, kwargs)
    local a = bind("regex_match", args, kwargs, { "rgx", "ignorecase", "multiline" })
    local m = re.match(text(a[1]), text(v), re_flags(a, 2))
    return m and groups_tuple(m) or null
  end
  F.regex_search = function(_, v, args, kwargs)
    local a = bind("regex_search", args, kwargs, { "rgx", "ignorecase", "multiline" })
    local m = re.search(text(a[1]), text(v), re_flags(a, 2))
    return m and groups_tuple(m) or null
  end
  F.regex_replace = function(_, v, args, kwargs)
    local a = bind("regex_replace", args, kwargs, { "rgx", "val", "ignorecase", "multiline" })
    return (re.sub(text(a[1]), text(a[2]), text(v), re_flags(a, 3)))
  end
  F.regex_escape = function(_, v) return re.escape(text(v)) end

  F.uuid = function(_, v) return uuid5(str(v)) end
end

-- Avg, the set filters, flatten and YAML scalar quoting.
local function install_lists(F, lib)
  F.avg = function(_, v)
    local k = kind(v)
    if k == "list" or k == "dict" then
      local items = iter(v)
      local total = 0
      for _, x in ipairs(items) do total = pyval.add(total, x) end
      return pyval.truediv(total, #items) * 1.0
    end
    return lib.to_float(v)
  end

  local function two_lists(a, b)
    return iter(a), iter(b)
  end

  F.union = function(_, v, args)
    local x, y = two_lists(v, args[1])
    for _, e in ipairs(y) do x[#x + 1] = e end
    return unique_list(x)
  end
  F.intersect = function(_, v, args)
    local x, y = two_lists(v, args[1])
    local out = {}
    for _, e in ipairs(x) do if contains(y, e) then out[#out + 1] = e end end
    return unique_list(out)
  end
  F.difference = function(_, v, args)
    local x, y = two_lists(v, args[1])
    local out = {}
    for _, e in ipairs(x) do if not contains(y, e) then out[#out + 1] = e end end
    return unique_list(out)
  end
  F.symmetric_difference = function(env, v, args)
    local u = F.union(env, v, args)
    local i = F.intersect(env, v, args)
    local out = {}
    for _, e in ipairs(u) do if not contains(i, e) then out[#out + 1] = e end end
    return unique_list(out)
  end

  F.flatten = function(_, v, args, kwargs)
    local a = bind("flatten", args, kwargs, { "levels", "preserve_nulls" })
    local levels = a[1]
    if levels == null then levels = nil end
    return flatten(v, levels and lib.as_int(levels), flag(a[2]), {})
  end

  F.yaml_encode = function(_, v) return yaml_encode(v) end
  F.yaml_dquote = function(_, v) return M.yaml_dquote(str(v)) end
  F.yaml_squote = function(_, v) return M.yaml_squote(str(v)) end
end

-- Dates, numbers, bytes, hashes, base64 and HMAC.
local function install_encoding(F)
  F.strftime = function(_, v, args, kwargs)
    local a = bind("strftime", args, kwargs, { "format" })
    return strftime(v, a[1] ~= nil and a[1] ~= null and text(a[1]) or nil)
  end
  F.date_format = F.strftime

  F.to_num = function(_, v) return to_num(v) end
  F.str_to_num = F.to_num
  F.to_bytes = function(_, v) return pyval.bytes(want_text(v, "to_bytes")) end

  for _, algo in ipairs({ "md5", "sha1", "sha256", "sha512" }) do
    F[algo] = function(_, v) return hash_hex(algo, want_text(v, algo)) end
  end
  F.base64_encode = function(_, v) return b64encode(want_text(v, "base64_encode")) end
  F.base64_decode = function(_, v)
    local r = b64decode(want_text(v, "base64_decode"))
    if utf8.len(r) then return r end
    return pyval.bytes(r)
  end
  F.hmac_compute = function(_, v, args, kwargs)
    local a = bind("hmac_compute", args, kwargs, { "shared_secret" })
    return crypto().hmac("sha256", want_text(a[1]), want_text(v))
  end
  F.hmac = function(_, v, args, kwargs)
    local a = bind("hmac_signature", args, kwargs, { "shared_secret", "challenge_hmac" })
    local mac = crypto().hmac("sha256", want_text(a[1]), want_text(v))
    return b64encode(hex_to_bytes(mac)) == want_text(a[2])
  end
end

-- The IP address filters.
local function install_network(F)
  F.is_ip = function(_, v, args, kwargs)
    local a = bind("is_ip_filter", args, kwargs, { "options" })
    return net.is_ip(v, a[1])
  end
  F.is_ipv4 = function(_, v, args, kwargs)
    local a = bind("is_ipv4_filter", args, kwargs, { "options" })
    return net.is_ipv4(v, a[1])
  end
  F.is_ipv6 = function(_, v, args, kwargs)
    local a = bind("is_ipv6_filter", args, kwargs, { "options" })
    return net.is_ipv6(v, a[1])
  end
  for _, name in ipairs({ "ipaddr", "ipv4", "ipv6" }) do
    F[name] = function(_, v, args, kwargs)
      local a = bind(name, args, kwargs, { "options" })
      return opt(net[name](v, a[1]), null)
    end
  end
  for _, name in ipairs({ "network_hosts", "network_size", "ip_host" }) do
    F[name] = function(_, v, args, kwargs)
      local a = bind(name, args, kwargs, { "options", "version" })
      local version = a[2]
      if version == null then version = nil end
      return opt(net[name](v, a[1], version), null)
    end
  end
  F.ipwrap = function(_, v) return net.ipwrap(v) end
end

-- Paths, sizes, case conversion and comparisons.
local function install_text(F, lib)
  F.path_join = function(_, v, args)
    local parts = { v }
    for i = 1, args.n or #args do parts[#parts + 1] = args[i] end
    return path_join(parts)
  end

  F.human_to_bytes = function(_, v, args, kwargs)
    local a = bind("human_to_bytes", args, kwargs, { "default_unit", "handle_metric" })
    return human_to_bytes(v, a[1] and text(a[1]) or "B", flag(a[2]))
  end

  F.to_snake_case = function(_, v) return camel_to_snake(text(v)) end
  F.to_camelcase = function(_, v, args, kwargs)
    local a = bind("snake_to_camel_case", args, kwargs, { "uppercamel" })
    return snake_to_camel(text(v), flag(a[1]))
  end

  F.compare_lists = function(_, v, args, kwargs)
    local a = bind("compare_lists", args, kwargs, { "new" })
    local old, new = iter(v), iter(a[1])
    local ret = data.map()
    for _, item in ipairs(new) do
      if not contains(old, item) then
        ret.new = ret.new or list()
        ret.new[#ret.new + 1] = item
      end
    end
    for _, item in ipairs(old) do
      if not contains(new, item) then
        ret.old = ret.old or list()
        ret.old[#ret.old + 1] = item
      end
    end
    return ret
  end

  F.compare_dicts = function(_, v, args, kwargs)
    local a = bind("compare_dicts", args, kwargs, { "new" })
    local old, new = v ~= null and v or data.map(), a[1] ~= nil and a[1] ~= null and a[1]
      or data.map()
    local ret = data.map()
    local seen = {}
    local all = {}
    for _, k in ipairs(pyval.keys(new)) do all[#all + 1] = k; seen[k] = true end
    for _, k in ipairs(pyval.keys(old)) do if not seen[k] then all[#all + 1] = k end end
    for _, k in ipairs(all) do
      if old[k] == nil then
        ret[k] = data.map({ { "old", "" }, { "new", new[k] } })
      elseif new[k] == nil then
        ret[k] = data.map({ { "new", "" }, { "old", old[k] } })
      elseif not eq(new[k], old[k]) then
        ret[k] = data.map({ { "old", old[k] }, { "new", new[k] } })
      end
    end
    return ret
  end

  local function count_true(v)
    local n = 0
    for _, x in ipairs(iter(v)) do if truthy(x) then n = n + 1 end end
    return n
  end
  F.exactly_one_true = function(_, v) return count_true(v) == 1 end
  F.exactly_n_true = function(_, v, args, kwargs)
    local a = bind("exactly_n", args, kwargs, { "n" })
    return count_true(v) == (a[1] == nil and 1 or lib.as_int(a[1]))
  end
end

-- String checks, whitelists and case-insensitive sorting.
local function install_checks(F, lib)
  F.is_hex = function(_, v)
    local s = pyval.text(v)
    return s ~= nil and lib.parse_int(s, 16) ~= nil
  end
  F.contains_whitespace = function(_, v)
    for _, ch in ipairs(pyval.chars(text(v))) do
      if methods.SPACE[ch] then return true end
    end
    return false
  end
  F.substring_in_list = function(_, v, args)
    for _, item in ipairs(iter(args[1])) do
      if pyval.contains(item, v) then return true end
    end
    return false
  end

  F.check_whitelist_blacklist = function(_, v, args, kwargs)
    local a = bind("check_whitelist_blacklist", args, kwargs, { "whitelist", "blacklist" })
    local value = text(v)
    local function exprs(x)
      if pyval.is_iterable(x) then return iter(x) end
      return { x }
    end
    if a[2] ~= nil and a[2] ~= null then
      for _, e in ipairs(exprs(a[2])) do
        if type(e) == "string" and expr_match(value, e) then return false end
      end
    end
    if a[1] ~= nil and a[1] ~= null and truthy(a[1]) then
      for _, e in ipairs(exprs(a[1])) do
        if type(e) == "string" and expr_match(value, e) then return true end
      end
      return false
    end
    return true
  end

  F.sorted_ignorecase = function(_, v)
    return list(pyval.sort(iter(v), function(x) return methods.lower(text(x)) end))
  end
end

-- Nested dict updates, method_call and mysql_to_dict.
local function install_dicts(F)
  F.set_dict_key_value = function(_, v, args, kwargs)
    local a = bind("set_dict_key_value", args, kwargs, { "keys", "value", "delimiter" })
    local ptr, last = dict_rpartition(v, text(a[1]), a[3] and text(a[3]) or ":")
    ptr[last] = a[2]
    return v
  end
  F.update_dict_key_value = function(_, v, args, kwargs)
    local a = bind("update_dict_key_value", args, kwargs,
      { "keys", "value", "delimiter", "ordered_dict" })
    local ptr, last = dict_rpartition(v, text(a[1]), a[3] and text(a[3]) or ":")
    if ptr[last] == nil or ptr[last] == null then ptr[last] = data.map() end
    if kind(ptr[last]) ~= "dict" then
      raise("SaltInvocationError", "The last key contains a " .. python_type(ptr[last])
        .. ", which cannot update.")
    end
    if kind(a[2]) ~= "dict" then
      raise("SaltInvocationError", "Cannot update " .. python_type(ptr[last]) .. " with a "
        .. python_type(a[2]) .. ".")
    end
    methods.dict_update(ptr[last], { n = 1, a[2] }, {})
    return v
  end
  F.append_dict_key_value = function(_, v, args, kwargs)
    local a = bind("append_dict_key_value", args, kwargs, { "keys", "value", "delimiter" })
    local ptr, last = dict_rpartition(v, text(a[1]), a[3] and text(a[3]) or ":")
    if ptr[last] == nil or ptr[last] == null then ptr[last] = list() end
    if kind(ptr[last]) ~= "list" then
      raise("SaltInvocationError", "The last key contains a " .. python_type(ptr[last])
        .. ", which cannot append.")
    end
    ptr[last][#ptr[last] + 1] = a[2]
    return v
  end
  F.extend_dict_key_value = function(_, v, args, kwargs)
    local a = bind("extend_dict_key_value", args, kwargs, { "keys", "value", "delimiter" })
    local ptr, last = dict_rpartition(v, text(a[1]), a[3] and text(a[3]) or ":")
    if ptr[last] == nil or ptr[last] == null then ptr[last] = list() end
    if kind(ptr[last]) ~= "list" then
      raise("SaltInvocationError", "The last key contains a " .. python_type(ptr[last])
        .. ", which cannot extend.")
    end
    if not pyval.is_iterable(a[2]) then
      raise("SaltInvocationError", "Cannot extend " .. python_type(ptr[last]) .. " with a "
        .. python_type(a[2]) .. ".")
    end
    for _, x in ipairs(iter(a[2])) do ptr[last][#ptr[last] + 1] = x end
    return v
  end

  F.method_call = function(_, v, args, kwargs)
    local name = text(args[1])
    pyval.sandbox_check(name, v)
    local m = pyval.getattr(v, name)
    if pyval.is_undefined(m) then return null end
    local rest = { n = (args.n or #args) - 1 }
    for i = 2, args.n or #args do rest[i - 1] = args[i] end
    return pyval.call(m, rest, kwargs)
  end

  F.mysql_to_dict = function(_, v, args, kwargs)
    local a = bind("mysql_to_dict", args, kwargs, { "key" })
    local lines = pyval.text(v) and methods.splitlines(pyval.text(v)) or iter(v)
    local ret, headers = data.map(), { "" }
    for _, line in ipairs(lines) do
      if line ~= "" and line:sub(1, 1) ~= "+" then
        local comps = methods.split(line, "|")
        for i, c in ipairs(comps) do comps[i] = methods.strip(c) end
        if #headers > 1 then
          local row = data.map()
          for f = 2, #headers - 1 do row[headers[f]] = to_num(comps[f]) end
          ret[row[a[1]]] = row
        else
          headers = comps
        end
      end
    end
    return ret
  end
end

-- SerializerExtension's yaml, json, python, xml and load_* filters.
local function install_serializers(F, lib)
  -- SerializerExtension
  F.yaml = function(_, v, args, kwargs)
    local a = bind("format_yaml", args, kwargs, { "flow_style" })
    local flow = a[1] == nil and true or truthy(a[1])
    return pyval.markup(yaml_dump(v, flow))
  end
  local JSON_OPTS = lib.json_opts({ sort_keys = true, ensure_ascii = false })
  local NO_KWARGS = pyval.NO_KWARGS
  F.json = function(_, v, args, kwargs)
    local opts = JSON_OPTS
    if (args.n or #args) ~= 0 or (kwargs ~= NO_KWARGS and next(kwargs) ~= nil) then
      local a = bind("format_json", args, kwargs, { "sort_keys", "indent" })
      opts = { sort_keys = a[1] == nil or truthy(a[1]), ensure_ascii = false }
      if a[2] ~= nil and a[2] ~= null then opts.indent = lib.as_int(a[2]) end
    end
    -- json.dumps' text never starts or ends with whitespace, so Salt's
    -- strip() is left out.
    return pyval.markup(lib.to_json(v, opts))
  end
  F.python = function(_, v) return pyval.markup(methods.strip(lib.pformat(v))) end
  F.xml = function(_, v) return pyval.markup(require("renderers.jinja.salt_xml").format(v)) end
  F.load_yaml = function(_, v)
    local s = text(v)
    local r, err = require("brine.yaml").load(s)
    if r == nil and err then
      raise("TemplateRuntimeError", "Encountered error loading yaml: " .. tostring(err))
    end
    if r == nil then return null end
    return r
  end
  F.load_json = function(_, v)
    local s = text(v)
    local r, err = require("brine.json").decode(s)
    if r == nil and err then raise("TemplateRuntimeError", "Unable to load json from " .. s) end
    if r == nil then return null end
    return r
  end
  F.load_text = function(_, v) return text(v) end
  F.dict_to_sls_yaml_params = function(_, v, args, kwargs)
    local a = bind("dict_to_sls_yaml_params", args, kwargs, { "flow_style" })
    local items = {}
    for i, k in ipairs(pyval.keys(v)) do items[i] = data.map({ { k, v[k] } }) end
    return pyval.markup(yaml_dump(list(items), flag(a[1])))
  end
end

-- The itertools filters.
local function install_itertools(F, lib)
  F.combinations = function(_, v, args, kwargs)
    local a = bind("combinations", args, kwargs, { "r" })
    return combos(iter(v), lib.as_int(a[1]), false)
  end
  F.combinations_with_replacement = function(_, v, args, kwargs)
    local a = bind("combinations_with_replacement", args, kwargs, { "r" })
    return combos(iter(v), lib.as_int(a[1]), true)
  end
  F.permutations = function(_, v, args, kwargs)
    local a = bind("permutations", args, kwargs, { "r" })
    local pool = iter(v)
    local r = (a[1] == nil or a[1] == null) and #pool or lib.as_int(a[1])
    return permutations(pool, r)
  end
  F.compress = function(_, v, args, kwargs)
    local a = bind("compress", args, kwargs, { "selectors" })
    local d, s = iter(v), iter(a[1])
    local out = {}
    for i = 1, math.min(#d, #s) do
      if truthy(s[i]) then out[#out + 1] = d[i] end
    end
    return list(out)
  end
  F.product = function(_, v, args, kwargs)
    local repeat_n = kwargs["repeat"] ~= nil and lib.as_int(kwargs["repeat"]) or 1
    for k in pairs(kwargs) do
      if k ~= "repeat" then
        raise("TypeError", "product() got an unexpected keyword argument '" .. k .. "'")
      end
    end
    local base = { iter(v) }
    for i = 1, args.n or #args do base[#base + 1] = iter(args[i]) end
    local pools = {}
    for _ = 1, repeat_n do
      for _, p in ipairs(base) do pools[#pools + 1] = p end
    end
    return product(pools)
  end
  local function zip(v, args, longest, fill)
    local its = { iter(v) }
    for i = 1, args.n or #args do its[#its + 1] = iter(args[i]) end
    local n = longest and 0 or math.huge
    for _, it in ipairs(its) do
      n = longest and math.max(n, #it) or math.min(n, #it)
    end
    local out = {}
    for i = 1, n do
      local t = {}
      for j, it in ipairs(its) do
        local x = it[i]
        if x == nil then x = fill end
        t[j] = x
      end
      out[i] = tuple(t)
    end
    return list(out)
  end
  F.zip = function(_, v, args, kwargs)
    for k in pairs(kwargs) do
      raise("TypeError", "zip() got an unexpected keyword argument '" .. k .. "'")
    end
    return zip(v, args, false)
  end
  F.zip_longest = function(_, v, args, kwargs)
    local fill = kwargs.fillvalue
    for k in pairs(kwargs) do
      if k ~= "fillvalue" then
        raise("TypeError", "zip_longest() got an unexpected keyword argument '" .. k .. "'")
      end
    end
    return zip(v, args, true, fill == nil and null or fill)
  end
end

---Adds Salt's filters to lib.filters.
function M.install(lib)
  bind, text = lib.bind, lib.text
  require("renderers.jinja.salt_host").install(lib)
  install_basic(lib.filters, lib)
  install_regex(lib.filters, lib)
  install_lists(lib.filters, lib)
  install_encoding(lib.filters, lib)
  install_network(lib.filters, lib)
  install_text(lib.filters, lib)
  install_checks(lib.filters, lib)
  install_dicts(lib.filters, lib)
  install_serializers(lib.filters, lib)
  install_itertools(lib.filters, lib)
end

return M
