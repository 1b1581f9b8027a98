"""What abstention does on the test splits, reporting only: the reader's abstention (its rule,
or its two thresholds) was fitted on the dev split when it was trained (or by `rag train ...
--calibrate-only`).

    .venv/bin/python eval/abstention.py --reader rag/models/reader --n 1000
    .venv/bin/python eval/abstention.py --thresholds ...   # the two thresholds, not the rule
    .venv/bin/python eval/abstention.py --split dev --features runs/abst-dev.jsonl ...

Each sampled question is asked three ways (``rag.training.reader.abstention_cases``):
answerable (top-k from its own knowledge base), missing document (the same knowledge base
without the question's gold documents and any chunk holding an answer) and off-topic (the
other set's knowledge base), and declined as `rag ask` would decline it: by the reader's
abstention rule over confidence, similarity and coverage where it applies (rag/abstention.py),
else by the similarity floor and then the reader's confidence threshold. Prints, per set and
case, the share declined and by which gate, and the answerable questions' EM/F1 with
abstentions counted wrong; ``--features`` writes each question's signals as JSON lines.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = [("squad", "eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad"),
        ("nq", "eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq")]
# other registers (issue 27): FAQs, changelogs, READMEs, forum posts, reviews, manuals
REGISTERS = [(r, f"eval/data/informal/{r}.qa.jsonl", f"runs/informal/kb-{r}")
             for r in ("faq", "changelog", "readme", "forum", "reviews")] + \
    [("manuals", "eval/data/manuals/manuals.qa.jsonl", "runs/kb-manuals-pdf")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader", default="rag/models/reader")
    ap.add_argument("--n", type=int, default=300, help="questions per set")
    ap.add_argument("-k", type=int, default=None, help="passages (default: the reader's)")
    ap.add_argument("--split", default="test", choices=["test", "dev"])
    ap.add_argument("--thresholds", action="store_true",
                    help="decline by the two thresholds even where the reader has a rule")
    ap.add_argument("--features", default=None, help="write each question's signals here")
    ap.add_argument("--registers", action="store_true",
                    help="also the informal registers and the manuals (their knowledge bases "
                         "under runs/: eval/data/informal/README.md, eval/manuals.sh)")
    ap.add_argument("--kb", action="append", default=[], metavar="NAME=DIR",
                    help="a set's knowledge base elsewhere, e.g. manuals=runs/kb-manuals-pdf-x")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=QA:KB",
                    help="one more set, e.g. notes=runs/notes/notes.qa.jsonl:runs/notes/kb-notes "
                         "(eval/notes_register.py)")
    args = ap.parse_args()

    from knowledge.kb import KnowledgeBase
    from rag.abstention import confidence_logit, coverage
    from rag.evaluation.metrics import exact_match, f1
    from rag.evaluation.qa import DEV_FRACTION
    from rag.pipeline import Pipeline, by_rank
    from rag.readers import load_reader
    from rag.retrieval import Retriever
    from rag.training.reader import abstention_cases

    sets = SETS + (REGISTERS if args.registers else []) + \
        [(n, *v.split(":", 1)) for n, v in (kv.split("=", 1) for kv in args.set)]
    moved = dict(kv.split("=", 1) for kv in args.kb)
    sets = [(name, qa, moved.get(name, kb)) for name, qa, kb in sets]
    reader = load_reader(args.reader)
    if args.thresholds:
        reader.config = replace(reader.config, abstain_rule=None)
    k = args.k or reader.config.k
    kbs = {name: KnowledgeBase.open(ROOT / kb) for name, _, kb in sets}
    pipes = {name: Pipeline(Retriever(kb), reader, k) for name, kb in kbs.items()}
    by_kb = {str(kb.store.path): name for name, kb in kbs.items()}
    by_path = {str(ROOT / qaset): name for name, qaset, _ in sets}
    cases = abstention_cases([(ROOT / qaset, kbs[name]) for name, qaset, _ in sets], k,
                             dev_fraction=DEV_FRACTION, dev_limit=args.n, seed=0,
                             split=args.split)
    rule = pipes["squad"].abstain_rule()
    floor = None if rule else pipes["squad"].similarity_floor()
    result = {"reader": args.reader, "k": k, "split": args.split,
              "gate": "rule" if rule else "thresholds", "rule": reader.config.abstain_rule,
              "abstain_similarity": floor, "abstain_threshold": reader.config.abstain_threshold}
    rows = cases["rows"]
    readable = [r for r in rows if r.passages]
    outs = {}
    for i in range(0, len(readable), 16):
        chunk = readable[i:i + 16]
        read = reader.read_batch([r.question.question for r in chunk],
                                 [list(r.passages) for r in chunk], threshold=False)
        outs.update({id(r): o for r, o in zip(chunk, read.outputs)})
    stats, features = {}, open(args.features, "w") if args.features else None
    for row in rows:
        group, case, q, passages, sim = row.group, row.case, row.question, row.passages, \
            row.similarity
        name = by_path[group]
        pipe = pipes[by_kb[row.kb]]
        out = outs.get(id(row))
        if out is None:  # nothing left to read
            gate = "nothing"
        elif floor is not None and sim is not None and sim < floor:
            gate = "similarity"
        elif pipe.decide(rule, q.question, passages, sim, out).abstained:
            gate = "rule" if rule else "reader"
        else:
            gate = None
        s = stats.setdefault((name, case), {"n": 0, "gates": {}, "em": 0.0, "f1": 0.0})
        s["n"] += 1
        if gate:
            s["gates"][gate] = s["gates"].get(gate, 0) + 1
        elif case == "answerable":
            out = by_rank(out, list(passages))  # the span `rag ask` answers with
            s["em"] += exact_match(out.answer, list(q.answers))
            s["f1"] += f1(out.answer, list(q.answers))
        if features and out is not None:
            features.write(json.dumps({
                "set": name, "case": case, "id": q.id, "sim": sim, "anchor": row.anchor,
                "kb": row.kb, "technical": row.technical,
                "logit": confidence_logit(out.confidence),
                "coverage": coverage(q.question, passages), "declined": gate,
                "candidates": [[p, at] for p, at, _, _ in out.candidates],
                "f1": f1(out.answer, list(q.answers)) if case == "answerable" else None}) + "\n")
    for (name, case), s in stats.items():
        row = {"n": s["n"],
               "declined_%": round(100 * sum(s["gates"].values()) / s["n"], 1),
               **{f"by_{g}_%": round(100 * c / s["n"], 1) for g, c in s["gates"].items()}}
        if case == "answerable":
            row.update(em=round(100 * s["em"] / s["n"], 1), f1=round(100 * s["f1"] / s["n"], 1))
        result[f"{name} {case}"] = row
        print(f"{name:5} {case:16} {json.dumps(row)}", file=sys.stderr, flush=True)
    for kb in kbs.values():
        kb.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
