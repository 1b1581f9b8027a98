import gzip
import io
import shutil

import pytest

from conftest import kind_at, write_corpus
from knowledge.loaders import LoadError, load_file, walk
from knowledge.types import Section
from pdfgen import make_pdf


def load(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return load_file(p, name)


def test_txt_normalises_newlines(tmp_path):
    [doc], warnings = load(tmp_path, "a.txt", "line one\r\nline two\r\n")
    assert doc.text == "line one\nline two\n"
    assert (doc.doc_id, doc.source, doc.title) == ("a.txt", "a.txt", "a")
    assert warnings == []


def test_markdown_headings_become_sections_but_not_in_code(tmp_path):
    text = "# Guide\n\nIntro.\n\n## Install\n\n```\n# not a heading\n```\n\n### Linux\n\nRun it.\n"
    [doc], _ = load(tmp_path, "g.md", text)
    assert doc.title == "Guide"
    assert doc.sections == (Section(0, 1, "Guide"), Section(text.index("## Install"), 2, "Install"),
                            Section(text.index("### Linux"), 3, "Linux"))
    assert doc.heading_at(doc.text.index("Run it")) == "Guide > Install > Linux"
    assert doc.heading_at(doc.text.index("Intro")) == "Guide"


def test_html_visible_text_title_and_headings(tmp_path):
    html = ("<html><head><title>Pump manual</title><style>p{color:red}</style></head><body>"
            "<script>alert(1)</script><h1>Reset</h1><p>Hold the <b>red</b> button.</p>"
            "<!-- a comment --><ul><li>Wait</li><li>Release</li></ul>"
            "<h2>Warranty</h2><p>Two years.</p></body></html>")
    [doc], _ = load(tmp_path, "m.html", html)
    assert doc.title == "Pump manual"
    assert doc.text == ("Reset\n\nHold the red button.\n\n- Wait\n- Release\n\nWarranty\n\n"
                        "Two years.")
    assert [(s.level, s.title, doc.text[s.start:s.start + len(s.title)]) for s in doc.sections] \
        == [(1, "Reset", "Reset"), (2, "Warranty", "Warranty")]


def test_pdf_pages_are_kept(tmp_path):
    [doc], _ = load(tmp_path, "r.pdf", make_pdf(["First page text.", "Second page text."]))
    assert doc.text == "First page text.\n\nSecond page text."
    assert doc.page_starts == (0, 18)
    assert doc.page_at(doc.text.index("Second")) == 2
    assert doc.page_at(0) == 1


def test_pdf_without_text_is_reported(tmp_path):
    with pytest.raises(LoadError, match="no extractable text"):
        load(tmp_path, "scan.pdf", make_pdf([None, None]))


def test_corrupt_pdf_is_reported(tmp_path):
    with pytest.raises(LoadError, match="unreadable PDF"):
        load(tmp_path, "bad.pdf", b"%PDF-1.4 this is not really a pdf")


def test_docx_paragraphs_headings_tables(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("Manual", level=1)
    d.add_paragraph("Press start.")
    d.add_heading("Parts", level=2)
    table = d.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "bolt"
    table.rows[0].cells[1].text = "M4"
    p = tmp_path / "w.docx"
    d.save(p)
    [doc], _ = load_file(p, "w.docx")
    assert doc.text == "Manual\n\nPress start.\n\nParts\n\n| bolt | M4 |"
    assert doc.title == "Manual"
    assert doc.heading_at(doc.text.index("bolt")) == "Manual > Parts"


def test_word_text_in_nested_tables_insertions_and_content_controls(tmp_path):
    """python-docx reads the runs directly in a paragraph and the paragraphs directly in a
    cell: text in a table inside a cell, a tracked insertion or a content control was lost."""
    import docx
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    d = docx.Document()
    d.add_paragraph("Intro.")
    outer = d.add_table(rows=1, cols=2)
    outer.rows[0].cells[0].text = "Part"
    inner = outer.rows[0].cells[1].add_table(rows=1, cols=1)
    inner.rows[0].cells[0].text = "Inner torque 45 Nm"
    p = d.add_paragraph("Before ")
    p._p.append(parse_xml(f'<w:ins {nsdecls("w")} w:id="1" w:author="a"><w:r><w:t>inserted'
                          "</w:t></w:r></w:ins>"))
    p._p.append(parse_xml(f'<w:del {nsdecls("w")} w:id="2" w:author="a"><w:r><w:delText>'
                          "removed</w:delText></w:r></w:del>"))
    d.element.body.insert(len(d.element.body) - 1, parse_xml(
        f'<w:sdt {nsdecls("w")}><w:sdtContent><w:p><w:r><w:t>Controlled: seal type X</w:t>'
        "</w:r></w:p></w:sdtContent></w:sdt>"))
    # tab stops are no tabs; a non-breaking hyphen is one; a text box (held twice, as the
    # drawing and its fallback) and a run moved away are not this paragraph's text
    q = d.add_paragraph()
    q._p.append(parse_xml(
        f'<w:pPr {nsdecls("w")}><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>'))
    q._p.append(parse_xml(f'<w:r {nsdecls("w")}><w:t>co</w:t><w:noBreakHyphen/><w:t>operate'
                          "</w:t><w:tab/><w:t>now</w:t></w:r>"))
    mc = 'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"'
    q._p.append(parse_xml(
        f'<w:r {nsdecls("w")} {mc}><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
        "<w:txbxContent><w:p><w:r><w:t>BOXED</w:t></w:r></w:p></w:txbxContent></w:drawing>"
        "</mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>BOXED</w:t></w:r>"
        "</w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r>"))
    q._p.append(parse_xml(f'<w:moveFrom {nsdecls("w")} w:id="3" w:author="a"><w:r><w:t>'
                          "moved</w:t></w:r></w:moveFrom>"))
    buf = io.BytesIO()
    d.save(buf)
    [doc], _ = load(tmp_path, "w.docx", buf.getvalue())
    assert doc.text == ("Intro.\n\n| Part | Inner torque 45 Nm |\n\nBefore inserted\n\n"
                        "Controlled: seal type X\n\nco-operate\tnow")


def test_jsonl_rows_metadata_and_bad_lines(tmp_path):
    content = ('{"id": "a", "title": "A", "text": "alpha", "year": 2020}\n'
               "{broken\n"
               '{"id": "b", "text": "beta"}\n'
               '{"id": "c", "title": "no text"}\n'
               '{"id": "a", "text": "dup"}\n')
    docs, warnings = load(tmp_path, "rows.jsonl", content)
    assert [(d.doc_id, d.title, d.text, d.metadata, d.source) for d in docs] == [
        ("rows.jsonl#a", "A", "alpha", {"year": 2020}, "rows.jsonl"),
        ("rows.jsonl#b", "", "beta", {}, "rows.jsonl")]
    assert warnings == [
        "line 2: not valid JSON (Expecting property name enclosed in double quotes), row skipped",
        "line 4: no 'text' field, row skipped",
        "line 5: duplicate id 'a', row skipped",
    ]


def test_jsonl_gz_and_csv(tmp_path):
    docs, _ = load(tmp_path, "r.jsonl.gz", gzip.compress(b'{"id": "z", "text": "zed"}\n'))
    assert [(d.doc_id, d.text) for d in docs] == [("r.jsonl.gz#z", "zed")]
    docs, _ = load(tmp_path, "t.csv", "id,title,text,lang\n1,One,first row,en\n2,Two,second,fr\n")
    assert [(d.doc_id, d.title, d.text, d.metadata) for d in docs] == [
        ("t.csv#1", "One", "first row", {"lang": "en"}), ("t.csv#2", "Two", "second", {"lang": "fr"})]


def test_rows_without_an_id_are_each_their_own_document(tmp_path):
    # (every row is kept, named by its line: none is taken for a duplicate of another)
    docs, warnings = load(tmp_path, "a.csv", "text\nOwls hunt at night.\nHawks hunt by day.\n"
                          "Penguins cannot fly.\n")
    assert [(d.doc_id, d.text) for d in docs] == [
        ("a.csv#line-2", "Owls hunt at night."), ("a.csv#line-3", "Hawks hunt by day."),
        ("a.csv#line-4", "Penguins cannot fly.")]
    assert warnings == []
    docs, warnings = load(tmp_path, "b.jsonl", '{"text": "one"}\n{"text": "two"}\n'
                          '{"id": "line-1", "text": "an id like a line"}\n')
    assert [d.doc_id for d in docs] == ["b.jsonl#line-1", "b.jsonl#line-2"]
    assert warnings == ["line 3: duplicate id 'line-1', row skipped"]


def test_jsonl_with_no_usable_row_fails(tmp_path):
    with pytest.raises(LoadError, match="no usable rows"):
        load(tmp_path, "x.jsonl", "not json\nstill not\n")


@pytest.mark.parametrize("name,content,reason", [
    ("bin.txt", b"\x00\x01\x02\x03ELF", "binary content"),
    ("empty.txt", b"", "empty file"),
    ("blank.md", b"  \n\n ", "empty file"),
    ("bad.jsonl.gz", b"not gzip at all", "not a valid gzip"),
    ("bad.docx", b"PK not a zip", "unreadable Word file"),
])
def test_unusable_files_raise_with_reason(tmp_path, name, content, reason):
    with pytest.raises(LoadError, match=reason):
        load(tmp_path, name, content)


def test_markdown_headings_closing_hashes_and_fences(tmp_path):
    text = ("# Guide ##\n\n## C# and F#\n\n```\n# a comment, not a heading\n```\n\n"
            "### Wide" + " " * 5000 + "title\n\n# ##\n\nbody\n")
    [doc], _ = load(tmp_path, "g.md", text)
    assert [(s.level, s.title) for s in doc.sections] == [(1, "Guide"), (2, "C# and F#"),
                                                          (3, "Wide title")]


VAULT_NOTE = """---
title: NAS setup
tags: [homelab, storage]
aliases:
  - NAS
created: 2023-01-02
---
# NAS

See [[Backups|the backup plan]], [[Network#VLANs]] and [[#Disks]]. ![[rack.png]]
%% ask Bob about the UPS %%
> [!tip] Scrub monthly
> Run `zpool scrub tank`; ==check the report== after. ^scrub1
> [!warning]-
> Never pull a disk while it resilvers.

```bash
if [[ -f /etc/nas ]]; then echo "%% and == stay"; fi
```
"""


def test_front_matter_is_metadata_and_obsidian_marks_read_as_its_reading_view(tmp_path):
    [doc], _ = load(tmp_path, "NAS.md", VAULT_NOTE)
    assert doc.title == "NAS setup"
    assert doc.metadata == {"title": "NAS setup", "tags": ["homelab", "storage"],
                            "aliases": ["NAS"], "created": "2023-01-02"}
    assert doc.text == (
        "# NAS\n\nSee the backup plan, Network > VLANs and Disks. \n\n"
        "> Scrub monthly\n> Run `zpool scrub tank`; check the report after.\n> Warning\n"
        "> Never pull a disk while it resilvers.\n\n"
        '```bash\nif [[ -f /etc/nas ]]; then echo "%% and == stay"; fi\n```\n')
    assert doc.sections == (Section(0, 1, "NAS"),)
    plain = "Use 100%% of it: a == b and c == d.\n\n---\n\nno wiki links here %% either\n"
    [doc], _ = load(tmp_path, "printf.md", plain)  # (no link, no callout: not a vault note)
    assert doc.text == plain and doc.metadata == {}
    rule = "---\nJust a line between two rules\n---\n\ntext\n"  # (YAML, but no mapping)
    [doc], _ = load(tmp_path, "rule.md", rule)
    assert doc.text == rule
    with pytest.raises(LoadError, match="no text"):  # (front matter alone)
        load(tmp_path, "empty.md", "---\ntitle: x\n---\n")
    aliases = "---\na: &x [1, 2]\n" + "".join(f"b{i}: [*x, *x, *x]\n" for i in range(40)) + \
        "---\nbody\n"  # (nested aliases: nothing nested is kept, so nothing blows up)
    [doc], _ = load(tmp_path, "alias.md", aliases)
    assert doc.metadata == {"a": ["1", "2"]} and doc.text == "body\n"
    typed = "---\nzip: 01234\nversion: 1.10\ndraft: no\non: push\nscore: .nan\n---\nbody\n"
    [doc], _ = load(tmp_path, "typed.md", typed)  # (values as written, not as YAML 1.1 reads)
    assert doc.metadata == {"zip": "01234", "version": "1.10", "draft": "no", "on": "push",
                            "score": ".nan"}
    code = ("# Arrays\n\nUse the %%timeit magic, then the %%bash magic; press ^C to stop; "
            "==old== stays.\n\n```python\nnp.array([[1, 2]])\n```\n\nOr `x[[0]]` inline.\n")
    [doc], _ = load(tmp_path, "np.md", code)  # ([[ ]] only in code: not a vault note)
    assert doc.text == code
    template = "---\ncreated: {{date:YYYY-MM-DD}}\ntags:\n  - daily\n---\n# {{date}}\n\nPlan.\n"
    [doc], _ = load(tmp_path, "Daily template.md", template)  # (a template: no YAML)
    assert doc.metadata == {"created": "{{date:YYYY-MM-DD}}", "tags": ["daily"]}
    assert doc.text == "# {{date}}\n\nPlan.\n"


def test_a_file_of_only_invisible_characters_is_no_text(tmp_path):
    with pytest.raises(LoadError, match="no text"):
        load(tmp_path, "zw.txt", "\u200b\u200c \n\u2060\ufeff\u200e\t\n".encode() * 50)


def test_a_utf8_mark_before_other_bytes_is_dropped(tmp_path):
    [doc], warnings = load(tmp_path, "bom.md", b"\xef\xbb\xbf# BOM Heading\n\nCaf\xe9 cr\xe8me, "
                                             b"d\xe9j\xe0 vu.\n")
    assert doc.title == "BOM Heading" and doc.text.startswith("# BOM Heading")
    assert "Café crème" in doc.text and warnings[0].startswith("not valid UTF-8")


def test_invalid_utf8_is_decoded_with_a_warning(tmp_path):
    [doc], warnings = load(tmp_path, "latin.txt", "Café crème brûlée, déjà vu à Paris. " .encode("cp1252") * 5)
    assert doc.text.startswith("Café crème brûlée")
    assert len(warnings) == 1 and warnings[0].startswith("not valid UTF-8 (byte 3); read as")


def test_walk_filters_hidden_and_globs(tmp_path):
    write_corpus(tmp_path, {"a.md": "x", "b.txt": "x", "img.png": "x", ".secret.txt": "x",
                            ".git/config.txt": "x", "drafts/c.md": "x", "sub/d.pdf": "x"})
    assert walk(tmp_path) == (["a.md", "b.txt", "drafts/c.md", "sub/d.pdf"], 1)
    assert walk(tmp_path, include=["*.md"])[0] == ["a.md", "drafts/c.md"]
    assert walk(tmp_path, exclude=["drafts/*", "*.pdf"])[0] == ["a.md", "b.txt"]


def test_walk_reads_a_sphinx_build_once(tmp_path):
    """A Sphinx HTML build holds every page twice, as HTML and under _sources/ as its RST:
    the pages are read, their sources not (a _sources folder elsewhere is a folder)."""
    write_corpus(tmp_path, {"html/searchindex.js": "x", "html/bgp.html": "x",
                            "html/_sources/bgp.rst.txt": "x", "notes/_sources/a.md": "x"})
    assert walk(tmp_path)[0] == ["html/bgp.html", "notes/_sources/a.md"]


def test_html_manual_drops_navigation_keeps_code_and_tables(tmp_path):
    """A Texinfo-style page: its navigation header, menu, mini and whole table of contents
    are left out; <pre> keeps its lines and indentation; a data table becomes Markdown rows, and an
    admonition laid out as a table stays prose."""
    html = ("<html><body><div class='header'><p>Next: <a href='b.html'>Plotting</a>, Up: "
            "<a href='index.html'>Top</a></p></div><hr><nav>Home | Docs</nav>"
            "<h3>1.2 Simple<!-- x --> Examples<a class='copiable-anchor' href='#s'> &para;</a></h3>"
            "<p>Type this:</p>"
            "<pre class='example'>function y = f (x)\n  y = x^2;\nendfunction\n</pre>"
            "<ul class='section-toc'><li><a href='#a'>Elementary Calculations</a></li></ul>"
            "<div class='Contents_element' id='SEC_Contents'><h2>Table of Contents</h2>"
            "<div class='contents'><ul><li><a href='#q'>2.2 Quitting Octave</a></li></ul>"
            "</div></div>"
            "<table><tr><th>Mode</th><th>Rate</th></tr><tr><td>Eco</td><td>5 | 6</td></tr>"
            "</table><table summary='Tip'><tr><td><img alt='[Tip]'></td><th>Tip</th></tr>"
            "<tr><td>Save often.</td></tr></table>"
            "<dl><dt><span class='category'>: </span><strong>ischar</strong> (x)"
            "<a href='#i' class='headerlink'>¶</a></dt>"
            "<dd>Return true.</dd></dl>"
            "<div class='navfooter'>Prev | Next</div></body></html>")
    [doc], _ = load(tmp_path, "ex.html", html)
    assert "¶" not in doc.text  # permalinks (Texinfo's copiable-anchor, Sphinx's headerlink)
    assert doc.text == ("1.2 Simple Examples\n\nType this:\n\nfunction y = f (x)\n  y = x^2;\n"
                        "endfunction\n\n| Mode | Rate |\n| Eco | 5 \\| 6 |\n\nTip\n\nSave often.\n\n"
                        "ischar (x)\n\nReturn true.")
    assert doc.sections == (Section(0, 3, "1.2 Simple Examples"),)


def test_mdbook_heading_links_keep_their_text(tmp_path):
    """mdBook wraps each heading in <a class="header">: the heading's words stay in the text
    (a Texinfo <div class="header"> is still navigation, and mdBook's theme menu too)."""
    html = ("<html><body><div class='header'>Next: Plotting</div>"
            "<ul id='theme-list' role='menu'><li role='none'><button role='menuitem'>"
            "Light (default)</button></li><li><button>Coal</button></li></ul>"  # (a UI menu)
            "<h2 id='cf'><a class='header' href='#cf'>Control Flow</a></h2>"
            "<p>Run code on a condition.</p></body></html>")
    [doc], _ = load(tmp_path, "ch03.html", html)
    assert doc.text == "Control Flow\n\nRun code on a condition."
    assert doc.sections == (Section(0, 2, "Control Flow"),)


def test_docx_lists_stay_items(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("Steps:")
    d.add_paragraph("Unpack the pump.", style="List Bullet")
    d.add_paragraph("Connect the hose.", style="List Bullet")
    d.add_paragraph("Done.")
    d.save(tmp_path / "l.docx")
    [doc], _ = load_file(tmp_path / "l.docx", "l.docx")
    assert doc.text == "Steps:\n\n- Unpack the pump.\n- Connect the hose.\n\nDone."


def test_docx_numbered_lists_keep_their_numbers(tmp_path):
    """Numbered items were written "- " like bullets, so "what is the fifth step?" could not
    be answered (a user's trial); they are "1. ", "2. " (a run of them numbered from 1), by
    the "List Number" style or by a numbering whose format is decimal; bullets stay "- "."""
    import copy

    import docx

    d = docx.Document()
    d.add_paragraph("Restore:")
    for step in ("Announce the incident.", "Stop the database.", "Restore the backup."):
        d.add_paragraph(step, style="List Number")
    d.add_paragraph("Then check:")
    numbered = d.styles["List Number"].element.pPr.numPr  # (its decimal numbering, set on
    for check in ("Read the log.", "Run a query."):       # plain paragraphs)
        p = d.add_paragraph(check)
        p._p.get_or_add_pPr().append(copy.deepcopy(numbered))
    d.add_paragraph("Tools:")
    d.add_paragraph("pgbackrest", style="List Bullet")
    d.save(tmp_path / "n.docx")
    [doc], _ = load_file(tmp_path / "n.docx", "n.docx")
    assert doc.text == ("Restore:\n\n1. Announce the incident.\n2. Stop the database.\n"
                        "3. Restore the backup.\n\nThen check:\n\n1. Read the log.\n"
                        "2. Run a query.\n\nTools:\n\n- pgbackrest")


def test_html_table_cells_and_headings_keep_words_whole(tmp_path):
    """Inline markup inside a word stays inside it in a table cell and a section title (a
    DocBook table's "<strong>k</strong>ill" and "lib<em>foo</em>1" are "kill" and "libfoo1",
    not "k ill"); a line break or paragraph in a cell is a space."""
    html = ("<html><body><h2><code>os</code>.path — <em>paths</em></h2><table>"
            "<tr><th>Key</th><th>Action</th></tr>"
            "<tr><td><code>k</code></td><td><strong>k</strong>ill all (<a href='#s'>SAK</a>)"
            "</td></tr><tr><td><code>lib<em>foo</em>1</code></td><td><p>shared</p><p>library"
            "</p>one<br>two</td></tr></table></body></html>")
    [doc], _ = load(tmp_path, "t.html", html)
    assert doc.text == ("os.path — paths\n\n| Key | Action |\n| k | kill all (SAK) |\n"
                        "| libfoo1 | shared library one two |")
    assert doc.sections == (Section(0, 2, "os.path — paths"),)


def test_html_layout_table_cells_stay_apart(tmp_path):
    """A one-row table laid out as a list (Doxygen's parameters) keeps a space between its
    cells ("key may contain nulls", not "keymay contain nulls")."""
    html = ("<html><body><dl class='params'><dt>Parameters</dt><dd><table class='params'>"
            "<tr><td class='paramname'>key</td><td>may contain nulls.</td></tr></table></dd>"
            "</dl></body></html>")
    [doc], _ = load(tmp_path, "p.html", html)
    assert doc.text == "Parameters\n\nkey may contain nulls."


def test_doxygen_page_title_and_member_tables(tmp_path):
    """A Doxygen page: its header's title stays (its links to the page's parts, and the
    breadcrumbs, are navigation), a heading row inside a member table is a section, and the
    table's empty separator rows are left out."""
    html = ("<html><body><div id='nav-path' class='navpath'><ul><li class='navelem'>"
            "<a href='dir.html'>include</a></li></ul></div>"
            "<div class='header'><div class='summary'><a href='#func'>Functions</a></div>"
            "<div class='headertitle'><div class='title'>allocator.h File Reference</div>"
            "</div></div><div class='contents'><table class='memberdecls'>"
            "<tr class='heading'><td colspan='2'><h2 class='groupheader'><a name='func'></a>"
            "Functions</h2></td></tr>"
            "<tr><td class='memItemLeft'>bool&#160;</td><td class='memItemRight'>"
            "<a href='#eq'>operator==</a> (const A &amp;)</td></tr>"
            "<tr class='separator'><td class='memSeparator' colspan='2'>&#160;</td></tr>"
            "<tr><td class='memItemLeft'>int&#160;</td><td class='memItemRight'>size ()</td>"
            "</tr></table></div></body></html>")
    [doc], _ = load(tmp_path, "allocator_8h.html", html)
    assert doc.text == ("allocator.h File Reference\n\nFunctions\n\n"
                        "| bool | operator== (const A &) |\n| int | size () |")
    assert doc.sections == (Section(doc.text.index("Functions"), 2, "Functions"),)


def test_html_ordered_list_keeps_its_start(tmp_path):
    """``<ol start="0">`` numbers from 0, as shown (Sphinx's "0. Make sure ...")."""
    html = "<html><body><ol start='0'><li>Update.</li><li>Build.</li></ol></body></html>"
    [doc], _ = load(tmp_path, "o.html", html)
    assert doc.text == "0. Update.\n1. Build."


def test_html_superscript_exponents_keep_their_caret(tmp_path):
    """A superscript exponent is not run into its base: "2^64", "2^(n - 1)" (as text browsers
    show them), not "264", "2n - 1"; a bracketed note mark stays as it is."""
    html = ("<html><body><p>A maximum of 2<sup>64</sup>-2; from -(2<sup>n -\n1</sup>) to "
            "2<sup>7</sup> - 1.</p><table><tr><th>Type</th><th>Max</th></tr><tr><td>u8</td>"
            "<td>2<sup>8</sup> - 1</td></tr></table><p>Hash tables<sup>[1]</sup>.</p>"
            "</body></html>")
    [doc], _ = load(tmp_path, "e.html", html)
    assert doc.text == ("A maximum of 2^64-2; from -(2^(n - 1)) to 2^7 - 1.\n\n| Type | Max |\n"
                        "| u8 | 2^8 - 1 |\n\nHash tables[1].")


def test_doxygen_class_list_icons_are_left_out(tmp_path):
    """Doxygen's class tree draws a letter icon (N, C) before each name and depth buttons
    above it: "Json", not "NJson"."""
    html = ("<html><body><div class='levels'>[detail level <span>1</span><span>2</span>]"
            "</div><table class='directory'><tr><td><span class='icona'><span class='icon'>N"
            "</span></span><a class='el' href='n.html'>Json</a></td><td>JSON notation</td></tr>"
            "<tr><td><span class='icona'><span class='icon'>C</span></span>"
            "<a class='el' href='c.html'>Reader</a></td><td>Reads JSON</td></tr></table>"
            "</body></html>")
    [doc], _ = load(tmp_path, "annotated.html", html)
    assert doc.text == "| Json | JSON notation |\n| Reader | Reads JSON |"


def test_html_form_choices_are_left_out(tmp_path):
    """A search box's drop-down (SQLite's "Search Documentation / Search Changelog") is not
    the page's text; the words around it are."""
    html = ("<html><body><form><select name='s'><option value='d'>Search Documentation"
            "</option><option value='c'>Search Changelog</option></select>"
            "<input type='submit' value='Go'></form><p>The CLI reads SQL.</p></body></html>")
    [doc], _ = load(tmp_path, "cli.html", html)
    assert doc.text == "The CLI reads SQL."


def test_html_superscript_after_a_space_gets_no_caret(tmp_path):
    """A superscript set apart from the word before it is a note mark, not an exponent:
    "lists 2", "bug-control -x3" (as before), not "lists ^2"."""
    html = ("<html><body><p>Comma separated lists <a href='#f2'><sup>2</sup></a> are "
            "basic.</p><p><strong>.bug-control</strong>  <sup><strong>-x3</strong></sup>"
            "</p></body></html>")
    [doc], _ = load(tmp_path, "c.html", html)
    assert doc.text == "Comma separated lists 2 are basic.\n\n.bug-control -x3"


def test_html_indexes_are_marked_as_index(tmp_path):
    """A manual's back-of-the-book index (Sphinx's genindex page, Texinfo's index tables,
    DocBook's letter groups) is marked "index", as a PDF's index pages are, so retrieval
    reads it last (a user's trial: FRR's genindex.html was 19 % of the chunks and two of
    three citations); the page's other text and a data table are not."""
    html = ("<html><body><h1 id='index'>Index</h1><div class='genindex-jumpbox'><a href='#A'>"
            "A</a> | <a href='#B'>B</a></div><h2 id='A'>A</h2><table class='indextable "
            "genindextable'><tr><td><ul><li><a href='a.html#x'>address-family (command)</a>"
            "</li></ul></td></tr></table><p>Built with Sphinx.</p></body></html>")
    [doc], _ = load(tmp_path, "genindex.html", html)
    assert kind_at(doc, "address-family (command)", 20) == "index"
    assert kind_at(doc, "A | B") == "index"
    assert doc.kind_of(doc.text.index("Built with"), len(doc.text)) == ""
    html = ("<html><body><p>The shell reads its profile.</p><table class='index-cp'>"
            "<tr><td>startup files</td><td><a href='#s'>Bash Startup Files</a></td></tr>"
            "<tr><td>shell variables</td><td><a href='#v'>Variables</a></td></tr></table>"
            "<div class='index'><div class='indexdiv'><h3>P</h3><dl><dt>pbuilder, "
            "<a href='#p'>pbuilder</a></dt></dl></div></div>"
            "<table><tr><th>Key</th><th>Action</th></tr><tr><td>k</td><td>kill</td></tr>"
            "</table></body></html>")
    [doc], _ = load(tmp_path, "manual.html", html)
    for words in ("startup files", "pbuilder, pbuilder"):
        assert kind_at(doc, words) == "index", words
    for words in ("The shell reads", "| k | kill |"):
        assert kind_at(doc, words) == "", words


def test_a_debian_doc_folder_is_read_gzipped_text_and_conventional_names_included(tmp_path):
    """/usr/share/doc/PKG holds README, NEWS.gz, changelog.Debian.gz, README.md.gz: they were
    all "files of unsupported types ignored", named nowhere (a user's trial); now read, a
    gzipped file as its inner format (within the gunzip bounds); licences stay out, and the
    ones left out are named to the caller."""
    write_corpus(tmp_path, {"README": "Read me first.\n", "COPYING": "GPL", "tool.bin": "x",
                            "FAQ.Debian": "Q. Why?\nA. Because.\n", "install": "#!/bin/sh"})
    (tmp_path / "NEWS.gz").write_bytes(gzip.compress(b"Version 2 adds colour.\n"))
    (tmp_path / "changelog.Debian.gz").write_bytes(gzip.compress(b"pkg (1.0-1) unstable\n"))
    (tmp_path / "guide.md.gz").write_bytes(gzip.compress(b"# Guide\n\nRun make.\n"))
    (tmp_path / "bad.txt.gz").write_bytes(b"not gzip at all")
    ignored = []
    found, n = walk(tmp_path, ignored=ignored)
    assert found == ["FAQ.Debian", "NEWS.gz", "README", "bad.txt.gz", "changelog.Debian.gz",
                     "guide.md.gz"]
    assert n == 3 and ignored == ["COPYING", "install", "tool.bin"]  # (a script, "install")
    [news], _ = load_file(tmp_path / "NEWS.gz", "NEWS.gz")
    assert news.text == "Version 2 adds colour.\n" and news.title == "NEWS"
    [guide], _ = load_file(tmp_path / "guide.md.gz", "guide.md.gz")
    assert guide.title == "Guide" and guide.sections == (Section(0, 1, "Guide"),)
    with pytest.raises(LoadError, match="not a valid gzip file"):
        load_file(tmp_path / "bad.txt.gz", "bad.txt.gz")
    (tmp_path / "big.txt.gz").write_bytes(gzip.compress(b"word " * 400_000))  # (2 MB)
    with pytest.raises(LoadError, match="larger than 1 MB once decompressed; raise --max-file"):
        load_file(tmp_path / "big.txt.gz", "big.txt.gz", max_bytes=2**20)  # (--max-file-mb 1)
    bomb = gzip.compress(b"\n" * (300 * 2**20))  # (300 MB of newlines in 300 KB)
    with pytest.raises(LoadError, match="compression bomb"):
        load(tmp_path, "bomb.txt.gz", bomb)


def test_a_manual_page_saved_as_text_loses_its_terminal_escapes_and_overstrike(tmp_path):
    [doc], _ = load(tmp_path, "man-db-manual.txt",
                    b"\x1b[1m6.  The index database caches\x1b[0m\n"
                    b"Run B\x08BO\x08OL\x08LD and _\x08u_\x08n_\x08d_\x08e_\x08r mandb.\n")
    assert doc.text == "6.  The index database caches\nRun BOLD and under mandb.\n"


def test_texi2html_navigation_bars_and_footer_are_left_out(tmp_path):
    """texi2html (gettext's manual) writes its navigation as a class-less table of bracketed
    links and signs each page in a small-print footer: 70 chunks of a user's trial held the
    bar, 34 nothing else; a table of bracketed words that is data stays."""
    bar = ("<table cellpadding='1' cellspacing='1' border='0'><tr><td>[ &lt;&lt; ]</td><td>"
           "[<a href='g2.html' title='Next chapter'> &gt;&gt; </a>]</td><td> &nbsp; </td>"
           "<td>[<a href='toc.html'>Top</a>]</td><td>[<a href='toc.html#C'>Contents</a>]</td>"
           "<td>[<a href='g21.html'>Index</a>]</td><td>[<a href='abt.html'> ? </a>]</td>"
           "</tr></table>")
    html = ("<html><body>" + bar + "<h1>1. Introduction</h1><p>This chapter explains the "
            "goals of GNU gettext.</p><table><tr><th>Flag</th><th>Means</th></tr><tr><td>"
            "[fuzzy]</td><td>needs review</td></tr></table>" + bar + "<p><font size='-1'>This "
            "document was generated by <em>Bruno Haible</em> using <a href='https://www.nongnu"
            ".org/texi2html/'><em>texi2html 1.78a</em></a>.</font><br></p></body></html>")
    [doc], _ = load(tmp_path, "gettext_1.html", html)
    assert doc.text == ("1. Introduction\n\nThis chapter explains the goals of GNU gettext.\n\n"
                        "| Flag | Means |\n| [fuzzy] | needs review |")


def test_wiki_exports_lose_their_chrome(tmp_path):
    """A user's trial on Confluence and Notion HTML exports: every page held its breadcrumbs,
    "Created by ..., last modified by ...", its attachments and "Document generated by
    Confluence ... Atlassian" (an absent question was answered from that), or Notion's
    properties table and icon; the pages' text stays, a table of properties in the text too."""
    confluence = (
        "<html><head><title>OPS : Backups</title></head><body><div id='page'><div id='main'>"
        "<div id='main-header'><div id='breadcrumb-section'><ol id='breadcrumbs'><li><a "
        "href='index.html'>OPS</a></li><li><a href='Runbooks.html'>Runbooks</a></li></ol></div>"
        "<h1 id='title-heading' class='pagetitle'><span id='title-text'>OPS : Backups</span>"
        "</h1></div><div id='content' class='view'><div class='page-metadata'>Created by "
        "<span class='author'>Roland Mas</span>, last modified on Mar 11, 2023</div>"
        "<div id='main-content' class='wiki-content group'><p>Backups run at 22:00.</p></div>"
        "<div class='pageSection group'><div class='pageSectionHeader'><h2 id='attachments' "
        "class='pageSectionTitle'>Attachments:</h2></div><div class='greybox'><a href='a.png'>"
        "rotation.png</a> (image/png)</div></div></div></div><div id='footer' "
        "role='contentinfo'><section class='footer-body'><p>Document generated by Confluence "
        "on Mar 05, 2024 10:21</p><div id='footer-logo'><a href='https://www.atlassian.com/'>"
        "Atlassian</a></div></section></div></div></body></html>")
    [doc], _ = load(tmp_path, "Backups_65601.html", confluence)
    assert doc.text == "OPS : Backups\n\nBackups run at 22:00."
    notion = (
        "<html><head><title>Anacron</title></head><body><article class='page sans'><header>"
        "<div class='page-header-icon undefined'><span class='icon'>🕰️</span></div><h1 "
        "class='page-title'>Anacron</h1><table class='properties'><tbody><tr class="
        "'property-row'><th>Tags</th><td><span class='selected-value'>sysadmin</span><span "
        "class='selected-value'>handbook</span></td></tr></tbody></table></header><div "
        "class='page-body'><p>anacron runs missed jobs.</p><table class='properties'><tr><th>"
        "Key</th><th>Value</th></tr><tr><td>nice</td><td>10</td></tr></table></div></article>"
        "</body></html>")
    [doc], _ = load(tmp_path, "Anacron b66df947.html", notion)
    assert doc.text == "Anacron\n\nanacron runs missed jobs.\n\n| Key | Value |\n| nice | 10 |"
    # an article's own footer marked as the site's (a common slip) stays: it is its text
    [doc], _ = load(tmp_path, "claim.html", "<html><body><article><p>Keep the receipt.</p>"
                    "<footer role='contentinfo'>Warranty claims: call 555-0100.</footer>"
                    "</article><footer role='contentinfo'>© ACME</footer></body></html>")
    assert doc.text == "Keep the receipt.\n\nWarranty claims: call 555-0100."


def test_html_ordinals_trademarks_and_a_titles_note_mark_get_no_caret(tmp_path):
    """(a review) "21<sup>st</sup>" is "21st", "Foo<sup>TM</sup>" "FooTM", not "21^st";
    a title's superscript is its note's mark, "Results 1", in the text as in its section;
    an exponent keeps its caret."""
    html = ("<html><body><h2>Results<sup>1</sup></h2><p>In the 21<sup>st</sup> century "
            "Foo<sup>TM</sup> counts to 2<sup>64</sup>.</p></body></html>")
    [doc], _ = load(tmp_path, "o.html", html)
    assert doc.text == "Results 1\n\nIn the 21st century FooTM counts to 2^64."
    assert doc.sections == (Section(0, 2, "Results 1"),)


SPHINX_PAGE = """\
=============
 Pump manual
=============

.. toctree::
   :maxdepth: 2

   intro

Installing
==========

Run :command:`pump --init` first, then see :ref:`the reset steps <reset>` and
:py:func:`~pump.core.prime`; :kbd:`Ctrl-C` stops it.

.. code-block:: console

   $ pump --init
   $ pump prime --slow

.. option:: -v, --verbose

   Print every valve it opens.

.. versionadded:: 2.0
   The ``--slow`` flag halves the flow.

.. autoclass:: pump.Pump
   :members:

.. pump-command-usage:: prime "python -m pump"

Why it hums
-----------

Because the impeller spins at 50 Hz.
"""


def test_rst_reads_as_the_rendered_page_with_sphinx_roles_and_directives(tmp_path):
    """A Sphinx source (.rst) is read as its page: headings are sections, a role shows its
    words, a directive its argument and text, a code block its lines; navigation and pages
    generated from code leave nothing; no markup is left for a reader to quote."""
    [doc], warnings = load(tmp_path, "pump.rst", SPHINX_PAGE)
    assert warnings == [] and doc.title == "Pump manual"
    assert [s.title for s in doc.sections] == ["Pump manual", "Installing", "Why it hums"]
    assert doc.heading_at(doc.text.index("50 Hz")) == "Pump manual > Installing > Why it hums"
    assert "Run pump --init first, then see the reset steps and prime; Ctrl-C stops it." \
        in " ".join(doc.text.split())
    assert "$ pump --init\n$ pump prime --slow" in doc.text  # (its lines, as written)
    assert "-v, --verbose\n\nPrint every valve it opens." in doc.text
    assert "New in version 2.0: The --slow flag halves the flow." in doc.text
    for markup in (":ref:", "``", ".. ", "::", "toctree", "maxdepth", "intro", "autoclass",
                   ":members:", "====", "python -m pump"):  # (an extension's text is code's)
        assert markup not in doc.text, markup


def test_rst_in_a_txt_file_is_read_as_rst_other_text_stays_text(tmp_path):
    """docutils' own manuals, PEPs and many READMEs are RST named .txt: read as RST (a title
    underlined and a directive or link target); text that merely underlines a title, or that
    docutils cannot read, stays as written."""
    [doc], _ = load(tmp_path, "quick.txt", SPHINX_PAGE)
    assert [s.title for s in doc.sections] == ["Pump manual", "Installing", "Why it hums"]
    assert "toctree" not in doc.text and ":ref:" not in doc.text
    plain = "Changes\n=======\n\n* fixed the .. pump:: thing\n  (see ``x``)\n"
    [doc], _ = load(tmp_path, "NEWS.txt", plain)
    assert doc.text == plain


def test_rst_never_reads_past_the_file(tmp_path):
    """include, literalinclude, raw and csv-table files or URLs would put another file of
    the machine (a key, /etc/passwd) into the knowledge base: none is followed, and the rest
    of the page is read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-KEY-123\n")
    page = (f"Notes\n=====\n\nVisible words.\n\n.. include:: {secret}\n\n"
            f".. literalinclude:: {secret}\n\n.. raw:: html\n   :file: {secret}\n\n"
            f".. csv-table:: Keys\n   :file: {secret}\n\n.. include:: secret.txt\n\n"
            ".. raw:: html\n\n   <b>raw markup</b>\n\nLast words.\n")
    [doc], _ = load(tmp_path, "notes.rst", page)
    assert "Visible words." in doc.text and "Last words." in doc.text
    assert "TOPSECRET" not in doc.text and "raw markup" not in doc.text


def test_rst_gzipped_and_broken_markup_still_read(tmp_path):
    """Debian gzips its RST (user_guide.rst.gz); markup docutils calls an error (a title
    underline too short, an unknown role, a table that does not close) is read past."""
    page = b"Title\n==\n\nText with :nosuchrole:`kept words` and *open emphasis.\n\n+---+\n| a\n"
    [doc], _ = load(tmp_path, "g.rst.gz", gzip.compress(page))
    assert "Text with kept words" in doc.text


def test_rst_markup_errors_keep_their_text_and_file_settings_are_not_text(tmp_path):
    """A grid table whose border does not close, a title underlined out of order: docutils
    drops them as errors; they are kept as written, with a warning naming the line. Sphinx's
    ":orphan:" at the top is a setting, not text."""
    page = (":orphan:\n:tocdepth: 2\n\nNotes\n=====\n\nDisks\n-----\n\nFour disks.\n\nNet\n~~~\n\n"
            "Address 10.0.0.2.\n\nBackups\n=======\n\nRestic\n~~~~~~\n\nPassword in pass.\n\n"
            "+-----------+-------+\n| retention | 14 d  |\n+-----------+----\n"
            "| zstd      | on    |\n"
            "+-----------+-------+\n\nEnd.\n")
    [doc], warnings = load(tmp_path, "n.rst", page)
    assert "Restic" in doc.text and "| retention | 14 d  |" in doc.text and "End." in doc.text
    assert "orphan" not in doc.text and "tocdepth" not in doc.text and doc.title == "Notes"
    assert len(warnings) == 1 and "2 reStructuredText markup error(s)" in warnings[0]
    assert "line" in warnings[0] and "\n" not in warnings[0]


@pytest.mark.parametrize("name,page", [
    ("moved.html", "<html><head><meta http-equiv='Refresh' content='0; url=new.html'></head>"
                   "<body><h1>Moved</h1><p>This page has moved to <a href='new.html'>here"
                   "</a>.</p></body></html>"),
    ("moved.rst", ":orphan:\n\n.. meta::\n   :http-equiv=refresh: 3; url=../cli/pip_check/\n\n"
                  "This page has moved\n===================\n\nYou should be redirected "
                  "automatically in 3 seconds.\n"),
])
def test_a_page_that_only_redirects_is_not_indexed(tmp_path, name, page):
    """Sphinx and web sites leave stubs that refresh to the moved page ("You should be
    redirected automatically"): they answered questions instead of the page itself."""
    with pytest.raises(LoadError, match="only a redirect .*not indexed"):
        load(tmp_path, name, page)
    long = page.replace("has moved", "has moved. " + "Real words about pumps. " * 40)
    [doc], _ = load(tmp_path, name, long)  # (a real page that also refreshes: read)
    assert "Real words about pumps" in doc.text


def test_asciidoc_and_org_are_read_with_their_headings(tmp_path):
    """.adoc and .org notes were ignored ("no supported files"): they are read as written,
    their headings (both AsciiDoc forms; Org's stars, tags left out) giving the heading path;
    what looks like a heading inside a listing or source block is not one."""
    adoc = ("git-reset(1)\n============\n\nNAME\n----\ngit-reset - Reset HEAD\n\n"
            "== Examples\n\n....\nworking index HEAD\n------------------\n A B C\n....\n\n"
            "Undo a commit with git reset --soft HEAD^.\n")
    [doc], _ = load(tmp_path, "git-reset.adoc", adoc)
    assert doc.title == "git-reset(1)" and doc.text == adoc
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "git-reset(1)"), (2, "NAME"), (2, "Examples")]
    assert doc.heading_at(doc.text.index("Undo")) == "git-reset(1) > Examples"
    # git's manual as Debian ships it: AsciiDoc named .txt (its macros tell it apart)
    [doc], _ = load(tmp_path, "git-gc.txt", adoc.replace("Undo", "See linkgit:git-reset[1]. Undo"))
    assert [s.title for s in doc.sections] == ["git-reset(1)", "NAME", "Examples"]
    [doc], _ = load(tmp_path, "notes.txt", "Shopping\n========\n\nMilk.\n")
    assert doc.sections == ()  # (an underlined title alone: plain text)
    org = ("#+TITLE: Home notes\n\n* Setup\nHA runs on nas01.\n** Zigbee  :hw:radio:\n"
           "Dongle on /dev/ttyUSB0.\n#+BEGIN_SRC sh\n* not a heading\n#+END_SRC\n")
    [doc], _ = load(tmp_path, "home.org", org)
    assert doc.title == "Home notes"
    assert [(s.level, s.title) for s in doc.sections] == [(1, "Setup"), (2, "Zigbee")]
    assert doc.heading_at(doc.text.index("Dongle")) == "Setup > Zigbee"


def test_asciidoc_blocks_of_every_kind_hide_headings_and_comments_are_not_text(tmp_path):
    """A review found git-commit.txt's EXAMPLES..GIT lost: a "----" block right under a
    paragraph was not seen to open, so its closing line opened one to the end; code lines
    over a "----" in a "+" continuation, an example block's "====", a ".Title" over a block
    made headings; "////" comments were indexed."""
    adoc = ("= Manual\n\n== Options\n\nIt is equivalent to:\n----\n$ git reset --soft HEAD^\n"
            "----\nbut can amend a merge commit.\n\n* Run it:\n+\n------------\nmake all\n"
            "exit $status\n------------\n\n.An example\n====\nThe end of it\n=============\n"
            "====\n\n////\nINTERNAL: the password is hunter2\n=== Hidden\n////\n"
            "// a line comment\n\n[[ex]]\nEXAMPLES\n--------\n\nExample text.\n\n"
            "== See also\n\nOther pages.\n\n[source,c]\n----\n// initialise the counter\n"
            "int n = 0;\n----\n")
    [doc], _ = load(tmp_path, "m.adoc", adoc)
    assert "// initialise the counter\nint n = 0;" in doc.text  # (a program's comment stays)
    assert [s.title for s in doc.sections] == ["Manual", "Options", "EXAMPLES", "See also"]
    assert "hunter2" not in doc.text and "line comment" not in doc.text
    assert "exit $status" in doc.text and "Other pages." in doc.text


MAN_PAGE = r""".\" a page as man-db installs it
.TH PUMP 1 "2026-12-01" "pump 2.0" "User Commands"
.SH NAME
pump \- move water between tanks
.SH SYNOPSIS
.B pump
[\fIOPTION\fR]... \fITANK\fR
.SH OPTIONS
.SS "Flow control"
.TP
.BR \-r ", " \-\-recursive
Drain every tank under
.IR TANK ,
in turn.  Stops at the first dry tank.
.TP
.B \-\-slow
Halve the flow.
.SH EXAMPLES
.nf
    pump \-\-slow /tanks/a
        (waits for the valve)
.fi
"""

needs_mandoc = pytest.mark.skipif(shutil.which("mandoc") is None, reason=(
    "mandoc is not installed (sh tests/install_programs.sh installs it)"))


@needs_mandoc
def test_a_manual_page_is_read_as_man_shows_it(tmp_path):
    """Manual pages as installed (roff, gzipped: man1/pump.1.gz) were ignored: read through
    mandoc, sections and subsections are headings, an option's names stand over its
    description, an example keeps its lines; the title is the NAME line; no running header
    or footer, no roff left."""
    [doc], warnings = load(tmp_path, "pump.1.gz", gzip.compress(MAN_PAGE.encode()))
    assert warnings == [] and doc.title == "pump - move water between tanks"
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "NAME"), (1, "SYNOPSIS"), (1, "OPTIONS"), (2, "Flow control"), (1, "EXAMPLES")]
    assert ("-r, --recursive\n\nDrain every tank under TANK, in turn. Stops at the first dry "
            "tank.\n\n--slow\n\nHalve the flow.") in " ".join(doc.text.split(" "))
    assert doc.heading_at(doc.text.index("Halve")) == "OPTIONS > Flow control"
    assert "    pump --slow /tanks/a\n        (waits for the valve)" in doc.text  # (as written)
    for roff in ("PUMP(1)", ".TP", "\\f", "2026-12-01"):
        assert roff not in doc.text, roff


