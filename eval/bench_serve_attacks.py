"""What the attacks of issue 24 cost a `rag serve` process with the default limits, measured.

    .venv/bin/python eval/bench_serve_attacks.py --json runs/bench_serve_attacks.json

One `rag serve` (the packaged embedder and reader, loopback, no key, defaults: 50 MB per
file, 20 files per upload, 2-4 parse workers of 1024 MB and 120 s, 200 connections, 10 s
for headers) on a new knowledge base; its RSS (and its parse workers') sampled every 20 ms:

- one upload of 20 files of 49 MB (random bytes named .txt: read whole, then refused), and
  two such uploads at once: RSS before, at peak and 5 s after; peak disk under uploads/;
- each bomb (a 600 MB .jsonl.gz, 100 MB of newlines gzipped, a DOCX whose document.xml is
  300 MB): RSS rise and how long the refusal took;
- a 900 MB upload against the 50 MB limit, from a raw socket: the time from the body
  crossing the limit to the 413, the bytes the server took;
- a 13 KB PDF whose 50 pages share one 2 MB content stream, then a small upload: how long
  the small one takes to land while the PDF is parsed;
- 1,000 connections holding unfinished headers: how many the server closes, how soon, and
  what a client gets meanwhile and after.

--index also times `rag index` on the bundled corpus and on 2,000 small files with this
tree and with the tree at --base (git archive), alternating, in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import hostile_uploads as H  # noqa: E402

MB = 2**20


class Sampler:
    """The RSS of a process and of its children (the parse workers), every 20 ms."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.rows: list[tuple[float, float, float]] = []  # (t, server MB, workers MB)
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                own = self.proc.memory_info().rss / MB
                kids = sum(c.memory_info().rss for c in self.proc.children(recursive=True)) / MB
            except psutil.Error:
                kids = 0.0
            self.rows.append((time.monotonic(), own, kids))
            time.sleep(0.02)

    def now(self) -> float:
        return self.proc.memory_info().rss / MB

    def peak(self, since: float) -> tuple[float, float]:
        rows = [r for r in self.rows if r[0] >= since]
        return max(r[1] for r in rows), max(r[2] for r in rows)

    def close(self) -> None:
        self._stop.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(kb: Path, log: Path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--kb", str(kb), "--port",
                             str(port)], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url, port
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit("rag serve did not start: " + log.read_text())
        time.sleep(0.5)


def settle(sampler: Sampler, seconds: float = 5.0) -> float:
    time.sleep(seconds)
    return sampler.now()


def disk_peak(folder: Path, stop: threading.Event, out: list) -> None:
    peak = 0
    while not stop.is_set():
        size = 0
        for p in folder.rglob("*"):
            try:
                size += p.stat().st_size if p.is_file() else 0
            except OSError:
                pass
        peak = max(peak, size)
        time.sleep(0.1)
    out.append(peak / MB)


