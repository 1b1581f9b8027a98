"""`rag index` over a deliberately hostile folder (tests/hostile_corpus.py, 70 cases): no
traceback, no hang, a one-line reason naming each file it skips, the rest indexed, and
what the knowledge base held before still there."""
import subprocess
import sys

import pytest

from conftest import ROOT
from hostile_corpus import build

pytestmark = pytest.mark.slow


def rag_index(folder, kb, *flags):
    return subprocess.run([sys.executable, "-m", "rag", "index", str(folder), "--kb", str(kb),
                           *flags], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_a_hostile_folder_is_indexed_without_tracebacks_or_losses(tmp_path):
    import sqlite3

    before = tmp_path / "before"
    before.mkdir()
    (before / "kept.txt").write_text("This document was in the knowledge base before.")
    kb = tmp_path / "kb"
    assert rag_index(before, kb).returncode == 0
    cases = build(tmp_path / "corpus")
    assert len(cases) >= 60
    r = rag_index(tmp_path / "corpus", kb)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out and "error: unexpected" not in out, out
    lines = r.stderr.splitlines()
    with sqlite3.connect(kb / "kb.sqlite") as c:
        ids = {row[0] for row in c.execute("SELECT doc_id FROM documents")}
    assert "kept.txt" in ids  # the earlier run's document is still there
    for rel, kind, note in cases:
        indexed = rel in ids or any(i.startswith(rel + "#") for i in ids)
        shown = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        named = [line for line in lines if shown in line]
        if kind in ("ok", "warn"):
            assert indexed, (rel, note, named)
        else:
            assert not indexed, (rel, note)
        if kind == "skip":
            assert any(line.startswith("skipped ") for line in named), (rel, note, named)
        if kind == "warn":
            assert any(line.startswith("warning: ") for line in named), (rel, note, named)
    assert not any("outside-secret" in i for i in ids)
    again = rag_index(tmp_path / "corpus", kb)  # nothing changed: nothing re-read
    assert again.returncode == 0 and " 0 added, 0 updated, 0 removed" in again.stdout + again.stderr
    check = subprocess.run([sys.executable, "-m", "rag", "check", "--kb", str(kb)],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert check.returncode == 0, check.stdout


def test_follow_symlinks_opts_in_and_loops_are_never_followed(tmp_path):
    build(tmp_path / "corpus")
    r = rag_index(tmp_path / "corpus" / "special", tmp_path / "kb", "--follow-symlinks")
    import sqlite3

    with sqlite3.connect(tmp_path / "kb" / "kb.sqlite") as c:
        ids = {row[0] for row in c.execute("SELECT doc_id FROM documents")}
    assert "secret.txt" in ids  # the link out of the folder, followed on request
    assert "a symbolic link loop" in r.stderr and r.returncode == 0


def test_unreadable_vanishing_and_changing_files_are_reported_and_the_rest_lands(
        tmp_path, monkeypatch):
    """(CI runs as root, which reads any file: permission errors are simulated at the read.)"""
    from conftest import FakeEmbedder, write_corpus
    from knowledge import loaders, parsing, sync

    sync_mod = sys.modules["knowledge.sync"]  # (the package's `sync` is the function)
    docs = write_corpus(tmp_path / "docs", {"a.txt": "alpha text", "locked.txt": "secret",
                                            "gone.txt": "soon gone", "grows.txt": "small"})
    real_read, real_walk = loaders.read_regular, loaders.walk

    def read(path, max_bytes):
        if path.name == "locked.txt":
            raise loaders.LoadError("cannot read (Permission denied)")
        if path.name == "grows.txt":  # it changes between the scan and the read
            path.write_text("it grew meanwhile " * 50)
        return real_read(path, max_bytes)

    def walk(root, *a, **k):  # a file that vanishes between the scan and the read
        found, n = real_walk(root, *a, **k)
        (root / "gone.txt").unlink()
        return found, n

    monkeypatch.setattr(parsing, "read_regular", read)
    monkeypatch.setattr(sync_mod, "walk", walk)
    r = sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), parser=parsing.InProcess(),
             log=lambda m: None)
    reasons = {p.rsplit("/", 1)[-1]: why for p, why in r.skipped}
    assert reasons == {"locked.txt": "cannot read (Permission denied)",
                       "gone.txt": "cannot read (No such file or directory)"}
    from knowledge import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder()) as kb:
        assert kb.store.verify() == []
        assert kb.document_text("grows.txt").startswith("it grew meanwhile")  # what was read
        assert kb.document_text("a.txt") == "alpha text"


def many_elements_html(n: int = 100_000) -> str:
    """3 MB of HTML whose parse takes seconds and hundreds of MB (a tree of 300k nodes)."""
    return "<html><body>" + "<div><p>cell <b>x</b> y</p></div>" * n + "</body></html>"


@pytest.mark.parametrize("limit", ["time", "memory"])
def test_a_parse_over_its_time_or_memory_limit_is_cut_off_and_the_rest_lands(tmp_path, limit):
    """Parsing runs in worker processes (knowledge.parsing): one killed at the time limit,
    or out of heap at its memory limit, costs only its file."""
    from conftest import FakeEmbedder, write_corpus
    from knowledge import sync
    from knowledge.parsing import ParsePool

    docs = write_corpus(tmp_path / "docs", {"a.txt": "alpha text", "b.md": "# B\n\nbeta",
                                            "trap.html": many_elements_html()})
    options = {"timeout_s": 0.5} if limit == "time" else {"memory_mb": 150}
    with ParsePool(2, **options) as pool:
        r = sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), parser=pool,
                 log=lambda m: None)
    why = "took longer than 0.5 s" if limit == "time" else "ran out of memory while parsing"
    assert [(p.rsplit("/", 1)[-1], w[:len(why)]) for p, w in r.skipped] == [("trap.html", why)]
    fix = "--parse-timeout SECONDS gives it longer" if limit == "time" else "--parse-memory-mb"
    assert fix in r.skipped[0][1]  # (what to do about it: a long scan is no attack)
    assert r.added == 2


def test_an_unreadable_folder_is_reported_and_the_rest_lands(tmp_path, monkeypatch):
    """(Simulated: as root every folder can be listed.)"""
    import os

    from conftest import FakeEmbedder, write_corpus
    from knowledge import loaders, sync

    docs = write_corpus(tmp_path / "docs", {"a.txt": "alpha text", "private/b.txt": "beta"})
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("private"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(loaders.os, "scandir", scandir)
    r = sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), log=lambda m: None)
    assert r.added == 1
    assert [(p.rsplit("/", 1)[-1], why) for p, why in r.skipped] == [
        ("private", "cannot read the folder (Permission denied); its files are not indexed")]
