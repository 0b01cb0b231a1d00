-- `cmake --install` end to end: the build tree is installed into a scratch
-- staging folder (DESTDIR, with a prefix of /usr/local) and the installed
-- brine runs a local call from there, outside the source tree, with no
-- BRINE_LUA_DIR: one file is a complete brine.
local luv = require("luv")

local bin_dir = os.getenv("BRINE_BIN_DIR")

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs a shell command line; returns stdout and the exit status.
local function run(cmd)
  local p = io.popen(cmd, "r")
  local out = p:read("a")
  local _, _, status = p:close()
  return out, status
end

local function rmtree(path)
  run("rm -rf " .. sh_quote(path))
end

describe("an installed brine", function()
  if not bin_dir then
    pending("BRINE_BIN_DIR is not set: run through ctest")
    return
  end

  local stage, prefix

  setup(function()
    stage = assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-install-XXXXXX"))
    prefix = stage .. "/usr/local"
    -- the build folder holds engine/, where the brine binary is
    local build = bin_dir:gsub("/engine/?$", "")
    local out, status = run("DESTDIR=" .. sh_quote(stage) .. " cmake --install "
      .. sh_quote(build) .. " --prefix /usr/local 2>&1")
    assert(status == 0, "cmake --install failed:\n" .. out)
  end)

  teardown(function()
    rmtree(stage)
  end)

  -- Runs an installed program from / with BRINE_LUA_DIR unset.
  local function installed(name, args)
    return run("cd / && env -u BRINE_LUA_DIR " .. sh_quote(prefix .. "/bin/" .. name) .. " "
      .. args .. " 2>&1")
  end

  it("runs brine call --local test.ping from the prefix", function()
    local out, status = installed("brine", "call --local --no-color test.ping")
    assert.equal("local:\n    True\n", out)
    assert.equal(0, status)
  end)

  it("has the Salt-style names as links to brine", function()
    for _, name in ipairs({ "brine-call", "brine-key", "brine-master", "brine-minion" }) do
      assert.equal("brine", luv.fs_readlink(prefix .. "/bin/" .. name))
    end
    local out, status = installed("brine-call", "--local --out=json test.ping")
    assert.equal('{\n    "local": true\n}\n', out)
    assert.equal(0, status)
  end)

  it("lays out the documentation and the shipped formulas", function()
    for _, path in ipairs({ "/share/doc/brine/cli.md", "/share/doc/brine/lua-api.md",
      "/share/doc/brine/writing-modules.md", "/share/brine/formulas/motd/init.sls" }) do
      assert.is_truthy(luv.fs_stat(prefix .. path), path .. " is not installed")
    end
  end)
end)
