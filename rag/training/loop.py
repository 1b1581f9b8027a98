"""Training a FiD reader (`rag train`): passages mined with the project's own retrieval,
then a plain training loop.

The loop, written out: parameters initialised (warm start or checkpoint), forward pass over
(question, passages) -> answer tokens, token NLL loss, backpropagation, AdamW with linear
warmup and decay, gradient clipping and accumulation, bf16 autocast where the CPU has native
bf16, optional gradient checkpointing, periodic evaluation (EM/F1) on held-out questions,
early stopping, checkpoints with everything needed to resume bit for bit.

Example::

    examples = mine(questions, Retriever(kb), k=5)
    train(model, tokenizer, examples, dev, TrainSettings(out=Path("reader")))
"""
from __future__ import annotations

import csv
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from knowledge.errors import UsageError
from knowledge.types import Hit

from ..evaluation.metrics import answer_in_text, exact_match, f1, is_gold
from ..evaluation.qa import Question
from ..readers.fid import ReaderConfig, tokenize_passages
from ..evaluation.gold import gold_passage

if TYPE_CHECKING:
    from .distributed import World

CHECKPOINT = "checkpoint"


@dataclass(frozen=True)
class Example:
    question: str
    answer: str
    answers: tuple[str, ...]
    passages: tuple[Hit, ...]


@dataclass
class TrainSettings:
    out: Path
    epochs: float = 1.0
    batch_size: int = 8
    accumulate: int = 1
    lr: float = 3e-4
    warmup: float = 0.05  # fraction of steps
    weight_decay: float = 0.01
    clip: float = 1.0
    max_passage_tokens: int = 256
    max_answer_tokens: int = 24
    eval_every: int = 200  # optimizer steps
    patience: int = 5  # evaluations without improvement before stopping
    max_minutes: float | None = None
    max_steps: int | None = None  # stop (with a checkpoint) after this many steps in this run
    # continue a trained reader (``--init``) whose checkpoint is gone: its data order and
    # learning-rate schedule go on at this step, with fresh optimizer moments (re-warmed up)
    start_step: int = 0
    seed: int = 0
    bf16: str = "auto"  # auto | on | off
    device: str = "cpu"  # or "cuda" where one is available
    gradient_checkpointing: bool = False
    input_format: str = ReaderConfig().input_format
    progress: bool = True
    extra: dict = field(default_factory=dict)  # recorded in the training card


# -- data -------------------------------------------------------------------------------


def mine(questions: list[Question], retriever, k: int, batch: int = 64,
         log=lambda m: print(m, file=sys.stderr)) -> list[Example]:
    """Top-k passages per question from the project's retrieval; when none holds an answer,
    the best gold passage replaces the last one (so every example can be learned, and the
    rest are hard negatives)."""
    kb = retriever.kb
    examples, added_gold, dropped = [], 0, 0
    for q, hits in _retrieved(questions, retriever, k, batch):
        if not any(answer_in_text(list(q.answers), h.text) for h in hits):
            gold = gold_passage(kb, q)
            if gold is None:
                dropped += 1
                continue
            hits = [h for h in hits if h.chunk_id != gold.chunk_id][:k - 1] + [gold]
            added_gold += 1
        answer = next((a for a in q.answers if any(answer_in_text([a], h.text)
                                                   for h in hits)), q.answers[0])
        examples.append(Example(q.question, answer, tuple(q.answers), tuple(hits)))
    log(f"mined {len(examples)} examples ({added_gold} with the gold passage added, "
        f"{dropped} dropped: no passage holds the answer)")
    return examples


def as_retrieved(questions: list[Question], retriever, k: int) -> list[Example]:
    """Each question with its top-k passages exactly as `rag ask` would read them (none
    added, none removed): what abstention must not decline when the answer is there."""
    return [Example(q.question, q.answers[0] if q.answers else "", tuple(q.answers),
                    tuple(hits)) for q, hits in _retrieved(questions, retriever, k, 64)]


