/* The hardware grains: CPU (num_cpus, cpu_model, cpu_flags), memory, the
 * firmware's identity (DMI in /sys/class/dmi/id, or the device tree on
 * boards such as the Raspberry Pi), virtual and virtual_subtype (Salt's
 * detection, with the programs it runs replaced by the files they read),
 * disks and ssds, gpus, efi and mdadm. */
#include "grains.h"

#include "data.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- cpu and memory ------------------------------------------------------ */

/* Pushes the words of s as an array. */
static void push_words(lua_State *L, const char *s)
{
  brine__new_array(L, 0);
  while (*s) {
    while (*s && isspace((unsigned char)*s))
      s++;
    size_t l = 0;
    while (s[l] && !isspace((unsigned char)s[l]))
      l++;
    if (!l)
      break;
    lua_pushlstring(L, s, l);
    brine__grains_append(L, -2);
    s += l;
  }
}

/* Salt's _linux_cpudata: key is the text before the first ':', value the
 * text up to the second ':', both stripped. */
static void cpu_grains(struct brine__grains *g, const char *cpuinfo)
{
  lua_State *L = g->L;
  lua_Integer num = 0;
  int have_flags = 0;
  char model[512] = "Unknown";
  char *text = strdup(cpuinfo ? cpuinfo : "");
  for (char *save, *line = text ? strtok_r(text, "\n", &save) : NULL; line;
       line = strtok_r(NULL, "\n", &save)) {
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    char *val = colon + 1, *c2 = strchr(val, ':');
    if (c2)
      *c2 = '\0';
    char *key = brine__grains_trim(line);
    val = brine__grains_trim(val);
    if (strcmp(key, "processor") == 0) {
      num++;
    } else if (strcmp(key, "# processors") == 0) {
      num = strtoll(val, NULL, 10);
    } else if (!strcmp(key, "vendor_id") || !strcmp(key, "model name")
               || !strcmp(key, "cpu")) {
      snprintf(model, sizeof model, "%s", val);
    } else if (!strcmp(key, "flags") || !strcmp(key, "Features")) {
      push_words(L, val);
      brine__grains_set_top(g, "cpu_flags");
      have_flags = 1;
    } else if (strcmp(key, "Processor") == 0) {
      snprintf(model, sizeof model, "%.*s", (int)strcspn(val, "-"), val);
      num = 1;
    }
  }
  free(text);
  brine__grains_set_int(g, "num_cpus", num);
  brine__grains_set_str(g, "cpu_model", model);
  if (!have_flags) {
    brine__new_array(L, 0);
    brine__grains_set_top(g, "cpu_flags");
  }
}

static void mem_grains(struct brine__grains *g)
{
  lua_Integer mem = 0, swap = 0;
  char buf[8192];
  if (brine__grains_read(g, "/proc/meminfo", buf, sizeof buf) >= 0) {
    for (char *save, *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
      if (strncmp(line, "MemTotal:", 9) == 0)
        mem = strtoll(line + 9, NULL, 10) / 1024;
      else if (strncmp(line, "SwapTotal:", 10) == 0)
        swap = strtoll(line + 10, NULL, 10) / 1024;
    }
  }
  brine__grains_set_int(g, "mem_total", mem);
  brine__grains_set_int(g, "swap_total", swap);
}

/* ---- firmware identity --------------------------------------------------- */

/* A device-tree string property: NUL-terminated, maybe with trailing
 * NULs. */
static char *dt_string(struct brine__grains *g, const char *name, char *buf,
                       size_t n)
{
  char rel[256];
  snprintf(rel, sizeof rel, "/proc/device-tree/%s", name);
  if (!brine__grains_is_file(g, rel))
    return NULL;
  ssize_t len = brine__grains_read(g, rel, buf, n);
  if (len < 0)
    return NULL;
  while (len > 0 && buf[len - 1] == '\0')
    len--;
  buf[len] = '\0';
  return len ? buf : NULL;
}

static void devicetree_grains(struct brine__grains *g)
{
  char buf[512];
  char *model = dt_string(g, "model", buf, sizeof buf);
  if (model) {
    char *comma = strchr(model, ',');
    if (comma) {
      *comma = '\0';
      brine__grains_set_str(g, "manufacturer", model);
      brine__grains_set_str(g, "productname", comma + 1);
    } else {
      brine__grains_set_str(g, "productname", model);
    }
  }
  char *id = dt_string(g, "system-id", buf, sizeof buf);
  if (id)
    brine__grains_set_str(g, "serialnumber", id);
  char *serial = dt_string(g, "serial-number", buf, sizeof buf);
  if (serial)
    brine__grains_set_str(g, "serialnumber", serial);
}

