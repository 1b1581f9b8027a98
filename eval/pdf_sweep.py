"""PDF text quality over a folder of real PDFs, against poppler's `pdftotext` as an
independent reading (eval/RESULTS.md, issue 23, "A sweep over 41 TeX manuals"): per file and
in total, the share of pdftotext's words our text keeps on the same page (±1), words we split
("pro duces" where pdftotext has "produces"), table rows and those ending in a word cut at
its hyphen ("at- |"), U+FFFD characters, pages whose text ends in a bare page number, and the
seconds `load_pdf` took. Run it from each checkout to compare (before: a git worktree of the
old commit, with PYTHONPATH set to it).

    .venv/bin/python eval/pdf_sweep.py /usr/share/doc/texlive-doc --skip 'tst*,test-*'
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return [w.lower() for w in _WORD.findall(text)]


def measure(path: Path) -> dict:
    from knowledge.pdf import load_pdf

    t0 = time.perf_counter()
    doc, _ = load_pdf(path.read_bytes(), path.name)
    seconds = time.perf_counter() - t0
    theirs = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                            text=True, errors="replace").stdout.split("\f")
    starts = list(doc.page_starts) + [len(doc.text)]
    ours = [doc.text[starts[i]:starts[i + 1]] for i in range(len(doc.page_starts))]
    total = kept = split = bare = 0
    for i, page in enumerate(theirs[:len(ours)]):
        want = words(page)
        near = set(words(" ".join(ours[max(0, i - 1):i + 2])))
        total += len(want)
        kept += sum(1 for w in want if w in near)
        mine, vocab = words(ours[i]), set(want)
        split += sum(1 for a, b in zip(mine, mine[1:]) if a + b in vocab and a not in vocab)
        last = ours[i].strip().rsplit("\n", 1)[-1].strip()
        bare += last.isdigit() and last in {str(i + 1), doc.pages[i].label if doc.pages else ""}
    rows = [ln for ln in doc.text.split("\n") if ln.startswith("| ") and ln.endswith(" |")]
    return {"pages": len(ours), "words": total, "kept": kept, "split": split,
            "rows": len(rows), "cut_rows": sum(1 for r in rows if re.search(r"[a-z]- \|$", r)),
            "fffd": doc.text.count("\ufffd"), "bare_numbers": bare, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--skip", default="", help="file name globs to leave out, comma-separated")
    args = ap.parse_args()
    skip = [g for g in args.skip.split(",") if g]
    files = sorted(p for p in args.folder.rglob("*.pdf")
                   if not any(fnmatch.fnmatch(p.name, g) for g in skip))
    keys = ["pages", "words", "kept", "split", "rows", "cut_rows", "fffd", "bare_numbers",
            "seconds"]
    total = dict.fromkeys(keys, 0)
    from knowledge.errors import LoadError

    for path in files:
        try:
            m = measure(path)
        except LoadError as err:
            print(f"{path.name[:32]:32} not read: {err}")
            continue
        for k in keys:
            total[k] += m[k]
        print(f"{path.name[:32]:32} {m['pages']:4} p  kept {m['kept'] / max(m['words'], 1):.4f}"
              f"  split {m['split']:4}  rows {m['rows']:5} (cut {m['cut_rows']:3})  "
              f"U+FFFD {m['fffd']:3}  bare numbers {m['bare_numbers']:3}  {m['seconds']:.2f} s")
    print(f"{len(files)} files, {total['pages']} pages: words kept "
          f"{total['kept'] / max(total['words'], 1):.4f}, split {total['split']}, table rows "
          f"{total['rows']} ({total['cut_rows']} ending in a cut word), U+FFFD {total['fffd']}, "
          f"pages ending in a bare number {total['bare_numbers']}, {total['seconds']:.1f} s")


if __name__ == "__main__":
    main()
