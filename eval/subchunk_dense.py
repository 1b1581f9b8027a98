"""Would dense retrieval find a manual's passage better if each chunk were also embedded in
smaller windows (its paragraphs, grouped up to W words), a chunk scoring the best of its own
and its windows' cosines? Offline, reporting only: the knowledge base's chunks and vectors,
BM25 over text + section path as shipped (numpy, eval/heading_bm25.py), fusion as `rag` runs
it; the answer in the top 3 / 5. ``--rerank M``: only the M nearest chunks by their own
cosine re-scored, as the store does (``knowledge/windows.py``, shipped: mean, 24 words, 200).
Give it a knowledge base built with ``--windows 0``: the chunks' own stored vectors are read.

    .venv/bin/python eval/subchunk_dense.py eval/data/manuals/manuals.qa.jsonl \\
        runs/kb-manuals-pdf-runin dev --words 40
    .venv/bin/python eval/subchunk_dense.py eval/data/manuals-train/train.qa.jsonl \\
        runs/kb-manuals-train train --words 24 --rerank 200 400
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from heading_bm25 import CANDIDATES, Bm25, answerable, arguments  # noqa: E402
from knowledge.bm25 import terms, tokens  # noqa: E402
from knowledge.kb import KnowledgeBase  # noqa: E402
from knowledge.windows import windows  # noqa: E402
from rag.evaluation.metrics import answer_in_text  # noqa: E402
from rag.retrieval import rrf  # noqa: E402


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--words", type=int, nargs="+", default=[40])
    ap.add_argument("--rerank", type=int, nargs="*", default=[],
                    help="also: only the best M chunks by their own cosine re-scored")
    a = ap.parse_args()
    questions = answerable(a)
    with KnowledgeBase.open(a.kb) as kb:
        rows = kb.store.conn.execute(
            "SELECT c.id, c.text, c.heading FROM chunks c ORDER BY c.id").fetchall()
        ids = [r[0] for r in rows]
        text = {r[0]: r[1] for r in rows}
        emb = kb.embedder
        qv = emb.encode_queries([q.question for q in questions])
        found, stored = kb.store.vectors(ids)  # the chunks' own stored vectors
        at = {int(i): j for j, i in enumerate(found)}
        cv = stored[[at[i] for i in ids]]
        index = Bm25([tokens(r[1]) + tokens(r[2].replace(" > ", " ")) for r in rows])
        lex = [[(s, ids[i]) for s, i in index.search(terms(q.question), CANDIDATES)]
               for q in questions]
        base = qv @ cv.T
        variants = {"chunk (shipped)": base}
        for w in a.words:
            subs, owner = [], []
            for j, r in enumerate(rows):
                for s in windows(r[1], w):
                    subs.append(s)
                    owner.append(j)
            print(f"words {w}: {len(subs)} windows over {len(rows)} chunks", flush=True)
            sv = emb.encode(subs) if subs else np.zeros((0, cv.shape[1]), np.float32)
            ss = qv @ sv.T
            best = base.copy()
            owner_a = np.array(owner)
            for col in range(len(subs)):
                np.maximum(best[:, owner_a[col]], ss[:, col], out=best[:, owner_a[col]])
            variants[f"max(chunk, windows of {w})"] = best
            variants[f"mean(chunk, best window {w})"] = (base + best) / 2
            for m in a.rerank:  # as a store would: re-score the M nearest chunks only
                top = np.argsort(-base, axis=1, kind="stable")[:, :m]
                for name, full in ((f"max {w} rerank {m}", best),
                                   (f"mean {w} rerank {m}", (base + best) / 2)):
                    part = np.full_like(base, -9.0)
                    np.put_along_axis(part, top, np.take_along_axis(full, top, 1), 1)
                    variants[name] = part
    n = len(questions)
    print(f"{n} answerable questions, {len(rows)} chunks")
    for name, sims in variants.items():
        hit = {("den", 3): 0, ("hyb", 3): 0, ("hyb", 5): 0}
        for qi, q in enumerate(questions):
            order = np.argsort(-sims[qi], kind="stable")[:CANDIDATES]
            dense = [(float(sims[qi, j]), ids[j]) for j in order]
            fused = rrf([dense, lex[qi]])
            hit[("den", 3)] += any(answer_in_text(q.answers, text[c]) for _, c in dense[:3])
            for k in (3, 5):
                hit[("hyb", k)] += any(answer_in_text(q.answers, text[c]) for _, c in fused[:k])
        print(f"{name:30} dense @3 {100 * hit[('den', 3)] / n:5.1f}   hybrid @3 "
              f"{100 * hit[('hyb', 3)] / n:5.1f} @5 {100 * hit[('hyb', 5)] / n:5.1f}", flush=True)


if __name__ == "__main__":
    main()
