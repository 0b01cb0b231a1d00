-- The master's event bus: events (a tag and a mapping of data, Salt's
-- tags and payload keys) pushed to the local clients that subscribed on
-- the master's local socket (`brine run state.event`). Events are not
-- stored: a client sees those fired while it is subscribed. Also the
-- rules for events that minions send: which tags a minion may use.
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")

local M = {}

local Bus = {}
Bus.__index = Bus

M.MAX_TAG = 256

--- Salt's _stamp: the UTC time as ISO 8601 with microseconds.
function M.stamp()
  local y, mo, d, h, mi, s, us = posix.now_parts()
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d.%06d", y, mo, d, h, mi, s, us)
end

--- A bus that sends through `sock` (the master's local ROUTER socket).
function M.new(sock, log)
  return setmetatable({ sock = sock, log = log, subscribers = {}, count = 0 }, Bus)
end

--- Adds a local client (its routing id) to those events are sent to.
function Bus:subscribe(routing)
  if not self.subscribers[routing] then
    self.subscribers[routing] = true
    self.count = self.count + 1
    self.log:debug("event bus: a local client subscribed (%d now)", self.count)
  end
end

--- Fires an event: `payload` (a mapping, changed: `_stamp` is added) under
--- `tag`, to every subscriber. A subscriber that is gone or does not keep
--- up (its queue is full) is dropped.
function Bus:fire(tag, payload)
  if self.count == 0 then
    return
  end
  payload._stamp = M.stamp()
  local bytes = wire.encode(data.map({ { "cmd", "event" }, { "tag", tag },
    { "data", payload } }))
  for routing in pairs(self.subscribers) do
    if not self.sock:send({ routing, bytes }, { dontwait = true }) then
      self.subscribers[routing] = nil
      self.count = self.count - 1
      self.log:debug("event bus: a local client left")
    end
  end
end

-- Ids in each state in a key index (keys.Store:index).
local function states_of(index)
  local out = {}
  for _, rec in pairs(index.by_key) do
    out[rec.id] = out[rec.id] or {}
    out[rec.id][rec.state] = true
  end
  return out
end

--- What changed between two key indexes, as Salt's salt/key events:
--- a list of { id = , act = "accept" | "reject" | "delete" }, sorted by id.
function M.key_changes(old, new)
  local before, after = states_of(old), states_of(new)
  local out = {}
  local ids = {}
  for id in pairs(before) do ids[id] = true end
  for id in pairs(after) do ids[id] = true end
  for id in pairs(ids) do
    local b, a = before[id] or {}, after[id] or {}
    if a.accepted and not b.accepted then
      out[#out + 1] = { id = id, act = "accept" }
    elseif a.rejected and not b.rejected then
      out[#out + 1] = { id = id, act = "reject" }
    elseif next(b) and not next(a) then
      out[#out + 1] = { id = id, act = "delete" }
    end
  end
  table.sort(out, function(x, y) return x.id < y.id end)
  return out
end

--- Whether a minion may fire an event with this tag: any tag of at most
--- MAX_TAG bytes outside the master's own `salt/` namespace, and
--- `salt/minion/<its id>/...`. Returns true or nil, why not.
function M.minion_tag_allowed(id, tag)
  if type(tag) ~= "string" or tag == "" or #tag > M.MAX_TAG then
    return nil, "an event tag is a string of 1 to " .. M.MAX_TAG .. " bytes"
  end
  if tag:find("[%z\1-\31]") then
    return nil, "an event tag has no control characters"
  end
  local own = "salt/minion/" .. id .. "/"
  if tag:sub(1, 5) == "salt/" and tag:sub(1, #own) ~= own then
    return nil, "tag '" .. tag .. "' is in the master's namespace"
  end
  return true
end

return M
