/* Message digests: MD5 (RFC 1321), SHA-1, SHA-224, SHA-256, SHA-384 and
 * SHA-512 (FIPS 180-4), written from the specifications because libsodium
 * offers only some of them; BLAKE2b (64-byte digest, as Python's hashlib
 * gives) through libsodium; HMAC (RFC 2104) over any of them. The block
 * buffering and padding are shared; each algorithm supplies its start
 * values and its compression function. */
#include "hash.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct brine__hash_kind {
  const char *name;
  size_t digest, block;
  void (*init)(struct brine__hash *h);
  void (*compress)(struct brine__hash *h, const unsigned char *block);
  int little_endian; /* MD5 stores words and the length little-endian */
};

/* T[i] = floor(2^32 * abs(sin(i + 1))), RFC 1321 section 3.4. */
static const uint32_t MD5_T[64] = {
    0xd76aa478u, 0xe8c7b756u, 0x242070dbu, 0xc1bdceeeu, 0xf57c0fafu,
    0x4787c62au, 0xa8304613u, 0xfd469501u, 0x698098d8u, 0x8b44f7afu,
    0xffff5bb1u, 0x895cd7beu, 0x6b901122u, 0xfd987193u, 0xa679438eu,
    0x49b40821u, 0xf61e2562u, 0xc040b340u, 0x265e5a51u, 0xe9b6c7aau,
    0xd62f105du, 0x02441453u, 0xd8a1e681u, 0xe7d3fbc8u, 0x21e1cde6u,
    0xc33707d6u, 0xf4d50d87u, 0x455a14edu, 0xa9e3e905u, 0xfcefa3f8u,
    0x676f02d9u, 0x8d2a4c8au, 0xfffa3942u, 0x8771f681u, 0x6d9d6122u,
    0xfde5380cu, 0xa4beea44u, 0x4bdecfa9u, 0xf6bb4b60u, 0xbebfbc70u,
    0x289b7ec6u, 0xeaa127fau, 0xd4ef3085u, 0x04881d05u, 0xd9d4d039u,
    0xe6db99e5u, 0x1fa27cf8u, 0xc4ac5665u, 0xf4292244u, 0x432aff97u,
    0xab9423a7u, 0xfc93a039u, 0x655b59c3u, 0x8f0ccc92u, 0xffeff47du,
    0x85845dd1u, 0x6fa87e4fu, 0xfe2ce6e0u, 0xa3014314u, 0x4e0811a1u,
    0xf7537e82u, 0xbd3af235u, 0x2ad7d2bbu, 0xeb86d391u,
};

