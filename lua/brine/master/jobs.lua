-- The master's job cache, read and pruned: cachedir/jobs/JID/.load (the
-- job as published) and cachedir/jobs/JID/ID (each minion's return), and
-- the jobs held for minions that are away (cachedir/queue/ID/JID). The
-- master daemon writes them (brine.master.server); the runners and the
-- daemon's pruning read them here. docs/protocol.md describes the files.
local posix = require("brine.posix")
local data = require("brine.data")
local wire = require("brine.master.wire")

local M = {}

local Cache = {}
Cache.__index = Cache

local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
  "Nov", "Dec" }

--- Salt's jid_to_time: "2026, Dec 04 07:16:21.678825", or "" for a value
--- that is not a jid.
function M.jid_to_time(jid)
  if not wire.is_jid(jid) then
    return ""
  end
  local y, mo, d, h, mi, s, us = jid:match("^(%d%d%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d+)$")
  local month = MONTHS[tonumber(mo)] or mo
  return string.format("%s, %s %s %s:%s:%s.%s", y, month, d, h, mi, s, us)
end

--- The epoch second a jid was made (jids are UTC).
function M.jid_epoch(jid)
  local y, mo, d, h, mi, s = jid:match("^(%d%d%d%d)(%d%d)(%d%d)(%d%d)(%d%d)(%d%d)")
  -- days since the epoch by the civil-from-days algorithm, so no time zone
  -- of this machine is involved
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then
    y = y - 1
  end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

--- The cache of the master whose options are given.
function M.open(opts)
  return setmetatable({ dir = opts.cachedir .. "/jobs", queue = opts.cachedir .. "/queue" },
    Cache)
end

local function unpack_file(path)
  local bytes = posix.read(path, wire.MAX_MESSAGE)
  if not bytes then
    return nil
  end
  local ok, value = pcall(wire.msgpack.unpack, bytes, { max_depth = wire.MAX_DEPTH })
  return ok and value or nil
end

--- The jids in the cache, oldest first.
function Cache:jids()
  local out = {}
  for _, name in ipairs(posix.listdir(self.dir) or {}) do
    if wire.is_jid(name) then
      out[#out + 1] = name
    end
  end
  table.sort(out)
  return out
end

--- The job as published (jid, fun, arg, kwarg, tgt, tgt_type, minions,
--- start, held_until), or nil.
function Cache:load(jid)
  if not wire.is_jid(jid) then
    return nil
  end
  local rec = unpack_file(self.dir .. "/" .. jid .. "/.load")
  if data.kind(rec) ~= "map" then
    return nil
  end
  return rec
end

--- The returns stored for a job: an ordered map id -> return record.
function Cache:returns(jid)
  local out = data.map()
  local names = wire.is_jid(jid) and posix.listdir(self.dir .. "/" .. jid) or {}
  table.sort(names)
  for _, id in ipairs(names) do
    if id:sub(1, 1) ~= "." then
      local rec = unpack_file(self.dir .. "/" .. jid .. "/" .. id)
      if data.kind(rec) == "map" then
        out[id] = rec
      end
    end
  end
  return out
end

--- The minions a job targeted that have not returned, in target order.
function Cache:owed(jid, load, returns)
  load = load or self:load(jid)
  returns = returns or self:returns(jid)
  local out = data.array()
  for _, id in ipairs(load and load.minions or {}) do
    if returns[id] == nil then
      out[#out + 1] = id
    end
  end
  return out
end

--- True when the master still holds the job for the minion.
function Cache:held(jid, id)
  return posix.stat(self.queue .. "/" .. id .. "/" .. jid) ~= nil
end

local function remove_tree(path)
  for _, name in ipairs(posix.listdir(path) or {}) do
    posix.unlink(path .. "/" .. name)
  end
  return posix.rmdir(path)
end

--- Removes the jobs older than keep_seconds (0: keep every job); returns
--- how many were removed.
function Cache:prune(keep_seconds, now)
  if not keep_seconds or keep_seconds <= 0 then
    return 0
  end
  local removed = 0
  for _, jid in ipairs(self:jids()) do
    if M.jid_epoch(jid) + keep_seconds >= now then
      break
    end
    if remove_tree(self.dir .. "/" .. jid) then
      removed = removed + 1
    end
  end
  return removed
end

return M
