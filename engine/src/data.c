/* The data model (brine.data): insertion-ordered maps, marked arrays and
 * the null sentinel, shared by YAML, JSON, msgpack, Jinja and the state
 * compiler.
 *
 * A map is a plain Lua table whose values live in the table itself, so
 * reads are raw and fast. Its own metatable (named "brine.map") records
 * the keys in insertion order in its array part and, under "__pos", each
 * key's position. __newindex fires only for keys absent from the table,
 * which is exactly an insertion; a key deleted and set again moves to the
 * end, as in Python. An array is a table with the shared "brine.array"
 * metatable, so an empty array is not an empty map; a tuple (for the
 * template engine's Python values) is an array with the "brine.tuple"
 * metatable. null is one full
 * userdata, "brine.null". An integer beyond 64 bits is a table of limbs
 * with the "brine.bigint" metatable (data.h). */
#include "data.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char TOMB = 0; /* marks a key slot whose key moved on */
#define TOMB_P ((void *)&TOMB)
static const char NULL_KEY = 0;
static const char ARRAY_MT_KEY = 0;
static const char TUPLE_MT_KEY = 0;
static const char BIGINT_MT_KEY = 0;
static const char BYTES_MT_KEY = 0;

void brine__push_null(lua_State *L)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, &NULL_KEY);
}

int brine__is_null(lua_State *L, int idx)
{
  if (lua_type(L, idx) != LUA_TUSERDATA)
    return 0;
  brine__push_null(L);
  int same = lua_rawequal(L, idx < 0 && idx > LUA_REGISTRYINDEX ? idx - 1 : idx,
                          -1);
  lua_pop(L, 1);
  return same;
}

/* Pushes the metatable of the table at idx if it is a map's, else nothing
 * and returns 0. */
