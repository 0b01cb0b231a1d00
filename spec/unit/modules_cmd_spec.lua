-- The cmd execution module runs real commands, with Salt's options.
local data = require("brine.data")
local loader = require("brine.loader")

describe("modules/cmd", function()
  local ld

  before_each(function()
    ld = loader.new({})
  end)

  local function cli_kw(t)
    t = t or {}
    t.__pub_jid = "20260101000000000000"
    return t
  end

  it("runs through the shell from the command line, merging stderr", function()
    assert.equal("out\nerr", ld:call("cmd.run", { "echo out; echo err >&2" }, cli_kw()))
    assert.equal(0, ld.context.retcode)
  end)

  it("splits words itself when python_shell is False", function()
    assert.equal("a  b $HOME", ld:call("cmd.run", { 'echo "a  b" $HOME' }))
    assert.equal("a  b /x", ld:call("cmd.run", { 'echo "a  b" $HOME' },
      cli_kw({ env = { HOME = "/x" } })))
  end)

  it("returns everything from run_all and records the return code", function()
    local r = ld:call("cmd.run_all", { "echo o; echo e >&2; exit 3" }, cli_kw())
    assert.equal("o", r.stdout)
    assert.equal("e", r.stderr)
    assert.equal(3, r.retcode)
    assert.equal("integer", math.type(r.pid))
    assert.equal(3, ld.context.retcode)
    ld:call("cmd.retcode", { "exit 4" }, cli_kw({ ignore_retcode = true }))
    assert.equal(0, ld.context.retcode)
  end)

  it("runs in the home folder unless given cwd", function()
    assert.equal(os.getenv("HOME"), ld:call("cmd.run", { "pwd" }))
  end)

  it("honours cwd, env, stdin and rstrip", function()
    assert.equal("/", ld:call("cmd.run", { "pwd" }, { cwd = "/" }))
    assert.equal("v", ld:call("cmd.shell", { "echo $BRINE_T" }, { env = { BRINE_T = "v" } }))
    assert.equal("fed", ld:call("cmd.run_stdout", { "cat" }, { stdin = "fed" }))
    assert.equal("a\nb", ld:call("cmd.run_stdout", { "cat" }, { stdin = "a\\nb" }))
    assert.equal("x\n", ld:call("cmd.run_stdout", { "echo x" }, { rstrip = false }))
    assert.equal("e", ld:call("cmd.run_stderr", { "echo e >&2" }, cli_kw()))
  end)

  it("kills a command that runs past its timeout", function()
    local t0 = os.time()
    local r = ld:call("cmd.run_all", { "sleep 5; echo late" }, cli_kw({ timeout = 1 }))
    assert.is_true(os.time() - t0 < 4)
    assert.equal(1, r.retcode)
    assert.equal("sleep 5; echo late : Timed out after 1 seconds", r.stdout)
    r = ld:call("cmd.run_all", { "sleep 5" }, { timeout = 1 })
    assert.equal("['sleep', '5'] : Timed out after 1 seconds", r.stdout)
  end)

  it("fails as Salt does on a missing cwd or program", function()
    local v, err = ld:call("cmd.run", { "pwd" }, { cwd = "/no/such/dir" })
    assert.is_nil(v)
    assert.matches("Specified cwd '/no/such/dir'", err)
    v, err = ld:call("cmd.run", { "no-such-program-x" })
    assert.is_nil(v)
    assert.matches("Unable to run command '%['no%-such%-program%-x'%]'", err)
  end)

  it("finds programs", function()
    assert.matches("/sh$", ld:call("cmd.which", { "sh" }))
    assert.is_nil(ld:call("cmd.which", { "no-such-program-x" }))
    assert.is_true(ld:call("cmd.has_exec", { "sh" }))
  end)

  it("splits like Python's shlex", function()
    local split = ld:module("cmd")._shlex_split
    assert.same({ "a", "b c", "d'e", 'f"g', "h\\i" }, split([[a "b c" "d'e" 'f"g' h\\i]]))
    assert.same({}, split("   "))
    assert.is_false(pcall(split, "'open"))
    assert.equal(data.null, data.null)
  end)
end)
