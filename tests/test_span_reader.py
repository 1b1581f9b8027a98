"""The span-extracting FiD reader end to end on a tiny fixture: extractive answers are exact
quotations with citations, the no-answer option learns, LoRA adapters leave MiniLM (and
so the embedder) untouched, fused scoring defers to the decoder when spans tie."""

import pytest
import torch

from conftest import CAPITALS, FAST_TRAINING, FakeEmbedder, capitals_fixture
from knowledge import KnowledgeBase
from rag.readers.fid import FiDReader
from rag.training.reader import train_reader

FAST = FAST_TRAINING


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return capitals_fixture(tmp_path_factory.mktemp("spans"))


def train(fixture, out, **kw):
    base, qa = fixture
    kb = KnowledgeBase.open(base / "kb", embedder=FakeEmbedder())
    settings = {**FAST, **kw.pop("settings", {})}
    return train_reader([(qa, kb)], out, k=2, decoder_layers=1, dev_fraction=0.25,
                        settings=settings, log=lambda m: None, **kw)


def passages(fixture):
    base, _ = fixture
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as kb:
        return {h.doc_id: h for h in kb.fetch([(0.0, i) for i in range(1, 9)])}


@pytest.fixture(scope="module")
def trained(fixture, tmp_path_factory):
    out = tmp_path_factory.mktemp("reader") / "r"
    train(fixture, out, frozen_layers=4, unanswerable_every=1,
          settings={"epochs": 40, "eval_every": 1000})
    return out


def test_extractive_answers_are_quotations_with_exact_citations(fixture, trained):
    from rag.pipeline import Pipeline
    from rag.retrieval import Retriever

    reader = FiDReader.load(str(trained), abstain_threshold=None)  # (tiny dev set)
    assert reader.config.answer_mode == "extractive"
    hits = passages(fixture)
    right = 0
    for (country, city), (other, _) in zip(CAPITALS, CAPITALS[1:] + CAPITALS[:1]):
        ps = [hits[f"{other}.txt"], hits[f"{country}.txt"]]
        [out] = reader.read_many([f"What is the capital of {country}?"], [ps])
        assert out.span is not None  # a quotation of one passage, by construction
        assert ps[out.span.passage].text[out.span.start:out.span.end] == out.answer
        right += out.answer == city
    assert right >= 6  # of 8
    base, _ = fixture
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as kb:
        answer = Pipeline(Retriever(kb), reader, k=2).ask("What is the capital of France?")
    cited = [c for c in answer.citations if c.answer_start is not None]
    assert cited and answer.answer == "Paris"
    doc = hits["France.txt"]
    c = cited[0]
    assert doc.text[c.answer_start - doc.start:c.answer_end - doc.start] == "Paris"
    # the explanation's start and end peaks are on the answer, in the cited passage
    ex = answer.explanation
    assert ex["chunk_id"] == c.chunk_id
    top_start = max(ex["tokens"], key=lambda t: t[2])
    top_end = max(ex["tokens"], key=lambda t: t[3])
    assert c.text[top_start[0]:top_end[1]] == "Paris"
    assert all(0 <= t[2] <= 1 and 0 <= t[3] <= 1 for t in ex["tokens"])


def test_no_answer_training_flips_confidence(fixture, trained):
    reader = FiDReader.load(str(trained))
    hits = passages(fixture)
    with_answer, without = [], []
    for i, (country, _) in enumerate(CAPITALS):
        others = [hits[f"{c}.txt"] for c, _ in CAPITALS if c != country][i % 6:i % 6 + 2]
        q = f"What is the capital of {country}?"
        [a] = reader.read_many([q], [[others[0], hits[f"{country}.txt"]]])
        [b] = reader.read_many([q], [others])
        with_answer.append(a.confidence)
        without.append(b.confidence)
    assert sum(with_answer) / 8 > 0.5 > sum(without) / 8
    assert sum(a > b for a, b in zip(with_answer, without)) >= 7


