"""The knowledge base as tools for agents: a Model Context Protocol server (the official SDK).

Four tools, each a read through the engine (``engine.py``), so MCP is one more caller of
``Pipeline`` and of the knowledge base's reads, exactly as the HTTP API is:

- ``search``: passages with their document id, page, section heading and exact offsets;
- ``ask``: an answer quoted from the passages (form, short span, citations), or "not found";
  a follow-up may carry the conversation's earlier turns;
- ``list_documents``: the documents, paged;
- ``read_document``: part of one document, by characters or pages.

A filter that matches no document, or a document id that is not there, is an error that
says what exists (the closest ids, the metadata keys or values). `rag mcp --kb KB` serves
over stdio (it answers the handshake at once and loads the models meanwhile); `rag serve`
mounts the same tools at /mcp (streamable HTTP) under its Host, origin and key rules.

Example::

    server = build_server(ready_engine(Engine(kb, reader)))
    server.run("stdio")
"""
from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Future
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, ValidationError

from .schemas import (MAX_ANSWER_CHARS, MAX_K, MAX_OFFSET, MAX_QUESTION_CHARS, MAX_TURNS,
                      Strict, not_text, surrogate_error)

INSTRUCTIONS = (
    "Answers and passages from the user's own documents, each pointing at exact characters "
    "of its source. Use `search` to find passages, `ask` for a quoted answer with citations "
    "(pass earlier turns as `history` for a follow-up), `list_documents` and "
    "`read_document` to read more of a source.")


class Filters(Strict):
    path: str | None = Field(None, max_length=500,
                             description="glob on the document's id or path, e.g. 'manuals/*.pdf'")
    where: dict[str, str] = Field(default_factory=dict, max_length=32,
                                  description="metadata equalities, e.g. {'lang': 'en'}")


class Turn(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS,
                          description="an earlier question (its `rewritten` form if it had one)")
    answer: str | None = Field(None, max_length=MAX_ANSWER_CHARS,
                               description="what was answered; null if not found")


class Passage(BaseModel):
    doc_id: str
    source: str = Field(description="the file the document came from")
    title: str
    page: int | None
    heading: str = Field(description="the section heading path ('A > B') of the passage")
    start: int = Field(description="the passage is the document's characters [start, end)")
    end: int
    text: str
    score: float
    chunk_id: int
    metadata: dict


class SearchResult(BaseModel):
    query: str
    retrieval: str
    passages: list[Passage]


class Citation(BaseModel):
    doc_id: str
    source: str
    page: int | None
    heading: str | None
    start: int = Field(description="the passage: the document's characters [start, end)")
    end: int
    text: str
    answer_start: int | None = Field(description="the answer's characters in the document, "
                                                 "where this passage holds it")
    answer_end: int | None
    short_start: int | None
    short_end: int | None
    retrieval_score: float
    attention_score: float | None


class AskResult(BaseModel):
    question: str
    rewritten: str | None = Field(description="a follow-up made self-contained from the history")
    read_as: str | None = Field(None, description="a follow-up answered from its second "
                                "reading: as typed, with the previous turn beside it")
    answer: str
    abstained: bool = Field(description="true: not found in the knowledge base")
    form: str | None = Field(description="span | sentence | steps | code | generated")
    short: str | None = Field(description="the short answer inside a longer one")
    context: str | None = Field(description="the sentence(s) the short answer stands in")
    kind: str = Field(description="answer, or evidence: a quoted sentence, not an answer "
                                  "(the reader does not read the language; see note)")
    note: str | None
    confidence: float | None
    citations: list[Citation]


class DocumentInfo(BaseModel):
    doc_id: str
    source: str
    title: str
    metadata: dict
    chunks: int
    chars: int


class DocumentList(BaseModel):
    total: int
    offset: int
    next_offset: int | None = Field(description="pass as offset for the next page")
    documents: list[DocumentInfo]


class DocumentText(BaseModel):
    doc_id: str
    source: str
    title: str
    chars: int = Field(description="the whole document's length")
    pages: int | None
    start: int = Field(description="the text is the document's characters [start, end)")
    end: int
    first_page: int | None
    last_page: int | None
    text: str
    next_start: int | None = Field(description="where the rest of the range begins (the text "
                                               "was cut at 20,000 characters)")


