-- Jinja 3.1 behaviour that Salt's formulas may meet and the conformance
-- corpus does not show, each expected text being what Jinja2 3.1 renders
-- with Salt's settings: the `filter` and `test` tests, the `+%}` block end,
-- and Python's format() of booleans and of objects without a format.
local jinja = require("renderers.jinja.init")

local env = jinja.new_environment({})

local function render(text, vars)
  return env:render_string(text, vars or {}, "compat.j")
end

local function fails(text, pattern)
  local out, err = render(text)
  assert.is_nil(out, text)
  assert.matches(pattern, err, 1, true)
end

describe("jinja compatibility", function()
  it("tests whether a filter or a test exists", function()
    assert.equal("True False True True False",
      render("{{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }}"
        .. " {{ 'match' is test }} {{ 1 is test }}"))
  end)

  it("accepts +%} as a block end", function()
    assert.equal("ab", render("{% if 1 +%}a{%+ endif +%}b"))
    assert.equal("1", render("{% set x = 1 +%}{{ x }}"))
    assert.equal("a    b    c", render("a  {%+ if 1 %}  b  {% endif +%}  c"))
    fails("{{ 1 +}}", "end of print statement")
  end)

  it("starts each loop iteration from the names outside the loop", function()
    local vars = { l = { 3, 1, 2 } }
    -- with locals (nothing reads frames by name) and with frames (a macro)
    for _, head in ipairs({ "", "{% macro mm() %}{% endmacro %}" }) do
      assert.equal("3-2", render(head .. "{% for x in l %}{% if x > 1 %}{% set z = x %}"
        .. "{% endif %}{{ z|default('-') }}{% endfor %}", vars))
      assert.equal("1311121", render(head .. "{% set y = 1 %}{% for x in l %}{{ y }}"
        .. "{% set y = x %}{{ y }}{% endfor %}{{ y }}", vars))
      assert.equal("uuu", render(head .. "{% for x in l %}{{ y|default('u') }}{% set y = x %}"
        .. "{% endfor %}", vars))
      assert.equal("False|10", render(head .. "{% for x in [] %}{% else %}{% set z = 1 %}"
        .. "{% endfor %}{{ z is defined }}|{% set z = 0 %}{% for x in [] %}{% else %}"
        .. "{% set z = 1 %}{{ z }}{% endfor %}{{ z }}", vars))
    end
    assert.equal("T.T.T.", render("{% for x in l %}{% for y in [] %}{% else %}{% set e = 'T' %}"
      .. "{{ e }}{% endfor %}{{ e|default('.') }}{% endfor %}", vars))
  end)

  it("reads a list in place as Python's loop does: items removed end it sooner", function()
    assert.equal("12|[1]", render("{% set l = [1, 2, 3] %}{% for x in l %}{{ x }}"
      .. "{% do l.pop() %}{% endfor %}|{{ l }}"))
    -- with a loop object too; its length is the count at the start
    assert.equal("1/3 2/3 |[1]", render("{% set l = [1, 2, 3] %}{% for x in l %}"
      .. "{{ x }}/{{ loop.length }} {% do l.pop() %}{% endfor %}|{{ l }}"))
    assert.equal("a=1;b=2;37", render("{% set d = {'a': 1, 'b': 2} %}{% for k, v in d.items() %}"
      .. "{{ k }}={{ v }};{% endfor %}{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }}{% endfor %}"))
  end)

  it("formats '%d-%d' % (a, b) as Python, integers or not", function()
    assert.equal("03-07 1/2/3 03-07 1%--4", render("{{ '%02d-%02d' % (3, 7) }} "
      .. "{{ '%d/%d/%d' % (1, 2, 3) }} {{ '%02d-%02d' % (3, 7.5) }} {{ '%d%%-%d' % (true, -4) }}"))
    fails("{{ '%02d-%02d' % (3, 'x') }}", "%d format: a real number is required, not str")
  end)

  it("gives a plain Undefined for `a if c` without else when c is false", function()
    assert.equal("|False|0|[]|[Undefined]|x|n|d", render("{{ 1 if false }}|"
      .. "{{ (1 if false) is defined }}|{{ (1 if false)|length }}|{{ (1 if false)|list }}|"
      .. "{{ [(1 if false)] }}|{{ (1 if false) ~ 'x' }}|{{ 'y' if (1 if false) else 'n' }}|"
      .. "{{ (1 if false)|default('d') }}"))
    fails("{{ (1 if false).attr }}", "no else section was defined")
    fails("{{ (1 if false) + 1 }}", "no else section was defined")
  end)

  it("writes ascii() for %a and !a", function()
    assert.equal([['\xe9' ['\xfc', '\u65e5', 'x'] '\xdf\U0001f600' 'plain']],
      render("{{ '%a' % 'é' }} {{ '%a' % ['ü', '日', 'x'] }} {{ '{!a}'.format('ß😀') }}"
        .. " {{ '%a' % 'plain' }}"))
  end)

  it("formats booleans as integers once a spec is given", function()
    assert.equal("    1|True|0", render("{{ '{:>5}'.format(true) }}|{{ '{}'.format(true) }}"
      .. "|{{ '{:d}'.format(false) }}"))
  end)

  it("refuses a format spec for values without one", function()
    fails("{{ '{:>5}'.format(none) }}", "unsupported format string passed to NoneType.__format__")
    fails("{{ '{:>5}'.format([1]) }}", "unsupported format string passed to list.__format__")
    assert.equal("None|[1]", render("{{ '{}'.format(none) }}|{{ '{}'.format([1]) }}"))
  end)
end)
