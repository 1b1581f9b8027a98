"""Page geometry: a page's characters, with their boxes in content order, become lines in
reading order.

Characters join into runs (same baseline band, no wide gap), runs into rows (runs side by
side), and rows into bands: where a gutter runs down consecutive rows with prose on both
sides, the band is read column by column (two-column papers); elsewhere a row with wide gaps
is one line of several cells (a table row, or code aligned in columns).

Coordinates are points from the page's top-left corner (y grows downwards).

Example: ``lines = page_lines(glyphs)`` where ``glyphs`` is a filled ``Glyphs``.
"""
from __future__ import annotations

import statistics
import unicodedata
from dataclasses import dataclass, field

# spacing accents that TeX's OT1 fonts draw over a letter: combining form for NFC
SPACING_ACCENTS = {"\u00b4": "\u0301", "`": "\u0300", "\u00a8": "\u0308", "\u02c6": "\u0302",
                   "^": "\u0302", "\u02dc": "\u0303", "~": "\u0303", "\u00b8": "\u0327",
                   "\u02c7": "\u030c", "\u02d8": "\u0306", "\u02d9": "\u0307", "\u00af": "\u0304",
                   "\u02da": "\u030a", "\u02dd": "\u030b"}
RUN_GAP = 1.0  # a gap wider than this many font sizes ends a run (a column gutter, a cell)
MONO_RUN_GAP = 8.0  # (code: aligned comments stay on their line)
PROSE_CHARS = 18  # a column holds prose: its runs' median length is at least this


@dataclass(frozen=True)
class Font:
    name: str
    mono: bool
    bold: bool


@dataclass
class Glyphs:
    """One page's characters in content order (each ``text`` entry may be a ligature's
    letters), their boxes, font sizes and fonts; ``space[i]``: a space precedes character i
    in the content (drawn or inferred by the PDF library)."""

    width: float
    height: float
    text: list = field(default_factory=list)
    x0: list = field(default_factory=list)
    x1: list = field(default_factory=list)
    top: list = field(default_factory=list)
    bottom: list = field(default_factory=list)
    size: list = field(default_factory=list)
    font: list = field(default_factory=list)
    space: list = field(default_factory=list)
    fonts: list = field(default_factory=list)
    sideways: int = 0  # characters set at an angle, left out (a margin stamp, a diagonal mark)
    turned: list = field(default_factory=list)  # (90 or 270, Glyphs): text turned a quarter
    # round (a turned table), upright in its own frame

    def add(self, text: str, x0: float, x1: float, top: float, bottom: float, size: float,
            font: int, space: bool) -> None:
        self.text.append(text)
        self.x0.append(x0)
        self.x1.append(x1)
        self.top.append(top)
        self.bottom.append(bottom)
        self.size.append(size)
        self.font.append(font)
        self.space.append(space)

    def __len__(self) -> int:
        return len(self.text)


@dataclass
class Line:
    """A line in reading order: its text, the left edge of each of its characters (``xs``),
    its box, font size and style; ``cells``: (start, end) of each part separated by a wide
    gap; ``raised``: (start, end) of superscript runs (footnote marks or exponents)."""

    text: str
    xs: list
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    mono: bool = False
    bold: bool = False
    cells: list = field(default_factory=list)
    raised: list = field(default_factory=list)
    flow: int = 0
    page: int = 0
    mono_end: bool = False  # its last character is in a monospace font (code)
    turn: tuple = ()  # (90 or 270, page width, page height): a line of turned text, its box
    # in the turned frame (``pagemap`` maps it back)

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass
class _Run:
    chars: list
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    mono: bool


def page_lines(g: Glyphs, page: int = 0) -> list[Line]:
    """The page's lines in reading order (``flow`` numbers the columns read in turn)."""
    runs = _runs(g)
    if not runs:
        return []
    rows = _rows(runs)
    x_lo = min(r.x0 for r in runs)
    x_hi = max(r.x1 for r in runs)
    size = statistics.median(r.size for r in runs)
    lines, flow, columns = [], 0, False
    for band_rows, gutters in _bands(rows, x_lo, x_hi, 0.9 * size):
        if gutters:
            edges = [x_lo] + [x for gap in gutters for x in gap] + [x_hi]
            for left, right in zip(edges[::2], edges[1::2]):
                flow += 1
                for row in band_rows:
                    inside = [r for r in row if r.x0 >= left - 1 and r.x1 <= right + 1]
                    if inside:
                        lines.append(_line(g, inside, flow, page))
        else:
            if columns or not lines:
                flow += 1
            for row in band_rows:
                lines.append(_line(g, row, flow, page))
        columns = bool(gutters)
    return lines


