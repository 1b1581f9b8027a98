"""Window vectors (knowledge/windows.py): a chunk of several paragraphs is also embedded
paragraph by paragraph, stored with the chunk, and dense retrieval scores it by the best of
its own and its windows' cosines. Real MiniLM, FAISS and SQLite."""
import json
import sqlite3

import numpy as np
import pytest

from conftest import write_corpus
from knowledge import KnowledgeBase, UsageError, sync
from knowledge.chunking import ChunkerSettings
from knowledge.check import check
from knowledge.embedding import Embedder
from knowledge.windows import WINDOW_WORDS, windows
from rag.retrieval import Retriever

# a reference page: one chunk holding many options, each a short paragraph
OPTIONS = "\n\n".join([
    "Options of the backup tool.",
    "--level N sets the compression level from 1 (fastest) to 9 (smallest).",
    "--exclude PATTERN leaves out files whose names match the shell pattern.",
    "--bandwidth KBPS caps the upload rate so the network stays usable for others.",
    "--keep DAYS deletes snapshots older than that many days after each run.",
    "--notify ADDRESS sends an e-mail with the summary when the backup finishes.",
    "--verify reads every written block back and compares its checksum.",
])
OTHERS = {f"note{i}.txt": text for i, text in enumerate([
    "The tool runs on Linux, macOS and the BSDs, and needs Python 3.10 or newer.",
    "Snapshots are stored as content-addressed blocks under the repository folder.",
    "Restoring a single file takes its path and the snapshot date as arguments.",
    "The project is maintained by volunteers and released under the MIT licence.",
])}


@pytest.fixture(scope="module")
def embedder():
    return Embedder.load("all-MiniLM-L6-v2", precision="fp32")


@pytest.fixture
def built(tmp_path, embedder):
    docs = write_corpus(tmp_path / "docs", {"options.txt": OPTIONS, **OTHERS})
    sync(tmp_path / "kb", [docs], embedder=embedder, log=lambda m: None)
    return docs, tmp_path / "kb"


def _window_rows(kb_dir):
    with sqlite3.connect(kb_dir / "kb.sqlite") as c:
        return c.execute("SELECT id, text, windows FROM chunks ORDER BY id").fetchall()


def test_windows_group_paragraphs_up_to_the_word_limit():
    a, b, c = "one two three", "four five", "six " * 30
    assert windows(f"{a}\n\n{b}", 5) == []  # 5 words fit one window: nothing to add
    assert windows(f"{a}\n\n{b}", 4) == [a, b]
    assert windows(f"{a}\n \n{b}\n\n{c}", 5) == [f"{a}\n\n{b}", c.strip()]
    assert windows("a single paragraph " * 40, WINDOW_WORDS) == []


def test_a_question_about_one_paragraph_scores_the_chunk_by_that_paragraph(built, embedder):
    _, kb_dir = built
    rows = _window_rows(kb_dir)
    [(cid, text, blob)] = [r for r in rows if r[1].startswith("Options")]
    parts = windows(text)
    assert len(parts) >= 3 and all(r[2] is None for r in rows if r[0] != cid)
    stored = np.frombuffer(blob, np.float32).reshape(len(parts), -1)
    np.testing.assert_allclose(stored, embedder.encode(parts), atol=1e-5)

    q = "how do I limit the upload speed"
    with KnowledgeBase.open(kb_dir, embedder=embedder) as kb:
        qv = embedder.encode_queries([q])
        own = float(kb.store.vectors([cid])[1][0] @ qv[0])
        pairs, best = kb.dense_search(qv, 5)
        score = dict((i, s) for s, i in pairs[0])[cid]
        best_window = float((stored @ qv[0]).max())
        assert best_window > own + 0.05  # the bandwidth window, not the average of 7 options
        assert score == pytest.approx((own + best_window) / 2, abs=1e-5)
        assert pairs[0][0][1] == cid
        # the abstention rule still reads the best similarity of a chunk's own vector
        assert best[0] == pytest.approx(max(own, *(float(kb.store.vectors([i])[1][0] @ qv[0])
                                                   for _, i in pairs[0])), abs=1e-5)
        hit = Retriever(kb, "dense").retrieve(q, k=1)[0]
        assert hit.chunk_id == cid and hit.score == pytest.approx(score, abs=1e-5)


