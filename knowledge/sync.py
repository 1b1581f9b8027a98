"""Incremental indexing: bring a knowledge base in line with folders on disk.

Only new or changed documents are chunked and embedded; the chunks of removed or changed
documents leave both SQLite and FAISS; everything else is untouched. A run is one
transaction (see store.py), so a crash leaves the state before or after it.

Example: ``report = sync(Path("kb"), [Path("docs")], embedder=Embedder.load())``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Collection

import numpy as np

from .chunking import Chunker, ChunkerSettings
from .errors import KnowledgeError, NothingIngested, UsageError
from .embedding import family
from .language import coverage_warning, dominant_script
from .loaders import (HTML_SUFFIXES, LATEX_SUFFIXES, MARKDOWN_SUFFIXES, OFFICE_SUFFIXES,
                      OUTLINE_SUFFIXES, READER_VERSIONS, RST_SUFFIXES, SUPPORTED, TEXT_SUFFIXES,
                      filtered_out, is_supported, suffix_of, walk)
from .parsing import ParsePool
from .store import DB_NAME, Store, describe, discard_unfinished, is_kb
from .types import Document
from .vector_index import VectorIndex, choose_kind
from .windows import encode_windows

DEFAULT_MAX_FILE_MB = 200
IGNORED_NAMED = 5  # unsupported files a report names


@dataclass
class SyncReport:
    """What one run did: document counts, chunk counts and per-file problems."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    skipped: list = field(default_factory=list)  # (file, reason): file not ingested
    warnings: list = field(default_factory=list)  # (file, message): ingested with a problem
    unsupported: int = 0
    ignored: list = field(default_factory=list)  # a few of the unsupported files, by name
    ignored_kinds: dict = field(default_factory=dict)  # ".rtf": 3, of all of them
    left_out: int = 0  # documents removed whose files the --include/--exclude filters leave out
    touched: int = 0  # files whose mtime changed but not their bytes
    refreshed: int = 0  # files whose record changed but none of their documents (read again
    # by a newer reader, renamed: a Maildir message whose flags changed)
    seconds: dict = field(default_factory=dict)
    total_documents: int = 0
    total_chunks: int = 0
    index_kind: str = ""
    scripts: dict = field(default_factory=dict)  # documents per script, the whole KB after
    language_warning: str | None = None  # documents the embedder was not trained to read
    twins: list = field(default_factory=list)  # (file, file): one document in two formats

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict:
        return {
            "added": self.added, "updated": self.updated, "removed": self.removed,
            "unchanged": self.unchanged, "chunks_added": self.chunks_added,
            "chunks_removed": self.chunks_removed,
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
            "warnings": [{"file": f, "message": m} for f, m in self.warnings],
            "unsupported_files": self.unsupported, "ignored_examples": self.ignored,
            "ignored_kinds": self.ignored_kinds, "touched": self.touched,
            "refreshed": self.refreshed,
            "left_out": self.left_out, "seconds": self.seconds,
            "documents": self.total_documents, "chunks": self.total_chunks,
            "index": self.index_kind, "scripts": self.scripts,
            "language_warning": self.language_warning,
            "twins": [list(pair) for pair in self.twins],
        }


def content_hash(doc: Document) -> str:
    fields = [doc.text, doc.title, doc.metadata, doc.page_starts,
              [(s.start, s.level, s.title) for s in doc.sections]]
    if doc.pages or doc.regions:  # (so documents without them keep the hashes they had)
        fields += [[(p.label, p.layout) for p in doc.pages], list(doc.regions)]
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


_FORMATS = set(TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + RST_SUFFIXES
               + OUTLINE_SUFFIXES + LATEX_SUFFIXES + OFFICE_SUFFIXES + (".pdf", ".epub"))


