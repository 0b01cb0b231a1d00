/* brine.proc: runs programs the way Salt's cmd module needs: argv or a
 * /bin/sh command line, a chosen environment, working folder, user and
 * group, text on stdin, a timeout that kills the whole process group, and
 * stdout and stderr captured in full (poll() on both, so a chatty child
 * never deadlocks) up to a size limit. Also which(), kill() and signal
 * names.
 *
 * The child is started with fork + execve. Everything the child needs is
 * prepared before fork (argv, envp, the program's full path, the group
 * list), so the child only makes system calls. It reports a failure to
 * start (chdir, setuid, execve) through a close-on-exec pipe: the parent
 * reads nothing when execve succeeded, or the stage and errno otherwise.
 * Owns the userdata "brine.proc.job" that holds a running child's pipes
 * and buffers, so that an error cannot leak them or leave a child behind. */
#include "modules.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <lauxlib.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define JOB_MT "brine.proc.job"
#define DEFAULT_MAX_OUTPUT (64 * 1024 * 1024)
#define DEFAULT_PATH                                                           \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define KILL_GRACE 2.0 /* seconds between SIGTERM and SIGKILL */
#define MAX_GROUPS 256

enum stage {
  STAGE_CWD = 1,
  STAGE_GROUPS,
  STAGE_SETGID,
  STAGE_SETUID,
  STAGE_EXEC
};

/* What the child is to become, all prepared before fork. The strings
 * point into Lua values anchored on the stack of run(). */
struct spec {
  const char *name; /* the program as the caller named it */
  const char *path; /* its resolved full path */
  char **argv, **envp;
  const char *cwd;
  const char *in;
  size_t inlen;
  int set_ids;
  uid_t uid;
  gid_t gid;
  gid_t groups[MAX_GROUPS];
  int ngroups;
  int set_umask;
  mode_t umask;
  double timeout; /* seconds, <= 0 for none */
  size_t max_output;
};

struct job {
  pid_t pid;
  int reaped, status, timed_out;
  int fd[3]; /* stdin (write end), stdout, stderr; -1 closed */
  char *buf[2];
  size_t len[2], cap[2];
  int cut[2];
  size_t inoff;
};

/* Helpers --------------------------------------------------------------- */

