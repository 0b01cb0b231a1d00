-- The Jinja lexer: turns template text into a flat list of tokens, the way
-- Jinja 3 does with Salt's settings (trim_blocks and lstrip_blocks off, no
-- line statements, keep_trailing_newline off). It owns whitespace control
-- (`{%-`, `-%}`, `{%+`), comments, `{% raw %}` and the expression tokens
-- inside tags. Errors are raised as tables {class=, message=, line=}.
--
-- The first render of a template pays for lexing, so inside tags the
-- scanner makes one pattern match per token (which also captures the first
-- characters of the next one) and keeps its tokens in three parallel arrays
-- (type, value, line) instead of a table per token; `M.scan` hands those to
-- the parser.
local M = {}

local byte, find, match, sub = string.byte, string.find, string.match, string.sub

local function fail(message, line)
  error({ class = "TemplateSyntaxError", message = message, line = line }, 0)
end

-- The line of position p of src.
local function line_at(src, p)
  local line = 1
  local k = find(src, "\n", 1, true)
  while k and k < p do
    line = line + 1
    k = find(src, "\n", k + 1, true)
  end
  return line
end

-- Fails with the line of position p of src (the lexer tracks positions,
-- not lines).
local function fail_at(src, p, message)
  fail(message, line_at(src, p))
end

-- The whitespace bytes (what the patterns' `%s` means: brine never sets a
-- locale, so it is C's).
local SPACE_BYTE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true }

-- Operators: by first character, then (for the two-character ones) by second.
local OP1 = {}
local OP2 = { ["/"] = { ["/"] = "//" }, ["*"] = { ["*"] = "**" }, ["="] = { ["="] = "==" },
              ["!"] = { ["="] = "!=" }, [">"] = { ["="] = ">=" }, ["<"] = { ["="] = "<=" } }

-- What a name may be followed by without whitespace: the characters that
-- start an operator or a string, and "" (the end). Any other character
-- after a name starts a name or number, or is one the lexer refuses.
local AFTER_NAME = { ["!"] = true, ["'"] = true, ['"'] = true, [""] = true }

do
  local ops = { "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".",
                ":", "|", ",", ";" }
  for k = 1, #ops do
    OP1[ops[k]] = ops[k]
    AFTER_NAME[ops[k]] = true
  end
end

local OPEN = { ["("] = ")", ["["] = "]", ["{"] = "}" }
local CLOSE = { [")"] = true, ["]"] = true, ["}"] = true }

local B_NL, B_DASH, B_PLUS, B_PERCENT, B_RBRACE = 10, 45, 43, 37, 125
local B_QUOTE, B_DQUOTE, B_HASH, B_LBRACE = 39, 34, 35, 123

local function utf8_char(cp)
  if cp > 0x10FFFF then return "\xEF\xBF\xBD" end
  return utf8.char(cp)
end

local SIMPLE_ESCAPES = {
  n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v",
  ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["\n"] = "",
}

