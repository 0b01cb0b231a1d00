/* Shared helpers of the brine.hw.* bindings: the one error contract
 * (nil, "what DEVICE: reason", code) and device userdata bookkeeping. */
#ifndef BRINE_HW_COMMON_H
#define BRINE_HW_COMMON_H

#include <lua.h>

/* Pushes nil, "<what> <device>: <strerror(err)>", a short code; returns 3.
 * Codes: "ENOENT", "EACCES", "EBUSY", "ENXIO", "timeout", or "EIO". */
int brine__hw_fail(lua_State *L, const char *what, const char *device, int err);

/* A device handle: a file descriptor and the path it was opened from. */
struct brine__hw_dev {
  int fd;
  char *path;
};

/* Pushes a new handle with metatable mt (created by brine__hw_register). */
struct brine__hw_dev *brine__hw_push(lua_State *L, const char *mt, int fd,
                                     const char *path);
/* Checks the handle at idx is of type mt and open; raises otherwise. */
struct brine__hw_dev *brine__hw_check(lua_State *L, int idx, const char *mt);
/* Registers metatable mt with methods, plus close/__gc/__close/__tostring. */
void brine__hw_register(lua_State *L, const char *mt, const luaL_Reg *methods);

#endif
