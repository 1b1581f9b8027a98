"""A PDF's structure: which lines are section headings (from the outline where the PDF has
one, else from font size and weight), and which pages are a table of contents or an index.

Example: ``heads = outline_headings(pages, outline)``; ``kinds = apparatus(pages, outline)``.
"""
from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from dataclasses import replace

from .layout import Line

_NORM = re.compile(r"[\W_]+")
# what may precede a bookmark's title on its heading line: "1.2", "Chapter 4", "Appendix A",
# an appendix's section "A.1"
_NUMBERING = re.compile(r"(?:chapter|appendix|part|section|sect|ch)?(?:[a-z](?=\d))?"
                        r"[0-9ivxlc]{0,12}[a-z]?")
_LEADERS = re.compile(r"(?:\.\s*){3,}\s*\S{1,8}$")
# (a line that begins with a letter, a backslash, or a section number before a word or a
# backslash: "2.8.4 \\clearmarks 31", not "2019 Revenue 120" nor a glyph table's "8 9 10 ' 13";
# then a page number or several)
_ENDS_IN_PAGE = re.compile(r"(?:[^\W\d_]|\\|\d{1,2}(?:\.\d{1,3})*\.?\s+(?:\\|[^\W\d_]))"
                           r".*?[\s,]\s*(?:\d{1,4}|[ivxlc]{1,6})"
                           r"(?:\s*[,\u2013-]\s*\d{1,4})*$", re.I)
_APPARATUS_TITLE = re.compile(r"^(?:(?:table of )?contents|short contents|list of (?:figures|"
                              r"tables|examples)|.*\bindex(?:es)?)$", re.I)


def _norm(text: str) -> str:
    return _NORM.sub("", text.lower())


def body_size(pages: list[list[Line]]) -> float:
    """The font size most of the text is set in."""
    sizes: Counter = Counter()
    for lines in pages:
        for line in lines:
            sizes[round(line.size * 2) / 2] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


class Heading:
    """A section heading: its level (1 = top), title, and (where found) its first line."""

    def __init__(self, level: int, title: str, page: int, y: float | None):
        self.level, self.title, self.page, self.y = level, title, page, y
        self.lines: list[Line] = []


RUN_IN_REACH = 3  # lines at and below a bookmark's position where its run-in title may be


def split_run_in(pages: list[list[Line]], outline) -> None:
    """A run-in heading (LaTeX's ``\\paragraph``: its title, a wide space, then the first line
    of the section's text), read as a line of two cells, a table row, is split in place into
    the title's line and the text's line: the title becomes the bookmark's heading and the
    text the first line of its paragraph."""
    for _, title, index, y in outline:
        want = _norm(title)
        if index >= len(pages) or not want or y is None:
            continue  # (only where the bookmark says where on the page its section begins)
        lines = pages[index]
        start = next((k for k, ln in enumerate(lines) if ln.bottom >= y - 2), len(lines))
        for k in range(start, min(start + RUN_IN_REACH, len(lines))):
            ln = lines[k]
            got = _norm(ln.text)
            if got and (got.endswith(want) and _NUMBERING.fullmatch(got[:len(got) - len(want)])
                        or len(got) >= 6 and want.startswith(got)):
                break  # (a heading line of its own, as outline_headings finds it)
            if len(ln.cells) < 2:
                continue
            (a, b), (c, _) = ln.cells[0], ln.cells[1]
            got = _norm(ln.text[a:b])
            if got.endswith(want) and _NUMBERING.fullmatch(got[:len(got) - len(want)]):
                lines[k:k + 1] = [_part(ln, 0, b), _part(ln, c, len(ln.text))]
                break


def _part(ln: Line, start: int, end: int) -> Line:
    """Characters start..end of line ``ln`` as a line of their own."""
    x1 = ln.xs[end] if end < len(ln.xs) else ln.x1
    return replace(ln, text=ln.text[start:end], xs=ln.xs[start:end], x0=ln.xs[start],
                   x1=min(x1, ln.x1),
                   cells=[(max(a, start) - start, min(b, end) - start) for a, b in ln.cells
                          if a < end and b > start],
                   raised=[(a - start, b - start) for a, b in ln.raised
                           if a >= start and b <= end],
                   mono_end=ln.mono_end and end == len(ln.text))


