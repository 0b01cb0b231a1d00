-- Real formulas through the SLS pipeline: every SLS file of the fifteen
-- formulas in $BRINE_SHARED_DIR/formulas-real is rendered through jinja|yaml
-- with the corpus's fixed grains and the formula's own pillar (itself
-- rendered first), `salt[...]` being brine's real execution modules, as a
-- masterless minion (file_client local) renders them. Each must give data.
-- The few that Salt itself cannot render with this pillar and these grains
-- must fail the same way, naming the line. Map stacks (grains.filter_by
-- chains, libmapstack, libtofs) are checked against values worked out by
-- hand from the formulas' YAML files. Compiling states (include, extend,
-- requisites) is the state compiler's job and not checked here.
local data = require "brine.data"

local shared = os.getenv("BRINE_SHARED_DIR")
local corpus = shared and (shared .. "/formulas-real")

local source = os.getenv("BRINE_SOURCE_DIR") or "."
local read = dofile(source .. "/spec/support/conformance.lua").read

if not corpus or not read(corpus .. "/grains.yaml") then
  describe("real formulas", function()
    it("needs BRINE_SHARED_DIR/formulas-real", function()
      pending("BRINE_SHARED_DIR does not hold formulas-real; formulas skipped")
    end)
  end)
  return
end

local yaml = require "brine.yaml"
local json = require "brine.json"
local render = require "brine.render"
local loader = require "brine.loader"
local config = require "brine.config"

local FORMULAS = { "apache", "docker", "fail2ban", "firewalld", "keepalived", "locale",
  "nginx", "ntp", "openssh", "postgres", "salt", "sudoers", "systemd", "timezone", "users" }

-- SLS files that Salt cannot render either, with these grains and this
-- pillar, and the message that says why.
local SALT_FAILS = {
  -- `rules: {enabled: ~}` in the pillar: rule_details is None.
  ["apache/config/modules/mod_security/rules.sls"] = "'None' has no attribute 'get'",
  -- a CentOS-only SLS reading a pillar key the example does not have
  ["ntp/local_server/init.sls"] = "has no attribute 'ntpservers'",
  -- prints pillar lists inside quotes: ''['wheel', ...]'' is not YAML
  ["openssh/config_ini.sls"] = "did not find expected key",
  -- a RedHat-only SLS; the Debian map has no pkgrepo_name
  ["salt/pkgrepo/redhat/install.sls"] = "has no attribute 'pkgrepo_name'",
}

-- SLS files that render to something other than a mapping in Salt too
-- (the state compiler then refuses them), with what they render to.
local SALT_NOT_MAP = {
  -- a git symbolic link stored as a plain file holding its target's name
  ["apache/config/modules/server_status.sls"] = "mod_status.sls",
}

-- SLS files that call execution functions brine does not have yet.
-- (none today: postgres/upstream.sls needed pkg.version until the pkg module)
local NEEDS = {}

local function list_sls(root, name)
  local files = {}
  local p = io.popen("cd '" .. root .. "' && find '" .. name .. "' -name '*.sls' | sort")
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

local function sls_name(rel)
  return (rel:gsub("%.sls$", ""):gsub("/init$", ""):gsub("/", "."))
end

local grains = yaml.load(read(corpus .. "/grains.yaml"))
local scratch

-- The minion a formula is rendered on: options, loader, pillar.
local function minion(name)
  local root = corpus .. "/" .. name .. "/states"
  local pillar_root = corpus .. "/" .. name .. "/pillar"
  local opts = config.defaults("minion")
  opts.id, opts.file_client, opts.__cli = "fleet-1", "local", "salt-call"
  opts.config_dir, opts.cachedir = scratch .. "/etc", scratch .. "/cache"
  opts.file_roots = data.map({ { "base", data.array({ root }) } })
  opts.pillar_roots = data.map({ { "base", data.array({ pillar_root }) } })
  opts.grains = grains
  local m = { name = name, root = root, opts = opts, pillar = data.map() }
  m.loader = loader.new(opts, { grains = grains, pillar = function() return m.pillar end })
  local path = pillar_root .. "/" .. name .. ".sls"
  local pillar, err = render.pipeline(nil, read(path), { name = path, root = pillar_root,
    sls = name, grains = grains, pillar = data.map(), opts = opts, salt = m.loader.salt })
  assert(pillar, err)
  m.pillar = pillar
  return m
end

