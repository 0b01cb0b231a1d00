-- The file module's basics on a scratch folder.
local loader = require("brine.loader")
local luv = require("luv")

describe("modules/file", function()
  local ld, dir

  before_each(function()
    ld = loader.new({})
    dir = assert(luv.fs_mkdtemp((os.getenv("TMPDIR") or "/tmp") .. "/brine-file-XXXXXX"))
  end)

  after_each(function()
    ld:call("file.remove", { dir })
  end)

  it("writes lines, reads them back and tells files from folders", function()
    local path = dir .. "/f"
    assert.equal('Wrote 3 lines to "' .. path .. '"',
      ld:call("file.write", { path, "a", 1, "b c" }))
    assert.equal("a\n1\nb c\n", ld:call("file.read", { path }))
    assert.is_true(ld:call("file.file_exists", { path }))
    assert.is_false(ld:call("file.file_exists", { dir }))
    assert.is_true(ld:call("file.directory_exists", { dir }))
    assert.is_false(ld:call("file.directory_exists", { path }))
  end)

  it("reports stats in Salt's shape", function()
    local path = dir .. "/s"
    ld:call("file.touch", { path })
    luv.fs_chmod(path, tonumber("640", 8))
    local st = ld:call("file.stats", { path })
    assert.equal("0640", st.mode)
    assert.equal("file", st.type)
    assert.equal(0, st.size)
    assert.equal("integer", math.type(st.inode))
    local v, err = ld:call("file.stats", { dir .. "/none" })
    assert.is_nil(v)
    assert.equal("Path not found: " .. dir .. "/none", err)
  end)

  it("makes folder trees and removes them", function()
    assert.is_true(ld:call("file.mkdir", { dir .. "/a/b/c" }))
    assert.is_true(ld:call("file.directory_exists", { dir .. "/a/b/c" }))
    assert.is_true(ld:call("file.remove", { dir .. "/a" }))
    assert.is_false(ld:call("file.directory_exists", { dir .. "/a" }))
    assert.is_false(ld:call("file.remove", { dir .. "/a" }))
  end)

  local has_crypto = pcall(require, "brine.crypto")
  local it_crypto = has_crypto and it or pending
  it_crypto("hashes files, sha256 by default", function()
    local path = dir .. "/h"
    ld:call("file.write", { path, "abc" })
    assert.equal("edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb",
      ld:call("file.get_hash", { path }))
  end)
end)