static int map_meta(lua_State *L, int idx)
{
  if (!lua_getmetatable(L, idx))
    return 0;
  if (lua_getfield(L, -1, "__name") == LUA_TSTRING) {
    size_t n;
    const char *name = lua_tolstring(L, -1, &n);
    /* exactly "brine.map": the template engine's "brine.markup" is not */
    if (n == 9 && memcmp(name, "brine.map", 9) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  lua_pop(L, 2);
  return 0;
}

static int map_newindex(lua_State *L);
static int map_pairs(lua_State *L);

void brine__new_map(lua_State *L, int nhint)
{
  lua_createtable(L, 0, nhint);              /* map */
  lua_createtable(L, nhint, 4);              /* map mt */
  lua_pushliteral(L, "brine.map");
  lua_setfield(L, -2, "__name");
  lua_pushcfunction(L, map_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, map_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_createtable(L, 0, nhint);
  lua_setfield(L, -2, "__pos");
  lua_setmetatable(L, -2);                   /* map */
}

/* Records key k (at abs index kidx) as the newest key of the map whose
 * metatable is on top of the stack. */
static void order_append(lua_State *L, int kidx)
{
  int mt = lua_gettop(L);
  lua_getfield(L, mt, "__pos");              /* mt pos */
  lua_pushvalue(L, kidx);
  if (lua_rawget(L, -2) == LUA_TNUMBER) {    /* re-added after a delete */
    lua_Integer old = lua_tointeger(L, -1);
    lua_pushlightuserdata(L, TOMB_P);
    lua_rawseti(L, mt, old);
  }
  lua_pop(L, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, mt) + 1;
  lua_pushvalue(L, kidx);
  lua_rawseti(L, mt, n);
  lua_pushvalue(L, kidx);
  lua_pushinteger(L, n);
  lua_rawset(L, -3);                          /* pos[k] = n */
  lua_pop(L, 1);
}

static int map_newindex(lua_State *L)
{
  if (lua_isnil(L, 3))
    return 0;
  lua_getmetatable(L, 1);
  order_append(L, 2);
  lua_pop(L, 1);
  lua_rawset(L, 1);
  return 0;
}

/* Sets the key and value on top of the stack in the map at absolute index
 * map. mt is the absolute index of the map's metatable when the caller
 * holds it, else 0: it is then looked up, and only for a new key. */
static void map_set_with(lua_State *L, int map, int mt)
{
  int k = lua_gettop(L) - 1;
  lua_pushvalue(L, k);
  int absent = lua_rawget(L, map) == LUA_TNIL;
  lua_pop(L, 1);
  if (absent && !lua_isnil(L, k + 1)) {
    if (mt) {
      lua_pushvalue(L, mt);
      order_append(L, k);
      lua_pop(L, 1);
    } else if (map_meta(L, map)) {
      order_append(L, k);
      lua_pop(L, 1);
    }
  }
  lua_rawset(L, map);
}

void brine__map_set(lua_State *L, int map)
{
  map_set_with(L, lua_absindex(L, map), 0);
}

/* The map iterator: next(map, key) in insertion order. */
static int map_next(lua_State *L)
{
  lua_settop(L, 2);
  if (!lua_getmetatable(L, 1))
    return luaL_error(L, "not a brine.map");  /* 3: mt */
  lua_Integer i = 0;
  if (!lua_isnil(L, 2)) {
    lua_getfield(L, 3, "__pos");
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    i = lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
  for (i = i + 1; i <= n; i++) {
    if (lua_rawgeti(L, 3, i) != LUA_TLIGHTUSERDATA
        || lua_touserdata(L, -1) != TOMB_P) {
      lua_pushvalue(L, -1);
      if (lua_rawget(L, 1) != LUA_TNIL)
        return 2;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

static int map_pairs(lua_State *L)
{
  lua_pushcfunction(L, map_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

void brine__new_array(lua_State *L, int nhint)
{
  lua_createtable(L, nhint, 0);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
  lua_setmetatable(L, -2);
}

/* A plain table is an array when its keys are exactly 1..n, n > 0. */
static int plain_is_array(lua_State *L, int idx)
{
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (n == 0)
    return 0;
  lua_Integer count = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1
        || lua_tointeger(L, -1) > n) {
      lua_pop(L, 1);
      return 0;
    }
    count++;
  }
  return count == n;
}

/* True when the metatable on top of the stack is the one registered
 * under key. */
static int is_meta(lua_State *L, const char *key)
{
  lua_rawgetp(L, LUA_REGISTRYINDEX, key);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 1);
  return same;
}

enum brine_kind brine__kind(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return BRINE_NULL;
  case LUA_TBOOLEAN: return BRINE_BOOL;
  case LUA_TNUMBER: return lua_isinteger(L, idx) ? BRINE_INT : BRINE_FLOAT;
  case LUA_TSTRING: return BRINE_STRING;
  case LUA_TUSERDATA: return brine__is_null(L, idx) ? BRINE_NULL : BRINE_OTHER;
  case LUA_TTABLE: break;
  default: return BRINE_OTHER;
  }
  if (map_meta(L, idx)) { /* a map, even when its keys are 1..n */
    lua_pop(L, 1);
    return BRINE_MAP;
  }
  if (lua_getmetatable(L, idx)) {                            /* mt */
    enum brine_kind kind = is_meta(L, &BIGINT_MT_KEY) ? BRINE_BIGINT
      : is_meta(L, &BYTES_MT_KEY) ? BRINE_BYTES
      : is_meta(L, &ARRAY_MT_KEY) || is_meta(L, &TUPLE_MT_KEY) ? BRINE_ARRAY
      : BRINE_OTHER;
    lua_pop(L, 1);
    if (kind != BRINE_OTHER)
      return kind;
  }
  return plain_is_array(L, idx) ? BRINE_ARRAY : BRINE_MAP;
}

const char *brine__kind_name(enum brine_kind kind)
{
  static const char *const names[] = {"null", "boolean", "integer", "float",
    "string", "array", "map", "bigint", "bytes", "other"};
  return names[kind];
}

/* For plain tables, a stable order: the keys sorted by the Lua chunk below,
 * so that output never depends on hash order. */
static const char SORTED_KEYS_CODE[] =
  "local t = ... local ks = {} for k in next, t do ks[#ks + 1] = k end "
  "table.sort(ks, function(a, b) local ta, tb = type(a), type(b) "
  "if ta ~= tb then return ta < tb end "
  "if ta == 'number' or ta == 'string' then return a < b end "
  "return tostring(a) < tostring(b) end) return ks";
static const char SORTED_KEYS_KEY = 0;

void brine__iter_start(lua_State *L, int idx, struct brine__iter *it)
{
  it->table = lua_absindex(L, idx);
  it->i = 0;
  if (map_meta(L, it->table)) {
    it->order = lua_gettop(L);
    return;
  }
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SORTED_KEYS_KEY) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    luaL_loadstring(L, SORTED_KEYS_CODE);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SORTED_KEYS_KEY);
  }
  lua_pushvalue(L, it->table);
  lua_call(L, 1, 1);                         /* sorted key list */
  it->order = -lua_gettop(L);                /* negative: a plain key list */
}

int brine__iter_next(lua_State *L, struct brine__iter *it)
{
  int order = it->order < 0 ? -it->order : it->order;
  lua_Integer n = (lua_Integer)lua_rawlen(L, order);
  while (++it->i <= n) {
    int t = lua_rawgeti(L, order, it->i);
    if (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) == TOMB_P) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushvalue(L, -1);
    if (lua_rawget(L, it->table) != LUA_TNIL)
      return 1;
    lua_pop(L, 2);
  }
  return 0;
}

lua_Integer brine__count(lua_State *L, int idx)
{
  lua_Integer n = 0;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    n++;
  }
  return n;
}

