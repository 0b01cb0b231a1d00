-- The Jinja runtime: the helper table R that compiled templates call, and the
-- machinery behind it. It owns variable frames (scopes), the loop object,
-- macros and `caller`, include / import / extends / block / super, Salt's
-- serializer tags, the guards against runaway recursion and output, and
-- the link from a Lua error back to the template line that caused it.
-- Python value semantics come from renderers.jinja.pyval; filters, tests and
-- globals from the environment (renderers.jinja.init).
local data = require "brine.data"
local pyval = require "renderers.jinja.pyval"

local M = {}

local null = data.null
local is_undefined = pyval.is_undefined
local rawequal = rawequal
local undefined = pyval.undefined
local raise = pyval.raise
local concat = table.concat
-- The metatable as it is: no value here protects its metatable with
-- __metatable, and the plain getmetatable pays a lookup of that field on
-- every call of the hottest checks.
local getmetatable = debug.getmetatable

M.MAX_DEPTH = 200          -- nested macro calls, includes and imports
M.MAX_OUTPUT = 64 * 1048576 -- bytes of output from one render
M.MAX_ITERATIONS = 10000000 -- loop iterations and macro calls in one render

local R = { NULL = null, MININT = math.mininteger, type = type, math_type = math.type,
            SMALL_INTS = pyval.SMALL_INTS, rawget = rawget }
M.R = R

-- Frames -------------------------------------------------------------------

-- A frame is a table of variables whose metatable reads through to the
-- parent frame. Metatables are shared per parent.
local frame_mts = setmetatable({}, { __mode = "k" })

-- The metatable of frames over parent.
local function frame_mt(parent)
  local mt = frame_mts[parent]
  if not mt then
    mt = { __index = parent }
    frame_mts[parent] = mt
  end
  return mt
end

local function frame(parent)
  return setmetatable({}, frame_mt(parent))
end
R.frame = frame
M.frame = frame

function R.lookup(f, name)
  local v = f[name]
  if v == nil then return undefined(name) end
  return v
end

local self_reference -- defined with the template contexts below

function R.lookup_self(f, ctx)
  local v = f.self
  if v ~= nil then return v end
  return ctx.self_ref or self_reference(ctx)
end

-- A loop's local `v` when it is set, else `outer` (the name's value in
-- the scopes around; see the compiler's read_name).
function R.pick(v, outer)
  if v == nil then return outer end
  return v
end

function R.set(f, name, v)
  rawset(f, name, v)
end


-- Changes to data ---------------------------------------------------------

-- A count of the moments data may have changed during renders: any call of
-- a method or of a host function, a filter or test that is not a known
-- builtin, a namespace attribute set. Two reads of the same table with the
-- same count in between saw the same contents, which lets `| json` reuse
-- its text (jinja2 has the same hooks: it calls out to Python there).
local changes = { n = 0 }
M.changes = changes

-- Functions known not to change any data (the builtin globals of each
-- environment): calling them leaves the count alone.
local harmless = setmetatable({}, { __mode = "k" })
M.harmless = harmless

-- Builtin filters that change no data, call no code of the caller's and
-- give the same result for the same input: calling them leaves the count
-- alone, and the compiler may fold them on constant input.
M.PURE_FILTERS = {}
for name in ([[abs batch capitalize center count d default dictsort e escape first float
  forceescape format indent int items join json last length list lower max min replace
  reverse round safe slice sort string sum title tojson trim truncate unique upper wordcount
  wordwrap yaml]]):gmatch("%S+") do
  M.PURE_FILTERS[name] = true
end
local PURE_FILTERS = M.PURE_FILTERS

-- Filters whose text is kept per render for the last table they encoded.
local MEMO_FILTERS = { json = true, tojson = true }

function R.ns_set(ns, name, v)
  changes.n = changes.n + 1
  pyval.setattr(ns, name, v)
end

-- Values -------------------------------------------------------------------

-- An integer literal too big for 64 bits.
function R.bigint(digits, base) return pyval.int_from_digits(digits:lower(), base) end

function R.list(t) return data.array(t) end
function R.tuple(t) return data.tuple(t) end

function R.dict(pairs_list)
  local m = data.map()
  for _, kv in ipairs(pairs_list) do
    local k = kv[1]
    if is_undefined(k) then pyval.str(k) end
    if type(k) == "table" and pyval.kind(k) ~= "tuple" then
      raise("TypeError", "unhashable type: '" .. pyval.type_name(k) .. "'")
    end
    if k == true then k = 1 elseif k == false then k = 0 end
    if math.type(k) == "float" and k == math.floor(k) and k == k then
      local i = math.tointeger(k)
      if m[i] ~= nil then k = i end
    end
    m[k] = kv[2]
  end
  return m
end

local function too_big()
  raise("TemplateRuntimeError", "output exceeds " .. M.MAX_OUTPUT .. " bytes")
end

-- A printed value inside {% autoescape %}: HTML-escaped when escaping is
-- on, unless it is Markup already.
function R.autoescape(on, v)
  if on then return R.str(pyval.escape(v)) end
  return R.str(v)
end

local format, mtype = string.format, math.type
local MARKUP_MT = getmetatable(pyval.markup(""))

