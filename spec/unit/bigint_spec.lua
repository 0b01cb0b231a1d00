-- Integers beyond 64 bits in the data model: Python keeps them exact, so
-- YAML, JSON, msgpack, the outputters and templates must too.
local data = require("brine.data")
local json = require("brine.json")
local msgpack = require("brine.msgpack")
local yaml = require("brine.yaml")

local BIG = "12345678901234567890"

describe("big integers", function()
  it("are made from decimal text, and stay Lua integers when they fit", function()
    local b = data.bigint(BIG)
    assert.equal("bigint", data.kind(b))
    assert.equal(BIG, tostring(b))
    assert.equal("-" .. BIG, tostring(data.bigint("-" .. BIG)))
    assert.equal(math.maxinteger, data.bigint("9223372036854775807"))
    assert.equal(math.mininteger, data.bigint("-9223372036854775808"))
    assert.equal("9223372036854775808", tostring(data.bigint("9223372036854775808")))
    assert.equal("bigint", data.kind(data.bigint("9223372036854775808")))
    assert.has_error(function() data.bigint("12a") end)
    -- decimal text is cut into limbs directly: every length, zeros inside
    for _, t in ipairs({ "10000000000000000000000", "-1000000000000000000000000000",
      "1" .. string.rep("0", 4299), "100000000000000000000000000000000000" }) do
      assert.equal(t, tostring(data.bigint(t)))
    end
  end)

  it("load from YAML in every base Salt reads, and dump back", function()
    local v = assert(yaml.load("- " .. BIG .. "\n- -9223372036854775809\n"
      .. "- 0x1FFFFFFFFFFFFFFFFF\n- 0001234567012345670123456\n"))
    assert.equal(BIG, tostring(v[1]))
    assert.equal("-9223372036854775809", tostring(v[2]))
    assert.equal("590295810358705651711", tostring(v[3]))
    -- Salt strips leading zeros: decimal, not octal
    assert.equal("1234567012345670123456", tostring(v[4]))
    assert.equal("- " .. BIG .. "\n- -9223372036854775809\n- 590295810358705651711\n"
      .. "- 1234567012345670123456\n", yaml.dump(v))
  end)

  it("are mapping keys too, a repeated one refused as Salt refuses it", function()
    local v = assert(yaml.load(BIG .. ": a\n" .. BIG .. "1: b\n!!binary aGk=: c\n"))
    local keys = data.keys(v)
    assert.equal(BIG, tostring(keys[1]))
    assert.equal("a", v[keys[1]])
    assert.equal(BIG .. "1", tostring(keys[2]))
    assert.equal("hi", keys[3].s)
    local bad, err = yaml.load(BIG .. ": a\n" .. BIG .. ": b\n")
    assert.is_nil(bad)
    assert.matches("<string>:2:1: found conflicting ID '" .. BIG .. "'", err, 1, true)
    bad, err = yaml.load("!!binary aGk=: a\n!!binary aGk=: b\n")
    assert.is_nil(bad)
    assert.matches("found conflicting ID 'b'hi''", err, 1, true)
  end)

  it("refuses integer text longer than Python reads, naming the line", function()
    local v, err = yaml.load("a: 1\nb: " .. string.rep("7", 5000) .. "\n")
    assert.is_nil(v)
    assert.matches("<string>:2:4: Exceeds the limit (4300 digits)", err, 1, true)
    local j, jerr = json.decode("[" .. string.rep("7", 5000) .. "]")
    assert.is_nil(j)
    assert.matches("Exceeds the limit", jerr, 1, true)
  end)

  it("decode from and encode to JSON", function()
    local v = assert(json.decode('{"a": ' .. BIG .. ', "b": [-' .. BIG .. ']}'))
    assert.equal("bigint", data.kind(v.a))
    assert.equal('{"a": ' .. BIG .. ', "b": [-' .. BIG .. ']}', json.encode(v))
  end)

  it("cross msgpack exactly: uint 64 when they fit, else brine's ext type", function()
    local u64 = data.bigint("18446744073709551615")
    assert.equal("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", msgpack.pack(u64))
    assert.equal("18446744073709551615", tostring(msgpack.unpack(msgpack.pack(u64))))
    local big = data.bigint("-" .. BIG)
    local packed = msgpack.pack(big)
    assert.equal("\xc7\x15\x62-" .. BIG, packed)
    assert.equal("-" .. BIG, tostring(msgpack.unpack(packed)))
    local long = data.bigint(string.rep("9", 300))
    assert.equal(string.rep("9", 300), tostring(msgpack.unpack(msgpack.pack(long))))
    local bad, err = msgpack.unpack("\xc7\x03\x62" .. "1x2")
    assert.is_nil(bad)
    assert.matches("bad big integer", err, 1, true)
  end)

  it("print through the outputters as Python prints ints", function()
    local v = data.map()
    v.a = data.bigint(BIG)
    v.l = data.array({ data.bigint("-" .. BIG), 1 })
    assert.equal("a:\n    " .. BIG .. "\nl:\n    - -" .. BIG .. "\n    - 1",
      require("outputters.nested").output(v, {}))
    assert.equal("{'a': " .. BIG .. ", 'l': [-" .. BIG .. ", 1]}",
      require("outputters.raw").output(v))
    assert.matches('"a": ' .. BIG, require("outputters.json").output(v, {}), 1, true)
  end)

  it("compute in templates when they come from data", function()
    local render = require("brine.render")
    local ctx = assert(yaml.load("big: " .. BIG .. "\n"))
    local out = render.pipeline("jinja", "{{ big + 1 }} {{ big * 2 }} {{ big is integer }}"
      .. " {{ {'a': big}|yaml }} {{ [big]|json }}",
      { name = "t", context = ctx, grains = {}, pillar = {}, opts = {} })
    assert.equal("12345678901234567891 24691357802469135780 True {a: " .. BIG .. "} ["
      .. BIG .. "]", out)
  end)
end)
