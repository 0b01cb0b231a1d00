-- Keys: id checks, key files and modes, and the states a key offered to
-- the master ends in (pending, accepted, rejected, denied).
local keys = require("brine.keys")
local posix = require("brine.posix")
local zmq = require("brine.zmq")

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  return dir
end

describe("brine.keys", function()
  local dir

  before_each(function()
    dir = tmpdir()
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("checks minion ids before they touch a path", function()
    assert.truthy(keys.valid_id("web-1.example.com"))
    assert.truthy(keys.valid_id("Ünïcode_id"))
    for _, bad in ipairs({ "", "..", "a/../b", "a/b", "a\0b", "a\nb", "\27", ".",
      "x\\y", string.rep("a", 256) }) do
      local ok, why = keys.valid_id(bad)
      assert.is_nil(ok, bad)
      assert.is_string(why)
    end
    assert.is_nil(keys.valid_id(42))
  end)

  it("makes a key pair once, with private modes", function()
    local pub, sec, created = keys.ensure_keypair(dir .. "/pki/minion", "minion")
    assert.truthy(created)
    assert.equal(pub, zmq.curve_public(sec))
    assert.equal(448, posix.stat(dir .. "/pki/minion").mode)
    assert.equal(384, posix.stat(dir .. "/pki/minion/minion.key").mode)
    assert.equal(384, posix.stat(dir .. "/pki/minion/minion.pub").mode)
    local pub2, sec2, created2 = keys.ensure_keypair(dir .. "/pki/minion", "minion")
    assert.equal(pub, pub2)
    assert.equal(sec, sec2)
    assert.is_nil(created2)
  end)

  it("refuses a damaged secret key instead of replacing it", function()
    keys.ensure_keypair(dir, "master")
    posix.write_atomic(dir .. "/master.key", "garbage\n")
    local pub, err = keys.ensure_keypair(dir, "master")
    assert.is_nil(pub)
    assert.matches("not a CURVE secret key", err)
  end)

  it("records offered keys as pending, accepted, rejected or denied", function()
    local store = assert(keys.open(dir))
    local k1, k2, k3 = zmq.curve_keypair(), zmq.curve_keypair(), zmq.curve_keypair()
    assert.equal("pending", store:offer("dev1", k1))
    assert.equal("pending", store:offer("dev1", k1))
    assert.same({ "dev1" }, store:list("pending"))
    -- another key under a pending id is denied, not queued beside it
    assert.equal("denied", store:offer("dev1", k2))
    assert.same({ "dev1" }, store:list("denied"))
    assert(store:move("pending", "accepted", "dev1"))
    assert.equal("accepted", store:offer("dev1", k1))
    -- a re-imaged device with a new key under a known id
    assert.equal("denied", store:offer("dev1", k3))
    assert.equal(k3, store:key("denied", "dev1"))
    assert.equal(k1, store:key("accepted", "dev1"))
    assert.equal("accepted", store:offer("dev2", k2, true))
    local index = store:index()
    assert.equal("dev1", index.by_key[k1].id)
    assert.equal("accepted", index.by_key[k1].state)
    assert.equal(k2, index.accepted.dev2)
    assert.equal(448, posix.stat(dir .. "/minions_denied").mode)
    assert.has_error(function() store:path("accepted", "../x") end)
  end)

  it("notices changes through the folder stamps", function()
    local store = assert(keys.open(dir))
    local before = store:stamp()
    posix.sleep(0.01)
    store:offer("dev9", (zmq.curve_keypair()))
    assert.are_not.equal(before, store:stamp())
  end)
end)
