-- The Jinja parser: turns the lexer's tokens into a tree of nodes (plain
-- tables with a `t` field naming the node kind and a `line`). It follows
-- Jinja 3's grammar and precedence, and its error messages, so that a
-- template that Jinja rejects is rejected here with the same words. Salt's
-- serializer tags (load_yaml, import_yaml, ...) are part of the grammar.
--
-- The first render of a template pays for parsing, so the parser reads the
-- lexer's parallel token arrays through upvalues of this module (a parse
-- runs to its end without yielding, so one parse at a time uses them) and
-- builds no table per token.
local lexer = require "renderers.jinja.lexer"

local M = {}

-- The parse in progress: token k is types[k], values[k], lines[k]; pos is
-- the next token.
local types, values, lines, pos
-- Its end-tag lists (innermost last), open tag names and {% block %}s.
local end_stack, tag_stack, blocks
-- The token arrays every parse fills (kept from one parse to the next, so
-- that they are not grown again for each template).
local token_types, token_values, token_lines = {}, {}, {}

local function fail(message, line)
  error({ class = "TemplateSyntaxError", message = message, line = line }, 0)
end

local TYPE_NAMES = {
  variable_end = "end of print statement", block_end = "end of statement block",
  eof = "end of template", variable_begin = "begin of print statement",
  block_begin = "begin of statement block",
}

local VALUE_TYPES = { op = true, name = true, string = true, integer = true, float = true }

-- How an error message names token k.
local function describe(k)
  local ty = types[k]
  if VALUE_TYPES[ty] then return tostring(values[k]) end
  return TYPE_NAMES[ty] or ty
end

-- Whether the next token is of type ty (and has the value, when given).
local function is(ty, value)
  return types[pos] == ty and (value == nil or values[pos] == value)
end

-- Consumes the next token when it matches; says whether it did.
local function skip(ty, value)
  if types[pos] == ty and (value == nil or values[pos] == value) then
    pos = pos + 1
    return true
  end
  return false
end

-- Consumes the next token, which must match; returns its value.
local function expect(ty, value)
  local k = pos
  if types[k] == ty and (value == nil or values[k] == value) then
    pos = k + 1
    return values[k]
  end
  local want = value or TYPE_NAMES[ty] or ty
  if types[k] == "eof" then
    fail("unexpected end of template, expected '" .. want .. "'.", lines[k])
  end
  fail("expected token '" .. want .. "', got '" .. describe(k) .. "'", lines[k])
end

