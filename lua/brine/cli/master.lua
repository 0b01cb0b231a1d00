-- `brine master`: runs the master daemon (brine.master.daemon.subcommand).
return require("brine.master.daemon").subcommand("master")
