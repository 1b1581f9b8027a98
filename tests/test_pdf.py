"""PDFs as people have them (golden texts of small PDFs drawn line by line in pdfdocs.py):
running headers, hyphenation, footnotes, code, tables, lists, two columns, the outline,
page labels, character boxes; scans read by the real Tesseract; the knowledge base keeps
page labels and chunk kinds, and retrieval reads tables of contents last."""
import io
import shutil
from contextlib import closing
import sqlite3

import pytest

from conftest import kind_at, write_corpus
from knowledge import ChunkerSettings, KnowledgeBase, store, sync
from knowledge.errors import LoadError
from knowledge.pagemap import boxes, decode
from knowledge.pdf import load_pdf
from pdfdocs import manual, scanned

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="tesseract is not installed (sh tests/install_programs.sh installs it)")


def _canvas():
    """A US-letter reportlab canvas to draw a test's PDF on; ``c.getpdfdata()`` ends it and
    gives the PDF."""
    from reportlab.pdfgen import canvas

    return canvas.Canvas(io.BytesIO(), pagesize=(612, 792))


@pytest.fixture(scope="module")
def doc():
    return load_pdf(manual(), "manual.pdf")[0]


def test_running_headers_and_page_numbers_are_left_out(doc):
    assert "Pump Manual:" not in doc.text  # the running header of every body page
    assert not [ln for ln in doc.text.split("\n") if ln.strip().isdigit()]
    body = doc.text[doc.page_starts[1]:]
    assert body.startswith("1 Installing\n")  # (a heading that starts with the page number)


def test_a_paragraph_runs_on_over_the_page_and_its_footnote_follows_it(doc):
    t = doc.text
    assert "waits for the next cycle, which begins when the level falls below the lower mark" in t
    assert "Open the valve[1] before the first start" in t
    assert t.index("[1] The valve is the red lever") > t.index("set in the configuration file.")


def test_footnotes_whose_mark_is_glued_to_their_first_word_are_footnotes():
    """dblatex sets a footnote's number against its first word ("11The default ..."): no
    line of its footnote area was taken for a note, so the notes stood between a paragraph
    and its continuation on the next page (maint-guide's how-to answers were cut by them)."""
    c = _canvas()
    c.setFont("Helvetica", 10)
    for k in range(40):
        c.drawString(72, 720 - 13 * k, f"Line {k} of the packaging steps describes the "
                                       f"build{' and then' if k == 39 else '.'}")
    c.setFont("Helvetica", 8)
    c.drawString(72, 80, "11The default package name field length of aptitude is 30.")
    c.drawString(72, 70, "12If you follow the Developer's Reference, the ITP process will catch")
    c.drawString(72, 61, "this kind of issue.")
    c.showPage()
    c.setFont("Helvetica", 10)
    c.drawString(72, 720, "set the variables DEBEMAIL and DEBFULLNAME in your shell.")
    doc = load_pdf(c.getpdfdata(), "notes.pdf")[0]
    assert "describes the build and then set the variables DEBEMAIL" in doc.text
    assert "[11] The default package name field" in doc.text
    assert "[12] If you follow the Developer's Reference, the ITP process will catch this" \
        in doc.text
    assert doc.text.index("[11]") > doc.text.index("DEBFULLNAME")


def test_words_and_identifiers_split_at_line_ends_are_rejoined(doc):
    assert "from its repository and set the variable SOME_VARIABLE to the name" in doc.text
    assert "reposi" not in doc.text.replace("repository", "")
    # a real hyphen at a line end stays: the document writes "well-known" elsewhere
    assert "rate and noise of each well-known mode." in doc.text


def test_a_path_broken_after_its_slash_with_a_hyphen_is_rejoined():
    """DocBook's typesetting breaks a path after a "/" and prints a hyphen there
    (debmake-doc: "debian/-" then "patches/"); "+/-" at a line end is left alone."""
    from knowledge.clean import join
    from knowledge.layout import Line

    line = lambda t: Line(t, list(range(len(t))), 0.0, 300.0, 0.0, 10.0, 10.0)  # noqa: E731
    left, right = "list them in the debian/-", "patches/series file."
    cut, sep = join(line(left), line(right), {})
    assert left[:len(left) - cut] + sep + right == "list them in the debian/patches/series file."
    cut, sep = join(line("the error is +/-"), line("days at most"), {})
    assert (cut, sep) == (0, " ")
    # a URL before its closing bracket, a home directory, a table's next cell (maint-guide)
    for left, right, want in (("(https://tracker.debian.org/-", ") for it", "(https://tracker"
                               ".debian.org/) for it"),
                              ("see http://www.netfort.gr.jp/-", "~dancer/column/ too",
                               "see http://www.netfort.gr.jp/~dancer/column/ too"),
                              ("at https://www.debian.org/doc/-", "| 2 |", "at https://www."
                               "debian.org/doc/ | 2 |")):
        cut, sep = join(line(left), line(right), {})
        assert left[:len(left) - cut] + sep + right == want


def test_code_keeps_its_lines_and_indentation(doc):
    assert "Start the pump with this command:\n\npump --start \\\n    --rate 5\n    --quiet\n\n" \
        in doc.text


def test_tables_keep_rows_and_cells_and_lists_their_items(doc):
    assert "| Mode | Rate | Noise |\n| Eco | 5 l/min | low |\n| Boost | 9 l/min | high |" \
        in doc.text
    assert "- Unpack the pump.\n- Connect the hose to the inlet." in doc.text


