-- Targeting as Salt does it: glob by default, regex anchored at the start,
-- lists, grains (nested with ':' and lists of values) and compound.
local target = require("brine.target")
local data = require("brine.data")

describe("brine.target", function()
  local grains = data.map({ { "os", "Debian" }, { "roles", data.array({ "web", "db" }) },
    { "hw", data.map({ { "model", "Raspberry Pi 4" } }) } })

  it("matches globs, regexes and lists on the id", function()
    assert.is_true(target.match("web*", "glob", "web1"))
    assert.is_false(target.match("web*", "glob", "db1"))
    assert.is_true(target.match("web[0-9]", "glob", "web3"))
    assert.is_true(target.match("we.[0-9]", "pcre", "web3x"))   -- anchored at the start only
    assert.is_false(target.match("eb", "pcre", "web3"))
    assert.is_true(target.match("a,web3,b", "list", "web3"))
    assert.is_true(target.match({ "web3" }, "list", "web3"))
    assert.is_false(target.match("web", "list", "web3"))
  end)

  it("matches grains, nested and in lists", function()
    assert.is_true(target.match("os:Deb*", "grain", "x", grains))
    assert.is_true(target.match("roles:db", "grain", "x", grains))
    assert.is_true(target.match("hw:model:Raspberry*", "grain", "x", grains))
    assert.is_false(target.match("os:Ubuntu", "grain", "x", grains))
    assert.is_false(target.match("nope:x", "grain", "x", grains))
    assert.is_false(target.match("os:Debian", "grain", "x", nil))
    assert.is_true(target.match("os:^Deb", "grain_pcre", "x", grains))
  end)

  it("evaluates compound expressions", function()
    assert.is_true(target.match("web* and G@os:Debian", "compound", "web1", grains))
    assert.is_false(target.match("web* and not G@os:Debian", "compound", "web1", grains))
    assert.is_true(target.match("db* or ( E@^web and not L@x,y )", "compound", "web1", grains))
    assert.is_true(target.match("web1 not db*", "compound", "web1", grains))
    assert.is_false(target.match("and web1", "compound", "web1", grains))
    assert.is_false(target.match("( web1", "compound", "web1", grains))
    assert.is_false(target.match("E@^web L@x", "compound", "web1", grains))
    assert.is_false(target.match("Z@x", "compound", "web1", grains))
  end)

  it("selects matching ids and says when grains are needed", function()
    assert.same({ "web1", "web2" }, target.select("web*", "glob", { "db1", "web1", "web2" }))
    assert.is_true(target.needs_grains("G@os:x and y", "compound"))
    assert.is_false(target.needs_grains("web*", "glob"))
    assert.has_error(function() target.match("x", "nope", "x") end)
  end)
end)