/* The value of the first "key : value" line of /proc/cpuinfo with this key,
 * copied into buf; NULL when there is none. */
static char *cpuinfo_field(const char *cpuinfo, const char *key, char *buf,
                           size_t n)
{
  size_t klen = strlen(key);
  for (const char *line = cpuinfo; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > klen && strncmp(line, key, klen) == 0
        && strchr(" \t:", line[klen])) {
      const char *colon = memchr(line, ':', len);
      if (colon) {
        snprintf(buf, n, "%.*s", (int)(len - (size_t)(colon + 1 - line)),
                 colon + 1);
        char *val = brine__grains_trim(buf);
        memmove(buf, val, strlen(val) + 1);
        return buf;
      }
    }
    line = end ? end + 1 : NULL;
  }
  return NULL;
}

/* Raspberry Pi kernels also print the board's model and serial number in
 * /proc/cpuinfo; they stand in where the device tree is not visible (a
 * container, an old kernel). An all-zero serial means "none". */
static void cpuinfo_board_grains(struct brine__grains *g, const char *cpuinfo)
{
  char buf[512], have[8];
  if (!brine__grains_get_str(g, "productname", have, sizeof have)
      && cpuinfo_field(cpuinfo, "Model", buf, sizeof buf) && buf[0])
    brine__grains_set_str(g, "productname", buf);
  if (!brine__grains_get_str(g, "serialnumber", have, sizeof have)
      && cpuinfo_field(cpuinfo, "Serial", buf, sizeof buf)
      && buf[strspn(buf, "0")] != '\0')
    brine__grains_set_str(g, "serialnumber", buf);
}

/* DMI through sysfs; files only root may read (serial, uuid) are left
 * out, as Salt leaves them out. */
static void dmi_grains(struct brine__grains *g)
{
  static const char *const files[][2] = {
    {"biosversion", "bios_version"}, {"biosvendor", "bios_vendor"},
    {"boardname", "board_name"},     {"productname", "product_name"},
    {"manufacturer", "sys_vendor"},  {"biosreleasedate", "bios_date"},
    {"uuid", "product_uuid"},        {"serialnumber", "product_serial"}};
  if (!brine__grains_exists(g, "/sys/class/dmi/id"))
    return;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char rel[128], buf[512];
    snprintf(rel, sizeof rel, "/sys/class/dmi/id/%s", files[i][1]);
    if (!brine__grains_exists(g, rel))
      continue;
    char *v = brine__grains_read_line(g, rel, buf, sizeof buf);
    if (!v)
      continue;
    if (strcmp(files[i][0], "uuid") == 0)
      for (char *c = v; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    brine__grains_set_str(g, files[i][0], v);
  }
}

/* ---- virtual ------------------------------------------------------------- */

struct virt {
  char virtual[64];
  char subtype[128];
};

static void set_virt(struct virt *v, const char *virtual, const char *sub)
{
  if (virtual)
    snprintf(v->virtual, sizeof v->virtual, "%s", virtual);
  if (sub)
    snprintf(v->subtype, sizeof v->subtype, "%s", sub);
}

static int file_has(struct brine__grains *g, const char *rel,
                    const char *needle)
{
  char *text = brine__grains_slurp(g, rel, NULL);
  int yes = text && strstr(text, needle);
  free(text);
  return yes;
}

static char *dmi(struct brine__grains *g, const char *name, char *buf,
                 size_t n)
{
  char rel[128];
  snprintf(rel, sizeof rel, "/sys/class/dmi/id/%s", name);
  char *v = brine__grains_read_line(g, rel, buf, n);
  return v ? v : strcpy(buf, "");
}

/* The hypervisor CPUID says (x86, on the running system only). */
static const char *cpuid_hypervisor(struct brine__grains *g)
{
#if defined(__x86_64__) || defined(__i386__)
  static const char *const names[][2] = {
    {"KVMKVMKVM", "kvm"},      {"Linux KVM Hv", "kvm"},
    {"TCGTCGTCGTCG", "qemu"},  {"XenVMMXenVMM", "xen"},
    {"VMwareVMware", "vmware"}, {"Microsoft Hv", "microsoft"},
    {"bhyve bhyve ", "bhyve"}, {"VBoxVBoxVBox", "oracle"},
    {"ACRNACRNACRN", "acrn"}};
  unsigned a, b, c, d;
  if (!g->real)
    return NULL;
  __cpuid(1, a, b, c, d);
  if (!(c & (1u << 31)))
    return NULL;
  __cpuid(0x40000000, a, b, c, d);
  char sig[13];
  memcpy(sig, &b, 4);
  memcpy(sig + 4, &c, 4);
  memcpy(sig + 8, &d, 4);
  sig[12] = '\0';
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(sig, names[i][0]) == 0)
      return names[i][1];
  return "vm-other";
