"""Does the confidence floor fitted on dev hold on a manual it was not fitted on? Leave one
dev manual out (the manuals dev rows split by manual into octave, gnuplot and debmake groups),
fit the floor (`rag.abstention.fit_floor`, the shipped rule's other weights) on the rest at
several budgets, and report the left-out manual's declines; then the floor fitted on all dev
applied to the test dump's bash manual. Offline, on `eval/abstention.py --features` dumps.

    .venv/bin/python eval/floor_loo.py runs/abst-dev.jsonl runs/abst-test-100.jsonl
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_abstention import confidence, technical  # noqa: E402
from rag.abstention import AbstainRule, fit_floor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
rule = replace(AbstainRule.from_dict(json.loads(
    (ROOT / "rag/models/reader/rag_reader.json").read_text())["abstain_rule"]), floor=None)


def rows(path):
    out = []
    for line in open(path):
        r = json.loads(line)
        if r["set"] == "manuals":
            r["set"] = "manuals-" + r["id"].split("-")[0]
        out.append(r)
    return out


def cases(rs):
    return [(r["set"], r["case"], confidence(r), technical(r),
             rule.declines(confidence(r), r["sim"], r["coverage"], r.get("anchor"))) for r in rs]


def rate(rs, group, case, floor):
    sel = [r for r in rs if r["set"] == group and r["case"] == case]
    d = sum(rule.declines(confidence(r), r["sim"], r["coverage"], r.get("anchor")) or
            (technical(r) and floor is not None and confidence(r) < floor) for r in sel)
    return f"{100 * d / max(1, len(sel)):.1f} % of {len(sel)}"


def main() -> None:
    dev, test = rows(sys.argv[1]), rows(sys.argv[2])
    mans = sorted({r["set"] for r in dev if r["set"].startswith("manuals-")})
    for budget in (0.03, 0.02, 0.01, 0.0):
        print(f"budget {budget:.0%}")
        for m in mans:
            f = fit_floor([c for c in cases(dev) if c[0] != m], budget)
            print(f"  {m[8:]:8} left out: floor {f:.4f}, its answerable declined "
                  f"{rate(dev, m, 'answerable', f)}, absent {rate(dev, m, 'absent', f)}")
        f = fit_floor(cases(dev), budget)
        print(f"  all dev: floor {f:.4f}; bash test answerable declined "
              f"{rate(test, 'manuals-bash', 'answerable', f)}, absent "
              f"{rate(test, 'manuals-bash', 'absent', f)}, missing document "
              f"{rate(test, 'manuals-bash', 'missing_document', f)}")


if __name__ == "__main__":
    main()
