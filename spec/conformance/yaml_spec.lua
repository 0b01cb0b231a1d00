-- The yaml suite of the conformance corpus: every input.yaml loads to the
-- data Salt's loader produced (expected.json), or fails, as Salt's did, with
-- a message that names the line and column Salt's error named
-- (expected.err).
local conformance = require("conformance")
local yaml = require("brine.yaml")

local cases = conformance.cases("yaml")

describe("yaml conformance", function()
  if #cases == 0 then
    it("needs the conformance corpus (set BRINE_SHARED_DIR)", function()
      pending("BRINE_SHARED_DIR does not hold conformance/yaml; suite skipped")
    end)
    return
  end

  it("finds the whole suite", function()
    assert.is_true(#cases >= 84, "only " .. #cases .. " cases found")
  end)

  for _, case in ipairs(cases) do
    it(case.name, function()
      local input = assert(conformance.read(case.dir .. "/input.yaml"))
      local value, err, info = yaml.load(input, { name = "input.yaml" })
      if case.files["expected.json"] then
        assert.is_nil(err)
        local want = conformance.read_expected_json(case.dir .. "/expected.json")
        assert.equal(want, conformance.to_corpus_json(value))
      else
        assert.is_true(case.files["expected.err"] ~= nil, "case has no expected file")
        assert.is_nil(value)
        assert.matches("^input%.yaml:%d+:%d+: .", err)
        local line, column = conformance.last_mark(
          assert(conformance.read(case.dir .. "/expected.err")))
        if line then
          assert.same({ line, column }, { info.line, info.column }, err)
          assert.truthy(err:find("input.yaml:" .. line .. ":" .. column .. ":", 1, true))
        end
      end
    end)
  end
end)
