-- Conformance of the SLS pipeline's template step: renders every case of
-- $BRINE_SHARED_DIR/conformance/sls as Salt's state system renders SLS
-- `input` (renderer jinja|yaml unless a #! line says otherwise, saltenv
-- base) through brine.render's pipeline, and compares it with
-- expected.json, key order and int/float included. A case with expected.err
-- must fail. Run directly (`brine lua FILE`) it prints a summary instead.
local data = require "brine.data"
local have_engine, jinja_renderer = pcall(require, "renderers.jinja")
if not have_engine and describe then
  describe("sls conformance", function()
    it("needs the template engine's value model", function()
      pending(tostring(jinja_renderer):match("[^\n]*"))
    end)
  end)
  return
end

local source = os.getenv("BRINE_SOURCE_DIR") or "."
local shared = os.getenv("BRINE_SHARED_DIR")
local suite_dir = shared and (shared .. "/conformance/sls")
local lib = loadfile(source .. "/spec/conformance/jinja_spec.lua")("library")

local M = {}

-- The real render pipeline (brine.render: shebangs, the yaml and json
-- renderers, an empty SLS giving {}), as `brine render` and the state
-- system use it.
local function pipeline(text, ctx)
  return require("brine.render").pipeline(nil, text, ctx)
end

-- Python's str() of a mapping key, as the corpus writes non-string keys.
local function key_string(k)
  if type(k) == "string" then return k end
  if k == true then return "true" elseif k == false then return "false" end
  if k == data.null then return "null" end
  if math.type(k) == "float" then
    local s = string.format("%.17g", k)
    for p = 1, 17 do
      local t = string.format("%." .. p .. "g", k)
      if tonumber(t) == k then s = t; break end
    end
    if not s:find("[.eEn]") then s = s .. ".0" end
    return s
  end
  return tostring(k)
end

-- Compares a loaded value with the expected JSON value; returns nil or a
-- description of the first difference.
local function diff(got, want, path)
  local wk = type(want) == "table" and data.kind(want) or nil
  if wk == "map" and want["$float"] then
    local f = want["$float"]
    local ok = math.type(got) == "float" and ((f == "nan" and got ~= got)
      or (f == "inf" and got == math.huge) or (f == "-inf" and got == -math.huge))
    return not ok and (path .. ": expected " .. f .. " float") or nil
  end
  if wk == "map" then
    if type(got) ~= "table" or data.kind(got) ~= "map" then return path .. ": expected a map" end
    local gk, wkeys = data.keys(got), data.keys(want)
    if #gk ~= #wkeys then
      return path .. ": expected " .. #wkeys .. " keys, got " .. #gk
    end
    for i, k in ipairs(wkeys) do
      if key_string(gk[i]) ~= k then
        return path .. ": key " .. i .. " expected " .. k .. ", got " .. key_string(gk[i])
      end
      local d = diff(got[gk[i]], want[k], path .. "." .. k)
      if d then return d end
    end
    return nil
  elseif wk == "array" then
    if type(got) ~= "table" or data.kind(got) ~= "array" then
      return path .. ": expected a list"
    end
    if #got ~= #want then return path .. ": expected " .. #want .. " items, got " .. #got end
    for i = 1, #want do
      local d = diff(got[i], want[i], path .. "[" .. i .. "]")
      if d then return d end
    end
    return nil
  end
  if math.type(want) ~= math.type(got) or got ~= want then
    return path .. ": expected " .. tostring(want) .. " (" .. tostring(math.type(want) or
      type(want)) .. "), got " .. tostring(got) .. " (" .. tostring(math.type(got) or
      type(got)) .. ")"
  end
  return nil
end

function M.run_case(name)
  local dir = suite_dir .. "/" .. name
  local ctx = lib.build_ctx(dir)
  ctx.name, ctx.sls, ctx.tplfile = "input.sls", "input", "input.sls"
  local text = lib.read(dir .. "/input.sls")
  local ok, value, err = pcall(pipeline, text, ctx)
  if not ok then return false, "crash: " .. tostring(value) end
  local expected_err = lib.read(dir .. "/expected.err")
  if expected_err then
    if value ~= nil then return false, "expected failure: " .. expected_err end
    if not (tostring(err):find("line %d") or tostring(err):find(":%d+:")) then
      return false, "error names no line: " .. err
    end
    return true
  end
  if value == nil then return false, "error: " .. tostring(err) end
  local want = lib.json_decode(lib.read(dir .. "/expected.json"))
  local d = diff(value, want, "$")
  if d then return false, d end
  return true
end

function M.cases()
  local names = {}
  local p = io.popen('ls "' .. suite_dir .. '"')
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

local have_yaml = pcall(require, "brine.yaml")

if describe then
  describe("sls conformance (jinja|yaml pipeline)", function()
    if not suite_dir or not lib.read(suite_dir .. "/pipeline-simple-state/input.sls") then
      it("needs BRINE_SHARED_DIR", function() pending("shared conformance folder absent") end)
      return
    end
    if not have_yaml then
      it("needs brine.yaml", function() pending("brine.yaml is not built in") end)
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
        io.stderr:write("failing sls cases: " .. table.concat(failing, " ") .. "\n")
      end
    end)
  end)
else
  local pass, fail = 0, {}
  for _, name in ipairs(M.cases()) do
    local ok, detail = M.run_case(name)
    if ok then pass = pass + 1 else
      fail[#fail + 1] = name
      print("FAIL " .. name .. ": " .. tostring(detail))
    end
  end
  print(string.format("%d passed, %d failed", pass, #fail))
end

return M
