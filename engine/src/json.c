/* brine.json: JSON for Lua, with Python's json module as the reference.
 *
 * decode() turns JSON text into brine's data model (ordered maps, marked
 * arrays, data.null, integers kept as Lua integers) and reports errors as
 * "line L column C: problem" in Python's words. encode() writes what
 * Python's json.dumps writes for the same value, byte for byte: its
 * separators, its indentation, its float repr, its ensure_ascii escapes.
 *
 * Both directions are written by hand rather than on a library such as
 * jansson: jansson has its own value tree with no notion of data.null, of
 * ordered data maps or of Python's float repr, so most of an encoder would
 * be ours anyway, and a decoder that pushes Lua values as it reads avoids
 * building and then converting a second tree. */
#include "data.h"

#include <lauxlib.h>

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEC_DEFAULT_DEPTH 512
#define DEC_MAX_DEPTH 10000   /* beyond this the C stack is at risk */
#define ENC_MAX_DEPTH 1000    /* Python's own recursion limit */

/* ---- Python's float repr ---- */

/* Finds the shortest significant digits of x (finite, not zero) that read
 * back as x: fills digits (no point, no trailing zeros), sets *exp to the
 * decimal exponent of the first digit and *neg, returns the digit count.
 * The 15-digit rounding, zeros stripped, is the shortest form whenever
 * one of 15 digits or fewer exists; subnormals have fewer digits, so for
 * them the search starts at 1. The decimal point is the locale's both in
 * snprintf and strtod, so the check holds in any locale. */
static int shortest_digits(double x, char digits[20], int *exp, int *neg)
{
  char tmp[40];
  int prec = fabs(x) < DBL_MIN ? 1 : 15;
  for (; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, x);
    if (prec == 17 || strtod(tmp, NULL) == x)
      break;
  }

  int nd = 0;
  const char *q = tmp;
  *neg = *q == '-';
  for (q += *neg; *q && *q != 'e'; q++)
    if (*q >= '0' && *q <= '9')
      digits[nd++] = *q;
  *exp = atoi(q + 1);
  while (nd > 1 && digits[nd - 1] == '0')
    nd--;
  return nd;
}

/* Writes repr(x) as Python prints it (shortest digits; exponent form when
 * the exponent is below -4 or at least 16, else a point and at least one
 * digit after it) into out and returns its length. NaN and infinities
 * come out as JSON's extensions NaN, Infinity, -Infinity. */
static int float_repr(double x, char out[40])
{
  if (isnan(x))
    return sprintf(out, "NaN");
  if (isinf(x))
    return sprintf(out, x < 0 ? "-Infinity" : "Infinity");
  if (x == 0)
    return sprintf(out, signbit(x) ? "-0.0" : "0.0");

  char digits[20] = "0";
  int exp, neg, nd = shortest_digits(x, digits, &exp, &neg);
  char *o = out;
  if (neg)
    *o++ = '-';
  if (exp < -4 || exp >= 16) {               /* d.ddde+XX */
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, (size_t)nd - 1);
      o += nd - 1;
    }
    o += sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  } else if (exp < 0) {                      /* 0.000ddd */
    o += sprintf(o, "0.%.*s", -exp - 1, "0000");
    memcpy(o, digits, nd);
    o += nd;
  } else {                                   /* ddd.ddd, ddd00.0 */
    for (int i = 0; i <= exp; i++)
      *o++ = i < nd ? digits[i] : '0';
    *o++ = '.';
    if (nd > exp + 1) {
      memcpy(o, digits + exp + 1, nd - exp - 1);
      o += nd - exp - 1;
    } else {
      *o++ = '0';
    }
  }
  *o = '\0';
  return (int)(o - out);
}

/* ---- decoding ---- */

struct dec {
  lua_State *L;
  const char *start, *p, *end;
  int depth, max_depth;
  int null_slot;          /* stack slot of what null decodes to, or 0 */
  const char *err_at;
  char err[96];
};

static int dec_fail(struct dec *d, const char *at, const char *msg)
{
  d->err_at = at;
  snprintf(d->err, sizeof d->err, "%s", msg);
  return -1;
}