def outline_headings(pages: list[list[Line]], outline) -> list[Heading]:
    """Each bookmark as a Heading, with the lines on its page that print its title (found
    by comparing letters and digits, below the bookmark's position where it gives one)."""
    heads = []
    for level, title, index, y in outline:
        h = Heading(level, title, index + 1, y)
        heads.append(h)
        if index >= len(pages):
            continue
        want = _norm(title)
        if not want:
            continue
        lines = pages[index]
        start = 0
        if y is not None:  # (at or below the bookmark's position)
            start = next((k for k, ln in enumerate(lines) if ln.bottom >= y - 2), len(lines))
        below = range(start, len(lines))
        # (or just above it: dblatex's bookmarks point at a section's first line of text,
        # below its title)
        above = [k for k in range(start - 1, max(start - 1 - TITLE_ABOVE, -1), -1)
                 if y is not None and lines[k].bottom >= y - TITLE_ABOVE_PT]
        # the whole title first, below or above, then its start below: a line that only
        # opens the title ("$ debuild" under the bookmark of "debuild command") is a last
        # resort, for a title whose wrapped lines do not spell it exactly
        h.lines = next((found for whole, ks in ((True, below), (True, above), (False, below))
                        for k in ks if (found := _title_lines(lines, k, want, whole))), [])
    return heads


TITLE_ABOVE, TITLE_ABOVE_PT = 2, 48  # lines, and points, above its bookmark a title may be


def _title_lines(lines: list[Line], k: int, want: str, whole: bool) -> list[Line]:
    """Line ``k`` and those after it that print the title ``want`` (``_norm``ed), with its
    number before it, or its start (a title wrapped onto the next lines; with ``whole``,
    only where they spell all of it); else []."""
    got = _norm(lines[k].text)
    if not got or not (got.endswith(want) and _NUMBERING.fullmatch(got[:len(got) - len(want)])
                       or len(got) >= 6 and want.startswith(got)):
        return []
    out = [lines[k]]
    rest = want[len(got):] if want.startswith(got) else ""
    j = k + 1
    while rest and j < len(lines):
        nxt = _norm(lines[j].text)
        if not nxt or not rest.startswith(nxt):
            break
        out.append(lines[j])
        rest = rest[len(nxt):]
        j += 1
    return [] if whole and rest else out


def font_headings(pages: list[list[Line]], body: float) -> list[Heading]:
    """Headings of a PDF without an outline: short lines set larger than the body text
    (levels by size, largest first), and short bold lines of their own at body size."""
    big = sorted({round(ln.size * 2) / 2 for lines in pages for ln in lines
                  if ln.size >= 1.15 * body}, reverse=True)
    level_of = {s: i + 1 for i, s in enumerate(big[:5])}
    # (bold sets a line apart only where the body is not bold: dvips' manual says its CMR10 is)
    at_body = [ln.bold for lines in pages for ln in lines if abs(ln.size - body) < 0.1 * body]
    bold_apart = sum(at_body) < 0.5 * len(at_body)
    heads = []
    for p, lines in enumerate(pages):
        for k, ln in enumerate(lines):
            text = ln.text.strip()
            if not text or ln.mono or ln.words > 16 or not any(c.isalpha() for c in text):
                continue
            level = level_of.get(round(ln.size * 2) / 2)
            alone = (k + 1 == len(lines) or lines[k + 1].top - ln.bottom > 0.4 * body
                     or lines[k + 1].flow != ln.flow)
            if level is None and ln.bold and bold_apart and alone \
                    and abs(ln.size - body) < 0.1 * body \
                    and not text.endswith((".", ":", ",", ";")) and len(ln.cells) == 1:
                level = len(level_of) + 1
            if level is None:
                continue
            prev = heads[-1] if heads else None
            if prev and prev.lines and prev.lines[-1] is lines[k - 1] and k and \
                    round(prev.lines[-1].size) == round(ln.size) and \
                    ln.top - lines[k - 1].bottom < 0.6 * ln.size:
                prev.lines.append(ln)  # a title wrapped onto a second line
                prev.title += " " + text
                continue
            h = Heading(level, text, p + 1, ln.top)
            h.lines.append(ln)
            heads.append(h)
    return heads


