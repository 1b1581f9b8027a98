#!/usr/bin/env bash
# Follow-up questions (issue 25): each set's dev conversations asked three ways, `rag eval`
# per way: the follow-up with its conversation (history), the same follow-up alone
# (--no-history), and its self-contained form (--ask standalone).
#   bash eval/followups.sh [SPLIT]        (dev, default; test: held-out conversations;
#                                          fresh: the second held-out set, written 2026-12-05;
#                                          fresh2: the third, written 2026-12-06)
#   env: WORK (runs/: kb-squad and kb-nq from eval/train_default_reader.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
SPLIT=${1:-dev}
suffix="" split=$SPLIT
case $SPLIT in fresh|fresh2) suffix=-$SPLIT split=test;; esac
for set in squad nq; do
  for way in history no-history standalone; do
    case $way in
      history) flags=();; no-history) flags=(--no-history);; standalone) flags=(--ask standalone);;
    esac
    name=$WORK/followups-$SPLIT-$set-$way
    rm -rf "$name"
    $RAG eval "eval/data/followups-$set$suffix.qa.jsonl" --kb "$WORK/kb-$set" --split "$split" \
        "${flags[@]}" --out "$name" > /dev/null
    python3 - "$name" "$set" "$way" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(f"{sys.argv[2]:5} {sys.argv[3]:10} n {s['n']:4}  F1 {s['f1']:5.1f}  EM {s['exact_match']:5.1f}  "
      f"reader ms p50 {s['reader_ms_p50']:.0f}  -> {sys.argv[1]}")
PY
  done
done
