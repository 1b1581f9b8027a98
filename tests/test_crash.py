"""Crash safety: SIGKILL a real `index` subprocess at random moments, many times; after each
kill the knowledge base must open, be internally consistent, and equal its state before or
after that run. Readers running alongside a writer never see a half-written state."""
import random
import sqlite3
import subprocess
import sys
from contextlib import closing

from conftest import FakeEmbedder
from kill_campaign import WORKER, campaign, mutate, run_worker, state, text, watch_campaign
from knowledge import KnowledgeBase


def test_sigkill_at_random_moments_never_corrupts(tmp_path):
    outcomes = campaign(tmp_path, kills=40)
    assert outcomes["protocol_marks"] >= 12
    # the kills must have landed on both sides of the commit to prove anything
    assert outcomes["before"] >= 5 and outcomes["after"] >= 5, outcomes


def test_sigkill_of_a_watcher_loses_nothing(tmp_path):
    """Watchers killed while the folder changes under them: the knowledge base stays
    consistent, and the next watcher's first sync makes it what the folder holds."""
    outcomes = watch_campaign(tmp_path, kills=12)
    assert outcomes["protocol_marks"] >= 12
    assert outcomes["before"] >= 2 and outcomes["after"] >= 2, outcomes


def test_first_run_killed_leaves_no_half_created_kb(tmp_path):
    rng = random.Random(7)
    folder, kb = tmp_path / "docs", tmp_path / "kb"
    folder.mkdir()
    for i in range(30):
        (folder / f"doc-{i}.txt").write_text(text(rng, 120))
    for delay in (0.3, 0.5, 0.7, 0.9):
        run_worker(kb, folder, kill_after=delay)
        if (kb / "kb.sqlite").exists():
            try:
                state(kb)  # either a whole KB ...
            except Exception as err:  # ... or one that says it is not (yet) a KB
                assert "is not a knowledge base" in str(err)
    run_worker(kb, folder)
    assert len(state(kb)[0]) == 30


def test_readers_alongside_a_writer_see_only_committed_states(tmp_path):
    rng = random.Random(99)
    folder, kb = tmp_path / "docs", tmp_path / "kb"
    folder.mkdir()
    for i in range(40):
        (folder / f"doc-{i}.txt").write_text(text(rng, 120))
    run_worker(kb, folder)
    seen = 0
    for step in range(4):
        mutate(folder, rng, step)
        proc = subprocess.Popen([sys.executable, str(WORKER), str(kb), str(folder)],
                                stderr=subprocess.PIPE)
        while proc.poll() is None:
            with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
                assert k.store.verify() == []
                with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
                    c.execute("SELECT count(*) FROM chunks").fetchone()
                seen += 1
        assert proc.returncode == 0, proc.stderr.read().decode()
    assert seen >= 4
