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
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from knowledge.errors import UsageError
from knowledge.types import Hit

from .base import NOT_FOUND, ReadBatch, Reader, ReaderOutput, Span
from .grounding import SpanConstraint

CONFIG_NAME = "rag_reader.json"
CANDIDATES = 16  # span candidates kept per question: their probability places longer forms
ANSWER_MODES = ("extractive", "generative", "fused")
ANSWER_FORMS = ("auto", "short", "long")


@dataclass(frozen=True)
class ReaderConfig:
    """How a checkpoint wants its inputs, and how the reader decodes; stored beside it."""

    kind: str = "fid"
    input_format: str = "question: {question} title: {title} context: {context}"
    max_passage_tokens: int = 256
    max_new_tokens: int = 32
    max_decode_seconds: float = 5.0  # generation stops here, whatever it has produced
    max_repeat: int = 3  # no token generated more than this many times in a row
    num_beams: int = 1
    grounded: bool = False
    abstain_threshold: float | None = None  # reader confidence below it: "not found"
    # no chunk of the knowledge base this similar to the question (dense cosine): "not found",
    # without reading; applies to knowledge bases built with the embedder whose weights hash
    # is similarity_embedder (cosines differ between embedders), or to any when that is None
    abstain_similarity: float | None = None
    similarity_embedder: str | None = None
    # span readers: one rule over confidence, similarity and lexical coverage
    # (rag/abstention.py), used instead of the two thresholds above where it applies (the
    # knowledge base's embedder is similarity_embedder, dense or hybrid retrieval,
    # extractive answers)
    abstain_rule: dict | None = None
    k: int = 5  # passages the reader was tuned for
    encode_batch: int = 32  # passages per encoder call (bounds memory for large k)
    base_model: str | None = None  # frozen weights come from this model (copyfid readers)
    from_base: dict | None = None  # parameter name -> name in the base model
    precision: str = "auto"  # fp32, bf16, or auto: bf16 where the CPU computes it natively
    # readers with a span head (spans.py): "extractive" (best span over all passages),
    # "generative" (the decoder), "fused" (the span head's best candidates re-scored with
    # the decoder's log-likelihood of each)
    answer_mode: str = "generative"
    max_answer_tokens: int = 30  # longest extracted span, in tokens
    fuse_top: int = 4  # span candidates the decoder re-scores
    fuse_weight: float = 1.0  # weight of the decoder's log-likelihood in the fused score
    # the answer's form (rag/forms.py): "auto" (what the question asks for: a short span for
    # a factoid, whole sentences or steps for a how-to, why or definition), "short" (always
    # the span), "long" (always whole units)
    answer_form: str = "auto"
    # "auto"'s confidence gates, chosen on dev questions (eval/tune_forms.py): a factoid
    # answered with less confidence than factoid_below gets its sentence (the span marked
    # in it); a how-to, why or definition answered with more than other_above keeps its span;
    # from a knowledge base's technical share of technical_at on, every question gets whole
    # units (rag/pipeline.py Pipeline.technical)
    form_gates: dict | None = None
    # scripts of the languages it was trained on (knowledge/language.py; "*": any): questions
    # or passages in others get extractive evidence instead of an answer (rag/evidence.py)
    scripts: tuple = ("Latn",)

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


def tokenize_passages(tokenizer, template: str, questions: list[str],
                      passages: list[list[Hit]], max_tokens: int) -> dict:
    """The FiD encoder's inputs: each question with each of its passages (P slots per
    question, P the most any has; an empty slot holds the question alone and is marked
    absent in ``present``), padded to the longest. Readers and training share it."""
    import torch

    n_p = max(1, max(len(p) for p in passages))
    texts, present = [], []
    for q, hits in zip(questions, passages):
        for j in range(n_p):
            hit = hits[j] if j < len(hits) else None
            texts.append(format_passage(template, q, hit))
            present.append(hit is not None)
    enc = tokenizer(texts, max_length=max_tokens, truncation=True, padding="longest",
                    return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "present": torch.tensor(present), "n_p": n_p}


