-- grains, pillar and config: Salt's lookups with `:` traversal, defaults,
-- merging and filter_by (the semantics the conformance corpus relies on).
local data = require("brine.data")
local loader = require("brine.loader")

local null = data.null

local function m(p)
  return data.map(p)
end

describe("grains, pillar and config modules", function()
  local ld

  before_each(function()
    ld = loader.new({ id = "m1", master = "salt.example" }, {
      grains = { os = "Debian", os_family = "Debian",
        roles = data.array({ "db", "web" }),
        nested = { a = { b = 1 } } },
      pillar = m({ { "app", m({ { "port", 80 }, { "hosts", data.array({ "a", "b" }) } }) },
        { "list", data.array({ m({ { "k", "v" } }), "x" }) } }),
    })
  end)

  it("grains.get walks nested data and defaults to ''", function()
    assert.equal("Debian", ld:call("grains.get", { "os" }))
    assert.equal(1, ld:call("grains.get", { "nested:a:b" }))
    assert.equal(1, ld:call("grains.get", { "nested.a.b" }, { delimiter = "." }))
    assert.equal("", ld:call("grains.get", { "nope" }))
    assert.equal("d", ld:call("grains.get", { "nope" }, { default = "d" }))
    assert.equal("web", ld:call("grains.get", { "roles:1" }))
  end)

  it("grains.item, items and ls", function()
    local r = ld:call("grains.item", { "os", "nope" })
    assert.same({ "os", "nope" }, data.keys(r))
    assert.equal("", r.nope)
    assert.equal("Debian", ld:call("grains.items").os)
    assert.same({ "nested", "os", "os_family", "roles" }, ld:call("grains.ls"))
  end)

  it("grains.filter_by matches patterns, list grains, default, base and merge", function()
    local lookup = m({ { "Deb*", m({ { "pkg", "apache2" } }) },
      { "RedHat", m({ { "pkg", "httpd" } }) },
      { "default", m({ { "pkg", "www" } }) } })
    assert.equal("apache2", ld:call("grains.filter_by", { lookup }).pkg)
    assert.equal("www", ld:call("grains.filter_by", { lookup }, { grain = "nope" }).pkg)
    local roles = m({ { "web", "w" }, { "db", "d" } })
    assert.equal("d", ld:call("grains.filter_by", { roles }, { grain = "roles" }))
    local based = m({ { "common", m({ { "a", 1 }, { "b", 1 } }) },
      { "Debian", m({ { "b", 2 } }) } })
    local r = ld:call("grains.filter_by", { based }, { base = "common", merge = m({ { "c", 3 } }) })
    assert.same({ a = 1, b = 2, c = 3 }, r)
  end)

  it("pillar.get walks, defaults and merges", function()
    assert.equal(80, ld:call("pillar.get", { "app:port" }))
    assert.equal("v", ld:call("pillar.get", { "list:k" }))
    assert.equal("x", ld:call("pillar.get", { "list:1" }))
    assert.equal("", ld:call("pillar.get", { "app:nope" }))
    assert.equal(null, ld:call("pillar.get", { "app:nope", null }))
    local merged = ld:call("pillar.get", { "app", m({ { "port", 1 }, { "tls", false } }) },
      { merge = true })
    assert.same({ port = 80, tls = false, hosts = { "a", "b" } }, merged)
    local listed = ld:call("pillar.get", { "app:hosts", data.array({ "b", "c" }) },
      { merge = true })
    assert.same({ "b", "c", "a" }, listed)
    assert.same({ "port", "hosts" }, ld:call("pillar.keys", { "app" }))
    assert.same({ "app", "list" }, ld:call("pillar.ls"))
    assert.equal(80, ld:call("pillar.item", { "app:port" })["app:port"])
  end)

  it("config.get looks in opts, then grains, then pillar", function()
    assert.equal("salt.example", ld:call("config.get", { "master" }))
    assert.equal("Debian", ld:call("config.get", { "os" }))
    assert.equal(80, ld:call("config.get", { "app:port" }))
    assert.equal("", ld:call("config.get", { "nowhere" }))
    assert.equal(5, ld:call("config.get", { "nowhere", 5 }))
  end)
end)

describe("grains.setval", function()
  local has_yaml = pcall(require, "brine.yaml")
  local it_yaml = has_yaml and it or pending

  it_yaml("writes the static grains file and this run's grains", function()
    local luv = require("luv")
    local dir = assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-gr-XXXXXX"))
    local ld = loader.new({ config_dir = dir }, { grains = { os = "X" } })
    assert.same({ role = "web" }, ld:call("grains.setval", { "role", "web" }))
    assert.equal("web", ld:call("grains.get", { "role" }))
    ld:call("grains.setvals", { m({ { "a", data.array({ 1 }) } }) })
    assert.equal("web", require("brine.config").static_grains({ config_dir = dir }).role)
    assert.same({ 1 }, require("brine.config").static_grains({ config_dir = dir }).a)
    ld:call("grains.setval", { "role", null }, { destructive = true })
    assert.is_nil(require("brine.config").static_grains({ config_dir = dir }).role)
    os.remove(dir .. "/grains")
    os.remove(dir)
  end)
end)

describe("config.option and config.items", function()
  it("read top-level options, then the pillar", function()
    local ld = loader.new({ master = "m" }, { pillar = { only_pillar = 1 } })
    assert.equal("m", ld:call("config.option", { "master" }))
    assert.equal(1, ld:call("config.option", { "only_pillar" }))
    assert.equal("", ld:call("config.option", { "nowhere" }))
    assert.equal("m", ld:call("config.items").master)
  end)
end)
