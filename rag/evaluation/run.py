"""Batch evaluation (`rag eval`): every question through the `rag ask` path, per-question
table, summary, report, plots and a run card; interrupted runs resume.

Example::

    summary = evaluate(pipeline, load_qaset("qa.jsonl"), Path("runs/a"), settings={...})
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from knowledge.errors import UsageError

from .metrics import (WORD_LIMIT, answer_in_text, answer_words, contains_answer, exact_match,
                      f1, first_gold_rank, mean_reciprocal_rank, question_type, recall_at)
from .qa import Question
from .gold import gold_documents

DEPTH = 20  # retrieval depth for recall@20, whatever k the reader gets
RECALL_KS = (1, 5, 10, 20)
BATCH = 32
PROGRESS_FILE = "predictions.jsonl"  # appended per batch; the resume point
# what a row of it must hold to be taken on resuming (``score``'s; another line is skipped)
RESUMED = {"id", "question", "answers", "type", "right", "f1", "abstained", "answer_in_topk",
           "gold_rank", "retrieved_doc_ids"}


def evaluate(pipeline, questions: list[Question], out: Path, settings: dict,
             progress: bool = False, log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Run (or resume) an evaluation into ``out`` and return the summary."""
    _prepare(out)
    _check_gold_ids(pipeline, questions, log)
    card = run_card(pipeline, settings)
    done = _resume(out, card, questions)
    if done:
        log(f"resuming: {len(done)} of {len(questions)} questions already done")
    write_json(out / "run.json", card)
    todo = [q for q in questions if q.id not in done]
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=len(questions), initial=len(done), disable=not progress, unit="q",
               file=sys.stderr)
    with open(out / PROGRESS_FILE, "a", encoding="utf-8") as f:
        for i in range(0, len(todo), BATCH):
            batch = todo[i:i + BATCH]
            answers = pipeline.ask_many([q.question for q in batch], depth=DEPTH,
                                        histories=[history_of(q) for q in batch])
            for q, a in zip(batch, answers):
                row = score(q, a, pipeline.k, has_reader=pipeline.reader is not None)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                done[q.id] = row
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(batch))
    bar.close()
    elapsed = time.perf_counter() - t0
    rows = [done[q.id] for q in questions]
    summary = summarize(rows, pipeline.k, has_reader=pipeline.reader is not None)
    summary["questions_per_s"] = round(len(todo) / elapsed, 2) if todo and elapsed > 0 else None
    write_outputs(out, rows, summary, card)
    return summary


def history_of(q: Question):
    """A conversation's earlier turns (``history`` in the QA set), or None."""
    from ..conversation import Turn

    turns = q.extra.get("history")
    if not turns:
        return None
    try:
        return [Turn.parse(t) for t in turns]
    except ValueError as err:
        raise UsageError(f"question {q.id}: history: {err}") from None


def score(q: Question, a, k: int, has_reader: bool) -> dict:
    """One row of predictions.csv. A question without answers is one nothing should answer
    ("absent"): it is right when declined, and left out of EM/F1."""
    retrieved = [h.doc_id for h in a.retrieved]
    rank = first_gold_rank(retrieved, list(q.gold_ids)) if q.gold_ids else None
    answers = list(q.answers)
    answerable = bool(answers)
    said = a.answer if has_reader and not a.abstained else ""
    row = {
        "id": q.id, "question": q.question, "answers": answers,
        "type": str(q.extra.get("type") or ("factoid" if answerable else "absent")),
        "qtype": question_type(q.question),
        "answer_tokens": min(len(a_.split()) for a_ in answers) if answers else 0,
        "prediction": a.answer if has_reader else None,
        "short": getattr(a, "short", None) if has_reader else None,
        "form": getattr(a, "form", None) if has_reader else None,
        "exact_match": exact_match(a.answer, answers) if has_reader and answerable else None,
        "f1": f1(a.answer, answers) if has_reader and answerable else None,
        "abstained": a.abstained,
        "answer_words": answer_words(said),
        # right: an acceptable answer within the word limit, or declined when none exists
        "contains": contains_answer(said, answers) if has_reader and answerable else None,
        "right": ((contains_answer(said, answers) if answerable else bool(a.abstained))
                  if has_reader else None),
        # what a declined answer would have scored (the F1 abstention cost)
        "withheld_f1": (f1(a.withheld, answers) if has_reader and answerable and a.abstained
                        and getattr(a, "withheld", None) else None),
        "kind": a.kind,
        "followup": bool(q.extra.get("history")),
        "rewritten": getattr(a, "rewritten", None),
        "read_as": getattr(a, "read_as", None),
        # evidence (a quoted sentence) is right when it holds a gold answer
        "evidence_has_answer": (answer_in_text(answers, a.answer)
                                if a.kind == "evidence" and not a.abstained else None),
        "confidence": a.confidence,
        "similarity": a.similarity,
        "answer_in_topk": any(answer_in_text(answers, h.text) for h in a.retrieved[:k]),
        "gold_rank": rank,
        "retrieved_doc_ids": retrieved[:k],
        "retrieval_ms": round(a.timings.get("retrieval_ms", 0.0), 3),
        "reader_ms": round(a.timings.get("reader_ms", 0.0), 3),
    }
    if "answer_in_train" in q.extra:
        row["answer_in_train"] = bool(q.extra["answer_in_train"])
    return row