def _runs(g: Glyphs) -> list[_Run]:
    """Characters in content order grouped into runs on one baseline without wide gaps."""
    runs: list[_Run] = []
    cur = None
    fonts = g.fonts
    for i in range(len(g.text)):
        t, b, s = g.top[i], g.bottom[i], g.size[i]
        if cur is not None:
            overlap = min(b, cur.bottom) - max(t, cur.top)
            gap = g.x0[i] - cur.x1
            wide = (MONO_RUN_GAP if cur.mono else RUN_GAP) * cur.size
            # (not back past the previous glyph's start: PDFium gives a ligature's letters
            # the ligature's box)
            if overlap > 0.25 * min(b - t, cur.bottom - cur.top) and gap <= wide and \
                    g.x0[i] >= g.x0[cur.chars[-1]] - 0.3 * cur.size:
                cur.chars.append(i)
                cur.x1 = max(cur.x1, g.x1[i])
                if s > 1.15 * cur.size:  # (the run began with a superscript)
                    cur.top, cur.bottom, cur.size = t, b, s
                continue
            runs.append(cur)
        cur = _Run([i], g.x0[i], g.x1[i], t, b, s, fonts[g.font[i]].mono)
    if cur is not None:
        runs.append(cur)
    return runs


def _rows(runs: list[_Run]) -> list[list[_Run]]:
    """Runs side by side (overlapping vertically), top to bottom, each row left to right."""
    rows: list[list[_Run]] = []
    bands: list[tuple[float, float]] = []
    for run in sorted(runs, key=lambda r: (r.top, r.x0)):
        h = run.bottom - run.top
        for k in range(len(rows) - 1, max(len(rows) - 4, -1), -1):
            top, bottom = bands[k]
            if min(bottom, run.bottom) - max(top, run.top) >= 0.5 * min(h, bottom - top):
                rows[k].append(run)
                break
        else:
            rows.append([run])
            bands.append((run.top, run.bottom))
    for row in rows:
        row.sort(key=lambda r: r.x0)
    return rows


def _free(row: list[_Run], lo: float, hi: float, min_gap: float) -> list[tuple[float, float]]:
    """The x intervals of at least ``min_gap`` between lo and hi that no run of ``row`` covers."""
    out, x = [], lo
    for r in row:
        if r.x0 - x >= min_gap:
            out.append((x, r.x0))
        x = max(x, r.x1)
    if hi - x >= min_gap:
        out.append((x, hi))
    return out


def _intersect(a, b, min_gap: float) -> list[tuple[float, float]]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi - lo >= min_gap:
                out.append((lo, hi))
    return out


def _bands(rows, lo: float, hi: float, min_gap: float):
    """(rows, gutters) of consecutive rows: gutters are the x intervals along which the band
    is read in columns (empty: read row by row)."""
    band, free = [], []
    for row in rows:
        mine = _free(row, lo, hi, min_gap)
        common = _intersect(free, mine, min_gap) if band else mine
        if band and (not common or _apart(band[-1], row)):
            yield band, _columns(band, free)
            band, common = [], mine
        band.append(row)
        free = common
    if band:
        yield band, _columns(band, free)


def _apart(above: list[_Run], below: list[_Run]) -> bool:
    """Whether two rows are further apart than lines of one column (a running header above
    the text, a figure between two bands)."""
    height = min(max(r.bottom - r.top for r in above), max(r.bottom - r.top for r in below))
    return min(r.top for r in below) - max(r.bottom for r in above) > 1.5 * height


def _columns(band, free) -> list[tuple[float, float]]:
    """The gutters of ``free`` that separate columns of prose in ``band`` (none for a table,
    a list of names, or a margin): on each side, the rows' text is long."""
    if len(band) < 3:
        return []
    kept = []
    for g0, g1 in free:
        left = [sum(len(r.chars) for r in row if r.x1 <= g0 + 1) for row in band]
        right = [sum(len(r.chars) for r in row if r.x0 >= g1 - 1) for row in band]
        left, right = [n for n in left if n], [n for n in right if n]
        if len(left) >= 2 and len(right) >= 2 and statistics.median(left) >= PROSE_CHARS \
                and statistics.median(right) >= PROSE_CHARS:
            kept.append((g0, g1))
    return kept


