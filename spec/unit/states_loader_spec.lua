-- How a "states" loader finds state modules and what they see: the
-- states_dirs option and extension_modules/states (never the execution
-- modules' folders), and `salt` holding the execution functions.
local loader = require("brine.loader")
local posix = require("brine.posix")

local function write(path, text)
  assert(posix.write_atomic(path, text, 384))
end

describe("a states loader", function()
  local dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    for _, sub in ipairs({ "", "/mine", "/ext", "/ext/modules", "/ext/states" }) do
      assert(posix.mkdir(dir .. sub, 448))
    end
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("loads states from states_dirs and extension_modules/states only", function()
    write(dir .. "/mine/probe.lua", [[
return { said = function(name) return { name = name, result = true, changes = {},
  comment = salt["test.echo"]("from a state") } end }
]])
    write(dir .. "/ext/states/synced.lua", "return { here = function() return true end }")
    write(dir .. "/ext/modules/stray.lua", "return { here = function() return true end }")
    local opts = { states_dirs = { dir .. "/mine" }, module_dirs = { dir .. "/mine" },
      extension_modules = dir .. "/ext" }
    local ex = loader.new(opts)
    local states = loader.new(opts, { tree = "states", salt = ex.salt })
    assert.equal("from a state", states:call("probe.said", { "x" }).comment)
    assert.is_true(states:call("synced.here"))
    assert.is_nil(states:entry("stray.here"))
    assert.truthy(states:entry("obd.configured"))
    assert.truthy(ex:entry("stray.here"))
    assert.is_nil(ex:entry("synced.here"))
  end)
end)
