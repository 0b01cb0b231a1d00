-- The Jinja parser: turns the lexer's tokens into a tree of nodes (plain
-- tables with a `t` field naming the node kind and a `line`). It follows
-- Jinja 3's grammar and precedence, and its error messages, so that a
-- template that Jinja rejects is rejected here with the same words. Salt's
-- serializer tags (load_yaml, import_yaml, ...) are part of the grammar.
local lexer = require "renderers.jinja.lexer"

local M = {}

local P = {}
P.__index = P

local function fail(message, line)
  error({ class = "TemplateSyntaxError", message = message, line = line }, 0)
end

local TYPE_NAMES = {
  variable_end = "end of print statement", block_end = "end of statement block",
  eof = "end of template", variable_begin = "begin of print statement",
  block_begin = "begin of statement block",
}

local function describe(tok)
  if tok.type == "op" or tok.type == "name" then return tostring(tok.value) end
  if tok.type == "string" or tok.type == "integer" or tok.type == "float" then
    return tostring(tok.value)
  end
  return TYPE_NAMES[tok.type] or tok.type
end

function P:peek() return self.tokens[self.pos] end
function P:look() return self.tokens[self.pos + 1] end
function P:next()
  local tok = self.tokens[self.pos]
  self.pos = self.pos + 1
  return tok
end

function P:is(ty, value)
  local tok = self.tokens[self.pos]
  return tok.type == ty and (value == nil or tok.value == value)
end

function P:skip(ty, value)
  if self:is(ty, value) then return self:next() end
end

function P:expect(ty, value)
  local tok = self:peek()
  if tok.type == ty and (value == nil or tok.value == value) then return self:next() end
  local want = value or TYPE_NAMES[ty] or ty
  if tok.type == "eof" then
    fail("unexpected end of template, expected '" .. want .. "'.", tok.line)
  end
  fail("expected token '" .. want .. "', got '" .. describe(tok) .. "'", tok.line)
end

