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
     "When was the company Apple founded?"),
    ("When was the company founded?", APPLE, "When was the company Apple founded?"),
    ("What happened that year?", [Turn("When was the Treaty of Paris signed?", "1763")],
     "What happened in 1763?"),
    ("How long is it?", [Turn("What is the longest river in South America?", "the Amazon River")],
     "How long is the Amazon River?"),
    ("Who was their leader?", [Turn("Which tribe sacked Rome in 410?", "the Visigoths")],
     "Who was the Visigoths' leader?"),
    ("and who plays her mom?", [Turn("who plays maddie in life of the party?", "Molly Gordon"),
                                Turn("who plays deanna in life of the party?", "Melissa McCarthy")],
     "and who plays Melissa McCarthy's mom?"),
    ("Who married her in 1990?", [Turn("Who plays Deanna?", "Melissa McCarthy")],
     "Who married Melissa McCarthy in 1990?"),
    ("why?", [Turn("How much did OPEC raise the price of oil in 1973?", "70%")],
     "why did OPEC raise the price of oil in 1973?"),
    ("What was Kublai's relation to him?", [Turn("Who was the Great Khan in 1241?",
                                                 "Ogedei Khan")],
     "What was Kublai's relation to Ogedei Khan?"),
    ("what does the name stand for?", [Turn("What is the Doctor's time machine called?",
                                            "TARDIS")], "what does the name TARDIS stand for?"),
    ("and who produced it?", [Turn("who directed harry potter and the sorcerer's stone?",
                                   "Chris Columbus")],
     "and who produced harry potter and the sorcerer's stone?"),
    # a which/what question about a kind of person: its answer is who "he" is
    ("what year did he do that?", [Turn("Which king moved the court from Krakow to Warsaw?",
                                        "Sigismund III")], "what year did Sigismund III do that?"),
    ("what happened to him?", [Turn("What was Tesla's brother called?", "Dane")],
     "what happened to Dane?"),
    ("roughly when?", [Turn("Who invented the atmospheric engine?", "Thomas Newcomen")],
     "when invented the atmospheric engine?"),
    ("when was that?", [Turn("Who did Wesley appoint as superintendent?", "Thomas Coke")],
     "when did Wesley appoint as superintendent?"),
    ("and when was the second one?", [Turn("When did the 1973 oil crisis begin?", "October")],
     "and when was the second oil crisis?"),
    ("who was the next one?", [Turn("Who was the first president of the United States?",
                                    "George Washington")], "who was the next president?"),
    # a work is one antecedent, whole, and stays the subject across turns
    ("who wrote it?", [Turn("who sings you can't judge a book by the cover?", "Bo Diddley")],
     "who wrote you can't judge a book by the cover?"),
    ("who plays moriarty in it?", [Turn("who directed a game of shadows?", "Guy Ritchie"),
                                   Turn("who plays holmes's brother in it?", "Stephen Fry")],
     "who plays moriarty in a game of shadows?"),
    ("and mother nature?", [Turn("who plays the easter bunny in santa clause 3?", "Jay Thomas")],
     "who plays mother nature in santa clause 3?"),
    ("who plays the ghost that possesses her?", [Turn("who plays the possessed girl in scary "
                                                      "movie 2?", "Natasha Lyonne")],
     "who plays the ghost that possesses Natasha Lyonne?"),
    # a name ending in an abbreviation is still a name, not a sentence
    ("When was he born?", [Turn("Who gave the I Have a Dream speech?", "Martin Luther King Jr.")],
     "When was Martin Luther King Jr born?"),
    # an answer told as a sentence is no antecedent: what the question named is
    ("Which versions of it does FRR implement?", [Turn("What is VRRP used for?", "VRRP stands "
                                                       "for Virtual Router Redundancy Protocol.")],
     "Which versions of VRRP does FRR implement?"),
    # a question asked with "does" ends on its verb, which is no part of its subject
    ("Which option makes it check the format strings?",
     [Turn("What does the msgfmt program do?", None)],
     "Which option makes the msgfmt program check the format strings?"),
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
    "How old was Tesla when he died?",  # "he" is Tesla, in a later clause
    "who coached brynn cartelli to her win on the voice in 2018?",  # her: brynn cartelli
    "How long did it take for the 95 Theses to spread through Europe?",  # no "it" to resolve
    "What music did the band Gryphon explore in its concert at the V&A?",  # named
    "who sang the song in the movie river of no return?",  # a title follows "the movie"
    "When was the second oil crisis?",
    "who replaced johnny carson on the tonight show?",  # "the tonight show": a title
    "who sang the opening line of do they know it's christmas in 1989?",
    "How many items is the University Library in Warsaw home to?",  # a name, not "the city"
])
def test_questions_that_stand_alone_are_asked_as_typed(question):
    got = resolve(question, APPLE)
    assert got.question == question and not got.references


