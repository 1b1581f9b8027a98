"""`rag check`: verify every part of a knowledge base directory, and repair what can be
rebuilt from SQLite without re-embedding (the FAISS index from the stored vectors, the
BM25 index from the chunk texts, manifest.json from SQLite's copy, stray files).

It reads SQLite directly rather than through ``Store.open``, so that a KB too damaged to
open still gets a full report. A damaged SQLite file itself cannot be rebuilt from the
rest: it holds the documents; the report says so (restore it, or `rag index --rebuild`).

Example: ``report = check(Path("kb"), repair=True); print(report.problems, report.repaired)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bm25, lexical
from .errors import KnowledgeError
from .store import (DB_NAME, MANIFEST_NAME, READABLE_VERSIONS, STATIC_FIELDS, Store,
                    _index_file, read_mirror, take_write_lock)
from .vector_index import VectorIndex

SAMPLE = 256  # stored vectors searched for themselves in the FAISS index
BM25_FULL_BELOW = 1_000_000  # chunks: below, every BM25 id is compared with SQLite's


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)  # what is wrong (after repair: was)
    repaired: list[str] = field(default_factory=list)
    unrepairable: list[str] = field(default_factory=list)  # needs a backup or a re-embed
    checked: dict = field(default_factory=dict)  # counts of what was looked at

    @property
    def ok(self) -> bool:
        return not self.problems


def check(kb_dir: Path, repair: bool = False) -> CheckReport:
    kb_dir = Path(kb_dir)
    db = kb_dir / DB_NAME
    if not db.is_file():
        raise KnowledgeError(f"{kb_dir} is not a knowledge base (no {DB_NAME})")
    report = CheckReport()
    try:  # (read-write only for FTS5's integrity-check command, which writes nothing)
        mode = "rw" if os.access(db, os.W_OK) and os.access(kb_dir, os.W_OK) else "ro"
        conn = sqlite3.connect(f"file:{db}?mode={mode}", uri=True, timeout=30,
                               isolation_level=None)
        lexical.register(conn)  # (FTS5's integrity-check reads the view that calls it)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as err:
        report.problems.append(f"{db} is not a readable SQLite database ({err})")
        report.unrepairable.append(f"{db}: restore it from a backup, or re-create the knowledge "
                                   f"base with `rag index PATH --kb {kb_dir} --rebuild`")
        return report
    try:
        fixes = _inspect(kb_dir, conn, report)
    except sqlite3.DatabaseError as err:  # a page too damaged for SQLite to read at all
        report.problems.append(f"SQLite cannot read {db} ({err})")
        report.unrepairable.append(f"{db} is damaged: restore it from a backup, or re-create "
                                   f"with `rag index PATH --kb {kb_dir} --rebuild`")
        fixes = set()
    finally:
        conn.close()
    if repair and fixes and not report.unrepairable:
        _repair(kb_dir, fixes, report)
    return report


def _inspect(kb_dir: Path, conn, report: CheckReport) -> set[str]:
    """Fill ``report``; return the names of the repairs that would fix what was found."""
    fixes: set[str] = set()
    problems, bad = report.problems, report.unrepairable
    rows = conn.execute("PRAGMA integrity_check(20)").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        problems.append(f"SQLite integrity check failed: {rows[0][0]}")
        bad.append(f"{kb_dir / DB_NAME} is damaged (a torn or overwritten page): restore it "
                   f"from a backup, or re-create with `rag index PATH --kb {kb_dir} --rebuild`")
        return fixes
    row = conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
    try:
        manifest = json.loads(row[0]) if row else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format_version") not in READABLE_VERSIONS:
        problems.append("SQLite holds no readable manifest of a known format")
        bad.append(f"re-create the knowledge base with `rag index PATH --kb {kb_dir} --rebuild`")
        return fixes
    dim, generation = int(manifest["dim"]), int(manifest["generation"])
    counts = conn.execute("SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM documents),"
                          " (SELECT count(*) FROM chunks)").fetchone()
    report.checked.update(files=counts[0], documents=counts[1], chunks=counts[2],
                          generation=generation)
    if [counts[0], counts[1], counts[2]] != [manifest["counts"][k] for k in
                                             ("files", "documents", "chunks")]:
        problems.append(f"the manifest's counts {manifest['counts']} differ from the tables' "
                        f"({counts[0]} files, {counts[1]} documents, {counts[2]} chunks)")
        fixes.add("manifest")

    # tables a writer made (a dropped one is no damage SQLite's own check sees)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    wanted = {"meta", "files", "documents", "chunks"} | (
        {"pages"} if manifest["format_version"] >= 4 else set())
    if wanted - tables:
        problems.append(f"SQLite lacks the table(s) {', '.join(sorted(wanted - tables))}")
        bad.append(f"restore {kb_dir / DB_NAME} from a backup, or re-create with `rag index "
                   f"PATH --kb {kb_dir} --rebuild`")
        return fixes
    unreadable = conn.execute("SELECT count(*) FROM documents WHERE NOT json_valid(metadata) "
                              "OR json_type(metadata) != 'object'").fetchone()[0]
    if unreadable:
        problems.append(f"{unreadable} documents' metadata is not a JSON object")
        fixes.add("metadata")

    # chunks: vectors, offsets into their documents, owners
    orphans = conn.execute("SELECT count(*) FROM chunks WHERE document_id NOT IN "
                           "(SELECT id FROM documents)").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} chunks belong to no document")
        bad.append(f"re-create with `rag index PATH --kb {kb_dir} --rebuild`")
    wrong_dim = bad_offsets = not_unit = 0
    ids, sample = [], []
    stride = max(1, counts[2] // SAMPLE)
    text_of, last_doc = None, None
    for cid, doc, text, start, end, vec in conn.execute(
            'SELECT c.id, c.document_id, c.text, c.start, c."end", c.vector FROM chunks c '
            "ORDER BY c.document_id, c.id"):
        ids.append(cid)
        if len(vec) != 4 * dim:
            wrong_dim += 1
            continue
        if doc != last_doc:
            r = conn.execute("SELECT text FROM documents WHERE id=?", (doc,)).fetchone()
            text_of, last_doc = (r[0] if r else None), doc
        if text_of is not None and text_of[start:end] != text:
            bad_offsets += 1
        v = np.frombuffer(vec, dtype=np.float32)
        if not 0.98 < float(v @ v) < 1.02:
            not_unit += 1
        if len(sample) < SAMPLE and len(ids) % stride == 0:
            sample.append((cid, v))
    for n, what in ((wrong_dim, f"vectors that are not {dim} float32 values"),
                    (bad_offsets, "chunks whose [start, end) is not their text in the document"),
                    (not_unit, "vectors that are not unit length")):
        if n:
            problems.append(f"{n} {what}")
            bad.append(f"re-embed: `rag index PATH --kb {kb_dir} --rebuild`")
    if manifest["chunker"].get("windows"):  # window vectors (knowledge/windows.py)
        torn = conn.execute("SELECT count(*) FROM chunks WHERE windows IS NOT NULL AND "
                            "length(windows) % ? != 0", (4 * dim,)).fetchone()[0]
        if torn:
            problems.append(f"{torn} chunks hold window vectors that are not {dim} float32 "
                            "values each")
            fixes.add("windows")
    if "bm25" in manifest:
        _inspect_bm25(kb_dir, manifest, ids, report, fixes)
    else:  # (a format before 5: FTS5, until the next writer migrates it)
        try:
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('integrity-check')")
            fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
            if fts != counts[2]:
                raise sqlite3.DatabaseError(f"{fts} rows for {counts[2]} chunks")
        except sqlite3.DatabaseError as err:
            problems.append(f"the FTS5 (BM25) index is damaged ({err})")
            fixes.add("fts")

    # FAISS: the generation's file, its checksum, its ids, and vectors finding themselves
    path = kb_dir / _index_file(generation)
    index = None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        problems.append(f"the FAISS file of generation {generation} ({path.name}) is missing")
        fixes.add("faiss")
        data = None
    if data is not None:
        want = manifest.get("index_sha256")
        if want and hashlib.sha256(data).hexdigest() != want:
            problems.append(f"{path.name} differs from what was written (checksum mismatch: "
                            "truncated or bit-flipped)")
            fixes.add("faiss")
        try:
            index = VectorIndex.from_bytes(data, manifest["index"]["kind"])
        except Exception as err:  # noqa: BLE001 (any damage is reported, not raised)
            problems.append(f"{path.name} is unreadable ({str(err).splitlines()[0][:200]})")
            fixes.add("faiss")
    if index is not None and "faiss" not in fixes:
        if index.dim != dim or not np.array_equal(np.sort(index.ids()),
                                                 np.sort(np.array(ids, dtype=np.int64))):
            problems.append(f"{path.name} holds {index.ntotal} vectors of dim {index.dim}; "
                            f"SQLite has {len(ids)} chunks of dim {dim}")
            fixes.add("faiss")
        elif sample:
            queries = np.stack([v for _, v in sample])
            scores, found = index.search(queries, 10)
            # itself, or a chunk of the very same vector (repeated text), at similarity 1
            lost = sum(cid not in set(row.tolist()) and not (len(srow) and srow[0] > 0.999)
                       for (cid, _), row, srow in zip(sample, found, scores))
            if lost > len(sample) // 10:  # approximate indexes may miss a few
                problems.append(f"{lost} of {len(sample)} stored vectors do not find themselves "
                                f"in {path.name}: its vectors differ from SQLite's")
                fixes.add("faiss")
    report.checked["faiss_sample"] = len(sample)

    # the directory: the manifest mirror, stray files
    mirror = kb_dir / MANIFEST_NAME
    try:
        on_disk = read_mirror(mirror)
        differs = [k for k in (*STATIC_FIELDS, "generation", "counts")
                   if on_disk.get(k) != manifest.get(k)]
        if differs:
            problems.append(f"{MANIFEST_NAME} disagrees with SQLite on {', '.join(differs)}")
            fixes.add("manifest")
    except FileNotFoundError:
        problems.append(f"{MANIFEST_NAME} is missing")
        fixes.add("manifest")
    except (OSError, ValueError) as err:
        problems.append(f"{MANIFEST_NAME} is unreadable ({err})")
        fixes.add("manifest")
    stray = [p.name for p in kb_dir.glob("index.*.faiss") if p.name != path.name]
    stray += [p.name for p in kb_dir.glob(f"{bm25.DIR_PREFIX}*") if "bm25" not in manifest
              or p.name != bm25.dir_name(manifest["bm25"]["generation"])]
    stray += [p.name for p in kb_dir.glob(".*.tmp")]
    if stray:
        problems.append(f"files left by an interrupted writer: {', '.join(sorted(stray))}")
        fixes.add("stray")
    return fixes


def _inspect_bm25(kb_dir: Path, manifest: dict, ids: list[int], report: CheckReport,
                  fixes: set[str]) -> None:
    """The generation's BM25 directory: its files as written (checksums), and one document
    per chunk id (every id compared below BM25_FULL_BELOW chunks; past it the count, and a
    sample of ids found once each, since listing 10M ids from Tantivy would need GBs)."""
    path = kb_dir / bm25.dir_name(manifest["bm25"]["generation"])
    problem = bm25.damaged(path, manifest["bm25"]["files"], full=True)
    if problem is None:
        try:
            index = bm25.Bm25Index(path)
            if len(ids) < BM25_FULL_BELOW:
                same = np.array_equal(index.ids(), np.sort(np.array(ids, dtype=np.int64)))
            else:
                sample = ids[::max(1, len(ids) // 1000)]
                same = index.num_docs == len(ids) and index.holding(sample) == len(sample)
            if not same:
                problem = f"it holds {index.num_docs} chunks, SQLite {len(ids)}, or other ids"
        except ValueError as err:
            problem = str(err).splitlines()[0][:200]
    if problem is not None:
        report.problems.append(f"the BM25 index {path.name} is damaged ({problem})")
        fixes.add("bm25")


def _repair(kb_dir: Path, fixes: set[str], report: CheckReport) -> None:
    """Rebuild under the write lock, through the commit protocol of every writer."""
    from .store import _connect

    lock = take_write_lock(kb_dir)
    try:
        conn = _connect(kb_dir / DB_NAME)
        manifest = json.loads(conn.execute(
            "SELECT value FROM meta WHERE key='manifest'").fetchone()[0])
        store = Store(kb_dir, conn, manifest, None, int(manifest["generation"]))
        try:
            store.begin()
            if "metadata" in fixes:
                n = conn.execute("UPDATE documents SET metadata = '{}' WHERE NOT json_valid("
                                 "metadata) OR json_type(metadata) != 'object'").rowcount
                report.repaired.append(f"emptied the unreadable metadata of {n} documents (`rag "
                                       "index` of their files reads it again once they change, "
                                       "or with --rebuild)")
            if "fts" in fixes:
                conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild')")
                report.repaired.append("rebuilt the FTS5 index from the chunk texts")
            if "windows" in fixes:
                n = conn.execute("UPDATE chunks SET windows = NULL WHERE windows IS NOT NULL AND "
                                 "length(windows) % ? != 0", (4 * int(manifest["dim"]),)).rowcount
                report.repaired.append(f"dropped the torn window vectors of {n} chunks (they "
                                       f"are scored by their own vector; `rag index PATH --kb "
                                       f"{kb_dir} --rebuild` embeds them again)")
            if "bm25" in fixes:
                store.rebuild_bm25()
                report.repaired.append("rebuilt the BM25 index from the chunk texts")
            ids, vecs = store.all_vectors()
            index = VectorIndex.build(manifest["index"]["kind"], int(manifest["dim"]), ids, vecs)
            store.commit(index)  # a new generation: FAISS file, manifest, mirror, strays
        finally:
            store.close()
        if "faiss" in fixes:
            report.repaired.append(f"rebuilt the FAISS index ({len(ids)} vectors from SQLite, "
                                   f"none re-embedded)")
        if "manifest" in fixes:
            report.repaired.append(f"rewrote {MANIFEST_NAME} (and the counts) from SQLite")
        if "stray" in fixes:
            report.repaired.append("removed files left by an interrupted writer")
    finally:
        lock.release()
