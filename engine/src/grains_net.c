/* The network grains: the host's names (localhost, fqdn, host, domain),
 * its addresses (ip_interfaces, ip4_interfaces, ip6_interfaces,
 * hwaddr_interfaces, ipv4, ipv6, fqdn_ip4, fqdn_ip6), its default
 * gateways (ip_gw, ip4_gw, ip6_gw) and its resolver (dns). Names resolve
 * from the hosts file when it knows them, else through getaddrinfo with a
 * time bound; interfaces come from getifaddrs. */
#include "grains.h"

#include "data.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <lauxlib.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- addresses ----------------------------------------------------------- */

struct addrs {
  int n, cap;
  int family;
  unsigned char (*a)[16];
};

static void addrs_add(struct addrs *s, const void *addr)
{
  size_t len = s->family == AF_INET ? 4 : 16;
  for (int i = 0; i < s->n; i++)
    if (memcmp(s->a[i], addr, len) == 0)
      return;
  if (s->n == s->cap) {
    int cap = s->cap * 2 + 8;
    void *more = realloc(s->a, (size_t)cap * 16);
    if (!more)
      return;
    s->a = more;
    s->cap = cap;
  }
  memset(s->a[s->n], 0, 16);
  memcpy(s->a[s->n++], addr, len);
}

static int cmp16(const void *a, const void *b)
{
  return memcmp(a, b, 16);
}

/* Pushes the addresses as a sorted array of strings (Salt sorts ipv4 and
 * ipv6 by value; we sort fqdn_ip4/6 too, where Salt's order is a set's). */
static void addrs_push(lua_State *L, struct addrs *s)
{
  if (s->n)
    qsort(s->a, (size_t)s->n, 16, cmp16);
  brine__new_array(L, s->n);
  for (int i = 0; i < s->n; i++) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(s->family, s->a[i], text, sizeof text);
    lua_pushstring(L, text);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- the hosts file ------------------------------------------------------ */

/* Calls fn for every line of the hosts file naming `name` (any case). */
static int hosts_each(struct brine__grains *g, const char *name,
                      void (*fn)(void *, const char *addr, const char *canon),
                      void *ctx)
{
  char *text = brine__grains_slurp(g, "/etc/hosts", NULL);
  int hits = 0;
  for (char *save, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    line[strcspn(line, "#")] = '\0';
    char *ws, *addr = strtok_r(line, " \t\r", &ws);
    char *canon = addr ? strtok_r(NULL, " \t\r", &ws) : NULL;
    for (char *n = canon; n; n = strtok_r(NULL, " \t\r", &ws))
      if (strcasecmp(n, name) == 0) {
        fn(ctx, addr, canon);
        hits++;
        break;
      }
  }
  free(text);
  return hits;
}

struct canon_ctx {
  char *out;
  size_t n;
  int done;
};

static void take_canon(void *p, const char *addr, const char *canon)
{
  struct canon_ctx *c = p;
  (void)addr;
  if (!c->done)
    snprintf(c->out, c->n, "%s", canon);
  c->done = 1;
}

static void take_addr(void *p, const char *addr, const char *canon)
{
  struct addrs *s = p;
  unsigned char buf[16];
  (void)canon;
  if (inet_pton(s->family, addr, buf) == 1)
    addrs_add(s, buf);
}

/* ---- bounded getaddrinfo ------------------------------------------------- */

/* getaddrinfo that gives up after ms milliseconds (a lookup that leaves
 * the host can hang for the resolver's whole timeout). Returns 0 and
 * *res, or an EAI_* code. A lookup still running at the deadline is left
 * to finish on its own; its request is not freed. */
static int bounded_getaddrinfo(const char *name, int family, int flags, int ms,
                               struct addrinfo **res)
{
  struct {
    struct gaicb cb;
    struct addrinfo hints;
    char name[256];
  } *req = calloc(1, sizeof *req);
  if (!req)
    return EAI_MEMORY;
  snprintf(req->name, sizeof req->name, "%s", name);
  req->hints.ai_family = family;
  req->hints.ai_flags = flags;
  req->hints.ai_socktype = SOCK_STREAM;
  req->cb.ar_name = req->name;
  req->cb.ar_request = &req->hints;
  struct gaicb *list[1] = {&req->cb};
  if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
    free(req);
    return EAI_SYSTEM;
  }
  struct timespec end, now;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (end.tv_nsec >= 1000000000L)
    end.tv_sec++, end.tv_nsec -= 1000000000L;
  while (gai_error(&req->cb) == EAI_INPROGRESS) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long left = (end.tv_sec - now.tv_sec) * 1000000000L
                + (end.tv_nsec - now.tv_nsec);
    if (left <= 0)
      break;
    struct timespec wait = {left / 1000000000L, left % 1000000000L};
    gai_suspend((const struct gaicb *const *)list, 1, &wait);
  }
  int rc = gai_error(&req->cb);
  if (rc == EAI_INPROGRESS) {
    if (gai_cancel(&req->cb) == EAI_CANCELED)
      free(req);
    return EAI_AGAIN;
  }
  *res = req->cb.ar_result;
  free(req);
  return rc;
}

