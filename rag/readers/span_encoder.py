"""The project's reader as extractive answering runs it: its encoder and span head, without
transformers.

An extractive answer (the shipped reader's default) needs the reader's BERT encoder and one
linear layer; building them with transformers' encoder-decoder classes would import its
whole modelling stack (2.5 s of a one-shot `rag ask`, knowledge/bert.py). This loads those
tensors and no others from the reader directory (rag/readers/weights.py), into
knowledge/bert.py's BERT with eager attention, which computes what transformers' BertModel
computes (tests/test_bert.py). FiDReader builds the whole model (copyfid.py: the decoder,
for generative and fused answers and training) only when asked for one, over these tensors.

Example: ``SpanEncoder.load(Path("rag/models/reader"), "all-MiniLM-L6-v2", from_base,
torch.bfloat16).states(input_ids, attention_mask)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from knowledge.bert import Bert, BertConfig, Dense

MODEL_TYPE = "rag-fid-copy"  # (copyfid.CopyFiDConfig.model_type)


class SpanEncoder(nn.Module):
    """A reader's encoder (``encoder``, a knowledge.bert.Bert), span head (``span``) and
    tokenizer (knowledge.tokenizer.FastTokenizer)."""

    def __init__(self, encoder: Bert, span: Dense, tokenizer):
        super().__init__()
        self.encoder = encoder
        self.span = span
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, model_dir: Path, base_model: str, from_base: dict,
             dtype: torch.dtype) -> "SpanEncoder | None":
        """The encoder and span head of the copyfid reader in ``model_dir``, or None when it
        is no such reader, has no span head, has LoRA adapters, an encoder other than a
        plain BERT or no tokenizer.json (the whole model is then loaded through
        transformers)."""
        from knowledge.tokenizer import FastTokenizer

        from .weights import read_weights

        try:
            config = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError):
            return None
        bert = BertConfig.of(config.get("encoder") or {})
        if (config.get("model_type") != MODEL_TYPE or not config.get("span_head")
                or config.get("lora") or bert is None
                or not (model_dir / "model.safetensors").is_file()):
            return None
        tokenizer = FastTokenizer.load(model_dir)
        if tokenizer is None:
            return None
        state = read_weights(model_dir, base_model, from_base,
                             lambda n: n.startswith(("encoder.", "span.")), dtype)
        encoder = Bert.from_state(bert, {n[len("encoder."):]: t for n, t in state.items()
                                         if n.startswith("encoder.")}, dtype, "eager")
        if encoder is None or not {"span.weight", "span.bias"} <= set(state):
            return None
        with torch.device("meta"):
            span = Dense(bert.hidden_size, 2)
        span.load_state_dict({"weight": state["span.weight"], "bias": state["span.bias"]},
                             assign=True)
        return cls(encoder, span, tokenizer).eval().requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.dtype

    @property
    def device(self) -> torch.device:
        return self.span.weight.device

    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask)

    def span_logits(self, states: torch.Tensor):
        """(start, end) logits, as copyfid.CopyFiDModel.span_logits."""
        logits = self.span(states)
        return logits[..., 0], logits[..., 1]

    def tensors(self) -> dict:
        """{reader parameter name: tensor}: what the whole model takes over from this one."""
        return {f"encoder.{n}": t for n, t in self.encoder.state_dict().items()} | \
            {f"span.{n}": t for n, t in self.span.state_dict().items()}
