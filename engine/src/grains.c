/* brine.grains: Salt's core grains for Linux, collected in C from /proc,
 * /sys, /etc and system calls, without running a program. Owns the Lua
 * entry points (core, core_names), the collection context and its file
 * helpers, and the small grains about the process, locale, paths and
 * identity. The bigger groups live in grains_os.c, grains_hw.c and
 * grains_net.c. docs/grains.md says where every grain comes from. */
#include "grains.h"

#include "data.h"
#include "modules.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <langinfo.h>
#include <locale.h>
#include <lauxlib.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef BRINE_VERSION
#define BRINE_VERSION "0.0.0"
#endif

/* ---- file helpers ------------------------------------------------------ */

char *brine__grains_path(const struct brine__grains *g, const char *rel,
                         char *out, size_t n)
{
  int len = snprintf(out, n, "%s%s", g->root, rel);
  return len < 0 || (size_t)len >= n ? NULL : out;
}

ssize_t brine__grains_read(const struct brine__grains *g, const char *rel,
                           char *buf, size_t n)
{
  char path[4096];
  if (!brine__grains_path(g, rel, path, sizeof path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t got = 0;
  while (got + 1 < n) {
    ssize_t r = read(fd, buf + got, n - 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      if (r < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
      }
      break;
    }
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  return (ssize_t)got;
}

char *brine__grains_slurp(const struct brine__grains *g, const char *rel,
                          size_t *len)
{
  char path[4096];
  if (!brine__grains_path(g, rel, path, sizeof path)) {
    errno = ENAMETOOLONG;
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  size_t cap = 16384, got = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (got + 1 >= cap) {
      char *more = realloc(buf, cap * 2);
      if (!more) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = more;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + got, cap - 1 - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      free(buf);
      buf = NULL;
    } else if (r == 0) {
      break;
    }
    got += r > 0 ? (size_t)r : 0;
  }
  close(fd);
  if (!buf)
    return NULL;
  buf[got] = '\0';
  if (len)
    *len = got;
  return buf;
}

char *brine__grains_trim(char *s)
{
  while (*s && isspace((unsigned char)*s))
    s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1]))
    s[--n] = '\0';
  return s;
}

char *brine__grains_read_line(const struct brine__grains *g, const char *rel,
                              char *buf, size_t n)
{
  if (brine__grains_read(g, rel, buf, n) < 0)
    return NULL;
  return brine__grains_trim(buf);
}

static int stat_rel(const struct brine__grains *g, const char *rel,
                    struct stat *st)
{
  char path[4096];
  return brine__grains_path(g, rel, path, sizeof path)
         && stat(path, st) == 0;
}

int brine__grains_exists(const struct brine__grains *g, const char *rel)
{
  struct stat st;
  return stat_rel(g, rel, &st);
}

int brine__grains_is_dir(const struct brine__grains *g, const char *rel)
{
  struct stat st;
  return stat_rel(g, rel, &st) && S_ISDIR(st.st_mode);
}

int brine__grains_is_file(const struct brine__grains *g, const char *rel)
{
  struct stat st;
  return stat_rel(g, rel, &st) && S_ISREG(st.st_mode);
}

int brine__grains_which(const struct brine__grains *g, const char *name,
                        char *out, size_t n)
{
  static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin",
                                     "/usr/sbin", "/usr/bin", "/sbin",
                                     "/bin"};
  char rel[1024], path[4096];
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
    if (name[0] == '/')
      snprintf(rel, sizeof rel, "%s", name);
    else
      snprintf(rel, sizeof rel, "%s/%s", dirs[i], name);
    struct stat st;
    if (brine__grains_path(g, rel, path, sizeof path) && stat(path, &st) == 0
        && S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
      snprintf(out, n, "%s", rel);
      return 1;
    }
    if (name[0] == '/')
      break;
  }
  return 0;
}

/* ---- setting grains ---------------------------------------------------- */

void brine__grains_set_top(struct brine__grains *g, const char *key)
{
  lua_setfield(g->L, g->out, key);
}

void brine__grains_set_str(struct brine__grains *g, const char *key,
                           const char *value)
{
  lua_pushstring(g->L, value);
  lua_setfield(g->L, g->out, key);
}

void brine__grains_set_int(struct brine__grains *g, const char *key,
                           lua_Integer value)
{
  lua_pushinteger(g->L, value);
  lua_setfield(g->L, g->out, key);
}

