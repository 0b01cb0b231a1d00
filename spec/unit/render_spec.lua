-- brine.render: pipelines and shebangs as Salt reads them, where renderers
-- are found (the user's folders first), how salt:// paths resolve against
-- file_roots, and render.template, which the rendering modules share.
local data = require("brine.data")
local render = require("brine.render")

local root

local function write(path, text)
  os.execute("mkdir -p '" .. path:match("^(.*)/[^/]*$") .. "'")
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

describe("brine.render", function()
  setup(function()
    local p = io.popen("mktemp -d")
    root = p:read("l")
    p:close()
    write(root .. "/srv/base/a/init.sls", "x: {{ sls }}\n")
    write(root .. "/srv/base/motd", "hi {{ who }}")
    write(root .. "/srv/dev/motd", "dev")
    write(root .. "/srv/base/_renderers/mark.lua",
      "return { render = function(s) return 'root:' .. s end }")
    write(root .. "/extra/mark.lua", "return { render = function(s) return 'extra:' .. s end }")
    write(root .. "/ext/renderers/synced.lua", "return { render = function(s) return 'ext' end }")
  end)

  teardown(function()
    os.execute("rm -rf '" .. root .. "'")
  end)

  it("splits pipelines and reads Salt's old names and shebangs", function()
    local stages = render.parse(" jinja | yaml ")
    assert.equal("jinja", stages[1].name)
    assert.equal("yaml", stages[2].name)
    assert.equal("json", render.parse("json_jinja")[2].name)
    assert.equal("-s", render.parse("jinja -s|text")[1].argline)
    assert.has_error(function() render.parse("jinja||yaml") end)
    assert.equal("jinja|yaml", render.default_pipe("x.sls"))
    assert.equal("jinja", render.default_pipe("x.conf"))
    assert.same({ "yaml", "a: 1\n" }, { render.shebang("#!yaml\na: 1\n") })
    assert.same({ nil, "#!/bin/sh\n" }, { render.shebang("#!/bin/sh\n") })
  end)

  it("finds renderers in the user's folders first, then brine's", function()
    local opts = { extension_modules = root .. "/ext" }
    local ctx = { root = root .. "/srv/base", renderer_dirs = { root .. "/extra" }, opts = opts }
    assert.equal("extra:x", render.find("mark", ctx).render("x"))
    ctx.renderer_dirs = nil
    assert.equal("root:x", render.find("mark", ctx).render("x"))
    assert.equal("ext", render.find("synced", ctx).render("x"))
    assert.equal("x", render.find("text", ctx).render("x"))
    local none, err = render.find("nosuch", ctx)
    assert.is_nil(none)
    assert.equal("the renderer 'nosuch' is not available", err)
    assert.is_nil((render.find("../x", ctx)))
  end)

  it("resolves salt:// paths in the saltenv's file_roots", function()
    local opts = { file_roots = data.map({ { "base", data.array({ root .. "/srv/base" }) },
      { "dev", data.array({ root .. "/srv/dev", root .. "/srv/base" }) } }) }
    assert.same({ root .. "/srv/base/motd", root .. "/srv/base" },
      { render.locate(opts, "salt://motd") })
    assert.equal(root .. "/srv/dev/motd", render.locate(opts, "salt://motd", "dev"))
    assert.equal(root .. "/srv/dev/motd", render.locate(opts, "salt://motd?saltenv=dev"))
    assert.equal(root .. "/srv/base/a/init.sls", render.locate(opts, "salt://a/init.sls", "dev"))
    assert.matches("bad salt:// path", select(2, render.locate(opts, "salt://../etc/passwd")))
    assert.matches("not found in saltenv 'base'", select(2, render.locate(opts, "salt://nope")))
    assert.equal(root .. "/srv/base/motd", render.locate(opts, root .. "/srv/base/motd"))
    assert.is_nil((render.locate(opts, root .. "/srv/base")))
  end)

  it("renders a file as the SLS its path names, or a string", function()
    local opts = { file_roots = data.map({ { "base", data.array({ root .. "/srv/base" }) } }) }
    local out = render.template({ path = "salt://a/init.sls", pipe = "jinja|yaml", opts = opts })
    assert.equal("a", out.x)
    assert.equal("hi you", render.template({ path = "salt://motd", pipe = "jinja", opts = opts,
      context = { who = "you" } }))
    assert.equal("3", render.template({ string = "{{ 1 + 2 }}", pipe = "jinja", opts = opts }))
    local none, err = render.template({ string = "{{ 1 +", pipe = "jinja", opts = opts })
    assert.is_nil(none)
    assert.matches("TemplateSyntaxError.*<string>, line 1", err)
  end)
end)
