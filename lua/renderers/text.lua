-- The text renderer: returns its input unchanged (Salt's `text`).
local M = {}

---@param input string
---@return string|nil, string|nil
function M.render(input, ctx)
  if type(input) ~= "string" then
    return nil, ((ctx and ctx.name) or "<string>") .. ": the text renderer needs text"
  end
  return input
end

return M
