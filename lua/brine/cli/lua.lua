-- `brine lua`: brine as a Lua 5.4 interpreter with brine's modules on
-- hand. Runs a script file with its arguments in `arg`, a chunk given
-- with -e, or reads a script from standard input.
local M = {}

M.summary = "run a Lua script with brine's modules (brine as a Lua interpreter)"
M.usage = [==[
Usage: brine lua [-e CHUNK] [SCRIPT [ARGS...]]

Runs SCRIPT (or CHUNK, or standard input when neither is given) in brine's
Lua 5.4 runtime, where require "brine.yaml", "brine.json", "luv" and the
rest of brine's Lua API are available. The script's arguments are in the
global table `arg`, as with the standalone lua interpreter.
]==]

local function run_chunk(chunk, err)
  if not chunk then
    io.stderr:write("brine lua: ", err, "\n")
    return 1
  end
  local ok, rc = xpcall(chunk, debug.traceback)
  if not ok then
    io.stderr:write("brine lua: ", tostring(rc), "\n")
    return 1
  end
  return math.type(rc) == "integer" and rc or 0
end

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  if args[1] == "-e" then
    return run_chunk(load(args[2] or "", "=(command line)"))
  end
  local script = args[1]
  local script_args = { [0] = script }
  for i = 2, #args do
    script_args[i - 1] = args[i]
  end
  _G.arg = script_args
  if not script or script == "-" then
    return run_chunk(load(io.read("a"), "=stdin"))
  end
  return run_chunk(loadfile(script))
end

return M