#else
  (void)g;
  return NULL;
#endif
}

/* What systemd-detect-virt would print: a container first, then a VM from
 * CPUID (or, below a fixture root or off x86, the kvm-clock clocksource
 * and the device tree), then DMI vendor strings. */
static const char *detect_virt(struct brine__grains *g, const char *cpuinfo)
{
  static char container[64];
  char buf[512];
  char *c =
      brine__grains_read_line(g, "/run/systemd/container", buf, sizeof buf);
  if (!c)
    c = brine__grains_read_line(g, "/run/host/container-manager", buf,
                                sizeof buf);
  if (c && *c) {
    snprintf(container, sizeof container, "%s", c);
    return container;
  }
  size_t elen;
  char *env = brine__grains_slurp(g, "/proc/1/environ", &elen);
  for (size_t i = 0; env && i < elen; i += strlen(env + i) + 1)
    if (strncmp(env + i, "container=", 10) == 0 && env[i + 10]) {
      snprintf(container, sizeof container, "%s", env + i + 10);
      free(env);
      return container;
    }
  free(env);
  if (brine__grains_exists(g, "/run/.containerenv"))
    return "podman";
  if (brine__grains_exists(g, "/.dockerenv"))
    return "docker";

  const char *vm = cpuid_hypervisor(g);
  if (vm)
    return vm;
  if (cpuinfo && strstr(cpuinfo, " hypervisor")
      && file_has(g, "/sys/devices/system/clocksource/clocksource0/"
                     "available_clocksource", "kvm-clock"))
    return "kvm";
  char *hv = brine__grains_read_line(
      g, "/proc/device-tree/hypervisor/compatible", buf, sizeof buf);
  if (hv)
    return strstr(hv, "kvm") ? "kvm" : strstr(hv, "xen") ? "xen" : "vm-other";
  static const char *const vendors[][2] = {
    {"KVM", "kvm"}, {"OpenStack", "kvm"}, {"KubeVirt", "kvm"},
    {"Amazon EC2", "amazon"}, {"QEMU", "qemu"}, {"VMware", "vmware"},
    {"VMW", "vmware"}, {"innotek GmbH", "oracle"}, {"VirtualBox", "oracle"},
    {"Oracle Corporation", "oracle"}, {"Xen", "xen"}, {"Bochs", "bochs"},
    {"Parallels", "parallels"}, {"BHYVE", "bhyve"}, {"Hyper-V", "microsoft"},
    {"Google Compute Engine", "google"}};
  static const char *const fields[] = {"product_name", "sys_vendor",
                                       "board_vendor", "bios_vendor",
                                       "product_version"};
  for (int f = 0; f < 5; f++) {
    char *v = dmi(g, fields[f], buf, sizeof buf);
    for (size_t i = 0; i < sizeof vendors / sizeof vendors[0]; i++)
      if (strncmp(v, vendors[i][0], strlen(vendors[i][0])) == 0)
        return vendors[i][1];
  }
  if (cpuinfo && strstr(cpuinfo, " hypervisor"))
    return "vm-other";
  return "none";
}

/* Salt's reading of systemd-detect-virt's answer; returns 1 when it
 * settles the question. */
static int from_detect_virt(struct virt *v, const char *out)
{
  static const char *const same[] = {"qemu", "kvm", "oracle", "xen", "bochs",
                                     "chroot", "uml", "systemd-nspawn"};
  for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
    if (strcmp(out, same[i]) == 0)
      return set_virt(v, out, NULL), 1;
  if (strstr(out, "vmware"))
    return set_virt(v, "VMware", NULL), 1;
  if (strstr(out, "microsoft"))
    return set_virt(v, "VirtualPC", NULL), 1;
  if (strstr(out, "lxc"))
    return set_virt(v, "container", "LXC"), 1;
  if (strstr(out, "amazon"))
    return set_virt(v, "Nitro", "Amazon EC2"), 1;
  return 0;
}

