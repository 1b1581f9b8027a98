"""Reading past the chunk: each retrieved passage read with the document's following text
appended (the start of the next chunk), measured end to end (not shipped: eval/RESULTS.md,
issue 22).

A passage holding the answer is among the 3 read for ~77 % of the manuals' answerable
questions; for 6-9 % more the answer sits in the chunk next to one read. This appends up to
``--extra`` characters of the document after each retrieved passage (exact text, so the
answer stays a quotation) and reads with ``--tokens`` tokens per passage (the reader keeps
the first that many), then runs `rag eval`'s evaluation into ``--out``: right = an acceptable
answer within 60 words, or declined where the set says the answer is absent.

    .venv/bin/python eval/read_following.py eval/data/manuals/manuals.qa.jsonl \
        --kb runs/kb-manuals-pdf-s13 --split dev --extra 600 --tokens 256 --out runs/rf-600
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.qa import load_qaset
    from rag.evaluation.run import evaluate
    from rag.pipeline import Pipeline
    from rag.readers import load_reader
    from rag.retrieval import Retrieved, Retriever

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qaset")
    ap.add_argument("--kb", required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--extra", type=int, default=600, help="characters appended (0: none)")
    ap.add_argument("--tokens", type=int, default=256, help="tokens read per passage")
    ap.add_argument("--min-chunks", type=int, default=0,
                    help="read on only in documents of at least this many chunks")
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--out", required=True, help="a new folder for the run (as `rag eval`)")
    args = ap.parse_args()

    class ReadOn(Retriever):
        def search_many(self, queries, k=5, filters=None):
            found = super().search_many(queries, k, filters)
            return Retrieved([[self.run_on(h) for h in hits] for hits in found.hits],
                             found.similarity, found.timings)

        def run_on(self, hit):
            conn = self.kb.store.conn
            n = conn.execute("SELECT COUNT(*) FROM chunks JOIN documents d ON d.id = document_id"
                             " WHERE d.doc_id = ?", (hit.doc_id,)).fetchone()[0]
            more = (self.kb.text_after(hit.doc_id, hit.end, args.extra)
                    if args.extra and n >= args.min_chunks else "")
            return replace(hit, text=hit.text + more, end=hit.end + len(more))

    questions = load_qaset(args.qaset, args.split)
    with KnowledgeBase.open(args.kb) as kb:
        reader = load_reader(str(ROOT / "rag/models/reader"), max_passage_tokens=args.tokens)
        pipeline = Pipeline(ReadOn(kb), reader, k=args.k)
        evaluate(pipeline, questions, Path(args.out), {"qaset": args.qaset, "split": args.split,
                 "kb": args.kb, "extra": args.extra, "tokens": args.tokens,
                 "min_chunks": args.min_chunks}, log=lambda m: None)
    rows = [json.loads(line) for line in open(Path(args.out) / "predictions.jsonl")]
    by_type: dict[str, list[bool]] = {}
    for r in rows:  # (right: an acceptable answer within 60 words, or declined where absent)
        by_type.setdefault(r.get("type") or "all", []).append(bool(r["right"]))
    pct = lambda xs: f"{100 * sum(xs) / len(xs):.1f}"  # noqa: E731
    held = sum(bool(r["answer_in_topk"]) for r in rows if r.get("type") != "absent")
    print(f"extra {args.extra} tokens {args.tokens} {args.split}: right "
          f"{pct([r['right'] for r in rows])} "
          + " ".join(f"{t} {pct(v)}" for t, v in by_type.items())
          + f" (answer in the passages read: {held})")


if __name__ == "__main__":
    main()
