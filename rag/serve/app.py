"""`rag serve`: an HTTP API and a web page over one knowledge base.

The application is put together here, from rooms of their own: reads go through the
engine thread (``engine.py``), uploads stream to disk bounded (``uploads.py``) and are
indexed through the `rag index` code and lock (``writer.py``, parsing in bounded worker
processes), and every request first passes the Host, origin and key rules
(``security.py``). A new API (an MCP endpoint, chat history) adds its routes under the same
rules: paths under an API prefix get the same-origin proof, and routes that write take
``Depends(require_write)``.

Example::

    rag serve --kb kb                # http://127.0.0.1:8000/  (API docs at /docs)
    curl -s localhost:8000/v1/ask -H 'content-type: application/json' \\
         -d '{"question": "Who won Super Bowl 50?"}'
"""
from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError

from knowledge.errors import KnowledgeError, LockedError, UsageError

from .chat import ChatBody, chunks, completion, conversation_of
from .documents import get_document, list_documents, unmatched
from .engine import MAX_BATCH, Engine
from .schemas import MAX_OFFSET, TEXT, AskBody, FilterBody, SearchBody
from .security import Access, Guard, require_write
from .uploads import MAX_UPLOAD_FILES, MAX_UPLOADS_IN_FLIGHT, Receiver, UploadError
from .writer import UploadRejected, Writer

WEB = Path(__file__).parent / "web"
MAX_JSON_BYTES = 256 * 1024  # a question, its options, a chat history
PARSE_WORKERS = max(2, min(4, os.cpu_count() or 1))  # (2 at least: one hostile file is one)
ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "bad_method", 408: "timeout", 409: "locked", 411: "length_required",
               413: "too_large", 415: "unsupported_media_type", 421: "misdirected",
               422: "invalid", 500: "internal", 503: "unavailable"}
_TYPE_TAG = re.compile(r"str|int|float|bool|dict|list|none|.*\[.*\]")  # (a union's members)
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "maxItems": MAX_UPLOAD_FILES,
        "items": {"type": "string", "format": "binary"}}}}}}}}


class Latencies:
    """Request counts, errors (4xx and 5xx), server errors (5xx) and latency percentiles
    per route (the last 2,000 of each)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.server_errors: Counter = Counter()
        self.recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))
        self._lock = threading.Lock()

    def add(self, route: str, ms: float, status: int) -> None:
        with self._lock:
            self.counts[route] += 1
            self.errors[route] += status >= 400
            self.server_errors[route] += status >= 500
            self.recent[route].append(ms)

    def summary(self) -> dict:
        import numpy as np

        with self._lock:
            out = {}
            for route, n in sorted(self.counts.items()):
                ms = np.array(self.recent[route])
                out[route] = {"requests": n, "errors": self.errors[route],
                              "server_errors": self.server_errors[route],
                              **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2)
                                 for q in (50, 95, 99)}}
            return out


def error(status: int, message: str, headers: dict | None = None, **extra):
    """The API's error response: ``{"error": {"code", "message", ...}}``, one line."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": {"code": ERROR_CODES.get(status, "error"),
                                   "message": message, **extra}},
                        status_code=status, headers=headers)


