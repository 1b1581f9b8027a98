"""The knowledge base directory on disk: SQLite (documents, chunks), FAISS, BM25, manifest.

Crash safety: one ``rag index`` run is one SQLite transaction. The FAISS index for the new
state is written to ``index.<generation>.faiss`` (aside, fsync, rename) *before* the SQLite
commit that moves ``generation`` to it; older index files are deleted only after the commit.
The BM25 index follows the same rule: a run that changes chunks writes a new directory
``lexical.<generation>/`` (bm25.py: the last one's files hard-linked, its changes added),
fsynced before that commit; the manifest names it with its files' sizes and checksums.
So whenever a process dies, SQLite names a generation whose FAISS file and BM25 directory
exist and match it; whatever a dead writer left beside them is removed by the next.
``manifest.json`` mirrors SQLite's copy of the manifest for people and tools; a stale one
(a crash between commit and mirror) is rewritten by the next writer.

Concurrency: one writer at a time (an exclusive lock file, released by the OS if the
writer dies); readers take SQLite WAL snapshots and never see a half-written state.

Example: ``store = Store.open(Path("kb"))``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

from . import bm25, lexical
from .errors import KnowledgeError, LockedError, UsageError
from .language import dominant_script
from .vector_index import VectorIndex

# 2: rows of tabular files are identified as "<file>#<row id>"; 3: FTS5 indexes CJK text as
# bigrams (``lexical.py``), and each document records its script; 4: chunks record their kind
# (a table of contents, an index), and a PDF's pages their labels and character boxes; 5: BM25
# is a Tantivy index per generation (``bm25.py``) instead of FTS5 (older ones are still
# searched with FTS5)
FORMAT_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)  # older ones are migrated by the next writer (``_migrate``)
RE_READ_SUFFIXES = (".pdf", ".html", ".htm", ".docx")  # parsed better since format 3
TABULAR_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv")
DB_NAME = "kb.sqlite"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = "write.lock"
KB_ENV = "RAG_KB"
COUNT_ROWS_BELOW = 1_000_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    UNIQUE(root, path));
CREATE TABLE IF NOT EXISTS documents(
    id INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    file_id INTEGER NOT NULL REFERENCES files(id),
    title TEXT NOT NULL,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    page_starts TEXT NOT NULL,
    indexed_at REAL NOT NULL,
    script TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS documents_file ON documents(file_id);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id),
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL,
    vector BLOB NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    windows BLOB);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
"""
PAGES_TABLE = """CREATE TABLE IF NOT EXISTS pages(
    document_id INTEGER NOT NULL REFERENCES documents(id),
    page INTEGER NOT NULL,
    label TEXT NOT NULL,
    width REAL NOT NULL,
    height REAL NOT NULL,
    layout TEXT NOT NULL,
    PRIMARY KEY(document_id, page))"""
SCHEMA += PAGES_TABLE + ";\n"
# The chunk ids a write transaction changed, for the BM25 directory it builds: kept by the
# writer's connection alone (TEMP), so every path that writes chunks is seen. ``op`` bits:
# 1 add the row (if it is still there), 2 delete the id from what the index held.
BM25_LOG = (
    "CREATE TEMP TABLE IF NOT EXISTS bm25_log(id INTEGER PRIMARY KEY, op INTEGER NOT NULL)",
    """CREATE TEMP TRIGGER IF NOT EXISTS bm25_ai AFTER INSERT ON main.chunks BEGIN
    INSERT INTO bm25_log(id, op) VALUES (new.id, 1) ON CONFLICT(id) DO UPDATE SET op = op | 1;
END""",
    """CREATE TEMP TRIGGER IF NOT EXISTS bm25_ad AFTER DELETE ON main.chunks BEGIN
    INSERT INTO bm25_log(id, op) VALUES (old.id, 2) ON CONFLICT(id) DO UPDATE SET op = 2;
END""",
)
# FTS5, the BM25 of formats 1-4 (read until the next writer migrates): dropped by ``_migrate``
FTS_OBJECTS = ("TRIGGER chunks_ai", "TRIGGER chunks_ad", "TABLE chunks_fts",
               "VIEW chunks_lexical")

# manifest fields that must agree between manifest.json and SQLite (the rest are counts/times)
STATIC_FIELDS = ("format_version", "embedder", "dim", "metric", "chunker")