static void skip_ws(struct dec *d)
{
  while (d->p < d->end
         && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
    d->p++;
}

static int is_digit(const struct dec *d, const char *q)
{
  return q < d->end && *q >= '0' && *q <= '9';
}

static int parse_value(struct dec *d);

/* Pushes a float read from the number token [s, e). */
static void push_float_token(struct dec *d, const char *s, const char *e)
{
  char buf[64];
  char point = localeconv()->decimal_point[0];
  size_t n = (size_t)(e - s);
  if (n < sizeof buf) {
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *dot = memchr(buf, '.', n);
    if (dot)
      *dot = point;
    lua_pushnumber(d->L, strtod(buf, NULL));
    return;
  }
  lua_pushlstring(d->L, s, n);               /* long token: a copy */
  char *copy = (char *)lua_tostring(d->L, -1);
  char *dot = strchr(copy, '.');
  if (dot)
    *dot = point;                            /* our private copy */
  double v = strtod(copy, NULL);
  lua_pop(d->L, 1);
  lua_pushnumber(d->L, v);
}

/* Reads a number as JSON (and Python) spell it: an integer when it has no
 * fraction or exponent and fits in 64 bits, else a float. */
static int parse_number(struct dec *d)
{
  const char *s = d->p, *q = d->p;
  int neg = *q == '-', is_float = 0;
  if (neg)
    q++;
  if (!is_digit(d, q))
    return dec_fail(d, s, "Expecting value");
  if (*q == '0')
    q++;
  else
    while (is_digit(d, q))
      q++;
  const char *int_end = q;
  if (q < d->end && *q == '.' && is_digit(d, q + 1)) {
    for (q++; is_digit(d, q); q++) {}
    is_float = 1;
  }
  if (q < d->end && (*q == 'e' || *q == 'E')) {
    const char *x = q + 1;
    if (x < d->end && (*x == '+' || *x == '-'))
      x++;
    if (is_digit(d, x)) {
      for (q = x; is_digit(d, q); q++) {}
      is_float = 1;
    }
  }
  d->p = q;

  if (!is_float) {
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    const char *r = s + neg;
    for (; r < int_end; r++) {
      unsigned dig = (unsigned)(*r - '0');
      if (acc > (limit - dig) / 10)
        break;
      acc = acc * 10 + dig;
    }
    if (r == int_end) {
      lua_pushinteger(d->L, neg ? (lua_Integer)(0 - acc) : (lua_Integer)acc);
      return 0;
    }
    /* beyond 64 bits: a big integer, as Python reads it */
    if (brine__push_digits(d->L, s + neg, (size_t)(int_end - s - neg), 10,
                           neg) < 0)
      return dec_fail(d, s, "Exceeds the limit (4300 digits) for integer "
                      "string conversion");
    return 0;
  }
  push_float_token(d, s, q);
  return 0;
}

static int hex4(const char *q)
{
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = q[i];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= c - '0';
    else if (c >= 'a' && c <= 'f')
      v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v |= c - 'A' + 10;
    else
      return -1;
  }
  return v;
}

static void add_utf8(luaL_Buffer *b, unsigned long cp)
{
  char u[4];
  int n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  luaL_addlstring(b, u, n);
}

/* Reads the \uXXXX escape at q (q points at the backslash), joining a
 * surrogate pair; returns the bytes consumed or -1 after dec_fail. */
static int read_u_escape(struct dec *d, const char *q, luaL_Buffer *b)
{
  int hi = d->end - q >= 6 ? hex4(q + 2) : -1;
  if (hi < 0)
    return dec_fail(d, q + 1, "Invalid \\uXXXX escape");
  if (hi < 0xD800 || hi > 0xDFFF) {
    add_utf8(b, (unsigned long)hi);
    return 6;
  }
  int lo = -1;
  if (hi <= 0xDBFF && d->end - q >= 12 && q[6] == '\\' && q[7] == 'u')
    lo = hex4(q + 8);
  if (lo < 0xDC00 || lo > 0xDFFF)
    return dec_fail(d, q, "Invalid \\uXXXX escape: lone surrogate");
  add_utf8(b, 0x10000 + (((unsigned long)hi - 0xD800) << 10)
                + ((unsigned long)lo - 0xDC00));
  return 12;
}

/* The slow path of parse_string, from q (the first backslash) on; s is
 * the opening quote. Pushes the string. */
static int parse_escaped(struct dec *d, const char *s, const char *q)
{
  luaL_Buffer b;
  luaL_buffinit(d->L, &b);
  luaL_addlstring(&b, s + 1, (size_t)(q - s - 1));
  for (;;) {
    const char *run = q;
    while (q < d->end && *q != '"' && *q != '\\'
           && (unsigned char)*q >= 0x20)
      q++;
    luaL_addlstring(&b, run, (size_t)(q - run));
    if (q >= d->end)
      return dec_fail(d, s, "Unterminated string starting at");
    if (*q == '"')
      break;
    if (*q != '\\')
      return dec_fail(d, q, "Invalid control character at");
    if (q + 1 >= d->end)
      return dec_fail(d, s, "Unterminated string starting at");
    const char *esc = strchr("\"\\/bfnrt", q[1]);
    if (q[1] != '\0' && esc) {
      luaL_addchar(&b, "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"]);
      q += 2;
    } else if (q[1] == 'u') {
      int used = read_u_escape(d, q, &b);
      if (used < 0)
        return -1;
      q += used;
    } else {
      return dec_fail(d, q, "Invalid \\escape");
    }
  }
  luaL_pushresult(&b);
  d->p = q + 1;
  return 0;
}

