-- The user execution module, as Salt's useradd, for reading only:
-- user.info, which formulas call while rendering to see whether an
-- account exists. Changing accounts comes with the user states.
local data = require("brine.data")

local M = {}

-- gecos "full,room,work phone,home phone,other" as Salt splits it.
local GECOS = { "fullname", "roomnumber", "workphone", "homephone", "other" }

--- The account of a user: name, uid, gid, home, shell, passwd, the gecos
--- fields and groups; an empty mapping when there is no such user.
--- CLI example: brine call --local user.info root
function M.info(name)
  local sys = require("brine.sys")
  local pw = sys.getpwnam(tostring(name))
  if not pw then
    return data.map()
  end
  -- a plain table: Salt's info is a dict, which outputters print sorted
  local info = { gid = pw.gid }
  local fields = {}
  for field in ((pw.gecos or "") .. ","):gmatch("([^,]*),") do
    fields[#fields + 1] = field
  end
  for i, key in ipairs(GECOS) do
    info[key] = fields[i] or ""
  end
  info.groups = data.array(sys.getgroups(pw.name) or {})
  info.home = pw.dir
  info.name = pw.name
  info.passwd = "x"
  info.shell = pw.shell
  info.uid = pw.uid
  return info
end

return M
