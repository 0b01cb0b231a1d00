/* brine.msgpack: MessagePack for Lua, the wire format between master and
 * minions (as in Salt). It owns pack(), unpack(), unpack_many() and the
 * streaming unpacker used on byte streams.
 *
 * The codec is written by hand instead of on top of msgpack-c: the format
 * is small (one type byte, then big-endian lengths and payloads), the
 * library's unpacker builds its own object tree in a zone that would then
 * have to be copied into Lua values, and it has no depth limit. Decoding
 * straight onto the Lua stack lets every declared length be checked
 * against the bytes actually left before anything is allocated, so hostile
 * input can cost at most a small multiple of its own size.
 *
 * An integer beyond 64 bits (data.h) travels as an unsigned 64-bit value
 * when it is one, else as the ext type BIGINT_EXT whose payload is its
 * decimal text: MessagePack has no such integers, and Salt's msgpack
 * refuses them, but brine's master and minions keep them exact. */
#include "data.h"

#include <lauxlib.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define UNPACK_DEFAULT_DEPTH 512
#define UNPACK_MAX_DEPTH 10000
#define PACK_MAX_DEPTH 1000
#define STREAM_DEFAULT_MAX_SIZE (64 * 1024 * 1024)
#define SIZE_HINT_MAX 4096   /* preallocation; tables grow past it */
#define UNPACKER_MT "brine.msgpack.unpacker"
#define BIGINT_EXT 0x62  /* 'b': a big integer's decimal text */

/* ---- packing ---- */

struct pk {
  lua_State *L;
  int buf_slot;          /* stack slot of the userdata holding the output */
  unsigned char *buf;
  size_t len, cap;
  int use_bin;           /* pack non-UTF-8 strings as bin */
  int depth;
  struct {
    const void *table;
    int key;             /* stack slot of the current key, or 0 */
    lua_Integer index;
  } path[PACK_MAX_DEPTH];
  char err[256];
};

/* Makes room for n more bytes; the output is a Lua userdata so an error
 * raised mid-way leaks nothing. */
static void reserve(struct pk *p, size_t n)
{
  if (p->len + n <= p->cap)
    return;
  size_t cap = p->cap * 2;
  if (cap < p->len + n + 64)
    cap = p->len + n + 64;
  unsigned char *nb = lua_newuserdatauv(p->L, cap, 0);
  memcpy(nb, p->buf, p->len);
  lua_replace(p->L, p->buf_slot);
  p->buf = nb;
  p->cap = cap;
}

static void put(struct pk *p, const void *s, size_t n)
{
  reserve(p, n);
  memcpy(p->buf + p->len, s, n);
  p->len += n;
}

/* Writes the type byte t followed by the n low bytes of v, big-endian. */
static void put_be(struct pk *p, unsigned char t, uint64_t v, int n)
{
  unsigned char b[9];
  b[0] = t;
  for (int i = 0; i < n; i++)
    b[1 + i] = (unsigned char)(v >> (8 * (n - 1 - i)));
  put(p, b, (size_t)n + 1);
}

static int pk_fail(struct pk *p, const char *problem)
{
  char path[160];
  size_t n = 0;
  path[0] = '\0';
  for (int i = 0; i < p->depth && n < sizeof path - 1; i++) {
    int w, k = p->path[i].key;
    if (k && lua_type(p->L, k) == LUA_TSTRING)
      w = snprintf(path + n, sizeof path - n, "%s%s", n ? "." : "",
                   lua_tostring(p->L, k));
    else if (k) {
      w = snprintf(path + n, sizeof path - n, "[%s]",
                   luaL_tolstring(p->L, k, NULL));
      lua_pop(p->L, 1);
    } else {
      w = snprintf(path + n, sizeof path - n, "[%lld]",
                   (long long)p->path[i].index);
    }
    n += w > 0 ? (size_t)w : 0;
    if (n >= sizeof path)
      n = sizeof path - 1;
  }
  snprintf(p->err, sizeof p->err, "at %s: %s", n ? path : "top level",
           problem);
  return -1;
}

