"""How rag embeds chunks, measured in one process, alternating: bare
SentenceTransformer.encode against rag's Embedder.encode (one batch at a time over all torch
threads, or several at once on one thread each), batches of 16, 32 and 64; chunks/s.

    .venv/bin/python eval/bench_embed_batch.py [KB]      (default runs/kb-squad; ~4 minutes)

Every third chunk of the KB, MiniLM in bf16 (eval/RESULTS.md, "Ingestion speed").
"""
import json
import sqlite3
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sentence_transformers import SentenceTransformer  # noqa: E402

from knowledge.embedding import Embedder, resolve_model  # noqa: E402

kb = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/kb-squad")
conn = sqlite3.connect(kb / "kb.sqlite")
texts = [t for (t,) in conn.execute("SELECT text FROM chunks WHERE id % 3 = 0")]
e = Embedder.load(precision="bf16")
st = SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2")), device="cpu").to(torch.bfloat16)
e.encode(texts[:64])  # (warm-up)
st.encode(texts[:64])


def serial(bs):
    """One batch at a time over all threads: rag's path where torch has one thread."""
    real = torch.get_num_threads
    torch.get_num_threads = lambda: 1
    try:
        return e.encode(texts, batch_size=bs)
    finally:
        torch.get_num_threads = real


cands = {
    "bare ST bs16": lambda: st.encode(texts, batch_size=16),
    "bare ST bs64": lambda: st.encode(texts, batch_size=64),
    "rag one at a time bs16": lambda: serial(16),
    "rag one at a time bs64": lambda: serial(64),
    "rag two at once bs16": lambda: e.encode(texts, batch_size=16),
    "rag two at once bs32": lambda: e.encode(texts, batch_size=32),
    "rag two at once bs64": lambda: e.encode(texts, batch_size=64),
}
res = {k: [] for k in cands}
for rep in range(2):
    for k, f in cands.items():
        t = time.perf_counter()
        f()
        res[k].append(round(len(texts) / (time.perf_counter() - t), 1))
        print(rep, k, res[k][-1], flush=True)
print(json.dumps(res))
