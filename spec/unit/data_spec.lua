local data = require("brine.data")

describe("brine.data", function()
  it("keeps insertion order in maps", function()
    local m = data.map()
    for _, k in ipairs({ "z", "a", "m", 3, "b" }) do
      m[k] = true
    end
    local seen = {}
    for k in pairs(m) do
      seen[#seen + 1] = k
    end
    assert.same({ "z", "a", "m", 3, "b" }, seen)
    assert.same({ "z", "a", "m", 3, "b" }, data.keys(m))
  end)

  it("moves a deleted and re-added key to the end", function()
    local m = data.map({ { "a", 1 }, { "b", 2 }, { "c", 3 } })
    m.a = nil
    m.a = 9
    assert.same({ "b", "c", "a" }, data.keys(m))
    assert.equal(3, data.count(m))
  end)

  it("tells arrays, maps and null apart", function()
    assert.equal("array", data.kind(data.array()))
    assert.equal("map", data.kind(data.map()))
    assert.equal("map", data.kind({}))
    assert.equal("array", data.kind({ 1, 2 }))
    assert.equal("null", data.kind(data.null))
    assert.equal("float", data.kind(1.0))
    assert.equal("integer", data.kind(1))
    assert.is_true(data.is_null(data.null))
    assert.equal("null", tostring(data.null))
  end)
end)

describe("brine.data maps with keys 1..n", function()
  local function numbered()
    return data.map({ { 1, "a" }, { 2, "b" } })
  end

  it("stay maps", function()
    assert.equal("map", data.kind(numbered()))
    assert.is_false(data.is_array(numbered()))
  end)

  it("stay maps through every encoder", function()
    assert.equal('{"1": "a", "2": "b"}', require("brine.json").encode(numbered()))
    local msgpack = require("brine.msgpack")
    assert.equal("map", data.kind(msgpack.unpack(msgpack.pack(numbered()))))
    assert.equal("1: a\n2: b\n", require("brine.yaml").dump(numbered()))
  end)
end)

describe("brine.data tuples", function()
  it("are arrays that know they are tuples", function()
    local t = data.tuple({ 1, "a" })
    assert.equal("array", data.kind(t))
    assert.is_true(data.is_tuple(t))
    assert.is_false(data.is_tuple(data.array({ 1 })))
    assert.is_true(data.is_array(t))
  end)
end)

describe("brine.data.copy", function()
  it("copies a table's own pairs, few or many, under the metatable given", function()
    for _, n in ipairs({ 0, 1, 5, 15, 16, 17, 100 }) do
      local t = setmetatable({ [1] = "one" }, { __index = function() return "inherited" end })
      for i = 1, n do t["k" .. i] = i end
      local mt = {}
      local c = data.copy(t, mt)
      assert.equal(mt, getmetatable(c))
      local count = 0
      for k, v in next, c do
        assert.equal(rawget(t, k), v)
        count = count + 1
      end
      assert.equal(n + 1, count)
    end
    assert.is_nil(getmetatable(data.copy({ a = 1 })))
  end)

  it("sizes a map built from pairs and keeps their order, a repeated key once", function()
    local m = data.map({ { "b", 1 }, { "a", 2 }, { "b", 3 }, { "c", data.null } })
    assert.same({ "b", "a", "c" }, data.keys(m))
    assert.equal(3, m.b)
  end)
end)
