/* The C modules that `require` finds without touching the file system.
 * One line per module: its Lua name and its luaopen function. */
#ifndef BRINE_MODULES_H
#define BRINE_MODULES_H

#include <lua.h>

int brine__open_core(lua_State *L);
int brine__open_data(lua_State *L);
int brine__open_grains(lua_State *L);

#define BRINE_C_MODULES(X) \
  X("brine.core", brine__open_core) \
  X("brine.data", brine__open_data) \
  X("brine.grains", brine__open_grains)

#endif