static void pack_int(struct pk *p, lua_Integer v)
{
  if (v >= 0) {
    uint64_t u = (uint64_t)v;
    if (u < 128)
      put_be(p, (unsigned char)u, 0, 0);
    else if (u <= 0xFF)
      put_be(p, 0xcc, u, 1);
    else if (u <= 0xFFFF)
      put_be(p, 0xcd, u, 2);
    else if (u <= 0xFFFFFFFFu)
      put_be(p, 0xce, u, 4);
    else
      put_be(p, 0xcf, u, 8);
  } else if (v >= -32) {
    put_be(p, (unsigned char)(0xe0 | (v + 32)), 0, 0);
  } else if (v >= INT8_MIN) {
    put_be(p, 0xd0, (uint64_t)v, 1);
  } else if (v >= INT16_MIN) {
    put_be(p, 0xd1, (uint64_t)v, 2);
  } else if (v >= INT32_MIN) {
    put_be(p, 0xd2, (uint64_t)v, 4);
  } else {
    put_be(p, 0xd3, (uint64_t)v, 8);
  }
}

static void pack_float(struct pk *p, double d)
{
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  put_be(p, 0xcb, u, 8);
}

/* Is s[0..n) valid UTF-8 (no overlongs, no surrogates, up to U+10FFFF)? */
static int valid_utf8(const unsigned char *s, size_t n)
{
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    int len;
    uint32_t v, min;
    if (c < 0xC2)
      return 0;
    else if (c < 0xE0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if (c < 0xF0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if (c < 0xF5) { len = 4; v = c & 0x07; min = 0x10000; }
    else
      return 0;
    if ((size_t)len > n - i)
      return 0;
    for (int k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80)
        return 0;
      v = (v << 6) | (s[i + k] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
      return 0;
    i += (size_t)len;
  }
  return 1;
}

static int pack_string(struct pk *p, const char *s, size_t n)
{
  if (n > 0xFFFFFFFFu)
    return pk_fail(p, "string longer than 4 GiB");
  if (p->use_bin && !valid_utf8((const unsigned char *)s, n)) {
    if (n <= 0xFF)
      put_be(p, 0xc4, n, 1);
    else if (n <= 0xFFFF)
      put_be(p, 0xc5, n, 2);
    else
      put_be(p, 0xc6, n, 4);
  } else if (n < 32) {
    put_be(p, (unsigned char)(0xa0 | n), 0, 0);
  } else if (n <= 0xFF) {
    put_be(p, 0xd9, n, 1);
  } else if (n <= 0xFFFF) {
    put_be(p, 0xda, n, 2);
  } else {
    put_be(p, 0xdb, n, 4);
  }
  put(p, s, n);
  return 0;
}

/* Writes a container header: fix form below fixmax, else 16 or 32 bits. */
static int pack_header(struct pk *p, lua_Integer n, unsigned char fix,
                       lua_Integer fixmax, unsigned char t16)
{
  if ((uint64_t)n > 0xFFFFFFFFu)
    return pk_fail(p, "container with more than 2^32 - 1 entries");
  if (n < fixmax)
    put_be(p, (unsigned char)(fix | n), 0, 0);
  else if (n <= 0xFFFF)
    put_be(p, t16, (uint64_t)n, 2);
  else
    put_be(p, (unsigned char)(t16 + 1), (uint64_t)n, 4);
  return 0;
}

static int pack_value(struct pk *p, int idx);

static int open_container(struct pk *p, int idx)
{
  const void *ptr = lua_topointer(p->L, idx);
  for (int i = 0; i < p->depth; i++)
    if (p->path[i].table == ptr)
      return pk_fail(p, "circular reference detected");
  if (p->depth >= PACK_MAX_DEPTH)
    return pk_fail(p, "nesting deeper than 1000 levels");
  luaL_checkstack(p->L, 8, "msgpack nesting");
  p->path[p->depth].table = ptr;
  p->path[p->depth].key = 0;
  p->path[p->depth].index = 0;
  p->depth++;
  return 0;
}

/* An array's length is its raw length; nil holes pack as nil. */
static int pack_array(struct pk *p, int idx)
{
  lua_Integer n = (lua_Integer)lua_rawlen(p->L, idx);
  if (open_container(p, idx) < 0 || pack_header(p, n, 0x90, 16, 0xdc) < 0)
    return -1;
  for (lua_Integer i = 1; i <= n; i++) {
    p->path[p->depth - 1].index = i;
    lua_rawgeti(p->L, idx, i);
    if (pack_value(p, lua_gettop(p->L)) < 0)
      return -1;
    lua_pop(p->L, 1);
  }
  p->depth--;
  return 0;
}

static int pack_map(struct pk *p, int idx)
{
  if (open_container(p, idx) < 0
      || pack_header(p, brine__count(p->L, idx), 0x80, 16, 0xde) < 0)
    return -1;
  struct brine__iter it;
  brine__iter_start(p->L, idx, &it);          /* helper */
  int k = lua_gettop(p->L) + 1;
  while (brine__iter_next(p->L, &it)) {       /* helper k v */
    p->path[p->depth - 1].key = k;
    if (pack_value(p, k) < 0 || pack_value(p, k + 1) < 0)
      return -1;
    lua_pop(p->L, 2);
  }
  lua_pop(p->L, 1);
  p->depth--;
  return 0;
}

/* A table whose metatable is named "brine.map" is a data map, whatever
 * its keys. */
static int is_data_map(lua_State *L, int idx)
{
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_getfield(L, -1, "__name");
  const char *name = lua_tostring(L, -1);
  int yes = name && strcmp(name, "brine.map") == 0;
  lua_pop(L, 2);
  return yes;
}

/* A big integer: uint 64 when it fits, else ext BIGINT_EXT (data.h). */
static int pack_bigint(struct pk *p, int idx)
{
  size_t n;
  brine__bigint_text(p->L, idx);
  const char *text = lua_tolstring(p->L, -1, &n);
  uint64_t v = 0;
  int fits = text[0] != '-' && n <= 20;
  for (size_t i = 0; fits && i < n; i++) {
    unsigned d = (unsigned)(text[i] - '0');
    fits = v <= (UINT64_MAX - d) / 10;
    v = v * 10 + d;
  }
  if (fits) {
    put_be(p, 0xcf, v, 8);
  } else {
    if (n <= 0xFF)
      put_be(p, 0xc7, n, 1);
    else
      put_be(p, 0xc8, n, 2);                 /* at most 4,301 bytes */
    put_be(p, BIGINT_EXT, 0, 0);
    put(p, text, n);
  }
  lua_pop(p->L, 1);
  return 0;
}

static int pack_value(struct pk *p, int idx)
{
  lua_State *L = p->L;
  if (lua_type(L, idx) == LUA_TTABLE && is_data_map(L, idx))
    return pack_map(p, idx);
  switch (brine__kind(L, idx)) {
  case BRINE_NULL: put_be(p, 0xc0, 0, 0); return 0;
  case BRINE_BOOL: put_be(p, lua_toboolean(L, idx) ? 0xc3 : 0xc2, 0, 0);
    return 0;
  case BRINE_INT: pack_int(p, lua_tointeger(L, idx)); return 0;
  case BRINE_BIGINT: return pack_bigint(p, idx);
  case BRINE_BYTES: {                /* as a string: bin when not UTF-8 */
    size_t n;
    const char *s = brine__bytes(L, idx, &n);
    return pack_string(p, s, n);
  }
  case BRINE_FLOAT: pack_float(p, lua_tonumber(L, idx)); return 0;
  case BRINE_STRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return pack_string(p, s, n);
  }
  case BRINE_ARRAY: return pack_array(p, idx);
  case BRINE_MAP: return pack_map(p, idx);
  default: break;
  }
  char msg[64];
  snprintf(msg, sizeof msg, "cannot pack a %s", luaL_typename(L, idx));
  return pk_fail(p, msg);
}

/* pack(value[, {bin=bool}]) -> string | nil, "at PATH: problem" */
static int l_pack(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 2);
  int use_bin = 1;
  if (!lua_isnil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    int t = lua_getfield(L, 2, "bin");
    luaL_argcheck(L, t == LUA_TNIL || t == LUA_TBOOLEAN, 2,
                  "option 'bin' must be a boolean");
    use_bin = t == LUA_TNIL || lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  /* a userdata, so that an error raised mid-way frees it too */
  struct pk *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->L = L;
  p->use_bin = use_bin;
  p->buf = lua_newuserdatauv(L, 128, 0);
  p->buf_slot = lua_gettop(L);
  p->cap = 128;
  if (pack_value(p, 1) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, p->err);
    return 2;
  }
  lua_pushlstring(L, (const char *)p->buf, p->len);
  return 1;
}

