"""What every reader is and returns.

A reader implements ``read_batch(questions, passages) -> ReadBatch``: the outputs and the
call's timings travel back together, so concurrent callers (a server) never share them.

Example: ``ReaderOutput(answer="Denver Broncos", confidence=0.9, attention=[0.8, 0.2])``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
    # span readers: where the reader placed the answer's start and end, per passage index:
    # [(char start, char end, p_start, p_end) per context token], offsets in that passage's
    # text (the page shows the answer's passage)
    heat: dict[int, list[tuple[int, int, float, float]]] | None = None
    # span readers: the best spans, (probability, passage index, start, end), best first
    # (rag/forms.py places an answer's sentence or steps by where their probability lies)
    candidates: tuple = ()
    withheld: str | None = None  # a declined answer: what it would have been


@dataclass(frozen=True)
class ReadBatch:
    """One reader call: an output per question, and milliseconds per stage of the call."""

    outputs: list[ReaderOutput]
    timings: dict = field(default_factory=dict)


class Reader:
    """The interface `Pipeline` uses; subclasses implement ``read_batch``."""

    config = None  # a ReaderConfig (abstention thresholds, k)

    def read_batch(self, questions: list[str], passages: list[list]) -> ReadBatch:
        raise NotImplementedError

    def read_many(self, questions: list[str], passages: list[list]) -> list[ReaderOutput]:
        return self.read_batch(questions, passages).outputs

    def share_base_weights(self, embedder) -> int:
        """Let frozen weights be the embedder's own copy; how many were shared (0: none)."""
        return 0

    def scripts(self) -> tuple[str, ...]:
        """The scripts (ISO 15924, knowledge/language.py) of the languages the reader was
        trained on: its config's ``scripts``; a reader that declares none is taken to read
        Latin-script (English) text only. "*": any."""
        return tuple(getattr(self.config, "scripts", None) or ("Latn",))

    def identity(self) -> dict:
        return {"kind": type(self).__name__}
