/* brine.log: the daemons' and the CLI's log, shaped as Salt's so that
 * people and their tools read it as they read Salt's. One logger per Lua
 * state (a userdata shared by the module's functions as an upvalue) with
 * three sinks: the console (stderr, Salt's log_fmt_console), a file
 * opened for appending (Salt's log_fmt_logfile) and syslog.
 *
 * Formats use Python's %(field)s syntax, as Salt's log_fmt_* options do;
 * the fields are asctime, msecs, name, levelname, levelno, process,
 * created and message. The level is checked before the message is
 * formatted. Each line goes out in one write(2), so forked workers that
 * share the file do not interleave within lines. */
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOGGER_MT "brine.log.logger"
#define FMT_MAX 256

enum { TRACE = 1, DEBUG, INFO, WARNING, ERROR, QUIET };

/* Salt's level names and the brine level each one means. */
static const struct {
  const char *name;
  int level;
} LEVEL_NAMES[] = {
    {"all", TRACE},       {"garbage", TRACE}, {"trace", TRACE},
    {"debug", DEBUG},     {"profile", INFO},  {"info", INFO},
    {"warning", WARNING}, {"error", ERROR},   {"critical", ERROR},
    {"quiet", QUIET},
};

static const char *const LEVEL_LABEL[] = {"",        "TRACE", "DEBUG", "INFO",
                                          "WARNING", "ERROR", "QUIET"};
static const int LEVEL_NUMBER[] = {0, 5, 10, 20, 30, 40, 1000};
static const int LEVEL_SYSLOG[] = {LOG_DEBUG,   LOG_DEBUG, LOG_DEBUG, LOG_INFO,
                                   LOG_WARNING, LOG_ERR,   LOG_ERR};

struct logger {
  int console_level, file_level, syslog_level;
  int fd; /* the log file, or -1 */
  int syslog_open;
  char path[PATH_MAX];
  char name[64];  /* %(name)s, e.g. brine.minion */
  char ident[64]; /* syslog ident; openlog keeps the pointer */
  char file_fmt[FMT_MAX], console_fmt[FMT_MAX];
  char file_datefmt[64], console_datefmt[64];
};

/* One message about to be written. */
struct record {
  int level;
  const char *msg;
  size_t len;
  struct timespec when;
};

static const char *errname(int err)
{
  const char *name = strerrorname_np(err);
  return name ? name : "EIO";
}

