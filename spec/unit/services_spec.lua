-- Device services: declarations read from the minion options, the
-- supervisor restarting a failing service with back-off, request and reply
-- with timeouts and clear errors, and the GNSS example end to end on a
-- pseudo-terminal (service, execution module and grain function).
local services = require("brine.services")
local gnss = require("services.gnss")
local obd = require("services.obd")
local serial = require("brine.hw.serial")
local posix = require("brine.posix")
local yaml = require("brine.yaml")
local loader = require("brine.loader")
local daemon = require("brine.master.daemon")

local function read(path)
  return posix.read(path) or ""
end

local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")

local function wait_for(fn, seconds)
  return harness.wait(nil, fn, seconds)
end

-- A service for the tests, found in extension_modules/services/: init
-- fails `fail_init` times (counted in a file), `echo` answers its
-- arguments, `slow` sleeps first, `fail` returns an error, `exit` ends
-- the process, and with `loop_error` set the loop fails soon after start.
local FLAKY = [[
local posix = require("brine.posix")
local M = {}
function M.init(config, svc)
  local f = assert(io.open(config.counter, "a"))
  f:write("x")
  f:close()
  local n = #assert(posix.read(config.counter))
  if n <= (config.fail_init or 0) then
    return nil, "device not ready (attempt " .. n .. ")"
  end
  return { n = n }
end
function M.handle(state, method, args, svc)
  if method == "echo" then
    return args
  elseif method == "slow" then
    svc:sleep(args.seconds)
    return "late"
  elseif method == "fail" then
    return nil, "no such register"
  elseif method == "raise" then
    error("register out of range", 0)
  elseif method == "exit" then
    svc.log:error("asked to crash")
    posix._exit(3)
  elseif method == "starts" then
    return state.n
  elseif method == "ask" then
    return svc:call(args.service, "echo", args.value, 1)
  end
end
function M.loop(state, svc)
  if svc.config.loop_error then
    svc:sleep(0.02)
    error("lost the device", 0)
  end
  while true do
    svc:sleep(60)
  end
end
return M
]]

