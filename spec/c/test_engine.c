/* Checks the embedding API and the data model from C: an engine starts,
 * runs Lua, keeps map order and tells arrays from maps. */
#include "brine.h"
#include "data.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; \
    } \
  } while (0)

static void test_map_order(lua_State *L)
{
  brine__new_map(L, 0);
  const char *keys[] = {"zeta", "alpha", "mid"};
  for (int i = 0; i < 3; i++) {
    lua_pushstring(L, keys[i]);
    lua_pushinteger(L, i);
    brine__map_set(L, -3);
  }
  struct brine__iter it;
  brine__iter_start(L, -1, &it);
  int i = 0;
  while (brine__iter_next(L, &it)) {
    CHECK(strcmp(lua_tostring(L, -2), keys[i]) == 0);
    CHECK(lua_tointeger(L, -1) == i);
    lua_pop(L, 2);
    i++;
  }
  CHECK(i == 3);
  lua_pop(L, 1);                              /* iterator helper */
  CHECK(brine__kind(L, -1) == BRINE_MAP);
  lua_pop(L, 1);
}

static void test_kinds(lua_State *L)
{
  brine__new_array(L, 0);
  CHECK(brine__kind(L, -1) == BRINE_ARRAY);
  brine__push_null(L);
  CHECK(brine__kind(L, -1) == BRINE_NULL);
  CHECK(brine__is_null(L, -1));
  lua_pushnumber(L, 1.0);
  CHECK(brine__kind(L, -1) == BRINE_FLOAT);
  lua_pushinteger(L, 1);
  CHECK(brine__kind(L, -1) == BRINE_INT);
  lua_pop(L, 4);
}

static void test_lua_side(lua_State *L)
{
  const char *code =
    "local d = require('brine.data') local m = d.map() "
    "m.b = 1 m.a = 2 m.c = 3 m.a = nil m.a = 4 "
    "local ks = {} for k in pairs(m) do ks[#ks + 1] = k end "
    "return table.concat(ks, ',')";
  CHECK(luaL_dostring(L, code) == LUA_OK);
  CHECK(strcmp(lua_tostring(L, -1), "b,c,a") == 0);
  lua_pop(L, 1);
}

/* The collector runs generational, and core.trim_memory keeps it so
 * while it collects everything. */
static void test_collector(lua_State *L)
{
  const char *code =
    "local core = require('brine.core') "
    "local t = {} for i = 1, 10000 do t[i] = {i} end t = nil "
    "local before = collectgarbage('count') "
    "local after = core.trim_memory() "
    "return collectgarbage('generational'), after < before";
  CHECK(luaL_dostring(L, code) == LUA_OK);
  CHECK(strcmp(lua_tostring(L, -2), "generational") == 0);
  CHECK(lua_toboolean(L, -1));
  lua_pop(L, 2);
}

int main(void)
{
  brine_engine *engine = brine_engine_new(NULL);
  CHECK(engine != NULL);
  lua_State *L = brine_engine_lua(engine);
  test_map_order(L);
  test_kinds(L);
  test_lua_side(L);
  test_collector(L);
  CHECK(lua_gettop(L) == 0);
  brine_engine_free(engine);
  if (failures)
    fprintf(stderr, "%d checks failed\n", failures);
  return failures ? 1 : 0;
}
