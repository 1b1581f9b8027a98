"""QA metrics: SQuAD answer normalisation, exact match, token F1, retrieval ranks.

Example: ``f1("the Denver Broncos", ["Denver Broncos"])  # 1.0``.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

from knowledge.lexical import CJK, has_cjk

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_CJK_CHAR = re.compile(f"[{CJK}]")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, drop punctuation and articles, collapse spaces.
    Text with CJK characters is also cut into them, one token each, and loses its Unicode
    punctuation (as MLQA and CMRC score Chinese); other text is scored exactly as SQuAD's."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    if has_cjk(text):
        text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
        text = _CJK_CHAR.sub(lambda m: f" {m.group()} ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: list[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, answers: list[str]) -> float:
    """Token F1 against the best-matching gold answer."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


def _plain(text: str) -> str:
    """``normalize_answer`` without any Unicode punctuation either: a manual quotes a
    command in typographic quotes (“export X = 1”), which SQuAD's ASCII list keeps."""
    return " ".join("".join(ch for ch in normalize_answer(text)
                            if not unicodedata.category(ch).startswith("P")).split())


def answer_in_text(answers: list[str], text: str) -> bool:
    """Does a normalised gold answer occur in the normalised text (on token boundaries)?"""
    padded = f" {_plain(text)} "
    return any(f" {a} " in padded for a in map(_plain, answers) if a)


WORD_LIMIT = 60  # an answer longer than this is not one a person reads as an answer


def answer_words(text: str) -> int:
    """Words a reader of the answer reads (whitespace-separated; CJK characters count one
    each, as a 60-word answer would be about 100 characters of Chinese)."""
    return len(normalize_answer(text).split()) if has_cjk(text) else len(text.split())


def contains_answer(prediction: str, answers: list[str], limit: int = WORD_LIMIT) -> bool:
    """Right by containment: the prediction holds an acceptable answer (normalised, on token
    boundaries) and is at most ``limit`` words. ``contains_answer("Use print -deps f.eps to
    save it", ["print -deps f.eps"])  # True``."""
    return answer_words(prediction) <= limit and answer_in_text(answers, prediction)


def is_gold(doc_id: str, gold_ids) -> bool:
    """Whether a document is one a QA set names: by its id, or, for a row of a JSONL/CSV
    file (``<file>#<row id>``), by the row's id."""
    from knowledge.loaders import row_id_of

    return doc_id in gold_ids or row_id_of(doc_id) in gold_ids


def first_gold_rank(retrieved_doc_ids: list[str], gold_ids: list[str]) -> int | None:
    """1-based rank of the first retrieved chunk from a gold document; None if absent."""
    gold = set(gold_ids)
    for rank, doc_id in enumerate(retrieved_doc_ids, 1):
        if is_gold(doc_id, gold):
            return rank
    return None


def recall_at(ranks: list[int | None], k: int) -> float:
    """Share of questions whose first gold rank is within ``k`` (0-1)."""
    if not ranks:
        return 0.0
    return sum(1 for r in ranks if r is not None and r <= k) / len(ranks)


def mean_reciprocal_rank(ranks: list[int | None]) -> float:
    if not ranks:
        return 0.0
    return sum(1.0 / r for r in ranks if r) / len(ranks)


def question_type(question: str) -> str:
    """The question's wh-word (what, who, when, ...) or 'other', for breakdowns."""
    words = re.findall(r"[a-z]+", question.lower())
    for w in words[:6]:
        if w in ("what", "which", "who", "whom", "whose", "when", "where", "why", "how"):
            return {"whom": "who", "whose": "who"}.get(w, w)
    return "other"
