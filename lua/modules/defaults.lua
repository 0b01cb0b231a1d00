-- The defaults execution module, as Salt's, for the parts formulas call
-- while rendering: merge a mapping into another (defaults.merge, with
-- Salt's dictupdate rules), fill node mappings from defaults (defaults.update) and
-- copy data (defaults.deepcopy).
-- TODO: defaults.get (reading a formula's defaults.yaml through the file
-- server) comes with the file server.
local config = require("brine.config")
local data = require("brine.data")

local M = {}

M.__defaults__ = {
  merge = { merge_lists = false, in_place = true },
  update = { merge_lists = true, in_place = true },
}

local function check_maps(fname, a, b)
  if type(a) ~= "table" or data.kind(a) ~= "map" or type(b) ~= "table"
      or data.kind(b) ~= "map" then
    error("defaults." .. fname .. " needs two mappings", 0)
  end
end

--- Merges src into dest (mappings recursively; lists replaced, or extended
--- by their new items with merge_lists). in_place=False merges into a copy.
function M.merge(dest, src, merge_lists, in_place)
  check_maps("merge", dest, src)
  local merged = in_place and dest or config.copy(dest)
  return config.update(merged, src, merge_lists)
end

--- Salt's defaults.update: dest maps node names to mappings; each node
--- becomes defaults with the node's own values merged over them.
--- in_place=False works on a copy of dest.
function M.update(dest, defaults, merge_lists, in_place)
  check_maps("update", dest, defaults)
  local nodes = in_place and dest or config.copy(dest)
  for _, name in ipairs(data.keys(nodes)) do
    local node = nodes[name]
    if type(node) == "table" and data.kind(node) == "map" then
      nodes[name] = config.update(config.copy(defaults), node, merge_lists)
    end
  end
  return nodes
end

--- A deep copy of source.
function M.deepcopy(source)
  return config.copy(source)
end

return M
