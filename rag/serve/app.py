"""`rag serve`: an HTTP API and a web page over one knowledge base.

Reads (questions, searches, document listings) go through one engine thread that owns the
open knowledge base and the models. Questions that arrive together are answered in one
retrieval + reader call: the engine takes everything queued, waits a small window for more,
and answers the batch (micro-batching). Each request's answer, timings and similarity come
back in its own future: nothing per request lives in shared state.

Writes (uploads, deletes) run one at a time, in their own thread, through exactly the code
and lock of `rag index` (one transaction per request). The engine picks up each committed
generation before its next read, so it never sees a half-written state; a `rag index` run
from a terminal against the same knowledge base works the same way.

Example::

    rag serve --kb kb                # http://127.0.0.1:8000/  (API docs at /docs)
    curl -s localhost:8000/v1/ask -H 'content-type: application/json' \\
         -d '{"question": "Who won Super Bowl 50?"}'
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import queue
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from knowledge.errors import KnowledgeError, LockedError, NothingIngested, UsageError

WEB = Path(__file__).parent / "web"
UPLOADS = "uploads"  # uploaded files live in KB_DIR/uploads/, indexed from there
MAX_BATCH = 8  # (measured: eval/bench_serve.py, eval/RESULTS.md)
MAX_JSON_BYTES = 256 * 1024  # a question, its options, a chat history
MAX_UPLOAD_FILES = 20  # per request
ERROR_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "bad_method", 411: "length_required",
               409: "locked", 413: "too_large", 415: "unsupported_media_type",
               422: "invalid", 500: "internal"}
MAX_QUESTION_CHARS = 2000
MAX_K = 50


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the engine: one thread owns the knowledge base and the models ------------------------


@dataclass(frozen=True)
class _Job:
    kind: str  # "ask" | "search" | "call"
    key: tuple  # (kind, retrieval, k, filters): jobs with one key share a batch
    payload: object  # the question, or a callable(kb)
    future: Future


class Engine:
    """Answers questions and searches in micro-batches on one thread; runs other reads
    (``call``) on the same thread, so SQLite and the models are never shared across
    threads. ``window_ms`` is how long a batch waits for company once a job arrives."""

    def __init__(self, kb, reader=None, retrieval: str = "hybrid", k: int | None = None,
                 window_ms: float = 2.0, max_batch: int = MAX_BATCH):
        from ..retrieval import Retriever

        Retriever(kb, retrieval)  # validate the mode now
        self.kb = kb
        self.reader = reader
        self.retrieval = retrieval
        self.k = k or getattr(getattr(reader, "config", None), "k", None) or 5
        self.window = max(0.0, window_ms) / 1000
        self.max_batch = max(1, max_batch)
        self.batch_sizes: Counter = Counter()
        self._pipelines: dict = {}
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rag-engine", daemon=True)
        self._thread.start()

    # (called from any thread)
    def ask(self, question: str, k: int | None = None, retrieval: str | None = None,
            filters=None) -> Future:
        return self._submit("ask", question, k, retrieval, filters)

    def search(self, query: str, k: int | None = None, retrieval: str | None = None,
               filters=None) -> Future:
        return self._submit("search", query, k, retrieval, filters)

    def call(self, fn) -> Future:
        """Run ``fn(kb)`` on the engine thread (after the knowledge base is refreshed)."""
        future: Future = Future()
        self._jobs.put(_Job("call", ("call",), fn, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _submit(self, kind, text, k, retrieval, filters) -> Future:
        future: Future = Future()
        key = (kind, retrieval or self.retrieval, k or self.k, filters)
        self._jobs.put(_Job(kind, key, text, future))
        return future

    # (the engine thread)
    def _run(self) -> None:
        import torch

        # this thread's torch thread count is fixed at its first use: now, with the process's
        # (an upload embedding meanwhile sets it to 1 while it runs: knowledge.embedding)
        torch.get_num_threads()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            if job.kind != "call":
                deadline = time.monotonic() + self.window
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._jobs.put(None)
                        break
                    batch.append(nxt)
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        try:
            self.kb.store.refresh()  # a writer may have committed since the last batch
        except Exception as err:  # noqa: BLE001 (reported to every waiting request)
            for job in batch:
                job.future.set_exception(err)
            return
        groups: dict[tuple, list[_Job]] = defaultdict(list)
        for job in batch:
            groups[job.key if job.kind != "call" else ("call", id(job))].append(job)
        for key, jobs in groups.items():
            try:
                if jobs[0].kind == "call":
                    jobs[0].future.set_result(jobs[0].payload(self.kb))
                    continue
                kind, mode, k, filters = key
                self.batch_sizes[len(jobs)] += 1
                texts = [j.payload for j in jobs]
                if kind == "ask":
                    results = self._pipeline(mode, k).ask_many(texts, filters)
                else:
                    from ..retrieval import Retriever

                    found = Retriever(self.kb, mode).search_many(texts, k, filters)
                    results = found.hits
                for job, result in zip(jobs, results):
                    job.future.set_result(result)
            except Exception as err:  # noqa: BLE001 (each request gets its own error)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)

    def _pipeline(self, mode: str, k: int):
        from ..pipeline import Pipeline
        from ..retrieval import Retriever

        if (mode, k) not in self._pipelines:
            self._pipelines[(mode, k)] = Pipeline(Retriever(self.kb, mode), self.reader, k=k)
        return self._pipelines[(mode, k)]


# -- writes: one at a time, through the `rag index` code path -----------------------------


def safe_upload_name(name: str | None) -> str:
    """The file name an upload is stored under, or a UsageError saying why it cannot be."""
    from knowledge.loaders import is_supported

    raw = name or ""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or base.startswith("."):
        raise UsageError(f"upload {raw!r}: give the file a plain name")
    if len(base.encode("utf-8", "surrogatepass")) > 200 or any(
            ord(c) < 32 or c == "\x7f" for c in base):
        raise UsageError(f"upload {raw!r}: the name is too long or holds control "
                         "characters; rename the file")
    if not is_supported(Path(base)):
        raise UsageError(f"upload {base!r}: unsupported file type; supported: .txt .md .html "
                         ".pdf .docx .jsonl .jsonl.gz .csv")
    return base


class UploadRejected(Exception):
    """No file of an upload could be taken; ``skipped`` says why, per file."""

    def __init__(self, skipped: list[dict]):
        super().__init__("; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
                         or "no files in the upload")
        self.skipped = skipped


class Writer:
    """Uploads and deletes, serialised in this process; across processes the knowledge
    base's write lock keeps one writer (a busy lock is a LockedError, HTTP 409)."""

    def __init__(self, kb_dir: Path, engine: Engine, max_file_mb: float, load_embedder=None):
        self.kb_dir = Path(kb_dir)
        self._load_embedder = load_embedder
        self.engine = engine
        self.max_bytes = int(max_file_mb * 1024 * 1024)
        self.uploads = self.kb_dir.resolve() / UPLOADS
        self._lock = threading.Lock()
        self._embedder = None

    def embedder(self):
        """The writer's own copy of the knowledge base's embedder (loaded at the first
        upload): tokenizers must not be shared across threads, and the engine's is busy."""
        if self._embedder is None:
            from knowledge.embedding import Embedder

            name = self.engine.kb.manifest["embedder"]["name"]
            self._embedder = (self._load_embedder or (lambda: Embedder.load(name)))()
        return self._embedder

    def upload(self, files: list[tuple[str | None, bytes | None]]) -> dict:
        """Index uploaded files in one transaction. Each is stored under KB_DIR/uploads by
        its content hash (``<sha256[:16]>/<its plain name>``: never a path the client
        chose, never over another file); its document id is that path. A file that cannot be
        taken (name, type, size, content) is reported with its reason, and the rest land;
        ``data`` None means it was over the size limit."""
        from knowledge.chunking import ChunkerSettings
        from knowledge.sync import sync

        skipped, paths, created = [], [], []
        with self._lock:
            for raw, data in files:
                try:
                    name = safe_upload_name(raw)
                except UsageError as err:
                    skipped.append({"file": raw or "", "reason": str(err)})
                    continue
                if data is None:
                    skipped.append({"file": name, "reason": f"larger than "
                                    f"{self.max_bytes / 2**20:g} MB, the upload limit"})
                    continue
                folder = self.uploads / hashlib.sha256(data).hexdigest()[:16]
                path = folder / name
                if not path.exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    tmp = folder / f".{uuid.uuid4().hex}.part"
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
                    created.append(path)  # (only these are removed again if they fail)
                paths.append(path)
            if not paths:
                raise UploadRejected(skipped)
            kb = self.engine.kb
            built = kb.manifest
            chunking = ChunkerSettings(size=built["chunker"]["size"],
                                       overlap=built["chunker"]["overlap"])
            try:
                report = sync(self.kb_dir, paths, load_embedder=self.embedder,
                              embedder_identity=dict(built["embedder"]), chunking=chunking,
                              max_file_mb=self.max_bytes / 2**20, root=self.uploads,
                              log=lambda m: None)
                failed = {Path(p) for p, _ in report.skipped}
            except NothingIngested as err:
                report, failed = None, set(paths)
                skipped += [{"file": Path(p).name, "reason": r} for p, r in err.skipped]
            except BaseException:
                self._forget(created)
                raise
            if report is not None:
                skipped += [{"file": Path(p).name, "reason": r} for p, r in report.skipped]
            self._forget([p for p in created if p in failed])
        if report is None:
            raise UploadRejected(skipped)
        kept = [p.relative_to(self.uploads).as_posix() for p in paths if p not in failed]
        docs = self.engine.call(lambda kb: _documents_of(kb, self.uploads, kept)).result()
        return {"added": report.added, "updated": report.updated,
                "unchanged": report.unchanged, "documents": docs, "skipped": skipped,
                "warnings": [{"file": Path(p).name, "warning": w} for p, w in report.warnings],
                "total_documents": report.total_documents, "total_chunks": report.total_chunks}

    def _forget(self, paths: list[Path]) -> None:
        """Remove stored uploads that did not land (and their folders, when empty)."""
        for path in paths:
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def delete(self, doc_id: str) -> dict:
        from knowledge.sync import delete_documents

        with self._lock:
            emptied = delete_documents(self.kb_dir, [doc_id])
            # an uploaded file goes with its document
            self._forget([p for p in map(Path, emptied)
                          if p.parent.parent == self.uploads])
        return {"deleted": doc_id}


