-- `brine render`: runs a file (or standard input) through a renderer
-- pipeline and prints the result: text exactly as rendered, data as JSON
-- (mapping order kept, floats always with a "." or an exponent).
local data = require("brine.data")
local render = require("brine.render")

local M = {}

M.summary = "render a template or SLS file through a renderer pipeline"
M.usage = [==[
Usage: brine render [--renderer PIPE] [--root DIR] [--context FILE.json] FILE

Renders FILE (or standard input when FILE is -) the way the state system
renders SLS files and the file server renders templates, and prints the
result: text exactly as rendered, or data as JSON.

Options:
  -r, --renderer PIPE   the pipeline, e.g. jinja|yaml, yaml, json, text, lua.
                        Default: jinja|yaml for .sls files, jinja otherwise.
                        A shebang on the first line (#!yaml, #!lua) wins.
  --root DIR            the file_roots directory (includes, _renderers/);
                        default: the directory of FILE
  --context FILE.json   a JSON object: its "grains" and "pillar" keys are
                        the grains and pillar that templates and salt[...]
                        functions see (without it: this machine's grains
                        and an empty pillar), "__salt__" lists
                        the only functions to offer (default: all), its
                        other keys are template variables
  -h, --help            print this help and exit

Exit status: 0 on success, 1 when rendering fails (the message names the
file and line), 2 on bad usage.
]==]

-- What strict JSON cannot hold, in the conformance corpus's JSON form:
-- a non-finite float as {"$float": "inf"}, a byte string that is not
-- UTF-8 (YAML's !!binary) as {"$bytes": base64}. Returns v itself when it
-- holds neither (nothing copied).
local function bytes_form(s)
  return data.map({ { "$bytes", require("brine.crypto").base64_encode(s) } })
end

local function corpus_form(v, depth)
  local t = type(v)
  if t == "number" and (v ~= v or v == math.huge or v == -math.huge) then
    local word = v ~= v and "nan" or (v > 0 and "inf" or "-inf")
    return data.map({ { "$float", word } })
  elseif t == "string" and not utf8.len(v) then
    return bytes_form(v)
  elseif t ~= "table" or depth > 200 then
    return v
  end
  local kind = data.kind(v)
  if kind == "bytes" then
    return bytes_form(v.s)
  end
  if kind ~= "array" and kind ~= "map" then return v end
  local out, changed = kind == "array" and data.array() or data.map(), false
  for _, k in ipairs(data.keys(v)) do
    local x = corpus_form(v[k], depth + 1)
    changed = changed or x ~= v[k]
    out[k] = x
  end
  return changed and out or v
end

--- Data as JSON text with a final newline, in Python's json.dumps layout
--- (indent 2), mapping order kept, floats always with a `.` or an exponent;
--- infinities, NaN and non-UTF-8 bytes as the conformance corpus writes
--- them ({"$float": "inf"}, {"$bytes": base64}), so the text is strict JSON.
---@param value any
---@return string
function M.json(value)
  local text, err = require("brine.json").encode(corpus_form(value, 0), { indent = 2,
    ensure_ascii = false })
  if not text then
    error(err, 0)
  end
  return text .. "\n"
end

-- Renderers whose output is data: what they give, even a lone string (a
-- YAML document `just text`), is printed as JSON. A string from any other
-- renderer (jinja, text, a user's) is text, printed as it is.
local DATA_RENDERERS = { yaml = true, json = true, lua = true }

-- ---- the command ----

local function parse(args)
  local opts = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif a == "-r" or a == "--renderer" or a == "--root" or a == "--context" then
      if not args[i + 1] then
        return nil, a .. " needs a value"
      end
      local key = (a == "-r" or a == "--renderer") and "renderer" or a:sub(3)
      opts[key] = args[i + 1]
      i = i + 1
    elseif a:match("^%-%-?[^-]") and a ~= "-" then
      return nil, "unknown option " .. a
    elseif opts.file then
      return nil, "one FILE only"
    else
      opts.file = a
    end
    i = i + 1
  end
  if not opts.help and not opts.file then
    return nil, "FILE is missing"
  end
  return opts
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  return text
end

-- Loads --context FILE.json into the render context.
local function load_context(path, ctx)
  local text, err = read_file(path)
  if not text then
    return nil, err
  end
  local ok, json = pcall(require, "brine.json")
  if not ok then
    return nil, "--context needs the brine.json module, which this build lacks"
  end
  local value, derr = json.decode(text)
  if value == nil or data.kind(value) ~= "map" then
    return nil, path .. ": " .. (derr or "the context must be a JSON object")
  end
  ctx.context = data.map()
  for k, v in pairs(value) do
    if k == "grains" then
      ctx.grains = v
    elseif k == "pillar" then
      ctx.pillar = v
    elseif k == "__salt__" then
      ctx.only_functions = v
    else
      ctx.context[k] = v
    end
  end
  return true
end

-- The execution modules the template's `salt` reaches, seeing the same
-- grains and pillar as the template, with the root as file_roots base.
local function attach_modules(ctx)
  local config = require("brine.config")
  local loader = require("brine.loader")
  local opts = config.defaults("minion")
  opts.file_client = "local"
  opts.file_roots = data.map({ { "base", data.array({ ctx.root }) } })
  if type(ctx.grains.id) == "string" then
    opts.id = ctx.grains.id
  end
  ctx.opts = opts
  local salt = loader.new(opts, { grains = ctx.grains, pillar = ctx.pillar }).salt
  if ctx.only_functions then
    -- the corpus's form: __salt__ lists the only functions templates get
    local only = {}
    for _, name in ipairs(ctx.only_functions) do
      only[name] = salt[name]
    end
    salt = only
  end
  ctx.salt = salt
end

-- The path of file relative to root ("web/init.sls"), or its base name
-- when it is not under root. Both are resolved first, so "./x" and
-- "../srv/x" name the same file.
local function relative_path(file, root)
  local luv = require("luv")
  local rfile, rroot = luv.fs_realpath(file), luv.fs_realpath(root)
  if rfile and rroot then
    if rroot == "/" then
      return rfile:sub(2)
    elseif rfile:sub(1, #rroot + 1) == rroot .. "/" then
      return rfile:sub(#rroot + 2)
    end
  end
  return file:match("([^/]*)$")
end

-- The SLS name of a path relative to the root: "a/b/init.sls" -> "a.b".
local function sls_name(rel)
  return (rel:gsub("%.sls$", ""):gsub("/init$", ""):gsub("/", "."))
end

-- The text to render and its render context (file name, root, SLS name,
-- grains, pillar, variables, salt functions), or nil and a message.
local function read_input(opts)
  local text, rerr
  local ctx = { saltenv = "base", grains = data.map(), pillar = data.map() }
  if opts.file == "-" then
    text, ctx.name = io.stdin:read("a"), "<stdin>"
  else
    text, rerr = read_file(opts.file)
    ctx.name = opts.file
  end
  if not text then
    return nil, rerr
  end
  ctx.root = opts.root or (opts.file ~= "-" and (opts.file:match("^(.*)/[^/]*$") or ".")) or "."
  if opts.file ~= "-" then
    ctx.tplfile = relative_path(opts.file, ctx.root)
    if ctx.name:match("%.sls$") then
      ctx.sls = sls_name(ctx.tplfile)
    end
  end
  if opts.context then
    local ok, cerr = load_context(opts.context, ctx)
    if not ok then
      return nil, cerr
    end
  else
    -- as slsutil.renderer on a minion: this machine's grains
    ctx.grains = require("brine.grains.minion").load(require("brine.config").defaults("minion"))
  end
  attach_modules(ctx)
  return text, ctx
end

local function fail(msg, code)
  io.stderr:write("brine render: ", msg, "\n")
  return code or 1
end

function M.run(args)
  local opts, perr = parse(args)
  if not opts then
    return fail(perr .. " (see brine render --help)", 2)
  end
  if opts.help then
    io.stdout:write(M.usage)
    return 0
  end
  local text, ctx = read_input(opts)
  if not text then
    return fail(ctx)
  end
  -- a YAML file rendered by the yaml renderer alone shows what the loader
  -- read (null for an empty document), not the {} Salt's renderer makes of
  -- a false-like result for the state system
  ctx.as_loaded = not ctx.sls and opts.renderer ~= nil and opts.renderer:match("^%s*yaml%s*$")
    ~= nil
  local ok, result, err, last = pcall(render.pipeline, opts.renderer, text, ctx)
  if not ok then
    return fail(tostring(result))
  end
  if result == nil then
    return fail(err)
  end
  if type(result) == "string" and not DATA_RENDERERS[last] then
    io.stdout:write(result)
    return 0
  end
  local jok, out = pcall(M.json, result)
  if not jok then
    return fail(ctx.name .. ": " .. tostring(out))
  end
  io.stdout:write(out)
  return 0
end

return M