/* FIPS 180-4 4.2.2: cube roots of the first 64 primes. */
static const uint32_t K256[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu,
    0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u, 0xd807aa98u, 0x12835b01u,
    0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u,
    0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u,
    0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u,
    0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u,
    0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u, 0x1e376c08u,
    0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu,
    0x682e6ff3u, 0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* FIPS 180-4 4.2.3: cube roots of the first 80 primes. */
static const uint64_t K512[80] = {
    0x428a2f98d728ae22ull, 0x7137449123ef65cdull, 0xb5c0fbcfec4d3b2full,
    0xe9b5dba58189dbbcull, 0x3956c25bf348b538ull, 0x59f111f1b605d019ull,
    0x923f82a4af194f9bull, 0xab1c5ed5da6d8118ull, 0xd807aa98a3030242ull,
    0x12835b0145706fbeull, 0x243185be4ee4b28cull, 0x550c7dc3d5ffb4e2ull,
    0x72be5d74f27b896full, 0x80deb1fe3b1696b1ull, 0x9bdc06a725c71235ull,
    0xc19bf174cf692694ull, 0xe49b69c19ef14ad2ull, 0xefbe4786384f25e3ull,
    0x0fc19dc68b8cd5b5ull, 0x240ca1cc77ac9c65ull, 0x2de92c6f592b0275ull,
    0x4a7484aa6ea6e483ull, 0x5cb0a9dcbd41fbd4ull, 0x76f988da831153b5ull,
    0x983e5152ee66dfabull, 0xa831c66d2db43210ull, 0xb00327c898fb213full,
    0xbf597fc7beef0ee4ull, 0xc6e00bf33da88fc2ull, 0xd5a79147930aa725ull,
    0x06ca6351e003826full, 0x142929670a0e6e70ull, 0x27b70a8546d22ffcull,
    0x2e1b21385c26c926ull, 0x4d2c6dfc5ac42aedull, 0x53380d139d95b3dfull,
    0x650a73548baf63deull, 0x766a0abb3c77b2a8ull, 0x81c2c92e47edaee6ull,
    0x92722c851482353bull, 0xa2bfe8a14cf10364ull, 0xa81a664bbc423001ull,
    0xc24b8b70d0f89791ull, 0xc76c51a30654be30ull, 0xd192e819d6ef5218ull,
    0xd69906245565a910ull, 0xf40e35855771202aull, 0x106aa07032bbd1b8ull,
    0x19a4c116b8d2d0c8ull, 0x1e376c085141ab53ull, 0x2748774cdf8eeb99ull,
    0x34b0bcb5e19b48a8ull, 0x391c0cb3c5c95a63ull, 0x4ed8aa4ae3418acbull,
    0x5b9cca4f7763e373ull, 0x682e6ff3d6b2b8a3ull, 0x748f82ee5defb2fcull,
    0x78a5636f43172f60ull, 0x84c87814a1f0ab72ull, 0x8cc702081a6439ecull,
    0x90befffa23631e28ull, 0xa4506cebde82bde9ull, 0xbef9a3f7b2c67915ull,
    0xc67178f2e372532bull, 0xca273eceea26619cull, 0xd186b8c721c0c207ull,
    0xeada7dd6cde0eb1eull, 0xf57d4f7fee6ed178ull, 0x06f067aa72176fbaull,
    0x0a637dc5a2c898a6ull, 0x113f9804bef90daeull, 0x1b710b35131c471bull,
    0x28db77f523047d84ull, 0x32caab7b40c72493ull, 0x3c9ebe0a15c9bebcull,
    0x431d67c49c100d4cull, 0x4cc5d4becb3e42b6ull, 0x597f299cfc657e2aull,
    0x5fcb6fab3ad6faecull, 0x6c44198c4a475817ull,
};

/* FIPS 180-4 5.3: initial hash values. */
static const uint32_t H224[8] = {
    0xc1059ed8u, 0x367cd507u, 0x3070dd17u, 0xf70e5939u,
    0xffc00b31u, 0x68581511u, 0x64f98fa7u, 0xbefa4fa4u,
};

static const uint32_t H256[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

static const uint64_t H384[8] = {
    0xcbbb9d5dc1059ed8ull, 0x629a292a367cd507ull, 0x9159015a3070dd17ull,
    0x152fecd8f70e5939ull, 0x67332667ffc00b31ull, 0x8eb44a8768581511ull,
    0xdb0c2e0d64f98fa7ull, 0x47b5481dbefa4fa4ull,
};

static const uint64_t H512[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull,
    0xa54ff53a5f1d36f1ull, 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full,
    0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
};

static uint32_t rol32(uint32_t x, int n)
{
  return (x << n) | (x >> (32 - n));
}
static uint32_t ror32(uint32_t x, int n)
{
  return (x >> n) | (x << (32 - n));
}
static uint64_t ror64(uint64_t x, int n)
{
  return (x >> n) | (x << (64 - n));
}

static uint32_t load_le32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static uint32_t load_be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

static uint64_t load_be64(const unsigned char *p)
{
  return (uint64_t)load_be32(p) << 32 | load_be32(p + 4);
}

/* Aligned BLAKE2b state inside the union (libsodium wants 64 bytes). */
static crypto_generichash_state *b2_state(struct brine__hash *h)
{
  uintptr_t p = (uintptr_t)h->st.b2;
  return (crypto_generichash_state *)((p + 63) & ~(uintptr_t)63);
}

/* MD5 ------------------------------------------------------------------ */

static void md5_init(struct brine__hash *h)
{
  static const uint32_t iv[4] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                 0x10325476u};
  memcpy(h->st.w32, iv, sizeof iv);
}

static void md5_compress(struct brine__hash *h, const unsigned char *block)
{
  static const int shift[4][4] = {
      {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
  uint32_t x[16], a = h->st.w32[0], b = h->st.w32[1], c = h->st.w32[2],
                  d = h->st.w32[3];
  for (int i = 0; i < 16; i++)
    x[i] = load_le32(block + 4 * i);

  for (int i = 0; i < 64; i++) {
    int round = i / 16;
    uint32_t f;
    int g;
    switch (round) {
    case 0:
      f = (b & c) | (~b & d);
      g = i;
      break;
    case 1:
      f = (b & d) | (c & ~d);
      g = (5 * i + 1) % 16;
      break;
    case 2:
      f = b ^ c ^ d;
      g = (3 * i + 5) % 16;
      break;
    default:
      f = c ^ (b | ~d);
      g = (7 * i) % 16;
      break;
    }
    uint32_t t = d;
    d = c;
    c = b;
    b = b + rol32(a + f + MD5_T[i] + x[g], shift[round][i % 4]);
    a = t;
  }

  h->st.w32[0] += a;
  h->st.w32[1] += b;
  h->st.w32[2] += c;
  h->st.w32[3] += d;
}

/* SHA-1 ---------------------------------------------------------------- */

static void sha1_init(struct brine__hash *h)
{
  static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                 0x10325476u, 0xc3d2e1f0u};
  memcpy(h->st.w32, iv, sizeof iv);
}

static void sha1_compress(struct brine__hash *h, const unsigned char *block)
{
  uint32_t w[80], s[5];
  for (int t = 0; t < 16; t++)
    w[t] = load_be32(block + 4 * t);
  for (int t = 16; t < 80; t++)
    w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
  memcpy(s, h->st.w32, sizeof s);

  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (s[1] & s[2]) | (~s[1] & s[3]);
      k = 0x5a827999u;
    } else if (t < 40) {
      f = s[1] ^ s[2] ^ s[3];
      k = 0x6ed9eba1u;
    } else if (t < 60) {
      f = (s[1] & s[2]) | (s[1] & s[3]) | (s[2] & s[3]);
      k = 0x8f1bbcdcu;
    } else {
      f = s[1] ^ s[2] ^ s[3];
      k = 0xca62c1d6u;
    }
    uint32_t tmp = rol32(s[0], 5) + f + s[4] + k + w[t];
    s[4] = s[3];
    s[3] = s[2];
    s[2] = rol32(s[1], 30);
    s[1] = s[0];
    s[0] = tmp;
  }

  for (int i = 0; i < 5; i++)
    h->st.w32[i] += s[i];
}

