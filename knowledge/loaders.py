"""Loaders: one function per file format, each turning a file into Documents.

A loader raises ``LoadError`` when the whole file is unusable (the file is skipped with a
warning) and returns per-row warnings for tabular files, whose good rows still load.

Example: ``docs, warnings = load_file(Path("notes/a.md"), "a.md")``.
"""
from __future__ import annotations

import bisect
import csv
import dataclasses
import errno
import fnmatch
import io
import json
import os
import stat
import re
from pathlib import Path

from .archives import MAX_INFLATED, ArchiveError, gunzip
from .errors import LoadError
from .man import SUFFIX as MAN_PAGE
from .man import man_document
from .office import SUFFIXES as OFFICE_SUFFIXES  # Word, OpenDocument, PowerPoint, Excel
from .types import VISIBLE, Document, Section

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
RST_SUFFIXES = (".rst", ".rest")  # reStructuredText (``rst``)
OUTLINE_SUFFIXES = (".adoc", ".asciidoc", ".org")  # AsciiDoc, Org: text with their headings
MAN_SUFFIXES = (".man",)  # manual pages (roff): "tar.1", "ssh_config.5", "x.man" (``man``)
INFO_SUFFIXES = (".info",)  # GNU Info manuals: "grep.info", "find.info-2" (/usr/share/info)
MAIL_SUFFIXES = (".eml", ".mbox")  # a saved message; a mailbox, one document per message (``mail``)
NOTEBOOK_SUFFIXES = (".ipynb",)  # Jupyter notebooks (``notebook``)
LATEX_SUFFIXES = (".tex", ".latex", ".ltx")  # LaTeX sources, through pandoc (``latex``)
TABULAR_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv")
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES + RST_SUFFIXES + OUTLINE_SUFFIXES
    + MAN_SUFFIXES + INFO_SUFFIXES + MAIL_SUFFIXES + NOTEBOOK_SUFFIXES + LATEX_SUFFIXES
    + (".pdf", ".epub") + OFFICE_SUFFIXES + TABULAR_SUFFIXES
)
# text, Markdown and HTML compressed with gzip, as Debian ships its documentation
# (/usr/share/doc/*/README.md.gz, changelog.gz): read through the bounded ``gunzip``
GZIP_SUFFIXES = tuple(s + ".gz" for s in TEXT_SUFFIXES + MARKDOWN_SUFFIXES + HTML_SUFFIXES
                      + RST_SUFFIXES + OUTLINE_SUFFIXES + MAN_SUFFIXES + INFO_SUFFIXES
                      + MAIL_SUFFIXES)
# a project's plain-text documents named by convention, without a suffix ("README", "NEWS",
# "FAQ", "changelog.Debian", each also gzipped): read as text (licences are left out: the
# same GPL in every package's folder is no one's answer)
DOC_NAMES = re.compile(r"(?:README|Readme|FAQ|NEWS|CHANGES|CHANGELOG|changelog|HISTORY|TODO|"
                       r"BUGS|AUTHORS|INSTALL|THANKS|HACKING|CONTRIBUTING)(?:\.[Dd]ebian)?")
_TERMINAL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # a terminal's escape sequences
_OVERSTRUCK = re.compile(r"[^\n]\x08")  # grotty's overstrike: "b\bb" bold, "_\bx" underlined
# what a user is told is read
SUPPORTED = (".txt .md .html .rst .adoc .org .info .tex .pdf .epub .docx .odt .odp .ods "
             ".pptx .xlsx .eml .mbox .ipynb .jsonl .jsonl.gz .csv, manual pages (tar.1), "
             "Maildir and Thunderbird mail folders; .txt .md .html .rst .adoc .org .info .eml "
             ".mbox and manual pages gzipped too; README, NEWS, FAQ, changelog-style files")
IGNORED_KEPT = 100  # unsupported files ``walk`` names (it counts them all)
# documents not read here that a user may expect to be, and what to save them as to have them
# read (``rag index`` says so)
CONVERTIBLE = {".doc": ".docx or .odt", ".rtf": ".docx or .odt", ".wpd": ".docx or .odt",
               ".pages": ".docx", ".docm": ".docx", ".dotx": ".docx", ".ott": ".odt",
               ".xls": ".xlsx or .ods", ".xlsm": ".xlsx", ".numbers": ".xlsx", ".ots": ".ods",
               ".ppt": ".pptx or .odp", ".pptm": ".pptx", ".key": ".pptx", ".otp": ".odp",
               ".mobi": ".epub", ".azw": ".epub", ".azw3": ".epub", ".fb2": ".epub",
               ".chm": "PDF or HTML", ".djvu": "PDF", ".ps": "PDF", ".xps": "PDF", ".odg": "PDF"}
MAX_ROW_WARNINGS = 5  # per file; the rest are counted in one line
# a format's reader, versioned when it reads files better (1 where unnamed): a knowledge base
# records the versions that read it, and the next `rag index` of a folder reads again its
# files of a format read better since (only documents whose text changed are embedded again)
# (keyed as ``suffix_of`` names a file). 2: Word's footnotes and endnotes, HTML without
# Confluence's and Notion's chrome (so mail too: its HTML bodies, its Word attachments)
READER_VERSIONS = {s: 2 for s in (".docx", ".html", ".htm", ".html.gz", ".htm.gz", ".eml",
                                  ".mbox", ".eml.gz", ".mbox.gz")}