function P:fail_unknown_tag(name, line, end_tokens)
  local msg
  if name then
    msg = "Encountered unknown tag '" .. name .. "'."
  else
    msg = "Unexpected end of template."
  end
  local stack = self.end_stack
  if #stack > 0 then
    local expected = {}
    for _, e in ipairs(stack[#stack]) do expected[#expected + 1] = "'" .. e .. "'" end
    msg = msg .. " Jinja was looking for the following tags: "
      .. table.concat(expected, " or ") .. "."
  end
  if #self.tag_stack > 0 then
    msg = msg .. " The innermost block that needs to be closed is '"
      .. self.tag_stack[#self.tag_stack] .. "'."
  end
  fail(msg, line)
end

-- Expressions ---------------------------------------------------------------

function P:expression(with_condexpr)
  if with_condexpr == false then return self:or_expr() end
  return self:condexpr()
end

function P:condexpr()
  local line = self:peek().line
  local e1 = self:or_expr()
  while self:skip("name", "if") do
    local test = self:or_expr()
    local e3
    if self:skip("name", "else") then e3 = self:condexpr() end
    e1 = { t = "cond", test = test, yes = e1, no = e3, line = line }
  end
  return e1
end

function P:or_expr()
  local line = self:peek().line
  local left = self:and_expr()
  while self:skip("name", "or") do
    left = { t = "or", a = left, b = self:and_expr(), line = line }
  end
  return left
end

function P:and_expr()
  local line = self:peek().line
  local left = self:not_expr()
  while self:skip("name", "and") do
    left = { t = "and", a = left, b = self:not_expr(), line = line }
  end
  return left
end

function P:not_expr()
  local tok = self:peek()
  if tok.type == "name" and tok.value == "not" then
    self:next()
    return { t = "not", a = self:not_expr(), line = tok.line }
  end
  return self:compare()
end

local CMP = { ["=="] = "eq", ["!="] = "ne", ["<"] = "lt", ["<="] = "lteq",
              [">"] = "gt", [">="] = "gteq" }

function P:compare()
  local line = self:peek().line
  local expr = self:math1()
  local ops = {}
  while true do
    local tok = self:peek()
    if tok.type == "op" and CMP[tok.value] then
      self:next()
      ops[#ops + 1] = { op = CMP[tok.value], expr = self:math1() }
    elseif tok.type == "name" and tok.value == "in" then
      self:next()
      ops[#ops + 1] = { op = "in", expr = self:math1() }
    elseif tok.type == "name" and tok.value == "not" and self:look().type == "name"
        and self:look().value == "in" then
      self.pos = self.pos + 2
      ops[#ops + 1] = { op = "notin", expr = self:math1() }
    else
      break
    end
  end
  if #ops == 0 then return expr end
  return { t = "compare", expr = expr, ops = ops, line = line }
end

function P:math1()
  local line = self:peek().line
  local left = self:concat()
  while self:is("op", "+") or self:is("op", "-") do
    local op = self:next().value
    left = { t = "bin", op = op == "+" and "add" or "sub", a = left, b = self:concat(),
             line = line }
  end
  return left
end

function P:concat()
  local line = self:peek().line
  local args = { self:math2() }
  while self:skip("op", "~") do args[#args + 1] = self:math2() end
  if #args == 1 then return args[1] end
  return { t = "concat", items = args, line = line }
end

local MATH2 = { ["*"] = "mul", ["/"] = "truediv", ["//"] = "floordiv", ["%"] = "mod" }

function P:math2()
  local line = self:peek().line
  local left = self:pow()
  while self:peek().type == "op" and MATH2[self:peek().value] do
    local op = MATH2[self:next().value]
    left = { t = "bin", op = op, a = left, b = self:pow(), line = line }
  end
  return left
end

function P:pow()
  local line = self:peek().line
  local left = self:unary()
  while self:skip("op", "**") do
    left = { t = "bin", op = "pow", a = left, b = self:unary(), line = line }
  end
  return left
end

function P:unary(with_filter)
  local tok = self:peek()
  local node
  if tok.type == "op" and tok.value == "-" then
    self:next()
    node = { t = "unary", op = "neg", a = self:unary(false), line = tok.line }
  elseif tok.type == "op" and tok.value == "+" then
    self:next()
    node = { t = "unary", op = "pos", a = self:unary(false), line = tok.line }
  else
    node = self:postfix(self:primary())
  end
  if with_filter ~= false then node = self:filter_expr(node) end
  return node
end

local CONSTS = { ["true"] = true, ["True"] = true, ["false"] = false, ["False"] = false }

function P:primary()
  local tok = self:next()
  if tok.type == "name" then
    if CONSTS[tok.value] ~= nil then
      return { t = "const", value = CONSTS[tok.value], line = tok.line }
    elseif tok.value == "none" or tok.value == "None" then
      return { t = "none", line = tok.line }
    end
    return { t = "name", name = tok.value, line = tok.line }
  elseif tok.type == "string" then
    local parts = { tok.value }
    while self:is("string") do parts[#parts + 1] = self:next().value end
    return { t = "const", value = table.concat(parts), line = tok.line }
  elseif tok.type == "integer" or tok.type == "float" then
    return { t = "const", value = tok.value, line = tok.line }
  elseif tok.type == "op" and tok.value == "(" then
    local node = self:tuple(nil, true)
    self:expect("op", ")")
    return node
  elseif tok.type == "op" and tok.value == "[" then
    return self:list(tok)
  elseif tok.type == "op" and tok.value == "{" then
    return self:dict(tok)
  end
  if tok.type == "eof" then fail("unexpected end of template", tok.line) end
  fail("unexpected '" .. describe(tok) .. "'", tok.line)
end

function P:list(tok)
  local items = {}
  while not self:is("op", "]") do
    if #items > 0 then self:expect("op", ",") end
    if self:is("op", "]") then break end
    items[#items + 1] = self:expression()
  end
  self:expect("op", "]")
  return { t = "list", items = items, line = tok.line }
end

function P:dict(tok)
  local items = {}
  while not self:is("op", "}") do
    if #items > 0 then self:expect("op", ",") end
    if self:is("op", "}") then break end
    local key = self:expression()
    self:expect("op", ":")
    items[#items + 1] = { key = key, value = self:expression() }
  end
  self:expect("op", "}")
  return { t = "dict", items = items, line = tok.line }
end

-- Parses a comma separated tuple. `simplified` limits items to primaries
-- (for assignment targets); `extra_end` lists names that end the tuple.
function P:tuple(simplified, explicit, with_condexpr, extra_end)
  local line = self:peek().line
  local items, is_tuple = {}, false
  local function parse()
    if simplified then return self:primary() end
    return self:expression(with_condexpr)
  end
  while true do
    if #items > 0 then self:expect("op", ",") end
    local tok = self:peek()
    if tok.type == "variable_end" or tok.type == "block_end" or tok.type == "eof"
        or (tok.type == "op" and tok.value == ")" and explicit)
        or (extra_end and tok.type == "name" and extra_end[tok.value]) then
      break
    end
    items[#items + 1] = parse()
    if self:is("op", ",") then is_tuple = true else break end
  end
  if not is_tuple then
    if #items > 0 then return items[1] end
    if not explicit then
      fail("Expected an expression, got '" .. describe(self:peek()) .. "'", self:peek().line)
    end
  end
  return { t = "tuple", items = items, line = line }
end

function P:postfix(node)
  while true do
    local tok = self:peek()
    if tok.type == "op" and (tok.value == "." or tok.value == "[") then
      node = self:subscript(node)
    elseif tok.type == "op" and tok.value == "(" then
      node = self:call(node)
    else
      return node
    end
  end
end

function P:filter_expr(node)
  while true do
    local tok = self:peek()
    if tok.type == "op" and tok.value == "|" then
      node = self:filter(node)
    elseif tok.type == "name" and tok.value == "is" then
      node = self:test(node)
    elseif tok.type == "op" and tok.value == "(" then
      node = self:call(node)
    else
      return node
    end
  end
end

function P:subscript(node)
  local tok = self:next()
  if tok.value == "." then
    local attr = self:next()
    if attr.type == "name" then
      return { t = "getattr", obj = node, name = attr.value, line = tok.line }
    elseif attr.type == "integer" then
      return { t = "getitem", obj = node, key = { t = "const", value = attr.value },
               line = tok.line }
    end
    fail("expected name or number", attr.line)
  end
  local args = {}
  while not self:is("op", "]") do
    if #args > 0 then self:expect("op", ",") end
    args[#args + 1] = self:subscribed()
  end
  self:expect("op", "]")
  local key
  if #args == 1 then key = args[1] else
    for _, a in ipairs(args) do
      -- Jinja compiles x[1:, 2] to Python that does not parse: refuse it here
      if a.t == "slice" then fail("a slice cannot be part of a tuple index", tok.line) end
    end
    key = { t = "tuple", items = args, line = tok.line }
  end
  if key.t == "slice" then
    return { t = "slice", obj = node, start = key.start, stop = key.stop, step = key.step,
             line = tok.line }
  end
  return { t = "getitem", obj = node, key = key, line = tok.line }
end

function P:subscribed()
  local line = self:peek().line
  local args = {}
  if self:is("op", ":") then
    self:next()
    args[1] = false
  else
    local node = self:expression()
    if not self:is("op", ":") then return node end
    self:next()
    args[1] = node
  end
  if self:is("op", ":") then
    args[2] = false
  elseif not (self:is("op", "]") or self:is("op", ",")) then
    args[2] = self:expression()
  else
    args[2] = false
  end
  if self:skip("op", ":") then
    if not (self:is("op", "]") or self:is("op", ",")) then args[3] = self:expression() end
  end
  return { t = "slice", start = args[1] or nil, stop = args[2] or nil, step = args[3],
           line = line }
end

function P:call_args()
  local tok = self:expect("op", "(")
  local args, kwargs = {}, {}
  local dyn_args, dyn_kwargs
  local require_comma = false
  local function ensure(cond)
    if not cond then fail("invalid syntax for function call expression", tok.line) end
  end
  while not self:is("op", ")") do
    if require_comma then
      self:expect("op", ",")
      if self:is("op", ")") then break end
    end
    if self:is("op", "*") then
      ensure(dyn_args == nil and dyn_kwargs == nil)
      self:next()
      dyn_args = self:expression()
    elseif self:is("op", "**") then
      ensure(dyn_kwargs == nil)
      self:next()
      dyn_kwargs = self:expression()
    elseif self:is("name") and self:look().type == "op" and self:look().value == "=" then
      ensure(dyn_kwargs == nil)
      local key = self:next().value
      self:next()
      kwargs[#kwargs + 1] = { key = key, value = self:expression() }
    else
      ensure(dyn_args == nil and dyn_kwargs == nil and #kwargs == 0)
      args[#args + 1] = self:expression()
    end
    require_comma = true
  end
  self:expect("op", ")")
  return { args = args, kwargs = kwargs, dyn_args = dyn_args, dyn_kwargs = dyn_kwargs }
end

function P:call(node)
  local line = self:peek().line
  local c = self:call_args()
  c.t, c.fn, c.line = "call", node, line
  return c
end

function P:dotted_name()
  local name = self:expect("name").value
  while self:is("op", ".") do
    self:next()
    name = name .. "." .. self:expect("name").value
  end
  return name
end

function P:filter(node, start_inline)
  while self:is("op", "|") or start_inline do
    if not start_inline then self:next() end
    start_inline = false
    local tok = self:peek()
    local name = self:dotted_name()
    local c
    if self:is("op", "(") then c = self:call_args() else c = { args = {}, kwargs = {} } end
    c.t, c.name, c.node, c.line = "filter", name, node, tok.line
    node = c
  end
  return node
end

local TEST_ARG_START = { name = true, string = true, integer = true, float = true }

function P:test(node)
  local tok = self:next()
  local negated = false
  if self:is("name", "not") then self:next(); negated = true end
  local name = self:dotted_name()
  local c
  local nxt = self:peek()
  if nxt.type == "op" and nxt.value == "(" then
    c = self:call_args()
  elseif (TEST_ARG_START[nxt.type] or (nxt.type == "op" and (nxt.value == "["
          or nxt.value == "{")))
      and not (nxt.type == "name" and (nxt.value == "else" or nxt.value == "or"
               or nxt.value == "and")) then
    if nxt.type == "name" and nxt.value == "is" then
      fail("You cannot chain multiple tests with is", nxt.line)
    end
    local arg = self:postfix(self:primary())
    c = { args = { arg }, kwargs = {} }
  else
    c = { args = {}, kwargs = {} }
  end
  c.t, c.name, c.node, c.line = "test", name, node, tok.line
  if negated then return { t = "not", a = c, line = tok.line } end
  return c
end

-- Assignment targets ------------------------------------------------------

function P:assign_target(with_tuple, name_only, extra_end, with_namespace)
  local line = self:peek().line
  local target
  if with_namespace and self:look().type == "op" and self:look().value == "." then
    local ns = self:expect("name").value
    self:next()
    local attr = self:expect("name").value
    return { t = "nsref", name = ns, attr = attr, line = line }
  elseif name_only then
    return { t = "name", name = self:expect("name").value, line = line }
  end
  if with_tuple then
    target = self:tuple(true, false, true, extra_end)
  else
    target = self:primary()
  end
  local function check(n)
    if n.t == "name" then
      if n.name == "true" or n.name == "false" or n.name == "none" then
        fail("Can't assign to " .. n.name, line)
      end
      return
    elseif n.t == "tuple" then
      for _, it in ipairs(n.items) do check(it) end
      return
    end
    fail("can't assign to '" .. n.t .. "'", line)
  end
  if target.t == "const" or target.t == "none" then
    fail("can't assign to 'Const'", line)
  end
  check(target)
  return target
end

-- Statements --------------------------------------------------------------

local STATEMENTS = {}

function P:subparse(end_tokens)
  local body = {}
  if end_tokens then self.end_stack[#self.end_stack + 1] = end_tokens end
  local function done()
    if end_tokens then table.remove(self.end_stack) end
    return body
  end
  while true do
    local tok = self:peek()
    if tok.type == "data" then
      self:next()
      body[#body + 1] = { t = "data", value = tok.value, line = tok.line }
    elseif tok.type == "variable_begin" then
      self:next()
      local expr = self:tuple(nil, false, true)
      self:expect("variable_end")
      body[#body + 1] = { t = "output", expr = expr, line = tok.line }
    elseif tok.type == "block_begin" then
      self:next()
      local name = self:peek()
      if end_tokens and name.type == "name" then
        for _, e in ipairs(end_tokens) do
          if e == name.value then return done() end
        end
      end
      local stmt = self:statement()
      if stmt then
        if stmt[1] then
          for _, s in ipairs(stmt) do body[#body + 1] = s end
        else
          body[#body + 1] = stmt
        end
      end
      self:expect("block_end")
    elseif tok.type == "eof" then
      if end_tokens then self:fail_unknown_tag(nil, tok.line) end
      return done()
    else
      fail("unexpected token " .. describe(tok), tok.line)
    end
  end
end

function P:statement()
  local tok = self:peek()
  if tok.type ~= "name" then fail("tag name expected", tok.line) end
  local handler = STATEMENTS[tok.value]
  self.tag_stack[#self.tag_stack + 1] = tok.value
  local pop = true
  local ok, result = pcall(function()
    if handler then return handler(self, self:next()) end
    if tok.value == "call" then
      return self:call_block(self:next())
    elseif tok.value == "filter" then
      return self:filter_block(self:next())
    end
    table.remove(self.tag_stack)
    pop = false
    self:fail_unknown_tag(tok.value, tok.line)
  end)
  if pop then table.remove(self.tag_stack) end
  if not ok then error(result, 0) end
  return result
end

-- Parses a body up to one of `ends`; returns the body and the end tag's name.
function P:body_until(ends, drop)
  local body = self:subparse(ends)
  local name = self:next().value
  if drop then self:expect("block_end") end
  return body, name
end

STATEMENTS["for"] = function(self, tok)
  local target = self:assign_target(true, false, { ["in"] = true })
  self:expect("name", "in")
  local iter = self:tuple(nil, false, false, { recursive = true })
  local test
  if self:skip("name", "if") then test = self:expression() end
  local recursive = self:skip("name", "recursive") ~= nil
  self:expect("block_end")
  local body, ending = self:body_until({ "endfor", "else" })
  local else_
  if ending == "else" then
    self:expect("block_end")
    else_ = self:body_until({ "endfor" })
  end
  return { t = "for", target = target, iter = iter, test = test, recursive = recursive,
           body = body, else_ = else_, line = tok.line }
end

STATEMENTS["if"] = function(self, tok)
  local node = { t = "if", test = self:tuple(nil, false, true), line = tok.line }
  local result = node
  while true do
    self:expect("block_end")
    local body, ending = self:body_until({ "elif", "else", "endif" })
    node.body = body
    if ending == "elif" then
      local sub = { t = "if", test = self:tuple(nil, false, true), line = self:peek().line }
      node.else_ = { sub }
      node = sub
    elseif ending == "else" then
      self:expect("block_end")
      node.else_ = self:body_until({ "endif" })
      break
    else
      break
    end
  end
  return result
end

STATEMENTS["set"] = function(self, tok)
  local target = self:assign_target(true, false, nil, true)
  if self:skip("op", "=") then
    return { t = "assign", target = target, expr = self:tuple(), line = tok.line }
  end
  local filter
  if self:is("op", "|") then filter = self:filter(nil) end
  self:expect("block_end")
  local body = self:body_until({ "endset" })
  return { t = "assign_block", target = target, filter = filter, body = body,
           line = tok.line }
end

-- {% autoescape EXPR %}: Jinja's scoped switch of HTML escaping (Salt's
-- own setting is off).
STATEMENTS["autoescape"] = function(self, tok)
  local expr = self:expression()
  self:expect("block_end")
  local body = self:body_until({ "endautoescape" })
  return { t = "autoescape", expr = expr, body = body, line = tok.line }
end

STATEMENTS["with"] = function(self, tok)
  local targets, values = {}, {}
  while not self:is("block_end") do
    if #targets > 0 then self:expect("op", ",") end
    targets[#targets + 1] = self:assign_target()
    self:expect("op", "=")
    values[#values + 1] = self:expression()
  end
  self:expect("block_end")
  local body = self:body_until({ "endwith" })
  return { t = "with", targets = targets, values = values, body = body, line = tok.line }
end

STATEMENTS["block"] = function(self, tok)
  local name = self:expect("name").value
  local scoped = self:skip("name", "scoped") ~= nil
  local required = self:skip("name", "required") ~= nil
  if self:is("op", "-") then
    fail("Use an underscore instead", self:peek().line)
  end
  self:expect("block_end")
  local body = self:body_until({ "endblock" })
  if self:is("name") then
    local n = self:next().value
    if n ~= name then
      fail("mismatching end block name: expected " .. name .. ", got " .. n, tok.line)
    end
  end
  if self.blocks[name] then
    fail("block '" .. name .. "' defined twice", tok.line)
  end
  local node = { t = "block", name = name, scoped = scoped, required = required,
                 body = body, line = tok.line }
  self.blocks[name] = node
  return node
end

STATEMENTS["extends"] = function(self, tok)
  return { t = "extends", template = self:expression(), line = tok.line }
end

function P:import_context(default)
  if self:is("name", "with") or self:is("name", "without") then
    local la = self:look()
    if la.type == "name" and la.value == "context" then
      local with = self:next().value == "with"
      self:next()
      return with
    end
  end
  return default
end

STATEMENTS["include"] = function(self, tok)
  local node = { t = "include", template = self:expression(), line = tok.line }
  if self:is("name", "ignore") and self:look().type == "name"
      and self:look().value == "missing" then
    node.ignore_missing = true
    self.pos = self.pos + 2
  end
  node.with_context = self:import_context(true)
  return node
end

STATEMENTS["import"] = function(self, tok)
  local node = { t = "import", template = self:expression(), line = tok.line }
  self:expect("name", "as")
  node.target = self:assign_target(false, true).name
  node.with_context = self:import_context(false)
  return node
end

STATEMENTS["from"] = function(self, tok)
  local node = { t = "from_import", template = self:expression(), names = {},
                 line = tok.line }
  self:expect("name", "import")
  node.with_context = false
  while true do
    if #node.names > 0 then self:expect("op", ",") end
    if self:is("name") then
      local la = self:look()
      if (self:peek().value == "with" or self:peek().value == "without")
          and la.type == "name" and la.value == "context" then
        node.with_context = self:next().value == "with"
        self:next()
        break
      end
      local name = self:next().value
      if name:sub(1, 1) == "_" then
        fail("names starting with an underline can not be imported", self:peek().line)
      end
      local alias = name
      if self:skip("name", "as") then alias = self:expect("name").value end
      node.names[#node.names + 1] = { name = name, alias = alias }
      if not self:is("op", ",") then
        node.with_context = self:import_context(false)
        break
      end
    else
      self:expect("name")
    end
  end
  return node
end

function P:signature(node)
  node.args, node.defaults = {}, {}
  self:expect("op", "(")
  while not self:is("op", ")") do
    if #node.args > 0 then self:expect("op", ",") end
    local arg = self:assign_target(false, true)
    if self:skip("op", "=") then
      node.defaults[#node.args + 1] = self:expression()
    elseif next(node.defaults) then
      fail("non-default argument follows default argument", arg.line)
    end
    node.args[#node.args + 1] = arg.name
  end
  self:expect("op", ")")
end

STATEMENTS["macro"] = function(self, tok)
  local node = { t = "macro", name = self:expect("name").value, line = tok.line }
  self:signature(node)
  self:expect("block_end")
  node.body = self:body_until({ "endmacro" })
  self:skip("name", node.name)
  return node
end

function P:call_block(tok)
  local node = { t = "call_block", line = tok.line }
  if self:is("op", "(") then self:signature(node) else node.args, node.defaults = {}, {} end
  local call = self:expression()
  if call.t ~= "call" then fail("expected call", tok.line) end
  node.call = call
  self:expect("block_end")
  node.body = self:body_until({ "endcall" })
  return node
end

function P:filter_block(tok)
  local filter = self:filter(nil, true)
  self:expect("block_end")
  local body = self:body_until({ "endfilter" })
  return { t = "filter_block", filter = filter, body = body, line = tok.line }
end

STATEMENTS["do"] = function(self, tok)
  return { t = "do", expr = self:tuple(), line = tok.line }
end

STATEMENTS["break"] = function(self, tok)
  return { t = "break", line = tok.line }
end

STATEMENTS["continue"] = function(self, tok)
  return { t = "continue", line = tok.line }
end

-- Salt's SerializerExtension tags.
for _, fmt in ipairs({ "yaml", "json", "text" }) do
  STATEMENTS["load_" .. fmt] = function(self, tok)
    self:expect("name", "as")
    local target = self:expect("name").value
    self:expect("block_end")
    local body = self:body_until({ "endload" })
    return { t = "load", format = fmt, target = target, body = body, line = tok.line }
  end
  STATEMENTS["import_" .. fmt] = function(self, tok)
    local template = self:expression()
    self:expect("name", "as")
    local target = self:expect("name").value
    local with_context = self:import_context(false)
    return { t = "import_load", format = fmt, template = template, target = target,
             with_context = with_context, line = tok.line }
  end
end

--- Parses template source into a tree.
---@param source string
---@return table node {t="template", body=, blocks=}
function M.parse(source)
  local self = setmetatable({ tokens = lexer.tokenize(source), pos = 1, end_stack = {},
                              tag_stack = {}, blocks = {} }, P)
  local body = self:subparse(nil)
  return { t = "template", body = body, blocks = self.blocks }
end

return M
