/* brine.zmq: the ZeroMQ binding that master, minions and local clients
 * talk through. libzmq is not linked into brine: the first
 * `require "brine.zmq"` dlopen()s libzmq.so.5 and resolves the functions
 * below into one table, so commands that never touch the wire (the local
 * call path) do not pay for loading it. <zmq.h> is used for constants and
 * types only.
 *
 * Owns three userdata types: a context, a socket and nothing else (a
 * message lives only inside one call). Sockets keep their context alive;
 * a context closed while sockets are open is shut down and terminated
 * when its last socket closes. Closing twice is safe. Errors caused by
 * the world return nil, message, code (code: "EAGAIN", "EINTR", ...). */
#include <lauxlib.h>
#include <lua.h>

#include <dlfcn.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define CTX_MT "brine.zmq.context"
#define SOCK_MT "brine.zmq.socket"
#define MAX_POLL 64
#define DEFAULT_MAX_FRAMES 32

/* The functions resolved from libzmq, in one table. */
#define ZMQ_FUNCS(X)                                                           \
  X(void *, zmq_ctx_new, (void))                                               \
  X(int, zmq_ctx_term, (void *))                                               \
  X(int, zmq_ctx_shutdown, (void *))                                           \
  X(int, zmq_ctx_set, (void *, int, int))                                      \
  X(void *, zmq_socket, (void *, int))                                         \
  X(int, zmq_close, (void *))                                                  \
  X(int, zmq_setsockopt, (void *, int, const void *, size_t))                  \
  X(int, zmq_getsockopt, (void *, int, void *, size_t *))                      \
  X(int, zmq_bind, (void *, const char *))                                     \
  X(int, zmq_connect, (void *, const char *))                                  \
  X(int, zmq_unbind, (void *, const char *))                                   \
  X(int, zmq_disconnect, (void *, const char *))                               \
  X(int, zmq_msg_init, (zmq_msg_t *))                                          \
  X(int, zmq_msg_init_size, (zmq_msg_t *, size_t))                             \
  X(void *, zmq_msg_data, (zmq_msg_t *))                                       \
  X(size_t, zmq_msg_size, (const zmq_msg_t *))                                 \
  X(int, zmq_msg_close, (zmq_msg_t *))                                         \
  X(int, zmq_msg_send, (zmq_msg_t *, void *, int))                             \
  X(int, zmq_msg_recv, (zmq_msg_t *, void *, int))                             \
  X(int, zmq_msg_more, (const zmq_msg_t *))                                    \
  X(const char *, zmq_msg_gets, (const zmq_msg_t *, const char *))             \
  X(int, zmq_msg_get, (const zmq_msg_t *, int))                                \
  X(int, zmq_poll, (zmq_pollitem_t *, int, long))                              \
  X(int, zmq_errno, (void))                                                    \
  X(const char *, zmq_strerror, (int))                                         \
  X(int, zmq_curve_keypair, (char *, char *))                                  \
  X(int, zmq_curve_public, (char *, const char *))                             \
  X(char *, zmq_z85_encode, (char *, const uint8_t *, size_t))                 \
  X(uint8_t *, zmq_z85_decode, (uint8_t *, const char *))                      \
  X(int, zmq_socket_monitor, (void *, const char *, int))                      \
  X(void, zmq_version, (int *, int *, int *))

#define DECLARE(ret, name, args) ret(*name) args;
static struct {
  ZMQ_FUNCS(DECLARE)
} z;
#undef DECLARE
static void *libzmq;

struct ctx {
  void *handle;
  int sockets; /* open sockets made by this context */
  int closed;  /* close() was called; terminate with the last socket */
};

struct sock {
  void *handle;
  struct ctx *ctx;
  int type;
};

/* ---- errors ---------------------------------------------------------- */

static const char *errno_name(int err)
{
  switch (err) {
  case EAGAIN:
    return "EAGAIN";
  case EINTR:
    return "EINTR";
  case EHOSTUNREACH:
    return "EHOSTUNREACH";
  case ETERM:
    return "ETERM";
  case EFSM:
    return "EFSM";
  case EINVAL:
    return "EINVAL";
  case EADDRINUSE:
    return "EADDRINUSE";
  case EADDRNOTAVAIL:
    return "EADDRNOTAVAIL";
  case ENODEV:
    return "ENODEV";
  case EPROTONOSUPPORT:
    return "EPROTONOSUPPORT";
  case ENOTSOCK:
    return "ENOTSOCK";
  case EMSGSIZE:
    return "EMSGSIZE";
  case ENOCOMPATPROTO:
    return "ENOCOMPATPROTO";
  default:
    return NULL;
  }
}

