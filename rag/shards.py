"""Several knowledge bases searched as one (the unit a deployment past one machine scales
by, README "100M chunks"): each shard is an ordinary KB directory with its own SQLite, FAISS
index and writer; a query fans out to every shard and the results merge.

Dense scores are exact cosines in every shard (flat search, or compressed candidates
re-scored from the stored vectors), so merging by score gives what one KB holding every
chunk would give. BM25 scores use each shard's own term statistics: comparable when
documents are spread across shards at random (by a hash of their path), not exactly equal
to one KB's.

Example::

    with Shards.open(["kb-0", "kb-1"]) as shards:
        hits = shards.search("Who won Super Bowl 50?", k=5)
"""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from knowledge.kb import KnowledgeBase
from knowledge.types import Hit

from .retrieval import rrf


class Shards:
    """Knowledge bases built with the same embedder, searched together."""

    def __init__(self, kbs: list[KnowledgeBase]):
        if not kbs:
            raise ValueError("no shards given")
        self.kbs = kbs

    @classmethod
    def open(cls, paths: list[str | os.PathLike], embedder=None) -> "Shards":
        kbs = []
        try:
            for path in paths:
                kbs.append(KnowledgeBase.open(path, embedder))
                if embedder is None:  # one model for all shards (they share an embedder)
                    embedder = kbs[0].embedder
        except BaseException:
            for kb in kbs:
                kb.close()
            raise
        return cls(kbs)

    def dense(self, vec: np.ndarray, k: int) -> list[tuple[float, int, Hit]]:
        """(score, shard, hit) of the ``k`` chunks most similar to ``vec``, across shards."""
        found = []
        for s, kb in enumerate(self.kbs):
            with kb.snapshot():
                found += [(h.score, s, h) for h in kb.fetch(kb.dense_ids(vec[None, :], k)[0])]
        return sorted(found, key=lambda t: (-t[0], t[1], t[2].chunk_id))[:k]

    def lexical(self, query: str, k: int) -> list[tuple[float, int, Hit]]:
        """(BM25 score, shard, hit) of the ``k`` best lexical matches, across shards."""
        found = []
        for s, kb in enumerate(self.kbs):
            with kb.snapshot():
                pairs = kb.lexical_ids(query, k)
                found += [(score, s, h) for (score, _), h in zip(pairs, kb.fetch(pairs))]
        return sorted(found, key=lambda t: (-t[0], t[1], t[2].chunk_id))[:k]

    def search(self, query: str, k: int = 5, mode: str = "hybrid",
               candidates: int = 50) -> list[Hit]:
        """Top ``k`` hits: dense, lexical, or both fused by reciprocal rank (as ``rag ask``)."""
        vec = self.kbs[0].embedder.encode_queries([query])[0] if mode != "lexical" else None
        if mode == "dense":
            return [h for _, _, h in self.dense(vec, k)]
        if mode == "lexical":
            return [h for _, _, h in self.lexical(query, k)]
        n = max(k, candidates)
        hits: dict[tuple[int, int], Hit] = {}
        rankings = []
        for found in (self.dense(vec, n), self.lexical(query, n)):
            rankings.append([(score, (s, h.chunk_id)) for score, s, h in found])
            hits.update({(s, h.chunk_id): h for _, s, h in found})
        return [replace(hits[key], score=round(score, 6)) for score, key in rrf(rankings)[:k]]

    def close(self) -> None:
        for kb in self.kbs:
            kb.close()

    def __enter__(self) -> "Shards":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
