-- `brine call`: runs one execution module function on this machine and
-- prints its return as salt-call does (`local:` then the value, through an
-- outputter), with salt-call's options, messages and exit statuses. Only
-- --local (masterless) calls exist until the master/minion work lands.
local M = {}

M.summary = "run an execution module function here (salt-call)"
M.usage = [==[
Usage: brine call [OPTIONS] FUNCTION [ARGS...]

Runs FUNCTION (module.function, e.g. test.ping) on this machine and prints
its return. ARGS are positional values or key=value keyword arguments;
each value is read as YAML, as salt-call does (1 is a number, yes is true,
'[1, 2]' is a list, a word stays text).

Options:
  --local                 run masterless (file_client: local); needed until
                          brine has a master connection
  -c, --config-dir DIR    read DIR/minion and its includes (default
                          DIR/minion.d/*.conf); DIR defaults to /etc/brine
  --id ID                 the minion id (default: the configured id, else
                          the host name)
  -m, --module-dirs DIR   an extra folder of execution modules; repeatable
  --file-root DIR         serve formulas from DIR (file_roots base)
  --pillar-root DIR       read pillar from DIR (pillar_roots base)
  -g, --grains            print the grains and exit
  -d, --doc               print the documentation of FUNCTION (or of all)
  --out, --output NAME    outputter: nested (default), json, yaml, txt,
                          raw, newline_values_only, quiet, or a user one
  --out-indent N          indent for json/yaml; negative: one line
  --out-file FILE         write the output to FILE instead of stdout
  --out-file-append       append to --out-file instead of replacing it
  --no-color              do not colour the output (it is coloured by
                          default, even into a pipe or file, as in Salt)
  --force-color           colour the output even with color: False
  -l, --log-level LEVEL   error, warning (default), info, debug, trace
  --retcode-passthrough   exit with the function's own return code
  --no-parse NAMES        comma-separated keyword names whose values stay
                          text (not read as YAML)
  -V, --versions-report   print the versions of brine and its parts and exit
  -h, --help              print this help and exit

Exit status: 0 on success; 1 when the function failed, its arguments were
wrong or it set a non-zero return code (that code with
--retcode-passthrough); 255 when the function does not exist; 2 for a
command-line or configuration error.
]==]

-- Options that take a value: long name -> opts key.
local VALUED = {
  ["-c"] = "config_dir", ["--config-dir"] = "config_dir",
  ["--id"] = "id",
  ["-m"] = "module_dirs", ["--module-dirs"] = "module_dirs",
  ["--file-root"] = "file_root", ["--pillar-root"] = "pillar_root",
  ["--out"] = "output", ["--output"] = "output",
  ["--out-indent"] = "output_indent", ["--output-indent"] = "output_indent",
  ["--out-file"] = "output_file", ["--output-file"] = "output_file",
  ["-l"] = "log_level", ["--log-level"] = "log_level",
  ["--no-parse"] = "no_parse",
}

local FLAGS = {
  ["--local"] = "local", ["-g"] = "grains_run", ["--grains"] = "grains_run",
  ["-d"] = "doc", ["--doc"] = "doc",
  ["--out-file-append"] = "output_file_append", ["--output-file-append"] = "output_file_append",
  ["--no-color"] = "no_color", ["--no-colour"] = "no_color",
  ["--force-color"] = "force_color", ["--force-colour"] = "force_color",
  ["--retcode-passthrough"] = "retcode_passthrough",
  ["-h"] = "help", ["--help"] = "help",
  ["-V"] = "versions_report", ["--versions-report"] = "versions_report",
}

local LEVELS = { quiet = 0, critical = 1, error = 2, warning = 3, info = 4, profile = 5,
  debug = 6, trace = 7, garbage = 8, all = 9 }

--- Parses the command line into { options, words }; returns nil and a
--- message on a bad option.
---@param argv table
function M.parse(argv)
  local o, words = { module_dirs = {} }, {}
  local i, only_words = 1, false
  while i <= #argv do
    local a = argv[i]
    if only_words or a == "-" or a:sub(1, 1) ~= "-" then
      words[#words + 1] = a
    elseif a == "--" then
      only_words = true
    else
      local name, value = a:match("^(%-%-[^=]+)=(.*)$")
      name = name or a
      if FLAGS[name] and not value then
        o[FLAGS[name]] = true
      elseif VALUED[name] then
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then
            return nil, a .. " option requires an argument"
          end
        end
        local key = VALUED[name]
        if key == "module_dirs" then
          o.module_dirs[#o.module_dirs + 1] = value
        else
          o[key] = value
        end
      else
        return nil, "no such option: " .. a
      end
    end
    i = i + 1
  end
  if o.output_indent ~= nil then
    local n = math.tointeger(tonumber(o.output_indent))
    if not n then
      return nil, string.format("option --out-indent: invalid integer value: '%s'",
        o.output_indent)
    end
    o.output_indent = n
  end
  if o.log_level and not LEVELS[o.log_level] then
    return nil, string.format("option -l: invalid choice: '%s'", o.log_level)
  end
  return o, words
end

local function stderr(...)
  io.stderr:write(...)
end

-- brine.log when this build has it (checked without a file system search).
local function logger()
  if package.loaded["brine.log"] or package.preload["brine.log"] then
    return require("brine.log")
  end
  return nil
end

-- Logs an error as Salt's CLI does, through brine.log when it is built in.
local function log_error(text)
  local log = logger()
  if log then
    log.error(text)
  else
    stderr("[ERROR   ] ", text, "\n")
  end
end

-- Merges the command line into the configuration, as Salt's parser does.
local function apply(opts, o)
  local data = require("brine.data")
  if o.id then
    opts.id = o.id
  end
  if o["local"] then
    opts.file_client = "local"
  end
  if #o.module_dirs > 0 then
    local dirs = data.array()
    for _, d in ipairs(o.module_dirs) do
      dirs[#dirs + 1] = d
    end
    for _, d in ipairs(type(opts.module_dirs) == "table" and opts.module_dirs or {}) do
      dirs[#dirs + 1] = d
    end
    opts.module_dirs = dirs
  end
  if o.file_root then
    opts.file_roots = { base = data.array({ o.file_root }) }
  end
  if o.pillar_root then
    opts.pillar_roots = { base = data.array({ o.pillar_root }) }
  end
  for _, key in ipairs({ "output", "output_indent", "output_file", "log_level", "no_parse" }) do
    if o[key] ~= nil then
      opts[key] = o[key]
    end
  end
  opts.retcode_passthrough = o.retcode_passthrough or false
  opts["local"] = o["local"] or false
end

--- The colour decision, Salt's: --force-color wins, then --no-color, then
--- the `color` option (true by default). As in Salt, a pipe or --out-file
--- does not turn colour off; scripts pass --no-color or set color: False.
function M.use_color(opts, o)
  if o.force_color then
    return true
  elseif o.no_color then
    return false
  end
  return opts.color ~= false and opts.color ~= require("brine.data").null
end

--- Prints data through an outputter, as Salt's display_output does:
--- trailing white space removed, nothing printed for empty output.
---@return boolean|nil ok
---@return string|nil error
function M.display(data, out, opts)
  local loader = require("brine.loader")
  local outputter, found = loader.outputter(out or "nested", opts)
  if not found then
    log_error(string.format("Invalid outputter %s specified, fall back to nested", out))
  end
  local text = outputter.output(data, opts):gsub("%s+$", "")
  if opts.output_file then
    local f, err = io.open(opts.output_file, "a")
    if not f then
      return nil, err
    end
    if text ~= "" then
      f:write(text, "\n")
    end
    f:close()
  elseif text ~= "" then
    io.stdout:write(text, "\n")
  end
  return true
end

-- Python's truth of a value.
local function truthy(v, data)
  if v == false or v == data.null or v == 0 or v == "" then
    return false
  elseif type(v) == "table" then
    return next(v) ~= nil
  end
  return true
end

-- salt-call's rule: a mapping whose `result` or `success` is false (in
-- Python's sense: also None, 0, "") is a failed call.
local function is_failure(value)
  local data = require("brine.data")
  if type(value) ~= "table" or data.kind(value) ~= "map" then
    return false
  end
  for _, key in ipairs({ "result", "success" }) do
    local v = value[key]
    if v ~= nil and not truthy(v, data) then
      return true
    end
  end
  return false
end

-- salt-call's answer to a function that does not exist: the docs of the
-- functions whose names start with it, if any, else a message and 255.
local function missing(ld, fun, opts)
  local data = require("brine.data")
  local docs = data.map()
  local ok = pcall(function()
    for _, name in ipairs(ld:list_functions()) do
      if name:sub(1, #fun) == fun then
        local doc = ld:doc(name)
        if doc then
          docs[name] = doc
        end
      end
    end
  end)
  if ok and next(docs) ~= nil then
    docs[fun] = ld:missing_fun_string(fun)
    M.display(data.map({ { "local", docs } }), "nested", opts)
    return 0
  end
  stderr(ld:missing_fun_string(fun))
  local why = ld:function_error(fun)
  if why then
    stderr(" Possible reasons: ", why, "\n")
  else
    stderr("\n")
  end
  return 255
end

local function report_error(err, fun, ld, opts, trace)
  local loader = require("brine.loader")
  if loader.is_error(err) then
    if err.kind == "missing" then
      stderr(err.message, "\n")
      return 255
    elseif err.kind == "invalid_args" then
      -- as salt-call: the message on stderr, the function's usage on stdout
      stderr("\nPassed invalid arguments: ", err.message, ".\n\nUsage:\n")
      local doc = ld:doc(fun)
      if doc then
        io.stdout:write(doc, "\n")
      end
      return 1
    elseif err.kind == "execution" then
      stderr("Error running '", fun, "': ", err.message, "\n")
      return 1
    end
    stderr(err.message, "\n")
    return 1
  end
  local text = "An un-handled exception was caught by Salt's global exception handler:\n"
    .. "Exception: " .. tostring(err)
  local debug_on = LEVELS[opts.log_level] and LEVELS[opts.log_level] >= LEVELS.debug
  if debug_on and trace then
    text = text .. "\n" .. trace
  end
  log_error(text)
  return 1
end

-- Calls the function and prints the result; returns the exit status.
local function call(ld, fun, words, opts)
  local args = require("brine.args")
  local no_parse = {}
  for name in (opts.no_parse or ""):gmatch("[^,%s]+") do
    no_parse[name] = true
  end
  local pargs, kwargs = args.parse_input(words, no_parse)
  local entry = ld:entry(fun)
  if not entry then
    return missing(ld, fun, opts)
  end
  if entry.kwargs then
    kwargs.__pub_fun = fun
    kwargs.__pub_pid = require("brine.loader").pid()
    kwargs.__pub_jid = require("brine.loader").jid()
    kwargs.__pub_tgt = "salt-call"
  end
  local trace
  local results = table.pack(xpcall(function()
    return ld:call(fun, pargs, kwargs)
  end, function(e)
    trace = debug.traceback(tostring(e), 2)
    return e
  end))
  if not results[1] then
    return report_error(results[2], fun, ld, opts, trace)
  end
  local value, message = results[2], results[3]
  if value == nil and type(message) == "string" then
    stderr("Error running '", fun, "': ", message, "\n")
    return 1
  end
  local data = require("brine.data")
  if value == nil then
    value = data.null
  end
  local retcode = math.tointeger(ld.context.retcode) or 0
  if retcode == 0 and is_failure(value) then
    retcode = 1
  end
  local out = opts.output
  if out == nil or out == data.null then
    local per = entry.module.__outputter__
    out = type(per) == "table" and per[entry.name] or "nested"
  end
  opts._retcode = retcode
  local ok, err = M.display(data.map({ { "local", value } }), out, opts)
  if not ok then
    stderr("brine call: ", err, "\n")
    return 2
  end
  if opts.retcode_passthrough then
    return retcode
  end
  return retcode ~= 0 and 1 or 0
end

local function usage_error(message)
  stderr("Usage: brine call [OPTIONS] FUNCTION [ARGS...]\n\nbrine call: error: ", message, "\n")
  return 2
end

-- The options of this call: the configuration, the command line over it,
-- logging and colour set up, --out-file emptied unless appending.
local function load_options(o)
  local config = require("brine.config")
  local opts, err, warnings = config.load(o.config_dir, "minion", o.config_dir ~= nil)
  if not opts then
    return nil, err
  end
  apply(opts, o)
  config.finish(opts)
  local log = logger()
  if log then
    log.configure({ level = opts.log_level, name = "brine.call" })
    for _, text in ipairs(warnings) do
      log.warning(text)
    end
  end
  opts.color = M.use_color(opts, o)
  if o.output_file and not o.output_file_append then
    local f = io.open(o.output_file, "w")
    if f then
      f:close()
    end
  end
  return opts
end

--- Runs `brine call` with its arguments; returns the exit status.
function M.run(argv)
  local o, words = M.parse(argv)
  if not o then
    return usage_error(words)
  elseif o.help then
    io.stdout:write(M.usage)
    return 0
  elseif o.versions_report then
    local ld = require("brine.loader").new({})
    io.stdout:write(ld:call("test.versions_report"):gsub("%s+$", ""), "\n")
    return 0
  elseif not (words[1] or o.grains_run or o.doc) then
    return usage_error("Requires function, --grains or --doc")
  end
  local opts, err = load_options(o)
  if not opts then
    stderr("brine call: ", err, "\n")
    return 2
  end
  if opts.file_client ~= "local" then
    stderr("brine call: talking to a master is not built yet; run masterless with"
      .. " `brine call --local FUNCTION` (or set file_client: local)\n")
    return 2
  end
  local loader = require("brine.loader")
  local ld = loader.new(opts, loader.environment(opts))
  if o.grains_run then
    M.display({ ["local"] = ld:grains() }, opts.output or "nested", opts)
    return 0
  end
  local fun = table.remove(words, 1)
  if o.doc then
    return call(ld, "sys.doc", { fun }, opts)
  end
  return call(ld, fun, words, opts)
end

return M
