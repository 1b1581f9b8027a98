"""`rag train` on a tiny fixture: the loss falls, resume is exact, frozen weights stay put,
and the saved reader round-trips through `rag ask`."""
import json

import pytest
import torch

from conftest import CAPITALS, FAST_TRAINING, FakeEmbedder, capitals_fixture, write_corpus
from knowledge import KnowledgeBase, sync
from rag.readers.fid import FiDReader
from rag.training.reader import train_reader

FAST = FAST_TRAINING


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return capitals_fixture(tmp_path_factory.mktemp("train"))


def run(fixture, out, resume=False, **settings):
    base, qa = fixture
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    return train_reader([(qa, kb)], out, k=2, decoder_layers=1, frozen_layers=5,
                        dev_fraction=0.25, resume=resume, settings={**FAST, **settings},
                        log=lambda m: None)


def trained_state(out):
    from safetensors.torch import load_file

    return load_file(str(out / "checkpoint" / "state.safetensors"))


def test_loss_falls_and_reader_round_trips(fixture, tmp_path, capsys):
    run(fixture, tmp_path / "r", epochs=30, eval_every=30)
    import csv

    rows = list(csv.DictReader(open(tmp_path / "r" / "curves.csv")))
    first = sum(float(r["loss"]) for r in rows[:3]) / 3
    last = sum(float(r["loss"]) for r in rows[-3:]) / 3
    assert last < first * 0.6, (first, last)
    for name in ("model.safetensors", "config.json", "rag_reader.json", "training_card.json",
                 "curves.csv", "curves.png", "tokenizer.json"):
        assert (tmp_path / "r" / name).exists(), name
    reader_cfg = json.loads((tmp_path / "r" / "rag_reader.json").read_text())
    assert reader_cfg["base_model"] == "all-MiniLM-L6-v2" and reader_cfg["k"] == 2
    # only trained parameters are stored: far smaller than the whole model
    assert (tmp_path / "r" / "model.safetensors").stat().st_size < 25e6
    base, _ = fixture
    reader = FiDReader.load(str(tmp_path / "r"))
    assert reader.model.config.copy_head
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    from rag.pipeline import Pipeline
    from rag.retrieval import Retriever

    answer = Pipeline(Retriever(kb), reader, k=2).ask("What is the capital of France?")
    assert answer.citations and answer.citations[0].attention_score is not None
    # attribution: the decoder attends most to the passage that holds the answer
    hits = {h.doc_id: h for h in kb.fetch([(0.0, i) for i in range(1, 9)])}
    right = 0
    for (country, _), (other, _) in zip(CAPITALS, CAPITALS[1:] + CAPITALS[:1]):
        for order in ([country, other], [other, country]):
            [out] = reader.read_many([f"What is the capital of {country}?"],
                                     [[hits[f"{c}.txt"] for c in order]])
            right += out.attention[order.index(country)] > 0.5
    kb.close()
    assert right >= 14  # of 16


def test_resume_matches_an_uninterrupted_run(fixture, tmp_path):
    run(fixture, tmp_path / "full", epochs=4, eval_every=3)
    run(fixture, tmp_path / "part", epochs=4, eval_every=3, max_steps=3)
    assert json.loads((tmp_path / "part" / "checkpoint" / "meta.json").read_text())["state"][
        "step"] == 3
    run(fixture, tmp_path / "part", resume=True, epochs=4, eval_every=3)
    full, part = trained_state(tmp_path / "full"), trained_state(tmp_path / "part")
    for name in full:
        if name.startswith("model/"):
            torch.testing.assert_close(full[name], part[name], rtol=0, atol=0)


def test_resume_refuses_other_training_data(fixture, tmp_path):
    from knowledge import UsageError

    run(fixture, tmp_path / "r", epochs=4, eval_every=100, max_steps=1)
    base, qa = fixture
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    with pytest.raises(UsageError, match="training examples differ"):
        train_reader([(qa, kb)], tmp_path / "r", k=2, decoder_layers=1, frozen_layers=5,
                     dev_fraction=0.25, limit=3, resume=True,
                     settings={**FAST, "epochs": 4, "eval_every": 100}, log=lambda m: None)


