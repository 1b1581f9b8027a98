"""Folders kept in sync, measured on the real path: `rag index DIR --kb KB --watch --json`
(the packaged embedder) following a folder of SQuAD paragraphs while this script changes it.

    .venv/bin/python eval/bench_watch.py --work runs/bench-watch --repeat 5 --burst 1000 \
        --json runs/bench_watch.json

Latency: each change (a file created, changed in place, saved atomically by writing aside and
renaming over, renamed, deleted) carries a word of its own; the time from the change to
search showing it (BM25 over the committed knowledge base, polled every 20 ms: the word found
in the new document id, or no longer found) is taken, --repeat times each. Burst: --burst new
files written as fast as this process can, then as many written evenly over --paced-seconds;
for each, the transactions that made them searchable (the watcher's reports that added
documents, and the knowledge base's FAISS generations).
The machine is shared with other jobs: the numbers are from one run, not a quiet machine.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def paragraphs(n: int) -> list[str]:
    out = []
    with gzip.open(ROOT / "corpora/squad-dev/articles.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            out += [p for p in json.loads(line)["text"].split("\n") if len(p) > 200]
            if len(out) >= n:
                break
    return out[:n]


class Watcher:
    """The `rag index --watch --json` process; its reports in a queue."""

    def __init__(self, folder: Path, kb: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rag", "index", str(folder), "--kb", str(kb), "--watch",
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.reports: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.reports.put(json.loads(line))
                                         for line in self.proc.stdout], daemon=True).start()

    def drain(self) -> list[dict]:
        out = []
        while not self.reports.empty():
            out.append(self.reports.get())
        return out

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # (SIGINT is ignored when run in the background)
        self.proc.wait(timeout=120)


def found(kb, word: str) -> list[str]:
    """The documents whose text holds ``word`` (BM25 over what is committed)."""
    kb.store.refresh()
    with kb.snapshot():
        return [h.doc_id for h in kb.fetch(kb.lexical_ids(word, 5))]


def until(condition, timeout: float = 120.0) -> float:
    """Seconds until ``condition()`` holds (polled every 20 ms)."""
    t0 = time.perf_counter()
    while not condition():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the change never showed in search")
        time.sleep(0.02)
    return time.perf_counter() - t0


def latencies(folder: Path, kb, texts: list[str], repeat: int) -> dict:
    out = {k: [] for k in ("created", "changed", "atomic_save", "renamed", "deleted")}
    for i in range(repeat):
        word = f"qzcreated{i}xk"
        new = folder / f"new-{i}.txt"
        new.write_text(f"{texts[i]} {word}")
        out["created"].append(until(lambda: found(kb, word) == [new.name]))
        word = f"qzchanged{i}xk"
        with open(folder / f"p-{i:04d}.txt", "a") as f:
            f.write(f" {word}")
        out["changed"].append(until(lambda: found(kb, word) == [f"p-{i:04d}.txt"]))
        word = f"qzsaved{i}xk"
        aside = folder / f".p-{i + 50:04d}.txt.tmp"
        aside.write_text(f"{texts[i + 50]} {word}")
        os.replace(aside, folder / f"p-{i + 50:04d}.txt")
        out["atomic_save"].append(until(lambda: found(kb, word) == [f"p-{i + 50:04d}.txt"]))
        word = f"qzcreated{i}xk"
        os.rename(new, folder / f"renamed-{i}.txt")
        out["renamed"].append(until(lambda: found(kb, word) == [f"renamed-{i}.txt"]))
        (folder / f"renamed-{i}.txt").unlink()
        out["deleted"].append(until(lambda: found(kb, word) == []))
        time.sleep(0.5)  # (apart: each change its own burst)
    return {k: {"median_s": round(statistics.median(v), 2), "max_s": round(max(v), 2),
                "all_s": [round(x, 2) for x in v]} for k, v in out.items()}


def burst(folder: Path, kb, watcher: Watcher, texts: list[str], n: int, name: str,
          seconds: float = 0.0) -> dict:
    """``n`` new files, written as fast as can be or evenly over ``seconds``."""
    time.sleep(2)
    watcher.drain()
    before = count(kb)
    generation = kb.store.generation
    t0 = time.perf_counter()
    for i in range(n):
        (folder / f"{name}-{i:04d}.txt").write_text(f"{texts[i % len(texts)]} qz{name}{i}xk")
        if seconds:
            time.sleep(max(0.0, t0 + seconds * (i + 1) / n - time.perf_counter()))
    written = time.perf_counter() - t0
    searchable = until(lambda: count(kb) == before + n, timeout=1800) + written
    time.sleep(3)  # (any late report)
    reports = [r for r in watcher.drain() if r["added"] or r["updated"] or r["removed"]]
    count(kb)
    return {"files": n, "written_in_s": round(written, 2),
            "all_searchable_after_s": round(searchable, 1), "transactions": len(reports),
            "added_per_transaction": [r["added"] for r in reports],
            "faiss_generations": kb.store.generation - generation}


def count(kb) -> int:
    kb.store.refresh()
    return kb.store.conn.execute("SELECT count(*) FROM documents").fetchone()[0]


def main() -> None:
    from knowledge import KnowledgeBase

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-watch")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--paced-seconds", type=float, default=10.0,
                    help="a second burst of as many files, written evenly over this long")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    folder, kb_dir = args.work / "docs", args.work / "kb"
    folder.mkdir(parents=True)
    texts = paragraphs(200)
    for i, text in enumerate(texts[:100]):
        (folder / f"p-{i:04d}.txt").write_text(text)
    watcher = Watcher(folder, kb_dir)
    first = watcher.reports.get(timeout=600)
    kb = KnowledgeBase.open(kb_dir)
    result = {"first_sync": {"documents": first["documents"],
                             "seconds": first["seconds"]["total"]},
              "latency": latencies(folder, kb, texts, args.repeat),
              "burst": burst(folder, kb, watcher, texts, args.burst, "burst"),
              "paced_burst": burst(folder, kb, watcher, texts, args.burst, "paced",
                                   args.paced_seconds),
              "machine": {"cpus": os.cpu_count(), "shared": "yes: other jobs ran meanwhile"}}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    watcher.stop()
    kb.close()


if __name__ == "__main__":
    main()
