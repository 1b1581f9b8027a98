"""Text cleaning across a PDF's pages: running headers and footers (and page numbers) found
and left out, and lines joined back into paragraphs: a word split at a line end is rejoined
where the document itself shows the joined form, a real hyphen is kept where it shows the
hyphenated one, and identifiers and URLs broken at a line end are rejoined.

Example: ``drop = running_lines(pages, labels, heights)``;
``cut, sep = join(line_a, line_b, vocabulary(lines))``.
"""
from __future__ import annotations

import re
from collections import Counter

from .layout import Line

BAND = 0.15  # headers and footers live in the top and bottom 15 % of the page
# a line found at the same end of only two pages is a running header or footer only if it is
# set apart from the text by this many of its own heights on both (a section's running head
# is, by 1.8-16 on real manuals; a repeated line of text, code or a list is not, by 0.2-1.5),
# or by half a height and it carries each page's own number ("Kapitel 2: ... 36" on page 36,
# the number at its end or beside it)
SET_APART = 1.7
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(r"(?:page\s*)?(?:\d+|[ivxlcdm]+)(?:\s*(?:of|/)\s*\d+)?", re.I)
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
_TAIL = re.compile(r"([^\W\d_][\w-]*)-$")
_HEAD = re.compile(r"^([^\W\d_][\w'’]*)")
# word endings that are no words of their own (a hyphenation's second half)
_SUFFIXES = ("ing", "tion", "sion", "ment", "ness", "able", "ible", "ally", "ity", "ive", "ized",
             "ised", "ous", "ance", "ence", "ture", "ship", "less")
_URLISH = re.compile(r"://|^www\.|^/|[\w.-]+/[\w.-]+/")


def _key(text: str) -> str:
    """A line's text with numbers blanked: the same running header on every page."""
    return _DIGITS.sub("#", " ".join(text.lower().split()))


def running_lines(pages: list[list[Line]], labels: list[str],
                  heights: list[float]) -> set[tuple[int, int]]:
    """(page index, line index) of running headers, footers and page numbers: lines at the
    top or bottom of a page that recur on other pages (numbers aside), are only a page
    number, or carry this page's label set apart at an end; and a page's first or last line
    that is its own number, wherever it is set."""
    def own(p: int) -> set[str]:
        return {labels[p] if p < len(labels) else str(p + 1), str(p + 1)}

    candidates, apart, drop = [], {}, set()
    for p, lines in enumerate(pages):
        if len(lines) < 3:
            continue  # (a page of a line or two: that is its text, not its furniture)
        order = sorted((k for k in range(len(lines)) if not lines[k].turn),
                       key=lambda k: lines[k].top)  # (turned text: a frame of its own)
        for k in order[:1] + order[-1:]:  # (dvipdfm's manual sets it at 83 % of the height)
            if lines[k].text.strip() in own(p):
                drop.add((p, k))
        for k in order[:2]:
            if lines[k].top < BAND * heights[p]:
                candidates.append((p, k, "top"))
                apart[p, k] = _apart(lines[k], [lines[i] for i in order], below=True)
        for k in order[-2:]:
            if lines[k].bottom > (1 - BAND) * heights[p] and (p, k) not in apart:
                candidates.append((p, k, "bottom"))
                apart[p, k] = _apart(lines[k], [lines[i] for i in order], below=False)
    seen: dict[tuple[str, str], set[int]] = {}
    least: dict[tuple[str, str], float] = {}  # (how far apart the group's lines are set)
    numbered: dict[tuple[str, str], bool] = {}  # (each carries its page's number at an end)
    for p, k, where in candidates:
        group = (where, _key(pages[p][k].text))
        seen.setdefault(group, set()).add(p)
        least[group] = min(least.get(group, apart[p, k]), apart[p, k])
        line, marks = pages[p][k], own(p)
        words = line.text.split()
        beside = {ln.text.strip() for ln in pages[p] if ln is not line and not ln.turn
                  and ln.top < line.bottom and ln.bottom > line.top}  # (on its row)
        numbered[group] = numbered.get(group, True) and bool(words) and (
            words[0] in marks or words[-1] in marks or bool(beside & marks))
    for p, k, where in candidates:
        line = pages[p][k]
        text = " ".join(line.text.split())
        if not text:
            continue
        marks = own(p)
        cells = [line.text[a:b].strip() for a, b in line.cells]
        group = (where, _key(text))
        repeats = len(seen[group]) >= 3 or len(seen[group]) == 2 and (
            least[group] >= SET_APART or numbered[group] and least[group] >= 0.5)
        if _PAGE_NUMBER.fullmatch(text) or (repeats and line.words <= 25) or (
                line.words <= 15 and len(cells) >= 2 and (cells[0] in marks or cells[-1] in marks)):
            drop.add((p, k))  # (a page number set apart at an end: not "1 Installing")
    return drop


