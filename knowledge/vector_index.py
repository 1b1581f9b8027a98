"""FAISS indexes keyed by chunk id (the only module that imports faiss).

Kinds: ``flat`` (exact inner product), ``ivfsq8`` (inverted lists of 8-bit scalar codes,
4x smaller than the vectors), ``ivfpq`` (inverted lists of 48-byte product codes, 32x
smaller; callers re-score its candidates exactly, ``compressed``) and ``hnsw`` (a graph over
the full vectors: fastest search, but no deletes and the most memory; on request only).
Vectors are normalised, so inner product is cosine similarity. Which kind ``auto`` picks at
which size follows from ``eval/bench_scale.py kinds`` (eval/RESULTS.md).

Example: ``ix = VectorIndex.build("flat", 384, ids, vecs); ix.search(q, 5)``.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UsageError

KINDS = ("auto", "flat", "ivfsq8", "ivfpq", "hnsw")
IVF_KINDS = ("ivfsq8", "ivfpq")
# Measured on 2 cores (eval/RESULTS.md, "Index kinds by size"): exact search costs ~0.15 ms
# per 1,000 vectors (15 ms at 100k, 142 ms at 1M), IVF with 8-bit codes 0.6 ms at 100k and
# 6 ms at 1M for recall@10 0.97-0.99; past 2M its codes (384 B/vector) outgrow a 2 GB search
# process, and 48-byte product codes re-scored exactly keep recall@10 ~0.97.
IVF_FROM = 30_000  # exact search below: ~4.5 ms, and recall 1
IVFPQ_FROM = 2_000_000
IVF_MIN = 1_000  # fewer vectors cannot train the inverted lists (and product quantiser) well
TRAIN_SAMPLE = 200_000  # vectors the quantisers are trained on


def choose_kind(kind: str, n: int) -> str:
    """The concrete kind for ``n`` vectors: ``auto`` picks by size."""
    if kind not in KINDS:
        raise UsageError(f"index kind {kind!r} must be one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    if n >= IVFPQ_FROM:
        return "ivfpq"
    return "ivfsq8" if n >= IVF_FROM else "flat"


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` vectors: ~4 sqrt(n), with >= 39 training points each."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def nprobe_for(nlist: int) -> int:
    """Inverted lists visited per query (see eval/RESULTS.md, "Index kinds by size")."""
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
        ix = cls.empty(kind, dim, len(ids), vecs)
        ix.add(ids, vecs)
        return ix

    @classmethod
    def empty(cls, kind: str, dim: int, n: int, sample: np.ndarray) -> "VectorIndex":
        """An index sized for ``n`` vectors and trained on (up to TRAIN_SAMPLE of) ``sample``,
        holding none yet."""
        import faiss

        if kind == "flat":
            return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), kind)
        if kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = 80
            hnsw.hnsw.efSearch = 64
            return cls(faiss.IndexIDMap2(hnsw), kind)
        if kind not in IVF_KINDS:
            raise UsageError(f"index kind {kind!r} must be one of {', '.join(KINDS[1:])}")
        if n < IVF_MIN or len(sample) < IVF_MIN:
            raise UsageError(f"an {kind} index needs at least {IVF_MIN} chunks to train (have "
                             f"{min(n, len(sample))}); use --index flat or auto")
        nlist = nlist_for(n)
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "ivfsq8":
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist,
                                                  faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        else:
            m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dim % m == 0)
            # 8-bit codebooks want ~39 training points per centroid (256 * 39)
            nbits = 8 if len(sample) >= 9984 else 6 if len(sample) >= 2496 else 4
            index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        if len(sample) > TRAIN_SAMPLE:
            sample = sample[np.random.default_rng(0).choice(len(sample), TRAIN_SAMPLE,
                                                            replace=False)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = nprobe_for(nlist)
        return cls(index, kind)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32),
                                    np.ascontiguousarray(ids, dtype=np.int64))

    @property
    def compressed(self) -> bool:
        """Scores are approximate enough that callers should re-score candidates exactly."""
        return self.kind == "ivfpq"

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
        if self.kind in IVF_KINDS:
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

        return cls._tuned(faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8)), kind)

    @classmethod
    def read(cls, path, kind: str, mmap: bool = False) -> "VectorIndex":
        """The index in file ``path``; ``mmap``: read-only, its vectors or codes mapped from
        the file instead of loaded (pages come in as searches touch them, and the OS can drop
        them again), so opening costs little RAM whatever the size."""
        import faiss

        flags = 0
        if mmap:
            flags = faiss.IO_FLAG_READ_ONLY | (faiss.IO_FLAG_MMAP if kind in IVF_KINDS
                                               else faiss.IO_FLAG_MMAP_IFC)
        return cls._tuned(faiss.read_index(str(path), flags), kind)

    @classmethod
    def _tuned(cls, index, kind: str) -> "VectorIndex":
        import faiss

        if kind in IVF_KINDS:
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = nprobe_for(ivf.nlist)
        elif kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = 64
        return cls(index, kind)