@needs_mandoc
@pytest.mark.parametrize("trap", [
    ".so {secret}", ".so secret.txt", ".so ../../../../..{secret}", ".cf {secret}",
    ".mso {secret}", ".do so {secret}", "'trf {secret}", ".if 1 .so {secret}",
    ".nop .nx {secret}", ".ds x so\n.\\E*x {secret}", ".als inc so\n.inc {secret}",
    ".cc @\n@so {secret}", ".di D\n\\!.so {secret}\n.di\n.D", ".so /proc/self/environ",
    ".sy cat {secret}", ".pso cat {secret}",
])
def test_a_manual_page_never_reads_past_itself(tmp_path, trap, monkeypatch):
    """roff can read another file or run a program in many ways (renamed, aliased, through a
    string, a conditional or a diversion; the process's environment through /proc): none
    puts anything but the page into the knowledge base."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-KEY-123\n")
    monkeypatch.setenv("RAG_TEST_SECRET", "TOPSECRET-ENV-456")
    monkeypatch.chdir(tmp_path)  # (a relative name would find it here)
    page = MAN_PAGE.replace(".SH EXAMPLES", trap.format(secret=secret) + "\n.SH EXAMPLES")
    [doc], _ = load(tmp_path, "trap.1", page)
    assert "Halve the flow" in doc.text and "TOPSECRET" not in doc.text


@needs_mandoc
def test_a_manual_page_that_loops_is_bounded(tmp_path, monkeypatch):
    """A page that loops or grows a string for ever: a one-line reason within the bound,
    nothing left running."""
    import knowledge.man as man

    import time

    monkeypatch.setattr(man, "MANDOC_SECONDS", 3)
    for trap in (".while 1 .nr x +1", ".ds x aaaaaaaaaaaaaaaa\n.while 1 .as x \\*x"):
        t0 = time.monotonic()
        try:
            load(tmp_path, "loop.1", MAN_PAGE.replace(".SH EXAMPLES", trap + "\n.SH EXAMPLES"))
        except LoadError as err:
            assert "mandoc" in str(err)
        assert time.monotonic() - t0 < 10


def test_man_links_other_files_and_no_mandoc_are_said(tmp_path, monkeypatch):
    """A page that only names another (.so man1/gzip.1, after a comment), a rotated log named
    syslog.1, and a machine without mandoc: each a one-line reason, no traceback."""
    with pytest.raises(LoadError, match="only points to 'man1/gzip.1'"):
        load(tmp_path, "gunzip.1.gz", gzip.compress(b'.\\" alias\n.so man1/gzip.1\n'))
    with pytest.raises(LoadError, match=r"not a manual page .*rename it \.txt"):
        load(tmp_path, "syslog.1", "Dec  7 10:00:01 host CRON[1]: started\n")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(LoadError, match="mandoc, which this machine lacks .*apt install mandoc"):
        load(tmp_path, "pump.1", MAN_PAGE)


def test_a_sphinx_rubric_is_a_heading_under_its_section(tmp_path):
    """Sphinx's `.. rubric::` ("Examples" in a function's section) is a paragraph of class
    rubric: an answer about the section ran on into it as if it were prose."""
    html = ("<html><body><h1>API</h1><h2>pump()</h2><p>Moves water.</p>"
            "<p class='rubric'>Examples</p><pre>pump(3)</pre><h2>drain()</h2><p>Empties.</p>"
            "</body></html>")
    [doc], _ = load(tmp_path, "api.html", html)
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "API"), (2, "pump()"), (3, "Examples"), (2, "drain()")]
    assert doc.heading_at(doc.text.index("pump(3)")) == "API > pump() > Examples"
    [doc], _ = load(tmp_path, "api.rst", "API\n===\n\nMoves water.\n\n.. rubric:: Examples\n\n"
                    "::\n\n   pump(3)\n")
    assert doc.heading_at(doc.text.index("pump(3)")) == "API > Examples"


def test_rst_inline_errors_python_classes_and_long_lines_are_read(tmp_path):
    """A review: an inline markup error (":pep:`in-tree <517#in-tree>`", Sphinx's form)
    refused the whole file; Sphinx's ".. class:: UUID(hex=None)" met docutils' own "class"
    and was dropped as an error; one line over 10,000 characters emptied the document."""
    [doc], warnings = load(tmp_path, "a.rst", "Title\n=====\n\nSee :pep:`in-tree <517#in-tree>` "
                           "here.\n\nMore words.\n")
    assert "More words." in doc.text and "in-tree" in doc.text and len(warnings) == 1
    [doc], warnings = load(tmp_path, "uuid.rst", "UUID\n====\n\n.. class:: UUID(hex=None)\n\n"
                           "   Create a UUID from *hex*.\n\n.. class:: Simple\n\n   Plain.\n")
    assert warnings == [] and "UUID(hex=None)\n\nCreate a UUID from hex." in doc.text
    assert "Simple\n\nPlain." in doc.text
    [doc], _ = load(tmp_path, "long.rst", "Title\n=====\n\nIntro.\n\n" + "word " * 4000 + "\n")
    assert "Intro." in doc.text and doc.text.count("word") == 4000


MYST_PAGE = """\
(caching)=

# Caching

% a comment for maintainers

```{toctree}
:hidden:

cli/index
```

pip keeps a cache, see {ref}`the cache docs <cache-dir>` and {func}`~pip.main.run`.

````{tab} Linux
```{code-block} console
$ ls ~/.cache/pip
# not a heading
```
````

```{versionadded} 22.2
The `--no-cache-dir` flag.
```

```{note}
:class: tip
Keep it small.
```

```python
x = {ref}`kept`  # code stays as written
```
"""


def test_myst_markdown_reads_as_its_page(tmp_path):
    """Sphinx's Markdown (pip's docs): answers held "(caching)=", ":hidden:" and
    "{ref}`...`"; a directive gives way to its label (a tab's "Linux"), a code directive
    stays code, toctree leaves nothing, a role shows its words; plain code is untouched."""
    [doc], _ = load(tmp_path, "caching.md", MYST_PAGE)
    words = " ".join(doc.text.split())
    assert [s.title for s in doc.sections] == ["Caching"]
    assert "pip keeps a cache, see the cache docs and `run`." in words
    assert "Linux ```console $ ls ~/.cache/pip # not a heading ```" in words
    assert "New in version 22.2: The `--no-cache-dir` flag." in words
    assert "Note: Keep it small." in words
    assert "x = {ref}`kept`" in doc.text
    for markup in ("(caching)=", "% a comment", "toctree", ":hidden:", "cli/index", ":class:",
                   "{tab}", "{note}", "````"):
        assert markup not in doc.text, markup


def test_markdown_that_is_not_myst_keeps_its_code_and_fences_pair_as_commonmark(tmp_path):
    """A review found plain Markdown taken for MyST (a shell variable in inline code, an R
    Markdown chunk): "`${HOME}` and `${PATH}`" lost words, "```{r}" its fence; and fences
    paired line by line, so a "```" inside a "~~~" block hid the headings after it."""
    shell = "# Shell\n\nSet `${HOME}` and `${PATH}` first; `{code}` then `x`.\n"
    [doc], _ = load(tmp_path, "shell.md", shell)
    assert doc.text == shell
    rmd = "# R\n\n```{r}\n# load\nx <- 1\n```\n\n```{.python}\n# py\n```\n\n## Next\n"
    [doc], _ = load(tmp_path, "r.md", rmd)
    assert doc.text == rmd and [s.title for s in doc.sections] == ["R", "Next"]
    fences = ("# Title\n\n~~~\n```bash\n~~~\n\n## Install\n\n````markdown\n```python\n"
              "# not a heading\n```\n````\n\n## Configure\n\n```\nno end\n# in code\n")
    [doc], _ = load(tmp_path, "f.md", fences)
    assert [s.title for s in doc.sections] == ["Title", "Install", "Configure"]
    myst = ("(my label)=\n# Doc\n\n%no space comment\n\n```{code-block} python\n:caption: x\n"
            "# in code\n```\n\n:::{code-block} sh\nls\n:::\n\n```{raw} html\n<b>RAW</b>\n```\n\n"
            "```{figure} img/arch.png\nA caption.\n```\n\n```{eval-rst}\n.. note:: Kept.\n```\n\n"
            "Use {command}`pip` and `{ref}` or `${x}`.\n")
    [doc], _ = load(tmp_path, "m.md", myst)
    assert [s.title for s in doc.sections] == ["Doc"]
    assert "```python\n\n# in code\n```" in doc.text and "```sh\nls\n```" in doc.text
    assert "Kept." in doc.text and "Use `pip` and `{ref}` or `${x}`." in doc.text
    for markup in ("my label", "no space", ":caption:", "RAW", "img/arch", "A caption",
                   ".. note::", ":::"):
        assert markup not in doc.text, markup


def test_org_blocks_pair_by_kind(tmp_path):
    org = ("#+TITLE: Notes\n* Setup\nText.\n#+END_EXAMPLE\n* Install\n#+BEGIN_QUOTE\nQ.\n"
           "#+BEGIN_EXAMPLE\n* not a heading\n#+END_EXAMPLE\n* still in the quote\n"
           "#+END_QUOTE\n* Usage\n#+BEGIN_SRC sh\n* never closed: Org reads this as text\n")
    [doc], _ = load(tmp_path, "n.org", org)
    assert [s.title for s in doc.sections] == ["Setup", "Install", "Usage",
                                               "never closed: Org reads this as text"]
    [gz], _ = load(tmp_path, "n.org.gz", gzip.compress(org.encode()))  # (as Debian ships them)
    assert gz.text == doc.text and gz.sections == doc.sections


INFO = ("This is pump.info, produced by makeinfo from pump.texi.\n\nCopyright 2026.\n"
        "INFO-DIR-SECTION Utilities\n\x1f\nFile: pump.info,  Node: Top,  Next: Invoking,  "
        "Up: (dir)\n\npump\n****\n\nThis manual is for pump.\n\n* Menu:\n\n* Invoking::   "
        "How to run it.\n\n\x1f\nFile: pump.info,  Node: Invoking,  Prev: Top,  Up: Top\n\n"
        "1 Invoking 'pump'\n*****************\n\n1.1 Options\n===========\n\n'--slow'\n"
        "     Halve the flow.\n\n\x1f\nFile: pump.info,  Node: Index,  Prev: Invoking\n\n"
        "Index\n*****\n\n\x00\x08[index\x00\x08]\n* Menu:\n\n* slow:   Invoking.   (line 6)\n"
        "\n\x1f\nTag Table:\nNode: Top\x7f89\n\x1f\nEnd Tag Table\n")


def test_a_gnu_info_manual_is_read_without_its_navigation(tmp_path):
    """GNU manuals as installed (/usr/share/info/grep.info.gz) were ignored: read as their
    nodes' text, without the navigation lines, menus, index cookies, header and tag table;
    makeinfo's underlined titles are headings. A split manual's table names its parts."""
    [doc], _ = load(tmp_path, "pump.info.gz", gzip.compress(INFO.encode("utf-8")))
    assert doc.title == "pump"
    assert [(s.level, s.title) for s in doc.sections] == [
        (1, "pump"), (1, "1 Invoking 'pump'"), (2, "1.1 Options"), (1, "Index")]
    assert doc.heading_at(doc.text.index("Halve")) == "1 Invoking 'pump' > 1.1 Options"
    assert "'--slow'\n\nHalve the flow." in doc.text  # (an entry's description set flush)
    for navigation in ("File: pump.info", "Menu", "How to run it", "Tag Table", "makeinfo",
                       "INFO-DIR", "(line 6)", "\x00"):
        assert navigation not in doc.text, navigation
    with pytest.raises(LoadError, match="table of a split Info manual"):
        load(tmp_path, "find.info", "header\n\x1f\nIndirect:\nfind.info-1: 1234\n\x1f\n"
             "Tag Table:\n(Indirect)\n\x1f\nEnd Tag Table\n")


def info_nodes(*nodes: tuple[str, str]) -> str:
    """An Info file of the nodes (name, text) given, as makeinfo writes one."""
    return "hdr\n" + "".join(f"\x1f\nFile: t.info,  Node: {name},  Up: (dir)\n\n{text}"
                              for name, text in nodes)


def test_info_text_after_a_menu_and_image_cookies_are_kept(tmp_path):
    """A review found bc's "Statements" chapter gone (a node's menu, then its text: all after
    "* Menu:" was dropped) and a manual refused as binary for an image's long cookie."""
    node = info_nodes(
        ("Top", "bc\n**\n\n* Menu:\n\n* Intro::   First.\n* Statements::\n\n \u2014 The "
                "Detailed Node Listing \u2014\n\nIntro\n\n* Numbers:: Of any size.\n\n"),
        ("Statements", "4 Statements\n************\n\n* Menu:\n\n* Pseudo Statements::\n\n"
                       "Statements provide the sequencing of evaluation.\n\n\x00\x08[image "
                       "src=\"figures/a-long-figure-name.png\" alt=\"A flow chart\"\x00\x08]\n\n"
                       "Text \x00\x08[index\n"))
    [doc], _ = load(tmp_path, "bc.info", node)
    assert doc.text == ("bc\n**\n\n4 Statements\n************\n\nStatements provide the "
                        "sequencing of evaluation.\n\n[A flow chart]\n\nText [index\n")


