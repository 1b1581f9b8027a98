"""Split documents into chunks measured in the embedder's own tokens.

The splitting itself is langchain-text-splitters' recursive splitter; this module picks
separators (Markdown headings, paragraphs, lines, sentences incl. CJK, clauses, words) and
maps each chunk back to character offsets so ``doc.text[c.start:c.end] == c.text``.

Example: ``Chunker(count_tokens, size=200, overlap=30).split(doc)``.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from .errors import UsageError
from .types import Chunk, Document

PARAGRAPH = r"\n[ \t]*\n"  # a blank line (spaces or tabs on it allowed)
# words per window of a chunk's paragraphs embedded apart (knowledge/windows.py; the default
# of ChunkerSettings.windows, eval/RESULTS.md "Window vectors")
WINDOW_WORDS = 24

# Tried in order; a piece still too long is split again with the next ones. All are regexes;
# the zero-width ones keep sentence punctuation at the end of the sentence it closes.
SEPARATORS = [
    r"\n(?=#{1,6} )",  # before a Markdown heading
    PARAGRAPH,
    r"\n",  # line
    r"(?<=[.!?])\s+",  # sentence end (Latin)
    r"(?<=[。！？；])",  # sentence end (CJK full-width)
    r"(?<=[;:,，、])\s*",  # clause
    r"\s+",  # word
    r"",  # character
]
_SPACE = re.compile(r"\s*")
# Characters a separator above can split at without a space (plus spaces themselves). A run
# of anything else longer than the chunk size (base64, minified text, a hostile line) is cut
# at the size in characters before the splitter sees it: a tokenizer may count such a run as
# one unknown token, and the splitter would then keep it whole.
_RUN_BREAKS = r"\s;:,，、。！？；"


@dataclass(frozen=True)
class ChunkerSettings:
    """Chunk size and overlap in tokens; ``windows``: a chunk's paragraphs are also embedded
    in windows of up to that many words (``knowledge/windows.py``; 0: not)."""

    size: int = 200
    overlap: int = 30
    windows: int = WINDOW_WORDS

    @classmethod
    def from_dict(cls, d: dict) -> "ChunkerSettings":
        """The settings a knowledge base's manifest records (``to_dict``); one made before
        window vectors has none."""
        return cls(int(d["size"]), int(d["overlap"]), int(d.get("windows", 0)))

    def validate(self, max_tokens: int | None = None) -> "ChunkerSettings":
        if self.size < 8:
            raise UsageError(f"chunk size {self.size} is too small; use at least 8 tokens")
        if self.overlap < 0 or self.overlap >= self.size:
            raise UsageError(
                f"chunk overlap {self.overlap} must be >= 0 and smaller than the chunk size "
                f"{self.size}"
            )
        if not 0 <= self.windows <= 10_000:
            raise UsageError(f"window size {self.windows} must be 0 (no window vectors) or a "
                             "number of words, e.g. 24")
        if max_tokens is not None and self.size > max_tokens:
            raise UsageError(
                f"chunk size {self.size} exceeds the embedder's limit of {max_tokens} tokens; "
                f"use --chunk-size {max_tokens} or less"
            )
        return self

    def to_dict(self) -> dict:
        return {"size": self.size, "overlap": self.overlap, "unit": "tokens",
                "splitter": "langchain RecursiveCharacterTextSplitter",
                **({"windows": self.windows} if self.windows else {})}


def _title_only(text: str, title: str | None) -> bool:
    """Whether ``text`` is the line of its section's ``title`` alone (with its number)."""
    line = " ".join(text.split())
    return bool(title) and "\n" not in text.strip() and line.endswith(" ".join(title.split())) \
        and len(line) - len(" ".join(title.split())) <= 12


