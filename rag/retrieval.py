"""Retrieval over a knowledge base: dense (FAISS), lexical (BM25 over SQLite FTS5), or
hybrid (both fused by reciprocal rank fusion, the default).

Example::

    r = Retriever(KnowledgeBase.open("kb"))
    hits = r.retrieve("Who won Super Bowl 50?", k=5)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


from knowledge.errors import UsageError
from knowledge.kb import KnowledgeBase
from knowledge.store import TABULAR_SUFFIXES
from knowledge.types import Hit

from .metrics import answer_in_text

MODES = ("hybrid", "dense", "lexical")
# RRF's constant damps the weight of the very top ranks; Cormack et al. (2009) use 60. On the
# train splits of both QA sets, constants 2-10 gave the best answer-recall@5 (60: 88.2, 5:
# 89.75, best 3: 89.8), and weighting dense against BM25 gained nothing beyond noise:
# eval/tune_fusion.py, eval/RESULTS.md.
RRF_K = 5


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
        if k < 1:
            raise UsageError(f"k must be at least 1 (got {k})")
        for q in queries:
            if not q or not q.strip():
                raise UsageError("empty question; give some text to search for")
        with self.kb.snapshot():  # every read of this call from one committed generation
            return self._search_many(queries, k, filters)

    def _search_many(self, queries: list[str], k: int, filters: Filters | None) -> Retrieved:
        allowed = None
        similarity: list[float | None] = [None] * len(queries)
        if filters:
            allowed = self.kb.chunk_ids_where(filters.path_glob, dict(filters.metadata))
            if len(allowed) == 0:
                return Retrieved([[] for _ in queries], similarity)
        n = max(k, self.candidates) if self.mode == "hybrid" else k
        dense = lexical = None
        t0 = time.perf_counter()
        embed_ms = 0.0
        if self.mode in ("dense", "hybrid"):
            vecs = self.kb.embedder.encode_queries(list(queries))
            embed_ms = (time.perf_counter() - t0) * 1000
            dense = self.kb.dense_ids(vecs, n, allowed)
            similarity = [d[0][0] if d else None for d in dense]
        if self.mode in ("lexical", "hybrid"):
            lexical = [self.kb.lexical_ids(q, n, allowed) for q in queries]
        results = []
        for i in range(len(queries)):
            if self.mode == "dense":
                pairs = dense[i][:k]
            elif self.mode == "lexical":
                pairs = lexical[i][:k]
            else:
                pairs = rrf([dense[i], lexical[i]])[:k]
            results.append(self.kb.fetch(pairs))
        total = (time.perf_counter() - t0) * 1000
        return Retrieved(results, similarity, {"embed_ms": embed_ms, "search_ms": total - embed_ms})


def rrf(rankings: list[list[tuple[float, int]]], k: int = RRF_K,
        weights: tuple[float, ...] | None = None) -> list[tuple[float, int]]:
    """Reciprocal rank fusion of ranked (score, id) lists: score = sum of w / (k + rank),
    with one weight per list (all 1 by default)."""
    fused: dict[int, float] = {}
    for ranking, w in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, (_, cid) in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + w / (k + rank)
    return sorted(((s, cid) for cid, s in fused.items()), key=lambda p: (-p[0], p[1]))


def gold_documents(conn, gold_ids: list[str]) -> list[int]:
    """Row ids of the documents a QA set's gold ids name (see ``metrics.is_gold``): the
    document of that id, or the JSONL/CSV row ``<file>#<that id>`` of any tabular file."""
    if not gold_ids:
        return []
    tabular = [r[0] for r in conn.execute(
        "SELECT DISTINCT path FROM files WHERE " + " OR ".join(
            "path LIKE ?" for _ in TABULAR_SUFFIXES), [f"%{x}" for x in TABULAR_SUFFIXES])]
    wanted = list(gold_ids) + [f"{path}#{g}" for path in tabular for g in gold_ids]
    rows = set()
    for i in range(0, len(wanted), 500):  # (SQLite's variable limit)
        part = wanted[i:i + 500]
        rows |= {r[0] for r in conn.execute(
            f"SELECT id FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part)}
    return sorted(rows)


def gold_passage(kb: KnowledgeBase, q) -> Hit | None:
    """A chunk of a gold document that contains an answer, nearest the known context."""
    if not q.gold_ids:
        return None
    docs = gold_documents(kb.store.conn, list(q.gold_ids))
    marks = ",".join("?" * len(docs))
    rows = kb.store.conn.execute(
        f'SELECT c.id, c.start, c."end", c.text FROM chunks c WHERE c.document_id IN ({marks}) '
        f"ORDER BY c.id", docs).fetchall() if docs else []
    target = q.extra.get("context_start")
    best = None
    for cid, start, end, text in rows:
        if answer_in_text(list(q.answers), text):
            dist = abs(start - target) if target is not None else 0
            if best is None or dist < best[0]:
                best = (dist, cid)
    return kb.fetch([(0.0, best[1])])[0] if best else None


class GoldRetriever:
    """Stands in for a Retriever to give the reader only each question's gold passage
    (reader quality without retrieval errors): ``rag eval --passages gold``."""

    def __init__(self, kb: KnowledgeBase, questions):
        self.kb = kb
        self.gold = {}
        for q in questions:
            if q.question not in self.gold:
                hit = gold_passage(kb, q)
                self.gold[q.question] = [hit] if hit else []

    def settings(self) -> dict:
        return {"mode": "gold"}

    def retrieve_many(self, queries: list[str], k: int = 1, filters=None) -> list[list[Hit]]:
        return [self.gold.get(q, []) for q in queries]

    def search_many(self, queries: list[str], k: int = 1, filters=None) -> Retrieved:
        return Retrieved(self.retrieve_many(queries, k), [None] * len(queries))