-- Renders text as the SLS `rel` (a path under the formula's root).
local function render_sls(m, rel, text, pipe)
  local path = m.root .. "/" .. rel
  return render.pipeline(pipe, text or read(path), { name = path, root = m.root,
    sls = sls_name(rel), grains = grains, pillar = m.pillar, opts = m.opts,
    salt = m.loader.salt })
end

local function canonical(v)
  return json.encode(v)
end

describe("real formulas", function()
  setup(function()
    local p = io.popen("mktemp -d")
    scratch = p:read("l")
    p:close()
    -- formulas log (slsutil.renderer of a missing roster, failed commands)
    assert(require("brine.log").configure({ console = false, file = scratch .. "/log" }))
  end)

  teardown(function()
    require("brine.log").configure({})
    os.execute("rm -rf '" .. scratch .. "'")
  end)

  for _, name in ipairs(FORMULAS) do
    it(name .. ": every SLS renders to data", function()
      local m = minion(name)
      local problems, count = {}, 0
      for _, rel in ipairs(list_sls(m.root, name)) do
        count = count + 1
        local ok, out, err = pcall(render_sls, m, rel)
        local expected_failure = SALT_FAILS[rel]
        if not ok then
          problems[#problems + 1] = rel .. ": raised " .. tostring(out)
        elseif NEEDS[rel] then
          if out then problems[#problems + 1] = rel .. ": renders now, update NEEDS" end
        elseif expected_failure then
          if out or not err:find(expected_failure, 1, true) or not err:find("line %d") then
            problems[#problems + 1] = rel .. ": expected Salt's failure (" .. expected_failure
              .. "), got " .. tostring(err or "data")
          end
        elseif out == nil then
          problems[#problems + 1] = rel .. ": " .. err
        elseif SALT_NOT_MAP[rel] then
          if out ~= SALT_NOT_MAP[rel] then
            problems[#problems + 1] = rel .. ": expected the text " .. SALT_NOT_MAP[rel]
          end
        elseif not data.is_map(out) then
          problems[#problems + 1] = rel .. ": rendered to " .. data.kind(out) .. ", not a map"
        end
      end
      assert.is_true(count > 0)
      assert.equal("", table.concat(problems, "\n"))
    end)
  end

  it("still lacks the execution functions some SLS call", function()
    for rel, what in pairs(NEEDS) do
      pending(rel .. " needs " .. what)
    end
  end)

  it("renders a plain map.jinja SLS exactly (ntp)", function()
    local out = assert(render_sls(minion("ntp"), "ntp/init.sls"))
    assert.equal(canonical(json.decode([[{
      "ntp": {
        "pkg.installed": [{"name": "ntp"}],
        "service.running": [{"name": "ntp"}, {"enable": true},
                            {"require": [{"pkg": "ntp"}]}]},
      "ntp_conf": {
        "file.managed": [{"name": "/etc/ntp.conf"}, {"template": "jinja"},
                         {"source": "salt://ntp/ntp-client.conf"},
                         {"require": [{"pkg": "ntp"}]},
                         {"watch_in": [{"service": "ntp"}]}]}}]])), canonical(out))
  end)

  it("stacks grains.filter_by maps as Salt does (timezone map.jinja)", function()
    local m = minion("timezone")
    local out = assert(render_sls(m, "timezone/check.sls",
      "{% from 'timezone/map.jinja' import timezone with context %}{{ timezone|tojson }}",
      "jinja|json"))
    -- defaults.yaml, then osarchmap (amd64) merged in; the pillar over all
    assert.equal(canonical(json.decode([[{"name": "Europe/Berlin", "tz_UTC": "Etc/UTC",
      "utc": true, "path_localtime": "/etc/localtime",
      "path_zoneinfo": "/usr/share/zoneinfo/", "pkg": {"name": "tzdata"},
      "dbus": {"pkg": "dbus", "service": "dbus", "run_service": true},
      "arch": "amd64"}]])), canonical(out))
  end)

  it("stacks parameters with libmapstack and lists TOFS sources (openssh)", function()
    local m = minion("openssh")
    local out = assert(render_sls(m, "openssh/check.sls",
      "{% from 'openssh/map.jinja' import mapdata with context %}"
      .. "service: {{ mapdata.openssh.service }}\n"
      .. "allow: {{ mapdata.sshd_config.AllowGroups|json }}\n"))
    assert.equal("ssh", out.service)
    assert.equal(canonical(json.decode('["wheel", "staff", "imperial"]')), canonical(out.allow))
    local config_sls = assert(render_sls(m, "openssh/config.sls"))
    local source
    for _, arg in ipairs(config_sls["sshd_config"]["file.managed"]) do
      if arg.source then source = arg.source end
    end
    assert.equal(canonical(json.decode([[[
      "salt://openssh/files/fleet-1/alt_sshd_config", "salt://openssh/files/fleet-1/sshd_config",
      "salt://openssh/files/Debian/alt_sshd_config", "salt://openssh/files/Debian/sshd_config",
      "salt://openssh/files/default/alt_sshd_config", "salt://openssh/files/default/sshd_config"
      ] ]])), canonical(source))
  end)

  it("names the formula file and line of an error inside an imported map", function()
    local m = minion("timezone")
    local out, err = render_sls(m, "timezone/check.sls",
      "{% from 'timezone/map.jinja' import timezone with context %}\n{{ timezone.nope.x }}\n")
    assert.is_nil(out)
    assert.matches("timezone/check%.sls, line 2", err)
  end)
end)