def suffix_of(path: Path) -> str:
    """The suffix that decides how a file is read: ".md", ".jsonl.gz", ".md.gz" (gzipped
    Markdown), ".txt" for "README" or "NEWS.gz"'s ".txt.gz", ".eml" or ".mbox" for mail
    kept by a mail program without a suffix (a Maildir's messages, ``_mailbox``)."""
    if in_maildir(path):
        return ".eml"  # (a Maildir message: "1700000000.M1P2.mx.example.org" is no Org file)
    name = path.name.lower()
    if name.endswith(".jsonl.gz"):
        return ".jsonl.gz"
    gz = ".gz" if name.endswith(".gz") else ""
    inner = name[:-3] if gz else name
    if DOC_NAMES.fullmatch(path.name[:-3] if gz else path.name):
        return ".txt" + gz
    if MAN_PAGE.search(inner):
        return ".man" + gz
    if _INFO_NAME.search(inner):
        return ".info" + gz
    suffix = Path(inner).suffix
    if gz:
        return suffix + gz if suffix + gz in GZIP_SUFFIXES else gz
    return suffix if suffix in SUPPORTED_SUFFIXES else _mailbox(path) or suffix


# a Maildir message: "1700000000.M1P2.host:2,S" (offlineimap: "1382620924_0.23395.host,U=1")
_MAILDIR_NAME = re.compile(r"\d{6,}[._]")
_MAILDIR_INFO = re.compile(r":2,[A-Za-z]*$")  # its flags (seen, replied...), which change


def in_maildir(path: Path) -> bool:
    """Whether ``path`` is a message of a Maildir: named as delivered, in the cur/ or new/
    folder of a folder holding cur/, new/ and tmp/."""
    parent = path.parent
    return parent.name in ("cur", "new") and _MAILDIR_NAME.match(path.name) is not None and all(
        (parent.parent / d).is_dir() for d in ("cur", "new", "tmp") if d != parent.name)


def unsupported_kind(name: str) -> str:
    """An unsupported file's kind, as a user names it: ".rtf", "no suffix"."""
    suffix = Path(name).suffix.lower()
    return suffix if 1 < len(suffix) <= 12 else "no suffix"


def _mailbox(path: Path) -> str:
    """".mbox" for a mailbox without a suffix: Thunderbird's (an "Inbox" beside its
    "Inbox.msf" summary) or one named "mbox"; "" for other files."""
    if path.name == "mbox" or path.parent.name and os.path.isfile(str(path) + ".msf"):
        return ".mbox"
    return ""


def maildir_id(rel: str) -> str:
    """A Maildir message's document id: its path without the cur/ or new/ it sits in and
    without its flags, which a mail program changes as the message is read or answered
    ("Maildir/cur/1700000000.M1.host:2,RS" -> "Maildir/1700000000.M1.host")."""
    folder, _, name = rel.rpartition("/")
    folder = folder[:-4] if folder.endswith(("/cur", "/new")) else "" if folder in (
        "cur", "new") else folder
    name = _MAILDIR_INFO.sub("", name)
    return f"{folder}/{name}" if folder else name


# a mail program's own files beside its mail, neither read nor counted as unsupported:
# Thunderbird's summaries (anywhere) and settings, a Maildir's markers and Dovecot's indexes
_THUNDERBIRD_FILES = re.compile(r".+\.msf|msgFilterRules\.dat|popstate\.dat")
_MAILDIR_FILES = re.compile(r"maildirfolder|dovecot[-.][\w.-]+|subscriptions|courierimap\w*")
# mail the user threw away or the program judged spam: not their documents
_DISCARDED_MAIL = re.compile(r"(?i)\.?(?:junk|spam|trash|deleted (?:messages|items))")


def _mail_folder_walk(dirnames: list[str], names: set[str]) -> tuple[bool, bool]:
    """(is a Maildir: cur/, new/ and tmp/ in it; holds Thunderbird's mailboxes: a .msf in
    it)."""
    return ("cur" in dirnames and "new" in dirnames and "tmp" in dirnames,
            any(n.endswith(".msf") for n in names))


def _mail_quiet(name: str, full: str, maildir: bool, thunderbird: bool,
                names: set[str]) -> bool:
    """Whether a file is a mail program's own, an empty Thunderbird folder (the parent of its
    subfolders) or discarded mail: passed over without a word."""
    if _THUNDERBIRD_FILES.fullmatch(name) or maildir and _MAILDIR_FILES.fullmatch(name):
        return True
    return thunderbird and name + ".msf" in names and (
        _DISCARDED_MAIL.fullmatch(name) is not None or os.path.getsize(full) == 0)


def is_supported(path: Path) -> bool:
    return suffix_of(path) in SUPPORTED_SUFFIXES + GZIP_SUFFIXES


