"""QA sets: JSONL (optionally .gz) with id, question, answers, optional gold_ids and split;
SQuAD-format JSON is read directly.

Example: ``questions = load_qaset("eval/data/squad-dev-open.qa.jsonl.gz", split="test")``.
"""
from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.errors import UsageError


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    gold_ids: tuple[str, ...] = ()
    split: str | None = None
    extra: dict = field(default_factory=dict)  # other fields, kept for breakdowns


SPLITS = ("test", "train", "dev", "all")
DEV_FRACTION = 0.05  # of the train split's documents, held out for choosing settings


def load_qaset(path: str | Path, split: str = "test") -> list[Question]:
    """Questions of ``split``: 'test', 'train', 'dev' (the set's own dev rows where it has
    them, else the questions on a seeded 5 % of the train split's documents, which `rag
    train` holds out: for choosing settings without touching test) or 'all'. A set without
    splits is all test. A question may carry a ``type`` (factoid, howto, why, absent, ...)
    and, when nothing should answer it, no answers."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a QA file (.jsonl, .jsonl.gz or SQuAD .json)")
    if not path.is_file():
        raise UsageError(f"QA set not found: {path}")
    if split not in SPLITS:
        raise UsageError(f"--split {split!r} must be one of {', '.join(SPLITS)}")
    if path.name.endswith(".json"):
        questions = _from_squad(path)
    else:
        questions = list(_from_jsonl(path))
    if not questions:
        raise UsageError(f"{path}: the QA set is empty")
    has_split = any(q.split for q in questions)
    if split == "dev" and not has_split:
        raise UsageError(f"{path}: --split dev needs a QA set with train/test splits")
    own_dev = any(q.split == "dev" for q in questions)  # a set with its own dev split
    if has_split and split != "all":
        wanted = "train" if split == "dev" and not own_dev else split
        questions = [q for q in questions if q.split == wanted]
        if split == "dev" and not own_dev:
            questions = split_dev(questions, DEV_FRACTION, seed=0)[1]
        if not questions:
            raise UsageError(f"{path}: no questions in split {split!r}")
    return questions


def split_dev(questions: list[Question], fraction: float, seed: int):
    """(rest, held out): the questions on a seeded ``fraction`` of their gold documents are
    held out whole, so no held-out passage is ever trained on."""
    key = lambda q: q.gold_ids[0] if q.gold_ids else q.id  # noqa: E731
    docs = sorted({key(q) for q in questions})
    rng = random.Random(seed)
    held = set(rng.sample(docs, max(1, int(len(docs) * fraction)))) if len(docs) > 1 else set()
    return [q for q in questions if key(q) not in held], [q for q in questions if key(q) in held]


def sample(questions: list[Question], limit: int | None, seed: int) -> list[Question]:
    """A seeded sample of ``limit`` questions, kept in file order."""
    if not limit or limit >= len(questions):
        return list(questions)
    if limit < 1:
        raise UsageError(f"--limit must be at least 1 (got {limit})")
    chosen = set(random.Random(seed).sample(range(len(questions)), limit))
    return [q for i, q in enumerate(questions) if i in chosen]


def _from_jsonl(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if line.strip():
                    yield _parse(json.loads(line) if _is_json(line) else _bad(path, line_no),
                                 path, line_no)
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise UsageError(f"{path}: unreadable QA set ({err})") from None


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
        return True
    except json.JSONDecodeError:
        return False


def _bad(path: Path, line_no: int):
    raise UsageError(f"{path}:{line_no}: not valid JSON; each line must be one JSON object")


def _parse(row, path: Path, line_no: int) -> Question:
    where = f"{path}:{line_no}"
    if not isinstance(row, dict):
        raise UsageError(f"{where}: not a JSON object")
    question, answers = row.get("question"), row.get("answers")
    if not isinstance(question, str) or not question.strip():
        raise UsageError(f"{where}: missing 'question' text")
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise UsageError(f"{where}: 'answers' must be a list of strings")
    gold = row.get("gold_ids") or []
    if isinstance(gold, str):
        gold = [gold]
    known = {"id", "question", "answers", "gold_ids", "split"}
    return Question(
        id=str(row.get("id", f"line{line_no}")), question=question.strip(),
        answers=tuple(answers), gold_ids=tuple(str(g) for g in gold), split=row.get("split"),
        extra={k: v for k, v in row.items() if k not in known},
    )


def _from_squad(path: Path) -> list[Question]:
    """SQuAD v1.1/v2.0 JSON: gold_ids are the article titles; unanswerable ones are skipped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UsageError(f"{path}: not a SQuAD-format JSON file ({err})") from None
    out = []
    try:
        for article in data:
            for para in article.get("paragraphs", []):
                for qa in para.get("qas", []):
                    answers = list(dict.fromkeys(str(a["text"]) for a in qa.get("answers", [])))
                    if answers:
                        out.append(Question(id=str(qa["id"]), question=qa["question"].strip(),
                                            answers=tuple(answers),
                                            gold_ids=(str(article["title"]),)))
    except (KeyError, TypeError, AttributeError) as err:  # (a field missing or of a wrong type)
        raise UsageError(f"{path}: not a SQuAD-format JSON file ({type(err).__name__}: {err}); "
                         "expected data[].paragraphs[].qas[] with id, question and "
                         "answers[].text") from None
    return out
