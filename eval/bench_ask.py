"""Speed and memory of `rag ask` with a reader, per stage, for several k.

    .venv/bin/python eval/bench_ask.py --kb runs/kb-squad --reader rag/models/reader \
        --qaset eval/data/squad-dev-open.qa.jsonl.gz --n 30 --json

Cold start: a fresh `rag ask` process answering one question (process start and exit
included), timed from outside; the median of --cold-runs. Warm: the same Pipeline answering N test questions one at a time (as an
interactive user would), per stage: embed query, search, encode, decode (+ attribution);
p50 / p90 per k. Peak RSS: of the cold `rag ask` process (default k), and of this process after the largest k.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cold_start(kb: str, reader: str, question: str) -> float:
    t = time.perf_counter()
    subprocess.run([str(ROOT / ".venv" / "bin" / "rag"), "ask", question, "--kb", kb,
                    "--reader", reader, "--json"], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--reader", required=True)
    ap.add_argument("--qaset", required=True)
    ap.add_argument("--n", type=int, default=30, help="questions per k")
    ap.add_argument("--ks", default="5,20,100")
    ap.add_argument("--cold-runs", type=int, default=5,
                    help="fresh `rag ask` processes timed; the median is reported")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from knowledge.kb import KnowledgeBase
    from rag.pipeline import Pipeline
    from rag.evaluation.qa import load_qaset, sample
    from rag.readers import load_reader
    from rag.retrieval import Retriever

    questions = [q.question for q in sample(load_qaset(args.qaset, "test"), args.n, seed=1)]
    cold = [cold_start(args.kb, args.reader, questions[0]) for _ in range(args.cold_runs)]
    result = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{__import__('os').cpu_count()} cores",
              "cold_start_s": round(float(np.median(cold)), 2),
              "cold_start_all_s": [round(c, 2) for c in cold],
              # the `rag ask` processes above: the reader's default k, models loaded once
              "ask_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                                       / 1024), "per_k": {}}
    kb = KnowledgeBase.open(args.kb)
    reader = load_reader(args.reader)
    for k in [int(x) for x in args.ks.split(",")]:
        pipe = Pipeline(Retriever(kb), reader, k=k)
        pipe.ask(questions[0])  # warm up this k's shapes
        rows = [pipe.ask(q).timings for q in questions]
        stages = {}
        for key in rows[0]:
            vals = [r.get(key, 0.0) for r in rows]
            stages[key] = {"p50": round(float(np.percentile(vals, 50)), 1),
                           "p90": round(float(np.percentile(vals, 90)), 1)}
        total = [r["retrieval_ms"] + r.get("reader_ms", 0.0) for r in rows]
        stages["total_ms"] = {"p50": round(float(np.percentile(total, 50)), 1),
                              "p90": round(float(np.percentile(total, 90)), 1)}
        result["per_k"][k] = stages
    result["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"cold start (process + first answer, median): {result['cold_start_s']} s; "
          f"peak RSS of that `rag ask` {result['ask_peak_rss_mb']} MB (of this process, up to "
          f"k={args.ks.split(',')[-1]}: {result['bench_peak_rss_mb']} MB)")
    for k, stages in result["per_k"].items():
        print(f"k={k}: " + ", ".join(f"{s} p50 {v['p50']} ms" for s, v in stages.items()))


if __name__ == "__main__":
    main()