/* ---- names --------------------------------------------------------------- */

/* Salt's get_fqhostname: the canonical name getaddrinfo gives the host
 * name, else the host name itself. */
static void fqdn_of(struct brine__grains *g, const char *host, char *out,
                    size_t n)
{
  struct canon_ctx c = {out, n, 0};
  snprintf(out, n, "%s", host);
  if (hosts_each(g, host, take_canon, &c) || !g->real || g->resolve_ms <= 0)
    return;
  struct addrinfo *res = NULL;
  if (bounded_getaddrinfo(host, AF_UNSPEC, AI_CANONNAME, g->resolve_ms, &res) ==
      0) {
    for (struct addrinfo *a = res; a; a = a->ai_next)
      if (a->ai_canonname && *a->ai_canonname) {
        snprintf(out, n, "%s", a->ai_canonname);
        break;
      }
    freeaddrinfo(res);
  }
}

/* The fqdn's addresses of one family: from the hosts file when it names
 * the fqdn, else from a bounded getaddrinfo. */
static void fqdn_ips(struct brine__grains *g, const char *fqdn, int family,
                     int known, struct addrs *out)
{
  out->family = family;
  if (known) {
    hosts_each(g, fqdn, take_addr, out);
    return;
  }
  struct addrinfo *res = NULL;
  if (!g->real || g->resolve_ms <= 0
      || bounded_getaddrinfo(fqdn, family, 0, g->resolve_ms, &res) != 0)
    return;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET && family == AF_INET)
      addrs_add(out, &((struct sockaddr_in *)a->ai_addr)->sin_addr);
    else if (a->ai_family == AF_INET6 && family == AF_INET6)
      addrs_add(out, &((struct sockaddr_in6 *)a->ai_addr)->sin6_addr);
  }
  freeaddrinfo(res);
}

static void ignore(void *p, const char *a, const char *c)
{
  (void)p, (void)a, (void)c;
}

/* ---- interfaces ---------------------------------------------------------- */

/* Returns the record table of interface `name` in the table at idx,
 * creating it: { inet = array, inet6 = array [, hwaddr = string] }. */
static void push_iface(lua_State *L, int idx, const char *name)
{
  char base[IF_NAMESIZE + 8];
  snprintf(base, sizeof base, "%.*s", (int)strcspn(name, ":"), name);
  if (lua_getfield(L, idx, base) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  brine__new_array(L, 2);
  lua_setfield(L, -2, "inet");
  brine__new_array(L, 2);
  lua_setfield(L, -2, "inet6");
  lua_pushvalue(L, -1);
  lua_setfield(L, idx, base);
}

static void add_address(lua_State *L, const char *field, int family,
                        const void *addr)
{
  char text[INET6_ADDRSTRLEN];
  inet_ntop(family, addr, text, sizeof text);
  lua_getfield(L, -1, field);
  lua_pushstring(L, text);
  brine__grains_append(L, -2);
  lua_pop(L, 1);
}

/* Reads getifaddrs into a table of interface records (pushed) and the
 * host's IPv4 and IPv6 addresses. */
static void read_interfaces(lua_State *L, struct addrs *v4, struct addrs *v6)
{
  lua_newtable(L);
  int t = lua_gettop(L);
  struct ifaddrs *list = NULL;
  if (getifaddrs(&list) != 0)
    return;
  for (struct ifaddrs *i = list; i; i = i->ifa_next) {
    push_iface(L, t, i->ifa_name);
    int fam = i->ifa_addr ? i->ifa_addr->sa_family : AF_UNSPEC;
    if (fam == AF_INET) {
      const void *a = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
      add_address(L, "inet", AF_INET, a);
      addrs_add(v4, a);
    } else if (fam == AF_INET6) {
      const void *a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
      add_address(L, "inet6", AF_INET6, a);
      addrs_add(v6, a);
    } else if (fam == AF_PACKET) {
      const struct sockaddr_ll *ll = (const struct sockaddr_ll *)i->ifa_addr;
      char hw[3 * 8 + 1] = "";
      size_t pos = 0;
      for (int k = 0; k < ll->sll_halen && k < 8; k++)
        pos += (size_t)snprintf(hw + pos, sizeof hw - pos, k ? ":%02x" : "%02x",
                                ll->sll_addr[k]);
      if (ll->sll_halen) {
        lua_pushstring(L, hw);
        lua_setfield(L, -2, "hwaddr");
      }
    }
    lua_pop(L, 1);
  }
  freeifaddrs(list);
}

/* Copies the elements of array src (at idx) to the end of the array on
 * top of the stack. */
static void append_all(lua_State *L, int src)
{
  for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, src); k++) {
    lua_rawgeti(L, src, k);
    brine__grains_append(L, -2);
  }
}