def twins(scans) -> list[tuple[str, str]]:
    """Files of one folder with one name in two document formats ("git-gc.txt" and
    "git-gc.html", "guide.pdf" and "guide.html"): the same text read twice, so its passages
    fill a question's citations twice over. (first, other) per pair, by path."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}
    found = []
    for base, files, _ in scans:
        for rel in files:
            name = Path(rel).name.lower().removesuffix(".gz")
            stem, form = os.path.splitext(name)
            if form not in _FORMATS:  # ("README", "README.Debian": no format named)
                continue
            key = (str(base / Path(rel).parent), stem)
            if key in seen and seen[key][1] != form:
                found.append((seen[key][0], str(base / rel)))
            seen.setdefault(key, (str(base / rel), form))
    return found


def _scan(paths: list[Path], include, exclude, skipped: list, root: Path | None = None,
          follow_symlinks: bool = False, leave_out: Path | None = None,
          ignored: list | None = None, kinds: Counter | None = None
          ) -> tuple[list[tuple[Path, list[str], bool]], int]:
    """(root, relative files, root is a folder) per argument; and unsupported-file count.
    Files that cannot even be named are appended to ``skipped``. With ``root``, files under
    it are named relative to it (their document ids keep their folders). ``leave_out``: a
    folder not walked (the knowledge base, when it lies inside a folder it indexes: its
    uploads are not that folder's documents)."""
    scans, unsupported, seen = [], 0, set()
    for p in paths:
        if not p.exists():
            raise UsageError(f"path not found: {p}")
        given, p = p, p.resolve()
        if p in seen:
            continue  # (given twice: read once)
        seen.add(p)
        if not (p.is_file() or p.is_dir()):  # (a device, a FIFO, a socket: nothing to read)
            link = f" (a link to {p})" if given.is_symlink() else ""
            raise UsageError(f"{given}: not a regular file or folder{link}; give files or "
                             "folders to index")
        if root is not None and p.is_file() and p.is_relative_to(root.resolve()):
            if not is_supported(p):
                raise UsageError(f"{p}: unsupported file type")
            scans.append((root.resolve(), [p.relative_to(root.resolve()).as_posix()], False))
        elif p.is_dir():
            inside = leave_out is not None and leave_out.resolve() != p  # (the folder itself:
            # refused as no knowledge base when it is written)
            files, n = walk(p, include, exclude, skipped, follow_symlinks,
                            prune=(leave_out,) if inside else (), ignored=ignored,
                            kinds=kinds)
            unsupported += n
            scans.append((p, files, True))
        elif not is_supported(p):
            raise UsageError(f"{p}: unsupported file type; supported: {SUPPORTED}")
        else:
            scans.append((p.parent, [p.name], False))
    walked = {base / f for base, files, is_dir in scans if is_dir for f in files}
    # (a file also found in a folder given is read once, under the folder's name for it)
    return [s for s in scans if s[2] or s[0] / s[1][0] not in walked], unsupported


def sync(
    kb_dir: Path,
    paths: list[Path],
    *,
    embedder=None,
    load_embedder: Callable[[], object] | None = None,
    embedder_identity: dict | None = None,
    chunking: ChunkerSettings = ChunkerSettings(),
    index_kind: str = "auto",
    include: list[str] = (),
    exclude: list[str] = (),
    rebuild: bool = False,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
    root: Path | None = None,
    follow_symlinks: bool = False,
    batch_size: int | None = None,
    progress: bool = False,
    engine=None,
    parser=None,
    parsed: dict | None = None,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
    recheck: Collection[str] = (),
    empty_ok: bool = False,
) -> SyncReport:
    """Index ``paths`` into the knowledge base at ``kb_dir`` and return what changed.

    Pass a loaded ``embedder``, or ``load_embedder`` plus its ``embedder_identity`` so the
    model is only loaded when something needs embedding. ``root``: files given under it are
    named (and their documents identified) by their path relative to it. ``engine``
    (``knowledge.distributed.RayIngest``) reads, parses, chunks and embeds on a Ray cluster;
    this process still decides what changed and writes, in the same one transaction.

    Files are read and parsed before the knowledge base's write lock is taken (so a slow
    file holds no other writer), by ``parser`` (default: a ``ParsePool`` for this run, whose
    worker processes bound each file's parse in time and memory); ``parsed`` gives results
    parsed earlier, by (root, relative path). A file that changed since it was parsed is
    parsed again under the lock.

    ``recheck``: files (absolute paths) whose bytes are compared even when their size and
    modification time are as stored (a watcher saw them written: two writes within one tick
    of the file system's clock leave the time as it was). ``empty_ok``: folders without a
    supported file are synced (their documents removed) rather than refused.
    """
    t0 = time.perf_counter()
    report = SyncReport()
    choose_kind(index_kind, 0)  # validate early
    ignored: list[str] = []
    kinds: Counter = Counter()
    scans, report.unsupported = _scan(paths, include, exclude, report.skipped, root,
                                      follow_symlinks, leave_out=Path(kb_dir), ignored=ignored,
                                      kinds=kinds)
    report.ignored = ignored[:IGNORED_NAMED]
    report.ignored_kinds = dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    report.twins = twins(scans)
    if not empty_ok and not any(files for _, files, _ in scans):
        where = ", ".join(str(p) for p in paths)
        raise KnowledgeError(f"nothing to index in {where}: no supported files "
                             f"({SUPPORTED})")
    if embedder is not None:
        load_embedder, embedder_identity = (lambda: embedder), embedder.identity()
    identity = embedder_identity
    static = static_manifest(identity, chunking, index_kind)
    max_bytes = max_file_mb * 1024 * 1024
    own = engine is None and parser is None
    parser = engine or parser or ParsePool()
    fresh = not is_kb(Path(kb_dir))
    try:
        if not fresh and not rebuild and _readers_outdated(Path(kb_dir)):
            with Store.open_for_write(kb_dir, static) as store:  # (once: a format read better
                store.reread_outdated(READER_VERSIONS, suffix_of)  # since, read again; a run
                # refused for its settings is refused before this writes)
        recheck = frozenset(recheck)
        parsed = {**_parse_ahead(parser, kb_dir, scans, max_bytes, rebuild, parsed or {},
                                 recheck), **(parsed or {})}
        report.seconds["parse"] = round(time.perf_counter() - t0, 3)
        return _sync(kb_dir, static, rebuild, scans, report, index_kind, max_bytes,
                     load_embedder, identity, chunking, batch_size, progress, log, t0, engine,
                     parser, parsed, recheck,
                     lambda rel: filtered_out(rel, include, exclude))
    except (OSError, sqlite3.Error) as err:  # a write failed (a full disk, an I/O error)
        raise KnowledgeError(f"could not write the knowledge base {kb_dir} ({describe(err)}); "
                             "nothing was changed") from None
    finally:
        if own:
            parser.close()
        if fresh:  # a first run that committed nothing leaves nothing behind
            discard_unfinished(Path(kb_dir))


def _sync(kb_dir, static, rebuild, scans, report, index_kind, max_bytes, load_embedder,
          identity, chunking, batch_size, progress, log, t0, engine, parser,
          parsed, recheck=frozenset(), filtered=lambda rel: False) -> SyncReport:
    with Store.open_for_write(kb_dir, static, rebuild=rebuild) as store:
        store.begin()
        conn = store.conn
        requested = static["index"]["requested"] if rebuild else store.manifest["index"].get(
            "requested", "auto")
        if index_kind != "auto" or rebuild:
            requested = index_kind
        store.manifest["index"]["requested"] = requested
        remove_ids: list[int] = []
        todo: list[tuple[Document, int | None, int]] = []  # (doc, old row id, file row id)
        seen_docs: set[str] = set()
        for root, files, is_folder in scans:
            seen_files: set[str] = set()
            for rel in files:
                seen_files.add(rel)
                _sync_file(conn, root, rel, max_bytes, report, todo, remove_ids, seen_docs,
                           parsed, parser, recheck)
            if is_folder:  # files gone from the folder (or no longer included)
                gone = [row for row in conn.execute(
                    "SELECT id, path FROM files WHERE root=?", (str(root),))
                    if row[1] not in seen_files]
                for file_id, path in gone:
                    there = filtered(path) and (Path(root) / path).is_file()  # (not gone:
                    # the filters leave it out)
                    docs = conn.execute("SELECT id FROM documents WHERE file_id=?",
                                        (file_id,)).fetchall()
                    report.refreshed += not docs  # (its documents, if any, counted removed)
                    for (doc_row,) in docs:
                        remove_ids += _delete_document(conn, doc_row)
                        report.removed += 1
                        report.left_out += there
                    conn.execute("DELETE FROM files WHERE id=?", (file_id,))
        report.seconds["scan"] = round(time.perf_counter() - t0, 3)

        if not todo and not report.changed and report.skipped and not report.unchanged:
            path, reason = report.skipped[0]
            more = f", and {len(report.skipped) - 1} more" if len(report.skipped) > 1 else ""
            raise NothingIngested(f"nothing could be ingested: {len(report.skipped)} files "
                                  f"skipped ({Path(path).name}: {reason}{more})",
                                  list(report.skipped))

        new_ids, new_vecs = np.zeros(0, np.int64), np.zeros((0, identity["dim"]), np.float32)
        window_words = chunking.windows  # (the KB's own: checked by open_for_write)
        if todo and engine is not None:
            t = time.perf_counter()
            chunks, vecs, wins = engine.chunk_and_embed([doc for doc, _, _ in todo], chunking,
                                                        batch_size)
            new_vecs = vecs.reshape(-1, identity["dim"])
            per_doc = [(doc, old, file_id, c) for (doc, old, file_id), c in zip(todo, chunks)]
            report.seconds["chunk_embed_ray"] = round(time.perf_counter() - t, 3)
            new_ids = _write_documents(conn, per_doc, new_vecs, wins, report, remove_ids)
        elif todo:
            t = time.perf_counter()
            emb = load_embedder()
            report.seconds["load_model"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            chunker = Chunker(emb.count_tokens, chunking)
            per_doc = [(doc, old, file_id, chunker.split(doc)) for doc, old, file_id in todo]
            report.seconds["chunk"] = round(time.perf_counter() - t, 3)
            texts = [c.text for *_, chunks in per_doc for c in chunks]
            t = time.perf_counter()
            if progress:
                log(f"embedding {len(texts)} chunks of {len(per_doc)} documents")
            new_vecs = emb.encode(texts, batch_size=batch_size, progress=progress)
            wins = [None] * len(texts)
            if window_words:
                if progress:
                    log("embedding the paragraphs of chunks that hold several")
                wins = encode_windows(emb.encode, texts, window_words, batch_size)
            report.seconds["embed"] = round(time.perf_counter() - t, 3)
            new_ids = _write_documents(conn, per_doc, new_vecs, wins, report, remove_ids)

        t = time.perf_counter()
        report.chunks_removed = len(remove_ids)
        total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        kind = choose_kind(requested, total)
        index = store.index
        rebuilt = rebuild or kind != index.kind or (remove_ids and not index.can_remove)
        if rebuilt:
            ids, vecs = store.all_vectors()
            index = VectorIndex.build(kind, identity["dim"], ids, vecs)
        else:
            index.remove(np.array(remove_ids, dtype=np.int64))
            index.add(new_ids, new_vecs)
        bm25_stale = store.bm25_stale()
        if bm25_stale:
            log("indexing each chunk's section path for BM25 (once; nothing is re-embedded)")
        if report.changed or rebuilt or store.generation < 1 or bm25_stale:
            _measure_anchor(store, index, emb if todo and engine is None else None,
                            load_embedder, total)
            store.commit(index)
        elif report.touched or report.refreshed:  # only files' records changed: SQLite
            conn.execute("COMMIT")  # alone, FAISS is as it was
        else:
            store.rollback()
            if not (kb_dir / "manifest.json").exists():
                store.write_manifest_mirror()
        report.seconds["write"] = round(time.perf_counter() - t, 3)
        report.scripts = dict(conn.execute(
            "SELECT script, count(*) FROM documents GROUP BY script ORDER BY script"))
        built = store.manifest["embedder"]
        scripts = built["scripts"] if "scripts" in built else family(built["name"])[1]
        report.language_warning = coverage_warning(report.scripts, built["name"], scripts)
        report.total_documents = store.manifest["counts"]["documents"]
        report.total_chunks = store.manifest["counts"]["chunks"]
        report.index_kind = store.index.kind
    report.seconds["total"] = round(time.perf_counter() - t0, 3)
    return report


def _measure_anchor(store, index, emb, load_embedder, chunks: int) -> None:
    """Measure the knowledge base's similarity anchor (knowledge/profile.py) into the
    manifest being committed, when it has none or has changed size by a tenth since."""
    from .profile import measure, measure_technical, stale

    kept = store.manifest.get("similarity_anchor")
    if not stale(kept, chunks):
        if kept and "technical" not in kept:  # (measured before it was recorded)
            kept["technical"] = measure_technical(store.conn)
        return
    if chunks == 0:
        store.manifest.pop("similarity_anchor", None)
        return
    emb = emb or load_embedder()
    anchor = measure(store.conn, emb.encode_queries,
                     lambda vecs: index.search(vecs, 1)[0][:, 0])
    if anchor is not None:
        store.manifest["similarity_anchor"] = anchor


def _parse_ahead(parser, kb_dir: Path, scans, max_bytes: float, rebuild: bool,
                 done: dict, recheck=frozenset()) -> dict:
    """Every file that must be read (as the knowledge base stands now, read without the
    lock), read and parsed by ``parser`` in parallel: {(root, rel): Parsed}. The locked run
    then goes through the files in order, using these."""
    db = kb_dir / DB_NAME
    conn = None
    if db.exists() and not rebuild:
        try:
            conn = sqlite3.connect(_read_only(db), uri=True, timeout=30)
            conn.execute("SELECT 1 FROM files LIMIT 1")
        except sqlite3.Error:  # (not a knowledge base yet: the locked run says what is wrong)
            conn = None
    items = []
    try:
        for root, files, _ in scans:
            for rel in files:
                if (str(root), rel) in done:
                    continue
                found, _ = _to_read(conn, root, rel, max_bytes, recheck)
                if found is not None:
                    row = found[1]
                    items.append((str(root), rel, row[3] if row else None))
    finally:
        if conn is not None:
            conn.close()
    if not items:
        return {}
    return {(root, rel): p for (root, rel, _), p in zip(items, parser.parse(items, max_bytes))}


def _read_only(db: Path) -> str:
    """SQLite's URI opening ``db`` read-only (a "#", "?" or "%" in its path quoted)."""
    from urllib.parse import quote

    return f"file:{quote(str(db))}?mode=ro"


def _readers_outdated(kb_dir: Path) -> bool:
    """Whether the knowledge base was read by older readers than READER_VERSIONS (read from
    its manifest without opening it; False when it cannot be read: the run says why)."""
    try:
        conn = sqlite3.connect(_read_only(kb_dir / DB_NAME), uri=True, timeout=30)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
        finally:
            conn.close()
        have = json.loads(row[0]).get("readers", {}) if row else None
    except (sqlite3.Error, ValueError, AttributeError):
        return False
    return have is not None and {**have, **READER_VERSIONS} != have


def static_manifest(identity: dict, chunking: ChunkerSettings, index_kind: str) -> dict:
    """The manifest fields fixed when a knowledge base is created."""
    chunking.validate(identity.get("max_tokens"))
    return {"embedder": identity, "dim": identity["dim"], "metric": "inner_product",
            "normalized": True, "chunker": chunking.to_dict(),
            "index": {"kind": choose_kind(index_kind, 0), "requested": index_kind},
            "readers": dict(READER_VERSIONS)}


def create_empty(kb_dir: Path, embedder_identity: dict,
                 chunking: ChunkerSettings = ChunkerSettings()) -> None:
    """A new knowledge base with no documents yet (`rag serve` on a new directory, to be
    filled by uploads)."""
    with Store.open_for_write(kb_dir, static_manifest(embedder_identity, chunking,
                                                      "auto")) as store:
        store.begin()
        store.commit(store.index)


def delete_documents(kb_dir: Path, doc_ids: list[str]) -> list[str]:
    """Delete documents (and their chunks and vectors) in one transaction, with the same
    commit protocol as ``sync``; returns the files left without documents, which are dropped
    too (a later ``rag index`` of their folder adds them again). A KeyError names the first
    id that is not there; nothing is deleted then."""
    with Store.open_for_write(kb_dir, None) as store:
        store.begin()
        conn = store.conn
        remove_ids, files = [], set()
        for doc_id in dict.fromkeys(doc_ids):
            row = conn.execute("SELECT id, file_id FROM documents WHERE doc_id=?",
                               (doc_id,)).fetchone()
            if row is None:
                store.rollback()
                raise KeyError(doc_id)
            remove_ids += _delete_document(conn, row[0])
            files.add(row[1])
        emptied = []
        for file_id in files:
            if conn.execute("SELECT 1 FROM documents WHERE file_id=?", (file_id,)).fetchone():
                continue
            emptied.append(_file_name(conn, file_id))
            conn.execute("DELETE FROM files WHERE id=?", (file_id,))
        index = store.index
        if index.can_remove:
            index.remove(np.array(remove_ids, dtype=np.int64))
        else:
            ids, vecs = store.all_vectors()
            index = VectorIndex.build(index.kind, store.manifest["dim"], ids, vecs)
        store.commit(index)
    return emptied


def _to_read(conn, root: Path, rel: str, max_bytes: float, recheck=frozenset()):
    """(stat, stored row) of a file that must be read, or (None, reason) when it must not: it
    is unchanged by size and mtime (reason None; unless it is to be rechecked), or cannot be
    statted, or is too large."""
    path = root / rel
    try:
        st = path.stat()
    except OSError as err:
        return None, f"cannot read ({err.strerror})"
    row = conn.execute("SELECT id, size, mtime_ns, sha256 FROM files WHERE root=? AND path=?",
                       (str(root), rel)).fetchone() if conn is not None else None
    if row and (row[1], row[2]) == (st.st_size, st.st_mtime_ns) and str(path) not in recheck:
        return None, None
    if st.st_size > max_bytes and row and row[2] == -1 and row[1] == st.st_size:
        return None, None  # (marked to be read again, now over this run's --max-file-mb:
        # kept as it is, as an unchanged file is)
    if st.st_size > max_bytes:  # (refused before reading; read_regular bounds the rest)
        return None, (f"larger than {max_bytes / 2**20:g} MB; raise --max-file-mb to index it")
    return (st, row), None


def _sync_file(conn, root: Path, rel: str, max_bytes: float, report: SyncReport,
               todo: list, remove_ids: list, seen_docs: set, parsed: dict, parser,
               recheck=frozenset()) -> None:
    """Compare one file with what is stored; queue its new or changed documents. ``parsed``
    holds files read and parsed ahead; one missing there, or changed since, is parsed now."""
    path = root / rel
    found, reason = _to_read(conn, root, rel, max_bytes, recheck)
    if found is None:
        if reason:
            report.skipped.append((str(path), reason))
        _keep(conn, root, rel, report, seen_docs)
        return
    st, row = found
    stored = row[3] if row else None
    got = parsed.get((str(root), rel))
    if got is None or (got.stat is not None and got.stat != (st.st_size, st.st_mtime_ns)) \
            or (got.touched and got.sha != stored):
        [got] = parser.parse([(str(root), rel, stored)], max_bytes)
    if got.error:
        report.skipped.append((str(path), got.error))
        _keep(conn, root, rel, report, seen_docs)
        return
    if got.touched:  # touched, not changed: remember the new mtime (if it is new)
        if (row[1], row[2]) != (st.st_size, st.st_mtime_ns):
            conn.execute("UPDATE files SET size=?, mtime_ns=? WHERE id=?",
                         (st.st_size, st.st_mtime_ns, row[0]))
            report.touched += 1
        _keep(conn, root, rel, report, seen_docs)
        return
    sha, docs = got.sha, got.docs
    report.warnings += [(str(path), w) for w in got.warnings]
    queued, removed = len(todo), report.removed
    if row:
        file_id = row[0]
        conn.execute("UPDATE files SET size=?, mtime_ns=?, sha256=? WHERE id=?",
                     (st.st_size, st.st_mtime_ns, sha, file_id))
    else:
        file_id = conn.execute(
            "INSERT INTO files(root, path, size, mtime_ns, sha256) VALUES (?,?,?,?,?)",
            (str(root), rel, st.st_size, st.st_mtime_ns, sha)).lastrowid
    wanted = set()
    for doc in docs:
        taken = None
        for doc_id in (doc.doc_id, f"{root.name}/{doc.doc_id}", f"{root}/{doc.doc_id}"):
            # (two folders' "notes.md": the second is "vault-b/notes.md", said)
            stored = conn.execute("SELECT id, file_id, content_hash FROM documents WHERE "
                                  "doc_id=?", (doc_id,)).fetchone()
            if doc_id in seen_docs:
                taken = taken or "is already used by another file in this run"
            elif stored and stored[1] != file_id and _file_still_there(conn, stored[1]):
                taken = taken or f"already comes from {_file_name(conn, stored[1])}"
            else:
                break
        else:
            report.warnings.append((str(path), f"document id {doc.doc_id!r} {taken}; skipped"))
            continue
        if doc_id != doc.doc_id:
            report.warnings.append((str(path), f"document id {doc.doc_id!r} {taken}; indexed "
                                               f"as {doc_id!r}"))
            doc = replace(doc, doc_id=doc_id)
        seen_docs.add(doc.doc_id)
        wanted.add(doc.doc_id)
        h = content_hash(doc)
        if stored and stored[1] != file_id:  # (taken over from a file gone: this file's now,
            # before that file's rows are removed with it)
            conn.execute("UPDATE documents SET file_id=? WHERE id=?", (file_id, stored[0]))
        if stored and stored[2] == h:
            report.unchanged += 1
        else:
            todo.append((doc, stored[0] if stored else None, file_id))
    for doc_row, doc_id in conn.execute(
            "SELECT id, doc_id FROM documents WHERE file_id=?", (file_id,)).fetchall():
        if doc_id not in wanted:  # a row gone from a JSONL/CSV file
            remove_ids += _delete_document(conn, doc_row)
            report.removed += 1
    if len(todo) == queued and report.removed == removed:
        report.refreshed += 1  # (its record is new, its documents are not: still committed)


def _keep(conn, root: Path, rel: str, report: SyncReport, seen_docs: set) -> None:
    """Count a file's stored documents as unchanged (it is unchanged or could not be read)."""
    for (doc_id,) in conn.execute(
            "SELECT d.doc_id FROM documents d JOIN files f ON d.file_id=f.id "
            "WHERE f.root=? AND f.path=?", (str(root), rel)):
        seen_docs.add(doc_id)
        report.unchanged += 1


def _file_still_there(conn, file_id: int) -> bool:
    row = conn.execute("SELECT root, path FROM files WHERE id=?", (file_id,)).fetchone()
    return bool(row) and Path(row[0], row[1]).exists()


def _file_name(conn, file_id: int) -> str:
    row = conn.execute("SELECT root, path FROM files WHERE id=?", (file_id,)).fetchone()
    return str(Path(row[0], row[1])) if row else "?"


def _delete_document(conn, doc_row: int) -> list[int]:
    """Delete a document and its chunks; return the chunk ids (to drop from FAISS)."""
    ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE document_id=?", (doc_row,))]
    conn.execute("DELETE FROM chunks WHERE document_id=?", (doc_row,))
    conn.execute("DELETE FROM pages WHERE document_id=?", (doc_row,))
    conn.execute("DELETE FROM documents WHERE id=?", (doc_row,))
    return ids


def _write_documents(conn, per_doc, vecs: np.ndarray, wins: list, report: SyncReport,
                     remove_ids: list) -> np.ndarray:
    """Insert or replace documents with their chunks, vectors and window vectors (``wins``,
    per chunk: bytes or None); return the new chunk ids."""
    now = time.time()
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='chunks'").fetchone()
    next_id = (row[0] if row else 0) + 1
    ids, rows, i = [], [], 0
    for doc, old_row, file_id, chunks in per_doc:
        values = (doc.doc_id, file_id, doc.title, json.dumps(doc.metadata, default=str),
                  doc.text, content_hash(doc), json.dumps(list(doc.page_starts)), now,
                  dominant_script(doc.text))
        if old_row is not None:
            remove_ids += [r[0] for r in conn.execute(
                "SELECT id FROM chunks WHERE document_id=?", (old_row,))]
            conn.execute("DELETE FROM chunks WHERE document_id=?", (old_row,))
            conn.execute("DELETE FROM pages WHERE document_id=?", (old_row,))
            conn.execute(
                "UPDATE documents SET doc_id=?, file_id=?, title=?, metadata=?, text=?, "
                "content_hash=?, page_starts=?, indexed_at=?, script=? WHERE id=?",
                (*values, old_row))
            doc_row = old_row
            report.updated += 1
        else:
            doc_row = conn.execute(
                "INSERT INTO documents(doc_id, file_id, title, metadata, text, content_hash, "
                "page_starts, indexed_at, script) VALUES (?,?,?,?,?,?,?,?,?)", values).lastrowid
            report.added += 1
        conn.executemany(
            "INSERT INTO pages(document_id, page, label, width, height, layout) "
            "VALUES (?,?,?,?,?,?)",
            [(doc_row, p.number, p.label, p.width, p.height, p.layout) for p in doc.pages])
        for ord_, c in enumerate(chunks):
            rows.append((next_id, doc_row, ord_, c.text, c.start, c.end, c.page, c.heading,
                         vecs[i].tobytes(), doc.kind_of(c.start, c.end), wins[i]))
            ids.append(next_id)
            next_id += 1
            i += 1
    conn.executemany(
        'INSERT INTO chunks(id, document_id, ord, text, start, "end", page, heading, vector, '
        "kind, windows) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    report.chunks_added = len(rows)
    return np.array(ids, dtype=np.int64)
