/* The operating system grains: kernel and uname fields, the distribution
 * (os, os_family, osrelease, oscodename, osfullname, osfinger and the
 * lsb_distrib_* grains, derived from os-release and lsb-release the way
 * Salt's packaged minion derives them), osarch, init, systemd, selinux,
 * transactional and ps. */
#include "grains.h"

#include "data.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- key=value files ----------------------------------------------------- */

#define KV_MAX 64

struct kv {
  int n;
  char key[KV_MAX][40];
  char val[KV_MAX][256];
};

static const char *kv_get(const struct kv *kv, const char *key)
{
  for (int i = kv->n - 1; i >= 0; i--)
    if (strcmp(kv->key[i], key) == 0)
      return kv->val[i];
  return NULL;
}

static void kv_set(struct kv *kv, const char *key, const char *val)
{
  for (int i = 0; i < kv->n; i++)
    if (strcmp(kv->key[i], key) == 0) {
      snprintf(kv->val[i], sizeof kv->val[i], "%s", val);
      return;
    }
  if (kv->n == KV_MAX)
    return;
  snprintf(kv->key[kv->n], sizeof kv->key[0], "%s", key);
  snprintf(kv->val[kv->n], sizeof kv->val[0], "%s", val);
  kv->n++;
}

/* One os-release line as Python's platform.freedesktop_os_release reads
 * it: NAME=VALUE, VALUE optionally in matching quotes, with backslash
 * escapes of $ " ' ` and \ undone. */
static void os_release_line(struct kv *kv, char *line)
{
  char *eq = line;
  while (isalnum((unsigned char)*eq) || *eq == '_')
    eq++;
  if (eq == line || *eq != '=')
    return;
  *eq = '\0';
  char *v = eq + 1;
  size_t n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
    v[n - 1] = '\0';
    v++;
  }
  char out[256];
  size_t o = 0;
  for (char *s = v; *s && o + 1 < sizeof out; s++) {
    if (*s == '\\' && s[1] && strchr("$\"'`\\", s[1]))
      s++;
    out[o++] = *s;
  }
  out[o] = '\0';
  kv_set(kv, line, out);
}

/* Returns 1 when an os-release file was read into kv. */
static int read_os_release(struct brine__grains *g, struct kv *kv)
{
  kv->n = 0;
  kv_set(kv, "NAME", "Linux");
  kv_set(kv, "ID", "linux");
  kv_set(kv, "PRETTY_NAME", "Linux");
  char *text = brine__grains_slurp(g, "/etc/os-release", NULL);
  if (!text)
    text = brine__grains_slurp(g, "/usr/lib/os-release", NULL);
  if (!text)
    return 0;
  for (char *save, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save))
    os_release_line(kv, line);
  free(text);
  return 1;
}

/* /etc/lsb-release: DISTRIB_{ID,RELEASE,CODENAME,DESCRIPTION}, keeping the
 * value's leading run of word characters, spaces, dots and dashes as
 * Salt's pattern does. Sets lsb_distrib_* in kv. */
static void read_lsb_release(struct brine__grains *g, struct kv *kv)
{
  char *text = brine__grains_slurp(g, "/etc/lsb-release", NULL);
  if (!text)
    return;
  static const char *const keys[] = {"ID", "RELEASE", "CODENAME",
                                     "DESCRIPTION"};
  for (char *save, *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    for (int i = 0; i < 4; i++) {
      char prefix[32];
      int pl = snprintf(prefix, sizeof prefix, "DISTRIB_%s=", keys[i]);
      if (strncmp(line, prefix, (size_t)pl) != 0)
        continue;
      char *v = line + pl;
      if (*v == '"' || *v == '\'')
        v++;
      size_t n = 0;
      while (v[n] && (isalnum((unsigned char)v[n]) || strchr(" \t._-", v[n])))
        n++;
      if (n == 0)
        break;
      v[n] = '\0';
      char key[40];
      snprintf(key, sizeof key, "lsb_distrib_%s", keys[i]);
      for (char *k = key; *k; k++)
        *k = (char)tolower((unsigned char)*k);
      kv_set(kv, key, brine__grains_trim(v));
      break;
    }
  }
  free(text);
}

