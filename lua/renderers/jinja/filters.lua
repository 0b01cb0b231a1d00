-- The filter, test and global library of Salt's Jinja environment: every
-- Jinja 3.1 builtin, with Salt's replacements (unique, min, max, tojson) and
-- Salt's own filters (renderers.jinja.salt_filters).
--
-- A filter is function(env, value, args, kwargs) -> value, where args is an
-- array with field n holding the arguments after the value and kwargs a
-- plain table. A test has the same signature and returns a boolean. A
-- global is function(env, args, kwargs); M.bind_globals(env) turns them into
-- callables for the template context. The engine raises UndefinedError
-- before calling a filter or test with an undefined value unless its name is
-- in M.accepts_undefined. `env` offers undefined(name), salt, opts,
-- render_string(text, vars), load_file(name), name, and optionally filters
-- and tests (used by map/select to find filters the engine added) and
-- context (a function returning the current context, for
-- show_full_context).
--
-- Where Jinja returns a generator (map, select, reject, batch, slice,
-- reverse, zip, ...) these filters return a list, so printing such a result
-- shows the list rather than "<generator object ...>".
local data = require("brine.data")
local pyval = require("renderers.jinja.pyval")
local methods = require("renderers.jinja.py_methods")

local M = {}

local null = data.null
local raise, str, repr, kind = pyval.raise, pyval.str, pyval.repr, pyval.kind
local truthy, eq, list, tuple = pyval.truthy, pyval.eq, pyval.list, pyval.tuple
local chars, ulen = pyval.chars, pyval.ulen
local is_undef = pyval.is_undefined
local mtype = math.type
-- The metatable as it is: no value here protects its metatable with
-- __metatable, and the plain getmetatable pays a lookup of that field on
-- every call of the hottest checks.
local getmetatable = debug.getmetatable
local concat = table.concat

local filters, tests, globals = {}, {}, {}
M.filters, M.tests, M.globals = filters, tests, globals

-- ---------------------------------------------------------------- arguments