def test_frozen_parameters_do_not_move(fixture, tmp_path):
    from knowledge.embedding import resolve_model
    from safetensors.torch import load_file

    run(fixture, tmp_path / "r", epochs=2, eval_every=100)
    base = load_file(str(resolve_model("all-MiniLM-L6-v2") / "model.safetensors"))
    reader = FiDReader.load(str(tmp_path / "r"), precision="fp32")  # exact, as stored
    params = dict(reader.model.named_parameters())
    for layer in range(5):  # frozen_layers=5: equal to the packaged weights
        name = f"encoder.layer.{layer}.output.dense.weight"
        assert torch.equal(params[f"encoder.{name}"], base[name])
    trained = trained_state(tmp_path / "r")
    assert "model/encoder.encoder.layer.0.output.dense.weight" not in trained
    moved = params["encoder.encoder.layer.5.output.dense.weight"]
    assert not torch.equal(moved, base["encoder.layer.5.output.dense.weight"])


def test_calibration_separates_answerable_from_unanswerable():
    from rag.training.reader import calibrate_abstention

    threshold, stats = calibrate_abstention([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    assert threshold == 0.6 and stats["answered_answerable"] == 100.0
    assert stats["answered_unanswerable"] == 25.0
    # confidence that says nothing about the evidence: never abstain
    assert calibrate_abstention([0.2, 0.5, 0.8], [0.2, 0.5, 0.8])[0] is None
    assert calibrate_abstention([], [0.5])[0] is None


def test_unanswerable_examples_hold_no_answer_and_no_gold_document(fixture):
    from rag.evaluation.qa import load_qaset
    from rag.retrieval import Retriever
    from rag.training.loop import mine_unanswerable

    base, qa = fixture
    questions = load_qaset(qa, "train")
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as kb:
        examples = mine_unanswerable(questions, Retriever(kb), k=2)
    assert len(examples) == len(questions)
    for q, e in zip(questions, examples):
        assert len(e.passages) == 2
        for h in e.passages:
            assert h.doc_id not in q.gold_ids and q.answers[0] not in h.text


def test_abstention_is_calibrated_on_passages_as_retrieved(fixture):
    """Training examples get the gold passage when retrieval misses it; the examples that
    calibrate abstention keep exactly what `rag ask` would read."""
    from rag.evaluation.qa import Question
    from rag.retrieval import Retriever
    from rag.training.loop import as_retrieved, mine

    base, _ = fixture
    q = Question("q", "What is the capital of France?", ("Lima",), ("Peru.txt",))
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as kb:
        r = Retriever(kb)
        [mined], [asked] = mine([q], r, k=1, log=lambda m: None), as_retrieved([q], r, k=1)
        assert [h.doc_id for h in mined.passages] == ["Peru.txt"]  # the gold, forced in
        assert [h.doc_id for h in asked.passages] == [h.doc_id for h in r.retrieve(q.question, 1)]
        assert asked.passages[0].doc_id == "France.txt"


def test_calibrate_only_rewrites_the_threshold(fixture, tmp_path):
    from rag.training.reader import recalibrate

    base, qa = fixture
    run(fixture, tmp_path / "r", epochs=2, eval_every=100)
    card = json.loads((tmp_path / "r" / "training_card.json").read_text())
    assert card["abstention"]["n_unanswerable"] > 0
    config = tmp_path / "r" / "rag_reader.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "abstain_threshold": 0.123}))
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    card = recalibrate([(qa, kb)], tmp_path / "r", dev_fraction=0.25, log=lambda m: None)
    after = json.loads(config.read_text())["abstain_threshold"]
    assert after != 0.123 and after == card["abstain_threshold"]
    assert card["abstention"]["n_answerable"] == card["examples"]["dev"]
    floor = json.loads(config.read_text())["abstain_similarity"]
    assert floor == card["abstain_similarity"] and card["abstention_similarity"]["n_answerable"]
    # the rule over confidence, similarity and coverage, fitted on the same dev questions
    rule = json.loads(config.read_text())["abstain_rule"]
    assert rule == card["abstain_rule"] and set(rule) == {"bias", "confidence", "similarity",
                                                          "coverage", "relative", "floor"}
    # the floor applies to technical documentation: the fixture's pump notes read as prose
    assert card["abstention_rule"]["floor"]["technical groups"] == [] and rule["floor"] is None
    before = card["abstention_rule"]["declined % of dev"][f"{qa} answerable"]["declined"]
    # read as technical (a gate of 0), the floor is fitted within the same budget
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "form_gates": {"technical_at": 0.0}}))
    card = recalibrate([(qa, kb)], tmp_path / "r", dev_fraction=0.25, log=lambda m: None)
    rule = json.loads(config.read_text())["abstain_rule"]
    assert card["abstention_rule"]["floor"]["technical groups"] == [str(qa)]
    assert rule["floor"] is not None and 0 < rule["floor"] <= 1
    after = card["abstention_rule"]["declined % of dev"][f"{qa} answerable"]["declined"]
    assert after <= max(before, 4.0)
    assert set(card["abstention_rule"]["declined % of dev"]) == {
        f"{qa} answerable", f"{qa} missing_document"}


