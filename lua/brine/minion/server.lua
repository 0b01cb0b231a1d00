-- The minion daemon: one loop that finds the master, authenticates, runs
-- the jobs it is sent in forked workers and returns their results.
--
-- Connecting goes through these states, each with a deadline:
--   idle      waiting out the reconnect back-off (exponential, with jitter)
--   keyfetch  asking the master's key port for its public key, checked against
--             the pinned key (pki_dir/minion_master.pub) or master_finger
--   auth      `_auth` on the request port; pending keys ask again after
--             acceptance_wait_time
--   pillar    once accepted, the minion asks for its pillar (`_pillar`) and
--             connects to the publish port when it has it (or, the first
--             time, after PILLAR_WAIT: jobs then see the `pillar:` option
--             until it arrives)
--   connected hello on the publish port every master_alive_interval; a master
--             that stops answering sends the minion back to idle
-- Every reconnect resolves the master's name again, falling back to the
-- last address that worked. Returns (cachedir/returns/JID) and events
-- (cachedir/events/NAME) are written to the outbox (brine.minion.outbox)
-- before they are sent and removed when the master acknowledges them;
-- cachedir/proc/JID records each running job.
local zmq = require("brine.zmq")
local posix = require("brine.posix")
local core = require("brine.core")
local data = require("brine.data")
local wire = require("brine.master.wire")
local keys = require("brine.keys")
local daemon = require("brine.master.daemon")
local outbox = require("brine.minion.outbox")
-- Required where they are used, so that an idle minion does not hold them:
-- brine.target (the first job targeted by id), brine.minion.job and the
-- module loader (in the forked worker only), brine.services (only when
-- services or engines are declared) and brine.grains.minion (each hello
-- that carries the grains).

local M = {}

local Minion = {}
Minion.__index = Minion

local RESEND_AFTER = 10    -- seconds before an unacknowledged message is sent again
local PILLAR_WAIT = 10     -- seconds the first connection waits for the pillar
local PILLAR_RESEND = 30   -- seconds before an unanswered pillar request is sent again

-- The message of a one-frame delivery, or nil and why not.
local function decode_one(frames)
  if #frames ~= 1 then
    return nil, #frames .. " frames where one was expected"
  end
  return wire.decode(frames[1])
end

function M.new(opts, log)
  return setmetatable({ opts = opts, log = log, state = "idle", attempt = 0,
    next_attempt = 0, workers = {}, running = true }, Minion)
end

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname")
  local name = f and f:read("l")
  if f then f:close() end
  return name or "localhost"
end

function Minion:path(name)
  return self.opts.cachedir .. "/" .. name
end

--- Loads keys, checks the id, prepares the folders and the return queue.
function Minion:start()
  local o = self.opts
  self.id = o.id or hostname()
  o._minion_pid = posix.getpid() -- saltutil.refresh_pillar in a worker signals it
  if (tonumber(o.ping_interval) or 0) > 0 then -- Salt's, in minutes
    o.master_alive_interval = math.min(o.master_alive_interval, o.ping_interval * 60)
  end
  local ok, why = keys.valid_id(self.id)
  if not ok then
    return nil, string.format("id '%s': %s", tostring(self.id), why)
  end
  local created
  self.pub, self.sec, created = keys.ensure_keypair(o.pki_dir, "minion")
  if not self.pub then
    return nil, self.sec
  end
  if created then
    self.log:info("made a new key pair, fingerprint %s", keys.fingerprint(self.pub))
  end
  for _, dir in ipairs({ o.cachedir, self:path("returns"), self:path("events"),
    self:path("proc") }) do
    ok, why = daemon.mkdirs(dir, 448)
    if not ok then
      return nil, why
    end
  end
  local last = posix.read(self:path("last_jid"), 64)
  self.last_jid = last and last:match("^(%d+)") or ""
  self:clean_proc()
  self.returns = outbox.new(self:path("returns"), wire.is_jid)
  self.events = outbox.new(self:path("events"), outbox.is_event_name)
  self:spool_start_events()
  self:start_services()
  self.ctx = assert(zmq.context())
  self.sigfd = posix.signals({ "TERM", "INT", "CHLD", "HUP", "USR1" })
  self.log:info("minion %s starting; %d return(s) and %d event(s) queued", self.id,
    self.returns:refresh(true), self.events:refresh(true))
  return true