static void interface_grains(struct brine__grains *g, struct addrs *v4,
                             struct addrs *v6)
{
  lua_State *L = g->L;
  read_interfaces(L, v4, v6);                   /* ifs */
  int t = lua_gettop(L);
  lua_newtable(L);                              /* ifs ip */
  lua_newtable(L);                              /* ifs ip ip4 */
  lua_newtable(L);                              /* ifs ip ip4 ip6 */
  lua_newtable(L);                              /* ifs ip ip4 ip6 hw */
  lua_pushnil(L);
  while (lua_next(L, t)) {                      /* ... name rec */
    int rec = lua_gettop(L);
    const char *name = lua_tostring(L, rec - 1);
    lua_getfield(L, rec, "inet");
    lua_getfield(L, rec, "inet6");              /* ... rec inet inet6 */
    brine__new_array(L, 0);
    append_all(L, rec + 1);
    append_all(L, rec + 2);
    lua_setfield(L, t + 1, name);
    lua_pushvalue(L, rec + 1);
    lua_setfield(L, t + 2, name);
    lua_pushvalue(L, rec + 2);
    lua_setfield(L, t + 3, name);
    if (lua_getfield(L, rec, "hwaddr") == LUA_TSTRING)
      lua_setfield(L, t + 4, name);
    else
      lua_pop(L, 1);
    lua_settop(L, rec - 1);
  }
  brine__grains_set_top(g, "hwaddr_interfaces");
  brine__grains_set_top(g, "ip6_interfaces");
  brine__grains_set_top(g, "ip4_interfaces");
  brine__grains_set_top(g, "ip_interfaces");
  lua_pop(L, 1);
}

/* ---- gateways ------------------------------------------------------------ */

#define RTF_UP_ 0x0001
#define RTF_GATEWAY_ 0x0002
#define RTF_REJECT_ 0x0200

/* Pushes the first default IPv4 route's gateway (a string), true for a
 * default route without one, or false. */
static void push_gw4(struct brine__grains *g)
{
  char *text = brine__grains_slurp(g, "/proc/net/route", NULL);
  int found = 0;
  for (char *save, *line = text ? strtok_r(text, "\n", &save) : NULL;
       line && !found; line = strtok_r(NULL, "\n", &save)) {
    char ifname[64];
    unsigned long dest, gw, flags, mask;
    if (sscanf(line, "%63s %lx %lx %lx %*s %*s %*s %lx", ifname, &dest, &gw,
               &flags, &mask) != 5 ||
        dest != 0 || mask != 0 || !(flags & RTF_UP_) || (flags & RTF_REJECT_))
      continue;
    found = 1;
    if ((flags & RTF_GATEWAY_) && gw) {
      uint32_t raw = (uint32_t)gw;
      char addr[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &raw, addr, sizeof addr);
      lua_pushstring(g->L, addr);
    } else {
      lua_pushboolean(g->L, 1);
    }
  }
  free(text);
  if (!found)
    lua_pushboolean(g->L, 0);
}

static int hex16(const char *s, unsigned char out[16])
{
  for (int i = 0; i < 16; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1)
      return 0;
    out[i] = (unsigned char)v;
  }
  return 1;
}

