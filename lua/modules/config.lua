-- The config execution module, as Salt's: config.get looks a key up in the
-- minion's options, then its grains, then its pillar (`:` walks nested
-- data), and returns default ('') when none has it.
-- luacheck: globals opts grains pillar
local config = require("brine.config")
local data = require("brine.data")

local M = {}

local null = data.null
local MISSING = {}

M.__defaults__ = {
  option = { default = "", omit_opts = false, omit_master = false, omit_pillar = false },
  get = { default = "", delimiter = ":", merge = null, omit_opts = false,
    omit_pillar = false, omit_master = false, omit_grains = false },
}

--- A value from the options, then the grains, then the pillar, else default.
-- luacheck: push ignore 212
function M.get(key, default, delimiter, merge, omit_opts, omit_pillar, omit_master,
               omit_grains)
  local sources = {}
  if not omit_opts then
    sources[#sources + 1] = opts
  end
  if not omit_grains then
    sources[#sources + 1] = grains
  end
  if not omit_pillar then
    sources[#sources + 1] = pillar
  end
  if not omit_master and type(pillar) == "table" and type(pillar.master) == "table" then
    sources[#sources + 1] = pillar.master
  end
  for _, src in ipairs(sources) do
    local v = config.traverse(src, key, MISSING, delimiter)
    if v ~= MISSING then
      return v
    end
  end
  return default == nil and null or default
end
-- luacheck: pop

--- A minion option (a top-level key only, no traversal), else the same key
--- in the master section of the pillar, else the pillar, else default.
function M.option(value, default, omit_opts, omit_master, omit_pillar)
  if not omit_opts and opts[value] ~= nil then
    return opts[value]
  end
  if not omit_master and type(pillar.master) == "table" and pillar.master[value] ~= nil then
    return pillar.master[value]
  end
  if not omit_pillar and pillar[value] ~= nil then
    return pillar[value]
  end
  return default == nil and null or default
end

--- All the minion's options.
function M.items()
  return opts
end

return M
