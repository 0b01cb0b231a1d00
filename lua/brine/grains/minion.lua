-- The grains a minion works with, assembled in the order Salt's loader
-- uses (salt.loader.grains): the core grains of brine.grains first, then
-- each custom grain module (Lua files in `_grains` folders), then the
-- static grains file <config dir>/grains, then the `grains:` option of the
-- minion configuration. Each later source replaces the grains it names.
--
-- A custom grain module is a Lua file returning a table of functions; each
-- public function (name not starting with `_`) returns a mapping of grains.
-- A module that fails to load, or a function that raises, is logged with
-- its file name and skipped: a broken grain never stops the minion.
-- Also owns reading and atomically writing the static grains file, which
-- the grains execution module edits.
local config = require("brine.config")
local data = require("brine.data")
local fs = require("brine.fs")
local log = require("brine.log")
local yaml = require("brine.yaml")

local M = {}

local null = data.null

local function is_mapping(v)
  return type(v) == "table" and data.kind(v) == "map"
end

local function is_dir(path)
  return fs.is_dir(path) == true
end


local function as_list(v)
  if type(v) == "string" then
    return { v }
  elseif type(v) == "table" then
    return v
  end
  return {}
end

--- The folder holding the minion configuration: config_dir, else the
--- folder of conf_file, else brine's default.
---@param opts table
---@return string
function M.config_dir(opts)
  if type(opts.config_dir) == "string" then
    return opts.config_dir
  end
  if type(opts.conf_file) == "string" then
    return opts.conf_file:match("^(.*)/[^/]*$") or "."
  end
  return config.default_dir
end

