"""BM25 over the chunk texts: a Tantivy index per generation, beside the FAISS file.

SQLite FTS5 scores every row that holds any query term before it sorts, so its cost grows
with the posting lists (246 ms p50 at 10M chunks). Tantivy (a Rust search library, Lucene's
design) keeps a block-max score per block of each posting list and skips the blocks that
cannot reach the current top k (block-max WAND), so the top k is exact without scoring
every match (eval/RESULTS.md, "BM25 at scale").

On disk, ``lexical.<g>/`` is the Tantivy index of the chunks of generation g. A committed
directory is never changed: Tantivy never rewrites a file it wrote (segments and deletion
bitsets are write-once), so the next generation hard-links them into ``lexical.<g+1>/``,
writes its changes there (new segments, new bitsets, a new meta.json) and is fsynced before
the SQLite commit that names it (store.py holds the protocol, as for the FAISS file).

What is indexed: each chunk's text as ``lexical()`` writes it (CJK runs as bigrams), cut by
Tantivy's simple tokenizer (runs of letters and digits), lower-cased and folded to ASCII.
Scores are Okapi BM25 as Lucene computes it (k1 1.2, b 0.75, idf ln(1 + (N - n + 0.5) /
(n + 0.5))), with each document's length kept in one byte (exact to 40 tokens, within a few
per cent above); deleted chunks count in N and n until Tantivy merges their segment.

Example::

    index = Bm25Index(kb_dir / "lexical.3")
    index.search(terms("Who won Super Bowl 50?"), k=10)   # [(score, chunk id), ...]
"""
from __future__ import annotations

import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np

from .lexical import STOPWORDS, lexical

ANALYZER = "rag_lexical"
DIR_PREFIX = "lexical."
WRITER_HEAP = 64_000_000  # bytes per indexing thread before Tantivy writes a segment
DELETE_BATCH = 10_000  # ids per delete query
# Tantivy's own files that are rewritten in place (copied, never linked) or are locks
_REWRITTEN = ("meta.json", ".managed.json")


def dir_name(generation: int) -> str:
    return f"{DIR_PREFIX}{generation}"


def engine() -> str:
    """The library and version that wrote a directory (recorded in the manifest)."""
    from importlib.metadata import version

    return f"tantivy {version('tantivy')}"


@lru_cache(maxsize=1)
def _tantivy():
    import tantivy  # (imported on first use: `rag --help` stays instant)

    return tantivy


@lru_cache(maxsize=1)
def analyzer():
    """The text analysis of the index and of queries (Tantivy's, so the two never differ)."""
    t = _tantivy()
    return (t.TextAnalyzerBuilder(t.Tokenizer.simple()).filter(t.Filter.remove_long(40))
            .filter(t.Filter.lowercase()).filter(t.Filter.ascii_fold()).build())


@lru_cache(maxsize=1)
def schema():
    t = _tantivy()
    builder = t.SchemaBuilder()
    builder.add_integer_field("id", indexed=True, fast=True)
    builder.add_text_field("text", tokenizer_name=ANALYZER, index_option="freq")
    return builder.build()


def tokens(text: str) -> list[str]:
    """The terms the index holds for ``text`` (CJK as bigrams), in order, repeated."""
    return analyzer().analyze(lexical(text) or "")


def terms(query: str) -> list[str]:
    """A query's distinct terms, stop words dropped (all kept when nothing else is left).
    Example: ``terms("Who won Super Bowl 50?") == ["won", "super", "bowl", "50"]``."""
    words = tokens(query)
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))


class Bm25Index:
    """A committed ``lexical.<g>/`` directory opened for searching (read-only, mapped)."""

    def __init__(self, path: Path):
        t = _tantivy()
        self.path = Path(path)
        index = t.Index.open(str(path))
        index.config_reader(reload_policy="Manual")  # (a committed directory never changes)
        self.searcher = index.searcher()

    @property
    def num_docs(self) -> int:
        return self.searcher.num_docs

    def search(self, query_terms: list[str], k: int, allowed: np.ndarray | None = None,
               prune: bool = True) -> list[tuple[float, int]]:
        """(BM25 score, chunk id) of the ``k`` best chunks holding any of ``query_terms``,
        best first; only chunks in ``allowed`` when it is given. ``prune=False`` scores
        every match (the same top k, slower: for benchmarks)."""
        t = _tantivy()
        if not query_terms or k < 1 or (allowed is not None and len(allowed) == 0):
            return []
        query = t.Query.boolean_query([
            (t.Occur.Should, t.Query.term_query(schema(), "text", w, index_option="freq"))
            for w in query_terms])
        if allowed is not None:
            only = t.Query.term_set_query(schema(), "id", [int(i) for i in allowed])
            query = t.Query.boolean_query([(t.Occur.Must, query), (
                t.Occur.Must, t.Query.const_score_query(only, 0.0))])
        # count=False: Tantivy may then skip what cannot enter the top k (block-max WAND);
        # counting every match makes it score them all
        hits = self.searcher.search(query, k, count=not prune).hits
        ids = self.searcher.fast_field_values("id", [address for _, address in hits])
        return sorted(((float(s), int(i)) for (s, _), i in zip(hits, ids)),
                      key=lambda p: (-p[0], p[1]))

    def holding(self, ids: list[int]) -> int:
        """How many documents hold one of ``ids`` (a check that they are there, once each)."""
        t = _tantivy()
        if not ids:
            return 0
        query = t.Query.term_set_query(schema(), "id", [int(i) for i in ids])
        return self.searcher.search(query, 1, count=True).count

    def ids(self) -> np.ndarray:
        """Every chunk id held, sorted (for checks: it reads the whole id column)."""
        t = _tantivy()
        n = self.num_docs
        if n == 0:
            return np.zeros(0, np.int64)
        hits = self.searcher.search(t.Query.all_query(), n, count=False).hits
        return np.sort(np.array(self.searcher.fast_field_values(
            "id", [address for _, address in hits]), dtype=np.int64))


