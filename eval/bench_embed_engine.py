"""Indexing's encoder before and after issue 26, in one process, alternating: rag's Embedder
over its plain-torch BERT (knowledge/plain_encoder.py, shipped) against the same Embedder
over sentence-transformers (the path before), in the order A B B A A B ... (``--bare``:
bare ``SentenceTransformer.encode`` too); chunks/s, and the largest difference between
their vectors.

    .venv/bin/python eval/bench_embed_engine.py [KB] [--rounds 4]   (default runs/kb)

Every third chunk of the KB, MiniLM in bf16, batches of 16 (eval/RESULTS.md, "Cold start").
"""
import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sentence_transformers import SentenceTransformer  # noqa: E402

from knowledge.embedding import Embedder, resolve_model  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("kb", nargs="?", default="runs/kb")
p.add_argument("--rounds", type=int, default=4)
p.add_argument("--bare", action="store_true", help="also bare SentenceTransformer.encode")
args = p.parse_args()
conn = sqlite3.connect(Path(args.kb) / "kb.sqlite")
texts = [t for (t,) in conn.execute("SELECT text FROM chunks WHERE id % 3 = 0")]
model_dir = resolve_model("all-MiniLM-L6-v2")
st = SentenceTransformer(str(model_dir), device="cpu").to(torch.bfloat16)
plain = Embedder.load(precision="bf16")
old = Embedder(plain.name, st, model_dir, "bf16")  # the Embedder of before, over s-t
assert type(plain.model).__name__ == "PlainEncoder"
cands = {"rag, plain BERT (shipped)": lambda: plain.encode(texts),
         "rag over sentence-transformers (before)": lambda: old.encode(texts)}
if args.bare:
    cands["bare SentenceTransformer.encode"] = lambda: st.encode(texts, batch_size=16)
plain.encode(texts[:64]), old.encode(texts[:64]), st.encode(texts[:64])  # (warm-up)
res, vecs = {k: [] for k in cands}, {}
for rep in range(args.rounds):
    for k, f in list(cands.items())[::-1 if rep % 2 else 1]:  # (order drift cancels)
        t = time.perf_counter()
        vecs[k] = np.asarray(f(), dtype=np.float32)
        res[k].append(round(len(texts) / (time.perf_counter() - t), 1))
        print(rep, k, res[k][-1], flush=True)
new, before = vecs["rag, plain BERT (shipped)"], vecs["rag over sentence-transformers (before)"]
ratios = [a / b for a, b in zip(res["rag, plain BERT (shipped)"],
                                res["rag over sentence-transformers (before)"])]
print(json.dumps({"chunks": len(texts), "chunks_per_s": res,
                  "speed_new_over_before": [round(r, 3) for r in ratios],
                  "max_abs_diff_new_vs_before": float(np.abs(new - before).max())}))
