-- brine.grains.minion: the grains a minion works with, in Salt's order
-- (core < custom grain modules < static grains file < `grains:` option),
-- custom grain modules found where Salt looks for them, and broken ones
-- skipped with their file named.
local data = require("brine.data")
local fs = require("brine.fs")
local minion = require("brine.grains.minion")

local function write(path, text)
  assert(fs.write_atomic(path, text))
end

describe("brine.grains.minion", function()
  local dir, opts

  before_each(function()
    dir = assert(fs.tempdir("brine-grains"))
    for _, sub in ipairs({ "conf", "extmods/grains", "gdir", "mods/_modules", "mods/_grains" }) do
      assert(fs.mkdir(dir .. "/" .. sub, nil, true))
    end
    opts = { id = "m1", config_dir = dir .. "/conf", extension_modules = dir .. "/extmods",
      grains_dirs = { dir .. "/gdir" }, module_dirs = { dir .. "/mods/_modules" },
      grains = data.map() }
  end)

  after_each(function()
    fs.remove(dir, true)
  end)

  it("starts from the core grains and the id", function()
    local g, problems = minion.load(opts)
    assert.same({}, problems)
    assert.equal("m1", g.id)
    assert.equal(require("brine.grains").core().kernel, g.kernel)
    assert.is_string(g.brineversion)
    assert.equal("", g.master)
    opts.master = "salt.example.net"
    assert.equal("salt.example.net", minion.load(opts).master)
  end)

  it("applies custom modules, then the static file, then the grains option", function()
    write(dir .. "/extmods/grains/site.lua", [[
return {
  a_site = function() return { os = "custom", site = "lab", layer = "custom" } end,
  b_more = function(grains) return { seen_site = grains.site } end,
}
]])
    write(dir .. "/conf/grains", "layer: static\nstatic_only: 1\n")
    opts.grains = data.map({ { "layer", "config" } })
    local g = minion.load(opts)
    assert.equal("custom", g.os, "a custom grain replaces a core one")
    assert.equal("lab", g.site)
    assert.equal("lab", g.seen_site, "functions run in name order and see earlier grains")
    assert.equal(1, g.static_only)
    assert.equal("config", g.layer, "the grains option has the last word")
    opts.grains = data.map()
    assert.equal("static", minion.load(opts).layer, "the static file beats custom modules")
  end)

  it("searches module_dirs, then extension_modules, then grains_dirs; first name wins", function()
    write(dir .. "/mods/_grains/same.lua", "return { f = function() return { from = 'mods' } end }")
    write(dir .. "/extmods/grains/same.lua",
      "return { f = function() return { from = 'ext' } end }")
    write(dir .. "/gdir/other.lua", "return { f = function() return { other = 'gdir' } end }")
    assert.same({ dir .. "/mods/_grains", dir .. "/extmods/grains", dir .. "/gdir" },
      minion.custom_dirs(opts))
    assert.same({ dir .. "/mods/_grains/same.lua", dir .. "/gdir/other.lua" },
      minion.custom_files(opts))
    local g = minion.load(opts)
    assert.equal("mods", g.from)
    assert.equal("gdir", g.other)
  end)

  it("skips a broken module or function, naming the file, and keeps the rest", function()
    write(dir .. "/gdir/a_syntax.lua", "return {\n  f = function(\n")
    write(dir .. "/gdir/b_raises.lua", "error('no luck')")
    write(dir .. "/gdir/c_fun.lua", [[
return {
  bad = function() error("sensor missing") end,
  good = function() return { good = true } end,
}
]])
    write(dir .. "/gdir/d_nottable.lua", "return 42")
    write(dir .. "/gdir/e_virtual.lua", [[
return {
  __virtual__ = function() return false end,
  f = function() return { hidden = true } end,
}
]])
    write(dir .. "/gdir/f_private.lua", [[
return {
  _helper = function() return { private = true } end,
  list = function() return { "not", "a", "mapping" } end,
  ok = function() return { last = "ok" } end,
}
]])
    local g, problems = minion.load(opts)
    assert.is_true(g.good)
    assert.equal("ok", g.last)
    assert.is_nil(g.hidden)
    assert.is_nil(g.private)
    assert.is_nil(g[1])
    assert.equal(4, #problems)
    local base = dir .. "/gdir/"
    assert.matches("^" .. (base .. "a_syntax.lua:"):gsub("%p", "%%%0"), problems[1])
    assert.matches("^" .. (base .. "b_raises.lua:1: no luck"):gsub("%p", "%%%0"), problems[2])
    assert.matches("^" .. (base .. "c_fun.lua:2: sensor missing"):gsub("%p", "%%%0")
      .. " %(in grain function bad%)$", problems[3])
    assert.equal(base .. "d_nottable.lua: does not return a table of functions", problems[4])
  end)

  it("merges nested grains deeply with grains_deep_merge", function()
    write(dir .. "/gdir/n.lua",
      "return { f = function() return { tree = { a = 1, b = 1 } } end }")
    write(dir .. "/conf/grains", "tree:\n  b: 2\n")
    assert.same({ b = 2 }, minion.load(opts).tree)
    opts.grains_deep_merge = true
    local tree = minion.load(opts).tree
    assert.equal(1, tree.a)
    assert.equal(2, tree.b)
  end)

  it("drops blacklisted grains of core, custom modules and the static file only", function()
    write(dir .. "/gdir/b.lua", "return { f = function() return { secret_key = 1, keep = 1 } end }")
    write(dir .. "/conf/grains", "secret_too: 1\nip_static: 1\n")
    opts.grains = data.map({ { "secret_config", 1 } })
    opts.grains_blacklist = { "secret_*", "ip[46]?_.*", "mem_total" }
    local g = minion.load(opts)
    assert.is_nil(g.secret_key)
    assert.is_nil(g.secret_too)
    assert.is_nil(g.ip_static)
    assert.is_nil(g.ip4_interfaces, "a regular expression matching the whole name")
    assert.is_nil(g.mem_total)
    assert.equal(1, g.keep)
    assert.equal(1, g.secret_config, "the grains option is not filtered, as in Salt")
    assert.is_not_nil(g.ipv4, "ipv4 is not matched: the expression must match all of it")
  end)

  it("skips a static grains file it cannot read, naming file and line", function()
    write(dir .. "/conf/grains", "ok: 1\nbad: [1\n")
    local g, problems = minion.load(opts)
    assert.is_nil(g.ok)
    assert.equal(1, #problems)
    assert.matches("^" .. (dir .. "/conf/grains:"):gsub("%p", "%%%0") .. "%d+:%d+:", problems[1])
    write(dir .. "/conf/grains", "- a list\n")
    local _, problems2 = minion.load(opts)
    assert.equal(dir .. "/conf/grains: the grains file must be a mapping of grain: value",
      problems2[1])
  end)

  it("reads and writes the static grains file, next to the configuration", function()
    assert.equal(dir .. "/conf/grains", minion.static_path(opts))
    assert.equal("/etc/x/grains", minion.static_path({ conf_file = "/etc/x/minion" }))
    assert.same({}, minion.read_static(opts))
    assert(minion.write_static(opts, data.map({ { "b", 1 }, { "a", data.array({ "x" }) } })))
    assert.equal("a:\n- x\nb: 1\n", fs.read(dir .. "/conf/grains"), "keys sorted, as Salt")
    local back = minion.read_static(opts)
    assert.same({ "a", "b" }, { table.unpack(data.keys(back)) })
    assert(minion.write_static(opts, data.map()))
    assert.equal("{}\n", fs.read(dir .. "/conf/grains"))
    assert.same({ "grains" }, { table.unpack(fs.listdir(dir .. "/conf")) },
      "no temporary file is left behind")
  end)

  it("refreshes a grains table in place, reading the grains option again", function()
    write(dir .. "/conf/minion", "grains:\n  layer: first\n")
    local g = minion.load(opts)
    local same = g
    write(dir .. "/conf/minion", "grains:\n  layer: second\n")
    minion.refresh(opts, g)
    assert.equal(same, g)
    assert.equal("second", g.layer)
    assert.equal("m1", g.id)
  end)
end)
