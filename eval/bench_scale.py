"""Scale benchmark: knowledge bases of 100k, 1M and 10M chunks on one machine.

Steps (each writes JSON under --work; nothing large is committed)::

    .venv/bin/python eval/bench_scale.py real    # 100k chunks of real text, `rag index`
    .venv/bin/python eval/bench_scale.py kinds --sizes 100000,1000000   # FAISS kinds compared
    .venv/bin/python eval/bench_scale.py synth --size 1000000           # a KB of that size
    .venv/bin/python eval/bench_scale.py query --kb runs/scale/kb-1m    # latency, RSS, recall
    .venv/bin/python eval/bench_scale.py bm25 --kb runs/scale/kb-1m     # BM25 and its peers
    .venv/bin/python eval/bench_scale.py update --kb runs/scale/kb-1m   # add/delete 1,000
    .venv/bin/python eval/bench_scale.py fts5-copy --kb runs/scale/kb-1m --to runs/scale/kb-1m-fts5
    .venv/bin/python eval/bench_scale.py vs --kb runs/scale/kb-1m --old runs/scale/kb-1m-fts5
    /work/peers/bin/python eval/bench_scale.py peers --size 1000000     # LangChain FAISS, Chroma

- real: Python's own documentation (Debian's ``python3-doc``, the reST sources), the NQ
  paragraphs and the 48 SQuAD dev articles bundled here, indexed by ``rag index`` with
  64-token chunks, so about 100k chunks of real text with real MiniLM vectors.
- synth: chunk rows and vectors for 1M / 10M chunks, written through ``Store`` (the
  same tables, BM25 directories and FAISS generations as ``rag index``). Each vector is a real
  one of the 100k KB plus Gaussian noise, renormalised (cosine to its source ~0.85), and its
  text is its source chunk's text; so dense search, BM25, fetch and open all run at that
  row count on vectors distributed like real ones.
- queries: 200 NQ/SQuAD *test* questions embedded once by the KB's embedder; embedding is
  timed apart (``embed_ms``). Exact top-10 for recall comes from a brute-force pass.
- BM25: agreement is with exact BM25 (every document scored, exact lengths: ``ExactBm25``);
  ``bm25`` times the KB's BM25 against its peers, one query at a time, interleaved so that
  a shared machine's load falls on all alike: Tantivy scoring every match (no pruning), and
  SQLite FTS5 (what formats 1-4 used) over the same texts, exhaustive and with the query's
  common terms dropped (``--fts5``: built once beside the KB, ``fts5-<size>.sqlite``).
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYDOCS = Path("/usr/share/doc/python3.11-doc/html/_sources")
NQ_CORPUS = ROOT / "eval" / "data" / "nq-para-open.corpus.jsonl.gz"
SQUAD_CORPUS = ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz"
QASETS = [ROOT / "eval" / "data" / "squad-dev-open.qa.jsonl.gz",
          ROOT / "eval" / "data" / "nq-para-open.qa.jsonl.gz"]
NQUERIES, K = 200, 10
NOISE = 0.6  # norm of the Gaussian noise added to a unit vector (cosine to it ~0.85)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def save(work: Path, name: str, result: dict) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- real: ~100k chunks of real text --------------------------------------------------------

def cmd_real(a) -> None:
    src = a.work / "src-100k"
    if not src.exists():
        if not PYDOCS.is_dir():
            sys.exit(f"{PYDOCS} is missing: `apt-get install python3-doc` (Debian) first")
        shutil.copytree(PYDOCS, src / "python-docs", symlinks=False)
        shutil.copy(NQ_CORPUS, src / NQ_CORPUS.name)
        shutil.copy(SQUAD_CORPUS, src / "squad-dev-articles.jsonl.gz")
    kb = a.work / "kb-100k"
    cmd = [str(ROOT / ".venv" / "bin" / "rag"), "index", str(src), "--kb", str(kb),
           "--chunk-size", "64", "--chunk-overlap", "8", "--json"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    report = json.loads(out.stdout)
    save(a.work, "build-100k", {"command": " ".join(cmd), "seconds": round(seconds, 1),
                                "peak_rss_mb": round(children_peak_rss_mb()),
                                "disk_mb": round(dir_mb(kb)), "report": report})


# -- shared: base vectors, synthetic vectors, queries, exact neighbours ---------------------

def base_kb(work: Path) -> Path:
    kb = work / "kb-100k"
    if not (kb / "kb.sqlite").exists():
        sys.exit(f"{kb} is missing: run `eval/bench_scale.py real` first")
    return kb


def load_base(work: Path) -> tuple[np.ndarray, list[str], dict]:
    """Vectors and texts of the real 100k KB (the source of the synthetic ones), cached as
    plain files that the peers' environment reads too."""
    cache = work / "base.npz"
    if not cache.exists():
        from knowledge.store import Store

        with Store.open(base_kb(work)) as store:
            _, vecs = store.all_vectors()
            texts = [t for _, t in store.conn.execute("SELECT id, text FROM chunks ORDER BY id")]
            manifest = dict(store.manifest)
        np.savez(cache, vecs=vecs, texts=np.array(texts, dtype=object).astype(str),
                 manifest=json.dumps(manifest))
    d = np.load(cache)
    return d["vecs"], d["texts"].tolist(), json.loads(str(d["manifest"]))


