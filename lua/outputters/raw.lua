-- The raw outputter: the data as Python's str() prints it (Salt's very
-- first output format), plus the Python repr()/str() of brine's data that
-- the txt and nested outputters and the loader's messages share.
local data = require("brine.data")

local M = {}

local null = data.null

--- Python's repr of a float: the shortest digits that read back the same,
--- exponent form below 1e-4 and from 1e16 on, ".0" on whole numbers.
---@param x number
---@return string
function M.float(x)
  if x ~= x then
    return "nan"
  elseif x == math.huge then
    return "inf"
  elseif x == -math.huge then
    return "-inf"
  end
  local s
  for prec = 1, 17 do
    s = string.format("%." .. prec .. "e", x)
    if tonumber(s) == x then
      break
    end
  end
  local sign, mant, exp = s:match("^(-?)([%d.]+)e([-+]%d+)$")
  exp = tonumber(exp)
  local digits = mant:gsub("%.", ""):gsub("0+$", "")
  if digits == "" then
    digits = "0"
  end
  if exp < -4 or exp >= 16 then
    local m = digits:sub(1, 1)
    if #digits > 1 then
      m = m .. "." .. digits:sub(2)
    end
    return string.format("%s%se%s%02d", sign, m, exp < 0 and "-" or "+", math.abs(exp))
  end
  local point = exp + 1
  local out
  if point <= 0 then
    out = "0." .. string.rep("0", -point) .. digits
  elseif point >= #digits then
    out = digits .. string.rep("0", point - #digits) .. ".0"
  else
    out = digits:sub(1, point) .. "." .. digits:sub(point + 1)
  end
  return sign .. out
end

local ESC = { ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

--- Python's repr of a str.
---@param s string
---@return string
function M.string(s)
  local q = "'"
  if s:find("'", 1, true) and not s:find('"', 1, true) then
    q = '"'
  end
  local body = s:gsub("[%c\\'\"\127]", function(c)
    if ESC[c] then
      return ESC[c]
    elseif c == q then
      return "\\" .. c
    elseif c == "'" or c == '"' then
      return c
    end
    return string.format("\\x%02x", c:byte())
  end)
  return q .. body .. q
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then
      return ta < tb
    end
    return a < b
  end)
  return keys
end

--- The keys of a map in the order Salt would show them: insertion order
--- for brine's ordered maps, sorted for plain tables.
function M.keys(t)
  if data.is_map(t) then
    return data.keys(t)
  end
  return sorted_keys(t)
end

--- Python's repr of a value.
---@param v any
---@return string
function M.repr(v)
  if v == nil or v == null then
    return "None"
  end
  local tv = type(v)
  if tv == "boolean" then
    return v and "True" or "False"
  elseif tv == "number" then
    if math.type(v) == "integer" then
      return tostring(v)
    end
    return M.float(v)
  elseif tv == "string" then
    return M.string(v)
  elseif tv ~= "table" then
    return M.string(tostring(v))
  end
  local kind = data.kind(v)
  if kind == "bigint" then
    return tostring(v)
  elseif kind == "bytes" then
    return "b" .. M.string(v.s)
  elseif kind == "array" then
    local parts = {}
    for i = 1, #v do
      parts[i] = M.repr(v[i])
    end
    if data.is_tuple(v) then
      return "(" .. table.concat(parts, ", ") .. (#parts == 1 and ",)" or ")")
    end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local parts = {}
  for _, k in ipairs(M.keys(v)) do
    parts[#parts + 1] = M.repr(k) .. ": " .. M.repr(v[k])
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

--- Python's str of a value: strings as they are, the rest as repr.
function M.str(v)
  if type(v) == "string" then
    return v
  end
  return M.repr(v)
end

--- The outputter: str() of the data.
function M.output(value)
  return M.str(value)
end

return M
