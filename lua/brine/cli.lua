-- The command line: picks the subcommand from argv[0] (brine-call,
-- brine-key, ...) or from the first word, and hands the rest of the
-- arguments to lua/brine/cli/<subcommand>.lua. Each subcommand module
-- returns { summary = "...", usage = "...", run = function(args) }.
local core = require("brine.core")

local M = {}

-- Subcommands in the order `brine --help` lists them.
M.subcommands = { "call", "key", "lua", "master", "minion", "render", "run" }

local function known(name)
  for _, sub in ipairs(M.subcommands) do
    if sub == name then
      return true
    end
  end
  return false
end

local function load_subcommand(name)
  return require("brine.cli." .. name)
end

function M.help_text()
  local lines = {
    "Usage: brine [OPTIONS] TARGET FUNCTION [ARGS...]",
    "       brine SUBCOMMAND [OPTIONS] [ARGS...]",
    "",
    "brine manages fleets of small Linux machines the way SaltStack does.",
    "",
    "Subcommands:",
  }
  for _, name in ipairs(M.subcommands) do
    lines[#lines + 1] = string.format("  %-10s %s", name, load_subcommand(name).summary)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "Options:"
  lines[#lines + 1] = "  --version  print brine's version and exit"
  lines[#lines + 1] = "  -h, --help print this help and exit"
  lines[#lines + 1] = ""
  lines[#lines + 1] = "`brine SUBCOMMAND --help` describes each subcommand. The names"
  lines[#lines + 1] = "brine-call, brine-key, brine-run, ... run the subcommand of that name."
  lines[#lines + 1] = ""
  -- publishing a job, as `salt --help` shows it: its usage without the
  -- first line (the usage line above)
  lines[#lines + 1] = "Publishing a job (brine TARGET FUNCTION, as salt):"
  lines[#lines + 1] = require("brine.cli.publish").usage:gsub("^[^\n]*\n\n?", "")
  return table.concat(lines, "\n")
end

function M.version_text()
  return string.format("brine %s (Lua API %d, %s)\n", core.VERSION, core.API_VERSION,
    core.LUA_RELEASE)
end

local function run(sub, args)
  return load_subcommand(sub).run(args) or 0
end

--- Runs the command line.
---@param argv table argv[0] is the program name, argv[1..] its arguments
---@return integer exit status
function M.main(argv)
  local prog = (argv[0] or "brine"):match("([^/]*)$")
  local args = {}
  for i = 1, #argv do
    args[i] = argv[i]
  end
  local named = prog:match("^brine%-(.+)$")
  if named then
    if known(named) then
      return run(named, args)
    end
    io.stderr:write(string.format("%s: the %s subcommand is not in this build yet; "
      .. "`brine --help` lists what is\n", prog, named))
    return 2
  end
  local first = args[1]
  if first == nil or first == "-h" or first == "--help" then
    io.stdout:write(M.help_text())
    return first and 0 or 2
  elseif first == "--version" or first == "-V" then
    io.stdout:write(M.version_text())
    return 0
  elseif known(first) then
    return run(table.remove(args, 1), args)
  end
  return require("brine.cli.publish").run(args)
end

return M
