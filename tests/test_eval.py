"""`rag eval`: exact summaries on a tiny QA set, resume, compare, bad input."""
import json

import pandas as pd
import pytest

from conftest import write_corpus
from knowledge import KnowledgeBase, UsageError, sync
from rag.evaluation import run as ev
from rag.pipeline import RANK_PRIOR, Pipeline
from rag.evaluation.qa import load_qaset, sample
from rag.evaluation.report import compare
from rag.retrieval import Retriever

DOCS = ('{"id": "d1", "text": "apples are red fruit"}\n'
        '{"id": "d2", "text": "bananas are yellow fruit"}\n'
        '{"id": "d3", "text": "cherries are small red fruit"}\n'
        '{"id": "d4", "text": "dates grow on palms"}\n')
QA = [
    {"id": "q1", "question": "which fruit is yellow", "answers": ["bananas"], "gold_ids": ["d2"],
     "split": "test"},
    {"id": "q2", "question": "small red cherries", "answers": ["cherries"], "gold_ids": ["d3"],
     "split": "test"},
    {"id": "q3", "question": "red apples", "answers": ["apples"], "gold_ids": ["d3"],
     "split": "test"},
    {"id": "q4", "question": "palms", "answers": ["coconut"], "gold_ids": ["d9"], "split": "test"},
    {"id": "t1", "question": "dates", "answers": ["dates"], "gold_ids": ["d4"], "split": "train"},
]


@pytest.fixture
def setup(tmp_path, fake_embedder):
    docs = write_corpus(tmp_path / "docs", {"fruit.jsonl": DOCS})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(q) + "\n" for q in QA))
    kb = KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder)
    yield tmp_path, kb, qa
    kb.close()


def run(kb, qa, out, mode="lexical", k=2, log=None):
    questions = load_qaset(qa, "test")
    p = Pipeline(Retriever(kb, mode), reader=None, k=k)
    logs = []
    summary = ev.evaluate(p, questions, out, {"qaset": str(qa), "split": "test", "seed": 0,
                                             "limit": None, "kb": "kb"},
                          log=logs.append)
    return summary, logs


def test_exact_summary_values(setup):
    tmp, kb, qa = setup
    summary, logs = run(kb, qa, tmp / "run")
    assert {k: summary[k] for k in ("n", "k", "exact_match", "f1", "answer_recall@2",
                                    "recall@1", "recall@5", "recall@10", "recall@20", "mrr")} == {
        "n": 4, "k": 2, "exact_match": None, "f1": None, "answer_recall@2": 75.0,
        "recall@1": 50.0, "recall@5": 75.0, "recall@10": 75.0, "recall@20": 75.0, "mrr": 0.625}
    assert logs == ["warning: 1 of 3 gold document ids are not in the knowledge base (e.g. 'd9'); "
                    "retrieval recall counts them as misses"]
    df = pd.read_csv(tmp / "run" / "predictions.csv")
    assert df["id"].tolist() == ["q1", "q2", "q3", "q4"]
    assert df["gold_rank"].tolist()[:3] == [1, 1, 2] and pd.isna(df["gold_rank"][3])
    assert json.loads(df["retrieved_doc_ids"][2]) == ["fruit.jsonl#d1", "fruit.jsonl#d3"]
    for name in ("summary.json", "report.md", "run.json", "recall_at_k.png",
                 "answer_recall_by_type.png"):
        assert (tmp / "run" / name).exists(), name
    card = json.loads((tmp / "run" / "run.json").read_text())
    assert card["settings"]["retrieval"]["mode"] == "lexical" and card["settings"]["k"] == 2
    assert card["settings"]["rank_prior"] == RANK_PRIOR  # a run with another weight differs
    assert card["embedder"]["name"] == "fake-hash-64"
    assert {"torch", "faiss-cpu", "numpy"} <= set(card["packages"])
    assert "cpu" in card["machine"] and "git_commit" in card
    assert "| recall@1 | 50.0 |" in (tmp / "run" / "report.md").read_text()


def test_same_inputs_same_numbers(setup):
    tmp, kb, qa = setup
    a, _ = run(kb, qa, tmp / "a", mode="hybrid")
    b, _ = run(kb, qa, tmp / "b", mode="hybrid")
    drop = ("retrieval_ms_p50", "retrieval_ms_p90", "reader_ms_p50", "reader_ms_p90",
            "questions_per_s")
    assert {k: v for k, v in a.items() if k not in drop} == \
        {k: v for k, v in b.items() if k not in drop}


