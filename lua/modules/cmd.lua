-- The cmd execution module, as Salt's cmdmod: run a command and return its
-- output (cmd.run, cmd.shell, cmd.run_stdout, cmd.run_stderr), everything
-- about it (cmd.run_all) or its exit code (cmd.retcode); find programs
-- (cmd.which, cmd.has_exec). Commands run through brine.proc; in builds
-- without it, through luv's process spawning.
-- luacheck: globals context opts
local data = require("brine.data")

-- A C module of brine when this build has it, else nil (without asking
-- the file system, as a failed require would).
local function c_module(name)
  if package.loaded[name] or package.preload[name] then
    return require(name)
  end
  return nil
end

local M = {}

local null = data.null

-- The keyword arguments every run function takes, with Salt's defaults.
local RUN_DEFAULTS = {
  cwd = null, stdin = null, runas = null, group = null, shell = "/bin/sh",
  python_shell = null, env = null, clean_env = false, rstrip = true, umask = null,
  output_loglevel = "debug", hide_output = false, timeout = null, ignore_retcode = false,
  success_retcodes = null, raise_err = false,
}

M.__defaults__ = {
  run = RUN_DEFAULTS, shell = RUN_DEFAULTS, run_stdout = RUN_DEFAULTS,
  run_stderr = RUN_DEFAULTS, run_all = RUN_DEFAULTS, retcode = RUN_DEFAULTS,
}