--- The static grains file (Salt's /etc/salt/grains).
---@param opts table
---@return string path
function M.static_path(opts)
  return M.config_dir(opts) .. "/grains"
end

--- The static grains file as a mapping: an empty one when the file is
--- missing or empty.
---@param opts table
---@return table|nil grains
---@return string|nil error naming the file (and line, for bad YAML)
function M.read_static(opts)
  local path = M.static_path(opts)
  if not fs.exists(path) then
    return data.map()
  end
  local text, err = fs.read(path)
  if not text then
    return nil, err
  end
  if not text:find("%S") then
    return data.map()
  end
  local value, perr = yaml.load(text, { name = path })
  if value == nil then
    return nil, perr
  end
  if value == null then
    return data.map()
  end
  if not is_mapping(value) then
    return nil, path .. ": the grains file must be a mapping of grain: value"
  end
  return value
end

--- Replaces the static grains file with the mapping, atomically (a crash
--- leaves the old file or the new one), keys sorted as Salt's YAML dumper
--- writes a dict.
---@param opts table
---@param grains table mapping
---@return boolean|nil ok
---@return string|nil error
function M.write_static(opts, grains)
  local text = next(grains) == nil and "{}\n"
    or yaml.dump(grains, { flow = false, sort_keys = true })
  return fs.write_atomic(M.static_path(opts), text)
end

-- Adds dir to dirs unless it is there already.
local function add_dir(dirs, dir)
  for _, d in ipairs(dirs) do
    if d == dir then
      return
    end
  end
  dirs[#dirs + 1] = dir
end

--- The folders searched for custom grain modules, most important first, as
--- Salt orders them: each module_dirs entry's `grains` or `_grains`
--- subfolder (the last entry first) or, since brine's module_dirs name the
--- module folders themselves, their sibling `_grains`; then the synced
--- <extension_modules>/grains; then the grains_dirs option.
---@param opts table
---@return table dirs existing folders
function M.custom_dirs(opts)
  local dirs = {}
  local module_dirs = as_list(opts.module_dirs)
  for i = #module_dirs, 1, -1 do
    local d = module_dirs[i]:gsub("/+$", "")
    local parent = d:match("^(.*)/[^/]*$") or "."
    for _, cand in ipairs({ d .. "/grains", d .. "/_grains", parent .. "/_grains" }) do
      if is_dir(cand) then
        add_dir(dirs, cand)
        break
      end
    end
  end
  if type(opts.extension_modules) == "string" then
    local synced = opts.extension_modules .. "/grains"
    if is_dir(synced) then
      add_dir(dirs, synced)
    end
  end
  for _, d in ipairs(as_list(opts.grains_dirs)) do
    if is_dir(d) then
      add_dir(dirs, d)
    end
  end
  return dirs
end

--- The custom grain module files in load order: per folder in name order,
--- a module name found in an earlier folder hiding later ones.
---@param opts table
---@return table paths
function M.custom_files(opts)
  local files, seen = {}, {}
  for _, dir in ipairs(M.custom_dirs(opts)) do
    for _, name in ipairs(fs.listdir(dir) or {}) do
      local mod = name:match("^([%w_]+)%.lua$")
      if mod and not seen[mod] then
        seen[mod] = true
        files[#files + 1] = dir .. "/" .. name
      end
    end
  end
  return files
end

-- Salt's expr_match: a shell pattern, else a regular expression that must
-- match the whole key.
local function expr_match(key, expr)
  if config.fnmatch(key, expr) then
    return true
  end
  local ok, m = pcall(require("renderers.jinja.py_re").fullmatch, expr, key)
  return ok and m ~= nil
end

-- The function that merges a source's grains into the grains collected:
-- replacing top-level grains, or merging mappings with grains_deep_merge;
-- with `filtered`, grains named by grains_blacklist are dropped first.
local function merger(opts)
  local deep = opts.grains_deep_merge == true
  local blacklist = type(opts.grains_blacklist) == "table" and opts.grains_blacklist or {}
  return function(grains, ret, filtered)
    local src = ret
    if filtered and #blacklist > 0 then
      src = {}
      for k, v in pairs(ret) do
        local blocked = false
        for _, expr in ipairs(blacklist) do
          blocked = blocked or expr_match(tostring(k), tostring(expr))
        end
        src[k] = not blocked and v or nil
      end
    end
    if deep then
      config.update(grains, src)
    else
      for k, v in pairs(src) do
        grains[k] = v
      end
    end
  end
end

-- An error message that names the file: Lua's own messages start with
-- "path:line:" already.
local function located(path, err)
  err = tostring(err)
  if err:sub(1, #path + 1) == path .. ":" then
    return err
  end
  return path .. ": " .. err
end

-- Runs one custom grain module's functions in name order (as Salt does,
-- which lists a module's attributes sorted), merging each mapping they
-- return. Problems are appended to `problems` as "path: message".
local function run_module(path, opts, grains, problems, merge)
  local env = setmetatable({ opts = opts, grains = grains }, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  local ok, mod = false, err
  if chunk then
    ok, mod = pcall(chunk)
  end
  if not ok or type(mod) ~= "table" then
    problems[#problems + 1] = ok and path .. ": does not return a table of functions"
      or located(path, mod)
    return
  end
  if type(mod.__virtual__) == "function" then
    local vok, virtual = pcall(mod.__virtual__)
    if not vok then
      problems[#problems + 1] = located(path, virtual) .. " (in __virtual__)"
      return
    elseif virtual == false or virtual == nil or virtual == null then
      return
    end
  end
  local names = {}
  for name, fn in pairs(mod) do
    if type(name) == "string" and name:sub(1, 1) ~= "_" and type(fn) == "function" then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  for _, name in ipairs(names) do
    local fok, ret = pcall(mod[name], grains)
    if not fok then
      problems[#problems + 1] = located(path, ret) .. " (in grain function " .. name .. ")"
    elseif is_mapping(ret) then
      merge(grains, ret, true)
    end
  end
end

--- Runs the custom grain modules over grains, in Salt's order.
---@param opts table
---@param grains table merged into in place
---@return table problems "path: message" for each module or function skipped
function M.custom(opts, grains)
  local problems = {}
  local merge = merger(opts)
  for _, path in ipairs(M.custom_files(opts)) do
    run_module(path, opts, grains, problems, merge)
  end
  return problems
end

--- The grains of this minion: core, custom, static file, then the
--- `grains:` option. grains_blacklist drops grains of the first three by
--- name, as Salt does. A broken custom module or static grains file is
--- logged (and listed in the second result) and skipped.
---@param opts table minion options (id, master, config_dir, module_dirs,
---  extension_modules, grains_dirs, grains, grains_deep_merge,
---  grains_blacklist)
---@return table grains
---@return table problems messages naming the file at fault
function M.load(opts)
  local grains, merge = {}, merger(opts)
  local id = type(opts.id) == "string" and opts.id ~= "" and opts.id or nil
  local core = require("brine.grains").core({ id = id })
  -- Salt's core grains also hold the configured master (get_master)
  core.master = opts.master == nil and "" or opts.master
  merge(grains, core, true)
  local problems = M.custom(opts, grains)
  local static, err = M.read_static(opts)
  if static then
    merge(grains, static, true)
  else
    problems[#problems + 1] = err
  end
  if is_mapping(opts.grains) then
    merge(grains, opts.grains, false)
  end
  for _, problem in ipairs(problems) do
    log.error("grains skipped: %s", problem)
  end
  return grains, problems
end

--- Recomputes grains into an existing table, so every module holding it
--- sees the new values (saltutil.refresh_grains). The `grains:` option is
--- read again from the configuration files when there are any, as Salt
--- does.
---@param opts table
---@param grains table emptied and refilled
---@return table grains
---@return table problems
function M.refresh(opts, grains)
  if type(opts.config_dir) == "string" and fs.exists(opts.config_dir .. "/minion") then
    local fresh = config.load(opts.config_dir, "minion")
    if fresh then
      opts.grains = fresh.grains
    end
  end
  local new, problems = M.load(opts)
  for k in pairs(grains) do
    grains[k] = nil
  end
  for k, v in pairs(new) do
    grains[k] = v
  end
  return grains, problems
end

return M
