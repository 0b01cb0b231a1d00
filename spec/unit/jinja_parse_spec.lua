-- The template lexer and parser on their own: tokens with their lines and
-- whitespace control, literals, tags whose text holds their own closing
-- delimiter, the tree's precedence, and syntax errors with their lines.
-- Rendered output is covered by the engine and conformance specs; these
-- pin the pieces the first render of a template pays for.
local lexer = require "renderers.jinja.lexer"
local parser = require "renderers.jinja.parser"

-- "type value@line" for each token, values of end tokens as strip flags.
local function tokens(src)
  local out = {}
  for _, tok in ipairs(lexer.tokenize(src)) do
    local v = tok.value
    if tok.strip ~= nil then v = tok.strip and "strip" or nil end
    out[#out + 1] = tok.type .. (v ~= nil and (" " .. tostring(v)) or "") .. "@" .. tok.line
  end
  return table.concat(out, ", ")
end

local function syntax_error(src)
  local ok, err = pcall(parser.parse, src)
  assert.is_false(ok)
  assert.equal("TemplateSyntaxError", err.class)
  return err.message, err.line
end

-- The expression of the template's only output tag.
local function expr(src)
  local tree = parser.parse("{{ " .. src .. " }}")
  assert.equal(1, #tree.body)
  return tree.body[1].expr
end

describe("jinja lexer", function()
  it("gives each token its line, across data, tags, strings and comments", function()
    assert.equal("data a\n@1, block_begin@2, name if@2, name x@3, block_end@3, "
      .. "variable_begin@3, string b\nc@3, variable_end@4, data \n@5, eof@6",
      tokens("a\n{% if\nx %}{{ 'b\nc' }}{# one\n#}\n\n"))
    assert.equal("data x\n@1, eof@2", tokens("x\r\n\r\n"))
  end)

  it("strips whitespace around dashed delimiters, and only there", function()
    assert.equal("data a@1, block_begin@2, name x@2, block_end strip@2, data b  @4, "
      .. "block_begin@4, name y@4, block_end@4, eof@4",
      tokens("a \n{%- x -%}\n\n b  {%+ y +%}"))
    -- a dash away from the closer is the minus operator
    assert.equal("variable_begin@1, name a@1, op -@1, variable_end@1, eof@1",
      tokens("{{ a - }}"))
    -- a brace that opens no tag strips nothing, even before a dash, and
    -- the text after the last tag keeps its trailing spaces
    assert.equal("data a {x- c   \ny  @1, eof@2", tokens("a {x- c   \ny  "))
    assert.equal("variable_begin@1, integer 1@1, variable_end@1, data  {x- c  @1, eof@1",
      tokens("{{ 1 }} {x- c  "))
    -- a dash strips the data right before its tag, never past a comment or
    -- a raw block
    assert.equal("data a  @1, block_begin@1, name if@1, block_end@1, eof@1",
      tokens("a  {# c #}{%- if %}"))
    assert.equal("data a @1, data r@1, eof@1", tokens("a {# c #}  {%- raw %}r{% endraw %}"))
    assert.equal("data r  @1, block_begin@1, name x@1, block_end@1, eof@1",
      tokens("{% raw %}r  {% endraw %}{%- x %}"))
  end)

  it("reads numbers as Jinja does", function()
    local function value(src) return expr(src).value end
    assert.equal(1000, value("1_000"))
    assert.equal(31, value("0x1F"))
    assert.equal(5, value("0b101"))
    assert.equal(1000.0, value("1e3"))
    assert.equal("float", math.type(value("1e3")))
    assert.equal(0.5, value("0.5"))
    assert.equal(9223372036854775807, value("9223372036854775807"))
    assert.same({ digits = "12345678901234567890" }, value("12345678901234567890"))
    assert.equal("variable_begin@1, integer 7@1, op .@1, name real@1, variable_end@1, eof@1",
      tokens("{{ 7.real }}"))
  end)

  it("finds the end of a tag past strings and braces that look like it", function()
    assert.equal("variable_begin@1, string %}@1, op ~@1, string }}@1, variable_end@1, eof@1",
      tokens([[{{ '%}' ~ "}}" }}]]))
    local d = expr("{'a': {'b': 1}}")
    assert.equal("dict", d.t)
    assert.equal("dict", d.items[1].value.t)
    assert.equal(1, d.items[1].value.items[1].value.value)
  end)

  it("reads tags longer than one slice of bytes", function()
    local items = {}
    for i = 1, 3000 do items[i] = tostring(i) end
    local l = expr("[" .. table.concat(items, ", ") .. "]")
    assert.equal(3000, #l.items)
    assert.equal(3000, l.items[3000].value)
  end)
end)

describe("jinja parser", function()
  it("keeps Jinja's precedence with and without operators after an operand", function()
    local e = expr("not a in b")
    assert.equal("not", e.t)
    assert.equal("compare", e.a.t)
    assert.equal("in", e.a.ops[1].op)
    e = expr("a or b and c")
    assert.equal("or", e.t)
    assert.equal("and", e.b.t)
    e = expr("x|f if y else z")
    assert.equal("cond", e.t)
    assert.equal("filter", e.yes.t)
    e = expr("-1 ** 2")
    assert.equal("bin", e.t)
    assert.equal("pow", e.op)
    assert.equal("neg", e.a.op)
    e = expr("a ~ b ~ c + 1")
    assert.equal("bin", e.t)
    assert.equal("concat", e.a.t)
    assert.equal(3, #e.a.items)
    assert.equal("tuple", expr("a, b").t)
    assert.equal("name", expr("(a)").t)
  end)

  it("gives nodes the line of their first token", function()
    local tree = parser.parse("x\n{% if a\n or b %}\n{{ c\n + d }}{% endif %}")
    local node = tree.body[2]
    assert.equal("if", node.t)
    assert.equal(2, node.line)
    assert.equal(2, node.test.line)
    assert.equal(3, node.test.b.line)
    assert.equal(4, node.body[2].expr.line)
  end)

  it("parses deeply nested blocks", function()
    local src = ("{% if x %}"):rep(300) .. "y" .. ("{% endif %}"):rep(300)
    local node = parser.parse(src).body[1]
    for _ = 2, 300 do node = node.body[1] end
    assert.equal("y", node.body[1].value)
  end)

  it("reports syntax errors with Jinja's words and the line", function()
    local cases = {
      { "a\n{{ x\n", "unexpected end of template, expected '}}'.", 2 },
      { "{{ (1]\n}}", "unexpected ']', expected ')'", 1 },
      { "{% for x in y %}\n{% if x %}\n{% endfor %}", "Encountered unknown tag 'endfor'. "
        .. "Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. "
        .. "The innermost block that needs to be closed is 'if'.", 3 },
      { "{% frob %}", "Encountered unknown tag 'frob'.", 1 },
      { "{{ a b }}", "expected token 'end of print statement', got 'b'", 1 },
    }
    for _, case in ipairs(cases) do
      local msg, line = syntax_error(case[1])
      assert.equal(case[2], msg)
      assert.equal(case[3], line)
    end
    -- an unterminated string: reported on the line where it starts
    local msg, line = syntax_error("x\n{{ 'a\n}}")
    assert.matches("^unexpected char '''", msg)
    assert.equal(2, line)
  end)
end)
