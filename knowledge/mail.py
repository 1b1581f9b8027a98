"""E-mail: a saved message (``.eml``) or a mailbox (``.mbox``, one document per message), read
with the standard library's ``email`` package: a first line, the section heading, with its
subject, sender and day ("# Backup schedule changed (Ann Lee, 2023-10-02)"), then the body (the
plain-text part, else the HTML part's visible text, and any other inline text part); the
headers and attachment names are the document's metadata (in the text, "Date:" lines were
what a "when" question was answered with). An attachment in a format the knowledge base reads
(a PDF, a Word file, a text or Markdown file, a forwarded message) is a document of its own,
``"mail.eml#report.pdf"``, all of a message's attachments within ``--max-file-mb`` together.
In a mailbox, a message is cited by its Message-ID, and a reply's quotation of a message that
is in the same mailbox is left out (it would be that message a second time); signatures and a
list's footer are left out everywhere.

Example: ``docs, warnings = mail_documents(data, "list.mbox", mbox=True, load=load_file)``.
"""
from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from pathlib import Path
from typing import Callable

from .archives import MAX_INFLATED
from .errors import LoadError
from .types import VISIBLE, Document, Section

MAX_DEPTH = 3  # a message forwarded in a message forwarded in ...: deeper ones are named only
HEADERS = ("From", "To", "Cc", "Date", "Message-ID")  # (the document's metadata)
# where a message begins in a mailbox: a "From " line with a time and a year ("From
# ann@example.org Mon Oct  2 10:00:00 2023", Thunderbird's "From - Mon ..."), at the start or
# after a blank line (a "From " line in a body that a writer forgot to escape is not one)
_FROM_LINE = re.compile(rb"(?:\A|(?<=\n\n))From [^\n]{0,600}\n")
_TIME, _YEAR = re.compile(rb"\b\d{1,2}:\d\d\b"), re.compile(rb"\b\d{4}\b")
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]{1,80}:")  # (what follows one: a header)
_ESCAPED = re.compile(rb"^>(>*From )", re.M)  # (mboxrd: a body's "From " written ">From ")
_ATTRIBUTION = re.compile(r"^[^\n>]{0,300}(?:wrote|writes|schrieb|a écrit|escribió)[^\n]{0,20}:"
                          r"[ \t]*$|^-{2,}[ \t]*Original Message[ \t]*-{2,}[ \t]*$", re.I)


def mail_documents(data: bytes, rel: str, *, mbox: bool, load: Callable, depth: int = 0,
                   max_bytes: float | None = None) -> tuple[list[Document], list[str]]:
    """The documents of a message or a mailbox; ``load(path, rel, data, max_bytes, depth)``
    reads attachments (``loaders.load_file``), all of them together within ``max_bytes``
    once inflated (``--max-file-mb``)."""
    budget = [int(max_bytes or MAX_INFLATED)]  # (all attachments together, once read)
    if not mbox:
        msg = _parse(data)
        if msg is None:
            raise LoadError("a message nested too deeply to read (a mail bomb?)")
        if not _looks_like_mail(msg):
            raise LoadError("not an e-mail message (no From, To, Subject or Date header)")
        docs, warnings = _message(msg, rel, rel, load, depth, set(), budget)
        if not docs:
            raise LoadError("no text (a message with an empty body and no readable attachment)")
        return docs, warnings
    data = data.replace(b"\r\n", b"\n")  # (a mailbox saved on Windows)
    starts = [m.start() for m in _FROM_LINE.finditer(data)
              if _TIME.search(m.group()) and _YEAR.search(m.group())
              and _HEADER_LINE.match(data, m.end())]
    if not starts or data[:starts[0]].strip():
        raise LoadError('not a mailbox (mbox): it does not begin with a "From " line with the '
                        'date, as mbox files do')
    raw = [data[a:b].split(b"\n", 1)[-1] for a, b in zip(starts, starts[1:] + [len(data)])]
    messages = [_parse(_ESCAPED.sub(rb"\1", r)) for r in raw]
    ids = [_header(m, "Message-ID") if m is not None else "" for m in messages]
    parents, seen, docs, warnings = set(ids) - {""}, {}, [], []
    for n, (msg, msg_id, body) in enumerate(zip(messages, ids, raw), 1):
        if msg is None:
            warnings.append(f"message {n}: nested too deeply to read (a mail bomb?); skipped")
            continue
        key = msg_id.strip("<>")[:200]  # (a message's id: its citation stays when others
        # come and go; by its place where it has none, or only digits: "#7" is the 7th)
        key = key if VISIBLE.search(key) and not key.isdigit() else str(n)
        if key in seen:
            if seen[key] == body:  # (the same message saved twice)
                continue
            key = f"{key}~{n}"
        seen[key] = body
        try:
            got, said = _message(msg, f"{rel}#{key}", rel, load, depth, parents, budget)
        except RecursionError:
            got, said = [], ["nested too deeply to read (a mail bomb?); skipped"]
        docs += got
        warnings += [f"message {n}: {w}" for w in said]
    if not docs:
        raise LoadError("no message with text in the mailbox")
    return docs, warnings


