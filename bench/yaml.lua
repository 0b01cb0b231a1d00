-- YAML load throughput: brine.yaml.load over the conformance corpus inputs
-- (the yaml suite's loadable documents) and the plain YAML files of the
-- real formulas corpus, in MB/s and documents/s, best of several rounds.
-- When python3 can import PyYAML's CSafeLoader (libyaml), the same files
-- go through it too and the ratio is printed. Python is optional.
--
-- Usage: brine lua bench/yaml.lua [SHARED_DIR]
-- SHARED_DIR defaults to $BRINE_SHARED_DIR; it holds conformance/.
local yaml = require("brine.yaml")

local ROUNDS = 5
local MIN_SECONDS = 0.5   -- per round

local function read(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local s = f:read("a")
  f:close()
  return s
end

local function list(cmd)
  local out = {}
  local p = io.popen(cmd)
  for line in p:lines() do
    out[#out + 1] = line
  end
  p:close()
  table.sort(out)
  return out
end

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The documents: every file that brine loads without error.
local function corpus(shared)
  local paths = list("find " .. q(shared .. "/conformance/yaml") .. " -name input.yaml 2>/dev/null")
  for _, p in ipairs(list("find " .. q(shared .. "/formulas-real") .. " -type f \\( -name '*.yaml'"
    .. " -o -name '*.yml' -o -name '*.sls' \\) 2>/dev/null")) do
    paths[#paths + 1] = p
  end
  local docs, names, bytes = {}, {}, 0
  for _, path in ipairs(paths) do
    local text = read(path)
    if text and not text:find("{[%%{#]") and yaml.load(text) ~= nil then
      docs[#docs + 1] = text
      names[#names + 1] = path
      bytes = bytes + #text
    end
  end
  return docs, names, bytes
end

local function bench_brine(docs)
  local best = math.huge
  local reps_done
  for _ = 1, ROUNDS do
    local reps, t0 = 0, os.clock()
    repeat
      for i = 1, #docs do
        yaml.load(docs[i])
      end
      reps = reps + 1
    until os.clock() - t0 >= MIN_SECONDS
    local per_pass = (os.clock() - t0) / reps
    if per_pass < best then
      best, reps_done = per_pass, reps
    end
  end
  return best, reps_done
end

local PYTHON = [[
import sys, time
import yaml
loader = yaml.CSafeLoader
docs = []
for path in open(sys.argv[1]).read().splitlines():
    with open(path, encoding="utf-8") as f:
        docs.append(f.read())
best = None
for _ in range(int(sys.argv[2])):
    reps, t0 = 0, time.process_time()
    while True:
        for d in docs:
            yaml.load(d, Loader=loader)
        reps += 1
        if time.process_time() - t0 >= float(sys.argv[3]):
            break
    per = (time.process_time() - t0) / reps
    best = per if best is None else min(best, per)
print(best)
]]

local function bench_python(names)
  local probe = io.popen("python3 -c 'import yaml; yaml.CSafeLoader' >/dev/null 2>&1 && echo yes")
  local ok = probe:read("a"):find("yes")
  probe:close()
  if not ok then
    return nil
  end
  local list_file, script = os.tmpname(), os.tmpname()
  local f = assert(io.open(list_file, "wb"))
  f:write(table.concat(names, "\n"), "\n")
  f:close()
  f = assert(io.open(script, "wb"))
  f:write(PYTHON)
  f:close()
  local p = io.popen(string.format("python3 %s %s %d %s", q(script), q(list_file), ROUNDS,
    tostring(MIN_SECONDS)))
  local out = p:read("a")
  p:close()
  os.remove(list_file)
  os.remove(script)
  return tonumber(out)
end

local function main(shared)
  shared = shared or os.getenv("BRINE_SHARED_DIR")
  if not shared or not read(shared .. "/conformance/README.md") then
    io.stderr:write("usage: brine lua bench/yaml.lua SHARED_DIR",
      " (the folder holding conformance/)\n")
    return 2
  end
  local docs, names, bytes = corpus(shared)
  if #docs == 0 then
    io.stderr:write("no YAML documents found under ", shared, "\n")
    return 1
  end
  local mb = bytes / 1e6
  print(string.format("corpus: %d documents, %.1f KB", #docs, bytes / 1e3))
  local per_pass = bench_brine(docs)
  print(string.format("brine.yaml.load      %8.2f MB/s %10.0f docs/s  (%.3f ms per pass)",
    mb / per_pass, #docs / per_pass, per_pass * 1e3))
  local py = bench_python(names)
  if py then
    print(string.format("PyYAML CSafeLoader   %8.2f MB/s %10.0f docs/s  (%.3f ms per pass)",
      mb / py, #docs / py, py * 1e3))
    print(string.format("brine is %.1fx the speed of PyYAML's C loader", py / per_pass))
  else
    print("PyYAML's CSafeLoader is not importable by python3; comparison skipped")
  end
  return 0
end

return main((...) or (arg and arg[1]))
