-- Template rendering throughput: compile+render and render-only, on the
-- reference formula (bench/reference/salt/states/reference/*.jinja and
-- init.sls of the shared folder) and on the Jinja conformance corpus, side by
-- side with Python's jinja2 (Debian's python3-jinja2, installed with apt-get
-- when it is missing and this runs as root), and the time of the first
-- render of each template (compile included, nothing cached).
--
-- Usage: brine lua bench/render.lua [SHARED_DIR] [SECONDS_PER_FIGURE] [ROUNDS]
-- SHARED_DIR defaults to $BRINE_SHARED_DIR. Python and Lua take turns,
-- ROUNDS times (default 3), and each figure is the best of its rounds: on
-- a shared machine a slow moment then costs one round, not the ratio.
local luv = require "luv"
local data = require "brine.data"
-- The engine and its filter library load first, timed: what every process
-- that renders a template pays once.
local load_start = luv.hrtime()
local jinja = require "renderers.jinja.init"
local renderer = require "renderers.jinja"
local load_time = (luv.hrtime() - load_start) / 1e9

local shared = arg[1] or os.getenv("BRINE_SHARED_DIR")
-- `--first NAME` (internal): this process only times the first render of
-- workload NAME and prints it; see first_in_fresh_process below.
local first_only = arg[2] == "--first" and arg[3] or nil
local budget = tonumber(not first_only and arg[2] or "0.5")
local rounds = math.tointeger(tonumber(not first_only and arg[3] or "3")) or 3
if not shared then
  io.stderr:write("usage: brine lua bench/render.lua SHARED_DIR [SECONDS]\n")
  os.exit(2)
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function list(dir)
  local names = {}
  local p = io.popen('ls "' .. dir .. '" 2>/dev/null')
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

-- Runs fn repeatedly for `budget` seconds of CPU time; returns calls per
-- second. The clock is read once per batch of calls (a batch lasts about
-- a millisecond), not once per call: reading it costs about as much as a
-- small render.
local function rate(fn)
  local batch, n, start = 1, 0, os.clock()
  repeat
    local t0 = os.clock()
    for _ = 1, batch do fn() end
    n = n + batch
    if os.clock() - t0 < 0.001 then batch = batch * 2 end
  until os.clock() - start >= budget
  return n / (os.clock() - start)
end

-- Workloads: {name=, root=, source=, vars=} ------------------------------------

local ref_root = shared .. "/bench/reference/salt/states/reference"
local pillar_text = read(shared .. "/bench/reference/salt/pillar/reference.sls")
local ok_yaml, yaml = pcall(require, "brine.yaml")
local reference
if ok_yaml and pillar_text then
  reference = yaml.load(pillar_text).reference
else
  reference = data.map({ { "site", "fleet-7" },
    { "servers", data.array({ "ntp0.example.net", "ntp1.example.net" }) },
    { "limits", data.map({ { "cpu", 80 }, { "mem", 512 } }) } })
end
reference.root = "/srv/reference"

local function pillar_get(key, default)
  local cur = data.map({ { "reference", reference } })
  for part in key:gmatch("[^:]+") do
    if type(cur) ~= "table" or cur[part] == nil then return default end
    cur = cur[part]
  end
  return cur
end

local workloads = {}
local init = read(ref_root .. "/init.sls")
if init then
  local vars = renderer.context({ name = "reference/init.sls", sls = "reference",
    tplfile = "reference/init.sls", salt = { ["pillar.get"] = pillar_get } })
  workloads[#workloads + 1] = { name = "reference/init.sls", root = ref_root, source = init,
                                vars = vars, json = { pillar = { reference = true } } }
end
local conf = read(ref_root .. "/app.conf.jinja")
if conf then
  local vars = { site = reference.site, servers = reference.servers,
                 limits = reference.limits, dir = 3, index = 7 }
  workloads[#workloads + 1] = { name = "reference/app.conf.jinja", root = ref_root,
                                source = conf, vars = vars }
end

-- The conformance corpus as one workload: every case that renders.
local corpus_dir = shared .. "/conformance/jinja"
local corpus = {}
for _, case in ipairs(list(corpus_dir)) do
  local dir = corpus_dir .. "/" .. case
  local src = read(dir .. "/template")
  if src and read(dir .. "/expected.out") and not read(dir .. "/context.json") then
    corpus[#corpus + 1] = { name = case, root = dir, source = src }
  end
end

-- Lua figures ---------------------------------------------------------------------

-- Wall-clock seconds of one call of fn.
local function wall(fn)
  local t0 = luv.hrtime()
  fn()
  return (luv.hrtime() - t0) / 1e9
end

-- The first render of a process that has loaded the engine and rendered
-- one line, as `brine render`, `brine call` or a minion's job process
-- renders its first template: what a user waits for. Prints milliseconds.
if first_only then
  jinja.new_environment({}):render_string("{{ [1]|join }}", {}, "warm-up")
  for _, w in ipairs(workloads) do
    if w.name == first_only then
      local env = jinja.new_environment({ root = w.root, globals = w.vars })
      local out
      local t = wall(function() out = env:render_string(w.source, w.vars, w.name) end)
      print(out and string.format("%.6f", t * 1000) or "error")
    end
  end
  os.exit(0)
end

local FRESH_RUNS = 7

-- The median and the lowest of FRESH_RUNS first renders of workload w, each
-- in a new brine process; nil when that cannot run.
local function first_in_fresh_process(w)
  local ok, posix = pcall(require, "brine.posix")
  if not ok then return nil end
  local exe = "/proc/" .. posix.getpid() .. "/exe"
  local times = {}
  for _ = 1, FRESH_RUNS do
    local p = io.popen(string.format("%s lua %q %q --first %q", exe, arg[0], shared, w.name))
    local t = tonumber(p:read("a"))
    p:close()
    if not t then return nil end
    times[#times + 1] = t
  end
  table.sort(times)
  return times[(#times + 1) // 2], times[1]
end

local function lua_rates(w)
  local env = jinja.new_environment({ root = w.root, globals = w.vars })
  jinja.clear_cache()
  local out, err
  local first = wall(function() out, err = env:render_string(w.source, w.vars, w.name) end)
  if not out then return nil, err end
  local compile = rate(function()
    jinja.clear_cache()
    env:render_string(w.source, w.vars, w.name)
  end)
  local T = jinja.compile(w.source, w.name)
  local render = rate(function() env:render(T, w.vars) end)
  return compile, render, first
end

local function corpus_rates(cases)
  local envs, usable = {}, {}
  for _, c in ipairs(cases) do
    local env = jinja.new_environment({ root = c.root })
    if env:render_string(c.source, nil, c.name) then
      envs[#envs + 1] = env
      usable[#usable + 1] = c
    end
  end
  local function all()
    for i, c in ipairs(usable) do envs[i]:render_string(c.source, nil, c.name) end
  end
  local compile = rate(function() jinja.clear_cache(); all() end)
  local compiled = {}
  for i, c in ipairs(usable) do compiled[i] = jinja.compile(c.source, c.name) end
  local render = rate(function()
    for i, T in ipairs(compiled) do envs[i]:render(T) end
  end)
  return compile, render, usable
end

-- Python figures ------------------------------------------------------------------

local PY = [==[
import json, sys, time
import jinja2
from jinja2.sandbox import SandboxedEnvironment
spec = json.load(open(sys.argv[1]))
budget = float(sys.argv[2])
def rate(fn):
    batch, n, start = 1, 0, time.process_time()
    while True:
        t0 = time.process_time()
        for _ in range(batch): fn()
        n += batch
        if time.process_time() - t0 < 0.001: batch *= 2
        if time.process_time() - start >= budget: break
    return n / (time.process_time() - start)
def make_env(root):
    env = SandboxedEnvironment(loader=jinja2.FileSystemLoader(root),
        undefined=jinja2.StrictUndefined, extensions=['jinja2.ext.do',
        'jinja2.ext.loopcontrols'])
    env.filters['json'] = lambda v: json.dumps(v, sort_keys=True)
    return env
out = {}
for w in spec['workloads']:
    env = make_env(w['root'])
    vars = w['vars']
    if w.get('salt'):
        vars['salt'] = {'pillar.get': lambda k, d='': {'reference': w['pillar']}.get(
            k.split(':')[0], d) if ':' not in k else d}
    try:
        env.from_string(w['source']).render(vars)
    except Exception as e:
        out[w['name']] = None; continue
    def compile_render():
        make_env(w['root']).from_string(w['source']).render(vars)
    t0 = time.perf_counter()
    make_env(w['root']).from_string(w['source']).render(vars)
    first = time.perf_counter() - t0
    t = env.from_string(w['source'])
    out[w['name']] = [rate(compile_render), rate(lambda: t.render(vars)), first]
cases = []
for c in spec['corpus']:
    env = make_env(c['root'])
    try:
        env.from_string(c['source']).render()
        cases.append((env, c))
    except Exception:
        pass
def all_compile():
    for env, c in cases: make_env(c['root']).from_string(c['source']).render()
tpls = [(env.from_string(c['source'])) for env, c in cases]
def all_render():
    for t in tpls: t.render()
out['corpus'] = [rate(all_compile), rate(all_render), [c['name'] for env, c in cases]]
print(json.dumps(out))
]==]

local function plain(v)
  local k = data.kind(v)
  if k == "map" then
    local t = {}
    for _, key in ipairs(data.keys(v)) do t[tostring(key)] = plain(v[key]) end
    return t
  elseif k == "array" then
    local t = {}
    for i, x in ipairs(v) do t[i] = plain(x) end
    return t
  end
  return v
end

local function to_json(v)
  local ok, json = pcall(require, "brine.json")
  if ok then return json.encode(v) end
  local t = type(v)
  if t == "string" then return string.format("%q", v):gsub("\\\n", "\\n") end
  if t == "number" or t == "boolean" then return tostring(v) end
  if t == "table" then
    if #v > 0 or next(v) == nil then
      local parts = {}
      for i, x in ipairs(v) do parts[i] = to_json(x) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = to_json(tostring(k)) .. ":" .. to_json(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "null"
end

-- Python's jinja2, installed from Debian's archive when missing.
local function have_jinja2()
  if os.getenv("NO_PY") then return false end
  local check = "python3 -c 'import jinja2' >/dev/null 2>&1"
  if os.execute(check) then return true end
  local as_root = io.popen("id -u"):read("l") == "0"
  if as_root and os.execute("command -v apt-get >/dev/null") then
    io.stderr:write("installing python3-jinja2 with apt-get for the comparison\n")
    os.execute("DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-jinja2 "
      .. ">/dev/null 2>&1")
  end
  return os.execute(check) and true or false
end

local function python_rates()
  if not have_jinja2() then return nil end
  local spec = { workloads = {}, corpus = {} }
  for _, w in ipairs(workloads) do
    local vars = {}
    for k, v in pairs(w.vars or {}) do
      if k ~= "salt" then vars[k] = plain(v) end
    end
    spec.workloads[#spec.workloads + 1] = { name = w.name, root = w.root, source = w.source,
      vars = vars, salt = w.json ~= nil, pillar = plain(reference) }
  end
  for _, c in ipairs(corpus) do
    spec.corpus[#spec.corpus + 1] = { name = c.name, root = c.root, source = c.source }
  end
  local dir = os.tmpname()
  local spec_path, script = dir .. ".json", dir .. ".py"
  local f = assert(io.open(spec_path, "w"))
  f:write(require("brine.json").encode(spec))
  f:close()
  f = assert(io.open(script, "w"))
  f:write(PY)
  f:close()
  local p = io.popen("python3 " .. script .. " " .. spec_path .. " " .. budget)
  local out = p:read("a")
  p:close()
  os.remove(spec_path); os.remove(script); os.remove(dir)
  local ok, json = pcall(require, "brine.json")
  if not ok or out == "" then return nil end
  return json.decode(out)
end

-- Report ----------------------------------------------------------------------------

local function fmt(x) return x and string.format("%10.1f/s", x) or "         -  " end
local function ratio(a, b) return (a and b) and string.format("%5.2fx", a / b) or "  -  " end

-- The best of two figures (rates: the higher; first renders: the lower).
local function best(a, b, lower)
  if a == nil then return b end
  if b == nil then return a end
  if lower then return math.min(a, b) end
  return math.max(a, b)
end

-- Python's figures, the best of `rounds` runs (each a fresh process), one
-- round now and the others between the Lua rounds below.
local ok_json = pcall(require, "brine.json")
local py
local function python_round()
  local got = ok_json and python_rates() or nil
  if not got then return end
  if not py then py = got; return end
  for name, v in pairs(got) do
    local p = py[name]
    if p and v then
      p[1], p[2] = best(p[1], v[1]), best(p[2], v[2])
      if type(v[3]) == "number" then p[3] = best(p[3], v[3], true) end
    end
  end
end
python_round()
-- The filter library loads on the first render of a process; timed on its
-- own so that the first-render figures below are the templates' own.
local warm_up = wall(function()
  jinja.new_environment({}):render_string("{{ [1]|join }}", {}, "warm-up")
end)
print(string.format("%-28s %12s %12s %12s %12s %7s %7s", "workload", "lua c+r", "lua render",
  "py c+r", "py render", "c+r", "render"))
-- Lua's rounds: the first render is the one of the first round (later
-- ones would find the engine's code warm); the rates are the best.
local lua_figures, corpus_figures, shared_figures = {}, {}, {}
local shared -- the corpus cases jinja2 renders too
if py and py.corpus then
  -- side by side on the same templates: those plain jinja2 renders too
  -- (the rest need Salt's filters, which Python's jinja2 lacks)
  local both = {}
  for _, name in ipairs(py.corpus[3]) do both[name] = true end
  shared = {}
  for _, case in ipairs(corpus) do
    if both[case.name] then shared[#shared + 1] = case end
  end
end
for round = 1, rounds do
  if round > 1 then python_round() end
  for i, w in ipairs(workloads) do
    local c, r, first = lua_rates(w)
    local l = lua_figures[i] or {}
    lua_figures[i] = l
    if not c then
      l.err = r
    else
      l.c, l.r = best(l.c, c), best(l.r, r)
      l.first = l.first or first
    end
  end
  local c, r, usable = corpus_rates(corpus)
  corpus_figures.c, corpus_figures.r = best(corpus_figures.c, c), best(corpus_figures.r, r)
  corpus_figures.n = #usable
  if shared then
    local sc, sr, same = corpus_rates(shared)
    shared_figures.c, shared_figures.r = best(shared_figures.c, sc), best(shared_figures.r, sr)
    shared_figures.n = #same
  end
end

local firsts = {}
for i, w in ipairs(workloads) do
  local l = lua_figures[i]
  local c, r, first = l.c, l.r or l.err, l.first
  if not c then
    print(w.name .. ": " .. tostring(r))
  else
    local p = py and py[w.name]
    local pc, pr = p and p[1], p and p[2]
    print(string.format("%-28s %12s %12s %12s %12s %7s %7s", w.name, fmt(c), fmt(r), fmt(pc),
      fmt(pr), ratio(c, pc), ratio(r, pr)))
    local median, low = first_in_fresh_process(w)
    firsts[#firsts + 1] = string.format("  %-26s %8s  %8.3f ms   python: %s", w.name,
      median and string.format("%.3f ms", median) or "-", first * 1000,
      p and p[3] and string.format("%.3f ms", p[3] * 1000) or "-")
    if low then
      firsts[#firsts] = firsts[#firsts] .. string.format("; fresh lowest %.3f ms", low)
    end
  end
end
local p = py and py.corpus
print(string.format("%-28s %12s %12s %12s %12s %7s %7s",
  string.format("corpus (%d templates)", corpus_figures.n), fmt(corpus_figures.c),
  fmt(corpus_figures.r), "", "", "", ""))
if p and shared then
  local sc, sr = shared_figures.c, shared_figures.r
  print(string.format("%-28s %12s %12s %12s %12s %7s %7s",
    string.format("corpus, jinja2's %d", shared_figures.n), fmt(sc), fmt(sr), fmt(p[1]),
    fmt(p[2]), ratio(sc, p[1]), ratio(sr, p[2])))
end
if not py then print("(python3 with jinja2, or brine.json, not available: Lua figures only)") end
print(string.format("ratios are Lua rate / Python rate: above 1 means brine is faster"
  .. " (each figure the best of %d rounds)", rounds))
print("first render (parse, compile and render, nothing cached; target under 1 ms):")
print(string.format("  %-26s %8s  %11s", "", "fresh", "here"))
print(string.format("  (fresh: the median of %d new processes, each after loading the engine"
  .. " and one line;\n   here: this process, in its first round; python: the same in its own)",
  FRESH_RUNS))
print(table.concat(firsts, "\n"))
print(string.format("  (loading the engine and its filter library, once per process: %.3f ms;"
  .. " then a first one-line render: %.3f ms)", load_time * 1000, warm_up * 1000))
