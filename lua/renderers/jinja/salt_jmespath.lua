-- JMESPath for Salt's `json_query` filter: fields, quoted fields, indexes,
-- slices, projections ([*], .*, [], [?filter]), pipes, multiselect lists
-- and hashes, comparisons, && || !, literals (`json`, 'raw'), the current
-- node @, and the common functions (length, keys, values, sort, sort_by,
-- join, contains, starts_with, ends_with, to_string, to_number, max, min,
-- sum, avg, reverse, type, not_null, abs, ceil, floor, max_by, min_by, map,
-- merge, to_array). Parsing follows the grammar's binding powers.
local data = require("brine.data")
local pyval = require("renderers.jinja.pyval")

local M = {}

local null = data.null
local raise, kind, list = pyval.raise, pyval.kind, pyval.list

local function perr(msg) raise("ParseError", msg) end

-- ---------------------------------------------------------------- lexer

local SIMPLE = {
  ["."] = "dot", ["*"] = "star", ["]"] = "rbracket", [","] = "comma", [":"] = "colon",
  ["@"] = "current", ["("] = "lparen", [")"] = "rparen", ["{"] = "lbrace", ["}"] = "rbrace",
}

-- JSON scalars that need no decoder: true, false, null, numbers and
-- strings without escapes.
local function simple_literal(body)
  body = body:match("^%s*(.-)%s*$")
  if body == "true" then return true end
  if body == "false" then return false end
  if body == "null" then return null end
  if body:match("^%-?%d+$") then return math.tointeger(tonumber(body)) end
  if body:match("^%-?%d+%.?%d*[eE]?[-+]?%d*$") then return tonumber(body) + 0.0 end
  local str = body:match('^"([^"\\]*)"$')
  if str then return str end
  return nil
end

-- Two-character operators first, then their one-character forms.
local OPERATORS = {
  { "||", "or" }, { "&&", "and" }, { "!=", "ne" }, { "==", "eq" }, { "<=", "lte" },
  { ">=", "gte" }, { "[]", "flatten" }, { "[?", "filter" }, { "|", "pipe" }, { "&", "expref" },
  { "!", "not" }, { "<", "lt" }, { ">", "gt" }, { "[", "lbracket" },
}

-- The index just past the closing `close` of a quoted token opening at i;
-- a backslash escapes the next character.
local function closing(expr, i, close, what)
  local j = i + 1
  while j <= #expr and expr:sub(j, j) ~= close do
    if expr:sub(j, j) == "\\" then j = j + 1 end
    j = j + 1
  end
  if j > #expr then perr("unterminated " .. what) end
  return j
end

local function json_literal(body)
  local v = simple_literal(body)
  if v ~= nil then return v end
  local json = require("brine.json")
  local err
  v, err = json.decode(body)
  if v == nil and err then
    -- JMESPath's legacy form: an unquoted string between backticks
    v, err = json.decode('"' .. body .. '"')
    if v == nil then perr("bad JSON literal: " .. tostring(err)) end
  end
  if v == nil then return null end
  return v
end

