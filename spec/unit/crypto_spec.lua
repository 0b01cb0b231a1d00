local crypto = require("brine.crypto")

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

describe("brine.crypto key pairs and boxes", function()
  it("makes box key pairs of libsodium's sizes", function()
    local pk, sk = crypto.box_keypair()
    assert.equal(crypto.BOX_PUBLICKEYBYTES, #pk)
    assert.equal(32, #sk)
    assert.equal(pk, crypto.box_public(sk))
    local pk2 = crypto.box_keypair()
    assert.not_equal(pk, pk2)
  end)

  it("seals for a public key and opens with the pair", function()
    local pk, sk = crypto.box_keypair()
    local c = crypto.seal("minion key accepted", pk)
    assert.equal(#"minion key accepted" + crypto.SEALBYTES, #c)
    assert.equal("minion key accepted", crypto.seal_open(c, pk, sk))
    local opk, osk = crypto.box_keypair()
    local m, err, code = crypto.seal_open(c, opk, osk)
    assert.is_nil(m)
    assert.matches("authentication failed", err)
    assert.equal("auth", code)
    assert.is_nil((crypto.seal_open("short", pk, sk)))
  end)

  it("boxes between two parties and rejects tampering", function()
    local apk, ask = crypto.box_keypair()
    local bpk, bsk = crypto.box_keypair()
    local nonce = crypto.nonce_box()
    assert.equal(crypto.BOX_NONCEBYTES, #nonce)
    local c = crypto.box("pillar", nonce, bpk, ask)
    assert.equal("pillar", crypto.box_open(c, nonce, apk, bsk))
    local bad = c:sub(1, -2) .. string.char((c:byte(-1) + 1) % 256)
    local m, _, code = crypto.box_open(bad, nonce, apk, bsk)
    assert.is_nil(m)
    assert.equal("auth", code)
  end)

  it("secretboxes with a key and a nonce", function()
    local key = crypto.secretbox_key()
    local nonce = crypto.nonce_secretbox()
    local c = crypto.secretbox("", nonce, key)
    assert.equal(crypto.SECRETBOX_MACBYTES, #c)
    assert.equal("", crypto.secretbox_open(c, nonce, key))
    assert.is_nil((crypto.secretbox_open(c, nonce, crypto.secretbox_key())))
  end)

  it("raises on keys and nonces of the wrong size", function()
    local pk = crypto.box_keypair()
    assert.has_error(function() crypto.seal("x", "short") end,
      "bad argument #2 to 'seal' (public key must be 32 bytes, got 5)")
    assert.has_error(function() crypto.box("x", "n", pk, pk) end)
    assert.has_error(function() crypto.seal({}, pk) end)
  end)
end)

describe("brine.crypto signatures", function()
  it("signs detached and verifies", function()
    local pk, sk = crypto.sign_keypair()
    assert.equal(64, #sk)
    assert.equal(pk, crypto.sign_public(sk))
    local sig = crypto.sign("publish job 42", sk)
    assert.equal(crypto.SIGN_BYTES, #sig)
    assert.is_true(crypto.verify(sig, "publish job 42", pk))
    assert.is_false(crypto.verify(sig, "publish job 43", pk))
    assert.is_false(crypto.verify("short", "publish job 42", pk))
    local other = crypto.sign_keypair()
    assert.is_false(crypto.verify(sig, "publish job 42", other))
  end)
end)

describe("brine.crypto secrets", function()
  it("keeps a secret key in userdata that wipes when closed", function()
    local pk, sk = crypto.box_keypair({ secret = true })
    assert.equal("userdata", type(sk))
    assert.equal(32, sk:len())
    assert.equal(pk, crypto.box_public(sk))
    local c = crypto.seal("hi", pk)
    assert.equal("hi", crypto.seal_open(c, pk, sk))
    assert.matches("32 bytes", tostring(sk))
    local raw = sk:bytes()
    sk:close()
    sk:close()
    assert.matches("closed", tostring(sk))
    assert.has_error(function() sk:bytes() end)
    assert.has_error(function() crypto.seal_open(c, pk, sk) end)
    assert.equal("hi", crypto.seal_open(c, pk, crypto.secret(raw)))
  end)

  it("closes at the end of a to-be-closed scope", function()
    local escaped
    do
      local key <close> = crypto.secretbox_key({ secret = true })
      escaped = key
      assert.equal(32, #key:bytes())
    end
    assert.has_error(function() escaped:bytes() end)
  end)
end)

describe("brine.crypto digests", function()
  local vectors = {
    md5 = "900150983cd24fb0d6963f7d28e17f72",
    sha1 = "a9993e364706816aba3e25717850c26c9cd0d89d",
    sha224 = "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
    sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    sha384 = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
      .. "8086072ba1e7cc2358baeca134c825a7",
    sha512 = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      .. "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    blake2b = "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
      .. "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923",
  }

  it("hashes 'abc' to the published values", function()
    for algo, want in pairs(vectors) do
      assert.equal(want, crypto.hash(algo, "abc"), algo)
    end
  end)

  it("hashes in chunks as at once, and can go on after a digest", function()
    local data = string.rep("0123456789abcdef", 1000) .. "tail"
    for algo in pairs(vectors) do
      local h = crypto.hasher(algo)
      for i = 1, #data, 333 do
        h:update(data:sub(i, i + 332))
      end
      assert.equal(crypto.hash(algo, data), h:hexdigest(), algo)
      assert.equal(crypto.hash(algo, data), hex(h:digest()), algo)
      h:update("more")
      assert.equal(crypto.hash(algo, data .. "more"), h:hexdigest(), algo)
      h:close()
      h:close()
      assert.has_error(function() h:update("x") end)
    end
  end)

  it("raises on an unknown algorithm", function()
    assert.has_error(function() crypto.hash("sha3", "x") end)
    assert.has_error(function() crypto.hasher("crc32") end)
  end)

  it("computes HMAC as RFC 2202 and RFC 4231 say", function()
    local msg = "what do ya want for nothing?"
    assert.equal("750c783e6ab0b503eaa86e310a5db738", crypto.hmac("md5", "Jefe", msg))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      crypto.hmac("sha256", "Jefe", msg))
    assert.equal(crypto.hmac("sha1", "Jefe", msg),
      crypto.hmac("sha1", crypto.secret("Jefe"), msg))
  end)

  it("prints fingerprints as Salt does", function()
    local f = crypto.fingerprint("abc")
    assert.equal("ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:"
      .. "7a:9c:b4:10:ff:61:f2:00:15:ad", f)
    assert.equal("90:01:50:98:3c:d2:4f:b0:d6:96:3f:7d:28:e1:7f:72",
      crypto.fingerprint("abc", "md5"))
  end)
end)

describe("brine.crypto helpers", function()
  it("makes random bytes and hex", function()
    assert.equal(0, #crypto.random(0))
    assert.equal(48, #crypto.random(48))
    assert.not_equal(crypto.random(16), crypto.random(16))
    local h = crypto.random_hex(8)
    assert.equal(16, #h)
    assert.matches("^[0-9a-f]+$", h)
    assert.has_error(function() crypto.random(-1) end)
  end)

  it("compares in constant time", function()
    assert.is_true(crypto.compare("abc", "abc"))
    assert.is_false(crypto.compare("abc", "abd"))
    assert.is_false(crypto.compare("abc", "abcd"))
  end)

  it("round-trips hex and base64", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    assert.equal("00ff10", crypto.to_hex("\0\255\16"))
    assert.equal(all, crypto.from_hex(crypto.to_hex(all)))
    assert.equal("\0\255", crypto.from_hex("00FF"))
    assert.equal(all, crypto.base64_decode(crypto.base64_encode(all)))
    assert.equal("Zm9vYg==", crypto.base64_encode("foob"))
    assert.equal("", crypto.base64_encode(""))
    assert.equal("foobar", crypto.base64_decode("Zm9v\nYmFy\n"))
    local v, err, code = crypto.base64_decode("Zm9vYg")
    assert.is_nil(v)
    assert.equal("invalid base64 string", err)
    assert.equal("EINVAL", code)
    assert.is_nil((crypto.from_hex("abc")))
    assert.is_nil((crypto.from_hex("zz")))
  end)
end)
