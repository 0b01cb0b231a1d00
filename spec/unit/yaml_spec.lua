-- brine.yaml: scalar resolution as Salt's loader does it, order and kinds
-- of the data it builds, errors with their positions, bounds on hostile
-- input, and dump's text as PyYAML's safe_dump writes it (the expected
-- texts below were produced by PyYAML 6 with SafeDumper).
local yaml = require("brine.yaml")
local data = require("brine.data")

local function load1(text)
  local v, err = yaml.load(text)
  assert(err == nil, err)
  return v
end

-- The value of a one-item list document "- TEXT".
local function scalar(text)
  return load1("- " .. text)[1]
end

describe("brine.yaml.load scalars", function()
  it("resolves booleans as YAML 1.1 in three cases only", function()
    for _, t in ipairs({ "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE" }) do
      assert.is_true(scalar(t), t)
    end
    for _, t in ipairs({ "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE" }) do
      assert.is_false(scalar(t), t)
    end
    for _, t in ipairs({ "y", "n", "yEs", "tRUE", "'yes'", '"on"' }) do
      assert.equal("string", data.kind(scalar(t)), t)
    end
  end)

  it("resolves null from ~, null forms and empty values", function()
    for _, t in ipairs({ "~", "null", "Null", "NULL", "" }) do
      assert.equal(data.null, scalar(t), t)
    end
    assert.equal("nULL", scalar("nULL"))
    assert.equal("null", scalar("'null'"))
  end)

  it("reads integers the way Salt does", function()
    local cases = {
      { "42", 42 }, { "-17", -17 }, { "+5", 5 }, { "0", 0 }, { "0x1F", 31 }, { "-0x10", -16 },
      { "0b101", 5 }, { "1_000", 1000 }, { "1:30", 90 }, { "190:20:30", 685230 },
      { "0755", 755 }, { "0644", 644 }, { "007", 7 }, { "00", 0 }, { "-010", -8 }, { "+010", 8 },
      { "9223372036854775807", math.maxinteger }, { "-9223372036854775808", math.mininteger },
    }
    for _, c in ipairs(cases) do
      local v = scalar(c[1])
      assert.equal("integer", math.type(v), c[1])
      assert.equal(c[2], v, c[1])
    end
    for _, t in ipairs({ "08", "0128", "0o17", "_10", "0x", "1,000", "1e3", "0:30" }) do
      assert.equal(t, scalar(t), t)
    end
  end)

  it("reads integers beyond 64 bits exactly, as big integers", function()
    assert.equal("bigint", require("brine.data").kind(scalar("12345678901234567890")))
    assert.equal("12345678901234567890", tostring(scalar("12345678901234567890")))
  end)

  it("reads floats, keeping 3.10 a float and 1e3 a string", function()
    local cases = { { "1.5", 1.5 }, { "3.10", 3.1 }, { "3.", 3.0 }, { ".5", 0.5 },
      { "-0.25", -0.25 },
      { "1.0e+3", 1000.0 }, { "1_000.5", 1000.5 }, { "1:30.5", 90.5 }, { ".inf", math.huge },
      { "-.Inf", -math.huge }, { "+.INF", math.huge } }
    for _, c in ipairs(cases) do
      local v = scalar(c[1])
      assert.equal("float", math.type(v), c[1])
      assert.equal(c[2], v, c[1])
    end
    local nan = scalar(".NaN")
    assert.is_true(nan ~= nan)
    for _, t in ipairs({ "1e3", "1.0e5", "-.5", "inf", ".infinity", "1.2.3" }) do
      assert.equal(t, scalar(t), t)
    end
  end)

  it("keeps timestamps, quoted scalars and plain text as strings", function()
    assert.equal("2023-06-01", scalar("2023-06-01"))
    assert.equal("2001-12-14 21:59:43.10 -5", scalar("2001-12-14 21:59:43.10 -5"))
    assert.equal("0644", scalar("'0644'"))
    assert.equal("tab\there", scalar('"tab\\there"'))
    assert.equal("it's", scalar("'it''s'"))
    assert.equal("a folded line", load1("k: a\n  folded\n  line\n").k)
  end)

  it("honours explicit tags", function()
    local v = load1("a: !!str 123\nb: !!int '0755'\nc: !!float '1'\nd: !!bool 'on'\n"
      .. "e: !!null x\nf: !!binary aGVsbG8=\ng: !!timestamp 2023-06-01\nh: ! 12\n")
    assert.equal("123", v.a)
    assert.equal(755, v.b)
    assert.equal(1.0, v.c)
    assert.equal("float", math.type(v.c))
    assert.is_true(v.d)
    assert.equal(data.null, v.e)
    -- a byte string, as Python's bytes: YAML writes it back as !!binary
    assert.equal("bytes", data.kind(v.f))
    assert.equal("hello", v.f.s)
    assert.equal("f: !!binary |\n  aGVsbG8=\n", yaml.dump(data.map({ { "f", v.f } })))
    assert.equal("2023-06-01", v.g)
    assert.equal(12, v.h)
  end)

  it("builds !!omap and !!map mappings, and !!pairs as tuples", function()
    local v = load1("a: !!omap {z: 1, a: 2}\nb: !!pairs [x: 1, y: 2]\n")
    assert.same({ "z", "a" }, data.keys(v.a))
    assert.is_true(data.is_tuple(v.b[1]))
    assert.same({ "x", 1 }, { v.b[1][1], v.b[1][2] })
  end)
end)

