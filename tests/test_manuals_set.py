"""eval/data/manuals: the QA set loads as `rag eval` reads it, and eval/data/manuals/check.py
finds every answer in the shipped PDF and HTML text (issue 22's dev/test set of manuals)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.evaluation.qa import load_qaset

ROOT = Path(__file__).resolve().parents[1]
MANUALS = ROOT / "eval" / "data" / "manuals"
QA = MANUALS / "manuals.qa.jsonl"


def test_loads_with_types_and_held_out_manual():
    everything = load_qaset(QA, split="all")
    test = load_qaset(QA, split="test")
    assert len(everything) == 205
    assert {q.extra["manual"] for q in test} == {"bash"} and len(test) == 100
    assert {q.extra["type"] for q in everything} == {"factoid", "howto", "why", "absent"}
    absent = [q for q in everything if q.extra["type"] == "absent"]
    assert absent and all(not q.answers and not q.gold_ids for q in absent)
    shipped = {p.name for p in (MANUALS / "pdf").glob("*.pdf")}
    assert {g for q in everything for g in q.gold_ids} == shipped


def test_every_gold_html_page_is_shipped():
    rows = [json.loads(line) for line in QA.read_text("utf-8").splitlines()]
    pages = {h for r in rows for h in r["gold_ids_html"]}
    assert pages and all((MANUALS / "html" / h).is_file() for h in pages)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")
def test_check_script_finds_every_answer():
    out = subprocess.run([sys.executable, str(MANUALS / "check.py")], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "205 questions, 0 failures" in out.stdout
    assert "answers/pdf missing" not in out.stdout and "answers/html missing" not in out.stdout


def test_training_questions_are_about_other_manuals_and_quote_them():
    """eval/data/manuals-train (the reader's training questions about manuals): every
    question of the per-manual files is in train.qa.jsonl with a gold document, each answer
    inside its reference, and none is about a dev/test or reserved manual."""
    train_dir = ROOT / "eval" / "data" / "manuals-train"
    written = [json.loads(line) for f in sorted(train_dir.glob("*.qa.jsonl"))
               if f.name != "train.qa.jsonl" for line in f.read_text("utf-8").splitlines()]
    train = load_qaset(train_dir / "train.qa.jsonl", split="train")
    assert len(written) >= 600 and {q.id for q in train} == {r["id"] for r in written}
    assert {q.extra["type"] for q in train} == {"factoid", "howto", "why"}
    norm = lambda s: " ".join(s.split())  # noqa: E731
    for q in train:
        assert q.gold_ids and q.answers
        assert all(norm(a) in norm(q.extra["reference"]) for a in q.answers), q.id
    held = {q.extra["manual"] for q in load_qaset(QA, split="all")}
    manuals = {q.extra["manual"] for q in train}
    assert not manuals & held and not any(m.startswith(("r-", "R-")) for m in manuals)
