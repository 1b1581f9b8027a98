"""What the reader's abstention does on the test splits (reporting only; the thresholds were
chosen on the dev split by `rag train ... --calibrate-only`).

    .venv/bin/python eval/abstention.py --reader rag/models/reader \
        --runs runs/eval-rag-models-reader-test-squad-k-3-n1000 \
               runs/eval-rag-models-reader-test-nq-k-3-n1000

1. Test questions (--n per set), by their best dense similarity to a knowledge base: their
   own (answerable), their own without the gold documents and any chunk holding an answer
   (missing document), the other set's (off-topic). The share of each answered at the
   reader's `abstain_similarity`.
2. Given `rag eval` runs made with abstention off (eval/eval_reader.sh; predictions.csv has
   each question's similarity): EM/F1 with and without the threshold, the share abstained,
   and how good the abstained answers would have been.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = [("eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad"),
        ("eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader", default="rag/models/reader")
    ap.add_argument("--runs", nargs="*", default=[], help="rag eval runs, abstention off")
    ap.add_argument("--n", type=int, default=1000, help="test questions per set")
    args = ap.parse_args()

    from rag.readers.fid import ReaderConfig
    from rag.train_reader import similarity_evidence

    floor = ReaderConfig.load(Path(args.reader)).abstain_similarity
    if floor is None:
        sys.exit(f"{args.reader} has no abstain_similarity")
    found = similarity_evidence(SETS, dev_fraction=0.0, dev_limit=args.n, seed=0, split="test")
    result = {"abstain_similarity": floor, "answered_%": {
        kind: round(100 * sum(s >= floor for s in found[kind]) / len(found[kind]), 1)
        for kind in ("answerable", "missing_document", "off_topic")},
        "n": {kind: len(found[kind]) for kind in ("answerable", "missing_document", "off_topic")}}
    for run in args.runs:
        rows = pd.read_csv(Path(run) / "predictions.csv")
        kept = rows["similarity"] >= floor
        result[Path(run).name] = {
            "n": len(rows),
            "em_f1_without": [round(100 * rows.exact_match.mean(), 1),
                              round(100 * rows.f1.mean(), 1)],
            "em_f1_with": [round(100 * (rows.exact_match * kept).mean(), 1),
                           round(100 * (rows.f1 * kept).mean(), 1)],
            "abstained_%": round(100 * (1 - kept.mean()), 1),
            "f1_of_abstained": round(100 * rows.f1[~kept].mean(), 1) if (~kept).any() else None,
            "answer_in_topk_of_abstained_%": round(100 * rows.answer_in_topk[~kept].mean(), 1)
            if (~kept).any() else None,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
