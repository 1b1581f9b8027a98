"""Whether to answer or say "not found": one rule over three signals, fitted on dev questions.

A span reader's confidence alone (its best span against its no-answer option) lets through
questions whose passages merely look relevant, and a similarity floor alone either declines
answerable questions or lets off-topic ones through. The rule weighs them together:

    score = bias + w_conf * logit(confidence) + w_sim * similarity + w_cov * coverage

``confidence`` is the reader's (logit clipped to +-15), ``similarity`` the best dense cosine
of the question to the knowledge base, taken from the knowledge base's own similarity anchor
where the rule is ``relative`` (knowledge/profile.py: the same question is less similar to
forum posts than to an encyclopedia, and the anchor moves with it), ``coverage`` the largest
share of the question's terms that one of the read passages holds (a lexical signal: it does
not depend on the embedder). The question is declined when the score is below 0. `rag train`
fits the weights on dev questions of several registers (answerable vs missing-document vs
off-topic vs absent, each QA set weighted equally) and sets the bias so that at most a given
share of each QA set's answerable dev questions is declined.

Over technical documentation (manuals, READMEs: ``Pipeline.technical``) the rule has a
``floor`` besides: a confidence below it is declined whatever the other signals say. There
the answer is a whole sentence, and a sentence the reader finds (next to) no answer in is a
guess that the question's words and a close passage make look sure: on the manuals, every
answer below the floor was wrong. `rag train` sets it as high as the same budget allows
on the technical registers' answerable dev questions (``fit_floor``).

Example::

    rule = AbstainRule(bias=-0.5, confidence=0.09, similarity=3.0, coverage=1.6, relative=True,
                       floor=0.01)
    rule.declines(confidence=0.9, similarity=0.6, coverage=0.7, anchor=0.65)  # False
    rule.declines(0.005, 0.6, 0.7, 0.65, technical=True)                       # True
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .evidence import terms

LOGIT_CLIP = 15.0


def confidence_logit(confidence: float) -> float:
    c = min(max(float(confidence), 1e-12), 1 - 1e-12)
    return max(-LOGIT_CLIP, min(LOGIT_CLIP, math.log(c / (1 - c))))


def coverage(question: str, passages) -> float:
    """The largest share of the question's terms (stopwords dropped) held by one passage."""
    wanted = terms(question)
    if not wanted:
        return 0.0
    return max((len(wanted & terms(p.text)) / len(wanted) for p in passages), default=0.0)


