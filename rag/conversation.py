"""Follow-up questions: a question that refers back to earlier turns, made self-contained.

"Who founded Apple?" - "Steve Jobs" - "When did he step down?" is asked as "When did Steve
Jobs step down?": a pronoun, a definite description ("the company", "that year") or an
ellipsis ("and in 2015?") is replaced by what the earlier turns named. Rules, not a model:
the rewrite is instant, deterministic and shown to the user, and a question that holds no
reference back is asked exactly as it was typed.

Example::

    resolve("When did he step down?", [Turn("Who founded Apple?", "Steve Jobs")])
    # Resolved(question="When did Steve Jobs step down?", references=("he",))
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_TURNS = 4  # earlier turns consulted (the most recent first)


@dataclass(frozen=True)
class Turn:
    """An earlier question and the answer the user was told (None: not answered)."""

    question: str
    answer: str | None = None

    @classmethod
    def parse(cls, item) -> "Turn":
        """A turn from ``{"question": ..., "answer": ...}`` (ValueError when malformed)."""
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise ValueError("each history turn is an object with a 'question' string "
                             "(and an optional 'answer' string)")
        answer = item.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise ValueError("a history turn's 'answer' must be a string")
        return cls(item["question"], answer)


@dataclass(frozen=True)
class Resolved:
    """The question to search and read with, and what was replaced in it (empty: the
    question stands alone and is asked as typed)."""

    question: str
    references: tuple[str, ...] = ()
    replaced_with: tuple[str, ...] = field(default=())


_PERSON = {"he": "", "him": "", "his": "'s", "she": "", "her": "", "hers": "'s"}
_THING = {"it": "", "its": "'s"}
_GROUP = {"they": "", "them": "", "their": "'s"}
_GENERIC = ("company|firm|city|town|country|state|river|lake|mountain|island|band|group|team|"
            "club|book|novel|film|movie|album|song|show|series|game|war|battle|university|"
            "college|school|building|church|party|organization|organisation|program|programme|"
            "project|king|queen|president|emperor|author|writer|artist|singer|player|person|man|"
            "woman|place|event|period|empire|dynasty|language|species|disease|process|method|"
            "function|command|option|file|package|tool|system|device|machine|product|model|"
            "character|region|province|county|area|station|bridge|ship|aircraft|car|treaty|law|"
            "act|plan|era|century|reign|network|channel|station|court|agency|museum|stadium")
_DEFINITE = re.compile(rf"\b(the|this|that|these|those)\s+({_GENERIC})s?\b", re.I)
_THEN = re.compile(r"\b(that|the same) (year|time|day|decade|century|period)\b|\bback then\b", re.I)
_ELLIPSIS = re.compile(r"^\s*(and|but|also|so)?\s*(what|how)\s+about\b", re.I)
_AND = re.compile(r"^\s*(and|but|also)\b[\s,]*", re.I)
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are",
       "was", "were", "did", "do", "does", "can", "could", "in", "on", "at", "and", "the", "a",
       "an", "of", "for", "to", "by", "after", "before", "during", "since", "name"}
_ENTITY = re.compile(r"\b([A-Z][\w'\-.&]*(?:\s+(?:of|the|de|von|van|and|&)?\s*[A-Z][\w'\-.&]*)*)")
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b")
_NOT_FOUND = "not found in the knowledge base"


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text.lower())


def references(question: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each word that points back: a personal pronoun ("person",
    "thing", "group"), a definite description ("definite"), or "then" (a time)."""
    found = []
    for m in re.finditer(r"\b[A-Za-z]+\b", question):
        w = m.group().lower()
        kind = ("person" if w in _PERSON else "thing" if w in _THING else
                "group" if w in _GROUP else None)
        if kind:
            found.append((m.start(), m.end(), kind))
    found += [(m.start(), m.end(), "definite") for m in _DEFINITE.finditer(question)]
    found += [(m.start(), m.end(), "then") for m in _THEN.finditer(question)]
    return sorted(found)


def entities(text: str) -> list[str]:
    """Names in a question or answer: runs of capitalised words (not a question's first
    word unless it is a name), years, quoted terms."""
    out = []
    for m in _ENTITY.finditer(text):
        name = m.group(1).strip(" .'")
        first = name.split()[0].lower()
        if m.start() == 0 or text[:m.start()].rstrip().endswith(("?", ".", "!")):
            if first in _WH:  # "What ..." / "The ..." open a sentence; drop that word
                name = " ".join(name.split()[1:])
        if name and name.lower() not in _WH and len(name) > 1:
            out.append(name)
    out += re.findall(r"[\"“']([^\"”']{2,40})[\"”']", text)
    return out