/* The same for IPv6, from /proc/net/ipv6_route. */
static void push_gw6(struct brine__grains *g)
{
  char *text = brine__grains_slurp(g, "/proc/net/ipv6_route", NULL);
  int found = 0;
  for (char *save, *line = text ? strtok_r(text, "\n", &save) : NULL;
       line && !found; line = strtok_r(NULL, "\n", &save)) {
    char dest[33], hop[33];
    unsigned plen, flags;
    unsigned char d[16], h[16];
    if (sscanf(line, "%32s %x %*s %*s %32s %*s %*s %*s %x", dest, &plen, hop,
               &flags) != 4
        || !hex16(dest, d) || !hex16(hop, h) || plen != 0
        || !(flags & RTF_UP_) || (flags & RTF_REJECT_))
      continue;
    static const unsigned char zero[16];
    if (memcmp(d, zero, 16) != 0)
      continue;
    found = 1;
    if ((flags & RTF_GATEWAY_) && memcmp(h, zero, 16) != 0) {
      char addr[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, h, addr, sizeof addr);
      lua_pushstring(g->L, addr);
    } else {
      lua_pushboolean(g->L, 1);
    }
  }
  free(text);
  if (!found)
    lua_pushboolean(g->L, 0);
}

static void gateway_grains(struct brine__grains *g)
{
  lua_State *L = g->L;
  push_gw4(g);
  int v4 = lua_toboolean(L, -1);
  brine__grains_set_top(g, "ip4_gw");
  push_gw6(g);
  int v6 = lua_toboolean(L, -1);
  brine__grains_set_top(g, "ip6_gw");
  brine__grains_set_bool(g, "ip_gw", v4 || v6);
}

/* ---- resolver ------------------------------------------------------------ */

static int array_has(lua_State *L, int idx, const char *s)
{
  for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
    lua_rawgeti(L, idx, i);
    int same = strcmp(lua_tostring(L, -1), s) == 0;
    lua_pop(L, 1);
    if (same)
      return 1;
  }
  return 0;
}

static void add_unique(lua_State *L, int idx, const char *s)
{
  if (array_has(L, idx, s))
    return;
  lua_pushstring(L, s);
  brine__grains_append(L, idx);
}

/* A nameserver address in Python's ipaddress form; returns its version
 * (4 or 6) or 0 when it is not an address. */
static int nameserver(const char *arg, char *out, size_t n)
{
  unsigned char buf[16];
  char addr[128];
  snprintf(addr, sizeof addr, "%s", arg);
  char *scope = strchr(addr, '%');
  if (scope)
    *scope++ = '\0';
  if (!scope && inet_pton(AF_INET, addr, buf) == 1) {
    inet_ntop(AF_INET, buf, out, (socklen_t)n);
    return 4;
  }
  if (inet_pton(AF_INET6, addr, buf) != 1)
    return 0;
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, buf, text, sizeof text);
  snprintf(out, n, scope ? "%s%%%s" : "%s", text, scope);
  return 6;
}

/* A sortlist entry as Python's ip_network(...).with_netmask; the natural
 * class mask when none is given. Returns 0 for what Salt rejects. */
static int sortlist_entry(const char *arg, char *out, size_t n)
{
  char addr[64];
  snprintf(addr, sizeof addr, "%s", arg);
  char *slash = strchr(addr, '/');
  if (slash)
    *slash++ = '\0';
  struct in_addr ip, mask;
  if (inet_pton(AF_INET, addr, &ip) != 1)
    return 0;
  uint32_t h = ntohl(ip.s_addr), m;
  if (!slash) {
    int bits = (h >> 30) == 3 ? 24 : (h >> 31) == 1 ? 16 : 8;
    m = 0xffffffffu << (32 - bits);
    h &= m;
  } else if (inet_pton(AF_INET, slash, &mask) == 1) {
    m = ntohl(mask.s_addr);
    if (~m & (~m + 1))                          /* not a contiguous mask */
      return 0;
  } else {
    char *end;
    long bits = strtol(slash, &end, 10);
    if (*end || end == slash || bits < 0 || bits > 32)
      return 0;
    m = bits ? 0xffffffffu << (32 - bits) : 0;
  }
  if (h & ~m)                                   /* host bits set: strict */
    return 0;
  struct in_addr net = {htonl(h)}, nm = {htonl(m)};
  char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &net, a, sizeof a);
  inet_ntop(AF_INET, &nm, b, sizeof b);
  snprintf(out, n, "%s/%s", a, b);
  return 1;
}

