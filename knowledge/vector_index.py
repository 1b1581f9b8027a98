"""FAISS indexes keyed by chunk id (the only module that imports faiss).

Kinds: ``flat`` (exact inner product), ``hnsw`` (graph, for ~100k-5M vectors) and ``ivfpq``
(compressed, for more). Vectors are normalised, so inner product is cosine similarity.

Example: ``ix = VectorIndex.build("flat", 384, ids, vecs); ix.search(q, 5)``.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UsageError

KINDS = ("auto", "flat", "hnsw", "ivfpq")
HNSW_FROM = 200_000  # below this exact search is fast enough (~10 ms/query at 384-d)
IVFPQ_FROM = 5_000_000  # above this HNSW's memory (full vectors + graph) grows too large
IVFPQ_MIN = 1_000  # fewer vectors cannot train the product quantiser well


def choose_kind(kind: str, n: int) -> str:
    """The concrete kind for ``n`` vectors: ``auto`` picks by size."""
    if kind not in KINDS:
        raise UsageError(f"index kind {kind!r} must be one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    if n >= IVFPQ_FROM:
        return "ivfpq"
    return "hnsw" if n >= HNSW_FROM else "flat"


def _nprobe(nlist: int) -> int:
    """Inverted lists visited per query: recall over speed (about a tenth of them, >= 32)."""
    return min(nlist, max(32, nlist // 10))


class VectorIndex:
    """A FAISS index whose ids are chunk ids; supports add, remove and search."""

    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def build(cls, kind: str, dim: int, ids: np.ndarray, vecs: np.ndarray) -> "VectorIndex":
        import faiss

        n = len(ids)
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            hnsw.hnsw.efSearch = 64
            index = faiss.IndexIDMap2(hnsw)
        elif kind == "ivfpq":
            if n < IVFPQ_MIN:
                raise UsageError(
                    f"an ivfpq index needs at least {IVFPQ_MIN} chunks to train (have {n}); "
                    "use --index flat or auto"
                )
            nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
            m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dim % m == 0)
            # 8-bit codebooks want ~39 training points per centroid (256 * 39)
            nbits = 8 if n >= 9984 else 6 if n >= 2496 else 4
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(0)
            sample = vecs if n <= 100_000 else vecs[rng.choice(n, 100_000, replace=False)]
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
            index.nprobe = _nprobe(nlist)
        else:
            raise UsageError(f"index kind {kind!r} must be one of {', '.join(KINDS[1:])}")
        ix = cls(index, kind)
        ix.add(ids, vecs)
        return ix

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))

    @property
    def can_remove(self) -> bool:
        return self.kind != "hnsw"  # HNSW graphs cannot delete; callers rebuild instead

    def remove(self, ids: np.ndarray) -> int:
        import faiss

        if not len(ids):
            return 0
        if not self.can_remove:
            raise RuntimeError("hnsw indexes cannot remove ids; rebuild")
        return int(self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def ids(self) -> np.ndarray:
        """All chunk ids held, sorted (for consistency checks)."""
        import faiss

        if isinstance(self.index, faiss.IndexIDMap):
            out = faiss.vector_to_array(self.index.id_map)
        else:  # IVF: ids live in the inverted lists
            invlists = self.index.invlists
            parts = [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(invlists.nlist) if invlists.list_size(i)
            ]
            out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.sort(out.astype(np.int64))

    def search(self, queries: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of shape (nq, k); missing results have id -1.

        ``allowed`` restricts the search to those ids (a filter applied inside FAISS).
        """
        import faiss

        q = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, max(self.ntotal, 1)))
        if allowed is None:
            return self.index.search(q, k)
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
        if self.kind == "ivfpq":
            ivf = faiss.extract_index_ivf(self.index)
            params = faiss.SearchParametersIVF(sel=sel, nprobe=ivf.nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
        return self.index.search(q, k, params=params)

    def to_bytes(self) -> bytes:
        import faiss

        return faiss.serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, kind: str) -> "VectorIndex":
        import faiss

        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if kind == "ivfpq":
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = _nprobe(ivf.nlist)
        elif kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = 64
        return cls(index, kind)