void brine__grains_set_bool(struct brine__grains *g, const char *key,
                            int value)
{
  lua_pushboolean(g->L, value);
  lua_setfield(g->L, g->out, key);
}

int brine__grains_get(struct brine__grains *g, const char *key)
{
  return lua_getfield(g->L, g->out, key);
}

const char *brine__grains_get_str(struct brine__grains *g, const char *key,
                                  char *buf, size_t n)
{
  const char *r = NULL;
  if (lua_getfield(g->L, g->out, key) == LUA_TSTRING) {
    snprintf(buf, n, "%s", lua_tostring(g->L, -1));
    r = buf;
  }
  lua_pop(g->L, 1);
  return r;
}

void brine__grains_push_strings(lua_State *L, const char *const *items,
                                int count)
{
  brine__new_array(L, count);
  for (int i = 0; i < count; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

void brine__grains_append(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  lua_rawseti(L, idx, (lua_Integer)lua_rawlen(L, idx) + 1);
}

/* ---- uname --------------------------------------------------------------- */

static void uts_field(struct brine__grains *g, const char *rel, char *field,
                      size_t n)
{
  char buf[sizeof g->uts.version];
  char *v = brine__grains_read_line(g, rel, buf, sizeof buf);
  if (v)
    snprintf(field, n, "%s", v);
}

void brine__grains_uname(struct brine__grains *g)
{
  uname(&g->uts);
  if (g->real)
    return;
  uts_field(g, "/proc/sys/kernel/ostype", g->uts.sysname,
            sizeof g->uts.sysname);
  uts_field(g, "/proc/sys/kernel/hostname", g->uts.nodename,
            sizeof g->uts.nodename);
  uts_field(g, "/proc/sys/kernel/osrelease", g->uts.release,
            sizeof g->uts.release);
  uts_field(g, "/proc/sys/kernel/version", g->uts.version,
            sizeof g->uts.version);
  uts_field(g, "/proc/sys/kernel/arch", g->uts.machine,
            sizeof g->uts.machine);
}

/* ---- process, identity and environment grains ------------------------- */

static void process_grains(struct brine__grains *g)
{
  uid_t uid = getuid();
  gid_t gid = getgid();
  brine__grains_set_int(g, "uid", (lua_Integer)uid);
  brine__grains_set_int(g, "gid", (lua_Integer)gid);
  brine__grains_set_int(g, "pid", (lua_Integer)getpid());

  char buf[16384];
  struct passwd pw, *pwp = NULL;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp)
    brine__grains_set_str(g, "username", pw.pw_name);
  else
    brine__push_null(g->L), brine__grains_set_top(g, "username");
  struct group gr, *grp = NULL;
  if (getgrgid_r(gid, &gr, buf, sizeof buf, &grp) == 0 && grp)
    brine__grains_set_str(g, "groupname", gr.gr_name);
  else
    brine__grains_set_str(g, "groupname", "");
}

/* Salt's server_id: the SHA-256 of the id as a big integer, modulo 2**31. */
static void server_id(struct brine__grains *g, const char *id)
{
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, (const unsigned char *)id, strlen(id));
  const unsigned char *t = digest + sizeof digest - 4;
  unsigned long v = ((unsigned long)t[0] << 24) | ((unsigned long)t[1] << 16)
                    | ((unsigned long)t[2] << 8) | t[3];
  brine__grains_set_int(g, "server_id", (lua_Integer)(v & 0x7fffffffUL));
}

static void environment_grains(struct brine__grains *g)
{
  const char *shell = getenv("SHELL");
  brine__grains_set_str(g, "shell", shell ? shell : "/bin/sh");

  char *path = strdup(getenv("PATH") ? getenv("PATH") : "");
  if (!path)
    return;
  char *p = brine__grains_trim(path);
  brine__grains_set_str(g, "path", p);
  brine__new_array(g->L, 8);
  for (char *s = p;;) {                       /* Python's str.split(":") */
    char *colon = strchr(s, ':');
    lua_pushlstring(g->L, s, colon ? (size_t)(colon - s) : strlen(s));
    brine__grains_append(g->L, -2);
    if (!colon)
      break;
    s = colon + 1;
  }
  brine__grains_set_top(g, "systempath");
  free(path);
}

