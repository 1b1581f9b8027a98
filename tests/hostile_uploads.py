"""The hostile files of issue 24, built on demand (never committed as blobs): the bombs and
the slow PDF a client uploaded to `rag serve`. Used by the tests and by
eval/bench_serve_attacks.py, which measures what each costs the server.
"""
from __future__ import annotations

import io
import sys
import zipfile
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pdfgen import assemble  # noqa: E402


def gzip_of(unit: bytes, total: int) -> bytes:
    """gzip bytes of ``unit`` repeated to ``total`` bytes, compressed as it is produced."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = unit * max(1, (1 << 20) // len(unit))
    out, done = [], 0
    while done < total:
        piece = block[:total - done]
        out.append(comp.compress(piece))
        done += len(piece)
    return b"".join(out) + comp.flush()


def jsonl_gz_bomb(mb: int = 600) -> bytes:
    """A .jsonl.gz of ~600 KB whose rows inflate to ``mb`` MB (~1000x)."""
    row = b'{"id": "r", "title": "Row", "text": "' + b"A" * 8000 + b'"}\n'
    return gzip_of(row, mb << 20)


def newlines_gz_bomb(mb: int = 100) -> bytes:
    """~99 KB of gzip inflating to ``mb`` MB of newlines."""
    return gzip_of(b"\n", mb << 20)


def docx_bomb(mb: int = 300) -> bytes:
    """A ~300 KB .docx whose word/document.xml inflates to ``mb`` MB."""
    from docx import Document

    buf = io.BytesIO()
    Document().save(buf)
    good = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name in good.namelist():
            if name != "word/document.xml":
                z.writestr(name, good.read(name))
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.'
                    b'org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
            chunk = b"A" * (1 << 20)
            for _ in range(mb):
                f.write(chunk)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def shared_stream_pdf(pages: int = 50, mb: int = 2) -> bytes:
    """A ~13 KB PDF of ``pages`` pages that all show one content stream of ``mb`` MB of text
    operators: a text extractor decodes and interprets it once per page."""
    op = b"BT /F1 12 Tf 72 720 Td (slow) Tj ET\n"
    body = zlib.compress(op * ((mb << 20) // len(op)), 9)
    font, stream = 3 + pages, 4 + pages
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode()]
    objs += [f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {stream} 0 R "
             f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()] * pages
    objs += [b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
             b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body +
             b"\nendstream"]
    return assemble(objs)


def many_elements_html(n: int = 100_000) -> bytes:
    """~3 MB of HTML whose parse takes seconds and hundreds of MB (a tree of 300k nodes),
    whatever the PDF extractor: the slow file of tests that must not depend on one."""
    return b"<html><body>" + b"<div><p>cell <b>x</b> y</p></div>" * n + b"</body></html>"
