-- What the master and minion daemons share outside the wire: their
-- configuration (Salt's option names, read from `-c DIR`), logging to
-- stderr and the log file, folders with safe modes, and the pid file.
-- TODO: use brine.config and brine.log once they are part of the build;
-- until then the small loader and logger here stand in for them.
local posix = require("brine.posix")

local M = {}

local LEVELS = { error = 1, critical = 1, warning = 2, warn = 2, info = 3, debug = 4,
  trace = 5, all = 5, garbage = 5, quiet = 0 }

M.MASTER_DEFAULTS = {
  interface = "0.0.0.0", publish_port = 4505, ret_port = 4506, key_port = 4507,
  root_dir = "/", pki_dir = "/etc/brine/pki/master", cachedir = "/var/cache/brine/master",
  sock_dir = "/var/run/brine/master", pidfile = "/var/run/brine-master.pid",
  log_file = "/var/log/brine/master", log_level = "warning", log_level_logfile = false,
  auto_accept = false, open_mode = false, timeout = 5, keep_jobs = 24,
  key_scan_interval = 0.25, tcp_keepalive = true, tcp_keepalive_idle = 300,
  tcp_keepalive_cnt = -1, tcp_keepalive_intvl = -1,
}

M.MINION_DEFAULTS = {
  master = "salt", master_port = 4506, publish_port = 4505, key_port = 4507, id = false,
  root_dir = "/", pki_dir = "/etc/brine/pki/minion", cachedir = "/var/cache/brine/minion",
  sock_dir = "/var/run/brine/minion", pidfile = "/var/run/brine-minion.pid",
  log_file = "/var/log/brine/minion", log_level = "warning", log_level_logfile = false,
  master_finger = false, recon_default = 1000, recon_max = 10000, recon_randomize = true,
  acceptance_wait_time = 10, acceptance_wait_time_max = 0, auth_timeout = 5,
  master_alive_interval = 30, job_timeout = 3600, tcp_keepalive = true,
  tcp_keepalive_idle = 300, tcp_keepalive_cnt = -1, tcp_keepalive_intvl = -1,
}

local PATH_OPTIONS = { "pki_dir", "cachedir", "sock_dir", "pidfile", "log_file" }

local function scalar(text)
  if text == "" or text == "~" or text == "null" then
    return nil
  end
  local q = text:match('^"(.*)"$') or text:match("^'(.*)'$")
  if q then
    return q
  end
  local lower = text:lower()
  if lower == "true" or lower == "yes" or lower == "on" then return true end
  if lower == "false" or lower == "no" or lower == "off" then return false end
  return math.tointeger(tonumber(text)) or tonumber(text) or text
end

--- Reads a config file of `option: value` lines (the subset of YAML that
--- daemon options use: scalars and flow lists). Returns a table, or nil and
--- "FILE:LINE: problem".
function M.read_config(path)
  local f = io.open(path, "r")
  if not f then
    return {}
  end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    local text = line:gsub("%s+#.*$", ""):gsub("^#.*$", "")
    if text:match("%S") then
      local key, value = text:match("^([%w_]+):%s*(.-)%s*$")
      if not key then
        f:close()
        return nil, string.format("%s:%d: expected 'option: value'", path, n)
      end
      local list = value:match("^%[(.*)%]$")
      if list then
        local items = {}
        for item in list:gmatch("[^,]+") do
          items[#items + 1] = scalar(item:match("^%s*(.-)%s*$"))
        end
        out[key] = items
      else
        out[key] = scalar(value)
      end
    end
  end
  f:close()
  return out
end

local function merge(into, from)
  for k, v in pairs(from) do
    into[k] = v
  end
end

--- Loads DIR/<role> and, for a minion, DIR/minion.d/*.conf over the
--- defaults, then puts root_dir in front of the path options.
---@return table|nil opts
---@return string|nil error naming the file and line
function M.load_config(dir, role)
  local opts = {}
  merge(opts, role == "master" and M.MASTER_DEFAULTS or M.MINION_DEFAULTS)
  local main, err = M.read_config(dir .. "/" .. role)
  if not main then
    return nil, err
  end
  merge(opts, main)
  local names = posix.listdir(dir .. "/" .. role .. ".d") or {}
  for _, name in ipairs(names) do
    if name:match("%.conf$") then
      local extra, e = M.read_config(dir .. "/" .. role .. ".d/" .. name)
      if not extra then
        return nil, e
      end
      merge(opts, extra)
    end
  end
  local root = opts.root_dir or "/"
  if root ~= "/" then
    for _, k in ipairs(PATH_OPTIONS) do
      local p = opts[k]
      if type(p) == "string" and p:sub(1, #root) ~= root then
        opts[k] = root:gsub("/$", "") .. p
      end
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
  local self = setmetatable({ name = name, level = LEVELS[opts.log_level or "warning"] or 2 }, Log)
  self.file_level = LEVELS[opts.log_level_logfile or opts.log_level or "warning"] or self.level
  if opts.log_file and opts.log_file ~= "" then
    M.mkdirs(opts.log_file:match("^(.*)/[^/]*$") or ".", 0700)
    self.file = io.open(opts.log_file, "a")
    if self.file then
      self.file:setvbuf("line")
    end
  end
  return self
end

local LABELS = { "ERROR", "WARNING", "INFO", "DEBUG", "TRACE" }

function Log:write(level, fmt, ...)
  if level > self.level and level > self.file_level then
    return
  end
  local t = posix.time()
  local line = string.format("%s,%03d [%s][%-8s] %s\n", os.date("!%Y-%m-%d %H:%M:%S", math.floor(t)),
    math.floor((t % 1) * 1000), self.name, LABELS[level], string.format(fmt, ...))
  if level <= self.level then
    io.stderr:write(line)
  end
  if self.file and level <= self.file_level then
    self.file:write(line)
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

--- Writes the pid file; refuses when another live process holds it.
function M.write_pidfile(path)
  local old = posix.read(path, 64)
  local pid = old and math.tointeger(tonumber(old:match("%d+")))
  if pid and pid ~= posix.getpid() and posix.kill(pid, 0) then
    return nil, string.format("%s: process %d is running", path, pid)
  end
  M.mkdirs(path:match("^(.*)/[^/]*$") or ".", 0755)
  return posix.write_atomic(path, tostring(posix.getpid()) .. "\n", 420)
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
  merge(opts, overrides)
  return opts
end

return M