def test_a_bullet_glyph_with_no_unicode_opens_a_list_item():
    """A font with no Unicode map gives its bullet as a C1 control character (gnuplot's
    manual: U+0088): the line is a list item, written with "- " like any bullet."""
    from knowledge.blocks import _BULLET, _GLYPH_BULLET, _kind
    from knowledge.layout import Line

    text = "\x88 All evaluation of expressions uses 64-bit integers"
    line = Line(text, list(range(len(text))), 0.0, 300.0, 0.0, 10.0, 10.0)
    assert _kind(line, {}) == "item"
    assert _BULLET.match(text).group(1) in _GLYPH_BULLET
    prose = "Evaluation uses 64-bit integers"
    assert _kind(Line(prose, list(range(len(prose))), 0.0, 300.0, 0.0, 10.0, 10.0), {}) == "text"


def test_a_run_in_heading_is_a_heading_and_its_text_a_paragraph():
    """LaTeX's run-in heading (its title, a wide space, the section's first line) is read as
    one line of two cells; the bookmark's title in the first cell makes it a heading line and
    a line of text, not a table row."""
    from knowledge.layout import Line
    from knowledge.structure import outline_headings, split_run_in

    text = "Png    If gnuplot was configured to use the libgd library, it reads"
    c = text.index("If")
    run_in = Line(text, [float(i) for i in range(len(text))], 0.0, 400.0, 100.0, 110.0, 10.0,
                  cells=[(0, 3), (c, len(text))], page=4)
    after = Line("images too.", [float(i) for i in range(11)], 0.0, 60.0, 112.0, 122.0, 10.0,
                 cells=[(0, 11)], page=4)
    table = Line("Eco    5 l/min", [float(i) for i in range(14)], 0.0, 90.0, 130.0, 140.0,
                 10.0, cells=[(0, 3), (7, 14)], page=4)
    pages = [[run_in, after, table]]
    split_run_in(pages, [(5, "Png", 0, None)])  # (no position on the page: left alone)
    assert pages == [[run_in, after, table]]
    outline = [(5, "Png", 0, 99.0), (5, "Eco mode", 0, 128.0)]
    split_run_in(pages, outline)
    head, first = pages[0][:2]
    assert (head.text, head.cells) == ("Png", [(0, 3)])
    assert first.text.startswith("If gnuplot") and first.cells == [(0, len(first.text))]
    assert first.xs[0] == float(c) and first.x0 == float(c)
    assert pages[0][3] is table  # a row whose first cell is no bookmark's title stays a row
    [png, _] = outline_headings(pages, outline)
    assert png.lines == [head]


def test_two_columns_are_read_one_after_the_other(doc):
    """The page draws each row of both columns in turn (a content stream out of reading
    order): the text holds the whole left column, then the right one."""
    t = doc.text
    assert ("The left column starts the reference and explains the alarms of the pump in "
            "order: the first alarm means low water, the second alarm means high pressure, and "
            "the third alarm means a blocked pipe.") in t
    assert t.index("blocked pipe.") < t.index("The right column goes on with the repair steps")


def test_ligatures_become_letters(doc):
    assert "Clean the filter every month." in doc.text


def test_sections_come_from_the_outline(doc):
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "1 Installing"), (2 - 1, "2 Operating"), (2, "2.1 Modes"), (2, "2.2 Filters"),
        (1, "3 Reference"), (2, "3.1 Columns")]
    assert doc.heading_at(doc.text.index("Clean the filter")) == "2 Operating > 2.2 Filters"
    assert doc.text[doc.sections[2].start:].startswith("2.1 Modes")


def test_page_labels_and_pages(doc):
    assert [(p.number, p.label) for p in doc.pages] == [(1, "i"), (2, "1"), (3, "2"), (4, "3")]
    assert doc.page_at(doc.text.index("Clean the filter")) == 3
    assert doc.title == "Pump Manual"


def test_a_page_label_of_any_length_is_bounded():
    """A /PageLabels prefix of 10,000 characters made every page's label that long (stored
    with each page, shown with every citation): such a label counts as none."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.constants import PageLabelStyle

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(manual())))
    writer.set_page_label(0, 1, style=PageLabelStyle.DECIMAL, prefix="L" * 10_000)
    writer.set_page_label(2, 3, style=PageLabelStyle.DECIMAL, prefix="A-")
    buf = io.BytesIO()
    writer.write(buf)
    doc = load_pdf(buf.getvalue(), "labels.pdf")[0]
    assert [p.label for p in doc.pages] == ["1", "2", "A-1", "A-2"]


def _turned_table(turn: int, stamp: bool = True) -> tuple[bytes, tuple]:
    """A page of upright prose and a table turned ``turn`` degrees on it (reportlab), and
    where the table's origin was put (translate)."""
    c = _canvas()
    c.drawString(72, 740, "4.2 Torque settings")
    c.drawString(72, 720, "The torque for each bolt is given in Table 7 on the turned page.")
    origin = (200, 150) if turn == 90 else (400, 650)
    c.saveState()
    c.translate(*origin)
    c.rotate(turn)
    if stamp:
        c.drawString(0, 250, "arXiv:2101.00001v1 [cs.CL]")  # (a stamp in the margin)
    c.drawString(0, 0, "Table 7: Torque settings for the frame bolts")
    rows = [("Part", "Bolt", "Torque (Nm)", "Notes")] + [
        (f"Bracket {i}", f"M{8 + i}", f"{40 + 5 * i}", "thread locker" if i % 2 else "dry")
        for i in range(6)]
    for r, row in enumerate(rows):
        for col, cell in enumerate(row):
            c.drawString([0, 110, 180, 270][col], -20 - 14 * r, cell)
    c.restoreState()
    return c.getpdfdata(), origin


