"""Check manuals.qa.jsonl against the shipped manuals: every answer string of an answerable
question occurs in its manual's PDF text (pdftotext) and in the text of its gold HTML pages,
the reference occurs on the page it names, the fields are well formed, and no absent
question's key terms occur in its manual. Prints the counts per split and type and how many
answers needed normalisation to match; exit 1 on any failure.

    python3 eval/data/manuals/check.py [--pypdf]

--pypdf also reports how many answers pypdf's text holds (the extractor `rag index` used
when this set was made); needs a python with pypdf. Stdlib and poppler-utils otherwise.
"""
from __future__ import annotations

import argparse
import functools
import html
import json
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

HERE = Path(__file__).resolve().parent
TYPES = ("factoid", "howto", "why", "absent")
FIELDS = {"id", "question", "type", "answers", "reference", "gold_ids", "gold_ids_html",
          "page", "manual", "split"}
# How far an answer had to be normalised before it matched, from least to most.
LEVELS = ("whitespace", "line-end hyphen", "quotes/ligatures/case")
FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "−": "-", "–": "-",
                      "—": "-", "…": "...", "\u00a0": " ", "¶": " "})


def squash(text: str) -> str:
    """Whitespace runs to one space; the only normalisation of the first level."""
    return re.sub(r"\s+", " ", text).strip()


def fold(text: str) -> str:
    """The last level: NFKC (ligatures), straight quotes and dashes, '. . .' as '...', lower
    case. Example: fold("‘Foo’ . . .") == "'foo' ..." """
    text = unicodedata.normalize("NFKC", text).translate(FOLD)
    return squash(re.sub(r"\.\s\.\s\.", "...", text)).lower()


def variants(raw: str) -> list[str]:
    """The raw text (with its line breaks) at each level: squashed; with words split at a
    line end rejoined, both without the hyphen ("reposi-/tory") and with it ("built-/in");
    folded."""
    joined = re.sub(r"(\w)-\n\s*(\w)", r"\1\2", raw)
    kept = re.sub(r"(\w)-\n\s*(\w)", r"\1-\2", raw)
    return [squash(raw), squash(joined) + "\n" + squash(kept), fold(joined) + "\n" + fold(kept)]


def level(needle: str, texts: list[str]) -> int | None:
    """The first level (index into LEVELS) at which needle occurs in texts, else None."""
    for i, (text, probe) in enumerate(zip(texts, (squash(needle), squash(needle), fold(needle)))):
        if probe and probe in text:
            return i
    return None


def pdf_pages(path: Path) -> list[str]:
    """pdftotext's text of each page (default reading-order mode, UTF-8)."""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True, timeout=300).stdout.decode("utf-8")
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def _edges(lines: list[str]) -> list[str]:
    """The first and last two non-blank lines of a page, digits masked (page numbers)."""
    kept = [ln.strip() for ln in lines if ln.strip()]
    return [re.sub(r"\d+", "#", ln) for ln in kept[:2] + kept[-2:]]


def running_lines(pages: list[str]) -> set[str]:
    """Lines at a page's top or bottom that recur on 3 or more pages: running headers,
    footers, page numbers (digits masked). Example: {"gnuplot #.# #", "#"}"""
    seen = Counter(e for page in pages for e in set(_edges(page.splitlines())))
    return {e for e, n in seen.items() if n >= 3}


def body(page: str, running: set[str]) -> str:
    """The page without its leading and trailing running lines."""
    lines = page.splitlines()
    mask = lambda ln: re.sub(r"\d+", "#", ln.strip())  # noqa: E731
    while lines and (not lines[0].strip() or mask(lines[0]) in running):
        lines.pop(0)
    while lines and (not lines[-1].strip() or mask(lines[-1]) in running):
        lines.pop()
    return "\n".join(lines)