def mine_unanswerable(questions: list[Question], retriever, k: int,
                      batch: int = 64) -> list[Example]:
    """Each question with its best-ranked passages that hold none of its answers and come
    from none of its gold documents: what the reader sees when the knowledge base cannot
    answer (for calibrating abstention)."""
    examples = []
    for q, hits in _retrieved(questions, retriever, 4 * k, batch):
        keep = [h for h in hits if cannot_answer(q, h)][:k]
        if keep:
            examples.append(Example(q.question, "", tuple(q.answers), tuple(keep)))
    return examples


def cannot_answer(q: Question, hit: Hit) -> bool:
    """Whether a passage is no help for ``q``: from none of its gold documents, holding none
    of its answers (as if the knowledge base lacked the answer's document)."""
    return not is_gold(hit.doc_id, q.gold_ids) and not answer_in_text(list(q.answers), hit.text)


def _retrieved(questions: list[Question], retriever, k: int, batch: int):
    """(question, its top-k hits as a list), retrieving ``batch`` questions at a time."""
    for i in range(0, len(questions), batch):
        chunk = questions[i:i + batch]
        for q, hits in zip(chunk, retriever.retrieve_many([q.question for q in chunk], k)):
            yield q, list(hits)


class Batcher:
    """Tokenises examples into FiD tensors: (B*P, L) passages, answers as labels; for a
    model with a span head also the candidate positions and every gold span (an example
    whose answer is "" is unanswerable: its gold is the no-answer option)."""

    def __init__(self, tokenizer, settings: TrainSettings, eos_id: int, spans: bool = False):
        self.tok = tokenizer
        self.s = settings
        self.eos_id = eos_id
        self.spans = spans

    def __call__(self, batch: list[Example]) -> dict:
        from ..readers import spans as sp

        questions, passages = [e.question for e in batch], [list(e.passages) for e in batch]
        if self.spans:
            enc = sp.encode_inputs(self.tok, self.s.input_format, questions, passages,
                                   self.s.max_passage_tokens)
        else:
            enc = tokenize_passages(self.tok, self.s.input_format, questions, passages,
                                    self.s.max_passage_tokens)
        n_p, length = enc["n_p"], enc["input_ids"].shape[1]
        answers = [self.tok(e.answer, add_special_tokens=False)["input_ids"]
                   [:self.s.max_answer_tokens - 1] + [self.eos_id] for e in batch]
        width = max(len(a) for a in answers)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, (a, e) in enumerate(zip(answers, batch)):
            if e.answer:
                labels[i, :len(a)] = torch.tensor(a)
        mask = enc["attention_mask"] * enc["present"].long()[:, None]
        out = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
               "fused_mask": mask.reshape(len(batch), -1), "labels": labels, "n_p": n_p}
        if self.spans:
            out["candidates"] = sp.candidate_mask(enc["context"], enc["present"])
            out["gold"] = [self._gold(e, enc, i, n_p, length) for i, e in enumerate(batch)]
        return out

    def _gold(self, e: Example, enc: dict, row: int, n_p: int, length: int):
        from ..readers import spans as sp

        present = enc["present"][row * n_p:(row + 1) * n_p].tolist()
        if not e.answer:
            return sp.no_answer_positions(n_p, length, present)
        gold = []
        for j, hit in enumerate(e.passages):
            k = row * n_p + j
            gold += [(j * length + a, j * length + b) for a, b in sp.answer_positions(
                hit.text, e.answers, enc["char"][k], enc["context"][k], self.s.max_answer_tokens)]
        return gold  # empty: the answer was cut off by truncation; no span loss for it


