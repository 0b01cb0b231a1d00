-- The cp execution module, as Salt's, for a minion that serves its own
-- files (file_client local): renders templates to files (get_template),
-- reads files (get_file_str) and lists what the file_roots of a saltenv
-- hold (list_master, list_master_dirs, list_states). `salt://` URLs
-- resolve against opts.file_roots; other paths are local files.
-- TODO: fetching from a master's file server comes with the master's file
-- server; until then only local file_roots are served.
-- luacheck: globals salt grains pillar opts
local data = require("brine.data")
local render = require("brine.render")

local M = {}

local null = data.null

M.__defaults__ = {
  get_template = { dest = null, template = "jinja", saltenv = "base", makedirs = false },
  get_file_str = { saltenv = "base" },
  list_master = { saltenv = "base", prefix = "" },
  list_master_dirs = { saltenv = "base", prefix = "" },
  list_states = { saltenv = "base" },
}

-- The template engines get_template knows (Salt's TEMPLATE_REGISTRY, as
-- far as brine has them), as renderer pipelines.
local TEMPLATES = { jinja = "jinja" }

local function uv()
  return require("luv")
end

local function mkdirs(dir)
  local fs = require("brine.fs")
  return fs.mkdir(dir, nil, true)
end

-- Where get_template puts a rendered file when no dest is given: the
-- minion's cache, as Salt's file client does (<cachedir>/extrn_files/...).
local function default_dest(path, saltenv)
  local rel = path:match("^salt://(.*)$")
  local cachedir = type(opts.cachedir) == "string" and opts.cachedir or "/tmp"
  if rel then
    return cachedir .. "/files/" .. saltenv .. "/" .. rel:gsub("%?.*$", "")
  end
  return cachedir .. "/extrn_files/" .. saltenv .. "/" .. path:gsub("^/+", "")
end

--- Renders the template at path (salt:// or local) with the template
--- engine (jinja) and writes the result to dest (atomically), or to the
--- minion's file cache when no dest is given. Other keyword arguments are
--- template variables. Returns the path written, or "" when the template
--- could not be found, rendered or written (as Salt does; the reason is in
--- the error log).
--- CLI example: brine call --local cp.get_template salt://motd.jinja /etc/motd who=you
function M.get_template(path, dest, template, saltenv, makedirs, kwargs)
  local pipe = TEMPLATES[template]
  local log = require("brine.log")
  if not pipe then
    log.error("cp.get_template: unknown template engine '%s'", tostring(template))
    return ""
  end
  local vars = render.template_vars(kwargs)
  local text, err = render.template({ path = path, pipe = pipe, salt = salt, grains = grains,
    pillar = pillar, opts = opts, saltenv = saltenv, context = vars })
  if type(text) ~= "string" then
    log.error("cp.get_template: %s", err or "the template did not render to text")
    return ""
  end
  if dest == nil then
    dest, makedirs = default_dest(path, saltenv), true
  end
  local dir = dest:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and not uv().fs_stat(dir) then
    if not makedirs then
      log.error("cp.get_template: the folder %s does not exist", dir)
      return ""
    end
    local ok, merr = mkdirs(dir)
    if not ok then
      log.error("cp.get_template: %s", merr)
      return ""
    end
  end
  local ok, werr = require("brine.fs").write_atomic(dest, text)
  if not ok then
    log.error("cp.get_template: %s", werr)
    return ""
  end
  return dest
end

--- The text of a file (salt:// or local), or false when there is none.
function M.get_file_str(path, saltenv)
  local file = render.locate(opts, path, saltenv)
  if not file then
    return false
  end
  local f = io.open(file, "rb")
  if not f then
    return false
  end
  local text = f:read("a")
  f:close()
  return text
end

-- Walks a folder: calls on_dir(rel) for each folder and on_file(rel) for
-- each file below it (links followed, as Salt's file server follows them).
local function walk(root, rel, on_dir, on_file, depth)
  if depth > 64 then
    return
  end
  on_dir(rel == "" and "." or rel)
  local handle = uv().fs_scandir(rel == "" and root or (root .. "/" .. rel))
  if not handle then
    return
  end
  while true do
    local name = uv().fs_scandir_next(handle)
    if not name then
      break
    end
    local sub = rel == "" and name or (rel .. "/" .. name)
    local st = uv().fs_stat(root .. "/" .. sub)
    if st and st.type == "directory" then
      walk(root, sub, on_dir, on_file, depth + 1)
    elseif st and st.type == "file" then
      on_file(sub)
    end
  end
end

-- The files and folders of a saltenv's file_roots, each list sorted and
-- without duplicates.
local function file_lists(saltenv)
  local files, dirs, seen = {}, {}, {}
  local function add(list, rel)
    if not seen[rel] then
      seen[rel] = true
      list[#list + 1] = rel
    end
  end
  for _, root in ipairs(render.file_roots(opts, saltenv)) do
    walk(root, "", function(rel) add(dirs, rel .. "/") end, function(rel) add(files, rel) end, 0)
  end
  for i, d in ipairs(dirs) do
    dirs[i] = d:sub(1, -2)
  end
  table.sort(files)
  table.sort(dirs)
  return files, dirs
end

local function with_prefix(list, prefix)
  local out = data.array()
  for _, p in ipairs(list) do
    if prefix == nil or prefix == "" or p:sub(1, #prefix) == prefix then
      out[#out + 1] = p
    end
  end
  return out
end

--- The files in the file_roots of saltenv (relative paths, sorted), those
--- starting with prefix only when one is given.
function M.list_master(saltenv, prefix)
  local files = file_lists(saltenv)
  return with_prefix(files, prefix)
end

--- The folders in the file_roots of saltenv ("." is the root itself).
function M.list_master_dirs(saltenv, prefix)
  local _, dirs = file_lists(saltenv)
  return with_prefix(dirs, prefix)
end

--- The SLS names the file_roots of saltenv offer ("a/b.sls" is a.b,
--- "a/init.sls" is a), sorted.
function M.list_states(saltenv)
  local names, seen = data.array(), {}
  for _, rel in ipairs((file_lists(saltenv))) do
    local name
    if rel:match("/init%.sls$") then
      name = rel:sub(1, -10):gsub("/", ".")
    elseif rel:match("%.sls$") then
      name = rel:sub(1, -5):gsub("/", ".")
    end
    if name and not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  table.sort(names)
  return names
end

return M
