-- The compiled fast paths give what the general paths give: `'%02d' % x`
-- remembered per template, `x == literal` without the general comparison,
-- and comparisons used as conditions without a truth test. Each expected
-- text is what Jinja2 3.1 renders with Salt's settings.
local data = require("brine.data")
local jinja = require("renderers.jinja.init")
local pyval = require("renderers.jinja.pyval")

local env = jinja.new_environment({})

local function render(text, vars)
  return env:render_string(text, vars or {}, "fastpath.j")
end

local function fails(text, pattern, vars)
  local out, err = render(text, vars)
  assert.is_nil(out, text)
  assert.matches(pattern, err, 1, true)
end

describe("jinja fast paths", function()
  it("formats '%02d' % x as Python, remembered or not", function()
    local text = "{% for x in xs %}{{ '%02d' % x }},{{ '%02d-%03d' % (x, x) }};{% endfor %}"
    local xs = data.array({ 3, 3, 1023, 1024, -7, 3.0, 2.5, true, math.maxinteger })
    local want = "03,03-003;03,03-003;1023,1023-1023;1024,1024-1024;-7,-7--07;03,03-003;"
      .. "02,02-002;01,01-001;9223372036854775807,9223372036854775807-9223372036854775807;"
    -- twice: the second render reads the remembered texts
    assert.equal(want, render(text, { xs = xs }))
    assert.equal(want, render(text, { xs = xs }))
    assert.equal("07", render("{{ '%02d' % (x * 7) }}", { x = 1 }))
    fails("{{ '%02d' % 'a' }}", "TypeError")
    fails("{{ '%02d' % nope }}", "nope")
    fails("{{ '%02d-%02d' % (1, nope) }}", "nope")
  end)

  it("compares with a literal as Python does", function()
    local vars = { t = true, f = false, n = 0, z = 0.0, one = 1.0, s = "0", nan = 0 / 0,
                   big = math.maxinteger, m = pyval.markup("a") }
    assert.equal("True True True True False", render("{{ t == 1 }} {{ f == 0 }} {{ z == 0 }}"
      .. " {{ one == 1 }} {{ s == 0 }}", vars))
    assert.equal("False False False True True", render("{{ t != 1 }} {{ f != 0 }}"
      .. " {{ z != 0 }} {{ s != 0 }} {{ nan != nan }}", vars))
    assert.equal("False True False True", render("{{ nan == 1.5 }} {{ nan != 1.5 }}"
      .. " {{ big == 9223372036854775806 }} {{ big * 2 == 18446744073709551614 }}", vars))
    assert.equal("True False True False", render("{{ m == 'a' }} {{ m != 'a' }}"
      .. " {{ 'x' == 'x' }} {{ n == '0' }}", vars))
    assert.equal("yes", render("{% if [1] == 1 %}no{% elif n == 0 %}yes{% endif %}", vars))
    fails("{{ nope == 1 }}", "nope")
    fails("{% if nope != 'a' %}{% endif %}", "nope")
  end)

  it("computes integer arithmetic as Python, fused or not", function()
    local vars = { x = 2147483648, y = 2147483649, one = 1, t = true, h = 0.5, s = "ab",
                   max = math.maxinteger, five = 5 }
    assert.equal("21474836481 21474836491 11 6.0 abab",
      render("{{ x * 10 + 1 }} {{ y * 10 + 1 }} {{ t * 10 + 1 }} {{ h * 10 + 1 }}"
        .. " {{ s * (one + 1) }}", vars))
    assert.equal("92233720368547758070 -9223372036854775809 9223372036854775807",
      render("{{ max * 10 }} {{ -max - 2 }} {{ (max - one) + one }}", vars))
    assert.equal("0 2 -4 -1 -4", render("{{ (one - 10) % 3 }} {{ (one - 11) % 3 }}"
      .. " {{ (one - 11) // 3 }} {{ (one - 11) % -3 }} {{ -five + one }}", vars))
    assert.equal("True False False True", render("{{ one * 2 > 1 }} {{ one * 2 < 2 }}"
      .. " {{ h * 2 > 1 }} {{ t + one == 2 }}", vars))
    assert.equal("even", render("{{ 'even' if (one * 10 + five + 1) % 2 == 0 else 'odd' }}",
      vars))
    fails("{{ s + one }}", "TypeError", vars)
    fails("{{ nope * 2 + 1 }}", "nope", vars)
    fails("{% if one * 2 > nope %}{% endif %}", "nope", vars)
    fails("{{ one % 0 + 1 }}", "ZeroDivisionError", vars)
    -- an error in the general code names the template line
    local _, _, err = render("a\n\n{{ s * one + one }}\n", vars)
    assert.equal(3, err.line)
  end)
end)