def _apart(line: Line, lines: list[Line], below: bool) -> float:
    """The space between a line and the nearest line on another row toward the page's middle
    (``below`` it, or above), in the line's heights (none: far apart). A page number beside a
    running head is on its row."""
    h = max(line.bottom - line.top, 1.0)
    if below:
        gaps = [ln.top - line.bottom for ln in lines if ln.top > line.top + h / 2]
    else:
        gaps = [line.top - ln.bottom for ln in lines if ln.bottom < line.bottom - h / 2]
    return min(gaps, default=float("inf")) / h


def vocabulary(lines) -> Counter:
    """How often each word (lowercased, inner hyphens kept) occurs in the document, leaving
    out the fragments around a hyphen that ends a line."""
    counts: Counter = Counter()
    split = False  # the line before ended in a hyphen: this one's first word is a fragment
    for line in lines:
        text = line.text.rstrip()
        if split:
            text = text.lstrip()
            text = text[text.find(" ") + 1:] if " " in text else ""
        split = text.endswith("-")
        if split:
            text = text[: text.rfind(" ") + 1] if " " in text else ""
        for w in _WORD.findall(text):
            w = w.lower()
            counts[w] += 1
            if "-" in w:
                for part in w.split("-"):
                    if part:
                        counts[part] += 1
    return counts


def join(left: Line, right: Line, vocab: Counter) -> tuple[int, str]:
    """How line ``left`` continues with line ``right`` in one paragraph: (characters to cut
    from the end of left, separator). A hyphenated word is rejoined when the document uses
    the joined form more than the hyphenated one; a URL, path or identifier broken at its
    ``/``, ``_`` or a monospace hyphen continues without a space (and without the hyphen
    some typesetters add after a ``/``)."""
    a, b = left.text.rstrip(), right.text.lstrip()
    if not a or not b:
        return 0, " "
    tail = a.rsplit(None, 1)[-1]
    if tail.endswith("/-") and len(tail) > 2 and tail[-3].isalnum():
        # a path broken after its "/" with a typesetter's hyphen: debian/-|patches, and a URL
        # before its closing bracket or a home directory: debian.org/-|), gr.jp/-|~dancer
        return 1, "" if b[0].isalnum() or b[0] in "~_.)]>\"'\u201d\u2019" else " "
    if a.endswith("-") and b[0].isalpha():
        m = _TAIL.search(tail)
        if m is None or left.mono_end:
            return (0, "") if left.mono_end else (0, " ")
        head = m.group(1)
        h = _HEAD.match(b)
        word = h.group(1) if h else ""
        joined, hyphened = vocab[(head + word).lower()], vocab[(head + "-" + word).lower()]
        if joined > hyphened:
            return 1, ""
        if hyphened > joined:
            return 0, ""
        last = head.rsplit("-", 1)[-1].lower()
        if (b[0].isupper() and not head.isupper()) or (
                len(last) > 2 and len(word) > 3 and vocab[last] > 1 and vocab[word.lower()] > 1
                and not word.lower().startswith(_SUFFIXES)):
            return 0, ""  # Wisconsin-Madison; two words of their own: a compound
        return 1, ""
    if tail.endswith(("_", "/")) and (b[0].isalnum() or b[0] in "_/.~"):
        return 0, ""
    if _URLISH.search(tail) and tail.endswith(("-", ".", "#", "?", "=", "&")) and \
            b[0].islower():
        return 0, ""
    return 0, " "


def continues(left: Line, right: Line) -> bool:
    """Whether line ``right`` certainly goes on from ``left``: a word hyphenated at the
    line end goes on in lowercase, or an identifier broken after its ``_``."""
    a, b = left.text.rstrip(), right.text.lstrip()
    if not a or not b:
        return False
    return (a.endswith("-") and len(a) > 1 and a[-2].isalpha() and b[0].islower()) or \
        (a.endswith("_") and (b[0].isalnum() or b[0] == "_"))


def marks(lines: list[Line]) -> set[str]:
    """The footnote marks that begin the footnote lines of a page ("1", "*")."""
    out = set()
    for line in lines:
        if line.raised and line.raised[0][0] == 0:
            out.add(line.text[: line.raised[0][1]].strip())
        else:
            m = NOTE_MARK.match(line.text)
            if m:
                out.add(m.group(1))
    return out


# a footnote's mark opening its line: a number or sign, then a space, or glued to the note's
# first word (dblatex: "11The default ...", "1⁴The ...": its raised digits come as
# superscript characters from 4 on)
NOTE_MARK = re.compile(r"\s*([0-9\u00b9\u00b2\u00b3\u2070-\u2079]{1,3}|"
                       r"[*\u2020\u2021\u00a7\u00b6])(?:\s|(?=[A-Z][a-z]))")