---Binds positional and keyword arguments to parameter names as a Python
---signature does; raises TypeError for unknown or doubled keywords.
---@param fname string the function name used in messages (e.g. "do_indent")
---@param names string[] the parameter names after the value
---@return table values by position (nil where not given)
function M.bind(fname, args, kwargs, names)
  local out = {}
  local n = args.n or #args
  if n > #names then
    raise("TypeError", string.format("%s() takes from 1 to %d positional arguments but %d were "
      .. "given", fname, #names + 1, n + 1))
  end
  for i = 1, n do out[i] = args[i] end
  for k, v in pairs(kwargs) do
    local idx
    for i, name in ipairs(names) do
      if name == k then idx = i; break end
    end
    if not idx then
      raise("TypeError", string.format("%s() got an unexpected keyword argument '%s'", fname, k))
    end
    if idx <= n then
      raise("TypeError", string.format("%s() got multiple values for argument '%s'", fname, k))
    end
    out[idx] = v
  end
  return out
end
local bind = M.bind

local function none_to_nil(v)
  if v == null then return nil end
  return v
end

---The value as text (str, or the string of a Markup).
local function text(v)
  return pyval.text(v) or str(v)
end
M.text = text

-- The string a text filter works on; other values raise the error Python
-- raises when the filter calls a str method on them.
local function want_str(v, method)
  local s = pyval.text(v)
  if s then return s end
  raise("AttributeError", string.format("'%s' object has no attribute '%s'",
    pyval.type_name(v), method))
end

-- A dict's keys, or Python's AttributeError for `.items()` on anything else.
local function mapping_keys(v)
  if kind(v) ~= "dict" then
    raise("AttributeError", "'" .. pyval.type_name(v) .. "' object has no attribute 'items'")
  end
  return pyval.keys(v)
end

local function as_int(v, what)
  if v == true then return 1 elseif v == false then return 0 end
  if mtype(v) == "integer" then return v end
  if mtype(v) == "float" and v == math.floor(v) then return math.tointeger(v) end
  if is_undef(v) then pyval.fail_undefined(v) end
  raise("TypeError", string.format("'%s' object cannot be interpreted as an integer%s",
    pyval.type_name(v), what and (" (" .. what .. ")") or ""))
end
M.as_int = as_int

local function items_of(v)
  return pyval.iter(v)
end

local function call_filter(env, name, value, args, kwargs)
  local f = (env and env.filters and env.filters[name]) or filters[name]
  if not f then
    raise("TemplateRuntimeError", "No filter named " .. repr(name) .. " found.")
  end
  if is_undef(value) and not M.accepts_undefined[name] then pyval.fail_undefined(value) end
  return f(env, value, args or { n = 0 }, kwargs or {})
end
M.call_filter = call_filter

local function call_test(env, name, value, args, kwargs)
  local f = (env and env.tests and env.tests[name]) or tests[name]
  if not f then
    raise("TemplateRuntimeError", "No test named " .. repr(name) .. " found.")
  end
  if is_undef(value) and not M.accepts_undefined[name] then pyval.fail_undefined(value) end
  return f(env, value, args or { n = 0 }, kwargs or {}) and true or false
end
M.call_test = call_test

local function undefined_hint(hint)
  return pyval.undefined(nil, hint)
end

-- Jinja's attribute paths: "a.b.0" reads item a, then b, then index 0.
local function attr_parts(attribute)
  if type(attribute) ~= "string" then return { attribute } end
  local parts = {}
  for p in (attribute .. "."):gmatch("([^.]*)%.") do
    parts[#parts + 1] = p:match("^%d+$") and math.tointeger(tonumber(p)) or p
  end
  return parts
end

---Jinja's make_attrgetter: a function reading `attribute` from an item,
---with an optional postprocess and a default for undefined results.
function M.attrgetter(attribute, postprocess, default)
  local parts = attr_parts(attribute)
  return function(item)
    for _, p in ipairs(parts) do
      item = pyval.getitem(item, p)
    end
    if default ~= nil and is_undef(item) then item = default end
    if postprocess then item = postprocess(item) end
    return item
  end
end
local attrgetter = M.attrgetter

local function multi_attrgetter(attribute, postprocess)
  local getters = {}
  local names = type(attribute) == "string" and methods.split(attribute, ",") or { attribute }
  for i, a in ipairs(names) do getters[i] = attrgetter(a, postprocess) end
  return function(item)
    local out = {}
    for i, g in ipairs(getters) do out[i] = g(item) end
    return list(out)
  end
end

local function ignore_case(v)
  if type(v) == "string" then return methods.lower(v) end
  return v
end

-- Python's float() of a string: nil when it does not parse.
local function parse_float(s)
  s = methods.strip(s):gsub("(%d)_(%d)", "%1%2")
  local l = s:lower()
  local sign = 1
  if l:sub(1, 1) == "-" then sign = -1 end
  local body = l:gsub("^[+-]", "")
  if body == "inf" or body == "infinity" then return sign * math.huge end
  if body == "nan" then return 0 / 0 end
  if not l:match("^[+-]?%d*%.?%d*e?[+-]?%d*$") or not l:find("%d") then return nil end
  if l:find("e") and not l:match("^[+-]?%d*%.?%d*e[+-]?%d+$") then return nil end
  if l:match("^[+-]?%.?e") then return nil end
  local v = tonumber(s)
  if v == nil then return nil end
  return v * 1.0 -- (x + 0.0 would turn -0.0 into 0.0; here and below)
end
M.parse_float = parse_float

-- Python's int(s, base): nil when it does not parse.
local function parse_int(s, base)
  -- the usual text: plain decimal digits that fit in 64 bits
  if base == 10 and #s <= 18 and s ~= "" and not s:find("%D") then
    return math.tointeger(tonumber(s))
  end
  s = methods.strip(s)
  local sign, body = s:match("^([+-]?)(.*)$")
  body = body:lower()
  local prefixes = { ["0x"] = 16, ["0o"] = 8, ["0b"] = 2 }
  local p = prefixes[body:sub(1, 2)]
  if p and (base == 0 or base == p) then
    body = body:sub(3):gsub("^_", "")
    base = p
  elseif base == 0 then
    if body:match("^0[0_]*$") then return 0 end
    if body:sub(1, 1) == "0" then return nil end
    base = 10
  end
  if body == "" or body:find("__") or body:sub(-1) == "_" or body:sub(1, 1) == "_" then
    return nil
  end
  body = body:gsub("_", "")
  if not body:match("^[%w]+$") then return nil end
  local v = pyval.int_from_digits(body, base)
  if v == nil then return nil end
  return sign == "-" and pyval.neg(v) or v
end
M.parse_int = parse_int

-- ---------------------------------------------------------------- filters

filters.abs = function(_, v)
  if type(v) == "boolean" then return v and 1 or 0 end
  if type(v) == "number" then
    if v == math.mininteger then return pyval.neg(v) end
    return math.abs(v)
  end
  if kind(v) == "bigint" then
    return pyval.compare(v, 0) < 0 and pyval.neg(v) or v
  end
  raise("TypeError", "bad operand type for abs(): '" .. pyval.type_name(v) .. "'")
end

filters.attr = function(_, v, args)
  local name = args[1]
  if type(name) ~= "string" then return pyval.getitem(v, name) end
  if pyval.is_unsafe(name) then return pyval.getattr(v, name) end
  local k = kind(v)
  if methods.has(k, name) then return methods.bound(k, v, name) end
  if k == "namespace" or k == "object" then return pyval.getattr(v, name) end
  return pyval.undefined(name, nil, v)
end

filters.batch = function(_, v, args, kwargs)
  local a = bind("do_batch", args, kwargs, { "linecount", "fill_with" })
  local n = as_int(a[1])
  local fill = a[2]
  local out, cur = {}, {}
  for _, item in ipairs(items_of(v)) do
    if #cur == n then out[#out + 1] = list(cur); cur = {} end
    cur[#cur + 1] = item
  end
  if #cur > 0 then
    if fill ~= nil and fill ~= null then
      while #cur < n do cur[#cur + 1] = fill end
    end
    out[#out + 1] = list(cur)
  end
  return list(out)
end

filters.capitalize = function(_, v) return methods.capitalize(text(v)) end

filters.center = function(_, v, args, kwargs)
  local a = bind("do_center", args, kwargs, { "width" })
  return methods.padding("center", text(v), { n = 1, a[1] or 80 }, "center")
end

filters.default = function(_, v, args, kwargs)
  local a = bind("do_default", args, kwargs, { "default_value", "boolean" })
  local dflt = a[1] == nil and "" or a[1]
  if is_undef(v) or (a[2] ~= nil and truthy(a[2]) and not truthy(v)) then return dflt end
  return v
end
filters.d = filters.default

filters.dictsort = function(_, v, args, kwargs)
  local a = bind("do_dictsort", args, kwargs, { "case_sensitive", "by", "reverse" })
  local by = a[2] or "key"
  local pos
  if by == "key" then pos = 1 elseif by == "value" then pos = 2 else
    raise("FilterArgumentError", 'You can only sort by either "key" or "value"')
  end
  local cs = a[1] ~= nil and truthy(a[1])
  local items = {}
  for i, k in ipairs(mapping_keys(v)) do items[i] = tuple({ k, v[k] }) end
  pyval.sort(items, function(it)
    local x = it[pos]
    if not cs then x = ignore_case(x) end
    return x
  end, a[3] ~= nil and truthy(a[3]))
  return list(items)
end

filters.escape = function(_, v)
  return pyval.markup(pyval.escape(v))
end
filters.e = filters.escape

filters.filesizeformat = function(_, v, args, kwargs)
  local a = bind("do_filesizeformat", args, kwargs, { "binary" })
  local bytes = M.to_float(v)
  local binary = a[1] ~= nil and truthy(a[1])
  local base = binary and 1024 or 1000
  local prefixes = binary and { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB" }
    or { "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB" }
  if bytes == 1 then return "1 Byte" end
  if bytes < base then
    local whole = bytes < 0 and math.ceil(bytes) or math.floor(bytes)
    return string.format("%d Bytes", math.tointeger(whole) or 0)
  end
  local unit, prefix
  for i, p in ipairs(prefixes) do
    unit, prefix = base ^ (i + 1), p
    if bytes < unit then break end
  end
  return string.format("%.1f %s", base * bytes / unit, prefix)
end

---Python's float(v): raises ValueError or TypeError as Python does.
function M.to_float(v)
  local t = type(v)
  if t == "number" then return v * 1.0 end
  if t == "boolean" then return v and 1.0 or 0.0 end
  if kind(v) == "bigint" then return require("renderers.jinja.py_bigint").tofloat(v) end
  local s = pyval.text(v)
  if s then
    local f = parse_float(s)
    if f then return f end
    raise("ValueError", "could not convert string to float: " .. repr(s))
  end
  raise("TypeError", "float() argument must be a string or a real number, not '"
    .. pyval.type_name(v) .. "'")
end

filters.first = function(_, v)
  local items = items_of(v)
  if #items == 0 then return undefined_hint("No first item, sequence was empty.") end
  return items[1]
end

filters.last = function(_, v)
  if not pyval.is_iterable(v) then
    raise("TypeError", "'" .. pyval.type_name(v) .. "' object is not reversible")
  end
  local items = items_of(v)
  if #items == 0 then return undefined_hint("No last item, sequence was empty.") end
  return items[#items]
end

filters.float = function(_, v, args, kwargs)
  local a = bind("do_float", args, kwargs, { "default" })
  local dflt = a[1] == nil and 0.0 or a[1]
  local t = type(v)
  if t == "number" then return v * 1.0 end
  if t == "boolean" then return v and 1.0 or 0.0 end
  if kind(v) == "bigint" then return require("renderers.jinja.py_bigint").tofloat(v) end
  local s = pyval.text(v)
  if s then
    local f = parse_float(s)
    if f then return f end
  end
  return dflt
end

filters.forceescape = function(_, v)
  return pyval.markup((text(v):gsub("[&<>\"']", {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&#34;", ["'"] = "&#39;" })))
end

filters.format = function(_, v, args, kwargs)
  local fmt = text(v)
  if (args.n or #args) > 0 and next(kwargs) then
    raise("FilterArgumentError", "can't handle positional and keyword arguments at the same time")
  end
  if next(kwargs) then
    local m = data.map()
    for k, val in pairs(kwargs) do m[k] = val end
    return pyval.mod(fmt, m)
  end
  local t = {}
  for i = 1, args.n or #args do t[i] = args[i] end
  return pyval.mod(fmt, tuple(t))
end

filters.groupby = function(_, v, args, kwargs)
  local a = bind("do_groupby", args, kwargs, { "attribute", "default", "case_sensitive" })
  local cs = a[3] ~= nil and truthy(a[3])
  local key = attrgetter(a[1], not cs and ignore_case or nil, none_to_nil(a[2]))
  local out_key = attrgetter(a[1], nil, none_to_nil(a[2]))
  local items = items_of(v)
  pyval.sort(items, key)
  local groups = {}
  local cur, cur_key
  for _, item in ipairs(items) do
    local k = key(item)
    if cur == nil or not eq(k, cur_key) then
      cur, cur_key = {}, k
      groups[#groups + 1] = { k, cur }
    end
    cur[#cur + 1] = item
  end
  local out = {}
  for i, g in ipairs(groups) do
    local grouper = cs and g[1] or out_key(g[2][1])
    out[i] = pyval.named_tuple("_GroupTuple", { "grouper", "list" }, { grouper, list(g[2]) })
  end
  return list(out)
end

filters.indent = function(_, v, args, kwargs)
  local a = bind("do_indent", args, kwargs, { "width", "first", "blank" })
  local width = a[1] == nil and 4 or a[1]
  local ind = type(width) == "string" and width or (" "):rep(as_int(width))
  local s = pyval.text(v)
  if not s then
    local k = kind(v)
    if k == "list" and not pyval.is_range(v) then want_str(v, "splitlines") end
    if k == "tuple" then
      raise("TypeError", 'can only concatenate tuple (not "str") to tuple')
    end
    raise("TypeError", "unsupported operand type(s) for +=: '" .. pyval.type_name(v)
      .. "' and 'str'")
  end
  s = s .. "\n"
  local lines = methods.splitlines(s)
  local rv
  if a[3] ~= nil and truthy(a[3]) then
    rv = concat(lines, "\n" .. ind)
  else
    rv = table.remove(lines, 1) or ""
    if #lines > 0 then
      for i, line in ipairs(lines) do
        if line ~= "" then lines[i] = ind .. line end
      end
      rv = rv .. "\n" .. concat(lines, "\n")
    end
  end
  if a[2] ~= nil and truthy(a[2]) then rv = ind .. rv end
  if pyval.is_markup(v) then return pyval.markup(rv) end
  return rv
end

-- Python's int() of a finite float: truncated, exact even past 64 bits
-- (a float's integer part printed in full is its exact value).
local function float_to_int(x)
  local r = x < 0 and math.ceil(x) or math.floor(x)
  return math.tointeger(r) or data.bigint(string.format("%.0f", r))
end

filters.int = function(_, v, args, kwargs)
  local dflt, base = 0, 10
  if (args.n or #args) > 0 or next(kwargs) ~= nil then
    local a = bind("do_int", args, kwargs, { "default", "base" })
    if a[1] ~= nil then dflt = a[1] end
    if a[2] ~= nil then base = as_int(a[2]) end
  end
  local t = type(v)
  if t == "boolean" then return v and 1 or 0 end
  if t == "number" then
    if mtype(v) == "integer" then return v end
    if v ~= v or v == math.huge or v == -math.huge then return dflt end
    return float_to_int(v)
  end
  if kind(v) == "bigint" then return v end
  local s = pyval.text(v)
  if s then
    local r = parse_int(s, base)
    if r ~= nil then return r end
    local f = parse_float(s)
    if f and f == f and f ~= math.huge and f ~= -math.huge then return float_to_int(f) end
  end
  return dflt
end

filters.items = function(_, v)
  if is_undef(v) then return list() end
  if kind(v) ~= "dict" then
    raise("TypeError", "Can only get item pairs from a mapping.")
  end
  local out = {}
  for i, k in ipairs(pyval.keys(v)) do out[i] = tuple({ k, v[k] }) end
  return list(out)
end

filters.join = function(_, v, args, kwargs)
  local a = bind("do_join", args, kwargs, { "d", "attribute" })
  local sep = a[1] == nil and "" or text(a[1])
  local items = items_of(v)
  local get = a[2] ~= nil and a[2] ~= null and attrgetter(a[2]) or nil
  for i, item in ipairs(items) do
    if get then item = get(item) end
    items[i] = str(item)
  end
  return concat(items, sep)
end

filters.length = function(_, v) return pyval.len(v) end
filters.count = filters.length

filters.list = function(_, v) return list(items_of(v)) end

filters.lower = function(_, v) return methods.lower(text(v)) end
filters.upper = function(_, v) return methods.upper(text(v)) end

filters.map = function(env, v, args, kwargs)
  local n = args.n or #args
  local fn
  if n == 0 and kwargs.attribute ~= nil then
    for k in pairs(kwargs) do
      if k ~= "attribute" and k ~= "default" then
        raise("FilterArgumentError", "Unexpected keyword argument " .. repr(k))
      end
    end
    fn = attrgetter(kwargs.attribute, nil, none_to_nil(kwargs.default))
  else
    if n == 0 then raise("FilterArgumentError", "map requires a filter argument") end
    local name = args[1]
    local rest = { n = n - 1 }
    for i = 2, n do rest[i - 1] = args[i] end
    fn = function(item) return call_filter(env, name, item, rest, kwargs) end
  end
  local out = {}
  -- Jinja maps nothing over a false value (None, 0, '' and empty sequences)
  if not truthy(v) then return list(out) end
  for i, item in ipairs(items_of(v)) do out[i] = fn(item) end
  return list(out)
end

local function select_or_reject(env, v, args, kwargs, want, lookup_attr)
  local n = args.n or #args
  local off = 0
  local trans = function(x) return x end
  if lookup_attr then
    if n < 1 then raise("FilterArgumentError", "Missing parameter for attribute name") end
    trans = attrgetter(args[1])
    off = 1
  end
  local fn
  if n > off then
    local name = args[off + 1]
    local rest = { n = n - off - 1 }
    for i = off + 2, n do rest[i - off - 1] = args[i] end
    fn = function(item) return call_test(env, name, item, rest, kwargs) end
  else
    fn = truthy
  end
  local out = {}
  if not truthy(v) then return list(out) end
  for _, item in ipairs(items_of(v)) do
    if fn(trans(item)) == want then out[#out + 1] = item end
  end
  return list(out)
end

filters.select = function(env, v, a, k) return select_or_reject(env, v, a, k, true, false) end
filters.reject = function(env, v, a, k) return select_or_reject(env, v, a, k, false, false) end
filters.selectattr = function(env, v, a, k) return select_or_reject(env, v, a, k, true, true) end
filters.rejectattr = function(env, v, a, k) return select_or_reject(env, v, a, k, false, true) end

-- Python's pprint.pformat: dicts with sorted keys, wrapped at 80 columns.
local function sorted_keys(d)
  local ks = pyval.keys(d)
  local ok = pcall(pyval.sort, ks)
  if not ok then ks = pyval.keys(d) end
  return ks
end

local function safe_repr(v)
  local k = kind(v)
  if pyval.is_range(v) then return repr(v) end
  if k == "dict" then
    local parts = {}
    for i, key in ipairs(sorted_keys(v)) do
      parts[i] = safe_repr(key) .. ": " .. safe_repr(v[key])
    end
    return "{" .. concat(parts, ", ") .. "}"
  end
  if k == "list" or k == "tuple" then
    local parts = {}
    for i, item in ipairs(v) do parts[i] = safe_repr(item) end
    if k == "tuple" then
      if #parts == 1 then return "(" .. parts[1] .. ",)" end
      return "(" .. concat(parts, ", ") .. ")"
    end
    return "[" .. concat(parts, ", ") .. "]"
  end
  return repr(v)
end

local function pformat(v, indent, allowance)
  local rep = safe_repr(v)
  if ulen(rep) <= 80 - indent - allowance then return rep end
  local k = kind(v)
  if pyval.is_range(v) then return rep end
  if k == "dict" then
    local ks = sorted_keys(v)
    if #ks == 0 then return rep end
    local parts = {}
    for i, key in ipairs(ks) do
      local krep = safe_repr(key)
      local last = i == #ks
      parts[i] = krep .. ": " .. pformat(v[key], indent + 1 + ulen(krep) + 2,
        last and allowance + 1 or 1)
    end
    return "{" .. concat(parts, ",\n" .. (" "):rep(indent + 1)) .. "}"
  end
  if k == "list" or k == "tuple" then
    if #v == 0 then return rep end
    local open, close = "[", "]"
    if k == "tuple" then open, close = "(", #v == 1 and ",)" or ")" end
    local parts = {}
    for i, item in ipairs(v) do
      parts[i] = pformat(item, indent + 1, i == #v and allowance + 1 or 1)
    end
    return open .. concat(parts, ",\n" .. (" "):rep(indent + 1)) .. close
  end
  return rep
end
M.pformat = function(v) return pformat(v, 0, 0) end

filters.pprint = function(_, v)
  -- an undefined value's repr is "Undefined" (pprint never prints it)
  if is_undef(v) then return "Undefined" end
  return pformat(v, 0, 0)
end

filters.random = function(_, v)
  local items = items_of(v)
  if #items == 0 then return pyval.undefined(nil, "No random item, sequence was empty.") end
  return items[math.random(#items)]
end

filters.replace = function(_, v, args, kwargs)
  local a = bind("do_replace", args, kwargs, { "old", "new", "count" })
  local count = a[3]
  count = (count == nil or count == null) and -1 or as_int(count)
  local r = methods.replace(text(v), text(a[1]), text(a[2]), count)
  if pyval.is_markup(v) then return pyval.markup(r) end
  return r
end

filters.reverse = function(_, v)
  local s = pyval.text(v)
  if s then
    local cs = chars(s)
    local out = {}
    for i = #cs, 1, -1 do out[#out + 1] = cs[i] end
    return concat(out)
  end
  if not pyval.is_iterable(v) then raise("FilterArgumentError", "argument must be iterable") end
  local items = items_of(v)
  local out = {}
  for i = #items, 1, -1 do out[#out + 1] = items[i] end
  return list(out)
end

-- Python's round(x, ndigits) for floats: round half to even on the exact
-- binary value, which C's printf does.
local function round_float(x, nd)
  if x ~= x or x == math.huge or x == -math.huge then return x end
  local r
  if nd >= 0 then
    r = tonumber(string.format("%." .. math.min(nd, 300) .. "f", x)) * 1.0
  else
    local p = 10 ^ -nd
    r = tonumber(string.format("%.0f", x / p)) * p
  end
  -- a result of zero keeps x's sign, as Python's does: round(-0.4) is -0.0
  if r == 0 then r = (x < 0 or 1 / x < 0) and -0.0 or 0.0 end
  return r
end

filters.round = function(_, v, args, kwargs)
  local a = bind("do_round", args, kwargs, { "precision", "method" })
  local prec = a[1] == nil and 0 or as_int(a[1])
  local method = a[2] == nil and "common" or a[2]
  if method ~= "common" and method ~= "ceil" and method ~= "floor" then
    raise("FilterArgumentError", "method must be common, ceil or floor")
  end
  if type(v) == "boolean" then v = v and 1 or 0 end
  if kind(v) == "bigint" then
    -- an integer beyond 64 bits: exact as Python's round(), in its own arithmetic
    if method ~= "common" then v = pyval.mul(v, 1.0)
    elseif prec >= 0 then return v
    else
      local p = pyval.pow(10, -prec)
      local q, r2 = pyval.floordiv(v, p), pyval.mul(pyval.mod(v, p), 2)
      local c = pyval.compare(r2, p)
      if c > 0 or (c == 0 and pyval.mod(q, 2) == 1) then q = pyval.add(q, 1) end
      return pyval.mul(q, p)
    end
  end
  if type(v) ~= "number" then
    raise("TypeError", "type " .. pyval.type_name(v) .. " doesn't define __round__ method")
  end
  if method == "common" then
    if mtype(v) == "integer" then
      if prec >= 0 then return v end
      local p = math.tointeger(10 ^ -prec)
      local q, r = v // p, v % p
      if r * 2 > p or (r * 2 == p and q % 2 == 1) then q = q + 1 end
      return q * p
    end
    return round_float(v, prec)
  end
  local f = method == "ceil" and math.ceil or math.floor
  local scale = 10.0 ^ prec
  return f(v * scale) / scale
end

filters.safe = function(_, v)
  if pyval.is_markup(v) then return v end
  return pyval.markup(str(v))
end

filters.slice = function(_, v, args, kwargs)
  local a = bind("do_slice", args, kwargs, { "slices", "fill_with" })
  local seq = items_of(v)
  local slices = as_int(a[1])
  local fill = a[2]
  local n = #seq
  local per, extra = n // slices, n % slices
  local offset = 0
  local out = {}
  for num = 0, slices - 1 do
    local start = offset + num * per
    if num < extra then offset = offset + 1 end
    local stop = offset + (num + 1) * per
    local tmp = {}
    for i = start + 1, stop do tmp[#tmp + 1] = seq[i] end
    if fill ~= nil and fill ~= null and num >= extra then tmp[#tmp + 1] = fill end
    out[#out + 1] = list(tmp)
  end
  return list(out)
end

filters.sort = function(_, v, args, kwargs)
  local a = bind("do_sort", args, kwargs, { "reverse", "case_sensitive", "attribute" })
  local cs = a[2] ~= nil and truthy(a[2])
  local post = not cs and ignore_case or nil
  local key
  if a[3] ~= nil and a[3] ~= null then
    key = multi_attrgetter(a[3], post)
  else
    key = post
  end
  return list(pyval.sort(items_of(v), key, a[1] ~= nil and truthy(a[1])))
end

filters.string = function(_, v)
  if pyval.is_markup(v) then return v end
  return str(v)
end

local ENTITIES = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", nbsp = "\194\160" }

local function unescape(s)
  s = s:gsub("&#[xX](%x+);", function(h) return utf8.char(tonumber(h, 16)) end)
  s = s:gsub("&#(%d+);", function(d) return utf8.char(tonumber(d)) end)
  return (s:gsub("&(%a+);", function(name) return ENTITIES[name] end))
end

filters.striptags = function(_, v)
  local s = text(v)
  s = s:gsub("<!%-%-.-%-%->", "")
  s = s:gsub("<[^>]*>", "")
  return unescape(concat(methods.split(s), " "))
end

filters.sum = function(_, v, args, kwargs)
  local a = bind("do_sum", args, kwargs, { "attribute", "start" })
  local total = a[2] == nil and 0 or a[2]
  local get = a[1] ~= nil and a[1] ~= null and attrgetter(a[1]) or nil
  for _, item in ipairs(items_of(v)) do
    if get then item = get(item) end
    total = pyval.add(total, item)
  end
  return total
end

filters.title = function(_, v)
  local s = text(v)
  local out = {}
  -- words start after runs of whitespace, "-", "(", "{", "[" and "<"
  local cs = chars(s)
  local start = true
  for _, ch in ipairs(cs) do
    if methods.SPACE[ch] or ch:match("^[-({%[<]$") then
      out[#out + 1] = ch
      start = true
    elseif start then
      out[#out + 1] = methods.upper(ch)
      start = false
    else
      out[#out + 1] = methods.lower(ch)
    end
  end
  return concat(out)
end

filters.trim = function(_, v, args, kwargs)
  local a = bind("do_trim", args, kwargs, { "chars" })
  local c = a[1]
  return methods.strip(text(v), (c ~= nil and c ~= null) and text(c) or nil, "both")
end

filters.truncate = function(_, v, args, kwargs)
  local a = bind("do_truncate", args, kwargs, { "length", "killwords", "end", "leeway" })
  local s = pyval.text(v)
  local length = a[1] == nil and 255 or as_int(a[1])
  local killwords = a[2] ~= nil and truthy(a[2])
  local ending = a[3] == nil and "..." or text(a[3])
  local leeway = (a[4] == nil or a[4] == null) and 5 or as_int(a[4])
  local elen = ulen(ending)
  if length < elen then
    raise("AssertionError", "expected length >= " .. elen .. ", got " .. length)
  end
  if leeway < 0 then raise("AssertionError", "expected leeway >= 0, got " .. leeway) end
  if not s then
    -- Jinja measures and slices the value itself: short sequences pass
    if pyval.len(v) <= length + leeway then return v end
    raise("TypeError", "can only concatenate " .. pyval.type_name(v) .. ' (not "str") to '
      .. pyval.type_name(v))
  end
  if ulen(s) <= length + leeway then return s end
  local head = pyval.slice(s, 0, length - elen)
  if killwords then return head .. ending end
  return methods.rsplit(head, " ", 1)[1] .. ending
end

local function url_quote(v, for_qs)
  local s
  if kind(v) == "bytes" then s = v.s else s = str(v) end
  local safe = for_qs and "" or "/"
  local out = s:gsub("[^%w_%.%-~" .. safe .. "]", function(c)
    return string.format("%%%02X", c:byte())
  end)
  if for_qs then out = out:gsub("%%20", "+") end
  return out
end

filters.urlencode = function(_, v)
  if pyval.text(v) or kind(v) == "bytes" or not pyval.is_iterable(v) then
    return url_quote(pyval.text(v) or v, false)
  end
  local pairs_list = {}
  if kind(v) == "dict" then
    for _, k in ipairs(pyval.keys(v)) do pairs_list[#pairs_list + 1] = { k, v[k] } end
  else
    for _, item in ipairs(items_of(v)) do
      if not pyval.is_iterable(item) then
        raise("TypeError", "cannot unpack non-iterable " .. pyval.type_name(item) .. " object")
      end
      local kv = items_of(item)
      if #kv ~= 2 then
        raise("ValueError", string.format("%s values to unpack (expected 2, got %d)",
          #kv < 2 and "not enough" or "too many", #kv))
      end
      pairs_list[#pairs_list + 1] = { kv[1], kv[2] }
    end
  end
  local parts = {}
  for i, kv in ipairs(pairs_list) do
    parts[i] = url_quote(kv[1], true) .. "=" .. url_quote(kv[2], true)
  end
  return concat(parts, "&")
end

filters.urlize = function(_, v, args, kwargs)
  local a = bind("do_urlize", args, kwargs,
    { "trim_url_limit", "nofollow", "target", "rel", "extra_schemes" })
  local limit = none_to_nil(a[1])
  local rel_words = {}
  if a[2] ~= nil and truthy(a[2]) then rel_words[#rel_words + 1] = "nofollow" end
  local rel = none_to_nil(a[4]) or "noopener"
  rel_words[#rel_words + 1] = rel
  local rel_attr = ' rel="' .. pyval.escape(concat(rel_words, " ")) .. '"'
  local target = none_to_nil(a[3])
  local target_attr = target and (' target="' .. pyval.escape(target) .. '"') or ""
  local function shorten(u)
    if limit and ulen(u) > limit then
      return pyval.slice(u, 0, limit) .. (ulen(u) >= 3 and "..." or "")
    end
    return u
  end
  local s = text(v)
  return (s:gsub("(%s*)(%S+)(%s*)", function(pre, word, post)
    local head, middle, tail = word:match("^([%(<]*)(.-)([%.,%)>\n!]*)$")
    local href
    if middle:match("^https?://") then
      href = middle
    elseif middle:match("^www%.") or (middle:match("^[%w%-]+%.[%a][%w%.]*$")
      and (middle:match("%.com$") or middle:match("%.org$") or middle:match("%.net$"))) then
      href = "https://" .. middle
    elseif middle:match("^[%w%.%+%-_]+@[%w%-]+%.[%w%.%-]+$") and not middle:find(":") then
      return pre .. head .. '<a href="mailto:' .. middle .. '">' .. middle .. "</a>" .. tail .. post
    end
    if not href then return pre .. pyval.escape(word) .. post end
    return pre .. head .. '<a href="' .. pyval.escape(href) .. '"' .. rel_attr .. target_attr
      .. ">" .. pyval.escape(shorten(middle)) .. "</a>" .. tail .. post
  end))
end

filters.wordcount = function(_, v)
  return #require("renderers.jinja.py_re").findall("\\w+", text(v))
end

-- Python's textwrap.wrap as Jinja calls it (tabs and whitespace kept):
-- chunks of words and whitespace filled greedily, whitespace dropped at
-- line ends and at the start of every line but the first, long words cut.
-- textwrap's chunk patterns: whitespace runs, em-dashes, and words that
-- may break after a hyphen between letters.
local WS, NWS = "[\t\n\v\f\r ]", "[^\t\n\v\f\r ]"
local WP, LT = "[\\w!\"'&.,?]", "[^\\d\\W]"
local WORDSEP = "(" .. WS .. "+|(?<=" .. WP .. ")-{2,}(?=\\w)|" .. NWS .. "+?(?:-(?:(?<="
  .. LT .. "{2}-)|(?<=" .. LT .. "-" .. LT .. "-))(?=" .. LT .. "-?" .. LT .. ")|(?="
  .. WS .. "|\\Z)|(?<=" .. WP .. ")(?=-{2,}\\w)))"
local WORDSEP_SIMPLE = "(" .. WS .. "+)"

local function wrap_chunks(line, width, break_long, on_hyphens)
  local re = require("renderers.jinja.py_re")
  local chunks = {}
  for _, c in ipairs(re.split(on_hyphens and WORDSEP or WORDSEP_SIMPLE, line)) do
    if c and c ~= "" then chunks[#chunks + 1] = c end
  end
  local rev = {}
  for i = #chunks, 1, -1 do rev[#rev + 1] = chunks[i] end
  local lines = {}
  local function is_ws(c) return c:match("^%s*$") ~= nil end
  while #rev > 0 do
    local cur, cur_len = {}, 0
    if is_ws(rev[#rev]) and #lines > 0 then rev[#rev] = nil end
    while #rev > 0 do
      local l = ulen(rev[#rev])
      if cur_len + l > width then break end
      cur[#cur + 1] = table.remove(rev)
      cur_len = cur_len + l
    end
    if #rev > 0 and ulen(rev[#rev]) > width then
      local space_left = width < 1 and 1 or width - cur_len
      if break_long then
        local chunk = rev[#rev]
        local stop = space_left
        if on_hyphens and ulen(chunk) > space_left then
          local head = pyval.slice(chunk, 0, space_left)
          local hyphen = head:match(".*()%-")
          if hyphen and hyphen > 1 and head:sub(1, hyphen - 1):find("[^-]") then
            stop = hyphen
          end
        end
        cur[#cur + 1] = pyval.slice(chunk, 0, stop)
        rev[#rev] = pyval.slice(chunk, stop)
      elseif #cur == 0 then
        cur[#cur + 1] = table.remove(rev)
      end
    end
    if #cur > 0 and is_ws(cur[#cur]) then cur[#cur] = nil end
    if #cur > 0 then lines[#lines + 1] = concat(cur) end
  end
  return lines
end

filters.wordwrap = function(_, v, args, kwargs)
  local a = bind("do_wordwrap", args, kwargs,
    { "width", "break_long_words", "wrapstring", "break_on_hyphens" })
  local width = a[1] == nil and 79 or as_int(a[1])
  local break_long = a[2] == nil or truthy(a[2])
  local wrapstring = (a[3] == nil or a[3] == null) and "\n" or text(a[3])
  local on_hyphens = a[4] == nil or truthy(a[4])
  local out = {}
  for _, line in ipairs(methods.splitlines(want_str(v, "splitlines"))) do
    -- Python's TextWrapper refuses the width for each line it wraps (so
    -- not for an empty text, which has none)
    if width <= 0 then raise("ValueError", "invalid width " .. width .. " (must be > 0)") end
    out[#out + 1] = concat(wrap_chunks(line, width, break_long, on_hyphens), wrapstring)
  end
  return concat(out, wrapstring)
end

filters.xmlattr = function(_, v, args, kwargs)
  local a = bind("do_xmlattr", args, kwargs, { "autospace" })
  local parts = {}
  for _, k in ipairs(mapping_keys(v)) do
    local val = v[k]
    if val ~= null and not is_undef(val) then
      if type(k) == "string" and k:find("[%s/>=]") then
        raise("ValueError", "Invalid character in attribute name: " .. repr(k))
      end
      parts[#parts + 1] = pyval.escape(k) .. '="' .. pyval.escape(val) .. '"'
    end
  end
  local rv = concat(parts, " ")
  if (a[1] == nil or truthy(a[1])) and rv ~= "" then rv = " " .. rv end
  return pyval.markup(rv)
end

-- Salt's replacements of unique, min, max and tojson.
filters.unique = function(_, v, args, kwargs)
  bind("unique", args, kwargs, {})
  local out = {}
  for _, item in ipairs(items_of(v)) do
    local seen = false
    for _, o in ipairs(out) do
      if eq(o, item) then seen = true; break end
    end
    if not seen then out[#out + 1] = item end
  end
  return list(out)
end

local function extreme(fname, v, args, kwargs, sign)
  bind(fname, args, kwargs, {})
  local items = items_of(v)
  if #items == 0 then
    raise("ValueError", (sign > 0 and "max" or "min") .. "() arg is an empty sequence")
  end
  local best = items[1]
  for i = 2, #items do
    if pyval.compare(items[i], best, sign > 0 and ">" or "<") * sign > 0 then best = items[i] end
  end
  return best
end

filters.max = function(_, v, args, kwargs) return extreme("lst_max", v, args, kwargs, 1) end
filters.min = function(_, v, args, kwargs) return extreme("lst_min", v, args, kwargs, -1) end

-- The JSON text of template value v under encoder options opts. Plain
-- data (the usual case) is encoded as it is; anything else (Markup,
-- tuples, undefined values, big integers) goes through M.plain first,
-- which converts it or raises as Jinja would.
local strict_opts = setmetatable({}, { __mode = "k" })
local json_lib
function M.to_json(v, opts)
  local json = json_lib or require("brine.json")
  json_lib = json
  local strict = opts.strict_variant or strict_opts[opts]
  if not strict then
    strict = { strict = true }
    for k, x in pairs(opts) do strict[k] = x end
    strict_opts[opts] = strict
  end
  local s = json.encode(v, strict)
  if s then return s end
  local err
  s, err = json.encode(M.plain(v), opts)
  if not s then raise("TypeError", "cannot write as JSON: " .. tostring(err)) end
  return s
end

-- Options the filters use again and again carry their strict variant.
function M.json_opts(opts)
  opts.strict_variant = { strict = true }
  for k, x in pairs(opts) do
    if k ~= "strict_variant" then opts.strict_variant[k] = x end
  end
  return opts
end

local NO_KWARGS = pyval.NO_KWARGS
local TOJSON_OPTS = M.json_opts({ ensure_ascii = true, sort_keys = false })
filters.tojson = function(_, v, args, kwargs)
  local opts = TOJSON_OPTS
  if (args.n or #args) ~= 0 or (kwargs ~= NO_KWARGS and next(kwargs) ~= nil) then
    local a = bind("tojson", args, kwargs, { "indent" })
    opts = { ensure_ascii = true, sort_keys = false }
    if a[1] ~= nil and a[1] ~= null then opts.indent = as_int(a[1]) end
  end
  local s = M.to_json(v, opts)
  s = s:gsub("[<>&']", { ["<"] = "\\u003c", [">"] = "\\u003e", ["&"] = "\\u0026",
    ["'"] = "\\u0027" })
  return pyval.markup(s)
end

-- True when the encoders can take v as it is: scalars, null, and lists
-- and ordered maps holding only such values.
local ARRAY_MT = getmetatable(data.array())
local is_map = data.is_map -- each ordered map has a metatable of its own

local function is_plain(v, depth)
  local t = type(v)
  if t ~= "table" then return t ~= "function" and (t ~= "userdata" or v == null) end
  if depth > 100 then return false end
  local mt = getmetatable(v)
  if mt == ARRAY_MT then
    for i = 1, #v do
      local x = v[i]
      if type(x) == "table" and not is_plain(x, depth + 1) then return false end
    end
    return true
  elseif is_map(v) then
    for key, x in pairs(v) do
      if type(key) == "table" or not is_plain(x, depth + 1) then return false end
    end
    return true
  end
  return false
end

local function to_plain(v)
  local k = kind(v)
  if k == "undefined" then pyval.fail_undefined(v) end
  if k == "markup" then return v.s end
  if k == "bytes" then return v end -- brine.data byte strings: the encoders know them
  if k == "list" or k == "tuple" then
    local out = data.array()
    for i = 1, #v do out[i] = to_plain(v[i]) end
    return out
  end
  if k == "dict" then
    local out = data.map()
    for _, key in ipairs(pyval.keys(v)) do
      out[to_plain(key)] = to_plain(v[key])
    end
    return out
  end
  if k == "namespace" then return to_plain(v.attrs) end
  if k == "bigint" then return v end -- brine.data's encoders write its digits
  if k == "callable" or k == "object" or k == "other" then
    raise("TypeError", "Object of type " .. pyval.type_name(v) .. " is not JSON serializable")
  end
  return v
end

---A value prepared for the YAML and JSON encoders: undefined values
---raise, Markup becomes its string, tuples become lists, big integers
---become their decimal text. Plain data (the usual case) is returned as
---it is, without a copy.
function M.plain(v)
  if is_plain(v, 0) then return v end
  return to_plain(v)
end

-- ---------------------------------------------------------------- tests

local function num_like(v)
  local t = type(v)
  return t == "number" or kind(v) == "bigint"
end

tests.boolean = function(_, v) return type(v) == "boolean" end
tests.callable = function(_, v) return pyval.is_callable(v) or is_undef(v) end
tests.defined = function(_, v) return not is_undef(v) end
tests.undefined = function(_, v) return is_undef(v) end
tests.divisibleby = function(_, v, args)
  return eq(pyval.mod(v, args[1]), 0)
end
tests.escaped = function(_, v) return pyval.is_markup(v) end
-- Jinja 3's `filter` and `test` tests: is there a filter (test) of this name
tests.filter = function(env, v) return type(v) == "string" and env.filters[v] ~= nil end
tests.test = function(env, v) return type(v) == "string" and env.tests[v] ~= nil end
tests.even = function(_, v) return eq(pyval.mod(v, 2), 0) end
tests.odd = function(_, v) return eq(pyval.mod(v, 2), 1) end
tests["false"] = function(_, v) return v == false end
tests["true"] = function(_, v) return v == true end
tests.float = function(_, v) return mtype(v) == "float" end
tests.integer = function(_, v) return mtype(v) == "integer" or kind(v) == "bigint" end
tests.number = function(_, v) return num_like(v) or type(v) == "boolean" end
tests["in"] = function(_, v, args)
  -- an undefined value is in no empty list: Python compares it with nothing
  local k = kind(args[1])
  if is_undef(v) and (k == "list" or k == "tuple") and #args[1] == 0 then return false end
  return pyval.contains(args[1], v)
end
tests.iterable = function(_, v)
  if is_undef(v) then pyval.fail_undefined(v) end
  return pyval.is_iterable(v)
end
tests.lower = function(_, v)
  local s = str(v)
  return methods.bound("str", s, "islower")({ n = 0 }, {})
end
tests.upper = function(_, v)
  local s = str(v)
  return methods.bound("str", s, "isupper")({ n = 0 }, {})
end
tests.mapping = function(_, v) return kind(v) == "dict" end
tests.none = function(_, v) return v == null end
tests.sameas = function(_, v, args)
  local o = args[1]
  if type(v) == "number" and type(o) == "number" then
    return v == o and mtype(v) == mtype(o)
  end
  return rawequal(v, o)
end
tests.sequence = function(_, v)
  local k = kind(v)
  -- Jinja's test catches the error len() raises on an undefined value
  if k == "undefined" then return false end
  return k == "str" or k == "list" or k == "tuple" or k == "dict" or k == "markup"
    or k == "bytes"
end
tests.string = function(_, v) return type(v) == "string" or pyval.is_markup(v) end
tests.list = function(_, v) return kind(v) == "list" end

local function cmp_test(op)
  return function(_, v, args) return pyval.cmp_op(op, v, args[1]) end
end
tests.eq, tests["=="], tests.equalto = cmp_test("eq"), cmp_test("eq"), cmp_test("eq")
tests.ne, tests["!="] = cmp_test("ne"), cmp_test("ne")
tests.lt, tests["<"], tests.lessthan = cmp_test("lt"), cmp_test("lt"), cmp_test("lt")
tests.le, tests["<="] = cmp_test("le"), cmp_test("le")
tests.gt, tests[">"], tests.greaterthan = cmp_test("gt"), cmp_test("gt"), cmp_test("gt")
tests.ge, tests[">="] = cmp_test("ge"), cmp_test("ge")

tests.match = function(_, v, args, kwargs)
  local a = bind("test_match", args, kwargs, { "regex", "ignorecase", "multiline" })
  if a[1] == nil then
    raise("TypeError", "test_match() missing 1 required positional argument: 'rgx'")
  end
  local re = require("renderers.jinja.py_re")
  local flags = { ignorecase = a[2] ~= nil and truthy(a[2]),
    multiline = a[3] ~= nil and truthy(a[3]) }
  return re.match(text(a[1]), text(v), flags) ~= nil
end

-- ---------------------------------------------------------------- globals

local MAX_RANGE = 100000

globals.range = function(_, args)
  local n = args.n or #args
  if n == 0 then raise("TypeError", "range expected at least 1 argument, got 0") end
  if n > 3 then raise("TypeError", "range expected at most 3 arguments, got " .. n) end
  local start, stop, step = 0, as_int(args[1]), 1
  if n > 1 then start, stop = stop, as_int(args[2]) end
  if n == 3 then step = as_int(args[3]) end
  if step == 0 then raise("ValueError", "range() arg 3 must not be zero") end
  local count = 0
  if step > 0 and stop > start then count = (stop - start + step - 1) // step
  elseif step < 0 and stop < start then count = (start - stop - step - 1) // -step end
  if count > MAX_RANGE then
    raise("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE ("
      .. MAX_RANGE .. ").")
  end
  local out = {}
  for i = 0, count - 1 do out[i + 1] = start + i * step end
  return pyval.range(out, start, stop, step)
end

local function dict_from(args, kwargs, fname)
  local d = data.map()
  if (args.n or #args) > 1 then
    raise("TypeError", fname .. " expected at most 1 argument, got " .. (args.n or #args))
  end
  methods.dict_update(d, args, {})
  for _, k in ipairs(pyval.kwarg_names(kwargs)) do d[k] = kwargs[k] end
  return d
end

globals.dict = function(_, args, kwargs) return dict_from(args, kwargs, "dict") end
globals.odict = function(_, args, kwargs) return dict_from(args, kwargs, "OrderedDict") end

globals.namespace = function(_, args, kwargs)
  local init = dict_from(args, kwargs, "namespace")
  return pyval.namespace(init)
end

globals.cycler = function(_, args)
  local items = {}
  for i = 1, args.n or #args do items[i] = args[i] end
  if #items == 0 then raise("RuntimeError", "at least one item has to be provided") end
  local pos = 1
  local get = function(_, name)
    if name == "current" then return items[pos] end
    if name == "items" then return list(items) end
    if name == "pos" then return pos - 1 end
    if name == "next" then
      return function()
        local v = items[pos]
        pos = pos % #items + 1
        return v
      end
    end
    if name == "reset" then return function() pos = 1 end end
    return nil
  end
  return pyval.object("Cycler", get)
end

globals.joiner = function(_, args, kwargs)
  local a = bind("Joiner", args, kwargs, { "sep" })
  local sep = a[1] == nil and ", " or str(a[1])
  local used = false
  return setmetatable({}, {
    __name = "brine.joiner",
    __call = function()
      if not used then used = true; return "" end
      return sep
    end,
  })
end

-- Split with a pattern (the list is ASCII words and single spaces), not
-- with the Python-faithful str.split, which cost half a millisecond of
-- every start-up.
local LOREM = {}
for word in (
  "a ac accumsan ad adipiscing aenean aliquam aliquet amet ante aptent arcu at auctor augue "
  .. "bibendum blandit class commodo condimentum congue consectetuer consequat conubia "
  .. "convallis cras cubilia cum curabitur curae cursus dapibus diam dictum dictumst "
  .. "dignissim dis dolor donec dui duis egestas eget eleifend elementum elit enim erat eros "
  .. "est et etiam eu euismod facilisi facilisis fames faucibus felis fermentum feugiat "
  .. "fringilla fusce gravida habitant habitasse hac hendrerit hymenaeos iaculis id imperdiet "
  .. "in inceptos integer interdum ipsum justo lacinia lacus laoreet lectus leo libero ligula "
  .. "litora lobortis lorem luctus maecenas magna magnis malesuada massa mattis mauris metus "
  .. "mi molestie mollis montes morbi mus nam nascetur natoque nec neque netus nibh nisi nisl "
  .. "non nonummy nostra nulla nullam nunc odio orci ornare parturient pede pellentesque "
  .. "penatibus per pharetra phasellus placerat platea porta porttitor posuere potenti "
  .. "praesent pretium primis proin pulvinar purus quam quis quisque rhoncus ridiculus risus "
  .. "rutrum sagittis sapien scelerisque sed sem semper senectus sit sociis sociosqu sodales "
  .. "sollicitudin suscipit suspendisse taciti tellus tempor tempus tincidunt torquent "
  .. "tortor tristique turpis ullamcorper ultrices ultricies urna ut varius vehicula vel "
  .. "velit venenatis vestibulum vitae vivamus viverra volutpat vulputate"):gmatch("%S+") do
  LOREM[#LOREM + 1] = word
end

globals.lipsum = function(_, args, kwargs)
  local a = bind("generate_lorem_ipsum", args, kwargs, { "n", "html", "min", "max" })
  local n = a[1] == nil and 5 or as_int(a[1])
  local html = a[2] == nil or truthy(a[2])
  local lo, hi = a[3] == nil and 20 or as_int(a[3]), a[4] == nil and 100 or as_int(a[4])
  local paras = {}
  for p = 1, n do
    local words = {}
    local count = math.random(lo, hi)
    local cap = true
    for i = 1, count do
      local w = LOREM[math.random(#LOREM)]
      if cap then w = methods.capitalize(w); cap = false end
      if i < count and math.random(10) == 1 then w = w .. ","
      elseif i < count and math.random(12) == 1 then w = w .. "."; cap = true end
      words[i] = w
    end
    local para = concat(words, " ")
    if not para:match("%.$") then para = para:gsub(",$", "") .. "." end
    paras[p] = para
  end
  if html then
    for i, p in ipairs(paras) do paras[i] = "<p>" .. pyval.escape(p) .. "</p>" end
    return pyval.markup(concat(paras, "\n"))
  end
  return concat(paras, "\n\n")
end

globals["raise"] = function(_, args)
  raise("TemplateError", str(args[1] == nil and null or args[1]))
end

globals.show_full_context = function(env)
  local ctx = env and env.context
  if type(ctx) == "function" then ctx = ctx() end
  local out = data.map()
  if type(ctx) == "table" then
    for _, k in ipairs(pyval.keys(ctx)) do
      local v = ctx[k]
      local vk = kind(v)
      if vk ~= "callable" and vk ~= "object" and vk ~= "undefined" and vk ~= "other" then
        out[k] = v
      end
    end
  end
  return out
end

---The globals as callables bound to env, ready for the template context.
function M.bind_globals(env)
  local out = {}
  for name, g in pairs(globals) do
    out[name] = function(args, kwargs) return g(env, args, kwargs) end
  end
  return out
end

-- ---------------------------------------------------------------- undefined

M.accepts_undefined = {
  default = true, d = true, items = true, skip = true, is_list = true,
  defined = true, undefined = true, none = true, boolean = true, ["false"] = true,
  ["true"] = true, integer = true, float = true, number = true, string = true,
  mapping = true, callable = true, sameas = true, escaped = true, list = true,
  sequence = true, ["in"] = true, pprint = true,
}

-- Salt's own filters join the table last, so they win where names clash.
require("renderers.jinja.salt_filters").install(M)

return M