def is_tabular(path: Path) -> bool:
    return suffix_of(path) in TABULAR_SUFFIXES


def walk(root: Path, include: list[str] = (), exclude: list[str] = (),
         skipped: list | None = None, follow_symlinks: bool = False,
         prune: tuple[Path, ...] = (), ignored: list | None = None,
         kinds=None) -> tuple[list[str], int]:
    """Relative posix paths of the supported files under ``root``, sorted, hidden ones skipped.

    Returns (paths, number of unsupported files skipped); files and folders whose names are
    not valid UTF-8 (ids are text) are left out and, given a ``skipped`` list, appended to it
    as (path, reason). Globs match the relative path or the file name:
    ``walk(Path("docs"), include=["*.md"], exclude=["drafts/*"])``.

    A Sphinx HTML build's ``_sources`` folder (beside its ``searchindex.js``) is not walked:
    it holds each page again as its source.

    Symbolic links are followed only where they stay inside ``root`` (as ripgrep and git
    keep to the tree), unless ``follow_symlinks``; a link loop, or a folder reached twice, is
    never followed. Links not followed are reported in ``skipped`` with the reason. Folders
    in ``prune`` are not walked; given a ``kinds`` Counter, unsupported files are counted by
    kind (``unsupported_kind``); given an ``ignored`` list, the unsupported files' relative
    paths are appended to it.
    """
    found, unsupported = [], 0
    real_root = os.path.realpath(root)
    walked: set[str] = {os.path.realpath(p) for p in prune}  # (as if walked already)
    def unreadable(err: OSError) -> None:  # a folder that cannot be listed
        if skipped is not None:
            skipped.append((_shown(Path(err.filename or root)),
                            f"cannot read the folder ({err.strerror}); its files are not indexed"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable,
                                                followlinks=follow_symlinks):
        real = os.path.realpath(dirpath)
        if real in walked or (not follow_symlinks and not _inside(real, real_root)):
            dirnames[:] = []
            continue
        walked.add(real)
        keep = []
        names = set(filenames)
        maildir, thunderbird = _mail_folder_walk(dirnames, names)
        for d in sorted(dirnames):
            if maildir and (d == "tmp" or _DISCARDED_MAIL.fullmatch(d)):
                continue  # (messages being delivered; a Maildir++ .Trash or .Junk)
            if d.startswith(".") and not (maildir and os.path.isdir(
                    os.path.join(dirpath, d, "cur"))) or (
                    d == "_sources" and "searchindex.js" in filenames):
                continue  # (hidden, but a Maildir++ folder, ".Sent"; a Sphinx build's page
                # sources: its pages are read)
            if _valid_name(d):
                keep.append(d)
            elif skipped is not None:
                skipped.append((_shown(Path(dirpath, d)), BAD_NAME + " (folder not walked)"))
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if not _valid_name(name):
                if skipped is not None and is_supported(Path(name)):
                    skipped.append((_shown(Path(dirpath, name)), BAD_NAME))
                continue
            rel = Path(dirpath, name).relative_to(root).as_posix()
            full = os.path.join(dirpath, name)
            if os.path.islink(full) and is_supported(Path(full)):
                why = _unfollowed_link(full, real_root, follow_symlinks)
                if why:
                    if skipped is not None:
                        skipped.append((_shown(Path(full)), why))
                    continue
            if filtered_out(rel, include, exclude) or (
                    (maildir or thunderbird) and _mail_quiet(name, full, maildir, thunderbird,
                                                            names)):
                continue
            if is_supported(Path(full)):
                found.append(rel)
            else:
                unsupported += 1
                if ignored is not None and len(ignored) < IGNORED_KEPT:
                    ignored.append(rel)
                if kinds is not None:
                    kinds[unsupported_kind(name)] += 1
    return sorted(found), unsupported


BAD_NAME = "its name is not valid UTF-8; rename it to index it"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _unfollowed_link(path: str, real_root: str, follow: bool) -> str | None:
    """Why the symbolic link at ``path`` is not followed (None: it is)."""
    try:
        target = os.path.realpath(path, strict=True)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "a symbolic link loop; not followed"
        return "a dangling symbolic link (its target does not exist)"
    if not follow and not _inside(target, real_root):
        return (f"a symbolic link out of the indexed folder (to {_shown(Path(target))}); pass "
                "--follow-symlinks to follow it")
    return None


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
        return False


def _shown(path: Path) -> str:
    """A path printable anywhere: undecodable bytes as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_regular(path: Path, max_bytes: float) -> bytes:
    """The bytes of a regular file, at most ``max_bytes`` (LoadError beyond). Opened without
    blocking and checked on the open descriptor, so a FIFO, socket or device, even one
    swapped in after the scan, is refused instead of hanging the run."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        if err.errno == errno.ENXIO:  # (a socket)
            raise LoadError("not a regular file (a pipe, socket or device); skipped") from None
        raise LoadError(f"cannot read ({err.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LoadError("not a regular file (a pipe, socket or device); skipped")
        # (read(n) allocates n bytes up front: ask for the file's size, then any growth)
        data = f.read(int(min(st.st_size, max_bytes)) + 1)
        if len(data) > st.st_size:
            data += f.read(max(0, int(max_bytes) + 1 - len(data)))
    if len(data) > max_bytes:
        raise LoadError(f"larger than {max_bytes / 2**20:g} MB; raise --max-file-mb to index it")
    return data


def filtered_out(rel: str, include, exclude) -> bool:
    """Whether ``--include``/``--exclude`` globs leave the file ``rel`` out."""
    return bool(include and not _matches(rel, include) or exclude and _matches(rel, exclude))


def _matches(rel: str, globs) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, g) or fnmatch.fnmatch(name, g) for g in globs)


