-- `brine key`: lists, accepts, rejects and deletes minion keys on the
-- master, as salt-key does (same flags, same listing layout). Works on the
-- key folders directly; a running master notices the change within its
-- key scan interval (a quarter second by default).
local daemon = require("brine.master.daemon")
local keys = require("brine.keys")
local posix = require("brine.posix")

local M = {}

M.summary = "list, accept, reject and delete minion keys (salt-key)"
M.usage = [==[
Usage: brine key [OPTIONS]

  -c DIR                  the configuration folder (default /etc/brine)
  -L, --list-all          list every key
  -l, --list STATE        list keys in STATE: pending (pre, un, unaccepted),
                          accepted (acc), rejected (rej), denied (den), all
  -a, --accept GLOB       accept pending keys matching GLOB
  -A, --accept-all        accept every pending key
  -r, --reject GLOB       reject pending keys matching GLOB
  -R, --reject-all        reject every pending key
  -d, --delete GLOB       delete keys matching GLOB, whatever their state
  -D, --delete-all        delete every key
  -p, --print GLOB        print the public keys matching GLOB
  -P, --print-all         print every public key
  -f, --finger GLOB       print the fingerprints of the keys matching GLOB
  -F, --finger-all        print every fingerprint (the master's own first)
  --include-accepted      -r/-R also reject accepted keys
  --include-rejected      -a/-A also accept rejected keys
  --include-denied        -a/-A/-r/-R also act on denied keys
  --include-all           all of the above
  -y, --yes               do not ask for confirmation
  -q, --quiet             print nothing but errors
  --out json              print listings as JSON
]==]

local SALT_DIRS = { accepted = "minions", denied = "minions_denied", pending = "minions_pre",
  rejected = "minions_rejected" }
-- Salt's listing order (its dict keys sorted) and headers.
local ORDER = { "accepted", "denied", "pending", "rejected" }
local HEADERS = { accepted = "Accepted Keys:", denied = "Denied Keys:",
  pending = "Unaccepted Keys:", rejected = "Rejected Keys:" }
local HEADER_COLOUR = { accepted = "\27[1;32m", denied = "\27[1;35m", pending = "\27[1;31m",
  rejected = "\27[1;34m" }
local ID_COLOUR = { accepted = "\27[0;32m", denied = "\27[0;35m", pending = "\27[0;31m",
  rejected = "\27[0;34m" }
local ENDC = "\27[0m"
local STATE_ALIASES = { pre = "pending", un = "pending", unaccepted = "pending",
  pending = "pending", acc = "accepted", accepted = "accepted", rej = "rejected",
  rejected = "rejected", den = "denied", denied = "denied", all = "all" }

local function colour()
  return posix.isatty(1) and os.getenv("NO_COLOR") == nil
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local named = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
    return named[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- Prints {state = {ids...}} (or {state = {{id, text}...}}) in Salt's layout.
local function print_listing(listing, opts, states)
  if opts.out == "json" then
    local parts = {}
    for _, state in ipairs(states) do
      local items = {}
      for _, entry in ipairs(listing[state] or {}) do
        if type(entry) == "table" then
          items[#items + 1] = string.format('        %s: %s', json_string(entry[1]),
            json_string(entry[2]))
        else
          items[#items + 1] = "        " .. json_string(entry)
        end
      end
      local open, close = "[", "]"
      if type((listing[state] or {})[1]) == "table" then
        open, close = "{", "}"
      end
      local body = #items > 0 and ("\n" .. table.concat(items, ",\n") .. "\n    ") or ""
      parts[#parts + 1] = string.format('    "%s": %s%s%s', SALT_DIRS[state] or state, open, body,
        close)
    end
    io.stdout:write("{\n", table.concat(parts, ",\n"), "\n}\n")
    return
  end
  local c = colour()
  for _, state in ipairs(states) do
    local header = HEADERS[state] or state
    io.stdout:write(c and (HEADER_COLOUR[state] or "") .. header .. ENDC or header, "\n")
    for _, entry in ipairs(listing[state] or {}) do
      local text = type(entry) == "table" and (entry[1] .. ":  " .. entry[2]) or entry
      io.stdout:write(c and (ID_COLOUR[state] or "") .. text .. ENDC or text, "\n")
    end
  end
end

local function matching(store, glob, states)
  local listing, any = {}, false
  for _, state in ipairs(states) do
    local ids = {}
    for _, id in ipairs(store:list(state)) do
      if glob == nil or posix.fnmatch(glob, id) then
        ids[#ids + 1] = id
        any = true
      end
    end
    listing[state] = ids
  end
  return listing, any
end

local function confirm(opts, verb, listing, states, default_yes)
  if opts.yes then
    return true
  end
  io.stdout:write("The following keys are going to be ", verb, ":\n")
  print_listing(listing, { out = "text" }, states)
  io.stdout:write(default_yes and "Proceed? [n/Y] " or "Proceed? [N/y] ")
  io.stdout:flush()
  local answer = (io.stdin:read("l") or ""):lower()
  if answer == "" then
    return default_yes
  end
  return answer:sub(1, 1) == "y"
end

local ACTIONS = {
  accept = { verb = "accepted", to = "accepted", from = { "pending" }, default_yes = true },
  reject = { verb = "rejected", to = "rejected", from = { "pending" }, default_yes = true },
  delete = { verb = "deleted", from = { "accepted", "denied", "pending", "rejected" },
    default_yes = false },
}

local function act(store, opts, name, glob)
  local action = ACTIONS[name]
  local from = { table.unpack(action.from) }
  if name == "accept" and opts.include_rejected then from[#from + 1] = "rejected" end
  if name == "reject" and opts.include_accepted then from[#from + 1] = "accepted" end
  if name ~= "delete" and opts.include_denied then from[#from + 1] = "denied" end
  table.sort(from)
  local listing, any = matching(store, glob, from)
  if not any then
    if not opts.quiet then
      io.stdout:write(string.format("The key glob '%s' does not match any %s keys.\n",
        glob or "*", name == "delete" and "" or "unaccepted"):gsub("any  ", "any "))
    end
    return 1
  end
  if not confirm(opts, action.verb, listing, from, action.default_yes) then
    return 1
  end
  for _, state in ipairs(from) do
    for _, id in ipairs(listing[state]) do
      local ok, err
      if name == "delete" then
        ok, err = store:remove(state, id)
      else
        -- an accepted record under the same id is replaced, never kept
        -- beside the newly accepted key
        if action.to == "accepted" and state ~= "accepted" then
          store:remove("accepted", id)
        end
        ok, err = store:move(state, action.to, id)
      end
      if not ok then
        io.stderr:write("brine key: ", err, "\n")
        return 1
      end
      if not opts.quiet then
        io.stdout:write(string.format("Key for minion %s %s.\n", id, action.verb))
      end
    end
  end
  return 0
end

local function show(store, opts, glob, what)
  local listing = matching(store, glob, ORDER)
  for _, state in ipairs(ORDER) do
    for i, id in ipairs(listing[state]) do
      local key = store:key(state, id) or "?"
      listing[state][i] = { id, what == "finger" and (keys.fingerprint(key) or "?") or key }
    end
  end
  if glob == nil and what == "finger" then
    local pub = keys.read_key(store.dir .. "/master.pub")
    if pub then
      listing.local_keys = { { "master.pub", keys.fingerprint(pub) } }
      HEADERS.local_keys = "Local Keys:"
      print_listing(listing, opts, { "local_keys", table.unpack(ORDER) })
      return 0
    end
  end
  print_listing(listing, opts, ORDER)
  return 0
end

local FLAGS = {
  ["-L"] = { "list", "all" }, ["--list-all"] = { "list", "all" },
  ["-A"] = { "accept", "*" }, ["--accept-all"] = { "accept", "*" },
  ["-R"] = { "reject", "*" }, ["--reject-all"] = { "reject", "*" },
  ["-D"] = { "delete", "*" }, ["--delete-all"] = { "delete", "*" },
  ["-P"] = { "print", "*" }, ["--print-all"] = { "print", "*" },
  ["-F"] = { "finger", nil }, ["--finger-all"] = { "finger", nil },
}
local WITH_ARG = { ["-l"] = "list", ["--list"] = "list", ["-a"] = "accept", ["--accept"] = "accept",
  ["-r"] = "reject", ["--reject"] = "reject", ["-d"] = "delete", ["--delete"] = "delete",
  ["-p"] = "print", ["--print"] = "print", ["-f"] = "finger", ["--finger"] = "finger",
  ["-c"] = "conf", ["--config-dir"] = "conf", ["--out"] = "out" }
local SWITCHES = { ["-y"] = "yes", ["--yes"] = "yes", ["-q"] = "quiet", ["--quiet"] = "quiet",
  ["--include-rejected"] = "include_rejected", ["--include-denied"] = "include_denied",
  ["--include-accepted"] = "include_accepted" }

local function parse(args)
  local opts = { conf = "/etc/brine", out = "text" }
  local i = 1
  while i <= #args do
    local a = args[i]
    local flag, inline = a:match("^(%-%-[%w-]+)=(.*)$")
    if flag then
      a = flag
    end
    if FLAGS[a] then
      opts.action, opts.arg = FLAGS[a][1], FLAGS[a][2]
    elseif WITH_ARG[a] then
      local v = inline
      if v == nil then
        i = i + 1
        v = args[i]
      end
      if v == nil then
        return nil, a .. " needs a value"
      end
      local field = WITH_ARG[a]
      if field == "conf" or field == "out" then
        opts[field] = v
      else
        opts.action, opts.arg = field, v
      end
    elseif SWITCHES[a] then
      opts[SWITCHES[a]] = true
    elseif a == "--include-all" then
      opts.include_rejected, opts.include_denied, opts.include_accepted = true, true, true
    else
      return nil, "unknown option '" .. args[i] .. "'"
    end
    i = i + 1
  end
  if opts.out ~= "json" and opts.out ~= "text" and opts.out ~= "key" then
    return nil, "--out must be json or key, not '" .. opts.out .. "'"
  end
  return opts
end

function M.run(args)
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(M.usage)
    return 0
  end
  local opts, err = parse(args)
  if not opts then
    io.stderr:write("brine key: ", err, "\n", "Try `brine key --help`.\n")
    return 2
  end
  local conf
  conf, err = daemon.load_config(opts.conf, "master")
  if not conf then
    io.stderr:write("brine key: ", err, "\n")
    return 2
  end
  local store
  store, err = keys.open(conf.pki_dir)
  if not store then
    io.stderr:write("brine key: ", err, "\n")
    return 1
  end
  local action = opts.action or "list"
  if action == "list" then
    local which = STATE_ALIASES[opts.arg or "all"]
    if not which then
      io.stderr:write("brine key: unknown key state '", opts.arg, "'\n")
      return 2
    end
    local states = which == "all" and ORDER or { which }
    print_listing(matching(store, nil, states), opts, states)
    return 0
  elseif action == "print" or action == "finger" then
    return show(store, opts, opts.arg, action)
  end
  return act(store, opts, action, opts.arg)
end

return M
