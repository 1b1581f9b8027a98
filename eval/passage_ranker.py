"""A passage re-ranker tried for issue 22 (not shipped), offline: does a cross-encoder trained
on questions about other manuals put the answering passage into the 3 the reader reads more
often than the shipped fusion (dense + BM25, RRF) does? (The end-to-end runs were made on the
branch ``exp-rerank``, which wires it into retrieval behind ``--rerank``.)

The packaged MiniLM stays frozen; LoRA adapters (r 16 on every linear layer) and a linear head
on its mean-pooled states are trained with a listwise loss (the positives' share of each
group's softmax; eval/unit_ranker.py's loop) on groups of (question, passages the shipped
retriever finds for it):

- manuals-train (1,348 questions about 17 manuals that are neither the dev/test manuals nor the
  reserved R manuals): a passage is positive when it holds an acceptable answer and most of
  the question's reference sentence (so a bare "None" found anywhere does not count);
- SQuAD-dev-open and NQ-para-open train splits (without their dev documents), positive when a
  passage holds an answer, so that encyclopedia questions keep their order.

Then, over the top 10 of the shipped retriever, the answer in the top 1 / 3 / 5 as shipped, by
the ranker alone, and by the two fused::

    .venv/bin/python eval/passage_ranker.py groups --out runs/ranker/groups.jsonl
    .venv/bin/python eval/passage_ranker.py train runs/ranker/groups.jsonl \\
        --out runs/ranker/r.safetensors
    .venv/bin/python eval/passage_ranker.py score runs/ranker/r.safetensors
"""
from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MAX_LEN = 256
DEPTH = 20  # passages retrieved per training question
SETS = {  # name: (QA set, knowledge base, how many train questions, its dev documents held out)
    "manuals-train": ("eval/data/manuals-train/train.qa.jsonl", "runs/kb-manuals-train-win",
                      None, False),  # (its own dev set is other manuals: eval/data/manuals)
    "squad": ("eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad", 700, True),
    "nq": ("eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq", 700, True),
}
EVAL = {  # name: (QA set, knowledge base, split)
    "manuals dev": ("eval/data/manuals/manuals.qa.jsonl", "runs/kb-manuals-pdf-win", "dev"),
    "bash test": ("eval/data/manuals/manuals.qa.jsonl", "runs/kb-manuals-pdf-win", "test"),
    "squad dev": ("eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad", "dev"),
    "nq dev": ("eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq", "dev"),
}


def words(s: str) -> list[str]:
    return re.findall(r"\w+", s.lower())


def holds_reference(reference: str, text: str, share: float = 0.6) -> bool:
    """Most of the reference's word pairs occur in ``text``."""
    ref, got = words(reference), words(text)
    pairs = set(zip(ref, ref[1:]))
    return bool(pairs) and len(pairs & set(zip(got, got[1:]))) >= share * len(pairs)


def train_questions(path, n, hold_dev):
    from rag.evaluation.qa import DEV_FRACTION, load_qaset, split_dev

    qs = [q for q in load_qaset(path, "train") if q.answers]
    if hold_dev:  # the documents `--split dev` asks about stay out, as `rag train` keeps them
        qs = split_dev(qs, DEV_FRACTION, seed=0)[0]
    random.Random(0).shuffle(qs)
    return qs[:n] if n else qs


def cmd_groups(a) -> None:
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.metrics import answer_in_text
    from rag.retrieval import Retriever

    rng = random.Random(0)
    groups = []
    for name, (path, kb_dir, n, hold_dev) in SETS.items():
        qs = train_questions(path, n, hold_dev)
        with KnowledgeBase.open(kb_dir) as kb:
            hits = Retriever(kb).retrieve_many([q.question for q in qs], DEPTH)
        kept = 0
        for q, hs in zip(qs, hits):
            ref = q.extra.get("reference")
            pos = [h.text for h in hs if answer_in_text(list(q.answers), h.text)
                   and (not ref or holds_reference(ref, h.text))]
            neg = [h.text for h in hs if not answer_in_text(list(q.answers), h.text)]
            if not pos or len(neg) < 3:
                continue
            rng.shuffle(pos)
            rng.shuffle(neg)
            texts = pos[:2] + neg[:8 - len(pos[:2])]
            groups.append({"set": name, "q": q.question, "texts": texts,
                           "pos": list(range(len(pos[:2])))})
            kept += 1
        print(f"{name}: {kept} groups of {len(qs)} questions", file=sys.stderr, flush=True)
    rng.shuffle(groups)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as out:
        for g in groups:
            out.write(json.dumps(g) + "\n")


def cmd_train(a) -> None:
    from eval.unit_ranker import train_listwise

    groups = [json.loads(line) for line in open(a.groups_file)]
    train_listwise(groups, a.out, MAX_LEN, len(groups) * a.epochs // 4, a.lr)


def cmd_score(a) -> None:
    from eval.unit_ranker import load_scorer
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.metrics import answer_in_text
    from rag.evaluation.qa import load_qaset
    from rag.retrieval import Retriever

    score = load_scorer(a.weights, MAX_LEN)
    for name, (path, kb_dir, split) in EVAL.items():
        if a.sets and name.split()[0] not in a.sets.split(","):
            continue
        qs = [q for q in load_qaset(path, split) if q.answers][:a.n]
        with KnowledgeBase.open(kb_dir) as kb:
            hits = Retriever(kb).retrieve_many([q.question for q in qs], a.depth)
        res: dict[str, list] = {}
        for q, hs in zip(qs, hits):
            ok = np.array([answer_in_text(list(q.answers), h.text) for h in hs])
            ce = score([q.question] * len(hs), [h.text for h in hs])
            place = np.arange(len(hs))
            ways = {"shipped": -place, "ranker": ce}
            for lam in a.lam:  # the ranker's score less lam per place down the first stage
                ways[f"ranker - {lam:g}*place"] = ce - lam * place
            for way, sc in ways.items():
                order = np.argsort(-sc, kind="stable")
                first = next((j + 1 for j, i in enumerate(order) if ok[i]), None)
                res.setdefault(way, []).append([bool(first and first <= k) for k in (1, 3, 5)])
        print(f"{name} ({len(qs)} questions)")
        for way, got in res.items():
            g = np.array(got)
            print(f"  {way:22} " + "  ".join(f"@{k} {100 * g[:, c].mean():.1f}"
                                              for c, k in enumerate((1, 3, 5))), flush=True)


def train_args(t) -> None:
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--lr", type=float, default=3e-4)


def score_args(s) -> None:
    s.add_argument("--depth", type=int, default=10)
    s.add_argument("--n", type=int, default=200)
    s.add_argument("--sets", help="of manuals,bash,squad,nq (default: all)")
    s.add_argument("--lam", nargs="*", type=float, default=[0.25, 0.5, 1.0, 2.0])


def main() -> None:
    from eval.unit_ranker import steps

    steps(__doc__, cmd_groups, cmd_train, cmd_score, train_args, score_args)


if __name__ == "__main__":
    main()
