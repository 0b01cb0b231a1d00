/* brine.posix: the process and file primitives the master and minion
 * daemons need that Lua lacks: fork/waitpid/kill/_exit for job workers,
 * signals delivered through a self-pipe (so one poll loop sees sockets
 * and signals alike), clocks, name resolution, and the few file
 * operations key and queue handling need (modes, atomic writes,
 * listings). Owns the self-pipe and nothing else. Failures caused by the
 * world return nil, message, code (code: the errno name or number). */
#include <lauxlib.h>
#include <lua.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netdb.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int sigpipe_fds[2] = {-1, -1};
static volatile sig_atomic_t sig_seen[65];

static const struct {
  const char *name;
  int sig;
} signal_names[] = {{"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},
                    {"CHLD", SIGCHLD}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
                    {"USR2", SIGUSR2}, {"QUIT", SIGQUIT}, {"STOP", SIGSTOP},
                    {"CONT", SIGCONT}, {"PIPE", SIGPIPE}, {NULL, 0}};

static int fail(lua_State *L, const char *what, int err)
{
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, strerror(err));
  switch (err) {
  case ENOENT:
    lua_pushliteral(L, "ENOENT");
    break;
  case EEXIST:
    lua_pushliteral(L, "EEXIST");
    break;
  case EACCES:
    lua_pushliteral(L, "EACCES");
    break;
  case ESRCH:
    lua_pushliteral(L, "ESRCH");
    break;
  case ECHILD:
    lua_pushliteral(L, "ECHILD");
    break;
  case ENOTDIR:
    lua_pushliteral(L, "ENOTDIR");
    break;
  case ENOTEMPTY:
    lua_pushliteral(L, "ENOTEMPTY");
    break;
  default:
    lua_pushinteger(L, err);
  }
  return 3;
}

static int check_signal(lua_State *L, int idx)
{
  if (lua_isinteger(L, idx))
    return (int)lua_tointeger(L, idx);
  const char *name = luaL_checkstring(L, idx);
  if (strncmp(name, "SIG", 3) == 0)
    name += 3;
  for (int i = 0; signal_names[i].name; i++)
    if (strcmp(signal_names[i].name, name) == 0)
      return signal_names[i].sig;
  return luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", name));
}

static const char *signal_name(int sig)
{
  for (int i = 0; signal_names[i].name; i++)
    if (signal_names[i].sig == sig)
      return signal_names[i].name;
  return NULL;
}

/* ---- processes ------------------------------------------------------- */

/* posix.fork() -> pid (0 in the child) | nil, message, code */
static int l_fork(lua_State *L)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return fail(L, "fork", errno);
  if (pid == 0 && sigpipe_fds[0] >= 0) {
    /* The child must not steal the parent's signals. */
    close(sigpipe_fds[0]);
    close(sigpipe_fds[1]);
    sigpipe_fds[0] = sigpipe_fds[1] = -1;
    for (int i = 0; signal_names[i].name; i++)
      if (signal_names[i].sig != SIGKILL && signal_names[i].sig != SIGSTOP)
        signal(signal_names[i].sig, SIG_DFL);
  }
  lua_pushinteger(L, pid);
  return 1;
}

/* posix.waitpid([pid[, nohang]]) -> pid, "exited"|"killed", code_or_signal
 * | false (nohang, nothing finished) | nil, message, code */
