local proc = require("brine.proc")

-- True when process pid is gone (or only a zombie left for init to reap).
local function gone(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return true end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() (%a)") == "Z"
end

local function wait_gone(pid)
  for _ = 1, 50 do
    if gone(pid) then return true end
    proc.run({ argv = { "sleep", "0.02" } })
  end
  return false
end

describe("brine.proc.run", function()
  it("passes argv through untouched and lets the shell parse a string", function()
    local r = assert(proc.run({ argv = { "printf", "%s|", "a b", "$HOME", "'q'" } }))
    assert.equal("a b|$HOME|'q'|", r.stdout)
    assert.equal(0, r.retcode)
    assert.is_false(r.timed_out)
    assert.is_nil(r.signal)
    assert.is_true(r.pid > 0)
    r = assert(proc.run({ shell = "printf '%s|' \"a b\" c; echo oops >&2" }))
    assert.equal("a b|c|", r.stdout)
    assert.equal("oops\n", r.stderr)
  end)

  it("returns the exit status and the shell's code for a signal", function()
    assert.equal(3, proc.run({ shell = "exit 3" }).retcode)
    local r = proc.run({ shell = "kill -9 $$" })
    assert.equal(137, r.retcode)
    assert.equal("SIGKILL", r.signal)
  end)

  it("sets, removes and clears environment variables", function()
    local r = proc.run({ shell = 'echo "$BRINE_X|$HOME"', env = { BRINE_X = "yes", HOME = false } })
    assert.equal("yes|\n", r.stdout)
    r = proc.run({ argv = { "env" }, clear_env = true, env = { ONLY = "1" } })
    assert.equal("ONLY=1\n", r.stdout)
  end)

  it("runs in the given folder with the given umask", function()
    assert.equal("/\n", proc.run({ argv = { "pwd" }, cwd = "/" }).stdout)
    assert.equal("0027\n", proc.run({ shell = "umask", umask = tonumber("027", 8) }).stdout)
    local r, err, code = proc.run({ argv = { "pwd" }, cwd = "/no/such/dir" })
    assert.is_nil(r)
    assert.equal("cannot run 'pwd': cannot change to directory '/no/such/dir': "
      .. "No such file or directory", err)
    assert.equal("ENOENT", code)
  end)

  it("feeds stdin, or /dev/null when none is given", function()
    local big = string.rep("0123456789abcdef", 200000) -- 3.2 MB each way
    local r = assert(proc.run({ argv = { "cat" }, stdin = big }))
    assert.equal(#big, #r.stdout)
    assert.is_true(r.stdout == big)
    assert.equal("", proc.run({ argv = { "cat" } }).stdout)
    -- a child that never reads its stdin does not hang or kill us
    r = assert(proc.run({ shell = "exec 0<&-; echo done", stdin = big }))
    assert.equal("done\n", r.stdout)
  end)

  it("captures several MB on both streams without deadlock", function()
    local r = assert(proc.run({
      shell = "head -c 5000000 /dev/zero; head -c 3000000 /dev/zero >&2; "
        .. "head -c 2000000 /dev/zero",
    }))
    assert.equal(7000000, #r.stdout)
    assert.equal(3000000, #r.stderr)
    assert.is_false(r.truncated)
  end)

  it("cuts output beyond max_output and says so", function()
    local r = assert(proc.run({ shell = "head -c 100000 /dev/zero", max_output = 1000 }))
    assert.equal(1000, #r.stdout)
    assert.is_true(r.truncated)
    assert.equal(0, r.retcode)
  end)

  it("kills the whole process group at the timeout", function()
    local t0 = os.time()
    local r = assert(proc.run({ shell = "sleep 30 & echo $!; wait", timeout = 0.3 }))
    assert.is_true(r.timed_out)
    assert.equal("SIGTERM", r.signal)
    assert.equal(143, r.retcode)
    local grandchild = tonumber(r.stdout)
    assert.is_true(wait_gone(grandchild))
    -- the shell is gone at once but its child still holds the pipes
    r = assert(proc.run({ shell = "sleep 30 & echo $!", timeout = 0.3 }))
    assert.is_true(r.timed_out)
    assert.is_true(wait_gone(tonumber(r.stdout)))
    assert.is_true(os.time() - t0 < 10)
  end)

  it("reports a program that cannot start", function()
    local r, err, code = proc.run({ argv = { "no-such-program-brine" } })
    assert.is_nil(r)
    assert.equal("cannot run 'no-such-program-brine': No such file or directory", err)
    assert.equal("ENOENT", code)
    local plain = os.tmpname() -- mode 0600: not executable, even for root
    r, err, code = proc.run({ argv = { plain } })
    os.remove(plain)
    assert.is_nil(r)
    assert.equal("cannot run '" .. plain .. "': Permission denied", err)
    assert.equal("EACCES", code)
  end)

  it("switches user when root, and refuses clearly otherwise", function()
    local me = proc.run({ argv = { "id", "-u" } }).stdout
    local nobody = proc.run({ argv = { "id", "-u", "nobody" } }).stdout
    if me == "0\n" then
      local r = assert(proc.run({ argv = { "id", "-u" }, user = "nobody" }))
      assert.equal(nobody, r.stdout)
      r = assert(proc.run({ shell = "echo $HOME; id -g", user = "nobody", group = 0 }))
      assert.equal("0", r.stdout:match("\n(%d+)\n$"))
    else
      local r, err, code = proc.run({ argv = { "id" }, user = "nobody" })
      assert.is_nil(r)
      assert.equal("cannot run 'id': switching to user 'nobody' needs root", err)
      assert.equal("EPERM", code)
    end
    local r, err = proc.run({ argv = { "id" }, user = "no-such-user-brine" })
    assert.is_nil(r)
    assert.equal("cannot run 'id': no such user 'no-such-user-brine'", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() proc.run({}) end,
      "proc.run: give exactly one of 'argv' and 'shell'")
    assert.has_error(function() proc.run({ argv = {} }) end)
    assert.has_error(function() proc.run({ argv = { "true" }, shell = "true" }) end)
    assert.has_error(function() proc.run({ argv = { "true" }, timeout = "1" }) end,
      "proc.run: option 'timeout' must be a number of seconds, got string")
    assert.has_error(function() proc.run({ argv = { "true" }, env = { X = {} } }) end)
    assert.has_error(function() proc.run("true") end)
  end)
end)

describe("brine.proc helpers", function()
  it("finds programs on the path", function()
    assert.matches("^/.*/sh$", proc.which("sh"))
    assert.is_nil(proc.which("no-such-program-brine"))
    assert.is_nil(proc.which("sh", "/no/such/dir"))
    assert.equal("/bin/sh", proc.which("sh", "/no/such/dir:/bin"))
    assert.equal("/bin/sh", proc.which("/bin/sh"))
  end)

  it("names signals and sends them", function()
    assert.equal(15, proc.signal_number("TERM"))
    assert.equal(9, proc.signal_number("SIGKILL"))
    assert.is_nil(proc.signal_number("SIGNOPE"))
    assert.equal("SIGHUP", proc.signal_name(1))
    local ok, err, code = proc.kill(2147483646, "TERM")
    assert.is_nil(ok)
    assert.equal("kill 2147483646: No such process", err)
    assert.equal("ESRCH", code)
    assert.has_error(function() proc.kill(1, "SIGNOPE") end)
  end)
end)
