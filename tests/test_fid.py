"""The FiD reader's plumbing on a tiny random T5: inputs, shapes, masks, permutation,
grounded decoding, attribution, load errors."""

import pytest
import torch

from knowledge import UsageError
from knowledge.types import Hit
from rag.readers.base import NOT_FOUND
from rag.readers.fid import FiDReader, ReaderConfig, format_passage
from rag.readers.grounding import SpanConstraint
from tiny_models import minilm_tokenizer, tiny_t5


def hit(i, text, title="", doc="d"):
    return Hit(chunk_id=i, doc_id=f"{doc}{i}", source=f"{doc}{i}.txt", title=title, text=text,
               start=0, end=len(text), page=None, heading="", score=1.0 / (i + 1))


PASSAGES = [hit(0, "The Denver Broncos won Super Bowl 50.", "Super Bowl 50"),
            hit(1, "Paris is the capital of France.", "Paris"),
            hit(2, "Tesla was born in Smiljan in 1856.", "Nikola Tesla")]


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    return FiDReader.load(str(tiny_t5(tmp_path_factory.mktemp("t5"))), max_new_tokens=6)


def test_golden_input_strings():
    template = ReaderConfig().input_format
    assert format_passage(template, " Who won? ", PASSAGES[0]) == \
        "question: Who won? title: Super Bowl 50 context: The Denver Broncos won Super Bowl 50."
    assert format_passage(template, "Q", hit(5, "x")) == "question: Q title: d5 context: x"
    assert format_passage("{question} [SEP] {context}", "Q", PASSAGES[1]) == \
        "Q [SEP] Paris is the capital of France."


def test_concatenated_states_and_masks(reader):
    hidden, mask, n_p, length = reader.encode(["Who won?", "Where?"],
                                              [PASSAGES, PASSAGES[:1]])
    assert n_p == 3
    assert hidden.shape == (2, 3 * length, reader.model.config.d_model)
    assert mask.shape == (2, 3 * length)
    assert mask[1, length:].sum() == 0  # the second question has one passage: rest masked
    assert mask[1, :length].sum() > 0 and all(mask[0, j * length] == 1 for j in range(3))
    # each block is that passage encoded alone with the question (independent encoding)
    alone, _, _, l1 = reader.encode(["Who won?"], [[PASSAGES[1]]])
    n = int(mask[0, length:2 * length].sum())
    torch.testing.assert_close(hidden[0, length:length + n], alone[0, :n], atol=1e-5, rtol=1e-4)


def test_permuting_passages_changes_only_citation_order(reader):
    [a] = reader.read_many(["Who won Super Bowl 50?"], [PASSAGES])
    [b] = reader.read_many(["Who won Super Bowl 50?"], [PASSAGES[::-1]])
    assert a.answer == b.answer
    assert a.confidence == pytest.approx(b.confidence, rel=1e-4)
    assert a.attention == pytest.approx(b.attention[::-1], abs=1e-5)
    assert sum(a.attention) == pytest.approx(1.0, abs=1e-4)


def test_grounded_decoding_only_emits_passage_spans(reader):
    tok = reader.tokenizer
    questions = ["Who won?", "What is the capital?", "When was Tesla born?"]
    outs = reader.read_many(questions, [PASSAGES] * 3, grounded=True)
    for out in outs:
        assert out.span is not None, out
        text = PASSAGES[out.span.passage].text
        piece = text[out.span.start:out.span.end]
        assert piece and tok.decode(tok(piece, add_special_tokens=False)["input_ids"]) == \
            out.answer
        assert out.answer.lower() in text.lower()


def test_span_constraint_allows_only_continuations():
    tok = minilm_tokenizer()
    c = SpanConstraint(tok, ["the red fox jumps", "a red car"], eos_id=102)
    red = tok.convert_tokens_to_ids("red")
    fox, car, jumps = (tok.convert_tokens_to_ids(w) for w in ("fox", "car", "jumps"))
    assert c.allowed([red]) == sorted({fox, car, 102})
    assert c.allowed([red, fox]) == sorted({jumps, 102})
    assert c.allowed([fox, car]) == [102]  # not in any passage: can only stop
    span = c.locate([red, car])
    assert (span.passage, span.start, span.end) == (1, 2, 9)


