"""The text that BM25 indexes and matches: CJK runs cut into overlapping bigrams.

Tokenizers that split at spaces and punctuation (Tantivy's simple one, SQLite's
``unicode61``) make a run of Chinese or Japanese characters (written without spaces) one
token, and BM25 finds it only when a query repeats the whole run. ``lexical(text)``
rewrites every run of CJK characters as its overlapping character bigrams ("自然语言" ->
"自然 然语 语言"), the segmentation of Lucene's CJK analyzer; a lone character stays a
unigram. Text without CJK comes back unchanged, so English BM25 is exactly what it was.
Bigrams need no dictionary and are deterministic forever (the function must never change
for a given ``LEXICAL_VERSION``: FTS5, in knowledge bases of a format before 5, deletes by
re-tokenising the text); measured against jieba word segmentation and SQLite's
``trigram`` tokenizer on eval/data/zh-notes in eval/bench_cjk_lexical.py.

Example: ``lexical("长江全长6300公里") == "长江 江全 全长 6300 公里"``.
"""
from __future__ import annotations

import re

LEXICAL_VERSION = "cjk-bigram-1"  # recorded in the manifest; a change means re-indexing FTS

# Han (with extensions and compatibility ideographs), kana, Hangul, CJK letters.
CJK = ("\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
       "\ua960-\ua97f\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f")
_RUN = re.compile(f"[{CJK}]+")
# Words too common to help BM25: dropped from queries (kept in the index and its lengths).
STOPWORDS = frozenset("""a an and are as at be but by did do does for from had has have how in
is it its of on or that the this to was were what when where which who whom whose why will
with""".split())


def has_cjk(text: str) -> bool:
    return _RUN.search(text) is not None


def _bigrams(match: re.Match) -> str:
    run = match.group()
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i:i + 2] for i in range(len(run) - 1)) + " "


def lexical(text: str) -> str:
    """``text`` as BM25 indexes it: CJK runs as bigrams, everything else as it is."""
    if text is None or not has_cjk(text):
        return text
    return _RUN.sub(_bigrams, text)


def register(conn) -> None:
    """Make ``lexical()`` callable from SQL on ``conn`` (the FTS5 triggers and view of a
    knowledge base of a format before 5 use it)."""
    conn.create_function("lexical", 1, lexical, deterministic=True)
