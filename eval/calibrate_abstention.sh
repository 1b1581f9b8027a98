#!/usr/bin/env bash
# Fit the abstention rule of a reader (issue 27) on the dev questions of eight registers:
# SQuAD, NQ, the informal FAQ, changelog, README, forum and review sets, and the manuals,
# each asked as answerable, missing document, off-topic (and absent where a set has such
# questions), every set's answerable dev questions declined at most 3 %.
#   bash eval/calibrate_abstention.sh READER_DIR     (writes its rag_reader.json and card;
#   the shipped reader takes only the rule, abstain_rule, from a copy calibrated this way)
#   env: WORK (runs/: kb-squad, kb-nq, kb-manuals-pdf, informal/kb-<register>; see
#        eval/data/informal/README.md and eval/manuals.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
RAG=${RAG:-.venv/bin/rag}
WORK=${WORK:-runs}
qa=(eval/data/squad-dev-open.qa.jsonl.gz eval/data/nq-para-open.qa.jsonl.gz)
kbs=(--kb "$WORK/kb-squad" --kb "$WORK/kb-nq")
for r in faq changelog readme forum reviews; do
  qa+=("eval/data/informal/$r.qa.jsonl"); kbs+=(--kb "$WORK/informal/kb-$r")
done
qa+=(eval/data/manuals/manuals.qa.jsonl); kbs+=(--kb "$WORK/kb-manuals-pdf")
$RAG train "${qa[@]}" "${kbs[@]}" --out "${1:?a reader directory}" --calibrate-only \
    --dev-limit 300 --no-progress
