-- The test execution module, called through the loader as salt-call would.
local data = require("brine.data")
local loader = require("brine.loader")

local null = data.null

describe("modules/test", function()
  local ld

  before_each(function()
    ld = loader.new({ hash_type = "sha256" })
  end)

  it("pings, echoes and answers true and false", function()
    assert.is_true(ld:call("test.ping"))
    assert.equal("hi", ld:call("test.echo", { "hi" }))
    assert.is_true(ld:call("test.true"))
    assert.is_false(ld:call("test.false"))
  end)

  it("returns its arguments from test.arg, without __pub_ keys", function()
    local r = ld:call("test.arg", { 1, "a", null }, data.map({ { "k", 2 }, { "__pub_fun", "x" } }))
    assert.is_true(data.is_tuple(r.args))
    assert.same({ 1, "a", null }, r.args)
    assert.same({ "k" }, data.keys(r.kwargs))
    assert.same({ "args", "kwargs" }, data.keys(r))
  end)

  it("shows Python reprs and types", function()
    local r = ld:call("test.arg_repr", { "a", 1, true }, { k = null })
    assert.same({ "'a'", "1", "True" }, r.args)
    assert.equal("None", r.kwargs.k)
    local t = ld:call("test.arg_type", { 1, "s", 2.5, true, null, data.array() })
    assert.same({ "int", "str", "float", "bool", "NoneType", "list" }, data.keys(t))
  end)

  it("sets the return code in the context", function()
    assert.is_true(ld:call("test.retcode"))
    assert.equal(42, ld.context.retcode)
    ld:call("test.retcode", { 3 })
    assert.equal(3, ld.context.retcode)
  end)

  it("raises test.exception's message", function()
    local ok, err = pcall(ld.call, ld, "test.exception", { "boom" })
    assert.is_false(ok)
    assert.equal("boom", err)
    ok, err = pcall(ld.call, ld, "test.exception")
    assert.is_false(ok)
    assert.equal("Test Exception", err)
  end)

  it("computes fib and collatz with their timings", function()
    local r = ld:call("test.fib", { 10 })
    assert.equal(55, r[1])
    assert.equal("float", math.type(r[2]))
    assert.same({ 6, 3, 10, 5, 16, 8, 4, 2, 1 }, ld:call("test.collatz", { 6 })[1])
  end)

  it("sleeps and reports the version", function()
    assert.is_true(ld:call("test.sleep", { 0 }))
    assert.equal(require("brine.core").VERSION, ld:call("test.version"))
  end)

  it("reports versions as Salt's text, names right-aligned under each section", function()
    local report = ld:call("test.versions_report")
    assert.is_string(report)
    local version = require("brine.core").VERSION
    assert.matches("^Brine Version:\n +Brine: " .. version:gsub("%p", "%%%0") .. "\n \n", report)
    assert.matches("\nDependency Versions:\n", report)
    assert.matches("\n +Lua: Lua 5%.4", report)
    local widths = {}
    for name in report:gmatch("\n( *[%w_]+): ") do
      widths[#name] = true
    end
    assert.same({ 14 }, data.keys(widths))
  end)

  it("calls other functions through test.cross_test", function()
    assert.equal("x", ld:call("test.cross_test", { "test.echo", data.array({ "x" }) }))
  end)
end)