def similarity_evidence(data, **kw):
    from rag.training.reader import abstention_cases

    cases = abstention_cases(data, 1, **kw)
    found = {c: [r.similarity for r in cases["rows"] if r.case == c]
             for c in ("answerable", "missing_document", "off_topic")}
    return {**found, **{k: v for k, v in cases.items() if k != "rows"}, "rows": cases["rows"]}


def test_abstention_cases_without_the_gold_document_and_off_topic(fixture, tmp_path):
    """Each question's best similarity to its knowledge base, to it with the answer's
    document missing (never higher, and no passage of it read), and to another knowledge
    base (off-topic)."""
    from rag.evaluation.qa import load_qaset

    base, qa = fixture
    write_corpus(tmp_path / "pumps", {"pump.md": "To reset the pump hold the red button.",
                                      "fan.md": "The fan has three speeds and a timer."})
    sync(tmp_path / "kb", [tmp_path / "pumps"], embedder=FakeEmbedder(), log=lambda m: None)
    pumps_qa = tmp_path / "pumps.jsonl"
    pumps_qa.write_text("".join(json.dumps(
        {"id": doc, "question": q, "answers": [a], "gold_ids": [doc], "split": "train"}) + "\n"
        for doc, q, a in [("pump.md", "How do I reset the pump?", "hold the red button"),
                          ("fan.md", "How many speeds does the fan have?", "three")]))
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as capitals, \
            KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder()) as pumps:
        n = len(load_qaset(qa, "train"))
        one = similarity_evidence([(qa, capitals)], dev_fraction=1.0, dev_limit=100, seed=0)
        answerable, missing = one["answerable"], one["missing_document"]
        assert one["embedder"] == "f" * 64 and len(answerable) == len(missing) == n
        assert one["off_topic"] == []
        assert all(m <= a + 1e-6 for a, m in zip(answerable, missing))
        assert sum(m < a - 1e-3 for a, m in zip(answerable, missing)) >= n // 2
        for row in one["rows"]:
            gold = [h for h in row.passages if h.doc_id in row.question.gold_ids]
            assert (gold == []) if row.case == "missing_document" else len(row.passages) == 1
        both = similarity_evidence([(qa, capitals), (pumps_qa, pumps)], dev_fraction=1.0,
                                   dev_limit=100, seed=0)
    assert len(both["answerable"]) == len(both["missing_document"]) == n + 2
    # the capital questions against the pump manuals, the pump questions against the capitals
    assert len(both["off_topic"]) == n + 2
    assert max(both["off_topic"]) < min(both["answerable"])

    class OtherEmbedder(FakeEmbedder):
        def identity(self):
            return {**super().identity(), "weights_sha256": "e" * 64}

    sync(tmp_path / "kb2", [tmp_path / "pumps"], embedder=OtherEmbedder(), log=lambda m: None)
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as capitals, \
            KnowledgeBase.open(tmp_path / "kb2", embedder=OtherEmbedder()) as other:
        mixed = similarity_evidence([(qa, capitals), (pumps_qa, other)], dev_fraction=1.0,
                                    dev_limit=100, seed=0)
    # one threshold cannot serve two embedders: none is chosen, and training goes on
    assert mixed["embedder"] is None and mixed["answerable"] == [] and "embedders" in \
        mixed["reason"]


