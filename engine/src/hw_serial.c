/* brine.hw.serial: serial ports for device modules and services (OBD-II
 * adapters, GNSS modems, AT-command devices). Opens a tty by path in raw
 * mode with the given line settings, reads bytes or lines with a timeout
 * (poll; never blocks longer than asked) and writes. Also opens pseudo-
 * terminal pairs, so tests and device simulators can stand in for real
 * hardware. A port is userdata with __gc/__close; closing twice is safe. */
#include <lauxlib.h>
#include <lua.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hw_common.h"

#define PORT_MT "brine.hw.serial.port"
#define READ_CHUNK 4096

struct port {
  int fd;
  char *path;
  char *buf;  /* bytes read past the last line handed out */
  size_t len, cap;
};

static int fail(lua_State *L, const char *what, const char *path, int err)
{
  return brine__hw_fail(L, what, path, err);
}

static struct port *check_port(lua_State *L, int idx)
{
  struct port *p = luaL_checkudata(L, idx, PORT_MT);
  if (p->fd < 0)
    luaL_error(L, "serial port %s is closed", p->path ? p->path : "?");
  return p;
}

static speed_t baud_constant(lua_Integer baud)
{
  static const struct { lua_Integer baud; speed_t c; } table[] = {
    {1200, B1200}, {2400, B2400}, {4800, B4800}, {9600, B9600},
    {19200, B19200}, {38400, B38400}, {57600, B57600}, {115200, B115200},
    {230400, B230400}, {460800, B460800}, {500000, B500000},
    {921600, B921600}, {1000000, B1000000}, {2000000, B2000000},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (table[i].baud == baud)
      return table[i].c;
  return 0;
}

/* Reads the settings table at idx into t; raises on a bad field. */
static void apply_settings(lua_State *L, int idx, struct termios *t)
{
  cfmakeraw(t);
  t->c_cflag |= CLOCAL | CREAD;
  t->c_cc[VMIN] = 0;
  t->c_cc[VTIME] = 0;
  lua_Integer baud = 115200, bits = 8, stop = 1;
  const char *parity = "none", *flow = "none";
  if (lua_istable(L, idx)) {
    lua_getfield(L, idx, "baud");
    baud = luaL_optinteger(L, -1, baud);
    lua_getfield(L, idx, "data_bits");
    bits = luaL_optinteger(L, -1, bits);
    lua_getfield(L, idx, "stop_bits");
    stop = luaL_optinteger(L, -1, stop);
    lua_getfield(L, idx, "parity");
    parity = luaL_optstring(L, -1, parity);
    lua_getfield(L, idx, "flow");
    flow = luaL_optstring(L, -1, flow);
    lua_pop(L, 5);
  }
  speed_t speed = baud_constant(baud);
  if (!speed)
    luaL_error(L, "serial: unsupported baud rate %d", (int)baud);
  cfsetispeed(t, speed);
  cfsetospeed(t, speed);
  t->c_cflag &= ~(tcflag_t)CSIZE;
  switch (bits) {
  case 5: t->c_cflag |= CS5; break;
  case 6: t->c_cflag |= CS6; break;
  case 7: t->c_cflag |= CS7; break;
  case 8: t->c_cflag |= CS8; break;
  default: luaL_error(L, "serial: data_bits must be 5 to 8, not %d", (int)bits);
  }
  if (stop == 2)
    t->c_cflag |= CSTOPB;
  else if (stop != 1)
    luaL_error(L, "serial: stop_bits must be 1 or 2, not %d", (int)stop);
  if (strcmp(parity, "even") == 0) {
    t->c_cflag |= PARENB;
  } else if (strcmp(parity, "odd") == 0) {
    t->c_cflag |= PARENB | PARODD;
  } else if (strcmp(parity, "none") != 0) {
    luaL_error(L, "serial: parity must be none, even or odd, not '%s'", parity);
  }
  if (strcmp(flow, "rtscts") == 0) {
    t->c_cflag |= CRTSCTS;
  } else if (strcmp(flow, "xonxoff") == 0) {
    t->c_iflag |= IXON | IXOFF;
  } else if (strcmp(flow, "none") != 0) {
    luaL_error(L, "serial: flow must be none, rtscts or xonxoff, not '%s'",
               flow);
  }
}

static struct port *push_port(lua_State *L, int fd, const char *path)
{
  struct port *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  p->fd = fd;
  p->path = strdup(path);
  luaL_setmetatable(L, PORT_MT);
  return p;
}

/* serial.open(path[, settings]) -> port | nil, message, code */
static int l_open(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct termios t;
  memset(&t, 0, sizeof t);
  apply_settings(L, 2, &t);          /* raises before anything is opened */
  int exclusive = 1;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "exclusive");
    if (!lua_isnil(L, -1))
      exclusive = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return fail(L, "open", path, errno);
  /* TIOCEXCL does not stop root; flock does, among brine's own users. */
  if (exclusive && (flock(fd, LOCK_EX | LOCK_NB) < 0
                    || ioctl(fd, TIOCEXCL) < 0)) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) {
      lua_pushnil(L);
      lua_pushfstring(L, "open %s: the device is in use by another process",
                      path);
      lua_pushliteral(L, "EBUSY");
      return 3;
    }
    return fail(L, "lock", path, err);
  }
  if (tcsetattr(fd, TCSANOW, &t) < 0) {
    int err = errno;
    close(fd);
    return fail(L, "configure", path, err);
  }
  push_port(L, fd, path);
  return 1;
}