def apparatus(pages: list[list[Line]], outline) -> dict[int, tuple[str, float, float]]:
    """{page index: ("toc" or "index", top, bottom)} for the pages that are a table of
    contents or an index, from height ``top`` to ``bottom`` on the page: from a bookmark
    titled so to the next bookmark on a later page (gnuplot's index begins below the text's
    last section), or whole pages with most lines ending in a page number (dot leaders, near
    the front or back) where no bookmarked one begins."""
    n = len(pages)
    kinds: dict[int, tuple[str, float, float]] = {}

    def mark(p: int, kind: str, top: float, bottom: float) -> None:
        was = kinds.get(p)
        if was and was[0] == kind:
            top, bottom = min(top, was[1]), max(bottom, was[2])
        kinds[p] = (kind, top, bottom)

    marks = sorted((index, y or 0.0, title) for _, title, index, y in outline)
    for j, (index, y, title) in enumerate(marks):
        kind = "index" if "index" in title.lower() else "toc"
        # (at the back, or the front: gnuplot's manual has a section on its `index` keyword)
        if _APPARATUS_TITLE.match(title.strip()) and (
                index >= 0.7 * n if kind == "index" else index < 0.3 * n):
            end, end_y = next(((i, y2) for i, y2, _ in marks[j + 1:] if i > index),
                              (n if j + 1 == len(marks) else index + 1, 0.0))
            # (a bookmark may point a little below its title: memman's index)
            y = min([ln.top for ln in pages[index] if not ln.turn and y - 150 <= ln.top < y
                     and " ".join(ln.text.split()).lower() == " ".join(title.split()).lower()],
                    default=y) if index < n else y
            for p in range(index, min(end, n)):
                mark(p, kind, y if p == index else 0.0, math.inf)
            if end < n and end_y > 0:
                mark(end, kind, 0.0, end_y)
    for p, (kind, top, bottom) in list(kinds.items()):  # (prose under such a title: a
        # section on tables of contents in a manual about them is no table of contents)
        texts = [ln.text.strip() for ln in pages[p]
                 if not ln.turn and top - 2 <= ln.top < bottom]
        if _prose(texts):
            del kinds[p]
    for p, lines in enumerate(pages):
        if p in kinds and kinds[p][1] > 0:
            continue  # (where a bookmarked one begins: the lines above it are not)
        texts = [ln.text.strip() for ln in lines if ln.text.strip()]
        if len(texts) < 5:
            continue
        leaders = sum(1 for t in texts if _LEADERS.search(t))
        numbered = sum(1 for t in texts if _ENDS_IN_PAGE.match(t))
        edge = p < 0.15 * n or p >= 0.75 * n
        if leaders >= max(3, 0.4 * len(texts)) or (edge and numbered >= 0.6 * len(texts)):
            kinds[p] = (kinds[p][0] if p in kinds else "index" if p >= n / 2 else "toc",
                        0.0, math.inf)
    return kinds


def _prose(texts: list[str]) -> bool:
    """Whether lines are text: five or more, of eight words or more (the median), under a
    fifth of them ending in a page number (contents of short titles, or paged "A-1", are
    not)."""
    texts = [t for t in texts if t]
    ends = sum(1 for t in texts if _LEADERS.search(t) or _ENDS_IN_PAGE.match(t))
    return len(texts) >= 5 and ends < 0.2 * len(texts) and \
        statistics.median(len(t.split()) for t in texts) >= 8


def median_gap(pages: list[list[Line]], body: float) -> float:
    """The usual space between consecutive lines of body text in one flow."""
    gaps = [b.top - a.bottom for lines in pages for a, b in zip(lines, lines[1:])
            if a.flow == b.flow and abs(a.size - body) < 0.1 * body
            and abs(b.size - body) < 0.1 * body and 0 <= b.top - a.bottom < 2 * body]
    return statistics.median(gaps) if gaps else 0.2 * body
