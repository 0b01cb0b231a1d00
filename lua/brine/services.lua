-- Device services, brine's counterpart of Salt's engines: long-running Lua
-- services declared in the minion config, each in a process of its own that
-- owns its device, restarted with exponential back-off when it fails, and
-- answering requests from execution modules over a Unix socket.
--
-- Three roles live here, each in its own process:
--   supervisor  forked by the minion (M.start); starts one process per
--               service, logs what they print, restarts them after a failure
--               and stops them with the minion. Runs a luv loop.
--   service     `brine lua -e ...` started by the supervisor (M._serve, a
--               fresh process that inherits nothing of the minion); loads
--               lua/services/NAME.lua, runs its init, loop and handle in
--               coroutines on a luv loop, and listens on SOCK_DIR/services/
--               NAME.sock (the folder is 0700).
--   client      any process (a job worker, `brine call --local`): M.call
--               sends one request and waits for the answer, with a timeout.
-- The wire: each message is a 4-byte big-endian length and a msgpack map;
-- a request {id, method, args}, an answer {id, ok = true, result} or
-- {id, error}. docs/hardware.md describes the service author's side.
local posix = require("brine.posix")
local msgpack = require("brine.msgpack")
local data = require("brine.data")
local core = require("brine.core")

local M = {}

M.DEFAULT_SOCK_DIR = "/var/run/brine/minion"
M.DEFAULT_TIMEOUT = 5

local MAX_MESSAGE = 1024 * 1024
local STOP_GRACE = 3          -- seconds between SIGTERM and SIGKILL
local SERVE_CHUNK = 'return require("brine.services")._serve()'
local LEVELS = { error = true, warning = true, info = true, debug = true }

-- Settings every entry may carry beside the service's own.
local RESERVED = { module = true, engine_module = true, restart_delay = true,
  restart_delay_max = true }

local function is_table(v)
  return type(v) == "table"
end

local function frame(msg)
  return string.pack(">s4", msgpack.pack(msg))
end

-- Takes one whole message off the front of buf: msg, rest | nil, buf |
-- false, problem (a length over the limit or a body that is not msgpack).
local function take_frame(buf)
  if #buf < 4 then
    return nil, buf
  end
  local len = string.unpack(">I4", buf)
  if len > MAX_MESSAGE then
    return false, string.format("a message of %d bytes (the limit is %d)", len, MAX_MESSAGE)
  end
  if #buf < 4 + len then
    return nil, buf
  end
  local msg, err = msgpack.unpack(buf:sub(5, 4 + len), { max_size = MAX_MESSAGE })
  if not is_table(msg) then
    return false, "a message that is not a msgpack map: " .. tostring(err)
  end
  return msg, buf:sub(5 + len)
end

---------------------------------------------------------------------------
-- Declarations
---------------------------------------------------------------------------

local function number_setting(settings, key, default, where, problems)
  local v = settings[key]
  if v == nil or data.is_null(v) then
    return default
  end
  if type(v) ~= "number" or v <= 0 then
    problems[#problems + 1] = string.format("%s: %s must be a positive number of seconds, not %s",
      where, key, tostring(v))
    return default
  end
  return v
end

-- One declared service from its name and settings; nil after a problem.
local function declaration(name, settings, where, problems)
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
    problems[#problems + 1] = string.format("%s: '%s' is not a service name (letters, digits,"
      .. " '_' and '-')", where, tostring(name))
    return nil
  end
  if settings == nil or data.is_null(settings) or settings == true then
    settings = {}
  elseif not is_table(settings) or data.is_array(settings) then
    problems[#problems + 1] = string.format("%s: the settings of service %s must be a mapping",
      where, name)
    return nil
  end
  local module = settings.module or settings.engine_module or name
  if type(module) ~= "string" or not module:match("^[%w_]+$") then
    problems[#problems + 1] = string.format("%s: service %s: '%s' is not a module name", where,
      name, tostring(module))
    return nil
  end
  local config = data.map()
  for k, v in pairs(settings) do
    if not RESERVED[k] then
      config[k] = v
    end
  end
  local decl = { name = name, module = module, config = config }
  decl.restart_delay = number_setting(settings, "restart_delay", 1, where, problems)
  decl.restart_delay_max = number_setting(settings, "restart_delay_max", 60, where, problems)
  decl.restart_delay_max = math.max(decl.restart_delay_max, decl.restart_delay)
  return decl
end

