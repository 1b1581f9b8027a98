"""Other dense lists beside the shipped retrieval, offline: the answer in the top 1 / 3 / 5.

Reporting only. Over a knowledge base as built (MiniLM with windows, BM25), for the answerable
questions of a QA set: the shipped fusion (dense + BM25, `rag.retrieval.rrf`), and
- ``--feedback B ...``: dense pseudo-relevance feedback, the question's vector plus B times the
  mean of its top 3 chunks' stored vectors (normalised), through the real hybrid retriever;
- ``--model DIR``: a second sentence-transformers model (e.g. all-mpnet-base-v2, assembled from
  its PyPI parts) over every chunk, alone, fused with both shipped lists, and with BM25 alone.
  Its chunk vectors are cached in ``--cache`` (.npy; encoding is the slow part).

    .venv/bin/python eval/dense_lists.py --kb runs/kb-manuals-pdf-win --splits dev,test \
        --feedback 0.3 0.6 1.0
    .venv/bin/python eval/dense_lists.py --kb runs/kb-manuals-pdf-win --splits dev,test \
        --model /tmp/mpnet/model/all-mpnet-base-v2 --cache runs/mpnet-pdf.npy
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def at_ranks(hits, answers) -> list[bool]:
    from rag.evaluation.metrics import answer_in_text

    rank = next((j + 1 for j, h in enumerate(hits) if answer_in_text(answers, h.text)), None)
    return [bool(rank and rank <= k) for k in (1, 3, 5)]


def main() -> None:
    from knowledge import bm25
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.qa import load_qaset
    from rag.retrieval import Retriever, content_first, rrf

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", required=True)
    ap.add_argument("--qaset", default="eval/data/manuals/manuals.qa.jsonl")
    ap.add_argument("--splits", default="dev")
    ap.add_argument("--feedback", nargs="*", type=float, default=[])
    ap.add_argument("--model", help="a sentence-transformers model directory")
    ap.add_argument("--cache", help="its chunk vectors (.npy), written on the first run")
    a = ap.parse_args()
    with KnowledgeBase.open(a.kb) as kb:
        rows = kb.store.conn.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
        ids = np.array([r[0] for r in rows])
        other = vectors = None
        if a.model:
            import torch
            from sentence_transformers import SentenceTransformer

            other = SentenceTransformer(a.model, device="cpu")
            other.max_seq_length = 256
            if a.cache and os.path.exists(a.cache):
                vectors = np.load(a.cache)
            else:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    vectors = other.encode([r[1] for r in rows], batch_size=32,
                                           normalize_embeddings=True).astype(np.float32)
                if a.cache:
                    np.save(a.cache, vectors)
        index = kb.bm25_index()
        for split in a.splits.split(","):
            qs = [q for q in load_qaset(a.qaset, split) if q.answers]
            texts = [q.question for q in qs]
            base = kb.embedder.encode_queries(texts)
            dense, _ = kb.dense_search(base, 60)
            lexical = [index.search(bm25.terms(t), 60, None) for t in texts]
            lists = {"shipped": lambda i: [dense[i], lexical[i]]}
            if other is not None:
                q2 = other.encode(texts, normalize_embeddings=True)

                def second(i):
                    scores = vectors @ q2[i]
                    return [(float(scores[j]), int(ids[j])) for j in np.argsort(-scores)[:60]]
                lists.update({"model alone": lambda i: [second(i)],
                              "shipped + model": lambda i: [dense[i], lexical[i], second(i)],
                              "model + BM25": lambda i: [second(i), lexical[i]]})
            for name, make in lists.items():
                got = []
                for i, q in enumerate(qs):
                    ls = make(i)
                    pairs = rrf(ls)[:8] if len(ls) > 1 else ls[0][:8]
                    got.append(at_ranks(content_first(kb.fetch(pairs), 5), list(q.answers)))
                print(f"{split} {name:16} " + "  ".join(
                    f"@{k} {100 * np.mean([g[c] for g in got]):.1f}"
                    for c, k in enumerate((1, 3, 5))), flush=True)
            first, _ = kb.dense_search(base, 3)
            mean = np.asarray([kb.store.vectors([i for _, i in row])[1].mean(0)
                               for row in first], dtype=np.float32)
            retriever, encode = Retriever(kb, "hybrid"), kb.embedder.encode_queries
            for beta in a.feedback:
                v = base + beta * mean
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                kb.embedder.encode_queries = lambda _texts, v=v: v
                found = retriever.search_many(texts, 5, None).hits
                kb.embedder.encode_queries = encode
                got = [at_ranks(h, list(q.answers)) for q, h in zip(qs, found)]
                print(f"{split} feedback {beta:<7g} " + "  ".join(
                    f"@{k} {100 * np.mean([g[c] for g in got]):.1f}"
                    for c, k in enumerate((1, 3, 5))), flush=True)


if __name__ == "__main__":
    main()
