"""PDF extraction on real manuals, before (pypdf page text, what rag used) and after
(``knowledge.pdf``), measured against the same manual's HTML (or, for the two-column
newsletter, its LaTeX source):

- word F1 (bag of words) and 4-gram recall (reading order: the reference's word 4-grams
  found in the output),
- line-end splits left: words split at a line end ("reposi- tory", "SOME_ VARIABLE") left
  in the output, as a share of those the PDF's lines break,
- running header/footer lines left: the PDF's repeated page-top/bottom lines (poppler's
  pdftotext, numbers aside) found verbatim in the output,
- speed: pages per second of both in the same run (the machine is shared: compare the
  ratio, not the numbers),
- OCR: text pages rendered at 150 dpi (poppler's pdftoppm) into an image-only PDF, read
  back through Tesseract: word accuracy (1 - word edit distance / words) against the text
  layer's extraction of the same pages, and pages per second.

    sh eval/pdf_docs.sh runs/debdocs
    python eval/bench_pdf.py runs/debdocs --out runs/bench_pdf.json [--only octave,debmake]
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.htmltext import html_document  # noqa: E402
from knowledge.pdf import load_pdf, open_pdf, outline  # noqa: E402

DOCS = {
    # name: (pdf, HTML files (glob), HTML files left out (regex): the manual's TOC and index)
    "octave": ("octave-doc/usr/share/doc/octave/octave.pdf",
               "octave-doc/usr/share/doc/octave/octave.html/*.html", r"^index\.html$|Index\.html$"),
    "debmake": ("debmake-doc/usr/share/doc/debmake-doc/debmake-doc.en.pdf",
                "debmake-doc/usr/share/doc/debmake-doc/html/*.en.html", r"^(index|pr01)\.en\.html$"),  # (the preface precedes the first bookmark)
    "gnuplot": ("gnuplot-doc/usr/share/doc/gnuplot/gnuplot.pdf",
                "gnuplot-doc/usr/share/doc/gnuplot/htmldocs/node*.html", r"^node649\.html$"),
    # held out: measured once, never tuned on
    "bashref": ("bash-doc/usr/share/doc/bash/bashref.pdf",
                "bash-doc/usr/share/doc/bash/bashref.html", r"^$"),
}
LTNEWS = "texlive-latex-base-doc/usr/share/doc/texlive-doc/latex/base/ltnews{}.{}"
LTNEWS_ISSUES = ("30", "31", "32", "33", "34", "35")
TABLES = "python-reportlab-doc/usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf"


# debmake-doc's PDF prints the tree-drawing characters of its `tree` listings as b''│b''
# (a bug in that PDF, not in its HTML): that token is left out of both sides
IGNORED = {"b"}


def tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower())
            if t not in IGNORED]


def xrefs_as_html(text: str) -> str:
    """Texinfo's printed cross-references as its HTML prints them: "see Section 4.2 [Foo],
    page 15" is "see Foo" (a difference of the two renderings, not of the extraction)."""
    text = re.sub(r"(?:Section|Chapter|Appendix)\s+[\w.]+\s+\[([^\]]*)\],\s+page\s+\w+",
                  r"\1", text)
    return re.sub(r"\[([^\]]*)\],\s+page\s+\w+", r"\1", text)


def f1(ref: list[str], got: list[str]) -> float:
    common = sum((Counter(ref) & Counter(got)).values())
    if not common:
        return 0.0
    p, r = common / len(got), common / len(ref)
    return 2 * p * r / (p + r)


def ngram_recall(ref: list[str], got: list[str], n: int = 4) -> float:
    grams = lambda t: Counter(zip(*(t[i:] for i in range(n))))  # noqa: E731
    want = grams(ref)
    return sum((want & grams(got)).values()) / max(sum(want.values()), 1)