/* Reads the string whose opening quote is at d->p and pushes it. Bytes
 * are taken as they are; escapes are checked strictly. */
static int parse_string(struct dec *d)
{
  const char *s = d->p, *q = d->p + 1;
  while (q < d->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20)
    q++;
  if (q < d->end && *q == '"') {
    lua_pushlstring(d->L, s + 1, (size_t)(q - s - 1));
    d->p = q + 1;
    return 0;
  }
  if (q >= d->end)
    return dec_fail(d, s, "Unterminated string starting at");
  if (*q != '\\')
    return dec_fail(d, q, "Invalid control character at");
  return parse_escaped(d, s, q);
}

static int enter(struct dec *d)
{
  if (++d->depth > d->max_depth) {
    d->err_at = d->p;
    snprintf(d->err, sizeof d->err, "nesting deeper than %d levels",
             d->max_depth);
    return -1;
  }
  luaL_checkstack(d->L, 8, "JSON nesting");
  d->p++;
  skip_ws(d);
  return 0;
}

static int parse_array(struct dec *d)
{
  if (enter(d) < 0)
    return -1;
  brine__new_array(d->L, 0);                 /* arr */
  if (d->p < d->end && *d->p == ']') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (lua_Integer n = 1;; n++) {
    if (parse_value(d) < 0)                  /* arr v */
      return -1;
    lua_rawseti(d->L, -2, n);                /* arr */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == ']')
      break;
    return dec_fail(d, d->p, "Expecting ',' delimiter");
  }
  d->p++;
  d->depth--;
  return 0;
}

static int parse_object(struct dec *d)
{
  if (enter(d) < 0)
    return -1;
  brine__new_map(d->L, 0);                   /* map */
  if (d->p < d->end && *d->p == '}') {
    d->p++;
    d->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(d);
    if (d->p >= d->end || *d->p != '"')
      return dec_fail(d, d->p,
                      "Expecting property name enclosed in double quotes");
    if (parse_string(d) < 0)                 /* map k */
      return -1;
    skip_ws(d);
    if (d->p >= d->end || *d->p != ':')
      return dec_fail(d, d->p, "Expecting ':' delimiter");
    d->p++;
    if (parse_value(d) < 0)                  /* map k v */
      return -1;
    brine__map_set(d->L, -3);                /* map */
    skip_ws(d);
    if (d->p < d->end && *d->p == ',') {
      d->p++;
      continue;
    }
    if (d->p < d->end && *d->p == '}')
      break;
    return dec_fail(d, d->p, "Expecting ',' delimiter");
  }
  d->p++;
  d->depth--;
  return 0;
}

/* Matches the literal word at d->p; on a match advances past it. */
static int word(struct dec *d, const char *w)
{
  size_t n = strlen(w);
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, w, n) != 0)
    return 0;
  d->p += n;
  return 1;
}

static void push_null(struct dec *d)
{
  if (d->null_slot)
    lua_pushvalue(d->L, d->null_slot);
  else
    brine__push_null(d->L);
}

/* Reads one value at d->p (after blanks) and pushes it; returns 0, or -1
 * with d->err set (the stack then holds junk the caller drops). */
static int parse_value(struct dec *d)
{
  skip_ws(d);
  if (d->p >= d->end)
    return dec_fail(d, d->p, "Expecting value");
  switch (*d->p) {
  case '{': return parse_object(d);
  case '[': return parse_array(d);
  case '"': return parse_string(d);
  case 't':
    if (word(d, "true")) {
      lua_pushboolean(d->L, 1);
      return 0;
    }
    break;
  case 'f':
    if (word(d, "false")) {
      lua_pushboolean(d->L, 0);
      return 0;
    }
    break;
  case 'n':
    if (word(d, "null")) {
      push_null(d);
      return 0;
    }
    break;
  case 'N':
    if (word(d, "NaN")) {
      lua_pushnumber(d->L, NAN);
      return 0;
    }
    break;
  case 'I':
    if (word(d, "Infinity")) {
      lua_pushnumber(d->L, HUGE_VAL);
      return 0;
    }
    break;
  case '-':
    if (word(d, "-Infinity")) {
      lua_pushnumber(d->L, -HUGE_VAL);
      return 0;
    }
    return parse_number(d);
  default:
    if (*d->p >= '0' && *d->p <= '9')
      return parse_number(d);
  }
  return dec_fail(d, d->p, "Expecting value");
}

