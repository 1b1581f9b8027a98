"""`rag train` end to end: questions + knowledge bases -> mined examples -> a trained reader
directory (weights, config with input format and abstention threshold, tokenizer, training
card, curves) that `rag ask --reader DIR` and `rag eval` load.

Example::

    train_reader([("qa.jsonl", "kb")], Path("reader"), init="minilm", k=5)
"""
from __future__ import annotations

import json
import random
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from knowledge.errors import UsageError
from knowledge.kb import KnowledgeBase

from ..evaluation.qa import DEV_FRACTION, load_qaset, sample, split_dev
from ..readers.fid import FiDReader, ReaderConfig
from ..retrieval import Retriever
from .loop import (CHECKPOINT, TrainSettings, as_retrieved, cannot_answer, mine,
                    mine_unanswerable, score_predictions, train)

MINILM = "all-MiniLM-L6-v2"
CONFIDENCE_DECLINES = 0.04  # share of answerable dev questions abstention may decline
SIMILARITY_DECLINES = 0.01  # the similarity guard's share
# the abstention rule's share of every register's answerable dev questions: 4 % kept the
# test splits' answerable declines at most 3.3 % on all eight registers, as 3 % did, and
# declines 2-8 points more of the questions to decline (eval/RESULTS.md, issue 27; a single
# threshold's 4 % was 6-8 % of test in an early round)
RULE_DECLINES = 0.04


def init_model(init: str, decoder_layers: int, frozen_layers: int, copy_head: bool,
               span_head: bool = True, lora: int | None = None):
    """(model, tokenizer, base name or None): the MiniLM warm start or any HF seq2seq."""
    from knowledge.embedding import resolve_model

    from ..readers.fid import load_tokenizer

    if init == "minilm":
        from ..readers.copyfid import build_minilm_fid

        base_dir = resolve_model(MINILM)
        model = build_minilm_fid(base_dir, decoder_layers, frozen_layers, copy_head, span_head,
                                 lora)
        return model, load_tokenizer(base_dir, MINILM), MINILM
    reader = FiDReader.load(init, precision="fp32")  # trained in fp32 (bf16 autocast)
    # a reader trained here over a shared base keeps that base frozen and shared
    shared = reader.config.from_base or {}
    reader.model.set_attn_implementation("sdpa")  # (loaded for attribution; trains faster)
    for name, p in reader.model.named_parameters():
        p.requires_grad = name not in shared
    return reader.model, reader.tokenizer, reader.config.base_model if shared else None


@contextmanager
def opened(data: list[tuple[str, str]]):
    """The knowledge bases of (QA set, knowledge base) pairs, open; those given as paths are
    closed afterwards, those given open are left open."""
    with ExitStack() as stack:
        yield [kb if isinstance(kb, KnowledgeBase) else stack.enter_context(KnowledgeBase.open(kb))
               for _, kb in data]


def mine_sets(data: list[tuple[str, str]], k: int, *, limit: int | None,
              dev_fraction: float, dev_limit: int, retrieval: str, seed: int,
              with_train: bool = True, unanswerable_every: int = 0,
              log=lambda m: print(m, file=sys.stderr)):
    """Per (QA set, knowledge base) pair, from its train split: mined training examples (and,
    with ``unanswerable_every`` n, every n-th training question's unanswerable version, for
    training a no-answer option), the held-out dev examples (the gold passage added where
    retrieval missed it), the dev questions' unanswerable versions, the dev questions with
    their passages as retrieved, and a data record."""
    train_ex, dev_ex, unanswerable, asked, sources = [], [], [], [], []
    with opened(data) as kbs:
        for (qaset, _), kb in zip(data, kbs):
            fit, dev = dev_questions(qaset, dev_fraction, dev_limit, seed)
            if limit:
                fit = random.Random(seed).sample(fit, min(limit, len(fit)))
            r = Retriever(kb, retrieval)
            log(f"{qaset}: mining top-{k} passages for {len(fit) if with_train else 0} + "
                f"{len(dev)} dev questions")
            if with_train:
                train_ex += mine(fit, r, k, log=log)
                if unanswerable_every:
                    extra = mine_unanswerable(fit[::unanswerable_every], r, k)
                    log(f"mined {len(extra)} unanswerable training examples")
                    train_ex += extra
            dev_ex += mine(dev, r, k, log=log)
            unanswerable += mine_unanswerable(dev, r, k)
            asked += as_retrieved(dev, r, k)
            sources.append({"qaset": str(qaset), "split": "train", "kb": str(kb.store.path),
                            "kb_chunks": kb.manifest["counts"]["chunks"], "train": len(fit),
                            "dev": len(dev)})
    return train_ex, dev_ex, unanswerable, asked, sources


