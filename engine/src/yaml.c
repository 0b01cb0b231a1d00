/* brine.yaml: YAML loading and dumping on libyaml, resolving scalars the
 * way Salt's loader (PyYAML's YAML 1.1 resolver plus Salt's changes) does
 * and writing text the way PyYAML's safe_dump does.
 *
 * load() runs in two steps over libyaml's parser. The composer turns the
 * parser's events into a node tree (anchors resolved, depth and alias
 * expansion bounded); the constructor then walks the tree and builds Lua
 * values with the data model, applying Salt's merge-key flattening and
 * duplicate-key checks.
 * Every node and string lives in one arena owned by a userdata, so a Lua
 * error (out of memory) in the middle frees everything through __gc.
 *
 * dump() writes YAML itself, following PyYAML's representer, serializer
 * and emitter: a string that would load as something else is quoted, a
 * table met twice gets an anchor, and the layout matches safe_dump's. */
#include "data.h"
#include "modules.h"

#include <lauxlib.h>
#include <yaml.h>

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 512            /* nesting of collections, also via aliases */
#define EXPAND_FLOOR (1u << 20)  /* alias expansion allowed in any document */
#define EXPAND_FACTOR 16         /* ... and beyond that, per composed node */
#define LOADER_MT "brine.yaml.loader"
#define DUMPER_MT "brine.yaml.dumper"

/* ---- scalar resolution (YAML 1.1 implicit resolvers, as PyYAML) ---- */

enum tag {
  T_STR, T_NULL, T_BOOL, T_INT, T_FLOAT, T_TIMESTAMP, T_MERGE, T_VALUE,
  T_BINARY, T_MAP, T_OMAP, T_SET, T_SEQ, T_PAIRS, T_OTHER
};

static const char *const TAG_NAMES[] = {
  "str", "null", "bool", "int", "float", "timestamp", "merge", "value",
  "binary", "map", "omap", "set", "seq", "pairs"
};

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int one_of(const char *s, size_t n, const char *const *words)
{
  for (; *words; words++)
    if (strlen(*words) == n && memcmp(*words, s, n) == 0)
      return 1;
  return 0;
}

static int match_bool(const char *s, size_t n)
{
  static const char *const words[] = {"yes", "Yes", "YES", "no", "No", "NO",
    "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON",
    "off", "Off", "OFF", NULL};
  return one_of(s, n, words);
}

static int match_null(const char *s, size_t n)
{
  static const char *const words[] = {"", "~", "null", "Null", "NULL", NULL};
  return one_of(s, n, words);
}

/* Skips chars of the class [set]; returns the count. */
static size_t span(const char *s, size_t i, size_t n, const char *set)
{
  size_t start = i;
  while (i < n && s[i] && strchr(set, s[i]))
    i++;
  return i - start;
}

#define DIGITS "0123456789"
#define DIGITS_ "0123456789_"

/* (:[0-5]?[0-9])+ from i; returns the new index or 0 when absent. */
static size_t sexagesimal_tail(const char *s, size_t i, size_t n)
{
  size_t groups = 0;
  while (i < n && s[i] == ':') {
    size_t d = span(s, i + 1, n, DIGITS);
    if (d == 1 || (d == 2 && s[i + 1] <= '5'))
      i += 1 + d;
    else if (d > 2 && s[i + 1] <= '5')
      i += 3;  /* two digits taken; what follows must be ':' or the end */
    else
      return groups ? i : 0;
    groups++;
  }
  return groups ? i : 0;
}

static int match_int(const char *s, size_t n)
{
  size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i >= n || !is_digit(s[i]))
    return 0;
  if (s[i] == '0') {
    if (i + 1 == n)
      return 1;
    if (s[i + 1] == 'b')
      return i + 2 < n && span(s, i + 2, n, "01_") == n - i - 2;
    if (s[i + 1] == 'x')
      return i + 2 < n
        && span(s, i + 2, n, "0123456789abcdefABCDEF_") == n - i - 2;
    return span(s, i + 1, n, "01234567_") == n - i - 1;
  }
  size_t j = i + 1 + span(s, i + 1, n, DIGITS_);
  if (j == n)
    return 1;
  return sexagesimal_tail(s, j, n) == n;
}

/* [eE][-+][0-9]+ at i, to the end. */
static int exponent_tail(const char *s, size_t i, size_t n)
{
  if (i == n)
    return 1;
  if ((s[i] != 'e' && s[i] != 'E') || i + 2 >= n + 0 || (s[i + 1] != '-'
      && s[i + 1] != '+'))
    return 0;
  return span(s, i + 2, n, DIGITS) == n - i - 2 && n - i - 2 > 0;
}

static int match_float(const char *s, size_t n)
{
  static const char *const specials[] = {".inf", ".Inf", ".INF", ".nan",
    ".NaN", ".NAN", "-.inf", "-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF",
    NULL};
  if (one_of(s, n, specials))
    return 1;
  size_t i = (n && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i < n && s[i] == '.') {   /* \.[0-9][0-9_]*exp?, unsigned only */
    if (i != 0 || i + 1 >= n || !is_digit(s[i + 1]))
      return 0;
    size_t j = i + 2 + span(s, i + 2, n, DIGITS_);
    return exponent_tail(s, j, n);
  }
  if (i >= n || !is_digit(s[i]))
    return 0;
  size_t j = i + 1 + span(s, i + 1, n, DIGITS_);
  if (j < n && s[j] == ':') {
    j = sexagesimal_tail(s, j, n);
    if (!j || j >= n || s[j] != '.')
      return 0;
    return span(s, j + 1, n, DIGITS_) == n - j - 1;
  }
  if (j >= n || s[j] != '.')
    return 0;
  j = j + 1 + span(s, j + 1, n, DIGITS_);
  return exponent_tail(s, j, n);
}

static int match_timestamp(const char *s, size_t n)
{
  size_t i = 0;
  if (n < 8 || span(s, 0, 4, DIGITS) != 4 || s[4] != '-')
    return 0;
  if (n == 10 && span(s, 5, 7, DIGITS) == 2 && s[7] == '-'
      && span(s, 8, 10, DIGITS) == 2)
    return 1;
  i = 5;
  size_t d = span(s, i, n, DIGITS);
  if (d < 1 || d > 2 || i + d >= n || s[i + d] != '-')
    return 0;
  i += d + 1;
  d = span(s, i, n, DIGITS);
  if (d < 1 || d > 2)
    return 0;
  i += d;
  if (i < n && (s[i] == 'T' || s[i] == 't'))
    i++;
  else if (span(s, i, n, " \t") > 0)
    i += span(s, i, n, " \t");
  else
    return 0;
  d = span(s, i, n, DIGITS);
  if (d < 1 || d > 2 || i + d + 6 > n || s[i + d] != ':'
      || span(s, i + d + 1, i + d + 3, DIGITS) != 2 || s[i + d + 3] != ':'
      || span(s, i + d + 4, i + d + 6, DIGITS) != 2)
    return 0;
  i += d + 6;
  if (i < n && s[i] == '.')
    i += 1 + span(s, i + 1, n, DIGITS);
  i += span(s, i, n, " \t");
  if (i == n)
    return 1;
  if (s[i] == 'Z')
    return i + 1 == n;
  if (s[i] != '-' && s[i] != '+')
    return 0;
  d = span(s, i + 1, n, DIGITS);
  if (d < 1 || d > 2)
    return 0;
  i += 1 + d;
  if (i == n)
    return 1;
  return s[i] == ':' && i + 3 == n && span(s, i + 1, n, DIGITS) == 2;
}

/* The tag PyYAML's resolver gives a plain scalar. A trailing "\n" is
 * allowed as Python's `$` allows it (it matters only when dumping). */
static enum tag resolve_plain(const char *s, size_t n)
{
  if (n && s[n - 1] == '\n')
    n--;
  if (n == 0)
    return T_NULL;
  switch (s[0]) {
  case 'y': case 'Y': case 't': case 'T': case 'f': case 'F': case 'o':
  case 'O':
    return match_bool(s, n) ? T_BOOL : T_STR;
  case 'n': case 'N':
    return match_bool(s, n) ? T_BOOL : match_null(s, n) ? T_NULL : T_STR;
  case '~':
    return n == 1 ? T_NULL : T_STR;
  case '<':
    return n == 2 && s[1] == '<' ? T_MERGE : T_STR;
  case '=':
    return n == 1 ? T_VALUE : T_STR;
  case '.':
    return match_float(s, n) ? T_FLOAT : T_STR;
  case '-': case '+':
    return match_float(s, n) ? T_FLOAT : match_int(s, n) ? T_INT : T_STR;
  default:
    if (!is_digit(s[0]))
      return T_STR;
    if (match_float(s, n))
      return T_FLOAT;
    if (match_int(s, n))
      return T_INT;
    return match_timestamp(s, n) ? T_TIMESTAMP : T_STR;
  }
}

static enum tag tag_from_name(const char *name)
{
  static const char prefix[] = "tag:yaml.org,2002:";
  if (strncmp(name, prefix, sizeof prefix - 1) != 0)
    return T_OTHER;
  name += sizeof prefix - 1;
  for (int t = T_STR; t < T_OTHER; t++)
    if (strcmp(name, TAG_NAMES[t]) == 0)
      return (enum tag)t;
  return T_OTHER;
}

/* ---- Python's float repr ---- */

/* Writes repr(d) as Python does ("1.0", "1e+16", "inf", "nan") into buf
 * (at least 32 bytes). */
