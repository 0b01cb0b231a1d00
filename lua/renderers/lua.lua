-- The lua renderer (`#!lua`), brine's counterpart of Salt's `#!py`: the
-- SLS is a Lua chunk that returns the data, or defines `run()` (as a
-- global or in a returned function) whose result is the data. The chunk
-- runs in its own environment: grains, pillar, salt, opts, sls, saltenv,
-- the template variables of ctx.context, `data` (brine.data, for ordered
-- maps and null) and the safe parts of the standard library.
local data = require("brine.data")

local M = {}

local SAFE = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
  "tostring", "type", "xpcall", "rawequal", "rawget", "rawlen", "rawset", "setmetatable",
  "getmetatable", "print" }

local function environment(ctx)
  local env = {}
  for _, name in ipairs(SAFE) do
    env[name] = _G[name]
  end
  env.string, env.table, env.math, env.utf8 = string, table, math, utf8
  env.os = { time = os.time, date = os.date, clock = os.clock, getenv = os.getenv }
  env.data = data
  for k, v in pairs(ctx.context or {}) do
    env[k] = v
  end
  env.grains = ctx.grains or data.map()
  env.pillar = ctx.pillar or data.map()
  env.salt = ctx.salt or {}
  env.opts = ctx.opts or {}
  env.sls = ctx.sls or ""
  env.saltenv = ctx.saltenv or "base"
  env._G = env
  return env
end

---@param input string the Lua source
---@param ctx table name, first_line, grains, pillar, salt, opts, sls, saltenv, context
---@return any|nil, string|nil
function M.render(input, ctx)
  ctx = ctx or {}
  local name = ctx.name or "<string>"
  if type(input) ~= "string" then
    return nil, name .. ": the lua renderer needs Lua source text"
  end
  local env = environment(ctx)
  -- Blank lines in place of a removed shebang keep line numbers true.
  local source = string.rep("\n", (ctx.first_line or 1) - 1) .. input
  local chunk, err = load(source, "=" .. name, "t", env)
  if not chunk then
    return nil, err
  end
  local ok, result = xpcall(chunk, debug.traceback)
  if ok and result == nil and type(rawget(env, "run")) == "function" then
    ok, result = xpcall(env.run, debug.traceback)
  elseif ok and type(result) == "function" then
    ok, result = xpcall(result, debug.traceback)
  end
  if not ok then
    return nil, (tostring(result):gsub("\nstack traceback:.*$", ""))
  end
  if result == nil then
    return data.map()
  end
  return result
end

return M