/* ---- the Lua module ---- */

static int l_map(lua_State *L)
{
  lua_Integer n = lua_istable(L, 1) ? (lua_Integer)lua_rawlen(L, 1) : 0;
  /* sized for the pairs given: no rehash of the map or its key order as
   * they go in */
  brine__new_map(L, n > 1024 ? 1024 : (int)n);
  if (n == 0)
    return 1;
  int map = lua_gettop(L);
  lua_getmetatable(L, map);                  /* the map's own, known */
  int mt = map + 1;
  for (lua_Integer i = 1; i <= n; i++) {     /* the list of {k, v} pairs */
    lua_rawgeti(L, 1, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);                   /* pair k v */
    map_set_with(L, map, mt);                /* pair */
    lua_pop(L, 1);
  }
  lua_settop(L, map);
  return 1;
}

static int l_array(lua_State *L)
{
  if (lua_istable(L, 1)) {
    lua_settop(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
    lua_setmetatable(L, 1);
    return 1;
  }
  brine__new_array(L, 0);
  return 1;
}

static int l_tuple(lua_State *L)
{
  if (!lua_istable(L, 1))
    lua_newtable(L);
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &TUPLE_MT_KEY);
  lua_setmetatable(L, 1);
  return 1;
}

static int l_is_tuple(lua_State *L)
{
  int yes = 0;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &TUPLE_MT_KEY);
    yes = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

static int l_kind(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_pushstring(L, brine__kind_name(brine__kind(L, 1)));
  return 1;
}

static int l_is_map(lua_State *L)
{
  int yes = lua_istable(L, 1) && map_meta(L, 1);
  if (yes)
    lua_pop(L, 1);
  lua_pushboolean(L, yes);
  return 1;
}

static int l_is_array(lua_State *L)
{
  lua_pushboolean(L, lua_istable(L, 1) && brine__kind(L, 1) == BRINE_ARRAY);
  return 1;
}

static int l_is_null(lua_State *L)
{
  lua_pushboolean(L, brine__is_null(L, 1));
  return 1;
}

