-- The Jinja lexer: turns template text into a flat list of tokens, the way
-- Jinja 3 does with Salt's settings (trim_blocks and lstrip_blocks off, no
-- line statements, keep_trailing_newline off). It owns whitespace control
-- (`{%-`, `-%}`, `{%+`), comments, `{% raw %}` and the expression tokens
-- inside tags. Errors are raised as tables {class=, message=, line=}.
local M = {}

local function fail(message, line)
  error({ class = "TemplateSyntaxError", message = message, line = line }, 0)
end

-- Operators, longest first so `**` wins over `*`.
local OPERATORS = {
  "//", "**", "==", "!=", ">=", "<=",
  "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}",
  ">", "<", "=", ".", ":", "|", ",", ";",
}

-- The operators by length, for a lookup instead of a scan.
local OPERATOR_SET = {}
for _, o in ipairs(OPERATORS) do OPERATOR_SET[o] = true end

local OPEN = { ["("] = ")", ["["] = "]", ["{"] = "}" }

local function count_lines(s, i, j)
  local n = 0
  local k = s:find("\n", i, true)
  while k and k <= j do
    n = n + 1
    k = s:find("\n", k + 1, true)
  end
  return n
end

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
  if not body:find("\\", 1, true) then return body end
  local out, i, n = {}, 1, #body
  while i <= n do
    local c = body:sub(i, i)
    if c ~= "\\" then
      local j = body:find("\\", i, true) or (n + 1)
      out[#out + 1] = body:sub(i, j - 1)
      i = j
    else
      local e = body:sub(i + 1, i + 1)
      if SIMPLE_ESCAPES[e] then
        out[#out + 1] = SIMPLE_ESCAPES[e]
        i = i + 2
      elseif e == "x" or e == "u" or e == "U" then
        local len = (e == "x" and 2) or (e == "u" and 4) or 8
        local hex = body:sub(i + 2, i + 1 + len)
        if #hex ~= len or not hex:match("^%x+$") then
          fail("(unicode error) truncated \\" .. e .. " escape", line)
        end
        out[#out + 1] = utf8_char(tonumber(hex, 16))
        i = i + 2 + len
      elseif e:match("[0-7]") then
        local oct = body:match("^[0-7][0-7]?[0-7]?", i + 1)
        out[#out + 1] = utf8_char(tonumber(oct, 8))
        i = i + 1 + #oct
      elseif e == "N" and body:sub(i + 2, i + 2) == "{" then
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

-- Reads one number at position i; returns token type, value and the next position.
-- An integer literal in base 2, 8 or 16: a Lua integer, or its digits
-- when it needs more than 63 bits (tonumber would wrap it around).
local function based_integer(digits, base)
  digits = strip_digits(digits):gsub("^0+(%w)", "%1")
  local bits = ({ [2] = 1, [8] = 3, [16] = 4 })[base]
  if #digits * bits > 63 then return { digits = digits, base = base } end
  return math.tointeger(tonumber(digits, base))
end

local function read_number(src, i, line)
  local s = src:match("^0[bB]_?[01][_01]*", i)
  if s then return "integer", based_integer(s:sub(3), 2), i + #s end
  s = src:match("^0[oO]_?[0-7][_0-7]*", i)
  if s then return "integer", based_integer(s:sub(3), 8), i + #s end
  s = src:match("^0[xX]_?%x[_%x]*", i)
  if s then return "integer", based_integer(s:sub(3), 16), i + #s end
  local int = src:match("^%d+[_%d]*", i)
  local j = i + #int
  local frac = src:match("^%.%d[_%d]*", j)
  local after = j + (frac and #frac or 0)
  local exp = src:match("^[eE][+-]?%d[_%d]*", after)
  if frac or exp then
    local text = int .. (frac or "") .. (exp or "")
    return "float", tonumber(strip_digits(text)) + 0.0, i + #text
  end
  -- Jinja's integer rule: no leading zeros except for zero itself.
  local lead = int:match("^0[0_]*")
  if lead then int = lead; j = i + #lead end
  local clean = strip_digits(int)
  local v = math.tointeger(tonumber(clean))
  -- beyond 64 bits: the digits, made a big integer when the template runs
  if not v then v = { digits = clean:gsub("^0+(%d)", "%1") } end
  return "integer", v, j
end

-- Tokenizes the inside of a tag, starting at position i. Appends tokens and
-- returns the position after the closing delimiter and the line there.
local function lex_tag(src, i, line, closer, tokens, end_type)
  local stack = {}
  local n = #src
  while true do
    local j = src:find("%S", i) or n + 1
    if j > i then line = line + count_lines(src, i, j - 1); i = j end
    if i > n then
      fail("unexpected end of template, expected '" .. closer .. "'.", line)
    end
    if #stack == 0 then
      if src:sub(i, i + #closer - 1) == closer then
        tokens[#tokens + 1] = { type = end_type, line = line, strip = false }
        return i + #closer, line, false
      end
      -- `+%}` (Jinja 3) ends a block and keeps trim_blocks off for it,
      -- which Salt's settings leave off anyway
      if closer == "%}" and src:sub(i, i + 2) == "+%}" then
        tokens[#tokens + 1] = { type = end_type, line = line, strip = false }
        return i + 3, line, false
      end
      local dash = src:match("^%-%s*", i)
      if dash and src:sub(i + #dash, i + #dash + #closer - 1) == closer then
        -- Jinja only accepts `-` directly before the closer.
        if #dash == 1 then
          tokens[#tokens + 1] = { type = end_type, line = line, strip = true }
          return i + 1 + #closer, line, true
        end
      end
    end
    local c = src:sub(i, i)
    local name = src:match("^[%a_][%w_]*", i)
    if name then
      tokens[#tokens + 1] = { type = "name", value = name, line = line }
      i = i + #name
    elseif c:match("%d") then
      local ty, v, after = read_number(src, i, line)
      tokens[#tokens + 1] = { type = ty, value = v, line = line }
      i = after
    elseif c == "'" or c == '"' then
      local close = i + 1
      while true do
        local k = src:find("[\\" .. c .. "]", close)
        if not k then fail("unexpected char '" .. c .. "' at " .. i, line) end
        if src:sub(k, k) == "\\" then close = k + 2 else close = k; break end
      end
      local body = src:sub(i + 1, close - 1):gsub("\r\n", "\n")
      tokens[#tokens + 1] = { type = "string", value = unescape(body, line), line = line }
      line = line + count_lines(src, i, close)
      i = close + 1
    else
      local op = src:sub(i, i + 1)
      if not OPERATOR_SET[op] then
        op = OPERATOR_SET[c] and c or nil
      end
      if not op then fail("unexpected char '" .. c .. "' at " .. i, line) end
      if OPEN[op] then
        stack[#stack + 1] = OPEN[op]
      elseif op == ")" or op == "]" or op == "}" then
        if #stack == 0 then fail("unexpected '" .. op .. "'", line) end
        local want = table.remove(stack)
        if want ~= op then
          fail("unexpected '" .. op .. "', expected '" .. want .. "'", line)
        end
      end
      tokens[#tokens + 1] = { type = "op", value = op, line = line }
      i = i + #op
    end
  end
end

local function push_data(tokens, text, line)
  if text ~= "" then
    tokens[#tokens + 1] = { type = "data", value = text, line = line }
  end
end

-- Strips trailing whitespace from the last data token (for `{%-`).
local function rstrip_last(tokens)
  local last = tokens[#tokens]
  if last and last.type == "data" then
    last.value = last.value:gsub("%s+$", "")
    if last.value == "" then tokens[#tokens] = nil end
  end
end

-- Handles `{% raw %}...{% endraw %}` starting at i (the `{%`). Returns the
-- next position, line, and whether the following data is to be lstripped.
local function lex_raw(src, i, line, tokens, lstrip_next)
  local head = src:match("^{%%[%-+]?%s*raw%s*%-?%%}", i)
  local body_start = i + #head
  local s, e
  local pos = body_start
  while true do
    s = src:find("{%", pos, true)
    if not s then fail("Missing end of raw directive", line) end
    local tail = src:match("^{%%[%-+]?%s*endraw%s*%-?%%}", s)
    if tail then e = s + #tail - 1; break end
    pos = s + 2
  end
  local tail = src:sub(s, e)
  local body = src:sub(body_start, s - 1)
  if head:sub(3, 3) == "-" then rstrip_last(tokens) end
  if lstrip_next then body = body:gsub("^%s+", "") end
  if head:sub(-3, -3) == "-" then body = body:gsub("^%s+", "") end
  if tail:sub(3, 3) == "-" then body = body:gsub("%s+$", "") end
  push_data(tokens, body, line + count_lines(src, i, body_start - 1))
  return e + 1, line + count_lines(src, i, e), tail:sub(-3, -3) == "-"
end

--- Tokenizes a template. Newlines are normalised to "\n" and one trailing
--- newline is dropped, as Jinja does with keep_trailing_newline off.
---@param source string
---@return table tokens each {type=, value=, line=}
function M.tokenize(source)
  local src = source:gsub("\r\n", "\n"):gsub("\r", "\n")
  if src:sub(-1) == "\n" then src = src:sub(1, -2) end
  local tokens, i, line, n = {}, 1, 1, #src
  local lstrip_next = false
  while i <= n do
    local s = src:find("{[%%{#]", i)
    local text = src:sub(i, (s or n + 1) - 1)
    if lstrip_next then
      local ws = text:match("^%s*")
      line = line + count_lines(ws, 1, #ws)
      text = text:sub(#ws + 1)
    end
    push_data(tokens, text, line)
    line = line + count_lines(text, 1, #text)
    if not s then break end
    local kind = src:sub(s + 1, s + 1)
    local mod = src:sub(s + 2, s + 2)
    if mod == "-" then rstrip_last(tokens) end
    local body = s + 2 + ((mod == "-" or mod == "+") and 1 or 0)
    if kind == "#" then
      local e = src:find("#}", body, true)
      if not e then fail("Missing end of comment tag", line) end
      line = line + count_lines(src, s, e + 1)
      lstrip_next = src:sub(e - 1, e - 1) == "-" and e - 1 >= body
      i = e + 2
    elseif kind == "%" and src:match("^{%%[%-+]?%s*raw%s*%-?%%}", s) then
      i, line, lstrip_next = lex_raw(src, s, line, tokens, false)
    elseif kind == "%" then
      tokens[#tokens + 1] = { type = "block_begin", line = line }
      i, line, lstrip_next = lex_tag(src, body, line, "%}", tokens, "block_end")
    else
      tokens[#tokens + 1] = { type = "variable_begin", line = line }
      i, line, lstrip_next = lex_tag(src, body, line, "}}", tokens, "variable_end")
    end
  end
  tokens[#tokens + 1] = { type = "eof", line = line }
  return tokens
end

return M
