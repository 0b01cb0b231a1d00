-- Shared helpers for the conformance specs: lists the cases of a suite in
-- the conformance corpus ($BRINE_SHARED_DIR/conformance/<suite>/<case>/),
-- reads their files, and turns both brine's values and the corpus's
-- expected.json into one canonical JSON text so that a spec compares two
-- strings.
--
-- The canonical form follows the corpus README: mappings keep their order,
-- keys are strings (1 -> "1", true -> "true", null -> "null", floats as
-- Python's repr), floats always carry a "." or an exponent, non-finite
-- floats are {"$float": "inf"}, byte strings {"$bytes": base64} (brine.data's
-- byte strings, from YAML's !!binary). Integers beyond 64 bits are compared
-- digit for digit (brine.data's big integers).
local data = require("brine.data")

local M = {}

local function b64_encode(s)
  return require("brine.crypto").base64_encode(s)
end

-- data.kind, except that an ordered map stays a map even when its keys
-- are 1..n (data.kind would call it an array).
local function kind_of(v)
  return data.is_map(v) and "map" or data.kind(v)
end


--- The shared folder, or nil when the environment does not name one that
--- holds a conformance corpus.
---@return string|nil
function M.shared_dir()
  local dir = os.getenv("BRINE_SHARED_DIR")
  if not dir or dir == "" then
    return nil
  end
  local f = io.open(dir .. "/conformance/README.md", "rb")
  if not f then
    return nil
  end
  f:close()
  return dir
end

--- Reads a whole file; nil, message when it cannot.
---@param path string
---@return string|nil, string|nil
function M.read(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  return text
end

local function list_dir(dir)
  local names = {}
  local p = io.popen("ls -1a '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  for name in p:lines() do
    if name ~= "." and name ~= ".." then
      names[#names + 1] = name
    end
  end
  p:close()
  table.sort(names)
  return names
end

--- The cases of a suite, sorted by name. Each case is
--- {name=, dir=, files={<file name>=true, ...}}. Empty when the corpus is
--- not there.
---@param suite string "yaml", "jinja" or "sls"
---@return table[]
function M.cases(suite)
  local shared = M.shared_dir()
  if not shared then
    return {}
  end
  local root = shared .. "/conformance/" .. suite
  local cases = {}
  for _, name in ipairs(list_dir(root)) do
    local dir = root .. "/" .. name
    local files = {}
    for _, f in ipairs(list_dir(dir)) do
      files[f] = true
    end
    if next(files) then
      cases[#cases + 1] = { name = name, dir = dir, files = files }
    end
  end
  return cases
end

--- Python's repr of a float: the shortest text that reads back the same,
--- with ".0" or an exponent ("1e+16", "1e-05") as Python writes it.
---@param x number
---@return string
function M.float_repr(x)
  if x ~= x then
    return "nan"
  elseif x == math.huge then
    return "inf"
  elseif x == -math.huge then
    return "-inf"
  end
  local s
  for prec = 0, 16 do
    s = string.format("%." .. prec .. "e", x)
    if tonumber(s) == x then
      break
    end
  end
  local sign, mant, exp = s:match("^(%-?)([%d%.]+)e([-+]%d+)$")
  local digits = mant:gsub("%.", ""):gsub("0+$", "")
  if digits == "" then
    digits = "0"
  end
  exp = tonumber(exp)
  if exp < -4 or exp >= 16 then
    local rest = digits:sub(2)
    return string.format("%s%s%s%se%s%02d", sign, digits:sub(1, 1),
      rest ~= "" and "." or "", rest, exp < 0 and "-" or "+", math.abs(exp))
  end
  local point = exp + 1
  if point <= 0 then
    return sign .. "0." .. string.rep("0", -point) .. digits
  elseif point >= #digits then
    return sign .. digits .. string.rep("0", point - #digits) .. ".0"
  end
  return sign .. digits:sub(1, point) .. "." .. digits:sub(point + 1)
end

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t",
  ["\r"] = "\\r", ["\b"] = "\\b", ["\f"] = "\\f" }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_float(x)
  if x ~= x or x == math.huge or x == -math.huge then
    return '{"$float":"' .. M.float_repr(x) .. '"}'
  end
  return M.float_repr(x)
end

local function key_text(k)
  local kind = data.kind(k)
  if kind == "string" then
    return k
  elseif kind == "integer" or kind == "bigint" then
    return tostring(k)
  elseif kind == "float" then
    return M.float_repr(k)
  elseif kind == "boolean" or kind == "null" then
    return tostring(k)
  end
  error("conformance: a key of kind " .. kind .. " has no corpus form")
end

local function encode(v, out)
  local kind = kind_of(v)
  if kind == "null" then
    out[#out + 1] = "null"
  elseif kind == "boolean" then
    out[#out + 1] = tostring(v)
  elseif kind == "integer" or kind == "bigint" then
    out[#out + 1] = tostring(v)
  elseif kind == "float" then
    out[#out + 1] = json_float(v)
  elseif kind == "string" then
    out[#out + 1] = json_string(v)
  elseif kind == "bytes" then
    out[#out + 1] = '{"$bytes":' .. json_string(b64_encode(v.s)) .. "}"
  elseif kind == "array" then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then
        out[#out + 1] = ","
      end
      encode(v[i], out)
    end
    out[#out + 1] = "]"
  elseif kind == "map" then
    out[#out + 1] = "{"
    local first = true
    for _, k in ipairs(data.keys(v)) do
      if not first then
        out[#out + 1] = ","
      end
      first = false
      out[#out + 1] = json_string(key_text(k)) .. ":"
      encode(v[k], out)
    end
    out[#out + 1] = "}"
  else
    error("conformance: a value of kind " .. kind .. " has no corpus form")
  end
end

--- brine's value as canonical corpus JSON (compact, order kept).
---@param value any
---@return string
function M.to_corpus_json(value)
  local out = {}
  encode(value, out)
  return table.concat(out)
end

-- ---- a small JSON reader for expected.json ----

local function b64_decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bits, out = {}, {}
  for c in s:gmatch("[%w+/]") do
    local v = alphabet:find(c, 1, true) - 1
    for i = 5, 0, -1 do
      bits[#bits + 1] = (v >> i) & 1
    end
  end
  for i = 1, #bits - 7, 8 do
    local byte = 0
    for j = 0, 7 do
      byte = byte * 2 + bits[i + j]
    end
    out[#out + 1] = string.char(byte)
  end
  return table.concat(out)
end

local function utf8_char(cp)
  return utf8.char(cp)
end

local Reader = {}
Reader.__index = Reader

function Reader:fail(msg)
  error(string.format("%s: JSON error at byte %d: %s", self.name, self.pos, msg), 0)
end

function Reader:skip()
  self.pos = self.text:find("[^ \t\r\n]", self.pos) or #self.text + 1
end

function Reader:string()
  local text, pos, parts = self.text, self.pos + 1, {}
  while true do
    local stop = text:find('["\\]', pos)
    if not stop then
      self:fail("unterminated string")
    end
    parts[#parts + 1] = text:sub(pos, stop - 1)
    if text:sub(stop, stop) == '"' then
      self.pos = stop + 1
      return table.concat(parts)
    end
    local esc = text:sub(stop + 1, stop + 1)
    local simple = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
    if esc == "u" then
      local cp = tonumber(text:sub(stop + 2, stop + 5), 16)
      pos = stop + 6
      if cp >= 0xD800 and cp < 0xDC00 and text:sub(pos, pos + 1) == "\\u" then
        local low = tonumber(text:sub(pos + 2, pos + 5), 16)
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00)
        pos = pos + 6
      end
      parts[#parts + 1] = utf8_char(cp)
    else
      parts[#parts + 1] = simple[esc] or esc
      pos = stop + 2
    end
  end
end

-- Returns canonical text for one JSON value.
function Reader:value()
  self:skip()
  local text, pos = self.text, self.pos
  local c = text:sub(pos, pos)
  if c == "{" then
    return self:object()
  elseif c == "[" then
    self.pos = pos + 1
    local items = {}
    self:skip()
    if text:sub(self.pos, self.pos) == "]" then
      self.pos = self.pos + 1
      return "[]"
    end
    while true do
      items[#items + 1] = self:value()
      self:skip()
      local sep = text:sub(self.pos, self.pos)
      self.pos = self.pos + 1
      if sep == "]" then
        return "[" .. table.concat(items, ",") .. "]"
      elseif sep ~= "," then
        self:fail("expected , or ]")
      end
    end
  elseif c == '"' then
    return json_string(self:string())
  end
  local word = text:match("^[%w%.%+%-]+", pos)
  if not word then
    self:fail("unexpected character")
  end
  self.pos = pos + #word
  if word == "true" or word == "false" or word == "null" then
    return word
  end
  if word:find("^%-?%d+$") then
    return tostring(data.bigint(word))
  end
  local x = tonumber(word)
  if not x then
    self:fail("bad number " .. word)
  end
  return json_float(x + 0.0)
end

function Reader:object()
  local text = self.text
  self.pos = self.pos + 1
  local keys, values = {}, {}
  self:skip()
  if text:sub(self.pos, self.pos) == "}" then
    self.pos = self.pos + 1
    return "{}"
  end
  while true do
    self:skip()
    if text:sub(self.pos, self.pos) ~= '"' then
      self:fail("expected a key")
    end
    keys[#keys + 1] = self:string()
    self:skip()
    if text:sub(self.pos, self.pos) ~= ":" then
      self:fail("expected :")
    end
    self.pos = self.pos + 1
    self:skip()
    if keys[#keys] == "$bytes" and #keys == 1 then
      values[1] = self:string()
    else
      values[#values + 1] = self:value()
    end
    self:skip()
    local sep = text:sub(self.pos, self.pos)
    self.pos = self.pos + 1
    if sep == "}" then
      break
    elseif sep ~= "," then
      self:fail("expected , or }")
    end
  end
  if #keys == 1 and keys[1] == "$bytes" then
    -- the same text for the same bytes, whatever base64 line breaks
    return '{"$bytes":' .. json_string(b64_encode(b64_decode(values[1]))) .. "}"
  end
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = json_string(k) .. ":" .. values[i]
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- Parses JSON text (an expected.json) into the canonical text that
--- to_corpus_json gives for the same data.
---@param text string
---@param name string|nil for error messages
---@return string
function M.canonical_json(text, name)
  local r = setmetatable({ text = text, pos = 1, name = name or "json" }, Reader)
  local out = r:value()
  r:skip()
  if r.pos <= #text then
    r:fail("trailing data")
  end
  return out
end

--- Reads an expected.json file as canonical JSON text.
---@param path string
---@return string
function M.read_expected_json(path)
  local text = assert(M.read(path))
  return M.canonical_json(text, path)
end

--- The line and column of the last "line L, column C" mark in an
--- expected.err text (the problem's position), or nil.
---@param text string
---@return integer|nil, integer|nil
function M.last_mark(text)
  local line, column
  for l, c in text:gmatch("line (%d+), column (%d+)") do
    line, column = tonumber(l), tonumber(c)
  end
  return line, column
end

return M
