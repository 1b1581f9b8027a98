#!/usr/bin/env bash
# Answers people can use, on real manuals (issues 22 and 23): index the manuals dev set's
# documents (eval/data/manuals: PDF and HTML of the same manuals), then `rag eval` its
# questions per answer mode and form, right = an acceptable answer in at most 60 words, or
# declined when the manuals do not answer.
#   bash eval/manuals.sh [SETTINGS...]     e.g. "--answer-form short" "--answer-mode fused"
#   env: SPLIT (dev, default; test: the held-out manual), FORMAT (pdf, default, or html),
#        WORK (runs/), READER (rag/models/reader), TAG (a name for this code/settings),
#        EACH=1: each manual in a knowledge base of its own, asked its own questions (as a
#        user who indexes one program's manuals; by default all four share one)
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
SPLIT=${SPLIT:-dev}
FORMAT=${FORMAT:-pdf}
READER=${READER:-rag/models/reader}
TAG=${TAG:-now}
EACH=${EACH:-}
QA=eval/data/manuals/manuals.qa.jsonl
# the manuals of a split (the QA set's "manual" field) and their files
case $SPLIT in dev) MANUALS="octave gnuplot debmake" ;; *) MANUALS="bash" ;; esac
file_of() { case $1 in debmake) echo debmake-doc ;; bash) echo bashref ;; *) echo "$1" ;; esac; }
if [ -n "$EACH" ]; then
  for m in $MANUALS; do
    src=eval/data/manuals/$FORMAT/$(file_of "$m")
    if [ "$FORMAT" = pdf ]; then src=$src.pdf; fi
    $RAG index "$src" --kb "$WORK/kb-manuals-$FORMAT-$TAG-$m" >&2
    python3 -c 'import json, sys; sys.stdout.writelines(line for line in open(sys.argv[1])
        if json.loads(line)["manual"] == sys.argv[2])' $QA "$m" > "$WORK/manuals-$TAG-$m.qa.jsonl"
  done
else
  $RAG index "eval/data/manuals/$FORMAT" --kb "$WORK/kb-manuals-$FORMAT-$TAG" >&2
fi
[ $# -gt 0 ] || set -- ""
for settings in "$@"; do
  name=$WORK/eval-manuals-$FORMAT-$TAG${EACH:+-each}-$SPLIT
  name=$name$(printf -- '%s' "$settings" | tr -c 'a-z0-9' '-')
  runs=()
  if [ -n "$EACH" ]; then
    for m in $MANUALS; do
      runs+=("$name-$m")
      rm -rf "$name-$m"
      # shellcheck disable=SC2086  # settings are several flags
      $RAG eval "$WORK/manuals-$TAG-$m.qa.jsonl" --kb "$WORK/kb-manuals-$FORMAT-$TAG-$m" \
          --reader "$READER" --split "$SPLIT" --out "$name-$m" $settings > /dev/null
    done
  else
    runs+=("$name")
    rm -rf "$name"
    # shellcheck disable=SC2086
    $RAG eval "$QA" --kb "$WORK/kb-manuals-$FORMAT-$TAG" --reader "$READER" --split "$SPLIT" \
        --out "$name" $settings > /dev/null
  fi
  python3 - "$settings" "${runs[@]}" <<'EOF'
import json, statistics, sys
rows = [json.loads(line) for run in sys.argv[2:] for line in open(run + "/predictions.jsonl")]
pct = lambda xs: f"{100 * sum(xs) / len(xs):.1f}" if xs else "-"
cell = lambda t: pct([r["right"] for r in rows if r["type"] == t])  # absent: right = declined
answerable = [r for r in rows if r["type"] != "absent"]
said = [r["answer_words"] for r in rows if not r["abstained"]]
print(f"{sys.argv[1] or 'default':32} right {pct([r['right'] for r in rows])}  factoid {cell('factoid')}"
      f"  howto {cell('howto')}  why {cell('why')}  absent declined {cell('absent')}  "
      f"answerable declined {pct([r['abstained'] for r in answerable])}  "
      f"words {statistics.median(said) if said else '-'}  "
      f"answer in passages {pct([bool(r['answer_in_topk']) for r in answerable])}  "
      f"-> {' '.join(sys.argv[2:])}")
EOF
done