/* SHA-224 and SHA-256 --------------------------------------------------- */

static void sha224_init(struct brine__hash *h)
{
  memcpy(h->st.w32, H224, sizeof H224);
}

static void sha256_init(struct brine__hash *h)
{
  memcpy(h->st.w32, H256, sizeof H256);
}

static void sha256_compress(struct brine__hash *h, const unsigned char *block)
{
  uint32_t w[64], s[8];
  for (int t = 0; t < 16; t++)
    w[t] = load_be32(block + 4 * t);
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  memcpy(s, h->st.w32, sizeof s);

  for (int t = 0; t < 64; t++) {
    uint32_t e = s[4], a = s[0];
    uint32_t t1 = s[7] + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
                  ((e & s[5]) ^ (~e & s[6])) + K256[t] + w[t];
    uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
                  ((a & s[1]) ^ (a & s[2]) ^ (s[1] & s[2]));
    memmove(s + 1, s, 7 * sizeof s[0]);
    s[4] += t1;
    s[0] = t1 + t2;
  }

  for (int i = 0; i < 8; i++)
    h->st.w32[i] += s[i];
}

/* SHA-384 and SHA-512 --------------------------------------------------- */

static void sha384_init(struct brine__hash *h)
{
  memcpy(h->st.w64, H384, sizeof H384);
}

