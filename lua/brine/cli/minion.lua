-- `brine minion`: runs the minion daemon (brine.master.daemon.subcommand).
return require("brine.master.daemon").subcommand("minion")
