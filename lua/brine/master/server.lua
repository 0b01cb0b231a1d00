-- The master daemon: one loop over its sockets.
--   request port (ROUTER, CURVE)   minions authenticate (`_auth`) and return results
--   publish port (ROUTER, CURVE)   each job goes only to the connections of the
--                                  minions it targets
--   key port (ROUTER, no crypto)   hands out the master's public key, nothing else,
--                                  so a new minion can pin it
--   local socket (ipc:// in sock_dir, 0700)  the CLI publishes jobs and follows returns
--   ZAP (inproc://zeromq.zap.01)   decides which CURVE keys may connect
-- Owns the key index, the table of connected minions, the active jobs,
-- the job cache (cachedir/jobs/JID/, read by brine.master.jobs), the jobs
-- held for minions that are away (brine.master.held) and the event bus
-- (brine.master.events), and each minion's pillar, compiled in forked
-- workers and cached for pillar targets (brine.master.pillars). Every
-- received message is decoded under limits; a bad one is logged and dropped.
-- docs/protocol.md describes the wire.
local zmq = require("brine.zmq")
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")
local keys = require("brine.keys")
local target = require("brine.target")
local daemon = require("brine.master.daemon")
local jobs = require("brine.master.jobs")
local events = require("brine.master.events")
local held = require("brine.master.held")
local pillars = require("brine.master.pillars")

local M = {}

local Master = {}
Master.__index = Master

local MAX_GRAINS = 64 * 1024
local DISCONNECTED = 0x0200 -- ZMQ_EVENT_DISCONNECTED
local ZMQ_POLLIN = 1
local BURST = 256
local SYNC_ONE_BY_ONE = 8 -- staged returns flushed file by file, not syncfs

--- Creates the master from its options; nothing is bound yet.
function M.new(opts, log)
  return setmetatable({
    opts = opts, log = log, conns = {}, jobs = {}, index = { by_key = {}, accepted = {} },
    staged = {},
    next_scan = 0, stamp = nil, running = true,
  }, Master)
end

---------------------------------------------------------------------------
-- Setup
---------------------------------------------------------------------------

function Master:bind(sock, endpoint)
  local ok, err = sock:bind(endpoint)
  if not ok then
    return nil, err
  end
  return sock:getopt("last_endpoint")
end

local function network_socket(self, kind, domain)
  local sock = assert(self.ctx:socket("ROUTER"))
  wire.common_options(sock, self.opts)
  assert(sock:setopt("router_mandatory", 1))
  assert(sock:setopt("router_handover", 1))
  if domain then
    wire.curve_server(sock, self.pub, self.sec, domain)
  end
  local ep, err = self:bind(sock, wire.endpoint(self.opts.interface,
    self.opts[kind]))
  if not ep then
    return nil, string.format("%s %d: %s", kind, self.opts[kind], err)
  end
  return sock, ep
end

-- Keys, the key index and the folders (0700).
function Master:prepare_files()
  local o = self.opts
  local err
  self.pub, self.sec = keys.ensure_keypair(o.pki_dir, "master")
  if not self.pub then
    return nil, self.sec
  end
  self.store, err = keys.open(o.pki_dir)
  if not self.store then
    return nil, err
  end
  for _, dir in ipairs({ o.cachedir, o.cachedir .. "/jobs", o.sock_dir }) do
    local ok, e = daemon.mkdirs(dir, 448)
    if not ok then
      return nil, e
    end
  end
  posix.chmod(o.sock_dir, 448)
  self:scan_keys(true)
  self.cache = jobs.open(o)
  self.held = held.new(o, self.log)
  self.pillars = pillars.new(o, self.log)
  self.last_jid = posix.read(o.cachedir .. "/last_jid", 64)
  self.last_jid = self.last_jid and self.last_jid:match("^(%d+)") or nil
  return true
end

-- The local socket: made under umask 077 in the 0700 sock_dir, so only
-- the master's user reaches it.
function Master:bind_local()
  self.local_path = self.opts.sock_dir .. "/master.ipc"
  posix.unlink(self.local_path)
  self.localsock = assert(self.ctx:socket("ROUTER"))
  assert(self.localsock:setopt("router_mandatory", 1))
  -- a client following a job to a whole fleet gets one message per return:
  -- room for every return of a large fleet's job, so none is dropped
  assert(self.localsock:setopt("sndhwm", 200000))
  self.bus = events.new(self.localsock, self.log)
  local old = posix.umask(63)
  local ok, err = self.localsock:bind("ipc://" .. self.local_path)
  posix.umask(old)
  return ok, err
end

--- Makes keys and folders, binds every socket. Returns true or nil, err.
function Master:start()
  local ok, err = self:prepare_files()
  if not ok then
    return nil, err
  end
  self.ctx = assert(zmq.context())
  self.zap = assert(self.ctx:socket("REP"))
  assert(self.zap:bind("inproc://zeromq.zap.01"))
  self.req, err = network_socket(self, "ret_port", wire.DOMAIN_REQUEST)
  if not self.req then return nil, err end
  self.pubsock, err = network_socket(self, "publish_port", wire.DOMAIN_PUBLISH)
  if not self.pubsock then return nil, err end
  self.keysock, err = network_socket(self, "key_port", nil)
  if not self.keysock then return nil, err end
  assert(self.pubsock:monitor("inproc://master-publish-monitor", DISCONNECTED))
  self.monitor = assert(self.ctx:socket("PAIR"))
  assert(self.monitor:connect("inproc://master-publish-monitor"))
  ok, err = self:bind_local()
  if not ok then
    return nil, err
  end
  self.sigfd = posix.signals({ "TERM", "INT", "HUP", "CHLD" })
  self.log:info("master listening: publish %s, request %s, key %s",
    self.pubsock:getopt("last_endpoint"), self.req:getopt("last_endpoint"),
    self.keysock:getopt("last_endpoint"))
  return true
end

---------------------------------------------------------------------------
-- Keys
---------------------------------------------------------------------------

--- Re-reads the key folders when they changed; forgets connections (and
--- cached pillars) of minions whose key is no longer accepted.
function Master:scan_keys(force)
  local stamp = self.store:stamp()
  if not force and stamp == self.stamp then
    return
  end
  self.stamp = stamp
  local old = self.index
  self.index = self.store:index()
  if self.bus then
    for _, change in ipairs(events.key_changes(old, self.index)) do
      self.bus:fire("salt/key", data.map({ { "id", change.id }, { "act", change.act },
        { "result", true } }))
    end
  end
  for id in pairs(old.accepted or {}) do
    if self.pillars and not self.index.accepted[id] then
      self.pillars:forget(id)
    end
  end
  for id, conn in pairs(self.conns) do
    if self.index.accepted[id] ~= conn.key then
      self.log:info("minion %s: key no longer accepted, dropping its connection", id)
      self.conns[id] = nil
    end
  end
end

-- ZAP: accepted keys get in with their key as User-Id; on the request
-- port, keys that are not on record (or pending) get in too, so they can
-- send `_auth`; rejected and denied keys get nothing.
function Master:handle_zap()
  local frames = self.zap:recv({ dontwait = true })
  if not frames then
    return
  end
  local version, request_id, domain = frames[1], frames[2] or "", frames[3]
  local mechanism, key = frames[6], frames[7]
  local status, text, user = "400", "denied", ""
  if version == "1.0" and mechanism == "CURVE" and key and #key == 32 then
    local z85 = zmq.z85_encode(key)
    local rec = self.index.by_key[z85]
    local state = rec and rec.state
    if state == "accepted" or (domain == wire.DOMAIN_REQUEST and
        (state == nil or state == "pending")) then
      status, text, user = "200", "OK", z85
    else
      self.log:debug("refused a %s connection from %s (key %s)", domain, frames[4] or "?",
        state or "unknown")
    end
  end
  self.zap:send({ "1.0", request_id, status, text, user, "" })
end

---------------------------------------------------------------------------
-- Jobs
---------------------------------------------------------------------------

function Master:job_dir(jid)
  return self.opts.cachedir .. "/jobs/" .. jid
end

function Master:connected(id)
  local conn = self.conns[id]
  return conn ~= nil and self.index.accepted[id] == conn.key
end

--- Resolves a target against the accepted keys (and the grains and pillar
--- known of them).
function Master:resolve(tgt, tgt_type)
  local ids = {}
  for id in pairs(self.index.accepted) do
    ids[#ids + 1] = id
  end
  table.sort(ids)
  if not target.needs_grains(tgt, tgt_type) then
    return target.select(tgt, tgt_type, ids)
  end
  return target.select(tgt, tgt_type, ids, function(id)
    return self:grains(id)
  end, function(id)
    return self.pillars:get(id)
  end)
end

--- The grains connected minion id sent last (with its hello or a pillar
--- request), or nil. A connection keeps the packed message that carried
--- them, a tenth of the memory of the decoded tables, and they are decoded
--- here, only for the targets and pillar compiles that need them.
function Master:grains(id)
  local conn = self.conns[id]
  local msg = conn and conn.grains_msg and wire.decode(conn.grains_msg)
  return msg and data.kind(msg.grains) == "map" and msg.grains or nil
end

-- Checks a request's target; returns tgt, tgt_type or nil, message.
local function check_target(req)
  local tgt = req.tgt
  local tgt_type = wire.str(req, "tgt_type", 32) or "glob"
  if not target.TYPES[tgt_type] then
    return nil, "unknown target type '" .. tgt_type .. "'"
  end
  if type(tgt) ~= "string" and data.kind(tgt) ~= "array" then
    return nil, "a target is a string or a list"
  end
  return tgt, tgt_type
end

--- The minions a request's target names (accepted keys; grains of the
--- connected ones), after nodegroups are expanded. Returns the sorted
--- ids, or nil and a message.
function Master:targets(req)
  local tgt, tgt_type = check_target(req)
  if not tgt then
    return nil, tgt_type
  end
  local expanded, how = target.expand_nodegroups(tgt, tgt_type, self.opts.nodegroups)
  if not expanded then
    return nil, how
  end
  return self:resolve(expanded, how)
end

-- The targeted minions that are not connected now.
function Master:not_connected(minions)
  local down = data.array()
  for _, id in ipairs(minions) do
    if not self:connected(id) then
      down[#down + 1] = id
    end
  end
  return down
end

--- Publishes a job; returns the job record or nil, message.
function Master:publish(req)
  local fun = wire.str(req, "fun", 256)
  if not fun or not fun:match("^[%w_]+%.[%w_.]+$") then
    return nil, "a function is named module.function"
  end
  local minions, err = self:targets(req)
  if not minions then
    return nil, err
  end
  local tgt, tgt_type = req.tgt, req.tgt_type or "glob"
  local jid = wire.new_jid(self.last_jid)
  self.last_jid = jid
  posix.write_atomic(self.opts.cachedir .. "/last_jid", jid .. "\n")
  local hold = self.held:expiry(req)
  local job = { jid = jid, fun = fun, minions = minions, returned = {}, clients = {},
    started = posix.monotonic(), held = hold ~= nil }
  local arg = data.kind(req.arg) == "array" and req.arg or data.array()
  local kwarg = data.kind(req.kwarg) == "map" and req.kwarg or data.map()
  local load = data.map({ { "cmd", "job" }, { "jid", jid }, { "fun", fun }, { "arg", arg },
    { "kwarg", kwarg }, { "tgt", tgt }, { "tgt_type", tgt_type }, { "user", "root" } })
  local dir = self:job_dir(jid)
  posix.mkdir(dir, 448)
  local record = data.map({ { "jid", jid }, { "fun", fun }, { "arg", arg }, { "kwarg", kwarg },
    { "tgt", tgt }, { "tgt_type", tgt_type }, { "minions", data.array(minions) },
    { "start", posix.time() } })
  record.held_until = hold
  posix.write_atomic(dir .. "/.load", wire.encode(record))
  local payload = wire.encode(load)
  if hold then
    self.held:hold(minions, jid, payload, hold)
  end
  for _, id in ipairs(minions) do
    self:send_job(id, payload)
  end
  self.jobs[jid] = job
  self.bus:fire("salt/job/" .. jid .. "/new", data.map({ { "jid", jid }, { "tgt", tgt },
    { "tgt_type", tgt_type }, { "minions", data.array(minions) }, { "fun", fun },
    { "arg", arg }, { "user", "root" } }))
  self.log:info("job %s: %s sent to %d minion(s)%s", jid, fun, #minions,
    hold and ", held for those not connected" or "")
  return job
end

function Master:send_job(id, payload)
  if not self:connected(id) then
    return false
  end
  local ok, err = self.pubsock:send({ self.conns[id].routing, payload }, { dontwait = true })
  if not ok then
    self.log:info("minion %s: job not delivered (%s)", id, err)
    self.conns[id] = nil
    return false
  end
  return true
end

-- Loads a job from the cache when it is not active (a return that
-- arrives after a master restart).
function Master:find_job(jid)
  if self.jobs[jid] then
    return self.jobs[jid]
  end
  if not wire.is_jid(jid) then
    return nil
  end
  local bytes = posix.read(self:job_dir(jid) .. "/.load", wire.MAX_MESSAGE)
  local rec = bytes and wire.msgpack.unpack(bytes, { max_depth = wire.MAX_DEPTH })
  if not rec or data.kind(rec.minions) ~= "array" then
    return nil
  end
  local job = { jid = jid, fun = rec.fun, minions = rec.minions, returned = {}, clients = {},
    started = posix.monotonic(), from_cache = true, held = rec.held_until ~= nil }
  self.jobs[jid] = job
  return job
end

-- True when the job targeted minion id. The set is built on the first
-- return, so a job to N minions costs O(N) in all, not O(N) per return.
local function targeted(job, id)
  local set = job.targeted
  if not set then
    set = {}
    for _, v in ipairs(job.minions) do
      set[v] = true
    end
    job.targeted = set
  end
  return set[id] == true
end

-- True when a valid return is stored at path (a file a crash left empty
-- or cut is not one: the return is stored again when it is resent).
local function stored(path)
  local bytes = posix.read(path, wire.MAX_MESSAGE)
  local ok, rec = pcall(wire.msgpack.unpack, bytes or "", { max_depth = wire.MAX_DEPTH })
  return ok and data.kind(rec) == "map"
end

--- Takes one minion's return: "ack" when it is to be acknowledged at once
--- (a duplicate, or dropped because the job did not target the minion:
--- acknowledged so it is not resent forever), "staged" when it is written
--- and waits for flush_returns, false when it could not be written.
function Master:store_return(id, msg, routing)
  local jid = msg.jid
  local job = wire.is_jid(jid) and self:find_job(jid)
  if not job or not targeted(job, id) then
    self.log:warning("minion %s: return for job %s that did not target it, dropped", id,
      tostring(jid))
    return "ack"
  end
  local path = self:job_dir(jid) .. "/" .. id
  if job.returned[id] or stored(path) then
    self.log:debug("minion %s: duplicate return for job %s", id, jid)
    if job.held then
      self.held:release(id, jid)
    end
    return job.returned[id] == "staged" and "staged" or "ack"
  end
  local ret = data.map({ { "id", id }, { "jid", jid }, { "fun", job.fun },
    { "return", msg["return"] == nil and data.null or msg["return"] },
    { "retcode", math.type(msg.retcode) == "integer" and msg.retcode or 0 },
    { "success", msg.success ~= false } })
  local ok, err = posix.write_atomic(path, wire.encode(ret), 384, false)
  if not ok then
    self.log:error("job %s: cannot store the return of %s: %s", jid, id, err)
    return false
  end
  job.returned[id] = "staged"
  self.staged[#self.staged + 1] = { id = id, job = job, ret = ret, routing = routing }
  return "staged"
end

-- A few returns are flushed file by file (and their folders); a burst
-- with one sync of the whole file system, which costs more than a few
-- fsyncs when other programs write to it, and far less than hundreds.
function Master:sync_staged(staged)
  if #staged > SYNC_ONE_BY_ONE then
    return posix.syncfs(self.opts.cachedir)
  end
  local dirs = {}
  for _, s in ipairs(staged) do
    local dir = self:job_dir(s.job.jid)
    local ok, err = posix.fsync(dir .. "/" .. s.id)
    if not ok then
      return nil, err
    end
    dirs[dir] = true
  end
  for dir in pairs(dirs) do
    local ok, err = posix.fsync(dir)
    if not ok then
      return nil, err
    end
  end
  return true
end

-- Makes the returns written since the last call durable with one sync of
-- the file system (not one per return: a thousand minions answering at
-- once cost one disk flush), then acknowledges them, tells the clients
-- following their jobs and fires their events.
function Master:flush_returns()
  if #self.staged == 0 then
    return
  end
  local staged = self.staged
  self.staged = {}
  local ok, err = self:sync_staged(staged)
  if not ok then
    self.log:error("job cache: %s; %d return(s) not acknowledged", err, #staged)
    for _, s in ipairs(staged) do
      s.job.returned[s.id] = nil
    end
    return
  end
  for _, s in ipairs(staged) do
    local jid, id = s.job.jid, s.id
    s.job.returned[id] = true
    self:reply(self.req, s.routing, { cmd = "_ack", jid = jid })
    if s.job.held then
      self.held:release(id, jid)
    end
    self.log:info("job %s: return from %s", jid, id)
    self:announce_return(s.job, s.ret)
  end
end

-- Sends a stored return to the clients following its job and to the bus.
function Master:announce_return(job, ret)
  local out = data.map({ { "cmd", "return" } })
  for k, v in pairs(ret) do
    out[k] = v
  end
  local payload = wire.encode(out)
  for client in pairs(job.clients) do
    if not self.localsock:send({ client, payload }, { dontwait = true }) then
      job.clients[client] = nil
    end
  end
  out.cmd = "_return"
  self.bus:fire("salt/job/" .. job.jid .. "/ret/" .. ret.id, out)
end

-- An event from a minion: fired on the bus under its tag, shaped as
-- Salt fires a minion's event (cmd, id, tag, data, pretag) with `id` the
-- minion that sent it, unless the tag poses as the master's; always
-- acknowledged, so a refused event is not sent again.
function Master:minion_event(id, routing, msg)
  local ok, why = events.minion_tag_allowed(id, msg.tag)
  if not ok then
    self.log:warning("minion %s: event refused: %s", id, why)
  else
    self.bus:fire(msg.tag, data.map({ { "cmd", "_minion_event" }, { "id", id },
      { "tag", msg.tag }, { "data", msg.data == nil and data.null or msg.data },
      { "pretag", data.null } }))
  end
  local name = wire.str(msg, "event", 64)
  if name then
    self:reply(self.req, routing, { cmd = "_ack", event = name })
  end
end

---------------------------------------------------------------------------
-- The request port
---------------------------------------------------------------------------

function Master:reply(sock, routing, msg)
  local ok, err = sock:send({ routing, wire.encode(msg) }, { dontwait = true })
  if not ok then
    self.log:debug("reply not sent: %s", err)
  end
end

-- Whether id is in the autosign_file: one id, glob or regular expression
-- per line (Salt's order: exact, then glob, then the whole id matching the
-- expression), `#` comments. A file others may write is ignored: it
-- would let them accept any key.
function Master:autosigned(id)
  local path = self.opts.autosign_file
  if type(path) ~= "string" or path == "" then
    return false
  end
  local st = posix.stat(path)
  if not st then
    return false
  elseif st.mode & 18 ~= 0 then -- 0022: group or world writable
    self.log:error("autosign_file %s is writable by others; ignoring it", path)
    return false
  end
  local text = posix.read(path, 1024 * 1024) or ""
  for line in text:gmatch("[^\n]+") do
    local entry = line:match("^%s*(.-)%s*$")
    if entry ~= "" and entry:sub(1, 1) ~= "#" and (entry == id or posix.fnmatch(entry, id)
        or posix.regex_search("^(" .. entry .. ")$", id) == true) then
      return true
    end
  end
  return false
end

function Master:handle_auth(routing, key, msg)
  local id = wire.str(msg, "id", 255)
  local valid, why = keys.valid_id(id)
  if not valid then
    self.log:warning("_auth with a bad minion id from key %s: %s", keys.fingerprint(key), why)
    return
  end
  if msg.pub ~= key then
    self.log:warning("minion %s: _auth names a key other than the one it connected with",
      id)
    return
  end
  local state = self.store:offer(id, key,
    self.opts.auto_accept == true or self:autosigned(id))
  -- offer() read this id's own files; the whole index is read again only
  -- when a key folder changed (a new pending key), not on every
  -- reconnect, which would cost a fleet-wide reconnect minutes
  self:scan_keys(false)
  if state ~= "accepted" then
    self.log:info("minion %s: key %s", id, state)
  end
  local act = ({ accepted = "accept", pending = "pend", rejected = "reject" })[state] or state
  self.bus:fire("salt/auth", data.map({ { "result", state == "accepted" }, { "act", act },
    { "id", id }, { "pub", key } }))
  self:reply(self.req, routing, { cmd = "_auth", id = id, ret = state })
end

local function pillar_message(pillar)
  return wire.encode(data.map({ { "cmd", "_pillar" }, { "pillar", pillar } }))
end

-- A minion asks for its pillar: compiled for the id its key is accepted
-- under (never the id the message names) with the grains it sends (else
-- those of its hello), and sent back on the connection that asked. The
-- grains it sends also become the ones grain targets use (a minion asks
-- after saltutil.refresh_grains).
function Master:pillar_request(id, routing, msg, bytes)
  local grains, conn = msg.grains, self.conns[id]
  if data.kind(grains) ~= "map" then
    grains = self:grains(id) or data.map({ { "id", id } })
  elseif conn then
    conn.grains_msg = bytes
  end
  self.pillars:request(id, msg, grains, function(pillar)
    local ok, reply = pcall(pillar_message, pillar)
    if not ok or #reply > wire.MAX_MESSAGE then
      self.log:error("minion %s: the pillar cannot be sent: %s", id,
        ok and "larger than 8 MiB" or reply)
      reply = pillar_message(data.map({ { "_errors",
        data.array({ "the pillar is too large or cannot be sent" }) } }))
    end
    local sent, err = self.req:send({ routing, reply }, { dontwait = true })
    if not sent then
      self.log:info("minion %s: pillar not delivered (%s)", id, err)
    end
  end)
end

function Master:handle_request()
  local frames, meta = self.req:recv({ dontwait = true, max_frames = 4 })
  if not frames then
    if meta then
      self.log:warning("request port: %s", meta)
    end
    return
  end
  local key = meta.user_id
  if #frames ~= 2 or not key then
    self.log:warning("request port: malformed message of %d frame(s) dropped", #frames)
    return
  end
  local routing = frames[1]
  local msg, err = wire.decode(frames[2])
  if not msg then
    self.log:warning("request port: bad message from %s dropped: %s",
      meta.peer_address or "?", err)
    return
  end
  local rec = self.index.by_key[key]
  if msg.cmd == "_auth" then
    return self:handle_auth(routing, key, msg)
  end
  if not rec or rec.state ~= "accepted" then
    self.log:warning("request port: '%s' from a key that is not accepted, dropped",
      msg.cmd)
    return
  end
  if msg.id ~= nil and msg.id ~= rec.id then
    self.log:warning("minion %s: message claims to come from %s, dropped", rec.id,
      tostring(msg.id))
    return
  end
  if msg.cmd == "_pillar" then
    self:pillar_request(rec.id, routing, msg, frames[2])
  elseif msg.cmd == "_return" then
    if self:store_return(rec.id, msg, routing) == "ack" then
      self:reply(self.req, routing, { cmd = "_ack", jid = msg.jid })
    end
  elseif msg.cmd == "_minion_event" then
    self:minion_event(rec.id, routing, msg)
  else
    self.log:warning("minion %s: unknown request '%s' dropped", rec.id, msg.cmd)
  end
end

---------------------------------------------------------------------------
-- The publish port and the key port
---------------------------------------------------------------------------

function Master:handle_publish_port()
  local frames, meta = self.pubsock:recv({ dontwait = true, max_frames = 4 })
  if not frames then
    return
  end
  local rec = meta.user_id and self.index.by_key[meta.user_id]
  if #frames ~= 2 or not rec or rec.state ~= "accepted" then
    return
  end
  local msg, err = wire.decode(frames[2])
  if not msg or msg.cmd ~= "hello" then
    self.log:warning("minion %s: bad message on the publish port dropped: %s", rec.id,
      err or msg.cmd)
    return
  end
  local conn = self.conns[rec.id]
  if not conn or conn.routing ~= frames[1] then
    self.log:info("minion %s: connected from %s", rec.id, meta.peer_address or "?")
  end
  local grains_msg = frames[2]
  if data.kind(msg.grains) ~= "map" or #grains_msg > MAX_GRAINS then
    grains_msg = conn and conn.grains_msg
  end
  self.conns[rec.id] = { routing = frames[1], key = meta.user_id, seen = posix.monotonic(),
    grains_msg = grains_msg, fd = meta.fd }
  self:reply(self.pubsock, frames[1], { cmd = "hello" })
  if not conn or conn.routing ~= frames[1] then
    local id = rec.id
    self.held:deliver(id, function(payload) return self:send_job(id, payload) end)
  end
end

-- A publish connection closed (the monitor names its file descriptor):
-- the minion on it is no longer connected.
function Master:handle_monitor()
  local frames = self.monitor:recv({ dontwait = true, max_frames = 2 })
  if not frames or #frames[1] < 6 then
    return
  end
  local event, fd = string.unpack("<I2I4", frames[1])
  if event ~= DISCONNECTED then
    return
  end
  for id, conn in pairs(self.conns) do
    if conn.fd == fd then
      self.log:info("minion %s: disconnected", id)
      self.conns[id] = nil
    end
  end
end

function Master:handle_key_port()
  local frames = self.keysock:recv({ dontwait = true, max_frames = 4 })
  if frames and #frames == 2 then
    self:reply(self.keysock, frames[1], { cmd = "master_key", pub = self.pub })
  end
end

---------------------------------------------------------------------------
-- The local socket
---------------------------------------------------------------------------

-- What the local clients ask about the master's state (manage.alived,
-- jobs.active): the minions connected now and the jobs still owed returns.
function Master:status()
  local connected, active = data.array(), data.array()
  for id in pairs(self.conns) do
    if self:connected(id) then
      connected[#connected + 1] = id
    end
  end
  for jid, job in pairs(self.jobs) do
    for _, id in ipairs(job.minions) do
      if not job.returned[id] then
        active[#active + 1] = jid
        break
      end
    end
  end
  table.sort(connected)
  table.sort(active)
  return data.map({ { "cmd", "status" }, { "connected", connected }, { "active", active } })
end

function Master:handle_local()
  local frames = self.localsock:recv({ dontwait = true, max_frames = 4 })
  if not frames or #frames ~= 2 then
    return
  end
  local routing = frames[1]
  local msg, err = wire.decode(frames[2])
  if not msg then
    self.log:warning("local socket: bad message dropped: %s", err)
    return
  end
  if msg.cmd == "publish" then
    local job
    job, err = self:publish(msg)
    if not job then
      return self:reply(self.localsock, routing, { cmd = "error", message = err })
    end
    if msg.follow ~= false then
      job.clients[routing] = true
    end
    self:reply(self.localsock, routing, { cmd = "published", jid = job.jid,
      minions = data.array(job.minions), not_connected = self:not_connected(job.minions),
      queued = job.held })
  elseif msg.cmd == "resolve" then
    local minions
    minions, err = self:targets(msg)
    if not minions then
      return self:reply(self.localsock, routing, { cmd = "error", message = err })
    end
    self:reply(self.localsock, routing, { cmd = "resolved", minions = data.array(minions),
      not_connected = self:not_connected(minions) })
  elseif msg.cmd == "subscribe" then
    self.bus:subscribe(routing)
    self:reply(self.localsock, routing, { cmd = "subscribed" })
  elseif msg.cmd == "status" then
    self:reply(self.localsock, routing, self:status())
  else
    self:reply(self.localsock, routing, { cmd = "error", message = "unknown command" })
  end
end

---------------------------------------------------------------------------
-- The loop
---------------------------------------------------------------------------

function Master:expire_jobs()
  local now = posix.monotonic()
  local keep = math.max(tonumber(self.opts.timeout) or 5, 5) * 12
  for jid, job in pairs(self.jobs) do
    if now - job.started > keep then
      self.jobs[jid] = nil
    end
  end
end

-- Removes jobs older than keep_jobs_seconds from the cache, once a minute.
function Master:prune_jobs(now)
  if self.next_prune and now < self.next_prune then
    return
  end
  self.next_prune = now + 60
  local removed = self.cache:prune(tonumber(self.opts.keep_jobs_seconds), posix.time())
  if removed > 0 then
    self.log:info("job cache: %d job(s) older than %d s removed", removed,
      self.opts.keep_jobs_seconds)
  end
end

function Master:step(timeout_ms)
  local items = { self.zap, self.req, self.pubsock, self.keysock, self.localsock, self.monitor,
    self.sigfd }
  local ready, err, code = zmq.poll(items, timeout_ms)
  if not ready then
    if code ~= "EINTR" then
      self.log:error("poll: %s", err)
    end
    ready = {}
  end
  local handlers = { self.handle_zap, self.handle_request, self.handle_publish_port,
    self.handle_key_port, self.handle_local, self.handle_monitor }
  for i, handler in ipairs(handlers) do
    -- up to BURST messages of a ready socket before polling again, so a
    -- thousand returns do not cost a thousand polls; the others wait at
    -- most one burst
    local n = 0
    while ready[i] and n < BURST do
      local ok, e = xpcall(handler, debug.traceback, self)
      if not ok then
        self.log:error("%s", e)
      end
      n = n + 1
      ready[i] = (items[i]:getopt("events") or 0) & ZMQ_POLLIN ~= 0
    end
  end
  self:flush_returns()
  self.pillars:reap()
  local signals = posix.pending()
  if signals.HUP then
    daemon.reload(self.opts, "master", self.log)
  end
  if signals.TERM or signals.INT then
    self.log:info("master stopping")
    self.running = false
  end
  local now = posix.monotonic()
  if now >= self.next_scan then
    self.next_scan = now + (tonumber(self.opts.key_scan_interval) or 0.25)
    self:scan_keys(false)
    self:expire_jobs()
    self:prune_jobs(now)
  end
end

function Master:run()
  while self.running do
    self:step(100)
  end
end

function Master:stop()
  for _, name in ipairs({ "zap", "req", "pubsock", "keysock", "localsock", "monitor" }) do
    if self[name] then
      self[name]:close()
    end
  end
  if self.ctx then
    self.ctx:close()
  end
  if self.local_path then
    posix.unlink(self.local_path)
  end
end

return M