def metadata_of(raw: str) -> dict:
    """A document's stored metadata; {} where the stored text is not a JSON object (damage
    `rag check` reports and repairs): a search still shows the passage."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_mirror(path: Path) -> dict:
    """manifest.json as written: a JSON object (ValueError for anything else, e.g. ``null``)."""
    manifest = json.loads(path.read_text())
    if not isinstance(manifest, dict):
        raise ValueError(f"not a JSON object but {type(manifest).__name__}")
    return manifest


def resolve_kb_dir(kb: str | os.PathLike | None) -> Path:
    """The --kb value, or $RAG_KB; a UsageError when neither is given."""
    value = kb if kb is not None else os.environ.get(KB_ENV)
    if not value:
        raise UsageError(f"no knowledge base given; pass --kb DIR or set {KB_ENV}")
    return Path(value).expanduser()


def _is_ours(name: str) -> bool:
    """Files this module writes into a knowledge base directory."""
    return (name.startswith(DB_NAME) or name in (MANIFEST_NAME, LOCK_NAME)
            or (name.startswith("index.") and name.endswith(".faiss"))
            or name.startswith(bm25.DIR_PREFIX)
            or (name.startswith(".") and name.endswith(".tmp")))


def is_kb(path: Path) -> bool:
    """True when ``path`` holds a knowledge base whose creation was committed."""
    db = path / DB_NAME
    if not db.is_file():
        return False
    try:
        conn = sqlite3.connect(db)
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                return False  # a first create killed before it wrote its schema
            row = conn.execute("SELECT 1 FROM meta WHERE key='manifest'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return True  # something is there; open() reports what is wrong with it
    return row is not None


def lost_database(path: Path) -> bool:
    """True when ``path`` holds what only a committed knowledge base writes (manifest.json, a
    FAISS or BM25 index) but its SQLite file is missing, empty or not a file: a knowledge base
    whose database was lost, which a new one must not silently replace."""
    if is_kb(path) or not path.is_dir():
        return False
    db = path / DB_NAME
    if db.is_file():
        try:
            with closing(sqlite3.connect(db)) as conn:
                if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    return False  # a schema without a manifest: a first create that died
        except sqlite3.DatabaseError:
            return False
    return any(p.name == MANIFEST_NAME or (p.name.startswith("index.") and
                                          p.name.endswith(".faiss"))
               or p.name.startswith(bm25.DIR_PREFIX) for p in path.iterdir())


def lost_message(path: Path) -> str:
    return (f"{path / DB_NAME} is missing or empty, but {path} holds the rest of a knowledge "
            "base: restore it from a backup, or `rag index PATH --kb DIR --rebuild` to index "
            "anew (what is there now is then replaced)")


def discard_unfinished(path: Path) -> None:
    """Remove a knowledge base whose creation was never committed (a first `rag index` that
    ingested nothing, or failed): our files, and the folder when that leaves it empty. A
    committed one, one whose database was lost (``lost_database``), or one another writer
    holds, is left alone."""
    if not path.is_dir() or is_kb(path) or lost_database(path):
        return
    try:
        lock = take_write_lock(path)
    except LockedError:
        return
    try:
        if is_kb(path) or lost_database(path):
            return
        for p in path.iterdir():
            if _is_ours(p.name) and p.name != LOCK_NAME:
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    finally:
        lock.release()
    (path / LOCK_NAME).unlink(missing_ok=True)
    try:
        path.rmdir()
    except OSError:  # (not empty: the user's own files)
        pass


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=30, check_same_thread=False)
    lexical.register(conn)  # (the FTS5 triggers and view call it)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def write_atomic(path: Path, data: bytes) -> None:
    """Write aside, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path, durable: set[str] = frozenset()) -> None:
    """fsync the files of a directory (but those in ``durable``), the directory, and its
    parent (the new entry)."""
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name not in durable:
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)
    _fsync_dir(path.parent)


def describe(err: BaseException) -> str:
    """An OS or SQLite error in a few words, naming the file where there is one."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + (f": {err.filename}" if err.filename else "")
    return str(err).splitlines()[0] if str(err) else err.__class__.__name__


def take_write_lock(path: Path):
    """The knowledge base's writer lock, held (released by the OS if the holder dies), or a
    LockedError at once when another writer has it."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(Path(path) / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockedError(f"knowledge base {path} is locked: another `rag index` is "
                          "writing to it; wait for it to finish") from None
    return lock


def _index_file(generation: int) -> str:
    return f"index.{generation}.faiss"


