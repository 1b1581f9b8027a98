"""Which segmentation gives Chinese BM25 the best recall: the chunks of a knowledge base
re-indexed in an in-memory FTS5 table per variant, every question of a QA set searched.

    .venv/bin/python eval/bench_cjk_lexical.py --kb runs/kb-zh-e5 \
        --qa eval/data/zh-notes.qa.jsonl

Variants: ``unicode61`` (format 2: a CJK run is one token), SQLite's ``trigram`` tokenizer,
``jieba`` (search-mode word segmentation, query cut the same way), ``bigram`` (what
knowledge/lexical.py does), ``bigram+unigram`` (single characters indexed too). Recall@k
counts a question as found when a chunk of its gold document is in the top k.
"""
from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge.kb import STOPWORDS  # noqa: E402
from knowledge.lexical import _RUN, lexical  # noqa: E402


def jieba_cut(text: str) -> str:
    import jieba

    return " ".join(jieba.cut_for_search(text))


def with_unigrams(text: str) -> str:
    return _RUN.sub(lambda m: " " + " ".join(m.group()) + " " + lexical(m.group()) + " ", text)


def words(text: str) -> list[str]:
    found = [w.lower() for w in re.findall(r"\w+", text)]
    kept = [w for w in found if w not in STOPWORDS] or found
    return list(dict.fromkeys(kept))


VARIANTS = {  # name: (tokenizer, document transform, query -> MATCH expression)
    "unicode61": ("unicode61 remove_diacritics 2", lambda t: t,
                  lambda q: " OR ".join(f'"{w}"' for w in words(q))),
    "trigram": ("trigram", lambda t: t,
                lambda q: " OR ".join(f'"{w[i:i + 3]}"' for w in words(q)
                                      for i in range(max(1, len(w) - 2)) if len(w) >= 3)),
    "jieba": ("unicode61 remove_diacritics 2", jieba_cut,
              lambda q: " OR ".join(f'"{w}"' for w in words(jieba_cut(q)))),
    "bigram": ("unicode61 remove_diacritics 2", lexical,
               lambda q: " OR ".join(f'"{w}"' for w in words(lexical(q)))),
    "bigram+unigram": ("unicode61 remove_diacritics 2", with_unigrams,
                       lambda q: " OR ".join(f'"{w}"' for w in words(lexical(q)))),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("--qa", required=True)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    src = sqlite3.connect(Path(args.kb) / "kb.sqlite")
    chunks = src.execute("SELECT c.id, d.doc_id, c.text FROM chunks c "
                         "JOIN documents d ON c.document_id = d.id").fetchall()
    doc_of = {cid: doc for cid, doc, _ in chunks}
    questions = [json.loads(line) for line in open(args.qa, encoding="utf-8") if line.strip()]
    results = {}
    for name, (tokenizer, transform, match_of) in VARIANTS.items():
        mem = sqlite3.connect(":memory:")
        mem.execute(f"CREATE VIRTUAL TABLE f USING fts5(text, tokenize='{tokenizer}')")
        mem.executemany("INSERT INTO f(rowid, text) VALUES (?, ?)",
                        [(cid, transform(text)) for cid, _, text in chunks])
        hits = {1: 0, 5: 0, 20: 0}
        for q in questions:
            match = match_of(q["question"])
            rows = mem.execute("SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f), rowid "
                               "LIMIT 20", (match,)).fetchall() if match else []
            docs = [doc_of[r[0]] for r in rows]
            for k in hits:
                hits[k] += any(d in q["gold_ids"] for d in docs[:k])
        results[name] = {f"recall@{k}": round(100 * v / len(questions), 1)
                         for k, v in hits.items()}
    if args.json:
        print(json.dumps({"questions": len(questions), "chunks": len(chunks), **results}))
        return
    print(f"{len(questions)} questions, {len(chunks)} chunks")
    print(f"{'variant':<16} {'R@1':>6} {'R@5':>6} {'R@20':>6}")
    for name, r in results.items():
        print(f"{name:<16} {r['recall@1']:>6} {r['recall@5']:>6} {r['recall@20']:>6}")


if __name__ == "__main__":
    main()
