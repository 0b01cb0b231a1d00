/* brine.hw.can: CAN frames through SocketCAN raw sockets (can0, vcan0,
 * slcan0 ...): send and receive classic frames with standard or extended
 * ids, remote frames, and kernel-side id filters. */
#include <lauxlib.h>

#include <errno.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hw_common.h"

#define SOCK_MT "brine.hw.can.socket"

/* can.open(ifname) -> socket | nil, message, code */
static int l_open(lua_State *L)
{
  size_t len;
  const char *ifname = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && len < IFNAMSIZ, 1, "not an interface name");
  int fd = socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW);
  if (fd < 0)
    return brine__hw_fail(L, "open", ifname, errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, len);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
    int err = errno;
    close(fd);
    return brine__hw_fail(L, "open", ifname, err);
  }
  struct sockaddr_can addr;
  memset(&addr, 0, sizeof addr);
  addr.can_family = AF_CAN;
  addr.can_ifindex = ifr.ifr_ifindex;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    int err = errno;
    close(fd);
    return brine__hw_fail(L, "bind", ifname, err);
  }
  brine__hw_push(L, SOCK_MT, fd, ifname);
  return 1;
}

/* socket:send{id=, data=, extended=, rtr=} -> true */
static int l_send(lua_State *L)
{
  struct brine__hw_dev *s = brine__hw_check(L, 1, SOCK_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  struct can_frame f;
  memset(&f, 0, sizeof f);
  lua_getfield(L, 2, "id");
  lua_Integer id = luaL_checkinteger(L, -1);
  lua_getfield(L, 2, "extended");
  int ext = lua_toboolean(L, -1) || id > CAN_SFF_MASK;
  lua_getfield(L, 2, "rtr");
  int rtr = lua_toboolean(L, -1);
  lua_getfield(L, 2, "data");
  size_t len;
  const char *data = luaL_optlstring(L, -1, "", &len);
  luaL_argcheck(L, id >= 0 && id <= (ext ? CAN_EFF_MASK : CAN_SFF_MASK), 2,
                "id out of range");
  luaL_argcheck(L, len <= CAN_MAX_DLEN, 2, "data is at most 8 bytes");
  f.can_id = (canid_t)id | (ext ? CAN_EFF_FLAG : 0) | (rtr ? CAN_RTR_FLAG : 0);
  f.can_dlc = (__u8)len;
  memcpy(f.data, data, len);
  ssize_t n = write(s->fd, &f, sizeof f);
  if (n != (ssize_t)sizeof f)
    return brine__hw_fail(L, "can send", s->path, n < 0 ? errno : EIO);
  lua_pushboolean(L, 1);
  return 1;
}

/* socket:recv([timeout]) -> {id, data, extended, rtr} | nil, message,
 * "timeout" */
static int l_recv(lua_State *L)
{
  struct brine__hw_dev *s = brine__hw_check(L, 1, SOCK_MT);
  double timeout = luaL_optnumber(L, 2, -1);
  struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
  int rc;
  do {
    rc = poll(&pfd, 1, timeout < 0 ? -1 : (int)(timeout * 1000));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0)
    return brine__hw_fail(L, "can recv", s->path, ETIMEDOUT);
  struct can_frame f;
  ssize_t n = rc < 0 ? -1 : read(s->fd, &f, sizeof f);
  if (n != (ssize_t)sizeof f)
    return brine__hw_fail(L, "can recv", s->path, n < 0 ? errno : EIO);
  int ext = (f.can_id & CAN_EFF_FLAG) != 0;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, f.can_id & (ext ? CAN_EFF_MASK : CAN_SFF_MASK));
  lua_setfield(L, -2, "id");
  lua_pushlstring(L, (const char *)f.data,
                  f.can_dlc > CAN_MAX_DLEN ? CAN_MAX_DLEN : f.can_dlc);
  lua_setfield(L, -2, "data");
  lua_pushboolean(L, ext);
  lua_setfield(L, -2, "extended");
  lua_pushboolean(L, (f.can_id & CAN_RTR_FLAG) != 0);
  lua_setfield(L, -2, "rtr");
  return 1;
}

/* socket:set_filters{ {id=, mask=}, ... } keeps only matching frames;
 * an empty list receives nothing, nil receives everything. */
static int l_set_filters(lua_State *L)
{
  struct brine__hw_dev *s = brine__hw_check(L, 1, SOCK_MT);
  if (lua_isnoneornil(L, 2)) {
    struct can_filter all = {0, 0};
    if (setsockopt(s->fd, SOL_CAN_RAW, CAN_RAW_FILTER, &all, sizeof all) < 0)
      return brine__hw_fail(L, "can filter", s->path, errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  luaL_argcheck(L, n <= 512, 2, "at most 512 filters");
  struct can_filter *fl = calloc((size_t)n + 1, sizeof *fl);
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    lua_getfield(L, -1, "id");
    lua_getfield(L, -2, "mask");
    fl[i].can_id = (canid_t)lua_tointeger(L, -2);
    fl[i].can_mask = (canid_t)luaL_optinteger(L, -1, CAN_SFF_MASK);
    lua_pop(L, 3);
  }
  int rc = setsockopt(s->fd, SOL_CAN_RAW, CAN_RAW_FILTER, fl,
                      (socklen_t)(n * (lua_Integer)sizeof *fl));
  free(fl);
  if (rc < 0)
    return brine__hw_fail(L, "can filter", s->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

static const luaL_Reg sock_methods[] = {
  {"send", l_send},
  {"recv", l_recv},
  {"set_filters", l_set_filters},
  {NULL, NULL}
};

int brine__open_hw_can(lua_State *L)
{
  brine__hw_register(L, SOCK_MT, sock_methods);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
