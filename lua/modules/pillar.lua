-- The pillar execution module, as Salt's: read this minion's pillar
-- (pillar.get/fetch with `:` traversal, default '' and merge, pillar.items,
-- pillar.item, pillar.raw, pillar.keys, pillar.ls, pillar.obfuscate,
-- pillar.filter_by, pillar.file_exists). The pillar itself comes from the
-- loader: compiled from pillar_roots by brine.pillar on a masterless
-- minion, else sent by the master.
-- luacheck: globals pillar opts grains __loader__
local config = require("brine.config")
local data = require("brine.data")
local fs = require("brine.fs")

local M = {}

local null = data.null

M.__defaults__ = {
  get = { default = "", merge = false, merge_nested_lists = null, delimiter = ":",
    pillarenv = null, saltenv = null },
  keys = { delimiter = ":" },
  raw = { key = null },
  file_exists = { saltenv = null },
  filter_by = { merge = null, default = "default", base = null },
}
M.__defaults__.fetch = M.__defaults__.get

local function is_kind(v, kind)
  return type(v) == "table" and data.kind(v) == kind
end

local function is_none(v)
  return v == nil or v == null
end

-- A pillar compiled now, as Salt's pillar.items and pillar.get with an
-- environment compile one (another pillarenv or saltenv, an override).
local function compile_now(pillarenv, saltenv, override)
  return require("brine.pillar").minion_pillar(opts, grains, { pillarenv = pillarenv,
    saltenv = saltenv, pillar_override = override })
end

--- A pillar value by key ("a:b" walks nested data), else default ('').
--- With merge=True and a mapping (or list) default, the pillar value is
--- merged over a copy of the default. With pillarenv or saltenv, the value
--- is read from the pillar compiled for that environment.
function M.get(key, default, merge, merge_nested_lists, delimiter, pillarenv, saltenv)
  local root = pillar
  if not (is_none(pillarenv) and is_none(saltenv)) then
    root = compile_now(not is_none(pillarenv) and pillarenv or nil,
      not is_none(saltenv) and saltenv or nil)
  end
  if merge then
    if is_kind(default, "map") then
      local ret = config.traverse(root, key, {}, delimiter)
      if is_kind(ret, "map") then
        return config.update(config.copy(default), ret, merge_nested_lists == true)
      end
    elseif is_kind(default, "array") then
      local ret = config.traverse(root, key, {}, delimiter)
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
  local v = config.traverse(root, key, default, delimiter)
  return v == nil and null or v
end

--- Same as pillar.get.
M.fetch = M.get

--- All pillar data. With keys as arguments, as pillar.item. Keywords:
--- pillar (a mapping merged over the result, as `pillar='{...}'`) and
--- pillarenv (that environment only) compile the pillar again with them.
function M.items(kwargs, ...)
  if select("#", ...) > 0 then
    return M.item({}, ...)
  end
  local override, env = kwargs.pillar, kwargs.pillarenv
  if not is_none(override) and not is_kind(override, "map") then
    return nil, "Pillar data must be a dictionary"
  end
  if is_none(override) and is_none(env) then
    return pillar
  end
  return compile_now(not is_none(env) and env or nil, nil,
    not is_none(override) and override or nil)
end

local PY_TYPES = { string = "str", integer = "int", float = "float", boolean = "bool",
  null = "NoneType" }

local function obfuscate(v)
  local kind = data.kind(v)
  if type(v) == "table" and (kind == "map" or kind == "array") then
    local out = kind == "map" and data.map() or (data.is_tuple(v) and data.tuple() or data.array())
    for k, x in pairs(v) do
      out[k] = obfuscate(x)
    end
    return out
  end
  return "<" .. (PY_TYPES[kind] or kind) .. ">"
end

--- The pillar (as pillar.items, same arguments) with every value replaced
--- by its type, "<str>", "<int>", ...: its shape without its secrets.
function M.obfuscate(kwargs, ...)
  local items, err = M.items(kwargs, ...)
  if items == nil then
    return nil, err
  end
  return obfuscate(items)
end

--- True when path (relative to a pillar root, or absolute) is a file in
--- the pillar_roots of saltenv (all environments when not given).
function M.file_exists(path, saltenv)
  local roots = opts.pillar_roots
  if type(roots) ~= "table" or next(roots) == nil then
    return nil, "No pillar_roots found. Are you running this on the master?"
  end
  if not is_none(saltenv) then
    if roots[saltenv] == nil then
      return false
    end
    roots = { [saltenv] = roots[saltenv] }
  end
  for _, dirs in pairs(roots) do
    for _, dir in ipairs(type(dirs) == "table" and dirs or { dirs }) do
      local full = path:sub(1, 1) == "/" and path or (tostring(dir) .. "/" .. path)
      if fs.is_file(full) then
        return true
      end
    end
  end
  return false
end

--- Salt's filter_by over the pillar: the entry of lookup_dict whose key
--- (a shell pattern) matches the value at the pillar key `pillar` (or one
--- item of a list value), else lookup_dict[default]; `base` is merged
--- under it and `merge` over it. The parameter keeps Salt's name, pillar.
function M.filter_by(lookup_dict, pillar, merge, default, base) -- luacheck: ignore 431
  local filter_by = __loader__:module("grains")._filter_by
  return filter_by(lookup_dict, pillar, _ENV.pillar, merge, default, base)
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