/* dmidecode's output as Salt reads it, from the same DMI fields. */
static void from_dmidecode(struct brine__grains *g, struct virt *v)
{
  char bv[256], sv[256], pn[256], pv[256];
  dmi(g, "bios_vendor", bv, sizeof bv);
  dmi(g, "sys_vendor", sv, sizeof sv);
  dmi(g, "product_name", pn, sizeof pn);
  dmi(g, "product_version", pv, sizeof pv);
  if (strstr(bv, "QEMU") || strstr(sv, "QEMU") || strstr(bv, "Bochs")
      || strstr(sv, "Bochs"))
    set_virt(v, "kvm", NULL);
  int any = 0;
  const char *all[] = {bv, sv, pn, pv};
  for (int i = 0; i < 4; i++)
    any |= strstr(all[i], "BHYVE") != NULL;
  if (any)
    set_virt(v, "bhyve", NULL);
  else if (strncmp(sv, "oVirt", 5) == 0)
    set_virt(v, "kvm", "ovirt");
  else if (strncmp(pn, "RHEV Hypervisor", 15) == 0)
    set_virt(v, "kvm", "rhev");
  else if (strstr(pn, "VirtualBox") || strstr(sv, "VirtualBox"))
    set_virt(v, "VirtualBox", NULL);
  else if (strstr(pn, "VMware") || strstr(sv, "VMware"))
    set_virt(v, "VMware", NULL);
  else if (strncmp(sv, "Microsoft", 9) == 0 && strstr(pn, "Virtual Machine"))
    set_virt(v, "VirtualPC", NULL);
  else if (strstr(sv, "Parallels Software"))
    set_virt(v, "Parallels", NULL);
  else if (strncmp(sv, "Google", 6) == 0)
    set_virt(v, "kvm", NULL);
  else if (strncmp(bv, "SeaBIOS", 7) == 0)
    set_virt(v, "kvm", NULL);
}

/* lspci's device list as Salt reads it: vendors by their PCI ids. */
static void from_lspci(struct brine__grains *g, struct virt *v)
{
  char path[4096];
  DIR *d = brine__grains_path(g, "/sys/bus/pci/devices", path, sizeof path)
           ? opendir(path) : NULL;
  int vmware = 0, vbox = 0, qemu = 0, virtio = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    char rel[512], buf[32];
    if (e->d_name[0] == '.')
      continue;
    snprintf(rel, sizeof rel, "/sys/bus/pci/devices/%.200s/vendor", e->d_name);
    char *id = brine__grains_read_line(g, rel, buf, sizeof buf);
    if (!id)
      continue;
    vmware |= strcmp(id, "0x15ad") == 0;
    vbox |= strcmp(id, "0x80ee") == 0;
    qemu |= strcmp(id, "0x1b36") == 0 || strcmp(id, "0x1234") == 0;
    virtio |= strcmp(id, "0x1af4") == 0;
  }
  if (d)
    closedir(d);
  if (vmware)
    set_virt(v, "VMware", NULL);
  else if (vbox)
    set_virt(v, "VirtualBox", NULL);
  else if (qemu || virtio)
    set_virt(v, "kvm", NULL);
}

/* The commands Salt tries, in its order; each is used only when its
 * program is installed, and dmidecode only when it could read the
 * firmware tables (as root). */
static void virt_commands(struct brine__grains *g, struct virt *v,
                          const char *cpuinfo)
{
  char tool[1024];
  int virt_what = brine__grains_which(g, "virt-what", tool, sizeof tool);
  if (!virt_what &&
      brine__grains_which(g, "systemd-detect-virt", tool, sizeof tool) &&
      from_detect_virt(v, detect_virt(g, cpuinfo)))
    return;
  if (virt_what) {
    /* TODO: virt-what's own probes are not reproduced; its common answers
     * match systemd-detect-virt's, so that reading stands in for it. */
    from_detect_virt(v, detect_virt(g, cpuinfo));
    return;
  }
  if (brine__grains_which(g, "dmidecode", tool, sizeof tool)
      && (!g->real || geteuid() == 0)
      && brine__grains_exists(g, "/sys/class/dmi/id")) {
    from_dmidecode(g, v);
    return;
  }
  if (brine__grains_exists(g, "/proc/bus/pci")
      && brine__grains_which(g, "lspci", tool, sizeof tool))
    from_lspci(g, v);
}

