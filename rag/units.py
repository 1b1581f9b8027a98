"""A passage cut into units: the sentences, list items and code lines an answer is quoted
from whole (rag/forms.py chooses among them), and which of them are headings.

A unit never ends inside a bracket pair the text closes, or between a stop and its closing
quote; consecutive code lines, and a call written over several lines, are one unit.

Example::

    units("Save it with:\\n  print -deps foo.eps\\nThen ...")   # sentence, code, sentence
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

PAIRS = {"(": ")", "[": "]", "{": "}"}
CLOSERS = set(PAIRS.values())
REACH = 300  # characters a sentence runs on to close a bracket a stop stands in


@dataclass(frozen=True)
class Unit:
    """A whole piece of a passage an answer may be made of: ``text[start:end]``."""

    start: int
    end: int
    kind: str  # "sentence" | "item" | "code"


_ITEM = re.compile(r"^\s*([-*•◦‣–·]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s+\S")
_ROW = re.compile(r"^\s*\|.*\|\s*$")  # a table's row, as the loaders write it
_PROMPT = re.compile(r"^\s*(\$|#|>>>?|>|%|[\w.-]+:\d+>|[\w.-]+>)\s+\S")
_CODE_END = re.compile(r"[;{}]\s*$|\)\s*;?\s*$")
_SYMBOLS = set("()[]{}=;<>$\\/_|&*#@~^`")
ABBREV = re.compile(r"\b(e\.g|i\.e|etc|cf|vs|fig|figs|sec|eq|no|vol|ch|p|pp|mr|mrs|ms|dr|st"
                    r"|approx|resp|incl|al)\.$", re.I)
WORDISH = re.compile(r"[^\W\d_]{2}")  # a sentence holds a word: "#!" or ")." is not one
_CALL_OPEN = re.compile(r"[\w.\-][(\[{]")  # a call's bracket, not prose's "(see"
_QUOTES = set("\"'‘’“”`")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’»)\]]*\s+(?=\S)")


def looks_like_code(line: str) -> bool:
    """A line of code or a command, by its shape: a prompt, indentation (unless the line
    reads as a sentence: plain-text FAQs indent their paragraphs), a statement end, or dense
    punctuation; prose with a few parentheses is not."""
    s = line.strip()
    if not s:
        return False
    if _PROMPT.match(line):
        return True
    words = s.split()
    symbols = sum(ch in _SYMBOLS for ch in s) / len(s)
    prose = sum(w.isalpha() and w.islower() for w in words) / len(words)
    if _indented(line):
        return not _indented_prose(s, words, prose, symbols)
    if _CODE_END.search(s) and not s.endswith((".", ":")) and prose < 0.6 and symbols > 0.04:
        return True
    return symbols >= 0.12 and prose < 0.5


def _indented_prose(s: str, words: list[str], prose: float, symbols: float) -> bool:
    """An indented line that reads as a sentence (eight words or more, mostly lower-case
    words, no code symbols, a sentence's punctuation): plain-text FAQs indent paragraphs."""
    return len(words) >= 8 and prose >= 0.6 and symbols < 0.03 and \
        bool(re.search(r"[.!?]$|[,.;:] ", s))


def _indented(line: str) -> bool:
    return len(line) - len(line.lstrip(" ")) >= 4 and not _ITEM.match(line)


def units(text: str) -> list[Unit]:
    """The passage cut into sentences, list items and code lines (consecutive code lines
    are one unit: a block is never cut), in order, spaces trimmed."""
    out: list[Unit] = []
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*", text) if m.end() > m.start()]
    fences = [m.start() for m in _FENCE.finditer(text)]
    prose_start = None

    def flush_prose(upto: int) -> None:
        nonlocal prose_start
        if prose_start is not None:
            out.extend(_sentences(text, prose_start, upto))
            prose_start = None

    i = 0
    while i < len(lines):
        a, b = lines[i]
        line = text[a:b]
        if i and text.count("\n", lines[i - 1][1], a) > 1:
            flush_prose(a)  # a blank line ends a paragraph (and a heading: "7.1 debdiff")
        if not line.strip():
            flush_prose(a)
        elif _subheading(text, lines, i, fences):  # (alone, whatever follows: no block
            flush_prose(a)                             # runs on into it, "## Schedule")
            out.append(trim(text, a, b, "code"))
        elif looks_like_code(line) or _opens_call(text, lines, i):
            flush_prose(a)
            end, held = b, open_brackets(line)
            while i + 1 < len(lines):  # the block goes on over code, an open call, indentation
                nxt = text[lines[i + 1][0]:lines[i + 1][1]]
                if _subheading(text, lines, i + 1, fences) or not (
                        looks_like_code(nxt) or _opens_call(text, lines, i, held) or
                        (_indented(nxt) and text.count("\n", end, lines[i + 1][0]) == 1)):
                    break
                i += 1
                end = lines[i][1]
                held = open_brackets(text[lines[i][0]:end], held)
            out.append(trim(text, a, end, "code"))
        elif _ROW.match(line):  # a table's row is read whole, whatever sentences its cells
            flush_prose(a)      # hold (its closing "|" was an answer of its own)
            out.append(trim(text, a, b, "item"))
        elif _ITEM.match(line):
            flush_prose(a)
            prose_start = a  # an item runs on over its wrapped lines, then splits as prose
            out_len = len(out)
            end = b
            while i + 1 < len(lines) and _continues(text[lines[i + 1][0]:lines[i + 1][1]]) \
                    and text.count("\n", lines[i][1], lines[i + 1][0]) == 1:
                i += 1
                end = lines[i][1]
            flush_prose(end)
            if len(out) > out_len:
                first = out[out_len]
                out[out_len] = Unit(first.start, first.end, "item")
        elif prose_start is None:
            prose_start = a
        i += 1
    flush_prose(len(text))
    return [u for u in out if u.end > u.start]


_SUBHEADING = re.compile(r"#{2,6}[ \t]+\S")


def _subheading(text: str, lines: list[tuple[int, int]], i: int, fences: list[int]) -> bool:
    """Line ``i`` is a Markdown subheading ("## Schedule") after a blank line (or opening the
    passage), outside a fenced block (``fences``: where the passage's fence lines begin)."""
    a, b = lines[i]
    return bool(_SUBHEADING.match(text, a, b)) and (
        i == 0 or text.count("\n", lines[i - 1][1], a) > 1) and \
        bisect.bisect_left(fences, a) % 2 == 0


def _opens_call(text: str, lines: list[tuple[int, int]], i: int,
                held: list[str] | None = None) -> bool:
    """Line ``i`` (or a code block ending there, its brackets ``held`` open) leaves a bracket
    open that the next line, indented on the line after, goes on with: the head of a call
    written over several lines (``target_include_directories(MathFunctions`` / ``  INTERFACE
    ...``)."""
    if i + 1 >= len(lines) or text.count("\n", lines[i][1], lines[i + 1][0]) != 1:
        return False
    a, b = lines[i + 1]
    if text[a:b][:1] not in (" ", "\t", ")"):
        return False
    if held is not None:  # a block goes on while its brackets are open
        return bool(held)
    head = text[lines[i][0]:lines[i][1]]
    return not _ITEM.match(head) and bool(_CALL_OPEN.search(head)) and bool(open_brackets(head))


def _continues(line: str) -> bool:
    """A wrapped continuation of a list item (not a new item, not code, not blank)."""
    stripped = line.strip()
    if not stripped or _ITEM.match(line) or looks_like_code(line):
        return False
    return line[:1] in (" ", "\t") or stripped[:1].islower()


def _sentences(text: str, start: int, end: int) -> list[Unit]:
    """Prose cut at its sentences' ends; the quote or bracket a stop sits in stays with
    its sentence ("… the line "Trust me."", "[arguments ...]"), and a stop inside a bracket
    that closes further on ("(key1 value1 . . . )") ends nothing."""
    out, at = [], start
    held, seen = [], start  # the brackets open in this sentence, read up to seen
    for m in SENTENCE_END.finditer(text, start, end):
        head, tail = text[at:m.start()], text[max(at, m.start() - 12):m.start()]
        if ABBREV.search(tail) or re.search(r"\b[A-Z]\.$", tail) \
                or not WORDISH.search(head):  # "e.g.", "J. Smith", a shebang's "#!"
            continue
        if m.start() >= 2 and text[m.start() - 2] in _QUOTES and text[m.start()] in _QUOTES:
            continue  # a quoted stop, not a sentence's end: "the ’?’ character"
        stop = m.start() + len(m.group().rstrip())  # the closing marks after the stop
        held, seen = open_brackets(text[seen:stop], held), stop
        if _closes_later(text, held, stop, min(end, stop + REACH)):
            continue
        out.append(trim(text, at, stop, "sentence"))
        at = m.end()
        held, seen = [], at
    if at < end:
        out.append(trim(text, at, end, "sentence"))
    return out


def open_brackets(text: str, held=()) -> list[str]:
    """The brackets left open after ``text``, read on from those ``held`` open before it,
    outermost first (a stray closer is ignored): ``open_brackets("f(a, [b") == ["(", "["]``."""
    stack = list(held)
    for ch in text:
        if ch in PAIRS:
            stack.append(ch)
        elif ch in CLOSERS and stack and PAIRS[stack[-1]] == ch:
            stack.pop()
    return stack


def _closes_later(text: str, stack: list[str], start: int, end: int) -> bool:
    """Whether ``text[start:end]`` closes one of the brackets left open in ``stack``."""
    stack, opened = list(stack), len(stack)
    for ch in text[start:end] if opened else "":
        if ch in PAIRS:
            stack.append(ch)
        elif ch in CLOSERS and stack and PAIRS[stack[-1]] == ch:
            stack.pop()
            if len(stack) < opened:
                return True
    return False


def trim(text: str, a: int, b: int, kind: str) -> Unit:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return Unit(a, b, kind)


def words(text: str) -> int:
    return len(text.split())


def unit_of(all_units: list[Unit], start: int, end: int) -> int | None:
    """Index of the unit holding most of ``[start, end)``."""
    best, overlap = None, 0
    for i, u in enumerate(all_units):
        o = min(u.end, end) - max(u.start, start)
        if o > overlap:
            best, overlap = i, o
    return best


_SECTION_NUMBER = re.compile(r"^(?:[A-Z]|\d+)(?:\.\d+)*\.?\s+")
# "3.4 quilt", "2.4.5 Commands ...": not "127.0.0.1 localhost" nor "3.10 or later" (which
# also want the blank line after them that a heading has)
_MARKDOWN_HEADING = re.compile(r"#{1,6}[ \t]+")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.M)
_SUBSECTION = re.compile(r"^\d{1,2}(?:\.\d{1,2}){1,2}\.?\s+[^\W\d_]")