end

-- Device services, before any socket or signal handler exists for their
-- supervisor to inherit. Without a `services` or `engines` option there is
-- nothing to start, and brine.services is not loaded.
function Minion:start_services()
  local o = self.opts
  if o.services == nil and o.engines == nil then
    return
  end
  local sv_ok, sv = pcall(function() return require("brine.services").start(o, self.log) end)
  if not sv_ok then self.log:error("services: %s", sv) end
  self.services = sv_ok and sv or nil
end

-- Salt's start events, sent to the master once this process is connected.
function Minion:spool_start_events()
  local text = string.format("Minion %s started at %s", self.id,
    os.date("%a %b %d %H:%M:%S %Y"))
  for _, tag in ipairs({ "minion_start", "salt/minion/" .. self.id .. "/start" }) do
    local ok, err = outbox.spool_event(self.opts.cachedir, self.id, tag, text)
    if not ok then
      self.log:warning("cannot queue the %s event: %s", tag, err)
    end
  end
end

---------------------------------------------------------------------------
-- Connecting
---------------------------------------------------------------------------

function Minion:close_sockets()
  for _, name in ipairs({ "keysock", "req", "pubsock", "monitor" }) do
    if self[name] then
      self[name]:close()
      self[name] = nil
    end
  end
end

--- The wait before reconnect attempt number `attempt` (0 for the first
--- retry), in milliseconds: recon_default doubled on every failed attempt
--- up to recon_max; with recon_randomize, a random point in the upper half
--- of that, so minions that lost the master together do not come back
--- together.
---@param attempt integer
---@param opts table recon_default, recon_max, recon_randomize
---@param random function|nil returns a float in [0, 1) (math.random)
---@return number milliseconds
function M.backoff(attempt, opts, random)
  local base = tonumber(opts.recon_default) or 1000
  local cap = math.max(tonumber(opts.recon_max) or 10000, base)
  local delay = math.min(base * 2 ^ math.min(attempt, 30), cap)
  if opts.recon_randomize ~= false then
    delay = delay * (0.5 + (random or math.random)() * 0.5)
  end
  return delay
end

--- Gives up on the current attempt and waits out the back-off; a minion
--- that loses an established connection also waits a random part of
--- random_reauth_delay seconds, so a fleet that loses its master at once
--- does not come back at once.
function Minion:fail(fmt, ...)
  self.log:warning(fmt, ...)
  self:close_sockets()
  local delay = M.backoff(self.attempt, self.opts)
  if self.state == "connected" then
    delay = delay + math.random() * (tonumber(self.opts.random_reauth_delay) or 0) * 1000
  end
  self.attempt = math.min(self.attempt + 1, 30)
  self.state = "idle"
  self.next_attempt = posix.monotonic() + delay / 1000
  self.log:debug("reconnecting in %.2f s", delay / 1000)
end

-- The master's address: its name resolved now, else the last address a
-- connection worked with (kept in cachedir/master_addr, so a minion
-- restarted while DNS is down finds its master too).
function Minion:resolve()
  local addrs, err = posix.resolve(self.opts.master)
  if addrs and addrs[1] then
    self.addr = addrs[1]
    return self.addr
  end
  local last = self.good_addr or (posix.read(self:path("master_addr"), 256) or ""):match("%S+")
  if last then
    self.log:warning("%s; using the last address that worked, %s", err or "no address", last)
    self.addr = last
    return last
  end
  return nil, err or ("no address for " .. self.opts.master)
end