/* ---- unpacking ---- */

enum { UP_OK = 0, UP_BAD = -1, UP_SHORT = -2 /* input ends too soon */ };

struct up {
  lua_State *L;
  const unsigned char *start, *p, *end;
  int depth, max_depth;
  char err[128];
};

/* Records "problem at offset N" and returns code. */
static int up_fail(struct up *u, int code, const char *problem)
{
  snprintf(u->err, sizeof u->err, "%s at offset %lld", problem,
           (long long)(u->p - u->start));
  return code;
}

/* The same for a problem about a length or count n. */
static int up_fail_n(struct up *u, int code, const char *what, uint64_t n)
{
  char msg[80];
  snprintf(msg, sizeof msg, what, (unsigned long long)n);
  return up_fail(u, code, msg);
}

#define TRUNCATED "truncated input"
#define TOO_LONG "declared length %llu exceeds the input"

static size_t left(const struct up *u)
{
  return (size_t)(u->end - u->p);
}

/* Reads an n-byte big-endian unsigned number. The caller checked that the
 * bytes are there. */
static uint64_t get_be(struct up *u, int n)
{
  uint64_t v = 0;
  for (int i = 0; i < n; i++)
    v = (v << 8) | u->p[i];
  u->p += n;
  return v;
}

/* Reads an n-byte length that follows the type byte; the count of items
 * it announces needs at least min_each bytes each, which must be left. */
