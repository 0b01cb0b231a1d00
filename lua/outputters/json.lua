-- The json outputter, as Salt's: 4-space indent and the data's own key
-- order by default; `output_indent` (--out-indent) sets the indent, a
-- negative one (or null) prints one line, "pretty" means 4 and sorted keys.
-- Text is not escaped to ASCII (Salt passes ensure_ascii=False).
local data = require("brine.data")
local raw = require("outputters.raw")

local M = {}

local null = data.null

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  return '"' .. s:gsub('[%z\1-\31"\\]', function(c)
    return ESC[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function scalar(v)
  if v == nil or v == null then
    return "null"
  elseif type(v) == "boolean" then
    return tostring(v)
  elseif math.type(v) == "integer" then
    return tostring(v)
  elseif type(v) == "number" then
    if v ~= v then
      return "NaN"
    elseif v == math.huge then
      return "Infinity"
    elseif v == -math.huge then
      return "-Infinity"
    end
    return raw.float(v)
  elseif type(v) == "string" then
    return quote(v)
  end
  return quote(raw.repr(v))
end

local function key_text(k)
  if type(k) == "string" then
    return quote(k)
  end
  return '"' .. scalar(k):gsub('^"(.*)"$', "%1") .. '"'
end

-- Python json.dumps: indent nil -> ", " and ": " on one line; an indent
-- puts each item on its own line.
local function encode(v, indent, sort, depth, out)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  if data.kind(v) == "bigint" then
    out[#out + 1] = tostring(v)
    return
  elseif data.kind(v) == "bytes" then -- as its bytes, as before they had a type
    out[#out + 1] = scalar(v.s)
    return
  end
  local is_array = data.kind(v) == "array"
  local keys
  if is_array then
    keys = {}
    for i = 1, #v do
      keys[i] = i
    end
  else
    keys = raw.keys(v)
    if sort then
      table.sort(keys, function(a, b)
        return tostring(a) < tostring(b)
      end)
    end
  end
  local open, close = is_array and "[" or "{", is_array and "]" or "}"
  if #keys == 0 then
    out[#out + 1] = open .. close
    return
  end
  out[#out + 1] = open
  local pad = indent and "\n" .. string.rep(" ", indent * (depth + 1)) or ""
  for i, k in ipairs(keys) do
    if i > 1 then
      out[#out + 1] = indent and "," or ", "
    end
    out[#out + 1] = pad
    if not is_array then
      out[#out + 1] = key_text(k) .. ": "
    end
    encode(v[k], indent, sort, depth + 1, out)
  end
  if indent then
    out[#out + 1] = "\n" .. string.rep(" ", indent * depth)
  end
  out[#out + 1] = close
end

--- Python's json.dumps(value, indent=indent, sort_keys=sort,
--- ensure_ascii=False).
---@param value any
---@param indent integer|nil
---@param sort boolean|nil
---@return string
function M.dumps(value, indent, sort)
  local out = {}
  encode(value, indent, sort, 0, out)
  return table.concat(out)
end

--- Renders data as Salt's json outputter does.
function M.output(value, opts)
  opts = opts or {}
  local indent, sort = 4, false
  local oi = opts.output_indent
  if oi == null then
    indent = nil
  elseif oi == "pretty" then
    sort = true
  elseif math.type(oi) == "integer" then
    indent = oi >= 0 and oi or nil
  end
  return M.dumps(value, indent, sort)
end

return M