static void sha512_init(struct brine__hash *h)
{
  memcpy(h->st.w64, H512, sizeof H512);
}

static void sha512_compress(struct brine__hash *h, const unsigned char *block)
{
  uint64_t w[80], s[8];
  for (int t = 0; t < 16; t++)
    w[t] = load_be64(block + 8 * t);
  for (int t = 16; t < 80; t++) {
    uint64_t s0 = ror64(w[t - 15], 1) ^ ror64(w[t - 15], 8) ^ (w[t - 15] >> 7);
    uint64_t s1 = ror64(w[t - 2], 19) ^ ror64(w[t - 2], 61) ^ (w[t - 2] >> 6);
    w[t] = s1 + w[t - 7] + s0 + w[t - 16];
  }
  memcpy(s, h->st.w64, sizeof s);

  for (int t = 0; t < 80; t++) {
    uint64_t e = s[4], a = s[0];
    uint64_t t1 = s[7] + (ror64(e, 14) ^ ror64(e, 18) ^ ror64(e, 41)) +
                  ((e & s[5]) ^ (~e & s[6])) + K512[t] + w[t];
    uint64_t t2 = (ror64(a, 28) ^ ror64(a, 34) ^ ror64(a, 39)) +
                  ((a & s[1]) ^ (a & s[2]) ^ (s[1] & s[2]));
    memmove(s + 1, s, 7 * sizeof s[0]);
    s[4] += t1;
    s[0] = t1 + t2;
  }

  for (int i = 0; i < 8; i++)
    h->st.w64[i] += s[i];
}

/* The table ------------------------------------------------------------- */

static const struct brine__hash_kind KINDS[] = {
    {"md5", 16, 64, md5_init, md5_compress, 1},
    {"sha1", 20, 64, sha1_init, sha1_compress, 0},
    {"sha224", 28, 64, sha224_init, sha256_compress, 0},
    {"sha256", 32, 64, sha256_init, sha256_compress, 0},
    {"sha384", 48, 128, sha384_init, sha512_compress, 0},
    {"sha512", 64, 128, sha512_init, sha512_compress, 0},
    {"blake2b", 64, 128, NULL, NULL, 0},
};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

const struct brine__hash_kind *brine__hash_find(const char *name)
{
  for (size_t i = 0; i < NKINDS; i++)
    if (strcmp(KINDS[i].name, name) == 0)
      return &KINDS[i];
  return NULL;
}

const char *brine__hash_names(void)
{
  return "md5, sha1, sha224, sha256, sha384, sha512, blake2b";
}

size_t brine__hash_digest_size(const struct brine__hash_kind *kind)
{
  return kind->digest;
}

size_t brine__hash_block_size(const struct brine__hash_kind *kind)
{
  return kind->block;
}

void brine__hash_init(struct brine__hash *h, const struct brine__hash_kind *k)
{
  memset(h, 0, sizeof *h);
  h->kind = k;
  if (k->init) {
    k->init(h);
    return;
  }
  if (sodium_init() < 0)
    abort();
  crypto_generichash_init(b2_state(h), NULL, 0, k->digest);
}