static int get_len(struct up *u, int n, size_t min_each, uint64_t *len)
{
  if (left(u) < (size_t)n)
    return up_fail(u, UP_SHORT, TRUNCATED);
  *len = get_be(u, n);
  if (min_each && *len > left(u) / min_each)
    return up_fail_n(u, UP_SHORT, TOO_LONG, *len);
  return UP_OK;
}

static int unpack_value(struct up *u);

static int unpack_bytes(struct up *u, uint64_t n)
{
  lua_pushlstring(u->L, (const char *)u->p, (size_t)n);
  u->p += n;
  return UP_OK;
}

static int enter(struct up *u)
{
  if (++u->depth > u->max_depth)
    return up_fail_n(u, UP_BAD, "nesting deeper than %llu levels",
                     (uint64_t)u->max_depth);
  luaL_checkstack(u->L, 8, "msgpack nesting");
  return UP_OK;
}

static int unpack_array(struct up *u, uint64_t n)
{
  int rc = enter(u);
  if (rc)
    return rc;
  brine__new_array(u->L, n < SIZE_HINT_MAX ? (int)n : SIZE_HINT_MAX);
  for (uint64_t i = 1; i <= n; i++) {
    if ((rc = unpack_value(u)) != UP_OK)
      return rc;
    lua_rawseti(u->L, -2, (lua_Integer)i);
  }
  u->depth--;
  return UP_OK;
}

/* Map keys must be scalars Lua can index with: no containers, no NaN. */
static int check_key(struct up *u)
{
  int t = lua_type(u->L, -1);
  if (t == LUA_TTABLE)
    return up_fail(u, UP_BAD, "map key is not a scalar");
  if (t == LUA_TNUMBER && lua_tonumber(u->L, -1) != lua_tonumber(u->L, -1))
    return up_fail(u, UP_BAD, "map key is NaN");
  return UP_OK;
}

static int unpack_map(struct up *u, uint64_t n)
{
  int rc = enter(u);
  if (rc)
    return rc;
  brine__new_map(u->L, n < SIZE_HINT_MAX ? (int)n : SIZE_HINT_MAX);
  for (uint64_t i = 0; i < n; i++) {
    if ((rc = unpack_value(u)) != UP_OK || (rc = check_key(u)) != UP_OK
        || (rc = unpack_value(u)) != UP_OK)  /* map k v */
      return rc;
    brine__map_set(u->L, -3);                /* map */
  }
  u->depth--;
  return UP_OK;
}

