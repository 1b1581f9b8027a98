"""Cold start of a one-shot `rag ask`: the whole process against ``python -c "import torch,
transformers"`` on the same machine, and each part's share of it.

    .venv/bin/python eval/bench_coldstart.py --kb runs/kb [--runs 7] [--json]

(build the KB first: ``rag index corpora/squad-dev/articles.jsonl.gz --kb runs/kb``.)

Two measurements, each in fresh processes started one after another:

- **whole process**: ``rag ask QUESTION --kb KB`` (A) and the yardstick (B) run in turn,
  A B A B ..., after one warm-up each; wall time from start to exit, CPU time and peak RSS
  of each child (``os.wait4``); the ratio A/B is taken pair by pair, so load that drifts
  during the run moves both sides of a pair alike. Medians are reported.
- **parts**: the same steps as `rag ask` in a fresh process (this script with ``--parts``),
  timed one by one: interpreter start, imports, opening the KB, the embedder's weights check
  and load, the reader's load, retrieval, reading, printing, and interpreter exit.

``--wait-policies``: instead, the reader's encoding time of 3 passages for 6 questions in one
process, under OpenMP's ACTIVE (spinning) and PASSIVE wait policies, 1 and 2 torch threads
(why `rag ask` sets OMP_WAIT_POLICY=PASSIVE).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Who was the first European to travel the Amazon River?"
YARDSTICK = "import torch, transformers"


def rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.exists() else [sys.executable, "-m", "rag"]


def run(cmd: list[str]) -> dict:
    """Wall seconds, CPU seconds and peak MiB of one child, and its output."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_mib": usage.ru_maxrss / 1024, "out": out.decode(), "end": time.time()}


def whole(kb: str, runs: int) -> dict:
    ask = rag_command() + ["ask", QUESTION, "--kb", kb]
    yard = [sys.executable, "-c", YARDSTICK]
    run(ask), run(yard)  # (warm-up: page cache, bytecode)
    pairs = [(run(ask), run(yard)) for _ in range(runs)]
    med = {f"{side}_{key}": statistics.median(p[i][key] for p in pairs)
           for i, side in enumerate(("ask", "yardstick"))
           for key in ("wall_s", "cpu_s", "peak_mib")}
    for key in ("wall_s", "cpu_s"):
        ratios = [a[key] / b[key] for a, b in pairs]
        med[f"ratio_{key}"] = statistics.median(ratios)
        med[f"ratio_{key}_range"] = [min(ratios), max(ratios)]
    med["answer"] = pairs[-1][0]["out"].splitlines()[0]
    return med


def parts(kb: str, runs: int) -> dict:
    """Per part, the median over ``runs`` fresh processes of its wall and CPU milliseconds."""
    rows = []
    for _ in range(runs + 1):
        start = time.time()
        got = run([sys.executable, __file__, "--kb", kb, "--parts"])
        marks = json.loads(got["out"].splitlines()[-1])
        first, last = marks.pop("_started"), marks.pop("_ended")
        marks = {"interpreter start": [(first - start) * 1000, None], **marks,
                 "interpreter exit": [(got["end"] - last) * 1000, None]}
        rows.append(marks)
    rows = rows[1:]  # (the first warmed the page cache)
    return {name: {"wall_ms": statistics.median(r[name][0] for r in rows),
                   "cpu_ms": None if rows[0][name][1] is None
                   else statistics.median(r[name][1] for r in rows)} for name in rows[0]}


