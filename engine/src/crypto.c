/* brine.crypto: the Lua binding of libsodium (key pairs, public-key and
 * secret-key boxes, sealed boxes, detached signatures, random bytes) and
 * of hash.c (digests, HMAC, incremental hashers), plus the encodings keys
 * travel in (hex, base64) and Salt-style key fingerprints.
 *
 * Owns two userdata types: "brine.crypto.secret", a secret key kept out
 * of Lua strings and wiped when closed, and "brine.crypto.hasher", a
 * running digest. Keys given to functions may be strings or secrets.
 * A key, nonce or algorithm of the wrong shape is misuse and raises; a
 * box that fails to open returns nil, message, "auth". */
#include "hash.h"
#include "modules.h"

#include <lauxlib.h>
#include <sodium.h>
#include <string.h>

#define SECRET_MT "brine.crypto.secret"
#define HASHER_MT "brine.crypto.hasher"

struct secret {
  size_t len;
  int closed;
  unsigned char bytes[];
};

struct hasher {
  int closed;
  struct brine__hash h;
};

/* Secrets --------------------------------------------------------------- */

/* Pushes a new secret of len bytes and returns its storage. */
static unsigned char *new_secret(lua_State *L, size_t len)
{
  struct secret *s = lua_newuserdatauv(L, sizeof *s + len, 0);
  s->len = len;
  s->closed = 0;
  luaL_setmetatable(L, SECRET_MT);
  return s->bytes;
}

static struct secret *check_secret(lua_State *L, int idx)
{
  struct secret *s = luaL_checkudata(L, idx, SECRET_MT);
  luaL_argcheck(L, !s->closed, idx, "secret is closed");
  return s;
}

static int secret_close(lua_State *L)
{
  struct secret *s = luaL_checkudata(L, 1, SECRET_MT);
  if (!s->closed) {
    sodium_memzero(s->bytes, s->len);
    s->closed = 1;
  }
  return 0;
}

static int secret_bytes(lua_State *L)
{
  struct secret *s = check_secret(L, 1);
  lua_pushlstring(L, (const char *)s->bytes, s->len);
  return 1;
}

static int secret_len(lua_State *L)
{
  struct secret *s = check_secret(L, 1);
  lua_pushinteger(L, (lua_Integer)s->len);
  return 1;
}

static int secret_tostring(lua_State *L)
{
  struct secret *s = luaL_checkudata(L, 1, SECRET_MT);
  if (s->closed)
    lua_pushliteral(L, "brine.crypto.secret (closed)");
  else
    lua_pushfstring(L, "brine.crypto.secret (%d bytes)", (int)s->len);
  return 1;
}

/* crypto.secret(bytes) -> secret */
static int l_secret(lua_State *L)
{
  size_t len;
  const char *b = luaL_checklstring(L, 1, &len);
  memcpy(new_secret(L, len), b, len);
  return 1;
}

/* Arguments ------------------------------------------------------------- */

/* The bytes of the key at idx (a string or an open secret), which must be
 * exactly size bytes long; raises otherwise. */
static const unsigned char *check_key(lua_State *L, int idx, size_t size,
                                      const char *what)
{
  size_t len;
  const unsigned char *p;
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    struct secret *s = check_secret(L, idx);
    len = s->len;
    p = s->bytes;
  } else {
    p = (const unsigned char *)luaL_checklstring(L, idx, &len);
  }
  if (len != size)
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "%s must be %d bytes, got %d", what,
                                  (int)size, (int)len));
  return p;
}

static const unsigned char *check_bytes(lua_State *L, int idx, size_t *len)
{
  return (const unsigned char *)luaL_checklstring(L, idx, len);
}

static const struct brine__hash_kind *check_algo(lua_State *L, int idx)
{
  const char *name = luaL_checkstring(L, idx);
  const struct brine__hash_kind *k = brine__hash_find(name);
  if (!k)
    luaL_argerror(L, idx,
                  lua_pushfstring(L, "unknown hash '%s' (one of %s)", name,
                                  brine__hash_names()));
  return k;
}

/* Returns nil, message, "auth" for a box that does not open. */
static int fail_auth(lua_State *L, const char *what)
{
  lua_pushnil(L);
  lua_pushfstring(L, "cannot open %s: authentication failed", what);
  lua_pushliteral(L, "auth");
  return 3;
}

static void push_hex(lua_State *L, const unsigned char *bin, size_t n)
{
  luaL_Buffer b;
  char *hex = luaL_buffinitsize(L, &b, 2 * n + 1);
  sodium_bin2hex(hex, 2 * n + 1, bin, n);
  luaL_pushresultsize(&b, 2 * n);
}

