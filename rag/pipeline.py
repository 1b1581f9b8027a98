"""The question-answering path shared by `rag ask` and `rag eval`: retrieve, then read.

Example::

    p = Pipeline(Retriever(KnowledgeBase.open("kb")), reader=None, k=5)
    [answer] = p.ask_many(["Who won Super Bowl 50?"])
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from knowledge.types import Hit

from .retrieval import Filters, Retriever


@dataclass(frozen=True)
class Citation:
    """A passage the answer rests on, pointing at exact characters of its document."""

    doc_id: str
    source: str
    page: int | None
    start: int
    end: int
    text: str
    retrieval_score: float
    attention_score: float | None = None
    chunk_id: int | None = None

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source, "page": self.page,
                "start": self.start, "end": self.end, "text": self.text,
                "retrieval_score": self.retrieval_score, "attention_score": self.attention_score,
                "chunk_id": self.chunk_id}


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...] = ()  # everything retrieved (may be deeper than k)
    timings: dict = field(default_factory=dict)  # milliseconds per stage
    confidence: float | None = None

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "abstained": self.abstained,
                "confidence": self.confidence,
                "citations": [c.to_dict() for c in self.citations], "timings": self.timings}


def citation_of(hit: Hit, attention: float | None = None) -> Citation:
    return Citation(doc_id=hit.doc_id, source=hit.source, page=hit.page, start=hit.start,
                    end=hit.end, text=hit.text, retrieval_score=hit.score,
                    attention_score=attention, chunk_id=hit.chunk_id)


class Pipeline:
    """Owns a retriever, an optional reader and k; answers batches of questions."""

    def __init__(self, retriever: Retriever, reader=None, k: int = 5):
        self.retriever = retriever
        self.reader = reader
        self.k = k

    def settings(self) -> dict:
        return {"k": self.k, "retrieval": self.retriever.settings(),
                "reader": self.reader.identity() if self.reader is not None else None}

    def ask_many(self, questions: list[str], filters: Filters | None = None,
                 depth: int | None = None) -> list[Answer]:
        """Answers in order; ``depth`` retrieves deeper than k (for recall@20) without
        changing what the reader sees (the same top k)."""
        t0 = time.perf_counter()
        hits = self.retriever.retrieve_many(questions, max(self.k, depth or 0), filters)
        retrieval_ms = (time.perf_counter() - t0) * 1000 / max(len(questions), 1)
        if self.reader is None:
            return [Answer(question=q, answer="", abstained=False,
                           citations=tuple(citation_of(h) for h in hs[:self.k]),
                           retrieved=tuple(hs), timings={"retrieval_ms": retrieval_ms})
                    for q, hs in zip(questions, hits)]
        t1 = time.perf_counter()
        outputs = self.reader.read_many(questions, [hs[:self.k] for hs in hits])
        reader_ms = (time.perf_counter() - t1) * 1000 / max(len(questions), 1)
        answers = []
        for q, hs, out in zip(questions, hits, outputs):
            passages = hs[:self.k]
            order = sorted(range(len(passages)), key=lambda i: -(out.attention[i]
                                                                 if out.attention else 0))
            answers.append(Answer(
                question=q, answer=out.answer, abstained=out.abstained,
                citations=tuple(citation_of(passages[i], out.attention[i] if out.attention
                                            else None) for i in order),
                retrieved=tuple(hs), confidence=out.confidence,
                timings={"retrieval_ms": retrieval_ms, "reader_ms": reader_ms}))
        return answers
