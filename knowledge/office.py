"""Office documents: Word (.docx), OpenDocument (.odt text, .odp slides, .ods sheets),
PowerPoint (.pptx) and Excel (.xlsx), each read as one Document of paragraphs, list items
("- " or "1. " marked), tables (Markdown rows) and headings (its sections).

A slide deck's slides are its sections, headed by their titles, with the speaker's notes
under "Notes"; a workbook's sheets are its sections, each a table. Every container is
checked against zip bombs before a library inflates it (``archives.check_zip``).

Example: ``doc = load_office(Path("pump.odt").read_bytes(), "pump.odt", ".odt")``.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from .archives import ArchiveError, check_zip, safe_xml
from .errors import LoadError
from .types import VISIBLE, Document, Section

SUFFIXES = (".docx", ".odt", ".odp", ".ods", ".pptx", ".xlsx")
_KIND = {".docx": "Word", ".odt": "OpenDocument", ".odp": "OpenDocument",
         ".ods": "OpenDocument", ".pptx": "PowerPoint", ".xlsx": "Excel"}
MAX_REPEAT = 10  # a spreadsheet's row or cell marked "repeated N times" is written at most
# this often (an empty one never): its 1,048,576 blank rows are no text
MAX_CELLS = 200_000  # cells read from one workbook; the rest is said to be left out
MAX_ODF_XML = 48 * 2**20  # bytes of an OpenDocument's content.xml: read whole into a tree
# (about 8 times as much memory), a larger one is refused
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a Compound File: a password-protected OOXML
# file (encrypted inside one) or an old binary .doc, .xls, .ppt


def load_office(data: bytes, rel: str, suffix: str) -> tuple[Document, list[str]]:
    """The Document of an office file (``suffix`` is its kind), and what was said about it."""
    kind = _KIND[suffix]
    if data.startswith(_OLE):
        raise LoadError(f"a password-protected or old binary {kind} file: open it and save it "
                        f"as {suffix} without a password to index it")
    try:
        check_zip(data)  # (the libraries inflate their parts whole, unbounded)
    except ArchiveError as err:
        raise LoadError(f"unreadable {kind} file: {err}") from None
    warnings: list[str] = []
    try:
        if suffix == ".docx":
            title, blocks = _docx(data)
        elif suffix == ".pptx":
            title, blocks = _pptx(data, warnings)
        elif suffix == ".xlsx":
            title, blocks = _xlsx(data, warnings)
        else:
            title, blocks = _opendocument(data, warnings)
    except (LoadError, MemoryError):
        raise
    except Exception as err:  # BadZipFile, PackageNotFoundError, XMLSyntaxError and friends
        message = " ".join(str(err).split())
        if "Memory allocation failed" in message:  # (libxml2's own heap ran out)
            raise MemoryError from None
        if isinstance(err, KeyError) and "There is no item named" in message:
            raise LoadError(f"unreadable {kind} file: no {kind} document inside the "
                            "zip") from None
        raise LoadError(f"unreadable {kind} file ({err.__class__.__name__}: "
                        f"{message[:120]})") from None
    text, sections = assemble(blocks)
    if not VISIBLE.search(text):
        raise LoadError(f"{kind} file has no text")
    title = (title or "").strip() or next((s.title for s in sections if s.level == 1),
                                          Path(rel).stem)
    return Document(doc_id=rel, text=text, source=rel, title=title,
                    sections=tuple(sections)), warnings


def assemble(blocks) -> tuple[str, list[Section]]:
    """One text of (text, heading level or 0, kind) blocks: blank lines between them, one
    newline between list items ("item") of a run; a heading block is a Section."""
    parts, sections, length, prev = [], [], 0, ""
    for text, level, kind in blocks:
        text = text.strip("\n")  # (a paragraph opening with line breaks)
        if not text.strip():
            continue
        if parts:
            sep = "\n" if kind == prev == "item" else "\n\n"
            parts.append(sep)
            length += len(sep)
        if level:
            sections.append(Section(length, level, " ".join(text.split())))
        parts.append(text)
        length += len(text)
        prev = kind
    return "".join(parts), sections


def markdown_row(cells, merged: bool = False) -> str:
    """A table row as Markdown, ``| a | b |`` ("" for a row of empty cells), each cell on
    one line, "|" escaped; ``merged``: a cell the same as the one before it is that cell,
    merged across (python-docx gives it once per column), and written once."""
    out: list[str] = []
    for cell in cells:
        t = " ".join(str(cell).split()).replace("|", "\\|")
        if not (merged and out and out[-1] == t):
            out.append(t)
    return "| " + " | ".join(out) + " |" if any(out) else ""


def _table(rows) -> tuple[str, int, str]:
    return "\n".join(r for r in map(markdown_row, rows) if r), 0, "table"


_NUMBER = re.compile(r"[-+]?[\d.,]+%?")


def _sheet(rows) -> tuple[str, int, str]:
    """A sheet's cells: under a header row (two or more names, no numbers), each row an item
    of "name: value" pairs, so that a row read alone still says what its values are
    ("- Model: P-100; Released: 2021-03-01"); without one, Markdown rows."""
    rows = [r for r in rows if any(str(c).strip() for c in r)]
    width = max(map(len, rows), default=0)
    used = [i for i in range(width) if any(i < len(r) and str(r[i]).strip() for r in rows)]
    if len(used) < width:  # (columns empty in every row: a sheet's layout, no text)
        rows = [_trimmed([r[i] if i < len(r) else "" for i in used]) for r in rows]
    header = [" ".join(str(c).split()) for c in rows[0]] if rows else []
    if (len(rows) < 2 or len(header) < 2 or not all(header)
            or any(_NUMBER.fullmatch(h) for h in header)):
        return _table(rows)
    lines = []
    for row in rows[1:]:
        pairs = [f"{header[i]}: {v}" if i < len(header) else v
                 for i, v in enumerate(" ".join(str(c).split()) for c in row) if v]
        lines.append("- " + "; ".join(pairs))
    return "\n".join(lines), 0, "table"


# --- Word ---------------------------------------------------------------------------------


def _docx(data: bytes) -> tuple[str, list]:
    import docx

    d = docx.Document(io.BytesIO(data))
    return d.core_properties.title or "", list(_docx_blocks(d))


def _docx_blocks(d):
    """(text, heading level or 0, kind) for paragraphs, list items ("- " marked) and tables
    (Markdown rows), in document order; content controls (``w:sdt``) are read through."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    def body(parent):  # (python-docx's iter_inner_content leaves out content controls)
        for child in parent:
            if child.tag == qn("w:p"):
                yield Paragraph(child, d._body)
            elif child.tag == qn("w:tbl"):
                yield Table(child, d._body)
            elif child.tag == qn("w:sdt") and not _docx_contents(child):
                content = child.find(qn("w:sdtContent"))
                if content is not None:
                    yield from body(content)

    notes, cited = _docx_notes(d), []

    def after(el):  # its footnotes and endnotes, "[1] ...", in the order they are cited
        for ref in el.iter(qn("w:footnoteReference"), qn("w:endnoteReference")):
            text = notes.get((ref.tag, ref.get(qn("w:id"))))
            if text and not _docx_aside(ref, el):
                cited.append(text)
                yield f"[{len(cited)}] {text}", 0, "text"

    count = 0  # (the number of the item in a run of numbered items)
    for item in body(d.element.body):
        if isinstance(item, Paragraph):
            text = _docx_text(item._p)
            if not text.strip():
                continue
            style = (item.style.name if item.style is not None else "") or ""
            level = 0
            m = re.match(r"Heading (\d)", style)
            if m:
                level = int(m.group(1))
            elif style == "Title":
                level = 1
            numbered = item._p.pPr is not None and item._p.pPr.numPr is not None
            if not level and (style.startswith("List") or numbered):
                if _numbered(d, item, style):  # "1. ", "2. ": "the fifth step" can be asked
                    count += 1
                    yield f"{count}. " + text, 0, "item"
                else:
                    yield "- " + text, 0, "item"
                    count = 0
            else:
                yield text, level, "text"
                count = 0
            yield from after(item._p)
        elif isinstance(item, Table):
            rows = []
            for row in item.rows:
                cells = [" ".join(_docx_text(p) for p in cell._tc.iter(qn("w:p"))
                                  if not _docx_aside(p, cell._tc))  # (nested tables too)
                         for cell in row.cells]
                rows.append(markdown_row(cells, merged=True))
            yield "\n".join(r for r in rows if r), 0, "table"
            yield from after(item._tbl)
            count = 0


