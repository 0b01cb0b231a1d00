-- The grains execution module (and saltutil's grains functions), called
-- through the loader as a job calls them: Salt's signatures, return shapes
-- and messages; filter_by on the lookup tables of real formulas' map.jinja
-- files with the corpus's grains; edits of the static grains file.
local data = require("brine.data")
local fs = require("brine.fs")
local loader = require("brine.loader")
local yaml = require("brine.yaml")

local null = data.null
local shared = os.getenv("BRINE_SHARED_DIR") or "../shared"
local formulas = shared .. "/formulas-real/"

local function load_yaml(path)
  return assert(yaml.load(assert(fs.read(path)), { name = path }))
end

local function tempdir()
  return assert(fs.tempdir("brine-grains"))
end

-- A loader whose grains are the given table (no detection).
local function with_grains(g, opts)
  return loader.new(opts or {}, { grains = g })
end

-- Plain nested tables of a value, for assert.same.
local function plain(v)
  if type(v) ~= "table" then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = plain(x)
  end
  return out
end

local function kw(t)
  return data.map(t)
end

describe("modules/grains reading", function()
  local g = data.map({ { "os", "Debian" }, { "os_family", "Debian" },
    { "pkg", data.map({ { "apache", "httpd" }, { "a:b", "colon" } }) },
    { "roles", data.array({ "web", data.map({ { "db", "primary" } }) }) },
    { "nothing", null }, { "serialnumber", "ABCDEFGH" }, { "fqdn", "web-1.example.net" },
    { "host", "web-1" }, { "id", "web-1" }, { "num_cpus", 4 } })
  local ld = with_grains(g)

  it("gets values, nested ones with ':' and a chosen delimiter, else the default", function()
    assert.equal("Debian", ld:call("grains.get", { "os" }))
    assert.equal("httpd", ld:call("grains.get", { "pkg:apache" }))
    assert.equal("colon", ld:call("grains.get", { "pkg|a:b" }, { delimiter = "|" }))
    assert.equal("primary", ld:call("grains.get", { "roles:db" }))
    assert.equal("web", ld:call("grains.get", { "roles:0" }))
    assert.equal("", ld:call("grains.get", { "nope" }))
    assert.equal("x", ld:call("grains.get", { "pkg:nope", "x" }))
    assert.equal(null, ld:call("grains.get", { "nothing", "x" }))
    assert.equal("httpd", ld:call("grains.fetch", { "pkg:apache" }))
  end)

  it("lists and returns items, masking names and serials when sanitized", function()
    assert.equal(g, ld:call("grains.items"))
    local s = ld:call("grains.items", {}, { sanitize = true })
    assert.equal("ABCDEFXX", s.serialnumber)
    assert.equal("MINION.DOMAINNAME", s.fqdn)
    assert.equal("MINION.DOMAINNAME", s.id)
    assert.equal("MINION", s.host)
    assert.equal("Debian", s.os)
    assert.equal("web-1", g.host, "the grains themselves stay")
    local keys = ld:call("grains.ls")
    assert.same({ "fqdn", "host", "id", "nothing", "num_cpus", "os", "os_family", "pkg",
      "roles", "serialnumber" }, plain(keys))
  end)

  it("returns the items asked for, '' (or default) for missing ones", function()
    local r = ld:call("grains.item", { "os", "pkg:apache", "nope" })
    assert.same({ "os", "pkg:apache", "nope" }, plain(data.keys(r)))
    assert.same({ os = "Debian", ["pkg:apache"] = "httpd", nope = "" }, plain(r))
    assert.same({ nope = 0 }, plain(ld:call("grains.item", { "nope" }, { default = 0 })))
    assert.same({ host = "MINION" }, plain(ld:call("grains.item", { "host" },
      { sanitize = "True" })))
  end)

  it("tells whether a key exists and whether a value equals, as strings", function()
    assert.is_true(ld:call("grains.has_value", { "pkg:apache" }))
    assert.is_true(ld:call("grains.has_value", { "nothing" }))
    assert.is_false(ld:call("grains.has_value", { "pkg:nginx" }))
    assert.is_true(ld:call("grains.equals", { "num_cpus", "4" }))
    assert.is_true(ld:call("grains.equals", { "num_cpus", 4 }))
    assert.is_false(ld:call("grains.equals", { "os", "debian" }))
    assert.is_true(ld:call("grains.equals", { "nope", "" }))
  end)

  it("refuses unknown keyword arguments as Salt does", function()
    local ok, err = pcall(ld.call, ld, "grains.get", { "os" }, { bogus = 1 })
    assert.is_false(ok)
    assert.equal("The following keyword arguments are not valid: bogus=1", tostring(err))
  end)
end)

local have_formulas = fs.exists(formulas .. "grains.yaml")

describe("modules/grains filter_by", function()
  if not have_formulas then
    it("needs BRINE_SHARED_DIR", function() pending("shared formulas-real folder absent") end)
    return
  end
  local debian = load_yaml(formulas .. "grains.yaml")
  local ld = with_grains(debian)

  local function filter_by(lookup, kwargs)
    return ld:call("grains.filter_by", { lookup }, kwargs and kw(kwargs) or nil)
  end

  it("gives Salt's documented results", function()
    local y = function(s)
      return yaml.load(s)
    end
    assert.equal("Debheads rule", filter_by(y("{Debian: Debheads rule, RedHat: I love my hat}")))
    assert.same({ D = { E = "I", G = "H" }, J = "K" }, plain(ld:call("grains.filter_by",
      { y("{A: B, C: {D: {E: F, G: H}}}"), "xxx", y("{D: {E: I}, J: K}"), "C" })))
    local lookup = "{default: {A: {B: C}, D: E}, F: {A: {B: G}}, H: {D: I}}"
    assert.same({ A = { B = "G" }, D = "J" }, plain(ld:call("grains.filter_by",
      { y(lookup), "xxx", y("{D: J}"), "F", "default" })))
    assert.same({ A = { B = "C" }, D = "J" }, plain(ld:call("grains.filter_by",
      { y(lookup), "xxx", y("{D: J}"), "H", "default" })))
  end)

  it("matches keys as shell patterns, list grains item by item, and falls back", function()
    assert.equal("some salt", filter_by(yaml.load("{'fleet*': some salt, default: none}"),
      { { "grain", "id" } }))
    assert.equal("lo", filter_by(yaml.load("{'192.0.2.*': v4, '127.*': lo}"),
      { { "grain", "ipv4" } }), "the list's first item that matches any key wins")
    assert.equal("v4", filter_by(yaml.load("{'192.0.2.*': v4}"), { { "grain", "ipv4" } }))
    assert.equal("dflt", filter_by(yaml.load("{RedHat: rh, default: dflt}")))
    assert.equal(null, filter_by(yaml.load("{RedHat: rh}")))
    assert.equal("deb", filter_by(yaml.load("{Debian: deb}"), { { "grain", "nope" },
      { "default", "Debian" } }))
    assert.same({ a = 1 }, plain(filter_by(yaml.load("{RedHat: rh}"),
      { { "merge", yaml.load("{a: 1}") } })))
  end)

  it("raises Salt's errors for a bad merge or base", function()
    local ok, err = pcall(filter_by, yaml.load("{Debian: {a: 1}}"), { { "merge", "text" } })
    assert.is_false(ok)
    assert.equal("filter_by merge argument must be a dictionary.", tostring(err))
    ok, err = pcall(filter_by, yaml.load("{Debian: deb, base: {a: 1}}"), { { "base", "base" } })
    assert.is_false(ok)
    assert.equal("filter_by default and look-up values must both be dictionaries.",
      tostring(err))
  end)

  -- timezone-formula's map.jinja: defaults, merged over by osarch,
  -- os_family, os and osfinger maps and the pillar's settings.
  local function timezone_map(ldr, config)
    local dir = formulas .. "timezone/states/timezone/"
    local function fb(lookup, kwargs)
      return ldr:call("grains.filter_by", { lookup }, kw(kwargs))
    end
    local merged = fb(config, { { "default", "lookup" } })
    merged = fb(load_yaml(dir .. "osfingermap.yaml"), { { "grain", "osfinger" },
      { "merge", merged } })
    merged = fb(load_yaml(dir .. "osmap.yaml"), { { "grain", "os" }, { "merge", merged } })
    merged = fb(load_yaml(dir .. "osfamilymap.yaml"), { { "grain", "os_family" },
      { "merge", merged } })
    merged = fb(load_yaml(dir .. "osarchmap.yaml"), { { "grain", "osarch" },
      { "merge", merged } })
    local defaults = fb(load_yaml(dir .. "defaults.yaml"), { { "default", "timezone" },
      { "merge", merged } })
    return fb(data.map({ { "defaults", defaults } }), { { "default", "defaults" },
      { "merge", config } })
  end

  it("stacks timezone-formula's maps as Salt does on Debian 12", function()
    local pillar = load_yaml(formulas .. "timezone/pillar/timezone.sls")
    local tz = timezone_map(ld, pillar.timezone)
    assert.same({ name = "Europe/Berlin", tz_UTC = "Etc/UTC", utc = true,
      path_localtime = "/etc/localtime", path_zoneinfo = "/usr/share/zoneinfo/",
      pkg = { name = "tzdata" }, dbus = { pkg = "dbus", service = "dbus", run_service = true },
      arch = "amd64" }, plain(tz))
  end)

  it("stacks them on openSUSE Leap 15 and Ubuntu 16.04", function()
    local leap = with_grains(data.map({ { "os", "Leap" }, { "os_family", "Suse" },
      { "osfinger", "Leap-15" }, { "osarch", "x86_64" } }))
    local tz = timezone_map(leap, data.map())
    assert.same({ name = "timezone" }, plain(tz.pkg))
    assert.same({ pkg = "dbus-1", service = "dbus", run_service = true }, plain(tz.dbus))
    assert.equal("amd64", tz.arch)
    local xenial = with_grains(data.map({ { "os", "Ubuntu" }, { "os_family", "Debian" },
      { "osfinger", "Ubuntu-16.04" }, { "osarch", "armhf" } }))
    tz = timezone_map(xenial, data.map())
    assert.is_false(tz.dbus.run_service)
    assert.is_nil(tz.arch)
  end)

  it("answers salt-formula's `filter_by(map, grain=...) or {}` with None on no match", function()
    local osfingermap = data.map({ { "Debian-11", data.map({ { "py", 3 } }) } })
    assert.equal(null, filter_by(osfingermap, { { "grain", "osfinger" } }))
    assert.equal(3, filter_by(data.map({ { "Debian-1*", data.map({ { "py", 3 } }) } }),
      { { "grain", "osfinger" } }).py)
  end)

  it("takes docker-formula's last step: one key, its default and the config merged", function()
    local defaults = data.map({ { "pkg", data.map({ { "name", "docker-ce" } }) } })
    local config = yaml.load("{pkg: {version: '20.10'}}")
    local d = filter_by(data.map({ { "defaults", defaults } }), { { "default", "defaults" },
      { "merge", config } })
    assert.same({ pkg = { name = "docker-ce", version = "20.10" } }, plain(d))
  end)
end)

describe("modules/grains editing the static grains file", function()
  local dir, ld, g

  before_each(function()
    dir = tempdir()
    g = { os = "Debian" }
    ld = with_grains(g, { config_dir = dir, ["local"] = true })
  end)

  after_each(function()
    fs.remove(dir, true)
  end)

  local function stored()
    return plain(load_yaml(dir .. "/grains"))
  end

  it("sets values in the file and in this call's grains", function()
    assert.same({ role = "web" }, plain(ld:call("grains.setval", { "role", "web" })))
    assert.same({ role = "web" }, stored())
    assert.equal("web", g.role)
    local new = yaml.load("{a: 1, b: [x, y]}")
    assert.equal(new, ld:call("grains.setvals", { new }))
    assert.same({ role = "web", a = 1, b = { "x", "y" } }, stored())
    assert.same({ role = null }, plain(ld:call("grains.setval", { "role" , null })))
    assert.equal(null, stored().role, "a null value stays without destructive")
    ld:call("grains.setval", { "role", null }, { destructive = true })
    assert.is_nil(stored().role)
    assert.is_nil(g.role)
  end)

  it("raises Salt's error for setvals of a non-mapping", function()
    local ok, err = pcall(ld.call, ld, "grains.setvals", { "text" })
    assert.is_false(ok)
    assert.equal("setvals grains must be a dictionary.", tostring(err))
  end)

  it("keeps a grains file it cannot read and says why", function()
    fs.write_atomic(dir .. "/grains", "a: [1\n")
    local ret = ld:call("grains.setval", { "b", 2 })
    assert.matches("^Unable to read existing grains file: " .. dir:gsub("%p", "%%%0")
      .. "/grains:", ret)
    assert.equal("a: [1\n", fs.read(dir .. "/grains"))
  end)

  it("appends to lists, converting or refusing single values", function()
    assert.same({ roles = { "web" } }, plain(ld:call("grains.append", { "roles", "web" })))
    assert.same({ roles = { "web", "db", "cache" } },
      plain(ld:call("grains.append", { "roles", yaml.load("[db, cache]") })))
    assert.equal("The val db was already in the list roles",
      ld:call("grains.append", { "roles", "db" }))
    assert.equal("The key os is not a valid list", ld:call("grains.append", { "os", "x" }))
    assert.same({ os = { "Debian", "x" } },
      plain(ld:call("grains.append", { "os", "x" }, { convert = true })))
    ld:call("grains.setval", { "apps", yaml.load("{web: {ports: [80]}}") })
    assert.same({ apps = { web = { ports = { 80, 443 } } } },
      plain(ld:call("grains.append", { "apps:web:ports", 443 })))
    assert.same({ roles = { "web", "cache" } }, plain(ld:call("grains.remove", { "roles", "db" })))
    assert.equal("The val db was not in the list roles",
      ld:call("grains.remove", { "roles", "db" }))
  end)

  it("sets nested keys and refuses to replace lists and mappings without force", function()
    local r = ld:call("grains.set", { "apps:web:port", 80 })
    assert.same({ comment = "", changes = { apps = { web = { port = 80 } } }, result = true },
      plain(r))
    assert.same({ "comment", "changes", "result" }, plain(data.keys(r)))
    assert.equal("Grain is already set", ld:call("grains.set", { "apps:web:port", 80 }).comment)
    r = ld:call("grains.set", { "apps", "flat" })
    assert.is_false(r.result)
    assert.equal("The key 'apps' exists but is a dict or a list. Use 'force=True' to overwrite.",
      r.comment)
    r = ld:call("grains.set", { "os", yaml.load("[a]") })
    assert.equal("The key 'os' exists and the given value is a dict or a list. "
      .. "Use 'force=True' to overwrite.", r.comment)
    r = ld:call("grains.set", { "os:sub", 1 })
    assert.equal("The key 'os' value is 'Debian', which is different from the provided key "
      .. "'sub'. Use 'force=True' to overwrite.", r.comment)
    assert.is_true(ld:call("grains.set", { "apps", "flat" }, { force = true }).result)
    assert.equal("flat", stored().apps)
  end)

  it("deletes values (delval) and keys (delkey, delval destructive)", function()
    ld:call("grains.setvals", { yaml.load("{a: 1, b: 2, c: {d: 1}}") })
    local r = ld:call("grains.delval", { "a" })
    assert.same({ comment = "", changes = { a = null }, result = true }, plain(r))
    assert.equal(null, stored().a)
    assert.is_true(ld:call("grains.delkey", { "b" }).result)
    assert.is_nil(stored().b)
    assert.is_nil(g.b)
    assert.is_false(ld:call("grains.delkey", { "c" }).result)
    assert.is_true(ld:call("grains.delkey", { "c" }, { force = true }).result)
    assert.is_nil(stored().c)
    assert.is_true(ld:call("grains.delval", { "a" }, { destructive = true }).result)
    assert.same({}, stored())
  end)
end)

describe("modules/saltutil grains functions", function()
  local dir, opts

  before_each(function()
    dir = tempdir()
    fs.mkdir(dir .. "/conf")
    fs.mkdir(dir .. "/srv/_grains", nil, true)
    opts = { id = "m1", config_dir = dir .. "/conf", extension_modules = dir .. "/extmods",
      file_roots = { base = { dir .. "/srv" } }, grains = data.map() }
  end)

  after_each(function()
    fs.remove(dir, true)
  end)

  it("syncs _grains modules from the file roots and refreshes the grains", function()
    fs.write_atomic(dir .. "/srv/_grains/site.lua",
      "return { site = function() return { site = 'lab', rack = 4 } end }\n")
    local ld = loader.new(opts, loader.environment(opts))
    assert.is_nil(ld:grains().site)
    assert.same({ "grains.site" }, plain(ld:call("saltutil.sync_grains")))
    assert.equal("lab", ld:grains().site)
    assert.same({}, plain(ld:call("saltutil.sync_grains")), "nothing new the second time")
    fs.remove(dir .. "/srv/_grains/site.lua")
    ld:call("saltutil.sync_grains")
    assert.is_false(fs.exists(dir .. "/extmods/grains/site.lua"))
    assert.is_nil(ld:grains().site)
  end)

  it("says so when there is no extension_modules folder to sync into", function()
    local ld = loader.new({ file_roots = opts.file_roots }, { grains = {} })
    local ret, err = ld:call("saltutil.sync_grains")
    assert.is_nil(ret)
    assert.equal("saltutil.sync_grains: the extension_modules option is not set", err)
  end)

  it("refreshes grains in the table every module holds", function()
    local ld = loader.new(opts, loader.environment(opts))
    local g = ld:grains()
    assert.is_nil(g.color)
    fs.write_atomic(dir .. "/conf/grains", "color: blue\n")
    assert.is_true(ld:call("saltutil.refresh_grains"))
    assert.equal("blue", g.color)
    assert.equal("blue", ld:call("grains.get", { "color" }))
    assert.is_true(ld:call("saltutil.refresh_grains", {}, { refresh_pillar = false }))
    local ok, err = pcall(ld.call, ld, "saltutil.refresh_grains", {}, { bogus = 1 })
    assert.is_false(ok)
    assert.equal("The following keyword arguments are not valid: bogus=1", tostring(err))
  end)

  it("refreshes after a setval outside --local", function()
    fs.write_atomic(dir .. "/srv/_grains/echo.lua",
      "return { echo = function(g) return { echo = g.color } end }\n")
    local ld = loader.new(opts, loader.environment(opts))
    ld:call("saltutil.sync_grains")
    ld:call("grains.setval", { "color", "red" })
    assert.equal("red", ld:grains().color)
    assert.is_nil(ld:grains().echo, "custom grains run before the static file is merged")
  end)
end)

describe("brine call with custom and static grains", function()
  local bin = os.getenv("BRINE_BIN")
  if not bin then
    it("needs BRINE_BIN", function() pending("BRINE_BIN is not set") end)
    return
  end
  local json = require("brine.json")
  local proc = require("brine.proc")
  local dir

  before_each(function()
    dir = tempdir()
    assert(fs.mkdir(dir .. "/srv/_grains", nil, true))
    assert(fs.mkdir(dir .. "/conf"))
    assert(fs.write_atomic(dir .. "/conf/minion", "id: pi-7\ncachedir: " .. dir
      .. "/cache\nfile_roots:\n  base: [" .. dir .. "/srv]\ngrains:\n  layer: config\n"))
    assert(fs.write_atomic(dir .. "/conf/grains", "layer: static\nrole: gateway\n"))
    assert(fs.write_atomic(dir .. "/srv/_grains/site.lua",
      "return { site = function(g) return { site = 'lab', role = 'custom', seen = g.id } end }\n"))
    assert(fs.write_atomic(dir .. "/srv/_grains/broken.lua", "return {\n"))
  end)

  after_each(function()
    fs.remove(dir, true)
  end)

  local function call(...)
    local r = assert(proc.run({ argv = { bin, "call", "--local", "-c", dir .. "/conf",
      "--out", "json", ... }, timeout = 30 }))
    return r
  end

  it("syncs custom grains, then every call sees them under static and config grains", function()
    local r = call("saltutil.sync_grains")
    assert.equal(0, r.retcode, r.stderr)
    assert.same({ "grains.broken", "grains.site" }, plain(json.decode(r.stdout)["local"]))
    r = call("grains.item", "site", "seen", "role", "layer", "os")
    assert.equal(0, r.retcode, r.stderr)
    local got = json.decode(r.stdout)["local"]
    assert.equal("lab", got.site)
    assert.equal("pi-7", got.seen)
    assert.equal("gateway", got.role, "the static file beats custom grains")
    assert.equal("config", got.layer, "the grains option beats the static file")
    assert.equal(require("brine.grains").core().os, got.os)
    assert.matches("grains skipped: " .. (dir .. "/cache/extmods/grains/broken.lua:")
      :gsub("%p", "%%%0"), r.stderr, 1)
  end)

  it("writes grains with setval and reads them back in the next call", function()
    local r = call("grains.setval", "color", "red")
    assert.equal(0, r.retcode, r.stderr)
    assert.same({ color = "red" }, plain(json.decode(r.stdout)["local"]))
    assert.equal("color: red\nlayer: static\nrole: gateway\n", fs.read(dir .. "/conf/grains"))
    r = call("grains.get", "color")
    assert.equal("red", json.decode(r.stdout)["local"])
  end)
end)
