"""Window vectors: a chunk's paragraphs embedded apart from the chunk itself.

A 200-token chunk of a reference manual holds several options, variables or steps, and its
one vector is the average of them: a question about one of them can miss it. So each chunk
of several paragraphs also gets one vector per *window* (its paragraphs, consecutive ones
grouped while they hold at most ``WINDOW_WORDS`` words), stored with the chunk (the
``windows`` column: the vectors' float32 bytes, NULL for a chunk of one window). Dense
retrieval re-scores its nearest chunks with their windows' similarities (``rescore``): on
the 1,348 manuals-train questions the answer is in the top 3 passages read for 74.3 -> 76.0 %
(eval/RESULTS.md, "Window vectors").

Example: ``windows("a b\\n\\nc d", 24) == []``; ``windows("a " * 20 + "\\n\\n" + "b " * 20,
24)`` gives the two paragraphs.
"""
from __future__ import annotations

import re

import numpy as np

from .chunking import PARAGRAPH, WINDOW_WORDS

_PARAGRAPH = re.compile(PARAGRAPH)


def windows(text: str, limit: int = WINDOW_WORDS) -> list[str]:
    """The chunk's paragraphs, consecutive ones grouped while they hold at most ``limit``
    words together (a longer paragraph alone); none when that leaves one window."""
    out: list[str] = []
    cur: list[str] = []
    words = 0
    for para in (p.strip() for p in _PARAGRAPH.split(text)):
        if not para:
            continue
        n = len(para.split())
        if cur and words + n > limit:
            out.append("\n\n".join(cur))
            cur, words = [], 0
        cur.append(para)
        words += n
    if cur:
        out.append("\n\n".join(cur))
    return out if len(out) > 1 else []


def encode_windows(encode, texts: list[str], limit: int, batch_size: int | None = None,
                   ) -> list[bytes | None]:
    """Per chunk text, its windows' vectors as float32 bytes (None for a chunk of one
    window), embedded in one batch with ``encode`` (an embedder's ``encode``)."""
    per = [windows(t, limit) for t in texts]
    flat = [w for ws in per for w in ws]
    if not flat:
        return [None] * len(texts)
    vecs = np.asarray(encode(flat, batch_size=batch_size), np.float32)
    out: list[bytes | None] = []
    at = 0
    for ws in per:
        out.append(vecs[at:at + len(ws)].tobytes() if ws else None)
        at += len(ws)
    return out


def rescore(query: np.ndarray, pairs: list[tuple[float, int]], blobs: dict[int, bytes],
            dim: int) -> list[tuple[float, int]]:
    """``pairs`` of (chunk cosine, chunk id) scored by the mean of the chunk's own cosine and
    the best of its own and its windows' (``blobs``: chunk id -> window vectors), best
    first. (The mean rather than the best alone: a window is a few words, and alone it pulls
    in passages that mention a term in passing; eval/RESULTS.md, "Window vectors".)"""
    q = np.asarray(query, np.float32)
    out = []
    for score, cid in pairs:
        blob = blobs.get(cid)
        if blob and len(blob) % (4 * dim) == 0:  # (anything else is not ours: left out)
            best = float((np.frombuffer(blob, np.float32).reshape(-1, dim) @ q).max())
            score = (score + max(score, best)) / 2
        out.append((score, cid))
    out.sort(key=lambda p: (-p[0], p[1]))
    return out
