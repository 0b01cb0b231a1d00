-- brine.grains: the core grains on this machine (compared with what the
-- system itself reports) and on fixture trees of machines we do not run on
-- (a Raspberry Pi 4 on Raspbian, an Ubuntu 22.04 KVM guest, an Alpine
-- container), asserting the values Salt gives there.
local grains = require("brine.grains")
local data = require("brine.data")

local source = os.getenv("BRINE_SOURCE_DIR") or "."
local fixtures = source .. "/spec/fixtures/grains/"

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local text = f:read("a")
  f:close()
  return text
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

local function command(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  local out = p:read("a")
  p:close()
  return trim(out)
end

local function os_release()
  local text = read("/etc/os-release") or read("/usr/lib/os-release") or ""
  local fields = {}
  for key, value in text:gmatch("([%w_]+)=([^\n]*)") do
    fields[key] = value:gsub('^"(.*)"$', "%1")
  end
  return fields
end

local function sorted_keys(map)
  local keys = {}
  for k in pairs(map) do
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

local function fixture(name, opts)
  opts = opts or {}
  opts.root = fixtures .. name
  return assert(grains.core(opts))
end

describe("brine.grains.core on this machine", function()
  local g = grains.core()

  it("returns a map whose keys are sorted, as Salt prints grains", function()
    assert.equal("map", data.kind(g))
    local keys = data.keys(g)
    local sorted = sorted_keys(g)
    assert.same(sorted, keys)
    assert.is_true(#keys > 50)
  end)

  it("produces only grains that core_names lists", function()
    local names = {}
    for _, n in ipairs(grains.core_names()) do
      names[n] = true
    end
    for k in pairs(g) do
      assert.is_true(names[k], "grain '" .. k .. "' is missing from core_names()")
    end
  end)

  it("names the host as uname and hostname do", function()
    local host = command("hostname")
    assert.equal(host, g.localhost)
    assert.equal(host, g.nodename)
    assert.equal("Linux", g.kernel)
    assert.equal(trim(read("/proc/sys/kernel/osrelease")), g.kernelrelease)
    assert.equal(trim(read("/proc/sys/kernel/version")), g.kernelversion)
    assert.equal(command("uname -m"), g.cpuarch)
    assert.equal(g.host, (g.fqdn:match("^[^.]*")))
    assert.equal(g.domain, g.fqdn:match("^[^.]*%.(.*)$") or "")
  end)

  it("counts CPUs and memory as the kernel does", function()
    assert.equal(tonumber(command("nproc --all")), g.num_cpus)
    local meminfo = read("/proc/meminfo")
    assert.equal(tonumber(meminfo:match("MemTotal:%s*(%d+)")) // 1024, g.mem_total)
    assert.equal(tonumber(meminfo:match("SwapTotal:%s*(%d+)")) // 1024, g.swap_total)
    assert.equal("integer", data.kind(g.num_cpus))
    assert.equal("integer", data.kind(g.mem_total))
    assert.equal("array", data.kind(g.cpu_flags))
    assert.equal("string", data.kind(g.cpu_model))
  end)

  it("describes the distribution from os-release", function()
    local rel = os_release()
    if not read("/etc/lsb-release") and rel.VERSION_ID then
      assert.equal(rel.VERSION_ID, g.osrelease)
      assert.equal(rel.VERSION_CODENAME or rel.PRETTY_NAME, g.oscodename)
    end
    assert.equal(trim(rel.NAME), g.osfullname)
    if rel.ID == "debian" then
      assert.equal("Debian", g.os)
      assert.equal("Debian", g.os_family)
      assert.equal("Debian-" .. rel.VERSION_ID:match("^%d+"), g.osfinger)
      assert.equal(command("dpkg --print-architecture"), g.osarch)
    end
    if g.osrelease ~= "" then
      assert.equal("integer", data.kind(g.osmajorrelease))
      assert.equal("array", data.kind(g.osrelease_info))
      assert.is_true(data.is_tuple(g.osrelease_info))
      assert.equal(g.osmajorrelease, g.osrelease_info[1])
    end
  end)

  it("lists the interfaces that /sys/class/net lists, with their MACs", function()
    local names = {}
    for name in command("ls /sys/class/net"):gmatch("%S+") do
      names[#names + 1] = name
    end
    table.sort(names)
    assert.same(names, data.keys(g.ip_interfaces))
    assert.same(names, data.keys(g.ip4_interfaces))
    assert.same(names, data.keys(g.ip6_interfaces))
    for _, name in ipairs(names) do
      local mac = trim(read("/sys/class/net/" .. name .. "/address") or "")
      if mac ~= "" then
        assert.equal(mac, g.hwaddr_interfaces[name])
      end
      assert.equal("array", data.kind(g.ip_interfaces[name]))
    end
  end)

  it("lists the IPv4 addresses sorted, loopback included", function()
    assert.equal("array", data.kind(g.ipv4))
    assert.equal("array", data.kind(g.ipv6))
    local seen = {}
    for _, a in ipairs(g.ipv4) do
      seen[a] = true
    end
    if g.ip4_interfaces.lo then
      assert.is_true(seen["127.0.0.1"])
    end
    for name, list in pairs(g.ip4_interfaces) do
      for _, a in ipairs(list) do
        assert.is_true(seen[a], a .. " of " .. name .. " is missing from ipv4")
      end
    end
    local function key(a)
      local o = { a:match("(%d+)%.(%d+)%.(%d+)%.(%d+)") }
      return ((tonumber(o[1]) * 256 + tonumber(o[2])) * 256 + tonumber(o[3])) * 256
        + tonumber(o[4])
    end
    for i = 2, #g.ipv4 do
      assert.is_true(key(g.ipv4[i - 1]) < key(g.ipv4[i]))
    end
  end)

  it("reads the identity of the machine and of the process", function()
    local id = read("/etc/machine-id")
    if id then
      assert.equal(trim(id), g.machine_id)
    end
    assert.equal(tonumber(command("id -u")), g.uid)
    assert.equal(tonumber(command("id -g")), g.gid)
    assert.equal(command("id -un"), g.username)
    assert.equal(command("id -gn"), g.groupname)
    assert.equal("integer", data.kind(g.pid))
    assert.equal(os.getenv("SHELL") or "/bin/sh", g.shell)
    assert.equal("string", data.kind(g.path))
    assert.equal("array", data.kind(g.systempath))
  end)

  it("gives the types Salt gives", function()
    local kinds = {
      kernelparams = "array", gpus = "array", num_gpus = "integer", disks = "array",
      ssds = "array", efi = "boolean", ["efi-secure-boot"] = "boolean",
      locale_info = "map", ip_gw = "boolean", server_id = "integer", virtual = "string",
      fqdn_ip4 = "array", fqdn_ip6 = "array", hwaddr_interfaces = "map", init = "string",
      transactional = "boolean", luaversion = "string", brineversion = "string",
      zfs_support = "boolean", zfs_feature_flags = "boolean",
    }
    for name, kind in pairs(kinds) do
      assert.equal(kind, data.kind(g[name]), name)
    end
    local gw = data.kind(g.ip4_gw)
    assert.is_true(gw == "string" or gw == "boolean")
    for _, pair in ipairs(g.kernelparams) do
      assert.is_true(data.is_tuple(pair))
      assert.equal("string", data.kind(pair[1]))
    end
    assert.same(
      { "defaultencoding", "defaultlanguage", "detectedencoding", "timezone" },
      data.keys(g.locale_info)
    )
  end)

  it("reports the locale as Salt's Python does", function()
    local bin = os.getenv("BRINE_BIN")
    if not bin then
      return pending("BRINE_BIN is not set")
    end
    local function locale_of(lang)
      return command("env LC_ALL= LC_CTYPE= LANG=" .. lang .. " " .. bin
        .. " lua -e \"local l = require('brine.grains').core{groups={'misc'}}.locale_info"
        .. " print(l.defaultlanguage .. ' ' .. l.defaultencoding)\"")
    end
    -- the C locale, and a locale that is not installed, are C.UTF-8 to Python
    assert.equal("en_US UTF-8", locale_of("C"))
    assert.equal("en_US UTF-8", locale_of("xx_YY.UTF-8"))
    for name in command("locale -a"):gmatch("%S+") do
      local lang = name:match("^(%a%a_%a%a)%.[uU][tT][fF]%-?8$")
      if lang then
        assert.equal(lang .. " UTF-8", locale_of(name))
        break
      end
    end
  end)

  it("reads the kernel command line as Salt splits it", function()
    local words = {}
    for w in trim(read("/proc/cmdline")):gmatch("%S+") do
      words[#words + 1] = w
    end
    if not read("/proc/cmdline"):find("[\"'\\]") then
      assert.equal(#words, #g.kernelparams)
      for i, w in ipairs(words) do
        local k, v = w:match("^([^=]*)=([^=]*)$")
        assert.equal(k or w:match("^[^=]*"), g.kernelparams[i][1])
        if v then
          assert.equal(v, g.kernelparams[i][2])
        else
          assert.equal(data.null, g.kernelparams[i][2])
        end
      end
    end
  end)

  it("reads the default IPv4 gateway from the routing table", function()
    local route = read("/proc/net/route") or ""
    local gw = route:match("\n%S+\t00000000\t(%x+)\t%x*[37]\t[^\n]-\t00000000\t")
    if gw and gw ~= "00000000" then
      local n = tonumber(gw, 16)
      local dotted = string.format("%d.%d.%d.%d", n & 255, (n >> 8) & 255,
        (n >> 16) & 255, n >> 24)
      assert.equal(dotted, g.ip4_gw)
      assert.is_true(g.ip_gw)
    end
  end)
end)

describe("brine.grains.core options", function()
  it("derives server_id from the id as Salt does", function()
    local g = grains.core({ id = "minion1", groups = { "misc" } })
    assert.equal("minion1", g.id)
    assert.equal(156412900, g.server_id)
    assert.equal(2018687061, grains.core({ id = "", groups = { "misc" } }).server_id)
  end)

  it("collects only the groups asked for", function()
    local g = grains.core({ groups = { "os" } })
    assert.is_string(g.os)
    assert.is_nil(g.mem_total)
    assert.is_nil(g.ipv4)
    g = grains.core({ groups = { "net" } })
    assert.is_table(g.ipv4)
    assert.is_nil(g.os)
  end)

  it("takes a hostname that replaces the system's", function()
    local g = grains.core({ root = fixtures .. "ubuntu-2204-kvm", hostname = "db-2" })
    assert.equal("db-2", g.localhost)
    assert.equal("db-2", g.nodename)
    assert.equal("db-2", g.fqdn)
    assert.equal("", g.domain)
  end)

  it("returns nil and a message for a root that is not a directory", function()
    local g, err = grains.core({ root = fixtures .. "no-such-machine" })
    assert.is_nil(g)
    assert.matches("no%-such%-machine", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function()
      grains.core("/")
    end)
    assert.has_error(function()
      grains.core({ root = 1 })
    end)
    assert.has_error(function()
      grains.core({ groups = { "cpu" } })
    end, "grains.core: unknown group 'cpu' (os, hw, net, misc)")
  end)
end)

describe("brine.grains.core on a Raspberry Pi 4 running Raspbian", function()
  local g = fixture("raspbian-pi4")

  it("names the distribution as Salt does", function()
    assert.equal("Raspbian", g.os)
    assert.equal("Debian", g.os_family)
    assert.equal("Raspbian GNU/Linux", g.osfullname)
    assert.equal("11", g.osrelease)
    assert.equal(11, g.osmajorrelease)
    assert.same({ 11 }, { table.unpack(g.osrelease_info) })
    assert.equal("bullseye", g.oscodename)
    assert.equal("Raspbian-11", g.osfinger)
    assert.equal("armhf", g.osarch)
    assert.equal("armv7l", g.cpuarch)
    assert.equal("6.1.21-v7l+", g.kernelrelease)
    assert.equal("systemd", g.init)
  end)

  it("takes the board's model and serial number from the device tree", function()
    assert.equal("Raspberry Pi 4 Model B Rev 1.4", g.productname)
    assert.equal("10000000a1b2c3d4", g.serialnumber)
    assert.is_nil(g.manufacturer)
    assert.is_nil(g.biosversion)
    assert.equal("physical", g.virtual)
    assert.is_nil(g.virtual_subtype)
  end)

  it("reads the CPU, memory and storage", function()
    assert.equal("ARMv7 Processor rev 3 (v7l)", g.cpu_model)
    assert.equal(4, g.num_cpus)
    assert.equal("crc32", g.cpu_flags[#g.cpu_flags])
    assert.equal(3791, g.mem_total)
    assert.equal(99, g.swap_total)
    assert.same({ "mmcblk0" }, { table.unpack(g.ssds) })
    assert.same({}, { table.unpack(g.disks) })
    assert.equal(0, g.num_gpus)
  end)

  it("reads the network configuration files", function()
    assert.equal("raspberrypi", g.fqdn)
    assert.equal("raspberrypi", g.host)
    assert.equal("", g.domain)
    assert.equal("192.168.1.1", g.ip4_gw)
    assert.is_false(g.ip6_gw)
    assert.is_true(g.ip_gw)
    assert.same({ "192.168.1.1", "fd00::1" }, { table.unpack(g.dns.nameservers) })
    assert.same({ "192.168.1.1" }, { table.unpack(g.dns.ip4_nameservers) })
    assert.same({ "fd00::1" }, { table.unpack(g.dns.ip6_nameservers) })
    assert.same({ "lan" }, { table.unpack(g.dns.search) })
    assert.same({ "edns0" }, { table.unpack(g.dns.options) })
    assert.equal("b5e4d2c1a0f9487e9d3c2b1a09f8e7d6", g.machine_id)
  end)

  it("keeps Salt's kernelparams quirk for values holding '='", function()
    assert.same({ "root", data.null }, { table.unpack(g.kernelparams[7]) })
    assert.same({ "console", "ttyS0,115200" }, { table.unpack(g.kernelparams[5]) })
    assert.same({ "quiet", data.null }, { table.unpack(g.kernelparams[11]) })
  end)
end)

describe("brine.grains.core on an Ubuntu 22.04 guest under KVM", function()
  local g = fixture("ubuntu-2204-kvm")

  it("names the distribution from lsb-release as Salt does", function()
    assert.equal("Ubuntu", g.os)
    assert.equal("Debian", g.os_family)
    assert.equal("Ubuntu", g.osfullname)
    assert.equal("22.04", g.osrelease)
    assert.same({ 22, 4 }, { table.unpack(g.osrelease_info) })
    assert.equal(22, g.osmajorrelease)
    assert.equal("jammy", g.oscodename)
    assert.equal("Ubuntu-22.04", g.osfinger)
    assert.equal("amd64", g.osarch)
    assert.equal("Ubuntu 22.04.3 LTS", g.lsb_distrib_description)
    assert.equal("systemd", g.init)
    assert.equal("249", g.systemd.version)
    assert.matches("^%+PAM %+AUDIT .* default%-hierarchy=unified$", g.systemd.features)
  end)

  it("detects KVM and reads DMI", function()
    assert.equal("kvm", g.virtual)
    assert.is_nil(g.virtual_subtype)
    assert.equal("Standard PC (Q35 + ICH9, 2009)", g.productname)
    assert.equal("QEMU", g.manufacturer)
    assert.equal("SeaBIOS", g.biosvendor)
    assert.equal("1.15.0-1", g.biosversion)
    assert.equal("04/01/2014", g.biosreleasedate)
    assert.equal("3f2504e0-4f89-41d3-9a0c-0305e82c3301", g.uuid)
    assert.is_nil(g.serialnumber)
    assert.is_true(g.efi)
    assert.is_true(g["efi-secure-boot"])
  end)

  it("reads the CPU, memory, disks and GPU", function()
    assert.equal("Intel Core Processor (Skylake, IBRS)", g.cpu_model)
    assert.equal(2, g.num_cpus)
    assert.equal(3931, g.mem_total)
    assert.same({ "sr0", "vda" }, { table.unpack(g.disks) })
    assert.equal(1, g.num_gpus)
    assert.equal("unknown", g.gpus[1].vendor)
    assert.equal("QEMU Virtual Video Controller", g.gpus[1].model)
  end)

  it("resolves its name from the hosts file", function()
    assert.equal("web-1", g.localhost)
    assert.equal("web-1.example.internal", g.fqdn)
    assert.equal("web-1", g.host)
    assert.equal("example.internal", g.domain)
    if #g.ipv4 > 0 then
      assert.same({ "10.0.2.15", "127.0.1.1" }, { table.unpack(g.fqdn_ip4) })
    end
    assert.same({}, { table.unpack(g.fqdn_ip6) })
  end)

  it("reads gateways and systemd-resolved's resolver file", function()
    assert.equal("10.0.2.2", g.ip4_gw)
    assert.equal("fe80::1", g.ip6_gw)
    assert.same({ "10.0.2.3", "2001:db8::53" }, { table.unpack(g.dns.nameservers) })
    assert.same({ "example.internal", "corp.example" }, { table.unpack(g.dns.search) })
    assert.same(
      { "130.155.160.0/255.255.240.0", "10.0.0.0/255.0.0.0" },
      { table.unpack(g.dns.sortlist) }
    )
    assert.same({ "rotate" }, { table.unpack(g.dns.options) })
    assert.equal("", g.dns.domain)
  end)

  it("splits quoted kernel parameters as shlex does", function()
    assert.same({ "quoted", "a b" }, { table.unpack(g.kernelparams[6]) })
    assert.same({ "ro", data.null }, { table.unpack(g.kernelparams[3]) })
  end)
end)

describe("brine.grains.core with ZFS installed", function()
  it("says zfs_support and zfs_feature_flags as Salt's zfs grains do", function()
    local g = fixture("ubuntu-2204-kvm")
    assert.is_true(g.zfs_support)
    assert.is_true(g.zfs_feature_flags)
    local pi = fixture("raspbian-pi4")
    assert.is_false(pi.zfs_support)
    assert.is_false(pi.zfs_feature_flags)
  end)
end)

describe("brine.grains.core on a Raspberry Pi 3 seen from a container", function()
  local g = fixture("pi3-bookworm-container")

  it("takes the board's model and serial number from /proc/cpuinfo", function()
    assert.equal("Raspberry Pi 3 Model B Rev 1.2", g.productname)
    assert.equal("00000000c0ffee42", g.serialnumber)
    assert.is_nil(g.manufacturer)
    assert.equal("Debian", g.os)
    assert.equal("Debian-12", g.osfinger)
    assert.equal("arm64", g.osarch)
    assert.equal("aarch64", g.cpuarch)
    assert.equal(4, g.num_cpus)
    assert.equal("Unknown", g.cpu_model, "arm64 kernels print no model name")
    assert.same({ "fp", "asimd", "evtstrm", "crc32", "cpuid" }, { table.unpack(g.cpu_flags) })
  end)

  it("leaves out an all-zero serial number, as other ARM boards print", function()
    local h3 = fixture("allwinner-h3")
    assert.is_nil(h3.serialnumber)
    assert.is_nil(h3.productname)
    assert.equal("ARMv7 Processor rev 5 (v7l)", h3.cpu_model)
  end)
end)

describe("brine.grains.core in an Alpine Docker container", function()
  local g = fixture("alpine-container")

  it("names the distribution as Salt does", function()
    assert.equal("Alpine", g.os)
    assert.equal("Alpine", g.os_family)
    assert.equal("Alpine Linux", g.osfullname)
    assert.equal("3.19.1", g.osrelease)
    assert.same({ 3, 19, 1 }, { table.unpack(g.osrelease_info) })
    assert.equal(3, g.osmajorrelease)
    assert.equal("Alpine Linux v3.19", g.oscodename)
    assert.equal("Alpine Linux-3", g.osfinger)
    assert.equal("aarch64", g.osarch)
    assert.equal("unknown", g.init)
    assert.is_nil(g.systemd)
  end)

  it("detects the container from PID 1's cgroup", function()
    assert.equal("container", g.virtual)
    assert.equal("Docker", g.virtual_subtype)
    assert.is_nil(g.productname)
    assert.is_nil(g.machine_id)
  end)

  it("reads an arm64 CPU without a model name", function()
    assert.equal("Unknown", g.cpu_model)
    assert.equal(4, g.num_cpus)
    assert.equal("fp", g.cpu_flags[1])
    assert.equal(7821, g.mem_total)
    assert.equal(1023, g.swap_total)
  end)

  it("reads the container's network files", function()
    assert.equal("3f2a9c1b7d4e", g.fqdn)
    assert.equal("172.17.0.1", g.ip4_gw)
    assert.same({ "127.0.0.11" }, { table.unpack(g.dns.nameservers) })
    assert.same({ "ndots:0" }, { table.unpack(g.dns.options) })
  end)
end)

describe("brine.grains.core names other distributions as Salt does", function()
  local cases = {
    ["fedora-39"] = {
      os = "Fedora", os_family = "RedHat", osfullname = "Fedora Linux", osrelease = "39",
      osmajorrelease = 39, oscodename = "Thirty Nine", osfinger = "Fedora Linux-39",
      osarch = "x86_64",
    },
    ["rocky-9"] = {
      os = "Rocky", os_family = "RedHat", osfullname = "Rocky Linux", osrelease = "9.3",
      osmajorrelease = 9, oscodename = "Blue Onyx", osfinger = "Rocky Linux-9",
      osarch = "aarch64",
    },
    ["opensuse-leap-15"] = {
      os = "SUSE", os_family = "Suse", osfullname = "Leap", osrelease = "15.5",
      osmajorrelease = 15, oscodename = "openSUSE Leap 15.5", osfinger = "Leap-15",
      osarch = "x86_64",
    },
  }
  for name, want in pairs(cases) do
    it(name, function()
      local g = fixture(name, { groups = { "os" } })
      for key, value in pairs(want) do
        assert.equal(value, g[key], key)
      end
    end)
  end
end)
