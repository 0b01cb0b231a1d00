-- Salt's command-line argument rules: which words are `key=value` keyword
-- arguments (parse_kwarg), how each value is read as YAML (yamlify_arg)
-- and how a list of words becomes positional and keyword arguments
-- (parse_input). Used by `brine call` and by anything that takes Salt-style
-- arguments as text.
local data = require("brine.data")

-- A C module of brine when this build has it, else nil (without asking
-- the file system, as a failed require would).
local function c_module(name)
  if package.loaded[name] or package.preload[name] then
    return require(name)
  end
  return nil
end

local M = {}

local null = data.null

-- Python's KWARG_REGEX: ^([^\d\W][\w.-]*)=(?!=)(.*)$ (ASCII word chars;
-- bytes >= 0x80 count as word chars, as Unicode letters do in Python).
local function is_word_start(c)
  return c:match("^[%a_\128-\255]$") ~= nil
end

--- Splits `key=value` when key is an identifier (letters, digits, `_`, `.`,
--- `-`, not starting with a digit) and the `=` is not followed by another.
---@param word string
---@return string|nil key
---@return string|nil value
function M.parse_kwarg(word)
  local key, value = word:match("^([^=]*)=(.*)$")
  if not key or key == "" or not is_word_start(key:sub(1, 1)) then
    return nil
  end
  if key:find("[^%w_%.%-\128-\255]") or value:sub(1, 1) == "=" then
    return nil
  end
  return key, value
end

-- A small reader for the YAML that fits on a command line (scalars and
-- flow collections), used only while brine.yaml is not in the build.
-- TODO: remove once brine.yaml is always present.
local mini = {}

local BOOL = { yes = true, Yes = true, YES = true, on = true, On = true, ON = true,
  ["true"] = true, True = true, TRUE = true, y = true, Y = true,
  no = false, No = false, NO = false, off = false, Off = false, OFF = false,
  ["false"] = false, False = false, FALSE = false, n = false, N = false }
local NULL = { ["~"] = true, null = true, Null = true, NULL = true, [""] = true }

function mini.scalar(s)
  if NULL[s] then
    return null
  end
  if BOOL[s] ~= nil then
    return BOOL[s]
  end
  local clean = s:gsub("_", "")
  if clean:match("^[-+]?%d+$") then
    return math.tointeger(tonumber(clean, 10)) or s
  end
  if clean:match("^[-+]?0x%x+$") then
    return math.tointeger(tonumber(clean)) or s
  end
  -- YAML 1.1 floats need a dot, and a sign in the exponent
  local mant, exp = clean:match("^([-+]?%d*%.%d*)(.*)$")
  if mant and mant:match("%d") and (exp == "" or exp:match("^[eE][-+]%d+$")) then
    return tonumber(mant .. exp) + 0.0
  end
  local low = s:lower()
  if low == ".inf" or low == "+.inf" then
    return math.huge
  elseif low == "-.inf" then
    return -math.huge
  elseif low == ".nan" then
    return 0 / 0
  end
  return s
end

function mini.skip(text, i)
  return text:match("^[ \t\r\n]*()", i)
end

