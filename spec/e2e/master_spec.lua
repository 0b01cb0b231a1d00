-- The master and minions end to end: real daemons on 127.0.0.1, a key that
-- waits for `brine key -a`, jobs that reach only accepted minions, a master
-- key change that the minion refuses, garbage that the master survives and
-- a return that waits out a master restart and is stored exactly once.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local posix = require("brine.posix")
local zmq = require("brine.zmq")

local count = harness.count

describe("brine master and minion", function()
  local w = harness.each_world(before_each, after_each)


  it("runs test.ping on a minion once its key is accepted", function()
    w:start_minion("dev1")
    assert.truthy(w:wait_pending("dev1"))
    local status, out = w:salt("'*' test.ping")
    assert.equal(2, status)
    assert.matches("No minions matched the target", out)

    status, out = w:key("-a dev1 -y")
    assert.equal(0, status)
    assert.equal("Key for minion dev1 accepted.\n", out)
    assert.truthy(w:wait_connected("dev1"))

    status, out = w:salt("'*' test.ping")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)

    status, out = w:salt("--async dev1 test.echo hi")
    assert.equal(0, status, out)
    local jid = out:match("^Executed command with job ID: (%d+)\n$")
    assert.truthy(jid, out)
    assert.truthy(w:wait(function()
      return posix.stat(w.dir .. "/master/var/cache/brine/master/jobs/" .. jid .. "/dev1")
    end, 5), "the async job's return never reached the job cache")
  end)

  it("reads arguments as YAML and prints with salt's outputters", function()
    w:accept("dev1")
    local status, out = w:salt("dev1 test.arg 1 '{x: [a, 2]}' name=web 'flag=True' --out json")
    assert.equal(0, status, out)
    local json = require("brine.json")
    local got = json.decode(out)
    assert.same({ 1, { x = { "a", 2 } } }, got.dev1.args)
    assert.equal("web", got.dev1.kwargs.name)
    assert.equal(true, got.dev1.kwargs.flag)

    status, out = w:salt("--out=json --out-indent=-1 dev1 test.echo hi")
    assert.equal(0, status, out)
    assert.equal('{"dev1": "hi"}\n', out)
    status, out = w:salt("dev1 test.echo hi --out yaml")
    assert.equal(0, status, out)
    assert.equal("dev1: hi\n", out)
    status, out = w:salt("dev1 test.echo 'a b' --out=txt")
    assert.equal("dev1: a b\n", out)
    status, out = w:salt("dev1 test.echo hi --out raw")
    assert.equal("{'dev1': 'hi'}\n", out)
    status, out = w:salt("dev1 --no-such-option test.ping")
    assert.equal(2, status)
    assert.matches("no such option: --no-such-option", out, 1, true)
  end)

  it("takes options after the target and ends when every minion returned", function()
    w:accept("dev1")
    local t0 = posix.monotonic()
    local status, out = w:salt("dev1 test.ping -t 60 --show-jid")
    assert.equal(0, status, out)
    assert.truthy(posix.monotonic() - t0 < 30, "the command waited for its timeout")
    assert.matches("^jid: %d+\ndev1:\n    True\n$", out)
    w:accept("dev2")
    w:stop("minion-dev2")
    status, out = w:salt("'dev*' test.ping -v -t 1")
    assert.equal(1, status, out)
    assert.matches("^Executing job with jid %d+\n%-+\n\n", out)
    -- "Not connected" once the master saw the link close, else "No response"
    assert.matches("dev2:\n    Minion did not return. %[No[tr] [a-z]+%]\n", out)
    status, out = w:salt("'dev*' test.ping --hide-timeout -t 1")
    assert.equal(1, status, out)
    assert.equal("dev1:\n    True\n", out)
    status, out = w:salt("-G 'id:dev*' test.echo by-grain")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    by-grain\n", out)
    status, out = w:salt("-C 'G@id:dev1 and dev*' test.echo compound")
    assert.equal("dev1:\n    compound\n", out)
    status, out = w:salt("dev1 test.retcode 3")
    assert.equal(1, status, out)
  end)

  it("targets the grains a minion's jobs see, the grains: option and custom modules too",
    function()
      assert(posix.mkdir(w.dir .. "/edge-mods", 448))
      assert(posix.mkdir(w.dir .. "/edge-mods/_grains", 448))
      local f = assert(io.open(w.dir .. "/edge-mods/_grains/site.lua", "w"))
      f:write("local M = {}\nfunction M.site() return { site = 'depot-7' } end\nreturn M\n")
      f:close()
      w:accept("edge1", "grains:\n  roles:\n    - gateway\n"
        .. "module_dirs:\n  - " .. w.dir .. "/edge-mods\n")
      local status, out = w:salt("-G 'roles:gateway' test.echo by-role")
      assert.equal(0, status, out)
      assert.equal("edge1:\n    by-role\n", out)
      status, out = w:salt("-G 'site:depot-*' test.echo by-site")
      assert.equal(0, status, out)
      assert.equal("edge1:\n    by-site\n", out)
    end)

  it("accepts the keys of minions named in autosign_file, unless others may write it",
    function()
      local path = w.dir .. "/autosign.conf"
      local f = assert(io.open(path, "w"))
      f:write("# devices of the lab\nweb*\n  car-[0-9]+  \n")
      f:close()
      posix.chmod(path, 420)
      local conf = assert(io.open(w.mconf .. "/master", "a"))
      conf:write("autosign_file: " .. path .. "\n")
      conf:close()
      w:stop("master")
      w:start_master()
      w:start_minion("web1")
      w:start_minion("car-12")
      w:start_minion("db1")
      assert.truthy(w:wait_connected("web1"), "web1 was not auto-accepted")
      assert.truthy(w:wait_connected("car-12"), "car-12 was not auto-accepted")
      assert.truthy(w:wait_pending("db1"))
      posix.chmod(path, 438) -- 0666
      w:start_minion("web2")
      assert.truthy(w:wait_pending("web2"), "a world-writable autosign_file was obeyed")
      assert.matches("autosign_file " .. path .. " is writable by others", harness.read(
        w.master_log), 1, true)
    end)

  it("targets nodegroups and subnets", function()
    local conf = assert(io.open(w.mconf .. "/master", "a"))
    conf:write("nodegroups:\n  devs: 'dev* and not N@odd'\n  odd: [dev3]\n")
    conf:close()
    w:stop("master")
    w:start_master()
    w:accept("dev1")
    w:accept("dev3")
    local status, out = w:salt("-N devs test.echo group")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    group\n", out)
    status, out = w:salt("-C 'N@odd or N@devs' test.echo both --out json --out-indent -1")
    assert.equal(0, status, out)
    assert.matches('"dev1": "both"', out, 1, true)
    assert.matches('"dev3": "both"', out, 1, true)
    status, out = w:salt("-N nope test.ping")
    assert.equal(2, status)
    assert.equal("brine: no nodegroup named 'nope'\n", out)
    status, out = w:salt("-S 127.0.0.0/8 test.echo local --hide-timeout")
    assert.equal(0, status, out)
    assert.matches("dev1:\n    local\n", out, 1, true)
    assert.matches("dev3:\n    local\n", out, 1, true)
  end)

  it("runs in rolling batches with -b", function()
    w:accept("dev1")
    w:accept("dev2")
    w:accept("dev3")
    w:accept("dev4")
    w:stop("minion-dev4")
    assert.truthy(w:wait(function()
      return select(2, w:brine("run -c '" .. w.mconf .. "' manage.not_alived")) == "- dev4\n"
    end, 10))
    local status, out = w:salt("-b 2 'dev*' test.echo hi")
    assert.equal(1, status, out)
    assert.matches("^dev4:\n    Minion did not return. %[Not connected%]\n\n"
      .. "Executing run on %['dev1', 'dev2'%]\n\n", out)
    -- dev3 starts as soon as one of the first two returns
    assert.matches("Executing run on ['dev3']\n\n", out, 1, true)
    assert.equal(3, count(out, "    hi\n"))
    status, out = w:salt("--batch=50% 'dev[123]' test.ping")
    assert.equal(0, status, out)
    assert.equal(2, count(out, "Executing run on"))
    status, out = w:salt("-b x 'dev*' test.ping")
    assert.equal(2, status)
    assert.matches("option -b: a batch is a number of minions or a percentage", out, 1, true)
  end)

  it("kills a job that runs past job_timeout and returns why", function()
    w:accept("dev1", "job_timeout: 1\n")
    local t0 = posix.monotonic()
    local status, out = w:salt("dev1 test.sleep 30 -t 20")
    assert.equal(1, status, out)
    assert.equal("dev1:\n    job timed out after 1 s\n", out)
    assert.truthy(posix.monotonic() - t0 < 15, "the job ran to its end")
    status, out = w:salt("dev1 test.ping")
    assert.equal(0, status, out)
  end)

  it("reloads its configuration and reopens its log file on SIGHUP", function()
    w:accept("dev1")
    local log = w.dir .. "/master/var/log/brine/master"
    assert.truthy(posix.stat(log), "no log file")
    os.rename(log, log .. ".1") -- as logrotate does
    local conf = assert(io.open(w.mconf .. "/master", "a"))
    conf:write("nodegroups:\n  later: dev1\n")
    conf:close()
    posix.kill(w.pids.master, "HUP")
    assert.truthy(w:wait(function()
      return harness.read(log):find("configuration reloaded", 1, true)
    end, 5), "no new log file with the reload")
    local status, out = w:salt("-N later test.ping")
    assert.equal(0, status, out)
    -- a broken configuration changes nothing and says why
    local good = harness.read(w.mconf .. "/master")
    conf = assert(io.open(w.mconf .. "/master", "a"))
    conf:write("timeout: [\n")
    conf:close()
    posix.kill(w.pids.master, "HUP")
    assert.truthy(w:wait(function()
      return harness.read(log):find("configuration not reloaded: .*master")
    end, 5))
    assert.truthy(harness.alive(w.pids.master))
    conf = assert(io.open(w.mconf .. "/master", "w"))
    conf:write(good)
    conf:close()
    status, out = w:salt("-N later test.ping")
    assert.equal(0, status, out)
    -- the minion reopens its log too
    local mlog = w.dir .. "/minion-root-dev1/var/log/brine/minion"
    os.rename(mlog, mlog .. ".1")
    posix.kill(w.pids["minion-dev1"], "HUP")
    assert.truthy(w:wait(function()
      return harness.read(mlog):find("configuration reloaded", 1, true)
    end, 5))
  end)

  it("detaches with -d and writes the daemon's pid", function()
    w:stop("master")
    local status, out = w:brine("master -d -c '" .. w.mconf .. "'")
    assert.equal(0, status, out)
    local pidfile = w.dir .. "/master/var/run/brine-master.pid"
    local pid = w:wait(function()
      return math.tointeger(tonumber(harness.read(pidfile):match("%d+")))
    end, 5)
    assert.truthy(pid, "no pid file")
    w.pids.master = pid -- stopped by the clean-up
    w.master_log = w.dir .. "/master/var/log/brine/master"
    assert.truthy(w:wait(function()
      return count(harness.read(w.master_log), "master listening") == 2
    end, 5))
    w:accept("dev1")
    assert.equal(0, (w:salt("dev1 test.ping")))
    -- a second one refuses to start while the first runs
    status, out = w:brine("master -d -c '" .. w.mconf .. "'")
    assert.equal(1, status)
    assert.truthy(w:wait(function()
      return harness.read(w.dir .. "/master/var/log/brine/master")
        :find("process " .. pid .. " is running", 1, true)
    end, 5))
    assert.truthy(w:stop("master"))
    assert.falsy(posix.stat(pidfile), "the pid file stayed")
  end)

  it("shows a re-imaged device's new key as denied, never accepted silently", function()
    w:accept("dev1")
    w:stop("minion-dev1")
    -- re-imaged: the same id, a new key pair
    os.execute("rm -rf '" .. w:minion_pki("dev1") .. "'")
    w:start_minion("dev1")
    assert.truthy(w:wait(function()
      return select(2, w:key("-l denied")):find("\ndev1\n", 1, true)
    end, 10), "the new key was not denied")
    local _, out = w:key("-l accepted")
    assert.matches("\ndev1\n", out, 1, true)
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("the master denied this minion's key", 1, true)
    end, 10))
    local status = w:salt("dev1 test.ping -t 1")
    assert.equal(1, status)
    assert.equal(0, count(w:minion_log("dev1"), "started in worker"))
  end)

  -- Points the master's log_file at a syslog collector (harness) with the
  -- given URL form, and returns what the collector received once the
  -- master's start-up line is in.
  local function master_syslog(scheme, facility)
    local port, out = w:syslog_collector()
    w:stop("master")
    local conf = assert(io.open(w.mconf .. "/master", "a"))
    conf:write(string.format("log_file: %s://127.0.0.1:%d/%s\n", scheme, port, facility))
    conf:close()
    w:start_master()
    assert.truthy(w:wait(function()
      return harness.read(out):find("master listening", 1, true)
    end, 5), "nothing reached the syslog collector")
    return harness.read(out)
  end

  it("logs to syslog when log_file names it, as Salt's udp:// and file:// forms", function()
    -- LOG_DAEMON (3) * 8 + info (6) = 30
    assert.matches("^<30>%a%a%a [ %d]%d %d%d:%d%d:%d%d brine%-master%[%d+%]: %[INFO%] master"
      .. " listening", master_syslog("udp", "LOG_DAEMON"))
  end)

  it("logs to syslog over TCP, one line a message, as rsyslog reads it", function()
    -- LOG_LOCAL0 (16) * 8 + info (6) = 134; every message ends its line
    assert.matches("<134>%a%a%a [ %d]%d %d%d:%d%d:%d%d brine%-master%[%d+%]: %[INFO%] master"
      .. " listening[^\n]*\n", master_syslog("tcp", "LOG_LOCAL0"))
  end)

  it("keeps keys and folders private", function()
    w:accept("dev1")
    local mpki = w.dir .. "/master/etc/brine/pki/master"
    local npki = w.dir .. "/minion-root-dev1/etc/brine/pki/minion"
    assert.equal(448, posix.stat(mpki).mode)
    assert.equal(448, posix.stat(mpki .. "/minions").mode)
    assert.equal(384, posix.stat(mpki .. "/master.key").mode)
    assert.equal(384, posix.stat(mpki .. "/minions/dev1").mode)
    assert.equal(448, posix.stat(npki).mode)
    assert.equal(384, posix.stat(npki .. "/minion.key").mode)
    assert.equal(384, posix.stat(npki .. "/minion_master.pub").mode)
    assert.equal(448, posix.stat(w.dir .. "/master/var/run/brine/master").mode)
  end)

  it("sends jobs only to targeted minions", function()
    w:accept("web1")
    w:accept("db1")
    local status, out = w:salt("'web*' test.ping --show-jid")
    assert.equal(0, status, out)
    local jid = out:match("^jid: (%d+)\n")
    assert.equal("jid: " .. jid .. "\nweb1:\n    True\n", out)
    status, out = w:salt("-L web1,db1 test.echo both")
    assert.equal(0, status, out)
    assert.matches("web1:\n    both\n", out, 1, true)
    assert.matches("db1:\n    both\n", out, 1, true)
    -- db1 never received the web* job: its log shows exactly one job
    assert.falsy(w:minion_log("db1"):find(jid, 1, true), "db1 received the web* job")
    assert.truthy(w:minion_log("web1"):find("job " .. jid .. " received", 1, true))
    assert.equal(1, count(w:minion_log("db1"), "started in worker"))
    assert.equal(2, count(w:minion_log("web1"), "started in worker"))
  end)

  it("stops sending jobs to a minion whose key is deleted or rejected", function()
    w:accept("dev1")
    local status = w:salt("dev1 test.ping")
    assert.equal(0, status)
    local out
    status, out = w:key("-d dev1 -y")
    assert.equal(0, status, out)
    posix.sleep(0.3)
    status, out = w:salt("dev1 test.ping")
    assert.equal(2, status, out)
    assert.equal(1, count(w:minion_log("dev1"), "started in worker"))
    -- it comes back as pending and can be rejected; a rejected key gets nothing
    assert.truthy(w:wait_pending("dev1"))
    status = w:key("-r dev1 -y")
    assert.equal(0, status)
    status = w:salt("'*' test.ping")
    assert.equal(2, status)
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("no answer from the master", 1, true)
    end, 5), "a rejected minion was still answered")
  end)

  it("connects only to a master whose key matches master_finger", function()
    local status, finger = w:key("-F")
    assert.equal(0, status, finger)
    finger = finger:match("master%.pub:%s*(%S+)")
    assert.truthy(finger, "no master fingerprint in brine key -F")
    w:start_minion("good", "master_finger: '" .. finger .. "'\n")
    assert.truthy(w:wait_pending("good"), "the minion with the right finger did not ask")
    local wrong = finger:gsub("^%x", function(c) return c == "0" and "1" or "0" end)
    w:start_minion("bad", "master_finger: '" .. wrong .. "'\n")
    assert.truthy(w:wait(function()
      return w:minion_log("bad"):find("not master_finger", 1, true)
    end, 5), "the minion accepted a master key with another fingerprint")
    assert.falsy(posix.stat(w:minion_pki("bad") .. "/minion_master.pub"), "the key was pinned")
    local _, out = w:key("-L")
    assert.falsy(out:find("\nbad\n", 1, true), "the minion sent its key to that master")
  end)

  it("refuses to start in open_mode", function()
    w:stop("master")
    local conf = assert(io.open(w.mconf .. "/master", "a"))
    conf:write("open_mode: True\n")
    conf:close()
    local status, out = w:brine("master -c '" .. w.mconf .. "'")
    assert.equal(2, status, out)
    assert.matches("open_mode is refused", out, 1, true)
  end)

  it("refuses a changed master key", function()
    w:accept("dev1")
    w:stop("master")
    local pki = w.dir .. "/master/etc/brine/pki/master"
    os.remove(pki .. "/master.key")
    os.remove(pki .. "/master.pub")
    w:start_master()
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("which is not the pinned master key", 1, true)
    end, 8), "the minion did not refuse the new key:\n" .. w:minion_log("dev1"))
    local status = w:salt("dev1 test.ping -t 1")
    assert.equal(1, status)
  end)

  it("drops garbage on the request port and keeps serving", function()
    w:accept("dev1")
    local ctx = assert(zmq.context())
    local pub, sec = zmq.curve_keypair()
    local server = harness.read(w.dir .. "/master/etc/brine/pki/master/master.pub"):match("%S+")
    local bad = assert(ctx:socket("DEALER"))
    assert(bad:setopt("curve_publickey", pub))
    assert(bad:setopt("curve_secretkey", sec))
    assert(bad:setopt("curve_serverkey", server))
    assert(bad:connect("tcp://127.0.0.1:" .. w.ports[2]))
    local garbage = { "\xc1", "\xdd\xff\xff\xff\xff", string.rep("\x91", 100000),
      "\x82\xa3cmd\xa7_return\xa3jid\xa1x", "\x81\xa3cmd\xa4_ret", "plain text",
      string.rep("A", 9 * 1024 * 1024) }
    for _, g in ipairs(garbage) do
      bad:send(g)
    end
    bad:send({ "two", "frames" })
    -- a message that is not _auth from a key that is not accepted
    bad:send("\x82\xa3cmd\xa7_return\xa2id\xa4dev1")
    posix.sleep(0.3)
    local status, out = w:salt("dev1 test.ping")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)
    local log = harness.read(w.master_log)
    assert.matches("bad message from .- dropped", log)
    assert.matches("'_return' from a key that is not accepted, dropped", log, 1, true)
    bad:close()
    ctx:close()
  end)

  it("delivers a return that waited out a master restart, exactly once", function()
    w:accept("dev1")
    local status, out = w:salt("--async dev1 test.sleep 1.5")
    assert.equal(0, status, out)
    local jid = out:match("job ID: (%d+)")
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("test.sleep started", 1, true)
    end, 3))
    w:stop("master")
    -- the worker finishes while the master is down; its return waits on disk
    local queued = w.dir .. "/minion-root-dev1/var/cache/brine/minion/returns/" .. jid
    assert.truthy(w:wait(function() return posix.stat(queued) end, 5),
      "the return was not queued on disk")
    posix.sleep(0.5)
    w:start_master()
    local stored = w.dir .. "/master/var/cache/brine/master/jobs/" .. jid .. "/dev1"
    assert.truthy(w:wait(function() return posix.stat(stored) end, 10),
      "the queued return never arrived:\n" .. w:minion_log("dev1"))
    assert.truthy(w:wait(function() return not posix.stat(queued) end, 5),
      "the minion kept the acknowledged return")
    posix.sleep(1.5)
    local log = harness.read(w.master_log)
    assert.equal(1, count(log, "job " .. jid .. ": return from dev1"))
  end)
