"""PDF files as Documents: PDFium (through pypdfium2) reads each page's characters with their
boxes and fonts, the outline (bookmarks) and the page labels; ``layout`` puts the characters
in reading order, ``ocr`` reads pages that have no text layer, ``blocks`` and ``clean`` make
clean text with its structure, and ``pagemap`` keeps each character's page and box.

PDFium was chosen over pdfminer.six (pdfplumber) and pypdf by measurement: on real manuals
it is the fastest of the three and gives per-character boxes and fonts
(``eval/bench_pdf.py``, ``eval/RESULTS.md``).

Example: ``doc, warnings = load_pdf(Path("manual.pdf").read_bytes(), "manual.pdf")``.
"""
from __future__ import annotations

import ctypes
import re
import threading

from .errors import LoadError
from .layout import Font, Glyphs, page_lines
from .types import Document

# font names that mean monospace (TeX's cmtt/sftt/lmmono, Courier, the *Mono families) and
# bold (TeX's cmbx/cmb, *-Bold, Black, Heavy, Semibold)
_MONO = re.compile(r"mono|courier|typewriter|consol|menlo|monaco|inconsolata|(^|[+])"
                   r"(cm|sf|ec|lm|t1x?|rm)?i?tt\d|lmtt|txtt|pcrr|nimbusmono|fixed", re.I)
_BOLD = re.compile(r"bold|black|heavy|semibd|demi|(^|[+])(cm|sf|ec|lm)?(bx|b)\d", re.I)
MIN_TEXT_CHARS = 8  # a page with fewer visible characters has no text layer (a scan?)
SIDEWAYS_SAID = 50  # characters turned on a page that are read (a quarter turn: a turned
# table) or, at another angle, left out and named in a warning; fewer are a margin stamp, an
# arXiv id, a diagonal "DRAFT", left out quietly
PDFIUM = threading.RLock()  # PDFium is not thread-safe: one caller in a process at a time


MAX_STREAM = 64 * 2**20  # a compressed stream (not an image) may inflate to this much
MAX_STREAMS = 1024 * 2**20  # and all of them together to this much
_STREAM = re.compile(rb"stream\r?\n")


def check_inflation(data: bytes) -> None:
    """LoadError when the PDF's compressed streams (images aside) inflate past the limits: a
    compression bomb would make PDFium build millions of objects in memory, out of reach of
    any timer. Zlib stops at each stream's end, so this reads each stream once, in C."""
    import zlib

    total = 0
    for m in _STREAM.finditer(data):
        head = data[max(0, m.start() - 2048):m.start()]
        head = head[head.rfind(b"obj") + 3:] if b"obj" in head else head
        if b"/FlateDecode" not in head and b"/Fl " not in head and b"/Fl/" not in head \
                or b"/Image" in head:
            continue
        inflater, view = zlib.decompressobj(), memoryview(data)[m.end():]
        size = pos = 0
        try:
            while not inflater.eof:
                chunk = inflater.unconsumed_tail or view[pos:pos + 65536]
                if not inflater.unconsumed_tail:
                    pos += 65536
                if not chunk:
                    break
                size += len(inflater.decompress(chunk, MAX_STREAM + 1 - size))
                if size > MAX_STREAM or total + size > MAX_STREAMS:
                    raise LoadError(f"a stream inflates to more than {MAX_STREAM // 2**20} MB "
                                    "(a compression bomb?); not read")
        except zlib.error:
            pass  # (encrypted, or damaged: PDFium judges it)
        total += size


def draw_page(data: bytes, page: int, max_pixels: int) -> bytes:
    """PNG bytes of page ``page`` (from 1) of a PDF, its longer side at most ``max_pixels``;
    LoadError for a PDF that cannot be read, IndexError for a page it does not have. (A
    hostile page can take minutes to draw: `rag serve` draws in a parse worker, under its
    time and memory limits: ``ParsePool.draw``.)"""
    import io

    with PDFIUM:
        pdf = open_pdf(data)
        try:
            if not 1 <= page <= len(pdf):
                raise IndexError(page)
            p = pdf[page - 1]
            w, h = p.get_size()
            image = p.render(scale=min(2.0, max_pixels / max(w, h, 1))).to_pil()
            p.close()
        finally:
            pdf.close()
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def open_pdf(data: bytes):
    """A pypdfium2 document, or LoadError saying why the bytes are not a readable PDF."""
    import pypdfium2 as pdfium

    check_inflation(data)
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as err:
        if "password" in str(err).lower():
            raise LoadError("encrypted PDF; decrypt it first (e.g. qpdf --decrypt)") from None
        why = re.search(r"\(PDFium: ([^)]*)\)", str(err))
        raise LoadError(f"unreadable PDF ({why.group(1) if why else err})") from None


