-- The newline_values_only outputter, as Salt's: the values of the return
-- mapping without its keys (the minion ids), one per line; a list value
-- gives one line per item. Values print as Python's str().
local data = require("brine.data")
local raw = require("outputters.raw")

local M = {}

--- Renders each value (or each item of a list value) on its own line.
function M.output(value)
  local lines = {}
  for _, k in ipairs(raw.keys(value)) do
    local v = value[k]
    if type(v) == "table" and data.kind(v) == "array" and not data.is_tuple(v) then
      for i = 1, #v do
        lines[#lines + 1] = raw.str(v[i])
      end
    else
      lines[#lines + 1] = raw.str(v)
    end
  end
  return table.concat(lines, "\n")
end

return M
