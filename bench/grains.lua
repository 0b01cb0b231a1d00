-- How long brine takes to collect the core grains: the median and slowest
-- of many runs for all of them and for each group (os, hw, net, misc),
-- and Salt's time for `salt-call --local grains.items` when Salt is
-- installed. Run as: brine lua bench/grains.lua [RUNS]
local grains = require("brine.grains")
local uv = require("luv")

local runs = tonumber(arg and arg[1]) or 200

local function measure(opts)
  local times = {}
  for i = 1, runs do
    local start = uv.hrtime()
    assert(grains.core(opts))
    times[i] = (uv.hrtime() - start) / 1e6
  end
  table.sort(times)
  return times[(runs + 1) // 2], times[runs]
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
local median, slowest = measure({})
print(string.format("  %-6s %8.3f %8.3f", "all", median, slowest))
for _, group in ipairs({ "os", "hw", "net", "misc" }) do
  median, slowest = measure({ groups = { group } })
  print(string.format("  %-6s %8.3f %8.3f", group, median, slowest))
end

local salt = salt_seconds()
if salt then
  print(string.format("salt-call --local grains.items: %.2f s (one run, whole process)", salt))
else
  print("salt-call is not installed: no Salt figure to compare with")
end
