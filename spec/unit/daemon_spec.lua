-- brine.master.daemon: the daemons' configuration, and their logger
-- (Salt's syslog forms of log_file, syslog over TCP never holding up the
-- daemon).
local daemon = require("brine.master.daemon")

describe("daemon logger", function()
  it("reads Salt's syslog forms of log_file", function()
    assert.same({ "udp:loghost:514", 1 }, { daemon.syslog_target("udp://loghost") })
    assert.same({ "tcp:10.0.0.1:6514", 3 },
      { daemon.syslog_target("tcp://10.0.0.1:6514/LOG_DAEMON") })
    assert.same({ "unix:/dev/log", 16 }, { daemon.syslog_target("file:///dev/log/LOG_LOCAL0") })
    assert.is_nil(daemon.syslog_target("/var/log/brine/minion"))
  end)

  it("drops and counts lines while a TCP syslog server is unreachable", function()
    -- a port nothing listens on: bind a socket, read its port, close it
    local uv = require("luv")
    local probe = uv.new_tcp()
    assert(probe:bind("127.0.0.1", 0))
    local port = probe:getsockname().port
    probe:close()
    uv.run("nowait")
    local log = daemon.logger("brine.test", { log_level = "quiet", log_level_logfile = "info",
      log_file = "tcp://127.0.0.1:" .. port })
    for i = 1, 50 do
      log:info("line %d", i)
    end
    assert.is_nil(log.stream_fd)
    assert.equal(50, log.stream_dropped)
  end)
end)

describe("daemon configuration", function()
  it("refuses a worker_threads that is not a positive integer, naming it", function()
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p '" .. dir .. "'")
    local f = assert(io.open(dir .. "/master", "w"))
    f:write("worker_threads: 0\n")
    f:close()
    local opts, err = daemon.load_config(dir, "master")
    assert.is_nil(opts)
    assert.equal(dir .. "/master: worker_threads: a positive integer expected, not 0", err)
    f = assert(io.open(dir .. "/master", "w"))
    f:write("worker_threads: 3\n")
    f:close()
    assert.equal(3, daemon.load_config(dir, "master").worker_threads)
    f = assert(io.open(dir .. "/master", "w"))
    f:write("id: m\n")
    f:close()
    local opts = daemon.load_config(dir, "master")
    assert.equal(5, opts.worker_threads, "Salt's default")
    -- the master finds dead links by TCP keepalive, not ZeroMQ heartbeats
    -- (their cost grows with the square of its links)
    assert.equal(0, opts.heartbeat_ivl)
    assert.same({ 60, 10, 3 }, { opts.tcp_keepalive_idle, opts.tcp_keepalive_intvl,
      opts.tcp_keepalive_cnt })
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