def test_lora_leaves_minilm_bit_identical_and_the_embedder_unchanged(fixture, tmp_path):
    from safetensors.torch import load_file

    from knowledge.embedding import Embedder, resolve_model
    from rag.pipeline import Pipeline
    from rag.retrieval import Retriever

    out = tmp_path / "lora"
    train(fixture, out, lora=4, settings={"epochs": 2, "eval_every": 1000})
    base = load_file(str(resolve_model("all-MiniLM-L6-v2") / "model.safetensors"))
    stored = load_file(str(out / "model.safetensors"))
    assert not any(".base_layer." in n or n.startswith("encoder.embeddings") for n in stored)
    assert any("lora_A" in n for n in stored) and "span.weight" in stored
    reader = FiDReader.load(str(out), precision="fp32")
    params = dict(reader.model.named_parameters())
    for layer in range(6):  # every base weight is the packaged one, bit for bit
        name = f"encoder.layer.{layer}.attention.self.query.weight"
        assert torch.equal(params[f"encoder.encoder.layer.{layer}.attention.self.query."
                                  f"base_layer.weight"], base[name])
    assert any(not torch.all(p == 0) for n, p in params.items() if "lora_B" in n)  # trained
    embedder = Embedder.load("all-MiniLM-L6-v2", precision="fp32")
    before = embedder.encode(["What is the capital of Peru?"])
    base_dir, _ = fixture
    with KnowledgeBase.open(base_dir / "kb", embedder=FakeEmbedder()) as kb:
        retriever = Retriever(kb)
        shared = reader.share_base_weights(embedder)
        assert shared > 0  # the reader now uses the embedder's copy of MiniLM
        Pipeline(retriever, reader, k=2).ask("What is the capital of Peru?")
    after = embedder.encode(["What is the capital of Peru?"])
    assert (before == after).all()


def test_fused_defers_to_the_decoder_when_span_scores_tie(fixture, trained):
    reader = FiDReader.load(str(trained), answer_mode="fused", fuse_top=4,
                            abstain_threshold=None)
    with torch.no_grad():
        reader.model.span.weight.zero_()  # every span scores the same
        reader.model.span.bias.zero_()
    hits = passages(fixture)
    ps = [hits["Japan.txt"]]
    q = "What is the capital of Japan?"
    from rag.readers import spans as sp

    enc = sp.encode_inputs(reader.tokenizer, reader.config.input_format, [q], [ps], 256)
    hidden, _ = reader._run_encoder(enc["input_ids"], enc["attention_mask"],
                                    enc["present"].long())
    with torch.no_grad():
        st, en = reader.model.span_logits(hidden)
        slp, elp = sp.log_probs(st, en, sp.candidate_mask(enc["context"], enc["present"]), 1)
    [cands] = sp.decode_spans(slp, elp, enc["context"], enc["char"], 1, enc["length"],
                              reader.config.max_answer_tokens, 4)
    assert len({round(c.score, 5) for c in cands}) == 1  # a tie
    [fused] = reader._fuse(hidden, enc, [q], [ps], [cands])
    best = max(fused, key=lambda c: c.fused)
    [out] = reader.read_many([q], [ps])
    assert out.answer == ps[0].text[best.start:best.end]
    decoder_scores = [c.fused - c.score for c in fused]
    assert best.fused - best.score == max(decoder_scores)


def test_int8_storage_round_trips_within_a_row_step():
    """Stored matrices are int8 with per-row scales; loading restores each weight within
    half a quantisation step of its row, and leaves vectors and small tensors exact."""
    from rag.readers.weights import SCALE, dequantize, quantize_int8

    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 128, generator=g) * torch.linspace(0.01, 3, 64)[:, None]
    b = torch.randn(128, generator=g)
    stored = quantize_int8({"w": w.to(torch.bfloat16), "b": b})
    assert stored["w"].dtype == torch.int8 and stored["w" + SCALE].shape == (64, 1)
    assert torch.equal(stored["b"], b)
    back = dequantize(stored)
    assert set(back) == {"w", "b"} and back["w"].dtype == torch.bfloat16
    step = w.abs().amax(1, keepdim=True) / 127
    assert ((back["w"].float() - w).abs() <= step * 0.5 + w.abs() * 2 ** -7 + 1e-6).all()


