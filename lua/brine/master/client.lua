-- A local client of the master: the CLI (`brine TARGET FUNCTION`,
-- `brine run`) talking to the master over its local socket
-- (sock_dir/master.ipc, reachable by the master's user only). One request
-- at a time; returns and events that the master pushes are read with
-- `receive`.
local posix = require("brine.posix")
local wire = require("brine.master.wire")
local daemon = require("brine.master.daemon")

local M = {}

local Client = {}
Client.__index = Client

--- Connects to the master whose options are given.
---@param conf table the master's options (sock_dir)
---@return table|nil client
---@return string|nil why not
function M.connect(conf)
  local path = conf.sock_dir .. "/master.ipc"
  if not posix.stat(path) then
    return nil, "the master is not running (no socket at " .. path .. ")"
  end
  local zmq = require("brine.zmq")
  local ctx = assert(zmq.context())
  local sock = assert(ctx:socket("DEALER"))
  assert(sock:setopt("maxmsgsize", wire.MAX_MESSAGE))
  assert(sock:setopt("rcvhwm", 200000)) -- as the master's local socket's sndhwm
  local ok, err = sock:connect("ipc://" .. path)
  if not ok then
    ctx:close()
    return nil, err
  end
  return setmetatable({ ctx = ctx, sock = sock, zmq = zmq, backlog = {} }, Client)
end

--- Sends one message (a map with `cmd`).
function Client:send(msg)
  return self.sock:send(wire.encode(msg))
end

--- The next message from the master before `deadline` (a posix.monotonic
--- time): the message, false for one that did not decode, nil at the
--- deadline.
function Client:receive(deadline)
  if #self.backlog > 0 then
    return table.remove(self.backlog, 1)
  end
  local left = math.max(0, math.floor((deadline - posix.monotonic()) * 1000))
  local ready = self.zmq.poll({ self.sock }, left)
  if not ready or not ready[1] then
    return nil
  end
  local frames = self.sock:recv({ dontwait = true })
  return frames and #frames == 1 and wire.decode(frames[1]) or false
end

-- Messages the master pushes unasked; a request's answer is anything else.
local PUSHED = { ["return"] = true, event = true }

--- Sends a request and waits up to `seconds` (10) for its answer. Returns
--- and events that arrive first are kept for `receive`.
---@return table|nil answer
---@return string|nil error
function Client:request(msg, seconds)
  self:send(msg)
  local deadline = posix.monotonic() + (seconds or 10)
  local kept = {}
  local reply
  repeat
    reply = self:receive(deadline)
    if reply and PUSHED[reply.cmd] then
      kept[#kept + 1], reply = reply, false
    end
  until reply ~= false
  table.move(kept, 1, #kept, #self.backlog + 1, self.backlog)
  if reply == nil then
    return nil, "the master did not answer"
  elseif reply.cmd == "error" then
    return nil, tostring(reply.message)
  end
  return reply
end

function Client:close()
  self.sock:close()
  self.ctx:close()
end

---------------------------------------------------------------------------
-- What the commands that talk to the master share
---------------------------------------------------------------------------

--- A list of ids as Python prints one: ['a', 'b'].
function M.py_list(ids)
  local quoted = {}
  for i, id in ipairs(ids) do
    quoted[i] = "'" .. tostring(id):gsub("\\", "\\\\"):gsub("'", "\\'") .. "'"
  end
  return "[" .. table.concat(quoted, ", ") .. "]"
end

--- The start of a command: --help (anywhere before `--`), its own parsing
--- (`command.parse`), then the master's options from `-c DIR`.
---@param argv table the command's arguments
---@param command table { usage = text, parse = function(argv) -> opts, extra }
---@param name string the command's name in messages ("brine", "brine run")
---@return table|nil opts (nil: stop with the status that follows)
---@return table|integer conf, or the exit status
---@return any what command.parse returned second
function M.prepare(argv, command, name)
  for _, a in ipairs(argv) do
    if a == "-h" or a == "--help" then
      io.stdout:write(command.usage)
      return nil, 0
    elseif a == "--" then
      break
    end
  end
  local opts, extra = command.parse(argv)
  if not opts then
    io.stderr:write(name, ": ", extra, "\nTry `", name, " --help`.\n")
    return nil, 2
  end
  local conf, err = daemon.load_config(opts.conf, "master")
  if not conf then
    io.stderr:write(name, ": ", err, "\n")
    return nil, 2
  end
  return opts, conf, extra
end

--- A function that prints a value with the outputter of --out (nested by
--- default), --out-indent and colour (on a terminal unless --no-color;
--- always with --force-color).
---@param o table out, output_indent, no_color, force_color
---@param default string|nil the outputter when --out was not given
---@return function print(value)
function M.printer(o, default)
  local loader = require("brine.loader")
  local color = o.force_color or (not o.no_color and posix.isatty(1))
  local out_opts = { color = color == true, output_indent = o.output_indent }
  local outputter = loader.outputter(o.out or default or "nested", out_opts)
  return function(value)
    local text = outputter.output(value, out_opts):gsub("%s+$", "")
    if text ~= "" then
      io.stdout:write(text, "\n")
      io.stdout:flush()
    end
  end
end

return M
