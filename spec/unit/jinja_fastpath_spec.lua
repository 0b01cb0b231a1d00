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
end)
