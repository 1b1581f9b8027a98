"""An HTML page's visible text with its structure: one paragraph per block element, headings
as sections, ``<pre>`` kept verbatim (line breaks and indentation), tables as Markdown rows,
list items one per line, and the page's navigation (``<nav>``, the navigation panels of
Texinfo, DocBook and LaTeX2HTML manuals, breadcrumbs, menus) left out.

Example: ``doc = html_document(soup, "manual/index.html")`` with a BeautifulSoup ``soup``.
"""
from __future__ import annotations

import re
from pathlib import Path

from .types import Document, Section

SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav"}
BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol",
    "li", "table", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt",
    "dd", "figure", "figcaption", "form", "hr", "br", "address", "details", "summary", "body",
}
# navigation by class: Texinfo (header, nav-panel, section-toc, mini-toc, menu), DocBook
# (navheader, navfooter, a chapter's toc), LaTeX2HTML (navigation), and the usual site chrome
NAV_CLASSES = {"header", "nav-panel", "navigation", "navheader", "navfooter", "section-toc",
               "mini-toc", "menu", "breadcrumb", "breadcrumbs", "skip-link", "toc-backlink",
               "toc", "list-of-tables", "list-of-figures", "list-of-examples", "childlinks"}
# a heading's or definition's permalink, shown as "¶" beside it: Texinfo (copiable-anchor),
# Sphinx (headerlink), MkDocs and Jupyter Book (headerlink, anchor-link)
PERMALINK_CLASSES = {"copiable-anchor", "headerlink", "anchor-link"}
# navigation by id: Texinfo's table of contents and short table of contents (its class,
# "contents", is Doxygen's main content, so the id tells them apart)
NAV_IDS = {"SEC_Contents", "SEC_Overview"}
_SPACE = re.compile(r"\s+")


def is_navigation(tag) -> bool:
    """Whether an element is navigation rather than content (a permalink included)."""
    if tag.get("role") in ("navigation", "menu", "menubar") or tag.get("id") in NAV_IDS:
        return True  # (mdBook's theme list is a menu)
    if any(c.lower() in NAV_CLASSES for c in _classes(tag)) and not (
            tag.name == "a" and _classes(tag) == ["header"]):  # (mdBook's heading link)
        return True
    if is_permalink(tag):
        return True
    summary = (tag.get("summary") or "").lower()
    return tag.name == "table" and summary.startswith("navigation")


def _classes(tag) -> list[str]:
    classes = tag.get("class") or ()
    return classes.split() if isinstance(classes, str) else list(classes)


def is_permalink(tag) -> bool:
    """Whether an element is a heading's or definition's permalink ("¶")."""
    return tag.name == "a" and any(c.lower() in PERMALINK_CLASSES for c in _classes(tag))


def _empty_category(tag) -> bool:
    """A Texinfo definition's category left empty (``@deftypefn {} {} ischar (x)``), which
    it prints as a bare ": " before the definition."""
    return any(c in ("category", "category-def") for c in _classes(tag)) and \
        not tag.get_text().strip(" :\u00a0\n")


def _heading_text(tag) -> str:
    """A heading's words, as ``get_text`` gives them, without its permalink."""
    from bs4 import NavigableString

    words = []
    for t in tag.find_all(string=True):
        if type(t) is not NavigableString or not t.strip():
            continue  # (a comment, a CDATA section, blank)
        node = t.parent
        while node is not None and node is not tag and not (node.name in SKIP
                                                            or is_permalink(node)):
            node = node.parent
        if node is tag:
            words.append(t.strip())
    return " ".join(words)


def _data_rows(table) -> list[list[str]] | None:
    """A table's rows as cell texts, when it is a data table (two rows or more, one with two
    cells or more); None for a layout table (an admonition box, a menu)."""
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # (a nested table's rows)
        cells = [_SPACE.sub(" ", c.get_text(" ", strip=True)).replace("|", "\\|")
                 for c in tr.find_all(("td", "th"), recursive=False)]
        rows.append(cells)
    if len(rows) >= 2 and any(sum(1 for c in r if c) >= 2 for r in rows):
        return rows
    return None


def html_document(soup, rel: str) -> Document:
    """The Document of a parsed page (raises RecursionError when nested too deeply)."""
    from bs4 import Comment, Doctype, NavigableString

    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    out: list[str] = []
    sections: list[Section] = []
    markers: set[str] = set()
    length = 0

    def emit(s: str) -> None:
        nonlocal length
        out.append(s)
        length += len(s)

    def trim() -> None:
        nonlocal length
        if out and out[-1].endswith(" "):
            stripped = out[-1].rstrip(" ")
            length -= len(out[-1]) - len(stripped)
            out[-1] = stripped

    def brk(single: bool = False) -> None:
        """A paragraph break (a line break between list items)."""
        if not out or out[-1] in markers:
            return  # (a list item's first paragraph stays on its mark's line)
        trim()
        tail = "".join(out[-2:])
        want = "\n" if single else "\n\n"
        if not tail.endswith(want):
            emit("\n" if tail.endswith("\n") else want)

    def visit(node, in_list: str | None = None, item_no: list | None = None) -> None:
        for child in node.children:
            if isinstance(child, (Comment, Doctype)):
                continue
            if isinstance(child, NavigableString):
                s = _SPACE.sub(" ", str(child))
                if not out or out[-1].endswith((" ", "\n")):
                    s = s.lstrip()
                if s:
                    emit(s)
                continue
            name = child.name
            if name in SKIP or is_navigation(child) or _empty_category(child):
                continue
            if name == "pre":
                brk()
                emit(child.get_text().strip("\n").rstrip())
                brk()
                continue
            if name == "table":
                rows = _data_rows(child)
                if rows is not None:
                    brk()
                    emit("\n".join("| " + " | ".join(r) + " |" for r in rows))
                    brk()
                    continue
            if name == "li":
                brk(single=True)
                if item_no is not None:
                    item_no[0] += 1
                    mark = f"{item_no[0]}. "
                else:
                    mark = "- "
                markers.add(mark)
                emit(mark)
                visit(child)
                brk(single=True)
                continue
            if name in BLOCK:
                brk()
                if name in {"h1", "h2", "h3", "h4", "h5", "h6"}:
                    heading = _heading_text(child)
                    if heading:
                        sections.append(Section(length, int(name[1]), heading))
            if name in ("ul", "ol"):
                visit(child, name, [0] if name == "ol" else None)
            else:
                visit(child)
            if name in BLOCK:
                brk()

    visit(soup.body or soup)
    raw = "".join(out)
    body = raw.strip()
    lead = len(raw) - len(raw.lstrip())  # (offsets were counted on the unstripped text)
    sections = [Section(s.start - lead, s.level, s.title) for s in sections]
    if not title:
        title = next((s.title for s in sections if s.level == 1), Path(rel).stem)
    return Document(doc_id=rel, text=body, source=rel, title=title, sections=tuple(sections))