function Minion:socket(kind)
  local sock = assert(self.ctx:socket("DEALER"))
  wire.common_options(sock, self.opts)
  assert(sock:setopt("reconnect_ivl", self.opts.recon_default))
  assert(sock:setopt("reconnect_ivl_max", math.max(self.opts.recon_max, self.opts.recon_default)))
  if kind ~= "key_port" then
    wire.curve_client(sock, self.pub, self.sec, self.master_pub)
  end
  local port = kind == "ret_port" and self.opts.master_port or self.opts[kind]
  assert(sock:connect(wire.endpoint(self.addr, port)))
  return sock
end

function Minion:send(sock, msg)
  return sock:send(wire.encode(msg), { dontwait = true })
end

function Minion:begin_attempt()
  local addr, err = self:resolve()
  if not addr then
    return self:fail("cannot find the master: %s", err)
  end
  self.master_pub = keys.read_key(self.opts.pki_dir .. "/minion_master.pub")
  self.keysock = self:socket("key_port")
  self:send(self.keysock, { cmd = "master_key" })
  self.state = "keyfetch"
  self.deadline = posix.monotonic() + self.opts.auth_timeout
end

local function same_finger(a, b)
  local function norm(s) return tostring(s):lower():gsub("[^%x]", "") end
  return norm(a) == norm(b)
end

-- Checks the key the master offers against the pin; true to go on.
function Minion:check_master_key(offered)
  local pinned_path = self.opts.pki_dir .. "/minion_master.pub"
  local finger = keys.fingerprint(offered)
  if self.opts.master_finger and not same_finger(self.opts.master_finger, finger) then
    self.log:error("the master at %s offers a key with fingerprint %s, not master_finger %s;"
      .. " refusing it", self.addr, finger, self.opts.master_finger)
    return false
  end
  if self.master_pub and self.master_pub ~= offered then
    self.log:error("the master at %s offers key %s, which is not the pinned master key %s"
      .. " (%s); refusing it. If the master's key was changed on purpose, delete that"
      .. " file on this minion", self.addr, finger, keys.fingerprint(self.master_pub),
      pinned_path)
    return false
  end
  if not self.master_pub then
    local ok, err = posix.write_atomic(pinned_path, offered .. "\n", 384)
    if not ok then
      self.log:error("cannot pin the master key: %s", err)
      return false
    end
    self.log:info("pinned the master's key, fingerprint %s", finger)
    self.master_pub = offered
  end
  return true
end

function Minion:send_auth()
  self:send(self.req, { cmd = "_auth", id = self.id, pub = self.pub })
  self.deadline = posix.monotonic() + self.opts.auth_timeout
  self.state = "auth"
end

function Minion:start_auth()
  if self.keysock then
    self.keysock:close()
    self.keysock = nil
  end
  if not self.master_pub then
    return self:fail("the master at %s did not send its key", self.addr)
  end
  self.req = self:socket("ret_port")
  self.accept_wait = self.opts.acceptance_wait_time
  self:send_auth()
end

function Minion:on_key_reply()
  local frames = self.keysock:recv({ dontwait = true, max_frames = 2 })
  local msg = frames and #frames == 1 and wire.decode(frames[1])
  local offered = msg and wire.str(msg, "pub", 40)
  if not offered or not zmq.z85_decode(offered) or #offered ~= 40 then
    return self:fail("the master at %s sent a bad key message", self.addr)
  end
  if not self:check_master_key(offered) then
    return self:fail("not connecting to the master at %s", self.addr)
  end
  self:start_auth()
end

