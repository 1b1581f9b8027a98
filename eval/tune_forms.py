"""Choose when an answer is the short span and when whole sentences, on dev runs.

Each QA set is evaluated twice with the same reader and settings, once with
``--answer-form short`` and once with ``--answer-form long`` (rag eval writes
predictions.csv with the reader's confidence). This script joins the two per question and
scores decision rules on them:

- ``words``: the plain question-word rule (rag/forms.py question_kind: factoid -> short,
  how-to / why / definition -> long);
- ``calibrated``: the same rule with two confidence gates fitted here: a factoid whose span
  the reader is less sure of than ``factoid_below`` gets its sentence instead (the span is
  bolded inside it), and a how-to / why / definition question whose span the reader is
  surer of than ``other_above`` keeps it.

A question counts with its set's own metric: F1 where the set has only answerable factoid
questions (SQuAD, NQ: the answer must stay short), "right" (an acceptable answer within 60
words) elsewhere. The objective is the mean over sets, subject to no loss of F1 on the F1
sets against the short form; the chosen gates go into the reader's rag_reader.json
(``form_gates``, keeping its ``technical_at``). On a knowledge base that reads as technical
documentation (rag/pipeline.py ``Pipeline.technical``) the gates do not apply: every answer
is whole units there, so tune them on prose sets.

    .venv/bin/python eval/tune_forms.py --runs runs/dev-squad-form-{short,long} \\
        runs/dev-nq-form-{short,long} runs/dev-manuals-form-{short,long} [--write READER]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from rag.forms import question_kind  # noqa: E402

GRID = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01]


def load_pair(short: Path, long: Path) -> pd.DataFrame:
    a = pd.read_csv(short / "predictions.csv")
    b = pd.read_csv(long / "predictions.csv")
    m = a.merge(b[["id", "prediction", "f1", "right"]], on="id", suffixes=("_short", "_long"))
    m["kind"] = m["question"].map(question_kind)
    m["answerable"] = m["answers"].map(lambda s: bool(json.loads(s)))
    m["confidence"] = m["confidence"].fillna(0.0)
    return m


def metric_of(df: pd.DataFrame) -> str:
    """F1 for sets of answerable factoid questions only; right (containment) otherwise."""
    typed = "type" in df and df["type"].nunique() > 1
    return "right" if typed or not df["answerable"].all() else "f1"


def score(df: pd.DataFrame, metric: str, factoid_below: float, other_above: float) -> float:
    short = np.where(df["kind"] == "factoid", df["confidence"] >= factoid_below,
                     df["confidence"] >= other_above)
    values = np.where(short, df[f"{metric}_short"].astype(float),
                      df[f"{metric}_long"].astype(float))
    return 100 * float(np.mean(values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True,
                    help="pairs of run dirs: SHORT LONG [SHORT LONG ...]")
    ap.add_argument("--write", metavar="READER_DIR", help="store the gates in its rag_reader.json")
    args = ap.parse_args()
    if len(args.runs) % 2:
        ap.error("--runs takes pairs: a short-form run and a long-form run of the same set")
    sets = []
    for short, long in zip(args.runs[::2], args.runs[1::2]):
        df = load_pair(Path(short), Path(long))
        sets.append((Path(short).name, df, metric_of(df)))
    rows = []
    for fb in GRID:
        for oa in GRID:
            per = {name: score(df, m, fb, oa) for name, df, m in sets}
            rows.append({"factoid_below": fb, "other_above": oa, **per,
                         "mean": float(np.mean(list(per.values())))})
    table = pd.DataFrame(rows)
    base = {name: score(df, m, 0.0, 1.01) for name, df, m in sets}  # the plain word rule
    short_only = {name: score(df, m, 0.0, 0.0) for name, df, m in sets}
    ok = np.ones(len(table), dtype=bool)
    for name, _, m in sets:
        if m == "f1":
            ok &= table[name] >= short_only[name] - 1e-9
    best = table[ok].sort_values(["mean", "factoid_below", "other_above"],
                                 ascending=[False, True, False]).iloc[0]
    print("metric per set:", {name: m for name, _, m in sets})
    print("short only     ", {k: round(v, 2) for k, v in short_only.items()})
    print("word rule      ", {k: round(v, 2) for k, v in base.items()},
          "mean", round(float(np.mean(list(base.values()))), 2))
    print("calibrated     ", {name: round(best[name], 2) for name, _, _ in sets},
          "mean", round(best["mean"], 2), "gates", {"factoid_below": best["factoid_below"],
                                                    "other_above": best["other_above"]})
    if args.write:
        path = Path(args.write) / "rag_reader.json"
        config = json.loads(path.read_text())
        config["form_gates"] = {**(config.get("form_gates") or {}),  # (technical_at kept)
                                "factoid_below": float(best["factoid_below"]),
                                "other_above": float(best["other_above"])}
        path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote form_gates to {path}")


if __name__ == "__main__":
    main()