--- Splits a command line into words with the POSIX shell's quoting rules
--- (Python's shlex.split): quotes group, backslashes escape.
---@param s string
---@return table words
function M._shlex_split(s)
  local words, cur, have = {}, {}, false
  local i, n = 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c:match("%s") then
      if have then
        words[#words + 1] = table.concat(cur)
        cur, have = {}, false
      end
    elseif c == "\\" then
      if i < n then
        i = i + 1
        cur[#cur + 1] = s:sub(i, i)
      end
      have = true
    elseif c == "'" then
      local j = s:find("'", i + 1, true)
      if not j then
        error("No closing quotation", 0)
      end
      cur[#cur + 1] = s:sub(i + 1, j - 1)
      have, i = true, j
    elseif c == '"' then
      i = i + 1
      while true do
        if i > n then
          error("No closing quotation", 0)
        end
        local d = s:sub(i, i)
        if d == '"' then
          break
        elseif d == "\\" and s:sub(i + 1, i + 1):match('[\\"$`\n]') then
          i = i + 1
          d = s:sub(i, i)
        end
        cur[#cur + 1] = d
        i = i + 1
      end
      have = true
    else
      cur[#cur + 1] = c
      have = true
    end
    i = i + 1
  end
  if have then
    words[#words + 1] = table.concat(cur)
  end
  return words
end

local function passwd_entry(user)
  local f = io.open("/etc/passwd", "r")
  if not f then
    return nil
  end
  for line in f:lines() do
    local name, _, uid, gid, _, home = line:match("^([^:]*):([^:]*):(%d+):(%d+):([^:]*):([^:]*)")
    if name == user or (tonumber(user) and uid == tostring(user)) then
      f:close()
      return { uid = tonumber(uid), gid = tonumber(gid), home = home, name = name }
    end
  end
  f:close()
  return nil
end

local function group_id(group)
  if tonumber(group) then
    return tonumber(group)
  end
  for line in io.lines("/etc/group") do
    local name, gid = line:match("^([^:]*):[^:]*:(%d+)")
    if name == group then
      return tonumber(gid)
    end
  end
  return nil
end

-- brine.proc.run's contract, on luv, for builds without brine.proc:
-- { retcode, stdout, stderr, pid, timed_out } | nil, err.
-- TODO: remove once brine.proc is always built in.
local function luv_run(spec)
  local uv = require("luv")
  local argv = spec.argv or { "/bin/sh", "-c", spec.shell }
  local env
  if spec.env or spec.clear_env then
    env = {}
    local seen = {}
    for k, v in pairs(spec.env or {}) do
      env[#env + 1] = k .. "=" .. tostring(v)
      seen[k] = true
    end
    if not spec.clear_env then
      for k, v in pairs(uv.os_environ()) do
        if not seen[k] then
          env[#env + 1] = k .. "=" .. v
        end
      end
    end
  end
  local stdin, out, err = uv.new_pipe(false), uv.new_pipe(false), uv.new_pipe(false)
  local chunks = { out = {}, err = {} }
  local result = { timed_out = false }
  local open = 3
  local timer
  local function done()
    open = open - 1
    if open == 0 and timer then
      timer:close()
    end
  end
  local handle, pid
  handle, pid = uv.spawn(argv[1], {
    args = { table.unpack(argv, 2) }, stdio = { stdin, out, err },
    env = env, detached = spec.timeout ~= nil,
    cwd = spec.cwd, uid = spec.uid, gid = spec.gid,
  }, function(code, signal)
    result.retcode = signal ~= 0 and 128 + signal or code
    handle:close()
    done()
  end)
  if not handle then
    stdin:close()
    out:close()
    err:close()
    uv.run("default")
    return nil, pid
  end
  result.pid = pid
  local function reader(pipe, into)
    pipe:read_start(function(e, chunk)
      if chunk then
        into[#into + 1] = chunk
      elseif e or not chunk then
        pipe:close()
        done()
      end
    end)
  end
  reader(out, chunks.out)
  reader(err, chunks.err)
  if spec.stdin then
    stdin:write(spec.stdin)
  end
  stdin:shutdown(function()
    stdin:close()
  end)
  if spec.timeout then
    timer = uv.new_timer()
    timer:start(math.floor(spec.timeout * 1000), 0, function()
      result.timed_out = true
      if not handle:is_closing() then
        -- the whole process group: a shell's children hold the pipes too
        uv.kill(-pid, "sigkill")
      end
      timer:close()
      timer = nil
    end)
  end
  uv.run("default")
  result.stdout = table.concat(chunks.out)
  result.stderr = table.concat(chunks.err)
  return result
end

local function run_process(spec)
  local proc = c_module("brine.proc")
  if proc and type(proc.run) == "function" then
    return proc.run(spec)
  end
  return luv_run(spec)
end

-- Salt runs a command through the shell when called from the command line
-- (a job id is present) or when python_shell is true; else it splits the
-- command into words itself and runs no shell.
local function use_shell(python_shell, kwargs)
  if python_shell ~= nil then
    return python_shell == true
  end
  return kwargs ~= nil and kwargs.__pub_jid ~= nil and kwargs.__pub_jid ~= ""
end

local function strip_end(s)
  return (s:gsub("%s+$", ""))
end

-- The environment, stdin and umask of the run spec from Salt's options.
local function io_spec(o, raw)
  local spec = { cwd = o.cwd, timeout = tonumber(o.timeout), clear_env = o.clean_env == true }
  if o.stdin ~= nil then
    -- as Salt: a "\n" typed on the command line is a newline
    spec.stdin = raw.str(o.stdin):gsub("\\n", "\n")
  end
  if o.umask ~= nil then
    spec.umask = tonumber(tostring(o.umask), 8)
  end
  if o.env ~= nil then
    if type(o.env) ~= "table" or data.kind(o.env) ~= "map" then
      error("Invalid input: env must be a mapping of variable: value", 0)
    end
    spec.env = {}
    for k, v in pairs(o.env) do
      spec.env[k] = raw.str(v)
    end
  end
  return spec
end

-- The program and its arguments: through the shell, or the words of cmd.
-- Returns the argv and the command as Salt shows it in messages.
local function command_argv(cmd, o, raw)
  if type(cmd) == "table" then
    local words = {}
    for i, w in ipairs(cmd) do
      words[i] = tostring(w)
    end
    cmd = words
  elseif type(cmd) ~= "string" then
    error("cmd must be a string or a list of words, not " .. tostring(cmd), 0)
  end
  if o.shell_mode then
    local line = type(cmd) == "table" and table.concat(cmd, " ") or cmd
    return { o.shell or "/bin/sh", "-c", line }, line
  end
  local argv = type(cmd) == "table" and cmd or M._shlex_split(cmd)
  if #argv == 0 then
    error("no command to run", 0)
  end
  local shown = raw.repr(data.array(argv))
  if not M.which(argv[1]) then
    return nil, string.format("Unable to run command '%s' with the context '%s', reason: "
      .. "[Errno 2] No such file or directory: '%s'", shown, argv[1], argv[1])
  end
  return argv, shown
end

-- The user, group and folder to run in: Salt runs in the home folder of
-- the user (runas, else the current one) unless cwd says otherwise.
local function place_spec(spec, o)
  if o.runas then
    local pw = passwd_entry(o.runas)
    if not pw then
      return nil, string.format("User '%s' is not available", o.runas)
    end
    spec.user, spec.uid, spec.gid = o.runas, pw.uid, pw.gid
    spec.cwd = spec.cwd or pw.home
  end
  spec.cwd = spec.cwd or os.getenv("HOME") or "/"
  if o.group then
    spec.group, spec.gid = o.group, group_id(o.group)
  end
  local st = require("luv").fs_stat(spec.cwd)
  if spec.cwd:sub(1, 1) ~= "/" or not st or st.type ~= "directory" then
    return nil, string.format("Specified cwd '%s' either not absolute or does not exist",
      spec.cwd)
  end
  return spec
end

-- Salt's run_all mapping from the process result.
local function result(res, o, shown, raw)
  local ret = { pid = res.pid, retcode = res.retcode, stdout = res.stdout or "",
    stderr = res.stderr or "" }
  if res.timed_out then
    ret.stdout = string.format("%s : Timed out after %s seconds", shown, raw.str(o.timeout))
    ret.retcode = 1
  end
  if o.rstrip ~= false then
    ret.stdout, ret.stderr = strip_end(ret.stdout), strip_end(ret.stderr)
  end
  if type(o.success_retcodes) == "table" then
    for _, code in ipairs(o.success_retcodes) do
      if code == ret.retcode then
        ret.retcode = 0
      end
    end
  end
  return ret
end

-- Runs cmd with Salt's options; returns Salt's run_all mapping, or nil and
-- Salt's message. merge sends stderr into stdout (cmd.run).
local function run(cmd, o, merge)
  local raw = require("outputters.raw")
  local spec = io_spec(o, raw)
  local argv, shown = command_argv(cmd, o, raw)
  if not argv then
    return nil, shown
  end
  spec.argv = argv
  if merge then
    -- stdout and stderr share one pipe, in the order the program wrote them
    spec.argv = { "/bin/sh", "-c", 'exec "$@" 2>&1', "sh", table.unpack(argv) }
  end
  local ok, err = place_spec(spec, o)
  if not ok then
    return nil, err
  end
  local res
  res, err = run_process(spec)
  if not res then
    return nil, string.format("Unable to run command '%s' with the context '%s', reason: %s",
      shown, argv[1], err)
  end
  local ret = result(res, o, shown, raw)
  context.retcode = o.ignore_retcode and 0 or ret.retcode
  if o.raise_err and ret.retcode ~= 0 then
    return nil, string.format("Command '%s' failed with return code: %d", shown, ret.retcode)
  end
  return ret
end

-- brine.log when the build has it: Salt's cmd module logs failed commands
-- where salt-call users see them.
local function logger()
  if package.loaded["brine.log"] or package.preload["brine.log"] then
    return require("brine.log")
  end
  return nil
end

local LOG_RANK = { trace = 1, debug = 2, info = 3, warning = 4, error = 5 }

-- Logs a finished command as Salt's cmd functions do: a failure at error
-- level (naming only the program, never its arguments), then the output
-- at output_loglevel (raised to error for a failure); "quiet" logs nothing.
local function log_result(cmd, o, ret, fields)
  local log = logger()
  local level = o.output_loglevel or "debug"
  if not log or level == "quiet" or not LOG_RANK[level] then
    return
  end
  local failed = not o.ignore_retcode and ret.retcode ~= 0
  if failed then
    local first = type(cmd) == "table" and tostring(cmd[1]) or cmd:match("^%s*(%S*)")
    log.error("Command '%s' failed with return code: %s", first, tostring(ret.retcode))
    if LOG_RANK[level] < LOG_RANK.error then
      level = "error"
    end
  end
  for _, f in ipairs(fields) do
    if f[2] ~= "" or f[1] == "output" then
      log[level]("%s: %s", f[1], tostring(f[2]))
    end
  end
end

-- The options table from the bound parameters.
local function options(cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
                       umask, output_loglevel, hide_output, timeout, ignore_retcode,
                       success_retcodes, raise_err, kwargs)
  return { cwd = cwd, stdin = stdin, runas = runas, group = group, shell = shell,
    shell_mode = use_shell(python_shell, kwargs), env = env, clean_env = clean_env,
    rstrip = rstrip, umask = umask, output_loglevel = output_loglevel,
    hide_output = hide_output, timeout = timeout, ignore_retcode = ignore_retcode,
    success_retcodes = success_retcodes, raise_err = raise_err }
end

--- Runs a command and returns its output (stdout and stderr together),
--- trailing white space removed. Through the shell when called from the
--- command line or with python_shell=True; else split into words, no shell.
function M.run(cmd, cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
               umask, output_loglevel, hide_output, timeout, ignore_retcode,
               success_retcodes, raise_err, kwargs)
  local o = options(cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
    umask, output_loglevel, hide_output, timeout, ignore_retcode, success_retcodes,
    raise_err, kwargs)
  local ret, err = run(cmd, o, true)
  if not ret then
    return nil, err
  end
  log_result(cmd, o, ret, { { "output", ret.stdout } })
  return o.hide_output and "" or ret.stdout
end

--- Runs a command through the shell (cmd.run with python_shell=True).
function M.shell(cmd, cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
                 umask, output_loglevel, hide_output, timeout, ignore_retcode,
                 success_retcodes, raise_err, kwargs)
  if python_shell == nil then
    python_shell = true
  end
  return M.run(cmd, cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
    umask, output_loglevel, hide_output, timeout, ignore_retcode, success_retcodes,
    raise_err, kwargs)
end

local function run_part(part)
  return function(cmd, cwd, stdin, runas, group, shell, python_shell, env, clean_env,
                  rstrip, umask, output_loglevel, hide_output, timeout, ignore_retcode,
                  success_retcodes, raise_err, kwargs)
    local o = options(cwd, stdin, runas, group, shell, python_shell, env, clean_env, rstrip,
      umask, output_loglevel, hide_output, timeout, ignore_retcode, success_retcodes,
      raise_err, kwargs)
    local ret, err = run(cmd, o, false)
    if not ret then
      return nil, err
    end
    if not o.ignore_retcode and ret.retcode ~= 0 then
      log_result(cmd, o, ret, { { "stdout", ret.stdout }, { "stderr", ret.stderr },
        { "retcode", ret.retcode } })
    end
    if part == "all" then
      if o.hide_output then
        ret.stdout, ret.stderr = "", ""
      end
      return ret
    end
    return o.hide_output and "" or ret[part]
  end
end

--- Runs a command and returns its standard output only.
M.run_stdout = run_part("stdout")

--- Runs a command and returns its standard error only.
M.run_stderr = run_part("stderr")

--- Runs a command and returns pid, retcode, stdout and stderr.
M.run_all = run_part("all")

--- Runs a command and returns its exit code.
M.retcode = run_part("retcode")

--- The full path of an executable found on PATH, or None.
function M.which(cmd)
  if cmd:find("/", 1, true) then
    local f = io.open(cmd, "r")
    if f then
      f:close()
      return cmd
    end
    return nil
  end
  local proc = c_module("brine.proc")
  if proc and type(proc.which) == "function" then
    return proc.which(cmd)
  end
  local uv = require("luv")
  for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
    local path = dir .. "/" .. cmd
    if uv.fs_access(path, "X") and (uv.fs_stat(path) or {}).type == "file" then
      return path
    end
  end
  return nil
end

--- True when an executable of that name is on PATH.
function M.has_exec(cmd)
  return M.which(cmd) ~= nil
end

return M