/* Pushes "line L column C: problem" for the failure in d; columns count
 * characters (UTF-8 sequences), as Python counts them. */
static void push_dec_error(struct dec *d)
{
  long line = 1, col = 1;
  for (const char *q = d->start; q < d->err_at && q < d->end; q++) {
    if (*q == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)*q & 0xC0) != 0x80) {
      col++;
    }
  }
  lua_pushfstring(d->L, "line %d column %d: %s", (int)line, (int)col,
                  d->err);
}

/* decode(text[, {max_depth=, null=}]) -> value | nil, "line L column C: ..." */
static int l_decode(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  struct dec d = {L, s, s, s + len, 0, DEC_DEFAULT_DEPTH, 0, NULL, ""};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    if (lua_getfield(L, 2, "max_depth") != LUA_TNIL) {
      lua_Integer n = luaL_checkinteger(L, -1);
      luaL_argcheck(L, n >= 1 && n <= DEC_MAX_DEPTH, 2,
                    "max_depth must be between 1 and 10000");
      d.max_depth = (int)n;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, 2, "null") != LUA_TNIL)
      d.null_slot = lua_gettop(L);           /* stays on the stack */
    else
      lua_pop(L, 1);
  }

  if (parse_value(&d) == 0) {
    skip_ws(&d);
    if (d.p == d.end)
      return 1;
    dec_fail(&d, d.p, "Extra data");
  }
  lua_pushnil(L);
  push_dec_error(&d);
  return 2;
}

/* ---- encoding ---- */

struct path_step {
  const void *table;     /* the container being written */
  int key;               /* stack slot of the current key (maps), or 0 */
  lua_Integer index;     /* the current index (arrays) */
};

struct enc {
  lua_State *L;
  int buf_slot;          /* stack slot of the userdata holding the output */
  int array_mt_slot;     /* stack slot of the data arrays' metatable */
  int name_key_slot;     /* stack slots of "__name" and "brine.map" */
  char *buf;
  size_t len, cap;
  const char *indent, *item_sep, *key_sep;
  size_t indent_len, item_len, key_len;
  int pretty, sort_keys, ensure_ascii, allow_nan, escape_html, strict;
  int depth;
  char err[256];
  char first_buf[512];   /* the output until it outgrows this */
  struct path_step path[ENC_MAX_DEPTH];  /* last: never cleared as a whole */
};

/* Makes room for n more bytes. The output starts in the encoder's own
 * buffer (on the C stack); past that it lives in a Lua userdata so that
 * an error raised mid-way (out of memory, a failing __pairs) leaks
 * nothing; growing replaces it with a bigger one. */
static void reserve(struct enc *e, size_t n)
{
  if (e->len + n <= e->cap)
    return;
  size_t cap = e->cap * 2;
  if (cap < e->len + n + 64)
    cap = e->len + n + 64;
  char *nb = lua_newuserdatauv(e->L, cap, 0);
  memcpy(nb, e->buf, e->len);
  lua_replace(e->L, e->buf_slot);
  e->buf = nb;
  e->cap = cap;
}

static void put(struct enc *e, const char *s, size_t n)
{
  reserve(e, n);
  memcpy(e->buf + e->len, s, n);
  e->len += n;
}

static void putc_(struct enc *e, char c)
{
  reserve(e, 1);
  e->buf[e->len++] = c;
}

static void newline_indent(struct enc *e, int level)
{
  if (!e->pretty)
    return;
  reserve(e, 1 + e->indent_len * (size_t)level);
  e->buf[e->len++] = '\n';
  for (int i = 0; i < level; i++) {
    memcpy(e->buf + e->len, e->indent, e->indent_len);
    e->len += e->indent_len;
  }
}

/* Records the error "at PATH: problem" and returns -1. */
static int enc_fail(struct enc *e, const char *problem)
{
  char path[160];
  size_t n = 0;
  path[0] = '\0';
  for (int i = 0; i < e->depth && n < sizeof path - 1; i++) {
    const struct path_step *st = &e->path[i];
    int w;
    if (st->key && lua_type(e->L, st->key) == LUA_TSTRING)
      w = snprintf(path + n, sizeof path - n, "%s%s", n ? "." : "",
                   lua_tostring(e->L, st->key));
    else if (st->key)
      w = snprintf(path + n, sizeof path - n, "[%s]",
                   luaL_tolstring(e->L, st->key, NULL));
    else
      w = snprintf(path + n, sizeof path - n, "[%lld]",
                   (long long)st->index);
    if (st->key && lua_type(e->L, st->key) != LUA_TSTRING)
      lua_pop(e->L, 1);                       /* luaL_tolstring's copy */
    n += w > 0 ? (size_t)w : 0;
    if (n >= sizeof path)
      n = sizeof path - 1;
  }
  snprintf(e->err, sizeof e->err, "at %s: %s", n ? path : "top level",
           problem);
  return -1;
}

