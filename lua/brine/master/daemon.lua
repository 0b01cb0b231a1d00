-- What the master and minion daemons share outside the wire: their
-- configuration (Salt's option names, read from `-c DIR`), logging to
-- stderr and the log file, folders with safe modes, and the pid file.
-- TODO: use brine.log once the daemons' log lines can go through it.
local posix = require("brine.posix")
local data = require("brine.data")
local config = require("brine.config")

local M = {}

local LEVELS = { error = 1, critical = 1, warning = 2, warn = 2, info = 3, debug = 4,
  trace = 5, all = 5, garbage = 5, quiet = 0 }

M.MASTER_DEFAULTS = {
  interface = "0.0.0.0", publish_port = 4505, ret_port = 4506, key_port = 4507,
  root_dir = "/", pki_dir = "/etc/brine/pki/master", cachedir = "/var/cache/brine/master",
  sock_dir = "/var/run/brine/master", pidfile = "/var/run/brine-master.pid",
  log_file = "/var/log/brine/master", log_level = "warning", log_level_logfile = false,
  auto_accept = false, open_mode = false, timeout = 5, keep_jobs = 24,
  queue_jobs = false, queue_ttl = 86400,
  key_scan_interval = 0.25,
  -- The master finds dead links through the kernel's TCP keepalive (idle
  -- 60 s, then 3 probes 10 s apart: closed within about 90 s), not
  -- through ZeroMQ heartbeats: libzmq cancels a heartbeat timer by
  -- scanning all of its I/O thread's timers, so the master's heartbeats
  -- cost it CPU growing with the square of its links (bench/swarm.lua: a
  -- whole core idle at 5,000 minions with 5 s heartbeats, and at 9,800
  -- with 30 s ones). Minions keep their heartbeats (one link each), which
  -- the master answers.
  tcp_keepalive = true, tcp_keepalive_idle = 60, tcp_keepalive_cnt = 3,
  tcp_keepalive_intvl = 10, heartbeat_ivl = 0, heartbeat_timeout = 0,
}

M.MINION_DEFAULTS = {
  master = "salt", master_port = 4506, publish_port = 4505, key_port = 4507, id = false,
  root_dir = "/", pki_dir = "/etc/brine/pki/minion", cachedir = "/var/cache/brine/minion",
  sock_dir = "/var/run/brine/minion", pidfile = "/var/run/brine-minion.pid",
  log_file = "/var/log/brine/minion", log_level = "warning", log_level_logfile = false,
  master_finger = false, recon_default = 1000, recon_max = 10000, recon_randomize = true,
  acceptance_wait_time = 10, acceptance_wait_time_max = 0, auth_timeout = 5,
  master_alive_interval = 30, job_timeout = 3600, tcp_keepalive = true,
  random_reauth_delay = 10, ping_interval = 0,
  tcp_keepalive_idle = 300, tcp_keepalive_cnt = -1, tcp_keepalive_intvl = -1,
}

-- Fills options the configuration left unset (absent, null or empty)
-- with the daemon's defaults.
local function fill_defaults(opts, defaults)
  for k, v in pairs(defaults) do
    local cur = opts[k]
    if cur == nil or data.is_null(cur) or cur == "" then
      opts[k] = v
    end
  end
end

-- Salt's rule for its two names of one option: keep_jobs (hours, the
-- old name) counts when it was changed from 24 and keep_jobs_seconds was
-- left at its default.
local function keep_jobs_seconds(opts)
  local hours, seconds = tonumber(opts.keep_jobs), tonumber(opts.keep_jobs_seconds) or 86400
  if hours and hours ~= 24 and seconds == 86400 then
    return hours * 3600
  end
  return seconds
end

