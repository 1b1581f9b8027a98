"""Small PDFs with the layouts real manuals have, drawn with reportlab line by line so each
test knows exactly what is on the page: running headers and page numbers, words hyphenated
and identifiers broken at line ends, a footnote, a list, code, a table, two columns, an
outline and page labels; and scans of such pages (rendered to an image, no text layer).
"""
from __future__ import annotations

import io
import os

BODY, LEFT, RIGHT, TOP = 11, 72, 540, 720  # font size and margins (points)
LEAD = 14  # baseline to baseline


def _vera(c) -> str:
    """reportlab's bundled Bitstream Vera (it has the fi ligature glyph)."""
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "Vera" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("Vera", os.path.join(
            os.path.dirname(reportlab.__file__), "fonts", "Vera.ttf")))
    return "Vera"


class _Page:
    def __init__(self, c, header: str | None, number: str | None):
        self.c, self.y = c, TOP
        if header:
            c.setFont("Helvetica-Oblique", 9)
            c.drawString(LEFT, 752, header)
            c.drawRightString(RIGHT, 752, number or "")
        if number:
            c.setFont("Helvetica", 9)
            c.drawCentredString((LEFT + RIGHT) / 2, 40, number)

    def line(self, text: str, font: str = "Helvetica", size: float = BODY, x: float = LEFT,
             gap: float = 0) -> None:
        self.y -= gap
        self.c.setFont(font, size)
        self.c.drawString(x, self.y, text)
        self.y -= LEAD if size <= BODY else size * 1.5

    def heading(self, text: str) -> None:
        self.y -= 8
        self.line(text, "Helvetica-Bold", 16)

    def cells(self, texts: list[str], xs: list[float], font: str = "Helvetica") -> None:
        self.c.setFont(font, BODY)
        for t, x in zip(texts, xs):
            self.c.drawString(x, self.y, t)
        self.y -= LEAD


