"""Human-facing outputs of an evaluation: plots (PNG) and report.md; and run comparison.

Example: ``print(compare(Path("runs/a"), Path("runs/b")))``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from knowledge.errors import UsageError

from .metrics import WORD_LIMIT, recall_at


def write_plots(out: Path, rows: list[dict], summary: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    ranks = [r["gold_rank"] for r in rows]
    if any(r is not None for r in ranks):
        ks = list(range(1, 21))
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(ks, [100 * recall_at(ranks, k) for k in ks], marker="o", ms=3)
        ax.set(xlabel="k (retrieved chunks)", ylabel="gold-document recall@k (%)",
               title="Retrieval recall", ylim=(0, 100), xticks=[1, 5, 10, 15, 20])
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "recall_at_k.png", dpi=120)
        plt.close(fig)
        names.append("recall_at_k.png")
    has_reader = summary.get("f1") is not None
    metric = "f1" if has_reader else "answer_in_topk"
    label = "F1 (%)" if has_reader else f"answer in top-{summary['k']} (%)"
    # the QA set's own question types where it has them, else the wh-word; "right" where
    # some questions have no answer (F1 is only defined for the others)
    field = "type" if len({r.get("type") for r in rows}) > 1 else "qtype"
    if has_reader and field == "type":
        metric, label = "right", f"right (%, contains an answer in <= {WORD_LIMIT} words)"
    by_type: dict[str, list[float]] = {}
    for r in rows:
        if r.get(metric) is not None:
            by_type.setdefault(r.get(field) or r["qtype"], []).append(float(r[metric]))
    types = sorted(by_type, key=lambda t: -len(by_type[t]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(types, [100 * np.mean(by_type[t]) for t in types])
    for i, t in enumerate(types):
        ax.text(i, 1, f"n={len(by_type[t])}", ha="center", fontsize=7, rotation=90, va="bottom")
    ax.set(ylabel=label, title=f"{label.split(' (')[0]} by question type", ylim=(0, 100))
    fig.tight_layout()
    name = "f1_by_type.png" if has_reader else "answer_recall_by_type.png"
    fig.savefig(out / name, dpi=120)
    plt.close(fig)
    names.append(name)
    return names


def write_report(out: Path, summary: dict, card: dict, plots: list[str], rows: list[dict]) -> None:
    s = card["settings"]
    lines = [
        f"# Evaluation: {Path(s.get('qaset', '?')).name} ({s.get('split')}, n={summary['n']})",
        "",
        f"- knowledge base: `{s.get('kb')}` ({card['kb_manifest']['counts']['chunks']} chunks, "
        f"embedder {card['embedder']['name']})",
        f"- retrieval: {s['retrieval']['mode']}, k={s['k']}; reader: "
        f"{(s.get('reader') or {}).get('name', 'none (retrieval only)')}",
        f"- seed {s.get('seed')}, limit {s.get('limit')}, commit {card.get('git_commit')}",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, value in summary.items():
        if key != "by_type":
            lines.append(f"| {key} | {'—' if value is None else value} |")
    lines += ["", "Latencies are per question, batch time divided by batch size.", ""]
    if summary.get("by_type"):
        lines += by_type_table(summary["by_type"]) + [""]
    lines += [f"![{p}]({p})" for p in plots]
    misses = [r for r in rows if r["gold_rank"] is None and r["answers"]][:10]
    if misses:
        lines += ["", "## Retrieval misses (first 10)", ""]
        lines += [f"- {r['question']} — gold answer: {r['answers'][0]}" for r in misses]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def by_type_table(by_type: dict) -> list[str]:
    """Markdown rows: every metric per question type (right = an acceptable answer within
    the word limit, or declined when nothing answers)."""
    metrics = list(dict.fromkeys(m for stats in by_type.values() for m in stats))
    lines = ["## By question type", "", "| type | " + " | ".join(metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for t, stats in by_type.items():
        lines.append(f"| {t} | " + " | ".join("—" if stats.get(m) is None else str(stats[m])
                                             for m in metrics) + " |")
    return lines


def compare(run_a: Path, run_b: Path, limit: int = 20) -> dict:
    """Summaries side by side and the questions whose outcome changed between two runs."""
    import pandas as pd

    frames, summaries = [], []
    for run in (run_a, run_b):
        if not (run / "summary.json").exists() or not (run / "predictions.csv").exists():
            raise UsageError(f"{run} is not a finished evaluation run (no summary.json / "
                             "predictions.csv)")
        summaries.append(_flat(json.loads((run / "summary.json").read_text())))
        frames.append(pd.read_csv(run / "predictions.csv"))
    a, b = summaries
    table = [{"metric": key, "a": a.get(key), "b": b.get(key),
              "delta": round(b[key] - a[key], 4) if isinstance(a.get(key), (int, float))
              and isinstance(b.get(key), (int, float)) else None}
             for key in dict.fromkeys([*a, *b])]
    merged = frames[0].merge(frames[1], on="id", suffixes=("_a", "_b"))
    ks = {"a": a.get("k", 5), "b": b.get("k", 5)}

    def outcome(side):  # EM with a reader (right, where some questions have no answer),
        # else gold document within that run's k
        if merged[f"exact_match_{side}"].notna().all():
            return merged[f"exact_match_{side}"].astype(float)
        if f"right_{side}" in merged and merged[f"right_{side}"].notna().all():
            return merged[f"right_{side}"].astype(float)
        return merged[f"gold_rank_{side}"].fillna(10**9).le(ks[side]).astype(float)

    changed = merged[outcome("a") != outcome("b")]
    rows = [{"id": str(r["id"]), "question": r["question_a"],
             "a": _outcome_text(r, "a", ks["a"]), "b": _outcome_text(r, "b", ks["b"])}
            for _, r in changed.head(limit).iterrows()]
    return {"summary": table, "n_common": len(merged), "n_changed": len(changed),
            "changed": rows}


def _flat(summary: dict) -> dict:
    """The summary with its per-type metrics as ``type/metric`` keys (compared row by row)."""
    out = {k: v for k, v in summary.items() if k != "by_type"}
    for t, stats in (summary.get("by_type") or {}).items():
        out.update({f"{t}/{m}": v for m, v in stats.items()})
    return out


def _outcome_text(r, side: str, k: int) -> str:
    pred = r.get(f"prediction_{side}")
    if isinstance(pred, str):
        em = r[f"exact_match_{side}"]
        return f"{pred!r} (" + (f"EM {em:.0f})" if em == em else f"right {r[f'right_{side}']})")
    rank = r[f"gold_rank_{side}"]
    if rank != rank:  # NaN: not retrieved at all
        return "gold not retrieved"
    return f"gold rank {int(rank)}" + (f" (beyond k={k})" if rank > k else "")
