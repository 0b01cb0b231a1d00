-- brine.json: decoding into the data model and encoding exactly as
-- Python's json.dumps does. Expected texts below were written by
-- Python 3's json module for the same values.
local json = require("brine.json")
local data = require("brine.data")

-- The nested sample: an ordered map, as Python 3.7+ dicts are.
local SAMPLE_TEXT = '{"name": "web-3", "roles": ["db", "cache"], "empty_list": [], '
  .. '"empty_map": {}, "port": 8080, "load": 0.25, "ratio": 1.0, "none": null, '
  .. '"nested": {"ok": true, "off": false, "deep": [1, [2.5, {"k": "v\\u00e9"}]]}}'

local SAMPLE_INDENT4 = [[
{
    "name": "web-3",
    "roles": [
        "db",
        "cache"
    ],
    "empty_list": [],
    "empty_map": {},
    "port": 8080,
    "load": 0.25,
    "ratio": 1.0,
    "none": null,
    "nested": {
        "ok": true,
        "off": false,
        "deep": [
            1,
            [
                2.5,
                {
                    "k": "v\u00e9"
                }
            ]
        ]
    }
}]]

local SAMPLE_INDENT2_SORTED_UTF8 = [[
{
  "empty_list": [],
  "empty_map": {},
  "load": 0.25,
  "name": "web-3",
  "nested": {
    "deep": [
      1,
      [
        2.5,
        {
          "k": "vé"
        }
      ]
    ],
    "off": false,
    "ok": true
  },
  "none": null,
  "port": 8080,
  "ratio": 1.0,
  "roles": [
    "db",
    "cache"
  ]
}]]

local function decode_ok(text, opts)
  local v, err = json.decode(text, opts)
  assert.is_nil(err)
  return v
end

