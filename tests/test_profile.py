"""The similarity anchor (knowledge/profile.py): measured by `rag index`, kept in the
manifest, measured again when the knowledge base has changed by a tenth."""
import json

from conftest import write_corpus
from knowledge import KnowledgeBase, sync
from knowledge.profile import pseudo_questions, stale, technical_share

SENT = "The {w} pump needs a new filter after every {n} hours of running in dusty rooms."


def corpus(n: int, word: str = "water") -> dict:
    return {f"{word}{i}.txt": " ".join(SENT.format(w=f"{word}{i}", n=i + j) for j in range(3))
            for i in range(n)}


def test_index_measures_the_anchor_and_keeps_it_until_the_kb_changes(tmp_path, fake_embedder):
    docs = write_corpus(tmp_path / "docs", corpus(20))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    first = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    assert first["chunks"] == 20 and first["n"] == 20 and 0.3 < first["median"] <= 1.0
    # a small change keeps it (measuring costs an embedding pass), a tenth measures again
    write_corpus(docs, {"extra.txt": SENT.format(w="oil", n=1)})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    kept = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    assert kept == first
    write_corpus(docs, corpus(5, "air"))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    again = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    assert again["chunks"] == 26
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        assert kb.similarity_anchor() == again["median"]


def test_an_older_kb_gets_its_anchor_measured_on_first_use(tmp_path, fake_embedder):
    docs = write_corpus(tmp_path / "docs", corpus(8))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        stored = kb.similarity_anchor()
        kb.store.manifest.pop("similarity_anchor")  # as a KB built before anchors
        assert kb.similarity_anchor() == stored  # measured now, the same way


def test_an_anchor_measured_on_first_use_reads_chunk_vectors_not_windows(tmp_path,
                                                                         fake_embedder):
    """Where chunks also have window vectors (knowledge/windows.py), a sampled sentence is
    nearly a whole window and would find itself there: the anchor, measured at index time or
    on first use, reads the best similarity to a chunk's own vector, as the rule does."""
    docs = write_corpus(tmp_path / "docs", {
        f"p{i}.txt": "\n\n".join(SENT.format(w=f"pump{i}{j}", n=i + j) for j in range(3))
        for i in range(12)})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        assert kb.store.conn.execute(
            "SELECT count(*) FROM chunks WHERE windows IS NOT NULL").fetchone()[0] == 12
        stored = kb.similarity_anchor()
        kb.store.manifest["similarity_anchor"] = {"chunks": 12, "median": 0.5}  # before whole
        assert kb.similarity_anchor() == stored < 0.99


def test_the_technical_share_tells_a_manual_from_prose(tmp_path, fake_embedder):
    prose = ["The water pump needs a new filter after every hundred hours of running.",
             "Warsaw is the capital and largest city of Poland, on the Vistula river."]
    manual = ["Put your settings in ~/.octaverc; run octave --no-gui or call print(\"-deps\", f).",
              "Set FROB_PROXY=host:port and remove /var/cache/frob/ with frob clean --all."]
    assert technical_share(prose) < 0.015 <= technical_share(manual)
    assert technical_share([]) == 0.0
    from types import SimpleNamespace

    from rag.pipeline import reads_technical
    assert reads_technical(technical_share(manual)) and not reads_technical(technical_share(prose))
    assert not reads_technical(None)  # (no share measured)
    never = SimpleNamespace(form_gates={"technical_at": None})  # a reader that never asks
    assert not reads_technical(technical_share(manual), never)
    docs = write_corpus(tmp_path / "docs", {f"m{i}.txt": manual[i % 2] for i in range(6)})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    stored = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    assert stored["technical"] >= 0.015  # measured with the anchor by `rag index`
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        assert kb.technical_share() == stored["technical"]
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        del kb.store.manifest["similarity_anchor"]  # a KB indexed before anchors
        kb.embedder.encode_queries = None  # read from the text alone: no embedder called
        assert kb.technical_share() == stored["technical"]  # measured on first use
        # an anchor recorded before the share: the next sync adds it and keeps the median
        from knowledge.sync import _measure_anchor

        old = {k: v for k, v in stored.items() if k != "technical"}
        store = SimpleNamespace(manifest={"similarity_anchor": old}, conn=kb.store.conn)
        _measure_anchor(store, None, None, None, stored["chunks"])  # (no embedder loaded)
        assert store.manifest["similarity_anchor"] == stored


def test_pseudo_questions_are_fixed_sentences_of_fixed_chunks(tmp_path, fake_embedder):
    docs = write_corpus(tmp_path / "docs", corpus(30))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        a = pseudo_questions(kb.store.conn, 10)
        assert a == pseudo_questions(kb.store.conn, 10) and len(a) == 10
        assert all(6 <= len(s.split()) <= 30 for s in a)
    assert stale(None, 5) and not stale(None, 0)
    kept = {"chunks": 100, "whole": 0}
    assert not stale(kept, 105) and stale(kept, 111)
    assert stale(kept, 0)  # emptied: the anchor goes


def test_one_line_notes_get_the_default_anchor_not_their_self_similarity(tmp_path,
                                                                          fake_embedder):
    from knowledge.profile import DEFAULT_ANCHOR

    notes = {f"n{i}.txt": SENT.format(w=f"oil{i}", n=i) for i in range(12)}
    docs = write_corpus(tmp_path / "docs", notes)
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    anchor = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    # each sentence finds itself (1.0); that median would put every question far from the text
    assert anchor["whole"] == anchor["n"] == 12 and anchor["p10"] > 0.99
    assert anchor["median"] == DEFAULT_ANCHOR and anchor["method"].startswith("default")
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        kb.store.manifest["similarity_anchor"] = {"chunks": 12, "median": 1.0}  # measured before
        assert kb.similarity_anchor() == DEFAULT_ANCHOR  # measured again on first use
    # notes of several sentences are measured as before
    write_corpus(docs, corpus(20))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    mixed = json.loads((tmp_path / "kb" / "manifest.json").read_text())["similarity_anchor"]
    assert mixed["chunks"] == 32 and mixed["whole"] < mixed["n"] / 2
    assert mixed["median"] != DEFAULT_ANCHOR and mixed["method"].startswith("median")
    # a small knowledge base measured before sentences were told from whole chunks: again
    assert stale({"chunks": 12, "median": 1.0}, 12) and not stale(mixed, 32)
    assert not stale({"chunks": 1000, "median": 0.6}, 1000)
