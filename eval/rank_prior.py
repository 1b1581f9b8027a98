"""How much a span's passage rank should weigh: answers by the prior per place down the list.

Re-scores `eval/unit_choice.py dump`s (the passages in retrieved order and the reader's
candidate spans of each question, read once) with each candidate's probability times
PRIOR ** (its passage's place), as `rag/pipeline.py` `by_rank` does, and shapes the answer as
`rag/forms.py` does: over technical documentation the excerpt (`forms.EXCERPT` words), scored
by `rag eval`'s containment ("right"); with ``--short`` (encyclopedia text) the short span,
scored by token F1. Prior 1 is the reader alone.

    .venv/bin/python eval/unit_choice.py dump --kb runs/kb-squad \
        --qaset eval/data/squad-dev-open.qa.jsonl.gz --split dev --out runs/units-squad-dev.jsonl
    .venv/bin/python eval/rank_prior.py --short runs/units-squad-dev.jsonl
    .venv/bin/python eval/rank_prior.py runs/lm/units-mt.jsonl runs/lm/units-dev.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from rag.evaluation.metrics import contains_answer, f1
    from rag.forms import EXCERPT, question_kind, shape

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--priors", nargs="+", type=float,
                    default=[1.0, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1])
    ap.add_argument("--short", action="store_true",
                    help="the short span and its F1 (encyclopedia text), not the excerpt")
    args = ap.parse_args()
    for dump in args.dumps:
        rows = [r for r in map(json.loads, open(dump)) if r["answers"]]
        cells = []
        for prior in args.priors:
            total = 0.0
            for r in rows:
                spans = sorted(((p * prior ** at, at, s, e) for p, at, s, e in r["candidates"]),
                               key=lambda c: -c[0])
                got = shape(r["passages"], spans, question_kind(r["question"]), args.short,
                            0 if args.short else EXCERPT)
                answer = "" if got is None else r["passages"][got[0]][got[1].start:got[1].end]
                total += (f1(answer, r["answers"]) if args.short
                          else got is not None and contains_answer(answer, r["answers"]))
            cells.append(f"{prior:g}: {100 * total / len(rows):.2f}")
        print(f"{Path(dump).name:24} n {len(rows):5}  {'F1' if args.short else 'right %'} by "
              f"prior  " + "  ".join(cells))


if __name__ == "__main__":
    main()
