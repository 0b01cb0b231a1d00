-- Configuration: the minion's and the master's options with Salt's names,
-- meanings and defaults (brine's paths instead of salt's), read from
-- DIR/minion (or DIR/master) and DIR/minion.d/*.conf, YAML like Salt's.
-- Owns the defaults table and the root_dir rule; knows nothing of the CLI.
local data = require("brine.data")

-- A C module of brine when this build has it, else nil (without asking
-- the file system, as a failed require would).
local function c_module(name)
  if package.loaded[name] or package.preload[name] then
    return require(name)
  end
  return nil
end

local M = {}

--- The folder read when no -c/--config-dir is given.
M.default_dir = "/etc/brine"

local null = data.null

-- Options both roles share.
local function common()
  return {
    conf_file = null,
    root_dir = "/",
    log_level = "warning",
    log_level_logfile = null,
    log_datefmt = "%H:%M:%S",
    log_fmt_console = "[%(levelname)-8s] %(message)s",
    color = true,
    color_theme = "",
    strip_colors = false,
    state_output = "full",
    state_verbose = true,
    state_output_diff = false,
    state_output_profile = true,
    state_output_pct = false,
    state_compress_ids = false,
    state_tabular = false,
    state_aggregate = false,
    state_events = false,
    state_top = "top.sls",
    failhard = false,
    test = false,
    renderer = "jinja|yaml",
    hash_type = "sha256",
    file_roots = { base = data.array({ "/srv/brine", "/srv/spm/brine" }) },
    pillar_roots = { base = data.array({ "/srv/pillar", "/srv/spm/pillar" }) },
    top_file_merging_strategy = "merge",
    transport = "zeromq",
    cache_jobs = false,
  }
end

local function minion_defaults()
  local o = common()
  o.id = ""
  o.master = "salt"
  o.master_port = 4506
  o.master_type = "str"
  o.master_finger = ""
  o.file_client = "remote"
  o.pki_dir = "/etc/brine/pki/minion"
  o.cachedir = "/var/cache/brine/minion"
  o.sock_dir = "/var/run/brine/minion"
  o.log_file = "/var/log/brine/minion"
  o.pidfile = "/var/run/brine-minion.pid"
  o.extension_modules = null -- <cachedir>/extmods, set by load()
  o.module_dirs = data.array()
  o.states_dirs = data.array()
  o.grains_dirs = data.array()
  o.grains = {}
  o.grains_cache = false
  o.startup_states = ""
  o.default_top = "base"
  o.saltenv = null
  o.pillarenv = null
  o.disable_modules = data.array()
  o.whitelist_modules = data.array()
  o.mine_enabled = true
  o.mine_interval = 60
  o.default_include = "minion.d/*.conf"
  return o
end

local function master_defaults()
  local o = common()
  o.id = ""
  o.interface = "0.0.0.0"
  o.publish_port = 4505
  o.ret_port = 4506
  o.auto_accept = false
  o.open_mode = false
  o.pki_dir = "/etc/brine/pki/master"
  o.cachedir = "/var/cache/brine/master"
  o.sock_dir = "/var/run/brine/master"
  o.log_file = "/var/log/brine/master"
  o.pidfile = "/var/run/brine-master.pid"
  o.timeout = 5
  o.gather_job_timeout = 10
  o.worker_threads = 5
  o.keep_jobs_seconds = 86400
  o.job_cache = true
  o.ext_pillar = data.array()
  o.nodegroups = {}
  o.default_include = "master.d/*.conf"
  return o
end

--- A fresh table of the defaults for a role ("minion" or "master").
---@param role string
---@return table
function M.defaults(role)
  if role == "master" then
    return master_defaults()
  elseif role == "minion" or role == nil then
    return minion_defaults()
  end
  error("config.defaults: unknown role '" .. tostring(role) .. "'", 2)
end

-- Options that root_dir prefixes, as Salt does for each role.
local PATH_OPTIONS = { "pki_dir", "cachedir", "sock_dir", "extension_modules", "pidfile",
  "log_file" }

local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
  end
  return f ~= nil
end

-- Reads and parses one YAML config file into a table (empty file = {}).
local function read_yaml(path)
  -- TODO: drop the brine.yaml check once the YAML module is always built in
  local f, err = io.open(path, "r")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  if not text:find("%S") then
    return {}
  end
  local yaml = c_module("brine.yaml")
  if not yaml then
    return nil, path .. ": reading YAML needs brine.yaml, which this build lacks"
  end
  local value, perr = yaml.load(text, { name = path })
  if value == nil then
    return nil, perr
  end
  if data.is_null(value) then
    return {}
  end
  if type(value) ~= "table" or data.kind(value) ~= "map" then
    return nil, path .. ":1:1: the configuration must be a mapping of option: value"
  end
  return value
end

local function hostname()
  local sys = c_module("brine.sys")
  if sys and sys.hostname then
    local name = sys.hostname()
    if name then
      return name
    end
  end
  local f = io.open("/proc/sys/kernel/hostname", "r")
  if f then
    local name = f:read("l")
    f:close()
    if name and name ~= "" then
      return name
    end
  end
  return "localhost"
end

M.hostname = hostname

--- The static grains file next to the configuration (Salt's
--- /etc/salt/grains): a mapping, or an empty one when there is no file.
---@param opts table
---@return table|nil grains
---@return string|nil error naming the file and line
function M.static_grains(opts)
  local dir = opts.config_dir
  if type(dir) ~= "string" or not file_exists(dir .. "/grains") then
    return {}
  end
  return read_yaml(dir .. "/grains")
end

--- Prefixes each path option with root_dir, as Salt does: absolute paths
--- move under root_dir, relative ones are taken relative to it, a path
--- already under root_dir and a URL stay.
---@param opts table
function M.apply_root_dir(opts)
  local root = opts.root_dir
  if type(root) ~= "string" or root == "" or root == "/" then
    return opts
  end
  root = root:gsub("/+$", "")
  for _, name in ipairs(PATH_OPTIONS) do
    local path = opts[name]
    -- a URL (log_file: udp://host:514, file:///dev/log) is not a path
    if type(path) == "string" and path ~= "" and path ~= root
        and path:sub(1, #root + 1) ~= root .. "/" and not path:match("^%a[%w+.-]*://") then
      if path:sub(1, 1) == "/" then
        opts[name] = root .. path
      else
        opts[name] = root .. "/" .. path
      end
    end
  end
  return opts
end

-- The files an include pattern names, sorted: a path absolute or relative
-- to dir, with shell wildcards (glob(3), as Salt's glob.glob).
local function glob(dir, pattern)
  if pattern:sub(1, 1) ~= "/" then
    pattern = dir .. "/" .. pattern
  end
  local fs = c_module("brine.fs")
  if fs then
    return fs.glob(pattern)
  end
  return file_exists(pattern) and { pattern } or {}
end

-- Python's dict.update: each option of src replaces dst's whole.
local function replace_options(dst, src)
  for k, v in pairs(src) do
    dst[k] = v
  end
  return dst
end

-- Salt's include_config: the files of each pattern (relative to dir) read
-- in order and merged deeply into one table, lists extended; each file's
-- own `include` is followed. warnings collects patterns that match nothing
-- when verbose. Returns the table, or nil and an error naming file and line.
local function read_includes(dir, patterns, verbose, warnings)
  if type(patterns) == "string" then
    patterns = { patterns }
  elseif type(patterns) ~= "table" then
    return {}
  end
  local merged = {}
  for _, pattern in ipairs(patterns) do
    local files = glob(dir, tostring(pattern))
    if #files == 0 and verbose then
      warnings[#warnings + 1] = string.format("Warning parsing configuration file: "
        .. "\"include\" path/glob '%s' matches no files", pattern)
    end
    for _, path in ipairs(files) do
      local value, err = read_yaml(path)
      if not value then
        return nil, err
      end
      local nested, nerr = read_includes(path:match("^(.*)/"), value.include, verbose, warnings)
      if not nested then
        return nil, nerr
      end
      M.update(merged, replace_options(value, nested), true)
    end
  end
  return merged
end

--- Loads the configuration of a role from a folder, as Salt does: DIR/<role>
--- is read when present (a missing file is fine in the default folder, an
--- error in a folder given explicitly); then the files of its
--- `default_include` (default `<role>.d/*.conf`) and of its `include`
--- option, each group merged deeply in name order, replace options of the
--- main file one by one; the result replaces defaults one by one (setting
--- file_roots replaces the whole default file_roots).
---@param dir string|nil config folder (default /etc/brine)
---@param role string|nil "minion" (default) or "master"
---@param explicit boolean|nil true when the user named the folder
---@return table|nil opts
---@return string|nil error naming the file and line
---@return table warnings Salt's warnings (an include matching no file)
function M.load(dir, role, explicit)
  role = role or "minion"
  local opts = M.defaults(role)
  dir = (dir or M.default_dir):gsub("/+$", "")
  if dir == "" then
    dir = "/"
  end
  local main = dir .. "/" .. role
  local overrides, err = {}
  if file_exists(main) then
    overrides, err = read_yaml(main)
    if not overrides then
      return nil, err
    end
  elseif explicit and not file_exists(dir) then
    return nil, dir .. ": no such configuration folder"
  end
  local warnings = {}
  local groups = { { overrides.default_include or opts.default_include, false },
    { overrides.include, true } }
  for _, group in ipairs(groups) do
    local included, ierr = read_includes(dir, group[1], group[2], warnings)
    if not included then
      return nil, ierr
    end
    replace_options(overrides, included)
  end
  replace_options(opts, overrides)
  opts.conf_file = main
  opts.config_dir = dir
  return M.finish(opts), nil, warnings
end

--- Completes options after every source was merged: the id, derived
--- paths and root_dir.
---@param opts table
---@return table opts
function M.finish(opts)
  if opts.id == nil or opts.id == "" or data.is_null(opts.id) then
    opts.id = hostname()
  end
  if opts.extension_modules == nil or data.is_null(opts.extension_modules) then
    opts.extension_modules = opts.cachedir .. "/extmods"
  end
  return M.apply_root_dir(opts)
end

--- A deep copy of a value, keeping ordered maps ordered and arrays arrays.
function M.copy(v)
  if type(v) ~= "table" then
    return v
  end
  local out
  if data.is_map(v) then
    out = data.map()
  elseif data.is_tuple(v) then
    out = data.tuple()
  elseif data.kind(v) == "array" then
    out = data.array()
  else
    out = {}
  end
  for k, x in pairs(v) do
    out[k] = M.copy(x)
  end
  return out
end

local function is_mapping(v)
  return type(v) == "table" and data.kind(v) == "map"
end

local function is_list(v)
  return type(v) == "table" and data.kind(v) == "array"
end

--- Salt's dictupdate.update: merges upd into dest recursively (mappings
--- merge; lists are replaced, or extended with new items when merge_lists).
---@return table dest
function M.update(dest, upd, merge_lists)
  for k, v in pairs(upd) do
    local old = dest[k]
    if is_mapping(old) and is_mapping(v) then
      M.update(old, v, merge_lists)
    elseif merge_lists and is_list(old) and is_list(v) then
      local merged = M.copy(old)
      for _, x in ipairs(v) do
        if not M.contains(merged, x) then
          merged[#merged + 1] = x
        end
      end
      dest[k] = merged
    else
      dest[k] = v
    end
  end
  return dest
end

local function equal(a, b)
  if a == b then
    return true
  end
  if type(a) ~= "table" or type(b) ~= "table" or data.kind(a) ~= data.kind(b) then
    return false
  end
  for k, v in pairs(a) do
    if not equal(v, b[k]) then
      return false
    end
  end
  for k in pairs(b) do
    if a[k] == nil then
      return false
    end
  end
  return true
end

M.equal = equal

--- True when the list holds a value equal to x (Python's `x in list`).
function M.contains(list, x)
  for _, v in ipairs(list) do
    if equal(v, x) then
      return true
    end
  end
  return false
end

--- Salt's traverse_dict_and_list: walks data along key split on delimiter
--- (mapping keys; list indexes, or the first mapping in a list holding the
--- key); returns default when a step misses.
---@param root any
---@param key string
---@param default any
---@param delimiter string|nil default ":"
function M.traverse(root, key, default, delimiter)
  delimiter = delimiter or ":"
  local ptr = root
  local pos = 1
  key = tostring(key)
  while true do
    local stop = key:find(delimiter, pos, true)
    local each = key:sub(pos, (stop or 0) - 1)
    if is_list(ptr) then
      local found, idx = false, math.tointeger(tonumber(each))
      for _, item in ipairs(ptr) do
        if is_mapping(item) and item[idx or each] ~= nil then
          ptr, found = item[idx or each], true
          break
        end
      end
      if not found then
        if not idx then
          return default
        end
        if idx < 0 then
          idx = #ptr + idx
        end
        ptr = ptr[idx + 1]
        if ptr == nil then
          return default
        end
      end
    elseif is_mapping(ptr) then
      local v = ptr[each]
      if v == nil then
        return default
      end
      ptr = v
    else
      return default
    end
    if not stop then
      return ptr
    end
    pos = stop + #delimiter
  end
end

--- Python's fnmatch.fnmatchcase: shell wildcards *, ?, [seq], [!seq].
---@param name string
---@param pattern string
---@return boolean
function M.fnmatch(name, pattern)
  local out, i = { "^" }, 1
  while i <= #pattern do
    local c = pattern:sub(i, i)
    if c == "*" then
      out[#out + 1] = ".*"
    elseif c == "?" then
      out[#out + 1] = "."
    elseif c == "[" then
      local j = pattern:find("]", i + 2, true)
      if not j then
        out[#out + 1] = "%["
      else
        local set = pattern:sub(i + 1, j - 1):gsub("%%", "%%%%")
        if set:sub(1, 1) == "!" then
          set = "^" .. set:sub(2)
        end
        out[#out + 1] = "[" .. set .. "]"
        i = j
      end
    else
      out[#out + 1] = c:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    end
    i = i + 1
  end
  out[#out + 1] = "$"
  return name:match(table.concat(out)) ~= nil
end

return M
