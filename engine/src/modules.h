/* The C modules that `require` finds without touching the file system.
 * One line per module: its Lua name and its luaopen function. */
#ifndef BRINE_MODULES_H
#define BRINE_MODULES_H

#include <lua.h>

int brine__open_core(lua_State *L);
int brine__open_data(lua_State *L);
int brine__open_hw_serial(lua_State *L);
int brine__open_hw_sensors(lua_State *L);
int brine__open_zmq(lua_State *L);
int brine__open_posix(lua_State *L);

#define BRINE_C_MODULES(X) \
  X("brine.core", brine__open_core) \
  X("brine.data", brine__open_data) \
  X("brine.hw.serial", brine__open_hw_serial) \
  X("brine.hw.sensors", brine__open_hw_sensors) \
  X("brine.zmq", brine__open_zmq) \
  X("brine.posix", brine__open_posix)

#endif
