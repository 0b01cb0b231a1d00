/* libFuzzer target for brine.json: decodes each input through the Lua
 * API and, when it decodes, encodes the value and decodes that again.
 * Any crash, sanitizer report or Lua error is a finding. Built only with
 * clang and -DBRINE_FUZZ=ON; seeds live in spec/fuzz/corpus/json. */
#include "brine.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

static const char ROUND_TRIP[] =
  "local json, s = require('brine.json'), ... "
  "local v, err = json.decode(s) "
  "if v == nil then assert(type(err) == 'string') return end "
  "local out = assert(json.encode(v)) "
  "assert(json.decode(out) ~= nil, 'cannot decode own output') "
  "assert(json.encode(json.decode(out)) == out, 'encoding is not stable')";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static brine_engine *engine;
  static int check_ref;
  if (!engine) {
    engine = brine_engine_new(NULL);
    lua_State *L = brine_engine_lua(engine);
    if (luaL_loadstring(L, ROUND_TRIP) != LUA_OK)
      abort();
    check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_State *L = brine_engine_lua(engine);
  lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK)
    abort();                                  /* a finding */
  return 0;
}
