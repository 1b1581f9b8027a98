"""Office documents and e-books (knowledge/office.py, knowledge/epub.py) as pandoc,
LibreOffice, python-pptx and openpyxl write them, and mail kept by mail programs without a
suffix (Maildir, Thunderbird): read whole, in order, with their structure, and nothing
that is not the document's text."""
import io
import json
import mailbox
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest

from knowledge import office
from knowledge.loaders import LoadError, is_supported, load_file, walk

DATA = Path(__file__).parent / "data" / "office"
ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
          'xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" '
          'xmlns:dc="http://purl.org/dc/elements/1.1/"')


def load(path: Path, data: bytes | None = None):
    docs, said = load_file(path, path.name, data)
    assert len(docs) == 1
    return docs[0], said


def headings(doc) -> list[str]:
    return [s.title for s in doc.sections]


def zipped(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def odt(body: str, kind: str = "text") -> bytes:
    content = (f'<?xml version="1.0"?><office:document-content {ODF_NS}><office:body>'
               f'<office:{kind}>{body}</office:{kind}></office:body></office:document-content>')
    return zipped({"mimetype": "application/vnd.oasis.opendocument.text",
                   "content.xml": content})


@pytest.mark.parametrize("name", ["pump.odt", "pump-libreoffice.odt"])
def test_an_opendocument_text_reads_with_headings_lists_tables_and_footnotes(name):
    doc, said = load(DATA / name)
    assert said == [] and doc.title == "Pump handbook"
    assert headings(doc) == ["Pump handbook", "Starting", "Stopping"]
    text = doc.text
    # the footnote follows its paragraph instead of splitting its sentence
    assert ("Press the green button to start the pump.\n\n[1] The button is on the left side."
            in text)
    assert "1. Open the valve.\n2. Press start." in text  # (numbered: the list's style says)
    assert "- a bullet\n  - nested bullet" in text
    assert "| Model | Flow |\n| P-100 | 12 l/min |" in text
    assert text.index("Stopping") < text.index("Hold the red button for 3 seconds.")


def test_a_word_documents_footnotes_follow_the_paragraphs_citing_them():
    doc, said = load(DATA / "pump.docx")
    assert said == [] and headings(doc) == ["Pump handbook", "Starting", "Stopping"]
    assert ("Press the green button to start the pump.\n\n[1] The button is on the left side."
            "\n\n1. Open the valve.\n2. Press start.") in doc.text


def test_what_an_opendocument_shows_no_reader_comments_deletions_contents_and_blank_rows():
    body = (
        '<text:table-of-content><text:index-body><text:p>Starting ...... 1</text:p>'
        '</text:index-body></text:table-of-content>'
        '<text:tracked-changes><text:changed-region><text:deletion><text:p>old valve text'
        '</text:p></text:deletion></text:changed-region></text:tracked-changes>'
        '<text:h text:outline-level="2">Valves</text:h>'
        '<text:p>Open<text:s text:c="2"/>the valve<office:annotation><text:p>check this'
        '</text:p></office:annotation> slowly.<text:line-break/>Then wait.</text:p>'
        '<text:p>A boxed tip:<draw:frame><draw:text-box><text:p>Never force it.</text:p>'
        '</draw:text-box></draw:frame></text:p>'
        '<table:table><table:table-row><table:table-cell><text:p>a</text:p></table:table-cell>'
        '<table:covered-table-cell/><table:table-cell table:number-columns-repeated="3">'
        '<text:p>x</text:p></table:table-cell><table:table-cell '
        'table:number-columns-repeated="16000"/></table:table-row>'
        '<table:table-row table:number-rows-repeated="1048000"><table:table-cell/>'
        '</table:table-row></table:table>')
    doc, said = load(Path("v.odt"), odt(body))
    assert headings(doc) == ["Valves"]
    assert doc.text == ("Valves\n\nOpen  the valve slowly.\nThen wait.\n\nA boxed tip:\n\n"
                        "Never force it.\n\n| a | x | x | x |")
    assert said == []


def test_a_spreadsheet_with_a_header_row_gives_each_row_its_column_names():
    for name in ("catalogue.xlsx", "catalogue.ods"):
        doc, said = load(DATA / name)
        assert said == [] and doc.title == "Pump catalogue", name
        assert headings(doc) == ["Pumps", "Parts"]
        assert "- Model: P-100; Flow (l/min): 12; Released: 2021-03-01; Price: 99.5\n" in doc.text
        assert "- Part: Seal; Code: S-9" in doc.text
        assert "note: P-300 discontinued" in doc.text
    # a repeated row with text is written at most MAX_REPEAT times, and that is said
    rows = ('<table:table table:name="Log"><table:table-row><table:table-cell><text:p>tick'
            '</text:p></table:table-cell></table:table-row><table:table-row '
            'table:number-rows-repeated="500000"><table:table-cell><text:p>tock</text:p>'
            '</table:table-cell></table:table-row></table:table>')
    doc, said = load(Path("log.ods"), odt(rows, "spreadsheet"))
    assert doc.text.count("tock") == office.MAX_REPEAT and said and "at most" in said[0]


def test_a_workbook_without_a_header_row_is_markdown_rows_and_a_huge_one_is_cut(monkeypatch):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append([2021, 12, 3.0])
    book.active.append(["x", None, "y|z"])
    buf = io.BytesIO()
    book.save(buf)
    doc, said = load(Path("n.xlsx"), buf.getvalue())
    assert doc.text == "Sheet\n\n| 2021 | 12 | 3 |\n| x |  | y\\|z |" and said == []
    monkeypatch.setattr(office, "MAX_CELLS", 4)
    doc, said = load(Path("n.xlsx"), buf.getvalue())
    assert "2021" in doc.text and "y" not in doc.text and said == ["only the first 4 cells read"]


def test_a_slide_deck_reads_slide_by_slide_with_bullets_tables_groups_and_notes():
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])  # title and content
    slide.shapes.title.text = "Priming the pump"
    body = slide.placeholders[1].text_frame
    body.text = "Fill the housing"
    body.add_paragraph().text = "Close the vent"
    body.paragraphs[1].level = 1
    group = slide.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(5), Inches(3), Inches(1)).text_frame.text = (
        "Grouped caption")
    table = slide.shapes.add_table(2, 2, Inches(5), Inches(5), Inches(3), Inches(1)).table
    for (r, c), t in {(0, 0): "Part", (0, 1): "Code", (1, 0): "Seal", (1, 1): "S-9"}.items():
        table.cell(r, c).text = t
    slide.notes_slide.notes_text_frame.text = "Mention the vent screw."
    blank = deck.slides.add_slide(deck.slide_layouts[6])
    blank.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "Q&A"
    buf = io.BytesIO()
    deck.save(buf)
    doc, said = load(Path("talk.pptx"), buf.getvalue())
    assert headings(doc) == ["Priming the pump", "Notes", "Slide 2"]
    assert doc.text == ("Priming the pump\n\n- Fill the housing\n  - Close the vent\n\n"
                        "Grouped caption\n\n| Part | Code |\n| Seal | S-9 |\n\nNotes\n\n"
                        "Mention the vent screw.\n\nSlide 2\n\nQ&A")