def synth_vectors(base: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Vectors ``start..stop`` of the synthetic stream: base[i % len(base)] plus noise
    (the first len(base) are the real vectors themselves), renormalised; deterministic."""
    rng = np.random.default_rng(start)
    idx = np.arange(start, stop) % len(base)
    v = base[idx].copy()
    noisy = np.arange(start, stop) >= len(base)
    v[noisy] += rng.standard_normal((int(noisy.sum()), base.shape[1]), dtype=np.float32) * (
        NOISE / np.sqrt(base.shape[1]))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def queries(work: Path) -> tuple[list[str], np.ndarray]:
    """NQUERIES test questions (half SQuAD, half NQ) and their embeddings, cached."""
    cache = work / "queries.json"
    if cache.exists():
        d = json.loads(cache.read_text())
        return d["questions"], np.array(d["vectors"], dtype=np.float32)
    from knowledge.embedding import Embedder

    questions = []
    for path in QASETS:
        with gzip.open(path, "rt") as f:
            rows = [json.loads(line) for line in f]
        test = [r["question"] for r in rows if r.get("split", "test") == "test"]
        questions += test[: NQUERIES // len(QASETS)]
    vecs = Embedder.load().encode_queries(questions)
    work.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"questions": questions, "vectors": vecs.tolist()}))
    return questions, vecs


class TopK:
    """Exact top-K of the queries over vectors streamed in batches (brute force), with a few
    more kept so that ties at the K-th score can be told apart from misses."""

    def __init__(self, q: np.ndarray, k: int = K + 10):
        self.q, self.k = q, k
        self.scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        self.ids = np.full((len(q), k), -1, dtype=np.int64)

    def update(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        s = self.q @ vecs.T
        all_s = np.concatenate([self.scores, s], axis=1)
        all_i = np.concatenate([self.ids, np.broadcast_to(ids, s.shape)], axis=1)
        top = np.argsort(-all_s, axis=1, kind="stable")[:, :self.k]
        self.scores = np.take_along_axis(all_s, top, 1)
        self.ids = np.take_along_axis(all_i, top, 1)

    def tied(self) -> list[list[int]]:
        """Per query, the ids scoring at least its K-th best (the true top-K, and ties)."""
        return [ids[s >= s[K - 1] - 1e-6].tolist() for ids, s in zip(self.ids, self.scores)]


def recall(got: list[list[int]], exact: list[list[int]]) -> float:
    """Recall@K against exact search (a result tied with the K-th exact score counts)."""
    return float(np.mean([len(set(g[:K]) & set(e)) / K for g, e in zip(got, exact)]))


def timed(fn, reps: list) -> list[float]:
    out = []
    for r in reps:
        t = time.perf_counter()
        fn(r)
        out.append((time.perf_counter() - t) * 1000)
    return out


def lat(ms: list[float]) -> dict:
    return {"p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2)}


def interleaved(methods: dict, n: int) -> dict:
    """Latency of each method over queries 0..n-1, the methods taken in turn for each query
    (so that the load of a shared machine falls on all of them alike); one warm-up each."""
    for fn in methods.values():
        fn(0)
    ms = {name: [] for name in methods}
    for i in range(n):
        for name, fn in methods.items():
            t = time.perf_counter()
            fn(i)
            ms[name].append((time.perf_counter() - t) * 1000)
    return {name: lat(values) for name, values in ms.items()}


# -- kinds: FAISS index kinds side by side on the same vectors ------------------------------

def cmd_kinds(a) -> None:
    from knowledge.vector_index import VectorIndex, nlist_for

    base, _, _ = load_base(a.work)
    _, q = queries(a.work)
    results = []
    for n in [int(x) for x in a.sizes.split(",")]:
        vecs = synth_vectors(base, 0, n)
        ids = np.arange(1, n + 1, dtype=np.int64)
        exact = TopK(q)
        for lo in range(0, n, 200_000):
            exact.update(ids[lo:lo + 200_000], vecs[lo:lo + 200_000])
        for kind in a.kinds.split(","):
            if kind == "hnsw" and n > a.hnsw_max:
                continue
            t = time.perf_counter()
            ix = VectorIndex.build(kind, vecs.shape[1], ids, vecs)
            build_s = time.perf_counter() - t
            size_mb = len(ix.to_bytes()) / 2**20
            settings = ([None] if kind == "flat" else [16, 32, 64, 128] if kind == "hnsw"
                        else sorted({8, 16, 32, 64, 128, max(1, nlist_for(n) // 10)}))
            for setting in settings:
                if kind == "hnsw":
                    import faiss
                    faiss.downcast_index(ix.index.index).hnsw.efSearch = setting
                elif kind != "flat":
                    ix.index.nprobe = setting
                want = 100 if ix.compressed else K

                def one(i):
                    _, got = ix.search(q[i:i + 1], want)
                    if ix.compressed:  # exact re-score (the KB reads these from SQLite)
                        g = got[0][got[0] >= 0]
                        return g[np.argsort(-(vecs[g - 1] @ q[i]), kind="stable")][:K]
                    return got[0]
                got = [one(i).tolist() for i in range(len(q))]
                ms = timed(one, range(len(q)))
                row = {"n": n, "kind": kind, "setting": setting, "build_s": round(build_s, 1),
                       "index_mb": round(size_mb, 1), "recall@10": round(recall(got, exact.tied()), 3),
                       **lat(ms)}
                if setting == settings[-1] or kind == "flat":
                    if ix.can_remove:
                        t = time.perf_counter()
                        ix.remove(ids[:1000])
                        row["remove_1000_ms"] = round((time.perf_counter() - t) * 1000, 1)
                        t = time.perf_counter()
                        ix.add(ids[:1000], vecs[:1000])
                        row["add_1000_ms"] = round((time.perf_counter() - t) * 1000, 1)
                print(json.dumps(row), flush=True)
                results.append(row)
            del ix
        del vecs
    save(a.work, "kinds", {"command": " ".join(sys.argv), "rows": results})


# -- synth: a KB of N chunks written through Store -------------------------------------------

def cmd_synth(a) -> None:
    from knowledge.store import Store
    from knowledge.vector_index import VectorIndex, choose_kind

    n = a.size
    kb = a.work / f"kb-{label(n)}"
    if kb.exists():
        shutil.rmtree(kb)
    base, texts, manifest = load_base(a.work)
    _, q = queries(a.work)
    dim = base.shape[1]
    static = {k: manifest[k] for k in ("embedder", "dim", "metric", "normalized", "chunker")}
    static["index"] = {"kind": "flat", "requested": "auto"}
    kind = a.kind if a.kind != "auto" else choose_kind("auto", n)
    t0 = time.perf_counter()
    exact = TopK(q)
    with Store.open_for_write(kb, static) as store:
        store.begin()
        conn = store.conn
        sample = synth_vectors(base, 0, min(n, 200_000))  # (what VectorIndex trains on)
        index = VectorIndex.empty(kind, dim, n, sample)
        now = time.time()
        per_doc, per_file = 100, 100_000
        bm25_s = 0.0
        for lo in range(0, n, a.batch):
            hi = min(n, lo + a.batch)
            vecs = synth_vectors(base, lo, hi)
            ids = np.arange(lo + 1, hi + 1, dtype=np.int64)
            for f in range(lo // per_file, (hi - 1) // per_file + 1):
                conn.execute("INSERT OR IGNORE INTO files(id, root, path, size, mtime_ns, "
                             "sha256) VALUES (?, ?, ?, 0, 0, '')",
                             (f + 1, "synthetic", f"part-{f:05d}.jsonl"))
            docs = range(lo // per_doc, (hi - 1) // per_doc + 1)
            conn.executemany(
                "INSERT OR IGNORE INTO documents(id, doc_id, file_id, title, metadata, text, "
                "content_hash, page_starts, indexed_at, script) VALUES "
                "(?, ?, ?, '', '{}', '', '', '[]', ?, 'Latn')",
                [(d + 1, f"part-{d * per_doc // per_file:05d}.jsonl#{d}",
                  d * per_doc // per_file + 1, now) for d in docs])
            conn.executemany(
                'INSERT INTO chunks(id, document_id, ord, text, start, "end", page, heading, '
                "vector) VALUES (?, ?, ?, ?, 0, ?, NULL, '', ?)",
                [(int(i), (int(i) - 1) // per_doc + 1, (int(i) - 1) % per_doc,
                  texts[(int(i) - 1) % len(texts)], len(texts[(int(i) - 1) % len(texts)]),
                  vecs[j].tobytes()) for j, i in enumerate(ids)])
            index.add(ids, vecs)
            exact.update(ids, vecs)
            t = time.perf_counter()
            store.flush_bm25()  # (the batch's texts into the BM25 directory, still cached)
            bm25_s += time.perf_counter() - t
            print(f"{hi:,} chunks, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        t = time.perf_counter()
        store.commit(index)
        commit_s = time.perf_counter() - t
    seconds = time.perf_counter() - t0
    save_exact(a.work, label(n), exact)
    save(a.work, f"build-{label(n)}", {
        "command": " ".join(sys.argv), "n": n, "kind": kind, "seconds": round(seconds, 1),
        "bm25_add_s": round(bm25_s, 1), "commit_s": round(commit_s, 1),
        "peak_rss_mb": round(peak_rss_mb()), "disk_mb": round(dir_mb(kb)),
        "files_mb": {p.name: round(dir_mb(p) if p.is_dir() else p.stat().st_size / 2**20, 1)
                     for p in kb.iterdir()}})


def label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


def save_exact(work: Path, name: str, exact: TopK) -> None:
    (work / f"exact-{name}.json").write_text(json.dumps(exact.tied()))


def exact_for(work: Path, kb: Path) -> list[list[int]]:
    """Exact top-10 ids (and ties) of the queries in ``kb`` (computed at build; for the real
    KB, now, in a child process so that the vectors loaded do not count in this one's RSS)."""
    name = kb.name.removeprefix("kb-")
    path = work / f"exact-{name}.json"
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--work", str(work), "exact", "--kb", str(kb)],
                       check=True)
    return json.loads(path.read_text())


def cmd_exact(a) -> None:
    from knowledge.store import Store

    _, q = queries(a.work)
    with Store.open(a.kb) as store:
        ids, vecs = store.all_vectors()
    top = TopK(q)
    top.update(ids, vecs)
    save_exact(a.work, a.kb.name.removeprefix("kb-"), top)


# -- BM25: exact scores, and the peers ---------------------------------------------------------

class ExactBm25:
    """Exhaustive BM25 (Lucene's formula, as Tantivy's, with exact lengths) over the first
    ``n`` chunks of the synthetic stream: chunk i + 1 holds base text i % B, so a score is a
    base text's and it counts as many times as the text has copies. Only the queries' terms
    are indexed."""

    K1, B = 1.2, 0.75

    def __init__(self, texts: list[str], n: int, query_terms: list[list[str]]):
        from knowledge import bm25

        self.base = len(texts)
        self.copies = np.zeros(self.base, np.int64)
        self.copies[:min(n, self.base)] = n // self.base
        self.copies[:n % self.base] += 1
        vocab = {t for terms in query_terms for t in terms}
        self.lengths = np.zeros(self.base)
        posts: dict[str, tuple[list, list]] = {t: ([], []) for t in vocab}
        for j, text in enumerate(texts):
            toks = bm25.tokens(text)
            self.lengths[j] = len(toks)
            for t, c in Counter(x for x in toks if x in vocab).items():
                posts[t][0].append(j)
                posts[t][1].append(c)
        self.n = n
        self.avgdl = float((self.copies * self.lengths).sum() / n)
        self.posts = {t: (np.array(js, np.int64), np.array(cs, np.float64))
                      for t, (js, cs) in posts.items()}

    def scores(self, terms: list[str]) -> np.ndarray:
        """The score of each base text (0: holds no term, or has no copy)."""
        out = np.zeros(self.base)
        norm = self.K1 * (1 - self.B + self.B * self.lengths / self.avgdl)
        for t in terms:
            js, tf = self.posts[t]
            df = self.copies[js].sum()
            idf = np.log(1 + (self.n - df + 0.5) / (df + 0.5))
            out[js] += idf * tf * (self.K1 + 1) / (tf + norm[js])
        out[self.copies == 0] = 0
        return out

    def agreement(self, got: list[int], terms: list[str], k: int = K) -> float | None:
        """The share of the exact top k found in ``got``'s first k (a chunk tied with the
        k-th exact score counts); None when no chunk holds a term."""
        s = self.scores(terms)
        order = np.argsort(-s, kind="stable")
        held = s[order] > 0
        cum = np.cumsum(self.copies[order][held])
        if len(cum) == 0:
            return None
        want = int(min(k, cum[-1]))
        kth = s[order][np.searchsorted(cum, want)]
        hits = sum(s[(cid - 1) % self.base] >= kth * (1 - 1e-6) and s[(cid - 1) % self.base] > 0
                   for cid in got[:k])
        return hits / want

    def mean_agreement(self, got: list[list[int]], questions: list[str]) -> float:
        """``agreement`` averaged over the questions where some chunk holds a term."""
        from knowledge import bm25

        values = [self.agreement(g, bm25.terms(q)) for g, q in zip(got, questions, strict=True)]
        return round(float(np.mean([v for v in values if v is not None])), 4)


def fts5_side(work: Path, n: int, texts: list[str]) -> sqlite3.Connection:
    """SQLite FTS5 over the same chunk texts (as formats 1-4 indexed them: ``lexical()``,
    unicode61), contentless, built once beside the KB: the peer that BM25 replaced."""
    from knowledge.lexical import lexical

    path = work / f"fts5-{label(n)}.sqlite"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        conn.execute("CREATE VIRTUAL TABLE f USING fts5(text, content='', "
                     "tokenize='unicode61 remove_diacritics 2')")
        for lo in range(0, n, 100_000):
            conn.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)",
                             [(i + 1, lexical(texts[i % len(texts)]))
                              for i in range(lo, min(n, lo + 100_000))])
            conn.commit()
        conn.execute("INSERT INTO f(f) VALUES ('optimize')")
        conn.commit()
        conn.close()
        tmp.rename(path)
        save(work, f"fts5-build-{label(n)}", {"n": n, "seconds": round(time.perf_counter() - t),
                                             "mb": round(path.stat().st_size / 2**20)})
    conn = sqlite3.connect(path)
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.fv USING fts5vocab(main, f, 'row')")
    return conn