function Minion:on_auth_reply(msg)
  local ret = msg.ret
  if ret == "accepted" then
    self.log:info("authenticated with the master at %s", self.addr)
    if self.good_addr ~= self.addr then
      self.good_addr = self.addr
      posix.write_atomic(self:path("master_addr"), self.addr .. "\n")
    end
    if self.has_pillar then -- a reconnect: the pillar did not change by it
      self:connect_publish()
    else
      self:request_pillar()
      self.state = "pillar"
      self.deadline = posix.monotonic() + PILLAR_WAIT
    end
  elseif ret == "pending" then
    self.log:warning("the master has not accepted this minion's key yet (fingerprint %s);"
      .. " asking again in %s s", keys.fingerprint(self.pub), self.accept_wait)
    self.state = "auth_wait"
    self.deadline = posix.monotonic() + self.accept_wait
    local max = self.opts.acceptance_wait_time_max
    if max and max > 0 then
      self.accept_wait = math.min(self.accept_wait + self.opts.acceptance_wait_time, max)
    end
  else
    self:fail("the master %s this minion's key", ret == "denied" and "denied" or "rejected")
  end
end

function Minion:connect_publish()
  self.pubsock = self:socket("publish_port")
  self:watch_handshakes(self.pubsock)
  self.state = "connected"
  self.lost_at = nil
  self.attempt = 0
  self.alive = posix.monotonic()
  self:hello(true)
  self:resend_all()
  core.trim_memory() -- start-up and connecting done: the minion goes idle
end

---------------------------------------------------------------------------
-- Pillar
---------------------------------------------------------------------------

--- Asks the master for this minion's pillar (at the first authentication
--- of this process, and when a job's saltutil.refresh_pillar signals USR1),
--- with the grains and environments the master compiles it for.
function Minion:request_pillar()
  local msg = { cmd = "_pillar", id = self.id, grains = self:grains() }
  for _, key in ipairs({ "saltenv", "pillarenv" }) do
    if type(self.opts[key]) == "string" then
      msg[key] = self.opts[key]
    end
  end
  self:send(self.req, msg)
  self.pillar_due = posix.monotonic() + PILLAR_RESEND
end

--- The master's answer: the pillar every later job sees (workers are forked
--- from this process and read opts.pillar), also written to
--- cachedir/pillar (0600) so that a waiting saltutil.refresh_pillar sees it
--- arrive.
function Minion:on_pillar(msg)
  if data.kind(msg.pillar) ~= "map" then
    return self.log:warning("a pillar message without a pillar dropped")
  end
  self.opts.pillar = msg.pillar
  self.has_pillar, self.pillar_due = true, nil
  local ok, err = posix.write_atomic(self:path("pillar"), wire.encode(msg.pillar), 384)
  if not ok then
    self.log:warning("cannot keep the pillar in the cache: %s", err)
  end
  self.log:info("pillar received from the master")
  if self.state == "pillar" then
    self:connect_publish()
  end
end

---------------------------------------------------------------------------
-- Connected
---------------------------------------------------------------------------

-- The grains the master keeps for targeting: the minion's whole grains as
-- its jobs see them (core, custom _grains modules, the static file, the
-- grains: option), with problems logged and skipped.
function Minion:grains()
  local ok, value, problems = pcall(function()
    return require("brine.grains.minion").load(self.opts)
  end)
  if ok and type(value) == "table" then
    for _, problem in ipairs(problems or {}) do
      self.log:error("grains: %s", problem)
    end
    value.id = self.id
    return value
  end
  self.log:error("grains: %s", tostring(value))
  return data.map({ { "id", self.id } })
end

local HANDSHAKE_SUCCEEDED = 0x1000
local DISCONNECTED = 0x0200
local monitors = 0

-- Follows the publish socket's CURVE handshakes: ZeroMQ reconnects by
-- itself when the link or the master comes back, and a hello right then
-- makes a restarted master know this minion at once (and resends the
-- returns it has not acknowledged) instead of at the next hello.
function Minion:watch_handshakes(sock)
  monitors = monitors + 1
  local endpoint = string.format("inproc://minion-monitor-%d", monitors)
  assert(sock:monitor(endpoint, HANDSHAKE_SUCCEEDED | DISCONNECTED))
  self.monitor = assert(self.ctx:socket("PAIR"))
  assert(self.monitor:connect(endpoint))
  self.handshakes = 0
end

