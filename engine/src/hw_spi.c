/* brine.hw.spi: SPI through Linux's spidev (/dev/spidevB.C): full-duplex
 * transfers with the mode, clock and word size a device needs. */
#include <lauxlib.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/spi/spidev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hw_common.h"

#define DEV_MT "brine.hw.spi.device"

struct settings {
  uint8_t mode, bits;
  uint32_t speed;
};

static void read_settings(lua_State *L, int idx, struct settings *s)
{
  s->mode = 0;
  s->bits = 8;
  s->speed = 1000000;
  if (!lua_istable(L, idx))
    return;
  lua_getfield(L, idx, "mode");
  lua_Integer mode = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, mode >= 0 && mode <= 3, idx, "mode must be 0-3");
  lua_getfield(L, idx, "bits_per_word");
  lua_Integer bits = luaL_optinteger(L, -1, 8);
  luaL_argcheck(L, bits >= 1 && bits <= 32, idx, "bits_per_word must be 1-32");
  lua_getfield(L, idx, "speed_hz");
  lua_Integer speed = luaL_optinteger(L, -1, 1000000);
  luaL_argcheck(L, speed > 0 && speed <= 200000000, idx,
                "speed_hz must be 1-200000000");
  lua_pop(L, 3);
  s->mode = (uint8_t)mode;
  s->bits = (uint8_t)bits;
  s->speed = (uint32_t)speed;
}

/* spi.open(path[, {mode=0, speed_hz=1000000, bits_per_word=8}]) -> device */
static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct settings s;
  read_settings(L, 2, &s);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return brine__hw_fail(L, "open", path, errno);
  if (ioctl(fd, SPI_IOC_WR_MODE, &s.mode) < 0
      || ioctl(fd, SPI_IOC_WR_BITS_PER_WORD, &s.bits) < 0
      || ioctl(fd, SPI_IOC_WR_MAX_SPEED_HZ, &s.speed) < 0) {
    int err = errno;
    close(fd);
    return brine__hw_fail(L, "configure", path, err);
  }
  brine__hw_push(L, DEV_MT, fd, path);
  return 1;
}

/* device:transfer(bytes) -> the bytes clocked in while sending them */
static int l_transfer(lua_State *L)
{
  struct brine__hw_dev *dev = brine__hw_check(L, 1, DEV_MT);
  size_t len;
  const char *tx = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, len > 0 && len <= 4096, 2, "must be 1-4096 bytes");
  char *rx = calloc(1, len);
  struct spi_ioc_transfer t;
  memset(&t, 0, sizeof t);
  t.tx_buf = (uintptr_t)tx;
  t.rx_buf = (uintptr_t)rx;
  t.len = (uint32_t)len;
  if (ioctl(dev->fd, SPI_IOC_MESSAGE(1), &t) < 0) {
    int err = errno;
    free(rx);
    return brine__hw_fail(L, "spi transfer", dev->path, err);
  }
  lua_pushlstring(L, rx, len);
  free(rx);
  return 1;
}

/* device:settings() -> {mode=, speed_hz=, bits_per_word=} as the driver
 * reports them */
static int l_settings(lua_State *L)
{
  struct brine__hw_dev *dev = brine__hw_check(L, 1, DEV_MT);
  uint8_t mode = 0, bits = 0;
  uint32_t speed = 0;
  if (ioctl(dev->fd, SPI_IOC_RD_MODE, &mode) < 0
      || ioctl(dev->fd, SPI_IOC_RD_BITS_PER_WORD, &bits) < 0
      || ioctl(dev->fd, SPI_IOC_RD_MAX_SPEED_HZ, &speed) < 0)
    return brine__hw_fail(L, "spi settings", dev->path, errno);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, mode & 3);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, speed);
  lua_setfield(L, -2, "speed_hz");
  lua_pushinteger(L, bits);
  lua_setfield(L, -2, "bits_per_word");
  return 1;
}

static const luaL_Reg dev_methods[] = {
  {"transfer", l_transfer},
  {"settings", l_settings},
  {NULL, NULL}
};

int brine__open_hw_spi(lua_State *L)
{
  brine__hw_register(L, DEV_MT, dev_methods);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