static void machine_id(struct brine__grains *g)
{
  static const char *const files[] = {"/etc/machine-id",
                                      "/var/lib/dbus/machine-id"};
  char buf[256];
  for (int i = 0; i < 2; i++) {
    if (!brine__grains_exists(g, files[i]))
      continue;
    char *v = brine__grains_read_line(g, files[i], buf, sizeof buf);
    if (v)
      brine__grains_set_str(g, "machine_id", v);
    return;
  }
}

/* ---- locale ------------------------------------------------------------ */

/* Python's locale.getlocale() after the interpreter's start-up: the
 * LC_CTYPE locale from the environment when it is installed, else the C
 * locale, which Python coerces to C.UTF-8 and the Python 3.10 that Salt
 * ships reports as en_US. */
static void locale_language(char *lang, size_t ln, char *enc, size_t en)
{
  const char *name = getenv("LC_ALL");
  if (!name || !*name)
    name = getenv("LC_CTYPE");
  if (!name || !*name)
    name = getenv("LANG");
  locale_t loc = name && *name ? newlocale(LC_CTYPE_MASK, name, (locale_t)0)
                               : (locale_t)0;
  if (loc)
    freelocale(loc);
  if (!loc || strcmp(name, "C") == 0 || strcmp(name, "POSIX") == 0
      || strncmp(name, "C.", 2) == 0) {
    snprintf(lang, ln, "en_US");
    snprintf(enc, en, "UTF-8");
    return;
  }
  size_t cut = strcspn(name, ".@");
  snprintf(lang, ln, "%.*s", (int)cut, name);
  if (name[cut] != '.') {
    snprintf(enc, en, "ISO8859-1");
    return;
  }
  const char *e = name + cut + 1;
  size_t elen = strcspn(e, "@");
  char raw[64];
  snprintf(raw, sizeof raw, "%.*s", (int)elen, e);
  for (char *c = raw; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (strcmp(raw, "utf8") == 0 || strcmp(raw, "utf-8") == 0)
    snprintf(enc, en, "UTF-8");
  else
    snprintf(enc, en, "%.*s", (int)elen, e);
}

static void locale_info(struct brine__grains *g)
{
  lua_State *L = g->L;
  char lang[64], enc[64];
  locale_language(lang, sizeof lang, enc, sizeof enc);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, lang);
  lua_setfield(L, -2, "defaultlanguage");
  lua_pushstring(L, enc);
  lua_setfield(L, -2, "defaultencoding");
  lua_pushstring(L, strcmp(enc, "UTF-8") == 0 ? "utf-8" : enc);
  lua_setfield(L, -2, "detectedencoding");

  const char *tz = "unknown";
  struct tm tm;
  time_t now = time(NULL);
  if (g->real) {
    tzset();
    if (localtime_r(&now, &tm) && tm.tm_zone)
      tz = tm.tm_zone;
  }
  lua_pushstring(L, tz);
  lua_setfield(L, -2, "timezone");
  brine__grains_set_top(g, "locale_info");
}

/* ---- kernel command line ---------------------------------------------- */

/* Splits the command line as Python's shlex.split does (POSIX rules:
 * quotes group and vanish, a backslash escapes) and pushes the words into
 * the array on top of the stack. */
static void shlex_split(lua_State *L, const char *s)
{
  luaL_Buffer b;
  while (*s) {
    while (*s && isspace((unsigned char)*s))
      s++;
    if (!*s)
      break;
    luaL_buffinit(L, &b);
    char quote = 0;
    for (; *s && (quote || !isspace((unsigned char)*s)); s++) {
      if (quote == '\'') {
        if (*s == '\'')
          quote = 0;
        else
          luaL_addchar(&b, *s);
      } else if (quote == '"') {
        if (*s == '"')
          quote = 0;
        else if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
          luaL_addchar(&b, *++s);
        else
          luaL_addchar(&b, *s);
      } else if (*s == '\'' || *s == '"') {
        quote = *s;
      } else if (*s == '\\' && s[1]) {
        luaL_addchar(&b, *++s);
      } else {
        luaL_addchar(&b, *s);
      }
    }
    luaL_pushresult(&b);
    brine__grains_append(L, -2);
  }
}

/* kernelparams: [key, value] pairs; a word that is not exactly one "k=v"
 * (no "=" or more than one) has a null value, as in Salt. */
