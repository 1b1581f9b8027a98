"""Time `rag index` on a scanned PDF (no text layer: every page read by Tesseract) with
OpenMP's thread limit for Tesseract at each value given: "64" is what it was before
2026-12-07 (Tesseract asks for up to 10 threads whatever OMP_NUM_THREADS says), "1" the
default now (``knowledge/ocr.py``). The scan is made here: pages of a real manual drawn
grey at ``--dpi`` into a PDF of images. Each run builds its own knowledge base; the chunk
texts of every run must be the same (checked).

    .venv/bin/python eval/bench_ocr.py                       # octave.pdf pages 31-60, 150 dpi
    .venv/bin/python eval/bench_ocr.py --limits 64,1,2 --pages 31-40
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_scan(pdf: Path, first: int, last: int, dpi: int, out: Path) -> int:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(pdf.read_bytes())
    images = [doc[i].render(scale=dpi / 72, grayscale=True).to_pil()
              for i in range(first - 1, min(last, len(doc)))]
    images[0].save(out, save_all=True, append_images=images[1:], resolution=dpi)
    return len(images)


def chunk_hash(kb: Path) -> str:
    with sqlite3.connect(kb / "kb.sqlite") as db:
        rows = db.execute("SELECT text FROM chunks ORDER BY rowid").fetchall()
    return f"{len(rows)} chunks, {hashlib.sha1(''.join(r[0] for r in rows).encode()).hexdigest()[:12]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdf", type=Path, default=ROOT / "eval/data/manuals/pdf/octave.pdf")
    ap.add_argument("--pages", default="31-60", help="FIRST-LAST, from 1")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--limits", default="64,1", help="OMP_THREAD_LIMIT values, in turn")
    args = ap.parse_args()
    first, last = (int(x) for x in args.pages.split("-"))
    rag = [sys.executable, "-m", "rag"]
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.pdf"
        n = make_scan(args.pdf, first, last, args.dpi, scan)
        print(f"{args.pdf.name} pages {first}-{first + n - 1} as a {args.dpi} dpi scan "
              f"({scan.stat().st_size / 2**20:.1f} MB), {os.cpu_count()} CPUs")
        seen = set()
        for limit in args.limits.split(","):
            kb = Path(tmp) / f"kb-{limit}"
            env = {**os.environ, "OMP_THREAD_LIMIT": limit}
            t0 = time.perf_counter()
            subprocess.run([*rag, "index", str(scan), "--kb", str(kb), "--parse-timeout",
                            "3600"], check=True, cwd=ROOT, env=env, capture_output=True)
            wall = time.perf_counter() - t0
            text = chunk_hash(kb)
            seen.add(text)
            print(f"OMP_THREAD_LIMIT={limit:>3}: {wall:6.1f} s, {wall / n:5.2f} s a page; {text}")
        print("same text in every run" if len(seen) == 1 else "TEXTS DIFFER")


if __name__ == "__main__":
    main()
