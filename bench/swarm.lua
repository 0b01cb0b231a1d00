-- The swarm: one process simulating N minions against a real master
-- daemon (started in a temporary folder on 127.0.0.1, free ports, as the
-- end-to-end specs start it), for each N given. Every simulated minion
-- has its own CURVE key pair (accepted beforehand by writing the files
-- `brine key -A` writes), its own two DEALER sockets and its own id, and
-- speaks the protocol of docs/protocol.md: `_auth` on the request port,
-- `hello` with grains on the publish port, the periodic hello, and a
-- `_return` for every job it is sent, after the checks a minion makes.
-- So each one is a distinct authenticated peer to the master. When one
-- process may not hold enough open files (4 per minion), the minions past
-- the first slice run in further processes (see "Parts" below).
--
-- Prints, for each N: the time to connect the swarm; the time from
-- publishing `test.ping` to '*' (through the master's local socket, as
-- the CLI does, and the whole `brine '*' test.ping` command) until every
-- return is in; the master's RSS with no minion, with N keys, with N
-- minions connected and idle, and its peak (VmHWM), hence its memory per
-- idle minion; and the messages and bytes per job, counted by the swarm
-- (message payloads) and by the kernel (TCP payload, from `ss`).
-- Figures only: never a pass/fail test.
--
-- Usage: brine lua bench/swarm.lua [N...]   (default 100 1000, or BRINE_SWARM="100 10000")
-- BRINE_BIN names the brine that runs the master (default: brine on PATH);
-- bench/README.md says what is counted and the other variables.
local uv = require("luv")
local zmq = require("brine.zmq")
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")
local target = require("brine.target")
local daemon = require("brine.master.daemon")
local job = require("brine.minion.job")
local harness = dofile("spec/e2e/harness.lua")

local PER_CONTEXT = 400  -- minions per ZeroMQ context: 2 sockets each, libzmq allows 1023
local CONNECTING = 100   -- minions handshaking at once while the swarm connects
local FDS_PER_MINION = 4 -- two TCP links and two socket mailboxes (eventfd)
local RESEND_S = 10       -- a minion sends a return again after this long without _ack
local IDLE_S = 5         -- the idle window: one heartbeat period of every link
local POLLIN = 1         -- ZMQ_POLLIN in ZMQ_EVENTS
local TARGETS = { [1000] = 1.0, [10000] = 5.0 } -- seconds until every return is in
local TARGET_KIB = 10    -- master memory per idle minion
local SALT_50_CLI = 4.6  -- seconds: Salt's CLI, test.ping to 50 minions (measured here)
local SALT_1_CLI = 0.9   -- and to one minion

-- The options a minion runs with unless configured; BRINE_SWARM_HEARTBEAT_MS
-- changes the ZeroMQ heartbeat interval of every link, the master's too
-- (its `heartbeat_ivl` option; 0: none), to show what heartbeats cost.
-- BRINE_SWARM_MASTER_HEARTBEAT_MS changes the master's alone.
local HEARTBEAT_MS = math.tointeger(tonumber(os.getenv("BRINE_SWARM_HEARTBEAT_MS")))
local MASTER_HEARTBEAT_MS = math.tointeger(tonumber(os.getenv("BRINE_SWARM_MASTER_HEARTBEAT_MS")))
  or HEARTBEAT_MS
local MINION = setmetatable({ heartbeat_ivl = HEARTBEAT_MS }, { __index = daemon.MINION_DEFAULTS })

---------------------------------------------------------------------------
-- Arguments, limits
---------------------------------------------------------------------------

