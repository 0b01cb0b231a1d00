/* brine.sys: facts about the machine and the process (uname, host name,
 * ids, users and groups, memory and load, CPUs, the environment) and the
 * clocks. Grains and execution modules are built on it. Every function
 * raises on misuse and returns nil, message, code when the system says
 * no; a user or group that does not exist is nil, message, "ENOENT". */
#include "data.h"
#include "modules.h"

#include <errno.h>
#include <grp.h>
#include <lauxlib.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_GROUPS 1024

static int fail(lua_State *L, const char *what)
{
  int e = errno;
  const char *name = strerrorname_np(e);
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(e));
  lua_pushstring(L, name ? name : "EIO");
  return 3;
}

static int not_found(lua_State *L, const char *what, int idx)
{
  lua_pushnil(L);
  lua_pushfstring(L, "no such %s '%s'", what, luaL_tolstring(L, idx, NULL));
  lua_remove(L, -2);
  lua_pushliteral(L, "ENOENT");
  return 3;
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  lua_pushstring(L, v);
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* The machine ----------------------------------------------------------- */

static int l_uname(lua_State *L)
{
  struct utsname u;
  if (uname(&u) < 0)
    return fail(L, "uname");
  lua_createtable(L, 0, 5);
  set_str(L, "sysname", u.sysname);
  set_str(L, "nodename", u.nodename);
  set_str(L, "release", u.release);
  set_str(L, "version", u.version);
  set_str(L, "machine", u.machine);
  return 1;
}

static int l_hostname(lua_State *L)
{
  char buf[HOST_NAME_MAX + 1];
  if (gethostname(buf, sizeof buf) < 0)
    return fail(L, "hostname");
  buf[HOST_NAME_MAX] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* sysinfo() -> {uptime, totalram, freeram, sharedram, bufferram,
 * totalswap, freeswap, procs, loads = {1, 5, 15 minutes}}; sizes in
 * bytes (the kernel's mem_unit applied). */
static int l_sysinfo(lua_State *L)
{
  struct sysinfo si;
  if (sysinfo(&si) < 0)
    return fail(L, "sysinfo");
  lua_Integer unit = si.mem_unit ? si.mem_unit : 1;
  lua_createtable(L, 0, 9);
  set_int(L, "uptime", si.uptime);
  set_int(L, "totalram", (lua_Integer)si.totalram * unit);
  set_int(L, "freeram", (lua_Integer)si.freeram * unit);
  set_int(L, "sharedram", (lua_Integer)si.sharedram * unit);
  set_int(L, "bufferram", (lua_Integer)si.bufferram * unit);
  set_int(L, "totalswap", (lua_Integer)si.totalswap * unit);
  set_int(L, "freeswap", (lua_Integer)si.freeswap * unit);
  set_int(L, "procs", si.procs);
  brine__new_array(L, 3);
  for (int i = 0; i < 3; i++) {
    lua_pushnumber(L, (lua_Number)si.loads[i] / (1 << SI_LOAD_SHIFT));
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "loads");
  return 1;
}

/* nprocs() -> number of CPUs online */
static int l_nprocs(lua_State *L)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  lua_pushinteger(L, n > 0 ? n : 1);
  return 1;
}

/* The process ----------------------------------------------------------- */

static int l_getpid(lua_State *L)
{
  lua_pushinteger(L, getpid());
  return 1;
}

static int l_getppid(lua_State *L)
{
  lua_pushinteger(L, getppid());
  return 1;
}

static int l_getuid(lua_State *L)
{
  lua_pushinteger(L, getuid());
  return 1;
}

static int l_geteuid(lua_State *L)
{
  lua_pushinteger(L, geteuid());
  return 1;
}

static int l_getgid(lua_State *L)
{
  lua_pushinteger(L, getgid());
  return 1;
}

static int l_getegid(lua_State *L)
{
  lua_pushinteger(L, getegid());
  return 1;
}

/* Users and groups ------------------------------------------------------ */

static int push_passwd(lua_State *L, const struct passwd *pw)
{
  lua_createtable(L, 0, 6);
  set_str(L, "name", pw->pw_name);
  set_int(L, "uid", pw->pw_uid);
  set_int(L, "gid", pw->pw_gid);
  set_str(L, "dir", pw->pw_dir);
  set_str(L, "shell", pw->pw_shell);
  set_str(L, "gecos", pw->pw_gecos ? pw->pw_gecos : "");
  return 1;
}

static int push_group(lua_State *L, const struct group *gr)
{
  lua_createtable(L, 0, 3);
  set_str(L, "name", gr->gr_name);
  set_int(L, "gid", gr->gr_gid);
  brine__new_array(L, 0);
  for (int i = 0; gr->gr_mem && gr->gr_mem[i]; i++) {
    lua_pushstring(L, gr->gr_mem[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "members");
  return 1;
}

static int l_getpwnam(lua_State *L)
{
  struct passwd *pw = getpwnam(luaL_checkstring(L, 1));
  return pw ? push_passwd(L, pw) : not_found(L, "user", 1);
}

static int l_getpwuid(lua_State *L)
{
  struct passwd *pw = getpwuid((uid_t)luaL_checkinteger(L, 1));
  return pw ? push_passwd(L, pw) : not_found(L, "user", 1);
}

static int l_getgrnam(lua_State *L)
{
  struct group *gr = getgrnam(luaL_checkstring(L, 1));
  return gr ? push_group(L, gr) : not_found(L, "group", 1);
}

static int l_getgrgid(lua_State *L)
{
  struct group *gr = getgrgid((gid_t)luaL_checkinteger(L, 1));
  return gr ? push_group(L, gr) : not_found(L, "group", 1);
}

static int by_gid(const void *a, const void *b)
{
  gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
  return x < y ? -1 : x > y;
}

/* getgroups([user]) -> array of group names (a gid without a name stays
 * a number), sorted by gid: the user's groups including the primary one,
 * or the process's groups when no user is given. */
static int l_getgroups(lua_State *L)
{
  gid_t gids[MAX_GROUPS];
  int n = MAX_GROUPS;
  if (lua_isnoneornil(L, 1)) {
    n = getgroups(MAX_GROUPS - 1, gids);
    if (n < 0)
      return fail(L, "getgroups");
    gids[n++] = getegid();
  } else {
    struct passwd *pw = getpwnam(luaL_checkstring(L, 1));
    if (!pw)
      return not_found(L, "user", 1);
    if (getgrouplist(pw->pw_name, pw->pw_gid, gids, &n) < 0)
      n = MAX_GROUPS;
  }
  qsort(gids, (size_t)n, sizeof gids[0], by_gid);

  brine__new_array(L, n);
  lua_Integer k = 0;
  for (int i = 0; i < n; i++) {
    if (i && gids[i] == gids[i - 1])
      continue;
    struct group *gr = getgrgid(gids[i]);
    if (gr)
      lua_pushstring(L, gr->gr_name);
    else
      lua_pushinteger(L, gids[i]);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* The environment ------------------------------------------------------- */

static int l_environ(lua_State *L)
{
  lua_newtable(L);
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq)
      continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, -3);
  }
  return 1;
}

static int l_getenv(lua_State *L)
{
  const char *v = getenv(luaL_checkstring(L, 1));
  if (v)
    lua_pushstring(L, v);
  else
    lua_pushnil(L);
  return 1;
}

/* setenv(name, value) -> true; a nil value removes the variable. */
static int l_setenv(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  const char *value = luaL_optstring(L, 2, NULL);
  int rc = value ? setenv(name, value, 1) : unsetenv(name);
  if (rc < 0)
    return fail(L, lua_pushfstring(L, "setenv %s", name));
  lua_pushboolean(L, 1);
  return 1;
}

/* Clocks ---------------------------------------------------------------- */

static lua_Number clock_seconds(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9;
}

static int l_time(lua_State *L)
{
  lua_pushnumber(L, clock_seconds(CLOCK_REALTIME));
  return 1;
}

static int l_monotonic(lua_State *L)
{
  lua_pushnumber(L, clock_seconds(CLOCK_MONOTONIC));
  return 1;
}

/* sleep(seconds): sleeps the whole time, even when signals arrive. */
static int l_sleep(lua_State *L)
{
  lua_Number s = luaL_checknumber(L, 1);
  luaL_argcheck(L, s >= 0 && s < 1e9, 1, "seconds out of range");
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
  return 0;
}

/* isatty(fd or file) -> boolean */
static int l_isatty(lua_State *L)
{
  int fd;
  luaL_Stream *f = luaL_testudata(L, 1, LUA_FILEHANDLE);
  if (f) {
    luaL_argcheck(L, f->closef != NULL, 1, "file is closed");
    fd = fileno(f->f);
  } else {
    fd = (int)luaL_checkinteger(L, 1);
  }
  lua_pushboolean(L, isatty(fd));
  return 1;
}

int brine__open_sys(lua_State *L)
{
  static const luaL_Reg funcs[] = {
      {"uname", l_uname},
      {"hostname", l_hostname},
      {"sysinfo", l_sysinfo},
      {"nprocs", l_nprocs},
      {"getpid", l_getpid},
      {"getppid", l_getppid},
      {"getuid", l_getuid},
      {"geteuid", l_geteuid},
      {"getgid", l_getgid},
      {"getegid", l_getegid},
      {"getpwnam", l_getpwnam},
      {"getpwuid", l_getpwuid},
      {"getgrnam", l_getgrnam},
      {"getgrgid", l_getgrgid},
      {"getgroups", l_getgroups},
      {"environ", l_environ},
      {"getenv", l_getenv},
      {"setenv", l_setenv},
      {"time", l_time},
      {"monotonic", l_monotonic},
      {"sleep", l_sleep},
      {"isatty", l_isatty},
      /* short names, as the project brief lists them */
      {"pid", l_getpid},
      {"uid", l_getuid},
      {"euid", l_geteuid},
      {"gid", l_getgid},
      {"egid", l_getegid},
      {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