/* ---- os and os_family ---------------------------------------------------- */

static const char *const os_name_map[][2] = {
  {"redhatente", "RedHat"}, {"gentoobase", "Gentoo"}, {"archarm", "Arch ARM"},
  {"arch", "Arch"}, {"debian", "Debian"}, {"Junos", "Junos"},
  {"raspbian", "Raspbian"}, {"fedoraremi", "Fedora"}, {"chapeau", "Chapeau"},
  {"korora", "Korora"}, {"amazonami", "Amazon"}, {"alt", "ALT"},
  {"enterprise", "OEL"}, {"oracleserv", "OEL"}, {"cloudserve", "CloudLinux"},
  {"cloudlinux", "CloudLinux"}, {"almalinux", "AlmaLinux"},
  {"pidora", "Fedora"}, {"scientific", "ScientificLinux"},
  {"synology", "Synology"}, {"nilrt", "NILinuxRT"}, {"poky", "Poky"},
  {"manjaro", "Manjaro"}, {"manjarolin", "Manjaro"},
  {"univention", "Univention"}, {"antergos", "Antergos"}, {"sles", "SUSE"},
  {"void", "Void"}, {"slesexpand", "RES"}, {"linuxmint", "Mint"},
  {"neon", "KDE neon"}, {"pop", "Pop"}, {"rocky", "Rocky"},
  {"alibabaclo", "Alinux"}, {"mendel", "Mendel"}};

static const char *const os_family_map[][2] = {
  {"Ubuntu", "Debian"}, {"Fedora", "RedHat"}, {"Chapeau", "RedHat"},
  {"Korora", "RedHat"}, {"FedBerry", "RedHat"}, {"CentOS", "RedHat"},
  {"CentOS Stream", "RedHat"}, {"GoOSe", "RedHat"}, {"Scientific", "RedHat"},
  {"Amazon", "RedHat"}, {"CloudLinux", "RedHat"}, {"AlmaLinux", "RedHat"},
  {"OVS", "RedHat"}, {"OEL", "RedHat"}, {"XCP", "RedHat"},
  {"XCP-ng", "RedHat"}, {"XenServer", "RedHat"}, {"RES", "RedHat"},
  {"Sangoma", "RedHat"}, {"VMware Photon OS", "RedHat"},
  {"Mandrake", "Mandriva"}, {"Mint", "Debian"}, {"VMwareESX", "VMware"},
  {"Bluewhite64", "Bluewhite"}, {"Slamd64", "Slackware"}, {"SLES", "Suse"},
  {"SUSE Enterprise Server", "Suse"}, {"SUSE  Enterprise Server", "Suse"},
  {"SLED", "Suse"}, {"openSUSE", "Suse"}, {"SUSE", "Suse"},
  {"openSUSE Leap", "Suse"}, {"openSUSE Tumbleweed", "Suse"},
  {"SLES_SAP", "Suse"}, {"Arch ARM", "Arch"}, {"Manjaro", "Arch"},
  {"Manjaro ARM", "Arch"}, {"Antergos", "Arch"}, {"EndeavourOS", "Arch"},
  {"ALT", "RedHat"}, {"Trisquel", "Debian"}, {"GCEL", "Debian"},
  {"Linaro", "Debian"}, {"elementary OS", "Debian"},
  {"elementary", "Debian"}, {"Univention", "Debian"},
  {"ScientificLinux", "RedHat"}, {"Raspbian", "Debian"},
  {"Devuan", "Debian"}, {"antiX", "Debian"}, {"Kali", "Debian"},
  {"Parrot OS", "Debian"}, {"neon", "Debian"}, {"Cumulus", "Debian"},
  {"Deepin", "Debian"}, {"NILinuxRT", "NILinuxRT"}, {"KDE neon", "Debian"},
  {"Void", "Void"}, {"IDMS", "Debian"}, {"Funtoo", "Gentoo"},
  {"TurnKey", "Debian"}, {"Pop", "Debian"}, {"Rocky", "RedHat"},
  {"AstraLinuxCE", "Debian"}, {"AstraLinuxSE", "Debian"},
  {"Alinux", "RedHat"}, {"Mendel", "Debian"}, {"OSMC", "Debian"}};