def _line(g: Glyphs, runs: list[_Run], flow: int, page: int) -> Line:
    """One line from runs on a row: spaces where the characters leave a gap (in monospace,
    one per character width, so code keeps its alignment), superscripts marked."""
    fonts = g.fonts
    size = max(r.size for r in runs)
    top = min(r.top for r in runs if r.size >= 0.8 * size)
    bottom = max(r.bottom for r in runs if r.size >= 0.8 * size)
    chars = [i for r in runs for i in r.chars]
    mono_n = sum(fonts[g.font[i]].mono for i in chars)
    mono = mono_n >= 0.8 * len(chars)
    bold = sum(fonts[g.font[i]].bold for i in chars) >= 0.8 * len(chars)
    advance = _advance(g, chars) if mono else 0.0
    text: list[str] = []
    xs: list[float] = []
    cells, raised = [], []
    prev_x1 = None
    raised_from = None
    for k, run in enumerate(runs):
        if k:
            if mono:
                gap = g.x0[run.chars[0]] - prev_x1
                n = max(1, round(gap / advance)) if advance else 1
            else:
                n = 1
            text.append(" " * n)
            xs.extend([prev_x1] * n)
        cell_start = len(xs)
        prev = None
        accent = None  # a spacing accent drawn before the letter it sits on
        chars = run.chars
        for j, i in enumerate(chars):
            ch = g.text[i]
            if prev is not None:
                dx = abs(g.x0[i] - g.x0[prev])
                if ch == g.text[prev] and dx < 0.25 * (g.x1[i] - g.x0[i]) and (dx or ch != "f"):
                    continue  # the same glyph drawn twice over itself (fake bold), not an ff
                gap = g.x0[i] - g.x1[prev]
                if mono and advance:
                    n = round(gap / advance)
                    n = max(n, 1) if g.space[i] else max(n, 0)
                else:
                    limit = (0.08 if g.font[i] != g.font[prev] else 0.15) * g.size[i]
                    n = 1 if (g.space[i] or gap > limit) else 0
                if n and accent is None:
                    text.append(" " * n)
                    xs.extend([g.x1[prev]] * n)
            small = g.size[i] < 0.8 * size and g.bottom[i] < bottom - 0.2 * size
            if not small and raised_from is not None:  # (before the space that follows it)
                spaces = len(text[-1]) if text and not text[-1].strip() else 0
                raised.append((raised_from, len(xs) - spaces))
                raised_from = None
            combining = SPACING_ACCENTS.get(ch)
            if combining and j + 1 < len(chars) and _overlaps(g, i, chars[j + 1]):
                accent, prev = combining, i
                continue
            if combining and prev is not None and _overlaps(g, i, prev) and text:
                merged = unicodedata.normalize("NFC", text[-1] + combining)
                xs.extend([xs[-1]] * (len(merged) - len(text[-1])))
                text[-1] = merged
                prev = i
                continue
            if small and raised_from is None:
                raised_from = len(xs)
            if accent is not None:
                piece = unicodedata.normalize("NFC", ("i" if ch == "\u0131" else ch) + accent)
                accent = None
            else:
                piece = ch
            if len(piece) == 1:
                text.append(piece)
                xs.append(g.x0[i])
            else:  # a ligature's letters (or a letter and its accent) share its box
                w = (g.x1[i] - g.x0[i]) / len(piece)
                for c_i, c in enumerate(piece):
                    text.append(c)
                    xs.append(g.x0[i] + c_i * w)
            prev = i
        if raised_from is not None:
            raised.append((raised_from, len(xs)))
            raised_from = None
        cells.append((cell_start, len(xs)))
        prev_x1 = run.x1
    return Line(text="".join(text), xs=xs, x0=min(r.x0 for r in runs),
                x1=max(r.x1 for r in runs), top=top, bottom=bottom, size=size, mono=mono,
                bold=bold, cells=cells, raised=raised, flow=flow, page=page,
                mono_end=fonts[g.font[runs[-1].chars[-1]]].mono)


def _overlaps(g: Glyphs, a: int, b: int) -> bool:
    """Whether glyphs ``a`` and ``b`` overlap horizontally (an accent and its letter)."""
    return min(g.x1[a], g.x1[b]) - max(g.x0[a], g.x0[b]) > 0.2 * min(
        g.x1[a] - g.x0[a], g.x1[b] - g.x0[b])


def _advance(g: Glyphs, chars: list[int]) -> float:
    """The monospace character width of a line (median of its glyph widths)."""
    widths = [g.x1[i] - g.x0[i] for i in chars if len(g.text[i]) == 1 and g.x1[i] > g.x0[i]]
    return statistics.median(widths) if widths else 0.0