static const char *errname(int err)
{
  const char *name = strerrorname_np(err);
  return name ? name : "EIO";
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void close_fd(int *fd)
{
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

/* Returns nil, "cannot run 'name': <detail>", code. */
static int fail(lua_State *L, const char *name, const char *detail,
                const char *code)
{
  lua_pushnil(L);
  lua_pushfstring(L, "cannot run '%s': %s", name, detail);
  lua_pushstring(L, code);
  return 3;
}

/* Is path a regular file we may execute? */
static int executable(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Finds name in the colon-separated search path; pushes the full path and
 * returns 1, or returns 0. A name with a slash is taken as it is. */
static int search_path(lua_State *L, const char *name, const char *path)
{
  if (strchr(name, '/')) {
    if (!executable(name))
      return 0;
    lua_pushstring(L, name);
    return 1;
  }
  if (!*name)
    return 0;
  while (path) {
    const char *colon = strchr(path, ':');
    size_t n = colon ? (size_t)(colon - path) : strlen(path);
    if (n)
      lua_pushlstring(L, path, n);
    else
      lua_pushliteral(L, ".");
    lua_pushfstring(L, "/%s", name);
    lua_concat(L, 2);
    const char *full = lua_tostring(L, -1);
    if (executable(full))
      return 1;
    lua_pop(L, 1);
    path = colon ? colon + 1 : NULL;
  }
  return 0;
}

/* Signal names ---------------------------------------------------------- */

/* The signal number of "TERM", "SIGTERM" or "sigterm", or 0. */
static int signal_by_name(const char *name)
{
  if (strncasecmp(name, "SIG", 3) == 0)
    name += 3;
  for (int sig = 1; sig < NSIG; sig++) {
    const char *abbrev = sigabbrev_np(sig);
    if (abbrev && strcasecmp(abbrev, name) == 0)
      return sig;
  }
  return 0;
}

static void push_signal_name(lua_State *L, int sig)
{
  const char *abbrev = sigabbrev_np(sig);
  if (abbrev)
    lua_pushfstring(L, "SIG%s", abbrev);
  else
    lua_pushfstring(L, "SIG%d", sig);
}

static int check_signal(lua_State *L, int idx)
{
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer sig = luaL_checkinteger(L, idx);
    luaL_argcheck(L, sig >= 0 && sig < NSIG, idx, "no such signal");
    return (int)sig;
  }
  const char *name = luaL_checkstring(L, idx);
  int sig = signal_by_name(name);
  if (!sig)
    luaL_argerror(L, idx, lua_pushfstring(L, "no such signal '%s'", name));
  return sig;
}

/* The job userdata ------------------------------------------------------ */

static int job_gc(lua_State *L)
{
  struct job *j = luaL_checkudata(L, 1, JOB_MT);
  for (int i = 0; i < 3; i++)
    close_fd(&j->fd[i]);
  for (int i = 0; i < 2; i++) {
    free(j->buf[i]);
    j->buf[i] = NULL;
  }
  if (j->pid > 0 && !j->reaped) {
    kill(-j->pid, SIGKILL);
    while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR) {
    }
    j->reaped = 1;
  }
  return 0;
}

static struct job *new_job(lua_State *L)
{
  struct job *j = lua_newuserdatauv(L, sizeof *j, 0);
  memset(j, 0, sizeof *j);
  j->fd[0] = j->fd[1] = j->fd[2] = -1;
  luaL_setmetatable(L, JOB_MT);
  return j;
}

/* Options --------------------------------------------------------------- */

/* Pushes field k of the options table (at 1) and returns its type. */
static int opt(lua_State *L, const char *k)
{
  return lua_getfield(L, 1, k);
}

static int opt_error(lua_State *L, const char *k, const char *want)
{
  return luaL_error(L, "proc.run: option '%s' must be %s, got %s", k, want,
                    luaL_typename(L, -1));
}

/* Pushes a C array of char * (as userdata) holding the strings of the
 * Lua array at idx, NULL-terminated, and returns it. The strings stay
 * anchored by the array, which the caller keeps on the stack. */
static char **push_strv(lua_State *L, int idx, const char *k)
{
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  char **v = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n + 1), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, idx, i);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      return (char **)(intptr_t)opt_error(L, k, "an array of strings");
    lua_tostring(L, -1); /* converts numbers in place */
    lua_rawseti(L, idx, i);
    lua_rawgeti(L, idx, i);
    v[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
  return v;
}

/* Builds the child's argv from opts.argv or opts.shell. Pushes the
 * anchoring table and the vector. */
static void build_argv(lua_State *L, struct spec *s)
{
  int base = lua_gettop(L);
  int targv = opt(L, "argv");
  int tshell = opt(L, "shell");
  if ((targv == LUA_TNIL) == (tshell == LUA_TNIL))
    luaL_error(L, "proc.run: give exactly one of 'argv' and 'shell'");
  if (tshell != LUA_TNIL) {
    if (tshell != LUA_TSTRING)
      opt_error(L, "shell", "a string");
    lua_createtable(L, 3, 0);
    lua_pushliteral(L, "/bin/sh");
    lua_rawseti(L, -2, 1);
    lua_pushliteral(L, "-c");
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, 3);
  } else {
    lua_pop(L, 1);
    if (targv != LUA_TTABLE)
      opt_error(L, "argv", "an array of strings");
    if (lua_rawlen(L, -1) == 0)
      luaL_error(L, "proc.run: option 'argv' is empty");
    lua_createtable(L, (int)lua_rawlen(L, -1), 0); /* a copy we may change */
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -2); i++) {
      lua_rawgeti(L, -2, i);
      lua_rawseti(L, -2, i);
    }
  }
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);                       /* argvtable */
  s->argv = push_strv(L, lua_gettop(L), "argv"); /* argvtable argv */
  s->name = tshell != LUA_TNIL ? "/bin/sh" : s->argv[0];
}