static const char *lookup(const char *const (*map)[2], size_t n,
                          const char *key)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp(map[i][0], key) == 0)
      return map[i][1];
  return NULL;
}

#define LOOKUP(map, key) lookup(map, sizeof map / sizeof map[0], key)

/* Salt's _derive_os_grain: drops every "<non-word>linux" and
 * "<non-word>gnu/linux" (any case), then maps the first ten characters of
 * the name without spaces, lower-cased, to the traditional os name. */
static void derive_os(const char *fullname, const char *os_id, char *out,
                      size_t n)
{
  if (os_id && strcmp(os_id, "astra") == 0) {
    if (strcmp(fullname, "Astra Linux (Orel)") == 0) {
      snprintf(out, n, "AstraLinuxCE");
      return;
    }
    if (strcmp(fullname, "Astra Linux (Smolensk)") == 0) {
      snprintf(out, n, "AstraLinuxSE");
      return;
    }
  }
  if (os_id && strcmp(os_id, "pop") == 0 && strcmp(fullname, "Pop!_OS") == 0) {
    snprintf(out, n, "Pop");
    return;
  }
  char name[256];
  size_t o = 0;
  for (const char *s = fullname; *s && o + 1 < sizeof name;) {
    int word = isalnum((unsigned char)*s) || *s == '_';
    if (!word && strncasecmp(s + 1, "gnu/linux", 9) == 0)
      s += 10;
    else if (!word && strncasecmp(s + 1, "linux", 5) == 0)
      s += 6;
    else
      name[o++] = *s++;
  }
  name[o] = '\0';
  char *distro = brine__grains_trim(name);
  char shortname[11];
  size_t k = 0;
  for (const char *s = distro; *s && k < 10; s++)
    if (*s != ' ')
      shortname[k++] = (char)tolower((unsigned char)*s);
  shortname[k] = '\0';
  const char *mapped = LOOKUP(os_name_map, shortname);
  snprintf(out, n, "%s", mapped ? mapped : distro);
}

/* The text inside the first "(...)" of s holding no digit, or after a
 * comma: what the distro package takes for a codename. */
static int paren_codename(const char *s, char *out, size_t n)
{
  for (const char *p = s; p && *p; p++) {
    if (*p == '(') {
      size_t l = strcspn(p + 1, "0123456789)");
      if (l > 0 && p[1 + l] == ')') {
        snprintf(out, n, "%.*s", (int)l, p + 1);
        return 1;
      }
    } else if (*p == ',') {
      const char *q = p + 1;
      while (isspace((unsigned char)*q))
        q++;
      size_t l = strcspn(q, "0123456789");
      if (l > 0) {
        snprintf(out, n, "%.*s", (int)l, q);
        return 1;
      }
    }
  }
  return 0;
}

/* distro.codename(): os-release's VERSION_CODENAME when present (even
 * empty), else UBUNTU_CODENAME, else from VERSION; when that is empty, the
 * codename in the distribution's release file. */
static void distro_codename(struct brine__grains *g, const struct kv *os,
                            char *out, size_t n)
{
  static const char *const files[] = {
    "/etc/fedora-release", "/etc/centos-release", "/etc/redhat-release",
    "/etc/rocky-release", "/etc/almalinux-release", "/etc/system-release"};
  const char *c = kv_get(os, "VERSION_CODENAME");
  if (!c)
    c = kv_get(os, "UBUNTU_CODENAME");
  snprintf(out, n, "%s", c ? c : "");
  if (!c && kv_get(os, "VERSION"))
    paren_codename(kv_get(os, "VERSION"), out, n);
  for (size_t i = 0; !*out && i < sizeof files / sizeof files[0]; i++) {
    char buf[512];
    char *line = brine__grains_read_line(g, files[i], buf, sizeof buf);
    const char *rel = line ? strstr(line, "release ") : NULL;
    if (rel && paren_codename(rel, out, n))
      break;
  }
}

