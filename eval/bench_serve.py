"""Load test of `rag serve` on loopback: throughput and latency under 1, 8 and 32 concurrent
clients, with micro-batching and one question at a time, then under writes.

    .venv/bin/python eval/bench_serve.py --kb runs/kb-squad \
        --qaset eval/data/squad-dev-open.qa.jsonl.gz --seconds 60 --json runs/bench_serve.json

Each client (asyncio + httpx) asks test-split questions back to back for --seconds. Two
`rag serve` processes over a copy of the same knowledge base, each measured in turn:
`batched` (the defaults: a 2 ms window, up to 8 questions per reader call) and `single`
(`--max-batch 1 --batch-window-ms 0`). Then the write phase: 8 clients asking the batched
server while another uploads and deletes documents; every answer given then must cite only
text of a committed document (of the KB at start, or an upload that had landed), and the KB
must verify clean at the end. Reported: answers/s, p50/p95/p99 latency, errors, peak RSS of
the server process, and the batched/single throughput ratio at each concurrency.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `rag serve` process and a thread sampling its RSS."""

    def __init__(self, kb: Path, *flags: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "rag"), "serve", "--kb",
                                      str(kb), "--port", str(self.port), *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("rag serve did not start: " + self.proc.stdout.read().decode())
            time.sleep(0.5)
        self.peak = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self):
        p = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, p.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.2)

    def stop(self):
        self._stop.set()
        self.proc.terminate()
        self.proc.wait(timeout=60)


async def load(url: str, questions: list[str], clients: int, seconds: float,
               check=None) -> dict:
    """``clients`` concurrent askers for ``seconds``; latency per answer."""
    latencies, errors, answers = [], [], 0
    stop_at = time.perf_counter() + seconds
    rng = random.Random(clients)

    async def client(http: httpx.AsyncClient):
        nonlocal answers
        while time.perf_counter() < stop_at:
            q = rng.choice(questions)
            t0 = time.perf_counter()
            try:
                r = await http.post(url + "/v1/ask", json={"question": q}, timeout=120)
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}")
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                errors.append(f"HTTP {r.status_code}: {r.text[:100]}")
                continue
            answers += 1
            if check is not None:
                check(r.json())

    t0 = time.perf_counter()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    wall = time.perf_counter() - t0
    ms = np.array(latencies) if latencies else np.zeros(1)
    return {"clients": clients, "seconds": round(wall, 1), "answers": answers,
            "answers_per_s": round(answers / wall, 2), "errors": len(errors),
            "error_examples": errors[:3],
            **{f"p{q}_ms": round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)}}


def writes(url: str, stop: threading.Event, landed: dict, log: list) -> None:
    """Upload and delete documents until ``stop``; remember the text of every landed one."""
    i, deleted = 0, set()
    with httpx.Client(timeout=120) as http:
        while not stop.is_set():
            text = (f"Bulletin {i}. The maintenance window number {i} of the pumping station "
                    f"is on day {i % 28 + 1}, run by engineer Alex{i}.")
            r = http.post(url + "/v1/documents", files=[("files", (f"bulletin{i}.txt",
                                                                    text.encode()))])
            if r.status_code == 200:
                for d in r.json()["documents"]:
                    landed[d] = text
                log.append(("upload", r.status_code))
            else:
                log.append(("upload", r.status_code, r.text[:100]))
            alive = sorted(set(landed) - deleted)
            if i % 2 == 1 and alive:  # delete every other one again
                r = http.delete(url + "/v1/documents/" + alive[0])
                deleted.add(alive[0])
                log.append(("delete", r.status_code))
            i += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--qaset", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--json", default=None, help="write the results here too")
    ap.add_argument("--batched", default="", metavar="FLAGS",
                    help="rag serve flags of the batched server (default: its defaults), "
                         "e.g. '--batch-window-ms 0 --max-batch 8'")
    ap.add_argument("--no-writes", action="store_true", help="skip the write phase")
    ap.add_argument("--only-writes", action="store_true", help="only the write phase")
    args = ap.parse_args()
    from knowledge import KnowledgeBase
    from knowledge.loaders import row_id_of
    from rag.evaluation.qa import load_qaset

    questions = [q.question for q in load_qaset(args.qaset, "test")][:2000]
    levels = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    kb = work / "kb"
    shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("write.lock", "uploads"))
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": {}}
    try:
        for mode, flags in () if args.only_writes else (
                ("batched", args.batched.split()), ("single", ["--max-batch", "1",
                                                         "--batch-window-ms", "0"])):
            server = Server(kb, *flags)
            rows = []
            for n in levels:
                rows.append(asyncio.run(load(server.url, questions, n, args.seconds)))
                print(mode, rows[-1], file=sys.stderr, flush=True)
            stats = httpx.get(server.url + "/v1/stats").json()
            server.stop()
            results["runs"][mode] = {"levels": rows, "peak_rss_mb": round(server.peak / 2**20),
                                     "batches": stats["batches"]}
        results["ratio_batched_over_single"] = {} if args.only_writes else {
            str(a["clients"]): round(a["answers_per_s"] / max(b["answers_per_s"], 1e-9), 2)
            for a, b in zip(results["runs"]["batched"]["levels"],
                            results["runs"]["single"]["levels"])}

        results["batched_flags"] = args.batched or "(defaults)"
        if args.no_writes:
            raise StopIteration
        with KnowledgeBase.open(kb) as opened:
            committed = {d: t for d, t in opened.store.conn.execute(
                "SELECT doc_id, text FROM documents")}
        server = Server(kb, *args.batched.split())
        landed, log, stop, bad = {}, [], threading.Event(), []

        cited = []

        def check(answer):  # (checked after the run: an upload's reply may come later)
            cited.extend((c["doc_id"], c["start"], c["end"], c["text"])
                         for c in answer["citations"])

        writer = threading.Thread(target=writes, args=(server.url, stop, landed, log))
        writer.start()
        row = asyncio.run(load(server.url, questions + [
            f"When is maintenance window number {i}?" for i in range(200)], 8, args.seconds,
            check))
        stop.set()
        writer.join()
        server.stop()
        for doc_id, start, end, text in cited:
            # (a KB of format 1 is migrated by the first upload: rows "<file>#<id>")
            source = committed.get(doc_id) or committed.get(row_id_of(doc_id) or "") or \
                landed.get(doc_id)
            if source is None or source[start:end] != text:
                bad.append(doc_id)
        with KnowledgeBase.open(kb) as opened:
            problems = opened.store.verify()
        write_errors = [e for e in log if e[1] != 200]
        results["write_phase"] = {**row, "peak_rss_mb": round(server.peak / 2**20),
                                  "uploads": sum(e[0] == "upload" for e in log),
                                  "deletes": sum(e[0] == "delete" for e in log),
                                  "write_errors": len(write_errors),
                                  "answers_citing_uncommitted_text": len(bad),
                                  "verify": problems or "clean"}
        print("writes", results["write_phase"], file=sys.stderr)
    except StopIteration:
        pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = json.dumps(results, indent=2)
    print(out)
    if args.json:
        Path(args.json).write_text(out + "\n")


if __name__ == "__main__":
    main()
