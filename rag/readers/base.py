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
    # 0-1: span readers, the best span's probability against the no-answer option's;
    # generated answers, the geometric-mean token probability
    confidence: float
    attention: list[float] | None = None  # per passage, sums to 1 (None: no attribution)
    abstained: bool = False
    span: Span | None = None
