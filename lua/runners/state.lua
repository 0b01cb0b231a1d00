-- The state runner's event follower, as Salt's state.event: prints the
-- master's events (tag, a tab, the data as JSON) as they are fired, from
-- the master's local socket. `context.master()` is the local client to
-- the master (brine run sets it).
-- TODO: state.orchestrate and the other state runners are not built yet.
-- luacheck: globals opts context
local data = require("brine.data")
local posix = require("brine.posix")
local json = require("outputters.json")

local M = {}

M.__defaults__ = {
  event = { tagmatch = "*", count = -1, quiet = false, pretty = false },
}

--- Follows the event bus, printing each event whose tag matches the glob
--- `tagmatch`; stops after `count` events (-1: never). With pretty, the
--- data is indented and its keys sorted. Returns nothing.
function M.event(tagmatch, count, quiet, pretty)
  local master = context.master()
  assert(master:request({ cmd = "subscribe" }))
  count = math.tointeger(count) or -1
  local seen = 0
  while count < 0 or seen < count do
    local msg = master:receive(posix.monotonic() + 3600)
    if msg and msg.cmd == "event" and type(msg.tag) == "string"
        and posix.fnmatch(tostring(tagmatch), msg.tag) then
      seen = seen + 1
      if not quiet then
        local payload = data.kind(msg.data) == "map" and msg.data or data.map()
        io.stdout:write(msg.tag, "\t", json.dumps(payload, pretty and 4 or nil, pretty == true),
          "\n")
        io.stdout:flush()
      end
    end
  end
end

return M
