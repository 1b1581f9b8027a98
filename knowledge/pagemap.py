"""Where each character of a document's text sits on its PDF page: the text is built piece by
piece, and every piece taken from a line of the page records its character range, its
line's top and bottom, and the left edge of each character. A page's records are stored in
a compact string (varints, deflated, base64): about a byte per character.

Example::

    b = TextBuilder(); b.line(page=3, text="Hello", xs=[72, 78, 84, 88, 92], x_end=98,
                              top=100, bottom=112); b.text("\\n\\n")
    boxes(decode(b.encoded(3)), 0, 5)   # [(72.0, 100.0, 98.0, 112.0)]
"""
from __future__ import annotations

import base64
import zlib
from collections import defaultdict
from dataclasses import dataclass

UNIT = 10  # coordinates stored in tenths of a point


@dataclass(frozen=True)
class Piece:
    """Characters ``start``..``end`` of the text: on one line of a page, from ``top`` to
    ``bottom``; ``xs[i]`` is the left edge of character ``start + i``, ``x_end`` the right
    edge of the last."""

    start: int
    end: int
    top: float
    bottom: float
    xs: tuple
    x_end: float
    upright: bool = True  # False: a line of turned text, running up or down the page; then
    # ``top``..``bottom`` is its extent across, left to right, and ``xs`` are heights (the
    # lower edge of each character, running up; the upper, running down)


class TextBuilder:
    """Owns a growing text and the page position of each piece taken from a page."""

    def __init__(self):
        self._parts: list[str] = []
        self.length = 0
        self.pieces: dict[int, list] = defaultdict(list)

    def text(self, s: str) -> None:
        """Characters that stand on no page (separators, list marks, table bars)."""
        if s:
            self._parts.append(s)
            self.length += len(s)

    def line(self, page: int, text: str, xs, x_end: float, top: float, bottom: float,
             upright: bool = True) -> None:
        """Characters of a line of ``page``, with their left edges ``xs`` (a line of turned
        text: ``Piece.upright``)."""
        if not text:
            return
        self.pieces[page].append(Piece(self.length, self.length + len(text), top, bottom,
                                       tuple(xs), x_end, upright))
        self._parts.append(text)
        self.length += len(text)

    def value(self) -> str:
        return "".join(self._parts)

    def encoded(self, page: int) -> str:
        return encode(self.pieces.get(page, []))


def _varints(values, out: bytearray) -> None:
    for v in values:
        v = (v << 1) ^ (v >> 63)  # zigzag: small negatives stay small
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)


def _read_varints(data: bytes):
    v = shift = 0
    for b in data:
        v |= (b & 0x7F) << shift
        if b & 0x80:
            shift += 7
            continue
        yield (v >> 1) ^ -(v & 1)
        v = shift = 0


def encode(pieces: list[Piece]) -> str:
    """A page's pieces as a compact string (a turned piece's length is stored negative)."""
    out = bytearray()
    prev_end = 0
    for p in pieces:
        q = [round(x * UNIT) for x in p.xs] + [round(p.x_end * UNIT)]
        n = p.end - p.start if p.upright else p.start - p.end
        _varints([p.start - prev_end, n, round(p.top * UNIT), round(p.bottom * UNIT), q[0]], out)
        _varints([b - a for a, b in zip(q, q[1:])], out)
        prev_end = p.end
    return base64.b64encode(zlib.compress(bytes(out), 9)).decode("ascii")


def decode(data: str) -> list[Piece]:
    """The pieces of an ``encode``d page."""
    if not data:
        return []
    values = _read_varints(zlib.decompress(base64.b64decode(data)))
    pieces, prev_end = [], 0
    for gap in values:
        start = prev_end + gap
        n = next(values)
        upright, n = n > 0, abs(n)
        top, bottom, x = next(values), next(values), next(values)
        xs = [x]
        for _ in range(n):
            x += next(values)
            xs.append(x)
        pieces.append(Piece(start, start + n, top / UNIT, bottom / UNIT,
                            tuple(v / UNIT for v in xs[:-1]), xs[-1] / UNIT, upright))
        prev_end = start + n
    return pieces


def boxes(pieces: list[Piece], start: int, end: int) -> list[tuple[float, float, float, float]]:
    """(x0, top, x1, bottom) rectangles covering characters ``start``..``end`` of the text,
    one per line piece they touch, in text order."""
    out = []
    for p in pieces:
        lo, hi = max(start, p.start), min(end, p.end)
        if lo >= hi:
            continue
        x0 = p.xs[lo - p.start]
        x1 = p.xs[hi - p.start] if hi < p.end else p.x_end
        if p.upright:
            out.append((x0, p.top, max(x1, x0), p.bottom))
        else:
            out.append((p.top, min(x0, x1), p.bottom, max(x0, x1)))
    return out