def timed_parts(kb: str) -> None:
    """`rag ask`'s one-shot path (rag/commands.py cmd_ask with rag/cli.py main's settings),
    each part timed; prints {part: [wall ms, cpu ms]} as the last line."""
    started = time.time()
    import gc

    gc.set_threshold(100_000, 50, 1000)  # (as rag/cli.py main for ask)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    marks, last = {}, [time.perf_counter(), time.process_time()]

    def mark(name: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        marks[name] = [(now[0] - last[0]) * 1000, (now[1] - last[1]) * 1000]
        last[:] = now

    from rag import cli, commands  # noqa: F401
    from rag.pipeline import Pipeline
    from rag.retrieval import Retriever
    mark("import rag")
    import numpy  # noqa: F401
    import torch  # noqa: F401
    mark("import torch")
    import faiss  # noqa: F401
    import safetensors  # noqa: F401
    import tokenizers  # noqa: F401

    import knowledge.plain_encoder  # noqa: F401
    import rag.readers.span_encoder  # noqa: F401
    from knowledge.embedding import Embedder
    from knowledge.kb import KnowledgeBase
    from knowledge.store import Store
    mark("import faiss, tokenizers, models")
    store = Store.open(Path(kb))
    store.index  # noqa: B018  (the FAISS file)
    mark("open KB")
    embedder = Embedder.load(store.manifest["embedder"]["name"])
    mark("embedder load")
    with KnowledgeBase(store, embedder) as base:  # (checks the weights' hash)
        mark("embedder weights check")
        reader = commands.open_reader(cli.build_parser().parse_args(["ask", QUESTION]))
        mark("reader load")
        pipeline = Pipeline(Retriever(base), reader, k=reader.config.k)
        mark("share weights")
        answer = pipeline.ask(QUESTION)
        reading = answer.timings["reader_ms"]
        mark("retrieval + reading")
        marks["retrieval"] = [answer.timings["retrieval_ms"], None]
        marks["reading"] = [reading, None]
        commands.show_answer(answer, False)
    mark("print, close")
    gc.freeze()
    print(json.dumps({"_started": started, **marks, "_ended": time.time()}), flush=True)


def reading_times(kb: str, threads: int) -> None:
    """Prints the reader's encode_ms for 6 questions asked in this process."""
    import torch

    from knowledge.kb import KnowledgeBase
    from rag.pipeline import Pipeline
    from rag.readers import DEFAULT_READER, load_reader
    from rag.retrieval import Retriever

    torch.set_num_threads(threads)
    questions = [QUESTION, "What is the capital of France?", "When did the Normans invade?"]
    with KnowledgeBase.open(kb) as base:
        reader = load_reader(str(DEFAULT_READER))
        pipeline = Pipeline(Retriever(base), reader, k=3)
        pipeline.ask(questions[0])  # (warm-up)
        print(json.dumps([round(pipeline.ask(q).timings["encode_ms"])
                          for q in questions * 2]))


def wait_policies(kb: str) -> dict:
    out = {}
    for policy in ("ACTIVE", "PASSIVE"):
        for threads in (1, 2):
            got = subprocess.run([sys.executable, __file__, "--kb", kb, "--reading-threads",
                                  str(threads)], cwd=ROOT, capture_output=True, text=True,
                                 env={**os.environ, "OMP_WAIT_POLICY": policy}, check=True)
            out[f"{policy}, {threads} threads"] = json.loads(got.stdout.splitlines()[-1])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kb", default="runs/kb", help="a KB of the bundled corpus")
    p.add_argument("--runs", type=int, default=7, help="processes per measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--wait-policies", action="store_true",
                   help="reading time under OpenMP's wait policies instead")
    p.add_argument("--parts", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--reading-threads", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.parts:
        return timed_parts(args.kb)
    if args.reading_threads:
        return reading_times(args.kb, args.reading_threads)
    if args.wait_policies:
        print(json.dumps({"machine": f"load {os.getloadavg()[0]:.1f}",
                          "encode_ms": wait_policies(args.kb)}, indent=1))
        return
    result = {"machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start",
              "whole": whole(args.kb, args.runs), "parts": parts(args.kb, args.runs)}
    result["machine"] += f", {os.getloadavg()[0]:.1f} at end"
    if args.json:
        print(json.dumps(result, indent=2))
        return
    w = result["whole"]
    print(f"{result['machine']}; medians of {args.runs} pairs")
    print(f"rag ask:   wall {w['ask_wall_s']:.2f} s  cpu {w['ask_cpu_s']:.2f} s  peak "
          f"{w['ask_peak_mib']:.0f} MiB  ({w['answer']})")
    print(f"yardstick: wall {w['yardstick_wall_s']:.2f} s  cpu {w['yardstick_cpu_s']:.2f} s  "
          f"peak {w['yardstick_peak_mib']:.0f} MiB  (python -c '{YARDSTICK}')")
    print(f"ratio: wall {w['ratio_wall_s']:.2f} ({w['ratio_wall_s_range'][0]:.2f}-"
          f"{w['ratio_wall_s_range'][1]:.2f}), cpu {w['ratio_cpu_s']:.2f}")
    total = sum(v["wall_ms"] for k, v in result["parts"].items()
                if k not in ("retrieval", "reading"))
    print("\n| part | wall ms | share | cpu ms |\n|---|---|---|---|")
    for name, v in result["parts"].items():
        cpu = "" if v["cpu_ms"] is None else f"{v['cpu_ms']:.0f}"
        inner = name in ("retrieval", "reading")
        share = f"({100 * v['wall_ms'] / total:.0f} %)" if inner else \
            f"{100 * v['wall_ms'] / total:.0f} %"
        print(f"| {'  of which ' if inner else ''}{name} | {v['wall_ms']:.0f} | {share} | {cpu} |")
    print(f"| total | {total:.0f} | 100 % | |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
