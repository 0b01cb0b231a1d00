-- How fast an execution module gets an answer from a device service: the
-- round trip of services.call("gnss", "position") (connect, request,
-- answer from the service's memory) against the gnss service reading NMEA
-- from a pseudo-terminal. Prints the median and slowest of many calls.
-- Run as: brine lua bench/services.lua [RUNS]
local services = require("brine.services")
local serial = require("brine.hw.serial")
local posix = require("brine.posix")
local gnss = require("services.gnss")
local uv = require("luv")

local runs = tonumber(arg and arg[#arg]) or 1000

local dir = os.tmpname()
os.remove(dir)
assert(posix.mkdir(dir, 448))
local receiver, path = assert(serial.openpty())
local opts = { sock_dir = dir .. "/run", log_level = "warning",
  services = { gnss = { port = path } } }
local handle = services.start(opts, require("brine.master.daemon").logger("bench", opts))

local deadline = posix.monotonic() + 5
repeat
  receiver:write(gnss.sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,,"))
  posix.sleep(0.02)
until services.call("gnss", "position", nil, 1, opts) or posix.monotonic() > deadline

local times = {}
for i = 1, runs do
  local start = uv.hrtime()
  assert(services.call("gnss", "position", nil, 1, opts))
  times[i] = (uv.hrtime() - start) / 1e6
end
table.sort(times)
print(string.format("services.call gnss.position, %d calls (milliseconds)", runs))
print(string.format("  median %8.3f   slowest %8.3f", times[(runs + 1) // 2], times[runs]))

services.stop(handle)
receiver:close()
os.execute("rm -rf '" .. dir .. "'")
