-- The template compiler's faster paths give the same text as the general
-- ones: loop variables and loop-local sets kept in Lua locals, `and`/`or`
-- and conditional expressions without closures, builtin filters folded on
-- literals, `| json` reusing its text for an unchanged value. The expected
-- texts are jinja2's (checked against Python's jinja2 3.1).
local have_engine, jinja = pcall(require, "renderers.jinja.init")
if not have_engine then
  describe("jinja compile", function()
    it("needs renderers.jinja.pyval", function() pending(tostring(jinja):match("[^\n]*")) end)
  end)
  return
end
local data = require "brine.data"

local root = os.tmpname()
os.remove(root)
os.execute("mkdir -p '" .. root .. "'")
local f = assert(io.open(root .. "/inc.j", "wb"))
f:write("<{{ i }}>")
f:close()

local env = jinja.new_environment({ root = root })

local function render(text, vars, e)
  return (e or env):render_string(text, vars, "t.j")
end

local function renders(expected, text, vars)
  local out, err = render(text, vars)
  assert.is_nil(err)
  assert.equal(expected, out)
end

describe("jinja compile", function()
  it("keeps loop variables and sets in locals when nothing reads frames by name", function()
    local text = "{% for i in [1, 2] %}{% set x = i * 2 %}{{ x }}{% endfor %}"
    local src = jinja.lua_source(text)
    assert.matches("v%d+_x = ", src)
    assert.not_matches("R%.frame", src)
    renders("24", text)
    -- an include reads the loop's variables by name: frames kept
    src = jinja.lua_source("{% for i in [1, 2] %}{% include 'inc.j' %}{% endfor %}")
    assert.matches("R%.frame", src)
    renders("<1><2>", "{% for i in [1, 2] %}{% include 'inc.j' %}{% endfor %}")
  end)

  it("scopes sets in loops: visible for the rest of the loop, not after it", function()
    renders("12out",
      "{% set x = 'out' %}{% for i in [1, 2] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}")
    renders("701 02 7",
      "{% set s = 7 %}{{ s }}{% for i in [1, 2] %}{% set s = '%02d' % i %}{{ s }} {% endfor %}"
      .. "{{ s }}")
    renders("3070",
      "{% for a, b in [(1, 2), (3, 4)] %}{{ a + b }}{% set a = 0 %}{{ a }}{% endfor %}")
    renders("xx0xx1",
      "{% for i in range(2) %}{% for j in range(2) %}{% set i = 'x' %}{{ i }}{% endfor %}"
      .. "{{ i }}{% endfor %}")
    renders("0110", "{% for i in [1, 2] %}{% set s = '%02d' % i %}{% if i == 2 %}"
      .. "{% set s = 5 %}{% endif %}{{ s + '' if s is string else s * 2 }}{% endfor %}")
    renders("0!1!2!", "{% for i in range(3) %}{% set t %}{{ i }}!{% endset %}{{ t }}{% endfor %}")
    renders("020", "{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}"
      .. "{% set k = i * 10 %}{{ k }}{% if i == 2 %}{% break %}{% endif %}{% endfor %}")
    renders("7", "{% for v in [1] %}{% set end = 3 %}{% set local = 4 %}{{ end + local }}"
      .. "{% endfor %}")
    renders("A1A2", "{% for i in [1, 2] %}{% filter upper %}a{{ i }}{% endfilter %}{% endfor %}")
  end)

  it("gives loop.* of the innermost loop, filtered loops and else", function()
    renders("1ax2ay1TrueFalse21bx2by2FalseTrue2", "{% for i in 'ab' %}{% for j in 'xy' %}"
      .. "{{ loop.index }}{{ i }}{{ j }}{% endfor %}{{ loop.index }}{{ loop.first }}"
      .. "{{ loop.last }}{{ loop.length }}{% endfor %}")
    renders("aTrueFalsebFalseTrueaTrueTruebFalseTrue", "{% for i in range(4) %}"
      .. "{{ loop.cycle('a', 'b') }}{{ loop.changed(i // 2) }}{{ loop.previtem is defined }}"
      .. "{% endfor %}")
    renders("1:1 2:3 3:5 ", "{% for x in range(6) if x is odd %}{{ loop.index }}:{{ x }} "
      .. "{% endfor %}")
    renders("empty", "{% for x in [] %}no{% else %}empty{% endfor %}")
  end)

  it("keeps namespaces, caller and recursive loops working inside loops", function()
    renders("6", "{% set ns = namespace(c=0) %}{% for i in range(4) %}"
      .. "{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}")
    renders("[1][2]", "{% macro m() %}[{{ caller() }}]{% endmacro %}{% for i in [1, 2] %}"
      .. "{% call m() %}{{ i }}{% endcall %}{% endfor %}")
    renders("(1(2))", "{% for n in [{'v': 1, 'c': [{'v': 2, 'c': []}]}] recursive %}"
      .. "({{ n.v }}{{ loop(n.c) }}){% endfor %}")
  end)

  it("names the template line of an error raised in a loop kept in locals", function()
    local out, err = render("{% for i in [1] %}\n{% set x = i %}\n{{ x.nope.y }}{% endfor %}")
    assert.is_nil(out)
    assert.matches("t%.j, line 3", err)
  end)

  it("gives `and`/`or` an operand, not a boolean, and evaluates the right one lazily", function()
    renders("x||None|0|False|y",
      "{{ 0 or 'x' }}|{{ '' and 1 }}|{{ [] or none }}|{{ 1 and 0 }}|{{ false or false }}|"
      .. "{{ (1 == 1) and 'y' }}")
    renders("False|True||False|d", "{{ false and nope.x }}|{{ true or nope.x }}|"
      .. "{{ 'a' if false }}|{{ false if true else 1 }}|{{ nope if nope is defined else 'd' }}")
    renders("TrueFalse[]None[3]None[3, 4]", "{% set l = [] %}{{ true or l.append(1) }}"
      .. "{{ false and l.append(2) }}{{ l }}{{ 0 or l.append(3) }}{{ l }}"
      .. "{{ 1 and l.append(4) }}{{ l }}")
    renders("None[1, 2]None[1, 2, 3]", "{% set l = [] %}{{ l.append(1) or l.append(2) }}"
      .. "{{ l }}{{ (l.append(3) if l else l.append(4)) }}{{ l }}")
  end)

  it("folds builtin filters on literals unless the environment replaces them", function()
    local text = "{{ [3, 1, 2] | sort | join(',') }}{{ 'abc' | upper }}{{ [1, 2] | length }}"
    assert.matches('"1,2,3"', jinja.lua_source(text))
    renders("1,2,3ABC2", text)
    local own = jinja.new_environment({ filters_extra = { upper = function() return "up" end } })
    assert.equal("1,2,3up2", render(text, nil, own))
    own = jinja.new_environment({})
    own.filters.length = function() return "len" end
    assert.equal("1,2,3ABClen", render(text, nil, own))
    local out, err = render("\n{{ [] | first | upper }}")
    assert.is_nil(out)
    assert.matches("t%.j, line 2", err)
  end)

  it("encodes a value again after anything that may have changed it", function()
    renders('{"a": 1}{"a": 1, "b": 2}',
      "{% set d = {'a': 1} %}{{ d | json }}{% do d.update({'b': 2}) %}{{ d | json }}")
    renders('{"l": [1]}{"l": [1, 2]}{"l": [1, 2]}{"l": [1]}',
      "{% set l = [1] %}{% set d = {'l': l} %}{{ d | json }}{% do l.append(2) %}"
      .. "{{ d | json }}{% for i in range(2) %}{{ d | json }}{% do l.pop() %}{% endfor %}")
    local d = data.map({ { "n", 1 } })
    local function bump() d.n = d.n + 1 end
    renders('{"n": 1}{"n": 1}{"n": 2}', "{{ d | json }}{{ d | json }}{% do bump() %}"
      .. "{{ d | json }}", { d = d, bump = bump })
    local out = render("{% set a = d | json %}{% set b = d | json %}{{ a is sameas b }}",
      { d = d })
    assert.equal("False", out)
  end)

  it("writes Markup inside a value given to json or tojson as a string", function()
    renders('{"a": "x"}["\\u003cb\\u003e"]', "{{ {'a': 'x' | safe} | json }}"
      .. "{{ ['<b>' | safe] | tojson }}")
  end)
end)
