-- Pillar from the master end to end: each minion gets the pillar the
-- master compiles for it and nothing of another's, even when it asks under
-- another id; jobs target by the pillar the master keeps; a broken SLS
-- shows as `_errors` on the minion (safe form) and in full in the master's
-- log; saltutil.refresh_pillar fetches changed files.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local posix = require("brine.posix")
local json = require("brine.json")
local wire = require("brine.master.wire")

local function write(path, text)
  assert(posix.write_atomic(path, text))
end

local TOP = [[
base:
  'dev1':
    - dev1
  'dev2':
    - dev2
  '*':
    - common
]]

describe("pillar from the master", function()
  local w, root

  before_each(function()
    w = harness.world()
    root = w.dir .. "/pillar"
    assert(posix.mkdir(root, 448))
    write(w.mconf .. "/master", harness.read(w.mconf .. "/master")
      .. "pillar_roots:\n  base:\n    - " .. root .. "\n")
    write(root .. "/top.sls", TOP)
    write(root .. "/dev1.sls", "secret: one\nrole: web\n")
    write(root .. "/dev2.sls", "secret: two\nrole: db\n")
    write(root .. "/common.sls", "site: oslo\n")
    w:start_master()
  end)

  after_each(function()
    w:cleanup()
  end)

  -- (one minion at a time: the json outputter prints a document per minion)
  local function pillars(target)
    local status, out = w:salt(target .. " pillar.items --out json")
    assert.equal(0, status, out)
    local got = json.decode(out)
    assert(got, out)
    return got
  end

  it("gives each minion its own pillar and targets jobs by it", function()
    w:accept("dev1")
    w:accept("dev2")
    assert.same({ secret = "one", role = "web", site = "oslo" }, pillars("dev1").dev1)
    assert.same({ secret = "two", role = "db", site = "oslo" }, pillars("dev2").dev2)
    -- what reached dev1's machine holds nothing of dev2's pillar
    local kept = harness.read(w.dir .. "/minion-root-dev1/var/cache/brine/minion/pillar")
    assert.truthy(kept:find("one", 1, true))
    assert.falsy(kept:find("two", 1, true))

    local status, out = w:salt("-I role:web test.ping")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)
    status, out = w:salt("-I 'role:D*' test.ping") -- case-insensitive, as Salt
    assert.equal(0, status, out)
    assert.equal("dev2:\n    True\n", out)
    status, out = w:salt("-C 'I@site:oslo and not I@secret:one' test.ping")
    assert.equal(0, status, out)
    assert.equal("dev2:\n    True\n", out)
    status, out = w:salt("-I role:nothing test.ping")
    assert.equal(2, status, out)

    -- a deleted key takes its pillar off the master
    local cached = w.dir .. "/master/var/cache/brine/master/minions/dev2/pillar"
    assert.truthy(posix.stat(cached))
    status, out = w:key("-d dev2 -y")
    assert.equal(0, status, out)
    assert.truthy(w:wait(function() return not posix.stat(cached) end, 5))
  end)

  it("answers a pillar request for the authenticated minion only", function()
    w:accept("dev1")
    w:accept("dev2")
    local sock, ctx = w:curve_client(2, harness.keypair(w:minion_pki("dev1"), "minion"))
    assert(sock:send(wire.encode({ cmd = "_pillar", id = "dev2" })))
    assert.is_nil(harness.receive(sock, 1.5), "the master answered a request under another id")
    assert.truthy(w:wait(function()
      return harness.read(w.master_log):find("minion dev1: message claims to come from dev2",
        1, true)
    end, 5))
    -- asking without an id, or with its own, gets its own pillar only
    assert(sock:send(wire.encode({ cmd = "_pillar" })))
    local frames = harness.receive(sock, 10)
    assert.truthy(frames, "no answer to the minion's own pillar request")
    local msg = assert(wire.decode(frames[1]))
    assert.equal("_pillar", msg.cmd)
    assert.equal("one", msg.pillar.secret)
    assert.equal("web", msg.pillar.role)
    sock:close()
    ctx:close()
  end)

  it("gives the minion _errors in safe form and the master the details", function()
    write(root .. "/dev1.sls", "secret: {% for x in %}\n")
    w:accept("dev1")
    local got = pillars("dev1")
    assert.equal(1, #got.dev1._errors)
    assert.matches("^Rendering SLS 'dev1' failed at .*dev1%.sls", got.dev1._errors[1])
    assert.equal("oslo", got.dev1.site)
    assert.truthy(w:wait(function()
      return harness.read(w.master_log):find("minion dev1: pillar: Rendering SLS 'dev1' failed,"
        .. " render error:", 1, true)
    end, 5), harness.read(w.master_log))
  end)

  it("fetches changed pillar files on saltutil.refresh_pillar", function()
    w:accept("dev1")
    assert.equal("one", pillars("dev1").dev1.secret)
    write(root .. "/dev1.sls", "secret: three\nrole: web\n")
    local status, out = w:salt("dev1 saltutil.refresh_pillar wait=True")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)
    assert.equal("three", pillars("dev1").dev1.secret)
    status, out = w:salt("-I secret:three test.ping")
    assert.equal(0, status, out)
    assert.equal("dev1:\n    True\n", out)

    -- without wait, the next jobs see it once the master's answer is in
    write(root .. "/dev1.sls", "secret: four\n")
    status, out = w:salt("dev1 saltutil.refresh_pillar")
    assert.equal("dev1:\n    True\n", out)
    assert.truthy(w:wait(function()
      return pillars("dev1").dev1.secret == "four"
    end, 10))
  end)
end)