static int unpack_float(struct up *u, int n)
{
  if (left(u) < (size_t)n)
    return up_fail(u, UP_SHORT, TRUNCATED);
  uint64_t bits = get_be(u, n);
  if (n == 4) {
    uint32_t b32 = (uint32_t)bits;
    float f;
    memcpy(&f, &b32, sizeof f);
    lua_pushnumber(u->L, (lua_Number)f);
  } else {
    double d;
    memcpy(&d, &bits, sizeof d);
    lua_pushnumber(u->L, d);
  }
  return UP_OK;
}

/* Integers of n bytes: signed ones sign-extended; an unsigned 64-bit value
 * above the Lua integer range becomes a big integer. */
static int unpack_int(struct up *u, int n, int is_signed)
{
  if (left(u) < (size_t)n)
    return up_fail(u, UP_SHORT, TRUNCATED);
  uint64_t v = get_be(u, n);
  if (is_signed) {
    int shift = 64 - 8 * n;
    lua_pushinteger(u->L, (lua_Integer)((int64_t)(v << shift) >> shift));
  } else if (v > (uint64_t)INT64_MAX) {
    char text[24];
    int len = snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    brine__push_digits(u->L, text, (size_t)len, 10, 0);
  } else {
    lua_pushinteger(u->L, (lua_Integer)v);
  }
  return UP_OK;
}

/* str 8/16/32 (0xd9..0xdb) and bin 8/16/32 (0xc4..0xc6) */
static int unpack_sized_bytes(struct up *u, int n)
{
  uint64_t len;
  int rc = get_len(u, n, 1, &len);
  return rc ? rc : unpack_bytes(u, len);
}

/* ext 8/16 of type BIGINT_EXT: a big integer's decimal text, n bytes. */
static int unpack_bigint(struct up *u, uint64_t n)
{
  if (left(u) < n + 1)
    return up_fail(u, UP_SHORT, TRUNCATED);
  if (*u->p != BIGINT_EXT)
    return up_fail_n(u, UP_BAD, "unsupported ext type %llu", *u->p);
  const char *text = (const char *)u->p + 1;
  int neg = n > 0 && text[0] == '-';
  int ok = n > (uint64_t)neg;
  for (uint64_t i = (uint64_t)neg; ok && i < n; i++)
    ok = text[i] >= '0' && text[i] <= '9';
  if (!ok || brine__push_digits(u->L, text + neg, (size_t)n - (size_t)neg, 10,
                                neg) < 0)
    return up_fail(u, UP_BAD, "bad big integer");
  u->p += n + 1;
  return UP_OK;
}

static int unpack_typed(struct up *u, unsigned char t)
{
  uint64_t n;
  int rc;
  switch (t) {
  case 0xc0: brine__push_null(u->L); return UP_OK;
  case 0xc2: lua_pushboolean(u->L, 0); return UP_OK;
  case 0xc3: lua_pushboolean(u->L, 1); return UP_OK;
  case 0xc4: return unpack_sized_bytes(u, 1);
  case 0xc5: return unpack_sized_bytes(u, 2);
  case 0xc6: return unpack_sized_bytes(u, 4);
  case 0xca: return unpack_float(u, 4);
  case 0xcb: return unpack_float(u, 8);
  case 0xcc: return unpack_int(u, 1, 0);
  case 0xcd: return unpack_int(u, 2, 0);
  case 0xce: return unpack_int(u, 4, 0);
  case 0xcf: return unpack_int(u, 8, 0);
  case 0xd0: return unpack_int(u, 1, 1);
  case 0xd1: return unpack_int(u, 2, 1);
  case 0xd2: return unpack_int(u, 4, 1);
  case 0xd3: return unpack_int(u, 8, 1);
  case 0xd9: return unpack_sized_bytes(u, 1);
  case 0xda: return unpack_sized_bytes(u, 2);
  case 0xdb: return unpack_sized_bytes(u, 4);
  case 0xdc: case 0xdd:
    rc = get_len(u, t == 0xdc ? 2 : 4, 1, &n);
    return rc ? rc : unpack_array(u, n);
  case 0xde: case 0xdf:
    rc = get_len(u, t == 0xde ? 2 : 4, 2, &n);
    return rc ? rc : unpack_map(u, n);
  case 0xc7: case 0xc8:
    rc = get_len(u, t == 0xc7 ? 1 : 2, 0, &n);
    return rc ? rc : unpack_bigint(u, n);
  }
  u->p--;
  if (t == 0xc1)
    return up_fail(u, UP_BAD, "reserved type byte 0xc1");
  return up_fail_n(u, UP_BAD, "unsupported ext type byte 0x%llx", t);
}

