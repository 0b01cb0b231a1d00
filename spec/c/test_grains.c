/* Checks the core grains from the embedding API: a C host creates an
 * engine, requires brine.grains, collects the grains of this machine and
 * of a fixture tree, and reads them with the data model's helpers. */
#include "brine.h"
#include "data.h"

#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static int failures;

#define CHECK(cond) \
  do { \
    if (!(cond)) { \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++; \
    } \
  } while (0)

/* Pushes grains.core(opts-table-built-from-root) or nil and a message. */
static int call_core(lua_State *L, const char *root)
{
  lua_getglobal(L, "require");
  lua_pushliteral(L, "brine.grains");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return 0;
  lua_getfield(L, -1, "core");
  lua_remove(L, -2);
  lua_createtable(L, 0, 1);
  if (root) {
    lua_pushstring(L, root);
    lua_setfield(L, -2, "root");
  }
  return lua_pcall(L, 1, 1, 0) == LUA_OK;
}

static const char *field(lua_State *L, const char *key, char *buf, size_t n)
{
  lua_getfield(L, -1, key);
  snprintf(buf, n, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
  lua_pop(L, 1);
  return buf;
}

static void test_this_machine(lua_State *L)
{
  CHECK(call_core(L, NULL));
  CHECK(brine__kind(L, -1) == BRINE_MAP);
  struct utsname u;
  uname(&u);
  char buf[256];
  CHECK(strcmp(field(L, "kernel", buf, sizeof buf), "Linux") == 0);
  CHECK(strcmp(field(L, "kernelrelease", buf, sizeof buf), u.release) == 0);
  CHECK(strcmp(field(L, "cpuarch", buf, sizeof buf), u.machine) == 0);
  lua_getfield(L, -1, "num_cpus");
  CHECK(brine__kind(L, -1) == BRINE_INT && lua_tointeger(L, -1) > 0);
  lua_pop(L, 1);
  lua_getfield(L, -1, "ipv4");
  CHECK(brine__kind(L, -1) == BRINE_ARRAY);
  lua_pop(L, 1);

  /* keys come out sorted */
  struct brine__iter it;
  brine__iter_start(L, -1, &it);
  char prev[128] = "";
  int n = 0, sorted = 1;
  while (brine__iter_next(L, &it)) {
    const char *k = lua_tostring(L, -2);
    sorted = sorted && strcmp(prev, k) < 0;
    snprintf(prev, sizeof prev, "%s", k);
    lua_pop(L, 2);
    n++;
  }
  lua_pop(L, 1);
  CHECK(sorted);
  CHECK(n > 50);
  lua_pop(L, 1);
}

static void test_fixture(lua_State *L)
{
  char root[4096];
  snprintf(root, sizeof root, "%s", __FILE__);
  char *slash = strrchr(root, '/');
  CHECK(slash != NULL);
  if (!slash)
    return;
  snprintf(slash, sizeof root - (size_t)(slash - root),
           "/../fixtures/grains/raspbian-pi4");
  CHECK(call_core(L, root));
  char buf[256];
  CHECK(strcmp(field(L, "os", buf, sizeof buf), "Raspbian") == 0);
  CHECK(strcmp(field(L, "os_family", buf, sizeof buf), "Debian") == 0);
  CHECK(strcmp(field(L, "osfinger", buf, sizeof buf), "Raspbian-11") == 0);
  CHECK(strcmp(field(L, "serialnumber", buf, sizeof buf), "10000000a1b2c3d4")
        == 0);
  lua_getfield(L, -1, "osmajorrelease");
  CHECK(lua_isinteger(L, -1) && lua_tointeger(L, -1) == 11);
  lua_pop(L, 2);

  CHECK(call_core(L, "/no/such/root") && lua_isnil(L, -1));
  lua_pop(L, 1);
}

int main(void)
{
  brine_engine *engine = brine_engine_new(NULL);
  CHECK(engine != NULL);
  if (!engine)
    return 1;
  lua_State *L = brine_engine_lua(engine);
  test_this_machine(L);
  test_fixture(L);
  CHECK(lua_gettop(L) == 0);
  brine_engine_free(engine);
  if (failures)
    fprintf(stderr, "%d checks failed\n", failures);
  return failures ? 1 : 0;
}
