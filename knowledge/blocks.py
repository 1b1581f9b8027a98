"""A PDF's lines, in reading order, as one clean text: running headers and footers left out,
lines grouped into blocks (paragraphs, headings, list items, code, tables, footnotes), a
paragraph that runs on over a page or column break joined back, footnotes printed after the
paragraph they interrupt, and each block written out in its own form: paragraphs as flowing
text, code with its line breaks and indentation, tables as Markdown rows, list items one per
line. ``pagemap`` records where each character stands on its page.

Example: ``doc = assemble("a.pdf", pages, labels, outline, "Title")`` (see ``pdf.load_pdf``).
"""
from __future__ import annotations

import math

import re
import statistics
from dataclasses import dataclass, field

from .clean import NOTE_MARK, continues, join, marks, running_lines, vocabulary
from .layout import Line
from .pagemap import TextBuilder
from .structure import (Heading, apparatus, body_size, font_headings, median_gap,
                        outline_headings, split_run_in)
from .types import Document, Page, Section

# a C1 control character (U+0080-U+009F) opening a line is a bullet glyph of a font with no
# Unicode map (gnuplot's LaTeX manual: U+0088): text never holds one
_BULLET = re.compile(r"^([\u2022\u25e6\u25aa\u25ab\u2023\u2219\u00b7\u25cb\u25a0\u25a1\u2013"
                     r"\u2014\u0080-\u009f*-]|\(?\d{1,2}[.)]|\(?[a-z]\))\s+")
_GLYPH_BULLET = "\u2022\u25e6\u25aa\u25ab\u2023\u2219\u00b7\u25cb\u25a0\u25a1" + "".join(
    map(chr, range(0x80, 0xA0)))
_SENTENCE_END = (".", ":", "!", "?", ";")


@dataclass
class Block:
    kind: str  # text, item, code, table, heading, note
    lines: list
    heading: Heading | None = None
    starts: list = field(default_factory=list)  # headings found on no line: they begin here
    notes: list = field(default_factory=list)  # footnotes written after this block


def assemble(rel: str, pages: list, labels: list[str], outline: list, title: str) -> Document:
    """The Document of a PDF whose pages were read into (Glyphs, lines) pairs."""
    heights = [g.height for g, _ in pages]
    raw = [lines for _, lines in pages]
    drop = running_lines(raw, labels, heights)
    kept = [[ln for k, ln in enumerate(lines) if (p, k) not in drop]
            for p, lines in enumerate(raw)]
    body = body_size(kept)
    gap = median_gap(kept, body)
    vocab = vocabulary(ln for lines in kept for ln in lines)
    if outline:
        split_run_in(kept, outline)
    heads = outline_headings(kept, outline) if outline else font_headings(kept, body)
    head_of = {id(ln): h for h in heads for ln in h.lines}
    per_page, page_marks = [], []
    for lines in kept:
        text_lines, notes = _footnotes(lines, body, gap)
        page_marks.append(marks(notes))
        blocks = _blocks(text_lines, body, gap, head_of)
        per_page.append((blocks, _note_blocks(notes)))
    _place_unmatched(heads, per_page)
    blocks: list[Block] = []
    for page_blocks, notes in per_page:
        for k, block in enumerate(page_blocks):
            if k == 0 and blocks and _runs_on(blocks[-1], block, body):
                blocks[-1].lines.extend(block.lines)
            else:
                blocks.append(block)
        if notes:
            if blocks:
                blocks[-1].notes.extend(notes)
            else:
                blocks.extend(notes)
    writer = _Writer(vocab, page_marks, body)
    for block in blocks:
        writer.block(block)
    return _document(rel, writer, pages, labels, apparatus(kept, outline), title)


def _footnotes(lines: list[Line], body: float, gap: float) -> tuple[list[Line], list[Line]]:
    """(text lines, footnote lines) of a page: footnotes are the last lines of a column, set
    smaller than the body, from one that begins with a mark."""
    notes_at = set()
    flows: dict[int, list[int]] = {}
    for k, ln in enumerate(lines):
        if not ln.turn:  # (a turned table set small is no footnote area)
            flows.setdefault(ln.flow, []).append(k)
    for ks in flows.values():
        tail = []
        for k in reversed(ks):
            ln = lines[k]
            if ln.size > 0.92 * body or ln.mono:
                break
            tail.append(k)
        tail.reverse()
        first = next((j for j, k in enumerate(tail) if marks([lines[k]])), None)
        if first is None:
            continue
        k0 = tail[first]
        above = [k for k in ks if k < k0]
        if above and lines[k0].top - lines[above[-1]].bottom < gap + 0.1 * body and \
                lines[above[-1]].size <= 0.92 * body:
            continue  # (small print that runs on from above: not a footnote area)
        notes_at.update(tail[first:])
    return ([ln for k, ln in enumerate(lines) if k not in notes_at],
            [ln for k, ln in enumerate(lines) if k in notes_at])


