-- How long brine takes to collect the core grains: the median and slowest
-- of many runs for all of them and for each group (os, hw, net, misc);
-- then a minion's whole grains (core, ten custom grain modules, a static
-- grains file, the grains option), and Salt's time for
-- `salt-call --local grains.items` when Salt is installed.
-- Run as: brine lua bench/grains.lua [RUNS]
local fs = require("brine.fs")
local grains = require("brine.grains")
local minion = require("brine.grains.minion")
local uv = require("luv")

local runs = tonumber(arg and arg[1]) or 200

-- The median and slowest of `runs` calls of f, in milliseconds.
local function measure(f, ...)
  local times = {}
  for i = 1, runs do
    local start = uv.hrtime()
    assert(f(...))
    times[i] = (uv.hrtime() - start) / 1e6
  end
  table.sort(times)
  return times[(runs + 1) // 2], times[runs]
end

-- A scratch minion: ten custom grain modules and a static grains file.
local function scratch_minion()
  local dir = assert(fs.tempdir("brine-bench-grains"))
  assert(fs.mkdir(dir .. "/custom"))
  assert(fs.mkdir(dir .. "/conf"))
  for i = 1, 10 do
    assert(fs.write_atomic(string.format("%s/custom/g%02d.lua", dir, i), string.format(
      "return { f = function(g) return { custom_%d = g.os .. '-%d' } end }\n", i, i)))
  end
  assert(fs.write_atomic(dir .. "/conf/grains", "roles: [web, db]\nrack: 4\n"))
  return dir, { id = "bench", config_dir = dir .. "/conf", grains_dirs = { dir .. "/custom" },
    grains = { site = "lab" } }
end

local function salt_seconds()
  local probe = io.popen("command -v salt-call 2>/dev/null")
  local path = probe:read("l")
  probe:close()
  if not path or path == "" then
    return nil
  end
  local start = uv.hrtime()
  local ok = os.execute("salt-call --local grains.items >/dev/null 2>&1")
  if not ok then
    return nil
  end
  return (uv.hrtime() - start) / 1e9
end

grains.core()                                  -- warm the caches once
print(string.format("core grains, %d runs (milliseconds)", runs))
print(string.format("  %-6s %8s %8s", "group", "median", "slowest"))
local median, slowest = measure(grains.core, {})
print(string.format("  %-6s %8.3f %8.3f", "all", median, slowest))
for _, group in ipairs({ "os", "hw", "net", "misc" }) do
  median, slowest = measure(grains.core, { groups = { group } })
  print(string.format("  %-6s %8.3f %8.3f", group, median, slowest))
end

local dir, opts = scratch_minion()
median, slowest = measure(minion.load, opts)
print(string.format("minion grains (core + 10 custom modules + static file): median %.3f,"
  .. " slowest %.3f ms", median, slowest))
fs.remove(dir, true)

local salt = salt_seconds()
if salt then
  print(string.format("salt-call --local grains.items: %.2f s (one run, whole process)", salt))
else
  print("salt-call is not installed: no Salt figure to compare with")
end
