#!/usr/bin/env bash
# Rebuild the project's default reader (rag/models/reader) from scratch on a CPU:
# index both corpora, train on the train splits only, then evaluate on the test splits.
#   bash eval/train_default_reader.sh [MINUTES]      (default 60 minutes of training)
# Re-running continues: existing knowledge bases are synced, training resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
MINUTES=${1:-60}
mkdir -p "$WORK"
$RAG index corpora/squad-dev/articles.jsonl.gz --kb "$WORK/kb-squad"
$RAG index eval/data/nq-para-open.corpus.jsonl.gz --kb "$WORK/kb-nq"
resume=()
[ -f "$WORK/reader/checkpoint/meta.json" ] && resume=(--resume)
$RAG train eval/data/squad-dev-open.qa.jsonl.gz eval/data/nq-para-open.qa.jsonl.gz \
    --kb "$WORK/kb-squad" --kb "$WORK/kb-nq" --out "$WORK/reader" \
    --passages 5 --batch-size 8 --lr 3e-4 --epochs 1 --frozen-layers 5 --eval-every 100 --patience 6 \
    --max-minutes "$MINUTES" --seed 0 "${resume[@]}"