/* Builds the environment as a map name -> value on the stack: the
 * engine's own (unless clear_env), then opts.env (false removes). */
static void build_env_map(lua_State *L)
{
  lua_newtable(L); /* map */
  int map = lua_gettop(L);
  opt(L, "clear_env");
  int clear = lua_toboolean(L, -1);
  lua_pop(L, 1);
  for (char **e = environ; !clear && e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq)
      continue;
    lua_pushlstring(L, *e, (size_t)(eq - *e));
    lua_pushstring(L, eq + 1);
    lua_rawset(L, map);
  }

  int t = opt(L, "env");
  if (t != LUA_TNIL && t != LUA_TTABLE)
    opt_error(L, "env", "a table");
  if (t == LUA_TNIL)
    lua_newtable(L); /* map nil {} */
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    int vt = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING ||
        (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN) ||
        (vt == LUA_TBOOLEAN && lua_toboolean(L, -1)))
      luaL_error(L, "proc.run: option 'env' must map names to strings "
                    "(or false to remove)");
    lua_pushvalue(L, -2);
    if (vt == LUA_TBOOLEAN)
      lua_pushnil(L);
    else
      lua_pushstring(L, lua_tostring(L, -2));
    lua_rawset(L, map);
  }
  lua_settop(L, map); /* map */
}

/* Sets name=value in the env map at idx unless the caller's env gave it. */
static void env_default(lua_State *L, int map, const char *name,
                        const char *value)
{
  if (opt(L, "env") == LUA_TTABLE && lua_getfield(L, -1, name) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, lua_istable(L, -1) ? 2 : 1);
  lua_pushstring(L, value);
  lua_setfield(L, map, name);
}

/* Turns the env map on top into an envp vector; pushes anchor and vector. */
static void build_envp(lua_State *L, struct spec *s)
{
  int map = lua_gettop(L);
  lua_newtable(L); /* map list */
  lua_Integer n = 0;
  for (lua_pushnil(L); lua_next(L, map); lua_pop(L, 1)) {
    lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
    lua_rawseti(L, map + 1, ++n);
  }
  s->envp = push_strv(L, map + 1, "env"); /* map list envp */
}

/* Resolves opts.user / opts.group. Returns 0, or pushes nil, msg, code
 * and returns 3. */
static int resolve_ids(lua_State *L, struct spec *s, int map)
{
  struct passwd *pw = NULL;
  s->uid = geteuid();
  s->gid = getegid();
  int tu = opt(L, "user"), tg = opt(L, "group");
  if (tu == LUA_TNIL && tg == LUA_TNIL) {
    lua_pop(L, 2);
    return 0;
  }
  s->set_ids = 1;
  if (tu == LUA_TNUMBER) {
    s->uid = (uid_t)luaL_checkinteger(L, -2);
    pw = getpwuid(s->uid);
  } else if (tu == LUA_TSTRING) {
    if (!(pw = getpwnam(lua_tostring(L, -2))))
      return fail(L, s->name,
                  lua_pushfstring(L, "no such user '%s'", lua_tostring(L, -2)),
                  "ENOENT");
    s->uid = pw->pw_uid;
  } else if (tu != LUA_TNIL) {
    lua_pushvalue(L, -2);
    opt_error(L, "user", "a name or a uid");
  }
  if (pw)
    s->gid = pw->pw_gid;

  if (tg == LUA_TNUMBER) {
    s->gid = (gid_t)luaL_checkinteger(L, -1);
  } else if (tg == LUA_TSTRING) {
    struct group *gr = getgrnam(lua_tostring(L, -1));
    if (!gr)
      return fail(L, s->name,
                  lua_pushfstring(L, "no such group '%s'", lua_tostring(L, -1)),
                  "ENOENT");
    s->gid = gr->gr_gid;
  } else if (tg != LUA_TNIL) {
    opt_error(L, "group", "a name or a gid");
  }

  s->ngroups = MAX_GROUPS;
  if (!pw || tg != LUA_TNIL ||
      getgrouplist(pw->pw_name, s->gid, s->groups, &s->ngroups) < 0) {
    s->groups[0] = s->gid;
    s->ngroups = 1;
  }
  if (geteuid() != 0 && (s->uid != geteuid() || s->gid != getegid()))
    return fail(L, s->name,
                lua_pushfstring(L,
                                "switching to user '%s' "
                                "needs root",
                                pw ? pw->pw_name : lua_tostring(L, -2)),
                "EPERM");
  if (pw && tu != LUA_TNIL) {
    env_default(L, map, "HOME", pw->pw_dir);
    env_default(L, map, "USER", pw->pw_name);
    env_default(L, map, "LOGNAME", pw->pw_name);
  }
  lua_pop(L, 2);
  return 0;
}

