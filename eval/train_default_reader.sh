#!/usr/bin/env bash
# Rebuild the project's default reader (rag/models/reader) from scratch: index both corpora,
# train on the train splits only (span head + copy decoder over MiniLM), then calibrate.
#   bash eval/train_default_reader.sh [MINUTES] [extra rag train flags, e.g. --device cuda]
# Re-running continues: existing knowledge bases are synced, training resumes from the last
# checkpoint in $WORK/reader. On a GPU: DEVICE=cuda bash eval/train_default_reader.sh 30
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
MINUTES=${1:-60}
shift || true
mkdir -p "$WORK"
$RAG index corpora/squad-dev/articles.jsonl.gz --kb "$WORK/kb-squad"
$RAG index eval/data/nq-para-open.corpus.jsonl.gz --kb "$WORK/kb-nq"
resume=()
[ -f "$WORK/reader/checkpoint/meta.json" ] && resume=(--resume)
$RAG train eval/data/squad-dev-open.qa.jsonl.gz eval/data/nq-para-open.qa.jsonl.gz \
    --kb "$WORK/kb-squad" --kb "$WORK/kb-nq" --out "$WORK/reader" \
    --passages 3 --batch-size 8 --lr 1e-4 --epochs 2 --frozen-layers 0 --bf16 auto \
    --unanswerable-every 8 --dev-limit 150 --eval-every 150 --patience 6 \
    --device "${DEVICE:-cpu}" --max-minutes "$MINUTES" --seed 0 --no-progress "${resume[@]}" "$@"
