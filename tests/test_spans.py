"""The span head's side of the reader: targets, shared normalisation, MML, decoding."""

import torch

from knowledge.types import Hit
from rag.readers import spans as sp
from tiny_models import minilm_tokenizer

TEMPLATE = "question: {question} title: {title} context: {context}"


def hit(i, text, title="t"):
    return Hit(chunk_id=i, doc_id=f"d{i}", source=f"d{i}.txt", title=title, text=text,
               start=100 * i, end=100 * i + len(text), page=None, heading="", score=1.0)


PASSAGES = [hit(0, "The Denver Broncos beat the Carolina Panthers 24-10."),
            hit(1, "Carolina Panthers fans were sad; the Denver Broncos were happy.")]


def encoded(tok, passages=PASSAGES, question="Who won?"):
    return sp.encode_inputs(tok, TEMPLATE, [question], [passages], 64)


def test_context_tokens_map_to_exact_characters():
    tok = minilm_tokenizer()
    enc = encoded(tok)
    for j, h in enumerate(PASSAGES):
        ctx = enc["context"][j].nonzero()[:, 0].tolist()
        words = [h.text[int(enc["char"][j, i, 0]):int(enc["char"][j, i, 1])] for i in ctx]
        assert "".join(words) == h.text.replace(" ", "")  # every context token, in order
        assert not enc["context"][j, 0]  # [CLS] is not context; the question is not either
        first = int(enc["char"][j, ctx[0], 0])
        assert first == 0


def test_every_occurrence_of_every_answer_is_a_target():
    tok = minilm_tokenizer()
    enc = encoded(tok)
    found = [sp.answer_positions(h.text, ["Denver Broncos", "carolina panthers"],
                                 enc["char"][j], enc["context"][j], 30)
             for j, h in enumerate(PASSAGES)]
    assert len(found[0]) == 2 and len(found[1]) == 2  # both answers, both passages, any case
    for j, spans in enumerate(found):
        for s, e in spans:
            text = PASSAGES[j].text[int(enc["char"][j, s, 0]):int(enc["char"][j, e, 1])]
            assert text.lower() in ("denver broncos", "carolina panthers")
    # on word boundaries only, and capped in length
    char, context = _row(tok, "in 1990 and 19")
    [(s, e)] = sp.answer_positions("in 1990 and 19", ["19"], char, context, 30)
    assert (int(char[s, 0]), int(char[e, 1])) == (12, 14)  # not the "19" inside 1990
    assert sp.answer_positions(PASSAGES[0].text, ["Denver Broncos beat"],
                               enc["char"][0], enc["context"][0], 2) == []


def _row(tok, text):
    enc = sp.encode_inputs(tok, TEMPLATE, ["q"], [[hit(0, text)]], 64)
    return enc["char"][0], enc["context"][0]


def test_truncated_answers_are_not_targets():
    tok = minilm_tokenizer()
    long = "word " * 80 + "Denver Broncos"
    enc = sp.encode_inputs(tok, TEMPLATE, ["q"], [[hit(0, long)]], 32)
    assert sp.answer_positions(long, ["Denver Broncos"], enc["char"][0], enc["context"][0], 30) == []


def test_shared_normalisation_a_distractor_cannot_raise_the_gold_span():
    torch.manual_seed(0)
    length = 8
    start, end = torch.randn(3, length), torch.randn(3, length)
    mask = torch.ones(3, length, dtype=torch.bool)
    one = sp.log_probs(start[:1], end[:1], mask[:1], 1)
    three = sp.log_probs(start, end, mask, 3)
    for _ in range(5):  # whatever the distractors' scores
        lp1 = one[0][0, 2] + one[1][0, 4]
        lp3 = three[0][0, 2] + three[1][0, 4]
        assert lp3 <= lp1 + 1e-6
        start[1:] = torch.randn(2, length) * 5
        three = sp.log_probs(start, end, mask, 3)
    # one softmax over all passages: probabilities sum to one per question, not per passage
    assert torch.allclose(three[0].exp().sum(-1), torch.ones(1))


def test_mml_marginalises_over_repeated_answers():
    start = torch.zeros(1, 6)
    end = torch.zeros(1, 6)
    lp = sp.log_probs(start, end, torch.ones(1, 6, dtype=torch.bool), 1)
    single = sp.mml_loss(*lp, [[(1, 2)]])
    double = sp.mml_loss(*lp, [[(1, 2), (3, 4)]])
    assert torch.isclose(single - double, torch.log(torch.tensor(2.0)))  # twice the mass
    assert sp.mml_loss(*lp, [[]]) == 0  # no target: no loss (answer cut off)


def test_decoding_never_crosses_passages_and_caps_length():
    length, n_p = 6, 2
    start = torch.full((1, n_p * length), -20.0)
    end = torch.full((1, n_p * length), -20.0)
    start[0, 4] = 5.0  # best start near the end of passage 0
    end[0, length + 1] = 5.0  # best end early in passage 1: the pair would cross
    end[0, 5] = 1.0
    context = torch.ones(n_p, length, dtype=torch.bool)
    context[:, 0] = False
    char = torch.arange(length).repeat(n_p, 1)[..., None].repeat(1, 1, 2)
    char[..., 1] += 1
    [cands] = sp.decode_spans(start, end, context, char, n_p, length, max_len=3, top=3)
    best = cands[0]
    assert (best.passage, best.start_tok, best.end_tok) == (0, 4, 5)
    assert (best.start, best.end) == (4, 6)  # characters of the passage
    assert all(c.end_tok - c.start_tok < 3 and c.end_tok >= c.start_tok for c in cands)
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)


def test_null_is_the_cls_mass():
    length, n_p = 4, 2
    start = torch.full((n_p, length), -30.0)
    end = torch.full((n_p, length), -30.0)
    start[0, 0] = end[0, 0] = 10.0
    mask = torch.ones(n_p, length, dtype=torch.bool)
    slp, elp = sp.log_probs(start, end, mask, n_p)
    assert sp.null_log_prob(slp, elp, n_p, length).exp() > 0.99
    assert sp.no_answer_positions(n_p, length, [True, False]) == [(0, 0)]
