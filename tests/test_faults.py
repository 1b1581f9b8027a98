"""Injected I/O faults: ENOSPC and EIO at every write, fsync, rename and commit of the
commit protocol. Each run fails with a one-line error, and the knowledge base is exactly
its before-state (or, for a fault after the SQLite commit, its after-state), consistent."""
import errno
import os
import sqlite3

import pytest

from conftest import FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, KnowledgeError, sync
from knowledge import store as store_mod


def state(kb):
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
        assert k.store.verify() == []
        return sorted(k.store.conn.execute(
            "SELECT d.doc_id, c.ord, c.text FROM chunks c JOIN documents d "
            "ON c.document_id = d.id").fetchall())


class Faults:
    """Counts the protocol's file operations; makes the ``fail_at``-th one raise."""

    def __init__(self, fail_at: int | None, code: int):
        self.fail_at, self.code, self.calls, self.where = fail_at, code, 0, None

    def hit(self, what: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            self.where = what
            if what == "commit":
                raise sqlite3.OperationalError("disk I/O error" if self.code == errno.EIO
                                               else "database or disk is full")
            raise OSError(self.code, os.strerror(self.code))


@pytest.fixture
def faulty(monkeypatch):
    """Install a Faults on the file operations of knowledge.store (writes, fsyncs, renames,
    directory fsyncs, unlinks of old files) and on SQLite's COMMIT."""
    box = {}
    real_fsync, real_replace, real_open = os.fsync, os.replace, open

    def fsync(fd):
        box["f"].hit("fsync")
        return real_fsync(fd)

    def replace(a, b):
        box["f"].hit("rename")
        return real_replace(a, b)

    class Writing:
        def __init__(self, *a, **k):
            self._f = real_open(*a, **k)

        def write(self, data):
            box["f"].hit("write")
            return self._f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def __getattr__(self, name):
            return getattr(self._f, name)

    class Conn:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, sql, *args):
            if sql.strip().upper() == "COMMIT":
                box["f"].hit("commit")
            return self._conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    connect = store_mod._connect
    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    monkeypatch.setattr(store_mod.os, "replace", replace)
    monkeypatch.setattr(store_mod, "open", Writing, raising=False)
    monkeypatch.setattr(store_mod, "_connect", lambda path: Conn(connect(path)))

    def install(fail_at, code=errno.ENOSPC):
        box["f"] = Faults(fail_at, code)
        return box["f"]
    return install


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
def test_a_fault_at_any_step_fails_cleanly_and_keeps_a_whole_state(tmp_path, faulty, code):
    import shutil

    docs = write_corpus(tmp_path / "docs", {f"d{i}.txt": f"document {i} about topic {i % 3}"
                                            for i in range(6)})
    pristine = tmp_path / "pristine"
    faulty(None)
    sync(pristine, [docs], embedder=FakeEmbedder(), log=lambda m: None)
    before = state(pristine)
    (docs / "d0.txt").write_text("document zero, rewritten")
    (docs / "d1.txt").unlink()
    (docs / "new.txt").write_text("a new document about topic 9")
    probe = tmp_path / "probe"
    shutil.copytree(pristine, probe)
    count = faulty(None)
    sync(probe, [docs], embedder=FakeEmbedder(), log=lambda m: None)
    steps = count.calls  # the protocol's file operations in one run
    after = state(probe)
    assert steps >= 6 and after != before
    outcomes = {"before": 0, "after": 0}
    missed = 0  # runs that made fewer operations than the counting run
    for n in range(1, steps + 1):
        kb = tmp_path / f"kb{n}"
        shutil.copytree(pristine, kb)
        fault = faulty(n, code)
        try:
            sync(kb, [docs], embedder=FakeEmbedder(), log=lambda m: None)
            failed = None
        except KnowledgeError as err:
            failed = str(err)
        faulty(None)
        now = state(kb)  # opens, and verifies clean
        if fault.where is None:  # (Tantivy's segment files, fsynced one by one, vary in
            # number from run to run: this run ended before its n-th operation)
            assert failed is None and now == after, n
            missed += 1
            continue
        if failed is not None:  # one line, naming what failed
            assert "\n" not in failed and any(w in failed.lower() for w in (
                "disk", "space", "i/o", "input/output")), failed
        else:
            assert now == after, (n, fault.where)  # a fault it could survive (cleanup)
        assert now in (before, after), (n, fault.where)
        outcomes["before" if now == before else "after"] += 1
        if now == before:
            assert failed is not None, (n, fault.where)
    print(f"{os.strerror(code)}: {steps} operations, {missed} runs ended sooner, "
          f"outcomes {outcomes}")
    assert outcomes["before"] >= 3, outcomes
    assert missed <= steps // 4, (missed, steps)  # (nearly every run was faulted)