class FiDReader(Reader):
    """Owns a seq2seq model and its tokenizer; reads batches of questions with passages.

    The project's own reader is read by its ``span_encoder`` (span_encoder.py: no
    transformers import); its whole model and transformers' tokenizer load at their first
    use (generative or fused answers, training)."""

    kind = "fid"

    def __init__(self, model, tokenizer, config: ReaderConfig, name: str,
                 model_dir: Path | None, span_encoder=None):
        self._model, self._tokenizer, self.span_encoder = None, tokenizer, span_encoder
        self._lock = threading.Lock()
        self.config = config
        self.name = name
        self.model_dir = model_dir
        if model is not None:
            self._adopt(model)

    def _adopt(self, model) -> None:
        if model.config._attn_implementation != "eager":  # attribution needs the weights
            model.set_attn_implementation("eager")
        self._model = model.eval()

    @property
    def model(self):
        """The seq2seq model (built here at its first use when the reader has a
        ``span_encoder``)."""
        if self._model is None:
            from .copyfid import load_trained

            with self._lock:
                if self._model is None:  # (over the span encoder's tensors: held once)
                    encoder = self.span_encoder
                    self._adopt(load_trained(self.model_dir, self.config.base_model,
                                             self.config.from_base or {}, encoder.dtype,
                                             known=encoder.tensors()))
        return self._model

    @property
    def tokenizer(self):
        """transformers' tokenizer of the checkpoint (loaded at its first use)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_dir, self.name)
        return self._tokenizer

    @property
    def eos_id(self) -> int:
        mc, tok = self.model.config, self.tokenizer
        if mc.eos_token_id is not None:
            return mc.eos_token_id
        return (getattr(getattr(mc, "decoder", None), "eos_token_id", None)
                or tok.eos_token_id or tok.sep_token_id)

    @property
    def pad_id(self) -> int | None:
        pad = self.model.config.pad_token_id
        return pad if pad is not None else self.tokenizer.pad_token_id

    @classmethod
    def load(cls, name: str, **overrides) -> "FiDReader":
        model_dir = _resolve(name)
        config = replace(ReaderConfig.load(model_dir), **overrides)
        if config.base_model:  # the project's reader: its span encoder, if it has one
            from .span_encoder import SpanEncoder

            encoder = SpanEncoder.load(model_dir, config.base_model, config.from_base or {},
                                       precision_dtype(config.precision, name))
            if encoder is not None:
                return cls(None, None, config, name, model_dir, encoder)
        model_dir, hf_config = read_config(name)
        if not getattr(hf_config, "is_encoder_decoder", False):
            raise UsageError(f"reader {name!r} is not a seq2seq (encoder-decoder) model; "
                             "use --reader-kind causal for a decoder-only model")
        if not any(model_dir.glob("*.safetensors")):
            raise UsageError(f"reader {name!r} has no safetensors weights in {model_dir}; "
                             "only safetensors are loaded (convert with safetensors' "
                             "convert script)")
        tokenizer = load_tokenizer(model_dir, name)
        dtype = precision_dtype(config.precision, name)
        if config.base_model:  # only the trained parameters are stored; the rest is the base
            from .copyfid import load_trained

            model = load_trained(model_dir, config.base_model, config.from_base or {}, dtype)
        else:
            from transformers import AutoModelForSeq2SeqLM

            model = with_precision(AutoModelForSeq2SeqLM.from_pretrained(
                model_dir, use_safetensors=True, trust_remote_code=False,
                attn_implementation="eager"), config.precision, name)
        if config.answer_mode != "generative" and not getattr(model.config, "span_head", False):
            raise UsageError(f"--answer-mode {config.answer_mode}: reader {name!r} has no span "
                             "head; use --answer-mode generative")
        return cls(model, tokenizer, config, name, model_dir)

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
        from .weights import share_parameters

        shared = 0
        for model in (self.span_encoder, self._model):  # (the whole model: if built already)
            if model is not None:
                shared = share_parameters(model, self.config.from_base, embedder.transformer())
        if self._model is not None:
            self._model.decoder.tie_weights()  # (the output layer is the embedding table)
        return shared

    def identity(self) -> dict:
        config = {k: v for k, v in asdict(self.config).items() if k != "from_base"}
        model_type = self._model.config.model_type if self._model is not None else \
            "rag-fid-copy"  # (a reader read by its span encoder is the project's own)
        dtype = self._model.dtype if self._model is not None else self.span_encoder.dtype
        return {"kind": self.kind, "name": self.name, "model_type": model_type,
                "dtype": str(dtype).replace("torch.", ""), "config": config}

    # -- the FiD forward pass ---------------------------------------------------------

    def encode(self, questions: list[str], passages: list[list[Hit]]):
        """Encoder states (B, P*L, d) and mask (B, P*L), P = most passages in the batch.

        Every passage is padded to the same L tokens; a missing passage is fully masked.
        """
        enc = tokenize_passages(self.tokenizer, self.config.input_format, questions, passages,
                                self.config.max_passage_tokens)
        n_p = enc["n_p"]
        hidden, mask = self._run_encoder(enc["input_ids"], enc["attention_mask"],
                                         enc["present"].long())
        b, length = len(questions), enc["input_ids"].shape[1]
        self._source_ids = enc["input_ids"].to(self.model.device).reshape(b, n_p * length)
        return (hidden.reshape(b, n_p * length, hidden.shape[-1]),
                mask.reshape(b, n_p * length), n_p, length)

    def _run_encoder(self, input_ids, attention_mask, present):
        """Encoder states (N, L, d), in chunks of ``encode_batch`` passages, and the mask
        (N, L) with absent passages fully masked."""
        import torch

        if self.span_encoder is not None:
            device, run = self.span_encoder.device, self.span_encoder.states
        else:
            device, encoder = self.model.device, self.model.get_encoder()

            def run(ids, mask):
                return encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        states = []
        with torch.inference_mode():
            for i in range(0, len(input_ids), self.config.encode_batch):
                sl = slice(i, i + self.config.encode_batch)
                states.append(run(input_ids[sl], attention_mask[sl]))
        return torch.cat(states), attention_mask * present.to(device)[:, None]

    @property
    def has_span_head(self) -> bool:
        return (self.span_encoder is not None
                or bool(getattr(self.model.config, "span_head", False)))

    def read_many(self, questions: list[str], passages: list[list[Hit]],
                  grounded: bool | None = None, mode: str | None = None) -> list[ReaderOutput]:
        return self.read_batch(questions, passages, grounded, mode).outputs

    def read_batch(self, questions: list[str], passages: list[list[Hit]],
                   grounded: bool | None = None, mode: str | None = None,
                   threshold: bool = True) -> ReadBatch:
        """One output per question; ``mode`` (extractive, generative, fused) defaults to the
        config's ``answer_mode``, and is generative for a reader without a span head.
        ``threshold=False``: a span reader never declines on its confidence threshold (the
        caller decides, e.g. with the abstention rule)."""
        mode = mode or self.config.answer_mode
        if mode not in ANSWER_MODES:
            raise UsageError(f"--answer-mode {mode!r} must be one of {', '.join(ANSWER_MODES)}")
        if mode != "generative" and not self.has_span_head:
            raise UsageError(f"--answer-mode {mode}: reader {self.name!r} has no span head; "
                             "use --answer-mode generative")
        outputs: list[ReaderOutput | None] = [None] * len(questions)
        live = [i for i, p in enumerate(passages) if p]
        for i in set(range(len(questions))) - set(live):  # nothing retrieved
            outputs[i] = ReaderOutput(NOT_FOUND, 0.0, [], abstained=True)
        if not live:
            return ReadBatch(outputs)
        qs, ps = [questions[i] for i in live], [passages[i] for i in live]
        read, timings = (self._generate(qs, ps, grounded, threshold) if mode == "generative"
                         else self._extract(qs, ps, mode, threshold))
        for i, out in zip(live, read):
            outputs[i] = out
        return ReadBatch(outputs, timings)

    def _extract(self, qs: list[str], ps: list[list[Hit]], mode: str, threshold: bool = True):
        """The span head's best span over all passages (shared normalisation); "fused"
        re-scores its top candidates with the decoder. Confidence is the span's probability
        against the no-answer option's."""
        import torch

        from . import spans

        t0 = time.perf_counter()
        if self.span_encoder is not None:  # (the project's reader: no transformers)
            head, tokenizer = self.span_encoder, self.span_encoder.tokenizer
        else:
            head, tokenizer = self.model, self.tokenizer
        enc = spans.encode_inputs(tokenizer, self.config.input_format, qs, ps,
                                  self.config.max_passage_tokens)
        hidden, _ = self._run_encoder(enc["input_ids"], enc["attention_mask"],
                                      enc["present"].long())
        n_p, length = enc["n_p"], enc["length"]
        with torch.inference_mode():
            st, en = head.span_logits(hidden)
            slp, elp = spans.log_probs(st, en, spans.candidate_mask(
                enc["context"], enc["present"]).to(st.device), n_p)
            null = spans.null_log_prob(slp, elp, n_p, length)
        top = max(self.config.fuse_top if mode == "fused" else 1, CANDIDATES)
        cands = spans.decode_spans(slp, elp, enc["context"].to(st.device), enc["char"], n_p,
                                   length, self.config.max_answer_tokens, top)
        t1 = time.perf_counter()
        if mode == "fused":
            fused = self._fuse(hidden, enc, qs, ps, [c[:self.config.fuse_top] for c in cands])
            cands = [f + c[self.config.fuse_top:] for f, c in zip(fused, cands)]
        t2 = time.perf_counter()
        # attribution: each passage's share of the answer-start probability
        share = slp.exp().reshape(len(qs), n_p, length).sum(-1)
        share = share / share.sum(-1, keepdim=True).clamp(min=1e-12)
        outputs = []
        for row, hits in enumerate(ps):
            if not cands[row]:
                outputs.append(ReaderOutput(NOT_FOUND, 0.0, share[row, :len(hits)].tolist(),
                                            abstained=True))
                continue
            best = cands[row][0]
            # over each passage an answer can come from (the pipeline may quote another
            # candidate's than the best: rag/pipeline.py by_rank)
            heat = {at: _heat(slp, elp, enc, row, n_p, length, at)
                    for at in sorted({c.passage for c in cands[row]})}
            confidence = float(torch.sigmoid(torch.tensor(best.score - float(null[row]))))
            answer = hits[best.passage].text[best.start:best.end]
            abstain = threshold and self.config.abstain_threshold is not None and \
                confidence < self.config.abstain_threshold
            outputs.append(ReaderOutput(
                answer=NOT_FOUND if abstain else answer, confidence=confidence,
                attention=[round(float(x), 6) for x in share[row, :len(hits)]],
                abstained=abstain, span=None if abstain else Span(best.passage, best.start,
                                                                  best.end),
                withheld=answer if abstain else None, heat=heat, candidates=tuple((round(math.exp(c.score), 6), c.passage, c.start,
                                             c.end) for c in cands[row])))
        return outputs, {"encode_ms": (t1 - t0) * 1000, "fuse_ms": (t2 - t1) * 1000}

    def _fuse(self, hidden, enc, qs, ps, cands):
        """Re-rank each question's span candidates by span log-probability plus
        ``fuse_weight`` times the decoder's log-likelihood of the span's text (one batched
        teacher-forced pass)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        rows, seqs = [], []
        for row, cs in enumerate(cands):
            for c in cs:
                text = ps[row][c.passage].text[c.start:c.end]
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                rows.append(row)
                seqs.append(ids[:self.config.max_new_tokens] + [self.eos_id])
        if not rows:
            return cands
        b, n_p, length = len(qs), enc["n_p"], enc["length"]
        states = hidden.reshape(b, n_p * length, -1)
        mask = (enc["attention_mask"] * enc["present"].long()[:, None]).reshape(b, -1)
        source = enc["input_ids"].reshape(b, -1)
        index = torch.tensor(rows)
        width = max(len(x) for x in seqs)
        start = self.model.generation_config.decoder_start_token_id
        targets = torch.full((len(seqs), width), self.pad_id if self.pad_id is not None else 0)
        valid = torch.zeros((len(seqs), width), dtype=torch.bool)
        for i, x in enumerate(seqs):
            targets[i, :len(x)] = torch.tensor(x)
            valid[i, :len(x)] = True
        dec_in = torch.cat([torch.full((len(seqs), 1), start), targets[:, :-1]], 1)
        device = self.model.device
        with torch.inference_mode():
            out = self.model(encoder_outputs=BaseModelOutput(
                                 last_hidden_state=states[index.to(device)]),
                             attention_mask=mask[index].to(device),
                             decoder_input_ids=dec_in.to(device),
                             source_ids=source[index].to(device))
            logp = torch.log_softmax(out.logits.float(), -1).gather(
                -1, targets.to(device)[..., None])[..., 0]
            logp = (logp * valid.to(device)).sum(1).tolist()
        fused, i = [], 0
        for cs in cands:
            scored = []
            for c in cs:
                scored.append((c.score + self.config.fuse_weight * logp[i], c))
                i += 1
            fused.append([replace(c, fused=s) for s, c in
                          sorted(scored, key=lambda x: (-x[0], x[1].passage, x[1].start_tok))])
        return fused

    def _generate(self, qs: list[str], ps: list[list[Hit]], grounded, threshold: bool = True):
        """The decoder's answer (greedy, or constrained to passage spans when grounded), no
        token repeated more than ``max_repeat`` times in a row, stopped after
        ``max_decode_seconds``. A reader with a span head reports the span head's confidence
        (its best span against its no-answer option, read from the same encoder states),
        so declining means the same in every mode; others, the answer's mean token
        probability."""
        import torch
        from transformers import LogitsProcessorList
        from transformers.modeling_outputs import BaseModelOutput

        grounded = self.config.grounded if grounded is None else grounded
        t0 = time.perf_counter()
        hidden, mask, n_p, length, span_conf = self._encode_for_generation(qs, ps)
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
                do_sample=False, max_time=self.config.max_decode_seconds,
                logits_processor=LogitsProcessorList([RunLimit(self.config.max_repeat)]),
                **kwargs)
            t2 = time.perf_counter()
            attention, confidence = self._attribute(hidden, mask, seqs, n_p, length)
        if span_conf is not None:
            confidence = span_conf
        timings = {"encode_ms": (t1 - t0) * 1000, "decode_ms": (t2 - t1) * 1000,
                   "attribute_ms": (time.perf_counter() - t2) * 1000}
        outputs = []
        for row in range(len(qs)):
            ids = self._answer_ids(seqs[row])
            answer = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
            span = constraints[row].locate(ids) if constraints else None
            low = (threshold and self.config.abstain_threshold is not None
                   and confidence[row] < self.config.abstain_threshold)
            abstain = not answer or low
            outputs.append(ReaderOutput(
                answer=NOT_FOUND if abstain else answer, confidence=confidence[row],
                attention=attention[row][:len(ps[row])], abstained=abstain, span=span,
                withheld=answer if abstain and answer else None))
        return outputs, timings

    def _encode_for_generation(self, qs, ps):
        """encode()'s outputs, plus each question's span-head confidence (None without a
        span head): the encoder runs once for both."""
        if not self.has_span_head:
            return (*self.encode(qs, ps), None)
        import torch

        from . import spans

        enc = spans.encode_inputs(self.tokenizer, self.config.input_format, qs, ps,
                                  self.config.max_passage_tokens)
        hidden, mask = self._run_encoder(enc["input_ids"], enc["attention_mask"],
                                         enc["present"].long())
        b, n_p, length = len(qs), enc["n_p"], enc["length"]
        with torch.inference_mode():
            st, en = self.model.span_logits(hidden)
            slp, elp = spans.log_probs(st, en, spans.candidate_mask(
                enc["context"], enc["present"]).to(st.device), n_p)
            null = spans.null_log_prob(slp, elp, n_p, length)
        best = spans.decode_spans(slp, elp, enc["context"].to(st.device), enc["char"], n_p,
                                  length, self.config.max_answer_tokens, 1)
        conf = [float(torch.sigmoid(torch.tensor(c[0].score - float(null[r])))) if c else 0.0
                for r, c in enumerate(best)]
        self._source_ids = enc["input_ids"].to(self.model.device).reshape(b, n_p * length)
        return (hidden.reshape(b, n_p * length, hidden.shape[-1]),
                mask.reshape(b, n_p * length), n_p, length, conf)

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


class RunLimit:
    """A logits processor: no token may follow ``limit`` copies of itself in a row (a small
    decoder's failure mode is one token over and over: "))))))))")."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] < self.limit:
            return scores
        tail = input_ids[:, -self.limit:]
        same = (tail == tail[:, :1]).all(1)
        if same.any():
            rows = same.nonzero()[:, 0]
            scores[rows, tail[rows, 0]] = float("-inf")
        return scores


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


def _heat(slp, elp, enc, row: int, n_p: int, length: int, passage: int):
    """[(char start, char end, p_start, p_end)] over one passage's context tokens: the span
    head's start and end probabilities (shared normalisation over all passages)."""
    slot = row * n_p + passage
    mask = enc["context"][slot]
    char = enc["char"][slot][mask].tolist()
    ps_ = slp.reshape(-1, n_p, length)[row, passage].exp()[mask.to(slp.device)].tolist()
    pe_ = elp.reshape(-1, n_p, length)[row, passage].exp()[mask.to(elp.device)].tolist()
    return [(int(a), int(b), round(s, 5), round(e, 5)) for (a, b), s, e in zip(char, ps_, pe_)]


def model_type(name: str) -> str | None:
    """The ``model_type`` in reader ``name``'s config.json, read as JSON; None if unreadable."""
    try:
        return json.loads((_resolve(name) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def read_config(name: str):
    """(directory, Hugging Face config) of reader ``name``; a UsageError if it has none.
    Every reader loaded through transformers passes here: its progress bars go quiet."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from . import copyfid  # noqa: F401  (registers the project's architecture)

    hf_logging.disable_progress_bar()  # (a "Loading weights" bar on stderr before each answer)
    model_dir = _resolve(name)
    try:
        return model_dir, AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
    except Exception as err:
        raise UsageError(f"reader {name!r}: no usable config.json in {model_dir} ({err})") \
            from None


def with_precision(model, precision: str, name: str):
    """The model in bf16 when asked, or for "auto" where the CPU computes bf16 natively."""
    import torch

    return model.to(torch.bfloat16) if precision_dtype(precision, name) == torch.bfloat16 \
        else model


def precision_dtype(precision: str, name: str):
    """torch.bfloat16 when asked, or for "auto" where the CPU computes bf16 natively; else
    torch.float32."""
    import torch

    from knowledge.embedding import resolve_precision

    bf16 = resolve_precision(precision, f"reader {name!r}") == "bf16"
    return torch.bfloat16 if bf16 else torch.float32


def _resolve(name: str) -> Path:
    from knowledge.embedding import resolve_model

    return resolve_model(name, packaged={}, default_org=None, what="reader",
                         hint="pass a local checkpoint directory or a hub name")