void brine__hash_update(struct brine__hash *h, const void *data, size_t n)
{
  const unsigned char *p = data;
  size_t block = h->kind->block;
  if (!h->kind->compress) {
    crypto_generichash_update(b2_state(h), p, n);
    return;
  }

  h->length += n;
  if (h->used) {
    size_t take = block - h->used < n ? block - h->used : n;
    memcpy(h->buf + h->used, p, take);
    h->used += take;
    p += take;
    n -= take;
    if (h->used < block)
      return;
    h->kind->compress(h, h->buf);
    h->used = 0;
  }
  for (; n >= block; p += block, n -= block)
    h->kind->compress(h, p);
  memcpy(h->buf, p, n);
  h->used = n;
}

void brine__hash_copy(struct brine__hash *dst, const struct brine__hash *src)
{
  memcpy(dst, src, sizeof *dst);
  if (!src->kind->compress)
    memcpy(b2_state(dst), b2_state((struct brine__hash *)src),
           sizeof(crypto_generichash_state));
}

/* Appends the 0x80 byte, zeros and the message length in bits, then
 * compresses the last one or two blocks. */
static void pad(struct brine__hash *h)
{
  size_t block = h->kind->block, lenbytes = block / 8;
  uint64_t bits = h->length * 8;
  h->buf[h->used++] = 0x80;
  if (h->used > block - lenbytes) {
    memset(h->buf + h->used, 0, block - h->used);
    h->kind->compress(h, h->buf);
    h->used = 0;
  }
  memset(h->buf + h->used, 0, block - h->used);
  for (int i = 0; i < 8; i++) {
    unsigned char byte = (unsigned char)(bits >> (8 * i));
    if (h->kind->little_endian)
      h->buf[block - lenbytes + i] = byte;
    else
      h->buf[block - 1 - i] = byte;
  }
  h->kind->compress(h, h->buf);
}

void brine__hash_final(struct brine__hash *h, unsigned char *out)
{
  const struct brine__hash_kind *k = h->kind;
  if (!k->compress) {
    crypto_generichash_final(b2_state(h), out, k->digest);
  } else {
    pad(h);
    for (size_t i = 0; i < k->digest; i++) {
      if (k->little_endian)
        out[i] = (unsigned char)(h->st.w32[i / 4] >> (8 * (i % 4)));
      else if (k->block == 64)
        out[i] = (unsigned char)(h->st.w32[i / 4] >> (24 - 8 * (i % 4)));
      else
        out[i] = (unsigned char)(h->st.w64[i / 8] >> (56 - 8 * (i % 8)));
    }
  }
  sodium_memzero(h, sizeof *h);
  h->kind = k;
}

size_t brine__hash_buffer(const struct brine__hash_kind *k, const void *data,
                          size_t n, unsigned char *out)
{
  struct brine__hash h;
  brine__hash_init(&h, k);
  brine__hash_update(&h, data, n);
  brine__hash_final(&h, out);
  return k->digest;
}

size_t brine__hmac(const struct brine__hash_kind *k, const void *key,
                   size_t keylen, const void *msg, size_t n, unsigned char *out)
{
  unsigned char k0[BRINE_HASH_MAX_BLOCK] = {0}, pad[BRINE_HASH_MAX_BLOCK];
  unsigned char inner[BRINE_HASH_MAX_DIGEST];
  struct brine__hash h;
  if (keylen > k->block)
    brine__hash_buffer(k, key, keylen, k0);
  else if (keylen)
    memcpy(k0, key, keylen);

  for (size_t i = 0; i < k->block; i++)
    pad[i] = k0[i] ^ 0x36;
  brine__hash_init(&h, k);
  brine__hash_update(&h, pad, k->block);
  brine__hash_update(&h, msg, n);
  brine__hash_final(&h, inner);

  for (size_t i = 0; i < k->block; i++)
    pad[i] = k0[i] ^ 0x5c;
  brine__hash_init(&h, k);
  brine__hash_update(&h, pad, k->block);
  brine__hash_update(&h, inner, k->digest);
  brine__hash_final(&h, out);

  sodium_memzero(k0, sizeof k0);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(inner, sizeof inner);
  return k->digest;
}
