"""Pages without a text layer (scans) read with Tesseract through pytesseract: the page is
rendered at 300 dpi, Tesseract finds its words and their boxes, and each word's letters
become characters in a ``Glyphs`` (spread over the word's box, on its line's band), so the
same layout code reads them and every word keeps its place on the page.

Languages: ``$RAG_OCR_LANG`` (Tesseract's codes, e.g. ``eng+deu``; default ``eng``), each
installed as a Debian package ``tesseract-ocr-<code>``; ``$TESSERACT_CMD`` names the program
(default ``tesseract``).

Example: ``glyphs = ocr_page(pdf[0])``.
"""
from __future__ import annotations

import os
import shutil

from .layout import Font, Glyphs

DPI = 300
PAGE_SECONDS = 120  # Tesseract's time for one page
MAX_PAGES = 2000  # pages of one file read by OCR; the rest are left out, with a warning
# called before each page is read by OCR (a parse worker tells its pool: each page earns the
# file more time, so a long scan is read whole and a file of no scanned pages gains none)
on_page = None
INSTALL = "install it with `apt-get install tesseract-ocr` (macOS: `brew install tesseract`)"
LANG_ENV = "RAG_OCR_LANG"
# words Tesseract is less sure of are left out: on real pages they are the letters it
# "reads" in figures and rules ("hhahhh"), not words of the text
MIN_CONFIDENCE = 30


class OcrUnavailable(Exception):
    """Tesseract (or pytesseract, or a language asked for) is not installed; says how."""


def unavailable() -> str | None:
    """Why pages cannot be OCR'd here (with the command that fixes it), or None."""
    import importlib.util

    if importlib.util.find_spec("pytesseract") is None:
        return "pytesseract is not installed; `pip install pytesseract`"
    if shutil.which(os.environ.get("TESSERACT_CMD", "tesseract")) is None:
        return f"Tesseract is not installed; {INSTALL}"
    missing = [code for code in languages().split("+") if code not in _installed()]
    if missing:
        return (f"the Tesseract language data {', '.join(missing)} is not installed; "
                f"`apt-get install {' '.join('tesseract-ocr-' + m.replace('_', '-').lower() for m in missing)}`")
    return None


def languages() -> str:
    return os.environ.get(LANG_ENV, "").strip() or "eng"


_LANGS: set | None = None


def _installed() -> set:
    global _LANGS
    if _LANGS is None:
        import pytesseract

        try:
            _LANGS = set(pytesseract.get_languages(config=""))
        except Exception:  # (an old Tesseract without --list-langs): let it try
            _LANGS = set(languages().split("+"))
    return _LANGS


def ocr_page(page, dpi: int = DPI) -> Glyphs:
    """The words Tesseract reads on a pypdfium2 page, as Glyphs in points from the top-left
    of the page as displayed. Raises OcrUnavailable when Tesseract cannot run here."""
    reason = unavailable()
    if reason:
        raise OcrUnavailable(reason)
    import pytesseract

    runner = pytesseract.pytesseract
    runner.tesseract_cmd = os.environ.get("TESSERACT_CMD", "tesseract")
    # Tesseract asks OpenMP for up to 10 threads whatever OMP_NUM_THREADS says; only the
    # thread limit holds it: on 2 cores a page took 10.6 s with them and 1.4 s with one (the
    # parse workers, which set it for themselves, read several pages at once anyway). Given
    # to Tesseract's process only (pytesseract starts it with its module's ``environ``): set
    # in this process's environment, it reached every program started after, and a `rag
    # serve` started by the tests after an OCR test ran its reader on one thread, too slowly.
    if hasattr(runner, "environ"):
        runner.environ = {**os.environ,
                          "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    scale = dpi / 72
    image = page.render(scale=scale, grayscale=True).to_pil()
    width, height = image.size[0] / scale, image.size[1] / scale
    try:
        data = pytesseract.image_to_data(image, lang=languages(), timeout=PAGE_SECONDS,
                                         config=f"--dpi {dpi}",
                                         output_type=pytesseract.Output.DICT)
    except RuntimeError:  # (pytesseract's timeout)
        return Glyphs(width=width, height=height)
    return words_to_glyphs(data, scale, width, height)


def words_to_glyphs(data: dict, scale: float, width: float, height: float) -> Glyphs:
    """Tesseract's word table (``image_to_data`` as a dict) as Glyphs: a line's words share
    the line's band, each letter a slice of its word's box."""
    g = Glyphs(width=width, height=height, fonts=[Font("ocr", False, False)])
    lines: dict[tuple, list[int]] = {}
    for i, text in enumerate(data["text"]):
        if text and text.strip() and float(data["conf"][i]) >= MIN_CONFIDENCE:
            key = (data["page_num"][i], data["block_num"][i], data["par_num"][i],
                   data["line_num"][i])
            lines.setdefault(key, []).append(i)
    for words in lines.values():
        top = min(data["top"][i] for i in words) / scale
        bottom = max(data["top"][i] + data["height"][i] for i in words) / scale
        size = max((bottom - top) / 1.15, 1.0)
        for n, i in enumerate(words):
            text = data["text"][i].strip()
            x0 = data["left"][i] / scale
            w = data["width"][i] / scale / len(text)
            for j, ch in enumerate(text):
                g.add(ch, x0 + j * w, x0 + (j + 1) * w, top, bottom, size, 0, j == 0 and n > 0)
    return g
