"""A decoder-only reader behind the same interface: one prompt with numbered passages.

For users who have such a model (Qwen, Llama, SmolLM, ...); not the default. Attribution is
the attention mass that the answer's tokens put on each passage's tokens in the prompt.

Example: ``CausalReader.load("path/to/qwen2.5-0.5b-instruct").read_many([q], [hits])``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, replace

from knowledge.errors import UsageError
from knowledge.types import Hit

from .base import NOT_FOUND, ReadBatch, Reader, ReaderOutput
from .fid import (ReaderConfig, _resolve, load_tokenizer, model_type, read_config,
                  with_precision)

PROMPT_HEAD = ("Answer the question with a short phrase taken from the passages. If the "
               "passages do not contain the answer, say \"unknown\".\n\n")


class CausalReader(Reader):
    kind = "causal"

    def __init__(self, model, tokenizer, config: ReaderConfig, name: str):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.name = name

    @classmethod
    def load(cls, name: str, **overrides) -> "CausalReader":
        from transformers import AutoModelForCausalLM

        model_dir = _resolve(name)
        if not any(model_dir.glob("*.safetensors")):
            raise UsageError(f"reader {name!r} has no safetensors weights in {model_dir}")
        tokenizer = load_tokenizer(model_dir, name)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                model_dir, use_safetensors=True, trust_remote_code=False,
                attn_implementation="eager")
        except ValueError as err:
            raise UsageError(f"reader {name!r} is not a causal language model ({err})") from None
        config = replace(ReaderConfig.load(model_dir), kind="causal", **overrides)
        if config.answer_mode != "generative":
            raise UsageError(f"--answer-mode {config.answer_mode}: a decoder-only reader only "
                             "generates; use --answer-mode generative")
        return cls(with_precision(model, config.precision, name), tokenizer, config, name)

    def identity(self) -> dict:
        return {"kind": self.kind, "name": self.name, "model_type": self.model.config.model_type,
                "dtype": str(self.model.dtype).replace("torch.", ""), "config": asdict(self.config)}

    def prompt(self, question: str, passages: list[Hit]) -> tuple[str, list[tuple[int, int]]]:
        """The prompt and each passage's character range in it (golden-tested)."""
        text, ranges = PROMPT_HEAD, []
        for i, h in enumerate(passages, 1):
            head = f"[{i}] {h.title or h.doc_id}: "
            start = len(text) + len(head)
            text += head + h.text.strip()
            ranges.append((start, len(text)))
            text += "\n"
        return text + f"\nQuestion: {question.strip()}\nAnswer:", ranges

    def read_batch(self, questions: list[str], passages: list[list[Hit]]) -> ReadBatch:
        t0 = time.perf_counter()
        outputs = [self._read(q, p) for q, p in zip(questions, passages)]
        return ReadBatch(outputs, {"generate_ms": (time.perf_counter() - t0) * 1000})

    def _read(self, question: str, passages: list[Hit]) -> ReaderOutput:
        import torch

        if not passages:
            return ReaderOutput(NOT_FOUND, 0.0, [], abstained=True)
        prompt, ranges = self.prompt(question, passages)
        enc = self.tokenizer(prompt, return_tensors="pt", return_offsets_mapping=True)
        offsets = enc.pop("offset_mapping")[0].tolist()
        n_prompt = enc["input_ids"].shape[1]
        eos = self.tokenizer.eos_token_id
        with torch.inference_mode():
            seq = self.model.generate(**enc, max_new_tokens=self.config.max_new_tokens,
                                      do_sample=False, pad_token_id=self.tokenizer.pad_token_id
                                      if self.tokenizer.pad_token_id is not None else eos)
            out = self.model(seq, output_attentions=True)
        new = seq[0, n_prompt:].tolist()
        if eos in new:
            new = new[:new.index(eos)]
        answer = self.tokenizer.decode(new, skip_special_tokens=True).strip().split("\n")[0]
        n_new = max(len(new), 1)
        logp = torch.log_softmax(out.logits[0, n_prompt - 1:n_prompt - 1 + n_new].float(), -1)
        tok_logp = logp.gather(-1, seq[0, n_prompt:n_prompt + n_new, None])[:, 0]
        confidence = float(math.exp(tok_logp.mean())) if len(new) else 0.0
        att = torch.stack([a[0].float() for a in out.attentions]).mean((0, 1))  # (T, T)
        att = att[n_prompt:n_prompt + n_new, :n_prompt].sum(0)
        mass = [float(sum(att[i] for i, (a, b) in enumerate(offsets) if a >= s and b <= e and b > a))
                for s, e in ranges]
        total = sum(mass) or 1.0
        abstain = (not answer or answer.lower().strip(".") == "unknown"
                   or (self.config.abstain_threshold is not None
                       and confidence < self.config.abstain_threshold))
        return ReaderOutput(NOT_FOUND if abstain else answer, confidence,
                            [round(m / total, 6) for m in mass], abstained=abstain)


def load_reader(name: str, kind: str = "auto", **overrides):
    """A FiD reader for encoder-decoder checkpoints, a causal one for decoder-only ones."""
    if kind not in ("auto", "fid", "causal"):
        raise UsageError(f"--reader-kind {kind!r} must be auto, fid or causal")
    if kind == "auto" and model_type(name) == "rag-fid-copy":
        kind = "fid"  # (the project's own: known without importing transformers)
    if kind == "auto":
        _, cfg = read_config(name)
        archs = cfg.architectures or []
        if getattr(cfg, "is_encoder_decoder", False):
            kind = "fid"
        elif any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
            kind = "causal"
        else:
            raise UsageError(f"reader {name!r} ({', '.join(archs) or cfg.model_type}) is not a "
                             "seq2seq model nor a causal language model")
    if kind == "fid":
        from .fid import FiDReader

        return FiDReader.load(name, **overrides)
    return CausalReader.load(name, **overrides)
