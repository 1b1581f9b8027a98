"""Knowledge base: sync, incremental updates, search, safety rules (fake embedder, real
FAISS and SQLite)."""
import json
from contextlib import closing
import os
import shutil
import sqlite3

import numpy as np
import pytest

from conftest import ANIMALS, FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, KnowledgeError, LockedError, UsageError, sync
from knowledge import lexical
from knowledge.chunking import ChunkerSettings
from knowledge.store import Store


def index(kb, paths, emb, **kw):
    return sync(kb, paths if isinstance(paths, list) else [paths], embedder=emb, log=lambda m: None,
                **kw)


def query(kb, sql):
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
        return c.execute(sql).fetchall()


def doc_ids(kb):
    return sorted(r[0] for r in query(kb, "SELECT doc_id FROM documents"))


def as_old_format(kb, version):
    """Rewrite a knowledge base as format ``version`` stored it: FTS5 over the chunk texts
    (3 and 4: through ``lexical()``, CJK as bigrams; 1 and 2: raw, without a per-document
    script or "lexical" in the manifest), and no BM25 directory; no chunk kinds and no pages
    table before 4."""
    content = "chunks_lexical" if version >= 3 else "chunks"
    text = "lexical({}.text)" if version >= 3 else "{}.text"
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
        lexical.register(c)
        if version < 4:
            c.executescript("ALTER TABLE chunks DROP COLUMN kind; DROP TABLE pages;")
        c.executescript(f"""
            CREATE VIEW chunks_lexical AS SELECT id, lexical(text) AS text FROM chunks;
            CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='{content}',
                content_rowid='id', tokenize='unicode61 remove_diacritics 2');
            CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
                INSERT INTO chunks_fts(rowid, text) VALUES (new.id, {text.format("new")}); END;
            CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
                INSERT INTO chunks_fts(chunks_fts, rowid, text)
                VALUES ('delete', old.id, {text.format("old")}); END;
            INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');""")
        if version < 3:
            c.executescript("DROP VIEW chunks_lexical; ALTER TABLE documents DROP COLUMN script")
        m = json.loads(c.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()[0])
        m["format_version"] = version
        del m["bm25"]
        if version < 3:
            del m["lexical"]
        c.execute("UPDATE meta SET value=? WHERE key='manifest'", (json.dumps(m, sort_keys=True),))
        c.commit()
    for p in kb.glob("lexical.*"):
        shutil.rmtree(p)
    (kb / "manifest.json").write_text(json.dumps(m))


def test_first_index_counts_and_manifest(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    r = index(kb, animals, fake_embedder)
    assert (r.added, r.updated, r.removed, r.unchanged) == (6, 0, 0, 0)
    assert r.total_documents == 6 and r.total_chunks == r.chunks_added == 6
    assert doc_ids(kb) == ["birds/crow.txt", "birds/robin.txt", "cats.md", "dogs.txt",
                           "fish.jsonl#salmon", "fish.jsonl#shark"]
    m = json.loads((kb / "manifest.json").read_text())
    assert m["format_version"] == 5 and m["bm25"]["generation"] == 1
    assert m["embedder"] == fake_embedder.identity()
    assert (m["dim"], m["metric"], m["index"]["kind"]) == (64, "inner_product", "flat")
    assert m["chunker"]["size"] == 200 and m["chunker"]["overlap"] == 30
    assert m["counts"] == {"files": 5, "documents": 6, "chunks": 6}
    assert sorted(p.name for p in kb.iterdir()) == ["index.1.faiss", "kb.sqlite", "lexical.1",
                                                    "manifest.json", "write.lock"]
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []


def test_search_matches_brute_force_over_stored_vectors(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder, chunking=ChunkerSettings(12, 3))
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        ids, vecs = k.store.all_vectors()
        assert len(ids) > 6
        for query in ["clever birds with tools", "fish in the river", "pets that eat meat"]:
            q = fake_embedder.encode([query])[0]
            scores = vecs @ q
            order = np.lexsort((ids, -scores))[:4]
            hits = k.search(query, k=4)
            assert [h.chunk_id for h in hits] == ids[order].tolist()
            np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)


