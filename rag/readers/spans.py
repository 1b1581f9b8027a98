"""Extractive answers over all passages of a question at once (the span head's side).

The span head scores every context token of every passage as an answer start and end; one
softmax runs over all passages' positions together (shared normalisation, Clark & Gardner
2018), so scores are comparable across passages and a distractor can only take probability
away from the gold span, never add to it. Each passage's first token ([CLS]) is the
no-answer option. Training marginalises over every occurrence of any gold answer in any
passage (maximum marginal likelihood). A span never crosses a passage, is capped in length,
and maps to exact character offsets of its passage: an answer is a quotation by construction.

Example::

    enc = encode_inputs(tokenizer, template, ["Who won?"], [[hit]], 256)
    [cands] = decode_spans(start, end, enc["context"], enc["n_p"], enc["length"], 30, 5)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

NEG = -1e4  # a masked logit (finite, so bf16 and fp32 sums stay finite)


@dataclass(frozen=True)
class Candidate:
    """An answer span: passage index, token positions in it, characters in its text."""

    passage: int
    start_tok: int
    end_tok: int
    start: int
    end: int
    score: float  # log P(start) + log P(end), shared normalisation over all passages
    fused: float | None = None  # score plus the decoder's weighted log-likelihood (fused mode)


def context_start(template: str, question: str, title: str) -> int:
    """Where the passage text begins in the formatted encoder input (the template must end
    with ``{context}``, so that passage characters map one to one)."""
    if not template.rstrip().endswith("{context}"):
        raise ValueError(f"a span reader's input format must end with {{context}}: {template!r}")
    return len(template.format(question=question.strip(), title=title, context=""))


def encode_inputs(tokenizer, template: str, questions: list[str], passages: list[list],
                  max_tokens: int) -> dict:
    """Tokenised FiD inputs with the offsets a span head needs.

    Returns input_ids and attention_mask (B*P, L); ``present`` (B*P,) whether the slot holds
    a passage; ``context`` (B*P, L) bool, the tokens that may start or end an answer;
    ``char`` (B*P, L, 2) each token's characters in its passage text; ``n_p`` and ``length``.
    """
    n_p = max(1, max(len(p) for p in passages))
    texts, starts, present = [], [], []
    for q, hits in zip(questions, passages):
        for j in range(n_p):
            hit = hits[j] if j < len(hits) else None
            title = (hit.title or hit.doc_id) if hit else ""
            cs = context_start(template, q, title)
            body = template.format(question=q.strip(), title=title, context="")
            texts.append(body + (hit.text if hit else ""))
            starts.append(cs)
            present.append(hit is not None)
    enc = tokenizer(texts, max_length=max_tokens, truncation=True, padding="longest",
                    return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")  # (B*P, L, 2)
    cs = torch.tensor(starts)[:, None]
    context = (offsets[..., 0] >= cs) & (offsets[..., 1] > offsets[..., 0])
    context &= torch.tensor(present)[:, None]
    char = (offsets - cs[..., None]).clamp(min=0)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "present": torch.tensor(present), "context": context, "char": char,
            "n_p": n_p, "length": enc["input_ids"].shape[1]}


def answer_positions(text: str, answers, char: torch.Tensor, context: torch.Tensor,
                     max_len: int) -> list[tuple[int, int]]:
    """Token (start, end) of every occurrence of any answer in ``text`` (case-insensitive,
    on word boundaries) that lies wholly in the encoded context and spans at most
    ``max_len`` tokens. ``char``/``context`` are that passage's rows of ``encode_inputs``."""
    positions = set()
    lower = text.lower()
    ctx = context.nonzero()[:, 0].tolist()
    if not ctx:
        return []
    starts = char[ctx, 0].tolist()
    ends = char[ctx, 1].tolist()
    for answer in answers:
        a = answer.strip().lower()
        if not a:
            continue
        for m in re.finditer(re.escape(a), lower):
            s, e = m.start(), m.end()
            if (s > 0 and lower[s - 1].isalnum() and a[0].isalnum()) or \
                    (e < len(lower) and lower[e].isalnum() and a[-1].isalnum()):
                continue  # inside a longer word or number
            first = next((i for i, x in enumerate(ends) if x > s), None)
            last = next((i for i in range(len(starts) - 1, -1, -1) if starts[i] < e), None)
            if first is None or last is None or first > last or ends[last] < e:
                continue  # (partly) cut off by truncation
            if ctx[last] - ctx[first] < max_len:
                positions.add((ctx[first], ctx[last]))
    return sorted(positions)