def test_a_reference_with_nothing_to_substitute_is_searched_with_the_conversation():
    got = resolve("in which city was that?", [Turn("Where did Tesla meet Edison?", "Paris")])
    assert got.question == "in which city was that (Edison)?" and got.followup
    assert "Where did Tesla meet Edison?" in got.search


def test_a_question_with_nothing_of_its_own_is_read_with_the_topic():
    got = resolve("who wrote the screenplay?", [Turn("who directed fifty shades of grey?",
                                                     "Sam Taylor-Johnson")])
    assert got.question == "who wrote the screenplay (fifty shades of grey)?"
    got = resolve("who was the first?", [Turn("who plays the easter bunny in santa clause 3?",
                                              "Jay Thomas")])
    assert got.question == "who was the first (santa clause 3)?"


def test_a_vague_question_is_read_beside_the_work_the_conversation_is_about():
    got = resolve("who wrote the play?", [Turn("when did the cursed child premiere?", "2016")])
    assert got.question == "who wrote the play (the cursed child)?"


def test_a_title_said_again_keeps_its_pronoun():
    """'it' inside a title an earlier question named is the title, not a reference; the
    same 'it' standing alone still is one."""
    history = [Turn("who sings let it go in frozen?", "Idina Menzel")]
    q = "who sings let it go in the frozen end credits?"
    assert resolve(q, history).question == q
    assert resolve("who wrote it?", history).question == "who wrote let it go in frozen?"


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


def test_an_unsure_rewrite_is_read_again_with_the_conversation(tmp_path, fake_embedder):
    from conftest import write_corpus
    from knowledge import KnowledgeBase, sync
    from rag.pipeline import SURE, Pipeline
    from rag.readers.base import ReadBatch, Reader, ReaderOutput
    from rag.retrieval import Retriever

    class Unsure(Reader):  # sure of a question only when it holds the previous turn
        sure = 0.5
        read = []

        def read_batch(self, questions, passages, **_):
            self.read.extend(questions)
            return ReadBatch([ReaderOutput(q, 0.95 if "Who founded" in q else self.sure)
                              for q in questions])

    docs = write_corpus(tmp_path / "docs", {"a.txt": "Steve Jobs founded Apple in 1976."})
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        reader = Unsure()
        p = Pipeline(Retriever(kb, "lexical"), reader, k=1)
        follow = p.ask("When did he leave?", history=APPLE)
        assert reader.read == ["When did Steve Jobs leave?",
                               "When did he leave? Who founded Apple? Steve Jobs"]
        assert follow.answer == follow.read_as == "When did he leave? Who founded Apple? Steve Jobs"
        assert follow.rewritten == "When did Steve Jobs leave?"  # what the history keeps
        assert follow.confidence == 0.95 and follow.to_dict()["read_as"] == follow.read_as
        reader.read.clear()
        p.ask("When was Apple founded?", history=APPLE)  # stands alone: read once, as typed
        assert reader.read == ["When was Apple founded?"]
        reader.read.clear()
        reader.sure = SURE  # a rewrite read with confidence is not read again
        sure = p.ask("When did he leave?", history=APPLE)
        assert reader.read == ["When did Steve Jobs leave?"] and sure.read_as is None


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


def test_a_follow_up_answer_never_repeats_what_was_just_told():
    from knowledge.types import Hit
    from rag.pipeline import something_new
    from rag.readers.base import ReaderOutput, Span

    text = "Tesla was born in 1856 and died on 7 January 1943 in New York."
    hit = Hit(1, "d", "d", "", text, 0, len(text), None, "", 1.0)
    born, died = text.index("1856"), text.index("7 January 1943")
    out = ReaderOutput("1856", 0.9, span=Span(0, born, born + 4),
                       candidates=((0.6, 0, born, born + 4), (0.3, 0, died, died + 14)))
    got = something_new(out, [hit], ["1856"])
    assert got.answer == "7 January 1943" and got.span == Span(0, died, died + 14)
    assert something_new(out, [hit], ["Nikola Tesla"]) is out  # nothing repeated
