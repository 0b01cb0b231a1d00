-- Device services end to end: a real minion daemon starts the gnss service
-- its config declares, `brine call --local gnss.position` answers from NMEA
-- that the test writes to a pseudo-terminal, and stopping the minion stops
-- the service. No master is needed: services start with the minion.
local harness = dofile((os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/e2e/harness.lua")
local posix = require("brine.posix")
local serial = require("brine.hw.serial")
local json = require("brine.json")
local gnss = require("services.gnss")


describe("device services in the minion", function()
  local w, receiver

  before_each(function()
    w = harness.world()
  end)

  after_each(function()
    w:cleanup()
    if receiver then
      receiver:close()
    end
  end)

  it("starts the services of its config and stops them with it", function()
    local path
    receiver, path = assert(serial.openpty())
    -- the daemon's config reader takes one line per option: flow style
    w:start_minion("car1", "services: {gnss: {port: " .. path .. ", baud: 9600}}\n")
    local conf = w.dir .. "/minion-car1"
    local run = w.dir .. "/minion-root-car1/var/run/brine/minion/services"
    assert.truthy(w:wait(function()
      return posix.stat(run .. "/gnss.sock")
    end, 5), w:minion_log("car1"))
    assert.equal(448, posix.stat(run).mode)

    receiver:write(gnss.sentence("GNRMC,083559.00,A,5231.2100,N,01324.5300,E,0.5,12.0,040524,,,A"))
    receiver:write(gnss.sentence("GNGGA,083559.00,5231.2100,N,01324.5300,E,1,11,0.8,34.5,M,,M,,"))
    local out
    assert.truthy(w:wait(function()
      local status
      status, out = w:brine("call --local -c '" .. conf .. "' --out json gnss.position")
      return status == 0
    end, 5), out)
    local pos = json.decode(out)["local"]
    assert.near(52.520167, pos.latitude, 1e-6)
    assert.near(13.40883, pos.longitude, 1e-5)
    assert.equal(34.5, pos.altitude)
    assert.equal("2024-05-04T08:35:59.00Z", pos.time)
    local log = w:minion_log("car1")
    assert.matches("service gnss: started %(module gnss, pid %d+%)", log)
    assert.matches("service gnss: reading NMEA from " .. path:gsub("%p", "%%%0") .. " at 9600 baud",
      log)

    local pid = posix.read(run .. "/gnss.status") and
      require("brine.services").status("gnss", run:match("^(.*)/services$")).pid
    assert.truthy(pid)
    w:stop("minion-car1")
    assert.truthy(w:wait(function()
      return not posix.kill(pid, 0) and not posix.stat(run .. "/gnss.sock")
    end, 5), "the service outlived the minion")
    assert.falsy(posix.kill(pid, 0))
    assert.is_nil(posix.stat(run .. "/gnss.sock"))
    local status
    status, out = w:brine("call --local -c '" .. conf .. "' gnss.position")
    assert.equal(1, status)
    assert.matches("service gnss is not running", out)
  end)

  it("takes its services down when the minion is killed", function()
    local path
    receiver, path = assert(serial.openpty())
    w:start_minion("car2", "services: {gnss: {port: " .. path .. "}}\n")
    local run = w.dir .. "/minion-root-car2/var/run/brine/minion/services"
    local st = w:wait(function()
      local status = require("brine.services").status("gnss", run:match("^(.*)/services$"))
      return status and status.pid and posix.stat(run .. "/gnss.sock") and status
    end, 5)
    assert.truthy(st, w:minion_log("car2"))
    posix.kill(w.pids["minion-car2"], "KILL")
    assert.truthy(w:wait(function()
      return not posix.kill(st.pid, 0)
    end, 5), "the service outlived a killed minion")
  end)

  it("runs without the daemon, from the config's block YAML", function()
    local path
    receiver, path = assert(serial.openpty())
    local conf = w:minion_conf("bench1", "services:\n  gnss:\n    port: " .. path .. "\n")
    w:spawn("services", "lua -e 'return require(\"brine.services\").run(\"" .. conf .. "\")'")
    local out
    assert.truthy(w:wait(function()
      receiver:write(gnss.sentence("GPGGA,083559.00,5231.2100,N,01324.5300,E,1,11,0.8,34.5,M,,M,,"))
      local status
      status, out = w:brine("call --local -c '" .. conf .. "' --out json gnss.status")
      return status == 0 and json.decode(out)["local"].sentences >= 1
    end, 5), out .. harness.read(w.dir .. "/services.log"))
    w:stop("services")
    assert.truthy(w:wait(function()
      return harness.read(w.dir .. "/services.log"):find("services: stopping (signal SIGTERM)",
        1, true)
    end, 5))
  end)
end)
