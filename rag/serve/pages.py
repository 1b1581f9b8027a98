"""A cited PDF page for the web page: rendered by the server from the stored PDF (PDFium,
cached), and the boxes on it of the cited span and the answer, from the character positions
stored when the PDF was indexed (``knowledge.pagemap``).

Routes (``add_page_routes``), kept apart from the document routes so that a document id with
slashes never meets them:
- ``GET /v1/page?doc=ID&n=PAGE[&start=&end=&answer_start=&answer_end=]``: the page's label,
  size in points, page count, and ``boxes`` ({"cited": [[x0, top, x1, bottom], ...],
  "answer": [...]}, points from the page's top-left); 404 for a page of no PDF.
- ``GET /v1/page.png?doc=ID&n=PAGE``: the page as an image (longer side at most 1600 px).

Example: ``view = page_view(kb, "manual.pdf", 3, {"cited": (120, 480)})``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from knowledge.pagemap import boxes, decode

MAX_PIXELS = 1600  # the longer side of a rendered page
CACHED = 48  # rendered pages kept in memory
DRAW_SECONDS = 10.0  # a page that takes longer to draw is not shown (a hostile PDF)
MAX_PAGES = 1_000_000  # (a page number beyond: 422, never an integer SQLite cannot hold)
_cache: OrderedDict = OrderedDict()
_cache_lock = threading.Lock()


class PageUnavailable(Exception):
    """The page cannot be shown (``status`` 404, 409 or 503); the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def page_view(kb, doc_id: str, page: int, spans: dict) -> dict:
    """The page's label, size and the boxes of each named (start, end) span on it."""
    info = kb.page(doc_id, page)
    if info is None:
        raise PageUnavailable(404, f"no PDF page {page} of {doc_id!r} in the knowledge base")
    pieces = decode(info["layout"])
    count = kb.store.conn.execute(
        "SELECT count(*) FROM pages p JOIN documents d ON p.document_id = d.id "
        "WHERE d.doc_id = ?", (doc_id,)).fetchone()[0]
    return {"doc_id": doc_id, "page": page, "label": info["label"], "pages": count,
            "width": info["width"], "height": info["height"],
            "boxes": {name: [[round(v, 1) for v in box] for box in boxes(pieces, a, b)]
                      for name, (a, b) in spans.items()}}


def pdf_file(kb, doc_id: str) -> Path:
    """The PDF a document was indexed from, as long as it is unchanged on disk."""
    row = kb.store.conn.execute(
        "SELECT f.root, f.path, f.size, f.mtime_ns FROM documents d JOIN files f ON "
        "d.file_id = f.id WHERE d.doc_id = ?", (doc_id,)).fetchone()
    if row is None or not row[1].lower().endswith(".pdf"):
        raise PageUnavailable(404, f"no PDF {doc_id!r} in the knowledge base")
    path = Path(row[0], row[1])
    try:
        st = path.stat()
    except OSError:
        raise PageUnavailable(404, f"{row[1]} is no longer on disk; index it again") from None
    if (st.st_size, st.st_mtime_ns) != (row[2], row[3]):
        raise PageUnavailable(409, f"{row[1]} changed since it was indexed; index it again "
                                   "to see its pages")
    return path


def render(path: Path, page: int, parser) -> bytes:
    """PNG bytes of a page of the PDF at ``path`` (cached by file, size, time and page),
    drawn by one of ``parser``'s worker processes within ``DRAW_SECONDS``: a hostile page
    can take minutes to draw, and would hold PDFium, every other page view with it."""
    from knowledge.errors import LoadError
    from knowledge.parsing import Busy

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, page)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        png = parser.draw(path, page, MAX_PIXELS, DRAW_SECONDS)
    except Busy:
        raise PageUnavailable(503, "the server is busy reading files; try the page again in "
                                   "a moment") from None
    except TimeoutError:
        raise PageUnavailable(409, f"page {page} of {path.name} took longer than "
                                   f"{DRAW_SECONDS:g} s to draw; not shown") from None
    except IndexError:
        raise PageUnavailable(404, f"{path.name} has no page {page}") from None
    except LoadError as err:
        raise PageUnavailable(409, f"{path.name}: {err}") from None
    with _cache_lock:
        _cache[key] = png
        while len(_cache) > CACHED:
            _cache.popitem(last=False)
    return png


def add_page_routes(app, engine, wait, parser) -> None:
    """Register ``/v1/page`` and ``/v1/page.png`` on a `rag serve` application (pages drawn
    by ``parser``, a ``ParsePool``)."""
    from fastapi import HTTPException, Query
    from fastapi.responses import Response
    from starlette.concurrency import run_in_threadpool

    from .schemas import MAX_OFFSET

    def page():  # (a Query each: FastAPI names a parameter on its Query object)
        return Query(..., ge=1, le=MAX_PAGES)

    def offset():
        return Query(None, ge=0, le=MAX_OFFSET)

    @app.get("/v1/page")
    async def pdf_page(doc: str = Query(..., max_length=4096), n: int = page(),
                       start: int | None = offset(), end: int | None = offset(),
                       answer_start: int | None = offset(), answer_end: int | None = offset()):
        """A PDF page's label and size, and where the cited span and the answer are on it."""
        spans = {name: (a, b) for name, a, b in (("cited", start, end),
                                                 ("answer", answer_start, answer_end))
                 if a is not None and b is not None and a < b}
        try:
            return await wait(engine.call(lambda kb: page_view(kb, doc, n, spans)))
        except PageUnavailable as err:
            raise HTTPException(err.status, str(err)) from None

    @app.get("/v1/page.png")
    async def pdf_page_image(doc: str = Query(..., max_length=4096), n: int = page()):
        """A PDF page as a PNG image, rendered from the indexed file."""
        try:
            path = await wait(engine.call(lambda kb: pdf_file(kb, doc)))
            png = await run_in_threadpool(render, path, n, parser)
        except PageUnavailable as err:
            raise HTTPException(err.status, str(err)) from None
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "private, max-age=600"})