def candidate_mask(context: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(B*P, L) positions a start or end may sit at: context tokens and each present
    passage's [CLS] (the no-answer option)."""
    mask = context.clone()
    mask[:, 0] = present
    return mask


def log_probs(start_logits, end_logits, mask, n_p: int):
    """Shared normalisation: log-softmax of start and end logits over all positions of all
    passages of a question. Inputs (B*P, L); outputs (B, P*L)."""
    b = start_logits.shape[0] // n_p
    m = mask.reshape(b, -1)
    s = start_logits.float().reshape(b, -1).masked_fill(~m, NEG)
    e = end_logits.float().reshape(b, -1).masked_fill(~m, NEG)
    return s.log_softmax(-1), e.log_softmax(-1)


def mml_loss(start_lp, end_lp, gold: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Mean over questions of -log sum over gold spans of P(start) P(end); ``gold`` holds
    flat (start, end) positions in the P*L concatenation (no-answer: each passage's [CLS])."""
    losses = []
    for row, spans in enumerate(gold):
        if not spans:
            continue
        s = torch.tensor([a for a, _ in spans], device=start_lp.device)
        e = torch.tensor([b for _, b in spans], device=start_lp.device)
        losses.append(-torch.logsumexp(start_lp[row, s] + end_lp[row, e], 0))
    if not losses:
        return start_lp.sum() * 0.0
    return torch.stack(losses).mean()


def no_answer_positions(n_p: int, length: int, present) -> list[tuple[int, int]]:
    """The flat (start, end) of each present passage's [CLS]: the no-answer target."""
    return [(j * length, j * length) for j in range(n_p) if present[j]]


def null_log_prob(start_lp, end_lp, n_p: int, length: int) -> torch.Tensor:
    """(B,) log P(no answer): the mass of [CLS]-to-[CLS] over all passages."""
    cls = torch.arange(n_p, device=start_lp.device) * length
    return torch.logsumexp(start_lp[:, cls] + end_lp[:, cls], -1)


def decode_spans(start_lp, end_lp, context, char, n_p: int, length: int, max_len: int,
                 top: int) -> list[list[Candidate]]:
    """The ``top`` best spans per question, best first: start <= end in one passage, both
    context tokens, at most ``max_len`` tokens; ties broken by position (deterministic)."""
    b = start_lp.shape[0]
    ctx = context.reshape(b, n_p, length)
    s = start_lp.reshape(b, n_p, length).masked_fill(~ctx, float("-inf"))
    e = end_lp.reshape(b, n_p, length).masked_fill(~ctx, float("-inf"))
    scores = s[..., :, None] + e[..., None, :]  # (B, P, L, L): start x end
    i = torch.arange(length, device=s.device)
    valid = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_len)
    scores = scores.masked_fill(~valid, float("-inf")).reshape(b, -1)
    k = min(top, scores.shape[1])
    values, flat = scores.topk(k, -1, sorted=True)
    out = []
    char = char.reshape(b, n_p, length, 2)
    for row in range(b):
        cands = []
        for v, f in sorted(zip(values[row].tolist(), flat[row].tolist()), key=lambda x: (-x[0], x[1])):
            if v == float("-inf"):
                break
            p, rest = divmod(f, length * length)
            st, en = divmod(rest, length)
            cands.append(Candidate(p, st, en, int(char[row, p, st, 0]), int(char[row, p, en, 1]), v))
        out.append(cands)
    return out
