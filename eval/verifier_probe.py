"""Can the reader's own encoder tell a missing document from an answerable question (issue
27)? A probe, reporting only: each case (``rag.training.reader.abstention_cases``: answerable,
missing document, off-topic; k 3) is read by the shipped reader, and the encoder's [CLS]
state of each passage (the state its no-answer option is read from) is kept: the answer
passage's and the element-wise max over the passages, with the rule's three signals.
``fit`` trains a logistic probe on the train questions' cases (``--split fit``: train minus
dev) and reports, on the dev cases, the ROC AUC of answerable against missing document
and off-topic for the probe and the rule's signals::

    .venv/bin/python eval/verifier_probe.py dump --split fit --n 1500 --out runs/ver-fit.npz
    .venv/bin/python eval/verifier_probe.py dump --split dev --n 300 --out runs/ver-dev.npz
    .venv/bin/python eval/verifier_probe.py fit runs/ver-fit.npz runs/ver-dev.npz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = [("eval/data/nq-para-open.qa.jsonl.gz", "runs/kb-nq"),
        ("eval/data/squad-dev-open.qa.jsonl.gz", "runs/kb-squad")]
CASES = ["answerable", "missing_document", "off_topic"]


def features(reader, questions, passages):
    """(B, 2d) [CLS] of the top span's passage and max over passages, and the outputs."""
    import torch

    from rag.readers import spans

    enc = spans.encode_inputs(reader.span_encoder.tokenizer, reader.config.input_format,
                              questions, passages, reader.config.max_passage_tokens)
    hidden, _ = reader._run_encoder(enc["input_ids"], enc["attention_mask"],
                                    enc["present"].long())
    n_p = enc["n_p"]
    cls = hidden[:, 0, :].float().reshape(len(questions), n_p, -1)
    present = enc["present"].reshape(len(questions), n_p)
    out = reader.read_batch(questions, passages, threshold=False).outputs
    rows = []
    for i, o in enumerate(out):
        at = o.span.passage if o.span is not None else 0
        pooled = cls[i].masked_fill(~present[i][:, None], float("-inf")).max(0).values
        rows.append(torch.cat([cls[i, at], pooled]).numpy())
    return np.stack(rows), out


def dump(a) -> None:
    from rag.abstention import confidence_logit, coverage
    from rag.evaluation.qa import DEV_FRACTION
    from rag.readers import load_reader
    from rag.training.reader import abstention_cases

    res = abstention_cases(DATA, 3, dev_fraction=DEV_FRACTION, dev_limit=a.n, seed=a.seed,
                           split=a.split)
    rows = [c for c in res["rows"] if c.passages and c.case in CASES]
    reader = load_reader(a.reader)
    x, meta = [], []
    for i in range(0, len(rows), 16):
        chunk = rows[i:i + 16]
        f, outs = features(reader, [c.question.question for c in chunk],
                           [c.passages for c in chunk])
        x.append(f)
        for c, o in zip(chunk, outs):
            meta.append([0 if "nq-" in c.group else 1, CASES.index(c.case),
                         confidence_logit(o.confidence), c.similarity - (c.anchor or 0),
                         coverage(c.question.question, c.passages)])
        print(f"{i + len(chunk)}/{len(rows)}", end="\r", file=sys.stderr)
    np.savez(a.out, x=np.concatenate(x).astype(np.float32), meta=np.array(meta, np.float32))


def fit(a) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tr, dv = np.load(a.fit), np.load(a.dev)
    y = tr["meta"][:, 1] == 0
    for c in a.c:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        probe.fit(tr["x"], y)
        s = probe.decision_function(dv["x"])
        m = dv["meta"]
        for g, name in ((0, "nq"), (1, "squad")):
            for neg in (1, 2):
                sel = (m[:, 0] == g) & np.isin(m[:, 1], (0, neg))
                yy = m[sel, 1] == 0
                cells = [f"probe {roc_auc_score(yy, s[sel]):.3f}"] + [
                    f"{n} {roc_auc_score(yy, m[sel, j]):.3f}"
                    for j, n in ((2, "conf"), (3, "sim"), (4, "cov"))]
                ans = s[sel][yy]
                declined = [f"{100 * np.mean(s[sel][~yy] < np.quantile(ans, q)):.0f}% @{q:.0%}"
                            for q in (0.03, 0.05)]
                print(f"C {c} {name} answerable vs {CASES[neg]} (n {sel.sum()}): "
                      + "  ".join(cells) + "  probe declines " + ", ".join(declined))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--split", default="dev", choices=["fit", "dev", "test"])
    d.add_argument("--n", type=int, default=300, help="questions per set")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--reader", default="rag/models/reader")
    d.add_argument("--out", required=True)
    f = sub.add_parser("fit")
    f.add_argument("fit")
    f.add_argument("dev")
    f.add_argument("--c", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    a = ap.parse_args()
    (dump if a.step == "dump" else fit)(a)


if __name__ == "__main__":
    main()
