import pytest

from rag.evaluation.metrics import (answer_in_text, exact_match, f1, first_gold_rank, mean_reciprocal_rank,
                         normalize_answer, question_type, recall_at)


@pytest.mark.parametrize("raw,norm", [
    ("The Denver Broncos", "denver broncos"),
    ("  a  cat,  an apple; THE end. ", "cat apple end"),
    ("Saint-Denis!", "saintdenis"),
    ("theory of the atom", "theory of atom"),
    ("Anthem", "anthem"),  # 'an' only as a whole word
    ("1,000", "1000"),
])
def test_squad_normalisation(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_takes_the_best_gold():
    assert exact_match("the Broncos", ["Denver Broncos", "Broncos"]) == 1.0
    assert exact_match("Broncos.", ["Denver Broncos"]) == 0.0


def test_f1_hand_computed():
    # pred tokens: denver broncos won (3); gold: denver broncos (2); common 2
    # precision 2/3, recall 1 -> f1 = 0.8
    assert f1("Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    # pred: carolina panthers; gold: broncos -> 0; second gold 'panthers' -> p 1/2 r 1 -> 2/3
    assert f1("Carolina Panthers", ["Broncos", "Panthers"]) == pytest.approx(2 / 3)
    assert f1("", ["x"]) == 0.0
    assert f1("the", ["a"]) == 1.0  # both normalise to empty


def test_answer_in_text_respects_token_boundaries():
    assert answer_in_text(["Denver Broncos"], "The Denver Broncos won.")
    assert not answer_in_text(["Den"], "The Denver Broncos won.")
    assert not answer_in_text(["the"], "the end")  # an answer that normalises to nothing
    # a manual's typographic quotes are punctuation too
    assert answer_in_text(["export DH_VERBOSE = 1"], "Setting “export DH_VERBOSE = 1” outputs")
    assert not answer_in_text(["export DH_VERBOSE"], "Setting “exportDH_VERBOSE = 1”")


def test_ranks_recall_and_mrr():
    assert first_gold_rank(["a", "b", "c"], ["c", "b"]) == 2
    assert first_gold_rank(["a"], ["z"]) is None
    ranks = [1, 3, None, 10]
    assert recall_at(ranks, 1) == 0.25 and recall_at(ranks, 5) == 0.5 and recall_at(ranks, 10) == 0.75
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 3 + 0 + 0.1) / 4)


def test_question_type():
    assert question_type("Who won Super Bowl 50?") == "who"
    assert question_type("In what year did Tesla die?") == "what"
    assert question_type("Name the capital.") == "other"
