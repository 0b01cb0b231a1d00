-- The file execution module (basics), as Salt's: test for files and
-- folders, read, write, touch and remove files, make folders, and report
-- a file's stats and hash. Paths are absolute; `~` is expanded.
-- luacheck: globals opts salt grains pillar
local data = require("brine.data")

-- A C module of brine when this build has it, else nil (without asking
-- the file system, as a failed require would).
local function c_module(name)
  if package.loaded[name] or package.preload[name] then
    return require(name)
  end
  return nil
end

local M = {}

local null = data.null

M.__defaults__ = {
  read = { binary = false },
  stats = { hash_type = null, follow_symlinks = true },
  get_hash = { form = "sha256", chunk_size = 65536 },
  mkdir = { user = null, group = null, mode = null },
  touch = { atime = null, mtime = null },
  apply_template_on_contents = { defaults = null, saltenv = "base" },
  contains_regex = { lchar = "" },
}

local function uv()
  return require("luv")
end

local function expand(path)
  if type(path) ~= "string" then
    error("path must be a string, not " .. tostring(path), 0)
  end
  if path:sub(1, 1) == "~" then
    local home = os.getenv("HOME") or ""
    return home .. path:sub(2)
  end
  return path
end

local function stat(path, follow)
  if follow == false then
    return uv().fs_lstat(path)
  end
  return uv().fs_stat(path)
end

--- True when path is a regular file (symbolic links followed).
function M.file_exists(path)
  local st = stat(expand(path))
  return st ~= nil and st.type == "file"
end

--- True when path is a folder.
function M.directory_exists(path)
  local st = stat(expand(path))
  return st ~= nil and st.type == "directory"
end

--- True when something exists at path.
function M.access(path, mode)
  local st = stat(expand(path))
  if mode == nil or mode == "f" then
    return st ~= nil
  end
  local map = { r = "R", w = "W", x = "X" }
  return uv().fs_access(expand(path), map[mode] or mode:upper()) == true
end