-- The entries of one option's value: a mapping of name to settings, or a
-- list (Salt's engines form) of names and one-key mappings.
local function entries(value, option, problems)
  local out = {}
  if data.is_array(value) or (is_table(value) and #value > 0) then
    for i, item in ipairs(value) do
      local where = string.format("%s: entry %d", option, i)
      if type(item) == "string" then
        out[#out + 1] = { item, nil, where }
      elseif is_table(item) and data.count(item) == 1 then
        local name, settings = next(item)
        out[#out + 1] = { name, settings, where }
      else
        problems[#problems + 1] = where .. ": expected a name or a mapping of one name"
          .. " to its settings"
      end
    end
  elseif is_table(value) then
    for name, settings in pairs(value) do
      out[#out + 1] = { name, settings, option .. ": " .. tostring(name) }
    end
  else
    problems[#problems + 1] = option .. ": expected a mapping or a list of services"
  end
  return out
end

-- The daemon's line-oriented config reader keeps a flow mapping such as
-- `{gnss: {port: /dev/ttyACM0}}` as text: read that text as YAML.
local function option_value(opts, option, problems)
  local value = opts[option]
  if type(value) ~= "string" then
    return value
  end
  local parsed, err = require("brine.yaml").load(value, { name = option })
  if parsed == nil then
    problems[#problems + 1] = string.format("%s: %s", option, err)
  end
  return parsed
end

--- The services the minion options declare, under `services:` and Salt's
--- `engines:`. Bad entries are left out and described in `problems`.
---@param opts table minion options
---@return table declarations array of {name, module, config, restart_delay, restart_delay_max}
---@return table problems array of messages naming the option and entry at fault
function M.declared(opts)
  local decls, problems, seen = {}, {}, {}
  for _, option in ipairs({ "services", "engines" }) do
    local value = option_value(opts, option, problems)
    if value ~= nil and not data.is_null(value) and value ~= false then
      for _, e in ipairs(entries(value, option, problems)) do
        local decl = declaration(e[1], e[2], e[3], problems)
        if decl and seen[decl.name] then
          problems[#problems + 1] = string.format("%s: service %s is declared twice; the first"
            .. " declaration is used", e[3], decl.name)
        elseif decl then
          seen[decl.name] = true
          decls[#decls + 1] = decl
        end
      end
    end
  end
  return decls, problems
end

---------------------------------------------------------------------------
-- Paths and status files
---------------------------------------------------------------------------

--- The folder of the service sockets: SOCK_DIR/services.
---@param where table|string|nil minion options, a sock_dir, or nil for the default
function M.dir(where)
  local sock_dir = type(where) == "table" and where.sock_dir or where
  if type(sock_dir) ~= "string" then
    sock_dir = M.sock_dir or M.DEFAULT_SOCK_DIR
  end
  return sock_dir .. "/services"
end

local function mkdir_private(path)
  local ok, err, code = posix.mkdir(path, 448)
  if not ok and code ~= "EEXIST" then
    return nil, err
  end
  return posix.chmod(path, 448)
end

local function prepare_dir(opts)
  local sock_dir = opts.sock_dir or M.DEFAULT_SOCK_DIR
  local ok, err = require("brine.master.daemon").mkdirs(sock_dir, 448)
  if not ok then
    return nil, err
  end
  local dir = M.dir(sock_dir)
  ok, err = mkdir_private(dir)
  if not ok then
    return nil, err
  end
  return dir
end

local function write_status(dir, name, status)
  posix.write_atomic(dir .. "/" .. name .. ".status", msgpack.pack(status), 384)
end

--- What the supervisor last wrote about a service: {state = "running" |
--- "restarting", pid, restarts, last_error, next_start (epoch seconds)}, or nil.
function M.status(name, where)
  local bytes = posix.read(M.dir(where) .. "/" .. name .. ".status", 65536)
  local status = bytes and msgpack.unpack(bytes)
  return is_table(status) and status or nil
end

-- True while `parent` is still this process's parent: once it exits (even
-- as a zombie nobody reaps) this process is given to another one.
local function parent_alive(parent)
  local stat = posix.read("/proc/self/stat", 4096)
  local ppid = stat and tonumber(stat:match("%)%s+%S+%s+(%d+)"))
  if ppid then
    return ppid == parent
  end
  return posix.kill(parent, 0) ~= nil
end

-- Calls on_stop(why) at SIGTERM or SIGINT, or once the process `parent`
-- is gone; ignores SIGPIPE. The handles do not keep the loop alive.
local function watch_stop(uv, parent, on_stop)
  for _, name in ipairs({ "sigterm", "sigint", "sigpipe" }) do
    local sig = uv.new_signal()
    sig:start(name, function()
      if name ~= "sigpipe" then
        on_stop("signal " .. name:upper())
      end
    end)
    sig:unref()
  end
  local watchdog = uv.new_timer()
  watchdog:start(1000, 1000, function()
    if parent and not parent_alive(parent) then
      on_stop("parent process " .. parent .. " is gone")
    end
  end)
  watchdog:unref()
end

---------------------------------------------------------------------------
-- The supervisor
---------------------------------------------------------------------------

local Supervisor = {}
Supervisor.__index = Supervisor

function Supervisor:status(svc, state, extra)
  local st = { state = state, pid = svc.pid, restarts = svc.restarts, module = svc.module,
    last_error = svc.last_error }
  for k, v in pairs(extra or {}) do
    st[k] = v
  end
  write_status(self.dir, svc.name, st)
end

-- A line the service printed: "LEVEL message" from svc.log, anything else
-- (a crash's traceback) as a warning.
function Supervisor:relay(svc, line)
  local level, text = line:match("^(%a+) (.*)$")
  if not LEVELS[level] then
    level, text = "warning", line
  end
  if level == "error" then
    svc.last_error = text
  end
  self.log[level](self.log, "service %s: %s", svc.name, text)
end

function Supervisor:read_output(svc, pipe)
  local pending = ""
  pipe:read_start(function(err, chunk)
    if chunk then
      pending = pending .. chunk
      for line in pending:gmatch("([^\n]*)\n") do
        self:relay(svc, line)
      end
      pending = pending:match("([^\n]*)$")
      return
    end
    if pending ~= "" then
      self:relay(svc, pending)
    end
    pipe:close()
    svc.output_done = true
    if err then
      self.log:debug("service %s: output: %s", svc.name, err)
    end
    self:maybe_finished(svc)
  end)
end

function Supervisor:launch(svc)
  local uv = self.uv
  svc.timer, svc.last_error = nil, nil
  local stdin, out = uv.new_pipe(false), uv.new_pipe(false)
  svc.exit_code, svc.output_done = nil, false
  local handle, pid = uv.spawn(self.exe, { args = { "lua", "-e", SERVE_CHUNK },
    stdio = { stdin, 2, out } }, function(code, signal)
    svc.exit_code, svc.exit_signal = code, signal
    self:maybe_finished(svc)
  end)
  if not handle then
    stdin:close()
    out:close()
    svc.last_error = "cannot start a process: " .. tostring(pid)
    svc.exit_code, svc.exit_signal, svc.output_done = -1, 0, true
    return self:maybe_finished(svc)
  end
  svc.handle, svc.pid, svc.started = handle, pid, uv.now() / 1000
  stdin:write(msgpack.pack({ name = svc.name, module = svc.module, config = svc.config,
    dir = self.dir, parent = posix.getpid(), extension_modules = self.extension_modules }))
  stdin:shutdown(function() stdin:close() end)
  self:read_output(svc, out)
  self.log:info("service %s: started (module %s, pid %d)", svc.name, svc.module, pid)
  self:status(svc, "running")
end

-- Called on the process's exit and at the end of its output; acts once
-- both happened, so the reason it printed last is known.
function Supervisor:maybe_finished(svc)
  if not svc.exit_code or not svc.output_done then
    return
  end
  if svc.handle then
    svc.handle:close()
  end
  local how = svc.exit_signal and svc.exit_signal > 0
    and string.format("killed by signal %d", svc.exit_signal)
    or string.format("exit status %d", svc.exit_code)
  svc.handle, svc.pid, svc.exit_code = nil, nil, nil
  if self.stopping then
    return self:maybe_done()
  end
  self:schedule_restart(svc, how)
end

function Supervisor:schedule_restart(svc, how)
  local uv = self.uv
  local ran = uv.now() / 1000 - (svc.started or 0)
  if ran >= svc.restart_delay_max then
    svc.failures = 0     -- it ran well for a while: start the back-off again
  end
  svc.failures = (svc.failures or 0) + 1
  svc.restarts = (svc.restarts or 0) + 1
  local delay = math.min(svc.restart_delay * 2 ^ (svc.failures - 1), svc.restart_delay_max)
  local reason = svc.last_error or "it ended without saying why"
  self.log:warning("service %s: stopped (%s): %s; restart %d in %.3g s", svc.name, how, reason,
    svc.restarts, delay)
  svc.last_error = reason
  self:status(svc, "restarting", { next_start = posix.time() + delay })
  svc.timer = uv.new_timer()
  svc.timer:start(math.floor(delay * 1000), 0, function()
    svc.timer:close()
    if not self.stopping then
      self:launch(svc)
    end
  end)
end

function Supervisor:maybe_done()
  for _, svc in ipairs(self.services) do
    if svc.pid then
      return
    end
  end
  for _, svc in ipairs(self.services) do
    posix.unlink(self.dir .. "/" .. svc.name .. ".status")
  end
  self.uv.stop()
end

function Supervisor:shutdown(why)
  if self.stopping then
    return
  end
  self.stopping = true
  self.log:info("services: stopping (%s)", why)
  for _, svc in ipairs(self.services) do
    if svc.timer and not svc.timer:is_closing() then
      svc.timer:close()
    end
    if svc.pid then
      posix.kill(svc.pid, "TERM")
    end
  end
  local grace = self.uv.new_timer()
  grace:start(STOP_GRACE * 1000, 0, function()
    for _, svc in ipairs(self.services) do
      if svc.pid then
        self.log:warning("service %s: did not stop in %d s; killing it", svc.name, STOP_GRACE)
        posix.kill(svc.pid, "KILL")
      end
    end
  end)
  grace:unref()
  self:maybe_done()
end

--- Runs the supervisor in this process until SIGTERM or SIGINT, or until
--- the process `plan.parent` (the minion) is gone. Needs a luv loop of its
--- own: call it in a fresh or freshly forked process.
---@param plan table {dir, services = declarations, parent = pid, extension_modules}
---@param log table a logger with error/warning/info/debug methods
function M.supervise(plan, log)
  local uv = require("luv")
  local self = setmetatable({ uv = uv, log = log, dir = plan.dir, services = {},
    exe = uv.exepath(), extension_modules = plan.extension_modules }, Supervisor)
  for _, decl in ipairs(plan.services) do
    local svc = {}
    for k, v in pairs(decl) do
      svc[k] = v
    end
    self.services[#self.services + 1] = svc
  end
  watch_stop(uv, plan.parent, function(why) self:shutdown(why) end)
  for _, svc in ipairs(self.services) do
    self:launch(svc)
  end
  uv.run()
end

local function spawn_supervisor(plan, opts)
  -- This process already drives a luv loop, which a forked child would
  -- share: run the supervisor as a fresh brine process instead.
  local uv = require("luv")
  local stdin = uv.new_pipe(false)
  local h = { spawned = true }
  local chunk = 'return require("brine.services")._supervise_stdin()'
  local handle, pid = uv.spawn(uv.exepath(), { args = { "lua", "-e", chunk },
    stdio = { stdin, 1, 2 } }, function()
    h.exited = true
  end)
  if not handle then
    stdin:close()
    return nil, "cannot start the services supervisor: " .. tostring(pid)
  end
  stdin:write(msgpack.pack({ plan = plan, log = { log_file = opts.log_file or false,
    log_level = opts.log_level, log_level_logfile = opts.log_level_logfile } }))
  local sent = false
  stdin:shutdown(function()
    stdin:close()
    sent = true
  end)
  while not sent do  -- this loop may not run again for a while
    uv.run("once")
  end
  h.pid, h.handle = pid, handle
  return h
end

--- The supervisor's entry in a fresh process: reads {plan, log} from stdin.
function M._supervise_stdin()
  local input = msgpack.unpack(io.read("a"))
  local log = require("brine.master.daemon").logger("brine.minion", input.log)
  M.supervise(input.plan, log)
  io.stderr:flush()
  posix._exit(0)
end

-- True when luv was opened in this process (its loop lives in the
-- registry even after package.loaded forgets the module, as busted's
-- insulation makes it): a forked child would share that loop's epoll.
local function has_luv_loop()
  return debug.getregistry().luv_context ~= nil
end

local function names_of(decls)
  local names = {}
  for i, d in ipairs(decls) do
    names[i] = d.name
  end
  return table.concat(names, ", ")
end

local function start(opts, log)
  local decls, problems = M.declared(opts)
  for _, problem in ipairs(problems) do
    log:error("services: %s", problem)
  end
  M.sock_dir = opts.sock_dir
  if #decls == 0 then
    return nil
  end
  local dir, err = prepare_dir(opts)
  if not dir then
    log:error("services: cannot make the socket folder: %s", err)
    return nil
  end
  local plan = { dir = dir, services = decls, parent = posix.getpid(),
    extension_modules = type(opts.extension_modules) == "string" and opts.extension_modules
      or nil }
  if has_luv_loop() then
    local h
    h, err = spawn_supervisor(plan, opts)
    if not h then
      log:error("services: %s", err)
    end
    return h
  end
  local pid
  pid, err = posix.fork()
  if not pid then
    log:error("services: cannot start the supervisor: %s", err)
    return nil
  elseif pid == 0 then
    local ok, why = xpcall(M.supervise, debug.traceback, plan, log)
    if not ok then
      log:error("services: the supervisor failed: %s", why)
    end
    posix._exit(ok and 0 or 1)
  end
  log:info("services: supervisor started (pid %d) for %s", pid, names_of(decls))
  return { pid = pid, forked = true }
end

--- Starts the services the options declare, under a supervisor process of
--- their own. Never raises: problems (a bad entry, a folder that cannot be
--- made) are logged and leave the minion running.
---@param opts table minion options (services, engines, sock_dir, extension_modules, log_*)
---@param log table the minion's logger
---@return table|nil handle for M.stop, nil when there is nothing to supervise
function M.start(opts, log)
  local ok, h = xpcall(start, debug.traceback, opts, log)
  if not ok then
    log:error("services: %s", h)
    return nil
  end
  return h
end

-- True once the supervisor has exited (reaped here, or already reaped by
-- luv or by the minion's own reaping).
--- Runs the services declared in the minion config of `conf_dir` in this
--- process, without the minion daemon, until SIGTERM or SIGINT: for
--- development and for masterless use with `brine call --local`:
--- `brine lua -e 'return require("brine.services").run("/etc/brine")'`.
---@param conf_dir string|nil the config folder (default /etc/brine)
---@return integer exit status
function M.run(conf_dir)
  local opts, err = require("brine.config").load(conf_dir, "minion", conf_dir ~= nil)
  local level = opts and (opts.log_level == "debug" or opts.log_level == "trace")
    and opts.log_level or "info"
  local log = require("brine.master.daemon").logger("brine.services", { log_level = level })
  if not opts then
    log:error("%s", err)
    return 1
  end
  local decls, problems = M.declared(opts)
  for _, problem in ipairs(problems) do
    log:error("services: %s", problem)
  end
  local dir
  dir, err = prepare_dir(opts)
  if #decls == 0 or not dir then
    log:error("services: %s", err or "no services declared in " .. opts.conf_file)
    return 1
  end
  M.supervise({ dir = dir, services = decls, extension_modules = opts.extension_modules }, log)
  return 0
end

local function gone(h)
  if h.spawned then
    require("luv").run("nowait")
  end
  return posix.waitpid(h.pid, true) ~= false
end

--- Stops the supervisor and with it every service (SIGTERM, then SIGKILL
--- after a grace period). Safe to call with nil or twice; never waits more
--- than STOP_GRACE + 3 seconds.
function M.stop(h)
  if type(h) ~= "table" or not h.pid or h.stopped then
    return
  end
  h.stopped = true
  posix.kill(h.pid, "TERM")
  local kill_at = posix.monotonic() + STOP_GRACE + 2
  while not gone(h) do
    local now = posix.monotonic()
    if now > kill_at + 1 then
      break
    elseif now > kill_at and not h.killed then
      posix.kill(h.pid, "KILL")
      h.killed = true
    end
    posix.sleep(0.01)
  end
  if h.handle and not h.handle:is_closing() then
    h.handle:close()
    require("luv").run("nowait")  -- ends the close now, not at lua_close
  end
end

---------------------------------------------------------------------------
-- Inside a service process: the scheduler and the `svc` object
---------------------------------------------------------------------------

local Svc = {}
Svc.__index = Svc

-- Runs fn(...) in a coroutine of this service; on_done(ok, ...) gets its end.
function Svc:spawn(fn, on_done, ...)
  local co = coroutine.create(fn)
  self.threads[co] = on_done
  self:resume(co, ...)
  return co
end

function Svc:resume(co, ...)
  local ret = table.pack(coroutine.resume(co, ...))
  if coroutine.status(co) == "dead" then
    local on_done = self.threads[co]
    self.threads[co] = nil
    if not ret[1] then
      self.log:debug("%s", debug.traceback(co, tostring(ret[2])))
    end
    if on_done then
      on_done(table.unpack(ret, 1, ret.n))
    end
  end
end

function Svc:current()
  local co = coroutine.running()
  if not self.threads[co] then
    error("svc waits only inside a service's init, handle or loop", 3)
  end
  return co
end

-- Resumes a waiting coroutine once, from a luv callback.
function Svc:waker(co)
  local woken = false
  return function(...)
    if not woken then
      woken = true
      self:resume(co, ...)
    end
  end
end

--- svc:sleep(seconds): lets the loop run for that long.
function Svc:sleep(seconds)
  local wake = self:waker(self:current())
  local t = self.uv.new_timer()
  t:start(math.max(0, math.floor(seconds * 1000)), 0, function()
    t:close()
    wake()
  end)
  return coroutine.yield()
end

function Svc:unwatch(fd, entry)
  local w = self.watches[fd]
  w.waiters[entry] = nil
  if not next(w.waiters) then
    w.poll:stop()
    w.poll:close()
    self.watches[fd] = nil
  end
end

--- svc:wait_readable(fd[, timeout]) -> true | nil, message, "timeout": waits
--- until fd can be read without blocking, while the loop runs.
function Svc:wait_readable(fd, timeout)
  local uv = self.uv
  local entry = { wake = self:waker(self:current()) }
  local w = self.watches[fd]
  if not w then
    w = { poll = uv.new_poll(fd), waiters = {} }
    self.watches[fd] = w
    w.poll:start("r", function(err)
      for e in pairs(w.waiters) do
        e.finish(err == nil, err)
      end
    end)
  end
  function entry.finish(ok, err)
    self:unwatch(fd, entry)
    if entry.timer then
      entry.timer:close()
    end
    if ok then
      entry.wake(true)
    else
      entry.wake(nil, err, err == "timeout" and "timeout" or "EIO")
    end
  end
  w.waiters[entry] = true
  if timeout then
    entry.timer = uv.new_timer()
    entry.timer:start(math.max(0, math.floor(timeout * 1000)), 0, function()
      entry.finish(false, "timeout")
    end)
  end
  return coroutine.yield()
end

-- Repeats op(0) (a read that takes only what is there) until it gives
-- something other than a timeout, waiting for the port between tries.
function Svc:retry_read(port, timeout, op)
  local deadline = timeout and self.uv.hrtime() / 1e9 + timeout
  while true do
    local v, err, code = op(0)
    if v or code ~= "timeout" then
      return v, err, code
    end
    local left = deadline and deadline - self.uv.hrtime() / 1e9
    if left and left <= 0 then
      return v, err, code
    end
    self:wait_readable(port:fileno(), left)
  end
end

--- svc:read_line(port[, timeout[, eol]]): port:read_line that lets the loop
--- run while it waits (brine.hw.serial ports and anything with the same
--- read_line and fileno).
function Svc:read_line(port, timeout, eol)
  return self:retry_read(port, timeout, function(t) return port:read_line(t, eol) end)
end

--- svc:read(port, n[, timeout]): port:read that lets the loop run while it waits.
function Svc:read(port, n, timeout)
  return self:retry_read(port, timeout, function(t) return port:read(n, t) end)
end

--- svc:call(name, method[, args[, timeout]]): services.call to another
--- service of this minion; waits without blocking this service's loop.
function Svc:call(name, method, args, timeout)
  return M.call(name, method, args, timeout, self.sock_dir)
end

--- svc:now() -> seconds on a monotonic clock.
function Svc:now()
  return self.uv.hrtime() / 1e9
end

-- svc.log:info(fmt, ...) and friends: lines the supervisor puts in the
-- minion's log under the service's name.
local function service_logger()
  local log = {}
  for level in pairs(LEVELS) do
    log[level] = function(_, fmt, ...)
      local text = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
      io.stderr:write(level, " ", (text:gsub("\n", " | ")), "\n")
    end
  end
  return log
end

-- The module of a service: <extension_modules>/services/NAME.lua first
-- (synced from the master), then lua/services/NAME.lua.
local function load_module(spec)
  local mod
  local path = spec.extension_modules
    and (spec.extension_modules .. "/services/" .. spec.module .. ".lua")
  if path and posix.stat(path) then
    local chunk, err = loadfile(path)
    if not chunk then
      return nil, err
    end
    mod = chunk()
  elseif core.source("services/" .. spec.module .. ".lua") then
    mod = require("services." .. spec.module)
  else
    return nil, string.format("no service module %s (no %s.lua in %s or in brine's"
      .. " lua/services)", spec.module, spec.module,
      (spec.extension_modules or "<extension_modules>") .. "/services")
  end
  if type(mod) ~= "table" or (type(mod.handle) ~= "function" and type(mod.loop) ~= "function")
  then
    return nil, string.format("service module %s has neither handle nor loop", spec.module)
  end
  return mod
end

---------------------------------------------------------------------------
-- Inside a service process: answering requests
---------------------------------------------------------------------------

function Svc:answer(req)
  local mod, reply = self.module, { id = req.id }
  if type(mod.handle) ~= "function" then
    reply.error = string.format("service %s answers no requests", self.name)
  else
    local ok, result, err = xpcall(mod.handle, debug.traceback, self.state, req.method,
      req.args, self)
    if not ok then
      self.log:error("request %s failed: %s", tostring(req.method), result)
      reply.error = tostring(result):match("^[^\n]*")
    elseif result == nil and err ~= nil then
      reply.error = tostring(err)
    else
      reply.ok, reply.result = true, result
    end
  end
  if not req.client:is_closing() then
    req.client:write(frame(reply))
  end
end

-- One coroutine answers the queued requests in order, so handle never
-- runs twice at once and may wait on the device.
function Svc:worker()
  while true do
    local req = table.remove(self.queue, 1)
    if req then
      self:answer(req)
    else
      self.idle = coroutine.running()
      coroutine.yield()
    end
  end
end

function Svc:enqueue(req)
  self.queue[#self.queue + 1] = req
  local idle = self.idle
  if idle then
    self.idle = nil
    self:resume(idle)
  end
end

function Svc:on_client(client)
  local buf = ""
  client:read_start(function(err, chunk)
    if not chunk then
      return client:close()
    end
    buf = buf .. chunk
    while true do
      local msg, rest = take_frame(buf)
      if msg == false then
        self.log:warning("bad request dropped: %s", rest)
        return client:close()
      elseif not msg then
        break
      end
      buf = rest
      if type(msg.method) ~= "string" then
        client:write(frame({ id = msg.id, error = "a request needs a method name" }))
      else
        self:enqueue({ client = client, id = msg.id, method = msg.method, args = msg.args })
      end
    end
    if err then
      client:close()
    end
  end)
end

function Svc:listen()
  local uv = self.uv
  local path = self.dir .. "/" .. self.name .. ".sock"
  posix.unlink(path)
  local server = uv.new_pipe(false)
  local ok, err = server:bind(path)
  if not ok then
    return nil, string.format("cannot listen on %s: %s", path, err)
  end
  posix.chmod(path, 384)
  server:listen(64, function()
    local client = uv.new_pipe(false)
    server:accept(client)
    self:on_client(client)
  end)
  self.server, self.path = server, path
  return true
end

function Svc:finish(code, why)
  if self.finished then
    return
  end
  self.finished = true
  if why then
    (code == 0 and self.log.info or self.log.error)(self.log, "%s", why)
  end
  if self.state ~= nil and type(self.module.close) == "function" then
    local ok, err = pcall(self.module.close, self.state, self)
    if not ok then
      self.log:warning("close: %s", err)
    end
  end
  if self.path then
    posix.unlink(self.path)
  end
  self.code = code
  self.uv.stop()
end

function Svc:started()
  local ok, err = self:listen()
  if not ok then
    return self:finish(1, err)
  end
  self:spawn(self.worker, function(done, e)
    self:finish(1, "the request worker failed: " .. tostring(e))
    return done
  end, self)
  if type(self.module.loop) == "function" then
    self:spawn(self.module.loop, function(done, e)
      self:finish(1, done and "the service's loop returned" or tostring(e))
    end, self.state, self)
  end
end

local function run_service(spec)
  local uv = require("luv")
  M.sock_dir = spec.dir:match("^(.*)/services$")
  local self = setmetatable({ uv = uv, name = spec.name, dir = spec.dir, config = spec.config,
    sock_dir = M.sock_dir,
    log = service_logger(), threads = {}, watches = {}, queue = {} }, Svc)
  local mod, err = load_module(spec)
  if not mod then
    self.log:error("%s", err)
    return 1
  end
  self.module = mod
  M._running_service = self
  watch_stop(uv, spec.parent, function(why)
    self:finish(0, "stopping: " .. why)
  end)
  local init = mod.init or function(config) return config end
  self:spawn(init, function(ok, state, why)
    if not ok or state == nil then
      local reason = ok and tostring(why or "init returned nothing") or tostring(state)
      return self:finish(1, "init: " .. reason)
    end
    self.state = state
    self:started()
  end, spec.config, self)
  if not self.finished then
    uv.run()
  end
  return self.code or 1
end

--- A service process's entry: reads its spec from stdin, runs the
--- service, exits. Started by the supervisor only.
function M._serve()
  local spec = msgpack.unpack(io.read("a"))
  local ok, code = xpcall(run_service, debug.traceback, spec)
  if not ok then
    io.stderr:write("error ", (tostring(code):gsub("\n", " | ")), "\n")
    code = 1
  end
  io.stderr:flush()
  posix._exit(code)
end

---------------------------------------------------------------------------
-- The client
---------------------------------------------------------------------------

local function down_message(name, where, err)
  if not (err:find("ENOENT", 1, true) or err:find("ECONNREFUSED", 1, true)) then
    return string.format("cannot reach service %s at %s/%s.sock: %s", name, M.dir(where), name,
      err)
  end
  local msg = string.format("service %s is not running", name)
  local st = M.status(name, where)
  if not st then
    return msg .. string.format(" (no socket %s/%s.sock: is it declared under services: in"
      .. " the minion config, and is the minion running?)", M.dir(where), name)
  end
  if st.last_error then
    msg = msg .. ": " .. st.last_error
  end
  if st.state == "restarting" and type(st.next_start) == "number" then
    msg = msg .. string.format(" (restart %d in %.1f s)", st.restarts or 0,
      math.max(0, st.next_start - posix.time()))
  end
  return msg
end

-- Waits for done() to be true: by yielding when called from a service's
-- coroutine (whose loop is already running), else by running the loop.
local function wait_until(uv, done, waker)
  local co, main = coroutine.running()
  if done() then
    return
  elseif not main and M._running_service and M._running_service.threads[co] then
    waker.resume = M._running_service:waker(co)
    return coroutine.yield()
  end
  while not done() do
    uv.run("once")
  end
  uv.run("nowait")  -- let the closed handles go
end

--- Sends one request to a service and waits for its answer.
---@param name string the service's name (as declared under services:)
---@param method string what to ask, e.g. "position"
---@param args any arguments for the service's handle (msgpack-able)
---@param timeout number|nil seconds to wait for the answer (default 5)
---@param where table|string|nil minion options or a sock_dir (default: the minion's)
---@return any result | nil, message, code ("down", "timeout" or "error")
function M.call(name, method, args, timeout, where)
  assert(type(name) == "string", "services.call: the service name must be a string")
  assert(type(method) == "string", "services.call: the method must be a string")
  timeout = timeout or M.DEFAULT_TIMEOUT
  local uv = require("luv")
  local path = M.dir(where) .. "/" .. name .. ".sock"
  local pipe, timer = uv.new_pipe(false), uv.new_timer()
  local result, waker = nil, {}
  local function finish(...)
    if result then
      return
    end
    result = table.pack(...)
    timer:close()
    pipe:close()
    if waker.resume then
      waker.resume()
    end
  end
  timer:start(math.max(0, math.floor(timeout * 1000)), 0, function()
    finish(nil, string.format("service %s did not answer '%s' within %g s", name, method,
      timeout), "timeout")
  end)
  local started, cerr = pipe:connect(path, function(err)
    if err then
      return finish(nil, down_message(name, where, err), "down")
    end
    pipe:write(frame({ id = 1, method = method, args = args }))
    local buf = ""
    pipe:read_start(function(rerr, chunk)
      if not chunk then
        return finish(nil, string.format("service %s closed the connection without answering"
          .. " '%s'%s", name, method, rerr and (": " .. rerr) or ""), "down")
      end
      buf = buf .. chunk
      local reply, rest = take_frame(buf)
      if reply == false then
        finish(nil, string.format("service %s sent %s", name, rest), "error")
      elseif reply and reply.ok then
        finish(not data.is_null(reply.result) and reply.result or nil)
      elseif reply then
        finish(nil, string.format("service %s: %s", name, tostring(reply.error)), "error")
      end
    end)
  end)
  if not started then
    finish(nil, down_message(name, where, tostring(cerr)), "down")
  end
  wait_until(uv, function() return result ~= nil end, waker)
  return table.unpack(result, 1, result.n)
end

return M
