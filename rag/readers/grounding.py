"""Grounded decoding: constrain generation to spans that occur in the retrieved passages.

The decoder may only continue its answer with a token that extends the answer to a
contiguous run of some passage's tokens (passages tokenised alone, as answers are), or end
it. Afterwards the span is located and mapped to character offsets through the tokenizer's
offset mapping, so a citation points at the exact characters.

Example: ``g = SpanConstraint(tokenizer, ["The Broncos won."], eos_id=1); g.allowed([])``.
"""
from __future__ import annotations

from .base import Span


class SpanConstraint:
    """Allowed next tokens for one question, given its passages."""

    def __init__(self, tokenizer, passages: list[str], eos_id: int):
        self.eos_id = eos_id
        self.tokens: list[list[int]] = []
        self.offsets: list[list[tuple[int, int]]] = []
        for text in passages:
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            self.tokens.append(list(enc["input_ids"]))
            self.offsets.append([tuple(o) for o in enc["offset_mapping"]])
        self._starts: dict[int, list[tuple[int, int]]] = {}  # token -> (passage, position)
        for p, toks in enumerate(self.tokens):
            for i, t in enumerate(toks):
                self._starts.setdefault(t, []).append((p, i))
        self._first = sorted(self._starts)

    def _matches(self, prefix: list[int]) -> list[tuple[int, int]]:
        """(passage, position after the prefix) for each occurrence of ``prefix``."""
        out = []
        for p, i in self._starts.get(prefix[0], ()):
            toks = self.tokens[p]
            if toks[i:i + len(prefix)] == prefix:
                out.append((p, i + len(prefix)))
        return out

    def allowed(self, prefix: list[int]) -> list[int]:
        if not prefix:
            return self._first
        nxt = {self.tokens[p][j] for p, j in self._matches(prefix) if j < len(self.tokens[p])}
        return sorted(nxt | {self.eos_id})

    def locate(self, answer_ids: list[int]) -> Span | None:
        """The first passage span whose tokens equal ``answer_ids``, in characters."""
        if not answer_ids:
            return None
        for p, end in self._matches(answer_ids):
            start = end - len(answer_ids)
            return Span(p, self.offsets[p][start][0], self.offsets[p][end - 1][1])
        return None
