-- Integers beyond 64 bits, so that templates computing `2 ** 64` print
-- what Python prints instead of a wrapped-around number.
--
-- A big integer is a table of base-10^7 limbs (least significant first)
-- with a `neg` flag and the "brine.bigint" metatable of brine.data. Every operation takes
-- Lua integers, floats or big integers and returns a Lua integer whenever
-- the result fits in 64 bits, so big integers only exist while needed.
-- Division and modulo are exact (long division for divisors past one
-- limb).
local M = {}

local BASE = 10000000
-- the data model's metatable, so that integers beyond 64 bits read from
-- YAML, JSON or msgpack (brine.data) are big integers here too
local BIG_MT = require("brine.data").bigint_metatable()

local function new(neg, limbs)
  limbs.neg = neg
  return setmetatable(limbs, BIG_MT)
end

local function trim(b)
  while #b > 1 and b[#b] == 0 do b[#b] = nil end
  if #b == 1 and b[1] == 0 then b.neg = false end
  return b
end

local function from_int(i)
  if i == 0 then return new(false, { 0 }) end
  local neg, limbs, n = i < 0, {}, i
  -- a negative n stays negative so that math.mininteger needs no negation
  while n ~= 0 do
    local digit
    if neg then
      digit = -(n % -BASE)
      n = (n + digit) // BASE
    else
      digit = n % BASE
      n = n // BASE
    end
    limbs[#limbs + 1] = digit
  end
  return new(neg, limbs)
end

local function from(v)
  if getmetatable(v) == BIG_MT then return v end
  if v == true then return from_int(1) end
  if v == false then return from_int(0) end
  return from_int(v)
end

local function abs_cmp(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
  end
  return 0
end

local function abs_add(a, b)
  local out, carry = {}, 0
  for i = 1, math.max(#a, #b) do
    local s = (a[i] or 0) + (b[i] or 0) + carry
    out[i] = s % BASE
    carry = s // BASE
  end
  if carry > 0 then out[#out + 1] = carry end
  return out
end

local function abs_sub(a, b) -- |a| >= |b|
  local out, borrow = {}, 0
  for i = 1, #a do
    local s = a[i] - (b[i] or 0) - borrow
    if s < 0 then s = s + BASE; borrow = 1 else borrow = 0 end
    out[i] = s
  end
  return out
end

-- Back to a Lua integer when the value fits in 64 bits.
local function norm(b)
  trim(b)
  if #b <= 2 then
    local v = 0
    for i = #b, 1, -1 do v = v * BASE + b[i] end
    return b.neg and -v or v
  end
  if abs_cmp(b, from_int(math.mininteger)) <= 0 then
    if b.neg then
      local v = 0
      for i = #b, 1, -1 do v = v * BASE - b[i] end
      return v
    end
    if abs_cmp(b, from_int(math.maxinteger)) <= 0 then
      local v = 0
      for i = #b, 1, -1 do v = v * BASE + b[i] end
      return v
    end
  end
  return b
end

local function add(a, b)
  if a.neg == b.neg then return new(a.neg, abs_add(a, b)) end
  local c = abs_cmp(a, b)
  if c == 0 then return new(false, { 0 }) end
  if c > 0 then return new(a.neg, abs_sub(a, b)) end
  return new(b.neg, abs_sub(b, a))
end

local function neg(a)
  local out = {}
  for i = 1, #a do out[i] = a[i] end
  return trim(new(not a.neg, out))
end

-- The largest product computed, in limbs (about 70,000 decimal digits):
-- past it a template gets an OverflowError instead of running for minutes.
M.MAX_LIMBS = 10000

local function too_big()
  require("renderers.jinja.pyval").raise("OverflowError", string.format(
    "integer result would have more than %d digits, the sandbox limit", M.MAX_LIMBS * 7))
end

local function mul(a, b)
  if #a + #b > M.MAX_LIMBS then too_big() end
  local out = {}
  for i = 1, #a + #b do out[i] = 0 end
  for i = 1, #a do
    local carry, ai = 0, a[i]
    for j = 1, #b do
      local cur = out[i + j - 1] + ai * b[j] + carry
      out[i + j - 1] = cur % BASE
      carry = cur // BASE
    end
    local k = i + #b
    while carry > 0 do
      local cur = out[k] + carry
      out[k] = cur % BASE
      carry = cur // BASE
      k = k + 1
    end
  end
  -- trimmed, so that the squarings in pow() do not double zero limbs
  return trim(new(a.neg ~= b.neg, out))
end

local function is_float(v) return math.type(v) == "float" end

---The value as a float.
function M.tofloat(v)
  if getmetatable(v) ~= BIG_MT then return (v == true and 1 or v == false and 0 or v) * 1.0 end
  -- through the decimal text: strtod rounds correctly, as Python's
  -- int-to-float does, where summing limbs in floats would not
  return tonumber(tostring(v) .. ".0")
end

function M.is_big(v) return getmetatable(v) == BIG_MT end

function M.add(a, b)
  if is_float(a) or is_float(b) then return M.tofloat(a) + M.tofloat(b) end
  return norm(add(from(a), from(b)))
end

function M.sub(a, b)
  if is_float(a) or is_float(b) then return M.tofloat(a) - M.tofloat(b) end
  return norm(add(from(a), neg(from(b))))
end

function M.mul(a, b)
  if is_float(a) or is_float(b) then return M.tofloat(a) * M.tofloat(b) end
  return norm(mul(from(a), from(b)))
end

function M.neg(a)
  return norm(neg(from(a)))
end

function M.pow(a, b)
  -- 0, 1 and -1 to a huge positive power stay exact integers, as in Python
  if getmetatable(b) == BIG_MT and not b.neg and math.type(a) == "integer"
      and a >= -1 and a <= 1 then
    if a == -1 and b[1] % 2 == 0 then return 1 end -- (limbs of 10^7: even base)
    return a
  end
  if is_float(a) or is_float(b) or getmetatable(b) == BIG_MT or b < 0 then
    return M.tofloat(a) ^ M.tofloat(b)
  end
  local result, base = from_int(1), from(a)
  -- a ** b has b * log10(|a|) digits: refuse at once what the limit would
  -- stop only after seconds of squaring
  local log10 = (#base - 1) * 7 + math.log(base[#base], 10)
  if base[#base] > 0 and b * log10 > M.MAX_LIMBS * 7 + 1 then too_big() end
  while b > 0 do
    if b % 2 == 1 then result = mul(result, base) end
    b = b // 2
    if b > 0 then base = mul(base, base) end
  end
  return norm(result)
end

function M.cmp(a, b)
  if is_float(a) or is_float(b) then
    local x, y = M.tofloat(a), M.tofloat(b)
    return x < y and -1 or (x > y and 1 or 0)
  end
  a, b = from(a), from(b)
  if a.neg ~= b.neg then return a.neg and -1 or 1 end
  local c = abs_cmp(a, b)
  return a.neg and -c or c
end

-- Floor division and remainder by a divisor that fits in one limb.
local function divmod_small(a, d)
  local out, r = {}, 0
  for i = #a, 1, -1 do
    local cur = r * BASE + a[i]
    out[i] = cur // d
    r = cur % d
  end
  local q = new(a.neg, out)
  trim(q)
  if a.neg and r ~= 0 then
    q = add(q, from_int(-1)); r = d - r
  end
  return q, r
end

-- |b| * d for a digit d (0 <= d < BASE): limbs.
local function mul_digit(b, d)
  local out, carry = {}, 0
  for i = 1, #b do
    local p = b[i] * d + carry
    out[i] = p % BASE
    carry = p // BASE
  end
  if carry > 0 then out[#out + 1] = carry end
  return trim(out)
end

-- Schoolbook long division of magnitudes: each quotient limb is found by
-- bisection over the base, the remainder kept as limbs.
local function abs_divmod(a, b)
  local q, r = {}, { 0 }
  for i = #a, 1, -1 do
    table.insert(r, 1, a[i]) -- r = r * BASE + a[i]
    trim(r)
    local lo, hi = 0, BASE - 1
    while lo < hi do
      local mid = (lo + hi + 1) // 2
      if abs_cmp(mul_digit(b, mid), r) <= 0 then lo = mid else hi = mid - 1 end
    end
    q[i] = lo
    if lo > 0 then r = trim(abs_sub(r, mul_digit(b, lo))) end
  end
  return trim(q), r
end

-- Exact floor division and remainder of integers, the divisor past one
-- limb (Python's signs: the remainder takes the divisor's).
local function divmod_big(a, b)
  a, b = from(a), from(b)
  local qa, ra = abs_divmod(a, b)
  local q, r = trim(new(a.neg ~= b.neg, qa)), trim(new(a.neg, ra))
  if not (#r == 1 and r[1] == 0) and a.neg ~= b.neg then
    q, r = add(q, from_int(-1)), add(r, b)
  end
  return norm(q), norm(r)
end

local function divmod(a, b)
  if is_float(a) or is_float(b) then
    local x, y = M.tofloat(a), M.tofloat(b)
    local q = x // y
    return q, x - q * y
  end
  -- (not math.abs(b) >= BASE: the absolute value of the smallest integer
  -- is itself)
  if getmetatable(b) == BIG_MT or b >= BASE or b <= -BASE then return divmod_big(a, b) end
  if b == 0 then
    require("renderers.jinja.pyval").raise("ZeroDivisionError",
      "integer division or modulo by zero")
  end
  local d = b
  local q, r = divmod_small(from(a), math.abs(d))
  if d < 0 then
    q = neg(q)
    if r ~= 0 then q = add(q, from_int(-1)); r = r + d end
  end
  return norm(q), r
end

function M.floordiv(a, b)
  return (divmod(a, b))
end

function M.mod(a, b)
  local _, r = divmod(a, b)
  return r
end

BIG_MT.__tostring = function(b)
  local parts = { tostring(b[#b]) }
  for i = #b - 1, 1, -1 do parts[#parts + 1] = string.format("%07d", b[i]) end
  return (b.neg and "-" or "") .. table.concat(parts)
end

return M
