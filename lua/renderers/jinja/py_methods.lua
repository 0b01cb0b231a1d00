-- The methods of Python's str, list, tuple, dict, bytes and float values,
-- as templates call them: `name.split('.')`, `l.append(x)`, `d.items()`.
--
-- M.bound(kind, obj, name) returns the bound method (a callable taking
-- args, kwargs as pyval.call passes them) or nil when the type has no such
-- method. Only Python 3 methods exist: `d.iteritems()` is undefined, as on
-- the Python that Salt runs. Dict views (`keys()`, `values()`, `items()`)
-- are lists that print as views; they are snapshots, not live views. The
-- string helpers (case mapping, whitespace, splitting) are exported for
-- the filter library.
local data = require("brine.data")
local pyval = require("renderers.jinja.pyval")

local M = {}

local null = data.null
local raise, repr, str = pyval.raise, pyval.repr, pyval.str
local list, tuple = pyval.list, pyval.tuple
local chars, ulen, is_ascii = pyval.chars, pyval.ulen, pyval.is_ascii
local concat = table.concat

-- ---------------------------------------------------------------- arguments

local function arity(name, args, min, max)
  local n = args.n or #args
  if n < min then
    raise("TypeError", string.format("%s() takes at least %d argument%s (%d given)",
      name, min, min == 1 and "" or "s", n))
  end
  if max and n > max then
    if max == 0 then
      raise("TypeError", string.format("%s() takes no arguments (%d given)", name, n))
    end
    raise("TypeError", string.format("%s() takes at most %d argument%s (%d given)",
      name, max, max == 1 and "" or "s", n))
  end
end

