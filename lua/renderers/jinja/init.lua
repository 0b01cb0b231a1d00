-- The template engine's public API: environments that load templates from a
-- root folder the way Salt's SaltCacheLoader does, compile them once (cached
-- by content hash), and render them with Salt's settings (StrictUndefined,
-- sandboxed, final newline kept, CRLF sources give CRLF output). Filters,
-- tests and globals come from renderers.jinja.filters plus the caller's own.
local compiler = require "renderers.jinja.compiler"
local runtime = require "renderers.jinja.runtime"
local pyval = require "renderers.jinja.pyval"

local M = {}

local ok_crypto, crypto = pcall(require, "brine.crypto")
local ok_fs, fs = pcall(require, "brine.fs")
local ok_filters, builtin = pcall(require, "renderers.jinja.filters")
if not ok_filters then
  -- Only a missing filter library is tolerated (the engine alone still
  -- renders); a broken one is an error worth seeing.
  if not tostring(builtin):find("module 'renderers.jinja.filters' not found", 1, true) then
    error(builtin, 0)
  end
  builtin = { filters = {}, tests = {}, globals = {} }
end

-- Compiled templates by content key; chunk counter for unique chunk names.
local cache = {}
local cache_size = 0
local CACHE_LIMIT = 2000
local chunk_id = 0

local function cache_key(name, text)
  local key = name .. "\0" .. text
  if ok_crypto and crypto.hash then
    -- BLAKE2b: a tenth of SHA-256's work here, and as safe a content key
    local ok, h = pcall(crypto.hash, "blake2b", key)
    if ok and h then return h end
  end
  return key
end

--- Compiles template text (cached). Raises a structured error on bad syntax.
---@param text string
---@param name string the template name used in error messages
---@return table compiled template {root=, blocks=, lines=, name=, source=}
function M.compile(text, name)
  name = name or "<template>"
  local key = cache_key(name, text)
  local T = cache[key]
  if T then return T end
  local ok, src, lines = pcall(compiler.compile, text)
  if not ok then
    if type(src) ~= "table" then
      src = { class = "TemplateSyntaxError", message = tostring(src) }
    end
    src.name = src.name or name
    error(src, 0)
  end
  chunk_id = chunk_id + 1
  local chunkname = "=" .. name .. "#" .. chunk_id
  local fn, err = load(src, chunkname, "t", { R = runtime.R })
  if not fn then
    error({ class = "TemplateSyntaxError", message = "internal compile error: " .. err,
            name = name, line = 1 }, 0)
  end
  T = fn()
  T.name, T.lines, T.source = name, lines, text
  T.final_newline = text:sub(-1) == "\n"
  T.crlf = text:find("\r\n", 1, true) ~= nil
  runtime.chunks[chunkname] = T
  if cache_size >= CACHE_LIMIT then
    cache, cache_size = {}, 0
  end
  cache[key] = T
  cache_size = cache_size + 1
  return T
end

-- Bumped by M.clear_cache: what environments kept from before is stale.
local generation = 0

--- Forgets every compiled template, the environments' too (benchmarks
--- measure compilation with it).
function M.clear_cache()
  cache, cache_size = {}, 0
  generation = generation + 1
end

--- Lua source of a compiled template (for debugging and the docs).
function M.lua_source(text)
  return (compiler.compile(text))
end

local Env = {}
Env.__index = Env

