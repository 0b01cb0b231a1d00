-- brine.pillar: compiling a minion's pillar from the fixture trees in
-- spec/fixtures/pillar, as Salt's pillar compiler would: top file
-- matching (glob, grain, compound, pillar, order, ignore_missing),
-- includes (relative, defaults and key), merge strategies, Jinja with
-- grains, environments, errors under `_errors`; and the pillar module and
-- saltutil.refresh_pillar through the loader.
local data = require("brine.data")
local fs = require("brine.fs")
local loader = require("brine.loader")
local pillar = require("brine.pillar")

local null = data.null
local source = os.getenv("BRINE_SOURCE_DIR") or "."
local fixtures = source .. "/spec/fixtures/pillar/"

local function m(pairs_list)
  return data.map(pairs_list)
end

local function opts_for(tree, extra)
  local o = { pillar_roots = { base = data.array({ fixtures .. tree }) } }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end

local debian = m({ { "id", "web-1" }, { "os", "Debian" }, { "os_family", "Debian" },
  { "role", "db" } })

local function compile(tree, id, grains, extra, args)
  return pillar.compile(opts_for(tree, extra), grains or debian, id, args)
end

-- Plain nested tables, for assert.same.
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

describe("brine.pillar.compile", function()
  it("matches top targets by glob, grain and compound, and renders Jinja with grains", function()
    local p, errors = compile("basic", "web-1")
    assert.same({}, plain(errors))
    assert.same({ "site", "ports", "app", "pkg_manager", "db", "users" }, data.keys(p))
    assert.equal("apt", p.pkg_manager)
    assert.equal("web-1", p.app.host)
    -- G@role:db in a compound target, with the grains of the minion
    assert.equal("main", p.db.name)
  end)

  it("leaves out targets the minion does not match", function()
    local other = m({ { "id", "db-7" }, { "os", "Alpine" }, { "os_family", "Alpine" } })
    local p = compile("basic", "db-7", other)
    assert.same({ "site", "ports", "app" }, data.keys(p))
    assert.equal("common", p.app.name)
    -- a list target (L@) in the compound expression
    assert.equal("main", compile("basic", "special-2", other).db.name)
  end)

  it("renders includes first and the including file over them", function()
    local p = compile("basic", "web-1")
    -- web/init.sls includes .tls (web.tls) and common; its own name wins
    assert.equal("web", p.app.name)
    assert.is_true(p.app.tls)
    assert.same({ "a" }, plain(p.app.tags))
  end)

  it("passes include defaults as template variables and nests under key", function()
    local p = compile("basic", "web-1")
    assert.same({ settings = { engine = "postgres", port = 5432 }, name = "main" }, plain(p.db))
  end)

  it("expands SLS globs from the top file (users.*) in name order", function()
    local p = compile("basic", "web-1")
    assert.same({ "alice", "bob" }, data.keys(p.users))
  end)

  it("sorts targets by order, matches on pillar and skips ignore_missing", function()
    local p, errors = compile("order", "maybe-1", nil, nil,
      { pillar = m({ { "secret", m({ { "level", "HIGH" } }) } }) })
    assert.same({}, plain(errors))
    assert.equal("late", p.who)
    assert.is_nil(p.early)
    assert.is_true(p.gated) -- pillar matching ignores case, as Salt's
    local o = compile("order", "o-1")
    assert.equal("late", o.who) -- order 1 renders early first, order 10 late over it
    assert.is_true(o.early)
    assert.is_nil(o.gated)
  end)

  it("renders Jinja in the top file and calls salt functions in SLS files", function()
    local p = compile("matchers", "web-1")
    assert.equal("Debian", p.os_from_salt)
  end)

  it("reads the top files a top file includes", function()
    assert.is_true(compile("matchers", "web-1").included_top)
    assert.is_nil(compile("matchers", "db-1").included_top)
  end)

  it("decides G@, I@, J@ and N@ in compound targets as Salt's subdict_match does", function()
    local g = m({ { "os", "Debian" }, { "flag", true } })
    local secret = m({ { "secret", m({ { "level", "HIGH" } }) } })
    local p = compile("compound", "web-1", g, nil, { pillar = secret })
    assert.same({ "both", "grouped_or_pcre", "web_not_9" }, data.keys(p))
    p = compile("compound", "web-9", m({ { "os", "Alpine" } }), nil,
      { pillar = m({ { "secret", m({ { "level", "low" } }) } }) })
    assert.same({ "not_debian" }, data.keys(p))
    p = compile("compound", "db-1", g, { nodegroups = m({ { "webs", "db-*" } }) })
    assert.same({ "grouped_or_pcre" }, data.keys(p))
  end)

  it("matches nodegroups from the nodegroups option (lists and compound strings)", function()
    local groups = m({ { "webs", "web-* or N@extra" }, { "extra", data.array({ "db-1" }) } })
    assert.is_true(compile("matchers", "web-1", nil, { nodegroups = groups }).grouped)
    assert.is_true(compile("matchers", "db-1", nil, { nodegroups = groups }).grouped)
    assert.is_nil(compile("matchers", "db-2", nil, { nodegroups = groups }).grouped)
    assert.is_nil(compile("matchers", "web-1").grouped)
  end)

  it("matches IPv4 addresses and networks (ipcidr, S@) and names a matcher it does not have",
    function()
    local dir = assert(fs.tempdir("brine-pillar"))
    assert(fs.write_atomic(dir .. "/top.sls", table.concat({ "base:",
      "  10.1.0.0/16:", "    - match: ipcidr", "    - net",
      "  'S@192.0.2.10 and not S@10.2.0.0/16':", "    - host",
      "  x:", "    - match: range", "    - ranged", "" }, "\n")))
    for _, name in ipairs({ "net", "host" }) do
      assert(fs.write_atomic(dir .. "/" .. name .. ".sls", name .. ": true\n"))
    end
    local g = m({ { "ipv4", data.array({ "127.0.0.1", "10.1.200.3", "192.0.2.10" }) } })
    local p, errors = pillar.compile({ pillar_roots = { base = { dir } } }, g, "x")
    assert.same({ "net", "host", "_errors" }, data.keys(p))
    assert.same({ "Pillar top file target 'x': the matcher 'range' is not supported" },
      plain(errors))
    g = m({ { "ipv4", data.array({ "10.2.0.1" }) } })
    assert.same({ "_errors" }, data.keys(pillar.compile({ pillar_roots = { base = { dir } } },
      g, "x")))
    assert(fs.remove(dir, true))
  end)

  it("merges an including file over its includes, or under them with "
    .. "pillar_includes_override_sls", function()
    assert.same({ k = "outer", only_inner = 1 }, plain(compile("override", "x")))
    assert.same({ k = "inner", only_inner = 1 }, plain(compile("override", "x", nil,
      { pillar_includes_override_sls = true })))
  end)

  describe("merge strategies", function()
    local function merged(extra)
      return compile("merge", "x", nil, extra).app
    end

    it("smart and recurse merge mappings and replace lists", function()
      for _, strategy in ipairs({ "smart", "recurse" }) do
        local app = merged({ pillar_source_merging_strategy = strategy })
        assert.same({ name = "two", keep = true, list = { "b", "c" }, nested = { deep = 1 } },
          plain(app))
        assert.same({ "name", "keep", "list", "nested" }, data.keys(app))
      end
    end)

    it("pillar_merge_lists extends lists with new items", function()
      assert.same({ "a", "b", "c" }, plain(merged({ pillar_merge_lists = true }).list))
    end)

    it("overwrite replaces a top-level key whole", function()
      local app = merged({ pillar_source_merging_strategy = "overwrite" })
      assert.same({ name = "two", list = { "b", "c" }, nested = { deep = 1 } }, plain(app))
      assert.equal(1, compile("merge", "x", nil,
        { pillar_source_merging_strategy = "overwrite" }).top_only)
    end)

    it("aggregate keeps the first file's keys only at the top level", function()
      local p = compile("merge", "x", nil, { pillar_source_merging_strategy = "aggregate" })
      assert.equal(1, p.top_only)
      assert.same({ name = "two", list = { "b", "c" }, nested = { deep = 1 } }, plain(p.app))
    end)

    it("merges the override last, over everything", function()
      local p = compile("merge", "x", nil, nil,
        { pillar_override = m({ { "app", m({ { "name", "cli" } }) } }) })
      assert.equal("cli", p.app.name)
      assert.is_true(p.app.keep)
    end)

    it("brine.pillar.merge leaves both inputs unchanged", function()
      local a = m({ { "k", m({ { "x", 1 } }) } })
      local b = m({ { "k", m({ { "y", 2 } }) } })
      local out = pillar.merge(a, b)
      assert.same({ k = { x = 1, y = 2 } }, plain(out))
      assert.same({ k = { x = 1 } }, plain(a))
    end)
  end)

  describe("environments", function()
    local roots = { pillar_roots = { base = data.array({ fixtures .. "envs/base" }),
      dev = data.array({ fixtures .. "envs/dev" }) } }

    it("compiles every environment the top files name, base first", function()
      local p = pillar.compile(roots, debian, "x")
      assert.equal("dev", p.where)
      assert.is_true(p.dev_flag)
    end)

    it("pillarenv keeps to one environment", function()
      local p = pillar.compile(roots, debian, "x", { pillarenv = "base" })
      assert.same({ where = "base" }, plain(p))
      local dev = pillar.compile(roots, debian, "x", { pillarenv = "dev" })
      assert.same({}, plain(dev)) -- dev has no top file of its own
    end)

    it("strategy none reads only the saltenv's top file", function()
      local o = { pillar_roots = roots.pillar_roots, pillar_source_merging_strategy = "none" }
      assert.equal("dev", pillar.compile(o, debian, "x").where)
      assert.same({}, plain(pillar.compile(o, debian, "x", { saltenv = "dev" })))
    end)
  end)

  describe("errors", function()
    it("puts each broken SLS under _errors with its file and line", function()
      local p, errors, log = compile("broken", "x", nil, nil, { safe_render_error = false })
      assert.equal("value", p.good)
      assert.same(plain(errors), plain(p._errors))
      assert.equal(4, #errors) -- the unmatched target 'nobody' is no error
      assert.matches("^Rendering SLS 'bad_yaml' failed, render error:\n.*bad_yaml%.sls:4:",
        errors[1])
      assert.matches("^Rendering SLS 'bad_jinja' failed, render error:\n.*bad_jinja%.sls, line 2",
        errors[2])
      assert.equal("SLS 'not_a_dict' does not render to a dictionary", errors[3])
      assert.equal("Specified SLS 'absent' in environment 'base' is not available on the salt "
        .. "master", errors[4])
      assert.same(plain(errors), plain(log))
    end)

    it("in safe mode (the default) keeps the file and line but not the message", function()
      local p, errors, log = compile("broken", "x")
      assert.matches("^Rendering SLS 'bad_yaml' failed at .*bad_yaml%.sls, line 4%. Please see",
        p._errors[1])
      assert.not_matches("mapping", errors[1])
      assert.matches("render error", log[1])
    end)

    it("a missing top file gives an empty pillar and no error", function()
      local p, errors = compile("notop", "x")
      assert.same({}, plain(p))
      assert.same({}, plain(errors))
      assert.is_true(data.is_map(p))
    end)

    it("a top file that is not a mapping is an error", function()
      local dir = assert(fs.tempdir("brine-pillar"))
      assert(fs.write_atomic(dir .. "/top.sls", "- just\n- a list\n"))
      local p = pillar.compile({ pillar_roots = { base = { dir } } }, debian, "x")
      assert.same({ "Error encountered while rendering pillar top file." }, plain(p._errors))
      assert(fs.remove(dir, true))
    end)
  end)
end)

describe("pillar through the loader", function()
  local function local_loader(tree, extra)
    local o = opts_for(tree, extra)
    o.file_client, o.id = "local", "web-1"
    return loader.new(o, { grains = debian, pillar = function(ld)
      return pillar.minion_pillar(o, ld:grains())
    end })
  end

  it("compiles on first use for a masterless minion; the pillar option is replaced", function()
    local ld = local_loader("basic", { pillar = m({ { "from_option", 1 } }) })
    assert.equal("web", ld:call("pillar.get", { "app:name" }))
    assert.equal("", ld:call("pillar.get", { "from_option" }))
    assert.equal(5432, ld:call("pillar.fetch", { "db:settings:port" }))
  end)

  it("keeps the pillar option when the pillar comes from a master", function()
    local o = { file_client = "remote", pillar = m({ { "k", "v" } }) }
    local ld = loader.new(o, loader.environment(o))
    assert.equal("v", ld:call("pillar.get", { "k" }))
  end)

  it("pillar.items takes pillar= and pillarenv=", function()
    local ld = local_loader("basic")
    local p = ld:call("pillar.items", {}, m({ { "pillar", m({ { "site", "cli" } }) } }))
    assert.equal("cli", p.site)
    assert.equal("example", ld:call("pillar.get", { "site" }))
    local none = ld:call("pillar.items", {}, m({ { "pillarenv", "nowhere" } }))
    assert.same({}, plain(none))
    local v, err = ld:call("pillar.items", {}, m({ { "pillar", "text" } }))
    assert.is_nil(v)
    assert.equal("Pillar data must be a dictionary", err)
  end)

  it("pillar.get with pillarenv reads that environment's pillar", function()
    local o = { file_client = "local", id = "x", pillar_roots = {
      base = data.array({ fixtures .. "envs/base" }),
      dev = data.array({ fixtures .. "envs/dev" }) } }
    local ld = loader.new(o, { grains = debian, pillar = loader.environment(o).pillar })
    assert.equal("dev", ld:call("pillar.get", { "where" }))
    assert.equal("base", ld:call("pillar.get", { "where" }, m({ { "pillarenv", "base" } })))
  end)

  it("pillar.obfuscate shows the shape with Python type names", function()
    local ld = loader.new({}, { pillar = m({ { "a", m({ { "s", "x" }, { "i", 1 }, { "f", 1.5 },
      { "b", true }, { "n", null } }) }, { "l", data.array({ "x" }) } }) })
    assert.same({ a = { s = "<str>", i = "<int>", f = "<float>", b = "<bool>", n = "<NoneType>" },
      l = { "<str>" } }, plain(ld:call("pillar.obfuscate")))
  end)

  it("pillar.file_exists looks in pillar_roots", function()
    local ld = local_loader("basic")
    assert.is_true(ld:call("pillar.file_exists", { "web/init.sls" }))
    assert.is_false(ld:call("pillar.file_exists", { "web/none.sls" }))
    assert.is_false(ld:call("pillar.file_exists", { "web/init.sls", "dev" }))
    local _, err = loader.new({}, {}):call("pillar.file_exists", { "x" })
    assert.equal("No pillar_roots found. Are you running this on the master?", err)
  end)

  it("pillar.filter_by picks by a pillar value", function()
    local ld = loader.new({}, { pillar = m({ { "role", "web" } }) })
    local lookup = m({ { "db*", 1 }, { "w?b", 2 }, { "default", 3 } })
    assert.equal(2, ld:call("pillar.filter_by", { lookup, "role" }))
    assert.equal(3, ld:call("pillar.filter_by", { lookup, "nothing" }))
  end)

  it("saltutil.refresh_pillar recompiles into the table modules hold", function()
    local dir = assert(fs.tempdir("brine-pillar"))
    assert(fs.write_atomic(dir .. "/top.sls", "base:\n  '*':\n    - v\n"))
    assert(fs.write_atomic(dir .. "/v.sls", "v: 1\n"))
    local o = { pillar_roots = { base = { dir } }, file_client = "local", id = "x" }
    local ld = loader.new(o, { grains = debian, pillar = loader.environment(o).pillar })
    local held = ld:pillar()
    assert.equal(1, held.v)
    assert(fs.write_atomic(dir .. "/v.sls", "v: 2\n"))
    assert.is_true(ld:call("saltutil.refresh_pillar"))
    assert.equal(2, held.v)
    assert.equal(2, ld:call("pillar.get", { "v" }))
    assert(fs.remove(dir, true))
    local remote = loader.new({ file_client = "remote" }, {})
    assert.is_false(remote:call("saltutil.refresh_pillar"))
  end)

  it("subdict_match tries every split and compares as Salt does", function()
    local g = m({ { "a", m({ { "b", "c:d" } }) }, { "flag", true },
      { "l", data.array({ "x", m({ { "k", "v" } }) }) } })
    assert.is_true(pillar.subdict_match(g, "a:b:c:d"))
    assert.is_true(pillar.subdict_match(g, "flag:True"))
    assert.is_true(pillar.subdict_match(g, "l:X"))
    assert.is_true(pillar.subdict_match(g, "l:k:v"))
    assert.is_true(pillar.subdict_match(g, "a:b:c.*", ":", "pcre"))
    assert.is_false(pillar.subdict_match(g, "a:b:c", ":", "exact"))
    assert.is_false(pillar.subdict_match(g, "a"))
  end)
end)
