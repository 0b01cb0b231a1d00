/* Checks the digests of engine/src/hash.c against the published test
 * vectors: RFC 1321 appendix A.5 for MD5, the FIPS 180 examples ("abc",
 * the 448- and 896-bit messages, one million 'a') for SHA-1 and SHA-2,
 * RFC 2202 / RFC 4231 for HMAC, RFC 7693 appendix A for BLAKE2b. Also
 * checks that feeding a message in odd-sized pieces gives the same
 * digest as feeding it at once. */
#include "hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static const char M448[] =
    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char M896[] =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
    "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
#define MILLION_A NULL

struct vector {
  const char *algo, *msg, *hex;
};

static const struct vector VECTORS[] = {
    {"md5", "", "d41d8cd98f00b204e9800998ecf8427e"},
    {"md5", "abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"md5", "message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"md5",
     "1234567890123456789012345678901234567890"
     "1234567890123456789012345678901234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
    {"sha1", "", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"sha1", "abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {"sha1", M448, "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    {"sha1", MILLION_A, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
    {"sha224", "", "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"},
    {"sha224", "abc",
     "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"},
    {"sha224", M448,
     "75388b16512776cc5dba5da1fd890150b0c6455cb4f58b1952522525"},
    {"sha224", MILLION_A,
     "20794655980c91d8bbb4c1ea97618a4bf03f42581948b2ee4ee7ad67"},
    {"sha256", "",
     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"sha256", "abc",
     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"sha256", M448,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"sha256", MILLION_A,
     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    {"sha384", "",
     "38b060a751ac96384cd9327eb1b1e36a21fdb71114be0743"
     "4c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"},
    {"sha384", "abc",
     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163"
     "1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"},
    {"sha384", M896,
     "09330c33f71147e83d192fc782cd1b4753111b173b3b05d2"
     "2fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039"},
    {"sha384", MILLION_A,
     "9d0e1809716474cb086e834e310a4a1ced149e9c00f24852"
     "7972cec5704c2a5b07b8b3dc38ecc4ebae97ddd87f3d8985"},
    {"sha512", "",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"},
    {"sha512", "abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
    {"sha512", M896,
     "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
     "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"},
    {"sha512", MILLION_A,
     "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
     "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"},
    {"blake2b", "abc",
     "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
     "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"},
};

static void to_hex(const unsigned char *d, size_t n, char *out)
{
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
}

static void expect(const char *what, const char *algo, const unsigned char *d,
                   size_t n, const char *hex)
{
  char got[2 * BRINE_HASH_MAX_DIGEST + 1];
  to_hex(d, n, got);
  if (strcmp(got, hex) != 0) {
    fprintf(stderr, "%s %s: got %s, want %s\n", algo, what, got, hex);
    failures++;
  }
}

/* Hashes the vector's message at once and in pieces of 1, 7, 63, 64 and
 * 129 bytes (across block edges). The million 'a' go in 1000 chunks. */
static void check_vector(const struct vector *v)
{
  const struct brine__hash_kind *k = brine__hash_find(v->algo);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  struct brine__hash h;
  if (!k) {
    fprintf(stderr, "unknown algorithm %s\n", v->algo);
    failures++;
    return;
  }
  if (!v->msg) {
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    brine__hash_init(&h, k);
    for (int i = 0; i < 1000; i++)
      brine__hash_update(&h, chunk, sizeof chunk);
    brine__hash_final(&h, d);
    expect("million a", v->algo, d, brine__hash_digest_size(k), v->hex);
    return;
  }
  size_t n = strlen(v->msg);
  brine__hash_buffer(k, v->msg, n, d);
  expect(v->msg, v->algo, d, brine__hash_digest_size(k), v->hex);

  static const size_t pieces[] = {1, 7, 63, 64, 129};
  for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
    brine__hash_init(&h, k);
    for (size_t off = 0; off < n; off += pieces[p])
      brine__hash_update(&h, v->msg + off,
                         n - off < pieces[p] ? n - off : pieces[p]);
    brine__hash_final(&h, d);
    expect("in pieces", v->algo, d, brine__hash_digest_size(k), v->hex);
  }
}

static void check_hmac(const char *algo, const char *key, const char *msg,
                       const char *hex)
{
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  size_t n = brine__hmac(brine__hash_find(algo), key, strlen(key), msg,
                         strlen(msg), d);
  expect("hmac", algo, d, n, hex);
}

int main(void)
{
  for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++)
    check_vector(&VECTORS[i]);

  const char *jefe = "what do ya want for nothing?";
  check_hmac("md5", "Jefe", jefe, "750c783e6ab0b503eaa86e310a5db738");
  check_hmac("sha1", "Jefe", jefe, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  check_hmac(
      "sha256", "Jefe", jefe,
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  check_hmac(
      "sha512", "Jefe", jefe,
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
  /* RFC 4231 test case 6: a key longer than the block is hashed first. */
  char longkey[132];
  memset(longkey, 0xaa, 131);
  longkey[131] = 0;
  check_hmac(
      "sha256", longkey,
      "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");

  if (brine__hash_find("sha3") != NULL) {
    fprintf(stderr, "sha3 should be unknown\n");
    failures++;
  }
  if (failures)
    fprintf(stderr, "%d hash checks failed\n", failures);
  return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
