-- The grains execution module, as Salt's: read this machine's grains
-- (items, item, get with `:` traversal, ls, has_value, equals, fetch), pick
-- values by grain (filter_by, the form map.jinja files use), and edit the
-- static grains file next to the configuration (setval, setvals, append,
-- remove, set, delval, delkey). Edits change this call's grains at once
-- and, unless the call is --local, refresh them (saltutil.refresh_grains).
-- Return shapes and messages are Salt's, including its strings returned
-- in place of an error.
-- luacheck: globals grains opts salt
local config = require("brine.config")
local data = require("brine.data")
local minion_grains = require("brine.grains.minion")

local M = {}

local null = data.null

M.__defaults__ = {
  get = { default = "", delimiter = ":", ordered = true },
  fetch = { default = "", delimiter = ":", ordered = true },
  filter_by = { grain = "os_family", merge = null, default = "default", base = null },
  items = { sanitize = false },
  setval = { destructive = false, refresh_pillar = true },
  setvals = { destructive = false, refresh_pillar = true },
  append = { convert = false, delimiter = ":" },
  remove = { delimiter = ":" },
  set = { val = "", force = false, destructive = false, delimiter = ":" },
  delval = { destructive = false, force = false },
  delkey = { force = false },
}

local function py_str(v)
  return require("outputters.raw").str(v)
end

local function is_none(v)
  return v == nil or v == null
end

-- "map", "array" or nil: what Salt would call a dict, a list or neither.
local function kind(v)
  return type(v) == "table" and data.kind(v) or nil
end

local function is_mapping(v)
  return kind(v) == "map"
end

local function is_list(v)
  return kind(v) == "array"
end

-- Python's truth value of v.
local function truthy(v)
  if is_none(v) or v == false or v == 0 or v == "" then
    return false
  end
  return type(v) ~= "table" or next(v) ~= nil
end

-- Salt's salt.utils.data.is_true: numbers are true above 0, strings when
-- they read "true" (in any case), anything else by its truth value.
local function is_true(v)
  local n = tonumber(v)
  if n then
    return n > 0
  elseif type(v) == "string" then
    return v:lower() == "true"
  end
  return truthy(v)
end