def test_no_passages_means_not_found(reader):
    [out] = reader.read_many(["Anything?"], [[]])
    assert out.abstained and out.answer == NOT_FOUND


def test_abstains_below_the_confidence_threshold(tmp_path):
    path = tiny_t5(tmp_path / "m")
    ReaderConfig(abstain_threshold=0.99, max_new_tokens=4).save(path)
    r = FiDReader.load(str(path))
    [out] = r.read_many(["Who won?"], [PASSAGES])
    assert out.abstained and out.answer == NOT_FOUND and out.confidence < 0.99
    assert out.attention is not None  # the closest passages are still returned


def test_load_errors(tmp_path):
    from transformers import BertConfig, BertModel

    enc_only = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=1, intermediate_size=16)).save_pretrained(enc_only)
    with pytest.raises(UsageError, match="is not a seq2seq"):
        FiDReader.load(str(enc_only))
    no_tok = tiny_t5(tmp_path / "notok")
    for f in no_tok.glob("*"):
        if "token" in f.name or f.name == "vocab.txt":
            f.unlink()
    with pytest.raises(UsageError, match="tokenizer missing in"):
        FiDReader.load(str(no_tok))
    bin_only = tiny_t5(tmp_path / "bin")
    (bin_only / "model.safetensors").rename(bin_only / "pytorch_model.bin")
    with pytest.raises(UsageError, match="no safetensors weights"):
        FiDReader.load(str(bin_only))
    with pytest.raises(UsageError, match="reader path './nope' is not a model directory"):
        FiDReader.load("./nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no usable config.json"):
        FiDReader.load(str(tmp_path / "empty"))


def test_causal_reader_behind_the_same_interface(tmp_path):
    from rag.readers.causal import CausalReader, load_reader
    from tiny_models import tiny_gpt2

    r = load_reader(str(tiny_gpt2(tmp_path / "gpt")), max_new_tokens=3)
    assert isinstance(r, CausalReader)
    prompt, ranges = r.prompt("Who won?", PASSAGES[:2])
    assert prompt.endswith("[1] Super Bowl 50: The Denver Broncos won Super Bowl 50.\n"
                           "[2] Paris: Paris is the capital of France.\n\n"
                           "Question: Who won?\nAnswer:")
    assert [prompt[a:b] for a, b in ranges] == [p.text for p in PASSAGES[:2]]
    [out] = r.read_many(["Who won?"], [PASSAGES[:2]])
    assert len(out.attention) == 2 and sum(out.attention) == pytest.approx(1.0, abs=1e-4)
    assert isinstance(out.answer, str)
    assert isinstance(load_reader(str(tiny_t5(tmp_path / "t5"))), FiDReader)


def test_generation_never_repeats_a_token_more_than_three_times(tmp_path):
    """A decoder stuck on one token (here forced by its output layer) is cut off at three in
    a row: the next best token follows instead."""
    r = FiDReader.load(str(tiny_t5(tmp_path)), max_new_tokens=12, abstain_threshold=None)
    stuck = 7

    def favour(module, inputs, logits):  # the stuck token first, the end token last
        logits[..., stuck] += 100.0
        logits[..., r.eos_id] -= 100.0
        return logits

    r.model.lm_head.register_forward_hook(favour)
    out = r.model.generate(input_ids=torch.tensor([[5, 6, 1]]), max_new_tokens=8)
    assert (out[0, 1:] == stuck).all()  # unguarded: the same token over and over
    generate, made = r.model.generate, []
    r.model.generate = lambda **kw: made.append(generate(**kw)) or made[-1]
    r._generate(["Who won?"], [PASSAGES[:1]], grounded=False)
    ids = made[0][0, 1:].tolist()
    runs = [len(list(g)) for _, g in __import__("itertools").groupby(ids)]
    assert ids.count(stuck) >= 3 and max(runs) <= 3