static void float_repr(double d, char *buf)
{
  char tmp[40];
  if (isnan(d)) {
    strcpy(buf, "nan");
    return;
  }
  if (isinf(d)) {
    strcpy(buf, d < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 0; prec < 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec, d);
    if (strtod(tmp, NULL) == d)
      break;
  }
  char digits[24];
  size_t nd = 0;
  const char *p = tmp;
  char *out = buf;
  if (*p == '-')
    *out++ = *p++;
  for (; *p && *p != 'e'; p++)
    if (is_digit(*p))
      digits[nd++] = *p;
  int exp = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  if (exp < -4 || exp >= 16) {
    *out++ = digits[0];
    if (nd > 1) {
      *out++ = '.';
      memcpy(out, digits + 1, nd - 1);
      out += nd - 1;
    }
    sprintf(out, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return;
  }
  int point = exp + 1;  /* digits before the decimal point */
  if (point <= 0) {
    *out++ = '0';
    *out++ = '.';
    for (int i = 0; i < -point; i++)
      *out++ = '0';
    memcpy(out, digits, nd);
    out += nd;
  } else {
    for (int i = 0; i < point; i++)
      *out++ = (size_t)i < nd ? digits[i] : '0';
    *out++ = '.';
    if ((size_t)point < nd) {
      memcpy(out, digits + point, nd - point);
      out += nd - point;
    } else {
      *out++ = '0';
    }
  }
  *out = '\0';
}

/* ---- the loader's state: arena, parser, error ---- */

enum node_kind { N_SCALAR, N_SEQ, N_MAP };

struct node {
  unsigned char kind;
  unsigned char tag;          /* enum tag */
  unsigned char complete;     /* composed to its end (aliases allowed) */
  unsigned char flattened;    /* merge keys already applied */
  unsigned char aliased;      /* reached through an alias: cache its value */
  const char *tag_name;       /* the tag as written, for T_OTHER messages */
  const char *value;          /* scalar text */
  size_t len;
  struct node **kids;         /* seq items, or map keys and values paired */
  size_t n;                   /* number of kids (2 per map entry) */
  size_t line, column;        /* 0-based start mark */
  size_t size;                /* node count with aliases expanded */
  int ref;                    /* index in the alias cache, 0 = none */
};

struct chunk {
  struct chunk *next;
  size_t used, cap;
  max_align_t data[];
};

struct loader {
  yaml_parser_t parser;
  yaml_event_t event;
  int parser_live, event_live;
  struct chunk *arena;
  struct node **stack;        /* kids of the collections being composed */
  size_t nstack, capstack;
  size_t nodes;               /* nodes composed */
  int nrefs;
  const char *text;
  size_t textlen;
  /* the error, if any */
  int failed;
  char problem[512];
  char context[160];
  size_t line, column, context_line, context_column;
  int has_context_mark;
};

static void loader_free(struct loader *ld)
{
  if (ld->event_live)
    yaml_event_delete(&ld->event);
  if (ld->parser_live)
    yaml_parser_delete(&ld->parser);
  ld->event_live = ld->parser_live = 0;
  while (ld->arena) {
    struct chunk *next = ld->arena->next;
    free(ld->arena);
    ld->arena = next;
  }
  free(ld->stack);
  ld->stack = NULL;
  ld->nstack = ld->capstack = 0;
}

static int loader_gc(lua_State *L)
{
  loader_free(luaL_checkudata(L, 1, LOADER_MT));
  return 0;
}

/* Allocates from the arena; NULL when memory runs out. */
static void *arena_alloc(struct loader *ld, size_t size)
{
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t)
    * sizeof(max_align_t);
  struct chunk *c = ld->arena;
  if (!c || c->cap - c->used < size) {
    size_t cap = size > 65536 ? size : 65536;
    c = malloc(sizeof *c + cap);
    if (!c)
      return NULL;
    c->cap = cap;
    c->used = 0;
    c->next = ld->arena;
    ld->arena = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  return p;
}

static int fail_at(struct loader *ld, size_t line, size_t column,
                   const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));

/* Records the first error; returns -1 so callers can `return fail_at()`. */
static int fail_at(struct loader *ld, size_t line, size_t column,
                   const char *fmt, ...)
{
  if (ld->failed)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(ld->problem, sizeof ld->problem, fmt, ap);
  va_end(ap);
  ld->failed = 1;
  ld->line = line;
  ld->column = column;
  return -1;
}

static void set_context(struct loader *ld, const char *context,
                        size_t line, size_t column)
{
  snprintf(ld->context, sizeof ld->context, "%s", context);
  ld->context_line = line;
  ld->context_column = column;
  ld->has_context_mark = 1;
}

static int out_of_memory(struct loader *ld)
{
  return fail_at(ld, 0, 0, "out of memory");
}

