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
from dataclasses import replace
from pathlib import Path

from knowledge.errors import UsageError
from knowledge.kb import KnowledgeBase

from .metrics import f1
from .qa import load_qaset
from .readers.fid import FiDReader, ReaderConfig
from .retrieval import Retriever
from .train import CHECKPOINT, TrainSettings, mine, score_predictions, train

MINILM = "all-MiniLM-L6-v2"


def init_model(init: str, decoder_layers: int, frozen_layers: int, copy_head: bool):
    """(model, tokenizer, base name or None): the MiniLM warm start or any HF seq2seq."""
    from knowledge.embedding import resolve_model

    from .readers.fid import load_tokenizer

    if init == "minilm":
        from .readers.copyfid import build_minilm_fid

        base_dir = resolve_model(MINILM)
        model = build_minilm_fid(base_dir, decoder_layers, frozen_layers, copy_head)
        return model, load_tokenizer(base_dir, MINILM), MINILM
    reader = FiDReader.load(init)
    return reader.model, reader.tokenizer, None


def split_dev(questions, fraction: float, seed: int):
    """Hold out whole gold documents (never the test split) for periodic evaluation."""
    docs = sorted({q.gold_ids[0] if q.gold_ids else q.id for q in questions})
    rng = random.Random(seed)
    held = set(rng.sample(docs, max(1, int(len(docs) * fraction)))) if len(docs) > 1 else set()
    key = lambda q: q.gold_ids[0] if q.gold_ids else q.id  # noqa: E731
    return [q for q in questions if key(q) not in held], [q for q in questions if key(q) in held]


def train_reader(data: list[tuple[str, str]], out: Path, *, init: str = "minilm", k: int = 5,
                 decoder_layers: int = 3, frozen_layers: int = 4, copy_head: bool = True,
                 limit: int | None = None, dev_fraction: float = 0.05, dev_limit: int = 300,
                 retrieval: str = "hybrid", resume: bool = False, settings: dict | None = None,
                 log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Mine passages for each (QA set, knowledge base) pair, train, calibrate, save."""
    s = TrainSettings(out=out, **(settings or {}))
    train_ex, dev_ex, sources = [], [], []
    for qaset, kb_dir in data:
        questions = load_qaset(qaset, "train")
        rng = random.Random(s.seed)
        fit, dev = split_dev(questions, dev_fraction, s.seed)
        if limit:
            fit = rng.sample(fit, min(limit, len(fit)))
        dev = rng.sample(dev, min(dev_limit, len(dev)))
        kb = kb_dir if isinstance(kb_dir, KnowledgeBase) else KnowledgeBase.open(kb_dir)
        with kb:
            r = Retriever(kb, retrieval)
            log(f"{qaset}: mining top-{k} passages for {len(fit)} + {len(dev)} dev questions")
            train_ex += mine(fit, r, k, log=log)
            dev_ex += mine(dev, r, k, log=log)
            sources.append({"qaset": str(qaset), "split": "train", "kb": str(kb.store.path),
                            "kb_chunks": kb.manifest["counts"]["chunks"], "train": len(fit),
                            "dev": len(dev)})
    import torch

    torch.manual_seed(s.seed)  # the new parameters' initialisation is part of the run
    model, tokenizer, base = init_model(init, decoder_layers, frozen_layers, copy_head)
    model.to(s.device)
    config = ReaderConfig(input_format=s.input_format, max_passage_tokens=s.max_passage_tokens,
                          k=k, base_model=base)

    def evaluate_fn(m, dev):
        preds = predict(m, tokenizer, config, dev)
        return score_predictions([p for p, _ in preds], dev)

    def save_fn(m, directory: Path):
        save_reader(m, tokenizer, config, directory, base)

    card = train(model, tokenizer, train_ex, dev_ex, s, evaluate_fn, save_fn, resume=resume,
                 log=log)
    # calibrate abstention on the best model's dev predictions, then write the final config
    best = FiDReader.load(str(out))
    best.model.to(s.device)
    preds = predict(best.model, best.tokenizer, best.config, dev_ex)
    threshold = calibrate_abstention([c for _, c in preds],
                                     [f1(p, list(e.answers)) for (p, _), e in zip(preds, dev_ex)])
    final = replace(best.config, abstain_threshold=threshold)
    final.save(out)
    dev_scores = score_predictions([p for p, _ in preds], dev_ex)
    card.update(data=sources, init=init, k=k, decoder_layers=decoder_layers,
                frozen_layers=frozen_layers, copy_head=copy_head, dev=dev_scores,
                abstain_threshold=threshold, examples={"train": len(train_ex),
                                                       "dev": len(dev_ex)})
    (out / "training_card.json").write_text(json.dumps(card, indent=2, default=str) + "\n")
    return card


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
        from .readers.copyfid import save_trained

        info = save_trained(model, out, base)
        config = replace(config, base_model=info["base_model"], from_base=info["from_base"])
    else:
        model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    previous = ReaderConfig.load(out) if (out / "rag_reader.json").exists() else None
    if previous is not None and previous.abstain_threshold is not None:
        config = replace(config, abstain_threshold=previous.abstain_threshold)
    config.save(out)


def calibrate_abstention(confidences: list[float], f1s: list[float],
                         max_f1_below: float = 0.1) -> float | None:
    """The largest confidence threshold under which answers are nearly all wrong (mean F1 of
    the answers below it at most ``max_f1_below``): abstaining there costs almost nothing."""
    pairs = sorted(zip(confidences, f1s))
    best, total = None, 0.0
    for i, (c, score) in enumerate(pairs, 1):
        total += score
        if total / i <= max_f1_below:
            best = c
    return round(best, 4) if best is not None else None


def check_out_dir(out: Path, resume: bool) -> None:
    if resume:
        if not (out / CHECKPOINT / "meta.json").exists():
            raise UsageError(f"--resume: no checkpoint in {out}")
    elif out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty; choose a new directory or pass --resume")

