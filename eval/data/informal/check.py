"""Check the informal QA sets and count them (stdlib only).

    python3 eval/data/informal/check.py            # every register found here
    python3 eval/data/informal/check.py forum      # one

For each ``<register>.qa.jsonl`` beside its ``<register>.corpus.jsonl``: every answer occurs
verbatim in the text of its gold row; every gold id is a row id of the corpus; an
unanswerable question has no answers and no gold ids; each question's split is its gold
row's split (unanswerable: its nearest row's), so no row has questions in both splits; ids
are unique. Prints the counts per register, split and type; exits 1 on any problem.
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
TYPES = ("factoid", "howto", "why", "absent")
SPLITS = ("dev", "test")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def check(register: str) -> tuple[Counter, list[str]]:
    """(counts by (split, type), problems) for one register."""
    rows = {r["id"]: r for r in read_jsonl(HERE / f"{register}.corpus.jsonl")}
    problems, counts, seen = [], Counter(), set()
    for q in read_jsonl(HERE / f"{register}.qa.jsonl"):
        where = f"{register}.qa.jsonl {q.get('id')}"
        if q["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(q["id"])
        if q.get("type") not in TYPES or q.get("split") not in SPLITS:
            problems.append(f"{where}: type {q.get('type')!r} / split {q.get('split')!r}")
        if q.get("type") == "absent":
            if q["answers"] or q["gold_ids"]:
                problems.append(f"{where}: unanswerable but has answers or gold ids")
            near = q.get("near_ids") or []
            if any(n not in rows or rows[n]["split"] != q["split"] for n in near):
                problems.append(f"{where}: near_ids {near} missing or in the other split")
        else:
            problems += answer_problems(where, q, rows)
        counts[(q.get("split"), q.get("type"))] += 1
    return counts, problems


def answer_problems(where: str, q: dict, rows: dict) -> list[str]:
    if not q["answers"] or len(q["gold_ids"]) != 1:
        return [f"{where}: needs answers and exactly one gold id"]
    gold = rows.get(q["gold_ids"][0])
    if gold is None:
        return [f"{where}: gold id {q['gold_ids'][0]!r} is not a corpus row"]
    out = [f"{where}: answer {a!r} not in {gold['id']}" for a in q["answers"]
           if a not in gold["text"]]
    if gold["split"] != q["split"]:
        out.append(f"{where}: split {q['split']} but {gold['id']} is {gold['split']}")
    return out


def main() -> int:
    registers = sys.argv[1:] or sorted(p.name.removesuffix(".qa.jsonl")
                                       for p in HERE.glob("*.qa.jsonl"))
    total, bad = Counter(), []
    print(f"{'register':10} {'split':5} " + " ".join(f"{t:>8}" for t in TYPES) + "   docs")
    for register in registers:
        counts, problems = check(register)
        docs = Counter(r["split"] for r in read_jsonl(HERE / f"{register}.corpus.jsonl"))
        for split in SPLITS:
            print(f"{register:10} {split:5} "
                  + " ".join(f"{counts[(split, t)]:8d}" for t in TYPES) + f"   {docs[split]:4d}")
        total += counts
        bad += problems
    for split in SPLITS:
        print(f"{'all':10} {split:5} " + " ".join(f"{total[(split, t)]:8d}" for t in TYPES))
    for p in bad:
        print(p, file=sys.stderr)
    print(f"{len(bad)} problems", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