-- Normalises a slash separated path: drops "." and resolves "..". Returns
-- nil when the path climbs above the root.
local function normpath(path)
  local parts = {}
  for seg in path:gmatch("[^/]+") do
    if seg == ".." then
      if #parts == 0 then return nil end
      parts[#parts] = nil
    elseif seg ~= "." then
      parts[#parts + 1] = seg
    end
  end
  return table.concat(parts, "/")
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

local function is_relative(name)
  return name:sub(1, 2) == "./" or name:sub(1, 3) == "../"
end

--- Text of a template file by its name from the root, or nil.
function Env:load_file(name)
  if name == nil and type(self) == "string" then return nil end
  if not self.root then return nil end
  local path = normpath(name)
  if not path or path == "" then return nil end
  return read_file(self.root .. "/" .. path), path
end

-- A template file by its name from the root, compiled, and its path; nil
-- when there is no such file. The environment keeps what it compiled with
-- the file's stamp (modification time, size, inode) and reads the file
-- again only when the stamp changed, as jinja2's auto_reload does: an
-- include in a loop costs one stat, not a read and a hash of the text.
function Env:load_template(name)
  local path = self.root and normpath(name)
  if not path or path == "" then return nil end
  local file = self.root .. "/" .. path
  local loaded = self.loaded
  local m, size, inode
  if ok_fs then
    m, size, inode = fs.stamp(file)
    if not m then return nil end
    local c = loaded[path]
    if c and c.m == m and c.size == size and c.inode == inode and c.generation == generation then
      return c.T, path
    end
  end
  local text = read_file(file)
  if not text then return nil end
  local T = M.compile(text, path)
  loaded[path] = { T = T, m = m, size = size, inode = inode, generation = generation }
  return T, path
end

-- Loads a template for render state S, following SaltCacheLoader: names
-- starting with ./ or ../ are relative to the tpldir global; other names
-- update the tpldir, tplfile and tpldot globals.
function Env:get_template(S, name, ignore_missing)
  local relative = is_relative(name)
  local full = name
  if relative then
    local base = S.__index.tpldir
    if type(base) ~= "string" then base = "." end
    full = normpath(base .. "/" .. name) or name
  end
  local templates = S.templates
  if not templates then -- made on the first include, import or extends
    templates = {}
    S.templates = templates
  end
  local T = templates[full]
  if not T then
    local path
    T, path = self:load_template(full)
    if not T then
      if ignore_missing then return nil end
      pyval.raise("TemplateNotFound", name)
    end
    templates[full] = T
    if not relative then
      local dir = path:match("^(.*)/[^/]*$") or ""
      local globals = runtime.render_globals(S)
      rawset(globals, "tplfile", path)
      rawset(globals, "tpldir", dir == "" and "." or dir)
      rawset(globals, "tpldot", (dir:gsub("/", ".")))
    end
  end
  return T
end

-- Raises, as Jinja does at compile time, for a filter or test the template
-- uses outside a condition that the environment does not know.
function Env:check_uses(T)
  local uses = T.uses
  if not uses or self.checked[T] then return end
  for name, line in pairs(uses.filters or {}) do
    if not self.filters[name] then
      error({ class = "TemplateAssertionError", message = "No filter named '" .. name .. "'.",
              name = T.name, line = line }, 0)
    end
  end
  for name, line in pairs(uses.tests or {}) do
    if not self.tests[name] then
      error({ class = "TemplateAssertionError", message = "No test named '" .. name .. "'.",
              name = T.name, line = line }, 0)
    end
  end
  self.checked[T] = true
end

--- Parses the output of a serializer tag (load_yaml, import_json, ...).
function Env:parse_serialized(format, text)
  if format == "text" then return text end
  local ok, lib = pcall(require, "brine." .. format)
  if not ok then
    pyval.raise("TemplateRuntimeError", "no " .. format .. " parser available")
  end
  local fn = lib.load or lib.decode
  local value, err = fn(text)
  if value == nil and err then
    pyval.raise(format == "yaml" and "AttributeError" or "ValueError",
      "could not load " .. format .. ": " .. tostring(err))
  end
  if value == nil then return pyval.NULL or require("brine.data").null end
  return value
end

-- The source line `line` of a compiled template, trimmed.
local function source_line(name, line, templates)
  for _, T in pairs(templates) do
    if T.name == name and line then
      local i = 0
      for l in (T.source .. "\n"):gmatch("([^\n]*)\n") do
        i = i + 1
        if i == line then return (l:gsub("^%s+", ""):gsub("%s+$", "")) end
      end
    end
  end
end

-- Formats a structured error as one message naming template and line.
local function format_error(err, templates)
  local msg = (err.class or "TemplateError") .. ": " .. tostring(err.message)
  local trace = err.trace or {}
  if #trace == 0 and err.name then trace = { { name = err.name, line = err.line } } end
  for i, t in ipairs(trace) do
    local where = string.format("%s, line %s", t.name, tostring(t.line))
    local text = source_line(t.name, t.line, templates)
    if i == 1 then
      msg = msg .. " (" .. where .. ")"
      if text and text ~= "" then msg = msg .. "\n    " .. text end
    else
      msg = msg .. "\n  from " .. where .. (text and (": " .. text) or "")
    end
  end
  return msg
end
M.format_error = format_error

local vars_frame, run, handler = runtime.vars_frame, runtime.run, runtime.handler
local render_state = runtime.render_state

-- Renders compiled template T with vars; returns text or nil, message, err.
function Env:_render(T, vars, extra_templates)
  -- The render state is also the top template's context and the
  -- metatable of the top frame: fewer tables to make per render.
  local S = render_state(self)
  if extra_templates then
    S.templates = {}
    for k, v in pairs(extra_templates) do S.templates[k] = v end
  end
  -- the template's own top-level variables share the frame of the
  -- variables given: nothing tells the two apart
  local f = vars_frame(S, vars)
  local saved = self.name
  self.name = T.name
  local ok, out = xpcall(run, handler, S, T, f, S, T.final_newline and "\n" or nil)
  self.name = saved
  if not ok then
    local all = { T }
    for _, t in pairs(S.templates or {}) do all[#all + 1] = t end
    return nil, format_error(out, all), out
  end
  if self.crlf and T.crlf and not out:find("\r\n", 1, true) then
    out = out:gsub("\n", "\r\n")
  end
  return out
end

--- Renders template text. Also callable as env.render_string(text, vars)
--- from filters.
---@param text string
---@param vars table|nil template variables
---@param name string|nil name for errors
---@return string|nil text
---@return string|nil message naming the template and line
---@return table|nil structured error {class=, message=, name=, line=, trace=}
function Env:render_string(text, vars, name)
  name = name or "<template>"
  local ok, T = pcall(M.compile, text, name)
  if not ok then
    local err = runtime.handler(T)
    return nil, format_error(err, { { name = name, source = text } }), err
  end
  return self:_render(T, vars)
end

--- Renders a template compiled by M.compile: what a caller that keeps
--- compiled templates uses to render again without hashing the text.
---@param T table from M.compile
---@param vars table|nil template variables
---@return string|nil text
---@return string|nil message naming the template and line
---@return table|nil structured error
function Env:render(T, vars)
  return self:_render(T, vars)
end

--- Renders a template file by its name from the root.
function Env:render_file(name, vars)
  local text, path = self:load_file(name)
  if not text then
    local err = { class = "TemplateNotFound", message = name, name = name, line = 0 }
    return nil, "TemplateNotFound: " .. name, err
  end
  local ok, T = pcall(M.compile, text, path)
  if not ok then
    local err = runtime.handler(T)
    return nil, format_error(err, { { name = path, source = text } }), err
  end
  return self:_render(T, vars, { [path] = T })
end

--- Creates an environment.
---@param opts table {root=DIR, globals=, filters_extra=, tests_extra=, salt=, opts=,
---  crlf=true}
function M.new_environment(opts)
  opts = opts or {}
  -- The library's filters and tests are read through, not copied: an
  -- environment holds only the caller's own, which keeps each one small
  -- (and the collector's work with many of them).
  local env
  env = setmetatable({ root = opts.root, salt = opts.salt, opts = opts.opts,
    crlf = opts.crlf ~= false, repr = pyval.repr,
    filters = setmetatable({}, { __index = builtin.filters, __newindex = function(t, k, v)
      rawset(t, k, v)
      -- text the compiler folded from this filter would be wrong here
      if runtime.PURE_FILTERS[k] then env.fold = false end
    end }),
    tests = setmetatable({}, { __index = builtin.tests }),
    checked = setmetatable({}, { __mode = "k" }), -- templates whose filters are known
    loaded = {}, -- templates read from the root (Env:load_template)
    accepts_undefined = setmetatable({}, { __index = (builtin.filters or {}).accepts_undefined
                                                     or builtin.accepts_undefined }) }, Env)
  env.fold = true -- no folded filter replaced (the compiler's folding)
  env.undefined = function(name, hint) return pyval.undefined(name, hint) end
  local bound_render = Env.render_string
  env.render_string = function(a, b, c, d)
    if a == env then return bound_render(env, b, c, d) end
    local out, err = bound_render(env, a, b)
    if not out then pyval.raise("TemplateError", err) end
    return out
  end
  env.load_file = function(a, b)
    if a == env then return Env.load_file(env, b) end
    return Env.load_file(env, a)
  end
  for k, v in pairs(opts.filters_extra or {}) do env.filters[k] = v end
  for k, v in pairs(opts.tests_extra or {}) do env.tests[k] = v end
  local globals = {}
  for k, g in pairs(builtin.globals or {}) do
    globals[k] = function(args, kwargs) return g(env, args, kwargs) end
    runtime.harmless[globals[k]] = true
  end
  for k, v in pairs(opts.globals or {}) do globals[k] = v end
  env.globals = globals
  return env
end

return M
