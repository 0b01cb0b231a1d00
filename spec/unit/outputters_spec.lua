-- The outputters print what Salt's print for the same data.
local data = require("brine.data")
local loader = require("brine.loader")
local nested = require("outputters.nested")
local json = require("outputters.json")
local raw = require("outputters.raw")
local txt = require("outputters.txt")

local null = data.null

local function m(pairs_)
  return data.map(pairs_)
end

describe("the nested outputter", function()
  it("prints test.ping as salt-call does", function()
    assert.equal("local:\n    True", nested.output(m({ { "local", true } }), {}))
  end)

  it("lays out mappings, lists and scalars as Salt does", function()
    local value = m({ { "local", m({
      { "b", data.array({ 1, "two", m({ { "k", null } }), data.array({ 3 }) }) },
      { "a", "line1\nline2" },
      { "f", 1.5 },
      { "e", {} },
    }) } })
    local want = table.concat({
      "local:",
      "    ----------",
      "    b:",
      "        - 1",
      "        - two",
      "        |_",
      "          ----------",
      "          k:",
      "              None",
      "        |_",
      "          - 3",
      "    a:",
      "        line1",
      "        line2",
      "    f:",
      "        1.5",
      "    e:",
      "        ----------",
    }, "\n")
    assert.equal(want, nested.output(value, {}))
  end)

  it("sorts the keys of plain tables and keeps ordered maps in order", function()
    assert.equal("b:\n    1\na:\n    2", nested.output(m({ { "b", 1 }, { "a", 2 } }), {}))
    assert.equal("a:\n    2\nb:\n    1", nested.output({ b = 1, a = 2 }, {}))
  end)

  it("colours with Salt's escape codes only when asked", function()
    local out = nested.output(m({ { "local", true } }), { color = true })
    assert.equal("\27[0;36mlocal\27[0;0m:\n    \27[0;1;33mTrue\27[0;0m", out)
    assert.is_nil(nested.output(m({ { "local", true } }), { color = false }):find("\27"))
  end)

  it("prints an empty string as nothing, as Python's splitlines does", function()
    assert.equal("local:", nested.output(m({ { "local", "" } }), {}))
  end)
end)

describe("the json outputter", function()
  local value = m({ { "local", m({ { "b", data.array({ 1, 2.0 }) }, { "a", null } }) } })

  it("indents by 4 and keeps order by default", function()
    assert.equal('{\n    "local": {\n        "b": [\n            1,\n            2.0\n'
      .. '        ],\n        "a": null\n    }\n}', json.output(value, {}))
  end)

  it("follows --out-indent: N spaces, negative for one line", function()
    assert.equal('{"local": {"b": [1, 2.0], "a": null}}',
      json.output(value, { output_indent = -1 }))
    assert.equal('{\n  "local": true\n}', json.output(m({ { "local", true } }),
      { output_indent = 2 }))
    assert.equal('{\n"local": true\n}', json.output(m({ { "local", true } }),
      { output_indent = 0 }))
  end)

  it("sorts keys with output_indent: pretty and keeps text unescaped", function()
    assert.equal('{\n    "a": "é",\n    "b": []\n}',
      json.output(m({ { "b", data.array() }, { "a", "é" } }), { output_indent = "pretty" }))
    assert.equal('"\\u0001\\n\\"\127"', json.dumps("\1\n\"\127"))
  end)
end)

describe("the raw and txt outputters", function()
  it("print Python's str and repr of the data", function()
    local value = m({ { "local", m({ { "args", data.tuple({ 1, "a'b" }) },
      { "kwargs", m({ { "x", data.array({ true, null, 0.1, 1e16 }) } }) } }) } })
    assert.equal([[{'local': {'args': (1, "a'b"), 'kwargs': {'x': [True, None, 0.1, 1e+16]}}}]],
      raw.output(value))
    assert.equal("local: True\n", txt.output(m({ { "local", true } })))
    assert.equal("local: a\nlocal: b\n", txt.output(m({ { "local", "a\nb" } })))
  end)

  it("writes floats as Python's repr does", function()
    assert.equal("1.0", raw.float(1.0))
    assert.equal("0.0001", raw.float(0.0001))
    assert.equal("1e-05", raw.float(0.00001))
    assert.equal("1234567890123456.0", raw.float(1234567890123456.0))
    assert.equal("1e+16", raw.float(1e16))
    assert.equal("0.30000000000000004", raw.float(0.1 + 0.2))
    assert.equal("-2.5", raw.float(-2.5))
    assert.equal("inf", raw.float(math.huge))
  end)
end)

describe("the newline_values_only outputter", function()
  it("prints values without keys, list items one per line", function()
    local nvo = require("outputters.newline_values_only")
    assert.equal("127.0.0.1\n10.0.0.1", nvo.output(m({ { "local",
      data.array({ "127.0.0.1", "10.0.0.1" }) } })))
    assert.equal("8\nTrue", nvo.output(m({ { "a", 8 }, { "b", true } })))
  end)
end)

describe("loader.outputter", function()
  it("picks outputters by name and falls back to nested", function()
    assert.equal(json, loader.outputter("json", {}))
    assert.equal(txt, loader.outputter("text", {}))
    assert.equal(nested, loader.outputter("no_such_outputter", {}))
  end)

  it("prefers a user outputter from outputter_dirs", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(require("luv").fs_mkdir(dir, 448))
    local f = assert(io.open(dir .. "/json.lua", "w"))
    f:write("return { output = function(v) return 'mine' end }")
    f:close()
    assert.equal("mine", loader.outputter("json", { outputter_dirs = { dir } }).output(1))
    os.remove(dir .. "/json.lua")
    os.remove(dir)
  end)
end)

describe("the yaml outputter", function()
  local has_yaml = pcall(require, "brine.yaml")
  local it_yaml = has_yaml and it or pending

  it_yaml("prints block YAML like PyYAML", function()
    local yaml = require("outputters.yaml")
    assert.equal("local: true\n", yaml.output(m({ { "local", true } }), {}))
  end)
end)