/* Reads one value and pushes it; returns UP_OK or a failure code with
 * u->err set (the stack then holds junk the caller drops). */
static int unpack_value(struct up *u)
{
  if (u->p >= u->end)
    return up_fail(u, UP_SHORT, TRUNCATED);
  unsigned char t = *u->p++;
  if (t <= 0x7f) {
    lua_pushinteger(u->L, t);
    return UP_OK;
  }
  if (t >= 0xe0) {
    lua_pushinteger(u->L, (lua_Integer)t - 256);
    return UP_OK;
  }
  if (t >= 0xa0 && t <= 0xbf) {
    if (left(u) < (size_t)(t & 0x1f))
      return up_fail_n(u, UP_SHORT, TOO_LONG, t & 0x1f);
    return unpack_bytes(u, t & 0x1f);
  }
  if (t >= 0x90 && t <= 0x9f) {
    if (left(u) < (size_t)(t & 0x0f))
      return up_fail_n(u, UP_SHORT, TOO_LONG, t & 0x0f);
    return unpack_array(u, t & 0x0f);
  }
  if (t >= 0x80 && t <= 0x8f) {
    if (left(u) / 2 < (size_t)(t & 0x0f))
      return up_fail_n(u, UP_SHORT, TOO_LONG, t & 0x0f);
    return unpack_map(u, t & 0x0f);
  }
  return unpack_typed(u, t);
}

/* Reads the options table at idx: max_depth and max_size. */
static void read_unpack_opts(lua_State *L, int idx, int *max_depth,
                             lua_Integer *max_size)
{
  if (lua_isnoneornil(L, idx))
    return;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "max_depth") != LUA_TNIL) {
    lua_Integer n = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || n < 1 || n > UNPACK_MAX_DEPTH)
      luaL_error(L, "option 'max_depth' must be an integer in 1..10000");
    *max_depth = (int)n;
  }
  if (lua_getfield(L, idx, "max_size") != LUA_TNIL) {
    *max_size = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || *max_size < 0)
      luaL_error(L, "option 'max_size' must be a non-negative integer");
  }
  lua_pop(L, 2);
}

/* Sets up u over s (n bytes), honouring the options at opts; returns 0,
 * or pushes nil and an error and returns 2. */
static int up_init(lua_State *L, struct up *u, const char *s, size_t n,
                   int opts)
{
  lua_Integer max_size = -1;
  memset(u, 0, sizeof *u);
  u->L = L;
  u->max_depth = UNPACK_DEFAULT_DEPTH;
  read_unpack_opts(L, opts, &u->max_depth, &max_size);
  u->start = u->p = (const unsigned char *)s;
  u->end = u->start + n;
  if (max_size >= 0 && (uint64_t)n > (uint64_t)max_size) {
    lua_pushnil(L);
    lua_pushfstring(L, "message of %I bytes exceeds max_size %I",
                    (lua_Integer)n, max_size);
    return 2;
  }
  return 0;
}

/* unpack(s[, {max_depth=, max_size=}]) -> value | nil, err */
static int l_unpack(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  struct up u;
  if (up_init(L, &u, s, n, 2))
    return 2;
  lua_settop(L, 2);
  int rc = unpack_value(&u);
  if (rc == UP_OK && u.p == u.end)
    return 1;
  if (rc == UP_OK)
    up_fail(&u, UP_BAD, "extra bytes after the value");
  lua_pushnil(L);
  lua_pushstring(L, u.err);
  return 2;
}