/* Line and column (0-based) of a byte offset, for reader errors. */
static void offset_mark(struct loader *ld, size_t offset, size_t *line,
                        size_t *column)
{
  size_t l = 0, c = 0;
  for (size_t i = 0; i < offset && i < ld->textlen; i++) {
    unsigned char ch = (unsigned char)ld->text[i];
    if (ch == '\n' || (ch == '\r' && !(i + 1 < ld->textlen
                                       && ld->text[i + 1] == '\n'))) {
      l++;
      c = 0;
    } else if ((ch & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *column = c;
}

static int parser_failed(struct loader *ld)
{
  yaml_parser_t *p = &ld->parser;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->error == YAML_MEMORY_ERROR)
    return out_of_memory(ld);
  if (p->error == YAML_READER_ERROR) {
    size_t line, column;
    offset_mark(ld, p->problem_offset, &line, &column);
    if (p->problem_value != -1)
      return fail_at(ld, line, column, "%s: #x%04X", problem,
                     (unsigned)p->problem_value);
    return fail_at(ld, line, column, "%s", problem);
  }
  if (p->context)
    set_context(ld, p->context, p->context_mark.line, p->context_mark.column);
  return fail_at(ld, p->problem_mark.line, p->problem_mark.column, "%s",
                 problem);
}

/* Fetches the next event into ld->event. */
static int next_event(struct loader *ld)
{
  if (ld->event_live) {
    yaml_event_delete(&ld->event);
    ld->event_live = 0;
  }
  if (!yaml_parser_parse(&ld->parser, &ld->event))
    return parser_failed(ld);
  ld->event_live = 1;
  return 0;
}

static char *arena_strdup(struct loader *ld, const char *s, size_t n)
{
  char *p = arena_alloc(ld, n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

/* ---- the composer ---- */

static int push_kid(struct loader *ld, struct node *kid)
{
  if (ld->nstack == ld->capstack) {
    size_t cap = ld->capstack ? ld->capstack * 2 : 256;
    struct node **s = realloc(ld->stack, cap * sizeof *s);
    if (!s)
      return out_of_memory(ld);
    ld->stack = s;
    ld->capstack = cap;
  }
  ld->stack[ld->nstack++] = kid;
  return 0;
}

static struct node *new_node(struct loader *ld, int kind,
                             const yaml_char_t *tag, yaml_mark_t mark)
{
  struct node *nd = arena_alloc(ld, sizeof *nd);
  if (!nd) {
    out_of_memory(ld);
    return NULL;
  }
  memset(nd, 0, sizeof *nd);
  nd->kind = (unsigned char)kind;
  nd->line = mark.line;
  nd->column = mark.column;
  nd->size = 1;
  ld->nodes++;
  if (tag && strcmp((const char *)tag, "!") != 0) {
    nd->tag_name = arena_strdup(ld, (const char *)tag,
                                strlen((const char *)tag));
    if (!nd->tag_name) {
      out_of_memory(ld);
      return NULL;
    }
    nd->tag = (unsigned char)tag_from_name(nd->tag_name);
  } else {
    nd->tag = kind == N_SCALAR ? T_STR : kind == N_SEQ ? T_SEQ : T_MAP;
  }
  return nd;
}

static int register_anchor(lua_State *L, struct loader *ld, int anchors,
                           const yaml_char_t *anchor, struct node *nd)
{
  if (!anchor)
    return 0;
  if (lua_getfield(L, anchors, (const char *)anchor) == LUA_TLIGHTUSERDATA) {
    struct node *first = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return fail_at(ld, nd->line, nd->column,
                   "found duplicate anchor '%s' (first occurrence at line "
                   "%zu, column %zu)", (const char *)anchor, first->line + 1,
                   first->column + 1);
  }
  lua_pop(L, 1);
  lua_pushlightuserdata(L, nd);
  lua_setfield(L, anchors, (const char *)anchor);
  return 0;
}

static size_t add_size(size_t a, size_t b)
{
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static struct node *compose(lua_State *L, struct loader *ld, int anchors,
                            int depth);

/* Composes the items of a sequence or the entries of a mapping until its
 * end event, then moves them from the stack into the node. */
static int compose_kids(lua_State *L, struct loader *ld, int anchors,
                        struct node *nd, int depth)
{
  size_t base = ld->nstack;
  yaml_event_type_t end = nd->kind == N_SEQ ? YAML_SEQUENCE_END_EVENT
                                            : YAML_MAPPING_END_EVENT;
  for (;;) {
    if (next_event(ld))
      return -1;
    if (ld->event.type == end)
      break;
    struct node *kid = compose(L, ld, anchors, depth + 1);
    if (!kid || push_kid(ld, kid))
      return -1;
    nd->size = add_size(nd->size, kid->size);
  }
  nd->n = ld->nstack - base;
  nd->kids = arena_alloc(ld, (nd->n ? nd->n : 1) * sizeof *nd->kids);
  if (!nd->kids)
    return out_of_memory(ld);
  if (nd->n)
    memcpy(nd->kids, ld->stack + base, nd->n * sizeof *nd->kids);
  ld->nstack = base;
  if (nd->size > EXPAND_FLOOR && nd->size / EXPAND_FACTOR > ld->nodes)
    return fail_at(ld, nd->line, nd->column, "aliases expand this document "
                   "to too many nodes (%zu)", nd->size);
  return 0;
}

/* Composes the node that starts with the current event. */
static struct node *compose(lua_State *L, struct loader *ld, int anchors,
                            int depth)
{
  yaml_event_t *ev = &ld->event;
  struct node *nd = NULL;
  if (depth > MAX_DEPTH) {
    fail_at(ld, ev->start_mark.line, ev->start_mark.column,
            "collections nested deeper than %d levels", MAX_DEPTH);
    return NULL;
  }
  switch (ev->type) {
  case YAML_ALIAS_EVENT: {
    const char *name = (const char *)ev->data.alias.anchor;
    if (lua_getfield(L, anchors, name) != LUA_TLIGHTUSERDATA) {
      lua_pop(L, 1);
      fail_at(ld, ev->start_mark.line, ev->start_mark.column,
              "found undefined alias '%s'", name);
      return NULL;
    }
    nd = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!nd->complete) {
      fail_at(ld, ev->start_mark.line, ev->start_mark.column,
              "found recursive alias '%s'", name);
      return NULL;
    }
    nd->aliased = 1;
    return nd;
  }
  case YAML_SCALAR_EVENT: {
    yaml_char_t *tag = ev->data.scalar.tag;
    nd = new_node(ld, N_SCALAR, tag, ev->start_mark);
    if (!nd)
      return NULL;
    nd->value = arena_strdup(ld, (const char *)ev->data.scalar.value,
                             ev->data.scalar.length);
    nd->len = ev->data.scalar.length;
    if (!nd->value) {
      out_of_memory(ld);
      return NULL;
    }
    if ((!tag || strcmp((const char *)tag, "!") == 0)
        && ev->data.scalar.plain_implicit)
      nd->tag = (unsigned char)resolve_plain(nd->value, nd->len);
    nd->complete = 1;
    if (register_anchor(L, ld, anchors, ev->data.scalar.anchor, nd))
      return NULL;
    return nd;
  }
  case YAML_SEQUENCE_START_EVENT:
  case YAML_MAPPING_START_EVENT: {
    int seq = ev->type == YAML_SEQUENCE_START_EVENT;
    nd = new_node(ld, seq ? N_SEQ : N_MAP, seq ? ev->data.sequence_start.tag
                  : ev->data.mapping_start.tag, ev->start_mark);
    if (!nd || register_anchor(L, ld, anchors, seq
                               ? ev->data.sequence_start.anchor
                               : ev->data.mapping_start.anchor, nd))
      return NULL;
    if (compose_kids(L, ld, anchors, nd, depth))
      return NULL;
    nd->complete = 1;
    return nd;
  }
  default:
    fail_at(ld, ev->start_mark.line, ev->start_mark.column,
            "unexpected parser event");
    return NULL;
  }
}

/* Parses the whole stream: *root is the one document's node, or NULL for
 * an empty stream. */
static int compose_stream(lua_State *L, struct loader *ld, int anchors,
                          struct node **root)
{
  *root = NULL;
  if (next_event(ld))                      /* stream start */
    return -1;
  if (next_event(ld))
    return -1;
  if (ld->event.type == YAML_STREAM_END_EVENT)
    return 0;
  if (next_event(ld))                      /* after document start */
    return -1;
  *root = compose(L, ld, anchors, 0);
  if (!*root)
    return -1;
  if (next_event(ld))                      /* document end */
    return -1;
  if (next_event(ld))
    return -1;
  if (ld->event.type == YAML_DOCUMENT_START_EVENT) {
    set_context(ld, "expected a single document in the stream", 0, 0);
    return fail_at(ld, ld->event.start_mark.line,
                   ld->event.start_mark.column, "but found another document");
  }
  return 0;
}

/* ---- the constructor ---- */

static const char *node_id(const struct node *nd)
{
  return nd->kind == N_SCALAR ? "scalar" : nd->kind == N_SEQ ? "sequence"
                                                             : "mapping";
}

static int construct(lua_State *L, struct loader *ld, struct node *nd,
                     int depth);

static int construct_error(struct loader *ld, const struct node *ctx_node,
                           const struct node *nd, const char *fmt,
                           const char *arg)
{
  if (ctx_node)
    set_context(ld, "while constructing a mapping", ctx_node->line,
                ctx_node->column);
  return fail_at(ld, nd->line, nd->column, fmt, arg);
}

static int scalar_equal(const struct node *a, const struct node *b)
{
  return a->kind == N_SCALAR && b->kind == N_SCALAR && a->len == b->len
    && memcmp(a->value, b->value, a->len) == 0;
}

/* Salt's flatten_mapping: merged pairs go first, in the order the merge
 * sources give them (a list of sources reversed), minus keys whose text
 * the mapping itself defines. Rewrites nd->kids in place. */
static int flatten(lua_State *L, struct loader *ld, struct node *nd,
                   int depth)
{
  if (nd->flattened)
    return 0;
  if (depth > MAX_DEPTH)
    return fail_at(ld, nd->line, nd->column, "merge keys nested deeper "
                   "than %d levels", MAX_DEPTH);
  size_t base = ld->nstack, own = 0;
  struct node **own_kids = nd->kids;
  for (size_t i = 0; i < nd->n; i += 2) {
    struct node *k = nd->kids[i], *v = nd->kids[i + 1];
    if (k->kind == N_SCALAR && k->tag == T_MERGE) {
      struct node **srcs = &v;
      size_t nsrc = 1;
      if (v->kind == N_SEQ) {
        srcs = v->kids;
        nsrc = v->n;
      } else if (v->kind != N_MAP) {
        set_context(ld, "while constructing a mapping", nd->line, nd->column);
        return fail_at(ld, v->line, v->column, "expected a mapping or list "
                       "of mappings for merging, but found %s", node_id(v));
      }
      for (size_t s = nsrc; s-- > 0;) {
        struct node *src = srcs[s];
        if (src->kind != N_MAP) {
          set_context(ld, "while constructing a mapping", nd->line,
                      nd->column);
          return fail_at(ld, src->line, src->column, "expected a mapping for"
                         " merging, but found %s", node_id(src));
        }
        if (flatten(L, ld, src, depth + 1))
          return -1;
        for (size_t j = 0; j < src->n; j++)
          if (push_kid(ld, src->kids[j]))
            return -1;
      }
    } else {
      if (k->kind == N_SCALAR && k->tag == T_VALUE)
        k->tag = T_STR;
      own_kids[own++] = k;
      own_kids[own++] = v;
    }
  }
  nd->flattened = 1;
  size_t merged = ld->nstack - base;
  if (merged == 0) {
    nd->n = own;
    return 0;
  }
  struct node **kids = arena_alloc(ld, (merged + own) * sizeof *kids);
  if (!kids)
    return out_of_memory(ld);
  /* Big mappings: the texts of the own keys go into a Lua set, so that
   * merging is not quadratic. */
  int set = 0;
  if (own / 2 * (merged / 2) > 4096) {
    lua_createtable(L, 0, (int)(own / 2));   /* set */
    set = lua_gettop(L);
    for (size_t i = 0; i < own; i += 2)
      if (own_kids[i]->kind == N_SCALAR) {
        lua_pushlstring(L, own_kids[i]->value, own_kids[i]->len);
        lua_pushboolean(L, 1);
        lua_rawset(L, set);
      }
  }
  size_t n = 0;
  for (size_t j = 0; j < merged; j += 2) {
    struct node *k = ld->stack[base + j];
    int defined = 0;
    if (set && k->kind == N_SCALAR) {
      lua_pushlstring(L, k->value, k->len);
      defined = lua_rawget(L, set) != LUA_TNIL;
      lua_pop(L, 1);
    }
    for (size_t i = 0; !set && i < own && !defined; i += 2)
      defined = scalar_equal(own_kids[i], k);
    if (!defined) {
      kids[n++] = k;
      kids[n++] = ld->stack[base + j + 1];
    }
  }
  if (set)
    lua_remove(L, set);
  memcpy(kids + n, own_kids, own * sizeof *kids);
  nd->kids = kids;
  nd->n = n + own;
  ld->nstack = base;
  return 0;
}

/* Python's str() of a key, for "found conflicting ID" messages. */
static void key_text(lua_State *L, int idx, char *buf, size_t size)
{
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN:
    snprintf(buf, size, "%s", lua_toboolean(L, idx) ? "True" : "False");
    break;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx))
      snprintf(buf, size, "%lld", (long long)lua_tointeger(L, idx));
    else
      float_repr(lua_tonumber(L, idx), buf);
    break;
  case LUA_TSTRING:
    snprintf(buf, size, "%s", lua_tostring(L, idx));
    break;
  case LUA_TTABLE: {                  /* a big integer or a byte string */
    int bytes = brine__kind(L, idx) == BRINE_BYTES;
    if (brine__kind(L, idx) == BRINE_BIGINT)
      brine__bigint_text(L, idx);
    else
      lua_pushstring(L, bytes ? brine__bytes(L, idx, NULL) : "None");
    snprintf(buf, size, bytes ? "b'%s'" : "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    break;
  }
  default:
    snprintf(buf, size, "None");
  }
}

/* A big integer or a byte string: a scalar kept in a table. */
static int is_scalar_table(lua_State *L, int idx)
{
  enum brine_kind kind = brine__kind(L, idx);
  return kind == BRINE_BIGINT || kind == BRINE_BYTES;
}

/* Pushes the text that tells scalar tables of one kind apart. */
static void push_scalar_text(lua_State *L, int idx)
{
  if (brine__kind(L, idx) == BRINE_BIGINT) {
    brine__bigint_text(L, idx);
  } else {
    size_t n;
    const char *s = brine__bytes(L, idx, &n);
    lua_pushlstring(L, s, n);
  }
}

/* key_taken for a scalar table key (at -2 under its value): tables are
 * told apart by identity, these by kind and text, as Python compares. */
static int scalar_key_taken(lua_State *L, int map)
{
  int key = lua_absindex(L, -2);
  enum brine_kind kind = brine__kind(L, key);
  push_scalar_text(L, key);                               /* text */
  int text = lua_gettop(L), taken = 0;
  struct brine__iter it;
  brine__iter_start(L, map, &it);                         /* text helper */
  while (!taken && brine__iter_next(L, &it)) {            /* ... k v */
    if (brine__kind(L, -2) == kind) {
      push_scalar_text(L, -2);                            /* ... k v t */
      taken = lua_rawequal(L, -1, text);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
  return taken;
}

/* Is key (at -2, value at -1) already in the map, as Python's dict sees
 * it: True == 1 == 1.0 and False == 0. */
static int key_taken(lua_State *L, int map)
{
  if (is_scalar_table(L, -2))
    return scalar_key_taken(L, map);
  lua_pushvalue(L, -2);
  int taken = lua_rawget(L, map) != LUA_TNIL;
  lua_pop(L, 1);
  if (taken)
    return 1;
  if (lua_type(L, -2) == LUA_TBOOLEAN) {
    lua_pushinteger(L, lua_toboolean(L, -2));
  } else if (lua_type(L, -2) == LUA_TNUMBER
             && (lua_tonumber(L, -2) == 0 || lua_tonumber(L, -2) == 1)) {
    lua_pushboolean(L, lua_tonumber(L, -2) == 1);
  } else {
    return 0;
  }
  taken = lua_rawget(L, map) != LUA_TNIL;
  lua_pop(L, 1);
  return taken;
}

static int construct_map(lua_State *L, struct loader *ld, struct node *nd,
                         int depth)
{
  if (flatten(L, ld, nd, depth))
    return -1;
  brine__new_map(L, (int)(nd->n / 2 > 64 ? 64 : nd->n / 2));
  int map = lua_gettop(L);
  for (size_t i = 0; i < nd->n; i += 2) {
    struct node *k = nd->kids[i];
    if (construct(L, ld, k, depth + 1))
      return -1;
    if ((lua_type(L, -1) == LUA_TTABLE && !is_scalar_table(L, -1))
        || (lua_type(L, -1) == LUA_TNUMBER && isnan(lua_tonumber(L, -1))))
      return construct_error(ld, nd, k, "found unacceptable key (%s)",
                             lua_type(L, -1) == LUA_TTABLE
                             ? "a collection cannot be a key" : "nan");
    if (construct(L, ld, nd->kids[i + 1], depth + 1))
      return -1;
    if (key_taken(L, map)) {
      char buf[256];
      key_text(L, -2, buf, sizeof buf);
      return construct_error(ld, nd, k, "found conflicting ID '%s'", buf);
    }
    brine__map_set(L, map);
  }
  return 0;
}

static int construct_seq(lua_State *L, struct loader *ld, struct node *nd,
                         int depth)
{
  brine__new_array(L, (int)(nd->n > 64 ? 64 : nd->n));
  for (size_t i = 0; i < nd->n; i++) {
    if (construct(L, ld, nd->kids[i], depth + 1))
      return -1;
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 0;
}

/* !!set: a mapping whose values are null; built as that map. */
static int construct_set(lua_State *L, struct loader *ld, struct node *nd,
                         int depth)
{
  return construct_map(L, ld, nd, depth);
}

/* !!pairs: a sequence of one-entry mappings, built as (key, value) tuples. */
static int construct_pairs(lua_State *L, struct loader *ld, struct node *nd,
                           int depth)
{
  if (nd->kind != N_SEQ)
    return fail_at(ld, nd->line, nd->column, "while constructing pairs: "
                   "expected a sequence, but found %s", node_id(nd));
  brine__new_array(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, "brine.tuple");
  for (size_t i = 0; i < nd->n; i++) {
    struct node *item = nd->kids[i];
    if (item->kind != N_MAP || item->n != 2)
      return fail_at(ld, item->line, item->column, "while constructing "
                     "pairs: expected a mapping of length 1");
    lua_createtable(L, 2, 0);
    if (construct(L, ld, item->kids[0], depth + 1))
      return -1;
    lua_rawseti(L, -2, 1);
    if (construct(L, ld, item->kids[1], depth + 1))
      return -1;
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, -2);
    lua_setmetatable(L, -2);
    lua_rawseti(L, -3, (lua_Integer)i + 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* Pushes the integer of a decimal/binary/octal/hex digit string (a big
 * integer beyond 64 bits). Returns -1 on a bad digit, -2 when the text is
 * longer than Python reads (BRINE_BIGINT_MAX_DIGITS decimal digits). */
static int push_digits(lua_State *L, const char *s, int base, int sign)
{
  size_t n = strlen(s);
  if (n == 0)
    return -1;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f')
      ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
    if (d >= base)
      return -1;
  }
  return brine__push_digits(L, s, n, base, sign < 0) < 0 ? -2 : 0;
}

/* Builds the int of an int-tagged scalar as Salt does: zeros stripped from
 * an unsigned value that is not 0b/0x, then PyYAML's construct_yaml_int. */
static int construct_int(lua_State *L, struct loader *ld, struct node *nd)
{
  char *buf = arena_alloc(ld, nd->len + 2);
  if (!buf)
    return out_of_memory(ld);
  const char *s = nd->value;
  if (s[0] == '0' && s[1] != 'b' && s[1] != 'x') {
    while (*s == '0')
      s++;
    if (!*s)
      s = "0";
  }
  size_t n = 0;
  for (; *s; s++)
    if (*s != '_')
      buf[n++] = *s;
  buf[n] = '\0';
  char *p = buf;
  int sign = 1;
  if (*p == '-' || *p == '+')
    sign = *p++ == '-' ? -1 : 1;
  int bad;
  if (strcmp(p, "0") == 0) {
    lua_pushinteger(L, 0);
    return 0;
  } else if (p[0] == '0' && p[1] == 'b') {
    bad = push_digits(L, p + 2, 2, sign);
  } else if (p[0] == '0' && p[1] == 'x') {
    bad = push_digits(L, p + 2, 16, sign);
  } else if (p[0] == '0') {
    bad = push_digits(L, p + 1, 8, sign);
  } else if (strchr(p, ':')) {
    double total = 0;
    bad = 0;
    for (char *part = strtok(p, ":"); part && !bad; part = strtok(NULL, ":")) {
      bad = push_digits(L, part, 10, 1);
      if (!bad) {
        /* a part beyond 64 bits (absurd, but valid) counts as a float */
        total = total * 60 + (lua_isinteger(L, -1)
          ? (double)lua_tointeger(L, -1) : strtod(part, NULL));
        lua_pop(L, 1);
      }
    }
    if (!bad && total < 9.2e18)
      lua_pushinteger(L, (lua_Integer)total * sign);
    else if (!bad)
      lua_pushnumber(L, total * sign);
  } else {
    bad = push_digits(L, p, 10, sign);
  }
  if (bad == -2)
    return fail_at(ld, nd->line, nd->column, "Exceeds the limit (%d digits) "
                   "for integer string conversion", BRINE_BIGINT_MAX_DIGITS);
  if (bad)
    return fail_at(ld, nd->line, nd->column, "invalid literal for an "
                   "integer: '%s'", nd->value);
  return 0;
}

/* PyYAML's construct_yaml_float. */
static int construct_float(lua_State *L, struct loader *ld, struct node *nd)
{
  char *buf = arena_alloc(ld, nd->len + 1);
  if (!buf)
    return out_of_memory(ld);
  size_t n = 0;
  for (const char *s = nd->value; *s; s++)
    if (*s != '_')
      buf[n++] = (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
  buf[n] = '\0';
  char *p = buf;
  double sign = 1;
  if (*p == '-' || *p == '+')
    sign = *p++ == '-' ? -1 : 1;
  double v;
  if (strcmp(p, ".inf") == 0) {
    v = HUGE_VAL;
  } else if (strcmp(p, ".nan") == 0) {
    v = NAN;
    sign = 1;
  } else if (strchr(p, ':')) {
    v = 0;
    for (char *part = strtok(p, ":"); part; part = strtok(NULL, ":")) {
      char *end;
      double d = strtod(part, &end);
      if (end == part || *end)
        goto bad;
      v = v * 60 + d;
    }
  } else {
    char *end;
    v = strtod(p, &end);
    if (end == p || *end || strchr(p, 'x'))
      goto bad;
  }
  lua_pushnumber(L, sign * v);
  return 0;
bad:
  return fail_at(ld, nd->line, nd->column, "could not convert string to "
                 "float: '%s'", nd->value);
}

static int b64_value(int c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (is_digit(c)) return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* !!binary: base64 as Python's decodebytes reads it (other characters are
 * skipped, padding must be right). */
static int construct_binary(lua_State *L, struct loader *ld, struct node *nd)
{
  luaL_Buffer b;
  unsigned acc = 0;
  size_t bits = 0, count = 0, pads = 0;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < nd->len; i++) {
    int v = b64_value((unsigned char)nd->value[i]);
    if (nd->value[i] == '=')
      pads++;
    if (v < 0 || pads)
      continue;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    count++;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, (char)((acc >> bits) & 0xFF));
    }
  }
  if (count % 4 == 1 || (count % 4 && count % 4 + pads < 4)) {
    luaL_pushresult(&b);
    lua_pop(L, 1);
    return fail_at(ld, nd->line, nd->column, "failed to decode base64 data: "
                   "%s", "incorrect padding");
  }
  luaL_pushresult(&b);                       /* raw */
  size_t n;
  const char *raw = lua_tolstring(L, -1, &n);
  brine__push_bytes(L, raw, n);              /* raw bytes */
  lua_remove(L, -2);                         /* bytes */
  return 0;
}

static int construct_scalar_tag(lua_State *L, struct loader *ld,
                                struct node *nd)
{
  switch (nd->tag) {
  case T_STR:
  case T_TIMESTAMP:
    lua_pushlstring(L, nd->value, nd->len);
    return 0;
  case T_NULL:
    brine__push_null(L);
    return 0;
  case T_BOOL: {
    static const char *const yes[] = {"yes", "true", "on", NULL};
    static const char *const no[] = {"no", "false", "off", NULL};
    char low[8] = {0};
    for (size_t i = 0; i < nd->len && i < 7; i++)
      low[i] = (char)((nd->value[i] >= 'A' && nd->value[i] <= 'Z')
                      ? nd->value[i] + 32 : nd->value[i]);
    if (nd->len < 7 && (one_of(low, nd->len, yes) || one_of(low, nd->len, no))) {
      lua_pushboolean(L, one_of(low, nd->len, yes));
      return 0;
    }
    return fail_at(ld, nd->line, nd->column, "not a boolean: '%s'",
                   nd->value);
  }
  case T_INT:
    return construct_int(L, ld, nd);
  case T_FLOAT:
    return construct_float(L, ld, nd);
  case T_BINARY:
    return construct_binary(L, ld, nd);
  default:
    return -2;
  }
}

static int no_constructor(struct loader *ld, struct node *nd)
{
  const char *name = nd->tag_name;
  char buf[64];
  if (!name || nd->tag != T_OTHER) {
    snprintf(buf, sizeof buf, "tag:yaml.org,2002:%s", TAG_NAMES[nd->tag]);
    name = buf;
  }
  return fail_at(ld, nd->line, nd->column, "could not determine a "
                 "constructor for the tag '%s'", name);
}

static int construct_fresh(lua_State *L, struct loader *ld, struct node *nd,
                           int depth)
{
  int scalar_tag = nd->tag <= T_BINARY && nd->tag != T_MERGE
    && nd->tag != T_VALUE;
  if (scalar_tag) {
    if (nd->kind != N_SCALAR)
      return fail_at(ld, nd->line, nd->column, "expected a scalar node, but "
                     "found %s", node_id(nd));
    return construct_scalar_tag(L, ld, nd);
  }
  switch (nd->tag) {
  case T_MAP:
  case T_OMAP:
  case T_SET:
    if (nd->kind != N_MAP)
      return fail_at(ld, nd->line, nd->column, "expected a mapping node, "
                     "but found %s", node_id(nd));
    return nd->tag == T_SET ? construct_set(L, ld, nd, depth)
                            : construct_map(L, ld, nd, depth);
  case T_SEQ:
    if (nd->kind != N_SEQ)
      return fail_at(ld, nd->line, nd->column, "expected a sequence node, "
                     "but found %s", node_id(nd));
    return construct_seq(L, ld, nd, depth);
  case T_PAIRS:
    return construct_pairs(L, ld, nd, depth);
  default:
    return no_constructor(ld, nd);
  }
}

/* Pushes the value of a node. Nodes reached through aliases are built
 * once and shared, as PyYAML shares them. The cache is at stack index 2. */
static int construct(lua_State *L, struct loader *ld, struct node *nd,
                     int depth)
{
  if (depth > MAX_DEPTH)
    return fail_at(ld, nd->line, nd->column, "collections nested deeper "
                   "than %d levels", MAX_DEPTH);
  if (!lua_checkstack(L, 8))
    return out_of_memory(ld);
  if (nd->ref) {
    lua_rawgeti(L, 2, nd->ref);
    return 0;
  }
  int top = lua_gettop(L);
  if (construct_fresh(L, ld, nd, depth))
    return -1;
  lua_settop(L, top + 1);
  if (nd->aliased && nd->kind != N_SCALAR) {
    nd->ref = ++ld->nrefs;
    lua_pushvalue(L, -1);
    lua_rawseti(L, 2, nd->ref);
  }
  return 0;
}

/* ---- load() ---- */

static void push_error(lua_State *L, struct loader *ld, const char *name)
{
  lua_pushnil(L);
  if (ld->has_context_mark)
    lua_pushfstring(L, "%s:%d:%d: %s (%s, line %d, column %d)", name,
                    (int)ld->line + 1, (int)ld->column + 1, ld->problem,
                    ld->context, (int)ld->context_line + 1,
                    (int)ld->context_column + 1);
  else
    lua_pushfstring(L, "%s:%d:%d: %s", name, (int)ld->line + 1,
                    (int)ld->column + 1, ld->problem);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)ld->line + 1);
  lua_setfield(L, -2, "line");
  lua_pushinteger(L, (lua_Integer)ld->column + 1);
  lua_setfield(L, -2, "column");
  lua_pushstring(L, ld->problem);
  lua_setfield(L, -2, "problem");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "name");
  if (ld->has_context_mark) {
    lua_pushfstring(L, "%s, line %d, column %d", ld->context,
                    (int)ld->context_line + 1, (int)ld->context_column + 1);
    lua_setfield(L, -2, "context");
  }
}

/* load(text[, {name=FILE}]) -> value | nil, "FILE:LINE:COL: problem", info */
static int l_load(lua_State *L)
{
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  const char *name = "<string>";
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "name") == LUA_TSTRING)
      name = lua_tostring(L, -1);
    else if (!lua_isnil(L, -1))
      return luaL_argerror(L, 2, "name must be a string");
  }
  lua_settop(L, 3);                       /* text opts name */
  lua_newtable(L);                        /* 4: anchors */
  lua_createtable(L, 0, 0);               /* 5: alias cache */
  struct loader *ld = lua_newuserdatauv(L, sizeof *ld, 0);  /* 6 */
  memset(ld, 0, sizeof *ld);
  luaL_setmetatable(L, LOADER_MT);
  ld->text = text;
  ld->textlen = len;
  if (!yaml_parser_initialize(&ld->parser))
    return luaL_error(L, "brine.yaml: out of memory");
  ld->parser_live = 1;
  yaml_parser_set_input_string(&ld->parser, (const unsigned char *)text, len);
  /* No preset encoding: libyaml's reader then drops a leading byte order
   * mark; a preset one leaves it to the scanner, which counts it as a
   * column and breaks the indentation of the lines below. */

  struct node *root;
  int rc = compose_stream(L, ld, 4, &root);
  /* The constructor expects the cache at index 2. */
  lua_copy(L, 5, 2);
  if (rc == 0 && root)
    rc = construct(L, ld, root, 0);
  else if (rc == 0)
    brine__push_null(L);
  if (rc != 0) {
    const char *fname = lua_isstring(L, 3) ? lua_tostring(L, 3) : name;
    push_error(L, ld, fname);
    loader_free(ld);
    return 3;
  }
  loader_free(ld);
  return 1;
}