/* The SUSE handling of Salt's legacy path, driven by CPE_NAME. */
static void suse_quirks(const struct kv *os, struct kv *grains)
{
  const char *cpe = kv_get(os, "CPE_NAME");
  if (!cpe || strncmp(cpe, "cpe:", 4) != 0)
    return;
  char parts[13][64];
  int np = 0;
  for (const char *s = cpe; np < 13;) {
    size_t l = strcspn(s, ":");
    snprintf(parts[np++], sizeof parts[0], "%.*s", (int)l, s);
    if (!s[l])
      break;
    s += l + 1;
  }
  const char *vendor = NULL, *version = NULL;
  if (np > 4 && parts[1][0] == '/') {
    vendor = parts[2];
    version = parts[4];
  } else if (np >= 6 && strcmp(parts[1], "2.3") == 0) {
    vendor = parts[3];
    version = strcmp(parts[5], "*") ? parts[5] : NULL;
  }
  if (!vendor || (strcasecmp(vendor, "suse") && strcasecmp(vendor, "opensuse")))
    return;
  kv_set(grains, "os", "SUSE");
  const char *name = kv_get(os, "NAME"), *ver = kv_get(os, "VERSION");
  if (name && strcmp(name, "openSUSE Leap") == 0)
    kv_set(grains, "osfullname", "Leap");
  else if (ver && strcmp(ver, "Tumbleweed") == 0)
    kv_set(grains, "osfullname", ver);
  if (version && *version && strcmp(vendor, "opensuse") == 0)
    kv_set(grains, "lsb_distrib_release", version);
}

/* Rocky and AlmaLinux carry their codename in parentheses. */
static void bracket_codename(struct kv *grains)
{
  const char *os = kv_get(grains, "os"),
             *c = kv_get(grains, "lsb_distrib_codename");
  if (!os || !c || (!strstr(os, "Rocky") && !strstr(os, "AlmaLinux")))
    return;
  const char *open = strchr(c, '(');
  if (!open)
    return;
  char inner[256];
  snprintf(inner, sizeof inner, "%.*s", (int)strcspn(open + 1, ")"), open + 1);
  kv_set(grains, "lsb_distrib_codename", inner);
}

/* Salt's packaged minion cannot import the lsb_release module, so it takes
 * the legacy path of _linux_distribution_data: lsb-release first, then
 * os-release for the lsb_distrib_* values, and os_family from its table. */
static void distribution(struct brine__grains *g, struct kv *grains)
{
  struct kv *os = calloc(1, sizeof *os);
  if (!os)
    return;
  int have_os = read_os_release(g, os);
  read_lsb_release(g, grains);
  if (have_os) {
    char name[256];
    snprintf(name, sizeof name, "%s", kv_get(os, "NAME"));
    kv_set(grains, "osfullname", brine__grains_trim(name));
    derive_os(kv_get(os, "NAME"), kv_get(os, "ID"), name, sizeof name);
    kv_set(grains, "os", name);
  }
  const char *desc = kv_get(grains, "lsb_distrib_description");
  if (desc && strncasecmp(desc, "antergos", 8) == 0) {
    kv_set(grains, "osfullname", "Antergos Linux");
  } else if (!kv_get(grains, "lsb_distrib_id") && have_os) {
    kv_set(grains, "lsb_distrib_id", kv_get(os, "NAME"));
    if (kv_get(os, "VERSION_ID"))
      kv_set(grains, "lsb_distrib_release", kv_get(os, "VERSION_ID"));
    if (kv_get(os, "VERSION_CODENAME"))
      kv_set(grains, "lsb_distrib_codename", kv_get(os, "VERSION_CODENAME"));
    else
      kv_set(grains, "lsb_distrib_codename", kv_get(os, "PRETTY_NAME"));
    suse_quirks(os, grains);
  }

  if (!kv_get(grains, "osfullname")) {
    const char *id = kv_get(grains, "lsb_distrib_id");
    kv_set(grains, "osfullname", id ? id : "");
  }
  char buf[256];
  const char *rel = kv_get(grains, "lsb_distrib_release");
  if (!rel) {
    const char *id = kv_get(os, "ID");
    if (id && (!strcmp(id, "debian") || !strcmp(id, "raspbian")))
      rel = brine__grains_read_line(g, "/etc/debian_version", buf, sizeof buf);
  }
  snprintf(buf, sizeof buf, "%s", rel ? rel : "");
  kv_set(grains, "osrelease", brine__grains_trim(buf));

  bracket_codename(grains);
  const char *code = kv_get(grains, "lsb_distrib_codename");
  snprintf(buf, sizeof buf, "%s", code ? code : "");
  char *c = brine__grains_trim(buf);
  char fallback[256];
  distro_codename(g, os, fallback, sizeof fallback);
  if (!*c || strstr(c, "Red Hat"))
    c = fallback;
  kv_set(grains, "oscodename", c);
  if (!kv_get(grains, "os")) {
    char name[256];
    derive_os(kv_get(grains, "osfullname"), NULL, name, sizeof name);
    kv_set(grains, "os", name);
  }
  const char *fam = LOOKUP(os_family_map, kv_get(grains, "os"));
  kv_set(grains, "os_family", fam ? fam : kv_get(grains, "os"));
  free(os);
}

