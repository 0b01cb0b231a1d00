/* brine.hw.i2c: I2C and SMBus through Linux's i2c-dev (/dev/i2c-N), for
 * power-management chips, accelerometers and other sensors. Every transfer
 * names the 7-bit device address; a device that does not answer comes back
 * as nil, "... No such device or address", "ENXIO". Transfers are
 * synchronous and bounded by the adapter's timeout (set_timeout). */
#include <lauxlib.h>
#include <stdio.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hw_common.h"

#define BUS_MT "brine.hw.i2c.bus"

static struct brine__hw_dev *check_bus(lua_State *L)
{
  return brine__hw_check(L, 1, BUS_MT);
}

static __u16 check_addr(lua_State *L, int idx)
{
  lua_Integer addr = luaL_checkinteger(L, idx);
  luaL_argcheck(L, addr >= 0x03 && addr <= 0x77, idx,
                "I2C address must be 0x03-0x77");
  return (__u16)addr;
}

static int check_byte(lua_State *L, int idx)
{
  lua_Integer v = luaL_checkinteger(L, idx);
  luaL_argcheck(L, v >= 0 && v <= 255, idx, "must be a byte (0-255)");
  return (int)v;
}

/* i2c.open(path) -> bus | nil, message, code */
static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return brine__hw_fail(L, "open", path, errno);
  brine__hw_push(L, BUS_MT, fd, path);
  return 1;
}

/* One combined transaction: write wlen bytes, then read rlen bytes. */
static int transfer(struct brine__hw_dev *bus, __u16 addr, const char *w,
                    size_t wlen, char *r, size_t rlen)
{
  struct i2c_msg msgs[2];
  int n = 0;
  if (wlen) {
    msgs[n].addr = addr;
    msgs[n].flags = 0;
    msgs[n].len = (__u16)wlen;
    msgs[n].buf = (__u8 *)w;
    n++;
  }
  if (rlen) {
    msgs[n].addr = addr;
    msgs[n].flags = I2C_M_RD;
    msgs[n].len = (__u16)rlen;
    msgs[n].buf = (__u8 *)r;
    n++;
  }
  struct i2c_rdwr_ioctl_data data = {.msgs = msgs, .nmsgs = (__u32)n};
  return ioctl(bus->fd, I2C_RDWR, &data) < 0 ? -errno : 0;
}

static int fail_addr(lua_State *L, struct brine__hw_dev *bus, __u16 addr,
                     int err)
{
  char what[64];
  snprintf(what, sizeof what, "address 0x%02x", (unsigned)addr);
  lua_pushfstring(L, "%s %s", bus->path, what);
  return brine__hw_fail(L, "i2c", lua_tostring(L, -1), err);
}

/* bus:transfer(addr, write_bytes, read_len) -> read bytes */
static int l_transfer(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  size_t wlen;
  const char *w = luaL_optlstring(L, 3, "", &wlen);
  lua_Integer rlen = luaL_optinteger(L, 4, 0);
  luaL_argcheck(L, rlen >= 0 && rlen <= 8192, 4, "must be 0-8192");
  luaL_argcheck(L, wlen <= 8192, 3, "at most 8192 bytes");
  char *r = rlen ? malloc((size_t)rlen) : NULL;
  int rc = transfer(bus, addr, w, wlen, r, (size_t)rlen);
  if (rc < 0) {
    free(r);
    return fail_addr(L, bus, addr, -rc);
  }
  lua_pushlstring(L, r ? r : "", (size_t)rlen);
  free(r);
  return 1;
}

/* bus:read_byte_data(addr, reg) -> 0-255 */
static int l_read_byte_data(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char reg = (char)check_byte(L, 3), v;
  int rc = transfer(bus, addr, &reg, 1, &v, 1);
  if (rc < 0)
    return fail_addr(L, bus, addr, -rc);
  lua_pushinteger(L, (unsigned char)v);
  return 1;
}