def fts5_ids(conn, question: str, k: int, early: bool = False) -> list[int]:
    """FTS5's top k as formats 1-4 asked it (every row holding a term scored, then sorted);
    ``early``: the query's terms held by over 1 % of the rows dropped first (the rarest kept),
    the lever FTS5 offers to stop sooner."""
    from knowledge.kb import fts_query

    words = [w.strip('"') for w in fts_query(question).split(" OR ") if w]
    if early and words:
        n = conn.execute("SELECT count(*) FROM f").fetchone()[0]  # (cheap: the 'averages' row)
        df = {w: (conn.execute("SELECT doc FROM fv WHERE term = ?", (w,)).fetchone() or [0])[0]
              for w in words}
        words = [w for w in words if df[w] <= 0.01 * n] or [min(words, key=df.get)]
    if not words:
        return []
    match = " OR ".join(f'"{w}"' for w in words)
    return [r[0] for r in conn.execute(
        "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f), rowid LIMIT ?", (match, k))]


def cmd_bm25(a) -> None:
    """BM25 of the KB (Tantivy, pruned) against exhaustive Tantivy and FTS5, interleaved."""
    from knowledge import KnowledgeBase, bm25

    questions, _ = queries(a.work)
    _, texts, _ = load_base(a.work)
    kb = KnowledgeBase.open(a.kb)
    n = kb.stats()["chunks"]
    index = kb.bm25_index()
    terms = [bm25.terms(x) for x in questions]
    t = time.perf_counter()
    ref = ExactBm25(texts, n, terms)
    ref_s = time.perf_counter() - t
    got: dict[str, list] = {}

    def run(name, fn):  # (keeps each query's ids; the warm-up call is query 0)
        def call(i):
            ids = fn(i)
            if len(got.setdefault(name, [])) == i:
                got[name].append(ids)
        return call
    methods = {
        "tantivy_k10": run("tantivy_k10", lambda i: [c for _, c in kb.lexical_ids(questions[i], 10)]),
        "tantivy_k50": run("tantivy_k50", lambda i: [c for _, c in kb.lexical_ids(questions[i], 50)]),
        "tantivy_exhaustive_k10": run("tantivy_exhaustive_k10", lambda i: [
            c for _, c in index.search(terms[i], 10, prune=False)]),
        "tantivy_exhaustive_k50": run("tantivy_exhaustive_k50", lambda i: [
            c for _, c in index.search(terms[i], 50, prune=False)]),
    }
    if a.fts5:
        conn = fts5_side(a.work, n, texts)
        methods.update({
            "fts5_k10": run("fts5_k10", lambda i: fts5_ids(conn, questions[i], 10)),
            "fts5_k50": run("fts5_k50", lambda i: fts5_ids(conn, questions[i], 50)),
            "fts5_early_k10": run("fts5_early_k10", lambda i: fts5_ids(conn, questions[i], 10, True)),
        })
    out = {"kb": str(a.kb), "chunks": n, "exact_reference_s": round(ref_s, 1),
           "bm25_index_mb": round(dir_mb(index.path)), "segments": index.searcher.num_segments,
           "latency": interleaved(methods, len(questions))}
    out["agreement@10_vs_exact"] = {
        name: ref.mean_agreement(g, questions) for name, g in got.items() if name.endswith("k10")}
    if a.fts5:
        out["fts5_early_agreement@10_vs_fts5"] = round(float(np.mean([
            len(set(e) & set(f)) / max(1, len(f)) for e, f in
            zip(got["fts5_early_k10"], got["fts5_k10"]) if f])), 4)
        out["tantivy_overlap@10_with_fts5"] = round(float(np.mean([
            len(set(e) & set(f)) / max(1, len(f)) for e, f in
            zip(got["tantivy_k10"], got["fts5_k10"]) if f])), 4)
    out["rss_mb"] = round(rss_mb())
    save(a.work, f"bm25-{a.kb.name}", out)