@pytest.mark.parametrize("turn", [90, 270])
def test_a_table_turned_on_its_page_is_read_upright(turn):
    """A table turned a quarter round (LaTeX's sidewaystable, either way) is read as a table,
    after the page's upright text (it was left out), and each character's box is where the
    page shows it: the turned frame mapped back (here from reportlab's own geometry)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    data, (tx, ty) = _turned_table(turn)
    doc, warnings = load_pdf(data, "side.pdf")
    assert warnings == []
    assert "| Bracket 3 | M11 | 55 | thread locker |" in doc.text
    assert doc.text.index("Table 7: Torque") > doc.text.index("on the turned page.")
    start = doc.text.index("M11")
    [(x0, top, x1, bottom)] = boxes(decode(doc.pages[0].layout), start, start + 3)
    across, along = -20 - 14 * 4, 110  # the cell's baseline and left end, turned frame
    width = stringWidth("M11", "Helvetica", 12)
    if turn == 90:  # (x, y) -> (tx - y, ty + x) in PDF space, y from the page top shown
        base, lo, hi = tx - across, 792 - (ty + along + width), 792 - (ty + along)
        assert base - 12 < x0 < base < x1 < base + 5
    else:  # (x, y) -> (tx + y, ty - x)
        base, lo, hi = tx + across, 792 - (ty - along), 792 - (ty - along - width)
        assert base - 5 < x0 < base < x1 < base + 12
    assert abs(top - lo) < 1.5 and abs(bottom - hi) < 1.5


def test_a_latex_sidewaystable_is_read():
    """The real thing: ``tests/data/sidewaystable.tex`` made by pdflatex (the rotating
    package). Before, the turned page's letters were laid out as if upright (every row lost,
    "Rear" nowhere in the text) with no warning."""
    from pathlib import Path

    data = (Path(__file__).parent / "data" / "sidewaystable.pdf").read_bytes()
    doc, warnings = load_pdf(data, "sidewaystable.pdf")
    assert warnings == []
    assert "| Rear bracket | M10 | 55 | thread locker required |" in doc.text
    assert "Table 1: Torque settings for the frame bolts" in doc.text
    start = doc.text.index("Rear bracket")
    assert doc.page_at(start) == 2
    [(x0, top, x1, bottom)] = boxes(decode(doc.pages[1].layout), start, start + 4)
    # (where pdftotext -bbox puts "Rear": 308.7 526.8 317.6 547.5)
    assert abs(x0 - 308.7) < 1 and abs(top - 526.8) < 1 and abs(x1 - 317.6) < 1 \
        and abs(bottom - 547.5) < 1


def test_margin_stamps_are_left_out_quietly():
    """Fewer turned characters than a table has (an arXiv id up one margin, a draft mark
    down the other) stay out of the text, with no warning, as before; two such stamps,
    turned either way, were together counted as "text set at an angle" and warned about."""
    c = _canvas()
    c.drawString(72, 740, "Chapter 3 Specifications, upright as a page header.")
    for turn, origin in ((90, (30, 300)), (270, (580, 600))):
        c.saveState()
        c.translate(*origin)
        c.rotate(turn)
        c.drawString(0, 0, "arXiv:2101.00001v1 [cs.CL] 1 Jan 2021")
        c.restoreState()
    doc, warnings = load_pdf(c.getpdfdata(), "stamp.pdf")
    assert "Chapter 3" in doc.text and "arXiv" not in doc.text and warnings == []


def test_text_at_another_angle_is_said_to_be_left_out():
    """Text at an angle that is not a quarter turn (a diagonal figure label) is not read; a
    page with enough of it is named in a warning, not silently."""
    c = _canvas()
    c.drawString(72, 740, "Chapter 3 Specifications, upright as a page header.")
    c.saveState()
    c.translate(200, 200)
    c.rotate(45)
    for i in range(4):
        c.drawString(0, -20 * i, f"diagonal label number {i} of the figure")
    c.restoreState()
    doc, warnings = load_pdf(c.getpdfdata(), "diagonal.pdf")
    assert "diagonal" not in doc.text
    assert warnings == ["page 1: text set at an angle (a figure?) was left out"]


def test_a_numbered_title_above_its_bookmark_is_a_heading():
    """dblatex (Debian's DocBook manuals) points a section's bookmark at its first line of
    text, below the title, and sets the number apart from it ("6.3   debuild command"): the
    title line was read as a table row of two cells, the section's first chunk ran on from
    the section before (40 of maint-guide's 90 headings), and a line below that only opens
    the title ("$ debuild") was taken for it; an appendix's "A.1" was no number either."""
    c = _canvas()
    y = 740
    for number, title, first in (("6.3", "debuild command", "You can automate the build with "
                                  "the debuild command."),
                                 ("A.1", "Shared libraries", "Before packaging shared "
                                  "libraries, read the policy.")):
        c.setFont("Helvetica-Bold", 14)
        c.drawString(72, y, number)
        c.drawString(110, y, title)
        c.bookmarkPage(number, fit="XYZ", top=y - 26)  # (at the text's first line)
        c.addOutlineEntry(title, number, level=0)
        c.setFont("Helvetica", 10)
        c.drawString(72, y - 34, first)
        c.setFont("Courier", 9)
        c.drawString(90, y - 56, "$ debuild" if number == "6.3" else "$ ldconfig")
        c.setFont("Helvetica", 10)
        for k in range(4):
            c.drawString(72, y - 78 - 13 * k, f"More about {title}, line {k} of its text.")
        y -= 200
    c.showOutline()
    doc = load_pdf(c.getpdfdata(), "dblatex.pdf")[0]
    assert "|" not in doc.text
    assert "6.3 debuild command\n\nYou can automate" in doc.text
    assert "A.1 Shared libraries\n\nBefore packaging" in doc.text
    assert doc.heading_at(doc.text.index("$ debuild")) == "debuild command"
    assert doc.heading_at(doc.text.index("Before packaging")) == "Shared libraries"


def test_an_index_that_begins_mid_page_marks_only_itself():
    """The index of gnuplot's manual begins below the last section of its text ("Bugs",
    "Known limitations"): that section is text, not index (the whole page was marked, so its
    chunks went to the end of every list of hits); the index's title is in the index even
    where its bookmark points below it (memoir's chapters)."""
    c = _canvas()
    for n in range(1, 4):
        c.bookmarkPage(f"ch{n}", fit="XYZ", top=740)
        c.addOutlineEntry(f"{n} Chapter {n}", f"ch{n}", level=0)
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, 720, f"{n} Chapter {n}")
        c.setFont("Helvetica", 11)
        for k in range(20):
            c.drawString(72, 690 - 14 * k, f"Chapter {n} explains the pump's part number {k}.")
        c.showPage()
    c.bookmarkPage("bugs", fit="XYZ", top=740)
    c.addOutlineEntry("Known limitations", "bugs", level=0)
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 720, "Known limitations")
    c.setFont("Helvetica", 11)
    c.drawString(72, 690, "The pump cannot run dry for more than ten seconds.")
    c.drawString(72, 676, "Its valve sticks below freezing; warm it before a start.")
    c.setFont("Helvetica-Bold", 16)
    c.drawString(72, 600, "Index")
    c.bookmarkPage("index", fit="XYZ", top=560)  # (below its title)
    c.addOutlineEntry("Index", "index", level=0)
    c.setFont("Helvetica", 11)
    for k, entry in enumerate(("filter, 2", "impeller, 1, 3", "priming, 2", "seal, 3",
                               "valve, 1, 2", "voltage, 1")):
        c.drawString(72, 570 - 14 * k, entry)
    c.showPage()
    c.showOutline()
    doc = load_pdf(c.getpdfdata(), "pump.pdf")[0]
    assert kind_at(doc, "The pump cannot run dry", 100) == ""
    assert kind_at(doc, "filter, 2", 40) == "index"
    assert kind_at(doc, "Index", 5) == "index"