static void put_hex_escape(struct enc *e, unsigned cp)
{
  char u[7];
  snprintf(u, sizeof u, "\\u%04x", cp & 0xFFFF);
  put(e, u, 6);
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and
 * sets *cp, or returns 0 when the bytes are not valid UTF-8. */
static int utf8_next(const unsigned char *s, size_t n, unsigned long *cp)
{
  unsigned char c = s[0];
  int len;
  unsigned long v, min;
  if (c < 0xC2)
    return 0;
  else if (c < 0xE0) { len = 2; v = c & 0x1F; min = 0x80; }
  else if (c < 0xF0) { len = 3; v = c & 0x0F; min = 0x800; }
  else if (c < 0xF5) { len = 4; v = c & 0x07; min = 0x10000; }
  else
    return 0;
  if ((size_t)len > n)
    return 0;
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

/* Writes a non-ASCII sequence as \u escapes (a surrogate pair above the
 * BMP); a byte that is not valid UTF-8 becomes \ufffd. Returns the bytes
 * consumed. */
static size_t put_ascii_escaped(struct enc *e, const unsigned char *s,
                                size_t n)
{
  unsigned long cp;
  int len = utf8_next(s, n, &cp);
  if (len == 0) {
    put_hex_escape(e, 0xFFFD);
    return 1;
  }
  if (cp >= 0x10000) {
    cp -= 0x10000;
    put_hex_escape(e, 0xD800 | (unsigned)(cp >> 10));
    put_hex_escape(e, 0xDC00 | (unsigned)(cp & 0x3FF));
  } else {
    put_hex_escape(e, (unsigned)cp);
  }
  return (size_t)len;
}

/* Does byte c need an escape under the current options? */
static int needs_escape(const struct enc *e, unsigned char c)
{
  if (c < 0x20 || c == '"' || c == '\\')
    return 1;
  if (e->ensure_ascii && c >= 0x7F)
    return 1;
  return e->escape_html && (c == '<' || c == '>' || c == '&' || c == '\'');
}

static void put_string(struct enc *e, const char *str, size_t n)
{
  const unsigned char *s = (const unsigned char *)str;
  putc_(e, '"');
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (i < n && !needs_escape(e, s[i]))
      i++;
    put(e, str + run, i - run);
    if (i >= n)
      break;
    unsigned char c = s[i];
    const char *short_esc = NULL;
    switch (c) {
    case '"': short_esc = "\\\""; break;
    case '\\': short_esc = "\\\\"; break;
    case '\n': short_esc = "\\n"; break;
    case '\r': short_esc = "\\r"; break;
    case '\t': short_esc = "\\t"; break;
    case '\b': short_esc = "\\b"; break;
    case '\f': short_esc = "\\f"; break;
    }
    if (short_esc) {
      put(e, short_esc, 2);
      i++;
    } else if (c >= 0x80) {
      i += put_ascii_escaped(e, s + i, n - i);
    } else {
      put_hex_escape(e, c);
      i++;
    }
  }
  putc_(e, '"');
}

static int put_float(struct enc *e, double x)
{
  if (!e->allow_nan && !isfinite(x))
    return enc_fail(e, "Out of range float values are not JSON compliant");
  char out[40];
  put(e, out, (size_t)float_repr(x, out));
  return 0;
}

/* Writes the big integer at idx (data.h) in decimal. */
static int put_bigint(struct enc *e, int idx)
{
  size_t n;
  brine__bigint_text(e->L, idx);
  const char *text = lua_tolstring(e->L, -1, &n);
  put(e, text, n);
  lua_pop(e->L, 1);
  return 0;
}

static int put_integer(struct enc *e, lua_Integer v)
{
  char out[24];
  char *p = out + sizeof out;
  /* the magnitude as unsigned, so that the smallest integer negates */
  lua_Unsigned m = v < 0 ? 0u - (lua_Unsigned)v : (lua_Unsigned)v;
  do {
    *--p = (char)('0' + m % 10);
    m /= 10;
  } while (m);
  if (v < 0)
    *--p = '-';
  put(e, p, (size_t)(out + sizeof out - p));
  return 0;
}

/* A table whose metatable is named "brine.map" is a data map, whatever
 * its keys (brine__kind would take keys 1..n for an array). The strings
 * "__name" and "brine.map" wait on the stack, so that this costs a raw
 * lookup and a pointer comparison (short strings are interned). */
static int is_data_map(const struct enc *e, int idx)
{
  lua_State *L = e->L;
  if (!lua_getmetatable(L, idx))
    return 0;
  lua_pushvalue(L, e->name_key_slot);
  lua_rawget(L, -2);
  int yes = lua_rawequal(L, -1, e->name_key_slot + 1);
  lua_pop(L, 2);
  return yes;
}

/* Is the table at idx a data array (metatable "brine.array")? */
static int is_data_array(const struct enc *e, int idx)
{
  if (!lua_getmetatable(e->L, idx))
    return 0;
  int yes = lua_rawequal(e->L, -1, e->array_mt_slot);
  lua_pop(e->L, 1);
  return yes;
}

static int encode_value(struct enc *e, int idx);

/* Opens a container: checks depth and cycles and records it in the path. */
static int open_container(struct enc *e, int idx)
{
  const void *ptr = lua_topointer(e->L, idx);
  for (int i = 0; i < e->depth; i++)
    if (e->path[i].table == ptr)
      return enc_fail(e, "Circular reference detected");
  if (e->depth >= ENC_MAX_DEPTH)
    return enc_fail(e, "nesting deeper than 1000 levels");
  luaL_checkstack(e->L, 8, "JSON nesting");
  e->path[e->depth].table = ptr;
  e->path[e->depth].key = 0;
  e->path[e->depth].index = 0;
  e->depth++;
  return 0;
}

/* Writes the array at idx; its length is its raw length, and holes (Lua
 * nils) inside it are written as null. */
static int encode_array(struct enc *e, int idx)
{
  lua_Integer n = (lua_Integer)lua_rawlen(e->L, idx);
  if (n == 0) {
    put(e, "[]", 2);
    return 0;
  }
  if (open_container(e, idx) < 0)
    return -1;
  struct path_step *st = &e->path[e->depth - 1];
  putc_(e, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1)
      put(e, e->item_sep, e->item_len);
    newline_indent(e, e->depth);
    st->index = i;
    lua_rawgeti(e->L, idx, i);
    if (encode_value(e, lua_gettop(e->L)) < 0)
      return -1;
    lua_pop(e->L, 1);
  }
  e->depth--;
  newline_indent(e, e->depth);
  putc_(e, ']');
  return 0;
}