def summarize(rows: list[dict], k: int, has_reader: bool) -> dict:
    n = len(rows)
    ranks = [r["gold_rank"] for r in rows]
    has_gold = any(r is not None for r in ranks) or n == 0
    answerable = [r for r in rows if r["answers"]]
    summary = {
        "n": n, "k": k,
        **(_reader_scores(answerable) if has_reader else {"exact_match": None, "f1": None}),
        f"answer_recall@{k}": _pct(_mean([r["answer_in_topk"] for r in answerable])),
        "abstained": _pct(_mean([r["abstained"] for r in rows])),
    }
    for kk in RECALL_KS:
        summary[f"recall@{kk}"] = _pct(recall_at(ranks, kk)) if has_gold else None
    summary["mrr"] = round(mean_reciprocal_rank(ranks), 4) if has_gold else None
    if has_reader:
        summary.update(_form_scores(rows))
    evidence = [r for r in rows if r.get("kind") == "evidence"]
    if has_reader and evidence:  # questions the reader could not read (another language)
        summary["evidence"] = _pct(len(evidence) / n)
        summary["evidence_has_answer"] = _pct(np.mean([bool(r["evidence_has_answer"])
                                                       for r in evidence]))
    followups = [r for r in rows if r.get("followup")]
    if has_reader and followups:  # conversations: the last turn, read with its history
        summary["n_followups"] = len(followups)
        summary["followups_rewritten"] = _pct(_mean([bool(r["rewritten"]) for r in followups]))
        summary["followups_second_reading"] = _pct(_mean([bool(r.get("read_as"))
                                                          for r in followups]))
        summary["f1_followups"] = _pct(_mean([r["f1"] for r in followups]))
    unseen = [r for r in rows if r.get("answer_in_train") is False]
    if has_reader and unseen:
        summary["n_unseen_answers"] = len(unseen)
        summary["f1_unseen_answers"] = _pct(np.mean([r["f1"] for r in unseen]))
        summary["exact_match_unseen_answers"] = _pct(np.mean([r["exact_match"] for r in unseen]))
    for stage in ("retrieval_ms", "reader_ms"):
        values = [r[stage] for r in rows]
        summary[f"{stage}_p50"] = round(float(np.percentile(values, 50)), 2)
        summary[f"{stage}_p90"] = round(float(np.percentile(values, 90)), 2)
    if has_reader and len({r["type"] for r in rows}) > 1:
        summary["by_type"] = {t: {"n": len(group), **_form_scores(group),
                                  **_reader_scores([r for r in group if r["answers"]])}
                              for t, group in _groups(rows).items()}
    return summary


def _reader_scores(answerable: list[dict]) -> dict:
    """EM/F1 over answerable questions, with what declining them cost."""
    if not answerable:
        return {}
    declined = [r for r in answerable if r["abstained"]]
    return {"exact_match": _pct(_mean([r["exact_match"] for r in answerable])),
            "f1": _pct(_mean([r["f1"] for r in answerable])),
            "declined_answerable": _pct(len(declined) / len(answerable)),
            # F1 the declined answers would have added, over all answerable questions
            "f1_lost_to_declines": _pct(sum(r.get("withheld_f1") or 0.0 for r in declined)
                                        / len(answerable))}