local function fail_unknown_tag(name, line)
  local msg
  if name then
    msg = "Encountered unknown tag '" .. name .. "'."
  else
    msg = "Unexpected end of template."
  end
  if #end_stack > 0 then
    local expected = {}
    for _, e in ipairs(end_stack[#end_stack]) do expected[#expected + 1] = "'" .. e .. "'" end
    msg = msg .. " Jinja was looking for the following tags: "
      .. table.concat(expected, " or ") .. "."
  end
  if #tag_stack > 0 then
    msg = msg .. " The innermost block that needs to be closed is '"
      .. tag_stack[#tag_stack] .. "'."
  end
  fail(msg, line)
end

-- Expressions ---------------------------------------------------------------

-- One function per precedence level, loosest first. Each level's node
-- takes the line of the level's first token. A level called with `first`
-- (an operand already parsed by unary, starting on `line`) continues from
-- it instead of parsing its first operand.
local condexpr, or_expr, and_expr, not_expr, compare, math1, concat, math2, pow
local unary, primary, postfix, filter_expr, tuple, subscript, subscribed, call_args
local call, filter, test, list, dict

-- Tokens after an operand that one of the levels above unary acts on.
local BINARY_OPS = { ["**"] = true, ["*"] = true, ["/"] = true, ["//"] = true, ["%"] = true,
  ["~"] = true, ["+"] = true, ["-"] = true, ["=="] = true, ["!="] = true, ["<"] = true,
  ["<="] = true, [">"] = true, [">="] = true }
local BINARY_NAMES = { ["in"] = true, ["not"] = true, ["and"] = true, ["or"] = true,
  ["if"] = true }
-- The operators after an operand that postfix or filter_expr act on.
local POSTFIX_OPS = { ["."] = true, ["["] = true, ["("] = true, ["|"] = true }

local function expression(with_condexpr)
  local k = pos
  if types[k] == "name" and values[k] == "not" then
    if with_condexpr == false then return or_expr() end
    return condexpr()
  end
  -- most expressions are one operand: parse it, and climb the levels only
  -- when an operator follows
  local first
  if types[k] == "op" then
    first = unary()
  else -- what unary does when there is no sign, without its call
    first = primary()
    local after = types[pos]
    if after == "op" then
      if POSTFIX_OPS[values[pos]] then first = filter_expr(postfix(first)) end
    elseif after == "name" then
      if values[pos] == "is" then first = filter_expr(first) end
    else
      return first
    end
  end
  local ty = types[pos]
  if ty == "op" then
    if not BINARY_OPS[values[pos]] then return first end
  elseif ty ~= "name" or not BINARY_NAMES[values[pos]] then
    return first
  end
  if with_condexpr == false then return or_expr(first, lines[k]) end
  return condexpr(first, lines[k])
end

function condexpr(first, line)
  line = line or lines[pos]
  local e1 = or_expr(first, line)
  while skip("name", "if") do
    local test_ = or_expr()
    local e3
    if skip("name", "else") then e3 = condexpr() end
    e1 = { t = "cond", test = test_, yes = e1, no = e3, line = line }
  end
  return e1
end

function or_expr(first, line)
  line = line or lines[pos]
  local left = and_expr(first, line)
  while skip("name", "or") do
    left = { t = "or", a = left, b = and_expr(), line = line }
  end
  return left
end

function and_expr(first, line)
  line = line or lines[pos]
  local left = not_expr(first, line)
  while skip("name", "and") do
    left = { t = "and", a = left, b = not_expr(), line = line }
  end
  return left
end

function not_expr(first, line)
  if not first and types[pos] == "name" and values[pos] == "not" then
    local l = lines[pos]
    pos = pos + 1
    return { t = "not", a = not_expr(), line = l }
  end
  return compare(first, line)
end

local CMP = { ["=="] = "eq", ["!="] = "ne", ["<"] = "lt", ["<="] = "lteq",
              [">"] = "gt", [">="] = "gteq" }

function compare(first, line)
  line = line or lines[pos]
  local expr = math1(first, line)
  local ops -- made at the first comparison: most operands have none
  while true do
    local ty, v = types[pos], values[pos]
    local op
    if ty == "op" and CMP[v] then
      pos = pos + 1
      op = CMP[v]
    elseif ty == "name" and v == "in" then
      pos = pos + 1
      op = "in"
    elseif ty == "name" and v == "not" and types[pos + 1] == "name"
        and values[pos + 1] == "in" then
      pos = pos + 2
      op = "notin"
    else
      break
    end
    ops = ops or {}
    ops[#ops + 1] = { op = op, expr = math1() }
  end
  if not ops then return expr end
  return { t = "compare", expr = expr, ops = ops, line = line }
end

function math1(first, line)
  line = line or lines[pos]
  local left = concat(first, line)
  while types[pos] == "op" and (values[pos] == "+" or values[pos] == "-") do
    local op = values[pos]
    pos = pos + 1
    left = { t = "bin", op = op == "+" and "add" or "sub", a = left, b = concat(),
             line = line }
  end
  return left
end

function concat(first, line)
  line = line or lines[pos]
  local left = math2(first, line)
  if not (types[pos] == "op" and values[pos] == "~") then return left end
  local args = { left }
  while skip("op", "~") do args[#args + 1] = math2() end
  return { t = "concat", items = args, line = line }
end

local MATH2 = { ["*"] = "mul", ["/"] = "truediv", ["//"] = "floordiv", ["%"] = "mod" }

function math2(first, line)
  line = line or lines[pos]
  local left = pow(first, line)
  while types[pos] == "op" and MATH2[values[pos]] do
    local op = MATH2[values[pos]]
    pos = pos + 1
    left = { t = "bin", op = op, a = left, b = pow(), line = line }
  end
  return left
end

function pow(first, line)
  line = line or lines[pos]
  local left = first or unary()
  while skip("op", "**") do
    left = { t = "bin", op = "pow", a = left, b = unary(), line = line }
  end
  return left
end

function unary(with_filter)
  local k = pos
  local node
  if types[k] == "op" and values[k] == "-" then
    pos = k + 1
    node = { t = "unary", op = "neg", a = unary(false), line = lines[k] }
  elseif types[k] == "op" and values[k] == "+" then
    pos = k + 1
    node = { t = "unary", op = "pos", a = unary(false), line = lines[k] }
  else
    node = primary()
    -- most operands are followed by none of `.`, `[`, `(`, `|` or `is`
    local ty = types[pos]
    if ty ~= "op" and ty ~= "name" then return node end
    node = postfix(node)
  end
  if with_filter ~= false then node = filter_expr(node) end
  return node
end

local CONSTS = { ["true"] = true, ["True"] = true, ["false"] = false, ["False"] = false }
-- The names that an expression does not read as a variable.
local KEYWORD_NAMES = { ["true"] = true, ["True"] = true, ["false"] = true, ["False"] = true,
  none = true, None = true, ["not"] = true }

function primary()
  local k = pos
  pos = k + 1
  local ty, v, line = types[k], values[k], lines[k]
  if ty == "name" then
    if CONSTS[v] ~= nil then
      return { t = "const", value = CONSTS[v], line = line }
    elseif v == "none" or v == "None" then
      return { t = "none", line = line }
    end
    return { t = "name", name = v, line = line }
  elseif ty == "string" then
    if types[pos] == "string" then -- adjacent literals are one string
      local parts = { v }
      while types[pos] == "string" do
        parts[#parts + 1] = values[pos]
        pos = pos + 1
      end
      v = table.concat(parts)
    end
    return { t = "const", value = v, line = line }
  elseif ty == "integer" or ty == "float" then
    return { t = "const", value = v, line = line }
  elseif ty == "op" and v == "(" then
    local node = tuple(nil, true)
    expect("op", ")")
    return node
  elseif ty == "op" and v == "[" then
    return list(line)
  elseif ty == "op" and v == "{" then
    return dict(line)
  end
  if ty == "eof" then fail("unexpected end of template", line) end
  fail("unexpected '" .. describe(k) .. "'", line)
end

function list(line)
  local items = {}
  while not is("op", "]") do
    if #items > 0 then expect("op", ",") end
    if is("op", "]") then break end
    items[#items + 1] = expression()
  end
  expect("op", "]")
  return { t = "list", items = items, line = line }
end

function dict(line)
  local items = {}
  while not is("op", "}") do
    if #items > 0 then expect("op", ",") end
    if is("op", "}") then break end
    local key = expression()
    expect("op", ":")
    items[#items + 1] = { key = key, value = expression() }
  end
  expect("op", "}")
  return { t = "dict", items = items, line = line }
end

-- The token types that end a tuple.
local TUPLE_END = { variable_end = true, block_end = true, eof = true }

-- Parses a comma separated tuple. `simplified` limits items to primaries
-- (for assignment targets); `extra_end` lists names that end the tuple.
-- One item and no comma is that item, not a tuple.
function tuple(simplified, explicit, with_condexpr, extra_end)
  local line = lines[pos]
  local items
  while true do
    local ty, v = types[pos], values[pos]
    if TUPLE_END[ty] or (ty == "op" and v == ")" and explicit)
        or (extra_end and ty == "name" and extra_end[v]) then
      break
    end
    local item
    if simplified then item = primary() else item = expression(with_condexpr) end
    if types[pos] ~= "op" or values[pos] ~= "," then
      if not items then return item end
      items[#items + 1] = item
      break
    end
    items = items or {}
    items[#items + 1] = item
    pos = pos + 1
  end
  items = items or {}
  if #items == 0 and not explicit then
    fail("Expected an expression, got '" .. describe(pos) .. "'", lines[pos])
  end
  return { t = "tuple", items = items, line = line }
end

function postfix(node)
  while true do
    local ty, v = types[pos], values[pos]
    if ty ~= "op" then return node end
    if v == "." or v == "[" then
      node = subscript(node)
    elseif v == "(" then
      node = call(node)
    else
      return node
    end
  end
end

function filter_expr(node)
  while true do
    local ty, v = types[pos], values[pos]
    if ty == "op" and v == "|" then
      node = filter(node)
    elseif ty == "name" and v == "is" then
      node = test(node)
    elseif ty == "op" and v == "(" then
      node = call(node)
    else
      return node
    end
  end
end

function subscript(node)
  local k = pos
  local line = lines[k]
  pos = k + 1
  if values[k] == "." then
    local a = pos
    pos = a + 1
    if types[a] == "name" then
      return { t = "getattr", obj = node, name = values[a], line = line }
    elseif types[a] == "integer" then
      return { t = "getitem", obj = node, key = { t = "const", value = values[a] },
               line = line }
    end
    fail("expected name or number", lines[a])
  end
  local args = {}
  while not is("op", "]") do
    if #args > 0 then expect("op", ",") end
    args[#args + 1] = subscribed()
  end
  expect("op", "]")
  local key
  if #args == 1 then key = args[1] else
    for _, a in ipairs(args) do
      -- Jinja compiles x[1:, 2] to Python that does not parse: refuse it here
      if a.t == "slice" then fail("a slice cannot be part of a tuple index", line) end
    end
    key = { t = "tuple", items = args, line = line }
  end
  if key.t == "slice" then
    return { t = "slice", obj = node, start = key.start, stop = key.stop, step = key.step,
             line = line }
  end
  return { t = "getitem", obj = node, key = key, line = line }
end

function subscribed()
  local line = lines[pos]
  local args = {}
  if is("op", ":") then
    pos = pos + 1
    args[1] = false
  else
    local node = expression()
    if not is("op", ":") then return node end
    pos = pos + 1
    args[1] = node
  end
  if is("op", ":") then
    args[2] = false
  elseif not (is("op", "]") or is("op", ",")) then
    args[2] = expression()
  else
    args[2] = false
  end
  if skip("op", ":") then
    if not (is("op", "]") or is("op", ",")) then args[3] = expression() end
  end
  return { t = "slice", start = args[1] or nil, stop = args[2] or nil, step = args[3],
           line = line }
end

local function fail_call(line)
  fail("invalid syntax for function call expression", line)
end

function call_args()
  local line = lines[pos]
  expect("op", "(")
  local args, kwargs = {}, {}
  local dyn_args, dyn_kwargs
  local require_comma = false
  while types[pos] ~= "op" or values[pos] ~= ")" do
    if require_comma then
      expect("op", ",")
      if is("op", ")") then break end
    end
    local ty, v = types[pos], values[pos]
    if ty == "op" and v == "*" then
      if dyn_args ~= nil or dyn_kwargs ~= nil then fail_call(line) end
      pos = pos + 1
      dyn_args = expression()
    elseif ty == "op" and v == "**" then
      if dyn_kwargs ~= nil then fail_call(line) end
      pos = pos + 1
      dyn_kwargs = expression()
    elseif ty == "name" and types[pos + 1] == "op" and values[pos + 1] == "=" then
      if dyn_kwargs ~= nil then fail_call(line) end
      pos = pos + 2
      kwargs[#kwargs + 1] = { key = v, value = expression() }
    else
      if dyn_args ~= nil or dyn_kwargs ~= nil or #kwargs > 0 then fail_call(line) end
      args[#args + 1] = expression()
    end
    require_comma = true
  end
  expect("op", ")")
  return { args = args, kwargs = kwargs, dyn_args = dyn_args, dyn_kwargs = dyn_kwargs }
end

function call(node)
  local line = lines[pos]
  local c = call_args()
  c.t, c.fn, c.line = "call", node, line
  return c
end

local function dotted_name()
  local name = expect("name")
  while is("op", ".") do
    pos = pos + 1
    name = name .. "." .. expect("name")
  end
  return name
end

function filter(node, start_inline)
  while (types[pos] == "op" and values[pos] == "|") or start_inline do
    if not start_inline then pos = pos + 1 end
    start_inline = false
    local line = lines[pos]
    local name = dotted_name()
    local c
    if types[pos] == "op" and values[pos] == "(" then
      c = call_args()
    else
      c = { args = {}, kwargs = {} }
    end
    c.t, c.name, c.node, c.line = "filter", name, node, line
    node = c
  end
  return node
end

local TEST_ARG_START = { name = true, string = true, integer = true, float = true }

function test(node)
  local line = lines[pos]
  pos = pos + 1
  local negated = skip("name", "not")
  local name = dotted_name()
  local c
  local nt, nv = types[pos], values[pos]
  if nt == "op" and nv == "(" then
    c = call_args()
  elseif (TEST_ARG_START[nt] or (nt == "op" and (nv == "[" or nv == "{")))
      and not (nt == "name" and (nv == "else" or nv == "or" or nv == "and")) then
    if nt == "name" and nv == "is" then
      fail("You cannot chain multiple tests with is", lines[pos])
    end
    local arg = postfix(primary())
    c = { args = { arg }, kwargs = {} }
  else
    c = { args = {}, kwargs = {} }
  end
  c.t, c.name, c.node, c.line = "test", name, node, line
  if negated then return { t = "not", a = c, line = line } end
  return c
end

-- Assignment targets ------------------------------------------------------

-- Refuses targets that are not names or tuples of them.
local function check_target(n, line)
  if n.t == "name" then
    if n.name == "true" or n.name == "false" or n.name == "none" then
      fail("Can't assign to " .. n.name, line)
    end
    return
  elseif n.t == "tuple" then
    for _, it in ipairs(n.items) do check_target(it, line) end
    return
  end
  fail("can't assign to '" .. n.t .. "'", line)
end

local function assign_target(with_tuple, name_only, extra_end, with_namespace)
  local line = lines[pos]
  local target
  if with_namespace and types[pos + 1] == "op" and values[pos + 1] == "." then
    local ns = expect("name")
    pos = pos + 1
    local attr = expect("name")
    return { t = "nsref", name = ns, attr = attr, line = line }
  elseif name_only then
    return { t = "name", name = expect("name"), line = line }
  end
  local v = values[pos]
  if types[pos] == "name" and not KEYWORD_NAMES[v] and not (extra_end and extra_end[v])
      and not (types[pos + 1] == "op" and values[pos + 1] == ",") then
    -- one name, the commonest target: the node tuple() or primary() would make
    pos = pos + 1
    return { t = "name", name = v, line = line }
  end
  if with_tuple then
    target = tuple(true, false, true, extra_end)
  else
    target = primary()
  end
  if target.t == "const" or target.t == "none" then
    fail("can't assign to 'Const'", line)
  end
  check_target(target, line)
  return target
end

-- Statements --------------------------------------------------------------

local STATEMENTS = {}
local statement
-- Parses template data, output and statements up to a `{% name %}` whose
-- name is in end_tokens (left unread, the parser on its name) or, without
-- end_tokens, up to the end of the template.
local function subparse(end_tokens)
  local body = {}
  if end_tokens then end_stack[#end_stack + 1] = end_tokens end
  while true do
    local k = pos
    local ty = types[k]
    if ty == "data" then
      pos = k + 1
      body[#body + 1] = { t = "data", value = values[k], line = lines[k] }
    elseif ty == "variable_begin" then
      local expr
      local v = values[k + 1]
      if types[k + 1] == "name" and types[k + 2] == "variable_end" and not KEYWORD_NAMES[v] then
        -- `{{ name }}`, the most common output: the node tuple() would make
        expr = { t = "name", name = v, line = lines[k + 1] }
        pos = k + 3
      else
        pos = k + 1
        expr = tuple(nil, false, true)
        if types[pos] == "variable_end" then pos = pos + 1 else expect("variable_end") end
      end
      body[#body + 1] = { t = "output", expr = expr, line = lines[k] }
    elseif ty == "block_begin" then
      pos = k + 1
      if end_tokens and types[pos] == "name" then
        local name = values[pos]
        for e = 1, #end_tokens do
          if end_tokens[e] == name then
            end_stack[#end_stack] = nil
            return body
          end
        end
      end
      local stmt = statement()
      if stmt then
        if stmt[1] then
          for _, s in ipairs(stmt) do body[#body + 1] = s end
        else
          body[#body + 1] = stmt
        end
      end
      if types[pos] == "block_end" then pos = pos + 1 else expect("block_end") end
    elseif ty == "eof" then
      if end_tokens then fail_unknown_tag(nil, lines[k]) end
      return body
    else
      fail("unexpected token " .. describe(k), lines[k])
    end
  end
end

-- Parses one statement; the parser is on its tag name.
function statement()
  local k = pos
  if types[k] ~= "name" then fail("tag name expected", lines[k]) end
  local name = values[k]
  local handler = STATEMENTS[name]
  if not handler then fail_unknown_tag(name, lines[k]) end
  tag_stack[#tag_stack + 1] = name
  pos = k + 1
  local node = handler(lines[k])
  tag_stack[#tag_stack] = nil
  return node
end

-- Parses a body up to one of `ends`; returns the body and the end tag's name.
local function body_until(ends)
  local body = subparse(ends)
  local name = values[pos]
  pos = pos + 1
  return body, name
end

-- The end tags each statement waits for (fixed lists, shared by every parse).
local FOR_ENDS, FOR_ELSE_ENDS = { "endfor", "else" }, { "endfor" }
local IF_ENDS, IF_ELSE_ENDS = { "elif", "else", "endif" }, { "endif" }
local FOR_EXTRA_END, FOR_ITER_END = { ["in"] = true }, { recursive = true }

STATEMENTS["for"] = function(line)
  local target = assign_target(true, false, FOR_EXTRA_END)
  expect("name", "in")
  local iter = tuple(nil, false, false, FOR_ITER_END)
  local test_
  if skip("name", "if") then test_ = expression() end
  local recursive = skip("name", "recursive")
  expect("block_end")
  local body, ending = body_until(FOR_ENDS)
  local else_
  if ending == "else" then
    expect("block_end")
    else_ = body_until(FOR_ELSE_ENDS)
  end
  return { t = "for", target = target, iter = iter, test = test_, recursive = recursive,
           body = body, else_ = else_, line = line }
end

STATEMENTS["if"] = function(line)
  local node = { t = "if", test = tuple(nil, false, true), line = line }
  local result = node
  while true do
    expect("block_end")
    local body, ending = body_until(IF_ENDS)
    node.body = body
    if ending == "elif" then
      local sub = { t = "if", test = tuple(nil, false, true), line = lines[pos] }
      node.else_ = { sub }
      node = sub
    elseif ending == "else" then
      expect("block_end")
      node.else_ = body_until(IF_ELSE_ENDS)
      break
    else
      break
    end
  end
  return result
end

STATEMENTS["set"] = function(line)
  local target = assign_target(true, false, nil, true)
  if skip("op", "=") then
    return { t = "assign", target = target, expr = tuple(), line = line }
  end
  local filter_
  if is("op", "|") then filter_ = filter(nil) end
  expect("block_end")
  local body = body_until({ "endset" })
  return { t = "assign_block", target = target, filter = filter_, body = body,
           line = line }
end

-- {% autoescape EXPR %}: Jinja's scoped switch of HTML escaping (Salt's
-- own setting is off).
STATEMENTS["autoescape"] = function(line)
  local expr = expression()
  expect("block_end")
  local body = body_until({ "endautoescape" })
  return { t = "autoescape", expr = expr, body = body, line = line }
end

STATEMENTS["with"] = function(line)
  local targets, values_ = {}, {}
  while not is("block_end") do
    if #targets > 0 then expect("op", ",") end
    targets[#targets + 1] = assign_target()
    expect("op", "=")
    values_[#values_ + 1] = expression()
  end
  expect("block_end")
  local body = body_until({ "endwith" })
  return { t = "with", targets = targets, values = values_, body = body, line = line }
end

STATEMENTS["block"] = function(line)
  local name = expect("name")
  local scoped = skip("name", "scoped")
  local required = skip("name", "required")
  if is("op", "-") then
    fail("Use an underscore instead", lines[pos])
  end
  expect("block_end")
  local body = body_until({ "endblock" })
  if is("name") then
    local n = values[pos]
    pos = pos + 1
    if n ~= name then
      fail("mismatching end block name: expected " .. name .. ", got " .. n, line)
    end
  end
  if blocks[name] then
    fail("block '" .. name .. "' defined twice", line)
  end
  local node = { t = "block", name = name, scoped = scoped, required = required,
                 body = body, line = line }
  blocks[name] = node
  return node
end

STATEMENTS["extends"] = function(line)
  return { t = "extends", template = expression(), line = line }
end

-- `with context` / `without context` after an import, or the default.
local function import_context(default)
  if is("name", "with") or is("name", "without") then
    if types[pos + 1] == "name" and values[pos + 1] == "context" then
      local with = values[pos] == "with"
      pos = pos + 2
      return with
    end
  end
  return default
end

STATEMENTS["include"] = function(line)
  local node = { t = "include", template = expression(), line = line }
  if is("name", "ignore") and types[pos + 1] == "name" and values[pos + 1] == "missing" then
    node.ignore_missing = true
    pos = pos + 2
  end
  node.with_context = import_context(true)
  return node
end

STATEMENTS["import"] = function(line)
  local node = { t = "import", template = expression(), line = line }
  expect("name", "as")
  node.target = assign_target(false, true).name
  node.with_context = import_context(false)
  return node
end

STATEMENTS["from"] = function(line)
  local node = { t = "from_import", template = expression(), names = {}, line = line }
  expect("name", "import")
  node.with_context = false
  while true do
    if #node.names > 0 then expect("op", ",") end
    if is("name") then
      if (values[pos] == "with" or values[pos] == "without")
          and types[pos + 1] == "name" and values[pos + 1] == "context" then
        node.with_context = values[pos] == "with"
        pos = pos + 2
        break
      end
      local name = values[pos]
      pos = pos + 1
      if name:sub(1, 1) == "_" then
        fail("names starting with an underline can not be imported", lines[pos])
      end
      local alias = name
      if skip("name", "as") then alias = expect("name") end
      node.names[#node.names + 1] = { name = name, alias = alias }
      if not is("op", ",") then
        node.with_context = import_context(false)
        break
      end
    else
      expect("name")
    end
  end
  return node
end

-- A macro's or call block's `(arg, arg=default, ...)`, into node.args and
-- node.defaults.
local function signature(node)
  node.args, node.defaults = {}, {}
  expect("op", "(")
  while not is("op", ")") do
    if #node.args > 0 then expect("op", ",") end
    local arg = assign_target(false, true)
    if skip("op", "=") then
      node.defaults[#node.args + 1] = expression()
    elseif next(node.defaults) then
      fail("non-default argument follows default argument", arg.line)
    end
    node.args[#node.args + 1] = arg.name
  end
  expect("op", ")")
end

STATEMENTS["macro"] = function(line)
  local node = { t = "macro", name = expect("name"), line = line }
  signature(node)
  expect("block_end")
  node.body = body_until({ "endmacro" })
  skip("name", node.name)
  return node
end

STATEMENTS["call"] = function(line)
  local node = { t = "call_block", line = line }
  if is("op", "(") then signature(node) else node.args, node.defaults = {}, {} end
  local call_ = expression()
  if call_.t ~= "call" then fail("expected call", line) end
  node.call = call_
  expect("block_end")
  node.body = body_until({ "endcall" })
  return node
end

STATEMENTS["filter"] = function(line)
  local filter_ = filter(nil, true)
  expect("block_end")
  local body = body_until({ "endfilter" })
  return { t = "filter_block", filter = filter_, body = body, line = line }
end

STATEMENTS["do"] = function(line)
  return { t = "do", expr = tuple(), line = line }
end

STATEMENTS["break"] = function(line)
  return { t = "break", line = line }
end

STATEMENTS["continue"] = function(line)
  return { t = "continue", line = line }
end

-- Salt's SerializerExtension tags.
for _, fmt in ipairs({ "yaml", "json", "text" }) do
  STATEMENTS["load_" .. fmt] = function(line)
    expect("name", "as")
    local target = expect("name")
    expect("block_end")
    local body = body_until({ "endload" })
    return { t = "load", format = fmt, target = target, body = body, line = line }
  end
  STATEMENTS["import_" .. fmt] = function(line)
    local template = expression()
    expect("name", "as")
    local target = expect("name")
    local with_context = import_context(false)
    return { t = "import_load", format = fmt, template = template, target = target,
             with_context = with_context, line = line }
  end
end

--- Parses template source into a tree.
---@param source string
---@return table node {t="template", body=, blocks=}
function M.parse(source)
  types, values, lines = token_types, token_values, token_lines
  lexer.scan_into(source, types, values, lines)
  pos, end_stack, tag_stack, blocks = 1, {}, {}, {}
  local ok, body = pcall(subparse, nil)
  local found = blocks
  -- let the token arrays go with the parse
  types, values, lines, end_stack, tag_stack, blocks = nil, nil, nil, nil, nil, nil
  if not ok then error(body, 0) end
  return { t = "template", body = body, blocks = found }
end

return M
