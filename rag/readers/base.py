"""What every reader returns, and the shared reader settings.

Example: ``ReaderOutput(answer="Denver Broncos", confidence=0.9, attention=[0.8, 0.2])``.
"""
from __future__ import annotations

from dataclasses import dataclass

NOT_FOUND = "not found in the knowledge base"


@dataclass(frozen=True)
class Span:
    """Where a grounded answer sits: passage index and character offsets in its text."""

    passage: int
    start: int
    end: int


@dataclass(frozen=True)
class ReaderOutput:
    answer: str
    confidence: float  # geometric-mean token probability of the answer, 0-1
    attention: list[float] | None = None  # per passage, sums to 1 (None: no attribution)
    abstained: bool = False
    span: Span | None = None
