"""What a similarity means in this knowledge base (its similarity anchor), and how
technical its text is.

How close a question gets to the passage that answers it depends on the text's register:
the best dense cosine of an answerable question is about 0.65 over encyclopedia text and
manuals, 0.49 over forum posts, 0.42 over product reviews (eval/RESULTS.md, issue 27). So
a raw cosine threshold that suits one declines answerable questions on another. The anchor
is measured on the knowledge base itself: sentences drawn from a fixed sample of its chunks
are asked as queries, and the median of their best similarity is where "a question this
text answers" lies here. Abstention weighs a question's similarity relative to it. The
share of technical words (paths, options, calls) in chunks spread over the knowledge base
tells a manual from prose: there a factoid's answer is its sentence, the short span marked
in it (rag/pipeline.py).

Computed by `rag index` when a knowledge base is built or has grown or shrunk by a tenth
since, and stored in its manifest (an anchor measured before the technical share was
recorded gets the share added at the next change); an older knowledge base without them gets
them computed on first use (``KnowledgeBase.similarity_anchor``, ``technical_share``).

Example: ``anchor = measure(conn, embedder.encode_queries, lambda v: index.search(v, 1)[0])``
"""
from __future__ import annotations

import re

import numpy as np

SAMPLE = 200  # chunks drawn
MIN_WORDS, MAX_WORDS = 6, 30  # a pseudo-question's length
RECOMPUTE_SHARE = 0.1  # measured again when the chunk count changed by this share
WHOLE = 0.9  # a sampled sentence this share of its chunk's characters is the chunk itself
# the anchor where most sampled sentences are whole chunks: the median of the eight dev
# knowledge bases' anchors the abstention rule was fitted over (0.40-0.68; eval/RESULTS.md)
DEFAULT_ANCHOR = 0.63
_SENTENCE = re.compile(r"(?<=[.!?。！？])\s+|\n+")
# a path or file name ("/etc/x", "~/.rc", "debian/patches/", "foo.txt", "os.path"), an option
# ("--force", "-f"), a call ("print(", "f(x)"), an identifier or markup ("a_b", "x=1", "<b>",
# "{...}", "`x`", "$HOME"); not prose's "e.g.", "U.S.", "3.5", "$5", "and/or", "[1]"
_TECHNICAL = re.compile(r"[_=<>{}\\~`]|(^|[\s(])/\w|\w/\w+/|[a-z]\.[a-z]{2,4}\b|^-{1,2}[a-z]"
                        r"|[a-z]\(|\$[A-Za-z{(]")


def spread_chunks(conn, n: int = SAMPLE) -> list[str]:
    """The text of up to ``n`` chunks spread evenly over the id range: ``n`` index lookups,
    cheap at any size (``pseudo_questions``' hashed sample sorts every chunk)."""
    lo, hi = conn.execute("SELECT min(id), max(id) FROM chunks").fetchone()
    if lo is None:
        return []
    out, seen = [], set()
    for i in range(n):
        row = conn.execute("SELECT id, text FROM chunks WHERE id >= ? ORDER BY id LIMIT 1",
                           (lo + (hi - lo) * i // max(1, n - 1),)).fetchone()
        if row and row[0] not in seen:
            seen.add(row[0])
            out.append(row[1])
    return out


def technical_share(texts: list[str]) -> float:
    """The share of words that are paths, options, calls, identifiers or markup (``~/.rc``,
    ``--force``, ``print(f)``, ``a_b``): under 0.01 in encyclopedia text and product
    reviews, 0.02-0.06 in manuals, FAQs, READMEs and changelogs (eval/RESULTS.md, issue 22)."""
    tokens = [w for t in texts for w in t.split()]
    return sum(bool(_TECHNICAL.search(w)) for w in tokens) / len(tokens) if tokens else 0.0


def measure_technical(conn, n: int = SAMPLE) -> float | None:
    """The technical share of ``n`` chunks spread over the knowledge base on ``conn``,
    rounded as stored in the manifest; None when it holds no chunk."""
    texts = spread_chunks(conn, n)
    return round(technical_share(texts), 4) if texts else None


def pseudo_questions(conn, n: int = SAMPLE) -> list[str]:
    """A sentence of 6-30 words from each of ``n`` chunks chosen by a fixed hash of their
    ids (the same chunks on every run); the middle such sentence of each chunk."""
    return [s for s, _ in _sample(conn, n)]


def _sample(conn, n: int) -> list[tuple[str, bool]]:
    """``pseudo_questions`` with, for each, whether it is (nearly) its whole chunk."""
    rows = conn.execute("SELECT text FROM chunks ORDER BY (id * 2654435761) % 4294967291, id "
                        "LIMIT ?", (n,)).fetchall()
    out = []
    for (text,) in rows:
        fits = [s.strip() for s in _SENTENCE.split(text)
                if MIN_WORDS <= len(s.split()) <= MAX_WORDS]
        if not fits and text.strip():  # CJK text has no spaces: a clause of 15-80 characters
            fits = [s.strip() for s in _SENTENCE.split(text) if 15 <= len(s.strip()) <= 80]
        if fits:
            s = fits[len(fits) // 2]
            out.append((s, len(s) >= WHOLE * len(text.strip())))
    return out


def measure(conn, encode_queries, best_scores, n: int = SAMPLE) -> dict | None:
    """The anchor of the knowledge base on ``conn``: ``encode_queries(texts)`` embeds as
    questions are embedded, ``best_scores(vectors)`` gives each one's best similarity to
    the knowledge base. None when it holds no usable sentence.

    A sentence that is its whole chunk finds itself (similarity ~1.0), which says nothing
    about how a question meets the passage answering it: where most sampled sentences are
    (a folder of one-line notes), the median would be ~1.0 and every question would read
    as far from the text, so ``DEFAULT_ANCHOR`` stands in."""
    sample = _sample(conn, n)
    if not sample:
        return None
    best = np.asarray(best_scores(encode_queries([s for s, _ in sample])), dtype=np.float64)
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    whole = sum(w for _, w in sample)
    median, method = float(np.median(best)), (f"median best cosine of {len(sample)} chunk "
                                              "sentences asked as questions")
    if 2 * whole > len(sample):
        median, method = DEFAULT_ANCHOR, (f"default: {whole} of {len(sample)} sampled "
                                          "sentences are their whole chunk")
    return {"median": round(median, 4),
            "p10": round(float(np.percentile(best, 10)), 4), "n": len(sample),
            "whole": int(whole), "chunks": int(chunks), "method": method,
            "technical": measure_technical(conn, n)}


def before_whole(anchor: dict) -> bool:
    """A small knowledge base's anchor measured before whole-chunk sentences were told apart
    (``measure``): possibly its self-similarity, so measured again."""
    return "whole" not in anchor and anchor.get("chunks", 0) < SAMPLE


def stale(anchor: dict | None, chunks: int) -> bool:
    """Whether an anchor needs measuring again for a knowledge base of ``chunks`` chunks
    (an emptied one: dropping it)."""
    if chunks == 0:
        return bool(anchor)
    if not anchor:
        return True
    if before_whole(anchor):
        return True
    return abs(chunks - anchor.get("chunks", 0)) > RECOMPUTE_SHARE * max(anchor.get("chunks", 1), 1)
