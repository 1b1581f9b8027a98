"""The abstention rule (rag/abstention.py): fitting and the decline budget."""
import random

import pytest

from rag.abstention import (AbstainRule, confidence_logit, coverage, features, fit_floor,
                            fit_rule)


def synthetic(seed=0):
    rng = random.Random(seed)
    cases = []
    for group, n in (("big", 400), ("small", 60)):
        for _ in range(n):
            cases.append((group, "answerable", [rng.gauss(5, 4), rng.gauss(0.6, 0.1),
                                                rng.gauss(0.7, 0.15)]))
            cases.append((group, "off_topic", [rng.gauss(-3, 4), rng.gauss(0.3, 0.1),
                                               rng.gauss(0.3, 0.15)]))
    return cases


@pytest.mark.parametrize("budget", [0.02, 0.05, 0.2])
def test_fit_declines_at_most_the_budget_of_every_groups_answerable_rows(budget):
    cases = synthetic()
    rule, stats = fit_rule(cases, budget)
    assert rule.confidence > 0 and rule.similarity > 0 and rule.coverage > 0

    def declined(group, case):
        mine = [f for g, c, f in cases if (g, c) == (group, case)]
        return sum(rule.bias + rule.confidence * f[0] + rule.similarity * f[1]
                   + rule.coverage * f[2] < 0 for f in mine) / len(mine)

    big, small = declined("big", "answerable"), declined("small", "answerable")
    assert big <= budget + 1e-9 and small <= budget + 1e-9  # each group within its budget
    # the cut goes as far as the tighter group allows
    assert max(big - budget + 1 / 400, small - budget + 1 / 60) > 0
    assert declined("big", "off_topic") > 0.8 and declined("small", "off_topic") > 0.8
    assert stats["declined % of dev"]["small answerable"]["n"] == 60


def test_rule_round_trips_and_clips_the_logit():
    rule = AbstainRule(bias=-1.0, confidence=0.5, similarity=2.0, coverage=1.0)
    assert AbstainRule.from_dict(rule.to_dict()) == rule and AbstainRule.from_dict(None) is None
    assert confidence_logit(1.0) == 15.0 and confidence_logit(0.0) == -15.0
    assert rule.score(0.5, 0.25, 0.5) == pytest.approx(0.0)
    assert not rule.declines(0.5, 0.25, 0.5) and rule.declines(0.4, 0.25, 0.5)
    assert features(0.5, 0.3, 0.2) == [0.0, 0.3, 0.2]


def test_coverage_is_the_best_passages_share_of_question_terms():
    class P:
        def __init__(self, text):
            self.text = text

    q = "What is the capital of Peru?"  # terms: capital, peru
    assert coverage(q, [P("Peru is a country."), P("The capital of Peru is Lima.")]) == 1.0
    assert coverage(q, [P("Peru is a country.")]) == 0.5
    assert coverage(q, []) == 0.0 and coverage("the of", [P("the of")]) == 0.0


def test_no_rule_without_both_kinds():
    rule, stats = fit_rule([("a", "answerable", [1.0, 0.5, 0.5])], 0.05)
    assert rule is None and "both kinds" in stats["reason"]


def test_fit_can_hold_the_budget_on_the_mean_of_the_groups():
    cases = synthetic(1)
    rule, _ = fit_rule(cases, 0.05, budget_by="mean")

    def declined(group):
        mine = [f for g, c, f in cases if (g, c) == (group, "answerable")]
        return sum(rule.bias + rule.confidence * f[0] + rule.similarity * f[1]
                   + rule.coverage * f[2] < 0 for f in mine) / len(mine)

    mean = (declined("big") + declined("small")) / 2
    assert 0.05 - 1 / 60 < mean <= 0.05 + 1e-9


def test_floor_holds_the_budget_of_every_technical_groups_answerable_rows():
    """The floor goes as high as the budget allows on the technical groups, counting what the
    rule declines already, the tightest group deciding; prose groups and unanswerable rows do
    not bound it."""
    rows = [("manual", "answerable", c, True, False) for c in (0.001, 0.02, 0.3, 0.5, 0.6,
                                                               0.7, 0.8, 0.9, 0.95, 0.99)]
    rows += [("manual", "absent", 0.0005, True, False), ("prose", "answerable", 0.0001, False,
                                                         False)]
    assert fit_floor(rows, 0.1) == pytest.approx((0.001 + 0.02) / 2)  # 1 of 10 declined
    assert fit_floor(rows, 0.2) == pytest.approx((0.02 + 0.3) / 2)
    assert fit_floor(rows, 0.0) == 0.001  # declines none of them
    # one declined by the rule already uses up the budget of 1 in 10
    taken = [(g, c, x, t, g == "manual" and x == 0.9) for g, c, x, t, _ in rows]
    assert fit_floor(taken, 0.1) == 0.001
    # a second technical group with a lower answerable confidence bounds it further
    other = [("readme", "answerable", c, True, False) for c in [0.002, 0.004] + [0.5] * 8]
    assert fit_floor(rows + other, 0.1) == pytest.approx((0.002 + 0.004) / 2)
    # a group over its budget by the rule alone allows the floor nothing more
    over = [("faq", "answerable", c, True, c > 0.9) for c in (0.003, 0.95, 0.96, 0.97, 0.5)]
    assert fit_floor(rows + over, 0.2) == 0.003
    assert fit_floor([r for r in rows if r[0] == "prose"], 0.1) is None
    floored = AbstainRule(bias=10.0, confidence=1.0, similarity=0.0, coverage=0.0, floor=0.01)
    assert floored.declines(0.005, 0.5, 0.5, technical=True)
    assert not floored.declines(0.005, 0.5, 0.5)
    assert not floored.declines(0.02, 0.5, 0.5, None, True)
    assert AbstainRule.from_dict(floored.to_dict()) == floored
    assert AbstainRule.from_dict({**floored.to_dict(), "floor": None}).floor is None