def test_a_changed_document_replaces_its_window_vectors(built, embedder):
    docs, kb_dir = built
    (docs / "options.txt").write_text(OPTIONS.replace("--bandwidth KBPS caps the upload rate",
                                                      "--throttle KBPS slows the transfer"))
    sync(kb_dir, [docs], embedder=embedder, log=lambda m: None)
    rows = _window_rows(kb_dir)
    assert sum(r[2] is not None for r in rows) == 1
    [(_, text, blob)] = [r for r in rows if r[2] is not None]
    assert "--throttle" in text
    np.testing.assert_allclose(np.frombuffer(blob, np.float32).reshape(-1, 384),
                               embedder.encode(windows(text)), atol=1e-5)


def test_a_knowledge_base_from_before_windows_keeps_working_and_gains_them_on_rebuild(
        built, embedder):
    docs, kb_dir = built
    with sqlite3.connect(kb_dir / "kb.sqlite") as c:  # as an older version wrote it
        c.execute("ALTER TABLE chunks DROP COLUMN windows")
        manifest = json.loads(c.execute("SELECT value FROM meta WHERE key='manifest'")
                              .fetchone()[0])
        del manifest["chunker"]["windows"]
        c.execute("UPDATE meta SET value=? WHERE key='manifest'", (json.dumps(manifest),))
    (kb_dir / "manifest.json").unlink()
    q = "how do I limit the upload speed"
    with KnowledgeBase.open(kb_dir, embedder=embedder) as kb:
        assert "windows" not in kb.manifest["chunker"]
        pairs, best = kb.dense_search(embedder.encode_queries([q]), 3)
        assert pairs[0][0][0] == pytest.approx(best[0])  # own cosines only
    (docs / "more.txt").write_text("First paragraph about disks.\n\n" + "word " * 30)
    old = ChunkerSettings(windows=0)  # (what `rag index` reads from such a KB's manifest)
    with pytest.raises(UsageError, match="windows 200/30/0, not 200/30/24"):
        sync(kb_dir, [docs], embedder=embedder, log=lambda m: None)
    sync(kb_dir, [docs], embedder=embedder, chunking=old, log=lambda m: None)  # no windows
    assert all(r[2] is None for r in _window_rows(kb_dir))
    sync(kb_dir, [docs], embedder=embedder, rebuild=True, log=lambda m: None)
    assert sum(r[2] is not None for r in _window_rows(kb_dir)) == 2
    assert check(kb_dir).ok


def test_check_finds_and_repairs_torn_window_vectors(built):
    _, kb_dir = built
    with sqlite3.connect(kb_dir / "kb.sqlite") as c:
        c.execute("UPDATE chunks SET windows = substr(windows, 1, 100) WHERE windows IS NOT NULL")
    report = check(kb_dir)
    assert not report.ok and any("window vectors" in p for p in report.problems)
    assert check(kb_dir, repair=True).repaired
    assert check(kb_dir).ok and all(r[2] is None for r in _window_rows(kb_dir))


def test_rag_index_windows_0_keeps_a_knowledge_base_without_them(tmp_path):
    from rag.cli import main

    docs = write_corpus(tmp_path / "docs", {"options.txt": OPTIONS, **OTHERS})
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb"), "--windows", "0"]) == 0
    (docs / "more.txt").write_text("First paragraph about disks.\n\n" + "word " * 30)
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb")]) == 0  # its own settings
    assert all(r[2] is None for r in _window_rows(tmp_path / "kb"))
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert "windows" not in kb.manifest["chunker"]
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb"), "--rebuild"]) == 0
    assert sum(r[2] is not None for r in _window_rows(tmp_path / "kb")) == 2