-- Reads the token at i; returns its type, value and the next index.
local function token(expr, i)
  local c = expr:sub(i, i)
  if c:match("[%a_]") then
    local id = expr:match("^[%w_]+", i)
    return "unquoted_identifier", id, i + #id
  end
  if SIMPLE[c] then return SIMPLE[c], nil, i + 1 end
  if c == "-" or c:match("%d") then
    local num = expr:match("^%-?%d+", i)
    if not num then perr("unknown token '-'") end
    return "number", tonumber(num), i + #num
  end
  if c == "'" then
    local j = closing(expr, i, "'", "raw string")
    return "literal", (expr:sub(i + 1, j - 1):gsub("\\'", "'")), j + 1
  end
  if c == "`" then
    local j = closing(expr, i, "`", "JSON literal")
    return "literal", json_literal((expr:sub(i + 1, j - 1):gsub("\\`", "`"))), j + 1
  end
  if c == '"' then
    local j = closing(expr, i, '"', "quoted identifier")
    local raw = expr:sub(i + 1, j - 1)
    if raw:find("\\", 1, true) then raw = require("brine.json").decode('"' .. raw .. '"') end
    return "quoted_identifier", raw, j + 1
  end
  for _, op in ipairs(OPERATORS) do
    if expr:sub(i, i + #op[1] - 1) == op[1] then return op[2], nil, i + #op[1] end
  end
  perr("unknown token '" .. c .. "'")
end

local function lex(expr)
  local toks, i = {}, 1
  while i <= #expr do
    if expr:sub(i, i):match("%s") then
      i = i + 1
    else
      local tp, value
      tp, value, i = token(expr, i)
      toks[#toks + 1] = { type = tp, value = value }
    end
  end
  toks[#toks + 1] = { type = "eof" }
  return toks
end

-- ---------------------------------------------------------------- parser

local BP = {
  eof = 0, unquoted_identifier = 0, quoted_identifier = 0, literal = 0, rbracket = 0,
  rparen = 0, comma = 0, rbrace = 0, number = 0, current = 0, expref = 0, colon = 0,
  pipe = 1, ["or"] = 2, ["and"] = 3, eq = 5, gt = 5, lt = 5, gte = 5, lte = 5, ne = 5,
  flatten = 9, star = 20, filter = 21, dot = 40, ["not"] = 45, lbrace = 50, lbracket = 55,
  lparen = 60,
}

local P = {}
P.__index = P

function P:cur() return self.t[self.i] end
function P:next_tok() local t = self.t[self.i]; self.i = self.i + 1; return t end
function P:expect(tp)
  local t = self:next_tok()
  if t.type ~= tp then perr("expected " .. tp .. ", got " .. t.type) end
  return t
end

local IDENTITY = { t = "current" }

function P:expression(bp)
  local left = self:nud(self:next_tok())
  while bp < BP[self:cur().type] do
    left = self:led(self:next_tok(), left)
  end
  return left
end

function P:index_expr()
  -- after "[": a number or a slice
  local parts, pos = { nil, nil, nil }, 1
  local is_slice = false
  while self:cur().type ~= "rbracket" do
    local t = self:cur()
    if t.type == "colon" then
      pos = pos + 1
      is_slice = true
      if pos > 3 then perr("too many colons in slice") end
      self:next_tok()
    elseif t.type == "number" then
      parts[pos] = t.value
      self:next_tok()
    else
      perr("unexpected token in index: " .. t.type)
    end
  end
  self:expect("rbracket")
  if is_slice then return { t = "slice", parts[1], parts[2], parts[3] } end
  return { t = "index", n = parts[1] }
end

function P:projection_rhs(bp)
  local tp = self:cur().type
  if BP[tp] < 10 then return IDENTITY end
  if tp == "lbracket" or tp == "filter" then return self:expression(bp) end
  if tp == "dot" then
    self:next_tok()
    return self:dot_rhs(bp)
  end
  perr("syntax error after projection: " .. tp)
end

function P:dot_rhs(bp)
  local tp = self:cur().type
  if tp == "unquoted_identifier" or tp == "quoted_identifier" or tp == "star" then
    return self:expression(bp)
  end
  if tp == "lbracket" then
    self:next_tok()
    return self:multi_list()
  end
  if tp == "lbrace" then
    self:next_tok()
    return self:multi_hash()
  end
  perr("expected identifier after '.', got " .. tp)
end

function P:multi_list()
  local items = {}
  repeat
    items[#items + 1] = self:expression(0)
    local t = self:next_tok()
    if t.type == "rbracket" then break end
    if t.type ~= "comma" then perr("expected , or ] in multiselect list") end
  until false
  return { t = "mlist", items = items }
end

function P:multi_hash()
  local pairs_ = {}
  repeat
    local k = self:next_tok()
    if k.type ~= "unquoted_identifier" and k.type ~= "quoted_identifier" then
      perr("expected key in multiselect hash")
    end
    self:expect("colon")
    pairs_[#pairs_ + 1] = { k.value, self:expression(0) }
    local t = self:next_tok()
    if t.type == "rbrace" then break end
    if t.type ~= "comma" then perr("expected , or } in multiselect hash") end
  until false
  return { t = "mhash", pairs = pairs_ }
end

function P:project_if_slice(left, right)
  local idx = { t = "subexpr", left, right }
  if right.t == "slice" then
    return { t = "projection", left = idx, right = self:projection_rhs(BP.star) }
  end
  return idx
end

function P:nud(tok)
  local tp = tok.type
  if tp == "literal" then return { t = "literal", value = tok.value } end
  if tp == "unquoted_identifier" or tp == "quoted_identifier" then
    if tp == "quoted_identifier" and self:cur().type == "lparen" then
      perr("quoted identifier not allowed for function names")
    end
    return { t = "field", name = tok.value }
  end
  if tp == "star" then
    local right = self:projection_rhs(BP.star)
    return { t = "vprojection", left = IDENTITY, right = right }
  end
  if tp == "filter" then return self:led(tok, IDENTITY) end
  if tp == "lbrace" then return self:multi_hash() end
  if tp == "lparen" then
    local e = self:expression(0)
    self:expect("rparen")
    return e
  end
  if tp == "flatten" then
    local left = { t = "flatten", node = IDENTITY }
    return { t = "projection", left = left, right = self:projection_rhs(BP.flatten) }
  end
  if tp == "not" then return { t = "not", node = self:expression(BP["not"]) } end
  if tp == "lbracket" then
    local c = self:cur().type
    if c == "number" or c == "colon" then
      return self:project_if_slice(IDENTITY, self:index_expr())
    end
    if c == "star" and self.t[self.i + 1].type == "rbracket" then
      self.i = self.i + 2
      return { t = "projection", left = IDENTITY, right = self:projection_rhs(BP.star) }
    end
    return self:multi_list()
  end
  if tp == "current" then return IDENTITY end
  if tp == "expref" then return { t = "expref", node = self:expression(BP.expref) } end
  perr("unexpected token: " .. tp)
end

function P:led(tok, left)
  local tp = tok.type
  if tp == "dot" then
    if self:cur().type ~= "star" then
      return { t = "subexpr", left, self:dot_rhs(BP.dot) }
    end
    self:next_tok()
    return { t = "vprojection", left = left, right = self:projection_rhs(BP.dot) }
  end
  if tp == "pipe" then return { t = "pipe", left, self:expression(BP.pipe) } end
  if tp == "or" then return { t = "or", left, self:expression(BP["or"]) } end
  if tp == "and" then return { t = "and", left, self:expression(BP["and"]) } end
  if tp == "lparen" then
    if left.t ~= "field" then perr("invalid function name") end
    local args = {}
    while self:cur().type ~= "rparen" do
      args[#args + 1] = self:expression(0)
      if self:cur().type == "comma" then self:next_tok() end
    end
    self:expect("rparen")
    return { t = "call", name = left.name, args = args }
  end
  if tp == "filter" then
    local cond = self:expression(0)
    self:expect("rbracket")
    local right
    if self:cur().type == "flatten" then
      right = IDENTITY
    else
      right = self:projection_rhs(BP.filter)
    end
    return { t = "fprojection", left = left, right = right, cond = cond }
  end
  if BP[tp] == 5 then return { t = "cmp", op = tp, left, self:expression(BP[tp]) } end
  if tp == "flatten" then
    return { t = "projection", left = { t = "flatten", node = left },
      right = self:projection_rhs(BP.flatten) }
  end
  if tp == "lbracket" then
    local c = self:cur().type
    if c == "number" or c == "colon" then
      return self:project_if_slice(left, self:index_expr())
    end
    self:expect("star")
    self:expect("rbracket")
    return { t = "projection", left = left, right = self:projection_rhs(BP.star) }
  end
  perr("unexpected token: " .. tp)
end

-- ---------------------------------------------------------------- evaluation

local function is_list(v) local k = kind(v); return k == "list" or k == "tuple" end
local function is_dict(v) return kind(v) == "dict" end

local function jtrue(v)
  if v == null or v == false or v == nil then return false end
  if v == "" then return false end
  if is_list(v) then return #v > 0 end
  if is_dict(v) then return next(v) ~= nil end
  return true
end

local eval

local function jtype(v)
  local k = kind(v)
  if k == "none" then return "null" end
  if k == "bool" then return "boolean" end
  if k == "int" or k == "float" then return "number" end
  if k == "str" then return "string" end
  if k == "list" or k == "tuple" then return "array" end
  if k == "dict" then return "object" end
  return "expref"
end

local function sort_items(items, keyf)
  for _, x in ipairs(items) do
    local t = jtype(keyf(x))
    if t ~= "number" and t ~= "string" then
      raise("JMESPathTypeError", "sort requires numbers or strings")
    end
  end
  return pyval.sort(items, keyf)
end

local FUNCS = {}
FUNCS.length = function(a) return pyval.len(a[1]) end
FUNCS.keys = function(a) return list(pyval.keys(a[1])) end
FUNCS.values = function(a)
  local out = {}
  for i, k in ipairs(pyval.keys(a[1])) do out[i] = a[1][k] end
  return list(out)
end
FUNCS.sort = function(a) return list(sort_items(pyval.iter(a[1]), function(x) return x end)) end
FUNCS.sort_by = function(a, cur)
  local e = a[2]
  return list(sort_items(pyval.iter(a[1]), function(x) return eval(e.node, x, cur) end))
end
FUNCS.join = function(a)
  local parts = {}
  for i, x in ipairs(a[2]) do parts[i] = x end
  return table.concat(parts, a[1])
end
FUNCS.contains = function(a) return pyval.contains(a[1], a[2]) end
FUNCS.starts_with = function(a) return a[1]:sub(1, #a[2]) == a[2] end
FUNCS.ends_with = function(a) return a[2] == "" or a[1]:sub(-#a[2]) == a[2] end
FUNCS.to_string = function(a)
  if type(a[1]) == "string" then return a[1] end
  return require("brine.json").encode(a[1], { separators = { ",", ":" } })
end
FUNCS.to_number = function(a)
  if type(a[1]) == "number" then return a[1] end
  return type(a[1]) == "string" and tonumber(a[1]) or null
end
FUNCS.to_array = function(a) if is_list(a[1]) then return a[1] end return list({ a[1] }) end
FUNCS.max = function(a)
  local items = pyval.iter(a[1])
  if #items == 0 then return null end
  local best = items[1]
  for _, x in ipairs(items) do if pyval.compare(x, best) > 0 then best = x end end
  return best
end
FUNCS.min = function(a)
  local items = pyval.iter(a[1])
  if #items == 0 then return null end
  local best = items[1]
  for _, x in ipairs(items) do if pyval.compare(x, best) < 0 then best = x end end
  return best
end
FUNCS.sum = function(a)
  local s = 0
  for _, x in ipairs(a[1]) do s = s + x end
  return s
end
FUNCS.avg = function(a)
  if #a[1] == 0 then return null end
  return FUNCS.sum(a) / #a[1]
end
FUNCS.reverse = function(a)
  if type(a[1]) == "string" then return require("renderers.jinja.filters").filters.reverse(nil,
    a[1]) end
  local out = {}
  for i = #a[1], 1, -1 do out[#out + 1] = a[1][i] end
  return list(out)
end
FUNCS.type = function(a) return jtype(a[1]) end
FUNCS.not_null = function(a)
  for _, x in ipairs(a) do if x ~= null then return x end end
  return null
end
FUNCS.abs = function(a) return math.abs(a[1]) end
FUNCS.ceil = function(a) return math.ceil(a[1]) end
FUNCS.floor = function(a) return math.floor(a[1]) end
FUNCS.max_by = function(a, cur)
  local best, bk
  for _, x in ipairs(a[1]) do
    local k = eval(a[2].node, x, cur)
    if best == nil or pyval.compare(k, bk) > 0 then best, bk = x, k end
  end
  return best == nil and null or best
end
FUNCS.min_by = function(a, cur)
  local best, bk
  for _, x in ipairs(a[1]) do
    local k = eval(a[2].node, x, cur)
    if best == nil or pyval.compare(k, bk) < 0 then best, bk = x, k end
  end
  return best == nil and null or best
end
FUNCS.map = function(a, cur)
  local out = {}
  for i, x in ipairs(a[2]) do out[i] = eval(a[1].node, x, cur) end
  return list(out)
end
FUNCS.merge = function(a)
  local out = data.map()
  for _, d in ipairs(a) do
    for _, k in ipairs(pyval.keys(d)) do out[k] = d[k] end
  end
  return out
end

local function project(base, right, root)
  if not is_list(base) then return null end
  local out = {}
  for _, el in ipairs(base) do
    local v = eval(right, el, root)
    if v ~= null then out[#out + 1] = v end
  end
  return list(out)
end

local function or_null(r)
  if r == nil then return null end
  return r
end

-- One evaluator per node type: EVAL[t](node, current value, root value).
local EVAL = {}

EVAL.current = function(_, v) return v end
EVAL.literal = function(node) return node.value end
EVAL.expref = function(node) return node end
EVAL.field = function(node, v)
  if is_dict(v) then return or_null(v[node.name]) end
  return null
end
EVAL.subexpr = function(node, v, root)
  local r = eval(node[1], v, root)
  if r == null then return null end
  return eval(node[2], r, root)
end
EVAL.index = function(node, v)
  if not is_list(v) then return null end
  local i = node.n
  if i < 0 then i = i + #v end
  return or_null(v[i + 1])
end
EVAL.slice = function(node, v)
  if not is_list(v) then return null end
  return pyval.slice(list({ table.unpack(v) }), node[1], node[2], node[3])
end
EVAL.projection = function(node, v, root)
  return project(eval(node.left, v, root), node.right, root)
end
EVAL.vprojection = function(node, v, root)
  local base = eval(node.left, v, root)
  if not is_dict(base) then return null end
  local vals = {}
  for i, k in ipairs(pyval.keys(base)) do vals[i] = base[k] end
  return project(vals, node.right, root)
end
EVAL.fprojection = function(node, v, root)
  local base = eval(node.left, v, root)
  if not is_list(base) then return null end
  local kept = {}
  for _, el in ipairs(base) do
    if jtrue(eval(node.cond, el, root)) then kept[#kept + 1] = el end
  end
  return project(kept, node.right, root)
end
EVAL.flatten = function(node, v, root)
  local base = eval(node.node, v, root)
  if not is_list(base) then return null end
  local out = {}
  for _, el in ipairs(base) do
    if is_list(el) then
      for _, x in ipairs(el) do out[#out + 1] = x end
    else
      out[#out + 1] = el
    end
  end
  return list(out)
end
EVAL.pipe = function(node, v, root) return eval(node[2], eval(node[1], v, root), root) end
EVAL["or"] = function(node, v, root)
  local l = eval(node[1], v, root)
  if jtrue(l) then return l end
  return eval(node[2], v, root)
end
EVAL["and"] = function(node, v, root)
  local l = eval(node[1], v, root)
  if not jtrue(l) then return l end
  return eval(node[2], v, root)
end
EVAL["not"] = function(node, v, root) return not jtrue(eval(node.node, v, root)) end
EVAL.cmp = function(node, v, root)
  local a, b = eval(node[1], v, root), eval(node[2], v, root)
  local op = node.op
  if op == "eq" then return pyval.eq(a, b) end
  if op == "ne" then return not pyval.eq(a, b) end
  -- ordering is defined for numbers only; anything else gives null
  if type(a) ~= "number" or type(b) ~= "number" then return null end
  if op == "lt" then return a < b end
  if op == "lte" then return a <= b end
  if op == "gt" then return a > b end
  return a >= b
end
EVAL.mlist = function(node, v, root)
  if v == null then return null end
  local out = {}
  for i, e in ipairs(node.items) do out[i] = eval(e, v, root) end
  return list(out)
end
EVAL.mhash = function(node, v, root)
  if v == null then return null end
  local out = data.map()
  for _, p in ipairs(node.pairs) do out[p[1]] = eval(p[2], v, root) end
  return out
end
EVAL.call = function(node, v, root)
  local f = FUNCS[node.name]
  if not f then raise("UnknownFunctionError", "Unknown function: " .. node.name .. "()") end
  local args = {}
  for i, a in ipairs(node.args) do args[i] = eval(a, v, root) end
  return f(args, root)
end

function eval(node, v, root)
  return EVAL[node.t](node, v, root)
end

---Evaluates JMESPath expression `expr` against value v.
function M.search(expr, v)
  local p = setmetatable({ t = lex(expr), i = 1 }, P)
  local ast = p:expression(0)
  if p:cur().type ~= "eof" then perr("unexpected token: " .. p:cur().type) end
  return eval(ast, v, v)
end

return M