def _note_blocks(lines: list[Line]) -> list[Block]:
    out: list[Block] = []
    for ln in lines:
        if marks([ln]) or not out:
            out.append(Block("note", [ln]))
        else:
            out[-1].lines.append(ln)
    return out


def _kind(ln: Line, head_of: dict) -> str:
    if id(ln) in head_of:
        return "heading"
    if ln.mono:
        return "code"
    if len(ln.cells) >= 2:
        return "table"
    if _BULLET.match(ln.text):
        return "item"
    return "text"


def _blocks(lines: list[Line], body: float, gap: float, head_of: dict) -> list[Block]:
    """A page's text lines grouped into blocks."""
    right = _right_margins(lines)
    blocks: list[Block] = []
    for k, ln in enumerate(lines):
        kind = _kind(ln, head_of)
        if kind == "table" and k + 1 < len(lines) and _labelled(ln, lines[k + 1], body, gap):
            blocks.append(Block("text", [ln]))  # (a labelled paragraph begins)
            continue
        if kind == "table" and 0 < k < len(lines) - 1 and \
                _spread(lines[k - 1], ln, lines[k + 1], body, gap):
            kind = "text"
        if blocks and _same_block(blocks[-1], ln, kind, body, gap, right[ln.flow], head_of):
            blocks[-1].lines.append(ln)
        else:
            blocks.append(Block(kind, [ln], heading=head_of.get(id(ln))))
    return blocks


def _labelled(ln: Line, nxt: Line, body: float, gap: float) -> bool:
    """Whether two-cell line ``ln`` is the first line of a paragraph with a label before it
    (an option's name, a margin note: "‘-f*’ Run as a filter ... the Post-" over "Script to
    standard output."), not a table row: a short first cell, and the next line is one cell
    of text that starts where the second does, right below."""
    if len(ln.cells) != 2 or len(nxt.cells) != 1 or nxt.flow != ln.flow:
        return False
    (a0, a1), (b0, b1) = ln.cells
    label, text = ln.text[a0:a1].strip(), ln.text[b0:b1]
    return 0 < len(label) <= 20 and len(label.split()) <= 3 and len(text.split()) >= 4 \
        and abs(ln.xs[b0] - nxt.x0) < 0.5 * body and _next_line(ln, nxt, body, gap) \
        and abs(nxt.size - ln.size) <= 0.15 * ln.size


def _spread(above: Line, ln: Line, below: Line, body: float, gap: float) -> bool:
    """Whether line ``ln``, split into cells by wide spaces, is a justified line of the
    paragraph around it ("to   extend   previously   existing ..." between two lines of
    prose): one-cell lines right above and below, in its flow and margins, and no cell of
    more than two words, so no column to align with."""
    if not (len(above.cells) == len(below.cells) == 1 and above.flow == ln.flow == below.flow):
        return False
    return all(len(ln.text[a:b].split()) <= 2 for a, b in ln.cells) \
        and abs(ln.x0 - below.x0) < 0.5 * body and _next_line(above, ln, body, gap) \
        and _next_line(ln, below, body, gap) and not above.mono and not below.mono


def _next_line(above: Line, below: Line, body: float, gap: float) -> bool:
    """Whether ``below`` is the next line of ``above``'s paragraph by the space between them
    (the usual line gap and a third of a body line more)."""
    return below.top - above.bottom < gap + 0.35 * body


def _right_margins(lines: list[Line]) -> dict[int, float]:
    """Each flow's right margin: where most of its long text lines end (a line running into
    the margin, a long URL, does not move it)."""
    ends: dict[int, list[float]] = {}
    for ln in lines:
        if not ln.mono and len(ln.text) >= 20:
            ends.setdefault(ln.flow, []).append(ln.x1)
    right = {}
    for ln in lines:
        xs = sorted(ends.get(ln.flow, ())) or [ln.x1]
        right.setdefault(ln.flow, xs[int(0.9 * (len(xs) - 1))])
    return right


