-- The execution module loader: finds `<module>.lua` files (user module
-- folders first, then the cache's extmods, then brine's own tree), loads
-- each only when one of its functions is first asked for, runs its
-- `__virtual__` to decide whether and under which name it loads here, and
-- calls its functions with Salt's argument rules (positional and keyword
-- arguments bound to the Lua function's parameter names). Each module chunk
-- runs with its own environment holding `salt`, `grains`, `pillar`, `opts`
-- and `context`. docs/writing-modules.md is the author's side of this.
local core = require("brine.core")
local data = require("brine.data")

local M = {}

local null = data.null

-- Loader errors are tables with a kind and a message, so callers can tell
-- "no such function" from "bad arguments" from a module's own error().
local Error = {}
Error.__index = Error
Error.__tostring = function(e)
  return e.message
end

--- Makes a loader error object.
---@param kind string "missing"|"invalid_args"|"invalid_kwargs"
---@param message string
function M.error(kind, message)
  return setmetatable({ kind = kind, message = message }, Error)
end

--- True when v is an error raised by the loader.
function M.is_error(v)
  return getmetatable(v) == Error
end

local function raise(kind, message)
  error(M.error(kind, message), 0)
end

local Loader = {}
Loader.__index = Loader

local function file_exists(path)
  local f = io.open(path, "r")
  if f then
    f:close()
  end
  return f ~= nil
end

