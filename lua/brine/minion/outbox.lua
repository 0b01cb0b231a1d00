-- A minion's outbox: messages for the master kept as files in one folder
-- (cachedir/returns for job returns, cachedir/events for events) from
-- before they are first sent until the master acknowledges them, so a
-- minion that is offline for a week, or restarts, loses none. Files are
-- written atomically by whoever makes the message (a job's worker, the
-- event module); file names sort in the order the messages are sent.
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")

local M = {}

local Outbox = {}
Outbox.__index = Outbox

M.WINDOW = 16 -- messages in flight at once

--- An outbox over a folder; `valid(name)` says which file names are
--- messages (others are ignored, e.g. temporary files).
function M.new(dir, valid)
  return setmetatable({ dir = dir, valid = valid, names = {}, known = {}, inflight = {} },
    Outbox)
end

--- Re-reads the folder when its mtime changed since the last look, or
--- always with `force` (two files added within one tick of the file
--- system's clock leave the same mtime); returns the number of messages
--- waiting.
function Outbox:refresh(force)
  local st = posix.stat(self.dir)
  local stamp = st and st.mtime
  if not force and stamp and stamp == self.stamp then
    return #self.names
  end
  self.stamp = stamp
  for _, name in ipairs(posix.listdir(self.dir) or {}) do
    if self.valid(name) and not self.known[name] then
      self:add(name)
    end
  end
  return #self.names
end

--- Records a message whose file is written.
function Outbox:add(name)
  if self.known[name] then
    return
  end
  self.known[name] = true
  self.names[#self.names + 1] = name
  table.sort(self.names)
end

--- Forgets what was in flight (a new connection: everything is resent).
function Outbox:reset()
  self.inflight = {}
end

--- Sends the oldest messages, at most WINDOW in flight; one not
--- acknowledged within `resend` seconds is sent again.
---@param send function(bytes) -> true when queued for sending
function Outbox:pump(send, now, resend)
  local sent = 0
  for _, name in ipairs(self.names) do
    if sent >= M.WINDOW then
      break
    end
    local at = self.inflight[name]
    if at and now - at < resend then
      sent = sent + 1
    else
      local bytes = posix.read(self.dir .. "/" .. name, wire.MAX_MESSAGE)
      if bytes and send(bytes) then
        self.inflight[name] = now
        sent = sent + 1
      elseif not bytes then
        self:ack(name) -- removed by hand or unreadable: nothing to send
      end
    end
  end
end

--- The master acknowledged `name`: removes its file. True when it was
--- waiting here.
function Outbox:ack(name)
  if not self.known[name] then
    return false
  end
  posix.unlink(self.dir .. "/" .. name)
  self.known[name], self.inflight[name] = nil, nil
  for i, queued in ipairs(self.names) do
    if queued == name then
      table.remove(self.names, i)
      break
    end
  end
  return true
end

---------------------------------------------------------------------------
-- Events
---------------------------------------------------------------------------

local spooled = 0

--- True for the name of an event file: microseconds since the epoch, the
--- writer's pid and a counter, so names sort in the order events were made.
function M.is_event_name(name)
  return type(name) == "string" and name:match("^%d+%-%d+%-%d+$") ~= nil and #name <= 64
end

--- Writes an event for the master into cachedir/events; the minion daemon
--- sends it when it is connected (at once when it is), and removes it
--- when the master acknowledges it.
---@param cachedir string the minion's cachedir
---@param id string the minion's id
---@param tag string the event's tag
---@param payload any the event's data (event.send: a mapping; the start
--- events: a line of text)
---@return boolean|nil ok
---@return string|nil error
function M.spool_event(cachedir, id, tag, payload)
  spooled = spooled + 1
  local name = string.format("%017d-%d-%d", math.floor(posix.time() * 1e6), posix.getpid(),
    spooled)
  local msg = data.map({ { "cmd", "_minion_event" }, { "id", id }, { "tag", tag },
    { "data", payload }, { "event", name } })
  local dir = cachedir .. "/events"
  local st = posix.stat(dir)
  if not st then
    local ok, err = posix.mkdir(dir, 448)
    if not ok then
      return nil, err
    end
  end
  return posix.write_atomic(dir .. "/" .. name, wire.encode(msg))
end

return M
