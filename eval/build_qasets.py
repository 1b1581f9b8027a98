#!/usr/bin/env python3
"""Build the open-domain QA evaluation sets in ``eval/data/`` from the bigbench 1.0.0 sdist.

Command (stdlib only, about half a minute)::

    python3 eval/build_qasets.py --archive PATH/bigbench-1.0.0.tar.gz

Without ``--archive`` the sdist is fetched into a temporary directory with
``python -m pip download --no-deps --no-binary :all: bigbench==1.0.0`` (about 360 MB).

Exactly two members of the archive are read, straight out of the tar.gz (nothing is
extracted to disk):

* ``bigbench/benchmark_tasks/squad_shifts/squaddev_v1.1.json`` -- SQuAD v1.1 dev.  The
  other ``squad_shifts`` files (and the CoQA task) are held-out sets and are never read.
* ``bigbench/benchmark_tasks/contextual_parametric_knowledge_conflicts/task.json`` --
  17,528 Natural Questions questions, each with a Wikipedia paragraph in which every
  occurrence of the answer was replaced by a fake entity (``target``, scored 1); the real
  answer is the option scored 0.  Replacing the fake entity by the real answer restores the
  paragraph.

Outputs (deterministic: sorted JSON keys, gzip level 9, mtime 0, no file name):

* ``squad-dev-open.qa.jsonl.gz`` -- the 10,565 SQuAD dev questions over the bundled corpus
  ``corpora/squad-dev`` (which must already exist; it is read, checked, never written).
  Split by article: ``random.Random(0).sample`` of 10 of the 48 articles is "test".
* ``nq-para-open.corpus.jsonl.gz`` -- the restored NQ paragraphs, deduplicated by text.
* ``nq-para-open.qa.jsonl.gz`` -- the 17,528 NQ questions.  Split by groups of
  paragraphs (union-find), joined when the paragraphs are near-duplicates (word 5-gram
  shingle Jaccard >= 0.2 or containment >= 0.5) or when they carry questions with the
  same normalized answer and the same or a paraphrased normalized question (token
  Jaccard >= 0.5).  Groups are shuffled with ``random.Random(0)`` and moved whole to
  "test" until 20 % of the paragraphs are test.

See ``eval/data/README.md`` for the record formats.
"""

import argparse
import collections
import gzip
import hashlib
import json
import math
import os
import random
import re
import string
import sys
import tarfile
import tempfile

PACKAGE = "bigbench==1.0.0"
ARCHIVE_NAME = "bigbench-1.0.0.tar.gz"
TASKS = "bigbench-1.0.0/bigbench/benchmark_tasks/"
SQUAD_MEMBER = TASKS + "squad_shifts/squaddev_v1.1.json"
NQ_MEMBER = TASKS + "contextual_parametric_knowledge_conflicts/task.json"
PARAGRAPH_SEP = "\n\n"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_CORPUS = os.path.join(ROOT, "corpora", "squad-dev", "articles.jsonl.gz")
DEFAULT_OUT_DIR = os.path.join(HERE, "data")

sys.path.insert(0, os.path.join(ROOT, "corpora"))
from build_squad_dev import download_archive, write_jsonl_gz  # noqa: E402  (shared helpers)

SEED = 0
SQUAD_TEST_ARTICLES = 10       # of 48, ~1/5
NQ_TEST_FRACTION = 0.2         # of the paragraphs
SHINGLE = 5                    # words per shingle
NEAR_DUP_JACCARD = 0.2         # shingle-set Jaccard joining two paragraphs
NEAR_DUP_CONTAINMENT = 0.5     # |A & B| / min(|A|, |B|) joining two paragraphs
CONTAINMENT_MAX_DF = 50        # shingles in more paragraphs than this are boilerplate
QUESTION_JACCARD = 0.5         # token Jaccard of two same-answer questions joining them

NQ_INPUT = re.compile(r"\A\nQuestion: (.*?)\nContext: (.*)\Z", re.S)


# --------------------------------------------------------------------------- input

def read_members(archive_path, names):
    """Return {name: parsed JSON} for exactly the named members of the tar.gz."""
    wanted, found = set(names), {}
    with tarfile.open(archive_path, "r:gz") as tar:
        for member in tar:
            if member.name in wanted:
                handle = tar.extractfile(member)
                if handle is None:
                    raise SystemExit(f"{member.name} in {archive_path} is not a regular file")
                with handle:
                    found[member.name] = json.load(handle)
                if len(found) == len(wanted):
                    break
    missing = wanted - set(found)
    if missing:
        raise SystemExit(f"not in {archive_path}: {sorted(missing)}")
    return found


