"""Check shaped answers against issue 22's promise, over real passages: an answer is at most
60 words and is never cut inside a word, a bracket pair, a string or a code line (and, as a
matter of style, a sentence or excerpt does not end on a comma).

Shapes every question of `eval/unit_choice.py dump` files in the three forms `rag ask` gives
(the short span, the unit(s) grown by the question's kind, the excerpt over technical
documentation) and counts the answers that break a rule, with examples. A bracket or a
string counts as cut only where the line it stands in is whole (a passage may begin or end
inside one); a code line only for the unit forms (a short span is a token by design).

    .venv/bin/python eval/form_audit.py runs/units-dev.jsonl runs/units-mt.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rag.forms import EXCERPT, WORD_LIMIT, question_kind, shape  # noqa: E402
from rag.units import looks_like_code, words  # noqa: E402

PAIRS = {"(": ")", "[": "]", "{": "}"}
FORMS = {"short": (True, 0), "unit": (False, 0), "excerpt": (False, EXCERPT)}


def unbalanced(text: str) -> bool:
    stack: list[str] = []
    for ch in text:
        if ch in PAIRS:
            stack.append(ch)
        elif ch in PAIRS.values():
            if not stack or PAIRS[stack.pop()] != ch:
                return True
    return bool(stack)


def line_at(text: str, at: int) -> tuple[int, int]:
    end = text.find("\n", at)
    return text.rfind("\n", 0, at) + 1, len(text) if end < 0 else end


def broken(text: str, s: int, e: int, whole_units: bool) -> list[str]:
    """The rules ``text[s:e]`` breaks."""
    answer, (la, lb) = text[s:e], line_at(text, s)
    lb = line_at(text, e)[1]
    word = lambda ch: ch.isalnum() or ch == "_"  # noqa: E731
    out = []
    if words(answer) > WORD_LIMIT:
        out.append("over the word limit")
    if (s > 0 and word(text[s - 1]) and word(text[s])) or \
            (e < len(text) and word(text[e - 1]) and word(text[e])):
        out.append("inside a word")
    if unbalanced(answer) and not unbalanced(text[la:lb]):
        out.append("inside a bracket pair")
    if answer.count('"') % 2 and not text[la:lb].count('"') % 2:
        out.append("inside a string")
    if whole_units and answer.rstrip().endswith((",", ";")):
        out.append("ending on a comma")
    if whole_units:
        first, last = line_at(text, s), line_at(text, e)  # (its indentation aside)
        if (text[first[0]:s].strip() and looks_like_code(text[first[0]:first[1]])) or \
                (text[e:last[1]].strip() and looks_like_code(text[last[0]:last[1]])):
            out.append("inside a code line")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--examples", type=int, default=3)
    args = ap.parse_args()
    counts, shaped, examples = Counter(), Counter(), defaultdict(list)
    for dump in args.dumps:
        for row in map(json.loads, open(dump)):
            spans = [tuple(c) for c in row["candidates"]]
            for form, (short_form, excerpt) in FORMS.items():
                got = shape(row["passages"], spans, question_kind(row["question"]),
                            short_form, excerpt)
                if got is None:
                    continue
                at, answer = got
                text = row["passages"][at]
                shaped[form] += 1
                for rule in broken(text, answer.start, answer.end, not short_form):
                    counts[form, rule] += 1
                    if len(examples[form, rule]) < args.examples:
                        examples[form, rule].append(
                            f"{row['id']}: {text[answer.start:answer.end][:160]!r}")
    for form in FORMS:
        print(f"{form:8} {shaped[form]:6} answers: " + (", ".join(
            f"{rule} {n}" for (f, rule), n in sorted(counts.items()) if f == form) or "none"))
    for (form, rule), lines in sorted(examples.items()):
        if not lines:
            continue
        print(f"\n{form}, {rule}:")
        for line in lines:
            print("  " + line)


if __name__ == "__main__":
    main()
