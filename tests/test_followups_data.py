"""The follow-up question sets (issue 25): they pass their checker, the checker catches a
broken row, and `rag eval` reads them by split with the conversation fields kept."""
import json
import subprocess
import sys

from conftest import ROOT
from rag.evaluation.qa import load_qaset

DATA = ROOT / "eval" / "data"
CHECK = ROOT / "eval" / "followups_check.py"
SETS = [DATA / "followups-squad.qa.jsonl", DATA / "followups-nq.qa.jsonl"]


def run_check(*args):
    return subprocess.run([sys.executable, str(CHECK), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_the_sets_pass_their_checker_and_meet_the_brief():
    done = run_check()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "0 with problems" in done.stderr
    rows = [json.loads(line) for path in SETS for line in path.read_text().splitlines()]
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("dev", "test")}
    assert len(by_split["dev"]) >= 150 and len(by_split["test"]) >= 100
    kinds = [r["reference"] for r in rows]
    assert kinds.count("pronoun") >= 0.4 * len(rows) and kinds.count("ellipsis") >= 0.2 * len(rows)
    for split in by_split.values():  # about 2/3 SQuAD in each split
        assert 0.6 <= sum(r["source"] == "squad" for r in split) / len(split) <= 0.72


def test_the_checker_reports_each_broken_row(tmp_path):
    row = json.loads(SETS[0].read_text().splitlines()[0])
    broken = [dict(row, id="a", answers=["not in the paragraph at all"]),
              dict(row, id="b", standalone=row["question"].upper()),
              dict(row, id="c", split="test" if row["split"] == "dev" else "dev"),
              dict(row, id="d", history=[])]
    path = tmp_path / "broken.qa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in broken))
    done = run_check(path)
    assert done.returncode == 1
    for rid, message in (("a", "is not in the paragraph"), ("b", "standalone is the same"),
                         ("c", "in the source"), ("d", "missing or empty 'history'")):
        assert f": {rid}: " in done.stderr and message in done.stderr, (rid, done.stderr)
    assert "4 with problems" in done.stderr


def test_rag_eval_reads_the_sets_by_their_own_dev_and_test_splits():
    for path in SETS:
        dev, test = load_qaset(path, split="dev"), load_qaset(path, split="test")
        assert {q.split for q in dev} == {"dev"} and {q.split for q in test} == {"test"}
        q = dev[0]
        assert q.answers and q.gold_ids and q.extra["history"]
        assert q.extra["standalone"] != q.question
        assert q.extra["reference"] in ("pronoun", "definite", "ellipsis")
