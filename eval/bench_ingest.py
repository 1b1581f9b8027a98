"""Ingestion benchmark: rag's incremental sync against the usual LangChain pipeline and
against bare encoding, on the bundled corpus (48 SQuAD dev articles), in one process.

Command recorded in eval/RESULTS.md (about 6 minutes per repeat on 2 idle cores)::

    .venv/bin/python eval/bench_ingest.py --json --repeat 2 \
        --recall-questions /tmp/bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json

Quick check: ``.venv/bin/python eval/bench_ingest.py --limit-docs 5``.

Measured, each from reading the corpus file to a searchable index, models loaded and
warmed up beforehand:

- rag: ``knowledge.sync.sync`` into a fresh KB with the default settings (precision auto);
- langchain: JSONL -> Documents -> RecursiveCharacterTextSplitter.from_huggingface_tokenizer
  (200/30 tokens) -> HuggingFaceEmbeddings (same packaged model) -> FAISS.from_documents;
- encode: ``SentenceTransformer.encode`` of exactly the chunk texts rag stored, fp32 as
  shipped and cast to bf16 -- the lower bound no pipeline can beat;
- re-index: one article changed, and nothing changed, on an existing KB.

With ``--repeat N`` times are medians and each ratio is the median of the N per-repeat
ratios (robust to load from other processes drifting over the minutes a run takes).

Needs ``langchain-community langchain-huggingface`` in the venv (see eval/RESULTS.md).
"""
from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz"
MODEL = "all-MiniLM-L6-v2"
CHUNK_SIZE, CHUNK_OVERLAP = 200, 30  # the project's defaults (ChunkerSettings)
RECALL_SAMPLE, RECALL_SEED, RECALL_K = 300, 0, 5
WARMUP_DOCS = 2  # enough to run every code path once (imports, kernels, SQLite, FAISS)
RATIOS = [("speedup_vs_langchain", "langchain_s", "rag_s"),
          ("overhead_vs_encode", "rag_s", "encode_s"),
          ("overhead_vs_encode_same_precision", "rag_s", "encode_bf16_s")]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=CORPUS, help="JSONL(.gz) rows id/title/text")
    p.add_argument("--limit-docs", type=int, default=None, metavar="N",
                   help="use only the first N articles (quick check)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="time the three main ways N times and report medians")
    p.add_argument("--recall-questions", type=Path, default=None, metavar="SQUAD_JSON",
                   help="SQuAD v1.1 json: also report recall@5 of bf16 and fp32 KBs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args()


# -- environment --------------------------------------------------------------------------

def set_threads() -> int:
    """Give torch every core this process may use (the default can be fewer in containers)."""
    import torch

    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    return cores


def machine_name(cores: int) -> str:
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines()
                      if line.startswith("Model name:")), "")
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{model or 'unknown CPU'}, {cores} cores"


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- corpus -------------------------------------------------------------------------------

def prepare_corpus(src: Path, folder: Path, limit: int | None) -> Path:
    """A folder holding only the corpus file, so sync ingests nothing else (the bundled
    corpus folder also holds a README.md, which `rag index` would ingest too)."""
    folder.mkdir(parents=True)
    dest = folder / "articles.jsonl.gz"
    if limit is None:
        shutil.copyfile(src, dest)  # the exact bytes of the bundled file
    else:
        with gzip.open(src, "rt", encoding="utf-8") as f:
            lines = [line for line in f if line.strip()][:limit]
        with gzip.open(dest, "wt", encoding="utf-8") as f:
            f.writelines(lines)
    return dest


