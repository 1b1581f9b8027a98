"""LaTeX sources (``paper.tex``) read as the document reads: pandoc renders them as HTML,
which ``htmltext`` reads as any page (sections as headings, lists, tables, footnotes after
the text, verbatim code kept). A command pandoc does not know (a class's ``\\cs{name}``,
``\\pkg{x}``) stays as written rather than vanishing with its argument.

pandoc runs with ``--sandbox`` (``\\input`` and ``\\include`` read nothing), in an empty
folder, bounded as mandoc is (``programs.run_bounded``). Real sources often hold TeX that
pandoc's reader rejects (a ``\\def`` with delimited parameters, doc's ``|verb|``): then
the body alone, then the body without its ``\\def`` lines, is tried; failing those, or
without pandoc, the file is indexed as its source, comments left out, and that is said.

Example: ``doc, warnings = latex_document(Path("paper.tex").read_bytes(), "paper.tex")``.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

from .errors import LoadError
from .types import VISIBLE, Document, Section

# a command pandoc does not know, with a word in its one argument, kept as its source
# (`\cs{MakeUppercase}`, `\pkg{ltcmd}`); TeX's logos as their names; any other (layout:
# `\hyphenpenalty=10000`, `\vspace{2pt}`) left out as pandoc would
LOGOS = {"LaTeXe": "LaTeX2e", "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX",
         "XeTeX": "XeTeX", "LuaTeX": "LuaTeX", "pdfTeX": "pdfTeX", "eTeX": "e-TeX",
         "ConTeXt": "ConTeXt"}
_KEEP_RAW = ("local logos = {" + ", ".join(f'["\\\\{k}"] = "{v}"' for k, v in LOGOS.items())
             + "}\n" + r"""
function RawInline(el)
  if el.format ~= "latex" and el.format ~= "tex" then return nil end
  local name = el.text:match("^(\\%a+)%s*{?%s*}?%s*$")
  if name and logos[name] then return pandoc.Str(logos[name]) end
  if el.text:match("^\\%a+%*?%s*%b{}$") and el.text:match("{[^}\\]*%w[^}\\]*}$") and
     not el.text:match("^\\[a-z]*space") and not el.text:match("^\\[a-z]*skip") then
    return pandoc.Code(el.text)
  end
  return {}
end
""").encode()
_COMMENT = re.compile(r"(?<!\\)%[^\n]*")  # ("100\% sure" is text)
_BODY = re.compile(r"\\begin\s*\{document\}(.*?)(?:\\end\s*\{document\}|\Z)", re.S)
_DEF = re.compile(r"^[ \t]*\\(?:[gex]?def|let)\\[^\n]*\n?", re.M)
_TITLE = re.compile(r"\\title\s*(?:\[[^\]]{0,300}\])?\s*\{((?:[^{}]|\{[^{}]*\}){1,300})\}")
_SECTION = re.compile(r"^[ \t]*\\(part|chapter|section|subsection|subsubsection|paragraph)\*?"
                      r"\s*(?:\[[^\]\n]{0,300}\])?\s*\{((?:[^{}\n]|\{[^{}\n]*\}){1,300})\}", re.M)
_LEVELS = {"part": 1, "chapter": 1, "section": 1, "subsection": 2, "subsubsection": 3,
           "paragraph": 4}


def latex_document(text: str, rel: str) -> tuple[Document, list[str]]:
    """The Document of a LaTeX source's text, and what was said about how it was read."""
    title = _title(text)
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        return _as_source(text, rel, title), [
            "indexed as its LaTeX source: pandoc, which renders it as the document reads, "
            "is not on this machine (Debian: apt install pandoc)"]
    body = _BODY.search(text)
    tries = [text] + ([body.group(1), _DEF.sub("", body.group(1))] if body else
                      [_DEF.sub("", text)])
    failed = None
    for source in tries:
        try:
            html = _render(pandoc, source)
        except LoadError as err:
            if failed is None:
                failed = err
            if getattr(err, "said", None) is None:
                break  # (past a bound: another try would be too)
            continue
        doc = _html_document(html, rel)
        if VISIBLE.search(doc.text):
            return replace(doc, title=title or Path(rel).stem), []
    reason = str(failed) if failed else "pandoc found no text in it"
    return _as_source(text, rel, title), [f"indexed as its LaTeX source: {reason}"]


def _render(pandoc: str, source: str) -> str:
    from .programs import run_bounded

    html = run_bounded([pandoc, "--sandbox", "--from", "latex+raw_tex", "--to", "html5",
                        "--wrap", "none", "--lua-filter", "{dir}/keep-raw.lua"],
                       source.encode("utf-8", "replace"), "pandoc",
                       files={"keep-raw.lua": _KEEP_RAW})
    return html.decode("utf-8", "replace")


def _html_document(html: str, rel: str) -> Document:
    from .loaders import _load_html

    return _load_html(f"<html><body>{html}</body></html>", rel)


def _title(text: str) -> str:
    m = _TITLE.search(_COMMENT.sub("", text[:200_000]))
    if not m:
        return ""
    title = re.sub(r"\\(" + "|".join(sorted(LOGOS, key=len, reverse=True)) + r")\b\s*(?:\{\})?",
                   lambda g: LOGOS[g.group(1)], m.group(1))
    return " ".join(re.sub(r"\\[A-Za-z]+\*?|[{}~]|\\\\", " ", title).split())[:200]


def _as_source(text: str, rel: str, title: str) -> Document:
    """The source itself, its comments left out, its sectioning commands as headings."""
    text = re.sub(r"\n{3,}", "\n\n", _COMMENT.sub("", text)).strip() + "\n"
    if not VISIBLE.search(text):
        raise LoadError("no text (a LaTeX file of comments only)")
    sections = tuple(Section(m.start(), _LEVELS[m.group(1)], " ".join(m.group(2).split()))
                     for m in _SECTION.finditer(text))
    return Document(doc_id=rel, text=text, source=rel, title=title or Path(rel).stem,
                    sections=sections)
