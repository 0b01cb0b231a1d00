-- The jobs running on a minion, end to end: saltutil.running and find_job
-- show a job started with --async, kill_job and term_job end its worker
-- (which leaves a return saying so), and its record goes away.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local posix = require("brine.posix")
local json = require("brine.json")

describe("jobs on a minion", function()
  local w = harness.each_world(before_each, after_each)

  local function call(args)
    local status, out = w:salt("dev1 " .. args .. " --out json")
    assert.equal(0, status, out)
    local got = json.decode(out)
    assert(got, out)
    return got.dev1
  end

  local function start_sleep()
    local status, out = w:salt("--async dev1 test.sleep 30")
    assert.equal(0, status, out)
    local jid = out:match("job ID: (%d+)")
    assert.truthy(jid, out)
    local running = w:wait(function()
      local list = call("saltutil.running")
      return #list == 1 and list[1].jid == jid and list
    end, 15)
    assert.truthy(running, "saltutil.running never showed the job")
    return jid, running[1]
  end

  -- Waits until the job is no longer running and its return is stored;
  -- returns that return's text.
  local function ended(jid)
    assert.truthy(w:wait(function()
      return #call("saltutil.running") == 0
    end, 15), "the job kept running")
    local path = w.dir .. "/master/var/cache/brine/master/jobs/" .. jid .. "/dev1"
    assert.truthy(w:wait(function() return posix.stat(path) end, 15),
      "the killed job left no return")
    local _, out = w:brine("run -c '" .. w.mconf .. "' jobs.lookup_jid " .. jid)
    return out
  end

  it("shows a running job and kills it", function()
    w:accept("dev1")
    local jid, rec = start_sleep()
    assert.equal("test.sleep", rec.fun)
    assert.same({ 30 }, rec.arg)
    assert.equal("dev1", rec.tgt)
    assert.truthy(math.tointeger(rec.pid))
    assert.equal(jid, call("saltutil.find_job " .. jid).jid)
    assert.same({}, call("saltutil.find_job 20010101000000000000"))

    local said = call("saltutil.kill_job " .. jid)
    assert.equal(string.format("Signal 9 sent to job %s at pid %d", jid, rec.pid), said)
    assert.matches("the worker was killed by signal 9", ended(jid), 1, true)
    assert.falsy(harness.alive(rec.pid), "the worker still runs")
    assert.is_nil(posix.stat(w.dir .. "/minion-root-dev1/var/cache/brine/minion/proc/" .. jid))
    assert.same({}, call("saltutil.find_job " .. jid))
    assert.equal("", call("saltutil.kill_job " .. jid))
  end)

  it("terminates a job, sends it a signal by name, kills every job", function()
    w:accept("dev1")
    local jid, rec = start_sleep()
    assert.equal(string.format("Signal 15 sent to job %s at pid %d", jid, rec.pid),
      call("saltutil.term_job " .. jid))
    assert.matches("the worker was killed by signal 15", ended(jid), 1, true)

    jid, rec = start_sleep()
    assert.equal(string.format("Signal INT sent to job %s at pid %d", jid, rec.pid),
      call("saltutil.signal_job " .. jid .. " INT"))
    assert.matches("the worker was killed by signal 2", ended(jid), 1, true)

    jid, rec = start_sleep()
    assert.same({ string.format("Signal 9 sent to job %s at pid %d", jid, rec.pid) },
      call("saltutil.kill_all_jobs"))
    assert.matches("the worker was killed by signal 9", ended(jid), 1, true)
  end)
end)
