/* The C modules that `require` finds without touching the file system.
 * One line per module: its Lua name and its luaopen function. */
#ifndef BRINE_MODULES_H
#define BRINE_MODULES_H

#include <lua.h>

int brine__open_core(lua_State *L);
int brine__open_data(lua_State *L);
int brine__open_hw_serial(lua_State *L);
int brine__open_hw_sensors(lua_State *L);
int brine__open_hw_i2c(lua_State *L);
int brine__open_hw_spi(lua_State *L);
int brine__open_hw_gpio(lua_State *L);
int brine__open_hw_can(lua_State *L);
int brine__open_crypto(lua_State *L);
int brine__open_proc(lua_State *L);
int brine__open_fs(lua_State *L);
int brine__open_sys(lua_State *L);
int brine__open_log(lua_State *L);
int brine__open_json(lua_State *L);
int brine__open_msgpack(lua_State *L);
int brine__open_yaml(lua_State *L);
int brine__open_grains(lua_State *L);
int brine__open_zmq(lua_State *L);
int brine__open_posix(lua_State *L);

#define BRINE_C_MODULES(X) \
  X("brine.core", brine__open_core) \
  X("brine.data", brine__open_data) \
  X("brine.hw.serial", brine__open_hw_serial) \
  X("brine.hw.sensors", brine__open_hw_sensors) \
  X("brine.hw.i2c", brine__open_hw_i2c) \
  X("brine.hw.spi", brine__open_hw_spi) \
  X("brine.hw.gpio", brine__open_hw_gpio) \
  X("brine.hw.can", brine__open_hw_can) \
  X("brine.crypto", brine__open_crypto) \
  X("brine.proc", brine__open_proc) \
  X("brine.fs", brine__open_fs) \
  X("brine.sys", brine__open_sys) \
  X("brine.log", brine__open_log) \
  X("brine.json", brine__open_json) \
  X("brine.msgpack", brine__open_msgpack) \
  X("brine.yaml", brine__open_yaml) \
  X("brine.grains", brine__open_grains) \
  X("brine.zmq", brine__open_zmq) \
  X("brine.posix", brine__open_posix)

#endif