def read_rows(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_rows(path: Path, rows: list[dict]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


# -- models -------------------------------------------------------------------------------

@dataclass
class Models:
    rag: object  # knowledge.embedding.Embedder, default precision
    st_fp32: object  # SentenceTransformer as shipped
    st_bf16: object  # the same cast to bf16
    lc_embeddings: object  # langchain_huggingface.HuggingFaceEmbeddings
    lc_tokenizer: object  # the model's Hugging Face tokenizer, for the LangChain splitter


def load_models() -> Models:
    """Every model the runs use, loaded up front so no timing includes a load."""
    import torch
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from knowledge.embedding import Embedder, resolve_model

    model_dir = str(resolve_model(MODEL))
    return Models(
        rag=Embedder.load(MODEL),
        st_fp32=SentenceTransformer(model_dir, device="cpu"),
        st_bf16=SentenceTransformer(model_dir, device="cpu").to(torch.bfloat16),
        lc_embeddings=HuggingFaceEmbeddings(model_name=model_dir, model_kwargs={"device": "cpu"},
                                            encode_kwargs={"normalize_embeddings": True}),
        lc_tokenizer=AutoTokenizer.from_pretrained(model_dir),
    )


def warm_up(models: Models, corpus: Path, work: Path) -> None:
    """Run every way once on a couple of articles: first calls pay for lazy imports,
    kernel selection and allocator growth, which none of the timed runs should carry."""
    rows = read_rows(corpus)[:WARMUP_DOCS]
    folder = work / "warmup_corpus"
    folder.mkdir()
    write_rows(folder / "articles.jsonl.gz", rows)
    _, report, kb = run_rag(folder, models.rag, work / "warmup_kb")
    texts = stored_chunk_texts(kb)
    run_encode(models.st_fp32, texts)
    run_encode(models.st_bf16, texts)
    run_langchain(folder / "articles.jsonl.gz", models)


# -- the ways to ingest -------------------------------------------------------------------

def run_rag(corpus: Path, embedder, kb_dir: Path):
    """(seconds, SyncReport, kb_dir) for indexing ``corpus`` into a new KB with defaults."""
    from knowledge.sync import sync

    gc.collect()
    t = time.perf_counter()
    report = sync(kb_dir, [corpus], embedder=embedder)
    return time.perf_counter() - t, report, kb_dir


def run_langchain(corpus_file: Path, models: Models) -> tuple[float, int, float]:
    """(seconds, chunks, seconds spent splitting) for the usual LangChain pipeline."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    gc.collect()
    t = time.perf_counter()
    docs = [Document(page_content=r["text"], metadata={"id": r["id"], "title": r["title"]})
            for r in read_rows(corpus_file)]
    splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        models.lc_tokenizer, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
    chunks = splitter.split_documents(docs)
    split_s = time.perf_counter() - t
    store = FAISS.from_documents(chunks, models.lc_embeddings)
    elapsed = time.perf_counter() - t
    assert store.index.ntotal == len(chunks)
    return elapsed, len(chunks), split_s


def run_encode(model, texts: list[str]) -> float:
    """Seconds for the bare model to embed ``texts`` (no reading, chunking or storing), in
    batches of the size sync uses."""
    from knowledge.embedding import ENCODE_BATCH

    gc.collect()
    t = time.perf_counter()
    model.encode(texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)
    return time.perf_counter() - t


def stored_chunk_texts(kb_dir: Path) -> list[str]:
    """The chunk texts a KB holds, in id order (the order sync embedded them)."""
    conn = sqlite3.connect(kb_dir / "kb.sqlite")
    try:
        return [r[0] for r in conn.execute("SELECT text FROM chunks ORDER BY id")]
    finally:
        conn.close()


# -- incremental re-index -----------------------------------------------------------------

def reindex_initial(corpus: Path, embedder, work: Path):
    """Index a copy of the corpus in its own folder, as the base the re-index runs change."""
    folder = work / "reindex_corpus"
    folder.mkdir()
    shutil.copyfile(corpus, folder / corpus.name)
    seconds, report, kb = run_rag(folder, embedder, work / "reindex_kb")
    return folder, kb, seconds, report


def reindex_changes(folder: Path, kb: Path, embedder) -> dict:
    """Change one article's text and sync; then sync again with nothing changed."""
    from knowledge.sync import sync

    path = folder / "articles.jsonl.gz"
    rows = read_rows(path)
    victim = rows[len(rows) // 2]  # a middle one: neither the first nor the last chunk ids
    victim["text"] += "\n\nThis paragraph was added by the ingestion benchmark."
    write_rows(path, rows)  # the whole file is rewritten, as an editor or exporter would

    gc.collect()
    t = time.perf_counter()
    one = sync(kb, [folder], embedder=embedder)
    one_s = time.perf_counter() - t
    assert (one.updated, one.added, one.removed) == (1, 0, 0), one.to_dict()

    gc.collect()
    t = time.perf_counter()
    noop = sync(kb, [folder], embedder=embedder)
    noop_s = time.perf_counter() - t
    assert not noop.changed, noop.to_dict()
    return {"reindex_one_s": round(one_s, 3), "reindex_one_seconds": one.seconds,
            "reindex_one_chunks": {"added": one.chunks_added, "removed": one.chunks_removed},
            "reindex_noop_s": round(noop_s, 3), "reindex_noop_seconds": noop.seconds}


# -- retrieval quality --------------------------------------------------------------------

def load_questions(path: Path, doc_ids: set[str]) -> list[tuple[str, str]]:
    """A seeded sample of (question, gold article id) over the articles that were indexed."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    pairs = [(qa["question"], article["title"]) for article in data if article["title"] in doc_ids
             for para in article["paragraphs"] for qa in para["qas"]]
    if not pairs:
        raise SystemExit(f"{path}: no questions about the indexed articles")
    return random.Random(RECALL_SEED).sample(pairs, min(RECALL_SAMPLE, len(pairs)))


def recall_at_k(kb_dir: Path, embedder, questions: list[tuple[str, str]], k: int) -> float:
    """Share of questions whose gold article is among the doc ids of the top-k chunks."""
    from knowledge import KnowledgeBase
    from rag.evaluation.metrics import is_gold

    # all queries in one call, in the KB's precision, as kb.search would embed each
    vecs = embedder.encode_queries([q for q, _ in questions])
    with KnowledgeBase.open(kb_dir, embedder=embedder) as kb:
        found = sum(any(is_gold(h.doc_id, {gold}) for h in kb.search_vector(v, k))
                    for v, (_, gold) in zip(vecs, questions))
    return round(found / len(questions), 4)


def quality(questions_path: Path, kb_bf16: Path, corpus_folder: Path, models: Models,
            work: Path) -> dict:
    """recall@5 of the default KB and of one built (and queried) in fp32."""
    from knowledge.embedding import Embedder

    doc_ids = {r["id"] for r in read_rows(corpus_folder / "articles.jsonl.gz")}
    questions = load_questions(questions_path, doc_ids)
    fp32 = Embedder.load(MODEL, precision="fp32")
    fp32.encode(["warm up"] * 8)
    # also a timing: rag at the same precision as the LangChain pipeline and `encode_s`
    fp32_s, _, kb_fp32 = run_rag(corpus_folder, fp32, work / "kb_fp32")
    return {f"recall{RECALL_K}_{models.rag.precision}": recall_at_k(kb_bf16, models.rag,
                                                                    questions, RECALL_K),
            f"recall{RECALL_K}_fp32": recall_at_k(kb_fp32, fp32, questions, RECALL_K),
            "recall_questions": len(questions), "rag_fp32_s": round(fp32_s, 3)}


# -- the benchmark ------------------------------------------------------------------------

def main_runs(corpus: Path, reference: list[str], models: Models, work: Path,
              repeat: int) -> dict:
    """Time the three main ways ``repeat`` times, interleaved so drifting load on the
    machine hits each alike; bare encoding first, rag last (nothing it leaves warm helps)."""
    times = {"encode_s": [], "encode_bf16_s": [], "langchain_s": [], "langchain_split_s": [],
             "rag_s": []}
    breakdowns, identical, lc_chunks = [], True, 0
    for i in range(repeat):
        times["encode_s"].append(run_encode(models.st_fp32, reference))
        times["encode_bf16_s"].append(run_encode(models.st_bf16, reference))
        lc_s, lc_chunks, lc_split = run_langchain(corpus / "articles.jsonl.gz", models)
        times["langchain_s"].append(lc_s)
        times["langchain_split_s"].append(lc_split)
        rag_s, report, kb = run_rag(corpus, models.rag, work / f"kb_{i}")
        times["rag_s"].append(rag_s)
        breakdowns.append(report.seconds)
        # encode_s is only a bound on rag if both embedded exactly the same texts
        identical &= stored_chunk_texts(kb) == reference
    out = {k: round(statistics.median(v), 3) for k, v in times.items()}
    # Ratios are medians of per-repeat ratios: the two times of a pair are taken minutes
    # apart, not a whole run apart, so load from other processes mostly cancels out.
    out["ratios"] = {name: round(statistics.median(a / b for a, b in zip(times[x], times[y])), 3)
                     for name, x, y in RATIOS}
    out["best_s"] = {k: round(min(v), 3) for k, v in times.items()}
    out["rag_seconds"] = {k: round(statistics.median(b.get(k, 0.0) for b in breakdowns), 3)
                          for k in breakdowns[0]}
    out["runs"] = {k: [round(x, 3) for x in v] for k, v in times.items()}
    out.update(langchain_chunks=lc_chunks, kb=kb, chunks_identical=identical)
    return out


def benchmark(args: argparse.Namespace, work: Path) -> dict:
    cores = set_threads()
    import torch

    corpus_folder = work / "corpus"
    corpus = prepare_corpus(args.corpus, corpus_folder, args.limit_docs)
    models = load_models()
    warm_up(models, corpus, work)

    # the re-index base doubles as the source of the exact chunk texts for bare encoding
    re_folder, re_kb, initial_s, initial = reindex_initial(corpus, models.rag, work)
    reference = stored_chunk_texts(re_kb)

    runs = main_runs(corpus_folder, reference, models, work, args.repeat)
    result = {
        "chunks": len(reference), "documents": initial.total_documents,
        "rag_s": runs["rag_s"], "langchain_s": runs["langchain_s"],
        "encode_s": runs["encode_s"], "encode_bf16_s": runs["encode_bf16_s"],
        **runs["ratios"],
        "rag_seconds": runs["rag_seconds"], "langchain_split_s": runs["langchain_split_s"],
        "langchain_chunks": runs["langchain_chunks"], "chunks_identical": runs["chunks_identical"],
        "reindex_initial_s": round(initial_s, 3),
    }
    result.update(reindex_changes(re_folder, re_kb, models.rag))
    if args.recall_questions:
        result.update(quality(args.recall_questions, runs["kb"], corpus_folder, models, work))
    result.update(
        repeat=args.repeat, runs=runs["runs"], best_s=runs["best_s"], peak_rss_mb=peak_rss_mb(),
        machine=machine_name(cores), torch=torch.__version__, torch_threads=torch.get_num_threads(),
        precision=models.rag.precision, limit_docs=args.limit_docs,
        date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    )
    return result


def print_table(r: dict) -> None:
    rows = [
        ("documents / chunks (rag)", f"{r['documents']} / {r['chunks']}"),
        ("chunks (langchain)", r["langchain_chunks"]),
        (f"rag sync ({r['precision']})", f"{r['rag_s']:.2f} s  {r['rag_seconds']}"),
        ("langchain (fp32)", f"{r['langchain_s']:.2f} s  (split {r['langchain_split_s']:.2f} s)"),
        ("bare encode fp32", f"{r['encode_s']:.2f} s"),
        ("bare encode bf16", f"{r['encode_bf16_s']:.2f} s"),
        ("speedup vs langchain", f"{r['speedup_vs_langchain']:.2f}x  (target >= 1.5)"),
        ("overhead vs encode", f"{r['overhead_vs_encode']:.2f}x  (target <= 1.2)"),
        ("overhead vs encode, same precision", f"{r['overhead_vs_encode_same_precision']:.2f}x"),
        ("re-index, one article changed", f"{r['reindex_one_s']:.2f} s  {r['reindex_one_seconds']}"),
        ("re-index, nothing changed", f"{r['reindex_noop_s']:.3f} s"),
    ]
    if "rag_fp32_s" in r:
        rows += [("rag sync (fp32)", f"{r['rag_fp32_s']:.2f} s")]
        rows += [(k.replace("recall5_", "recall@5 "), v) for k, v in r.items()
                 if k.startswith("recall5_")]
    rows += [("peak RSS", f"{r['peak_rss_mb']:.0f} MB"),
             ("machine / torch", f"{r['machine']} / torch {r['torch']}")]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if not r["chunks_identical"]:
        print("note: a timed rag run stored different chunk texts than the reference run")


def main() -> None:
    args = parse_args()
    if args.repeat < 1 or (args.limit_docs is not None and args.limit_docs < 1):
        raise SystemExit("--repeat and --limit-docs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        result = benchmark(args, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