def test_interrupted_run_resumes(setup, monkeypatch):
    tmp, kb, qa = setup
    full, _ = run(kb, qa, tmp / "full")
    monkeypatch.setattr(ev, "BATCH", 2)
    calls = []
    real = Pipeline.ask_many

    def crash_on_second_batch(self, questions, filters=None, depth=None, histories=None):
        calls.append(list(questions))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, questions, filters, depth, histories)

    monkeypatch.setattr(Pipeline, "ask_many", crash_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run(kb, qa, tmp / "resumed")
    with open(tmp / "resumed" / ev.PROGRESS_FILE, "a") as f:
        f.write('{"id": "q3", "torn')  # the kill landed mid-line
    calls.clear()
    monkeypatch.setattr(Pipeline, "ask_many", lambda self, qs, filters=None, depth=None,
                        histories=None: calls.append(list(qs)) or real(self, qs, filters, depth))
    resumed, logs = run(kb, qa, tmp / "resumed")
    assert calls == [["red apples", "palms"]]  # only what was missing
    assert logs[-1] == "resuming: 2 of 4 questions already done"
    assert resumed["recall@1"] == full["recall@1"] and resumed["mrr"] == full["mrr"]
    assert pd.read_csv(tmp / "resumed" / "predictions.csv")["id"].tolist() == \
        ["q1", "q2", "q3", "q4"]
    with pytest.raises(UsageError, match="holds a run with other settings"):
        run(kb, qa, tmp / "resumed", k=3)
    card = json.loads((tmp / "resumed" / "run.json").read_text())
    (tmp / "resumed" / "run.json").write_text(json.dumps({**card, "git_commit": "aaaa"}))
    monkeypatch.setattr(ev, "_git_commit", lambda: "bbbb")  # the code changed since
    with pytest.raises(UsageError, match="holds a run made by other code"):
        run(kb, qa, tmp / "resumed")


def test_resume_skips_lines_that_are_not_rows(setup):
    tmp, kb, qa = setup
    full, _ = run(kb, qa, tmp / "run")
    with open(tmp / "run" / ev.PROGRESS_FILE, "ab") as f:  # a torn character, junk, foreign rows
        f.write(b'{"id": "q9", "question": "caf\xc3\n\xff\xfe junk\n[1]\n{"id": ["q1"]}\n'
                b'{"id": "q2"}\n')
    again, logs = run(kb, qa, tmp / "run")
    assert logs[-1] == "resuming: 4 of 4 questions already done"
    assert again["mrr"] == full["mrr"] and again["n"] == 4


def test_out_is_never_a_folder_of_other_files(setup):
    tmp, kb, qa = setup
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "report.md").write_text("MY NOTES")
    with pytest.raises(UsageError, match="holds other files than a `rag eval` run"):
        run(kb, qa, notes)
    assert (notes / "report.md").read_text() == "MY NOTES" and len(list(notes.iterdir())) == 1
    (tmp / "a-file").write_text("x")
    with pytest.raises(UsageError, match="is a file; give a folder"):
        run(kb, qa, tmp / "a-file")
    with pytest.raises(UsageError, match="cannot write the results"):
        run(kb, qa, tmp / "a-file" / "sub")
    kept = tmp / "kept"  # (a folder kept in git, or one a file manager has visited)
    kept.mkdir()
    (kept / ".gitkeep").write_text("")
    run(kb, qa, kept)
    run(kb, qa, tmp / "run")
    (tmp / "run" / "run.json").write_text("{")
    with pytest.raises(UsageError, match="run.json is not a `rag eval` run card"):
        run(kb, qa, tmp / "run")


def test_compare_lists_changed_questions(setup):
    tmp, kb, qa = setup
    run(kb, qa, tmp / "k1", k=1)
    run(kb, qa, tmp / "k2", k=2)
    result = compare(tmp / "k1", tmp / "k2")
    rows = {r["metric"]: r for r in result["summary"]}
    assert rows["recall@1"]["delta"] == 0.0
    assert (rows["answer_recall@1"]["a"], rows["answer_recall@2"]["b"]) == (75.0, 75.0)
    assert result["n_common"] == 4 and result["n_changed"] == 1
    assert result["changed"][0]["question"] == "red apples"
    assert result["changed"][0]["a"] == "gold rank 2 (beyond k=1)"
    assert result["changed"][0]["b"] == "gold rank 2"


def test_split_and_seeded_sample(setup):
    _, _, qa = setup
    assert [q.id for q in load_qaset(qa, "train")] == ["t1"]
    assert len(load_qaset(qa, "all")) == 5
    qs = load_qaset(qa, "test")
    assert [q.id for q in sample(qs, 2, seed=1)] == [q.id for q in sample(qs, 2, seed=1)]
    assert len(sample(qs, 2, seed=1)) == 2