describe("brine.yaml.load structure", function()
  it("keeps mapping order and tells arrays from maps", function()
    local v = load1("zeta: 1\nalpha: []\nmid: {}\nlist: [a, b]\n")
    assert.same({ "zeta", "alpha", "mid", "list" }, data.keys(v))
    assert.equal("array", data.kind(v.alpha))
    assert.equal("map", data.kind(v.mid))
    assert.same({ "a", "b" }, { v.list[1], v.list[2] })
  end)

  it("keeps null values as keys with data.null", function()
    local v = load1("pkg.installed:\nother: 1\n")
    assert.equal(data.null, v["pkg.installed"])
    assert.same({ "pkg.installed", "other" }, data.keys(v))
  end)

  it("loads non-string keys as their values", function()
    local v = load1("2: int\ntrue: bool\n~: none\n2.5: float\n")
    assert.equal("int", v[2])
    assert.equal("bool", v[true])
    assert.equal("none", v[data.null])
    assert.equal("float", v[2.5])
  end)

  it("gives data.null for an empty stream or comments only", function()
    assert.equal(data.null, load1(""))
    assert.equal(data.null, load1("# nothing\n"))
    assert.equal(data.null, load1("---\n"))
    assert.equal("just text", load1("just text"))
  end)

  it("shares the value of an anchor between its aliases", function()
    local v = load1("a: &x {k: v}\nb: *x\nc: &s text\nd: *s\n")
    assert.equal(v.a, v.b)
    assert.equal("text", v.d)
  end)

  it("puts merged keys first and lets the mapping's own keys win", function()
    local v = load1("d: &d {m: 1, n: 2}\nitem:\n  z: 0\n  <<: *d\n  n: 9\n")
    assert.same({ "m", "z", "n" }, data.keys(v.item))
    assert.equal(9, v.item.n)
    local l = load1("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n")
    assert.same({ "y", "x", "z" }, data.keys(l.c))
  end)

  it("skips a byte order mark and reads CRLF line ends", function()
    assert.equal(1, load1("\239\187\191a: 1\r\nb: 2\r\n").a)
    assert.equal(2, load1("a: 1\r\nb: 2\r\n").b)
  end)
end)

