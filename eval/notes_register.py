"""A register of one-line notes (issue 27): a folder of single sentences, what a user's quick
notes look like, to check abstention where each note is a whole chunk.

Built from SQuAD-dev-open's *train* split (never its test split): the sentences of 40
articles' paragraphs, each a note of its own (`notes.corpus.jsonl`), and up to 200 of those
articles' questions whose answer lies in one sentence, with that note as gold
(`notes.qa.jsonl`; marked "test": the register is only reported, no setting is chosen on it).

    .venv/bin/python eval/notes_register.py runs/notes
    .venv/bin/rag index runs/notes/notes.corpus.jsonl --kb runs/notes/kb-notes
    .venv/bin/python eval/abstention.py --split test --n 100 \
        --set notes=runs/notes/notes.qa.jsonl:runs/notes/kb-notes --features F
"""
from __future__ import annotations

import gzip
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    arts = {json.loads(x)["id"]: json.loads(x)
            for x in gzip.open(ROOT / "corpora/squad-dev/articles.jsonl.gz")}
    qs = [q for q in (json.loads(x) for x in gzip.open(ROOT / "eval/data/squad-dev-open.qa.jsonl.gz"))
          if q["split"] == "train"]
    names = sorted({q["gold_ids"][0] for q in qs})
    rng.shuffle(names)
    names = set(names[:40])
    notes, where = [], {}
    for name in sorted(names):
        text = arts[name]["text"]
        for para in sorted({(int(q["context_start"]), int(q["context_end"])) for q in qs
                            if q["gold_ids"][0] == name}):
            pos = para[0]
            for s in SENTENCE.split(text[para[0]:para[1]]):
                start = text.index(s, pos)
                pos = start + len(s)
                if len(s.split()) >= 4:
                    nid = f"note-{len(notes) + 1:04d}"
                    notes.append({"id": nid, "title": "", "text": s.strip(),
                                  "source": f"SQuAD v1.1 dev, {name}", "licence": "CC BY-SA 4.0"})
                    where[nid] = (name, start, pos)
    qa = []
    for q in qs:
        if q["gold_ids"][0] not in names:
            continue
        st, ans = int(q["answer_starts"][0]), q["answers"][0]
        hit = [n for n, (a, s, e) in where.items() if a == q["gold_ids"][0] and s <= st
               and st + len(ans) <= e]
        if len(hit) == 1:
            qa.append({"id": "notes-" + q["id"], "question": q["question"],
                       "answers": q["answers"], "gold_ids": hit, "type": "factoid",
                       "split": "test"})
    qa = sorted(rng.sample(qa, min(200, len(qa))), key=lambda q: q["id"])
    for name, rows in (("notes.corpus.jsonl", notes), ("notes.qa.jsonl", qa)):
        with open(out / name, "w") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"{len(notes)} notes, {len(qa)} questions -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