def test_a_slides_notes_come_once_after_it_and_its_number_and_footer_never():
    """A user's trial: LibreOffice's slides gave each speaker's note twice (once as the
    slide's text) and "<number>" on every slide."""
    chrome = ('<draw:frame presentation:class="page-number"><draw:text-box><text:p>'
              '<text:page-number>&lt;number&gt;</text:page-number></text:p></draw:text-box>'
              '</draw:frame><draw:frame presentation:class="footer"><draw:text-box><text:p>'
              'ACME confidential</text:p></draw:text-box></draw:frame>')
    page = ('<draw:page draw:name="page1"><draw:frame presentation:class="title"><draw:text-box>'
            '<text:p>Intro</text:p></draw:text-box></draw:frame><draw:frame presentation:class='
            '"outline"><draw:text-box><text:p>Point one</text:p></draw:text-box></draw:frame>'
            + chrome + '<presentation:notes><draw:page-thumbnail presentation:class="page"/>'
            '<draw:frame presentation:class="notes"><draw:text-box><text:p>Say hello.</text:p>'
            '</draw:text-box></draw:frame>' + chrome + '</presentation:notes></draw:page>'
            '<draw:page draw:name="page2"><draw:frame><draw:text-box><text:p><text:line-break/>'
            'Thanks</text:p></draw:text-box></draw:frame></draw:page>')
    doc, said = load(Path("talk.odp"), odt(page, "presentation"))
    assert doc.text == "Intro\n\n- Point one\n\nNotes\n\nSay hello.\n\nSlide 2\n\nThanks"