local function listdir(dir)
  local ok, luv = pcall(require, "luv")
  local names = {}
  local handle = ok and luv.fs_scandir(dir)
  if not handle then
    return names
  end
  while true do
    local name = luv.fs_scandir_next(handle)
    if not name then
      break
    end
    names[#names + 1] = name
  end
  return names
end

-- The option naming extra folders for each tree (Salt's names).
local DIRS_OPTION = { modules = "module_dirs", states = "states_dirs", runners = "runner_dirs" }

-- The folders searched for `<name>.lua`, most important first.
local function search_dirs(opts, tree)
  local dirs = {}
  local extra = opts[DIRS_OPTION[tree] or tree .. "_dirs"]
  if type(extra) == "string" then
    extra = { extra }
  elseif type(extra) ~= "table" then
    extra = {}
  end
  for _, dir in ipairs(extra) do
    dirs[#dirs + 1] = dir
  end
  if type(opts.extension_modules) == "string" then
    dirs[#dirs + 1] = opts.extension_modules .. "/" .. tree
  end
  return dirs
end

--- Creates a loader over the options. `grains` may be a table or a function
--- returning one (called on first use, so a call that never reads grains
--- never computes them); likewise `pillar`.
---@param opts table minion options (module_dirs, extension_modules, ...)
---@param env table|nil { grains = t|fn, pillar = t|fn, tree = "modules", salt = t }: `salt`
--- is what the modules see as `salt` (a "states" loader passes the execution modules'
--- `loader.salt`); by default this loader's own functions
---@return table loader
function M.new(opts, env)
  env = env or {}
  local self = setmetatable({
    opts = opts or {},
    tree = env.tree or "modules",
    context = env.context or {},
    _grains = env.grains,
    _pillar = env.pillar,
    _pillar_source = env.pillar, -- kept for refresh_pillar
    modules = {},        -- name -> module table (loaded, virtual name)
    missing = {},        -- name -> reason string or false (virtual said no)
    errors = {},         -- name -> load error text
    entries = {},        -- "mod.fun" -> bound entry
    tried = {},          -- file names already run
    scanned = false,
  }, Loader)
  self.dirs = search_dirs(self.opts, self.tree)
  self.salt = self:_make_salt()
  self._env_salt = env.salt or self.salt
  return self
end

function Loader:grains()
  local g = self._grains
  if type(g) == "function" then
    g = g(self)
    self._grains = g
  end
  if g == nil then
    g = {}
    self._grains = g
  end
  return g
end

function Loader:pillar()
  local p = self._pillar
  if type(p) == "function" then
    p = p(self)
    self._pillar = p
  end
  if p == nil then
    p = {}
    self._pillar = p
  end
  return p
end

--- Computes the pillar again from its source (the function given to
--- M.new) and puts the new data into the table every module of this run
--- already holds, so that they all see it. Returns the pillar table.
function Loader:refresh_pillar()
  local current = self:pillar()
  local source = self._pillar_source
  if type(source) ~= "function" then
    return current
  end
  local fresh = source(self)
  if type(fresh) ~= "table" or fresh == current then
    return current
  end
  local old = {}
  for k in pairs(current) do
    old[#old + 1] = k
  end
  for _, k in ipairs(old) do
    current[k] = nil
  end
  for k, v in pairs(fresh) do
    current[k] = v
  end
  return current
end

-- The environment a module chunk runs in.
function Loader:_module_env(name)
  local loader = self
  local env = { salt = self._env_salt, opts = self.opts, context = self.context,
    __loader__ = self, __file_name__ = name }
  return setmetatable(env, {
    __index = function(t, k)
      if k == "grains" then
        local g = loader:grains()
        rawset(t, k, g)
        return g
      elseif k == "pillar" then
        local p = loader:pillar()
        rawset(t, k, p)
        return p
      end
      return _G[k]
    end,
  })
end

-- Loads a chunk for a file name: (function, origin) or nil.
function Loader:_find_chunk(file_name, env)
  local rel = file_name .. ".lua"
  for _, dir in ipairs(self.dirs) do
    local path = dir .. "/" .. rel
    if file_exists(path) then
      local chunk, err = loadfile(path, "t", env)
      if not chunk then
        return nil, err
      end
      return chunk, path
    end
  end
  local ok, chunk = pcall(core.load, self.tree .. "/" .. rel)
  if not ok then
    return nil, chunk
  end
  if not chunk then
    return nil, nil
  end
  debug.setupvalue(chunk, 1, env)
  return chunk, "lua/" .. self.tree .. "/" .. rel
end

-- Runs a module file and its __virtual__. Returns the virtual name and the
-- module, or nil plus the reason it did not load (false: no such file).
function Loader:_load_file(file_name)
  self.tried[file_name] = true
  local env = self:_module_env(file_name)
  local chunk, origin = self:_find_chunk(file_name, env)
  if not chunk then
    if origin then
      self.errors[file_name] = origin
      return nil, origin
    end
    return nil, false
  end
  local ok, mod = pcall(chunk)
  if not ok or type(mod) ~= "table" then
    local err = ok and (origin .. ": the module does not return a table") or tostring(mod)
    self.errors[file_name] = err
    return nil, err
  end
  local name = mod.__virtualname__ or file_name
  if type(mod.__virtual__) == "function" then
    local vok, verdict, reason = pcall(mod.__virtual__)
    if not vok then
      self.errors[file_name] = tostring(verdict)
      return nil, tostring(verdict)
    end
    if type(verdict) == "string" then
      name = verdict
    elseif not verdict then
      self.missing[name] = reason or false
      return nil, reason or false, name
    end
  end
  mod.__origin__ = origin
  mod.__name__ = name
  mod.__file__ = file_name
  self.modules[name] = self.modules[name] or mod
  return name, mod
end

-- Every module file name the search path offers, without duplicates.
function Loader:file_names()
  local seen, names = {}, {}
  local function add(file)
    local n = file:match("^(.+)%.lua$")
    if n and not seen[n] then
      seen[n] = true
      names[#names + 1] = n
    end
  end
  for _, dir in ipairs(self.dirs) do
    for _, file in ipairs(listdir(dir)) do
      add(file)
    end
  end
  local prefix = self.tree .. "/"
  for _, rel in ipairs(core.list(prefix)) do
    add(rel:sub(#prefix + 1))
  end
  if core.lua_dir then
    for _, file in ipairs(listdir(core.lua_dir .. "/" .. self.tree)) do
      add(file)
    end
  end
  table.sort(names)
  return names
end

--- Loads every module (for listings and for virtual names that are not
--- file names). Runs once.
function Loader:load_all()
  if self.scanned then
    return
  end
  self.scanned = true
  for _, file in ipairs(self:file_names()) do
    if not self.tried[file] then
      self:_load_file(file)
    end
  end
end

--- The module loaded under a name, loading it on first use.
---@param name string
---@return table|nil module
function Loader:module(name)
  local mod = self.modules[name]
  if mod then
    return mod
  end
  if type(name) ~= "string" or not name:match("^[%w_]+$") then
    return nil -- a module name is a file name: no paths
  end
  if self.missing[name] ~= nil then
    return nil
  end
  if not self.tried[name] then
    local got, m = self:_load_file(name)
    if got == name then
      return m
    end
  end
  self:load_all()
  return self.modules[name]
end

--- Salt's words for a function that cannot be called.
---@param fun string "mod.fun"
---@return string
function Loader:missing_fun_string(fun)
  local mod = fun:match("^([^.]*)")
  if self.modules[mod] then
    return string.format("'%s' is not available.", fun)
  end
  local reason = self.missing[mod]
  if reason == nil then
    return string.format("'%s' is not available.", fun)
  elseif reason then
    return string.format("'%s' __virtual__ returned False: %s", mod, reason)
  end
  return string.format("'%s' __virtual__ returned False", mod)
end

--- Why the module of fun failed to load (a syntax or run error), if it did.
function Loader:function_error(fun)
  return self.errors[fun:match("^([^.]*)")]
end

-- Reads a Lua function's parameters: names, whether it takes `...`, and
-- whether its last named parameter is `kwargs` (Salt's **kwargs).
local function introspect(fn)
  local info = debug.getinfo(fn, "u")
  local params = {}
  for i = 1, info.nparams do
    params[i] = debug.getlocal(fn, i)
  end
  local has_kwargs = params[#params] == "kwargs"
  if has_kwargs then
    params[#params] = nil
  end
  return params, info.isvararg, has_kwargs
end

--- The callable entry for "mod.fun": { fn, module, name, params, defaults,
--- varargs, kwargs }, or nil when there is no such public function.
function Loader:entry(fun)
  local entry = self.entries[fun]
  if entry then
    return entry
  end
  local modname, fname = fun:match("^([%w_]+)%.(.+)$")
  if not modname or fname:sub(1, 1) == "_" then
    return nil
  end
  local mod = self:module(modname)
  local fn = mod and rawget(mod, fname)
  if type(fn) ~= "function" then
    return nil
  end
  local params, varargs, kwargs = introspect(fn)
  local defaults = type(mod.__defaults__) == "table" and mod.__defaults__[fname] or {}
  local index = {}
  for i, p in ipairs(params) do
    index[p] = i
  end
  entry = { fn = fn, module = mod, fun = fun, name = fname, params = params, index = index,
    defaults = defaults, varargs = varargs, kwargs = kwargs }
  self.entries[fun] = entry
  return entry
end

local function plural(n, word)
  return n == 1 and word or word .. "s"
end

local function quote_list(names)
  local q = {}
  for i, n in ipairs(names) do
    q[i] = "'" .. n .. "'"
  end
  if #q == 1 then
    return q[1]
  elseif #q == 2 then
    return q[1] .. " and " .. q[2]
  end
  return table.concat(q, ", ", 1, #q - 1) .. ", and " .. q[#q]
end

local function py_str(v)
  return require("outputters.raw").str(v)
end

-- The "f() takes ... positional arguments" TypeError text.
local function too_many(entry, given)
  local n, required = #entry.params, 0
  for _, p in ipairs(entry.params) do
    if entry.defaults[p] == nil then
      required = required + 1
    end
  end
  local takes
  if required == n then
    takes = string.format("%d positional %s", n, plural(n, "argument"))
  else
    takes = string.format("from %d to %d positional arguments", required, n)
  end
  return string.format("%s() takes %s but %d %s given", entry.name, takes, given,
    given == 1 and "was" or "were")
end

local function to_lua(v)
  if v == null then
    return nil
  end
  return v
end

-- Salt refuses keyword arguments a function has no parameter for (unless
-- it takes **kwargs) before anything else is checked.
local function check_kwargs(entry, kwargs)
  if entry.kwargs or not kwargs then
    return
  end
  local invalid = {}
  for k, v in pairs(kwargs) do
    if not entry.index[k] then
      invalid[#invalid + 1] = tostring(k) .. "=" .. py_str(v)
    end
  end
  if #invalid > 0 then
    raise("invalid_kwargs", "The following keyword arguments are not valid: "
      .. table.concat(invalid, ", "))
  end
end

-- Gives each parameter not yet filled its default; raises for the
-- required ones left.
local function fill_defaults(entry, values, filled)
  local missing = {}
  for i, p in ipairs(entry.params) do
    if not filled[i] then
      local default = entry.defaults[p]
      if default == nil then
        missing[#missing + 1] = p
      else
        values[i] = to_lua(default)
      end
    end
  end
  if #missing > 0 then
    raise("invalid_args", string.format("%s() missing %d required positional %s: %s",
      entry.name, #missing, plural(#missing, "argument"), quote_list(missing)))
  end
end

--- Binds arguments to an entry's parameters as Python binds them and
--- returns the values to call the Lua function with (an array and its
--- length). Raises loader errors for invalid keyword arguments (Salt's
--- SaltInvocationError) and for a wrong count (Python's TypeError).
---@param entry table from Loader:entry
---@param args table|nil array of positional values
---@param kwargs table|nil map of keyword values
function M.bind(entry, args, kwargs)
  args = args or {}
  local params, nargs = entry.params, #args
  check_kwargs(entry, kwargs)
  if nargs > #params and not entry.varargs then
    raise("invalid_args", too_many(entry, nargs))
  end
  local values, filled = {}, {}
  for i = 1, math.min(nargs, #params) do
    values[i], filled[i] = to_lua(args[i]), true
  end
  local extra = entry.kwargs and data.map() or nil
  for k, v in pairs(kwargs or {}) do
    local i = entry.index[k]
    if i and filled[i] then
      raise("invalid_args", string.format("%s() got multiple values for argument '%s'",
        entry.name, k))
    elseif i then
      values[i], filled[i] = to_lua(v), true
    else
      extra[k] = v
    end
  end
  fill_defaults(entry, values, filled)
  local n = #params
  if entry.kwargs then
    n = n + 1
    values[n] = extra
  end
  for i = #params + 1, nargs do
    n = n + 1
    values[n] = args[i]
  end
  return values, n
end

--- Calls "mod.fun" with positional and keyword arguments; returns what the
--- function returns. Raises a loader error when the function is missing or
--- the arguments do not fit; a module's own errors propagate unchanged.
---@param fun string
---@param args table|nil
---@param kwargs table|nil
function Loader:call(fun, args, kwargs)
  local entry = self:entry(fun)
  if not entry then
    raise("missing", self:missing_fun_string(fun))
  end
  local values, n = M.bind(entry, args, kwargs)
  return entry.fn(table.unpack(values, 1, n))
end

-- A Lua caller's arguments: a last table with `__kwarg__ = true` holds the
-- keyword arguments, as in Salt's own calling convention.
local function split_call(...)
  local n = select("#", ...)
  local args = { ... }
  local last = args[n]
  if type(last) == "table" and rawget(last, "__kwarg__") == true then
    local kwargs = {}
    for k, v in pairs(last) do
      if k ~= "__kwarg__" then
        kwargs[k] = v
      end
    end
    args[n] = nil
    n = n - 1
    return args, n, kwargs
  end
  return args, n, nil
end

function Loader:_function(fun)
  local loader = self
  return function(...)
    local args, n, kwargs = split_call(...)
    for i = 1, n do
      if args[i] == nil then
        args[i] = null
      end
    end
    return loader:call(fun, args, kwargs)
  end
end

-- The `salt` table: salt["mod.fun"] and salt.mod.fun, both lazy.
function Loader:_make_salt()
  local loader = self
  local salt = {}
  return setmetatable(salt, {
    __index = function(t, key)
      if type(key) ~= "string" then
        return nil
      end
      if key:find(".", 1, true) then
        if not loader:entry(key) then
          return nil
        end
        local f = loader:_function(key)
        rawset(t, key, f)
        return f
      end
      local proxy = setmetatable({}, {
        __index = function(p, fname)
          local f = t[key .. "." .. fname]
          rawset(p, fname, f)
          return f
        end,
      })
      rawset(t, key, proxy)
      return proxy
    end,
  })
end

--- Names of the modules that load here, sorted.
function Loader:list_modules()
  self:load_all()
  local names = {}
  for name in pairs(self.modules) do
    names[#names + 1] = name
  end
  table.sort(names)
  return names
end

--- "mod.fun" names of a module's public functions (all modules when mod is
--- nil), sorted.
function Loader:list_functions(mod)
  local names = {}
  local mods = mod and { mod } or self:list_modules()
  for _, m in ipairs(mods) do
    local t = self:module(m)
    for k, v in pairs(t or {}) do
      if type(v) == "function" and type(k) == "string" and k:sub(1, 1) ~= "_" then
        names[#names + 1] = m .. "." .. k
      end
    end
  end
  table.sort(names)
  return names
end

--- Salt's argspec record for a function: args, defaults, varargs, kwargs.
function Loader:argspec(fun)
  local entry = self:entry(fun)
  if not entry then
    return nil
  end
  local args, defaults = data.array(), data.array()
  for i, p in ipairs(entry.params) do
    args[i] = p
    if entry.defaults[p] ~= nil then
      defaults[#defaults + 1] = entry.defaults[p]
    end
  end
  return data.map({
    { "args", #args > 0 and args or null },
    { "defaults", #defaults > 0 and data.tuple(defaults) or null },
    { "kwargs", entry.kwargs and true or null },
    { "varargs", entry.varargs and true or null },
  })
end

-- The lines of the file a function was loaded from, or nil.
local function source_lines(fn)
  local src = debug.getinfo(fn, "S").source
  if src:sub(1, 1) ~= "@" then
    return nil
  end
  local path, text = src:sub(2), nil
  if path:sub(1, 4) == "lua/" then
    text = core.source(path:sub(5))
  else
    local f = io.open(path, "r")
    if f then
      text = f:read("a")
      f:close()
    end
  end
  if not text then
    return nil
  end
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
  end
  return lines
end

-- The `--` comment block right above line n (annotations left out).
local function comment_above(lines, n)
  local doc = {}
  for i = n - 1, 1, -1 do
    local c = lines[i] and lines[i]:match("^%s*%-%-%-?%s?(.*)$")
    if not c then
      break
    end
    if not c:match("^@") then
      table.insert(doc, 1, c)
    end
  end
  return #doc > 0 and table.concat(doc, "\n") or nil
end

--- The documentation of a function: the `--` comment block right above
--- its definition in the module's source (or above the line assigning it,
--- `M.name = ...`, for functions another function makes), or nil.
function Loader:doc(fun)
  local entry = self:entry(fun)
  local lines = entry and source_lines(entry.fn)
  if not lines then
    return nil
  end
  local doc = comment_above(lines, debug.getinfo(entry.fn, "S").linedefined)
  if doc then
    return doc
  end
  local name = entry.name:gsub("%p", "%%%0")
  for i, line in ipairs(lines) do
    if line:match("^%s*M%." .. name .. "%s*=") or line:match('^%s*M%["' .. name .. '"%]%s*=') then
      return comment_above(lines, i)
    end
  end
  return nil
end

--- The outputter named name: a user one from opts.outputter_dirs or
--- <extension_modules>/output first, else brine's own; Salt's nested
--- outputter when there is no such name (and false as a second value).
---@param name string
---@param opts table|nil
---@return table outputter { output = function(data, opts) -> string }
---@return boolean found false when name fell back to nested
function M.outputter(name, opts)
  opts = opts or {}
  if not name:match("^[%w_]+$") then
    return require("outputters.nested"), false
  end
  local dirs = {}
  local extra = opts.outputter_dirs
  if type(extra) ~= "table" then
    extra = { type(extra) == "string" and extra or nil }
  end
  for _, dir in ipairs(extra) do
    dirs[#dirs + 1] = dir
  end
  if type(opts.extension_modules) == "string" then
    dirs[#dirs + 1] = opts.extension_modules .. "/output"
  end
  for _, dir in ipairs(dirs) do
    local path = dir .. "/" .. name .. ".lua"
    if file_exists(path) then
      local chunk = assert(loadfile(path, "t"))
      local mod = chunk()
      if type(mod) == "table" and type(mod.output) == "function" then
        return mod, true
      end
    end
  end
  if name == "text" then
    name = "txt"
  end
  local ok, mod = pcall(require, "outputters." .. name)
  if ok and type(mod) == "table" and mod.output then
    return mod, true
  end
  return require("outputters.nested"), false
end

--- This process's id.
function M.pid()
  local ok, luv = pcall(require, "luv")
  return ok and math.tointeger(luv.os_getpid()) or 0
end

--- A new job id in Salt's form: the local time as YYYYMMDDhhmmssffffff.
function M.jid()
  local ok, luv = pcall(require, "luv")
  local sec, usec = os.time(), 0
  if ok then
    sec, usec = luv.gettimeofday()
  end
  return os.date("%Y%m%d%H%M%S", sec) .. string.format("%06d", usec)
end

--- The grains of this machine, assembled as Salt's loader does (core,
--- custom grain modules, static grains file, `grains:` option): see
--- lua/brine/grains/minion.lua.
---@param opts table
---@return table grains
function M.grains(opts)
  return (require("brine.grains.minion").load(opts))
end

--- The lazy grains and pillar for M.new: computed on first use. With
--- `file_client: local` the pillar is compiled from pillar_roots for this
--- minion's grains (brine.pillar.minion_pillar); otherwise it is the
--- `pillar` option.
---@param opts table
function M.environment(opts)
  return {
    grains = function()
      return M.grains(opts)
    end,
    pillar = function(ld)
      return require("brine.pillar").minion_pillar(opts, ld:grains())
    end,
  }
end

-- Salt's publish keys (__pub_fun, __pub_jid, ...) reach only functions that
-- take **kwargs; the others never see them.
local function job_kwargs(entry, kwargs)
  if entry.kwargs or type(kwargs) ~= "table" then
    return kwargs
  end
  local kept = data.map()
  for k, v in pairs(kwargs) do
    if type(k) ~= "string" or k:sub(1, 6) ~= "__pub_" then
      kept[k] = v
    end
  end
  return kept
end

--- Runs one job's function as Salt's minion does, in a fresh loader over
--- opts (the minion's job runner calls this in its worker). Returns the
--- value; or nil and the text Salt's minion returns when the function is
--- missing, its arguments do not fit or it failed (`nil, message`). A
--- module's own error() propagates, so the caller's traceback shows it.
---@param fun string
---@param args table|nil positional arguments (an array)
---@param kwargs table|nil keyword arguments (a map)
---@param opts table minion options
---@return any value
---@return string|nil error
---@return integer retcode the job's return code (context.retcode, else 0
--- on success and 1 on an error)
function M.call(fun, args, kwargs, opts)
  local ld = M.new(opts or {}, M.environment(opts or {}))
  local entry = ld:entry(fun)
  if not entry then
    return nil, ld:missing_fun_string(fun), 1
  end
  local ok, values, n = pcall(M.bind, entry, args, job_kwargs(entry, kwargs))
  if not ok then
    if not M.is_error(values) then
      error(values, 0)
    elseif values.kind == "invalid_args" then
      return nil, string.format("Passed invalid arguments to %s: %s", fun, values.message), 1
    end
    return nil, values.message, 1
  end
  local value, message = entry.fn(table.unpack(values, 1, n))
  local retcode = math.tointeger(ld.context.retcode)
  if value == nil and type(message) == "string" then
    return nil, "ERROR: " .. message, retcode or 1
  end
  return value, nil, retcode or 0
end

return M