/* Writes a map key as Python does: keys that are not strings become
 * strings (1 -> "1", 1.5 -> "1.5", true -> "true", null -> "null"). */
static int encode_key(struct enc *e, int k)
{
  switch (brine__kind(e->L, k)) {
  case BRINE_STRING: {
    size_t n;
    const char *s = lua_tolstring(e->L, k, &n);
    put_string(e, s, n);
    return 0;
  }
  case BRINE_INT:
    putc_(e, '"');
    put_integer(e, lua_tointeger(e->L, k));
    break;
  case BRINE_FLOAT:
    putc_(e, '"');
    if (put_float(e, lua_tonumber(e->L, k)) < 0)
      return -1;
    break;
  case BRINE_BIGINT:
    putc_(e, '"');
    put_bigint(e, k);
    break;
  case BRINE_BYTES: {                 /* a byte string key: its bytes */
    size_t n;
    const char *s = brine__bytes(e->L, k, &n);
    put_string(e, s, n);
    return 0;
  }
  case BRINE_BOOL:
    put(e, lua_toboolean(e->L, k) ? "\"true" : "\"false",
        lua_toboolean(e->L, k) ? 5 : 6);
    break;
  case BRINE_NULL:
    put(e, "\"null", 5);
    break;
  default:
    return enc_fail(e, "keys must be str, int, float, bool or None");
  }
  putc_(e, '"');
  return 0;
}

/* Writes one "key": value pair; the key and value are at k and k + 1. */
static int encode_pair(struct enc *e, int k, int first)
{
  e->path[e->depth - 1].key = k;
  put(e, first ? "{" : e->item_sep, first ? 1 : e->item_len);
  newline_indent(e, e->depth);
  if (encode_key(e, k) < 0)
    return -1;
  put(e, e->key_sep, e->key_len);
  return encode_value(e, k + 1);
}

/* Keys of the table at idx, sorted (numbers before strings), for
 * sort_keys when some key is not a string; registered once in the
 * registry. */
static const char SORT_KEYS_CODE[] =
  "local t = ... local ks = {} for k in next, t do ks[#ks + 1] = k end "
  "table.sort(ks, function(a, b) local ta, tb = type(a), type(b) "
  "if ta ~= tb then return ta < tb end "
  "if ta == 'number' or ta == 'string' then return a < b end "
  "return tostring(a) < tostring(b) end) return ks";
static const char SORT_KEYS_KEY = 0;