/* Pushes nil, "WHAT: strerror", code; returns 3. */
static int fail_errno(lua_State *L, const char *what, int err)
{
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", what, z.zmq_strerror(err));
  const char *name = errno_name(err);
  if (name)
    lua_pushstring(L, name);
  else
    lua_pushinteger(L, err);
  return 3;
}

static int fail(lua_State *L, const char *what)
{
  return fail_errno(L, what, z.zmq_errno());
}

/* ---- contexts -------------------------------------------------------- */

static struct ctx *check_ctx(lua_State *L, int idx)
{
  struct ctx *c = luaL_checkudata(L, idx, CTX_MT);
  if (!c->handle || c->closed)
    luaL_error(L, "zmq context is closed");
  return c;
}

/* zmq.context() -> context | nil, message, code */
/* zmq.context([{max_sockets=N, io_threads=N}]) -> context | nil, message,
 * code. max_sockets raises libzmq's limit of 1023 sockets per context. */
static int l_context(lua_State *L)
{
  struct ctx *c = lua_newuserdatauv(L, sizeof *c, 0); /* ctx */
  memset(c, 0, sizeof *c);
  c->handle = z.zmq_ctx_new();
  if (!c->handle)
    return fail(L, "zmq context");
  luaL_setmetatable(L, CTX_MT);
  static const struct {
    const char *name;
    int option;
  } options[] = {{"max_sockets", ZMQ_MAX_SOCKETS},
                 {"io_threads", ZMQ_IO_THREADS}};
  for (size_t i = 0; lua_istable(L, 1) && i < sizeof options / sizeof *options;
       i++) {
    lua_getfield(L, 1, options[i].name); /* ctx value */
    if (!lua_isnil(L, -1) && z.zmq_ctx_set(c->handle, options[i].option,
                                           (int)luaL_checkinteger(L, -1)) != 0)
      return fail(L, options[i].name);
    lua_pop(L, 1); /* ctx */
  }
  return 1;
}

static void ctx_release(struct ctx *c)
{
  if (c->handle && c->closed && c->sockets == 0) {
    z.zmq_ctx_term(c->handle);
    c->handle = NULL;
  }
}

/* ctx:close(): terminates now, or when the last socket closes. */
static int l_ctx_close(lua_State *L)
{
  struct ctx *c = luaL_checkudata(L, 1, CTX_MT);
  if (c->handle && !c->closed) {
    c->closed = 1;
    if (c->sockets > 0)
      z.zmq_ctx_shutdown(c->handle);
    ctx_release(c);
  }
  return 0;
}

static const struct {
  const char *name;
  int type;
} socket_types[] = {{"PAIR", ZMQ_PAIR},     {"PUB", ZMQ_PUB},
                    {"SUB", ZMQ_SUB},       {"REQ", ZMQ_REQ},
                    {"REP", ZMQ_REP},       {"DEALER", ZMQ_DEALER},
                    {"ROUTER", ZMQ_ROUTER}, {"PULL", ZMQ_PULL},
                    {"PUSH", ZMQ_PUSH},     {NULL, 0}};

/* ctx:socket(TYPE) -> socket | nil, message, code. LINGER starts at 0
 * so that closing never waits for a peer that went away. */
static int l_ctx_socket(lua_State *L)
{
  struct ctx *c = check_ctx(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int type = -1;
  for (int i = 0; socket_types[i].name; i++)
    if (strcmp(socket_types[i].name, name) == 0)
      type = socket_types[i].type;
  if (type < 0)
    return luaL_argerror(L, 2,
                         lua_pushfstring(L, "unknown socket type '%s'", name));
  struct sock *s = lua_newuserdatauv(L, sizeof *s, 1);
  memset(s, 0, sizeof *s);
  s->handle = z.zmq_socket(c->handle, type);
  if (!s->handle)
    return fail(L, "zmq socket");
  int zero = 0;
  z.zmq_setsockopt(s->handle, ZMQ_LINGER, &zero, sizeof zero);
  s->ctx = c;
  s->type = type;
  c->sockets++;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1); /* the socket keeps its context alive */
  luaL_setmetatable(L, SOCK_MT);
  return 1;
}