/* ---- dump(): PyYAML's representer, serializer and emitter ----
 *
 * The emitter follows PyYAML's pure-Python Emitter step by step (that is
 * what yaml.safe_dump runs), written as recursion over the value instead
 * of a state machine over events: the same column and indentation
 * bookkeeping, scalar analysis and style choice, so the text comes out
 * byte for byte the same. libyaml's own emitter differs in small ways
 * (simple-key length, "\r" in keys, characters outside the BMP, the "..."
 * after a plain root scalar). */

struct dumper {
  char *out;
  size_t len, cap;
  uint32_t *cps;              /* the scalar being written, as code points */
  size_t ncps, capcps;
  int column, indent;         /* indent -1: none yet (PyYAML's None) */
  int whitespace, indention, open_ended, flow_level;
  int best_indent, best_width, allow_unicode;
  int flow;                   /* 0 block, 1 flow, 2 flow for leaf collections */
  int sort_keys;
  int anchors, orders, emitted;  /* stack indexes of helper tables */
  int nanchors;
};

/* A scalar as the representer makes it. */
struct scalar {
  const char *text;
  size_t len;
  const char *tag;            /* PyYAML's prepared tag: "!!str", ... */
  int implicit_plain, implicit_quoted;
  int literal;                /* the representer asks for '|' (binary) */
};