def page_glyphs(page) -> Glyphs:
    """The characters of a pypdfium2 page, in content order, with boxes in points from the
    top-left of the page's crop box. Text turned a quarter round (a turned table) goes to
    ``turned``, upright in its own frame, where there is enough of it to be more than a
    margin stamp; other rotated text (a stamp, a diagonal "DRAFT") is left out."""
    import pypdfium2.raw as raw

    left, bottom, right, top = page.get_cropbox()
    rotation = page.get_rotation() % 360
    to_display = _display(rotation, left, bottom, right, top)
    w, h = right - left, top - bottom
    g = Glyphs(width=h if rotation in (90, 270) else w, height=w if rotation in (90, 270) else h)
    textpage = page.get_textpage()
    tp = textpage.raw
    n = raw.FPDFText_CountChars(tp)
    rect = raw.FS_RECTF()
    text_object = _text_object_fn()
    tp_addr = ctypes.cast(tp, ctypes.c_void_p).value
    objects: dict[int, tuple[int, float, float]] = {}
    font_index: dict[tuple, int] = {}
    space, rotated = False, []
    quarter: dict[int, list] = {90: [], 270: []}  # text turned a quarter round, by angle
    get_unicode, get_box = raw.FPDFText_GetUnicode, raw.FPDFText_GetLooseCharBox
    low = None  # (the second half of a character past U+FFFF, read with the first)
    for i in range(n):
        code = get_unicode(tp, i)
        if i == low:
            continue
        obj = text_object(tp_addr, i)
        if code == 0x02 and obj:  # PDFium's mark for a hyphen at a line end
            code = 0x2D
        elif 0xD800 <= code < 0xDC00 and i + 1 < n:  # PDFium gives UTF-16: a math italic
            # letter (U+1D44E) comes as two halves, each of them "\ufffd" alone
            second = get_unicode(tp, i + 1)
            if 0xDC00 <= second < 0xE000:
                code, low = 0x10000 + ((code - 0xD800) << 10) + (second - 0xDC00), i + 1
        if not obj or code in (0x20, 0xA0, 0x0D, 0x0A, 0x09, 0xFFFE, 0xFFFF) or code < 0x20:
            space = True  # (PDFium's generated spaces and line breaks, drawn spaces)
            continue
        info = objects.get(obj)
        if info is None:
            info = objects[obj] = _object_info(obj, font_index, g.fonts, rotation)
        get_box(tp, i, rect)
        x0, x1, y0, y1 = to_display(rect.left, rect.right, rect.bottom, rect.top)
        args = (_char(code), x0, x1, y0, y1, info[1], info[0], space)
        space = False
        angle = info[2]
        if angle:  # rotated text: read in its own frame, or kept only if the page has no other
            turn = 90 if 84 < angle < 96 else 270 if 264 < angle < 276 else 0
            (quarter[turn] if turn else rotated).append(args)
            continue
        g.add(*args)
    textpage.close()
    stamps = []  # (quarter-turned text too little for a table: margin stamps, left out quietly)
    for turn, chars in quarter.items():
        if len(chars) >= SIDEWAYS_SAID:
            g.turned.append((turn, _turned(g, turn, chars)))
        else:
            stamps.extend(chars)
    if len(g) < MIN_TEXT_CHARS and len(rotated) + len(stamps) > len(g) and not g.turned:
        for args in rotated + stamps:
            g.add(*args)
    else:
        g.sideways = len(rotated)
    return g


def _turned(g: Glyphs, turn: int, chars: list) -> Glyphs:
    """Characters set at ``turn`` degrees (90: running up the page, 270: down) as a page of
    upright text in their own frame: the page turned until they read left to right
    (``Line.turn`` maps their boxes back)."""
    w, h = g.width, g.height
    out = Glyphs(width=h, height=w, fonts=g.fonts)
    for text, x0, x1, top, bottom, size, font, space in chars:
        if turn == 90:  # x' = h - y, y' = x
            out.add(text, h - bottom, h - top, x0, x1, size, font, space)
        else:  # x' = y, y' = w - x
            out.add(text, top, bottom, w - x1, w - x0, size, font, space)
    return out


def turned_lines(g: Glyphs, lines: list, page: int) -> list:
    """The lines of a page's turned text (``Glyphs.turned``), after its upright ``lines``, in
    flows of their own, each with the turn that maps its boxes back to the page."""
    out = []
    flow = max((ln.flow for ln in lines), default=0)
    for turn, sub in g.turned:
        for ln in page_lines(sub, page):
            ln.flow += flow
            ln.turn = (turn, g.width, g.height)
            out.append(ln)
        flow = max((ln.flow for ln in out), default=flow)
    return out


