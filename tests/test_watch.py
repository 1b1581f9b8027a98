"""Folders kept in sync (knowledge/watch.py): a real watcher (watchfiles) on real files,
syncing with the fake embedder; `rag index --watch` and `rag serve --watch` as processes and
servers. Waits poll the knowledge base until it shows the change (a generous bound that
fails only when the change never arrives); nothing here measures speed (eval/bench_watch.py
does)."""
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, sync
from knowledge.chunking import ChunkerSettings
from knowledge.parsing import ParsePool
from knowledge.store import Store
from knowledge.watch import relevant, watch

WAIT_S = 60


def until(condition, what: str, timeout: float = WAIT_S):
    """Poll ``condition()`` until it is truthy (its value), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = condition()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def documents(kb: Path) -> dict[str, str]:
    """{doc_id: text} as the knowledge base stands (a committed state)."""
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
        assert k.store.verify() == []
        return dict(k.store.conn.execute("SELECT doc_id, text FROM documents"))


def on_disk(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*.txt")
            if not any(part.startswith(".") for part in p.relative_to(folder).parts)}


class Watcher:
    """``knowledge.watch.watch`` on a thread, syncing ``folder`` into ``kb`` with the fake
    embedder; counts its syncs and keeps their reports."""

    def __init__(self, kb: Path, folder: Path, parser):
        self.kb, self.folder, self.parser = kb, folder, parser
        self.reports, self.errors, self.syncs = [], [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def once(self, recheck):
        self.syncs += 1
        return sync(self.kb, [self.folder], embedder=FakeEmbedder(),
                    chunking=ChunkerSettings(20, 5), parser=self.parser, recheck=recheck,
                    empty_ok=True, log=lambda m: None)

    def run(self):
        watch([self.folder], self.once, ignore=[self.kb], stop=self.stop,
              on_sync=self.reports.append, on_error=self.errors.append)

    def transactions(self) -> int:
        """Syncs that committed something."""
        return sum(1 for r in self.reports if r.changed or r.touched)


@contextmanager
def watching(kb: Path, folder: Path):
    with ParsePool(2) as parser:
        w = Watcher(kb, folder, parser)
        w.thread.start()
        until(lambda: w.reports or w.errors, "the first sync")
        try:
            yield w
        finally:
            w.stop.set()
            w.thread.join(timeout=WAIT_S)
            assert not w.thread.is_alive()


def follows(kb: Path, folder: Path, what: str):
    """Wait until the knowledge base holds exactly the folder's documents."""
    until(lambda: documents(kb) == on_disk(folder), what)


def test_created_changed_renamed_and_deleted_files_and_atomic_saves_are_followed(tmp_path):
    folder = write_corpus(tmp_path / "docs", {"a.txt": "Alpha beta.", "sub/b.txt": "Gamma."})
    kb = tmp_path / "kb"
    with watching(kb, folder) as w:
        follows(kb, folder, "the first sync")
        (folder / "c.txt").write_text("Created now.")
        follows(kb, folder, "a created file")
        with open(folder / "a.txt", "a") as f:  # changed in place
            f.write(" Appended.")
        follows(kb, folder, "a file changed in place")
        tmp = folder / ".a.txt.swp-1234"  # an editor's atomic save: write aside, rename over
        tmp.write_text("Alpha, saved by an editor.")
        os.replace(tmp, folder / "a.txt")
        follows(kb, folder, "an atomic save")
        os.rename(folder / "c.txt", folder / "d.txt")
        follows(kb, folder, "a renamed file")
        os.rename(folder / "sub", folder / "moved")
        follows(kb, folder, "a renamed folder")
        (folder / "d.txt").unlink()
        follows(kb, folder, "a deleted file")
        assert documents(kb) == {"a.txt": "Alpha, saved by an editor.",
                                 "moved/b.txt": "Gamma."}
        for p in folder.rglob("*.txt"):
            p.unlink()
        until(lambda: documents(kb) == {}, "an emptied folder")
    assert not w.errors, w.errors


def test_a_folder_moved_away_and_made_again_is_followed(tmp_path):
    """The system watches the folder the name held at the start: moved away (its documents
    stay), and one made again under the name, watching goes on with the new one (it went on
    with the old one, saying nothing)."""
    folder = write_corpus(tmp_path / "docs", {"a.txt": "Alpha beta."})
    kb = tmp_path / "kb"
    with watching(kb, folder) as w:
        follows(kb, folder, "the first sync")
        os.rename(folder, tmp_path / "moved")
        until(lambda: any("is gone" in e for e in w.errors), "the folder said gone")
        assert documents(kb) == {"a.txt": "Alpha beta."}
        write_corpus(folder, {"b.txt": "Made again."})
        follows(kb, folder, "the folder made again")
        (folder / "c.txt").write_text("And changed.")
        follows(kb, folder, "a change in the new folder")
    assert all("is gone" in e for e in w.errors), w.errors


def test_a_write_within_one_clock_tick_is_not_missed(tmp_path):
    """Two writes with the same size and modification time: the second is seen because the
    watcher names the file, and its bytes are compared."""
    folder = write_corpus(tmp_path / "docs", {"a.txt": "first version"})
    kb = tmp_path / "kb"
    with watching(kb, folder):
        follows(kb, folder, "the first sync")
        stamp = (folder / "a.txt").stat().st_mtime_ns
        (folder / "a.txt").write_text("other version")  # same size
        os.utime(folder / "a.txt", ns=(stamp, stamp))  # same time, as within one tick
        until(lambda: documents(kb) == {"a.txt": "other version"}, "the second write")