def dev_questions(qaset: str, dev_fraction: float, dev_limit: int, seed: int,
                  answerable: bool = True):
    """(train questions, a seeded sample of ``dev_limit`` dev ones): a QA set's own dev rows
    where it has them (and its train rows, if any), else the held-out documents of its train
    split (those of `rag eval --split dev`). ``answerable``: only questions with answers."""
    every = load_qaset(qaset, "all")
    if any(q.split == "dev" for q in every):
        fit, dev = [q for q in every if q.split == "train"], \
            [q for q in every if q.split == "dev"]
    else:
        fit, dev = split_dev(load_qaset(qaset, "train"), dev_fraction, seed=0)
    if answerable:
        dev = [q for q in dev if q.answers]
    return fit, random.Random(seed).sample(dev, min(dev_limit, len(dev)))


@dataclass(frozen=True)
class Case:
    """A dev question asked one way, as `rag ask` would see it: which QA set, which case
    ("answerable", "missing_document", "off_topic", "absent"), the question, the passages
    read, the best dense similarity, and the similarity anchor of the knowledge base it was
    asked of (knowledge/profile.py)."""

    group: str
    case: str
    question: object
    passages: list
    similarity: float
    anchor: float | None
    kb: str = ""  # the knowledge base it was asked of
    technical: float | None = None  # that knowledge base's technical share (profile.py)


def abstention_cases(data: list[tuple[str, str]], k: int, *, dev_fraction: float,
                     dev_limit: int, seed: int, split: str = "dev", retrieval: str = "hybrid",
                     depth: int = 100) -> dict:
    """Each held-out question asked the ways `rag ask` could meet it (``Case``):
    "answerable" (its own knowledge base, top-k as retrieved), "missing_document" (the same
    without its gold documents and any chunk holding an answer: the best-ranked k left of
    the top ``depth``, and the best dense similarity left in the dense top ``depth``),
    "off_topic" (another knowledge base: each question one other, in turn) and, for a QA set
    with questions nothing answers, "absent" (those, on their own knowledge base).
    ``embedder``: the weights hash the knowledge bases were built with (None, with a
    ``reason``, when they differ: then one similarity cannot serve them all).
    ``split="test"`` samples the test split, for reporting; ``split="fit"`` the train
    questions that are not dev ones (for training a signal, eval/verifier_probe.py)."""
    rows: list[Case] = []
    with opened(data) as kbs:
        made_with = {kb.manifest["embedder"]["weights_sha256"] for kb in kbs}
        if len(made_with) != 1:
            return {"rows": rows, "embedder": None,
                    "reason": "the knowledge bases were built with different embedders"}
        anchors = [kb.similarity_anchor() for kb in kbs]
        shares = [kb.technical_share() for kb in kbs]
        for at, ((qaset, _), kb) in enumerate(zip(data, kbs)):
            if split in ("dev", "fit"):  # fit: the train questions that are not dev ones
                fit, dev = dev_questions(qaset, dev_fraction, dev_limit, seed, answerable=False)
                questions = dev if split == "dev" else sample(fit, dev_limit, seed)
            else:
                questions = sample(load_qaset(qaset, split), dev_limit, seed)
            if not questions:
                continue
            texts = [q.question for q in questions]
            name, here = str(qaset), str(kb.store.path)
            retriever = Retriever(kb, retrieval)
            found, deep = retriever.search_many(texts, k), retriever.search_many(texts, depth)
            vecs = kb.embedder.encode_queries(texts)
            for q, hits, deeper, pairs in zip(questions, found.hits, deep.hits,
                                              kb.dense_ids(vecs, depth)):
                if not pairs:
                    continue
                if not q.answers:  # nothing in the knowledge base answers it
                    rows.append(Case(name, "absent", q, hits, pairs[0][0], anchors[at], here,
                                     shares[at]))
                    continue
                rows.append(Case(name, "answerable", q, hits, pairs[0][0], anchors[at], here,
                                 shares[at]))
                fetched = {h.chunk_id: h for h in kb.fetch(pairs)}
                left = [s for s, cid in pairs if cid in fetched and cannot_answer(q, fetched[cid])]
                if left:  # (what is left to read may be empty only in a tiny knowledge base)
                    kept = [h for h in deeper if cannot_answer(q, h)][:k]
                    rows.append(Case(name, "missing_document", q, kept, left[0], anchors[at],
                                     here, shares[at]))
            others = [j for j in range(len(kbs)) if kbs[j].store.path.resolve()
                      != kb.store.path.resolve()]
            for j in others:  # each question asked of one other knowledge base, in turn
                mine = [i for i in range(len(questions))
                        if others[(i + at) % len(others)] == j]
                if not mine:
                    continue
                off = Retriever(kbs[j], retrieval).search_many([texts[i] for i in mine], k)
                rows += [Case(name, "off_topic", questions[i], hits, best[0][0], anchors[j],
                              str(kbs[j].store.path), shares[j])
                         for i, hits, best in zip(mine, off.hits,
                                                  kbs[j].dense_ids(vecs[mine], 1))
                         if hits and best]
    return {"rows": rows, "embedder": made_with.pop()}


