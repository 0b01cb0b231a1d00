-- The yaml renderer: loads text with brine.yaml, which resolves scalars as
-- Salt's loader does. Like Salt's yaml renderer it turns a false-like
-- result (null, false, 0, "", an empty list or map) into an empty map.
-- Error lines count from the top of the file, shebang line included.
local yaml = require("brine.yaml")
local data = require("brine.data")

local M = {}

local function falsy(v)
  local kind = data.is_map(v) and "map" or data.kind(v)
  if kind == "null" or v == false or v == 0 or v == "" then
    return true
  end
  return (kind == "array" or kind == "map") and next(v) == nil
end

---@param input string the text to load
---@param ctx table name, first_line
---@return any|nil, string|nil
function M.render(input, ctx)
  ctx = ctx or {}
  local name = ctx.name or "<string>"
  if type(input) ~= "string" then
    return nil, name .. ": the yaml renderer needs text, got " .. data.kind(input)
  end
  local value, err, info = yaml.load(input, { name = name })
  if value == nil then
    local offset = (ctx.first_line or 1) - 1
    if offset > 0 and info then
      local prefix = string.format("%s:%d:%d: ", name, info.line, info.column)
      err = string.format("%s:%d:%d: %s", name, info.line + offset, info.column,
        err:sub(#prefix + 1))
    end
    return nil, err
  end
  -- ctx.as_loaded (brine render FILE --renderer yaml): what the loader
  -- read, as salt.utils.yaml.safe_load gives it
  if falsy(value) and not ctx.as_loaded then
    return data.map()
  end
  return value
end

return M