class Chunker:
    """Owns the splitter and the token counter; ``split`` turns one Document into Chunks."""

    def __init__(self, count_tokens: Callable[[str], int], settings: ChunkerSettings):
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        # it warns on each chunk longer than the size (an unsplittable word); chunks stay
        # within the embedder's limit because the size was validated against it
        logging.getLogger("langchain_text_splitters").setLevel(logging.ERROR)
        self.settings = settings
        # a run without any separator longer than a chunk (base64, minified code)
        self._long_run = re.compile(f"[^{_RUN_BREAKS}]{{{settings.size + 1},}}")
        # The recursive splitter measures the same pieces many times: cache the counts.
        counter = lru_cache(maxsize=65536)(count_tokens)
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            is_separator_regex=True,
            keep_separator="start",
            chunk_size=settings.size,
            chunk_overlap=settings.overlap,
            length_function=counter,
            strip_whitespace=True,
        )

    def split(self, doc: Document) -> list[Chunk]:
        """Chunks of each section in turn: a chunk never spans a heading found by layout (a
        PDF's, HTML's or Word's), so its heading path is the section it lies in. (Markdown
        headings are the splitter's first separator already, and keep that behaviour.)"""
        starts = sorted({s.start for s in doc.sections if 0 < s.start < len(doc.text)
                         and doc.text[s.start] != "#"})
        titles = {s.start: s.title for s in doc.sections}
        chunks: list[Chunk] = []
        for a, b in zip([0] + starts, starts + [len(doc.text)]):
            part = self._split_section(doc, a, b)
            if part and _title_only(part[0].text, titles.get(a)):
                # a chunk of a title alone (a section's first paragraph too long to join it,
                # a chapter's title with its first section right under it) answers nothing
                # and takes a citation's place; the title stays in the heading path of the
                # chunks under it, which BM25 reads with their text
                part = part[1:]
            chunks += part
        return chunks or self._split_section(doc, 0, len(doc.text))

    def _split_section(self, doc: Document, a: int, b: int) -> list[Chunk]:
        """Chunks covering ``doc.text[a:b]`` in order (whitespace between them left out); a
        run without separators longer than a chunk is cut at the chunk size."""
        size, chunks, at = self.settings.size, [], a
        for run in self._long_run.finditer(doc.text, a, b):
            chunks += self._split_span(doc, at, run.start())
            for start in range(run.start(), run.end(), size):
                end = min(start + size, run.end())
                chunks.append(Chunk(doc_id=doc.doc_id, text=doc.text[start:end], start=start,
                                    end=end, page=doc.page_at(start),
                                    heading=doc.heading_at(start)))
            at = run.end()
        return chunks + self._split_span(doc, at, b)

    def _split_span(self, doc: Document, begin: int, stop: int) -> list[Chunk]:
        """The splitter's chunks of ``doc.text[begin:stop]``, with offsets into the text."""
        text, chunks = doc.text[:stop], []
        prev_start, prev_end = begin - 1, begin
        for piece in self._splitter.split_text(text[begin:]):
            # Chunks cover the text in order, leaving out only whitespace, so this one starts
            # at or before the first non-space after the previous one; in periodic text the
            # piece occurs several times there, and the splitter's overlap is the latest one.
            limit = _SPACE.match(text, prev_end).end()
            start = text.rfind(piece, prev_start + 1, limit + len(piece))
            if start < 0 and begin <= text.find(piece, begin) <= prev_end - len(piece):
                # periodic text (a repeated line, a word over and over): the offsets ran
                # ahead of the splitter, and this piece's text is indexed verbatim already
                continue
            if start < 0:  # cannot happen with keep_separator; guard the offsets contract
                raise AssertionError(f"chunk not found in {doc.doc_id!r}")
            end = start + len(piece)
            if end <= prev_end:  # wholly inside the previous chunk: nothing new to index
                continue
            chunks.append(Chunk(
                doc_id=doc.doc_id, text=piece, start=start, end=end,
                page=doc.page_at(start), heading=doc.heading_at(start),
            ))
            prev_start, prev_end = start, end
        return chunks
