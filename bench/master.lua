-- Master and minion figures: the round trip of `brine '*' test.ping` with
-- one minion (the whole CLI: start, publish, wait for the return, print),
-- the same round trip from a client that stays connected (the wire and
-- the job alone), and the idle memory of the master and the minion.
-- Real daemons on 127.0.0.1 in a temporary folder, as the end-to-end
-- specs start them. Prints figures; never a pass/fail test.
-- Usage: brine lua bench/master.lua [SHARED_DIR] [RUNS]   (BRINE_BIN: the binary)
-- bench/swarm.lua measures a master with many minions.
local harness = dofile("spec/e2e/harness.lua")
local posix = require("brine.posix")
local data = require("brine.data")
local client = require("brine.master.client")
local daemon = require("brine.master.daemon")

local RUNS = tonumber(arg and arg[2]) or 50

local function percentile(values, p)
  table.sort(values)
  return values[math.max(1, math.ceil(#values * p))]
end

local function report(name, ms)
  print(string.format("%-34s median %7.2f ms   min %7.2f ms   p90 %7.2f ms   (%d runs)",
    name, percentile(ms, 0.5), percentile(ms, 0), percentile(ms, 0.9), #ms))
end

-- One value from /proc/PID/status or smaps_rollup, in KiB.
local function proc_kib(pid, file, field)
  local text = harness.read("/proc/" .. pid .. "/" .. file)
  return tonumber(text:match(field .. ":%s+(%d+) kB")) or 0
end

local function memory(name, pid)
  print(string.format("%-34s RSS %6.1f MiB   PSS %6.1f MiB   private %6.1f MiB", name,
    proc_kib(pid, "status", "VmRSS") / 1024, proc_kib(pid, "smaps_rollup", "Pss") / 1024,
    (proc_kib(pid, "smaps_rollup", "Private_Clean")
      + proc_kib(pid, "smaps_rollup", "Private_Dirty")) / 1024))
end

local function cli_round_trips(w)
  local ms = {}
  for i = 1, RUNS + 1 do
    local t0 = posix.monotonic()
    local status, out = w:salt("'*' test.ping")
    assert(status == 0, out)
    if i > 1 then -- the first run warms the caches
      ms[#ms + 1] = (posix.monotonic() - t0) * 1000
    end
  end
  report("CLI brine '*' test.ping", ms)
end

local function wire_round_trips(w)
  local conf = assert(daemon.load_config(w.mconf, "master"))
  local link = assert(client.connect(conf))
  local ms = {}
  for _ = 1, RUNS do
    local t0 = posix.monotonic()
    local reply = assert(link:request(data.map({ { "cmd", "publish" }, { "tgt", "*" },
      { "tgt_type", "glob" }, { "fun", "test.ping" }, { "arg", data.array() },
      { "kwarg", data.map() }, { "follow", true } })))
    repeat
      local msg = link:receive(posix.monotonic() + 10)
      assert(msg ~= nil, "no return within 10 s")
    until msg and msg.cmd == "return" and msg.jid == reply.jid
    ms[#ms + 1] = (posix.monotonic() - t0) * 1000
  end
  link:close()
  report("connected client, test.ping", ms)
end

local w = harness.world("log_level: info\n")
local ok, err = pcall(function()
  w:start_master()
  w:accept("bench1", "log_level: info\nmaster_alive_interval: 30\n")
  cli_round_trips(w)
  wire_round_trips(w)
  posix.sleep(2) -- idle: workers reaped, buffers settled
  memory("master, idle, one minion", w.pids.master)
  memory("minion, idle, connected", w.pids["minion-bench1"])
end)
w:cleanup()
if not ok then
  error(err, 0)
end
