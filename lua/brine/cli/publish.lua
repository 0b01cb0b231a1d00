-- `brine [options] TARGET FUNCTION [ARGS...]`: publishes a job through the
-- master's local socket (sock_dir/master.ipc, reachable by the master's
-- user only) and prints each minion's return as it arrives, like `salt`.
-- Ends as soon as every targeted minion has returned, or at the timeout.
local data = require("brine.data")
local posix = require("brine.posix")
local daemon = require("brine.master.daemon")

local M = {}

M.summary = "publish a job to minions (salt)"
M.usage = [==[
Usage: brine [OPTIONS] TARGET FUNCTION [ARGS...]

  -c DIR               the master's configuration folder (default /etc/brine)
  -E, --pcre           TARGET is a regular expression on minion ids
  -L, --list           TARGET is a comma-separated list of ids
  -G, --grain          TARGET is a grain glob, e.g. os:Debian
  -P, --grain-pcre     TARGET is a grain regular expression
  -C, --compound       TARGET is a compound expression (G@, E@, L@, P@, and/or/not)
  -t, --timeout SECS   how long to wait for returns (default: the master's timeout)
  --async              print the job id and return at once
  -v, --verbose        print the job id and why minions did not return
  --show-jid           print the job id
  --hide-timeout       do not print minions that did not return
  --out OUTPUTTER      nested (default), json, txt or raw
Arguments of the form key=value are passed as keyword arguments.
]==]

local TYPE_FLAGS = { ["-E"] = "pcre", ["--pcre"] = "pcre", ["-L"] = "list",
  ["--list"] = "list", ["-G"] = "grain", ["--grain"] = "grain", ["-P"] = "grain_pcre",
  ["--grain-pcre"] = "grain_pcre", ["-C"] = "compound", ["--compound"] = "compound" }
local SWITCHES = { ["--async"] = "async", ["-v"] = "verbose", ["--verbose"] = "verbose",
  ["--show-jid"] = "show_jid", ["--hide-timeout"] = "hide_timeout" }
local VALUED = { ["-c"] = "conf", ["--config-dir"] = "conf", ["-t"] = "timeout",
  ["--timeout"] = "timeout", ["--out"] = "out" }

-- Salt reads each argument as YAML; the scalars of that are enough here.
-- TODO: use brine.yaml for arguments once it is part of the build.
local function arg_value(text)
  local v
  if text == "True" or text == "true" then return true end
  if text == "False" or text == "false" then return false end
  if text == "None" or text == "null" then return data.null end
  v = math.tointeger(tonumber(text))
  if v and text:match("^%-?%d+$") then return v end
  if text:match("^%-?%d+%.%d+$") then return tonumber(text) end
  return text
end

local function parse(args)
  local opts = { conf = "/etc/brine", tgt_type = "glob", out = "nested" }
  local positional = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then
      a = flag
    end
    if a == "--" then
      table.move(args, i + 1, #args, #positional + 1, positional)
      break
    elseif TYPE_FLAGS[a] then
      opts.tgt_type = TYPE_FLAGS[a]
    elseif SWITCHES[a] then
      opts[SWITCHES[a]] = true
    elseif VALUED[a] then
      local v = inline
      if v == nil then
        i = i + 1
        v = args[i]
      end
      if v == nil then
        return nil, a .. " needs a value"
      end
      opts[VALUED[a]] = v
    elseif a:match("^%-") and #positional < 2 and not a:match("^%-%d") then
      return nil, "unknown option '" .. args[i] .. "'"
    else
      positional[#positional + 1] = args[i]
    end
    i = i + 1
  end
  if #positional < 2 then
    return nil, "a target and a function are needed"
  end
  if opts.timeout then
    opts.timeout = tonumber(opts.timeout)
    if not opts.timeout or opts.timeout <= 0 then
      return nil, "-t needs a number of seconds"
    end
  end
  opts.tgt, opts.fun = positional[1], positional[2]
  opts.arg, opts.kwarg = data.array(), data.map()
  for j = 3, #positional do
    local k, v = positional[j]:match("^([%a_][%w_]*)=(.*)$")
    if k then
      opts.kwarg[k] = arg_value(v)
    else
      opts.arg[#opts.arg + 1] = arg_value(positional[j])
    end
  end
  if opts.tgt_type == "list" then
    local ids = data.array()
    for id in opts.tgt:gmatch("[^,%s]+") do
      ids[#ids + 1] = id
    end
    opts.tgt = ids
  end
  return opts
end

---------------------------------------------------------------------------
-- Output
---------------------------------------------------------------------------

local function json(v, indent, level)
  level = level or 0
  local kind = data.kind(v)
  local pad, inner = string.rep(" ", indent * level), string.rep(" ", indent * (level + 1))
  if kind == "null" or v == nil then return "null" end
  if kind == "boolean" then return tostring(v) end
  if kind == "integer" then return tostring(v) end
  if kind == "float" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    local s = string.format("%.17g", v)
    return s:find("[.eEn]") and s or (s .. ".0")
  end
  if kind == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t",
        ["\r"] = "\\r" }
      return named[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  local parts = {}
  if kind == "array" then
    for _, item in ipairs(v) do
      parts[#parts + 1] = inner .. json(item, indent, level + 1)
    end
    return #parts == 0 and "[]" or ("[\n" .. table.concat(parts, ",\n") .. "\n" .. pad .. "]")
  end
  for _, k in ipairs(data.keys(v)) do
    parts[#parts + 1] = inner .. json(tostring(k), indent) .. ": " .. json(v[k], indent, level + 1)
  end
  return #parts == 0 and "{}" or ("{\n" .. table.concat(parts, ",\n") .. "\n" .. pad .. "}")
end

local function scalar_text(v)
  local kind = data.kind(v)
  if kind == "null" then return "None" end
  if kind == "boolean" then return v and "True" or "False" end
  return tostring(v)
end

-- Salt's nested layout: four spaces per level, "- " for list items.
local function nested(v, level, out)
  local pad = string.rep(" ", 4 * level)
  local kind = data.kind(v)
  if kind == "map" then
    for _, k in ipairs(data.keys(v)) do
      local child = v[k]
      local ck = data.kind(child)
      if ck == "map" or ck == "array" then
        out[#out + 1] = pad .. tostring(k) .. ":"
        nested(child, level + 1, out)
      else
        out[#out + 1] = pad .. tostring(k) .. ":\n" .. string.rep(" ", 4 * (level + 1))
          .. scalar_text(child)
      end
    end
  elseif kind == "array" then
    for _, item in ipairs(v) do
      local ik = data.kind(item)
      if ik == "map" or ik == "array" then
        out[#out + 1] = pad .. "|_"
        nested(item, level + 1, out)
      else
        out[#out + 1] = pad .. "- " .. scalar_text(item)
      end
    end
  else
    for line in (scalar_text(v) .. "\n"):gmatch("(.-)\n") do
      out[#out + 1] = pad .. line
    end
  end
end

-- Prints one minion's return with the chosen outputter.
-- TODO: route through lua/outputters once they are part of the build.
local function print_return(id, value, opts)
  if opts.out == "json" then
    io.stdout:write(json(data.map({ { id, value } }), 4), "\n")
  elseif opts.out == "raw" then
    io.stdout:write(json(data.map({ { id, value } }), 0):gsub("\n%s*", " "), "\n")
  elseif opts.out == "txt" then
    io.stdout:write(id, ": ", scalar_text(value), "\n")
  else
    local out = {}
    nested(value, 1, out)
    local colour = posix.isatty(1)
    io.stdout:write(colour and ("\27[0;36m" .. id .. ":\27[0m") or (id .. ":"), "\n",
      table.concat(out, "\n"), "\n")
  end
  io.stdout:flush()
end

---------------------------------------------------------------------------
-- Talking to the master
---------------------------------------------------------------------------

local function connect(conf)
  local path = conf.sock_dir .. "/master.ipc"
  if not posix.stat(path) then
    return nil, "the master is not running (no socket at " .. path .. ")"
  end
  local wire = require("brine.master.wire")
  local zmq = require("brine.zmq")
  local ctx = assert(zmq.context())
  local sock = assert(ctx:socket("DEALER"))
  assert(sock:setopt("maxmsgsize", wire.MAX_MESSAGE))
  local ok, err = sock:connect("ipc://" .. path)
  if not ok then
    return nil, err
  end
  return { ctx = ctx, sock = sock, wire = wire, zmq = zmq }
end

local function receive(link, deadline)
  local left = math.max(0, math.floor((deadline - posix.monotonic()) * 1000))
  local ready = link.zmq.poll({ link.sock }, left)
  if not ready or not ready[1] then
    return nil
  end
  local frames = link.sock:recv({ dontwait = true })
  return frames and #frames == 1 and link.wire.decode(frames[1])
end

local function wait_returns(link, opts, reply, timeout)
  local pending = {}
  local count = 0
  for _, id in ipairs(reply.minions) do
    pending[id] = true
    count = count + 1
  end
  local failed = false
  local deadline = posix.monotonic() + timeout
  while count > 0 and posix.monotonic() < deadline do
    local msg = receive(link, deadline)
    if msg and msg.cmd == "return" and msg.jid == reply.jid and pending[msg.id] then
      pending[msg.id] = nil
      count = count - 1
      if msg.retcode ~= 0 then
        failed = true
      end
      print_return(msg.id, msg["return"], opts)
    end
  end
  local down = {}
  for _, id in ipairs(reply.not_connected or {}) do
    down[id] = true
  end
  for _, id in ipairs(reply.minions) do
    if pending[id] and not opts.hide_timeout then
      local why = down[id] and "Not connected" or "No response"
      print_return(id, "Minion did not return. [" .. why .. "]", opts)
    end
  end
  if count > 0 then
    return 1
  end
  return failed and 1 or 0
end

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  local opts, err = parse(args)
  if not opts then
    io.stderr:write("brine: ", err, "\nTry `brine --help`.\n")
    return 2
  end
  local conf
  conf, err = daemon.load_config(opts.conf, "master")
  if not conf then
    io.stderr:write("brine: ", err, "\n")
    return 2
  end
  local link
  link, err = connect(conf)
  if not link then
    io.stderr:write("brine: ", err, "\n")
    return 2
  end
  local request = data.map({ { "cmd", "publish" }, { "tgt", opts.tgt },
    { "tgt_type", opts.tgt_type }, { "fun", opts.fun }, { "arg", opts.arg },
    { "kwarg", opts.kwarg }, { "follow", not opts.async } })
  link.sock:send(link.wire.encode(request))
  local reply = receive(link, posix.monotonic() + 10)
  local status
  if not reply then
    io.stderr:write("brine: the master did not answer\n")
    status = 2
  elseif reply.cmd == "error" then
    io.stderr:write("brine: ", tostring(reply.message), "\n")
    status = 2
  elseif #reply.minions == 0 then
    io.stderr:write("No minions matched the target. No command was sent, no jid was"
      .. " assigned.\n")
    status = 2
  elseif opts.async then
    io.stdout:write("Executed command with job ID: ", reply.jid, "\n")
    status = 0
  else
    if opts.verbose then
      io.stdout:write("Executing job with jid ", reply.jid, "\n",
        string.rep("-", 43), "\n\n")
    elseif opts.show_jid then
      io.stdout:write("jid: ", reply.jid, "\n")
    end
    status = wait_returns(link, opts, reply, opts.timeout or tonumber(conf.timeout) or 5)
  end
  link.sock:close()
  link.ctx:close()
  return status
end

return M
