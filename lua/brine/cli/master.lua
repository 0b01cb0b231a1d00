-- `brine master`: runs the master daemon, in the foreground (for systemd
-- and tests) or detached with -d, with the options of `-c DIR`/master.
local daemon = require("brine.master.daemon")

local M = {}

M.summary = "run the master daemon (salt-master)"
M.usage = [==[
Usage: brine master [-c DIR] [-d] [-l LEVEL] [--log-file FILE] [--pid-file FILE]

Runs the master with the configuration DIR/master and DIR/master.d/*.conf
(default /etc/brine), in the foreground unless -d (--daemon) detaches it.
SIGTERM or SIGINT stop it cleanly; SIGHUP reopens the log file and reloads
the options that can change while running. docs/operations.md lists the
options.
]==]

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  return daemon.main(args, "master")
end

return M
