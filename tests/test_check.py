"""`rag check [--repair]`: damage at rest is found and named; what SQLite can rebuild is
rebuilt without re-embedding; a damaged SQLite file is reported and left alone."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest

from conftest import ROOT, FakeEmbedder
from knowledge import KnowledgeBase, KnowledgeError, LockedError, sync
from knowledge.check import check


@pytest.fixture
def kb(animals, tmp_path):
    sync(tmp_path / "kb", [animals], embedder=FakeEmbedder(), log=lambda m: None)
    return tmp_path / "kb"


def faiss_file(kb):
    [path] = kb.glob("index.*.faiss")
    return path


def results(kb):
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
        dense = [(h.doc_id, h.score) for h in k.search("clever birds with tools", k=3)]
        lexical = k.lexical_ids("salmon", 3)
        assert k.store.verify() == []
        return dense, lexical


def repaired_equals_before(kb, before):
    report = check(kb, repair=True)
    assert report.problems and report.repaired and not report.unrepairable, report
    assert check(kb).ok, check(kb).problems
    assert results(kb) == before
    return report


def test_a_sound_knowledge_base_checks_clean(kb):
    report = check(kb)
    assert report.ok and report.checked["chunks"] == 6 and report.checked["faiss_sample"] >= 0


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped", "missing"])
def test_damaged_faiss_is_named_and_rebuilt_from_sqlite(kb, damage):
    before = results(kb)
    path = faiss_file(kb)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        path.write_bytes(bytes(data[:len(data) // 2]))
    elif damage == "bit-flipped":
        data[-40] ^= 0x10  # inside the last vector: the file still loads
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    if damage != "bit-flipped":
        with pytest.raises(KnowledgeError, match="rag check --kb .* --repair"):
            KnowledgeBase.open(kb)
    report = check(kb)
    words = {"truncated": "checksum|unreadable", "bit-flipped": "checksum",
             "missing": "missing"}[damage]
    assert any(__import__("re").search(words, p) for p in report.problems), report.problems
    report = repaired_equals_before(kb, before)
    assert any("none re-embedded" in r for r in report.repaired)


@pytest.mark.parametrize("damage", ["missing", "edited", "garbage", "null", "a list"])
def test_manifest_mirror_is_rewritten_from_sqlite(kb, damage):
    before = results(kb)
    mirror = kb / "manifest.json"
    if damage == "missing":
        mirror.unlink()
    elif damage == "edited":
        m = json.loads(mirror.read_text())
        m["chunker"]["size"] = 999
        mirror.write_text(json.dumps(m))
        with pytest.raises(KnowledgeError, match="disagrees .* 'chunker'.*--repair"):
            KnowledgeBase.open(kb)
    elif damage == "garbage":
        mirror.write_bytes(b"\x00\xffnot json")
    else:  # (JSON, but no manifest: every command read it as one)
        mirror.write_text("null" if damage == "null" else "[1]")
        with pytest.raises(KnowledgeError, match="manifest.json is unreadable .*--repair"):
            KnowledgeBase.open(kb)
    assert any("manifest.json" in p for p in check(kb).problems)
    repaired_equals_before(kb, before)
    assert json.loads(mirror.read_text())["chunker"]["size"] == 200


def bm25_dir(kb):
    [path] = kb.glob("lexical.*")
    return path


@pytest.mark.parametrize("damage", ["bit-flipped", "truncated", "missing"])
def test_bm25_damage_and_stray_files_are_repaired(kb, damage):
    before = results(kb)
    postings = max(bm25_dir(kb).glob("*.idx"), key=lambda p: p.stat().st_size)
    data = bytearray(postings.read_bytes())
    if damage == "bit-flipped":
        data[len(data) // 2] ^= 0x10
        postings.write_bytes(bytes(data))
    elif damage == "truncated":
        postings.write_bytes(bytes(data[:len(data) // 2]))
        with pytest.raises(KnowledgeError, match="lexical.* damaged .*rag check --kb .* --repair"):
            KnowledgeBase.open(kb)
    else:
        shutil.rmtree(bm25_dir(kb))
        with pytest.raises(KnowledgeError, match="BM25 index lexical.* is missing.*--repair"):
            KnowledgeBase.open(kb)
    (kb / "index.99.faiss").write_bytes(b"left over")
    (kb / ".index.3.faiss.tmp").write_bytes(b"half written")
    (kb / "lexical.99").mkdir()  # (a BM25 directory whose commit never came)
    problems = check(kb).problems
    assert any("BM25 index lexical." in p for p in problems), problems
    assert any("interrupted writer" in p and "lexical.99" in p for p in problems)
    report = repaired_equals_before(kb, before)
    assert any("BM25" in r for r in report.repaired)
    assert not (kb / "index.99.faiss").exists() and not (kb / ".index.3.faiss.tmp").exists()
    assert [p.name for p in kb.glob("lexical.*")] == [bm25_dir(kb).name] != ["lexical.99"]


def test_a_torn_sqlite_page_is_reported_and_nothing_is_touched(kb):
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = c.execute("PRAGMA page_size").fetchone()[0]
        root = c.execute("SELECT rootpage FROM sqlite_master WHERE name='documents'").fetchone()[0]
    db = kb / "kb.sqlite"
    data = bytearray(db.read_bytes())
    at = (root - 1) * page
    data[at:at + page // 2] = os.urandom(page // 2)  # the documents table's page, half torn
    db.write_bytes(bytes(data))
    snapshot = {p.name: p.read_bytes() for p in kb.iterdir() if p.is_file()}
    report = check(kb, repair=True)
    assert not report.ok and report.unrepairable and not report.repaired
    assert any("backup" in u for u in report.unrepairable)
    assert {p.name: p.read_bytes() for p in kb.iterdir() if p.is_file()
            and p.name in snapshot} == snapshot
    r = subprocess.run([sys.executable, "-m", "rag", "search", "cats", "--kb", str(kb),
                        "--retrieval", "lexical"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "rag check" in r.stderr


def test_repair_waits_for_no_writer(kb):
    from filelock import FileLock

    (kb / "manifest.json").unlink()
    with FileLock(str(kb / "write.lock")):
        with pytest.raises(LockedError, match="locked"):
            check(kb, repair=True)
    assert not check(kb).ok  # nothing was half done


def test_cli_exit_codes_and_one_line_reports(kb):
    def rag(*args):
        return subprocess.run([sys.executable, "-m", "rag", "check", "--kb", str(kb), *args],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)

    assert rag().returncode == 0
    faiss_file(kb).write_bytes(b"junk")
    r = rag()
    assert r.returncode == 1 and "problem:" in r.stdout and "--repair" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    r = rag("--repair", "--json")
    body = json.loads(r.stdout)
    assert r.returncode == 0 and body["ok_after"] and body["repaired"]
    assert rag().returncode == 0


@pytest.mark.parametrize("damage", ["emptied", "deleted", "a folder"])
def test_a_lost_database_is_never_replaced_by_a_new_knowledge_base(kb, animals, damage):
    """An empty, missing or unreadable-as-a-file kb.sqlite beside the rest of a knowledge base
    is a loss to report: `rag index` used to start a new knowledge base over it (and its
    clean-up removed the FAISS index and manifest)."""
    db = kb / "kb.sqlite"
    db.unlink()
    if damage == "emptied":
        db.write_bytes(b"")
    elif damage == "a folder":
        db.mkdir()
    before = sorted(p.name for p in kb.iterdir())
    with pytest.raises(KnowledgeError, match="kb.sqlite is missing or empty, but .* holds the "
                                             "rest of a knowledge base.*--rebuild"):
        sync(kb, [animals], embedder=FakeEmbedder(), log=lambda m: None)
    assert sorted(p.name for p in kb.iterdir()) == before  # nothing removed
    with pytest.raises(KnowledgeError, match="kb.sqlite is missing or empty"):
        KnowledgeBase.open(kb)
    sync(kb, [animals], embedder=FakeEmbedder(), log=lambda m: None, rebuild=True)
    assert check(kb).ok


def test_unreadable_metadata_and_a_dropped_table_are_found(kb):
    """Damage SQLite's own integrity check cannot see: a document's metadata edited into
    something that is not JSON (searches broke on it), a table dropped (`check` said
    consistent)."""
    with closing(sqlite3.connect(kb / "kb.sqlite")) as conn, conn:
        conn.execute("UPDATE documents SET metadata = 'not json' WHERE id = "
                     "(SELECT min(id) FROM documents)")
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:  # (still searchable)
        assert len(k.search("clever birds with tools", k=6)) == 6
        assert k.chunk_ids_where(None, {"habitat": "river"}).size == 1
    report = check(kb)
    assert report.problems == ["1 documents' metadata is not a JSON object"]
    report = check(kb, repair=True)
    assert any("emptied the unreadable metadata of 1 documents" in r for r in report.repaired)
    assert check(kb).ok
    with closing(sqlite3.connect(kb / "kb.sqlite")) as conn, conn:
        conn.execute("DROP TABLE pages")
    report = check(kb)
    assert report.problems == ["SQLite lacks the table(s) pages"] and report.unrepairable
