-- The txt outputter, as Salt's: for a mapping, one `key: line` per line of
-- each value (non-text values as Python prints them); anything else is
-- printed on its own.
local raw = require("outputters.raw")
local data = require("brine.data")

local M = {}

local function lines_of(s)
  local t = {}
  for l in (s .. "\n"):gmatch("([^\n]*)\r?\n") do
    t[#t + 1] = l
  end
  if s:sub(-1) == "\n" then
    t[#t] = nil
  end
  return t
end

--- Renders data as Salt's txt outputter does.
function M.output(value)
  if type(value) == "table" and data.kind(value) == "map" then
    local out = {}
    for _, k in ipairs(raw.keys(value)) do
      local v = value[k]
      if type(v) == "string" then
        for _, l in ipairs(lines_of(v)) do
          out[#out + 1] = raw.str(k) .. ": " .. l .. "\n"
        end
      else
        out[#out + 1] = raw.str(k) .. ": " .. raw.str(v) .. "\n"
      end
    end
    return table.concat(out)
  end
  return raw.str(value) .. "\n"
end

return M
