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

int brine__open_data(lua_State *L);

#endif
