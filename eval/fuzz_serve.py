"""Fuzz a real `rag serve` from its OpenAPI schema with schemathesis: every operation, valid
and invalid bodies, parameters and uploads; counts the requests and the server errors.

    .venv/bin/python eval/fuzz_serve.py --examples 100 --json runs/fuzz_serve.json

The server runs with the packaged embedder and reader over a knowledge base of the first
--articles articles of the bundled corpus (indexed here, once, into runs/fuzz-kb), with a
write key (so the uploads and deletes are fuzzed too, authorised). Reported: schemathesis's
generated test cases and failures, and the server's own count of requests and of responses
>= 500 per route (/v1/stats). tests/test_fuzz.py runs the same on a fake embedder with a
few examples per operation, in CI.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "fuzz-" + "k" * 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_kb(articles: int) -> Path:
    kb = ROOT / "runs" / f"fuzz-kb-{articles}"
    if not (kb / "kb.sqlite").exists():
        src = ROOT / "runs" / f"fuzz-src-{articles}"
        src.mkdir(parents=True, exist_ok=True)
        with gzip.open(ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz", "rt") as f:
            rows = [next(f) for _ in range(articles)]
        (src / "articles.jsonl").write_text("".join(rows))
        subprocess.run([sys.executable, "-m", "rag", "index", str(src), "--kb", str(kb)],
                       check=True, cwd=ROOT)
    return kb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=100, help="per operation (schemathesis -n)")
    ap.add_argument("--articles", type=int, default=5)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    kb = build_kb(args.articles)
    work = ROOT / "runs" / "fuzz-run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(kb, work / "kb")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--kb", str(work / "kb"),
                             "--port", str(port)], env={**os.environ, "RAG_API_KEY": KEY},
                            stdout=open(work / "serve.log", "w"), stderr=subprocess.STDOUT,
                            cwd=ROOT)
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit((work / "serve.log").read_text())
            time.sleep(0.5)
        t0 = time.monotonic()
        st = subprocess.run([str(Path(sys.executable).parent / "st"), "run",
                             f"{url}/openapi.json", "-H", f"Authorization: Bearer {KEY}",
                             "--checks", "not_a_server_error", "-n", str(args.examples),
                             "--seed", str(args.seed), "--no-color", "--report", "json",
                             "--report-json-path", str(work / "st.json"),
                             "--request-timeout", "120"],
                            capture_output=True, text=True, cwd=work)
        took = time.monotonic() - t0
        stats = httpx.get(f"{url}/v1/stats", headers={"X-API-Key": KEY}).json()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    report = json.loads((work / "st.json").read_text())
    routes = stats["requests"]
    results = {
        "command": " ".join(sys.argv), "machine": f"{os.cpu_count()} CPUs, shared",
        "python": platform.python_version(), "seconds": round(took),
        "schemathesis_exit": st.returncode, "test_cases": report["test_cases"],
        "failures": report["failures"], "server_requests": sum(r["requests"] for r in
                                                               routes.values()),
        "refused_before_routing": stats["refused"],
        "server_errors": {k: r["server_errors"] for k, r in routes.items()
                          if r["server_errors"]},
        "per_route": {k: r["requests"] for k, r in routes.items()}}
    text = json.dumps(results, indent=2)
    print(text)
    if st.returncode:
        print(st.stdout[-5000:], file=sys.stderr)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