def _form_scores(rows: list[dict]) -> dict:
    """Right by the word-limit containment rule, declines of absent questions, answer
    length."""
    out = {"right": _pct(_mean([r["right"] for r in rows])),
           f"contains@{WORD_LIMIT}w": _pct(_mean([r["contains"] for r in rows
                                                 if r["contains"] is not None]))}
    absent = [r for r in rows if not r["answers"]]
    if absent:
        out["declined_absent"] = _pct(_mean([r["abstained"] for r in absent]))
    words = [r["answer_words"] for r in rows if not r["abstained"]]
    out["answer_words_median"] = float(np.median(words)) if words else None
    out["answer_words_mean"] = round(float(np.mean(words)), 1) if words else None
    return out


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["type"], []).append(r)
    return dict(sorted(groups.items()))


def _mean(values) -> float:
    values = [float(v) for v in values if v is not None]
    return float(np.mean(values)) if values else 0.0


def _pct(x: float) -> float:
    return round(100.0 * float(x), 2)


def _check_gold_ids(pipeline, questions: list[Question], log) -> None:
    gold = {g for q in questions for g in q.gold_ids}
    if not gold:
        return
    conn = pipeline.retriever.kb.store.conn
    missing = sorted(g for g in gold if not gold_documents(conn, [g]))
    if missing:
        log(f"warning: {len(missing)} of {len(gold)} gold document ids are not in the knowledge "
            f"base (e.g. {missing[0]!r}); retrieval recall counts them as misses")


def _prepare(out: Path) -> None:
    """``out`` made, or found empty or holding an earlier run (its ``run.json``): a folder of
    other files is refused, never written over."""
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder for the results")
        if out.is_dir() and not (out / "run.json").is_file() and any(
                not p.name.startswith(".") for p in out.iterdir()):  # (.gitkeep, .DS_Store)
            raise UsageError(f"--out {out} holds other files than a `rag eval` run; give a new "
                             "or empty folder, or an earlier run's")
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot write the results into --out {out} ({err.strerror or err}); "
                         "give another folder") from None


def _resume(out: Path, card: dict, questions: list[Question]) -> dict:
    """Rows already written by an earlier run with the same settings, by question id."""
    path = out / PROGRESS_FILE
    card_path = out / "run.json"
    try:
        old = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or (card_path.exists() and "settings" not in old):
        raise UsageError(f"{card_path} is not a `rag eval` run card; choose another --out or "
                         "delete it")
    if not path.exists():
        return {}
    if old.get("settings") != card["settings"]:
        raise UsageError(f"{out} holds a run with other settings; choose another --out or "
                         "delete it")
    then, now = old.get("git_commit"), card.get("git_commit")
    if then and now and then != now:  # rows from two versions of the code would mix
        raise UsageError(f"{out} holds a run made by other code (commit {then[:12]}, now "
                         f"{now[:12]}); choose another --out or delete it")
    wanted = {q.id for q in questions}
    rows = {}
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the line being written when the run was killed
            continue
        if (isinstance(row, dict) and RESUMED <= row.keys()
                and isinstance(row["id"], str) and row["id"] in wanted):
            rows[row["id"]] = row
    # rewrite without a torn last line so appends start clean
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows.values()),
                    encoding="utf-8")
    return rows


def run_card(pipeline, settings: dict) -> dict:
    """Everything needed to reproduce the numbers: data, models, settings, code, machine."""
    import platform

    kb = pipeline.retriever.kb
    return {
        "settings": {**settings, **pipeline.settings()},
        "kb_manifest": {k: v for k, v in kb.manifest.items() if k not in ("updated",)},
        "embedder": kb.manifest["embedder"],
        "git_commit": _git_commit(),
        "packages": _versions(["torch", "transformers", "sentence-transformers", "faiss-cpu",
                               "numpy", "pandas", "langchain-text-splitters"]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu": _cpu_model(), "cores": os.cpu_count()},
    }


def _git_commit() -> str | None:
    import subprocess

    try:
        root = Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout
        return out.stdout.strip() + ("+dirty" if dirty.strip() else "") if out.returncode == 0 \
            else None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions(names: list[str]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_outputs(out: Path, rows: list[dict], summary: dict, card: dict) -> None:
    import pandas as pd

    from .report import write_plots, write_report

    df = pd.DataFrame(rows)
    for col in ("answers", "retrieved_doc_ids"):
        df[col] = df[col].map(lambda v: json.dumps(v, ensure_ascii=False))
    df.to_csv(out / "predictions.csv", index=False)
    write_json(out / "summary.json", summary)
    plots = write_plots(out, rows, summary)
    write_report(out, summary, card, plots, rows)
