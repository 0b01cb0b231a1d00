local log = require("brine.log")
local fs = require("brine.fs")
local proc = require("brine.proc")

local bin = os.getenv("BRINE_BIN")

-- Runs code in a fresh brine and returns what it wrote to stderr.
local function stderr_of(code)
  local r = assert(proc.run({ argv = { bin, "lua", "-e", code } }))
  assert.equal(0, r.retcode, r.stderr)
  return r.stderr
end

describe("brine.log", function()
  local dir

  before_each(function()
    dir = assert(fs.tempdir("brine-log-spec-"))
  end)

  after_each(function()
    assert(log.configure({}))
    fs.remove(dir, true)
  end)

  it("writes Salt's console format to stderr at warning and above by default", function()
    if not bin then return pending("BRINE_BIN is not set") end
    local err = stderr_of([[
      local log = require("brine.log")
      log.error("disk %s is full", "/var")
      log.warning("minion %s: key pending", "web-3")
      log.info("not shown")
      log.debug("not shown")
    ]])
    assert.equal("[ERROR   ] disk /var is full\n[WARNING ] minion web-3: key pending\n", err)
  end)

  it("writes Salt's log file format, appending", function()
    local path = dir .. "/minion"
    fs.write_atomic(path, "earlier line\n")
    assert.is_true(log.configure({ level = "debug", file = path, console = false,
      name = "brine.minion" }))
    log.info("job %s started", "20261203214005123456")
    log.debug("plain message with 100% and %s kept")
    log.trace("too detailed")
    local text = fs.read(path)
    local lines = {}
    for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(3, #lines)
    assert.equal("earlier line", lines[1])
    local pid = tostring(require("brine.sys").getpid())
    local stamp = "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d,%d%d%d "
    assert.matches(stamp .. "%[brine%.minion     %]%[INFO    %]%[" .. pid
      .. "%] job 20261203214005123456 started$", lines[2])
    assert.matches(stamp .. "%[brine%.minion     %]%[DEBUG   %]%[%d+%] "
      .. "plain message with 100%% and %%s kept$", lines[3])
  end)

  it("takes Salt's level names", function()
    local cases = {
      garbage = { trace = true }, all = { trace = true },
      trace = { trace = true }, debug = { debug = true, trace = false },
      profile = { info = true, debug = false }, info = { info = true, debug = false },
      warning = { warning = true, info = false }, error = { error = true, warning = false },
      critical = { error = true, warning = false }, quiet = { error = false },
    }
    for name, want in pairs(cases) do
      assert.is_true(log.configure({ level = name }))
      for level, on in pairs(want) do
        assert.equal(on, log.enabled(level), name .. " / " .. level)
      end
    end
    local ok, err, code = log.configure({ level = "loud" })
    assert.is_nil(ok)
    assert.matches("^unknown log level 'loud'", err)
    assert.equal("EINVAL", code)
    assert.has_error(function() log.enabled("loud") end)
  end)

  it("checks the level before formatting", function()
    assert.is_true(log.configure({ level = "error", console = false }))
    local touched = false
    local sneaky = setmetatable({}, { __tostring = function() touched = true; return "x" end })
    log.debug("%s", sneaky)
    log.info("%d", "not a number")
    assert.is_false(touched)
    assert.is_true(log.configure({ level = "debug", console = false, file = dir .. "/f" }))
    log.debug("%s", sneaky)
    assert.is_true(touched)
    assert.has_error(function() log.debug("%d", "not a number") end)
  end)

  it("uses separate levels for the console and the file", function()
    if not bin then return pending("BRINE_BIN is not set") end
    local path = dir .. "/split"
    local err = stderr_of(string.format([[
      local log = require("brine.log")
      assert(log.configure({ level = "error", file_level = "info", file = %q,
        format = "%%(levelname)s|%%(name)s|%%(message)s" }))
      log.warning("to the file only")
      log.error("to both")
    ]], path))
    assert.equal("[ERROR   ] to both\n", err)
    assert.equal("WARNING|brine|to the file only\nERROR|brine|to both\n", fs.read(path))
  end)

  it("reopens the file after log rotation moved it", function()
    local path = dir .. "/master"
    assert.is_true(log.configure({ level = "info", file = path, console = false,
      format = "%(message)s" }))
    log.info("before")
    assert.is_true(fs.rename(path, path .. ".1"))
    log.info("still old")
    assert.is_true(log.reopen())
    log.info("after")
    assert.equal("before\nstill old\n", fs.read(path .. ".1"))
    assert.equal("after\n", fs.read(path))
  end)

  it("reports a file it cannot open and keeps the old configuration", function()
    assert.is_true(log.configure({ level = "info" }))
    local ok, err, code = log.configure({ file = dir .. "/no/such/file" })
    assert.is_nil(ok)
    assert.equal("log file " .. dir .. "/no/such/file: No such file or directory", err)
    assert.equal("ENOENT", code)
    assert.is_true(log.enabled("info"))
    assert.is_false(log.enabled("debug"))
    -- with every sink off, nothing is enabled
    assert.is_true(log.configure({ level = "trace", console = false }))
    assert.is_false(log.enabled("error"))
    assert.is_true(log.configure({ syslog = true, level = "quiet", syslog_level = "quiet" }))
    assert.has_error(function() log.configure({ level = 3 }) end)
  end)
end)