def _candidates(history: list[Turn]) -> list[tuple[str, str]]:
    """(kind, text) antecedents, most recent first: each turn's answer (a short one), then
    the names in its question."""
    out = []
    for turn in reversed(history[-MAX_TURNS:]):
        answer = (turn.answer or "").strip().strip(".")
        if answer and answer.lower() != _NOT_FOUND and len(answer.split()) <= 8:
            asks_who = _words(turn.question)[:1] in (["who"], ["whom"], ["whose"])
            kind = ("year" if _YEAR.fullmatch(answer) else
                    "person" if asks_who else "answer")
            out.append((kind, answer))
        for name in entities(turn.question):
            out.append(("year" if _YEAR.fullmatch(name) else "name", name))
    return out


def _pick(kind: str, candidates: list[tuple[str, str]], question: str) -> str | None:
    """The antecedent a reference of ``kind`` most likely means."""
    own = question.lower()
    usable = [(k, t) for k, t in candidates if t.lower() not in own]
    if kind == "then":
        return next((t for k, t in usable if k == "year"), None)
    # the latest answer is what the conversation is about now, where its kind fits: "Who
    # founded Apple?" "Steve Jobs" - "he" is Jobs, "its" is Apple
    order = {"person": ("person", "name", "answer"), "thing": ("answer", "name"),
             "definite": ("answer", "person", "name"),
             "group": ("answer", "name", "person")}[kind]
    for want in order:
        for k, t in usable:
            if k == want:
                return t
    return None


def resolve(question: str, history: list[Turn]) -> Resolved:
    """The question made self-contained from ``history`` (oldest first), or as typed when
    it holds no reference back (or nothing in the history to resolve it with)."""
    history = [t for t in history if t.question.strip()]
    if not history:
        return Resolved(question)
    candidates = _candidates(history)
    if _ELLIPSIS.match(question) or _elliptical(_AND.sub("", question)):
        rewritten = _complete(question, history[-1].question)
        if rewritten:
            return Resolved(rewritten, (question.strip(),), (history[-1].question,))
    named = [m.start() for m in _ENTITY.finditer(question) if entities(m.group(1))
             and m.start() > 0]
    # a pronoun after a name of its own question points at that name ("What did the
    # Normans call their land?"), not back at the conversation
    refs = [r for r in references(question) if not any(n < r[0] for n in named)]
    if not refs:
        return Resolved(question)
    out, last, used, names = [], 0, [], []
    for start, end, kind in refs:
        if start < last:
            continue
        name = _pick(kind, candidates, question)
        if name is None:
            continue
        word = question[start:end]
        suffix = _PERSON.get(word.lower(), _THING.get(word.lower(), _GROUP.get(word.lower(), "")))
        if kind == "then":
            name, suffix = f"in {name}", ""
        elif suffix and name.endswith("s"):
            suffix = "'"  # the Visigoths' leader
        out.append(question[last:start] + name + suffix)
        last = end
        used.append(word)
        names.append(name)
    if not used:
        return Resolved(question)
    out.append(question[last:])
    return Resolved("".join(out), tuple(used), tuple(names))


def _elliptical(question: str) -> bool:
    """A fragment rather than a question: a few words without a verb-like word."""
    words = _words(question)
    asks = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is",
            "are", "was", "were", "did", "do", "does", "can", "could", "name"}
    return 0 < len(words) <= 4 and not any(w in asks for w in words[:1]) \
        and not any(w.endswith(("ed", "ing")) or w in ("is", "are", "was", "were", "do", "does",
                                                        "did", "has", "have", "had")
                    for w in words)


def _complete(fragment: str, previous: str) -> str | None:
    """The previous question with the fragment's new element swapped in: "and in 2015?"
    after "How many people lived there in 2010?" asks about 2015."""
    body = _AND.sub("", re.sub(_ELLIPSIS, "", fragment)).strip(" ?.,")
    body = re.sub(r"^(in|for|of|at|on|about)\s+", "", body, flags=re.I)
    if not body:
        return None
    year = _YEAR.search(body)
    if year and _YEAR.search(previous):
        return _YEAR.sub(year.group(1), previous, count=1)
    new = entities(body)
    old = entities(previous)
    if new and old:
        return previous.replace(old[-1], new[0], 1)
    return None
