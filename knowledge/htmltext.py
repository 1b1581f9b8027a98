"""An HTML page's visible text with its structure: one paragraph per block element, headings
as sections, ``<pre>`` kept verbatim (line breaks and indentation), tables as Markdown rows,
list items one per line, and the page's navigation (``<nav>``, the navigation panels of
Texinfo, DocBook and LaTeX2HTML manuals, breadcrumbs, menus) left out.

Example: ``doc = html_document(soup, "manual/index.html")`` with a BeautifulSoup ``soup``.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import LoadError
from .types import Document, Section

# (a <select>'s options are a form's choices, "Search Documentation", not the page's words)
SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "nav",
        "select"}
BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol",
    "li", "table", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt",
    "dd", "figure", "figcaption", "form", "hr", "br", "address", "details", "summary", "body",
}
# navigation by class: Texinfo (header, nav-panel, section-toc, mini-toc, menu), DocBook
# (navheader, navfooter, a chapter's toc), LaTeX2HTML (navigation), Doxygen (navpath, its
# breadcrumbs; icona and levels, its class tree's letter icons and depth buttons) and the usual
# site chrome
NAV_CLASSES = {"header", "nav-panel", "navigation", "navheader", "navfooter", "section-toc",
               "mini-toc", "menu", "breadcrumb", "breadcrumbs", "skip-link", "toc-backlink",
               "toc", "list-of-tables", "list-of-figures", "list-of-examples", "childlinks",
               "navpath", "icona", "levels",
               "page-metadata", "page-header-icon"}  # (Confluence's "Created by ..., last
# modified on ..." line; a Notion page's icon)
# a heading's or definition's permalink, shown as "¶" beside it: Texinfo (copiable-anchor),
# Sphinx (headerlink), MkDocs and Jupyter Book (headerlink, anchor-link)
PERMALINK_CLASSES = {"copiable-anchor", "headerlink", "anchor-link"}
# navigation by id: Texinfo's table of contents and short table of contents (its class,
# "contents", is Doxygen's main content, so the id tells them apart)
NAV_IDS = {"SEC_Contents", "SEC_Overview",
           "breadcrumb-section", "breadcrumbs"}  # (and a Confluence export's breadcrumbs)
CELLS = ("td", "th")
REDIRECT_TEXT = 600  # characters: a refreshing page with less is a redirect, with more a page
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
INDEX_CLASSES = {"genindextable", "indextable", "genindex-jumpbox", "indexdiv"}
_SPACE = re.compile(r"\s+")
NAV_BAR_CELLS = 24
_BRACKETED = re.compile(r"\[[^\[\]]{1,24}\]")
_GENERATED = re.compile(r"\s*this (?:document|page|manual) was generated (?:by|on|using)\b",
                        re.I)
_LETTERS_UP = {"st", "nd", "rd", "th", "e", "er", "re", "o", "a", "tm", "sm"}  # (no powers)
_EXPONENT = re.compile(r"[\w+\-\u2212.() ]+")


def is_navigation(tag) -> bool:
    """Whether an element is navigation rather than content (a permalink included)."""
    if tag.get("role") in ("navigation", "menu", "menubar", "contentinfo") or tag.get(
            "id") in NAV_IDS:
        return True  # (mdBook's theme list is a menu; the site's footer: "Document generated
        # by Confluence ... Atlassian", Sphinx's "Created using Sphinx")
    if tag.get("role") == "doc-backlink" and not any(c.isalnum() for c in tag.get_text()):
        return True  # (a footnote's "↩" back to its mark; docutils' holds the note's number)
    classes = _classes(tag)
    if any(c.lower() in NAV_CLASSES for c in classes) and not _titled_header(tag, classes):
        return True
    if classes == ["summary"] and tag.parent is not None and _titled_header(
            tag.parent, _classes(tag.parent)):
        return True  # (Doxygen's links to the parts of the page, beside its title)
    if is_permalink(tag):
        return True
    if "pageSection" in classes and tag.find(id="attachments"):
        return True  # (a Confluence export's list of the page's attachments)
    if tag.name == "table":
        if "properties" in classes and tag.find_parent("header") is not None:
            return True  # (a Notion export's page properties: owner, dates, tags)
        return (tag.get("summary") or "").lower().startswith("navigation") or _link_bar(tag)
    if tag.name in ("font", "address", "small"):  # (texi2html's and LaTeX2HTML's footers)
        return bool(_GENERATED.match(tag.get_text(" ")[:200]))
    return False


def _link_bar(table) -> bool:
    """A table of bracketed link labels only, texi2html's navigation bar ("[ << ] [ >> ]
    [Top] [Contents] [Index] [ ? ]"), which has no class to tell it by."""
    cells = table.find_all(CELLS, limit=NAV_BAR_CELLS + 1)
    if not cells or len(cells) > NAV_BAR_CELLS or not table.find("a"):
        return False
    texts = [t for t in (_SPACE.sub(" ", c.get_text()).strip() for c in cells) if t]
    return bool(texts) and all(_BRACKETED.fullmatch(t) for t in texts)


