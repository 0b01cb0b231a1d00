/* brine.fs: the file system calls that execution modules and states need,
 * with Salt's meaning where Salt has one: stat tables, atomic writes
 * (temporary file, fsync, rename, fsync of the folder: a crash leaves the
 * old file or the new one, never half of one), recursive removal that
 * never follows a symbolic link, sorted listings and glob(3).
 *
 * Every function raises on misuse (an argument of the wrong type) and
 * returns nil, "<op> <path>: <reason>", "<ERRNO>" when the system says
 * no. Holds no resources between calls. */
#include "data.h"
#include "modules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <lauxlib.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Helpers --------------------------------------------------------------- */

static const char *errname(int err)
{
  const char *name = strerrorname_np(err);
  return name ? name : "EIO";
}

/* Pushes nil, "op path: strerror(err)", errno name; returns 3. */
static int fail_errno(lua_State *L, const char *op, const char *path, int err)
{
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", op, path, strerror(err));
  lua_pushstring(L, errname(err));
  return 3;
}

static int fail(lua_State *L, const char *op, const char *path)
{
  return fail_errno(L, op, path, errno);
}

static int ok(lua_State *L)
{
  lua_pushboolean(L, 1);
  return 1;
}

/* A mode: an integer, or a string of octal digits as Salt writes them
 * ("644", "0755"). Returns dflt when absent. */
static mode_t check_mode(lua_State *L, int idx, mode_t dflt)
{
  if (lua_isnoneornil(L, idx))
    return dflt;
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    char *end;
    long m = strtol(s, &end, 8);
    luaL_argcheck(L, *s && !*end && m >= 0 && m <= 07777, idx,
                  "mode must be octal digits");
    return (mode_t)m;
  }
  lua_Integer m = luaL_checkinteger(L, idx);
  luaL_argcheck(L, m >= 0 && m <= 07777, idx, "mode out of range");
  return (mode_t)m;
}

/* Resolves a user (name or uid) at idx; -1 when absent. Returns 0, or
 * pushes the failure and returns 3. */
static int check_uid(lua_State *L, int idx, const char *op, const char *path,
                     uid_t *uid)
{
  *uid = (uid_t)-1;
  if (lua_isnoneornil(L, idx))
    return 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    *uid = (uid_t)luaL_checkinteger(L, idx);
    return 0;
  }
  const char *name = luaL_checkstring(L, idx);
  struct passwd *pw = getpwnam(name);
  if (!pw) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: no such user '%s'", op, path, name);
    lua_pushliteral(L, "ENOENT");
    return 3;
  }
  *uid = pw->pw_uid;
  return 0;
}

static int check_gid(lua_State *L, int idx, const char *op, const char *path,
                     gid_t *gid)
{
  *gid = (gid_t)-1;
  if (lua_isnoneornil(L, idx))
    return 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    *gid = (gid_t)luaL_checkinteger(L, idx);
    return 0;
  }
  const char *name = luaL_checkstring(L, idx);
  struct group *gr = getgrnam(name);
  if (!gr) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s %s: no such group '%s'", op, path, name);
    lua_pushliteral(L, "ENOENT");
    return 3;
  }
  *gid = gr->gr_gid;
  return 0;
}

static mode_t current_umask(void)
{
  mode_t m = umask(022);
  umask(m);
  return m;
}

/* Writes all of data to fd; returns 0 or -1 with errno set. */
static int write_all(int fd, const char *data, size_t n)
{
  while (n) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    data += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Stat ------------------------------------------------------------------ */

static const char *type_name(mode_t m)
{
  if (S_ISREG(m))
    return "file";
  if (S_ISDIR(m))
    return "directory";
  if (S_ISLNK(m))
    return "link";
  if (S_ISFIFO(m))
    return "fifo";
  if (S_ISSOCK(m))
    return "socket";
  if (S_ISCHR(m))
    return "char";
  if (S_ISBLK(m))
    return "block";
  return "unknown";
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void set_time(lua_State *L, const char *k, struct timespec ts)
{
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

static void push_stat(lua_State *L, const struct stat *st)
{
  lua_createtable(L, 0, 11);
  lua_pushstring(L, type_name(st->st_mode));
  lua_setfield(L, -2, "type");
  set_int(L, "mode", st->st_mode & 07777);
  set_int(L, "uid", st->st_uid);
  set_int(L, "gid", st->st_gid);
  set_int(L, "size", st->st_size);
  set_time(L, "atime", st->st_atim);
  set_time(L, "mtime", st->st_mtim);
  set_time(L, "ctime", st->st_ctim);
  set_int(L, "inode", (lua_Integer)st->st_ino);
  set_int(L, "dev", (lua_Integer)st->st_dev);
  set_int(L, "nlink", (lua_Integer)st->st_nlink);
}

static int l_stat(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) < 0)
    return fail(L, "stat", path);
  push_stat(L, &st);
  return 1;
}

static int l_lstat(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) < 0)
    return fail(L, "lstat", path);
  push_stat(L, &st);
  return 1;
}