# -- query: open, search, fetch in a fresh process --------------------------------------------

class Precomputed:
    """Stands in for the embedder: the query vectors were computed once beforehand."""

    def __init__(self, questions: list[str], vecs: np.ndarray):
        self.by_text = dict(zip(questions, vecs))

    def encode_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return np.stack([self.by_text[t] for t in texts])


def cmd_query(a) -> None:
    exact = exact_for(a.work, a.kb)
    questions, q = queries(a.work)
    from knowledge import KnowledgeBase
    from rag.retrieval import Retriever

    rss_imports = rss_mb()
    t = time.perf_counter()
    kb = KnowledgeBase.open(a.kb)
    open_ms = (time.perf_counter() - t) * 1000
    rss_open = rss_mb()
    kb._embedder = Precomputed(questions, q)
    n = kb.stats()["chunks"]

    def dense(i):
        with kb.snapshot():
            return kb.fetch(kb.dense_ids(q[i:i + 1], K)[0])

    def bm25(i):
        with kb.snapshot():
            return kb.fetch(kb.lexical_ids(questions[i], K))

    hybrid = Retriever(kb, "hybrid")

    out = {"kb": str(a.kb), "chunks": n, "kind": kb.store.index.kind, "open_ms": round(open_ms, 1),
           "rss_mb": {"python_and_imports": round(rss_imports), "after_open": round(rss_open)}}
    got = [[h.chunk_id for h in dense(i)] for i in range(len(q))]
    out["dense_recall@10_vs_exact"] = round(recall(got, exact), 3)
    if kb.bm25_index() is not None:  # (its agreement with exact BM25: the `bm25` step)
        out["bm25_index_mb"] = round(dir_mb(kb.store.lexical_index().path))
    import rag.retrieval

    def hybrid_with(parallel_from):  # (BM25 in a thread from that many chunks)
        def run(i):
            saved, rag.retrieval.PARALLEL_FROM = rag.retrieval.PARALLEL_FROM, parallel_from
            try:
                return hybrid.retrieve(questions[i], K)
            finally:
                rag.retrieval.PARALLEL_FROM = saved
        return run
    methods = {"dense": dense, "bm25": bm25,
               "hybrid": lambda i: hybrid.retrieve(questions[i], K),  # (as `rag ask` does)
               "hybrid_sequential": hybrid_with(2**62), "hybrid_parallel": hybrid_with(0)}
    out.update(interleaved(methods, len(q)))
    out["rss_mb"]["after_searches"] = round(rss_mb())
    out["rss_mb"]["peak_searching"] = round(peak_rss_mb())
    from knowledge.embedding import Embedder

    emb = Embedder.load()
    emb.encode_queries(questions[:2])
    out["embed_query"] = lat(timed(lambda i: emb.encode_queries([questions[i]]), range(50)))
    del emb
    out["rss_mb"]["peak_with_query_embedder"] = round(peak_rss_mb())
    save(a.work, f"query-{a.kb.name}", out)