static int l_waitpid(lua_State *L)
{
  pid_t pid = (pid_t)luaL_optinteger(L, 1, -1);
  int nohang = lua_toboolean(L, 2);
  int status = 0;
  pid_t got;
  do
    got = waitpid(pid, &status, nohang ? WNOHANG : 0);
  while (got < 0 && errno == EINTR);
  if (got < 0)
    return fail(L, "waitpid", errno);
  if (got == 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_pushinteger(L, got);
  if (WIFSIGNALED(status)) {
    lua_pushliteral(L, "killed");
    lua_pushinteger(L, WTERMSIG(status));
  } else {
    lua_pushliteral(L, "exited");
    lua_pushinteger(L, WEXITSTATUS(status));
  }
  return 3;
}

/* posix.kill(pid, signal) -> true | nil, message, code */
static int l_kill(lua_State *L)
{
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig = check_signal(L, 2);
  if (kill(pid, sig) != 0)
    return fail(L, "kill", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix._exit(code): ends the process now, without finalisers (for
 * forked workers, which must not close the parent's sockets). */
static int l_exit(lua_State *L)
{
  int code = (int)luaL_optinteger(L, 1, 0);
  fflush(NULL);
  _exit(code);
  return 0;
}

static int l_getpid(lua_State *L)
{
  lua_pushinteger(L, getpid());
  return 1;
}

/* posix.setsid() -> true | nil, message, code */
static int l_setsid(lua_State *L)
{
  if (setsid() < 0)
    return fail(L, "setsid", errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.daemonize() -> true (in the daemon) | nil, message, code. Detaches
 * as daemons do: fork (the caller's process exits 0 at once), setsid(),
 * fork again (so no controlling terminal can come back), cwd "/",
 * stdin/stdout/stderr on /dev/null. */
static int l_daemonize(lua_State *L)
{
  for (int round = 0; round < 2; round++) {
    pid_t pid = fork();
    if (pid < 0)
      return fail(L, "fork", errno);
    if (pid > 0)
      _exit(0);
    if (round == 0 && setsid() < 0)
      return fail(L, "setsid", errno);
  }
  if (chdir("/") != 0)
    return fail(L, "chdir /", errno);
  int fd = open("/dev/null", O_RDWR);
  if (fd < 0)
    return fail(L, "open /dev/null", errno);
  for (int std = 0; std < 3; std++)
    dup2(fd, std);
  if (fd > 2)
    close(fd);
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- signals --------------------------------------------------------- */

static void on_signal(int sig)
{
  int saved = errno;
  if (sig > 0 && sig < 65)
    sig_seen[sig] = 1;
  if (sigpipe_fds[1] >= 0) {
    char c = (char)sig;
    ssize_t rc = write(sigpipe_fds[1], &c, 1);
    (void)rc;
  }
  errno = saved;
}

/* posix.signals({"TERM", ...}) -> fd. Catches the named signals (ignores
 * SIGPIPE); each arrival makes the returned fd readable until
 * posix.pending() drains it. */
static int l_signals(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  if (sigpipe_fds[0] < 0) {
    if (pipe2(sigpipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
      return fail(L, "pipe", errno);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a poll returns EINTR at once */
  lua_Integer n = luaL_len(L, 1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 1, i);
    int sig = check_signal(L, -1);
    lua_pop(L, 1);
    sigaction(sig, &sa, NULL);
  }
  signal(SIGPIPE, SIG_IGN);
  lua_pushinteger(L, sigpipe_fds[0]);
  return 1;
}

/* posix.pending() -> {"TERM"=true, ...}: the signals seen since the last
 * call; drains the self-pipe. */
static int l_pending(lua_State *L)
{
  char buf[64];
  if (sigpipe_fds[0] >= 0)
    while (read(sigpipe_fds[0], buf, sizeof buf) > 0) {
    }
  lua_newtable(L);
  for (int sig = 1; sig < 65; sig++) {
    if (sig_seen[sig]) {
      sig_seen[sig] = 0;
      const char *name = signal_name(sig);
      if (name)
        lua_pushstring(L, name);
      else
        lua_pushinteger(L, sig);
      lua_pushboolean(L, 1);
      lua_settable(L, -3);
    }
  }
  return 1;
}

/* ---- clocks ---------------------------------------------------------- */

static int push_clock(lua_State *L, clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + ts.tv_nsec / 1e9);
  return 1;
}

/* posix.time() -> seconds since the epoch, with microseconds */
static int l_time(lua_State *L)
{
  return push_clock(L, CLOCK_REALTIME);
}

/* posix.monotonic() -> seconds on a clock that never jumps */
static int l_monotonic(lua_State *L)
{
  return push_clock(L, CLOCK_MONOTONIC);
}

/* posix.now_parts() -> year, month, day, hour, min, sec, usec (UTC) */
static int l_now_parts(lua_State *L)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  lua_pushinteger(L, tm.tm_year + 1900);
  lua_pushinteger(L, tm.tm_mon + 1);
  lua_pushinteger(L, tm.tm_mday);
  lua_pushinteger(L, tm.tm_hour);
  lua_pushinteger(L, tm.tm_min);
  lua_pushinteger(L, tm.tm_sec);
  lua_pushinteger(L, ts.tv_nsec / 1000);
  return 7;
}

/* posix.sleep(seconds) */
static int l_sleep(lua_State *L)
{
  lua_Number s = luaL_checknumber(L, 1);
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  return 0;
}

/* ---- files ----------------------------------------------------------- */

/* posix.mkdir(path, mode) -> true | nil, message, code (EEXIST included) */
static int l_mkdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = (mode_t)luaL_optinteger(L, 2, 0700);
  if (mkdir(path, mode) != 0)
    return fail(L, lua_pushfstring(L, "mkdir %s", path), errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_chmod(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  mode_t mode = (mode_t)luaL_checkinteger(L, 2);
  if (chmod(path, mode) != 0)
    return fail(L, lua_pushfstring(L, "chmod %s", path), errno);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.stat(path) -> {type=, mode=, size=, mtime=, uid=} | nil, ... */
static int l_stat(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (lstat(path, &st) != 0)
    return fail(L, lua_pushfstring(L, "stat %s", path), errno);
  lua_createtable(L, 0, 5);
  const char *type = S_ISREG(st.st_mode)    ? "file"
                     : S_ISDIR(st.st_mode)  ? "directory"
                     : S_ISLNK(st.st_mode)  ? "link"
                     : S_ISSOCK(st.st_mode) ? "socket"
                                            : "other";
  lua_pushstring(L, type);
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, st.st_mode & 07777);
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, st.st_size);
  lua_setfield(L, -2, "size");
  lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9);
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, st.st_uid);
  lua_setfield(L, -2, "uid");
  return 1;
}

/* posix.listdir(path) -> sorted array of names (no . and ..) | nil, ... */
static int l_listdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d)
    return fail(L, lua_pushfstring(L, "listdir %s", path), errno);
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(d);
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, -3);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  return 1;
}

static int path_call(lua_State *L, int (*fn)(const char *), const char *what)
{
  const char *path = luaL_checkstring(L, 1);
  if (fn(path) != 0)
    return fail(L, lua_pushfstring(L, "%s %s", what, path), errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_unlink(lua_State *L)
{
  return path_call(L, unlink, "remove");
}

static int l_rmdir(lua_State *L)
{
  return path_call(L, rmdir, "rmdir");
}

static int l_rename(lua_State *L)
{
  const char *from = luaL_checkstring(L, 1);
  const char *to = luaL_checkstring(L, 2);
  if (rename(from, to) != 0)
    return fail(L, lua_pushfstring(L, "rename %s to %s", from, to), errno);
  lua_pushboolean(L, 1);
  return 1;
}

static int write_all(int fd, const char *data, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

/* posix.write_atomic(path, data[, mode[, sync]]) -> true | nil, message,
 * code. Writes a temporary file in the same folder with the mode (default
 * 0600) from the start, syncs it (unless sync is false: the caller then
 * calls posix.syncfs before relying on it) and renames it over path: a
 * reader sees the old content or the new, never a part. */
static int l_write_atomic(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  mode_t mode = (mode_t)luaL_optinteger(L, 3, 0600);
  int sync = lua_isnoneornil(L, 4) || lua_toboolean(L, 4);
  const char *tmp = lua_pushfstring(L, "%s.tmp%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return fail(L, lua_pushfstring(L, "write %s", path), errno);
  int err = 0;
  if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 ||
      (sync && fsync(fd) != 0))
    err = errno;
  close(fd);
  if (!err && rename(tmp, path) != 0)
    err = errno;
  if (err) {
    unlink(tmp);
    return fail(L, lua_pushfstring(L, "write %s", path), err);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.fsync(path) -> true | nil, message, code. Flushes one file, or
 * a folder's entries (a rename into it), to the disk. */
static int l_fsync(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(L, lua_pushfstring(L, "fsync %s", path), errno);
  int err = fsync(fd) != 0 ? errno : 0;
  close(fd);
  if (err)
    return fail(L, lua_pushfstring(L, "fsync %s", path), err);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.syncfs(path) -> true | nil, message, code. Flushes every write of
 * the file system holding path to the disk (one call for many files
 * written with write_atomic(..., false)). */
static int l_syncfs(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(L, lua_pushfstring(L, "syncfs %s", path), errno);
  int err = syncfs(fd) != 0 ? errno : 0;
  close(fd);
  if (err)
    return fail(L, lua_pushfstring(L, "syncfs %s", path), err);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.read(path[, max]) -> content | nil, message, code. A file longer
 * than max bytes (default 16 MiB) is refused with code "EFBIG". */
static int l_read(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max = luaL_optinteger(L, 2, 16 << 20);
  FILE *f = fopen(path, "rb");
  if (!f)
    return fail(L, lua_pushfstring(L, "read %s", path), errno);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  lua_Integer total = 0;
  size_t n;
  char buf[4096];
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    total += (lua_Integer)n;
    if (total > max) {
      fclose(f);
      lua_pushnil(L);
      lua_pushfstring(L, "read %s: longer than %I bytes", path, max);
      lua_pushliteral(L, "EFBIG");
      return 3;
    }
    luaL_addlstring(&b, buf, n);
  }
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (err)
    return fail(L, lua_pushfstring(L, "read %s", path), err);
  luaL_pushresult(&b);
  return 1;
}

static int l_umask(lua_State *L)
{
  lua_pushinteger(L, umask((mode_t)luaL_checkinteger(L, 1)));
  return 1;
}

static int l_isatty(lua_State *L)
{
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* ---- names ----------------------------------------------------------- */

/* posix.resolve(host) -> {address, ...} (IPv4 first) | nil, message */
static int l_resolve(lua_State *L)
{
  const char *host = luaL_checkstring(L, 1);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, NULL, &hints, &res);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "resolving %s: %s", host, gai_strerror(rc));
    return 2;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  for (int family = 0; family < 2; family++) {
    for (struct addrinfo *a = res; a; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN];
      if (family == 0 && a->ai_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ai_addr)->sin_addr, text,
                  sizeof text);
      } else if (family == 1 && a->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr,
                  text, sizeof text);
      } else {
        continue;
      }
      lua_pushstring(L, text);
      lua_rawseti(L, -2, ++n);
    }
  }
  freeaddrinfo(res);
  return 1;
}

/* posix.send_datagram(target, data) -> true | nil, message, code. Sends
 * one datagram to "unix:PATH" (a Unix datagram socket such as /dev/log)
 * or "udp:HOST:PORT"; for syslog. */
static int l_send_datagram(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int fd = -1, err = 0;
  if (strncmp(target, "unix:", 5) == 0) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (strlen(target + 5) >= sizeof sun.sun_path)
      return fail(L, lua_pushfstring(L, "send to %s", target), ENAMETOOLONG);
    strcpy(sun.sun_path, target + 5);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        sendto(fd, data, len, 0, (struct sockaddr *)&sun, sizeof sun) < 0)
      err = errno;
  } else if (strncmp(target, "udp:", 4) == 0) {
    const char *colon = strrchr(target + 4, ':');
    if (!colon)
      return luaL_argerror(L, 1, "udp:HOST:PORT expected");
    lua_pushlstring(L, target + 4, (size_t)(colon - target - 4)); /* host */
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_DGRAM;
    int rc = getaddrinfo(lua_tostring(L, -1), colon + 1, &hints, &res);
    if (rc != 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "send to %s: %s", target, gai_strerror(rc));
      return 2;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, data, len, 0, res->ai_addr, res->ai_addrlen) < 0)
      err = errno;
    freeaddrinfo(res);
  } else {
    return luaL_argerror(L, 1, "unix:PATH or udp:HOST:PORT expected");
  }
  if (fd >= 0)
    close(fd);
  if (err)
    return fail(L, lua_pushfstring(L, "send to %s", target), err);
  lua_pushboolean(L, 1);
  return 1;
}