class Bm25Writer:
    """Builds the directory of the next generation: ``base``'s files hard-linked (or an
    empty index when ``base`` is None), then deletes and adds. ``commit`` makes it whole
    on disk; until the store's SQLite commit names it, it is a stray a crash leaves behind."""

    def __init__(self, target: Path, base: Path | None):
        t = _tantivy()
        self.target = Path(target)
        if self.target.exists():  # (left by a writer that died before its commit)
            shutil.rmtree(self.target)
        self.target.mkdir()
        self.linked: set[str] = set()  # (files of a committed generation: already durable)
        if base is None:
            index = t.Index(schema(), path=str(self.target), reuse=False)
        else:
            for f in Path(base).iterdir():
                if f.name in _REWRITTEN:
                    shutil.copyfile(f, self.target / f.name)
                elif not f.name.startswith(".tantivy-"):  # (lock files stay behind)
                    os.link(f, self.target / f.name)
                    self.linked.add(f.name)
            index = t.Index.open(str(self.target))
        index.register_tokenizer(ANALYZER, analyzer())
        threads = max(1, min(2, os.cpu_count() or 1))
        self.writer = index.writer(heap_size=WRITER_HEAP * threads, num_threads=threads)

    def delete(self, ids: list[int]) -> None:
        t = _tantivy()
        for lo in range(0, len(ids), DELETE_BATCH):
            self.writer.delete_documents_by_query(
                t.Query.term_set_query(schema(), "id", [int(i) for i in ids[lo:lo + DELETE_BATCH]]))

    def add(self, rows) -> int:
        """Add (chunk id, text) or (chunk id, text, section path) rows; returns how many. A
        chunk's section path ("Terminal types > Png") is indexed with its text: a manual's
        question often names the section, not words of the passage (eval/heading_bm25.py)."""
        t = _tantivy()
        n = 0
        for cid, text, *path in rows:
            if path and path[0]:
                text = f"{text}\n{path[0].replace(' > ', ' ')}"
            self.writer.add_document(t.Document(id=int(cid), text=lexical(text)))
            n += 1
        return n

    def commit(self) -> None:
        """Tantivy's commit, then its merges finished, so the directory no longer changes."""
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = None

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.rollback()
                self.writer.wait_merging_threads()
            except Exception:  # noqa: BLE001 (the directory goes anyway)
                pass
            self.writer = None
        shutil.rmtree(self.target, ignore_errors=True)


def file_table(path: Path, known: dict | None = None) -> dict:
    """{file name: [size, sha256]} of a committed directory; files whose name is in
    ``known`` with the same size are not read again (Tantivy never rewrites a file under
    the same name, except the two it copies fresh each generation)."""
    table = {}
    for f in sorted(Path(path).iterdir()):
        if f.name.startswith(".tantivy-") or not f.is_file():
            continue
        size = f.stat().st_size
        old = (known or {}).get(f.name)
        if old and old[0] == size and f.name not in _REWRITTEN:
            table[f.name] = old
            continue
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        table[f.name] = [size, h.hexdigest()]
    return table


def damaged(path: Path, table: dict, full: bool = False) -> str | None:
    """What is wrong with a committed directory against its ``file_table`` (None: nothing):
    a file missing or of another size, or with ``full``, of other contents."""
    for name, (size, _) in table.items():
        try:
            have = (Path(path) / name).stat().st_size
        except FileNotFoundError:
            return f"{name} is missing"
        if have != size:
            return f"{name} has {have} bytes, not {size}"
    if full:
        now = file_table(path)
        for name, (_, sha) in table.items():
            if now.get(name, [0, None])[1] != sha:
                return f"{name} differs from what was written (checksum mismatch)"
    return None
