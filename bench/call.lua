-- Start-up cost of a local call: `brine call --local test.ping`, wall time
-- and peak RSS, each the median of many runs, beside the process start-up
-- floor (/bin/true), salt-call and cf-agent when they are installed.
-- Prints figures, ratios and which shared libraries a local call loads
-- (libzmq must not be one: a local call does not use the transport).
-- Figures only: never a pass/fail test.
--
-- Usage: brine lua bench/call.lua [SHARED_DIR] [RUNS]
-- BRINE_BIN names the brine to measure (default: build/release/engine/brine).
-- Wall time comes from luv's clock around one spawn and its exit; peak RSS
-- from /usr/bin/time -f %M (package `time`), skipped when it is missing.
local uv = require("luv")

local runs = math.tointeger(tonumber(arg and arg[2])) or 200
local brine = os.getenv("BRINE_BIN") or "build/release/engine/brine"
local TARGET_MS, TARGET_KIB = 5, 4096

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- argv as one shell command line.
local function command_line(argv)
  local words = {}
  for i, w in ipairs(argv) do
    words[i] = sh_quote(w)
  end
  return table.concat(words, " ")
end

local function median(values)
  table.sort(values)
  local n = #values
  if n % 2 == 1 then
    return values[(n + 1) // 2]
  end
  return (values[n // 2] + values[n // 2 + 1]) / 2
end

-- The path of a program on PATH, or nil.
local function which(name)
  local p = io.popen("command -v " .. sh_quote(name) .. " 2>/dev/null")
  local path = p:read("l")
  p:close()
  return path ~= "" and path or nil
end

-- Milliseconds from spawning argv to its exit, output thrown away.
local function wall_ms(argv, null_fd)
  local start, finish = uv.hrtime(), nil
  local handle = uv.spawn(argv[1], {
    args = { table.unpack(argv, 2) },
    stdio = { nil, null_fd, null_fd },
  }, function()
    finish = uv.hrtime()
  end)
  assert(handle, "could not start " .. argv[1])
  while not finish do
    uv.run("once")
  end
  handle:close()
  uv.run("nowait")
  return (finish - start) / 1e6
end

-- Peak RSS in KiB of one run, or nil without /usr/bin/time.
local function peak_kib(argv)
  local p = io.popen("/usr/bin/time -f %M " .. command_line(argv)
    .. " 2>&1 >/dev/null | tail -n 1")
  local kib = tonumber(p:read("l"))
  p:close()
  return kib
end

-- { wall = median ms, rss = median KiB or nil } over n runs (one warm-up).
local function measure(argv, n)
  local null_fd = assert(uv.fs_open("/dev/null", "w", 420))
  wall_ms(argv, null_fd)
  local walls = {}
  for i = 1, n do
    walls[i] = wall_ms(argv, null_fd)
  end
  uv.fs_close(null_fd)
  local rss = {}
  if uv.fs_access("/usr/bin/time", "X") then
    for i = 1, math.min(n, 25) do
      rss[i] = peak_kib(argv)
    end
  end
  return { wall = median(walls), rss = #rss > 0 and median(rss) or nil }
end

local function row(name, r)
  print(string.format("%-40s %9.2f ms %9s KiB", name, r.wall,
    r.rss and string.format("%d", r.rss) or "?"))
end

-- The shared libraries the dynamic loader initialises for argv.
local function libraries(argv)
  local p = io.popen("LD_DEBUG=libs " .. command_line(argv) .. " 2>&1 >/dev/null")
  local libs = {}
  for line in p:lines() do
    local lib = line:match("calling init: (%S+)")
    if lib then
      libs[#libs + 1] = lib:match("([^/]+)$")
    end
  end
  p:close()
  return libs
end

local ping = { brine, "call", "--local", "test.ping" }
print(string.format("%-40s %12s %13s", string.format("median of %d runs", runs), "wall",
  "peak RSS"))
row("/bin/true (process start-up floor)", measure({ "/bin/true" }, runs))
local mine = measure(ping, runs)
row("brine call --local test.ping", mine)
row("brine call --local cmd.run 'exit 0'",
  measure({ brine, "call", "--local", "cmd.run", "exit 0" }, runs))

local peers = {}
local salt = which("salt-call")
if salt then
  peers[#peers + 1] = { "salt-call --local test.ping",
    measure({ salt, "--local", "test.ping" }, 5) }
end
local cf = which("cf-agent")
if cf then
  local policy = os.tmpname()
  local f = assert(io.open(policy, "w"))
  f:write('bundle agent main { reports: "ping"; }\n')
  f:close()
  peers[#peers + 1] = { "cf-agent (one report)", measure({ cf, "-K", "-f", policy }, 10) }
  os.remove(policy)
end
for _, peer in ipairs(peers) do
  row(peer[1], peer[2])
end
print()
for _, peer in ipairs(peers) do
  local r = peer[2]
  print(string.format("%s takes %.0fx brine's time%s", peer[1], r.wall / mine.wall,
    (r.rss and mine.rss) and string.format(" and %.1fx its memory", r.rss / mine.rss) or ""))
end
if #peers == 0 then
  print("salt-call and cf-agent are not installed: no peers to compare with")
end

local libs = libraries(ping)
local zmq = false
for _, lib in ipairs(libs) do
  zmq = zmq or lib:match("^libzmq") ~= nil
end
print(string.format("shared libraries a local call loads (%d): %s", #libs,
  table.concat(libs, " ")))
print(string.format("libzmq loaded by a local call: %s", zmq and "YES (it should not be)" or "no"))
print(string.format("targets: wall under %d ms: %s; peak RSS under %d KiB: %s", TARGET_MS,
  mine.wall < TARGET_MS and "met" or "NOT met", TARGET_KIB,
  mine.rss and (mine.rss < TARGET_KIB and "met" or "NOT met") or "not measured"))