/* posix.stream_connect(host, port, timeout) -> fd | nil, message, code.
 * Opens a TCP connection for a stream of log lines (syslog over TCP),
 * waiting at most timeout seconds; the descriptor is non-blocking. */
static int l_stream_connect(lua_State *L)
{
  const char *host = luaL_checkstring(L, 1);
  const char *port = luaL_checkstring(L, 2);
  int timeout_ms = (int)(luaL_optnumber(L, 3, 1.0) * 1000);
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "connect to %s:%s: %s", host, port, gai_strerror(rc));
    return 2;
  }
  int fd = -1, err = ECONNREFUSED;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      break;
    err = errno;
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    socklen_t len = sizeof err;
    if (err == EINPROGRESS) {
      err = poll(&pfd, 1, timeout_ms) == 1
        && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 ? err
        : ETIMEDOUT;
      if (err == 0)
        break;
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return fail(L, lua_pushfstring(L, "connect to %s:%s", host, port), err);
  lua_pushinteger(L, fd);
  return 1;
}

/* posix.send_nowait(fd, data) -> bytes sent | nil, message, code. Sends
 * without blocking and without SIGPIPE; 0 when the socket's buffer is
 * full. */
static int l_send_nowait(lua_State *L)
{
  int fd = (int)luaL_checkinteger(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  ssize_t n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    n = 0;
  if (n < 0)
    return fail(L, "send", errno);
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

/* posix.close(fd) */
static int l_close(lua_State *L)
{
  close((int)luaL_checkinteger(L, 1));
  return 0;
}

/* ---- matching -------------------------------------------------------- */

/* posix.fnmatch(pattern, s) -> boolean (shell glob, as Python's fnmatch
 * for ids: `*` also matches `/` and a leading dot) */
static int l_fnmatch(lua_State *L)
{
  const char *pattern = luaL_checkstring(L, 1);
  const char *s = luaL_checkstring(L, 2);
  lua_pushboolean(L, fnmatch(pattern, s, 0) == 0);
  return 1;
}

/* posix.regex_search(pattern, s) -> boolean | nil, message. POSIX
 * extended regular expressions, searched anywhere in s (anchor with ^ and
 * $ as with Python's re.search). */
static int l_regex_search(lua_State *L)
{
  const char *pattern = luaL_checkstring(L, 1);
  const char *s = luaL_checkstring(L, 2);
  regex_t re;
  int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
  if (rc != 0) {
    char msg[256];
    regerror(rc, &re, msg, sizeof msg);
    lua_pushnil(L);
    lua_pushfstring(L, "bad regular expression '%s': %s", pattern, msg);
    return 2;
  }
  rc = regexec(&re, s, 0, NULL, 0);
  regfree(&re);
  lua_pushboolean(L, rc == 0);
  return 1;
}

static const luaL_Reg posix_funcs[] = {{"fnmatch", l_fnmatch},
                                       {"regex_search", l_regex_search},
                                       {"fork", l_fork},
                                       {"waitpid", l_waitpid},
                                       {"kill", l_kill},
                                       {"_exit", l_exit},
                                       {"getpid", l_getpid},
                                       {"setsid", l_setsid},
                                       {"daemonize", l_daemonize},
                                       {"signals", l_signals},
                                       {"pending", l_pending},
                                       {"time", l_time},
                                       {"monotonic", l_monotonic},
                                       {"now_parts", l_now_parts},
                                       {"sleep", l_sleep},
                                       {"mkdir", l_mkdir},
                                       {"chmod", l_chmod},
                                       {"stat", l_stat},
                                       {"listdir", l_listdir},
                                       {"unlink", l_unlink},
                                       {"rmdir", l_rmdir},
                                       {"rename", l_rename},
                                       {"write_atomic", l_write_atomic},
                                       {"syncfs", l_syncfs},
                                       {"fsync", l_fsync},
                                       {"read", l_read},
                                       {"umask", l_umask},
                                       {"isatty", l_isatty},
                                       {"resolve", l_resolve},
                                       {"send_datagram", l_send_datagram},
                                       {"stream_connect", l_stream_connect},
                                       {"send_nowait", l_send_nowait},
                                       {"close", l_close},
                                       {NULL, NULL}};

int brine__open_posix(lua_State *L)
{
  luaL_newlib(L, posix_funcs);
  return 1;
}