/* fs.stamp(path) -> mtime_ns, size, inode: what changes when a file is
 * rewritten, as three integers (no table), for caches that check a file
 * on every use (the template engine's). Follows links. */
static int l_stamp(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) < 0)
    return fail(L, "stat", path);
  lua_pushinteger(L, (lua_Integer)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_pushinteger(L, (lua_Integer)st.st_ino);
  return 3;
}

/* exists / is_dir / is_file follow links (a dangling link does not
 * exist), as Python's os.path does; is_link does not. */
static int l_exists(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
  return 1;
}

static int l_is_dir(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 &&
                         S_ISDIR(st.st_mode));
  return 1;
}

static int l_is_file(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 &&
                         S_ISREG(st.st_mode));
  return 1;
}

static int l_is_link(lua_State *L)
{
  struct stat st;
  lua_pushboolean(L, lstat(luaL_checkstring(L, 1), &st) == 0 &&
                         S_ISLNK(st.st_mode));
  return 1;
}

/* Reading and writing --------------------------------------------------- */

/* read(path[, max]) -> contents; a file longer than max is EFBIG. */
static int l_read(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, LUA_MAXINTEGER);
  luaL_argcheck(L, max >= 0, 2, "max must not be negative");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(L, "read", path);

  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer total = 0;
  for (;;) {
    char *p = luaL_prepbuffer(&b);
    ssize_t n = read(fd, p, LUAL_BUFFERSIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return fail_errno(L, "read", path, e);
    }
    if (n == 0)
      break;
    total += n;
    if (total > max) {
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "read %s: file larger than %I bytes", path, max);
      lua_pushliteral(L, "EFBIG");
      return 3;
    }
    luaL_addsize(&b, (size_t)n);
  }
  close(fd);
  luaL_pushresult(&b);
  return 1;
}

/* Opens the folder holding path and fsyncs it, so a rename is durable. */
static void sync_parent(lua_State *L, const char *path)
{
  const char *slash = strrchr(path, '/');
  const char *dir = slash == path ? "/" : ".";
  if (slash && slash != path)
    dir = lua_pushlstring(L, path, (size_t)(slash - path));
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (slash && slash != path)
    lua_pop(L, 1);
}

struct owner {
  mode_t mode;
  uid_t uid;
  gid_t gid;
};

/* Reads {mode=, uid=, gid=} at idx; defaults: the existing file's mode
 * and owner, else 0666 less the umask. Returns 0 or 3 (failure pushed). */
static int write_options(lua_State *L, int idx, const char *path,
                         struct owner *o)
{
  struct stat st;
  int exists = stat(path, &st) == 0 && S_ISREG(st.st_mode);
  o->mode = exists ? st.st_mode & 07777 : 0666 & ~current_umask();
  o->uid = exists ? st.st_uid : (uid_t)-1;
  o->gid = exists ? st.st_gid : (gid_t)-1;
  if (lua_isnoneornil(L, idx))
    return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  int top = lua_gettop(L);
  lua_getfield(L, idx, "mode");
  o->mode = check_mode(L, top + 1, o->mode);
  lua_getfield(L, idx, "uid");
  lua_getfield(L, idx, "gid");
  uid_t uid;
  gid_t gid;
  int r = check_uid(L, top + 2, "write", path, &uid);
  if (!r)
    r = check_gid(L, top + 3, "write", path, &gid);
  if (r)
    return r;
  o->uid = uid != (uid_t)-1 ? uid : o->uid;
  o->gid = gid != (gid_t)-1 ? gid : o->gid;
  lua_settop(L, top);
  return 0;
}

/* Writes data to the open temporary file fd and makes it durable with
 * the wanted mode and owner. Returns 0 or -1 with errno set. */
static int fill_temp(int fd, const char *data, size_t n, const struct owner *o)
{
  if (write_all(fd, data, n) < 0 || fchmod(fd, o->mode) < 0)
    return -1;
  if ((o->uid != (uid_t)-1 || o->gid != (gid_t)-1) &&
      fchown(fd, o->uid, o->gid) < 0 && (errno != EPERM || geteuid() == 0))
    return -1;
  return fsync(fd);
}

