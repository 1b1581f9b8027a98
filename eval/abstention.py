"""What abstention does on the test splits, reporting only: the thresholds were chosen on the
dev split when the reader was trained (or by `rag train ... --calibrate-only`).

    .venv/bin/python eval/abstention.py --reader rag/models/reader --n 300

Each sampled test question is asked three ways, through the same two gates `rag ask` uses
(the similarity guard, then the reader's own confidence against its no-answer option):
- answerable: top-k passages from its own knowledge base;
- missing document: the same knowledge base without the question's gold documents and any
  chunk holding an answer (top-k of what is left; similarity = best dense one left);
- off-topic: top-k from the other set's knowledge base.
Prints, per set and case, the share declined and by which gate, and the answerable
questions' EM/F1 with abstentions counted wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETS = [("squad", "eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad"),
        ("nq", "eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq")]


def read(reader, questions, passages, batch: int = 16):
    out = []
    for i in range(0, len(questions), batch):
        out += reader.read_many(questions[i:i + batch], passages[i:i + batch])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader", default="rag/models/reader")
    ap.add_argument("--n", type=int, default=300, help="test questions per set")
    ap.add_argument("-k", type=int, default=None, help="passages (default: the reader's)")
    args = ap.parse_args()

    from knowledge.kb import KnowledgeBase
    from rag.evaluation.metrics import exact_match, f1
    from rag.evaluation.qa import load_qaset, sample
    from rag.readers import load_reader
    from rag.retrieval import Retriever
    from rag.training.loop import cannot_answer

    reader = load_reader(args.reader)
    k = args.k or reader.config.k
    floor = reader.config.abstain_similarity
    result = {"reader": args.reader, "k": k, "abstain_similarity": floor,
              "abstain_threshold": reader.config.abstain_threshold}
    kbs = {name: KnowledgeBase.open(ROOT / kb) for name, _, kb in SETS}
    for name, qaset, _ in SETS:
        kb = kbs[name]
        qs = sample(load_qaset(ROOT / qaset, "test"), args.n, 0)
        texts = [q.question for q in qs]
        found = Retriever(kb).search_many(texts, 4 * k)
        hits = found.hits
        cases = {"answerable": ([h[:k] for h in hits], found.similarity)}
        missing, missing_sims = [], []
        vecs = kb.embedder.encode_queries(texts)
        for q, hs, pairs in zip(qs, hits, kb.dense_ids(vecs, 100)):
            missing.append([h for h in hs if cannot_answer(q, h)][:k])
            fetched = {h.chunk_id: h for h in kb.fetch(pairs)}
            left = [s for s, cid in pairs if cid in fetched and cannot_answer(q, fetched[cid])]
            missing_sims.append(left[0] if left else -1.0)
        cases["missing_document"] = (missing, missing_sims)
        other = next(kbs[n] for n, _, _ in SETS if n != name)
        off = Retriever(other).search_many(texts, k)
        cases["off_topic"] = (off.hits, off.similarity)
        for case, (passages, similarity) in cases.items():
            guarded = [floor is not None and s is not None and s < floor for s in similarity]
            outs = read(reader, texts, passages)
            by_reader = [o.abstained and not g for o, g in zip(outs, guarded)]
            row = {"n": len(qs),
                   "declined_%": round(100 * sum(g or r for g, r in zip(guarded, by_reader))
                                       / len(qs), 1),
                   "by_similarity_%": round(100 * sum(guarded) / len(qs), 1),
                   "by_reader_%": round(100 * sum(by_reader) / len(qs), 1)}
            if case == "answerable":
                ok = [not (g or o.abstained) for g, o in zip(guarded, outs)]
                row["em"] = round(100 * sum(exact_match(o.answer, list(q.answers)) * a
                                            for o, q, a in zip(outs, qs, ok)) / len(qs), 1)
                row["f1"] = round(100 * sum(f1(o.answer, list(q.answers)) * a
                                            for o, q, a in zip(outs, qs, ok)) / len(qs), 1)
            result[f"{name} {case}"] = row
            print(f"{name:5} {case:16} {json.dumps(row)}", file=sys.stderr, flush=True)
    for kb in kbs.values():
        kb.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
