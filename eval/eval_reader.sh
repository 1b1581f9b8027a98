#!/usr/bin/env bash
# Reader quality on seeded samples of both QA sets, one `rag eval` per set and setting:
#   bash eval/eval_reader.sh [READER_DIR] [SETTINGS...]     e.g. runs/reader "-k 5" "-k 1"
#     READER_DIR  default rag/models/reader
#     SETTINGS    quoted `rag eval` flags, one run per word group; default: the k sweep
#                 "-k 5" "-k 1 --retrieval gold" "-k 1" "-k 10" "-k 20"
#   env: N (sample size, default 300), SPLIT (test, or dev for choosing settings),
#        WORK (runs/: knowledge bases from eval/train_default_reader.sh, results go there too),
#        ABSTAIN (off, default: rows measure the reader, with --abstain-threshold 0
#        --abstain-similarity 0; on: the reader's own thresholds, abstentions count as wrong)
# predictions.csv keeps each answer's confidence and similarity, so any threshold's effect
# can be read off afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
READER=rag/models/reader
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then READER=$1; shift; fi
N=${N:-300}
ABSTAIN=${ABSTAIN:-off}
abstain=(--abstain-threshold 0 --abstain-similarity 0)
[ "$ABSTAIN" = on ] && abstain=()
SPLIT=${SPLIT:-test}
[ $# -gt 0 ] || set -- "-k 5" "-k 1 --retrieval gold" "-k 1" "-k 10" "-k 20"
tag=$(printf -- '%s' "$READER" | tr -c 'a-zA-Z0-9' '-')
for settings in "$@"; do
  for set in squad nq; do
    if [ "$set" = squad ]; then qa=eval/data/squad-dev-open.qa.jsonl.gz; kb=$WORK/kb-squad
    else qa=eval/data/nq-para-open.qa.jsonl.gz; kb=$WORK/kb-nq; fi
    name=$WORK/eval-$tag-$SPLIT-$set$(printf -- '%s' "$settings" | tr -c 'a-z0-9' '-')-n$N-abstain-$ABSTAIN
    # shellcheck disable=SC2086  # settings are several flags
    $RAG eval "$qa" --kb "$kb" --reader "$READER" --split "$SPLIT" --limit "$N" --seed 0 \
        "${abstain[@]}" --out "$name" $settings > /dev/null
    python3 - "$name" "$set" "$settings" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
print(f"{sys.argv[2]:5} {sys.argv[3]:28} n {s['n']:4}  EM {s['exact_match']:5.1f}  "
      f"F1 {s['f1']:5.1f}  unseen F1 {s.get('f1_unseen_answers') or '-'}  "
      f"abstained {s.get('abstained_pct', s.get('abstained', '-'))}  "
      f"reader ms p50 {s['reader_ms_p50']:.0f}  -> {sys.argv[1]}")
EOF
  done
done
