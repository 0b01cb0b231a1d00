-- The sys module tells what the minion can run and how.
local data = require("brine.data")
local loader = require("brine.loader")

describe("modules/sys", function()
  local ld = loader.new({})

  it("lists modules and functions, with patterns", function()
    local mods = ld:call("sys.list_modules")
    for _, name in ipairs({ "cmd", "config", "file", "grains", "pillar", "sys", "test" }) do
      assert.truthy(table.concat(mods, ","):find(name, 1, true))
    end
    assert.same({ "test" }, ld:call("sys.list_modules", { "te*" }))
    local funs = ld:call("sys.list_functions", { "test" })
    assert.truthy(table.concat(funs, ","):find("test.ping", 1, true))
    assert.same({ "test.ping" }, ld:call("sys.list_functions", { "test.pi*" }))
  end)

  it("documents and describes functions", function()
    assert.matches("responding", ld:call("sys.doc", { "test.ping" })["test.ping"])
    local spec = ld:call("sys.argspec", { "test.echo" })["test.echo"]
    assert.same({ "text" }, spec.args)
    assert.equal(data.null, spec.kwargs)
  end)
end)