def big_files(url: str, sampler: Sampler, uploads: Path, parallel: int) -> dict:
    """``parallel`` uploads at once, each of 20 files of 49 MB of random bytes."""
    blob = os.urandom(49 * MB)
    files = [("files", (f"f{i}.txt", blob)) for i in range(20)]
    base = settle(sampler, 2)
    t0 = time.monotonic()
    stop, disk = threading.Event(), []
    threading.Thread(target=disk_peak, args=(uploads, stop, disk), daemon=True).start()
    codes = []

    def one():
        codes.append(httpx.post(f"{url}/v1/documents", files=files, timeout=600).status_code)

    threads = [threading.Thread(target=one) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    stop.set()
    peak, workers = sampler.peak(t0)
    after = settle(sampler)
    time.sleep(0.2)
    return {"uploads": parallel, "files": 20 * parallel, "mb_each": 49, "status": codes,
            "seconds": round(took, 1), "rss_before_mb": round(base), "rss_peak_mb": round(peak),
            "rss_rise_mb": round(peak - base), "rss_after_mb": round(after),
            "workers_peak_mb": round(workers), "disk_peak_mb": round(disk[0]) if disk else None}


def bomb(url: str, sampler: Sampler, name: str, data: bytes) -> dict:
    base = settle(sampler, 2)
    t0 = time.monotonic()
    r = httpx.post(f"{url}/v1/documents", files=[("files", (name, data))], timeout=600)
    took = time.monotonic() - t0
    peak, workers = sampler.peak(t0)
    reason = (r.json().get("error", {}).get("skipped") or [{}])[0].get("reason")
    return {"file": name, "kb": round(len(data) / 1024), "status": r.status_code,
            "reason": reason, "seconds": round(took, 2), "rss_rise_mb": round(peak - base),
            "workers_peak_mb": round(workers)}


def over_limit(port: int, sampler: Sampler, total_mb: int = 900, limit_mb: int = 50) -> dict:
    """A raw-socket upload of one ``total_mb`` file: when the reply came, after the body
    crossed the limit, and how much the server took."""
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"huge.txt\"\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + total_mb * MB + len(tail)
    base = sampler.now()
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
              f"multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\r\n"
              .encode() + head)
    piece, sent, crossed, reply = b"x" * 65536, 0, None, b""
    s.setblocking(False)
    while sent < total_mb * MB:
        readable, writable, _ = select.select([s], [s], [], 5)
        if readable:
            try:
                reply = s.recv(65536)
            except OSError:
                reply = b""
            break
        if writable:
            try:
                sent += s.send(piece)
            except (BlockingIOError, OSError):
                continue
            if crossed is None and sent > limit_mb * MB:
                crossed = time.monotonic()
    answered = time.monotonic()
    s.close()
    return {"file_mb": total_mb, "limit_mb": limit_mb, "reply": reply[:12].decode(errors="replace"),
            "sent_mb": round(sent / MB, 1),
            "refused_after_crossing_s": round(answered - crossed, 3) if crossed else None,
            "seconds": round(answered - t0, 2), "rss_rise_mb": round(sampler.peak(t0)[0] - base)}


def slow_pdf(url: str) -> dict:
    done = {}

    def hostile():
        t = time.monotonic()
        r = httpx.post(f"{url}/v1/documents", files=[("files", ("slow.pdf",
                                                                H.shared_stream_pdf()))],
                       timeout=900)
        done.update(status=r.status_code, seconds=round(time.monotonic() - t, 1),
                    reason=(r.json().get("error", {}).get("skipped") or [{}])[0].get("reason"))

    t = threading.Thread(target=hostile)
    t.start()
    time.sleep(2.0)  # (the PDF is being parsed)
    t0 = time.monotonic()
    small = httpx.post(f"{url}/v1/documents", timeout=900, files=[
        ("files", ("small.txt", b"Sea otters hold hands while they sleep."))])
    landed = time.monotonic() - t0
    pdf_still_parsing = t.is_alive()
    t.join()
    return {"small_status": small.status_code, "small_seconds": round(landed, 2),
            "pdf_still_parsing_then": pdf_still_parsing, "pdf": done}


def slowloris(url: str, port: int, n: int = 1000) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 200)), hard))
    socks, t0 = [], time.monotonic()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
    opened = time.monotonic() - t0
    time.sleep(1.0)
    during = httpx.get(f"{url}/healthz", timeout=30)
    replies, closed_at = {}, []
    pending = list(socks)
    deadline = time.monotonic() + 70
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], 1)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            code = data[9:12].decode(errors="replace") if data else "closed"
            replies[code] = replies.get(code, 0) + 1
            closed_at.append(time.monotonic() - t0)
            pending.remove(s)
            s.close()
    for s in pending:
        s.close()
    after = httpx.get(f"{url}/healthz", timeout=30)
    return {"connections": n, "opened_s": round(opened, 2), "replies": replies,
            "still_open_after_70s": len(pending),
            "all_closed_by_s": round(max(closed_at), 1) if closed_at else None,
            "healthz_during": during.status_code, "healthz_after": after.status_code}


