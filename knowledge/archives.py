"""Compressed inputs (gzip, ZIP containers such as DOCX) opened without trusting them.

A compression bomb is a small file that inflates to gigabytes. Each archive is judged on
what it declares (gzip's trailer, a ZIP's central directory) before anything is inflated,
then again on what actually comes out while it inflates, in steps of ``STEP`` bytes: at most
``MAX_INFLATED`` bytes in all and at most ``MAX_RATIO`` times its compressed size (a ratio
is only held against output past ``RATIO_FREE``: tiny members compress absurdly well).
Text compresses 3-10x and Office XML 10-20x; newlines or one repeated letter, 1000x.

Example: ``text = gunzip(data)``; ``check_zip(docx_bytes)`` before handing it to a reader;
``safe_xml(part)`` to parse one of its XML parts (no entity expanded, nothing fetched).
"""
from __future__ import annotations

import io
import zlib

MAX_INFLATED = 256 * 2**20  # bytes out of one archive
MAX_RATIO = 100  # inflated / compressed
# output below this is never a bomb: a blank form of a 1,500-row Word table is a 1.1 MB
# document.xml that compresses 105x, and 16 MB of XML parses in well under the parser's bounds
RATIO_FREE = 16 * 2**20
MAX_MEMBERS = 10_000  # ZIP entries
STEP = 2**20  # inflate this much at a time


class ArchiveError(ValueError):
    """The archive is refused; the message says why (without the file name)."""


def _judge(out: int, into: int, limit: int, what: str, verb: str = "inflates") -> None:
    """Refuse ``out`` bytes inflated from ``into`` compressed ones, or say nothing."""
    if out > limit:
        raise ArchiveError(f"{what} {verb} to more than {limit / 2**20:g} MB (a compression "
                           "bomb?); not read")
    if out > RATIO_FREE and out > MAX_RATIO * max(into, 1):
        raise ArchiveError(f"{what} {verb} more than {MAX_RATIO}x its size (a compression "
                           "bomb?); not read")


def gunzip(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """The inflated bytes of gzip ``data`` (one member or several), bounded as above.

    ``gunzip(gzip.compress(b"hi")) == b"hi"``; an ArchiveError names what was refused."""
    # The trailer declares the last member's size; a damaged file's trailer is noise, so a
    # declared bomb is refused once its first STEP has inflated (a bomb's does, garbage not).
    declared = None
    if len(data) >= 18 and data[:2] == b"\x1f\x8b":
        try:
            _judge(int.from_bytes(data[-4:], "little"), len(data), limit, "the gzip file",
                   "declares it inflates")
        except ArchiveError as err:
            declared = err
    out, size, rest = [], 0, data
    while rest:
        d, pending = zlib.decompressobj(wbits=31), rest
        while not d.eof:
            try:
                piece = d.decompress(pending, STEP)
            except zlib.error as err:
                raise ArchiveError(f"not a valid gzip file ({err})") from None
            if not piece and len(d.unconsumed_tail) == len(pending):
                break  # no progress: the input ended early
            pending = d.unconsumed_tail
            size += len(piece)
            if declared is not None and size >= STEP:
                raise declared
            _judge(size, len(data), limit, "the gzip file")
            out.append(piece)
        if not d.eof:
            raise ArchiveError("not a valid gzip file (it ends before its end marker)")
        rest = d.unused_data
    return b"".join(out)


def check_zip(data: bytes, limit: int = MAX_INFLATED) -> None:
    """Refuse a ZIP container (DOCX, XLSX, ODT...) whose members declare, or turn out to
    inflate to, more than ``limit`` bytes in all or more than MAX_RATIO times their size;
    every member is inflated once here in STEP pieces (nothing kept). ``check_zip(b)``."""
    import zipfile

    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        members = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as err:
        raise ArchiveError(f"not a valid ZIP container ({err})") from None
    if len(members) > MAX_MEMBERS:
        raise ArchiveError(f"holds {len(members)} entries (more than {MAX_MEMBERS}); not read")
    declared = 0
    for m in members:
        declared += m.file_size
        _judge(m.file_size, m.compress_size, limit, f"its part {m.filename!r}",
               "declares it inflates")
        _judge(declared, len(data), limit, "the file", "declares it inflates")
    total = 0
    for m in members:
        seen = 0
        try:
            with z.open(m) as f:
                while piece := f.read(STEP):
                    seen += len(piece)
                    total += len(piece)
                    _judge(seen, m.compress_size, limit, f"its part {m.filename!r}")
                    _judge(total, len(data), limit, "the file")
        except ArchiveError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error,
                NotImplementedError, RuntimeError) as err:  # (RuntimeError: encrypted)
            raise ArchiveError(f"damaged or unsupported part {m.filename!r} "
                               f"({err.__class__.__name__})") from None


def safe_xml(data: bytes):
    """lxml's tree of an XML part of a container, no entity expanded, nothing fetched."""
    from lxml import etree

    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