function Minion:on_monitor()
  local frames = self.monitor:recv({ dontwait = true, max_frames = 2 })
  if not frames or #frames[1] < 2 then
    return
  end
  local event = string.unpack("<I2", frames[1])
  if event == DISCONNECTED and self.state == "connected" then
    -- ZeroMQ reconnects by itself, except after a protocol error (such as
    -- an oversized message): the timers reconnect if it does not
    self.log:warning("the link to the master closed")
    self.lost_at = posix.monotonic()
  elseif event == HANDSHAKE_SUCCEEDED and self.state == "connected" then
    self.lost_at = nil
    self.handshakes = self.handshakes + 1
    if self.handshakes > 1 then
      self.log:info("the link to the master is back")
      self:hello(true)
      self:resend_all()
    end
  end
end

--- Says hello on the publish port. The grains go with the first hello of
--- a link (`with_grains`) only: a periodic hello is a few bytes, which
--- matters on a metered link.
function Minion:hello(with_grains)
  self.next_hello = posix.monotonic() + self.opts.master_alive_interval
  local msg = { cmd = "hello", id = self.id }
  if with_grains then
    msg.grains = self:grains()
  end
  self:send(self.pubsock, msg)
end

-- Sends what waits in the outboxes (returns first), as far as the window
-- allows.
function Minion:pump()
  if self.state ~= "connected" then
    return
  end
  local now = posix.monotonic()
  local resend = math.max(1, math.min(RESEND_AFTER, 2 * self.opts.master_alive_interval))
  local function send(bytes)
    return self.req:send(bytes, { dontwait = true })
  end
  self.returns:pump(send, now, resend)
  self.events:pump(send, now, resend)
end

-- A new link: everything not acknowledged is sent again.
function Minion:resend_all()
  self.returns:reset()
  self.events:reset()
  self:pump()
end

function Minion:on_ack(msg)
  if wire.is_jid(msg.jid) and self.returns:ack(msg.jid) then
    self.log:debug("job %s: return acknowledged", msg.jid)
    posix.unlink(self:path("proc/" .. msg.jid)) -- a job of an earlier minion process
  elseif type(msg.event) == "string" and self.events:ack(msg.event) then
    self.log:debug("event %s acknowledged", msg.event)
  end
  self:pump()
end

-- The next message on sock (the port `name`), decoded; nil when there is
-- none or it is malformed (logged and dropped).
function Minion:receive(sock, name)
  local frames, err = sock:recv({ dontwait = true, max_frames = 2 })
  if not frames then
    return self.log:debug("%s: %s", name, err)
  end
  local msg
  msg, err = decode_one(frames)
  if not msg then
    return self.log:warning("bad message from the master dropped: %s", err)
  end
  return msg
end

function Minion:on_request_port()
  local msg = self:receive(self.req, "request port")
  if not msg then
    return
  end
  if msg.cmd == "_auth" and (self.state == "auth" or self.state == "auth_wait") then
    self:on_auth_reply(msg)
  elseif msg.cmd == "_ack" then
    self:on_ack(msg)
  elseif msg.cmd == "_pillar" then
    self:on_pillar(msg)
  end
end

local ID_TYPES = { glob = true, pcre = true, list = true }

-- Checks a job before anything runs: its fields, that it is newer than
-- every job run before (a replayed publish is not run twice) and that its
-- target names this minion.
function Minion:check_job(msg)
  local jid = msg.jid
  if not wire.is_jid(jid) or type(msg.fun) ~= "string" or #msg.fun > 256 then
    return nil, "malformed job from the master dropped"
  end
  if jid <= self.last_jid then
    return nil, string.format("job %s is not newer than the last job run (%s): replayed or"
      .. " stale, not run", jid, self.last_jid)
  end
  local tgt_type = msg.tgt_type
  if ID_TYPES[tgt_type] and not require("brine.target").match(msg.tgt, tgt_type, self.id) then
    return nil, string.format("job %s does not target this minion", jid)
  end
  return true
