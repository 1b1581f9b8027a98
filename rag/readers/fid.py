"""Fusion-in-Decoder reader over any Hugging Face seq2seq checkpoint (the only module, with
the other readers, that imports transformers).

Each passage is encoded together with the question, independently and in one batch; the
encoder states and masks are concatenated along the sequence, so the decoder cross-attends
over all passages at once while it generates (Izacard & Grave, 2021). Cost grows linearly
with the number of passages; encoding runs in chunks so memory stays bounded.

The decoder's cross-attention mass over each passage's tokens, in a teacher-forced pass over
the answer, gives each passage an attribution score (Izacard & Grave, "Distilling Knowledge
from Reader to Retriever").

Example::

    reader = FiDReader.load("path/to/flan-t5-base")
    [out] = reader.read_many(["Who won?"], [hits])
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from knowledge.errors import UsageError
from knowledge.types import Hit

from .base import NOT_FOUND, ReaderOutput
from .grounding import SpanConstraint

CONFIG_NAME = "rag_reader.json"


@dataclass(frozen=True)
class ReaderConfig:
    """How a checkpoint wants its inputs, and how the reader decodes; stored beside it."""

    kind: str = "fid"
    input_format: str = "question: {question} title: {title} context: {context}"
    max_passage_tokens: int = 256
    max_new_tokens: int = 32
    num_beams: int = 1
    grounded: bool = False
    abstain_threshold: float | None = None  # reader confidence below it: "not found"
    # no chunk of the knowledge base this similar to the question (dense cosine): "not found",
    # without reading; applies to knowledge bases built with the embedder whose weights hash
    # is similarity_embedder (cosines differ between embedders), or to any when that is None
    abstain_similarity: float | None = None
    similarity_embedder: str | None = None
    k: int = 5  # passages the reader was tuned for
    encode_batch: int = 32  # passages per encoder call (bounds memory for large k)
    base_model: str | None = None  # frozen weights come from this model (copyfid readers)
    from_base: dict | None = None  # parameter name -> name in the base model
    precision: str = "auto"  # fp32, bf16, or auto: bf16 where the CPU computes it natively

    @classmethod
    def load(cls, model_dir: Path) -> "ReaderConfig":
        path = model_dir / CONFIG_NAME
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, model_dir: Path) -> None:
        (model_dir / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")


def format_passage(template: str, question: str, hit: Hit | None) -> str:
    """One encoder input: the question with one passage (golden-tested)."""
    title = (hit.title or hit.doc_id) if hit else ""
    return template.format(question=question.strip(), title=title,
                           context=hit.text if hit else "").strip()


class FiDReader:
    """Owns a seq2seq model and its tokenizer; reads batches of questions with passages."""

    kind = "fid"

    def __init__(self, model, tokenizer, config: ReaderConfig, name: str, model_dir: Path | None):
        if model.config._attn_implementation != "eager":  # attribution needs the weights
            model.set_attn_implementation("eager")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.name = name
        self.model_dir = model_dir
        mc = model.config
        dec = getattr(mc, "decoder", None)
        self.eos_id = mc.eos_token_id if mc.eos_token_id is not None else \
            getattr(dec, "eos_token_id", None) or tokenizer.eos_token_id or tokenizer.sep_token_id
        self.pad_id = mc.pad_token_id if mc.pad_token_id is not None else tokenizer.pad_token_id
        self.last_timings: dict[str, float] = {}  # ms per stage of the last call

    @classmethod
    def load(cls, name: str, **overrides) -> "FiDReader":
        from transformers import AutoModelForSeq2SeqLM

        model_dir, hf_config = read_config(name)
        if not getattr(hf_config, "is_encoder_decoder", False):
            raise UsageError(f"reader {name!r} is not a seq2seq (encoder-decoder) model; "
                             "use --reader-kind causal for a decoder-only model")
        if not any(model_dir.glob("*.safetensors")):
            raise UsageError(f"reader {name!r} has no safetensors weights in {model_dir}; "
                             "only safetensors are loaded (convert with safetensors' "
                             "convert script)")
        tokenizer = load_tokenizer(model_dir, name)
        config = replace(ReaderConfig.load(model_dir), **overrides)
        if config.base_model:  # only the trained parameters are stored; the rest is the base
            from .copyfid import load_trained

            model = load_trained(model_dir, {"base_model": config.base_model,
                                             "from_base": config.from_base or {}})
        else:
            model = AutoModelForSeq2SeqLM.from_pretrained(
                model_dir, use_safetensors=True, trust_remote_code=False,
                attn_implementation="eager")
        return cls(with_precision(model, config.precision, name), tokenizer, config, name,
                   model_dir)

    def share_base_weights(self, embedder) -> int:
        """Let the frozen base weights be the embedder's own copy when both come from the
        same model (the project's reader over the packaged MiniLM): held once, not twice.
        The number of parameters shared; 0 when the reader has no base or it differs."""
        if not (self.config.base_model and self.config.from_base
                and hasattr(embedder, "transformer")):
            return 0
        from knowledge.embedding import resolve_model

        if resolve_model(self.config.base_model).resolve() != Path(embedder.model_dir).resolve():
            return 0
        from .copyfid import share_parameters

        return share_parameters(self.model, self.config.from_base, embedder.transformer())

    def identity(self) -> dict:
        config = {k: v for k, v in asdict(self.config).items() if k != "from_base"}
        return {"kind": self.kind, "name": self.name, "model_type": self.model.config.model_type,
                "dtype": str(self.model.dtype).replace("torch.", ""), "config": config}

    # -- the FiD forward pass ---------------------------------------------------------

    def encode(self, questions: list[str], passages: list[list[Hit]]):
        """Encoder states (B, P*L, d) and mask (B, P*L), P = most passages in the batch.

        Every passage is padded to the same L tokens; a missing passage is fully masked.
        """
        import torch

        n_p = max(1, max(len(p) for p in passages))
        texts, present = [], []
        for q, hits in zip(questions, passages):
            for j in range(n_p):
                hit = hits[j] if j < len(hits) else None
                texts.append(format_passage(self.config.input_format, q, hit))
                present.append(hit is not None)
        enc = self.tokenizer(texts, max_length=self.config.max_passage_tokens, truncation=True,
                             padding="longest", return_tensors="pt")
        enc = {k: v.to(self.model.device) for k, v in enc.items()}
        mask = enc["attention_mask"] * torch.tensor(present, dtype=torch.long,
                                                     device=self.model.device)[:, None]
        encoder = self.model.get_encoder()
        states = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.config.encode_batch):
                sl = slice(i, i + self.config.encode_batch)
                states.append(encoder(input_ids=enc["input_ids"][sl],
                                      attention_mask=enc["attention_mask"][sl]).last_hidden_state)
        hidden = torch.cat(states)  # (B*P, L, d)
        b, length = len(questions), hidden.shape[1]
        self._source_ids = enc["input_ids"].reshape(b, n_p * length)  # for copy heads
        return (hidden.reshape(b, n_p * length, hidden.shape[-1]),
                mask.reshape(b, n_p * length), n_p, length)

    def read_many(self, questions: list[str], passages: list[list[Hit]],
                  grounded: bool | None = None) -> list[ReaderOutput]:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        grounded = self.config.grounded if grounded is None else grounded
        outputs: list[ReaderOutput | None] = [None] * len(questions)
        live = [i for i, p in enumerate(passages) if p]
        for i in set(range(len(questions))) - set(live):  # nothing retrieved
            outputs[i] = ReaderOutput(NOT_FOUND, 0.0, [], abstained=True)
        if not live:
            return outputs
        qs, ps = [questions[i] for i in live], [passages[i] for i in live]
        t0 = time.perf_counter()
        hidden, mask, n_p, length = self.encode(qs, ps)
        t1 = time.perf_counter()
        constraints = None
        kwargs = self._extra_inputs()
        if grounded:
            constraints = [SpanConstraint(self.tokenizer, [h.text for h in hits], self.eos_id)
                           for hits in ps]

            def allowed(batch_id, ids):
                return constraints[batch_id].allowed(ids[1:].tolist())

            kwargs["prefix_allowed_tokens_fn"] = allowed
        with torch.inference_mode():
            seqs = self.model.generate(
                encoder_outputs=BaseModelOutput(last_hidden_state=hidden), attention_mask=mask,
                max_new_tokens=self.config.max_new_tokens, num_beams=self.config.num_beams,
                do_sample=False, **kwargs)
            t2 = time.perf_counter()
            attention, confidence = self._attribute(hidden, mask, seqs, n_p, length)
        self.last_timings = {"encode_ms": (t1 - t0) * 1000, "decode_ms": (t2 - t1) * 1000,
                             "attribute_ms": (time.perf_counter() - t2) * 1000}
        for row, i in enumerate(live):
            ids = self._answer_ids(seqs[row])
            answer = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            span = constraints[row].locate(ids) if constraints else None
            abstain = (not answer or (self.config.abstain_threshold is not None
                                      and confidence[row] < self.config.abstain_threshold))
            outputs[i] = ReaderOutput(
                answer=NOT_FOUND if abstain else answer, confidence=confidence[row],
                attention=attention[row][:len(ps[row])], abstained=abstain, span=span)
        return outputs

    def _extra_inputs(self) -> dict:
        """Model inputs beyond the encoder states: the source ids a copy head copies from."""
        if getattr(self.model.config, "copy_head", False):
            return {"source_ids": self._source_ids}
        return {}

    def _answer_ids(self, seq) -> list[int]:
        """Generated ids without the decoder start token, end token and padding."""
        ids = seq.tolist()[1:]
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        return [t for t in ids if t != self.pad_id]

    def _attribute(self, hidden, mask, seqs, n_p: int, length: int):
        """Per-passage cross-attention mass and the answer's confidence, teacher-forced."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        dec_in, targets = seqs[:, :-1], seqs[:, 1:]
        valid = torch.ones_like(targets, dtype=torch.bool)
        for r in range(targets.shape[0]):  # up to and including the first end token
            hits = (targets[r] == self.eos_id).nonzero()
            if len(hits):
                valid[r, hits[0, 0] + 1:] = False
        out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                         attention_mask=mask, decoder_input_ids=dec_in, output_attentions=True,
                         **self._extra_inputs())
        logp = torch.log_softmax(out.logits.float(), -1).gather(-1, targets[..., None])[..., 0]
        logp = (logp * valid).sum(1) / valid.sum(1).clamp(min=1)
        # layers x (B, heads, T, S) -> (B, T, S), answer tokens only -> (B, S); a copy head's
        # pointer attention is itself a cross-attention, trained to find the answer: use it
        copy = out.get("copy_attention") if hasattr(out, "get") else None
        if copy is not None:
            att = copy.float()
        else:
            att = torch.stack([a.float() for a in out.cross_attentions]).mean(0).mean(1)
        att = (att * valid[..., None]).sum(1)
        per_passage = att.reshape(att.shape[0], n_p, length).sum(-1)
        per_passage = per_passage / per_passage.sum(-1, keepdim=True).clamp(min=1e-12)
        return ([[round(float(x), 6) for x in row] for row in per_passage],
                [float(math.exp(x)) for x in logp])


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model", "vocab.txt",
                   "vocab.json", "sentencepiece.bpe.model")


