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
  -- conv may carry C's alternate form first ("#f"): it goes before the
  -- precision
  local alt, letter = conv:match("^(#?)(.)$")
  -- F is f with capitals for inf and nan, handled above
  if letter == "F" then letter = "f" end
  return string.format("%" .. alt .. "." .. prec .. letter, x)
end

-- Groups the digits of s by sep, every `size` digits (3, or 4 for the
-- "_" of binary, octal and hexadecimal).
local function group_digits(s, sep, size)
  size = size or 3
  local digit = size == 4 and "%x" or "%d"
  local sign, int, rest = s:match("^([+%- ]?)(" .. digit .. "+)(.*)$")
  if not int then return s end
  local out = int:reverse():gsub(("(" .. digit:rep(size) .. ")"), "%1" .. sep):reverse()
  if out:sub(1, 1) == sep then out = out:sub(2) end
  return sign .. out .. rest
end

local int_text

-- The digits of an integer beyond 64 bits (or of the smallest 64-bit one,
-- whose magnitude is not one) in base, and whether it is negative: the
-- low digits come off by division until the rest fits a Lua integer.
local function big_int_text(v, base, upper)
  local neg = pyval.compare(v, 0) < 0
  local a = neg and pyval.neg(v) or v
  if base == 10 then return (tostring(a)), neg end
  local low = {}
  while pyval.kind(a) == "bigint" do
    local r = pyval.mod(a, base)
    low[#low + 1] = ("0123456789abcdef"):sub(r + 1, r + 1)
    a = pyval.floordiv(a, base)
  end
  local digits = int_text(a, base, false) .. table.concat(low):reverse()
  return upper and digits:upper() or digits, neg
end

function int_text(v, base, upper)
  if pyval.kind(v) == "bigint" or (v == math.mininteger and base ~= 10) then
    return big_int_text(v, base, upper)
  end
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

-- (the float conversions take their number as float() does, with its
-- message; %d, %i and %u have their own)
local function want_real(v, conv)
  local k = kind(v)
  if k == "int" or k == "float" or k == "bool" or k == "bigint" then return as_number(v) end
  if k == "undefined" then pyval.fail_undefined(v) end
  if conv:match("^[eEfFgG]$") then
    raise("TypeError", "must be real number, not " .. pyval.type_name(v))
  end
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
      local k = kind(v)
      if k ~= "int" and k ~= "bool" and k ~= "bigint" then
        if k == "undefined" then pyval.fail_undefined(v) end
        raise("TypeError", "%c requires int or char")
      end
      local n = as_number(v)
      if pyval.kind(n) == "bigint" or n < 0 or n > 0x10FFFF then
        raise("OverflowError", "%c arg not in range(0x110000)")
      end
      body = utf8.char(n)
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
    local x = want_real(v, conv)
    if pyval.kind(x) == "bigint" then
      x = require("renderers.jinja.py_bigint").tofloat(x)
      if x == math.huge or x == -math.huge then
        raise("OverflowError", "int too large to convert to float")
      end
    else
      x = x * 1.0 -- (not + 0.0, which turns -0.0 into 0.0)
    end
    local s = fmt_float(math.abs(x), (alt and "#" or "") .. conv, prec or 6)
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
  -- As CPython: a dict serves %(key)s, and like any value that is not a
  -- tuple it is also the one value a plain %s reads
  local mapping = (k == "dict") and values or nil
  local args = (k == "tuple") and values or { values }
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
        if k == "list" then
          raise("TypeError", "list indices must be integers or slices, not str")
        end
        if k == "undefined" then pyval.fail_undefined(values) end
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
  if not mapping and used < #args and k ~= "dict" and k ~= "list" and k ~= "undefined" then
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
  if spec:sub(i, i) == "z" then p.z, i = true, i + 1 end
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
-- With alt (`#`) trailing zeros and the point stay, as C's `%#`.
local function general_repr(ax, prec, alt)
  if ax ~= ax or ax == math.huge then return fmt_float(ax, "g", 1) end
  prec = math.max(prec, 1)
  local sci = string.format("%." .. (prec - 1) .. "e", ax)
  local exp = tonumber(sci:match("e([-+]%d+)$"))
  if alt then
    if exp < -4 or exp >= prec - 1 then return string.format("%#." .. (prec - 1) .. "e", ax) end
    return string.format("%#." .. (prec - 1 - exp) .. "f", ax)
  end
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
local function zero_group(sign, int, rest, width, sep, size)
  local k = 0
  while true do
    local grouped = group_digits(("0"):rep(k) .. int, sep, size)
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
    if t == "c" then
      -- a character, padded and aligned as a number is
      if k == "bigint" or v < 0 or v > 0x10FFFF then
        raise("OverflowError", "%c arg not in range(0x110000)")
      end
      sign, digits, rest = "", utf8.char(v), ""
    else
      local base = ({ d = 10, x = 16, X = 16, o = 8, b = 2 })[t]
      local neg
      digits, neg = int_text(v, base, t == "X")
      sign = spec_sign(neg, p) .. (p.alt and ({ x = "0x", X = "0X", o = "0o", b = "0b" })[t] or "")
      rest = ""
    end
  else
    local x = as_number(v)
    if k == "bigint" then
      x = require("renderers.jinja.py_bigint").tofloat(x)
      if x == math.huge or x == -math.huge then
        raise("OverflowError", "int too large to convert to float")
      end
    else
      x = x * 1.0 -- (not x + 0.0, which would turn -0.0 into 0.0)
    end
    local neg = x < 0 or (x == 0 and 1 / x < 0)
    local ax = math.abs(x)
    local s
    if t == "" then
      s = p.prec and general_repr(ax, p.prec, p.alt) or pyval.float_repr(ax)
      -- `#` without a precision: repr's text, with a point before any exponent
      if p.alt and not p.prec and not s:find("[.n]") then s = s:gsub("e", ".e", 1) end
    elseif t == "%" then
      s = fmt_float(ax * 100, (p.alt and "#" or "") .. "f", p.prec or 6) .. "%"
    else
      s = fmt_float(ax, (p.alt and "#" or "") .. t, p.prec or 6)
    end
    -- z: a negative number that rounds to zero prints as zero
    if p.z and neg and not s:gsub("[eE][-+]%d+", ""):find("[1-9]")
        and not s:find("[iInN]") then
      neg = false
    end
    sign = spec_sign(neg, p)
    digits, rest = s:match("^(%d*)(.*)$")
  end
  local align = p.align or (p.zero and "=" or ">")
  local fill = p.fill or (p.zero and "0" or " ")
  -- "_" groups binary, octal and hexadecimal digits by four
  local size = (t == "b" or t == "o" or t == "x" or t == "X") and 4 or 3
  if p.group and p.width and align == "=" and fill == "0" and digits ~= "" then
    return zero_group(sign, digits, rest, p.width, p.group, size)
  end
  if p.group and digits ~= "" then digits = group_digits(digits, p.group, size) end
  return pad(sign .. digits .. rest, p.width, align, fill)
end

-- The types a thousands separator goes with: "," with these, "_" with
-- these and binary, octal and hexadecimal.
local GROUPED = { d = true, e = true, f = true, g = true, E = true, G = true, ["%"] = true,
                  F = true, [""] = true }
local UNDERSCORED = { b = true, o = true, x = true, X = true }

-- Python's checks of a spec against the kind of value it formats (after
-- the separator's, see M.format_value), in CPython's order; `t` is the
-- type with the kind's default put in.
local function check_spec(p, t, numeric, float)
  if numeric and not float then
    if p.prec then raise("ValueError", "Precision not allowed in integer format specifier") end
    if p.z then
      raise("ValueError", "Negative zero coercion (z) not allowed in integer format specifier")
    end
    if t == "c" and p.sign then
      raise("ValueError", "Sign not allowed with integer format specifier 'c'")
    end
    if t == "c" and p.alt then
      raise("ValueError", "Alternate form (#) not allowed with integer format specifier 'c'")
    end
  elseif not numeric then
    if p.sign == " " then raise("ValueError", "Space not allowed in string format specifier") end
    if p.sign then raise("ValueError", "Sign not allowed in string format specifier") end
    if p.z then
      raise("ValueError", "Negative zero coercion (z) not allowed in string format specifier")
    end
    if p.alt then
      raise("ValueError", "Alternate form (#) not allowed in string format specifier")
    end
    if p.align == "=" then
      raise("ValueError", "'=' alignment not allowed in string format specifier")
    end
  end
end

---Python's format(value, spec).
function M.format_value(v, spec)
  if spec == "" then return str(v) end
  local p = parse_spec(spec)
  local k = kind(v)
  local numeric = k == "int" or k == "float" or k == "bigint" or k == "bool"
  -- the separator is checked with the spec, before the type is: against
  -- the type given, else the kind's own default
  local text = type(v) == "string" or pyval.is_markup(v)
  if p.group and (numeric or text) then -- (other objects take no spec at all, below)
    local t = p.type
    if t == "" then t = (k == "float") and "" or (numeric and "d" or "s") end
    if not GROUPED[t] and not (p.group == "_" and UNDERSCORED[t]) then
      raise("ValueError", "Cannot specify '" .. p.group .. "' with '" .. t .. "'.")
    end
  end
  -- bool is an int to a non-empty spec: format(True, '>5') is '    1'
  if numeric then
    if not (p.type == "" or p.type:match("^[dbcoxXneEfFgG%%]$")) then
      raise("ValueError", string.format("Unknown format code '%s' for object of type '%s'",
        p.type, pyval.type_name(v)))
    end
    if (k == "float") and p.type:match("^[dbcoxX]$") then
      raise("ValueError", string.format("Unknown format code '%s' for object of type 'float'",
        p.type))
    end
    local float = k == "float" or p.type:match("^[eEfFgG%%]$") ~= nil
    check_spec(p, (p.type == "" and k ~= "float") and "d" or p.type, true, float)
    return format_number(v, p)
  end
  if not text then
    -- object.__format__ takes no spec (None, lists, dicts, ...)
    raise("TypeError", "unsupported format string passed to " .. pyval.type_name(v)
      .. ".__format__")
  end
  if p.type ~= "" and p.type ~= "s" then
    raise("ValueError", string.format("Unknown format code '%s' for object of type '%s'",
      p.type, pyval.type_name(v)))
  end
  check_spec(p, "s", false, false)
  local s = str(v)
  if p.prec then s = table.concat(pyval.chars(s), "", 1, math.min(p.prec, ulen(s))) end
  -- a 0 before the width fills with zeros here too (Python 3.10 on)
  return pad(s, p.width, p.align or "<", p.fill or (p.zero and "0" or nil))
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
