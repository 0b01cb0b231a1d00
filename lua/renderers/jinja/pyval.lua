-- Python's value semantics for the Jinja-compatible template engine.
--
-- Templates written for Salt expect Python's behaviour from every value:
-- how it prints (repr and str), when it is true, how it compares, what `+`
-- and `%` do, which methods a string, list or dict has. This module owns
-- that behaviour; the engine calls it for every operation it compiles.
--
-- Values are brine's data model: None is data.null, bool/int/float/str are
-- Lua booleans, integers, floats and strings (UTF-8; lengths, indexes and
-- slices count characters, as in Python), a list is a data.array, a tuple a
-- data.tuple, a dict a data.map (plain Lua tables are read as lists when
-- their keys are 1..n, else as dicts). Objects of this module:
--   * undefined values (M.undefined): StrictUndefined, every use raises;
--   * integers beyond 64 bits (see renderers.jinja.py_bigint);
--   * Markup (M.markup), the result of `escape` and `safe`;
--   * bytes (M.bytes), the result of `to_bytes` and `str.encode`;
--   * namespaces (M.namespace): a table whose metatable is M.NAMESPACE
--     (__name "brine.namespace"); attributes live in its `attrs` map and
--     are set with M.setattr, which is what `{% set ns.x = 1 %}` compiles to;
--   * generic objects (M.object): a type name and an attribute function,
--     used for cycler, joiner and open to the engine (e.g. `loop`).
-- A callable is a Lua function or a table whose metatable has __call; either
-- is called as f(args, kwargs), where args is an array with field n and
-- kwargs a table of keyword arguments, and returns one value (nil means
-- None). To keep the order keywords were written in (dict(x=1, y=2) and
-- d.update(x=1, y=2) build dicts in that order), pass kwargs as a data.map
-- or record the order with M.kwarg_order[kwargs] = {names...}; otherwise
-- keys are read in sorted order. Errors are raised as tables
-- {class=, message=} (M.raise).
local data = require("brine.data")

local M = {}

local null = data.null
local mtype = math.type
-- The metatable as it is: no value here protects its metatable with
-- __metatable, and the plain getmetatable pays a lookup of that field on
-- every call of the hottest checks.
local getmetatable = debug.getmetatable
local concat = table.concat
local ARRAY_MT = getmetatable(data.array({}))
local TUPLE_MT = getmetatable(data.tuple({}))

local ERROR_MT = {
  __name = "brine.pyerror",
  __tostring = function(e) return e.class .. ": " .. e.message end,
}
local UNDEF_MT = { __name = "brine.undefined" }
local MARKUP_MT = { __name = "brine.markup" }
local BYTES_MT = data.bytes_metatable() -- shared with YAML's !!binary
local OBJECT_MT = { __name = "brine.object" }
M.NAMESPACE = { __name = "brine.namespace" }

local OWN_KINDS = {
  [UNDEF_MT] = "undefined", [MARKUP_MT] = "markup", [BYTES_MT] = "bytes",
  [OBJECT_MT] = "object", [M.NAMESPACE] = "namespace",
}

-- Lists that stand for dict views or named tuples, to print as Python does.
local views = setmetatable({}, { __mode = "k" })
local ranges = setmetatable({}, { __mode = "k" })
local named = setmetatable({}, { __mode = "k" })

local bigint -- renderers.jinja.py_bigint, loaded on first overflow
local methods -- renderers.jinja.py_methods, loaded on first attribute
local format -- renderers.jinja.py_format, loaded on first `%`

local function big()
  bigint = bigint or require("renderers.jinja.py_bigint")
  return bigint
end

local function meths()
  methods = methods or require("renderers.jinja.py_methods")
  return methods
end

-- ---------------------------------------------------------------- errors

---Raises a Python-style exception.
---@param class string e.g. "TypeError"
---@param message string
function M.raise(class, message)
  error(setmetatable({ class = class, message = message }, ERROR_MT), 0)
end
local raise = M.raise

---@return boolean true when e is an error raised by M.raise
function M.is_error(e)
  return getmetatable(e) == ERROR_MT
end

-- ---------------------------------------------------------------- kinds

---The Python kind of a value: "none", "bool", "int", "float", "str",
---"list", "tuple", "dict", "undefined", "markup", "bytes", "bigint",
---"namespace", "object", "callable" or "other".
function M.kind(v)
  local t = type(v)
  if t == "string" then return "str" end
  if t == "number" then return mtype(v) == "integer" and "int" or "float" end
  if t == "boolean" then return "bool" end
  if t == "table" then
    local mt = getmetatable(v)
    if mt then
      if mt == ARRAY_MT then return "list" end
      if mt == TUPLE_MT then return "tuple" end
      local own = OWN_KINDS[mt]
      if own then return own end
      if mt.__name == "brine.map" then return "dict" end
      if mt.__name == "brine.bigint" then return "bigint" end
      if mt.__call then return "callable" end
    end
    return data.kind(v) == "array" and "list" or "dict"
  end
  if v == null then return "none" end
  if t == "function" then return "callable" end
  return "other"
end
local kind = M.kind

local TYPE_NAMES = {
  none = "NoneType", bool = "bool", int = "int", float = "float", str = "str",
  list = "list", tuple = "tuple", dict = "dict", undefined = "StrictUndefined",
  markup = "Markup", bytes = "bytes", bigint = "int", namespace = "Namespace",
  callable = "function", other = "object",
}

---Python's type name of v, for messages ('str', 'int', 'NoneType', ...).
function M.type_name(v)
  local k = kind(v)
  if k == "object" then return v.type_name end
  if k == "list" and ranges[v] then return "range" end
  return TYPE_NAMES[k]
end
local type_name = M.type_name

function M.is_str(v) return type(v) == "string" end
function M.is_list(v) return kind(v) == "list" end
function M.is_dict(v) return kind(v) == "dict" end
function M.is_seq(v)
  local k = kind(v)
  return k == "list" or k == "tuple"