static void read_scalars(lua_State *L, struct spec *s)
{
  int t = opt(L, "cwd");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    opt_error(L, "cwd", "a string");
  s->cwd = lua_tostring(L, -1); /* anchored by opts */
  lua_pop(L, 1);

  t = opt(L, "stdin");
  if (t != LUA_TNIL && t != LUA_TSTRING)
    opt_error(L, "stdin", "a string");
  s->in = lua_tolstring(L, -1, &s->inlen);
  lua_pop(L, 1);

  t = opt(L, "timeout");
  if (t != LUA_TNIL && t != LUA_TNUMBER)
    opt_error(L, "timeout", "a number of seconds");
  s->timeout = lua_tonumber(L, -1);
  lua_pop(L, 1);

  t = opt(L, "max_output");
  if (t != LUA_TNIL && (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0))
    opt_error(L, "max_output", "a count of bytes");
  s->max_output =
      t == LUA_TNIL ? DEFAULT_MAX_OUTPUT : (size_t)lua_tointeger(L, -1);
  lua_pop(L, 1);

  t = opt(L, "umask");
  if (t != LUA_TNIL && !lua_isinteger(L, -1))
    opt_error(L, "umask", "an integer");
  s->set_umask = t != LUA_TNIL;
  s->umask = (mode_t)lua_tointeger(L, -1) & 0777;
  lua_pop(L, 1);
}

/* The child ------------------------------------------------------------- */

static void child_fail(int errfd, int stage)
{
  int msg[2] = {stage, errno};
  ssize_t ignored = write(errfd, msg, sizeof msg);
  (void)ignored;
  _exit(127);
}

/* Runs in the forked child: only system calls from here to execve. */
static void child(const struct spec *s, const int fds[3], int errfd)
{
  sigset_t none;
  setpgid(0, 0);
  for (int sig = 1; sig < NSIG; sig++)
    signal(sig, SIG_DFL);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int i = 0; i < 3; i++)
    if (dup2(fds[i], i) < 0)
      child_fail(errfd, STAGE_EXEC);

  if (s->set_umask)
    umask(s->umask);
  if (s->cwd && chdir(s->cwd) < 0)
    child_fail(errfd, STAGE_CWD);
  if (s->set_ids && geteuid() == 0) {
    if (setgroups((size_t)s->ngroups, s->groups) < 0)
      child_fail(errfd, STAGE_GROUPS);
    if (setgid(s->gid) < 0)
      child_fail(errfd, STAGE_SETGID);
    if (setuid(s->uid) < 0)
      child_fail(errfd, STAGE_SETUID);
  }
  execve(s->path, s->argv, s->envp);
  child_fail(errfd, STAGE_EXEC);
}

/* Moves fd above 2, so that dup2 onto 0..2 in the child cannot clobber
 * another of the child's descriptors. */
static int above_stdio(int fd)
{
  if (fd > 2)
    return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
}

