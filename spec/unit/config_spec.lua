-- Minion and master options: Salt's names and defaults, root_dir, the id,
-- reading DIR/minion and DIR/minion.d/*.conf, and Salt's data functions.
local config = require("brine.config")
local data = require("brine.data")
local luv = require("luv")

local has_yaml = pcall(require, "brine.yaml")
local it_yaml = has_yaml and it or pending

local function tempdir()
  return assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-conf-XXXXXX"))
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe("brine.config", function()
  it("has Salt's option names and defaults", function()
    local o = config.defaults("minion")
    assert.equal("salt", o.master)
    assert.equal(4506, o.master_port)
    assert.equal("warning", o.log_level)
    assert.equal("/", o.root_dir)
    assert.equal("full", o.state_output)
    assert.same({ "/srv/brine", "/srv/spm/brine" }, o.file_roots.base)
    assert.equal(4505, config.defaults("master").publish_port)
    assert.has_error(function()
      config.defaults("syndic")
    end)
  end)

  it("derives the id from the host name and extmods from cachedir", function()
    local o = config.finish(config.defaults("minion"))
    assert.equal(config.hostname(), o.id)
    assert.is_true(#o.id > 0)
    assert.equal("/var/cache/brine/minion/extmods", o.extension_modules)
  end)

  it("puts path options under root_dir as Salt does", function()
    local o = config.defaults("minion")
    o.root_dir = "/srv/root/"
    o.cachedir = "relative/cache"
    o.sock_dir = "/srv/root/run"
    config.finish(o)
    assert.equal("/srv/root/etc/brine/pki/minion", o.pki_dir)
    assert.equal("/srv/root/relative/cache", o.cachedir)
    assert.equal("/srv/root/run", o.sock_dir)
    assert.equal("/srv/root/var/log/brine/minion", o.log_file)
  end)

  it("leaves a log_file URL out of root_dir, as Salt does", function()
    local o = config.defaults("minion")
    o.root_dir = "/srv/root"
    o.log_file = "udp://loghost:514/LOG_USER"
    config.finish(o)
    assert.equal("udp://loghost:514/LOG_USER", o.log_file)
    o = config.defaults("master")
    o.root_dir = "/srv/root"
    o.log_file = "file:///dev/log"
    config.finish(o)
    assert.equal("file:///dev/log", o.log_file)
  end)

  it("accepts a missing default folder and refuses a missing named one", function()
    local o = assert(config.load("/no/such/brine/dir", "minion", false))
    assert.equal("salt", o.master)
    local none, err = config.load("/no/such/brine/dir", "minion", true)
    assert.is_nil(none)
    assert.matches("/no/such/brine/dir", err)
  end)

  it_yaml("reads DIR/minion, then minion.d/*.conf in name order", function()
    local dir = tempdir()
    luv.fs_mkdir(dir .. "/minion.d", 448)
    write(dir .. "/minion", "id: m1\nmaster: one\ngrains:\n  a: 1\n")
    write(dir .. "/minion.d/b.conf", "master: three\n")
    write(dir .. "/minion.d/a.conf", "master: two\ngrains:\n  b: 2\n")
    local o = assert(config.load(dir, "minion", true))
    assert.equal("m1", o.id)
    assert.equal("three", o.master)
    -- as Salt: the included files merge deeply together, then replace the
    -- main file's options whole
    assert.same({ b = 2 }, o.grains)
    write(dir .. "/minion.d/c.conf", "master: [\n")
    local none, err = config.load(dir, "minion", true)
    assert.is_nil(none)
    assert.matches("c%.conf:%d+", err)
    for _, f in ipairs({ "/minion.d/a.conf", "/minion.d/b.conf", "/minion.d/c.conf",
      "/minion.d", "/minion" }) do
      os.remove(dir .. f)
    end
    os.remove(dir)
  end)
end)

describe("brine.config includes", function()
  local dir

  before_each(function()
    dir = tempdir()
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it_yaml("replaces defaults option by option, as Salt does", function()
    write(dir .. "/minion", "file_roots:\n  dev: [/srv/dev]\n")
    local o = assert(config.load(dir, "minion", true))
    assert.same({ "dev" }, require("brine.data").keys(o.file_roots))
    assert.equal(dir .. "/minion", o.conf_file)
  end)

  it_yaml("follows default_include and include, globs relative to the folder", function()
    luv.fs_mkdir(dir .. "/conf", 448)
    luv.fs_mkdir(dir .. "/minion.d", 448)
    write(dir .. "/minion.d/a.conf", "id: ignored\n")
    write(dir .. "/minion", "default_include: conf/*.yml\ninclude: [extra.conf, nothing/*.conf]\n"
      .. "id: main\nmodule_dirs: [/m0]\n")
    write(dir .. "/conf/2.yml", "grains: {b: 2}\nmodule_dirs: [/m2]\n")
    write(dir .. "/conf/1.yml", "grains: {a: 1}\nmodule_dirs: [/m1]\nid: from-default\n")
    write(dir .. "/extra.conf", "id: from-include\ninclude: more.conf\n")
    write(dir .. "/more.conf", "master: from-nested\n")
    local o, err, warnings = config.load(dir, "minion", true)
    assert.is_nil(err)
    assert.equal("from-include", o.id)
    assert.equal("from-nested", o.master)
    assert.same({ a = 1, b = 2 }, o.grains)
    assert.same({ "/m1", "/m2" }, o.module_dirs)
    assert.same({ "Warning parsing configuration file: \"include\" path/glob "
      .. "'nothing/*.conf' matches no files" }, warnings)
  end)

  it_yaml("names the included file and line that is broken", function()
    write(dir .. "/minion", "include: bad.conf\n")
    write(dir .. "/bad.conf", "id: x\nmaster: [\n")
    local none, err = config.load(dir, "minion", true)
    assert.is_nil(none)
    assert.matches("bad%.conf:%d+:%d+: ", err)
  end)
end)

describe("brine.config data functions", function()
  it("traverses mappings and lists like Salt", function()
    local list = data.array({ 10, data.map({ { "c", 3 } }) })
    local d = data.map({ { "a", data.map({ { "b", list } }) } })
    assert.equal(10, config.traverse(d, "a:b:0"))
    assert.equal(3, config.traverse(d, "a:b:c"))
    assert.equal(3, config.traverse(d, "a.b.c", nil, "."))
    assert.equal("dflt", config.traverse(d, "a:x", "dflt"))
    assert.equal("dflt", config.traverse(d, "a:b:9", "dflt"))
  end)

  it("matches shell patterns like fnmatchcase", function()
    assert.is_true(config.fnmatch("Debian", "Deb*"))
    assert.is_true(config.fnmatch("a.b", "a?b"))
    assert.is_false(config.fnmatch("axb", "a.b"))
    assert.is_true(config.fnmatch("x1", "x[0-9]"))
    assert.is_false(config.fnmatch("x1", "x[!0-9]"))
    assert.is_false(config.fnmatch("debian", "Deb*"))
  end)

  it("merges recursively and copies deeply", function()
    local a = { x = { y = 1, z = { 1 } }, k = 1 }
    local b = config.copy(a)
    config.update(b, { x = { y = 2, z = data.array({ 1, 2 }) } }, true)
    assert.same({ x = { y = 2, z = { 1, 2 } }, k = 1 }, b)
    assert.equal(1, a.x.y)
  end)
end)
