-- The regular-expression engine behind Salt's regex filters and the
-- `match` test: Python `re` syntax and results. Each expectation below is
-- what Python 3.11's re module gives for the same pattern and subject.
local re = require("renderers.jinja.py_re")
local pyval = require("renderers.jinja.pyval")

local function flags(f)
  return { ignorecase = f:find("i") ~= nil, multiline = f:find("m") ~= nil,
    dotall = f:find("s") ~= nil }
end

-- pattern, flags, subject, start, stop, groups (false: did not take part)
local SEARCHES = {
  { [[web(\d+)-(\w+)]], "", "web01-prod", 0, 10, { "01", "prod" } },
  { [[a|ab|abc]], "", "abc", 0, 1, {} },
  { [[(a|ab)(c|bcd)(d*)]], "", "abcd", 0, 4, { "a", "bcd", "" } },
  { [[^(\w+)\s*=\s*(.*?)\s*$]], "", "key =  some value  ", 0, 19, { "key", "some value" } },
  { [[(?P<user>[^@]+)@(?P<host>.+)]], "", "root@example.com", 0, 16, { "root", "example.com" } },
  { [[(\w)\1]], "", "hello", 2, 4, { "l" } },
  { [[(?P<q>['"]).*?(?P=q)]], "", "say 'hi' now", 4, 8, { "'" } },
  { [[\bfoo\b]], "", "a foo b", 2, 5, {} },
  { [[\Bfoo]], "", "afoo", 1, 4, {} },
  { [[colou?r]], "", "the color red", 4, 9, {} },
  { [[\d{2,3}]], "", "a12345", 1, 4, {} },
  { [[\d{2,3}?]], "", "a12345", 1, 3, {} },
  { [[x*]], "", "aaa", 0, 0, {} },
  { [[[a-c]+]], "i", "xxABCabcx", 2, 8, {} },
  { [[[^0-9]+]], "", "123abc456", 3, 6, {} },
  { [[^b]], "m", "a\nb", 2, 3, {} },
  { [[a.c]], "s", "a\nc", 0, 3, {} },
  { [[foo(?=bar)]], "", "foobaz foobar", 7, 10, {} },
  { [[foo(?!bar)]], "", "foobar foobaz", 7, 10, {} },
  { [[(?<=\$)\d+]], "", "cost $42", 6, 8, {} },
  { [[(?<!\$)\b\d+]], "", "$42 17", 4, 6, {} },
  { [[(?i)WEB]], "", "my web", 3, 6, {} },
  { [[[\d.]+]], "", "v1.2.3-r", 1, 6, {} },
  { [[(a)|(b)]], "", "b", 0, 1, { false, "b" } },
  { "é+", "", "caféé!", 3, 5, {} },
  { [[\s+$]], "", "text  \n", 4, 7, {} },
  { [[[\]\-]+]], "", "a-]b", 1, 3, {} },
  { [[(?:ab)+]], "", "xababab", 1, 7, {} },
  { [[(a+)+b]], "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaab", 0, 29, { ("a"):rep(28) } },
}

describe("py_re search", function()
  for _, c in ipairs(SEARCHES) do
    it(string.format("finds /%s/%s in %q", c[1], c[2], c[3]), function()
      local m = re.search(c[1], c[3], flags(c[2]))
      assert.is_truthy(m)
      assert.equal(c[4], m.start)
      assert.equal(c[5], m.stop)
      assert.same(c[6], m:groups())
    end)
  end

  it("finds nothing where Python finds nothing", function()
    assert.is_nil(re.search("a.c", "a\nc"))
    assert.is_nil(re.match("web", "xweb01"))
    assert.is_nil(re.match("^web", "a\nweb", { multiline = true }))
    assert.is_nil(re.fullmatch("ab", "abc"))
  end)

  it("names groups", function()
    local m = re.search("(?P<user>[^@]+)@(?P<host>.+)", "root@example.com")
    assert.equal("example.com", m:group("host"))
    assert.equal("root@example.com", m:group(0))
  end)
end)

describe("py_re sub, findall, split and escape", function()
  local SUBS = {
    { [[\s+]], "_", "a  b   c", "", "a_b_c" },
    { [[(\w+)-(\d+)]], [[\2-\1]], "Host-01", "", "01-Host" },
    { "a", "x", "AbA", "i", "xbx" },
    { "x*", "-", "abc", "", "-a-b-c-" },
    { [[(?P<n>\d+)]], [[<\g<n>>]], "a1b22", "", "a<1>b<22>" },
    { "^", "# ", "l1\nl2", "m", "# l1\n# l2" },
    { "(a)|b", [=[[\1]]=], "ab", "", "[a][]" },
  }
  for _, c in ipairs(SUBS) do
    it(string.format("replaces /%s/ with %q in %q", c[1], c[2], c[3]), function()
      assert.equal(c[5], (re.sub(c[1], c[2], c[3], flags(c[4]))))
    end)
  end

  it("finds all, splits and escapes as Python does", function()
    assert.same({ { "a", "1" }, { "b", "2" } }, re.findall([[(\w)=(\d)]], "a=1 b=2"))
    assert.same({ "a", "b", "c" }, re.split([[[,;]\s*]], "a, b;c"))
    assert.equal([[https://example\.com\?foo=bar%20baz]],
      re.escape("https://example.com?foo=bar%20baz"))
  end)

  it("reports bad patterns as re.error", function()
    local ok, e = pcall(re.compile, "(ab")
    assert.is_false(ok)
    assert.is_true(pyval.is_error(e))
    assert.equal("error", e.class)
    assert.matches("missing %), unterminated subpattern", e.message)
    ok, e = pcall(re.compile, "*a")
    assert.is_false(ok)
    assert.equal("nothing to repeat at position 0", e.message)
  end)

  it("handles long subjects without blowing the stack", function()
    local s = ("ab"):rep(20000) .. "!"
    local m = re.search("(?:ab)+!", s)
    assert.equal(0, m.start)
    assert.equal(#s, m.stop)
    assert.equal(40001, #(re.sub(".", "x", s)))
  end)
end)
