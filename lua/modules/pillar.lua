-- The pillar execution module, as Salt's: read this minion's pillar
-- (pillar.get with `:` traversal, default '' and merge, pillar.items,
-- pillar.item, pillar.keys, pillar.ls).
-- luacheck: globals pillar
local config = require("brine.config")
local data = require("brine.data")

local M = {}

local null = data.null

M.__defaults__ = {
  get = { default = "", merge = false, merge_nested_lists = null, delimiter = ":",
    pillarenv = null, saltenv = null },
  keys = { delimiter = ":" },
  raw = { key = null },
}

local function is_kind(v, kind)
  return type(v) == "table" and data.kind(v) == kind
end

--- A pillar value by key ("a:b" walks nested data), else default ('').
--- With merge=True and a mapping (or list) default, the pillar value is
--- merged over a copy of the default.
function M.get(key, default, merge, merge_nested_lists, delimiter,
               pillarenv, saltenv) -- luacheck: ignore 212
  if merge then
    if is_kind(default, "map") then
      local ret = config.traverse(pillar, key, {}, delimiter)
      if is_kind(ret, "map") then
        return config.update(config.copy(default), ret, merge_nested_lists == true)
      end
    elseif is_kind(default, "array") then
      local ret = config.traverse(pillar, key, {}, delimiter)
      if is_kind(ret, "array") then
        local out = config.copy(default)
        for _, x in ipairs(ret) do
          if not config.contains(out, x) then
            out[#out + 1] = x
          end
        end
        return out
      end
    end
  end
  local v = config.traverse(pillar, key, default, delimiter)
  return v == nil and null or v
end

--- All pillar data.
function M.items()
  return pillar
end

--- All pillar data, or the value of one top-level key.
function M.raw(key)
  if key == nil then
    return pillar
  end
  local v = pillar[key]
  return v == nil and data.map() or v
end

--- The pillar keys named, as a mapping; a missing one maps to default ('').
function M.item(kwargs, ...)
  local default = kwargs.default
  if default == nil then
    default = ""
  end
  local ret = data.map()
  for i = 1, select("#", ...) do
    local key = select(i, ...)
    ret[key] = config.traverse(pillar, key, default, kwargs.delimiter or ":")
  end
  return ret
end

--- The keys of the mapping at key.
function M.keys(key, delimiter)
  local v = config.traverse(pillar, key, nil, delimiter)
  if v == nil then
    return nil, "Pillar key not found: " .. key
  elseif not is_kind(v, "map") then
    return nil, "Pillar value in key " .. key .. " is not a dict"
  end
  return data.array(data.keys(v))
end

--- The top-level pillar keys.
function M.ls()
  return data.array(data.keys(pillar))
end

return M