static void kernelparams(struct brine__grains *g)
{
  lua_State *L = g->L;
  char *cmdline = brine__grains_slurp(g, "/proc/cmdline", NULL);
  if (!cmdline)
    return;
  brine__new_array(L, 0);                     /* words */
  shlex_split(L, cmdline);
  free(cmdline);
  brine__new_array(L, (int)lua_rawlen(L, -1)); /* words params */
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -2); i++) {
    lua_rawgeti(L, -2, i);
    size_t len;
    const char *w = lua_tolstring(L, -1, &len);
    const char *eq = memchr(w, '=', len);
    lua_createtable(L, 2, 0);
    luaL_setmetatable(L, "brine.tuple");
    lua_pushlstring(L, w, eq ? (size_t)(eq - w) : len);
    lua_rawseti(L, -2, 1);
    if (eq && !memchr(eq + 1, '=', len - (size_t)(eq - w) - 1)) {
      const char *v = eq + 1;
      size_t vl = len - (size_t)(v - w);
      while (vl && *v == '"')                 /* str.strip('"') */
        v++, vl--;
      while (vl && v[vl - 1] == '"')
        vl--;
      lua_pushlstring(L, v, vl);
    } else {
      brine__push_null(L);
    }
    lua_rawseti(L, -2, 2);
    lua_remove(L, -2);
    brine__grains_append(L, -2);
  }
  lua_remove(L, -2);
  brine__grains_set_top(g, "kernelparams");
}

static void misc_grains(struct brine__grains *g)
{
  process_grains(g);
  environment_grains(g);
  machine_id(g);
  locale_info(g);
  kernelparams(g);
  brine__grains_set_str(g, "brineversion", BRINE_VERSION);
  brine__grains_set_str(g, "luaversion", LUA_VERSION_MAJOR "."
                        LUA_VERSION_MINOR "." LUA_VERSION_RELEASE);
}

/* ---- the result -------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Replaces the value at idx, when it is a plain table, with a brine.map
 * whose keys are sorted (Salt's outputters print grains sorted), and
 * does the same inside arrays and maps. */
static void finish_value(lua_State *L, int idx)
{
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE)
    return;
  luaL_checkstack(L, 8, "grains nested too deep");
  if (lua_getmetatable(L, idx)) {              /* an array or tuple */
    lua_pop(L, 1);
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
      lua_rawgeti(L, idx, i);
      finish_value(L, -1);
      lua_rawseti(L, idx, i);
    }
    return;
  }
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx))
    lua_pop(L, 1), n++;
  const char **keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys[n++] = lua_tostring(L, -1);           /* keys are strings */
  }
  qsort(keys, (size_t)n, sizeof *keys, cmp_str);
  brine__new_map(L, n);                        /* ... keys map */
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, keys[i]);
    lua_getfield(L, idx, keys[i]);
    finish_value(L, -1);
    brine__map_set(L, -3);
  }
  lua_remove(L, -2);
  lua_replace(L, idx);
}

enum { GROUP_OS = 1, GROUP_HW = 2, GROUP_NET = 4, GROUP_MISC = 8 };

static int parse_groups(lua_State *L, int opts)
{
  if (lua_getfield(L, opts, "groups") == LUA_TNIL) {
    lua_pop(L, 1);
    return GROUP_OS | GROUP_HW | GROUP_NET | GROUP_MISC;
  }
  if (!lua_istable(L, -1))
    luaL_error(L, "grains.core: option 'groups' must be a list of names");
  int mask = 0;
  for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
    const char *s = lua_tostring(L, -1);
    if (!s)
      luaL_error(L, "grains.core: groups[%d] is not a string", (int)i);
    if (strcmp(s, "os") == 0)
      mask |= GROUP_OS;
    else if (strcmp(s, "hw") == 0)
      mask |= GROUP_HW;
    else if (strcmp(s, "net") == 0)
      mask |= GROUP_NET;
    else if (strcmp(s, "misc") == 0)
      mask |= GROUP_MISC;
    else
      luaL_error(L, "grains.core: unknown group '%s' (os, hw, net, misc)", s);
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return mask;
}

static const char *opt_string(lua_State *L, int opts, const char *name)
{
  int t = lua_getfield(L, opts, name);
  if (t != LUA_TNIL && t != LUA_TSTRING)
    luaL_error(L, "grains.core: option '%s' must be a string", name);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);                               /* opts stays referenced */
  return s;
}

