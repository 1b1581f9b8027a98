"""Markdown as a notes app shows it: YAML front matter (Obsidian, Jekyll, Hugo, MkDocs) read
as the note's title and metadata rather than text, and Obsidian's own syntax as its reading
view shows it: ``[[Page|shown]]`` is "shown", ``[[Page#Part]]`` "Page > Part", ``![[x.png]]``
embeds and ``%% comments %%`` leave nothing, a callout ``> [!tip] Title`` keeps its title
(or "Tip"), ``==marked==`` is "marked", a block id `` ^ab12cd`` goes. Code (fenced blocks,
inline code) is never touched: ``[[ -f x ]]`` in a shell line stays.

Example: ``text, meta = front_matter("---\\ntitle: NAS\\n---\\nBody")  # "Body", {"title": "NAS"}``
"""
from __future__ import annotations

import datetime
import math
import re

MAX_FRONT = 64 * 1024  # a front matter longer than this is not one (read as text)
_FRONT = re.compile(r"\A---[ \t]*\n(.{0,%d}?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)" % MAX_FRONT, re.S)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.M)
# inline code ("`x[[0]]`", "`${HOME}`"): put first in an alternation, a pattern that must
# not reach inside code matches it whole and gives it back as it was
INLINE_CODE = r"(?P<code>(?P<ticks>`+)[^`]*?(?P=ticks))"
_INLINE_CODE = re.compile(INLINE_CODE)
# inline code first (kept as is), then each of Obsidian's marks
_OBSIDIAN = re.compile(
    INLINE_CODE +
    r"|(?P<embed>!\[\[[^\[\]\n]{1,500}\]\])"
    r"|\[\[(?P<target>[^\s\[\]|#][^\[\]|\n]{0,500}?|#[^\[\]|\n]{1,500}?)"
    r"(?:\|(?P<shown>[^\[\]\n]{1,500}?))?\]\]"
    r"|(?P<comment>%%.{0,20000}?%%)"
    r"|(?<![=\w])==(?P<marked>\S(?:[^=\n]{0,500}?\S)?)==(?![=\w])"
    r"|(?P<block>[ \t]\^(?=[\w-]{0,40}[A-Za-z])[A-Za-z0-9-]{1,40}[ \t]*$)"
    r"|^(?P<quote>(?:>[ \t]?)+)\[!(?P<callout>[\w-]{1,40})\][+-]?[ \t]*(?P<title>[^\n]*)$",
    re.S | re.M)


def front_matter(text: str) -> tuple[str, dict]:
    """(the text without its front matter, the front matter's fields) — the text as it was
    and {} where it has none, or where what opens it is no YAML mapping (a rule, "---")."""
    m = _FRONT.match(text)
    if not m:
        return text, {}
    import yaml

    try:
        fields = yaml.load(m.group(1) or "", Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
        # (every value as written: YAML 1.1 reads "zip: 01234" as 668, "version: 1.10" as
        # 1.1, "draft: no" as false and drops an "on:" key)
    except (yaml.YAMLError, RecursionError, ValueError):
        fields = _loose(m.group(1) or "")  # (a template's "date: {{date}}" is no YAML)
        if fields is None:
            return text, {}
    if not isinstance(fields, dict):
        return text, {}
    meta = {}
    for key, value in list(fields.items())[:50]:
        value = _plain(value)
        if isinstance(key, str) and value not in (None, "", []):
            meta[key[:100]] = value
    return text[m.end():], meta


_FIELD = re.compile(r"([\w-]{1,100}):(?:[ \t]+(.*?))?[ \t]*")
_ITEM = re.compile(r"[ \t]+- (.*?)[ \t]*")


def _loose(block: str) -> dict | None:
    """Fields of a front matter that YAML rejects, read a line at a time ("key: value",
    "  - item" under a key); None where a line is neither (then it is no front matter)."""
    fields: dict = {}
    key = None
    for line in block.split("\n"):
        if not line.strip():
            continue
        field, item = _FIELD.fullmatch(line), _ITEM.fullmatch(line)
        if field:
            key = field.group(1)
            fields[key] = field.group(2) or []
        elif item and key is not None and isinstance(fields[key], list):
            fields[key].append(item.group(1))
        else:
            return None
    return fields


def _plain(value):
    """A field's value as text or a short list of texts (nothing nested: a YAML alias
    repeated a thousand times is one object to yaml and a billion characters to JSON)."""
    if isinstance(value, bool) or isinstance(value, int) or (
            isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, (str, datetime.date)):
        return str(value)[:500]
    if isinstance(value, list):
        return [str(v)[:200] for v in value[:50]
                if isinstance(v, (str, int, float, datetime.date)) and not isinstance(v, bool)]
    return None


def fenced_ranges(text: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block, as CommonMark pairs fences: a block opened by
    three or more backticks (or tildes) is closed only by a line of the same character at
    least as long, with nothing after it; what lies between opens nothing; an unclosed
    block runs to the end. (A backtick fence's info string holds no backtick.)"""
    ranges, open_ = [], None
    for m in _FENCE.finditer(text):
        fence, rest = m.group(1), m.group(2)
        if open_ is None:
            if not (fence[0] == "`" and "`" in rest):
                open_ = (m.start(), fence)
        elif fence[0] == open_[1][0] and len(fence) >= len(open_[1]) and not rest.strip():
            ranges.append((open_[0], m.end()))
            open_ = None
    if open_ is not None:
        ranges.append((open_[0], len(text)))
    return ranges


def _pieces(text: str):
    """``text`` in order as (piece, whether it is a fenced code block)."""
    at = 0
    for a, b in fenced_ranges(text):
        yield text[at:a], False
        yield text[a:b], True
        at = b
    yield text[at:], False


def obsidian_text(text: str) -> str:
    """``text`` with Obsidian's marks as its reading view shows them, code left alone."""
    return "".join(piece if code else _OBSIDIAN.sub(_shown, piece)
                   for piece, code in _pieces(text))


def _shown(m: re.Match) -> str:
    if m.group("code") is not None:
        return m.group("code")
    if m.group("embed") is not None or m.group("comment") is not None \
            or m.group("block") is not None:
        return ""
    if m.group("marked") is not None:
        return m.group("marked")
    if m.group("callout") is not None:
        title = m.group("title").strip() or m.group("callout").replace("-", " ").capitalize()
        return m.group("quote") + title
    if m.group("shown") is not None:
        return m.group("shown").strip()
    page, _, part = m.group("target").partition("#")
    part = part.lstrip("^")  # ("[[Page#^block]]": a block's id)
    return " > ".join(p.strip() for p in (page, part) if p.strip())


_NOTE_MARK = re.compile(r"\[\[[^\s\[\]][^\[\]\n]{0,500}\]\]|^>[ \t]?\[![\w-]{1,40}\]", re.M)


def looks_like_obsidian(text: str) -> bool:
    """Whether the note is written for a notes app: a ``[[wiki link]]`` or a callout outside
    code (then ``obsidian_text`` applies; "%%" and "==" alone are a printf format or an
    equation, ``np.array([[1, 2]])`` is code)."""
    prose = "".join(piece for piece, code in _pieces(text) if not code)
    return bool(_NOTE_MARK.search(_INLINE_CODE.sub("", prose)))
