-- Pillar on the master: each minion's pillar is compiled (brine.pillar,
-- with the master's pillar_roots, that minion's grains and id) in a forked
-- worker, so a slow render never stalls the master's loop; the result is
-- kept in cachedir/minions/ID/pillar (0600, in 0700 folders) for pillar
-- targets and handed only to the connection that authenticated as that
-- minion. Renderer messages in full go to the master's log; the minion
-- sees `_errors` in the safe form.
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")
local daemon = require("brine.master.daemon")

local M = {}

local Pillars = {}
Pillars.__index = Pillars

local MAX_COMPILE = 300 -- seconds a worker may take before it is killed

-- Compiles run at once in at most `worker_threads` forked workers (Salt's
-- option: the master's processes that do the work of minions' requests;
-- brine routes every other request in its event loop). More wait their
-- turn: a fleet reconnecting at once must not fork the master a thousand
-- times.
local function max_workers(opts)
  local n = opts.worker_threads
  return math.type(n) == "integer" and n >= 1 and n or 5
end

---@param opts table the master's options
---@param log table the master's logger
function M.new(opts, log)
  return setmetatable({ opts = opts, log = log, known = {}, workers = {}, by_id = {},
    running = 0, queue = {}, queued = {} }, Pillars)
end

function Pillars:path(id)
  return self.opts.cachedir .. "/minions/" .. id .. "/pillar"
end

-- A compile's record ({pillar=..., log=...}) from its packed bytes, or nil.
local function unpack_record(bytes)
  local ok, rec = pcall(wire.msgpack.unpack, bytes or "", { max_depth = wire.MAX_DEPTH })
  if ok and data.kind(rec) == "map" and data.kind(rec.pillar) == "map" then
    return rec
  end
  return nil
end

-- The record in a file and its bytes, or nil.
local function read_record(path)
  local bytes = posix.read(path, wire.MAX_MESSAGE)
  local rec = unpack_record(bytes)
  return rec, rec and bytes
end

--- The last pillar compiled for minion id (read from the cache after a
--- restart), or nil when none was compiled. What is kept in memory is the
--- packed record, a fraction of the decoded tables' size, decoded here
--- for the pillar targets that need it.
function Pillars:get(id)
  local bytes = self.known[id]
  if bytes == nil then
    local _
    _, bytes = read_record(self:path(id))
    self.known[id] = bytes or false
  end
  local rec = bytes and unpack_record(bytes)
  return rec and rec.pillar or nil
end

--- Forgets the pillar kept for minion id (its key is no longer accepted:
--- a device re-imaged under that id gets its own when it asks).
function Pillars:forget(id)
  self.known[id] = nil
  posix.unlink(self:path(id))
end

-- The worker: compiles and writes {pillar, log} atomically, nothing else
-- (it never touches the parent's sockets), and exits.
local function compile_in_worker(opts, id, grains, msg, path)
  local ok = pcall(function()
    local args = { pillar_override = data.kind(msg.pillar_override) == "map"
      and msg.pillar_override or nil }
    for _, key in ipairs({ "saltenv", "pillarenv" }) do
      args[key] = wire.str(msg, key, 255)
    end
    local pillar, _, log = require("brine.pillar").compile(opts, grains, id, args)
    assert(daemon.mkdirs(path:match("^(.*)/"), 448))
    assert(posix.write_atomic(path, wire.encode(data.map({ { "pillar", pillar },
      { "log", log } })), 384))
  end)
  posix._exit(ok and 0 or 1)
end

-- Starts a worker for the request waiting for minion id, or queues it
-- while worker_threads run.
function Pillars:start(id, pending)
  if self.running >= max_workers(self.opts) then
    self.queue[#self.queue + 1] = id
    self.queued[id] = pending
    return
  end
  local pid, err = posix.fork()
  if pid == 0 then
    compile_in_worker(self.opts, id, pending.grains, pending.msg, self:path(id) .. ".new")
  end
  if not pid then
    self.log:error("minion %s: cannot start a pillar worker: %s", id, err)
    return self:finish(id, pending, nil)
  end
  local w = { id = id, pid = pid, started = posix.monotonic(), replies = pending.replies }
  self.workers[pid], self.by_id[id] = w, w
  self.running = self.running + 1
end

--- Compiles minion id's pillar for a `_pillar` request (its grains,
--- saltenv, pillarenv, pillar_override) and calls reply(pillar) once it is
--- ready. A minion asking while its pillar is being compiled gets the
--- result of a compile started after the current one, so a refresh after
--- the files changed always sees them.
---@param id string the minion, as its key is accepted
---@param msg table the request
---@param grains table the minion's grains
---@param reply function(pillar)
function Pillars:request(id, msg, grains, reply)
  local w = self.by_id[id]
  local pending = w and w.next or self.queued[id]
  if w and not pending then
    pending = { replies = {} }
    w.next = pending
  end
  if pending then
    pending.msg, pending.grains = msg, grains
    table.insert(pending.replies, reply)
    return
  end
  self:start(id, { msg = msg, grains = grains, replies = { reply } })
end

-- Delivers a compile's result (rec nil: it failed) to whoever waits.
function Pillars:finish(id, pending, rec, bytes)
  local pillar
  if rec then
    for _, line in ipairs(data.kind(rec.log) == "array" and rec.log or {}) do
      self.log:error("minion %s: pillar: %s", id, tostring(line))
    end
    pillar = rec.pillar
    self.known[id] = bytes
  else
    pillar = data.map({ { "_errors",
      data.array({ "the master could not compile this minion's pillar" }) } })
  end
  for _, reply in ipairs(pending.replies) do
    reply(pillar)
  end
end

-- A worker ended (how, code from waitpid): its result replaces the cache.
function Pillars:ended(w, how, code)
  self.workers[w.pid], self.by_id[w.id] = nil, nil
  self.running = self.running - 1
  local new = self:path(w.id) .. ".new"
  local rec, bytes
  if how == "exited" and code == 0 then
    rec, bytes = read_record(new)
  end
  if rec then
    posix.rename(new, self:path(w.id))
    self.log:info("minion %s: pillar compiled", w.id)
  else
    posix.unlink(new)
    self.log:error("minion %s: the pillar worker failed (%s %s)", w.id, how, tostring(code))
  end
  self:finish(w.id, w, rec, bytes)
  if w.next then
    self:start(w.id, w.next)
  end
  self:start_queued()
end

-- Starts the compiles that wait, as far as worker_threads allows.
function Pillars:start_queued()
  while self.running < max_workers(self.opts) and #self.queue > 0 do
    local id = table.remove(self.queue, 1)
    local pending = self.queued[id] -- a minion is either queued or compiling
    self.queued[id] = nil
    self:start(id, pending)
  end
end

--- Collects the workers that ended; kills those that took too long.
function Pillars:reap()
  while next(self.workers) do
    local pid, how, code = posix.waitpid(-1, true)
    if not pid then
      break
    end
    local w = self.workers[pid]
    if w then
      self:ended(w, how, code)
    end
  end
  local now = posix.monotonic()
  for pid, w in pairs(self.workers) do
    if now - w.started > MAX_COMPILE and not w.killed then
      self.log:error("minion %s: pillar compile took over %d s, killing it", w.id, MAX_COMPILE)
      w.killed = true
      posix.kill(pid, "KILL")
    end
  end
end

return M
