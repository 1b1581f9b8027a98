#!/usr/bin/env bash
# Answers people can use, on real manuals (issues 22 and 23): index the manuals dev set's
# documents (eval/data/manuals: PDF and HTML of the same manuals), then `rag eval` its
# questions per answer mode and form, right = an acceptable answer in at most 60 words, or
# declined when the manuals do not answer.
#   bash eval/manuals.sh [SETTINGS...]     e.g. "--answer-form short" "--answer-mode fused"
#   env: SPLIT (dev, default; test: the held-out manual), FORMAT (pdf, default, or html),
#        WORK (runs/), READER (rag/models/reader), TAG (a name for this code/settings)
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
SPLIT=${SPLIT:-dev}
FORMAT=${FORMAT:-pdf}
READER=${READER:-rag/models/reader}
TAG=${TAG:-now}
QA=eval/data/manuals/manuals.qa.jsonl
KB=$WORK/kb-manuals-$FORMAT-$TAG
$RAG index "eval/data/manuals/$FORMAT" --kb "$KB" >&2
[ $# -gt 0 ] || set -- ""
for settings in "$@"; do
  name=$WORK/eval-manuals-$FORMAT-$TAG-$SPLIT$(printf -- '%s' "$settings" | tr -c 'a-z0-9' '-')
  rm -rf "$name"
  # shellcheck disable=SC2086  # settings are several flags
  $RAG eval "$QA" --kb "$KB" --reader "$READER" --split "$SPLIT" --out "$name" $settings \
      > /dev/null
  python3 - "$name" "$settings" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
by = s.get("by_type", {})
cell = lambda t, m: by.get(t, {}).get(m, "-")
print(f"{sys.argv[2] or 'default':32} right {s['right']:5.1f}  factoid {cell('factoid', 'right')}  "
      f"howto {cell('howto', 'right')}  why {cell('why', 'right')}  "
      f"absent declined {cell('absent', 'declined_absent')}  "
      f"answerable declined {s.get('declined_answerable', '-')}  words {s.get('answer_words_median')}"
      f"  recall@5 {s.get('recall@5')}  -> {sys.argv[1]}")
EOF
done
