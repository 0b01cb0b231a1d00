-- Fuzzing of the template engine's entry point: seeded random and mutated
-- templates (this file's seeds and the conformance corpus's templates when
-- BRINE_SHARED_DIR has them), for about two seconds. Every template must
-- either render or fail with a structured Jinja error (class, message, line); a Lua runtime error
-- escaping from the engine (a traceback, "attempt to index ...", a Lua
-- source position) is a bug.
-- The engine needs the Python value model (renderers.jinja.pyval).
local have_engine, jinja = pcall(require, "renderers.jinja.init")
if not have_engine then
  describe("jinja engine", function()
    it("needs renderers.jinja.pyval", function() pending(tostring(jinja):match("[^\n]*")) end)
  end)
  return
end

local SEEDS = {
  "{% for x in items if x %}{{ loop.index }}:{{ x|upper }}{% else %}-{% endfor %}",
  "{% macro m(a, b=2, *c) %}{{ a ~ b }}{{ caller() if caller }}{% endmacro %}{{ m(1) }}",
  "{% set ns = namespace(n=0) %}{% set ns.n = ns.n + 1 %}{{ ns.n }}",
  "{% if a is defined and a > 1 %}{{ a * 2 }}{% elif b %}{{ b[0] }}{% else %}{{ c.d }}{% endif %}",
  "{{ {'a': [1, 2.5, none, true], 'b': (1,)}|tojson }} {{ 'x %s'|format(3) }}",
  "{%- raw -%} {{ x }} {%- endraw %}{# c #}{{- 'y' -}}",
  "{% with a = 1, b = [1,2][::-1] %}{{ a }}{{ b }}{% endwith %}",
  "{% load_yaml as y %}a: 1{% endload %}{{ y.a }}{% do [].append(1) %}",
  "{% filter upper %}x{% endfilter %}{% set v | lower %}Y{% endset %}{{ v }}",
  "{{ 1 + 2 ** 3 // 4 % 5 - -6 }} {{ 'a' in 'abc' }} {{ not 1 == 1.0 }} {{ x if y else z }}",
  "{% block b %}{{ self.b }}{% endblock %}{% call(x) m() %}{{ x }}{% endcall %}",
}

-- The conformance corpus's templates, when it is there, as more seeds.
local function corpus_seeds()
  local shared = os.getenv("BRINE_SHARED_DIR")
  local dir = shared and (shared .. "/conformance/jinja")
  local p = dir and io.popen("ls '" .. dir .. "' 2>/dev/null")
  if not p then return end
  for case in p:lines() do
    local f = io.open(dir .. "/" .. case .. "/template", "rb")
    if f then
      SEEDS[#SEEDS + 1] = f:read("a")
      f:close()
    end
  end
  p:close()
end
corpus_seeds()

local PIECES = {
  "{{", "}}", "{%", "%}", "{#", "#}", "-", "+", "(", ")", "[", "]", "{", "}", "'", '"',
  "\\", "|", ".", ",", ":", "=", "==", " if ", " else ", " for ", " in ", " endfor ",
  " set ", " macro ", " endmacro ", " block ", " extends ", " include ", "1", "0.5",
  "x", "loop", "none", "\n", "\r\n", " is ", " not ", "*", "**", "~", "%", "raw", "endraw",
}

local function mutate(rng, s)
  local ops = rng(4)
  for _ = 1, rng(6) do
    local pos = rng(#s + 1)
    if ops == 1 then
      s = s:sub(1, pos - 1) .. s:sub(pos + rng(4))
    elseif ops == 2 then
      s = s:sub(1, pos - 1) .. PIECES[rng(#PIECES)] .. s:sub(pos)
    elseif ops == 3 then
      s = s:sub(1, pos - 1) .. string.char(rng(256) - 1) .. s:sub(pos + 1)
    else
      local other = SEEDS[rng(#SEEDS)]
      local a = rng(#other)
      s = s:sub(1, pos) .. other:sub(a, a + rng(20))
    end
  end
  return s
end

local function random_template(rng)
  local parts = {}
  for i = 1, rng(12) do parts[i] = PIECES[rng(#PIECES)] end
  return table.concat(parts)
end

describe("jinja fuzz", function()
  it("fails only with structured errors on random and mutated templates", function()
    math.randomseed(20240611)
    local rng = math.random
    local env = jinja.new_environment({})
    local vars = { items = require("brine.data").array({ "a", "", 3 }), a = 2, b = "s" }
    local deadline = os.clock() + 2
    local count, bad = 0, {}
    while os.clock() < deadline and #bad < 5 do
      local text
      if rng(3) == 1 then text = random_template(rng) else
        text = mutate(rng, SEEDS[rng(#SEEDS)])
      end
      local ok, out, msg, err = pcall(env.render_string, env, text, vars, "fuzz")
      count = count + 1
      if not ok then
        bad[#bad + 1] = string.format("%q raised %s", text, tostring(out))
      elseif out == nil then
        local structured = type(err) == "table" and type(err.class) == "string"
          and err.class ~= "" and type(err.message) == "string" and err.line ~= nil
        local text = tostring(err and err.message)
        local leaked = text:find("attempt to ") or text:find("stack traceback")
          or text:find("%.lua:%d+:")
        if not structured or leaked then
          bad[#bad + 1] = string.format("%q gave %s", text, tostring(msg))
        end
      end
    end
    assert.is_true(count > 200, "only " .. count .. " templates in 2 s")
    assert.equal("", table.concat(bad, "\n"))
  end)
end)