def cmd_fts5_copy(a) -> None:
    """A copy of a KB as format 4 (main before Tantivy) stored it: FTS5 over ``lexical()``
    text with its triggers, chunk kinds and pages, no BM25 directory (for ``vs``)."""
    from knowledge import lexical
    from knowledge.store import PAGES_TABLE

    if a.to.exists():
        sys.exit(f"{a.to} exists; remove it first")
    shutil.copytree(a.kb, a.to, ignore=shutil.ignore_patterns("lexical.*", "write.lock"))
    t = time.perf_counter()
    conn = sqlite3.connect(a.to / "kb.sqlite")
    lexical.register(conn)
    if "kind" not in [r[1] for r in conn.execute("PRAGMA table_info(chunks)")]:
        conn.execute("ALTER TABLE chunks ADD COLUMN kind TEXT NOT NULL DEFAULT ''")
    conn.executescript(f"""{PAGES_TABLE};
        CREATE VIEW chunks_lexical AS SELECT id, lexical(text) AS text FROM chunks;
        CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks_lexical',
            content_rowid='id', tokenize='unicode61 remove_diacritics 2');
        CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
            INSERT INTO chunks_fts(rowid, text) VALUES (new.id, lexical(new.text)); END;
        CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN INSERT INTO
            chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, lexical(old.text)); END;
        INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');""")
    m = json.loads(conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()[0])
    m["format_version"] = 4
    m.pop("bm25", None)
    conn.execute("UPDATE meta SET value=? WHERE key='manifest'", (json.dumps(m, sort_keys=True),))
    conn.commit()
    conn.close()
    (a.to / "manifest.json").write_text(json.dumps(m))
    print(f"{a.to}: format 4, FTS5 built in {time.perf_counter() - t:.1f} s")


