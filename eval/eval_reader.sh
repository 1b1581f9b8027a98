#!/usr/bin/env bash
# Reader quality on the test splits (seeded samples), most important runs first:
#   bash eval/eval_reader.sh [READER_DIR]     (default rag/models/reader)
# Needs runs/kb-squad and runs/kb-nq (eval/train_default_reader.sh builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
READER=${1:-rag/models/reader}
N=${N:-300}
one() {  # set, extra args...
  local set=$1; shift
  local qa kb
  if [ "$set" = squad ]; then qa=eval/data/squad-dev-open.qa.jsonl.gz; kb=$WORK/kb-squad
  else qa=eval/data/nq-para-open.qa.jsonl.gz; kb=$WORK/kb-nq; fi
  local name=$WORK/reader-$set$(printf -- '%s' "$@" | tr -c 'a-z0-9' '-')
  $RAG eval "$qa" --kb "$kb" --reader "$READER" --seed 0 --out "$name" "$@" > /dev/null
  python3 -c "import json,sys; s=json.load(open('$name/summary.json')); print('$set', sys.argv[1:], 'n', s['n'], 'EM', s['exact_match'], 'F1', s['f1'], 'unseen F1', s.get('f1_unseen_answers'), 'reader ms p50', s['reader_ms_p50'], 'abstained', s['abstained'])" "$@"
}
for set in squad nq; do one $set -k 5 --limit "$N"; done
for set in squad nq; do one $set -k 1 --retrieval gold --limit "$N"; done
for set in squad nq; do one $set -k 5 --grounded --limit "$N"; done
for set in squad nq; do one $set -k 1 --limit "$N"; done
for set in squad nq; do one $set -k 10 --limit "$N"; done
for set in squad nq; do one $set -k 20 --limit $((N / 2)); done