/* ---- socket options -------------------------------------------------- */

enum opt_kind { OPT_INT, OPT_I64, OPT_BYTES, OPT_KEY, OPT_STR };

static const struct opt {
  const char *name;
  int id;
  enum opt_kind kind;
} options[] = {{"linger", ZMQ_LINGER, OPT_INT},
               {"sndhwm", ZMQ_SNDHWM, OPT_INT},
               {"rcvhwm", ZMQ_RCVHWM, OPT_INT},
               {"maxmsgsize", ZMQ_MAXMSGSIZE, OPT_I64},
               {"routing_id", ZMQ_ROUTING_ID, OPT_BYTES},
               {"router_mandatory", ZMQ_ROUTER_MANDATORY, OPT_INT},
               {"router_handover", ZMQ_ROUTER_HANDOVER, OPT_INT},
               {"tcp_keepalive", ZMQ_TCP_KEEPALIVE, OPT_INT},
               {"tcp_keepalive_idle", ZMQ_TCP_KEEPALIVE_IDLE, OPT_INT},
               {"tcp_keepalive_cnt", ZMQ_TCP_KEEPALIVE_CNT, OPT_INT},
               {"tcp_keepalive_intvl", ZMQ_TCP_KEEPALIVE_INTVL, OPT_INT},
               {"reconnect_ivl", ZMQ_RECONNECT_IVL, OPT_INT},
               {"reconnect_ivl_max", ZMQ_RECONNECT_IVL_MAX, OPT_INT},
               {"heartbeat_ivl", ZMQ_HEARTBEAT_IVL, OPT_INT},
               {"heartbeat_ttl", ZMQ_HEARTBEAT_TTL, OPT_INT},
               {"heartbeat_timeout", ZMQ_HEARTBEAT_TIMEOUT, OPT_INT},
               {"handshake_ivl", ZMQ_HANDSHAKE_IVL, OPT_INT},
               {"immediate", ZMQ_IMMEDIATE, OPT_INT},
               {"sndtimeo", ZMQ_SNDTIMEO, OPT_INT},
               {"rcvtimeo", ZMQ_RCVTIMEO, OPT_INT},
               {"curve_server", ZMQ_CURVE_SERVER, OPT_INT},
               {"curve_publickey", ZMQ_CURVE_PUBLICKEY, OPT_KEY},
               {"curve_secretkey", ZMQ_CURVE_SECRETKEY, OPT_KEY},
               {"curve_serverkey", ZMQ_CURVE_SERVERKEY, OPT_KEY},
               {"zap_domain", ZMQ_ZAP_DOMAIN, OPT_STR},
               {"subscribe", ZMQ_SUBSCRIBE, OPT_BYTES},
               {"unsubscribe", ZMQ_UNSUBSCRIBE, OPT_BYTES},
               {"fd", ZMQ_FD, OPT_INT},
               {"events", ZMQ_EVENTS, OPT_INT},
               {"rcvmore", ZMQ_RCVMORE, OPT_INT},
               {"type", ZMQ_TYPE, OPT_INT},
               {"mechanism", ZMQ_MECHANISM, OPT_INT},
               {"last_endpoint", ZMQ_LAST_ENDPOINT, OPT_STR},
               {NULL, 0, 0}};

static const struct opt *check_opt(lua_State *L, int idx)
{
  const char *name = luaL_checkstring(L, idx);
  for (int i = 0; options[i].name; i++)
    if (strcmp(options[i].name, name) == 0)
      return &options[i];
  luaL_argerror(L, idx, lua_pushfstring(L, "unknown socket option '%s'", name));
  return NULL;
}

static struct sock *check_sock(lua_State *L, int idx)
{
  struct sock *s = luaL_checkudata(L, idx, SOCK_MT);
  if (!s->handle)
    luaL_error(L, "zmq socket is closed");
  return s;
}

/* sock:setopt(name, value) -> true | nil, message, code. Keys are 40
 * characters of Z85 or 32 raw bytes; a wrong-length key raises. */
