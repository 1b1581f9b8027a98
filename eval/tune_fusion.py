"""Tune hybrid retrieval's fusion (dense weight and RRF constant) on the TRAIN splits.

Each question's dense and BM25 candidate lists are computed once; every (dense weight, rrf k)
pair of the grid then re-fuses them, and is scored by answer-recall@5 (an answer string in
the top 5 passages: what the reader needs) averaged over the QA sets, gold-document
recall@5 breaking ties. Test splits are never read.

    .venv/bin/python eval/tune_fusion.py \\
        eval/data/squad-dev-open.qa.jsonl.gz runs/kb-squad \\
        eval/data/nq-para-open.qa.jsonl.gz runs/kb-nq --limit 1000 --json runs/fusion.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.kb import KnowledgeBase  # noqa: E402
from rag.evaluation.metrics import answer_in_text, first_gold_rank  # noqa: E402
from rag.evaluation.qa import load_qaset  # noqa: E402
from rag.retrieval import rrf  # noqa: E402

WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
RRF_KS = (1, 2, 3, 5, 10, 20, 30, 60, 100)
CANDIDATES = 50  # per list, as Retriever uses


def candidates(qaset: str, kb_dir: str, limit: int, seed: int):
    """Per sampled train question: (answers, gold ids, dense list, lexical list), plus the
    chunk id -> (doc id, text) table the scoring needs."""
    questions = load_qaset(qaset, "train")
    questions = random.Random(seed).sample(questions, min(limit, len(questions)))
    with KnowledgeBase.open(kb_dir) as kb:
        rows = kb.store.conn.execute(
            "SELECT c.id, d.doc_id, c.text FROM chunks c JOIN documents d "
            "ON c.document_id = d.id").fetchall()
        chunks = {cid: (doc, text) for cid, doc, text in rows}
        vecs = kb.embedder.encode_queries([q.question for q in questions])
        dense = kb.dense_ids(vecs, CANDIDATES)
        lexical = [kb.lexical_ids(q.question, CANDIDATES) for q in questions]
    return [(list(q.answers), list(q.gold_ids), d, lx)
            for q, d, lx in zip(questions, dense, lexical)], chunks


def score(items, chunks, weight: float, rrf_k: int, k: int = 5) -> dict:
    answer_hits = doc_hits = 0
    for answers, gold, dense, lexical in items:
        top = [cid for _, cid in rrf([dense, lexical], rrf_k, (weight, 1.0))[:k]]
        answer_hits += any(answer_in_text(answers, chunks[c][1]) for c in top)
        rank = first_gold_rank([chunks[c][0] for c in top], gold)
        doc_hits += rank is not None
    n = len(items)
    return {"answer_recall@5": 100 * answer_hits / n, "recall@5": 100 * doc_hits / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="+", metavar="QASET KB")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the whole grid here")
    args = ap.parse_args()
    if len(args.pairs) % 2:
        ap.error("give QASET KB pairs")
    sets = {}
    for qaset, kb in zip(args.pairs[::2], args.pairs[1::2]):
        print(f"candidates for {qaset} ...", file=sys.stderr)
        sets[Path(qaset).name.split(".")[0]] = candidates(qaset, kb, args.limit, args.seed)
    grid = []
    for weight in WEIGHTS:
        for rrf_k in RRF_KS:
            per = {name: score(items, chunks, weight, rrf_k) for name, (items, chunks) in sets.items()}
            mean = {m: sum(p[m] for p in per.values()) / len(per)
                    for m in ("answer_recall@5", "recall@5")}
            grid.append({"dense_weight": weight, "rrf_k": rrf_k, "mean": mean, **per})
    grid.sort(key=lambda g: (-g["mean"]["answer_recall@5"], -g["mean"]["recall@5"]))
    names = list(sets)
    print("dense_weight rrf_k  mean_ans@5  " + "  ".join(f"{n}_ans@5 {n}_doc@5" for n in names))
    for g in grid:
        cells = "  ".join(f"{g[n]['answer_recall@5']:6.1f} {g[n]['recall@5']:6.1f}" for n in names)
        print(f"{g['dense_weight']:12} {g['rrf_k']:5}  {g['mean']['answer_recall@5']:10.2f}  {cells}")
    if args.json:
        args.json.write_text(json.dumps({"limit": args.limit, "seed": args.seed, "split": "train",
                                         "grid": grid}, indent=1) + "\n")


if __name__ == "__main__":
    main()
