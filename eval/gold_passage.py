"""Issue 27's measure on the manuals: answerable questions declined when the reader has the
passage holding the answer in hand (open-book: the top-k retrieved, with the chunk that holds
an acceptable answer put first where retrieval missed it), beside the plain open-book run.
Reporting only; the shipped reader, rule and k.

    .venv/bin/python eval/gold_passage.py --kb runs/kb-manuals-pdf-runin --split test
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.kb import KnowledgeBase  # noqa: E402
from rag.evaluation.metrics import answer_in_text, contains_answer  # noqa: E402
from rag.evaluation.qa import load_qaset  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.readers import load_reader  # noqa: E402
from rag.retrieval import Retrieved, Retriever  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qaset", default="eval/data/manuals/manuals.qa.jsonl")
    ap.add_argument("--kb", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--reader", default="rag/models/reader")
    ap.add_argument("--show", action="store_true", help="list the declined questions")
    ap.add_argument("--no-floor", action="store_true", help="the rule without its floor")
    a = ap.parse_args()
    questions = [q for q in load_qaset(a.qaset, a.split) if q.answers]
    reader = load_reader(a.reader)
    floor = (reader.config.abstain_rule or {}).get("floor") or 0.0
    if a.no_floor:
        from dataclasses import replace
        reader.config = replace(reader.config,
                                abstain_rule={**reader.config.abstain_rule, "floor": None})
    with KnowledgeBase.open(a.kb) as kb:
        retriever = Retriever(kb, "hybrid")
        pipe = Pipeline(retriever, reader, k=getattr(reader.config, "k", 5))  # (as rag ask)
        k = pipe.k
        found = retriever.search_many([q.question for q in questions], k)
        refs = retriever.search_many([q.extra["reference"] for q in questions], 5)
        hits, placed, missing = [], 0, 0
        for q, hs, rs in zip(questions, found.hits, refs.hits):
            hs = hs[:k]
            if any(answer_in_text(list(q.answers), h.text) for h in hs):
                hits.append(hs)
                continue
            gold = next((h for h in rs if answer_in_text(list(q.answers), h.text)), None)
            if gold is None:
                missing += 1
                hits.append(hs)
                continue
            placed += 1
            hits.append([gold] + [h for h in hs if h.chunk_id != gold.chunk_id][:k - 1])
        plain = pipe.ask_many([q.question for q in questions], retrieved=found)
        gold = pipe.ask_many([q.question for q in questions],
                             retrieved=Retrieved(hits, found.similarity))
    n = len(questions)
    for name, answers in (("open-book (retrieved)", plain), ("gold passage in hand", gold)):
        declined = sum(x.abstained for x in answers)
        right = sum(contains_answer(x.answer, list(q.answers)) for x, q in zip(answers, questions)
                    if not x.abstained)
        print(f"{name:24} answerable declined {100 * declined / n:5.1f} % ({declined} of {n}); "
              f"right {100 * right / n:5.1f} %")
    print(f"(gold chunk put first for {placed}; not found by its reference for {missing})")
    if a.show:
        for q, x in zip(questions, gold):
            if x.abstained:
                print(f"  declined {q.id} confidence {x.confidence:.4f} similarity "
                      f"{x.similarity:.3f}: {q.question}")
            elif a.no_floor and x.confidence < floor:
                print(f"  below the floor {q.id} {x.confidence:.4f} right "
                      f"{contains_answer(x.answer, list(q.answers))}: {q.question} => "
                      f"{x.answer[:80]!r}")


if __name__ == "__main__":
    main()