def test_slides_as_pandoc_and_libreoffice_write_them():
    for name in ("pump.pptx", "pump.odp"):
        doc, said = load(DATA / name)
        assert said == [] and headings(doc)[:3] == ["Pump handbook", "Starting", "Stopping"], name
        assert "1. Open the valve.\n2. Press start." in doc.text
        assert "| P-100 | 12 l/min |" in doc.text and "The button is on the left side." in doc.text


def test_an_epub_reads_its_pages_in_reading_order_without_its_table_of_contents():
    doc, said = load(DATA / "pump.epub")
    assert said == [] and doc.title == "Pump handbook"
    assert headings(doc)[-2:] == ["Starting", "Stopping"]
    assert "1. Open the valve.\n2. Press start." in doc.text
    assert "The button is on the left side." in doc.text and "↩" not in doc.text
    assert doc.text.count("Starting") == 1  # (the nav page's link to it is not read)
    assert doc.text.index("Starting") < doc.text.index("Stopping")


def epub(pages: dict[str, str], spine: list[str], extra: dict | None = None) -> bytes:
    items = "".join(f'<item id="{n}" href="{n}" media-type="application/xhtml+xml"/>'
                    for n in pages)
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Book</dc:title>'
           f'</metadata><manifest>{items}</manifest><spine>'
           + "".join(f'<itemref idref="{n}"/>' for n in spine) + '</spine></package>')
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                 'opendocument:xmlns:container"><rootfiles><rootfile full-path="OPS/book.opf" '
                 'media-type="application/oebps-package+xml"/></rootfiles></container>')
    members = {"mimetype": "application/epub+zip", "META-INF/container.xml": container,
               "OPS/book.opf": opf}
    members.update({f"OPS/{n}": f"<html><body>{t}</body></html>" for n, t in pages.items()})
    members.update(extra or {})
    return zipped(members)


def test_an_epub_follows_its_spine_says_what_is_missing_and_refuses_drm():
    data = epub({"b.xhtml": "<h1>Second</h1><p>Two.</p>", "a.xhtml": "<h1>First</h1><p>One."
                 "</p>", "gone.xhtml": ""}, ["a.xhtml", "b.xhtml", "gone.xhtml", "a.xhtml"])
    doc, said = load(Path("book.epub"), data)
    assert doc.text.startswith("First\n\nOne.\n\nSecond\n\nTwo.") and doc.title == "Book"
    assert headings(doc)[:2] == ["First", "Second"]
    locked = epub({"a.xhtml": "<p>secret</p>"}, ["a.xhtml"], {
        "META-INF/encryption.xml": '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:'
        'container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
        '<enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OPS/a.xhtml"/></enc:CipherData>'
        '</enc:EncryptedData></encryption>'})
    with pytest.raises(LoadError, match="encrypted"):
        load(Path("locked.epub"), locked)


@pytest.mark.parametrize("name", ["x.odt", "x.ods", "x.odp", "x.pptx", "x.xlsx", "x.epub"])
@pytest.mark.parametrize("data,words", [
    (b"PK\x03\x04 but then nothing", "unreadable"),
    (zipped({"junk.bin": b"\x00" * 100}), "unreadable"),
    # a billion laughs: entities are never expanded (or the file is refused)
    (zipped({"content.xml": '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
             + "".join(f'<!ENTITY {c} "&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};&{p};">'
                       for p, c in zip("abcdefgh", "bcdefghi"))
             + f']><office:document-content {ODF_NS}><office:body><office:text><text:p>'
             '&i;</text:p></office:text></office:body></office:document-content>'}), ""),
])
def test_a_broken_or_hostile_office_file_is_refused_in_one_line(name, data, words):
    with pytest.raises(LoadError) as err:
        load(Path(name), data)
    assert "\n" not in str(err.value) and words in str(err.value)


