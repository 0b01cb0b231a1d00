-- The pillar compiler, as Salt's salt/pillar: for one minion (its id and
-- grains), read the top file of each pillar_roots environment, keep the
-- targets that match the minion, render the SLS files they name (and the
-- files those include) through the renderer pipeline, and merge the results
-- with the configured strategy. Errors do not stop the compile: they are
-- collected and put under the `_errors` key, as Salt does, so that the state
-- system can refuse to run on a broken pillar.
--
-- Owns nothing but the files it reads; the caller decides where the result
-- goes (a local call's loader, or the master's answer to one minion).
local config = require("brine.config")
local data = require("brine.data")
local fs = require("brine.fs")
local render = require("brine.render")
local target = require("brine.target")

local M = {}

local null = data.null

local function is_none(v)
  return v == nil or v == null
end

local function is_map(v)
  return type(v) == "table" and data.kind(v) == "map"
end

local function is_list(v)
  return type(v) == "table" and data.kind(v) == "array"
end

local function empty_map(v)
  return is_map(v) and next(v) == nil
end

-- ---- merging (Salt's salt.utils.dictupdate.merge) ----

-- Top-level keys of b replace a's whole values.
local function overwrite(a, b, merge_lists)
  local out = config.copy(a)
  for k, v in pairs(b) do
    if out[k] ~= nil then
      out[k] = config.copy(v)
    end
  end
  return config.update(out, config.copy(b), merge_lists)
end

-- Salt's aggregate merge at level 1, for data without yamlex's !aggregate
-- marks: the top level keeps a's keys and adds b's; below it, a mapping
-- present in both keeps only b's keys (merged the same way where both have
-- a mapping), and any other value is b's.
local function aggregate(a, b, top)
  if not (is_map(a) and is_map(b)) then
    return config.copy(b)
  end
  local out = top and config.copy(a) or data.map()
  for k, v in pairs(b) do
    if a[k] ~= nil then
      out[k] = aggregate(a[k], v, false)
    else
      out[k] = config.copy(v)
    end
  end
  return out
end

-- Salt's "list" strategy: keys of a only, a value in both becomes [a, b].
local function list_merge(a, b)
  local out = data.map()
  for k, v in pairs(a) do
    out[k] = b[k] ~= nil and data.array({ config.copy(v), config.copy(b[k]) }) or config.copy(v)
  end
  return out
end

--- Merges mapping b over mapping a and returns a new mapping (neither is
--- changed), with one of Salt's pillar_source_merging_strategy values:
--- smart (recurse, or aggregate when the renderer ends in yamlex), recurse,
--- aggregate, overwrite, list, none (recurse: with none, only one
--- environment is compiled). An unknown strategy recurses, as in Salt.
---@param a table
---@param b table
---@param strategy string|nil default "smart"
---@param renderer string|nil the renderer option (default "yaml")
---@param merge_lists boolean|nil pillar_merge_lists: extend lists instead of replacing
---@return table
function M.merge(a, b, strategy, renderer, merge_lists)
  merge_lists = merge_lists == true
  if is_none(strategy) or strategy == "smart" then
    renderer = type(renderer) == "string" and renderer or "yaml"
    local yamlex = renderer:match("([^|]*)$") == "yamlex" or renderer:match("^yamlex_")
    strategy = yamlex and "aggregate" or "recurse"
  end
  if strategy == "aggregate" then
    return aggregate(a, b, true)
  elseif strategy == "overwrite" then
    return overwrite(a, b, merge_lists)
  elseif strategy == "list" then
    return list_merge(a, b)
  end
  return config.update(config.copy(a), config.copy(b), merge_lists)
end

-- ---- matching ----

-- Salt's subdict_match, for grain and pillar targets (brine.target has it,
-- as the master targets jobs with it too).
M.subdict_match = target.subdict_match

local split = target.split

local SUBDICT = target.SUBDICT