class _Server(MCPServer):
    def tool(self, *args, **kwargs):
        """(a tool's description is its docstring without the source's indentation: an
        agent read "...best first, each with its document id,\\n        page, ...")"""
        register = super().tool(*args, **kwargs)

        def clean(fn):
            fn.__doc__ = inspect.cleandoc(fn.__doc__ or "")
            return register(fn)
        return clean

    async def call_tool(self, name, arguments, context=None):
        """(a wrong argument said in one line: its name and what is wrong; an unknown one,
        e.g. "filter" for "filters", is wrong too, not silently dropped)"""
        schema = next((t.input_schema for t in await self.list_tools() if t.name == name), None)
        known = set((schema or {}).get("properties", {}))
        unknown = sorted(set(arguments or {}) - known) if schema is not None else []
        if unknown:
            raise ToolError(f"{unknown[0]}: no such argument; {name} takes "
                            f"{', '.join(sorted(known))}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as err:
            if not isinstance(err.__cause__, ValidationError):
                raise
            first = err.__cause__.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "arguments"
            raise ToolError(f"{where}: {first.get('msg', 'invalid')}") from None

    async def get_prompt(self, name, arguments=None, context=None):
        """(an unknown prompt answered as a wrong argument: the SDK's ValueError for it got
        the client the same message, and the server's log a page of traceback)"""
        from mcp.shared.exceptions import MCPError
        from mcp_types import INVALID_PARAMS

        prompts = [p.name for p in await self.list_prompts()]
        if name not in prompts:
            tools = ", ".join(t.name for t in await self.list_tools())
            raise MCPError(INVALID_PARAMS, f"Unknown prompt: {name}; this server has "
                           f"{', '.join(prompts) or 'none'} (its tools: {tools})")
        return await super().get_prompt(name, arguments, context)

    async def run_stdio_async(self) -> None:
        """The SDK's stdio serving, but a line that is no JSON-RPC message is answered
        (``answered_stdio``) instead of dropped, so the client waiting on it hears why."""
        async with answered_stdio() as (read_stream, write_stream):
            server = self._lowlevel_server  # (as the SDK's run_stdio_async runs it)
            await server.run(read_stream, write_stream, server.create_initialization_options())


def parse_error(err: Exception, unit: str = "line"):
    """The JSON-RPC error answering a stdin line (``unit``; or an HTTP request) the SDK could
    not read as a message: its id where the line is JSON that names one (a lone surrogate, a
    wrong field), else null; one line saying what is wrong."""
    import json

    import mcp_types as types

    errors = err.errors() if isinstance(err, ValidationError) else []
    # (JSON of the wrong shape: some error holds the message as parsed; a line pydantic's
    # reader refused: the line, which Python's reader may take, a lone surrogate and all)
    request = next((e["input"] for e in errors if isinstance(e.get("input"), dict)), None)
    line = errors[0].get("input") if errors else None
    unread = not errors or errors[0].get("type") == "json_invalid"  # (else: JSON, parsed)
    if request is None and isinstance(line, str) and unread:
        try:
            request = json.loads(line)
        except (ValueError, RecursionError):
            pass
    rid = request.get("id") if isinstance(request, dict) else None
    rid = rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
    if isinstance(line, list):
        code, message = types.INVALID_REQUEST, (f"a JSON-RPC batch (a list) is not taken; send "
                                                f"one message per {unit}")
    elif request is None and unread:
        code, message = types.PARSE_ERROR, f"not valid JSON; send one JSON-RPC message per {unit}"
    elif request is None:
        code, message = types.INVALID_REQUEST, (f"not a JSON-RPC message (JSON, but no object); "
                                                f"send one per {unit}")
    elif (where := not_text(request)) is not None:
        code, message = types.INVALID_REQUEST, surrogate_error(where)
    else:
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "message"
        code, message = types.INVALID_REQUEST, (f"not a JSON-RPC message ({where}: "
                                                f"{first.get('msg', 'invalid')})")
    return types.JSONRPCError(jsonrpc="2.0", id=rid,
                              error=types.ErrorData(code=code, message=message))


def answered_stdio():
    """``mcp.server.stdio.stdio_server`` whose read stream answers what it cannot read: the
    SDK passes such a line on as an exception, which the session drops without a reply (a
    client would wait on that request for ever); here it is answered with ``parse_error``
    on the write stream and not passed on."""
    from contextlib import asynccontextmanager

    import anyio
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    @asynccontextmanager
    async def streams():
        async with stdio_server() as (read_stream, write_stream):
            send, receive = anyio.create_memory_object_stream(0)

            async def relay():
                async with send:
                    async for item in read_stream:
                        if isinstance(item, Exception):
                            await write_stream.send(SessionMessage(parse_error(item)))
                        else:
                            await send.send(item)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(relay)
                yield receive, write_stream
                tasks.cancel_scope.cancel()
    return streams()


def one_message(inner):
    """The SDK's /mcp ASGI app, but a POST body of JSON that is no JSON-RPC message (a batch,
    a request without ``method``) is answered by ``parse_error`` in one line, with its id
    (the SDK answered with pydantic's report: a dozen lines naming four message types). The
    body is bounded before this (``app.MAX_JSON_BYTES``)."""
    import pydantic_core
    from mcp_types import jsonrpc_message_adapter
    from starlette.responses import JSONResponse

    async def asgi(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await inner(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":  # (cut off: the SDK's answer, as before)
                return await inner(scope, _replay([{"type": "http.request", "body": body,
                                                    "more_body": True}, message], receive),
                                   send)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            jsonrpc_message_adapter.validate_python(pydantic_core.from_json(body),
                                                    by_name=False)
        except ValidationError as err:
            wrong = {"id": None, **parse_error(err, unit="request").model_dump(
                mode="json", exclude_none=True)}  # (an id unknown is null, not left out)
            return await JSONResponse(wrong, status_code=400)(scope, receive, send)
        except ValueError:
            pass  # (not JSON: the SDK's own answer is one line)
        await inner(scope, _replay([{"type": "http.request", "body": body,
                                     "more_body": False}], receive), send)
    return asgi


def _replay(messages: list, receive):
    """An ASGI receive that gives ``messages`` first, then ``receive``'s."""
    pending = list(messages)

    async def again():
        return pending.pop(0) if pending else await receive()
    return again


def ready_engine(engine) -> Future:
    """A future already holding ``engine`` (``rag serve``: the models are loaded)."""
    future: Future = Future()
    future.set_result(engine)
    return future


def build_server(engine: Future, lifespan=None):
    """The MCP server over the engine that ``engine`` (a future) holds or will hold."""
    from knowledge.errors import KnowledgeError

    from . import documents

    server = _Server("rag", instructions=INSTRUCTIONS, log_level="WARNING", lifespan=lifespan)

    async def run(submit):
        """The result of ``submit(engine)`` (a future), errors as one-line tool errors."""
        try:
            ready = await asyncio.wrap_future(engine)
        except Exception as err:  # noqa: BLE001 (said once on stderr too, by the loader)
            raise ToolError(f"the server could not load its models: {one_line(err)}") from None
        try:
            return await asyncio.wrap_future(submit(ready))
        except (KnowledgeError, LookupError, ValueError) as err:
            raise ToolError(str(err)) from None

    def filters_of(filters: Filters | None):
        from ..retrieval import Filters as Where

        if filters is None:
            return None
        return Where(filters.path, tuple(sorted(filters.where.items()))) or None

    async def explain(filters: Filters) -> None:
        """Raise a ToolError saying why the filters match nothing, if they do not."""
        why = await run(lambda e: e.call(lambda kb: documents.unmatched_filters(
            kb, filters.path, filters.where)))
        if why:
            raise ToolError(why)

    @server.tool()
    async def search(
            query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)],
            k: Annotated[int, Field(ge=1, le=MAX_K)] = 5,
            filters: Filters | None = None) -> SearchResult:
        """The k passages of the knowledge base most relevant to the query (dense and
        BM25 retrieval, fused), best first, each with its document id, page, section
        heading and exact character offsets into the document."""
        if not query.strip():
            raise ToolError("empty query; give some text to search for")
        hits = await run(lambda e: e.search(query.strip(), k, None, filters_of(filters)))
        if not hits and filters is not None:
            await explain(filters)
        mode = (await asyncio.wrap_future(engine)).retrieval
        return SearchResult(query=query, retrieval=mode, passages=[
            Passage(**{f: getattr(h, f) for f in Passage.model_fields}) for h in hits])

    @server.tool()
    async def ask(
            question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)],
            history: Annotated[list[Turn], Field(max_length=MAX_TURNS)] = [],  # noqa: B006
            k: Annotated[int | None, Field(ge=1, le=MAX_K)] = None,
            filters: Filters | None = None) -> AskResult:
        """Answer a question from the knowledge base: an answer quoted from the passages
        (a short span with its sentence, or whole sentences, steps or code) with its
        citations, or abstained (not found) with the closest passages. For a follow-up
        ("when did he ...?"), pass the earlier turns as history, oldest first."""
        from ..conversation import Turn as Asked

        if not question.strip():
            raise ToolError("empty question; ask something")
        turns = [Asked(t.question, t.answer) for t in history]
        answer = await run(lambda e: e.ask(question.strip(), k, None, filters_of(filters),
                                           turns))
        if not answer.citations and filters is not None:
            await explain(filters)
        return ask_result(answer)

    @server.tool()
    async def list_documents(
            offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0,
            limit: Annotated[int, Field(ge=1, le=500)] = 50,
            glob: Annotated[str | None, Field(max_length=500,
                                              description="only ids or paths matching")] = None,
    ) -> DocumentList:
        """The documents of the knowledge base, by id, a page at a time: each with its id
        (for read_document and the filters of search and ask), source path, title,
        metadata and its counts of chunks and characters; total, and next_offset to read
        the next page (null on the last)."""
        got = await run(lambda e: e.call(lambda kb: documents.list_documents(
            kb, offset, limit, glob)))
        if glob and not got["total"]:
            await explain(Filters(path=glob))
        end = offset + len(got["documents"])
        return DocumentList(total=got["total"], offset=offset,
                            next_offset=end if end < got["total"] else None,
                            documents=[DocumentInfo(**{f: d[f] for f in DocumentInfo.model_fields})
                                       for d in got["documents"]])

    @server.tool()
    async def read_document(
            doc_id: Annotated[str, Field(min_length=1, max_length=4000)],
            start: Annotated[int | None, Field(ge=0)] = None,
            end: Annotated[int | None, Field(ge=0)] = None,
            first_page: Annotated[int | None, Field(ge=1)] = None,
            last_page: Annotated[int | None, Field(ge=1)] = None) -> DocumentText:
        """Read a document's text: characters [start, end) (the offsets search and ask
        return), or pages first_page..last_page of a PDF; the whole document when neither
        is given. At most 20,000 characters a call: next_start says where to go on."""
        got = await run(lambda e: e.call(lambda kb: documents.read_document(
            kb, doc_id, start, end, first_page, last_page)))
        return DocumentText(**got)

    return server


