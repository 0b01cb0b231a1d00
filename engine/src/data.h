/* The data model shared by every encoder and decoder: insertion-ordered
 * maps, arrays that stay arrays when empty, and the null sentinel.
 * Lua sees it as the module brine.data; C sees these helpers. */
#ifndef BRINE_DATA_H
#define BRINE_DATA_H

#include <lua.h>

enum brine_kind {
  BRINE_NULL,
  BRINE_BOOL,
  BRINE_INT,
  BRINE_FLOAT,
  BRINE_STRING,
  BRINE_ARRAY,
  BRINE_MAP,
  BRINE_BIGINT, /* an integer beyond 64 bits (see brine__push_digits) */
  BRINE_BYTES,  /* a byte string from YAML's !!binary (brine__push_bytes) */
  BRINE_OTHER /* functions, threads, foreign userdata: not data */
};

/* Iterates a map in insertion order (or a plain table in a stable order). */
struct brine__iter {
  int table;  /* absolute stack index of the map */
  int order;  /* absolute stack index of its key list, or 0 */
  lua_Integer i;
};

void brine__push_null(lua_State *L);                  /* [-0,+1] */
int brine__is_null(lua_State *L, int idx);
void brine__new_map(lua_State *L, int nhint);         /* [-0,+1] */
void brine__map_set(lua_State *L, int map);           /* [-2,+0] k,v */
void brine__new_array(lua_State *L, int nhint);       /* [-0,+1] */
enum brine_kind brine__kind(lua_State *L, int idx);
const char *brine__kind_name(enum brine_kind kind);
/* Starts iterating the map or table at idx; pushes one helper value that
 * the caller pops when done. */
void brine__iter_start(lua_State *L, int idx, struct brine__iter *it);
/* Pushes the next key and value and returns 1, or returns 0 at the end. */
int brine__iter_next(lua_State *L, struct brine__iter *it);
/* Number of entries in a map or table. */
lua_Integer brine__count(lua_State *L, int idx);

/* Integers beyond 64 bits. One is a table of base-10^7 limbs, least
 * significant first, with a boolean field "neg" and the "brine.bigint"
 * metatable: the form the template engine computes with
 * (lua/renderers/jinja/py_bigint.lua). */
#define BRINE_BIGINT_MAX_DIGITS 4300 /* Python's int-from-text limit */
/* Pushes the integer written by the n digits at s in base (2 to 16, the
 * caller has checked them): a Lua integer when it fits in 64 bits, else a
 * big integer. Returns 0, or -1 (nothing pushed) for a decimal text longer
 * than BRINE_BIGINT_MAX_DIGITS or another one longer than 16384. */
int brine__push_digits(lua_State *L, const char *s, size_t n, int base,
                       int negative);                  /* [-0,+1] */
int brine__is_bigint(lua_State *L, int idx);
/* Pushes the decimal text of the big integer at idx. */
void brine__bigint_text(lua_State *L, int idx);        /* [-0,+1] */

/* Byte strings that are not text: YAML's !!binary, Python's bytes. One is
 * a table {s = the bytes} with the "brine.bytes" metatable, the form the
 * template engine's bytes have (lua/renderers/jinja/pyval.lua). */
void brine__push_bytes(lua_State *L, const char *s, size_t n); /* [-0,+1] */
/* The bytes of the byte string at idx (its "s"), or NULL. */
const char *brine__bytes(lua_State *L, int idx, size_t *n);

int brine__open_data(lua_State *L);

#endif