describe("brine.json.decode", function()
  it("keeps object order and tells empty arrays from empty objects", function()
    local v = decode_ok(SAMPLE_TEXT)
    assert.is_true(data.is_map(v))
    assert.same({ "name", "roles", "empty_list", "empty_map", "port", "load", "ratio",
      "none", "nested" }, data.keys(v))
    assert.equal("array", data.kind(v.empty_list))
    assert.equal("map", data.kind(v.empty_map))
    assert.same({ "db", "cache" }, { v.roles[1], v.roles[2] })
    assert.equal("vé", v.nested.deep[2][2].k)
  end)

  it("decodes null to data.null, or to the value given as null", function()
    local v = decode_ok('{"a": null, "b": [null]}')
    assert.equal(data.null, v.a)
    assert.equal(data.null, v.b[1])
    assert.equal(false, decode_ok("[null]", { null = false })[1])
  end)

  it("keeps integers as integers and numbers with '.' or an exponent as floats", function()
    assert.equal("integer", math.type(decode_ok("42")))
    assert.equal("integer", math.type(decode_ok("-0")))
    assert.equal("float", math.type(decode_ok("42.0")))
    assert.equal("float", math.type(decode_ok("1e2")))
    assert.equal(100.0, decode_ok("1E+2"))
    assert.equal(math.mininteger, decode_ok("-9223372036854775808"))
    assert.equal(math.maxinteger, decode_ok("9223372036854775807"))
    -- beyond 64 bits: an exact big integer, as Python reads it
    local big = decode_ok("9223372036854775808")
    assert.equal("bigint", require("brine.data").kind(big))
    assert.equal("9223372036854775808", tostring(big))
    assert.equal(math.huge, decode_ok("1e400"))
  end)

  it("accepts NaN, Infinity and -Infinity as Python does", function()
    local v = decode_ok("[NaN, Infinity, -Infinity]")
    assert.is_true(v[1] ~= v[1])
    assert.equal(math.huge, v[2])
    assert.equal(-math.huge, v[3])
  end)

  it("decodes every escape, joining surrogate pairs into UTF-8", function()
    assert.equal('"\\/\b\f\n\r\t', decode_ok('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
    assert.equal("é€", decode_ok('"\\u00e9\\u20AC"'))
    assert.equal("\u{1F600}", decode_ok('"\\ud83d\\ude00"'))
    assert.equal("a\0b", decode_ok('"a\\u0000b"'))
    assert.equal("raw é bytes \xff", decode_ok('"raw é bytes \xff"'))
  end)

  it("keeps the last value of a duplicate key at its first position", function()
    local v = decode_ok('{"a": 1, "b": 2, "a": 3}')
    assert.same({ "a", "b" }, data.keys(v))
    assert.equal(3, v.a)
  end)

  it("reports errors with line and column in Python's words", function()
    local cases = {
      { "", "line 1 column 1: Expecting value" },
      { "[1,", "line 1 column 4: Expecting value" },
      { '{"a":1,}', "line 1 column 8: Expecting property name enclosed in double quotes" },
      { '{"a" 1}', "line 1 column 6: Expecting ':' delimiter" },
      { '{"a":1 "b"}', "line 1 column 8: Expecting ',' delimiter" },
      { '"abc', "line 1 column 1: Unterminated string starting at" },
      { '"a\1"', "line 1 column 3: Invalid control character at" },
      { '"\\x"', "line 1 column 2: Invalid \\escape" },
      { '"\\u12"', "line 1 column 3: Invalid \\uXXXX escape" },
      { "[1] x", "line 1 column 5: Extra data" },
      { '\n\n  {"é": [1 2]}', "line 3 column 12: Expecting ',' delimiter" },
      { "tru", "line 1 column 1: Expecting value" },
    }
    for _, case in ipairs(cases) do
      local v, err = json.decode(case[1])
      assert.is_nil(v)
      assert.equal(case[2], err)
    end
  end)

  it("rejects a lone surrogate escape", function()
    local v, err = json.decode('"\\ud800x"')
    assert.is_nil(v)
    assert.matches("lone surrogate", err)
  end)

  it("bounds nesting depth", function()
    local v, err = json.decode(string.rep("[", 100000))
    assert.is_nil(v)
    assert.equal("line 1 column 513: nesting deeper than 512 levels", err)
    assert.is_not_nil(json.decode(string.rep("[", 512) .. string.rep("]", 512)))
    v, err = json.decode("[[[1]]]", { max_depth = 2 })
    assert.is_nil(v)
    assert.matches("nesting deeper than 2 levels", err)
    assert.has_error(function() json.decode("1", { max_depth = 0 }) end)
  end)

  it("raises on misuse", function()
    assert.has_error(function() json.decode({}) end)
    assert.has_error(function() json.decode("1", 5) end)
  end)
end)

describe("brine.json.encode", function()
  it("formats floats as Python's repr", function()
    local cases = {
      { 1.0, "1.0" }, { 0.1, "0.1" }, { 1e16, "1e+16" }, { 1e-5, "1e-05" },
      { 123456789.0, "123456789.0" }, { 3.14, "3.14" }, { 1e15, "1000000000000000.0" },
      { 1e-4, "0.0001" }, { -0.0, "-0.0" }, { 1.5e300, "1.5e+300" },
      { 0.1 + 0.2, "0.30000000000000004" }, { 1 / 3, "0.3333333333333333" },
      { 5e-324, "5e-324" }, { 1.7976931348623157e308, "1.7976931348623157e+308" },
      { 2.0 ^ 53, "9007199254740992.0" }, { -2.5e-7, "-2.5e-07" },
    }
    for _, case in ipairs(cases) do
      assert.equal(case[2], json.encode(case[1]))
    end
    assert.equal("1", json.encode(1))
    assert.equal("-9223372036854775808", json.encode(math.mininteger))
  end)

  it("writes NaN and infinities unless allow_nan is false", function()
    assert.equal("[NaN, Infinity, -Infinity]", json.encode({ 0 / 0, math.huge, -math.huge }))
    local s, err = json.encode({ x = math.huge }, { allow_nan = false })
    assert.is_nil(s)
    assert.equal("at x: Out of range float values are not JSON compliant", err)
  end)

  it("writes one line with Python's default separators", function()
    assert.equal(SAMPLE_TEXT, json.encode(decode_ok(SAMPLE_TEXT)))
    assert.equal('{"a":[1,2]}', json.encode(data.map({ { "a", { 1, 2 } } }),
      { separators = { ",", ":" } }))
  end)

  it("indents exactly as json.dumps(indent=4)", function()
    assert.equal(SAMPLE_INDENT4, json.encode(decode_ok(SAMPLE_TEXT), { indent = 4 }))
  end)

  it("takes indent=0 and string indents as Python does", function()
    assert.equal("[\n1,\n[]\n]", json.encode({ 1, data.array() }, { indent = 0 }))
    assert.equal("[\n1\n]", json.encode({ 1 }, { indent = -3 }))
    assert.equal('{\n\t"a": [\n\t\t1\n\t]\n}', json.encode({ a = { 1 } }, { indent = "\t" }))
  end)

  it("sorts keys and writes UTF-8 on request, as json.dumps does", function()
    local opts = { indent = 2, sort_keys = true, ensure_ascii = false }
    assert.equal(SAMPLE_INDENT2_SORTED_UTF8, json.encode(decode_ok(SAMPLE_TEXT), opts))
  end)

  it("sorts string keys by code point, however many, and mixed keys numbers first", function()
    -- Expected texts from json.dumps(..., sort_keys=True, ensure_ascii=False).
    local m = data.map({ { "b", 1 }, { "\u{e9}", 2 }, { "ab", 3 }, { "a", 4 }, { "B", 5 } })
    assert.equal('{"B": 5, "a": 4, "ab": 3, "b": 1, "\u{e9}": 2}',
      json.encode(m, { sort_keys = true, ensure_ascii = false }))
    local many, want = data.map(), {}
    for i = 40, 1, -1 do many[string.format("k%02d", i)] = i end
    for i = 1, 40 do want[i] = string.format('"k%02d": %d', i, i) end
    assert.equal("{" .. table.concat(want, ", ") .. "}", json.encode(many, { sort_keys = true }))
    assert.equal('{"2": 1, "a": 2}', json.encode(data.map({ { "a", 2 }, { 2, 1 } }),
      { sort_keys = true }))
  end)

  it("sorts keys at every level of a nesting 1000 deep and refuses one level more", function()
    local function nest(levels)
      local v = data.map({ { "z", 1 }, { "a", 2 } })
      for _ = 2, levels do v = data.map({ { "z", v }, { "a", 0 } }) end
      return v
    end
    local s = json.encode(nest(1000), { sort_keys = true })
    assert.equal(string.rep('{"a": 0, "z": ', 999) .. '{"a": 2, "z": 1}' .. string.rep("}", 999), s)
    local none, err = json.encode(nest(1001), { sort_keys = true })
    assert.is_nil(none)
    assert.matches("nesting deeper than 1000 levels", err)
  end)

  it("refuses, under strict, tables that are neither data maps nor data arrays", function()
    local ok = data.map({ { "a", data.array({ 1, data.map() }) } })
    assert.equal('{"a": [1, {}]}', json.encode(ok, { strict = true }))
    local s, err = json.encode(data.map({ { "a", { 1 } } }), { strict = true })
    assert.is_nil(s)
    assert.equal("at a: not a data map or array", err)
    assert.equal('{"a": [1]}', json.encode(data.map({ { "a", { 1 } } })))
  end)

  it("keeps insertion order of data maps and sorts plain tables", function()
    assert.equal('{"z": 1, "a": 2}', json.encode(data.map({ { "z", 1 }, { "a", 2 } })))
    assert.equal('{"a": 2, "z": 1}', json.encode({ z = 1, a = 2 }))
    assert.equal('{"1": 2, "2": 3}', json.encode(data.map({ { 1, 2 }, { 2, 3 } })))
  end)

  it("escapes as ensure_ascii does, with surrogate pairs", function()
    assert.equal('"caf\\u00e9 \\u20ac \\ud83d\\ude00 \\u007f"', json.encode("café € 😀 \127"))
    assert.equal('"\\"\\\\\\n\\r\\t\\b\\f\\u0001/"', json.encode('"\\\n\r\t\b\f\1/'))
    assert.equal('"café 😀"', json.encode("café 😀", { ensure_ascii = false }))
    assert.equal('"bad \\ufffd"', json.encode("bad \xff"))
  end)

  it("escapes HTML characters as Salt's tojson does", function()
    assert.equal('"\\u003cb\\u003e \\u0026 \\u0027q\\u0027"',
      json.encode("<b> & 'q'", { escape_html = true }))
    assert.equal([["<b> & 'q'"]], json.encode("<b> & 'q'"))
  end)

  it("writes empty containers, null, tuples and array holes", function()
    assert.equal("[]", json.encode(data.array()))
    assert.equal("{}", json.encode({}))
    assert.equal("[]", json.encode(data.array(), { indent = 4 }))
    assert.equal("null", json.encode(data.null))
    assert.equal("null", json.encode(nil))
    assert.equal('[1, "a"]', json.encode(data.tuple({ 1, "a" })))
    assert.equal("[1, null, 3]", json.encode(data.array({ 1, nil, 3 })))
  end)

  it("converts keys as Python does", function()
    local m = data.map({ { 1, "i" }, { 1.5, "f" }, { true, "t" }, { data.null, "n" } })
    assert.equal('{"1": "i", "1.5": "f", "true": "t", "null": "n"}', json.encode(m))
    local s, err = json.encode(data.map({ { {}, 1 } }))
    assert.is_nil(s)
    assert.matches("keys must be str, int, float, bool or None", err)
  end)

  it("reports cycles and values that are not data, naming the key path", function()
    local t = data.map()
    t.a = data.map({ { "b", { 1, print } } })
    local s, err = json.encode(t)
    assert.is_nil(s)
    assert.equal("at a.b[2]: Object of type function is not JSON serializable", err)
    local loop = {}
    loop.self = { loop }
    s, err = json.encode(loop)
    assert.is_nil(s)
    assert.equal("at self[1]: Circular reference detected", err)
  end)

  it("round-trips what it decodes", function()
    local text = '{"a": [1, 2.0, -3e-07, "x\\u00e9"], "b": {}, "c": [], "d": null}'
    assert.equal(text, json.encode(decode_ok(text)))
    local again = decode_ok(json.encode(decode_ok(text)))
    assert.equal("integer", math.type(again.a[1]))
    assert.equal("float", math.type(again.a[2]))
  end)

  it("raises on bad options", function()
    assert.has_error(function() json.encode(1, { indent = "x", sort_keys = 1 }) end)
    assert.has_error(function() json.encode(1, { separators = { "," } }) end)
    assert.has_error(function() json.encode(1, { indent = 1.5 }) end)
  end)
end)