/* osrelease_info (a tuple of ints and strings), osmajorrelease, osfinger. */
static void osrelease_data(struct brine__grains *g, const char *os,
                           const char *fullname, const char *release)
{
  lua_State *L = g->L;
  lua_createtable(L, 4, 0);
  luaL_setmetatable(L, "brine.tuple");
  lua_Integer n = 0;
  for (const char *s = release;;) {
    size_t l = strcspn(s, ".");
    int digits = l > 0;
    for (size_t i = 0; i < l; i++)
      digits = digits && isdigit((unsigned char)s[i]);
    if (digits)
      lua_pushinteger(L, strtoll(s, NULL, 10));
    else
      lua_pushlstring(L, s, l);
    lua_rawseti(L, -2, ++n);
    if (!s[l])
      break;
    s += l + 1;
  }
  lua_rawgeti(L, -1, 1);                        /* info first */
  if (lua_isinteger(L, -1))
    brine__grains_set_int(g, "osmajorrelease", lua_tointeger(L, -1));

  static const char *const own_name[] = {"Debian", "FreeBSD", "OpenBSD",
                                         "NetBSD", "Mac", "Raspbian"};
  const char *name = fullname;
  for (int i = 0; i < 6; i++)
    if (strcmp(os, own_name[i]) == 0)
      name = os;
  int whole = strcmp(os, "Ubuntu") == 0 || strcmp(os, "Pop") == 0;
  lua_pushfstring(L, "%s-%s", name, whole ? release : lua_tostring(L, -1));
  brine__grains_set_top(g, "osfinger");
  lua_pop(L, 1);
  brine__grains_set_top(g, "osrelease_info");
}

/* ---- osarch -------------------------------------------------------------- */

/* Debian's architecture name of an ELF file (dpkg's own binary tells the
 * architecture of the installed system, whatever the kernel runs). */
static const char *elf_dpkg_arch(struct brine__grains *g, const char *rel)
{
  unsigned char h[64];
  char path[4096];
  if (!brine__grains_path(g, rel, path, sizeof path))
    return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  ssize_t n = read(fd, h, sizeof h);
  close(fd);
  if (n < 52 || memcmp(h, "\177ELF", 4) != 0)
    return NULL;
  int is64 = h[4] == 2, le = h[5] == 1;
  unsigned machine = le ? (unsigned)(h[18] | h[19] << 8)
                        : (unsigned)(h[19] | h[18] << 8);
  const unsigned char *f = h + (is64 ? 48 : 36);
  unsigned long flags = le ? (unsigned long)f[0] | (unsigned long)f[1] << 8
                             | (unsigned long)f[2] << 16
                             | (unsigned long)f[3] << 24
                           : (unsigned long)f[3] | (unsigned long)f[2] << 8
                             | (unsigned long)f[1] << 16
                             | (unsigned long)f[0] << 24;
  switch (machine) {
  case 62: return is64 ? "amd64" : "x32";
  case 3: return "i386";
  case 183: return "arm64";
  case 40: return (flags & 0x400) ? "armhf" : "armel";
  case 21: return le ? "ppc64el" : "ppc64";
  case 20: return "powerpc";
  case 22: return "s390x";
  case 243: return is64 ? "riscv64" : NULL;
  case 258: return "loong64";
  case 8: return is64 ? (le ? "mips64el" : "mips64") : (le ? "mipsel" : "mips");
  default: return NULL;
  }
}

