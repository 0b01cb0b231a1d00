-- The execution module loader: lazy loading, search order, __virtual__,
-- the module environment and Salt's argument binding and messages.
local data = require("brine.data")
local loader = require("brine.loader")
local luv = require("luv")

local null = data.null

local function tempdir()
  return assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-spec-XXXXXX"))
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function rmtree(dir)
  local h = luv.fs_scandir(dir)
  while h do
    local name = luv.fs_scandir_next(h)
    if not name then
      break
    end
    os.remove(dir .. "/" .. name)
  end
  os.remove(dir)
end

local function catch(f, ...)
  local ok, err = pcall(f, ...)
  assert.is_false(ok)
  return err
end

describe("brine.loader", function()
  local dir

  before_each(function()
    dir = tempdir()
  end)

  after_each(function()
    rmtree(dir)
  end)

  it("loads only the module a function lives in", function()
    local ld = loader.new({})
    assert.is_true(ld.salt["test.ping"]())
    assert.is_table(ld.modules.test)
    assert.is_nil(ld.modules.cmd)
    assert.is_nil(ld.modules.file)
  end)

  it("offers salt['mod.fun'] and salt.mod.fun", function()
    local ld = loader.new({})
    assert.equal("x", ld.salt.test.echo("x"))
    assert.equal("y", ld.salt["test.echo"]("y"))
    assert.is_nil(ld.salt["test.nope"])
    assert.is_nil(ld.salt.test.nope)
  end)

  it("takes keyword arguments from a last table marked __kwarg__", function()
    local ld = loader.new({})
    assert.equal("by name", ld.salt["test.echo"]({ __kwarg__ = true, text = "by name" }))
  end)

  it("searches module_dirs before brine's own modules", function()
    write(dir .. "/test.lua", "local M = {} function M.ping() return 'mine' end return M")
    local ld = loader.new({ module_dirs = { dir } })
    assert.equal("mine", ld:call("test.ping"))
  end)

  it("searches <extension_modules>/modules", function()
    luv.fs_mkdir(dir .. "/modules", 448)
    write(dir .. "/modules/extra.lua", "return { hi = function() return 'hi' end }")
    local ld = loader.new({ extension_modules = dir })
    assert.equal("hi", ld:call("extra.hi"))
    os.remove(dir .. "/modules/extra.lua")
    os.remove(dir .. "/modules")
  end)

  it("gives each module salt, grains, pillar, opts and context", function()
    write(dir .. "/envy.lua", [[
      local M = {}
      function M.look()
        context.seen = (context.seen or 0) + 1
        return { grains.os, pillar.role, opts.id, salt["test.echo"]("via salt"), context.seen }
      end
      return M]])
    local ld = loader.new({ module_dirs = { dir }, id = "m1" },
      { grains = { os = "Debian" }, pillar = { role = "web" } })
    assert.same({ "Debian", "web", "m1", "via salt", 1 }, ld:call("envy.look"))
    assert.equal(2, ld:call("envy.look")[5])
    assert.is_nil(rawget(_G, "grains"))
  end)

  it("computes grains only when a module reads them", function()
    local computed = 0
    local ld = loader.new({}, { grains = function()
      computed = computed + 1
      return { os = "X" }
    end })
    ld:call("test.ping")
    assert.equal(0, computed)
    assert.equal("X", ld:call("grains.get", { "os" }))
    ld:call("grains.get", { "os" })
    assert.equal(1, computed)
  end)

  it("follows __virtual__: a name, or False with a reason", function()
    write(dir .. "/impl_a.lua", [[
      local M = { __virtualname__ = "svc" }
      function M.__virtual__() return M.__virtualname__ end
      function M.kind() return "a" end
      return M]])
    write(dir .. "/nope.lua", [[
      return { __virtual__ = function() return false, "no systemd here" end,
               f = function() end }]])
    local ld = loader.new({ module_dirs = { dir } })
    assert.equal("a", ld:call("svc.kind"))
    local err = catch(ld.call, ld, "nope.f")
    assert.equal("missing", err.kind)
    assert.equal("'nope' __virtual__ returned False: no systemd here", err.message)
  end)

  it("says a function is not available in Salt's words", function()
    local ld = loader.new({})
    local err = catch(ld.call, ld, "foo.bar")
    assert.is_true(loader.is_error(err))
    assert.equal("'foo.bar' is not available.", err.message)
    assert.equal("'test.nope' is not available.", catch(ld.call, ld, "test.nope").message)
  end)

  it("keeps private functions private", function()
    write(dir .. "/priv.lua", "return { _secret = function() return 1 end }")
    local ld = loader.new({ module_dirs = { dir } })
    assert.equal("missing", catch(ld.call, ld, "priv._secret").kind)
    assert.is_nil(ld.salt["priv._secret"])
  end)

  it("reports a module that fails to load", function()
    write(dir .. "/broken.lua", "local M = {\n return M")
    local ld = loader.new({ module_dirs = { dir } })
    assert.equal("missing", catch(ld.call, ld, "broken.f").kind)
    assert.matches("broken.lua:2:", ld:function_error("broken.f"))
  end)

  describe("binds arguments as Python does", function()
    local ld

    before_each(function()
      write(dir .. "/sig.lua", [[
        local M = { __defaults__ = { opt = { b = 2, c = "three" } } }
        function M.opt(a, b, c) return { a, b, c } end
        function M.two(x, y) return x end
        function M.none() return true end
        function M.rest(a, kwargs, ...) return { a = a, kw = kwargs, n = select("#", ...) } end
        return M]])
      ld = loader.new({ module_dirs = { dir } })
    end)

    it("fills defaults and keyword arguments by name", function()
      assert.same({ 1, 2, "three" }, ld:call("sig.opt", { 1 }))
      assert.same({ 1, 5, "three" }, ld:call("sig.opt", { 1 }, { b = 5 }))
      assert.same({ 9, 2, "x" }, ld:call("sig.opt", {}, { c = "x", a = 9 }))
    end)

    it("turns null into nil for named parameters", function()
      assert.same({ 1 }, ld:call("sig.opt", { 1, null, null }))
    end)

    it("collects extra positional and keyword arguments", function()
      local r = ld:call("sig.rest", { 1, 2, 3 }, { z = 1 })
      assert.equal(1, r.a)
      assert.equal(2, r.n)
      assert.equal(1, r.kw.z)
    end)

    it("rejects what Python would, in Python's words", function()
      assert.equal("none() takes 0 positional arguments but 1 was given",
        catch(ld.call, ld, "sig.none", { 1 }).message)
      assert.equal("opt() takes from 1 to 3 positional arguments but 4 were given",
        catch(ld.call, ld, "sig.opt", { 1, 2, 3, 4 }).message)
      assert.equal("two() missing 2 required positional arguments: 'x' and 'y'",
        catch(ld.call, ld, "sig.two").message)
      assert.equal("two() got multiple values for argument 'x'",
        catch(ld.call, ld, "sig.two", { 1, 2 }, { x = 3 }).message)
      local err = catch(ld.call, ld, "sig.two", { 1, 2 }, data.map({ { "q", true } }))
      assert.equal("invalid_kwargs", err.kind)
      assert.equal("The following keyword arguments are not valid: q=True", err.message)
    end)

    it("answers sys.argspec", function()
      local spec = ld:argspec("sig.opt")
      assert.same({ "a", "b", "c" }, spec.args)
      assert.same({ 2, "three" }, spec.defaults)
      assert.equal(null, spec.varargs)
      assert.is_true(ld:argspec("sig.rest").kwargs)
      assert.is_true(ld:argspec("sig.rest").varargs)
      -- Salt's argspec_report fills its dict in this order
      assert.same({ "args", "defaults", "kwargs", "varargs" }, data.keys(spec))
    end)
  end)

  it("runs a job's function as a minion does, with Salt's messages", function()
    write(dir .. "/job.lua", [[
      local M = {}
      function M.plain(a) return a end
      function M.open(kwargs) return kwargs end
      function M.fails() return nil, "no disk" end
      function M.code() context.retcode = 3 return "partial" end
      return M]])
    local opts = { module_dirs = { dir }, id = "j1" }
    assert.equal("x", loader.call("job.plain", { "x" }, data.map({ { "__pub_jid", "1" } }),
      opts))
    local kw = loader.call("job.open", {}, data.map({ { "__pub_jid", "1" } }), opts)
    assert.equal("1", kw.__pub_jid)
    local value, err, retcode = loader.call("job.nope", {}, nil, opts)
    assert.is_nil(value)
    assert.equal("'job.nope' is not available.", err)
    assert.equal(1, retcode)
    value, err = loader.call("job.plain", {}, nil, opts)
    assert.equal("Passed invalid arguments to job.plain: plain() missing 1 required "
      .. "positional argument: 'a'", err)
    value, err = loader.call("job.fails", {}, nil, opts)
    assert.equal("ERROR: no disk", err)
    value, err, retcode = loader.call("job.code", {}, nil, opts)
    assert.same({ "partial", nil, 3 }, { value, err, retcode })
    assert.equal("j1", loader.call("grains.get", { "id" }, nil, opts))
  end)

  it("lists modules and functions and reads doc comments", function()
    write(dir .. "/documented.lua", [[
      local M = {}
      --- Says hello.
      --- Twice.
      function M.hello() return "hello" end
      local function make() return function() return 1 end end
      -- Made by a factory.
      M.made = make()
      return M]])
    local ld = loader.new({ module_dirs = { dir } })
    local mods = ld:list_modules()
    assert.truthy(table.concat(mods, " "):find("documented"))
    assert.truthy(table.concat(mods, " "):find("test"))
    assert.same({ "documented.hello", "documented.made" }, ld:list_functions("documented"))
    assert.equal("Says hello.\nTwice.", ld:doc("documented.hello"))
    assert.equal("Made by a factory.", ld:doc("documented.made"))
  end)
end)