/* Salt's parse_resolv, one directive line at a time; words after a word
 * starting with # or ; are a comment. */
static void resolv_line(lua_State *L, int base, char *line)
{
  char *words[64];
  int n = 0;
  for (char *save, *w = strtok_r(line, " \t\r", &save); w && n < 64;
       w = strtok_r(NULL, " \t\r", &save))
    words[n++] = w;
  if (n < 1)
    return;
  int args = 0;
  while (1 + args < n && words[1 + args][0] != '#' && words[1 + args][0] != ';')
    args++;
  for (char *c = words[0]; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  const char *d = words[0];
  char text[128];
  if (args < 1 && strcmp(d, "search") != 0)
    return;
  if (strcmp(d, "nameserver") == 0) {
    int v = nameserver(words[1], text, sizeof text);
    if (v) {
      add_unique(L, base, text);
      add_unique(L, v == 4 ? base + 1 : base + 2, text);
    }
  } else if (strcmp(d, "domain") == 0) {
    lua_pushstring(L, words[1]);
    lua_replace(L, base + 5);
  } else if (strcmp(d, "search") == 0) {
    brine__new_array(L, args);
    for (int i = 0; i < args; i++) {
      lua_pushstring(L, words[1 + i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, base + 3);
  } else if (strcmp(d, "sortlist") == 0) {
    for (int i = 0; i < args; i++)
      if (sortlist_entry(words[1 + i], text, sizeof text))
        add_unique(L, base + 4, text);
  } else if (strcmp(d, "options") == 0) {
    add_unique(L, base + 6, words[1]);
  }
}

static void dns_grain(struct brine__grains *g)
{
  lua_State *L = g->L;
  const char *file = brine__grains_exists(g, "/run/systemd/resolve/resolv.conf")
                     ? "/run/systemd/resolve/resolv.conf" : "/etc/resolv.conf";
  char *text = brine__grains_slurp(g, file, NULL);
  if (!text)
    return;
  int base = lua_gettop(L) + 1;
  for (int i = 0; i < 7; i++) {                 /* ns ip4 ip6 search sort */
    if (i == 5)                                 /* domain options */
      lua_pushliteral(L, "");
    else
      brine__new_array(L, 0);
  }
  for (char *save, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    resolv_line(L, base, line);
  free(text);
  static const char *const keys[] = {"nameservers", "ip4_nameservers",
                                     "ip6_nameservers", "search", "sortlist",
                                     "domain", "options"};
  lua_createtable(L, 0, 7);
  for (int i = 0; i < 7; i++) {
    lua_pushvalue(L, base + i);
    lua_setfield(L, -2, keys[i]);
  }
  brine__grains_set_top(g, "dns");
  lua_settop(L, base - 1);
}

/* ---- the group ----------------------------------------------------------- */

void brine__grains_net(struct brine__grains *g)
{
  lua_State *L = g->L;
  const char *host = g->hostname ? g->hostname : g->uts.nodename;
  char fqdn[1024];
  brine__grains_set_str(g, "localhost", host);
  fqdn_of(g, host, fqdn, sizeof fqdn);
  brine__grains_set_str(g, "fqdn", fqdn);
  size_t dot = strcspn(fqdn, ".");
  lua_pushlstring(L, fqdn, dot);
  brine__grains_set_top(g, "host");
  brine__grains_set_str(g, "domain", fqdn[dot] ? fqdn + dot + 1 : "");

  struct addrs v4 = {.family = AF_INET}, v6 = {.family = AF_INET6};
  interface_grains(g, &v4, &v6);
  struct addrs f4 = {.family = AF_INET}, f6 = {.family = AF_INET6};
  int known = hosts_each(g, fqdn, ignore, NULL) > 0;
  if (v4.n)
    fqdn_ips(g, fqdn, AF_INET, known, &f4);
  if (v6.n)
    fqdn_ips(g, fqdn, AF_INET6, known, &f6);
  addrs_push(L, &v4);
  brine__grains_set_top(g, "ipv4");
  addrs_push(L, &v6);
  brine__grains_set_top(g, "ipv6");
  addrs_push(L, &f4);
  brine__grains_set_top(g, "fqdn_ip4");
  addrs_push(L, &f6);
  brine__grains_set_top(g, "fqdn_ip6");
  free(v4.a), free(v6.a), free(f4.a), free(f6.a);

  gateway_grains(g);
  dns_grain(g);
}
