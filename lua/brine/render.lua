-- The render pipeline: how a template file becomes text or data. A
-- pipeline is a list of renderer names joined by "|" ("jinja|yaml"); the
-- first line of the file may choose it with a shebang ("#!jinja|yaml",
-- "#!lua"), as Salt's compile_template reads it. Each renderer is a Lua
-- module returning { render = function(input, ctx) -> output | nil, err };
-- renderers found in the user's directories (ctx.renderer_dirs, then
-- <root>/_renderers, then <extension_modules>/renderers) win over the
-- built-in ones in lua/renderers/.
local data = require("brine.data")

local M = {}

-- Salt's pre-pipeline names for common pipelines.
local OLD_STYLE = {
  yaml_jinja = "jinja|yaml", yaml_mako = "mako|yaml", yaml_wempy = "wempy|yaml",
  json_jinja = "jinja|json", json_mako = "mako|json", json_wempy = "wempy|json",
}

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

--- Splits a pipe string into stages {name=, argline=}, as Salt's
--- check_render_pipe_str does. Raises when the string is empty.
---@param pipe string e.g. "jinja|yaml" or "yaml_jinja"
---@return table[]
function M.parse(pipe)
  if type(pipe) ~= "string" or trim(pipe) == "" then
    error("brine.render: a renderer pipeline must be a non-empty string", 2)
  end
  pipe = OLD_STYLE[trim(pipe)] or pipe
  local stages = {}
  for part in (pipe .. "|"):gmatch("([^|]*)|") do
    part = trim(part)
    local name, argline = part:match("^(%S*)%s*(.-)$")
    if name == "" then
      error("brine.render: empty renderer name in pipeline '" .. pipe .. "'", 2)
    end
    stages[#stages + 1] = { name = name, argline = argline }
  end
  return stages
end

--- The default pipeline for a file: jinja|yaml for SLS files, jinja for
--- anything else.
---@param name string|nil the file name
---@return string
function M.default_pipe(name)
  if name and name:match("%.sls$") then
    return "jinja|yaml"
  end
  return "jinja"
end

--- Splits off a shebang line. Returns the pipe it names (nil when there is
--- none; "#!/..." is a path, not a pipeline) and the text after that line.
---@param text string
---@return string|nil, string
function M.shebang(text)
  local line, rest = text:match("^#!([^\n]*)\n?(.*)$")
  if not line or line:sub(1, 1) == "/" then
    return nil, text
  end
  line = trim(line:gsub("\r$", ""))
  return line ~= "" and line or nil, rest
end

local function user_dirs(ctx)
  local dirs = {}
  for _, dir in ipairs(ctx.renderer_dirs or {}) do
    dirs[#dirs + 1] = dir
  end
  if ctx.root then
    dirs[#dirs + 1] = ctx.root .. "/_renderers"
  end
  -- where saltutil.sync_renderers puts the file server's _renderers
  local ext = type(ctx.opts) == "table" and ctx.opts.extension_modules
  if type(ext) == "string" then
    dirs[#dirs + 1] = ext .. "/renderers"
  end
  return dirs
end

local function check_renderer(mod, where)
  if type(mod) ~= "table" or type(mod.render) ~= "function" then
    return nil, "renderer " .. where .. " does not return a table with a render function"
  end
  return mod
end

--- Finds a renderer by name: the user's directories first, then the
--- built-in renderers. Returns nil, message when there is none.
---@param name string
---@param ctx table|nil
---@return table|nil, string|nil
function M.find(name, ctx)
  if not name:match("^[%w_]+$") then
    return nil, "bad renderer name '" .. name .. "'"
  end
  for _, dir in ipairs(user_dirs(ctx or {})) do
    local path = dir .. "/" .. name .. ".lua"
    local f = io.open(path, "rb")
    if f then
      f:close()
      local chunk, err = loadfile(path, "t")
      if not chunk then
        return nil, err
      end
      local ok, mod = pcall(chunk)
      if not ok then
        return nil, path .. ": " .. tostring(mod)
      end
      return check_renderer(mod, path)
    end
  end
  local ok, mod = pcall(require, "renderers." .. name)
  if not ok then
    if tostring(mod):find("module 'renderers." .. name .. "' not found", 1, true) then
      return nil, "the renderer '" .. name .. "' is not available"
    end
    return nil, tostring(mod)
  end
  return check_renderer(mod, name)
end

local function is_sls(ctx)
  return ctx.sls ~= nil or (ctx.name ~= nil and ctx.name:match("%.sls$") ~= nil)
end

--- Renders text through a pipeline.
--- pipe: the pipeline ("jinja|yaml"), or nil for the file's default; a
--- shebang on the first line overrides both, and that line is removed
--- (ctx.first_line then tells renderers that the input starts on line 2).
--- ctx: name (file name for errors), saltenv, sls, grains, pillar, opts,
--- salt, root (file_roots directory), context (template variables),
--- renderer_dirs (extra renderer directories). An SLS render (ctx.sls set or
--- a .sls name) turns an empty or null result into an empty map.
---@param pipe string|nil
---@param text string
---@param ctx table|nil
---@return any|nil result
---@return string|nil error message naming the file (and line when known)
---@return string|nil the name of the last renderer that ran, on success
function M.pipeline(pipe, text, ctx)
  if type(text) ~= "string" then
    error("brine.render.pipeline: text must be a string", 2)
  end
  local given = ctx or {}
  ctx = {}
  for k, v in pairs(given) do
    ctx[k] = v
  end
  ctx.name = ctx.name or "<string>"
  ctx.saltenv = ctx.saltenv or "base"
  local chosen, rest = M.shebang(text)
  if chosen then
    pipe, text, ctx.first_line = chosen, rest, 2
  else
    ctx.first_line = 1
  end
  local stages = M.parse(pipe or M.default_pipe(ctx.name))
  local value = text
  if is_sls(ctx) and not value:find("%S") then
    return data.map(), nil, stages[#stages].name
  end
  for _, stage in ipairs(stages) do
    local renderer, err = M.find(stage.name, ctx)
    if not renderer then
      return nil, ctx.name .. ": " .. err
    end
    ctx.argline = stage.argline
    local out, rerr = renderer.render(value, ctx)
    if out == nil then
      return nil, rerr or (ctx.name .. ": the " .. stage.name .. " renderer failed")
    end
    value = out
  end
  local last = stages[#stages].name
  if is_sls(ctx) and (data.kind(value) == "null" or value == "") then
    return data.map(), nil, last
  end
  return value, nil, last
end

-- ---- rendering for execution modules (slsutil, cp, file) ----

local function is_file(path)
  local st = require("luv").fs_stat(path)
  return st ~= nil and st.type == "file"
end

--- The file_roots folders of a saltenv, from the options.
---@param opts table
---@param saltenv string|nil default "base"
---@return string[]
function M.file_roots(opts, saltenv)
  local roots = type(opts) == "table" and opts.file_roots
  local dirs = type(roots) == "table" and roots[saltenv or "base"]
  if type(dirs) == "string" then
    return { dirs }
  end
  return type(dirs) == "table" and dirs or {}
end

--- Finds a template for the module functions: `salt://path` in the
--- file_roots of saltenv (first folder holding it wins, a `?saltenv=` query
--- chooses the environment), or a local path. Returns the path and the
--- file_roots folder it was found in (nil for a local path), or nil and a
--- message naming the URL.
---@param opts table minion options (file_roots)
---@param url string
---@param saltenv string|nil
---@return string|nil path, string|nil root_or_error
function M.locate(opts, url, saltenv)
  if type(url) ~= "string" or url == "" then
    return nil, "a template path must be a non-empty string"
  end
  local rel = url:match("^salt://(.*)$")
  if not rel then
    if is_file(url) then
      return url, nil
    end
    return nil, "no such file: " .. url
  end
  local env = rel:match("%?saltenv=([^&]+)")
  rel = rel:gsub("%?.*$", "")
  if rel == "" or ("/" .. rel .. "/"):find("/%.%./") then
    return nil, "bad salt:// path: " .. url
  end
  for _, root in ipairs(M.file_roots(opts, env or saltenv)) do
    local path = root .. "/" .. rel
    if is_file(path) then
      return path, root
    end
  end
  return nil, "file " .. url .. " not found in saltenv '" .. (env or saltenv or "base") .. "'"
end

--- The keyword arguments of a module call that are template variables:
--- Salt's bookkeeping keys (`__pub_*` and the like) left out.
---@param kwargs table|nil
---@return table map
function M.template_vars(kwargs)
  local vars = data.map()
  for k, v in pairs(kwargs or {}) do
    if type(k) ~= "string" or k:sub(1, 2) ~= "__" then
      vars[k] = v
    end
  end
  return vars
end

-- The SLS name of a file relative to its root: "a/b/init.sls" -> "a.b".
local function sls_of(rel)
  return (rel:gsub("%.sls$", ""):gsub("/init$", ""):gsub("/", "."))
end

--- Renders a file or a string the way Salt's template functions do
--- (slsutil.renderer, cp.get_template, file.apply_template_on_contents):
--- `args.path` (salt:// or local) or `args.string`; `args.pipe` the
--- renderer pipeline (a shebang in the text wins); `args.context` the
--- template variables; salt, grains, pillar, opts, saltenv, sls from args.
--- Returns the rendered text or data, or nil and a message naming the
--- file and line.
---@param args table
---@return any|nil, string|nil
function M.template(args)
  local ctx = { salt = args.salt, grains = args.grains, pillar = args.pillar,
    opts = args.opts, saltenv = args.saltenv or "base", context = args.context }
  local text = args.string
  if args.path ~= nil then
    local path, root = M.locate(args.opts, args.path, ctx.saltenv)
    if not path then
      return nil, root
    end
    local f, err = io.open(path, "rb")
    if not f then
      return nil, err
    end
    text = f:read("a")
    f:close()
    ctx.name = path
    ctx.root = root or path:match("^(.*)/[^/]*$") or "."
    if root and path:match("%.sls$") then
      ctx.sls = args.sls or sls_of(path:sub(#root + 2))
    end
  else
    ctx.name = "<string>"
    ctx.sls = args.sls
    ctx.root = M.file_roots(args.opts, ctx.saltenv)[1]
  end
  if type(text) ~= "string" then
    return nil, "either a path or a string to render is needed"
  end
  return M.pipeline(args.pipe, text, ctx)
end

return M
