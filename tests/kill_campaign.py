"""The kill campaign: SIGKILL real `rag index` subprocesses (tests/crash_worker.py) at
random moments and inside every window of the commit protocol, over runs that add, update
and delete documents; after each kill the knowledge base must open, verify clean, and equal
its state before or after that run exactly.

With --watch, the killed process is a watcher (tests/watch_worker.py) keeping the folder in
sync while it changes; after each kill the knowledge base must open and verify clean, and a
restarted watcher's first sync must bring it to exactly what indexing the folder afresh
gives: nothing lost.

    python tests/kill_campaign.py --kills 300 [--seed 1234]     # the full campaign
    python tests/kill_campaign.py --quick                         # 40 kills (CI runs these)
    python tests/kill_campaign.py --watch --kills 100             # with the watcher running
"""
import argparse
import json
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conftest import FakeEmbedder  # noqa: E402
from knowledge import KnowledgeBase  # noqa: E402

WORKER = Path(__file__).with_name("crash_worker.py")
WATCHER = Path(__file__).with_name("watch_worker.py")
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi "
         "rho sigma tau upsilon phi chi psi omega").split()


def state(kb: Path):
    """What a run changes: documents with their content, chunks with their text, by doc."""
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
        assert k.store.verify() == []
        docs = k.store.conn.execute("SELECT doc_id, content_hash FROM documents").fetchall()
        chunks = k.store.conn.execute(
            "SELECT d.doc_id, c.ord, c.text FROM chunks c JOIN documents d ON c.document_id=d.id"
        ).fetchall()
        hits = k.search("alpha beta", k=3)
        assert len(hits) == 3
        lexical = k.fetch(k.lexical_ids("omega", 3))  # (verify: BM25 holds every chunk id)
        assert len(lexical) == 3 and all("omega" in h.text for h in lexical)
    return sorted(docs), sorted(chunks)


def mutate(folder: Path, rng: random.Random, step: int) -> None:
    files = sorted(folder.glob("*.txt"))
    for p in rng.sample(files, k=min(len(files), rng.randint(1, 4))):
        if rng.random() < 0.3 and len(files) > 10:
            p.unlink()
        else:
            p.write_text(text(rng, 80))
    for i in range(rng.randint(0, 3)):
        (folder / f"new-{step}-{i}.txt").write_text(text(rng, 80))


def text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) + ("." if rng.random() < 0.1 else "") for _ in range(n))


def run_worker(kb: Path, folder: Path, kill_after: float | None = None,
               kill_at_mark: int | None = None) -> int:
    """Run the worker to the end (returns its number of protocol marks), or SIGKILL it after
    ``kill_after`` seconds or right when it announces mark number ``kill_at_mark``."""
    proc = subprocess.Popen([sys.executable, str(WORKER), str(kb), str(folder)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is None and kill_at_mark is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        return out.count("mark ")
    if kill_after is not None:
        time.sleep(kill_after)
    else:
        for _ in range(kill_at_mark):
            if not proc.stdout.readline():
                break
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return -1


def campaign(work: Path, kills: int, seed: int = 1234) -> dict:
    """``kills`` runs killed (half at a random moment, half at a random protocol mark);
    returns how many left the before- and the after-state, and the marks seen."""
    rng = random.Random(seed)
    folder, kb = work / "docs", work / "kb"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"doc-{i}.txt").write_text(text(rng, 120))
    t = time.perf_counter()
    marks = run_worker(kb, folder)
    duration = time.perf_counter() - t
    outcomes = {"kills": kills, "before": 0, "after": 0, "protocol_marks": marks}
    for step in range(kills):
        before = state(kb)
        mutate(folder, rng, step)
        if step % 2:  # at a random moment
            run_worker(kb, folder, kill_after=rng.uniform(0.0, duration * 1.1))
        else:  # inside a random window of the commit protocol
            run_worker(kb, folder, kill_at_mark=rng.randint(1, marks))
        killed = state(kb)  # opens and is consistent, or this raises
        run_worker(kb, folder)  # the lock was released by the kill; finish the run
        after = state(kb)
        if killed not in (before, after):
            raise AssertionError(f"kill {step}: the state is neither before nor after the run")
        outcomes["before" if killed == before else "after"] += 1
    return outcomes


class Watcher:
    """A watch_worker.py process, its stdout lines in a queue (read on a thread, so a wait
    for a line can time out)."""

    def __init__(self, kb: Path, folder: Path):
        self.proc = subprocess.Popen([sys.executable, str(WATCHER), str(kb), str(folder)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, timeout: float = 120) -> str:
        line = self.lines.get(timeout=timeout)
        if line is None or line.startswith("error"):
            raise AssertionError(f"the watcher stopped: {line} {self.proc.stderr.read()}")
        return line

    def synced(self) -> int:
        """Wait for the end of a sync; the protocol marks it announced."""
        marks = 0
        while (line := self.next_line()) != "synced":
            marks += line.startswith("mark ")
        return marks

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def reference(folder: Path, work: Path):
    """The state that indexing the folder afresh gives."""
    from knowledge.chunking import ChunkerSettings
    from knowledge.sync import sync

    sync(work / "reference", [folder], embedder=FakeEmbedder(), chunking=ChunkerSettings(20, 5),
         rebuild=True, log=lambda m: None)
    return state(work / "reference")


def watch_campaign(work: Path, kills: int, seed: int = 1234) -> dict:
    """``kills`` watchers killed while they follow a changing folder (half at a random
    moment, half at a random protocol mark of the sync the change starts); returns how
    many kills left the state before the change, after it, or between (a burst may take two
    syncs), and the marks of one sync."""
    rng = random.Random(seed)
    folder, kb = work / "docs", work / "kb"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"doc-{i}.txt").write_text(text(rng, 120))
    watcher = Watcher(kb, folder)
    marks = watcher.synced()
    outcomes = {"kills": kills, "before": 0, "after": 0, "between": 0, "protocol_marks": marks}
    for step in range(kills):
        before = state(kb)
        mutate(folder, rng, step)
        after = reference(folder, work)
        if step % 2:  # at a random moment
            time.sleep(rng.uniform(0.0, 1.5))
        else:  # inside a random window of the sync the change starts
            for _ in range(rng.randint(1, marks)):
                if not watcher.next_line().startswith("mark "):
                    break
        watcher.kill()
        killed = state(kb)  # opens and is consistent, or this raises
        watcher = Watcher(kb, folder)  # the first sync picks up what the kill cut short
        watcher.synced()
        if state(kb) != after:
            raise AssertionError(f"kill {step}: after a restart, the knowledge base is not "
                                 "what indexing the folder gives")
        outcomes["before" if killed == before else "after" if killed == after
                 else "between"] += 1
    watcher.kill()
    return outcomes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--quick", action="store_true", help="40 kills")
    ap.add_argument("--watch", action="store_true", help="kill watchers instead of runs")
    args = ap.parse_args()
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        run = watch_campaign if args.watch else campaign
        out = run(Path(work), 40 if args.quick else args.kills, args.seed)
    out["minutes"] = round((time.perf_counter() - t) / 60, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