end

---@return boolean true for every int, float, bool and big integer
function M.is_number(v)
  local t = type(v)
  return t == "number" or t == "boolean" or kind(v) == "bigint"
end

function M.is_callable(v)
  if type(v) == "function" then return true end
  local mt = type(v) == "table" and getmetatable(v)
  return mt and mt.__call ~= nil or false
end

-- ---------------------------------------------------------------- builders

function M.list(t) return setmetatable(t or {}, ARRAY_MT) end
function M.tuple(t) return setmetatable(t or {}, TUPLE_MT) end
local list, tuple = M.list, M.tuple

---A dict from an array of {key, value} pairs (insertion order kept).
function M.dict(pairs_list) return data.map(pairs_list) end

---A list that prints as a dict view ("dict_keys", "dict_values",
---"dict_items").
function M.view(name, t)
  local l = list(t)
  views[l] = name
  return l
end

---The list of a range() call, which prints as Python's range object
---("range(0, 5)") and, like it, has no methods that change it.
function M.range(t, start, stop, step)
  local l = list(t)
  ranges[l] = { start, stop, step } -- printed only if ever printed
  return l
end

-- Python's repr of a range, from what M.range kept.
local function range_repr(r)
  if r[3] == 1 then return string.format("range(%d, %d)", r[1], r[2]) end
  return string.format("range(%d, %d, %d)", r[1], r[2], r[3])
end

---@return boolean true for a list made by M.range
function M.is_range(v) return ranges[v] ~= nil end

---A tuple whose fields can also be read by name. It prints as a plain
---tuple, as Jinja's _GroupTuple does.
---@param tname string the type's name, e.g. "_GroupTuple"
---@param fields string[] field names, in order
function M.named_tuple(tname, fields, t)
  local tp = tuple(t)
  named[tp] = { name = tname, fields = fields }
  return tp
end

function M.markup(s) return setmetatable({ s = s }, MARKUP_MT) end
function M.bytes(s) return setmetatable({ s = s }, BYTES_MT) end

---@return boolean
function M.is_markup(v) return getmetatable(v) == MARKUP_MT end

---A generic object: attribute reads call get(self, name), which returns the
---value or nil when the object has no such attribute.
function M.object(tname, get, fields)
  local o = fields or {}
  o.type_name = tname
  o.get = get
  return setmetatable(o, OBJECT_MT)
end

---A namespace, whose attributes are the pairs of `init` (a dict).
function M.namespace(init)
  local attrs = data.map()
  if init then
    for _, k in ipairs(data.keys(init)) do attrs[k] = init[k] end
  end
  return setmetatable({ attrs = attrs }, M.NAMESPACE)
end

function M.is_namespace(v) return getmetatable(v) == M.NAMESPACE end

-- ---------------------------------------------------------------- undefined

---An undefined value. Reading its truth, text, length or items raises.
---@param name? string the missing name
---@param hint? string the full message, overriding the default one
---@param obj? any the object whose attribute or item is missing
---@param exc? string the class raised on use (default UndefinedError)
function M.undefined(name, hint, obj, exc)
  return setmetatable({ name = name, hint = hint, obj = obj, exc = exc }, UNDEF_MT)
end
local undefined = M.undefined

---Jinja's plain (not strict) Undefined, which the inline `a if b` gives
---when b is false: it prints as nothing, is false, empty and of length 0,
---and fails like a strict one on any other use.
M.PLAIN_UNDEFINED = setmetatable({ plain = true, hint = "the inline if-expression evaluated"
  .. " to false and no else section was defined." }, UNDEF_MT)

function M.is_undefined(v) return getmetatable(v) == UNDEF_MT end
local function is_undef(v) return getmetatable(v) == UNDEF_MT end

local repr -- forward

---Jinja's object_type_repr: how messages name the type of an object.
local function object_type_repr(obj)
  if obj == null then return "None" end
  local k = kind(obj)
  if k == "namespace" then return "jinja2.utils.Namespace object" end
  if k == "markup" then return "markupsafe.Markup object" end
  return type_name(obj) .. " object"
end

---The message an undefined value raises with, worded as Jinja words it.
function M.undefined_message(u)
  if u.hint then return u.hint end
  if u.obj == nil then return repr(u.name) .. " is undefined" end
  if type(u.name) ~= "string" then
    return object_type_repr(u.obj) .. " has no element " .. repr(u.name)
  end
  return repr(object_type_repr(u.obj)) .. " has no attribute " .. repr(u.name)
end

---Raises the error that using undefined value u causes.
function M.fail_undefined(u)
  raise(u.exc or "UndefinedError", M.undefined_message(u))
end
local fail = M.fail_undefined

-- ---------------------------------------------------------------- strings

local function is_ascii(s) return not s:find("[\128-\255]") end
M.is_ascii = is_ascii