/* core([{root=, id=, hostname=, resolve_timeout=, groups=}]) -> map of the
 * core grains | nil, message when the root is not a directory. */
static int l_core(lua_State *L)
{
  lua_settop(L, 1);
  luaL_checkstack(L, 48, "grains.core");
  if (lua_isnil(L, 1)) {
    lua_newtable(L);
    lua_replace(L, 1);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  struct brine__grains g = {.L = L, .root = "", .real = 1, .resolve_ms = 1000};
  const char *root = opt_string(L, 1, "root");
  g.id = opt_string(L, 1, "id");
  g.hostname = opt_string(L, 1, "hostname");
  if (lua_getfield(L, 1, "resolve_timeout") != LUA_TNIL)
    g.resolve_ms = (int)(luaL_checknumber(L, -1) * 1000);
  lua_pop(L, 1);
  int groups = parse_groups(L, 1);

  char rootbuf[4096];
  if (root && strcmp(root, "/") != 0 && *root) {
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
      lua_pushnil(L);
      lua_pushfstring(L, "grains.core: root '%s' is not a directory", root);
      return 2;
    }
    snprintf(rootbuf, sizeof rootbuf, "%s", root);
    size_t n = strlen(rootbuf);
    while (n > 1 && rootbuf[n - 1] == '/')
      rootbuf[--n] = '\0';
    g.root = rootbuf;
    g.real = 0;
  }

  lua_newtable(L);
  g.out = lua_gettop(L);
  brine__grains_uname(&g);
  if (groups & GROUP_OS)
    brine__grains_os(&g);
  if (groups & GROUP_HW)
    brine__grains_hw(&g);
  if (groups & GROUP_NET)
    brine__grains_net(&g);
  if (groups & GROUP_MISC) {
    misc_grains(&g);
    if (g.id)
      brine__grains_set_str(&g, "id", g.id);
    char fqdn[1024];
    const char *id = g.id;
    if (!id && (groups & GROUP_NET))
      id = brine__grains_get_str(&g, "fqdn", fqdn, sizeof fqdn);
    server_id(&g, id ? id : "");
  }
  finish_value(L, g.out);
  return 1;
}

static const char *const core_grain_names[] = {
  "biosreleasedate", "biosvendor", "biosversion", "boardname",
  "brineversion", "cpu_flags", "cpu_model", "cpuarch", "disks", "dns",
  "domain", "efi", "efi-secure-boot", "fqdn", "fqdn_ip4", "fqdn_ip6", "gid",
  "gpus", "groupname", "host", "hwaddr_interfaces", "id", "init", "ip4_gw",
  "ip4_interfaces", "ip6_gw", "ip6_interfaces", "ip_gw", "ip_interfaces",
  "ipv4", "ipv6", "kernel", "kernelparams", "kernelrelease", "kernelversion",
  "locale_info", "localhost", "lsb_distrib_codename",
  "lsb_distrib_description", "lsb_distrib_id", "lsb_distrib_release",
  "luaversion", "machine_id", "manufacturer", "mdadm", "mem_total",
  "nodename", "num_cpus", "num_gpus", "os", "os_family", "osarch",
  "oscodename", "osfinger", "osfullname", "osmajorrelease", "osrelease",
  "osrelease_info", "path", "pid", "productname", "ps", "selinux",
  "serialnumber", "server_id", "shell", "ssds", "swap_total", "systemd",
  "systempath", "transactional", "uid", "username", "uuid", "virtual",
  "virtual_hv_features", "virtual_hv_features_list", "virtual_hv_version",
  "virtual_hv_version_info", "virtual_subtype", "zfs_feature_flags",
  "zfs_support"};

/* core_names() -> array of every grain name core() can produce. */
static int l_core_names(lua_State *L)
{
  brine__grains_push_strings(
    L, core_grain_names,
    (int)(sizeof core_grain_names / sizeof core_grain_names[0]));
  return 1;
}

static const luaL_Reg grains_funcs[] = {
  {"core", l_core},
  {"core_names", l_core_names},
  {NULL, NULL}
};

int brine__open_grains(lua_State *L)
{
  luaL_requiref(L, "brine.data", brine__open_data, 0);
  lua_pop(L, 1);
  if (sodium_init() < 0)
    return luaL_error(L, "brine.grains: libsodium failed to start");
  luaL_newlib(L, grains_funcs);
  return 1;
}