def _titled_header(tag, classes: list[str]) -> bool:
    """A "header" that holds the page's title, not navigation: mdBook's heading link
    (``<a class="header">``) and Doxygen's page header (``<div class="header">`` around
    ``<div class="headertitle">``)."""
    return classes == ["header"] and (tag.name == "a" or tag.find(
        class_="headertitle", recursive=False) is not None)


def _classes(tag) -> list[str]:
    classes = tag.get("class") or ()
    return classes.split() if isinstance(classes, str) else list(classes)


def is_index(tag) -> bool:
    """Whether an element is a back-of-the-book index (Sphinx's genindex tables and letter
    bar, Texinfo's ``index-cp`` tables, DocBook's ``indexdiv`` letter groups): its entries
    name pages, and retrieval reads them last, as a PDF's index pages."""
    return any(c in INDEX_CLASSES or c.startswith("index-") and tag.name == "table"
               for c in _classes(tag))


def is_permalink(tag) -> bool:
    """Whether an element is a heading's or definition's permalink ("¶")."""
    return tag.name == "a" and any(c.lower() in PERMALINK_CLASSES for c in _classes(tag))


def _empty_category(tag) -> bool:
    """A Texinfo definition's category left empty (``@deftypefn {} {} ischar (x)``), which
    it prints as a bare ": " before the definition."""
    return any(c in ("category", "category-def") for c in _classes(tag)) and \
        not tag.get_text().strip(" :\u00a0\n")


def inline_text(tag, exponents: bool = True) -> str:
    """An element's words on one line, as a browser shows them: strings run together as
    written (``<b>k</b>ill`` is "kill", ``lib<i>foo</i>1`` is "libfoo1"), a space where a
    block, a cell or a line break ends; scripts, styles, navigation and permalinks left out;
    without ``exponents`` (a title: "Results<sup>1</sup>" is a note's mark) a superscript is
    a word of its own.

    Example: ``inline_text(soup.h2)`` gives "1.2 Simple Examples".
    """
    from bs4.element import NavigableString, PreformattedString

    parts: list[str] = []
    last = [""]  # (the text so far ends so: read once per element, not by scanning parts)

    def add(s: str) -> None:
        if s:
            parts.append(s)
            last[0] = s

    def walk(node) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, PreformattedString):  # (a comment, a doctype)
                    add(str(child))
            elif not (child.name in SKIP or is_navigation(child)):
                gap = " " if child.name in BLOCK or child.name in CELLS or (
                    child.name == "sup" and not exponents) else ""
                before, after = _exponent(child, last[0]) if exponents else ("", "")
                add(gap + before)
                walk(child)
                add(after + gap)

    walk(tag)
    return _SPACE.sub(" ", "".join(parts)).strip()


def _data_rows(table) -> list | None:
    """A table's rows as cell texts, when it is a data table (two rows or more, one with two
    cells or more); None for a layout table (an admonition box, a menu). A row that is only
    a heading (Doxygen's "Public Member Functions") comes as its (level, title); empty rows
    (Doxygen's separators) are left out."""
    rows = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue  # (a nested table's rows)
        cells = tr.find_all(CELLS, recursive=False)
        texts = [inline_text(c).replace("|", "\\|") for c in cells]
        heading = tr.find(HEADINGS)
        if heading is not None and len(cells) == 1 and inline_text(heading) == texts[0]:
            rows.append((int(heading.name[1]), texts[0]))
        elif any(texts):
            rows.append(texts)
    cells = [r for r in rows if isinstance(r, list)]
    if len(cells) >= 2 and any(sum(1 for c in r if c) >= 2 for r in cells):
        return rows
    return None