def test_int8_storage_keeps_a_change_smaller_than_its_step_with_a_low_rank_correction():
    """A fine-tune's small low-rank change to int8-stored weights: stored as int8 alone it
    rounds back onto the old grid and is lost; with ``rank`` it is kept."""
    from rag.readers.weights import LOW_A, SCALE, dequantize, quantize_int8

    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 128, generator=g) * 0.1
    w[:, 0] = 3.0  # one large weight per row: a coarse step, far above bf16's precision
    grid = quantize_int8({"w": w})
    old = grid["w"].float() * grid["w" + SCALE]  # weights on an int8 grid
    step = old.abs().amax(1, keepdim=True) / 127
    change = torch.randn(64, 2, generator=g) @ torch.randn(2, 128, generator=g)
    change = change / change.abs().max() * step.min() * 0.45  # under half a step everywhere
    new = old + change
    plain = dequantize(quantize_int8({"w": new}))["w"].float()
    assert (plain - new).norm() > 0.8 * change.norm()  # int8 alone: the change is gone
    stored = quantize_int8({"w": new}, rank=2)
    assert stored["w" + LOW_A].shape == (64, 2)
    kept = dequantize(stored)["w"].float()
    assert (kept - new).norm() < 0.3 * change.norm()


def test_a_span_is_weighed_by_its_passage_rank(tmp_path):
    """The pipeline answers from the best-ranked passage unless the reader is much surer of a
    lower one (each place down counts RANK_PRIOR of the one above); the reader's confidence,
    which abstention reads, stays its own."""
    from types import SimpleNamespace

    from conftest import write_corpus
    from knowledge.sync import sync
    from rag.pipeline import RANK_PRIOR, Pipeline, by_rank
    from rag.readers.base import ReadBatch, Reader, ReaderOutput, Span
    from rag.retrieval import Retriever

    class Leaning(Reader):  # puts `surer` times the first passage's probability on the second
        surer = 2.0

        def read_batch(self, questions, passages, **_):
            outs = []
            for hits in passages:
                spans = [(0.4 * (self.surer if at == 1 else 1.0), at, 0, len(h.text.split()[0]))
                         for at, h in enumerate(hits)]
                spans.sort(key=lambda c: -c[0])
                _, at, s, e = spans[0]
                heat = {i: [(0, len(h.text.split()[0]), p, p)]
                        for p, i, _, _ in spans for h in [hits[i]]}
                outs.append(ReaderOutput(hits[at].text[s:e], 0.7, span=Span(at, s, e),
                                         candidates=tuple(spans), heat=heat,
                                         attention=[p for p, _, _, _ in sorted(
                                             spans, key=lambda c: c[1])]))
            return ReadBatch(outs)

    docs = write_corpus(tmp_path / "docs", {"a.txt": "Lima is the capital of Peru.",
                                            "b.txt": "Cusco was the Inca capital."})
    sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), log=lambda m: None)
    with KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder()) as kb:
        pipe = Pipeline(Retriever(kb, "lexical"), Leaning(), k=2)
        first = pipe.ask("What is the capital of Peru?")
        assert first.retrieved[0].text.startswith("Lima")
        assert first.answer == "Lima" and first.confidence == 0.7
        # the page's heat map is over the passage the answer is quoted from, listed first
        assert first.explanation["chunk_id"] == first.retrieved[0].chunk_id
        assert first.citations[0].chunk_id == first.retrieved[0].chunk_id
        assert first.citations[0].answer_start == 0
        Leaning.surer = 2 / RANK_PRIOR  # far surer of the second passage: it answers
        assert pipe.ask("What is the capital of Peru?").answer == "Cusco"
        Leaning.surer = 2.0
        Leaning.config = SimpleNamespace(answer_mode="fused")  # the decoder's order is kept
        assert pipe.ask("What is the capital of Peru?").answer == "Cusco"
    out = ReaderOutput("x", 0.5, abstained=True, candidates=((0.9, 1, 0, 1),))
    assert by_rank(out, []) is out  # a declined answer stays declined
