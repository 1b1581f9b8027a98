"""Time finding a Markdown file's headings (``knowledge.loaders._load_markdown``) on two
files that took minutes before (eval/RESULTS.md, "A second sweep, by hand"): an API
reference of 25,000 headings each with a code block (1.8 MB), and "# Title" followed by
200,000 spaces. Run it from each checkout to compare (before: a git worktree of the old
commit, ``cd WORKTREE && python eval/bench_markdown.py``); each file has ``--limit`` seconds.

    .venv/bin/python eval/bench_markdown.py
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))


def files() -> dict[str, str]:
    api = "".join(f"## api_call_{i}(x, y)\n\nReturns the sum of x and y.\n\n```\n"
                  f"api_call_{i}(1, 2)  # -> 3\n```\n\n" for i in range(25_000))
    return {"api.md (25,000 headings, code blocks)": api,
            "spaces.md ('# Title' + 200,000 spaces)": "# Title" + " " * 200_000 + "x\n\nbody\n"}


def main() -> None:
    from knowledge.loaders import _load_markdown

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=300, help="seconds per file before giving up")
    args = ap.parse_args()

    def give_up(*_):
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)
    for name, text in files().items():
        signal.alarm(args.limit)
        t0 = time.perf_counter()
        try:
            doc = _load_markdown(text, "x.md")
            said = f"{time.perf_counter() - t0:.2f} s, {len(doc.sections)} headings"
        except TimeoutError:
            said = f"over {args.limit} s"
        signal.alarm(0)
        print(f"{name}: {said} ({len(text) / 2**20:.1f} MB)")


if __name__ == "__main__":
    main()