static void virt_xen(struct brine__grains *g, struct virt *v)
{
  if (!brine__grains_is_dir(g, "/proc/sys/xen") &&
      !brine__grains_is_dir(g, "/sys/bus/xen") &&
      !brine__grains_is_dir(g, "/proc/xen"))
    return;
  char pn[256], buf[512];
  if (brine__grains_is_file(g, "/proc/xen/xsd_kva")) {
    set_virt(v, NULL, "Xen Dom0");
  } else if (strcmp(dmi(g, "product_name", pn, sizeof pn), "HVM domU") == 0) {
    set_virt(v, NULL, "Xen HVM DomU");
  } else if (brine__grains_read(g, "/proc/xen/capabilities", buf, sizeof buf) >=
             0) {
    set_virt(v, NULL, strstr(buf, "control_d") ? "Xen Dom0" : "Xen PV DomU");
  } else if (brine__grains_is_dir(g, "/sys/bus/xen/drivers/xenconsole")) {
    set_virt(v, NULL, "Xen PV DomU");
  }
  char low[128];
  snprintf(low, sizeof low, "%s", v->subtype);
  for (char *c = low; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (strstr(low, "dom"))
    set_virt(v, "xen", NULL);
}

/* The file checks Salt makes after the commands, in its order. */
static void virt_files(struct brine__grains *g, struct virt *v,
                       const char *cpuinfo)
{
  struct stat a, b;
  if (g->real && stat("/", &a) == 0 && stat("/proc/1/root/.", &b) == 0
      && (a.st_dev != b.st_dev || a.st_ino != b.st_ino))
    set_virt(v, NULL, "chroot");
  if (brine__grains_is_dir(g, "/proc/vz")) {
    if (brine__grains_is_file(g, "/proc/vz/version"))
      set_virt(v, "openvzhn", NULL);
    else if (brine__grains_is_file(g, "/proc/vz/veinfo"))
      set_virt(v, "openvzve", NULL);
  }
  char *status = brine__grains_slurp(g, "/proc/self/status", NULL);
  char *env = status ? strstr(status, "\nenvID:") : NULL;
  if (env)
    set_virt(v, strtol(env + 7, NULL, 10) ? "openvzve" : "openvzhn", NULL);
  free(status);
  virt_xen(g, v);
  if (cpuinfo && strstr(cpuinfo, "QEMU Virtual CPU"))
    set_virt(v, "kvm", NULL);
  char buf[512];
  char *pn = brine__grains_read_line(
      g, "/sys/devices/virtual/dmi/id/product_name", buf, sizeof buf);
  if (pn && strstr(pn, "VirtualBox"))
    set_virt(v, "VirtualBox", NULL);
  else if (pn && strstr(pn, "RHEV Hypervisor"))
    set_virt(v, "kvm", "rhev");
  else if (pn && strstr(pn, "oVirt Node"))
    set_virt(v, "kvm", "ovirt");
  else if (pn && strstr(pn, "Google"))
    set_virt(v, "gce", NULL);
  else if (pn && strstr(pn, "BHYVE"))
    set_virt(v, "bhyve", NULL);

  char *cg = brine__grains_slurp(g, "/proc/1/cgroup", NULL);
  if (cg && strstr(cg, ":/lxc/"))
    set_virt(v, "container", "LXC");
  else if (cg && strstr(cg, ":/kubepods/"))
    set_virt(v, NULL, "kubernetes");
  else if (cg && strstr(cg, ":/libpod_parent/"))
    set_virt(v, NULL, "libpod");
  else if (cg && (strstr(cg, ":/system.slice/docker") || strstr(cg, ":/docker/")
                  || strstr(cg, ":/docker-ce/")))
    set_virt(v, "container", "Docker");
  free(cg);
  if (strcmp(v->subtype, "LXC") != 0) {
    size_t len;
    char *e = brine__grains_slurp(g, "/proc/1/environ", &len);
    for (size_t i = 0; e && i < len; i += strlen(e + i) + 1)
      if (strcmp(e + i, "container=lxc") == 0)
        set_virt(v, "container", "LXC");
    free(e);
  }
}

/* Amazon EC2, from the DMI system fields Salt reads with dmidecode. */
static void virt_ec2(struct brine__grains *g, struct virt *v)
{
  static const char *const hv[] = {"qemu", "kvm", "xen", "amazon"};
  int match = 0;
  for (int i = 0; i < 4; i++)
    match |= strcmp(v->virtual, hv[i]) == 0;
  char tool[1024], sv[256], pn[256], pv[256];
  if (!match || !brine__grains_which(g, "dmidecode", tool, sizeof tool)
      || (g->real && geteuid() != 0))
    return;
  if (strcmp(dmi(g, "sys_vendor", sv, sizeof sv), "Amazon EC2") == 0) {
    if (strcmp(v->virtual, "xen") != 0)
      set_virt(v, "Nitro", NULL);
    char sub[128];
    snprintf(sub, sizeof sub, "Amazon EC2 (%s)",
             dmi(g, "product_name", pn, sizeof pn));
    set_virt(v, NULL, sub);
  } else if (strstr(dmi(g, "product_version", pv, sizeof pv), ".amazon")) {
    set_virt(v, NULL, "Amazon EC2");
  }
}

/* The Xen hypervisor's version and features from /sys/hypervisor. */
static void virt_hv(struct brine__grains *g, const struct virt *v)
{
  static const char *const features[] = {
    "writable_page_tables", "writable_descriptor_tables",
    "auto_translated_physmap", "supervisor_mode_kernel",
    "pae_pgdir_above_4gb", "mmu_pt_update_preserve_ad", NULL,
    "gnttab_map_avail_bits", "hvm_callback_vector", "hvm_safe_pvclock",
    "hvm_pirqs", "dom0", "grant_map_identity", "memory_op_vnode_supported",
    "ARM_SMCCC_supported"};
  if (!strstr(v->virtual, "xen"))
    return;
  char a[64], b[64], c[64], f[64];
  char *maj =
      brine__grains_read_line(g, "/sys/hypervisor/version/major", a, sizeof a);
  char *min =
      brine__grains_read_line(g, "/sys/hypervisor/version/minor", b, sizeof b);
  char *ext =
      brine__grains_read_line(g, "/sys/hypervisor/version/extra", c, sizeof c);
  lua_State *L = g->L;
  if (maj && min && ext) {
    lua_pushfstring(L, "%s.%s%s", maj, min, ext);
    brine__grains_set_top(g, "virtual_hv_version");
    const char *parts[] = {maj, min, ext};
    brine__grains_push_strings(L, parts, 3);
    brine__grains_set_top(g, "virtual_hv_version_info");
  }
  char *feat = brine__grains_read_line(g, "/sys/hypervisor/properties/features",
                                       f, sizeof f);
  if (!feat)
    return;
  unsigned long bits = strtoul(feat, NULL, 16);
  brine__grains_set_str(g, "virtual_hv_features", feat);
  brine__new_array(L, 0);
  for (int i = 0; i < 15; i++)
    if (features[i] && (bits & (1UL << i))) {
      lua_pushstring(L, features[i]);
      brine__grains_append(L, -2);
    }
  brine__grains_set_top(g, "virtual_hv_features_list");
}

static void virtual_grains(struct brine__grains *g, const char *cpuinfo)
{
  struct virt v = {"physical", ""};
  if (strstr(g->uts.version, "BrandZ virtual linux")) {
    brine__grains_set_str(g, "virtual", "zone");
    return;
  }
  virt_commands(g, &v, cpuinfo);
  virt_files(g, &v, cpuinfo);
  if (v.subtype[0] && strcmp(v.virtual, "physical") == 0)
    set_virt(&v, "virtual", NULL);
  virt_ec2(g, &v);
  brine__grains_set_str(g, "virtual", v.virtual);
  if (v.subtype[0])
    brine__grains_set_str(g, "virtual_subtype", v.subtype);
  virt_hv(g, &v);
}

/* ---- disks, gpus, efi, mdadm --------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a directory below the root, sorted, without dot files.
 * Returns the count; free each name and the array. */
static int list_dir(struct brine__grains *g, const char *rel, char ***names)
{
  char path[4096];
  *names = NULL;
  DIR *d = brine__grains_path(g, rel, path, sizeof path) ? opendir(path) : NULL;
  if (!d)
    return 0;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    if (n == cap) {
      char **more =
          realloc(*names, sizeof(char *) * (size_t)(cap = cap * 2 + 16));
      if (!more)
        break;
      *names = more;
    }
    if (((*names)[n] = strdup(e->d_name)))
      n++;
  }
  closedir(d);
  if (*names)
    qsort(*names, (size_t)n, sizeof(char *), cmp_name);
  return n;
}

