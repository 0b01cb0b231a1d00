/* Message digests for brine.crypto: MD5 (RFC 1321), SHA-1 and the SHA-2
 * family (FIPS 180-4) written here, BLAKE2b from libsodium, and HMAC
 * (RFC 2104) over any of them. Internal to the engine. */
#ifndef BRINE_HASH_H
#define BRINE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define BRINE_HASH_MAX_DIGEST 64
#define BRINE_HASH_MAX_BLOCK 128

struct brine__hash_kind; /* one per algorithm, static */

/* A running digest. Holds no pointers to the heap: a plain struct that
 * the caller may keep anywhere. It must not be copied once begun (the
 * BLAKE2b state is aligned inside it by address). */
struct brine__hash {
  const struct brine__hash_kind *kind;
  uint64_t length; /* bytes hashed so far */
  unsigned char buf[BRINE_HASH_MAX_BLOCK];
  size_t used; /* bytes waiting in buf */
  union {
    uint32_t w32[8];
    uint64_t w64[8];
    unsigned char b2[384 + 64]; /* libsodium state + alignment */
  } st;
};

/* The algorithm called name ("md5", "sha1", "sha224", "sha256", "sha384",
 * "sha512", "blake2b"), or NULL. */
const struct brine__hash_kind *brine__hash_find(const char *name);
/* A comma-separated list of the names, for error messages. */
const char *brine__hash_names(void);
size_t brine__hash_digest_size(const struct brine__hash_kind *kind);
size_t brine__hash_block_size(const struct brine__hash_kind *kind);

void brine__hash_init(struct brine__hash *h, const struct brine__hash_kind *k);
void brine__hash_update(struct brine__hash *h, const void *data, size_t n);
/* Copies a running digest from src into dst (a plain memcpy would break
 * the BLAKE2b state's alignment). */
void brine__hash_copy(struct brine__hash *dst, const struct brine__hash *src);
/* Writes the digest (brine__hash_digest_size bytes) and wipes the state. */
void brine__hash_final(struct brine__hash *h, unsigned char *out);

/* One-shot digest of data; returns the digest size. */
size_t brine__hash_buffer(const struct brine__hash_kind *k, const void *data,
                          size_t n, unsigned char *out);
/* HMAC of msg under key; returns the digest size. */
size_t brine__hmac(const struct brine__hash_kind *k, const void *key,
                   size_t keylen, const void *msg, size_t n,
                   unsigned char *out);

#endif