def _char(code: int) -> str:
    """A character as text: ligatures and math letters as their letters, a soft hyphen as a
    hyphen."""
    ch = chr(code) if code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"
    if "\ufb00" <= ch <= "\ufb06" or "\U0001d400" <= ch <= "\U0001d7ff":  # (math italic
        # and bold letters and digits as the letters and digits they are: 𝑡𝑥 is tx)
        import unicodedata

        return unicodedata.normalize("NFKC", ch)
    if ch in "\u00ad\u2010\u2011\x02":  # soft, Unicode and non-breaking hyphens
        return "-"
    return ch


def _display(rotation: int, left: float, bottom: float, right: float, top: float):
    """A function from a box in PDF page space (x0, x1, y0, y1, y upwards) to the box as
    the page is displayed (x0, x1, top, bottom from its top-left), for /Rotate 0-270."""
    w, h = right - left, top - bottom

    def transform(x0, x1, y0, y1):
        u0, u1, v0, v1 = x0 - left, x1 - left, top - y1, top - y0  # unrotated, y down
        if rotation == 90:
            return h - v1, h - v0, u0, u1
        if rotation == 180:
            return w - u1, w - u0, h - v1, h - v0
        if rotation == 270:
            return v0, v1, w - u1, w - u0
        return u0, u1, v0, v1
    return transform


def _object_info(obj: int, font_index: dict, fonts: list,
                 rotation: int = 0) -> tuple[int, float, float]:
    """(font index, font size in points, its angle as displayed in degrees counter-clockwise,
    0 when upright within 6 degrees) of a text object."""
    import math

    import pypdfium2.raw as raw

    handle = ctypes.cast(obj, raw.FPDF_PAGEOBJECT)
    m = raw.FS_MATRIX()
    angle, scale = 0.0, 1.0
    if raw.FPDFPageObj_GetMatrix(handle, m) and (m.a or m.b):
        angle = (math.degrees(math.atan2(m.b, m.a)) - rotation) % 360
        angle = angle if 6 < angle < 354 else 0.0
        # (the size is the font's, before the text's matrix: Distiller and Quartz set text
        # at 1 pt and scale it up, so every small gap looked like a space, or a table cell)
        scale = math.hypot(m.c, m.d) or 1.0
    size = ctypes.c_float(0)
    raw.FPDFTextObj_GetFontSize(handle, ctypes.byref(size))
    font = raw.FPDFTextObj_GetFont(handle)
    name, flags, weight = "", 0, 400
    if font:
        buf = ctypes.create_string_buffer(256)
        raw.FPDFFont_GetBaseFontName(font, buf, 256)
        name = buf.value.decode("latin-1", "replace")
        flags = raw.FPDFFont_GetFlags(font)
        weight = raw.FPDFFont_GetWeight(font)
    key = (name, flags, weight)
    if key not in font_index:
        base = name.split("+", 1)[-1]
        fonts.append(Font(name=base, mono=bool(flags & 1) or bool(_MONO.search(base)),
                          bold=weight >= 600 or bool(flags & 0x40000)
                          or bool(_BOLD.search(base))))
        font_index[key] = len(fonts) - 1
    return font_index[key], float(size.value) * scale or 10.0, angle


_TEXT_OBJECT = None


def _text_object_fn():
    """FPDFText_GetTextObject returning the object's address as an int (a plain pointer
    compare is what the per-character loop needs, and ctypes pointers are slow to key on)."""
    global _TEXT_OBJECT
    if _TEXT_OBJECT is None:
        import pypdfium2.raw as raw

        proto = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
        _TEXT_OBJECT = proto(ctypes.cast(raw.FPDFText_GetTextObject, ctypes.c_void_p).value)
    return _TEXT_OBJECT


# a page label longer than this is none ("iv", "A-3", "Appendix 2-17" are short; a 100 KB
# /PageLabels prefix made every page's label 100 KB, shown with every citation); a bookmark
# title is cut at ten times it
MAX_LABEL = 40