-- Salt's grains.items sanitizers: what `sanitize=True` hides.
local function hide_serial(s)
  s = py_str(s)
  local keep = math.floor(#s * 0.75)
  return s:sub(1, keep) .. string.rep("X", #s - keep)
end

local SANITIZERS = {
  serialnumber = hide_serial,
  domain = function() return "DOMAINNAME" end,
  fqdn = function() return "MINION.DOMAINNAME" end,
  id = function() return "MINION.DOMAINNAME" end,
  host = function() return "MINION" end,
  localhost = function() return "MINION" end,
  nodename = function() return "MINION" end,
}

local function sanitize_map(map)
  for key, hide in pairs(SANITIZERS) do
    if map[key] ~= nil then
      map[key] = hide(map[key])
    end
  end
  return map
end

--- All grains; with sanitize=True the host names, domain, id and the end of
--- the serial number are masked.
function M.items(sanitize)
  if not is_true(sanitize) then
    return grains
  end
  local out = {}
  for k, v in pairs(grains) do
    out[k] = v
  end
  return sanitize_map(out)
end

--- The grains named, as a mapping; `a:b` reaches into nested values and a
--- missing one maps to default (''). Keywords: default, delimiter, sanitize.
function M.item(kwargs, ...)
  local default = kwargs.default
  if default == nil then
    default = ""
  end
  local delimiter = kwargs.delimiter or ":"
  local ret = data.map()
  for i = 1, select("#", ...) do
    local key = select(i, ...)
    ret[key] = config.traverse(grains, key, default, delimiter)
  end
  if is_true(kwargs.sanitize) then
    sanitize_map(ret)
  end
  return ret
end

--- A grain's value; nested values with "a:b" (delimiter), else default.
function M.get(key, default, delimiter, ordered) -- luacheck: ignore 212
  local v = config.traverse(grains, key, default, delimiter or ":")
  return v == nil and null or v
end

--- The same as get, under the name Jinja templates call.
function M.fetch(key, default, delimiter, ordered)
  return M.get(key, default, delimiter, ordered)
end

--- True when the key exists in grains (`a:b` for nested keys), whatever its
--- value.
function M.has_value(key)
  local missing = {}
  return config.traverse(grains, key, missing) ~= missing
end

--- True when the grain's value, as a string, is value as a string.
function M.equals(key, value)
  return py_str(value) == py_str(M.get(key, ""))
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

-- The first value of lookup_dict whose key, as a shell pattern, matches
-- one of the values (a list's items, in order); nil when none does.
local function lookup_match(lookup_dict, vals)
  for _, each in ipairs(vals) do
    local subject = py_str(each)
    for key, value in pairs(lookup_dict) do
      if config.fnmatch(subject, py_str(key)) then
        if not is_none(value) then
          return value
        end
        break
      end
    end
  end
  return nil
end

local function dict_update(dest, upd)
  if not is_mapping(dest) or not is_mapping(upd) then
    error("Cannot update using non-dict types in dictupdate.update()", 0)
  end
  return config.update(dest, upd)
end

--- Salt's filter_by over a lookup mapping: the first key that matches the
--- value (or any item of a list value) at `lookup` in `root` as a shell
--- pattern wins, else lookup_dict[default]; `base` is merged under the
--- result and `merge` over it.
function M._filter_by(lookup_dict, lookup, root, merge, default, base)
  local val = config.traverse(root, lookup, data.array())
  local ret = lookup_match(lookup_dict, is_list(val) and val or { val })
  if ret == nil then
    ret = lookup_dict[default]
    if ret == null then
      ret = nil
    end
  end
  if truthy(base) and lookup_dict[base] ~= nil then
    local base_values = lookup_dict[base]
    if ret == nil then
      ret = base_values
    elseif is_mapping(base_values) then
      if not is_mapping(ret) then
        error("filter_by default and look-up values must both be dictionaries.", 0)
      end
      ret = dict_update(config.copy(base_values), ret)
    end
  end
  if truthy(merge) then
    if not is_mapping(merge) then
      error("filter_by merge argument must be a dictionary.", 0)
    end
    if ret == nil then
      ret = merge
    else
      dict_update(ret, config.copy(merge))
    end
  end
  return ret == nil and null or ret
end

--- Picks the value of lookup_dict whose key matches this machine's grain
--- (os_family by default) as a shell pattern; default names the key used
--- when none matches, base a key merged under the result, merge a mapping
--- merged over it (Salt's grains.filter_by).
function M.filter_by(lookup_dict, grain, merge, default, base)
  return M._filter_by(lookup_dict, grain, grains, merge, default, base)
end

--- Sets grains in the static grains file (<config dir>/grains) and in this
--- call's grains; with destructive=True a null value removes the grain.
--- Returns the grains given, or Salt's message string when the file cannot
--- be read.
function M.setvals(new, destructive, refresh_pillar)
  if not is_mapping(new) then
    error("setvals grains must be a dictionary.", 0)
  end
  local stored, err = minion_grains.read_static(opts)
  if not stored then
    return "Unable to read existing grains file: " .. err
  end
  for k, v in pairs(new) do
    if is_none(v) and destructive == true then
      stored[k], grains[k] = nil, nil
    else
      stored[k], grains[k] = v, v
    end
  end
  local ok
  ok, err = minion_grains.write_static(opts, stored)
  if not ok then
    return nil, "Unable to write to grains file at " .. minion_grains.static_path(opts)
      .. ". Check permissions. (" .. tostring(err) .. ")"
  end
  if not opts["local"] and salt["saltutil.refresh_grains"] then
    salt["saltutil.refresh_grains"]({ __kwarg__ = true, refresh_pillar = refresh_pillar })
  end
  return new
end

--- Sets one grain in the static grains file (see setvals); returns
--- { key: value }.
function M.setval(key, val, destructive, refresh_pillar)
  return M.setvals(data.map({ { key, is_none(val) and null or val } }), destructive,
    refresh_pillar)
end

-- Salt's nested write-back: walks key up its delimiter levels, putting
-- value under each parent mapping; returns the top key and its new value.
local function nest(key, value, delimiter, fresh)
  while key:find(delimiter, 1, true) do
    local cut = key:match("^.*()" .. delimiter:gsub("%p", "%%%0"))
    local rest = key:sub(cut + #delimiter)
    key = key:sub(1, cut - 1)
    local parent = config.copy(config.traverse(grains, key, fresh, delimiter))
    if is_mapping(parent) then
      parent[rest] = value
    end
    value = parent
  end
  return key, value
end

--- Appends val (each item of a list val) to the list grain key in the
--- static grains file, creating it; convert=True turns a single value into
--- a list first. Nested keys with delimiter.
function M.append(key, val, convert, delimiter)
  delimiter = delimiter or ":"
  local list = config.copy(M.get(key, data.array(), delimiter))
  if convert and not is_list(list) then
    list = is_none(list) and data.array() or data.array({ list })
  end
  if not is_list(list) then
    return "The key " .. key .. " is not a valid list"
  end
  if config.contains(list, val) then
    return "The val " .. py_str(val) .. " was already in the list " .. key
  end
  for _, item in ipairs(is_list(val) and val or { val }) do
    list[#list + 1] = item
  end
  return M.setval(nest(key, list, delimiter, data.map()))
end

--- Removes val from the list grain key in the static grains file.
function M.remove(key, val, delimiter)
  delimiter = delimiter or ":"
  local list = config.copy(M.get(key, data.array(), delimiter))
  if not is_list(list) then
    return "The key " .. key .. " is not a valid list"
  end
  for i, item in ipairs(list) do
    if config.equal(item, val) then
      table.remove(list, i)
      return M.setval(nest(key, list, delimiter, null))
    end
  end
  return "The val " .. py_str(val) .. " was not in the list " .. key
end

local function complex(v)
  return is_mapping(v) or is_list(v)
end

local function set_result(comment, result)
  return data.map({ { "comment", comment }, { "changes", data.map() }, { "result", result } })
end

-- set's walk up a nested key; returns the top key and value, or nil and
-- the refusal message.
local function set_nested(key, value, force, destructive, delimiter)
  local pattern = "^.*()" .. delimiter:gsub("%p", "%%%0")
  while key:find(delimiter, 1, true) do
    local cut = key:match(pattern)
    local rest = key:sub(cut + #delimiter)
    key = key:sub(1, cut - 1)
    local existing = config.copy(M.get(key, data.map(), delimiter))
    if is_mapping(existing) then
      if is_none(value) and destructive then
        existing[rest] = nil
      else
        existing[rest] = value
      end
    elseif is_list(existing) then
      local updated = false
      for i, item in ipairs(existing) do
        if item == rest then
          existing[i], updated = data.map({ { rest, value } }), true
        elseif is_mapping(item) and item[rest] ~= nil then
          item[rest], updated = value, true
        end
      end
      if not updated then
        existing[#existing + 1] = data.map({ { rest, value } })
      end
    elseif existing == rest or force then
      existing = data.map({ { rest, value } })
    else
      return nil, string.format("The key '%s' value is '%s', which is different from the "
        .. "provided key '%s'. Use 'force=True' to overwrite.", key, py_str(existing), rest)
    end
    value = existing
  end
  return key, value
end

--- Sets a grain, nested keys included ('apps:myApp:port'), in the static
--- grains file. Refuses to replace a list or mapping, or to put one in
--- place of a value, unless force=True. Returns { comment, changes,
--- result } as Salt does.
function M.set(key, val, force, destructive, delimiter)
  delimiter = delimiter or ":"
  val = is_none(val) and null or val
  local missing = {}
  local existing = M.get(key, missing, delimiter)
  if existing ~= missing and config.equal(existing, val)
      and (val ~= null or destructive ~= true) then
    return set_result("Grain is already set", true)
  end
  if existing ~= null and not force then
    if existing ~= missing and complex(existing) then
      return set_result(string.format("The key '%s' exists but is a dict or a list. "
        .. "Use 'force=True' to overwrite.", key), false)
    elseif complex(val) and existing ~= missing then
      return set_result(string.format("The key '%s' exists and the given value is a dict "
        .. "or a list. Use 'force=True' to overwrite.", key), false)
    end
  end
  local top, value = set_nested(key, val, force, destructive, delimiter)
  if not top then
    return set_result(value, false)
  end
  local ret = set_result("", true)
  local changed, err = M.setval(top, value, destructive)
  if is_mapping(changed) then
    ret.changes = changed
  else
    ret.comment, ret.result = changed or err, false
  end
  return ret
end

--- Sets the grain to null in the static grains file; destructive=True
--- removes it. Returns set's result.
function M.delval(key, destructive, force)
  return M.set(key, null, force, destructive)
end

--- Removes the grain from the static grains file and this call's grains.
function M.delkey(key, force)
  return M.delval(key, true, force)
end

return M