struct analysis {
  size_t length;              /* in characters */
  int empty, multiline;
  int flow_plain, block_plain, single_quoted, block;
};

static int dumper_gc(lua_State *L)
{
  struct dumper *d = luaL_checkudata(L, 1, DUMPER_MT);
  free(d->out);
  free(d->cps);
  d->out = NULL;
  d->cps = NULL;
  return 0;
}

static void put(lua_State *L, struct dumper *d, const char *s, size_t n)
{
  if (n == 0)
    return;
  if (d->cap - d->len < n) {
    size_t cap = d->cap ? d->cap : 1024;
    while (cap - d->len < n)
      cap *= 2;
    char *out = realloc(d->out, cap);
    if (!out)
      luaL_error(L, "brine.yaml.dump: out of memory");
    d->out = out;
    d->cap = cap;
  }
  memcpy(d->out + d->len, s, n);
  d->len += n;
}

static void put_cp(lua_State *L, struct dumper *d, uint32_t cp)
{
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = (char)(0xF0 | (cp >> 18));
    b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  put(L, d, b, n);
}

/* Writes cps[start, end) and advances the column. */
static void put_cps(lua_State *L, struct dumper *d, size_t start, size_t end)
{
  for (size_t i = start; i < end; i++)
    put_cp(L, d, d->cps[i]);
  d->column += (int)(end - start);
}

static void line_break(lua_State *L, struct dumper *d, uint32_t br)
{
  d->whitespace = 1;
  d->indention = 1;
  d->column = 0;
  put_cp(L, d, br);
}

static void write_indicator(lua_State *L, struct dumper *d, const char *ind,
                            int need_whitespace, int whitespace,
                            int indention)
{
  if (!d->whitespace && need_whitespace) {
    put(L, d, " ", 1);
    d->column++;
  }
  put(L, d, ind, strlen(ind));
  d->column += (int)strlen(ind);
  d->whitespace = whitespace;
  d->indention = d->indention && indention;
  d->open_ended = 0;
}

static void write_indent(lua_State *L, struct dumper *d)
{
  int indent = d->indent < 0 ? 0 : d->indent;
  if (!d->indention || d->column > indent
      || (d->column == indent && !d->whitespace))
    line_break(L, d, '\n');
  if (d->column < indent) {
    d->whitespace = 1;
    for (; d->column < indent; d->column++)
      put(L, d, " ", 1);
  }
}

static void increase_indent(struct dumper *d, int flow, int indentless)
{
  if (d->indent < 0)
    d->indent = flow ? d->best_indent : 0;
  else if (!indentless)
    d->indent += d->best_indent;
}