static void free_names(char **names, int n)
{
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

static void disk_grains(struct brine__grains *g)
{
  lua_State *L = g->L;
  char **names;
  int n = list_dir(g, "/sys/block", &names);
  brine__new_array(L, n);                       /* disks */
  brine__new_array(L, n);                       /* disks ssds */
  for (int i = 0; i < n; i++) {
    char rel[512], path[4096], link[512], flag[4];
    snprintf(rel, sizeof rel, "/sys/block/%s", names[i]);
    ssize_t l = brine__grains_path(g, rel, path, sizeof path)
                ? readlink(path, link, sizeof link - 1) : -1;
    link[l > 0 ? l : 0] = '\0';
    if (strncmp(link, "../devices/virtual/", 19) == 0)
      continue;
    snprintf(rel, sizeof rel, "/sys/block/%s/queue/rotational", names[i]);
    if (brine__grains_read(g, rel, flag, 2) < 1)
      continue;
    if (flag[0] == '0' || flag[0] == '1') {
      lua_pushstring(L, names[i]);
      brine__grains_append(L, flag[0] == '0' ? -2 : -3);
    }
  }
  free_names(names, n);
  brine__grains_set_top(g, "ssds");
  brine__grains_set_top(g, "disks");
}

/* The vendor and device names lspci shows, from the pci.ids database. */
static void pci_names(const char *ids, const char *ven, const char *dev,
                      char *vendor, size_t vn, char *device, size_t dn)
{
  snprintf(vendor, vn, "Vendor %s", ven);
  snprintf(device, dn, "Device %s", dev);
  if (!ids)
    return;
  char key[8];
  snprintf(key, sizeof key, "\n%s ", ven);
  const char *v = strstr(ids, key);
  if (!v)
    return;
  v += 6;
  while (*v == ' ')
    v++;
  snprintf(vendor, vn, "%.*s", (int)strcspn(v, "\n"), v);
  for (const char *l = strchr(v, '\n'); l && (l[1] == '\t' || l[1] == '#');
       l = strchr(l + 1, '\n')) {
    if (l[1] == '\t' && l[2] != '\t' && strncmp(l + 2, dev, 4) == 0) {
      const char *name = l + 6;
      while (*name == ' ')
        name++;
      snprintf(device, dn, "%.*s", (int)strcspn(name, "\n"), name);
      return;
    }
  }
}

/* Salt's vendor: the first known name among the words of lspci's vendor
 * (so "cirrus logic", two words, never matches, as in Salt). */
static const char *gpu_vendor(const char *vendor)
{
  static const char *const known[] = {"nvidia", "amd", "ati", "intel",
                                      "vmware", "matrox", "aspeed"};
  char low[256];
  snprintf(low, sizeof low, "%s", vendor);
  for (char *c = low; *c; c++)
    *c = isalnum((unsigned char)*c) ? (char)tolower((unsigned char)*c) : ' ';
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
    size_t kl = strlen(known[k]);
    for (const char *s = low; *s;) {
      s += strspn(s, " ");
      size_t wl = strcspn(s, " ");
      if (wl == kl && strncmp(s, known[k], kl) == 0)
        return known[k];
      s += wl;
    }
  }
  return "unknown";
}

