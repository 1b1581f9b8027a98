"""Would BM25 find a manual's passage better if each chunk's section path were indexed with
its text (issue 22)? Offline, reporting only: the knowledge base's own chunks, dense lists
and fusion (RRF, k 5, 50 candidates per list) as `rag` runs them; BM25 recomputed in numpy
over each chunk's text alone (Tantivy's terms; within a question of Tantivy's ranking on
dev) and with the heading path's words added (shipped since 2026-12-06), only the path's last title, or the
path and the document's title; the answer in the top 3 / 5.

    .venv/bin/python eval/heading_bm25.py eval/data/manuals-train/train.qa.jsonl \\
        runs/kb-manuals-train train
    .venv/bin/python eval/heading_bm25.py eval/data/manuals/manuals.qa.jsonl \\
        runs/kb-manuals-pdf-runin dev
"""
from __future__ import annotations

import argparse
import collections
import math
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.bm25 import terms, tokens  # noqa: E402
from knowledge.kb import KnowledgeBase  # noqa: E402
from rag.evaluation.metrics import answer_in_text  # noqa: E402
from rag.evaluation.qa import load_qaset  # noqa: E402
from rag.retrieval import rrf  # noqa: E402

CANDIDATES = 50


class Bm25:
    """Okapi BM25 (k1 1.2, b 0.75, Tantivy's IDF) over token lists."""

    def __init__(self, docs: list[list[str]]):
        self.tf = [collections.Counter(d) for d in docs]
        self.len = np.array([len(d) for d in docs], dtype=float)
        self.avg = self.len.mean()
        df = collections.Counter(w for c in self.tf for w in c)
        n = len(docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.post: dict[str, list[int]] = collections.defaultdict(list)
        for i, c in enumerate(self.tf):
            for w in c:
                self.post[w].append(i)

    def search(self, query: list[str], k: int) -> list[tuple[float, int]]:
        score: dict[int, float] = collections.defaultdict(float)
        for w in query:
            for i in self.post.get(w, ()):
                f = self.tf[i][w]
                score[i] += self.idf[w] * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * self.len[i]
                                                                   / self.avg))
        return sorted(((s, i) for i, s in score.items()), key=lambda p: (-p[0], p[1]))[:k]


def arguments(doc: str) -> argparse.ArgumentParser:
    """The offline retrieval studies' arguments: a QA set, its knowledge base, a split."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qaset")
    ap.add_argument("kb")
    ap.add_argument("split")
    ap.add_argument("--limit", type=int, default=0, help="a seeded sample of the questions")
    return ap


def answerable(a: argparse.Namespace) -> list:
    """The split's answerable questions (a seeded sample of ``--limit`` of them)."""
    questions = [q for q in load_qaset(a.qaset, a.split) if q.answers]
    if a.limit and len(questions) > a.limit:
        questions = random.Random(0).sample(questions, a.limit)
    return questions


def main() -> None:
    a = arguments(__doc__).parse_args()
    questions = answerable(a)
    with KnowledgeBase.open(a.kb) as kb:
        rows = kb.store.conn.execute(
            "SELECT c.id, c.text, c.heading, d.title FROM chunks c JOIN documents d "
            "ON c.document_id = d.id").fetchall()
        ids = [r[0] for r in rows]
        text = {r[0]: r[1] for r in rows}
        vecs = kb.embedder.encode_queries([q.question for q in questions])
        dense = kb.dense_ids(vecs, CANDIDATES)
    variants = {
        "text (before)": [tokens(r[1]) for r in rows],
        "text + path (shipped)": [tokens(r[1]) + tokens(r[2].replace(" > ", " ")) for r in rows],
        "text + last title": [tokens(r[1]) + tokens(r[2].split(" > ")[-1]) for r in rows],
        "text + path + doc title": [tokens(r[1]) + tokens(r[2].replace(" > ", " "))
                                    + tokens(r[3] or "") for r in rows],
    }
    print(f"{len(questions)} answerable questions, {len(rows)} chunks")
    for name, docs in variants.items():
        index = Bm25(docs)
        hit = {("lex", 3): 0, ("lex", 5): 0, ("hyb", 3): 0, ("hyb", 5): 0}
        for q, d in zip(questions, dense):
            lex = [(s, ids[i]) for s, i in index.search(terms(q.question), CANDIDATES)]
            fused = rrf([d, lex])
            for k in (3, 5):
                hit[("lex", k)] += any(answer_in_text(q.answers, text[c]) for _, c in lex[:k])
                hit[("hyb", k)] += any(answer_in_text(q.answers, text[c]) for _, c in fused[:k])
        n = len(questions)
        print(f"{name:24} lexical @3 {100 * hit[('lex', 3)] / n:5.1f} @5 "
              f"{100 * hit[('lex', 5)] / n:5.1f}   hybrid @3 {100 * hit[('hyb', 3)] / n:5.1f} "
              f"@5 {100 * hit[('hyb', 5)] / n:5.1f}")


if __name__ == "__main__":
    main()