def test_a_zip_bomb_office_file_is_refused_before_it_is_inflated():
    bomb = zipped({"content.xml": b"<a>" + b" " * 300 * 2**20 + b"</a>"})
    for name in ("x.odt", "x.pptx", "x.xlsx", "x.epub"):
        with pytest.raises(LoadError, match="inflate"):
            load(Path(name), bomb)


def message(subject: str, body: str, msg_id: str) -> EmailMessage:
    m = EmailMessage()
    m["Subject"], m["From"], m["Message-ID"] = subject, "Ann <ann@example.org>", msg_id
    m["Date"] = "Mon, 2 Oct 2023 10:00:00 +0000"
    m.set_content(body)
    return m


def mail_folders(root: Path) -> None:
    md = mailbox.Maildir(root / "Maildir", create=True)
    md.add(mailbox.MaildirMessage(message("Pump recall", "Return the P-100 pumps to the depot "
                                          "in Leeds.", "<r1@example.org>")))
    sent = md.add_folder("Sent")  # (Maildir++: ".Sent", a hidden folder, and its marker file)
    sent.add(mailbox.MaildirMessage(message("Gaskets", "The gasket is 40 mm.", "<g1@x.org>")))
    (root / "Maildir" / "cur" / "1382620924_0.23395.host,U=1,FMD5=7e3:2,S").write_bytes(
        bytes(message("Fan", "The fan runs at 1200 rpm.", "<f1@x.org>")))  # (offlineimap's)
    (root / "tb" / "Archives.sbd").mkdir(parents=True)
    for path, subject, body, msg_id in [
            ("tb/Inbox", "Seal codes", "The seal of the P-200 has the code S-9.", "<s1@x.org>"),
            ("tb/Archives.sbd/2022", "Depot", "The depot moved to York in 2022.", "<d1@x.org>")]:
        box = mailbox.mbox(root / path)
        box.add(message(subject, body, msg_id))
        box.flush()
        (root / (path + ".msf")).write_text("// <!-- <mdb:mork:z v=\"1.4\"/> -->")
    (root / "tb" / "Archives").write_bytes(b"")  # (the folder holding Archives.sbd/: empty)
    (root / "tb" / "Archives.msf").write_text("x")
    (root / "tb" / "Notes").write_text("not a mailbox: no summary beside it")
    (root / "new").mkdir()
    (root / "new" / "1700000000.plan").write_text("a file in a folder named new")


def test_maildir_and_thunderbird_folders_are_found_as_mail(tmp_path):
    """Maildir (its Maildir++ subfolders too, offlineimap's names too) and Thunderbird's
    mailboxes are found; their programs' own files are neither read nor counted, an empty
    Thunderbird folder is not said to be empty on every run; a message's id stays when its
    flags change."""
    mail_folders(tmp_path)
    found, unsupported = walk(tmp_path)
    assert [f for f in found if not f.startswith("Maildir/")] == ["tb/Archives.sbd/2022",
                                                                  "tb/Inbox"]
    maildir = [f for f in found if f.startswith("Maildir/")]
    assert len(maildir) == 3 and any(f.startswith("Maildir/.Sent/new/") for f in maildir)
    assert unsupported == 2  # tb/Notes, new/1700000000.plan
    assert not is_supported(Path("Inbox")) and is_supported(Path("mbox"))
    recall = next(f for f in maildir if f.startswith("Maildir/new/"))
    docs, _ = load_file(tmp_path / recall, recall)
    assert docs[0].title.startswith("Pump recall") and "Leeds" in docs[0].text
    read = recall.replace("/new/", "/cur/") + ":2,RS"  # (read, then replied to)
    (tmp_path / recall).rename(tmp_path / read)
    assert load_file(tmp_path / read, read)[0][0].doc_id == docs[0].doc_id == (
        "Maildir/" + recall.rsplit("/", 1)[1])


