/* brine.hw.gpio: GPIO lines through the kernel's GPIO character device
 * (/dev/gpiochipN, uAPI v2): chip and line information, requesting lines
 * as inputs or outputs, reading and setting values, and edge events with
 * kernel timestamps. A line request is its own handle; closing it gives
 * the lines back. */
#include <lauxlib.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hw_common.h"

#define CHIP_MT "brine.hw.gpio.chip"
#define REQ_MT "brine.hw.gpio.request"

/* gpio.open(path) -> chip | nil, message, code */
static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return brine__hw_fail(L, "open", path, errno);
  brine__hw_push(L, CHIP_MT, fd, path);
  return 1;
}

/* chip:info() -> {name=, label=, lines=} */
static int l_info(lua_State *L)
{
  struct brine__hw_dev *chip = brine__hw_check(L, 1, CHIP_MT);
  struct gpiochip_info info;
  memset(&info, 0, sizeof info);
  if (ioctl(chip->fd, GPIO_GET_CHIPINFO_IOCTL, &info) < 0)
    return brine__hw_fail(L, "gpio info", chip->path, errno);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, info.name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, info.label);
  lua_setfield(L, -2, "label");
  lua_pushinteger(L, info.lines);
  lua_setfield(L, -2, "lines");
  return 1;
}

/* chip:line_info(offset) -> {offset, name, consumer, used, direction} */
static int l_line_info(lua_State *L)
{
  struct brine__hw_dev *chip = brine__hw_check(L, 1, CHIP_MT);
  struct gpio_v2_line_info info;
  memset(&info, 0, sizeof info);
  info.offset = (__u32)luaL_checkinteger(L, 2);
  if (ioctl(chip->fd, GPIO_V2_GET_LINEINFO_IOCTL, &info) < 0)
    return brine__hw_fail(L, "gpio line info", chip->path, errno);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, info.offset);
  lua_setfield(L, -2, "offset");
  lua_pushstring(L, info.name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, info.consumer);
  lua_setfield(L, -2, "consumer");
  lua_pushboolean(L, (info.flags & GPIO_V2_LINE_FLAG_USED) != 0);
  lua_setfield(L, -2, "used");
  lua_pushstring(L, info.flags & GPIO_V2_LINE_FLAG_OUTPUT ? "output" : "input");
  lua_setfield(L, -2, "direction");
  return 1;
}

static __u64 option_flags(lua_State *L, int idx)
{
  static const char *const dirs[] = {"input", "output", NULL};
  static const char *const edges[] = {"none", "rising", "falling", "both",
                                      NULL};
  static const char *const biases[] = {"as-is", "pull-up", "pull-down",
                                       "disabled", NULL};
  __u64 flags = 0;
  lua_getfield(L, idx, "direction");
  int dir = luaL_checkoption(L, -1, "input", dirs);
  lua_getfield(L, idx, "edge");
  int edge = luaL_checkoption(L, -1, "none", edges);
  lua_getfield(L, idx, "bias");
  int bias = luaL_checkoption(L, -1, "as-is", biases);
  lua_getfield(L, idx, "active_low");
  int active_low = lua_toboolean(L, -1);
  lua_pop(L, 4);
  if (edge && dir == 1)
    luaL_error(L, "gpio: edge detection needs direction 'input'");
  flags |= dir ? GPIO_V2_LINE_FLAG_OUTPUT : GPIO_V2_LINE_FLAG_INPUT;
  if (edge & 1)
    flags |= GPIO_V2_LINE_FLAG_EDGE_RISING;
  if (edge & 2)
    flags |= GPIO_V2_LINE_FLAG_EDGE_FALLING;
  if (bias == 1)
    flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_UP;
  else if (bias == 2)
    flags |= GPIO_V2_LINE_FLAG_BIAS_PULL_DOWN;
  else if (bias == 3)
    flags |= GPIO_V2_LINE_FLAG_BIAS_DISABLED;
  if (active_low)
    flags |= GPIO_V2_LINE_FLAG_ACTIVE_LOW;
  return flags;
}

/* chip:request(offsets, {direction=, edge=, bias=, active_low=, values=,
 * consumer=}) -> request | nil, message, code */
