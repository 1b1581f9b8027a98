"""Time a training step of the project's span + copy-decoder reader, in real tokens/s.

One fixed set of mined SQuAD train examples, the same model, several settings: attention
implementation, autocast precision, frozen layers, LoRA adapters (peft), length-bucketed
batches. Each setting runs warm-up steps, then timed steps (forward, backward, AdamW).

    .venv/bin/python eval/bench_train_step.py --kb runs/kb-squad --steps 6
"""
from __future__ import annotations

import argparse
import json
import random
import time

import torch

from knowledge.embedding import resolve_model
from knowledge.kb import KnowledgeBase
from rag.evaluation.qa import load_qaset
from rag.readers.fid import load_tokenizer
from rag.retrieval import Retriever
from rag.training.loop import Batcher, TrainSettings, fid_loss, mine
from rag.training.reader import MINILM, init_model


def batches(examples, size: int, bucket: bool):
    order = list(range(len(examples)))
    if bucket:
        order.sort(key=lambda i: sum(len(p.text) for p in examples[i].passages))
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    random.Random(0).shuffle(groups)
    return groups


def run(examples, tok, setting: dict, steps: int, warmup: int = 2) -> dict:
    torch.manual_seed(0)
    model, _, _ = init_model("minilm", 3, setting.get("frozen", 0), True, True,
                             lora=setting.get("lora"))
    model.set_attn_implementation(setting.get("attn", "sdpa"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    batcher = Batcher(tok, TrainSettings(out="/tmp/unused"), 102, spans=True)
    groups = batches(examples, setting.get("batch", 8), setting.get("bucket", False))
    real = padded = 0
    elapsed = 0.0
    for n, idx in enumerate(groups[:warmup + steps]):
        batch = batcher([examples[i] for i in idx])
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=setting.get("bf16", False)):
            loss = fid_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if n >= warmup:
            elapsed += time.perf_counter() - t0
            real += int(batch["attention_mask"].sum())
            padded += batch["attention_mask"].numel()
    return {**setting, "real_tokens_per_s": round(real / elapsed), "padding": round(
        1 - real / padded, 3), "s_per_step": round(elapsed / steps, 2),
        "trained_params": sum(p.numel() for p in params)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", default="runs/kb-squad")
    ap.add_argument("--qaset", default="eval/data/squad-dev-open.qa.jsonl.gz")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--passages", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this setting (repeatable)")
    args = ap.parse_args()
    qs = load_qaset(args.qaset, "train")
    random.Random(0).shuffle(qs)
    with KnowledgeBase.open(args.kb) as kb:
        examples = mine(qs[:200], Retriever(kb), args.passages, log=lambda m: None)
    tok = load_tokenizer(resolve_model(MINILM), MINILM)
    settings = {
        "eager fp32": {"attn": "eager"},
        "sdpa fp32": {"attn": "sdpa"},
        "sdpa fp32 bucketed": {"attn": "sdpa", "bucket": True},
        "sdpa autocast-bf16": {"attn": "sdpa", "bf16": True},
        "sdpa autocast-bf16 bucketed": {"attn": "sdpa", "bf16": True, "bucket": True},
        "eager autocast-bf16 bucketed": {"attn": "eager", "bf16": True, "bucket": True},
        "sdpa autocast-bf16 bucketed, LoRA r16": {"attn": "sdpa", "bf16": True, "bucket": True,
                                                  "frozen": 6, "lora": 16},
        "sdpa fp32 bucketed, 2 layers frozen": {"attn": "sdpa", "bucket": True, "frozen": 2},
        "sdpa fp32 bucketed, LoRA r16 (base frozen)": {"attn": "sdpa", "bucket": True,
                                                       "frozen": 6, "lora": 16},
    }
    if args.only:
        settings = {k: v for k, v in settings.items() if k in args.only}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.passages} passages per question, batch 8 questions")
    for name, setting in settings.items():
        print(json.dumps({"setting": name, **run(examples, tok, setting, args.steps)}),
              flush=True)


if __name__ == "__main__":
    main()