def train_reader(data: list[tuple[str, str]], out: Path, *, init: str = "minilm", k: int = 5,
                 decoder_layers: int = 3, frozen_layers: int = 4, copy_head: bool = True,
                 span_head: bool = True, unanswerable_every: int = 8, lora: int | None = None,
                 limit: int | None = None, dev_fraction: float = DEV_FRACTION,
                 dev_limit: int = 300, retrieval: str = "hybrid", resume: bool = False,
                 settings: dict | None = None, log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Mine passages for each (QA set, knowledge base) pair, train, calibrate, save.

    Under torchrun (``rag train --nproc N``) every process mines the same examples and
    trains on its share of each batch; rank 0 alone saves and calibrates."""
    from .distributed import World

    s = TrainSettings(out=out, **(settings or {}))
    world = World.from_env(s.device)
    s.device = world.device(s.device)
    if not world.main:
        log = lambda m: None  # noqa: E731
    import torch

    torch.manual_seed(s.seed)  # the new parameters' initialisation is part of the run
    model, tokenizer, base = init_model(init, decoder_layers, frozen_layers, copy_head,
                                        span_head, lora)
    model.to(s.device)
    spans = bool(getattr(model.config, "span_head", False))
    train_ex, dev_ex, unanswerable, asked, sources = mine_sets(
        data, k, limit=limit, dev_fraction=dev_fraction, dev_limit=dev_limit,
        retrieval=retrieval, seed=s.seed, unanswerable_every=unanswerable_every if spans else 0,
        log=log)
    config = ReaderConfig(input_format=s.input_format, max_passage_tokens=s.max_passage_tokens,
                          k=k, base_model=base,
                          answer_mode="extractive" if spans else "generative")

    def evaluate_fn(m, dev):
        preds = predict(m, tokenizer, config, dev)
        return score_predictions([p for p, _ in preds], dev)

    def save_fn(m, directory: Path):
        save_reader(m, tokenizer, config, directory, base)

    card = train(model, tokenizer, train_ex, dev_ex, s, evaluate_fn, save_fn, resume=resume,
                 log=log, world=world)
    world.close()
    if not world.main:
        return card
    card.update(data=sources, init=init, k=k, decoder_layers=decoder_layers,
                frozen_layers=frozen_layers, copy_head=copy_head, span_head=spans,
                unanswerable_every=unanswerable_every, lora=lora,
                examples={"train": len(train_ex), "dev": len(dev_ex)})
    cases = abstention_cases(data, k, dev_fraction=dev_fraction, dev_limit=dev_limit,
                             seed=s.seed, retrieval=retrieval)
    return calibrate(out, dev_ex, asked, unanswerable, cases, card, s.device)


def recalibrate(data: list[tuple[str, str]], out: Path, *,
                dev_fraction: float = DEV_FRACTION, dev_limit: int = 300,
                retrieval: str = "hybrid", seed: int = 0, device: str = "cpu",
                log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Choose the abstention threshold of the trained reader in ``out`` again, on the same
    dev questions its training held out (`rag train ... --calibrate-only`)."""
    card_path = out / "training_card.json"
    if not card_path.exists():
        raise UsageError(f"--calibrate-only: no trained reader in {out} (training_card.json "
                         "missing)")
    card = json.loads(card_path.read_text())
    k = ReaderConfig.load(out).k
    _, dev_ex, unanswerable, asked, _ = mine_sets(
        data, k, limit=None, dev_fraction=dev_fraction, dev_limit=dev_limit,
        retrieval=retrieval, seed=seed, with_train=False, log=log)
    cases = abstention_cases(data, k, dev_fraction=dev_fraction, dev_limit=dev_limit,
                             seed=seed, retrieval=retrieval)
    return calibrate(out, dev_ex, asked, unanswerable, cases, card, device)


def calibrate(out: Path, dev_ex, asked, unanswerable, cases: dict, card: dict,
              device: str) -> dict:
    """Set the saved reader's abstention and write the final config and training card: a
    threshold on its confidence (the dev questions with their passages as retrieved,
    ``asked``, against their unanswerable versions), a floor on the question's similarity to
    the knowledge base, and, for a span reader, the rule over both and lexical coverage
    (rag/abstention.py) fitted on ``cases`` (``abstention_cases``), which replaces the two
    where it applies. ``dev_ex`` (the gold passage added where retrieval missed it) gives
    the card's dev score."""
    if not dev_ex:
        raise UsageError("no dev examples to calibrate abstention on: the QA sets' train "
                         "splits need more documents")
    reader = FiDReader.load(str(out))
    reader.model.to(device)
    reader.config = replace(reader.config, abstain_threshold=None)
    preds = predict(reader.model, reader.tokenizer, reader.config, dev_ex)
    answered = predict(reader.model, reader.tokenizer, reader.config, asked)
    negatives = predict(reader.model, reader.tokenizer, reader.config, unanswerable)
    # calibrated on what `rag ask` reads: with the gold passage forced in, answerable
    # questions looked surer than on test, and 9 % of answerable test questions were declined
    threshold, stats = calibrate_abstention(
        [c for _, c in answered], [c for _, c in negatives], max_declined=CONFIDENCE_DECLINES,
        rule=f"highest reader confidence that declines at most {CONFIDENCE_DECLINES:.0%} of "
             "answerable dev questions (passages as retrieved), vs the same questions with "
             "passages that lack the answer")
    stats["dtype"] = str(reader.model.dtype).replace("torch.", "")
    # the similarity floor is only a guard against clearly off-topic questions: a cosine
    # chosen to separate Wikipedia questions declined half the answerable news questions, so
    # it is set where it declines almost no answerable dev question; reading decides the rest
    similarities: dict[str, list] = {"answerable": []}
    for row in cases["rows"]:
        similarities.setdefault(row.case, []).append(row.similarity)
    floor, floor_stats = calibrate_abstention(
        similarities["answerable"],
        [x for case, sims in similarities.items() if case != "answerable" for x in sims],
        min_gain=0.1, max_declined=SIMILARITY_DECLINES,
        rule=f"highest best dense similarity that declines at most {SIMILARITY_DECLINES:.0%} "
             "of dev questions on their own knowledge base, vs on it without their gold "
             "documents and on the other ones")
    if "reason" in cases:
        floor_stats["reason"] = cases["reason"]
    rule, rule_stats = fit_abstain_rule(reader, cases) if reader.has_span_head else \
        (None, {"reason": "a generative reader: its confidence is not a span's"})
    replace(reader.config, abstain_threshold=threshold, abstain_similarity=floor,
            similarity_embedder=cases["embedder"] if floor is not None or rule else None,
            abstain_rule=rule.to_dict() if rule else None).save(out)
    card.update(dev=score_predictions([p for p, _ in preds], dev_ex), calibrated_on={
                    "dev_questions": len(asked), "abstention_cases": len(cases["rows"])},
                abstain_threshold=threshold, abstention=stats, abstain_similarity=floor,
                abstention_similarity=floor_stats,
                abstain_rule=rule.to_dict() if rule else None, abstention_rule=rule_stats)
    (out / "training_card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card


def fit_abstain_rule(reader, cases: dict, batch: int = 16):
    """(rule, stats): the abstention rule fitted on the reader's extractive outputs
    (thresholds off) for ``cases``' rows that have passages to read, with each question's
    similarity taken from its knowledge base's anchor, then its confidence floor on the
    knowledge bases that read as technical documentation (``fit_floor``, the reader's own
    ``form_gates``); outputs without any span (declined whatever the rule says) are left
    out."""
    from ..abstention import coverage, features, fit_floor, fit_rule
    from ..pipeline import reads_technical, technical_at

    if not cases.get("embedder"):
        return None, {"reason": cases.get("reason", "no dev examples")}
    rows = [r for r in cases["rows"] if r.passages and r.anchor is not None]
    outs = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        outs += reader.read_many([r.question.question for r in chunk],
                                 [list(r.passages) for r in chunk], mode="extractive")
    read = [(r, o, features(o.confidence, r.similarity - r.anchor,
                            coverage(r.question.question, r.passages)))
            for r, o in zip(rows, outs) if not o.abstained]
    rule, stats = fit_rule([(r.group, r.case, f) for r, _, f in read], RULE_DECLINES,
                           relative=True)
    at = technical_at(reader.config)
    if rule is None or at is None:
        return rule, stats
    technical = [reads_technical(r.technical, reader.config) for r, _, _ in read]
    rule = replace(rule, floor=fit_floor(
        [(r.group, r.case, o.confidence, tech, rule.declines(o.confidence, r.similarity, f[2],
                                                             r.anchor))
         for (r, o, f), tech in zip(read, technical)], RULE_DECLINES))
    declined: dict[str, list[int]] = {}
    for (r, o, f), tech in zip(read, technical):  # the shares again, the floor included
        cell = declined.setdefault(f"{r.group} {r.case}", [0, 0])
        cell[0] += rule.declines(o.confidence, r.similarity, f[2], r.anchor, tech)
        cell[1] += 1
    stats["declined % of dev"] = {k: {"n": n, "declined": round(100 * d / n, 1)}
                                  for k, (d, n) in sorted(declined.items())}
    stats["floor"] = {"technical_at": at, "technical groups": sorted(  # (those bounding it)
        {r.group for (r, _, _), tech in zip(read, technical) if tech and r.case == "answerable"})}
    return rule, stats


def predict(model, tokenizer, config: ReaderConfig, dev, batch: int = 16):
    """(answer, confidence) per example with the FiD reading path used by `rag ask`."""
    impl = model.config._attn_implementation
    reader = FiDReader(model, tokenizer, config, "training", None)  # switches to eager
    out = []
    for i in range(0, len(dev), batch):
        chunk = dev[i:i + batch]
        for o in reader.read_many([e.question for e in chunk], [list(e.passages) for e in chunk]):
            out.append((o.answer, o.confidence))
    model.set_attn_implementation(impl)  # training is faster without attention weights
    return out


def save_reader(model, tokenizer, config: ReaderConfig, out: Path, base: str | None) -> None:
    """A reader directory: weights (only trained ones over a base), configs, tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    if base:
        from ..readers.copyfid import save_trained

        info = save_trained(model, out, base)
        config = replace(config, base_model=info["base_model"], from_base=info["from_base"])
    else:
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    previous = ReaderConfig.load(out) if (out / "rag_reader.json").exists() else None
    if previous is not None:  # (calibrated after training; a resumed run keeps them)
        config = replace(config, abstain_threshold=previous.abstain_threshold,
                         abstain_similarity=previous.abstain_similarity,
                         similarity_embedder=previous.similarity_embedder,
                         abstain_rule=previous.abstain_rule, form_gates=previous.form_gates)
    config.save(out)


def calibrate_abstention(answerable: list[float], unanswerable: list[float],
                         min_gain: float = 0.2, max_declined: float | None = None,
                         rule: str = "max Youden J, answerable vs unanswerable dev passages"
                         ) -> tuple[float | None, dict]:
    """The threshold on a score (reader confidence, similarity) that best tells questions
    that can be answered from questions that cannot. Without ``max_declined``: Youden's J
    (share of the first answered minus share of the second answered) maximised. With it:
    the highest threshold that declines at most that share of the answerable ones (so the
    rate a user sees is bounded), which then declines as many unanswerable ones as it can.
    None when the chosen threshold does not gain ``min_gain``: then the score does not say
    whether the evidence is there, and it is not used to abstain."""
    if not answerable or not unanswerable:
        return None, {"reason": "no dev examples"}
    best = (0.0, None)
    for t in sorted(set(answerable) | set(unanswerable)):
        kept = sum(c >= t for c in answerable) / len(answerable)
        gain = kept - sum(c >= t for c in unanswerable) / len(unanswerable)
        if max_declined is not None:
            if 1 - kept <= max_declined + 1e-12:
                best = (gain, t)  # thresholds ascend: the last one allowed declines most
            continue
        if gain > best[0] + 1e-12:
            best = (gain, t)
    gain, t = best
    threshold = round(t, 4) if t is not None and gain >= min_gain else None
    cut = threshold if threshold is not None else -1.0
    stats = {"rule": rule,
             "best_gain": round(gain, 4), "min_gain": min_gain,
             "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
             "answered_answerable": round(100 * sum(c >= cut for c in answerable)
                                          / len(answerable), 1),
             "answered_unanswerable": round(100 * sum(c >= cut for c in unanswerable)
                                            / len(unanswerable), 1)}
    if max_declined is not None:
        stats["max_declined"] = max_declined
    return threshold, stats


def check_out_dir(out: Path, resume: bool) -> None:
    if resume:
        if not (out / CHECKPOINT / "meta.json").exists():
            raise UsageError(f"--resume: no checkpoint in {out}")
    elif out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty; choose a new directory or pass --resume")