static const char *machine_dpkg_arch(const char *m)
{
  static const char *const map[][2] = {
    {"x86_64", "amd64"}, {"i386", "i386"}, {"i486", "i386"},
    {"i586", "i386"}, {"i686", "i386"}, {"aarch64", "arm64"},
    {"arm64", "arm64"}, {"armv8l", "armhf"}, {"armv7l", "armhf"},
    {"armv6l", "armhf"}, {"armv5tel", "armel"}, {"armv5tejl", "armel"},
    {"ppc64le", "ppc64el"}, {"ppc64", "ppc64"}, {"ppc", "powerpc"},
    {"s390x", "s390x"}, {"riscv64", "riscv64"}, {"loongarch64", "loong64"},
    {"mips64", "mips64el"}, {"mips", "mipsel"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], m) == 0)
      return map[i][1];
  return m;
}

static void osarch(struct brine__grains *g, const char *family)
{
  const char *m = g->uts.machine, *arch = m;
  if (strcmp(family, "Debian") == 0) {
    arch = elf_dpkg_arch(g, "/usr/bin/dpkg");
    if (!arch)
      arch = machine_dpkg_arch(m);
  } else if (strcmp(family, "RedHat") == 0 || strcmp(family, "Suse") == 0) {
    arch = strcmp(m, "armv7l") == 0 ? "armv7hl" : m;
  }
  brine__grains_set_str(g, "osarch", arch);
}

/* ---- init, systemd, selinux ---------------------------------------------- */

/* Salt scans the init binary for the names of known init systems. */
static const char *scan_init_binary(struct brine__grains *g, const char *rel)
{
  static const char *const inits[] = {"upstart", "sysvinit", "systemd"};
  char path[4096];
  if (!brine__grains_path(g, rel, path, sizeof path))
    return NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  enum { CHUNK = 262144, EDGE = 7 };
  char *buf = malloc(CHUNK + EDGE);
  const char *found = NULL;
  size_t edge = 0;
  ssize_t n;
  while (buf && !found && (n = read(fd, buf + edge, CHUNK)) > 0) {
    size_t len = edge + (size_t)n;
    for (size_t i = edge; i < len; i++)
      buf[i] = (char)tolower((unsigned char)buf[i]);
    for (int k = 0; k < 3 && !found; k++)
      if (memmem(buf, len, inits[k], strlen(inits[k])))
        found = inits[k];
    edge = len < EDGE ? len : EDGE;
    memmove(buf, buf + len - edge, edge);
  }
  free(buf);
  close(fd);
  return found;
}

static int cmdline_has(char **words, int n, const char *s)
{
  for (int i = 0; i < n; i++)
    if (strcmp(words[i], s) == 0)
      return 1;
  return 0;
}