def test_unanswerable_questions_run_through_to_the_report(setup):
    tmp, kb, qa = setup
    absent = {"id": "q5", "question": "who grows kiwis", "answers": [], "gold_ids": [],
              "split": "test"}
    qa.write_text(qa.read_text() + json.dumps(absent) + "\n")
    summary, _ = run(kb, qa, tmp / "run")
    assert summary["n"] == 5
    report = (tmp / "run" / "report.md").read_text()
    assert "palms — gold answer: coconut" in report and "kiwis" not in report


@pytest.mark.parametrize("content,message", [
    ('{"id": 1, "question": "q", "answers": ["a"]}\n{not json\n', r"qa.jsonl:2: not valid JSON"),
    ('{"id": 1, "answers": ["a"]}\n', r"qa.jsonl:1: missing 'question' text"),
    ('{"id": 1, "question": "q", "answers": [1]}\n', r"qa.jsonl:1: 'answers' must be a list"),
    ("\n\n", "the QA set is empty"),
])
def test_bad_qa_sets(tmp_path, content, message):
    (tmp_path / "qa.jsonl").write_text(content)
    with pytest.raises(UsageError, match=message):
        load_qaset(tmp_path / "qa.jsonl")


def test_squad_json_is_read_directly(tmp_path):
    squad = {"data": [{"title": "Art", "paragraphs": [{"context": "c", "qas": [
        {"id": "x", "question": "Q?", "answers": [{"text": "A", "answer_start": 0},
                                                 {"text": "A", "answer_start": 0}]}]}]}]}
    (tmp_path / "s.json").write_text(json.dumps(squad))
    [q] = load_qaset(tmp_path / "s.json")
    assert (q.id, q.question, q.answers, q.gold_ids) == ("x", "Q?", ("A",), ("Art",))


@pytest.mark.parametrize("data", [5, [5], [{"paragraphs": 5}],
                                  [{"title": "t", "paragraphs": [{"qas": [
                                      {"id": 1, "question": 2, "answers": [{"text": "a"}]}]}]}]])
def test_squad_json_of_other_shapes_is_a_one_line_error(tmp_path, data):
    (tmp_path / "s.json").write_text(json.dumps({"data": data}))
    with pytest.raises(UsageError, match="s.json: not a SQuAD-format JSON file"):
        load_qaset(tmp_path / "s.json")


def test_gold_passage_mode_gives_the_reader_only_the_answer_chunk(setup):
    from rag.evaluation.gold import GoldRetriever

    tmp, kb, qa = setup
    questions = load_qaset(qa, "test")
    r = GoldRetriever(kb, questions)
    got = r.retrieve_many([q.question for q in questions])
    assert [[h.doc_id for h in hits] for hits in got] == [["fruit.jsonl#d2"], ["fruit.jsonl#d3"],
                                                          [], []]
    # q3's gold document d3 does not contain 'apples'; q4's gold is not in the KB


def test_gold_passage_is_the_one_holding_the_reference(setup):
    """A manual names a whole book as its gold document: of the chunks holding an answer, the
    one quoting the question's reference text is the gold passage, not the first."""
    from rag.evaluation.gold import gold_passage
    from rag.evaluation.qa import Question

    tmp, kb, qa = setup
    q = Question(id="r", question="which fruit is small and red", answers=("red",),
                 gold_ids=("d1", "d3"))
    assert gold_passage(kb, q).doc_id == "fruit.jsonl#d1"  # no reference: the first
    q.extra["reference"] = "Cherries are small red fruit."
    assert gold_passage(kb, q).doc_id == "fruit.jsonl#d3"


def test_gold_passage_mode_decides_by_the_readers_rule(setup):
    """`rag eval --retrieval gold` reports each question's best dense similarity, so the
    reader's abstention rule decides as `rag ask` would, not the fallback threshold."""
    from types import SimpleNamespace

    from rag.abstention import AbstainRule
    from rag.evaluation.gold import GoldRetriever
    from rag.readers.base import ReaderOutput

    tmp, kb, qa = setup
    questions = load_qaset(qa, "test")
    r = GoldRetriever(kb, questions)
    found = r.search_many([questions[0].question])
    vecs = kb.embedder.encode_queries([questions[0].question])
    assert found.similarity == kb.dense_search(vecs, 1)[1]
    assert found.similarity[0] is not None
    rule = AbstainRule(bias=5.0, confidence=0.1, similarity=0.0, coverage=0.0)
    reader = SimpleNamespace(has_span_head=True, config=SimpleNamespace(
        abstain_rule=rule.to_dict(), abstain_threshold=0.99,
        similarity_embedder=kb.manifest["embedder"]["weights_sha256"]))
    p = Pipeline(r, reader=reader, k=1)
    assert p.abstain_rule() == rule
    out = ReaderOutput("bananas", 0.5, [1.0])
    hits = found.hits[0]
    assert not p.decide(p.abstain_rule(), questions[0].question, hits, found.similarity[0],
                        out).abstained  # the rule answers
    assert p.decide(None, questions[0].question, hits, None, out).abstained  # the threshold