def _same_block(prev: Block, ln: Line, kind: str, body: float, gap: float, right: float,
                head_of: dict) -> bool:
    last = prev.lines[-1]
    if ln.flow != last.flow:
        return False
    v = ln.top - last.bottom
    if kind == "heading" or prev.kind == "heading":
        return prev.kind == kind == "heading" and prev.heading is head_of.get(id(ln))
    if prev.kind in ("text", "item") and kind in ("text", "code") and v < gap + 0.5 * body \
            and (continues(last, ln) or kind == "code" and _prose(last, ln, right, body)):
        return True  # (prose that carries on, in a line set mostly in monospace)
    if kind == "code" or prev.kind == "code":
        return prev.kind == kind and v < 3 * body
    if kind == "table" or prev.kind == "table":
        return prev.kind == kind and v < gap + 0.8 * body
    if kind == "item":
        return False
    if abs(ln.size - last.size) > 0.15 * last.size or v > gap + 0.35 * body:
        return False
    if prev.kind == "item":
        return ln.x0 > prev.lines[0].x0 + 0.3 * body
    ended = last.text.rstrip().endswith(_SENTENCE_END)
    # (a labelled line's text begins at its second cell: ``_labelled``)
    start = last.xs[last.cells[1][0]] if len(last.cells) == 2 else last.x0
    if ln.x0 > start + 0.8 * body and (ended or last.x1 < right - 2.5 * body):
        return False  # a new paragraph's first-line indent (not a hanging indent)
    return not (last.x1 < right - 2.5 * body and ended)


def _prose(last: Line, ln: Line, right: float, body: float) -> bool:
    """Whether monospace line ``ln`` is prose with much inline code that goes on from text
    line ``last``: that line runs to the margin mid-sentence, and ``ln`` is not indented."""
    return last.x1 >= right - body and not last.text.rstrip().endswith(_SENTENCE_END) and \
        ln.x0 <= last.x0 + 0.5 * body


def _runs_on(prev: Block, nxt: Block, body: float) -> bool:
    """Whether block ``nxt`` (first on its page) continues paragraph ``prev`` from the page
    before: the page ended mid-sentence at the right margin, and nothing new starts."""
    if prev.kind not in ("text", "item") or nxt.kind != "text" or nxt.starts:
        return False
    last, first = prev.lines[-1], nxt.lines[0]
    if abs(first.size - last.size) > 0.15 * last.size:
        return False
    text = last.text.rstrip()
    return bool(text) and (text.endswith("-") or not text.endswith(_SENTENCE_END)) and \
        first.x0 <= min(ln.x0 for ln in nxt.lines) + 0.5 * body


def _place_unmatched(heads: list[Heading], per_page: list) -> None:
    """A heading whose title no line prints begins at the first block at or below its
    bookmark's position (or the next page that has text)."""
    for h in heads:
        if h.lines:
            continue
        for p in range(h.page - 1, len(per_page)):
            blocks = per_page[p][0]
            if not blocks:
                continue
            y = h.y if p == h.page - 1 and h.y is not None else -1e9
            target = next((b for b in blocks if b.lines[0].bottom >= y), None)
            if target is not None:
                target.starts.append(h)
                break