def load_file(path: Path, rel: str, data: bytes | None = None, max_bytes: float | None = None,
              depth: int = 0) -> tuple[list[Document], list[str]]:
    """Load one file as Documents. ``rel`` is its id (path relative to the indexed root);
    ``max_bytes`` bounds a gzipped file once inflated, as ``--max-file-mb`` bounds a file;
    ``depth``: how deep in attachments the file is (a mail's attachment: 1)."""
    suffix = suffix_of(path)
    if data is None:
        data = path.read_bytes()
    if not data.strip():
        raise LoadError("empty file")
    if suffix in GZIP_SUFFIXES:
        limit = int(min(MAX_INFLATED, max_bytes or MAX_INFLATED))
        too_big = (f"larger than {limit / 2**20:g} MB once decompressed; raise --max-file-mb "
                   f"to index it (a gzipped file is read up to {MAX_INFLATED / 2**20:g} MB)")
        try:
            data = gunzip(data, limit)
        except ArchiveError as err:  # (over --max-file-mb rather than a bomb's bound: said so)
            raise LoadError(too_big if limit < MAX_INFLATED and "to more than" in str(err)
                            else str(err)) from None
        suffix = suffix[:-3]
        if not data.strip():
            raise LoadError("empty file (once decompressed)")
    if suffix in TABULAR_SUFFIXES:
        return _load_rows(data, rel, suffix)
    if suffix == ".pdf":
        from .pdf import load_pdf

        doc, warnings = load_pdf(data, rel)
        return [doc], warnings
    if suffix == ".epub":
        from .epub import load_epub

        doc, warnings = load_epub(data, rel)
        return [doc], warnings
    if suffix in OFFICE_SUFFIXES:
        from .office import load_office

        doc, warnings = load_office(data, rel, suffix)
        return [doc], warnings
    if suffix in MAN_SUFFIXES:
        return [man_document(data, rel)], []
    if suffix in MAIL_SUFFIXES:
        from .mail import mail_documents

        docs, warnings = mail_documents(data, rel, mbox=suffix == ".mbox", load=load_file,
                                        depth=depth, max_bytes=max_bytes)
        if depth == 0 and in_maildir(path):
            stable = maildir_id(rel)  # (cited by a name its flags leave)
            docs = [dataclasses.replace(d, doc_id=stable + d.doc_id[len(rel):])
                    if d.doc_id.startswith(rel) else d for d in docs]
        return docs, warnings
    if suffix in NOTEBOOK_SUFFIXES:
        from .notebook import notebook_markdown

        doc = _load_markdown(_TERMINAL.sub("", notebook_markdown(data, rel)), rel)  # (an
        # error's traceback is coloured)
        if not VISIBLE.search(doc.text):
            raise LoadError("no text (a notebook without cells)")
        return [doc], []
    if suffix in INFO_SUFFIXES:  # (makeinfo's index cookies: "\0\b[index\0\b]")
        data = _INFO_COOKIE.sub(_info_cookie, data).replace(b"\x00\x08", b"")  # (and a
        # cookie left unclosed)
    text, warning = decode_text(data)
    warnings = [warning] if warning else []
    if suffix not in HTML_SUFFIXES:  # (a manual page saved as text: bold as "b\bb", colour
        # as "\x1b[1m", which no reader should see)
        text = _OVERSTRUCK.sub("", _TERMINAL.sub("", text))
    if suffix in HTML_SUFFIXES:
        doc = _load_html(text, rel)
    elif suffix in MARKDOWN_SUFFIXES:
        doc = _load_markdown(text, rel)
    elif suffix in INFO_SUFFIXES:
        doc = _load_info(text, rel)
    elif suffix in OUTLINE_SUFFIXES:
        doc = _load_outline(text, rel, suffix == ".org")
    elif suffix in LATEX_SUFFIXES:
        from .latex import latex_document

        doc, said = latex_document(text, rel)
        warnings += said
    elif suffix in RST_SUFFIXES:
        from .rst import rst_document

        doc, said = rst_document(text, rel)
        warnings += said
    else:
        doc = Document(doc_id=rel, text=text, source=rel, title=Path(rel).stem)
        doc = _as_rst(text, rel, warnings) or (
            _load_outline(text, rel, org=False) if looks_like_asciidoc(text) else doc)
    if not VISIBLE.search(doc.text):
        raise LoadError("no text")
    return [doc], warnings