static const char *init_system(struct brine__grains *g)
{
  if (brine__grains_exists(g, "/run/systemd/system"))
    return "systemd";
  size_t len;
  char *cmd = brine__grains_slurp(g, "/proc/1/cmdline", &len);
  if (!cmd)
    return "unknown";
  for (size_t i = 0; i < len; i++)
    if (cmd[i] == '\0')
      cmd[i] = ' ';
  char *words[64];
  int n = 0;
  for (char *save, *w = strtok_r(cmd, " \t\n", &save); w && n < 64;
       w = strtok_r(NULL, " \t\n", &save))
    words[n++] = w;
  const char *init = "unknown";
  char bin[1024], tool[1024];
  if (n > 0 && brine__grains_which(g, words[0], bin, sizeof bin)
      && strlen(bin) >= 8 && strcmp(bin + strlen(bin) - 8, "bin/init") == 0) {
    const char *found = scan_init_binary(g, bin);
    if (found)
      init = found;
  } else if (brine__grains_which(g, "supervisord", tool, sizeof tool)
             && cmdline_has(words, n, tool)) {
    init = "supervisord";
  } else if (brine__grains_which(g, "dumb-init", tool, sizeof tool)
             && cmdline_has(words, n, tool)) {
    init = "dumb-init";
  } else if (brine__grains_which(g, "tini", tool, sizeof tool)
             && cmdline_has(words, n, tool)) {
    init = "tini";
  } else if ((n == 1 && strcmp(words[0], "runit") == 0)
             || cmdline_has(words, n, "/sbin/my_init")) {
    init = "runit";
  }
  free(cmd);
  return init;
}

/* Finds libsystemd-shared-<version>.so: writes its path (below the root)
 * and returns the version, or NULL. */
static const char *systemd_shared(struct brine__grains *g, char *rel,
                                  size_t n, char *version, size_t vn)
{
  char dirs[8][256];
  int nd = 0;
  snprintf(dirs[nd++], sizeof dirs[0], "/usr/lib/systemd");
  snprintf(dirs[nd++], sizeof dirs[0], "/lib/systemd");
  char path[4096];
  DIR *d = brine__grains_path(g, "/usr/lib", path, sizeof path)
           ? opendir(path) : NULL;
  for (struct dirent *e; d && (e = readdir(d)) && nd < 8;)
    if (strstr(e->d_name, "-linux-"))
      snprintf(dirs[nd++], sizeof dirs[0], "/usr/lib/%.200s/systemd",
               e->d_name);
  if (d)
    closedir(d);
  for (int i = 0; i < nd; i++) {
    if (!brine__grains_path(g, dirs[i], path, sizeof path) ||
        !(d = opendir(path)))
      continue;
    for (struct dirent *e; (e = readdir(d));) {
      const char *v = e->d_name + 18;
      if (strncmp(e->d_name, "libsystemd-shared-", 18) != 0 ||
          !isdigit((unsigned char)*v))
        continue;
      snprintf(version, vn, "%.*s", (int)strspn(v, "0123456789."), v);
      size_t vl = strlen(version);
      if (vl && version[vl - 1] == '.')
        version[vl - 1] = '\0';
      snprintf(rel, n, "%.255s/%.255s", dirs[i], e->d_name);
      closedir(d);
      return version;
    }
    closedir(d);
  }
  return NULL;
}

/* The features line of `systemctl --version` is one constant string in
 * libsystemd-shared: it starts with [+-]PAM and ends with the default
 * cgroup hierarchy. */
static int systemd_features(struct brine__grains *g, const char *rel,
                            char *out, size_t n)
{
  /* The scan reads megabytes, so its answer is kept for as long as the
   * library file stays the same one. */
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    time_t mtime;
    char features[1024];
  } cache;
  char path[4096];
  if (!brine__grains_path(g, rel, path, sizeof path))
    return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
    if (fd >= 0)
      close(fd);
    return 0;
  }
  pthread_mutex_lock(&lock);
  int cached = cache.features[0] && cache.dev == st.st_dev &&
               cache.ino == st.st_ino && cache.size == st.st_size &&
               cache.mtime == st.st_mtime;
  if (cached)
    snprintf(out, n, "%s", cache.features);
  pthread_mutex_unlock(&lock);
  if (cached) {
    close(fd);
    return 1;
  }
  const char *map =
      mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED)
    return 0;
  int ok = 0;
  size_t size = (size_t)st.st_size;
  const char *hit = memmem(map, size, "PAM +AUDIT", 10);
  if (!hit)
    hit = memmem(map, size, "PAM -AUDIT", 10);
  if (hit && hit > map) {
    const char *start = hit - 1;
    const char *end = memchr(start, '\0', size - (size_t)(start - map));
    if (end && (*start == '+' || *start == '-')) {
      snprintf(out, n, "%.*s", (int)(end - start), start);
      ok = 1;
    }
  }
  munmap((void *)map, size);
  if (ok) {
    pthread_mutex_lock(&lock);
    cache.dev = st.st_dev;
    cache.ino = st.st_ino;
    cache.size = st.st_size;
    cache.mtime = st.st_mtime;
    snprintf(cache.features, sizeof cache.features, "%s", out);
    pthread_mutex_unlock(&lock);
  }
  return ok;
}