static int valid_utf8(const unsigned char *s, size_t n)
{
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0
      ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || i + len > n)
      return 0;
    unsigned cp = len == 1 ? c : c & (0x7Fu >> len);
    for (size_t j = 1; j < len; j++) {
      if ((s[i + j] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800)
        || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
        || (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

/* Decodes valid UTF-8 into d->cps. */
static void decode(lua_State *L, struct dumper *d, const char *s, size_t n)
{
  if (d->capcps < n + 1) {
    uint32_t *cps = realloc(d->cps, (n + 1) * sizeof *cps);
    if (!cps)
      luaL_error(L, "brine.yaml.dump: out of memory");
    d->cps = cps;
    d->capcps = n + 1;
  }
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    unsigned c = (unsigned char)s[i];
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : c & (0x7Fu >> len);
    for (size_t j = 1; j < len; j++)
      cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
    d->cps[k++] = cp;
    i += len;
  }
  d->ncps = k;
}

static int is_break(uint32_t c)
{
  return c == '\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
}

static int is_space_or_break(uint32_t c)
{
  return c == 0 || c == ' ' || c == '\t' || c == '\r' || is_break(c);
}

static int in_set(uint32_t c, const char *set)
{
  return c < 0x80 && c && strchr(set, (int)c);
}

/* PyYAML's analyze_scalar over d->cps. */
static void analyze(struct dumper *d, struct analysis *a)
{
  const uint32_t *s = d->cps;
  size_t n = d->ncps;
  memset(a, 0, sizeof *a);
  a->length = n;
  if (n == 0) {
    a->empty = 1;
    a->block_plain = a->single_quoted = 1;
    return;
  }
  int block_ind = 0, flow_ind = 0, breaks = 0, special = 0;
  int lead_space = 0, lead_break = 0, trail_space = 0, trail_break = 0;
  int break_space = 0, space_break = 0, prev_space = 0, prev_break = 0;
  if (n >= 3 && ((s[0] == '-' && s[1] == '-' && s[2] == '-')
                 || (s[0] == '.' && s[1] == '.' && s[2] == '.')))
    block_ind = flow_ind = 1;
  int preceded_ws = 1;
  int followed_ws = n == 1 || is_space_or_break(s[1]);
  for (size_t i = 0; i < n; i++) {
    uint32_t ch = s[i];
    if (i == 0) {
      if (in_set(ch, "#,[]{}&*!|>'\"%@`"))
        flow_ind = block_ind = 1;
      if (ch == '?' || ch == ':') {
        flow_ind = 1;
        block_ind = block_ind || followed_ws;
      }
      if (ch == '-' && followed_ws)
        flow_ind = block_ind = 1;
    } else {
      if (in_set(ch, ",?[]{}"))
        flow_ind = 1;
      if (ch == ':') {
        flow_ind = 1;
        block_ind = block_ind || followed_ws;
      }
      if (ch == '#' && preceded_ws)
        flow_ind = block_ind = 1;
    }
    if (is_break(ch))
      breaks = 1;
    if (!(ch == '\n' || (ch >= 0x20 && ch <= 0x7E))) {
      int printable = (ch == 0x85 || (ch >= 0xA0 && ch <= 0xD7FF)
                       || (ch >= 0xE000 && ch <= 0xFFFD)
                       || (ch >= 0x10000 && ch < 0x10FFFF)) && ch != 0xFEFF;
      if (!printable || !d->allow_unicode)
        special = 1;
    }
    if (ch == ' ') {
      lead_space = lead_space || i == 0;
      trail_space = trail_space || i == n - 1;
      break_space = break_space || prev_break;
      prev_space = 1;
      prev_break = 0;
    } else if (is_break(ch)) {
      lead_break = lead_break || i == 0;
      trail_break = trail_break || i == n - 1;
      space_break = space_break || prev_space;
      prev_space = 0;
      prev_break = 1;
    } else {
      prev_space = prev_break = 0;
    }
    preceded_ws = is_space_or_break(ch);
    followed_ws = i + 2 >= n || is_space_or_break(s[i + 2]);
  }
  int flow_plain = 1, block_plain = 1, single = 1, block = 1;
  if (lead_space || lead_break || trail_space || trail_break)
    flow_plain = block_plain = 0;
  if (trail_space)
    block = 0;
  if (break_space)
    flow_plain = block_plain = single = 0;
  if (space_break || special)
    flow_plain = block_plain = single = block = 0;
  if (breaks)
    flow_plain = block_plain = 0;
  if (flow_ind)
    flow_plain = 0;
  if (block_ind)
    block_plain = 0;
  a->multiline = breaks;
  a->flow_plain = flow_plain;
  a->block_plain = block_plain;
  a->single_quoted = single;
  a->block = block;
}

/* PyYAML's choose_scalar_style: 0 plain, '\'', '"' or '|'. */
static int choose_style(struct dumper *d, const struct scalar *sc,
                        const struct analysis *a, int simple_key)
{
  if (!sc->literal && sc->implicit_plain
      && !(simple_key && (a->empty || a->multiline))
      && ((d->flow_level && a->flow_plain)
          || (!d->flow_level && a->block_plain)))
    return 0;
  if (sc->literal)
    return !d->flow_level && !simple_key && a->block ? '|' : '"';
  if (a->single_quoted && !(simple_key && a->multiline))
    return '\'';
  return '"';
}

static void write_plain(lua_State *L, struct dumper *d, int root, int split)
{
  size_t n = d->ncps, start = 0;
  if (root)
    d->open_ended = 1;
  if (n == 0)
    return;
  if (!d->whitespace) {
    put(L, d, " ", 1);
    d->column++;
  }
  d->whitespace = d->indention = 0;
  int spaces = 0;
  for (size_t end = 0; end <= n; end++) {
    uint32_t ch = end < n ? d->cps[end] : UINT32_MAX;
    if (spaces) {
      if (ch != ' ') {
        if (start + 1 == end && d->column > d->best_width && split) {
          write_indent(L, d);
          d->whitespace = d->indention = 0;
        } else {
          put_cps(L, d, start, end);
        }
        start = end;
      }
    } else if (ch == UINT32_MAX || ch == ' ') {
      put_cps(L, d, start, end);
      start = end;
    }
    spaces = ch == ' ';
  }
}

/* The line breaks cps[start, end) of a quoted or block scalar. */
static void write_breaks(lua_State *L, struct dumper *d, size_t start,
                         size_t end, int leading_extra)
{
  if (leading_extra && d->cps[start] == '\n')
    line_break(L, d, '\n');
  for (size_t i = start; i < end; i++)
    line_break(L, d, d->cps[i]);
}

static void write_single_quoted(lua_State *L, struct dumper *d, int split)
{
  size_t n = d->ncps, start = 0;
  int spaces = 0, breaks = 0;
  write_indicator(L, d, "'", 1, 0, 0);
  for (size_t end = 0; end <= n; end++) {
    uint32_t ch = end < n ? d->cps[end] : UINT32_MAX;
    if (spaces) {
      if (ch != ' ') {
        if (start + 1 == end && d->column > d->best_width && split
            && start != 0 && end != n)
          write_indent(L, d);
        else
          put_cps(L, d, start, end);
        start = end;
      }
    } else if (breaks) {
      if (ch == UINT32_MAX || !is_break(ch)) {
        write_breaks(L, d, start, end, 1);
        write_indent(L, d);
        start = end;
      }
    } else if (ch == UINT32_MAX || ch == ' ' || is_break(ch) || ch == '\'') {
      if (start < end) {
        put_cps(L, d, start, end);
        start = end;
      }
    }
    if (ch == '\'') {
      put(L, d, "''", 2);
      d->column += 2;
      start = end + 1;
    }
    if (ch != UINT32_MAX) {
      spaces = ch == ' ';
      breaks = is_break(ch);
    }
  }
  write_indicator(L, d, "'", 0, 0, 0);
}

static const char *escape_of(uint32_t ch)
{
  switch (ch) {
  case 0: return "0";
  case 0x07: return "a";
  case 0x08: return "b";
  case 0x09: return "t";
  case 0x0A: return "n";
  case 0x0B: return "v";
  case 0x0C: return "f";
  case 0x0D: return "r";
  case 0x1B: return "e";
  case '"': return "\"";
  case '\\': return "\\";
  case 0x85: return "N";
  case 0xA0: return "_";
  case 0x2028: return "L";
  case 0x2029: return "P";
  default: return NULL;
  }
}

static void write_double_quoted(lua_State *L, struct dumper *d, int split)
{
  size_t n = d->ncps, start = 0;
  write_indicator(L, d, "\"", 1, 0, 0);
  for (size_t end = 0; end <= n; end++) {
    uint32_t ch = end < n ? d->cps[end] : UINT32_MAX;
    int plain_ch = ch != UINT32_MAX && ch != '"' && ch != '\\' && ch != 0x85
      && ch != 0x2028 && ch != 0x2029 && ch != 0xFEFF
      && ((ch >= 0x20 && ch <= 0x7E) || (d->allow_unicode
          && ((ch >= 0xA0 && ch <= 0xD7FF) || (ch >= 0xE000 && ch <= 0xFFFD))));
    if (!plain_ch) {
      if (start < end) {
        put_cps(L, d, start, end);
        start = end;
      }
      if (ch != UINT32_MAX) {
        char esc[12];
        const char *e = escape_of(ch);
        if (e)
          snprintf(esc, sizeof esc, "\\%s", e);
        else if (ch <= 0xFF)
          snprintf(esc, sizeof esc, "\\x%02X", (unsigned)ch);
        else if (ch <= 0xFFFF)
          snprintf(esc, sizeof esc, "\\u%04X", (unsigned)ch);
        else
          snprintf(esc, sizeof esc, "\\U%08X", (unsigned)ch);
        put(L, d, esc, strlen(esc));
        d->column += (int)strlen(esc);
        start = end + 1;
      }
    }
    if (end > 0 && end + 1 < n && (ch == ' ' || start >= end)
        && d->column + (int)(end - start) > d->best_width && split) {
      put_cps(L, d, start, end > start ? end : start);
      if (start < end)
        start = end;
      put(L, d, "\\", 1);
      d->column++;
      write_indent(L, d);
      d->whitespace = d->indention = 0;
      if (d->cps[start] == ' ') {
        put(L, d, "\\", 1);
        d->column++;
      }
    }
  }
  write_indicator(L, d, "\"", 0, 0, 0);
}

static void write_literal(lua_State *L, struct dumper *d)
{
  size_t n = d->ncps, start = 0;
  char hints[8] = "|";
  if (n) {
    if (d->cps[0] == ' ' || is_break(d->cps[0]))
      snprintf(hints + strlen(hints), 4, "%d", d->best_indent);
    if (!is_break(d->cps[n - 1]))
      strcat(hints, "-");
    else if (n == 1 || is_break(d->cps[n - 2]))
      strcat(hints, "+");
  }
  write_indicator(L, d, hints, 1, 0, 0);
  if (hints[strlen(hints) - 1] == '+')
    d->open_ended = 1;
  line_break(L, d, '\n');
  int breaks = 1;
  for (size_t end = 0; end <= n; end++) {
    uint32_t ch = end < n ? d->cps[end] : UINT32_MAX;
    if (breaks) {
      if (ch == UINT32_MAX || !is_break(ch)) {
        write_breaks(L, d, start, end, 0);
        if (ch != UINT32_MAX)
          write_indent(L, d);
        start = end;
      }
    } else if (ch == UINT32_MAX || is_break(ch)) {
      put_cps(L, d, start, end);
      if (ch == UINT32_MAX)
        line_break(L, d, '\n');
      start = end;
    }
    if (ch != UINT32_MAX)
      breaks = is_break(ch);
  }
}

/* PyYAML's represent_float: repr() lowercased, ".0" added before an
 * exponent that has no point. */
static void float_text(double v, char *buf)
{
  if (isnan(v)) {
    strcpy(buf, ".nan");
  } else if (isinf(v)) {
    strcpy(buf, v > 0 ? ".inf" : "-.inf");
  } else {
    char tmp[40];
    float_repr(v, tmp);
    char *e = strchr(tmp, 'e');
    if (e && !strchr(tmp, '.')) {
      size_t head = (size_t)(e - tmp);
      memcpy(buf, tmp, head);
      strcpy(buf + head, ".0");
      strcpy(buf + head + 2, e);
    } else {
      strcpy(buf, tmp);
    }
  }
}

/* Base64 in lines of 76 characters, each ending with "\n", as Python's
 * base64.encodebytes. Pushes the text. */
static void push_base64(lua_State *L, const char *s, size_t n)
{
  static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t col = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)(unsigned char)s[i] << 16;
    if (i + 1 < n)
      v |= (unsigned)(unsigned char)s[i + 1] << 8;
    if (i + 2 < n)
      v |= (unsigned char)s[i + 2];
    char quad[4] = {alphabet[(v >> 18) & 63], alphabet[(v >> 12) & 63],
      i + 1 < n ? alphabet[(v >> 6) & 63] : '=',
      i + 2 < n ? alphabet[v & 63] : '='};
    luaL_addlstring(&b, quad, 4);
    col += 4;
    if (col == 76) {
      luaL_addchar(&b, '\n');
      col = 0;
    }
  }
  if (col)
    luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
}

