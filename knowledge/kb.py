"""KnowledgeBase: an open knowledge base you can search (dense retrieval).

Example::

    kb = KnowledgeBase.open("kb")
    for hit in kb.search("Who won Super Bowl 50?", k=5):
        print(hit.score, hit.doc_id, hit.text[:80])
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .errors import UsageError
from . import bm25
from .lexical import STOPWORDS, lexical
from .store import Store, metadata_of
from .types import Hit
from .windows import rescore


# compressed (IVF-PQ) indexes: candidates re-scored exactly from the stored vectors (1M chunks:
# recall@10 0.93 with 100, 0.97 with 200, 0.99 with 400; eval/RESULTS.md)
RESCORE = 200
# chunks re-scored with their window vectors (manuals-train, hybrid, the answer in the top 3:
# none 73.3, the best 100 75.0, 200 75.1, 400 75.2, all 75.3; eval/RESULTS.md, "Window vectors")
WINDOW_CANDIDATES = 200
# a document of more chunks than this (~200 tokens, 500-1,000 characters each) is not read
# past a passage at ask time (`text_after`: SQLite reads a text value whole, ~2.5 ms per
# million characters; the gnuplot manual is 0.9M characters in 1,741 chunks)
READ_MAX_CHUNKS = 4000


def fts_query(text: str, segment: bool = True) -> str:
    """An FTS5 MATCH expression (knowledge bases of a format before 5): the query's words
    OR-ed, quoted (no FTS5 syntax leaks in); CJK runs as the bigrams the index holds
    (``segment``; off for a KB of format < 3)."""
    words = [w.lower() for w in re.findall(r"\w+", lexical(text) if segment else text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(kept))


class KnowledgeBase:
    """Owns an open Store and (lazily) the embedder that built it."""

    def __init__(self, store: Store, embedder=None):
        self.store = store
        self._embedder = embedder
        if embedder is not None:
            self._check_embedder(embedder.identity())

    @classmethod
    def open(cls, path: str | os.PathLike, embedder=None) -> "KnowledgeBase":
        """Open the knowledge base at ``path``; ``embedder`` defaults to the one that built it."""
        return cls(Store.open(Path(path)), embedder)

    @property
    def manifest(self) -> dict:
        return self.store.manifest

    @property
    def embedder(self):
        if self._embedder is None:
            from .embedding import Embedder, embedder_weights_hash

            built = self.manifest["embedder"]
            # check the weights before paying for the model load
            if embedder_weights_hash(built["name"]) != built["weights_sha256"]:
                raise UsageError(
                    f"the weights of embedder {built['name']!r} installed here differ from those "
                    f"that built {self.store.path}; reinstall them or rebuild with --rebuild")
            self._embedder = Embedder.load(built["name"])
        return self._embedder

    def _check_embedder(self, identity: dict) -> None:
        built = self.manifest["embedder"]
        if (identity["name"], identity["weights_sha256"]) != (built["name"], built["weights_sha256"]):
            raise UsageError(
                f"{self.store.path} was built with embedder {built['name']!r}; it cannot be "
                f"queried with {identity['name']!r} (weights {identity['weights_sha256'][:12]}); "
                "use the same embedder or rebuild the knowledge base")

    def search(self, query: str, k: int = 5, allowed: np.ndarray | None = None) -> list[Hit]:
        """The ``k`` chunks most similar to ``query``, best first (ties broken by chunk id)."""
        if not query or not query.strip():
            raise UsageError("empty query; give some text to search for")
        if k < 1:
            raise UsageError(f"k must be at least 1 (got {k})")
        vec = self.embedder.encode_queries([query])
        return self.search_vector(vec[0], k, allowed)

    def search_vector(self, vec: np.ndarray, k: int = 5,
                      allowed: np.ndarray | None = None) -> list[Hit]:
        with self.snapshot():
            return self.fetch(self.dense_ids(vec[None, :], k, allowed)[0])

    def snapshot(self):
        """A context in which every read sees one committed generation (``Store.snapshot``):
        wrap a search and the fetch of its hits in it."""
        return self.store.snapshot()

    def similarity_anchor(self) -> float | None:
        """The median best similarity of this knowledge base's own sentences asked as
        questions (knowledge/profile.py): from the manifest, or measured now (once per
        open) for one built before `rag index` measured it, or a small one measured before
        whole-chunk sentences were told apart (``profile.before_whole``). None for an empty
        one."""
        from .profile import before_whole

        anchor = self.manifest.get("similarity_anchor")
        if anchor is None or before_whole(anchor):
            if getattr(self, "_anchor", None) is None:
                from .profile import measure

                # a chunk's own vector, as at index time and as the rule reads similarity (a
                # window would find its own sentence: knowledge/windows.py)
                self._anchor = measure(self.store.conn, self.embedder.encode_queries,
                                       lambda vecs: [b or 0.0 for b in
                                                     self.dense_search(vecs, 1)[1]]) or {}
            anchor = self._anchor
        return anchor.get("median")

    def technical_share(self) -> float | None:
        """The share of technical words (paths, options, calls) in a fixed sample of this
        knowledge base's chunks (knowledge/profile.py): from the manifest, or read now (once
        per open, no embedder needed) for one indexed before `rag index` recorded it. None
        for an empty one."""
        anchor = self.manifest.get("similarity_anchor") or {}
        if "technical" in anchor:
            return anchor["technical"]
        if not hasattr(self, "_technical"):
            from .profile import measure_technical

            self._technical = measure_technical(self.store.conn)
        return self._technical

    def dense_ids(self, vecs: np.ndarray, k: int,
                  allowed: np.ndarray | None = None) -> list[list[tuple[float, int]]]:
        """Per query vector, the (score, chunk id) pairs of its ``k`` nearest chunks
        (``dense_search``)."""
        return self.dense_search(vecs, k, allowed)[0]

    def dense_search(self, vecs: np.ndarray, k: int, allowed: np.ndarray | None = None,
                     ) -> tuple[list[list[tuple[float, int]]], list[float | None]]:
        """Per query vector, the (score, chunk id) pairs of its ``k`` nearest chunks, and its
        best similarity to a chunk's own vector (what the abstention rule reads). With a
        compressed index the best ``RESCORE`` candidates are re-scored with the vectors kept
        in SQLite, so scores are exact cosines and recall is close to exact search. Where
        chunks have window vectors (``knowledge/windows.py``), the best ``WINDOW_CANDIDATES``
        are re-scored with them (``windows.rescore``)."""
        self.store.refresh()
        index = self.store.index
        if index.ntotal == 0:
            return [[] for _ in range(len(vecs))], [None] * len(vecs)
        windows = bool(self.store.manifest["chunker"].get("windows"))
        depth = max(k, RESCORE if index.compressed else 0, WINDOW_CANDIDATES if windows else 0)
        scores, ids = index.search(vecs, depth, allowed)
        out, best = [], []
        for vec, srow, irow in zip(vecs, scores, ids):
            pairs = [(float(s), int(i)) for s, i in zip(srow, irow) if i >= 0]
            if index.compressed and pairs:
                found, stored = self.store.vectors([i for _, i in pairs])
                pairs = list(zip((stored @ np.asarray(vec, np.float32)).tolist(), found.tolist()))
            pairs.sort(key=lambda p: (-p[0], p[1]))
            best.append(pairs[0][0] if pairs else None)
            if windows and pairs:
                near = pairs[:WINDOW_CANDIDATES]
                pairs = rescore(vec, near, self.store.windows([i for _, i in near]), index.dim)
            out.append(pairs[:k])
        return out, best

    def lexical_ids(self, query: str, k: int,
                    allowed: np.ndarray | None = None) -> list[tuple[float, int]]:
        """(BM25 score, chunk id) pairs, best first (higher is better): from the generation's
        Tantivy index (bm25.py), or FTS5 in a knowledge base of a format before 5."""
        index = self.bm25_index()
        if index is not None:
            return index.search(bm25.terms(query), k, allowed)
        match = fts_query(query, segment="lexical" in self.manifest)
        if not match:
            return []
        sql = ("SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? "
               "ORDER BY s, rowid LIMIT ?")
        args: list = [match, k]
        if allowed is not None:
            if len(allowed) == 0:
                return []
            sql = sql.replace("WHERE", f"WHERE rowid IN ({','.join(map(str, map(int, allowed)))}) "
                                       "AND")
        return [(-float(s), int(i)) for i, s in self.store.conn.execute(sql, args)]

    def bm25_index(self) -> bm25.Bm25Index | None:
        """The committed generation's BM25 index (``Bm25Index.search`` reads no SQLite, so a
        thread may run it beside a dense search); None for a KB of a format before 5 (FTS5)."""
        self.store.refresh()
        return self.store.lexical_index()

    def chunk_ids_where(self, path_glob: str | None = None,
                        metadata: dict | None = None) -> np.ndarray:
        """Ids of chunks whose document matches a path/id glob and metadata equalities (a
        list's value, a note's ``tags: [a, b]``, matches each of its items)."""
        sql = ("SELECT c.id FROM chunks c JOIN documents d ON c.document_id = d.id "
               "JOIN files f ON d.file_id = f.id WHERE 1=1")
        args: list = []
        if path_glob:
            sql += " AND (f.path GLOB ? OR d.doc_id GLOB ?)"
            args += [path_glob, path_glob]
        for key, value in (metadata or {}).items():  # (any key: no JSON path is built)
            sql += (" AND EXISTS (SELECT 1 FROM json_each(CASE WHEN json_valid(d.metadata) "
                    "THEN d.metadata ELSE '{}' END) m WHERE m.key = ? "  # (damaged: no match)
                    "AND (CAST(m.value AS TEXT) = ? OR m.type = 'array' AND EXISTS (SELECT 1 "
                    "FROM json_each(m.value) t WHERE CAST(t.value AS TEXT) = ?)))")
            args += [key, str(value), str(value)]
        return np.array([r[0] for r in self.store.conn.execute(sql, args)], dtype=np.int64)

    def fetch(self, pairs: list[tuple[float, int]]) -> list[Hit]:
        """Hits for (score, chunk id) pairs, in the given order."""
        if not pairs:
            return []
        ids = [i for _, i in pairs]
        marks = ",".join("?" * len(ids))
        # (format 4 added chunk kinds and page labels; an older KB is read without them)
        extra, join = ("c.kind, p.label", "LEFT JOIN pages p ON p.document_id = c.document_id "
                       "AND p.page = c.page") if self.store.manifest.get(
                           "format_version", 0) >= 4 else ("'', NULL", "")
        rows = {r[0]: r for r in self.store.conn.execute(
            f'SELECT c.id, d.doc_id, f.path, d.title, c.text, c.start, c."end", c.page, '
            f"c.heading, d.metadata, {extra} FROM chunks c JOIN documents d ON "
            f"c.document_id = d.id JOIN files f ON d.file_id = f.id {join} "
            f"WHERE c.id IN ({marks})", ids)}
        hits = []
        for score, cid in pairs:
            r = rows.get(cid)
            if r is None:  # deleted by a writer between search and fetch
                continue
            hits.append(Hit(chunk_id=r[0], doc_id=r[1], source=r[2], title=r[3], text=r[4],
                            start=r[5], end=r[6], page=r[7], heading=r[8], score=round(score, 6),
                            metadata=metadata_of(r[9]), kind=r[10],
                            page_label=r[11] if r[11] is not None else (
                                str(r[7]) if r[7] is not None else None)))
        return hits

    def page(self, doc_id: str, number: int) -> dict | None:
        """A PDF page's label, size and line boxes (``pagemap``), or None (not a PDF page,
        or a knowledge base from before page layouts were stored)."""
        if self.store.manifest.get("format_version", 0) < 4:
            return None
        row = self.store.conn.execute(
            "SELECT p.label, p.width, p.height, p.layout FROM pages p JOIN documents d ON "
            "p.document_id = d.id WHERE d.doc_id = ? AND p.page = ?", (doc_id, number)).fetchone()
        if row is None:
            return None
        return {"label": row[0], "width": row[1], "height": row[2], "layout": row[3]}

    def document_text(self, doc_id: str) -> str:
        row = self.store.conn.execute("SELECT text FROM documents WHERE doc_id=?",
                                      (doc_id,)).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return row[0]

    def text_after(self, doc_id: str, offset: int, length: int) -> str:
        """Up to ``length`` characters of a document's text from ``offset`` on: "" past its
        end, for a document no longer stored, or for one of more than ``READ_MAX_CHUNKS``
        chunks (SQLite reads a text value whole to cut it: the read stays bounded, a few
        milliseconds and megabytes, where a document may be a 200 MB text file)."""
        conn = self.store.conn
        row = conn.execute("SELECT id FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        if row is None or conn.execute(  # (counted no further than the bound)
                "SELECT COUNT(*) FROM (SELECT 1 FROM chunks WHERE document_id = ? LIMIT ?)",
                (row[0], READ_MAX_CHUNKS + 1)).fetchone()[0] > READ_MAX_CHUNKS:
            return ""
        row = conn.execute("SELECT substr(text, ?, ?) FROM documents WHERE id = ?",
                           (offset + 1, length, row[0])).fetchone()
        return row[0] if row and row[0] else ""

    def stats(self) -> dict:
        return dict(self.manifest["counts"])

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