static int l_setopt(lua_State *L)
{
  struct sock *s = check_sock(L, 1);
  const struct opt *o = check_opt(L, 2);
  int rc;
  if (o->kind == OPT_INT) {
    int v = lua_isboolean(L, 3) ? lua_toboolean(L, 3)
                                : (int)luaL_checkinteger(L, 3);
    rc = z.zmq_setsockopt(s->handle, o->id, &v, sizeof v);
  } else if (o->kind == OPT_I64) {
    int64_t v = (int64_t)luaL_checkinteger(L, 3);
    rc = z.zmq_setsockopt(s->handle, o->id, &v, sizeof v);
  } else {
    size_t len;
    const char *v = luaL_checklstring(L, 3, &len);
    if (o->kind == OPT_KEY && len != 40 && len != 32)
      return luaL_argerror(L, 3,
                           "a CURVE key is 40 Z85 characters or 32 bytes");
    rc = z.zmq_setsockopt(s->handle, o->id, v, len);
  }
  if (rc != 0)
    return fail(L, lua_pushfstring(L, "setting %s", o->name));
  lua_pushboolean(L, 1);
  return 1;
}

/* sock:getopt(name) -> value | nil, message, code */
static int l_getopt(lua_State *L)
{
  struct sock *s = check_sock(L, 1);
  const struct opt *o = check_opt(L, 2);
  if (o->kind == OPT_INT) {
    int v = 0;
    size_t len = sizeof v;
    if (z.zmq_getsockopt(s->handle, o->id, &v, &len) != 0)
      return fail(L, lua_pushfstring(L, "reading %s", o->name));
    lua_pushinteger(L, v);
    return 1;
  }
  if (o->kind == OPT_I64) {
    int64_t v = 0;
    size_t len = sizeof v;
    if (z.zmq_getsockopt(s->handle, o->id, &v, &len) != 0)
      return fail(L, lua_pushfstring(L, "reading %s", o->name));
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
  }
  char buf[256];
  size_t len = sizeof buf;
  if (o->kind == OPT_KEY)
    len = 41; /* asks libzmq for the Z85 form */
  if (z.zmq_getsockopt(s->handle, o->id, buf, &len) != 0)
    return fail(L, lua_pushfstring(L, "reading %s", o->name));
  if ((o->kind == OPT_KEY || o->kind == OPT_STR) && len > 0 && !buf[len - 1])
    len--; /* drop the terminating NUL */
  lua_pushlstring(L, buf, len);
  return 1;
}

/* ---- endpoints ------------------------------------------------------- */

static int endpoint_call(lua_State *L, int (*fn)(void *, const char *),
                         const char *what)
{
  struct sock *s = check_sock(L, 1);
  const char *ep = luaL_checkstring(L, 2);
  if (fn(s->handle, ep) != 0)
    return fail(L, lua_pushfstring(L, "%s %s", what, ep));
  lua_pushboolean(L, 1);
  return 1;
}

static int l_bind(lua_State *L)
{
  return endpoint_call(L, z.zmq_bind, "bind");
}

static int l_connect(lua_State *L)
{
  return endpoint_call(L, z.zmq_connect, "connect");
}

static int l_unbind(lua_State *L)
{
  return endpoint_call(L, z.zmq_unbind, "unbind");
}

static int l_disconnect(lua_State *L)
{
  return endpoint_call(L, z.zmq_disconnect, "disconnect");
}

/* sock:monitor(endpoint[, events]) -> true | nil, message, code. Events
 * go to a PAIR socket connected to `endpoint` (inproc://...). */
static int l_monitor(lua_State *L)
{
  struct sock *s = check_sock(L, 1);
  const char *ep = luaL_optstring(L, 2, NULL);
  int events = (int)luaL_optinteger(L, 3, 0xFFFF);
  if (z.zmq_socket_monitor(s->handle, ep, events) != 0)
    return fail(L, "monitor");
  lua_pushboolean(L, 1);
  return 1;
}

/* ---- sending and receiving ------------------------------------------- */