static void systemd_grain(struct brine__grains *g)
{
  char tool[1024], rel[1024], version[32], features[1024];
  if (!brine__grains_which(g, "systemctl", tool, sizeof tool)
      || !brine__grains_which(g, "localectl", tool, sizeof tool))
    return;
  if (!systemd_shared(g, rel, sizeof rel, version, sizeof version))
    return;
  lua_createtable(g->L, 0, 2);
  lua_pushstring(g->L, version);
  lua_setfield(g->L, -2, "version");
  if (systemd_features(g, rel, features, sizeof features)) {
    lua_pushstring(g->L, features);
    lua_setfield(g->L, -2, "features");
  }
  brine__grains_set_top(g, "systemd");
}

static void selinux_grain(struct brine__grains *g)
{
  char tool[1024], buf[16];
  if (!brine__grains_which(g, "selinuxenabled", tool, sizeof tool))
    return;
  int enabled = brine__grains_is_dir(g, "/sys/fs/selinux")
                && brine__grains_exists(g, "/sys/fs/selinux/enforce");
  lua_createtable(g->L, 0, 2);
  lua_pushboolean(g->L, enabled);
  lua_setfield(g->L, -2, "enabled");
  if (brine__grains_which(g, "getenforce", tool, sizeof tool)) {
    char *v = enabled ? brine__grains_read_line(g, "/sys/fs/selinux/enforce",
                                                buf, sizeof buf) : NULL;
    lua_pushstring(g->L, !v                    ? "Disabled"
                         : strcmp(v, "1") == 0 ? "Enforcing"
                                               : "Permissive");
    lua_setfield(g->L, -2, "enforced");
  }
  brine__grains_set_top(g, "selinux");
}

/* ---- the group ----------------------------------------------------------- */

static void set_kv(struct brine__grains *g, const struct kv *kv,
                   const char *key)
{
  const char *v = kv_get(kv, key);
  if (v)
    brine__grains_set_str(g, key, v);
}

void brine__grains_os(struct brine__grains *g)
{
  brine__grains_set_str(g, "kernel", g->uts.sysname);
  brine__grains_set_str(g, "kernelrelease", g->uts.release);
  brine__grains_set_str(g, "kernelversion", g->uts.version);
  brine__grains_set_str(g, "cpuarch", g->uts.machine);
  brine__grains_set_str(g, "nodename", g->hostname ? g->hostname
                                                   : g->uts.nodename);

  struct kv *kv = calloc(1, sizeof *kv);
  if (!kv)
    return;
  distribution(g, kv);
  static const char *const keys[] = {
    "os", "os_family", "osfullname", "osrelease", "oscodename",
    "lsb_distrib_id", "lsb_distrib_release", "lsb_distrib_codename",
    "lsb_distrib_description"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    set_kv(g, kv, keys[i]);
  const char *rel = kv_get(kv, "osrelease");
  if (rel && *rel)
    osrelease_data(g, kv_get(kv, "os"), kv_get(kv, "osfullname"), rel);
  osarch(g, kv_get(kv, "os_family"));
  const char *family = kv_get(kv, "os_family");
  brine__grains_set_str(g, "ps", strcmp(family, "NILinuxRT") == 0
                                   ? "ps -o user,pid,ppid,tty,time,comm"
                                   : "ps -efHww");
  free(kv);

  brine__grains_set_str(g, "init", init_system(g));
  systemd_grain(g);
  selinux_grain(g);
  char tool[1024];
  brine__grains_set_bool(g, "transactional",
                         brine__grains_which(g, "transactional-update", tool,
                                             sizeof tool));
}
