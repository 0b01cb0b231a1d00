-- The sys execution module, as Salt's: what this minion can run
-- (sys.list_modules, sys.list_functions), how to call it (sys.argspec)
-- and what it does (sys.doc). Function names may be shell patterns.
-- luacheck: globals __loader__
local config = require("brine.config")
local data = require("brine.data")

local M = {}

local null = data.null

-- The functions matching the arguments: "mod" (all of mod), "mod.fun",
-- or a shell pattern; everything when there is none.
local function matching(...)
  local all = __loader__:list_functions()
  local n = select("#", ...)
  if n == 0 then
    return all
  end
  local out = {}
  for _, fun in ipairs(all) do
    for i = 1, n do
      local pat = tostring(select(i, ...))
      if (pat:find("[*?%[]") and config.fnmatch(fun, pat)) or fun == pat
          or fun:sub(1, #pat + 1) == pat .. "." then
        out[#out + 1] = fun
        break
      end
    end
  end
  return out
end

--- The documentation of the functions named (modules, functions or
--- patterns), or of all functions.
function M.doc(...)
  local ret = data.map()
  for _, fun in ipairs(matching(...)) do
    ret[fun] = __loader__:doc(fun) or null
  end
  return ret
end

--- The names of the modules that load here (shell patterns filter them).
function M.list_modules(...)
  local n = select("#", ...)
  local ret = data.array()
  for _, mod in ipairs(__loader__:list_modules()) do
    local keep = n == 0
    for i = 1, n do
      if config.fnmatch(mod, tostring(select(i, ...))) then
        keep = true
      end
    end
    if keep then
      ret[#ret + 1] = mod
    end
  end
  return ret
end

--- The functions of the modules named (or of all modules).
function M.list_functions(...)
  return data.array(matching(...))
end

--- How each function named is called: args, defaults, varargs, kwargs.
function M.argspec(...)
  local ret = data.map()
  local names = select("#", ...) == 0 and {} or matching(...)
  for _, fun in ipairs(names) do
    ret[fun] = __loader__:argspec(fun)
  end
  return ret
end

--- Reloads nothing (modules load on first use); kept for Salt's callers.
function M.reload_modules()
  return true
end

return M