def splits(text: str, vocab: set[str], hyphenated: set[str]) -> int:
    """Words split at a line end and left split: two pieces, joined by a hyphen and/or
    whitespace (or an underscore and whitespace), that are one word of the reference."""
    n = 0
    for m in re.finditer(r"\b([^\W\d_]{2,})-\s*([^\W\d_]{2,})\b", text):
        a, b = m.group(1).lower(), m.group(2).lower()
        if (a + b) in vocab and f"{a}-{b}" not in hyphenated:
            n += 1
    for m in re.finditer(r"\b(\w+_)\s+(\w+)\b", text):
        if (m.group(1) + m.group(2)).lower() in vocab:
            n += 1
    return n


def source_splits(page_texts: list[str], vocab: set[str], hyphenated: set[str]) -> int:
    """Line ends in the PDF that split a reference word (pdftotext's lines)."""
    n = 0
    for text in page_texts:
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        for a, b in zip(lines, lines[1:]):
            ma = re.search(r"([^\W\d_]+)-?$|(\w+_)$", a)
            mb = re.match(r"([^\W\d_]+|\w+)", b)
            if not (ma and mb):
                continue
            left = (ma.group(1) or ma.group(2)).lower()
            if not (a.endswith("-") or a.endswith("_")):
                continue
            word = (left + mb.group(1).lower())
            if word in vocab and f"{left}-{mb.group(1).lower()}" not in hyphenated:
                n += 1
    return n


def running_lines(page_texts: list[str], labels: list[str]) -> list[str]:
    """The PDF's running header and footer lines (two words or more): first or last line of
    a page whose text, numbers blanked, begins or ends three pages or more, and which recurs
    as it is or carries its page's label at an end (not a chapter's first heading)."""
    ends = []
    for text, label in zip(page_texts, labels):
        raw = text.strip("\n").split("\n")
        lines = [" ".join(ln.split()) for ln in raw]
        # (set apart by a blank line, as pdftotext -layout prints a header or a footer)
        if len(raw) > 2 and raw[1].strip() == "":
            ends.append((lines[0], label))
        if len(raw) > 2 and raw[-2].strip() == "":
            ends.append((lines[-1], label))
    key = lambda s: re.sub(r"\d+", "#", s.lower())  # noqa: E731
    keys = Counter(key(s) for s, _ in ends)
    exact = Counter(s for s, _ in ends)
    return [s for s, label in ends if keys[key(s)] >= 3 and len(s.split()) >= 2 and (
        exact[s] >= 2 or len(s.split()) >= 3 and (s.startswith(label + " ")
                                                  or s.endswith(" " + label)))]


def left_in(lines: list[str], text: str) -> int:
    flat = " ".join(text.split())
    return sum(1 for s in lines if s in flat)


def pdftotext_pages(pdf: Path, first: int, last: int) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", "-f", str(first), "-l", str(last), str(pdf),
                          "-"], capture_output=True, text=True, check=True).stdout
    return out.split("\f")[: last - first + 1]


def pypdf_pages(data: bytes) -> list[str]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    return [(p.extract_text() or "") for p in PdfReader(io.BytesIO(data)).pages]


def body_pages(data: bytes) -> tuple[int, int]:
    """(first, last) 1-based pages between the first bookmark and the index."""
    pdf = open_pdf(data)
    marks = sorted((index, title, level, y) for level, title, index, y in outline(pdf))
    n = len(pdf)
    height = pdf.get_page_size(0)[1]
    pdf.close()
    first = marks[0][0] + 1 if marks else 1
    index = [i + (1 if y and y > 0.4 * height else 0) for i, t, level, y in marks
             if re.search(r"\bindex(es)?$", t, re.I) and i + 1 > first and level == 1]
    return first, (index[0] if index else n)  # (with the index's page if it starts low)


def doc_span(doc, first: int, last: int) -> str:
    starts = list(doc.page_starts) + [len(doc.text)]
    return doc.text[starts[first - 1]:starts[last]]