class _Text(HTMLParser):
    BLOCK = {"p", "div", "br", "li", "dt", "dd", "tr", "td", "th", "pre", "h1", "h2", "h3",
             "h4", "h5", "h6", "table", "ul", "ol", "dl", "blockquote", "hr", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(path: Path) -> str:
    """The visible text of an HTML page, block elements on their own lines."""
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return html.unescape("".join(parser.parts))


def pypdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader  # optional: only for --pypdf
    return [page.extract_text() or "" for page in PdfReader(path).pages]


class Manuals:
    """The shipped texts, read once: PDF pages per PDF, HTML text per page path."""

    def __init__(self, with_pypdf: bool):
        self.pages = {p.name: pdf_pages(p) for p in sorted((HERE / "pdf").glob("*.pdf"))}
        self.running: dict[str, set[str]] = {}
        self.doc = {n: variants("\n".join(pp)) for n, pp in self.pages.items()}
        self.html = {str(p.relative_to(HERE / "html")): html_text(p)
                     for p in sorted((HERE / "html").rglob("*.html"))}
        self.pypdf = ({p.name: variants("\n".join(pypdf_pages(p)))
                       for p in sorted((HERE / "pdf").glob("*.pdf"))} if with_pypdf else {})

    def on_page(self, pdf: str, page: int) -> list[str]:
        """The page's text and the next page's after it, running headers and footers
        between them left out (a reference may run over the page break)."""
        pp, running = self.pages[pdf], self.running.setdefault(pdf, running_lines(self.pages[pdf]))
        return variants("\n".join(body(t, running) for t in pp[page - 1:page + 1]))

    def html_of(self, names: list[str]) -> list[str]:
        return variants("\n".join(self.html[n] for n in names))

    @functools.cache
    def manual_html(self, folder: str) -> list[str]:
        return variants("\n".join(t for n, t in self.html.items() if n.startswith(folder + "/")))


def check_row(q: dict, m: Manuals, stats: Counter, errors: list[str]) -> None:
    """Every rule for one question; failures appended to errors, match levels to stats."""
    where = q.get("id", "?")
    bad = lambda msg: errors.append(f"{where}: {msg}")  # noqa: E731
    if set(q) - FIELDS - {"absent_terms"} or FIELDS - set(q):
        return bad(f"fields {sorted(set(q) ^ FIELDS)} differ from the schema")
    if q["type"] not in TYPES or q["split"] not in ("dev", "test"):
        return bad(f"type {q['type']!r} or split {q['split']!r} unknown")
    if not q["id"].startswith(q["manual"] + "-"):
        bad(f"id does not start with the manual name {q['manual']!r}")
    if q["type"] == "absent":
        return check_absent(q, m, bad)
    pdf = q["gold_ids"][0] if len(q["gold_ids"]) == 1 else None
    if pdf not in m.pages:
        return bad(f"gold_ids {q['gold_ids']} is not one shipped PDF")
    missing = [h for h in q["gold_ids_html"] if h not in m.html]
    if missing or not q["gold_ids_html"]:
        return bad(f"gold_ids_html {missing or '[]'} not shipped")
    if not q["answers"] or not isinstance(q["page"], int) or not 1 <= q["page"] <= len(m.pages[pdf]):
        return bad("an answerable question needs answers and a page of its PDF")
    page_text, html_texts = m.on_page(pdf, q["page"]), m.html_of(q["gold_ids_html"])
    ref_level = level(q["reference"], page_text)
    if ref_level is None:
        bad(f"reference not on page {q['page']} of {pdf}")
    stats[f"reference/pdf {LEVELS[ref_level] if ref_level is not None else 'missing'}"] += 1
    stats["reference/html " + ("found" if level(q["reference"], html_texts) is not None
                                else "not found (layout differs)")] += 1
    if not any(level(a, variants(q["reference"])) is not None for a in q["answers"]):
        bad("no answer string occurs in the reference")
    for a in q["answers"]:
        if NORMALIZE and not NORMALIZE(a):
            bad(f"answer {a!r} is empty after rag eval's normalisation")
        elif NORMALIZE and len(NORMALIZE(a)) < 4:
            stats["answers/short after normalisation (< 4 chars)"] += 1
        for kind, texts in (("pdf", m.doc[pdf]), ("html", html_texts)):
            lv = level(a, texts)
            stats[f"answers/{kind} {LEVELS[lv] if lv is not None else 'missing'}"] += 1
            if lv is None:
                bad(f"answer {a!r} not in the {kind} text")
        if m.pypdf:
            lv = level(a, m.pypdf[pdf])
            stats[f"answers/pypdf {LEVELS[lv] if lv is not None else 'missing'}"] += 1


def check_absent(q: dict, m: Manuals, bad) -> None:
    if q["answers"] or q["gold_ids"] or q["gold_ids_html"] or q["page"] is not None:
        return bad("an absent question has no answers, gold ids or page")
    terms = q.get("absent_terms") or []
    if not terms:
        return bad("an absent question lists the absent_terms an answer would hold")
    pdf = MANUALS[q["manual"]][0]
    for t in terms:
        for kind, texts in (("pdf", m.doc[pdf]), ("html", m.manual_html(MANUALS[q["manual"]][1]))):
            if fold(t) in texts[2]:
                bad(f"absent term {t!r} occurs in the {kind} text")


def _normalizer():
    """rag eval's answer normalisation (SQuAD's), when the project is importable."""
    sys.path.insert(0, str(HERE.parents[2]))
    try:
        from rag.evaluation.metrics import normalize_answer
    except ImportError:
        return None
    return normalize_answer


NORMALIZE = _normalizer()
# manual -> (its PDF, its HTML folder)
MANUALS = {"octave": ("octave.pdf", "octave"), "gnuplot": ("gnuplot.pdf", "gnuplot"),
           "debmake": ("debmake-doc.pdf", "debmake-doc"), "bash": ("bashref.pdf", "bashref")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qa", default=str(HERE / "manuals.qa.jsonl"))
    ap.add_argument("--pypdf", action="store_true", help="also match against pypdf's text")
    args = ap.parse_args()
    rows = [json.loads(line) for line in Path(args.qa).read_text("utf-8").splitlines() if line]
    m, stats, errors = Manuals(args.pypdf), Counter(), []
    ids = Counter(q.get("id") for q in rows)
    errors += [f"{i}: id used {n} times" for i, n in ids.items() if n > 1]
    splits = {}
    for q in rows:
        check_row(q, m, stats, errors)
        splits.setdefault(q.get("manual"), set()).add(q.get("split"))
    errors += [f"manual {k}: questions in both splits" for k, v in splits.items() if len(v) > 1]
    report(rows, stats)
    for e in errors:
        print("FAIL", e)
    print(f"{len(rows)} questions, {len(errors)} failures")
    return 1 if errors else 0


def report(rows: list[dict], stats: Counter) -> None:
    table = Counter((q["split"], q["manual"], q["type"]) for q in rows)
    print(f"{'split':6} {'manual':8} " + " ".join(f"{t:>7}" for t in TYPES) + "   total")
    for split, manual in sorted({k[:2] for k in table}):
        n = [table[split, manual, t] for t in TYPES]
        print(f"{split:6} {manual:8} " + " ".join(f"{x:7}" for x in n) + f" {sum(n):7}")
    for key in sorted(stats):
        print(f"  {key}: {stats[key]}")


if __name__ == "__main__":
    sys.exit(main())
