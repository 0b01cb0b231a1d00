-- Python's two string formatting languages, as templates use them:
-- printf-style `'%s-%05d' % (a, b)` (also the `format` filter) and
-- `'{0}:{name:>10}'.format(...)` with the format-spec mini-language.
--
-- Field lookups inside str.format go through pyval.getattr/getitem and the
-- sandbox check, so `'{0.__class__}'.format(1)` raises SecurityError as
-- in Jinja's sandboxed environment.
local pyval = require("renderers.jinja.pyval")

local M = {}

local raise, str, repr, kind = pyval.raise, pyval.str, pyval.repr, pyval.kind
local ulen = pyval.ulen
local mtype = math.type

-- ---------------------------------------------------------------- helpers

local function pad(body, width, align, fill)
  local n = ulen(body)
  if not width or n >= width then return body end
  local total = width - n
  fill = fill or " "
  if align == "<" then return body .. fill:rep(total) end
  if align == "^" then
    local left = total // 2
    return fill:rep(left) .. body .. fill:rep(total - left)
  end
  if align == "=" then
    local sign, rest = body:match("^([+%- ]?0?[xXob]?)(.*)$")
    if not sign:find("[xXob]") then sign, rest = body:match("^([+%- ]?)(.*)$") end
    return sign .. fill:rep(total) .. rest
  end
  return fill:rep(total) .. body
end

local function as_number(v)
  if v == true then return 1 end
  if v == false then return 0 end
  return v
end

local function fmt_float(x, conv, prec)
  if x ~= x then return conv:match("%u") and "NAN" or "nan" end
  if x == math.huge or x == -math.huge then
    local s = (x < 0 and "-" or "") .. "inf"
    return conv:match("%u") and s:upper() or s
  end
  return string.format("%." .. prec .. conv, x)
end

local function group_digits(s, sep)
  local sign, int, rest = s:match("^([+%- ]?)(%d+)(.*)$")
  if not int then return s end
  local out = int:reverse():gsub("(%d%d%d)", "%1" .. sep):reverse()
  if out:sub(1, 1) == sep then out = out:sub(2) end
  return sign .. out .. rest
end