def index_runs(base: str, runs: int) -> dict:
    """`rag index` of the bundled corpus and of 2,000 small files, this tree against the
    tree at ``base``, alternating."""
    work = Path(tempfile.mkdtemp(prefix="bench-index-", dir=ROOT / "runs"))
    old = work / "base"
    old.mkdir()
    archive = subprocess.run(["git", "archive", base], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    small = work / "small"
    small.mkdir()
    import gzip

    n = 0
    for line in gzip.open(ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz", "rt"):
        for para in json.loads(line)["text"].split("\n\n"):
            if para.strip() and n < 2000:
                (small / f"p{n:04d}.txt").write_text(para)
                n += 1
    out = {"base": base, "small_files": n, "runs": []}
    for i in range(runs):
        for tree in ("base", "this"):
            for corpus, path in (("bundled", ROOT / "corpora" / "squad-dev"), ("small", small)):
                kb = work / f"kb-{tree}-{corpus}-{i}"
                env = {**os.environ, "PYTHONPATH": str(old if tree == "base" else ROOT)}
                t = time.monotonic()
                r = subprocess.run([sys.executable, "-m", "rag", "index", str(path), "--kb",
                                    str(kb), "--json"], capture_output=True, text=True,
                                   env=env, cwd=old if tree == "base" else ROOT)
                took = time.monotonic() - t
                report = json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr[-500:]}
                out["runs"].append({"tree": tree, "corpus": corpus, "round": i,
                                    "wall_s": round(took, 1), "seconds": report.get("seconds"),
                                    "documents": report.get("documents"),
                                    "chunks": report.get("chunks")})
                print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
                shutil.rmtree(kb, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return out


def attacks(skip: list[str]) -> dict:
    results = {}
    base = Path(tempfile.mkdtemp(prefix="bench-attacks-", dir=ROOT / "runs"))
    proc, url, port = start_serve(base / "kb", base / "serve.log")
    sampler = Sampler(proc.pid)
    try:
        httpx.post(f"{url}/v1/documents", timeout=300, files=[  # (the embedder loaded)
            ("files", ("warm.txt", b"A first document, so that the models are loaded."))])
        results["rss_idle_mb"] = round(settle(sampler, 3))
        if "big" not in skip:
            results["big_upload"] = big_files(url, sampler, base / "kb" / "uploads", 1)
            results["two_big_uploads"] = big_files(url, sampler, base / "kb" / "uploads", 2)
        if "bombs" not in skip:
            results["bombs"] = [bomb(url, sampler, n, build()) for n, build in (
                ("rows.jsonl.gz", H.jsonl_gz_bomb), ("newlines.jsonl.gz", H.newlines_gz_bomb),
                ("report.docx", H.docx_bomb))]
        if "over" not in skip:
            results["over_limit"] = over_limit(port, sampler)
        if "pdf" not in skip:
            results["slow_pdf"] = slow_pdf(url)
        if "slowloris" not in skip:
            results["slowloris"] = slowloris(url, port)
        results["rss_end_mb"] = round(settle(sampler, 2))
    finally:
        sampler.close()
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--only-index", action="store_true", help="no attacks: --index alone")
    ap.add_argument("--skip", nargs="*", default=[],
                    choices=["big", "bombs", "over", "pdf", "slowloris"])
    ap.add_argument("--index", action="store_true", help="also time rag index, before/after")
    ap.add_argument("--base", default="1eef991", help="the tree to compare rag index with")
    ap.add_argument("--index-runs", type=int, default=2)
    args = ap.parse_args()
    results = {"machine": f"{platform.processor() or platform.machine()}, "
                          f"{os.cpu_count()} CPUs, shared", "python": platform.python_version()}
    (ROOT / "runs").mkdir(exist_ok=True)
    if not args.only_index:
        results.update(attacks(args.skip))
    if args.index or args.only_index:
        results["rag_index"] = index_runs(args.base, args.index_runs)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
