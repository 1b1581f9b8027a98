"""The small frozen records that flow between ingestion stages.

Example: ``Chunk(doc_id="a.md", text="Hello.", start=0, end=6)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# a lone surrogate: what bytes that were not UTF-8 become when read with surrogateescape, and
# what JSON's "\ud800" parses to; no text, and nothing UTF-8 can encode
NOT_TEXT = re.compile("[\ud800-\udfff]")
# a character that shows: not a space, a control, a zero-width or a direction mark (a file or
# a question of only those is no text: a chunk nobody can see, a search for nothing)
VISIBLE = re.compile("[^\\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u180e\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u206f\ufeff]")


@dataclass(frozen=True)
class Section:
    """A heading at character ``start`` of a document's text (level 1 = top)."""

    start: int
    level: int
    title: str


@dataclass(frozen=True)
class Page:
    """A page of a PDF: its number (from 1), the label a viewer shows for it ("iv", "17"),
    its size in points, and where its characters are (``pagemap.encode``d line pieces)."""

    number: int
    label: str
    width: float
    height: float
    layout: str = ""


@dataclass(frozen=True)
class Document:
    """One loaded document: its id, plain text and where it came from.

    ``page_starts[i]`` is the character offset where page ``i + 1`` begins, ``pages`` each
    page's label, size and character boxes (PDFs only). ``regions`` holds (start, end, kind)
    of text that is a table of contents ("toc") or an index ("index").
    """

    doc_id: str
    text: str
    source: str
    title: str = ""
    metadata: dict = field(default_factory=dict)
    page_starts: tuple[int, ...] = ()
    sections: tuple[Section, ...] = ()
    pages: tuple[Page, ...] = ()
    regions: tuple[tuple[int, int, str], ...] = ()

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset``, or None without pages."""
        if not self.page_starts:
            return None
        page = 0
        for i, start in enumerate(self.page_starts):
            if start <= offset:
                page = i
            else:
                break
        return page + 1

    @classmethod
    def from_dict(cls, d: dict) -> "Document":
        """The Document that ``dataclasses.asdict`` (and a JSON round trip) made ``d`` of."""
        return cls(**{**d, "page_starts": tuple(d.get("page_starts") or ()),
                      "sections": tuple(Section(**s) for s in d.get("sections") or ()),
                      "pages": tuple(Page(**p) for p in d.get("pages") or ()),
                      "regions": tuple(tuple(r) for r in d.get("regions") or ())})

    def kind_of(self, start: int, end: int) -> str:
        """"toc" or "index" when most of characters start..end lie in such a region, else ""."""
        for lo, hi, kind in self.regions:
            if 2 * (min(end, hi) - max(start, lo)) > max(end - start, 1):
                return kind
        return ""

    def heading_at(self, offset: int) -> str:
        """The heading path ("A > B") in force at character ``offset``."""
        path: list[Section] = []
        for sec in self.sections:
            if sec.start > offset:
                break
            while path and path[-1].level >= sec.level:
                path.pop()
            path.append(sec)
        return " > ".join(s.title for s in path)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: ``document.text[start:end] == text``."""

    doc_id: str
    text: str
    start: int
    end: int
    page: int | None = None
    heading: str = ""


@dataclass(frozen=True)
class Hit:
    """A search result: a stored chunk with its score (higher is better)."""

    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    page: int | None
    heading: str
    score: float
    metadata: dict = field(default_factory=dict)
    page_label: str | None = None  # the page's label in a PDF viewer ("iv", "17")
    kind: str = ""  # "toc" or "index": a table of contents or an index, not prose

    def to_dict(self) -> dict:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "source": self.source,
            "title": self.title,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "page_label": self.page_label,
            "heading": self.heading,
            "kind": self.kind,
            "score": self.score,
            "metadata": self.metadata,
        }
