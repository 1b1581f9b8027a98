"""Ingestion on a Ray cluster (`rag index PATH --kb DIR --ray [ADDRESS]`).

Ray Data reads and parses the changed files in parallel tasks, then chunks and embeds their
documents in a pool of actors that each load the embedding model once (``map_batches`` with
a callable class). Only chunks and vectors travel back, to the one process that decides what
changed and writes the knowledge base: the same single transaction, lock and crash
guarantees as without Ray. Workers open files by the same path, so on several machines the
folder must be on storage that every node mounts at the same place.

Example::

    engine = RayIngest(functools.partial(Embedder.load, "all-MiniLM-L6-v2"))
    sync(Path("kb"), [Path("docs")], embedder=..., engine=engine)
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict

import numpy as np

from .chunking import Chunker, ChunkerSettings
from .errors import KnowledgeError, UsageError
from .types import Chunk, Document
from .windows import encode_windows

DOCS_PER_BATCH = 16  # documents per actor call: enough chunks to fill the encoder's batches


class RayIngest:
    """Owns the connection to Ray and how many embedding actors to run."""

    def __init__(self, load_embedder, address: str | None = None, actors: int | None = None,
                 docs_per_batch: int = DOCS_PER_BATCH, parse_timeout_s: float | None = None,
                 parse_memory_mb: float | None = None):
        from .parsing import PARSE_MEMORY_MB, PARSE_SECONDS

        try:
            import ray
        except ImportError:
            raise UsageError("--ray needs Ray Data: pip install 'rag-fid[ray]' "
                             "(or pip install 'ray[data]')") from None
        if not ray.is_initialized():
            try:
                ray.init(address=None if address in (None, "", "local") else address,
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as err:
                raise UsageError(f"--ray {address}: cannot connect to a Ray cluster there "
                                 f"({err}); start one with `ray start --head` or give "
                                 "--ray without an address for a local one") from None
        import logging

        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # rag index reports the run
        self.load = load_embedder
        self.actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.docs_per_batch = docs_per_batch
        self.parse_timeout_s = parse_timeout_s or PARSE_SECONDS
        self.parse_memory_mb = parse_memory_mb or PARSE_MEMORY_MB

    def parse(self, items: list[tuple[str, str, str | None]], max_bytes: float) -> list:
        """``Parsed`` per (root, relative path, stored sha256), in order; each Ray worker
        parses in its own bounded parse process (knowledge.parsing), as a local run does."""
        import ray.data

        from .parsing import Parsed

        rows = [{"i": i, "root": root, "rel": rel, "sha": sha or ""}
                for i, (root, rel, sha) in enumerate(items)]
        ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), 4 * self.actors))
        limits = {"max_bytes": max_bytes, "timeout_s": self.parse_timeout_s,
                  "memory_mb": self.parse_memory_mb}
        with _ray_errors():
            out = sorted(ds.map(_parse_row, fn_kwargs=limits).take_all(), key=lambda r: r["i"])
        return [Parsed.from_json(json.loads(r["parsed"])) for r in out]

    def chunk_and_embed(self, docs: list[Document], chunking: ChunkerSettings,
                        batch_size: int | None,
                        ) -> tuple[list[list[Chunk]], np.ndarray, list[bytes | None]]:
        """Each document's chunks, all their vectors in the same order, and their window
        vectors (``knowledge/windows.py``; none when ``chunking.windows`` is 0)."""
        import ray.data

        rows = [{"d": i, "doc": json.dumps(asdict(doc), ensure_ascii=False, default=str)}
                for i, doc in enumerate(docs)]
        # at least a block per actor, so that every actor has work
        blocks = min(len(rows), max(self.actors, len(rows) // self.docs_per_batch))
        ds = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            ChunkEmbed, fn_constructor_kwargs={"load": self.load, "chunking": chunking,
                                               "batch_size": batch_size},
            batch_size=self.docs_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(self.actors, blocks)))
        found: list[tuple[int, int, Chunk, np.ndarray, bytes | None]] = []
        with _ray_errors():
            batches = list(ds.iter_batches(batch_size=None, batch_format="numpy"))
        for b in batches:
            for j in range(len(b["d"])):
                d = int(b["d"][j])
                page = int(b["page"][j])
                found.append((d, int(b["ord"][j]), Chunk(
                    doc_id=docs[d].doc_id, text=str(b["text"][j]), start=int(b["start"][j]),
                    end=int(b["end"][j]), page=None if page < 0 else page,
                    heading=str(b["heading"][j])), np.asarray(b["vector"][j], np.float32),
                    bytes.fromhex(str(b["windows"][j])) or None))
        found.sort(key=lambda f: (f[0], f[1]))
        per_doc: list[list[Chunk]] = [[] for _ in docs]
        for d, _, chunk, _, _ in found:
            per_doc[d].append(chunk)
        dim = found[0][3].shape[0] if found else 0
        vecs = np.stack([f[3] for f in found]) if found else np.zeros((0, dim), np.float32)
        return per_doc, vecs, [f[4] for f in found]


class ChunkEmbed:
    """A Ray actor's work: the embedding model held once, documents in, chunks and vectors
    out (one row per chunk)."""

    def __init__(self, load, chunking: ChunkerSettings, batch_size: int | None):
        self.emb = load()
        self.chunker = Chunker(self.emb.count_tokens, chunking)
        self.batch_size = batch_size
        self.window_words = chunking.windows

    def __call__(self, batch: dict) -> dict:
        cols = {k: [] for k in ("d", "ord", "text", "start", "end", "page", "heading")}
        for d, raw in zip(batch["d"], batch["doc"]):
            for o, c in enumerate(self.chunker.split(Document.from_dict(json.loads(str(raw))))):
                for k, v in (("d", int(d)), ("ord", o), ("text", c.text), ("start", c.start),
                             ("end", c.end), ("page", -1 if c.page is None else c.page),
                             ("heading", c.heading)):
                    cols[k].append(v)
        vecs = (self.emb.encode(cols["text"], batch_size=self.batch_size) if cols["text"]
                else np.zeros((0, self.emb.dim), np.float32))
        out = {k: np.array(v, dtype=object if k in ("text", "heading") else np.int64)
               for k, v in cols.items()}
        out["vector"] = np.asarray(vecs, np.float32)
        wins = (encode_windows(self.emb.encode, cols["text"], self.window_words, self.batch_size)
                if self.window_words else [None] * len(cols["text"]))
        # (as hex text: a column of raw bytes may come back with its trailing NULs cut)
        out["windows"] = np.array([(w or b"").hex() for w in wins], dtype=object)
        return out


@contextmanager
def _ray_errors():
    """A failed Ray task or actor (a worker killed, a node lost) as one line; the run's
    transaction is rolled back, so nothing was changed."""
    import ray.exceptions

    try:
        yield
    except ray.exceptions.RayError as err:
        first = next((ln for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise KnowledgeError(f"the Ray run failed ({first.strip()[:300]}); nothing was "
                             "changed: run rag index again") from None


_POOLS: dict = {}  # (in a Ray worker process) its parse pool, per limits


def _parse_row(row: dict, max_bytes: float, timeout_s: float, memory_mb: float) -> dict:
    from .parsing import ParsePool

    pool = _POOLS.get((timeout_s, memory_mb))
    if pool is None:
        pool = _POOLS[(timeout_s, memory_mb)] = ParsePool(1, timeout_s, memory_mb)
    [p] = pool.parse([(row["root"], row["rel"], row["sha"] or None)], max_bytes)
    return {"i": row["i"], "parsed": json.dumps(p.to_json(), ensure_ascii=False, default=str)}
