-- The obd state (lua/states/obd.lua) through a "states" loader, against a
-- running obd service whose adapter is the simulated ELM327 on a
-- pseudo-terminal: test mode, changing only what differs, idempotence, a
-- command the adapter refuses, an adapter that was reset, the service down.
local services = require("brine.services")
local serial = require("brine.hw.serial")
local posix = require("brine.posix")
local loader = require("brine.loader")
local data = require("brine.data")
local daemon = require("brine.master.daemon")

local source = os.getenv("BRINE_SOURCE_DIR") or "."
local harness = dofile(source .. "/spec/e2e/harness.lua")
local elm327 = dofile(source .. "/spec/support/elm327.lua")

local function kw(t)
  t.__kwarg__ = true
  return t
end

describe("the obd.configured state", function()
  local dir, peer, adapter, handle, opts, ex

  -- Starts the service "car" on a pty played by a simulated adapter and
  -- waits until it answers.
  local function start(sim_options)
    dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    local path
    peer, path = assert(serial.openpty())
    adapter = elm327.start(peer, sim_options)
    opts = { sock_dir = dir .. "/run", log_file = dir .. "/minion.log", log_level = "quiet",
      log_level_logfile = "debug", services = { car = { module = "obd", port = path,
        timeout = 1 } } }
    handle = services.start(opts, daemon.logger("brine.minion", opts))
    ex = loader.new(opts)
    assert.truthy(harness.wait(nil, function()
      return ex.salt["obd.settings"](kw({ service = "car" }))
    end), posix.read(opts.log_file))
  end

  -- Runs the state as the state system will: a "states" loader whose
  -- modules call the execution modules through `salt`.
  local function run(test, args)
    local run_opts = setmetatable({ test = test }, { __index = opts })
    local states = loader.new(run_opts, { tree = "states", salt = ex.salt })
    return states:call("obd.configured", { "car" }, args)
  end

  -- The commands the adapter received since `from`.
  local function sent_since(from)
    return { table.unpack(adapter.seen, from + 1) }
  end

  after_each(function()
    if handle then
      services.stop(handle)
      handle = nil
    end
    if adapter then
      adapter.stop()
      peer:close()
    end
    os.execute("rm -rf '" .. dir .. "'")
    adapter = nil
  end)

  local WANTED = { protocol = 6, echo = false, headers = true, timeout_ms = 100,
    adaptive_timing = 2 }
  local CHANGES = {
    protocol = { old = "A0", new = "6" },
    headers = { old = false, new = true },
    timeout_ms = { old = 200, new = 100 },
    adaptive_timing = { old = 1, new = 2 },
  }

  it("reports what would change in test mode and changes nothing", function()
    start()
    local from = #adapter.seen
    local ret = run(true, WANTED)
    assert.equal("car", ret.name)
    assert.equal(data.null, ret.result)
    assert.same(CHANGES, ret.changes)
    assert.equal("OBD adapter car would be configured: protocol, headers, timeout_ms,"
      .. " adaptive_timing", ret.comment)
    assert.same({ "ATDPN", "ATDP" }, sent_since(from))
    assert.same({ false, "0", 0x32, 1 }, { adapter.headers, adapter.protocol, adapter.timeout,
      adapter.adaptive })
  end)

  it("changes exactly what differs, and a second run changes nothing", function()
    start()
    local from = #adapter.seen
    local ret = run(false, WANTED)
    assert.is_true(ret.result, ret.comment)
    assert.same(CHANGES, ret.changes)
    assert.equal("OBD adapter car was configured: protocol, headers, timeout_ms,"
      .. " adaptive_timing", ret.comment)
    assert.same({ "ATDPN", "ATDP", "ATSP6", "ATH1", "ATST19", "ATAT2", "ATDPN", "ATDP" },
      sent_since(from))
    assert.same({ true, "6", false, 0x19, 2, false }, { adapter.headers, adapter.protocol,
      adapter.auto, adapter.timeout, adapter.adaptive, adapter.echo })

    from = #adapter.seen
    ret = run(false, WANTED)
    assert.same({ true, {}, "OBD adapter car is already configured as wanted" },
      { ret.result, ret.changes, ret.comment })
    assert.same({ "ATDPN", "ATDP" }, sent_since(from))
    local st = ex.salt["obd.settings"](kw({ service = "car" }))
    assert.same({ "6", "ISO 15765-4 (CAN 11/500)" }, { st.protocol, st.protocol_name })
    -- queries still decode with the headers shown
    local rpm = assert(ex.salt["obd.query"]("rpm", kw({ service = "car" })))
    assert.equal(1726.0, rpm.value)
  end)

  it("takes the automatic search as satisfied by the protocol it found", function()
    start()
    assert(ex.salt["obd.query"]("speed", kw({ service = "car" })))
    assert.equal("A6", ex.salt["obd.settings"](kw({ service = "car" })).protocol)
    local ret = run(false, { protocol = "auto", headers = false })
    assert.same({ true, {} }, { ret.result, ret.changes })
  end)

  it("fails with the command and the adapter's answer when the adapter refuses one", function()
    start({ lacks = { "ATAT2" } })
    local ret = run(false, { headers = true, adaptive_timing = 2 })
    assert.is_false(ret.result)
    assert.equal("OBD adapter car could not be configured: service car: ATAT2: the adapter did"
      .. " not understand the command (it answered '?')", ret.comment)
    -- what was changed before the refusal is reported
    assert.same({ headers = { old = false, new = true } }, ret.changes)
    assert.is_true(adapter.headers)
  end)

  it("refuses a value that is not a setting, sending nothing", function()
    start()
    local from = #adapter.seen
    local ret = run(false, { protocol = "Z", headers = true })
    assert.same({ false, {} }, { ret.result, ret.changes })
    assert.equal("OBD adapter car: protocol: 'Z' is not a valid value (0 or auto for the"
      .. " automatic search, 1-9 or A-C)", ret.comment)
    assert.same({}, sent_since(from))
  end)

  it("knows an adapter that lost power is back to its defaults", function()
    start()
    assert.is_true(run(false, WANTED).result)
    adapter.power_cycle()
    local ret = run(false, WANTED)
    assert.is_true(ret.result, ret.comment)
    assert.same({
      protocol = { old = "A0", new = "6" },
      echo = { old = true, new = false },
      headers = { old = false, new = true },
      timeout_ms = { old = 200, new = 100 },
      adaptive_timing = { old = 1, new = 2 },
    }, ret.changes)
    assert.matches("the adapter echoed ATDPN while echo was off: it was reset",
      posix.read(opts.log_file))
  end)

  it("fails naming the service when it is down", function()
    start()
    services.stop(handle)
    handle = nil
    local ret = run(false, WANTED)
    assert.same({ false, {} }, { ret.result, ret.changes })
    assert.matches("^OBD adapter car: cannot read its settings: service car is not running",
      ret.comment)
  end)
end)