--- Loads the options of a daemon: DIR/<role> and DIR/<role>.d/*.conf as
--- brine.config reads them (YAML, Salt's option names, root_dir applied),
--- with the daemon's own options defaulted.
---@param dir string the configuration folder
---@param role string "master" or "minion"
---@return table|nil opts
---@return string|nil error naming the file and line
function M.load_config(dir, role)
  local opts, err = config.load(dir, role, dir ~= config.default_dir)
  if not opts then
    return nil, err
  end
  fill_defaults(opts, role == "master" and M.MASTER_DEFAULTS or M.MINION_DEFAULTS)
  if role == "master" then
    opts.keep_jobs_seconds = keep_jobs_seconds(opts)
    local n = opts.worker_threads
    if math.type(n) ~= "integer" or n < 1 then
      return nil, dir .. "/master: worker_threads: a positive integer expected, not "
        .. tostring(n)
    end
  end
  opts.conf_dir = dir
  return opts
end

---------------------------------------------------------------------------
-- Logging
---------------------------------------------------------------------------

local Log = {}
Log.__index = Log

--- A logger named `name` writing to stderr and, when given, a file.
function M.logger(name, opts)
  return setmetatable({ name = name }, Log):configure(opts)
end

--- Sets the levels from opts and (re)opens the log file, so a rotated
--- file is let go (SIGHUP). Returns the logger.
function Log:configure(opts)
  self.level = LEVELS[opts.log_level or "warning"] or 2
  self.file_level = LEVELS[opts.log_level_logfile or opts.log_level or "warning"] or self.level
  if self.file then
    self.file:close()
    self.file = nil
  end
  self:close_stream()
  local path = type(opts.log_file) == "string" and opts.log_file or ""
  self.syslog, self.facility = M.syslog_target(path)
  if not self.syslog and path ~= "" then
    M.mkdirs(path:match("^(.*)/[^/]*$") or ".", 448)
    self.file = io.open(path, "a")
    if self.file then
      self.file:setvbuf("line")
    end
  end
  return self
end

local LABELS = { "ERROR", "WARNING", "INFO", "DEBUG", "TRACE" }
local SEVERITIES = { 3, 4, 6, 7, 7 } -- syslog's err, warning, info, debug
local FACILITIES = { LOG_KERN = 0, LOG_USER = 1, LOG_MAIL = 2, LOG_DAEMON = 3, LOG_AUTH = 4,
  LOG_SYSLOG = 5, LOG_LPR = 6, LOG_NEWS = 7, LOG_UUCP = 8, LOG_CRON = 9, LOG_AUTHPRIV = 10,
  LOG_FTP = 11, LOG_LOCAL0 = 16, LOG_LOCAL1 = 17, LOG_LOCAL2 = 18, LOG_LOCAL3 = 19,
  LOG_LOCAL4 = 20, LOG_LOCAL5 = 21, LOG_LOCAL6 = 22, LOG_LOCAL7 = 23 }

--- Salt's syslog forms of log_file: `file:///dev/log[/LOG_FACILITY]` (a
--- Unix datagram socket), `udp://HOST[:PORT][/LOG_FACILITY]` and
--- `tcp://HOST[:PORT][/LOG_FACILITY]`. Returns the target ("unix:PATH",
--- "udp:HOST:PORT" for posix.send_datagram, or "tcp:HOST:PORT") and the
--- facility number, or nil for a plain file.
function M.syslog_target(log_file)
  local proto, rest = log_file:match("^(%a+)://(.+)$")
  if proto == "udp" or proto == "tcp" then
    local hostport, fac = rest:match("^([^/]+)/?(.*)$")
    local host, port = hostport:match("^(.+):(%d+)$")
    return proto .. ":" .. (host or hostport) .. ":" .. (port or "514"), FACILITIES[fac] or 1
  end
  local path = log_file:match("^file://(/.+)$")
  if not path then
    return nil
  end
  local facility = 1
  local base, fac = path:match("^(.*)/(LOG_%u+%d?)$")
  if base and FACILITIES[fac] then
    path, facility = base, FACILITIES[fac]
  end
  return "unix:" .. path, facility
end

function Log:write(level, fmt, ...)
  if level > self.level and level > self.file_level then
    return
  end
  local t = posix.time()
  local text = string.format(fmt, ...)
  local line = string.format("%s,%03d [%s][%-8s] %s\n",
    os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)),
    math.floor((t % 1) * 1000), self.name, LABELS[level], text)
  if level <= self.level then
    io.stderr:write(line)
  end
  if level > self.file_level then
    return
  end
  if self.file then
    self.file:write(line)
  elseif self.syslog then
    local ident = self.name:gsub("%.", "-")
    local msg = string.format("<%d>%s %s[%d]: [%s] %s",
      self.facility * 8 + SEVERITIES[level], os.date("%b %e %H:%M:%S", math.floor(t)),
      ident, posix.getpid(), LABELS[level], text)
    if self.syslog:sub(1, 4) == "tcp:" then
      self:send_stream(msg:gsub("\n", " ") .. "\n")
    else
      posix.send_datagram(self.syslog, msg)
    end
  end
end

-- Syslog over TCP: one connection, each message ended by a newline (RFC
-- 6587's non-transparent framing, which rsyslog and syslog-ng read by
-- default). Writing never blocks the daemon: a line that finds the
-- connection's buffer full (STREAM_BACKLOG bytes already waiting) is
-- dropped and counted, and a lost connection is tried again at most every
-- STREAM_RETRY seconds, the lines between being dropped.
local STREAM_BACKLOG, STREAM_RETRY = 65536, 10

function Log:send_stream(line)
  local now = posix.monotonic()
  self.stream_dropped = self.stream_dropped or 0
  if not self.stream_fd then
    if not self.stream_retry or now >= self.stream_retry then
      local host, port = self.syslog:match("^tcp:(.+):(%d+)$")
      self.stream_fd = posix.stream_connect(host, port, 1)
      self.stream_retry = not self.stream_fd and now + STREAM_RETRY or nil
    end
    if not self.stream_fd then
      self.stream_dropped = self.stream_dropped + 1
      return
    end
    self.stream_pending = ""
    if self.stream_dropped > 0 then
      line = string.format("<%d>%s [WARNING] %d log line(s) dropped\n", self.facility * 8 + 4,
        (self.name:gsub("%.", "-")), self.stream_dropped) .. line
      self.stream_dropped = 0
    end
  end
  if #self.stream_pending + #line > STREAM_BACKLOG then
    self.stream_dropped = self.stream_dropped + 1
    line = ""
  end
  local out = self.stream_pending .. line
  local sent = posix.send_nowait(self.stream_fd, out)
  if not sent then
    self:close_stream()
    self.stream_retry = now + STREAM_RETRY
    return
  end
  self.stream_pending = out:sub(sent + 1)
end

function Log:close_stream()
  if self.stream_fd then
    posix.close(self.stream_fd)
    self.stream_fd = nil
  end
end

function Log:error(...) self:write(1, ...) end
function Log:warning(...) self:write(2, ...) end
function Log:info(...) self:write(3, ...) end
function Log:debug(...) self:write(4, ...) end
function Log:trace(...) self:write(5, ...) end

---------------------------------------------------------------------------
-- Files
---------------------------------------------------------------------------

--- Creates path and its missing parents with mode; an existing folder is
--- left as it is. Returns true or nil, message.
function M.mkdirs(path, mode)
  local st = posix.stat(path)
  if st then
    if st.type ~= "directory" then
      return nil, path .. " exists and is not a folder"
    end
    return true
  end
  local parent = path:match("^(.+)/[^/]+$")
  if parent then
    local ok, err = M.mkdirs(parent, mode)
    if not ok then
      return nil, err
    end
  end
  local ok, err, code = posix.mkdir(path, mode)
  if not ok and code ~= "EEXIST" then
    return nil, err
  end
  return true
end

-- True when pid is a live process (a zombie, which has exited and waits to
-- be reaped, is not).
local function running(pid)
  if not posix.kill(pid, 0) then
    return false
  end
  local stat = posix.read("/proc/" .. pid .. "/stat", 512)
  return not (stat and stat:match("^%d+ %b() (%a)") == "Z")
end

--- Checks that no other live process holds the pid file; true or nil,
--- message.
function M.check_pidfile(path)
  local old = posix.read(path, 64)
  local pid = old and math.tointeger(tonumber(old:match("%d+")))
  if pid and pid ~= posix.getpid() and running(pid) then
    return nil, string.format("%s: process %d is running", path, pid)
  end
  return true
end

--- Writes the pid file; refuses when another live process holds it.
function M.write_pidfile(path)
  local ok, err = M.check_pidfile(path)
  if not ok then
    return nil, err
  end
  M.mkdirs(path:match("^(.*)/[^/]*$") or ".", 0755)
  return posix.write_atomic(path, tostring(posix.getpid()) .. "\n", 420)
end

-- Options a running daemon takes over on SIGHUP; the others (ports,
-- folders, keys) need a restart.
local RELOADABLE = {
  master = { "auto_accept", "autosign_file", "nodegroups", "timeout", "keep_jobs_seconds",
    "queue_jobs", "queue_ttl", "key_scan_interval", "log_level", "log_level_logfile",
    "log_file" },
  minion = { "master", "job_timeout", "master_alive_interval", "recon_default", "recon_max",
    "recon_randomize", "acceptance_wait_time", "acceptance_wait_time_max",
    "random_reauth_delay", "log_level", "log_level_logfile", "log_file" },
}

--- SIGHUP: reads the configuration again (with the command line's
--- options over it), takes over the options that can change while
--- running and reopens the log file. A configuration with an error
--- changes nothing; either way the log says what happened.
function M.reload(opts, role, log)
  local fresh, err = M.load_config(opts.conf_dir, role)
  if not fresh then
    log:error("configuration not reloaded: %s", err)
    return
  end
  for k, v in pairs(opts._overrides or {}) do
    fresh[k] = v
  end
  for _, key in ipairs(RELOADABLE[role]) do
    opts[key] = fresh[key]
  end
  log:configure(opts)
  log:info("configuration reloaded")
end

--- Parses `-c DIR`, `-l LEVEL`, `--log-file F`, `-d`, `--pid-file F`;
--- returns opts or nil, message.
function M.parse_daemon_args(args, role)
  local conf_dir, overrides = "/etc/brine", {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local val = args[i + 1]
    if a == "-c" or a == "--config-dir" then
      conf_dir, i = val, i + 1
    elseif a:match("^%-%-config%-dir=") then
      conf_dir = a:match("=(.*)")
    elseif a == "-l" or a == "--log-level" then
      overrides.log_level, i = val, i + 1
    elseif a == "--log-file" then
      overrides.log_file, i = val, i + 1
    elseif a == "--pid-file" then
      overrides.pidfile, i = val, i + 1
    elseif a == "-d" or a == "--daemon" then
      overrides.daemon = true
    else
      return nil, string.format("brine %s: unknown option '%s'", role, a)
    end
    if not conf_dir then
      return nil, string.format("brine %s: %s needs a value", role, a)
    end
    i = i + 1
  end
  local opts, err = M.load_config(conf_dir, role)
  if not opts then
    return nil, err
  end
  for k, v in pairs(overrides) do
    opts[k] = v
  end
  opts._overrides = overrides
  return opts
end

--- Runs `brine master` or `brine minion` after its usage was handled:
--- the options, then (with -d) detaching, the pid file, the daemon's loop
--- until SIGTERM, and the clean-up. Returns the exit status.
---@param args table the command line after the subcommand
---@param role string "master" or "minion"
---@return integer
function M.main(args, role)
  local opts, err = M.parse_daemon_args(args, role)
  if not opts then
    io.stderr:write(err, "\n")
    return 2
  end
  local log = M.logger("brine." .. role, opts)
  if role == "master" and opts.open_mode then
    log:error("open_mode is refused: it would accept any key; accept keys with `brine key`")
    return 2
  end
  local ok
  if opts.daemon then
    ok, err = M.check_pidfile(opts.pidfile)
    if ok then
      ok, err = posix.daemonize()
    end
    if not ok then
      log:error("cannot detach: %s", err)
      return 1
    end
  end
  ok, err = M.write_pidfile(opts.pidfile)
  if not ok then
    log:error("pid file: %s", err)
    return 1
  end
  local server = require("brine." .. role .. ".server").new(opts, log)
  ok, err = server:start()
  if ok then
    server:run()
  else
    log:error("cannot start: %s", err)
  end
  server:stop()
  os.remove(opts.pidfile)
  return ok and 0 or 1
end

--- The `brine master` and `brine minion` subcommands (lua/brine/cli/):
--- the daemon of `role` in the foreground, or detached with -d, with the
--- options of DIR/<role> and DIR/<role>.d/*.conf.
---@param role string "master" or "minion"
---@return table subcommand {summary=, usage=, run=}
function M.subcommand(role)
  local usage = string.format([==[
Usage: brine %s [-c DIR] [-d] [-l LEVEL] [--log-file FILE] [--pid-file FILE]

Runs the %s with the configuration DIR/%s and DIR/%s.d/*.conf
(default /etc/brine), in the foreground unless -d (--daemon) detaches it.
SIGTERM or SIGINT stop it cleanly; SIGHUP reopens the log file and reloads
the options that can change while running. docs/operations.md lists the
options.
]==], role, role, role, role)
  return {
    summary = string.format("run the %s daemon (salt-%s)", role, role),
    usage = usage,
    run = function(args)
      if args[1] == "-h" or args[1] == "--help" then
        io.stdout:write(usage)
        return 0
      end
      return M.main(args, role)
    end,
  }
end

return M