def cmd_vs(a) -> None:
    """Hybrid and BM25 over one KB at the current format (Tantivy) and a copy of it at an
    older one (FTS5, as main searched it), in one process, interleaved query by query."""
    questions, q = queries(a.work)
    from knowledge import KnowledgeBase
    from rag.retrieval import Retriever

    kbs = {"tantivy": KnowledgeBase.open(a.kb), "fts5": KnowledgeBase.open(a.old)}
    for name, kb in kbs.items():
        kb._embedder = Precomputed(questions, q)
        assert (kb.bm25_index() is None) == (name == "fts5"), f"{name}: wrong BM25 engine"
    methods = {}
    for name, kb in kbs.items():
        hybrid = Retriever(kb, "hybrid")
        methods[f"hybrid_{name}"] = lambda i, r=hybrid: r.retrieve(questions[i], K)
        methods[f"bm25_{name}"] = lambda i, kb=kb: kb.fetch(kb.lexical_ids(questions[i], K))
    top = {name: [[h.chunk_id for h in fn(i)] for i in range(len(q))]
           for name, fn in methods.items() if name.startswith("hybrid")}
    out = {"kb": str(a.kb), "old": str(a.old), "chunks": kbs["tantivy"].stats()["chunks"],
           "formats": {n: kb.manifest["format_version"] for n, kb in kbs.items()},
           "hybrid_overlap@10": round(float(np.mean([len(set(x) & set(y)) / K for x, y in zip(
               top["hybrid_tantivy"], top["hybrid_fts5"])])), 3)}
    out.update(interleaved(methods, len(q)))
    out["ratio_tantivy_over_fts5"] = {
        f"{what}_{p}": round(out[f"{what}_tantivy"][f"{p}_ms"] / out[f"{what}_fts5"][f"{p}_ms"], 2)
        for what in ("hybrid", "bm25") for p in ("p50", "p99")}
    save(a.work, f"vs-{a.kb.name}", out)