def create_app(kb_dir: Path, kb, reader=None, *, retrieval: str = "hybrid",
               k: int | None = None, key: str | None = None, read_key: str | None = None,
               window_ms: float = 2.0, max_batch: int = MAX_BATCH, max_file_mb: float = 50,
               load_embedder=None, allowed_hosts=(), cors_origins=(), bind: str = "127.0.0.1",
               parser=None, max_uploads_in_flight: int = MAX_UPLOADS_IN_FLIGHT,
               watch=(), log=lambda line: None):
    """The FastAPI application over the open knowledge base ``kb`` (owned by it from now
    on: the engine thread is the only one that reads it). ``key`` may do everything,
    ``read_key`` may ask, search and read; ``parser`` parses uploads (default: a
    ``knowledge.parsing.ParsePool`` of PARSE_WORKERS bounded worker processes). ``watch``:
    folders kept in sync while it runs (``log`` hears each sync)."""
    from knowledge.parsing import ParsePool

    engine = Engine(kb, reader, retrieval, k, window_ms, max_batch)
    own_parser = parser is None
    parser = parser or ParsePool(PARSE_WORKERS)
    writer = Writer(kb_dir, engine, max_file_mb, parser, load_embedder)
    receiver = Receiver(writer.uploads / ".incoming", writer.max_bytes,
                        max_in_flight=max_uploads_in_flight)
    access = Access(key or None, read_key or None, tuple(h.lower() for h in allowed_hosts),
                    tuple(cors_origins), bind)
    max_upload_bytes = int(MAX_UPLOAD_FILES * max_file_mb * 2**20) + 2**20

    @asynccontextmanager
    async def lifespan(app):
        stop, follower = threading.Event(), None
        if watch:  # (folders kept in sync: one thread, writing as uploads do)
            follower = threading.Thread(target=writer.follow, args=(list(watch), stop, log),
                                        name="rag-watch", daemon=True)
            follower.start()
        yield
        stop.set()
        if follower is not None:
            follower.join(timeout=30)
        engine.close()
        if own_parser:
            parser.close()

    app = FastAPI(title="rag serve", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, description=(
                      "Answers from your own documents, with citations to their exact "
                      "characters."))
    app.state.engine, app.state.writer, app.state.access = engine, writer, access
    app.state.refused = Counter()  # requests the Guard refused, by status
    _handlers(app)
    _pages(app, access)
    _routes(app, engine, writer, receiver, reader)
    from .mcp import mount

    mount(app, engine)  # (/mcp: the MCP tools, under the same rules)
    _body_rules(app, max_upload_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=[
                               "Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(HeadAsGet)
    app.add_middleware(Guard, access=access, error=error,  # (outermost: before any work)
                       refused=app.state.refused)
    return app


class HeadAsGet:
    """HEAD answered as the GET of the same URL without its body (FastAPI's GET routes
    answer HEAD with 405), headers and status as GET's."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def bodiless(message):
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)
        await self.app({**scope, "method": "GET"}, receive, bodiless)


def _handlers(app) -> None:
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc):
        # the deepest error says most (of a union's, the one of the shape that was sent)
        first = max(exc.errors(), key=lambda e: len(e.get("loc", ())), default={})
        where = ".".join(str(p) for p in first.get("loc", ())
                         if p != "body" and not _TYPE_TAG.fullmatch(str(p)))
        msg = first.get("msg", "invalid")
        if first.get("type") == "string_pattern_mismatch" and \
                (first.get("ctx") or {}).get("pattern") == TEXT:
            msg = "empty; send some text"  # (not pydantic's "should match pattern '\S'")
        return error(422, f"{where or 'request'}: {msg}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):  # (and unknown routes, wrong methods)
        return error(exc.status_code, str(exc.detail), headers=exc.headers)


def _body_rules(app, max_upload_bytes: int) -> None:
    """Each POST's content type and declared length, checked before its body is read;
    latencies per route; any error left over as one line, never a traceback."""
    stats = app.state.stats = Latencies()

    @app.middleware("http")
    async def check_and_time(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        if request.method == "POST":
            wanted = "multipart/form-data" if path == "/v1/documents" else "application/json"
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            close = {"Connection": "close"}  # (the body is not read)
            if kind != wanted:
                return error(415, f"{path} takes {wanted}, not {kind or 'no content type'}",
                             close)
            limit = max_upload_bytes if path == "/v1/documents" else MAX_JSON_BYTES
            size = request.headers.get("content-length")  # (framing enforced by uvicorn)
            if size is None or not size.isdigit():
                return error(411, "send the request body with a Content-Length", close)
            if int(size) > limit:
                return error(413, f"request body over {limit // 1024} KB", close)
        try:
            response = await call_next(request)
        except Exception as err:  # noqa: BLE001 (one line, never a traceback to the client)
            first = (str(err).strip().splitlines() or [""])[0][:300]
            response = error(500, f"internal error: {err.__class__.__name__}: {first}")
        route = request.scope.get("route")
        stats.add(f"{request.method} {getattr(route, 'path', path)}",
                  (time.perf_counter() - t0) * 1000, response.status_code)
        return response


def _pages(app, access: Access) -> None:
    """The web page and the API docs (Swagger UI from files served here: users may be
    offline), each with the page token in a meta tag for its scripts."""
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    meta = f'<meta name="rag-token" content="{access.token}">'
    index = (WEB / "index.html").read_text(encoding="utf-8").replace(
        '<meta name="rag-token" content="">', meta)
    docs = ('<!doctype html><html lang="en"><head><meta charset="utf-8">' + meta +
            '<title>rag serve API</title><link rel="stylesheet" '
            'href="/docs-assets/swagger-ui.css"><link rel="icon" '
            'href="/docs-assets/favicon-32x32.png"></head><body><div id="swagger-ui"></div>'
            '<script src="/docs-assets/swagger-ui-bundle.js"></script>'
            '<script src="/static/docs.js"></script></body></html>')

    @app.get("/", include_in_schema=False)
    async def page():
        return HTMLResponse(index)

    @app.get("/docs", include_in_schema=False)
    async def api_docs():
        return HTMLResponse(docs)

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")


def _routes(app, engine: Engine, writer: Writer, receiver: Receiver, reader) -> None:
    from fastapi.responses import StreamingResponse
    from starlette.concurrency import run_in_threadpool

    from ..retrieval import MODES, Filters

    started = time.time()

    async def wait(future: Future):
        import asyncio

        try:
            return await asyncio.wrap_future(future)
        except LockedError as err:
            raise HTTPException(409, str(err)) from None
        except (UsageError, KnowledgeError) as err:
            raise HTTPException(400, str(err)) from None

    def parse(text: str, mode: str | None, filters: FilterBody | None, what: str):
        if not text.strip():
            raise HTTPException(400, f"empty {what}; ask something")
        if mode is not None and mode not in MODES:
            raise HTTPException(400, f"retrieval {mode!r} must be one of {', '.join(MODES)}")
        if filters is None:
            return None
        return Filters(filters.path, tuple(sorted(filters.where.items()))) or None

    @app.get("/healthz")
    async def healthz():
        return {"ok": True, "auth": app.state.access.keyed}

    async def matched(filters) -> None:
        """A 422 saying why filters match no document (not an empty or "not found" reply)."""
        if filters:
            why = await wait(engine.call(lambda kb: unmatched(kb, filters)))
            if why:
                raise HTTPException(422, f"filters: {why}")

    @app.post("/v1/ask")
    async def ask(body: AskBody):
        """Exactly the `rag ask --json` object."""
        from ..conversation import Turn

        filters = parse(body.question, body.retrieval, body.filters, "question")
        await matched(filters)
        history = [Turn(t.question, t.answer) for t in body.history]
        answer = await wait(engine.ask(body.question.strip(), body.k, body.retrieval, filters,
                                       history))
        return answer.to_dict()

    @app.post("/v1/search")
    async def search(body: SearchBody):
        """Exactly the `rag search --json` object."""
        filters = parse(body.query, body.retrieval, body.filters, "query")
        await matched(filters)
        hits = await wait(engine.search(body.query.strip(), body.k, body.retrieval, filters))
        return {"query": body.query, "retrieval": body.retrieval or engine.retrieval,
                "hits": [h.to_dict() for h in hits]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody):
        """OpenAI's chat-completions shape: the last user message is the question, read
        with the earlier user/assistant pairs as its conversation; the answer's citations
        travel in ``citations`` (and in the text as [n] sources), the whole answer (with
        ``rewritten``) in ``rag``."""
        try:
            question, history = conversation_of(body)
        except ValueError as err:
            raise HTTPException(400 if "no user" in str(err) else 422, str(err)) from None
        parse(question, None, None, "question")
        answer = await wait(engine.ask(question, body.k, history=history))
        if not body.stream:
            return completion(answer, body.model)
        return StreamingResponse(chunks(answer, body.model), media_type="text/event-stream")

    @app.get("/v1/documents")
    async def documents(offset: int = Query(0, ge=0, le=MAX_OFFSET),
                        limit: int = Query(50, ge=1, le=500),
                        q: str | None = Query(None, max_length=500,
                                              description="glob on id or path")):
        return await wait(engine.call(lambda kb: list_documents(kb, offset, limit, q)))

    @app.get("/v1/documents/{doc_id:path}")
    async def document(doc_id: str):
        found = await wait(engine.call(lambda kb: get_document(kb, doc_id)))
        if found is None:
            raise HTTPException(404, f"no document {doc_id!r} in the knowledge base")
        return found

    from .pages import add_page_routes

    add_page_routes(app, engine, wait, writer.parser)  # (/v1/page, /v1/page.png: cited
    # PDF pages, drawn by the parse workers)

    @app.post("/v1/documents", dependencies=[Depends(require_write)],
              openapi_extra=UPLOAD_BODY)
    async def upload(request: Request):
        """Upload files (multipart, field ``files``): indexed as `rag index` does, in one
        transaction. Files that cannot be taken are listed in ``skipped`` with the reason;
        the rest land. A file over the size limit ends the request (413)."""
        try:
            async with receiver.receive(request) as received:
                return await run_in_threadpool(writer.upload, received)
        except UploadError as err:  # (the body may be unread: close the connection)
            return error(err.status, str(err), {**err.headers, "Connection": "close"},
                         **({"skipped": err.skipped} if err.skipped else {}))
        except UploadRejected as err:
            return error(400, str(err), skipped=err.skipped)
        except LockedError as err:
            raise HTTPException(409, str(err)) from None
        except (UsageError, KnowledgeError) as err:
            raise HTTPException(400, str(err)) from None

    @app.delete("/v1/documents/{doc_id:path}", dependencies=[Depends(require_write)])
    async def delete(doc_id: str):
        try:
            return await run_in_threadpool(writer.delete, doc_id)
        except KeyError:
            raise HTTPException(404, f"no document {doc_id!r} in the knowledge base") from None
        except LockedError as err:
            raise HTTPException(409, str(err)) from None

    @app.get("/v1/stats")
    async def get_stats():
        def read(kb):
            m = kb.manifest
            return {"documents": m["counts"]["documents"], "chunks": m["counts"]["chunks"],
                    "files": m["counts"]["files"], "index": m["index"].get("kind"),
                    "generation": kb.store.generation, "embedder": m["embedder"]["name"]}

        info = await wait(engine.call(read))
        return _no_paths({
            **info, "reader": reader.identity() if reader is not None else None,
            "retrieval": engine.retrieval, "k": engine.k,
            "uptime_s": round(time.time() - started, 1), "requests": app.state.stats.summary(),
            "refused": {str(k): v for k, v in sorted(app.state.refused.items())},
            "batches": {str(n): c for n, c in sorted(engine.batch_sizes.items())}})


def _no_paths(value):
    """``value`` with every absolute path cut to its last part (a model's folder name tells
    a client what it needs; where the server keeps it does not)."""
    if isinstance(value, dict):
        return {k: _no_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or value[1:3] == ":\\"):
        return Path(value.replace("\\", "/")).name
    return value
