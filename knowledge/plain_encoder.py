"""A sentence-transformers model of the common shape, run without sentence-transformers.

The common shape: a transformer, mean or CLS pooling, optional normalisation (MiniLM, BGE,
E5, GTE, MPNet...). Importing sentence-transformers (with scikit-learn and scipy) costs
1.5 s of a `rag ask` start, and a BERT built by transformers another 2.5 s (knowledge/bert.py),
so a BERT runs in plain torch with its tokenizer.json (knowledge/tokenizer.py), another model
type with transformers alone. Pooling and normalisation repeat sentence-transformers' own
operations, so documents and queries get its vectors to the last bit in fp32 and bf16
(tests/test_embedding.py); indexing and queries run this same code.

Example: ``PlainEncoder.load(model_dir, torch.bfloat16).encode(["hello"])  # (1, 384)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def common_shape(model_dir: Path) -> tuple[int, str, bool] | None:
    """(max_seq_length, "mean" or "cls", normalise) of a sentence-transformers folder of the
    common shape, or None for any other (more modules, other pooling, lower-casing outside
    the tokenizer): sentence-transformers then runs it."""
    try:
        listed = json.loads((model_dir / "modules.json").read_text())
        modules = [m["type"].rsplit(".", 1)[-1] for m in listed]
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pool_dir = next(m["path"] for m in listed if m["type"].endswith("Pooling"))
        pool = json.loads((model_dir / pool_dir / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None
    modes = {k for k, v in pool.items() if k.startswith("pooling_mode_") and v}
    if (modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"])
            or modes not in ({"pooling_mode_mean_tokens"}, {"pooling_mode_cls_token"})
            or not pool.get("include_prompt", True)  # (prefixes would be left out of pooling)
            or st.get("do_lower_case") or "max_seq_length" not in st):
        return None
    return (int(st["max_seq_length"]), "mean" if "pooling_mode_mean_tokens" in modes else "cls",
            modules[-1] == "Normalize")


class PlainEncoder:
    """Owns the transformer, its tokenizer and the pooling: the pieces of the
    SentenceTransformer interface that Embedder uses."""

    def __init__(self, model, tokenizer, max_seq_length: int, pooling: str, normalize: bool):
        self.auto_model = model.eval()  # a knowledge.bert.Bert, or a transformers model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.pooling = pooling
        self.normalize = normalize

    @classmethod
    def load(cls, model_dir: Path, dtype: torch.dtype = torch.float32) -> "PlainEncoder | None":
        """The model at ``model_dir`` in ``dtype``, or None when it is of another shape."""
        shape = common_shape(model_dir)
        if shape is None:
            return None
        from .bert import Bert
        from .tokenizer import FastTokenizer

        model = Bert.load(model_dir, dtype)
        tokenizer = FastTokenizer.load(model_dir) if model is not None else None
        if model is None or tokenizer is None:
            model, tokenizer = _with_transformers(model_dir, dtype)
        if tokenizer.padding_side != "right":  # (CLS pooling takes the first position)
            return None
        return cls(model, tokenizer, *shape)

    def get_embedding_dimension(self) -> int:
        return int(self.auto_model.config.hidden_size)

    def states(self, enc: dict) -> torch.Tensor:
        """The transformer's last hidden states for a tokenised batch."""
        from .bert import Bert

        if isinstance(self.auto_model, Bert):
            return self.auto_model(enc["input_ids"], enc["attention_mask"])
        return self.auto_model(**{k: v for k, v in enc.items() if k in MODEL_INPUTS}
                               ).last_hidden_state

    def encode(self, texts: list[str], **_) -> torch.Tensor:
        """One batch of texts: pooled (and normalised) vectors in the model's dtype, computed
        as sentence-transformers computes them (its Pooling and Normalize modules)."""
        enc = self.tokenizer(texts, padding=True, truncation=True,
                             max_length=self.max_seq_length, return_tensors="pt")
        states = self.states(enc)
        if self.pooling == "cls":
            vecs = states[:, 0]
        else:  # (sums accumulate in fp32, the mean is cast back)
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            total = (states * mask).sum(1, dtype=torch.float32)
            vecs = (total / mask.sum(1, dtype=torch.float32).clamp(min=1e-9)).to(states.dtype)
        return torch.nn.functional.normalize(vecs, dim=-1) if self.normalize else vecs


def _with_transformers(model_dir: Path, dtype: torch.dtype):
    """(model, tokenizer) of a model type other than BERT, through transformers."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=False, dtype=dtype)
    return model, tokenizer
