-- The Jinja compiler: turns a parsed template into Lua source. The source is
-- a chunk returning {root=, blocks=, lines=, filters=, tests=}; every function
-- in it takes (S, ctx, f): the render state, the template's context (blocks,
-- extends parent) and the current variable frame. The chunk's only global is
-- R, the runtime helper table, so a template reaches nothing else. `lines`
-- maps each Lua line to its template line, which the runtime uses to name the
-- template line of an error from the Lua traceback.
local parser = require "renderers.jinja.parser"

local M = {}

local C = {}
C.__index = C

-- A Lua string literal on one line (%q would continue it over a newline,
-- and every emitted line must stay one Lua line for the line map). A
-- template quotes the same few names over and over: each is quoted once
-- per compile (M.compile empties the cache).
local quoted = {}

local function q(s)
  local r = quoted[s]
  if not r then
    r = string.format("%q", s):gsub("\\\n", "\\n")
    quoted[s] = r
  end
  return r
end

local function fail(message, line)
  error({ class = "TemplateSyntaxError", message = message, line = line }, 0)
end

-- Emits one line of Lua; the pieces of output waiting (see C:piece) are
-- written first, so that everything happens in the template's order.
function C:emit(code, line)
  if self.npending > 0 then self:flush() end
  local n = #self.code + 1
  self.code[n] = code
  self.lmap[n] = line or self.line
end

-- Output pieces in a row are written to the buffer as one: `a .. b .. c`
-- makes one string where each piece took a slot of its own, and the
-- buffer's final table.concat has that many fewer to join. A piece is a
-- string literal or a Lua local that holds a string or an integer (Lua's
-- `..` prints an integer as Python does); a printed value is first kept in
-- a local of its own, in the order the template computes it, inside a
-- do-block that the write closes. Anything else emitted writes the pieces
-- waiting first.
local MAX_PIECES = 40 -- operands of one `..`: each takes a register

function C:raw_emit(code)
  local n = #self.code + 1
  self.code[n] = code
  self.lmap[n] = self.line
end

function C:piece(operand, literal)
  local pending, n = self.pending, self.npending
  if literal and n > 0 and self.pending_text[n] then
    -- text after text: one literal
    self.pending_text[n] = self.pending_text[n] .. literal
    pending[n] = q(self.pending_text[n])
    return
  end
  if n >= MAX_PIECES then self:flush(); n = 0 end
  n = n + 1
  pending[n], self.pending_text[n] = operand, literal
  self.npending = n
end

-- A printed value as a piece: computed now into a local.
function C:value_piece(expr, checked)
  -- full: written before the local is made, so it is in the block it is read in
  if self.npending >= MAX_PIECES then self:flush() end
  if not self.in_do then
    self:raw_emit("do")
    self.in_do = true
  end
  self.nvalue = self.nvalue + 1
  local v = "p" .. self.nvalue
  if checked then
    self:raw_emit("local " .. v .. " = " .. expr)
  else
    -- strings as they are, the rest through R.text (kept short: a
    -- template's first render pays Lua's `load` for every byte of it)
    self:raw_emit("local " .. v .. " = " .. expr .. "; if type(" .. v .. ") ~= \"string\" then "
      .. v .. " = R.text(" .. v .. ") end")
  end
  self:piece(v)
end

-- Joined pieces shorter than this are written one by one instead: Lua
-- interns short strings (up to 40 bytes), so joining `"- " .. name` costs
-- a hash and a string table lookup that two slots do not.
local JOIN_MIN = 40

function C:flush()
  local n, pending, texts = self.npending, self.pending, self.pending_text
  self.npending = 0
  local text = 0
  for i = 1, n do
    local t = texts[i]
    if t then text = text + #t end
  end
  local line
  if n > 1 and text < JOIN_MIN then
    local parts = { "n = n + ", n, "; o[n - ", n - 1, "] = ", pending[1] }
    local k = 6
    for i = 2, n - 1 do
      parts[k + 1], parts[k + 2], parts[k + 3], parts[k + 4] = "; o[n - ", n - i, "] = ",
        pending[i]
      k = k + 4
    end
    parts[k + 1], parts[k + 2] = "; o[n] = ", pending[n]
    line = table.concat(parts)
  else
    line = "n = n + 1; o[n] = " .. table.concat(pending, " .. ", 1, n)
  end
  if self.in_do then
    line = line .. " end"
    self.in_do = false
  end
  self:raw_emit(line)
  for i = 1, n do pending[i], texts[i] = nil, nil end
end

function C:tmp()
  self.ntmp = self.ntmp + 1
  return "t" .. self.ntmp
end

-- Expressions: each returns a Lua expression string. ---------------------

local EXPR = {}

function C:expr(node)
  local h = EXPR[node.t]
  if not h then fail("cannot compile expression " .. node.t, node.line) end
  if node.line then self.line = node.line end
  return h(self, node)
end

EXPR.const = function(_, n)
  local v = n.value
  if type(v) == "string" then return q(v) end
  if type(v) == "table" and v.digits then
    return "R.bigint(" .. q(v.digits) .. ", " .. (v.base or 10) .. ")"
  end
  if type(v) == "boolean" then return tostring(v) end
  if math.type(v) == "integer" then
    if v == math.mininteger then return "math_mininteger" end
    return string.format("%d", v)
  end
  if v ~= v then return "(0.0/0.0)" end
  if v == math.huge then return "(1.0/0.0)" end
  if v == -math.huge then return "(-1.0/0.0)" end
  return string.format("%.17g", v):find("[%.eEn]") and string.format("%.17g", v)
    or string.format("%.17g", v) .. ".0"
end

EXPR.none = function() return "NULL" end

