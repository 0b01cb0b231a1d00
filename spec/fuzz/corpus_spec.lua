-- Replays the fuzz seed corpus (spec/fuzz/corpus) through both decoders:
-- files named ok_* must decode and survive a round trip, files named bad_*
-- must be refused with a message. Inputs the fuzzers found troublesome are
-- added here so they stay fixed.
local dir = require("pl.dir")
local path = require("pl.path")
local json = require("brine.json")
local mp = require("brine.msgpack")

local root = path.join(os.getenv("BRINE_SOURCE_DIR") or ".", "spec", "fuzz", "corpus")

local function read(file)
  local f = assert(io.open(file, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local codecs = {
  { folder = "json", decode = json.decode, encode = json.encode },
  { folder = "msgpack", decode = mp.unpack, encode = mp.pack },
}

for _, codec in ipairs(codecs) do
  describe("fuzz corpus " .. codec.folder, function()
    local files = dir.getfiles(path.join(root, codec.folder))
    table.sort(files)

    it("has seeds of both kinds", function()
      local kinds = {}
      for _, file in ipairs(files) do
        kinds[path.basename(file):match("^(%a+)_")] = true
      end
      assert.is_true(kinds.ok and kinds.bad)
    end)

    for _, file in ipairs(files) do
      local name = path.basename(file)
      it(name, function()
        local v, err = codec.decode(read(file))
        if name:match("^ok_") then
          assert.is_nil(err)
          local out = assert(codec.encode(v))
          assert.equal(out, codec.encode(codec.decode(out)))
        else
          assert.is_nil(v)
          assert.equal("string", type(err))
        end
      end)
    end
  end)
end
