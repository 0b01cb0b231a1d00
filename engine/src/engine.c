/* The engine: one Lua state with brine's C modules registered for
 * `require` and a searcher that finds the Lua tree, first in a development
 * folder (BRINE_LUA_DIR or the embedding host's choice), then in the copy
 * compiled into the executable. Owns brine.core, the module that tells Lua
 * code about the build and reads the embedded tree. */
#include "brine.h"
#include "data.h"
#include "embedded.h"
#include "modules.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

int luaopen_luv(lua_State *L);

struct brine_engine {
  lua_State *L;
  char *error;
};

static const char LUA_DIR_KEY = 0;

static const struct brine__embedded *embedded_find(const char *name)
{
  for (int i = 0; i < brine__embedded_count; i++)
    if (strcmp(brine__embedded_files[i].name, name) == 0)
      return &brine__embedded_files[i];
  return NULL;
}

/* Pushes the development folder, or nil. */
static int push_lua_dir(lua_State *L)
{
  return lua_rawgetp(L, LUA_REGISTRYINDEX, &LUA_DIR_KEY) == LUA_TSTRING;
}

/* Loads lua/<rel> as a chunk: from the development folder when the file is
 * there, else from the embedded tree. Pushes the function, or nil and a
 * message; returns 1 when found. */
static int load_tree_file(lua_State *L, const char *rel)
{
  if (push_lua_dir(L)) {
    const char *path = lua_pushfstring(L, "%s/%s", lua_tostring(L, -1), rel);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      int rc = luaL_loadfilex(L, path, "t");
      lua_remove(L, -2);
      lua_remove(L, -2);
      return rc == LUA_OK ? 1 : lua_error(L);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  const struct brine__embedded *f = embedded_find(rel);
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "no file 'lua/%s' in brine", rel);
    return 0;
  }
  lua_pushfstring(L, "@lua/%s", rel);
  int rc = luaL_loadbufferx(L, f->bytecode, (size_t)f->bytecode_size,
                            lua_tostring(L, -1), "b");
  lua_remove(L, -2);
  return rc == LUA_OK ? 1 : lua_error(L);
}

/* package.searchers entry: "brine.cli" -> lua/brine/cli.lua or
 * lua/brine/cli/init.lua. */
static int tree_searcher(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = name; *p; p++)
    luaL_addchar(&b, *p == '.' ? '/' : *p);
  luaL_pushresult(&b);
  const char *base = lua_tostring(L, -1);
  const char *rel = lua_pushfstring(L, "%s.lua", base);
  if (load_tree_file(L, rel)) {
    lua_pushstring(L, rel);
    return 2;
  }
  lua_pop(L, 2);
  rel = lua_pushfstring(L, "%s/init.lua", base);
  if (load_tree_file(L, rel)) {
    lua_pushstring(L, rel);
    return 2;
  }
  lua_pushfstring(L, "no file 'lua/%s.lua' in brine", base);
  return 1;
}

/* core.load(rel) -> function | nil, message: a file of the Lua tree. */
static int core_load(lua_State *L)
{
  const char *rel = luaL_checkstring(L, 1);
  return load_tree_file(L, rel) ? 1 : 2;
}

/* core.source(rel) -> string | nil: a file's text from the Lua tree. */
static int core_source(lua_State *L)
{
  const char *rel = luaL_checkstring(L, 1);
  if (push_lua_dir(L)) {
    const char *path = lua_pushfstring(L, "%s/%s", lua_tostring(L, -1), rel);
    FILE *f = fopen(path, "rb");
    if (f) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      size_t n;
      char buf[4096];
      while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        luaL_addlstring(&b, buf, n);
      fclose(f);
      luaL_pushresult(&b);
      return 1;
    }
  }
  const struct brine__embedded *e = embedded_find(rel);
  if (!e)
    return 0;
  lua_pushlstring(L, e->data, (size_t)e->size);
  return 1;
}

/* core.list(prefix) -> array of the embedded tree's files under prefix
 * (e.g. "modules/"), names relative to lua/. */
static int core_list(lua_State *L)
{
  size_t len;
  const char *prefix = luaL_optlstring(L, 1, "", &len);
  lua_newtable(L);
  lua_Integer n = 0;
  for (int i = 0; i < brine__embedded_count; i++) {
    if (strncmp(brine__embedded_files[i].name, prefix, len) == 0) {
      lua_pushstring(L, brine__embedded_files[i].name);
      lua_rawseti(L, -2, ++n);
    }
  }
  return 1;
}

/* core.trim_memory() -> KiB: for a daemon going idle. A full garbage
 * collection, then the free pages of every malloc arena (the ZeroMQ
 * threads' too) given back to the system. Returns the Lua heap's size. */
static int core_trim_memory(lua_State *L)
{
  /* In generational mode the full collection is a switch to incremental
   * and back: entering generational mode collects everything and sets the
   * targets of the next collections from what is left. */
  if (lua_gc(L, LUA_GCINC, 0, 0, 0) == LUA_GCGEN)
    lua_gc(L, LUA_GCGEN, 0, 0);
  else
    lua_gc(L, LUA_GCCOLLECT);
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  lua_pushinteger(L, lua_gc(L, LUA_GCCOUNT));
  return 1;
}

static const luaL_Reg core_funcs[] = {
  {"load", core_load},
  {"trim_memory", core_trim_memory},
  {"source", core_source},
  {"list", core_list},
  {NULL, NULL}
};

