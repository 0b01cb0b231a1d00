-- Devices whose link comes and goes: returns wait on the minion's disk
-- until the master acknowledges them, jobs wait on the master's disk for
-- minions that are away (--queue), and minions come back on their own
-- with a growing, randomised back-off. Every test stops a daemon, does
-- work while it is down, brings it back and checks that everything
-- arrived exactly once.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local posix = require("brine.posix")

local count = harness.count

local function jid_of(out)
  return assert(out:match("job ID: (%d+)"), out)
end

describe("an offline device", function()
  local w = harness.each_world(before_each, after_each)


  local function job_cache(jid, id)
    return w.dir .. "/master/var/cache/brine/master/jobs/" .. jid .. "/" .. id
  end

  local function minion_returns(id)
    return posix.listdir(w.dir .. "/minion-root-" .. id .. "/var/cache/brine/minion/returns")
  end

  it("keeps its returns while the master is away and delivers them in order, once", function()
    w:accept("car1")
    local jids = {}
    for i = 1, 3 do
      local status, out = w:salt("--async car1 test.sleep 0." .. (4 + i))
      assert.equal(0, status, out)
      jids[i] = jid_of(out)
    end
    assert.truthy(w:wait(function()
      return count(w:minion_log("car1"), "test.sleep started") == 3
    end, 10), "the jobs did not start")
    w:stop("master")
    assert.truthy(w:wait(function() return #(minion_returns("car1") or {}) == 3 end, 10),
      "the returns were not queued on the minion's disk")
    w:start_master()
    assert.truthy(w:wait(function()
      return posix.stat(job_cache(jids[3], "car1")) and posix.stat(job_cache(jids[1], "car1"))
        and posix.stat(job_cache(jids[2], "car1"))
    end, 15), "the queued returns did not all arrive:\n" .. w:minion_log("car1"))
    assert.truthy(w:wait(function() return #minion_returns("car1") == 0 end, 10),
      "the minion kept acknowledged returns")
    local log = harness.read(w.master_log)
    local last = 0
    for _, jid in ipairs(jids) do
      local line = "job " .. jid .. ": return from car1"
      assert.equal(1, count(log, line), line)
      local at = log:find(line, 1, true)
      assert.truthy(at > last, "returns arrived out of order")
      last = at
    end
  end)

  it("gets the jobs held for it while it was away, once, unless they expired", function()
    w:accept("car1")
    w:stop("minion-car1")
    local status, out = w:salt("--async --queue=1 car1 test.echo expired")
    assert.equal(0, status, out)
    local expired = jid_of(out)
    status, out = w:salt("--async car1 test.echo not-held")
    assert.equal(0, status, out)
    local not_held = jid_of(out)
    -- a held job survives a master restart too
    w:stop("master")
    w:start_master()
    status, out = w:salt("car1 test.echo first --queue -t 1")
    assert.equal(1, status, out)
    assert.matches("Minion did not return. [Not connected, job queued]", out, 1, true)
    status, out = w:salt("--async car1 test.echo second --queue=0")
    assert.equal(0, status, out)
    posix.sleep(1.1) -- past the one-second life of the first held job
    w:start_minion("car1")
    assert.truthy(w:wait(function()
      return count(w:minion_log("car1"), "test.echo started") == 2
    end, 10), "the held jobs were not run:\n" .. w:minion_log("car1"))
    assert.truthy(w:wait(function()
      return not posix.listdir(w.dir .. "/master/var/cache/brine/master/queue/car1")[1]
    end, 10), "held jobs stayed on the master after their returns")
    local log = harness.read(w.master_log)
    assert.matches("job " .. expired .. ": expired before car1 reconnected", log, 1, true)
    assert.falsy(posix.stat(job_cache(expired, "car1")))
    assert.falsy(posix.stat(job_cache(not_held, "car1")))
    -- a reconnect does not run them again
    w:stop("minion-car1")
    w:start_minion("car1")
    assert.truthy(w:wait_connected_again("car1", 2))
    assert.equal(0, (w:salt("car1 test.ping")))
    assert.equal(2, count(w:minion_log("car1"), "test.echo started"))
  end)

  it("delivers the return of a job whose minion was stopped or killed mid-job", function()
    w:accept("car1")
    local status, out = w:salt("--async car1 test.sleep 1")
    assert.equal(0, status, out)
    local jid = jid_of(out)
    assert.truthy(w:wait(function()
      return w:minion_log("car1"):find("test.sleep started", 1, true)
    end, 5))
    local proc = w.dir .. "/minion-root-car1/var/cache/brine/minion/proc/" .. jid
    assert.truthy(posix.stat(proc), "no record of the running job")
    w:stop("minion-car1")
    assert.matches("1 job(s) still running", w:minion_log("car1"), 1, true)
    w:start_minion("car1")
    assert.truthy(w:wait(function() return posix.stat(job_cache(jid, "car1")) end, 10),
      "the return of the stopped minion's job never arrived:\n" .. w:minion_log("car1"))
    assert.truthy(w:wait(function() return not posix.stat(proc) end, 5),
      "the record of the finished job stayed")
    status, out = w:salt("--async car1 test.sleep 1")
    assert.equal(0, status, out)
    jid = jid_of(out)
    assert.truthy(w:wait(function()
      return count(w:minion_log("car1"), "test.sleep started") == 2
    end, 5))
    w:stop("minion-car1", "KILL")
    -- the worker outlives its parent and leaves the return on disk; the
    -- minion started again finds it and sends it
    w:start_minion("car1")
    assert.truthy(w:wait(function() return posix.stat(job_cache(jid, "car1")) end, 10),
      "the return of the killed minion's job never arrived:\n" .. w:minion_log("car1"))
    assert.truthy(w:wait(function() return #minion_returns("car1") == 0 end, 10))
    assert.equal(1, count(harness.read(w.master_log), "job " .. jid .. ": return from car1"))
    -- and the jobs are not run again
    assert.equal(2, count(w:minion_log("car1"), "test.sleep started"))
  end)

  it("gets every return and held job across a link cut without a close", function()
    local ports, cut_file = w:cuttable_link()
    w:accept("car1", string.format("publish_port: %d\nmaster_port: %d\nkey_port: %d\n"
      .. "heartbeat_ivl: 200\nheartbeat_timeout: 1000\n", ports[1], ports[2], ports[3]))
    local status, out = w:salt("--async car1 test.sleep 1")
    assert.equal(0, status, out)
    local running = jid_of(out)
    assert.truthy(w:wait(function()
      return w:minion_log("car1"):find("test.sleep started", 1, true)
    end, 5))
    assert(io.open(cut_file, "w")):close() -- into the tunnel
    status, out = w:salt("--async --queue car1 test.echo held")
    assert.equal(0, status, out)
    local held = jid_of(out)
    -- the job ends during the cut; the minion notices the silent link
    assert.truthy(w:wait(function() return #minion_returns("car1") == 1 end, 10),
      "the return was not queued during the cut")
    assert.truthy(w:wait(function()
      return w:minion_log("car1"):find("the link to the master closed", 1, true)
    end, 10), "the minion did not notice the cut:\n" .. w:minion_log("car1"))
    posix.sleep(1)
    assert.falsy(posix.stat(job_cache(running, "car1")))
    os.remove(cut_file) -- out of the tunnel
    assert.truthy(w:wait(function()
      return posix.stat(job_cache(running, "car1")) and posix.stat(job_cache(held, "car1"))
    end, 20), "not everything arrived after the cut:\n" .. w:minion_log("car1"))
    assert.truthy(w:wait(function() return #minion_returns("car1") == 0 end, 10))
    local log = harness.read(w.master_log)
    assert.equal(1, count(log, "job " .. running .. ": return from car1"))
    assert.equal(1, count(log, "job " .. held .. ": return from car1"))
    assert.equal(1, count(w:minion_log("car1"), "job " .. held .. ": test.echo started"))
  end)

  it("finds its master at the last address that worked when the name fails", function()
    w:accept("car1")
    -- the master's name stops resolving (taken on SIGHUP, used at the next reconnect)
    w:minion_conf("car1", "master: no-such-host.invalid\n")
    posix.kill(w.pids["minion-car1"], "HUP")
    assert.truthy(w:wait(function()
      return w:minion_log("car1"):find("configuration reloaded", 1, true)
    end, 5))
    w:stop("master")
    assert.truthy(w:wait(function()
      return w:minion_log("car1"):find("using the last address that worked, 127.0.0.1", 1, true)
    end, 15), "no fallback:\n" .. w:minion_log("car1"))
    w:start_master()
    assert.truthy(w:wait(function() return w:salt("car1 test.ping -t 1") == 0 end, 15),
      "the minion did not come back:\n" .. w:minion_log("car1"))

    -- and a minion restarted while the name still fails finds it too
    w:stop("minion-car1")
    w:start_minion("car1", "master: no-such-host.invalid\n")
    assert.truthy(w:wait_connected_again("car1", 2, 10), "the restarted minion did not connect")
    assert.equal(0, (w:salt("car1 test.ping")))
  end)

  it("backs off exponentially with jitter while the master is away", function()
    w:stop("master")
    w:start_minion("car1", "recon_default: 100\nrecon_max: 400\nauth_timeout: 0.1\n")
    local pattern = "reconnecting in ([%d.]+) s"
    assert.truthy(w:wait(function()
      return count(w:minion_log("car1"), "reconnecting in") >= 5
    end, 10), "the minion did not retry:\n" .. w:minion_log("car1"))
    local delays = {}
    for d in w:minion_log("car1"):gmatch(pattern) do
      delays[#delays + 1] = tonumber(d)
    end
    for i = 1, 5 do
      local full = math.min(0.1 * 2 ^ (i - 1), 0.4)
      assert.truthy(delays[i] >= full / 2 - 0.01 and delays[i] <= full + 0.01,
        string.format("attempt %d waited %s s, not between %s and %s", i, delays[i],
          full / 2, full))
    end
    -- and it comes back by itself once the master is up
    w:start_master()
    assert.truthy(w:wait_pending("car1"))
  end)
end)