/* GPUs are display-class PCI devices; Salt lists them only where lspci is
 * installed, and so do we. */
static void gpu_grains(struct brine__grains *g)
{
  lua_State *L = g->L;
  char tool[1024];
  brine__new_array(L, 0);
  if (brine__grains_which(g, "lspci", tool, sizeof tool)) {
    char **names;
    int n = list_dir(g, "/sys/bus/pci/devices", &names);
    char *ids = NULL;
    for (int i = 0; i < n; i++) {
      char rel[512], cls[32], ven[32], dev[32];
      snprintf(rel, sizeof rel, "/sys/bus/pci/devices/%.200s/class", names[i]);
      char *c = brine__grains_read_line(g, rel, cls, sizeof cls);
      if (!c || strlen(c) < 6 || strncmp(c, "0x03", 4) != 0
          || !(strncmp(c + 4, "00", 2) == 0 || strncmp(c + 4, "02", 2) == 0
               || strncmp(c + 4, "80", 2) == 0))
        continue;
      snprintf(rel, sizeof rel, "/sys/bus/pci/devices/%.200s/vendor", names[i]);
      char *v = brine__grains_read_line(g, rel, ven, sizeof ven);
      snprintf(rel, sizeof rel, "/sys/bus/pci/devices/%.200s/device", names[i]);
      char *d = brine__grains_read_line(g, rel, dev, sizeof dev);
      if (!v || !d || strlen(v) < 6 || strlen(d) < 6)
        continue;
      if (!ids)
        ids = brine__grains_slurp(g, "/usr/share/misc/pci.ids", NULL);
      if (!ids)
        ids = brine__grains_slurp(g, "/usr/share/hwdata/pci.ids", NULL);
      char vendor[256], device[256];
      pci_names(ids, v + 2, d + 2, vendor, sizeof vendor, device,
                sizeof device);
      lua_createtable(L, 0, 2);
      lua_pushstring(L, gpu_vendor(vendor));
      lua_setfield(L, -2, "vendor");
      lua_pushstring(L, device);
      lua_setfield(L, -2, "model");
      brine__grains_append(L, -2);
    }
    free(ids);
    free_names(names, n);
  }
  brine__grains_set_int(g, "num_gpus", (lua_Integer)lua_rawlen(L, -1));
  brine__grains_set_top(g, "gpus");
}