static int l_keys(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  struct brine__iter it;
  brine__iter_start(L, 1, &it);
  lua_newtable(L);
  lua_Integer n = 0;
  while (brine__iter_next(L, &it)) {
    lua_pop(L, 1);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int l_count(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_pushinteger(L, brine__count(L, 1));
  return 1;
}

/* data.copy(t [, mt]): a new table holding t's own pairs (read raw, t's
 * metatable is not consulted or copied), sized for them at once, with
 * metatable mt when given. What the template engine's render frames are
 * made of: one allocation instead of a rehash at each power of two. */
#define COPY_ON_STACK 16

static int l_copy(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  int has_mt = !lua_isnoneornil(L, 2);
  if (has_mt)
    luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  luaL_checkstack(L, 2 * COPY_ON_STACK + 4, "data.copy");
  /* One walk of t: its pairs wait on the stack (a few at a time, the
   * usual case) until their count is known; a large table is counted
   * first instead. */
  int n = 0;
  lua_pushnil(L);
  while (n < COPY_ON_STACK && lua_next(L, 1)) {
    lua_pushvalue(L, -2);                    /* k v k */
    n++;
  }
  if (n < COPY_ON_STACK) {                   /* all of them: k1 v1 ... kn vn */
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
      lua_pushvalue(L, 3 + 2 * i);
      lua_pushvalue(L, 4 + 2 * i);
      lua_rawset(L, -3);
    }
  } else {
    lua_settop(L, 2);
    lua_Integer count = brine__count(L, 1);
    lua_createtable(L, 0, count > INT32_MAX ? INT32_MAX : (int)count);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    }
  }
  if (has_mt) {
    lua_pushvalue(L, 2);
    lua_setmetatable(L, -2);
  }
  return 1;
}

static int null_tostring(lua_State *L)
{
  lua_pushliteral(L, "null");
  return 1;
}

/* Big integers ----------------------------------------------------------- */

#define LIMB_BASE 10000000u

static void push_bigint_meta(lua_State *L);

static unsigned digit_value(char c)
{
  if (c >= '0' && c <= '9')
    return (unsigned)(c - '0');
  return (unsigned)((c | 0x20) - 'a' + 10);
}

/* The digits at s in base as a 64-bit magnitude; 0 when they overflow. */
static int fits_u64(const char *s, size_t n, unsigned base, uint64_t *v)
{
  uint64_t acc = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned d = digit_value(s[i]);
    if (acc > (UINT64_MAX - d) / base)
      return 0;
    acc = acc * base + d;
  }
  *v = acc;
  return 1;
}

