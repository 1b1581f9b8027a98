"""Reads of the knowledge base's documents for the API (run on the engine thread).

Example: ``engine.call(lambda kb: list_documents(kb, 0, 50, "*.pdf"))``.
"""
from __future__ import annotations

import json
from pathlib import Path

from knowledge.store import metadata_of


def documents_of(kb, root: Path, names: list[str]) -> list[str]:
    if not names:
        return []
    marks = ",".join("?" * len(names))
    rows = kb.store.conn.execute(
        f"SELECT d.doc_id FROM documents d JOIN files f ON d.file_id = f.id WHERE f.root = ? "
        f"AND f.path IN ({marks}) ORDER BY d.doc_id", [str(root.resolve()), *names])
    return [r[0] for r in rows]


def list_documents(kb, offset: int, limit: int, glob: str | None) -> dict:
    where, args = "", []
    if glob:
        where, args = "WHERE d.doc_id GLOB ? OR f.path GLOB ?", [glob, glob]
    conn = kb.store.conn
    total = conn.execute(f"SELECT count(*) FROM documents d JOIN files f ON d.file_id = f.id "
                         f"{where}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT d.doc_id, f.path, d.title, d.indexed_at, d.metadata, "
        f"(SELECT count(*) FROM chunks c WHERE c.document_id = d.id), length(d.text) "
        f"FROM documents d JOIN files f ON d.file_id = f.id {where} "
        f"ORDER BY d.doc_id LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return {"total": total, "offset": offset, "limit": limit, "documents": [
        {"doc_id": r[0], "source": r[1], "title": r[2], "indexed_at": r[3],
         "metadata": metadata_of(r[4]), "chunks": r[5], "chars": r[6]} for r in rows]}


def get_document(kb, doc_id: str) -> dict | None:
    conn = kb.store.conn
    row = conn.execute("SELECT d.id, d.doc_id, f.path, d.title, d.metadata, d.text FROM "
                       "documents d JOIN files f ON d.file_id = f.id WHERE d.doc_id = ?",
                       (doc_id,)).fetchone()
    if row is None:
        return None
    chunks = conn.execute('SELECT id, start, "end", page, heading FROM chunks WHERE '
                          "document_id = ? ORDER BY ord", (row[0],)).fetchall()
    return {"doc_id": row[1], "source": row[2], "title": row[3], "metadata": metadata_of(row[4]),
            "text": row[5], "chunks": [{"chunk_id": c[0], "start": c[1], "end": c[2],
                                        "page": c[3], "heading": c[4]} for c in chunks]}


MAX_READ_CHARS = 20_000  # one read_document call (an agent reads on with next_start)
_SCAN_IDS = 20_000  # document ids compared when suggesting the closest ones (bounded)


def closest_documents(kb, name: str, n: int = 5) -> list[str]:
    """The ids most like ``name`` (a mistyped id, a glob without its wildcards): ids that
    hold its last part, then the closest by spelling among a bounded scan."""
    import difflib

    conn = kb.store.conn
    plain = name.replace("*", "").replace("?", "").replace("[", "").replace("]", "")
    tail = plain.rstrip("/").rsplit("/", 1)[-1]
    holding = [r[0] for r in conn.execute(
        "SELECT doc_id FROM documents WHERE instr(lower(doc_id), lower(?)) > 0 ORDER BY "
        "length(doc_id), doc_id LIMIT ?", (tail, n))] if tail else []
    ids = [r[0] for r in conn.execute("SELECT doc_id FROM documents ORDER BY doc_id LIMIT ?",
                                      (_SCAN_IDS,))]
    near = difflib.get_close_matches(plain, ids, n, cutoff=0.4)
    return list(dict.fromkeys(holding + near + ids))[:n]


def unknown_document(kb, doc_id: str) -> str:
    """The message for a document id that is not there, naming the closest that are."""
    total = kb.store.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
    if not total:
        return f"no document {doc_id!r}: the knowledge base is empty"
    near = ", ".join(closest_documents(kb, doc_id))
    return (f"no document {doc_id!r} in the knowledge base ({total} documents); the closest "
            f"ids: {near} (list_documents pages through them all)")


