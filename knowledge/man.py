"""Manual pages (roff: ``tar.1.gz``, ``ssh_config.5``) read as ``man`` shows them.

mandoc formats the page (the man and the BSD mdoc macros alike) as HTML, which
``htmltext`` reads as any page: NAME, OPTIONS and the other sections and subsections are
headings, an option list is a definition list (the option's names over its description:
the excerpt of an answer begins with the name it describes), an example keeps its lines.

A page never reaches past itself. roff can name a file to read or a program to run in many
ways (requests renamed, aliased, built from strings, run from a conditional or a diversion),
so no check of the source can be trusted with it; mandoc implements no request that runs a
program or copies a file (``.sy``, ``.pi``, ``.cf``, ``.nx``), follows ``.so`` only on a
relative path without "..", and runs here in an empty folder of its own, without the user's
environment, in a process group of its own, within a time, memory and output bound.

Example: ``doc = man_document(data, "man1/tar.1.gz")``.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

from .errors import LoadError
from .types import Document

SUFFIX = re.compile(r"\.(?:[1-9][a-z]{0,10}|man)$")  # "tar.1", "ssh_config.5", "x.3readline"
ROFF = re.compile(r"^[.'][ \t]*(?:TH|Dd|Dt)\b", re.M)  # what a page opens with
MANDOC_SECONDS = 30
MANDOC_MEMORY = 1 << 30  # bytes of address space
OUTPUT_BOUND = 64 * 2**20  # bytes of HTML
_COMMENT = re.compile(r"^[.'][ \t]*\\[\"#].*$\n?", re.M)
_LINK = re.compile(r"\A\s*[.'][ \t]*so[ \t]+(\S+)\s*\Z")  # a page that is only another's name


def man_document(data: bytes, rel: str) -> Document:
    """The Document of a manual page's roff source (LoadError: not a manual page, a page
    that only names another, no mandoc on this machine, mandoc past its bounds)."""
    source = data.decode("utf-8", "replace")
    link = _LINK.match(_COMMENT.sub("", source[:4096]))
    if link:
        raise LoadError(f"only points to {link.group(1)[:100]!r} (.so); that page is read")
    if not ROFF.search(source[:20000]):
        raise LoadError("not a manual page (no .TH or .Dd); rename it .txt to index it as text")
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        raise LoadError("manual pages are read with mandoc, which this machine lacks (Debian: "
                        "apt install mandoc); or save the page as text: "
                        "`MANWIDTH=100 man -P cat NAME > NAME.txt`")
    return _document(_format(mandoc, data), rel)


def _limit() -> None:  # (in the child, before mandoc starts)
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MANDOC_MEMORY, MANDOC_MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (MANDOC_SECONDS, MANDOC_SECONDS + 1))


def _format(mandoc: str, data: bytes) -> str:
    """mandoc's HTML of the page, within the bounds (LoadError past them)."""
    with tempfile.TemporaryDirectory() as empty:
        proc = subprocess.Popen(
            [mandoc, "-T", "html", "-O", "fragment"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=empty,
            env={"PATH": os.defpath, "LC_ALL": "C.UTF-8"}, start_new_session=True,
            preexec_fn=_limit if os.name == "posix" else None)

        def stop() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # (mandoc and anything it started)
            except (ProcessLookupError, PermissionError):
                pass

        def feed() -> None:
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except OSError:  # (mandoc stopped reading: stopped below, or done)
                pass

        threading.Thread(target=feed, daemon=True).start()
        timer = threading.Timer(MANDOC_SECONDS, stop)
        timer.start()
        chunks, size = [], 0
        try:
            while block := proc.stdout.read(65536):
                size += len(block)
                if size > OUTPUT_BOUND:
                    raise LoadError(f"mandoc wrote more than {OUTPUT_BOUND // 2**20} MB of "
                                    "HTML for this page; not read")
                chunks.append(block)
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # (not after it was reaped: its id may be another's)
                stop()
                proc.wait()
            proc.stdout.close()
    if proc.returncode < 0:
        raise LoadError(f"mandoc was stopped (signal {-proc.returncode}: past "
                        f"{MANDOC_SECONDS} s or {MANDOC_MEMORY >> 20} MB) on this page; not read")
    return b"".join(chunks).decode("utf-8", "replace")


def _document(html: str, rel: str) -> Document:
    from bs4 import BeautifulSoup

    from .htmltext import html_document

    html = html.replace("\n<br/>\n", "\n")  # (mandoc's line breaks in an example: its lines)
    soup = BeautifulSoup(f"<html><body>{html}</body></html>", "lxml")
    for table in soup.select("table.head, table.foot"):  # (the running header and footer)
        table.decompose()
    for a in soup.select("a.permalink"):  # (a heading's or an option's own link: its text)
        a.unwrap()
    doc = html_document(soup, rel)
    name = _name_line(doc)
    return replace(doc, title=name or Path(rel).name.split(".")[0])


def _name_line(doc: Document) -> str:
    """The page's NAME line ("grep, egrep - print lines that match patterns")."""
    for i, s in enumerate(doc.sections):
        if s.title.upper() == "NAME":
            end = doc.sections[i + 1].start if i + 1 < len(doc.sections) else len(doc.text)
            return " ".join(doc.text[s.start + len(s.title):end].split())[:200]
    return ""