local function int_text(v, base, upper)
  if pyval.kind(v) == "bigint" then return tostring(v) end
  local neg = v < 0
  local digits
  if base == 10 then
    digits = tostring(v):gsub("^-", "")
  elseif base == 2 then
    local n = neg and -v or v
    local t = {}
    repeat t[#t + 1] = tostring(n % 2); n = n // 2 until n == 0
    digits = table.concat(t):reverse()
  else
    digits = string.format(base == 8 and "%o" or "%x", neg and -v or v)
    if upper then digits = digits:upper() end
  end
  return digits, neg
end

-- ---------------------------------------------------------------- printf

local function want_real(v, conv)
  local k = kind(v)
  if k == "int" or k == "float" or k == "bool" or k == "bigint" then return as_number(v) end
  if k == "undefined" then pyval.fail_undefined(v) end
  raise("TypeError", string.format("%%%s format: a real number is required, not %s",
    conv, pyval.type_name(v)))
end

local function want_int(v, conv)
  local k = kind(v)
  if k == "int" or k == "bool" or k == "bigint" then return as_number(v) end
  if k == "undefined" then pyval.fail_undefined(v) end
  raise("TypeError", string.format("%%%s format: an integer is required, not %s",
    conv, pyval.type_name(v)))
end

local function sign_of(neg, flags)
  if neg then return "-" end
  if flags:find("+", 1, true) then return "+" end
  if flags:find(" ", 1, true) then return " " end
  return ""
end

-- Python's ascii(): repr with every character past ASCII escaped.
local function ascii(v)
  local r = repr(v)
  if not r:find("[\128-\255]") or not utf8.len(r) then return r end
  return (r:gsub(utf8.charpattern, function(c)
    local cp = utf8.codepoint(c)
    if cp < 0x80 then return c end
    if cp < 0x100 then return string.format("\\x%02x", cp) end
    if cp < 0x10000 then return string.format("\\u%04x", cp) end
    return string.format("\\U%08x", cp)
  end))
end

local function printf_one(conv, v, flags, width, prec)
  local left = flags:find("-", 1, true)
  local zero = flags:find("0", 1, true) and not left
  local alt = flags:find("#", 1, true)
  local body, numeric
  if conv == "s" or conv == "r" or conv == "a" then
    body = conv == "s" and str(v) or conv == "a" and ascii(v) or repr(v)
    if prec then body = table.concat(pyval.chars(body), "", 1, math.min(prec, ulen(body))) end
  elseif conv == "c" then
    if type(v) == "string" then
      if ulen(v) ~= 1 then raise("TypeError", "%c requires int or char") end
      body = v
    else
      body = utf8.char(want_int(v, "c"))
    end
  elseif conv == "d" or conv == "i" or conv == "u" then
    local n = want_real(v, conv)
    if mtype(n) == "float" then
      if n ~= n or n == math.huge or n == -math.huge then
        raise("ValueError", "cannot convert float " .. (n ~= n and "NaN" or "infinity")
          .. " to integer")
      end
      n = math.tointeger(n < 0 and math.ceil(n) or math.floor(n)) or n
    end
    local digits, neg = int_text(n, 10)
    if prec then digits = ("0"):rep(prec - #digits) .. digits end
    body, numeric = sign_of(neg, flags) .. digits, true
  elseif conv == "x" or conv == "X" or conv == "o" then
    local n = want_int(v, conv)
    local digits, neg = int_text(n, conv == "o" and 8 or 16, conv == "X")
    if prec then digits = ("0"):rep(prec - #digits) .. digits end
    local prefix = alt and (conv == "o" and "0o" or (conv == "x" and "0x" or "0X")) or ""
    body, numeric = sign_of(neg, flags) .. prefix .. digits, true
  elseif conv:match("^[eEfFgG]$") then
    local x = want_real(v, conv) + 0.0
    local s = fmt_float(math.abs(x), (alt and "#" or "") .. conv, prec or 6)
    if conv == "#" then s = s end
    body, numeric = sign_of(x < 0 or (x == 0 and 1 / x < 0), flags) .. s, true
  else
    raise("ValueError", string.format("unsupported format character '%s' (0x%x)", conv,
      conv:byte()))
  end
  if not width then return body end
  if left then return pad(body, width, "<") end
  if zero and numeric then return pad(body, width, "=", "0") end
  return pad(body, width, ">")
end

-- Reads one conversion specifier starting just after "%" at i:
-- "(key)", flags, width ("*" takes an argument), ".precision", a length
-- modifier and the conversion character. Returns a spec table and the
-- index of the conversion character.
-- The argument a `*` width or precision takes: an integer.
local function star_arg(next_arg)
  local v = next_arg()
  if v == true or v == false then v = v and 1 or 0 end
  if mtype(v) ~= "integer" then raise("TypeError", "* wants int") end
  return v
end

local function read_spec(fmt, i, next_arg)
  local spec = {}
  if fmt:sub(i, i) == "(" then
    local close = fmt:find(")", i, true)
    if not close then raise("ValueError", "incomplete format key") end
    spec.key = fmt:sub(i + 1, close - 1)
    i = close + 1
  end
  spec.flags = fmt:match("^[-+ #0]*", i)
  i = i + #spec.flags
  if fmt:sub(i, i) == "*" then
    spec.width, i = star_arg(next_arg), i + 1
  else
    local w = fmt:match("^%d+", i)
    if w then spec.width, i = tonumber(w), i + #w end
  end
  if fmt:sub(i, i) == "." then
    i = i + 1
    if fmt:sub(i, i) == "*" then
      spec.prec, i = star_arg(next_arg), i + 1
    else
      local p = fmt:match("^%d*", i)
      spec.prec, i = tonumber(p) or 0, i + #p
    end
  end
  if fmt:match("^[hlL]", i) then i = i + 1 end
  spec.conv = fmt:sub(i, i)
  if spec.conv == "" then raise("ValueError", "incomplete format") end
  if spec.width and spec.width < 0 then
    spec.flags, spec.width = spec.flags .. "-", -spec.width
  end
  return spec, i
end

-- Formats made only of "%d" with flag "-" or "0" and a width of at most
-- two digits, and "%%" (most formats in formulas: '%02d' % i): their
-- conversion letters, or false. Such a format gives the same text through
-- Lua's string.format when each %d gets an integer.
local simple_formats, simple_count = {}, 0

local function simple_specs(fmt)
  local convs = simple_formats[fmt]
  if convs ~= nil then return convs end
  convs = {}
  local rest = fmt:gsub("%%%%", ""):gsub("%%[-0]?%d?%d?d", function()
    convs[#convs + 1] = "d"
    return ""
  end)
  if rest:find("%", 1, true) then convs = false end
  if simple_count > 500 then simple_formats, simple_count = {}, 0 end
  simple_formats[fmt], simple_count = convs, simple_count + 1
  return convs
end

---True when fmt is a simple format with exactly one %d conversion, so
---that `fmt % i` for an integer i is string.format(fmt, i).
function M.is_one_int_format(fmt)
  local convs = simple_specs(fmt)
  return convs and #convs == 1 or false
end

---The number of %d conversions of a simple format (see simple_specs), or
---false: `fmt % (i, j)` for integers is then string.format(fmt, i, j).
function M.int_format_count(fmt)
  local convs = simple_specs(fmt)
  return convs and #convs or false
end

-- The fast path of M.percent for simple %d formats given integers; nil
-- when it does not apply.
local function percent_simple(fmt, values)
  local convs = simple_specs(fmt)
  if not convs or #convs == 0 then return nil end
  if #convs == 1 and mtype(values) == "integer" then return string.format(fmt, values) end
  local args = kind(values) == "tuple" and values or { values }
  if #args ~= #convs then return nil end
  for i = 1, #convs do
    if mtype(args[i]) ~= "integer" then return nil end
  end
  return string.format(fmt, table.unpack(args, 1, #convs))
end

---Python's `fmt % values` for strings.
function M.percent(fmt, values)
  local fast = percent_simple(fmt, values)
  if fast then return fast end
  local k = kind(values)
  local mapping = (k == "dict") and fmt:find("%%%(") and values or nil
  local args = (k == "tuple") and values or (mapping and {} or { values })
  local used = 0
  local function next_arg()
    used = used + 1
    if used > #args then raise("TypeError", "not enough arguments for format string") end
    return args[used]
  end
  local out, pos = {}, 1
  while true do
    local a = fmt:find("%", pos, true)
    if not a then break end
    out[#out + 1] = fmt:sub(pos, a - 1)
    local spec, i = read_spec(fmt, a + 1, next_arg)
    if spec.conv == "%" then
      out[#out + 1] = "%"
    else
      local v
      if spec.key then
        if not mapping then raise("TypeError", "format requires a mapping") end
        v = mapping[spec.key]
        if v == nil then raise("KeyError", repr(spec.key)) end
      else
        v = next_arg()
      end
      out[#out + 1] = printf_one(spec.conv, v, spec.flags, spec.width, spec.prec)
    end
    pos = i + 1
  end
  out[#out + 1] = fmt:sub(pos)
  -- Python lets a value it can index (a dict, a list) go unused
  if not mapping and used < #args and k ~= "dict" and k ~= "list" then
    raise("TypeError", "not all arguments converted during string formatting")
  end
  return table.concat(out)
end

-- ---------------------------------------------------------------- format spec

local function parse_spec(spec)
  local p = {}
  local i = 1
  local c1, c2 = spec:sub(1, 1), spec:sub(2, 2)
  if c2 ~= "" and c2:match("[<>=%^]") and utf8.len(c1) == 1 then
    p.fill, p.align, i = c1, c2, 3
  elseif c1:match("[<>=%^]") and c1 ~= "" then
    p.align, i = c1, 2
  else
    -- a multi-byte fill character
    local ch = spec:match("^[\192-\255][\128-\191]*")
    if ch and spec:sub(#ch + 1, #ch + 1):match("[<>=%^]") then
      p.fill, p.align, i = ch, spec:sub(#ch + 1, #ch + 1), #ch + 2
    end
  end
  local s = spec:sub(i, i)
  if s == "+" or s == "-" or s == " " then p.sign, i = s, i + 1 end
  if spec:sub(i, i) == "z" then i = i + 1 end
  if spec:sub(i, i) == "#" then p.alt, i = true, i + 1 end
  if spec:sub(i, i) == "0" then p.zero, i = true, i + 1 end
  local w = spec:match("^%d+", i)
  if w then p.width, i = tonumber(w), i + #w end
  local g = spec:sub(i, i)
  if g == "," or g == "_" then p.group, i = g, i + 1 end
  if spec:sub(i, i) == "." then
    local pr = spec:match("^%d+", i + 1)
    if not pr then raise("ValueError", "Format specifier missing precision") end
    p.prec, i = tonumber(pr), i + 1 + #pr
  end
  p.type = spec:sub(i, i)
  if #spec > i then raise("ValueError", "Invalid format specifier '" .. spec .. "'") end
  return p
end

local function spec_sign(neg, p)
  if neg then return "-" end
  if p.sign == "+" then return "+" end
  if p.sign == " " then return " " end
  return ""
end

-- Python's float format with a precision and no type: like "g", but a
-- fixed-point result keeps one digit after the point.
local function general_repr(ax, prec)
  if ax ~= ax or ax == math.huge then return fmt_float(ax, "g", 1) end
  prec = math.max(prec, 1)
  local sci = string.format("%." .. (prec - 1) .. "e", ax)
  local exp = tonumber(sci:match("e([-+]%d+)$"))
  if exp < -4 or exp >= prec - 1 then
    local mant, e = sci:match("^(.-)e(.*)$")
    if mant:find(".", 1, true) then mant = mant:gsub("0+$", ""):gsub("%.$", "") end
    return mant .. "e" .. e
  end
  local fixed = string.format("%." .. (prec - 1 - exp) .. "f", ax)
  if fixed:find(".", 1, true) then fixed = fixed:gsub("0+$", "") end
  if fixed:sub(-1) == "." then fixed = fixed .. "0" end
  if not fixed:find(".", 1, true) then fixed = fixed .. ".0" end
  return fixed
end

-- Zero padding that also groups the padding digits, as Python does for
-- specs such as "010,".
local function zero_group(sign, int, rest, width, sep)
  local k = 0
  while true do
    local grouped = group_digits(("0"):rep(k) .. int, sep)
    if ulen(sign .. grouped .. rest) >= width then return sign .. grouped .. rest end
    k = k + 1
  end
end

local function format_number(v, p)
  local t = p.type
  local k = kind(v)
  if t == "" and k ~= "float" then t = "d" end
  if t == "n" then t = (k == "float") and "g" or "d" end
  local sign, digits, rest
  if t == "d" or t == "x" or t == "X" or t == "o" or t == "b" or t == "c" then
    if k == "float" then
      raise("ValueError", string.format("Unknown format code '%s' for object of type 'float'", t))
    end
    v = as_number(v)
    if t == "c" then return utf8.char(v) end
    local base = ({ d = 10, x = 16, X = 16, o = 8, b = 2 })[t]
    local neg
    digits, neg = int_text(v, base, t == "X")
    sign = spec_sign(neg, p) .. (p.alt and ({ x = "0x", X = "0X", o = "0o", b = "0b" })[t] or "")
    rest = ""
  else
    local x = as_number(v)
    x = (k == "bigint") and require("renderers.jinja.py_bigint").tofloat(x) or x + 0.0
    local neg = x < 0 or (x == 0 and 1 / x < 0)
    local ax = math.abs(x)
    local s
    if t == "" then
      s = p.prec and general_repr(ax, p.prec) or pyval.float_repr(ax)
    elseif t == "%" then
      s = fmt_float(ax * 100, "f", p.prec or 6) .. "%"
    else
      s = fmt_float(ax, (p.alt and "#" or "") .. t, p.prec or 6)
    end
    sign = spec_sign(neg, p)
    digits, rest = s:match("^(%d*)(.*)$")
  end
  local align = p.align or (p.zero and "=" or ">")
  local fill = p.fill or (p.zero and "0" or " ")
  if p.group and p.width and align == "=" and fill == "0" and digits ~= "" then
    return zero_group(sign, digits, rest, p.width, p.group)
  end
  if p.group and digits ~= "" then digits = group_digits(digits, p.group) end
  return pad(sign .. digits .. rest, p.width, align, fill)
end

---Python's format(value, spec).
function M.format_value(v, spec)
  if spec == "" then return str(v) end
  local p = parse_spec(spec)
  local k = kind(v)
  -- bool is an int to a non-empty spec: format(True, '>5') is '    1'
  if k == "int" or k == "float" or k == "bigint" or k == "bool" then
    if not (p.type == "" or p.type:match("^[dbcoxXneEfFgG%%]$")) then
      raise("ValueError", string.format("Unknown format code '%s' for object of type '%s'",
        p.type, pyval.type_name(v)))
    end
    if (k == "float") and p.type:match("^[dbcoxX]$") then
      raise("ValueError", string.format("Unknown format code '%s' for object of type 'float'",
        p.type))
    end
    return format_number(v, p)
  end
  if type(v) ~= "string" and not pyval.is_markup(v) then
    -- object.__format__ takes no spec (None, lists, dicts, ...)
    raise("TypeError", "unsupported format string passed to " .. pyval.type_name(v)
      .. ".__format__")
  end
  if p.type ~= "" and p.type ~= "s" then
    raise("ValueError", string.format("Unknown format code '%s' for object of type '%s'",
      p.type, pyval.type_name(v)))
  end
  if p.sign then raise("ValueError", "Sign not allowed in string format specifier") end
  local s = str(v)
  if p.prec then s = table.concat(pyval.chars(s), "", 1, math.min(p.prec, ulen(s))) end
  return pad(s, p.width, p.align or "<", p.fill)
end

-- ---------------------------------------------------------------- str.format

local function lookup(field, args, kwargs, state)
  local first, rest = field:match("^([^.%[]*)(.*)$")
  local v
  if first == "" then
    if state.manual then
      raise("ValueError", "cannot switch from manual field specification to automatic "
        .. "field numbering")
    end
    state.auto = state.auto + 1
    first = tostring(state.auto - 1)
  elseif first:match("^%d+$") then
    if state.auto > 0 then
      raise("ValueError", "cannot switch from automatic field numbering to manual field "
        .. "specification")
    end
    state.manual = true
  end
  if first:match("^%d+$") then
    local i = tonumber(first)
    if i >= (args.n or #args) then
      raise("IndexError", string.format(
        "Replacement index %d out of range for positional args tuple", i))
    end
    v = args[i + 1]
  else
    v = kwargs[first]
    if v == nil then raise("KeyError", repr(first)) end
  end
  while rest ~= "" do
    local attr, after = rest:match("^%.([^.%[]+)(.*)$")
    if attr then
      pyval.sandbox_check(attr, v)
      v = pyval.getattr(v, attr)
      if pyval.is_undefined(v) then
        raise("AttributeError", string.format("'%s' object has no attribute %s",
          pyval.type_name(v.obj), repr(attr)))
      end
      rest = after
    else
      local key, after2 = rest:match("^%[([^%]]+)%](.*)$")
      if not key then raise("ValueError", "Missing ']' in format string") end
      local ik = key:match("^%d+$") and tonumber(key) or key
      local nv = pyval.getitem(v, ik)
      if pyval.is_undefined(nv) then
        raise(type(ik) == "number" and "IndexError" or "KeyError", repr(ik))
      end
      v, rest = nv, after2
    end
  end
  return v
end

-- Reads a replacement field starting after "{" at i; returns its text and
-- the index after the closing "}".
local function field_text(s, i)
  if i > #s then raise("ValueError", "Single '{' encountered in format string") end
  local depth, j = 1, i
  while j <= #s do
    local c = s:sub(j, j)
    if c == "{" then depth = depth + 1
    elseif c == "}" then
      depth = depth - 1
      if depth == 0 then return s:sub(i, j - 1), j + 1 end
    end
    j = j + 1
  end
  raise("ValueError", "expected '}' before end of string")
end

local function format_in(s, args, kwargs, state, depth)
  if depth > 2 then raise("ValueError", "Max string recursion exceeded") end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "{" then
      if s:sub(i + 1, i + 1) == "{" then
        out[#out + 1] = "{"; i = i + 2
      else
        local body, after = field_text(s, i + 1)
        local name, conv, spec = body:match("^([^!:]*)!?([rsa]?):?(.*)$")
        if body:find("!", 1, true) and conv == "" then
          raise("ValueError", "end of string while looking for conversion specifier")
        end
        local v = lookup(name, args, kwargs, state)
        if conv == "r" then v = repr(v) elseif conv == "a" then v = ascii(v)
        elseif conv == "s" then v = str(v) end
        if spec:find("{", 1, true) then spec = format_in(spec, args, kwargs, state, depth + 1) end
        out[#out + 1] = M.format_value(v, spec)
        i = after
      end
    elseif c == "}" then
      if s:sub(i + 1, i + 1) ~= "}" then
        raise("ValueError", "Single '}' encountered in format string")
      end
      out[#out + 1] = "}"; i = i + 2
    else
      local j = s:find("[{}]", i) or n + 1
      out[#out + 1] = s:sub(i, j - 1)
      i = j
    end
  end
  return table.concat(out)
end

---Python's str.format(*args, **kwargs).
function M.format(s, args, kwargs)
  return format_in(s, args or { n = 0 }, kwargs or {}, { auto = 0 }, 0)
end

return M
