-- The log execution module, as Salt's: templates and modules write a
-- message to the minion's log (log.debug, info, warning, error, critical,
-- exception). Each returns None, so `{% do salt['log.debug']('x') %}` is
-- silent in the rendered text.
local data = require("brine.data")

local M = {}

-- Salt's level names and the brine.log function each one writes with.
local LEVELS = { debug = "debug", info = "info", warning = "warning", error = "error",
  critical = "error", exception = "error" }

for name, level in pairs(LEVELS) do
  M[name] = function(message)
    local ok, log = pcall(require, "brine.log")
    if ok then
      -- one argument: the message is written as it is, % and all
      log[level](tostring(message))
    end
    return data.null
  end
end

return M
