"""The MCP server over stdio against the same calls in process: start time, and what the
protocol adds to `search` and `ask`.

    .venv/bin/python eval/bench_mcp.py --kb runs/kb-squad \
        --qaset eval/data/squad-dev-open.qa.jsonl.gz --questions 40 --json runs/bench_mcp.json

Start: `rag mcp --kb KB` spawned by the SDK's client (stdio), timed to the end of the
handshake, to the tool list, and to the first `search` answered (which waits for the models
to load), --starts times. Calls: with one server running and the same models loaded in this
process (the server's defaults: the project's reader, hybrid retrieval, its k), each
test-split question is searched (k=5) and asked both ways, in process (``Retriever.retrieve``,
``Pipeline.ask``) and through the server (``call_tool``), alternating which goes first; the
paired differences are reported; `list_documents` (one row: no model) shows what the
protocol and the engine's thread hop alone cost. Both run on the same (shared) machine in the
same run; --threads holds torch to N threads in both (on a loaded 2-core machine torch's two
threads wait on each other, and the noise buries the difference).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


THREADS: dict = {}  # (--threads: the environment that holds torch to N threads)


def params(kb: Path):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(command=sys.executable, cwd=str(ROOT), env=THREADS or None,
                                 args=["-m", "rag", "mcp", "--kb", str(kb)])


async def start_once(kb: Path, query: str) -> dict:
    """Seconds from spawn to the handshake, the tool list and the first search."""
    from mcp import Client

    t0 = time.perf_counter()
    async with Client(params(kb)) as client:
        up = time.perf_counter() - t0
        await client.list_tools()
        listed = time.perf_counter() - t0
        result = await client.call_tool("search", {"query": query, "k": 5})
        assert not result.is_error, result
        first = time.perf_counter() - t0
    return {"handshake_s": up, "tools_s": listed, "first_search_s": first}


async def calls(kb: Path, questions: list[str]) -> dict:
    """Paired timings (ms) of each question searched and asked in process and over stdio."""
    from mcp import Client

    from knowledge import KnowledgeBase
    from rag.pipeline import Pipeline
    from rag.readers import DEFAULT_READER, load_reader
    from rag.retrieval import Retriever

    kb_open = KnowledgeBase.open(kb)
    reader = load_reader(str(DEFAULT_READER))
    pipeline = Pipeline(Retriever(kb_open), reader, k=reader.config.k or 5)
    from rag.serve.documents import list_documents

    out = {"search_local": [], "search_mcp": [], "ask_local": [], "ask_mcp": [],
           "list_local": [], "list_mcp": [], "same_answer": 0, "same_passages": 0}
    async with Client(params(kb)) as client:
        await client.call_tool("search", {"query": questions[0], "k": 5})  # (models loaded)
        pipeline.ask(questions[0])
        for i, q in enumerate(questions):
            async def local_search():
                return [h.chunk_id for h in pipeline.retriever.retrieve(q, k=5)]

            async def mcp_search():
                r = await client.call_tool("search", {"query": q, "k": 5})
                return [p["chunk_id"] for p in r.structured_content["passages"]]

            async def local_ask():
                return pipeline.ask(q).answer

            async def mcp_ask():
                return (await client.call_tool("ask", {"question": q})).structured_content[
                    "answer"]

            async def local_list():
                return list_documents(kb_open, i, 1, None)["documents"][0]["doc_id"]

            async def mcp_list():
                r = await client.call_tool("list_documents", {"offset": i, "limit": 1})
                return r.structured_content["documents"][0]["doc_id"]

            got = {}
            pairs = [[("search_local", local_search), ("search_mcp", mcp_search)],
                     [("ask_local", local_ask), ("ask_mcp", mcp_ask)],
                     [("list_local", local_list), ("list_mcp", mcp_list)]]
            for name, fn in [step for pair in pairs for step in pair[::1 - 2 * (i % 2)]]:
                t = time.perf_counter()
                got[name] = await fn()
                out[name].append((time.perf_counter() - t) * 1000)
            out["same_passages"] += got["search_local"] == got["search_mcp"]
            out["same_answer"] += got["ask_local"] == got["ask_mcp"]
    kb_open.close()
    return out


def summary(times: dict, starts: list[dict]) -> dict:
    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    out = {"questions": len(times["search_local"]),
           "same_passages": times["same_passages"], "same_answer": times["same_answer"]}
    for call in ("search", "ask", "list"):
        local, mcp = times[f"{call}_local"], times[f"{call}_mcp"]
        diffs = [m - loc for m, loc in zip(mcp, local)]
        out[call] = {"local_p50_ms": round(statistics.median(local), 1),
                     "mcp_p50_ms": round(statistics.median(mcp), 1),
                     "local_p90_ms": round(pct(local, 0.9), 1),
                     "mcp_p90_ms": round(pct(mcp, 0.9), 1),
                     "added_p50_ms": round(statistics.median(diffs), 1),
                     "added_p90_ms": round(pct(diffs, 0.9), 1)}
    for key in starts[0]:
        out[key] = {"median": round(statistics.median(s[key] for s in starts), 2),
                    "max": round(max(s[key] for s in starts), 2)}
    return out


def main() -> None:
    import anyio

    from rag.evaluation.qa import load_qaset, sample

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True, type=Path)
    ap.add_argument("--qaset", default=str(ROOT / "eval/data/squad-dev-open.qa.jsonl.gz"))
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads, here and in the server (default: torch's own)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        THREADS.update({"OMP_NUM_THREADS": str(args.threads)})
    questions = [q.question for q in sample(load_qaset(args.qaset, "test"), args.questions, 0)]
    starts = [anyio.run(start_once, args.kb, questions[0]) for _ in range(args.starts)]
    times = anyio.run(calls, args.kb, questions)
    result = {"summary": summary(times, starts), "starts": starts, "threads": args.threads,
              "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version(),
                          "shared": "yes: other jobs ran meanwhile"}, "raw_ms": times}
    print(json.dumps(result["summary"], indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