def load_tokenizer(model_dir: Path, name: str):
    """The checkpoint's own tokenizer; an error if it has none (transformers would otherwise
    build an empty one that turns every word into <unk>)."""
    from transformers import AutoTokenizer

    if not any((model_dir / f).exists() for f in TOKENIZER_FILES):
        raise UsageError(f"reader {name!r}: tokenizer missing in {model_dir} (none of "
                         f"{', '.join(TOKENIZER_FILES)}); save the tokenizer beside the model")
    try:
        return AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
    except Exception as err:
        raise UsageError(f"reader {name!r}: tokenizer unreadable in {model_dir} "
                         f"({err.__class__.__name__})") from None


def read_config(name: str):
    """(directory, Hugging Face config) of reader ``name``; a UsageError if it has none."""
    from transformers import AutoConfig

    from . import copyfid  # noqa: F401  (registers the project's architecture)

    model_dir = _resolve(name)
    try:
        return model_dir, AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    except Exception as err:
        raise UsageError(f"reader {name!r}: no usable config.json in {model_dir} ({err})") \
            from None


def with_precision(model, precision: str, name: str):
    """The model in bf16 when asked, or for "auto" where the CPU computes bf16 natively."""
    from knowledge.embedding import resolve_precision

    if resolve_precision(precision, f"reader {name!r}") == "bf16":
        import torch

        return model.to(torch.bfloat16)
    return model


def _resolve(name: str) -> Path:
    from knowledge.embedding import resolve_model

    return resolve_model(name, packaged={}, default_org=None, what="reader",
                         hint="pass a local checkpoint directory or a hub name")
