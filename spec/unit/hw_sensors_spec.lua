-- brine.hw.sensors against a fixture tree laid out like a Raspberry Pi
-- with a battery HAT and an INA219 power monitor.
local sensors = require("brine.hw.sensors")

local root = (os.getenv("BRINE_SOURCE_DIR") or ".") .. "/spec/fixtures/hw/pi"

describe("brine.hw.sensors", function()
  it("reads thermal zones in degrees Celsius", function()
    local zones = assert(sensors.thermal(root))
    assert.equal(1, #zones)
    assert.equal("thermal_zone0", zones[1].zone)
    assert.equal("cpu-thermal", zones[1].type)
    assert.equal(48.312, zones[1].temp)
  end)

  it("reads batteries and inputs in volts, amperes and percent", function()
    local supplies = assert(sensors.power_supplies(root))
    assert.equal(2, #supplies)
    local battery, usb = supplies[1], supplies[2]
    assert.equal("battery", battery.name)
    assert.equal("Discharging", battery.status)
    assert.equal(87, battery.capacity)
    assert.equal(math.type(battery.capacity), "integer")
    assert.equal(3.912, battery.voltage)
    assert.equal(-0.45, battery.current)
    assert.equal(25.1, battery.temp)
    assert.equal("usb", usb.name)
    assert.equal(1, usb.online)
    assert.equal(5.08, usb.voltage)
    assert.is_nil(usb.capacity)
  end)

  it("reads hwmon chips with their labels", function()
    local chips = assert(sensors.hwmon(root))
    assert.equal("rpi_volt", chips[1].name)
    assert.equal("under-voltage", chips[1].sensors.in0.label)
    assert.equal(0.0, chips[1].sensors.in0.value)
    local ina = chips[2].sensors
    assert.equal(12.15, ina.in1.value)
    assert.equal(0.85, ina.curr1.value)
    assert.equal(10.3, ina.power1.value)
    assert.equal(35.5, ina.temp1.value)
  end)

  it("says which folder is missing", function()
    local zones, err, code = sensors.thermal("/nonexistent-root")
    assert.is_nil(zones)
    assert.equal("open /nonexistent-root/sys/class/thermal: No such file or directory", err)
    assert.equal("ENOENT", code)
  end)

  it("finds every thermal zone of this machine", function()
    local ls = io.popen("ls /sys/class/thermal 2>/dev/null | grep -c '^thermal_zone'")
    local expected = tonumber(ls:read("a"))
    ls:close()
    local zones = sensors.thermal()
    assert.equal(expected, zones and #zones or 0)
  end)
end)
