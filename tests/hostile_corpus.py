"""A deliberately hostile folder for `rag index` (generated, never committed as blobs).

    python tests/hostile_corpus.py DIR        # writes the cases under DIR/corpus

``build(root)`` returns the cases: (relative path, kind, what is expected) where kind says
whether the file should be indexed ("ok"), reported as skipped ("skip"), indexed with a
warning ("warn"), or ignored by the walker ("ignored": hidden files, special files, links
out of the root). Every case must leave `rag index` without a traceback or a hang, naming
the file when it is skipped, and indexing the rest.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import socket
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from pdfgen import assemble, make_pdf  # noqa: E402

GOOD = "The quick brown fox reads the manual about pumps and valves. "


def _docx(paragraphs: list[str]) -> bytes:
    from docx import Document

    doc = Document()
    for p in paragraphs:
        doc.add_paragraph(p)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _docx_bomb() -> bytes:
    """A .docx whose document.xml inflates from ~1 MB to ~1 GB."""
    good = zipfile.ZipFile(io.BytesIO(_docx(["x"])))
    members = {n: good.read(n) for n in good.namelist() if n != "word/document.xml"}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
        with z.open("word/document.xml", "w", force_zip64=True) as f:
            f.write(b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.'
                    b'org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
            chunk = b"A" * (1 << 20)
            for _ in range(1024):
                f.write(chunk)
            f.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buf.getvalue()


def _pdf_bomb() -> bytes:
    """A one-page PDF whose content stream inflates to ~500 MB of text operators."""
    import zlib

    op = b"BT /F1 12 Tf 72 720 Td (bomb) Tj ET\n"
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(op * 4096) for _ in range(3500)) + comp.flush()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body +
            b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return assemble(objs)


def _gzip_bomb(size: int) -> bytes:
    import zlib

    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b" " * (1 << 20)
    return b"".join(comp.compress(block) for _ in range(size >> 20)) + comp.flush()


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(make_pdf([GOOD]))).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def build(root: Path) -> list[tuple[str, str, str]]:
    """Write the hostile corpus under ``root``; return (path, kind, note) per case."""
    root.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[str, str, str]] = []

    def put(rel: str, data: bytes | str, kind: str, note: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        cases.append((rel, kind, note))

    # plain good files, so that "the rest is indexed" can be checked
    put("good/manual.txt", GOOD * 20, "ok", "a plain text file")
    put("good/notes.md", "# Notes\n\n" + GOOD * 10, "ok", "markdown")
    put("good/page.html", f"<html><title>T</title><body><p>{GOOD}</p></body></html>", "ok",
        "html")
    put("good/paper.pdf", make_pdf([GOOD, GOOD]), "ok", "a two-page pdf")
    put("good/report.docx", _docx([GOOD, GOOD]), "ok", "a docx")
    # names
    put("names/with space and ünïcödé.txt", GOOD, "ok", "spaces and non-ASCII in the name")
    put("names/line\nbreak.txt", GOOD, "ok", "a newline in the name")
    put("names/-rf.txt", GOOD, "ok", "a name that looks like an option")
    put("names/" + "n" * 240 + ".txt", GOOD, "ok", "a 244-byte name")
    bad_name = os.fsencode(root / "names") + b"/latin1-\xe9t\xe9.txt"
    with open(bad_name, "wb") as f:
        f.write(GOOD.encode())
    cases.append(("names/latin1-\udce9t\udce9.txt", "skip", "a name that is not UTF-8"))
    (root / "names" / "folder.pdf").mkdir()
    cases.append(("names/folder.pdf", "ignored", "a directory named like a pdf"))
    put("names/.hidden.txt", GOOD, "ignored", "a hidden file")
    # special files and links
    (root / "special").mkdir()
    os.mkfifo(root / "special" / "pipe.txt")
    cases.append(("special/pipe.txt", "skip", "a FIFO named .txt"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "special" / "sock.txt"))
    sock.close()
    cases.append(("special/sock.txt", "skip", "a unix socket named .txt"))
    os.symlink("/dev/zero", root / "special" / "zero.txt")
    cases.append(("special/zero.txt", "ignored", "a link to /dev/zero (outside the root)"))
    os.symlink("loop_b.txt", root / "special" / "loop_a.txt")
    os.symlink("loop_a.txt", root / "special" / "loop_b.txt")
    cases += [("special/loop_a.txt", "ignored", "a symlink loop"),
              ("special/loop_b.txt", "ignored", "a symlink loop")]
    os.symlink("missing.txt", root / "special" / "dangling.txt")
    cases.append(("special/dangling.txt", "ignored", "a dangling symlink"))
    outside = root.parent / "outside-secret.txt"
    outside.write_text("a secret outside the indexed folder")
    os.symlink(outside, root / "special" / "secret.txt")
    cases.append(("special/secret.txt", "ignored", "a symlink out of the root"))
    os.symlink(root, root / "special" / "up")
    cases.append(("special/up", "ignored", "a symlink to the root itself (a loop)"))
    # sizes and shapes
    put("shape/empty.txt", b"", "skip", "empty")
    put("shape/blank.txt", " \n\t\n " * 100, "skip", "whitespace only")
    put("shape/nul.txt", b"\x00" * 4096, "skip", "NUL bytes")
    with open(root / "shape" / "sparse.txt", "wb") as f:
        f.truncate(1 << 30)  # 1 GB of holes: larger than the limit, never read
    cases.append(("shape/sparse.txt", "skip", "a 1 GB sparse file"))
    put("shape/one-line.txt", ("word " * 100_000).strip(), "ok", "a single 500 KB line")
    put("shape/no-spaces.txt", "x" * 100_000, "ok", "one 100 KB token")
    put("shape/repeated.txt", "ERROR timeout on host 7\n" * 5_000, "ok", "one line repeated")
    put("shape/binary.txt", bytes(range(256)) * 64, "skip", "binary named .txt")
    # encodings
    text = "Grüße aus Zürich, façade, naïve café. " * 20
    put("enc/utf8-bom.txt", b"\xef\xbb\xbf" + text.encode(), "ok", "UTF-8 with BOM")
    put("enc/utf16le-bom.txt", b"\xff\xfe" + text.encode("utf-16-le"), "ok", "UTF-16 LE BOM")
    put("enc/utf16be-bom.txt", b"\xfe\xff" + text.encode("utf-16-be"), "ok", "UTF-16 BE BOM")
    put("enc/utf16le-nobom.txt", text.encode("utf-16-le"), "ok", "UTF-16 without BOM")
    put("enc/latin1.txt", text.encode("latin-1"), "warn", "Latin-1")
    put("enc/gb18030.txt", ("中文文档的内容，关于水泵和阀门的说明。" * 30).encode("gb18030"),
        "warn", "GB18030")
    put("enc/shift-jis.txt", ("日本語の文書です。ポンプとバルブについて。" * 30).encode("shift_jis"),
        "warn", "Shift-JIS")
    put("enc/mixed.txt", text.encode() + text.encode("latin-1"), "warn", "UTF-8 and Latin-1 mixed")
    put("enc/crlf.txt", (GOOD + "\r\n") * 10, "ok", "CRLF")
    put("enc/cr-only.txt", (GOOD + "\r") * 10, "ok", "old Mac CR line ends")
    # PDF
    pdf = make_pdf([GOOD])
    put("pdf/truncated.pdf", pdf[:len(pdf) // 2], "skip", "a truncated pdf")
    put("pdf/not-a-pdf.pdf", b"hello, I am not a PDF", "skip", "not a pdf")
    put("pdf/image-only.pdf", make_pdf([None, None]), "skip", "pages without text (a scan)")
    put("pdf/encrypted.pdf", _encrypted_pdf(), "skip", "an encrypted pdf")
    put("pdf/huge-page.pdf", pdf.replace(b"/MediaBox [0 0 612 792]",
                                         b"/MediaBox [0 0 14400000 14400000]"), "ok",
        "an enormous page")
    put("pdf/bomb.pdf", _pdf_bomb(), "skip", "a content stream inflating to ~500 MB")
    # DOCX
    put("docx/junk.docx", _zip({"junk.bin": os.urandom(2048)}), "skip", "a zip of junk")
    put("docx/not-a-zip.docx", b"PK\x03\x04 but then nothing", "skip", "not a zip")
    good_docx = _docx([GOOD])
    put("docx/truncated.docx", good_docx[:len(good_docx) // 2], "skip", "a truncated docx")
    put("docx/bomb.docx", _docx_bomb(), "skip", "document.xml inflating to 1 GB")
    put("docx/empty.docx", _docx([]), "skip", "a docx without text")
    # HTML
    put("html/big-script.html", "<html><body><p>" + GOOD + "</p><script>" +
        "var x = 1;" * 5_000_000 + "</script></body></html>", "ok", "a 50 MB inline script")
    put("html/deep.html", "<div>" * 100_000 + GOOD + "</div>" * 100_000, "ok",
        "100,000 nested tags")
    put("html/lying-charset.html", ('<html><head><meta charset="shift_jis"></head><body><p>'
                                    + text + "</p></body></html>").encode("utf-8"), "ok",
        "a <meta charset> that lies")
    put("html/only-script.html", "<html><script>alert(1)</script></html>", "skip",
        "no visible text")
    put("html/unclosed.html", "<html><body><p>" + GOOD + "<table><tr><td>", "ok",
        "unclosed tags")
    # JSONL
    put("jsonl/non-objects.jsonl", '[1,2]\n"str"\n42\n{"id": "a", "text": "' + GOOD + '"}\n',
        "warn", "rows that are not objects")
    put("jsonl/no-text.jsonl", '{"id": "a"}\n{"id": "b", "text": 5}\n{"id": "c", "text": null}\n',
        "skip", "no usable text field")
    put("jsonl/huge-row.jsonl", json.dumps({"id": "big", "text": GOOD * 5_000}) + "\n", "ok",
        "one 300 KB row")
    put("jsonl/dup-ids.jsonl", '{"id": 1, "text": "one"}\n{"id": 1, "text": "again"}\n', "warn",
        "duplicate ids")
    put("jsonl/no-final-newline.jsonl", '{"id": "z", "text": "' + GOOD + '"}', "ok",
        "a last line without newline")
    put("jsonl/broken.jsonl", '{"id": "a", "text": "ok"}\n{"id": "b", "text": \n', "warn",
        "a truncated row")
    put("jsonl/bomb.jsonl.gz", _gzip_bomb(1 << 30), "skip", "gzip inflating to 1 GB")
    put("jsonl/truncated.jsonl.gz", gzip.compress(b'{"id": 1, "text": "x"}\n' * 100)[:40],
        "skip", "a truncated gzip")
    # CSV
    put("csv/bom.csv", "\ufeffid,text\n1," + GOOD + "\n", "ok", "a UTF-8 BOM")
    put("csv/no-header.csv", "1,hello there\n2,another row\n", "skip", "no header row")
    put("csv/quoted-newlines.csv", 'id,text\n1,"line one\nline two\nline three"\n', "ok",
        "quoted newlines")
    put("csv/wide.csv", ",".join(["id", "text"] + [f"c{i}" for i in range(100_000)]) + "\n" +
        ",".join(["1", GOOD] + ["v"] * 100_000) + "\n", "ok", "100,000 columns")
    put("csv/ragged.csv", "id,text,extra\n1," + GOOD + "\n2," + GOOD + ",a,b,c\n", "ok",
        "ragged rows")
    put("csv/nul.csv", "id,text\n1,has\x00nul\n2," + GOOD + "\n", "skip",
        "a NUL inside a row (binary content)")
    put("csv/huge-field.csv", "id,text\n1," + "y" * 200_000 + "\n", "ok",
        "a 200 KB field (over csv's default limit)")
    # tabular ids that collide across files
    put("ids/export1.csv", "id,text\n1,first export row one\n2,first export row two\n", "ok",
        "ids 1..N")
    put("ids/export2.csv", "id,text\n1,second export row one\n2,second export row two\n", "ok",
        "the same ids 1..N in another file")
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1]) / "corpus"
    for rel, kind, note in build(out):
        print(f"{kind:8} {rel!r:60} {note}")