/* The data kind, with one correction: a brine.map is a map even when its
 * keys are 1..n (brine__kind would call it an array). */
static enum brine_kind value_kind(lua_State *L, int idx)
{
  enum brine_kind kind = brine__kind(L, idx);
  if (kind == BRINE_ARRAY && luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
    kind = strcmp(lua_tostring(L, -1), "brine.map") == 0 ? BRINE_MAP : kind;
    lua_pop(L, 1);
  }
  return kind;
}

/* Represents the scalar at idx. buf holds number text; a binary string's
 * base64 text is pushed (the caller pops one value then: returns 1). */
static int represent_scalar(lua_State *L, int idx, struct scalar *sc,
                            char *buf)
{
  memset(sc, 0, sizeof *sc);
  sc->implicit_plain = 1;
  switch (value_kind(L, idx)) {
  case BRINE_NULL:
    sc->text = "null";
    sc->tag = "!!null";
    break;
  case BRINE_BOOL:
    sc->text = lua_toboolean(L, idx) ? "true" : "false";
    sc->tag = "!!bool";
    break;
  case BRINE_INT:
    snprintf(buf, 48, "%lld", (long long)lua_tointeger(L, idx));
    sc->text = buf;
    sc->tag = "!!int";
    break;
  case BRINE_FLOAT:
    float_text(lua_tonumber(L, idx), buf);
    sc->text = buf;
    sc->tag = "!!float";
    break;
  case BRINE_BIGINT:
    brine__bigint_text(L, idx);                      /* popped by the caller */
    sc->text = lua_tolstring(L, -1, &sc->len);
    sc->tag = "!!int";
    return 1;
  case BRINE_BYTES: {                                /* as PyYAML writes bytes */
    size_t n;
    const char *s = brine__bytes(L, idx, &n);
    push_base64(L, s, n);                            /* popped by the caller */
    sc->text = lua_tolstring(L, -1, &sc->len);
    sc->tag = "!!binary";
    sc->implicit_plain = 0;
    sc->literal = 1;
    return 1;
  }
  default: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (!valid_utf8((const unsigned char *)s, n)) {
      push_base64(L, s, n);
      sc->text = lua_tolstring(L, -1, &sc->len);
      sc->tag = "!!binary";
      sc->implicit_plain = 0;
      sc->literal = 1;
      return 1;
    }
    sc->text = s;
    sc->len = n;
    sc->tag = "!!str";
    sc->implicit_plain = resolve_plain(s, n) == T_STR;
    sc->implicit_quoted = 1;
    return 0;
  }
  }
  sc->len = strlen(sc->text);
  return 0;
}

static void emit_node(lua_State *L, struct dumper *d, int idx, int root,
                      int mapping, int simple_key);

static void emit_scalar(lua_State *L, struct dumper *d, int idx, int root,
                        int simple_key)
{
  char buf[48];
  struct scalar sc;
  struct analysis a;
  int pushed = represent_scalar(L, idx, &sc, buf);
  decode(L, d, sc.text, sc.len);
  analyze(d, &a);
  int style = choose_style(d, &sc, &a, simple_key);
  if (!((style == 0 && sc.implicit_plain)
        || (style != 0 && sc.implicit_quoted)))
    write_indicator(L, d, sc.tag, 1, 0, 0);
  int saved = d->indent;
  increase_indent(d, 1, 0);
  if (style == '"')
    write_double_quoted(L, d, !simple_key);
  else if (style == '\'')
    write_single_quoted(L, d, !simple_key);
  else if (style == '|')
    write_literal(L, d);
  else
    write_plain(L, d, root, !simple_key);
  d->indent = saved;
  if (pushed)
    lua_pop(L, 1);
}

/* Python's ordering of sortable keys: strings by code point (UTF-8 byte
 * order), numbers by value with False and True as 0 and 1. */
static int key_less(lua_State *L)
{
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t na, nb;
    const char *a = lua_tolstring(L, 1, &na), *b = lua_tolstring(L, 2, &nb);
    int c = memcmp(a, b, na < nb ? na : nb);
    lua_pushboolean(L, c < 0 || (c == 0 && na < nb));
    return 1;
  }
  for (int i = 1; i <= 2; i++)
    if (lua_type(L, i) == LUA_TBOOLEAN) {
      lua_pushinteger(L, lua_toboolean(L, i));
      lua_replace(L, i);
    }
  lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
  return 1;
}

/* The keys of a map in dump order, cached so the anchor pass and the
 * emitting pass agree. Pushes the key list. Sorting follows Python's
 * sorted(), which only works when every key is a string, or every key a
 * number or boolean; other maps keep their order. */
static void push_key_order(lua_State *L, struct dumper *d, int idx)
{
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, d->orders) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);                           /* keys */
  struct brine__iter it;
  brine__iter_start(L, idx, &it);            /* keys helper */
  lua_Integer n = 0;
  int strings = 1, numbers = 1;
  while (brine__iter_next(L, &it)) {         /* keys helper k v */
    lua_pop(L, 1);
    strings = strings && lua_type(L, -1) == LUA_TSTRING;
    numbers = numbers && ((lua_type(L, -1) == LUA_TNUMBER
                           && !isnan(lua_tonumber(L, -1)))
                          || lua_type(L, -1) == LUA_TBOOLEAN);
    lua_rawseti(L, -3, ++n);
  }
  lua_pop(L, 1);                             /* keys */
  if (d->sort_keys && n > 1 && (strings || numbers)) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "table");
    lua_getfield(L, -1, "sort");
    lua_remove(L, -2);
    lua_pushvalue(L, -3);
    lua_pushcfunction(L, key_less);
    lua_call(L, 2, 0);
    lua_pop(L, 1);
  }
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, d->orders);
}

/* PyYAML's anchor_node pass: a table met a second time gets the next
 * anchor number (id001, id002, ...), in depth-first order. */
/* A table that is a sequence or a mapping (a big integer is a scalar). */
static int is_collection(lua_State *L, int idx)
{
  return lua_type(L, idx) == LUA_TTABLE && !is_scalar_table(L, idx);
}

static void find_anchors(lua_State *L, struct dumper *d, int idx, int depth)
{
  if (!is_collection(L, idx))
    return;
  if (depth > MAX_DEPTH * 2)
    luaL_error(L, "brine.yaml.dump: value nested deeper than %d levels",
               MAX_DEPTH * 2);
  luaL_checkstack(L, 8, "brine.yaml.dump");
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, d->anchors) != LUA_TNIL) {
    if (lua_tointeger(L, -1) == 0) {
      lua_pushvalue(L, idx);
      lua_pushinteger(L, ++d->nanchors);
      lua_rawset(L, d->anchors);
    }
    lua_pop(L, 1);
    return;
  }
  lua_pop(L, 1);
  lua_pushvalue(L, idx);
  lua_pushinteger(L, 0);
  lua_rawset(L, d->anchors);
  if (value_kind(L, idx) == BRINE_ARRAY) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      find_anchors(L, d, -1, depth + 1);
      lua_pop(L, 1);
    }
    return;
  }
  if (value_kind(L, idx) != BRINE_MAP)
    return;
  push_key_order(L, d, idx);                 /* keys */
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);                   /* keys k */
    find_anchors(L, d, -1, depth + 1);
    lua_rawget(L, idx);                      /* keys v */
    find_anchors(L, d, -1, depth + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static lua_Integer anchor_of(lua_State *L, struct dumper *d, int idx)
{
  lua_pushvalue(L, idx);
  lua_Integer num = lua_rawget(L, d->anchors) == LUA_TNUMBER
    ? lua_tointeger(L, -1) : 0;
  lua_pop(L, 1);
  return num;
}

static int was_emitted(lua_State *L, struct dumper *d, int idx)
{
  lua_pushvalue(L, idx);
  int yes = lua_rawget(L, d->emitted) != LUA_TNIL;
  lua_pop(L, 1);
  return yes;
}

static int is_leaf(lua_State *L, int idx)
{
  if (is_collection(L, idx))
    return 0;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    return valid_utf8((const unsigned char *)s, n);
  }
  return 1;
}