int brine__open_core(lua_State *L)
{
  luaL_newlib(L, core_funcs);
  lua_pushliteral(L, BRINE_VERSION);
  lua_setfield(L, -2, "VERSION");
  lua_pushinteger(L, BRINE_API_VERSION);
  lua_setfield(L, -2, "API_VERSION");
  lua_pushliteral(L, LUA_RELEASE);
  lua_setfield(L, -2, "LUA_RELEASE");
  if (push_lua_dir(L))
    lua_setfield(L, -2, "lua_dir");
  else
    lua_pop(L, 1);
  return 1;
}

static void register_modules(lua_State *L)
{
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
#define BRINE_PRELOAD(name, fn) \
  lua_pushcfunction(L, fn); \
  lua_setfield(L, -2, name);
  BRINE_C_MODULES(BRINE_PRELOAD)
#undef BRINE_PRELOAD
  lua_pushcfunction(L, luaopen_luv);
  lua_setfield(L, -2, "luv");
  lua_pop(L, 1);

  /* The tree searcher goes right after the preload searcher. */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  for (lua_Integer i = (lua_Integer)lua_rawlen(L, -1); i >= 2; i--) {
    lua_rawgeti(L, -1, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushcfunction(L, tree_searcher);
  lua_rawseti(L, -2, 2);
  lua_pop(L, 2);
}

static int engine_init(lua_State *L)
{
  const char *lua_dir = lua_touserdata(L, 1);
  luaL_openlibs(L);
  if (lua_dir && *lua_dir) {
    lua_pushstring(L, lua_dir);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &LUA_DIR_KEY);
  }
  luaL_requiref(L, "brine.data", brine__open_data, 0);
  lua_pop(L, 1);
  register_modules(L);
  return 0;
}

brine_engine *brine_engine_new(const char *lua_dir)
{
  brine_engine *engine = calloc(1, sizeof *engine);
  if (!engine)
    return NULL;
  engine->L = luaL_newstate();
  if (!engine->L) {
    free(engine);
    return NULL;
  }
  /* Generational collection: a daemon's loaded code and data live long,
   * what a job or a render makes dies young; minor collections leave the
   * old objects alone (renders measured up to a third faster, memory the
   * same). BRINE_GC=incremental gives Lua's default back. */
  const char *gc = getenv("BRINE_GC");
  if (!gc || strcmp(gc, "incremental") != 0)
    lua_gc(engine->L, LUA_GCGEN, 0, 0);
  lua_pushcfunction(engine->L, engine_init);
  lua_pushlightuserdata(engine->L, (void *)lua_dir);
  if (lua_pcall(engine->L, 1, 0, 0) != LUA_OK) {
    brine_engine_free(engine);
    return NULL;
  }
  return engine;
}

void brine_engine_free(brine_engine *engine)
{
  if (!engine)
    return;
  if (engine->L)
    lua_close(engine->L);
  free(engine->error);
  free(engine);
}

lua_State *brine_engine_lua(brine_engine *engine)
{
  return engine->L;
}

static void set_error(brine_engine *engine, const char *msg)
{
  free(engine->error);
  engine->error = strdup(msg ? msg : "(error object is not a string)");
}

const char *brine_engine_error(brine_engine *engine)
{
  return engine->error ? engine->error : "";
}

const char *brine_strerror(int code)
{
  switch (code) {
  case BRINE_OK: return "success";
  case BRINE_ENOMEM: return "out of memory";
  case BRINE_ELUA: return "Lua error";
  case BRINE_EINVAL: return "invalid argument";
  default: return "unknown error";
  }
}

static int traceback(lua_State *L)
{
  const char *msg = lua_tostring(L, 1);
  if (!msg)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int brine_engine_main(brine_engine *engine, int argc, char **argv)
{
  lua_State *L = engine->L;
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);           /* 1 */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "brine.cli");
  if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
    fprintf(stderr, "brine: %s\n", lua_tostring(L, -1));
    return 2;
  }
  lua_getfield(L, -1, "main");               /* tb cli main */
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
    fprintf(stderr, "brine: internal error: %s\n", lua_tostring(L, -1));
    return 2;
  }
  int status = (int)luaL_optinteger(L, -1, 0);
  lua_settop(L, 0);
  return status;
}

int brine_call_local(brine_engine *engine, const char *function,
                     const char *args_json, const char *kwargs_json,
                     char **result_json)
{
  lua_State *L = engine->L;
  if (!function || !result_json)
    return BRINE_EINVAL;
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);           /* 1 */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "brine.embed");
  if (lua_pcall(L, 1, 1, 1) != LUA_OK)
    goto fail;
  lua_getfield(L, -1, "call_local");
  lua_pushstring(L, function);
  lua_pushstring(L, args_json ? args_json : "[]");
  lua_pushstring(L, kwargs_json ? kwargs_json : "{}");
  if (lua_pcall(L, 3, 2, 1) != LUA_OK)
    goto fail;
  if (lua_isnil(L, -2)) {
    set_error(engine, lua_tostring(L, -1));
    lua_settop(L, 0);
    return BRINE_ELUA;
  }
  *result_json = strdup(lua_tostring(L, -2));
  lua_settop(L, 0);
  return *result_json ? BRINE_OK : BRINE_ENOMEM;
fail:
  set_error(engine, lua_tostring(L, -1));
  lua_settop(L, 0);
  return BRINE_ELUA;
}
