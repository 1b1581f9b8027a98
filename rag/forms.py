"""The answer's form: what a person asked for, quoted whole from a passage.

A factoid wants its short span (with the sentence it stands in as context); a how-to wants
the command or the steps, whole; a why or a definition wants the explaining sentence(s).
Every form stays a quotation: exact character offsets into one passage, cut only at the
edges of units (sentences, list items, code lines: rag/units.py), never inside a word, a
string, a bracket pair or a code line.

Example::

    kind = question_kind("How do I save a plot as PostScript?")      # "howto"
    units("Save it with:\\n  print -deps foo.eps\\nThen ...")          # sentence, code, ...
    shape(text, [(0.9, 14, 32)], "howto")  # -> Shaped(start=0, end=32, form="steps", ...)
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

from .units import (ABBREV, PAIRS, SENTENCE_END, WORDISH, Unit, is_heading,
                    looks_like_code, open_brackets, trim, unit_of, units, whole_line, words)

KINDS = ("factoid", "howto", "why", "definition")
WORD_LIMIT = 60  # a form longer than this is cut back to the unit(s) around the answer
# over technical documentation an answer quotes the run of whole units of a passage holding
# the most of the reader's candidate spans, widened towards this many words (`stretch`,
# `widen`; eval/RESULTS.md, issue 22: on manuals the reader's best sentence is often the
# neighbour of the one that answers)
EXCERPT = 40

# -- what the question asks for (the plain question-word rule) ---------------------------

_HOWTO = re.compile(
    r"^\s*(how\s+(do|can|could|should|would|does|to|might|may)\b|how\s+is\s+\w+\s+(done|"
    r"set|used|configured|installed)|what(\s+is|'s)\s+the\s+(best\s+)?(way|command|"
    r"procedure|syntax)\s+(to|for)|what\s+(command|option|function|syntax)\s+(do|should|"
    r"can)\s+i\b|is\s+there\s+a\s+way\s+to|(can|could)\s+(i|you|we|one)\s+\w+|i\s+(want|"
    r"need|would\s+like)\s+to|steps?\s+to|instructions?\s+(to|for))", re.I)
_WHY = re.compile(
    r"^\s*(why\b|how\s+come\b|what\s+(is|are|was)\s+the\s+(reason|purpose|point|"
    r"difference|advantage|benefit|effect|consequence)s?\b|what('s|\s+is)\s+the\s+"
    r"difference|what\s+happens\s+(if|when)|for\s+what\s+reason|explain\b|what\s+causes\b"
    r"|how\s+does\s+.+\s+work\b)", re.I)
_DEFINITION = re.compile(
    r"^\s*(what\s+(is|are)\s+(a\s+|an\s+)?(?!the\b)[\w\-.+#/]+(\s+[\w\-.+#/]+){0,2}"
    r"(?<!\bto)(?<!\bfor)(?<!\bof)(?<!\bin)(?<!\bon)(?<!\bby)(?<!\bwith)(?<!\bfrom)"
    r"(?<!\bat)(?<!\babout)\s*\??\s*$|what\s+(is|are)\s+meant\s+by\b|what\s+does\s+.+\s+(mean|do|stand\s+for)\b|"
    r"define\b|meaning\s+of\b)", re.I)


def question_kind(question: str) -> str:
    """factoid | howto | why | definition, from the question's wording alone."""
    q = " ".join(question.split())
    if _WHY.match(q):
        return "why"
    if _HOWTO.match(q):
        return "howto"
    if _DEFINITION.match(q):
        return "definition"
    return "factoid"


# -- a short span made whole --------------------------------------------------------------

QUOTED = 60  # characters a quotation in typographic marks is sought over, either way
_IDENT = re.compile(r"[\w.\-/:@+~]")
_PROMPT = re.compile(r"[ \t]*\$ +(?=[A-Za-z_./~])")  # a shell prompt opening a command line
# (not a price: "$ 100 million")