/* Reads the child's start report from the status pipe (closed by a
 * successful execve). Returns 0 when the program runs; else reaps the
 * child, pushes nil, msg, code and returns 3. */
static int report_start(lua_State *L, const struct spec *s, struct job *j,
                        int statusfd)
{
  int msg[2];
  ssize_t n;
  while ((n = read(statusfd, msg, sizeof msg)) < 0 && errno == EINTR) {
  }
  close(statusfd);
  if (n != (ssize_t)sizeof msg)
    return 0;
  while (waitpid(j->pid, &j->status, 0) < 0 && errno == EINTR) {
  }
  j->reaped = 1;

  const char *detail = strerror(msg[1]);
  if (msg[0] == STAGE_CWD)
    detail = lua_pushfstring(L, "cannot change to directory '%s': %s", s->cwd,
                             detail);
  else if (msg[0] != STAGE_EXEC)
    detail = lua_pushfstring(L, "cannot switch user: %s", detail);
  return fail(L, s->name, detail, errname(msg[1]));
}

/* Makes the pipes, forks and reports a failure to start. Returns 0 when
 * the program runs, else pushes nil, msg, code and returns 3. */
static int start(lua_State *L, struct spec *s, struct job *j)
{
  int in[2] = {-1, -1}, out[2], err[2], status[2];
  if (s->in) {
    if (pipe2(in, O_CLOEXEC) < 0)
      return fail(L, s->name, strerror(errno), errname(errno));
  } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    return fail(L, s->name, strerror(errno), errname(errno));
  }
  j->fd[0] = in[1];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 ||
      pipe2(status, O_CLOEXEC) < 0) {
    int e = errno;
    close(in[0]);
    return fail(L, s->name, strerror(e), errname(e));
  }
  j->fd[1] = out[0];
  j->fd[2] = err[0];
  int fds[3] = {above_stdio(in[0]), above_stdio(out[1]), above_stdio(err[1])};
  status[1] = above_stdio(status[1]);

  j->pid = fork();
  if (j->pid == 0)
    child(s, fds, status[1]);
  int fork_errno = errno;
  for (int i = 0; i < 3; i++)
    close(fds[i]);
  close(status[1]);
  if (j->pid < 0) {
    close(status[0]);
    j->pid = 0;
    return fail(L, s->name, strerror(fork_errno), errname(fork_errno));
  }
  setpgid(j->pid, j->pid); /* also here: no race with a quick kill */
  return report_start(L, s, j, status[0]);
}

/* Capture --------------------------------------------------------------- */

static int try_reap(struct job *j, int flags)
{
  pid_t r;
  while ((r = waitpid(j->pid, &j->status, flags)) < 0 && errno == EINTR) {
  }
  if (r == j->pid || (r < 0 && errno == ECHILD))
    j->reaped = 1;
  return j->reaped;
}

/* Keeps up to max bytes of stream i; counts the rest as cut. */
static void append(struct job *j, int i, const char *p, size_t n, size_t max)
{
  size_t take = j->len[i] >= max ? 0 : max - j->len[i];
  if (take > n)
    take = n;
  if (take < n)
    j->cut[i] = 1;
  if (j->len[i] + take > j->cap[i]) {
    size_t cap = j->cap[i] ? j->cap[i] : 4096;
    while (cap < j->len[i] + take)
      cap *= 2;
    char *grown = realloc(j->buf[i], cap);
    if (!grown) {
      j->cut[i] = 1;
      return;
    }
    j->buf[i] = grown;
    j->cap[i] = cap;
  }
  memcpy(j->buf[i] + j->len[i], p, take);
  j->len[i] += take;
}

static void pump_in(const struct spec *s, struct job *j)
{
  size_t left = s->inlen - j->inoff;
  ssize_t n = write(j->fd[0], s->in + j->inoff, left > 65536 ? 65536 : left);
  if (n > 0)
    j->inoff += (size_t)n;
  if (j->inoff == s->inlen || (n < 0 && errno != EAGAIN && errno != EINTR))
    close_fd(&j->fd[0]);
}