static int flag_opt(lua_State *L, int idx, const char *name)
{
  if (!lua_istable(L, idx))
    return 0;
  lua_getfield(L, idx, name);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

static int send_frame(struct sock *s, const char *data, size_t len, int flags)
{
  zmq_msg_t msg;
  if (z.zmq_msg_init_size(&msg, len) != 0)
    return -1;
  if (len)
    memcpy(z.zmq_msg_data(&msg), data, len);
  if (z.zmq_msg_send(&msg, s->handle, flags) < 0) {
    int err = z.zmq_errno();
    z.zmq_msg_close(&msg);
    errno = err;
    return -1;
  }
  return 0;
}

/* sock:send(string | {frames...}[, {dontwait=true}]) -> true | nil,
 * message, code. A multipart message is queued whole or not at all: the
 * first frame decides (ZeroMQ queues parts atomically). */
static int l_send(lua_State *L)
{
  struct sock *s = check_sock(L, 1);
  int base = flag_opt(L, 3, "dontwait") ? ZMQ_DONTWAIT : 0;
  if (lua_type(L, 2) == LUA_TSTRING) {
    size_t len;
    const char *data = lua_tolstring(L, 2, &len);
    if (send_frame(s, data, len, base) != 0)
      return fail_errno(L, "send", errno);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 2);
  luaL_argcheck(L, n > 0, 2, "a message needs at least one frame");
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_argerror(L, 2, "frames must be strings");
    lua_pop(L, 1);
  }
  for (lua_Integer i = 1; i <= n; i++) {
    size_t len;
    lua_geti(L, 2, i);
    const char *data = lua_tolstring(L, -1, &len);
    int flags = base | (i < n ? ZMQ_SNDMORE : 0);
    if (send_frame(s, data, len, i > 1 ? flags & ~ZMQ_DONTWAIT : flags) != 0)
      return fail_errno(L, "send", errno);
    lua_pop(L, 1);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Sets meta[field] = the message property, when the message has it. */
static void push_property(lua_State *L, zmq_msg_t *msg, const char *prop,
                          const char *field)
{
  const char *v = z.zmq_msg_gets(msg, prop);
  if (v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, field);
  }
}

/* sock:recv([{dontwait=true, max_frames=N}]) -> {frames...}, meta | nil,
 * message, code. meta holds user_id (the identity the ZAP handler gave
 * the sending connection), peer_address and fd (the connection's file
 * descriptor, which socket monitor events name), read from the last
 * frame. A
 * message with more than max_frames frames (default 32) is drained and
 * refused with code "EMSGSIZE". */
static int l_recv(lua_State *L)
{
  struct sock *s = check_sock(L, 1);
  int flags = flag_opt(L, 2, "dontwait") ? ZMQ_DONTWAIT : 0;
  lua_Integer max_frames = DEFAULT_MAX_FRAMES;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "max_frames");
    max_frames = luaL_optinteger(L, -1, max_frames);
    lua_pop(L, 1);
  }
  lua_newtable(L); /* frames */
  lua_Integer n = 0;
  for (;;) {
    zmq_msg_t msg;
    z.zmq_msg_init(&msg);
    if (z.zmq_msg_recv(&msg, s->handle, n ? 0 : flags) < 0) {
      int err = z.zmq_errno();
      z.zmq_msg_close(&msg);
      return fail_errno(L, "recv", err);
    }
    n++;
    if (n <= max_frames) {
      lua_pushlstring(L, z.zmq_msg_data(&msg), z.zmq_msg_size(&msg));
      lua_rawseti(L, -2, n);
    }
    int more = z.zmq_msg_more(&msg);
    if (!more) {
      lua_newtable(L); /* frames meta */
      push_property(L, &msg, "User-Id", "user_id");
      push_property(L, &msg, "Peer-Address", "peer_address");
      int fd = z.zmq_msg_get(&msg, ZMQ_SRCFD);
      if (fd >= 0) {
        lua_pushinteger(L, fd);
        lua_setfield(L, -2, "fd");
      }
    }
    z.zmq_msg_close(&msg);
    if (!more)
      break;
  }
  if (n > max_frames) {
    lua_pushnil(L);
    lua_pushfstring(L, "recv: message of %I frames, over the limit of %I", n,
                    max_frames);
    lua_pushliteral(L, "EMSGSIZE");
    return 3;
  }
  return 2;
}

/* ---- closing --------------------------------------------------------- */

static int l_sock_close(lua_State *L)
{
  struct sock *s = luaL_checkudata(L, 1, SOCK_MT);
  if (s->handle) {
    z.zmq_close(s->handle);
    s->handle = NULL;
    s->ctx->sockets--;
    ctx_release(s->ctx);
  }
  return 0;
}

