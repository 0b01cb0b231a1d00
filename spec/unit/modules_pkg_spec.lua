-- The pkg module (Debian): version ordering checked against dpkg itself,
-- and the installed packages against dpkg-query.
local loader = require("brine.loader")
local proc = require("brine.proc")

local DEBIAN = { id = "t1", os_family = "Debian", osarch = "amd64" }

local function dpkg_order(a, b)
  for _, op in ipairs({ { "lt", -1 }, { "eq", 0 }, { "gt", 1 } }) do
    local r = proc.run({ argv = { "dpkg", "--compare-versions", a, op[1], b } })
    if r.retcode == 0 then return op[2] end
  end
end

describe("modules/pkg", function()
  local ld = loader.new({}, { grains = DEBIAN, pillar = {} })

  it("orders versions as dpkg does", function()
    local pairs_ = {
      { "1.2-1", "1.10-1" }, { "1:1.0", "2.0" }, { "1.0~rc1", "1.0" }, { "1.0", "1.0-0" },
      { "1.0a", "1.0+" }, { "2.30-1", "2.30" }, { "1.0~~", "1.0~~a" }, { "1.0~", "1.0" },
      { "0001.0", "1.00" }, { "1.2.3", "1.2.3.0" }, { "1.0-1ubuntu1", "1.0-1" },
      { "2:1.0", "10:0.1" }, { "5.2.15-2+b8", "5.2.15-2" }, { "a", "B" }, { "1.0.", "1.0" },
      { "9999999999999999999999", "10000000000000000000000" }, { "1-2-3", "1-2-4" },
    }
    for _, p in ipairs(pairs_) do
      for _, q in ipairs({ p, { p[2], p[1] }, { p[1], p[1] } }) do
        assert.equal(dpkg_order(q[1], q[2]), ld:call("pkg.version_cmp", q),
          q[1] .. " against " .. q[2])
      end
    end
  end)

  it("compares without epochs on request", function()
    assert.equal(1, ld:call("pkg.version_cmp", { "2:1.0", "1:2.0" }))
    assert.equal(-1, ld:call("pkg.version_cmp", { "2:1.0", "1:2.0" }, { ignore_epoch = true }))
  end)

  it("reads the installed versions from dpkg", function()
    local r = proc.run({ argv = { "dpkg-query", "-W", "-f", "${Version}", "dpkg" } })
    assert.equal(r.stdout, ld:call("pkg.version", { "dpkg" }))
    assert.equal("", ld:call("pkg.version", { "brine-no-such-package" }))
    local both = ld:call("pkg.version", { "dpkg", "brine-no-such-package" })
    assert.same({ dpkg = r.stdout, ["brine-no-such-package"] = "" }, both)
    local listed = ld:call("pkg.version", { "dpkg" }, { versions_as_list = true })
    assert.equal(r.stdout, listed[1])
    local globbed = ld:call("pkg.version", { "dpk*" })
    assert.equal(r.stdout, globbed.dpkg)
    assert.equal(r.stdout, ld:call("pkg.list_pkgs").dpkg)
  end)

  it("loads only on Debian systems", function()
    local other = loader.new({}, { grains = { id = "t2", os_family = "RedHat" }, pillar = {} })
    local ok, err = pcall(other.call, other, "pkg.version", { "dpkg" })
    assert.is_false(ok)
    assert.matches("unsupported OS family", tostring(err))
  end)
end)