static void push_sorted_keys(lua_State *L, int idx)
{
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &SORT_KEYS_KEY) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    if (luaL_loadstring(L, SORT_KEYS_CODE) != LUA_OK)
      lua_error(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SORT_KEYS_KEY);
  }
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);                          /* keys */
}

struct str_key {
  const char *s;
  size_t n;
};

/* Byte order, which is Lua's string order in the C locale brine runs in,
 * and Python's code point order for UTF-8 text. */
static int str_key_cmp(const void *pa, const void *pb)
{
  const struct str_key *a = pa, *b = pb;
  int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
  if (c != 0)
    return c;
  return (a->n > b->n) - (a->n < b->n);
}

/* Writes the pairs of the map at idx in key order when every key is a
 * string (the usual case), sorting in C: the keys stay anchored by the
 * map itself while their pointers are sorted. Returns -2 when some key is
 * not a string, for the general path below. */
static int encode_map_string_keys(struct enc *e, int idx)
{
  lua_State *L = e->L;
  lua_Integer n = brine__count(L, idx);
  /* small: this frame is live at each level of a nesting up to 1000 deep */
  struct str_key small[16];
  struct str_key *ks = small;
  if (n > (lua_Integer)(sizeof small / sizeof small[0]))
    ks = lua_newuserdatauv(L, (size_t)n * sizeof *ks, 0);   /* scratch */
  int scratch = ks != small;
  lua_Integer i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1 + scratch);
      return -2;
    }
    ks[i].s = lua_tolstring(L, -1, &ks[i].n);
    i++;
  }
  qsort(ks, (size_t)n, sizeof *ks, str_key_cmp);
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, ks[i].s, ks[i].n);     /* k */
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);                       /* k v */
    if (encode_pair(e, lua_gettop(L) - 1, i == 0) < 0)
      return -1;
    lua_pop(L, 2);
  }
  if (scratch)
    lua_pop(L, 1);
  return n > 0;
}

static int encode_map_sorted(struct enc *e, int idx)
{
  lua_State *L = e->L;
  int fast = encode_map_string_keys(e, idx);
  if (fast != -2)
    return fast;
  push_sorted_keys(L, idx);                   /* keys */
  int keys = lua_gettop(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, keys);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, keys, i);                  /* keys k */
    lua_pushvalue(L, -1);
    lua_rawget(L, idx);                       /* keys k v */
    if (encode_pair(e, keys + 1, i == 1) < 0)
      return -1;
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  return n > 0;
}

static int encode_map_ordered(struct enc *e, int idx)
{
  struct brine__iter it;
  brine__iter_start(e->L, idx, &it);          /* helper */
  int first = 1, top = lua_gettop(e->L);
  while (brine__iter_next(e->L, &it)) {       /* helper k v */
    if (encode_pair(e, top + 1, first) < 0)
      return -1;
    lua_pop(e->L, 2);
    first = 0;
  }
  lua_pop(e->L, 1);
  return !first;
}

static int encode_map(struct enc *e, int idx)
{
  if (open_container(e, idx) < 0)
    return -1;
  int any = e->sort_keys ? encode_map_sorted(e, idx)
                         : encode_map_ordered(e, idx);
  if (any < 0)
    return -1;
  e->depth--;
  if (!any) {
    put(e, "{}", 2);
    return 0;
  }
  newline_indent(e, e->depth);
  putc_(e, '}');
  return 0;
}

static int encode_value(struct enc *e, int idx)
{
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {   /* the common cases without brine__kind */
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    put_string(e, s, n);
    return 0;
  }
  case LUA_TTABLE:
    if (brine__is_bigint(L, idx))
      return put_bigint(e, idx);
    if (brine__bytes(L, idx, NULL)) {       /* a byte string, as its bytes */
      size_t n;
      const char *s = brine__bytes(L, idx, &n);
      put_string(e, s, n);
      return 0;
    }
    if (is_data_map(e, idx))
      return encode_map(e, idx);
    if (is_data_array(e, idx))
      return encode_array(e, idx);
    if (e->strict)
      return enc_fail(e, "not a data map or array");
    break;
  default: break;
  }
  enum brine_kind kind = brine__kind(L, idx);
  switch (kind) {
  case BRINE_NULL: put(e, "null", 4); return 0;
  case BRINE_BOOL:
    if (lua_toboolean(L, idx))
      put(e, "true", 4);
    else
      put(e, "false", 5);
    return 0;
  case BRINE_INT: return put_integer(e, lua_tointeger(L, idx));
  case BRINE_BIGINT: return put_bigint(e, idx);
  case BRINE_FLOAT: return put_float(e, lua_tonumber(L, idx));
  case BRINE_STRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    put_string(e, s, n);
    return 0;
  }
  case BRINE_ARRAY: return encode_array(e, idx);
  case BRINE_MAP: return encode_map(e, idx);
  default: break;
  }
  char msg[96];
  snprintf(msg, sizeof msg, "Object of type %s is not JSON serializable",
           luaL_typename(L, idx));
  return enc_fail(e, msg);
}

