-- The execution modules that render templates, called through the loader
-- as `brine call` and templates call them: slsutil.renderer, cp.get_template
-- and file.apply_template_on_contents (with the minion's grains, pillar and
-- salt functions), slsutil's and defaults' merges with Salt's rules, the cp
-- listings of file_roots, and the small helpers formulas call while
-- rendering (log.*, user.info, file.join, file.dirname, file.contains_regex).
local data = require("brine.data")
local json = require("brine.json")
local loader = require("brine.loader")

local SOURCE = os.getenv("BRINE_SOURCE_DIR") or "."
local FIXTURES = SOURCE .. "/spec/fixtures/templates"

local slurp = dofile(SOURCE .. "/spec/support/conformance.lua").read

local scratch

local function minion()
  local opts = { id = "web-1", cachedir = scratch .. "/cache",
    file_roots = data.map({ { "base", data.array({ FIXTURES }) } }) }
  local grains = data.map({ { "id", "web-1" }, { "os_family", "Debian" } })
  local pillar = json.decode('{"web": {"port": 8080, "sites": ["a.example", "b.example"]}}')
  return loader.new(opts, { grains = grains, pillar = pillar })
end

local function kw(t)
  t.__kwarg__ = true
  return t
end

describe("rendering modules", function()
  local ld, salt

  setup(function()
    local p = io.popen("mktemp -d")
    scratch = p:read("l")
    p:close()
    ld = minion()
    salt = ld.salt
    -- the modules log why a template could not be rendered: to a file here
    assert(require("brine.log").configure({ console = false, file = scratch .. "/log" }))
  end)

  teardown(function()
    require("brine.log").configure({})
    os.execute("rm -rf '" .. scratch .. "'")
  end)

  describe("slsutil.renderer", function()
    it("renders a salt:// SLS through jinja|yaml with the minion's data", function()
      local out = salt["slsutil.renderer"]("salt://web/init.sls", kw({ owner = "me" }))
      assert.equal('[{"name": "apache2"}, {"port": 8080}]',
        json.encode(out.web["service.running"]))
      assert.equal("me", out["site-1"]["file.managed"][2].owner)
      assert.equal("web", out["site-1"]["file.managed"][3].sls)
    end)

    it("renders a string with default_renderer and keyword variables", function()
      assert.equal("2 web-1 x", salt["slsutil.renderer"](kw({
        string = "{{ 1 + 1 }} {{ grains.id }} {{ v }}", default_renderer = "jinja", v = "x" })))
      local out = salt["slsutil.renderer"](kw({
        string = "a: {{ salt['pillar.get']('web:port') }}" }))
      assert.equal(8080, out.a)
      out = salt["slsutil.renderer"](kw({ string = "#!yaml\nb: [1, 2.0]" }))
      assert.equal('{"b": [1, 2.0]}', json.encode(out))
    end)

    it("renders a local path; a missing one is an empty mapping, as in Salt", function()
      local out = salt["slsutil.renderer"](FIXTURES .. "/web/data.sls")
      assert.equal('{"id": "web-1", "ratio": 1.5, "count": 3}', json.encode(out))
      out = salt["slsutil.renderer"]("/nonexistent/x.sls")
      assert.is_true(data.is_map(out))
      assert.is_nil(next(out))
    end)

    it("returns the error naming the template and line", function()
      local out, err = salt["slsutil.renderer"](kw({ string = "a\n{{ nope }}",
        default_renderer = "jinja" }))
      assert.is_nil(out)
      assert.matches("UndefinedError: 'nope' is undefined %(<string>, line 2%)", err)
      assert.has_error(function() salt["slsutil.renderer"]() end, "Must pass either path or string")
    end)
  end)

  describe("cp.get_template", function()
    it("renders a template to dest with keyword variables and returns dest", function()
      local dest = scratch .. "/out/motd"
      assert.equal(dest, salt["cp.get_template"]("salt://web/motd.jinja", dest,
        kw({ makedirs = true })))
      assert.equal("Welcome to web-1 (Debian).\n  serves a.example\n  serves b.example\n",
        slurp(dest))
    end)

    it("renders to the cache without dest; gives '' when it cannot render", function()
      local path = salt["cp.get_template"]("salt://web/motd.jinja")
      assert.equal(scratch .. "/cache/files/base/web/motd.jinja", path)
      assert.equal("", salt["cp.get_template"]("salt://nope.jinja", scratch .. "/x"))
      assert.equal("", salt["cp.get_template"]("salt://broken/outer.sls", scratch .. "/y"))
      assert.equal("", salt["cp.get_template"]("salt://web/motd.jinja", scratch .. "/no/dir/z"))
      local log = slurp(scratch .. "/log")
      assert.matches("cp.get_template: file salt://nope.jinja not found in saltenv 'base'", log,
        1, true)
      assert.matches("has no attribute 'nope' (broken/macros.jinja, line 3)", log, 1, true)
      assert.matches("cp.get_template: the folder " .. scratch .. "/no/dir does not exist", log,
        1, true)
    end)

    it("lists the file_roots: files, folders and SLS names", function()
      assert.equal('["broken.outer", "web", "web.data"]', json.encode(salt["cp.list_states"]()))
      assert.equal('["web/data.sls", "web/defaults.yaml", "web/init.sls", "web/map.jinja", '
        .. '"web/motd.jinja"]', json.encode(salt["cp.list_master"](kw({ prefix = "web/" }))))
      assert.equal('[".", "broken", "jsononly", "web"]',
        json.encode(salt["cp.list_master_dirs"]()))
      assert.equal(slurp(FIXTURES .. "/web/map.jinja"),
        salt["cp.get_file_str"]("salt://web/map.jinja"))
      assert.is_false(salt["cp.get_file_str"]("salt://missing"))
    end)
  end)

  describe("file.apply_template_on_contents", function()
    it("renders contents with context over defaults", function()
      local out = salt["file.apply_template_on_contents"]("{{ a }}-{{ b }}-{{ grains.id }}",
        "jinja", json.decode('{"a": 1}'), json.decode('{"a": 0, "b": 2}'), "base")
      assert.equal("1-2-web-1", out)
    end)

    it("refuses an unknown engine as Salt does, and reports template errors", function()
      local out = salt["file.apply_template_on_contents"]("x", "mako", data.map(), data.map(),
        "base")
      assert.is_false(out.result)
      assert.equal("Specified template format mako is not supported", out.comment)
      local none, err = salt["file.apply_template_on_contents"]("{% if %}", "jinja", data.map(),
        data.map(), "base")
      assert.is_nil(none)
      assert.matches("TemplateSyntaxError.*line 1", err)
    end)
  end)

  describe("merging", function()
    local a = '{"x": {"p": 1, "l": [1]}, "y": 1}'
    local b = '{"x": {"q": 2, "l": [1, 2]}, "z": 3}'

    it("merges with Salt's strategies", function()
      local function merge(...)
        return json.encode(salt["slsutil.merge"](json.decode(a), json.decode(b), ...))
      end
      assert.equal('{"x": {"p": 1, "l": [1, 2], "q": 2}, "y": 1, "z": 3}', merge())
      assert.equal('{"x": {"p": 1, "l": [1, 2], "q": 2}, "y": 1, "z": 3}',
        merge(kw({ merge_lists = true })))
      assert.equal('{"x": [{"p": 1, "l": [1]}, {"q": 2, "l": [1, 2]}], "y": 1}',
        merge(kw({ strategy = "list" })))
      -- aggregate (yamlex's level-1 merge): below the top only obj_b's keys stay
      assert.equal('{"x": {"q": 2, "l": [1, 2]}, "y": 1, "z": 3}',
        merge(kw({ strategy = "aggregate" })))
      assert.equal('{"x": {"q": 2, "l": [1, 2]}, "y": 1, "z": 3}',
        merge(kw({ renderer = "jinja|yamlex" })))
      assert.equal('{"a": 1, "b": 2}', json.encode(salt["slsutil.merge_all"](data.array({
        json.decode('{"a": 0}'), json.decode('{"a": 1}'), json.decode('{"b": 2}') }))))
    end)

    it("merges defaults in place, and fills nodes from defaults", function()
      local dest = json.decode(a)
      local out = salt["defaults.merge"](dest, json.decode(b), kw({ merge_lists = true }))
      assert.equal(dest, out)
      assert.equal('{"x": {"p": 1, "l": [1, 2], "q": 2}, "y": 1, "z": 3}', json.encode(out))
      local nodes = salt["defaults.update"](json.decode('{"n1": {"a": 9}}'),
        json.decode('{"a": 1, "b": 2}'))
      assert.equal('{"n1": {"a": 9, "b": 2}}', json.encode(nodes))
    end)
  end)

  describe("defaults.get", function()
    it("reads a formula's defaults.yaml, whole or along a key", function()
      assert.equal('{"port": 80, "tls": {"enabled": false, "ciphers": ["HIGH", "!aNULL"]}}',
        json.encode(salt["defaults.get"]("web")))
      assert.equal(80, salt["defaults.get"]("web:port"))
      assert.equal("!aNULL", salt["defaults.get"]("web:tls:ciphers:1"))
      assert.equal("", salt["defaults.get"]("web:missing"))
      assert.equal(7, salt["defaults.get"]("web:missing", 7))
    end)

    it("falls back to defaults.json, and to the default without a file", function()
      assert.equal(2.5, salt["defaults.get"]("jsononly:nested:a:1"))
      assert.is_nil(salt["defaults.get"]("nosuchformula"))
      assert.equal("d", salt["defaults.get"]("nosuchformula:x", "d"))
    end)

    it("is what a template sees through salt['defaults.get']", function()
      local out = salt["slsutil.renderer"](kw({
        string = "{{ salt['defaults.get']('web:tls:enabled') }} "
          .. "{{ salt['defaults.get']('web').port }}",
        default_renderer = "jinja" }))
      assert.equal("False 80", out)
    end)
  end)

  describe("helpers formulas call while rendering", function()
    it("log.* return None; user.info is empty for a missing user", function()
      assert.equal(data.null, salt["log.debug"]("x %s"))
      assert.equal(data.null, salt["log.warning"]("y"))
      local info = salt["user.info"]("no-such-user-brine")
      assert.is_nil(next(info))
      assert.equal(0, salt["user.info"]("root").uid)
    end)

    it("file.join, dirname, basename and contains_regex as Python has them", function()
      assert.equal("a/b/c", salt["file.join"]("a", "b/", "c"))
      assert.equal("/etc/x", salt["file.join"]("a", "/etc", "x"))
      assert.equal("/a", salt["file.dirname"]("/a/b"))
      assert.equal("/", salt["file.dirname"]("/a"))
      assert.equal("", salt["file.dirname"]("a"))
      assert.equal("b", salt["file.basename"]("/a/b"))
      assert.is_true(salt["file.contains_regex"](FIXTURES .. "/web/init.sls", "^\\s+- port: "))
      assert.is_false(salt["file.contains_regex"](FIXTURES .. "/web/init.sls", "^zzz"))
      assert.is_false(salt["file.contains_regex"]("/nonexistent", "x"))
    end)
  end)
end)
