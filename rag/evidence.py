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


def is_heading(sentence: str) -> bool:
    """A heading line (Markdown ``#``, or a short line without a sentence end)."""
    s = sentence.strip()
    return s.startswith("#") or (len(s) <= 30 and not re.search(r"[。！？.!?；;，,：:]$", s)
                                 and "\n" not in s and not re.search(r"\d", s[-3:] or " "))


# a question after a number (how many, how long, when, which year): the evidence should hold one
_ASKS_NUMBER = re.compile(r"多少|几|多大|多长|多久|多高|多重|何时|什么时候|哪一?年|哪天|哪一天|"
                          r"\bhow (many|much|long|old|far|big|often)\b|\bwhen\b|\bwhat year\b",
                          re.I)
NUMBER_BONUS = 0.15


def best_sentence(question: str, passages) -> tuple[int, tuple[int, int]] | None:
    """(passage index, (start, end) in its text) of the best-matching sentence, or None when
    no sentence shares a term with the question. A sentence that is itself a question (an
    FAQ's question line) or a heading is never the evidence: its match counts for the
    sentence after it, which answers it. A question after a number prefers a sentence that
    holds one, and where the best sentence has none, the next one is taken with it."""
    wanted = terms(question)
    candidates = []
    for i, p in enumerate(passages):
        for span in sentences(p.text):
            text = p.text[span[0]:span[1]]
            candidates.append((i, span, terms(text), is_question(text) or is_heading(text)))
    if not wanted or not candidates:
        return None
    df = {t: sum(1 for _, _, ts, _ in candidates if t in ts) for t in wanted}
    idf = {t: math.log(1 + len(candidates) / (1 + n)) for t, n in df.items()}
    total = sum(idf.values()) or 1.0
    scores = [sum(idf[t] for t in wanted & ts) / total for _, _, ts, _ in candidates]
    for j, (i, _, _, lead) in enumerate(candidates):  # a question line's or heading's match
        if lead and j + 1 < len(candidates) and candidates[j + 1][0] == i:  # is its answer's
            scores[j + 1] = max(scores[j + 1], scores[j])
    number = bool(_ASKS_NUMBER.search(question))
    best, best_score = None, 0.0
    for j, ((i, span, _, lead), score) in enumerate(zip(candidates, scores)):
        if score <= 0 or lead:
            continue
        text = passages[i].text[span[0]:span[1]]
        if number and re.search(r"\d|[一二三四五六七八九十百千万两]", text):
            score += NUMBER_BONUS
        score += RANK_BONUS * (len(passages) - 1 - i) / max(len(passages) - 1, 1)
        if score > best_score:
            best, best_score = (i, span, j), score
    if best is None:
        return None
    i, (a, b), j = best
    text = passages[i].text
    if number and not re.search(r"\d", text[a:b]) and j + 1 < len(candidates) \
            and candidates[j + 1][0] == i and re.search(r"\d", text.__getitem__(
                slice(*candidates[j + 1][1]))) and candidates[j + 1][1][1] - a <= MAX_CHARS:
        b = candidates[j + 1][1][1]  # the number follows in the next sentence
    return i, (a, b)
