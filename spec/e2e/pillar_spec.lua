-- Pillar end to end: `brine call --local` compiles the pillar tree of its
-- configuration (pillar_roots, grains from the `grains` option) and answers
-- pillar.items and pillar.get as salt-call does; a broken SLS shows under
-- `_errors` with its file and line.
local fs = require("brine.fs")

local bin = os.getenv("BRINE_BIN")
local source = os.getenv("BRINE_SOURCE_DIR") or "."

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

describe("brine call --local and pillar", function()
  if not bin then
    pending("BRINE_BIN is not set: run through ctest")
    return
  end

  local dir

  -- Runs brine call with words; returns stdout, stderr, exit status.
  local function call(...)
    local words = { sh_quote(bin), "call", "--local", "--no-color", "-c", sh_quote(dir) }
    for i = 1, select("#", ...) do
      words[#words + 1] = sh_quote(select(i, ...))
    end
    local p = io.popen(table.concat(words, " ") .. " 2>" .. sh_quote(dir .. "/stderr"), "r")
    local out = p:read("a")
    local _, _, status = p:close()
    return out, assert(fs.read(dir .. "/stderr")), status
  end

  local function configure(tree)
    assert(fs.write_atomic(dir .. "/minion", table.concat({
      "id: web-1",
      "cachedir: " .. dir .. "/cache",
      "pillar_roots:",
      "  base: [" .. tree .. "]",
      "grains:",
      "  os: Debian",
      "  os_family: Debian",
      "  role: db",
      "",
    }, "\n")))
  end

  before_each(function()
    dir = assert(fs.tempdir("brine-pillar-e2e"))
    configure(source .. "/spec/fixtures/pillar/basic")
  end)

  after_each(function()
    assert(fs.remove(dir, true))
  end)

  it("pillar.items prints the compiled pillar", function()
    local out, err, status = call("--out", "json", "pillar.items")
    assert.equal("", err)
    assert.equal(0, status)
    local p = require("brine.json").decode(out)["local"]
    assert.equal("web", p.app.name)
    assert.equal("web-1", p.app.host)
    assert.equal("apt", p.pkg_manager)
    assert.equal("postgres", p.db.settings.engine)
    assert.is_nil(p._errors)
  end)

  it("pillar.get walks a:b", function()
    local out, _, status = call("pillar.get", "app:name")
    assert.equal(0, status)
    assert.equal("local:\n    web\n", out)
    out = call("--out", "json", "pillar.get", "db:settings:port")
    assert.matches('"local": 5432', out)
  end)

  it("pillar.items pillar='{...}' merges over the compiled pillar", function()
    local out = call("--out", "json", "pillar.items", 'pillar={"site": "cli"}')
    assert.equal("cli", require("brine.json").decode(out)["local"].site)
  end)

  it("a broken SLS shows under _errors with its file and line", function()
    configure(source .. "/spec/fixtures/pillar/broken")
    local out, _, status = call("--out", "json", "pillar.items")
    assert.equal(0, status)
    local p = require("brine.json").decode(out)["local"]
    assert.equal("value", p.good)
    assert.matches("bad_yaml%.sls:4:", p._errors[1])
    assert.matches("bad_jinja%.sls, line 2", p._errors[2])
  end)
end)