describe("brine.services declarations", function()
  it("reads services: as a mapping and engines: as Salt's list", function()
    local opts = yaml.load([[
services:
  gnss:
    port: /dev/ttyACM0
    restart_delay: 0.5
  car:
    module: obd
engines:
  - reactor
  - logstash_prod:
      engine_module: logstash
      host: example.org
]])
    local decls, problems = services.declared(opts)
    assert.same({}, problems)
    assert.equal(4, #decls)
    assert.same({ "gnss", "gnss", 0.5, 60 }, { decls[1].name, decls[1].module,
      decls[1].restart_delay, decls[1].restart_delay_max })
    assert.equal("/dev/ttyACM0", decls[1].config.port)
    assert.is_nil(decls[1].config.restart_delay)
    assert.same({ "car", "obd" }, { decls[2].name, decls[2].module })
    assert.same({ "reactor", "reactor" }, { decls[3].name, decls[3].module })
    assert.same({ "logstash_prod", "logstash", "example.org" }, { decls[4].name,
      decls[4].module, decls[4].config.host })
    assert.is_nil(decls[4].config.engine_module)
  end)

  it("reads the flow text the daemon's line reader leaves", function()
    local decls, problems = services.declared({ services = "{gnss: {port: /dev/ttyS1}}" })
    assert.same({}, problems)
    assert.equal("/dev/ttyS1", decls[1].config.port)
  end)

  it("names the entry at fault and keeps the good ones", function()
    local opts = yaml.load([[
services:
  good: {}
  "bad name": {}
  worse: [1, 2]
  slow: {restart_delay: -1}
engines:
  - good
  - {a: 1, b: 2}
]])
    local decls, problems = services.declared(opts)
    assert.equal(2, #decls)
    assert.same({ "good", "slow" }, { decls[1].name, decls[2].name })
    assert.equal(1, decls[2].restart_delay)
    assert.same({
      "services: bad name: 'bad name' is not a service name (letters, digits, '_' and '-')",
      "services: worse: the settings of service worse must be a mapping",
      "services: slow: restart_delay must be a positive number of seconds, not -1",
      "engines: entry 2: expected a name or a mapping of one name to its settings",
      "engines: entry 1: service good is declared twice; the first declaration is used",
    }, problems)
  end)
end)

describe("brine.services supervisor and requests", function()
  local dir, opts, handle

  local function start(settings)
    opts.services = { flaky = settings }
    for k, v in pairs({ counter = dir .. "/starts", restart_delay = 0.1,
      restart_delay_max = 0.4 }) do
      if settings[k] == nil then
        settings[k] = v
      end
    end
    handle = services.start(opts, daemon.logger("brine.minion", opts))
    assert.truthy(handle, read(opts.log_file))
  end

  local function log()
    return read(opts.log_file)
  end

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    assert(posix.mkdir(dir .. "/extmods", 448))
    assert(posix.mkdir(dir .. "/extmods/services", 448))
    assert(posix.write_atomic(dir .. "/extmods/services/flaky.lua", FLAKY))
    opts = { sock_dir = dir .. "/run", extension_modules = dir .. "/extmods",
      log_file = dir .. "/minion.log", log_level = "quiet", log_level_logfile = "debug" }
  end)

  after_each(function()
    services.stop(handle)
    handle = nil
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("answers requests over a private socket (bench/services.lua times them)", function()
    start({})
    assert.truthy(wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    assert.equal(448, posix.stat(dir .. "/run/services").mode)
    assert.equal("socket", posix.stat(dir .. "/run/services/flaky.sock").type)
    local out = services.call("flaky", "echo", { a = 1, list = { "x", "y" } }, 1, opts)
    assert.equal(1, out.a)
    assert.same({ "x", "y" }, { out.list[1], out.list[2] })
    local v, err, code = services.call("flaky", "fail", nil, 1, opts)
    assert.same({ nil, "service flaky: no such register", "error" }, { v, err, code })
    v, err, code = services.call("flaky", "raise", nil, 1, opts)
    assert.same({ nil, "service flaky: register out of range", "error" }, { v, err, code })
    assert.equal(1, services.call("flaky", "starts", nil, 1, opts), "the service stayed up")
  end)

  it("drops a broken request, logs it and stays up", function()
    start({})
    assert.truthy(wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    local uv = require("luv")
    for _, junk in ipairs({ "\255\255\255\255", string.pack(">s4", "\193 not msgpack") }) do
      local pipe, closed = uv.new_pipe(false), false
      pipe:connect(dir .. "/run/services/flaky.sock", function()
        pipe:write(junk)
        pipe:read_start(function(_, chunk)
          if not chunk then
            closed = true
            pipe:close()
          end
        end)
      end)
      local deadline = uv.now() + 2000
      while not closed and uv.now() < deadline do
        uv.run("once")
      end
      assert.is_true(closed, "the service kept a broken connection open")
    end
    assert.equal("still here", services.call("flaky", "echo", "still here", 1, opts))
    -- the service logs each drop when it gets to it: wait for both lines
    assert.truthy(wait_for(function()
      return log():find("service flaky: bad request dropped: a message of 4294967295 bytes",
        1, true) and log():find("bad request dropped: a message that is not a msgpack map",
        1, true)
    end), log())
  end)

  it("gives up on a slow answer at the timeout, and answers in order", function()
    start({})
    assert.truthy(wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    local t0 = posix.monotonic()
    local v, err, code = services.call("flaky", "slow", { seconds = 0.6 }, 0.15, opts)
    local took = posix.monotonic() - t0
    assert.is_nil(v)
    assert.equal("service flaky did not answer 'slow' within 0.15 s", err)
    assert.equal("timeout", code)
    assert.is_true(took >= 0.14 and took < 0.5, tostring(took))
    -- the next request waits its turn behind the slow one, then is answered
    assert.equal("hi", services.call("flaky", "echo", "hi", 2, opts))
  end)

  it("lets a service ask another one while its own loop runs on", function()
    opts.services = { a = { module = "flaky", counter = dir .. "/a" },
      b = { module = "flaky", counter = dir .. "/b" } }
    handle = services.start(opts, daemon.logger("brine.minion", opts))
    assert.truthy(wait_for(function() return services.call("b", "starts", nil, 1, opts) end))
    assert.equal("via a", services.call("a", "ask", { service = "b", value = "via a" }, 2, opts))
    local v, err = services.call("a", "ask", { service = "c", value = 1 }, 2, opts)
    assert.is_nil(v)
    assert.matches("^service a: service c is not running", err)
  end)

  it("restarts a failing service with exponential back-off and logs why", function()
    start({ loop_error = true })
    assert.truthy(wait_for(function()
      return log():find("restart 4 in", 1, true)
    end, 5), log())
    local text = log()
    assert.matches("service flaky: stopped %(exit status 1%): lost the device; restart 1 in 0.1 s",
      text)
    assert.matches("restart 2 in 0.2 s", text)
    assert.matches("restart 3 in 0.4 s", text)
    assert.matches("restart 4 in 0.4 s", text)
    local st = services.status("flaky", opts)
    assert.truthy(st)
    assert.truthy(st.restarts >= 3)
  end)

  it("starts a service again after init fails, until the device is ready", function()
    start({ fail_init = 2 })
    assert.equal(3, wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    local text = log()
    assert.matches("service flaky: stopped %(exit status 1%): init: device not ready %(attempt 1%);"
      .. " restart 1 in 0.1 s", text)
    assert.matches("init: device not ready %(attempt 2%); restart 2 in 0.2 s", text)
  end)

  it("says why a service is down while it waits to restart", function()
    start({ restart_delay = 5, restart_delay_max = 5 })
    assert.truthy(wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    local v, err, code = services.call("flaky", "exit", nil, 1, opts)
    assert.is_nil(v)
    assert.equal("down", code)
    assert.matches("^service flaky closed the connection without answering 'exit'", err)
    assert.truthy(wait_for(function()
      local st = services.status("flaky", opts)
      return st and st.state == "restarting"
    end))
    v, err, code = services.call("flaky", "echo", 1, 1, opts)
    assert.is_nil(v)
    assert.equal("down", code)
    assert.matches("^service flaky is not running: asked to crash %(restart 1 in %d%.%d s%)$",
      err)
  end)

  it("stops every service with the supervisor", function()
    start({})
    local pid = assert(wait_for(function()
      local st = services.status("flaky", opts)
      return st and st.pid
    end))
    assert.truthy(wait_for(function() return services.call("flaky", "starts", nil, 1, opts) end))
    services.stop(handle)
    handle = nil
    assert.falsy(posix.kill(pid, 0))
    assert.is_nil(posix.stat(dir .. "/run/services/flaky.sock"))
    local v, err, code = services.call("flaky", "echo", 1, 1, opts)
    assert.is_nil(v)
    assert.equal("down", code)
    assert.matches("^service flaky is not running %(no socket .*/run/services/flaky.sock", err)
  end)
end)

describe("the gnss service", function()
  it("verifies checksums and reads any talker", function()
    local s = assert(gnss.parse(
      "$GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A*7B"))
    assert.same({ "GN", "RMC", "001031.00" }, { s.talker, s.type, s.fields[1] })
    assert.same({ nil, "checksum" }, { gnss.parse("$GNRMC,001031.00,A*00") })
    assert.same({ nil, "checksum" }, { gnss.parse("$GPGGA,123519,4807.038,N") })
    assert.same({ nil, "malformed" }, { gnss.parse("GPGGA,1*41") })
  end)

  it("keeps the latest fix and counts what it drops", function()
    local state = gnss.new_state({ port = "/dev/null" })
    assert.same({ nil, "no position fix yet (0 sentences read)" }, { gnss.position(state, 0) })
    for _, body in ipairs({
      "GNRMC,001031.00,A,4404.13993,N,12118.86023,W,0.146,,100117,,,A",
      "GNGGA,001031.00,4404.13993,N,12118.86023,W,1,08,1.01,499.6,M,,M,,",
      "GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00",
    }) do
      gnss.feed(state, gnss.sentence(body), 1)
    end
    gnss.feed(state, "$GNGGA,garbage*00", 1)
    gnss.feed(state, "noise", 1)
    local pos = assert(gnss.position(state, 1.5))
    assert.near(44.068999, pos.latitude, 1e-6)
    assert.near(-121.314337, pos.longitude, 1e-6)
    assert.equal(499.6, pos.altitude)
    assert.equal("2017-01-10T00:10:31.00Z", pos.time)
    assert.same({ 1, 8, 1.01, 0.5 }, { pos.quality, pos.satellites, pos.hdop, pos.age })
    local st = gnss.status(state, 2)
    assert.same({ 3, 1, 1, 1, true }, { st.sentences, st.bad_checksum, st.malformed, st.ignored,
      st.fix })
    assert.same({ nil, "no position fix for 20.0 s (the receiver reports nothing new)" },
      { gnss.position(state, 21) })
    gnss.feed(state, gnss.sentence("GNRMC,001041.00,V,,,,,,,100117,,,N"), 22)
    assert.same({ nil, "no position fix for 21.0 s (the receiver reports no fix)" },
      { gnss.position(state, 22) })
  end)

  it("answers gnss.position from NMEA written to a pseudo-terminal", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    local receiver, path = assert(serial.openpty())
    local opts = { sock_dir = dir .. "/run", log_file = dir .. "/minion.log",
      log_level = "quiet", log_level_logfile = "debug",
      services = { gnss = { port = path, baud = 4800 } } }
    local handle = services.start(opts, daemon.logger("brine.minion", opts))
    local ok, err = xpcall(function()
      local ld = loader.new(opts)
      assert.truthy(wait_for(function()
        local st = ld.salt["gnss.status"]()
        return st and st.baud == 4800
      end), read(opts.log_file))
      local v, why = ld.salt["gnss.position"]()
      assert.is_nil(v)
      assert.equal("service gnss: no position fix yet (0 sentences read)", why)
      receiver:write("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n")
      receiver:write("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n")
      receiver:write("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48\r\n")
      local pos = wait_for(function()
        local p = ld.salt["gnss.position"]()
        return p and p.altitude and p.time and p
      end)
      assert.truthy(pos, read(opts.log_file))
      assert.near(48.1173, pos.latitude, 1e-9)
      assert.near(11.516667, pos.longitude, 1e-6)
      assert.near(41.4848, pos.speed_kmh, 1e-9)
      assert.equal("1994-03-23T12:35:19Z", pos.time)
      local st = ld.salt["gnss.status"]()
      assert.same({ 2, 1, true }, { st.sentences, st.bad_checksum, st.fix })
      local grains = gnss.grains(opts)
      assert.near(48.1173, grains.gnss.position.latitude, 1e-9)
    end, debug.traceback)
    services.stop(handle)
    receiver:close()
    assert.same({}, gnss.grains(opts))
    os.execute("rm -rf '" .. dir .. "'")
    assert(ok, err)
  end)
end)

-- The simulated adapter (spec/support/elm327.lua).
local elm327 = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/support/elm327.lua")

describe("the obd service", function()
  it("decodes PIDs from the adapter's answers", function()
    assert.same({ 0x1A, 0xF8 }, obd.decode(1, 0x0C, { "41 0C 1A F8" }))
    assert.same({ 0x32 }, obd.decode(1, 0x0D, { "7E8 03 41 0D 32", "41 0D 32" }))
    assert.same({ nil, 'no answer to mode 01 PID 0D in "41 0C 1A F8"' },
      { obd.decode(1, 0x0D, { "41 0C 1A F8" }) })
    assert.same({ 12, 12, 12, 0x0D }, { obd.pid_of(12), obd.pid_of("0C"), obd.pid_of("0x0C"),
      obd.pid_of("speed") })
  end)

  it("answers obd.query through a simulated ELM327 on a pseudo-terminal", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    local peer, path = assert(serial.openpty())
    local adapter = elm327.start(peer)
    local opts = { sock_dir = dir .. "/run", log_file = dir .. "/minion.log",
      log_level = "quiet", log_level_logfile = "debug",
      services = { car = { module = "obd", port = path, timeout = 1 } } }
    local handle = services.start(opts, daemon.logger("brine.minion", opts))
    local ok, err = xpcall(function()
      local ld = loader.new(opts)
      local rpm = wait_for(function()
        return ld.salt["obd.query"]("rpm", { __kwarg__ = true, service = "car" })
      end)
      assert.truthy(rpm, read(opts.log_file))
      assert.same({ "0C", "rpm", 1726.0, "rpm" }, { rpm.pid, rpm.name, rpm.value, rpm.unit })
      local speed = assert(ld.salt["obd.query"](13, { __kwarg__ = true, service = "car" }))
      assert.same({ "speed", 50, "km/h" }, { speed.name, speed.value, speed.unit })
      local coolant = assert(ld.salt["obd.query"]("coolant_temp",
        { __kwarg__ = true, service = "car" }))
      assert.same({ "05", 83, "°C" }, { coolant.pid, coolant.value, coolant.unit })
      local raw = ld.salt["obd.query"]("00", { __kwarg__ = true, service = "car" })
      assert.same({ 0xBE, 0x1F, 0xA8, 0x13 }, { table.unpack(raw.bytes) })
      local v, why, code = ld.salt["obd.query"]("maf", { __kwarg__ = true, service = "car" })
      assert.is_nil(v)
      assert.equal("service car: 0110: no data (the vehicle does not report it)", why)
      assert.equal("error", code)
      assert.equal(12.6, ld.salt["obd.voltage"]({ __kwarg__ = true, service = "car" }))
      local st = ld.salt["obd.status"]({ __kwarg__ = true, service = "car" })
      assert.same({ "ELM327 v1.5", 5, 1 }, { st.adapter, st.queries, st.failures })
    end, debug.traceback)
    services.stop(handle)
    local seen = adapter.stop()
    peer:close()
    os.execute("rm -rf '" .. dir .. "'")
    assert(ok, err)
    assert.same({ "ATZ", "ATE0", "ATL0", "ATH0", "ATSP0", "010C" },
      { table.unpack(seen, 1, 6) })
  end)
end)
