"""A unit ranker tried for issue 22 (not shipped): a cross-encoder that scores (question,
unit) pairs, to choose the sentence, item or code block to quote where the span reader's
candidate mass picks the wrong one (eval/unit_choice.py).

The packaged MiniLM stays frozen; LoRA adapters (r 16 on every linear layer) and a linear
head on its mean-pooled states are trained with a listwise loss (the positives' share of
each group's softmax) on groups of (question, units, the answering units):

- SQuAD-dev-open's train split: the paragraph's units, the one holding the answer positive,
  the rest and units of other paragraphs of the article negative (every why/how question
  twice, 2,500 others);
- Python's own FAQ (Debian's ``python3.11-doc`` reST sources; not an evaluation or reserved
  set): each question heading with the first unit of its answer (two when the first is a
  bare "Yes."), units of the other answers of the page as negatives, four times over.

Then, on dumps of ``eval/unit_choice.py dump``, the unit chosen by the span mass, by the
ranker alone, and by the two together::

    .venv/bin/python eval/unit_ranker.py groups --out runs/unit-ranker/groups.jsonl
    .venv/bin/python eval/unit_ranker.py train runs/unit-ranker/groups.jsonl \\
        --out runs/unit-ranker/ranker.safetensors --groups 1800
    .venv/bin/python eval/unit_ranker.py score runs/unit-ranker/ranker.safetensors \\
        runs/units-dev.jsonl runs/units-test.jsonl
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FAQ = Path("/usr/share/doc/python3.11-doc/html/_sources/faq")
LORA = dict(r=16, lora_alpha=32, target_modules=["query", "key", "value", "dense"])


def base_dir() -> str:
    from knowledge.embedding import resolve_model

    return str(resolve_model("all-minilm-l6-v2"))


def utexts(text):
    from rag.units import units

    return [(u.start, u.end, text[u.start:u.end]) for u in units(text)]


def clean(s):
    s = re.sub(r":[\w:]+:`~?([^`<]*?)(\s*<[^>]*>)?`", r"\1", s)
    s = re.sub(r"`([^`<]+?)\s*<[^>]+>`_+", r"\1", s)
    s = re.sub(r"``([^`]+)``", r"\1", s)
    s = re.sub(r"`([^`]+)`", r"\1", s)
    s = re.sub(r"::\s*$", ":", s, flags=re.M)
    return re.sub(r"^\.\. .*$", "", s, flags=re.M)


def cmd_groups(a) -> None:
    rng = random.Random(0)
    groups = []
    arts = {json.loads(line)["id"]: json.loads(line)
            for line in gzip.open(ROOT / "corpora/squad-dev/articles.jsonl.gz")}
    qs = [json.loads(line) for line in gzip.open(ROOT / "eval/data/squad-dev-open.qa.jsonl.gz")]
    qs = [q for q in qs if q["split"] == "train"]
    paras = {}
    for q in qs:
        paras.setdefault(q["gold_ids"][0], set()).add((int(q["context_start"]),
                                                       int(q["context_end"])))
    squad = []
    for q in qs:
        art = arts[q["gold_ids"][0]]
        cs, ce = int(q["context_start"]), int(q["context_end"])
        para = art["text"][cs:ce]
        us = utexts(para)
        st, ans = int(q["answer_starts"][0]), q["answers"][0]
        if para[st:st + len(ans)] != ans:
            st = para.find(ans)
            if st < 0:
                continue
        pos = [i for i, (s, e, t) in enumerate(us) if s <= st < e]
        if not pos or len(us) < 2:
            continue
        cands = [x[2] for x in us]
        others = [p for p in paras[q["gold_ids"][0]] if p != (cs, ce)]
        while len(cands) < 8 and others:
            o = rng.choice(others)
            cands.append(rng.choice(utexts(art["text"][o[0]:o[1]]))[2])
        kind = "why" if re.match(r"\s*(why|how)\b", q["question"], re.I) else "f"
        if len(cands) > 12:  # keep the positives, sample the rest
            rest = [t for j, t in enumerate(cands) if j not in pos]
            rng.shuffle(rest)
            cands = [cands[j] for j in pos] + rest[:12 - len(pos)]
            pos = list(range(len(pos)))
        squad.append({"q": q["question"], "units": cands, "pos": pos, "src": "squad-" + kind})
    why = [g for g in squad if g["src"] == "squad-why"]
    fac = [g for g in squad if g["src"] != "squad-why"]
    rng.shuffle(fac)
    groups += why * 2 + fac[:2500]
    faq = []
    for f in sorted(FAQ.glob("*.rst.txt")):
        lines = f.read_text().split("\n")
        heads = [i for i in range(len(lines) - 1) if lines[i].strip()
                 and re.fullmatch(r"[-=~^]{3,}", lines[i + 1].strip() or "x")]
        secs = []
        for j, h in enumerate(heads):
            end = heads[j + 1] if j + 1 < len(heads) else len(lines)
            secs.append((lines[h].strip(), clean("\n".join(lines[h + 2:end])).strip()))
        allu = [(k, t) for k, (_, b) in enumerate(secs) for t in (x[2] for x in utexts(b))]
        for k, (title, body) in enumerate(secs):
            if not title.endswith("?") or not body:
                continue
            us = [x[2] for x in utexts(body)]
            if not us:
                continue
            npos = 2 if len(us[0].split()) < 6 and len(us) > 1 else 1
            negs = [t for kk, t in allu if kk != k]
            rng.shuffle(negs)
            faq.append({"q": title, "units": us[:npos] + negs[:8 - npos],
                        "pos": list(range(npos)), "src": "faq"})
    groups += faq * 4
    rng.shuffle(groups)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as out:
        for g in groups:
            out.write(json.dumps(g) + "\n")
    print(f"squad why/how {len(why)}, others 2500, faq {len(faq)}: {len(groups)} groups",
          file=sys.stderr)


def model():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir())
    return tok, get_peft_model(AutoModel.from_pretrained(base_dir()), LoraConfig(**LORA,
                                                                                 lora_dropout=0.05))


def scorer(tok, enc, head, max_length: int):
    """score(questions, texts): the head over the mean-pooled states of each pair."""
    def score(qs, texts):
        x = tok(qs, texts, truncation="only_second", max_length=max_length, padding=True,
                return_tensors="pt")
        h = enc(**x).last_hidden_state
        m = x["attention_mask"].unsqueeze(-1).float()
        return head((h * m).sum(1) / m.sum(1)).squeeze(-1)
    return score


def train_listwise(groups: list[dict], out: str, max_length: int, steps: int,
                   lr: float = 3e-4) -> None:
    """LoRA adapters and the head trained on ``groups`` ({"q", "texts", "pos"}), 4 groups a
    step, the loss the positives' share of each group's softmax; saved to ``out`` every 100
    steps and at the end (the LoRA tensors and the head)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    tok, enc = model()
    head = torch.nn.Linear(384, 1)
    lora = [p for p in enc.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": lora, "lr": lr}, {"params": head.parameters(),
                                                          "lr": 1e-3}], weight_decay=0.01)
    batch = 4
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / steps))
    score = scorer(tok, enc, head, max_length)

    def save(path):
        state = {k: v for k, v in enc.state_dict().items() if "lora_" in k}
        state.update({"head.weight": head.weight.data, "head.bias": head.bias.data})
        save_file({k: v.detach().contiguous() for k, v in state.items()}, path)

    enc.train()
    t0, run = time.time(), 0.0
    for s in range(steps):
        part = [groups[(s * batch + j) % len(groups)] for j in range(batch)]
        sc = score([g["q"] for g in part for _ in g["texts"]],
                   [t for g in part for t in g["texts"]])
        loss, at = 0, 0
        for g in part:
            v = sc[at:at + len(g["texts"])]
            at += len(g["texts"])
            loss = loss - (torch.logsumexp(v[g["pos"]], 0) - torch.logsumexp(v, 0))
        loss = loss / len(part)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora + list(head.parameters()), 1.0)
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if s else loss.item()
        if s % 100 == 99:
            save(out)
        if s % 25 == 0:
            print(f"step {s}/{steps} loss {run:.3f} {time.time() - t0:.0f}s", flush=True)
    save(out)