def html_reference(root: Path, pattern: str, leave_out: str) -> str:
    from bs4 import BeautifulSoup

    texts = []
    for f in sorted(root.glob(pattern)):
        if re.search(leave_out, f.name):
            continue
        soup = BeautifulSoup(f.read_text(encoding="utf-8", errors="replace"), "lxml")
        # (LaTeX2HTML left "4#4name5#5" where gnuplot's manual has <name>)
        text = re.sub(r"\d+#\d+", " ", html_document(soup, f.name).text)
        if not text.startswith("The node you are looking for is at"):  # (Texinfo's
            texts.append(text)  # redirection pages for anchors)
    return "\n\n".join(texts)


def latex_reference(tex: str) -> str:
    """The words of a LaTeX source: comments, preamble and command names dropped."""
    tex = re.sub(r"(?<!\\)%.*", "", tex)
    body = tex.split(r"\begin{document}", 1)[-1].split(r"\end{document}", 1)[0]
    body = re.sub(r"\\(begin|end|label|ref|cite|url|href|githubissue|sxissue|gnatsissue"
                  r"|tubcommand|setlength|addtolength|vspace|hspace)\*?(\[[^\]]*\])?\{[^}]*\}",
                  " ", body)
    body = re.sub(r"\\([A-Za-z]+)\*?", lambda m: {"LaTeX": "LaTeX", "TeX": "TeX"}.get(
        m.group(1), " "), body)
    return re.sub(r"[{}\[\]~$&^_]", " ", body)


def measure(name: str, data: bytes, ref: str, pdf_path: Path, pages: tuple[int, int] | None):
    """One document's numbers, before and after, with the speed of each."""
    t = time.perf_counter()
    before_pages = pypdf_pages(data)
    t_before = time.perf_counter() - t
    t = time.perf_counter()
    doc, _ = load_pdf(data, pdf_path.name)
    t_after = time.perf_counter() - t
    n = len(before_pages)
    first, last = pages or (1, n)
    before = "\n".join(before_pages[first - 1:last])
    after = doc_span(doc, first, last)
    ref_t = tokens(ref)
    vocab = set(ref_t)
    hyphenated = {w.lower() for w in re.findall(r"\w+-\w+", ref)}
    poppler = pdftotext_pages(pdf_path, first, last)
    running = running_lines(poppler, [p.label for p in doc.pages[first - 1:last]])
    src_splits = source_splits(poppler, vocab, hyphenated)
    row = {"doc": name, "pages": n, "measured_pages": [first, last],
           "reference_words": len(ref_t), "line_end_splits_in_pdf": src_splits,
           "running_lines_in_pdf": len(running)}
    for label, text, secs in (("before", before, t_before), ("after", after, t_after)):
        text = xrefs_as_html(text)
        got = tokens(text)
        row[label] = {"word_f1": round(f1(ref_t, got), 4),
                      "4gram_recall": round(ngram_recall(ref_t, got), 4),
                      "splits_left": splits(text, vocab, hyphenated),
                      "running_lines_left": left_in(running, text),
                      "pages_per_s": round(n / secs, 1)}
    return row, doc


def word_accuracy(ref: list[str], got: list[str]) -> float:
    """1 - word-level edit distance / reference length."""
    prev = list(range(len(got) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(got)
        for j, g in enumerate(got, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != g))
        prev = cur
    return 1 - prev[-1] / max(len(ref), 1)


def measure_ocr(pdf_path: Path, pages: list[int], dpi: int = 150) -> dict:
    """Pages rendered at ``dpi`` into an image-only PDF, read back with OCR."""
    from PIL import Image

    data = pdf_path.read_bytes()
    text_doc, _ = load_pdf(data, pdf_path.name)
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for p in pages:
            subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(p), "-l", str(p), "-gray",
                            "-png", str(pdf_path), f"{tmp}/p{p}"], check=True)
            images.append(Image.open(next(Path(tmp).glob(f"p{p}*.png"))).convert("L"))
        buf = io.BytesIO()
        images[0].save(buf, "PDF", resolution=dpi, save_all=True, append_images=images[1:])
    t = time.perf_counter()
    scan_doc, _ = load_pdf(buf.getvalue(), "scan.pdf")
    secs = time.perf_counter() - t
    accs, words = [], 0
    starts = list(scan_doc.page_starts) + [len(scan_doc.text)]
    ref_starts = list(text_doc.page_starts) + [len(text_doc.text)]
    for k, p in enumerate(pages):
        ref = tokens(text_doc.text[ref_starts[p - 1]:ref_starts[p]])
        got = tokens(scan_doc.text[starts[k]:starts[k + 1]])
        accs.append(word_accuracy(ref, got) * len(ref))
        words += len(ref)
    return {"doc": pdf_path.name, "pages": pages, "dpi": dpi, "words": words,
            "word_accuracy": round(sum(accs) / max(words, 1), 4),
            "ocr_pages_per_s": round(len(pages) / secs, 3)}