-- Python's unicode-escape decoding of a string literal's body.
local function unescape(body, line)
  if not find(body, "\\", 1, true) then return body end
  local out, i, n = {}, 1, #body
  while i <= n do
    local c = sub(body, i, i)
    if c ~= "\\" then
      local j = find(body, "\\", i, true) or (n + 1)
      out[#out + 1] = sub(body, i, j - 1)
      i = j
    else
      local e = sub(body, i + 1, i + 1)
      if SIMPLE_ESCAPES[e] then
        out[#out + 1] = SIMPLE_ESCAPES[e]
        i = i + 2
      elseif e == "x" or e == "u" or e == "U" then
        local len = (e == "x" and 2) or (e == "u" and 4) or 8
        local hex = sub(body, i + 2, i + 1 + len)
        if #hex ~= len or not match(hex, "^%x+$") then
          fail("(unicode error) truncated \\" .. e .. " escape", line)
        end
        out[#out + 1] = utf8_char(tonumber(hex, 16))
        i = i + 2 + len
      elseif match(e, "[0-7]") then
        local oct = match(body, "^[0-7][0-7]?[0-7]?", i + 1)
        out[#out + 1] = utf8_char(tonumber(oct, 8))
        i = i + 1 + #oct
      elseif e == "N" and sub(body, i + 2, i + 2) == "{" then
        fail("named unicode escapes are not supported", line)
      else
        out[#out + 1] = "\\"
        i = i + 1
      end
    end
  end
  return table.concat(out)
end

local function strip_digits(s) return (s:gsub("_", "")) end

-- An integer literal in base 2, 8 or 16: a Lua integer, or its digits
-- when it needs more than 63 bits (tonumber would wrap it around).
local function based_integer(digits, base)
  digits = strip_digits(digits):gsub("^0+(%w)", "%1")
  local bits = ({ [2] = 1, [8] = 3, [16] = 4 })[base]
  if #digits * bits > 63 then return { digits = digits, base = base } end
  return math.tointeger(tonumber(digits, base))
end

-- Reads one number at position i; returns token type, value and the next position.
local function read_number(src, i)
  local s = match(src, "^0[bB]_?[01][_01]*", i)
  if s then return "integer", based_integer(s:sub(3), 2), i + #s end
  s = match(src, "^0[oO]_?[0-7][_0-7]*", i)
  if s then return "integer", based_integer(s:sub(3), 8), i + #s end
  s = match(src, "^0[xX]_?%x[_%x]*", i)
  if s then return "integer", based_integer(s:sub(3), 16), i + #s end
  local int = match(src, "^%d+[_%d]*", i)
  local j = i + #int
  local frac = match(src, "^%.%d[_%d]*", j)
  local after = j + (frac and #frac or 0)
  local exp = match(src, "^[eE][+-]?%d[_%d]*", after)
  if frac or exp then
    local text = int .. (frac or "") .. (exp or "")
    return "float", tonumber(strip_digits(text)) + 0.0, i + #text
  end
  -- Jinja's integer rule: no leading zeros except for zero itself.
  local lead = match(int, "^0[0_]*")
  if lead then int = lead; j = i + #lead end
  local clean = strip_digits(int)
  local v = math.tointeger(tonumber(clean))
  -- beyond 64 bits: the digits, made a big integer when the template runs
  if not v then v = { digits = clean:gsub("^0+(%d)", "%1") } end
  return "integer", v, j
end

-- The patterns that find the end of a string literal opened by ' or ".
local STRING_STOP = { [B_QUOTE] = "[\\']", [B_DQUOTE] = '[\\"]' }

-- Reads the string literal whose quote is at i; returns its value and the
-- position of the closing quote.
local function read_string(src, i)
  local q = byte(src, i)
  local close, escaped = i + 1, false
  while true do
    local k = find(src, STRING_STOP[q], close)
    if not k then fail_at(src, i, "unexpected char '" .. sub(src, i, i) .. "' at " .. i) end
    if byte(src, k) == 92 then close, escaped = k + 2, true else close = k; break end
  end
  -- (normalise left no "\r" in src: the body needs no newline conversion)
  local body = sub(src, i + 1, close - 1)
  if escaped then body = unescape(body, line_at(src, i)) end
  return body, close
end

-- What follows a token: skips whitespace, reads the name or number that
-- starts there ("" when none), skips whitespace again and looks at the two
-- characters after that ("" past the end). Each token's pattern ends with
-- the same, so one match per token also reads the name after it (names
-- follow most operators and tag openings).
-- Gives: the word's position, the word, the position after it and its
-- whitespace, and the two characters there.
local NEXT = "^%s*()([%w_]*)%s*()(.?)(.?)"
-- A string literal without escapes, then the same as NEXT.
local PLAIN_STRING = {
  ["'"] = "^'([^\\']*)'%s*()([%w_]*)%s*()(.?)(.?)",
  ['"'] = '^"([^\\"]*)"%s*()([%w_]*)%s*()(.?)(.?)',
}
-- A decimal integer and the character after it, when that is one that
-- needs read_number's full rules.
local PLAIN_INT = "^(%d+)([%._eE]?)"

-- Reads the number at position i, as read_number does; returns its token
-- type, its value and the next position.
local function lex_number(src, i)
  local digits, tail = match(src, PLAIN_INT, i)
  -- (digits >= "1": the first digit is not 0, strings comparing by bytes)
  if tail == "" and #digits < 19 and digits >= "1" then
    -- a plain decimal integer, the common case
    return "integer", tonumber(digits), i + #digits
  end
  return read_number(src, i)
end

-- Tokenizes the inside of a tag; `closer` is the first character of its
-- closing delimiter (`%` or `}`, the second is always `}`) and q, w, p, c,
-- c2 what NEXT read at the start of the tag. Appends to the token arrays
-- from index n + 1 (with their positions for lines) and returns the
-- position after the closing delimiter, whether it strips the following
-- whitespace (`-%}`) and the new token count.
local function lex_tag(src, closer, types, values, lines, n, end_type, q, w, p, c, c2)
  local stack, depth = nil, 0 -- the closers of the open brackets
  while true do
    if w ~= "" then
      n = n + 1
      lines[n] = q
      -- a word is a number when it starts with a digit: digits sort
      -- before letters and `_` (brine never sets a locale, so strings
      -- compare by their bytes)
      if w < "A" then
        local i
        types[n], values[n], i = lex_number(src, q)
        q, w, p, c, c2 = match(src, NEXT, i)
      else
        types[n], values[n] = "name", w
        if AFTER_NAME[c] then w = "" else q, w, p, c, c2 = match(src, NEXT, p) end
      end
    else -- the next token starts at p with c and c2, and is no word
      if c == "" then
        fail_at(src, p, "unexpected end of template, expected '" .. closer .. "}'.")
      end
      n = n + 1
      lines[n] = p
      if depth == 0 then
        if c == closer and c2 == "}" then
          types[n], values[n] = end_type, false
          return p + 2, false, n
        end
        -- `+%}` (Jinja 3) ends a block and keeps trim_blocks off for it,
        -- which Salt's settings leave off anyway
        if c == "+" and closer == "%" and c2 == "%" and byte(src, p + 2) == B_RBRACE then
          types[n], values[n] = end_type, false
          return p + 3, false, n
        end
        -- Jinja only accepts `-` directly before the closer.
        if c == "-" and c2 == closer and byte(src, p + 2) == B_RBRACE then
          types[n], values[n] = end_type, true
          return p + 3, true, n
        end
      end
      if c == "'" or c == '"' then
        local i, value = p
        value, q, w, p, c, c2 = match(src, PLAIN_STRING[c], i)
        if not value then
          local close
          value, close = read_string(src, i)
          q, w, p, c, c2 = match(src, NEXT, close + 1)
        end
        types[n], values[n] = "string", value
      else
        local two = OP2[c]
        local op = two and two[c2] or OP1[c]
        if not op then fail_at(src, p, "unexpected char '" .. c .. "' at " .. p) end
        if OPEN[op] then
          depth = depth + 1
          stack = stack or {}
          stack[depth] = OPEN[op]
        elseif CLOSE[op] then
          if depth == 0 then fail_at(src, p, "unexpected '" .. op .. "'") end
          local want = stack[depth]
          depth = depth - 1
          if want ~= op then
            fail_at(src, p, "unexpected '" .. op .. "', expected '" .. want .. "'")
          end
        end
        types[n], values[n] = "op", op
        q, w, p, c, c2 = match(src, NEXT, p + #op)
      end
    end
  end
end

-- The last position of s[i..j] once trailing whitespace is dropped (i - 1
-- when it is all whitespace). Data before `{%-` mostly ends in a newline
-- and some indentation, so it reads four characters per call.
local function rstrip_end(s, i, j)
  while j - 3 >= i do
    local b1, b2, b3, b4 = byte(s, j - 3, j)
    if not SPACE_BYTE[b4] then return j end
    if not SPACE_BYTE[b3] then return j - 1 end
    if not SPACE_BYTE[b2] then return j - 2 end
    if not SPACE_BYTE[b1] then return j - 3 end
    j = j - 4
  end
  while j >= i and SPACE_BYTE[byte(s, j)] do j = j - 1 end
  return j
end

local RAW_HEAD = "^{%%[%-+]?%s*raw%s*%-?%%}"
local RAW_TAIL = "^{%%[%-+]?%s*endraw%s*%-?%%}"

-- Handles `{% raw %}...{% endraw %}` starting at i (the `{%`). Returns the
-- next position, whether the following data is to be lstripped, and the
-- token count.
local function lex_raw(src, i, types, values, lines, n)
  local head = match(src, RAW_HEAD, i)
  local body_start = i + #head
  local s, e
  local pos = body_start
  while true do
    s = find(src, "{%", pos, true)
    if not s then fail_at(src, i, "Missing end of raw directive") end
    local tail = match(src, RAW_TAIL, s)
    if tail then e = s + #tail - 1; break end
    pos = s + 2
  end
  local tail = sub(src, s, e)
  local body = sub(src, body_start, s - 1)
  -- (a `{%- raw` strips the data before it as any tag does, in scan_into;
  -- never anything past a comment or an earlier raw block)
  if sub(head, -3, -3) == "-" then body = body:gsub("^%s+", "") end
  if sub(tail, 3, 3) == "-" then body = body:gsub("%s+$", "") end
  if body ~= "" then
    n = n + 1
    types[n], values[n], lines[n] = "data", body, body_start
  end
  return e + 1, sub(tail, -3, -3) == "-", n
end

-- Normalises newlines to "\n" and drops one trailing newline, as Jinja
-- does with keep_trailing_newline off.
local function normalise(source)
  local src = source
  if find(src, "\r", 1, true) then src = src:gsub("\r\n", "\n"):gsub("\r", "\n") end
  if byte(src, -1) == B_NL then src = sub(src, 1, -2) end
  return src
end

-- Appends the data between tags, src[i..j], once `lstrip` (after `-%}`)
-- and `rstrip` (before `{%-`) are applied. Returns the token count.
local function lex_data(src, i, j, lstrip, rstrip, types, values, lines, n)
  -- (the whitespace cannot run past j: a tag or the end follows)
  if lstrip then i = match(src, "^%s*()", i) end
  -- no data: nothing to strip (a `{%-` right after a comment or a raw
  -- block strips nothing before them, as in Jinja)
  if i > j then return n end
  local e = rstrip and rstrip_end(src, i, j) or j
  if e >= i then
    n = n + 1
    types[n], values[n], lines[n] = "data", sub(src, i, e), i
  end
  return n
end

-- Turns the token positions in lines[1..n] (in order) into line numbers.
local function number_lines(src, lines, n)
  local line, nl = 1, find(src, "\n", 1, true)
  for k = 1, n do
    local p = lines[k]
    while nl and nl < p do
      line = line + 1
      nl = find(src, "\n", nl + 1, true)
    end
    lines[k] = line
  end
end

--- Tokenizes a template into three parallel arrays. Newlines are normalised
--- to "\n" and one trailing newline is dropped, as Jinja does with
--- keep_trailing_newline off. `values` holds the value of data, name, op,
--- string, integer and float tokens, whether an end token strips (`-%}`)
--- and false for the others.
---@param source string
---@return string[] types
---@return any[] values
---@return integer[] lines
---@return integer n the token count (the last one is "eof")
function M.scan(source)
  local types, values, lines = {}, {}, {}
  return types, values, lines, M.scan_into(source, types, values, lines)
end

--- Tokenizes a template into the arrays given, as `M.scan` does, and
--- clears whatever they held past the new tokens. A caller that tokenizes
--- many templates passes the same arrays each time: they keep their size,
--- where fresh ones would be grown one doubling at a time.
---@param source string
---@param types table
---@param values table
---@param lines table
---@return integer n the token count (the last one is "eof")
function M.scan_into(source, types, values, lines)
  local src = normalise(source)
  local n = 0
  local i, len = 1, #src
  local lstrip_next = false
  while i <= len do
    local s, kind, mod = find(src, "{", i, true)
    while s do -- the next `{%`, `{{` or `{#`
      kind, mod = byte(src, s + 1, s + 2)
      if kind == B_PERCENT or kind == B_LBRACE or kind == B_HASH then break end
      s = find(src, "{", s + 1, true)
    end
    -- (mod is only a tag's modifier when a tag was found: a `{` that opens
    -- none may have left a dash there)
    n = lex_data(src, i, (s or len + 1) - 1, lstrip_next, s ~= nil and mod == B_DASH, types,
      values, lines, n)
    if not s then break end
    local body = s + 2 + ((mod == B_DASH or mod == B_PLUS) and 1 or 0)
    if kind == B_HASH then
      local e = find(src, "#}", body, true)
      if not e then fail_at(src, s, "Missing end of comment tag") end
      lstrip_next = byte(src, e - 1) == B_DASH and e - 1 >= body
      i = e + 2
    else
      local q, w, p, c, c2 = match(src, NEXT, body)
      if kind == B_PERCENT and w == "raw" and match(src, RAW_HEAD, s) then
        i, lstrip_next, n = lex_raw(src, s, types, values, lines, n)
      else
        local begin_type, end_type, closer = "variable_begin", "variable_end", "}"
        if kind == B_PERCENT then begin_type, end_type, closer = "block_begin", "block_end", "%" end
        n = n + 1
        types[n], values[n], lines[n] = begin_type, false, s
        i, lstrip_next, n = lex_tag(src, closer, types, values, lines, n, end_type, q, w, p, c, c2)
      end
    end
  end
  n = n + 1
  types[n], values[n], lines[n] = "eof", false, len + 1
  number_lines(src, lines, n)
  for k = n + 1, #types do types[k] = nil end
  for k = n + 1, #values do values[k] = nil end
  for k = n + 1, #lines do lines[k] = nil end
  return n
end

--- Tokenizes a template into a list of token tables (for tests and tools;
--- the parser reads `M.scan`'s arrays).
---@param source string
---@return table tokens each {type=, value=, line=}; end tokens carry strip=
function M.tokenize(source)
  local types, values, lines, n = M.scan(source)
  local tokens = {}
  for k = 1, n do
    local ty = types[k]
    if ty == "block_end" or ty == "variable_end" then
      tokens[k] = { type = ty, line = lines[k], strip = values[k] }
    elseif values[k] == false then
      tokens[k] = { type = ty, line = lines[k] }
    else
      tokens[k] = { type = ty, value = values[k], line = lines[k] }
    end
  end
  return tokens
end

return M
