"""reStructuredText (``.rst``): the page a reader of the rendered document sees.

docutils parses the source and writes HTML, which ``htmltext`` reads as any page: headings
become sections, code blocks, lists, tables and definition lists keep their lines. Sphinx's
own roles and directives (``:ref:``, ``:py:func:``, ``.. option::``, ``.. versionadded::``),
which docutils alone does not know, are read for their text: a role as the words it shows
(":ref:`the options <opts>`" is "the options"), a directive as its argument and content
("-v, --verbose" and what it does); tables of contents, index entries and automatic API
pages (``toctree``, ``index``, ``autoclass``) have no text of their own and are left out.

A source is never allowed to reach past itself: ``include``, ``literalinclude`` and a
``raw``/``csv-table`` file or URL are not followed, and no docutils configuration file is
read.

Example: ``doc = rst_document(text, "guide/install.rst")``.
"""
from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

from .errors import LoadError
from .markdown import INLINE_CODE
from .types import Document

_SETTINGS = {
    "_disable_config": True,  # (no docutils.conf from the folder or the home directory)
    "file_insertion_enabled": False,  # (include, literalinclude, raw :file:/:url:)
    "raw_enabled": False,
    "report_level": 5, "halt_level": 5, "warning_stream": False,  # (mistakes: read past)
    "doctitle_xform": False,  # (the first title a section like the others: no subtitle)
    "line_length_limit": 1_000_000,  # (docutils' 10,000 made one long line empty the file;
    # the parse worker's time and memory limits bound a hostile one)
    "input_encoding": "unicode", "output_encoding": "unicode",
    "embed_stylesheet": False, "stylesheet_path": "", "syntax_highlight": "none",
}
# Sphinx directives without text of their own (navigation, index entries, pages generated
# from code, settings for the directives after them)
_SILENT = re.compile(r"(?:\w+:)?(?:toctree|index|highlight|currentmodule|module|program|"
                     r"literalinclude|tabularcolumns|sectionauthor|codeauthor|moduleauthor|"
                     r"auto\w*|todolist|default-domain|ifconfig|graphviz|graph|digraph|"
                     r"inheritance-diagram|plot|only|include)")
_VERSIONS = {"versionadded": "New in version {}", "versionchanged": "Changed in version {}",
             "deprecated": "Deprecated since version {}", "versionremoved": "Removed in version {}"}
# directives whose content is program text, read as a code block
_LITERAL = re.compile(r"(?:\w+:)?(?:doctest|testcode|testoutput|testsetup|productionlist|"
                      r"ipython|prompt|console|shell|jupyter-execute)")
# roles shown as code; the others (ref, doc, term, guilabel, ...) as plain words
_CODE_ROLES = re.compile(r"(?:\w+:)?(?:command|program|option|envvar|file|samp|kbd|code|"
                         r"func|meth|class|attr|mod|data|const|exc|obj|type|member|macro|"
                         r"var|enum|enumerator|struct|union|makevar|regexp|token|keyword|"
                         r"expr|texpr|directive|role|confval)")
# directives whose argument is text even with no content under it (an option not described)
_DESCRIBED = {"centered", "option", "cmdoption", "envvar", "describe", "object", "confval",
              "function", "method", "class", "attribute", "data", "exception", "macro", "type",
              "member", "var", "property"}
_PY_CLASS = re.compile(r"^[ \t]*\.\. (?:py:)?class:: *(?:[A-Z_][\w.]*|[\w.]+\()", re.M)
_DIRECTIVE_NAME = re.compile(r"^[ \t]*\.\.[ \t]+(\w[\w:+.-]{0,60})[ \t]*::", re.M)
_ROLE_NAME = re.compile(r"(?<![\w`]):(\w[\w:+.-]{0,60}):`")
# Sphinx's file-wide settings at the top of a file (":orphan:", ":tocdepth: 2"): not text
_FILE_FIELDS = re.compile(r"\A(?:[ \t]*\n)*(?::[\w-]{1,40}:[^\n]*\n)+")
_TARGET = re.compile(r"(?s)(.*?\S)\s*<[^<>]*>")  # "words <target>"


# reStructuredText in a .txt file (docutils' own documentation, PEPs, many READMEs): a title
# underlined and a directive, a link target or a footnote at a line's start
_UNDERLINED = re.compile(r"^\S[^\n]{0,200}\n([=\-~^\"'`#*+])\1{2,200}[ \t]*$", re.M)
_EXPLICIT = re.compile(r"^\.\. (?:[\w:-]{1,60}::|_[^:\n]{1,200}:|\[[#*\w-]{1,40}\] )", re.M)


