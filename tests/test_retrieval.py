"""Dense, lexical and hybrid retrieval with filters (fake embedder, real FAISS + Tantivy BM25)."""
from dataclasses import replace

import pytest

from conftest import write_corpus
from knowledge import KnowledgeBase, UsageError, sync
from knowledge.kb import fts_query
from rag.readers.base import ReadBatch, Reader
from rag.retrieval import Filters, Retriever, rrf


@pytest.fixture
def kb(tmp_path, animals, fake_embedder):
    write_corpus(animals, {"manuals/pump.md": "# Pump\n\nTo reset the pump hold the red button.",
                           "manuals/fan.md": "# Fan\n\nThe fan has three speeds and a timer."})
    sync(tmp_path / "kb", [animals], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as k:
        yield k


def test_fts_query_quotes_words_and_drops_stopwords():
    assert fts_query('What is "the" pump\'s reset* AND NOT x?') == \
        '"pump" OR "s" OR "reset" OR "not" OR "x"'
    assert fts_query("the of") == '"the" OR "of"'  # only stopwords: keep them
    assert fts_query("?!") == ""


def test_lexical_is_bm25(kb):
    pairs = kb.lexical_ids("reset pump", 3)
    hits = kb.fetch(pairs)
    assert hits[0].doc_id == "manuals/pump.md"
    assert all(a[0] >= b[0] for a, b in zip(pairs, pairs[1:]))  # best first
    assert kb.lexical_ids("zebra", 3) == []


def test_rrf_fuses_by_rank():
    dense = [(0.9, 1), (0.8, 2), (0.7, 3)]
    lexical = [(12.0, 3), (11.0, 4)]
    fused = rrf([dense, lexical], k=60)
    assert [cid for _, cid in fused] == [3, 1, 2, 4]  # 3 is in both lists
    assert fused[0][0] == pytest.approx(1 / 63 + 1 / 61)


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_modes_find_the_obvious_document(kb, mode):
    hits = Retriever(kb, mode).retrieve("hold the red button to reset the pump", k=3)
    assert hits[0].doc_id == "manuals/pump.md"
    assert len(hits) <= 3


@pytest.mark.parametrize("parallel_from", [0, 2**62], ids=["bm25-in-a-thread", "in-turn"])
def test_hybrid_is_the_rrf_of_dense_and_lexical(kb, monkeypatch, parallel_from):
    monkeypatch.setattr("rag.retrieval.PARALLEL_FROM", parallel_from)
    r = Retriever(kb, "hybrid", candidates=10)
    q = "fish that swim"
    dense = kb.dense_ids(kb.embedder.encode([q]), 10)[0]
    lexical = kb.lexical_ids(q, 10)
    want = [cid for _, cid in rrf([dense, lexical])[:4]]
    assert [h.chunk_id for h in r.retrieve(q, k=4)] == want


def test_an_error_in_the_bm25_thread_reaches_the_caller(kb, monkeypatch):
    from knowledge import bm25

    def broken(self, *args, **kwargs):
        raise RuntimeError("tantivy failed")
    monkeypatch.setattr("rag.retrieval.PARALLEL_FROM", 0)
    monkeypatch.setattr(bm25.Bm25Index, "search", broken)
    with pytest.raises(RuntimeError, match="tantivy failed"):
        Retriever(kb, "hybrid").retrieve("fish that swim", k=3)


@pytest.mark.parametrize("parallel_from", [0, 2**62], ids=["bm25-in-a-thread", "in-turn"])
def test_filters_by_path_glob_and_metadata(kb, monkeypatch, parallel_from):
    monkeypatch.setattr("rag.retrieval.PARALLEL_FROM", parallel_from)
    r = Retriever(kb, "hybrid")
    hits = r.retrieve("animals", k=10, filters=Filters.parse("birds/*", None))
    assert {h.doc_id for h in hits} == {"birds/robin.txt", "birds/crow.txt"}
    hits = r.retrieve("fish", k=10, filters=Filters.parse(None, ["habitat=sea"]))
    assert [h.doc_id for h in hits] == ["fish.jsonl#shark"]
    hits = Retriever(kb, "dense").retrieve("fish", k=10, filters=Filters.parse("*.jsonl", None))
    assert {h.doc_id for h in hits} == {"fish.jsonl#salmon", "fish.jsonl#shark"}
    assert r.retrieve("fish", k=3, filters=Filters.parse("nothing/*", None)) == []
    with pytest.raises(UsageError, match="KEY=VALUE"):
        Filters.parse(None, ["habitat"])


def test_bad_settings(kb):
    with pytest.raises(UsageError, match="must be one of"):
        Retriever(kb, "sparse")
    with pytest.raises(UsageError, match="empty question"):
        Retriever(kb).retrieve("  ")


class RecordingReader(Reader):
    """Answers every question it is given "yes"; remembers which ones it read."""

    def __init__(self, **config):
        from rag.readers import ReaderConfig

        self.config = ReaderConfig(**config)
        self.read: list[str] = []

    def read_batch(self, questions, passages):
        from rag.readers import ReaderOutput

        self.read += questions
        return ReadBatch([ReaderOutput("yes", 0.9, [1.0] * len(p)) for p in passages])


def test_retriever_reports_each_querys_best_dense_similarity(kb):
    r = Retriever(kb, "hybrid")
    q = ["hold the red button to reset the pump", "zebra quantum"]
    found = r.search_many(q, k=2)
    best = [kb.dense_ids(kb.embedder.encode([x]), 1)[0][0][0] for x in q]
    assert found.similarity == pytest.approx(best)
    assert [h.chunk_id for h in found.hits[0]] == [h.chunk_id for h in r.retrieve(q[0], k=2)]
    assert set(found.timings) == {"embed_ms", "search_ms"}
    found = Retriever(kb, "lexical").search_many(q, k=2)
    assert found.similarity == [None, None]  # no dense scores to judge by


@pytest.mark.parametrize("made_for, applies", [(None, True), ("f" * 64, True),
                                                ("0" * 64, False)])
def test_weak_evidence_abstains_without_reading(kb, made_for, applies):
    from rag.pipeline import Pipeline
    from rag.readers import NOT_FOUND

    strong, weak = "hold the red button to reset the pump", "zebra quantum flux"
    high, low = Retriever(kb).search_many([strong, weak], 1).similarity
    assert high > low
    reader = RecordingReader(abstain_similarity=(high + low) / 2, similarity_embedder=made_for)
    answers = Pipeline(Retriever(kb), reader, k=2).ask_many([weak, strong, weak])
    assert [a.question for a in answers] == [weak, strong, weak]
    assert answers[1].answer == "yes" and not answers[1].abstained
    assert answers[1].similarity == pytest.approx(high)
    if applies:  # (the threshold was chosen for this knowledge base's embedder, or any)
        assert reader.read == [strong]
        for a in answers[::2]:
            assert a.abstained and a.answer == NOT_FOUND
            assert a.confidence is None and a.similarity == pytest.approx(low)
            assert len(a.citations) == 2  # the closest passages, to look at
    else:  # cosines of another embedder mean nothing here
        assert reader.read == [weak, strong, weak]
        assert not any(a.abstained for a in answers)


class SpanReader(RecordingReader):
    """A span reader whose confidence is given per question, declining below its threshold
    unless told not to (as FiDReader does); records the threshold flag."""

    has_span_head = True

    def __init__(self, confidence: dict, **config):
        super().__init__(answer_mode="extractive", **config)
        self.confidence, self.thresholds = confidence, []

    def read_batch(self, questions, passages, threshold=True):
        from rag.readers import ReaderOutput

        self.read += questions
        self.thresholds.append(threshold)
        cut = self.config.abstain_threshold if threshold else None
        return ReadBatch([ReaderOutput("yes", self.confidence[q], [1.0] * len(p),
                                       abstained=cut is not None and self.confidence[q] < cut)
                          for q, p in zip(questions, passages)])


def test_abstention_rule_weighs_confidence_similarity_and_coverage(kb):
    """With a fitted rule the pipeline reads everything with the reader's threshold off, and
    declines exactly where the rule's score is below 0; elsewhere (another embedder, lexical
    retrieval, thresholds given by hand) the two thresholds decide as before."""
    from rag.abstention import AbstainRule, coverage
    from rag.pipeline import Pipeline
    from rag.readers import NOT_FOUND

    strong, weak = "hold the red button to reset the pump", "zebra quantum flux"
    conf = {strong: 0.3, weak: 0.99}  # the confident reader is wrong, the unsure one right
    rule = AbstainRule(bias=-1.0, confidence=0.1, similarity=1.0, coverage=1.0)
    reader = SpanReader(conf, abstain_threshold=0.5, abstain_similarity=0.99,
                        similarity_embedder="f" * 64, abstain_rule=rule.to_dict())
    pipe = Pipeline(Retriever(kb), reader, k=2)
    answers = pipe.ask_many([strong, weak])
    assert reader.read == [strong, weak] and reader.thresholds == [False]  # no floor either
    for a, q in zip(answers, [strong, weak]):
        cov = coverage(q, a.citations)
        assert cov == {strong: 1.0, weak: 0.0}[q]  # the pump manual holds every term
        declined = rule.declines(conf[q], a.similarity, cov)
        assert a.abstained == declined and (a.answer == NOT_FOUND) == declined
        assert a.confidence == conf[q]
    assert [a.abstained for a in answers] == [False, True]  # coverage and similarity won
    # the rule was fitted on another embedder's similarities: the thresholds decide
    other = SpanReader(conf, abstain_threshold=0.5, similarity_embedder="0" * 64,
                       abstain_rule=rule.to_dict())
    assert [a.abstained for a in Pipeline(Retriever(kb), other, k=2).ask_many([strong, weak])] \
        == [True, False]
    assert other.thresholds == [True]
    assert Pipeline(Retriever(kb, "lexical"), reader, k=2).abstain_rule() is None
    # no similarity to weigh (e.g. filters left no dense hit): the reader's threshold decides
    out = reader.read_batch([strong], [[]], threshold=False).outputs[0]
    assert pipe.decide(rule, strong, [], None, out).abstained  # 0.3 < 0.5
    assert not pipe.decide(rule, weak, [], None, replace(out, confidence=0.6)).abstained


def test_floor_declines_unsure_answers_over_technical_documentation_only(kb):
    """The rule's floor declines a confidence below it where the knowledge base reads as
    technical documentation (the reader's ``form_gates["technical_at"]``), and nowhere else;
    a rule with no floor answers as before."""
    from rag.abstention import AbstainRule
    from rag.pipeline import Pipeline

    sure, unsure = "hold the red button to reset the pump", "how long does the pump run"
    conf = {sure: 0.9, unsure: 0.004}
    rule = AbstainRule(bias=10.0, confidence=0.1, similarity=1.0, coverage=1.0, floor=0.01)
    share = kb.technical_share()

    def declined(floor, technical_at):
        reader = SpanReader(conf, similarity_embedder=kb.manifest["embedder"]["weights_sha256"],
                            abstain_rule={**rule.to_dict(), "floor": floor},
                            form_gates={"technical_at": technical_at})
        return [a.abstained for a in Pipeline(Retriever(kb), reader, k=2).ask_many([sure, unsure])]

    assert declined(0.01, share) == [False, True]  # technical: the unsure answer is declined
    assert declined(0.01, share + 0.01) == [False, False]  # prose: the score alone decides
    assert declined(0.01, None) == [False, False]  # never technical
    assert declined(None, share) == [False, False]  # no floor


def test_shards_merge_to_what_one_kb_finds(tmp_path, fake_embedder):
    """Three shards searched together give one KB's dense results (exact scores merge), in
    flat and in compressed (IVF-PQ, re-scored) shards; lexical and hybrid find across them."""
    from rag.shards import Shards

    rows = [{"id": str(i), "text": f"note {i} on item{i % 97} with part{i % 13} and tag{i % 7}"}
            for i in range(3300)]
    parts = [rows[i::3] for i in range(3)]
    lines = lambda rs: "\n".join(__import__("json").dumps(r) for r in rs)
    whole = write_corpus(tmp_path / "all", {"notes.jsonl": lines(rows)})
    sync(tmp_path / "kb-all", [whole], embedder=fake_embedder, index_kind="flat",
         log=lambda m: None)
    for i, part in enumerate(parts):
        src = write_corpus(tmp_path / f"src-{i}", {"notes.jsonl": lines(part)})
        sync(tmp_path / f"kb-{i}", [src], embedder=fake_embedder, log=lambda m: None,
             index_kind="ivfpq" if i == 0 else "flat")
    with KnowledgeBase.open(tmp_path / "kb-all", embedder=fake_embedder) as one, \
            Shards.open([tmp_path / f"kb-{i}" for i in range(3)], fake_embedder) as shards:
        for q in ("item5 part3", "tag6 item40", "note 17"):
            vec = fake_embedder.encode_queries([q])[0]
            want = one.search_vector(vec, 10)
            got = [h for _, _, h in shards.dense(vec, 10)]
            assert [h.doc_id for h in got] == [h.doc_id for h in want]
            assert [h.score for h in got] == pytest.approx([h.score for h in want], abs=1e-5)
        assert shards.search("item42 part3", 3, mode="lexical")[0].text.split()[3] == "item42"
        hybrid = shards.search("note 2024 on item84", 5)
        assert hybrid[0].doc_id == "notes.jsonl#2024" and len(hybrid) == 5