/* unpack_many(s[, opts]) -> array of every value in s | nil, err */
static int l_unpack_many(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  struct up u;
  if (up_init(L, &u, s, n, 2))
    return 2;
  lua_settop(L, 2);
  brine__new_array(L, 0);                    /* list */
  for (lua_Integer i = 1; u.p < u.end; i++) {
    if (unpack_value(&u) != UP_OK) {
      lua_pushnil(L);
      lua_pushstring(L, u.err);
      return 2;
    }
    lua_rawseti(L, 3, i);
  }
  return 1;
}

/* ---- the streaming unpacker ---- */

/* The pending bytes live in the userdata's user value (a string); pos is
 * where the next value starts in it. */
struct unpacker {
  size_t pos;
  int max_depth;
  lua_Integer max_size;
};

static struct unpacker *check_unpacker(lua_State *L)
{
  return luaL_checkudata(L, 1, UNPACKER_MT);
}

/* unpacker:feed(bytes) -> true | nil, err when the bytes not yet consumed
 * would exceed max_size (the bytes are then not taken). */
static int l_feed(lua_State *L)
{
  struct unpacker *k = check_unpacker(L);
  size_t n, have;
  luaL_checklstring(L, 2, &n);
  lua_getiuservalue(L, 1, 1);
  const char *pending = lua_tolstring(L, -1, &have);
  if (have - k->pos + n > (size_t)k->max_size) {
    lua_pushnil(L);
    lua_pushfstring(L, "unfinished message exceeds max_size %I",
                    k->max_size);
    return 2;
  }
  lua_pushlstring(L, pending + k->pos, have - k->pos);
  lua_pushvalue(L, 2);
  lua_concat(L, 2);
  lua_setiuservalue(L, 1, 1);
  k->pos = 0;
  lua_pushboolean(L, 1);
  return 1;
}

/* unpacker:next() -> value, or nil when more bytes are needed, or
 * nil, err when the stream is not msgpack */
static int l_next(lua_State *L)
{
  struct unpacker *k = check_unpacker(L);
  lua_settop(L, 1);
  size_t have;
  lua_getiuservalue(L, 1, 1);
  const char *pending = lua_tolstring(L, 2, &have);
  struct up u;
  memset(&u, 0, sizeof u);
  u.L = L;
  u.max_depth = k->max_depth;
  u.start = (const unsigned char *)pending;
  u.p = u.start + k->pos;
  u.end = u.start + have;
  if (u.p == u.end)
    return 0;
  int rc = unpack_value(&u);
  if (rc == UP_OK) {
    k->pos = (size_t)(u.p - u.start);
    return 1;
  }
  lua_pushnil(L);
  if (rc == UP_SHORT)
    return 1;
  lua_pushstring(L, u.err);
  return 2;
}

/* unpacker:pending() -> number of bytes not yet consumed */
static int l_pending(lua_State *L)
{
  struct unpacker *k = check_unpacker(L);
  lua_getiuservalue(L, 1, 1);
  lua_pushinteger(L, (lua_Integer)(lua_rawlen(L, -1) - k->pos));
  return 1;
}

/* unpacker([{max_depth=, max_size=}]) -> a streaming unpacker */
static int l_unpacker(lua_State *L)
{
  int max_depth = UNPACK_DEFAULT_DEPTH;
  lua_Integer max_size = STREAM_DEFAULT_MAX_SIZE;
  read_unpack_opts(L, 1, &max_depth, &max_size);
  struct unpacker *k = lua_newuserdatauv(L, sizeof *k, 1);
  k->pos = 0;
  k->max_depth = max_depth;
  k->max_size = max_size;
  lua_pushliteral(L, "");
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, UNPACKER_MT);
  return 1;
}

static const luaL_Reg unpacker_methods[] = {
  {"feed", l_feed},
  {"next", l_next},
  {"pending", l_pending},
  {NULL, NULL}
};

static const luaL_Reg msgpack_funcs[] = {
  {"pack", l_pack},
  {"unpack", l_unpack},
  {"unpack_many", l_unpack_many},
  {"unpacker", l_unpacker},
  {NULL, NULL}
};

int brine__open_msgpack(lua_State *L)
{
  luaL_requiref(L, "brine.data", brine__open_data, 0);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, UNPACKER_MT)) {
    luaL_newlib(L, unpacker_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, msgpack_funcs);
  brine__push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
