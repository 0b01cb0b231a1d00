-- The nested outputter, Salt's default: each key on its own line with its
-- value 4 columns deeper, `----------` above a mapping below the top level,
-- `- ` before list items and `|_` above a list item that is itself a list
-- or a mapping. Colours (Salt's codes) only when opts.color is true.
local raw = require("outputters.raw")
local data = require("brine.data")

local M = {}

local null = data.null

-- Salt's TextFormat sequences: a reset, then the attributes.
local COLORS = {
  GREEN = "\27[0;32m", YELLOW = "\27[0;33m", LIGHT_YELLOW = "\27[0;1;33m",
  CYAN = "\27[0;36m", RED = "\27[0;31m", ENDC = "\27[0;0m",
}
local NO_COLORS = { GREEN = "", YELLOW = "", LIGHT_YELLOW = "", CYAN = "", RED = "", ENDC = "" }

--- The colour table Salt's outputters use, empty strings when use is false.
function M.colors(use)
  return use and COLORS or NO_COLORS
end

local function line(out, c, indent, color, msg, prefix, suffix)
  out[#out + 1] = string.rep(" ", indent) .. color .. (prefix or "") .. msg .. c.ENDC
    .. (suffix or "")
end

local function splitlines(s)
  local lines = {}
  local i = 1
  while i <= #s do
    local j = s:find("[\n\r]", i)
    if not j then
      lines[#lines + 1] = s:sub(i)
      break
    end
    lines[#lines + 1] = s:sub(i, j - 1)
    if s:sub(j, j + 1) == "\r\n" then
      j = j + 1
    end
    i = j + 1
  end
  return lines
end

local function display(c, st, value, indent, prefix, out)
  local tv = type(value)
  if value == nil or value == null or tv == "boolean" then
    line(out, c, indent, c.LIGHT_YELLOW, raw.repr(value), prefix)
  elseif tv == "number" or (tv == "table" and (data.kind(value) == "bigint"
      or data.kind(value) == "bytes")) then
    line(out, c, indent, c.LIGHT_YELLOW, raw.repr(value), prefix)
  elseif tv == "string" then
    for i, l in ipairs(splitlines(value)) do
      if st.strip_colors then
        l = l:gsub("\27", "?")
      end
      line(out, c, indent, c.GREEN, l, i == 1 and prefix or string.rep(" ", #prefix))
    end
  elseif tv == "table" and data.kind(value) == "array" then
    local color = st.retcode ~= 0 and c.RED or c.GREEN
    for i = 1, #value do
      local item = value[i]
      if type(item) == "table" and data.kind(item) ~= "bigint" and data.kind(item) ~= "bytes" then
        line(out, c, indent, color, "|_")
        local p = data.kind(item) == "map" and "" or "- "
        display(c, st, item, indent + 2, p, out)
      else
        display(c, st, item, indent, "- ", out)
      end
    end
  elseif tv == "table" then
    local color = st.retcode ~= 0 and c.RED or c.CYAN
    if indent > 0 then
      line(out, c, indent, color, "----------")
    end
    for _, k in ipairs(raw.keys(value)) do
      line(out, c, indent, color, raw.str(k), prefix, ":")
      display(c, st, value[k], indent + 4, "", out)
    end
  else
    line(out, c, indent, c.GREEN, tostring(value), prefix)
  end
  return out
end

--- Renders data as Salt's nested outputter does.
---@param value any
---@param opts table|nil color, strip_colors, nested_indent, _retcode
---@return string
function M.output(value, opts)
  opts = opts or {}
  local st = { retcode = opts._retcode or 0, strip_colors = opts.strip_colors ~= false }
  local indent = tonumber(opts.nested_indent) or 0
  local lines = display(M.colors(opts.color == true), st, value, indent, "", {})
  return table.concat(lines, "\n")
end

return M
