-- The `jinja` renderer of the SLS pipeline: renders a file's text with the
-- template engine, in the context Salt's render_jinja_tmpl builds (salt,
-- grains, pillar, opts, saltenv, sls and the template path variables), every
-- context variable also installed as a global so that templates imported
-- without context still see them. Returns the rendered text or nil, message.
local data = require "brine.data"
local jinja = require "renderers.jinja.init"
local pyval = require "renderers.jinja.pyval"

local M = {}

-- Wraps a loader-style function (positional arguments, then a table marked
-- __kwarg__ holding keyword arguments) as a template callable f(args, kwargs).
local function callable(fn)
  return function(args, kwargs)
    local n = args.n or #args
    local call = {}
    for i = 1, n do call[i] = args[i] end
    if kwargs and next(kwargs) ~= nil then
      local kw = { __kwarg__ = true }
      for k, v in pairs(kwargs) do kw[k] = v end
      n = n + 1
      call[n] = kw
    end
    local r = fn(table.unpack(call, 1, n))
    if r == nil then return data.null end
    return r
  end
end

--- The `salt` template variable: salt['mod.fun'] and salt.mod.fun views of a
--- function mapping (any table whose ['mod.fun'] lookups give functions).
---@param funcs table|nil
function M.salt_view(funcs)
  funcs = funcs or {}
  local wrapped = {}
  local function get_fun(name)
    local w = wrapped[name]
    if w then return w end
    local fn = funcs[name]
    if fn == nil then return nil end
    if type(fn) == "function" then w = callable(fn) else w = fn end
    wrapped[name] = w
    return w
  end
  local modules = {}
  return pyval.object("LazyLoader", function(_, name)
    if type(name) ~= "string" then return nil end
    if name:find(".", 1, true) then return get_fun(name) end
    local mod = modules[name]
    if not mod then
      mod = pyval.object("NamespacedDictWrapper", function(_, fun)
        if type(fun) ~= "string" then return nil end
        return get_fun(name .. "." .. fun)
      end)
      modules[name] = mod
    end
    return mod
  end)
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or ""
end

--- Salt's SLS path variables for template file `tplfile` (relative to the
--- file root) rendered as SLS `sls`.
---@param tplfile string
---@param sls string
---@return table
function M.sls_context(tplfile, sls)
  local dir = dirname(tplfile)
  local vars = {
    tplfile = tplfile,
    tpldir = dir == "" and "." or dir,
    tpldot = (dir:gsub("/", ".")),
  }
  local slspath = ""
  if sls and sls ~= "" then
    if tplfile:match("/init%.sls$") or tplfile == "init.sls" then
      slspath = (sls:gsub("%.", "/"))
    else
      slspath = (sls:match("^(.*)%.[^.]*$") or ""):gsub("%.", "/")
    end
  end
  vars.slspath = slspath
  vars.sls_path = (slspath:gsub("/", "_"))
  vars.slsdotpath = (slspath:gsub("/", "."))
  vars.slscolonpath = (slspath:gsub("/", ":"))
  return vars
end

local function relative_name(ctx)
  local name = ctx.name or "<template>"
  local root = ctx.root
  if root and name:sub(1, #root + 1) == root .. "/" then return name:sub(#root + 2) end
  if ctx.sls and ctx.sls ~= "" then return (ctx.sls:gsub("%.", "/")) .. ".sls" end
  return name:match("[^/]*$")
end

--- Builds the template variables Salt passes for a render context.
function M.context(ctx)
  local tplfile = ctx.tplfile or relative_name(ctx)
  local vars = M.sls_context(tplfile, ctx.sls or "")
  vars.salt = M.salt_view(ctx.salt)
  vars.grains = ctx.grains or data.map()
  vars.pillar = ctx.pillar or data.map()
  vars.opts = ctx.opts or data.map()
  vars.saltenv = ctx.saltenv or "base"
  vars.sls = ctx.sls or ""
  vars.tplpath = ctx.name or tplfile
  if ctx.context then
    for k, v in pairs(ctx.context) do vars[k] = v end
  end
  return vars, tplfile
end

--- Renders `input` (template text) for the pipeline.
---@param input string
---@param ctx table {name=, root=, saltenv=, sls=, grains=, pillar=, opts=, salt=, context=}
---@return string|nil text
---@return string|nil message naming the file and line
function M.render(input, ctx)
  ctx = ctx or {}
  local vars, tplfile = M.context(ctx)
  local globals = {}
  for k, v in pairs(vars) do globals[k] = v end
  local env = jinja.new_environment({ root = ctx.root, globals = globals, salt = vars.salt,
                                      opts = vars.opts })
  local out, err = env:render_string(input, vars, ctx.name or tplfile)
  if not out then return nil, err end
  return out
end

return M
