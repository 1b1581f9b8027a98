#!/usr/bin/env python3
"""Check the follow-up question sets ``eval/data/followups-{squad,nq}[-fresh|-fresh2].qa.jsonl``
against their sources and print their counts.

Command (stdlib only, a few seconds; ``--ambiguity`` adds about a minute)::

    python3 eval/followups_check.py [FILE ...] [--ambiguity]

Each row is the last turn of a conversation over one paragraph (format in
``eval/data/followups.README.md``).  Checked for every row:

* the fields and their types; ids unique; 1-2 history turns; ``reference`` one of
  pronoun, definite, ellipsis;
* every follow-up answer and every history answer occurs verbatim in the gold paragraph
  (SQuAD: ``article text[context_start:context_end]``; NQ: the corpus paragraph);
* ``standalone`` differs from ``question``;
* the split: ``dev`` rows only on train-split articles/paragraphs of the source QA set,
  ``test`` rows only on test-split ones;
* ``from_ids`` are questions of the source set on the same paragraph, and the answers are
  among the answers of the last one (the question the follow-up is based on).

``--ambiguity`` also ranks all paragraphs of the source corpus with BM25 for the
follow-up alone, the follow-up with its history prepended, and the standalone form, and
reports how often the gold paragraph comes first (a follow-up that needs its history
should rarely find it alone).  Problems go to stderr, one line each; exit 1 if any.
"""
import argparse
import collections
import gzip
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "eval" / "data"
FILES = [DATA / "followups-squad.qa.jsonl", DATA / "followups-nq.qa.jsonl",
         DATA / "followups-squad-fresh.qa.jsonl", DATA / "followups-nq-fresh.qa.jsonl",
         DATA / "followups-squad-fresh2.qa.jsonl", DATA / "followups-nq-fresh2.qa.jsonl"]