@dataclass(frozen=True)
class AbstainRule:
    bias: float
    confidence: float  # weight of the confidence's logit
    similarity: float
    coverage: float
    relative: bool = False  # similarity taken from the knowledge base's anchor
    floor: float | None = None  # on technical documentation, a confidence below it declines

    def score(self, confidence: float, similarity: float, coverage: float,
              anchor: float | None = None) -> float:
        if self.relative:
            similarity -= anchor if anchor is not None else 0.0
        return (self.bias + self.confidence * confidence_logit(confidence)
                + self.similarity * similarity + self.coverage * coverage)

    def declines(self, confidence: float, similarity: float, coverage: float,
                 anchor: float | None = None, technical: bool = False) -> bool:
        return (technical and self.floor is not None and confidence < self.floor) \
            or self.score(confidence, similarity, coverage, anchor) < 0

    def to_dict(self) -> dict:
        return {k: (v if isinstance(v, bool) or v is None else round(v, 6))
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "AbstainRule | None":
        if not data:
            return None
        floor = data.get("floor")
        return cls(**{k: float(data[k]) for k in ("bias", "confidence", "similarity", "coverage")},
                   relative=bool(data.get("relative", False)),
                   floor=float(floor) if floor is not None else None)


def features(confidence: float, similarity: float, coverage_: float) -> list[float]:
    return [confidence_logit(confidence), float(similarity), float(coverage_)]


def fit_rule(cases: list[tuple[str, str, list[float]]], max_declined: float,
             relative: bool = False, budget_by: str = "every") -> tuple[AbstainRule | None, dict]:
    """Logistic regression of "answerable" on the features of ``cases`` (group, case name,
    features; the case "answerable" is positive, any other negative), each group's answerable
    and unanswerable rows weighted equally (each such cell weighs 1 in all; standardised
    features, an L2 penalty of half the squared weights: a plain C=1 logistic regression);
    then the bias moved to the highest cut that declines at most ``max_declined`` of every
    group's answerable rows (``budget_by="mean"``: of their mean, groups weighted equally).
    ``relative``: the similarity feature was taken from each knowledge base's anchor. None
    when there is no row of one kind."""
    import torch

    rows = [(g, case == "answerable", f) for g, case, f in cases]
    pos = [r for r in rows if r[1]]
    if not pos or len(pos) == len(rows):
        return None, {"reason": "no dev examples of both kinds"}
    count: dict = {}
    for group, label, _ in rows:
        count[(group, label)] = count.get((group, label), 0) + 1
    x = torch.tensor([f for _, _, f in rows], dtype=torch.float64)
    y = torch.tensor([float(label) for _, label, _ in rows], dtype=torch.float64)
    w = torch.tensor([1.0 / count[(g, label)] for g, label, _ in rows], dtype=torch.float64)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    coef = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([coef, b], max_iter=200, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        out = (w * torch.nn.functional.binary_cross_entropy_with_logits(
            z @ coef + b, y, reduction="none")).sum() + 0.5 * (coef ** 2).sum()
        out.backward()
        return out

    opt.step(loss)
    raw = (coef / std).detach()
    scores = (x @ raw).tolist()
    # the cut: per group, the highest that declines at most max_declined of its answerable
    # rows; the rule takes the lowest of them, so no group loses more than its share
    groups = sorted({g for g, label in count if label})
    if budget_by == "mean":
        answerable = sorted((s, 1.0 / count[(g, True)] / len(groups))
                            for s, (g, label, _) in zip(scores, rows) if label)
        cut, declined = answerable[0][0], 0.0
        for (s, share), (nxt, _) in zip(answerable, answerable[1:]):
            if declined + share > max_declined + 1e-12:
                break
            declined += share
            cut = (s + nxt) / 2
    else:
        cuts = []
        for group in groups:
            mine = sorted(s for s, (g, label, _) in zip(scores, rows) if label and g == group)
            allowed = int(max_declined * len(mine) + 1e-9)
            cuts.append(mine[0] - 1e-6 if allowed == 0 else
                        (mine[allowed - 1] + mine[allowed]) / 2 if allowed < len(mine)
                        else mine[-1])
        cut = min(cuts)
    rule = AbstainRule(bias=-cut, confidence=float(raw[0]), similarity=float(raw[1]),
                       coverage=float(raw[2]), relative=relative)
    stats = {"max_declined": max_declined, "declined % of dev": {}}
    for key in sorted({(g, case) for g, case, _ in cases}):
        mine = [s for s, (g, case, _) in zip(scores, cases) if (g, case) == key]
        stats["declined % of dev"][" ".join(key)] = {
            "n": len(mine), "declined": round(100 * sum(s < cut for s in mine) / len(mine), 1)}
    return rule, stats


def fit_floor(cases: list[tuple[str, str, float, bool, bool]],
              max_declined: float) -> float | None:
    """The confidence floor for technical documentation (``AbstainRule.floor``): the highest
    that, with what the rule declines already, declines at most ``max_declined`` of every
    technical group's answerable rows (a group already at its budget allows no more).
    ``cases``: (group, case, confidence, technical, declined by the rule). None when no group
    is technical."""
    groups: dict[str, list[tuple[float, bool]]] = {}
    for group, case, confidence, technical, declined in cases:
        if technical and case == "answerable":
            groups.setdefault(group, []).append((confidence, declined))
    if not groups:
        return None
    floor = 1.0
    for rows in groups.values():
        allowed = max(0, int(max_declined * len(rows) + 1e-9) - sum(d for _, d in rows))
        left = sorted(c for c, d in rows if not d)  # what the floor alone would decline
        if not left:
            continue
        floor = min(floor, left[0] if allowed == 0 else
                    (left[allowed - 1] + left[allowed]) / 2 if allowed < len(left) else 1.0)
    return floor if floor > 0 else None