/* write_atomic(path, data[, {mode=, uid=, gid=}]) -> true */
static int l_write_atomic(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  struct owner o;
  int r = write_options(L, 3, path, &o);
  if (r)
    return r;

  /* The temporary name is filled in by mkostemp: build it in memory
   * we own, never in a Lua string. */
  const char *slash = strrchr(path, '/');
  size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
  const char *base = path + dirlen;
  size_t len = dirlen + 1 + strlen(base) + 8;
  char *tmp = lua_newuserdatauv(L, len + 1, 0);
  memcpy(tmp, path, dirlen);
  snprintf(tmp + dirlen, len + 1 - dirlen, ".%s.XXXXXX", base);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0)
    return fail(L, "write", path);

  int rc = fill_temp(fd, data, n, &o), e = errno;
  if (close(fd) < 0 && rc == 0) {
    rc = -1;
    e = errno;
  }
  if (rc == 0 && rename(tmp, path) < 0) {
    rc = -1;
    e = errno;
  }
  if (rc < 0) {
    unlink(tmp);
    return fail_errno(L, "write", path, e);
  }
  sync_parent(L, path);
  return ok(L);
}

/* append(path, data) -> true; creates the file when missing. */
static int l_append(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0)
    return fail(L, "append", path);
  int rc = write_all(fd, data, n), e = errno;
  if (close(fd) < 0 && rc == 0) {
    rc = -1;
    e = errno;
  }
  return rc < 0 ? fail_errno(L, "append", path, e) : ok(L);
}

/* Folders --------------------------------------------------------------- */

/* mkdir(path[, mode[, parents]]) -> true. With parents, missing parents
 * are made too and an existing folder is fine (mkdir -p). */
static int l_mkdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = check_mode(L, 2, 0777);
  int parents = lua_toboolean(L, 3);
  if (!parents)
    return mkdir(path, mode) < 0 ? fail(L, "mkdir", path) : ok(L);

  size_t n = strlen(path);
  char *buf = lua_newuserdatauv(L, n + 1, 0);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char saved = buf[i];
    buf[i] = '\0';
    struct stat st;
    if (mkdir(buf, i == n ? mode : 0777) < 0 &&
        (errno != EEXIST || stat(buf, &st) < 0 || !S_ISDIR(st.st_mode))) {
      int e = errno == EEXIST ? ENOTDIR : errno;
      return fail_errno(L, "mkdir", path, e);
    }
    buf[i] = saved;
  }
  return ok(L);
}

/* Removes name (relative to dirfd) and, if it is a folder, everything in
 * it, without following any symbolic link. Returns 0 or an errno. */
static int remove_tree(int dirfd, const char *name)
{
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno;
  if (!S_ISDIR(st.st_mode))
    return unlinkat(dirfd, name, 0) < 0 ? errno : 0;

  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    return e;
  }
  int err = 0;
  struct dirent *de;
  while (!err && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      err = remove_tree(fd, de->d_name);
  }
  closedir(d);
  if (err)
    return err;
  return unlinkat(dirfd, name, AT_REMOVEDIR) < 0 ? errno : 0;
}

/* remove(path[, recursive]) -> true. A folder needs recursive unless it
 * is empty; a link is removed, never what it points to. */
static int l_remove(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int recursive = lua_toboolean(L, 2);
  struct stat st;
  if (lstat(path, &st) < 0)
    return fail(L, "remove", path);
  if (recursive) {
    int e = remove_tree(AT_FDCWD, path);
    return e ? fail_errno(L, "remove", path, e) : ok(L);
  }
  int rc = S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path);
  return rc < 0 ? fail(L, "remove", path) : ok(L);
}