def _docx_notes(d) -> dict:
    """(reference tag, id) -> the text of each footnote and endnote of the document."""
    from docx.oxml.ns import qn

    notes = {}
    for rel in d.part.rels.values():
        kind = rel.reltype.rsplit("/", 1)[-1]
        if kind not in ("footnotes", "endnotes") or rel.is_external:
            continue
        root = safe_xml(rel.target_part.blob)
        ref = qn(f"w:{kind[:-1]}Reference")
        for note in root.iter(qn(f"w:{kind[:-1]}")):
            text = " ".join(" ".join(_docx_text(p) for p in note.iter(qn("w:p"))).split())
            if text and note.get(qn("w:type")) in (None, "normal"):
                notes[(ref, note.get(qn("w:id")))] = text
    return notes


def _numbered(d, paragraph, style: str) -> bool:
    """Whether a list paragraph is numbered ("List Number" style, or a numbering whose
    format is not a bullet), not bulleted; unknown numbering reads as bullets."""
    if "Number" in style:
        return True
    num = None
    for ppr in (paragraph._p.pPr, getattr(paragraph.style.element, "pPr", None)
                if paragraph.style is not None else None):
        if ppr is not None and ppr.numPr is not None:
            num = ppr.numPr
            break
    if num is None or num.numId is None:
        return False
    try:
        numbering = d.part.numbering_part.element
        ilvl = num.ilvl.val if num.ilvl is not None else 0
        [abstract] = numbering.xpath(f'./w:num[@w:numId="{int(num.numId.val)}"]'
                                     "/w:abstractNumId/@w:val")
        formats = numbering.xpath(f'./w:abstractNum[@w:abstractNumId="{int(abstract)}"]'
                                  f'/w:lvl[@w:ilvl="{int(ilvl)}"]/w:numFmt/@w:val')
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        return False
    return bool(formats) and formats[0] not in ("bullet", "none")