---The characters of s as an array (bytes when s is not valid UTF-8).
function M.chars(s)
  local out = {}
  if is_ascii(s) or not utf8.len(s) then
    for i = 1, #s do out[i] = s:sub(i, i) end
  else
    for _, c in utf8.codes(s) do out[#out + 1] = utf8.char(c) end
  end
  return out
end
local chars = M.chars

---Length of s in characters.
function M.ulen(s)
  return utf8.len(s) or #s
end
local ulen = M.ulen

---The string of a str or Markup value, else nil.
function M.text(v)
  if type(v) == "string" then return v end
  if getmetatable(v) == MARKUP_MT then return v.s end
  return nil
end

-- ---------------------------------------------------------------- repr / str

local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t", ["\\"] = "\\\\" }

local function repr_str(s)
  if not s:find("[%c\\'\"\127\194]") then return "'" .. s .. "'" end
  local q = "'"
  if s:find("'", 1, true) and not s:find('"', 1, true) then q = '"' end
  local out = s:gsub("[%c\\'\"\127]", function(c)
    if c == q then return "\\" .. c end
    if c == "'" or c == '"' then return c end
    return ESCAPES[c] or string.format("\\x%02x", c:byte())
  end)
  -- Non-printable Latin-1 characters (C1 controls, NBSP, soft hyphen).
  out = out:gsub("\194([\128-\160\173])", function(c)
    return string.format("\\x%02x", c:byte())
  end)
  return q .. out .. q
end

local function repr_bytes(s)
  local q = "'"
  if s:find("'", 1, true) and not s:find('"', 1, true) then q = '"' end
  local out = s:gsub("[%c\\'\"\127-\255]", function(c)
    if c == q then return "\\" .. c end
    if c == "'" or c == '"' then return c end
    return ESCAPES[c] or string.format("\\x%02x", c:byte())
  end)
  return "b" .. q .. out .. q
end

---Python's repr() of a float: the shortest digits that read back the same,
---in fixed notation for exponents -4..15 and scientific otherwise.
function M.float_repr(x)
  if x ~= x then return "nan" end
  if x == math.huge then return "inf" end
  if x == -math.huge then return "-inf" end
  if x == 0 then return (1 / x < 0) and "-0.0" or "0.0" end
  -- 15 significant digits read back for most values; the zeros they end
  -- with are stripped below, which leaves the shortest form.
  -- (Subnormal numbers carry fewer digits, so they search from 1.)
  local s
  for p = math.abs(x) < 2.2250738585072014e-308 and 1 or 15, 17 do
    s = string.format("%." .. (p - 1) .. "e", x)
    if tonumber(s) == x then break end
  end
  local sign, d1, rest, exp = s:match("^(-?)(%d)%.?(%d*)e([-+]%d+)$")
  local digits = (d1 .. rest):gsub("0+$", "")
  if digits == "" then digits = "0" end
  local decpt = tonumber(exp) + 1
  local n = #digits
  if decpt > 16 or decpt < -3 then
    local m = digits:sub(1, 1)
    if n > 1 then m = m .. "." .. digits:sub(2) end
    local e = decpt - 1
    return string.format("%s%se%s%02d", sign, m, e < 0 and "-" or "+", math.abs(e))
  end
  if decpt <= 0 then
    return sign .. "0." .. string.rep("0", -decpt) .. digits
  end
  if decpt >= n then
    return sign .. digits .. string.rep("0", decpt - n) .. ".0"
  end
  return sign .. digits:sub(1, decpt) .. "." .. digits:sub(decpt + 1)
end
local float_repr = M.float_repr

---The keys of a dict, in order (insertion order for maps, sorted for
---plain tables).
function M.keys(d)
  return data.keys(d)
end
local keys = M.keys

local reprs -- kind -> function(v, seen)

local function repr_in(v, seen)
  local k = kind(v)
  local f = reprs[k]
  if f then return f(v, seen) end
  return "<" .. type_name(v) .. " object>"
end

-- The text of the integers 0 to 1023, made on first use: printing an
-- integer otherwise formats it with snprintf each time (through
-- table.concat or `..`), which costs more than the rest of printing it.
local SMALL_INTS = setmetatable({}, { __index = function(t, i)
  if math.type(i) == "integer" and i >= 0 and i < 1024 then
    local s = tostring(i)
    t[i] = s
    return s
  end
end })
M.SMALL_INTS = SMALL_INTS

-- `seen` holds the containers being printed, the one printed included, so
-- that a list holding itself prints as [...] as in Python. The outermost
-- container is printed with seen nil, and the set is made only when one of
-- its items is a table (most printed lists hold none).
local function inner_seen(seen, t)
  return seen or { [t] = true }
end

-- Integers go into the pieces as they are (table.concat prints them as
-- Python does) and strings straight to repr_str: most items are one or
-- the other.
local function repr_items(t, seen)
  local parts = {}
  for i = 1, #t do
    local x = t[i]
    if mtype(x) == "integer" then
      parts[i] = SMALL_INTS[x] or x
    elseif type(x) == "string" then
      parts[i] = repr_str(x)
    else
      if type(x) == "table" then seen = inner_seen(seen, t) end
      parts[i] = repr_in(x, seen)
    end
  end
  return concat(parts, ", ")
end

-- f(v, seen) for a container v, or `open` when v is already being printed.
local function guard(v, seen, open, f)
  if seen == nil then return f(v, nil) end
  if seen[v] then return open end
  seen[v] = true
  local s = f(v, seen)
  seen[v] = nil
  return s
end

local function list_body(v, seen)
  local body = "[" .. repr_items(v, seen) .. "]"
  if views[v] then
    return views[v] .. "(" .. body .. ")"
  end
  return body
end

local function tuple_body(v, seen)
  if #v == 1 then
    if type(v[1]) == "table" then seen = inner_seen(seen, v) end
    return "(" .. repr_in(v[1], seen) .. ",)"
  end
  return "(" .. repr_items(v, seen) .. ")"
end

local function dict_body(v, seen)
  local parts = {}
  for i, key in ipairs(keys(v)) do
    local x = v[key]
    if type(x) == "table" or type(key) == "table" then seen = inner_seen(seen, v) end
    parts[i] = repr_in(key, seen) .. ": " .. repr_in(x, seen)
  end
  return "{" .. concat(parts, ", ") .. "}"
end

reprs = {
  none = function() return "None" end,
  bool = function(v) return v and "True" or "False" end,
  int = function(v) return tostring(v) end,
  float = float_repr,
  str = repr_str,
  bigint = function(v) return tostring(v) end,
  bytes = function(v) return repr_bytes(v.s) end,
  markup = function(v) return "Markup(" .. repr_str(v.s) .. ")" end,
  list = function(v, seen)
    local r = ranges[v]
    if r then return range_repr(r) end
    return guard(v, seen, "[...]", list_body)
  end,
  tuple = function(v, seen) return guard(v, seen, "(...)", tuple_body) end,
  dict = function(v, seen) return guard(v, seen, "{...}", dict_body) end,
  namespace = function(v, seen)
    return "<Namespace " .. reprs.dict(v.attrs, seen) .. ">"
  end,
  undefined = function() return "Undefined" end, -- Jinja's repr, StrictUndefined too
  callable = function() return "<function>" end,
  object = function(v) return "<" .. v.type_name .. " object>" end,
}

---Python's repr() of v.
function M.repr(v)
  return repr_in(v, nil)
end
repr = M.repr

---Python's str() of v. Raises UndefinedError for an undefined value.
function M.str(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then
    if mtype(v) == "integer" then return tostring(v) end
    return float_repr(v)
  end
  if t == "boolean" then return v and "True" or "False" end
  if v == null then return "None" end
  local mt = getmetatable(v)
  if mt == UNDEF_MT then
    if v.plain then return "" end
    fail(v)
  end
  if mt == MARKUP_MT then return v.s end
  if mt == OBJECT_MT and v.str then return v:str() end
  return repr(v)
end
local str = M.str

-- ---------------------------------------------------------------- truth

---Python's bool(v). Raises UndefinedError for an undefined value.
function M.truthy(v)
  local t = type(v)
  if t == "boolean" then return v end
  if t == "number" then return v ~= 0 end
  if t == "string" then return v ~= "" end
  if v == null or v == nil then return false end
  if t == "table" then
    local k = kind(v)
    if k == "list" or k == "tuple" then return #v > 0 end
    if k == "dict" then return next(v) ~= nil end
    if k == "undefined" then
      if v.plain then return false end
      fail(v)
    end
    if k == "markup" or k == "bytes" then return v.s ~= "" end
    if k == "bigint" then return true end
  end
  return true
end

-- ---------------------------------------------------------------- equality

local function num_of(v)
  if v == true then return 1 end
  if v == false then return 0 end
  return v
end

local eq

local function seq_eq(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if not eq(a[i], b[i]) then return false end
  end
  return true
end

local function dict_eq(a, b)
  local ka = keys(a)
  if #ka ~= #keys(b) then return false end
  for _, k in ipairs(ka) do
    local bv = b[k]
    if bv == nil or not eq(a[k], bv) then return false end
  end
  return true
end

---Python's a == b (1 == 1.0 and True == 1 hold; lists, tuples and dicts
---compare deeply). Raises UndefinedError when either side is undefined.
function M.eq(a, b)
  if rawequal(a, b) then
    if is_undef(a) then fail(a) end
    return a == a -- nan ~= nan
  end
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a == b end
  if ta == "string" and tb == "string" then return false end
  local ka, kb = kind(a), kind(b)
  if ka == "undefined" then fail(a) end
  if kb == "undefined" then fail(b) end
  if ta == "string" or tb == "string" then
    return M.text(a) ~= nil and M.text(a) == M.text(b)
  end
  if M.is_number(a) and M.is_number(b) then
    if ka == "bigint" or kb == "bigint" then return big().cmp(a, b) == 0 end
    return num_of(a) == num_of(b)
  end
  if ka ~= kb or (ranges[a] == nil) ~= (ranges[b] == nil) then return false end
  if ka == "list" or ka == "tuple" then return seq_eq(a, b) end
  if ka == "dict" then return dict_eq(a, b) end
  if ka == "markup" or ka == "bytes" then return a.s == b.s end
  if ka == "namespace" then return false end
  return false
end
eq = M.eq

-- ---------------------------------------------------------------- ordering

local function cmp_fail(a, b, op)
  raise("TypeError", string.format("'%s' not supported between instances of '%s' and '%s'",
    op or "<", type_name(a), type_name(b)))
end

local compare

local function seq_compare(a, b, op)
  local n = math.min(#a, #b)
  for i = 1, n do
    if not eq(a[i], b[i]) then return compare(a[i], b[i], op) end
  end
  if #a == #b then return 0 end
  return #a < #b and -1 or 1
end

---Python ordering of a and b: -1, 0 or 1. Raises TypeError for values
---Python cannot order ("'<' not supported between instances of ...").
---@param op? string the operator named in the message (default "<")
function M.compare(a, b, op)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then
    if a < b then return -1 elseif a > b then return 1 else return 0 end
  end
  if ta == "string" and tb == "string" then
    if a < b then return -1 elseif a > b then return 1 else return 0 end
  end
  local ka, kb = kind(a), kind(b)
  if ka == "undefined" then fail(a) end
  if kb == "undefined" then fail(b) end
  if M.is_number(a) and M.is_number(b) then
    if ka == "bigint" or kb == "bigint" then return big().cmp(a, b) end
    return compare(num_of(a), num_of(b))
  end
  local sa, sb = M.text(a), M.text(b)
  if sa and sb then return compare(sa, sb) end
  if ka == kb and (ka == "list" or ka == "tuple") then return seq_compare(a, b, op) end
  if ka == "bytes" and kb == "bytes" then return compare(a.s, b.s) end
  cmp_fail(a, b, op)
end
compare = M.compare

---Python's a < b etc., by operator name ("lt", "le", "gt", "ge", "eq", "ne").
function M.cmp_op(op, a, b)
  if op == "eq" then return eq(a, b) end
  if op == "ne" then return not eq(a, b) end
  -- nan compares false with everything
  if (type(a) == "number" and a ~= a) or (type(b) == "number" and b ~= b) then
    if (type(a) == "number" or type(a) == "boolean")
      and (type(b) == "number" or type(b) == "boolean") then
      return false
    end
  end
  local sym = ({ lt = "<", le = "<=", gt = ">", ge = ">=" })[op]
  local c = compare(a, b, sym)
  if op == "lt" then return c < 0 end
  if op == "le" then return c <= 0 end
  if op == "gt" then return c > 0 end
  return c >= 0
end

---A stable sort of array t in place, with Python's ordering (or a key
---function and reverse flag as in list.sort).
function M.sort(t, key, reverse)
  local n = #t
  local ks = {}
  for i = 1, n do ks[i] = { key and key(t[i]) or t[i], i, t[i] } end
  table.sort(ks, function(x, y)
    local c = compare(x[1], y[1])
    if reverse then c = -c end
    if c ~= 0 then return c < 0 end
    return x[2] < y[2]
  end)
  for i = 1, n do t[i] = ks[i][3] end
  return t
end

-- ---------------------------------------------------------------- arithmetic

local function op_fail(op, a, b)
  raise("TypeError", string.format("unsupported operand type(s) for %s: '%s' and '%s'",
    op, type_name(a), type_name(b)))
end

local function check_undef(a, b)
  if is_undef(a) then fail(a) end
  if is_undef(b) then fail(b) end
end

-- Operands as Lua numbers (bools are ints), or nil when not numeric.
local function nums(a, b)
  local ta, tb = type(a), type(b)
  if (ta == "number" or ta == "boolean") and (tb == "number" or tb == "boolean") then
    return num_of(a), num_of(b)
  end
  return nil
end

local function has_big(a, b)
  return kind(a) == "bigint" or kind(b) == "bigint"
end

-- An operation of renderers.jinja.py_bigint, booleans taken as 0 and 1.
local function big_op(name, a, b)
  return big()[name](num_of(a), num_of(b))
end

local function is_int(v)
  return mtype(v) == "integer"
end

local function concat_seq(a, b, mk)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  for i = 1, #b do out[#out + 1] = b[i] end
  return mk(out)
end

function M.add(a, b)
  if mtype(a) == "integer" and mtype(b) == "integer" then
    local r = a + b -- the common case first: no overflow when the signs differ
    if (a >= 0) ~= (b >= 0) or (r >= 0) == (a >= 0) then return r end
  end
  local x, y = nums(a, b)
  if x then
    if is_int(x) and is_int(y) then
      local r = x + y
      if (x >= 0) == (y >= 0) and (r >= 0) ~= (x >= 0) then return big().add(x, y) end
      return r
    end
    return x + y
  end
  check_undef(a, b)
  if has_big(a, b) and M.is_number(a) and M.is_number(b) then return big_op("add", a, b) end
  local ka, kb = kind(a), kind(b)
  if ka == "str" or ka == "markup" then
    local sb = M.text(b)
    if not sb then
      raise("TypeError", string.format('can only concatenate str (not "%s") to str', type_name(b)))
    end
    if ka == "markup" then return M.markup(a.s .. M.escape(b)) end
    if kb == "markup" then return M.markup(M.escape(a) .. b.s) end
    return a .. b
  end
  if (ka == "list" or ka == "tuple") and kb ~= ka then
    raise("TypeError", string.format('can only concatenate %s (not "%s") to %s',
      ka, type_name(b), ka))
  end
  if ka == "list" then return concat_seq(a, b, list) end
  if ka == "tuple" then return concat_seq(a, b, tuple) end
  if ka == "bytes" and kb == "bytes" then return M.bytes(a.s .. b.s) end
  op_fail("+", a, b)
end

function M.sub(a, b)
  if mtype(a) == "integer" and mtype(b) == "integer" then
    local r = a - b
    if (a >= 0) == (b >= 0) or (r >= 0) == (a >= 0) then return r end
  end
  local x, y = nums(a, b)
  if x then
    if is_int(x) and is_int(y) then
      local r = x - y
      if (x >= 0) ~= (y >= 0) and (r >= 0) ~= (x >= 0) then return big().sub(x, y) end
      return r
    end
    return x - y
  end
  check_undef(a, b)
  if has_big(a, b) and M.is_number(a) and M.is_number(b) then return big_op("sub", a, b) end
  op_fail("-", a, b)
end

-- Bounds of one value made by repetition (`'x' * n`, `[x] * n`): past
-- them a template gets Python's MemoryError instead of exhausting memory.
M.MAX_STRING = 64 * 1048576
M.MAX_ITEMS = 1 << 22

local function too_large(what, size, limit)
  if size > limit then
    raise("MemoryError", string.format("%s of %.0f would exceed the sandbox limit of %d",
      what, size, limit))
  end
end

local function repeat_seq(t, n, mk)
  too_large("a repeated sequence", #t * math.max(n, 0) * 1.0, M.MAX_ITEMS)
  local out = {}
  for _ = 1, n do
    for i = 1, #t do out[#out + 1] = t[i] end
  end
  return mk(out)
end

local function mul_int(x, y)
  if x == 0 or y == 0 then return 0 end
  local r = x * y
  if r // y ~= x or (x == -1 and y == math.mininteger) or (y == -1 and x == math.mininteger) then
    return big().mul(x, y)
  end
  return r
end

function M.mul(a, b)
  if mtype(a) == "integer" and mtype(b) == "integer" then return mul_int(a, b) end
  local x, y = nums(a, b)
  if x then
    if is_int(x) and is_int(y) then return mul_int(x, y) end
    return x * y
  end
  check_undef(a, b)
  if has_big(a, b) and M.is_number(a) and M.is_number(b) then return big_op("mul", a, b) end
  local ka, kb = kind(a), kind(b)
  if (ka == "int" or ka == "bool") and kb ~= "int" then a, b, ka, kb = b, a, kb, ka end
  if kb == "int" or kb == "bool" then
    local n = num_of(b)
    if ka == "str" or ka == "markup" then
      local s = ka == "str" and a or a.s
      too_large("a repeated string", #s * math.max(n, 0) * 1.0, M.MAX_STRING)
      s = n > 0 and string.rep(s, n) or ""
      return ka == "str" and s or M.markup(s)
    end
    if ka == "list" then return repeat_seq(a, n, list) end
    if ka == "tuple" then return repeat_seq(a, n, tuple) end
  end
  if ka == "str" or ka == "list" or ka == "tuple" then
    raise("TypeError", string.format("can't multiply sequence by non-int of type '%s'",
      type_name(b)))
  end
  op_fail("*", a, b)
end

local function to_float(v)
  if kind(v) == "bigint" then return big().tofloat(v) end
  return num_of(v) * 1.0 -- (+ 0.0 would turn -0.0 into 0.0)
end

function M.truediv(a, b)
  check_undef(a, b)
  if not (M.is_number(a) and M.is_number(b)) then op_fail("/", a, b) end
  local x, y = to_float(a), to_float(b)
  if y == 0 then
    local both_int = not (mtype(a) == "float" or mtype(b) == "float")
    raise("ZeroDivisionError", both_int and "division by zero" or "float division by zero")
  end
  return x / y
end

function M.floordiv(a, b)
  if mtype(a) == "integer" and mtype(b) == "integer" and b > 0 then return a // b end
  check_undef(a, b)
  local x, y = nums(a, b)
  if not x then
    if has_big(a, b) and M.is_number(a) and M.is_number(b) then
      return big_op("floordiv", a, b)
    end
    op_fail("//", a, b)
  end
  if y == 0 then
    raise("ZeroDivisionError", (is_int(x) and is_int(y)) and "integer division or modulo by zero"
      or "float floor division by zero")
  end
  if is_int(x) and is_int(y) and x == math.mininteger and y == -1 then
    return big().neg(x)
  end
  return x // y
end

-- The values of `markup % values` with their strings escaped (a tuple's
-- and a dict's too), Markup ones taken as they are.
local function escaped_args(v)
  local k = kind(v)
  if k == "str" or k == "markup" then return M.escape(v) end
  if k == "tuple" then
    local out = {}
    for i = 1, #v do out[i] = escaped_args(v[i]) end
    return M.tuple(out)
  end
  if k == "dict" then
    local pairs_list = {}
    for i, key in ipairs(M.keys(v)) do pairs_list[i] = { key, escaped_args(v[key]) } end
    return M.dict(pairs_list)
  end
  if k == "int" or k == "float" or k == "bool" or k == "bigint" or k == "undefined" then
    return v
  end
  return M.escape(M.str(v)) -- any other value prints as its escaped str()
end

function M.mod(a, b)
  if mtype(a) == "integer" and mtype(b) == "integer" and b ~= 0 then return a % b end
  if type(a) == "string" and mtype(b) == "integer" then -- '%02d' % i, the usual case
    format = format or require("renderers.jinja.py_format")
    return format.percent(a, b)
  end
  local ka = kind(a)
  if ka == "str" or ka == "markup" then
    -- (an undefined value on the right fails only once a conversion reads
    -- it: Python takes it for a mapping, as it has __getitem__)
    format = format or require("renderers.jinja.py_format")
    if ka == "markup" then
      -- markupsafe escapes the strings a Markup format is given
      return M.markup(format.percent(a.s, escaped_args(b)))
    end
    return format.percent(a, b)
  end
  check_undef(a, b)
  local x, y = nums(a, b)
  if not x then
    if has_big(a, b) and M.is_number(a) and M.is_number(b) then return big_op("mod", a, b) end
    op_fail("%", a, b)
  end
  if y == 0 then
    raise("ZeroDivisionError", (is_int(x) and is_int(y)) and "integer division or modulo by zero"
      or "float modulo")
  end
  if is_int(x) and is_int(y) and y == -1 then return 0 end
  local r = x % y
  if r == 0 and mtype(r) == "float" then
    return y < 0 and -0.0 or 0.0 -- Python gives a zero the divisor's sign
  end
  return r
end

local function pow_int(x, y)
  local result, base = 1, x
  while y > 0 do
    if y % 2 == 1 then
      result = mul_int(result, base)
      if kind(result) == "bigint" then return big().pow(x, y) end
    end
    y = y // 2
    if y > 0 then
      base = mul_int(base, base)
      if kind(base) == "bigint" then return big().pow(x, y * 2 + 0) end
    end
  end
  return result
end

function M.pow(a, b)
  check_undef(a, b)
  local x, y = nums(a, b)
  if not x then
    if has_big(a, b) and M.is_number(a) and M.is_number(b) then return big_op("pow", a, b) end
    op_fail("** or pow()", a, b)
  end
  if is_int(x) and is_int(y) then
    if y >= 0 then
      if math.abs(x) <= 1 or y <= 1 then return math.tointeger(x ^ y) or pow_int(x, y) end
      local f = math.abs(x + 0.0) ^ y
      if f < 2 ^ 62 then return pow_int(x, y) end
      return big().pow(x, y)
    end
    if x == 0 then raise("ZeroDivisionError", "0.0 cannot be raised to a negative power") end
    return (x + 0.0) ^ y
  end
  if x == 0 and y < 0 then
    raise("ZeroDivisionError", "0.0 cannot be raised to a negative power")
  end
  local r = x ^ y
  if (r == math.huge or r == -math.huge) and x == x and y == y and x ~= math.huge
      and x ~= -math.huge and y ~= math.huge and y ~= -math.huge then
    raise("OverflowError", "(34, 'Numerical result out of range')")
  end
  return r
end

---An integer from its digits in `base` (2..36), exact beyond 64 bits.
---Underscores and a "0x"/"0o"/"0b" prefix are not accepted here; strip
---them first. Returns nil when a character is not a digit of the base.
function M.int_from_digits(digits, base)
  base = base or 10
  if digits == "" then return nil end
  local v = 0
  for i = 1, #digits do
    local d = tonumber(digits:sub(i, i), 36)
    if not d or d >= base then return nil end
    v = M.add(M.mul(v, base), d)
  end
  return v
end

function M.neg(a)
  local t = type(a)
  if t == "number" then
    if a == math.mininteger then return big().neg(a) end
    return -a
  end
  if t == "boolean" then return a and -1 or 0 end
  if is_undef(a) then fail(a) end
  if kind(a) == "bigint" then return big().neg(a) end
  raise("TypeError", "bad operand type for unary -: '" .. type_name(a) .. "'")
end

function M.pos(a)
  local t = type(a)
  if t == "number" or kind(a) == "bigint" then return a end
  if t == "boolean" then return a and 1 or 0 end
  if is_undef(a) then fail(a) end
  raise("TypeError", "bad operand type for unary +: '" .. type_name(a) .. "'")
end

---Jinja's `~`: the str() of both operands, joined.
function M.concat(a, b)
  return str(a) .. str(b)
end

-- ---------------------------------------------------------------- containers

---Python's `item in container`.
function M.contains(container, item)
  local k = kind(container)
  if k == "str" or k == "markup" then
    local s = M.text(item)
    if not s then
      if is_undef(item) then fail(item) end
      raise("TypeError", "'in <string>' requires string as left operand, not "
        .. type_name(item))
    end
    return M.text(container):find(s, 1, true) ~= nil
  end
  if k == "list" or k == "tuple" then
    for i = 1, #container do
      if eq(container[i], item) then return true end
    end
    return false
  end
  if k == "dict" then
    if is_undef(item) then fail(item) end
    local ki = kind(item)
    if ki == "list" or ki == "dict" or ki == "namespace" then
      raise("TypeError", "unhashable type: '" .. type_name(item) .. "'")
    end
    if type(item) == "boolean" then item = item and 1 or 0 end
    return item ~= nil and container[item] ~= nil
  end
  if k == "undefined" then fail(container) end
  if k == "namespace" then
    raise("TypeError", "argument of type 'Namespace' is not iterable")
  end
  if k == "object" and container.iter then
    for _, v in ipairs(container:iter()) do
      if eq(v, item) then return true end
    end
    return false
  end
  raise("TypeError", "argument of type '" .. type_name(container) .. "' is not iterable")
end

---Python's iter(v), materialised: a Lua array of the items (a dict's keys,
---a string's characters).
function M.iter(v)
  local k = kind(v)
  if k == "list" or k == "tuple" then return table.move(v, 1, #v, 1, {}) end
  if k == "dict" then return keys(v) end
  if k == "str" then return chars(v) end
  if k == "markup" then return chars(v.s) end
  if k == "bytes" then
    local out = {}
    for i = 1, #v.s do out[i] = v.s:byte(i) end
    return out
  end
  if k == "undefined" then return v.plain and {} or fail(v) end
  if k == "object" and v.iter then return v:iter() end
  raise("TypeError", "'" .. type_name(v) .. "' object is not iterable")
end

---@return boolean true when M.iter accepts v
function M.is_iterable(v)
  local k = kind(v)
  return k == "list" or k == "tuple" or k == "dict" or k == "str" or k == "markup"
    or k == "bytes" or (k == "object" and v.iter ~= nil)
end

---Python's len(v).
function M.len(v)
  local k = kind(v)
  if k == "str" then return ulen(v) end
  if k == "list" or k == "tuple" then return #v end
  if k == "dict" then return data.count(v) end
  if k == "markup" then return ulen(v.s) end
  if k == "bytes" then return #v.s end
  if k == "undefined" then return v.plain and 0 or fail(v) end
  if k == "object" and v.iter then return #v:iter() end
  raise("TypeError", "object of type '" .. type_name(v) .. "' has no len()")
end

-- ---------------------------------------------------------------- items

local function index_of(v, what)
  local t = type(v)
  if t == "boolean" then return v and 1 or 0 end
  if mtype(v) == "integer" then return v end
  if is_undef(v) then fail(v) end
  raise("TypeError", string.format("%s indices must be integers or slices, not %s",
    what, type_name(v)))
end

---Python's obj[key] as Jinja reads it: a missing key or index gives an
---undefined value; a string key falls back to the attribute of that name.
function M.getitem(obj, key)
  local k = kind(obj)
  if k == "dict" then
    if is_undef(key) then fail(key) end
    local hk = key
    if type(key) == "boolean" then hk = key and 1 or 0 end
    local v = (hk ~= nil and hk == hk) and obj[hk] or nil
    if v ~= nil then return v end
  elseif k == "list" or k == "tuple" or k == "str" or k == "markup" then
    local i = (type(key) == "number" or type(key) == "boolean") and index_of(key, k) or nil
    if i and k == "str" and is_ascii(obj) then -- a byte is a character
      local n = #obj
      if i < 0 then i = i + n end
      if i >= 0 and i < n then return obj:sub(i + 1, i + 1) end
      return undefined(key, nil, obj)
    elseif i then
      local items = (k == "list" or k == "tuple") and obj or chars(M.text(obj))
      local n = #items
      if i < 0 then i = i + n end
      if i >= 0 and i < n then return items[i + 1] end
      return undefined(key, nil, obj)
    end
  elseif k == "undefined" then
    fail(obj)
  elseif k == "namespace" then
    local v = type(key) == "string" and obj.attrs[key]
    if v ~= nil and (v ~= false or type(key) == "string") then return v end
  end
  if type(key) == "string" then
    return M.getattr(obj, key)
  end
  return undefined(key, nil, obj)
end

local function slice_indices(n, start, stop, step)
  local function idx(v)
    if v == nil or v == null then return nil end
    if type(v) == "boolean" then return v and 1 or 0 end
    if mtype(v) ~= "integer" then
      if is_undef(v) then fail(v) end
      raise("TypeError", "slice indices must be integers or None or have an __index__ method")
    end
    return v
  end
  start, stop, step = idx(start), idx(stop), idx(step) or 1
  if step == 0 then raise("ValueError", "slice step cannot be zero") end
  local function adjust(i, default)
    if i == nil then return default end
    if i < 0 then
      i = i + n
      if i < 0 then i = step < 0 and -1 or 0 end
    elseif i >= n then
      i = step < 0 and n - 1 or n
    end
    return i
  end
  if step > 0 then
    return adjust(start, 0), adjust(stop, n), step
  end
  return adjust(start, n - 1), adjust(stop, -1), step
end

---Python's obj[start:stop:step] for str, list and tuple (nil or None for
---an omitted bound).
function M.slice(obj, start, stop, step)
  local k = kind(obj)
  local items
  if k == "list" or k == "tuple" then
    items = obj
  elseif k == "str" and is_ascii(obj) and (step == nil or step == null or step == 1) then
    -- the common s[a:b] of an ASCII string: one sub, no character table
    local i, j = slice_indices(#obj, start, stop, step)
    return i < j and obj:sub(i + 1, j) or ""
  elseif k == "str" or k == "markup" then
    items = chars(M.text(obj))
  elseif k == "undefined" then
    fail(obj)
  else
    raise("TypeError", "'" .. type_name(obj) .. "' object is not subscriptable")
  end
  local i, j, st = slice_indices(#items, start, stop, step)
  local out = {}
  if st > 0 then
    while i < j do out[#out + 1] = items[i + 1]; i = i + st end
  else
    while i > j do out[#out + 1] = items[i + 1]; i = i + st end
  end
  if k == "list" then return list(out) end
  if k == "tuple" then return tuple(out) end
  local s = concat(out)
  return k == "markup" and M.markup(s) or s
end

-- ---------------------------------------------------------------- attributes

local UNSAFE = {
  mro = true, func_globals = true, func_code = true, gi_frame = true, gi_code = true,
  cr_frame = true, cr_code = true, ag_code = true, ag_frame = true, f_globals = true,
}

---@return boolean true when attribute `name` is one the sandbox refuses
function M.is_unsafe(name)
  return type(name) == "string" and (name:sub(1, 1) == "_" or UNSAFE[name] == true)
end

---Raises SecurityError when reading attribute `name` of obj is unsafe, as
---Jinja's SandboxedEnvironment does (names starting with "_", mro, ...).
function M.sandbox_check(name, obj)
  if M.is_unsafe(name) then
    local owner = obj == nil and "object" or type_name(obj)
    raise("SecurityError", string.format("access to attribute %s of '%s' object is unsafe.",
      repr(name), owner))
  end
end

local function unsafe_undefined(obj, name)
  return undefined(name, string.format("access to attribute %s of '%s' object is unsafe.",
    repr(name), type_name(obj)), obj, "SecurityError")
end

---Jinja's obj.name: the attribute (a bound method for str, list and dict
---methods), else the item of that name, else an undefined value. Unsafe
---names give an undefined value that raises SecurityError when used.
function M.getattr(obj, name)
  local k = kind(obj)
  if k == "undefined" then fail(obj) end
  if type(name) ~= "string" then return M.getitem(obj, name) end
  if M.is_unsafe(name) then
    if k == "dict" and obj[name] ~= nil then return obj[name] end
    return unsafe_undefined(obj, name)
  end
  if k == "namespace" then
    local v = obj.attrs[name]
    if v ~= nil then return v end
    return undefined(name, nil, obj)
  end
  if k == "object" then
    local v = obj:get(name)
    if v ~= nil then return v end
    return undefined(name, nil, obj)
  end
  local m = meths().bound(k, obj, name)
  if m ~= nil then return m end
  if k == "tuple" and named[obj] then
    for i, f in ipairs(named[obj].fields) do
      if f == name then return obj[i] end
    end
  end
  if k == "dict" then
    local v = obj[name]
    if v ~= nil then return v end
  end
  return undefined(name, nil, obj)
end

---Sets attribute `name` of a namespace (what `{% set ns.name = v %}`
---does). Other objects raise TemplateRuntimeError, as in Jinja.
function M.setattr(obj, name, value)
  if getmetatable(obj) ~= M.NAMESPACE then
    if is_undef(obj) then fail(obj) end
    raise("TemplateRuntimeError", "cannot assign attribute on non-namespace object")
  end
  M.sandbox_check(name, obj)
  obj.attrs[name] = value
end

-- ---------------------------------------------------------------- calls

local NO_KW = setmetatable({}, { __newindex = function() error("read-only", 2) end })
M.NO_KWARGS = NO_KW

---The written order of a kwargs table's names, when its caller recorded it.
M.kwarg_order = setmetatable({}, { __mode = "k" })

---The names of a kwargs table in written order (see M.kwarg_order).
function M.kwarg_names(kwargs)
  local order = M.kwarg_order[kwargs]
  if order then
    local out = {}
    for _, k in ipairs(order) do
      if kwargs[k] ~= nil then out[#out + 1] = k end
    end
    return out
  end
  return data.keys(kwargs)
end

---Calls a callable with Python-style arguments.
---@param fn any a Lua function or a table with __call: fn(args, kwargs)
---@param args? table positional arguments, with field n
---@param kwargs? table keyword arguments
function M.call(fn, args, kwargs)
  args = args or { n = 0 }
  if args.n == nil then args.n = #args end
  kwargs = kwargs or NO_KW
  local t = type(fn)
  local r
  if t == "function" then
    r = fn(args, kwargs)
  elseif t == "table" and getmetatable(fn) and getmetatable(fn).__call then
    if is_undef(fn) then fail(fn) end
    r = fn(args, kwargs)
  else
    if is_undef(fn) then fail(fn) end
    raise("TypeError", "'" .. type_name(fn) .. "' object is not callable")
  end
  if r == nil then return null end
  return r
end

-- ---------------------------------------------------------------- escaping

local HTML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&#34;", ["'"] = "&#39;" }

---MarkupSafe's escape, as a string: Markup passes through unchanged.
function M.escape(v)
  if getmetatable(v) == MARKUP_MT then return v.s end
  return (str(v):gsub("[&<>\"']", HTML))
end

return M