# -- update: add and delete 1,000 chunks through sync / delete_documents ---------------------

def cmd_update(a) -> None:
    from knowledge.embedding import Embedder
    from knowledge.sync import delete_documents, sync

    src = a.work / "update-src"
    src.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"u{i}", "text": f"Update note {i}: the quick brown fox number {i} jumps."}
            for i in range(1000)]
    (src / "update.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    from knowledge.chunking import ChunkerSettings

    chunker = json.loads((a.kb / "manifest.json").read_text())["chunker"]
    emb = Embedder.load()
    t = time.perf_counter()
    report = sync(a.kb, [src / "update.jsonl"], embedder=emb, log=lambda m: None,
                  chunking=ChunkerSettings.from_dict(chunker))
    add_s = time.perf_counter() - t
    t = time.perf_counter()
    delete_documents(a.kb, [f"update.jsonl#u{i}" for i in range(1000)])
    delete_s = time.perf_counter() - t
    save(a.work, f"update-{a.kb.name}", {
        "kb": str(a.kb), "add_1000_s": round(add_s, 2), "add_seconds": report.seconds,
        "chunks_added": report.chunks_added, "index_kind": report.index_kind,
        "delete_1000_s": round(delete_s, 2), "peak_rss_mb": round(peak_rss_mb())})


# -- peers: the same vectors in LangChain's FAISS store and in Chroma --------------------------

class GivenVectors:
    """LangChain's Embeddings interface over vectors computed beforehand."""

    def __init__(self, questions: list[str], vecs: np.ndarray):
        self.by_text = dict(zip(questions, vecs.tolist()))

    def embed_documents(self, texts):
        raise NotImplementedError

    def embed_query(self, text):
        return self.by_text[text]


def cmd_peers(a) -> None:
    """Run with the peers' environment (/work/peers: langchain-community, chromadb, faiss)."""
    n = a.size
    base, texts, _ = load_base(a.work)
    questions, q = queries(a.work)
    name = "100k" if n == len(base) else label(n)  # (the real KB: all its vectors)
    exact = json.loads((a.work / f"exact-{name}.json").read_text())  # (1-based positions)
    rows = []
    for peer in a.peers.split(","):
        rss0 = rss_mb()
        t = time.perf_counter()
        out = {"peer": peer, "n": n}
        try:
            search = build_peer(peer, n, base, texts, a.work, a.max_minutes)
        except TimeoutError as err:
            out.update(failed=str(err))
            rows.append(out)
            print(json.dumps(out), flush=True)
            continue
        out["build_s"] = round(time.perf_counter() - t, 1)
        out["rss_after_build_mb"] = round(rss_mb())
        out["rss_added_mb"] = round(rss_mb() - rss0)
        got = [search(q[i]) for i in range(len(q))]
        out["recall@10_vs_exact"] = round(recall(got, exact), 3)
        out.update(lat(timed(lambda i: search(q[i]), range(len(q)))))
        out["peak_rss_mb"] = round(peak_rss_mb())
        if (a.work / f"chroma-{label(n)}").exists() and peer == "chroma":
            out["disk_mb"] = round(dir_mb(a.work / f"chroma-{label(n)}"))
        rows.append(out)
        print(json.dumps(out), flush=True)
        del search
    save(a.work, f"peers-{name}-{a.peers.replace(',', '+')}", {"command": " ".join(sys.argv), "rows": rows})


def build_peer(peer: str, n: int, base, texts, work: Path, max_minutes: float):
    """Load n vectors into the peer; a search function returning 1-based stream positions."""
    deadline = time.perf_counter() + 60 * max_minutes
    batch = 5000
    if peer == "langchain-faiss":
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        store = None
        for lo in range(0, n, 100_000):
            hi = min(n, lo + 100_000)
            vecs = synth_vectors(base, lo, hi)
            pairs = [(texts[i % len(texts)], v) for i, v in zip(range(lo, hi), vecs.tolist())]
            metas = [{"i": i + 1} for i in range(lo, hi)]
            kw = dict(metadatas=metas)
            if store is None:
                store = FAISS.from_embeddings(pairs, GivenVectors([], np.zeros((0, 1))),
                                              distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
                                              **kw)
            else:
                store.add_embeddings(pairs, **kw)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"stopped after {hi:,} vectors: over {max_minutes} min")
        return lambda v: [d.metadata["i"] for d in store.similarity_search_by_vector(
            v.tolist(), k=K)]
    if peer == "chroma":
        import chromadb

        path = work / f"chroma-{label(n)}"
        shutil.rmtree(path, ignore_errors=True)
        client = chromadb.PersistentClient(path=str(path))
        col = client.create_collection("bench", metadata={"hnsw:space": "ip"})
        for lo in range(0, n, batch):
            hi = min(n, lo + batch)
            col.add(ids=[str(i + 1) for i in range(lo, hi)],
                    embeddings=synth_vectors(base, lo, hi),
                    documents=[texts[i % len(texts)] for i in range(lo, hi)])
            if time.perf_counter() > deadline:
                raise TimeoutError(f"stopped after {hi:,} vectors: over {max_minutes} min "
                                   f"({hi / (60 * max_minutes):.0f} vectors/s)")
        return lambda v: [int(i) for i in col.query(query_embeddings=[v], n_results=K)["ids"][0]]
    raise SystemExit(f"unknown peer {peer!r}")


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()) / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "scale")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("real")
    k = sub.add_parser("kinds")
    k.add_argument("--sizes", default="100000,1000000")
    k.add_argument("--kinds", default="flat,ivfsq8,ivfpq,hnsw")
    k.add_argument("--hnsw-max", type=int, default=1_000_000)
    s = sub.add_parser("synth")
    s.add_argument("--size", type=int, required=True)
    s.add_argument("--kind", default="auto")
    s.add_argument("--batch", type=int, default=100_000)
    for name in ("query", "update", "exact"):
        sub.add_parser(name).add_argument("--kb", type=Path, required=True)
    b = sub.add_parser("bm25")
    b.add_argument("--kb", type=Path, required=True)
    b.add_argument("--fts5", action="store_true", help="also FTS5 over the same texts "
                   "(built once beside the KB)")
    f = sub.add_parser("fts5-copy")
    f.add_argument("--kb", type=Path, required=True)
    f.add_argument("--to", type=Path, required=True)
    v = sub.add_parser("vs")
    v.add_argument("--kb", type=Path, required=True, help="a KB of the current format")
    v.add_argument("--old", type=Path, required=True, help="a copy at format 4 (FTS5)")
    pe = sub.add_parser("peers")
    pe.add_argument("--size", type=int, required=True)
    pe.add_argument("--peers", default="langchain-faiss,chroma")
    pe.add_argument("--max-minutes", type=float, default=20)
    a = p.parse_args()
    {"real": cmd_real, "kinds": cmd_kinds, "synth": cmd_synth, "query": cmd_query,
     "update": cmd_update, "peers": cmd_peers, "exact": cmd_exact, "bm25": cmd_bm25,
     "fts5-copy": cmd_fts5_copy, "vs": cmd_vs}[a.cmd](a)


if __name__ == "__main__":
    main()