--- The contents of a file.
function M.read(path, binary) -- luacheck: ignore 212
  path = expand(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, err
  end
  local text = f:read("a")
  f:close()
  return text
end

--- Writes each argument as a line of the file (replacing it).
function M.write(path, kwargs, ...)
  path = expand(path)
  local lines = { ... }
  if kwargs.args ~= nil then
    lines = type(kwargs.args) == "table" and kwargs.args or { kwargs.args }
  end
  local raw = require("outputters.raw")
  local parts = {}
  for i = 1, select("#", table.unpack(lines)) do
    parts[i] = raw.str(lines[i]) .. "\n"
  end
  local f, err = io.open(path, "wb")
  if not f then
    return nil, err
  end
  f:write(table.concat(parts))
  f:close()
  return string.format("Wrote %d lines to \"%s\"", #parts, path)
end

--- Appends each argument as a line to the file.
function M.append(path, kwargs, ...)
  path = expand(path)
  local lines = { ... }
  if kwargs.args ~= nil then
    lines = type(kwargs.args) == "table" and kwargs.args or { kwargs.args }
  end
  local raw = require("outputters.raw")
  local f, err = io.open(path, "ab")
  if not f then
    return nil, err
  end
  for i = 1, #lines do
    f:write(raw.str(lines[i]), "\n")
  end
  f:close()
  return string.format("Wrote %d lines to \"%s\"", #lines, path)
end

local TYPES = { file = "file", directory = "dir", link = "link", char = "char",
  block = "block", fifo = "pipe", socket = "socket" }

local function user_name(uid)
  local u = uv().os_get_passwd and uv().os_get_passwd()
  for line in io.lines("/etc/passwd") do
    local name, id = line:match("^([^:]*):[^:]*:(%d+):")
    if tonumber(id) == uid then
      return name
    end
  end
  return u and u.uid == uid and u.username or ""
end

local function group_name(gid)
  for line in io.lines("/etc/group") do
    local name, id = line:match("^([^:]*):[^:]*:(%d+):")
    if tonumber(id) == gid then
      return name
    end
  end
  return ""
end

--- A file's stats: inode, uid, gid, user, group, atime, mtime, ctime,
--- size, mode (octal text), type, target and, with hash_type, sum.
function M.stats(path, hash_type, follow_symlinks)
  path = expand(path)
  local st = stat(path, follow_symlinks)
  if not st then
    return nil, "Path not found: " .. path
  end
  local ret = {
    inode = st.ino, uid = st.uid, gid = st.gid, user = user_name(st.uid),
    group = group_name(st.gid), atime = st.atime.sec + st.atime.nsec / 1e9,
    mtime = st.mtime.sec + st.mtime.nsec / 1e9, ctime = st.ctime.sec + st.ctime.nsec / 1e9,
    size = st.size, mode = string.format("0%o", st.mode & 4095), type = TYPES[st.type] or st.type,
    target = uv().fs_realpath(path) or path,
  }
  if hash_type then
    ret.sum = M.get_hash(path, hash_type)
  end
  return ret
end

--- The hex digest of a file (sha256 unless form names md5, sha1, sha224,
--- sha384, sha512 or blake2b).
function M.get_hash(path, form, chunk_size) -- luacheck: ignore 212
  local text, err = M.read(path)
  if not text then
    return nil, err
  end
  local crypto = c_module("brine.crypto")
  if not crypto then
    return nil, "file.get_hash needs brine.crypto, which this build lacks"
  end
  return crypto.hash(form, text)
end

--- Makes a folder and its parents; sets owner and mode when given.
function M.mkdir(dir_path, user, group, mode)
  dir_path = expand(dir_path)
  local path = ""
  for part in dir_path:gmatch("[^/]+") do
    path = path .. "/" .. part
    local st = uv().fs_stat(path)
    if not st then
      local ok, err = uv().fs_mkdir(path, tonumber(tostring(mode or "755"), 8))
      if not ok and not uv().fs_stat(path) then
        return nil, err
      end
    end
  end
  if user or group then
    local uid = user and M._id("/etc/passwd", user) or -1
    local gid = group and M._id("/etc/group", group) or -1
    uv().fs_chown(dir_path, uid, gid)
  end
  return true
end

function M._id(db, name)
  if tonumber(name) then
    return tonumber(name)
  end
  for line in io.lines(db) do
    local n, id = line:match("^([^:]*):[^:]*:(%d+):")
    if n == name then
      return tonumber(id)
    end
  end
  return -1
end

--- Removes a file or a folder tree. False when nothing was there.
function M.remove(path)
  path = expand(path)
  if path:sub(1, 1) ~= "/" then
    return nil, "File path must be absolute: " .. path
  end
  local st = uv().fs_lstat(path)
  if not st then
    return false
  end
  local function rm(p, s)
    if s.type == "directory" then
      local h = uv().fs_scandir(p)
      while h do
        local name = uv().fs_scandir_next(h)
        if not name then
          break
        end
        local ok, err = rm(p .. "/" .. name, uv().fs_lstat(p .. "/" .. name))
        if not ok then
          return nil, err
        end
      end
      return uv().fs_rmdir(p)
    end
    return uv().fs_unlink(p)
  end
  local ok, err = rm(path, st)
  if not ok then
    return nil, "Could not remove '" .. path .. "': " .. tostring(err)
  end
  return true
end

--- Creates an empty file or updates its times, like touch(1).
function M.touch(name, atime, mtime)
  name = expand(name)
  local f, err = io.open(name, "ab")
  if not f then
    return nil, err
  end
  f:close()
  local now = os.time()
  uv().fs_utime(name, tonumber(atime) or now, tonumber(mtime) or tonumber(atime) or now)
  return true
end

--- Renders contents with a template engine (jinja) and returns the text.
--- context and defaults are mappings of template variables (context wins);
--- grains, pillar, salt and opts are this minion's. An unknown engine gives
--- Salt's result mapping with result False; a template error gives the
--- error naming the line (Salt returns its traceback text instead).
--- CLI example: brine call --local file.apply_template_on_contents 'id={{ grains.id }}' jinja '{}'
function M.apply_template_on_contents(contents, template, context, defaults, saltenv)
  if template ~= "jinja" then
    return data.map({ { "result", false },
      { "comment", "Specified template format " .. tostring(template) .. " is not supported" } })
  end
  local vars = data.map()
  for i = 1, 2 do
    local src = select(i, defaults, context)
    if type(src) == "table" then
      for k, v in pairs(src) do
        vars[k] = v
      end
    end
  end
  return require("brine.render").template({ string = tostring(contents), pipe = "jinja",
    salt = salt, grains = grains, pillar = pillar, opts = opts, saltenv = saltenv,
    context = vars })
end

--- True when a line of the file matches the Python regular expression
--- (re.search); lchar, when given, is stripped from the start of each line
--- first. False when the file cannot be read.
function M.contains_regex(path, regex, lchar)
  local f = io.open(expand(path), "rb")
  if not f then
    return false
  end
  local re = require("renderers.jinja.py_re")
  for line in f:lines("L") do
    if lchar ~= "" then
      line = line:gsub("^[" .. lchar:gsub("%W", "%%%0") .. "]+", "")
    end
    if re.search(regex, line) then
      f:close()
      return true
    end
  end
  f:close()
  return false
end

--- Joins path parts with "/" (Python's os.path.join: an absolute part
--- starts the path over).
function M.join(...)
  local path = ""
  for i = 1, select("#", ...) do
    local part = tostring(select(i, ...))
    if part:sub(1, 1) == "/" or path == "" then
      path = part
    elseif path:sub(-1) == "/" then
      path = path .. part
    else
      path = path .. "/" .. part
    end
  end
  return path
end

--- The folder part of a path (Python's os.path.dirname).
function M.dirname(path)
  local head = tostring(path):match("^(.*/)")
  if head == nil or head:match("^/+$") then
    return head or ""
  end
  return (head:gsub("/+$", ""))
end

--- The last part of a path (Python's os.path.basename).
function M.basename(path)
  return (tostring(path):match("([^/]*)$"))
end

return M
