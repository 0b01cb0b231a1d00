/* Robustness of the JSON and msgpack decoders: random bytes, JSON-like
 * token soup, every truncation and random byte flips of valid documents,
 * all fed through the Lua API. Each call must return a value or
 * nil + message, never raise or crash (run under ASan/UBSan in the
 * sanitize build); whatever decodes must encode and decode again. */
#include "brine.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond, what) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, \
              #cond, what); \
      failures++; \
    } \
  } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_rand(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 32);
}

/* The Lua side of one check: decode s; when it decodes, encode the value
 * and decode that again. Returns "ok", "rejected", or a failure text. */
static const char CHECK_CODE[] =
  "local dec, enc, s = ... "
  "local v, err = dec(s) "
  "if v == nil then "
  "  if type(err) ~= 'string' then return 'no error message' end "
  "  return 'rejected' end "
  "local out, eerr = enc(v) "
  "if not out then return 'cannot encode what was decoded: ' .. eerr end "
  "local again, derr = dec(out) "
  "if again == nil then return 'cannot decode own output: ' .. derr end "
  "return 'ok'";

struct codec {
  const char *name;
  int check;          /* registry ref of the compiled CHECK_CODE */
  int dec, enc;       /* registry refs of the functions */
  long ok, rejected;
};

static void feed(lua_State *L, struct codec *c, const char *s, size_t n)
{
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->check);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->dec);
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->enc);
  lua_pushlstring(L, s, n);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    CHECK(0, lua_tostring(L, -1));
  } else {
    const char *r = lua_tostring(L, -1);
    if (strcmp(r, "ok") == 0)
      c->ok++;
    else if (strcmp(r, "rejected") == 0)
      c->rejected++;
    else
      CHECK(0, r);
  }
  lua_pop(L, 1);
}

static void setup(lua_State *L, struct codec *c, const char *module,
                  const char *dec, const char *enc)
{
  CHECK(luaL_loadstring(L, CHECK_CODE) == LUA_OK, "check code");
  c->check = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK, module);
  lua_getfield(L, -1, dec);
  c->dec = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, enc);
  c->enc = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
}

static void random_bytes(lua_State *L, struct codec *c, int rounds)
{
  char buf[96];
  for (int i = 0; i < rounds; i++) {
    size_t n = next_rand() % sizeof buf;
    for (size_t k = 0; k < n; k++)
      buf[k] = (char)next_rand();
    feed(L, c, buf, n);
  }
}

static void token_soup(lua_State *L, struct codec *c, int rounds)
{
  static const char *const tokens[] = {"{", "}", "[", "]", "\"", "\"a\"",
    ",", ":", "0", "-1", "1.5e3", "1e", "true", "null", "NaN", "-Infinity",
    "\\u", "\\ud83d\\ude00", "\\ud800", "\\n", " ", "\n", "\xc3\xa9",
    "12345678901234567890", "\"\\", "\x01"};
  size_t ntok = sizeof tokens / sizeof tokens[0];
  char buf[512];
  for (int i = 0; i < rounds; i++) {
    size_t n = 0, count = next_rand() % 40;
    for (size_t k = 0; k < count; k++) {
      const char *t = tokens[next_rand() % ntok];
      size_t len = strlen(t);
      if (n + len >= sizeof buf)
        break;
      memcpy(buf + n, t, len);
      n += len;
    }
    feed(L, c, buf, n);
  }
}

/* Every prefix of doc, then random flips of one to three bytes. */
static void mutations(lua_State *L, struct codec *c, const char *doc,
                      size_t n, int rounds)
{
  char buf[1024];
  if (n > sizeof buf)
    n = sizeof buf;
  for (size_t k = 0; k <= n; k++)
    feed(L, c, doc, k);
  for (int i = 0; i < rounds; i++) {
    memcpy(buf, doc, n);
    int flips = 1 + (int)(next_rand() % 3);
    for (int f = 0; f < flips; f++)
      buf[next_rand() % n] = (char)next_rand();
    feed(L, c, buf, n);
  }
}

/* Packs a sample value with brine.msgpack so the mutations start from a
 * valid message. */
static size_t msgpack_sample(lua_State *L, char *out, size_t cap)
{
  const char *code =
    "local mp, data = require('brine.msgpack'), require('brine.data') "
    "return mp.pack(data.map({{'id', 42}, {'tags', {'a', 'b', '\\xff'}}, "
    "{'pi', 3.14}, {'none', data.null}, {'neg', -70000}, "
    "{'deep', {{{x = {1, 2.5, true}}}}}, {'empty', data.array()}, "
    "{'big', 2^40 | 0}, {'s', string.rep('z', 300)}}))";
  CHECK(luaL_dostring(L, code) == LUA_OK, "msgpack sample");
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (n > cap)
    n = cap;
  memcpy(out, s, n);
  lua_pop(L, 1);
  return n;
}

int main(void)
{
  brine_engine *engine = brine_engine_new(NULL);
  CHECK(engine != NULL, "engine");
  lua_State *L = brine_engine_lua(engine);

  struct codec json = {"json", 0, 0, 0, 0, 0};
  struct codec mp = {"msgpack", 0, 0, 0, 0, 0};
  setup(L, &json, "brine.json", "decode", "encode");
  setup(L, &mp, "brine.msgpack", "unpack", "pack");

  const char *doc = "{\"name\": \"web-3\", \"roles\": [\"db\", \"cache\"], "
    "\"n\": -12, \"f\": 1.5e-07, \"u\": \"\\u00e9\\ud83d\\ude00\\n\", "
    "\"none\": null, \"ok\": true, \"nested\": {\"a\": [[], {}, [1, [2]]]}}";
  random_bytes(L, &json, 5000);
  token_soup(L, &json, 20000);
  mutations(L, &json, doc, strlen(doc), 5000);

  char sample[1024];
  size_t n = msgpack_sample(L, sample, sizeof sample);
  random_bytes(L, &mp, 20000);
  mutations(L, &mp, sample, n, 10000);

  /* The valid inputs must have been accepted, the garbage mostly not. */
  CHECK(json.ok > 100 && json.rejected > 1000, "json coverage");
  CHECK(mp.ok > 100 && mp.rejected > 1000, "msgpack coverage");
  printf("json: %ld decoded, %ld rejected; msgpack: %ld decoded, "
         "%ld rejected\n", json.ok, json.rejected, mp.ok, mp.rejected);
  CHECK(lua_gettop(L) == 0, "stack balanced");
  brine_engine_free(engine);
  if (failures)
    fprintf(stderr, "%d checks failed\n", failures);
  return failures ? 1 : 0;
}