def _as_rst(text: str, rel: str, warnings: list[str]) -> Document | None:
    """Plain text that is reStructuredText, read as such (None where it is not, or where
    docutils cannot read it: then it stays plain text)."""
    from .rst import looks_like_rst, rst_document

    if not looks_like_rst(text):
        return None
    try:
        doc, said = rst_document(text, rel)
    except LoadError:
        return None
    warnings += said
    return doc if VISIBLE.search(doc.text) else None


def decode_text(data: bytes) -> tuple[str, str | None]:
    """Bytes to text with normalised newlines; a warning when it was not UTF-8."""
    if b"\x00" in data[:8192]:
        utf16 = _utf16(data)
        if utf16 is None:
            raise LoadError("binary content, not text")
        return utf16
    warning = None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        from charset_normalizer import from_bytes

        data = data.removeprefix(b"\xef\xbb\xbf")  # (a UTF-8 mark on other bytes: not text)

        matches = from_bytes(data)
        best = matches.best()
        # short Western text fits several single-byte code pages about equally well; the
        # most common one in the wild (Windows-1252) is then the better guess
        for m in matches:
            if best is not None and m.encoding == "cp1252" and m.chaos <= best.chaos + 0.2:
                best = m
        if best is None:
            raise LoadError(f"not valid UTF-8 (byte {err.start}) and no other text encoding fits")
        text = str(best)
        warning = f"not valid UTF-8 (byte {err.start}); read as {best.encoding}"
    return text.replace("\r\n", "\n").replace("\r", "\n"), warning


def _utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 text (with a byte-order mark, or without one where every other byte of the
    start is NUL, as in mostly-Latin text), or None."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding, body = ("utf-16-le" if data[:2] == b"\xff\xfe" else "utf-16-be"), data[2:]
    else:
        head = data[:8192]
        odd, even = head[1::2].count(0), head[0::2].count(0)
        if len(head) < 4 or max(odd, even) < 0.4 * len(head) / 2 or min(odd, even) > 0:
            return None
        encoding, body = ("utf-16-le" if odd > even else "utf-16-be"), data
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError:
        return None
    if sum(ch < " " and ch not in "\n\r\t" for ch in text[:4096]) > 0:
        return None  # control characters: binary after all
    return text.replace("\r\n", "\n").replace("\r", "\n"), f"read as {encoding.upper()}"


# --- Markdown ---------------------------------------------------------------------------

# (no two quantifiers over the same spaces: "#" and 200,000 spaces took minutes to match)
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(\S.*)$", re.M)


def _within(ranges: list[tuple[int, int]]):
    """Whether an offset lies in one of ``ranges`` (sorted, apart): one bisect each."""
    opens = [a for a, _ in ranges]

    def inside(at: int) -> bool:
        i = bisect.bisect_right(opens, at) - 1
        return i >= 0 and at < ranges[i][1]

    return inside


def _load_markdown(text: str, rel: str) -> Document:
    from .markdown import fenced_ranges, front_matter, looks_like_obsidian, obsidian_text
    from .rst import looks_like_myst, myst_text

    text, meta = front_matter(text)  # (a notes app's or a site generator's fields: metadata)
    if looks_like_obsidian(text):  # ([[links]], callouts: as its reading view shows them)
        text = obsidian_text(text)
    if looks_like_myst(text):  # (Sphinx's Markdown: directives and roles as its page shows them)
        text = myst_text(text)
    in_code = _within(fenced_ranges(text))
    sections = tuple(
        Section(m.start(), len(m.group(1)), _heading_title(m.group(2)))
        for m in _MD_HEADING.finditer(text) if not in_code(m.start()))
    sections = tuple(s for s in sections if s.title)  # ("# ##": no title, no heading)
    title = meta.get("title") if isinstance(meta.get("title"), str) else \
        next((s.title for s in sections if s.level == 1), Path(rel).stem)
    return Document(doc_id=rel, text=text, source=rel, title=title, sections=sections,
                    metadata=meta)


def _heading_title(line: str) -> str:
    """A Markdown heading's title without its closing #s ("Title ##"; "C#" keeps its #)."""
    title = line.rstrip(" \t")
    bare = title.rstrip("#")
    if bare != title and (not bare or bare[-1] in " \t"):
        title = bare
    return " ".join(title.split())


