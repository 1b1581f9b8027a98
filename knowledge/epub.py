"""EPUB books (2 and 3): one Document of the book's pages in reading order (the package's
spine), each page's visible text and headings as an HTML page is read (``htmltext``), its
title the book's. Navigation pages (the table of contents) are left out; a book whose pages
are encrypted (DRM) is refused, saying so.

Example: ``doc, warnings = load_epub(Path("guide.epub").read_bytes(), "guide.epub")``.
"""
from __future__ import annotations

import dataclasses
import io
import posixpath
from pathlib import Path
from urllib.parse import unquote, urldefrag

from .archives import ArchiveError, check_zip, safe_xml
from .errors import LoadError
from .types import VISIBLE, Document

_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_PAGES = ("application/xhtml+xml", "text/html", "application/xml")
_FONT_OBFUSCATION = ("http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC")


def load_epub(data: bytes, rel: str) -> tuple[Document, list[str]]:
    import zipfile

    from lxml import etree

    try:
        check_zip(data)
        z = zipfile.ZipFile(io.BytesIO(data))
    except (ArchiveError, zipfile.BadZipFile) as err:
        raise LoadError(f"unreadable EPUB file: {err}") from None
    try:
        container = safe_xml(z.read("META-INF/container.xml"))
        root = container.find(f".//{_CONTAINER}rootfile")
        opf_path = root.get("full-path") if root is not None else None
        if not opf_path:
            raise LoadError("unreadable EPUB file: its container names no package file")
        opf = safe_xml(z.read(opf_path))
    except KeyError:
        raise LoadError("unreadable EPUB file: no book inside the zip (its "
                        "META-INF/container.xml or package file is missing)") from None
    except etree.XMLSyntaxError as err:
        raise LoadError(f"unreadable EPUB file: broken XML ({err})") from None
    base = posixpath.dirname(opf_path)
    items = {}
    for item in opf.iter(f"{_OPF}item"):
        href = item.get("href")
        if href:
            path = posixpath.normpath(posixpath.join(base, unquote(urldefrag(href)[0])))
            items[item.get("id")] = (path, item.get("media-type", ""),
                                     item.get("properties", "").split())
    encrypted = _encrypted(z)
    contents = {posixpath.normpath(posixpath.join(base, unquote(urldefrag(r.get("href"))[0])))
                for r in opf.iter(f"{_OPF}reference") if r.get("type") == "toc" and r.get("href")}
    # (an EPUB 2 book's table of contents page, named in its guide)
    title = opf.find(f".//{_DC}title")
    title = " ".join((title.text or "").split()) if title is not None else ""
    parts, sections, length, warnings, seen = [], [], 0, [], set()
    for ref in opf.iter(f"{_OPF}itemref"):
        path, media, properties = items.get(ref.get("idref"), (None, "", ()))
        if (path is None or path in seen or media not in _PAGES or "nav" in properties
                or path in contents or path == opf_path):
            continue  # (a page listed twice, an image, the table of contents, the package)
        seen.add(path)
        if path in encrypted:
            raise LoadError("its pages are encrypted (a DRM-protected book); not read")
        try:
            page = _page(z.read(path), f"{rel}#{path}")
        except KeyError:
            warnings.append(f"{path}: listed in the book but missing from it; left out")
            continue
        if page is None:
            continue
        if parts:
            parts.append("\n\n")
            length += 2
        sections += [dataclasses.replace(s, start=s.start + length) for s in page.sections]
        parts.append(page.text)
        length += len(page.text)
    text = "".join(parts)
    if not VISIBLE.search(text):
        raise LoadError("EPUB file has no text (its pages may be images)")
    title = title or next((s.title for s in sections if s.level == 1), "") or Path(rel).stem
    return Document(doc_id=rel, text=text, source=rel, title=title,
                    sections=tuple(sections)), warnings


def _page(data: bytes, rel: str) -> Document | None:
    """One page of the book, read as an HTML page (None: no text on it)."""
    from .loaders import _load_html, decode_text

    try:
        page = _load_html(decode_text(data)[0], rel)
    except LoadError:  # (binary, or no text)
        return None
    return page if VISIBLE.search(page.text) else None


def _encrypted(z) -> set[str]:
    """The parts encrypted other than by font obfuscation (DRM)."""
    from lxml import etree

    try:
        root = safe_xml(z.read("META-INF/encryption.xml"))
    except (KeyError, etree.XMLSyntaxError):
        return set()
    out = set()
    for data in root.iter("{http://www.w3.org/2001/04/xmlenc#}EncryptedData"):
        method = data.find("{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod")
        if method is not None and method.get("Algorithm") in _FONT_OBFUSCATION:
            continue
        ref = data.find(".//{http://www.w3.org/2001/04/xmlenc#}CipherReference")
        if ref is not None and ref.get("URI"):
            out.add(posixpath.normpath(unquote(ref.get("URI"))))
    return out
