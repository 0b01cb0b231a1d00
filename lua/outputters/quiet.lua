-- The quiet outputter: prints nothing, as Salt's.
local M = {}

function M.output()
  return ""
end

return M