def _docx_contents(sdt) -> bool:
    """Whether a content control is Word's table of contents (left out, as it was)."""
    from docx.oxml.ns import qn

    gallery = sdt.find(f"{qn('w:sdtPr')}/{qn('w:docPartObj')}/{qn('w:docPartGallery')}")
    return gallery is not None and gallery.get(qn("w:val"), "").startswith("Table of Contents")


def _docx_text(p) -> str:
    """A Word paragraph's text, as python-docx reads a run (text, tabs, breaks, non-breaking
    hyphens) but from every run in it: also inside insertions, content controls, smart tags,
    fields and hyperlinks, which python-docx leaves out. Not text: deleted or moved-away
    runs, a text box's (drawn elsewhere, and held twice: ``mc:Fallback``), field codes."""
    from docx.oxml.ns import qn

    text = {qn("w:t"): None, qn("w:tab"): "\t", qn("w:ptab"): "\t", qn("w:br"): "\n",
            qn("w:cr"): "\n", qn("w:noBreakHyphen"): "-"}
    out = []
    for run in p.iter(qn("w:r")):
        if _docx_aside(run, p):
            continue
        for el in run:
            if el.tag in text:
                out.append(text[el.tag] if text[el.tag] is not None else el.text or "")
    return "".join(out)


def _docx_aside(el, top) -> bool:
    """Whether ``el`` lies, below ``top``, in a part that is no text of ``top`` itself."""
    from docx.oxml.ns import qn

    return _under(el, top, {qn("w:del"), qn("w:moveFrom"), qn("w:txbxContent"), qn("w:pPr"),
                            "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
                            "Fallback"})


def _under(el, top, tags) -> bool:
    """Whether ``el`` lies, below ``top``, inside an element with one of ``tags``."""
    for parent in el.iterancestors():
        if parent is top:
            return False
        if parent.tag in tags:
            return True
    return False


# --- OpenDocument --------------------------------------------------------------------------

