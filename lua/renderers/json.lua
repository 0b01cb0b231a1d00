-- The json renderer: parses text with brine.json. Like Salt's, it drops a
-- shebang line and gives an empty map for blank text.
local data = require("brine.data")

local M = {}

---@param input string
---@param ctx table name
---@return any|nil, string|nil
function M.render(input, ctx)
  local name = (ctx and ctx.name) or "<string>"
  if type(input) ~= "string" then
    return nil, name .. ": the json renderer needs text, got " .. data.kind(input)
  end
  if input:sub(1, 2) == "#!" then
    input = input:match("^[^\n]*\n(.*)$") or ""
  end
  if not input:find("%S") then
    return data.map()
  end
  local ok, json = pcall(require, "brine.json")
  if not ok then
    return nil, name .. ": the json renderer needs the brine.json module, which this build lacks"
  end
  local value, err = json.decode(input)
  if value == nil and err then
    return nil, name .. ": " .. tostring(err)
  end
  return value
end

return M
