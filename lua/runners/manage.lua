-- The manage runner, as Salt's: which minions are up (they answer
-- test.ping now), down (accepted but silent), and alive by the master's
-- own connection table without sending anything (alived, not_alived).
-- `context.master()` is the local client to the master (brine run sets it).
-- luacheck: globals opts context
local data = require("brine.data")
local posix = require("brine.posix")
local keys = require("brine.keys")
local target = require("brine.target")

local M = {}

M.__defaults__ = {
  status = { tgt = "*", tgt_type = "glob", timeout = data.null },
  up = { tgt = "*", tgt_type = "glob", timeout = data.null },
  down = { tgt = "*", tgt_type = "glob", timeout = data.null },
  alived = { tgt = "*", tgt_type = "glob" },
  not_alived = { tgt = "*", tgt_type = "glob" },
}

-- The accepted minions the target names, sorted.
local function accepted(tgt, tgt_type)
  local store = assert(keys.open(opts.pki_dir))
  return target.select(tgt, tgt_type, store:list("accepted"), function() return nil end)
end

local function without(all, some)
  local set, out = {}, data.array()
  for _, id in ipairs(some) do
    set[id] = true
  end
  for _, id in ipairs(all) do
    if not set[id] then
      out[#out + 1] = id
    end
  end
  return out
end

-- Pings the targeted minions; returns the sorted ids that answered. Those
-- the master knows are not connected are not waited for.
local function ping(tgt, tgt_type, timeout)
  local master = context.master()
  local reply = assert(master:request(data.map({ { "cmd", "publish" }, { "tgt", tgt },
    { "tgt_type", tgt_type }, { "fun", "test.ping" }, { "arg", data.array() },
    { "kwarg", data.map() }, { "follow", true } })))
  local waiting, up = #reply.minions - #(reply.not_connected or {}), data.array()
  local deadline = posix.monotonic() + (tonumber(timeout) or tonumber(opts.timeout) or 5)
  while waiting > 0 do
    local msg = master:receive(deadline)
    if msg == nil then
      break
    elseif msg and msg.cmd == "return" and msg.jid == reply.jid then
      up[#up + 1], waiting = msg.id, waiting - 1
    end
  end
  table.sort(up)
  return up
end

--- Minions that answer test.ping and those that do not.
function M.status(tgt, tgt_type, timeout)
  local up = ping(tgt, tgt_type, timeout)
  return data.map({ { "up", up }, { "down", without(accepted(tgt, tgt_type), up) } })
end

--- The minions that answer test.ping.
function M.up(tgt, tgt_type, timeout)
  return ping(tgt, tgt_type, timeout)
end

--- The accepted minions that do not answer test.ping.
function M.down(tgt, tgt_type, timeout)
  return M.status(tgt, tgt_type, timeout).down
end

--- The minions connected to the master now, by its connection table
--- (nothing is sent to them).
function M.alived(tgt, tgt_type)
  local status = assert(context.master():request({ cmd = "status" }))
  local targeted = accepted(tgt, tgt_type)
  return without(targeted, without(targeted, status.connected))
end

--- The accepted minions that are not connected to the master now.
function M.not_alived(tgt, tgt_type)
  local status = assert(context.master():request({ cmd = "status" }))
  return without(accepted(tgt, tgt_type), status.connected)
end

return M