static int l_ctx_gc(lua_State *L)
{
  struct ctx *c = luaL_checkudata(L, 1, CTX_MT);
  if (c->handle) {
    c->closed = 1;
    if (c->sockets > 0)
      z.zmq_ctx_shutdown(c->handle); /* sockets finalised later end it */
    ctx_release(c);
  }
  return 0;
}

static int l_sock_tostring(lua_State *L)
{
  struct sock *s = luaL_checkudata(L, 1, SOCK_MT);
  const char *type = "?";
  for (int i = 0; socket_types[i].name; i++)
    if (socket_types[i].type == s->type)
      type = socket_types[i].name;
  lua_pushfstring(L, "zmq %s socket%s", type, s->handle ? "" : " (closed)");
  return 1;
}

/* ---- polling --------------------------------------------------------- */

/* zmq.poll(items, timeout_ms) -> {[index]=true for readable items} |
 * nil, message, code. Items are sockets or file descriptors (integers);
 * a timeout below 0 waits forever. EINTR (a signal) returns nil, ...,
 * "EINTR" so the caller can look at its signals. */
static int l_poll(lua_State *L)
{
  luaL_checktype(L, 1, LUA_TTABLE);
  long timeout = (long)luaL_optinteger(L, 2, -1);
  zmq_pollitem_t items[MAX_POLL];
  lua_Integer n = luaL_len(L, 1);
  luaL_argcheck(L, n <= MAX_POLL, 1, "too many items to poll");
  for (lua_Integer i = 1; i <= n; i++) {
    zmq_pollitem_t *it = &items[i - 1];
    memset(it, 0, sizeof *it);
    it->events = ZMQ_POLLIN;
    lua_geti(L, 1, i);
    if (lua_isinteger(L, -1))
      it->fd = (int)lua_tointeger(L, -1);
    else
      it->socket = check_sock(L, -1)->handle;
    lua_pop(L, 1);
  }
  if (z.zmq_poll(items, (int)n, timeout) < 0)
    return fail(L, "poll");
  lua_newtable(L);
  for (lua_Integer i = 1; i <= n; i++) {
    if (items[i - 1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
      lua_pushboolean(L, 1);
      lua_rawseti(L, -2, i);
    }
  }
  return 1;
}

/* ---- keys ------------------------------------------------------------ */

/* zmq.curve_keypair() -> public, secret (40 Z85 characters each) */
static int l_curve_keypair(lua_State *L)
{
  char pub[41], sec[41];
  if (z.zmq_curve_keypair(pub, sec) != 0)
    return fail(L, "curve_keypair");
  lua_pushstring(L, pub);
  lua_pushstring(L, sec);
  sodium_memzero(sec, sizeof sec);
  return 2;
}

/* zmq.curve_public(secret) -> public | nil, message, code */
static int l_curve_public(lua_State *L)
{
  size_t len;
  const char *sec = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len == 40, 1, "a secret key is 40 Z85 characters");
  char pub[41];
  if (z.zmq_curve_public(pub, sec) != 0)
    return fail(L, "curve_public");
  lua_pushstring(L, pub);
  return 1;
}

/* zmq.z85_encode(bytes) -> text; the length must be a multiple of 4. */
static int l_z85_encode(lua_State *L)
{
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len % 4 == 0, 1, "length must be a multiple of 4");
  luaL_Buffer b;
  char *out = luaL_buffinitsize(L, &b, len * 5 / 4 + 1);
  z.zmq_z85_encode(out, (const uint8_t *)data, len);
  luaL_pushresultsize(&b, len * 5 / 4);
  return 1;
}

/* zmq.z85_decode(text) -> bytes | nil, message */
static int l_z85_decode(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  if (len % 5 != 0 || strlen(text) != len) {
    lua_pushnil(L);
    lua_pushliteral(L, "z85: length is not a multiple of 5");
    return 2;
  }
  luaL_Buffer b;
  uint8_t *out = (uint8_t *)luaL_buffinitsize(L, &b, len * 4 / 5 + 1);
  if (!z.zmq_z85_decode(out, text)) {
    lua_pushnil(L);
    lua_pushliteral(L, "z85: not Z85 text");
    return 2;
  }
  luaL_pushresultsize(&b, len * 4 / 5);
  return 1;
}

