"""HTML text quality over folders of real HTML manuals, against w3m's rendering as an
independent reading (``w3m -dump -cols 2000``): per file and in total, the share of w3m's
words our text keeps (a bag of words, lowercased, NFKC), w3m's lines of three words or more
that our text does not hold in that order (any three-word run missing), words we glue
together ("foobar" where w3m has "foo bar": adjacent table cells, inline blocks, <br>),
words we split ("lib foo 1" where w3m has "libfoo1"), words we have that w3m does not
(leaked markup or boilerplate), lines of a ``<pre>`` missing from our text, headings
missing from our sections, and the seconds ``load_file`` (what ``rag index`` calls) took.
w3m keeps the navigation we leave out on purpose, so "kept" stays below 1 and most lost
lines are navigation: compare them between checkouts, not with 1 or 0. Run it from each
checkout to compare (before: a git worktree of the old commit, run from there with
PYTHONPATH set to it); ``--examples`` prints each file's defects.

    nice -n 10 .venv/bin/python eval/html_sweep.py runs/manuals-train/html/* \
        eval/data/manuals/html/* /usr/share/developers-reference /usr/share/debian-reference \
        /usr/share/doc/maint-guide/html /usr/share/doc/python3/html \
        /usr/share/doc/libjsoncpp-doc /usr/share/doc/git-doc --examples

(apt-get install w3m developers-reference debian-reference-en maint-guide python3-doc
libjsoncpp-doc git-doc; ``--sample 40`` for a quick look.)
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import time
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))
_WORD = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")
KEYS = ["words", "kept", "lines", "lost_lines", "glued", "split", "extra", "pre_lines",
        "pre_changed", "headings", "lost_headings", "seconds"]


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return [w.lower() for w in _WORD.findall(text)]


def reference(text: str) -> str:
    """w3m's plain-text rendering of a page, given the text our loader decoded (a page whose
    <meta> names the wrong charset would otherwise count as our error)."""
    return subprocess.run(["w3m", "-dump", "-cols", "2000", "-I", "UTF-8", "-O", "UTF-8",
                           "-T", "text/html"], input=text, capture_output=True, text=True,
                          errors="replace", timeout=120).stdout


def _hidden(tag) -> bool:
    """Inside an element no reader sees as content: script, style, <nav>, a navigation role."""
    for t in [tag, *tag.parents]:
        if t.name in ("script", "style", "head", "nav", "noscript", "template") or \
                (t.get("role") if hasattr(t, "get") else None) == "navigation":
            return True
    return False


def measure(path: Path, rel: str) -> dict:
    from bs4 import BeautifulSoup

    from knowledge.loaders import decode_text, load_file

    t0 = time.perf_counter()
    [doc], _ = load_file(path, rel)
    seconds = time.perf_counter() - t0
    source = decode_text(path.read_bytes())[0]
    shown = reference(source)
    ref = words(shown)
    mine = words(doc.text)
    want, have = Counter(ref), Counter(mine)
    vocab = set(want)
    adjacent = set(zip(ref, ref[1:]))
    pairs = {a + b for a, b in adjacent}
    glued = [w for w in mine if w not in vocab and w in pairs]
    # a word of the reference we show in two or three pieces ("lib foo 1" for "libfoo1")
    split = [" ".join(mine[i:j]) for i in range(len(mine) - 1) for j in (i + 2, i + 3)
             if (mine[i], mine[i + 1]) not in adjacent and "".join(mine[i:j]) in vocab]
    extra = Counter({w: n - want[w] for w, n in have.items() if n > want[w]})
    for w in glued:
        extra[w] -= 1
    grams = set(zip(mine, mine[1:], mine[2:]))
    ref_lines = [w for w in map(words, shown.split("\n")) if len(w) >= 3]
    lost_lines = [" ".join(w) for w in ref_lines
                  if not all(g in grams for g in zip(w, w[1:], w[2:]))]
    soup = BeautifulSoup(source, "lxml")
    lines = {ln.rstrip() for ln in doc.text.split("\n")}
    pre_lines, pre_changed = 0, []
    for pre in soup.find_all("pre"):
        if _hidden(pre) or pre.find_parent("pre"):
            continue
        for ln in pre.get_text().split("\n"):
            if ln.strip():
                pre_lines += 1
                if ln.rstrip() not in lines:
                    pre_changed.append(ln.rstrip())
    titles = {_norm(s.title) for s in doc.sections}
    heads = [_norm(h.get_text()) for h in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"])
             if not _hidden(h)]
    heads = [h for h in heads if h]
    lost = [h for h in heads if h not in titles]
    return {"words": len(ref), "kept": sum((want & have).values()), "lines": len(ref_lines),
            "lost_lines": len(lost_lines), "glued": len(glued),
            "split": len(split), "extra": sum(n for n in extra.values() if n > 0),
            "pre_lines": pre_lines, "pre_changed": len(pre_changed), "headings": len(heads),
            "lost_headings": len(lost), "seconds": seconds,
            "lost_lines_all": lost_lines,
            "examples": {"lines": [ln[:100] for ln in lost_lines[:6]], "glued": glued[:8],
                         "split": split[:8],
                         "extra": [w for w, _ in extra.most_common(8) if extra[w] > 0],
                         "missing": [w for w, _ in (want - have).most_common(8)],
                         "pre": pre_changed[:4], "headings": lost[:4]}}


def _norm(s: str) -> str:
    """A heading compared by its words only (permalink marks and spacing aside)."""
    return " ".join(words(s))


def files_of(folder: Path, skip: list[str], sample: int) -> list[Path]:
    """A folder's pages, sorted; with ``sample`` at most that many, spread evenly."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".html", ".htm")
                   and p.is_file() and not any(fnmatch.fnmatch(p.name, g) for g in skip))
    if sample and len(files) > sample:
        files = [files[i * len(files) // sample] for i in range(sample)]
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--skip", default="", help="file name globs to leave out, comma-separated")
    ap.add_argument("--sample", type=int, default=0,
                    help="at most this many pages per folder, spread evenly (0: all)")
    ap.add_argument("--examples", action="store_true", help="print each file's defects")
    args = ap.parse_args()
    from bs4 import XMLParsedAsHTMLWarning

    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)  # (XHTML pages)
    skip = [g for g in args.skip.split(",") if g]
    total = dict.fromkeys(KEYS, 0)
    from knowledge.errors import LoadError

    n = 0
    for folder in args.folders:
        for path in files_of(folder, skip, args.sample):
            name = f"{folder.name}/{path.relative_to(folder)}"
            try:
                m = measure(path, name)
            except LoadError as err:
                print(f"{name[:44]:44} not read: {err}")
                continue
            n += 1
            for k in KEYS:
                total[k] += m[k]
            print(f"{name[:44]:44} {m['words']:6} w  kept {m['kept'] / max(m['words'], 1):.4f}"
                  f"  lost lines {m['lost_lines']:4}/{m['lines']:<5} glued {m['glued']:4}  "
                  f"split {m['split']:4}  extra {m['extra']:5}  pre {m['pre_changed']:4}/"
                  f"{m['pre_lines']:<5}  lost h {m['lost_headings']:3}/{m['headings']:<4} "
                  f"{m['seconds']:.2f} s")
            if args.examples:
                for k, v in m["examples"].items():
                    if v:
                        print(f"    {k}: {v}")
    print(f"{n} files, {total['words']} reference words: kept "
          f"{total['kept'] / max(total['words'], 1):.4f}, lines lost "
          f"{total['lost_lines']}/{total['lines']}, glued {total['glued']}, split "
          f"{total['split']}, extra {total['extra']}, pre lines changed {total['pre_changed']}"
          f"/{total['pre_lines']}, headings lost {total['lost_headings']}/{total['headings']}, "
          f"{total['seconds']:.1f} s")


if __name__ == "__main__":
    main()
