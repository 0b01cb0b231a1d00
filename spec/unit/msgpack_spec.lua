-- brine.msgpack: exact bytes for each type (per the MessagePack spec),
-- round trips through the data model, and hostile input that must be
-- rejected with an error, never a crash or a huge allocation.
local mp = require("brine.msgpack")
local data = require("brine.data")
local json = require("brine.json")

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function unhex(h)
  return (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

local function unpack_ok(s, opts)
  local v, err = mp.unpack(s, opts)
  assert.is_nil(err)
  return v
end

describe("brine.msgpack.pack", function()
  it("uses the smallest integer form", function()
    local cases = {
      { 0, "00" }, { 127, "7f" }, { 128, "cc80" }, { 255, "ccff" }, { 256, "cd0100" },
      { 65535, "cdffff" }, { 65536, "ce00010000" }, { 4294967296, "cf0000000100000000" },
      { math.maxinteger, "cf7fffffffffffffff" }, { -1, "ff" }, { -32, "e0" },
      { -33, "d0df" }, { -128, "d080" }, { -129, "d1ff7f" }, { -32769, "d2ffff7fff" },
      { math.mininteger, "d38000000000000000" },
    }
    for _, case in ipairs(cases) do
      assert.equal(case[2], hex(mp.pack(case[1])))
    end
  end)

  it("keeps ints and floats apart; floats are float64", function()
    assert.equal("01", hex(mp.pack(1)))
    assert.equal("cb3ff0000000000000", hex(mp.pack(1.0)))
    assert.equal("cb3ff8000000000000", hex(mp.pack(1.5)))
  end)

  it("packs valid UTF-8 as str and other bytes as bin", function()
    assert.equal("a3616263", hex(mp.pack("abc")))
    assert.equal("a2c3a9", hex(mp.pack("é")))
    assert.equal("c401ff", hex(mp.pack("\xff")))
    assert.equal("c403eda080", hex(mp.pack("\xed\xa0\x80"))) -- an encoded surrogate
    assert.equal("a1ff", hex(mp.pack("\xff", { bin = false })))
    assert.equal("d920", hex(mp.pack(string.rep("x", 32))):sub(1, 4))
    assert.equal("da9c40", hex(mp.pack(string.rep("x", 40000))):sub(1, 6))
    assert.equal("db00011170", hex(mp.pack(string.rep("x", 70000))):sub(1, 10))
    assert.equal("c5012c", hex(mp.pack(string.rep("\xff", 300))):sub(1, 6))
  end)

  it("packs null, booleans, empty arrays and empty maps distinctly", function()
    assert.equal("c0", hex(mp.pack(data.null)))
    assert.equal("c0", hex(mp.pack(nil)))
    assert.equal("c2c3", hex(mp.pack(false)) .. hex(mp.pack(true)))
    assert.equal("90", hex(mp.pack(data.array())))
    assert.equal("80", hex(mp.pack({})))
    assert.equal("80", hex(mp.pack(data.map())))
    assert.equal("920102", hex(mp.pack(data.tuple({ 1, 2 }))))
    assert.equal("9301c003", hex(mp.pack(data.array({ 1, nil, 3 }))))
  end)

  it("keeps map insertion order and sorts plain tables", function()
    local m = data.map({ { "b", 1 }, { "a", 2 }, { 3, 4 } })
    assert.equal("83a16201a1610203" .. "04", hex(mp.pack(m)))
    assert.equal("82a16102a16201", hex(mp.pack({ b = 1, a = 2 })))
  end)

  it("uses 16 and 32-bit container headers", function()
    local arr = {}
    for i = 1, 20 do arr[i] = 0 end
    assert.equal("dc0014", hex(mp.pack(arr)):sub(1, 6))
    local m = data.map()
    for i = 1, 17 do m["k" .. i] = i end
    assert.equal("de0011", hex(mp.pack(m)):sub(1, 6))
    local big = {}
    for i = 1, 70000 do big[i] = true end
    assert.equal("dd00011170", hex(mp.pack(big)):sub(1, 10))
  end)

  it("returns an error naming the key path for values it cannot pack", function()
    local s, err = mp.pack(data.map({ { "a", { 1, print } } }))
    assert.is_nil(s)
    assert.equal("at a[2]: cannot pack a function", err)
    local loop = {}
    loop.me = loop
    s, err = mp.pack(loop)
    assert.is_nil(s)
    assert.equal("at me: circular reference detected", err)
  end)
end)

describe("brine.msgpack.unpack", function()
  it("round-trips the data model", function()
    local v = json.decode('{"name": "web-3", "roles": ["db", "cache"], "empty_list": [], '
      .. '"empty_map": {}, "port": 8080, "load": 0.25, "ratio": 1.0, "none": null, '
      .. '"neg": -70000, "big": 9223372036854775807, "nested": {"deep": [1, [2.5, {"k": "v"}]]}}')
    local back = unpack_ok(mp.pack(v))
    assert.equal(json.encode(v), json.encode(back))
    assert.same(data.keys(v), data.keys(back))
    assert.equal("array", data.kind(back.empty_list))
    assert.equal("map", data.kind(back.empty_map))
    assert.equal(data.null, back.none)
    assert.equal("float", math.type(back.ratio))
    assert.equal("integer", math.type(back.port))
  end)

  it("decodes every integer width, float32 and bin", function()
    assert.equal(-1, unpack_ok(unhex("ff")))
    assert.equal(200, unpack_ok(unhex("ccc8")))
    assert.equal(-2, unpack_ok(unhex("d1fffe")))
    assert.equal(4294967295, unpack_ok(unhex("ceffffffff")))
    assert.equal(-2147483648, unpack_ok(unhex("d280000000")))
    assert.equal(math.mininteger, unpack_ok(unhex("d38000000000000000")))
    local huge = unpack_ok(unhex("cfffffffffffffffff"))
    assert.equal("18446744073709551615", tostring(huge))
    local f = unpack_ok(unhex("ca3fc00000"))
    assert.equal("float", math.type(f))
    assert.equal(1.5, f)
    assert.equal("\1\2", unpack_ok(unhex("c4020102")))
    assert.equal("hi", unpack_ok(unhex("d9026869")))
  end)

  it("reads maps in wire order", function()
    local m = unpack_ok(unhex("83a17a01a16102a16d03"))
    assert.same({ "z", "a", "m" }, data.keys(m))
  end)

  it("rejects every truncation of a valid message", function()
    local msg = mp.pack(data.map({ { "a", { 1, 2.5, "xyz", data.map({ { "k", -300 } }) } } }))
    for n = 0, #msg - 1 do
      local v, err = mp.unpack(msg:sub(1, n))
      assert.is_nil(v)
      local said = err:gsub("declared length %d+ exceeds the input", "truncated input")
      assert.matches("^truncated input at offset %d+$", said)
    end
    assert.is_not_nil(unpack_ok(msg))
  end)

  it("rejects giant declared lengths before allocating", function()
    for _, h in ipairs({ "dbffffffff", "c6ffffffff", "ddffffffff", "dfffffffff",
      "dd7fffffff00", "df0000000201" }) do
      local v, err = mp.unpack(unhex(h))
      assert.is_nil(v)
      assert.matches("declared length %d+ exceeds the input at offset %d+", err)
    end
  end)

  it("bounds nesting depth", function()
    local v, err = mp.unpack(string.rep("\x91", 100000) .. "\x01")
    assert.is_nil(v)
    assert.equal("nesting deeper than 512 levels at offset 513", err)
    assert.is_not_nil(unpack_ok(string.rep("\x91", 512) .. "\x01"))
    v, err = mp.unpack("\x91\x91\x01", { max_depth = 1 })
    assert.is_nil(v)
    assert.matches("nesting deeper than 1 levels", err)
  end)

  it("enforces max_size", function()
    local v, err = mp.unpack(mp.pack("hello"), { max_size = 3 })
    assert.is_nil(v)
    assert.equal("message of 6 bytes exceeds max_size 3", err)
    assert.equal("hello", unpack_ok(mp.pack("hello"), { max_size = 6 }))
  end)

  it("rejects trailing bytes, ext types, 0xc1 and bad map keys", function()
    local cases = {
      { "0102", "extra bytes after the value at offset 1" },
      { "d40100", "unsupported ext type byte 0xd4 at offset 0" },
      { "c1", "reserved type byte 0xc1 at offset 0" },
      { "8190c0", "map key is not a scalar at offset 2" },
      { "81cb7ff8000000000000c0", "map key is NaN at offset 10" },
    }
    for _, case in ipairs(cases) do
      local v, err = mp.unpack(unhex(case[1]))
      assert.is_nil(v)
      assert.equal(case[2], err)
    end
  end)

  it("raises on misuse", function()
    assert.has_error(function() mp.unpack({}) end)
    assert.has_error(function() mp.unpack("\1", { max_depth = 0 }) end)
    assert.has_error(function() mp.pack(1, { bin = 1 }) end)
  end)
end)

describe("brine.msgpack streams", function()
  it("unpack_many reads consecutive messages", function()
    local all = mp.unpack_many(mp.pack(1) .. mp.pack("two") .. mp.pack(data.array()))
    assert.equal(3, #all)
    assert.equal("two", all[2])
    assert.equal("array", data.kind(all[3]))
    local v, err = mp.unpack_many(mp.pack(1) .. "\xa5ab")
    assert.is_nil(v)
    assert.matches("exceeds the input", err)
  end)

  it("the unpacker yields messages as their bytes arrive", function()
    local u = mp.unpacker()
    local wire = mp.pack(data.map({ { "cmd", "ping" } })) .. mp.pack({ 1, 2 }) .. mp.pack(7)
    local got = {}
    for i = 1, #wire do
      assert.is_true(u:feed(wire:sub(i, i)))
      local v = u:next()
      while v ~= nil do
        got[#got + 1] = v
        v = u:next()
      end
    end
    assert.equal(3, #got)
    assert.equal("ping", got[1].cmd)
    assert.equal(2, got[2][2])
    assert.equal(7, got[3])
    assert.equal(0, u:pending())
  end)

  it("the unpacker reports bad bytes and refuses oversized messages", function()
    local u = mp.unpacker({ max_size = 8 })
    assert.is_true(u:feed("\xdb\xff\xff\xff\xff"))
    assert.is_nil(u:next())
    local ok, err = u:feed("0123456789")
    assert.is_nil(ok)
    assert.equal("unfinished message exceeds max_size 8", err)
    local bad = mp.unpacker()
    bad:feed("\xc1")
    local v, berr = bad:next()
    assert.is_nil(v)
    assert.equal("reserved type byte 0xc1 at offset 0", berr)
  end)
end)