/* zmq.fingerprint(public) -> "ab:cd:..." (SHA-256 of the 32-byte key) |
 * nil, message */
static int l_fingerprint(lua_State *L)
{
  size_t len;
  const char *key = luaL_checklstring(L, 1, &len);
  uint8_t raw[32];
  if (len == 40 && z.zmq_z85_decode(raw, key)) {
    key = (const char *)raw;
  } else if (len != 32) {
    lua_pushnil(L);
    lua_pushliteral(L, "fingerprint: not a CURVE public key");
    return 2;
  }
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(h, (const uint8_t *)key, 32);
  char out[sizeof h * 3];
  for (size_t i = 0; i < sizeof h; i++)
    snprintf(out + i * 3, 4, "%02x%s", h[i], i + 1 < sizeof h ? ":" : "");
  lua_pushstring(L, out);
  return 1;
}

static int l_version(lua_State *L)
{
  int major, minor, patch;
  z.zmq_version(&major, &minor, &patch);
  lua_pushfstring(L, "%d.%d.%d", major, minor, patch);
  return 1;
}

/* ---- loading libzmq -------------------------------------------------- */

/* Opens libzmq once per process; raises when it or a function is missing
 * (a broken installation, not a failure of the world to report). */
static void load_libzmq(lua_State *L)
{
  if (libzmq)
    return;
  void *h = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (!h)
    luaL_error(L, "brine.zmq: cannot load libzmq.so.5: %s", dlerror());
#define RESOLVE(ret, name, args)                                               \
  *(void **)&z.name = dlsym(h, #name);                                         \
  if (!z.name) {                                                               \
    dlclose(h);                                                                \
    luaL_error(L, "brine.zmq: libzmq.so.5 lacks %s", #name);                   \
  }
  ZMQ_FUNCS(RESOLVE)
#undef RESOLVE
  libzmq = h;
}

static const luaL_Reg ctx_methods[] = {
    {"socket", l_ctx_socket}, {"close", l_ctx_close}, {NULL, NULL}};

static const luaL_Reg sock_methods[] = {
    {"setopt", l_setopt},    {"getopt", l_getopt}, {"bind", l_bind},
    {"connect", l_connect},  {"unbind", l_unbind}, {"disconnect", l_disconnect},
    {"send", l_send},        {"recv", l_recv},     {"monitor", l_monitor},
    {"close", l_sock_close}, {NULL, NULL}};

static const luaL_Reg zmq_funcs[] = {{"context", l_context},
                                     {"poll", l_poll},
                                     {"curve_keypair", l_curve_keypair},
                                     {"curve_public", l_curve_public},
                                     {"z85_encode", l_z85_encode},
                                     {"z85_decode", l_z85_decode},
                                     {"fingerprint", l_fingerprint},
                                     {"version", l_version},
                                     {NULL, NULL}};

static void new_type(lua_State *L, const char *name, const luaL_Reg *methods,
                     lua_CFunction gc, lua_CFunction tostring)
{
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

int brine__open_zmq(lua_State *L)
{
  load_libzmq(L);
  new_type(L, CTX_MT, ctx_methods, l_ctx_gc, NULL);
  new_type(L, SOCK_MT, sock_methods, l_sock_close, l_sock_tostring);
  luaL_newlib(L, zmq_funcs);
  static const struct {
    const char *name;
    int value;
  } events[] = {
      {"EVENT_CONNECTED", ZMQ_EVENT_CONNECTED},
      {"EVENT_DISCONNECTED", ZMQ_EVENT_DISCONNECTED},
      {"EVENT_HANDSHAKE_SUCCEEDED", ZMQ_EVENT_HANDSHAKE_SUCCEEDED},
      {"EVENT_HANDSHAKE_FAILED_NO_DETAIL",
       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL},
      {"EVENT_HANDSHAKE_FAILED_PROTOCOL", ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL},
      {"EVENT_HANDSHAKE_FAILED_AUTH", ZMQ_EVENT_HANDSHAKE_FAILED_AUTH},
      {"EVENT_ALL", 0xFFFF},
  };
  for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
    lua_pushinteger(L, events[i].value);
    lua_setfield(L, -2, events[i].name);
  }
  return 1;
}
