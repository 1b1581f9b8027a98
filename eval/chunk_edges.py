"""Answers cut at a chunk's edge: quotes that stop (or start) where their passage does while
the document goes on.

A passage is a chunk of ~200 tokens, and an excerpt of whole units of it can reach the
chunk's last sentence, which the chunker may have cut mid-way, or one that introduces what
the next chunk holds ("... we'd run:"), or open on a sentence that began in the chunk before.
This asks a QA set's questions with the shipped pipeline (which runs such a quote on into
the document: `Pipeline.go_on`) and counts, among the answers given, those whose quote still
ends at its (run-on) passage's end hanging on a colon or comma or in the middle of a
sentence, or starts at its passage's start inside one; it prints a few of them.

    .venv/bin/python eval/chunk_edges.py eval/data/manuals-train/train.qa.jsonl \
        --kb runs/kb-manuals-train-win --split all
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_ENDS = re.compile(r"[.!?:;…][\"'’”)\]]*\s*$")


def cut_end(doc: str, end: int) -> bool:
    """The document's sentence goes on after ``end``: no stop before it, more text after it
    on the same line or the next (in lower case)."""
    after = doc[end:end + 200]
    if not after.strip() or re.match(r"[ \t]*\n[ \t]*(\n|[^a-z \t])", after):
        return False  # (the document's end, a paragraph's, or a line's not going on in prose)
    return not _ENDS.search(doc[max(0, end - 10):end])


def cut_start(doc: str, start: int) -> bool:
    """The document's sentence began before ``start`` (in the same paragraph)."""
    before = doc[max(0, start - 200):start]
    if not before.strip() or re.search(r"\n[ \t]*\n[ \t]*$", before):
        return False
    return not _ENDS.search(before)


def main() -> None:
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.qa import load_qaset
    from rag.pipeline import Pipeline
    from rag.readers import load_reader
    from rag.retrieval import Retriever

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qaset")
    ap.add_argument("--kb", required=True)
    ap.add_argument("--split", default=None)
    ap.add_argument("--reader", default=str(ROOT / "rag/models/reader"))
    ap.add_argument("--show", type=int, default=5)
    args = ap.parse_args()
    questions = load_qaset(args.qaset, args.split)
    counts = dict.fromkeys(("answered", "at the passage end", "hanging there (: or ,)",
                            "cut mid-sentence there", "starting mid-sentence"), 0)
    shown = 0
    with KnowledgeBase.open(args.kb) as kb:
        reader = load_reader(args.reader)
        pipeline = Pipeline(Retriever(kb), reader, k=getattr(reader.config, "k", 5))
        docs: dict[str, str] = {}
        for q in questions:
            a = pipeline.ask(q.question)
            cited = next((c for c in a.citations if c.answer_start is not None), None)
            if a.abstained or cited is None:
                continue
            doc = docs.setdefault(cited.doc_id, kb.document_text(cited.doc_id))
            at_end = not doc[cited.answer_end:cited.end].strip()
            hang = at_end and a.answer.rstrip().endswith((":", ",")) and \
                bool(doc[cited.answer_end:cited.answer_end + 200].strip())
            end = at_end and cut_end(doc, cited.answer_end)
            start = not doc[cited.start:cited.answer_start].strip() and \
                cut_start(doc, cited.answer_start)
            for key, hit in zip(counts, (True, at_end, hang, end, start)):
                counts[key] += hit
            if (end or start or hang) and shown < args.show:
                shown += 1
                print(f"{q.id}: {'…' if start else ''}{a.answer[-160:]!r}"
                      f" → {doc[cited.answer_end:cited.answer_end + 80]!r}")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