def load_scorer(weights: str, max_length: int):
    """The trained scorer in ``weights``, for inference."""
    import torch
    from safetensors.torch import load_file

    tok, enc = model()
    w = load_file(weights)
    head = torch.nn.Linear(384, 1)
    head.weight.data, head.bias.data = w.pop("head.weight"), w.pop("head.bias")
    enc.load_state_dict(w, strict=False)
    enc.eval()
    score = scorer(tok, enc, head, max_length)

    def inference(qs, texts):
        with torch.no_grad():
            return score(qs, texts).numpy()
    return inference


def cmd_train(a) -> None:
    groups = [{"q": g["q"], "texts": g["units"], "pos": g["pos"]}
              for g in map(json.loads, open(a.groups_file))]
    train_listwise(groups, a.out, 128, a.groups // 4)


def cmd_score(a) -> None:
    from eval.unit_choice import answer
    from rag.evaluation.metrics import contains_answer
    from rag.forms import unit_mass
    from rag.units import units

    pairs = load_scorer(a.weights, 128)

    def score(q, us):
        return pairs([q] * len(us), us)

    for path in a.dumps:
        rows = [r for r in map(json.loads, open(path)) if r["answers"]]
        res = {}
        for r in rows:
            cut = {at: units(t) for at, t in enumerate(r["passages"])}
            items = [(at, i) for at in cut for i in range(len(cut[at]))]
            if not items:
                continue
            ce = score(r["question"], [r["passages"][at][cut[at][i].start:cut[at][i].end]
                                       for at, i in items])
            p = np.exp(ce - ce.max())
            p /= p.sum()
            mass = unit_mass(cut, r["candidates"])
            m = np.array([mass.get(x, 0.0) for x in items])
            tot = m.sum() or 1.0

            def ok(j):
                return contains_answer(answer(r, *items[j]), r["answers"])
            ways = [("mass", m + 1e-9 * -np.arange(len(items))), ("ranker", ce)]
            ways += [(f"mass share + {x} ranker", m / tot + x * p) for x in (0.25, 0.5, 1, 2)]
            for name, sc in ways:
                res.setdefault(name, []).append(ok(int(np.argmax(sc))))
        print(Path(path).name, " | ".join(f"{k} {100 * sum(v) / len(rows):.1f}"
                                          for k, v in res.items()))


def steps(doc: str, groups, train, score, train_args, score_args) -> None:
    """The command line a ranker script shares: ``groups --out F``, ``train GROUPS --out F``
    and ``score WEIGHTS``, each with its script's own further arguments (``train_args`` and
    ``score_args``: functions given the subparser), run by the functions named after them."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    sub.add_parser("groups").add_argument("--out", required=True)
    t = sub.add_parser("train")
    t.add_argument("groups_file")
    t.add_argument("--out", required=True)
    train_args(t)
    s = sub.add_parser("score")
    s.add_argument("weights")
    score_args(s)
    a = ap.parse_args()
    {"groups": groups, "train": train, "score": score}[a.step](a)


def main() -> None:
    steps(__doc__, cmd_groups, cmd_train, cmd_score,
          lambda t: t.add_argument("--groups", type=int, default=1800),
          lambda s: s.add_argument("dumps", nargs="+"))


if __name__ == "__main__":
    main()
