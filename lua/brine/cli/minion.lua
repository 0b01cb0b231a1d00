-- `brine minion`: runs the minion daemon, in the foreground or detached
-- with -d, with the options of `-c DIR`/minion and DIR/minion.d/*.conf.
local daemon = require("brine.master.daemon")

local M = {}

M.summary = "run the minion daemon (salt-minion)"
M.usage = [==[
Usage: brine minion [-c DIR] [-d] [-l LEVEL] [--log-file FILE] [--pid-file FILE]

Runs the minion with the configuration DIR/minion and DIR/minion.d/*.conf
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
  return daemon.main(args, "minion")
end

return M
