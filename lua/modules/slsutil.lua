-- The slsutil execution module, as Salt's: helpers for SLS files and
-- templates. renderer runs a file or a string through a renderer pipeline
-- (the way the state system renders SLS files); merge, merge_all and update
-- combine mappings with Salt's dictupdate rules; serialize and deserialize
-- convert data to and from JSON or YAML text.
-- luacheck: globals salt grains pillar opts
local config = require("brine.config")
local data = require("brine.data")
local render = require("brine.render")

local M = {}

local null = data.null

M.__defaults__ = {
  renderer = { path = null, string = null, default_renderer = "jinja|yaml" },
  merge = { strategy = "smart", renderer = "yaml", merge_lists = false },
  merge_all = { strategy = "smart", renderer = "yaml", merge_lists = false },
  update = { recursive_update = true, merge_lists = false },
}

local function is_map(v)
  return type(v) == "table" and data.kind(v) == "map"
end

--- Renders a file (path: salt:// or local) or a string through a renderer
--- pipeline (default_renderer unless a shebang line names one) and returns
--- the result: data for pipelines ending in a data renderer, text for
--- `jinja` or `text`. Other keyword arguments become template variables;
--- saltenv and sls set those of the render. A path that does not exist
--- gives an empty mapping (and an error in the log), as in Salt.
--- CLI example: brine call --local slsutil.renderer string='{{ 1 + 1 }}' default_renderer=jinja
function M.renderer(path, string, default_renderer, kwargs)
  if path == nil and string == nil then
    error("Must pass either path or string", 0)
  end
  local vars = render.template_vars(kwargs)
  local saltenv, sls = vars.saltenv, vars.sls
  vars.saltenv, vars.sls = nil, nil
  if path ~= nil then
    -- As Salt's compile_template: a missing template is logged and
    -- renders to an empty mapping (formulas rely on it).
    local found, why = render.locate(opts, path, type(saltenv) == "string" and saltenv or nil)
    if not found then
      require("brine.log").error("slsutil.renderer: %s", why)
      return data.map()
    end
  end
  local out, err = render.template({ path = path, string = string, pipe = default_renderer,
    salt = salt, grains = grains, pillar = pillar, opts = opts, context = vars,
    saltenv = type(saltenv) == "string" and saltenv or nil,
    sls = type(sls) == "string" and sls or nil })
  if out == nil then
    return nil, err
  end
  return out
end

--- Salt's dictupdate.update: merges upd into dest (mappings recursively,
--- lists replaced or, with merge_lists, extended by their new items).
--- recursive_update=False does a plain top-level update.
function M.update(dest, upd, recursive_update, merge_lists)
  if not is_map(dest) or not is_map(upd) then
    error("Cannot update using non-dict types in dictupdate.update()", 0)
  end
  if not recursive_update then
    for k, v in pairs(upd) do
      dest[k] = v
    end
    return dest
  end
  return config.update(dest, upd, merge_lists)
end

-- Salt's merge strategies over two mappings.
local STRATEGIES = {}

-- Keys of both become a list [a, b].
function STRATEGIES.list(a, b)
  local out = data.map()
  for k, v in pairs(a) do
    if b[k] ~= nil then
      out[k] = data.array({ v, b[k] })
    else
      out[k] = v
    end
  end
  return out
end

function STRATEGIES.recurse(a, b, merge_lists)
  return config.update(config.copy(a), b, merge_lists)
end

function STRATEGIES.overwrite(a, b, merge_lists)
  for k, v in pairs(b) do
    if a[k] ~= nil then
      a[k] = v
    end
  end
  return STRATEGIES.recurse(a, b, merge_lists)
end

-- Salt's aggregate strategy (yamlex's merge_recursive at level 1) on data
-- without yamlex's !aggregate tags, which brine does not read: at the top,
-- obj_a's keys stay and obj_b's are merged over them; below, a mapping
-- keeps only obj_b's keys (those both have merged the same way) and any
-- other value is obj_b's. merge_lists plays no part, as in Salt.
local function aggregate(a, b, top)
  if not (is_map(a) and is_map(b)) then
    return b
  end
  local out = data.map()
  if top then
    for _, k in ipairs(data.keys(a)) do out[k] = a[k] end
  end
  for _, k in ipairs(data.keys(b)) do
    out[k] = a[k] ~= nil and aggregate(a[k], b[k], false) or b[k]
  end
  return out
end

function STRATEGIES.aggregate(a, b)
  return aggregate(a, b, true)
end

--- Merges obj_b into a copy of obj_a by a strategy: smart (recurse, or
--- aggregate for the yamlex renderer), recurse, list, overwrite, aggregate
--- or none (recurse without merge_lists).
function M.merge(obj_a, obj_b, strategy, renderer, merge_lists)
  if not is_map(obj_a) or not is_map(obj_b) then
    error("slsutil.merge needs two mappings", 0)
  end
  if strategy == "smart" then
    local last = tostring(renderer):match("([^|]*)$")
    local yamlex = last == "yamlex" or tostring(renderer):match("^yamlex_")
    strategy = yamlex and "aggregate" or "recurse"
  elseif strategy == "none" then
    strategy, merge_lists = "recurse", false
  end
  local merge = STRATEGIES[strategy] or STRATEGIES.recurse
  return merge(obj_a, obj_b, merge_lists)
end

--- Merges a list of mappings, each over the result of the ones before it.
function M.merge_all(lst, strategy, renderer, merge_lists)
  local ret = data.map()
  for _, obj in ipairs(lst or {}) do
    ret = M.merge(ret, obj, strategy, renderer, merge_lists)
  end
  return ret
end

local SERIALIZERS = { json = "brine.json", yaml = "brine.yaml" }

local function serializer(name)
  local lib = SERIALIZERS[name]
  if not lib then
    return nil, "unknown serializer '" .. tostring(name) .. "' (json or yaml)"
  end
  return require(lib)
end

--- Data as JSON or YAML text.
function M.serialize(serializer_name, obj)
  local lib, err = serializer(serializer_name)
  if not lib then
    return nil, err
  end
  local fn = lib.encode or lib.dump
  return (fn(obj))
end

--- JSON or YAML text as data.
function M.deserialize(serializer_name, stream_or_string)
  local lib, err = serializer(serializer_name)
  if not lib then
    return nil, err
  end
  local value, derr = (lib.decode or lib.load)(stream_or_string)
  if value == nil and derr then
    return nil, tostring(derr)
  end
  return value
end

return M