int brine__push_digits(lua_State *L, const char *s, size_t n, int base,
                       int negative)
{
  uint64_t v;
  if (fits_u64(s, n, (unsigned)base, &v)) {
    if (!negative && v <= (uint64_t)LUA_MAXINTEGER) {
      lua_pushinteger(L, (lua_Integer)v);
      return 0;
    }
    if (negative && v <= (uint64_t)LUA_MAXINTEGER + 1) {
      lua_pushinteger(L, (lua_Integer)(0 - v));
      return 0;
    }
  }
  while (n > 1 && *s == '0')
    s++, n--;
  if (n > (base == 10 ? BRINE_BIGINT_MAX_DIGITS : 16384))
    return -1;
  /* scratch limbs in a userdata, so that a memory error leaks nothing */
  uint32_t *limbs = lua_newuserdatauv(L, (n + 1) * sizeof *limbs, 0);
  size_t used = 0;
  if (base == 10) {
    /* decimal (JSON, msgpack, most YAML): the limbs are the groups of
     * seven digits from the right, read in linear time */
    for (size_t end = n; end > 0; end = end > 7 ? end - 7 : 0) {
      uint32_t limb = 0;
      for (size_t i = end > 7 ? end - 7 : 0; i < end; i++)
        limb = limb * 10 + digit_value(s[i]);
      limbs[used++] = limb;
    }
    n = 0;                                           /* nothing left below */
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t carry = digit_value(s[i]);
    for (size_t k = 0; k < used; k++) {
      uint64_t x = (uint64_t)limbs[k] * (unsigned)base + carry;
      limbs[k] = (uint32_t)(x % LIMB_BASE);
      carry = x / LIMB_BASE;
    }
    for (; carry; carry /= LIMB_BASE)
      limbs[used++] = (uint32_t)(carry % LIMB_BASE);
  }
  lua_createtable(L, (int)used, 1);                  /* scratch, big */
  for (size_t k = 0; k < used; k++) {
    lua_pushinteger(L, limbs[k]);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  lua_pushboolean(L, negative);
  lua_setfield(L, -2, "neg");
  push_bigint_meta(L);
  lua_setmetatable(L, -2);
  lua_remove(L, -2);                                 /* big */
  return 0;
}

int brine__is_bigint(lua_State *L, int idx)
{
  return lua_type(L, idx) == LUA_TTABLE && brine__kind(L, idx) == BRINE_BIGINT;
}

void brine__bigint_text(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_getfield(L, idx, "neg");
  int neg = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (neg)
    luaL_addchar(&b, '-');
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  for (lua_Integer k = n; k >= 1; k--) {
    char part[16];
    lua_rawgeti(L, idx, k);
    int len = snprintf(part, sizeof part, k == n ? "%lld" : "%07lld",
                       (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
    luaL_addlstring(&b, part, (size_t)len);
  }
  luaL_pushresult(&b);
}

static int bigint_tostring(lua_State *L)
{
  brine__bigint_text(L, 1);
  return 1;
}

static void push_bigint_meta(lua_State *L)
{
  if (luaL_newmetatable(L, "brine.bigint")) {
    lua_pushcfunction(L, bigint_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BIGINT_MT_KEY);
  }
}

/* Byte strings --------------------------------------------------------------- */

static void push_bytes_meta(lua_State *L)
{
  if (luaL_newmetatable(L, "brine.bytes")) {
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &BYTES_MT_KEY);
  }
}

void brine__push_bytes(lua_State *L, const char *s, size_t n)
{
  lua_createtable(L, 0, 1);
  lua_pushlstring(L, s, n);
  lua_setfield(L, -2, "s");
  push_bytes_meta(L);
  lua_setmetatable(L, -2);
}

const char *brine__bytes(lua_State *L, int idx, size_t *n)
{
  if (brine__kind(L, idx) != BRINE_BYTES)
    return NULL;
  lua_getfield(L, idx, "s");
  const char *s = lua_tolstring(L, -1, n); /* the table keeps it alive */
  lua_pop(L, 1);
  return s;
}

/* data.bytes(s): a byte string holding s. */
static int l_bytes(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  brine__push_bytes(L, s, n);
  return 1;
}

/* The metatable of byte strings, for Lua code that makes them. */
static int l_bytes_metatable(lua_State *L)
{
  push_bytes_meta(L);
  return 1;
}

/* data.bigint(text): the integer a decimal text (an optional sign, then
 * digits) writes, as a Lua integer when it fits in 64 bits. */
static int l_bigint(lua_State *L)
{
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  int negative = n > 0 && s[0] == '-';
  size_t start = n > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
  int ok = n > start;
  for (size_t i = start; i < n && ok; i++)
    ok = s[i] >= '0' && s[i] <= '9';
  if (!ok)
    return luaL_argerror(L, 1, "digits expected");
  if (brine__push_digits(L, s + start, n - start, 10, negative) < 0)
    return luaL_error(L, "integer text longer than %d digits",
                      BRINE_BIGINT_MAX_DIGITS);
  return 1;
}

/* The metatable of big integers, for Lua code that makes them. */
static int l_bigint_metatable(lua_State *L)
{
  push_bigint_meta(L);
  return 1;
}

static const luaL_Reg data_funcs[] = {
  {"bigint", l_bigint},
  {"bigint_metatable", l_bigint_metatable},
  {"bytes", l_bytes},
  {"bytes_metatable", l_bytes_metatable},
  {"map", l_map},
  {"array", l_array},
  {"tuple", l_tuple},
  {"is_tuple", l_is_tuple},
  {"kind", l_kind},
  {"is_map", l_is_map},
  {"is_array", l_is_array},
  {"is_null", l_is_null},
  {"keys", l_keys},
  {"count", l_count},
  {"copy", l_copy},
  {NULL, NULL}
};

int brine__open_data(lua_State *L)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &NULL_KEY) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_newuserdatauv(L, 0, 0);
    luaL_newmetatable(L, "brine.null");
    lua_pushcfunction(L, null_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &NULL_KEY);
    luaL_newmetatable(L, "brine.array");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ARRAY_MT_KEY);
    luaL_newmetatable(L, "brine.tuple");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &TUPLE_MT_KEY);
  }
  lua_pop(L, 1);
  luaL_newlib(L, data_funcs);
  brine__push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
