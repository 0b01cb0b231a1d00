-- Targeting: does a minion match a target expression? The master uses it
-- to pick the minions a job goes to (so that only they receive it), and a
-- minion checks it again before running a job. Salt's target types: glob
-- (the default), pcre, list, grain, grain_pcre and compound.
local posix = require("brine.posix")
local data = require("brine.data")
local config = require("brine.config")

local M = {}

M.TYPES = { glob = true, pcre = true, list = true, grain = true, grain_pcre = true,
  pillar = true, pillar_pcre = true, pillar_exact = true, compound = true, ipcidr = true,
  nodegroup = true }

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

-- Python's str() of a scalar, which is what Salt compares patterns with.
local function py_str(v)
  if v == true then
    return "True"
  elseif v == false then
    return "False"
  elseif v == data.null then
    return "None"
  end
  return tostring(v)
end

local function match_value(value, pattern, mode)
  if type(value) == "table" then
    return false
  end
  local s, p = py_str(value):lower(), py_str(pattern):lower()
  if mode == "pcre" then
    return pcre(p, s)
  elseif mode == "exact" then
    return s == p
  end
  return config.fnmatch(s, p)
end

--- Splits s at every occurrence of the plain string delim.
local function split(s, delim)
  local parts, pos = {}, 1
  while true do
    local at = s:find(delim, pos, true)
    if not at then
      parts[#parts + 1] = s:sub(pos)
      return parts
    end
    parts[#parts + 1] = s:sub(pos, at - 1)
    pos = at + #delim
  end
end

M.split = split

local function is_map(v)
  return type(v) == "table" and data.kind(v) == "map"
end

local MISSING = {}

--- Salt's subdict_match: does "key:sub:value" match root (grains or
--- pillar)? Every split of the expression into a key path and a pattern is
--- tried ("a:b:c" is root.a.b matching "c" or root.a matching "b:c"); a
--- list matches when one of its items does (a map item with the rest of
--- the expression). Values compare as Python prints them (True, False,
--- None), case-insensitively: a shell pattern, or with mode "pcre" a
--- regular expression anchored at the start, or with "exact" equality.
---@param root table|nil
---@param expr string
---@param delim string|nil default ":"
---@param mode string|nil "glob" (default), "pcre" or "exact"
---@return boolean
function M.subdict_match(root, expr, delim, mode)
  if type(root) ~= "table" then
    return false
  end
  delim = delim or ":"
  local parts = split(tostring(expr), delim)
  for i = 1, #parts - 1 do
    local key = table.concat(parts, delim, 1, i)
    local pattern, node = table.concat(parts, delim, i + 1), root
    if key == "*" then
      pattern = tostring(expr)
    else
      node = config.traverse(root, key, MISSING, delim)
    end
    if node == MISSING or (is_map(node) and next(node) == nil) then -- luacheck: ignore 542
    elseif is_map(node) then
      if pattern == "*" then
        return true
      end
    elseif data.kind(node) == "array" then
      for _, item in ipairs(node) do
        if is_map(item) and M.subdict_match(item, (pattern:gsub("^%*:", "")), delim, mode) then
          return true
        elseif match_value(item, pattern, mode) then
          return true
        end
      end
    elseif match_value(node, pattern, mode) then
      return true
    end
  end
  return false
end

-- The target types matched with subdict_match: which data, which mode.
local SUBDICT = {
  grain = { "grains", "glob" }, grain_pcre = { "grains", "pcre" },
  pillar = { "pillar", "glob" }, pillar_pcre = { "pillar", "pcre" },
  pillar_exact = { "pillar", "exact" },
}
M.SUBDICT = SUBDICT

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

-- Compound words: engine letter -> target type.
local ENGINES = { G = "grain", P = "grain_pcre", I = "pillar", J = "pillar_pcre",
  E = "pcre", L = "list", S = "ipcidr" }

local function compound(expr, id, grains, pillar)
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
    local engine, delim, pattern = w:match("^(%u)([^@]?)@(.*)$")
    if engine then
      local kind = ENGINES[engine]
      if not kind or (delim ~= "" and not SUBDICT[kind]) then
        error("unsupported engine " .. engine .. delim .. "@", 0)
      elseif delim ~= "" then
        local sub = SUBDICT[kind]
        return M.subdict_match(sub[1] == "grains" and grains or pillar, pattern, delim, sub[2])
      end
      return simple(pattern, kind, id, grains, pillar)
    end
    return simple(w, "glob", id, grains, pillar)
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

simple = function(tgt, tgt_type, id, grains, pillar)
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
  elseif SUBDICT[tgt_type] then
    local sub = SUBDICT[tgt_type]
    return M.subdict_match(sub[1] == "grains" and grains or pillar, tgt, ":", sub[2])
  elseif tgt_type == "compound" then
    return compound(tgt, id, grains, pillar)
  elseif tgt_type == "ipcidr" then
    return ipcidr_match(tgt, grains)
  end
  error("unknown target type '" .. tostring(tgt_type) .. "'", 2)
end

--- True when minion `id` (with `grains` and `pillar`, either may be nil)
--- matches.
---@param tgt string|table the target
---@param tgt_type string a key of M.TYPES but nodegroup
---@param id string
---@param grains table|nil
---@param pillar table|nil
---@return boolean
function M.match(tgt, tgt_type, id, grains, pillar)
  return simple(tgt, tgt_type or "glob", id, grains, pillar) == true
end

--- True when resolving the target needs a minion's grains or pillar.
function M.needs_grains(tgt, tgt_type)
  if SUBDICT[tgt_type] or tgt_type == "ipcidr" then
    return true
  end
  return tgt_type == "compound" and tostring(tgt):find("[GPSIJ][^@%s]?@") ~= nil
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

--- The ids among `ids` that match; grains_of(id) and pillar_of(id), when
--- given, return what is known of a minion's grains and pillar.
function M.select(tgt, tgt_type, ids, grains_of, pillar_of)
  local out = {}
  for _, id in ipairs(ids) do
    if M.match(tgt, tgt_type, id, grains_of and grains_of(id), pillar_of and pillar_of(id)) then
      out[#out + 1] = id
    end
  end
  return out
end

return M