def _parse(data: bytes):
    """The message, or None where it nests too deeply for the parser."""
    try:
        return email.message_from_bytes(data, policy=email.policy.default)
    except RecursionError:
        return None


def _looks_like_mail(msg) -> bool:
    return any(_header(msg, h) for h in ("From", "To", "Subject", "Date"))


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # (a header the policy cannot parse: its raw text)
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    return _clean(" ".join(str(value).split())) if value is not None else ""


def _message(msg, doc_id: str, rel: str, load: Callable, depth: int, parents: set[str],
             budget: list[int]) -> tuple[list[Document], list[str]]:
    warnings: list[str] = []
    body, parts = _body(msg, doc_id, warnings)
    attached, names, used = [], [], set()
    for n, part in enumerate(_attachments(msg), 1):
        if _inline_text(part):  # (Apple Mail: text, an image, more text: one body)
            if part not in parts:
                body += "\n\n" + _text_of(part, doc_id, warnings)
            continue
        name = _filename(part, n)
        names.append(name)
        key = name if name not in used else f"{name}~{n}"  # (four "notes.txt")
        used.add(key)
        if depth + 1 < MAX_DEPTH:
            got, said = _attachment(part, name, f"{doc_id}#{key}", rel, load, depth, budget)
            attached += got
            warnings += [f"attachment {name}: {w}" for w in said]
    if parents and _header(msg, "In-Reply-To") in parents:
        body = unquoted(body)
    body = unsigned(body)
    subject = _header(msg, "Subject")[:300] or "(no subject)"
    heading = f"{subject} ({byline})" if (byline := _byline(msg)) else subject
    meta = {h.lower().replace("-", "_"): v for h in HEADERS if (v := _header(msg, h))}
    if names:
        meta["attachments"] = names
    docs = [Document(doc_id=doc_id, text=f"# {heading}\n\n{body.strip()}\n", source=rel,
                     title=subject, metadata=meta, sections=(Section(0, 1, heading),))] \
        if VISIBLE.search(body) else []
    return docs + attached, warnings


def _byline(msg) -> str:
    """Who sent the message and on which day: "Ann Lee, 2023-10-02"."""
    try:
        sender = msg.get("From")
        who = sender.addresses[0].display_name or sender.addresses[0].addr_spec \
            if sender is not None and sender.addresses else ""
    except Exception:
        who = _header(msg, "From")
    try:
        day = msg.get("Date").datetime.date().isoformat()
    except Exception:
        day = _header(msg, "Date")
    return ", ".join(" ".join(str(x).split())[:100] for x in (who, day) if x)


def _body(msg, doc_id: str, warnings: list[str]) -> tuple[str, list]:
    """The body's text (the plain part, else, or where the plain one is empty, the HTML
    part's visible text) and the parts it was read from."""
    parts = []
    for kind in ("plain", "html"):
        try:
            part = msg.get_body(preferencelist=(kind,))
        except Exception:
            part = None
        if part is not None:
            parts.append(part)
            text = _text_of(part, doc_id, warnings)
            if VISIBLE.search(text):
                return text, parts
    return "", parts


def _text_of(part, doc_id: str, warnings: list[str]) -> str:
    text = _content(part, warnings)
    if part.get_content_subtype() == "html":
        from .loaders import _load_html

        try:
            text = _load_html(text, doc_id).text
        except LoadError:
            text = ""
    return text.replace("\r\n", "\n")


def _inline_text(part) -> bool:
    """A text part shown in the message, not attached: no file name, not "attachment"."""
    try:
        return part.get_content_type() in ("text/plain", "text/html") and \
            not part.get_filename() and part.get_content_disposition() != "attachment"
    except Exception:
        return False


_UNSEEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _clean(text: str) -> str:
    """A header's text without control characters or direction overrides (a subject's
    "\u202e" would turn its heading, title and metadata around in a browser)."""
    return _UNSEEN.sub("", text)


def _content(part, warnings: list[str]) -> str:
    """A text part decoded by its charset; an unknown charset: as UTF-8 or Latin-1, said."""
    from .loaders import decode_text

    try:
        text = part.get_content()
    except (LookupError, UnicodeError, AssertionError, ValueError):
        text = None
    if text is not None and "\ufffd" not in text:
        return text
    raw = part.get_payload(decode=True) or b""
    found, warning = decode_text(raw)
    if text is not None and "\ufffd" in found:  # (the bytes hold the mark themselves)
        return text
    charset = part.get_content_charset()
    warnings.append(f"charset {charset!r} {'unknown' if text is None else 'does not fit'}: "
                    f"{warning or 'read as UTF-8'}")
    return found


def unquoted(body: str) -> str:
    """A reply without the lines quoting the message it answers ("> ...") nor the line that
    introduces them ("On Monday, Ann wrote:", "-----Original Message-----" and all below)."""
    lines = body.split("\n")
    following, nxt = [""] * len(lines), ""  # (each line's next non-blank line)
    for i in range(len(lines) - 1, -1, -1):
        following[i] = nxt
        if lines[i].strip():
            nxt = lines[i]
    kept = []
    for i, line in enumerate(lines):
        if re.match(r"^-{2,}[ \t]*Original Message", line.strip(), re.I):
            break
        if line.startswith(">"):
            continue
        if _ATTRIBUTION.match(line.strip()) and following[i].startswith(">"):
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept))


_FOOTER = re.compile(r"\n(?:(?P<sig>-- )|_{20,}[ \t]*)\n(?P<foot>(?:[^\n]*\n){1,8})\Z")
_LIST = re.compile(r"mailing list|\blists?\.|listinfo|mailman|unsubscribe|https?://", re.I)


def unsigned(body: str) -> str:
    """The body without its signature ("-- " on a line of its own, then at most 8 short
    lines: RFC 3676) or a mailing list's footer (a line of underscores over the list's name
    and address)."""
    m = _FOOTER.search(body.rstrip() + "\n")
    if not m or m.start() == 0 or len(m.group("foot")) > 600 or (
            not m.group("sig") and not _LIST.search(m.group("foot"))):
        return body
    return body[:m.start()].rstrip() + "\n"


def _attachments(msg):
    try:
        return list(msg.iter_attachments()) if msg.is_multipart() else []
    except Exception:
        return []


def _filename(part, n: int) -> str:
    """The attachment's file name, as a name alone (no folders, no control characters)."""
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = re.sub(r"[\x00-\x1f\x7f]", "", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split())[:120].strip(". ")
    if not name and part.get_content_type() == "message/rfc822":
        name = f"forwarded-{n}.eml"
    return name or f"attachment-{n}"


# an attachment named without a suffix, read by its type
_BY_TYPE = {"application/pdf": ".pdf", "text/plain": ".txt", "text/markdown": ".md",
            "text/html": ".html", "message/rfc822": ".eml", "application/mbox": ".mbox",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx"}


def _attachment(part, name: str, doc_id: str, rel: str, load: Callable, depth: int,
                budget: list[int]) -> tuple[list[Document], list[str]]:
    from .loaders import is_supported

    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if not hasattr(inner, "get_body"):
            return [], []
        return _message(inner, doc_id, rel, load, depth + 1, set(), budget)
    path = Path(name)
    if not is_supported(path):  # ("report" sent as application/pdf)
        path = Path(name + _BY_TYPE.get(part.get_content_type(), ""))
        if not is_supported(path):
            return [], []
    if budget[0] <= 0:
        return [], ["not read: the message's attachments reached --max-file-mb together"]
    try:
        data = part.get_payload(decode=True) or b""
        docs, said = load(path, doc_id, data, budget[0], depth + 1)
    except LoadError as err:
        return [], [str(err)]
    budget[0] -= len(data) + sum(len(d.text) for d in docs)
    return [dataclasses.replace(d, source=rel, title=name if d.title == Path(doc_id).stem
                                else d.title) for d in docs], said
