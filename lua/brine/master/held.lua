-- Jobs the master holds for minions that are away: cachedir/queue/ID/JID
-- (msgpack: `expires`, an epoch second or 0 for never, and `job`, the
-- publish message), kept until the minion's return is stored or the job
-- expires, and sent again on each new connection of the minion (a minion
-- runs a jid only once, so a job sent twice runs once). docs/protocol.md,
-- "Held jobs", describes it.
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")
local daemon = require("brine.master.daemon")

local M = {}

local Held = {}
Held.__index = Held

--- The held jobs of the master whose options (cachedir, queue_jobs,
--- queue_ttl) and logger are given.
function M.new(opts, log)
  return setmetatable({ opts = opts, log = log }, Held)
end

function Held:dir(id)
  return self.opts.cachedir .. "/queue/" .. id
end

--- When a job is to be held: the epoch second it expires (0: never), or
--- nil when it is not held. `queue` in the publish request is true (the
--- master's queue_ttl), a number of seconds (0: no expiry) or absent (held
--- only when queue_jobs is set).
function Held:expiry(req)
  local ttl = req.queue
  if ttl == true or (ttl == nil and self.opts.queue_jobs == true) then
    ttl = tonumber(self.opts.queue_ttl) or 86400
  end
  if type(ttl) ~= "number" or ttl < 0 then
    return nil
  end
  return ttl == 0 and 0 or math.floor(posix.time() + ttl)
end

local SYNC_ONE_BY_ONE = 8 -- minions whose held job is flushed file by file

--- Holds a job for each of `ids`: a few flushed file by file, many with
--- one flush of the file system for all.
function Held:hold(ids, jid, payload, expires)
  local record = wire.encode(data.map({ { "expires", expires }, { "job", payload } }))
  local one_by_one = #ids <= SYNC_ONE_BY_ONE
  for _, id in ipairs(ids) do
    local dir = self:dir(id)
    local ok, err = daemon.mkdirs(dir, 448)
    if ok then
      ok, err = posix.write_atomic(dir .. "/" .. jid, record, 384, one_by_one)
    end
    if not ok then
      self.log:error("job %s: cannot hold it for %s: %s", jid, id, err)
    end
  end
  if not one_by_one then
    posix.syncfs(self.opts.cachedir)
  end
end

--- Sends a newly connected minion the jobs held for it, oldest first,
--- through `send(payload)` (false: the minion is gone, stop); drops those
--- that expired.
function Held:deliver(id, send)
  local dir = self:dir(id)
  local names = posix.listdir(dir) or {}
  table.sort(names)
  local now = posix.time()
  for _, jid in ipairs(names) do
    local bytes = wire.is_jid(jid) and posix.read(dir .. "/" .. jid, wire.MAX_MESSAGE)
    local ok, rec = pcall(wire.msgpack.unpack, bytes or "", { max_depth = 4 })
    if not ok or type(rec) ~= "table" or type(rec.job) ~= "string"
        or math.type(rec.expires) ~= "integer" then
      self.log:warning("minion %s: unreadable held job %s dropped", id, jid)
      posix.unlink(dir .. "/" .. jid)
    elseif rec.expires > 0 and rec.expires < now then
      self.log:info("job %s: expired before %s reconnected, dropped", jid, id)
      posix.unlink(dir .. "/" .. jid)
    elseif send(rec.job) then
      self.log:info("job %s: held job sent to %s", jid, id)
    else
      return
    end
  end
end

--- The minion's return is stored: the job is no longer held for it.
function Held:release(id, jid)
  posix.unlink(self:dir(id) .. "/" .. jid)
end

return M
