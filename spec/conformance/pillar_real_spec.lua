-- The pillar of the fifteen real formulas in $BRINE_SHARED_DIR/formulas-real:
-- each NAME/pillar tree (top.sls giving NAME to '*', NAME.sls the formula's
-- pillar.example) compiled for the corpus's minion (id fleet-1, the grains
-- of grains.yaml) must equal the data Salt compiles from it: what the YAML
-- of NAME.sls loads to, where the file uses Jinja after the edits below,
-- which spell out how Salt's Jinja evaluates those lines for these grains.
-- Key order is compared too.
local data = require("brine.data")
local fs = require("brine.fs")
local pillar = require("brine.pillar")
local yaml = require("brine.yaml")

local shared = os.getenv("BRINE_SHARED_DIR")
local corpus = shared and (shared .. "/formulas-real")

local FORMULAS = { "apache", "docker", "fail2ban", "firewalld", "keepalived", "locale", "nginx",
  "ntp", "openssh", "postgres", "salt", "sudoers", "systemd", "timezone", "users" }

-- Removes the lines from the first one containing `from` through the next
-- one containing `to` (only that line when `to` is nil).
local function drop(from, to)
  return function(lines)
    for i, line in ipairs(lines) do
      if line:find(from, 1, true) then
        local last = i
        while to and not lines[last]:find(to, 1, true) do
          last = last + 1
        end
        for _ = i, last do
          table.remove(lines, i)
        end
        return lines
      end
    end
    error("no line holds " .. from)
  end
end

local function replace(plain, by)
  return function(lines)
    for i, line in ipairs(lines) do
      local at = line:find(plain, 1, true)
      if at then
        lines[i] = line:sub(1, at - 1) .. by .. line:sub(at + #plain)
        return lines
      end
    end
    error("no line holds " .. plain)
  end
end

-- What Salt's Jinja does to the files that use it, for os_family Debian,
-- id fleet-1 and init systemd. The others load as plain YAML (salt's
-- `{% raw %}` sits inside YAML comments).
local JINJA = {
  apache = { drop("{%- if grains.os_family in"), drop("{%- else %}", "{%- endif %}") },
  firewalld = { drop("# {%- if grains['id'] == 'salt.example.com' %}", "# {%- endif %}") },
  openssh = { replace("{{ grains['id'] }}", "fleet-1") },
  postgres = { drop("{%- if 'init' in grains", "{%- endif %}"),
    drop("{%- if grains.os_family not in"), drop("{%- endif %}") },
}

local function expected(name, path)
  local text = assert(fs.read(path))
  local edits = JINJA[name]
  if edits then
    local lines = {}
    for line in (text .. "\n"):gmatch("([^\n]*)\n") do
      lines[#lines + 1] = line
    end
    for _, edit in ipairs(edits) do
      lines = edit(lines)
    end
    text = table.concat(lines, "\n")
  end
  return assert(yaml.load(text, { name = path }))
end

-- The first difference between two values, as "path: why", or nil.
local function difference(a, b, path)
  local ka, kb = data.kind(a), data.kind(b)
  if ka ~= kb then
    return string.format("%s: %s here, %s expected", path, ka, kb)
  elseif ka == "map" then
    local keys_a, keys_b = data.keys(a), data.keys(b)
    for i = 1, math.max(#keys_a, #keys_b) do
      if keys_a[i] ~= keys_b[i] then
        return string.format("%s: key %d is %s, %s expected", path, i, tostring(keys_a[i]),
          tostring(keys_b[i]))
      end
      local d = difference(a[keys_a[i]], b[keys_b[i]], path .. ":" .. tostring(keys_a[i]))
      if d then
        return d
      end
    end
  elseif ka == "array" then
    if #a ~= #b then
      return string.format("%s: %d items, %d expected", path, #a, #b)
    end
    for i = 1, #a do
      local d = difference(a[i], b[i], path .. ":" .. (i - 1))
      if d then
        return d
      end
    end
  elseif a ~= b then
    return string.format("%s: %s, %s expected", path, tostring(a), tostring(b))
  end
  return nil
end

describe("the real formulas' pillar", function()
  if not (corpus and fs.is_dir(corpus)) then
    pending("BRINE_SHARED_DIR has no formulas-real folder")
    return
  end
  local grains = assert(yaml.load(assert(fs.read(corpus .. "/grains.yaml")),
    { name = "grains.yaml" }))

  for _, name in ipairs(FORMULAS) do
    it(name .. " compiles to its pillar.example", function()
      local root = corpus .. "/" .. name .. "/pillar"
      local opts = { id = "fleet-1", file_client = "local",
        pillar_roots = { base = data.array({ root }) } }
      local p, errors = pillar.compile(opts, grains, "fleet-1", { safe_render_error = false })
      assert.same({}, errors, table.concat(errors, "\n"))
      local want = expected(name, root .. "/" .. name .. ".sls")
      local d = difference(p, want, name)
      assert.is_nil(d, d)
    end)
  end
end)