def manual() -> bytes:
    """A four-page manual: a title page with contents (label "i"), then pages "1"-"3" with
    a running header and page numbers; bookmarks for its three chapters."""
    from reportlab.lib.pagesizes import letter
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=letter)
    c.setTitle("Pump Manual")
    p = _Page(c, None, None)
    p.line("Pump Manual", "Helvetica-Bold", 28)
    p.line("Contents", "Helvetica-Bold", 14, gap=20)
    for entry, page in (("1 Installing", 1), ("2 Operating", 2), ("2.1 Modes", 2),
                        ("2.2 Filters", 2), ("3 Reference", 3), ("3.1 Columns", 3)):
        c.setFont("Helvetica", BODY)
        c.drawString(LEFT, p.y, entry + " " + ". " * 30)
        c.drawRightString(RIGHT, p.y, str(page))
        p.y -= LEAD
    c.showPage()

    p = _Page(c, "Pump Manual: Installing", "1")
    c.bookmarkPage("ch1", fit="XYZ", top=TOP + 20)
    c.addOutlineEntry("1 Installing", "ch1", level=0)
    p.heading("1 Installing")
    p.line("Before you start, clone the source code of the pump controller from its reposi-")
    p.line("tory and set the variable SOME_")
    p.line("VARIABLE to the name of your pump. The repository holds the firmware.")
    c.setFont("Helvetica", BODY)
    c.drawString(LEFT, p.y, "Open the valve")
    w = c.stringWidth("Open the valve", "Helvetica", BODY)
    c.setFont("Helvetica", 7)
    c.drawString(LEFT + w + 0.5, p.y + 4, "1")
    c.setFont("Helvetica", BODY)
    c.drawString(LEFT + w + 5, p.y, " before the first start, then close it again.")
    p.y -= LEAD
    p.line("\u2022 Unpack the pump.", gap=6)
    p.line("\u2022 Connect the hose to the inlet.")
    p.line("Start the pump with this command:", gap=6)
    p.line("pump --start \\", "Courier", x=LEFT + 20, gap=4)
    p.line("    --rate 5", "Courier", x=LEFT + 20)
    p.line("    --quiet", "Courier", x=LEFT + 20)
    p.line("The pump then fills the tank; when the tank is full the controller stops the", gap=6)
    p.line("motor and the pump waits for the next cycle, which begins when the level falls")
    c.setFont("Helvetica", 8)
    c.drawString(LEFT, 90, "1 The valve is the red lever on the left side.")
    c.showPage()

    p = _Page(c, "Pump Manual: Operating", "2")
    p.line("below the lower mark set in the configuration file.")
    c.bookmarkPage("ch2", fit="XYZ", top=p.y + 20)
    c.addOutlineEntry("2 Operating", "ch2", level=0)
    p.heading("2 Operating")
    c.bookmarkPage("modes", fit="XYZ", top=p.y + 16)
    c.addOutlineEntry("2.1 Modes", "modes", level=1)
    p.line("2.1 Modes", "Helvetica-Bold", 13)
    p.line("The pump has two modes. The quiet mode is a well-known choice for homes, and the")
    p.line("table lists the rate and noise of each well-")
    p.line("known mode.")
    xs = [LEFT, LEFT + 120, LEFT + 240]
    p.y -= 6
    p.cells(["Mode", "Rate", "Noise"], xs, "Helvetica-Bold")
    p.cells(["Eco", "5 l/min", "low"], xs)
    p.cells(["Boost", "9 l/min", "high"], xs)
    c.bookmarkPage("filters", fit="XYZ", top=p.y + 16)
    c.addOutlineEntry("2.2 Filters", "filters", level=1)
    p.line("2.2 Filters", "Helvetica-Bold", 13, gap=6)
    p.line("Clean the \ufb01lter every month.", _vera(c))
    c.showPage()

    p = _Page(c, "Pump Manual: Reference", "3")
    c.bookmarkPage("ch3", fit="XYZ", top=TOP + 20)
    c.addOutlineEntry("3 Reference", "ch3", level=0)
    p.heading("3 Reference")
    c.bookmarkPage("cols", fit="XYZ", top=p.y + 16)
    c.addOutlineEntry("3.1 Columns", "cols", level=1)
    p.line("3.1 Columns", "Helvetica-Bold", 13)
    left = ["The left column starts the reference and", "explains the alarms of the pump in",
            "order: the first alarm means low water,", "the second alarm means high pressure,",
            "and the third alarm means a blocked pipe."]
    right = ["The right column goes on with the repair", "steps: drain the tank, open the cover,",
             "clear the pipe, close the cover again,", "and refill the tank before the restart.",
             "Call the service line if this fails."]
    c.setFont("Helvetica", 10)
    for k, (a, b) in enumerate(zip(left, right)):
        c.drawString(LEFT, p.y - k * LEAD, a)
        c.drawString(320, p.y - k * LEAD, b)
    c.showPage()

    c.addPageLabel(0, style="ROMAN_LOWER")  # i
    c.addPageLabel(1, style="ARABIC", start=1)  # 1, 2, 3
    c.showOutline()
    c.save()
    return buf.getvalue()


def scanned(data: bytes, pages: list[int], dpi: int = 200, keep_text: list[int] = ()) -> bytes:
    """A PDF of ``data``'s pages (0-based) as images only, as a scanner makes them; the
    pages in ``keep_text`` are copied with their text layer instead (a mixed PDF)."""
    import pypdfium2 as pdfium
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    src = pdfium.PdfDocument(data)
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    for i in pages:
        w, h = src[i].get_size()
        c.setPageSize((w, h))
        image = src[i].render(scale=dpi / 72).to_pil().convert("L")
        if i in keep_text:
            c.setFont("Helvetica", BODY)
            c.drawString(LEFT, TOP, "This page has a text layer of its own.")
        else:
            c.drawImage(ImageReader(image), 0, 0, width=w, height=h)
        c.showPage()
    c.save()
    return buf.getvalue()