-- A name read as a Lua expression. Inside loops compiled with locals (see
-- C:loop_code) the innermost local holding the name decides; a local that
-- may not be set yet (nil) falls through to the next scope out, and at the
-- end to the frames.
function C:read_name(name)
  local chain, sure = {}, nil
  local scope = self.scope
  while scope and not sure do
    local v = scope.vars[name]
    if v and v.sure then sure = v.lua
    elseif v then chain[#chain + 1] = v.lua end
    scope = scope.parent
  end
  local e = sure
  if not e and name == "self" then e = "R.lookup_self(f, ctx)" end
  -- a plain read through the frames; the runtime makes a missing name
  -- undefined (and reads a false value again, which gives false)
  e = e or ("(f[" .. q(name) .. "] or R.lookup(f, " .. q(name) .. "))")
  for i = #chain, 1, -1 do
    e = "(" .. chain[i] .. " or R.pick(" .. chain[i] .. ", " .. e .. "))"
  end
  return e
end

EXPR.name = function(self, n)
  local params = self.params
  if params and params[n] then return params[n] end
  return self:read_name(n.name)
end

function C:items(list)
  local out = {}
  for i, it in ipairs(list) do out[i] = self:expr(it) end
  return table.concat(out, ", ")
end

EXPR.list = function(self, n) return "R.list({" .. self:items(n.items) .. "})" end
EXPR.tuple = function(self, n) return "R.tuple({" .. self:items(n.items) .. "})" end

EXPR.dict = function(self, n)
  local parts = {}
  for i, it in ipairs(n.items) do
    parts[i] = "{" .. self:expr(it.key) .. ", " .. self:expr(it.value) .. "}"
  end
  return "R.dict({" .. table.concat(parts, ", ") .. "})"
end

local DICT_METHODS = require("renderers.jinja.runtime").DICT_METHODS

EXPR.getattr = function(self, n)
  local name = n.name
  local plain = not DICT_METHODS[name] and name:byte(1) ~= 95 -- no method, no "_"
  return (plain and "R.getattr_key(" or "R.getattr(") .. self:expr(n.obj) .. ", " .. q(name)
    .. ")"
end

EXPR.getitem = function(self, n)
  return "R.getitem(" .. self:expr(n.obj) .. ", " .. self:expr(n.key) .. ")"
end

EXPR.slice = function(self, n)
  local function opt(x) return x and self:expr(x) or "NULL" end
  return "R.slice(" .. self:expr(n.obj) .. ", " .. opt(n.start) .. ", " .. opt(n.stop)
    .. ", " .. opt(n.step) .. ")"
end

local function is_number_const(n)
  return n.t == "const" and type(n.value) == "number"
end

-- "percent_int" for `'%02d' % x` (a literal format of one conversion),
-- "percent_ints" for `'%02d-%02d' % (x, y)` (two or three conversions
-- given a tuple literal of as many values): they compile to
-- R.percent_int and R.percent_ints and always give a string.
function C:expr_kind(n)
  local a = n.a
  if n.op ~= "mod" or a.t ~= "const" or type(a.value) ~= "string" then return nil end
  local count = require("renderers.jinja.py_format").int_format_count(a.value)
  if count == 1 then return "percent_int" end
  if (count == 2 or count == 3) and n.b.t == "tuple" and #n.b.items == count then
    return "percent_ints"
  end
end

local is_pure -- (defined with the folding below)

-- Integer arithmetic fused: an expression of + - * and % or // by a
-- literal, over variables and integer literals, maybe compared, compiles
-- to one chunk-level function of its variables. While they are integers
-- of at most LEAF_MAX, no step can leave Lua's 64-bit integers (the
-- bounds are worked out here), and Lua's integer operators are Python's
-- there (% and // floor as Python's do). Any other value takes the
-- general code, the same the expression compiles to otherwise. The
-- variables are read first, all of them: reading one never raises nor
-- changes anything.
local FUSE_OPS = { add = " + ", sub = " - ", mul = " * ", mod = " % ", floordiv = " // " }
local FUSE_CMP = { eq = " == ", ne = " ~= ", lt = " < ", lteq = " <= ", gt = " > ",
                   gteq = " >= " }
local LEAF_MAX = 2147483648
local FUSE_MAX = 2.0 ^ 62
local MAX_FUSED = 50 -- chunk-level locals they take

-- The largest |value| an integer expression can take (a float), or nil
-- when node is not one.
local function int_bound(node)
  local t = node.t
  if t == "const" then
    local v = node.value
    if math.type(v) ~= "integer" or v > LEAF_MAX or v < -LEAF_MAX then return nil end
    return math.abs(v) + 0.0
  elseif t == "name" then
    return node.name ~= "self" and LEAF_MAX + 0.0 or nil
  elseif t == "unary" and node.op == "neg" then
    return int_bound(node.a)
  elseif t ~= "bin" or not FUSE_OPS[node.op] then
    return nil
  end
  local a = int_bound(node.a)
  if not a then return nil end
  if node.op == "mod" or node.op == "floordiv" then
    local k = node.b.t == "const" and node.b.value
    if math.type(k) ~= "integer" or k == 0 or k > LEAF_MAX or k < -LEAF_MAX then return nil end
    return node.op == "mod" and math.abs(k) + 0.0 or a
  end
  local b = int_bound(node.b)
  if not b then return nil end
  local r = node.op == "mul" and a * b or a + b
  return r <= FUSE_MAX and r or nil
end

-- The Lua integer expression of a fusable tree; params maps its name
-- nodes to parameters, in the order they are met.
local function fused_code(node, params, list)
  local t = node.t
  if t == "const" then return string.format("%d", node.value) end
  if t == "name" then
    local p = "a" .. (#list + 1)
    params[node], list[#list + 1] = p, node
    return p
  end
  if t == "unary" then return "(-" .. fused_code(node.a, params, list) .. ")" end
  return "(" .. fused_code(node.a, params, list) .. FUSE_OPS[node.op]
    .. fused_code(node.b, params, list) .. ")"
end

-- The fused form of node (a bin or compare) as a call, or nil.
function C:fuse(node)
  if self.params or #self.fused >= MAX_FUSED then return nil end
  local a, b, op = node, nil, nil
  if node.t == "compare" then
    if #node.ops ~= 1 or not FUSE_CMP[node.ops[1].op] then return nil end
    a, b, op = node.expr, node.ops[1].expr, node.ops[1].op
    if a.t ~= "bin" and a.t ~= "unary" and b.t ~= "bin" and b.t ~= "unary" then return nil end
    if not int_bound(b) then return nil end
  end
  if not int_bound(a) then return nil end
  local params, list = {}, {}
  local fast = fused_code(a, params, list)
  if op then fast = fast .. FUSE_CMP[op] .. fused_code(b, params, list) end
  if #list == 0 then return nil end -- literals only: folded, not fused
  local checks, args = {}, {}
  for i, leaf in ipairs(list) do
    local p = params[leaf]
    checks[i] = "math_type(" .. p .. ") == \"integer\" and " .. p .. " <= " .. LEAF_MAX
      .. " and " .. p .. " >= -" .. LEAF_MAX
    args[i] = self:read_name(leaf.name)
  end
  local line = self.line
  self.params = params
  local slow = self:expr(node)
  self.params = nil
  self.line = line
  local name = "FX" .. (#self.fused + 1)
  local names = {}
  for i, leaf in ipairs(list) do names[i] = params[leaf] end
  names = table.concat(names, ", ")
  self.fused[#self.fused + 1] = { line = line, code = name .. " = function(" .. names
    .. ") if " .. table.concat(checks, " and ") .. " then return " .. fast .. " end return "
    .. slow .. " end" }
  return name .. "(" .. table.concat(args, ", ") .. ")"
end

EXPR.bin = function(self, n)
  local fused = FUSE_OPS[n.op] and self:fuse(n)
  if fused then return fused end
  local a = n.a
  if n.op == "pow" and a.t == "unary" and a.op == "neg" and is_number_const(a.a)
      and not is_pure(n.b) then
    -- Jinja folds -2 into a constant and writes it unparenthesised into
    -- Python's `-2 ** x`, which Python reads as -(2 ** x): so do we (a
    -- constant exponent folds the whole power first, which is exact)
    return "R.op.neg(R.op.pow(" .. self:expr(a.a) .. ", " .. self:expr(n.b) .. "))"
  end
  local kind = self:expr_kind(n)
  if kind == "percent_int" then
    self.memo = true
    return "R.percent_int_memo(MEMO, " .. self:expr(a) .. ", " .. self:expr(n.b) .. ")"
  elseif kind == "percent_ints" and #n.b.items == 2 then
    self.memo = true
    return "R.percent_ints_memo(MEMO, " .. self:expr(a) .. ", " .. self:items(n.b.items) .. ")"
  elseif kind == "percent_ints" then
    return "R.percent_ints(" .. self:expr(a) .. ", " .. self:items(n.b.items) .. ")"
  end
  return "R.op." .. n.op .. "(" .. self:expr(a) .. ", " .. self:expr(n.b) .. ")"
end

EXPR.unary = function(self, n)
  return "R.op." .. n.op .. "(" .. self:expr(n.a) .. ")"
end

EXPR.concat = function(self, n)
  return "R.concat({" .. self:items(n.items) .. "})"
end

EXPR["not"] = function(self, n)
  return "(not " .. self:test_expr(n.a) .. ")"
end

-- Nodes whose compiled expression is always a Lua boolean.
local BOOLEAN = { compare = true, test = true, ["not"] = true }

local function is_boolean(n)
  if BOOLEAN[n.t] then return true end
  if n.t == "const" then return type(n.value) == "boolean" end
  if n.t == "and" or n.t == "or" then return is_boolean(n.a) and is_boolean(n.b) end
  return false
end

-- Nodes whose value is never a Lua false (nor nil): `x and y` may use Lua's
-- own operators when y is one of them.
local function never_false(n)
  if n.t == "const" then return n.value ~= false end
  return n.t == "none" or n.t == "list" or n.t == "tuple" or n.t == "dict" or n.t == "concat"
end

-- `a and b` / `a or b` give an operand, not a boolean, and evaluate b only
-- when needed. With a boolean `a` Lua's own operators do that; otherwise
-- R.and_left / R.or_left return `a` when it decides the result (a false
-- `a` boxed, as Lua's `or` would skip it) and nil when b is needed.
EXPR["and"] = function(self, n)
  if is_boolean(n.a) then
    return "(" .. self:expr(n.a) .. " and " .. self:expr(n.b) .. ")"
  end
  return "R.unbox(R.and_left(" .. self:expr(n.a) .. ") or " .. self:expr(n.b) .. ")"
end

EXPR["or"] = function(self, n)
  if is_boolean(n.a) then
    return "(" .. self:expr(n.a) .. " or " .. self:expr(n.b) .. ")"
  end
  -- a truthy value is never a Lua false, so `or` keeps it as it is
  return "(R.or_left(" .. self:expr(n.a) .. ") or " .. self:expr(n.b) .. ")"
end

-- Compiles fn() as Jinja's "soft" frames: an unknown filter or test met
-- there (in an `if` or a conditional expression) fails when it runs, not
-- when the template is compiled.
function C:soft(fn)
  local saved = self.in_condition
  self.in_condition = true
  local r = fn()
  self.in_condition = saved
  return r
end

EXPR.cond = function(self, n)
  return self:soft(function()
    local no = n.no and self:expr(n.no) or "R.undefined_cond()"
    local test = self:test_expr(n.test)
    if never_false(n.yes) then
      return "(" .. test .. " and " .. self:expr(n.yes) .. " or " .. no .. ")"
    end
    -- a false `yes` would fall through Lua's and/or: boxed, then unboxed
    return "R.unbox(" .. test .. " and R.box(" .. self:expr(n.yes) .. ") or " .. no .. ")"
  end)
end

EXPR.compare = function(self, n)
  local fused = self:fuse(n)
  if fused then return fused end
  local parts = { self:expr(n.expr) }
  for _, op in ipairs(n.ops) do
    parts[#parts + 1] = q(op.op)
    parts[#parts + 1] = "function() return " .. self:expr(op.expr) .. " end"
  end
  if #n.ops == 1 then
    local op, right = n.ops[1].op, n.ops[1].expr
    local k = right.t == "const" and right.value
    if (op == "eq" or op == "ne") and (type(k) == "string" or (type(k) == "number" and k == k)) then
      -- against a literal: equal values of the same type need no R.cmp
      return "R." .. op .. (type(k) == "string" and "_str(" or "_num(") .. parts[1] .. ", "
        .. self:expr(right) .. ")"
    end
    return "R.cmp(" .. q(op) .. ", " .. parts[1] .. ", " .. self:expr(right) .. ")"
  end
  return "R.compare_chain(" .. table.concat(parts, ", ") .. ")"
end

-- Arguments: returns "args, kwargs" Lua expressions.
function C:args(c)
  local args = "{n = " .. #c.args .. (#c.args > 0 and ", " or "") .. self:items(c.args) .. "}"
  if c.dyn_args then
    args = "R.extend_args(" .. args .. ", " .. self:expr(c.dyn_args) .. ")"
  elseif #c.args == 0 then
    args = "R.NOARGS" -- one shared, read-only empty argument list
  end
  local kw
  if #c.kwargs == 0 and not c.dyn_kwargs then
    kw = "R.NOKW"
  else
    local parts, order = {}, {}
    for i, kv in ipairs(c.kwargs) do
      parts[i] = "[" .. q(kv.key) .. "] = " .. self:expr(kv.value)
      order[i] = q(kv.key)
    end
    kw = "R.kwargs({" .. table.concat(parts, ", ") .. "}, {" .. table.concat(order, ", ")
      .. "}" .. (c.dyn_kwargs and (", " .. self:expr(c.dyn_kwargs)) or "") .. ")"
  end
  return args, kw
end

EXPR.call = function(self, n)
  local args, kw = self:args(n)
  local fn = n.fn
  if fn.t == "getattr" and type(fn.name) == "string" then
    -- a method call: R.method finds the method without binding it
    return "R.method(S, " .. self:expr(fn.obj) .. ", " .. q(fn.name) .. ", " .. args .. ", "
      .. kw .. ")"
  end
  return "R.call(S, " .. self:expr(fn) .. ", " .. args .. ", " .. kw .. ")"
end

function C:note_use(kind, name)
  if self.in_condition then return end
  local uses = self.uses
  if not uses then
    uses = { filters = {}, tests = {} }
    self.uses = uses
  end
  uses[kind][name] = self.line
end

EXPR.filter = function(self, n)
  self:note_use("filters", n.name)
  local args, kw = self:args(n)
  local value = n.node and self:expr(n.node) or self.filter_input
  return "R.filter(S, " .. q(n.name) .. ", " .. value .. ", " .. args .. ", " .. kw .. ")"
end

EXPR.test = function(self, n)
  self:note_use("tests", n.name)
  local args, kw = self:args(n)
  return "R.test(S, " .. q(n.name) .. ", " .. self:expr(n.node) .. ", " .. args .. ", "
    .. kw .. ")"
end

-- Compiles an expression used only for its truth: returns a Lua boolean
-- expression. Keeps `and`/`or` short-circuiting without closures.
function C:test_expr(node)
  local saved = self.in_condition
  self.in_condition = true
  local r
  if node.t == "and" then
    r = "(" .. self:test_expr(node.a) .. " and " .. self:test_expr(node.b) .. ")"
  elseif node.t == "or" then
    r = "(" .. self:test_expr(node.a) .. " or " .. self:test_expr(node.b) .. ")"
  elseif node.t == "not" then
    r = "(not " .. self:test_expr(node.a) .. ")"
  elseif node.t == "test" or node.t == "compare" then
    -- R.test and the comparisons give a Lua boolean already
    r = self:expr(node)
  else
    r = "R.truthy(" .. self:expr(node) .. ")"
  end
  self.in_condition = saved
  return r
end

-- True when node always gives a Lua string: a string literal, `~`, a
-- `'%d' % x` format, or a local that only such expressions set.
function C:is_string(node)
  local t = node.t
  if t == "const" then return type(node.value) == "string" end
  if t == "concat" then return true end
  if t == "bin" then return self:expr_kind(node) ~= nil end
  if t == "cond" then
    return node.no ~= nil and self:is_string(node.yes) and self:is_string(node.no)
  end
  if t == "name" then
    local scope = self.scope
    while scope do
      local v = scope.vars[node.name]
      if v then return v.sure and v.string or false end
      scope = scope.parent
    end
  end
  return false
end

-- Statements ----------------------------------------------------------------

local STMT = {}

function C:body(nodes)
  for _, node in ipairs(nodes) do
    self.line = node.line or self.line
    local h = STMT[node.t]
    if not h then fail("cannot compile statement " .. node.t, node.line) end
    h(self, node)
  end
end

function C:write(expr)
  if self.guard then
    self:emit("if not ctx.parent then n = n + 1; o[n] = " .. expr .. " end")
  else
    self:emit("n = n + 1; o[n] = " .. expr)
  end
end

-- Writes template text; text right after other text (a comment between
-- them, nothing emitted) joins it in one piece. Folded values stay pieces
-- of their own, so the compiled source shows them.
function C:write_text(text, folded)
  if not self.guard then return self:piece(q(text), text) end
  local last = #self.code
  if not folded and self.text_at == last then
    self.text = self.text .. text
    self.code[last] = nil
    self.lmap[last] = nil
    self:write(q(self.text))
  else
    self.text = text
    self:write(q(text))
  end
  self.text_at = not folded and #self.code
end

STMT.data = function(self, n) self:write_text(n.value) end

-- Expressions made only of literals and operators: their value is the
-- same on every render, whatever the context or environment.
local PURE = { const = true, none = true, list = true, tuple = true, dict = true, bin = true,
               unary = true, concat = true, ["not"] = true, ["and"] = true, ["or"] = true,
               cond = true, compare = true }

-- Filters folded too, when given pure input: the builtin ones that give
-- the same text for the same input (renderers.jinja.runtime's list).
local PURE_FILTERS = require("renderers.jinja.runtime").PURE_FILTERS

-- True when node holds a filter call (its folded text is right only in an
-- environment that keeps the builtin filters).
local function has_filter(node)
  if type(node) ~= "table" then return false end
  if node.t == "filter" then return true end
  for _, v in pairs(node) do
    if has_filter(v) then return true end
  end
  return false
end

function is_pure(node)
  if type(node) ~= "table" then return true end
  if node.t == "filter" then
    if not (PURE_FILTERS[node.name] and node.node) then return false end
  elseif node.t and not PURE[node.t] then return false end
  for _, v in pairs(node) do
    if type(v) == "table" and not is_pure(v) then return false end
  end
  return true
end

-- Folded text longer than this is left to the render (it would bloat the
-- compiled chunk, and the output limit is checked there).
local FOLD_MAX = 256

-- The text `{{ e }}` prints for a pure expression, computed now as the
-- render would; nil when it raises (the render raises it then, with its
-- line) or is long.
local fold_env -- the render state folded filters run with

function C:fold(e)
  if not fold_env then
    fold_env = { R = require("renderers.jinja.runtime").R,
      S = { env = require("renderers.jinja.init").new_environment({}) } }
  end
  local chunk = load("local R = R; local NULL = R.NULL; local math_mininteger = R.MININT; "
    .. "local type, MEMO = R.type, {}; return R.str(" .. e .. ")", "=fold", "t", fold_env)
  local ok, text = pcall(chunk)
  if ok and type(text) == "string" and #text <= FOLD_MAX then return text end
end

STMT.output = function(self, n)
  if n.expr.t == "const" and type(n.expr.value) == "string" and not self.autoescape then
    return self:write_text(n.expr.value, true)
  end
  if not self.autoescape and is_pure(n.expr) then
    local e = self:expr(n.expr)
    local text = self:fold(e)
    if text and has_filter(n.expr) then
      -- env.fold: the environment has not replaced any of the pure filters
      return self:write("(S.env.fold and " .. q(text) .. " or R.str(" .. e .. "))")
    end
    if text then return self:write_text(text, true) end
  end
  local e = self:expr(n.expr)
  if self.autoescape then
    return self:write("R.autoescape(" .. self.autoescape .. ", " .. e .. ")")
  end
  if self.guard then
    return self:write("R.str(" .. e .. ")")
  end
  -- a local known to hold a string is a piece as it is
  if self:is_string(n.expr) and e:match("^v%d+_[%w_]*$") then return self:piece(e) end
  if self:is_string(n.expr) then return self:value_piece(e, true) end
  if n.expr.t == "filter" and n.expr.node then
    -- a filter's value printed: R.print_filter gives its text directly
    -- (`| json` again on an unchanged value makes no Markup)
    return self:value_piece("R.print_filter" .. e:sub(#"R.filter" + 1), true)
  end
  -- strings and integers (most printed values) skip the call: `..` and the
  -- buffer's table.concat print an integer as Python does. The total size
  -- is still checked by R.compact and at the end of the render.
  self:value_piece(e)
end

-- Compiles fn() as code that may not run on every pass: a local set there
-- may still be unset (nil) after it.
function C:branch(fn)
  local scope = self.scope
  if scope then scope.branch = scope.branch + 1 end
  fn()
  if scope then scope.branch = scope.branch - 1 end
end

STMT["if"] = function(self, n)
  self:soft(function()
    self:emit("if " .. self:test_expr(n.test) .. " then", n.line)
    self:branch(function()
      self:body(n.body)
      if n.else_ then
        self:emit("else")
        self:body(n.else_)
      end
    end)
    self:emit("end")
  end)
end

-- Assigns the Lua expression `value` to a target node in frame `frame`, or
-- to the local that holds the name in the innermost scope.
function C:assign(target, value, frame)
  frame = frame or "f"
  local scope = self.scope
  if target.t == "name" and scope and scope.vars[target.name] then
    local v = scope.vars[target.name]
    self:emit(v.lua .. " = " .. value)
    if scope.branch == 0 then v.sure = true end
  elseif target.t == "name" then
    self:emit(frame .. "[" .. q(target.name) .. "] = " .. value)
  elseif target.t == "nsref" then
    self:emit("R.ns_set(" .. self:read_name(target.name) .. ", "
      .. q(target.attr) .. ", " .. value .. ")")
  else
    local t = self:tmp()
    self:emit("do local " .. t .. " = R.unpack(" .. value .. ", " .. #target.items .. ")")
    for i, item in ipairs(target.items) do
      self:assign(item, t .. "[" .. i .. "]", frame)
    end
    self:emit("end")
  end
end

STMT.assign = function(self, n)
  self:assign(n.target, self:expr(n.expr))
end

-- Jinja's scoping of names a frame sets before reading them. Walking a
-- frame's statements in order, a name is first read or first set; when it
-- is first set (outside any `if`), Jinja's code holds
-- no value for it until the set runs, and the scopes nested in the frame
-- (loops, macros, call, filter, with and block-set bodies) that run before
-- the set find it undefined instead of the variable given or the global.
-- Returns those names, sorted, or nil.
-- The fields of each kind of expression node that hold expressions
-- (single ones, then lists; a list item may be a {key, value} or an
-- {op, expr} pair): a walk by kind calls no `next` per field as a generic
-- one would, and looks at no field the kind lacks.
local FIELDS = {
  bin = { "a", "b" }, ["and"] = { "a", "b" }, ["or"] = { "a", "b" }, ["not"] = { "a" },
  unary = { "a" }, cond = { "test", "yes", "no" }, compare = { "expr" }, getattr = { "obj" },
  getitem = { "obj", "key" }, slice = { "obj", "start", "stop", "step" },
  call = { "fn", "dyn_args", "dyn_kwargs" }, filter = { "node", "dyn_args", "dyn_kwargs" },
  test = { "node", "dyn_args", "dyn_kwargs" }, list = {}, tuple = {}, dict = {}, concat = {},
}
local LISTS = { compare = "ops", call = "args", filter = "args", test = "args", list = "items",
  tuple = "items", dict = "items", concat = "items" }

local loads_of

local function loads_of_list(list, seen)
  for k = 1, #list do
    local item = list[k]
    if item.t then
      loads_of(item, seen)
    else -- a pair
      local x = item.expr or item.value
      if type(item.key) == "table" then loads_of(item.key, seen) end
      if x then loads_of(x, seen) end
    end
  end
end

function loads_of(e, seen)
  local t = e.t
  if t == "name" or t == "nsref" then
    if seen[e.name] == nil then seen[e.name] = "load" end
    return
  end
  local fields = FIELDS[t]
  if not fields then -- a constant, or a kind this table does not know: every field
    if t == "const" or t == "none" then return end
    for _, v in pairs(e) do
      if type(v) == "table" then
        if v.t then loads_of(v, seen) elseif v[1] then loads_of_list(v, seen) end
      end
    end
    return
  end
  for i = 1, #fields do
    local c = e[fields[i]]
    if c then loads_of(c, seen) end
  end
  local list = LISTS[t] and e[LISTS[t]]
  if list then loads_of_list(list, seen) end
  if e.kwargs then loads_of_list(e.kwargs, seen) end
end

-- The names an assignment target binds, appended to list.
local function target_list(target, list)
  if target.t == "name" then
    list[#list + 1] = target.name
  elseif target.t == "tuple" then
    for _, item in ipairs(target.items) do target_list(item, list) end
  end
  return list
end

local function store(name, seen)
  if seen[name] == nil then seen[name] = "store" end
end

local function store_target(target, seen)
  if target.t == "name" then
    store(target.name, seen)
  elseif target.t == "nsref" then
    if seen[target.name] == nil then seen[target.name] = "load" end
  elseif target.t == "tuple" then
    for _, item in ipairs(target.items) do store_target(item, seen) end
  end
end

local walk_frame

-- An `if`: a name first met in one of its branches is read from the
-- variables given until set, whether every branch sets it or not (Jinja
-- counts a third branch, its elifs, which an if without elif leaves empty,
-- and each elif is an `if` of its own).
local function walk_if(node, seen)
  loads_of(node.test, seen)
  local sub = setmetatable({}, { __index = seen })
  walk_frame(node.body or {}, sub)
  if node.else_ then walk_frame(node.else_, sub) end
  for name in next, sub do seen[name] = "load" end
end

function walk_frame(body, seen, want)
  for _, node in ipairs(body) do
    if want then -- stop once every wanted name has met its first access
      local open = false
      for name in pairs(want) do
        if seen[name] == nil then open = true break end
      end
      if not open then return end
    end
    local t = node.t
    if t == "output" or t == "do" then
      loads_of(node.expr, seen)
    elseif t == "assign" then
      loads_of(node.expr, seen)
      store_target(node.target, seen)
    elseif t == "assign_block" then
      if node.filter then loads_of(node.filter, seen) end
      store_target(node.target, seen)
    elseif t == "if" then
      walk_if(node, seen)
    elseif t == "for" then
      loads_of(node.iter, seen)
    elseif t == "macro" then
      store(node.name, seen)
    elseif t == "call_block" then
      loads_of(node.call, seen)
    elseif t == "filter_block" then
      loads_of(node.filter, seen)
    elseif t == "with" then
      for _, v in ipairs(node.values) do loads_of(v, seen) end
    elseif t == "include" or t == "extends" then
      loads_of(node.template, seen)
    elseif t == "import" or t == "import_load" then
      loads_of(node.template, seen)
      store(node.target, seen)
    elseif t == "from_import" then
      loads_of(node.template, seen)
      for _, it in ipairs(node.names) do store(it.alias, seen) end
    elseif t == "load" then
      store(node.target, seen)
    elseif t == "autoescape" then
      loads_of(node.expr, seen)
      walk_frame(node.body, seen)
    end
  end
end

-- The names a frame's body reads or sets itself (nested scopes aside),
-- each "load", "store" or "param" by its first access. (The values of a
-- `with` count as read in its frame, as in Jinja.)
local function frame_names(body, params, reads, want)
  local seen = {}
  for _, p in ipairs(params or {}) do seen[p] = "param" end
  for _, e in ipairs(reads or {}) do loads_of(e, seen) end
  walk_frame(body, seen, want)
  return seen
end

-- The names a frame's top-level statements (not those inside an `if`) set:
-- the only ones that can be first set rather than first read.
local STORES = { assign = true, assign_block = true, macro = true, import = true,
  from_import = true, load = true, import_load = true }

local function top_stores(body, params)
  local want
  for _, node in ipairs(body) do
    if STORES[node.t] then
      local names = {}
      local t = node.t
      if t == "assign" or t == "assign_block" then
        target_list(node.target, names)
      elseif t == "from_import" then
        for _, it in ipairs(node.names) do names[#names + 1] = it.alias end
      else
        names[1] = node.name or node.target
      end
      for _, name in ipairs(names) do
        want = want or {}
        want[name] = true
      end
    end
  end
  for _, p in ipairs(params or {}) do if want then want[p] = nil end end
  return want and next(want) and want or nil
end

-- True when the frame of `entry` ({body, params, reads}) reads or sets
-- name itself (its names found on the first question, then kept).
local function frame_touches(entry, name)
  local names = entry.names
  if not names then
    names = frame_names(entry.body, entry.params, entry.reads)
    entry.names = names
  end
  return names[name] ~= nil
end

-- True when a tree of AST nodes names the variable `name` anywhere (in
-- nested macros and call blocks too).
local function names_var(node, name)
  if type(node) ~= "table" then return false end
  if node.t == "name" and node.name == name then return true end
  for _, v in pairs(node) do
    if type(v) == "table" and names_var(v, name) then return true end
  end
  return false
end

-- Statements whose bodies are scopes of their own.
local NESTED_SCOPES = { ["for"] = true, macro = true, call_block = true, filter_block = true,
  with = true, assign_block = true, load = true }

-- True when a frame's body holds a nested scope (in an `if` too).
local function has_nested_scope(body)
  for _, node in ipairs(body) do
    if NESTED_SCOPES[node.t] then return true end
    if node.t == "if" or node.t == "autoescape" then
      if has_nested_scope(node.body or {}) or has_nested_scope(node.else_ or {}) then
        return true
      end
    end
  end
  return false
end

-- Which of `names` (a set) the nested scopes of a frame's body read before
-- the body's own set of the name: only those can meet it unset (a scope
-- after the set, a macro defined there included, runs after it). Found
-- names go into `out`.
local function nested_loads(body, names, out, stored)
  for _, node in ipairs(body) do
    if NESTED_SCOPES[node.t] then
      for name in pairs(names) do
        if not stored[name] and not out[name] and names_var(node, name) then
          out[name] = true
        end
      end
      if node.t == "assign_block" then
        store_target(node.target, stored)
      elseif node.t == "load" then
        store(node.target, stored)
      end
    elseif node.t == "assign" then
      store_target(node.target, stored)
    elseif node.t == "if" then
      nested_loads(node.body or {}, names, out, setmetatable({}, { __index = stored }))
      nested_loads(node.else_ or {}, names, out, setmetatable({}, { __index = stored }))
    elseif node.body then
      nested_loads(node.body, names, out, stored)
    end
    -- every name set before any scope that reads it: nothing left to find
    local left = false
    for name in pairs(names) do
      if not stored[name] and not out[name] then left = true break end
    end
    if not left then return out end
  end
  return out
end

-- The names of a frame that Jinja leaves without a value until set: set
-- before read at the top level (outside any `if`), read before that by a
-- nested scope, and read or set by no enclosing frame (where one does,
-- Jinja's frame starts from that one's value). `outer` lists the enclosing
-- frames (C.frames). Sorted, or nil.
local function first_stores(body, params, reads, outer)
  -- (a body with no scope nested in it has no name to shadow)
  local want = has_nested_scope(body) and top_stores(body, params)
  if not want then return nil end
  local candidates
  for name, how in pairs(frame_names(body, params, reads, want)) do
    if how == "store" then
      candidates = candidates or {}
      candidates[name] = true
    end
  end
  if not candidates then return nil end
  local names
  for name in pairs(nested_loads(body, candidates, {}, {})) do
    local known = false
    for i = 1, #outer do
      if frame_touches(outer[i], name) then known = true break end
    end
    if not known then
      names = names or {}
      names[#names + 1] = name
    end
  end
  if names then table.sort(names) end
  return names
end

-- Enters a frame for `body`: it joins C.frames for the frames nested in
-- it; returns its first_stores. C:leave_frame() ends it.
function C:enter_frame(body, params, reads)
  local outer = self.frames or {}
  self.frames = outer
  local names = first_stores(body, params, reads, outer)
  outer[#outer + 1] = { body = body, params = params, reads = reads }
  return names
end

function C:leave_frame()
  self.frames[#self.frames] = nil
end

-- Enters a frame held in `f` and emits the R.shadow of its first-stored
-- names.
function C:shadow(body, params, reads)
  local names = self:enter_frame(body, params, reads)
  if not names then return end
  for i, name in ipairs(names) do names[i] = q(name) end
  self:emit("R.shadow(f, {" .. table.concat(names, ", ") .. "})")
end

-- Compiles `body` into a nested output buffer, in a frame of its own (as
-- Jinja scopes a block set and a filter block: what the body sets is not
-- seen after it); `finish(code, outer)` receives the Lua expression holding
-- the rendered string and the name of the frame around, inside the same
-- do-block. (A loop holding such a body keeps its variables in frames,
-- FRAME_USERS.)
function C:capture(body, finish)
  local guard = self.guard
  self.guard = false
  local outer = self:tmp()
  self:emit("do local o, n = R.buffer(), 0; local " .. outer .. " = f; local f = R.frame(f)")
  self:shadow(body)
  self:body(body)
  self:leave_frame()
  self.guard = guard
  finish("R.join(o, n)", outer)
  self:emit("end")
end

STMT.assign_block = function(self, n)
  self:capture(n.body, function(text, outer)
    local value = text
    if n.filter then
      self.filter_input = text
      value = self:expr(n.filter)
    end
    self:assign(n.target, value, outer)
  end)
end

STMT.filter_block = function(self, n)
  -- the filtered text is written after the capture's block, to the
  -- output the block shadows
  local v = self:tmp()
  self:emit("local " .. v)
  self:capture(n.body, function(text)
    self.filter_input = text
    self:emit(v .. " = " .. self:expr(n.filter))
  end)
  self:write("R.str(" .. v .. ")")
end

STMT.autoescape = function(self, n)
  local flag = self:tmp()
  self:emit("do local " .. flag .. " = R.truthy(" .. self:expr(n.expr) .. ")")
  local saved = self.autoescape
  self.autoescape = flag
  self:body(n.body)
  self.autoescape = saved
  self:emit("end")
end

STMT["do"] = function(self, n)
  self:emit("local _ = " .. self:expr(n.expr))
end

STMT["with"] = function(self, n)
  local vals = {}
  for i, v in ipairs(n.values) do vals[i] = self:expr(v) end
  self:emit("do local f = R.frame(f)")
  for i, t in ipairs(n.targets) do self:assign(t, vals[i]) end
  local params = {}
  for _, t in ipairs(n.targets) do target_list(t, params) end
  self:shadow(n.body, params, n.values)
  self:body(n.body)
  self:leave_frame()
  self:emit("end")
end

STMT["break"] = function(self, n)
  if not self.loop then fail("break outside of a loop", n.line) end
  self:emit("break")
end

STMT["continue"] = function(self, n)
  if not self.loop then fail("continue outside of a loop", n.line) end
  self:emit("goto " .. self.loop)
end

-- Statements that read or write variables by name through the frame chain:
-- a loop holding one of them keeps its variables in frames. Statements sit
-- only in the `body` and `else_` lists of other statements (never inside an
-- expression), so the walks below follow those two fields alone.
local FRAME_USERS = { macro = true, call_block = true, include = true, import = true,
  from_import = true, import_load = true, block = true, extends = true, with = true,
  assign_block = true, filter_block = true, load = true }

local function uses_frames(body)
  if not body then return false end
  for i = 1, #body do
    local node = body[i]
    local t = node.t
    if FRAME_USERS[t] or (t == "for" and node.recursive) then return true end
    if node.body and uses_frames(node.body) then return true end
    if node.else_ and uses_frames(node.else_) then return true end
  end
  return false
end

-- Adds one name to out: name -> "string" while every value assigned to it
-- is a string, else true.
local function add_name(out, name, is_string)
  local prev = out[name]
  out[name] = (is_string and (prev == nil or prev == "string")) and "string" or true
end

-- Adds the names of an assignment target to out (see add_name).
local function target_names(target, out, is_string)
  if target.t == "name" then
    add_name(out, target.name, is_string)
  elseif target.t == "tuple" then
    for _, item in ipairs(target.items) do target_names(item, out, false) end
  end
  return out
end

-- The names a loop body sets into its own scope: `set` and `load`
-- targets anywhere in it except inside nested loops and their `else`
-- (which have scopes of their own).
-- is_string(node), when given, tells the values that are always strings.
local function assigned_names(body, out, is_string)
  for i = 1, #body do
    local node = body[i]
    local t = node.t
    if t == "assign" then
      target_names(node.target, out, is_string and is_string(node.expr))
    elseif t == "assign_block" then
      target_names(node.target, out, node.filter == nil)
    elseif t == "load" then
      add_name(out, node.target, false)
    end
    if t ~= "for" then
      -- most statements hold no body: no call for them
      local inner = node.body
      if inner then assigned_names(inner, out, is_string) end
      inner = node.else_
      if inner then assigned_names(inner, out, is_string) end
    end
  end
  return out
end

-- The number of Lua locals a loop compiled with locals declares, nested
-- loops included (an upper bound). names: the loop's own names, when known.
local function locals_needed(n, names)
  local count = 4
  for _ in pairs(names or assigned_names(n.body, target_names(n.target, {}))) do
    count = count + 1
  end
  local function nested(body)
    for i = 1, #body do
      local node = body[i]
      if node.t == "for" then
        count = count + locals_needed(node)
      else
        if node.body then nested(node.body) end
        if node.else_ then nested(node.else_) end
      end
    end
  end
  nested(n.body)
  if n.else_ then nested(n.else_) end
  return count
end

-- Locals a compiled function may declare for template variables: Lua
-- allows 200 locals and 255 registers, and expressions need registers too.
local MAX_LOCALS = 100

-- True when loop n can keep its variables in Lua locals: nothing in it
-- reads the frames by name (macros, caller, include, import, blocks, with,
-- recursive loops) and they fit. Loops inside such a loop always can.
-- names: the loop's names (its target and what its body sets).
function C:can_use_locals(n, names)
  if self.scope then return true end
  if n.recursive or uses_frames(n.body) then return false end
  if names.loop then return false end
  return locals_needed(n, names) <= MAX_LOCALS
end

-- Opens a scope of locals for `names` (sorted, so the output is stable).
function C:open_scope(names)
  local scope = { vars = {}, parent = self.scope, branch = 0 }
  local list = {}
  for name in pairs(names) do list[#list + 1] = name end
  table.sort(list)
  for i, name in ipairs(list) do
    local lua = "v" .. self:tmp():sub(2) .. "_" .. name
    scope.vars[name] = { lua = lua, string = names[name] == "string" }
    list[i] = lua
  end
  if #list > 0 then self:emit("local " .. table.concat(list, ", ")) end
  self.scope = scope
  return scope
end

-- Emits the `if` filter of a loop: drops the items it rejects.
function C:loop_filter(n, frame_code)
  self:emit("items, count = R.filter_items(items, function(item)")
  if frame_code then
    self:emit("local f = R.frame(lf)")
  else
    self:open_scope(target_names(n.target, {}))
  end
  local outer = self.scope
  self:assign(n.target, "item")
  self:emit("return " .. self:test_expr(n.test))
  self:emit("end)")
  if not frame_code then self.scope = outer.parent end
end

-- The loop body: binds the target and `loop`, runs the body. Used inline
-- for plain loops and inside a local function for recursive ones. A body
-- that never names `loop` gets no loop object (only its iterations counted).
-- The loop's variables (its target, `loop` and what the body sets) live in
-- Lua locals when C:can_use_locals allows, else in a frame of their own.
-- Either is made anew for each iteration, as Jinja scopes a loop body: a
-- name set in one iteration is not set at the start of the next, where it
-- reads the value from around the loop again.
function C:loop_code(n, items_expr, depth_expr)
  local label = "continue_" .. self:tmp()
  local saved_loop, saved_scope = self.loop, self.scope
  -- one walk of the body names the loop's variables for both uses
  local names = assigned_names(n.body, target_names(n.target, {}),
    function(node) return self:is_string(node) end)
  local frames = not self:can_use_locals(n, names)
  if frames then self:emit("local lf = f") end
  -- a name comes from the source text as it is, so a source without the
  -- word needs no walk of the body
  local uses_loop = n.recursive or (self.mentions_loop and names_var(n.body, "loop"))
  -- A loop reads a list in place; a filter needs the items copied (R.items
  -- and R.iter).
  local plain = not n.test
  self:emit("local items, count = " .. (plain and "R.items(" or "R.iter(") .. items_expr .. ")")
  if n.test then self:loop_filter(n, frames) end
  local L = frames and "L" or "L" .. self:tmp():sub(2)
  if uses_loop then
    self:emit("local " .. L .. " = R.loop(S, items, count, " .. depth_expr .. ", "
      .. (n.recursive and "rec" or "nil") .. ")")
  else
    self:emit("R.count_loop(S, count)")
  end
  self:emit("for i = 1, count do")
  if plain then self:emit("if items[i] == nil then break end") end
  if uses_loop then self:emit(L .. ".index0 = i - 1") end
  if frames then
    self:emit("do local f = R.frame(lf)")
    if uses_loop then self:emit("f.loop = L") end
  else
    local scope = self:open_scope(names)
    if uses_loop then scope.vars.loop = { lua = L, sure = true } end
  end
  self:assign(n.target, "items[i]")
  self:shadow_loop(n, frames)
  if not frames then self:emit("do") end
  self.loop = label
  self:body(n.body)
  self:leave_frame()
  self.loop = saved_loop
  self:emit("end")
  self:emit("::" .. label .. "::")
  self:emit("if n > 4096 then n = R.compact(S, o, n) end")
  self:emit("end")
  self.scope = saved_scope
  if n.else_ then
    self:loop_else(n)
  end
end

-- Jinja's scoping of the names a loop body sets before reading them (see
-- first_stores): in a frame, R.shadow; in locals, each starts undefined
-- (a read from an inner loop before the set finds that, not the value
-- around the loop) and is no longer taken for a string.
function C:shadow_loop(n, frames)
  local params = target_list(n.target, { "loop" })
  if frames then return self:shadow(n.body, params) end
  local names = self:enter_frame(n.body, params)
  for _, name in ipairs(names or {}) do
    local v = self.scope.vars[name]
    if v then
      v.string = false
      self:emit(v.lua .. " = R.missing(" .. q(name) .. ")")
    end
  end
end

-- A loop's `else`, in a scope of its own as Jinja runs it: what it sets
-- is not seen after the loop. Inside a loop compiled with locals it gets
-- locals too (nothing there reads frames), elsewhere a frame.
function C:loop_else(n)
  self:emit("if count == 0 then")
  if self.scope then
    self:open_scope(assigned_names(n.else_, {}, function(node) return self:is_string(node) end))
  else
    self:emit("local f = R.frame(f)")
  end
  self:body(n.else_)
  self:emit("end")
  self.scope = self.scope and self.scope.parent or nil
end

STMT["for"] = function(self, n)
  local iter = self:expr(n.iter)
  if not n.recursive then
    self:emit("do")
    self:loop_code(n, iter, "1")
    self:emit("end")
    return
  end
  local guard = self.guard
  self.guard = false
  self:emit("do local rec; rec = function(S, iterable, depth)")
  self:emit("local o, n = R.buffer(), 0")
  self:loop_code(n, "iterable", "depth")
  self:emit("return R.join(o, n) end")
  self.guard = guard
  self:write("rec(S, " .. iter .. ", 1)")
  self:emit("end")
end

-- Scans a macro body for the special names a macro may use.
local function find_names(node, found)
  if type(node) ~= "table" then return end
  if node.t == "name" then found[node.name] = true end
  for k, v in pairs(node) do
    if k ~= "blocks" and type(v) == "table" then find_names(v, found) end
  end
  return found
end

-- Emits a macro object construction; returns nothing, leaves it in `m`.
function C:macro_function(n, name)
  local found = find_names(n.body, {})
  for _, d in pairs(n.defaults) do find_names(d, found) end
  local names = {}
  for i, a in ipairs(n.args) do names[i] = q(a) end
  local guard, saved_loop = self.guard, self.loop
  self.guard, self.loop = false, nil
  self:emit("local m = R.macro(S, " .. q(name) .. ", {" .. table.concat(names, ", ") .. "}, "
    .. tostring(found.varargs or false) .. ", " .. tostring(found.kwargs or false) .. ", "
    .. tostring(found.caller or false) .. ", f, function(S, f)", n.line)
  self:emit("local o, n = R.buffer(), 0")
  for i, a in ipairs(n.args) do
    if n.defaults[i] then
      -- (a macro's frame has no __newindex: a plain assignment is raw)
      self:emit("if R.rawget(f, " .. q(a) .. ") == nil then f[" .. q(a) .. "] = "
        .. self:expr(n.defaults[i]) .. " end")
    end
  end
  local params = { "varargs", "kwargs", "caller" }
  for _, a in ipairs(n.args) do params[#params + 1] = a end
  self:shadow(n.body, params)
  self:body(n.body)
  self:leave_frame()
  self:emit("return R.join(o, n) end)")
  self.guard, self.loop = guard, saved_loop
  local defaults = {}
  for i, a in ipairs(n.args) do
    if n.defaults[i] then defaults[#defaults + 1] = q(a) end
  end
  self:emit("m.defaults_names = {" .. table.concat(defaults, ", ") .. "}")
end

STMT.macro = function(self, n)
  self:emit("do")
  self:macro_function(n, n.name)
  self:emit("R.set(f, " .. q(n.name) .. ", m)")
  self:emit("end")
end

STMT.call_block = function(self, n)
  self:emit("do")
  self:macro_function(n, "caller")
  local call = n.call
  local args, kw = self:args(call)
  self:write("R.str(R.call(S, " .. self:expr(call.fn) .. ", " .. args .. ", R.with_caller("
    .. kw .. ", m)))")
  self:emit("end")
end

STMT.block = function(self, n)
  self:write("R.render_block(S, ctx, " .. q(n.name) .. ", 1, f)")
end

STMT.extends = function(self, n)
  self:emit("if not ctx.parent then ctx.parent = R.load_parent(S, ctx, " .. self:expr(n.template)
    .. ") end")
end

STMT.include = function(self, n)
  self:write("R.include(S, ctx, f, " .. self:expr(n.template) .. ", "
    .. tostring(n.with_context) .. ", " .. tostring(n.ignore_missing or false) .. ")")
end

STMT.import = function(self, n)
  self:emit("R.set(f, " .. q(n.target) .. ", R.import(S, ctx, f, " .. self:expr(n.template)
    .. ", " .. tostring(n.with_context) .. "))")
end

STMT.from_import = function(self, n)
  self:emit("do local mod = R.import(S, ctx, f, " .. self:expr(n.template) .. ", "
    .. tostring(n.with_context) .. ")")
  for _, it in ipairs(n.names) do
    self:emit("R.set(f, " .. q(it.alias) .. ", R.import_name(mod, " .. q(it.name) .. "))")
  end
  self:emit("end")
end

STMT.load = function(self, n)
  self:capture(n.body, function(text, outer)
    self:assign({ t = "name", name = n.target },
      "R.load_text(S, " .. q(n.format) .. ", " .. text .. ")", outer)
  end)
end

STMT.import_load = function(self, n)
  self:emit("R.set(f, " .. q(n.target) .. ", R.import_load(S, ctx, f, " .. q(n.format) .. ", "
    .. self:expr(n.template) .. ", " .. tostring(n.with_context) .. "))")
end

-- Whole templates -----------------------------------------------------------

local function has_extends(body)
  for _, node in ipairs(body) do
    if node.t == "extends" then return true end
  end
  return false
end


-- shadow: apply Jinja's scoping of first-stored names (first_stores); not
-- for a template with blocks, whose bodies read the variables given.
function C:function_for(header, body, guard, shadow)
  self:emit(header)
  self:emit("local o, n = R.buffer(), 0")
  if shadow then self:shadow(body) else self:enter_frame(body) end
  self.guard = guard
  self:body(body)
  self:leave_frame()
  self.guard = false
  self:emit("if tail then n = n + 1; o[n] = tail end")
  self:emit("return R.join(o, n) end")
end

--- Compiles template source into Lua source.
---@param source string template text
---@return string lua source
---@return table line map (Lua line -> template line)
-- Salt reads a template as UTF-8 text: bytes that are not UTF-8 fail
-- before anything is rendered, naming the line.
local function check_utf8(source)
  local ok, bad = utf8.len(source)
  if not ok then
    local line = select(2, source:sub(1, bad):gsub("\n", "")) + 1
    error({ class = "UnicodeDecodeError", line = line, message = string.format(
      "'utf-8' codec can't decode byte 0x%02x in position %d: invalid start byte",
      source:byte(bad), bad - 1) }, 0)
  end
end

-- The filters and tests a template names outside conditions, as the
-- T.uses line of its chunk (nil when none): what the environment checks
-- before the first render. Sorted, so the same template always compiles
-- to the same text.
local function uses_line(uses)
  if not uses then return nil end
  local out = { "T.uses = {" }
  for _, kind in ipairs({ "filters", "tests" }) do
    local parts = {}
    for name, line in pairs(uses[kind]) do
      parts[#parts + 1] = "[" .. q(name) .. "] = " .. line
    end
    table.sort(parts)
    out[#out + 1] = kind .. " = {" .. table.concat(parts, ", ") .. "}"
  end
  return out[1] .. out[2] .. ", " .. out[3] .. "}"
end

-- The pieces waiting to be written are always emptied by C:flush, so one
-- pair of tables serves every compile.
local shared_pending, shared_pending_text = {}, {}

function M.compile(source)
  check_utf8(source)
  quoted = {}
  local tree = parser.parse(source)
  -- code and lmap start with room for a small template's lines: a table
  -- grown one slot at a time is rebuilt at every power of two
  local self = setmetatable({ code = { nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
                                       nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
                                       nil, nil, nil, nil, nil, nil, nil, nil, nil, nil },
                              lmap = { nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
                                       nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
                                       nil, nil, nil, nil, nil, nil, nil, nil, nil, nil },
                              line = 1, ntmp = 0,
                              pending = shared_pending, pending_text = shared_pending_text,
                              npending = 0, nvalue = 0, uses = false, fused = {},
                              mentions_loop = source:find("loop", 1, true) ~= nil }, C)
  self:emit("local R = R; local NULL = R.NULL; local math_mininteger = R.MININT; "
    .. "local type, math_type, SMALL_INTS = R.type, R.math_type, R.SMALL_INTS")
  self:emit("local T = { blocks = {} }")
  local extends = has_extends(tree.body)
  self:function_for("T.root = function(S, ctx, f, tail)", tree.body, extends,
    next(tree.blocks) == nil and not extends)
  if next(tree.blocks) ~= nil then self:block_functions(tree.blocks) end
  local uses = uses_line(self.uses)
  if uses then self:emit(uses) end
  if #self.fused > 0 then
    local names = {}
    for i, fx in ipairs(self.fused) do
      names[i] = "FX" .. i
      self:emit(fx.code, fx.line)
    end
    self.code[1] = self.code[1] .. "; local " .. table.concat(names, ", ")
  end
  if self.memo then
    -- the texts of `'%02d' % i` already made, kept as long as the template
    self.code[1] = self.code[1] .. "; local MEMO = {}"
  end
  self:emit("return T")
  return table.concat(self.code, "\n"), self.lmap
end

-- The functions of a template's blocks, by name.
function C:block_functions(blocks)
  local names = {}
  for name in pairs(blocks) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local b = blocks[name]
    self:function_for("T.blocks[" .. q(name) .. "] = function(S, ctx, f, tail)", b.body,
      false)
    self:emit("T.scoped = T.scoped or {}; T.scoped[" .. q(name) .. "] = "
      .. tostring(b.scoped))
    if b.required then
      self:emit("T.required = T.required or {}; T.required[" .. q(name) .. "] = true")
    end
  end
end

return M