end)

describe("brine run", function()
  local w = harness.each_world(before_each, after_each)


  local function run(args)
    return w:brine("run -c '" .. w.mconf .. "' " .. args)
  end

  it("reads the job cache: list_jobs, lookup_jid with owed returns, print_job, active",
    function()
      w:accept("dev1")
      w:accept("dev2")
      w:stop("minion-dev2")
      local status, out = w:salt("--async 'dev*' test.echo hi --queue")
      assert.equal(0, status, out)
      local jid = out:match("job ID: (%d+)")
      assert.truthy(w:wait(function() return select(2, run("jobs.lookup_jid " .. jid))
        :find("dev1:\n    hi", 1, true) end, 5))
      status, out = run("jobs.lookup_jid " .. jid)
      assert.equal(0, status, out)
      assert.equal("dev1:\n    hi\ndev2:\n    Minion did not return yet. [Job held until it"
        .. " reconnects]\n", out)
      status, out = run("jobs.list_jobs --out json")
      assert.equal(0, status, out)
      local json = require("brine.json")
      local listed = json.decode(out)[jid]
      assert.equal("test.echo", listed.Function)
      assert.same({ "hi" }, listed.Arguments)
      assert.equal("dev*", listed.Target)
      assert.matches("^%d%d%d%d, %a%a%a %d%d %d%d:%d%d:%d%d%.%d+$", listed.StartTime)
      status, out = run("jobs.list_jobs search_function=test.ping --out json")
      assert.equal("{}\n", out)
      status, out = run("jobs.print_job " .. jid .. " --out json")
      local job = json.decode(out)[jid]
      assert.same({ "dev1", "dev2" }, job.Minions)
      assert.equal("hi", job.Result.dev1["return"])
      assert.is_nil(job.Result.dev2)
      status, out = run("jobs.active --out json")
      assert.equal(0, status, out)
      local active = json.decode(out)[jid]
      assert.same({ "dev1" }, active.Returned)
      assert.same({ "dev2" }, active.Running)
      status, out = run("jobs.nope")
      assert.equal(1, status)
      assert.equal("brine run: 'jobs.nope' is not available.\n", out)
    end)

  it("tells which minions are up, down, alive or not", function()
    w:accept("dev1")
    w:accept("dev2")
    w:stop("minion-dev2")
    local status, out = run("manage.status -t 2")
    assert.equal(0, status, out)
    assert.equal("up:\n    - dev1\ndown:\n    - dev2\n", out)
    status, out = run("manage.up")
    assert.equal("- dev1\n", out)
    status, out = run("manage.down -t 1")
    assert.equal("- dev2\n", out)
    -- alived reads the master's connection table: wait for it to see dev2 gone
    assert.truthy(w:wait(function() return select(2, run("manage.alived")) == "- dev1\n" end,
      10), "the master did not notice dev2 leave")
    status, out = run("manage.not_alived")
    assert.equal("- dev2\n", out)
  end)

  it("removes jobs older than keep_jobs_seconds from the cache", function()
    w:accept("dev1")
    local status, out = w:salt("--async dev1 test.ping")
    local jid = out:match("job ID: (%d+)")
    local dir = w.dir .. "/master/var/cache/brine/master/jobs/" .. jid
    assert.truthy(w:wait(function() return posix.stat(dir .. "/dev1") end, 5))
    w:stop("master")
    local f = assert(io.open(w.mconf .. "/master", "a"))
    f:write("keep_jobs_seconds: 1\n")
    f:close()
    posix.sleep(2.1)
    w:start_master()
    assert.truthy(w:wait(function() return not posix.stat(dir) end, 5),
      "the old job stayed in the cache")
    status, out = run("jobs.list_jobs")
    assert.equal(0, status)
    assert.equal("", out)
  end)
end)

