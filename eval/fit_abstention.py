"""Fit the abstention rule offline from dumped signals, and see what it declines.

`eval/abstention.py --features FILE` writes each question's signals (the reader's confidence
logit, the best dense similarity, the knowledge base's similarity anchor, coverage) for every
case (answerable, missing document, off-topic, absent) of every set; reading them is the slow
part, so the choices here (raw or anchored similarity, the decline budget held by every set
or by their mean) are compared on the dev dump without reading again, and the chosen rule is
then applied to the test dump. Each rule also gets its confidence floor for the knowledge
bases that read as technical documentation (``fit_floor``; ``--no-floor``: none), as `rag
train` fits it:

    .venv/bin/python eval/abstention.py --split dev --registers --features runs/abst-dev.jsonl
    .venv/bin/python eval/abstention.py --split test --registers --features runs/abst-test.jsonl
    .venv/bin/python eval/fit_abstention.py runs/abst-dev.jsonl --test runs/abst-test.jsonl
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rag.abstention import fit_floor, fit_rule  # noqa: E402
from rag.pipeline import reads_technical  # noqa: E402  (the default form gate)
from rag.training.reader import RULE_DECLINES  # noqa: E402

_SHARES: dict[str, float | None] = {}


def load(path: str) -> list[dict]:
    return [json.loads(line) for line in open(path) if line.strip()]


def technical(row: dict) -> bool:
    """Whether the row's knowledge base reads as technical documentation (a dump written
    before rows carried the share: read from the knowledge base)."""
    share = row.get("technical")
    if share is None and "technical" not in row:
        if row["kb"] not in _SHARES:
            from knowledge.kb import KnowledgeBase

            with KnowledgeBase.open(row["kb"]) as kb:
                _SHARES[row["kb"]] = kb.technical_share()
        share = _SHARES[row["kb"]]
    return reads_technical(share)


def confidence(row: dict) -> float:
    return 1 / (1 + math.exp(-row["logit"]))


def features(row: dict, relative: bool) -> list[float]:
    sim = row["sim"] - (row.get("anchor") or 0.0) if relative else row["sim"]
    return [row["logit"], sim, row["coverage"]]


def declined(rule, row: dict, floor: bool = True) -> bool:
    """The rule's decision on a dumped row (``floor``: its floor where the row's knowledge
    base reads as technical)."""
    return rule.declines(confidence(row), row["sim"], row["coverage"], row.get("anchor"),
                         floor and technical(row))


def declines(rule, rows: list[dict]) -> dict:
    out = defaultdict(lambda: [0, 0])
    for r in rows:
        out[(r["set"], r["case"])][0] += declined(rule, r)
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
    ap.add_argument("--budget", type=float, default=RULE_DECLINES,
                    help="answerable dev declines allowed")
    ap.add_argument("--no-floor", action="store_true", help="no floor on technical documentation")
    args = ap.parse_args()
    dev = [r for r in load(args.dev) if r.get("logit") is not None]
    test = [r for r in load(args.test) if r.get("logit") is not None] if args.test else []
    for relative in (False, True):
        for budget_by in ("mean", "every"):
            cases = [(r["set"], r["case"], features(r, relative)) for r in dev]
            rule, _ = fit_rule(cases, args.budget, relative=relative, budget_by=budget_by)
            if not args.no_floor:
                rule = replace(rule, floor=fit_floor([
                    (r["set"], r["case"], confidence(r), technical(r),
                     declined(rule, r, floor=False)) for r in dev], args.budget))
            name = f"similarity {'from the anchor' if relative else 'raw'}, budget held by " \
                   f"{'every set' if budget_by == 'every' else 'the mean of the sets'}: {rule}"
            table(f"DEV  {name}", declines(rule, dev))
            if test:
                table(f"TEST {name}", declines(rule, test))


if __name__ == "__main__":
    main()