def _documents_of(kb, root: Path, names: list[str]) -> list[str]:
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


# -- the HTTP application -------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake: say so


class FilterBody(Strict):
    path: str | None = Field(None, description="glob on document path or id")
    where: dict[str, str] = Field(default_factory=dict, description="metadata equalities")


class AskBody(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(None, ge=1, le=MAX_K)
    retrieval: str | None = Field(None, description="hybrid|dense|lexical")
    filters: FilterBody | None = None


class SearchBody(Strict):
    query: str = Field(..., max_length=MAX_QUESTION_CHARS)
    k: int = Field(5, ge=1, le=MAX_K)
    retrieval: str | None = None
    filters: FilterBody | None = None


class Message(BaseModel):
    role: str
    content: str | list | None = None


class ChatBody(Strict):
    model: str | None = None
    messages: list[Message] = Field(..., min_length=1)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=MAX_K)


class Latencies:
    """Request counts and latency percentiles per route (the last 2,000 of each)."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.errors: Counter = Counter()
        self.recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=2000))
        self._lock = threading.Lock()

    def add(self, route: str, ms: float, status: int) -> None:
        with self._lock:
            self.counts[route] += 1
            self.errors[route] += status >= 400
            self.recent[route].append(ms)

    def summary(self) -> dict:
        import numpy as np

        with self._lock:
            out = {}
            for route, n in sorted(self.counts.items()):
                ms = np.array(self.recent[route])
                out[route] = {"requests": n, "errors": self.errors[route],
                              **{f"p{q}_ms": round(float(np.percentile(ms, q)), 2)
                                 for q in (50, 95, 99)}}
            return out


def create_app(kb_dir: Path, kb, reader=None, *, retrieval: str = "hybrid",
               k: int | None = None, key: str | None = None, window_ms: float = 2.0,
               max_batch: int = MAX_BATCH, max_file_mb: float = 50, load_embedder=None):
    """The FastAPI application over the open knowledge base ``kb`` (owned by it from now
    on: the engine thread is the only one that reads it)."""
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from ..retrieval import MODES, Filters

    from starlette.exceptions import HTTPException as StarletteHTTPException

    engine = Engine(kb, reader, retrieval, k, window_ms, max_batch)
    max_upload_bytes = int(MAX_UPLOAD_FILES * max_file_mb * 2**20) + 2**20
    writer = Writer(kb_dir, engine, max_file_mb, load_embedder)
    stats = Latencies()
    started = time.time()
    @asynccontextmanager
    async def lifespan(app):
        yield
        engine.close()

    app = FastAPI(title="rag serve", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, description=(
                      "Answers from your own documents, with citations to their exact "
                      "characters."))
    app.state.engine, app.state.writer = engine, writer
    _api_docs(app)

    def error(status: int, message: str, **extra) -> JSONResponse:
        return JSONResponse({"error": {"code": ERROR_CODES.get(status, "error"),
                                       "message": message, **extra}}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, exc):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request, exc):  # (unknown routes, wrong methods)
        return error(exc.status_code, str(exc.detail))

    @app.middleware("http")
    async def guard_and_time(request: Request, call_next):
        t0 = time.perf_counter()
        path = request.url.path
        if key and not (path in ("/", "/healthz") or path.startswith("/static/")):
            given = request.headers.get("authorization", "")
            given = given[7:] if given.lower().startswith("bearer ") else \
                request.headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), key.encode()):
                return error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")
        if request.method == "POST":
            wanted = "multipart/form-data" if path == "/v1/documents" else "application/json"
            kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != wanted:
                return error(415, f"{path} takes {wanted}, not {kind or 'no content type'}")
            limit = max_upload_bytes if path == "/v1/documents" else MAX_JSON_BYTES
            size = request.headers.get("content-length")  # (framing enforced by uvicorn)
            if size is None or not size.isdigit():
                return error(411, "send the request body with a Content-Length")
            if int(size) > limit:
                return error(413, f"request body over {limit // 1024} KB")
        try:
            response = await call_next(request)
        except Exception as err:  # noqa: BLE001 (one line, never a traceback to the client)
            first = (str(err).strip().splitlines() or [""])[0][:300]
            response = error(500, f"internal error: {err.__class__.__name__}: {first}")
        route = request.scope.get("route")
        stats.add(f"{request.method} {getattr(route, 'path', path)}",
                  (time.perf_counter() - t0) * 1000, response.status_code)
        return response

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

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/healthz")
    async def healthz():
        return {"ok": True, "auth": bool(key)}

    @app.post("/v1/ask")
    async def ask(body: AskBody):
        """Exactly the `rag ask --json` object."""
        filters = parse(body.question, body.retrieval, body.filters, "question")
        answer = await wait(engine.ask(body.question.strip(), body.k, body.retrieval, filters))
        return answer.to_dict()

    @app.post("/v1/search")
    async def search(body: SearchBody):
        """Exactly the `rag search --json` object."""
        filters = parse(body.query, body.retrieval, body.filters, "query")
        hits = await wait(engine.search(body.query.strip(), body.k, body.retrieval, filters))
        return {"query": body.query, "retrieval": body.retrieval or engine.retrieval,
                "hits": [h.to_dict() for h in hits]}

    @app.post("/v1/chat/completions")
    async def chat(body: ChatBody):
        """OpenAI's chat-completions shape: the last user message is the question; the
        answer's citations travel in ``citations`` (and in the text as [n] sources)."""
        users = [m for m in body.messages if m.role == "user"]
        if not users:
            raise HTTPException(400, "messages: no user message to answer")
        content = users[-1].content
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            content = " ".join(p.get("text", "") for p in content
                               if isinstance(p, dict) and p.get("type") == "text")
        question = (content or "").strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise HTTPException(422, f"messages: the question is longer than "
                                     f"{MAX_QUESTION_CHARS} characters")
        parse(question, None, None, "question")
        answer = await wait(engine.ask(question, body.k))
        text = chat_text(answer)
        rid, created, model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), \
            body.model or "rag"
        cites = [c.to_dict() for c in answer.citations]
        if not body.stream:
            return {"id": rid, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                    "citations": cites, "rag": answer.to_dict()}

        def chunk(delta: dict, finish=None, **extra) -> str:
            return "data: " + json.dumps(
                {"id": rid, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}], **extra},
                ensure_ascii=False) + "\n\n"

        def events():
            yield chunk({"role": "assistant", "content": ""})
            words = text.split(" ")
            for i, word in enumerate(words):
                yield chunk({"content": word + (" " if i < len(words) - 1 else "")})
            yield chunk({}, "stop", citations=cites)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/documents")
    async def documents(offset: int = Query(0, ge=0), limit: int = Query(50, ge=1, le=500),
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

    add_page_routes(app, engine, wait)  # (/v1/page, /v1/page.png: cited PDF pages)

    @app.post("/v1/documents")
    async def upload(files: list[UploadFile] = File(...)):
        """Upload files (multipart, field ``files``): indexed as `rag index` does, in one
        transaction. Files that cannot be taken are listed in ``skipped`` with the reason;
        the rest land."""
        from starlette.concurrency import run_in_threadpool

        if len(files) > MAX_UPLOAD_FILES:
            raise HTTPException(413, f"at most {MAX_UPLOAD_FILES} files per upload")
        received = []
        for f in files:
            data = await f.read(writer.max_bytes + 1)  # bounded
            received.append((f.filename, data if len(data) <= writer.max_bytes else None))
        try:
            return await run_in_threadpool(writer.upload, received)
        except UploadRejected as err:
            too_big = all(d is None for _, d in received)
            return error(413 if too_big else 400, str(err), skipped=err.skipped)
        except LockedError as err:
            raise HTTPException(409, str(err)) from None
        except (UsageError, KnowledgeError) as err:
            raise HTTPException(400, str(err)) from None

    @app.delete("/v1/documents/{doc_id:path}")
    async def delete(doc_id: str):
        from starlette.concurrency import run_in_threadpool

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
        return {**info, "reader": reader.identity() if reader is not None else None,
                "retrieval": engine.retrieval, "k": engine.k,
                "uptime_s": round(time.time() - started, 1), "requests": stats.summary(),
                "batches": {str(n): c for n, c in sorted(engine.batch_sizes.items())}}

    return app


def _api_docs(app) -> None:
    """Swagger UI at /docs from files this server serves itself (users may be offline;
    FastAPI's default loads it from a CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="rag serve API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png")


def chat_text(answer) -> str:
    """The assistant message: the answer, then its sources as [n] lines."""
    head = "Not found in the knowledge base." if answer.abstained else answer.answer
    if answer.kind == "evidence" and not answer.abstained:
        head = f"Evidence, not an answer ({answer.note.split(': ')[0]}):\n«{answer.answer}»"
    lines = []
    for n, c in enumerate(answer.citations, 1):
        page = f" p.{c.page}" if c.page else ""
        quote = ""
        if c.answer_start is not None:
            a, b = c.answer_start - c.start, c.answer_end - c.start
            quote = f': "…{c.text[max(0, a - 60):b + 60].strip()}…"'
        lines.append(f"[{n}] {c.doc_id}{page}{quote}")
    return head + ("\n\nSources:\n" + "\n".join(lines) if lines else "")
