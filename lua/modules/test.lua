-- The test execution module, as Salt's: functions that check a minion
-- answers and that show how arguments arrive (test.ping, test.echo,
-- test.arg, test.kwarg, test.retcode, test.exception, ...).
-- luacheck: globals salt opts context
local data = require("brine.data")
local core = require("brine.core")

local M = {}

local null = data.null

M.__defaults__ = {
  exception = { message = "Test Exception" },
  retcode = { code = 42 },
  random_hash = { size = 9999999999, hash_type = null },
  sleep = {},
  rand_sleep = { max = 60 },
}

-- Keyword arguments without Salt's __pub_* bookkeeping keys.
local function clean_kwargs(kwargs)
  local out = data.map()
  for k, v in pairs(kwargs) do
    if type(k) ~= "string" or k:sub(1, 2) ~= "__" then
      out[k] = v
    end
  end
  return out
end

local function tuple_of(...)
  local t = data.tuple()
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    t[i] = v == nil and null or v
  end
  return t
end

-- Wall-clock seconds as a float (os.time's resolution is not enough).
local function now()
  local sec, usec = require("luv").gettimeofday()
  return sec + usec / 1e6
end

--- Used to make sure the minion is up and responding. Returns True.
function M.ping()
  return true
end

--- Returns the string it is given.
function M.echo(text)
  return text
end

--- Always returns True.
M["true"] = function()
  return true
end

--- Always returns False.
M["false"] = function()
  return false
end

--- Prints (returns) the positional and keyword arguments it was called with.
function M.arg(kwargs, ...)
  return data.map({ { "args", tuple_of(...) }, { "kwargs", clean_kwargs(kwargs) } })
end

--- Returns the Python repr of each argument.
function M.arg_repr(kwargs, ...)
  local raw = require("outputters.raw")
  local args = tuple_of(...)
  for i = 1, #args do
    args[i] = raw.repr(args[i])
  end
  local kw = clean_kwargs(kwargs)
  for k, v in pairs(kw) do
    kw[k] = raw.repr(v)
  end
  return data.map({ { "args", args }, { "kwargs", kw } })
end

local PY_TYPE = { null = "NoneType", boolean = "bool", integer = "int", float = "float",
  string = "str", array = "list", map = "dict" }

--- Groups the positional arguments by their Python type name.
function M.arg_type(...)
  local ret = data.map()
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    local kind = data.kind(v == nil and null or v)
    local name = PY_TYPE[kind] or kind
    if kind == "array" and data.is_tuple(v) then
      name = "tuple"
    end
    ret[name] = ret[name] or data.array()
    local list = ret[name]
    list[#list + 1] = v == nil and null or v
  end
  return ret
end

--- Returns the keyword arguments as a mapping (Salt's __pub_* keys included).
function M.kwarg(kwargs)
  return kwargs
end

--- Sleeps for `length` seconds, then returns True.
function M.sleep(length)
  local n = tonumber(length)
  if not n then
    error("sleep: length must be a number, not " .. tostring(length), 0)
  end
  require("luv").sleep(math.floor(n * 1000))
  return true
end

--- Sleeps a random number of seconds between 0 and max, returns that number.
function M.rand_sleep(max)
  local n = math.random(0, math.tointeger(tonumber(max)) or 0)
  M.sleep(n)
  return n
end

--- Raises an error with the given message (tests error reporting).
function M.exception(message)
  error(message, 0)
end

--- Sets the job's return code (context.retcode) to code, returns True.
function M.retcode(code)
  context.retcode = math.tointeger(tonumber(code)) or code
  return true
end

--- The version of brine.
function M.version()
  return core.VERSION
end

--- Versions of brine, its libraries and the system, as mappings of text
--- under Salt's section names.
function M.versions_information()
  local deps = data.map({ { "Lua", core.LUA_RELEASE } })
  local ok, luv = pcall(require, "luv")
  if ok then
    deps.libuv = luv.version_string()
  end
  local system = data.map()
  local u = require("brine.sys").uname()
  if u then
    system.machine, system.release = u.machine, u.release
    system.system, system.version = u.sysname, u.version
  end
  return data.map({
    { "Brine Version", data.map({ { "Brine", core.VERSION } }) },
    { "Dependency Versions", deps },
    { "System Versions", system },
  })
end

M.versions = M.versions_information

--- Versions of brine and its parts as text, laid out as Salt's
--- versions_report: a section name, then `name: version` lines with the
--- names right-aligned, a line holding one space after each section.
function M.versions_report()
  local info = M.versions_information()
  local width = #"Not Installed"
  for _, items in pairs(info) do
    for name in pairs(items) do
      width = math.max(width, #name)
    end
  end
  local lines = {}
  for section, items in pairs(info) do
    lines[#lines + 1] = section .. ":"
    local names = data.keys(items)
    table.sort(names, function(a, b) return a:lower() < b:lower() end)
    for _, name in ipairs(names) do
      lines[#lines + 1] = string.format("%" .. (width + 1) .. "s: %s", name, items[name])
    end
    lines[#lines + 1] = " "
  end
  return table.concat(lines, "\n")
end

--- Returns the num-th Fibonacci number and the seconds it took.
function M.fib(num)
  num = math.tointeger(tonumber(num))
  if not num then
    error("fib: num must be an integer", 0)
  elseif num < 0 then
    error("Negative number is not allowed!", 0)
  end
  local start = now()
  if num < 2 then
    return data.tuple({ num, now() - start })
  end
  local prev, curr = 0, 1
  for _ = 2, num do
    prev, curr = curr, prev + curr
  end
  return data.tuple({ curr, now() - start })
end

--- Returns the Collatz sequence from start and the seconds it took.
function M.collatz(start)
  local n = math.tointeger(tonumber(start))
  if not n or n < 1 then
    error("collatz: start must be a positive integer", 0)
  end
  local t0 = now()
  local seq = data.array({ n })
  while n > 1 do
    n = n % 2 == 0 and n // 2 or 3 * n + 1
    seq[#seq + 1] = n
  end
  return data.tuple({ seq, now() - t0 })
end

--- Returns what it is given (to try outputters with).
function M.outputter(data) -- luacheck: ignore 431
  return data
end

--- A hash of a random number, sha256 unless hash_type (opts.hash_type) says.
function M.random_hash(size, hash_type)
  local crypto = require("brine.crypto")
  local algo = hash_type or opts.hash_type or "sha256"
  local n = math.random(1, math.tointeger(tonumber(size)) or 9999999999)
  return crypto.hash(algo, tostring(n))
end

--- Calls another execution function with the positional arguments given.
function M.cross_test(func, args)
  local list = type(args) == "table" and args or {}
  return salt[func](table.unpack(list, 1, #list))
end

--- Returns the minion's options.
function M.get_opts()
  return opts
end

--- Fails (raises) unless the value is true.
function M.assertion(assertion)
  assert(assertion, "assertion failed")
  return true
end

return M
