-- The grains execution module, as Salt's: read this machine's grains
-- (grains.items, grains.item, grains.get with `:` traversal, grains.ls)
-- and pick values by grain (grains.filter_by).
-- luacheck: globals grains opts
local config = require("brine.config")
local data = require("brine.data")

local M = {}

local null = data.null

M.__defaults__ = {
  get = { default = "", delimiter = ":", ordered = true },
  filter_by = { grain = "os_family", merge = null, default = "default", base = null },
  items = { sanitize = false },
  setval = { destructive = false, refresh_pillar = true },
  setvals = { destructive = false, refresh_pillar = true },
}

--- All grains.
function M.items(sanitize) -- luacheck: ignore 212
  return grains
end

--- The grains named, as a mapping; a missing one maps to default ('').
function M.item(kwargs, ...)
  local default = kwargs.default
  if default == nil then
    default = ""
  end
  local ret = data.map()
  for i = 1, select("#", ...) do
    local key = select(i, ...)
    ret[key] = config.traverse(grains, key, default, kwargs.delimiter or ":")
  end
  return ret
end

--- A grain's value; nested values with "a:b" (delimiter), else default.
function M.get(key, default, delimiter, ordered) -- luacheck: ignore 212
  local v = config.traverse(grains, key, default, delimiter)
  return v == nil and null or v
end

--- The names of all grains, sorted.
function M.ls()
  local keys = data.array()
  for k in pairs(grains) do
    keys[#keys + 1] = k
  end
  table.sort(keys, function(a, b)
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function py_str(v)
  return require("outputters.raw").str(v)
end

--- Salt's filter_by over a lookup mapping: the first key that matches the
--- value (or any item of a list value) at `lookup` in `root` as a shell
--- pattern wins, else lookup_dict[default]; `base` is merged under the
--- result and `merge` over it.
function M._filter_by(lookup_dict, lookup, root, merge, default, base)
  local ret
  local val = config.traverse(root, lookup, data.array())
  local vals = (type(val) == "table" and data.kind(val) == "array") and val or { val }
  for _, each in ipairs(vals) do
    for key, value in pairs(lookup_dict) do
      if config.fnmatch(py_str(each), py_str(key)) then
        ret = value
        break
      end
    end
    if ret ~= nil then
      break
    end
  end
  if ret == nil then
    ret = lookup_dict[default]
  end
  if base ~= nil and lookup_dict[base] ~= nil then
    local base_values = lookup_dict[base]
    if ret == nil then
      ret = base_values
    elseif type(base_values) == "table" and data.kind(base_values) == "map" then
      if type(ret) ~= "table" or data.kind(ret) ~= "map" then
        error("filter_by default and look-up values must both be dictionaries.", 0)
      end
      ret = config.update(config.copy(base_values), ret)
    end
  end
  -- Salt tests `if merge:`, so a falsy merge ('' from a pillar.get
  -- default, {}, None) merges nothing
  if merge ~= nil and merge ~= null and merge ~= false and merge ~= "" and merge ~= 0
      and not (type(merge) == "table" and next(merge) == nil) then
    if type(merge) ~= "table" or data.kind(merge) ~= "map" then
      error("filter_by merge argument must be a dictionary.", 0)
    end
    if ret == nil then
      ret = merge
    else
      config.update(ret, config.copy(merge))
    end
  end
  return ret
end

--- Sets grains in the static grains file next to the configuration
--- (<config_dir>/grains) and in this run's grains; with destructive=True a
--- null value removes the grain. Returns the grains given.
function M.setvals(new, destructive, refresh_pillar) -- luacheck: ignore 212
  if type(new) ~= "table" or data.kind(new) ~= "map" then
    return nil, "setvals grains must be a dictionary."
  end
  local dir = opts.config_dir or config.default_dir
  local path = dir .. "/grains"
  local stored, err = config.static_grains({ config_dir = dir })
  if not stored then
    return nil, err
  end
  for k, v in pairs(new) do
    if v == null and destructive then
      stored[k], grains[k] = nil, nil
    else
      stored[k], grains[k] = v, v
    end
  end
  local yaml = require("brine.yaml")
  local f
  f, err = io.open(path, "w")
  if not f then
    return nil, "Unable to write to grains file at " .. path .. ". Exception: " .. err
  end
  f:write(yaml.dump(stored, { flow = false }))
  f:close()
  return new
end

--- Sets one grain (see setvals); returns { key: value }.
function M.setval(key, val, destructive, refresh_pillar)
  return M.setvals(data.map({ { key, val == nil and null or val } }), destructive,
    refresh_pillar)
end

--- Picks the value of lookup_dict whose key matches this machine's grain
--- (os_family by default) as a shell pattern; see Salt's grains.filter_by.
function M.filter_by(lookup_dict, grain, merge, default, base)
  return M._filter_by(lookup_dict, grain, grains, merge, default, base)
end

return M
