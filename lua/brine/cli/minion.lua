-- `brine minion`: runs the minion daemon in the foreground with the
-- options of `-c DIR`/minion and DIR/minion.d/*.conf; SIGTERM stops it.
local daemon = require("brine.master.daemon")

local M = {}

M.summary = "run the minion daemon (salt-minion)"
M.usage = [==[
Usage: brine minion [-c DIR] [-l LEVEL] [--log-file FILE] [--pid-file FILE]

Runs the minion in the foreground with the configuration DIR/minion and
DIR/minion.d/*.conf (default /etc/brine). Options: master, master_port,
publish_port, key_port, id, root_dir, pki_dir, cachedir, pidfile, log_file,
log_level, master_finger, recon_default, recon_max, recon_randomize,
acceptance_wait_time, acceptance_wait_time_max, auth_timeout,
master_alive_interval, job_timeout. SIGTERM or SIGINT stop it cleanly.
]==]

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  local opts, err = daemon.parse_daemon_args(args, "minion")
  if not opts then
    io.stderr:write(err, "\n")
    return 2
  end
  if opts.daemon then
    -- TODO: -d (detaching) is not implemented; run under systemd or a supervisor.
    io.stderr:write("brine minion: -d is not supported yet; run it in the foreground\n")
    return 2
  end
  local log = daemon.logger("brine.minion", opts)
  local ok
  ok, err = daemon.write_pidfile(opts.pidfile)
  if not ok then
    log:error("pid file: %s", err)
    return 1
  end
  local minion = require("brine.minion.server").new(opts, log)
  ok, err = minion:start()
  if not ok then
    log:error("cannot start: %s", err)
    os.remove(opts.pidfile)
    return 1
  end
  minion:run()
  minion:stop()
  os.remove(opts.pidfile)
  return 0
end

return M
