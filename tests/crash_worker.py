"""Index a folder with the fake embedder, announcing each step of the commit protocol.

Run by test_crash.py as a real subprocess that it kills with SIGKILL. Before and after each
step that matters for a crash (embedding, starting and committing the BM25 directory, writing
the FAISS file, fsyncs, the SQLite commit and rollback, the manifest) it prints a line and
pauses briefly, so the test can kill it inside any window of the protocol as well as at
random times.
Usage: python crash_worker.py KB_DIR FOLDER
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FakeEmbedder  # noqa: E402
from knowledge import bm25, store  # noqa: E402
from knowledge.chunking import ChunkerSettings  # noqa: E402
from knowledge.sync import sync  # noqa: E402

sync_mod = sys.modules["knowledge.sync"]  # (the package's `sync` is the function)

PAUSE = 0.03


def announced(name, fn):
    def wrapper(*args, **kwargs):
        print(f"mark {name}:before", flush=True)
        time.sleep(PAUSE)
        out = fn(*args, **kwargs)
        print(f"mark {name}:after", flush=True)
        time.sleep(PAUSE)
        return out
    return wrapper


class Conn:
    """Wraps the SQLite connection so COMMIT and ROLLBACK are announced too."""

    def __init__(self, conn):
        self._conn = conn

    def execute(self, sql, *args):
        if sql.strip().upper() in ("COMMIT", "ROLLBACK", "BEGIN IMMEDIATE"):
            return announced(sql.strip().lower(), self._conn.execute)(sql, *args)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


store.write_atomic = announced("write_atomic", store.write_atomic)
store._fsync_dir = announced("fsync_dir", store._fsync_dir)
_connect = store._connect
store._connect = lambda path: Conn(_connect(path))
FakeEmbedder.encode = announced("encode", FakeEmbedder.encode)
bm25.Bm25Writer.__init__ = announced("bm25_start", bm25.Bm25Writer.__init__)
bm25.Bm25Writer.commit = announced("bm25_commit", bm25.Bm25Writer.commit)
sync_mod._scan = announced("scan", sync_mod._scan)

if __name__ == "__main__":
    kb, folder = Path(sys.argv[1]), Path(sys.argv[2])
    sync(kb, [folder], embedder=FakeEmbedder(), chunking=ChunkerSettings(20, 5),
         log=lambda m: None)
