"""Join the per-manual question files written here into ``train.qa.jsonl``, the training
QA set `rag train` reads: each question gets ``split: train`` and its gold document (the
document of the knowledge base whose text holds its reference, as ``rag index`` reads it).

    python eval/data/manuals-train/build.py DOCS_DIR [DOCS_DIR ...]

DOCS_DIR: the folders `fetch.sh` fills (``pdf`` and ``html``), indexed as given to
``rag index``, so the document ids here are those of that knowledge base.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))


def norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def main() -> None:
    from knowledge.loaders import load_file

    texts = {}
    for root in map(Path, sys.argv[1:]):
        for p in sorted(root.rglob("*")):
            if p.suffix in (".pdf", ".html"):
                rel = p.relative_to(root).as_posix()
                docs, _ = load_file(p, rel)
                texts[rel] = " ".join(norm(d.text) for d in docs)
    out, missing = [], 0
    for f in sorted(HERE.glob("*.qa.jsonl")):
        if f.name == "train.qa.jsonl":
            continue
        for line in open(f):
            if not line.strip():
                continue
            q = json.loads(line)
            gold = [d for d, t in texts.items() if norm(q["reference"]) in t]
            if not gold:
                missing += 1
                continue
            out.append({"id": q["id"], "question": q["question"], "type": q["type"],
                        "answers": q["answers"], "reference": q["reference"],
                        "gold_ids": gold[:1], "manual": q["manual"], "split": "train"})
    with open(HERE / "train.qa.jsonl", "w") as w:
        for q in out:
            w.write(json.dumps(q, ensure_ascii=False) + "\n")
    print(f"{len(out)} questions ({missing} whose reference no document holds, left out)")


if __name__ == "__main__":
    main()
