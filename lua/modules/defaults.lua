-- The defaults execution module, as Salt's, for the parts formulas call
-- while rendering: merge a mapping into another (defaults.merge, with
-- Salt's dictupdate rules), fill node mappings from defaults (defaults.update),
-- copy data (defaults.deepcopy) and read a formula's defaults.yaml or
-- defaults.json from the file_roots (defaults.get).
-- luacheck: globals opts
local config = require("brine.config")
local data = require("brine.data")
local render = require("brine.render")

local M = {}

M.__defaults__ = {
  get = { default = "" },
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

-- The data of FORMULA/defaults.yaml (or, when there is none,
-- FORMULA/defaults.json) in the base file_roots, {} for an empty file, nil
-- when there is neither.
local function load_defaults(formula)
  for _, ext in ipairs({ "yaml", "json" }) do
    local path = render.locate(opts, "salt://" .. formula .. "/defaults." .. ext, "base")
    if path then
      local f = assert(io.open(path, "rb"))
      local text = f:read("a")
      f:close()
      local value, err
      if ext == "yaml" then
        value, err = require("brine.yaml").load(text, { name = path })
      else
        value, err = require("brine.json").decode(text)
        err = err and (path .. ": " .. tostring(err))
      end
      if value == nil then
        error(err, 0)
      end
      if value == data.null or value == false or value == "" then
        return data.map()
      end
      return value
    end
  end
  return nil
end

--- The defaults of a formula: `formula` alone is the whole of
--- salt://formula/defaults.yaml (or defaults.json); `formula:a:b` the value
--- at a:b in it, or default when it is missing.
--- CLI example: brine call --local defaults.get core:users:root
function M.get(key, default)
  key = tostring(key)
  local namespace, path = key:match("^([^:]*):(.*)$")
  local defaults = load_defaults(namespace or key)
  if not namespace then
    return defaults
  end
  if defaults == nil then
    return default
  end
  return config.traverse(defaults, path, default)
end

--- A deep copy of source.
function M.deepcopy(source)
  return config.copy(source)
end

return M
