-- Targeting: does a minion match a target expression? The master uses it
-- to pick the minions a job goes to (so that only they receive it), and a
-- minion checks it again before running a job. Salt's target types: glob
-- (the default), pcre, list, grain, grain_pcre and compound.
local posix = require("brine.posix")
local data = require("brine.data")

local M = {}

M.TYPES = { glob = true, pcre = true, list = true, grain = true, grain_pcre = true,
  compound = true, ipcidr = true, nodegroup = true }

--- Salt's regex match: anchored at the start of the id (re.match).
local function pcre(pattern, s)
  local ok = posix.regex_search("^(" .. pattern .. ")", s)
  return ok == true
end

local function to_list(tgt)
  if type(tgt) == "table" then
    return tgt
  end
  local out = {}
  for item in tostring(tgt):gmatch("[^,%s]+") do
    out[#out + 1] = item
  end
  return out
end

-- Walks grains along "a:b:c", the last part being the pattern; a list
-- value matches when any element matches.
local function grain_match(expr, grains, delim, matcher)
  if type(grains) ~= "table" then
    return false
  end
  local parts = {}
  for part in (expr .. delim):gmatch("(.-)" .. delim:gsub("%p", "%%%0")) do
    parts[#parts + 1] = part
  end
  if #parts < 2 then
    return false
  end
  local function walk(node, i)
    if i == #parts then
      local kind = data.kind(node)
      if kind == "array" then
        for _, v in ipairs(node) do
          if walk(v, i) then
            return true
          end
        end
        return false
      elseif kind == "map" or kind == "null" then
        return false
      end
      return matcher(parts[i], tostring(node))
    end
    if type(node) ~= "table" then
      return false
    end
    local child = node[parts[i]]
    if child == nil then
      return false
    end
    return walk(child, i + 1)
  end
  return walk(grains, 1)
end

-- An IPv4 address as a 32-bit integer, or nil.
local function ipv4(text)
  local a, b, c, d = tostring(text):match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then
    return nil
  end
  local n = 0
  for _, part in ipairs({ a, b, c, d }) do
    part = tonumber(part)
    if part > 255 then
      return nil
    end
    n = n * 256 + part
  end
  return n
end

-- Salt's ipcidr matcher: an address or an IPv4 subnet (a.b.c.d/len)
-- against the minion's ipv4 grain (and ipv6 for exact addresses).
local function ipcidr_match(tgt, grains)
  if type(grains) ~= "table" then
    return false
  end
  local net, len = tgt:match("^([^/]+)/(%d+)$")
  local base = ipv4(net or tgt)
  len = tonumber(len) or 32
  for _, key in ipairs({ "ipv4", "ipv6" }) do
    for _, addr in ipairs(data.kind(grains[key]) == "array" and grains[key] or {}) do
      local n = ipv4(addr)
      if addr == tgt then
        return true
      elseif base and n and len <= 32 then
        local size = 1 << (32 - len)
        if n // size == base // size then
          return true
        end
      end
    end
  end
  return false
end

local simple

local function compound(expr, id, grains)
  local words = {}
  for w in expr:gsub("%(", " ( "):gsub("%)", " ) "):gmatch("%S+") do
    words[#words + 1] = w
  end
  local pos = 1
  local parse_or
  local function parse_atom()
    local w = words[pos]
    if w == nil then
      error("unexpected end of target", 0)
    end
    pos = pos + 1
    if w == "not" then
      return not parse_atom()
    elseif w == "(" then
      local v = parse_or()
      if words[pos] ~= ")" then
        error("missing ')'", 0)
      end
      pos = pos + 1
      return v
    elseif w == "and" or w == "or" or w == ")" then
      error("unexpected '" .. w .. "'", 0)
    end
    local engine, pattern = w:match("^(%u)@(.*)$")
    local types = { G = "grain", P = "grain_pcre", E = "pcre", L = "list", S = "ipcidr" }
    if engine then
      if not types[engine] then
        error("unsupported engine " .. engine .. "@", 0)
      end
      return simple(pattern, types[engine], id, grains)
    end
    return simple(w, "glob", id, grains)
  end
  local function parse_and()
    local v = parse_atom()
    while words[pos] == "and" or words[pos] == "not" do
      if words[pos] == "and" then
        pos = pos + 1
      end
      local rhs = parse_atom()
      v = v and rhs
    end
    return v
  end
  parse_or = function()
    local v = parse_and()
    while words[pos] == "or" do
      pos = pos + 1
      local rhs = parse_and()
      v = v or rhs
    end
    return v
  end
  local ok, v = pcall(parse_or)
  if not ok or pos <= #words then
    return false
  end
  return v
end

simple = function(tgt, tgt_type, id, grains)
  if tgt_type == "glob" then
    return posix.fnmatch(tgt, id)
  elseif tgt_type == "pcre" then
    return pcre(tgt, id)
  elseif tgt_type == "list" then
    for _, item in ipairs(to_list(tgt)) do
      if item == id then
        return true
      end
    end
    return false
  elseif tgt_type == "grain" then
    return grain_match(tgt, grains, ":", posix.fnmatch)
  elseif tgt_type == "grain_pcre" then
    return grain_match(tgt, grains, ":", pcre)
  elseif tgt_type == "compound" then
    return compound(tgt, id, grains)
  elseif tgt_type == "ipcidr" then
    return ipcidr_match(tgt, grains)
  end
  error("unknown target type '" .. tostring(tgt_type) .. "'", 2)
end

--- True when minion `id` (with `grains`, which may be nil) matches.
---@param tgt string|table the target
---@param tgt_type string glob, pcre, list, grain, grain_pcre or compound
---@param id string
---@param grains table|nil
---@return boolean
function M.match(tgt, tgt_type, id, grains)
  return simple(tgt, tgt_type or "glob", id, grains) == true
end

--- True when resolving the target needs a minion's grains.
function M.needs_grains(tgt, tgt_type)
  if tgt_type == "grain" or tgt_type == "grain_pcre" or tgt_type == "ipcidr" then
    return true
  end
  return tgt_type == "compound" and tostring(tgt):find("[GPS]@") ~= nil
end

local MAX_NESTING = 16

-- A nodegroup's definition as compound text: a string as it is, a list
-- of ids as L@a,b.
local function nodegroup_text(def)
  if type(def) == "string" then
    return def
  elseif data.kind(def) == "array" then
    local ids = {}
    for i, v in ipairs(def) do
      ids[i] = tostring(v)
    end
    return "L@" .. table.concat(ids, ",")
  end
  return nil
end

local function expand(expr, nodegroups, depth)
  if depth > MAX_NESTING then
    return nil, "nodegroups nested deeper than " .. MAX_NESTING
  end
  local err
  local out = expr:gsub("N@([^%s()]+)", function(name)
    local text = nodegroup_text(nodegroups[name])
    if not text then
      err = err or ("no nodegroup named '" .. name .. "'")
      return ""
    end
    local inner, e = expand(text, nodegroups, depth + 1)
    err = err or e
    return "( " .. (inner or "") .. " )"
  end)
  if err then
    return nil, err
  end
  return out
end

--- Salt's nodegroups: turns a nodegroup target (its name) or a compound
--- target holding N@name into a compound target without nodegroups, from
--- the master's `nodegroups` option. Other targets come back unchanged.
---@param tgt string|table
---@param tgt_type string
---@param nodegroups table|nil name -> compound text or list of ids
---@return string|table|nil tgt
---@return string tgt_type, or the error when tgt is nil
function M.expand_nodegroups(tgt, tgt_type, nodegroups)
  if tgt_type ~= "nodegroup" and tgt_type ~= "compound" then
    return tgt, tgt_type
  end
  if type(tgt) ~= "string" then
    return nil, "a nodegroup or compound target is a string"
  end
  local expr = tgt_type == "nodegroup" and ("N@" .. tgt) or tgt
  local out, err = expand(expr, type(nodegroups) == "table" and nodegroups or {}, 0)
  if not out then
    return nil, err
  end
  return out, "compound"
end

--- The ids among `ids` that match.
function M.select(tgt, tgt_type, ids, grains_of)
  local out = {}
  for _, id in ipairs(ids) do
    if M.match(tgt, tgt_type, id, grains_of and grains_of(id)) then
      out[#out + 1] = id
    end
  end
  return out
end

return M