def looks_like_rst(text: str) -> bool:
    """Whether plain text is reStructuredText (its markup would be read as words)."""
    head = text[:200_000]
    return bool(_UNDERLINED.search(head)) and bool(_EXPLICIT.search(head))


def rst_document(text: str, rel: str) -> tuple[Document, list[str]]:
    """The Document of a reStructuredText source and its warnings (LoadError when docutils
    cannot read it). Markup docutils finds wrong (a table whose border does not close, a
    title underlined out of order) is kept as written, with a warning, not dropped."""
    from bs4 import BeautifulSoup
    from docutils import nodes
    from docutils.core import publish_doctree, publish_from_doctree
    from docutils.writers.html5_polyglot import Writer

    from .htmltext import html_document

    _know_names(text)
    source = _FILE_FIELDS.sub(lambda m: "\n" * m.group(0).count("\n"), text, count=1)  # (the
    # lines a warning names stay the file's)
    try:
        tree = publish_doctree(source, settings_overrides=_SETTINGS)
        errors = [m for m in tree.findall(nodes.system_message) if m["level"] >= 3]
        for p in list(tree.findall(nodes.problematic)):  # (inline markup in error: as written)
            p["ids"] = []
            p.replace_self(nodes.Text(p.astext()))
        for m in errors:  # (the message goes; the markup it was about stays, as written)
            m["ids"] = []
            m.replace_self([b.deepcopy() for b in m.findall(nodes.literal_block)])
        html = publish_from_doctree(tree, writer=Writer(), settings_overrides=_SETTINGS)
    except Exception as err:  # (docutils has no error of its own for every mistake)
        raise LoadError(f"not readable as reStructuredText ({type(err).__name__}: "
                        f"{str(err)[:200]}); rename it .txt to index it as plain text") from None
    doc = html_document(BeautifulSoup(html, "lxml"), rel)
    title = "" if doc.title == "<string>" else doc.title  # (docutils' name for no title)
    title = title or next((s.title for s in doc.sections), "") or rel.rsplit("/", 1)[-1]
    warnings = []
    if errors:
        first = errors[0]
        said = " ".join(first.children[0].astext().split()) if first.children else ""
        warnings.append(f"{len(errors)} reStructuredText markup error(s), the first at line "
                        f"{first.get('line', '?')}: {said[:120]}; kept as written")
    return replace(doc, title=title), warnings


def _know_names(text: str) -> None:
    """Register a reader for every directive and role the source uses that docutils does not
    know (Sphinx's and extensions'): their text is kept, not dropped or shown as markup."""
    from docutils import utils
    from docutils.parsers.rst import directives, roles
    from docutils.parsers.rst.directives.misc import Class
    from docutils.parsers.rst.languages import en

    # Sphinx's ".. class:: UUID(hex=None)" (a Python class, described) shares its name with
    # docutils' "class" (an attribute for the next element): Sphinx's where a source uses it so
    sphinx = bool(_PY_CLASS.search(text))
    directives.register_directive("class", _directive_for("class") if sphinx else Class)
    quiet = utils.Reporter("", 5, 5)
    asked = SimpleNamespace(reporter=quiet, current_line=0)  # (where the lookup reports)
    for name in {m.lower() for m in _DIRECTIVE_NAME.findall(text)}:
        if directives.directive(name, en, asked)[0] is None:
            directives.register_directive(name, _directive_for(name))
    for name in {m.lower() for m in _ROLE_NAME.findall(text)}:
        if roles.role(name, en, 0, quiet)[0] is None:
            roles.register_local_role(name, _role)


def _directive_for(name: str):
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class _Any(dict):  # (any option is accepted and ignored)
        def __bool__(self):
            return True

        def __contains__(self, key):
            return True

        def __getitem__(self, key):
            return directives.unchanged

    class Read(Directive):
        optional_arguments, final_argument_whitespace, has_content = 1, True, True
        option_spec = _Any()

        def run(self):
            if _SILENT.fullmatch(name):
                return []
            argument = " ".join(" ".join(self.arguments).split())
            if _LITERAL.fullmatch(name):
                code = "\n".join(self.content) or argument
                return [nodes.literal_block(code, code)] if code.strip() else []
            body = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, body)
            bare = name.split(":")[-1]
            if bare in _VERSIONS or bare == "seealso":  # (a sentence, as Sphinx shows it:
                # "New in version 2.0: the --init flag ..."; the text may follow the version)
                version, _, said = argument.partition(" ") if bare in _VERSIONS else ("", "",
                                                                                   argument)
                label = _VERSIONS[bare].format(version) if bare in _VERSIONS else "See also"
                words = self.state.inline_text(said, self.lineno)[0] if said else []
                if not words and len(body) and isinstance(body[0], nodes.paragraph):
                    body[0].insert(0, nodes.Text(label + ": "))
                    return list(body.children)
                told = ":" if words or len(body) else "."
                return [nodes.paragraph("", "", nodes.Text(f"{label}{told} "), *words),
                        *body.children]
            if not self.content and bare not in _DESCRIBED:
                return []  # (an extension's: what it shows is written by code, not here)
            if not argument:
                return list(body.children)
            term = nodes.term("", "", nodes.literal(argument, argument))
            item = nodes.definition_list_item("", term, nodes.definition("", *body.children))
            return [nodes.definition_list("", item)]

    return Read