-- A nodegroup as a compound expression: a list is a list of ids, a
-- string a compound expression whose N@name words expand in place.
local function nodegroup(groups, name, depth)
  local group = is_map(groups) and groups[name] or nil
  if group == nil or depth > 16 then
    return nil
  elseif is_list(group) then
    local ids = {}
    for i, id in ipairs(group) do
      ids[i] = tostring(id)
    end
    return "L@" .. table.concat(ids, ",")
  end
  local words = {}
  for word in tostring(group):gmatch("%S+") do
    local inner = word:match("^N@(.+)$")
    if inner then
      word = "( " .. (nodegroup(groups, inner, depth + 1) or "L@") .. " )"
    end
    words[#words + 1] = word
  end
  return table.concat(words, " ")
end

-- An IPv4 address as a 32-bit integer, or nil.
local function ipv4(text)
  local a, b, c, d = tostring(text):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  local n = 0
  for _, part in ipairs({ a, b, c, d }) do
    local v = tonumber(part)
    if not v or v > 255 then
      return nil
    end
    n = n * 256 + v
  end
  return n
end

-- Salt's ipcidr matcher for IPv4: an address is in the ipv4 grain, or a
-- network (a.b.c.d/n) holds one of its addresses. Returns nil, message for
-- anything else (IPv6 is not there yet).
local function ipcidr_match(grains, tgt)
  local addr, bits = tostring(tgt):match("^([^/]+)/(%d+)$")
  addr, bits = ipv4(addr or tgt), tonumber(bits or 32)
  if not addr or bits > 32 then
    return nil, string.format("Pillar top file target '%s': not an IPv4 address or network",
      tostring(tgt))
  end
  local size = 1 << (32 - bits)
  local first = addr - addr % size
  for _, ip in ipairs(is_list(grains.ipv4) and grains.ipv4 or {}) do
    local n = ipv4(ip)
    if n and n >= first and n < first + size then
      return true
    end
  end
  return false
end

local ENGINES = { G = "grain", P = "grain_pcre", I = "pillar", J = "pillar_pcre" }

-- A compound expression with its grain and pillar words (G@, P@, I@, J@,
-- with an optional delimiter character before the @) decided here with
-- subdict_match and replaced by a word of the same truth ("*" or an empty
-- list, "L@"), and N@ nodegroups expanded, so that brine.target evaluates
-- the rest (globs, E@, L@, and, or, not, parentheses).
local function resolve_compound(c, expr, depth)
  local words = {}
  for word in tostring(expr):gmatch("%S+") do
    local engine, delim, pattern = word:match("^([GPIJNS])([^@]?)@(.*)$")
    if engine == "S" and delim == "" then
      word = ipcidr_match(c.grains, pattern) and "*" or "L@"
    elseif engine == "N" and delim == "" then
      local group = depth < 16 and nodegroup(c.opts.nodegroups, pattern, 0)
      word = "( " .. (group and resolve_compound(c, group, depth + 1) or "L@") .. " )"
    elseif engine and ENGINES[engine] then
      local sub = SUBDICT[ENGINES[engine]]
      local root = sub[1] == "grains" and c.grains or c.render_pillar
      local hit = M.subdict_match(root, pattern, delim ~= "" and delim or ":", sub[2])
      word = hit and "*" or "L@"
    end
    words[#words + 1] = word
  end
  return table.concat(words, " ")
end

-- Does the minion match a top file target with this matcher? Returns
-- true/false, or nil and a message for a matcher brine does not have.
local function top_match(c, tgt, matcher)
  if matcher == "nodegroup" then
    tgt, matcher = nodegroup(c.opts.nodegroups, tostring(tgt), 0), "compound"
    if not tgt then
      return false
    end
  end
  if matcher == "compound" then
    tgt = resolve_compound(c, tgt, 0)
  elseif matcher == "ipcidr" then
    return ipcidr_match(c.grains, tgt)
  end
  local sub = SUBDICT[matcher]
  if sub then
    local root = sub[1] == "grains" and c.grains or c.render_pillar
    return M.subdict_match(root, tostring(tgt), ":", sub[2])
  elseif target.TYPES[matcher] then
    local ok, matched = pcall(target.match, tostring(tgt), matcher, c.id, c.grains)
    return ok and matched
  end
  return nil, string.format("Pillar top file target '%s': the matcher '%s' is not supported",
    tostring(tgt), tostring(matcher))
end

-- ---- the pillar tree on disk ----

-- pillar_roots as an ordered list of { env, dirs }: base first (it always
-- exists, as in Salt), then the configured environments in their order.
-- An `__env__` entry stands for the environment asked for.
local function environments(opts, pillarenv, saltenv)
  local roots = is_none(opts.pillar_roots) and {} or opts.pillar_roots
  if type(roots) ~= "table" then
    return nil, "the pillar_roots option must be a mapping of environments to folders"
  end
  local function dirs_of(v)
    if type(v) == "string" then
      return { v }
    end
    return type(v) == "table" and v or {}
  end
  local list, index = {}, {}
  local function add(env, dirs)
    if not index[env] then
      list[#list + 1] = { env = env, dirs = {} }
      index[env] = list[#list]
    end
    for _, d in ipairs(dirs) do
      table.insert(index[env].dirs, tostring(d))
    end
  end
  add("base", {})
  for env, dirs in pairs(roots) do
    if env ~= "__env__" then
      add(tostring(env), dirs_of(dirs))
    end
  end
  local wanted = pillarenv or saltenv or "base"
  if roots.__env__ ~= nil and (roots[wanted] == nil) then
    local dirs = {}
    for i, d in ipairs(dirs_of(roots.__env__)) do
      dirs[i] = (tostring(d):gsub("__env__", wanted))
    end
    add(wanted, dirs)
  end
  return list, index
end

-- Every SLS name under the folders ("a/b.sls" -> "a.b", "a/init.sls" ->
-- "a"), sorted, without duplicates. Hidden entries are skipped.
local function list_sls(dirs)
  local seen, names = {}, {}
  local function walk(dir, prefix, depth)
    local entries = depth < 64 and fs.listdir(dir) or nil
    for _, name in ipairs(entries or {}) do
      local path = dir .. "/" .. name
      if name:sub(1, 1) == "." then -- luacheck: ignore 542
      elseif fs.is_dir(path) then
        walk(path, prefix .. name .. ".", depth + 1)
      elseif name:match("%.sls$") then
        local sls = prefix .. name:sub(1, -5)
        sls = sls:gsub("%.init$", "")
        if not seen[sls] then
          seen[sls] = true
          names[#names + 1] = sls
        end
      end
    end
  end
  for _, dir in ipairs(dirs) do
    walk(dir, "", 0)
  end
  table.sort(names)
  return names
end

-- The file of an SLS: the first folder holding NAME.sls, else NAME/init.sls.
-- Returns path, folder, is_init; nil when there is none.
local function find_sls(dirs, sls)
  local rel = sls:gsub("%.", "/")
  for _, dir in ipairs(dirs) do
    local path = dir .. "/" .. rel .. ".sls"
    if fs.is_file(path) then
      return path, dir, false
    end
    path = dir .. "/" .. rel .. "/init.sls"
    if fs.is_file(path) then
      return path, dir, true
    end
  end
  return nil
end

local function filter(names, pattern)
  local out = {}
  for _, name in ipairs(names) do
    if config.fnmatch(name, pattern) then
      out[#out + 1] = name
    end
  end
  return out
end

-- ---- rendering ----

-- "FILE, line N" from a renderer's message, when it says where.
local function location(message)
  local file, line = message:match("%(([^(),]+), line (%w+)%)")
  if not file then
    file, line = message:match("^([^\n:]+):(%d+):")
  end
  if file and line:match("^%d+$") then
    return file .. ", line " .. line
  end
  return file
end

-- Renders one file of the pillar tree. Returns the data, or nil and the
-- renderer's message (which names the file and line).
local function render_file(c, path, dir, saltenv, sls, defaults)
  local text, err = fs.read(path)
  if not text then
    return nil, err
  end
  local ctx = { name = path, root = dir, saltenv = saltenv, sls = sls, grains = c.grains,
    pillar = c.render_pillar, opts = c.opts, salt = c.salt, context = defaults }
  local pipe = type(c.opts.renderer) == "string" and c.opts.renderer or nil
  local ok, value, rerr = pcall(render.pipeline, pipe, text, ctx)
  if not ok then
    return nil, path .. ": " .. tostring(value)
  end
  if value == nil then
    return nil, rerr or (path .. ": rendering failed")
  end
  return value
end

-- Records an error: `shown` goes into the pillar, `full` (default shown)
-- into the list the caller may log.
local function add_error(c, shown, full)
  c.errors[#c.errors + 1] = shown
  c.log[#c.log + 1] = full or shown
end

-- A broken SLS: Salt's message with the renderer's text, or in safe mode
-- only the file and line (the text may quote pillar data of other minions).
local function render_error(c, sls, message)
  local full = string.format("Rendering SLS '%s' failed, render error:\n%s", sls, message)
  if c.safe then
    local where = location(message)
    add_error(c, string.format("Rendering SLS '%s' failed%s. Please see master log for details.",
      sls, where and (" at " .. where) or ""), full)
  else
    add_error(c, full)
  end
end

-- ---- top files ----

local function state_top(opts)
  local top = type(opts.state_top) == "string" and opts.state_top or "top.sls"
  return (top:gsub("^salt://", ""):gsub("^/+", ""))
end

-- Renders the top file of each environment. Returns { env -> array of
-- rendered tops } and the environments in order.
local function primary_tops(c)
  local tops, order = {}, {}
  local top_name = state_top(c.opts)
  for _, e in ipairs(c.top_envs) do
    for _, dir in ipairs(e.dirs) do
      local path = dir .. "/" .. top_name
      if fs.is_file(path) then
        local top, err = render_file(c, path, dir, e.env, nil)
        if top == nil then
          add_error(c, "Rendering Primary Top file failed, render error:\n" .. err)
        else
          tops[e.env] = { top }
          order[#order + 1] = e.env
        end
        break
      end
    end
  end
  return tops, order
end

-- Renders the top files that the `include:` lists of an environment's
-- top files name (SLS names of that environment; only those of the first
-- top files are followed, as in Salt) and adds them to list.
local function included_tops(c, env, list)
  local queue, done = {}, {}
  for _, top in ipairs(list) do
    if is_map(top) then
      for _, sls in ipairs(is_list(top.include) and top.include or {}) do
        queue[#queue + 1] = tostring(sls)
      end
      top.include = nil
    end
  end
  for _, sls in ipairs(queue) do
    if not done[sls] then
      done[sls] = true
      local path, dir = find_sls(c.index[env] and c.index[env].dirs or {}, sls)
      local top, err = nil, string.format("no SLS '%s' in environment '%s'", sls, env)
      if path then
        top, err = render_file(c, path, dir, env, sls)
      end
      if top == nil then
        add_error(c, string.format("Rendering Top file %s failed, render error:\n%s", sls, err))
      else
        if is_map(top) then
          top.include = nil
        end
        list[#list + 1] = top
      end
    end
  end
end

-- All top files: { env -> array of rendered tops }, environments in order.
local function gather_tops(c)
  local tops, order = primary_tops(c)
  for _, env in ipairs(order) do
    included_tops(c, env, tops[env])
  end
  return tops, order
end

-- Reads one target's list: its matcher entries, SLS names (each once),
-- `order` and `ignore_missing`. Raises when the list is not a list.
local function read_target(c, saltenv, comps)
  if not is_list(comps) then
    error("not a list", 0)
  end
  local entries, names, seen, order, ignore = data.array(), {}, {}, 0, false
  for _, comp in ipairs(comps) do
    if is_map(comp) then
      if comp.match ~= nil then
        entries[#entries + 1] = comp
      end
      if comp.order ~= nil then
        order = math.tointeger(tonumber(comp.order)) or 0
      end
      ignore = ignore or comp.ignore_missing == true
    elseif type(comp) == "string" and not seen[comp] then
      seen[comp] = true
      names[#names + 1] = comp
    end
  end
  if ignore then
    c.ignored[saltenv] = c.ignored[saltenv] or {}
    for _, n in ipairs(names) do
      c.ignored[saltenv][n] = true
    end
  end
  for _, n in ipairs(names) do
    entries[#entries + 1] = n
  end
  return entries, order
end

-- Salt's merge_tops: targets of the same environment from several top
-- files are combined, a later one replacing an earlier one of the same
-- target; then each environment's targets are sorted by `order` (stable).
local function merge_tops(c, tops, order)
  local merged, envs = {}, {}
  for _, env in ipairs(order) do
    for _, top in ipairs(tops[env]) do
      if not is_map(top) then
        error("not a mapping", 0)
      end
      for saltenv, targets in pairs(top) do
        if not is_map(targets) then
          error("not a mapping", 0)
        end
        if not merged[saltenv] then
          merged[saltenv] = { list = {}, index = {} }
          envs[#envs + 1] = saltenv
        end
        local m = merged[saltenv]
        for tgt, comps in pairs(targets) do
          local entries, ord = read_target(c, saltenv, comps)
          if not m.index[tgt] then
            m.list[#m.list + 1] = { tgt = tgt }
            m.index[tgt] = m.list[#m.list]
          end
          m.index[tgt].entries, m.index[tgt].order = entries, ord
        end
      end
    end
  end
  for _, saltenv in ipairs(envs) do
    local list = merged[saltenv].list
    for i, t in ipairs(list) do
      t.pos = i
    end
    table.sort(list, function(x, y)
      if x.order ~= y.order then
        return x.order < y.order
      end
      return x.pos < y.pos
    end)
  end
  return merged, envs
end

-- The SLS names of each environment that this minion gets: Salt's
-- top_matches, with the top file's default matcher, compound.
local function top_matches(c, merged, envs)
  local matches, order = {}, {}
  for _, saltenv in ipairs(envs) do
    if c.pillarenv == nil or saltenv == c.pillarenv then
      for _, t in ipairs(merged[saltenv].list) do
        local matcher = "compound"
        for _, entry in ipairs(t.entries) do
          if is_map(entry) and entry.match ~= nil then
            matcher = tostring(entry.match)
          end
        end
        local ok, err = top_match(c, t.tgt, matcher)
        if err then
          add_error(c, err)
        elseif ok then
          if not matches[saltenv] then
            matches[saltenv] = { list = {}, seen = {} }
            order[#order + 1] = saltenv
          end
          local m = matches[saltenv]
          for _, entry in ipairs(t.entries) do
            if type(entry) == "string" and not m.seen[entry] then
              m.seen[entry] = true
              m.list[#m.list + 1] = entry
            end
          end
        end
      end
    end
  end
  return matches, order
end

-- ---- SLS files ----

local render_pstate

-- The SLS names an include entry stands for: a shell pattern over the
-- environment's SLS; ".name" is relative to the including SLS's package.
local function include_targets(c, saltenv, sls, is_init, name)
  name = name:gsub("/", ".")
  if name:sub(1, 1) == "." then
    local parts = {}
    for p in sls:gmatch("[^.]+") do
      parts[#parts + 1] = p
    end
    if not is_init then
      parts[#parts] = nil
    end
    parts[#parts + 1] = name:sub(2)
    name = table.concat(parts, ".")
  end
  local avail = c.avail[saltenv]
  if not avail then
    add_error(c, string.format(
      "No matching pillar environment for environment '%s' found", saltenv))
    return { name }
  end
  local found = filter(avail, name)
  return #found > 0 and found or { name }
end

-- Renders the SLS an include list names, and returns their data in order
-- (nested under `key` where an entry gives one).
local function render_includes(c, saltenv, sls, is_init, includes, mods)
  local states = {}
  for _, entry in ipairs(includes) do
    local name, defaults, key = entry, nil, nil
    if is_map(entry) then
      name = next(entry)
      local opts = entry[name]
      if is_map(opts) then
        defaults = is_map(opts.defaults) and opts.defaults or nil
        key = not is_none(opts.key) and tostring(opts.key) or nil
      end
    end
    for _, sub in ipairs(include_targets(c, saltenv, sls, is_init, tostring(name))) do
      local nstate = mods[sub]
      if nstate == nil then
        nstate = render_pstate(c, sub, saltenv, mods, defaults)
      end
      if is_map(nstate) and not empty_map(nstate) then
        if key then
          local parts = split(key, ":")
          for i = #parts, 1, -1 do
            nstate = data.map({ { parts[i], nstate } })
          end
        end
        states[#states + 1] = nstate
      end
    end
  end
  return states
end

-- Renders one SLS of the pillar tree with its includes; returns its data,
-- or nil when it is missing or broken (the reason is in c.errors).
render_pstate = function(c, sls, saltenv, mods, defaults)
  local e = c.index[saltenv]
  local path, dir, is_init = find_sls(e and e.dirs or {}, sls)
  if not path then
    if not (c.ignored[saltenv] and c.ignored[saltenv][sls]) and e and #e.dirs > 0 then
      add_error(c, string.format(
        "Specified SLS '%s' in environment '%s' is not available on the salt master",
        sls, saltenv))
    end
    return nil
  end
  local state, err = render_file(c, path, dir, saltenv, sls, defaults)
  if state == nil then
    render_error(c, sls, err)
  end
  mods[sls] = state or false
  if state == nil or empty_map(state) then
    return state
  elseif not is_map(state) then
    add_error(c, string.format("SLS '%s' does not render to a dictionary", sls))
    return state
  end
  local includes = state.include
  if includes == nil then
    return state
  elseif not is_list(includes) then
    add_error(c, string.format(
      "Include Declaration in SLS '%s' is not formed as a list", sls))
    return state
  end
  state.include = nil
  local included = render_includes(c, saltenv, sls, is_init, includes, mods)
  if c.opts.pillar_includes_override_sls == true then
    -- each included file is merged over the including one, in order
    table.insert(included, 1, state)
  else
    -- the including file's own data is merged last: its values win
    included[#included + 1] = state
  end
  local merged = included[1]
  for i = 2, #included do
    merged = M.merge(merged, included[i], c.strategy, c.opts.renderer, c.merge_lists)
  end
  return merged
end

-- Renders the matched SLS of each environment into one pillar.
local function render_pillar(c, matches, order)
  local pillar = config.copy(c.override)
  for _, saltenv in ipairs(order) do
    local files, mods = {}, {}
    for _, pattern in ipairs(matches[saltenv].list) do
      local avail = c.avail[saltenv]
      local found = avail and filter(avail, pattern) or {}
      if not avail then
        add_error(c, string.format(
          "No matching pillar environment for environment '%s' found", saltenv))
      end
      if #found == 0 then
        found = { pattern }
      end
      for _, sls in ipairs(found) do
        files[#files + 1] = sls
      end
    end
    for _, sls in ipairs(files) do
      local state = render_pstate(c, sls, saltenv, mods)
      if is_map(state) then
        pillar = M.merge(pillar, state, c.strategy, c.opts.renderer, c.merge_lists)
      end
    end
  end
  return pillar
end

-- ---- the compiler ----

-- The options templates see: the caller's, with this minion's id, grains
-- and environments (Salt's Pillar.__gen_opts).
local function render_opts(opts, grains, id, saltenv, pillarenv)
  local o = data.map()
  for k, v in pairs(opts) do
    o[k] = v
  end
  o.id, o.grains = id, grains
  o.saltenv = saltenv or null
  o.pillarenv = pillarenv or null
  o.file_client = "local"
  return o
end

local function none_to_nil(v)
  if is_none(v) or v == "" then
    return nil
  end
  return tostring(v)
end

-- The compile's state: options, the minion, the tree, the errors so far.
local function new_compiler(opts, grains, id, args)
  local saltenv = none_to_nil(args.saltenv) or none_to_nil(opts.saltenv)
  local pillarenv = none_to_nil(args.pillarenv) or none_to_nil(opts.pillarenv)
  if pillarenv == nil and opts.pillarenv_from_saltenv == true then
    pillarenv = saltenv
  end
  local envs, index = environments(opts, pillarenv, saltenv)
  if not envs then
    return nil, index
  end
  local c = { grains = grains, id = id, saltenv = saltenv, pillarenv = pillarenv,
    envs = envs, index = index, errors = {}, log = {}, ignored = {}, avail = {},
    strategy = opts.pillar_source_merging_strategy,
    merge_lists = opts.pillar_merge_lists == true }
  c.opts = render_opts(opts, grains, id, saltenv, pillarenv)
  c.render_pillar = is_map(args.pillar) and args.pillar
    or (is_map(opts.pillar) and opts.pillar or data.map())
  c.override = is_map(args.pillar_override) and args.pillar_override or data.map()
  local safe = args.safe_render_error
  if safe == nil then
    safe = opts.pillar_safe_render_error ~= false
  end
  c.safe = safe
  c.salt = args.salt or require("brine.loader").new(c.opts,
    { grains = grains, pillar = c.render_pillar }).salt
  for _, e in ipairs(envs) do
    c.avail[e.env] = list_sls(e.dirs)
  end
  return c
end

-- The environments whose top files are read (Salt's get_tops).
local function top_environments(c)
  local list = {}
  for _, e in ipairs(c.envs) do
    if c.pillarenv then
      if e.env == c.pillarenv and c.index[e.env] then
        list[#list + 1] = e
      end
    elseif c.strategy ~= "none" or e.env == (c.saltenv or "base") then
      list[#list + 1] = e
    end
  end
  return list
end

--- Compiles the pillar of one minion from the pillar_roots in opts, as
--- Salt's Pillar.compile_pillar does (without ext_pillar).
--- args (all optional): saltenv, pillarenv (only that environment's top
--- file and SLS; default opts.pillarenv, or the saltenv when
--- pillarenv_from_saltenv), pillar_override (a mapping merged over the
--- result, as `pillar='{...}'` on the command line), pillar (the `pillar`
--- templates and pillar matchers see; default opts.pillar),
--- safe_render_error (hide renderers' messages, keeping file and line;
--- default opts.pillar_safe_render_error, else true), salt (the `salt`
--- table templates call; default a new loader over opts for this minion).
--- Errors do not stop the compile: each is a message, and when there are
--- any the pillar holds them under `_errors` (the state system then
--- refuses to run). A missing top file is no error: the pillar is empty.
---@param opts table minion (or master) options: pillar_roots, renderer,
--- pillar_source_merging_strategy, pillar_merge_lists, state_top, ...
---@param grains table the minion's grains
---@param minion_id string
---@param args table|nil
---@return table pillar an ordered mapping
---@return table errors array of messages (empty when none), as in `_errors`
---@return table log the same errors in full (with the renderers' messages
--- that safe mode hides), for the caller's log; never send these to a minion
function M.compile(opts, grains, minion_id, args)
  if type(opts) ~= "table" then
    error("brine.pillar.compile: opts must be a table", 2)
  end
  args = args or {}
  grains = type(grains) == "table" and grains or data.map()
  local c, err = new_compiler(opts, grains, tostring(minion_id or opts.id or ""), args)
  if not c then
    local pillar = data.map({ { "_errors", data.array({ err }) } })
    return pillar, data.array({ err }), data.array({ err })
  end
  c.top_envs = top_environments(c)
  local tops, order = gather_tops(c)
  local ok, merged, envs = pcall(merge_tops, c, tops, order)
  if not ok then
    merged, envs = {}, {}
    add_error(c, "Error encountered while rendering pillar top file.")
  end
  local matches, morder = top_matches(c, merged, envs)
  local pillar = render_pillar(c, matches, morder)
  local errors = data.array(c.errors)
  if #errors > 0 then
    pillar._errors = data.array(c.errors)
  end
  if next(c.override) ~= nil then
    pillar = M.merge(pillar, c.override, c.strategy, c.opts.renderer, c.merge_lists)
  end
  return pillar, errors, data.array(c.log)
end

--- The pillar this minion's functions see. With `file_client: local` (a
--- masterless minion, `brine call --local`) it is compiled here from
--- pillar_roots, and it replaces the `pillar:` option as in Salt (whose
--- minion overwrites that option with the compiled pillar); renderer
--- messages are shown in full, since the pillar stays on this machine,
--- unless pillar_safe_render_error is set True. Otherwise it is the `pillar`
--- option, which the minion fills from the master's answer.
---@param opts table minion options
---@param grains table
---@param args table|nil pillarenv, saltenv, pillar_override (see compile)
---@return table pillar
function M.minion_pillar(opts, grains, args)
  if opts.file_client ~= "local" then
    return is_map(opts.pillar) and opts.pillar or data.map()
  end
  args = args or {}
  local pillar = M.compile(opts, grains, opts.id, {
    saltenv = args.saltenv, pillarenv = args.pillarenv,
    pillar_override = args.pillar_override,
    safe_render_error = opts.pillar_safe_render_error == true,
  })
  return pillar
end

return M
