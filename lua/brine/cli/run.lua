-- `brine run [options] FUNCTION [ARGS...]`: runs a runner (lua/runners,
-- Salt's salt-run) on the master's host with the master's options, and
-- prints what it returns. Runners reach the running master through its
-- local socket (brine.master.client), opened on first use.
local args = require("brine.args")
local client = require("brine.master.client")

local M = {}

M.summary = "run a runner on the master (salt-run)"
M.usage = [==[
Usage: brine run [OPTIONS] FUNCTION [ARGS...]

  -c, --config-dir DIR the master's configuration folder (default /etc/brine)
  -t, --timeout SECS   how long runners that ask minions wait (default: timeout)
  --out, --output NAME outputter: nested (default), json, yaml, txt, raw, ...
  --out-indent N       indent for json and yaml; negative: one line
  --no-color           never colour the output
  --force-color        colour the output even when not on a terminal

Runners: jobs.list_jobs, jobs.lookup_jid JID, jobs.print_job JID, jobs.active,
manage.up, manage.down, manage.status, manage.alived, manage.not_alived,
state.event [TAGMATCH] [pretty=True]. Arguments are read as salt reads them.
]==]

local VALUED = { ["-c"] = "conf", ["--config-dir"] = "conf", ["-t"] = "timeout",
  ["--timeout"] = "timeout", ["--out"] = "out", ["--output"] = "out",
  ["--out-indent"] = "output_indent", ["--output-indent"] = "output_indent" }
local SWITCHES = { ["--no-color"] = "no_color", ["--force-color"] = "force_color" }

--- Parses the command line: options, then FUNCTION and its words.
function M.parse(argv)
  local o, words = { conf = "/etc/brine" }, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if VALUED[flag or a] then
      local v = inline
      if v == nil then
        i = i + 1
        v = argv[i]
      end
      if v == nil then
        return nil, a .. " needs a value"
      end
      o[VALUED[flag or a]] = v
    elseif SWITCHES[a] then
      o[SWITCHES[a]] = true
    elseif a:match("^%-%a") or a:match("^%-%-%a") then
      if #words == 0 then
        return nil, "no such option: " .. a
      end
      words[#words + 1] = a
    else
      words[#words + 1] = a
    end
    i = i + 1
  end
  if not words[1] then
    return nil, "a runner function is needed"
  end
  if o.output_indent then
    o.output_indent = math.tointeger(tonumber(o.output_indent))
    if not o.output_indent then
      return nil, "option --out-indent: invalid integer value"
    end
  end
  return o, words
end

-- The runner context: the master link, opened when a runner asks for it.
local function context_of(conf)
  local ctx = {}
  function ctx.master()
    if not ctx.link then
      ctx.link = assert(client.connect(conf))
    end
    return ctx.link
  end
  return ctx
end

local function fail(message, status)
  io.stderr:write("brine run: ", message, "\n")
  return status or 1
end

-- Salt's argument parsing, except that a job id stays text: YAML reads it
-- as an integer too large for Lua's, where Python keeps every digit.
local function parse_words(words)
  local pargs, kwargs = args.parse_input(words)
  local n = 0
  for _, word in ipairs(words) do
    local key, value = args.parse_kwarg(word)
    if key then
      if value:match("^%d+$") and #value == 20 then
        kwargs[key] = value
      end
    else
      n = n + 1
      if word:match("^%d+$") and #word == 20 then
        pargs[n] = word
      end
    end
  end
  return pargs, kwargs
end

-- Calls the runner; returns the exit status.
local function call(ld, fun, words, o)
  local entry = ld:entry(fun)
  if not entry then
    return fail(ld:missing_fun_string(fun))
  end
  local pargs, kwargs = parse_words(words)
  local ok, value = xpcall(ld.call, debug.traceback, ld, fun, pargs, kwargs)
  if not ok then
    local loader = require("brine.loader")
    if loader.is_error(value) then
      return fail("Passed invalid arguments: " .. value.message)
    end
    return fail(tostring(value):gsub("^[^:]+:%d+: ", ""):match("^[^\n]*"))
  end
  local per = entry.module.__outputter__
  local out = type(per) == "table" and per[entry.name] or "nested"
  if value ~= nil then
    client.printer(o, out)(value)
  end
  return 0
end

--- Runs `brine run`; returns the exit status.
function M.run(argv)
  local o, conf, words = client.prepare(argv, M, "brine run")
  if not o then
    return conf
  end
  if o.timeout then
    conf.timeout = tonumber(o.timeout) or conf.timeout
  end
  local ctx = context_of(conf)
  local loader = require("brine.loader")
  local ld = loader.new(conf, { tree = "runners", context = ctx })
  local status = call(ld, table.remove(words, 1), words, o)
  if ctx.link then
    ctx.link:close()
  end
  return status
end

return M