class Store:
    """An open knowledge base directory: the SQLite connection, the FAISS index and the
    BM25 index (``bm25``: None for a format before 5, searched with FTS5, and in a writer,
    which does not search)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, manifest: dict,
                 index: VectorIndex, generation: int, mmap: bool = False):
        self.path = path
        self.mmap = mmap  # FAISS mapped from its file, read-only (readers), or loaded (writers)
        self.conn = conn
        self.manifest = manifest
        self.index = index
        self.generation = generation
        self.bm25: bm25.Bm25Index | None = None
        self._lock = None
        self._pending_manifest = None  # set by --rebuild: applied when the transaction begins
        self._bm25_writer: bm25.Bm25Writer | None = None  # the next generation's, once begun
        self._bm25_fresh = False  # the next BM25 directory starts empty (rebuild, repair)

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, mmap: bool = True) -> "Store":
        """Open an existing knowledge base for reading, checking its parts agree. ``mmap``:
        map the FAISS index from its file rather than load it (read-only; the default, so a
        large KB opens in little RAM); writers load it (``open_for_write``)."""
        path = Path(path)
        if not path.exists():
            raise KnowledgeError(f"knowledge base {path} does not exist; create it with "
                                 f"`rag index PATH --kb {path}`")
        if not is_kb(path):
            if lost_database(path):
                raise KnowledgeError(lost_message(path))
            raise KnowledgeError(f"{path} is not a knowledge base (no {DB_NAME} with a "
                                 "manifest); create one with `rag index PATH --kb DIR`")
        try:
            conn = _connect(path / DB_NAME)
            conn.execute("SELECT count(*) FROM meta").fetchone()
        except sqlite3.DatabaseError as err:
            raise KnowledgeError(f"{path / DB_NAME} is unreadable ({err}); rebuild with "
                                 f"`rag index PATH --kb {path} --rebuild`") from None
        store = cls(path, conn, {}, None, -1, mmap)
        store._load_snapshot(retries=5)
        store._check_manifest_file()
        return store

    def _load_snapshot(self, retries: int = 5) -> None:
        """Read manifest and generation in one SQLite snapshot and load its FAISS file."""
        for attempt in range(retries):
            self.conn.execute("BEGIN")
            try:
                manifest = self._read_meta_manifest()
                generation = int(manifest["generation"])
                file = self.path / _index_file(generation)
                index = self._read_index(file, manifest["index"]["kind"])
                lexical_index = self._read_bm25(manifest) if index is not None else None
                if lexical_index is False:
                    index = None  # (its directory is gone: a writer moved on; read again)
                # rows counted where that is cheap; past COUNT_ROWS_BELOW chunks the count the
                # writer stored in the same transaction stands in (count(*) took 2.3 s at 10M;
                # `rag check` still compares every id)
                nchunks = int(manifest.get("counts", {}).get("chunks", 0))
                if nchunks < COUNT_ROWS_BELOW:
                    nchunks = self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            finally:
                self.conn.execute("COMMIT")
            if index is not None:
                break
            time.sleep(0.05 * (attempt + 1))  # a writer just replaced it: read again
        else:
            if lexical_index is False:
                raise KnowledgeError(
                    f"{self.path}: the BM25 index {self._bm25_dir(manifest).name} is missing; "
                    f"`rag check --kb {self.path} --repair` rebuilds it from the chunk texts")
            raise KnowledgeError(f"{self.path}: FAISS file {_index_file(generation)} is "
                                 f"missing; `rag check --kb {self.path} --repair` rebuilds it "
                                 "from the vectors in SQLite (no re-embedding)")
        if index.ntotal != nchunks or index.dim != int(manifest["dim"]):
            raise KnowledgeError(
                f"{self.path}: FAISS holds {index.ntotal} vectors of dim {index.dim} but SQLite "
                f"has {nchunks} chunks of dim {manifest['dim']}; `rag check --kb {self.path} "
                "--repair` rebuilds it from the vectors in SQLite (no re-embedding)")
        if lexical_index is not None and lexical_index.num_docs != nchunks:
            raise KnowledgeError(
                f"{self.path}: the BM25 index holds {lexical_index.num_docs} chunks but SQLite "
                f"has {nchunks}; `rag check --kb {self.path} --repair` rebuilds it from the "
                "chunk texts")
        self.manifest, self.index, self.generation = manifest, index, generation
        self.bm25 = lexical_index

    def _read_index(self, file: Path, kind: str) -> VectorIndex | None:
        """The FAISS index in ``file`` (None: gone, a writer replaced it since)."""
        try:
            if self.mmap:
                return VectorIndex.read(file, kind, mmap=True)
            return VectorIndex.from_bytes(file.read_bytes(), kind)
        except FileNotFoundError:
            return None
        except Exception as err:
            if not file.exists():
                return None
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise KnowledgeError(f"{file} is unreadable ({first}); `rag check --kb {self.path} "
                                 "--repair` rebuilds it from the vectors in SQLite (no "
                                 "re-embedding)") from None

    def _bm25_dir(self, manifest: dict) -> Path:
        return self.path / bm25.dir_name(int(manifest["bm25"]["generation"]))

    def _read_bm25(self, manifest: dict):
        """The generation's BM25 index opened for searching; None where there is none to
        open (a format before 5, or a writer); False when its directory is gone."""
        if "bm25" not in manifest or not self.mmap:
            return None
        path = self._bm25_dir(manifest)
        problem = bm25.damaged(path, manifest["bm25"]["files"])
        if problem is not None:
            if not path.exists() or problem.endswith("is missing"):
                return False
            raise KnowledgeError(f"{path} is damaged ({problem}); `rag check --kb {self.path} "
                                 "--repair` rebuilds it from the chunk texts")
        try:
            return bm25.Bm25Index(path)
        except ValueError as err:
            # a writer removing an old generation deletes its files one by one: a file gone
            # since the check above means the same as the directory gone (read again)
            gone = bm25.damaged(path, manifest["bm25"]["files"])
            if not path.exists() or "FileDoesNotExist" in str(err) or (
                    gone is not None and gone.endswith("is missing")):
                return False
            raise KnowledgeError(f"{path} is unreadable ({str(err)[:200]}); `rag check --kb "
                                 f"{self.path} --repair` rebuilds it from the chunk texts") from None

    def lexical_index(self) -> bm25.Bm25Index | None:
        """The BM25 index of the loaded generation (None: a format before 5, with FTS5)."""
        if self.bm25 is None and "bm25" in self.manifest:  # (a writer opens it on demand)
            self.bm25 = bm25.Bm25Index(self._bm25_dir(self.manifest))
        return self.bm25

    def _read_meta_manifest(self) -> dict:
        row = self.conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
        if row is None:
            raise KnowledgeError(f"{self.path} has no manifest in {DB_NAME}; rebuild with --rebuild")
        manifest = json.loads(row[0])
        if manifest.get("format_version") not in READABLE_VERSIONS:
            raise KnowledgeError(
                f"{self.path} has format version {manifest.get('format_version')}, this rag "
                f"reads {FORMAT_VERSION}; rebuild with --rebuild")
        return manifest

    def _check_manifest_file(self) -> None:
        mirror = self.path / MANIFEST_NAME
        if not mirror.exists():
            return  # a writer died between commit and mirror; the next writer rewrites it
        try:
            on_disk = read_mirror(mirror)
        except (OSError, ValueError) as err:
            raise KnowledgeError(f"{self.path / MANIFEST_NAME} is unreadable ({err}); "
                                 f"`rag check --kb {self.path} --repair` rewrites it from "
                                 "SQLite") from None
        for key in STATIC_FIELDS:
            if on_disk.get(key) != self.manifest.get(key):
                raise KnowledgeError(
                    f"{self.path / MANIFEST_NAME} disagrees with {DB_NAME} on {key!r} "
                    f"(edited by hand?); `rag check --kb {self.path} --repair` rewrites it "
                    "from SQLite")

    def refresh(self) -> bool:
        """Reload FAISS if a writer committed since; True if it did. (Inside ``snapshot``
        the generation is the snapshot's, whose FAISS is loaded: a no-op.)"""
        if self._committed_generation() != self.generation:
            self._load_snapshot()
            return True
        return False

    def _committed_generation(self) -> int | None:
        """The committed generation; -2 when it is this one but a writer migrated the format
        since (a new manifest with the same FAISS file), so that it is reloaded too."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
        if not row:
            return None
        manifest = json.loads(row[0])
        if manifest.get("format_version") != self.manifest.get("format_version"):
            return -2
        return int(manifest["generation"])

    @contextmanager
    def snapshot(self):
        """Read SQLite and FAISS of one committed generation: a read transaction whose
        generation is the one the loaded FAISS index is for (reloaded first if a writer has
        moved on), so no query mixes a newer SQLite with an older index."""
        if self.conn.in_transaction:  # (nested: the outer snapshot holds)
            yield
            return
        for _ in range(20):
            self.conn.execute("BEGIN")
            if self._committed_generation() == self.generation:
                break
            self.conn.execute("COMMIT")
            self._load_snapshot()
        else:
            self.conn.execute("BEGIN")  # (a writer committing non-stop: read what is there)
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # -- creating and writing ---------------------------------------------------------

    @classmethod
    def open_for_write(cls, path: Path, new_manifest: dict | None,
                       rebuild: bool = False) -> "Store":
        """Take the writer lock and open (or create) the knowledge base at ``path``.

        ``new_manifest`` holds the static fields wanted; on an existing KB they must match
        unless ``rebuild`` (None: an existing KB as it is). The caller then calls
        ``begin()``, writes, and ``commit()``.
        """
        if new_manifest is None and not is_kb(Path(path)):
            raise KnowledgeError(f"knowledge base {path} does not exist")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--kb {path} is a file, not a directory")
        if path.exists() and not is_kb(path) and any(
                not _is_ours(p.name) for p in path.iterdir()):
            raise UsageError(f"--kb {path} is a non-empty directory that is not a knowledge "
                             "base; choose a new or empty directory")
        path.mkdir(parents=True, exist_ok=True)
        lock = take_write_lock(path)
        try:
            if not rebuild and lost_database(path):
                raise KnowledgeError(lost_message(path))
            store = None
            if is_kb(path):
                try:
                    store = cls.open(path, mmap=False)
                except KnowledgeError:
                    if not rebuild:
                        raise
                if store is not None and not rebuild and new_manifest is not None:
                    store._check_compatible(new_manifest)
                if store is not None:
                    store._migrate()
            if store is None:  # new, unfinished or (with --rebuild) unreadable
                store = cls._create(path, new_manifest)
            elif rebuild:
                store._pending_manifest = {**store.manifest, **new_manifest}
        except BaseException:
            lock.release()
            raise
        store._lock = lock
        return store

    @classmethod
    def _create(cls, path: Path, static: dict) -> "Store":
        for p in path.iterdir():  # leftovers of a create that died, or a KB being rebuilt
            if _is_ours(p.name) and p.name != LOCK_NAME:
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        conn = _connect(path / DB_NAME)
        conn.executescript(SCHEMA)
        now = time.time()
        manifest = {**static, "format_version": FORMAT_VERSION, "generation": 0,
                    "lexical": lexical.LEXICAL_VERSION,
                    "created": now, "updated": now,
                    "counts": {"files": 0, "documents": 0, "chunks": 0}}
        # (empty and flat until the first commit builds the kind asked for: IVF kinds need
        # vectors to train on)
        index = VectorIndex.build("flat", int(static["dim"]), np.zeros(0, np.int64),
                                  np.zeros((0, int(static["dim"])), np.float32))
        return cls(path, conn, manifest, index, -1)

    def _migrate(self) -> None:
        """Bring a knowledge base of an older format to this one, in one transaction (with
        the writer lock held); nothing is re-embedded.
        1 -> 2: documents from rows of JSONL/CSV files, identified by the row's id alone (so
        two files reusing ids 1..N collided), become "<file>#<id>".
        2 -> 3: each document gets its script (and FTS5 indexed CJK as bigrams).
        3 -> 4: chunks get a kind and PDFs a pages table; PDF, HTML and Word files are marked
        to be read again by the next `rag index` of their folder (their text is cleaner now),
        which re-embeds only the documents whose text changed.
        4 -> 5: the chunk texts go into a Tantivy BM25 directory (``lexical()``: CJK as
        bigrams) named in the manifest, and FTS5 is dropped."""
        version = self.manifest.get("format_version")
        if version == FORMAT_VERSION:
            return
        before = dict(self.manifest)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 1:
                self._rename_tabular_rows()
            if version < 3:
                self._scripts()
            if version < 4:
                self._kinds_and_pages()
            for what in FTS_OBJECTS:
                kind, name = what.split()
                self.conn.execute(f"DROP {kind} IF EXISTS {name}")
            self._install_bm25_log()
            self.rebuild_bm25()  # (its directory is named by the current generation)
            self.manifest.update(format_version=FORMAT_VERSION, lexical=lexical.LEXICAL_VERSION)
            self._finish_bm25(self.generation)
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)",
                              (json.dumps(self.manifest, sort_keys=True),))
            (self.path / MANIFEST_NAME).unlink(missing_ok=True)  # (absent, never stale)
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            self.manifest = before
            raise
        self._bm25_writer, self._bm25_fresh = None, False
        self.write_manifest_mirror()

    def _rename_tabular_rows(self) -> None:
        conditions = " OR ".join("f.path LIKE ?" for _ in TABULAR_SUFFIXES)
        rows = self.conn.execute(
            f"SELECT d.id, d.doc_id, f.path FROM documents d JOIN files f ON d.file_id = f.id "
            f"WHERE {conditions}", [f"%{x}" for x in TABULAR_SUFFIXES]).fetchall()
        renamed = []
        for row, doc_id, path in rows:
            line = doc_id[len(path) + 1:] if doc_id.startswith(path + ":") else None
            new_id = f"{path}#line-{line}" if line and line.isdigit() else f"{path}#{doc_id}"
            renamed.append((new_id, row))
        # (through a temporary name: a new id may equal an old one mid-way)
        tmp = "\x01migrating\x01"
        self.conn.executemany("UPDATE documents SET doc_id = ? WHERE id = ?",
                              [(tmp + new_id, row) for new_id, row in renamed])
        self.conn.execute("UPDATE documents SET doc_id = substr(doc_id, ?) "
                          "WHERE substr(doc_id, 1, ?) = ?", (len(tmp) + 1, len(tmp), tmp))

    def _scripts(self) -> None:
        columns = [r[1] for r in self.conn.execute("PRAGMA table_info(documents)")]
        if "script" not in columns:
            self.conn.execute("ALTER TABLE documents ADD COLUMN script TEXT NOT NULL DEFAULT ''")
        self.conn.executemany("UPDATE documents SET script = ? WHERE id = ?", [
            (dominant_script(text), row)
            for row, text in self.conn.execute("SELECT id, text FROM documents").fetchall()])

    def _kinds_and_pages(self) -> None:
        columns = [r[1] for r in self.conn.execute("PRAGMA table_info(chunks)")]
        if "kind" not in columns:
            self.conn.execute("ALTER TABLE chunks ADD COLUMN kind TEXT NOT NULL DEFAULT ''")
        self.conn.execute(PAGES_TABLE)
        self._mark_for_reading(lambda root, path: path.lower().endswith(RE_READ_SUFFIXES))

    def reread_outdated(self, readers: dict[str, int], suffix_of) -> list[str]:
        """Mark for reading again the files of each format whose reader is newer than the
        one that read them (``readers``: suffix -> version; a knowledge base that records
        none was read by version 1 of each; ``suffix_of(path)``: the suffix a file is read
        by), and record ``readers``; the formats marked."""
        have = self.manifest.get("readers", {})
        stale = sorted(s for s, v in readers.items() if have.get(s, 1) < v)
        if {**have, **readers} == have:
            return []
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if stale:
                self._mark_for_reading(lambda root, path: suffix_of(Path(root, path)) in stale)
            self.manifest["readers"] = {**have, **readers}
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)",
                              (json.dumps(self.manifest, sort_keys=True),))
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        self.write_manifest_mirror()
        return stale

    def _mark_for_reading(self, which) -> None:
        """Forget the stored time and hash of the files ``which(root, path)`` picks: the next
        run that walks their folder reads them again (re-embedding only changed text)."""
        marked = [(row,) for row, root, path in self.conn.execute(
            "SELECT id, root, path FROM files").fetchall() if which(root, path)]
        self.conn.executemany("UPDATE files SET mtime_ns = -1, sha256 = '' WHERE id = ?", marked)

    def _check_compatible(self, wanted: dict) -> None:
        have_e, want_e = self.manifest["embedder"], wanted["embedder"]
        if (have_e["name"], have_e["weights_sha256"]) != (want_e["name"], want_e["weights_sha256"]):
            raise UsageError(
                f"{self.path} was built with embedder {have_e['name']!r} "
                f"(weights {have_e['weights_sha256'][:12]}), not {want_e['name']!r} "
                f"(weights {want_e['weights_sha256'][:12]}); use that embedder or --rebuild")
        if self.manifest["chunker"] != wanted["chunker"]:
            have, want = self.manifest["chunker"], wanted["chunker"]
            raise UsageError(
                f"{self.path} was built with chunk size/overlap/windows "
                f"{have['size']}/{have['overlap']}/{have.get('windows', 0)}, not "
                f"{want['size']}/{want['overlap']}/{want.get('windows', 0)}; "
                "keep those settings or pass --rebuild")

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        if self._pending_manifest:  # --rebuild: start the tables over
            # (not executescript: it would commit the transaction just begun)
            for sql in ("DELETE FROM chunks", "DELETE FROM pages", "DELETE FROM documents",
                        "DELETE FROM files"):
                self.conn.execute(sql)
            self.manifest = self._pending_manifest
            self._bm25_fresh = True
        self._install_bm25_log()
        if not self._has_windows_column():  # (a KB made before window vectors: a NULL column)
            self.conn.execute("ALTER TABLE chunks ADD COLUMN windows BLOB")

    def _has_windows_column(self) -> bool:
        return any(r[1] == "windows" for r in self.conn.execute("PRAGMA table_info(chunks)"))

    def _install_bm25_log(self) -> None:
        for statement in BM25_LOG:
            self.conn.execute(statement)
        self.conn.execute("DELETE FROM bm25_log")

    def bm25_stale(self) -> bool:
        """Whether the BM25 directory was built before each chunk's section path was indexed
        with its text (bm25.py): the next writer builds it anew, re-embedding nothing."""
        return self.manifest.get("format_version", 0) >= 5 and "bm25" in self.manifest \
            and not self.manifest["bm25"].get("headings")

    def rebuild_bm25(self) -> None:
        """Build the next generation's BM25 directory anew from every chunk text (repair)."""
        self._bm25_fresh = True
        self.conn.execute("INSERT OR REPLACE INTO bm25_log(id, op) SELECT id, 1 FROM chunks")

    def flush_bm25(self, generation: int | None = None) -> None:
        """Apply the chunk changes of this transaction so far to the next generation's BM25
        directory (started on first use). ``commit`` calls it; a writer adding millions of
        chunks calls it now and then, so the texts are read back while still cached."""
        if self.manifest.get("format_version", 0) < 5:
            return  # (FTS5 is its BM25 until the next writer migrates it)
        if self.bm25_stale() and not self._bm25_fresh:
            self.rebuild_bm25()
        changed = self.conn.execute("SELECT count(*) FROM bm25_log").fetchone()[0]
        if not changed and (self._bm25_writer is not None or (
                "bm25" in self.manifest and not self._bm25_fresh)):
            return
        if self._bm25_writer is None:
            generation = max(self.generation + 1, 1) if generation is None else generation
            base = None if self._bm25_fresh or "bm25" not in self.manifest else \
                self._bm25_dir(self.manifest)
            self._bm25_writer = bm25.Bm25Writer(self.path / bm25.dir_name(generation), base)
        writer = self._bm25_writer
        writer.delete([r[0] for r in self.conn.execute("SELECT id FROM bm25_log WHERE op & 2")])
        writer.add(self.conn.execute(
            "SELECT c.id, c.text, c.heading FROM bm25_log l JOIN chunks c ON c.id = l.id "
            "WHERE l.op & 1 ORDER BY c.id"))
        self.conn.execute("DELETE FROM bm25_log")

    def _finish_bm25(self, generation: int) -> None:
        """Commit the BM25 directory this transaction built (if it changed any chunk, or the
        KB has none yet), fsync it, and name it in the manifest to be committed."""
        self.flush_bm25(generation)
        writer = self._bm25_writer
        if writer is None:
            return
        writer.commit()
        _fsync_tree(writer.target, writer.linked)
        known = {} if self._bm25_fresh else self.manifest.get("bm25", {}).get("files", {})
        self.manifest["bm25"] = {"generation": generation, "engine": bm25.engine(),
                                 "headings": True,
                                 "files": bm25.file_table(writer.target, known)}

    def commit(self, index: VectorIndex) -> None:
        """Make the transaction's state durable, together with ``index`` for it."""
        generation = max(self.generation + 1, 1)
        self.manifest["index"] = {**self.manifest["index"], "kind": index.kind}
        counts = self.conn.execute(
            "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM documents), "
            "(SELECT count(*) FROM chunks)").fetchone()
        self.manifest.update(
            generation=generation, updated=time.time(),
            counts={"files": counts[0], "documents": counts[1], "chunks": counts[2]})
        if index.ntotal != counts[2]:
            raise AssertionError(f"index has {index.ntotal} vectors for {counts[2]} chunks")
        data = index.to_bytes()
        self.manifest["index_sha256"] = hashlib.sha256(data).hexdigest()  # (for `rag check`)
        new_file = self.path / _index_file(generation)
        try:
            self._finish_bm25(generation)
            write_atomic(new_file, data)
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('manifest', ?)",
                              (json.dumps(self.manifest, sort_keys=True),))
            self.conn.execute("COMMIT")
        except (OSError, sqlite3.Error, ValueError) as err:  # (ValueError: from Tantivy)
            self.rollback()
            for p in (new_file, new_file.with_name(f".{new_file.name}.tmp")):
                p.unlink(missing_ok=True)  # (SQLite still names the previous generation)
            raise KnowledgeError(f"could not write the knowledge base {self.path} "
                                 f"({describe(err)}); nothing was changed") from None
        self.index, self.generation = index, generation
        self._bm25_writer, self._bm25_fresh = None, False
        try:  # committed: what is left is tidying up, which the next writer redoes
            self.write_manifest_mirror()
            self._remove_strays()
        except OSError as err:
            raise KnowledgeError(f"{self.path}: the run was saved, but tidying up after it "
                                 f"failed ({describe(err)}); `rag check --kb {self.path} "
                                 "--repair` finishes it") from None

    def _remove_strays(self) -> None:
        """Delete the FAISS files and BM25 directories of other generations, and temp files."""
        keep = {_index_file(self.generation)}
        if "bm25" in self.manifest:
            keep.add(self._bm25_dir(self.manifest).name)
        for p in self.path.iterdir():
            if p.name in keep:
                continue
            if p.name.startswith(bm25.DIR_PREFIX) and p.is_dir():
                shutil.rmtree(p)
            elif (p.name.startswith("index.") and p.name.endswith(".faiss")) or (
                    p.name.startswith(".") and p.name.endswith(".tmp")):
                p.unlink(missing_ok=True)

    def rollback(self) -> None:
        if self._bm25_writer is not None:  # (its directory was never named: it goes)
            self._bm25_writer.abort()
            self._bm25_writer = None
        self._bm25_fresh = False
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def write_manifest_mirror(self) -> None:
        write_atomic(self.path / MANIFEST_NAME,
                     (json.dumps(self.manifest, indent=2, sort_keys=True) + "\n").encode())

    def close(self) -> None:
        self.rollback()
        self.conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every chunk, by id: the source a FAISS index is rebuilt from."""
        return self._decode(self.conn.execute("SELECT id, vector FROM chunks ORDER BY id"))

    def vectors(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(ids found, their vectors) for chunk ids, read on demand (a deleted id is left out)."""
        return self._decode(self.conn.execute(
            f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids))

    def windows(self, ids: list[int]) -> dict[int, bytes]:
        """Chunk id -> its window vectors (float32 bytes, ``knowledge/windows.py``) for those
        of ``ids`` that have them; empty for a knowledge base built without them."""
        if not ids or not self.manifest["chunker"].get("windows"):
            return {}
        return dict(self.conn.execute(
            f"SELECT id, windows FROM chunks WHERE windows IS NOT NULL AND id IN "
            f"({','.join('?' * len(ids))})", ids))

    def _decode(self, cursor) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) from rows of (id, vector blob)."""
        rows = cursor.fetchall()
        dim = int(self.manifest["dim"])
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = (np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(-1, dim)
                if rows else np.zeros((0, dim), np.float32))
        return ids, vecs

    def verify(self) -> list[str]:
        """Problems found comparing SQLite, FAISS and manifest.json (empty list: consistent)."""
        problems = []
        self.conn.execute("BEGIN")
        try:
            db_ids = np.array([r[0] for r in self.conn.execute("SELECT id FROM chunks ORDER BY id")],
                              dtype=np.int64)
            n_docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            orphans = self.conn.execute(
                "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)"
            ).fetchone()[0]
            fts = None if "bm25" in self.manifest else self.conn.execute(
                "SELECT count(*) FROM chunks_fts").fetchone()[0]
            manifest = self._read_meta_manifest()
        finally:
            self.conn.execute("COMMIT")
        if manifest["generation"] != self.generation:
            self._load_snapshot()
            return self.verify()
        if not np.array_equal(db_ids, self.index.ids()):
            problems.append(f"FAISS ids differ from SQLite chunk ids ({self.index.ntotal} vs "
                            f"{len(db_ids)})")
        if orphans:
            problems.append(f"{orphans} chunks belong to no document")
        if fts is not None and fts != len(db_ids):
            problems.append(f"FTS5 holds {fts} rows for {len(db_ids)} chunks")
        if fts is None:
            lexical_index = self.lexical_index()
            if not np.array_equal(db_ids, lexical_index.ids()):
                problems.append(f"BM25 ids differ from SQLite chunk ids ({lexical_index.num_docs} "
                                f"vs {len(db_ids)})")
        if manifest["counts"]["chunks"] != len(db_ids) or manifest["counts"]["documents"] != n_docs:
            problems.append("manifest counts differ from SQLite")
        return problems