static void pump_out(const struct spec *s, struct job *j, int i)
{
  char chunk[65536];
  ssize_t n = read(j->fd[i + 1], chunk, sizeof chunk);
  if (n > 0)
    append(j, i, chunk, (size_t)n, s->max_output);
  else if (n == 0 || (errno != EAGAIN && errno != EINTR))
    close_fd(&j->fd[i + 1]);
}

/* At the deadline: SIGTERM to the process group, then SIGKILL after a
 * grace period, then stop waiting for pipes that escaped processes may
 * still hold. */
static void escalate(struct job *j, int *phase, double *deadline)
{
  if (*phase == 0) {
    kill(-j->pid, SIGTERM);
    j->timed_out = 1;
    *deadline = now() + KILL_GRACE;
  } else if (*phase == 1) {
    kill(-j->pid, SIGKILL);
    *deadline = now() + 1.0;
  } else {
    for (int i = 0; i < 3; i++)
      close_fd(&j->fd[i]);
    *deadline = 0;
  }
  (*phase)++;
}

/* Milliseconds to wait in poll(), -1 for ever. */
static int wait_ms(double deadline, int open)
{
  int ms = -1;
  if (deadline > 0) {
    double left = deadline - now();
    ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
  }
  if (!open && (ms < 0 || ms > 10))
    ms = 10; /* only the child's exit is left to notice */
  return ms;
}

/* Feeds stdin and reads stdout and stderr until both reach their end and
 * the child is reaped, or the deadline passes. */
static void pump(const struct spec *s, struct job *j)
{
  double deadline = s->timeout > 0 ? now() + s->timeout : 0;
  int phase = 0;
  for (;;) {
    struct pollfd pfd[3];
    int n = 0, open = j->fd[0] >= 0 || j->fd[1] >= 0 || j->fd[2] >= 0;
    if (!j->reaped)
      try_reap(j, WNOHANG);
    if (!open && (j->reaped || (deadline <= 0 && try_reap(j, 0))))
      break;
    for (int i = 0; i < 3; i++)
      if (j->fd[i] >= 0)
        pfd[n++] = (struct pollfd){j->fd[i], i ? POLLIN : POLLOUT, 0};

    if (poll(pfd, (nfds_t)n, wait_ms(deadline, open)) > 0) {
      for (int k = 0; k < n; k++) {
        if (!pfd[k].revents)
          continue;
        if (pfd[k].fd == j->fd[0])
          pump_in(s, j);
        else
          pump_out(s, j, pfd[k].fd == j->fd[1] ? 0 : 1);
      }
    }
    if (deadline > 0 && now() >= deadline)
      escalate(j, &phase, &deadline);
  }
}

/* Runs pump() with SIGPIPE blocked, so a child that stops reading its
 * stdin makes write() fail with EPIPE instead of killing us. */
static void capture(const struct spec *s, struct job *j)
{
  sigset_t pipeset, old, pending;
  sigemptyset(&pipeset);
  sigaddset(&pipeset, SIGPIPE);
  sigprocmask(SIG_BLOCK, &pipeset, &old);
  if (j->fd[0] >= 0) {
    fcntl(j->fd[0], F_SETFL, fcntl(j->fd[0], F_GETFL) | O_NONBLOCK);
    if (s->inlen == 0)
      close_fd(&j->fd[0]);
  }

  pump(s, j);

  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
    struct timespec zero = {0, 0};
    sigtimedwait(&pipeset, NULL, &zero);
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
}

static void set_bool(lua_State *L, const char *k, int v)
{
  lua_pushboolean(L, v);
  lua_setfield(L, -2, k);
}

