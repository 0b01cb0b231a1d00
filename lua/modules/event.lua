-- The event execution module, as Salt's for minions: event.send and
-- event.fire_master put an event on the master's event bus. Events are
-- written to the minion's outbox (cachedir/events) and sent by the minion
-- daemon, so an event fired while the master is away arrives when it is
-- back. The master tags nothing for the minion: it checks that the tag
-- does not pose as one of its own (salt/... other than
-- salt/minion/<this id>/...) and sets the event's `id` to this minion's.
-- luacheck: globals salt opts context grains pillar
local model = require("brine.data")
local outbox = require("brine.minion.outbox")

local M = {}

local null = model.null

M.__defaults__ = {
  send = { data = null, with_grains = false, with_pillar = false },
  fire_master = { tag = null },
}

-- A copy of a mapping as an ordered map (nil and null give an empty one).
local function as_map(value)
  local out = model.map()
  if type(value) ~= "table" then
    return out
  end
  for _, k in ipairs(model.keys(value)) do
    out[k] = value[k]
  end
  return out
end

local function spool(tag, payload)
  if type(tag) ~= "string" or tag == "" then
    error("an event needs a tag", 0)
  end
  local ok, err = outbox.spool_event(opts.cachedir, opts.id, tag, payload)
  if not ok then
    error("could not queue the event: " .. tostring(err), 0)
  end
  return true
end

--- Sends an event to the master's event bus with the given tag. `data` (a
--- mapping) and any other keyword arguments make up the event's data;
--- with_grains and with_pillar add this minion's grains or pillar.
function M.send(tag, data, with_grains, with_pillar, kwargs)
  local payload = as_map(data)
  for k, v in pairs(kwargs) do
    if type(k) == "string" and k:sub(1, 2) ~= "__" then
      payload[k] = v
    end
  end
  if with_grains == true then
    payload.grains = grains
  end
  if with_pillar == true then
    payload.pillar = pillar
  end
  return spool(tag, payload)
end

--- Fires `data` (a mapping) on the master's event bus under `tag`.
function M.fire_master(data, tag)
  return spool(tag, as_map(data))
end

return M
