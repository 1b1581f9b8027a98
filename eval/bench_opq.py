"""IVF-PQ with and without an OPQ rotation on N synthetic vectors (the ~19k real MiniLM
vectors of runs/kb-squad and runs/kb-nq plus noise, as eval/bench_scale.py synthesises):
recall@10 of exact search, raw and with the best 200 re-scored exactly, 300 test questions.

    .venv/bin/python eval/bench_opq.py 200000      (~8 minutes on 2 cores)
"""
import gzip
import json
import sys
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "eval")]
from bench_scale import synth_vectors  # noqa: E402

from knowledge.embedding import Embedder  # noqa: E402
from knowledge.store import Store  # noqa: E402
from knowledge.vector_index import TRAIN_SAMPLE, nlist_for, nprobe_for  # noqa: E402

faiss.omp_set_num_threads(1)
base = np.concatenate([Store.open(ROOT / "runs" / kb).all_vectors()[1]
                       for kb in ("kb-squad", "kb-nq")])
N = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
X = np.concatenate([synth_vectors(base, s, min(s + 100_000, N)) for s in range(0, N, 100_000)])
qs = []
for p in ("eval/data/squad-dev-open.qa.jsonl.gz", "eval/data/nq-para-open.qa.jsonl.gz"):
    rows = [json.loads(line) for line in gzip.open(ROOT / p, "rt")]
    qs += [r["question"] for r in rows if r.get("split", "test") == "test"][:150]
Q = Embedder.load().encode_queries(qs)
exact = faiss.IndexFlatIP(384)
exact.add(X)
_, gt = exact.search(Q, 10)
nlist, nprobe = nlist_for(N), nprobe_for(nlist_for(N))
sample = X[np.random.default_rng(0).choice(N, min(TRAIN_SAMPLE, N), replace=False)]
print("N", N, "base", len(base), "nlist", nlist, "nprobe", nprobe, "train", len(sample), flush=True)
for name, spec in (("ivfpq", f"IVF{nlist},PQ48"), ("opq+ivfpq", f"OPQ48,IVF{nlist},PQ48")):
    t = time.time()
    idx = faiss.index_factory(384, spec, faiss.METRIC_INNER_PRODUCT)
    idx.train(sample)
    idx.add(X)
    faiss.extract_index_ivf(idx).nprobe = nprobe
    build = time.time() - t
    for R in (10, 200):
        t = time.time()
        _, I = idx.search(Q, R)
        ms = (time.time() - t) / len(Q) * 1000
        if R > 10:
            I = np.array([row[np.argsort(-(X[row] @ q))][:10] for row, q in zip(I, Q)])
        rec = np.mean([len(set(a[:10]) & set(b)) / 10 for a, b in zip(I, gt)])
        print(f"{name:10s} build {build:.0f}s  candidates {R:3d}  recall@10 {rec:.3f}  "
              f"search {ms:.1f} ms", flush=True)