-- pyval.str, with the two values printed most (integers and the Markup
-- that filters such as |json return) taken first.
function R.str(v)
  local t = type(v)
  if t ~= "string" then
    if t == "number" and mtype(v) == "integer" then
      v = tostring(v)
    elseif getmetatable(v) == MARKUP_MT then
      v = v.s
    else
      v = pyval.str(v)
    end
  end
  if #v > M.MAX_OUTPUT then too_big() end
  return v
end

-- Joins a loop's output pieces into one, so a long loop holds few pieces,
-- and stops a render whose output grows past the limit. The slots above 1
-- are left as they are: the next pieces overwrite them, and only o[1..n]
-- is ever read.
-- Output buffers: every compiled function and capture writes its pieces
-- into a table `o` from R.buffer and ends with R.join. Small ones are kept
-- for the next as they are (a render makes and frees few tables for its
-- text); the pool holds them weakly, so what their slots still hold is
-- freed by the next collection as if they were garbage. One that was
-- compacted or held many pieces is not kept, so that the kept ones stay
-- small.
local POOL_MAX, POOLED_PIECES = 16, 128
local pool, pooled = setmetatable({}, { __mode = "v" }), 0
local compacted = setmetatable({}, { __mode = "k" })

function R.buffer()
  while pooled > 0 do
    local o = pool[pooled]
    pool[pooled] = nil
    pooled = pooled - 1
    if o then return o end
  end
  return {}
end

function R.join(o, n)
  local s = concat(o, "", 1, n)
  if n <= POOLED_PIECES and pooled < POOL_MAX and not compacted[o] then
    pooled = pooled + 1
    pool[pooled] = o
  end
  return s
end

function R.compact(S, o, n)
  local s = concat(o, "", 1, n)
  o[1] = s
  compacted[o] = true
  if #s > M.MAX_OUTPUT then too_big() end
  return 1
end

function R.truthy(v)
  local t = type(v)
  if t == "boolean" then return v end
  return pyval.truthy(v)
end


-- `'%02d' % x` with a literal format of one %d conversion (the compiler
-- checks): string.format for an integer, the usual case; Python's rules
-- for anything else.
function R.percent_int(fmt, v)
  if mtype(v) == "integer" then return format(fmt, v) end
  return pyval.mod(fmt, v)
end

-- `'%02d-%02d' % (a, b)`: a simple format given a tuple literal of as many
-- values, formatted without building the tuple while they are integers.
function R.percent_ints(fmt, a, b, c)
  if mtype(a) == "integer" and mtype(b) == "integer" and (c == nil or mtype(c) == "integer") then
    return format(fmt, a, b, c)
  end
  return pyval.mod(fmt, pyval.tuple({ a, b, c }))
end

R.op = {
  add = pyval.add, sub = pyval.sub, mul = pyval.mul, truediv = pyval.truediv,
  floordiv = pyval.floordiv, mod = pyval.mod, pow = pyval.pow, neg = pyval.neg,
  pos = pyval.pos,
}

-- `a ~ b ~ c`: items is the fresh list the compiled code builds, so its
-- pieces become strings in place.
function R.concat(items)
  local n = 0
  for i, v in ipairs(items) do
    if type(v) ~= "string" then items[i] = R.str(v) elseif #v > M.MAX_OUTPUT then too_big() end
    n = i
  end
  return concat(items, "", 1, n)
end

-- Compiled `and`, `or` and conditional expressions stand a false value in
-- for FALSE while Lua's own and/or must not skip it (see the compiler).
local FALSE = setmetatable({}, { __name = "brine.false" })

function R.box(v)
  if v == false then return FALSE end
  return v
end

function R.unbox(v)
  if v == FALSE then return false end
  return v
end

-- `a and b`: a (boxed) when it is false in Python's sense, else nil.
function R.and_left(a)
  if a == false then return FALSE end
  if a == true or pyval.truthy(a) then return nil end
  return a
end

-- `a or b`: a when it is true in Python's sense, else nil.
function R.or_left(a)
  if a == true or (a ~= false and pyval.truthy(a)) then return a end
  return nil
end

-- Jinja's inline `a if b` without else yields a plain (not strict)
-- Undefined, which prints as nothing (pyval.PLAIN_UNDEFINED).
function R.undefined_cond()
  return pyval.PLAIN_UNDEFINED
end

local CMP_OPS = { lt = "lt", lteq = "le", gt = "gt", gteq = "ge", eq = "eq", ne = "ne" }

local function cmp(op, a, b)
  local ta, tb = type(a), type(b)
  -- two strings, or two numbers that are not NaN: Lua's operators are Python's
  if (ta == "string" and tb == "string")
      or (ta == "number" and tb == "number" and a == a and b == b) then
    if op == "eq" then return a == b end
    if op == "ne" then return a ~= b end
    if op == "lt" then return a < b end
    if op == "lteq" then return a <= b end
    if op == "gt" then return a > b end
    if op == "gteq" then return a >= b end
  end
  if op == "in" then return pyval.contains(b, a) end
  if op == "notin" then return not pyval.contains(b, a) end
  return pyval.cmp_op(CMP_OPS[op], a, b)
end
R.cmp = cmp