def read_jsonl_gz(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# --------------------------------------------------------------------------- helpers

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text):
    """SQuAD answer normalization: lowercase, no punctuation/articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def distinct(items):
    return list(dict.fromkeys(items))


class UnionFind:
    def __init__(self, n):
        self.parent = list(range(n))

    def find(self, x):
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # smaller index is the root: the result does not depend on edge order
            self.parent[max(ra, rb)] = min(ra, rb)
            return True
        return False


# --------------------------------------------------------------------------- SQuAD

def build_squad(squad, corpus):
    """Return the SQuAD QA records, checked against the bundled corpus."""
    if squad.get("version") != "1.1" or not isinstance(squad.get("data"), list):
        raise SystemExit("unexpected SQuAD layout")
    articles = squad["data"]
    by_id = {row["id"]: row for row in corpus}
    if [a["title"] for a in articles] != [row["id"] for row in corpus]:
        raise SystemExit("corpora/squad-dev does not list the SQuAD dev articles in order")

    ids = [a["title"] for a in articles]
    test = set(random.Random(SEED).sample(ids, SQUAD_TEST_ARTICLES))

    records, bad_offsets = [], 0
    for article in articles:
        slug = article["title"]
        text = by_id[slug]["text"]
        pos = 0
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            start, end = pos, pos + len(context)
            if text[start:end] != context:
                raise SystemExit(f"{slug}: paragraph offsets do not match the corpus text")
            pos = end + len(PARAGRAPH_SEP)
            for qa in paragraph["qas"]:
                answers_all = [a["text"] for a in qa["answers"]]
                starts = [a["answer_start"] for a in qa["answers"]]
                bad_offsets += sum(context[s:s + len(a)] != a
                                   for a, s in zip(answers_all, starts))
                records.append({
                    "id": qa["id"],
                    "question": qa["question"].strip(),
                    "answers": distinct(answers_all),
                    "answers_all": answers_all,
                    "answer_starts": starts,
                    "gold_ids": [slug],
                    "split": "test" if slug in test else "train",
                    "context_start": start,
                    "context_end": end,
                })
        if pos != len(text) + len(PARAGRAPH_SEP):
            raise SystemExit(f"{slug}: corpus text has more than the article's paragraphs")
    if len({r["id"] for r in records}) != len(records):
        raise SystemExit("duplicate SQuAD question ids")
    return records, sorted(test), bad_offsets


# --------------------------------------------------------------------------- NQ

def parse_nq(task):
    """Return [(question, answer, fake, paragraph_with_fake)] in task order."""
    rows = []
    for i, ex in enumerate(task["examples"]):
        match = NQ_INPUT.match(ex["input"])
        if not match:
            raise SystemExit(f"NQ example {i}: unexpected input layout")
        question, context = match.groups()
        fake, scores = ex["target"], ex["target_scores"]
        if scores.get(fake) == 1:
            real = [k for k, v in scores.items() if v == 0]
        elif scores == {fake: 0}:
            real = [fake]       # the "fake" entity is the real answer: nothing was swapped
        else:
            real = []
        if len(real) != 1 or fake not in context:
            raise SystemExit(f"NQ example {i}: unexpected target/target_scores {scores!r}")
        rows.append((question.strip(), real[0], fake, context))
    return rows


def shingles(text):
    words = text.lower().split()
    if len(words) <= SHINGLE:
        return {" ".join(words)}
    return {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def near_duplicate_pairs(texts):
    """Pairs (i, j), i < j, with shingle Jaccard >= NEAR_DUP_JACCARD or containment
    >= NEAR_DUP_CONTAINMENT.

    Candidates come from two indexes: the prefix filter for Jaccard (shingles ordered
    by document frequency; two sets with Jaccard >= t must share one of the first
    ``|s| - ceil(t |s|) + 1`` shingles of each, so no Jaccard pair is missed) and an
    inverted index over the non-boilerplate shingles for containment.  Every candidate
    is then scored exactly.
    """
    sets = [shingles(t) for t in texts]
    df = collections.Counter(s for ss in sets for s in ss)
    candidates = set()
    prefix_index = collections.defaultdict(list)
    rare_index = collections.defaultdict(list)
    for i, ss in enumerate(sets):
        ordered = sorted(ss, key=lambda s: (df[s], s))
        keep = len(ordered) - math.ceil(NEAR_DUP_JACCARD * len(ordered)) + 1
        for s in ordered[:keep]:
            candidates.update((j, i) for j in prefix_index[s])
            prefix_index[s].append(i)
        for s in ordered:
            if df[s] > CONTAINMENT_MAX_DF:
                break
            if df[s] > 1:
                candidates.update((j, i) for j in rare_index[s])
                rare_index[s].append(i)
    pairs = []
    for i, j in sorted(candidates):
        a, b = sets[i], sets[j]
        inter = len(a & b)
        if (inter >= NEAR_DUP_JACCARD * (len(a) + len(b) - inter)
                or inter >= NEAR_DUP_CONTAINMENT * min(len(a), len(b))):
            pairs.append((i, j))
    return pairs


def build_nq(task):
    rows = parse_nq(task)

    # restore the paragraphs, dedupe by exact text in first-appearance order
    texts, index_of, question_par = [], {}, []
    for question, real, fake, context in rows:
        text = context.replace(fake, real)
        if real not in text:
            raise SystemExit(f"restored answer {real!r} not in its paragraph")
        if text not in index_of:
            index_of[text] = len(texts)
            texts.append(text)
        question_par.append(index_of[text])
    ids = ["nq-" + hashlib.sha1(t.encode("utf-8")).hexdigest()[:12] for t in texts]
    if len(set(ids)) != len(ids):
        raise SystemExit("sha1 prefix collision among NQ paragraph ids")

    # group paragraphs that would leak across a split
    uf = UnionFind(len(texts))
    near = near_duplicate_pairs(texts)
    joins = collections.Counter()
    for i, j in near:
        joins["near-duplicate paragraphs"] += uf.union(i, j)
    norm_q = [normalize(q) for q, _, _, _ in rows]
    norm_a = [normalize(a) for _, a, _, _ in rows]
    by_answer = collections.defaultdict(list)
    for k, answer in enumerate(norm_a):
        by_answer[answer].append(k)
    for members in by_answer.values():
        tokens = [set(norm_q[k].split()) for k in members]
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                kx, ky = members[x], members[y]
                if norm_q[kx] == norm_q[ky]:
                    joins["same answer, same question"] += uf.union(
                        question_par[kx], question_par[ky])
                else:
                    tx, ty = tokens[x], tokens[y]
                    if len(tx & ty) >= QUESTION_JACCARD * len(tx | ty):
                        joins["same answer, paraphrased question"] += uf.union(
                            question_par[kx], question_par[ky])

    groups = collections.defaultdict(list)
    for p in range(len(texts)):
        groups[uf.find(p)].append(p)
    order = sorted(groups)                  # by first paragraph: deterministic
    random.Random(SEED).shuffle(order)
    test, target = set(), NQ_TEST_FRACTION * len(texts)
    for root in order:
        if len(test) >= target:
            break
        test.update(groups[root])

    split = ["test" if question_par[k] in test else "train" for k in range(len(rows))]
    train_answers = {a for a, s in zip(norm_a, split) if s == "train"}
    qa = [{
        "id": f"nq-q{k}",
        "question": question,
        "answers": [real],
        "gold_ids": [ids[question_par[k]]],
        "split": split[k],
        "answer_in_train": norm_a[k] in train_answers,
    } for k, (question, real, _, _) in enumerate(rows)]
    corpus = [{"id": i, "title": "", "text": t} for i, t in zip(ids, texts)]

    questions_per_group = collections.Counter(uf.find(question_par[k]) for k in range(len(rows)))
    stats = {
        "paragraphs": len(texts),
        "near_duplicate_pairs": len(near),
        "joins": dict(joins),
        "groups": len(groups),
        "largest_group_paragraphs": max(len(g) for g in groups.values()),
        "largest_group_questions": max(questions_per_group.values()),
        "test_paragraphs": len(test),
        "fake_replaced_more_than_once": sum(c.count(f) > 1 for _, r, f, c in rows if r != f),
        "fake_equals_answer": sum(r == f for _, r, f, _ in rows),
    }
    return corpus, qa, stats


# --------------------------------------------------------------------------- main

def split_counts(records):
    return dict(sorted(collections.Counter(r["split"] for r in records).items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", help=f"path to {ARCHIVE_NAME} "
                        "(default: download it with pip into a temp dir)")
    parser.add_argument("--corpus", default=DEFAULT_CORPUS,
                        help="bundled SQuAD dev corpus (read only; default: %(default)s)")
    parser.add_argument("--out-dir", default=DEFAULT_OUT_DIR,
                        help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)

    names = [SQUAD_MEMBER, NQ_MEMBER]
    if args.archive:
        data = read_members(args.archive, names)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            data = read_members(download_archive(tmp), names)

    squad_qa, squad_test, bad_offsets = build_squad(data[SQUAD_MEMBER], read_jsonl_gz(args.corpus))
    nq_corpus, nq_qa, stats = build_nq(data[NQ_MEMBER])

    outputs = {
        "squad-dev-open.qa.jsonl.gz": squad_qa,
        "nq-para-open.corpus.jsonl.gz": nq_corpus,
        "nq-para-open.qa.jsonl.gz": nq_qa,
    }
    for name, records in outputs.items():
        write_jsonl_gz(records, os.path.join(args.out_dir, name))

    test_nq = [r for r in nq_qa if r["split"] == "test"]
    print(f"squad-dev-open: {len(squad_qa)} questions {split_counts(squad_qa)}; "
          f"test articles: {', '.join(squad_test)}; "
          f"{bad_offsets} answer_start offsets that do not point at their answer text (as in SQuAD)")
    print(f"nq-para-open: {len(nq_qa)} questions {split_counts(nq_qa)}, "
          f"{stats['paragraphs']} paragraphs ({stats['test_paragraphs']} test)")
    print("nq-para-open grouping: " + json.dumps(stats, sort_keys=True))
    print(f"nq-para-open: test questions whose answer is also a train answer: "
          f"{sum(r['answer_in_train'] for r in test_nq)} of {len(test_nq)}")
    for name in outputs:
        path = os.path.join(args.out_dir, name)
        print(f"wrote {path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
