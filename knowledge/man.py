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

import re
import shutil
from dataclasses import replace
from pathlib import Path

from .errors import LoadError
from .types import Document

SUFFIX = re.compile(r"\.(?:[1-9][a-z]{0,10}|man)$")  # "tar.1", "ssh_config.5", "x.3readline"
ROFF = re.compile(r"^[.'][ \t]*(?:TH|Dd|Dt)\b", re.M)  # what a page opens with
MANDOC_SECONDS = 30
MANDOC_MEMORY = 1 << 30  # bytes of address space
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


def _format(mandoc: str, data: bytes) -> str:
    """mandoc's HTML of the page, within the bounds (LoadError past them)."""
    from .programs import run_bounded

    html = run_bounded([mandoc, "-T", "html", "-O", "fragment"], data, "mandoc", check=False,
                       seconds=MANDOC_SECONDS, memory=MANDOC_MEMORY)
    return html.decode("utf-8", "replace")


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