def test_dev_split_is_the_held_out_part_of_train(tmp_path):
    qa = tmp_path / "qa.jsonl"
    rows = [{"id": f"q{i}", "question": f"q {i}?", "answers": ["a"], "gold_ids": [f"d{i % 40}"],
             "split": "test" if i % 40 < 8 else "train"} for i in range(200)]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train, dev = load_qaset(qa, "train"), load_qaset(qa, "dev")
    assert dev and {q.id for q in dev} < {q.id for q in train}
    docs = lambda qs: {q.gold_ids[0] for q in qs}  # noqa: E731
    assert len(docs(dev)) == 1  # 5 % of 32 train documents, whole documents only
    assert not docs(dev) & docs([q for q in train if q not in dev])
    assert [q.id for q in load_qaset(qa, "dev")] == [q.id for q in dev]  # fixed, not random
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "1", "question": "q?", "answers": ["a"]}) + "\n")
    with pytest.raises(UsageError, match="--split dev needs"):
        load_qaset(plain, "dev")


def test_question_types_containment_and_declines_are_reported_per_type(tmp_path, fake_embedder):
    """A QA set with types and an unanswerable question: right = an acceptable answer within
    60 words (or declined when nothing answers), per type, with declines and their cost."""
    from rag.readers.base import NOT_FOUND, ReadBatch, Reader, ReaderOutput

    class Quoting(Reader):  # answers with its first passage, or declines (withholding it)
        def read_batch(self, questions, passages, **_):
            return ReadBatch([ReaderOutput(NOT_FOUND, 0.1, abstained=True, withheld=p[0].text)
                              if "palms" in q or "cherries" in q
                              else ReaderOutput(p[0].text, 0.9) for q, p in zip(questions, passages)])

    docs = write_corpus(tmp_path / "docs", {"fruit.jsonl": DOCS})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    rows = [{"id": "a", "question": "which fruit is yellow", "answers": ["yellow"],
             "type": "factoid"},
            {"id": "b", "question": "how do red apples look", "answers": ["red fruit"],
             "type": "howto"},
            {"id": "c", "question": "small red cherries", "answers": ["cherries"],
             "type": "howto"},
            {"id": "d", "question": "what grows on palms", "answers": [], "type": "absent"}]
    qa = tmp_path / "typed.jsonl"
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        p = Pipeline(Retriever(kb, "lexical"), reader=Quoting(), k=1)
        summary = ev.evaluate(p, load_qaset(qa, "test"), tmp_path / "run",
                              {"qaset": str(qa), "split": "test"}, log=lambda m: None)
    by = summary["by_type"]
    assert set(by) == {"factoid", "howto", "absent"}
    assert by["factoid"]["right"] == 100.0 and by["factoid"]["answer_words_median"] == 4
    assert by["howto"]["right"] == 50.0 and by["howto"]["declined_answerable"] == 50.0
    assert by["absent"]["right"] == 100.0 and by["absent"]["declined_absent"] == 100.0
    assert "f1" not in by["absent"]  # F1 is for questions that have an answer
    assert summary["right"] == 75.0 and summary["declined_answerable"] == round(100 / 3, 2)
    # the declined cherries question would have scored F1 0.5 ("cherries are small red fruit")
    assert summary["f1_lost_to_declines"] == round(100 * (2 * 0.2 * 1 / 1.2) / 3, 2)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## By question type" in report and "| absent |" in report
    assert (tmp_path / "run" / "f1_by_type.png").exists()


def test_a_set_with_its_own_dev_rows_gives_those_for_dev(tmp_path):
    qa = tmp_path / "qa.jsonl"
    rows = [{"id": f"q{i}", "question": f"q {i}?", "answers": ["a"], "gold_ids": [f"d{i}"],
             "split": "test" if i % 3 == 0 else "dev"} for i in range(9)]
    qa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [q.id for q in load_qaset(qa, "dev")] == ["q1", "q2", "q4", "q5", "q7", "q8"]
    assert [q.id for q in load_qaset(qa, "test")] == ["q0", "q3", "q6"]