static struct logger *get_logger(lua_State *L)
{
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* The brine level for a Salt level name, or 0. */
static int level_by_name(const char *name)
{
  for (size_t i = 0; i < sizeof LEVEL_NAMES / sizeof LEVEL_NAMES[0]; i++)
    if (strcasecmp(LEVEL_NAMES[i].name, name) == 0)
      return LEVEL_NAMES[i].level;
  return 0;
}

/* Formatting ------------------------------------------------------------ */

/* Adds text padded to width as Python's %-10s / %10s / %03d would. */
static void add_padded(luaL_Buffer *b, const char *text, size_t len, int left,
                       char fill, int width)
{
  int pad = width > (int)len ? width - (int)len : 0;
  if (left) {
    luaL_addlstring(b, text, len);
    for (int i = 0; i < pad; i++)
      luaL_addchar(b, ' ');
    return;
  }
  if (fill == '0' && len && text[0] == '-') {
    luaL_addchar(b, '-');
    text++;
    len--;
  }
  for (int i = 0; i < pad; i++)
    luaL_addchar(b, fill);
  luaL_addlstring(b, text, len);
}

/* Writes the value of field key into out; returns its length, or -1 for
 * an unknown field. */
static int field(const struct logger *lg, const struct record *r,
                 const char *key, size_t keylen, const char *datefmt, char *out,
                 size_t size, const char **text)
{
  *text = out;
#define IS(k) (keylen == sizeof(k) - 1 && memcmp(key, k, keylen) == 0)
  if (IS("message")) {
    *text = r->msg;
    return (int)r->len;
  }
  if (IS("asctime")) {
    struct tm tm;
    localtime_r(&r->when.tv_sec, &tm);
    return (int)strftime(out, size, datefmt, &tm);
  }
  if (IS("msecs"))
    return snprintf(out, size, "%ld", r->when.tv_nsec / 1000000);
  if (IS("name"))
    return snprintf(out, size, "%s", lg->name);
  if (IS("levelname"))
    return snprintf(out, size, "%s", LEVEL_LABEL[r->level]);
  if (IS("levelno"))
    return snprintf(out, size, "%d", LEVEL_NUMBER[r->level]);
  if (IS("process"))
    return snprintf(out, size, "%ld", (long)getpid());
  if (IS("created"))
    return snprintf(out, size, "%.6f",
                    (double)r->when.tv_sec + r->when.tv_nsec / 1e9);
#undef IS
  return -1;
}

/* Pushes the line for record r in format fmt (Python %-style fields). */
static void render(lua_State *L, const struct logger *lg, const char *fmt,
                   const char *datefmt, const struct record *r)
{
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (const char *p = fmt; *p; p++) {
    const char *close;
    if (p[0] == '%' && p[1] == '%') {
      luaL_addchar(&b, '%');
      p++;
      continue;
    }
    if (p[0] != '%' || p[1] != '(' || !(close = strchr(p + 2, ')'))) {
      luaL_addchar(&b, *p);
      continue;
    }
    const char *key = p + 2, *q = close + 1;
    int left = 0, width = 0;
    char fill = ' ';
    for (; *q == '-' || *q == '0' || *q == ' ' || *q == '+'; q++)
      left |= *q == '-', fill = *q == '0' ? '0' : fill;
    for (; *q >= '0' && *q <= '9'; q++)
      width = width * 10 + (*q - '0');
    while (*q == '.' || (*q >= '0' && *q <= '9'))
      q++; /* precision: ignored */
    char value[128];
    const char *text;
    int n = field(lg, r, key, (size_t)(close - key), datefmt, value,
                  sizeof value, &text);
    if (n < 0 || !*q) { /* unknown: keep it as is */
      luaL_addchar(&b, *p);
      continue;
    }
    add_padded(&b, text, (size_t)n, left, fill, width);
    p = q; /* the conversion letter */
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
}

static void write_line(int fd, const char *line, size_t len)
{
  while (len) {
    ssize_t n = write(fd, line, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* a log that cannot be written must not stop the daemon */
    line += n;
    len -= (size_t)n;
  }
}

static int enabled(const struct logger *lg, int level)
{
  return level >= lg->console_level ||
         (lg->fd >= 0 && level >= lg->file_level) ||
         (lg->syslog_open && level >= lg->syslog_level);
}

/* Sends the record to every sink whose level lets it through. */
static void emit(lua_State *L, const struct logger *lg, const struct record *r)
{
  size_t len;
  if (r->level >= lg->console_level) {
    render(L, lg, lg->console_fmt, lg->console_datefmt, r);
    const char *line = lua_tolstring(L, -1, &len);
    write_line(STDERR_FILENO, line, len);
    lua_pop(L, 1);
  }
  if (lg->fd >= 0 && r->level >= lg->file_level) {
    render(L, lg, lg->file_fmt, lg->file_datefmt, r);
    const char *line = lua_tolstring(L, -1, &len);
    write_line(lg->fd, line, len);
    lua_pop(L, 1);
  }
  if (lg->syslog_open && r->level >= lg->syslog_level)
    syslog(LEVEL_SYSLOG[r->level], "%.*s", (int)r->len, r->msg);
}

/* error/warning/info/debug/trace(fmt, ...): the message is fmt itself,
 * or string.format(fmt, ...) when arguments follow. */
static int log_at(lua_State *L)
{
  struct logger *lg = get_logger(L);
  int level = (int)lua_tointeger(L, lua_upvalueindex(2));
  luaL_checkany(L, 1);
  if (!enabled(lg, level))
    return 0;

  if (lua_gettop(L) > 1) {
    lua_pushvalue(L, lua_upvalueindex(3)); /* string.format */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
  } else {
    luaL_tolstring(L, 1, NULL);
  }
  struct record r = {level, NULL, 0, {0, 0}};
  r.msg = lua_tolstring(L, -1, &r.len);
  clock_gettime(CLOCK_REALTIME, &r.when);
  emit(L, lg, &r);
  return 0;
}

/* Configuration --------------------------------------------------------- */

/* Reads string option k into buf (size n); leaves buf alone when absent.
 * Raises when it is not a string or too long. */
static void opt_string(lua_State *L, const char *k, char *buf, size_t n)
{
  int t = lua_getfield(L, 1, k);
  if (t != LUA_TNIL) {
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (t != LUA_TSTRING)
      luaL_error(L, "log.configure: option '%s' must be a string", k);
    if (len >= n)
      luaL_error(L, "log.configure: option '%s' is too long", k);
    memcpy(buf, s, len + 1);
  }
  lua_pop(L, 1);
}

/* Reads level option k; returns the level, dflt when absent, or -1 after
 * pushing the message for an unknown name. */
static int opt_level(lua_State *L, const char *k, int dflt)
{
  int t = lua_getfield(L, 1, k);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return dflt;
  }
  if (t != LUA_TSTRING)
    luaL_error(L, "log.configure: option '%s' must be a level name", k);
  int level = level_by_name(lua_tostring(L, -1));
  if (!level) {
    lua_pushfstring(L,
                    "unknown log level '%s' (one of garbage, trace, "
                    "debug, info, warning, error, critical, quiet)",
                    lua_tostring(L, -1));
    return -1;
  }
  lua_pop(L, 1);
  return level;
}

static int open_log(const char *path)
{
  return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
}

static void set_defaults(struct logger *lg)
{
  lg->console_level = lg->file_level = lg->syslog_level = WARNING;
  lg->fd = -1;
  lg->syslog_open = 0;
  lg->path[0] = '\0';
  strcpy(lg->name, "brine");
  strcpy(lg->ident, "brine");
  strcpy(lg->console_fmt, "[%(levelname)-8s] %(message)s");
  strcpy(lg->file_fmt, "%(asctime)s,%(msecs)03d [%(name)-17s]"
                       "[%(levelname)-8s][%(process)d] %(message)s");
  strcpy(lg->console_datefmt, "%H:%M:%S");
  strcpy(lg->file_datefmt, "%Y-%m-%d %H:%M:%S");
}

/* Reads the options into a fresh configuration next. Returns 0, or pushes
 * nil, message, code and returns 3. */
static int read_config(lua_State *L, struct logger *next)
{
  int level = opt_level(L, "level", WARNING), file_level, syslog_level;
  if (level < 0 || (file_level = opt_level(L, "file_level", level)) < 0 ||
      (syslog_level = opt_level(L, "syslog_level", file_level)) < 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushliteral(L, "EINVAL");
    return 3;
  }
  next->console_level = level;
  next->file_level = file_level;
  next->syslog_level = syslog_level;
  if (lua_getfield(L, 1, "console") != LUA_TNIL && !lua_toboolean(L, -1))
    next->console_level = QUIET;
  lua_pop(L, 1);
  opt_string(L, "name", next->name, sizeof next->name);
  opt_string(L, "ident", next->ident, sizeof next->ident);
  opt_string(L, "format", next->file_fmt, sizeof next->file_fmt);
  opt_string(L, "console_format", next->console_fmt, sizeof next->console_fmt);
  opt_string(L, "datefmt", next->file_datefmt, sizeof next->file_datefmt);
  opt_string(L, "console_datefmt", next->console_datefmt,
             sizeof next->console_datefmt);
  opt_string(L, "file", next->path, sizeof next->path);
  return 0;
}

/* configure{level=, file_level=, syslog_level=, file=, syslog=, ident=,
 * name=, format=, console_format=, datefmt=, console_datefmt=, console=}
 * -> true | nil, message, code. Replaces the whole configuration; on
 * failure the previous one stays. */
static int l_configure(lua_State *L)
{
  struct logger *lg = get_logger(L);
  struct logger next;
  luaL_checktype(L, 1, LUA_TTABLE);
  set_defaults(&next);
  int r = read_config(L, &next);
  if (r)
    return r;
  if (next.path[0] && (next.fd = open_log(next.path)) < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "log file %s: %s", next.path, strerror(e));
    lua_pushstring(L, errname(e));
    return 3;
  }
  lua_getfield(L, 1, "syslog");
  int want_syslog = lua_toboolean(L, -1);
  lua_pop(L, 1);

  if (lg->fd >= 0)
    close(lg->fd);
  if (lg->syslog_open)
    closelog();
  *lg = next;
  if (want_syslog) {
    openlog(lg->ident, LOG_PID, LOG_DAEMON);
    lg->syslog_open = 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* reopen() -> true | nil, message, code: opens the log file again (after
 * log rotation moved it away; call it on SIGHUP). */
static int l_reopen(lua_State *L)
{
  struct logger *lg = get_logger(L);
  if (!lg->path[0]) {
    lua_pushboolean(L, 1);
    return 1;
  }
  int fd = open_log(lg->path);
  if (fd < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "log file %s: %s", lg->path, strerror(e));
    lua_pushstring(L, errname(e));
    return 3;
  }
  if (lg->fd >= 0)
    close(lg->fd);
  lg->fd = fd;
  lua_pushboolean(L, 1);
  return 1;
}

/* enabled(level) -> boolean: would a message at this level go anywhere? */
static int l_enabled(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  int level = level_by_name(name);
  if (!level)
    luaL_argerror(L, 1, lua_pushfstring(L, "unknown log level '%s'", name));
  lua_pushboolean(L, level < QUIET && enabled(get_logger(L), level));
  return 1;
}

static int logger_gc(lua_State *L)
{
  struct logger *lg = luaL_checkudata(L, 1, LOGGER_MT);
  if (lg->fd >= 0)
    close(lg->fd);
  lg->fd = -1;
  if (lg->syslog_open)
    closelog();
  lg->syslog_open = 0;
  return 0;
}

int brine__open_log(lua_State *L)
{
  static const char *const names[] = {"trace", "debug", "info", "warning",
                                      "error"};
  static const luaL_Reg funcs[] = {{"configure", l_configure},
                                   {"reopen", l_reopen},
                                   {"enabled", l_enabled},
                                   {NULL, NULL}};
  lua_newtable(L); /* M */
  struct logger *lg = lua_newuserdatauv(L, sizeof *lg, 0);
  set_defaults(lg);
  if (luaL_newmetatable(L, LOGGER_MT)) {
    lua_pushcfunction(L, logger_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, logger_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2); /* M lg */
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "_logger"); /* keeps it alive */
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2); /* M lg M lg */
  luaL_setfuncs(L, funcs, 1);
  lua_pop(L, 1); /* M lg */

  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  lua_getfield(L, -1, "format"); /* M lg string format */
  lua_remove(L, -2);             /* M lg format */
  for (int i = 0; i < 5; i++) {
    lua_pushvalue(L, -2);
    lua_pushinteger(L, TRACE + i);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, log_at, 3);
    lua_setfield(L, -4, names[i]);
  }
  lua_pop(L, 2); /* M */
  return 1;
}
