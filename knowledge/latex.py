"""LaTeX sources (``paper.tex``) read as the document reads: pandoc renders them as HTML,
which ``htmltext`` reads as any page (sections as headings, lists, tables, footnotes after
the text, verbatim code kept). ``latex.lua`` shapes pandoc's reading: a command it does not
know (a class's ``\\cs{name}``) stays as written rather than vanishing with its arguments,
an environment it does not know (tcolorbox, a Beamer frame) is read for its inside, the
abstract comes first, a citation shows its key ("[lee2020, p. 5]").

pandoc runs with ``--sandbox`` (``\\input`` and ``\\include`` read nothing), in an empty
folder, bounded as mandoc is (``programs.run_bounded``). Real sources often hold TeX that
pandoc's reader rejects (a ``\\def`` with delimited parameters, doc's ``|verb|``): then
the body alone, then the body without its ``\\def`` lines, is tried; failing those, or
without pandoc, the file is indexed as its source, comments left out, and that is said.

Example: ``doc, warnings = latex_document(Path("paper.tex").read_text(), "paper.tex")``.
"""
from __future__ import annotations

import functools
import re
import shutil
from dataclasses import replace
from pathlib import Path

from .errors import LoadError
from .types import VISIBLE, Document, Section

LOGOS = {"LaTeXe": "LaTeX2e", "LaTeX": "LaTeX", "TeX": "TeX", "BibTeX": "BibTeX",
         "XeTeX": "XeTeX", "LuaTeX": "LuaTeX", "pdfTeX": "pdfTeX", "eTeX": "e-TeX",
         "ConTeXt": "ConTeXt"}  # TeX's logos, as their names
MAX_PANDOC_BYTES = 2 * 2**20  # pandoc needs about 270 times a source's size in memory: a
# larger source is indexed as it is, saying so
_FILTER = Path(__file__).with_name("latex.lua")  # (how pandoc's reading is shaped)
_COMMENT = re.compile(r"(?<!\\)%[^\n]*")  # ("100\% sure" is text)
_BODY = re.compile(r"\\begin\s*\{document\}(.*?)(?:\\end\s*\{document\}|\Z)", re.S)
# an environment whose inside is typeset as written: a "\begin{document}" or "\title" in
# one is an example, not the file's own
_VERBATIM = re.compile(r"\\begin\{((?:[A-Za-z]*[Vv]erbatim|lstlisting|minted|listing|alltt|"
                       r"filecontents|comment|[A-Za-z]*[Cc]ode|[A-Za-z]*[Ee]xample)\*?)\}")
_DEF = re.compile(r"^[ \t]*\\(?:[gex]?def|let)\\[^\n]*\n?", re.M)
_TITLE = re.compile(r"\\title\s*(?:\[[^\]]{0,300}\])?\s*\{((?:[^{}]|\{[^{}]*\}){1,300})\}")
_SECTION = re.compile(r"^[ \t]*\\(part|chapter|section|subsection|subsubsection|paragraph)\*?"
                      r"\s*(?:\[[^\]\n]{0,300}\])?\s*\{((?:[^{}\n]|\{[^{}\n]*\}){1,300})\}", re.M)
_LEVELS = {"part": 1, "chapter": 1, "section": 1, "subsection": 2, "subsubsection": 3,
           "paragraph": 4}


def latex_document(text: str, rel: str) -> tuple[Document, list[str]]:
    """The Document of a LaTeX source's text, and what was said about how it was read."""
    masked = _blank_verbatim(_COMMENT.sub(lambda m: " " * len(m.group(0)), text))
    title = _title(masked, text)
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        return _as_source(text, rel, title), [
            "indexed as its LaTeX source: pandoc, which renders it as the document reads, "
            "is not on this machine (Debian: apt install pandoc)"]
    if len(text.encode("utf-8", "replace")) > MAX_PANDOC_BYTES:
        return _as_source(text, rel, title), [
            f"indexed as its LaTeX source: larger than {MAX_PANDOC_BYTES >> 20} MB, more than "
            "pandoc reads within its memory bound"]
    body = _BODY.search(masked)
    inner = text[body.start(1):body.end(1)] if body else None
    tries = [text] + ([inner, _DEF.sub("", inner)] if inner is not None else
                      [_DEF.sub("", text)])
    failed = None
    for source in tries:
        try:
            html = _render(pandoc, source)
        except LoadError as err:
            if failed is None:
                failed = err
            if getattr(err, "said", None) is None or "out of memory" in err.said:
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
                        "--wrap", "none", "--lua-filter", "{dir}/latex.lua"],
                       source.encode("utf-8", "replace"), "pandoc",
                       files={"latex.lua": _filter()})
    return html.decode("utf-8", "replace")


@functools.lru_cache(maxsize=1)
def _filter() -> bytes:
    """latex.lua, after the table of TeX's logos it reads."""
    logos = ", ".join(f'["\\\\{k}"] = "{v}"' for k, v in LOGOS.items())
    return f"local logos = {{{logos}}}\n".encode() + _FILTER.read_bytes()


def _html_document(html: str, rel: str) -> Document:
    from .loaders import _load_html

    return _load_html(f"<html><body>{html}</body></html>", rel)


def _blank_verbatim(text: str) -> str:
    """``text`` with each verbatim-like environment blanked out, the same length (positions
    stay); one left open stays as written, as does the rest after it. Linear."""
    pieces, at = [], 0
    while m := _VERBATIM.search(text, at):
        end = text.find(f"\\end{{{m.group(1)}}}", m.end())
        if end < 0:
            break
        end += len(m.group(1)) + 6
        pieces += [text[at:m.start()], " " * (end - m.start())]
        at = end
    return "".join(pieces) + text[at:]


def _title(masked: str, text: str) -> str:
    """The \\title{...} of the file (found in ``masked``: comments and verbatim blanked)."""
    m = _TITLE.search(masked, 0, 200_000)
    if not m:
        return ""
    title = re.sub(r"\\(" + "|".join(sorted(LOGOS, key=len, reverse=True)) + r")\b\s*(?:\{\})?",
                   lambda g: LOGOS[g.group(1)], text[m.start(1):m.end(1)])
    return " ".join(re.sub(r"\\[A-Za-z]+\*?|[{}~]|\\\\", " ", title).split())[:200]


def _as_source(text: str, rel: str, title: str) -> Document:
    """The source itself, its comments left out, its sectioning commands as headings."""
    text = re.sub(r"\n{3,}", "\n\n", _COMMENT.sub("", text)).strip() + "\n"
    if not VISIBLE.search(text):
        raise LoadError("no text (a LaTeX file of comments only)")
    masked = _blank_verbatim(text)  # (an example's headings are not the file's)
    sections = tuple(Section(m.start(), _LEVELS[m.group(1)], " ".join(m.group(2).split()))
                     for m in _SECTION.finditer(masked))
    return Document(doc_id=rel, text=text, source=rel, title=title or Path(rel).stem,
                    sections=sections)