/* Keys ------------------------------------------------------------------ */

/* Reads the {secret=bool} option at idx. */
static int want_secret(lua_State *L, int idx)
{
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "secret");
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* Pushes pk and sk (a string, or a secret when asked for one). */
static int push_pair(lua_State *L, const unsigned char *pk, size_t pklen,
                     unsigned char *sk, size_t sklen, int secret)
{
  lua_pushlstring(L, (const char *)pk, pklen);
  if (secret)
    memcpy(new_secret(L, sklen), sk, sklen);
  else
    lua_pushlstring(L, (const char *)sk, sklen);
  sodium_memzero(sk, sklen);
  return 2;
}

static int l_box_keypair(lua_State *L)
{
  unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
  int secret = want_secret(L, 1);
  crypto_box_keypair(pk, sk);
  return push_pair(L, pk, sizeof pk, sk, sizeof sk, secret);
}

static int l_sign_keypair(lua_State *L)
{
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  int secret = want_secret(L, 1);
  crypto_sign_keypair(pk, sk);
  return push_pair(L, pk, sizeof pk, sk, sizeof sk, secret);
}

/* box_public(sk) -> pk: the public half of a box secret key. */
static int l_box_public(lua_State *L)
{
  const unsigned char *sk =
      check_key(L, 1, crypto_box_SECRETKEYBYTES, "secret key");
  unsigned char pk[crypto_box_PUBLICKEYBYTES];
  crypto_scalarmult_base(pk, sk);
  lua_pushlstring(L, (const char *)pk, sizeof pk);
  return 1;
}

/* sign_public(sk) -> pk: the public half of a signing secret key. */
static int l_sign_public(lua_State *L)
{
  const unsigned char *sk =
      check_key(L, 1, crypto_sign_SECRETKEYBYTES, "secret key");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_ed25519_sk_to_pk(pk, sk);
  lua_pushlstring(L, (const char *)pk, sizeof pk);
  return 1;
}

static int l_secretbox_key(lua_State *L)
{
  int secret = want_secret(L, 1);
  unsigned char key[crypto_secretbox_KEYBYTES];
  crypto_secretbox_keygen(key);
  if (secret)
    memcpy(new_secret(L, sizeof key), key, sizeof key);
  else
    lua_pushlstring(L, (const char *)key, sizeof key);
  sodium_memzero(key, sizeof key);
  return 1;
}

/* Boxes ----------------------------------------------------------------- */

static int l_seal(lua_State *L)
{
  size_t n;
  const unsigned char *msg = check_bytes(L, 1, &n);
  const unsigned char *pk =
      check_key(L, 2, crypto_box_PUBLICKEYBYTES, "public key");
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, n + crypto_box_SEALBYTES);
  crypto_box_seal(out, msg, n, pk);
  luaL_pushresultsize(&b, n + crypto_box_SEALBYTES);
  return 1;
}

static int l_seal_open(lua_State *L)
{
  size_t n;
  const unsigned char *c = check_bytes(L, 1, &n);
  const unsigned char *pk =
      check_key(L, 2, crypto_box_PUBLICKEYBYTES, "public key");
  const unsigned char *sk =
      check_key(L, 3, crypto_box_SECRETKEYBYTES, "secret key");
  if (n < crypto_box_SEALBYTES)
    return fail_auth(L, "sealed box (too short)");
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, n - crypto_box_SEALBYTES + 1);
  if (crypto_box_seal_open(out, c, n, pk, sk) != 0)
    return fail_auth(L, "sealed box");
  luaL_pushresultsize(&b, n - crypto_box_SEALBYTES);
  return 1;
}

static int l_box(lua_State *L)
{
  size_t n;
  const unsigned char *msg = check_bytes(L, 1, &n);
  const unsigned char *nonce = check_key(L, 2, crypto_box_NONCEBYTES, "nonce");
  const unsigned char *pk =
      check_key(L, 3, crypto_box_PUBLICKEYBYTES, "public key");
  const unsigned char *sk =
      check_key(L, 4, crypto_box_SECRETKEYBYTES, "secret key");
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, n + crypto_box_MACBYTES);
  if (crypto_box_easy(out, msg, n, nonce, pk, sk) != 0)
    return luaL_error(L, "box: the public key is weak");
  luaL_pushresultsize(&b, n + crypto_box_MACBYTES);
  return 1;
}