end

function Minion:on_publish_port()
  local msg = self:receive(self.pubsock, "publish port")
  if not msg then
    return
  end
  self.alive = posix.monotonic()
  if msg.cmd == "hello" then
    return
  elseif msg.cmd ~= "job" then
    return self.log:warning("unknown message '%s' from the master dropped", msg.cmd)
  end
  self.log:debug("job %s received", tostring(msg.jid))
  local ok, err = self:check_job(msg)
  if not ok then
    return self.log:warning("%s", err)
  end
  self.last_jid = msg.jid
  posix.write_atomic(self:path("last_jid"), msg.jid .. "\n")
  self:spawn(msg)
end

---------------------------------------------------------------------------
-- Workers
---------------------------------------------------------------------------

function Minion:spawn(msg)
  local pid, err = posix.fork()
  if not pid then
    return self:finish(msg.jid, msg.fun, "could not start a worker: " .. err)
  end
  if pid == 0 then
    posix.setsid() -- its own process group: saltutil.signal_job reaches its children too
    local ok = pcall(function()
      local ret = require("brine.minion.job").run(msg, self.id, self.opts)
      local packed, bytes = pcall(wire.encode, ret)
      if not packed then
        bytes = wire.encode(self:error_return(msg.jid, msg.fun,
          "the result cannot be sent: " .. tostring(bytes)))
      end
      posix.write_atomic(self:path("returns/" .. msg.jid), bytes)
    end)
    posix._exit(ok and 0 or 1)
  end
  self.workers[pid] = { jid = msg.jid, fun = msg.fun, started = posix.monotonic() }
  posix.write_atomic(self:path("proc/" .. msg.jid), wire.encode(data.map({
    { "jid", msg.jid }, { "fun", msg.fun }, { "arg", msg.arg }, { "tgt", msg.tgt },
    { "tgt_type", msg.tgt_type }, { "user", msg.user }, { "pid", pid } })), 384, false)
  self.log:info("job %s: %s started in worker %d", msg.jid, msg.fun, pid)
end

-- A `_return` message for a job that produced no result of its own.
function Minion:error_return(jid, fun, problem)
  return data.map({ { "cmd", "_return" }, { "id", self.id }, { "jid", jid },
    { "fun", fun }, { "return", problem }, { "retcode", 1 }, { "success", false } })
end

-- Forgets the records of jobs whose worker is gone: a minion that was
-- restarted keeps those of jobs still running (their workers outlive it).
function Minion:clean_proc()
  for _, jid in ipairs(posix.listdir(self:path("proc")) or {}) do
    local bytes = posix.read(self:path("proc/" .. jid), 64 * 1024)
    local ok, rec = pcall(wire.msgpack.unpack, bytes or "")
    local pid = ok and type(rec) == "table" and math.tointeger(rec.pid)
    if not pid or not posix.kill(pid, 0) then
      posix.unlink(self:path("proc/" .. jid))
    end
  end
end

-- Queues the return of a finished job; writes an error return when the
-- worker left none (it crashed or was killed).
function Minion:finish(jid, fun, problem)
  local path = self:path("returns/" .. jid)
  if problem or not posix.stat(path) then
    posix.write_atomic(path, wire.encode(self:error_return(jid, fun,
      problem or "the worker ended without a result")))
  end
  posix.unlink(self:path("proc/" .. jid))
  self.returns:add(jid)
  self:pump()
end

function Minion:reap()
  while true do
    local pid, how, code = posix.waitpid(-1, true)
    if not pid then
      return
    end
    local w = self.workers[pid]
    if w then
      self.workers[pid] = nil
      local problem
      if w.timed_out then
        problem = string.format("job timed out after %s s", self.opts.job_timeout)
      elseif how == "killed" then
        problem = "the worker was killed by signal " .. code
      end
      self:finish(w.jid, w.fun, problem)
    end
  end
end

