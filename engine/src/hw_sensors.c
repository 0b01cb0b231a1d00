/* brine.hw.sensors: the kernel's sensor files under /sys, read without
 * external programs: thermal zones, power supplies (batteries, mains,
 * USB input) and hwmon chips. Every function takes an optional root
 * folder prefixed to /sys, so tests run against fixture trees. Values are
 * converted to plain units: degrees Celsius, volts, amperes, watts, and
 * percent; a file that is missing or unreadable leaves its field out. */
#include <lauxlib.h>
#include <lua.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

/* Reads the first line of a small file into buf (newline stripped).
 * Returns 0, or -1 when the file cannot be read. */
static int read_line(const char *path, char *buf, size_t size)
{
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  char *ok = fgets(buf, (int)size, f);
  fclose(f);
  if (!ok)
    return -1;
  buf[strcspn(buf, "\n")] = '\0';
  return 0;
}

/* Sorted entry names of dir whose names start with prefix; pushes an
 * array of strings, or nil, message, code when dir cannot be opened. */
static int push_entries(lua_State *L, const char *dir, const char *prefix)
{
  DIR *d = opendir(dir);
  if (!d) {
    lua_pushnil(L);
    lua_pushfstring(L, "open %s: %s", dir, strerror(errno));
    lua_pushstring(L, errno == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, strlen(prefix)))
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

/* out = a/b; returns -1 when it does not fit (the entry is skipped). */
static int path_join(char *out, size_t size, const char *a, const char *b)
{
  int n = snprintf(out, size, "%s/%s", a, b);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static const char *root_arg(lua_State *L)
{
  const char *root = luaL_optstring(L, 1, "");
  return strcmp(root, "/") == 0 ? "" : root;
}

/* Sets field name of the map on top from file dir/file: as text, or as an
 * integer divided by scale into a float when scale > 0. */
static void field_from(lua_State *L, const char *dir, const char *file,
                       const char *name, double scale)
{
  char path[4096], buf[256];
  if (path_join(path, sizeof path, dir, file) < 0
      || read_line(path, buf, sizeof buf) < 0)
    return;
  lua_pushstring(L, name);
  if (scale > 0) {
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (end == buf) {
      lua_pop(L, 1);
      return;
    }
    if (scale == 1.0)
      lua_pushinteger(L, (lua_Integer)v);
    else
      lua_pushnumber(L, (double)v / scale);
  } else {
    lua_pushstring(L, buf);
  }
  brine__map_set(L, -3);
}

/* sensors.thermal([root]) -> array of {zone, type, temp} (temp in °C) */
static int l_thermal(lua_State *L)
{
  const char *root = root_arg(L);
  char base[4096];
  snprintf(base, sizeof base, "%s/sys/class/thermal", root);
  int rc = push_entries(L, base, "thermal_zone");
  if (rc != 1)
    return rc;
  brine__new_array(L, 0);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -2), m = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    char dir[4096];
    if (path_join(dir, sizeof dir, base, lua_tostring(L, -1)) < 0) {
      lua_pop(L, 1);
      continue;
    }
    brine__new_map(L, 3);
    lua_pushliteral(L, "zone");
    lua_pushvalue(L, -3);
    brine__map_set(L, -3);
    field_from(L, dir, "type", "type", 0);
    field_from(L, dir, "temp", "temp", 1000.0);
    lua_rawseti(L, -3, ++m);
    lua_pop(L, 1);
  }
  return 1;
}

/* sensors.power_supplies([root]) -> array of maps: name, type, status,
 * online, present, capacity (%), voltage (V), current (A), power (W),
 * temp (°C), health, technology. */
static int l_power_supplies(lua_State *L)
{
  const char *root = root_arg(L);
  char base[4096];
  snprintf(base, sizeof base, "%s/sys/class/power_supply", root);
  int rc = push_entries(L, base, "");
  if (rc != 1)
    return rc;
  brine__new_array(L, 0);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -2), m = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    char dir[4096];
    if (path_join(dir, sizeof dir, base, lua_tostring(L, -1)) < 0) {
      lua_pop(L, 1);
      continue;
    }
    brine__new_map(L, 12);
    lua_pushliteral(L, "name");
    lua_pushvalue(L, -3);
    brine__map_set(L, -3);
    field_from(L, dir, "type", "type", 0);
    field_from(L, dir, "status", "status", 0);
    field_from(L, dir, "online", "online", 1.0);
    field_from(L, dir, "present", "present", 1.0);
    field_from(L, dir, "capacity", "capacity", 1.0);
    field_from(L, dir, "voltage_now", "voltage", 1e6);
    field_from(L, dir, "current_now", "current", 1e6);
    field_from(L, dir, "power_now", "power", 1e6);
    field_from(L, dir, "temp", "temp", 10.0);
    field_from(L, dir, "health", "health", 0);
    field_from(L, dir, "technology", "technology", 0);
    lua_rawseti(L, -3, ++m);
    lua_pop(L, 1);
  }
  return 1;
}

/* Adds the readings of one hwmon chip folder to the map on top: each
 * <kind><n>_input becomes {label=, value=} under key "<kind><n>". */
static void hwmon_readings(lua_State *L, const char *dir)
{
  static const struct { const char *kind; double scale; } kinds[] = {
    {"temp", 1000.0}, {"in", 1000.0}, {"curr", 1000.0}, {"power", 1e6},
    {"fan", 1.0},
  };
  lua_pushliteral(L, "sensors");
  brine__new_map(L, 0);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    for (int idx = 0; idx < 32; idx++) {
      char file[80], key[64], label_file[80];
      snprintf(key, sizeof key, "%s%d", kinds[k].kind, idx);
      snprintf(file, sizeof file, "%s_input", key);
      snprintf(label_file, sizeof label_file, "%s_label", key);
      char path[4096], buf[256];
      if (path_join(path, sizeof path, dir, file) < 0
          || read_line(path, buf, sizeof buf) < 0)
        continue;
      lua_pushstring(L, key);
      brine__new_map(L, 2);
      field_from(L, dir, label_file, "label", 0);
      field_from(L, dir, file, "value", kinds[k].scale);
      brine__map_set(L, -3);
    }
  }
  brine__map_set(L, -3);
}

/* sensors.hwmon([root]) -> array of {chip, name, sensors = {temp1 =
 * {label, value}, in0 = ..., fan1 = ...}}: °C, V, A, W and RPM. */
static int l_hwmon(lua_State *L)
{
  const char *root = root_arg(L);
  char base[4096];
  snprintf(base, sizeof base, "%s/sys/class/hwmon", root);
  int rc = push_entries(L, base, "hwmon");
  if (rc != 1)
    return rc;
  brine__new_array(L, 0);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -2), m = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    char dir[4096];
    if (path_join(dir, sizeof dir, base, lua_tostring(L, -1)) < 0) {
      lua_pop(L, 1);
      continue;
    }
    brine__new_map(L, 3);
    lua_pushliteral(L, "chip");
    lua_pushvalue(L, -3);
    brine__map_set(L, -3);
    field_from(L, dir, "name", "name", 0);
    hwmon_readings(L, dir);
    lua_rawseti(L, -3, ++m);
    lua_pop(L, 1);
  }
  return 1;
}

static const luaL_Reg sensors_funcs[] = {
  {"thermal", l_thermal},
  {"power_supplies", l_power_supplies},
  {"hwmon", l_hwmon},
  {NULL, NULL}
};

int brine__open_hw_sensors(lua_State *L)
{
  luaL_newlib(L, sensors_funcs);
  return 1;
}
