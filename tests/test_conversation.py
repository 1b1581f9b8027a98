"""Follow-up questions (rag/conversation.py): references back resolved from earlier turns;
a question that stands alone is asked exactly as typed."""
import json

import pytest

from rag.conversation import Turn, resolve

APPLE = [Turn("Who founded Apple?", "Steve Jobs")]


@pytest.mark.parametrize("question,history,asked", [
    ("When did he step down?", APPLE, "When did Steve Jobs step down?"),
    ("Where is its headquarters?", APPLE, "Where is Apple's headquarters?"),
    ("and in 2015?", [Turn("How many people lived in Jacksonville in 2010?", "821,784")],
     "How many people lived in Jacksonville in 2015?"),
    ("What about Tesla?", [Turn("When was Edison born?", "1847")], "When was Tesla born?"),
    ("When was the company founded?", [Turn("Who makes the iPhone?", "Apple")],
     "When was Apple founded?"),
    ("What happened that year?", [Turn("When was the Treaty of Paris signed?", "1763")],
     "What happened in 1763?"),
    ("How long is it?", [Turn("What is the longest river in South America?", "the Amazon River")],
     "How long is the Amazon River?"),
    ("Who was their leader?", [Turn("Which tribe sacked Rome in 410?", "the Visigoths")],
     "Who was the Visigoths' leader?"),
    # the most recent turn wins
    ("When did she die?", [Turn("Who wrote Frankenstein?", "Mary Shelley"),
                           Turn("Who was her mother?", "Mary Wollstonecraft")],
     "When did Mary Wollstonecraft die?"),
])
def test_follow_ups_are_made_self_contained(question, history, asked):
    got = resolve(question, history)
    assert got.question == asked and got.references


@pytest.mark.parametrize("question", [
    "Who won Super Bowl 50?",
    "What did the Normans call their land?",  # "their" is the Normans, in the question
    "How old was Tesla when his father died?",
    "Where is the capital of France?",
])
def test_questions_that_stand_alone_are_asked_as_typed(question):
    got = resolve(question, APPLE)
    assert got.question == question and not got.references


def test_no_history_or_nothing_to_resolve_with():
    assert resolve("When did he die?", []).question == "When did he die?"
    # the only earlier answer was "not found": nothing to point back at
    assert resolve("When did he die?", [Turn("who?", "not found in the knowledge base")]
                   ).question == "When did he die?"


def test_turns_are_parsed_with_clear_errors():
    assert Turn.parse({"question": "q", "answer": "a"}) == Turn("q", "a")
    for bad in ("q", {"answer": "a"}, {"question": "q", "answer": 3}):
        with pytest.raises(ValueError, match="question|answer"):
            Turn.parse(bad)


def test_pipeline_reads_the_rewrite_and_leaves_standalone_questions_alone(tmp_path,
                                                                          fake_embedder):
    from conftest import write_corpus
    from knowledge import KnowledgeBase, sync
    from rag.pipeline import Pipeline
    from rag.readers.base import ReadBatch, Reader, ReaderOutput
    from rag.retrieval import Retriever

    class Echo(Reader):  # answers with the question it was given
        def read_batch(self, questions, passages, **_):
            return ReadBatch([ReaderOutput(q, 0.9) for q in questions])

    docs = write_corpus(tmp_path / "docs", {"a.txt": "Steve Jobs founded Apple in 1976."})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        p = Pipeline(Retriever(kb, "lexical"), Echo(), k=1)
        alone = p.ask("When was Apple founded?")
        same = p.ask("When was Apple founded?", history=APPLE)
        follow = p.ask("When did he leave?", history=APPLE)
    assert alone.to_dict()["answer"] == same.to_dict()["answer"] == "When was Apple founded?"
    assert same.rewritten is None and alone.citations == same.citations
    assert follow.question == "When did he leave?"
    assert follow.rewritten == follow.answer == "When did Steve Jobs leave?"


def test_eval_reads_history_and_reports_follow_ups(tmp_path, fake_embedder):
    from conftest import write_corpus
    from knowledge import KnowledgeBase, sync
    from rag.evaluation import run as ev
    from rag.evaluation.qa import load_qaset
    from rag.pipeline import Pipeline
    from rag.readers.base import ReadBatch, Reader, ReaderOutput
    from rag.retrieval import Retriever

    class Named(Reader):  # right only when the question names Steve Jobs
        def read_batch(self, questions, passages, **_):
            return ReadBatch([ReaderOutput("1976" if "Jobs" in q else "unknown", 0.9)
                              for q in questions])

    docs = write_corpus(tmp_path / "docs", {"a.txt": "Steve Jobs founded Apple in 1976."})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    qa = tmp_path / "f.jsonl"
    qa.write_text(json.dumps({"id": "f1", "question": "When did he found it?",
                              "standalone": "When did Steve Jobs found Apple?",
                              "history": [{"question": "Who founded Apple?",
                                           "answer": "Steve Jobs"}],
                              "answers": ["1976"]}) + "\n")
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        p = Pipeline(Retriever(kb, "lexical"), Named(), k=1)
        s = ev.evaluate(p, load_qaset(qa), tmp_path / "run", {}, log=lambda m: None)
    assert s["n_followups"] == 1 and s["followups_rewritten"] == 100.0
    assert s["f1_followups"] == 100.0