local function opt(args, i, default)
  if i > (args.n or #args) then return default end
  local v = args[i]
  if v == nil then return default end
  return v
end

local function want_str(v, what)
  local s = pyval.text(v)
  if not s then
    if pyval.is_undefined(v) then pyval.fail_undefined(v) end
    raise("TypeError", string.format("%s must be str, not %s", what, pyval.type_name(v)))
  end
  return s
end

local function want_int(v, what)
  if v == true then return 1 elseif v == false then return 0 end
  if math.type(v) ~= "integer" then
    if pyval.is_undefined(v) then pyval.fail_undefined(v) end
    raise("TypeError", string.format("'%s' object cannot be interpreted as an integer%s",
      pyval.type_name(v), what and (" (" .. what .. ")") or ""))
  end
  return v
end

-- ---------------------------------------------------------------- case

-- Upper/lower pairs beyond ASCII: Latin-1, Latin Extended-A, Greek and
-- Cyrillic, which covers the text of configuration files.
local to_upper, to_lower = {}, {}
local function pair(lo, up) to_upper[lo] = up; to_lower[up] = lo end
for c = 0xE0, 0xFE do if c ~= 0xF7 then pair(c, c - 32) end end
pair(0xFF, 0x178)
for c = 0x100, 0x17F, 2 do
  if c < 0x130 or (c > 0x131 and c < 0x138) or (c > 0x148 and c < 0x178) then
    pair(c + 1, c)
  end
end
for c = 0x139, 0x147, 2 do pair(c + 1, c) end
for c = 0x179, 0x17D, 2 do pair(c + 1, c) end
for c = 0x3B1, 0x3C9 do if c ~= 0x3C2 then pair(c, c - 32) end end
to_upper[0x3C2] = 0x3A3
for c = 0x430, 0x44F do pair(c, c - 32) end
for c = 0x450, 0x45F do pair(c, c - 80) end

local function map_cp(s, ascii_fn, tbl)
  if is_ascii(s) or not utf8.len(s) then return ascii_fn(s) end
  local out = {}
  for _, c in utf8.codes(s) do
    if c < 128 then
      out[#out + 1] = ascii_fn(string.char(c))
    elseif c == 0xDF and tbl == to_upper then
      out[#out + 1] = "SS"
    else
      out[#out + 1] = utf8.char(tbl[c] or c)
    end
  end
  return concat(out)
end

function M.upper(s) return map_cp(s, string.upper, to_upper) end
function M.lower(s) return map_cp(s, string.lower, to_lower) end

local function cp_of(ch)
  return utf8.codepoint(ch, 1) or ch:byte()
end

function M.is_upper_char(ch)
  if #ch == 1 then return ch:match("%u") ~= nil end
  return to_lower[cp_of(ch)] ~= nil
end

function M.is_lower_char(ch)
  if #ch == 1 then return ch:match("%l") ~= nil end
  return to_upper[cp_of(ch)] ~= nil or ch == "ß"
end

function M.is_alpha_char(ch)
  if #ch == 1 then return ch:match("%a") ~= nil end
  local c = cp_of(ch)
  return to_upper[c] ~= nil or to_lower[c] ~= nil or c == 0xDF or (c >= 0x4E00 and c <= 0x9FFF)
    or (c >= 0xAA and c ~= 0xD7 and c ~= 0xF7 and c < 0x2B0 and c ~= 0xB7 and c > 0xBF)
end

local function is_cased(ch) return M.is_upper_char(ch) or M.is_lower_char(ch) end

-- Python's whitespace (str.isspace, str.split(), str.strip()).
local SPACE = {
  [" "] = true, ["\t"] = true, ["\n"] = true, ["\r"] = true, ["\v"] = true, ["\f"] = true,
  ["\28"] = true, ["\29"] = true, ["\30"] = true, ["\31"] = true, ["\194\133"] = true,
  ["\194\160"] = true, ["\225\154\128"] = true, ["\226\128\168"] = true,
  ["\226\128\169"] = true, ["\226\128\175"] = true, ["\226\129\159"] = true,
  ["\227\128\128"] = true,
}
for c = 0x2000, 0x200A do SPACE[utf8.char(c)] = true end
M.SPACE = SPACE

function M.is_space_char(ch) return SPACE[ch] == true end

-- Title case of one character (ß becomes "Ss", not "SS").
local function title_char(ch)
  if ch == "ß" then return "Ss" end
  return M.upper(ch)
end

---Python's str.title(): every run of letters starts upper case.
function M.title(s)
  local out, prev_cased = {}, false
  for _, ch in ipairs(chars(s)) do
    if prev_cased then out[#out + 1] = M.lower(ch) else out[#out + 1] = title_char(ch) end
    prev_cased = is_cased(ch)
  end
  return concat(out)
end

function M.capitalize(s)
  local cs = chars(s)
  if #cs == 0 then return "" end
  return title_char(cs[1]) .. M.lower(concat(cs, "", 2))
end

function M.swapcase(s)
  local out = {}
  for i, ch in ipairs(chars(s)) do
    if M.is_upper_char(ch) then out[i] = M.lower(ch)
    elseif M.is_lower_char(ch) then out[i] = M.upper(ch)
    else out[i] = ch end
  end
  return concat(out)
end

-- ---------------------------------------------------------------- strip / split

-- Python's ASCII whitespace, by byte; `keeps(b)`: a byte strip never removes.
local ASCII_SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true,
  [28] = true, [29] = true, [30] = true, [31] = true, [32] = true }
local byte = string.byte

local function keeps(b)
  return b < 128 and not ASCII_SPACE[b]
end

---Python's strip family: which is "both", "left" or "right"; chars is a
---string of characters to remove, or nil for whitespace.
function M.strip(s, chars_arg, which)
  local set
  if chars_arg then
    set = {}
    for _, c in ipairs(chars(chars_arg)) do set[c] = true end
  else
    local first, last = byte(s, 1), byte(s, -1)
    if first == nil or ((which == "right" or keeps(first)) and (which == "left" or keeps(last)))
    then
      return s -- nothing to strip: the common case, answered without copying
    end
    if is_ascii(s) then
      local i, j = 1, #s
      if which ~= "right" then while i <= j and ASCII_SPACE[byte(s, i)] do i = i + 1 end end
      if which ~= "left" then while j >= i and ASCII_SPACE[byte(s, j)] do j = j - 1 end end
      return s:sub(i, j)
    end
    set = SPACE
  end
  local cs = chars(s)
  local i, j = 1, #cs
  if which ~= "right" then while i <= j and set[cs[i]] do i = i + 1 end end
  if which ~= "left" then while j >= i and set[cs[j]] do j = j - 1 end end
  return concat(cs, "", i, j)
end

-- Whitespace split as str.split() does it (runs of whitespace, no empties).
local function split_ws(s, maxsplit)
  local out, cs = {}, chars(s)
  local i, n = 1, #cs
  while i <= n do
    while i <= n and SPACE[cs[i]] do i = i + 1 end
    if i > n then break end
    if maxsplit >= 0 and #out >= maxsplit then
      out[#out + 1] = concat(cs, "", i)
      return out
    end
    local cur = {}
    while i <= n and not SPACE[cs[i]] do cur[#cur + 1] = cs[i]; i = i + 1 end
    out[#out + 1] = concat(cur)
  end
  return out
end

---Python's str.split(sep, maxsplit) as a Lua array.
function M.split(s, sep, maxsplit)
  maxsplit = maxsplit or -1
  if sep == nil then return split_ws(s, maxsplit) end
  if sep == "" then raise("ValueError", "empty separator") end
  local out, pos = {}, 1
  while maxsplit < 0 or #out < maxsplit do
    local a, b = s:find(sep, pos, true)
    if not a then break end
    out[#out + 1] = s:sub(pos, a - 1)
    pos = b + 1
  end
  out[#out + 1] = s:sub(pos)
  return out
end

---Python's str.rsplit(sep, maxsplit) as a Lua array.
function M.rsplit(s, sep, maxsplit)
  maxsplit = maxsplit or -1
  if maxsplit < 0 then return M.split(s, sep, -1) end
  if sep == nil then
    local cs = chars(M.strip(s, nil, "right"))
    local out, j = {}, #cs
    while j >= 1 do
      if #out >= maxsplit then
        table.insert(out, 1, concat(cs, "", 1, j))
        return out
      end
      local stop = j
      while j >= 1 and not SPACE[cs[j]] do j = j - 1 end
      table.insert(out, 1, concat(cs, "", j + 1, stop))
      while j >= 1 and SPACE[cs[j]] do j = j - 1 end
    end
    return out
  end
  if sep == "" then raise("ValueError", "empty separator") end
  local parts = M.split(s, sep, -1)
  if #parts - 1 <= maxsplit then return parts end
  local keep = #parts - maxsplit
  local out = { concat(parts, sep, 1, keep) }
  for i = keep + 1, #parts do out[#out + 1] = parts[i] end
  return out
end

local LINE_BREAKS = {
  ["\n"] = true, ["\r"] = true, ["\v"] = true, ["\f"] = true, ["\28"] = true,
  ["\29"] = true, ["\30"] = true, ["\194\133"] = true, ["\226\128\168"] = true,
  ["\226\128\169"] = true,
}

---Python's str.splitlines(keepends) as a Lua array.
function M.splitlines(s, keepends)
  local out, cur = {}, {}
  local cs = chars(s)
  local i = 1
  while i <= #cs do
    local c = cs[i]
    if LINE_BREAKS[c] then
      local brk = c
      if c == "\r" and cs[i + 1] == "\n" then brk = "\r\n"; i = i + 1 end
      out[#out + 1] = concat(cur) .. (keepends and brk or "")
      cur = {}
    else
      cur[#cur + 1] = c
    end
    i = i + 1
  end
  if #cur > 0 then out[#out + 1] = concat(cur) end
  return out
end

---Python's str.replace(old, new, count).
function M.replace(s, old, new, count)
  count = count or -1
  if old == "" then
    local cs, out, done = chars(s), {}, 0
    for i = 1, #cs + 1 do
      if count < 0 or done < count then out[#out + 1] = new; done = done + 1 end
      out[#out + 1] = cs[i]
    end
    return concat(out)
  end
  local out, pos, done = {}, 1, 0
  while count < 0 or done < count do
    local a, b = s:find(old, pos, true)
    if not a then break end
    out[#out + 1] = s:sub(pos, a - 1)
    out[#out + 1] = new
    pos = b + 1
    done = done + 1
  end
  out[#out + 1] = s:sub(pos)
  return concat(out)
end

-- ---------------------------------------------------------------- searching

-- Character-index helpers: (string, start, end) as Python slices them.
local function span(s, args, i)
  local n = ulen(s)
  local a = opt(args, i, null)
  local b = opt(args, i + 1, null)
  a = a == null and 0 or want_int(a)
  b = b == null and n or want_int(b)
  if a < 0 then a = math.max(a + n, 0) end
  if b < 0 then b = math.max(b + n, 0) end
  b = math.min(b, n)
  return a, b
end

local function byte_off(s, ci) -- char index (0-based) -> byte offset (1-based)
  if is_ascii(s) then return ci + 1 end
  return utf8.offset(s, ci + 1) or #s + 1
end

local function char_idx(s, bi) -- byte offset (1-based) -> char index (0-based)
  if is_ascii(s) then return bi - 1 end
  return utf8.len(s, 1, bi - 1) or bi - 1
end

local function find_in(s, sub, a, b, last)
  if a > b then return (sub == "" and a == b) and a or -1 end
  local bs, be = byte_off(s, a), byte_off(s, b) - 1
  local hay = s:sub(bs, be)
  local pos
  if last then
    local from = 1
    while true do
      local p = hay:find(sub, from, true)
      if not p then break end
      pos = p
      from = p + 1
      if from > #hay + 1 then break end
    end
  else
    pos = hay:find(sub, 1, true)
  end
  if not pos then return -1 end
  return char_idx(s, bs + pos - 1)
end

local function count_in(s, sub, a, b)
  if a > b then return 0 end
  local hay = s:sub(byte_off(s, a), byte_off(s, b) - 1)
  if sub == "" then return ulen(hay) + 1 end
  local n, pos = 0, 1
  while true do
    local p, q = hay:find(sub, pos, true)
    if not p then return n end
    n = n + 1
    pos = q + 1
  end
end

-- ---------------------------------------------------------------- str

local function is_all(s, pred)
  if s == "" then return false end
  for _, ch in ipairs(chars(s)) do
    if not pred(ch) then return false end
  end
  return true
end

local function is_digit(ch)
  return ch:match("^%d$") ~= nil or ch == "²" or ch == "³" or ch == "¹"
end

local function has_cased(s, pred, other)
  local seen = false
  for _, ch in ipairs(chars(s)) do
    if other(ch) then return false end
    if pred(ch) then seen = true end
  end
  return seen
end

local function padding(name, s, args, how)
  arity(name, args, 1, 2)
  local width = want_int(args[1])
  local fill = opt(args, 2, " ")
  fill = want_str(fill, "fill character")
  if ulen(fill) ~= 1 then
    raise("TypeError", "The fill character must be exactly one character long")
  end
  local n = ulen(s)
  if width <= n then return s end
  local total = width - n
  if how == "left" then return s .. fill:rep(total) end
  if how == "right" then return fill:rep(total) .. s end
  local left = total // 2 + (total % 2 == 1 and width % 2 == 1 and 1 or 0)
  return fill:rep(left) .. s .. fill:rep(total - left)
end
M.padding = padding

local function prefix_test(name, s, args, at_end)
  arity(name, args, 1, 3)
  local a, b = span(s, args, 2)
  local sub = (a > b) and nil or s:sub(byte_off(s, a), byte_off(s, b) - 1)
  local cands = args[1]
  local k = pyval.kind(cands)
  if k ~= "tuple" then
    if not pyval.text(cands) then
      raise("TypeError", string.format("%s first arg must be str or a tuple of str, not %s",
        name, pyval.type_name(cands)))
    end
    cands = { cands }
  end
  if not sub then return false end
  for _, c in ipairs(cands) do
    c = want_str(c, "tuple item")
    if at_end then
      if c == "" or sub:sub(-#c) == c then return true end
    elseif sub:sub(1, #c) == c then
      return true
    end
  end
  return false
end

local str_methods = {}

local function simple(name, fn, min, max)
  local shown = (max or 0) == 0 and ("str." .. name) or name
  str_methods[name] = function(s, args)
    arity(shown, args, min or 0, max or 0)
    return fn(s, args)
  end
end

simple("upper", function(s) return M.upper(s) end)
simple("lower", function(s) return M.lower(s) end)
simple("casefold", function(s) return (M.lower(s):gsub("ß", "ss")) end)
simple("title", function(s) return M.title(s) end)
simple("capitalize", function(s) return M.capitalize(s) end)
simple("swapcase", function(s) return M.swapcase(s) end)
for name, which in pairs({ strip = "both", lstrip = "left", rstrip = "right" }) do
  simple(name, function(s, args)
    local c = opt(args, 1, null)
    return M.strip(s, c ~= null and want_str(c, "argument") or nil, which)
  end, 0, 1)
end

local function split_args(name, args, kwargs)
  local sep = kwargs.sep or opt(args, 1, null)
  local maxsplit = kwargs.maxsplit or opt(args, 2, -1)
  if (args.n or #args) > 2 then arity(name, args, 0, 2) end
  if sep == null then sep = nil else sep = want_str(sep, "sep") end
  return sep, want_int(maxsplit)
end

str_methods.split = function(s, args, kwargs)
  return list(M.split(s, split_args("split", args, kwargs)))
end
str_methods.rsplit = function(s, args, kwargs)
  return list(M.rsplit(s, split_args("rsplit", args, kwargs)))
end
str_methods.splitlines = function(s, args, kwargs)
  arity("splitlines", args, 0, 1)
  local keep = kwargs.keepends
  if keep == nil then keep = opt(args, 1, false) end
  return list(M.splitlines(s, pyval.truthy(keep)))
end
simple("join", function(s, args)
  local items = pyval.iter(args[1])
  for i, v in ipairs(items) do
    local t = pyval.text(v)
    if not t then
      raise("TypeError", string.format("sequence item %d: expected str instance, %s found",
        i - 1, pyval.type_name(v)))
    end
    items[i] = t
  end
  return concat(items, s)
end, 1, 1)
simple("replace", function(s, args)
  return M.replace(s, want_str(args[1], "replace() argument 1"),
    want_str(args[2], "replace() argument 2"), want_int(opt(args, 3, -1)))
end, 2, 3)
simple("startswith", function(s, args) return prefix_test("startswith", s, args, false) end, 1, 3)
simple("endswith", function(s, args) return prefix_test("endswith", s, args, true) end, 1, 3)
for name, last in pairs({ find = false, rfind = true, index = false, rindex = true }) do
  simple(name, function(s, args)
    local sub = want_str(args[1], "must be str")
    local a, b = span(s, args, 2)
    local r = find_in(s, sub, a, b, last)
    if r < 0 and (name == "index" or name == "rindex") then
      raise("ValueError", "substring not found")
    end
    return r
  end, 1, 3)
end
simple("count", function(s, args)
  local a, b = span(s, args, 2)
  return count_in(s, want_str(args[1], "must be str"), a, b)
end, 1, 3)
str_methods.format = function(s, args, kwargs)
  return require("renderers.jinja.py_format").format(s, args, kwargs)
end
simple("format_map", function(s, args)
  local m = args[1]
  local kw = {}
  for _, k in ipairs(data.keys(m)) do kw[k] = m[k] end
  return require("renderers.jinja.py_format").format(s, { n = 0 }, kw)
end, 1, 1)
simple("zfill", function(s, args)
  local width = want_int(args[1])
  local n = ulen(s)
  if n >= width then return s end
  local sign = s:match("^[+-]") or ""
  return sign .. ("0"):rep(width - n) .. s:sub(#sign + 1)
end, 1, 1)
str_methods.center = function(s, args) return padding("center", s, args, "center") end
str_methods.ljust = function(s, args) return padding("ljust", s, args, "left") end
str_methods.rjust = function(s, args) return padding("rjust", s, args, "right") end
simple("isdigit", function(s) return is_all(s, is_digit) end)
simple("isdecimal", function(s) return is_all(s, function(c) return c:match("^%d$") ~= nil end) end)
simple("isnumeric", function(s) return is_all(s, is_digit) end)
simple("isalpha", function(s) return is_all(s, M.is_alpha_char) end)
simple("isalnum", function(s)
  return is_all(s, function(c) return M.is_alpha_char(c) or is_digit(c) end)
end)
simple("isspace", function(s) return is_all(s, M.is_space_char) end)
simple("isupper", function(s) return has_cased(s, M.is_upper_char, M.is_lower_char) end)
simple("islower", function(s) return has_cased(s, M.is_lower_char, M.is_upper_char) end)
simple("istitle", function(s) return s ~= "" and M.title(s) == s and has_cased(s, is_cased,
  function() return false end) end)
simple("isidentifier", function(s) return s:match("^[%a_][%w_]*$") ~= nil end)
simple("isascii", function(s) return is_ascii(s) end)
simple("isprintable", function(s) return not s:find("[%c\127]") end)
simple("partition", function(s, args)
  local sep = want_str(args[1], "sep")
  if sep == "" then raise("ValueError", "empty separator") end
  local a, b = s:find(sep, 1, true)
  if not a then return tuple({ s, "", "" }) end
  return tuple({ s:sub(1, a - 1), sep, s:sub(b + 1) })
end, 1, 1)
simple("rpartition", function(s, args)
  local sep = want_str(args[1], "sep")
  if sep == "" then raise("ValueError", "empty separator") end
  local parts = M.rsplit(s, sep, 1)
  if #parts == 1 then return tuple({ "", "", s }) end
  return tuple({ parts[1], sep, parts[2] })
end, 1, 1)
simple("removeprefix", function(s, args)
  local p = want_str(args[1], "argument")
  if p ~= "" and s:sub(1, #p) == p then return s:sub(#p + 1) end
  return s
end, 1, 1)
simple("removesuffix", function(s, args)
  local p = want_str(args[1], "argument")
  if p ~= "" and s:sub(-#p) == p then return s:sub(1, #s - #p) end
  return s
end, 1, 1)
simple("encode", function(s) return pyval.bytes(s) end, 0, 2)
simple("expandtabs", function(s, args)
  local size = want_int(opt(args, 1, 8))
  local out, col = {}, 0
  for _, ch in ipairs(chars(s)) do
    if ch == "\t" then
      local n = size > 0 and size - col % size or 0
      out[#out + 1] = (" "):rep(n)
      col = col + n
    elseif ch == "\n" or ch == "\r" then
      out[#out + 1] = ch
      col = 0
    else
      out[#out + 1] = ch
      col = col + 1
    end
  end
  return concat(out)
end, 0, 1)

-- ---------------------------------------------------------------- list

local function norm_index(i, n)
  if i < 0 then i = i + n end
  return i
end

local list_methods = {}

list_methods.append = function(l, args)
  arity("append", args, 1, 1)
  l[#l + 1] = args[1]
end
list_methods.extend = function(l, args)
  arity("extend", args, 1, 1)
  for _, v in ipairs(pyval.iter(args[1])) do l[#l + 1] = v end
end
list_methods.insert = function(l, args)
  arity("insert", args, 2, 2)
  local n = #l
  local i = norm_index(want_int(args[1]), n)
  i = math.max(0, math.min(i, n))
  table.insert(l, i + 1, args[2])
end
list_methods.pop = function(l, args)
  arity("pop", args, 0, 1)
  local n = #l
  if n == 0 then raise("IndexError", "pop from empty list") end
  local i = norm_index(want_int(opt(args, 1, -1)), n)
  if i < 0 or i >= n then raise("IndexError", "pop index out of range") end
  return table.remove(l, i + 1)
end
list_methods.remove = function(l, args)
  arity("remove", args, 1, 1)
  for i = 1, #l do
    if pyval.eq(l[i], args[1]) then
      table.remove(l, i)
      return
    end
  end
  raise("ValueError", "list.remove(x): x not in list")
end
local function seq_index(l, args)
  arity("index", args, 1, 3)
  local n = #l
  local a = norm_index(want_int(opt(args, 2, 0)), n)
  local b = norm_index(want_int(opt(args, 3, n)), n)
  for i = math.max(a, 0) + 1, math.min(b, n) do
    if pyval.eq(l[i], args[1]) then return i - 1 end
  end
  raise("ValueError", repr(args[1]) .. " is not in " .. pyval.type_name(l))
end
local function seq_count(l, args)
  arity("count", args, 1, 1)
  local c = 0
  for i = 1, #l do
    if pyval.eq(l[i], args[1]) then c = c + 1 end
  end
  return c
end
list_methods.index = seq_index
list_methods.count = seq_count
list_methods.reverse = function(l, args)
  arity("reverse", args, 0, 0)
  local n = #l
  for i = 1, n // 2 do l[i], l[n - i + 1] = l[n - i + 1], l[i] end
end
list_methods.sort = function(l, args, kwargs)
  arity("sort", args, 0, 0)
  local key = kwargs.key
  local keyfn
  if key ~= nil and key ~= null then
    keyfn = function(v) return pyval.call(key, { n = 1, v }) end
  end
  pyval.sort(l, keyfn, kwargs.reverse ~= nil and pyval.truthy(kwargs.reverse))
end
list_methods.copy = function(l, args)
  arity("copy", args, 0, 0)
  local out = {}
  for i = 1, #l do out[i] = l[i] end
  return list(out)
end
list_methods.clear = function(l, args)
  arity("clear", args, 0, 0)
  for i = #l, 1, -1 do l[i] = nil end
end

local tuple_methods = { index = seq_index, count = seq_count }

-- ---------------------------------------------------------------- dict

local function dict_key(k)
  if type(k) == "boolean" then return k and 1 or 0 end
  if pyval.is_undefined(k) then pyval.fail_undefined(k) end
  local kd = pyval.kind(k)
  if kd == "list" or kd == "dict" then
    raise("TypeError", "unhashable type: '" .. kd .. "'")
  end
  return k
end
M.dict_key = dict_key

---A shallow copy of a dict as an ordered map.
function M.dict_copy(d)
  local out = data.map()
  for _, k in ipairs(data.keys(d)) do out[k] = d[k] end
  return out
end

local function dict_update(d, args, kwargs)
  arity("update", args, 0, 1)
  local src = opt(args, 1, nil)
  if src ~= nil then
    local k = pyval.kind(src)
    if k == "dict" then
      for _, key in ipairs(data.keys(src)) do d[key] = src[key] end
    elseif k == "namespace" then
      for _, key in ipairs(data.keys(src.attrs)) do d[key] = src.attrs[key] end
    else
      for i, item in ipairs(pyval.iter(src)) do
        local pair_items = pyval.iter(item)
        if #pair_items ~= 2 then
          raise("ValueError", string.format(
            "dictionary update sequence element #%d has length %d; 2 is required",
            i - 1, #pair_items))
        end
        d[dict_key(pair_items[1])] = pair_items[2]
      end
    end
  end
  for _, key in ipairs(pyval.kwarg_names(kwargs)) do d[key] = kwargs[key] end
end
M.dict_update = dict_update

local dict_methods = {}

dict_methods.keys = function(d, args)
  arity("keys", args, 0, 0)
  return pyval.view("dict_keys", data.keys(d))
end
dict_methods.values = function(d, args)
  arity("values", args, 0, 0)
  local out = {}
  for i, k in ipairs(data.keys(d)) do out[i] = d[k] end
  return pyval.view("dict_values", out)
end
dict_methods.items = function(d, args)
  arity("items", args, 0, 0)
  local out = {}
  for i, k in ipairs(data.keys(d)) do out[i] = tuple({ k, d[k] }) end
  return pyval.view("dict_items", out)
end
dict_methods.get = function(d, args)
  arity("get", args, 1, 2)
  local v = d[dict_key(args[1])]
  if v == nil then return opt(args, 2, null) end
  return v
end
dict_methods.update = dict_update
dict_methods.pop = function(d, args)
  arity("pop", args, 1, 2)
  local k = dict_key(args[1])
  local v = d[k]
  if v == nil then
    if (args.n or #args) >= 2 then return args[2] end
    raise("KeyError", repr(args[1]))
  end
  d[k] = nil
  return v
end
dict_methods.popitem = function(d, args)
  arity("popitem", args, 0, 0)
  local ks = data.keys(d)
  if #ks == 0 then raise("KeyError", "'popitem(): dictionary is empty'") end
  local k = ks[#ks]
  local v = d[k]
  d[k] = nil
  return tuple({ k, v })
end
dict_methods.setdefault = function(d, args)
  arity("setdefault", args, 1, 2)
  local k = dict_key(args[1])
  local v = d[k]
  if v == nil then
    v = opt(args, 2, null)
    d[k] = v
  end
  return v
end
dict_methods.copy = function(d, args)
  arity("copy", args, 0, 0)
  return M.dict_copy(d)
end
dict_methods.clear = function(d, args)
  arity("clear", args, 0, 0)
  for _, k in ipairs(data.keys(d)) do d[k] = nil end
end

-- ---------------------------------------------------------------- others

local bytes_methods = {
  decode = function(b) return b.s end,
}

local float_methods = {
  is_integer = function(x) return x == math.floor(x) and x == x and x ~= math.huge end,
}

local int_methods = {
  bit_length = function(x)
    local n = 0
    x = math.abs(x)
    while x > 0 do n = n + 1; x = x >> 1 end
    return n
  end,
}

local TABLES = {
  str = str_methods, list = list_methods, tuple = tuple_methods, dict = dict_methods,
  bytes = bytes_methods, float = float_methods, int = int_methods,
}

M.TABLES = TABLES -- the method tables by kind (the runtime's R.method reads them)

local NO_KW = pyval.NO_KWARGS

---The bound method `name` of obj (of pyval kind k), or nil.
function M.bound(k, obj, name)
  local receiver = obj
  if k == "markup" then
    k = "str"
    receiver = obj.s
  end
  local t = TABLES[k]
  if k == "list" and pyval.is_range(obj) then t = tuple_methods end
  local f = t and t[name]
  if not f then return nil end
  return function(args, kwargs)
    return f(receiver, args or { n = 0 }, kwargs or NO_KW)
  end
end

---@return boolean true when values of kind k have a method `name`
function M.has(k, name)
  local t = TABLES[k == "markup" and "str" or k]
  return t ~= nil and t[name] ~= nil
end

M.str = str
return M