-- a op1 b op2 c ...: each operand but the first is a thunk, evaluated only
-- while the chain holds, as in Python.
function R.compare_chain(first, ...)
  local args = table.pack(...)
  local left = first
  for i = 1, args.n, 2 do
    local right = args[i + 1]()
    if not cmp(args[i], left, right) then return false end
    left = right
  end
  return true
end

local MACRO_MT = { __name = "brine.macro" }
local MACRO_ATTRS

-- Python's dict methods: for these names `d.name` is the method, not the key.
local DICT_METHODS = { clear = true, copy = true, fromkeys = true, get = true, items = true,
  keys = true, pop = true, popitem = true, setdefault = true, update = true, values = true }
M.DICT_METHODS = DICT_METHODS

function R.getattr(obj, name)
  local mt = getmetatable(obj)
  -- Fast path: a dict key that is not a method name (the common `pillar.x`).
  if mt and mt.__name == "brine.map" and not DICT_METHODS[name] then
    local v = rawget(obj, name)
    if v ~= nil and name:byte(1) ~= 95 then return v end
  end
  if mt == MACRO_MT then
    local a = MACRO_ATTRS[name]
    if a then return a(obj) end
    pyval.sandbox_check(name, obj)
    return undefined(name, "'Macro' object has no attribute '" .. name .. "'")
  end
  return pyval.getattr(obj, name)
end