def _exponent(tag, after: str) -> tuple[str, str]:
    """What goes before and after a superscript written against the text ``after`` ends with
    that reads as an exponent or a note's number: "2^64", "2^(n - 1)", "tables^1", not
    "264", "2n - 1"; nothing around one after a space ("lists 2"), a bracketed one ("[1]"),
    a mark ("*"), an ordinal's or trademark's letters ("21st", "FooTM") or any other element."""
    text = _SPACE.sub(" ", tag.get_text()).strip() if tag.name == "sup" else ""
    if not after or after[-1].isspace() or not _EXPONENT.fullmatch(text) or \
            text.lower() in _LETTERS_UP:
        return "", ""
    return ("^(", ")") if " " in text else ("^", "")


def _start(ol) -> int:
    """An ordered list's first number (``<ol start="0">``; 1 when absent or not a number)."""
    try:
        return int(ol.get("start", 1))
    except (TypeError, ValueError):
        return 1


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
            if not indexing and is_index(child):  # (read as any other, its extent marked)
                indexing.append(length)
                visit(_Only(child), in_list, item_no)
                regions.append((indexing.pop(), length))
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
                    for row in rows:
                        if isinstance(row, tuple):
                            brk()
                            sections.append(Section(length, *row))
                            emit(row[1])
                            brk()
                        else:
                            brk(single=True)
                            emit("| " + " | ".join(row) + " |")
                    brk()
                    continue
            if name in CELLS and out and not out[-1].endswith((" ", "\n")):
                emit(" ")  # (a layout table's cells: "key may contain nulls", not "keymay")
            before, after = _exponent(child, out[-1] if out else "") if not titling else ("", "")
            if name == "sup" and titling:
                emit(" ")  # (a title's superscript is a note's mark: "Results 1", as its section)
            if before:
                emit(before)
                visit(child)
                emit(after)
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
                rubric = name == "p" and "rubric" in _classes(child)  # (Sphinx's informal
                # heading: "Examples", "Return value", under its section)
                if name in HEADINGS or rubric:
                    heading = inline_text(child, exponents=False)
                    if name in HEADINGS:
                        depth[0] = int(name[1])
                    if heading:
                        sections.append(Section(length, depth[0] + rubric, heading))
            if name in HEADINGS:
                titling.append(name)
            if name in ("ul", "ol"):
                visit(child, name, [_start(child) - 1] if name == "ol" else None)
            else:
                visit(child)
            if name in HEADINGS:
                titling.pop()
            if name in BLOCK:
                brk()

    depth = [1]  # (the level of the last h1-h6: a rubric is a heading under it)
    indexing: list[int] = []  # (where the index being read began)
    titling: list[str] = []  # (the headings being read: no exponents in a title)
    regions: list[tuple[int, int]] = []
    visit(soup.body or soup)
    raw = "".join(out)
    body = raw.strip()
    lead = len(raw) - len(raw.lstrip())  # (offsets were counted on the unstripped text)
    sections = [Section(s.start - lead, s.level, s.title) for s in sections]
    marked = tuple((max(0, lo - lead), min(len(body), hi - lead), "index")
                   for lo, hi in regions if min(len(body), hi - lead) > max(0, lo - lead))
    moved = _redirect(soup)
    if moved is not None and len(body) < REDIRECT_TEXT:
        raise LoadError(f"only a redirect (to {moved[:100]!r}), not indexed")
    if not title:
        title = next((s.title for s in sections if s.level == 1), Path(rel).stem)
    return Document(doc_id=rel, text=body, source=rel, title=title, sections=tuple(sections),
                    regions=marked)


def _redirect(soup) -> str | None:
    """Where a page that refreshes to another page points ("This page has moved"), or None."""
    for meta in soup.find_all("meta", limit=50):
        if str(meta.get("http-equiv", "")).strip().lower() == "refresh":
            _, _, url = str(meta.get("content", "")).partition("=")
            if url.strip():
                return url.strip()
    return None


class _Only:
    """A stand-in parent holding one element, so ``visit`` reads that element itself."""

    def __init__(self, child):
        self.children = [child]
