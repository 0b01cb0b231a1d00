-- The gnss.fix state (lua/states/gnss.lua) through a "states" loader,
-- against a running gnss service reading NMEA from a pseudo-terminal.
local services = require("brine.services")
local gnss = require("services.gnss")
local serial = require("brine.hw.serial")
local posix = require("brine.posix")
local loader = require("brine.loader")
local daemon = require("brine.master.daemon")

local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")

describe("the gnss.fix state", function()
  local dir, receiver, handle, opts, ex

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    local path
    receiver, path = assert(serial.openpty())
    opts = { sock_dir = dir .. "/run", log_file = dir .. "/minion.log", log_level = "quiet",
      log_level_logfile = "debug", services = { gnss = { port = path } } }
    handle = services.start(opts, daemon.logger("brine.minion", opts))
    ex = loader.new(opts)
    assert.truthy(harness.wait(nil, function() return ex.salt["gnss.status"]() end),
      posix.read(opts.log_file))
  end)

  after_each(function()
    if handle then
      services.stop(handle)
    end
    receiver:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function run(test, kwargs)
    local run_opts = setmetatable({ test = test }, { __index = opts })
    local states = loader.new(run_opts, { tree = "states", salt = ex.salt })
    return states:call("gnss.fix", { "gnss" }, kwargs)
  end

  -- A fix from 8 satellites with an HDOP of 0.9, and waits until the
  -- service has read it.
  local function give_fix()
    receiver:write(gnss.sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,,"))
    receiver:write(gnss.sentence("GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,"
      .. "M,,"))
    assert.truthy(harness.wait(nil, function()
      local pos = ex.salt["gnss.position"]()
      return pos and pos.satellites
    end))
  end

  it("fails with the service's reason while there is no fix, in test mode too", function()
    for _, test in ipairs({ false, true }) do
      local ret = run(test)
      assert.same({ "gnss", false, {} }, { ret.name, ret.result, ret.changes })
      assert.equal("GNSS receiver gnss has no fix: service gnss: no position fix yet"
        .. " (0 sentences read)", ret.comment)
    end
  end)

  it("succeeds with the position once there is a fix, changing nothing", function()
    give_fix()
    for _, test in ipairs({ false, true }) do
      local ret = run(test, { min_satellites = 8, max_hdop = 1 })
      assert.is_true(ret.result)
      assert.same({}, ret.changes)
      assert.matches("^GNSS receiver gnss has a fix at 48%.11730, 11%.51667 %(8 satellites,"
        .. " HDOP 0%.9, [%d%.]+ s old%)$", ret.comment)
    end
  end)

  it("fails a fix with too few satellites or a poor HDOP", function()
    give_fix()
    local ret = run(false, { min_satellites = 10 })
    assert.is_false(ret.result)
    assert.equal("GNSS receiver gnss has a fix at 48.11730, 11.51667, but with 8 satellites,"
      .. " fewer than the 10 wanted", ret.comment)
    ret = run(false, { max_hdop = 0.5 })
    assert.is_false(ret.result)
    assert.equal("GNSS receiver gnss has a fix at 48.11730, 11.51667, but with HDOP 0.9, above"
      .. " the 0.5 wanted", ret.comment)
  end)

  it("fails naming the service when it is down", function()
    services.stop(handle)
    handle = nil
    local ret = run(false)
    assert.is_false(ret.result)
    assert.matches("^GNSS receiver gnss has no fix: service gnss is not running", ret.comment)
  end)
end)