def outline(pdf) -> list[tuple[int, str, int, float | None]]:
    """(level from 1, title, page index, y from the page top or None) of each bookmark."""
    out = []
    try:
        for item in pdf.get_toc(max_depth=8):
            dest = item.get_dest()
            if dest is None:
                continue
            index = dest.get_index()
            if index is None or index < 0:
                continue
            y = None
            mode, view = dest.get_view()
            if mode == 1 and len(view) >= 2 and view[1]:  # XYZ: left, top, zoom
                page_top = pdf.get_page_size(index)[1]
                y = page_top - float(view[1])
            title = " ".join((item.get_title() or "").split())[:MAX_LABEL * 10]
            if title:
                out.append((item.level + 1, title, index, y))
    except Exception:  # a broken outline never blocks the text
        return out
    return out


def page_labels(pdf) -> list[str]:
    """The label the viewer shows for each page ("iv", "17", "A-3"); the 1-based number
    where the PDF has none."""
    labels = []
    for i in range(len(pdf)):
        try:
            label = pdf.get_page_label(i)
        except Exception:
            label = ""
        label = " ".join((label or "").split())
        labels.append(label if 0 < len(label) <= MAX_LABEL else str(i + 1))
    return labels


def load_pdf(data: bytes, rel: str) -> tuple[Document, list[str]]:
    """A PDF as one Document with clean text, sections, page starts, page labels, the
    table-of-contents and index ranges, and each page's line boxes; plus warnings."""
    with PDFIUM:
        return _load_pdf(data, rel)


def _load_pdf(data: bytes, rel: str) -> tuple[Document, list[str]]:
    from . import ocr
    from .blocks import assemble

    pdf = open_pdf(data)
    try:
        pages, scanned, warnings, sideways, unread = [], [], [], [], []
        labels = page_labels(pdf)
        ocr_missing = None
        for i in range(len(pdf)):
            page = pdf[i]
            glyphs = page_glyphs(page)
            text_chars = len(glyphs) + sum(len(sub) for _, sub in glyphs.turned)
            if text_chars < MIN_TEXT_CHARS and _mostly_image(page):  # (a scan's text layer
                # may be turned: a landscape page scanned upright)
                if len(scanned) >= ocr.MAX_PAGES:
                    unread.append(i + 1)
                scanned.append(i + 1)
                if ocr_missing is None and not unread:
                    if ocr.on_page:
                        ocr.on_page()
                    try:
                        glyphs = ocr.ocr_page(page)
                    except ocr.OcrUnavailable as err:
                        ocr_missing = str(err)
            if glyphs.sideways >= SIDEWAYS_SAID:
                sideways.append(i + 1)
            lines = page_lines(glyphs, i + 1)
            pages.append((glyphs, lines + turned_lines(glyphs, lines, i + 1)))
            page.close()
        doc = assemble(rel, pages, labels, outline(pdf), _title(pdf))
    finally:
        pdf.close()
    if ocr_missing:
        if not doc.text.strip():
            raise LoadError(f"PDF has no text layer (a scan?) and {ocr_missing}")
        warnings.append(f"{_pages(scanned)} no text layer (scanned?), left out: "
                        f"{ocr_missing}")
    elif not doc.text.strip():
        raise LoadError("PDF has no extractable text, and OCR found none")
    if sideways:  # (text at an angle other than a quarter turn: said, not silent)
        warnings.append(f"{'page' if len(sideways) == 1 else 'pages'} {_ranges(sideways)}: "
                        "text set at an angle (a figure?) was left out")
    if unread and not ocr_missing:
        warnings.append(f"{_pages(unread)} no text layer (scanned?), left out: OCR "
                        f"reads at most {ocr.MAX_PAGES} pages of a file")
        scanned = scanned[:ocr.MAX_PAGES]
    if scanned and not ocr_missing:
        doc.metadata["ocr_pages"] = _ranges(scanned)
    return doc, warnings


def _mostly_image(page) -> bool:
    """Whether images cover a quarter of the page or more (a scan, not a blank page)."""
    import pypdfium2.raw as raw

    w, h = page.get_size()
    area = 0.0
    try:
        for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=2):
            left, bottom, right, top = obj.get_pos()
            area += max(0.0, right - left) * max(0.0, top - bottom)
    except Exception:  # (an unreadable object: treat the page as a scan)
        return True
    return area >= 0.25 * w * h


def _title(pdf) -> str:
    try:
        return (pdf.get_metadata_value("Title") or "").strip()
    except Exception:  # broken metadata never blocks the text
        return ""


def _pages(numbers: list[int]) -> str:
    """'page 3 has' or 'pages 1-3, 7 have'."""
    return f"page {numbers[0]} has" if len(numbers) == 1 else f"pages {_ranges(numbers)} have"


def _ranges(numbers: list[int]) -> str:
    """'1-3, 7' for [1, 2, 3, 7]."""
    out, start = [], None
    for k, n in enumerate(numbers):
        if start is None:
            start = n
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ", ".join(out)
