-- `brine master`: runs the master daemon in the foreground (for systemd
-- and tests) with the options of `-c DIR`/master; SIGTERM stops it cleanly.
local daemon = require("brine.master.daemon")

local M = {}

M.summary = "run the master daemon (salt-master)"
M.usage = [==[
Usage: brine master [-c DIR] [-l LEVEL] [--log-file FILE] [--pid-file FILE]

Runs the master in the foreground with the configuration DIR/master (default
/etc/brine/master). Options: interface, publish_port, ret_port, key_port,
root_dir, pki_dir, cachedir, sock_dir, pidfile, log_file, log_level,
auto_accept, timeout. SIGTERM or SIGINT stop it cleanly.
]==]

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  local opts, err = daemon.parse_daemon_args(args, "master")
  if not opts then
    io.stderr:write(err, "\n")
    return 2
  end
  if opts.daemon then
    -- TODO: -d (detaching) is not implemented; run under systemd or a supervisor.
    io.stderr:write("brine master: -d is not supported yet; run it in the foreground\n")
    return 2
  end
  local log = daemon.logger("brine.master", opts)
  if opts.open_mode then
    log:error("open_mode is refused: it would accept any key; accept keys with `brine key`")
    return 2
  end
  local ok
  ok, err = daemon.write_pidfile(opts.pidfile)
  if not ok then
    log:error("pid file: %s", err)
    return 1
  end
  local server = require("brine.master.server").new(opts, log)
  ok, err = server:start()
  if not ok then
    log:error("cannot start: %s", err)
    server:stop()
    os.remove(opts.pidfile)
    return 1
  end
  server:run()
  server:stop()
  os.remove(opts.pidfile)
  return 0
end

return M
