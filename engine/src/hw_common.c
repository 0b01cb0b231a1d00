/* Helpers shared by the brine.hw.* device bindings (see hw_common.h). */
#include <lauxlib.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hw_common.h"

int brine__hw_fail(lua_State *L, const char *what, const char *device, int err)
{
  const char *code = "EIO";
  switch (err) {
  case ENOENT: code = "ENOENT"; break;
  case EACCES: case EPERM: code = "EACCES"; break;
  case EBUSY: code = "EBUSY"; break;
  case ENXIO: case EREMOTEIO: case ENODEV: code = "ENXIO"; break;
  case ETIMEDOUT: code = "timeout"; break;
  default: break;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", what, device, strerror(err));
  lua_pushstring(L, code);
  return 3;
}

struct brine__hw_dev *brine__hw_push(lua_State *L, const char *mt, int fd,
                                     const char *path)
{
  struct brine__hw_dev *dev = lua_newuserdatauv(L, sizeof *dev, 1);
  dev->fd = fd;
  dev->path = strdup(path);
  luaL_setmetatable(L, mt);
  return dev;
}

struct brine__hw_dev *brine__hw_check(lua_State *L, int idx, const char *mt)
{
  struct brine__hw_dev *dev = luaL_checkudata(L, idx, mt);
  if (dev->fd < 0)
    luaL_error(L, "%s is closed", dev->path ? dev->path : mt);
  return dev;
}

static int dev_close(lua_State *L)
{
  struct brine__hw_dev *dev = lua_touserdata(L, 1);
  if (dev && dev->fd >= 0)
    close(dev->fd);
  if (dev) {
    dev->fd = -1;
    free(dev->path);
    dev->path = NULL;
  }
  return 0;
}

static int dev_tostring(lua_State *L)
{
  struct brine__hw_dev *dev = lua_touserdata(L, 1);
  luaL_getmetafield(L, 1, "__name");
  if (dev->fd < 0)
    lua_pushfstring(L, "%s (closed)", lua_tostring(L, -1));
  else
    lua_pushfstring(L, "%s %s", lua_tostring(L, -1), dev->path);
  return 1;
}

static int dev_fileno(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TUSERDATA);
  struct brine__hw_dev *dev = lua_touserdata(L, 1);
  if (dev->fd < 0)
    return luaL_error(L, "device is closed");
  lua_pushinteger(L, dev->fd);
  return 1;
}

void brine__hw_register(lua_State *L, const char *mt, const luaL_Reg *methods)
{
  if (luaL_newmetatable(L, mt)) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_pushcfunction(L, dev_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, dev_fileno);
    lua_setfield(L, -2, "fileno");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, dev_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, dev_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, dev_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
