-- The yaml outputter, as Salt's: block style by default, `output_indent`
-- (--out-indent) sets the indent, a negative one gives flow style.
local data = require("brine.data")

local M = {}

--- Renders data as YAML the way Salt's yaml outputter calls PyYAML.
function M.output(value, opts)
  opts = opts or {}
  local yaml = require("brine.yaml")
  local params = { flow = false }
  local oi = opts.output_indent
  if math.type(oi) == "integer" then
    if oi >= 0 then
      params.indent = oi
    else
      params.flow, params.indent = true, 0
    end
  end
  if value == nil then
    value = data.null
  end
  return yaml.dump(value, params)
end

return M