def test_length_bucketed_order_is_a_seeded_permutation_with_tight_batches():
    import random

    from rag.training.loop import _epoch_order

    lengths = [random.Random(i).randint(10, 1000) for i in range(200)]
    order = _epoch_order(lengths, seed=0, epoch=1, batch=8, window=4)
    assert sorted(order) == list(range(200))  # every example once
    assert order == _epoch_order(lengths, seed=0, epoch=1, batch=8, window=4)  # resumable
    assert order != _epoch_order(lengths, seed=0, epoch=2, batch=8, window=4)
    spread = [max(lengths[i] for i in order[b:b + 8]) - min(lengths[i] for i in order[b:b + 8])
              for b in range(0, 200, 8)]
    shuffled = list(range(200))
    random.Random(0).shuffle(shuffled)
    plain = [max(lengths[i] for i in shuffled[b:b + 8]) - min(lengths[i] for i in shuffled[b:b + 8])
             for b in range(0, 200, 8)]
    assert sum(spread) < sum(plain) / 2  # batches pad far less than random ones


def test_bounded_calibration_declines_at_most_the_allowed_share():
    from rag.training.reader import calibrate_abstention

    answerable = [i / 100 for i in range(50, 100)]  # 50 values, 0.50-0.99
    unanswerable = [i / 100 for i in range(0, 60)]
    threshold, stats = calibrate_abstention(answerable, unanswerable, max_declined=0.04)
    declined = sum(a < threshold for a in answerable) / len(answerable)
    assert declined <= 0.04 and threshold == 0.52  # the highest cut that allows it
    assert stats["answered_answerable"] == 96.0 and stats["max_declined"] == 0.04
    # too little gain over the negatives: no threshold at all
    assert calibrate_abstention([0.5, 0.6], [0.5, 0.6], max_declined=0.04)[0] is None


def test_a_trained_reader_continues_at_a_step_of_its_schedule(fixture, tmp_path):
    """--init READER --start-step N (its checkpoint gone): the base stays frozen and shared,
    the run goes on at step N of the same schedule, from the trained weights."""
    run(fixture, tmp_path / "first", epochs=10, eval_every=100, lr=3e-4, warmup=0.25)
    first_cfg = json.loads((tmp_path / "first" / "rag_reader.json").read_text())
    base, qa = fixture
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    train_reader([(qa, kb)], tmp_path / "more", init=str(tmp_path / "first"), k=2,
                 dev_fraction=0.25, settings={**FAST, "epochs": 10, "eval_every": 100,
                                              "lr": 3e-4, "warmup": 0.25, "start_step": 10},
                 log=lambda m: None)
    more_cfg = json.loads((tmp_path / "more" / "rag_reader.json").read_text())
    assert more_cfg["base_model"] == first_cfg["base_model"]
    assert more_cfg["from_base"] == first_cfg["from_base"]  # still shared, not stored
    import csv

    first = list(csv.DictReader(open(tmp_path / "first" / "curves.csv")))
    more = list(csv.DictReader(open(tmp_path / "more" / "curves.csv")))
    assert int(more[0]["step"]) == 11 and more[-1]["step"] == first[-1]["step"]
    assert float(more[0]["lr"]) < float(first[10]["lr"])  # re-warmed up, then the schedule
    assert float(more[-1]["lr"]) == pytest.approx(float(first[-1]["lr"]))
    # it starts from the trained weights: its first losses are those of a trained reader
    assert float(more[0]["loss"]) < 0.7 * float(first[0]["loss"])