function mini.quoted(text, i)
  local q = text:sub(i, i)
  local out, j = {}, i + 1
  while j <= #text do
    local c = text:sub(j, j)
    if c == q then
      if q == "'" and text:sub(j + 1, j + 1) == "'" then
        out[#out + 1] = "'"
        j = j + 2
      else
        return table.concat(out), j + 1
      end
    elseif c == "\\" and q == '"' then
      local e = text:sub(j + 1, j + 1)
      local map = { n = "\n", t = "\t", r = "\r", ['"'] = '"', ["\\"] = "\\", ["/"] = "/",
        ["0"] = "\0", [" "] = " " }
      if not map[e] then
        error("unsupported escape")
      end
      out[#out + 1] = map[e]
      j = j + 2
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
  error("unterminated quoted scalar")
end

function mini.value(text, i, flow)
  i = mini.skip(text, i)
  local c = text:sub(i, i)
  if c == "[" then
    local list = data.array()
    i = mini.skip(text, i + 1)
    if text:sub(i, i) == "]" then
      return list, i + 1
    end
    while true do
      local v
      v, i = mini.value(text, i, true)
      list[#list + 1] = v
      i = mini.skip(text, i)
      c = text:sub(i, i)
      if c == "]" then
        return list, i + 1
      elseif c ~= "," then
        error("expected ',' or ']'")
      end
      i = i + 1
    end
  elseif c == "{" then
    local map = data.map()
    i = mini.skip(text, i + 1)
    if text:sub(i, i) == "}" then
      return map, i + 1
    end
    while true do
      local k, v
      k, i = mini.value(text, i, true)
      i = mini.skip(text, i)
      if text:sub(i, i) == ":" then
        v, i = mini.value(text, i + 1, true)
      else
        v = null
      end
      if type(k) == "table" then
        error("unhashable key")
      end
      map[k] = v
      i = mini.skip(text, i)
      c = text:sub(i, i)
      if c == "}" then
        return map, i + 1
      elseif c ~= "," then
        error("expected ',' or '}'")
      end
      i = i + 1
    end
  elseif c == "'" or c == '"' then
    return mini.quoted(text, i)
  end
  local s, j
  if flow then
    j = i
    while j <= #text do
      local ch = text:sub(j, j)
      if ch:match("[,%[%]{}]") then
        break
      elseif ch == ":" and (j == #text or text:sub(j + 1, j + 1):match("[%s,%[%]{}]")) then
        break
      end
      j = j + 1
    end
    if j > #text then
      error("unterminated flow collection")
    end
    s = text:sub(i, j - 1)
  else
    s, j = text:sub(i), #text + 1
    s = s:gsub("%s+#.*$", "")
    if s:find(":%s") or s:sub(-1) == ":" or s:match("^[-?]%s") or s:match("^[!&*|>%%@`]") then
      error("block YAML")
    end
  end
  return mini.scalar((s:gsub("%s+$", ""))), j
end

function mini.load(text)
  local v, i = mini.value(text, 1, false)
  local rest = text:sub(i)
  if not (rest:match("^%s*$") or rest:match("^%s+#")) then
    error("trailing text")
  end
  return v
end

-- YAML-loads text; raises on a syntax error (the caller keeps the word).
local function yaml_load(text)
  local yaml = c_module("brine.yaml")
  if not yaml then
    return mini.load(text)
  end
  local value, err = yaml.load(text)
  if value == nil then
    error(err)
  end
  return value
end

M._mini_load = mini.load

local function is_string_or_null(v)
  return type(v) == "string" or v == null or v == nil
end

--- Salt's yamlify_arg: a word becomes the value YAML reads from it, except
--- where that would lose what the user typed: blank words, digits joined by
--- underscores, words whose `#` YAML would take for a comment, mappings not
--- written in braces, lists not written in brackets, `|`, `!` and `#...`,
--- and YAML values Salt does not accept from the command line (dates).
---@param arg any
---@return any
function M.yamlify_arg(arg)
  if type(arg) ~= "string" then
    return arg
  end
  local stripped = arg:match("^%s*(.-)%s*$")
  if stripped == "" then
    return arg
  end
  if arg:find("_", 1, true) and not stripped:find("[^0-9_]") then
    return arg
  end
  local ok, value = pcall(function()
    if arg == "None" then
      return null
    end
    return yaml_load(arg)
  end)
  if not ok then
    return arg
  end
  if arg:find("#", 1, true) then
    if is_string_or_null(value) then
      return arg
    end
    return value
  end
  local kind = data.kind(value)
  if kind == "map" then
    return arg:sub(1, 1) == "{" and value or arg
  elseif kind == "array" then
    return arg:sub(1, 1) == "[" and value or arg
  elseif kind == "null" then
    if stripped:sub(1, 1) == "#" or arg == "!" then
      return arg
    end
    return value
  elseif kind == "string" then
    if value == "" and (arg == "|" or arg == "!") then
      return arg
    end
    return value
  elseif kind == "bigint" then
    -- an integer past 64 bits is nearly always a job id, which every
    -- function compares as text: the digits stay text
    return arg
  elseif kind == "integer" or kind == "float" then
    return value
  end
  -- booleans load too (Python's bool is an int); anything else stays text
  if kind == "boolean" then
    return value
  end
  return arg
end

--- Salt's parse_input: words of the form `key=value` become keyword
--- arguments, the others positional ones; every value is yamlified.
--- A table argument carrying `__kwarg__ = true` is merged into the keyword
--- arguments, as Salt does for its API callers.
---@param words table array of strings (or values)
---@param no_parse table|nil set of keyword names whose value stays text
---@return table args array
---@return table kwargs ordered map
function M.parse_input(words, no_parse)
  local args, kwargs = data.array(), data.map()
  for _, word in ipairs(words) do
    if type(word) == "string" then
      local key, value = M.parse_kwarg(word)
      if key then
        kwargs[key] = nil
        if no_parse and no_parse[key] then
          kwargs[key] = value
        else
          kwargs[key] = M.yamlify_arg(value)
        end
      else
        args[#args + 1] = M.yamlify_arg(word)
      end
    elseif type(word) == "table" and word.__kwarg__ == true then
      for k, v in pairs(word) do
        if k ~= "__kwarg__" then
          kwargs[k] = v
        end
      end
    else
      args[#args + 1] = word
    end
  end
  return args, kwargs
end

return M
