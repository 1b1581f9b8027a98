"""A unit head on the reader's own encoder states (issue 22): which sentence, item or code
block of the retrieved passages answers the question, scored from what the reader already
computed, so choosing it costs no second model.

Step 1 reads each question once (top-k passages, the reader's encoder states and span
log-probabilities) and writes, per unit of every passage, its features (the mean and max
of the reader's final states over the unit's tokens, its span mass and best start/end
log-probabilities, passage rank, unit and question kind) and whether its long form holds an
acceptable answer (eval/unit_choice.py's containment). Step 2 fits a head on one feature
file with a listwise loss (softmax over all units of a question) and reports the unit it
picks on others, beside the span mass and the oracle::

    .venv/bin/python eval/unit_head.py features --kb runs/kb-manuals-train \\
        --qaset eval/data/manuals-train/train.qa.jsonl --split train --out runs/uh/train.npz
    .venv/bin/python eval/unit_head.py features --kb runs/kb-manuals-pdf-base --out runs/uh/dev.npz
    .venv/bin/python eval/unit_head.py fit runs/uh/train.npz runs/uh/dev.npz runs/uh/test.npz
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("factoid", "howto", "why", "definition")
UNIT_KINDS = ("sentence", "item", "code")


def features(args) -> None:
    import torch

    from eval.unit_choice import answer
    from knowledge.kb import KnowledgeBase
    from rag.evaluation.metrics import contains_answer
    from rag.evaluation.qa import load_qaset
    from rag.forms import question_kind, unit_mass
    from rag.units import units, words
    from rag.readers import load_reader
    from rag.readers import spans as sp
    from rag.readers.fid import CANDIDATES

    questions = [q for q in load_qaset(args.qaset, args.split) if q.answers]
    if args.n:
        questions = questions[:args.n]
    reader = load_reader(args.reader)
    head = reader.span_encoder
    cfg = reader.config
    rows = {"x": [], "y": [], "q": [], "mass": []}
    meta = []
    with KnowledgeBase.open(args.kb) as kb:
        found = retrieve(kb, [q.question for q in questions], args.k)
    for qi, (q, hits) in enumerate(zip(questions, found)):
        hits = hits[:args.k]
        if not hits:
            continue
        enc = sp.encode_inputs(head.tokenizer, cfg.input_format, [q.question], [hits],
                               cfg.max_passage_tokens)
        hidden, _ = reader._run_encoder(enc["input_ids"], enc["attention_mask"],
                                        enc["present"].long())
        n_p, length = enc["n_p"], enc["length"]
        with torch.inference_mode():
            st, en = head.span_logits(hidden)
            slp, elp = sp.log_probs(st, en, sp.candidate_mask(enc["context"], enc["present"]),
                                    n_p)
            null = float(sp.null_log_prob(slp, elp, n_p, length)[0])
            cands = sp.decode_spans(slp, elp, enc["context"], enc["char"], n_p, length,
                                    cfg.max_answer_tokens, CANDIDATES)[0]
        spans = [(float(np.exp(c.score)), c.passage, c.start, c.end) for c in cands]
        slp = slp.reshape(n_p, length).float().numpy()
        elp = elp.reshape(n_p, length).float().numpy()
        hid = hidden.float().numpy()
        ctx = enc["context"].numpy()
        char = enc["char"].numpy()
        cut = {at: units(h.text) for at, h in enumerate(hits)}
        mass = unit_mass(cut, spans)
        kind = question_kind(q.question)
        r = {"question": q.question, "passages": [h.text for h in hits]}
        qrows = []
        for at, h in enumerate(hits):
            us = cut[at]
            for i, u in enumerate(us):
                tok = np.nonzero(ctx[at] & (char[at, :, 0] < u.end) & (char[at, :, 1] > u.start))[0]
                if len(tok):
                    mean, mx = hid[at, tok].mean(0), hid[at, tok].max(0)
                    bs, be = slp[at, tok].max(), elp[at, tok].max()
                    ls = np.logaddexp.reduce(slp[at, tok])
                    le = np.logaddexp.reduce(elp[at, tok])
                else:
                    mean = mx = np.zeros(hid.shape[-1], np.float32)
                    bs = be = ls = le = -30.0
                m = mass.get((at, i), 0.0)
                text = h.text[u.start:u.end]
                nxt = us[i + 1].kind if i + 1 < len(us) else "none"
                scal = [m, np.log(m + 1e-6), max(bs, -30), max(be, -30), max(ls, -30),
                        max(le, -30), null, float(len(tok) == 0), i / max(1, len(us)),
                        float(i == 0), np.log1p(words(text)), float(text.rstrip().endswith(":")),
                        float(nxt in ("code", "item"))]
                scal += [float(at == j) for j in range(args.k)]
                scal += [float(u.kind == k) for k in UNIT_KINDS]
                scal += [float(kind == k) for k in KINDS]
                qrows.append((np.concatenate([mean, mx, np.array(scal, np.float32)]),
                              contains_answer(answer(r, at, i), list(q.answers)), m))
                meta.append({"q": qi, "id": q.id, "at": at, "i": i, "type": q.extra.get("type", "")})
        for x, y, m in qrows:
            rows["x"].append(x.astype(np.float32))
            rows["y"].append(y)
            rows["q"].append(qi)
            rows["mass"].append(m)
        if qi % 100 == 0:
            print(f"{qi}/{len(questions)}", file=sys.stderr, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=np.stack(rows["x"]), y=np.array(rows["y"]),
                        q=np.array(rows["q"]), mass=np.array(rows["mass"]),
                        types=np.array([m["type"] or "" for m in meta]))


def retrieve(kb, questions, k):
    from rag.retrieval import Retriever

    return Retriever(kb, "hybrid").search_many(questions, k, None).hits


def load(path):
    d = np.load(path)
    return {k: d[k] for k in d.files}


def groups(d):
    q = d["q"]
    cuts = np.flatnonzero(np.diff(q)) + 1
    return np.split(np.arange(len(q)), cuts)


def pick_rate(scores, d):
    """Share of questions (with any unit) whose best-scored unit holds an answer."""
    gs = groups(d)
    right = [d["y"][g][int(np.argmax(scores[g] + 1e-9 * -np.arange(len(g))))] for g in gs]
    return 100 * np.mean(right), len(gs)


def fit(args) -> None:
    import torch

    train = load(args.train)
    evals = {Path(p).stem: load(p) for p in args.evals}
    dim = train["x"].shape[1]
    hid_dim = 384
    sel = {"all": slice(None), "scalars": slice(2 * hid_dim, None),
           "mean+scalars": np.r_[0:hid_dim, 2 * hid_dim:dim]}[args.inputs]
    xtr = train["x"][:, sel]
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-4
    torch.manual_seed(0)
    width = xtr.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(width, args.hidden), torch.nn.GELU(),
                              torch.nn.Dropout(args.dropout), torch.nn.Linear(args.hidden, 1)) \
        if args.hidden else torch.nn.Linear(width, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.wd)
    gs = [g for g in groups(train) if train["y"][g].any()]
    X = torch.tensor((xtr - mu) / sd)
    Y = torch.tensor(train["y"].astype(bool))

    def scores(d):
        with torch.no_grad():
            net.eval()
            s = net(torch.tensor((d["x"][:, sel] - mu) / sd)).squeeze(-1).numpy()
            net.train()
        return s

    def report(tag):
        out = []
        for name, d in evals.items():
            s = scores(d)
            out.append(f"{name} head {pick_rate(s, d)[0]:.1f}")
        print(tag, " | ".join(out), flush=True)

    rng = np.random.default_rng(0)
    for ep in range(args.epochs):
        order = rng.permutation(len(gs))
        tot = 0.0
        for b in range(0, len(order), 16):
            loss = 0
            for gi in order[b:b + 16]:
                g = torch.tensor(gs[gi])
                v = net(X[g]).squeeze(-1)
                loss = loss - (torch.logsumexp(v[Y[g]], 0) - torch.logsumexp(v, 0))
            loss = loss / len(order[b:b + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item()
        if ep % args.every == args.every - 1 or ep == args.epochs - 1:
            report(f"epoch {ep + 1} loss {tot / (len(order) / 16):.3f}")
    for name, d in evals.items():
        m = d["mass"] + 1e-12
        print(f"{name}: mass {pick_rate(d['mass'], d)[0]:.1f}  oracle "
              f"{pick_rate(d['y'].astype(float), d)[0]:.1f}  (n {pick_rate(m, d)[1]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    f = sub.add_parser("features")
    f.add_argument("--kb", required=True)
    f.add_argument("--out", required=True)
    f.add_argument("--qaset", default="eval/data/manuals/manuals.qa.jsonl")
    f.add_argument("--split", default="dev")
    f.add_argument("--reader", default="rag/models/reader")
    f.add_argument("-k", type=int, default=3)
    f.add_argument("-n", type=int, default=0)
    t = sub.add_parser("fit")
    t.add_argument("train")
    t.add_argument("evals", nargs="+")
    t.add_argument("--inputs", default="all", choices=("all", "scalars", "mean+scalars"))
    t.add_argument("--hidden", type=int, default=64)
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--wd", type=float, default=0.01)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--every", type=int, default=5)
    a = ap.parse_args()
    (features if a.step == "features" else fit)(a)


if __name__ == "__main__":
    main()