-- The sizes to run: integer arguments, else BRINE_SWARM, else 100 and
-- 1,000 (bench/run passes the shared folder first: ignored).
local function sizes(argv)
  local out = {}
  for _, a in ipairs(argv) do
    out[#out + 1] = math.tointeger(tonumber(a))
  end
  if #out == 0 then
    for word in (os.getenv("BRINE_SWARM") or "100 1000"):gmatch("%d+") do
      out[#out + 1] = math.tointeger(tonumber(word))
    end
  end
  return out
end

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function open_files_limit()
  return tonumber(harness.read("/proc/self/limits"):match("Max open files%s+(%d+)")) or 1024
end

-- Runs this script again under a higher RLIMIT_NOFILE when N needs more
-- files than allowed (the master, started from here, inherits it).
-- Returns only when no new process was needed or it could not be made.
local function raise_open_files(largest, argv)
  local need = largest * FDS_PER_MINION + 4096
  if open_files_limit() >= need or os.getenv("BRINE_SWARM_RAISED") then
    return
  end
  local words = {}
  for i, a in ipairs(argv) do
    words[i] = sh_quote(a)
  end
  local exe = "/proc/" .. posix.getpid() .. "/exe"
  local ok, _, code = os.execute(string.format(
    "ulimit -n %d 2>/dev/null || exit 111; BRINE_SWARM_RAISED=1 exec %s lua %s %s",
    need, sh_quote(exe), sh_quote(arg[0]), table.concat(words, " ")))
  if code ~= 111 then
    os.exit(ok and 0 or code)
  end
  print(string.format("note: cannot raise the open files limit to %d (it is %d)", need,
    open_files_limit()))
end

---------------------------------------------------------------------------
-- The event loop: every ZeroMQ socket's ZMQ_FD watched by libuv. The fd
-- only says that the socket's state may have changed: ZMQ_EVENTS tells
-- whether a message waits, and is checked again after every send (a send
-- may consume the wake-up of a message that arrived meanwhile).
---------------------------------------------------------------------------

local failure -- the first error raised in a callback; run_until raises it

local function guard(fn)
  return function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    if not ok and not failure then
      failure = err
    end
  end
end

local function drain(sock, handler, owner)
  while sock.open and (sock.zsock:getopt("events") & POLLIN) ~= 0 do
    local frames = sock.zsock:recv({ dontwait = true, max_frames = 2 })
    if not frames then
      return
    end
    handler(owner, frames)
  end
end

-- Wraps a ZeroMQ socket: watched by libuv, `handler(owner, frames)` for
-- each message received.
local function watch(zsock, handler, owner)
  local sock = { zsock = zsock, open = true }
  sock.poll = uv.new_poll(assert(zsock:getopt("fd")))
  sock.poll:start("r", guard(function() drain(sock, handler, owner) end))
  sock.drain = function() drain(sock, handler, owner) end
  return sock
end

local function unwatch(sock)
  if sock and sock.open then
    sock.open = false
    sock.poll:stop()
    sock.poll:close()
    sock.zsock:close()
  end
end

-- Sends one message and looks for replies that may be waiting.
local function send(sock, bytes)
  local ok, err = sock.zsock:send(bytes, { dontwait = true })
  sock.drain()
  return ok, err
end

-- Runs the loop until cond() is true; raises after `seconds`.
local function run_until(cond, seconds, what)
  local deadline = posix.monotonic() + seconds
  local tick = uv.new_timer()
  tick:start(20, 20, function() end)
  while not cond() and not failure do
    if posix.monotonic() > deadline then
      tick:close()
      error((type(what) == "function" and what() or what) .. ": not done within " .. seconds
        .. " s", 0)
    end
    uv.run("once")
  end
  tick:close()
  if failure then
    error(failure, 0)
  end
end

local function idle(seconds)
  local until_t = posix.monotonic() + seconds
  run_until(function() return posix.monotonic() >= until_t end, seconds + 5, "idle")
end

---------------------------------------------------------------------------
-- Traffic: what the swarm sends and receives, by message kind. Counted:
-- ZeroMQ message payloads (the msgpack bytes). Not counted here: ZMTP
-- framing, CURVE's per-message box and nonce, heartbeats, TCP/IP headers
-- (the `ss` figures hold all but the headers).
---------------------------------------------------------------------------

local traffic = {}

local function count(cmd, bytes)
  local t = traffic[cmd] or { n = 0, bytes = 0 }
  traffic[cmd] = t
  t.n, t.bytes = t.n + 1, t.bytes + bytes
end

-- TCP payload bytes and segments of the master's established links on
-- the given ports, both ways, from `ss -ti` (nil when ss is missing).
local function tcp_totals(ports)
  local filter = {}
  for i, port in ipairs(ports) do
    filter[i] = "sport = :" .. port
  end
  local p = io.popen("ss -tinH state established '( " .. table.concat(filter, " or ")
    .. " )' 2>/dev/null")
  local bytes, segs, links = 0, 0, 0
  for line in p:lines() do
    local sent, received = line:match("bytes_sent:(%d+)"), line:match("bytes_received:(%d+)")
    if sent or received then
      links = links + 1
      bytes = bytes + (tonumber(sent) or 0) + (tonumber(received) or 0)
      segs = segs + tonumber(line:match("data_segs_out:(%d+)") or 0)
        + tonumber(line:match("data_segs_in:(%d+)") or 0)
    end
  end
  p:close()
  if links == 0 then
    return nil
  end
  return { bytes = bytes, segs = segs, links = links, t = posix.monotonic() }
end

---------------------------------------------------------------------------
-- Simulated minions
---------------------------------------------------------------------------

local Swarm = {}
Swarm.__index = Swarm

-- The message a minion received on one of its ports, counted; a message
-- a minion would drop stops the benchmark.
local function received(m, frames, port)
  local msg = #frames == 1 and wire.decode(frames[1])
  if not msg then
    error("minion " .. m.id .. ": bad message on the " .. port .. " port")
  end
  count(msg.cmd, #frames[1])
  return msg
end

function Swarm:socket(m, port, handler)
  local zsock = assert(m.ctx:socket("DEALER"))
  wire.common_options(zsock, MINION)
  assert(zsock:setopt("reconnect_ivl", MINION.recon_default))
  assert(zsock:setopt("reconnect_ivl_max", MINION.recon_max))
  wire.curve_client(zsock, m.pub, m.sec, self.master_pub)
  assert(zsock:connect(wire.endpoint("127.0.0.1", port)))
  return watch(zsock, handler, m)
end

function Swarm:send(m, sock, msg)
  local bytes = wire.encode(msg)
  count(msg.cmd, #bytes)
  assert(send(sock, bytes))
end

-- The grains a minion sends in its first hello: this machine's, under
-- the minion's id (the master keeps them for grain targeting).
function Swarm:grains(id)
  local g = data.map()
  for k, v in pairs(self.base_grains) do
    g[k] = v
  end
  g.id = id
  return g
end

function Swarm:on_request(m, frames)
  local msg = received(m, frames, "request")
  if msg.cmd == "_auth" then
    if msg.ret ~= "accepted" then
      error("minion " .. m.id .. ": the master answered _auth with " .. tostring(msg.ret))
    end
    self.authed, self.auth_replies = self.authed + 1, self.auth_replies + 1
    if self.auth_replies == self.sample then
      self.auth_done = posix.monotonic()
    end
  elseif msg.cmd == "_ack" and m.pending and msg.jid == m.pending.jid then
    -- counted by jid: acks may come before the client learns the jid
    m.pending = nil
    self.acks[msg.jid] = (self.acks[msg.jid] or 0) + 1
    self.last_ack_at = posix.monotonic()
    if self.acks[msg.jid] == #self.minions and self.on_all_acked then
      self.on_all_acked(msg.jid, self.last_ack_at)
    end
  end
end

-- A job passes the checks a minion makes before it runs anything
-- (lua/brine/minion/server.lua, check_job).
local ID_TYPES = { glob = true, pcre = true, list = true }

local function runnable(m, msg)
  return wire.is_jid(msg.jid) and type(msg.fun) == "string" and msg.jid > m.last_jid
    and (not ID_TYPES[msg.tgt_type] or target.match(msg.tgt, msg.tgt_type, m.id))
end

-- The result of a job's function, run once per job through the module
-- loader, as a minion's worker runs it; every minion returns it.
function Swarm:result(msg)
  if not self.results[msg.jid] then
    self.results[msg.jid] = job.run({ jid = msg.jid, fun = msg.fun, arg = msg.arg,
      kwarg = msg.kwarg, tgt = msg.tgt }, "swarm", self.minion_opts)
  end
  return self.results[msg.jid]
end

function Swarm:on_publish_port(m, frames)
  local msg = received(m, frames, "publish")
  if msg.cmd == "hello" then
    if not m.connected then
      m.connected = true
      self.connected = self.connected + 1
    end
  elseif msg.cmd == "job" and runnable(m, msg) then
    m.last_jid = msg.jid
    self.jobs_in = self.jobs_in + 1
    self.last_job_at = posix.monotonic()
    local r = self:result(msg)
    m.pending = { jid = msg.jid, sent = self.last_job_at, bytes = wire.encode(data.map({
      { "cmd", "_return" }, { "id", m.id }, { "jid", msg.jid }, { "fun", r.fun },
      { "return", r["return"] }, { "retcode", r.retcode }, { "success", r.success } })) }
    count("_return", #m.pending.bytes)
    assert(send(m.req, m.pending.bytes))
  end
end

-- The handlers take the minion first; the swarm is bound here.
local function bind(self, method)
  return function(m, frames) return method(self, m, frames) end
end

--- n fresh key pairs under the ids swarm-00001, ...
local function make_keys(n)
  local keys = {}
  for i = 1, n do
    local pub, sec = zmq.curve_keypair()
    keys[i] = { id = string.format("swarm-%05d", i), pub = pub, sec = sec }
  end
  return keys
end

--- A swarm of minions with the given keys ({id, pub, sec}), not connected
--- yet, for the master at `ports` (publish, request) with key master_pub.
function Swarm.new(keys, ports, master_pub, minion_opts)
  local self = setmetatable({ minions = {}, contexts = {}, connected = 0, results = {}, jobs_in = 0,
    acks = {}, master_pub = master_pub, minion_opts = minion_opts, ports = ports }, Swarm)
  self.on_request = bind(self, Swarm.on_request)
  self.on_publish_port = bind(self, Swarm.on_publish_port)
  local got, grains = pcall(function() return require("brine.grains").core() end)
  self.base_grains = got and type(grains) == "table" and grains or data.map()
  for i, k in ipairs(keys) do
    self.minions[i] = { id = k.id, pub = k.pub, sec = k.sec, last_jid = "" }
  end
  return self
end

-- KiB of Lua heap that one minion's grains take once decoded, as the
-- master keeps them (measured here, on copies decoded in this process).
function Swarm:grains_heap()
  local bytes = wire.encode({ cmd = "hello", id = "swarm-00001", grains = self:grains("x") })
  local copies = {}
  collectgarbage("collect")
  local before = collectgarbage("count")
  for i = 1, 100 do
    copies[i] = wire.decode(bytes)
  end
  local kib = (collectgarbage("count") - before) / 100
  assert(#copies == 100) -- held until measured
  collectgarbage("collect")
  return kib
end

-- Writes every key as accepted (pki_dir/minions/ID, 0600), as
-- `brine key -A` would, without a sync per file.
local function accept_keys(pki, keys)
  local old = posix.umask(63)
  for _, m in ipairs(keys) do
    local path = pki .. "/minions/" .. m.id
    local f = assert(io.open(path .. ".tmp1", "w"))
    f:write(m.pub, "\n")
    f:close()
    assert(os.rename(path .. ".tmp1", path))
  end
  posix.umask(old)
end

function Swarm:context_for(i)
  local k = (i - 1) // PER_CONTEXT + 1
  self.contexts[k] = self.contexts[k] or assert(zmq.context())
  return self.contexts[k]
end

-- Runs start(m) for every minion, at most CONNECTING per turn of the
-- loop and while fewer than CONNECTING wait for an answer (done() counts
-- the answered); returns the seconds it took.
function Swarm:paced(start, done, what)
  local t0, started = posix.monotonic(), 0
  local function more()
    local budget = CONNECTING
    while started < #self.minions and budget > 0 and started - done() < CONNECTING do
      started, budget = started + 1, budget - 1
      start(self.minions[started], started)
    end
    return done() == #self.minions
  end
  run_until(more, 120 + #self.minions / 5, what)
  return posix.monotonic() - t0
end

-- Opens every minion's request link; the first `sample` send `_auth` and
-- wait for "accepted" (a minion does on each connect; the others go on
-- as if they had: the master lets accepted keys in without it). Returns
-- the seconds the whole took and those the sample's `_auth`s took.
function Swarm:open_request_links(sample)
  self.authed, self.auth_replies, self.sample = 0, 0, math.min(sample, #self.minions)
  local t0 = posix.monotonic()
  local total = self:paced(function(m, i)
    m.ctx = self:context_for(i)
    m.req = self:socket(m, self.ports.request, self.on_request)
    if i <= sample then
      self:send(m, m.req, { cmd = "_auth", id = m.id, pub = m.pub })
    else
      self.authed = self.authed + 1
    end
  end, function() return self.authed end, "the request links")
  return total, self.sample > 0 and self.auth_done - t0 or nil
end

-- Opens every minion's publish link with its first hello (grains) and
-- waits for the master's hello; then starts the periodic hellos.
function Swarm:open_publish_links()
  local took = self:paced(function(m)
    m.pubsock = self:socket(m, self.ports.publish, self.on_publish_port)
    self:send(m, m.pubsock, { cmd = "hello", id = m.id, grains = self:grains(m.id) })
    m.next_hello = posix.monotonic() + math.random() * MINION.master_alive_interval
  end, function() return self.connected end, function()
    local t = tcp_totals({ self.ports.publish })
    return string.format("the publish links (%d of %d of this process up; the master has %s"
      .. " links on its publish port)", self.connected, #self.minions, t and t.links or "?")
  end)
  self.hello_bytes = traffic.hello.bytes // traffic.hello.n -- first hellos only
  self.hello_timer = uv.new_timer()
  self.hello_timer:start(1000, 1000, guard(function() self:hellos() end))
  return took
end

-- Each minion's timers: its periodic hello (every master_alive_interval)
-- and, as a minion's outbox does, its return sent again when no _ack came
-- within RESEND_S (counted apart: `_return_again`).
function Swarm:hellos()
  local now = posix.monotonic()
  for _, m in ipairs(self.minions) do
    if m.next_hello and now >= m.next_hello then
      m.next_hello = now + MINION.master_alive_interval
      self:send(m, m.pubsock, { cmd = "hello", id = m.id })
    end
    if m.pending and now - m.pending.sent >= RESEND_S then
      m.pending.sent = now
      count("_return_again", #m.pending.bytes)
      assert(send(m.req, m.pending.bytes))
    end
  end
end

function Swarm:close()
  if self.hello_timer then
    self.hello_timer:close()
  end
  for _, m in ipairs(self.minions) do
    unwatch(m.req)
    unwatch(m.pubsock)
  end
  for _, ctx in pairs(self.contexts) do
    ctx:close()
  end
  uv.run("nowait")
end

---------------------------------------------------------------------------
-- Jobs
---------------------------------------------------------------------------

-- A local client of the master, watched by the loop: a DEALER on the
-- master's local socket as brine.master.client makes it, but with no
-- receive high-water mark. This process also runs the swarm and may read
-- late, and the master drops a client whose queue is full from the job
-- it follows (2,000 returns behind with the default marks).
local function local_client(w, swarm)
  local conf = assert(daemon.load_config(w.mconf, "master"))
  local ctx = assert(zmq.context())
  local zsock = assert(ctx:socket("DEALER"))
  assert(zsock:setopt("maxmsgsize", wire.MAX_MESSAGE))
  assert(zsock:setopt("rcvhwm", 0))
  assert(zsock:connect("ipc://" .. conf.sock_dir .. "/master.ipc"))
  local state = { ctx = ctx, returns = 0, cachedir = conf.cachedir }
  state.sock = watch(zsock, function(_, frames)
    local msg = #frames == 1 and wire.decode(frames[1])
    if msg and msg.cmd == "published" then
      state.published, swarm.jid = posix.monotonic(), msg.jid
    elseif msg and msg.cmd == "return" and msg.jid == swarm.jid then
      state.returns = state.returns + 1
    elseif msg and msg.cmd == "error" then
      error("the master refused the job: " .. tostring(msg.message))
    end
  end)
  return state
end

-- One test.ping to '*' through the local socket. Returns seconds until
-- the master answered the publish, the last job reached the swarm, the
-- master stored the last return (its _ack reached the minion) and the
-- client had every return (`client` nil when it did not: `missing`).
local function ping(lc, swarm, parts, n)
  lc.returns, lc.published, swarm.jid, swarm.jobs_in = 0, nil, nil, 0
  local t0 = posix.monotonic()
  send(lc.sock, wire.encode(data.map({ { "cmd", "publish" }, { "tgt", "*" },
    { "tgt_type", "glob" }, { "fun", "test.ping" }, { "arg", data.array() },
    { "kwarg", data.map() }, { "follow", true } })))
  local own = #swarm.minions
  run_until(function()
    return swarm.jid and swarm.acks[swarm.jid] == own and parts:all_acked(swarm.jid)
  end, 60 + n / 100, function()
    local files = swarm.jid and posix.listdir(lc.cachedir .. "/jobs/" .. swarm.jid) or {}
    return string.format("test.ping to %d (jobs received here %d, returns acknowledged here"
      .. " %d of %d, returns in the master's job cache %d)", n, swarm.jobs_in,
      swarm.acks[swarm.jid or ""] or 0, own, math.max(0, #files - 1))
  end)
  local stored = math.max(swarm.last_ack_at, parts:all_acked(swarm.jid))
  pcall(run_until, function() return lc.returns == n end, 3, "returns at the client")
  return { published = lc.published - t0, delivered = swarm.last_job_at - t0,
    stored = stored - t0, client = lc.returns == n and posix.monotonic() - t0 or nil,
    missing = n - lc.returns }
end

-- The whole CLI: `brine -c CONF '*' test.ping --out=txt` (a line per
-- return, to a file), the swarm answering meanwhile. Returns its seconds
-- and the returns it printed.
local function cli_ping(w, n)
  local t0, finished, status = posix.monotonic(), false, nil
  local out_path = w.dir .. "/cli.out"
  local out = assert(uv.fs_open(out_path, "w", 384))
  local handle = uv.spawn(os.getenv("BRINE_BIN") or "brine", {
    args = { "-c", w.mconf, "-t", tostring(10 + n // 1000), "*", "test.ping", "--out=txt" },
    stdio = { nil, out, out },
  }, function(code) finished, status = true, code end)
  assert(handle, "cannot start the brine CLI")
  run_until(function() return finished end, 60 + n / 100, "brine '*' test.ping")
  local took = posix.monotonic() - t0
  handle:close()
  uv.fs_close(out)
  local printed = select(2, harness.read(out_path):gsub(": True\n", ""))
  return { took = took, printed = printed, status = status }
end

---------------------------------------------------------------------------
-- Figures
---------------------------------------------------------------------------

local function proc_kib(pid, field)
  return tonumber(harness.read("/proc/" .. pid .. "/status"):match(field .. ":%s+(%d+) kB"))
    or 0
end

local function median(values)
  local v = { table.unpack(values) }
  table.sort(v)
  return v[(#v + 1) // 2]
end

local function verdict(ok)
  return ok and "met" or "NOT met"
end

local function print_connect(n, c)
  print(string.format("  request links, %d opened            %8.2f s", n, c.request))
  if c.auth then
    print(string.format("    _auth by %d of them (%d keys on record) %.2f s: %.1f ms each, %.0f"
      .. " per second", c.sample, n, c.auth, c.auth * 1000 / c.sample, c.sample / c.auth))
  end
  print(string.format("  publish links and first hello      %8.2f s  (%d bytes each with the"
    .. " grains, %.1f KiB of Lua heap once decoded)", c.publish, c.hello_bytes, c.grains_kib))
end

local function column(runs, key)
  local out = {}
  for i, r in ipairs(runs) do
    out[i] = r[key]
  end
  return out
end

local function print_times(n, runs, cli)
  local stored = column(runs, "stored")
  print(string.format("  test.ping, every return acknowledged %7.3f s  median of %d (first"
    .. " %.3f s, best %.3f s)", median(stored), #runs, stored[1], math.min(table.unpack(stored))))
  print(string.format("    the master answered the publish at %.3f s; the last job reached"
    .. " the swarm at %.3f s", median(column(runs, "published")),
    median(column(runs, "delivered"))))
  local late = #column(runs, "client") < #runs
  if late then
    print(string.format("    the local client missed returns in %d of %d runs (at most %d):"
      .. " the master dropped it from the job (its queue was full)",
      #runs - #column(runs, "client"), #runs, math.max(table.unpack(column(runs, "missing")))))
  else
    print(string.format("    every return at the local client at %.3f s",
      median(column(runs, "client"))))
  end
  print(string.format("  brine '*' test.ping (whole CLI)     %8.3f s  (%d of %d returns"
    .. " printed, exit status %s)", cli.took, cli.printed, n, tostring(cli.status)))
  local goal = TARGETS[n]
  if goal then
    print(string.format("  target: %d minions under %.0f s: %s", n, goal,
      verdict(median(stored) < goal)))
  end
  print(string.format("  Salt's CLI to 50 minions takes %.1f s: %.1fx brine's CLI to %d",
    SALT_50_CLI, SALT_50_CLI / cli.took, n))
end

local function print_memory(n, mem)
  local per = (mem.connected - mem.empty) / n
  print(string.format("  master RSS: no minion %.1f MiB; %d keys %.1f MiB; request links"
    .. " %.1f MiB; connected and idle %.1f MiB", mem.empty / 1024, n, mem.keys / 1024,
    mem.request / 1024, mem.connected / 1024))
  print(string.format("  master memory per idle minion       %8.2f KiB  target under %d KiB:"
    .. " %s", per, TARGET_KIB, verdict(per < TARGET_KIB)))
  print(string.format("    key %.2f KiB, request link %.2f KiB, publish link with its hello"
    .. " and grains %.2f KiB", (mem.keys - mem.empty) / n, (mem.request - mem.keys) / n,
    (mem.connected - mem.request) / n))
  print(string.format("  the swarm's own RSS %.1f MiB (%.1f KiB per simulated minion)",
    mem.swarm / 1024, mem.swarm / n))
  io.stdout:flush()
end

local function print_traffic(n, jobs, tcp)
  local msgs, bytes = 0, 0
  for _, cmd in ipairs({ "job", "_return", "_ack" }) do
    local t = traffic[cmd] or { n = 0, bytes = 0 }
    msgs, bytes = msgs + t.n, bytes + t.bytes
    print(string.format("    %-8s %6.2f per minion per job, %6.1f bytes each", cmd,
      t.n / (n * jobs), t.n > 0 and t.bytes / t.n or 0))
  end
  local again = traffic._return_again
  if again then
    print(string.format("    _return sent again (no _ack within %d s): %d times", RESEND_S,
      again.n))
  end
  print(string.format("  wire per job (message payloads)     %8d messages, %d bytes"
    .. " (%.1f bytes per minion)", msgs // jobs, bytes // jobs, bytes / jobs / n))
  if tcp then
    print(string.format("  wire per job (TCP payload, ss)      %8d bytes (%.1f per minion),"
      .. " %d data segments; idle links' share (heartbeats, hellos) taken out", tcp.bytes,
      tcp.bytes / n, tcp.segs))
  else
    print("  wire per job (TCP payload): ss is not available")
  end
end

---------------------------------------------------------------------------
-- One size
---------------------------------------------------------------------------

-- The configuration folder of a minion: the options the swarm's
-- minions run jobs with.
local function minion_conf_dir(w)
  return w:minion_conf("swarm", "log_level: warning\n")
end

-- The master's key, fetched from its key port as a minion does first.
local function fetch_master_key(w)
  local ctx = assert(zmq.context())
  local sock = assert(ctx:socket("DEALER"))
  assert(sock:connect(wire.endpoint("127.0.0.1", w.ports[3])))
  assert(sock:send(wire.encode({ cmd = "master_key" })))
  local frames = harness.receive(sock, 5)
  sock:close()
  ctx:close()
  local msg = frames and wire.decode(frames[1])
  assert(msg and msg.pub, "the master's key port did not answer")
  return msg.pub
end

-- The TCP bytes of one job: links' totals before and after, less what
-- idle links carry in that time (measured over an idle second).
local function tcp_job_bytes(before, after, idle_rate)
  if not (before and after and idle_rate.bytes) then
    return nil
  end
  local dt = after.t - before.t
  return { bytes = math.floor(after.bytes - before.bytes - idle_rate.bytes * dt + 0.5),
    segs = math.floor(after.segs - before.segs - idle_rate.segs * dt + 0.5) }
end

-- Seconds of CPU a process has used (user and system, all threads).
local function cpu_seconds(pid)
  local stat = harness.read("/proc/" .. pid .. "/stat"):match("%b()(.*)") or ""
  local fields = {}
  for f in stat:gmatch("%S+") do
    fields[#fields + 1] = f
  end
  return ((tonumber(fields[12]) or 0) + (tonumber(fields[13]) or 0)) / 100 -- USER_HZ
end

-- Over an idle window: the TCP bytes per second idle links carry, and
-- the CPU the master and the swarm use (share of one core).
local function idle_costs(ports, master_pid, parts)
  local function swarm_cpu()
    return cpu_seconds("self") + select(2, parts:usage())
  end
  local a, cpu_m, cpu_s = tcp_totals(ports), cpu_seconds(master_pid), swarm_cpu()
  idle(IDLE_S)
  local b = tcp_totals(ports)
  local costs = { master_cpu = (cpu_seconds(master_pid) - cpu_m) / IDLE_S,
    swarm_cpu = (swarm_cpu() - cpu_s) / IDLE_S }
  if a and b then
    local dt = b.t - a.t
    costs.bytes, costs.segs = (b.bytes - a.bytes) / dt, (b.segs - a.segs) / dt
  end
  return costs
end

-- Starts the master at log level warning (its default: no line per
-- return) and waits for its local socket, the last one it binds.
local function start_master(w)
  local conf = assert(daemon.load_config(w.mconf, "master"))
  local _, log = w:spawn("master", "master -c " .. sh_quote(w.mconf))
  assert(w:wait(function() return posix.stat(conf.sock_dir .. "/master.ipc") end, 10),
    "the master did not start:\n" .. harness.read(log))
end

---------------------------------------------------------------------------
-- Parts: when N minions need more open files than one process may have
-- (4 per minion), the minions past the first slice run in other
-- processes, this script run with `--part`. They share the work through
-- files in the world's folder: part-K.keys (their key pairs), part-K.state
-- ("request", then "publish": their links are up), `publish` (the go for
-- publish links), part-K.acks (for each job, when its last _ack came, on
-- the monotonic clock all processes share) and part-K.traffic (their
-- message counts, written when they stop).
---------------------------------------------------------------------------

local Parts = {}
Parts.__index = Parts

local function write_file(path, text)
  local f = assert(io.open(path .. ".tmp1", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp1", path))
end

local function self_exe()
  return "/proc/" .. posix.getpid() .. "/exe"
end

-- Starts a part for each slice past the first; slices are lists of keys.
function Parts.start(w, slices, master_pub, minion_conf)
  local self = setmetatable({ dir = w.dir, list = {}, acked = {}, next_read = 0 }, Parts)
  local old = posix.umask(63)
  for k = 2, #slices do
    local lines = {}
    for i, key in ipairs(slices[k]) do
      lines[i] = key.id .. " " .. key.pub .. " " .. key.sec
    end
    write_file(self:path(k, "keys"), table.concat(lines, "\n") .. "\n")
    local part = { k = k, size = #slices[k] }
    local log = assert(uv.fs_open(self:path(k, "log"), "w", 384))
    part.handle, part.pid = uv.spawn(self_exe(), {
      args = { "lua", arg[0], "--part", w.dir, tostring(k), tostring(w.ports[1]),
        tostring(w.ports[2]), master_pub, minion_conf, tostring(posix.getpid()) },
      stdio = { nil, log, log },
    }, function(code) part.exited = code end)
    uv.fs_close(log)
    assert(part.handle, "cannot start part " .. k)
    self.list[#self.list + 1] = part
  end
  posix.umask(old)
  return self
end

function Parts:path(k, what)
  return string.format("%s/part-%d.%s", self.dir, k, what)
end

-- Raises when a part stopped early (its log says why).
function Parts:check()
  for _, part in ipairs(self.list) do
    if part.exited then
      error(string.format("swarm part %d stopped (status %s):\n%s", part.k,
        tostring(part.exited), harness.read(self:path(part.k, "log"))), 0)
    end
  end
end

-- True when every part reports `state` (or a later one).
function Parts:all_in(state)
  self:check()
  for _, part in ipairs(self.list) do
    local now = harness.read(self:path(part.k, "state"))
    if now ~= state and now ~= "publish" then
      return false
    end
  end
  return true
end

-- When every part had all its returns for jid acknowledged: the latest
-- of those times, or nil while one has not. Reads the files at most
-- every 10 ms.
function Parts:all_acked(jid)
  if #self.list == 0 then
    return 0
  end
  local now = posix.monotonic()
  if now >= self.next_read then
    self.next_read = now + 0.01
    self:check()
    for _, part in ipairs(self.list) do
      for line in harness.read(self:path(part.k, "acks")):gmatch("[^\n]+") do
        local j, t = line:match("^(%d+) (%S+)$")
        self.acked[part.k .. " " .. j] = tonumber(t)
      end
    end
  end
  local latest = 0
  for _, part in ipairs(self.list) do
    local t = self.acked[part.k .. " " .. jid]
    if not t then
      return nil
    end
    latest = math.max(latest, t)
  end
  return latest
end

-- RSS (KiB) and CPU seconds of the parts together.
function Parts:usage()
  local kib, cpu = 0, 0
  for _, part in ipairs(self.list) do
    kib = kib + proc_kib(part.pid, "VmRSS")
    cpu = cpu + cpu_seconds(part.pid)
  end
  return kib, cpu
end

-- Stops the parts and adds their message counts to `traffic`.
function Parts:stop()
  for _, part in ipairs(self.list) do
    if not part.exited then
      posix.kill(part.pid, "TERM")
    end
  end
  pcall(run_until, function()
    for _, part in ipairs(self.list) do
      if not part.exited then
        return false
      end
    end
    return true
  end, 30, "the parts stopping")
  for _, part in ipairs(self.list) do
    part.handle:close()
    for cmd, n, bytes in harness.read(self:path(part.k, "traffic")):gmatch("(%S+) (%d+) (%d+)") do
      local t = traffic[cmd] or { n = 0, bytes = 0 }
      traffic[cmd] = t
      t.n, t.bytes = t.n + tonumber(n), t.bytes + tonumber(bytes)
    end
  end
  self.list = {}
end

local function read_keys(path)
  local keys = {}
  for id, pub, sec in harness.read(path):gmatch("(%S+) (%S+) (%S+)\n") do
    keys[#keys + 1] = { id = id, pub = pub, sec = sec }
  end
  return keys
end

-- A part: `--part DIR K PUBLISH_PORT REQUEST_PORT MASTER_PUB MINION_CONF PARENT_PID`.
-- Runs until SIGTERM or until the process that started it is gone.
local function part_main(argv)
  local dir, k, parent = argv[2], tonumber(argv[3]), tonumber(argv[8])
  local paths = setmetatable({ dir = dir }, Parts)
  local swarm = Swarm.new(read_keys(paths:path(k, "keys")),
    { publish = tonumber(argv[4]), request = tonumber(argv[5]) }, argv[6],
    assert(daemon.load_config(argv[7], "minion")))
  local STOPPED = "stopped"
  local sig = uv.new_poll(posix.signals({ "TERM", "INT" }))
  sig:start("r", function()
    if next(posix.pending()) then
      failure = failure or STOPPED
    end
  end)
  local watchdog = uv.new_timer()
  watchdog:start(1000, 1000, function()
    if not harness.alive(parent) then
      failure = failure or STOPPED
    end
  end)
  local ok, err = pcall(function()
    swarm:open_request_links(0)
    write_file(paths:path(k, "state"), "request")
    run_until(function() return posix.stat(dir .. "/publish") end, 600, "the go")
    swarm:open_publish_links()
    write_file(paths:path(k, "state"), "publish")
    local acks = assert(io.open(paths:path(k, "acks"), "a"))
    swarm.on_all_acked = function(jid, t)
      acks:write(jid, " ", string.format("%.6f", t), "\n")
      acks:flush()
    end
    run_until(function() return false end, 1e9, "the end")
  end)
  local lines = {}
  for cmd, t in pairs(traffic) do
    lines[#lines + 1] = cmd .. " " .. t.n .. " " .. t.bytes
  end
  write_file(paths:path(k, "traffic"), table.concat(lines, "\n") .. "\n")
  sig:close()
  watchdog:close()
  swarm:close()
  if not ok and err ~= STOPPED then
    error(err, 0)
  end
end

---------------------------------------------------------------------------
-- One size
---------------------------------------------------------------------------

-- The master's links to established TCP connections on its port
-- (nil when ss is missing).
local function links_on(port)
  local t = tcp_totals({ port })
  return t and t.links
end

-- Connects the swarm in two steps (request links, then publish links),
-- measuring the master's RSS after each; fills mem, returns timings.
local function connect(w, swarm, parts, n, mem)
  local pid, c = w.pids.master, {}
  local t0 = posix.monotonic()
  c.sample = tonumber(os.getenv("BRINE_SWARM_AUTH")) or (n <= 1000 and n or 200)
  local _, auth = swarm:open_request_links(c.sample)
  c.auth, c.sample = auth, swarm.sample
  run_until(function() return parts:all_in("request") end, 120 + n / 20, "request links")
  c.request = posix.monotonic() - t0
  if links_on(w.ports[2]) then
    run_until(function() return links_on(w.ports[2]) >= n end, 60, "request links up")
  end
  idle(1)
  mem.request = proc_kib(pid, "VmRSS")
  t0 = posix.monotonic()
  write_file(w.dir .. "/publish", "go")
  swarm:open_publish_links()
  run_until(function() return parts:all_in("publish") end, 120 + n / 20, "publish links")
  c.publish = posix.monotonic() - t0
  c.hello_bytes = swarm.hello_bytes
  c.grains_kib = swarm:grains_heap()
  idle(2)
  mem.connected = proc_kib(pid, "VmRSS")
  mem.swarm = proc_kib(posix.getpid(), "VmRSS") + parts:usage()
  return c
end

-- test.ping rounds through the local socket, the TCP bytes of the first,
-- then one through the CLI.
local function pings(w, swarm, parts, n)
  local lc = local_client(w, swarm)
  traffic = {}
  local ports = { w.ports[1], w.ports[2] }
  local rate = idle_costs(ports, w.pids.master, parts)
  print(string.format("  CPU while idle: master %.0f%% of a core, the swarm %.0f%%",
    rate.master_cpu * 100, rate.swarm_cpu * 100))
  io.stdout:flush()
  local runs, tcp_before, tcp = {}, tcp_totals(ports), nil
  for i = 1, n >= 10000 and 3 or 5 do
    runs[i] = ping(lc, swarm, parts, n)
    if i == 1 then
      tcp = tcp_job_bytes(tcp_before, tcp_totals(ports), rate)
    end
  end
  local cli = cli_ping(w, n)
  unwatch(lc.sock)
  lc.ctx:close()
  return runs, cli, tcp
end

-- The keys cut into slices of at most `per_process`, as even as can be.
local function slices_of(keys, per_process)
  local pieces = math.ceil(#keys / per_process)
  local size = math.ceil(#keys / pieces)
  local out = {}
  for i, key in ipairs(keys) do
    local k = (i - 1) // size + 1
    out[k] = out[k] or {}
    out[k][#out[k] + 1] = key
  end
  return out
end

local function measure(w, n, per_process)
  start_master(w)
  local pid, mem = w.pids.master, {}
  local keys, master_pub = make_keys(n), fetch_master_key(w)
  local slices, minion_conf = slices_of(keys, per_process), minion_conf_dir(w)
  local opts = assert(daemon.load_config(minion_conf, "minion"))
  local swarm = Swarm.new(slices[1], { publish = w.ports[1], request = w.ports[2] },
    master_pub, opts)
  idle(0.5)
  mem.empty = proc_kib(pid, "VmRSS")
  accept_keys(w:master_pki(), keys)
  idle(1)
  mem.keys = proc_kib(pid, "VmRSS")
  local parts = Parts.start(w, slices, master_pub, minion_conf)
  return swarm, parts, mem
end

local function run_size(n, per_process)
  print(string.format("\n== %d minions", n))
  local w = harness.world("log_level: warning\ntimeout: 30\n"
    .. (MASTER_HEARTBEAT_MS and "heartbeat_ivl: " .. MASTER_HEARTBEAT_MS .. "\n" or ""))
  local swarm, parts, summary
  local ok, err = pcall(function()
    local mem
    swarm, parts, mem = measure(w, n, per_process)
    if #parts.list > 0 then
      print(string.format("  (the swarm runs in %d processes of at most %d minions: 4 open"
        .. " files per minion)", #parts.list + 1, per_process))
    end
    local c = connect(w, swarm, parts, n, mem)
    print_connect(n, c)
    print_memory(n, mem)
    local runs, cli, tcp = pings(w, swarm, parts, n)
    parts:stop()
    print_times(n, runs, cli)
    print(string.format("  master peak RSS (VmHWM)             %8.1f MiB",
      proc_kib(w.pids.master, "VmHWM") / 1024))
    print_traffic(n, #runs + 1, tcp)
    summary = { n = n, stored = median(column(runs, "stored")),
      per_kib = (mem.connected - mem.empty) / n }
  end)
  if parts then
    pcall(parts.stop, parts)
  end
  if swarm then
    swarm:close()
  end
  w:cleanup()
  if not ok then
    error(err, 0)
  end
  return summary
end

-- Turns SIGINT and SIGTERM into an error in the loop, so that the master
-- and the parts are stopped and the folder removed.
local function stop_on_signals()
  local poll = uv.new_poll(posix.signals({ "INT", "TERM" }))
  poll:start("r", function()
    if next(posix.pending()) then
      failure = failure or "interrupted by a signal"
    end
  end)
end

local function main(argv)
  if argv[1] == "--part" then
    return part_main(argv)
  end
  stop_on_signals()
  local ns = sizes(argv)
  raise_open_files(math.max(table.unpack(ns)), argv)
  local limit = open_files_limit()
  local per_process = math.min((limit - 1024) // FDS_PER_MINION,
    tonumber(os.getenv("BRINE_SWARM_PER_PROCESS")) or math.huge)
  local master_max = (limit - 256) // 2 // 100 * 100 -- two links per minion
  local p = io.popen("nproc")
  local cores = p:read("l")
  p:close()
  print(string.format("swarm: simulated minions against one master on 127.0.0.1; %s CPU"
    .. " core(s); open files limit %d", cores or "?", limit))
  local last
  for _, n in ipairs(ns) do
    if n > master_max then
      print(string.format("\nnote: %d minions need %d open files in the master (a file per"
        .. " link, two links per minion) and the limit is %d: measuring %d instead", n,
        2 * n + 256, limit, master_max))
      n = master_max
    end
    last = run_size(n, per_process)
  end
  print(string.format("\nSalt (measured here): CLI test.ping %.1f s to one minion, %.1f s to"
    .. " 50", SALT_1_CLI, SALT_50_CLI))
  print(string.format("%d minions: every return acknowledged in %.3f s, master %.1f KiB per idle"
    .. " minion", last.n, last.stored, last.per_kib))
end

main(arg or {})
