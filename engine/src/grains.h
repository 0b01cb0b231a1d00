/* The core grains' internal interface: the collection context that every
 * group of grains (grains_os.c, grains_hw.c, grains_net.c and the process
 * and misc grains in grains.c) writes into, and the small helpers they
 * share for reading files below the chosen root. */
#ifndef BRINE_GRAINS_H
#define BRINE_GRAINS_H

#include <lua.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/utsname.h>

/* One collection: the Lua table that receives grains, the root every file
 * path is read under, and the options the caller gave. */
struct brine__grains {
  lua_State *L;
  int out;               /* abs stack index of the plain table of grains */
  const char *root;      /* prefix for every path: "" when root is "/" */
  int real;              /* 1 when root is "/": system calls apply */
  const char *id;        /* the minion id, or NULL */
  const char *hostname;  /* a hostname that replaces the system's, or NULL */
  int resolve_ms;        /* bound on a name lookup that leaves the host */
  struct utsname uts;    /* uname(), or its fixture files under root */
};

/* Fills g->uts: uname() when g->real, else the files
 * proc/sys/kernel/{ostype,hostname,osrelease,version,arch} under the root
 * (a missing file keeps the running system's value). */
void brine__grains_uname(struct brine__grains *g);

/* Writes root + rel into out; returns out, or NULL when it does not fit. */
char *brine__grains_path(const struct brine__grains *g, const char *rel,
                         char *out, size_t n);

/* Reads rel (below the root) into buf, at most n - 1 bytes, NUL-terminated.
 * Returns the length or -1 with errno set. */
ssize_t brine__grains_read(const struct brine__grains *g, const char *rel,
                           char *buf, size_t n);

/* Reads all of rel into a malloc'd, NUL-terminated buffer (for /proc files
 * whose size stat does not tell). Returns NULL with errno set on failure. */
char *brine__grains_slurp(const struct brine__grains *g, const char *rel,
                          size_t *len);

/* Like brine__grains_read, then trims white space at both ends. Returns the
 * trimmed string inside buf, or NULL when the file cannot be read. */
char *brine__grains_read_line(const struct brine__grains *g, const char *rel,
                              char *buf, size_t n);

int brine__grains_exists(const struct brine__grains *g, const char *rel);
int brine__grains_is_dir(const struct brine__grains *g, const char *rel);
int brine__grains_is_file(const struct brine__grains *g, const char *rel);

/* Finds an executable the way `which` would on a stock PATH, below the
 * root; writes its path (without the root) into out. Returns 1 if found. */
int brine__grains_which(const struct brine__grains *g, const char *name,
                        char *out, size_t n);

/* Trims ASCII white space in place; returns the new start. */
char *brine__grains_trim(char *s);

/* Setting grains: each pops nothing and sets out[key]. */
void brine__grains_set_str(struct brine__grains *g, const char *key,
                           const char *value);
void brine__grains_set_int(struct brine__grains *g, const char *key,
                           lua_Integer value);
void brine__grains_set_bool(struct brine__grains *g, const char *key,
                            int value);
/* Pops the value on top of the stack into out[key]. */
void brine__grains_set_top(struct brine__grains *g, const char *key);
/* Pushes out[key] (nil when unset) and returns its Lua type. */
int brine__grains_get(struct brine__grains *g, const char *key);
/* Copies out[key] when it is a string into buf; returns buf or NULL. */
const char *brine__grains_get_str(struct brine__grains *g, const char *key,
                                  char *buf, size_t n);

/* Pushes a new array (brine.array) holding the given strings. */
void brine__grains_push_strings(lua_State *L, const char *const *items,
                                int count);
/* Appends the value on top of the stack to the array at idx. */
void brine__grains_append(lua_State *L, int idx);

/* The groups of grains. Each sets its grains in g->out. */
void brine__grains_os(struct brine__grains *g);
void brine__grains_hw(struct brine__grains *g);
void brine__grains_net(struct brine__grains *g);

#endif
