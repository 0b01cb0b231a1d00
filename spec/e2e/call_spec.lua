-- `brine call` end to end: the real binary, a scratch configuration
-- folder, and what a user sees on stdout, stderr and in the exit status.
local luv = require("luv")

local bin = os.getenv("BRINE_BIN")

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

describe("brine call", function()
  if not bin then
    pending("BRINE_BIN is not set: run through ctest")
    return
  end

  local dir, errfile

  -- Runs brine with words; returns stdout, stderr, exit status.
  local function brine(...)
    local words = { sh_quote(bin) }
    for i = 1, select("#", ...) do
      words[#words + 1] = sh_quote(select(i, ...))
    end
    local p = io.popen(table.concat(words, " ") .. " 2>" .. errfile, "r")
    local out = p:read("a")
    local _, _, status = p:close()
    local f = io.open(errfile, "r")
    local err = f:read("a")
    f:close()
    return out, err, status
  end

  local function call(...)
    return brine("call", "--local", "--no-color", "-c", dir, "-m", dir .. "/mods", "--id",
      "e2e-minion", ...)
  end

  local function write(path, text)
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
  end

  setup(function()
    dir = assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-call-XXXXXX"))
    errfile = dir .. "/stderr"
    luv.fs_mkdir(dir .. "/mods", 448)
    write(dir .. "/mods/hello.lua", [[
local M = {}
M.__defaults__ = { greet = { name = "world" } }
--- Greets someone.
function M.greet(name)
  return "hello " .. name .. " from " .. grains.id
end
function M.fail()
  return nil, "it did not work"
end
return M
]])
  end)

  teardown(function()
    os.remove(dir .. "/mods/hello.lua")
    os.remove(dir .. "/mods")
    os.remove(dir .. "/minion")
    os.remove(errfile)
    os.remove(dir .. "/out")
    os.remove(dir)
  end)

  it("prints test.ping with the nested outputter and exits 0", function()
    local out, err, status = call("test.ping")
    assert.equal("local:\n    True\n", out)
    assert.equal("", err)
    assert.equal(0, status)
  end)

  it("prints test.ping through every outputter as Salt does", function()
    assert.equal('{\n    "local": true\n}\n', (call("test.ping", "--out=json")))
    assert.equal('{"local": true}\n', (call("test.ping", "--out", "json", "--out-indent=-1")))
    assert.equal('{\n  "local": true\n}\n', (call("--out=json", "--out-indent", "2", "test.ping")))
    assert.equal("local: True\n", (call("test.ping", "--out=txt")))
    assert.equal("{'local': True}\n", (call("test.ping", "--out=raw")))
    assert.equal("", (call("test.ping", "--out=quiet")))
    if pcall(require, "brine.yaml") then
      assert.equal("local: true\n", (call("test.ping", "--out=yaml")))
    end
  end)

  it("colours as Salt does: by default even into a pipe, unless told not to", function()
    local coloured = "\27[0;36mlocal\27[0;0m:\n    \27[0;1;33mTrue\27[0;0m\n"
    assert.equal(coloured, (brine("call", "--local", "-c", dir, "test.ping")))
    assert.equal("local:\n    True\n", (call("test.ping")))
    assert.equal(coloured, (call("test.ping", "--force-color")))
    write(dir .. "/minion", "color: False\n")
    local plain = brine("call", "--local", "-c", dir, "test.ping")
    local forced = brine("call", "--local", "-c", dir, "test.ping", "--force-color")
    os.remove(dir .. "/minion")
    assert.equal("local:\n    True\n", plain)
    assert.equal(coloured, forced)
  end)

  it("falls back to nested for an unknown outputter, saying so as Salt does", function()
    local out, err, status = call("test.ping", "--out=bogus")
    assert.equal("local:\n    True\n", out)
    assert.equal("[ERROR   ] Invalid outputter bogus specified, fall back to nested\n", err)
    assert.equal(0, status)
  end)

  it("parses positional and key=value arguments as YAML, as salt-call does", function()
    local out = call("test.arg", "1", "a=[1, 2]", "b=yes", "text", "c=0644", "--out=raw")
    assert.equal("{'local': {'args': (1, 'text'), 'kwargs': {'a': [1, 2], 'b': True, "
      .. "'c': 644}}}\n", out)
    out = call("test.arg", "c=0644", "d=yes", "--no-parse=c", "--out=raw")
    assert.equal("{'local': {'args': (), 'kwargs': {'c': '0644', 'd': True}}}\n", out)
  end)

  it("says a missing function is not available and exits 255", function()
    local out, err, status = call("foo.bar")
    assert.equal("", out)
    assert.equal("'foo.bar' is not available.\n", err)
    assert.equal(255, status)
  end)

  it("reports bad arguments and unknown keyword arguments with status 1", function()
    local _, err, status = call("test.echo")
    assert.matches("Passed invalid arguments: echo%(%) missing 1 required positional "
      .. "argument: 'text'%.", err)
    assert.equal(1, status)
    _, err, status = call("test.ping", "x=1")
    assert.equal("The following keyword arguments are not valid: x=1\n", err)
    assert.equal(1, status)
  end)

  it("reports a module's error and its failure return", function()
    local _, err, status = call("test.exception", "boom")
    assert.matches("An un%-handled exception was caught by Salt's global exception handler",
      err)
    assert.matches("boom", err)
    assert.equal(1, status)
    _, err, status = call("hello.fail")
    assert.equal("Error running 'hello.fail': it did not work\n", err)
    assert.equal(1, status)
  end)

  it("loads only the module it calls: others in module_dirs are never run", function()
    local marker = dir .. "/loaded"
    write(dir .. "/mods/heavy.lua", string.format([[
local f = io.open(%q, "a") f:write("x") f:close()
return { work = function() return "done" end }]], marker))
    write(dir .. "/mods/broken.lua", "local M = {\n")
    local out, err, status = call("test.ping")
    assert.equal("local:\n    True\n", out)
    assert.equal("", err)
    assert.equal(0, status)
    assert.is_nil(io.open(marker, "r"))
    assert.equal("local:\n    done\n", (call("heavy.work")))
    local f = assert(io.open(marker, "r"))
    assert.equal("x", f:read("a"))
    f:close()
    for _, path in ipairs({ marker, dir .. "/mods/heavy.lua", dir .. "/mods/broken.lua" }) do
      os.remove(path)
    end
  end)

  it("runs modules from module_dirs with the configured id", function()
    assert.equal("local:\n    hello world from e2e-minion\n", (call("hello.greet")))
    local out = brine("call", "--local", "--no-color", "-c", dir, "-m", dir .. "/mods", "--id",
      "other", "hello.greet", "name=you")
    assert.equal("local:\n    hello you from other\n", out)
  end)

  it("reads module_dirs and id from the minion file", function()
    if not pcall(require, "brine.yaml") then
      pending("brine.yaml is not in this build")
      return
    end
    write(dir .. "/minion", "id: from-file\nmodule_dirs: [" .. dir .. "/mods]\n")
    local out = brine("call", "--local", "--no-color", "-c", dir, "hello.greet")
    os.remove(dir .. "/minion")
    assert.equal("local:\n    hello world from from-file\n", out)
  end)

  it("runs commands with cmd.run and passes return codes through", function()
    local out, _, status = call("cmd.run", "echo one; echo two >&2; exit 3")
    assert.equal("local:\n    one\n    two\n", out)
    assert.equal(1, status)
    _, _, status = call("cmd.run", "exit 3", "--retcode-passthrough")
    assert.equal(3, status)
    _, _, status = call("test.retcode", "7", "--retcode-passthrough")
    assert.equal(7, status)
    _, _, status = call("cmd.run", "exit 0")
    assert.equal(0, status)
    _, _, status = call("test.outputter", "{result: false}")
    assert.equal(1, status)
    _, _, status = call("test.outputter", "{result: true}")
    assert.equal(0, status)
  end)

  it("writes to --out-file, replacing or appending", function()
    local path = dir .. "/out"
    call("test.ping", "--out-file", path)
    call("test.echo", "x", "--out-file", path, "--out-file-append")
    local f = io.open(path, "r")
    assert.equal("local:\n    True\nlocal:\n    x\n", f:read("a"))
    f:close()
    call("test.ping", "--out-file", path)
    f = io.open(path, "r")
    assert.equal("local:\n    True\n", f:read("a"))
    f:close()
  end)

  it("has help, refuses unknown options and needs --local for now", function()
    local out, _, status = brine("call", "--help")
    assert.matches("Usage: brine call", out)
    assert.equal(0, status)
    -- the top-level help lists the subcommands and salt's targeting options
    out, _, status = brine("--help")
    assert.equal(0, status)
    assert.matches("\n  call +run an execution module function here", out)
    assert.matches("\nPublishing a job %(brine TARGET FUNCTION, as salt%):\n", out)
    assert.matches("\n  %-G, %-%-grain ", out)
    local _, err
    _, err, status = call("--bogus", "test.ping")
    assert.matches("no such option: %-%-bogus", err)
    assert.equal(2, status)
    _, err, status = brine("call", "-c", dir, "test.ping")
    assert.matches("master", err)
    assert.equal(2, status)
  end)

  it("prints the versions report with -V, as salt-call does", function()
    local out, _, status = brine("call", "--versions-report")
    assert.matches("^Brine Version:\n +Brine: %d+%.%d+", out)
    assert.matches("\nDependency Versions:\n", out)
    assert.equal(0, status)
  end)

  it("runs as brine-call through the symlink", function()
    local link = os.getenv("BRINE_BIN_DIR") .. "/brine-call"
    local p = io.popen(sh_quote(link) .. " --local --no-color -c " .. sh_quote(dir) .. " test.ping")
    assert.equal("local:\n    True\n", p:read("a"))
    p:close()
  end)

  it("names the file and line of a broken configuration", function()
    if not pcall(require, "brine.yaml") then
      pending("brine.yaml is not in this build")
      return
    end
    local bad = assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-bad-XXXXXX"))
    write(bad .. "/minion", "id: x\n  bad: [\n")
    local _, err, status = brine("call", "--local", "-c", bad, "test.ping")
    os.remove(bad .. "/minion")
    os.remove(bad)
    assert.matches(bad:gsub("%p", "%%%0") .. "/minion:%d+:%d+: ", err)
    assert.equal(2, status)
  end)
end)