/* Flow style for a collection: always, never, or (PyYAML's
 * default_flow_style=None) when every item is a plain-styled scalar. The
 * key order is on top of the stack for maps. */
static int flow_style(lua_State *L, struct dumper *d, int idx, int array)
{
  if (d->flow != 2)
    return d->flow;
  lua_Integer n = (lua_Integer)lua_rawlen(L, array ? idx : -1);
  for (lua_Integer i = 1; i <= n; i++) {
    int ok;
    if (array) {
      lua_rawgeti(L, idx, i);
      ok = is_leaf(L, -1);
    } else {
      lua_rawgeti(L, -1, i);
      ok = is_leaf(L, -1);
      lua_rawget(L, idx);
      ok = ok && is_leaf(L, -1);
    }
    lua_pop(L, 1);
    if (!ok)
      return 0;
  }
  return 1;
}

/* PyYAML's check_simple_key for the key at idx. */
static int simple_key(lua_State *L, struct dumper *d, int idx)
{
  if (is_collection(L, idx)) {
    lua_Integer anchor = anchor_of(L, d, idx);
    if (anchor && was_emitted(L, d, idx))
      return 1;                              /* an alias */
    size_t length = 5 + (anchor ? 5 : 0);
    return length < 128 && brine__count(L, idx) == 0;
  }
  char buf[48];
  struct scalar sc;
  struct analysis a;
  int pushed = represent_scalar(L, idx, &sc, buf);
  decode(L, d, sc.text, sc.len);
  analyze(d, &a);
  if (pushed)
    lua_pop(L, 1);
  return strlen(sc.tag) + a.length < 128 && !a.empty && !a.multiline;
}

static void emit_sequence(lua_State *L, struct dumper *d, int idx,
                          int mapping, int flow)
{
  int saved = d->indent;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  if (d->flow_level || flow || n == 0) {
    write_indicator(L, d, "[", 1, 1, 0);
    d->flow_level++;
    increase_indent(d, 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1)
        write_indicator(L, d, ",", 0, 0, 0);
      if (d->column > d->best_width)
        write_indent(L, d);
      lua_rawgeti(L, idx, i);
      emit_node(L, d, -1, 0, 0, 0);
      lua_pop(L, 1);
    }
    d->indent = saved;
    d->flow_level--;
    write_indicator(L, d, "]", 0, 0, 0);
    return;
  }
  increase_indent(d, 0, mapping && !d->indention);
  for (lua_Integer i = 1; i <= n; i++) {
    write_indent(L, d);
    write_indicator(L, d, "-", 1, 0, 1);
    lua_rawgeti(L, idx, i);
    emit_node(L, d, -1, 0, 0, 0);
    lua_pop(L, 1);
  }
  d->indent = saved;
}

/* Emits one entry of a mapping: key at -1 (popped), value in the map. */
static void emit_entry(lua_State *L, struct dumper *d, int map, int flow)
{
  int key = lua_gettop(L);
  if (simple_key(L, d, key)) {
    emit_node(L, d, key, 0, 1, 1);
    write_indicator(L, d, ":", 0, 0, 0);
  } else {
    write_indicator(L, d, "?", 1, 0, !flow);
    emit_node(L, d, key, 0, 1, 0);
    if (!flow)
      write_indent(L, d);
    else if (d->column > d->best_width)
      write_indent(L, d);
    write_indicator(L, d, ":", 1, 0, !flow);
  }
  lua_rawget(L, map);
  emit_node(L, d, -1, 0, 1, 0);
  lua_pop(L, 1);
}

static void emit_mapping(lua_State *L, struct dumper *d, int idx, int flow)
{
  int saved = d->indent;
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);  /* key order on top */
  int order = lua_gettop(L);
  if (d->flow_level || flow || n == 0) {
    write_indicator(L, d, "{", 1, 1, 0);
    d->flow_level++;
    increase_indent(d, 1, 0);
    for (lua_Integer i = 1; i <= n; i++) {
      if (i > 1)
        write_indicator(L, d, ",", 0, 0, 0);
      if (d->column > d->best_width)
        write_indent(L, d);
      lua_rawgeti(L, order, i);
      emit_entry(L, d, idx, 1);
    }
    d->indent = saved;
    d->flow_level--;
    write_indicator(L, d, "}", 0, 0, 0);
    return;
  }
  increase_indent(d, 0, 0);
  for (lua_Integer i = 1; i <= n; i++) {
    write_indent(L, d);
    lua_rawgeti(L, order, i);
    emit_entry(L, d, idx, 0);
  }
  d->indent = saved;
}

static void emit_node(lua_State *L, struct dumper *d, int idx, int root,
                      int mapping, int simple)
{
  idx = lua_absindex(L, idx);
  luaL_checkstack(L, 10, "brine.yaml.dump");
  enum brine_kind kind = value_kind(L, idx);
  if (kind == BRINE_OTHER)
    luaL_error(L, "brine.yaml.dump: cannot represent a %s value",
               luaL_typename(L, idx));
  if (kind != BRINE_ARRAY && kind != BRINE_MAP) {
    emit_scalar(L, d, idx, root, simple);
    return;
  }
  lua_Integer anchor = anchor_of(L, d, idx);
  char name[24];
  if (anchor) {
    int alias = was_emitted(L, d, idx);
    snprintf(name, sizeof name, "%cid%03d", alias ? '*' : '&', (int)anchor);
    write_indicator(L, d, name, 1, 0, 0);
    if (alias)
      return;
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, d->emitted);
  }
  if (d->flow_level > MAX_DEPTH * 2 || d->indent > MAX_DEPTH * 20)
    luaL_error(L, "brine.yaml.dump: value nested too deeply");
  if (kind == BRINE_ARRAY) {
    emit_sequence(L, d, idx, mapping, flow_style(L, d, idx, 1));
  } else {
    push_key_order(L, d, idx);
    emit_mapping(L, d, idx, flow_style(L, d, idx, 0));
    lua_pop(L, 1);
  }
}

static int opt_bool(lua_State *L, int opts, const char *name, int def)
{
  int t = lua_getfield(L, opts, name);
  int v = t == LUA_TNIL ? def : lua_toboolean(L, -1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "brine.yaml.dump: option %s must be a boolean", name);
  lua_pop(L, 1);
  return v;
}

static lua_Integer opt_int(lua_State *L, int opts, const char *name,
                           lua_Integer def)
{
  int t = lua_getfield(L, opts, name);
  lua_Integer v = def;
  if (t == LUA_TNUMBER) {
    double f = lua_tonumber(L, -1);
    v = f >= (double)INT_MAX ? INT_MAX : f <= 0 ? 0 : (lua_Integer)f;
  } else if (t != LUA_TNIL) {
    luaL_error(L, "brine.yaml.dump: option %s must be a number", name);
  }
  lua_pop(L, 1);
  return v;
}

/* Reads the options as PyYAML's Emitter reads its arguments. */
static void configure(lua_State *L, struct dumper *d, int opts, int *explicit)
{
  int t = lua_getfield(L, opts, "flow");
  if (t == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0)
    d->flow = 2;
  else if (t == LUA_TBOOLEAN || t == LUA_TNIL)
    d->flow = lua_toboolean(L, -1);
  else
    luaL_error(L, "brine.yaml.dump: option flow must be a boolean or "
               "\"auto\"");
  lua_pop(L, 1);
  d->sort_keys = opt_bool(L, opts, "sort_keys", 0);
  d->allow_unicode = opt_bool(L, opts, "allow_unicode", 1);
  *explicit = opt_bool(L, opts, "explicit_start", 0);
  lua_Integer indent = opt_int(L, opts, "indent", 2);
  d->best_indent = indent > 1 && indent < 10 ? (int)indent : 2;
  lua_Integer width = opt_int(L, opts, "width", 80);
  d->best_width = width > d->best_indent * 2 ? (int)width : 80;
}

/* dump(value[, opts]) -> string */
static int l_dump(lua_State *L)
{
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_isnil(L, 2)) {
    lua_newtable(L);
    lua_replace(L, 2);
  }
  struct dumper *d = lua_newuserdatauv(L, sizeof *d, 0);    /* 3 */
  memset(d, 0, sizeof *d);
  luaL_setmetatable(L, DUMPER_MT);
  lua_newtable(L);                                         /* 4 */
  lua_newtable(L);                                         /* 5 */
  lua_newtable(L);                                         /* 6 */
  d->anchors = 4;
  d->orders = 5;
  d->emitted = 6;
  d->indent = -1;
  d->whitespace = d->indention = 1;
  int explicit_start;
  configure(L, d, 2, &explicit_start);

  find_anchors(L, d, 1, 0);
  if (explicit_start) {
    write_indent(L, d);
    write_indicator(L, d, "---", 1, 0, 0);
  }
  emit_node(L, d, 1, 1, 0, 0);
  write_indent(L, d);
  if (d->open_ended) {
    write_indicator(L, d, "...", 1, 0, 0);
    write_indent(L, d);
  }
  lua_pushlstring(L, d->out ? d->out : "", d->len);
  return 1;
}

static const luaL_Reg yaml_funcs[] = {
  {"load", l_load},
  {"dump", l_dump},
  {NULL, NULL}
};

int brine__open_yaml(lua_State *L)
{
  luaL_requiref(L, "brine.data", brine__open_data, 0);
  lua_pop(L, 1);
  if (luaL_newmetatable(L, LOADER_MT)) {
    lua_pushcfunction(L, loader_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, DUMPER_MT)) {
    lua_pushcfunction(L, dumper_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, yaml_funcs);
  return 1;
}
