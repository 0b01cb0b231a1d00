/* brine.hw.can: CAN frames through SocketCAN raw sockets (can0, vcan0,
 * slcan0 ...): send and receive classic frames with standard or extended
 * ids, remote frames, and kernel-side id filters. Sockets are non-blocking:
 * recv and send wait with poll() for at most the timeout given, and
 * fileno() lets an event loop (luv) watch the socket instead. */
#include <lauxlib.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/can.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
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
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
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

/* Waits up to timeout seconds (forever when negative) for fd to be ready
 * for events: 1 ready, 0 timed out, -errno. */
static int wait_fd(int fd, short events, double timeout)
{
  struct pollfd pfd = {.fd = fd, .events = events};
  int rc;
  do {
    rc = poll(&pfd, 1, timeout < 0 ? -1 : (int)(timeout * 1000));
  } while (rc < 0 && errno == EINTR);
  return rc < 0 ? -errno : rc > 0;
}

/* Writes one frame; the transmit queue being full (EAGAIN, ENOBUFS) is
 * waited out, a millisecond at a time, until the deadline. */
static int send_frame(int fd, const struct can_frame *f, double timeout)
{
  struct timespec start, now, ms = {0, 1000000L};
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    ssize_t n = write(fd, f, sizeof *f);
    if (n == (ssize_t)sizeof *f)
      return 0;
    if (n >= 0 || (errno != EAGAIN && errno != ENOBUFS && errno != EINTR))
      return n < 0 ? -errno : -EIO;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double spent = (double)(now.tv_sec - start.tv_sec) +
                   (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    if (timeout >= 0 && spent >= timeout)
      return -ETIMEDOUT;
    if (errno == EAGAIN)
      wait_fd(fd, POLLOUT, timeout < 0 ? -1 : timeout - spent);
    else
      nanosleep(&ms, NULL);
  }
}

/* socket:send({id=, data=, extended=, rtr=}[, timeout]) -> true */
static int l_send(lua_State *L)
{
  struct brine__hw_dev *s = brine__hw_check(L, 1, SOCK_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  double timeout = luaL_optnumber(L, 3, -1);
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
  int rc = send_frame(s->fd, &f, timeout);
  if (rc < 0)
    return brine__hw_fail(L, "can send", s->path, -rc);
  lua_pushboolean(L, 1);
  return 1;
}

/* socket:recv([timeout]) -> {id, data, extended, rtr} | nil, message,
 * "timeout" */
static int l_recv(lua_State *L)
{
  struct brine__hw_dev *s = brine__hw_check(L, 1, SOCK_MT);
  double timeout = luaL_optnumber(L, 2, -1);
  struct can_frame f;
  ssize_t n;
  while ((n = read(s->fd, &f, sizeof f)) < 0 && errno == EAGAIN) {
    int rc = wait_fd(s->fd, POLLIN, timeout);
    if (rc <= 0)
      return brine__hw_fail(L, "can recv", s->path, rc ? -rc : ETIMEDOUT);
  }
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