def _one_page(content: bytes, font: bytes = b"<< /Type /Font /Subtype /Type1 /BaseFont "
              b"/Helvetica >>", more: list = ()) -> bytes:
    """A one-page PDF drawing ``content`` with ``font`` as /F1 (objects ``more`` follow it,
    numbered from 6)."""
    from pdfgen import assemble

    return assemble([b"<< /Type /Catalog /Pages 2 0 R >>",
                     b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                     b"/Resources << /Font << /F1 5 0 R >> >> >>",
                     b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
                     font, *more])


def test_a_font_set_at_1_pt_and_scaled_up_reads_as_its_real_size():
    """Distiller and Quartz set text at 1 pt and scale it with the text matrix: the size is
    the font's times the matrix's, or every kerning gap became a space and every word a
    table cell (makeindex's manual: 154 words split, 226 of its 525 lines table rows)."""
    content = (b"BT /F1 1 Tf 11 0 0 11 72 720 Tm [(Kerned) 40 ( w) 30 (ords of a 1) -20 "
               b"( pt f) 30 (ont scaled up) 40 ( to 11 pt.)] TJ 0 -1.3 Td [(A se) 50 "
               b"(cond line, ju) 30 (st as Distiller writes it.)] TJ ET")
    doc, _ = load_pdf(_one_page(content), "scaled.pdf")
    assert doc.text == ("Kerned words of a 1 pt font scaled up to 11 pt. A second line, just "
                        "as Distiller writes it.")