_ODF = {
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "draw": "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0",
    "presentation": "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0",
    "style": "urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    "svg": "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def _q(name: str) -> str:
    """"text:p" as lxml spells it: "{urn:...:text:1.0}p"."""
    prefix, local = name.split(":")
    return f"{{{_ODF[prefix]}}}{local}"


# not text of the document: comments, tracked deletions, declarations, a table of contents
# or an index (navigation, made of the headings), a note's body (read after its paragraph)
_ODF_ASIDE = {_q(n) for n in (
    "office:annotation", "office:annotation-end", "text:tracked-changes", "text:note",
    "text:table-of-content", "text:alphabetical-index", "text:illustration-index",
    "text:table-index", "text:object-index", "text:user-index", "text:variable-decls",
    "text:sequence-decls", "text:user-field-decls", "office:forms", "table:named-expressions",
    "text:ruby-text", "svg:title", "svg:desc", "presentation:notes", "office:scripts",
    "table:shapes")}


def _opendocument(data: bytes, warnings: list[str]) -> tuple[str, list]:
    """(title, blocks) of an OpenDocument text, presentation or spreadsheet."""
    import zipfile

    z = zipfile.ZipFile(io.BytesIO(data))
    names = set(z.namelist())
    size = z.getinfo("content.xml").file_size
    if size > MAX_ODF_XML:
        raise LoadError(f"its content is {size / 2**20:.0f} MB of XML (more than "
                        f"{MAX_ODF_XML // 2**20} MB is not read); split it to index it")
    content = safe_xml(z.read("content.xml"))
    styles = _odf_list_styles(content)
    if "styles.xml" in names:
        styles = {**_odf_list_styles(safe_xml(z.read("styles.xml"))), **styles}
    title = ""
    if "meta.xml" in names:
        found = safe_xml(z.read("meta.xml")).find(f".//{_q('dc:title')}")
        title = " ".join((found.text or "").split()) if found is not None else ""
    body = content.find(_q("office:body"))
    if body is None or not len(body):
        raise LoadError("unreadable OpenDocument file: no document body in it")
    reader = _OdfReader(styles)
    top = body[0]  # office:text, office:presentation, office:spreadsheet (office:drawing...)
    blocks: list = []
    if top.tag == _q("office:presentation") or top.tag == _q("office:drawing"):
        pages = [page for page in top if page.tag == _q("draw:page")]
        for n, page in enumerate(pages, 1):
            blocks += reader.slide(page, n)
    elif top.tag == _q("office:spreadsheet"):
        for sheet in top:
            if sheet.tag == _q("table:table") and reader.cells <= MAX_CELLS:
                notes: list[str] = []
                blocks.append((sheet.get(_q("table:name")) or "Sheet", 1, "text"))
                blocks.append(_sheet(reader.rows(sheet, notes)))
                blocks += [(note, 0, "text") for note in notes]
    else:
        blocks = list(reader.blocks(top))
    if reader.cut:
        warnings.append(f"repeated rows or cells written at most {MAX_REPEAT} times each")
    if reader.cells > MAX_CELLS:
        warnings.append(f"only the first {MAX_CELLS} cells read")
    return title, blocks


def _odf_list_styles(root) -> dict[str, dict[int, bool]]:
    """List style name -> {level: numbered?} ("1." lists against bullets)."""
    styles = {}
    for s in root.iter(_q("text:list-style")):
        levels = {}
        for lvl in s:
            if lvl.tag in (_q("text:list-level-style-number"), _q("text:list-level-style-bullet"),
                           _q("text:list-level-style-image")):
                try:
                    n = int(lvl.get(_q("text:level"), "1"))
                except ValueError:
                    continue
                levels[n] = (lvl.tag == _q("text:list-level-style-number")
                             and bool(lvl.get(_q("style:num-format"))))
        styles[s.get(_q("style:name"), "")] = levels
    return styles


class _OdfReader:
    """Blocks of an OpenDocument body, in document order."""

    def __init__(self, list_styles: dict):
        self.list_styles = list_styles
        self.cut = False  # (a repeat was cut to MAX_REPEAT)
        self.cells = 0  # (table cells read, against MAX_CELLS)

    def inline(self, el, notes: list | None = None) -> str:
        """A paragraph's text: spans, links, spaces (``text:s``), tabs, line breaks; a
        note's body goes to ``notes``, a drawing's text is no part of it."""
        out = [el.text or ""]
        for child in el:
            tag = child.tag
            if tag == _q("text:s"):
                out.append(" " * min(_count(child, "text:c"), 100))
            elif tag == _q("text:tab"):
                out.append("\t")
            elif tag == _q("text:line-break"):
                out.append("\n")
            elif tag == _q("text:note"):
                if notes is not None:
                    cite = child.find(_q("text:note-citation"))
                    body = child.find(_q("text:note-body"))
                    if body is not None:
                        mark = (cite.text or "").strip() if cite is not None else ""
                        text = " ".join(" ".join(self.inline(p) for p in body.iter(
                            _q("text:p"), _q("text:h"))).split())
                        notes.append(f"[{mark}] {text}" if mark else text)
            elif tag not in _ODF_ASIDE and tag != _q("draw:frame") and isinstance(tag, str):
                out.append(self.inline(child, notes))
            out.append(child.tail or "")
        return "".join(out)

    def blocks(self, el, listed: bool = False):
        """(text, heading level or 0, kind) of the block elements under ``el``; ``listed``:
        its paragraphs are bulleted (a slide's outline)."""
        for child in el:
            tag = child.tag
            if not isinstance(tag, str) or tag in _ODF_ASIDE:
                continue
            if tag in (_q("text:p"), _q("text:h")):
                notes: list[str] = []
                text = self.inline(child, notes)
                heading = 0
                if tag == _q("text:h"):
                    heading = max(1, min(_count(child, "text:outline-level"), 6))
                elif child.get(_q("text:style-name")) == "Title":
                    heading = 1
                if listed and not heading:
                    yield "- " + " ".join(text.split("\n")), 0, "item"
                else:
                    yield text, heading, "text"
                for note in notes:
                    yield note, 0, "text"
                yield from self.frames(child)
            elif tag == _q("text:list"):
                yield from self.items(child, 1, child.get(_q("text:style-name")) or "")
            elif tag == _q("text:numbered-paragraph"):
                yield from self.items(child, 1, child.get(_q("text:list-id")) or "")
            elif tag == _q("table:table"):
                notes = []
                yield _table(self.rows(child, notes))
                for note in notes:
                    yield note, 0, "text"
            else:  # sections, frames, text boxes, shapes, groups: read what they hold
                yield from self.blocks(child, listed)

    def frames(self, paragraph):
        """The text boxes drawn in a paragraph (anchored to it), after it."""
        for box in paragraph.iter(_q("draw:text-box")):
            outer = next(box.iterancestors(_q("draw:text-box")), None)
            if outer is None or all(a is not paragraph for a in outer.iterancestors()):
                yield from self.blocks(box)  # (a box in a box: read with the outer one)

    def items(self, lst, depth: int, style: str):
        """A list's items, "- " or "1. " marked, nested lists indented."""
        numbered = self.list_styles.get(style, {}).get(depth, False)
        count = 0
        for item in lst:
            if item.tag not in (_q("text:list-item"), _q("text:list-header"), _q("text:p"),
                                _q("text:h")):
                continue
            count += 1
            mark = f"{count}. " if numbered else "- "
            pad = "  " * (depth - 1)
            first = True
            parts = [item] if item.tag in (_q("text:p"), _q("text:h")) else list(item)
            for child in parts:
                if child.tag == _q("text:list"):
                    yield from self.items(child, depth + 1,
                                          child.get(_q("text:style-name")) or style)
                elif child.tag == _q("text:h"):  # (a numbered heading: LibreOffice lists it)
                    notes: list[str] = []
                    yield (self.inline(child, notes),
                           max(1, min(_count(child, "text:outline-level"), 6)), "text")
                elif child.tag == _q("text:p"):
                    notes = []
                    text = " ".join(self.inline(child, notes).split("\n"))
                    yield pad + (mark if first else " " * len(mark)) + text, 0, "item"
                    first = False
                    for note in notes:
                        yield note, 0, "text"
                elif isinstance(child.tag, str) and child.tag not in _ODF_ASIDE:
                    yield from self.blocks(child)

    def rows(self, table, notes: list[str]) -> list[list[str]]:
        """A table's rows of cell texts, repeats written out (``repeat``), within MAX_CELLS;
        its cells' footnotes go to ``notes``."""
        rows = []
        for row in table.iter(_q("table:table-row")):
            if _ancestor_table(row) is not table:
                continue  # (a table nested in a cell: read as that cell's text)
            cells = []
            for cell in row:
                if cell.tag == _q("table:covered-table-cell"):
                    continue  # (the part of a merged cell that the cell before it covers)
                if cell.tag != _q("table:table-cell"):
                    continue
                text = self.cell(cell, notes)
                cells += [text] * self.repeat(cell, "table:number-columns-repeated", text)
            cells = _trimmed(cells)
            n = self.repeat(row, "table:number-rows-repeated", "".join(cells))
            self.cells += len(cells) * n
            if self.cells > MAX_CELLS:
                break
            rows += [cells] * n
        return rows

    def cell(self, cell, notes: list[str]) -> str:
        """A cell's text (a date as its value, 2024-03-01): its paragraphs, not its comment."""
        date = cell.get(_q("office:date-value"))
        if cell.get(_q("office:value-type")) == "date" and date:
            return date.removesuffix("T00:00:00")
        return " ".join(self.inline(p, notes) for p in cell.iter(_q("text:p"), _q("text:h"))
                        if not _under(p, cell, _ODF_ASIDE))  # (a comment, a note's body)

    def repeat(self, el, attribute: str, text: str) -> int:
        n = _count(el, attribute)
        if n > MAX_REPEAT and text.strip():
            self.cut = True
        return min(n, MAX_REPEAT)  # (a run of empty cells too: 16,384 columns are no text)

    def slide(self, page, number: int) -> list:
        """A slide: its title as a heading ("Slide 3" without one), its shapes' text, then
        its speaker's notes under "Notes"."""
        title, rest = "", []
        for frame in page:
            kind = frame.get(_q("presentation:class"))
            if frame.tag in _ODF_ASIDE or kind in _SLIDE_CHROME:
                continue  # (the notes, read below; the slide's number, footer, date)
            if kind == "title" and not title:
                title = " ".join(" ".join(self.inline(p) for p in frame.iter(_q("text:p")))
                                 .split())
            else:
                rest.append(frame)
        name = page.get(_q("draw:name")) or ""
        if re.fullmatch(r"page\d+", name):  # (a name the program gave it)
            name = ""
        out = [(title or name or f"Slide {number}", 1, "text")]
        for frame in rest:
            out += self.blocks(frame, frame.get(_q("presentation:class")) == "outline")
        notes = page.find(_q("presentation:notes"))
        if notes is not None:
            spoken = []
            for frame in notes:
                if frame.get(_q("presentation:class")) == "notes":
                    spoken += self.blocks(frame)
            if any(t.strip() for t, _, _ in spoken):
                out += [("Notes", 2, "text")] + spoken
        return out


_SLIDE_CHROME = ("page-number", "footer", "header", "date-time", "page")  # (a slide's
# number, its footer and date as every slide repeats them; a notes page's picture of its slide)


def _ancestor_table(row):
    for parent in row.iterancestors(_q("table:table")):
        return parent
    return None


def _count(el, attribute: str) -> int:
    try:
        return max(1, int(el.get(_q(attribute), "1")))
    except ValueError:
        return 1


# --- PowerPoint ----------------------------------------------------------------------------

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"


def _pptx(data: bytes, warnings: list[str]) -> tuple[str, list]:
    """(title, blocks) of a slide deck: each slide's title a heading ("Slide 3" without
    one), its shapes' text in order (groups read through, tables as rows), then its notes."""
    from pptx import Presentation

    from pptx.enum.shapes import PP_PLACEHOLDER

    deck = Presentation(io.BytesIO(data))
    blocks: list = []
    unread = 0
    for number, slide in enumerate(deck.slides, 1):
        title = next((shape for shape in slide.placeholders if shape.placeholder_format.type in (
            PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE)),
            None)  # (not ``shapes.title``: LibreOffice's untitled body is its first placeholder)
        heading = " ".join(title.text_frame.text.split()) if title is not None else ""
        blocks.append((heading or f"Slide {number}", 1, "text"))
        for shape in slide.shapes:
            if title is None or shape.shape_id != title.shape_id:
                try:
                    blocks += _pptx_shape(shape)
                except (NotImplementedError, ValueError, KeyError, AttributeError):
                    unread += 1  # (a shape python-pptx cannot read: the others are read)
        frame = slide.notes_slide.notes_text_frame if slide.has_notes_slide else None
        if frame is not None and VISIBLE.search(frame.text):
            blocks.append(("Notes", 2, "text"))
            blocks += _pptx_paragraphs(frame, listed=False)
    if unread:
        warnings.append(f"{unread} shapes python-pptx cannot read left out")
    return deck.core_properties.title or "", blocks


def _pptx_shape(shape) -> list:
    from pptx.enum.shapes import PP_PLACEHOLDER
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):  # (not ``shape_type``: it raises on a shape without
        # geometry, as Google Slides, Keynote and LibreOffice write them)
        return [b for inner in shape.shapes for b in _pptx_shape(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return [_table([cell.text if not cell.is_spanned else "" for cell in row.cells]
                       for row in shape.table.rows)]
    if not shape.has_text_frame:
        return []  # (a picture, a chart: no text of their own here)
    kind = shape.placeholder_format.type if shape.is_placeholder else None
    if kind in (PP_PLACEHOLDER.SLIDE_NUMBER, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE,
                PP_PLACEHOLDER.HEADER):
        return []  # (what every slide repeats)
    listed = kind in (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)  # (bulleted unless a
    # paragraph says not)
    return _pptx_paragraphs(shape.text_frame, listed)


def _pptx_paragraphs(frame, listed: bool) -> list:
    """A text frame's paragraphs: items where the slide shows a bullet or a number."""
    out, count = [], 0
    for p in frame.paragraphs:
        text = p.text.replace("\v", "\n")  # (python-pptx's line break)
        if not VISIBLE.search(text):
            continue
        props = p._p.pPr
        bullet = {child.tag[len(_A):] for child in props} if props is not None else set()
        if "buAutoNum" in bullet:
            count += 1
            mark = f"{count}. "
        elif "buChar" in bullet or (listed and "buNone" not in bullet):
            mark, count = "- ", 0
        else:
            out.append((text, 0, "text"))
            count = 0
            continue
        out.append(("  " * p.level + mark + " ".join(text.split("\n")), 0, "item"))
    return out


# --- Excel -------------------------------------------------------------------------------


def _xlsx(data: bytes, warnings: list[str]) -> tuple[str, list]:
    """(title, blocks) of a workbook: each sheet a heading and a table of its cells' values
    (as last computed, for a formula), empty rows and trailing empty cells left out."""
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        blocks, cells = [], 0
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # (the cells there are, not the range the file declares:
            # "A1:XFD1048576" would be 17 billion empty cells to walk)
            rows = []
            for row in sheet.iter_rows(values_only=True):
                cells += len(row)
                if cells > MAX_CELLS:
                    warnings.append(f"only the first {MAX_CELLS} cells read")
                    break
                rows.append(_trimmed(_squeezed([_cell(v) for v in row])))
            blocks += [(sheet.title, 1, "text"), _sheet(rows)]
            if cells > MAX_CELLS:
                break
        return book.properties.title or "", blocks
    finally:
        book.close()


def _trimmed(values: list[str]) -> list[str]:
    """A row without its trailing empty cells."""
    while values and not str(values[-1]).strip():
        values.pop()
    return values


def _squeezed(values: list[str]) -> list[str]:
    """A row with each run of empty cells kept to MAX_REPEAT (16,384 columns are no text)."""
    out, empty = [], 0
    for v in values:
        empty = 0 if v else empty + 1
        if empty <= MAX_REPEAT:
            out.append(v)
    return out


def _cell(value) -> str:
    """A cell's value as a spreadsheet shows it, roughly: 12 not 12.0, dates as 2024-03-01."""
    import datetime

    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)
