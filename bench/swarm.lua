-- A swarm against a real master: one process simulating N minions, each
-- with its own CURVE key, its own two connections (publish and request
-- ports) and its own id, pre-accepted on the master. Measures, for
-- N = 100 and 1,000 (and 10,000 when the file descriptor limit allows:
-- each minion holds two connections on each side): the time from
-- publishing `test.ping` to '*' until every return is stored and
-- forwarded to the CLI client, the master's memory per connected minion
-- and its peak, and the messages and payload bytes per minion and job
-- (payload: the msgpack bodies; CURVE and ZMTP framing add about 50
-- bytes a message). Prints figures; never a pass/fail test.
-- Usage: brine lua bench/swarm.lua [SHARED_DIR] [N ...]   (BRINE_BIN: the binary)
local harness = dofile("spec/e2e/harness.lua")
local posix = require("brine.posix")
local zmq = require("brine.zmq")
local data = require("brine.data")
local wire = require("brine.master.wire")
local client = require("brine.master.client")
local daemon = require("brine.master.daemon")

local sizes = {}
for i = 2, #(arg or {}) do
  sizes[#sizes + 1] = math.tointeger(tonumber(arg[i]))
end
if #sizes == 0 then
  sizes = { 100, 1000, 10000 }
end

local function kib(pid, field)
  local text = harness.read("/proc/" .. pid .. "/status")
  return tonumber(text:match(field .. ":%s+(%d+) kB")) or 0
end

local function fd_limit()
  local p = io.popen("sh -c 'ulimit -n'")
  local n = tonumber(p:read("l"))
  p:close()
  return n or 1024
end

-- Writes N accepted keys into the master's pki; returns the minions.
local function make_minions(w, n)
  local dir = w:master_pki() .. "/minions/"
  local swarm = {}
  for i = 1, n do
    local pub, sec = zmq.curve_keypair()
    local id = string.format("sim%05d", i)
    assert(posix.write_atomic(dir .. id, pub .. "\n", 384))
    swarm[i] = { id = id, pub = pub, sec = sec }
  end
  return swarm
end

local function curve_socket(ctx, w, m, port)
  local sock = assert(ctx:socket("DEALER"))
  assert(sock:setopt("curve_publickey", m.pub))
  assert(sock:setopt("curve_secretkey", m.sec))
  assert(sock:setopt("curve_serverkey", (harness.keypair(w:master_pki(), "master"))))
  assert(sock:setopt("maxmsgsize", wire.MAX_MESSAGE))
  assert(sock:connect("tcp://127.0.0.1:" .. port))
  return sock
end

-- Connects every simulated minion and says hello; waits until the master
-- counts them all as connected.
local function connect_all(ctx, w, swarm, link)
  for _, m in ipairs(swarm) do
    m.pubsock = curve_socket(ctx, w, m, w.ports[1])
    m.req = curve_socket(ctx, w, m, w.ports[2])
    m.pubsock:send(wire.encode(data.map({ { "cmd", "hello" }, { "id", m.id },
      { "grains", data.map({ { "id", m.id } }) } })))
  end
  local deadline = posix.monotonic() + 60 + #swarm / 50
  while posix.monotonic() < deadline do
    for _, m in ipairs(swarm) do
      m.pubsock:recv({ dontwait = true }) -- the master's hello back
    end
    local status = link:request({ cmd = "status" })
    if status and #status.connected >= #swarm then
      return true
    end
    posix.sleep(0.2)
  end
  return false
end

-- Answers jobs and drains acks until the client has every return.
local function run_job(swarm, link)
  local stats = { messages = 0, bytes = 0 }
  local t0 = posix.monotonic()
  local reply = assert(link:request(data.map({ { "cmd", "publish" }, { "tgt", "sim*" },
    { "tgt_type", "glob" }, { "fun", "test.ping" }, { "arg", data.array() },
    { "kwarg", data.map() }, { "follow", true } })))
  local returned, deadline = 0, posix.monotonic() + 120
  while returned < #swarm and posix.monotonic() < deadline do
    for _, m in ipairs(swarm) do
      local frames = m.pubsock:recv({ dontwait = true })
      if frames then
        local job = wire.decode(frames[1])
        stats.messages, stats.bytes = stats.messages + 1, stats.bytes + #frames[1]
        if job and job.cmd == "job" then
          local ret = wire.encode(data.map({ { "cmd", "_return" }, { "id", m.id },
            { "jid", job.jid }, { "fun", job.fun }, { "return", true }, { "retcode", 0 },
            { "success", true } }))
          m.req:send(ret, { dontwait = true })
          stats.messages, stats.bytes = stats.messages + 1, stats.bytes + #ret
        end
      end
      local ack = m.req:recv({ dontwait = true })
      if ack then
        stats.messages, stats.bytes = stats.messages + 1, stats.bytes + #ack[1]
      end
    end
    local msg = link:receive(posix.monotonic())
    while msg ~= nil do
      if msg and msg.cmd == "return" and msg.jid == reply.jid then
        returned = returned + 1
      end
      msg = link:receive(posix.monotonic())
    end
  end
  stats.seconds = posix.monotonic() - t0
  stats.returned = returned
  -- the acks of the last returns, for the message count
  local until_t = posix.monotonic() + 2
  while stats.messages < 3 * #swarm and posix.monotonic() < until_t do
    for _, m in ipairs(swarm) do
      local ack = m.req:recv({ dontwait = true })
      if ack then
        stats.messages, stats.bytes = stats.messages + 1, stats.bytes + #ack[1]
      end
    end
  end
  return stats
end

local function swarm_run(n)
  local w = harness.world("log_level: warning\nkey_scan_interval: 0.5\n")
  local ctx = assert(zmq.context({ max_sockets = 2 * n + 64 }))
  local ok, err = pcall(function()
    -- start the master; it logs nothing at warning, so wait for its socket
    w:spawn("master", "master -c '" .. w.mconf .. "'")
    assert(w:wait(function()
      return posix.stat(w.dir .. "/master/var/run/brine/master/master.ipc")
    end, 10), "the master did not start")
    local conf = assert(daemon.load_config(w.mconf, "master"))
    local link = assert(client.connect(conf))
    posix.sleep(0.5)
    local pid = w.pids.master
    local before = kib(pid, "VmRSS")
    local swarm = make_minions(w, n)
    posix.sleep(1) -- a key scan
    assert(connect_all(ctx, w, swarm, link), "not every simulated minion connected")
    posix.sleep(0.5)
    local idle = kib(pid, "VmRSS")
    -- five jobs in a row: the disk and the machine are shared, so the
    -- median and the best say more than one run
    local times, stats = {}, nil
    for i = 1, 5 do
      stats = run_job(swarm, link)
      assert(stats.returned == n, "only " .. stats.returned .. " returns")
      times[i] = stats.seconds
    end
    table.sort(times)
    print(string.format("N=%-6d every return in %6.3f s (median of 5; best %6.3f)   master RSS"
      .. " %5.1f MiB (peak %5.1f), %5.1f KiB per idle minion   %.1f messages, %.0f payload"
      .. " bytes per minion and job", n, times[3], times[1], kib(pid, "VmRSS") / 1024,
      kib(pid, "VmHWM") / 1024, (idle - before) / n, stats.messages / n, stats.bytes / n))
    for _, m in ipairs(swarm) do
      m.pubsock:close()
      m.req:close()
    end
    link:close()
  end)
  ctx:close()
  w:cleanup()
  if not ok then
    print(string.format("N=%-6d failed: %s", n, err))
  end
end

local limit = fd_limit()
for _, n in ipairs(sizes) do
  -- each simulated minion holds two connections here and two in the master
  if 2 * n + 256 > limit then
    print(string.format("N=%-6d skipped: needs %d file descriptors per process, the limit"
      .. " is %d (ulimit -n)", n, 2 * n + 256, limit))
  else
    swarm_run(n)
  end
end