static int l_box_open(lua_State *L)
{
  size_t n;
  const unsigned char *c = check_bytes(L, 1, &n);
  const unsigned char *nonce = check_key(L, 2, crypto_box_NONCEBYTES, "nonce");
  const unsigned char *pk =
      check_key(L, 3, crypto_box_PUBLICKEYBYTES, "public key");
  const unsigned char *sk =
      check_key(L, 4, crypto_box_SECRETKEYBYTES, "secret key");
  if (n < crypto_box_MACBYTES)
    return fail_auth(L, "box (too short)");
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, n - crypto_box_MACBYTES + 1);
  if (crypto_box_open_easy(out, c, n, nonce, pk, sk) != 0)
    return fail_auth(L, "box");
  luaL_pushresultsize(&b, n - crypto_box_MACBYTES);
  return 1;
}

static int l_secretbox(lua_State *L)
{
  size_t n;
  const unsigned char *msg = check_bytes(L, 1, &n);
  const unsigned char *nonce =
      check_key(L, 2, crypto_secretbox_NONCEBYTES, "nonce");
  const unsigned char *key = check_key(L, 3, crypto_secretbox_KEYBYTES, "key");
  luaL_Buffer b;
  unsigned char *out =
      (unsigned char *)luaL_buffinitsize(L, &b, n + crypto_secretbox_MACBYTES);
  crypto_secretbox_easy(out, msg, n, nonce, key);
  luaL_pushresultsize(&b, n + crypto_secretbox_MACBYTES);
  return 1;
}

static int l_secretbox_open(lua_State *L)
{
  size_t n;
  const unsigned char *c = check_bytes(L, 1, &n);
  const unsigned char *nonce =
      check_key(L, 2, crypto_secretbox_NONCEBYTES, "nonce");
  const unsigned char *key = check_key(L, 3, crypto_secretbox_KEYBYTES, "key");
  if (n < crypto_secretbox_MACBYTES)
    return fail_auth(L, "secretbox (too short)");
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(
      L, &b, n - crypto_secretbox_MACBYTES + 1);
  if (crypto_secretbox_open_easy(out, c, n, nonce, key) != 0)
    return fail_auth(L, "secretbox");
  luaL_pushresultsize(&b, n - crypto_secretbox_MACBYTES);
  return 1;
}

/* Signatures ------------------------------------------------------------ */

static int l_sign(lua_State *L)
{
  size_t n;
  const unsigned char *msg = check_bytes(L, 1, &n);
  const unsigned char *sk =
      check_key(L, 2, crypto_sign_SECRETKEYBYTES, "secret key");
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, NULL, msg, n, sk);
  lua_pushlstring(L, (const char *)sig, sizeof sig);
  return 1;
}

/* verify(sig, msg, pk) -> boolean. A signature of the wrong length comes
 * from the world, not the caller: it is simply not valid. */
static int l_verify(lua_State *L)
{
  size_t siglen, n;
  const unsigned char *sig = check_bytes(L, 1, &siglen);
  const unsigned char *msg = check_bytes(L, 2, &n);
  const unsigned char *pk =
      check_key(L, 3, crypto_sign_PUBLICKEYBYTES, "public key");
  lua_pushboolean(L, siglen == crypto_sign_BYTES &&
                         crypto_sign_verify_detached(sig, msg, n, pk) == 0);
  return 1;
}

/* Random ---------------------------------------------------------------- */

static size_t check_count(lua_State *L, int idx)
{
  lua_Integer n = luaL_checkinteger(L, idx);
  luaL_argcheck(L, n >= 0 && n <= (1 << 30), idx, "count out of range");
  return (size_t)n;
}

static int l_random(lua_State *L)
{
  size_t n = check_count(L, 1);
  luaL_Buffer b;
  randombytes_buf(luaL_buffinitsize(L, &b, n), n);
  luaL_pushresultsize(&b, n);
  return 1;
}

static int l_random_hex(lua_State *L)
{
  size_t n = check_count(L, 1);
  unsigned char *tmp = lua_newuserdatauv(L, n ? n : 1, 0);
  randombytes_buf(tmp, n);
  push_hex(L, tmp, n);
  return 1;
}

static int push_random(lua_State *L, size_t n)
{
  luaL_Buffer b;
  randombytes_buf(luaL_buffinitsize(L, &b, n), n);
  luaL_pushresultsize(&b, n);
  return 1;
}

static int l_nonce_box(lua_State *L)
{
  return push_random(L, crypto_box_NONCEBYTES);
}

static int l_nonce_secretbox(lua_State *L)
{
  return push_random(L, crypto_secretbox_NONCEBYTES);
}

/* Digests --------------------------------------------------------------- */

