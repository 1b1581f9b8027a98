"""Choose how the span reader turns its logits into an answer, on the dev split only.

The span head's logits for one (question, passage) pair do not depend on the other passages
(FiD encodes each pair alone), so one encoder pass over the top K passages of every dev
question gives, offline, the answer any k <= K and any scoring rule would give:
- ``k``: how many passages are read (shared normalisation over those k);
- ``prior``: a bias of -prior * rank added to each passage's start logits (a retrieval
  prior that depends on rank only, not on the corpus's score scale);
- ``agg``: spans with the same normalised text pooled (log-sum-exp of their scores over the
  top candidates), so an answer that several passages support outranks a one-off;
- the no-answer threshold that declines at most 4 % of the dev questions as retrieved.

Usage (dev questions only; never test):
    .venv/bin/python eval/tune_reading.py --reader rag/models/reader \
        --set squad=eval/data/squad-dev-open.qa.jsonl.gz:runs/kb-squad \
        --set nq=eval/data/nq-para-open.qa.jsonl.gz:runs/kb-nq --depth 10 --out runs/tune
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge import KnowledgeBase  # noqa: E402
from rag.evaluation.metrics import f1, normalize_answer  # noqa: E402
from rag.evaluation.qa import load_qaset  # noqa: E402
from rag.readers import load_reader  # noqa: E402
from rag.readers import spans  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402


def dump(reader, kb_dir: str, qaset: str, depth: int, batch: int = 8) -> list[dict]:
    """Per dev question: its answers, similarity, and per retrieved passage the context
    positions' start/end logits, the [CLS] logits and the token character offsets."""
    questions = load_qaset(qaset, split="dev")
    rows = []
    with KnowledgeBase.open(kb_dir) as kb:
        retriever = Retriever(kb)
        reader.share_base_weights(kb.embedder)
        for i in range(0, len(questions), batch):
            qs = questions[i:i + batch]
            found = retriever.search_many([q.question for q in qs], depth)
            enc = spans.encode_inputs(reader.tokenizer, reader.config.input_format,
                                      [q.question for q in qs], found.hits,
                                      reader.config.max_passage_tokens)
            hidden, _ = reader._run_encoder(enc["input_ids"], enc["attention_mask"],
                                            enc["present"].long())
            with torch.inference_mode():
                st, en = reader.model.span_logits(hidden)
            n_p, length = enc["n_p"], enc["length"]
            st = st.float().reshape(len(qs), n_p, length)
            en = en.float().reshape(len(qs), n_p, length)
            ctx = enc["context"].reshape(len(qs), n_p, length)
            char = enc["char"].reshape(len(qs), n_p, length, 2)
            for r, q in enumerate(qs):
                passages = []
                for j, hit in enumerate(found.hits[r]):
                    pos = ctx[r, j].nonzero()[:, 0]
                    passages.append(summarise(hit.text, st[r, j], en[r, j], pos,
                                              char[r, j]))
                rows.append({"question": q.question, "answers": q.answers,
                             "similarity": found.similarity[r], "passages": passages})
            print(f"  {kb_dir}: {min(i + batch, len(questions))}/{len(questions)}",
                  file=sys.stderr, end="\r")
    print(file=sys.stderr)
    return rows


def summarise(text: str, st, en, pos, char, max_len: int = 30, top: int = 20) -> dict:
    """One passage's part of any setting: its best spans' raw scores (start + end logits,
    the ranking within a passage never changes with k or the prior), the log-sum-exp of its
    start and end logits over its positions and [CLS], and its [CLS] logits."""
    s, e = st[pos], en[pos]
    n = len(pos)
    cands = []
    if n:
        score = s[:, None] + e[None, :]
        i = torch.arange(n)
        valid = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_len)
        score = score.masked_fill(~valid, float("-inf")).reshape(-1)
        values, flat = score.topk(min(top, score.numel()))
        for v, f in zip(values.tolist(), flat.tolist()):
            if v == float("-inf"):
                break
            a, b = divmod(f, n)
            cands.append((v, text[int(char[pos[a], 0]):int(char[pos[b], 1])]))
    all_s = torch.cat([s, st[:1]])
    all_e = torch.cat([e, en[:1]])
    return {"cands": cands, "lse_s": float(all_s.logsumexp(0)), "lse_e": float(all_e.logsumexp(0)),
            "cls": (float(st[0]), float(en[0]))}


def answer(row: dict, k: int, prior: float, agg: bool, top: int = 20):
    """(answer text, confidence) under one setting; confidence is sigmoid(best - null)."""
    ps = row["passages"][:k]
    if not ps:
        return "", 0.0
    bias = -prior * np.arange(len(ps))
    zs = _lse(np.array([p["lse_s"] for p in ps]) + bias)
    ze = _lse(np.array([p["lse_e"] for p in ps]))
    null = _lse(np.array([p["cls"][0] + p["cls"][1] for p in ps]) + bias - zs - ze)
    cands = sorted(((sc + bias[j] - zs - ze, text) for j, p in enumerate(ps)
                    for sc, text in p["cands"]), key=lambda c: -c[0])
    if not cands:
        return "", 0.0
    if agg:
        pooled: dict[str, list] = {}
        for sc, text in cands[:top]:
            pooled.setdefault(normalize_answer(text) or text, []).append((sc, text))
        group = max(pooled.values(), key=lambda g: _lse(np.array([x[0] for x in g])))
        best = _lse(np.array([x[0] for x in group]))
        text = group[0][1]
    else:
        best, text = cands[0]
    return text, float(1 / (1 + np.exp(-(best - null))))


def _lse(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.sum(np.exp(x - m))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", default="rag/models/reader")
    ap.add_argument("--set", action="append", required=True, help="NAME=QASET:KB")
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("runs/tune"))
    ap.add_argument("--ks", default="1,3,5,10")
    ap.add_argument("--priors", default="0,0.25,0.5,1,1.5,2")
    ap.add_argument("--max-declined", type=float, default=0.04)
    args = ap.parse_args()
    torch.set_num_threads(2)
    reader = load_reader(args.reader)
    args.out.mkdir(parents=True, exist_ok=True)
    data = {}
    for spec in args.set:
        name, _, rest = spec.partition("=")
        qaset, _, kb = rest.rpartition(":")
        data[name] = dump(reader, kb, qaset, args.depth)
    ks = [int(x) for x in args.ks.split(",")]
    priors = [float(x) for x in args.priors.split(",")]
    results = []
    for k, prior, agg in itertools.product(ks, priors, (False, True)):
        row = {"k": k, "prior": prior, "agg": agg}
        for name, rows in data.items():
            out = [answer(r, k, prior, agg) for r in rows]
            scores = [f1(a, r["answers"]) for (a, _), r in zip(out, rows)]
            conf = sorted(c for _, c in out)
            cut = conf[int(args.max_declined * len(conf))]  # declines at most max_declined
            kept = [s if c >= cut else 0.0 for s, (_, c) in zip(scores, out)]
            row[name] = round(100 * float(np.mean(scores)), 1)
            row[name + "_abstain"] = round(100 * float(np.mean(kept)), 1)
            row[name + "_cut"] = round(cut, 4)
        row["mean"] = round(float(np.mean([row[n] for n in data])), 2)
        results.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "tune_reading.json").write_text(json.dumps(results, indent=1) + "\n")
    best = max(results, key=lambda r: r["mean"])
    print("best (mean dev F1 over the sets):", json.dumps(best))


if __name__ == "__main__":
    main()