def test_a_burst_of_1000_writes_makes_at_most_5_transactions(tmp_path):
    folder = write_corpus(tmp_path / "docs", {"seed.txt": "The first document."})
    kb = tmp_path / "kb"
    with watching(kb, folder) as w:
        follows(kb, folder, "the first sync")
        before = w.transactions()
        for i in range(1000):  # as fast as this process writes
            (folder / f"burst-{i:04d}.txt").write_text(f"Document {i} of the burst.")
        follows(kb, folder, "the whole burst")
        burst = w.transactions() - before
    assert 1 <= burst <= 5, [(r.added, r.updated) for r in w.reports]
    assert len(documents(kb)) == 1001


def test_changes_made_while_not_watching_are_picked_up_at_start(tmp_path):
    folder = write_corpus(tmp_path / "docs", {"a.txt": "One.", "b.txt": "Two.", "c.txt": "3"})
    kb = tmp_path / "kb"
    with watching(kb, folder):
        follows(kb, folder, "the first sync")
    (folder / "a.txt").write_text("One, changed while nobody watched.")
    (folder / "b.txt").unlink()
    os.rename(folder / "c.txt", folder / "d.txt")
    (folder / "e.txt").write_text("Five.")
    with watching(kb, folder) as w:
        assert documents(kb) == on_disk(folder)  # by the first sync
        first = w.reports[0]
    assert (first.added, first.updated, first.removed) == (2, 1, 2)


def test_the_kb_inside_the_folder_hidden_and_temporary_files_start_no_sync(tmp_path):
    from watchfiles import Change

    folder = write_corpus(tmp_path / "docs", {"a.txt": "Alpha."})
    kb = folder / "kb"  # written by every sync: must not start another
    keep = relevant([folder], ignore=[kb])
    for path, change, want in [
            (folder / "b.txt", Change.added, True), (folder / "b.md", Change.modified, True),
            (folder / "sub", Change.added, False),  # (not there: not a folder)
            (folder / "gone.d", Change.deleted, True),
            (folder / "b.txt.tmp", Change.added, False), (folder / "b.txt~", Change.added, False),
            (folder / ".b.txt.swp", Change.modified, False),
            (folder / ".hidden" / "c.txt", Change.added, False),
            (kb / "kb.sqlite", Change.modified, False), (kb / "write.lock", Change.added, False),
            (tmp_path / "elsewhere.txt", Change.added, False)]:
        assert keep(change, str(path)) is want, path
    (folder / "sub").mkdir()
    assert keep(Change.added, str(folder / "sub"))  # a new (or renamed) folder
    with watching(kb, folder) as w:
        follows(kb, folder, "the first sync")
        (folder / "b.txt").write_text("Beta.")
        follows(kb, folder, "a new file")
        syncs = w.syncs
        (folder / "c.txt").write_text("Gamma.")
        follows(kb, folder, "another new file")
    # each change one sync; none set off by the knowledge base's own writes
    assert syncs <= 3 and w.syncs <= syncs + 2, (syncs, w.syncs)


def test_a_busy_write_lock_is_waited_for(tmp_path):
    folder = write_corpus(tmp_path / "docs", {"a.txt": "Alpha."})
    kb = tmp_path / "kb"
    with watching(kb, folder) as w:
        follows(kb, folder, "the first sync")
        with Store.open_for_write(kb, None):  # another writer
            (folder / "b.txt").write_text("Beta.")
            until(lambda: w.syncs >= 2, "a sync attempt")
            assert "b.txt" not in documents(kb)
        follows(kb, folder, "the sync after the lock is free")
    assert not w.errors


def test_rag_index_watch_follows_a_folder_until_interrupted(tmp_path):
    folder = write_corpus(tmp_path / "docs", {"crow.txt": "Crows are clever black birds."})
    kb = tmp_path / "kb"
    proc = subprocess.Popen([sys.executable, "-m", "rag", "index", str(folder), "--kb", str(kb),
                             "--watch", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        import json

        first = json.loads(proc.stdout.readline())
        assert (first["added"], first["documents"]) == (1, 1)
        (folder / "robin.txt").write_text("Robins sing at dawn in spring.")
        second = json.loads(proc.stdout.readline())
        assert (second["added"], second["documents"]) == (1, 2) and "time" in second
        found = subprocess.run([sys.executable, "-m", "rag", "search", "What sings at dawn?",
                                "--kb", str(kb), "-k", "1", "--json"], capture_output=True,
                               text=True, cwd=ROOT, check=True).stdout
        assert json.loads(found)["hits"][0]["doc_id"] == "robin.txt"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err
    assert "stopped watching" in err and "Traceback" not in err
    bad = subprocess.run([sys.executable, "-m", "rag", "index", str(folder / "crow.txt"),
                          "--kb", str(kb), "--watch"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "--watch keeps folders in sync" in bad.stderr


def test_rag_serve_watch_answers_from_the_folder_as_it_changes(served_kb, tmp_path):
    from serving import app_for, running

    folder = write_corpus(tmp_path / "notes", {"pump.txt": "Reset the pump with the red key."})
    lines = []
    with running(app_for(served_kb, watch=[folder], log=lines.append)) as url:
        def top(query):
            hits = httpx.post(f"{url}/v1/search", json={"query": query, "k": 1}).json()["hits"]
            return hits[0]["doc_id"] if hits else None

        until(lambda: top("reset the pump red key") == "pump.txt", "the first sync")
        (folder / "valve.txt").write_text("Close the valve before the winter frost.")
        until(lambda: top("close the valve winter frost") == "valve.txt", "a new file")
        (folder / "pump.txt").unlink()
        until(lambda: top("reset the pump red key") != "pump.txt", "a deleted file")
        assert top("Which birds use tools?") == "birds/crow.txt"  # the rest stays
    assert any("synced" in line and "1 added" in line for line in lines), lines