static int l_hash(lua_State *L)
{
  const struct brine__hash_kind *k = check_algo(L, 1);
  size_t n;
  const unsigned char *data = check_bytes(L, 2, &n);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  push_hex(L, d, brine__hash_buffer(k, data, n, d));
  return 1;
}

static int l_hmac(lua_State *L)
{
  const struct brine__hash_kind *k = check_algo(L, 1);
  size_t keylen, n;
  const unsigned char *key;
  if (lua_type(L, 2) == LUA_TUSERDATA) {
    struct secret *s = check_secret(L, 2);
    key = s->bytes;
    keylen = s->len;
  } else {
    key = check_bytes(L, 2, &keylen);
  }
  const unsigned char *msg = check_bytes(L, 3, &n);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  push_hex(L, d, brine__hmac(k, key, keylen, msg, n, d));
  return 1;
}

/* fingerprint(key[, algo]) -> "ab:cd:...": Salt's key finger format, the
 * hex digest (sha256 by default) with a colon after every byte. */
static int l_fingerprint(lua_State *L)
{
  size_t n;
  const unsigned char *key = check_bytes(L, 1, &n);
  const struct brine__hash_kind *k =
      lua_isnoneornil(L, 2) ? brine__hash_find("sha256") : check_algo(L, 2);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  char hex[3];
  size_t len = brine__hash_buffer(k, key, n, d);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    sodium_bin2hex(hex, sizeof hex, d + i, 1);
    if (i)
      luaL_addchar(&b, ':');
    luaL_addlstring(&b, hex, 2);
  }
  luaL_pushresult(&b);
  return 1;
}

static struct hasher *check_hasher(lua_State *L)
{
  struct hasher *h = luaL_checkudata(L, 1, HASHER_MT);
  luaL_argcheck(L, !h->closed, 1, "hasher is closed");
  return h;
}

/* hasher(algo) -> object with :update(data), :hexdigest(), :digest() */
static int l_hasher(lua_State *L)
{
  const struct brine__hash_kind *k = check_algo(L, 1);
  struct hasher *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->closed = 0;
  brine__hash_init(&h->h, k);
  luaL_setmetatable(L, HASHER_MT);
  return 1;
}

static int hasher_update(lua_State *L)
{
  struct hasher *h = check_hasher(L);
  size_t n;
  const unsigned char *data = check_bytes(L, 2, &n);
  brine__hash_update(&h->h, data, n);
  lua_settop(L, 1);
  return 1;
}

/* Finishes a copy, so the hasher can take more data afterwards. */
static size_t hasher_peek(struct hasher *h, unsigned char *out)
{
  struct brine__hash copy;
  brine__hash_copy(&copy, &h->h);
  brine__hash_final(&copy, out);
  return brine__hash_digest_size(h->h.kind);
}

static int hasher_hexdigest(lua_State *L)
{
  struct hasher *h = check_hasher(L);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  push_hex(L, d, hasher_peek(h, d));
  return 1;
}

static int hasher_digest(lua_State *L)
{
  struct hasher *h = check_hasher(L);
  unsigned char d[BRINE_HASH_MAX_DIGEST];
  lua_pushlstring(L, (const char *)d, hasher_peek(h, d));
  return 1;
}

static int hasher_close(lua_State *L)
{
  struct hasher *h = luaL_checkudata(L, 1, HASHER_MT);
  if (!h->closed) {
    sodium_memzero(&h->h, sizeof h->h);
    h->closed = 1;
  }
  return 0;
}

/* Comparison and encodings ---------------------------------------------- */

/* compare(a, b) -> boolean, in time that depends only on the length. */
static int l_compare(lua_State *L)
{
  size_t na, nb;
  const unsigned char *a = check_bytes(L, 1, &na);
  const unsigned char *b = check_bytes(L, 2, &nb);
  lua_pushboolean(L, na == nb && sodium_memcmp(a, b, na) == 0);
  return 1;
}

static int l_to_hex(lua_State *L)
{
  size_t n;
  const unsigned char *data = check_bytes(L, 1, &n);
  push_hex(L, data, n);
  return 1;
}

static int fail_decode(lua_State *L, const char *what)
{
  lua_pushnil(L);
  lua_pushfstring(L, "invalid %s string", what);
  lua_pushliteral(L, "EINVAL");
  return 3;
}

