-- The template engine's language core, beyond what the conformance corpus
-- covers: scoping, loops, macros, template inheritance, the guards against
-- runaway templates, the sandbox and the shape of errors.
-- The engine needs the Python value model (renderers.jinja.pyval).
local have_engine, jinja = pcall(require, "renderers.jinja.init")
if not have_engine then
  describe("jinja engine", function()
    it("needs renderers.jinja.pyval", function() pending(tostring(jinja):match("[^\n]*")) end)
  end)
  return
end

local root = os.tmpname()
os.remove(root)
os.execute("mkdir -p '" .. root .. "/sub'")

local function write(name, text)
  local f = assert(io.open(root .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end

write("base.j", "<{% block a %}A{% endblock %}|{% block b %}B{% endblock %}>")
write("child.j", "{% extends 'base.j' %}{% block b %}[{{ super() }}]{% endblock %}")
write("self.j", "x{% include 'self.j' %}")
write("sub/m.j", "{% macro hi(n) %}hi {{ n }}{% endmacro %}{% set v = 3 %}")
write("sub/rel.j", "{% include './m.j' %}rel")
write("bad.j", "one\n{{ nope }}\n")

local env = jinja.new_environment({ root = root })

local function render(text, vars)
  return env:render_string(text, vars, "t.j")
end

describe("jinja engine", function()
  it("keeps the source's final newline and strips one from includes", function()
    write("nl.j", "inc\n")
    assert.equal("inc|\n", render("{% include 'nl.j' %}|\n"))
  end)

  it("reads an included file again once it changed on disk, not before", function()
    write("changes.j", "one")
    assert.equal("[one]", render("[{% include 'changes.j' %}]"))
    assert.equal("[one]", render("[{% include 'changes.j' %}]"))
    write("changes.j", "two, longer")
    assert.equal("[two, longer]", render("[{% include 'changes.j' %}]"))
    os.remove(root .. "/changes.j")
    local out, err = render("[{% include 'changes.j' %}]")
    assert.is_nil(out)
    assert.matches("TemplateNotFound: changes.j", err, 1, true)
  end)

  it("scopes loop variables and set inside loops", function()
    assert.equal("1 0", render("{% set x = 0 %}{% for i in [1] %}{% set x = i %}{{ x }}"
      .. "{% endfor %} {{ x }}"))
  end)

  it("supports for/else, break, continue and loop attributes", function()
    assert.equal("1,3,|none", render("{% for i in [1,2,3,4] %}{% if i == 2 %}{% continue %}"
      .. "{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }},{% endfor %}|"
      .. "{% for i in [] %}x{% else %}none{% endfor %}"))
    assert.equal("1/3F 2/2F 3/1T ", render("{% for i in 'abc' %}{{ loop.index }}/"
      .. "{{ loop.revindex }}{{ 'T' if loop.last else 'F' }} {% endfor %}"))
  end)

  it("applies filter blocks to their body, loops and all", function()
    assert.equal("xABC 1y", render("x{% filter upper %}abc {{ 1 }}{% endfilter %}y"))
    assert.equal("<0A1A2A>", render("<{% filter upper %}{% for i in range(3) %}{{ i }}a"
      .. "{% endfor %}{% endfilter %}>"))
    assert.equal("b-b", render("{% filter replace('a', 'b') %}a-{% filter lower %}A"
      .. "{% endfilter %}{% endfilter %}"))
  end)

  it("reads integer literals past 64 bits exactly, as Python does", function()
    assert.equal("9999999999999999999 -9223372036854775808 4722366482869645213695 15",
      render("{{ 9999999999999999999 }} {{ -9223372036854775808 }} {{ 0xFFFFFFFFFFFFFFFFFF }}"
        .. " {{ 0b1111 }}"))
  end)

  it("escapes output inside {% autoescape true %} only", function()
    assert.equal("&lt;a&gt;a&amp;b<b><raw>|<c>", render("{% autoescape true %}{{ '<a>' }}"
      .. "{{ x }}{{ '<b>'|safe }}<raw>{% endautoescape %}|{{ '<c>' }}", { x = "a&b" }))
    assert.equal("a&amp;b", render("{% autoescape on %}{{ x }}{% endautoescape %}",
      { x = "a&b", on = true }))
  end)

  it("renders recursive loops with depth", function()
    local tree = { { n = "a", c = { { n = "b", c = {} } } } }
    local out = render("{% for x in tree recursive %}{{ loop.depth }}{{ x.n }}"
      .. "{{ loop(x.c) }}{% endfor %}", { tree = require("brine.data").array(tree) })
    assert.equal("1a2b", out)
  end)

  it("calls macros with defaults, varargs, kwargs and caller", function()
    assert.equal("1-2 (3,) {'k': 4}", render("{% macro m(a, b=2) %}{{ a }}-{{ b }} "
      .. "{{ varargs }} {{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}"))
    assert.equal("<x>", render("{% macro w() %}<{{ caller() }}>{% endmacro %}"
      .. "{% call w() %}x{% endcall %}"))
  end)

  it("renders extends with super() and imports macros", function()
    assert.equal("<A|[B]>", render("{% include 'child.j' %}"))
    assert.equal("hi 2 3", render("{% from 'sub/m.j' import hi, v %}{{ hi(2) }} {{ v }}"))
  end)

  it("insists that a required block is overridden", function()
    write("req.j", "{% block a required %}{% endblock %}|{% block b %}B{% endblock %}")
    assert.equal("A|B", render("{% extends 'req.j' %}{% block a %}A{% endblock %}"))
    local out, err = render("{% extends 'req.j' %}{% block b %}X{% endblock %}")
    assert.is_nil(out)
    assert.matches("Required block 'a' not found %(req%.j, line 1%)", err)
  end)

  it("takes filters and tests written in Lua", function()
    local filters = require "renderers.jinja.filters"
    local own = jinja.new_environment({
      filters_extra = { suffix = function(_, v, args, kwargs)
        local a = filters.bind("suffix", args, kwargs, { "text", "times" })
        return v .. string.rep(a[1] or "!", a[2] or 1)
      end },
      tests_extra = { short = function(_, v) return #v < 4 end },
    })
    assert.equal("hi?? True", own:render_string("{{ 'hi'|suffix('?', times=2) }} "
      .. "{{ 'abc' is short }}"))
  end)

  it("gives an include inside a loop the loop variables but not `loop`", function()
    write("item.j", "{{ item }}-{{ loop.index if loop is defined else 'none' }};")
    assert.equal("1-none;2-none;", render("{% for item in [1, 2] %}{% include 'item.j' %}"
      .. "{% endfor %}"))
  end)

  it("reads raw blocks opened or closed with {%+ and {%-", function()
    assert.equal("{{ x }} |", render("{%+ raw -%} {{ x }} {%+ endraw %}|"))
    assert.equal("a{{ y }}", render("a {%- raw %}{{ y }}{% endraw %}"))
  end)

  it("follows Python in corners found by comparing with Jinja2", function()
    local out, err
    assert.equal("H", render("{{ 'H' % [1, 2] }}"))
    assert.equal("-0.0 0.0", render("{{ 0 % -1.5 }} {{ -3.0 % 1.5 }}"))
    out, err = render("{{ [1] in {'a': 1} }}")
    assert.is_nil(out)
    assert.matches("TypeError: unhashable type: 'list'", err)
    assert.equal("-1.0 9 4", render("{{ -1.5 ** x }} {{ - y ** 2 }} {{ -2 ** 2 }}",
      { x = false, y = 3 }))
    assert.equal("False", render("{{ ''|random is defined }}"))
    out, err = render("{{ 4.0 ** 1000.0 }}")
    assert.matches("OverflowError", err)
    out, err = render("{{ 2.0 is string in -1.5 }}")
    assert.is_nil(out)
    assert.matches("TypeError: test_string%(%) takes 1 positional argument but 2 were given", err)
  end)

  it("resolves ./ names against the tpldir global", function()
    assert.equal("rel", render("{% include 'sub/rel.j' %}"))
  end)

  it("stops runaway recursion with a clear error", function()
    local out, err = render("{% include 'self.j' %}")
    assert.is_nil(out)
    assert.matches("RecursionError", err)
    out, err = render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")
    assert.is_nil(out)
    assert.matches("RecursionError", err)
  end)

  it("names the included file's line and the includer's line", function()
    local out, err, e = render("top\n{% include 'bad.j' %}")
    assert.is_nil(out)
    assert.matches("UndefinedError: 'nope' is undefined %(bad.j, line 2%)", err)
    assert.equal("t.j", e.trace[2].name)
    assert.equal(2, e.trace[2].line)
  end)

  it("names the right line after long runs of text", function()
    local out, err, e = render("a\nb\n{{ 1 }}\nc\nd\ne\n  x: {{ p.q }}\nf\n", { p = {} })
    assert.is_nil(out)
    assert.equal(7, e.line)
    assert.matches("%(t%.j, line 7%)\n    x: {{ p%.q }}", err)
  end)

  it("names the line of syntax errors", function()
    local out, err, e = render("a\n{% for x in y %}\n{% endif %}")
    assert.is_nil(out)
    assert.equal("TemplateSyntaxError", e.class)
    assert.equal(3, e.line)
    assert.matches("endif", err)
  end)

  it("keeps templates away from Lua", function()
    for _, t in ipairs({ "{{ load }}", "{{ require }}", "{{ R }}", "{{ debug }}" }) do
      local out, err = render(t)
      assert.is_nil(out)
      assert.matches("UndefinedError", err)
    end
    local out, err = render("{{ [].__class__ }}")
    assert.is_nil(out)
    assert.matches("SecurityError", err)
  end)

  it("prints nothing when a render fails late", function()
    local out = render("lots of text {{ 1 // 0 }}")
    assert.is_nil(out)
  end)

  it("bounds the output", function()
    local runtime = require "renderers.jinja.runtime"
    local saved = runtime.MAX_OUTPUT
    runtime.MAX_OUTPUT = 1000
    local out, err = render("{% for i in range(1000) %}{% for j in range(100) %}xx"
      .. "{% endfor %}{% endfor %}")
    runtime.MAX_OUTPUT = saved
    assert.is_nil(out)
    assert.matches("output exceeds", err)
  end)

  it("caches compiled templates by content", function()
    local a = jinja.compile("{{ 1 }}", "same")
    assert.equal(a, jinja.compile("{{ 1 }}", "same"))
    assert.are_not.equal(a, jinja.compile("{{ 2 }}", "same"))
  end)

  it("never parses a template again to render it again, includes too", function()
    local compiler = require "renderers.jinja.compiler"
    local saved, parses = compiler.compile, 0
    compiler.compile = function(...)
      parses = parses + 1
      return saved(...)
    end
    jinja.clear_cache()
    local text = "{% include 'child.j' %}{% from 'sub/m.j' import hi %}{{ hi(40 + 2) }}"
    local first = render(text)
    local after_first = parses
    for _ = 1, 5 do
      assert.equal(first, render(text))
    end
    compiler.compile = saved
    assert.equal("<A|[B]>hi 42", first)
    assert.equal(4, after_first) -- the template, child.j, base.j, sub/m.j
    assert.equal(after_first, parses)
  end)

  it("prints long runs of values and text (compiled as joined pieces)", function()
    local want = {}
    for i = 1, 500 do
      want[i] = "1-b" .. (i % 2 == 1 and "z" or "")
    end
    local vars = { x = 1, y = "b" }
    assert.equal(table.concat(want, "\n"), render("{% for i in range(1, 501) %}"
      .. "{{ x }}-{{ y }}{{ 'z' if i is odd }}{{ '\n' if not loop.last }}{% endfor %}", vars))
    local flat = {}
    for i = 1, 500 do flat[i] = "{{ x }}-{{ y }}" .. (i % 2 == 1 and "z" or "") end
    local out = render(table.concat(flat, "\n"), vars)
    assert.equal(table.concat(want, "\n"), out)
    local _, err = render("a\n{{ x }}{{ x }}\n{{ y.z.w }}\nb", { x = 1, y = {} })
    assert.matches("line 3", err, 1, true)
  end)

  it("turns CRLF sources into CRLF output", function()
    assert.equal("a\r\nb\r\n", render("a\r\n{{ 'b' }}\r\n"))
  end)

  it("prints literal-only expressions as compiled text, errors still at render", function()
    local text = "{{ 7 / 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 if 2 > 1 }}"
    assert.equal("3.5 [1, 2] a1", render(text))
    assert.matches('o%[n%] = "3.5 %[1, 2%] a1"', jinja.lua_source(text))
    assert.equal("ok", render("{% if false %}{{ 1 / 0 }}{% endif %}ok"))
    local out, err = render("one\n{{ 1 / 0 }}")
    assert.is_nil(out)
    assert.matches("ZeroDivisionError.*t%.j, line 2", err)
    assert.equal("&lt;b", render("{% autoescape true %}{{ '<' ~ 'b' }}{% endautoescape %}"))
  end)
end)
