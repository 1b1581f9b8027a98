"""Extractive evidence: the passage sentence that best matches a question, quoted.

When a question or its passages are in a language the reader was not trained on (its
config's ``scripts``), a generated or extracted "answer" would be invented; the pipeline
returns this instead, marked as evidence, with the sentence's exact characters cited.

A sentence scores the share of the question's terms it holds (terms as BM25 sees them:
words, CJK bigrams; ``knowledge.lexical``), weighted by how rare each term is among the
passages' sentences, plus a small bonus for the passage's retrieval rank.

Example: ``best_sentence("长江有多长？", hits) -> (0, (12, 30))``  (passage, span).
"""
from __future__ import annotations

import math
import re

from knowledge.kb import STOPWORDS
from knowledge.lexical import lexical

# a sentence ends after a CJK full stop, at .!? before a space, or at a line break
_END = re.compile(r"(?<=[。！？；])|(?<=[.!?])\s+|\n+")
RANK_BONUS = 0.05  # per rank above the last passage: ties go to the better-retrieved one
MAX_CHARS = 400  # a sentence longer than this is cut to the part around its best terms


def terms(text: str) -> set[str]:
    words = [w.lower() for w in re.findall(r"\w+", lexical(text))]
    return {w for w in words if w not in STOPWORDS}


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, spaces trimmed."""
    spans, start = [], 0
    for m in _END.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, min(b, a + MAX_CHARS)))
    return out


def is_question(sentence: str) -> bool:
    """A sentence that asks (an FAQ's question line): it ends with a question mark."""
    return sentence.rstrip().rstrip("*_\"'”’」』）)").endswith(("?", "？"))


def best_sentence(question: str, passages) -> tuple[int, tuple[int, int]] | None:
    """(passage index, (start, end) in its text) of the best-matching sentence, or None when
    no sentence shares a term with the question. A sentence that is itself a question (an
    FAQ's question line) is never the evidence: its match counts for the sentence after it,
    which answers it."""
    wanted = terms(question)
    candidates = [(i, span, terms(p.text[span[0]:span[1]]), is_question(p.text[span[0]:span[1]]))
                  for i, p in enumerate(passages) for span in sentences(p.text)]
    if not wanted or not candidates:
        return None
    df = {t: sum(1 for _, _, ts, _ in candidates if t in ts) for t in wanted}
    idf = {t: math.log(1 + len(candidates) / (1 + n)) for t, n in df.items()}
    total = sum(idf.values()) or 1.0
    scores = [sum(idf[t] for t in wanted & ts) / total for _, _, ts, _ in candidates]
    for j, (i, _, _, asks) in enumerate(candidates):  # a question line's match: its answer's
        if asks and j + 1 < len(candidates) and candidates[j + 1][0] == i:
            scores[j + 1] = max(scores[j + 1], scores[j])
    best, best_score = None, 0.0
    for (i, span, _, asks), score in zip(candidates, scores):
        if score <= 0 or asks:
            continue
        score += RANK_BONUS * (len(passages) - 1 - i) / max(len(passages) - 1, 1)
        if score > best_score:
            best, best_score = (i, span), score
    return best
