-- Salt's `xml` filter: a dict (or list) rendered as an indented XML
-- document, the way SerializerExtension.format_xml builds an ElementTree
-- and pretty-prints it with minidom (indent of one space).
--
-- Mapping rules, as in Salt: a key becomes an element; a scalar value
-- becomes its text; in a dict value, scalar entries become attributes and
-- dict or list entries become child elements; a list repeats its element
-- once per item.
local pyval = require("renderers.jinja.pyval")

local M = {}

local raise, kind, str = pyval.raise, pyval.kind, pyval.str

local function is_scalar(v)
  local k = kind(v)
  return k == "str" or k == "int" or k == "float" or k == "bool" or k == "bigint"
    or k == "markup"
end

local function is_container(v)
  local k = kind(v)
  return k == "dict" or k == "list"
end

-- The (tag, value) pairs of a value, as Salt's normalize_iter gives them.
local function normalize(v)
  local k = kind(v)
  if k == "list" or k == "tuple" then
    return {}
  end
  if k == "dict" then
    local out = {}
    for i, key in ipairs(pyval.keys(v)) do out[i] = { key, v[key] } end
    return out
  end
  raise("TemplateRuntimeError", "Value is not a dict or list. Cannot render as XML")
end

local function new_element(tag, parent)
  local e = { tag = str(tag), attrib = {}, children = {} }
  if parent then parent.children[#parent.children + 1] = e end
  return e
end

local function build(pairs_list, parent)
  local last
  for _, pair in ipairs(pairs_list) do
    local tag, value = pair[1], pair[2]
    if kind(value) == "list" then
      for _, item in ipairs(value) do build({ { tag, item } }, parent) end
    else
      local sub = new_element(tag, parent)
      last = sub
      if is_scalar(value) then
        sub.text = str(value)
      else
        if kind(value) == "dict" then
          for _, key in ipairs(pyval.keys(value)) do
            local val = value[key]
            if not is_container(val) then sub.attrib[#sub.attrib + 1] = { str(key), str(val) } end
          end
        end
        for _, item in ipairs(normalize(value)) do
          if is_container(item[2]) then build({ item }, sub) end
        end
      end
    end
  end
  return last
end

local function esc_text(s)
  return (s:gsub("[&<>]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }))
end

local function esc_attr(s)
  return (s:gsub('[&<>"\n\r\t]', { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["\n"] = "&#10;", ["\r"] = "&#13;", ["\t"] = "&#9;" }))
end

local function write(e, indent, out)
  local open = indent .. "<" .. e.tag
  for _, a in ipairs(e.attrib) do open = open .. " " .. a[1] .. '="' .. esc_attr(a[2]) .. '"' end
  if #e.children == 0 then
    if e.text and e.text ~= "" then
      out[#out + 1] = open .. ">" .. esc_text(e.text) .. "</" .. e.tag .. ">\n"
    else
      out[#out + 1] = open .. "/>\n"
    end
    return
  end
  out[#out + 1] = open .. ">\n"
  for _, c in ipairs(e.children) do write(c, indent .. " ", out) end
  out[#out + 1] = indent .. "</" .. e.tag .. ">\n"
end

---The XML document for value v, as Salt's `xml` filter prints it.
function M.format(v)
  local root = build(normalize(v), nil)
  if not root then raise("TemplateRuntimeError", "Value is empty. Cannot render as XML") end
  local out = { '<?xml version="1.0" ?>\n' }
  write(root, "", out)
  return table.concat(out)
end

return M
