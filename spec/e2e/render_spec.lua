-- `brine render` end to end: the real binary renders files through the
-- yaml, json, text and lua renderers, honours shebangs and user renderers,
-- and fails with a non-zero exit and a message naming the file and line.
local BIN = os.getenv("BRINE_BIN")
local SOURCE = os.getenv("BRINE_SOURCE_DIR") or "."
local FIXTURES = SOURCE .. "/spec/fixtures/templates"

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local dir

-- Runs `brine render ARGS` in the temporary folder; returns stdout,
-- stderr and the exit status.
local function render(args, stdin)
  local cmd = "cd " .. sh_quote(dir) .. " && "
  if stdin then
    spit(dir .. "/stdin.txt", stdin)
    cmd = cmd .. "exec <stdin.txt && "
  end
  cmd = cmd .. sh_quote(BIN) .. " render " .. args .. " >out.txt 2>err.txt; echo $?"
  local p = io.popen(cmd)
  local rc = tonumber(p:read("a"))
  p:close()
  return slurp(dir .. "/out.txt"), slurp(dir .. "/err.txt"), rc
end

local have_json = pcall(require, "brine.json")

describe("brine render", function()
  if not BIN then
    it("needs BRINE_BIN", function()
      pending("BRINE_BIN is not set; end-to-end specs skipped")
    end)
    return
  end

  setup(function()
    local p = io.popen("mktemp -d")
    dir = p:read("l")
    p:close()
    os.execute("mkdir -p " .. sh_quote(dir .. "/_renderers"))
  end)

  teardown(function()
    os.execute("rm -rf " .. sh_quote(dir))
  end)

  it("prints YAML data as JSON, order and number kinds kept", function()
    spit(dir .. "/data.yaml", "b: 1\na: [x, 2.0, 0755, yes, ~]\nc: {}\nd: []\n")
    local out, err, rc = render("--renderer yaml data.yaml")
    assert.equal("", err)
    assert.equal(0, rc)
    assert.equal('{\n  "b": 1,\n  "a": [\n    "x",\n    2.0,\n    755,\n    true,\n    null\n'
      .. '  ],\n  "c": {},\n  "d": []\n}\n', out)
  end)

  it("follows a #!yaml shebang and gives {} for an empty SLS", function()
    spit(dir .. "/web.sls", "#!yaml\nnginx:\n  pkg.installed: []\n")
    local out, _, rc = render("web.sls")
    assert.equal(0, rc)
    assert.equal('{\n  "nginx": {\n    "pkg.installed": []\n  }\n}\n', out)
    spit(dir .. "/empty.sls", "#!yaml\n# nothing here\n")
    out, _, rc = render("empty.sls")
    assert.equal(0, rc)
    assert.equal("{}\n", out)
  end)

  it("prints what a YAML file holds: null when empty, a lone string as JSON", function()
    spit(dir .. "/empty.yaml", "# only a comment\n")
    local out, _, rc = render("--renderer yaml empty.yaml")
    assert.equal(0, rc)
    assert.equal("null\n", out)
    spit(dir .. "/scalar.yaml", "just a string\n")
    out, _, rc = render("--renderer yaml scalar.yaml")
    assert.equal(0, rc)
    assert.equal('"just a string"\n', out)
  end)

  it("writes infinities, NaN and bytes in the corpus's JSON form", function()
    spit(dir .. "/odd.yaml", "- .inf\n- -.inf\n- .nan\n- !!binary /w==\n- !!binary aGk=\n")
    local out, _, rc = render("--renderer yaml odd.yaml")
    assert.equal(0, rc)
    assert.equal('[\n  {\n    "$float": "inf"\n  },\n  {\n    "$float": "-inf"\n  },\n'
      .. '  {\n    "$float": "nan"\n  },\n  {\n    "$bytes": "/w=="\n  },\n'
      .. '  {\n    "$bytes": "aGk="\n  }\n]\n', out)
  end)

  it("prints text exactly as rendered, with no newline added", function()
    spit(dir .. "/motd", "#!text\nhello\nworld")
    local out, _, rc = render("motd")
    assert.equal(0, rc)
    assert.equal("hello\nworld", out)
    out, _, rc = render("-r text -", "from stdin\n")
    assert.equal(0, rc)
    assert.equal("from stdin\n", out)
  end)

  it("runs #!lua SLS files: a returned table or run()", function()
    spit(dir .. "/a.sls", "#!lua\nreturn data.map({ { 'z', { n = sls } }, { 'a', saltenv } })\n")
    local out, err, rc = render("a.sls")
    assert.equal("", err)
    assert.equal(0, rc)
    assert.equal('{\n  "z": {\n    "n": "a"\n  },\n  "a": "base"\n}\n', out)
    spit(dir .. "/b.sls", "#!lua\nfunction run()\n  return { pi = 3.5, io = type(io) }\nend\n")
    local _
    out, _, rc = render("b.sls")
    assert.equal(0, rc)
    assert.equal('{\n  "io": "nil",\n  "pi": 3.5\n}\n', out)
  end)

  it("uses a renderer from <root>/_renderers before the built-in one", function()
    spit(dir .. "/_renderers/shout.lua",
      "return { render = function(input) return input:upper() end }\n")
    spit(dir .. "/_renderers/text.lua",
      "return { render = function(input) return '[' .. input .. ']' end }\n")
    spit(dir .. "/note.txt", "quiet words")
    local out, _, rc = render("-r 'text|shout' note.txt")
    assert.equal(0, rc)
    assert.equal("[QUIET WORDS]", out)
  end)

  it("renders #!json when brine.json is there, else says it is missing", function()
    spit(dir .. "/j.sls", '#!json\n{"a": {"test.nop": [{"x": 4}]}}\n')
    local out, err, rc = render("j.sls")
    if have_json then
      assert.equal(0, rc)
      assert.equal('{\n  "a": {\n    "test.nop": [\n      {\n        "x": 4\n      }\n'
        .. '    ]\n  }\n}\n', out)
    else
      assert.equal(1, rc)
      assert.matches("j%.sls: the json renderer needs the brine%.json module", err)
    end
  end)

  it("fails with the file and line of a YAML error, counting the shebang", function()
    spit(dir .. "/bad.sls", "#!yaml\na: 1\n  b: 2\n")
    local out, err, rc = render("bad.sls")
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("^brine render: bad%.sls:3:4: mapping values are not allowed", err)
    spit(dir .. "/dup.yaml", "a: 1\na: 2\n")
    local _
    _, err, rc = render("-r yaml dup.yaml")
    assert.equal(1, rc)
    assert.matches("dup%.yaml:2:1: found conflicting ID 'a'", err)
  end)

  it("fails with the file and line of a Lua error", function()
    spit(dir .. "/boom.sls", "#!lua\nlocal x = 1\nerror('no pillar for ' .. x)\n")
    local _, err, rc = render("boom.sls")
    assert.equal(1, rc)
    assert.matches("boom%.sls:3: no pillar for 1", err)
    spit(dir .. "/syntax.sls", "#!lua\nreturn {\n")
    _, err, rc = render("syntax.sls")
    assert.equal(1, rc)
    assert.matches("syntax%.sls:%d+:", err)
  end)

  it("reports unknown renderers, missing files and bad usage", function()
    spit(dir .. "/x.txt", "#!nosuch\nx")
    local _, err, rc = render("x.txt")
    assert.equal(1, rc)
    assert.matches("x%.txt: the renderer 'nosuch' is not available", err)
    _, err, rc = render("missing.sls")
    assert.equal(1, rc)
    assert.matches("missing%.sls", err)
    _, err, rc = render("")
    assert.equal(2, rc)
    assert.matches("FILE is missing", err)
    _, err, rc = render("--bogus x")
    assert.equal(2, rc)
    assert.matches("unknown option", err)
    local out
    out, _, rc = render("--help")
    assert.equal(0, rc)
    assert.matches("^Usage: brine render", out)
  end)

  describe("with templates", function()
    -- Runs `brine render` in the fixture tree (spec/fixtures/templates).
    local function in_fixtures(args)
      local p = io.popen("cd " .. sh_quote(FIXTURES) .. " && " .. sh_quote(BIN) .. " render "
        .. args .. " 2>" .. sh_quote(dir .. "/err.txt") .. "; echo \"rc=$?\"")
      local out = p:read("a")
      p:close()
      local rc = tonumber(out:match("rc=(%d+)\n$"))
      return out:gsub("rc=%d+\n$", ""), slurp(dir .. "/err.txt"), rc
    end

    it("renders an SLS with --context: grains, pillar, salt functions, variables", function()
      local out, err, rc = in_fixtures("--root . --context context.json web/init.sls")
      assert.equal("", err)
      assert.equal(0, rc)
      local json = require("brine.json")
      local got = json.decode(out)
      -- grains.filter_by picked Debian; pillar.get gave the port
      assert.equal('[{"name": "apache2"}, {"port": 8080}]',
        json.encode(got.web["service.running"]))
      -- the path variables of SLS web (web/init.sls) and a plain variable
      assert.equal('[{"name": "/etc/sites/b.example"}, {"owner": "ops"}, {"sls": "web"}, '
        .. '{"slspath": "web"}, {"tplfile": "web/init.sls"}]',
        json.encode(got["site-2"]["file.managed"]))
    end)

    it("resolves the same file the same way from another folder", function()
      local a = in_fixtures("--root . --context context.json web/init.sls")
      local p = io.popen("cd " .. sh_quote(FIXTURES .. "/web") .. " && " .. sh_quote(BIN)
        .. " render --root .. --context ../context.json init.sls 2>&1")
      local b = p:read("a")
      p:close()
      assert.equal(a, b)
    end)

    it("prints a text template exactly, salt functions and all", function()
      local out, err, rc = in_fixtures("--context context.json web/motd.jinja")
      assert.equal("", err)
      assert.equal(0, rc)
      assert.equal("Welcome to web-1 (Debian).\n  serves a.example\n  serves b.example\n", out)
    end)

    it("follows a #!jinja|json shebang, keeping floats apart from integers", function()
      local out, _, rc = in_fixtures("--context context.json web/data.sls")
      assert.equal(0, rc)
      assert.equal('{\n  "id": "web-1",\n  "ratio": 1.5,\n  "count": 3\n}\n', out)
    end)

    it("names the macro's file and line and the caller's, printing nothing", function()
      local out, err, rc = in_fixtures("--root . broken/outer.sls")
      assert.equal(1, rc)
      assert.equal("", out)
      assert.matches("UndefinedError: 'int object' has no attribute 'nope' "
        .. "%(broken/macros%.jinja, line 3%)\n    {{ n%.nope }}\n"
        .. "  from broken/outer%.sls, line 3: second: {{ row%(2%) }}", err)
    end)

    it("offers only the functions a context's __salt__ lists, as the corpus does", function()
      spit(dir .. "/only.json", '{"__salt__": ["test.true"], "pillar": {"a": 1}}')
      spit(dir .. "/true.j", "{{ salt['test.true']() }}\n")
      spit(dir .. "/pillar.j", "{{ salt['pillar.get']('a') }}\n")
      local out, err, rc = in_fixtures("--context " .. sh_quote(dir .. "/only.json")
        .. " - < " .. sh_quote(dir .. "/true.j"))
      assert.equal("", err)
      assert.equal(0, rc)
      assert.equal("True\n", out)
      out, err, rc = in_fixtures("--context " .. sh_quote(dir .. "/only.json")
        .. " - < " .. sh_quote(dir .. "/pillar.j"))
      assert.equal(1, rc)
      assert.equal("", out)
      assert.matches("UndefinedError: .* has no attribute 'pillar.get' %(<stdin>, line 1%)", err)
    end)

    it("gives templates this machine's grains when there is no --context", function()
      local grains = require("brine.grains").core()
      spit(dir .. "/host.j", "{{ grains['kernel'] }} {{ grains.num_cpus }}"
        .. " {{ salt['grains.get']('os') }}\n")
      local out, err, rc = render(sh_quote(dir .. "/host.j"))
      assert.equal("", err)
      assert.equal(0, rc)
      assert.equal(string.format("%s %d %s\n", grains.kernel, grains.num_cpus, grains.os), out)
    end)

    it("needs --root for includes outside the file's folder", function()
      local _, err, rc = in_fixtures("broken/outer.sls")
      assert.equal(1, rc)
      assert.matches("TemplateNotFound: broken/macros%.jinja %(broken/outer%.sls, line 1%)", err)
    end)
  end)
end)