describe("brine.yaml.load errors", function()
  local function fails(text, line, column, pattern)
    local v, err, info = yaml.load(text, { name = "f.sls" })
    assert.is_nil(v)
    assert.equal("string", type(err))
    assert.matches("^f%.sls:" .. line .. ":" .. column .. ": ", err)
    assert.equal(line, info.line)
    assert.equal(column, info.column)
    if pattern then
      assert.matches(pattern, err)
    end
    return err, info
  end

  it("names the file, line and column, and fills the info table", function()
    local err, info = fails("a: 1\nb: 2\na: 3\n", 3, 1, "conflicting ID 'a'")
    assert.equal("f.sls", info.name)
    assert.matches("found conflicting ID", info.problem)
    assert.matches("while constructing a mapping, line 1, column 1", info.context)
    assert.matches("while constructing a mapping", err)
    local _, e2 = yaml.load("a: [")
    assert.matches("^<string>:2:1: ", e2)
  end)

  it("rejects keys that collide after resolution", function()
    fails("yes: 1\ntrue: 2\n", 2, 1, "'True'")
    fails("null: a\n~: b\n", 2, 1, "'None'")
    fails("1: a\n0x1: b\n", 2, 1, "'1'")
    fails("1: a\ntrue: b\n", 2, 1, "'True'")
  end)

  it("reports scanner and parser errors with libyaml's positions", function()
    fails("a: `cmd`\n", 1, 4, "cannot start any token")
    fails("list:\n\t- a\n", 2, 1, "cannot start any token")
    fails("a:\n  b: 1\n c: 2\n", 3, 2, "did not find expected key")
    fails("a: b: c\n", 1, 5, "mapping values are not allowed")
    fails("a: \"open\n", 2, 1, "unexpected end of stream")
  end)

  it("rejects unhashable keys, unknown tags and bad merges", function()
    fails("a: {{ var }}\n", 1, 5, "unacceptable key")
    fails("a: !!python/tuple [1, 2]\n", 1, 4, "python/tuple")
    fails("a: !local x\n", 1, 4, "'!local'")
    fails("a: !!omap\n  - b: 1\n", 1, 4, "expected a mapping node, but found sequence")
    fails("s: &s x\nm:\n  <<: *s\n", 1, 4, "for merging, but found scalar")
    fails("a: !!int abc\n", 1, 4, "integer")
    fails("a: !!bool maybe\n", 1, 4, "boolean")
    fails("a: !!binary aGk\n", 1, 4, "base64")
    fails("a: =\n", 1, 4, "tag:yaml.org,2002:value")
  end)

  it("rejects more than one document, undefined and duplicate anchors", function()
    fails("a: 1\n---\nb: 2\n", 2, 1, "another document")
    fails("a: *nope\n", 1, 4, "undefined alias")
    fails("a: &x 1\nb: &x 2\n", 2, 4, "duplicate anchor")
    fails("a: &x [*x]\n", 1, 8, "recursive alias")
  end)

  it("rejects invalid UTF-8 and control characters", function()
    local _, err = yaml.load("a: \255\n")
    assert.matches("^<string>:1:4: .*UTF%-8", err)
    local _, err2 = yaml.load("a: \"\0\"\n")
    assert.matches("^<string>:1:%d+: .*control characters", err2)
  end)

  it("bounds nesting depth", function()
    local deep = string.rep("[", 10000) .. string.rep("]", 10000)
    local v, err = yaml.load(deep)
    assert.is_nil(v)
    assert.matches("nested deeper than 512", err)
    assert.is_not_nil(yaml.load(string.rep("[", 500) .. string.rep("]", 500)))
    local block = {}
    for i = 1, 600 do
      block[i] = string.rep(" ", i - 1) .. "k:"
    end
    assert.matches("nested deeper", select(2, yaml.load(table.concat(block, "\n"))))
  end)

  it("refuses documents that aliases would blow up (billion laughs)", function()
    local lines = { "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]" }
    for i = 2, 9 do
      local prev = string.char(96 + i - 1)
      local name = string.char(96 + i)
      lines[i] = string.format("%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]", name, name,
        prev, prev, prev, prev, prev, prev, prev, prev, prev)
    end
    local t0 = os.clock()
    local v, err = yaml.load(table.concat(lines, "\n"))
    assert.is_nil(v)
    assert.matches("too many nodes", err)
    assert.is_true(os.clock() - t0 < 1)
  end)

  it("merges big mappings in linear time", function()
    local lines = { "base: &b" }
    for i = 1, 20000 do
      lines[#lines + 1] = "  k" .. i .. ": " .. i
    end
    lines[#lines + 1] = "item:"
    lines[#lines + 1] = "  <<: *b"
    for i = 10001, 30000 do
      lines[#lines + 1] = "  k" .. i .. ": own"
    end
    local t0 = os.clock()
    local v = load1(table.concat(lines, "\n"))
    assert.is_true(os.clock() - t0 < 2)
    assert.equal(30000, data.count(v.item))
    assert.equal(1, v.item.k1)
    assert.equal("own", v.item.k15000)
    assert.equal("k1", data.keys(v.item)[1])
  end)

  it("raises on misuse", function()
    assert.has_error(function() yaml.load(nil) end)
    assert.has_error(function() yaml.load("a", "name") end)
  end)
end)

describe("brine.yaml.dump", function()
  local function m(pairs_)
    return data.map(pairs_)
  end

  it("writes block style as Salt's yaml outputter does", function()
    local v = m({ { "name", "web" }, { "mode", "0644" }, { "on", "yes" }, { "empty", "" },
      { "none", data.null }, { "n", 3 }, { "f", 1e16 }, { "g", 0.1 },
      { "list", data.array({ 1, "two", m({ { "x", "y" } }) }) },
      { "nested", m({ { "b", 1 }, { "a", 2 } }) } })
    assert.equal("name: web\nmode: '0644'\n'on': 'yes'\nempty: ''\nnone: null\nn: 3\n"
      .. "f: 1.0e+16\ng: 0.1\nlist:\n- 1\n- two\n- x: y\nnested:\n  b: 1\n  a: 2\n", yaml.dump(v))
  end)

  it("writes one flow line, sorted keys, indent, width and auto flow", function()
    local v = m({ { "b", m({ { "y", 1 }, { "x", data.array({ 1, 2 }) } }) }, { "a", "z" } })
    assert.equal("{b: {y: 1, x: [1, 2]}, a: z}\n", yaml.dump(v, { flow = true }))
    assert.equal("a: z\nb:\n  x:\n  - 1\n  - 2\n  y: 1\n", yaml.dump(v, { sort_keys = true }))
    assert.equal("a:\n    b:\n    - 1\n    -   c: 2\n",
      yaml.dump(m({ { "a", m({ { "b", data.array({ 1, m({ { "c", 2 } }) }) } }) } }),
        { indent = 4 }))
    assert.equal("s: 'word word word word word word word word\n  word word word word word word "
      .. "word word\n  word word word word '\n",
      yaml.dump(m({ { "s", string.rep("word ", 20) } }), { width = 40 }))
    assert.equal("a: [1, 2]\nb: {c: d}\n",
      yaml.dump(m({ { "a", data.array({ 1, 2 }) }, { "b", m({ { "c", "d" } }) } }),
        { flow = "auto" }))
  end)

  it("writes floats as Python's repr and escapes when asked", function()
    local nan = 0 / 0
    assert.equal("- 1.0\n- 3.5e-07\n- .nan\n- -.inf\n- 4611686018427387904\n- -0.0\n"
      .. "- 123456789.123\n",
      yaml.dump(data.array({ 1.0, 3.5e-07, nan, -math.huge, 1 << 62, -0.0, 123456789.123 })))
    assert.equal('u: "h\\xE9llo"\n', yaml.dump(m({ { "u", "héllo" } }), { allow_unicode = false }))
    assert.equal("u: héllo\n", yaml.dump(m({ { "u", "héllo" } })))
  end)

  it("ends a plain root scalar with '...', and handles the other roots", function()
    assert.equal("abc\n...\n", yaml.dump("abc"))
    assert.equal("null\n...\n", yaml.dump(data.null))
    assert.equal("'yes'\n", yaml.dump("yes"))
    assert.equal("'multi\n\n  line\n\n  '\n", yaml.dump("multi\nline\n"))
    assert.equal("[]\n", yaml.dump(data.array()))
    assert.equal("{}\n", yaml.dump(data.map()))
    assert.equal("---\na: 1\n", yaml.dump(m({ { "a", 1 } }), { explicit_start = true }))
  end)

  it("writes shared tables with anchors and bytes as !!binary", function()
    local x = data.array({ 1 })
    assert.equal("a: &id001\n- 1\nb: *id001\n", yaml.dump(m({ { "a", x }, { "b", x } })))
    local r = data.array({ 1 })
    r[2] = r
    assert.equal("&id001\n- 1\n- *id001\n", yaml.dump(r))
    assert.equal("!!binary |\n  //4=\n", yaml.dump("\255\254"))
  end)

  it("round-trips what it writes", function()
    local v = m({ { "s", "yes" }, { "i", 10 }, { "f", 2.5 }, { "z", "0755" }, { "e", "" },
      { "n", data.null }, { "t", "2023-01-01" },
      { "l", data.array({ "a: b", "- c", "#x", " p " }) },
      { "u", "日本" }, { "ml", "one\ntwo\n" }, { "k", "1e3" } })
    for _, opts in ipairs({ {}, { flow = true }, { indent = 4 }, { width = 20 } }) do
      local back = load1(yaml.dump(v, opts))
      for k, want in pairs(v) do
        assert.same(want, back[k], k)
      end
      assert.same(data.keys(v), data.keys(back))
    end
  end)

  it("raises on values YAML cannot represent", function()
    assert.has_error(function() yaml.dump(print) end)
    assert.has_error(function() yaml.dump({ f = print }) end)
    assert.has_error(function() yaml.dump(1, { flow = 3 }) end)
  end)
end)

describe("conformance helper", function()
  local conformance = require("conformance")

  it("writes loaded data in the corpus's JSON form", function()
    local v = assert(yaml.load("1: a\n2: [1.0, 1.0e+16, .inf, ~, yes]\n~: x\n"
      .. "2.5: \"\\u00e9\\n\"\n"))
    assert.equal('{"1":"a","2":[1.0,1e+16,{"$float":"inf"},null,true],"null":"x","2.5":"é\\n"}',
      conformance.to_corpus_json(v))
  end)

  it("reads expected.json into the same canonical text", function()
    assert.equal('{"1":"a","b":[1.0,1e+16,{"$float":"nan"},{"$bytes":"aGVsbG8="},-5,"\\u0007"]}',
      conformance.canonical_json('{ "1": "a", "b": [1.0, 1E16, {"$float": "nan"},'
        .. ' {"$bytes": "aGVsbG8="}, -5, "\\u0007"] }'))
    assert.equal("12345678901234567890", conformance.canonical_json("12345678901234567890"))
  end)
end)
