-- `brine [options] TARGET FUNCTION [ARGS...]`: publishes a job through the
-- master's local socket (sock_dir/master.ipc, reachable by the master's
-- user only) and prints each minion's return as it arrives, like `salt`.
-- Arguments are read as Salt reads them (brine.args: `key=value` keyword
-- arguments, values as YAML) and printed by Salt's outputters
-- (lua/outputters). Ends as soon as every targeted minion has returned,
-- or at the timeout.
local data = require("brine.data")
local posix = require("brine.posix")
local args = require("brine.args")
local client = require("brine.master.client")

local M = {}

M.summary = "publish a job to minions (salt)"
M.usage = [==[
Usage: brine [OPTIONS] TARGET FUNCTION [ARGS...]

Options may come before or after TARGET and FUNCTION.
  -c, --config-dir DIR the master's configuration folder (default /etc/brine)
  -E, --pcre           TARGET is a regular expression on minion ids
  -L, --list           TARGET is a comma-separated list of ids
  -G, --grain          TARGET is a grain glob, e.g. os:Debian
  -P, --grain-pcre     TARGET is a grain regular expression
  -C, --compound       TARGET is a compound expression (G@, P@, I@, J@, E@, L@, S@, N@,
                       and/or/not, parentheses)
  -N, --nodegroup      TARGET is a nodegroup of the master's config
  -I, --pillar         TARGET is a pillar glob, e.g. role:web (the pillar the
                       master compiled for each minion)
  -J, --pillar-pcre    TARGET is a pillar regular expression
  -S, --ipcidr         TARGET is an address or an IPv4 subnet (ipv4 grain)
  -t, --timeout SECS   how long to wait for returns (default: the master's timeout)
  --async              print the job id and return at once
  -b, --batch N|N%     run on at most N minions (or N% of them) at a time, starting
                       the next as each returns
  --queue[=TTL]        hold the job for targeted minions that are not connected and
                       deliver it when they reconnect, for TTL seconds (default:
                       the master's queue_ttl, one day); 0 holds it forever
  -v, --verbose        print the job id and why minions did not return
  --show-jid           print the job id
  --hide-timeout       do not print minions that did not return
  --out, --output NAME outputter: nested (default), json, yaml, txt, raw, ...
  --out-indent N       indent for json and yaml; negative: one line
  --no-color           never colour the output
  --force-color        colour the output even when not on a terminal
Arguments of the form key=value are keyword arguments; every value is read as
YAML, as salt reads it (1 is a number, '{a: 1}' a mapping, "'1'" a string).
]==]

local TYPE_FLAGS = { ["-E"] = "pcre", ["--pcre"] = "pcre", ["-L"] = "list",
  ["--list"] = "list", ["-G"] = "grain", ["--grain"] = "grain", ["-P"] = "grain_pcre",
  ["--grain-pcre"] = "grain_pcre", ["-C"] = "compound", ["--compound"] = "compound",
  ["-N"] = "nodegroup", ["--nodegroup"] = "nodegroup", ["-S"] = "ipcidr",
  ["--ipcidr"] = "ipcidr", ["-I"] = "pillar", ["--pillar"] = "pillar",
  ["-J"] = "pillar_pcre", ["--pillar-pcre"] = "pillar_pcre" }
local SWITCHES = { ["--async"] = "async", ["-v"] = "verbose", ["--verbose"] = "verbose",
  ["--show-jid"] = "show_jid", ["--hide-timeout"] = "hide_timeout",
  ["--no-color"] = "no_color", ["--no-colour"] = "no_color",
  ["--force-color"] = "force_color", ["--force-colour"] = "force_color" }
local VALUED = { ["-c"] = "conf", ["--config-dir"] = "conf", ["-t"] = "timeout",
  ["-b"] = "batch", ["--batch"] = "batch", ["--batch-size"] = "batch",
  ["--timeout"] = "timeout", ["--out"] = "out", ["--output"] = "out",
  ["--out-indent"] = "output_indent", ["--output-indent"] = "output_indent" }
-- Options whose value is optional and only given as --name=VALUE.
local OPTIONAL = { ["--queue"] = "queue" }

-- Reads one option at args[i]; returns the next index or nil, message.
local function option(opts, argv, i)
  local a = argv[i]
  local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
  if flag then
    a = flag
  end
  if TYPE_FLAGS[a] then
    opts.tgt_type = TYPE_FLAGS[a]
  elseif SWITCHES[a] then
    opts[SWITCHES[a]] = true
  elseif OPTIONAL[a] then
    opts[OPTIONAL[a]] = inline or true
  elseif VALUED[a] then
    local v = inline
    if v == nil then
      i = i + 1
      v = argv[i]
    end
    if v == nil then
      return nil, a .. " needs a value"
    end
    opts[VALUED[a]] = v
  else
    return nil, "no such option: " .. argv[i]
  end
  return i + 1
end

local function is_option(a, npositional)
  if not a:match("^%-") or a:match("^%-%d") or a == "-" then
    return false
  end
  -- after the function, unknown dashed words are arguments (salt's rule)
  local name = a:match("^(%-%-[%w-]+)=") or a
  return npositional < 2 or TYPE_FLAGS[name] or SWITCHES[name] or VALUED[name]
    or OPTIONAL[name]
end

local function number_option(opts, key, flag, integer)
  if opts[key] == nil then
    return true
  end
  local n = tonumber(opts[key])
  if integer then
    n = math.tointeger(n)
  end
  if not n or (not integer and n < 0) then
    return nil, string.format("option %s: invalid value: '%s'", flag, opts[key])
  end
  opts[key] = n
  return true
end

local function check_numbers(opts)
  local ok, err = number_option(opts, "timeout", "-t", false)
  if ok then
    ok, err = number_option(opts, "output_indent", "--out-indent", true)
  end
  if ok and opts.queue ~= nil and opts.queue ~= true then
    ok, err = number_option(opts, "queue", "--queue", false)
  end
  if ok and opts.batch ~= nil and not (tostring(opts.batch):match("^%d+%%?$")
      and tonumber((tostring(opts.batch):gsub("%%", ""))) > 0) then
    return nil, "option -b: a batch is a number of minions or a percentage, not '"
      .. tostring(opts.batch) .. "'"
  end
  if ok and opts.timeout == 0 then
    return nil, "option -t: the timeout must be more than 0 seconds"
  end
  return ok, err
end

--- Parses the command line; returns the options or nil, message.
function M.parse(argv)
  local opts = { conf = "/etc/brine", tgt_type = "glob" }
  local positional = {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      table.move(argv, i + 1, #argv, #positional + 1, positional)
      break
    elseif is_option(a, #positional) then
      local err
      i, err = option(opts, argv, i)
      if not i then
        return nil, err
      end
    else
      positional[#positional + 1] = a
      i = i + 1
    end
  end
  if #positional < 2 then
    return nil, "a target and a function are needed"
  end
  local ok, err = check_numbers(opts)
  if not ok then
    return nil, err
  end
  opts.tgt, opts.fun = positional[1], positional[2]
  opts.arg, opts.kwarg = args.parse_input(table.move(positional, 3, #positional, 1, {}))
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
-- Output and the returns
---------------------------------------------------------------------------

-- Prints one minion's return as salt does: a mapping of its id.
local function printer(opts)
  local print_value = client.printer(opts)
  return function(id, value)
    print_value(data.map({ { id, value } }))
  end
end

-- Why a minion did not return, in salt's words.
local function why_not(id, reply)
  for _, down in ipairs(reply.not_connected or {}) do
    if down == id then
      return reply.queued and "Not connected, job queued" or "Not connected"
    end
  end
  return "No response"
end

local PROGRESS_FROM = 10 -- minions targeted before a progress line is shown

-- A progress line on stderr when it is a terminal and many minions are
-- targeted: update(returned) redraws it, update() clears it.
local function progress(total)
  if total < PROGRESS_FROM or not posix.isatty(2) then
    return function() end
  end
  return function(returned)
    if returned then
      io.stderr:write(string.format("\r\27[K[%d/%d] returned", returned, total))
    else
      io.stderr:write("\r\27[K")
    end
    io.stderr:flush()
  end
end

-- Prints returns as they arrive until every minion has returned or the
-- timeout passes; returns the exit status.
local function wait_returns(link, opts, reply, timeout, show)
  local pending, count = {}, 0
  for _, id in ipairs(reply.minions) do
    pending[id], count = true, count + 1
  end
  local failed = false
  local deadline = posix.monotonic() + timeout
  local update = progress(count)
  while count > 0 and posix.monotonic() < deadline do
    local msg = link:receive(deadline)
    if msg and msg.cmd == "return" and msg.jid == reply.jid and pending[msg.id] then
      pending[msg.id], count = nil, count - 1
      failed = failed or msg.retcode ~= 0
      update()
      show(msg.id, msg["return"])
      update(#reply.minions - count)
    end
  end
  update()
  for _, id in ipairs(reply.minions) do
    if pending[id] and not opts.hide_timeout then
      show(id, "Minion did not return. [" .. why_not(id, reply) .. "]")
    end
  end
  if count > 0 then
    return 1
  end
  return failed and 1 or 0
end

local function request_of(opts)
  local request = data.map({ { "cmd", "publish" }, { "tgt", opts.tgt },
    { "tgt_type", opts.tgt_type }, { "fun", opts.fun }, { "arg", opts.arg },
    { "kwarg", opts.kwarg }, { "follow", not opts.async } })
  request.queue = opts.queue
  return request
end

-- Shows the master's answer to the publish and waits for the returns.
local function report(link, opts, conf, reply)
  if not reply then
    io.stderr:write("brine: the master did not answer\n")
    return 2
  elseif reply.cmd == "error" then
    io.stderr:write("brine: ", tostring(reply.message), "\n")
    return 2
  elseif #reply.minions == 0 then
    io.stderr:write("No minions matched the target. No command was sent, no jid was"
      .. " assigned.\n")
    return 2
  elseif opts.async then
    io.stdout:write("Executed command with job ID: ", reply.jid, "\n")
    return 0
  end
  if opts.verbose then
    io.stdout:write("Executing job with jid ", reply.jid, "\n", string.rep("-", 43), "\n\n")
  elseif opts.show_jid then
    io.stdout:write("jid: ", reply.jid, "\n")
  end
  io.stdout:flush()
  local timeout = opts.timeout or tonumber(conf.timeout) or 5
  return wait_returns(link, opts, reply, timeout, printer(opts))
end

---------------------------------------------------------------------------
-- Batches (-b): salt's rolling batch, at most N jobs in flight
---------------------------------------------------------------------------

local function batch_size(spec, total)
  local n = tonumber((tostring(spec):gsub("%%", "")))
  if tostring(spec):find("%", 1, true) then
    n = math.ceil(total * n / 100)
  end
  return math.max(1, math.floor(n))
end

-- Publishes the job to `ids` (a list target); returns its jid or nil.
local function publish_to(link, opts, ids)
  io.stdout:write("\nExecuting run on ", client.py_list(ids), "\n\n")
  io.stdout:flush()
  local req = request_of(opts)
  req.tgt, req.tgt_type, req.follow, req.queue = data.array(ids), "list", true, nil
  local reply, err = link:request(req)
  if not reply then
    io.stderr:write("brine: ", err, "\n")
    return nil
  end
  return reply.jid
end

-- The connected minions the target names, after reporting (as not
-- returned) those that are not connected; nil and a status on failure.
local function batch_queue(link, opts, show)
  local found, err = link:request(data.map({ { "cmd", "resolve" }, { "tgt", opts.tgt },
    { "tgt_type", opts.tgt_type } }))
  if not found then
    io.stderr:write("brine: ", err, "\n")
    return nil, 2
  elseif #found.minions == 0 then
    io.stderr:write("No minions matched the target.\n")
    return nil, 2
  end
  local down, queue = {}, {}
  for _, id in ipairs(found.not_connected) do
    down[id] = true
    show(id, "Minion did not return. [Not connected]")
  end
  for _, id in ipairs(found.minions) do
    if not down[id] then
      queue[#queue + 1] = id
    end
  end
  return queue, #found.minions, #found.not_connected > 0
end

-- A rolling batch: `running` maps id -> { jid, deadline } and `count`
-- is its size.
local Batch = {}
Batch.__index = Batch

-- Fills the free places from the queue with one job; false on failure.
function Batch:start_more()
  if self.count >= self.size or #self.queue == 0 then
    return true
  end
  local ids = {}
  while self.count + #ids < self.size and #self.queue > 0 do
    ids[#ids + 1] = table.remove(self.queue, 1)
  end
  local jid = publish_to(self.link, self.opts, ids)
  if not jid then
    return false
  end
  local deadline = posix.monotonic() + self.timeout
  for _, id in ipairs(ids) do
    self.running[id], self.count = { jid = jid, deadline = deadline }, self.count + 1
  end
  return true
end

-- Waits for the next return (or the next deadline) and prints it.
function Batch:collect()
  local soonest = math.huge
  for _, r in pairs(self.running) do
    soonest = math.min(soonest, r.deadline)
  end
  local msg = self.link:receive(soonest)
  local r = msg and msg.cmd == "return" and self.running[msg.id]
  if r and r.jid == msg.jid then
    self.running[msg.id], self.count = nil, self.count - 1
    self.failed = self.failed or msg.retcode ~= 0
    self.show(msg.id, msg["return"])
  end
  for id, late in pairs(self.running) do
    if posix.monotonic() >= late.deadline then
      self.running[id], self.count, self.failed = nil, self.count - 1, true
      if not self.opts.hide_timeout then
        self.show(id, "Minion did not return. [No response]")
      end
    end
  end
end

local function run_batches(link, opts, conf)
  local show = printer(opts)
  local queue, total, missing = batch_queue(link, opts, show)
  if not queue then
    return total
  end
  local batch = setmetatable({ link = link, opts = opts, show = show, queue = queue,
    size = batch_size(opts.batch, total), timeout = opts.timeout or tonumber(conf.timeout) or 5,
    running = {}, count = 0, failed = missing }, Batch)
  while #batch.queue > 0 or batch.count > 0 do
    if not batch:start_more() then
      return 2
    end
    batch:collect()
  end
  return batch.failed and 1 or 0
end

--- Runs the command line; returns the exit status.
function M.run(argv)
  local opts, conf = client.prepare(argv, M, "brine")
  if not opts then
    return conf
  end
  local link, err = client.connect(conf)
  if not link then
    io.stderr:write("brine: ", err, "\n")
    return 2
  end
  local status
  if opts.batch then
    status = run_batches(link, opts, conf)
  else
    link:send(request_of(opts))
    status = report(link, opts, conf, link:receive(posix.monotonic() + 10))
  end
  link:close()
  return status
end

return M
