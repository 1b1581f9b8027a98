"""Concurrent use: reader threads and a reader process query continuously while a writer
adds and deletes documents in many runs. Every result comes from one committed generation,
no query fails, and a second writer is refused at once."""
import json
import subprocess
import sys
import threading
import time

from conftest import ROOT, FakeEmbedder
from knowledge import KnowledgeBase, LockedError, sync

RUNS = 30
READER = r"""
import json, sys
sys.path.insert(0, "tests")
from conftest import FakeEmbedder
from knowledge import KnowledgeBase
kb, n = sys.argv[1], int(sys.argv[2])
out = []
with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
    for _ in range(n):
        out.append([h.text for h in k.search("marker note", k=10)])
print(json.dumps(out))
"""


def doc_text(g: int) -> str:
    return f"marker note {g}: " + " ".join(f"w{g}" for _ in range(12))


def generations(texts: list[str]) -> set[int]:
    return {int(t.split(":")[0].split()[-1]) for t in texts}


def test_readers_see_whole_committed_generations_while_a_writer_runs(tmp_path):
    folder, kb = tmp_path / "docs", tmp_path / "kb"
    folder.mkdir()
    (folder / "note-0.txt").write_text(doc_text(0))
    (folder / "note-1.txt").write_text(doc_text(1))
    sync(kb, [folder], embedder=FakeEmbedder(), log=lambda m: None)
    done, errors, results = threading.Event(), [], []

    def reader():
        try:
            with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
                while not done.is_set():
                    results.append([h.text for h in k.search("marker note", k=10)])
        except Exception as err:  # noqa: BLE001 (counted: the target is none)
            errors.append(repr(err))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    proc = subprocess.Popen([sys.executable, "-c", READER, str(kb), "400"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    refused = []
    for g in range(2, RUNS + 2):  # each run adds note-g and deletes note-(g-2)
        (folder / f"note-{g}.txt").write_text(doc_text(g))
        (folder / f"note-{g - 2}.txt").unlink()
        sync(kb, [folder], embedder=FakeEmbedder(), log=lambda m: None)
        if g % 10 == 0:  # a second writer while the KB is held is refused at once
            from knowledge.store import take_write_lock

            lock = take_write_lock(kb)
            t0 = time.perf_counter()
            try:
                sync(kb, [folder], embedder=FakeEmbedder(), log=lambda m: None)
            except LockedError:
                refused.append(time.perf_counter() - t0)
            finally:
                lock.release()
    done.set()
    for t in threads:
        t.join()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    results += json.loads(out)
    assert not errors and len(results) >= 1000, (errors[:3], len(results))
    for texts in results:  # one committed generation: exactly two consecutive notes, whole
        gens = generations(texts)
        assert len(gens) == 2 and max(gens) - min(gens) == 1, gens
        assert all(t == doc_text(int(t.split(":")[0].split()[-1])) for t in texts)
    assert len(refused) == 3 and max(refused) < 1.0
    print(f"{len(results)} queries checked under {RUNS} concurrent write runs, 0 errors")
