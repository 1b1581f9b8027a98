"""Manual pages (roff: ``tar.1.gz``, ``ssh_config.5``) read as ``man`` shows them.

groff formats the page (``-mandoc``: both the man and the BSD mdoc macros, ``-t``: tables)
with lines as long as a paragraph, and the layout it prints gives the structure: a line at
the margin is a section (NAME, OPTIONS), one indented a little a subsection; an option's
name stands on its line, its description flush as a paragraph under it ("-r, --recursive"
then "Read all files under each directory ...": the excerpt of an answer can begin with
the name it describes); a block keeps its own indentation (examples).

A page never reaches past itself: a page holding a request that reads another file or
runs a program (``.so``, ``.cf``, ``.sy``, a request named through a string) is not read;
groff runs without the user's environment (``\\V`` reads it), in an empty folder, within a
time and an output bound.

Example: ``doc = man_document(data, "man1/tar.1.gz")``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import LoadError
from .types import Document, Section

SUFFIX = re.compile(r"\.(?:[1-9][a-z]{0,4}|man)$")  # "tar.1", "ssh_config.5", "Pod::Usage.3pm"
ROFF = re.compile(r"^(?:\.TH|\.Dd|\.Dt)\b", re.M)  # what a page opens with (after comments)
GROFF_SECONDS = 30.0
OUTPUT_BOUND = 32 * 2**20  # bytes of formatted text
# requests that read a file or run a program, however named (renamed, aliased, through
# "do", after changing the control or escape character); "mso" of a macro package by name
# (an-ext.tmac) is how pages load macros, and stays
_READS = r"so|cf|trf|nx|rd|pso|open|opena|sy|pi|cc|c2|ec|eo|rn|lf|pm|ecs|ecr"
_UNSAFE = re.compile(
    rf"^[.'][ \t]*(?:(?:{_READS})\b|mso[ \t]+\S*[/\\]|(?:als|do)[ \t]+(?:\S+[ \t]+)?"
    rf"(?:{_READS}|mso|als)\b|\\+[*$])", re.M)
_LINK = re.compile(r"\A\s*\.so[ \t]+(\S+)\s*\Z")  # a page that is only another's name
_HEADER = re.compile(r"\S\(\w+\)\s*$")  # "GREP(1) ... GREP(1)", the footer's last word
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2212": "-"})


def man_document(data: bytes, rel: str) -> Document:
    """The Document of a manual page's roff source (LoadError: not a manual page, one that
    reads past itself, no groff on this machine)."""
    source = data.decode("utf-8", "replace")
    link = _LINK.match(source)
    if link:
        raise LoadError(f"only points to {link.group(1)[:100]!r} (.so); that page is read")
    if not ROFF.search(source[:20000]):
        raise LoadError("not a manual page (no .TH or .Dd); rename it .txt to index it as text")
    bad = _UNSAFE.search(source)
    if bad:
        line = source.count("\n", 0, bad.start()) + 1
        raise LoadError(f"a request that reads another file or runs a program "
                        f"({bad.group(0).strip()[:40]!r}, line {line}); not read")
    groff = shutil.which("groff")
    if groff is None:
        raise LoadError("manual pages are read with groff, which this machine lacks (Debian: "
                        "apt install groff-base); or save the page as text: "
                        "`MANWIDTH=100 man -P cat NAME > NAME.txt`")
    text = _format(groff, data)
    return _document(text.translate(_DASHES), rel)


def _format(groff: str, data: bytes) -> str:
    """groff's text of the page: paragraphs on one line, no hyphenation, no overstrike."""
    cmd = [groff, "-mandoc", "-t", "-Tutf8", "-P-cbou", "-rLL=2000n", "-rHY=0", "-rcR=1"]
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, cwd=empty,
                                env={"PATH": os.defpath, "LANG": "C.UTF-8"})
        try:
            out, _ = _bounded(proc, data)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return out.decode("utf-8", "replace")


def _bounded(proc, data: bytes) -> tuple[bytes, None]:
    import threading

    def feed():
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except OSError:  # (groff stopped reading: killed below, or done)
            pass

    threading.Thread(target=feed, daemon=True).start()
    chunks, size = [], 0
    timer = threading.Timer(GROFF_SECONDS, proc.kill)
    timer.start()
    try:
        while True:
            block = proc.stdout.read(65536)
            if not block:
                break
            size += len(block)
            if size > OUTPUT_BOUND:
                proc.kill()
                raise LoadError(f"groff wrote more than {OUTPUT_BOUND // 2**20} MB for this "
                                "page; not read")
            chunks.append(block)
        proc.wait()
    finally:
        timer.cancel()
    if proc.returncode and proc.returncode < 0:
        raise LoadError(f"groff took longer than {GROFF_SECONDS:g} s on this page; not read")
    return b"".join(chunks), None


def _document(text: str, rel: str) -> Document:
    lines = [line.rstrip() for line in text.split("\n")]
    body = [i for i, line in enumerate(lines) if line]
    for end in (0, -1):  # (the running header and footer)
        if body and _HEADER.search(lines[body[end]]) and not lines[body[end]].startswith(" "):
            lines[body[end]] = ""
    out: list[str] = []
    sections: list[Section] = []
    length = 0
    block: list[str] = []

    def put(s: str) -> None:
        nonlocal length
        out.append(s)
        length += len(s)

    def flush() -> None:
        if not block:
            return
        if out:
            put("\n\n")
        indents = [len(b) - len(b.lstrip(" ")) for b in block]
        first = indents[0]
        terms = next((k for k, n in enumerate(indents) if n > first), len(block))
        if 0 < terms == len(block) - 1 and (block[-1].endswith((".", ":", "!", "?"))
                                            or block[0].lstrip().startswith("-")):
            # (a paragraph is one line, a sentence or an option's: an example's lines are
            # several, or bare)
            # an option's name(s), then its description set flush under it
            shown = ["\n".join(b.strip() for b in block[:terms]) + "\n", block[-1].strip()]
        else:
            least = min(indents)
            shown = [b[least:] for b in block]
        put("\n".join(shown))
        block.clear()

    for line in lines:
        if not line.strip():
            flush()
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0 or (indent <= 4 and len(line) < 100 and not block and
                           not line.rstrip().endswith((".", ","))):
            flush()
            if out:
                put("\n\n")
            title = " ".join(line.split())
            sections.append(Section(length, 1 if indent == 0 else 2, title))
            put(title)
            continue
        block.append(line)
    flush()
    doc_text = "".join(out)
    name = _name_line(doc_text, sections)
    title = name or Path(rel).name.split(".")[0]
    if not doc_text.strip():
        raise LoadError("no text")
    return Document(doc_id=rel, text=doc_text, source=rel, title=title, sections=tuple(sections))


def _name_line(text: str, sections: list[Section]) -> str:
    """The page's NAME line ("grep, egrep - print lines that match patterns")."""
    for i, s in enumerate(sections):
        if s.title.upper() == "NAME":
            end = sections[i + 1].start if i + 1 < len(sections) else len(text)
            return " ".join(text[s.start + len(s.title):end].split())[:200]
    return ""
