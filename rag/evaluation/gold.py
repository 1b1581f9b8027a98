"""A QA set's gold documents and passages in a knowledge base, and the retriever that
gives the reader only those (`rag eval --retrieval gold`: reader quality without retrieval
errors).

Example: ``hit = gold_passage(kb, question)``.
"""
from __future__ import annotations

from knowledge.kb import KnowledgeBase
from knowledge.store import TABULAR_SUFFIXES
from knowledge.types import Hit

from ..retrieval import Retrieved
from .metrics import answer_in_text, normalize_answer


def gold_documents(conn, gold_ids: list[str]) -> list[int]:
    """Row ids of the documents a QA set's gold ids name (see ``metrics.is_gold``): the
    document of that id, or the JSONL/CSV row ``<file>#<that id>`` of any tabular file."""
    if not gold_ids:
        return []
    tabular = [r[0] for r in conn.execute(
        "SELECT DISTINCT path FROM files WHERE " + " OR ".join(
            "path LIKE ?" for _ in TABULAR_SUFFIXES), [f"%{x}" for x in TABULAR_SUFFIXES])]
    wanted = list(gold_ids) + [f"{path}#{g}" for path in tabular for g in gold_ids]
    rows = set()
    for i in range(0, len(wanted), 500):  # (SQLite's variable limit)
        part = wanted[i:i + 500]
        rows |= {r[0] for r in conn.execute(
            f"SELECT id FROM documents WHERE doc_id IN ({','.join('?' * len(part))})", part)}
    return sorted(rows)


def gold_passage(kb: KnowledgeBase, q) -> Hit | None:
    """A chunk of a gold document that contains an answer: the one holding most of the
    question's reference text where the QA set quotes one (a manual names a whole book as
    its gold document, where an answer like ``$RANDOM`` occurs in many chunks), else the
    one nearest the known context, else the first."""
    if not q.gold_ids:
        return None
    docs = gold_documents(kb.store.conn, list(q.gold_ids))
    marks = ",".join("?" * len(docs))
    rows = kb.store.conn.execute(
        f'SELECT c.id, c.start, c."end", c.text FROM chunks c WHERE c.document_id IN ({marks}) '
        f"ORDER BY c.id", docs).fetchall() if docs else []
    target = q.extra.get("context_start")
    reference = _pairs(q.extra.get("reference") or "")
    best = None
    for cid, start, end, text in rows:
        if answer_in_text(list(q.answers), text):
            held = len(reference & _pairs(text)) if reference else 0
            dist = abs(start - target) if target is not None else 0
            if best is None or (-held, dist) < best[0]:
                best = ((-held, dist), cid)
    return kb.fetch([(0.0, best[1])])[0] if best else None


def _pairs(text: str) -> set[tuple[str, str]]:
    """The text's adjacent word pairs, normalised as answers are."""
    words = normalize_answer(text).split()
    return set(zip(words, words[1:]))


class GoldRetriever:
    """Stands in for a Retriever to give the reader only each question's gold passage
    (reader quality without retrieval errors): ``rag eval --retrieval gold``. Each question
    still gets its best dense similarity to the knowledge base, the signal `rag ask` reads, so
    the reader's abstention rule decides as it would there (not a fallback threshold)."""

    mode = "gold"

    def __init__(self, kb: KnowledgeBase, questions):
        self.kb = kb
        self.gold = {}
        for q in questions:
            if q.question not in self.gold:
                hit = gold_passage(kb, q)
                self.gold[q.question] = [hit] if hit else []

    def settings(self) -> dict:
        return {"mode": "gold"}

    def retrieve_many(self, queries: list[str], k: int = 1, filters=None) -> list[list[Hit]]:
        return [self.gold.get(q, []) for q in queries]

    def search_many(self, queries: list[str], k: int = 1, filters=None) -> Retrieved:
        with self.kb.snapshot():
            _, similarity = self.kb.dense_search(self.kb.embedder.encode_queries(list(queries)), 1)
        return Retrieved(self.retrieve_many(queries, k), similarity)