def _org_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of Org's blocks: "#+BEGIN_SRC" to the next "#+END_SRC" of the same kind
    (a block of another kind inside, or a stray "#+END_X", changes nothing; a block never
    closed is no block: Org reads it as text)."""
    blocks, opened = [], None
    for m in _ORG_BLOCK.finditer(text):
        begins, kind = m.group(1).lower() == "begin", m.group(2).lower()
        if opened is None and begins:
            opened = (m.start(), kind)
        elif opened is not None and not begins and kind == opened[1]:
            blocks.append((opened[0], m.end()))
            opened = None
    return blocks


# --- AsciiDoc and Org: their text as written, their headings as sections ------------------

_ADOC_HEADING = re.compile(r"^(={1,6})[ \t]+(\S[^\n]*)$", re.M)  # "== Section"
# the older two-line form ("NAME" over "----", as git's manual pages are written)
_ADOC_UNDERLINED = re.compile(r"^(\w[^\n]{0,100})\n([=~^+-])\2{1,100}[ \t]*$", re.M)
_ADOC_LEVELS = "=-~^+"
_ORG_HEADING = re.compile(r"^(\*{1,6})[ \t]+(\S[^\n]*)$", re.M)  # "** Heading :tag:"
_ORG_BLOCK = re.compile(r"^[ \t]*#\+((?i:begin|end))_(\w{1,40})", re.M)  # #+BEGIN_SRC, #+END_SRC
_ORG_TITLE = re.compile(r"^#\+(?i:title):[ \t]*(\S[^\n]*)$", re.M)
_ORG_TAGS = re.compile(r":[\w@#%:]{1,200}:")  # (":work:urgent:", the headline's last word)


# AsciiDoc in a .txt file (git's manual as Debian ships it): an underlined title and a macro
# of AsciiDoc's own (linkgit:git-gc[1], include::x.txt[], a [verse] or [source] block)
_ADOC_MACRO = re.compile(r"^(?:include::\S{1,300}\[\]|\[(?:verse|source|listing|literal|NOTE|TIP|"
                         r"WARNING|IMPORTANT|CAUTION|caption=)[^\]\n]*\]$)|"
                         r"\b(?:linkgit|xref|image|link):{1,2}[^\s\[]{1,300}\[", re.M)


def looks_like_asciidoc(text: str) -> bool:
    head = text[:200_000]
    return bool(_ADOC_UNDERLINED.search(head)) and bool(_ADOC_MACRO.search(head))


def _underlined(text: str, pattern: re.Pattern, levels: str, slack: int) -> list:
    """(offset, level, title) of the titles ``pattern`` finds over an underline (its groups:
    the title, the underline's mark) about as long as the title, within ``slack``; the level
    is the mark's place in ``levels`` (AsciiDoc's "=-~^+", makeinfo's "*=-.")."""
    return [(m.start(), levels.index(m.group(2)) + 1, m.group(1)) for m in pattern.finditer(text)
            if abs(len(m.group(0)) - 2 * len(m.group(1)) - 1) <= slack]


_ADOC_DELIMITER = re.compile(r"(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|\+{4,}|/{4,})[ \t]*")


def _adoc_blocks(text: str) -> list[tuple[int, int]]:
    """Where AsciiDoc's delimited blocks (listing "----", literal "....", example "====",
    sidebar "****", quote "____", passthrough "++++", comment "////") begin and end: what
    looks like a heading there is not. A delimiter is closed by the same line; one right
    under a line it is about as long as (a title) underlines it instead."""
    blocks, opened, mark, prev, before, at = [], None, "", "", "", 0
    for line in text.split("\n"):
        bare = line.rstrip()
        if opened is not None:
            if bare == mark:
                blocks.append((opened, at + len(line)))
                opened = None
        elif _ADOC_DELIMITER.fullmatch(line) and not (
                (not before.strip() or before.startswith("[")) and _titled(prev, bare)):
            opened, mark = at, bare  # (a title stands after a blank line or an anchor,
            # "[[IOFMT]]": a paragraph's last line over "----" is not one)
        before, prev, at = prev, line, at + len(line) + 1
    return blocks + ([(opened, len(text))] if opened is not None else [])


def _titled(prev: str, underline: str) -> bool:
    """Whether ``underline`` under the line ``prev`` makes it a two-line title."""
    title = prev.strip()
    return bool(title) and underline[0] in _ADOC_LEVELS and abs(len(underline) - len(title)) <= 2 \
        and title[0] not in "[.+*/-=" and not _ADOC_DELIMITER.fullmatch(title)


_ADOC_COMMENT = re.compile(r"^//(?!/)[^\n]*\n?", re.M)


def _adoc_uncommented(text: str) -> str:
    """AsciiDoc without its comments ("// a line", "////" blocks): a page never shows them."""
    out, at = [], 0
    for a, b in _adoc_blocks(text):  # (a "//" line in a listing is the program's comment)
        out.append(_ADOC_COMMENT.sub("", text[at:a]))
        if not text.startswith("////", a):
            out.append(text[a:b])
        at = b if not text.startswith("////", a) else min(len(text), b + 1)
    out.append(_ADOC_COMMENT.sub("", text[at:]))
    return "".join(out)


def _org_title(line: str) -> str:
    """An Org headline without its tags (the last word, ":work:urgent:")."""
    words = line.rstrip().rsplit(None, 1)
    return words[0] if len(words) == 2 and _ORG_TAGS.fullmatch(words[1]) else line


def _load_outline(text: str, rel: str, org: bool) -> Document:
    """AsciiDoc (.adoc) or Org (.org) as written, its headings as sections."""
    if org:
        in_block = _within(_org_blocks(text))
        found = [(m.start(), len(m.group(1)), _org_title(m.group(2)))
                 for m in _ORG_HEADING.finditer(text) if not in_block(m.start())]
        named = _ORG_TITLE.search(text)
    else:
        text = _adoc_uncommented(text)
        found = [(m.start(), len(m.group(1)), m.group(2))
                 for m in _ADOC_HEADING.finditer(text)]
        found += _underlined(text, _ADOC_UNDERLINED, _ADOC_LEVELS, 3)
        in_block = _within(_adoc_blocks(text))
        found = [f for f in found if not in_block(f[0])]
        named = None
    sections = tuple(Section(at, level, " ".join(title.split()))
                     for at, level, title in sorted(found) if title.strip())
    title = (" ".join(named.group(1).split()) if named else
             next((s.title for s in sections if s.level == 1), Path(rel).stem))
    return Document(doc_id=rel, text=text, source=rel, title=title, sections=sections)


# --- GNU Info: makeinfo's text, its nodes' navigation left out ---------------------------

_INFO_NAME = re.compile(r"\.info(?:-\d{1,3})?$")  # ("find.info-2": a split manual's part)
_INFO_NODE = re.compile(r"\A\s*File: ([^\n]*)\n")  # a node's navigation line ("Node: ...")
_INFO_MENU = re.compile(r"^\* Menu:", re.M)  # (a node's menu runs to its end: links, an index)
_INFO_HEADING = re.compile(r"^(\S[^\n]{0,200})\n([*=.-])\2{2,300}[ \t]*$", re.M)
_INFO_LEVELS = "*=-."
# an entry of a table or a definition ("‘-r’" over "‘--recursive’", " -- Test: -mtime n"),
# its description indented under it: set flush, a paragraph of its own under its names
_INFO_ENTRY = re.compile(r"^((?:(?:‘[^\n]{1,200}’|'[^\n]{1,200}'| ?-- \S[^\n]{0,200})\n){1,8})"
                         r"((?: {5,}\S[^\n]*(?:\n|\Z))+(?:\n(?: {5,}\S[^\n]*(?:\n|\Z))+)*)", re.M)


def _info_entry(m) -> str:
    """An entry's names, then its description (all its paragraphs) set flush by the first
    line's indent: an example indented further stays indented, as code."""
    names = "\n".join(line.strip() for line in m.group(1).splitlines())
    first = m.group(2)
    indent = len(first) - len(first.lstrip(" "))
    said = "\n".join(line[min(indent, len(line) - len(line.lstrip(" "))):]
                     for line in first.rstrip("\n").split("\n"))
    return f"{names}\n\n{said}" + ("\n" if first.endswith("\n") else "")


_INFO_COOKIE = re.compile(rb"\x00\x08\[([^\x00]{0,1000}?)\x00\x08\]")
_INFO_ALT = re.compile(rb'\balt="((?:[^"\\]|\\.){0,300})"')


def _info_cookie(m: re.Match) -> bytes:
    """makeinfo's markers in the text: an index's ("[index]") leaves nothing, an image's
    ("[image src=\"a.png\" alt=\"A diagram\"]") its alternative text."""
    alt = _INFO_ALT.search(m.group(1)) if m.group(1).startswith(b"image") else None
    return b"[" + alt.group(1).replace(b'\\"', b'"') + b"]" if alt and alt.group(1) else b""


# a cross-reference ("*Note Usage::", "*note the options: Invoking.", over line breaks too),
# shown as an Info reader in Emacs shows it: "See Usage", "see the options."
_INFO_XREF = re.compile(r"\*([Nn])ote[ \t\n]+((?:(?!\*[Nn]ote)[^:]){1,200}?)(?:::|:[ \t\n]*"
                        r"(?:\([^()\n]{1,100}\))?[^.,:\t*]{0,200}?(?=[.,]))")


def _info_xref(m: re.Match) -> str:
    return ("See " if m.group(1) == "N" else "see ") + " ".join(m.group(2).split())


_INFO_MENU_ENTRY = re.compile(r"^\* [^\n]{1,300}?::|^\* [^:\n]{1,300}: [^\n]{0,300}?[.,\t]|"
                              r"^ ?(?:--|\u2014) [^\n]{1,200} (?:--|\u2014)[ \t]*$", re.M)


def _after_menu(rest: str) -> str:
    """What follows a node's menu ("* Menu:" over its entries, a detailed listing's group
    titles and their entries): the text that goes on after it (bc's "Statements" chapter is
    a menu, then the chapter)."""
    paragraphs = re.split(r"\n[ \t]*\n", rest)
    for i, paragraph in enumerate(paragraphs):
        if not paragraph.strip() or _INFO_MENU_ENTRY.search(paragraph):
            continue
        following = next((p for p in paragraphs[i + 1:] if p.strip()), "")
        if "\n" not in paragraph.strip() and _INFO_MENU_ENTRY.match(following.lstrip("\n")):
            continue  # (a group's title in the detailed listing, over its entries)
        return "\n\n" + "\n\n".join(paragraphs[i:])
    return ""


def _load_info(text: str, rel: str) -> Document:
    """A GNU Info manual (or a part of a split one) as its nodes' text: each node without its
    navigation line and its menu, the file's header, tag table and indirect table left out;
    underlined titles (makeinfo's "*", "=", "-", ".") as headings."""
    nodes = []
    for part in text.split("\x1f")[1:]:  # (before the first node: the file's header)
        node = _INFO_NODE.match(part)
        if node is None or "Node: " not in node.group(1):
            continue  # ("Tag Table:", "Indirect:", "End Tag Table")
        body = part[node.end():]
        menu = _INFO_MENU.search(body)
        if menu:
            body = body[:menu.start()].rstrip("\n") + _after_menu(body[menu.end():])
        body = _INFO_ENTRY.sub(_info_entry, _INFO_XREF.sub(_info_xref, body.strip("\n")))
        if body.strip():
            nodes.append(body)
    if not nodes and "\x1f\nIndirect:" in text:
        raise LoadError("the table of a split Info manual; its parts (NAME.info-1, ...) are "
                        "read")
    if not nodes:
        raise LoadError("no Info nodes (no \\x1f File: ... Node: lines); rename it .txt to "
                        "index it as text")
    text = "\n\n".join(nodes) + "\n"
    sections = tuple(Section(at, level, " ".join(title.split()))
                     for at, level, title in _underlined(text, _INFO_HEADING, _INFO_LEVELS, 2))
    title = next((s.title for s in sections if s.level == 1), Path(rel).name.split(".")[0])
    return Document(doc_id=rel, text=text, source=rel, title=title, sections=sections)


# --- HTML -------------------------------------------------------------------------------


def _load_html(text: str, rel: str) -> Document:
    """Visible text of a page with its structure (``htmltext``); a page nested too deeply
    for that: its visible strings, one per line."""
    import warnings

    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    from .htmltext import html_document

    with warnings.catch_warnings():  # (an XHTML page: read as the browser reads it)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(text, "lxml")
    try:
        return html_document(soup, rel)
    except RecursionError:  # (tens of thousands of nested tags)
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        body = "\n".join(soup.stripped_strings)  # (an iterative walk)
        if not body.strip():
            raise LoadError("no text") from None
        return Document(doc_id=rel, text=body, source=rel, title=title)


# --- PDF --------------------------------------------------------------------------------


# --- JSONL / CSV: one document per row ----------------------------------------------------


def row_doc_id(rel: str, row_id: str | None, line_no: int) -> str:
    """The document id of a row of a tabular file: ``<file>#<row id>`` (``#line-N`` without
    an id), so two files that reuse ids 1..N never collide."""
    return f"{rel}#{row_id}" if row_id is not None else f"{rel}#line-{line_no}"


ROW_ID = re.compile(r"^.*?\.(?:jsonl\.gz|jsonl|csv)#(.+)$", re.IGNORECASE | re.DOTALL)


def row_id_of(doc_id: str) -> str | None:
    """The row id part of a tabular document id (None for other documents)."""
    m = ROW_ID.match(doc_id)
    return m.group(1) if m else None


def _load_rows(data: bytes, rel: str, suffix: str) -> tuple[list[Document], list[str]]:
    if suffix == ".jsonl.gz":
        try:
            data = gunzip(data)
        except ArchiveError as err:
            raise LoadError(str(err)) from None
    text, warning = decode_text(data)
    problems: list[str] = [warning] if warning else []
    rows = _csv_rows(text) if suffix == ".csv" else _jsonl_rows(text, problems)
    docs, seen = [], set()
    for line_no, row in rows:
        body = row.get("text")
        if not isinstance(body, str) or not body.strip():
            problems.append(f"line {line_no}: no 'text' field, row skipped")
            continue
        key = str(row.get("id") if row.get("id") not in (None, "") else "").strip()
        doc_id = row_doc_id(rel, key or None, line_no)  # (a row without an id: its line)
        if doc_id in seen:
            problems.append(f"line {line_no}: duplicate id {key or doc_id!r}, row skipped")
            continue
        seen.add(doc_id)
        title = row.get("title")
        meta = {k: v for k, v in row.items() if k not in ("id", "title", "text")}
        docs.append(Document(
            doc_id=doc_id, text=body.replace("\r\n", "\n"), source=rel,
            title=str(title) if title is not None else "", metadata=meta,
        ))
    if not docs:
        first = f": {problems[0]}" if problems else ""
        raise LoadError(f"no usable rows (each needs a 'text' field){first}")
    warnings = problems[:MAX_ROW_WARNINGS]
    if len(problems) > MAX_ROW_WARNINGS:
        warnings.append(f"... and {len(problems) - MAX_ROW_WARNINGS} more row problems")
    return docs, warnings


def _jsonl_rows(text: str, problems: list[str]):
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"line {line_no}: not valid JSON ({err.msg}), row skipped")
            continue
        if not isinstance(row, dict):
            problems.append(f"line {line_no}: not a JSON object, row skipped")
            continue
        yield line_no, row


def _csv_rows(text: str):
    csv.field_size_limit(2**31 - 1)  # a cell may hold a whole document (the file is bounded)
    reader = csv.DictReader(io.StringIO(text))
    for line_no, row in enumerate(reader, 2):
        yield line_no, {k: v for k, v in row.items() if k is not None}