/* serial.openpty() -> controller port, device path: a pseudo-terminal
 * pair; the path opens like a serial device. */
static int l_openpty(lua_State *L)
{
  int controller, device;
  char name[256];
  if (openpty(&controller, &device, name, NULL, NULL) < 0)
    return fail(L, "openpty", "", errno);
  struct termios t;
  if (tcgetattr(device, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(device, TCSANOW, &t);
  }
  close(device);  /* reopened by path; the pair lives while controller does */
  fcntl(controller, F_SETFL, fcntl(controller, F_GETFL) | O_NONBLOCK);
  fcntl(controller, F_SETFD, FD_CLOEXEC);
  push_port(L, controller, name);
  lua_pushstring(L, name);
  return 2;
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Waits until fd is readable or the deadline passes. 1 readable, 0 timed
 * out, -errno on error. A negative deadline waits forever. */
static int wait_readable(int fd, double deadline)
{
  for (;;) {
    int ms = -1;
    if (deadline >= 0) {
      double left = deadline - now_ms();
      ms = left <= 0 ? 0 : (int)(left + 0.999);
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, ms);
    if (rc > 0)
      return 1;
    if (rc == 0)
      return 0;
    if (errno != EINTR)
      return -errno;
  }
}

/* Appends what is readable now to the port's buffer: bytes read, 0 at
 * end of file (hang-up), -errno on error. */
static ssize_t fill(struct port *p)
{
  if (p->cap - p->len < READ_CHUNK) {
    size_t cap = p->cap ? p->cap * 2 : READ_CHUNK * 2;
    char *buf = realloc(p->buf, cap);
    if (!buf)
      return -ENOMEM;
    p->buf = buf;
    p->cap = cap;
  }
  ssize_t n = read(p->fd, p->buf + p->len, p->cap - p->len);
  if (n < 0)
    return errno == EAGAIN ? -EAGAIN : -errno;
  p->len += (size_t)n;
  return n;
}

static void push_taken(lua_State *L, struct port *p, size_t n, size_t skip)
{
  lua_pushlstring(L, p->buf, n);
  memmove(p->buf, p->buf + n + skip, p->len - n - skip);
  p->len -= n + skip;
}

static double deadline_from(lua_State *L, int idx)
{
  double timeout = luaL_optnumber(L, idx, -1);
  return timeout < 0 ? -1 : now_ms() + timeout * 1e3;
}

/* port:read(n[, timeout]) -> up to n bytes as soon as any arrive |
 * nil, "timeout", "timeout" | nil, message, code */
static int l_read(lua_State *L)
{
  struct port *p = check_port(L, 1);
  lua_Integer want = luaL_checkinteger(L, 2);
  luaL_argcheck(L, want > 0, 2, "must be positive");
  double deadline = deadline_from(L, 3);
  while (p->len == 0) {
    int rc = wait_readable(p->fd, deadline);
    if (rc == 0)
      return fail(L, "read", p->path, ETIMEDOUT);
    if (rc < 0)
      return fail(L, "read", p->path, -rc);
    ssize_t n = fill(p);
    if (n == 0 || n == -EIO)
      return fail(L, "read", p->path, EIO);  /* the other end hung up */
    if (n < 0 && n != -EAGAIN)
      return fail(L, "read", p->path, (int)-n);
  }
  push_taken(L, p, p->len < (size_t)want ? p->len : (size_t)want, 0);
  return 1;
}

/* port:read_line([timeout[, eol]]) -> line without eol (and without a
 * trailing "\r" when eol is "\n") | nil, "timeout", "timeout" */
static int l_read_line(lua_State *L)
{
  struct port *p = check_port(L, 1);
  double deadline = deadline_from(L, 2);
  size_t eol_len;
  const char *eol = luaL_optlstring(L, 3, "\n", &eol_len);
  luaL_argcheck(L, eol_len > 0, 3, "must not be empty");
  size_t from = 0;
  for (;;) {
    for (size_t i = from; i + eol_len <= p->len; i++) {
      if (memcmp(p->buf + i, eol, eol_len) == 0) {
        size_t n = i;
        if (eol_len == 1 && eol[0] == '\n' && n > 0 && p->buf[n - 1] == '\r')
          n--;
        push_taken(L, p, n, i - n + eol_len);
        return 1;
      }
    }
    from = p->len >= eol_len ? p->len - eol_len + 1 : 0;
    int rc = wait_readable(p->fd, deadline);
    if (rc == 0)
      return fail(L, "read", p->path, ETIMEDOUT);
    if (rc < 0)
      return fail(L, "read", p->path, -rc);
    ssize_t n = fill(p);
    if (n == 0 || n == -EIO)
      return fail(L, "read", p->path, EIO);
    if (n < 0 && n != -EAGAIN)
      return fail(L, "read", p->path, (int)-n);
  }
}

/* port:write(data[, timeout]) -> bytes written | nil, message, code */
static int l_write(lua_State *L)
{
  struct port *p = check_port(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  double deadline = deadline_from(L, 3);
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(p->fd, data + done, len - done);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      return fail(L, "write", p->path, errno);
    int ms = deadline < 0 ? -1 : (int)(deadline - now_ms());
    if (deadline >= 0 && ms <= 0)
      return fail(L, "write", p->path, ETIMEDOUT);
    struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
    poll(&pfd, 1, ms);
  }
  lua_pushinteger(L, (lua_Integer)done);
  return 1;
}

/* port:flush([which]) discards unread input ("input"), unsent output
 * ("output") or both (default). */
static int l_flush(lua_State *L)
{
  struct port *p = check_port(L, 1);
  static const char *const names[] = {"both", "input", "output", NULL};
  static const int queues[] = {TCIOFLUSH, TCIFLUSH, TCOFLUSH};
  int which = luaL_checkoption(L, 2, "both", names);
  if (which != 2)
    p->len = 0;
  if (tcflush(p->fd, queues[which]) < 0 && errno != ENOTTY)
    return fail(L, "flush", p->path, errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* port:drain([timeout]) waits until everything written has been sent, or
 * gives up after timeout seconds (nil, "drain PATH: ...", "timeout"). */
static int l_drain(lua_State *L)
{
  struct port *p = check_port(L, 1);
  double deadline = deadline_from(L, 2);
  if (deadline < 0) {
    if (tcdrain(p->fd) < 0)
      return fail(L, "drain", p->path, errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  for (;;) {
    int queued = 0;
    if (ioctl(p->fd, TIOCOUTQ, &queued) < 0)
      return fail(L, "drain", p->path, errno);
    if (queued == 0)
      break;
    double left = deadline - now_ms();
    if (left <= 0)
      return fail(L, "drain", p->path, ETIMEDOUT);
    struct timespec ts = {0, (long)((left < 5 ? left : 5) * 1e6)};
    nanosleep(&ts, NULL);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_fileno(lua_State *L)
{
  lua_pushinteger(L, check_port(L, 1)->fd);
  return 1;
}

static int l_path(lua_State *L)
{
  struct port *p = check_port(L, 1);
  lua_pushstring(L, p->path);
  return 1;
}

/* Closing a tty with output still queued waits for it to leave (up to
 * the driver's closing_wait, 30 s by default, for ever with flow control
 * stuck): drop it instead, so close never blocks. drain() first to keep it. */
static int l_close(lua_State *L)
{
  struct port *p = luaL_checkudata(L, 1, PORT_MT);
  int queued = 0;
  if (p->fd >= 0 && ioctl(p->fd, TIOCOUTQ, &queued) == 0 && queued > 0)
    tcflush(p->fd, TCOFLUSH);
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
  free(p->buf);
  free(p->path);
  p->buf = p->path = NULL;
  p->len = p->cap = 0;
  return 0;
}

static int l_tostring(lua_State *L)
{
  struct port *p = luaL_checkudata(L, 1, PORT_MT);
  if (p->fd < 0)
    lua_pushliteral(L, "serial port (closed)");
  else
    lua_pushfstring(L, "serial port %s", p->path);
  return 1;
}

static const luaL_Reg port_methods[] = {
  {"read", l_read},
  {"read_line", l_read_line},
  {"write", l_write},
  {"flush", l_flush},
  {"drain", l_drain},
  {"fileno", l_fileno},
  {"path", l_path},
  {"close", l_close},
  {NULL, NULL}
};

static const luaL_Reg serial_funcs[] = {
  {"open", l_open},
  {"openpty", l_openpty},
  {NULL, NULL}
};

int brine__open_hw_serial(lua_State *L)
{
  if (luaL_newmetatable(L, PORT_MT)) {
    luaL_newlib(L, port_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, serial_funcs);
  return 1;
}