function Minion:check_workers(now)
  for pid, w in pairs(self.workers) do
    if not w.timed_out and now - w.started > self.opts.job_timeout then
      self.log:warning("job %s: timed out, killing worker %d", w.jid, pid)
      w.timed_out = true
      posix.kill(pid, "KILL")
    end
  end
end

---------------------------------------------------------------------------
-- The loop
---------------------------------------------------------------------------

function Minion:timers(now)
  local s = self.state
  if s == "idle" and now >= self.next_attempt then
    self:begin_attempt()
  elseif s == "keyfetch" and now >= self.deadline then
    if self.master_pub then
      self.log:debug("no answer on the key port; using the pinned key")
      self:start_auth()
    else
      self:fail("no answer from the master at %s (key port %d)", self.addr, self.opts.key_port)
    end
  elseif s == "auth" and now >= self.deadline then
    self:fail("no answer from the master at %s to authentication (master down, or this"
      .. " minion's key rejected or denied)", self.addr)
  elseif s == "auth_wait" and now >= self.deadline then
    self:send_auth()
  elseif s == "pillar" and now >= self.deadline then
    self.log:warning("no pillar from the master within %d s; jobs see the pillar option"
      .. " until it arrives", PILLAR_WAIT)
    self:connect_publish()
  elseif s == "connected" then
    local interval = self.opts.master_alive_interval
    if now - self.alive > 3 * interval + self.opts.auth_timeout then
      self:fail("the master at %s stopped answering", self.addr)
    elseif self.lost_at and now - self.lost_at > self.opts.auth_timeout
        + self.opts.recon_max / 1000 then
      self:fail("the link to the master at %s did not come back", self.addr)
    elseif self.pillar_due and now >= self.pillar_due then
      self:request_pillar()
    elseif now >= self.next_hello then
      self:hello()
      self.returns:refresh(true)
      self.events:refresh(true)
      self:pump()
      core.trim_memory() -- what the jobs since the last hello left behind
    elseif self.events:refresh() > 0 then
      self:pump()
    end
  end
end

local SOCKETS = { { "keysock", "on_key_reply" }, { "req", "on_request_port" },
  { "pubsock", "on_publish_port" }, { "monitor", "on_monitor" } }

function Minion:step(timeout_ms)
  local items, names = { self.sigfd }, { false }
  for _, entry in ipairs(SOCKETS) do
    if self[entry[1]] then
      items[#items + 1], names[#names + 1] = self[entry[1]], entry
    end
  end
  local ready = zmq.poll(items, timeout_ms) or {}
  for i = 2, #items do
    -- a handler may close or replace sockets: call only those still current
    local name, handler = names[i][1], names[i][2]
    if ready[i] and self[name] == items[i] then
      local ok, err = xpcall(self[handler], debug.traceback, self)
      if not ok then
        self.log:error("%s", err)
      end
    end
  end
  local signals = posix.pending()
  if signals.HUP then
    daemon.reload(self.opts, "minion", self.log)
  end
  if signals.USR1 then
    self.pillar_due = 0 -- asked again as soon as the minion is connected
  end
  if signals.TERM or signals.INT then
    self.log:info("minion stopping")
    self.running = false
  end
  self:reap()
  local now = posix.monotonic()
  self:check_workers(now)
  self:timers(now)
end

function Minion:run()
  while self.running do
    self:step(100)
  end
end

--- Stops the minion. Jobs still running are left to finish, as Salt's
--- are: a job that restarts the minion (an upgrade of brine itself) is
--- not killed by it, and its worker writes its return to the outbox,
--- which the next minion process sends.
function Minion:stop()
  if self.services then
    pcall(function() require("brine.services").stop(self.services) end)
  end
  local running = 0
  for _ in pairs(self.workers) do
    running = running + 1
  end
  if running > 0 then
    self.log:info("%d job(s) still running; the next minion process sends their returns",
      running)
  end
  self:close_sockets()
  if self.ctx then
    self.ctx:close()
  end
end

return M