static int l_request(lua_State *L)
{
  struct brine__hw_dev *chip = brine__hw_check(L, 1, CHIP_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (lua_isnoneornil(L, 3))
    lua_newtable(L);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3);
  struct gpio_v2_line_request req;
  memset(&req, 0, sizeof req);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  luaL_argcheck(L, n > 0 && n <= GPIO_V2_LINES_MAX, 2, "1 to 64 line offsets");
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, 2, i + 1);
    req.offsets[i] = (__u32)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  req.num_lines = (__u32)n;
  req.config.flags = option_flags(L, 3);
  lua_getfield(L, 3, "consumer");
  snprintf(req.consumer, sizeof req.consumer, "%s",
           luaL_optstring(L, -1, "brine"));
  lua_getfield(L, 3, "values");
  if (lua_istable(L, -1)) {
    struct gpio_v2_line_config_attribute *a = &req.config.attrs[0];
    a->attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    for (lua_Integer i = 0; i < n; i++) {
      lua_rawgeti(L, -1, i + 1);
      if (lua_toboolean(L, -1) && lua_tointeger(L, -1) != 0)
        a->attr.values |= 1ULL << i;
      a->mask |= 1ULL << i;
      lua_pop(L, 1);
    }
    req.config.num_attrs = 1;
  }
  lua_pop(L, 2);
  if (ioctl(chip->fd, GPIO_V2_GET_LINE_IOCTL, &req) < 0)
    return brine__hw_fail(L, "gpio request", chip->path, errno);
  lua_pushfstring(L, "%s lines", chip->path);
  brine__hw_push(L, REQ_MT, req.fd, lua_tostring(L, -1));
  lua_pushvalue(L, 2);  /* the offsets, kept to map bits back to lines */
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static lua_Integer request_lines(lua_State *L)
{
  lua_getiuservalue(L, 1, 1);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  lua_pop(L, 1);
  return n;
}

/* request:get() -> array of 0/1 in the order the lines were requested */
static int l_get(lua_State *L)
{
  struct brine__hw_dev *req = brine__hw_check(L, 1, REQ_MT);
  lua_Integer n = request_lines(L);
  struct gpio_v2_line_values v = {.bits = 0, .mask = (n == 64) ? ~0ULL
                                                      : (1ULL << n) - 1};
  if (ioctl(req->fd, GPIO_V2_LINE_GET_VALUES_IOCTL, &v) < 0)
    return brine__hw_fail(L, "gpio get", req->path, errno);
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) {
    lua_pushinteger(L, (v.bits >> i) & 1);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* request:set(values) sets output lines (array of 0/1 or booleans) */
static int l_set(lua_State *L)
{
  struct brine__hw_dev *req = brine__hw_check(L, 1, REQ_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = request_lines(L);
  struct gpio_v2_line_values v = {0, 0};
  for (lua_Integer i = 0; i < n; i++) {
    int t = lua_rawgeti(L, 2, i + 1);
    if (t != LUA_TNIL) {
      v.mask |= 1ULL << i;
      int on = t == LUA_TNUMBER ? lua_tointeger(L, -1) != 0 : lua_toboolean(L, -1);
      if (on)
        v.bits |= 1ULL << i;
    }
    lua_pop(L, 1);
  }
  if (ioctl(req->fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) < 0)
    return brine__hw_fail(L, "gpio set", req->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* request:read_event([timeout]) -> {offset, edge, timestamp_ns, seqno} |
 * nil, message, "timeout" */
static int l_read_event(lua_State *L)
{
  struct brine__hw_dev *req = brine__hw_check(L, 1, REQ_MT);
  double timeout = luaL_optnumber(L, 2, -1);
  struct pollfd pfd = {.fd = req->fd, .events = POLLIN};
  int rc;
  do {
    rc = poll(&pfd, 1, timeout < 0 ? -1 : (int)(timeout * 1000));
  } while (rc < 0 && errno == EINTR);
  if (rc == 0)
    return brine__hw_fail(L, "gpio event", req->path, ETIMEDOUT);
  struct gpio_v2_line_event ev;
  ssize_t got = rc < 0 ? -1 : read(req->fd, &ev, sizeof ev);
  if (got != (ssize_t)sizeof ev)
    return brine__hw_fail(L, "gpio event", req->path, got < 0 ? errno : EIO);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, ev.offset);
  lua_setfield(L, -2, "offset");
  lua_pushstring(L, ev.id == GPIO_V2_LINE_EVENT_RISING_EDGE ? "rising"
                                                            : "falling");
  lua_setfield(L, -2, "edge");
  lua_pushinteger(L, (lua_Integer)ev.timestamp_ns);
  lua_setfield(L, -2, "timestamp_ns");
  lua_pushinteger(L, ev.seqno);
  lua_setfield(L, -2, "seqno");
  return 1;
}

static const luaL_Reg chip_methods[] = {
  {"info", l_info},
  {"line_info", l_line_info},
  {"request", l_request},
  {NULL, NULL}
};

static const luaL_Reg req_methods[] = {
  {"get", l_get},
  {"set", l_set},
  {"read_event", l_read_event},
  {NULL, NULL}
};

int brine__open_hw_gpio(lua_State *L)
{
  brine__hw_register(L, CHIP_MT, chip_methods);
  brine__hw_register(L, REQ_MT, req_methods);
  lua_newtable(L);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, -2, "open");
  return 1;
}