SOURCES = {  # source -> (QA set, corpus)
    "squad": (DATA / "squad-dev-open.qa.jsonl.gz",
              ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz"),
    "nq": (DATA / "nq-para-open.qa.jsonl.gz", DATA / "nq-para-open.corpus.jsonl.gz"),
}
KINDS = ("pronoun", "definite", "ellipsis")
SPLIT_OF = {"train": "dev", "test": "test"}  # source split -> follow-up split


def read_jsonl(path):
    """Rows of a JSONL file, gzipped or not: ``[(line_no, row), ...]``."""
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{n}: not valid JSON (one object per line)") from None
    return rows


def load_source(source):
    """The source QA set by question id and its corpus texts by document id."""
    qa_path, corpus_path = SOURCES[source]
    questions = {q["id"]: q for _, q in read_jsonl(qa_path)}
    texts = {d["id"]: d["text"] for _, d in read_jsonl(corpus_path)}
    return questions, texts


def paragraph_key(q):
    """Where a source question's paragraph is: (document id, start offset or None)."""
    return q["gold_ids"][0], q.get("context_start")


def check_row(row, questions, texts, gold_split):
    """Problems with one row (a list of strings) and its gold paragraph text."""
    problems = []
    for key, kind in (("id", str), ("question", str), ("standalone", str), ("answers", list),
                      ("gold_ids", list), ("history", list), ("source", str), ("split", str)):
        if not isinstance(row.get(key), kind) or not row[key]:
            problems.append(f"missing or empty {key!r}")
    if problems:
        return problems, ""
    if row.get("reference") not in KINDS:
        problems.append(f"reference {row.get('reference')!r} is not one of {', '.join(KINDS)}")
    if not all(isinstance(a, str) and a for a in row["answers"]):
        return problems + ["answers must be non-empty strings"], ""
    doc = row["gold_ids"][0]
    text = texts.get(doc)
    if len(row["gold_ids"]) != 1 or text is None:
        return problems + [f"gold_ids {row['gold_ids']} is not one document of the corpus"], ""
    start, end = row.get("context_start"), row.get("context_end")
    paragraph = text[start:end] if start is not None else text
    if SPLIT_OF.get(gold_split.get(doc)) != row["split"]:
        problems.append(f"split {row['split']!r} but {doc} is "
                        f"{gold_split.get(doc)!r} in the source")
    if not 1 <= len(row["history"]) <= 2:
        problems.append(f"{len(row['history'])} history turns (want 1-2)")
    for turn in row["history"]:
        if not (isinstance(turn, dict) and turn.get("question") and turn.get("answer")):
            problems.append(f"history turn {turn!r} needs a question and an answer")
        elif turn["answer"] not in paragraph:
            problems.append(f"history answer {turn['answer']!r} is not in the paragraph")
    problems += [f"answer {a!r} is not in the paragraph"
                 for a in row["answers"] if a not in paragraph]
    if " ".join(row["standalone"].lower().split()) == " ".join(row["question"].lower().split()):
        problems.append("standalone is the same as question")
    problems += check_provenance(row, questions)
    return problems, paragraph


def check_provenance(row, questions):
    """``from_ids`` name source questions on this paragraph; answers come from the last."""
    ids = row.get("from_ids") or []
    if not ids:
        return ["no from_ids (the source question the follow-up is based on)"]
    problems, here = [], (row["gold_ids"][0], row.get("context_start"))
    for qid in ids:
        q = questions.get(qid)
        if q is None or paragraph_key(q) != here:
            problems.append(f"from_ids {qid} is not a source question on this paragraph")
    base = questions.get(ids[-1])
    if base is not None and not set(row["answers"]) <= set(base["answers"]):
        problems.append(f"answers {row['answers']} are not among {ids[-1]}'s {base['answers']}")
    return problems


def tokens(text):
    return re.findall(r"\w+", text.lower())


class BM25:
    """Okapi BM25 (k1 1.2, b 0.75) over a list of texts: ``BM25(texts).rank(query)``."""

    def __init__(self, texts):
        self.docs = [collections.Counter(tokens(t)) for t in texts]
        self.lengths = [sum(d.values()) for d in self.docs]
        self.avg = sum(self.lengths) / len(self.docs)
        df = collections.Counter(w for d in self.docs for w in d)
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.postings = collections.defaultdict(list)
        for i, d in enumerate(self.docs):
            for w in d:
                self.postings[w].append(i)

    def rank(self, query):
        """Document indices, best first (only those sharing a word with the query)."""
        scores = collections.Counter()
        for w in set(tokens(query)):
            for i in self.postings.get(w, ()):
                tf = self.docs[i][w]
                norm = tf + 1.2 * (0.25 + 0.75 * self.lengths[i] / self.avg)
                scores[i] += self.idf[w] * tf * 2.2 / norm
        return [i for i, _ in scores.most_common()]


WAYS = ("question alone", "history + question", "standalone")


def ambiguity(rows, golds, corpus):
    """Share of rows whose gold paragraph (``golds``, one per row) BM25 ranks first among
    the ``corpus`` paragraphs, for each way of asking (``WAYS``)."""
    texts = sorted(set(corpus) | set(golds))
    index, where = BM25(texts), {t: i for i, t in enumerate(texts)}
    hits = collections.Counter()
    for row, gold in zip(rows, golds):
        history = " ".join(t["question"] + " " + t["answer"] for t in row["history"])
        queries = (row["question"], history + " " + row["question"], row["standalone"])
        for way, query in zip(WAYS, queries):
            ranked = index.rank(query)
            hits[way] += bool(ranked) and ranked[0] == where[gold]
    return {way: hits[way] / len(rows) for way in WAYS}


def corpus_paragraphs(source, texts):
    """Every paragraph of a source corpus (SQuAD articles split on blank lines)."""
    if source == "squad":
        return [p for t in texts.values() for p in t.split("\n\n")]
    return list(texts.values())


def report(rows):
    """Counts per split, source and reference kind, as a Markdown table."""
    counts = collections.Counter((r["split"], r["source"], r["reference"]) for r in rows)
    lines = ["| split | source | " + " | ".join(KINDS) + " | all |", "|---" * 6 + "|"]
    for split in ("dev", "test"):
        for source in ("squad", "nq", "all"):
            names = ("squad", "nq") if source == "all" else (source,)
            got = [sum(counts[(split, s, k)] for s in names) for k in KINDS]
            lines.append(f"| {split} | {source} | {' | '.join(map(str, got))} | {sum(got)} |")
    total = [sum(v for (_, _, k), v in counts.items() if k == kind) for kind in KINDS]
    shares = " | ".join(f"{n} ({100 * n / len(rows):.0f} %)" for n in total)
    lines.append(f"| all | all | {shares} | {len(rows)} |")
    turns = collections.Counter(len(r["history"]) for r in rows)
    lines.append("\nhistory turns: " + ", ".join(f"{n}: {turns[n]}" for n in sorted(turns)))
    return "\n".join(lines)


def check_files(paths):
    """(valid rows, their gold paragraphs, the loaded sources, number of bad rows);
    each problem is printed to stderr as ``file:line: id: problem``."""
    rows, golds, sources, seen, bad = [], [], {}, set(), 0
    for path in paths:
        for line_no, row in read_jsonl(path):
            row = row if isinstance(row, dict) else {"source": None}
            source = row.get("source")
            if source not in SOURCES:
                problems, paragraph = [f"source {source!r} is not squad or nq"], ""
            else:
                if source not in sources:
                    questions, texts = load_source(source)
                    split = {paragraph_key(q)[0]: q["split"] for q in questions.values()}
                    sources[source] = (questions, texts, split)
                problems, paragraph = check_row(row, *sources[source])
            if row.get("id") in seen:
                problems.append(f"duplicate id {row['id']!r}")
            seen.add(row.get("id"))
            for problem in problems:
                print(f"{path}:{line_no}: {row.get('id')}: {problem}", file=sys.stderr)
            bad += bool(problems)
            if not problems:
                rows.append(row)
                golds.append(paragraph)
    return rows, golds, sources, bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, default=FILES)
    parser.add_argument("--ambiguity", action="store_true",
                        help="also rank every corpus paragraph with BM25 for each way of asking")
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        print(f"followups_check: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        rows, golds, sources, bad = check_files(args.files)
    except (ValueError, OSError, UnicodeDecodeError) as err:
        print(f"followups_check: {err}", file=sys.stderr)
        return 1
    print(report(rows) if rows else "no valid rows")
    for source in sources if args.ambiguity else ():
        mine = [(r, g) for r, g in zip(rows, golds) if r["source"] == source]
        corpus = corpus_paragraphs(source, sources[source][1])
        shares = ambiguity([r for r, _ in mine], [g for _, g in mine], corpus)
        print(f"\nBM25 ranks the gold paragraph first ({source}, {len(mine)} rows, "
              f"{len(set(corpus))} paragraphs): "
              + ", ".join(f"{way} {100 * v:.0f} %" for way, v in shares.items()))
    print(f"\n{len(rows)} rows valid, {bad} with problems", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
