#!/bin/sh
# OCR and retrieval (issue 23): debmake-doc as its text PDF and as a 150-dpi scan of every
# page (poppler's pdftoppm, an image-only PDF), each indexed alone, then the manuals dev
# set's 30 debmake questions, retrieval only, top 5. The parse time limit is lifted for the
# scan: OCR takes seconds a page. Prints each run's answer recall@5; takes ~35 min on 2 cores.
#   sh eval/ocr_retrieval.sh [WORK]        (default runs/ocr)
set -eu
cd "$(dirname "$0")/.."
work=${1:-runs/ocr}
py=${PYTHON:-.venv/bin/python}
rm -rf "$work" && mkdir -p "$work/text" "$work/scan" "$work/png"
cp eval/data/manuals/pdf/debmake-doc.pdf "$work/text/"
pdftoppm -r 150 -gray -png "$work/text/debmake-doc.pdf" "$work/png/p"
"$py" - "$work" <<'PY'
import json, sys
from pathlib import Path
from PIL import Image
work = Path(sys.argv[1])
pages = [Image.open(p).convert("L") for p in sorted((work / "png").glob("p-*.png"))]
pages[0].save(work / "scan/debmake-doc.pdf", "PDF", resolution=150, save_all=True,
              append_images=pages[1:])
rows = [json.loads(line) for line in open("eval/data/manuals/manuals.qa.jsonl")]
(work / "debmake.qa.jsonl").write_text("".join(
    json.dumps(r) + "\n" for r in rows if r.get("gold_ids") == ["debmake-doc.pdf"]))
PY
rm -rf "$work/png"
for kind in text scan; do
  "$py" -c 'import sys, knowledge.sync; sys.modules["knowledge.sync"].PARSE_SECONDS = 1e6
from rag.cli import main; sys.exit(main(sys.argv[1:]))' index "$work/$kind" --kb "$work/kb-$kind"
  "$py" -m rag eval "$work/debmake.qa.jsonl" --kb "$work/kb-$kind" --reader none -k 5 \
      --split dev --out "$work/eval-$kind" > /dev/null
  "$py" -c 'import json, sys; s = json.load(open(sys.argv[1] + "/summary.json"))
print(sys.argv[2], "answer recall@5", s["answer_recall@5"], "recall@5", s["recall@5"])' \
      "$work/eval-$kind" "$kind"
done
