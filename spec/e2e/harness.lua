-- Runs real master and minion daemons for the end-to-end specs: a
-- temporary folder per test, free ports on 127.0.0.1, logs to files, and
-- every daemon stopped at the end (killed when it does not stop).
local posix = require("brine.posix")
local zmq = require("brine.zmq")

local M = {}

local BIN = os.getenv("BRINE_BIN") or "brine"

function M.free_ports(n)
  local ctx = assert(zmq.context())
  local socks, ports = {}, {}
  for i = 1, n do
    socks[i] = assert(ctx:socket("ROUTER"))
    assert(socks[i]:bind("tcp://127.0.0.1:*"))
    ports[i] = tonumber(socks[i]:getopt("last_endpoint"):match(":(%d+)$"))
  end
  for _, s in ipairs(socks) do
    s:close()
  end
  ctx:close()
  return ports
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

function M.read(path)
  local f = io.open(path)
  if not f then
    return ""
  end
  local text = f:read("a")
  f:close()
  return text
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Config text from ordered { option, value } pairs, with the top-level
-- options of the YAML text `extra` (an "option: value" line and the
-- indented lines below it) replacing them or added at the end.
local function config_text(options, extra)
  local over, order, last = {}, {}, nil
  for line in (extra or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+):%s*(.*)$")
    if k then
      over[k], last = v, k
      order[#order + 1] = k
    elseif last then
      over[last] = over[last] .. "\n" .. line
    end
  end
  local lines = {}
  for _, kv in ipairs(options) do
    lines[#lines + 1] = kv[1] .. ": " .. tostring(over[kv[1]] or kv[2])
    over[kv[1]] = nil
  end
  for _, k in ipairs(order) do
    if over[k] then
      lines[#lines + 1] = k .. ": " .. over[k]
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

--- A new test world: folders and configs for one master and minions;
--- `extra` holds "option: value" lines for the master's config.
function M.world(extra)
  local dir = os.tmpname()
  os.remove(dir)
  assert(posix.mkdir(dir, 448))
  local ports = M.free_ports(3)
  local w = { dir = dir, pids = {}, ports = ports }
  w.mconf = dir .. "/master-conf"
  posix.mkdir(w.mconf, 448)
  write(w.mconf .. "/master", config_text({
    { "root_dir", dir .. "/master" }, { "interface", "127.0.0.1" },
    { "publish_port", ports[1] }, { "ret_port", ports[2] }, { "key_port", ports[3] },
    { "log_level", "debug" }, { "timeout", 5 }, { "key_scan_interval", 0.1 },
  }, extra))
  return setmetatable(w, { __index = M })
end

--- For a describe block: a new world with a running master before each
--- test, cleaned up after it (busted's before_each and after_each are
--- passed in: they live in the spec's environment, not here). Returns a
--- stand-in for the current world (fields and methods reach it).
function M.each_world(before_each, after_each)
  local current
  before_each(function()
    current = M.world()
    current:start_master()
  end)
  after_each(function()
    current:cleanup()
  end)
  return setmetatable({}, {
    __index = function(_, k)
      local v = current[k]
      if type(v) == "function" then
        return function(_, ...) return v(current, ...) end
      end
      return v
    end,
    __newindex = function(_, k, v)
      current[k] = v
    end,
  })
end

--- Writes a minion's config; `extra` holds "option: value" lines that
--- override the defaults below. Returns the config folder.
function M:minion_conf(id, extra)
  local conf = self.dir .. "/minion-" .. id
  posix.mkdir(conf, 448)
  local options = {
    { "root_dir", self.dir .. "/minion-root-" .. id }, { "master", "localhost" },
    { "publish_port", self.ports[1] }, { "master_port", self.ports[2] },
    { "key_port", self.ports[3] }, { "id", id }, { "log_level", "debug" },
    { "acceptance_wait_time", 0.2 }, { "master_alive_interval", 0.5 },
    { "auth_timeout", 1 }, { "recon_default", 100 }, { "recon_max", 500 },
    { "random_reauth_delay", 0 },
  }
  write(conf .. "/minion", config_text(options, extra))
  return conf
end

function M:spawn(name, args)
  local log = self.dir .. "/" .. name .. ".log"
  local cmd = string.format("%s %s >>%s 2>&1 & echo $!", shell_quote(BIN), args,
    shell_quote(log))
  local p = assert(io.popen(cmd))
  local pid = tonumber(p:read("l"))
  p:close()
  self.pids[name] = pid
  return pid, log
end

local function count(text, needle)
  local n, pos = 0, 1
  while true do
    local _, e = text:find(needle, pos, true)
    if not e then
      return n
    end
    n, pos = n + 1, e + 1
  end
end
M.count = count

--- Starts the master (again) and waits until it listens.
function M:start_master()
  local before = count(M.read(self.dir .. "/master.log"), "master listening")
  local _, log = self:spawn("master", "master -c " .. shell_quote(self.mconf))
  self.master_log = log
  assert(self:wait(function()
    return count(M.read(log), "master listening") > before
  end, 10), "the master did not start:\n" .. M.read(log))
end

function M:start_minion(id, extra)
  local conf = self:minion_conf(id, extra)
  local _, log = self:spawn("minion-" .. id, "minion -c " .. shell_quote(conf))
  return log
end

function M:minion_log(id)
  return M.read(self.dir .. "/minion-" .. id .. ".log")
end

--- True while pid runs. A daemon that exited stays a zombie when nothing
--- reaps orphans (a container whose init does not), so that counts as gone.
function M.alive(pid)
  local stat = M.read("/proc/" .. pid .. "/stat")
  if stat == "" then
    return posix.kill(pid, 0) and true or false
  end
  return stat:match("^%d+ %b() (%a)") ~= "Z"
end

--- Stops a daemon with SIGTERM (or the signal given), then SIGKILL after
--- five seconds. Returns true when it stopped by itself.
function M:stop(name, signal)
  local pid = self.pids[name]
  if not pid then
    return
  end
  self.pids[name] = nil
  posix.kill(pid, signal or "TERM")
  local deadline = posix.monotonic() + 5
  while posix.monotonic() < deadline do
    if not M.alive(pid) then
      return true
    end
    posix.sleep(0.01)
  end
  posix.kill(pid, "KILL")
  return false
end

function M:stop_all()
  for name in pairs(self.pids) do
    self:stop(name)
  end
end

--- Stops everything and removes the folder.
function M:cleanup()
  self:stop_all()
  os.execute("rm -rf " .. shell_quote(self.dir))
end

--- Polls fn until it returns a true value or `seconds` pass.
function M:wait(fn, seconds)
  local deadline = posix.monotonic() + (seconds or 5)
  repeat
    local v = fn()
    if v then
      return v
    end
    posix.sleep(0.05)
  until posix.monotonic() > deadline
  return nil
end

--- Runs `brine ARGS` (a shell-quoted string); returns status, stdout.
function M:brine(args)
  local out = self.dir .. "/cli.out"
  local ok, _, status = os.execute(string.format("%s %s >%s 2>&1", shell_quote(BIN), args,
    shell_quote(out)))
  return ok and 0 or status, M.read(out)
end

function M:key(args)
  return self:brine("key -c " .. shell_quote(self.mconf) .. " " .. args)
end

function M:salt(args)
  return self:brine("-c " .. shell_quote(self.mconf) .. " " .. args)
end

--- Waits until the master's log shows the minion connected.
function M:wait_connected(id, seconds)
  return self:wait(function()
    return M.read(self.master_log):find("minion " .. id .. ": connected", 1, true)
  end, seconds or 5)
end

--- Waits until the master's log shows the minion connected once more
--- than `times` (a reconnect).
function M:wait_connected_again(id, times, seconds)
  local needle = "minion " .. id .. ": connected"
  return self:wait(function()
    return count(M.read(self.master_log), needle) > times
  end, seconds or 5)
end

--- The key pair in a pki folder: DIR/NAME.pub, DIR/NAME.key (Z85 text).
function M.keypair(dir, name)
  return M.read(dir .. "/" .. name .. ".pub"):match("%S+"),
    M.read(dir .. "/" .. name .. ".key"):match("%S+")
end

function M:master_pki()
  return self.dir .. "/master/etc/brine/pki/master"
end

function M:minion_pki(id)
  return self.dir .. "/minion-root-" .. id .. "/etc/brine/pki/minion"
end

--- A CURVE DEALER connected to the master's port number `which` (1:
--- publish, 2: request) with the given key pair (a new one by default).
--- Returns the socket and its context.
function M:curve_client(which, pub, sec)
  if not pub then
    pub, sec = zmq.curve_keypair()
  end
  local ctx = assert(zmq.context())
  local sock = assert(ctx:socket("DEALER"))
  assert(sock:setopt("curve_publickey", pub))
  assert(sock:setopt("curve_secretkey", sec))
  assert(sock:setopt("curve_serverkey", (M.keypair(self:master_pki(), "master"))))
  assert(sock:connect("tcp://127.0.0.1:" .. self.ports[which]))
  return sock, ctx, pub
end

--- The next message on sock within `seconds`, or nil.
function M.receive(sock, seconds)
  local ready = zmq.poll({ sock }, math.floor((seconds or 1) * 1000))
  if ready and ready[1] then
    return sock:recv({ dontwait = true })
  end
  return nil
end

--- Starts a minion, accepts its key and waits until it is connected.
function M:accept(id, extra)
  self:start_minion(id, extra)
  assert(self:wait_pending(id), "the key of " .. id .. " never showed as pending")
  local status, out = self:key("-a " .. id .. " -y")
  assert(status == 0, out)
  assert(self:wait_connected(id), "minion " .. id .. " never connected")
end

function M:wait_pending(id)
  return self:wait(function()
    local _, out = self:key("-l pending")
    return out:find("\n" .. id .. "\n", 1, true)
  end, 5)
end

---------------------------------------------------------------------------
-- A link that can be cut: a TCP proxy on loopback that stops passing bytes
-- (both ways) while a file exists, without closing anything, as a mobile
-- network does in a tunnel. Connections opened during a cut stay dead
-- after it, as their start was lost. While CUT_FILE.tamper exists, it
-- flips one bit of each chunk it passes instead (a tampering network).
-- The proxy is this file run as a script:
--   brine lua spec/e2e/harness.lua proxy LISTEN TARGET CUT_FILE
---------------------------------------------------------------------------

local function run_proxy(listen_port, target_port, cut_file)
  local uv = require("luv")
  local function cut()
    return uv.fs_stat(cut_file) ~= nil
  end
  local function pipe(from, to, dead)
    from:read_start(function(err, chunk)
      if err or not chunk then
        for _, h in ipairs({ from, to }) do
          if not h:is_closing() then h:close() end
        end
      elseif not cut() and not dead then
        if uv.fs_stat(cut_file .. ".tamper") then
          local i = #chunk // 2 + 1
          chunk = chunk:sub(1, i - 1) .. string.char(chunk:byte(i) ~ 1) .. chunk:sub(i + 1)
        end
        to:write(chunk)
      end
    end)
  end
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", listen_port))
  assert(server:listen(128, function()
    local inbound, outbound = uv.new_tcp(), uv.new_tcp()
    server:accept(inbound)
    local dead = cut()
    outbound:connect("127.0.0.1", target_port, function(err)
      if err then
        inbound:close()
        outbound:close()
        return
      end
      pipe(inbound, outbound, dead)
      pipe(outbound, inbound, dead)
    end)
  end))
  io.stdout:write("proxy listening\n")
  io.stdout:flush()
  uv.run()
end

--- Puts a cuttable link in front of the master's three ports; returns
--- the ports to give the minion (publish, request, key) and the file
--- whose existence cuts the link (with ".tamper" added: alters it).
function M:cuttable_link()
  local ports = M.free_ports(3)
  local cut_file = self.dir .. "/link-cut"
  for i, port in ipairs(ports) do
    local name = "proxy" .. i
    local _, log = self:spawn(name, string.format("lua %s/spec/e2e/harness.lua proxy %d %d %s",
      shell_quote(os.getenv("BRINE_SOURCE_DIR") or "."), port, self.ports[i],
      shell_quote(cut_file)))
    assert(self:wait(function()
      return M.read(log):find("proxy listening", 1, true)
    end, 10), "the link proxy did not start:\n" .. M.read(log))
  end
  return ports, cut_file
end

-- A syslog collector: appends each UDP datagram received on PORT to FILE,
-- one a line. brine lua spec/e2e/harness.lua syslog PORT FILE
local function run_syslog(port, path)
  local uv = require("luv")
  local udp = uv.new_udp()
  assert(udp:bind("127.0.0.1", port))
  local function append(text)
    local f = io.open(path, "a")
    f:write(text)
    f:close()
  end
  udp:recv_start(function(err, datagram)
    if not err and datagram then append(datagram .. "\n") end
  end)
  -- syslog over TCP on the same port number: the stream as it arrives
  local tcp = uv.new_tcp()
  assert(tcp:bind("127.0.0.1", port))
  tcp:listen(16, function()
    local client = uv.new_tcp()
    tcp:accept(client)
    client:read_start(function(err, chunk)
      if err or not chunk then client:close() else append(chunk) end
    end)
  end)
  io.stdout:write("syslog listening\n")
  io.stdout:flush()
  uv.run()
end

--- Starts a syslog collector on a free port (UDP and TCP); returns the
--- port and the file the messages go to.
function M:syslog_collector()
  local port = M.free_ports(1)[1] -- free for TCP, and UDP is rarely busy on it
  local path = self.dir .. "/syslog.out"
  local _, log = self:spawn("syslog", string.format("lua %s/spec/e2e/harness.lua syslog %d %s",
    shell_quote(os.getenv("BRINE_SOURCE_DIR") or "."), port, shell_quote(path)))
  assert(self:wait(function()
    return M.read(log):find("syslog listening", 1, true)
  end, 10), "the syslog collector did not start:\n" .. M.read(log))
  return port, path
end

if arg and arg[0] and arg[0]:match("harness%.lua$") and arg[1] == "proxy" then
  run_proxy(tonumber(arg[2]), tonumber(arg[3]), arg[4])
elseif arg and arg[0] and arg[0]:match("harness%.lua$") and arg[1] == "syslog" then
  run_syslog(tonumber(arg[2]), arg[3])
end

return M