@pytest.mark.parametrize("node, text", [
    # a cross-reference as Emacs shows it, over a line break too
    ("*Note Usage::, for more. Options are listed (*note Other\nOptions::). See also *note the "
     "ls command:\n(coreutils)ls invocation.\n",
     "See Usage, for more. Options are listed (see Other Options). See also see the ls "
     "command.\n"),
    # an entry's whole description set flush by its indent, its example still indented (code)
    ("Options\n*******\n\n\u2018-m NUM\u2019\n     Stop after NUM lines.\n\n     For example:"
     "\n\n          while grep -m 1 P\n          do echo x; done\n\n     It resumes.\n\nNext "
     "paragraph of the node.\n",
     "Options\n*******\n\n\u2018-m NUM\u2019\n\nStop after NUM lines.\n\nFor example:\n\n"
     "     while grep -m 1 P\n     do echo x; done\n\nIt resumes.\n\nNext paragraph of the "
     "node.\n"),
])
def test_info_text_reads_as_an_info_reader_shows_it(tmp_path, node, text):
    [doc], _ = load(tmp_path, "g.info", info_nodes(("Top", node)))
    assert doc.text == text


@pytest.mark.parametrize("name, text", [
    ("tags.org", "* Notes" + " " * 300_000 + "x\n"),  # (each regex once took 13-50 s here)
    ("nodes.info", "hdr\n\x1fFile: x.info, " + "Node: " * 150_000),
    ("macro.txt", "Title\n-----\n" + "link:" * 40_000 + "\n"),
])
def test_outline_and_info_patterns_take_linear_time(tmp_path, name, text):
    import time

    t0 = time.perf_counter()
    try:
        load(tmp_path, name, text)
    except LoadError:
        pass
    assert time.perf_counter() - t0 < 2.0