/* Pushes {retcode, stdout, stderr, pid, timed_out, signal, truncated}. */
static void push_result(lua_State *L, struct job *j)
{
  lua_createtable(L, 0, 7);
  for (int i = 0; i < 2; i++) {
    lua_pushlstring(L, j->buf[i] ? j->buf[i] : "", j->len[i]);
    lua_setfield(L, -2, i ? "stderr" : "stdout");
    free(j->buf[i]);
    j->buf[i] = NULL;
  }
  lua_pushinteger(L, j->pid);
  lua_setfield(L, -2, "pid");
  if (WIFSIGNALED(j->status)) {
    lua_pushinteger(L, 128 + WTERMSIG(j->status));
    lua_setfield(L, -2, "retcode");
    push_signal_name(L, WTERMSIG(j->status));
    lua_setfield(L, -2, "signal");
  } else {
    lua_pushinteger(L, WEXITSTATUS(j->status));
    lua_setfield(L, -2, "retcode");
  }
  set_bool(L, "timed_out", j->timed_out);
  set_bool(L, "truncated", j->cut[0] || j->cut[1]);
}

/* The functions --------------------------------------------------------- */

/* run(opts) -> result | nil, message, code */
static int l_run(lua_State *L)
{
  struct spec s;
  memset(&s, 0, sizeof s);
  luaL_checktype(L, 1, LUA_TTABLE);
  build_argv(L, &s); /* opts argvtab argv */
  build_env_map(L);  /* ... envmap */
  int map = lua_gettop(L);
  int r = resolve_ids(L, &s, map);
  if (r)
    return r;
  read_scalars(L, &s);

  if (strchr(s.argv[0], '/')) {
    lua_pushstring(L, s.argv[0]);
  } else {
    lua_getfield(L, map, "PATH");
    const char *path = lua_isstring(L, -1) ? lua_tostring(L, -1) : DEFAULT_PATH;
    if (!search_path(L, s.argv[0], path))
      return fail(L, s.name, strerror(ENOENT), "ENOENT");
  }
  s.path = lua_tostring(L, -1); /* ... envmap [PATH] path */
  lua_pushvalue(L, map);
  build_envp(L, &s); /* ... envmap list envp */

  struct job *j = new_job(L);
  r = start(L, &s, j);
  if (r)
    return r;
  capture(&s, j);
  push_result(L, j);
  return 1;
}

/* which(name[, path]) -> full path | nil */
static int l_which(lua_State *L)
{
  const char *name = luaL_checkstring(L, 1);
  const char *path = luaL_optstring(L, 2, getenv("PATH"));
  if (!search_path(L, name, path ? path : DEFAULT_PATH))
    lua_pushnil(L);
  return 1;
}

/* kill(pid[, signal]) -> true | nil, message, code */
static int l_kill(lua_State *L)
{
  lua_Integer pid = luaL_checkinteger(L, 1);
  int sig = lua_isnoneornil(L, 2) ? SIGTERM : check_signal(L, 2);
  if (kill((pid_t)pid, sig) < 0) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "kill %I: %s", pid, strerror(e));
    lua_pushstring(L, errname(e));
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* signal_number(name) -> integer | nil */
static int l_signal_number(lua_State *L)
{
  int sig = signal_by_name(luaL_checkstring(L, 1));
  if (sig)
    lua_pushinteger(L, sig);
  else
    lua_pushnil(L);
  return 1;
}

/* signal_name(number) -> "SIGTERM" | nil */
static int l_signal_name(lua_State *L)
{
  lua_Integer sig = luaL_checkinteger(L, 1);
  if (sig > 0 && sig < NSIG && sigabbrev_np((int)sig))
    push_signal_name(L, (int)sig);
  else
    lua_pushnil(L);
  return 1;
}

int brine__open_proc(lua_State *L)
{
  static const luaL_Reg funcs[] = {{"run", l_run},
                                   {"which", l_which},
                                   {"kill", l_kill},
                                   {"signal_number", l_signal_number},
                                   {"signal_name", l_signal_name},
                                   {NULL, NULL}};
  luaL_newmetatable(L, JOB_MT);
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, job_gc);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