def test_hits_carry_offsets_into_the_source_text(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder, chunking=ChunkerSettings(12, 3))
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        [hit] = k.search("Cats eat fish and meat twice a day", k=1)
        assert hit.doc_id == "cats.md" and hit.source == "cats.md"
        assert hit.heading == "Cats > Food"
        assert k.document_text("cats.md")[hit.start:hit.end] == hit.text
        [row] = k.search("Sharks cartilage skeletons", k=1)
        assert (row.doc_id, row.source, row.title, row.metadata) == \
            ("fish.jsonl#shark", "fish.jsonl", "Shark", {"habitat": "sea"})


def test_reindex_touches_only_what_changed(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    chunk_of = "SELECT d.doc_id, c.id FROM chunks c JOIN documents d ON c.document_id=d.id"
    before = dict(query(kb, chunk_of))
    emb = FakeEmbedder()
    r = index(kb, animals, emb)
    assert (r.added, r.updated, r.removed, r.unchanged, emb.calls) == (0, 0, 0, 6, 0)
    assert (kb / "index.1.faiss").exists()  # nothing changed: no new generation

    (animals / "dogs.txt").write_text("Dogs are loyal. Dogs guard the house at night.\n")
    os.utime(animals / "cats.md")  # touched, same bytes
    (animals / "birds" / "crow.txt").unlink()
    (animals / "fish.jsonl").write_text(  # salmon unchanged, shark removed, tuna added
        ANIMALS["fish.jsonl"].splitlines()[0] + "\n"
        '{"id": "tuna", "text": "Tuna are fast ocean fish."}\n')
    write_corpus(animals, {"new/owl.md": "# Owl\n\nOwls hunt at night."})
    r = index(kb, animals, emb)
    assert (r.added, r.updated, r.removed, r.unchanged) == (2, 1, 2, 3)
    assert emb.calls == 3  # dogs, tuna, owl
    assert (r.chunks_added, r.chunks_removed) == (3, 3)
    assert doc_ids(kb) == ["birds/robin.txt", "cats.md", "dogs.txt", "fish.jsonl#salmon",
                           "fish.jsonl#tuna", "new/owl.md"]
    after = dict(query(kb, chunk_of))
    for kept in ["birds/robin.txt", "cats.md", "fish.jsonl#salmon"]:
        assert after[kept] == before[kept]  # untouched chunks keep their ids
    assert after["dogs.txt"] > max(before.values())  # re-embedded under a fresh id
    assert sorted(p.name for p in kb.glob("index.*.faiss")) == ["index.2.faiss"]
    os.utime(animals / "dogs.txt", ns=(1, 1))  # touched only: recorded, no new generation
    r = index(kb, animals, emb)
    assert (r.touched, r.changed) == (1, False)
    assert index(kb, animals, emb).touched == 0  # the new time was stored
    assert sorted(p.name for p in kb.glob("index.*.faiss")) == ["index.2.faiss"]
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []
        assert k.search("guard the house at night", k=1)[0].doc_id == "dogs.txt"
        assert all(h.doc_id != "birds/crow.txt" for h in k.search("clever black birds", k=6))


def test_unreadable_file_keeps_its_stored_documents(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    (animals / "dogs.txt").write_bytes(b"\x00\x00binary now")
    r = index(kb, animals, fake_embedder)
    assert r.skipped == [(str(animals / "dogs.txt"), "binary content, not text")]
    assert (r.removed, r.unchanged) == (0, 6)
    assert "dogs.txt" in doc_ids(kb)


def test_nothing_ingestible_is_an_error_and_changes_nothing(tmp_path, fake_embedder):
    bad = write_corpus(tmp_path / "bad", {"a.txt": b"\x00\x01", "b.txt": b""})
    with pytest.raises(KnowledgeError, match="nothing could be ingested: 2 files skipped"):
        index(tmp_path / "kb", bad, fake_embedder)
    assert not (tmp_path / "kb").exists()  # a first run that ingests nothing leaves nothing
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KnowledgeError, match="nothing to index in"):
        index(tmp_path / "kb", empty, fake_embedder)
    with pytest.raises(UsageError, match="path not found"):
        index(tmp_path / "kb", tmp_path / "missing", fake_embedder)


def test_emptied_folder_is_refused_not_wiped(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    for p in sorted(animals.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    with pytest.raises(KnowledgeError, match="nothing to index"):
        index(kb, animals, fake_embedder)
    assert len(doc_ids(kb)) == 6


def test_other_embedder_or_chunking_is_refused(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    other = FakeEmbedder()
    other.name = "other-model"
    with pytest.raises(UsageError, match="built with embedder 'fake-hash-64'.*not 'other-model'"):
        index(kb, animals, other)
    with pytest.raises(UsageError, match="cannot be queried with 'other-model'"):
        KnowledgeBase.open(kb, embedder=other)
    with pytest.raises(UsageError, match="chunk size/overlap/windows 200/30/24, not 100/30/24"):
        index(kb, animals, fake_embedder, chunking=ChunkerSettings(100, 30))
    r = index(kb, animals, other, rebuild=True, chunking=ChunkerSettings(100, 30))
    assert (r.added, r.total_documents) == (6, 6)
    with KnowledgeBase.open(kb, embedder=other) as k:
        assert k.manifest["embedder"]["name"] == "other-model"
        assert k.manifest["chunker"]["size"] == 100
        assert k.store.verify() == []


def test_second_writer_gets_locked_error(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    static = json.loads((kb / "manifest.json").read_text())
    with Store.open_for_write(kb, static):
        with pytest.raises(LockedError, match="is locked: another `rag index`"):
            index(kb, animals, fake_embedder)
    index(kb, animals, fake_embedder)  # released again


def test_not_a_knowledge_base(tmp_path, animals, fake_embedder):
    with pytest.raises(UsageError, match="non-empty directory that is not a knowledge base"):
        index(animals, animals, fake_embedder)
    with pytest.raises(KnowledgeError, match="is not a knowledge base"):
        KnowledgeBase.open(animals)
    with pytest.raises(KnowledgeError, match="does not exist"):
        KnowledgeBase.open(tmp_path / "nope")


def test_create_killed_before_its_schema_is_not_a_knowledge_base(tmp_path, animals,
                                                                 fake_embedder):
    """A first `rag index` killed between creating kb.sqlite (WAL mode set) and writing its
    tables leaves an empty database: not a KB, and the next run creates it over the
    leftovers. A kb.sqlite with tables of its own is not ours to replace."""
    kb = tmp_path / "kb"
    kb.mkdir()
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
        c.execute("PRAGMA journal_mode=WAL")
    with pytest.raises(KnowledgeError, match="is not a knowledge base"):
        KnowledgeBase.open(kb)
    assert index(kb, animals, fake_embedder).total_documents == 6
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []
    other = tmp_path / "other"
    other.mkdir()
    with closing(sqlite3.connect(other / "kb.sqlite")) as c:
        c.execute("CREATE TABLE notes(x)")
        c.commit()
    with pytest.raises(KnowledgeError, match="unreadable"):
        KnowledgeBase.open(other)
    with pytest.raises(KnowledgeError, match="unreadable"):
        index(other, animals, fake_embedder)
    with closing(sqlite3.connect(other / "kb.sqlite")) as c:
        assert c.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]


def test_disagreeing_parts_are_detected(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    m = json.loads((kb / "manifest.json").read_text())
    m["dim"] = 128
    (kb / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(KnowledgeError, match="disagrees with kb.sqlite on 'dim'"):
        KnowledgeBase.open(kb)
    m["dim"] = 64
    (kb / "manifest.json").write_text(json.dumps(m))
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:  # a chunk FAISS does not know
        lexical.register(c)
        c.execute("INSERT INTO chunks(document_id, ord, text, start, \"end\", heading, vector) "
                  "VALUES (1, 9, 'x', 0, 1, '', x'00')")
        c.commit()
    with pytest.raises(KnowledgeError, match="FAISS holds 6 vectors .* SQLite has 7 chunks"):
        KnowledgeBase.open(kb)


def test_tabular_files_that_reuse_row_ids_keep_every_row(tmp_path, fake_embedder):
    """Two CSV/JSONL exports with ids 1..N: every row is a document, "<file>#<id>"."""
    src = write_corpus(tmp_path / "src", {
        "a.jsonl": '{"id": "x", "text": "from a"}\n',
        "b.jsonl": '{"id": "x", "text": "from b"}\n{"id": "y", "text": "why"}\n',
        "one.csv": "id,text\n1,first of one\n2,second of one\n",
        "two.csv": "id,text\n1,first of two\n2,second of two\n"})
    r = index(tmp_path / "kb", src, fake_embedder)
    assert r.added == 7 and r.warnings == []
    assert doc_ids(tmp_path / "kb") == ["a.jsonl#x", "b.jsonl#x", "b.jsonl#y", "one.csv#1",
                                        "one.csv#2", "two.csv#1", "two.csv#2"]


def test_same_document_id_from_two_folders_is_told_apart_by_the_folder(tmp_path, fake_embedder):
    """Two vaults' "notes.txt", indexed one after the other or in one run: the second is
    "b/notes.txt" (said), not left out; again the same; a third of the same name is."""
    src = write_corpus(tmp_path / "src", {"a/notes.txt": "from a", "b/notes.txt": "from b",
                                          "c/b/notes.txt": "from c"})
    index(tmp_path / "kb", src / "a", fake_embedder)
    r = sync(tmp_path / "kb", [src / "b"], embedder=fake_embedder, log=lambda m: None)
    assert r.added == 1 and len(r.warnings) == 1
    assert "document id 'notes.txt' already comes from" in r.warnings[0][1]
    assert r.warnings[0][1].endswith("indexed as 'b/notes.txt'")
    assert doc_ids(tmp_path / "kb") == ["b/notes.txt", "notes.txt"]
    r = sync(tmp_path / "kb", [src / "b"], embedder=fake_embedder, log=lambda m: None)
    assert (r.added, r.unchanged) == (0, 1) and doc_ids(tmp_path / "kb") == ["b/notes.txt",
                                                                            "notes.txt"]
    r = sync(tmp_path / "kb2", [src / "a", src / "b", src / "c" / "b"], embedder=fake_embedder,
             log=lambda m: None)
    assert r.added == 3 and doc_ids(tmp_path / "kb2") == [
        f"{src / 'c' / 'b'}/notes.txt", "b/notes.txt", "notes.txt"]


def test_a_document_taken_over_from_a_file_gone_is_written(tmp_path, fake_embedder):
    """From a review: x/notes.md and y/notes.md (indexed as "docs/notes.md"); x's deleted and
    y's edited, then both folders indexed, y's first: y's takes the free id "notes.md" from
    x's row, which the removal of x's file then deleted under it ("FOREIGN KEY constraint
    failed; nothing was changed", on every run)."""
    src = write_corpus(tmp_path / "src", {"x/docs/notes.md": "from x",
                                          "y/docs/notes.md": "from y"})
    x, y = src / "x" / "docs", src / "y" / "docs"
    sync(tmp_path / "kb", [x, y], embedder=fake_embedder, log=lambda m: None)
    assert doc_ids(tmp_path / "kb") == ["docs/notes.md", "notes.md"]
    (x / "notes.md").unlink()
    (y / "notes.md").write_text("from y, edited")
    r = sync(tmp_path / "kb", [y, x], embedder=fake_embedder, log=lambda m: None)
    assert (r.updated, r.removed) == (1, 1) and doc_ids(tmp_path / "kb") == ["notes.md"]
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as k:
        assert k.store.verify() == []
        assert k.search("from y, edited", k=1)[0].text == "from y, edited"


def test_hnsw_and_kind_switch_keep_search_exact_enough(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder, index_kind="hnsw")
    (animals / "dogs.txt").unlink()  # HNSW cannot delete: rebuilt from stored vectors
    r = index(kb, animals, fake_embedder)
    assert r.index_kind == "hnsw" and r.removed == 1
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []
        assert k.search("robin sings at dawn", k=1)[0].doc_id == "birds/robin.txt"
    r = index(kb, animals, fake_embedder, index_kind="flat")
    assert r.index_kind == "flat"


def test_reader_sees_a_writers_commit(tmp_path, animals, fake_embedder):
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.search("owls hunt", k=10)[0].doc_id != "owl.md"
        write_corpus(animals, {"owl.md": "Owls hunt mice at night."})
        index(kb, animals, fake_embedder)
        assert k.search("owls hunt mice at night", k=1)[0].doc_id == "owl.md"


def test_files_over_the_size_limit_are_skipped(tmp_path, animals, fake_embedder):
    (animals / "big.txt").write_text("word " * 1000)
    r = index(tmp_path / "kb", animals, fake_embedder, max_file_mb=0.001)
    assert (str(animals / "big.txt"), "larger than 0.001 MB; raise --max-file-mb to index it") \
        in r.skipped
    assert r.added == 6


def test_fifo_and_undecodable_names_are_skipped_not_fatal(tmp_path, animals, fake_embedder):
    """A named pipe would block a plain read forever (holding the write lock); a file name
    that is not UTF-8 cannot be an id. Both are skipped with a reason; the rest is indexed."""
    import threading

    src = write_corpus(tmp_path / "src", dict(ANIMALS))
    os.mkfifo(src / "pipe.txt")
    bad = os.fsencode(src) + b"/caf\xe9.txt"
    with open(bad, "wb") as f:
        f.write(b"Latin-1 named file.")
    os.mkdir(os.fsencode(src) + b"/dir\xff")
    result = {}
    worker = threading.Thread(target=lambda: result.update(r=index(tmp_path / "kb", src,
                                                                    fake_embedder)))
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test process can end, then fail
        with open(src / "pipe.txt", "wb"):
            pass
        pytest.fail("rag index blocked on a FIFO")
    r = result["r"]
    clean = index(tmp_path / "kb-clean", write_corpus(tmp_path / "clean", dict(ANIMALS)),
                  fake_embedder)
    assert r.added == clean.added and r.total_chunks == clean.total_chunks
    reasons = dict(r.skipped)
    assert "not a regular file" in reasons[str(src / "pipe.txt")]
    assert "not valid UTF-8" in reasons[str(src) + "/caf\\xe9.txt"]
    assert "folder not walked" in reasons[str(src) + "/dir\\xff"]
    json.dumps(r.to_dict())  # the report prints (no surrogates left)


def test_format_1_opens_and_the_next_writer_migrates_row_ids(tmp_path, animals, fake_embedder):
    """A knowledge base of format 1 (rows identified by their id alone) still opens; the
    next `rag index` renames its rows to "<file>#<id>" in one transaction, re-embedding
    nothing, and the ids then agree with what the loader gives."""
    kb = tmp_path / "kb"
    index(kb, animals, fake_embedder)
    as_old_format(kb, 1)
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:  # rows were named by their id
        c.execute("UPDATE documents SET doc_id = substr(doc_id, 12) "
                  "WHERE doc_id LIKE 'fish.jsonl#%'")
        c.commit()
    assert "salmon" in doc_ids(kb)
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:  # reads as it is
        assert k.search("salmon swim upstream", k=1)[0].doc_id == "salmon"
    emb = FakeEmbedder()
    r = index(kb, animals, emb)
    assert (r.added, r.updated, r.removed, emb.calls) == (0, 0, 0, 0)
    assert doc_ids(kb) == ["birds/crow.txt", "birds/robin.txt", "cats.md", "dogs.txt",
                           "fish.jsonl#salmon", "fish.jsonl#shark"]
    assert json.loads((kb / "manifest.json").read_text())["format_version"] == 5
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []


def mixed_kb(tmp_path, emb):
    """Two Chinese documents and an English one, indexed: (their folder, the KB)."""
    docs = write_corpus(tmp_path / "docs", {
        "river.md": "# 长江\n\n长江是中国最长的河流，全长约6300公里。",
        "panda.md": "# 大熊猫\n\n大熊猫生活在四川的山区，主要吃竹子。",
        "en.txt": "Pandas eat bamboo in the mountains of Sichuan."})
    index(tmp_path / "kb", docs, emb)
    return docs, tmp_path / "kb"


def test_format_2_opens_and_the_next_writer_indexes_cjk_as_bigrams(tmp_path, fake_embedder):
    """A format-2 knowledge base (FTS5 over raw text: a Chinese run is one token) still opens
    and searches as before; the next writer indexes BM25 through ``lexical()`` and records
    each document's script, in one transaction and without re-embedding."""
    docs, kb = mixed_kb(tmp_path, fake_embedder)
    as_old_format(kb, 2)
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.lexical_ids("竹子", 5) == []  # (the old index holds "主要吃竹子" as one token)
        assert len(k.lexical_ids("bamboo", 5)) == 1
    reader = KnowledgeBase.open(kb, embedder=fake_embedder)  # open across the migration
    emb = FakeEmbedder()
    index(kb, docs, emb)
    assert emb.calls == 0
    with reader, reader.snapshot():  # (it reloads the migrated manifest: bigram queries)
        assert len(reader.lexical_ids("竹子", 5)) == 1
    m = json.loads((kb / "manifest.json").read_text())
    assert (m["format_version"], m["lexical"]) == (5, "cjk-bigram-1")
    assert dict(query(kb, "SELECT doc_id, script FROM documents")) == {
        "river.md": "Hani", "panda.md": "Hani", "en.txt": "Latn"}
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []
        [(_, cid)] = k.lexical_ids("竹子", 5)
        assert k.fetch([(0.0, cid)])[0].doc_id == "panda.md"
        assert len(k.lexical_ids("bamboo", 5)) == 1
    from knowledge.check import check
    assert check(kb).ok


@pytest.mark.parametrize("version", [3, 4])
def test_formats_3_and_4_search_with_fts5_and_the_next_writer_moves_bm25_to_tantivy(
        tmp_path, fake_embedder, monkeypatch, version):
    """A format-3 or -4 knowledge base (FTS5 over ``lexical()``) opens and searches with
    FTS5; a writer that fails while migrating leaves it as it was; the next one builds the
    BM25 directory from the chunk texts and drops FTS5, in one transaction, re-embedding
    nothing, and a reader opened before follows it."""
    from knowledge import bm25

    docs, kb = mixed_kb(tmp_path, fake_embedder)
    as_old_format(kb, version)
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.lexical_index() is None  # (FTS5)
        [(_, old_hit)] = k.lexical_ids("竹子", 5)
        assert len(k.lexical_ids("bamboo", 5)) == 1

    def broken(self):
        raise OSError(28, "No space left on device")
    with monkeypatch.context() as m:
        m.setattr(bm25.Bm25Writer, "commit", broken)
        with pytest.raises(KnowledgeError, match="No space left .*nothing was changed"):
            index(kb, docs, FakeEmbedder())
    assert json.loads(query(kb, "SELECT value FROM meta WHERE key='manifest'")[0][0])[
        "format_version"] == version and not list(kb.glob("lexical.*"))
    reader = KnowledgeBase.open(kb, embedder=fake_embedder)
    emb = FakeEmbedder()
    index(kb, docs, emb)
    assert emb.calls == 0
    with reader, reader.snapshot():
        assert reader.store.lexical_index() is not None
        assert reader.lexical_ids("竹子", 5)[0][1] == old_hit
    m = json.loads((kb / "manifest.json").read_text())
    assert (m["format_version"], m["lexical"]) == (5, "cjk-bigram-1")
    assert [p.name for p in kb.glob("lexical.*")] == [f"lexical.{m['bm25']['generation']}"]
    assert query(kb, "SELECT name FROM sqlite_master WHERE name LIKE 'chunks_fts%' "
                     "OR name = 'chunks_lexical'") == []
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert k.store.verify() == []
        assert len(k.lexical_ids("bamboo", 5)) == 1
    from knowledge.check import check
    assert check(kb).ok


def test_compressed_index_rescores_from_stored_vectors(tmp_path, fake_embedder):
    """IVF-PQ candidates are re-scored with the vectors in SQLite: exact cosines, and the
    same top hits as exact search; the reader maps FAISS and follows a writer's commits."""
    rows = [{"id": str(i), "text": f"note {i} about item{i % 97} and thing{i % 13}"}
            for i in range(1500)]
    src = write_corpus(tmp_path / "src", {"notes.jsonl": "\n".join(map(json.dumps, rows))})
    index(tmp_path / "flat", src, fake_embedder, index_kind="flat")
    assert index(tmp_path / "pq", src, fake_embedder, index_kind="ivfpq").index_kind == "ivfpq"
    with KnowledgeBase.open(tmp_path / "pq", embedder=fake_embedder) as pq, \
            KnowledgeBase.open(tmp_path / "flat", embedder=fake_embedder) as flat:
        assert pq.store.mmap and pq.store.index.compressed
        ids, vecs = pq.store.all_vectors()
        for text in ("item5 thing3", "note about item42", "thing7"):
            q = fake_embedder.encode_queries([text])
            got = pq.dense_ids(q, 5)[0]
            exact = vecs @ q[0]
            assert [s for s, _ in got] == pytest.approx([float(exact[ids == i][0])
                                                         for _, i in got], abs=1e-6)
            assert [i for _, i in got] == [i for _, i in flat.dense_ids(q, 5)[0]]
        (src / "notes.jsonl").write_text("\n".join(map(json.dumps, rows[:1400])))
        assert index(tmp_path / "pq", src, fake_embedder).removed == 100  # (no rebuild)
        q = fake_embedder.encode_queries(["note 1450 about item92"])
        assert all(i <= ids[1399] for _, i in pq.dense_ids(q, 20)[0])
        assert pq.store.verify() == []


def test_bm25_indexes_each_chunks_section_path_and_the_next_writer_adds_it_to_an_old_index(
        tmp_path, fake_embedder, monkeypatch):
    """A question names a manual's section ("png") more often than words of the passage:
    BM25 holds each chunk's section path with its text. A knowledge base whose BM25 was built
    without them gets them from the next `rag index`, even with nothing changed, re-embedding
    nothing."""
    from knowledge import bm25

    docs = write_corpus(tmp_path / "docs", {"manual.md": (
        "# Terminal types\n\n## Png\n\n" + "The driver writes images to a file. " * 12
        + "It can make the background transparent.")})
    kb = tmp_path / "kb"
    real_add = bm25.Bm25Writer.add
    with monkeypatch.context() as m:  # an index built before section paths were indexed
        m.setattr(bm25.Bm25Writer, "add",
                  lambda self, rows: real_add(self, [(cid, text) for cid, text, *_ in rows]))
        index(kb, docs, fake_embedder, chunking=ChunkerSettings(20, 0))
    with closing(sqlite3.connect(kb / "kb.sqlite")) as c:
        manifest = json.loads(c.execute("SELECT value FROM meta WHERE key='manifest'")
                              .fetchone()[0])
        del manifest["bm25"]["headings"]
        c.execute("UPDATE meta SET value=? WHERE key='manifest'",
                  (json.dumps(manifest, sort_keys=True),))
        c.commit()
    (kb / "manifest.json").write_text(json.dumps(manifest))
    texts = dict(query(kb, "SELECT id, text FROM chunks"))
    assert len(texts) >= 3 and sum("Png" in t for t in texts.values()) == 1
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        assert [texts[cid] for _, cid in k.lexical_ids("png", 10)] == [
            t for t in texts.values() if "Png" in t]
    emb, said = FakeEmbedder(), []
    r = sync(kb, [docs], embedder=emb, log=said.append, chunking=ChunkerSettings(20, 0))
    assert (r.added, r.updated, emb.calls) == (0, 0, 0)
    assert any("section path" in m for m in said)
    manifest = json.loads((kb / "manifest.json").read_text())
    assert manifest["bm25"]["headings"] is True
    index(kb, docs, FakeEmbedder(), chunking=ChunkerSettings(20, 0))  # now a no-op again
    assert json.loads((kb / "manifest.json").read_text())["generation"] == manifest["generation"]
    with KnowledgeBase.open(kb, embedder=fake_embedder) as k:
        found = [cid for _, cid in k.lexical_ids("png", 10)]
        in_png = [cid for cid, path in query(kb, "SELECT id, heading FROM chunks")
                  if path.endswith("Png")]
        assert len(in_png) >= 2 and sorted(found) == sorted(in_png)  # the section's chunks
        assert len(k.lexical_ids("terminal", 10)) == len(texts)
        assert k.store.verify() == []
    from knowledge.check import check
    assert check(kb).ok


def test_a_knowledge_base_inside_the_folder_it_indexes_is_not_indexed(tmp_path):
    """`rag index notes --kb notes/kb` (or `rag serve --kb notes/kb --watch notes`): the
    knowledge base's own files and uploads are not documents of the folder (an upload was
    indexed twice, once as itself and once as kb/uploads/...)."""
    docs = write_corpus(tmp_path / "notes", {"a.txt": "Cats sleep sixteen hours a day."})
    emb = FakeEmbedder()
    index(docs / "kb", docs, emb)
    write_corpus(docs / "kb" / "uploads" / "0a1b", {"up.txt": "An uploaded note on owls."})
    report = index(docs / "kb", docs, emb)
    assert doc_ids(docs / "kb") == ["a.txt"] and report.unsupported == 0
