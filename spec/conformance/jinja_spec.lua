-- Conformance of the template engine with Salt's Jinja: renders every case of
-- $BRINE_SHARED_DIR/conformance/jinja the way Salt's compile_template did
-- when the expected outputs were made (file root = the case folder, saltenv
-- base, sls ''), and compares byte for byte. A case with expected.err must
-- fail with a message naming a line. Run directly (`brine lua FILE`) it
-- prints a summary of the failing cases instead.
local data = require "brine.data"
local have_engine, renderer = pcall(require, "renderers.jinja")
if not have_engine and describe then
  describe("jinja conformance", function()
    it("needs the template engine's value model", function()
      pending(tostring(renderer):match("[^\n]*"))
    end)
  end)
  return
end

local shared = os.getenv("BRINE_SHARED_DIR")
local suite_dir = shared and (shared .. "/conformance/jinja")

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- JSON ----------------------------------------------------------------------
-- brine.json when present; else a small ordered decoder that keeps the
-- int/float distinction, enough for context.json files.
local function json_decode(text)
  local ok, json = pcall(require, "brine.json")
  if ok then return json.decode(text) end
  local pos = 1
  local value
  local function ws() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = text:sub(pos, pos)
      if c == '"' then pos = pos + 1; break end
      if c == "\\" then
        local e = text:sub(pos + 1, pos + 1)
        local map = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ["/"] = "/",
                      ["\\"] = "\\", ['"'] = '"' }
        if e == "u" then
          local cp = tonumber(text:sub(pos + 2, pos + 5), 16)
          pos = pos + 6
          if cp >= 0xD800 and cp < 0xDC00 and text:sub(pos, pos + 1) == "\\u" then
            local lo = tonumber(text:sub(pos + 2, pos + 5), 16)
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
          out[#out + 1] = utf8.char(cp)
        else
          out[#out + 1] = map[e]
          pos = pos + 2
        end
      else
        local j = text:find('["\\]', pos)
        out[#out + 1] = text:sub(pos, j - 1)
        pos = j
      end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = text:sub(pos, pos)
    if c == "{" then
      pos = pos + 1
      local m = data.map()
      ws()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return m end
      while true do
        ws()
        local k = str()
        ws(); pos = pos + 1
        m[k] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return m end
      end
    elseif c == "[" then
      pos = pos + 1
      local a = data.array({})
      ws()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return a end
      while true do
        a[#a + 1] = value()
        ws()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return a end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif text:sub(pos, pos + 3) == "null" then pos = pos + 4; return data.null
    end
    local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    pos = pos + #num
    if num:find("[.eE]") then return tonumber(num) + 0.0 end
    return math.tointeger(tonumber(num))
  end
  return value()
end

-- The corpus's `salt[...]` functions (its README's "Stubs") are brine's real
-- execution modules, over the case's grains and pillar; only the functions
-- the case lists in __salt__ are there, as when the corpus was made.
local function salt_functions(grains, pillar, names)
  local ld = require("brine.loader").new({}, { grains = grains, pillar = pillar })
  local salt = {}
  for _, name in ipairs(names or {}) do
    salt[name] = ld.salt[name]
  end
  return salt
end

-- Running a case ---------------------------------------------------------------

local function build_ctx(dir)
  local text = read(dir .. "/context.json")
  local context = text and json_decode(text) or data.map()
  local grains = context.grains or data.map()
  local pillar = context.pillar or data.map()
  local salt = salt_functions(grains, pillar, context.__salt__)
  local extra = {}
  for _, k in ipairs(data.keys(context)) do
    if k ~= "grains" and k ~= "pillar" and k ~= "__salt__" then extra[k] = context[k] end
  end
  return { grains = grains, pillar = pillar, salt = salt, context = extra, root = dir,
           saltenv = "base", opts = data.map() }
end

local M = {}

--- Renders case `name`; returns ok, detail.
function M.run_case(name)
  local dir = suite_dir .. "/" .. name
  local ctx = build_ctx(dir)
  ctx.name, ctx.sls, ctx.tplfile = "template", "", "template"
  local source = read(dir .. "/template")
  local ok, out, err = pcall(renderer.render, source, ctx)
  if not ok then return false, "crash: " .. tostring(out) end
  local expected_err = read(dir .. "/expected.err")
  if expected_err then
    if out then return false, "expected failure " .. expected_err .. ", got " .. out end
    if not tostring(err):find("line %d") then return false, "error names no line: " .. err end
    return true
  end
  local expected = read(dir .. "/expected.out")
  if not out then return false, "error: " .. tostring(err) end
  if out ~= expected then
    return false, string.format("expected %q\n     got %q", expected, out)
  end
  return true
end

function M.cases()
  local names = {}
  local p = io.popen('ls "' .. suite_dir .. '"')
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

M.read, M.json_decode, M.build_ctx = read, json_decode, build_ctx

if ... == "library" then return M end

if describe then
  describe("jinja conformance", function()
    if not suite_dir or not read(suite_dir .. "/comment-inline-and-block/template") then
      it("needs BRINE_SHARED_DIR", function() pending("shared conformance folder absent") end)
      return
    end
    local failing = {}
    for _, name in ipairs(M.cases()) do
      it(name, function()
        local ok, detail = M.run_case(name)
        if not ok then failing[#failing + 1] = name end
        assert(ok, detail)
      end)
    end
    teardown(function()
      if #failing > 0 then
        io.stderr:write("failing jinja cases: " .. table.concat(failing, " ") .. "\n")
      end
    end)
  end)
else
  local pass, fail = 0, {}
  local only = arg and arg[1]
  for _, name in ipairs(M.cases()) do
    if not only or name:find(only, 1, true) then
      local ok, detail = M.run_case(name)
      if ok then pass = pass + 1 else
        fail[#fail + 1] = name
        print("FAIL " .. name .. ": " .. tostring(detail))
      end
    end
  end
  print(string.format("%d passed, %d failed", pass, #fail))
end

return M
