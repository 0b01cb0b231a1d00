-- A backtracking regular-expression engine for Python's `re` syntax, so
-- that Salt's regex filters and the `match` test take the patterns formulas
-- were written with (Lua patterns have no alternation, groups or counted
-- repetition).
--
-- Supported: literals and escapes (\n \t \xhh \uXXXX ...), `.`, character
-- sets with ranges and negation, \d \w \s \D \W \S, anchors ^ $ \A \Z \b \B,
-- groups (capturing, (?:...), named (?P<name>...), back references \1 and
-- (?P=name)), lookahead and lookbehind, alternation, greedy and lazy
-- quantifiers (* + ? {n} {n,} {n,m}), and the flags ignorecase, multiline,
-- dotall and verbose (also inline as (?imsx)). Matching works on
-- characters (UTF-8 decoded), as Python's str patterns do. Patterns are
-- compiled to closures once and cached.
--
-- Errors in a pattern raise pyval's error class "error" with Python's
-- wording where it matters ("missing ), unterminated subpattern").
local pyval = require("renderers.jinja.pyval")
local methods = require("renderers.jinja.py_methods")

local M = {}

local raise = pyval.raise
local concat = table.concat

-- ---------------------------------------------------------------- chars

local function decode(s)
  local chars, cps = {}, {}
  if pyval.is_ascii(s) or not utf8.len(s) then
    for i = 1, #s do
      chars[i] = s:sub(i, i)
      cps[i] = s:byte(i)
    end
  else
    for _, c in utf8.codes(s) do
      chars[#chars + 1] = utf8.char(c)
      cps[#cps + 1] = c
    end
  end
  return chars, cps
end

local function is_word_cp(cp, ch)
  if not cp then return false end
  if cp < 128 then
    return (cp >= 48 and cp <= 57) or (cp >= 65 and cp <= 90) or (cp >= 97 and cp <= 122)
      or cp == 95
  end
  return methods.is_alpha_char(ch)
end

local function is_digit_cp(cp) return cp and cp >= 48 and cp <= 57 end
local function is_space_ch(ch) return ch ~= nil and methods.SPACE[ch] == true end

local function fold(ch)
  return methods.lower(ch)
end

-- ---------------------------------------------------------------- parser

local Parser = {}
Parser.__index = Parser

local function perr(p, msg, pos)
  raise("error", string.format("%s at position %d", msg, (pos or p.i) - 1))
end

function Parser:peek(o) return self.p[self.i + (o or 0)] end
function Parser:eof() return self.i > #self.p end
function Parser:take()
  local c = self.p[self.i]
  self.i = self.i + 1
  return c
end

function Parser:skip_verbose()
  if not self.flags.verbose then return end
  while not self:eof() do
    local c = self:peek()
    if c == "#" then
      while not self:eof() and self:peek() ~= "\n" do self.i = self.i + 1 end
    elseif methods.SPACE[c] then
      self.i = self.i + 1
    else
      return
    end
  end
end

local SIMPLE_ESC = { n = "\n", t = "\t", r = "\r", f = "\f", v = "\v", a = "\a" }

function Parser:hex(n)
  local digits = {}
  for _ = 1, n do
    local c = self:take()
    if not c or not c:match("^%x$") then perr(self, "incomplete escape") end
    digits[#digits + 1] = c
  end
  return utf8.char(tonumber(concat(digits), 16))
end

-- An escape after "\"; in_set tells whether it sits in a [...] set.
function Parser:escape(in_set)
  local start = self.i - 1
  local c = self:take()
  if not c then perr(self, "bad escape (end of pattern)", start) end
  if SIMPLE_ESC[c] then return { t = "char", c = SIMPLE_ESC[c] } end
  if c == "x" then return { t = "char", c = self:hex(2) } end
  if c == "u" then return { t = "char", c = self:hex(4) } end
  if c == "U" then return { t = "char", c = self:hex(8) } end
  if c:match("^[dDwWsS]$") then return { t = "class", name = c } end
  if c == "0" then
    local digits = "0"
    while #digits < 3 and self:peek() and self:peek():match("^[0-7]$") do
      digits = digits .. self:take()
    end
    return { t = "char", c = utf8.char(tonumber(digits, 8)) }
  end
  if c:match("^%d$") then
    if in_set then perr(self, "bad escape \\" .. c, start) end
    local digits = c
    if self:peek() and self:peek():match("^%d$") then digits = digits .. self:take() end
    return { t = "backref", n = tonumber(digits) }
  end
  if not in_set then
    if c == "A" then return { t = "bos" } end
    if c == "Z" then return { t = "eos" } end
    if c == "b" then return { t = "wordb" } end
    if c == "B" then return { t = "nwordb" } end
  elseif c == "b" then
    return { t = "char", c = "\b" }
  end
  if c:match("^%a$") then perr(self, "bad escape \\" .. c, start) end
  return { t = "char", c = c }
end

function Parser:set()
  local start = self.i - 1
  local node = { t = "set", items = {} }
  if self:peek() == "^" then node.neg = true; self.i = self.i + 1 end
  local first = true
  while true do
    local c = self:take()
    if c == nil then perr(self, "unterminated character set", start) end
    if c == "]" and not first then break end
    first = false
    local item
    if c == "\\" then item = self:escape(true) else item = { t = "char", c = c } end
    if item.t == "char" and self:peek() == "-" and self:peek(1) and self:peek(1) ~= "]" then
      self.i = self.i + 1
      local hc = self:take()
      local hi = hc == "\\" and self:escape(true) or { t = "char", c = hc }
      if hi.t ~= "char" then perr(self, "bad character range", start) end
      local lo_cp, hi_cp = utf8.codepoint(item.c), utf8.codepoint(hi.c)
      if hi_cp < lo_cp then perr(self, "bad character range " .. item.c .. "-" .. hi.c, start) end
      item = { t = "range", lo = lo_cp, hi = hi_cp }
    end
    node.items[#node.items + 1] = item
  end
  return node
end

-- Reads characters up to `stop` (consumed); `what` names it in errors.
function Parser:read_until(stop, what, start)
  local buf = {}
  while self:peek() and self:peek() ~= stop do buf[#buf + 1] = self:take() end
  if self:take() ~= stop then perr(self, "missing " .. stop .. ", unterminated " .. what, start) end
  return concat(buf)
end

-- After "(?P": a named group's opening (returns the group node, body still
-- to read) or a named back reference (returns the finished node).
function Parser:named(start)
  local d = self:take()
  if d == "<" then
    local name = self:read_until(">", "name", start)
    if not name:match("^[%a_][%w_]*$") then
      perr(self, "bad character in group name '" .. name .. "'", start)
    end
    self.ngroups = self.ngroups + 1
    self.names[name] = self.ngroups
    return { t = "group", n = self.ngroups }, false
  end
  if d == "=" then
    local name = self:read_until(")", "name", start)
    local n = self.names[name]
    if not n then perr(self, "unknown group name '" .. name .. "'", start) end
    return { t = "backref", n = n }, true
  end
  perr(self, "unknown extension ?P" .. tostring(d), start)
end

local FLAG_NAMES = { i = "ignorecase", m = "multiline", s = "dotall", x = "verbose" }

-- After "(?": inline flags, either for the rest of the pattern "(?i)" or
-- for a group "(?i:...)".
function Parser:inline_flags(start)
  local on, set = true, {}
  while self:peek() and self:peek():match("^[aiLmsux%-]$") do
    local f = self:take()
    if f == "-" then on = false elseif FLAG_NAMES[f] then set[FLAG_NAMES[f]] = on end
  end
  local term = self:take()
  if term == ")" then
    for k, v in pairs(set) do self.flags[k] = v end
    return { t = "seq", items = {} }
  end
  if term ~= ":" then perr(self, "missing -, : or )", start) end
  local saved = {}
  for k, v in pairs(self.flags) do saved[k] = v end
  for k, v in pairs(set) do self.flags[k] = v end
  local body = self:alt()
  if self:take() ~= ")" then perr(self, "missing ), unterminated subpattern", start) end
  self.flags = saved
  return { t = "group", body = body }
end

-- After "(?": the kind of group; returns the node and whether it is
-- finished (no body to read).
function Parser:extension(start)
  local c = self:take()
  if c == ":" then return { t = "group" }, false end
  if c == "P" then return self:named(start) end
  if c == "=" or c == "!" then return { t = "look", neg = c == "!" }, false end
  if c == "<" then
    local d = self:take()
    if d ~= "=" and d ~= "!" then perr(self, "unknown extension ?<" .. tostring(d), start) end
    return { t = "look", behind = true, neg = d == "!" }, false
  end
  if c == "#" then
    self:read_until(")", "comment", start)
    return { t = "seq", items = {} }, true
  end
  if c and c:match("^[aiLmsux%-]$") then
    self.i = self.i - 1
    return self:inline_flags(start), true
  end
  perr(self, "unknown extension ?" .. tostring(c), start)
end

function Parser:group()
  local start = self.i - 1
  local node, done
  if self:peek() == "?" then
    self.i = self.i + 1
    node, done = self:extension(start)
    if done then return node end
  else
    self.ngroups = self.ngroups + 1
    node = { t = "group", n = self.ngroups }
  end
  node.body = self:alt()
  if self:take() ~= ")" then perr(self, "missing ), unterminated subpattern", start) end
  return node
end

function Parser:atom()
  self:skip_verbose()
  local c = self:take()
  if c == "(" then return self:group() end
  if c == "[" then return self:set() end
  if c == "." then return { t = "any" } end
  if c == "^" then return { t = "bol" } end
  if c == "$" then return { t = "eol" } end
  if c == "\\" then return self:escape(false) end
  if c == "*" or c == "+" or c == "?" then perr(self, "nothing to repeat", self.i - 1) end
  return { t = "char", c = c }
end

function Parser:quant(node)
  self:skip_verbose()
  local c = self:peek()
  local min, max
  if c == "*" then min, max = 0, math.huge
  elseif c == "+" then min, max = 1, math.huge
  elseif c == "?" then min, max = 0, 1
  elseif c == "{" then
    local j = self.i + 1
    local a, b = {}, nil
    while self.p[j] and self.p[j]:match("^%d$") do a[#a + 1] = self.p[j]; j = j + 1 end
    if self.p[j] == "," then
      b = {}
      j = j + 1
      while self.p[j] and self.p[j]:match("^%d$") do b[#b + 1] = self.p[j]; j = j + 1 end
    end
    if self.p[j] ~= "}" or (#a == 0 and b == nil) then return node end
    min = #a > 0 and tonumber(concat(a)) or 0
    if b == nil then max = min else max = #b > 0 and tonumber(concat(b)) or math.huge end
    if max < min then perr(self, "min repeat greater than max repeat") end
    self.i = j
  else
    return node
  end
  self.i = self.i + 1
  if node.t == "bol" or node.t == "eol" or node.t == "bos" or node.t == "eos"
    or node.t == "wordb" or node.t == "nwordb" then
    perr(self, "nothing to repeat", self.i - 1)
  end
  if node.t == "rep" then perr(self, "multiple repeat", self.i - 1) end
  local greedy = true
  if self:peek() == "?" then greedy = false; self.i = self.i + 1
  elseif self:peek() == "+" then self.i = self.i + 1 end
  return { t = "rep", node = node, min = min, max = max, greedy = greedy }
end

function Parser:seq()
  local items = {}
  while true do
    self:skip_verbose()
    local c = self:peek()
    if c == nil or c == "|" or c == ")" then break end
    local node = self:atom()
    node.flags = { ignorecase = self.flags.ignorecase, multiline = self.flags.multiline,
      dotall = self.flags.dotall }
    items[#items + 1] = self:quant(node)
  end
  return { t = "seq", items = items }
end

function Parser:alt()
  local branches = { self:seq() }
  while self:peek() == "|" do
    self.i = self.i + 1
    branches[#branches + 1] = self:seq()
  end
  if #branches == 1 then return branches[1] end
  return { t = "alt", branches = branches }
end

local function parse(pattern, flags)
  local p = setmetatable({ p = (decode(pattern)), i = 1, ngroups = 0, names = {},
    flags = { ignorecase = flags.ignorecase, multiline = flags.multiline,
      dotall = flags.dotall, verbose = flags.verbose } }, Parser)
  -- global inline flags at the very start, e.g. (?i)
  local ast = p:alt()
  if not p:eof() then
    if p:peek() == ")" then perr(p, "unbalanced parenthesis") end
    perr(p, "unexpected end of pattern")
  end
  return ast, p.ngroups, p.names
end

-- ---------------------------------------------------------------- compiler

-- The matcher state of one attempt: subject chars S, code points C, length
-- N, and the capture starts/ends.
local st

local function class_test(name)
  if name == "d" then return function(i) return is_digit_cp(st.C[i]) end end
  if name == "D" then return function(i) return st.C[i] ~= nil and not is_digit_cp(st.C[i]) end end
  if name == "w" then return function(i) return is_word_cp(st.C[i], st.S[i]) end end
  if name == "W" then
    return function(i) return st.C[i] ~= nil and not is_word_cp(st.C[i], st.S[i]) end
  end
  if name == "s" then return function(i) return is_space_ch(st.S[i]) end end
  return function(i) return st.S[i] ~= nil and not is_space_ch(st.S[i]) end
end

local function set_test(node, icase)
  local tests = {}
  for _, item in ipairs(node.items) do
    if item.t == "char" then
      local c = icase and fold(item.c) or item.c
      tests[#tests + 1] = function(ch) return ch == c end
    elseif item.t == "range" then
      local lo, hi = item.lo, item.hi
      tests[#tests + 1] = function(ch, cp)
        if cp >= lo and cp <= hi then return true end
        if icase then
          local l, u = utf8.codepoint(methods.lower(ch)), utf8.codepoint(methods.upper(ch))
          return (l >= lo and l <= hi) or (u >= lo and u <= hi)
        end
        return false
      end
    else
      local ct = class_test(item.name)
      tests[#tests + 1] = function(_, _, i) return ct(i) end
    end
  end
  local neg = node.neg
  return function(i)
    local ch = st.S[i]
    if ch == nil then return false end
    local cmp = icase and fold(ch) or ch
    local cp = st.C[i]
    for _, t in ipairs(tests) do
      if t(cmp, cp, i) then return not neg end
    end
    return neg == true
  end
end

-- A test for nodes that match exactly one character, or nil.
local function single_test(node)
  local f = node.flags or {}
  if node.t == "char" then
    local c = node.c
    if f.ignorecase then
      c = fold(c)
      return function(i) local ch = st.S[i]; return ch ~= nil and fold(ch) == c end
    end
    return function(i) return st.S[i] == c end
  end
  if node.t == "any" then
    if f.dotall then return function(i) return st.S[i] ~= nil end end
    return function(i) local ch = st.S[i]; return ch ~= nil and ch ~= "\n" end
  end
  if node.t == "class" then return class_test(node.name) end
  if node.t == "set" then return set_test(node, f.ignorecase) end
  return nil
end

local compile_node

local function compile_seq(items)
  -- build right to left: each matcher takes (i, k)
  local ms = {}
  for idx, item in ipairs(items) do ms[idx] = compile_node(item) end
  if #ms == 0 then return function(i, k) return k(i) end end
  if #ms == 1 then return ms[1] end
  local function chain(n)
    local m = ms[n]
    if n == #ms then return m end
    local rest = chain(n + 1)
    return function(i, k)
      return m(i, function(j) return rest(j, k) end)
    end
  end
  return chain(1)
end

local function is_word_at(i)
  return is_word_cp(st.C[i], st.S[i])
end

local function compile_rep(node)
  local min, max, greedy = node.min, node.max, node.greedy
  local test = single_test(node.node)
  if test then
    if greedy then
      return function(i, k)
        local n = 0
        while n < max and test(i + n) do n = n + 1 end
        while n >= min do
          if k(i + n) then return true end
          n = n - 1
        end
        return false
      end
    end
    return function(i, k)
      local n = 0
      while n < min do
        if not test(i + n) then return false end
        n = n + 1
      end
      while true do
        if k(i + n) then return true end
        if n >= max or not test(i + n) then return false end
        n = n + 1
      end
    end
  end
  local m = compile_node(node.node)
  local function try(i, count, k)
    if greedy then
      if count < max and m(i, function(j)
        if j == i and count >= min then return false end
        return try(j, count + 1, k)
      end) then
        return true
      end
      return count >= min and k(i)
    end
    if count >= min and k(i) then return true end
    return count < max and m(i, function(j)
      if j == i and count >= min then return false end
      return try(j, count + 1, k)
    end)
  end
  return function(i, k) return try(i, 0, k) end
end

local function compile_group(node)
  local body = compile_node(node.body)
  local n = node.n
  if not n then return body end
  return function(i, k)
    local old_s, old_e = st.starts[n], st.ends[n]
    if body(i, function(j)
      local ps, pe = st.starts[n], st.ends[n]
      st.starts[n], st.ends[n] = i, j
      if k(j) then return true end
      st.starts[n], st.ends[n] = ps, pe
      return false
    end) then
      return true
    end
    st.starts[n], st.ends[n] = old_s, old_e
    return false
  end
end

local function compile_look(node)
  local body = compile_node(node.body)
  local neg, behind = node.neg, node.behind
  return function(i, k)
    local found
    if behind then
      found = false
      for j = i, 1, -1 do
        if body(j, function(e) return e == i end) then found = true; break end
      end
    else
      found = body(i, function() return true end)
    end
    if found == neg then return false end
    return k(i)
  end
end

local function compile_backref(node)
  local n, icase = node.n, node.flags and node.flags.ignorecase
  return function(i, k)
    local s, e = st.starts[n], st.ends[n]
    if not s then return false end
    local len = e - s
    for d = 0, len - 1 do
      local a, b = st.S[s + d], st.S[i + d]
      if b == nil then return false end
      if icase then a, b = fold(a), fold(b) end
      if a ~= b then return false end
    end
    return k(i + len)
  end
end

function compile_node(node)
  local t = node.t
  local test = single_test(node)
  if test then
    return function(i, k)
      if test(i) then return k(i + 1) end
      return false
    end
  end
  if t == "seq" then return compile_seq(node.items) end
  if t == "alt" then
    local ms = {}
    for idx, b in ipairs(node.branches) do ms[idx] = compile_node(b) end
    return function(i, k)
      for _, m in ipairs(ms) do
        if m(i, k) then return true end
      end
      return false
    end
  end
  if t == "rep" then return compile_rep(node) end
  if t == "group" then return compile_group(node) end
  if t == "look" then return compile_look(node) end
  if t == "backref" then return compile_backref(node) end
  local ml = node.flags and node.flags.multiline
  if t == "bol" then
    return function(i, k)
      if i == 1 or (ml and st.S[i - 1] == "\n") then return k(i) end
      return false
    end
  end
  if t == "eol" then
    return function(i, k)
      local n = st.N
      if i == n + 1 or (i == n and st.S[n] == "\n") or (ml and st.S[i] == "\n") then
        return k(i)
      end
      return false
    end
  end
  if t == "bos" then return function(i, k) return i == 1 and k(i) end end
  if t == "eos" then return function(i, k) return i == st.N + 1 and k(i) end end
  if t == "wordb" or t == "nwordb" then
    local want = t == "wordb"
    return function(i, k)
      local at = (i > 1 and is_word_at(i - 1)) ~= (i <= st.N and is_word_at(i))
      if at == want then return k(i) end
      return false
    end
  end
  error("py_re: unknown node " .. tostring(t))
end

-- ---------------------------------------------------------------- API

local cache = setmetatable({}, { __mode = "v" })

local function flag_key(flags)
  flags = flags or {}
  return (flags.ignorecase and "i" or "") .. (flags.multiline and "m" or "")
    .. (flags.dotall and "s" or "") .. (flags.verbose and "x" or "")
end

---Compiles a Python regular expression.
---@param pattern string
---@param flags? table {ignorecase=, multiline=, dotall=, verbose=}
---@return table a compiled pattern: {groups=n, groupindex={name=n}}
function M.compile(pattern, flags)
  local key = flag_key(flags) .. "\0" .. pattern
  local re = cache[key]
  if re then return re end
  local ast, ngroups, names = parse(pattern, flags or {})
  re = { pattern = pattern, groups = ngroups, groupindex = names, m = compile_node(ast) }
  cache[key] = re
  return re
end

local Match = {}
Match.__index = Match

---The text of group n (0 for the whole match, or a group name); nil when
---the group did not take part.
function Match:group(n)
  n = n or 0
  if type(n) == "string" then n = self.re.groupindex[n] end
  if n == 0 then return self.text end
  return self.captures[n]
end

---All groups 1..n as a Lua array; false for groups that did not match.
function Match:groups()
  local out = {}
  for i = 1, self.re.groups do
    local c = self.captures[i]
    if c == nil then out[i] = false else out[i] = c end
  end
  return out
end

-- Tries the pattern at position i of subject state s; returns a Match.
local function attempt(re, S, C, i, full)
  local saved = st
  st = { S = S, C = C, N = #S, starts = {}, ends = {} }
  local state = st
  local end_pos
  local ok, err = pcall(re.m, i, function(j)
    if full and j ~= state.N + 1 then return false end
    end_pos = j
    return true
  end)
  st = saved
  if not ok then error(err, 0) end
  if not end_pos then return nil end
  local captures = {}
  for n = 1, re.groups do
    local s, e = state.starts[n], state.ends[n]
    if s then captures[n] = concat(S, "", s, e - 1) end
  end
  return setmetatable({ re = re, start = i - 1, stop = end_pos - 1,
    text = concat(S, "", i, end_pos - 1), captures = captures }, Match)
end

local function subject(s)
  local S, C = decode(s)
  return S, C
end

---Python's re.match: anchored at the start.
function M.match(pattern, s, flags)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  return attempt(re, S, C, 1, false)
end

---Python's re.fullmatch.
function M.fullmatch(pattern, s, flags)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  return attempt(re, S, C, 1, true)
end

local function search_from(re, S, C, from)
  for i = from, #S + 1 do
    local m = attempt(re, S, C, i, false)
    if m then return m end
  end
  return nil
end

---Python's re.search: the first match anywhere.
function M.search(pattern, s, flags)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  return search_from(re, S, C, 1)
end

-- Every non-overlapping match, as Python's finditer yields them.
local function each_match(re, S, C)
  local out, pos = {}, 1
  local last_empty_at
  while pos <= #S + 1 do
    local m = search_from(re, S, C, pos)
    if not m then break end
    if m.stop == m.start and m.start == last_empty_at then
      -- an empty match right after the previous one: move on by one
      pos = m.start + 2
    else
      out[#out + 1] = m
      if m.stop == m.start then
        last_empty_at = m.start
        pos = m.stop + 1
      else
        pos = m.stop + 1
        last_empty_at = m.stop
      end
    end
  end
  return out
end

---Python's re.finditer, materialised: an array of Match objects.
function M.finditer(pattern, s, flags)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  return each_match(re, S, C)
end

-- Expands a Python replacement template for match m.
local function expand(template, m)
  local out, i, n = {}, 1, #template
  while i <= n do
    local c = template:sub(i, i)
    if c ~= "\\" then
      local j = template:find("\\", i, true) or n + 1
      out[#out + 1] = template:sub(i, j - 1)
      i = j
    else
      local d = template:sub(i + 1, i + 1)
      if d:match("%d") then
        local num = d
        if template:sub(i + 2, i + 2):match("%d") then
          num = num .. template:sub(i + 2, i + 2)
        end
        local g = tonumber(num)
        if g > m.re.groups then raise("error", "invalid group reference " .. g) end
        out[#out + 1] = m:group(g) or ""
        i = i + 1 + #num
      elseif d == "g" then
        local name = template:match("^<([^>]*)>", i + 2)
        if not name then raise("error", "missing <, bad escape \\g") end
        local g = tonumber(name) or m.re.groupindex[name]
        if g == nil then raise("IndexError", "unknown group name '" .. name .. "'") end
        if g > m.re.groups then raise("error", "invalid group reference " .. g) end
        out[#out + 1] = m:group(g) or ""
        i = i + 3 + #name + 1 - 1
        i = i + 1
      elseif SIMPLE_ESC[d] then
        out[#out + 1] = SIMPLE_ESC[d]
        i = i + 2
      elseif d == "\\" then
        out[#out + 1] = "\\"
        i = i + 2
      elseif d:match("%a") then
        raise("error", "bad escape \\" .. d)
      else
        out[#out + 1] = "\\" .. d
        i = i + 2
      end
    end
  end
  return concat(out)
end

---Python's re.sub(pattern, repl, s, count, flags); repl is a template
---string (\1, \g<name>) or a function of a Match returning a string.
function M.sub(pattern, repl, s, flags, count)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  local out, pos, done = {}, 1, 0
  for _, m in ipairs(each_match(re, S, C)) do
    if count and count > 0 and done >= count then break end
    out[#out + 1] = concat(S, "", pos, m.start)
    if type(repl) == "function" then
      out[#out + 1] = repl(m)
    else
      out[#out + 1] = expand(repl, m)
    end
    pos = m.stop + 1
    done = done + 1
  end
  out[#out + 1] = concat(S, "", pos, #S)
  return concat(out), done
end

---Python's re.findall: strings when the pattern has at most one group,
---else arrays of the groups ("" for a group that did not match).
function M.findall(pattern, s, flags)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  local out = {}
  for _, m in ipairs(each_match(re, S, C)) do
    if re.groups == 0 then
      out[#out + 1] = m.text
    elseif re.groups == 1 then
      out[#out + 1] = m:group(1) or ""
    else
      local g = {}
      for n = 1, re.groups do g[n] = m:group(n) or "" end
      out[#out + 1] = g
    end
  end
  return out
end

---Python's re.split; groups of the pattern are included (false for a
---group that did not match).
function M.split(pattern, s, flags, maxsplit)
  local re = M.compile(pattern, flags)
  local S, C = subject(s)
  local out, pos, done = {}, 1, 0
  for _, m in ipairs(each_match(re, S, C)) do
    if maxsplit and maxsplit > 0 and done >= maxsplit then break end
    out[#out + 1] = concat(S, "", pos, m.start)
    for n = 1, re.groups do
      local g = m:group(n)
      if g == nil then out[#out + 1] = false else out[#out + 1] = g end
    end
    pos = m.stop + 1
    done = done + 1
  end
  out[#out + 1] = concat(S, "", pos, #S)
  return out
end

local SPECIAL = {}
for c in ("()[]{}?*+-|^$\\.&~# \t\n\r\v\f"):gmatch(".") do SPECIAL[c] = true end

---Python's re.escape (3.7+): a backslash before each special character.
function M.escape(s)
  return (s:gsub(".", function(c)
    if SPECIAL[c] then return "\\" .. c end
  end))
end

return M
