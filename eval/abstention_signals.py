"""Would a fourth signal let the abstention rule decline NQ questions whose document is
missing (issue 27)? Reporting only: nothing here is shipped.

Dev questions of NQ and SQuAD are asked as ``rag train`` calibrates them (answerable,
missing document, off-topic: ``rag.training.reader.abstention_cases``, k 3), read by the
shipped reader, and each case's signals written as JSON lines: the rule's three
(confidence logit, similarity above the KB's anchor, coverage) and candidates for a
fourth: the coverage of the passage the answer comes from (plain, and IDF-weighted with
document frequencies over both KBs' chunks), of the answer's sentence, whether the
question's rarest term is in the answer's passage, the top span's probability and the
share of the span mass in its passage. ``report`` prints each signal's ROC AUC (answerable
against each other case) and, for NQ, the missing documents a logistic rule over the
signals (5-fold cross-validated, fitted on NQ alone) declines at 3 and 5 % of answerable
questions declined::

    .venv/bin/python eval/abstention_signals.py dump --n 200 --out runs/abst-signals.jsonl
    .venv/bin/python eval/abstention_signals.py report runs/abst-signals.jsonl
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = [("eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq"),
        ("eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad")]
SIGNALS = ["conf", "sim", "cov", "cov_ans", "idf_ans", "idf_max", "idf_unit", "rare_in_ans",
           "top_p", "mass_top", "agree_txt", "mass_same"]


def dump(a) -> None:
    from knowledge.kb import KnowledgeBase
    from rag.abstention import confidence_logit, coverage
    from rag.evaluation.qa import DEV_FRACTION
    from rag.evidence import terms
    from rag.units import unit_of, units
    from rag.readers import load_reader
    from rag.training.reader import abstention_cases

    res = abstention_cases(DATA, 3, dev_fraction=DEV_FRACTION, dev_limit=a.n, seed=0)
    reader = load_reader("rag/models/reader")
    df, n = collections.Counter(), 0
    for _, path in DATA:
        for (t,) in KnowledgeBase.open(path).store.conn.execute("SELECT text FROM chunks"):
            df.update(terms(t))
            n += 1
    with open(a.out, "w") as out:
        for c in res["rows"]:
            if not c.passages:
                continue
            o = reader.read_batch([c.question.question], [c.passages], threshold=False).outputs[0]
            cands = o.candidates or []
            q = terms(c.question.question)
            idf = {w: math.log((n + 1) / (df.get(w, 0) + 1)) for w in q}
            tot = sum(idf.values()) or 1.0
            f = {"group": Path(c.group).name.split("-")[0], "case": c.case,
                 "conf": confidence_logit(o.confidence), "sim": c.similarity - (c.anchor or 0),
                 "cov": coverage(c.question.question, c.passages)}
            if cands:
                p, at, s, e = cands[0]
                pt = terms(c.passages[at].text)
                cut = units(c.passages[at].text)
                i = unit_of(cut, s, e)
                ut = c.passages[at].text[cut[i].start:cut[i].end] if i is not None else ""
                rare = max(q, key=lambda w: idf[w]) if q else None
                f.update(cov_ans=len(q & pt) / max(1, len(q)),
                         idf_ans=sum(idf[w] for w in q & pt) / tot,
                         idf_max=max(sum(idf[w] for w in q & terms(h.text)) / tot
                                     for h in c.passages),
                         idf_unit=sum(idf[w] for w in q & terms(ut)) / tot,
                         rare_in_ans=float(rare in pt) if rare else 0.0, top_p=p,
                         mass_top=sum(x[0] for x in cands if x[1] == at)
                         / (sum(x[0] for x in cands) or 1))
                # agreement: the passages that hold the answer's text, and the span mass on
                # that same text wherever it was found
                said = " ".join(c.passages[at].text[s:e].lower().split())
                text = lambda x: " ".join(c.passages[x[1]].text[x[2]:x[3]].lower().split())
                f.update(agree_txt=sum(said in " ".join(h.text.lower().split())
                                       for h in c.passages) / len(c.passages),
                         mass_same=sum(x[0] for x in cands if text(x) == said)
                         / (sum(x[0] for x in cands) or 1))
            out.write(json.dumps(f) + "\n")


def report(a) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    rows = [r for r in map(json.loads, open(a.dump)) if "idf_ans" in r]
    for g in sorted({r["group"] for r in rows}):
        for neg in ("missing_document", "off_topic"):
            sub = [r for r in rows if r["group"] == g and r["case"] in ("answerable", neg)]
            y = [r["case"] == "answerable" for r in sub]
            if len(set(y)) == 2:
                print(f"AUC {g} answerable vs {neg} (n {len(sub)}): " + "  ".join(
                    f"{f} {roc_auc_score(y, [r[f] for r in sub]):.2f}" for f in SIGNALS))
    sub = [r for r in rows if r["group"] == "nq" and r["case"] in ("answerable",
                                                                  "missing_document")]
    y = np.array([r["case"] == "answerable" for r in sub])
    for feats in (SIGNALS[:3], SIGNALS[:3] + ["idf_ans"], SIGNALS):
        x = np.array([[r[f] for f in feats] for r in sub])
        s = cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=5,
                              method="decision_function")
        cells = [f"{100 * np.mean(s[~y] < np.quantile(s[y], fpr)):.1f} % at {fpr:.0%}"
                 for fpr in (0.03, 0.05)]
        print(f"NQ alone, {' + '.join(feats)}: missing documents declined " + ", ".join(cells)
              + " of answerable declined")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--n", type=int, default=200, help="dev questions per set")
    d.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("dump")
    a = ap.parse_args()
    (dump if a.step == "dump" else report)(a)


if __name__ == "__main__":
    main()