static int l_from_hex(lua_State *L)
{
  size_t n, got;
  const char *hex = luaL_checklstring(L, 1, &n), *end;
  if (n % 2)
    return fail_decode(L, "hex");
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 2 + 1);
  if (sodium_hex2bin(out, n / 2 + 1, hex, n, NULL, &got, &end) != 0 ||
      end != hex + n)
    return fail_decode(L, "hex");
  luaL_pushresultsize(&b, got);
  return 1;
}

static int l_base64_encode(lua_State *L)
{
  size_t n;
  const unsigned char *data = check_bytes(L, 1, &n);
  size_t size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, size);
  sodium_bin2base64(out, size, data, n, sodium_base64_VARIANT_ORIGINAL);
  luaL_pushresultsize(&b, size - 1);
  return 1;
}

/* base64_decode(text) -> bytes; whitespace (line breaks in PEM-style
 * text) is skipped, padding is required. */
static int l_base64_decode(lua_State *L)
{
  size_t n, got;
  const char *text = luaL_checklstring(L, 1, &n), *end;
  luaL_Buffer b;
  unsigned char *out = (unsigned char *)luaL_buffinitsize(L, &b, n / 4 * 3 + 3);
  if (sodium_base642bin(out, n / 4 * 3 + 3, text, n, " \t\r\n", &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text + n)
    return fail_decode(L, "base64");
  luaL_pushresultsize(&b, got);
  return 1;
}

/* The module ------------------------------------------------------------ */

static void set_int(lua_State *L, const char *name, size_t v)
{
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, name);
}

static void set_constants(lua_State *L)
{
  set_int(L, "BOX_PUBLICKEYBYTES", crypto_box_PUBLICKEYBYTES);
  set_int(L, "BOX_SECRETKEYBYTES", crypto_box_SECRETKEYBYTES);
  set_int(L, "BOX_NONCEBYTES", crypto_box_NONCEBYTES);
  set_int(L, "BOX_MACBYTES", crypto_box_MACBYTES);
  set_int(L, "SEALBYTES", crypto_box_SEALBYTES);
  set_int(L, "SECRETBOX_KEYBYTES", crypto_secretbox_KEYBYTES);
  set_int(L, "SECRETBOX_NONCEBYTES", crypto_secretbox_NONCEBYTES);
  set_int(L, "SECRETBOX_MACBYTES", crypto_secretbox_MACBYTES);
  set_int(L, "SIGN_PUBLICKEYBYTES", crypto_sign_PUBLICKEYBYTES);
  set_int(L, "SIGN_SECRETKEYBYTES", crypto_sign_SECRETKEYBYTES);
  set_int(L, "SIGN_BYTES", crypto_sign_BYTES);
}

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction close, lua_CFunction tostring)
{
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

int brine__open_crypto(lua_State *L)
{
  static const luaL_Reg secret_methods[] = {{"bytes", secret_bytes},
                                            {"len", secret_len},
                                            {"close", secret_close},
                                            {NULL, NULL}};
  static const luaL_Reg hasher_methods[] = {{"update", hasher_update},
                                            {"hexdigest", hasher_hexdigest},
                                            {"digest", hasher_digest},
                                            {"close", hasher_close},
                                            {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"box_keypair", l_box_keypair},
                                   {"sign_keypair", l_sign_keypair},
                                   {"box_public", l_box_public},
                                   {"sign_public", l_sign_public},
                                   {"secretbox_key", l_secretbox_key},
                                   {"secret", l_secret},
                                   {"seal", l_seal},
                                   {"seal_open", l_seal_open},
                                   {"box", l_box},
                                   {"box_open", l_box_open},
                                   {"secretbox", l_secretbox},
                                   {"secretbox_open", l_secretbox_open},
                                   {"sign", l_sign},
                                   {"verify", l_verify},
                                   {"random", l_random},
                                   {"random_hex", l_random_hex},
                                   {"nonce_box", l_nonce_box},
                                   {"nonce_secretbox", l_nonce_secretbox},
                                   {"hash", l_hash},
                                   {"hasher", l_hasher},
                                   {"hmac", l_hmac},
                                   {"fingerprint", l_fingerprint},
                                   {"compare", l_compare},
                                   {"to_hex", l_to_hex},
                                   {"from_hex", l_from_hex},
                                   {"base64_encode", l_base64_encode},
                                   {"base64_decode", l_base64_decode},
                                   {NULL, NULL}};

  if (sodium_init() < 0)
    return luaL_error(L, "brine.crypto: libsodium failed to initialise");
  new_type(L, SECRET_MT, secret_methods, secret_close, secret_tostring);
  new_type(L, HASHER_MT, hasher_methods, hasher_close, NULL);
  luaL_newlib(L, funcs);
  set_constants(L);
  return 1;
}
