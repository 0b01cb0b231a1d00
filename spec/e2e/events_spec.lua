-- The master's event bus end to end: `brine run state.event` follows
-- Salt's tags (salt/auth, salt/key, salt/job/JID/new and /ret/ID,
-- minion_start, salt/minion/ID/start) as real daemons fire them, and
-- minions' own events (event.send, event.fire_master) arrive under their
-- id and cannot pose as the master's.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local json = require("brine.json")

describe("the event bus", function()
  local w = harness.each_world(before_each, after_each)

  -- Starts `brine run state.event ARGS` in the background, waits until it
  -- is subscribed; returns a function that waits for it to end and gives
  -- its events as { tag, data } (data decoded from JSON).
  local function follow(args)
    local subscribed = harness.count(harness.read(w.master_log), "a local client subscribed")
    local name = "events" .. subscribed
    local _, out = w:spawn(name, "run -c '" .. w.mconf .. "' state.event " .. args)
    assert.truthy(w:wait(function()
      return harness.count(harness.read(w.master_log), "a local client subscribed") > subscribed
    end, 10), "state.event did not subscribe:\n" .. harness.read(out))
    return function()
      local pid = w.pids[name]
      assert.truthy(w:wait(function() return not harness.alive(pid) end, 10),
        "state.event did not end:\n" .. harness.read(out))
      w.pids[name] = nil -- ended by itself
      local got = {}
      local tag, body
      for line in harness.read(out):gmatch("([^\n]*)\n") do
        if tag then
          body = body .. "\n" .. line
        else
          tag, body = line:match("^([^\t]+)\t(.*)$")
        end
        local ok, value = pcall(json.decode, body or "")
        if tag and ok and type(value) == "table" then
          got[#got + 1] = { tag = tag, data = value }
          tag = nil
        end
      end
      return got, harness.read(out)
    end
  end

  it("shows a minion's key, its authentication and its start", function()
    local done = follow("count=5")
    -- a pending minion asks again every acceptance_wait_time: long enough
    -- here that a loaded machine accepts the key before a second request
    w:accept("dev1", "acceptance_wait_time: 2\n")
    local got, text = done()
    local tags = {}
    for i, e in ipairs(got) do
      tags[i] = e.tag
    end
    assert.same({ "salt/auth", "salt/key", "salt/auth", "minion_start",
      "salt/minion/dev1/start" }, tags, text)
    assert.same({ false, "pend", "dev1" }, { got[1].data.result, got[1].data.act, got[1].data.id })
    assert.equal(40, #got[1].data.pub)
    assert.same({ "dev1", "accept", true }, { got[2].data.id, got[2].data.act, got[2].data.result })
    assert.same({ true, "accept" }, { got[3].data.result, got[3].data.act })
    assert.matches("^Minion dev1 started at ", got[4].data.data)
    assert.same({ "_minion_event", "dev1", "minion_start" },
      { got[4].data.cmd, got[4].data.id, got[4].data.tag })
    assert.equal("dev1", got[5].data.id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+$", got[5].data._stamp)

    done = follow("count=1")
    assert.equal(0, (w:key("-d dev1 -y")))
    got = done()
    assert.same({ "salt/key", "dev1", "delete" }, { got[1].tag, got[1].data.id, got[1].data.act })
  end)

  it("shows a job's publication and each return, filtered by tag", function()
    w:accept("dev1")
    local done = follow("'salt/job/*' count=2 pretty=True")
    local status, out = w:salt("dev1 test.echo hello")
    assert.equal(0, status, out)
    local got, text = done()
    local jid = got[1].data.jid
    assert.equal("salt/job/" .. jid .. "/new", got[1].tag)
    assert.same({ "dev1" }, got[1].data.minions)
    assert.same({ "hello" }, got[1].data.arg)
    assert.equal("test.echo", got[1].data.fun)
    -- pretty: indented, keys sorted, as Salt prints it
    assert.matches("^salt/job/" .. jid .. "/new\t{\n    \"_stamp\": ", text)
    assert.equal("salt/job/" .. jid .. "/ret/dev1", got[2].tag)
    assert.same({ "dev1", "hello", 0, true }, { got[2].data.id, got[2].data["return"],
      got[2].data.retcode, got[2].data.success })
  end)

  it("carries minions' events under their own id and refuses the master's tags", function()
    w:accept("dev1")
    local done = follow("'*/custom*' count=3")
    local status, out = w:salt("dev1 event.send app/custom data='{a: 1, id: other}' b=2")
    assert.equal(0, status, out)
    status, out = w:salt("dev1 event.send salt/job/20200101000000000000/custom")
    assert.equal(0, status, out)
    status, out = w:salt("dev1 event.send salt/minion/web1/custom")
    assert.equal(0, status, out)
    status, out = w:salt("dev1 event.fire_master '{x: y}' salt/minion/dev1/custom")
    assert.equal(0, status, out)
    status, out = w:salt("dev1 event.fire_master '{n: 2}' app/custom2")
    assert.equal(0, status, out)
    local got = done()
    assert.same({ "app/custom", "salt/minion/dev1/custom", "app/custom2" },
      { got[1].tag, got[2].tag, got[3].tag })
    -- Salt's shape: the minion's data under `data`, its id beside it
    assert.same({ 1, 2, "other" }, { got[1].data.data.a, got[1].data.data.b,
      got[1].data.data.id })
    assert.same({ "dev1", "app/custom", "_minion_event" }, { got[1].data.id, got[1].data.tag,
      got[1].data.cmd })
    assert.same({ "y", "dev1" }, { got[2].data.data.x, got[2].data.id })
    local log = harness.read(w.master_log)
    assert.matches("minion dev1: event refused: tag 'salt/job/20200101000000000000/custom' is"
      .. " in the master's namespace", log, 1, true)
    assert.matches("minion dev1: event refused: tag 'salt/minion/web1/custom'", log, 1, true)
  end)
end)
