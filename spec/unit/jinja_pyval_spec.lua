-- The Python value model of the template engine: printing, truth,
-- comparison, arithmetic, formatting, methods, attribute access and the
-- sandbox. Expected strings come from the jinja conformance cases where one
-- covers the behaviour.
local data = require("brine.data")
local P = require("renderers.jinja.pyval")

local null = data.null
local L, T = P.list, P.tuple
local function map(...) return data.map({ ... }) end

-- Runs f and returns "Class: message" of the Python error it raises.
local function err(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "expected an error")
  assert(P.is_error(e), "expected a Python error, got " .. tostring(e))
  return e.class .. ": " .. e.message
end

local function method(obj, name, ...)
  return P.call(P.getattr(obj, name), table.pack(...))
end

describe("pyval repr and str", function()
  it("prints scalars as Python does", function()
    assert.equal("None", P.str(null))
    assert.equal("True", P.str(true))
    assert.equal("False", P.repr(false))
    assert.equal("42", P.str(42))
    assert.equal("it's", P.str("it's"))
  end)

  it("prints floats with Python's repr (print-float-forms)", function()
    local got = {}
    for _, x in ipairs({ 1.0, 100.0 / 3, 1e16, 1e-5, 2.5e10, 123456789.0 * 10 }) do
      got[#got + 1] = P.str(x)
    end
    assert.equal("1.0 33.333333333333336 1e+16 1e-05 25000000000.0 1234567890.0",
      table.concat(got, " "))
    assert.equal("0.1", P.repr(0.1))
    assert.equal("1000000000000000.0", P.repr(1e15))
    assert.equal("0.0001", P.repr(0.0001))
    assert.equal("-0.0", P.repr(-0.0))
    assert.equal("inf -inf nan", P.repr(1 / 0) .. " " .. P.repr(-1 / 0) .. " " .. P.repr(0 / 0))
    assert.equal("5e-324", P.repr(5e-324))
  end)

  it("chooses quotes and escapes like Python (print-string-quotes-in-list)", function()
    assert.equal([=[["it's", 'say "x"', 'back\\slash']]=],
      P.repr(L({ "it's", 'say "x"', "back\\slash" })))
    assert.equal([['a\'b"c']], P.repr([[a'b"c]]))
    assert.equal([['a\tb\n\x01']], P.repr("a\tb\n\1"))
    assert.equal("'ü'", P.repr("ü"))
  end)

  it("prints containers (print-list-repr, print-dict-repr, op-parentheses-tuple)", function()
    assert.equal("['a', 1, 2.5, None, True]", P.str(L({ "a", 1, 2.5, null, true })))
    assert.equal("{'name': 'web', 'port': 80, 'on': False, 'tags': ['x', 'y'], 'n': None}",
      P.str(map({ "name", "web" }, { "port", 80 }, { "on", false }, { "tags", L({ "x", "y" }) },
        { "n", null })))
    assert.equal("(1, 2) (1,) ()", P.str(T({ 1, 2 })) .. " " .. P.str(T({ 1 })) .. " "
      .. P.str(T({})))
    assert.equal("{1: 'one', 2: 'two'}", P.str(map({ 1, "one" }, { 2, "two" })))
    assert.equal("[]", P.str(L()))
    assert.equal("{}", P.str(data.map()))
  end)

  it("prints dict views and byte strings", function()
    local d = map({ "a", 1 })
    assert.equal("dict_items([('a', 1)])", P.str(method(d, "items")))
    assert.equal("dict_keys(['a'])", P.str(method(d, "keys")))
    assert.equal("b'abc'", P.str(P.bytes("abc")))
  end)

  it("refuses to print an undefined value (undef-print-error)", function()
    assert.equal("UndefinedError: 'missing_var' is undefined",
      err(P.str, P.undefined("missing_var")))
  end)
end)

describe("pyval truth and comparison", function()
  it("follows Python's truth table (truth-values)", function()
    local got = {}
    for _, v in ipairs({ 0, 1, "", "x", L(), L({ 0 }), data.map(), map({ "a", 0 }), null, 0.0,
      "0", "False" }) do
      got[#got + 1] = P.truthy(v) and "T" or "F"
    end
    assert.equal("FTFTFTFTFFTT", table.concat(got))
    assert.equal("UndefinedError: 'x' is undefined", err(P.truthy, P.undefined("x")))
  end)

  it("compares as Python (op-comparison, op-string-compare-case)", function()
    assert.is_true(P.eq(1, 1.0))
    assert.is_true(P.eq(true, 1))
    assert.is_true(P.eq(L({ 1, L({ 2 }) }), L({ 1.0, L({ 2 }) })))
    assert.is_false(P.eq(T({ 1 }), L({ 1 })))
    assert.is_true(P.eq(map({ "a", 1 }, { "b", 2 }), map({ "b", 2 }, { "a", 1 })))
    assert.is_false(P.eq("1", 1))
    assert.is_true(P.eq(P.markup("a"), "a"))
    assert.equal("UndefinedError: 'x' is undefined", err(P.eq, "a", P.undefined("x")))
    assert.equal("UndefinedError: 'x' is undefined", err(P.eq, P.undefined("x"), "a"))
    assert.equal(-1, P.compare("Apple", "apple"))
    assert.equal(-1, P.compare("10", "9"))
    assert.equal(1, P.compare(L({ 1, 3 }), L({ 1, 2, 9 })))
    assert.is_true(P.cmp_op("le", 2, 2))
    assert.equal("TypeError: '<' not supported between instances of 'str' and 'int'",
      err(P.compare, "a", 1))
    assert.equal("TypeError: '>' not supported between instances of 'NoneType' and 'int'",
      err(P.cmp_op, "gt", null, 1))
  end)
end)

describe("pyval arithmetic", function()
  it("divides and floors like Python (op-arith-basic, op-arith-negative-floor)", function()
    assert.equal("3.5 3 1 1024", P.str(P.truediv(7, 2)) .. " " .. P.str(P.floordiv(7, 2)) .. " "
      .. P.str(P.mod(7, 3)) .. " " .. P.str(P.pow(2, 10)))
    assert.equal("-4 2 -4 -3.5 0.5", table.concat({ P.str(P.floordiv(-7, 2)),
      P.str(P.mod(-7, 3)), P.str(P.floordiv(7, -2)), P.str(P.truediv(-7, 2)),
      P.str(P.pow(2, -1)) }, " "))
    assert.equal("2.0", P.str(P.truediv(4, 2)))
    assert.equal("ZeroDivisionError: division by zero", err(P.truediv, 1, 0))
    assert.equal("ZeroDivisionError: integer division or modulo by zero", err(P.mod, 1, 0))
  end)

  it("grows integers past 64 bits (print-big-int)", function()
    assert.equal("18446744073709551616", P.str(P.pow(2, 64)))
    assert.equal("100000000000000000000", P.str(P.pow(10, 20)))
    assert.equal("-9223372036854775808", P.str(P.neg(P.pow(2, 63))))
    assert.equal(math.mininteger, P.neg(P.pow(2, 63)))
    assert.equal("9223372036854775808", P.str(P.add(math.maxinteger, 1)))
    assert.equal("9999999999800000000001", P.str(P.mul(99999999999, 99999999999)))
    assert.is_true(P.cmp_op("gt", P.pow(2, 70), P.pow(2, 64)))
    assert.equal(1, P.mod(P.pow(2, 64), 3))
    assert.equal("123456789012345678901234567890",
      P.str(P.int_from_digits("123456789012345678901234567890")))
    assert.equal(255, P.int_from_digits("ff", 16))
    assert.is_nil(P.int_from_digits("12a"))
  end)

  it("concatenates and repeats sequences (op-list-concat, op-string-repeat-concat)", function()
    assert.equal("[1, 2, 3]", P.str(P.add(L({ 1, 2 }), L({ 3 }))))
    assert.equal("['a', 'a']", P.str(P.mul(L({ "a" }), 2)))
    assert.equal("ababab", P.mul("ab", 3))
    assert.equal("", P.mul("ab", -1))
    assert.equal("ab", P.add("a", "b"))
    assert.equal("1a", P.concat(1, "a"))
  end)

  it("raises Python's TypeErrors (err-int-plus-string)", function()
    assert.equal("TypeError: unsupported operand type(s) for +: 'int' and 'str'",
      err(P.add, 1, "1"))
    assert.equal('TypeError: can only concatenate str (not "int") to str', err(P.add, "a", 1))
    assert.equal("TypeError: bad operand type for unary -: 'str'", err(P.neg, "a"))
  end)

  it("formats with % (filter-format)", function()
    assert.equal("a - b", P.mod("%s - %s", T({ "a", "b" })))
    assert.equal("00042", P.mod("%05d", 42))
    assert.equal("kw", P.mod("%(x)s", map({ "x", "kw" })))
    assert.equal("3.14 ff 17 'q' 1.500000e+00 1.5 100%", P.mod("%.2f %x %o %r %e %g %d%%",
      T({ 3.14159, 255, 15, "q", 1.5, 1.5, 100 })))
    assert.equal("[  ab] [ab  ] [-7]", P.mod("[%4s] [%-4s] [%i]", T({ "ab", "ab", -7.9 })))
    assert.equal("{'a': 1}", P.mod("%s", map({ "a", 1 })))
    assert.equal("TypeError: not enough arguments for format string", err(P.mod, "%s %s", "a"))
    assert.equal("TypeError: not all arguments converted during string formatting",
      err(P.mod, "%s", T({ 1, 2 })))
    assert.equal("TypeError: %d format: a real number is required, not str",
      err(P.mod, "%d", "x"))
  end)
end)

describe("pyval str methods", function()
  it("formats with str.format (str-format-method, str-format-spec-numbers)", function()
    assert.equal("a-b", method("{0}-{1}", "format", "a", "b"))
    assert.equal("host:22", method("{}:{}", "format", "host", 22))
    assert.equal("bob is 3", P.call(P.getattr("{name} is {age}", "format"), { n = 0 },
      { name = "bob", age = 3 }))
    assert.equal("    r|l    |", method("{:>5}|{:<5}|", "format", "r", "l"))
    assert.equal("00042 3.14 ff 10 1,234,567", method("{:05d} {:.2f} {:x} {:o} {:,}", "format",
      42, 3.14159, 255, 8, 1234567))
    assert.equal("{x} 'q' ***7*** 2.0", method("{{x}} {0!r} {1:*^7} {2}", "format", "q", 7, 2.0))
    assert.equal("b", method("{0[1]}", "format", L({ "a", "b" })))
    assert.equal("ValueError: Unknown format code 's' for object of type 'int'",
      err(method, "{:s}", "format", 1))
    assert.equal("ValueError: Single '{' encountered in format string", err(method, "{", "format"))
    assert.equal("KeyError: 'x'", err(method, "{x}", "format"))
    assert.equal("TypeError: str.upper() takes no arguments (1 given)",
      err(method, "abc", "upper", 1))
    local F = require("renderers.jinja.py_format")
    assert.equal("2.0 3e+00 1.2e+03 -0,098,765 +0042 0x00ff 12.5%", table.concat({
      F.format_value(2.0, ".2"), F.format_value(3.0, ".1"), F.format_value(1234.5, ".2"),
      F.format_value(-98765, "010,"), F.format_value(42, "+05d"), F.format_value(255, "#06x"),
      F.format_value(0.125, ".1%") }, " "))
  end)

  it("blocks dunder attributes in format fields (err-sandbox-format-attr)", function()
    assert.equal("SecurityError: access to attribute '__class__' of 'int' object is unsafe.",
      err(method, "{0.__class__}", "format", 1))
  end)

  it("splits and partitions (str-split-join, str-rsplit-partition, str-splitlines)", function()
    assert.equal("['a', 'b', 'c']", P.str(method("a,b,c", "split", ",")))
    assert.equal("['a', 'b', 'c']", P.str(method(" a b  c ", "split")))
    assert.equal("['a', 'b,c']", P.str(method("a,b,c", "split", ",", 1)))
    assert.equal("x-y", method("-", "join", L({ "x", "y" })))
    assert.equal("['a.b', 'c']", P.str(method("a.b.c", "rsplit", ".", 1)))
    assert.equal("['a b', 'c']", P.str(method("a b c", "rsplit", null, 1)))
    assert.equal("['hello', 'world  '] ['  hello', 'world']",
      P.str(method("  hello world  ", "split", null, 1)) .. " "
      .. P.str(method("  hello world  ", "rsplit", null, 1)))
    assert.equal("('k', '=', 'v=w')", P.str(method("k=v=w", "partition", "=")))
    assert.equal("('k=v', '=', 'w')", P.str(method("k=v=w", "rpartition", "=")))
    assert.equal("['a', 'b', 'c']", P.str(method("a\nb\r\nc", "splitlines")))
    assert.equal("['one', 'two', '']", P.str(method("one\ntwo\n", "split", "\n")))
    assert.equal("TypeError: sequence item 0: expected str instance, int found",
      err(method, ",", "join", L({ 1 })))
  end)

  it("searches and tests (str-len-count-find, str-is-methods, str-startswith-endswith)",
    function()
      assert.equal("2 2 -1 1 3", table.concat({ method("hello", "count", "l"),
        method("hello", "find", "l"), method("hello", "find", "z"), method("hello", "index", "e"),
        method("hello", "rfind", "l") }, " "))
      assert.equal("ValueError: substring not found", err(method, "abc", "index", "z"))
      assert.is_true(method("123", "isdigit"))
      assert.is_true(method("a1", "isalnum"))
      assert.is_true(method("  ", "isspace"))
      assert.is_true(method("ABC", "isupper"))
      assert.is_false(method("Abc", "islower"))
      assert.is_true(method("abc", "startswith", T({ "x", "a" })))
      assert.is_false(method("abc", "endswith", "b"))
      assert.equal(2, method("héllo", "find", "l"))
    end)

  it("strips, pads and changes case (str-strip-family)", function()
    assert.equal("[pad] [pad  ] [  pad] [pad] [/a/b]", string.format("[%s] [%s] [%s] [%s] [%s]",
      method("  pad  ", "strip"), method("  pad  ", "lstrip"), method("  pad  ", "rstrip"),
      method("xxpadxx", "strip", "x"), method("/a/b/", "rstrip", "/")))
    assert.equal("0042 -042", method("42", "zfill", 4) .. " " .. method("-42", "zfill", 4))
    assert.equal("  ab  |ab--|", method("ab", "center", 6) .. "|" .. method("ab", "ljust", 4, "-")
      .. "|")
    assert.equal("HÉLLO WÖRLD", method("héllo wörld", "upper"))
    assert.equal("Hello World", method("hello world", "title"))
    assert.equal("hELLO", method("Hello", "swapcase"))
    assert.equal("Ss ss", method("ß", "title") .. " " .. method("ß", "casefold"))
  end)

  it("counts and slices characters, not bytes (str-slicing)", function()
    local s = "abcdefgh"
    assert.equal("a h cde abc fgh aceg hgfedcba fgh", table.concat({ P.getitem(s, 0),
      P.getitem(s, -1), P.slice(s, 2, 5), P.slice(s, nil, 3), P.slice(s, 5),
      P.slice(s, nil, nil, 2),
      P.slice(s, nil, nil, -1), P.slice(s, -3) }, " "))
    assert.equal(5, P.len("héllo"))
    assert.equal("él", P.slice("héllo", 1, 3))
    assert.equal("ValueError: slice step cannot be zero", err(P.slice, s, nil, nil, 0))
  end)
end)

describe("pyval list and dict methods", function()
  it("mutates lists (list-append-do, list-pop-remove, list-sort-reverse-methods)", function()
    local l = L()
    method(l, "append", 1)
    method(l, "append", "two")
    assert.equal("[1, 'two']", P.str(l))
    l = L({ 1, 2, 3, 4 })
    assert.equal("4 1", P.str(method(l, "pop")) .. " " .. P.str(method(l, "pop", 0)))
    method(l, "remove", 2)
    assert.equal("[3]", P.str(l))
    l = L({ 3, 1, 2 })
    method(l, "sort")
    assert.equal("[1, 2, 3]", P.str(l))
    method(l, "reverse")
    assert.equal("[3, 2, 1]", P.str(l))
    assert.equal("1 1", P.str(method(L({ "a", "b" }), "index", "b")) .. " "
      .. P.str(method(L({ "a", "b" }), "count", "a")))
    assert.equal("IndexError: pop from empty list", err(method, L(), "pop"))
    assert.equal("ValueError: list.remove(x): x not in list", err(method, L(), "remove", 1))
  end)

  it("reads and updates dicts (dict-get-default, dict-setdefault-pop, dict-copy-method)",
    function()
      local d = map({ "a", 1 }, { "n", null })
      assert.equal("None dflt None 1", table.concat({ P.str(method(d, "get", "x")),
        P.str(method(d, "get", "x", "dflt")), P.str(method(d, "get", "n", "dflt")),
        P.str(method(d, "get", "a", 5)) }, " "))
      d = map({ "a", 1 })
      assert.equal("5 1 1 {'b': 5}", table.concat({ P.str(method(d, "setdefault", "b", 5)),
        P.str(method(d, "setdefault", "a", 9)), P.str(method(d, "pop", "a")), P.str(d) }, " "))
      local a = map({ "x", 1 })
      local b = method(a, "copy")
      method(b, "update", map({ "y", 2 }))
      assert.equal("{'x': 1} {'x': 1, 'y': 2}", P.str(a) .. " " .. P.str(b))
      local e = data.map()
      P.call(P.getattr(e, "update"), { n = 0 }, { x = 1 })
      assert.equal("{'x': 1}", P.str(e))
      -- keyword order: kept from a map, sorted from a plain table (dict-update-kwargs)
      P.call(P.getattr(e, "update"), { n = 0 }, map({ "z", 2 }, { "b", 3 }))
      P.call(P.getattr(e, "update"), { n = 0 }, { y = 4, c = 5 })
      assert.equal("{'x': 1, 'z': 2, 'b': 3, 'c': 5, 'y': 4}", P.str(e))
      local kw = { q = 1, a = 2 }
      P.kwarg_order[kw] = { "q", "a" }
      P.call(P.getattr(e, "update"), { n = 0 }, kw)
      assert.equal("{'x': 1, 'z': 2, 'b': 3, 'c': 5, 'y': 4, 'q': 1, 'a': 2}", P.str(e))
      assert.equal("KeyError: 'zz'", err(method, e, "pop", "zz"))
    end)
end)

describe("pyval attribute and item access", function()
  it("prefers methods for attributes and keys for items (dict-attr-vs-key-precedence)",
    function()
      local d = map({ "items", "key-value" }, { "name", "n" })
      assert.equal("key-value", P.getitem(d, "items"))
      assert.equal("n", P.getattr(d, "name"))
      assert.is_true(P.is_callable(P.getattr(d, "items")))
    end)

  it("gives undefined values for missing names (dict-missing-key-strict, undef-*)", function()
    local d = map({ "a", 1 })
    local u = P.getitem(d, "missing")
    assert.is_true(P.is_undefined(u))
    assert.equal("UndefinedError: 'dict object' has no attribute 'missing'", err(P.str, u))
    assert.equal("UndefinedError: 'dict object' has no attribute 'a'",
      err(P.getattr, P.getattr(data.map(), "a"), "b"))
    assert.equal("UndefinedError: 'dict object' has no attribute 'iteritems'",
      err(P.str, P.getattr(d, "iteritems")))
    assert.equal("UndefinedError: list object has no element 5",
      err(P.str, P.getitem(L({ 1 }), 5)))
    assert.equal("c", P.getitem(L({ "a", "b", "c" }), -1))
    assert.equal(1, P.getitem(map({ 1, 1 }), 1.0))
  end)

  it("refuses private attributes as the sandbox does (err-sandbox-private-attr)", function()
    assert.equal("SecurityError: access to attribute '__class__' of 'str' object is unsafe.",
      err(P.str, P.getattr("", "__class__")))
    assert.equal("SecurityError: access to attribute 'mro' of 'object' object is unsafe.",
      err(P.sandbox_check, "mro"))
    assert.equal(1, P.getattr(map({ "_private", 1 }), "_private"))
  end)

  it("tests membership and sizes (op-in-notin)", function()
    assert.is_true(P.contains("cat", "a"))
    assert.is_true(P.contains(L({ 1, 2 }), 2))
    assert.is_true(P.contains(map({ "k", 1 }), "k"))
    assert.is_false(P.contains(L({ "a" }), "z"))
    assert.equal("TypeError: 'in <string>' requires string as left operand, not int",
      err(P.contains, "abc", 1))
    assert.equal("TypeError: argument of type 'int' is not iterable", err(P.contains, 1, 1))
    assert.equal(3, P.len(map({ "a", 1 }, { "b", 2 }, { "c", 3 })))
    assert.equal("TypeError: object of type 'int' has no len()", err(P.len, 5))
    assert.same({ "a", "b" }, P.iter("ab"))
    assert.same({ "k", "j" }, P.iter(map({ "k", 1 }, { "j", 2 })))
    assert.equal("TypeError: 'NoneType' object is not iterable", err(P.iter, null))
  end)

  it("keeps namespace attributes settable (set-namespace-counter)", function()
    local ns = P.namespace(map({ "count", 0 }))
    P.setattr(ns, "count", P.add(P.getattr(ns, "count"), 1))
    assert.equal(1, P.getattr(ns, "count"))
    assert.is_true(P.is_undefined(P.getattr(ns, "b")))
    P.setattr(ns, "off", false)
    assert.is_false(P.getitem(ns, "off"))
    assert.equal("TemplateRuntimeError: cannot assign attribute on non-namespace object",
      err(P.setattr, data.map(), "x", 1))
    assert.equal("brine.namespace", getmetatable(ns).__name)
  end)

  it("calls callables and reports the uncallable", function()
    assert.equal(null, P.call(function() end))
    assert.equal(3, P.call(function(args) return args[1] + args[2] end, { n = 2, 1, 2 }))
    assert.equal("TypeError: 'int' object is not callable", err(P.call, 5))
    assert.equal("UndefinedError: 'f' is undefined", err(P.call, P.undefined("f")))
  end)
end)