describe("the master's and minions' security", function()
  local w = harness.each_world(before_each, after_each)
  local wire = require("brine.master.wire")
  local data = require("brine.data")

  local function jobs_dir()
    return w.dir .. "/master/var/cache/brine/master/jobs/"
  end

  it("takes a return only from the minion itself, for a job that targeted it", function()
    w:accept("dev1")
    w:accept("dev2")
    local status, out = w:salt("--async dev2 test.sleep 1")
    assert.equal(0, status, out)
    local jid = out:match("job ID: (%d+)")
    -- a client holding dev1's accepted key
    local sock, ctx = w:curve_client(2, harness.keypair(w:minion_pki("dev1"), "minion"))
    local function forged(fields)
      local msg = data.map({ { "cmd", "_return" }, { "jid", jid }, { "fun", "test.sleep" },
        { "return", "forged" }, { "retcode", 0 }, { "success", true } })
      for k, v in pairs(fields) do
        msg[k] = v
      end
      sock:send(wire.encode(msg))
      return harness.receive(sock, 1)
    end
    assert.is_nil(forged({ id = "dev2" }), "a return under another id was answered")
    local ack = forged({})
    assert.truthy(ack, "a dropped return is still acknowledged, so it is not resent")
    local log = harness.read(w.master_log)
    assert.matches("minion dev1: message claims to come from dev2, dropped", log, 1, true)
    assert.matches("minion dev1: return for job " .. jid .. " that did not target it", log,
      1, true)
    assert.falsy(harness.read(jobs_dir() .. jid .. "/dev1") ~= "")
    assert.truthy(w:wait(function() return posix.stat(jobs_dir() .. jid .. "/dev2") end, 10))
    status, out = w:brine("run -c '" .. w.mconf .. "' jobs.lookup_jid " .. jid)
    assert.equal("dev2:\n    True\n", out)
    sock:close()
    ctx:close()
  end)

  it("answers nothing but authentication before a key is accepted", function()
    w:accept("dev1")
    local sock, ctx, pub = w:curve_client(2)
    sock:send(wire.encode(data.map({ { "cmd", "_auth" }, { "id", "intruder" }, { "pub", pub } })))
    local reply = harness.receive(sock, 5)
    assert.truthy(reply, "_auth was not answered")
    assert.equal("pending", wire.decode(reply[1]).ret)
    for _, cmd in ipairs({ "_return", "_minion_event", "status", "publish", "nonsense" }) do
      sock:send(wire.encode(data.map({ { "cmd", cmd }, { "id", "dev1" },
        { "jid", "20200101000000000000" }, { "tag", "x" }, { "event", "1-1-1" } })))
    end
    assert.is_nil(harness.receive(sock, 1), "a pending key was answered")
    -- the publish port lets no unaccepted key in at all
    local psock, pctx2 = w:curve_client(1)
    psock:send(wire.encode(data.map({ { "cmd", "hello" }, { "id", "dev1" } })))
    assert.is_nil(harness.receive(psock, 1), "the publish port answered an unknown key")
    local log = harness.read(w.master_log)
    assert.matches("'_return' from a key that is not accepted, dropped", log, 1, true)
    assert.matches("'nonsense' from a key that is not accepted, dropped", log, 1, true)
    assert.equal(0, (w:salt("dev1 test.ping")))
    for _, s in ipairs({ sock, ctx, psock, pctx2 }) do
      s:close()
    end
  end)

  it("runs a replayed or stale publish once and drops bad messages from a master", function()
    w:accept("dev1")
    local mpub, msec = harness.keypair(w:master_pki(), "master")
    w:stop("master")
    -- someone holding the master's key (or replaying its traffic) on its port
    local ctx = assert(zmq.context())
    local fake = assert(ctx:socket("ROUTER"))
    assert(fake:setopt("curve_server", 1))
    assert(fake:setopt("curve_publickey", mpub))
    assert(fake:setopt("curve_secretkey", msec))
    assert(fake:bind("tcp://127.0.0.1:" .. w.ports[1]))
    local function next_hello()
      local deadline = posix.monotonic() + 10
      while posix.monotonic() < deadline do
        local frames = harness.receive(fake, 1)
        if frames and frames[2] and wire.decode(frames[2]).cmd == "hello" then
          fake:send({ frames[1], wire.encode({ cmd = "hello" }) })
          return frames[1]
        end
      end
      error("the minion did not say hello:\n" .. w:minion_log("dev1"))
    end
    local function job(jid)
      return wire.encode(data.map({ { "cmd", "job" }, { "jid", jid }, { "fun", "test.ping" },
        { "arg", data.array() }, { "kwarg", data.map() }, { "tgt", "dev1" },
        { "tgt_type", "glob" }, { "user", "root" } }))
    end
    local routing = next_hello()
    local old, j1 = wire.new_jid(), wire.new_jid()
    local garbage = { "\xc1", "\x92\x01", "\x81\xa3cmd\xa3jo", "\xa3job",
      wire.encode({ cmd = "job", jid = "abc", fun = "test.ping" }),
      wire.encode({ cmd = "nonsense" }) }
    for _, payload in ipairs({ job(j1), job(j1), job(old), table.unpack(garbage) }) do
      fake:send({ routing, payload })
    end
    fake:send({ routing, "a", "b" })
    local j2 = wire.new_jid()
    fake:send({ routing, job(j2) })
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("job " .. j2 .. ": test.ping started", 1, true)
    end, 10), "the minion stopped working:\n" .. w:minion_log("dev1"))
    -- an oversized message closes the link; the minion stays up and comes
    -- back to the real master
    fake:send({ routing, string.rep("x", 9 * 1024 * 1024) })
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("the link to the master closed", 1, true)
    end, 10), "the oversized message was not noticed")
    fake:close()
    ctx:close()
    w:start_master()
    assert.truthy(w:wait(function() return w:salt("dev1 test.ping -t 1") == 0 end, 15),
      "the minion did not come back:\n" .. w:minion_log("dev1"))
    local log = w:minion_log("dev1")
    assert.equal(1, count(log, "job " .. j1 .. ": test.ping started"))
    assert.equal(0, count(log, "job " .. old .. ": test.ping started"))
    assert.equal(2, count(log, "replayed or stale, not run"))
    assert.truthy(count(log, "bad message from the master dropped") >= 5, log)
    assert.matches("dropped: 2 frames where one was expected", log, 1, true)
    assert.matches("malformed job from the master dropped", log, 1, true)
    assert.matches("unknown message 'nonsense' from the master dropped", log, 1, true)
  end)

  it("drops messages altered on the way and recovers the link", function()
    local ports, cut_file = w:cuttable_link()
    w:accept("dev1", string.format("publish_port: %d\nmaster_port: %d\nkey_port: %d\n",
      ports[1], ports[2], ports[3]))
    local tamper = cut_file .. ".tamper"
    assert(io.open(tamper, "w")):close()
    local status, out = w:salt("--async --queue dev1 test.echo altered")
    assert.equal(0, status, out)
    local jid = out:match("job ID: (%d+)")
    -- CURVE authenticates every message: the altered one is refused and
    -- the link closed, on the minion's side with a log line
    assert.truthy(w:wait(function()
      return w:minion_log("dev1"):find("the link to the master closed", 1, true)
    end, 10), "the altered message was not noticed:\n" .. w:minion_log("dev1"))
    assert.falsy(w:minion_log("dev1"):find("job " .. jid .. " received", 1, true))
    os.remove(tamper)
    assert.truthy(w:wait(function()
      return posix.stat(w.dir .. "/master/var/cache/brine/master/jobs/" .. jid .. "/dev1")
    end, 15), "the held job did not arrive once the link was clean:\n" .. w:minion_log("dev1"))
    assert.equal(1, count(w:minion_log("dev1"), "job " .. jid .. ": test.echo started"))
    assert.truthy(harness.alive(w.pids.master))
  end)

  it("keeps serving good minions while one floods it with garbage", function()
    w:accept("dev1")
    local sock, ctx = w:curve_client(2, harness.keypair(w:minion_pki("dev1"), "minion"))
    for i = 1, 5000 do
      sock:send(i % 2 == 0 and "\xc1" or wire.encode({ cmd = "_return", jid = "x" }),
        { dontwait = true })
    end
    -- and bytes that are not ZeroMQ at all on every port
    for _, port in ipairs(w.ports) do
      os.execute(string.format("bash -c 'head -c 100000 /dev/urandom >/dev/tcp/127.0.0.1/%d'"
        .. " 2>/dev/null", port))
    end
    local status, out = w:salt("dev1 test.ping -t 10")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)
    assert.truthy(harness.alive(w.pids.master))
    sock:close()
    ctx:close()
  end)
end)