static int by_name(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* listdir(path) -> sorted array of names (without . and ..). */
static int l_listdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d)
    return fail(L, "listdir", path);
  lua_newtable(L); /* names (anchors) */
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
      lua_pushstring(L, de->d_name);
      lua_rawseti(L, -2, ++n);
    }
  }
  closedir(d);

  const char **v = lua_newuserdatauv(L, sizeof *v * (size_t)(n ? n : 1), 0);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    v[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  qsort(v, (size_t)n, sizeof *v, by_name);
  brine__new_array(L, n); /* names v result */
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* tempdir([prefix]) -> path of a new private folder in $TMPDIR or /tmp. */
static int l_tempdir(lua_State *L)
{
  const char *prefix = luaL_optstring(L, 1, "brine-");
  luaL_argcheck(L, !strchr(prefix, '/'), 1, "prefix must not hold a '/'");
  const char *base = getenv("TMPDIR");
  if (!base || !*base)
    base = "/tmp";
  size_t len = strlen(base) + strlen(prefix) + 8;
  char *tmpl = lua_newuserdatauv(L, len, 0);
  snprintf(tmpl, len, "%s/%sXXXXXX", base, prefix);
  if (!mkdtemp(tmpl))
    return fail(L, "tempdir", tmpl);
  lua_pushstring(L, tmpl);
  return 1;
}

/* glob(pattern) -> sorted array of matching paths (empty when none). */
static int l_glob(lua_State *L)
{
  const char *pattern = luaL_checkstring(L, 1);
  glob_t g;
  int rc = glob(pattern, 0, NULL, &g);
  if (rc != 0 && rc != GLOB_NOMATCH) {
    globfree(&g);
    lua_pushnil(L);
    lua_pushfstring(L, "glob %s: %s", pattern,
                    rc == GLOB_NOSPACE ? "out of memory" : "read error");
    lua_pushstring(L, rc == GLOB_NOSPACE ? "ENOMEM" : "EIO");
    return 3;
  }
  size_t n = rc == 0 ? g.gl_pathc : 0;
  brine__new_array(L, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, g.gl_pathv[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  globfree(&g);
  return 1;
}

/* Attributes ------------------------------------------------------------ */

static int l_chmod(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  luaL_checkany(L, 2);
  mode_t mode = check_mode(L, 2, 0);
  return chmod(path, mode) < 0 ? fail(L, "chmod", path) : ok(L);
}

/* chown(path, user, group): names or ids; nil leaves one unchanged. */
static int l_chown(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  uid_t uid;
  gid_t gid;
  int r = check_uid(L, 2, "chown", path, &uid);
  if (!r)
    r = check_gid(L, 3, "chown", path, &gid);
  if (r)
    return r;
  return chown(path, uid, gid) < 0 ? fail(L, "chown", path) : ok(L);
}

static int l_rename(lua_State *L)
{
  const char *from = luaL_checkstring(L, 1);
  const char *to = luaL_checkstring(L, 2);
  if (rename(from, to) < 0)
    return fail(L, "rename", lua_pushfstring(L, "%s -> %s", from, to));
  return ok(L);
}

/* symlink(target, path): makes path a link to target. */
static int l_symlink(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  const char *path = luaL_checkstring(L, 2);
  return symlink(target, path) < 0 ? fail(L, "symlink", path) : ok(L);
}

static int l_readlink(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  ssize_t n = readlink(path, buf, sizeof buf);
  if (n < 0)
    return fail(L, "readlink", path);
  lua_pushlstring(L, buf, (size_t)n);
  return 1;
}

static int l_realpath(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  char *real = realpath(path, NULL);
  if (!real)
    return fail(L, "realpath", path);
  lua_pushstring(L, real);
  free(real);
  return 1;
}

static int l_getcwd(lua_State *L)
{
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf))
    return fail(L, "getcwd", ".");
  lua_pushstring(L, buf);
  return 1;
}

static struct timespec to_timespec(lua_Number t)
{
  struct timespec ts;
  lua_Number whole = (lua_Number)(time_t)t;
  if (whole > t)
    whole -= 1;
  ts.tv_sec = (time_t)whole;
  ts.tv_nsec = (long)((t - whole) * 1e9);
  if (ts.tv_nsec >= 1000000000L)
    ts.tv_nsec = 999999999L;
  return ts;
}

/* utime(path[, atime[, mtime]]): seconds (floats); none means now, a
 * missing mtime is atime. */
static int l_utime(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct timespec ts[2], *tsp = NULL;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number at = luaL_checknumber(L, 2);
    ts[0] = to_timespec(at);
    ts[1] = to_timespec(luaL_optnumber(L, 3, at));
    tsp = ts;
  }
  return utimensat(AT_FDCWD, path, tsp, 0) < 0 ? fail(L, "utime", path) : ok(L);
}

/* touch(path): creates an empty file when missing, sets times to now. */
static int l_touch(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666);
  if (fd < 0 && errno != EISDIR)
    return fail(L, "touch", path);
  if (fd >= 0)
    close(fd);
  return utimensat(AT_FDCWD, path, NULL, 0) < 0 ? fail(L, "touch", path)
                                                : ok(L);
}

int brine__open_fs(lua_State *L)
{
  static const luaL_Reg funcs[] = {
      {"stat", l_stat},         {"lstat", l_lstat},
      {"stamp", l_stamp},
      {"exists", l_exists},     {"is_dir", l_is_dir},
      {"is_file", l_is_file},   {"is_link", l_is_link},
      {"read", l_read},         {"write_atomic", l_write_atomic},
      {"append", l_append},     {"mkdir", l_mkdir},
      {"remove", l_remove},     {"listdir", l_listdir},
      {"chmod", l_chmod},       {"chown", l_chown},
      {"rename", l_rename},     {"symlink", l_symlink},
      {"readlink", l_readlink}, {"realpath", l_realpath},
      {"touch", l_touch},       {"utime", l_utime},
      {"getcwd", l_getcwd},     {"tempdir", l_tempdir},
      {"glob", l_glob},         {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