def _role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """Any role's words: "title <target>" shows its title, "~a.b.c" its last part."""
    from docutils import nodes, utils

    shown = utils.unescape(text)
    m = _TARGET.fullmatch(shown)
    if m:
        shown = m.group(1)
    elif shown.startswith("~"):
        shown = shown[1:].rsplit(".", 1)[-1]
    shown = shown.lstrip("!")
    bare = name.split(":")[-1]
    if bare in ("guilabel", "menuselection"):  # ("&File --> &Save": the accelerator marks)
        shown = re.sub(r"&(.)", r"\1", shown).replace("-->", "\N{RIGHTWARDS ARROW}")
    node = nodes.literal if _CODE_ROLES.fullmatch(name) else nodes.inline
    return [node(rawtext, shown)], []


# --- MyST: Sphinx's Markdown ------------------------------------------------------------

# a MyST directive's fence ("```{note}", ":::{tab} Linux"), a role ("{ref}`the guide`", not
# "${HOME}`" of a shell variable in code), a "(label)=" target: whether a Markdown file is MyST
# is told by a directive docutils or Sphinx knows, a role of Sphinx's, or a target
# (R Markdown's and Quarto's "```{r}", pandoc's "```{.python}" are code chunks: ``_directive``)
_MYST_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,}|:{3,})\{([\w:.+-]{1,60})\}[ \t]*(.*)$")
_MYST_FENCES = re.compile(r"^[ \t]*(?:`{3,}|~{3,}|:{3,})\{([\w:.+-]{1,60})\}", re.M)
_MYST_ROLES = re.compile(r"(?<![\w$`{])\{([A-Za-z][\w:.+-]{0,59})\}`[^`\n]", re.M)
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
# inline code first (kept as is: "`${HOME}`"), then a role
_MYST_ROLE = re.compile(INLINE_CODE + r"|(?<![\w$`{])"
                        r"\{(?P<name>[A-Za-z][\w:.+-]{0,59})\}`(?P<shown>[^`\n]{1,500})`")
_MYST_TARGET = re.compile(r"^\([^()\n]{1,100}\)=[ \t]*$", re.M)  # "(label)=" over a heading
_MYST_OPTION = re.compile(r"^[ \t]*:[\w-]{1,40}:")  # ":hidden:", ":maxdepth: 2"
_SPHINX_ROLES = re.compile(r"(?:\w+:)?(?:ref|doc|term|numref|any|download|abbr|guilabel|"
                           r"menuselection|pep|rfc|math|eq|sub|sup|index|manpage|dfn|"
                           r"external|octicon|bdg\S*)")
# directives MyST files use that docutils' registry does not hold (Sphinx's, sphinx-design's)
_SPHINX_DIRECTIVES = {"tab", "tabs", "tab-set", "tab-item", "card", "grid", "grid-item",
                      "grid-item-card", "dropdown", "button-link", "seealso", "glossary",
                      "eval-rst", "option", "describe", "envvar", "program", "confval",
                      "deprecated", "versionadded", "versionchanged", "versionremoved",
                      "centered", "hlist", "todo", "margin", "admonition", "mermaid",
                      "code-cell", "card-carousel", "article-info", "div", "embed", "glue"}


def looks_like_myst(text: str) -> bool:
    """Whether Markdown is MyST (Sphinx's): a directive fence naming a directive, a role
    Sphinx has, or a "(label)=" target."""
    return any(_directive(m.group(1)) for m in _MYST_FENCES.finditer(text)) or \
        any(_SPHINX_ROLES.fullmatch(m.group(1)) or _CODE_ROLES.fullmatch(m.group(1))
            for m in _MYST_ROLES.finditer(text)) or bool(_MYST_TARGET.search(text))