class _Writer:
    """Writes blocks into a TextBuilder, collecting sections as headings go by."""

    def __init__(self, vocab, page_marks: list[set], body: float):
        self.b = TextBuilder()
        self.vocab = vocab
        self.page_marks = page_marks
        self.body = body
        self.sections: list[Section] = []
        self.prev_kind = None

    def block(self, block: Block) -> None:
        sep = "\n" if block.kind == self.prev_kind == "item" else "\n\n"
        if self.b.length:
            self.b.text(sep)
        for h in block.starts:
            self.sections.append(Section(self.b.length, h.level, h.title))
        if block.heading is not None:
            self.sections.append(Section(self.b.length, block.heading.level,
                                         block.heading.title))
        if block.kind == "code":
            self._code(block.lines)
        elif block.kind == "table":
            self._table(block.lines)
        else:
            self._flowing(block.lines, item=block.kind == "item")
        self.prev_kind = block.kind
        for note in block.notes:
            self.b.text("\n\n")
            self._flowing(note.lines, note=True)
            self.prev_kind = "note"

    def _flowing(self, lines: list[Line], item: bool = False, note: bool = False) -> None:
        for k, ln in enumerate(lines):
            start = 0
            if k == 0 and item:
                m = _BULLET.match(ln.text)
                if m and m.group(1) in _GLYPH_BULLET:
                    self.b.text("- ")
                    start = m.end()
            if k == 0 and note:
                m = NOTE_MARK.match(ln.text)
                r1 = ln.raised[0][1] if ln.raised and ln.raised[0][0] == 0 else (
                    m.end(1) if m else 0)
                if r1:
                    self.b.text("[")
                    self._span(ln, 0, r1, marks=False)
                    self.b.text("] ")
                    start = r1
                    while start < len(ln.text) and ln.text[start] == " ":
                        start += 1
            cut, sep = (join(ln, lines[k + 1], self.vocab) if k + 1 < len(lines)
                        else (0, ""))
            end = len(ln.text.rstrip()) - cut
            self._span(ln, start, end)
            self.b.text(sep)

    def _code(self, lines: list[Line]) -> None:
        widths = [(ln.x1 - ln.x0) / len(ln.text) for ln in lines if len(ln.text) >= 4]
        advance = statistics.median(widths) if widths else 0.6 * self.body
        left = min(ln.x0 for ln in lines)
        for k, ln in enumerate(lines):
            if k:
                blank = ln.top - lines[k - 1].bottom > 0.9 * ln.size
                self.b.text("\n\n" if blank else "\n")
            self.b.text(" " * max(0, round((ln.x0 - left) / advance)))
            self._span(ln, 0, len(ln.text.rstrip()), marks=False)

    def _table(self, lines: list[Line]) -> None:
        for k, ln in enumerate(lines):
            if k:
                self.b.text("\n")
            self.b.text("| ")
            for j, (c0, c1) in enumerate(ln.cells):
                if j:
                    self.b.text(" | ")
                while c0 < c1 and ln.text[c0] == " ":
                    c0 += 1
                while c1 > c0 and ln.text[c1 - 1] == " ":
                    c1 -= 1
                self._span(ln, c0, c1)
            self.b.text(" |")

    def _span(self, ln: Line, start: int, end: int, marks: bool = True) -> None:
        """Characters start..end of a line, footnote marks as [n], exponents as ^n."""
        pos = start
        for r0, r1 in (ln.raised if marks else ()):
            if r1 <= pos or r0 >= end:
                continue
            r0, r1 = max(r0, pos), min(r1, end)
            self._piece(ln, pos, r0)
            mark = ln.text[r0:r1].strip()
            page_marks = self.page_marks[ln.page - 1] if ln.page - 1 < len(self.page_marks) \
                else set()
            if mark in page_marks:
                self.b.text("[")
                self._piece(ln, r0, r1)
                self.b.text("]")
            elif mark.isdigit() and r0 and (ln.text[r0 - 1].isalnum() or ln.text[r0 - 1] == ")"):
                self.b.text("^")  # an exponent
                self._piece(ln, r0, r1)
            else:
                self._piece(ln, r0, r1)
            pos = r1
        self._piece(ln, pos, end)

    def _piece(self, ln: Line, start: int, end: int) -> None:
        if end <= start:
            return
        x_end = ln.xs[end] if end < len(ln.xs) else ln.x1
        xs = ln.xs[start:end]
        if not ln.turn:
            self.b.line(ln.page, ln.text[start:end], xs, x_end, ln.top, ln.bottom)
            return
        turn, width, height = ln.turn  # back from the turned frame to the page's
        if turn == 90:  # (x' = height - y, y' = x)
            self.b.line(ln.page, ln.text[start:end], [height - x for x in xs], height - x_end,
                        ln.top, ln.bottom, upright=False)
        else:  # (x' = y, y' = width - x)
            self.b.line(ln.page, ln.text[start:end], xs, x_end, width - ln.bottom,
                        width - ln.top, upright=False)


def _page_starts(b: TextBuilder, n: int, length: int) -> list[int]:
    """Where each page's text begins: its first character (a page without text: where the
    next one begins), never before the page before's."""
    firsts = [min((x.start for x in b.pieces[p]), default=None) if b.pieces.get(p) else None
              for p in range(1, n + 1)]
    starts, following = [0] * n, length
    for i in range(n - 1, -1, -1):
        following = starts[i] = firsts[i] if firsts[i] is not None else following
    for i in range(1, n):
        starts[i] = max(starts[i], starts[i - 1])
    return starts


def _document(rel: str, writer: _Writer, pages: list, labels: list[str], kinds: dict,
              title: str) -> Document:
    b = writer.b
    text = b.value()
    starts = _page_starts(b, len(pages), len(text))
    regions = []
    for p, (kind, top, bottom) in sorted(kinds.items()):
        # (the page's lines from height top to bottom: bookmarks' heights, each a little above
        # its heading's line)
        whole = top <= 0 and bottom == math.inf  # (a turned piece's top is no height: it
        # belongs to a region only of its whole page)
        pieces = [x for x in b.pieces.get(p + 1, ())
                  if (top - 2 <= x.top < bottom if x.upright else whole)]
        if not pieces:
            continue
        lo, hi = min(x.start for x in pieces), max(x.end for x in pieces)
        if regions and regions[-1][2] == kind and not text[regions[-1][1]:lo].strip(" \n|-"):
            regions[-1] = (regions[-1][0], max(hi, regions[-1][1]), kind)
        else:
            regions.append((lo, hi, kind))
    page_info = tuple(Page(number=p + 1, label=labels[p], width=round(g.width, 2),
                           height=round(g.height, 2), layout=b.encoded(p + 1))
                      for p, (g, _) in enumerate(pages))
    sections = tuple(sorted(writer.sections, key=lambda s: s.start))
    return Document(doc_id=rel, text=text, source=rel, title=title or rel.rsplit("/", 1)[-1]
                    .rsplit(".", 1)[0], metadata={"pages": len(pages)}, page_starts=tuple(starts),
                    sections=sections, pages=page_info, regions=tuple(regions))
