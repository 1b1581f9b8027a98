"""Compressed inputs judged on what they declare and on what actually comes out
(knowledge/archives.py): honest files pass, bombs are refused, and lying about the size
does not help."""
import gzip
import io
import struct
import zipfile

import pytest

from hostile_corpus import _docx
from hostile_uploads import docx_bomb, gzip_of, newlines_gz_bomb
from knowledge.archives import ArchiveError, check_zip, gunzip


def test_honest_gzip_passes_whole_with_several_members():
    rows = b'{"id": 1, "text": "hello"}\n' * 1000
    assert gunzip(gzip.compress(rows)) == rows
    assert gunzip(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"


@pytest.mark.parametrize("data,words", [
    (gzip.compress(b"x" * 100)[:20], "ends before its end marker"),
    (b"\x1f\x8b\x08\x00garbage-garbage-garbage", "not a valid gzip file"),
    (gzip.compress(b"x") + b"trailing", "not a valid gzip file"),
])
def test_broken_gzip_is_refused(data, words):
    with pytest.raises(ArchiveError, match=words):
        gunzip(data)


def test_a_gzip_bomb_is_refused_on_its_declared_size_and_on_what_comes_out():
    bomb = newlines_gz_bomb(100)
    with pytest.raises(ArchiveError, match="declares it inflates more than 100x"):
        gunzip(bomb)
    lying = bomb[:-4] + struct.pack("<I", 1000)  # the trailer says 1,000 bytes
    with pytest.raises(ArchiveError, match="^the gzip file inflates more than 100x"):
        gunzip(lying)
    big = gzip_of(bytes(range(256)) * 64, 40 << 20)  # 40 MB, not a bomb by ratio
    with pytest.raises(ArchiveError, match="inflates to more than 8 MB"):
        gunzip(big[:-4] + struct.pack("<I", 10), limit=8 << 20)


def test_a_docx_passes_and_a_docx_bomb_is_refused_before_inflating():
    check_zip(_docx(["A paragraph about pumps."] * 200))
    with pytest.raises(ArchiveError, match="'word/document.xml' declares it inflates to more"):
        check_zip(docx_bomb(300))


def test_a_docx_of_a_blank_form_is_no_bomb():
    """A blank 1,500-row table is a 1.1 MB document.xml that compresses over 100x: a real
    Word file, refused as a bomb before."""
    row = b"<w:tr>" + b"<w:tc><w:p/></w:tc>" * 8 + b"</w:tr>"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<w:tbl>" + row * 1500 * 10 + b"</w:tbl>")
    data = buf.getvalue()
    assert len(data) * 100 < 165 * 15000 and 165 * 15000 > 2**21  # (over 100x, over 2 MB)
    check_zip(data)


def test_a_zip_that_lies_about_its_sizes_is_refused_while_it_inflates():
    """The central directory and the local header both say 1,000 bytes; the member holds
    50 MB of zeros: reading stops at the declared size and the archive is refused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (50 << 20))
    data = bytearray(buf.getvalue())
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    with pytest.raises(ArchiveError, match="damaged or unsupported part 'word/document.xml'"):
        check_zip(bytes(data))


def test_not_a_zip_is_refused():
    with pytest.raises(ArchiveError, match="not a valid ZIP container"):
        check_zip(b"PK\x03\x04 this is not a zip")
