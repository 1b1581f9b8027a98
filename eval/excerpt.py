"""How long an excerpt to quote over technical documentation: right answers by length.

Scores the answer `rag/forms.py` shapes from an `eval/unit_choice.py dump` (the passages and
the reader's candidate spans of each question, read once), for each excerpt length given:
0 is the reader's one best unit grown by the question's kind (as on prose; technical text
also took a why's next sentence before excerpts), N the run of whole units holding the most
candidate probability widened towards N words (`forms.stretch`, `forms.widen`). The dumps
hold no section paths, so only numbered headings are seen here (`rag eval` sees them all).
"Right" is `rag eval`'s containment (an acceptable answer within 60 words), over the dump's
answerable questions, by question type where the QA set names one.

    .venv/bin/python eval/unit_choice.py dump --kb runs/kb-manuals-pdf-win \
        --out runs/units-dev.jsonl
    .venv/bin/python eval/excerpt.py runs/units-dev.jsonl --lengths 0 30 40 60
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QASETS = ("eval/data/manuals/manuals.qa.jsonl", "eval/data/manuals-train/train.qa.jsonl")


def main() -> None:
    from rag.evaluation.metrics import contains_answer
    from rag.forms import question_kind, shape
    from rag.units import words

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--lengths", nargs="+", type=int, default=[0, 30, 40, 50, 60])
    args = ap.parse_args()
    types = {}
    for path in QASETS:
        for line in open(ROOT / path):
            q = json.loads(line)
            types[q["id"]] = q.get("type", "")
    for dump in args.dumps:
        rows = [r for r in map(json.loads, open(dump)) if r["answers"]]
        for n in args.lengths:
            right, length = defaultdict(list), []
            for r in rows:
                spans = [tuple(c) for c in r["candidates"]]
                got = shape(r["passages"], spans, question_kind(r["question"]), False, n)
                answer = "" if got is None else r["passages"][got[0]][got[1].start:got[1].end]
                ok = got is not None and contains_answer(answer, r["answers"])
                for key in ("all", types.get(r["id"], "")):
                    right[key].append(ok)
                length.append(words(answer))
            cells = "  ".join(f"{k} {100 * sum(v) / len(v):.1f}" for k, v in right.items() if k)
            print(f"{Path(dump).name:24} excerpt {n:3}  {cells}  (n {len(rows)}, median "
                  f"{statistics.median(length):.0f} words)")


if __name__ == "__main__":
    main()