-- `obj.name` with a literal name that is no dict method and does not start
-- with "_" (the compiler checks): for a dict holding the key, the value,
-- read without a call (a map's metatable has no __index); anything else
-- the general way.
function R.getattr_key(obj, name)
  local mt = getmetatable(obj)
  if mt and mt.__name == "brine.map" then
    local v = obj[name]
    if v ~= nil then return v end
  end
  return R.getattr(obj, name)
end

function R.getitem(obj, key)
  local tk = type(key)
  if tk == "string" or math.type(key) == "integer" then
    local mt = getmetatable(obj)
    if mt and mt.__name == "brine.map" then
      local v = rawget(obj, key)
      if v ~= nil then return v end
    end
  end
  if is_undefined(key) then pyval.str(key) end
  if type(key) == "string" and pyval.is_unsafe(key) and pyval.kind(obj) ~= "dict" then
    return pyval.getattr(obj, key)
  end
  return pyval.getitem(obj, key)
end

function R.slice(obj, a, b, c)
  return pyval.slice(obj, a, b, c)
end

local ARRAY_MT, TUPLE_MT = getmetatable(data.array({})), getmetatable(data.tuple({}))

-- The items of a loop with a filter, copied (the filter runs over all of
-- them before the loop), and their count, also kept as items.n.
function R.iter(v)
  local items = pyval.iter(v)
  local count = #items
  items.n = count
  return items, count
end

-- The items of a loop without a filter and their count. A list or tuple
-- is read in place, as Python's iterator reads it: the compiled loop stops
-- at the first missing item, so a list made shorter during the loop ends
-- it (a loop object's length stays the count at the start).
function R.items(v)
  local mt = getmetatable(v)
  if mt == ARRAY_MT or mt == TUPLE_MT then return v, #v end
  local items = pyval.iter(v)
  return items, #items
end

-- Unpacking a loop target or `set a, b = ...`: a list or tuple is read
-- in place (nothing is written to it).
function R.unpack(v, n)
  local mt = getmetatable(v)
  local items = (mt == ARRAY_MT or mt == TUPLE_MT) and v or pyval.iter(v)
  if #items ~= n then
    if #items > n then
      raise("ValueError", "too many values to unpack (expected " .. n .. ")")
    end
    raise("ValueError", "not enough values to unpack (expected " .. n .. ", got "
      .. #items .. ")")
  end
  return items
end

function R.filter_items(items, keep)
  local out, n = {}, 0
  for i = 1, items.n do
    if keep(items[i]) then
      n = n + 1
      out[n] = items[i]
    end
  end
  out.n = n
  return out, n
end

-- Calls ----------------------------------------------------------------------

local korders = setmetatable({}, { __mode = "k" })

-- Builds a kwargs table; `order` keeps the call's order for macros' kwargs.
function R.kwargs(t, order, extra)
  if extra ~= nil then
    if is_undefined(extra) then pyval.str(extra) end
    if pyval.kind(extra) ~= "dict" then
      raise("TypeError", "argument after ** must be a mapping, not "
        .. pyval.type_name(extra))
    end
    for _, k in ipairs(pyval.keys(extra)) do
      if t[k] == nil then order[#order + 1] = k end
      t[k] = extra[k]
    end
  end
  korders[t] = order
  return t
end

R.NOKW = pyval.NO_KWARGS or setmetatable({}, { __newindex = function() error("read-only") end })
R.NOARGS = setmetatable({ n = 0 }, { __newindex = function() error("read-only") end })
local NOKW, NOARGS = R.NOKW, R.NOARGS

function R.extend_args(args, extra)
  for _, v in ipairs(pyval.iter(extra)) do
    args.n = args.n + 1
    args[args.n] = v
  end
  return args
end

function R.with_caller(kwargs, m)
  if kwargs == R.NOKW then kwargs = {} end
  kwargs.caller = m
  return kwargs
end

-- A call. A recursive loop's object (`loop(children)`) renders the loop
-- body again, one level deeper (L.rec, see R.loop).
local macro_call -- defined with the macros below

function R.call(S, fn, args, kwargs)
  if type(fn) == "table" then
    -- a macro, the usual callable table: straight to its body
    if getmetatable(fn) == MACRO_MT then return macro_call(fn, args, kwargs) end
    if is_undefined(fn) then pyval.str(fn) end
    if rawget(fn, "rec") and rawget(fn, "advance") then return fn.rec(args, kwargs) end
  end
  if not harmless[fn] then changes.n = changes.n + 1 end
  return pyval.call(fn, args, kwargs)
end

-- `obj.name(...)`: for a string, a list or a dict whose kind has a method
-- of that name, the method runs on obj directly, without the bound method
-- that R.getattr makes; anything else goes the general way.
local METHODS -- renderers.jinja.py_methods' tables, on the first method call
local is_range = pyval.is_range

function R.method(S, obj, name, args, kwargs)
  local t
  if type(obj) == "string" then
    METHODS = METHODS or require("renderers.jinja.py_methods").TABLES
    t = METHODS.str
  else
    local mt = getmetatable(obj)
    if mt == ARRAY_MT and not is_range(obj) then
      METHODS = METHODS or require("renderers.jinja.py_methods").TABLES
      t = METHODS.list
    elseif mt and mt.__name == "brine.map" then
      METHODS = METHODS or require("renderers.jinja.py_methods").TABLES
      t = METHODS.dict
    end
  end
  local f = t and t[name]
  if f and name:byte(1) ~= 95 then -- no method name starts with _, the sandbox's rule
    changes.n = changes.n + 1
    local r = f(obj, args, kwargs)
    if r == nil then return null end
    return r
  end
  return R.call(S, R.getattr(obj, name), args, kwargs)
end

local function check_undefined_args(value, args, kwargs)
  if is_undefined(value) then pyval.str(value) end
  for i = 1, args.n do
    if is_undefined(args[i]) then pyval.str(args[i]) end
  end
  for _, v in pairs(kwargs) do
    if is_undefined(v) then pyval.str(v) end
  end
end

function R.filter(S, name, value, args, kwargs)
  if S.memo_name == name and rawequal(S.memo_value, value) and S.memo_changes == changes.n
      and args == NOARGS and kwargs == NOKW then
    return pyval.markup(S.memo_text) -- see R.memo_filter
  end
  local env = S.env
  local fn = env.filters[name]
  if not fn then raise("TemplateRuntimeError", "No filter named '" .. name .. "' found.") end
  if not env.accepts_undefined[name] then
    if args == NOARGS and kwargs == NOKW then -- `x | f`, the usual case
      if is_undefined(value) then pyval.str(value) end
    else
      check_undefined_args(value, args, kwargs)
    end
  end
  local own = rawget(env.filters, name)
  if own or not PURE_FILTERS[name] then changes.n = changes.n + 1 end
  if MEMO_FILTERS[name] and not own and args == NOARGS and kwargs == NOKW
      and type(value) == "table" then
    return R.memo_filter(S, fn, name, value)
  end
  local r = fn(env, value, args, kwargs)
  if r == nil then return null end
  return r
end

-- R.filter for a value printed: its text, or an integer (the output
-- buffer's table.concat prints integers as Python does).
function R.print_filter(S, name, value, args, kwargs)
  if S.memo_name == name and rawequal(S.memo_value, value) and S.memo_changes == changes.n
      and args == NOARGS and kwargs == NOKW then
    return S.memo_text -- see R.memo_filter
  end
  local v = R.filter(S, name, value, args, kwargs)
  if type(v) == "string" or mtype(v) == "integer" then return v end
  return R.str(v)
end

-- `value | json` again on the same table with no change since: the text of
-- the last call, in a Markup of its own (as each call gives).
function R.memo_filter(S, fn, name, value)
  if S.memo_name == name and rawequal(S.memo_value, value) and S.memo_changes == changes.n then
    return pyval.markup(S.memo_text)
  end
  local r = fn(S.env, value, NOARGS, NOKW)
  S.memo_value, S.memo_name, S.memo_changes, S.memo_text = value, name, changes.n, r.s
  return r
end

-- Jinja's tests that take the value alone: Python refuses an argument.
local ONE_ARG_TESTS = {}
for name in ([[defined undefined none boolean false true integer float number string mapping
  iterable sequence callable lower upper odd even escaped list filter test]]):gmatch("%S+") do
  ONE_ARG_TESTS[name] = true
end

function R.test(S, name, value, args, kwargs)
  local env = S.env
  local fn = env.tests[name]
  if not fn then raise("TemplateRuntimeError", "No test named '" .. name .. "' found.") end
  local nargs = args.n or #args
  if ONE_ARG_TESTS[name] and (nargs > 0 or next(kwargs)) then
    raise("TypeError", string.format("test_%s() takes 1 positional argument but %d were given",
      name, nargs + 1))
  end
  if not env.accepts_undefined[name] then check_undefined_args(value, args, kwargs) end
  if rawget(env.tests, name) then changes.n = changes.n + 1 end
  return fn(env, value, args, kwargs) and true or false
end

-- Depth guard shared by macros, includes and imports.
local function enter(S, what)
  S.depth = S.depth + 1
  if S.depth > M.MAX_DEPTH then
    raise("RecursionError", "maximum recursion depth exceeded in " .. what)
  end
end

local function leave(S)
  S.depth = S.depth - 1
end

-- Work guard: loop iterations and macro calls of one render add up, so
-- nested loops or a macro that calls itself twice cannot run for hours.
-- A macro call costs about as much as ten loop iterations.
local MACRO_STEPS = 10

local function count_steps(S, n)
  local steps = S.steps + n
  S.steps = steps
  if steps > M.MAX_ITERATIONS then
    raise("TemplateRuntimeError", "the template ran more than " .. M.MAX_ITERATIONS
      .. " loop iterations and macro calls")
  end
end

local function check_output(S, s)
  S.output = S.output + #s
  if S.output > M.MAX_OUTPUT then too_big() end
  return s
end

-- Macros -------------------------------------------------------------------

-- What a macro call needs of its macro that never changes: the set of
-- parameters with defaults and the name recursion errors use. Made on the
-- first call (the compiled code sets defaults_names after R.macro).
local function macro_fixed(m)
  local has_default = {}
  for _, d in ipairs(m.defaults_names or {}) do has_default[d] = true end
  m.has_default = has_default
  m.label = "macro '" .. m.name .. "'"
  return has_default
end

local NO_KEYS = {}

function macro_call(m, args, kwargs)
  local S = m.S
  -- the frame gets its metatable (reading through to the macro's scope)
  -- once its own names are in: until then reads and writes are raw
  local f = {}
  local names = m.args
  local nargs = args.n or #args
  if nargs > #names and not m.catch_varargs then
    raise("TypeError", "macro '" .. m.name .. "' takes not more than " .. #names
      .. " argument(s)")
  end
  local nnames = #names
  for i = 1, nargs < nnames and nargs or nnames do f[names[i]] = args[i] end
  local kw = m.catch_kwargs and data.map()
  local keys = NO_KEYS
  if next(kwargs) ~= nil then
    keys = korders[kwargs]
    if not keys then
      keys = {}
      for k in pairs(kwargs) do keys[#keys + 1] = k end
      table.sort(keys)
    end
  end
  local caller
  for ki = 1, #keys do
    local k = keys[ki]
    local v = kwargs[k]
    if k == "caller" and m.catch_caller then
      caller = v
    elseif m.index[k] then
      if m.index[k] <= nargs then
        raise("TypeError", "macro '" .. m.name .. "' got multiple values for argument '"
          .. k .. "'")
      end
      f[k] = v
    elseif m.catch_kwargs then
      kw[k] = v
    else
      raise("TypeError", "macro '" .. m.name .. "' takes no keyword argument '" .. k .. "'")
    end
  end
  local has_default = m.has_default or macro_fixed(m)
  for i = 1, nnames do
    local a = names[i]
    if f[a] == nil and not has_default[a] then
      f[a] = undefined(a, "parameter '" .. a .. "' was not provided")
    end
  end
  if m.catch_varargs then
    local extra = {}
    for i = #names + 1, nargs do extra[#extra + 1] = args[i] end
    f.varargs = data.tuple(extra)
  end
  if m.catch_kwargs then f.kwargs = kw end
  if m.catch_caller then
    f.caller = caller or undefined("caller", "No caller defined")
  end
  setmetatable(f, frame_mt(m.frame))
  enter(S, m.label)
  count_steps(S, MACRO_STEPS)
  local out = m.body(S, f)
  leave(S)
  return check_output(S, out)
end

MACRO_MT.__call = macro_call

MACRO_ATTRS = {
  name = function(m) return m.name end,
  arguments = function(m) return data.tuple(m.args) end,
  catch_kwargs = function(m) return m.catch_kwargs end,
  catch_varargs = function(m) return m.catch_varargs end,
  caller = function(m) return m.catch_caller end,
}

function R.macro(S, name, args, varargs, kwargs, caller, f, body)
  local index = {}
  for i, a in ipairs(args) do index[a] = i end
  return setmetatable({ S = S, name = name, args = args, index = index,
    catch_varargs = varargs, catch_kwargs = kwargs, catch_caller = caller, frame = f,
    body = body }, MACRO_MT)
end

function M.is_macro(v) return getmetatable(v) == MACRO_MT end

-- Loops ------------------------------------------------------------------

local LOOP_METHODS = {}

function LOOP_METHODS.cycle(L)
  return function(args)
    if (args.n or #args) == 0 then raise("TypeError", "no items for cycling given") end
    return args[(L.index0 % (args.n or #args)) + 1]
  end
end

function LOOP_METHODS.changed(L)
  return function(args)
    local value = data.tuple({ table.unpack(args, 1, args.n or #args) })
    if L.last_changed ~= nil and pyval.eq(L.last_changed, value) then return false end
    L.last_changed = value
    return true
  end
end

local LOOP_ATTRS = {
  index = function(L) return L.index0 + 1 end,
  index0 = function(L) return L.index0 end,
  revindex = function(L) return L.n - L.index0 end,
  revindex0 = function(L) return L.n - L.index0 - 1 end,
  first = function(L) return L.index0 == 0 end,
  last = function(L) return L.index0 == L.n - 1 end,
  length = function(L) return L.n end,
  depth = function(L) return L.depth end,
  depth0 = function(L) return L.depth - 1 end,
  previtem = function(L)
    local v
    if L.index0 > 0 then v = L.items[L.index0] end
    if v == nil then return undefined("previtem", "there is no previous item") end
    return v
  end,
  nextitem = function(L)
    local v
    if L.index0 < L.n - 1 then v = L.items[L.index0 + 2] end
    if v == nil then return undefined("nextitem", "there is no next item") end
    return v
  end,
}

local function loop_get(L, name)
  local a = LOOP_ATTRS[name]
  if a then return a(L) end
  local m = LOOP_METHODS[name]
  if m then return m(L) end
  return nil
end

local function loop_advance(L, i)
  L.index0 = i - 1
end

-- A loop whose body does not name `loop`: only its iterations counted.
function R.count_loop(S, count)
  count_steps(S, count)
end

-- The loop object: its length is the count of items at the start.
function R.loop(S, items, count, depth, rec)
  count_steps(S, count)
  local L = pyval.object("LoopContext", loop_get, { items = items, n = count, index0 = -1,
    depth = depth, advance = loop_advance })
  if rec then
    -- `loop(children)` renders the loop body again, one level deeper.
    L.get = function(self, name)
      if name == "__call" then return nil end
      return loop_get(self, name)
    end
    L.rec = function(args)
      if (args.n or #args) ~= 1 then
        raise("TypeError", "loop() takes exactly one argument")
      end
      enter(S, "recursive loop")
      local out = rec(S, args[1], depth + 1)
      leave(S)
      return out
    end
  end
  L.str = function() return "<LoopContext " .. (L.index0 + 1) .. "/" .. L.n .. ">" end
  return L
end


-- Templates: include, import, extends, blocks ----------------------------

-- Resolves a template name value (string, list of names, or a loaded
-- template) to a compiled template, or raises TemplateNotFound.
local function resolve(S, name, ignore_missing)
  if is_undefined(name) then pyval.str(name) end
  local kind = pyval.kind(name)
  if kind == "list" or kind == "tuple" then
    for _, n in ipairs(name) do
      local t = S.env:get_template(S, R.str(n), true)
      if t then return t end
    end
    if ignore_missing then return nil end
    local names = {}
    for i, n in ipairs(name) do names[i] = R.str(n) end
    raise("TemplatesNotFound", "none of the templates given were found: "
      .. pyval.repr(data.array(names)))
  end
  if type(name) ~= "string" then name = R.str(name) end
  return S.env:get_template(S, name, ignore_missing)
end

-- Creates the context of one template render: its blocks and a self reference.
-- Its block table is the shared empty one until a template registers a
-- block (most templates have none).
local NO_BLOCKS = setmetatable({}, { __newindex = function() error("read-only") end })

local function new_context(S, f)
  return { blocks = NO_BLOCKS, S = S, frame = f }
end

-- The state of one render, which is also the context of its top template
-- (one table instead of two: its fields do not overlap) and the metatable
-- of its top frame (__index reads through to the environment's globals,
-- see M.render_globals).
function M.render_state(env)
  -- eight fields: the size of its hash part
  local S = { env = env, depth = 0, output = 0, steps = 0, __index = env.globals,
              blocks = NO_BLOCKS, S = false, frame = false }
  S.S = S
  return S
end

-- The template's `self`, made when a template first names it.
function self_reference(ctx)
  local ref = ctx.self_ref
  if not ref then
    ref = pyval.object("TemplateReference", function(_, name)
      if ctx.blocks[name] then
        return function() return R.render_block(ctx.S, ctx, name, 1, ctx.frame) end
      end
      return nil
    end)
    ctx.self_ref = ref
  end
  return ref
end

local function register_blocks(ctx, tpl)
  if next(tpl.blocks) == nil then return end
  if ctx.blocks == NO_BLOCKS then ctx.blocks = {} end
  for name, fn in pairs(tpl.blocks) do
    local list = ctx.blocks[name]
    if not list then
      list = {}
      ctx.blocks[name] = list
    end
    list[#list + 1] = { fn = fn, scoped = tpl.scoped and tpl.scoped[name],
      required = tpl.required and tpl.required[name] }
  end
end

-- Runs a template's root (and its parents') in frame f; `tail`, when
-- given, ends the output (written into the output buffer, not appended to
-- the finished text, which would copy it).
local function run(S, tpl, f, ctx, tail)
  if ctx then ctx.frame = f else ctx = new_context(S, f) end
  if tpl.uses then S.env:check_uses(tpl) end
  if next(tpl.blocks) ~= nil then register_blocks(ctx, tpl) end
  local out = tpl.root(S, ctx, f, tail)
  if ctx.parent then
    -- the child wrote its tail before learning it extends a parent
    if tail then out = out:sub(1, -#tail - 1) end
    while ctx.parent do
      local parent = ctx.parent
      ctx.parent = nil
      S.env:check_uses(parent)
      register_blocks(ctx, parent)
      out = out .. parent.root(S, ctx, f)
    end
    if tail then out = out .. tail end
  end
  return check_output(S, out)
end

-- The globals of one render: a frame over the environment's, made when a
-- render first needs its own (an include, import or extends records the
-- loaded template's tplfile and tpldir there, as Salt's loader does). The
-- top frame reads through the render state's __index, so it sees the new
-- frame from then on.
function M.render_globals(S)
  local g = S.globals
  if not g then
    g = frame(S.env.globals)
    S.globals, S.__index = g, g
  end
  return g
end

-- The frame a render starts in: the variables given (copied, the caller's
-- table is left alone) over the globals. `mt` is the metatable that reads
-- through to the globals (the render state serves, see Env:_render). The
-- copy is made in C, sized for the variables at once.
local copy_table = data.copy
function M.vars_frame(mt, vars)
  if vars == nil then return setmetatable({}, mt) end
  return copy_table(vars, mt)
end
M.run = run

function R.load_parent(S, ctx, name)
  return resolve(S, name, false)
end

function R.render_block(S, ctx, name, index, f)
  local list = ctx.blocks[name]
  local entry = list and list[index]
  if not entry then
    raise("TemplateRuntimeError", "no block named '" .. name .. "'")
  end
  if entry.required then
    -- a required block must be overridden by a template extending this one
    raise("TemplateRuntimeError", "Required block '" .. name .. "' not found")
  end
  local bf = frame(entry.scoped and f or ctx.frame)
  rawset(bf, "super", function()
    if not list[index + 1] then
      raise("TemplateRuntimeError", "no parent block named '" .. name .. "'.")
    end
    return R.render_block(S, ctx, name, index + 1, f)
  end)
  return entry.fn(S, ctx, bf)
end

-- Names a frame sets before it reads them (the compiler's first_stores):
-- Jinja gives the code of the template that runs in scopes nested in that
-- frame (loops, macros, call, filter and with blocks) no value for such a
-- name until the set runs, where the variables given and the globals would
-- otherwise show through. R.shadow puts an undefined value in their place,
-- which keeps what it hides for templates included or imported with
-- context: those read the variables given, as in Jinja.
local shadows = setmetatable({}, { __mode = "k" }) -- frame -> its names

-- The value a loop's local starts with when the body sets it before
-- reading it (the compiler's shadow_loop).
function R.missing(name)
  return undefined(name)
end

function R.shadow(f, names)
  for i = 1, #names do
    local name = names[i]
    local u = undefined(name)
    u.hidden = f[name]
    rawset(f, name, u)
  end
  shadows[f] = names
end

-- The values shadowed names hid, put in `inner` (a frame over f) for a
-- template included or imported with context.
local function unshadow(f, inner)
  local passed = {} -- the frames from f out: a name set in one hides the rest
  local fr = f
  while type(fr) == "table" do
    local names = shadows[fr]
    if names then
      for i = 1, #names do
        local name = names[i]
        local u = rawget(fr, name)
        local set_nearer = false
        for k = 1, #passed do
          if rawget(passed[k], name) ~= nil then set_nearer = true break end
        end
        if not set_nearer and is_undefined(u) and u.hidden ~= nil then
          rawset(inner, name, u.hidden)
        end
      end
    end
    passed[#passed + 1] = fr
    local mt = getmetatable(fr)
    fr = mt and rawget(mt, "__index")
  end
end

function R.include(S, ctx, f, name, with_context, ignore_missing)
  local tpl = resolve(S, name, ignore_missing)
  if not tpl then return "" end
  enter(S, "include")
  local parent = with_context and f or M.render_globals(S)
  local inner = frame(parent)
  if with_context and next(shadows) ~= nil then unshadow(f, inner) end
  local l = parent.loop
  if type(l) == "table" and rawget(l, "type_name") == "LoopContext" then
    -- Jinja gives an included template the includer's variables but not
    -- the `loop` of the for loop it sits in
    rawset(inner, "loop", undefined("loop"))
  end
  local out = run(S, tpl, inner)
  leave(S)
  return out
end

local MODULE_GET = function(mod, name)
  if name:sub(1, 1) == "_" then return nil end
  return mod.vars[name]
end

-- Renders a template as a module: its exported names and its output.
local function make_module(S, tpl, f, with_context)
  enter(S, "import")
  local outer = with_context and f or M.render_globals(S)
  if with_context and next(shadows) ~= nil then
    -- (a frame between, so that what unshadow puts there is not exported)
    local base = frame(f)
    unshadow(f, base)
    outer = base
  end
  local mf = frame(outer)
  local body = run(S, tpl, mf)
  leave(S)
  local vars = {}
  for k, v in pairs(mf) do vars[k] = v end
  local mod = pyval.object("TemplateModule", MODULE_GET, { vars = vars, body = body })
  mod.str = function(self) return self.body end
  return mod
end

function R.import(S, ctx, f, name, with_context)
  local tpl = resolve(S, name, false)
  if with_context then return make_module(S, tpl, f, true) end
  local modules = S.modules
  if not modules then -- made on the first import
    modules = {}
    S.modules = modules
  end
  local cached = modules[tpl]
  if not cached then
    cached = make_module(S, tpl, f, false)
    modules[tpl] = cached
  end
  return cached
end

function R.import_name(mod, name)
  local v = mod.vars[name]
  if v == nil then
    return undefined(name, "the template " .. pyval.repr(mod.tpl_name or "")
      .. " does not export the requested name " .. pyval.repr(name))
  end
  return v
end

-- Salt's serializer tags ---------------------------------------------------

function R.load_text(S, kind, text)
  return S.env:parse_serialized(kind, text)
end

function R.import_load(S, ctx, f, kind, name, with_context)
  local tpl = resolve(S, name, false)
  enter(S, "import")
  local text = run(S, tpl, frame(with_context and f or M.render_globals(S)))
  leave(S)
  return S.env:parse_serialized(kind, text)
end

-- Errors -------------------------------------------------------------------

-- Compiled chunks by chunk name, to map a Lua line to a template line.
local chunks = setmetatable({}, { __mode = "v" })
M.chunks = chunks

--- The message handler of a render: turns any error into a structured
--- error {class=, message=, name=, line=, trace={{name=, line=}...}}, the
--- trace listing template frames innermost first, read from the Lua stack.
function M.handler(e)
  local err
  if type(e) == "table" and e.class then
    err = { class = e.class, message = e.message, name = e.name, line = e.line }
  else
    -- a Lua error from a library (bad UTF-8 in a value, a C limit): its
    -- text without the Lua source position, which means nothing to a user
    local msg = tostring(e):gsub("^[^\n:]*%.lua:%d+: ", "")
    local class = "TemplateRuntimeError"
    if msg:find("UTF%-8") or msg:find("continuation byte") then
      class, msg = "UnicodeDecodeError", "a value is not valid UTF-8 text (" .. msg .. ")"
    end
    if msg:find("stack overflow", 1, true) then
      class, msg = "RecursionError", "maximum recursion depth exceeded"
    end
    err = { class = class, message = msg }
  end
  local trace = {}
  if err.name then trace[1] = { name = err.name, line = err.line } end
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    local tpl = chunks[info.source]
    if tpl and info.currentline and info.currentline > 0 then
      local line = tpl.lines[info.currentline]
      local last = trace[#trace]
      if not (last and last.tpl == tpl and last.line == line) then
        trace[#trace + 1] = { name = tpl.name, line = line, tpl = tpl }
      end
    end
    level = level + 1
  end
  -- Frames of the same template in a row (macro inside its own file) keep the innermost.
  local compact = {}
  for _, t in ipairs(trace) do
    local last = compact[#compact]
    if not (last and last.name == t.name and last.tpl == t.tpl) then
      compact[#compact + 1] = t
    end
  end
  err.trace = compact
  if compact[1] then
    err.name = err.name or compact[1].name
    err.line = err.line or compact[1].line
  end
  return err
end


-- Fast paths used by compiled code ---------------------------------------

-- A printed value that is not a string, as a piece of output: integers
-- 0-1023 as their text (SMALL_INTS), any other integer as it is (`..` and
-- the buffer's concat print it as Python does), the rest through R.str.
local SMALL_INTS = pyval.SMALL_INTS

function R.text(v)
  if mtype(v) == "integer" then return SMALL_INTS[v] or v end
  return R.str(v)
end

-- `'%02d' % x` and `'%02d-%02d' % (x, y)` with a literal format (see
-- R.percent_int): the texts of small integers are kept in memo (one table
-- per compiled template, keyed by format), so a loop that prints the same
-- few numbers formats each once. A float key reads the text of the equal
-- integer, which is what Python's %d gives for it too. A format keeps at
-- most MEMO_MAX texts.
local MEMO_MAX = 4096

local function memo_for(memo, fmt)
  local texts = memo[fmt]
  if not texts then
    texts = { n = 0 }
    memo[fmt] = texts
  end
  return texts
end

local function small_int(v)
  return mtype(v) == "integer" and v >= 0 and v < 1024
end

function R.percent_int_memo(memo, fmt, v)
  local texts = memo[fmt]
  local s = texts and texts[v]
  if s then return s end
  s = R.percent_int(fmt, v)
  texts = texts or memo_for(memo, fmt)
  if small_int(v) and texts.n < MEMO_MAX then
    texts[v], texts.n = s, texts.n + 1
  end
  return s
end

function R.percent_ints_memo(memo, fmt, a, b)
  local texts = memo[fmt]
  local row = texts and texts[a]
  local s = row and row[b]
  if s then return s end
  s = R.percent_ints(fmt, a, b)
  texts = texts or memo_for(memo, fmt)
  if small_int(a) and small_int(b) and texts.n < MEMO_MAX then
    row = texts[a] or {}
    texts[a], row[b], texts.n = row, s, texts.n + 1
  end
  return s
end

-- `x == k` and `x != k` with k a number literal (not NaN) or a string
-- literal. Lua's == never calls a metamethod between a table and a
-- number or string, and says equal only for a value Python calls equal
-- too; a number (or string) it calls unequal is unequal in Python. The
-- rest (True == 1, Markup, undefined) goes through R.cmp.
function R.eq_num(a, k)
  if a == k then return true end
  if mtype(a) then return false end
  return cmp("eq", a, k)
end

function R.ne_num(a, k)
  if a == k then return false end
  if mtype(a) then return true end
  return cmp("ne", a, k)
end

function R.eq_str(a, k)
  if a == k then return true end
  if type(a) == "string" then return false end
  return cmp("eq", a, k)
end

function R.ne_str(a, k)
  if a == k then return false end
  if type(a) == "string" then return true end
  return cmp("ne", a, k)
end

return M
