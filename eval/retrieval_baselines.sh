#!/usr/bin/env bash
# Retrieval baselines on the test splits (seeded 1,000-question samples), no reader:
#   bash eval/retrieval_baselines.sh     (needs runs/kb-squad and runs/kb-nq, see
#                                         eval/train_default_reader.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
for mode in dense lexical hybrid; do
  $RAG eval eval/data/squad-dev-open.qa.jsonl.gz --kb "$WORK/kb-squad" --reader none \
      --retrieval $mode --limit 1000 --seed 0 --out "$WORK/eval-squad-$mode" --json
  $RAG eval eval/data/nq-para-open.qa.jsonl.gz --kb "$WORK/kb-nq" --reader none \
      --retrieval $mode --limit 1000 --seed 0 --out "$WORK/eval-nq-$mode" --json
done