def fid_loss(model, batch: dict) -> torch.Tensor:
    """The FiD forward pass: encode passages independently, fuse, decode the answer; with a
    span head, plus the span loss on the same encoder states (sum of the two)."""
    from transformers.modeling_outputs import BaseModelOutput

    from ..readers import spans as sp

    hidden = model.get_encoder()(input_ids=batch["input_ids"],
                                 attention_mask=batch["attention_mask"]).last_hidden_state
    loss = hidden.new_zeros((), dtype=torch.float32)
    if "gold" in batch:
        start, end = model.span_logits(hidden)
        slp, elp = sp.log_probs(start, end, batch["candidates"], batch["n_p"])
        loss = loss + sp.mml_loss(slp, elp, batch["gold"])
    b = batch["labels"].shape[0]
    if not (batch["labels"] != -100).any():  # only unanswerable examples
        return loss
    hidden = hidden.reshape(b, -1, hidden.shape[-1])
    extra = {}
    if getattr(model.config, "copy_head", False):
        extra["source_ids"] = batch["input_ids"].reshape(b, -1)
    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                attention_mask=batch["fused_mask"], labels=batch["labels"], **extra)
    return loss + out.loss


# -- the loop ---------------------------------------------------------------------------


class FiDLoss(torch.nn.Module):
    """``fid_loss`` as a module's forward, so DistributedDataParallel sees every pass."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, batch: dict) -> torch.Tensor:
        return fid_loss(self.model, batch)


def train(model, tokenizer, examples: list[Example], dev: list[Example],
          settings: TrainSettings, evaluate_fn, save_fn, resume: bool = False,
          log=lambda m: print(m, file=sys.stderr), world: "World | None" = None) -> dict:
    """Train ``model`` in place; ``evaluate_fn(model, dev) -> {"em", "f1"}`` scores it and
    ``save_fn(model, dir)`` writes a reader directory. Returns the training card.

    In a distributed ``world`` every process runs this with the same examples: each takes
    its share of every global batch (``batch_size`` questions in all), gradients are
    averaged (DistributedDataParallel), and only rank 0 evaluates, saves and logs."""
    from tqdm import tqdm

    from .distributed import World

    world = world or World()
    if not examples:
        raise UsageError("no training examples (did retrieval find the answers?)")
    s = settings
    out = Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(s.seed)
    eos = model.generation_config.eos_token_id
    batcher = Batcher(tokenizer, s, eos if isinstance(eos, int) else eos[0],
                      spans=bool(getattr(model.config, "span_head", False)))
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=s.lr)
    per_epoch = math.ceil(len(examples) / (s.batch_size * s.accumulate))
    total = max(1, int(per_epoch * s.epochs))
    warm = max(1, int(total * s.warmup))
    state = {"step": s.start_step, "best_f1": -1.0, "bad_evals": 0, "curve": [],
             "data_sha256": fingerprint(examples), "start_step": s.start_step}

    def lr_factor(i: int) -> float:  # i: this optimizer's steps; the schedule's step is global
        step, since = i + state["start_step"], i + 1
        rewarm = min(1.0, since / warm) if state["start_step"] else 1.0
        return rewarm * min((step + 1) / warm, max(0.0, (total - step) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    model.to(s.device)
    use_bf16 = _bf16(s.bf16, s.device)
    if s.gradient_checkpointing:
        model.get_encoder().gradient_checkpointing_enable()
    step_fn = FiDLoss(model)
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        # (a batch of unanswerable questions leaves the decoder out of the graph)
        step_fn = DistributedDataParallel(step_fn, find_unused_parameters=True)
    data = state["data_sha256"]
    lengths = [sum(len(p.text) for p in e.passages) for e in examples]
    if resume:
        state.update(start_step=0)  # (checkpoints of runs that started at step 0 lack it)
        state.update(load_checkpoint(out / CHECKPOINT, model, opt, sched))
        if state.setdefault("data_sha256", data) != data:  # older checkpoints lack it
            raise UsageError(f"--resume: the mined training examples differ from those of the "
                             f"checkpoint in {out} (other QA sets, knowledge bases, retrieval "
                             "or seed); resume with the same ones or start a new --out")
        log(f"resumed at step {state['step']} of {total}")
    model.train()
    start, first = time.time(), state["step"]
    bar = tqdm(total=total, initial=state["step"], disable=not (s.progress and world.main),
               file=sys.stderr, unit="step")
    if not world.main:
        log = lambda m: None  # noqa: E731
    stop = None
    while state["step"] < total and stop is None:
        step = state["step"]
        order = _epoch_order(lengths, s.seed, step // per_epoch, s.batch_size)
        micro = (step % per_epoch) * s.accumulate  # micro-batch index within the epoch
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for a in range(s.accumulate):
            idx = order[(micro + a) * s.batch_size:(micro + a + 1) * s.batch_size]
            if len(idx) < world.size:  # (the same on every process: all skip it)
                break
            batch = {k: v.to(s.device) if torch.is_tensor(v) else v
                     for k, v in batcher([examples[i] for i in world.shard(idx)]).items()}
            with torch.autocast(torch.device(s.device).type, dtype=torch.bfloat16,
                                enabled=use_bf16):
                loss = step_fn(batch) / s.accumulate
            loss.backward()
            loss_sum += float(loss.detach())
        loss_sum = world.mean(loss_sum)
        torch.nn.utils.clip_grad_norm_(params, s.clip)
        opt.step()
        sched.step()
        state["step"] += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum:.3f}")
        state["curve"].append({"step": state["step"], "loss": round(loss_sum, 5),
                               "lr": sched.get_last_lr()[0]})
        if not s.progress and state["step"] % 25 == 0:  # a log line where no bar is shown
            rate = (time.time() - start) / (state["step"] - first)
            log(f"step {state['step']}/{total}: loss {loss_sum:.3f}, {rate:.2f} s/step")
        timed_out = s.max_minutes is not None and (time.time() - start) / 60 > s.max_minutes
        timed_out = timed_out or (s.max_steps is not None and state["step"] - first >= s.max_steps)
        timed_out = world.agree(timed_out)  # (rank 0's clock decides for all)
        if state["step"] % s.eval_every == 0 or state["step"] == total or timed_out:
            if world.main:
                stop = _evaluate_and_save(model, opt, sched, state, dev, out, s, evaluate_fn,
                                          save_fn, loss_sum, log)
            if world.agree(stop is not None):
                stop = stop or "stopped by rank 0"
            elif timed_out:
                stop = "time or step budget of this run reached; continue with --resume"
            world.barrier()  # (the checkpoint is written before anyone reads or goes on)
    bar.close()
    if world.main:
        write_curves(out, state["curve"])
    return {"steps": state["step"], "total_steps": total, "best_dev_f1": state["best_f1"],
            "stopped": stop or "finished", "minutes": round((time.time() - start) / 60, 2),
            "bf16": use_bf16, "processes": world.size, "settings": {k: str(v) if isinstance(v, Path) else v
                                           for k, v in asdict(s).items()}}


def _evaluate_and_save(model, opt, sched, state: dict, dev, out: Path, s: TrainSettings,
                       evaluate_fn, save_fn, loss: float, log) -> str | None:
    """Score dev, keep the best reader, write a checkpoint; why to stop early, or None."""
    model.eval()
    scores = evaluate_fn(model, dev) if dev else {"em": 0.0, "f1": 0.0}
    model.train()
    state["curve"][-1].update(dev_em=scores["em"], dev_f1=scores["f1"])
    log(f"step {state['step']}: loss {loss:.3f}, dev EM {scores['em']:.1f} "
        f"F1 {scores['f1']:.1f}")
    stop = None
    if scores["f1"] > state["best_f1"]:
        state["best_f1"], state["bad_evals"] = scores["f1"], 0
        save_fn(model, out)
    else:
        state["bad_evals"] += 1
        if state["bad_evals"] >= s.patience:
            stop = f"early stop: no dev improvement in {s.patience} evaluations"
    save_checkpoint(out / CHECKPOINT, model, opt, sched, state)
    return stop


def fingerprint(examples: list[Example]) -> str:
    """A hash of the training examples in order: resuming on other data is refused."""
    import hashlib

    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.question, e.answer, [p.chunk_id for p in e.passages]]).encode())
    return h.hexdigest()


def _epoch_order(lengths: list[int], seed: int, epoch: int, batch: int = 1,
                 window: int = 32) -> list[int]:
    """A seeded shuffle of the examples, length-bucketed: within each window of ``window``
    batches examples are sorted by length and cut into batches, and the batches shuffled,
    so a batch pads little while the epoch stays random (and the same on resume)."""
    rng = random.Random(seed * 100003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if batch <= 1:
        return order
    size = batch * window
    batches = []
    for i in range(0, len(order), size):
        part = sorted(order[i:i + size], key=lambda j: (lengths[j], j))
        batches += [part[k:k + batch] for k in range(0, len(part), batch)]
    full = [b for b in batches if len(b) == batch]
    rng.shuffle(full)  # (a short last batch stays last, so batch boundaries hold)
    return [j for b in full + [b for b in batches if len(b) < batch] for j in b]


def _bf16(mode: str, device: str = "cpu") -> bool:
    if mode == "on":
        return True
    if mode == "off":
        return False
    if torch.device(device).type == "cuda":
        return torch.cuda.is_bf16_supported()
    from knowledge.embedding import bf16_is_fast

    return bf16_is_fast()


# -- checkpoints (safetensors + JSON: no pickle) -------------------------------------------


def save_checkpoint(path: Path, model, opt, sched, state: dict) -> None:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{n}": p.detach().contiguous().cpu() for n, p in model.named_parameters()
               if p.requires_grad}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    opt_state = opt.state_dict()
    for pid, st in opt_state["state"].items():
        for key, value in st.items():
            value = value.detach().contiguous().cpu()
            tensors[f"opt/{pid}/{key}"] = value.reshape(-1) if value.ndim == 0 else value
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    tmp = path / "state.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(path / "state.safetensors")
    meta = {"state": state, "param_names": names, "param_groups": opt_state["param_groups"],
            "scheduler": sched.state_dict()}
    (path / "meta.json.tmp").write_text(json.dumps(meta, default=str))
    (path / "meta.json.tmp").replace(path / "meta.json")


def load_checkpoint(path: Path, model, opt, sched) -> dict:
    from safetensors.torch import load_file

    if not (path / "meta.json").exists():
        raise UsageError(f"no checkpoint to resume in {path.parent}; run without --resume")
    meta = json.loads((path / "meta.json").read_text())
    tensors = load_file(str(path / "state.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n in meta["param_names"]:
            params[n].copy_(tensors[f"model/{n}"])
    opt_state = {"state": {}, "param_groups": meta["param_groups"]}
    for key, value in tensors.items():
        if key.startswith("opt/"):
            _, pid, name = key.split("/", 2)
            opt_state["state"].setdefault(int(pid), {})[name] = \
                value.reshape(()) if name == "step" else value
    opt.load_state_dict(opt_state)
    sched.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    return meta["state"]


def write_curves(out: Path, curve: list[dict]) -> None:
    """The loss and dev-metric curves as CSV and PNG."""
    if not curve:
        return
    keys = ["step", "loss", "lr", "dev_em", "dev_f1"]
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in curve:
            w.writerow({k: row.get(k, "") for k in keys})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [r["step"] for r in curve]
    window = max(1, len(curve) // 50)
    smooth = [sum(r["loss"] for r in curve[max(0, i - window + 1):i + 1]) /
              len(curve[max(0, i - window + 1):i + 1]) for i in range(len(curve))]
    ax.plot(steps, smooth, label="train loss")
    ax.set(xlabel="step", ylabel="loss")
    evals = [r for r in curve if "dev_f1" in r]
    if evals:
        ax2 = ax.twinx()
        ax2.plot([r["step"] for r in evals], [r["dev_f1"] for r in evals], "o-", color="C1",
                 label="dev F1")
        ax2.set(ylabel="dev F1 (%)")
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=120)
    plt.close(fig)


def score_predictions(preds: list[str], dev: list[Example]) -> dict:
    return {"em": 100 * sum(exact_match(p, list(e.answers)) for p, e in zip(preds, dev)) / len(dev),
            "f1": 100 * sum(f1(p, list(e.answers)) for p, e in zip(preds, dev)) / len(dev)}
