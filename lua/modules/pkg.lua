-- The pkg execution module for Debian and its derivatives (Salt's aptpkg,
-- loaded as `pkg`), for the parts that read: which packages are installed
-- (pkg.list_pkgs, pkg.version) and how two Debian versions compare
-- (pkg.version_cmp), which formulas call while rendering. Installing and
-- removing packages comes with the pkg states.
-- luacheck: globals grains context
local config = require("brine.config")
local data = require("brine.data")

local M = { __virtualname__ = "pkg" }

M.__defaults__ = {
  version_cmp = { ignore_epoch = false },
  list_pkgs = { versions_as_list = false, removed = false },
}

function M.__virtual__()
  if grains.os_family == "Debian" then
    return M.__virtualname__
  end
  return false, "The pkg module could not be loaded: unsupported OS family"
end

-- Debian version ordering (deb-version(7)) -------------------------------

-- The weight of one character in the non-digit part of a version: a tilde
-- sorts before everything, even the end of the string; letters sort
-- before other characters.
local function weight(c)
  if c == "" then return 0 end
  if c == "~" then return -1 end
  if c:match("%a") then return c:byte() end
  return c:byte() + 256
end

-- Compares two digit runs as numbers of any length: -1, 0 or 1.
local function compare_digits(a, b)
  a, b = a:gsub("^0+", ""), b:gsub("^0+", "")
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then return 0 end
  return a < b and -1 or 1
end

-- Compares an upstream version or a revision: alternately the longest
-- non-digit prefix, character by character, and the longest digit prefix,
-- numerically.
local function compare_part(a, b)
  local i, j = 1, 1
  while i <= #a or j <= #b do
    local sa, sb = a:match("^%D*", i), b:match("^%D*", j)
    for k = 1, math.max(#sa, #sb) do
      local wa, wb = weight(sa:sub(k, k)), weight(sb:sub(k, k))
      if wa ~= wb then
        return wa < wb and -1 or 1
      end
    end
    i, j = i + #sa, j + #sb
    local da, db = a:match("^%d*", i), b:match("^%d*", j)
    local c = compare_digits(da, db)
    if c ~= 0 then return c end
    i, j = i + #da, j + #db
  end
  return 0
end

-- Splits epoch:upstream-revision; the epoch defaults to 0, the revision
-- to "" (which sorts as "0").
local function split_version(v)
  local epoch, rest = v:match("^%s*(%d*):(.*)$")
  if not epoch then
    epoch, rest = "0", v:match("^%s*(.-)%s*$")
  end
  local upstream, revision = rest:match("^(.*)%-([^-]*)$")
  if not upstream then
    upstream, revision = rest, ""
  end
  return epoch ~= "" and epoch or "0", upstream, revision
end

--- Compares two Debian package versions as dpkg does: -1 when pkg1 is
--- older than pkg2, 0 when they are the same version, 1 when pkg1 is newer.
--- ignore_epoch=True compares without the `N:` epochs.
--- CLI example: brine call --local pkg.version_cmp 1.2-1 1.10-1
function M.version_cmp(pkg1, pkg2, ignore_epoch)
  local a, b = tostring(pkg1 or ""), tostring(pkg2 or "")
  if ignore_epoch then
    a, b = a:gsub("^[^:]*:", "", 1), b:gsub("^[^:]*:", "", 1)
  end
  local ea, ua, ra = split_version(a)
  local eb, ub, rb = split_version(b)
  local c = compare_digits(ea, eb)
  if c == 0 then c = compare_part(ua, ub) end
  if c == 0 then c = compare_part(ra, rb) end
  return c
end

-- Installed packages -------------------------------------------------------

-- Reads dpkg's database once per run: {installed = {name = {versions}},
-- removed = {name = {versions}}}, names as Salt writes them (a foreign
-- architecture's package on an amd64 machine as `name:arch`).
local function read_dpkg()
  if context and context["pkg.list_pkgs"] then
    return context["pkg.list_pkgs"]
  end
  local proc = require("brine.proc")
  local r, err = proc.run({
    argv = { "dpkg-query", "--showformat",
      "${Status} ${Package} ${Version} ${Architecture}\n", "-W" },
  })
  if not r then
    error("cannot list packages: " .. err, 0)
  end
  local db = { installed = {}, removed = {} }
  local osarch = grains.osarch
  for line in r.stdout:gmatch("[^\n]+") do
    local want, _, status, name, version, arch =
      line:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+)")
    if want then
      if arch ~= "all" and osarch == "amd64" and arch ~= osarch then
        name = name .. ":" .. arch
      end
      local into
      if (want == "install" or want == "hold") and status == "installed" then
        into = db.installed
      elseif want == "deinstall" or want == "purge" then
        into = db.removed
      end
      if into then
        into[name] = into[name] or {}
        table.insert(into[name], version)
      end
    end
  end
  for _, set in pairs(db) do
    for _, versions in pairs(set) do
      table.sort(versions, function(x, y) return M.version_cmp(x, y) < 0 end)
    end
  end
  if context then context["pkg.list_pkgs"] = db end
  return db
end

-- A mapping of name to versions: a list, or the versions joined by ","
-- as Salt's pkg_resource.stringify writes them.
local function format_pkgs(set, as_list)
  local out = {}
  for name, versions in pairs(set) do
    out[name] = as_list and data.array(versions) or table.concat(versions, ",")
  end
  return out
end

--- The installed packages: a mapping of name to version (several
--- versions joined by a comma; a list with versions_as_list=True).
--- removed=True lists the packages removed but not purged instead.
--- CLI example: brine call --local pkg.list_pkgs
function M.list_pkgs(versions_as_list, removed)
  local db = read_dpkg()
  return format_pkgs(removed and db.removed or db.installed, versions_as_list)
end

--- The version of an installed package, or "" when it is not installed.
--- Several names (or a name with `*`) give a mapping of name to version.
--- versions_as_list=True gives lists.
--- CLI example: brine call --local pkg.version bash
function M.version(kwargs, ...)
  local names = { ... }
  local as_list = kwargs and kwargs.versions_as_list
  local installed = read_dpkg().installed
  local ret, globbed = {}, false
  for _, name in ipairs(names) do
    name = tostring(name)
    if name:find("*", 1, true) then
      globbed = true
      for pkg, versions in pairs(installed) do
        if config.fnmatch(pkg, name) then ret[pkg] = versions end
      end
    else
      ret[name] = installed[name] or {}
    end
  end
  ret = format_pkgs(ret, as_list)
  if #names == 1 and not globbed then
    return ret[tostring(names[1])]
  end
  return ret
end

return M
