"""A BERT encoder for inference in plain torch: the query path's model, without transformers.

Building transformers' ``BertModel`` imports its whole modelling stack (torch._dynamo, the
distributed tensors, the loss functions with scipy): 2.5 s of CPU on these machines, more
than everything else a one-shot `rag ask` does. A BERT encoder is an embedding sum and a few
identical layers; this one carries the parameter names of transformers' ``BertModel``, so a
checkpoint's safetensors load as they are (and a reader's frozen weights can point at its
tensors), and it runs the same operations in the same order, so it gives the same numbers
(tests/test_bert.py: against ``BertModel``, eager and SDPA attention, fp32 and bf16).

Only what inference needs: absolute positions, GELU, no pooler, no cache, no dropout. A
config of another shape is refused (``BertConfig.of`` returns None) and the caller keeps
transformers.

Example: ``Bert.load(model_dir)(input_ids, attention_mask)  # (B, L, 384) states``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ATTENTION = ("sdpa", "eager")


@dataclass(frozen=True)
class BertConfig:
    """The few numbers of a BERT encoder, from its Hugging Face ``config.json``."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int = 0

    @classmethod
    def of(cls, config: dict) -> "BertConfig | None":
        """The config of a plain BERT encoder, or None for anything this module would get
        wrong (another model type or activation, relative positions, a decoder)."""
        if (config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu"
                or config.get("position_embedding_type", "absolute") != "absolute"
                or config.get("is_decoder") or config.get("add_cross_attention")
                or config.get("hidden_size", 0) % max(config.get("num_attention_heads", 1), 1)):
            return None
        try:
            return cls(**{k: config[k] for k in cls.__dataclass_fields__ if k != "pad_token_id"},
                       pad_token_id=config.get("pad_token_id") or 0)
        except KeyError:
            return None

    @classmethod
    def read(cls, model_dir: Path) -> "BertConfig | None":
        try:
            return cls.of(json.loads((Path(model_dir) / "config.json").read_text()))
        except (OSError, ValueError):
            return None


class Table(nn.Module):
    """nn.Embedding's weight, without its random initialisation (on the meta device models
    are built on here, nn.Embedding's imports torch._dynamo: 2 s)."""

    def __init__(self, rows: int, width: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(rows, width))


class Dense(nn.Module):
    """nn.Linear's parameters and computation, without its random initialisation (which,
    even on the meta device, runs in Python: 0.1 s for a model whose weights come next)."""

    def __init__(self, width_in: int, width_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(width_out, width_in))
        self.bias = nn.Parameter(torch.empty(width_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class Norm(nn.Module):
    """nn.LayerNorm's parameters and computation, likewise."""

    def __init__(self, width: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(width))
        self.bias = nn.Parameter(torch.empty(width))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class Embeddings(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.word_embeddings = Table(c.vocab_size, c.hidden_size)
        self.position_embeddings = Table(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = Table(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = Norm(c.hidden_size, c.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # (word + type) + position, in transformers' order (bf16 sums depend on it)
        length = input_ids.shape[1]
        x = F.embedding(input_ids, self.word_embeddings.weight)
        x = x + self.token_type_embeddings.weight[0]
        x = x + self.position_embeddings.weight[:length]
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.heads = c.num_attention_heads
        self.query = Dense(c.hidden_size, c.hidden_size)
        self.key = Dense(c.hidden_size, c.hidden_size)
        self.value = Dense(c.hidden_size, c.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, eager: bool) -> torch.Tensor:
        b, length, width = x.shape
        shape = (b, length, self.heads, width // self.heads)
        q, k, v = (proj(x).view(shape).transpose(1, 2)
                   for proj in (self.query, self.key, self.value))
        scale = (width // self.heads) ** -0.5
        if eager:  # (transformers' eager attention: an additive mask of the dtype's minimum)
            scores = torch.matmul(q, k.transpose(2, 3)) * scale
            if mask is not None:
                scores = scores + torch.zeros((), dtype=x.dtype).masked_fill(
                    ~mask, torch.finfo(x.dtype).min)
            out = torch.matmul(scores.softmax(-1), v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        return out.transpose(1, 2).reshape(b, length, width)


class Residual(nn.Module):
    """dense -> add the input -> LayerNorm (transformers' BertSelfOutput and BertOutput)."""

    def __init__(self, width_in: int, c: BertConfig):
        super().__init__()
        self.dense = Dense(width_in, c.hidden_size)
        self.LayerNorm = Norm(c.hidden_size, c.layer_norm_eps)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + skip)


class Attention(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = Residual(c.hidden_size, c)


class Intermediate(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.dense = Dense(c.hidden_size, c.intermediate_size)


class Layer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = Residual(c.intermediate_size, c)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, eager: bool) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, mask, eager), x)
        return self.output(F.gelu(self.intermediate.dense(x)), x)


class Layers(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c.num_hidden_layers))


class Bert(nn.Module):
    """A BERT encoder: token ids and attention mask in, the last layer's states out.

    ``attention``: "sdpa" (torch's fused kernel; what sentence-transformers runs) or "eager"
    (matmul and softmax; what a reader loaded for attribution runs)."""

    def __init__(self, config: BertConfig, attention: str = "sdpa"):
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"attention {attention!r} must be one of {ATTENTION}")
        self.config = config
        self.attention = attention
        self.embeddings = Embeddings(config)
        self.encoder = Layers(config)

    @classmethod
    def load(cls, model_dir: Path, dtype: torch.dtype = torch.float32,
             attention: str = "sdpa") -> "Bert | None":
        """The encoder in ``model_dir`` (config.json, model.safetensors) in ``dtype``, or
        None when it is not a plain BERT or its weights are named otherwise."""
        from safetensors.torch import load_file

        config, weights = BertConfig.read(model_dir), Path(model_dir) / "model.safetensors"
        if config is None or not weights.is_file():
            return None
        state = {k: v for k, v in load_file(str(weights)).items()  # (old buffers, the pooler)
                 if not k.endswith(("position_ids", "token_type_ids")) and
                 not k.startswith("pooler.")}
        return cls.from_state(config, state, dtype, attention)

    @classmethod
    def from_state(cls, config: BertConfig, state: dict, dtype: torch.dtype = torch.float32,
                   attention: str = "sdpa") -> "Bert | None":
        """The encoder holding ``state``'s tensors (cast to ``dtype``; no copy when they
        have it already), or None when the names differ from a BERT encoder's."""
        with torch.device("meta"):  # (no memory, no random initialisation: every weight
            model = cls(config, attention)  # is assigned below)
        if set(state) != set(model.state_dict()):
            return None
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
        return model.eval().requires_grad_(False)

    @property
    def dtype(self) -> torch.dtype:
        return self.embeddings.word_embeddings.weight.dtype

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        x = self.embeddings(input_ids)
        mask = None  # (none at all when nothing is padded, as transformers does)
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        eager = self.attention == "eager"
        for layer in self.encoder.layer:
            x = layer(x, mask, eager)
        return x
