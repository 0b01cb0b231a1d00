-- Renders the cases of tools/jinja-diff/diff.py with brine's template
-- engine: reads a JSON list of cases ({source=, vars=, files=}) and writes
-- a JSON list of results, each the rendered text or "ERROR <message>".
-- Usage: brine lua tools/jinja-diff/render.lua CASES.json RESULTS.json
local jinja = require "renderers.jinja.init"
local json = require "brine.json"
local data = require "brine.data"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- A case with files renders main.j from a folder of its own (the files
-- are already written there by the driver); others render their source.
local function render(case)
  local env = jinja.new_environment({ root = case.root })
  local out, err
  if case.root then
    out, err = env:render_file("main.j", case.vars)
  else
    out, err = env:render_string(case.source, case.vars, "t")
  end
  if out then return out end
  return "ERROR " .. err:match("^[^\n]*")
end

local cases = json.decode(read(arg[1]))
local results = {}
for i, case in ipairs(cases) do results[i] = render(case) end
write(arg[2], json.encode(data.array(results)))