def test_a_letter_past_u_ffff_is_read_whole():
    """PDFium gives text as UTF-16: a math letter (U+1D542, double-struck K) comes in two
    halves, each of which was read as "\ufffd"; it is one letter, and as math letters are
    styled letters, the letter itself (as ligatures are)."""
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /K def "
            b"/CMapType 2 def 1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfchar "
            b"<4B> <D835DD42> endbfchar endcmap CMapName currentdict /CMap defineresource pop "
            b"end end")
    content = b"BT /F1 12 Tf 72 720 Td (A vector space over the field K of scalars.) Tj ET"
    doc, _ = load_pdf(_one_page(
        content, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        [b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream"]), "math.pdf")
    assert doc.text == "A vector space over the field K of scalars."


def test_a_line_repeated_at_the_top_of_two_pages_is_text_unless_set_apart():
    """A running head found on only two pages (a short section's) is set apart from the text
    and left out; a line of text that happens to open two pages (a paragraph the manual
    repeats, a code line) is not set apart, and stays: it was dropped as a header, silently
    (53 real manuals: 294 lines, 1,051 words of 6+ word lines)."""
    c = _canvas()
    for n in range(1, 7):
        c.setFont("Helvetica", 11)
        y = 740
        if n in (2, 3):
            c.setFont("Helvetica-Oblique", 9)
            c.drawString(72, 760, "4.2 Calibrating the sensor")  # (its running head)
            c.setFont("Helvetica", 11)
            y = 720
        if n in (4, 6):
            c.drawString(72, y, "the pump stops and the valve closes before the tank overflows.")
            y -= 14
        for k in range(30):
            c.drawString(72, y - 14 * k, f"Page {n} describes step {k} of servicing the pump.")
        c.showPage()
    doc, _ = load_pdf(c.getpdfdata(), "repeat.pdf")
    assert "Calibrating the sensor" not in doc.text
    assert doc.text.count("the pump stops and the valve closes before the tank") == 2


def test_an_option_list_is_labelled_paragraphs_not_a_table():
    """An option's name set before the first line of its description (dvips' and bash's
    option lists, a margin note) made that line a table row and the rest of the paragraph
    another block, cutting the hyphenated word at its end ("out- |" over "put"); a
    real table's rows, each a line, stay a table."""
    c = _canvas()
    c.setFont("Helvetica", 11)
    y = 720
    options = (("-f", ["Run as a filter. Read the DVI file from standard input and write "
                       "its out-", "put to standard output."]),
               ("-q", ["Run quietly. Do not print the usual greeting and the version message",
                       "at startup, only errors."]))
    for name, lines in options:
        c.drawString(72, y, name)
        for k, line in enumerate(lines):
            c.drawString(130, y - 14 * k, line)
        y -= 14 * len(lines) + 6
    y -= 20
    for row in (("Part", "Bolt", "Torque"), ("Bracket", "M8", "40 Nm"), ("Clamp", "M6", "12 Nm")):
        for x, cell in zip((72, 200, 330), row):
            c.drawString(x, y, cell)
        y -= 14
    doc, _ = load_pdf(c.getpdfdata(), "options.pdf")
    assert ("-f Run as a filter. Read the DVI file from standard input and write its output to "
            "standard output.") in doc.text
    assert "-q Run quietly. Do not print the usual greeting and the version message at " \
           "startup, only errors." in doc.text
    assert "| Bracket | M8 | 40 Nm |" in doc.text


def test_a_page_number_set_high_above_the_foot_is_left_out():
    """dvipdfm's manual sets its page numbers at 83 % of the page height, out of the band
    where furniture is looked for: a bare number ended every page, and a paragraph running
    on over the page break read "... Portable Document 1 Format"."""
    c = _canvas()
    for n in (1, 2, 3):
        c.setFont("Helvetica", 11)
        for k in range(25):
            c.drawString(72, 720 - 14 * k, f"{'abcdefghijklmnopqrstuvwxy'[k] * 3} on page "
                                           f"{'one two three'.split()[n - 1]} about its valve,")
        c.drawString(300, 130, str(n))  # (at 83.6 % of the height, centred)
        c.showPage()
    doc, _ = load_pdf(c.getpdfdata(), "numbers.pdf")
    assert "valve, aaa on page two" in doc.text and "valve, aaa on page three" in doc.text
    assert not any(line.strip() in {"1", "2", "3"} for line in doc.text.split("\n"))


def test_contents_that_open_with_numbers_are_marked_and_prose_under_such_a_title_is_not():
    """luatex's contents ("2.8.4 \\clearmarks 31": a number first, no leaders) went unmarked,
    so its pages were read as text; and a chapter about tables of contents bookmarked "Table of
    Contents" (KOMA-Script's guide, pages 71-76) was marked as one, its prose sent to the end
    of every list of hits."""

    words = "pump valve seal filter impeller motor gasket sensor".split()
    c = _canvas()
    c.setFont("Helvetica", 11)
    for k in range(20):
        c.drawString(72, 720 - 14 * k, f"{k // 5 + 1}.{k % 5 + 1} \\set{words[k % 8]}{k}")
        c.drawString(500, 720 - 14 * k, str(3 + 2 * k))
    c.showPage()
    c.bookmarkPage("toc", fit="XYZ", top=760)
    c.addOutlineEntry("Table of Contents", "toc", level=0)
    c.setFont("Helvetica", 11)
    for k in range(12):
        c.drawString(72, 720 - 14 * k, f"The {words[k % 8]} entry of a contents list is set by "
                                       f"its own style, as chapter {k + 1} explains.")
    c.showPage()
    for n in range(8):
        c.setFont("Helvetica", 11)
        c.drawString(72, 720, f"Chapter text {n} on the {words[n]} and how to service it.")
        c.showPage()
    c.showOutline()
    doc = load_pdf(c.getpdfdata(), "contents.pdf")[0]
    assert kind_at(doc, "\\setvalve", 40) == "toc"
    assert kind_at(doc, "The pump entry of a contents list", 100) == ""


def test_where_the_body_is_bold_a_bold_line_is_no_heading():
    """dvips' manual says its body font (CMR10) is bold: every page's last line, bold, short
    and alone, was taken for a heading, and a paragraph across the page break was cut there
    (54 places); bold sets a line apart only where the body is not bold."""
    c = _canvas()
    words = "pump valve seal filter impeller motor gasket sensor hose clamp".split()
    for n in (1, 2):
        c.setFont("Helvetica-Bold", 11)
        for k in range(30):
            c.drawString(72, 720 - 14 * k, f"The {words[k % 10]} {words[(k + n) % 10]} part "
                                           f"{n * 100 + k} is checked and then")
        c.showPage()
    doc, _ = load_pdf(c.getpdfdata(), "bold.pdf")
    assert not doc.sections
    assert "is checked and then The pump seal part 200" in doc.text


def test_a_justified_line_with_wide_spaces_stays_in_its_paragraph():
    """A line TeX stretched around a long unbreakable word ("to   extend   previously ...")
    has gaps wide enough to read as table cells: between two lines of its paragraph, with no
    cell of more than two words, it is a line of the paragraph, not a one-row table."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    c = _canvas()
    c.setFont("Helvetica", 11)
    c.drawString(72, 720, "You can use the command \\TOCEntryStyleStartInitCode to extend any")
    x = 72
    for word in "previously existing initialisation code with further code".split():
        c.drawString(x, 706, word)
        x += stringWidth(word, "Helvetica", 11) + 16  # (gaps of 16 pt: wider than 1 em)
    c.drawString(72, 692, "of a style, and it runs before the style's own initial code.")
    doc, _ = load_pdf(c.getpdfdata(), "justified.pdf")
    assert "|" not in doc.text
    assert "to extend any previously existing initialisation code with further code of a " \
           "style" in doc.text


def test_a_scan_with_a_turned_text_layer_keeps_it():
    """A landscape page scanned upright carries its text layer turned: that is its text (the
    scan check counted upright characters only, threw the turned text away and sent the page
    to OCR, which found nothing: "PDF has no extractable text")."""
    from PIL import Image
    from reportlab.lib.utils import ImageReader

    c = _canvas()
    c.drawImage(ImageReader(Image.new("L", (306, 396), 255)), 0, 0, width=612, height=792)
    c.saveState()
    c.translate(200, 150)
    c.rotate(90)
    text = c.beginText(0, 0)
    text.setTextRenderMode(3)  # (invisible, as an OCR layer is)
    for i in range(6):
        text.setTextOrigin(0, -20 * i)
        text.textLine(f"Row {i}: the torque for bracket {i} is {40 + i} Nm")
    c.drawText(text)
    c.restoreState()
    doc, _ = load_pdf(c.getpdfdata(), "landscape-scan.pdf")
    assert "the torque for bracket 3 is 43 Nm" in doc.text
    assert "ocr_pages" not in doc.metadata


def test_a_table_of_years_is_no_contents_and_short_titles_are():
    """A line that opens with a number counts as a contents line only as a section number
    ("2.8.4 \\clearmarks 31"), not a year ("2019 Revenue 120": a one-page table was marked
    "toc"); and a bookmarked contents of short titles with no page numbers stays marked."""
    c = _canvas()
    c.setFont("Helvetica", 11)
    c.drawString(72, 740, "Revenue by year, in thousands of euros:")
    for i, year in enumerate(range(2019, 2025)):
        c.drawString(72, 720 - 14 * i, f"{year} Revenue {120 + 7 * i}")
    assert load_pdf(c.getpdfdata(), "years.pdf")[0].regions == ()

    c = _canvas()
    c.bookmarkPage("toc", fit="XYZ", top=760)
    c.addOutlineEntry("Contents", "toc", level=0)
    c.setFont("Helvetica", 11)
    for i, title in enumerate(["Overview", "Installing", "Wiring", "Calibration", "Faults",
                               "Glossary"]):
        c.drawString(72, 720 - 14 * i, title)
    c.showPage()
    for n in range(9):
        c.drawString(72, 720, f"Chapter {n + 1} text about the pump, its wiring and faults.")
        c.showPage()
    c.showOutline()
    doc = load_pdf(c.getpdfdata(), "titles.pdf")[0]
    assert kind_at(doc, "Overview", 20) == "toc"


def test_a_turned_table_set_small_is_no_footnote():
    """Turned text is a flow of its own, so it always ends "a column": a turned table set
    smaller than the body, its rows opening with numbers, came out as footnotes [1], [2]."""
    c = _canvas()
    c.setFont("Helvetica", 11)
    for i in range(10):
        c.drawString(72, 740 - 14 * i, f"Body text line {i} about the frame and its bolts.")
    c.saveState()
    c.translate(400, 150)
    c.rotate(90)
    c.drawString(0, 0, "Table 7: Torque settings for the frame bolts")
    c.setFont("Helvetica", 8)
    for r in range(6):
        for x, cell in zip((0, 60, 130, 200), (str(r + 1), f"Bracket {r}", f"M{8 + r}",
                                              f"{40 + r} Nm")):
            c.drawString(x, -16 - 11 * r, cell)
    c.restoreState()
    doc, _ = load_pdf(c.getpdfdata(), "small-table.pdf")
    assert "| 3 | Bracket 2 | M10 | 42 Nm |" in doc.text and "[3]" not in doc.text


def test_the_table_of_contents_is_marked(doc):
    assert kind_at(doc, "2.1 Modes . .", 20) == "toc"
    assert kind_at(doc, "Before you start", 50) == ""


def test_each_character_keeps_its_box(doc):
    """The span of "SOME_VARIABLE", broken over two lines, is drawn as two boxes on page 2,
    where reportlab put the words (72 pt from the left, lines 14 pt apart)."""
    pieces = decode(doc.pages[1].layout)
    start = doc.text.index("SOME_VARIABLE")
    first, second = boxes(pieces, start, start + len("SOME_VARIABLE"))
    assert first[0] > 150 and first[2] < 300 and 90 < first[1] < 110  # end of line 2
    assert second[0] == pytest.approx(72, abs=1) and second[1] == pytest.approx(first[1] + 14,
                                                                              abs=1)
    [word] = boxes(pieces, doc.text.index("Before"), doc.text.index("Before") + 6)
    assert word[0] == pytest.approx(72, abs=1) and 20 < word[2] - word[0] < 45


def test_headings_from_font_size_without_an_outline():
    c = _canvas()
    y = 720
    for text, font, size in (("Maintenance", "Helvetica-Bold", 18), ("Oil the bearings every "
                             "week and check the belt.", "Helvetica", 11),
                             ("Storage", "Helvetica-Bold", 14), ("Keep the pump dry.",
                                                                 "Helvetica", 11)):
        c.setFont(font, size)
        c.drawString(72, y, text)
        y -= 30
    doc, _ = load_pdf(c.getpdfdata(), "plain.pdf")
    assert [(s.level, s.title) for s in doc.sections] == [(1, "Maintenance"), (2, "Storage")]
    assert doc.heading_at(doc.text.index("Keep the pump")) == "Maintenance > Storage"


@needs_tesseract
def test_a_scanned_page_is_read_by_tesseract_with_word_boxes():
    text_doc = load_pdf(manual(), "manual.pdf")[0]
    doc, warnings = load_pdf(scanned(manual(), [1]), "scan.pdf")
    assert warnings == [] and doc.metadata["ocr_pages"] == "1"
    want = set(text_doc.text[text_doc.page_starts[1]:text_doc.page_starts[2]].split())
    got = set(doc.text.split())
    assert len(want & got) >= 0.85 * len(want), sorted(want - got)
    start = doc.text.index("The repository holds") + 4
    [box] = boxes(decode(doc.pages[0].layout), start, start + len("repository"))
    assert 200 < box[0] < 400 and 100 < box[1] < 130  # (where the text PDF has the word)


@needs_tesseract
def test_ocr_leaves_the_process_environment_as_it_was(monkeypatch):
    """Tesseract gets one OpenMP thread in its own process only: set in this process's
    environment, the limit reached every program started after (a `rag serve` that a test
    started after an OCR test ran its reader on one thread, and its page view timed out)."""
    import os

    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    load_pdf(scanned(manual(), [1]), "scan.pdf")
    assert "OMP_THREAD_LIMIT" not in os.environ


@needs_tesseract
def test_a_mixed_pdf_is_read_page_by_page():
    doc, _ = load_pdf(scanned(manual(), [1, 2], keep_text=[2]), "mixed.pdf")
    assert doc.metadata["ocr_pages"] == "1"
    assert "This page has a text layer of its own." in doc.text
    assert "SOME_VARIABLE" in doc.text[:doc.page_starts[1]]


@needs_tesseract
def test_a_scan_longer_than_the_parse_limit_is_read_whole_by_a_worker(tmp_path):
    """Each page a worker reads by OCR earns the file more time (``OCR_PAGE_SECONDS``): a
    scan whose OCR takes far longer than the pool's limit is read whole; the same limit
    still cuts off a file with no page to OCR (``test_hostile``)."""
    import time

    from knowledge.parsing import ParsePool

    (tmp_path / "scan.pdf").write_bytes(scanned(manual(), [1, 2, 3, 1]))
    t0 = time.perf_counter()
    with ParsePool(1, timeout_s=0.5) as pool:
        [parsed] = pool.parse([(str(tmp_path), "scan.pdf", None)], max_bytes=2**30)
    took = time.perf_counter() - t0
    assert parsed.error is None, parsed.error
    assert took > 1.0  # (four pages of OCR: well past the 0.5 s limit)
    assert parsed.docs[0].metadata["ocr_pages"] == "1-4"
    assert "SOME_VARIABLE" in parsed.docs[0].text


@needs_tesseract
def test_ocr_reads_at_most_max_pages_of_a_file_and_says_which_it_left(monkeypatch):
    from knowledge import ocr

    monkeypatch.setattr(ocr, "MAX_PAGES", 2)
    doc, warnings = load_pdf(scanned(manual(), [1, 2, 3]), "scan.pdf")
    assert warnings == ["page 3 has no text layer (scanned?), left out: OCR reads "
                        "at most 2 pages of a file"]
    assert doc.metadata["ocr_pages"] == "1-2"
    assert doc.page_starts[2] == len(doc.text)  # (nothing read on page 3)


def test_without_tesseract_a_scan_gets_the_reason_and_the_install_command(monkeypatch):
    monkeypatch.setenv("TESSERACT_CMD", "no-such-tesseract")
    with pytest.raises(LoadError, match=r"no text layer .*Tesseract is not installed; install "
                                        r"it with `apt-get install tesseract-ocr`"):
        load_pdf(scanned(manual(), [1]), "scan.pdf")
    doc, warnings = load_pdf(scanned(manual(), [1, 2], keep_text=[2]), "mixed.pdf")
    assert "This page has a text layer of its own." in doc.text
    assert warnings and warnings[0].startswith("page 1 has no text layer")


def test_the_knowledge_base_keeps_labels_kinds_and_reads_the_contents_last(tmp_path,
                                                                         fake_embedder):
    from rag.pipeline import Pipeline
    from rag.retrieval import Retriever

    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual()})
    kb_dir = tmp_path / "kb"
    sync(kb_dir, [docs], embedder=fake_embedder, log=lambda m: None,
         chunking=ChunkerSettings(size=40, overlap=0))
    with closing(sqlite3.connect(kb_dir / "kb.sqlite")) as c:
        kinds = dict(c.execute("SELECT kind, count(*) FROM chunks GROUP BY kind"))
        labels = [r[0] for r in c.execute("SELECT label FROM pages ORDER BY page")]
    assert kinds.get("toc", 0) >= 1 and kinds.get("", 0) >= 4 and labels == ["i", "1", "2", "3"]
    with KnowledgeBase.open(kb_dir, embedder=fake_embedder) as kb:
        r = Retriever(kb, "lexical")
        # the contents page matches best (every title is on it), yet comes after the prose
        hits = r.retrieve("Modes Filters Columns Reference Installing Operating", k=20)
        kinds = [h.kind for h in hits]
        assert kinds[0] == "" and "toc" in kinds and kinds == sorted(kinds)
        [only] = r.retrieve("Contents", k=1)  # nothing else matches: it is still found
        assert only.kind == "toc" and only.page_label == "i"
        [a] = Pipeline(r, None, k=1).ask("clean the filter every month").citations
        assert (a.page, a.page_label, a.heading) == (3, "2", "2 Operating > 2.2 Filters")


def test_a_format_3_knowledge_base_reads_its_pdfs_again_on_the_next_index(tmp_path):
    """A knowledge base from before page labels and chunk kinds still answers (labels
    fall back to page numbers); the next `rag index` adds them by reading its PDFs again,
    re-embedding the PDF's chunks only, and leaves the text file alone."""
    from conftest import FakeEmbedder
    from test_kb import as_old_format

    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual(), "notes.txt": "Plain notes."})
    kb_dir = tmp_path / "kb"
    sync(kb_dir, [docs], embedder=FakeEmbedder(), log=lambda m: None)
    as_old_format(kb_dir, 3)
    with closing(sqlite3.connect(kb_dir / "kb.sqlite")) as c:  # (pypdf's text, then)
        c.execute("UPDATE documents SET content_hash = 'format 3' WHERE doc_id = 'manual.pdf'")
        c.commit()
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        [hit] = kb.search("clean the filter every month", k=1)
        assert (hit.page, hit.page_label, hit.kind) == (3, "3", "")
    emb = FakeEmbedder()
    r = sync(kb_dir, [docs], embedder=emb, log=lambda m: None)
    with closing(sqlite3.connect(kb_dir / "kb.sqlite")) as c:
        pdf_chunks, pdf_windows = c.execute(
            "SELECT count(*), coalesce(sum(length(c.windows)), 0) / (4 * 64) FROM chunks c JOIN "
            "documents d ON c.document_id = d.id WHERE d.doc_id = 'manual.pdf'").fetchone()
        assert c.execute("SELECT count(*) FROM pages").fetchone()[0] == 4
    # (the PDF's chunks and their paragraph windows, knowledge/windows.py; not the notes)
    assert (r.updated, r.unchanged, emb.calls) == (1, 1, pdf_chunks + pdf_windows)
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        assert kb.manifest["format_version"] == store.FORMAT_VERSION
        [hit] = kb.search("clean the filter every month", k=1)
        assert (hit.page, hit.page_label) == (3, "2")


def test_a_format_4_knowledge_base_moves_to_tantivy_keeping_its_pages(tmp_path):
    """A knowledge base of format 4 (page labels and chunk kinds, BM25 in FTS5) answers as it
    is; the next `rag index` builds its BM25 index from the stored chunk texts, reading no
    file again and re-embedding nothing, and page labels and kinds stay."""
    from conftest import FakeEmbedder
    from test_kb import as_old_format

    from rag.retrieval import Retriever

    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual(), "notes.txt": "Plain notes."})
    kb_dir = tmp_path / "kb"
    sync(kb_dir, [docs], embedder=FakeEmbedder(), log=lambda m: None)
    as_old_format(kb_dir, 4)
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        assert kb.store.lexical_index() is None  # (FTS5)
        [hit] = Retriever(kb, "lexical").retrieve("clean the filter every month", k=1)
        assert (hit.page, hit.page_label) == (3, "2")
    emb = FakeEmbedder()
    r = sync(kb_dir, [docs], embedder=emb, log=lambda m: None)
    assert (r.updated, r.unchanged, emb.calls) == (0, 2, 0)
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        assert kb.manifest["format_version"] == store.FORMAT_VERSION
        assert kb.store.lexical_index().num_docs == kb.manifest["counts"]["chunks"]
        [again] = Retriever(kb, "lexical").retrieve("clean the filter every month", k=1)
        assert (again.chunk_id, again.page_label, again.kind) == (hit.chunk_id, "2", hit.kind)
        assert kb.page("manual.pdf", 1)["label"] == "i"