def whole_span(text: str, start: int, end: int, reach: int = 120) -> tuple[int, int]:
    """``[start, end)`` widened so it cuts no word, identifier, string or bracket pair (on
    its own line, at most ``reach`` characters further); a sentence's final stop dropped."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    lo, hi = max(line_start, start - reach), min(line_end, end + reach)
    s, e = start, end
    while s > lo and _word(text[s - 1]) and _word(text[s]):
        s -= 1
    while e < hi and _word(text[e - 1]) and _word(text[e]):
        e += 1
    # a word joined by hyphens is one token ("safe-upgrade", not "safe"; "well-known"; but a
    # name stays itself: "Norman Foster" of "Norman Foster-designed")
    while s - 1 > lo and text[s - 1] == "-" and _joined(text, s - 1):
        s -= 2
        while s > lo and _word(text[s - 1]):
            s -= 1
    while e + 1 < hi and text[e] == "-" and _joined(text, e):
        e += 2
        while e < hi and _word(text[e]):
            e += 1
    prompt = _PROMPT.match(text, line_start, line_end)
    if prompt and s >= prompt.end() and line_end - prompt.end() <= 2 * reach:
        # (a shell command: the whole command, not one word of it, "sudo" of "$ sudo
        # pbuilder create")
        return prompt.end(), len(text[:line_end].rstrip())
    if _is_code(text[s:e]):  # an identifier or path cut at a dot or dash: take it whole
        while s > lo and _IDENT.match(text[s - 1]):
            s -= 1
        while e < hi and _IDENT.match(text[e]) and not (text[e] in ".:" and
                                                          (e + 1 >= hi or text[e + 1].isspace())):
            e += 1
    for _ in range(4):  # brackets and quotes, innermost first
        s2, e2 = _balance(text, s, e, lo, hi)
        if (s2, e2) == (s, e):
            break
        s, e = s2, e2
    return _enclosing_call(text, s, e, lo, hi)


def _enclosing_call(text: str, s: int, e: int, lo: int, hi: int) -> tuple[int, int]:
    """A span inside a call's arguments (``print("-deps", f)``) widened to the whole call;
    a bracket after a space ("(born 1950)") is prose, left alone."""
    depth, at = 0, s - 1
    while at >= lo:
        depth += (text[at] == ")") - (text[at] == "(")
        if depth < 0:
            break
        at -= 1
    if at < lo or at == lo or not _IDENT.match(text[at - 1]) or text[at - 1] in ".:":
        return s, e
    close, depth = at + 1, 1
    while close < hi and depth:
        depth += (text[close] == "(") - (text[close] == ")")
        close += 1
    if depth:
        return s, e
    name = at
    while name > lo and re.match(r"[\w.]", text[name - 1]):
        name -= 1
    return name, max(e, close)


def _joined(text: str, at: int) -> bool:
    """The words either side of the hyphen at ``at`` make one: letters both sides, opening
    both in lower case ("safe-upgrade") or both in capitals ("Wi-Fi"), not a name and a
    word after it ("Foster-designed")."""
    if not (0 < at < len(text) - 1 and text[at - 1].isalpha() and text[at + 1].isalpha()):
        return False
    first = at - 1
    while first > 0 and text[first - 1].isalpha():
        first -= 1
    return text[first].isupper() == text[at + 1].isupper()


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _is_code(span: str) -> bool:
    return bool(re.search(r"[_/\\()\[\]{}=<>$]|\w\.\w|--?\w", span))


def _balance(text: str, s: int, e: int, lo: int, hi: int) -> tuple[int, int]:
    span = text[s:e]
    for op, cl in PAIRS.items():
        depth = low = 0  # in order: "PMTU) discovery (RFC1191" closes one and opens one
        for ch in span:
            depth += (ch == op) - (ch == cl)
            low = min(low, depth)
        if depth > low:  # an opened bracket: run on to its close
            at, d = e, depth - low
            while at < hi and d > 0:
                d += (text[at] == op) - (text[at] == cl)
                at += 1
            if d == 0:
                e = at
        if low < 0:  # a closed bracket: reach back to its opening
            at, d = s, -low
            while at > lo and d > 0:
                at -= 1
                d += (text[at] == cl) - (text[at] == op)
            if d == 0:
                s = at
    for q in ('"', "`"):
        if span.count(q) % 2:
            close = text.find(q, e, hi)
            opening = text.rfind(q, lo, s)
            if span.find(q) >= 0 and close >= 0 and (opening < 0 or span.index(q) == 0
                                                     or close - e <= s - opening):
                e = close + 1
            elif opening >= 0:
                s = opening
    return _typographic(text, s, e, lo, hi)


def _quote_role(text: str, at: int) -> str | None:
    """Whether the typographic quote at ``at`` opens or closes a quotation, or neither: ’
    between two letters is an apostrophe ("Octave’s"); typeset manuals also print a quoted
    string with ’ on both sides (gnuplot's ``plot ’file.png’``), so a ’ after a space opens."""
    ch = text[at]
    before = text[at - 1] if at > 0 else " "
    after = text[at + 1] if at + 1 < len(text) else " "
    if ch in "“‘":
        return "open"
    if ch == "”":
        return "close"
    if ch == "’":
        if (_word(before) and _word(after)) or after.isdigit():  # Octave’s, the ’90s
            return None
        return "open" if (before.isspace() or before in "([{=,") and not after.isspace() \
            else "close"
    return None


def _typographic(text: str, s: int, e: int, lo: int, hi: int) -> tuple[int, int]:
    """A quotation in typographic marks (“…”, ‘…’, ’…’) left open by ``[s, e)``: run on to
    its closing mark, or reach back to its opening one, within ``[lo, hi)``, at most
    ``QUOTED`` characters and never across a sentence's end (so an elision such as "’em"
    does not pair with a possessive further on)."""
    depth, closed = 0, False  # marks opened and not closed; one closed, opened before s
    for at in range(s, e):
        role = _quote_role(text, at) if text[at] in "“”‘’" else None
        if role == "open":
            depth += 1
        elif role == "close":
            closed = closed or not depth
            depth = max(depth - 1, 0)
    if depth:  # opened inside: the next closing mark
        at, stop = e, min(hi, e + QUOTED)
        while at < stop and depth and not SENTENCE_END.match(text, at):
            if text[at] in "“”‘’":
                role = _quote_role(text, at)
                depth += (role == "open") - (role == "close")
            at += 1
        if not depth:
            e = at
    if closed:  # closed inside, opened before: back to the opening mark
        at, d, stop = s, 1, max(lo, s - QUOTED)
        while at > stop and d and not SENTENCE_END.match(text, at - 1):
            at -= 1
            if text[at] in "“”‘’":
                role = _quote_role(text, at)
                d += (role == "close") - (role == "open")
        if not d:
            s = at
    return s, e


# -- the form ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shaped:
    """An answer's characters in its passage: ``start:end`` is what the user is told,
    ``short`` the short span inside it (None when the answer is not a span), ``context``
    the unit(s) the short span stands in (for whole units or an excerpt, ``start:end``)."""

    start: int
    end: int
    form: str  # "span" | "sentence" | "steps" | "code"
    short: tuple[int, int] | None
    context: tuple[int, int]
    # the unit holding the most of the reader's candidate probability (what the answer is
    # kept around when it must be cut or moved: ``clip``, ``finish``)
    core: tuple[int, int] | None = None


_FOLLOWS = re.compile(r"^(because|this|that|these|so|thus|therefore|hence|otherwise|as a "
                      r"result|in (this|that) case|it|they|then|which|however|but|for example|"
                      r"e\.g\.|note)\b", re.I)


def unit_mass(cut: dict[int, list[Unit]], spans) -> dict[tuple[int, int], float]:
    """(passage, unit index) -> the probability of the reader's candidate spans
    ``(probability, passage, start, end)`` it holds; ``cut`` maps a passage to its units."""
    mass: dict[tuple[int, int], float] = {}
    for p, at, s, e in spans:
        i = unit_of(cut[at], s, e)
        if i is not None:
            mass[(at, i)] = mass.get((at, i), 0.0) + p
    return mass


def best_unit(mass: dict[tuple[int, int], float],
              skip=lambda at, i: False) -> tuple[int, int] | None:
    """(passage, unit index) holding the most of the reader's candidate-span probability
    ``mass`` (``unit_mass``), passing over the units ``skip(passage, index)`` names."""
    mass = {key: m for key, m in mass.items() if not skip(*key)}
    if not mass:
        return None
    return max(mass, key=lambda key: (mass[key], -key[0], -key[1]))


def grow(text: str, all_units: list[Unit], i: int, kind: str,
         limit: int = WORD_LIMIT) -> tuple[int, int]:
    """Unit ``i`` with the units a ``kind`` question needs around it, whole, within
    ``limit`` words: the code or list a sentence introduces (or the single line it
    introduces, a command that reads as prose), the sentence that introduces a code line,
    or the sentence that goes on explaining a why (one that opens with "because", "this",
    "so"...)."""
    lo = hi = i
    budget = limit - words(text[all_units[i].start:all_units[i].end])

    def take(j: int) -> bool:
        nonlocal budget, lo, hi
        n = words(text[all_units[j].start:all_units[j].end])
        if n > budget:
            return False
        budget -= n
        lo, hi = min(lo, j), max(hi, j)
        return True

    u = all_units[i]
    if u.kind in ("code", "item") and i > 0 and all_units[i - 1].kind == "sentence" \
            and text[all_units[i - 1].start:all_units[i - 1].end].rstrip().endswith(":"):
        take(i - 1)  # the sentence that introduces this code or list
    introduces = text[u.start:u.end].rstrip().endswith(":")
    j = hi + 1
    while j < len(all_units) and (introduces or all_units[hi].kind in ("code", "item")
                                  or kind == "howto") \
            and all_units[j].kind in ("code", "item") and take(j):
        j += 1
    if introduces and hi == i and j < len(all_units) and whole_line(text, all_units[j]):
        take(j)  # what a colon introduces, on its own line: a command that reads as prose
    if kind in ("why", "definition", "howto") and hi + 1 < len(all_units) \
            and all_units[hi + 1].kind == "sentence" and \
            _FOLLOWS.match(text[all_units[hi + 1].start:all_units[hi + 1].end]):
        take(hi + 1)
    return all_units[lo].start, all_units[hi].end


def stretch(texts: list[str], cut: dict[int, list[Unit]], mass: dict[tuple[int, int], float],
            least: int, skip=lambda at, i: False,
            opens=lambda at, i: False) -> tuple[int, int, int] | None:
    """(passage, first unit, last unit): the run of whole units of one passage within
    ``least`` words (or one longer unit alone), opening and closing on units that hold some
    of the reader's candidate-span probability ``mass`` (``unit_mass``), that holds the most
    of it; no run holds a unit ``skip(passage, index)`` names (a heading: a run stays in its
    section), and a unit ``opens`` names only as its first (an entry's term: a run stays in
    its entry). None when no unit holds any."""
    best, found = 0.0, None
    for at, all_units in cut.items():
        for i in range(len(all_units)):
            if skip(at, i) or not mass.get((at, i)):
                continue
            held = 0.0
            for j in range(i, len(all_units)):
                if j > i and (skip(at, j) or opens(at, j) or words(
                        texts[at][all_units[i].start:all_units[j].end]) > least):
                    break
                held += mass.get((at, j), 0.0)
                if mass.get((at, j)) and held > best:
                    best, found = held, (at, i, j)
    return found


def widen(text: str, all_units: list[Unit], lo: int, hi: int, held, least: int,
          skip=lambda i: False, limit: int = WORD_LIMIT) -> tuple[int, int]:
    """Units ``lo..hi`` of ``text`` widened by whole neighbouring units until they hold
    ``least`` words: each step the neighbour holding more candidate probability
    (``held(index)``), on a tie the two sides in turn, the next first (the answer stands in
    the middle); never a unit ``skip`` names, never past ``limit`` words. (first, last unit)"""
    after = True  # which side a tie goes to
    while words(text[all_units[lo].start:all_units[hi].end]) < least:
        sides = [j for j in (hi + 1, lo - 1) if 0 <= j < len(all_units) and not skip(j)]
        for j in sorted(sides, key=lambda j: (held(j), (j > hi) == after), reverse=True):
            a, b = min(lo, j), max(hi, j)
            if words(text[all_units[a].start:all_units[b].end]) <= limit:
                after = j < lo  # the other side next time
                lo, hi = a, b
                break
        else:
            break
    return lo, hi


def finish(text: str, all_units: list[Unit], lo: int, hi: int, skip=lambda i: False,
           limit: int = WORD_LIMIT, keep: int | None = None) -> tuple[int, int]:
    """The excerpt ``lo..hi`` (first, last unit), its end moved on where it would end on a
    sentence left hanging ("Possible values for type are", "… if you have previously
    requested") or one that introduces what follows with a colon: through the units it
    leads into (the rest of the sentence, or a list or code block, all of it), whole,
    never a unit ``skip`` names, within ``limit`` words; where they do not fit, the
    excerpt's first units are let go to make room, up to unit ``keep`` (None: none), and
    where that is not enough, the excerpt stays as it was (a last unit that is a mere label,
    "Programming Notes:", is dropped instead)."""
    if hi > lo and (keep is None or keep < hi) and (
            _label(text, all_units[hi]) and _lead_on(text, all_units, lo, hi, skip, limit) is None
            or _title(text, all_units[hi])):
        return lo, hi - 1
    for first in range(lo, (lo if keep is None else min(keep, hi)) + 1):
        end = _lead_on(text, all_units, first, hi, skip, limit)
        if end is not None:
            return (first, end) if end > hi else (lo, hi)
    return lo, hi


def _label(text: str, u: Unit) -> bool:
    """Unit ``u`` is a label alone on its line ("Programming Notes:", "Examples:"): it names
    what follows and says nothing itself."""
    line = text[u.start:u.end].strip()
    return line.endswith(":") and len(line.split()) <= 3 and line[:1].isupper() \
        and whole_line(text, u)


def _title(text: str, u: Unit) -> bool:
    """Unit ``u`` is a title alone on its line, a blank line, an underline or the passage's
    end after it ("Set Actions": a definition's term, a section the passage's path does not
    name): an excerpt that ends on it ends on the name of what it leaves out."""
    if _term(text, u):  # ("--test-label" over its description: the next entry's name)
        return True
    line = text[u.start:u.end].strip()
    found = line.split()
    return u.kind == "sentence" and 0 < len(found) <= 5 and line[-1:].isalnum() and \
        sum(w[:1].isupper() for w in found) * 2 >= len(found) + 1 and whole_line(text, u) \
        and bool(_TITLE_AFTER.match(text, u.end))


_TITLE_AFTER = re.compile(r"[ \t]*(?:\n[ \t]*\n|\n[=\-~^*#]{3,}[ \t]*(?:\n|\Z)|\n?\Z)")


def _lead_on(text: str, all_units: list[Unit], lo: int, hi: int, skip, limit: int) -> int | None:
    """``finish``'s last unit for the excerpt ``lo..hi``: ``hi`` where it does not hang,
    None where what it leads into does not fit."""
    stop = lambda j: skip(j) or _title(text, all_units[j])  # noqa: E731 (never onto a title)
    fits = lambda j: not stop(j) and \
        words(text[all_units[lo].start:all_units[j].end]) <= limit  # noqa: E731
    j = hi
    while j + 1 < len(all_units) and _hangs(text, all_units[j], all_units[j + 1]) \
            and fits(j + 1):
        j += 1
    if j + 1 < len(all_units) and _hangs(text, all_units[j], all_units[j + 1]):
        return hi if stop(j + 1) else None  # (what it leads into does not fit)
    if j == hi:  # (it does not hang)
        return hi
    kind = all_units[j].kind
    while kind in ("item", "code") and j + 1 < len(all_units) \
            and all_units[j + 1].kind == kind:  # the rest of the list or the block
        if not fits(j + 1):
            return None
        j += 1
    return j


# a sentence that announces a command or list with a stop instead of a colon
_ANNOUNCES = re.compile(r"\b(as\s+follows|the\s+following|like\s+this)\s*\.$", re.I)


def _hangs(text: str, u: Unit, after: Unit) -> bool:
    """A sentence that does not end before the unit ``after``: it introduces it with a
    colon or a comma ("For example,"; a list item only with a colon: "- To force the frame
    rate:"), announces the list or code after it ("... as follows."), or stops on a word
    mid-prose and ``after`` goes on with it (in lower case, or as the list or code it
    introduces); a line with no stop followed by a new sentence ("sudo apt install nginx")
    is a command, not hanging."""
    tail = text[u.start:u.end].rstrip()
    if u.kind == "item" and tail.endswith(":"):
        return True
    if u.kind != "sentence":
        return False
    if tail.endswith((":", ",")):
        return True
    if _ANNOUNCES.search(tail) and after.kind in ("code", "item"):
        return True  # ("... can be compared using the dpkg command as follows.")
    if not tail[-1:].isalnum():
        return False
    found = tail.split()
    prose = len(found) >= 4 and sum(w.isalpha() and w.islower() for w in found) / len(found) >= 0.5
    return prose and (after.kind in ("item", "code") or text[after.start:after.start + 1].islower())


# where an answer too long may be cut: after a sentence, between lines (of code), after a clause
_CUT = re.compile(r"(?P<stop>(?<=[.!?])[\"')\]]*\s+)|(?P<line>\n\s*)|(?P<clause>[,;:]\s+)")


def clip(text: str, start: int, end: int, around: tuple[int, int],
         limit: int = WORD_LIMIT) -> tuple[int, int]:
    """``[start, end)`` cut back to at most ``limit`` words around ``around``, at sentence
    and clause boundaries outside brackets and strings (rather a sentence's end than a
    comma) and between two lines of code (never inside one); where ``around`` alone is
    longer than ``limit``, its opening words up to such a boundary (or a word's end)."""
    if words(text[start:end]) <= limit:
        return start, end
    cuts, in_code = {start, end}, set()  # a clause cut in a code line: only if nothing else fits
    held, quotes, seen = [], Counter(), start  # brackets open, quote marks, read up to seen
    lines: dict[int, bool] = {}  # whether the line starting there is code, read once

    def code(at: int) -> bool:
        first, last = text.rfind("\n", 0, at) + 1, text.find("\n", at)
        if first not in lines:
            lines[first] = looks_like_code(text[first:len(text) if last < 0 else last])
        return lines[first]

    for m in _CUT.finditer(text, start, end):
        at = m.start()
        held = open_brackets(text[seen:at], held)
        quotes.update(ch for ch in text[seen:at] if ch in '"“”')
        seen = at
        if held or quotes['"'] % 2 or quotes["“"] > quotes["”"] or (m.lastgroup == "stop" and (
                ABBREV.search(text[max(start, at - 12):at])
                or not WORDISH.search(text[text.rfind("\n", 0, at) + 1:at]))):
            continue  # inside a bracket or a quotation, after "e.g.", or a stop that ends no
            # words of its line (a shell's ". /usr/share/..." line: a lone "." was an answer's end)
        if m.lastgroup == "line":
            if code(at) and code(m.end()):
                cuts |= {at, m.end()}
        else:
            cuts.add(m.end())
            if code(at):
                in_code.add(m.end())
    cuts = sorted(cuts)
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    count = lambda a, b: bisect_left(starts, b) - bisect_left(starts, a)  # noqa: E731 (words)
    best, rank = None, None
    for a in reversed([c for c in cuts if c <= around[0]]):
        if count(a, around[1]) > limit:
            break  # (and every cut before it)
        for b in (c for c in cuts if c >= around[1] and c > a):
            if count(a, b) > limit:
                break  # (cuts ascend)
            # whole code lines, then an end after a sentence (not a clause), then the longest
            r = (not {a, b} & in_code, b == end or not re.search(r"[,;:]\s*$", text[a:b]),
                 b - a)
            if best is None or r > rank:
                best, rank = (a, b), r
    if best is None and count(*around) > limit:  # a unit that long
        ends = [c for c in cuts if around[0] < c and count(around[0], c) <= limit]
        best = (around[0], max(ends) if ends else _word_end(text, around[0], limit))
    unit = trim(text, *(best or around), "")
    return unit.start, unit.end


def _word_end(text: str, start: int, limit: int) -> int:
    """The end of the ``limit``-th word from ``start``."""
    ends = [m.end() for m in re.finditer(r"\S+", text[start:])][:limit]
    return start + ends[-1] if ends else start


def shape(texts: list[str], spans, kind: str, short_form: bool, excerpt: int = 0,
          headings: list[str] | None = None) -> tuple[int, Shaped] | None:
    """(passage index, the answer in it) from the reader's candidate spans ``[(probability,
    passage, start, end)]``, best first, over the passages ``texts``. ``short_form``: the
    best span alone (a factoid), with its unit as context; else the unit holding the most
    candidate probability, grown to what a ``kind`` question needs, or with ``excerpt``
    (technical documentation) the run of units holding the most (``stretch``) widened
    towards ``excerpt`` words within its section and passage (``widen``); never a heading
    line of a passage's section path in ``headings``."""
    if not spans:
        return None
    cut = {at: units(texts[at]) for at in sorted({sp[1] for sp in spans})}
    spans = [sp for sp in spans if not asks(texts[sp[1]], cut[sp[1]], sp[2], sp[3])] or spans
    _, top, s0, e0 = spans[0]
    s, e = whole_span(texts[top], s0, e0)
    home = unit_of(cut[top], s, e)
    context = (cut[top][home].start, cut[top][home].end) if home is not None else (s, e)
    context = clip(texts[top], *context, (s, e))
    if short_form or home is None:
        return top, Shaped(s, e, "span", (s, e), context)
    paths = headings or [""] * len(texts)
    heading = lambda p, j: is_heading(texts[p], cut[p][j], paths[p])  # noqa: E731
    mass = unit_mass(cut, spans)
    term = lambda p, j: _term(texts[p], cut[p][j])  # noqa: E731 (an entry of a reference
    # opens on its term: an excerpt stays in one entry, ``named`` puts its term in front)
    found = stretch(texts, cut, mass, min(excerpt, WORD_LIMIT), heading, term) \
        if excerpt else None
    if found:
        at, lo, hi = found
        opened = term(at, lo)  # (on its term: nothing before it is this entry's)
        lo, hi = widen(texts[at], cut[at], lo, hi, lambda j: mass.get((at, j), 0.0), excerpt,
                       lambda j: heading(at, j) or term(at, j) or opened and j < lo or
                       not mass.get((at, j)) and bool(_NOTE.match(texts[at], cut[at][j].start)))
        i = max(range(lo, hi + 1), key=lambda j: mass.get((at, j), 0.0))
        lo, hi = finish(texts[at], cut[at], lo, hi, lambda j: heading(at, j), keep=i)
        start, end = cut[at][lo].start, cut[at][hi].end
    else:
        at, i = best_unit(mass, heading) or (top, home)
        if heading(at, i) or term(at, i):  # (all the mass on headings, or on an entry's
            # term: what the first one introduces)
            i = next((j for j in range(i + 1, len(cut[at]))
                      if not heading(at, j) and not term(at, j)), i)
        start, end = grow(texts[at], cut[at], i, kind)
    text, all_units = texts[at], cut[at]
    first = next((j for j, u in enumerate(all_units) if u.start == start), None)
    if first is not None:  # (an option's or a setting's description: with its name)
        last = max(j for j, u in enumerate(all_units) if u.start < end)
        start = all_units[named(text, all_units, first, last, lambda j: heading(at, j))].start
    short = (s, e) if at == top and start <= s and e <= end else None
    core = all_units[i].start, all_units[i].end
    start, end = clip(text, start, end, short or core)
    if short and not (start <= short[0] and short[1] <= end):
        short = None
    return at, Shaped(start, end, form_of(all_units, start, end, all_units[i].kind), short,
                      (start, end), core)


def asks(text: str, all_units: list[Unit], start: int, end: int) -> bool:
    """Whether the span ``start:end`` stands in a question ("Should I limit the ARC?": in a
    thread or an FAQ, the asker's words, which are no answer)."""
    i = unit_of(all_units, start, end)
    if i is None or all_units[i].kind != "sentence":
        return False
    sentence = text[all_units[i].start:all_units[i].end].strip()
    return sentence.endswith("?") and (len(sentence.split()) <= 8 or bool(_ASKING.match(
        sentence)))  # (not a statement ending on a title: 'his 1989 essay "The End of History?"')


_ASKING = re.compile(r"(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|"
                     r"did|can|could|should|would|will|shall|may|might|must|has|have|had|am|"
                     r"any|anyone|anybody)\b", re.I)


def named(text: str, all_units: list[Unit], lo: int, hi: int, skip=lambda i: False,
          limit: int = WORD_LIMIT) -> int:
    """The first unit of the excerpt ``lo..hi``, moved back onto the term its description
    belongs to ("-r, --recursive", "gc.reflogExpire", "AddressFamily" alone on a line, the
    description below it): through the description's sentences before ``lo`` (its paragraph),
    never a unit ``skip`` names, within ``limit`` words; ``lo`` where there is no such term.
    A reference's entries look alike, and an answer without its entry's name may be the
    neighbouring entry's."""
    for j in range(lo - 1, max(-1, lo - 4), -1):
        u, after = all_units[j], all_units[j + 1]
        if skip(j) or words(text[u.start:all_units[hi].end]) > limit:
            return lo
        gap = text[u.end:after.start]
        if _term(text, u):
            return j if gap.count("\n") <= 2 and not gap.strip() else lo
        if u.kind != "sentence" or "\n\n" in gap.replace(" ", ""):
            return lo  # (another paragraph: not the description's)
    return lo


# what marks a term: an option, a dotted or underscored name, a placeholder, "::", a
# CamelCase key ("AddressFamily", "ExecStart="), a variable ("HOME")
_TERM_MARK = re.compile(r"^--?[A-Za-z]|^-- \w|::$|[A-Za-z][./][A-Za-z]|\w_\w|<\w"
                        r"|^[A-Z][a-z]+(?:[A-Z][a-z0-9]*)+=?$|^[A-Z][A-Z0-9_]{2,}=?$")
# names alone, one or a few by commas ("gc.reflogExpire, gc.<pattern>.reflogExpire",
# "PROMPT_DIRTRIM"): a command line or a sentence is not a term
_NAMES = re.compile(r"[A-Za-z_<\[][\w.<>*\[\]/=-]*(?:, [A-Za-z_<\[][\w.<>*\[\]/=-]*){0,3}"
                    r"(?:::)?")


def _term(text: str, u: Unit) -> bool:
    """Unit ``u`` is a term alone on its line, the name of what the lines after it describe:
    an option, a setting, a function ("-r, --recursive", "gc.reflogExpire::"); a command
    line ("ffmpeg -i in.avi out.avi") is not one."""
    if u.kind != "sentence" or text[u.end:u.end + 1] not in ("\n", "") or \
            text[text.rfind("\n", 0, u.start) + 1:u.start].strip():
        return False
    # ("-L port:host:hostport" over "-L local_socket:remote_socket": one option's forms, one
    # term; Info quotes its names: "‘--recursive’")
    rows = [r.strip().strip("‘’'\"`") for r in text[u.start:u.end].split("\n")]
    return len(rows) <= 6 and all(
        (0 < len(r.split()) <= 8 if r[:1] == "-" else bool(_NAMES.fullmatch(r)))
        and r[-1:] not in ".!?,;" and _TERM_MARK.search(r) for r in rows)


# a PDF's footnote as the loader writes it after its paragraph: "[12] If you follow ...";
# an excerpt is not widened onto one (it belongs to the page, not to the answer)
_NOTE = re.compile(r"(?<![^\n])\[[0-9*\u00b9\u00b2\u00b3\u2070-\u2079\u2020\u2021\u00a7]{1,4}\] ")


def form_of(all_units: list[Unit], start: int, end: int, clipped: str) -> str:
    """"code", "steps" (sentences with code or list items) or "sentence": the form of the
    whole units within ``[start, end)`` (none whole, a unit clipped: its kind ``clipped``)."""
    inside = [u.kind for u in all_units if u.start >= start and u.end <= end] or [clipped]
    return ("code" if all(k == "code" for k in inside) else
            "steps" if any(k in ("code", "item") for k in inside) else "sentence")


def go_on(text: str, shaped: Shaped, path: str = "", limit: int = WORD_LIMIT) -> Shaped:
    """A quote (not a short span) that reaches the end of its passage, where ``text`` is the
    passage with the document's text after it appended (a passage is a chunk, and the chunk
    may end inside a sentence or on one introducing what follows): moved on through the rest
    of a unit the chunk cut short, and through what a hanging last sentence leads into
    (``finish``: a list or code block, whole, its first units let go to make room, never
    its ``core`` or ``short`` span; a last label, "Examples:", dropped instead), never onto
    a heading of the section path ``path``, within ``limit`` words; as it was where that
    does not fit."""
    start, end = shaped.start, shaped.end
    all_units = units(text)
    inside = [j for j, u in enumerate(all_units) if u.end > start and u.start < end]
    if not inside:
        return shaped
    lo, hi = inside[0], inside[-1]
    new = max(end, all_units[hi].end)  # (a unit cut short: all of it)
    if words(text[start:new]) > limit:
        return shaped
    marks = [pair[0] for pair in (shaped.short, shaped.core) if pair]
    keep = next((j for j in inside if all_units[j].end > min(marks)), lo) if marks else lo
    first, last = finish(text, all_units, lo, hi,
                         lambda j: is_heading(text, all_units[j], path), limit, keep)
    if first > lo:
        start = all_units[first].start
    new = all_units[last].end if last < hi else max(new, all_units[last].end)
    if (start, new) == (shaped.start, shaped.end):
        return shaped
    form = form_of(all_units, start, new, {"steps": "item"}.get(shaped.form, shaped.form))
    return Shaped(start, new, form, shaped.short, (start, new), shaped.core)