def _directive(name: str) -> bool:
    """A directive's name (``note``, ``py:function``, ``code-block``), not a code chunk's
    language (``r``, ``python``, ``.python``)."""
    from docutils.parsers.rst import directives

    name = name.lower()
    bare = name.split(":")[-1]
    return (":" in name and not name.startswith(".")) or bare in _SPHINX_DIRECTIVES or \
        bare in _CODE_DIRECTIVES or bare in _ADMONITIONS or bool(
            _SILENT.fullmatch(bare) or _LITERAL.fullmatch(bare)) or \
        bare in directives._directive_registry


_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "code-cell", "literalinclude"}
_ADMONITIONS = {"note", "warning", "tip", "hint", "important", "caution", "danger", "attention",
                "error", "seealso", "todo"}


def myst_text(text: str) -> str:
    """MyST Markdown (Sphinx's) as the page shows it, still Markdown: a directive's fence
    gives way to its label ("```{note}" is "Note", "```{tab} Linux" is "Linux",
    "```{versionadded} 22.2" is "New in version 22.2:") and its options go; a code
    directive stays a code fence (its options go too); toctree, raw and the like leave
    nothing; eval-rst keeps its text, not its directives' lines; a role shows its words
    ("{ref}`the guide <target>`" is "the guide"), never inside inline code; "(label)="
    targets and "%" comments go; a fence naming no directive ("```{r}") is a code chunk.
    Lines stay where they were (a removed line is an empty one)."""
    out: list[str] = []
    stack: list[tuple[str, str]] = []  # (fence, kind: "code" | "silent" | "open" | "rst")
    head = False  # (the options right under a directive's fence)
    for line in text.split("\n"):
        top = stack[-1] if stack else None
        bare = line.strip()
        if top is not None and bare and set(bare) == {top[0][0]} and len(bare) >= len(top[0]):
            stack.pop()  # (its closing fence)
            out.append(line if top[1] == "code" and top[0][0] != ":" else
                       "```" if top[1] == "code" else "")
            head = False
            continue
        if head and (_MYST_OPTION.match(line) or bare == "---"):
            out.append("")
            continue
        head = False
        if top is not None and top[1] == "silent":
            out.append("")
            continue
        if top is not None and top[1] == "code":
            out.append(line)
            continue
        if top is not None and top[1] == "rst" and re.match(r"[ \t]*\.\. [\w:-]+::", line):
            out.append(_RST_ARGUMENT.sub("", line))  # (".. note:: Text": the text)
            continue
        m = _MYST_FENCE.match(line)
        if m:
            indent, fence, name, argument = m.groups()
            name = name.lower()
            bare_name = name.split(":")[-1]
            code = "`" * max(3, len(fence)) if fence[0] == ":" else fence
            if not _directive(name):  # (R Markdown's "```{r}", pandoc's "```{.python}")
                stack.append((fence, "code"))
                out.append(f"{indent}{code}{name.lstrip('.').split(',')[0]}")
            elif (_SILENT.fullmatch(name) and bare_name != "only") or bare_name in (
                    "raw", "figure", "image", "mermaid", "graphviz"):
                stack.append((fence, "silent"))
                out.append("")
                head = True
            elif bare_name in _CODE_DIRECTIVES or _LITERAL.fullmatch(name):
                stack.append((fence, "code"))
                out.append(f"{indent}{code}{argument.split(' ')[0]}")
                head = True
            else:
                stack.append((fence, "rst" if bare_name == "eval-rst" else "open"))
                label = "" if bare_name in ("only", "eval-rst") else (
                    _VERSIONS[bare_name].format(argument) + ":" if bare_name in _VERSIONS
                    else argument or (bare_name.capitalize() + ":" if bare_name in
                                      _ADMONITIONS else ""))
                out.append(f"{indent}{label}" if label else "")
                head = True
            continue
        f = _FENCE.match(line)
        if f:  # (a plain code fence: what it holds is code)
            stack.append((f.group(1), "code"))
            out.append(line)
            continue
        if _MYST_TARGET.match(line) or line.startswith("%"):
            out.append("")
            continue
        out.append(_MYST_ROLE.sub(_myst_role, line))
    return "\n".join(out)


_RST_ARGUMENT = re.compile(r"\.\. [\w:-]+::[ \t]*")


def _myst_role(m) -> str:
    if m.group("code") is not None:
        return m.group("code")
    shown = m.group("shown")
    target = _TARGET.fullmatch(shown)
    shown = target.group(1) if target else (
        shown[1:].rsplit(".", 1)[-1] if shown.startswith("~") else shown)
    return f"`{shown}`" if _CODE_ROLES.fullmatch(m.group("name").lower()) else shown