def ask_result(answer) -> AskResult:
    """The ``ask`` tool's result for a pipeline Answer (each citation's section heading
    from the passage retrieved)."""
    headings = {h.chunk_id: h.heading for h in answer.retrieved}
    return AskResult(
        question=answer.question, rewritten=answer.rewritten, read_as=answer.read_as,
        answer=answer.answer,
        abstained=answer.abstained, form=answer.form, short=answer.short,
        context=answer.context, kind=answer.kind, note=answer.note,
        confidence=answer.confidence,
        citations=[Citation(**{f: getattr(c, f) for f in Citation.model_fields
                               if f != "heading"},
                            heading=getattr(c, "heading", None) or headings.get(c.chunk_id))
                   for c in answer.citations])


def one_line(err: BaseException) -> str:
    """An error as one line: a user's mistake by its message, anything else with its kind."""
    from knowledge.errors import KnowledgeError

    first = (str(err).strip().splitlines() or [""])[0][:300]
    return first if isinstance(err, KnowledgeError) else f"{err.__class__.__name__}: {first}"


def serve_stdio(kb, load_reader, retrieval: str = "hybrid", k: int | None = None) -> None:
    """Serve the tools over stdin/stdout until the client leaves. The handshake is answered
    at once; the reader (``load_reader()``) and the embedder load meanwhile, on a thread, and
    the first tool call waits for them. Anything printed meanwhile goes to stderr (the SDK
    diverts file descriptor 1 while it serves)."""
    import sys
    import threading
    from contextlib import asynccontextmanager

    from .engine import Engine

    engine: Future = Future()

    def load():
        try:
            reader = load_reader()
            if retrieval != "lexical":
                kb.embedder  # noqa: B018  (before the first question, not during it)
            engine.set_result(Engine(kb, reader, retrieval, k))
        except BaseException as err:  # noqa: BLE001 (every tool call says it, too)
            print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
            engine.set_exception(err)

    @asynccontextmanager
    async def lifespan(server):
        threading.Thread(target=load, name="rag-mcp-load", daemon=True).start()
        try:
            yield {}
        finally:
            if engine.done() and engine.exception() is None:
                engine.result().close()

    build_server(engine, lifespan).run("stdio")


def mount(app, engine) -> None:
    """Serve the tools at /mcp of the FastAPI ``app`` (streamable HTTP, stateless, JSON
    responses): requests pass the app's Host, origin and key rules first (``/mcp`` is an
    API prefix of ``security.py``), so the SDK's own Host check is off."""
    from contextlib import asynccontextmanager

    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    from .app import error

    @app.get("/mcp", include_in_schema=False)
    async def no_stream():  # (the spec's answer where the server opens no stream: stateless,
        # it could never send on one, and each would hold a connection for as long as it lived)
        return error(405, "GET /mcp opens no event stream: this server answers each POST "
                          "with JSON", headers={"Allow": "POST"})

    server = build_server(ready_engine(engine))
    mcp_app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    for r in mcp_app.routes:
        if isinstance(r, Route):
            r.app = one_message(r.app)
            app.router.routes.append(r)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        async with server.session_manager.run(), inner(a) as state:
            yield state

    app.router.lifespan_context = lifespan
