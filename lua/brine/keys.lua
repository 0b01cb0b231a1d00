-- Keys: every node's CURVE key pair, and the master's record of minion
-- keys in Salt's layout under pki_dir:
--   master.pub, master.key           the master's own pair (Z85 text)
--   minions/ID                        accepted keys
--   minions_pre/ID                    pending keys (waiting for `brine key -a`)
--   minions_rejected/ID               rejected keys
--   minions_denied/ID                 keys offered under a known id with a different
--                                     key than the one on record (a re-imaged device,
--                                     or an impostor): never accepted silently
-- and on a minion: minion.pub, minion.key and minion_master.pub (the
-- master's key, pinned on first contact). Files are 0600, folders 0700,
-- written atomically. Every id is checked before it becomes part of a path.
local posix = require("brine.posix")

local M = {}

M.STATES = { "accepted", "denied", "pending", "rejected" }
M.DIRS = { accepted = "minions", pending = "minions_pre", rejected = "minions_rejected",
  denied = "minions_denied" }

local zmq_module
local function zmq()
  zmq_module = zmq_module or require("brine.zmq")
  return zmq_module
end

--- Checks a minion id: printable, no '/', no '..', not empty, at most
--- 255 bytes.
---@return boolean|nil ok
---@return string|nil why not
function M.valid_id(id)
  if type(id) ~= "string" or id == "" then
    return nil, "a minion id must be a non-empty string"
  end
  if #id > 255 then
    return nil, "minion id is longer than 255 bytes"
  end
  if id:find("[%z\1-\31\127]") then
    return nil, "minion id contains a control character"
  end
  if id:find("/", 1, true) or id:find("\\", 1, true) then
    return nil, "minion id contains a slash"
  end
  if id == "." or id:find("..", 1, true) then
    return nil, "minion id contains '..'"
  end
  return true
end

local function check_key_text(text)
  local key = text and text:match("^%s*(%S+)%s*$")
  if key and #key == 40 and zmq().z85_decode(key) then
    return key
  end
  return nil
end

--- Reads a Z85 key file; nil, message when absent or malformed.
function M.read_key(path)
  local text, err, code = posix.read(path, 4096)
  if not text then
    return nil, err, code
  end
  local key = check_key_text(text)
  if not key then
    return nil, path .. ": not a CURVE key (40 Z85 characters)"
  end
  return key
end

local function ensure_dir(path)
  local st = posix.stat(path)
  if not st then
    local parent = path:match("^(.+)/[^/]+$")
    if parent and not posix.stat(parent) then
      local ok, err = ensure_dir(parent)
      if not ok then
        return nil, err
      end
    end
    local ok, err, code = posix.mkdir(path, 448)
    if not ok and code ~= "EEXIST" then
      return nil, err
    end
    return true
  end
  if st.type ~= "directory" then
    return nil, path .. " is not a folder"
  end
  return true
end
M.ensure_dir = ensure_dir

--- Loads the key pair DIR/NAME.pub + DIR/NAME.key, making it on first
--- use. Returns public, secret or nil, message.
function M.ensure_keypair(dir, name)
  local ok, err = ensure_dir(dir)
  if not ok then
    return nil, err
  end
  posix.chmod(dir, 448)
  local pub_path, key_path = dir .. "/" .. name .. ".pub", dir .. "/" .. name .. ".key"
  local sec = M.read_key(key_path)
  if sec then
    local pub = zmq().curve_public(sec)
    local on_disk = M.read_key(pub_path)
    if on_disk ~= pub then
      ok, err = posix.write_atomic(pub_path, pub .. "\n", 384)
      if not ok then
        return nil, err
      end
    end
    return pub, sec
  end
  if posix.stat(key_path) then
    return nil, key_path .. ": not a CURVE secret key; move it away to make a new pair"
  end
  local pub
  pub, sec = zmq().curve_keypair()
  ok, err = posix.write_atomic(key_path, sec .. "\n", 384)
  if ok then
    ok, err = posix.write_atomic(pub_path, pub .. "\n", 384)
  end
  if not ok then
    return nil, err
  end
  return pub, sec, true
end

--- The fingerprint of a public key: SHA-256 of its 32 bytes, hex pairs.
function M.fingerprint(pub)
  return zmq().fingerprint(pub)
end

---------------------------------------------------------------------------
-- The master's key store
---------------------------------------------------------------------------

local Store = {}
Store.__index = Store

--- Opens (and lays out) the master's key folders under pki_dir.
---@return table|nil store
---@return string|nil error
function M.open(pki_dir)
  local ok, err = ensure_dir(pki_dir)
  if not ok then
    return nil, err
  end
  for _, sub in pairs(M.DIRS) do
    ok, err = ensure_dir(pki_dir .. "/" .. sub)
    if not ok then
      return nil, err
    end
  end
  return setmetatable({ dir = pki_dir }, Store)
end

function Store:path(state, id)
  assert(M.DIRS[state], "unknown key state")
  assert(M.valid_id(id))
  return self.dir .. "/" .. M.DIRS[state] .. "/" .. id
end

--- Sorted ids in one state (ids that fail validation are skipped).
function Store:list(state)
  local names = posix.listdir(self.dir .. "/" .. M.DIRS[state]) or {}
  local out = {}
  for _, name in ipairs(names) do
    if M.valid_id(name) and not name:match("%.tmp%d+$") then
      out[#out + 1] = name
    end
  end
  return out
end

--- The key of id in state, or nil.
function Store:key(state, id)
  if not M.valid_id(id) then
    return nil
  end
  return (M.read_key(self:path(state, id)))
end

--- The states id has keys in, as a set.
function Store:states_of(id)
  local out = {}
  for _, state in ipairs(M.STATES) do
    if posix.stat(self:path(state, id)) then
      out[state] = true
    end
  end
  return out
end

--- Writes id's key in state.
function Store:put(state, id, key)
  local ok, why = M.valid_id(id)
  if not ok then
    return nil, why
  end
  return posix.write_atomic(self:path(state, id), key .. "\n", 384)
end

--- Moves id's key from one state to another.
function Store:move(from, to, id)
  local ok, why = M.valid_id(id)
  if not ok then
    return nil, why
  end
  return posix.rename(self:path(from, id), self:path(to, id))
end

--- Removes id's key in state.
function Store:remove(state, id)
  return posix.unlink(self:path(state, id))
end

--- The mtimes of the four folders, to tell whether anything changed.
function Store:stamp()
  local parts = {}
  for _, state in ipairs(M.STATES) do
    local st = posix.stat(self.dir .. "/" .. M.DIRS[state])
    parts[#parts + 1] = st and string.format("%.9f", st.mtime) or "-"
  end
  return table.concat(parts, " ")
end

--- An index of every key on record: by_key[pub] = {id=, state=} and
--- accepted[id] = pub.
function Store:index()
  local by_key, accepted = {}, {}
  for _, state in ipairs(M.STATES) do
    for _, id in ipairs(self:list(state)) do
      local key = self:key(state, id)
      if key then
        -- an accepted record wins over any other state of the same key
        if not by_key[key] or state == "accepted" then
          by_key[key] = { id = id, state = state }
        end
        if state == "accepted" then
          accepted[id] = key
        end
      end
    end
  end
  return { by_key = by_key, accepted = accepted }
end

--- Decides what happens to a minion that offers `key` under `id` (an
--- `_auth` request), recording a new key as pending (or accepted with
--- auto_accept) and a conflicting one as denied. Returns the state:
--- "accepted", "pending", "rejected" or "denied".
function Store:offer(id, key, auto_accept)
  local accepted = self:key("accepted", id)
  if accepted then
    if accepted == key then
      return "accepted"
    end
    self:put("denied", id, key)
    return "denied"
  end
  local rejected = self:key("rejected", id)
  if rejected then
    if rejected ~= key then
      self:put("denied", id, key)
      return "denied"
    end
    return "rejected"
  end
  local denied = self:key("denied", id)
  if denied == key then
    return "denied"
  end
  local pending = self:key("pending", id)
  if pending and pending ~= key then
    self:put("denied", id, key)
    return "denied"
  end
  if auto_accept then
    if pending then
      self:remove("pending", id)
    end
    self:put("accepted", id, key)
    return "accepted"
  end
  if not pending then
    self:put("pending", id, key)
  end
  return "pending"
end

return M
