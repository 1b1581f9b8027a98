"""Which sentence to quote: how often the reader's choice of unit holds the answer, against
an oracle and a few re-rankings, on a QA set (the manuals dev set by default).

Step 1 asks each question once (top-k passages and the reader's candidate spans, no
abstention) and writes them as JSON lines; step 2 scores unit choices on that dump without
reading again. "Right" is rag eval's containment (an acceptable answer within 60 words) of
the long form: the chosen unit grown and clipped as rag/forms.py does.

    .venv/bin/python eval/unit_choice.py dump --kb runs/kb-manuals-pdf-after --out runs/units.jsonl
    .venv/bin/python eval/unit_choice.py score runs/units.jsonl

Choices: ``mass`` (shipped: the unit holding the most candidate-span probability),
``oracle`` (the first unit, in passage order, whose grown answer holds an acceptable
answer: the ceiling for these passages), and ``mass + w * cosine`` (the embedder's
question-unit cosine added).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def dump(args) -> None:
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.qa import load_qaset
    from rag.readers import load_reader
    from rag.retrieval import Retriever

    questions = load_qaset(args.qaset, args.split)
    reader = load_reader(args.reader)
    with KnowledgeBase.open(args.kb) as kb, open(args.out, "w") as out:
        found = Retriever(kb, "hybrid").search_many([q.question for q in questions], args.k,
                                                    None)
        for q, hits in zip(questions, found.hits):
            o = reader.read_batch([q.question], [hits[:args.k]], threshold=False).outputs[0]
            out.write(json.dumps({"id": q.id, "question": q.question, "answers": list(q.answers),
                                  "passages": [h.text for h in hits[:args.k]],
                                  "candidates": [list(c) for c in (o.candidates or [])]})
                      + "\n")


def answer(r: dict, at: int, i: int) -> str:
    """The long form of unit ``i`` of a dumped row's passage ``at``: grown and clipped as
    rag/forms.py shapes it for the row's question."""
    from rag.forms import clip, grow, question_kind
    from rag.units import units

    text, cut = r["passages"][at], units(r["passages"][at])
    s, e = grow(text, cut, i, question_kind(r["question"]))
    return text[slice(*clip(text, s, e, (cut[i].start, cut[i].end)))]


def score(args) -> None:
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.metrics import contains_answer
    from rag.forms import best_unit, unit_mass
    from rag.units import unit_of, units

    rows = [json.loads(line) for line in open(args.dump)]
    answerable = [r for r in rows if r["answers"]]
    embedder = KnowledgeBase.open(args.kb).embedder if args.kb else None

    def mass(r):
        cut = {at: units(t) for at, t in enumerate(r["passages"])}
        spans = [tuple(c) for c in r["candidates"]]
        if not spans:
            return None
        best = best_unit(unit_mass(cut, spans))
        if best is None:
            _, top, s, e = spans[0]
            return top, unit_of(cut[top], s, e) or 0
        return best

    def oracle(r):
        for at, text in enumerate(r["passages"]):
            for i in range(len(units(text))):
                if contains_answer(answer(r, at, i), r["answers"]):
                    return at, i
        return mass(r)

    def with_cosine(w):
        def choose(r):
            items = [(at, i) for at, t in enumerate(r["passages"]) for i in range(len(units(t)))]
            if not items:
                return None
            texts = [r["passages"][at][u.start:u.end] for at, t in enumerate(r["passages"])
                     for u in units(t)]
            cos = embedder.encode(texts) @ embedder.encode_queries([r["question"]])[0]
            m = unit_mass({at: units(t) for at, t in enumerate(r["passages"])},
                          r["candidates"])
            return items[int(np.argmax([m.get(x, 0.0) + w * c for x, c in zip(items, cos)]))]
        return choose

    choices = {"mass (shipped)": mass, "oracle": oracle}
    if embedder is not None:
        choices.update({f"mass + {w} cosine": with_cosine(w) for w in (0.5, 1.0)})
    for name, choose in choices.items():
        right = 0
        for r in answerable:
            pick = choose(r)
            right += pick is not None and contains_answer(answer(r, *pick), r["answers"])
        print(f"{name:22} right {100 * right / len(answerable):5.1f} % of {len(answerable)} "
              "answerable questions")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--kb", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--qaset", default="eval/data/manuals/manuals.qa.jsonl")
    d.add_argument("--split", default="dev")
    d.add_argument("--reader", default="rag/models/reader")
    d.add_argument("-k", type=int, default=3)
    s = sub.add_parser("score")
    s.add_argument("dump")
    s.add_argument("--kb", help="score the cosine re-rankings with this KB's embedder")
    args = ap.parse_args()
    (dump if args.step == "dump" else score)(args)


if __name__ == "__main__":
    main()