static void efi_grains(struct brine__grains *g)
{
  const char *dir = brine__grains_exists(g, "/sys/firmware/efi/efivars")
                    ? "/sys/firmware/efi/efivars"
                    : brine__grains_exists(g, "/sys/firmware/efi/vars")
                    ? "/sys/firmware/efi/vars" : NULL;
  int secure = 0;
  if (dir) {
    char **names;
    int n = list_dir(g, dir, &names), hits = 0;
    char rel[512] = "";
    for (int i = 0; i < n; i++)
      if (strncmp(names[i], "SecureBoot-", 11) == 0) {
        hits++;
        snprintf(rel, sizeof rel, "%s/%s%s", dir, names[i],
                 strstr(dir, "efivars") ? "" : "/data");
      }
    free_names(names, n);
    char buf[64];
    ssize_t len = hits == 1 ? brine__grains_read(g, rel, buf, sizeof buf) : -1;
    secure = len > 0 && buf[len - 1] == 1;
  }
  brine__grains_set_bool(g, "efi", dir != NULL);
  brine__grains_set_bool(g, "efi-secure-boot", secure);
}

/* Salt's zfs grain module: zfs_support when the kernel has ZFS (or
 * zfs-fuse is installed) and zpool is installed; zfs_feature_flags when
 * the zpool-features manual page is there, which Salt asks `man` for.
 * TODO: the `zpool` grain (each pool's size) needs `zpool list` to run a
 * program, which the default path does not do; it is left out. */
static void zfs_grains(struct brine__grains *g)
{
  static const char *const pages[] = {
    "/usr/share/man/man7/zpool-features.7.gz",
    "/usr/share/man/man7/zpool-features.7",
    "/usr/share/man/man5/zpool-features.5.gz",
    "/usr/share/man/man5/zpool-features.5"};
  char tool[512];
  int kernel = brine__grains_exists(g, "/sys/module/zfs")
               || brine__grains_which(g, "zfs-fuse", tool, sizeof tool);
  int flags = 0;
  if (brine__grains_which(g, "man", tool, sizeof tool))
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
      flags = flags || brine__grains_exists(g, pages[i]);
  brine__grains_set_bool(
    g, "zfs_support",
    kernel && brine__grains_which(g, "zpool", tool, sizeof tool));
  brine__grains_set_bool(g, "zfs_feature_flags", flags);
}

static int cmp_lua_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* mdadm: the sorted, distinct names before " : " in /proc/mdstat; absent
 * when the file is. */
static void mdadm_grains(struct brine__grains *g)
{
  char *text = brine__grains_slurp(g, "/proc/mdstat", NULL);
  if (!text)
    return;
  const char *devs[256];
  int n = 0;
  for (char *save, *line = strtok_r(text, "\n", &save); line && n < 256;
       line = strtok_r(NULL, "\n", &save)) {
    char *sep = strstr(line, " : ");
    if (!sep || strncmp(line, "Personalities : ", 16) == 0
        || strncmp(line, "unused devices:", 15) == 0)
      continue;
    *sep = '\0';
    devs[n++] = line;
  }
  qsort(devs, (size_t)n, sizeof *devs, cmp_lua_str);
  lua_State *L = g->L;
  brine__new_array(L, n);
  for (int i = 0; i < n; i++)
    if (i == 0 || strcmp(devs[i], devs[i - 1]) != 0) {
      lua_pushstring(L, devs[i]);
      brine__grains_append(L, -2);
    }
  free(text);
  brine__grains_set_top(g, "mdadm");
}

void brine__grains_hw(struct brine__grains *g)
{
  char *cpuinfo = brine__grains_slurp(g, "/proc/cpuinfo", NULL);
  cpu_grains(g, cpuinfo);
  mem_grains(g);
  if (brine__grains_is_dir(g, "/proc/device-tree"))
    devicetree_grains(g);
  cpuinfo_board_grains(g, cpuinfo);
  dmi_grains(g);
  virtual_grains(g, cpuinfo);
  free(cpuinfo);
  disk_grains(g);
  gpu_grains(g);
  efi_grains(g);
  mdadm_grains(g);
  zfs_grains(g);
}