def is_heading(text: str, u: Unit, path: str = "") -> bool:
    """Unit ``u`` of ``text`` is a heading line: a sentence alone on its line, with no
    closing punctuation but "?", a blank line (or the end) after it (a "##" Markdown heading
    after a blank line needs none), and either numbered as a
    subsection ("3.4 quilt", at most 8 words) or the title of one of the sections of the
    passage's path ``path`` ("2 Getting Started > Invoking Octave"), with or without its
    number or a Markdown "#" marker ("4.3 What is debmake?" too: a question can title one;
    a numbered or marked one may read as code: "8.5 Makefile (shell, GUI)", "# Setup").
    A heading names what follows; it answers nothing."""
    line = text[u.start:u.end].strip()
    marked = _MARKDOWN_HEADING.match(line)  # "## Title": read as code, a heading if on the path
    numbered = _SUBSECTION.match(line) and len(line.split()) <= 8  # "8.5 Makefile (shell, GUI)"
    if (u.kind != "sentence" and not marked and not numbered) or not line \
            or line[-1] in ".!:;" or not whole_line(text, u):
        return False
    if marked and line.startswith("##") and _set_apart(text, u) and \
            len(_FENCE.findall(text, 0, u.start)) % 2 == 0:
        return True  # (a Markdown subheading after a blank line, outside a fenced block: a
        # section the chunk runs on into, "### Meson" under "cmake", is a heading too, with
        # its text right under it as notes apps write it; a single "#" may be a root
        # shell's prompt, "# apt-get install foo")
    if not re.match(r"[ \t]*(?:\n[ \t]*\n|\Z)", text[u.end:]):
        return False
    if numbered:
        return True
    title = _SECTION_NUMBER.sub("", line[marked.end():] if marked else line).casefold()
    return bool(path) and any(_SECTION_NUMBER.sub("", part.strip()).casefold() == title
                              for part in path.split(" > "))


def _set_apart(text: str, u: Unit) -> bool:
    """Unit ``u`` opens the passage or follows a blank line."""
    before = text[:u.start].rstrip(" \t")
    return not before or before.endswith("\n\n") or bool(re.search(r"\n[ \t]*\n$", before))


def whole_line(text: str, u: Unit) -> bool:
    """Unit ``u`` is one line of ``text``, alone on it."""
    line_end = text.find("\n", u.end)
    before = text[text.rfind("\n", 0, u.start) + 1:u.start]
    after = text[u.end:len(text) if line_end < 0 else line_end]
    return "\n" not in text[u.start:u.end] and not before.strip() and not after.strip()
