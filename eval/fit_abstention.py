"""Fit the abstention rule offline from dumped signals, and see what it declines.

`eval/abstention.py --features FILE` writes each question's signals (the reader's confidence
logit, the best dense similarity, the knowledge base's similarity anchor, coverage) for every
case (answerable, missing document, off-topic, absent) of every set; reading them is the slow
part, so the choices here (raw or anchored similarity, the decline budget held by every set
or by their mean) are compared on the dev dump without reading again, and the chosen rule is
then applied to the test dump:

    .venv/bin/python eval/abstention.py --split dev --registers --features runs/abst-dev.jsonl
    .venv/bin/python eval/abstention.py --split test --registers --features runs/abst-test.jsonl
    .venv/bin/python eval/fit_abstention.py runs/abst-dev.jsonl --test runs/abst-test.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.abstention import fit_rule  # noqa: E402


def load(path: str) -> list[dict]:
    return [json.loads(line) for line in open(path) if line.strip()]


def features(row: dict, relative: bool) -> list[float]:
    sim = row["sim"] - (row.get("anchor") or 0.0) if relative else row["sim"]
    return [row["logit"], sim, row["coverage"]]


def declines(rule, rows: list[dict], relative: bool) -> dict:
    out = defaultdict(lambda: [0, 0])
    for r in rows:
        f = features(r, relative)
        declined = rule.bias + rule.confidence * f[0] + rule.similarity * f[1] \
            + rule.coverage * f[2] < 0
        out[(r["set"], r["case"])][0] += declined
        out[(r["set"], r["case"])][1] += 1
    return {k: round(100 * a / b, 1) for k, (a, b) in sorted(out.items())}


def table(name: str, result: dict) -> None:
    sets = sorted({s for s, _ in result})
    cases = ["answerable", "missing_document", "off_topic", "absent"]
    print(f"\n{name}\n{'set':10} " + " ".join(f"{c[:12]:>13}" for c in cases))
    for s in sets:
        print(f"{s:10} " + " ".join(f"{result.get((s, c), '-'):>13}" for c in cases))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dev", help="features of the dev split (eval/abstention.py --features)")
    ap.add_argument("--test", help="features of the test split, to apply the rules to")
    ap.add_argument("--budget", type=float, default=0.03, help="answerable dev declines allowed")
    args = ap.parse_args()
    dev = [r for r in load(args.dev) if r.get("logit") is not None]
    test = [r for r in load(args.test) if r.get("logit") is not None] if args.test else []
    for relative in (False, True):
        for budget_by in ("mean", "every"):
            cases = [(r["set"], r["case"], features(r, relative)) for r in dev]
            rule, _ = fit_rule(cases, args.budget, relative=relative, budget_by=budget_by)
            name = f"similarity {'from the anchor' if relative else 'raw'}, budget held by " \
                   f"{'every set' if budget_by == 'every' else 'the mean of the sets'}: {rule}"
            table(f"DEV  {name}", declines(rule, dev, relative))
            if test:
                table(f"TEST {name}", declines(rule, test, relative))


if __name__ == "__main__":
    main()
