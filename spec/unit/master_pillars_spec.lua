-- brine.master.pillars: compiles minions' pillars in forked workers, a few
-- at a time, answers every request, and keeps the result for targeting.
local pillars = require("brine.master.pillars")
local posix = require("brine.posix")
local data = require("brine.data")

describe("brine.master.pillars", function()
  local dir, lines

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(posix.mkdir(dir, 448))
    assert(posix.mkdir(dir .. "/p", 448))
    posix.write_atomic(dir .. "/p/top.sls", "base:\n  '*':\n    - a\n")
    posix.write_atomic(dir .. "/p/a.sls", "who: {{ grains.id }}\n")
    lines = {}
  end)

  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function new(worker_threads)
    local log = setmetatable({}, { __index = function(_, level)
      return function(_, fmt, ...)
        lines[#lines + 1] = level .. ": " .. string.format(fmt, ...)
      end
    end })
    return pillars.new({ cachedir = dir .. "/cache", renderer = "jinja|yaml",
      pillar_roots = { base = data.array({ dir .. "/p" }) }, worker_threads = worker_threads },
      log)
  end

  -- Reaps until `n` answers are in (or 20 s pass); returns the most
  -- workers seen at once.
  local function drain(p, got, n)
    local most, deadline = p.running, posix.monotonic() + 20
    repeat
      p:reap()
      most = math.max(most, p.running)
      local count = 0
      for _ in pairs(got) do
        count = count + 1
      end
      if count >= n then
        return most
      end
      posix.sleep(0.01)
    until posix.monotonic() > deadline
    error("the pillars were not all compiled")
  end

  it("compiles each minion's pillar for its grains, worker_threads at a time", function()
    local p, got, most = new(2), {}, 0
    for i = 1, 10 do
      local id = "m" .. i
      p:request(id, {}, data.map({ { "id", id } }), function(pillar) got[id] = pillar.who end)
      most = math.max(most, p.running)
    end
    p:request("m1", {}, data.map({ { "id", "m1" } }), function(pillar) got.again = pillar.who end)
    most = math.max(most, drain(p, got, 11))
    for i = 1, 10 do
      assert.equal("m" .. i, got["m" .. i])
    end
    assert.equal("m1", got.again)
    assert.equal(2, most)
    assert.equal("m3", p:get("m3").who)
    assert.equal("m3", pillars.new({ cachedir = dir .. "/cache" }, {}):get("m3").who,
      "the cache on disk is read after a restart")
    assert.is_nil(p:get("nobody"))
  end)

  it("logs renderer messages in full and answers with _errors in safe form", function()
    posix.write_atomic(dir .. "/p/a.sls", "who: {% for x in %}\n")
    local p, got = new(), {}
    p:request("m1", {}, data.map(), function(pillar) got.m1 = pillar end)
    drain(p, got, 1)
    assert.matches("^Rendering SLS 'a' failed at ", got.m1._errors[1])
    local full = table.concat(lines, "\n")
    assert.matches("error: minion m1: pillar: Rendering SLS 'a' failed, render error:", full, 1,
      true)
  end)
end)
