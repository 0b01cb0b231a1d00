-- brine.zmq: CURVE with a ZAP handler in the same context, the identity a
-- received message carries, size limits, polling and closing.
local zmq = require("brine.zmq")

describe("brine.zmq", function()
  local ctx

  before_each(function()
    ctx = assert(zmq.context())
  end)

  after_each(function()
    ctx:close()
  end)

  it("raises the socket limit of a context when asked", function()
    local big = assert(zmq.context({ max_sockets = 1500 }))
    local socks = {}
    for i = 1, 1100 do
      socks[i] = assert(big:socket("DEALER"))
    end
    for _, s in ipairs(socks) do
      s:close()
    end
    big:close()
    local small = assert(zmq.context())
    local n, ok = 0, true
    local held = {}
    while ok and n < 1100 do
      ok = small:socket("DEALER")
      if ok then
        n = n + 1
        held[n] = ok
      end
    end
    assert.truthy(n < 1100, "the default limit of 1023 sockets did not hold")
    for _, s in ipairs(held) do
      s:close()
    end
    small:close()
  end)

  it("reports the file descriptor a message came from", function()
    local server = assert(ctx:socket("ROUTER"))
    assert(server:bind("tcp://127.0.0.1:*"))
    local client = assert(ctx:socket("DEALER"))
    assert(client:connect(server:getopt("last_endpoint")))
    assert(client:send("hi"))
    assert(zmq.poll({ server }, 5000)[1])
    local frames, meta = server:recv()
    assert.equal("hi", frames[2])
    assert.equal("integer", math.type(meta.fd))
    server:close()
    client:close()
  end)

  it("makes CURVE key pairs and converts Z85", function()
    local pub, sec = zmq.curve_keypair()
    assert.equal(40, #pub)
    assert.equal(40, #sec)
    assert.equal(pub, zmq.curve_public(sec))
    local raw = assert(zmq.z85_decode(pub))
    assert.equal(32, #raw)
    assert.equal(pub, zmq.z85_encode(raw))
    assert.is_nil(zmq.z85_decode("abc"))
    assert.matches("^%x%x:", zmq.fingerprint(pub))
    assert.equal(32 * 3 - 1, #zmq.fingerprint(pub))
    assert.is_nil(zmq.fingerprint("short"))
  end)

  it("authenticates CURVE clients through ZAP and reports their User-Id", function()
    local spub, ssec = zmq.curve_keypair()
    local good_pub, good_sec = zmq.curve_keypair()
    local bad_pub, bad_sec = zmq.curve_keypair()
    local zap = assert(ctx:socket("REP"))
    assert(zap:bind("inproc://zeromq.zap.01"))
    local server = assert(ctx:socket("ROUTER"))
    assert(server:setopt("curve_server", 1))
    assert(server:setopt("curve_secretkey", ssec))
    assert(server:setopt("zap_domain", "test"))
    assert(server:bind("tcp://127.0.0.1:*"))
    local ep = server:getopt("last_endpoint")

    local function client(pub, sec)
      local c = assert(ctx:socket("DEALER"))
      assert(c:setopt("curve_publickey", pub))
      assert(c:setopt("curve_secretkey", sec))
      assert(c:setopt("curve_serverkey", spub))
      assert(c:connect(ep))
      return c
    end
    local good, bad = client(good_pub, good_sec), client(bad_pub, bad_sec)
    assert(good:send({ "hello" }))
    assert(bad:send("intruder"))

    local seen = 0
    local got
    for _ = 1, 40 do
      local ready = assert(zmq.poll({ zap, server }, 100))
      if ready[1] then
        local req = assert(zap:recv())
        assert.equal("1.0", req[1])
        assert.equal("test", req[3])
        assert.equal("CURVE", req[6])
        local key = zmq.z85_encode(req[7])
        local ok = key == good_pub
        assert(zap:send({ "1.0", req[2], ok and "200" or "400", "", ok and "web-1" or "", "" }))
        seen = seen + 1
      end
      if ready[2] then
        local frames, meta = assert(server:recv({ dontwait = true }))
        got = { frames = frames, meta = meta }
      end
      if got and seen >= 2 then
        break
      end
    end
    assert.truthy(got, "no message reached the server")
    assert.equal("hello", got.frames[2])
    assert.equal("web-1", got.meta.user_id)
    assert.equal("127.0.0.1", got.meta.peer_address)
    local again = server:recv({ dontwait = true })
    assert.is_nil(again)   -- the refused client's message never arrived
    good:close()
    bad:close()
    server:close()
    zap:close()
  end)

  it("drops messages over maxmsgsize and refuses too many frames", function()
    local a, b = assert(ctx:socket("PAIR")), assert(ctx:socket("PAIR"))
    assert(b:setopt("maxmsgsize", 100))
    assert.equal(100, b:getopt("maxmsgsize"))
    assert(b:bind("tcp://127.0.0.1:*"))
    assert(a:connect(b:getopt("last_endpoint")))
    assert(a:send({ "x", "y", "z" }))
    local frames, err, code = b:recv({ max_frames = 2 })
    assert.is_nil(frames)
    assert.equal("EMSGSIZE", code)
    assert.matches("3 frames", err)
    local _, _, again = b:recv({ dontwait = true })
    assert.equal("EAGAIN", again)
    a:close()
    b:close()
  end)

  it("polls sockets and file descriptors with a timeout", function()
    local s = assert(ctx:socket("DEALER"))
    local ready = assert(zmq.poll({ s }, 20))
    assert.is_nil(ready[1])
    local posix = require("brine.posix")
    local fd = posix.signals({ "USR1" })
    posix.pending()
    assert.is_nil(assert(zmq.poll({ s, fd }, 10))[2])
    assert(posix.kill(posix.getpid(), "USR1"))
    ready = assert(zmq.poll({ s, fd }, 1000))
    assert.is_true(ready[2])
    assert.is_nil(ready[1])
    assert.is_true(posix.pending().USR1)
    s:close()
  end)

  it("raises on misuse and closes twice safely", function()
    local s = assert(ctx:socket("DEALER"))
    assert.has_error(function() ctx:socket("NOPE") end)
    assert.has_error(function() s:setopt("no_such_option", 1) end)
    assert.has_error(function() s:setopt("curve_serverkey", "short") end)
    local ok, err, code = s:connect("nonsense://x")
    assert.is_nil(ok)
    assert.matches("connect nonsense://x", err)
    assert.truthy(code)
    s:close()
    s:close()
    assert.has_error(function() s:send("x") end)
    assert.matches("closed", tostring(s))
  end)
end)
