-- pandoc's reading of LaTeX, as knowledge/latex.py wants it (``logos`` is defined before
-- this by latex.py: "\\LaTeX" -> "LaTeX"). What pandoc does not know it keeps as raw TeX,
-- which its HTML leaves out: here an unknown command with words in its arguments stays as
-- written (`\cs{MakeUppercase}`, `\newterm{widget}{a small device}`), an unknown
-- environment's inside is read (tcolorbox, multicols, a Beamer frame), layout commands go.

local layout = {"space", "skip", "length", "penalty", "counter", "hyphenation", "break",
                "newpage", "clearpage", "setup", "style"}

local function worded(text)
  -- `\name` followed only by [options] and {arguments}, one of them holding a word
  local name, rest = text:match("^\\(%a+)%*?(.*)$")
  if not name then return false end
  local lower = name:lower()
  for _, word in ipairs(layout) do
    if lower:find(word, 1, true) then return false end
  end
  local words = false
  rest = rest:gsub("^%s+", "")
  while #rest > 0 do
    local group = rest:match("^%b{}") or rest:match("^%b[]")
    if not group then return false end
    if group:sub(1, 1) == "{" and group:match("%w") then words = true end
    rest = rest:sub(#group + 1):gsub("^%s+", "")
  end
  return words
end

function RawInline(el)
  if el.format ~= "latex" and el.format ~= "tex" then return nil end
  local name = el.text:match("^(\\%a+)%s*{?%s*}?%s*$")
  if name and logos[name] then return pandoc.Str(logos[name]) end
  if worded(el.text) then return pandoc.Code(el.text) end
  return {}
end

local function inside(text)
  -- the body of `\begin{env}[options]...\end{env}`, or nil
  local body = text:match("^%s*\\begin%s*%b{}(.*)\\end%s*%b{}%s*$")
  if body == nil then return nil end
  return (body:gsub("^%s*%b[]", ""))
end

function RawBlock(el)
  if el.format ~= "latex" and el.format ~= "tex" then return nil end
  local body = inside(el.text)
  if body and body:match("%w") then
    local ok, doc = pcall(pandoc.read, body, "latex+raw_tex")
    if ok then
      local div = pandoc.walk_block(pandoc.Div(doc.blocks),
                                    {RawInline = RawInline, RawBlock = RawBlock, Cite = Cite})
      return div.content
    end
  end
  if worded(el.text) then return pandoc.Para({pandoc.Code(el.text)}) end
  return {}
end

function Cite(el)
  -- "[see a3, p. 5]": without a bibliography pandoc's HTML shows nothing of a citation
  local parts = {}
  for _, c in ipairs(el.citations) do
    local prefix = pandoc.utils.stringify(c.prefix)
    local suffix = pandoc.utils.stringify(c.suffix):gsub("^%s*,?%s*", "")
    local s = (prefix ~= "" and prefix .. " " or "") .. c.id
    table.insert(parts, suffix ~= "" and s .. ", " .. suffix or s)
  end
  return pandoc.Str("[" .. table.concat(parts, "; ") .. "]")
end

function Pandoc(doc)
  -- the abstract, which pandoc keeps as metadata, first
  local abstract = doc.meta.abstract
  if abstract ~= nil then
    local blocks = pandoc.utils.type(abstract) == "Blocks" and abstract
                   or {pandoc.Para(abstract)}
    local div = pandoc.walk_block(pandoc.Div(blocks),
                                  {RawInline = RawInline, RawBlock = RawBlock, Cite = Cite})
    local body = {pandoc.Header(1, "Abstract")}
    for _, b in ipairs(div.content) do table.insert(body, b) end
    for _, b in ipairs(doc.blocks) do table.insert(body, b) end
    doc.blocks = body
  end
  return doc
end