def measure_libraries(name: str, root: Path) -> dict:
    """The raw page text of each candidate library (no cleaning), for choosing one: word F1
    against the HTML and pages per second, in the same run. pdfplumber (pdfminer.six) is
    not a dependency: ``pip install pdfplumber`` to include it."""
    pdf, pattern, leave_out = DOCS[name]
    path = root / pdf
    data = path.read_bytes()
    first, last = body_pages(data)
    ref = tokens(html_reference(root, pattern, leave_out))

    def pdfium_pages():
        import pypdfium2 as pdfium

        doc = pdfium.PdfDocument(data)
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]

    def plumber_pages():
        import pdfplumber

        with pdfplumber.open(io.BytesIO(data)) as doc:
            return [p.extract_text() or "" for p in doc.pages]

    row = {"doc": name, "libraries": {}}
    for lib, fn in (("pypdf", lambda: pypdf_pages(data)), ("pypdfium2 (raw text)", pdfium_pages),
                    ("pdfplumber", plumber_pages)):
        try:
            t = time.perf_counter()
            pages = fn()
            secs = time.perf_counter() - t
        except ImportError:
            continue
        got = tokens(xrefs_as_html("\n".join(pages[first - 1:last])))
        row["libraries"][lib] = {"word_f1": round(f1(ref, got), 4),
                                 "pages_per_s": round(len(pages) / secs, 1)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path, help="folder with the unpacked packages (pdf_docs.sh)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--only", default="", help="comma-separated: octave,debmake,gnuplot,"
                    "bashref,ltnews,tables,libs,ocr")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    rows = []
    for name, (pdf, pattern, leave_out) in DOCS.items():
        if only and name not in only:
            continue
        path = args.root / pdf
        data = path.read_bytes()
        ref = html_reference(args.root, pattern, leave_out)
        row, _ = measure(name, data, ref, path, body_pages(data))
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not only or "ltnews" in only:
        for issue in LTNEWS_ISSUES:
            path = args.root / LTNEWS.format(issue, "pdf")
            tex = gzip.decompress((args.root / LTNEWS.format(issue, "tex.gz")).read_bytes())
            row, _ = measure(f"ltnews{issue}", path.read_bytes(),
                             latex_reference(tex.decode("utf-8", "replace")), path, None)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if not only or "tables" in only:
        path = args.root / TABLES
        t = time.perf_counter()
        doc, _ = load_pdf(path.read_bytes(), path.name)
        rows.append({"doc": "reportlab-userguide", "pages": len(doc.pages),
                     "markdown_table_rows": len(re.findall(r"(?m)^\| .* \|$", doc.text)),
                     "seconds": round(time.perf_counter() - t, 1)})
        print(json.dumps(rows[-1]), flush=True)
    if not only or "libs" in only:
        rows.append(measure_libraries("debmake", args.root))
        print(json.dumps(rows[-1]), flush=True)
    if not only or "ocr" in only:
        for name, pages in (("debmake", list(range(20, 28))), ("octave", list(range(40, 48)))):
            row = measure_ocr(args.root / DOCS[name][0], pages)
            rows.append({"ocr": row})
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
