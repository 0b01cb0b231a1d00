-- The saltutil execution module, as Salt's: the grains half for now.
-- refresh_grains computes this minion's grains again (core, custom grain
-- modules, the static grains file, the `grains:` option) into the table
-- every module of the call shares; sync_grains copies the custom grain
-- modules from the `_grains` folders of the file roots into
-- <extension_modules>/grains, where the grains loader finds them.
-- luacheck: globals grains opts __loader__
local data = require("brine.data")
local fs = require("brine.fs")
local minion_grains = require("brine.grains.minion")

local M = {}

local null = data.null

M.__defaults__ = {
  refresh_pillar = { wait = false, timeout = 30, clean_cache = true },
  sync_grains = { saltenv = null, refresh = true, extmod_whitelist = null,
    extmod_blacklist = null, clean_pillar_cache = false },
}

-- Salt's clean_kwargs: the __pub_* keys a job adds are not arguments.
local function reject_kwargs(kwargs, allowed)
  local invalid = {}
  for k, v in pairs(kwargs) do
    if not allowed[k] and not tostring(k):match("^__") then
      invalid[#invalid + 1] = tostring(k) .. "=" .. require("outputters.raw").str(v)
    end
  end
  if #invalid > 0 then
    table.sort(invalid)
    error(require("brine.loader").error("invalid_kwargs",
      "The following keyword arguments are not valid: " .. table.concat(invalid, ", ")), 0)
  end
end

--- Computes the grains again, so that the rest of this call (and modules
--- holding `grains`) see changed custom grain modules, static grains and
--- configuration. Keywords: refresh_pillar, clean_pillar_cache (accepted
--- for Salt's signature). Returns true.
function M.refresh_grains(kwargs)
  reject_kwargs(kwargs, { refresh_pillar = true, clean_pillar_cache = true })
  -- TODO: refresh_pillar=True should also ask the minion for fresh pillar;
  -- that needs the minion daemon's event bus, which is not there yet.
  minion_grains.refresh(opts, grains)
  return true
end

--- Compiles the pillar again (pillar_roots with the current grains), so
--- that the rest of this call, and every module holding `pillar`, sees
--- changed pillar files. Returns true; false when the pillar comes from a
--- master (Salt's answer when it cannot reach the minion's event bus).
function M.refresh_pillar(wait, timeout, clean_cache) -- luacheck: ignore 212
  if opts.file_client ~= "local" then
    -- TODO: ask the running minion to fetch its pillar from the master
    -- again; that needs the minion daemon's event bus.
    return false
  end
  __loader__:refresh_pillar()
  return true
end

-- A comma-separated string or a list, as a set of names; nil for none.
local function name_set(v)
  if v == nil or v == null then
    return nil
  end
  local set = {}
  if type(v) == "string" then
    for name in v:gmatch("[^,%s]+") do
      set[name] = true
    end
  else
    for _, name in ipairs(v) do
      set[tostring(name)] = true
    end
  end
  return set
end

-- The `_grains` module files of the file roots of the environments asked
-- for: module name -> source path (the first root holding a name wins).
local function sources(saltenv)
  local roots = type(opts.file_roots) == "table" and opts.file_roots or {}
  local envs = {}
  if type(saltenv) == "string" then
    envs = { saltenv }
  else
    for env in pairs(roots) do
      envs[#envs + 1] = env
    end
    table.sort(envs)
  end
  local found = {}
  for _, env in ipairs(envs) do
    for _, root in ipairs(type(roots[env]) == "table" and roots[env] or {}) do
      local dir = root .. "/_grains"
      for _, name in ipairs(fs.is_dir(dir) and fs.listdir(dir) or {}) do
        local mod = name:match("^([%w_]+)%.lua$")
        if mod and not found[mod] then
          found[mod] = dir .. "/" .. name
        end
      end
    end
  end
  return found
end

local function wanted(mod, white, black)
  return (not white or white[mod]) and not (black and black[mod])
end

-- Copies one module when its text differs; true when it was written.
local function copy_module(src, dest)
  local text, err = fs.read(src)
  if not text then
    return nil, err
  end
  if fs.exists(dest) and fs.read(dest) == text then
    return false
  end
  local ok
  ok, err = fs.write_atomic(dest, text)
  if not ok then
    return nil, err
  end
  return true
end

--- Copies the custom grain modules (`_grains/*.lua`) of the file roots
--- (of saltenv, else of every environment) into
--- <extension_modules>/grains and removes the ones no longer there.
--- Returns the list of modules written ("grains.<name>"), as Salt does;
--- refresh=True then computes the grains again.
function M.sync_grains(saltenv, refresh, extmod_whitelist, extmod_blacklist,
                       clean_pillar_cache) -- luacheck: ignore 212
  if type(opts.extension_modules) ~= "string" then
    return nil, "saltutil.sync_grains: the extension_modules option is not set"
  end
  local dest_dir = opts.extension_modules .. "/grains"
  local ok, err = fs.mkdir(dest_dir, tonumber("755", 8), true)
  if not ok and not fs.is_dir(dest_dir) then
    return nil, err
  end
  local white, black = name_set(extmod_whitelist), name_set(extmod_blacklist)
  local found, ret = sources(saltenv), data.array()
  for mod, src in pairs(found) do
    if wanted(mod, white, black) then
      local changed
      changed, err = copy_module(src, dest_dir .. "/" .. mod .. ".lua")
      if changed == nil then
        return nil, err
      elseif changed then
        ret[#ret + 1] = "grains." .. mod
      end
    end
  end
  for _, name in ipairs(fs.listdir(dest_dir) or {}) do
    local mod = name:match("^([%w_]+)%.lua$")
    if mod and not (found[mod] and wanted(mod, white, black)) then
      fs.remove(dest_dir .. "/" .. name)
    end
  end
  table.sort(ret)
  if refresh ~= false and refresh ~= null then
    minion_grains.refresh(opts, grains)
  end
  return ret
end

return M