def unmatched(kb, filters) -> str | None:
    """``unmatched_filters`` for retrieval's ``Filters`` (``rag ask``/``search``, the API)."""
    return unmatched_filters(kb, filters.path_glob, dict(filters.metadata))


def unmatched_filters(kb, path: str | None, where: dict[str, str]) -> str | None:
    """Why filters match no document, saying what exists (the closest ids to a path glob,
    the metadata keys, a key's values); None when some document matches them."""
    if len(kb.chunk_ids_where(path, where)):
        return None
    conn = kb.store.conn
    if path and not len(kb.chunk_ids_where(path, None)):
        return (f"no document matches path {path!r}; the closest ids: "
                f"{', '.join(closest_documents(kb, path)) or '(none: the knowledge base is empty)'}")
    for key, value in where.items():
        if not len(kb.chunk_ids_where(None, {key: value})):
            values = [r[0] for r in conn.execute(
                "SELECT DISTINCT CAST(coalesce(t.value, m.value) AS TEXT) FROM documents d, "
                "json_each(CASE WHEN json_valid(d.metadata) THEN d.metadata ELSE '{}' END) m "
                "LEFT JOIN json_each(CASE m.type WHEN 'array' THEN m.value ELSE '[]' END) t "
                "WHERE m.key = ? LIMIT 20", (key,))]
            if values:
                return (f"no document has metadata {key}={value!r}; its values include: "
                        f"{', '.join(map(repr, values))}")
            keys = [r[0] for r in conn.execute(
                "SELECT DISTINCT m.key FROM documents d, json_each(CASE WHEN json_valid("
                "d.metadata) THEN d.metadata ELSE '{}' END) m LIMIT 50")]
            return (f"no document has the metadata key {key!r}; the keys are: "
                    f"{', '.join(keys) or '(none: no document has metadata)'}")
    return (f"no document matches all of the filters together (path {path!r}, where "
            f"{where}); each matches some alone")


def read_document(kb, doc_id: str, start: int | None = None, end: int | None = None,
                  first_page: int | None = None, last_page: int | None = None,
                  max_chars: int = MAX_READ_CHARS) -> dict:
    """Part of a document's text: characters [start, end) or pages first..last (1-based,
    inclusive), at most ``max_chars`` (``next_start`` says where the rest begins). A
    LookupError says what is wrong and what exists."""
    row = kb.store.conn.execute(
        "SELECT d.doc_id, f.path, d.title, d.text, d.page_starts FROM documents d JOIN files f "
        "ON d.file_id = f.id WHERE d.doc_id = ?", (doc_id,)).fetchone()
    if row is None:
        raise LookupError(unknown_document(kb, doc_id))
    text, starts = row[3], json.loads(row[4] or "[]")
    if first_page is not None or last_page is not None:
        if start is not None or end is not None:
            raise LookupError("give a character range (start, end) or a page range "
                              "(first_page, last_page), not both")
        if not starts:
            raise LookupError(f"{doc_id!r} has no pages (only PDFs have); read it by "
                              f"characters: 0 to {len(text)}")
        first, last = first_page or 1, last_page or first_page or len(starts)
        if not 1 <= first <= last <= len(starts):
            raise LookupError(f"pages {first}-{last} are not in {doc_id!r}, which has pages "
                              f"1-{len(starts)}")
        start, end = starts[first - 1], starts[last] if last < len(starts) else len(text)
    start = 0 if start is None else start
    end = len(text) if end is None else end
    if start > end:
        raise LookupError(f"start {start} is after end {end}: give start <= end")
    if not 0 <= start <= end <= len(text):
        raise LookupError(f"characters {start}-{end} are not in {doc_id!r}, which has "
                          f"{len(text)} (0-{len(text)})")
    cut = min(end, start + max_chars)
    page = (lambda at: sum(1 for s in starts if s <= at) or None) if starts else (lambda at: None)
    return {"doc_id": row[0], "source": row[1], "title": row[2], "chars": len(text),
            "pages": len(starts) or None, "start": start, "end": cut,
            "first_page": page(start), "last_page": page(max(start, cut - 1)),
            "text": text[start:cut], "next_start": cut if cut < end else None}