describe("the obd service's settings helpers", function()
  local obd = require("services.obd")

  it("checks wanted settings and writes them as the adapter reports them", function()
    local w = assert(obd.wanted({ protocol = "auto", echo = false, timeout_ms = 150,
      adaptive_timing = true, headers = data.null }))
    assert.same({ protocol = "A0", echo = false, timeout_ms = 152, adaptive_timing = 1 }, w)
    assert.same({ "6", "A", "0" }, { obd.wanted({ protocol = 6 }).protocol,
      obd.wanted({ protocol = "a" }).protocol, obd.protocol_code(0) })
    assert.same({ nil, "timeout_ms: '2000' is not a valid value (4 to 1020 milliseconds, in"
      .. " steps of 4)" }, { obd.wanted({ timeout_ms = 2000 }) })
    assert.same({ nil, "headers: 'yes please' is not a valid value (true or false)" },
      { obd.wanted({ headers = "yes please" }) })
  end)

  it("takes the automatic search as satisfied by any protocol it found", function()
    local current = { protocol = "A7", echo = false, timeout_ms = 200 }
    assert.same({}, obd.differences(current, obd.wanted({ protocol = 0, echo = false })))
    assert.same({ protocol = { old = "A7", new = "7" }, timeout_ms = { old = 200, new = 100 } },
      obd.differences(current, obd.wanted({ protocol = 7, timeout_ms = 100 })))
  end)

  it("decodes answers shown with headers, for CAN and the older protocols", function()
    assert.same({ 0x1A, 0xF8 }, obd.decode(1, 0x0C, { "18 DA F1 10 04 41 0C 1A F8" }))
    assert.same({ 0x1A, 0xF8 }, obd.decode(1, 0x0C, { "48 6B 10 41 0C 1A F8 C4" }))
    assert.same({ 0x32 }, obd.decode(1, 0x0D, { "7E9 03 41 0D 32" }))
  end)
end)