/* Reads a boolean option; absent means dflt, anything else raises. */
static int opt_bool(lua_State *L, int opts, const char *name, int dflt)
{
  int t = lua_getfield(L, opts, name);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_error(L, "option '%s' must be a boolean", name);
  int v = t == LUA_TNIL ? dflt : lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* indent: nil (one line), an integer n (n spaces; below 0 counts as 0,
 * as in Python) or a string used as it is. Leaves a string on the stack
 * when pretty. */
static void opt_indent(lua_State *L, int opts, struct enc *e)
{
  int t = lua_getfield(L, opts, "indent");
  if (t == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, -1);
    if (!lua_isinteger(L, -1) || n > 64)
      luaL_error(L, "option 'indent' must be an integer up to 64");
    char spaces[64];
    memset(spaces, ' ', sizeof spaces);
    lua_pop(L, 1);
    lua_pushlstring(L, spaces, n < 0 ? 0 : (size_t)n);
  } else if (t != LUA_TSTRING && t != LUA_TNIL) {
    luaL_error(L, "option 'indent' must be an integer or a string");
  }
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  e->pretty = 1;
  e->indent = lua_tolstring(L, -1, &e->indent_len);
}

static void opt_separators(lua_State *L, int opts, struct enc *e)
{
  int t = lua_getfield(L, opts, "separators");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return;
  }
  luaL_argcheck(L, t == LUA_TTABLE, 2, "separators must be {item, key}");
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  luaL_argcheck(L, lua_type(L, -2) == LUA_TSTRING
                && lua_type(L, -1) == LUA_TSTRING, 2,
                "separators must be {item, key}");
  e->item_sep = lua_tolstring(L, -2, &e->item_len);
  e->key_sep = lua_tolstring(L, -1, &e->key_len);  /* stay on the stack */
}

static void read_encode_opts(lua_State *L, struct enc *e)
{
  e->item_sep = ", ";
  e->key_sep = ": ";
  e->item_len = e->key_len = 2;
  e->ensure_ascii = e->allow_nan = 1;
  if (lua_isnoneornil(L, 2))
    return;
  luaL_checktype(L, 2, LUA_TTABLE);
  e->sort_keys = opt_bool(L, 2, "sort_keys", 0);
  e->ensure_ascii = opt_bool(L, 2, "ensure_ascii", 1);
  e->allow_nan = opt_bool(L, 2, "allow_nan", 1);
  e->escape_html = opt_bool(L, 2, "escape_html", 0);
  e->strict = opt_bool(L, 2, "strict", 0);
  opt_indent(L, 2, e);
  if (e->pretty) {
    e->item_sep = ",";
    e->item_len = 1;
  }
  opt_separators(L, 2, e);
}

/* encode(value[, opts]) -> string | nil, "at PATH: problem" */
static int l_encode(lua_State *L)
{
  luaL_checkany(L, 1);
  lua_settop(L, 2);
  /* on the C stack, so that an error raised mid-way leaves nothing behind;
   * path[] is written before it is read, so only the rest is cleared */
  struct enc enc_, *e = &enc_;
  memset(e, 0, offsetof(struct enc, first_buf));
  e->L = L;
  /* the options' strings stay on the stack while e points into them */
  read_encode_opts(L, e);
  luaL_getmetatable(L, "brine.array");
  e->array_mt_slot = lua_gettop(L);
  lua_pushliteral(L, "__name");
  e->name_key_slot = lua_gettop(L);
  lua_pushliteral(L, "brine.map");
  lua_pushnil(L);                 /* the slot of a grown output buffer */
  e->buf_slot = lua_gettop(L);
  e->buf = e->first_buf;
  e->cap = sizeof e->first_buf;
  lua_pushvalue(L, 1);
  int rc = encode_value(e, lua_gettop(L));
  if (rc == 0)
    lua_pushlstring(L, e->buf, e->len);
  else {
    lua_pushnil(L);
    lua_pushstring(L, e->err);
  }
  return rc == 0 ? 1 : 2;
}

static const luaL_Reg json_funcs[] = {
  {"decode", l_decode},
  {"encode", l_encode},
  {NULL, NULL}
};

int brine__open_json(lua_State *L)
{
  luaL_requiref(L, "brine.data", brine__open_data, 0);
  lua_pop(L, 1);
  luaL_newlib(L, json_funcs);
  brine__push_null(L);
  lua_setfield(L, -2, "null");
  return 1;
}
