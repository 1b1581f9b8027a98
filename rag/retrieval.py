"""Retrieval over a knowledge base: dense (FAISS), lexical (BM25, knowledge/bm25.py), or
hybrid (both fused by reciprocal rank fusion, the default).

Example::

    r = Retriever(KnowledgeBase.open("kb"))
    hits = r.retrieve("Who won Super Bowl 50?", k=5)
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


from knowledge import bm25
from knowledge.errors import UsageError
from knowledge.kb import KnowledgeBase
from knowledge.types import NOT_TEXT, VISIBLE, Hit


MODES = ("hybrid", "dense", "lexical")
# RRF's constant damps the weight of the very top ranks; Cormack et al. (2009) use 60. On the
# train splits of both QA sets, constants 2-10 gave the best answer-recall@5 (60: 88.2, 5:
# 89.75, best 3: 89.8), and weighting dense against BM25 gained nothing beyond noise:
# eval/tune_fusion.py, eval/RESULTS.md.
RRF_K = 5
# From this many chunks hybrid search runs BM25 in a thread beside embedding the question and
# FAISS (Tantivy releases the GIL): at 10M chunks that hides its ~10 ms; below, a thread's
# start and the GIL handovers cost more than BM25 takes (eval/RESULTS.md, "BM25 at scale").
PARALLEL_FROM = 1_000_000
# hits fetched beyond k, so that a table of contents or an index found among the best can
# step back behind prose (``content_first``)
APPARATUS_SLACK = 5
# the most hits one search returns: each is fetched whole from SQLite, and BM25 and FAISS
# allocate for as many as asked (a k of 2**31 aborted Tantivy)
MAX_K = 10_000


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to documents whose path or id matches a glob and/or metadata."""

    path_glob: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, path_glob: str | None, where: list[str] | None) -> "Filters":
        pairs = []
        for item in where or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--where {item!r} must look like KEY=VALUE")
            pairs.append((key.strip(), value.strip()))
        return cls(path_glob, tuple(pairs))

    def __bool__(self) -> bool:
        return bool(self.path_glob or self.metadata)


@dataclass(frozen=True)
class Retrieved:
    """One retrieval call: hits per query, each query's best dense similarity to any chunk
    (None where there are no dense scores), and milliseconds per stage of the call."""

    hits: list[list[Hit]]
    similarity: list[float | None]
    timings: dict = field(default_factory=dict)


class Retriever:
    """Owns the retrieval settings over one open knowledge base."""

    def __init__(self, kb: KnowledgeBase, mode: str = "hybrid", candidates: int = 50):
        if mode not in MODES:
            raise UsageError(f"retrieval mode {mode!r} must be one of {', '.join(MODES)}")
        self.kb = kb
        self.mode = mode
        self.candidates = candidates  # per list, before fusion

    def settings(self) -> dict:
        return {"mode": self.mode, "candidates": self.candidates, "rrf_k": RRF_K}

    def retrieve(self, query: str, k: int = 5, filters: Filters | None = None) -> list[Hit]:
        return self.retrieve_many([query], k, filters)[0]

    def retrieve_many(self, queries: list[str], k: int = 5,
                      filters: Filters | None = None) -> list[list[Hit]]:
        """Top ``k`` hits per query; queries are embedded in one batch."""
        return self.search_many(queries, k, filters).hits

    def search_many(self, queries: list[str], k: int = 5,
                    filters: Filters | None = None) -> Retrieved:
        """Top ``k`` hits per query, with similarities and timings (``Retrieved``)."""
        if not 1 <= k <= MAX_K:
            raise UsageError(f"k must be 1-{MAX_K} (got {k})")
        for q in queries:
            if not VISIBLE.search(q):  # (spaces, controls, zero-widths: nothing to search for)
                raise UsageError("empty question; give some text to search for")
            if NOT_TEXT.search(q):  # (bytes that were not UTF-8, read with surrogateescape)
                raise UsageError("the question holds bytes that are not UTF-8 text; "
                                 "give it as UTF-8")
        with self.kb.snapshot():  # every read of this call from one committed generation
            return self._search_many(queries, k, filters)

    def _search_many(self, queries: list[str], k: int, filters: Filters | None) -> Retrieved:
        allowed = None
        similarity: list[float | None] = [None] * len(queries)
        if filters:
            allowed = self.kb.chunk_ids_where(filters.path_glob, dict(filters.metadata))
            if len(allowed) == 0:
                return Retrieved([[] for _ in queries], similarity)
        want = k + APPARATUS_SLACK
        n = max(want, self.candidates) if self.mode == "hybrid" else want
        dense = lexical = None
        t0 = time.perf_counter()
        embed_ms = 0.0
        index = self.kb.bm25_index() if self.mode == "hybrid" else None
        if index is not None and index.num_docs >= PARALLEL_FROM:
            lexical = _background(lambda: [index.search(bm25.terms(q), n, allowed)
                                           for q in queries])
        if self.mode in ("dense", "hybrid"):
            vecs = self.kb.embedder.encode_queries(list(queries))
            embed_ms = (time.perf_counter() - t0) * 1000
            dense, similarity = self.kb.dense_search(vecs, n, allowed)
        if lexical is not None:
            lexical = lexical()
        elif self.mode in ("lexical", "hybrid"):
            lexical = [self.kb.lexical_ids(q, n, allowed) for q in queries]
        results = []
        for i in range(len(queries)):
            if self.mode == "dense":
                pairs = dense[i][:want]
            elif self.mode == "lexical":
                pairs = lexical[i][:want]
            else:
                pairs = rrf([dense[i], lexical[i]])[:want]
            results.append(content_first(self.kb.fetch(pairs), k))
        total = (time.perf_counter() - t0) * 1000
        return Retrieved(results, similarity, {"embed_ms": embed_ms, "search_ms": total - embed_ms})


def _background(fn):
    """Start ``fn()`` in a thread; returns a function that waits for its result (or raises
    its error)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 (raised again in the caller's thread)
            box["error"] = err
    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]
    return result


def content_first(hits: list[Hit], k: int) -> list[Hit]:
    """The best ``k`` hits with table-of-contents and index chunks (``Hit.kind``) moved
    behind all others: still found, but read only when nothing else matches.
    ``content_first([toc, a, b], 2) == [a, b]``."""
    return ([h for h in hits if not h.kind] + [h for h in hits if h.kind])[:k]


def rrf(rankings: list[list[tuple[float, int]]], k: int = RRF_K,
        weights: tuple[float, ...] | None = None) -> list[tuple[float, int]]:
    """Reciprocal rank fusion of ranked (score, id) lists: score = sum of w / (k + rank),
    with one weight per list (all 1 by default)."""
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, (_, cid) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + w / (k + rank)
    return sorted(((s, cid) for cid, s in fused.items()), key=lambda p: (-p[0], p[1]))