/* bus:write_byte_data(addr, reg, value) -> true */
static int l_write_byte_data(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char buf[2] = {(char)check_byte(L, 3), (char)check_byte(L, 4)};
  int rc = transfer(bus, addr, buf, 2, NULL, 0);
  if (rc < 0)
    return fail_addr(L, bus, addr, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* bus:read_word_data(addr, reg[, "big"]) -> 16-bit value; SMBus words
 * are little-endian, many sensors send big-endian. */
static int l_read_word_data(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char reg = (char)check_byte(L, 3);
  unsigned char v[2];
  int big = strcmp(luaL_optstring(L, 4, "little"), "big") == 0;
  int rc = transfer(bus, addr, &reg, 1, (char *)v, 2);
  if (rc < 0)
    return fail_addr(L, bus, addr, -rc);
  lua_pushinteger(L, big ? (v[0] << 8 | v[1]) : (v[1] << 8 | v[0]));
  return 1;
}

/* bus:write_word_data(addr, reg, value[, "big"]) -> true */
static int l_write_word_data(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char reg = (char)check_byte(L, 3);
  lua_Integer v = luaL_checkinteger(L, 4);
  luaL_argcheck(L, v >= 0 && v <= 0xffff, 4, "must be 0-65535");
  int big = strcmp(luaL_optstring(L, 5, "little"), "big") == 0;
  char buf[3] = {reg, (char)(big ? v >> 8 : v & 0xff),
                 (char)(big ? v & 0xff : v >> 8)};
  int rc = transfer(bus, addr, buf, 3, NULL, 0);
  if (rc < 0)
    return fail_addr(L, bus, addr, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* bus:read_block(addr, reg, n) -> n bytes read from consecutive registers */
static int l_read_block(lua_State *L)
{
  lua_Integer n = luaL_checkinteger(L, 4);
  luaL_argcheck(L, n > 0 && n <= 8192, 4, "must be 1-8192");
  check_byte(L, 3);
  char reg = (char)lua_tointeger(L, 3);
  lua_pushlstring(L, &reg, 1);
  lua_replace(L, 3);
  return l_transfer(L);
}

/* bus:write_block(addr, reg, bytes) -> true */
static int l_write_block(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char reg = (char)check_byte(L, 3);
  size_t len;
  const char *data = luaL_checklstring(L, 4, &len);
  luaL_argcheck(L, len <= 8191, 4, "at most 8191 bytes");
  char *buf = malloc(len + 1);
  buf[0] = reg;
  memcpy(buf + 1, data, len);
  int rc = transfer(bus, addr, buf, len + 1, NULL, 0);
  free(buf);
  if (rc < 0)
    return fail_addr(L, bus, addr, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* bus:probe(addr) -> true when a device acknowledges a one-byte read */
static int l_probe(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  __u16 addr = check_addr(L, 2);
  char v;
  lua_pushboolean(L, transfer(bus, addr, NULL, 0, &v, 1) == 0);
  return 1;
}

/* bus:set_timeout(seconds) -> true: how long the adapter waits for a
 * device that stretches the clock before the transfer fails (Linux counts
 * in 10 ms steps; many adapters default to one second). Bounds every
 * transfer on this bus. */
static int l_set_timeout(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  lua_Number seconds = luaL_checknumber(L, 2);
  luaL_argcheck(L, seconds > 0 && seconds <= 60, 2, "must be 0.01-60 seconds");
  unsigned long ticks = (unsigned long)(seconds * 100 + 0.5);
  if (ioctl(bus->fd, I2C_TIMEOUT, ticks ? ticks : 1UL) < 0)
    return brine__hw_fail(L, "i2c timeout", bus->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* bus:set_retries(n) -> true: how often the adapter retries a transfer
 * that was not acknowledged (arbitration lost). */
static int l_set_retries(lua_State *L)
{
  struct brine__hw_dev *bus = check_bus(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 0 && n <= 100, 2, "must be 0-100");
  if (ioctl(bus->fd, I2C_RETRIES, (unsigned long)n) < 0)
    return brine__hw_fail(L, "i2c retries", bus->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg bus_methods[] = {
  {"set_timeout", l_set_timeout},
  {"set_retries", l_set_retries},
  {"transfer", l_transfer},
  {"read_byte_data", l_read_byte_data},
  {"write_byte_data", l_write_byte_data},
  {"read_word_data", l_read_word_data},
  {"write_word_data", l_write_word_data},
  {"read_block", l_read_block},
  {"write_block", l_write_block},
  {"probe", l_probe},
  {NULL, NULL}
};

int brine__open_hw_i2c(lua_State *L)
{
  brine__hw_register(L, BUS_MT, bus_methods);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
