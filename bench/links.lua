-- What one idle ZeroMQ link costs the process that accepts it: N DEALER
-- sockets (this process) connect to one ROUTER (a child process running
-- this script with --server), each sends one message and gets a reply, as
-- a minion's link does, and the ROUTER's RSS is read before and after.
-- Nothing of brine's own records is involved, so the figure is libzmq's:
-- the master holds two such links per minion (publish and request port).
-- Variants: CURVE with a ZAP handler that lets every key in and names it
-- (as the master's does) and the minion's options (heartbeats every 5 s);
-- without ZAP; without heartbeats; with smaller high-water marks; and
-- plain (NULL mechanism).
-- Figures only: never a pass/fail test.
--
-- Usage: brine lua bench/links.lua [SHARED_DIR] [N]   (default 1000 links)
local zmq = require("brine.zmq")
local posix = require("brine.posix")
local core = require("brine.core")
local wire = require("brine.master.wire")
local harness = dofile("spec/e2e/harness.lua")

local PER_CONTEXT = 400 -- sockets per ZeroMQ context (libzmq allows 1023)
local SETTLE_S = 2      -- idle time before the RSS is read

local VARIANTS = {
  { name = "CURVE and ZAP, heartbeats 5 s", curve = true, zap = true, heartbeat_ivl = 5000 },
  { name = "CURVE, heartbeats every 5 s", curve = true, heartbeat_ivl = 5000 },
  { name = "CURVE, no heartbeats", curve = true, heartbeat_ivl = 0 },
  { name = "CURVE, high-water marks 100", curve = true, heartbeat_ivl = 5000, hwm = 100 },
  { name = "NULL mechanism, no heartbeats", curve = false, heartbeat_ivl = 0 },
}

-- A message the size of a minion's first hello (1,735 bytes with its grains).
local HELLO = string.rep("g", 1735)

local function options(sock, v)
  wire.common_options(sock, { heartbeat_ivl = v.heartbeat_ivl, sndhwm = v.hwm,
    rcvhwm = v.hwm })
end

---------------------------------------------------------------------------
-- The ROUTER (child process)
---------------------------------------------------------------------------

-- Binds, answers every message, writes how many it has had to COUNT_FILE
-- and gives free heap back once the links are quiet, until killed.
local function serve(port, pub, sec, variant_index, count_file)
  local v = VARIANTS[tonumber(variant_index)]
  local ctx = assert(zmq.context({ max_sockets = 16 }))
  local router = assert(ctx:socket("ROUTER"))
  options(router, v)
  if v.curve then
    assert(router:setopt("curve_server", 1))
    assert(router:setopt("curve_publickey", pub))
    assert(router:setopt("curve_secretkey", sec))
  end
  local zap = ctx:socket("REP")
  if v.zap then
    assert(zap:bind("inproc://zeromq.zap.01"))
    assert(router:setopt("zap_domain", "links"))
  end
  assert(router:bind(wire.endpoint("127.0.0.1", tonumber(port))))
  local count, quiet_since, trimmed = 0, posix.monotonic(), true
  while true do
    local ready = zmq.poll({ router, zap }, 200) or {}
    if ready[2] then
      local req = zap:recv({ dontwait = true })
      if req then
        zap:send({ "1.0", req[2], "200", "OK", zmq.z85_encode(req[7]), "" })
      end
    end
    local frames = ready[1] and router:recv({ dontwait = true, max_frames = 2 })
    if frames then
      router:send({ frames[1], "ok" }, { dontwait = true })
      count, quiet_since, trimmed = count + 1, posix.monotonic(), false
      local f = assert(io.open(count_file, "w"))
      f:write(count, "\n")
      f:close()
    elseif not trimmed and posix.monotonic() - quiet_since > 0.5 then
      core.trim_memory()
      trimmed = true
    end
  end
end

---------------------------------------------------------------------------
-- The DEALERs (this process)
---------------------------------------------------------------------------

local function rss_kib(pid)
  return tonumber(harness.read("/proc/" .. pid .. "/status"):match("VmRSS:%s+(%d+) kB"))
end

local function count_in(path)
  local f = io.open(path)
  local n = f and tonumber(f:read("l"))
  if f then f:close() end
  return n or 0
end

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function start_server(dir, port, pub, sec, k)
  local count_file = string.format("%s/count-%d", dir, k)
  local cmd = string.format("exec /proc/%d/exe lua %s --server %d %s %s %d %s >%s/server-%d.log"
    .. " 2>&1 & echo $!", posix.getpid(), sh_quote(arg[0]), port, sh_quote(pub), sh_quote(sec),
    k, sh_quote(count_file), dir, k)
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid, count_file
end

local function wait_for(cond, seconds, what)
  local deadline = posix.monotonic() + seconds
  while not cond() do
    assert(posix.monotonic() < deadline, "timed out waiting for " .. what)
    posix.sleep(0.05)
  end
end

-- Opens n links with variant v to the ROUTER on port; returns them and
-- their contexts, for closing.
local function open_links(n, port, server_pub, v)
  local contexts, socks = {}, {}
  for i = 1, n do
    if (i - 1) % PER_CONTEXT == 0 then
      contexts[#contexts + 1] = assert(zmq.context({ max_sockets = PER_CONTEXT + 8 }))
    end
    local s = assert(contexts[#contexts]:socket("DEALER"))
    options(s, v)
    if v.curve then
      local pub, sec = zmq.curve_keypair()
      wire.curve_client(s, pub, sec, server_pub)
    end
    assert(s:connect(wire.endpoint("127.0.0.1", port)))
    assert(s:send({ HELLO }))
    socks[i] = s
  end
  return socks, contexts
end

local function close_links(socks, contexts)
  for _, s in ipairs(socks) do
    s:close()
  end
  for _, c in ipairs(contexts) do
    c:close()
  end
end

local function measure(dir, k, v, n)
  local port = harness.free_ports(1)[1]
  local pub, sec = zmq.curve_keypair()
  local pid, count_file = start_server(dir, port, pub, sec, k)
  local ok, err = pcall(function()
    wait_for(function() return harness.read("/proc/" .. pid .. "/status") ~= nil end, 5,
      "the server")
    posix.sleep(SETTLE_S)
    local before = rss_kib(pid)
    local socks, contexts = open_links(n, port, pub, v)
    wait_for(function() return count_in(count_file) >= n end, 120, n .. " messages")
    posix.sleep(SETTLE_S)
    local after = rss_kib(pid)
    print(string.format("%-32s ROUTER RSS %6.1f MiB -> %6.1f MiB: %6.2f KiB per link", v.name,
      before / 1024, after / 1024, (after - before) / n))
    close_links(socks, contexts)
  end)
  posix.kill(pid, "TERM")
  assert(ok, err)
end

local function main(argv)
  if argv[1] == "--server" then
    return serve(table.unpack(argv, 2))
  end
  local n = math.tointeger(tonumber(argv[2])) or 1000
  local dir = os.tmpname()
  os.remove(dir)
  assert(posix.mkdir(dir, 448))
  print(string.format("links: %d idle links (DEALER -> ROUTER on 127.0.0.1, one %d-byte"
    .. " message and a reply each): the ROUTER process's RSS", n, #HELLO))
  local ok, err = pcall(function()
    for k, v in ipairs(VARIANTS) do
      measure(dir, k, v, n)
    end
  end)
  os.execute("rm -rf '" .. dir .. "'")
  assert(ok, err)
end

main(arg)