def test_office_files_ebooks_and_mail_folders_are_indexed_and_answered_from(tmp_path, capsys):
    """The shipped reader over a folder of the new kinds: answers quoted from a spreadsheet's
    row, a slide and a Thunderbird mailbox, cited by their files."""
    from knowledge import sync
    from knowledge.embedding import Embedder
    from rag.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("pump.odt", "pump.pptx", "catalogue.xlsx", "pump.epub"):
        (docs / name).write_bytes((DATA / name).read_bytes())
    mail_folders(docs)
    report = sync(tmp_path / "kb", [docs], embedder=Embedder.load(), log=lambda m: None)
    assert report.added == 9 and not report.skipped  # (4 files, 3 Maildir messages, 2 mailboxes)

    def ask(question: str) -> dict:
        assert main(["ask", question, "--kb", str(tmp_path / "kb"), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    got = ask("What code does the seal of the P-200 have?")
    assert "S-9" in got["answer"] and got["citations"][0]["doc_id"] == "tb/Inbox#s1@x.org"
    got = ask("Where did the depot move in 2022?")
    assert "York" in got["answer"]
    assert got["citations"][0]["doc_id"] == "tb/Archives.sbd/2022#d1@x.org"
    got = ask("What is the price of the P-100?")
    assert "99.5" in got["answer"] and got["citations"][0]["doc_id"] == "catalogue.xlsx"


# --- found by a review that attacked the loaders (each failed before its fix) ---------------


def test_a_workbook_declaring_every_cell_of_the_sheet_reads_in_moments():
    """openpyxl pads a read-only sheet to the range it declares: "A1:XFD1048576" (a cell at
    the far corner) was 17 billion empty cells, walked until the parse timeout."""
    import time

    import openpyxl

    book = openpyxl.Workbook()
    book.active["A1"] = "Pump"
    book.active["XFD1048576"] = "far"
    buf = io.BytesIO()
    book.save(buf)
    t0 = time.monotonic()
    doc, said = load(Path("corner.xlsx"), buf.getvalue())
    assert time.monotonic() - t0 < 20 and doc.text == "Sheet\n\n| Pump |\n|  | far |"


def test_a_deck_with_a_shape_python_pptx_cannot_type_or_an_untitled_libreoffice_slide():
    """A text shape without geometry (Google Slides, Keynote, LibreOffice write them) made
    the whole deck "unreadable (NotImplementedError)"; LibreOffice's content placeholder
    (``<p:ph/>``, index 0) on a slide without a title was taken for its title, the bullets
    one heading."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[6])
    box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1))
    box.text_frame.text = "odd shape text"
    box._element.nvSpPr.cNvSpPr.attrib.pop("txBox", None)
    box._element.spPr.remove(box._element.spPr.find(f"{office._A}prstGeom"))
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes._spTree.remove(slide.shapes.title._element)
    body = slide.placeholders[1]
    body.text_frame.text = "Grease the bearings."
    body.text_frame.add_paragraph().text = "Replace the seal kit."
    body._element.nvSpPr.nvPr.find(
        "{http://schemas.openxmlformats.org/presentationml/2006/main}ph").attrib.pop("idx")
    buf = io.BytesIO()
    deck.save(buf)
    doc, said = load(Path("deck.pptx"), buf.getvalue())
    assert doc.text == ("Slide 1\n\nodd shape text\n\nSlide 2\n\n- Grease the bearings.\n"
                        "- Replace the seal kit.")


def test_cell_comments_stay_out_of_cells_and_a_cells_note_follows_its_table():
    sheet = ('<table:table table:name="S"><table:table-row><table:table-cell><text:p>Model'
             '</text:p></table:table-cell><table:table-cell><text:p>Flow</text:p>'
             '</table:table-cell></table:table-row><table:table-row><table:table-cell>'
             '<office:annotation><text:p>Discontinued, do not order</text:p></office:annotation>'
             '<text:p>P-100</text:p></table:table-cell><table:table-cell office:value-type='
             '"date" office:date-value="2024-03-01T00:00:00"><text:p>03/01/24</text:p>'
             '</table:table-cell></table:table-row></table:table>')
    doc, _ = load(Path("c.ods"), odt(sheet, "spreadsheet"))
    assert doc.text == "S\n\n- Model: P-100; Flow: 2024-03-01"
    table = ('<table:table><table:table-row><table:table-cell><text:p>cell<text:note>'
             '<text:note-citation>1</text:note-citation><text:note-body><text:p>NOTE BODY'
             '</text:p></text:note-body></text:note></text:p></table:table-cell>'
             '<table:table-cell><text:p>x</text:p></table:table-cell></table:table-row>'
             '</table:table>')
    doc, _ = load(Path("t.odt"), odt(table))
    assert doc.text == "| cell | x |\n\n[1] NOTE BODY"


def test_libreoffices_numbered_headings_are_headings_and_a_sheets_empty_columns_go():
    """LibreOffice wraps numbered headings in a list (a Word file it saved read as "1.
    Installation", "1. Maintenance", no sections); 16,384 empty columns before a value were
    a page of "|  |" in every row."""
    body = ('<text:list><text:list-item><text:h text:outline-level="1">Installation</text:h>'
            '</text:list-item></text:list><text:p>Mount it.</text:p><text:list><text:list-item>'
            '<text:h text:outline-level="2">Base</text:h></text:list-item></text:list>')
    doc, _ = load(Path("h.odt"), odt(body))
    assert doc.text == "Installation\n\nMount it.\n\nBase"
    assert [(s.level, s.title) for s in doc.sections] == [(1, "Installation"), (2, "Base")]
    row = ('<table:table-row table:number-rows-repeated="3"><table:table-cell '
           'table:number-columns-repeated="16383"/><table:table-cell><text:p>far</text:p>'
           '</table:table-cell></table:table-row>')
    doc, said = load(Path("w.ods"), odt(f'<table:table table:name="S">{row}</table:table>',
                                        "spreadsheet"))
    assert doc.text == "S\n\n| far |\n| far |\n| far |" and said == []


def test_a_password_protected_office_file_or_an_opendocument_too_large_is_said(monkeypatch):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    for name in ("x.docx", "x.xlsx", "x.pptx"):
        with pytest.raises(LoadError, match="password-protected or old binary .* save it as "
                                            r"\.(docx|xlsx|pptx) without a password"):
            load(Path(name), ole)
    monkeypatch.setattr(office, "MAX_ODF_XML", 100)
    with pytest.raises(LoadError, match="of XML .*; split it to index it"):
        load(Path("big.odt"), odt("<text:p>" + "words " * 100 + "</text:p>"))


def test_an_epub2_contents_page_and_its_package_file_are_not_pages():
    data = epub({"toc.xhtml": "<h1>Contents</h1><p>Chapter one</p>",
                 "a.xhtml": "<h1>Chapter one</h1><p>One.</p>"}, ["toc.xhtml", "a.xhtml"])
    z = zipfile.ZipFile(io.BytesIO(data))
    members = {n: z.read(n) for n in z.namelist()}
    members["OPS/book.opf"] = members["OPS/book.opf"].replace(
        b"</manifest>", b'<item id="opf" href="book.opf" media-type="application/xhtml+xml"/>'
        b"</manifest>").replace(b"</spine>", b'<itemref idref="opf"/></spine><guide>'
                                b'<reference type="toc" href="toc.xhtml"/></guide>')
    doc, _ = load(Path("old.epub"), zipped(members))
    assert doc.text == "Chapter one\n\nOne."


def test_one_document_in_two_office_formats_is_warned_of(tmp_path):
    from knowledge.sync import twins

    assert twins([(tmp_path, ["pump.md", "pump.odt", "pump.epub", "talk.pptx"], True)]) == [
        (str(tmp_path / "pump.md"), str(tmp_path / "pump.odt")),
        (str(tmp_path / "pump.md"), str(tmp_path / "pump.epub"))]


def test_mail_folders_as_mail_programs_leave_them_and_lookalikes_that_are_not(tmp_path):
    """A second review: a Maildir message named after a host ending ".org" was read as Org
    (and re-embedded when read); files named like Dovecot's (dovecot.md, dovecot.1) vanished
    everywhere; a Maildir's tmp/ counted; Junk and Trash indexed as the user's mail; a notes
    folder with new/ and cur/ read as mail."""
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(mailbox.MaildirMessage(message("Server migration", "The server moves on Friday.",
                                          "<m1@x.org>")))
    src = next((tmp_path / "Maildir" / "new").iterdir())
    src.rename(src.with_name(src.name.split(".")[0] + ".M4P100.mx.example.org"))
    (tmp_path / "Maildir" / "tmp" / "1700000009.M9.host").write_text("being delivered")
    (tmp_path / "Maildir" / "dovecot-uidlist").write_text("3 V1 N2")
    md.add_folder("Junk").add(message("You won", "Claim your prize.", "<j1@x.org>"))
    (tmp_path / "tb").mkdir()
    for box in ("Inbox", "Trash"):
        m = mailbox.mbox(tmp_path / "tb" / box)
        m.add(message(box, f"In the {box}.", f"<{box}@x.org>"))
        m.flush()
        (tmp_path / "tb" / (box + ".msf")).write_text("x")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "dovecot.md").write_text("# Dovecot\n\nSet mail_location.\n")
    for folder in ("new", "cur"):
        (tmp_path / "notes" / folder).mkdir(parents=True)
    (tmp_path / "notes" / "new" / "20240115_meeting.md").write_text("# Meeting\n\nAgenda.\n")
    found, unsupported = walk(tmp_path)
    assert found == ["Maildir/new/" + src.name.split(".")[0] + ".M4P100.mx.example.org",
                     "docs/dovecot.md", "notes/new/20240115_meeting.md", "tb/Inbox"]
    assert unsupported == 0  # (tmp/, dovecot-uidlist, the .msf files: a mail program's)
    docs, _ = load_file(tmp_path / found[0], found[0])
    assert docs[0].title.startswith("Server migration")
    assert docs[0].doc_id == "Maildir/" + src.name.split(".")[0] + ".M4P100.mx.example.org"


def test_files_read_by_an_older_reader_are_read_again_once_and_renames_are_kept(
        tmp_path, fake_embedder):
    """Word's footnotes are read since this round: a knowledge base made before keeps the
    old text unless its .docx files are read again (once: only a document whose text changed
    is embedded again). A file whose record changed but none of its documents (a Maildir
    message read: its flags in its name) had that record rolled back, so it was parsed on
    every run and cited under its old name."""
    import sqlite3

    from knowledge import sync

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.docx").write_bytes((DATA / "pump.docx").read_bytes())
    (docs / "notes.md").write_text("# Notes\n\nThe pump hums.\n")
    md = mailbox.Maildir(docs / "Maildir", create=True)
    md.add(mailbox.MaildirMessage(message("Recall", "Return the pumps.", "<r1@x.org>")))
    mail = message("Handbook", "Attached.", "<h1@x.org>")
    mail.add_attachment((DATA / "pump.docx").read_bytes(), maintype="application",
                        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                        filename="pump.docx")
    (docs / "handbook.eml").write_bytes(bytes(mail))  # (mail reads Word and HTML parts too)
    kb = tmp_path / "k#b?"  # (a path SQLite's URI must have quoted)
    sync(kb, [docs], embedder=fake_embedder, log=lambda m: None)
    db = sqlite3.connect(kb / "kb.sqlite")
    manifest = json.loads(db.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()[0])
    assert manifest["readers"][".docx"] >= 2
    del manifest["readers"]  # (as a knowledge base made before readers were versioned)
    db.execute("UPDATE meta SET value=? WHERE key='manifest'", (json.dumps(manifest),))
    db.execute("UPDATE documents SET text='old text', content_hash='old' "
               "WHERE doc_id IN ('pump.docx', 'handbook.eml#pump.docx')")
    db.commit()
    [new] = (docs / "Maildir" / "new").iterdir()
    new.rename(docs / "Maildir" / "cur" / (new.name + ":2,S"))
    report = sync(kb, [docs], embedder=fake_embedder, log=lambda m: None)
    assert (report.added, report.updated, report.unchanged) == (0, 2, 3)  # (the two Words)
    paths = {p for (p,) in db.execute("SELECT path FROM files")}
    assert "Maildir/cur/" + new.name + ":2,S" in paths and len(paths) == 4
    for doc_id in ("pump.docx", "handbook.eml#pump.docx"):
        assert "[1] The button is on the left side." in db.execute(
            "SELECT text FROM documents WHERE doc_id=?", (doc_id,)).fetchone()[0]
    again = sync(kb, [docs], embedder=fake_embedder, log=lambda m: None)
    assert (again.updated, again.refreshed, again.unchanged) == (0, 0, 5)
