"""Reads of the knowledge base's documents for the API (run on the engine thread).

Example: ``engine.call(lambda kb: list_documents(kb, 0, 50, "*.pdf"))``.
"""
from __future__ import annotations

import json
from pathlib import Path


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
         "metadata": json.loads(r[4]), "chunks": r[5], "chars": r[6]} for r in rows]}


def get_document(kb, doc_id: str) -> dict | None:
    conn = kb.store.conn
    row = conn.execute("SELECT d.id, d.doc_id, f.path, d.title, d.metadata, d.text FROM "
                       "documents d JOIN files f ON d.file_id = f.id WHERE d.doc_id = ?",
                       (doc_id,)).fetchone()
    if row is None:
        return None
    chunks = conn.execute('SELECT id, start, "end", page, heading FROM chunks WHERE '
                          "document_id = ? ORDER BY ord", (row[0],)).fetchall()
    return {"doc_id": row[1], "source": row[2], "title": row[3], "metadata": json.loads(row[4]),
            "text": row[5], "chunks": [{"chunk_id": c[0], "start": c[1], "end": c[2],
                                        "page": c[3], "heading": c[4]} for c in chunks]}
