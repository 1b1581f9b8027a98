"""The MCP server, driven by the official SDK's own client: over streamable HTTP at /mcp of
a real `rag serve` application (fake embedder, uvicorn), and over stdio against a real
`rag mcp` process (the packaged embedder; the project's reader in the slow test)."""
import json
import subprocess
import sys

import anyio
import httpx
import pytest

from conftest import ANIMALS, ROOT, FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, sync
from pdfgen import make_pdf
from rag.retrieval import Retriever
from serving import app_for, running

READ_KEY, WRITE_KEY = "r" * 20, "w" * 20
PAGES = ["The pump manual begins here.", "Reset the pump by holding the red button.",
         "Warranty terms are on the last page."]


@pytest.fixture
def kb_dir(tmp_path):
    docs = write_corpus(tmp_path / "docs", {**ANIMALS, "pump.pdf": make_pdf(PAGES)})
    sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), log=lambda m: None)
    return tmp_path / "kb"


def session(url: str, calls, headers: dict | None = None):
    """Run ``calls(client)`` (async) in an MCP client session at ``url``/mcp; its result."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        async with httpx2.AsyncClient(headers=headers or {}, timeout=60) as http:
            async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as c:
                return await calls(c)

    return anyio.run(main)


def call(url, name, args, headers=None):
    async def one(c):
        return await c.call_tool(name, args)
    return session(url, one, headers)


def error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text


def test_http_tools_search_and_ask_as_the_pipeline_does(kb_dir):
    async def calls(c):
        tools = {t.name: t for t in (await c.list_tools()).tools}
        found = await c.call_tool("search", {"query": "Which birds use tools?", "k": 3})
        md = await c.call_tool("search", {"query": "What do cats eat?", "k": 2,
                                          "filters": {"path": "*.md"}})
        row = await c.call_tool("search", {"query": "swim", "filters": {
            "where": {"habitat": "river"}}})
        asked = await c.call_tool("ask", {"question": "What do they use?", "k": 2, "history": [
            {"question": "Which black birds are clever?", "answer": "Crows"}]})
        return tools, found, md, row, asked

    with running(app_for(kb_dir)) as url:
        tools, found, md, row, asked = session(url, calls)
    assert set(tools) == {"search", "ask", "list_documents", "read_document"}
    assert all("\n " not in t.description for t in tools.values())  # (no source indentation)
    assert tools["search"].output_schema and "filters" in tools["search"].input_schema[
        "properties"]
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        want = Retriever(kb).retrieve("Which birds use tools?", k=3)
        passages = found.structured_content["passages"]
        assert [(p["doc_id"], p["start"], p["end"], p["score"]) for p in passages] == \
            [(h.doc_id, h.start, h.end, h.score) for h in want]
        for p in passages + md.structured_content["passages"]:  # exact offsets
            assert kb.document_text(p["doc_id"])[p["start"]:p["end"]] == p["text"]
    assert passages[0]["doc_id"] == "birds/crow.txt"
    assert {p["doc_id"] for p in md.structured_content["passages"]} == {"cats.md"}
    assert md.structured_content["passages"][0]["heading"].startswith("Cats")
    assert [p["doc_id"] for p in row.structured_content["passages"]] == ["fish.jsonl#salmon"]
    result = asked.structured_content
    assert result["rewritten"] == "What do Crows use?"  # the follow-up, made self-contained
    assert result["citations"][0]["doc_id"] == "birds/crow.txt"
    assert {"answer", "abstained", "form", "short", "citations"} <= set(result)


def test_http_tools_list_and_read_documents_by_characters_and_pages(kb_dir):
    async def calls(c):
        first = await c.call_tool("list_documents", {"limit": 4})
        rest = await c.call_tool("list_documents", {
            "offset": first.structured_content["next_offset"]})
        pdfs = await c.call_tool("list_documents", {"glob": "*.pdf"})
        chars = await c.call_tool("read_document", {"doc_id": "cats.md", "start": 8,
                                                     "end": 20})
        page = await c.call_tool("read_document", {"doc_id": "pump.pdf", "first_page": 2})
        whole = await c.call_tool("read_document", {"doc_id": "pump.pdf"})
        return first, rest, pdfs, chars, page, whole

    with running(app_for(kb_dir)) as url:
        first, rest, pdfs, chars, page, whole = session(url, calls)
    listed = first.structured_content["documents"] + rest.structured_content["documents"]
    assert first.structured_content["total"] == 7 and len(listed) == 7
    assert rest.structured_content["next_offset"] is None
    assert [d["doc_id"] for d in pdfs.structured_content["documents"]] == ["pump.pdf"]
    assert chars.structured_content["text"] == ANIMALS["cats.md"][8:20]
    got = page.structured_content
    assert (got["first_page"], got["last_page"], got["pages"]) == (2, 2, 3)
    assert got["text"].strip() == PAGES[1]
    assert whole.structured_content["text"][got["start"]:got["end"]] == got["text"]


def test_http_tools_say_what_exists_when_a_filter_or_document_is_unknown(kb_dir):
    cases = [
        ("search", {"query": "cats", "filters": {"path": "bird/*"}},
         "no document matches path 'bird/*'; the closest ids: birds/"),
        ("ask", {"question": "cats?", "filters": {"where": {"habitat": "lake"}}},
         "no document has metadata habitat='lake'; its values include: 'river', 'sea'"),
        ("search", {"query": "cats", "filters": {"where": {"lang": "en"}}},
         "no document has the metadata key 'lang'; the keys are: habitat"),
        ("list_documents", {"glob": "*.docx"}, "no document matches path '*.docx'"),
        ("read_document", {"doc_id": "birds/crows.txt"},
         "no document 'birds/crows.txt' in the knowledge base (7 documents); the closest ids: "
         "birds/crow.txt"),
        ("read_document", {"doc_id": "cats.md", "first_page": 1},
         "'cats.md' has no pages (only PDFs have); read it by characters: 0 to"),
        ("read_document", {"doc_id": "pump.pdf", "first_page": 2, "last_page": 9},
         "pages 2-9 are not in 'pump.pdf', which has pages 1-3"),
        ("read_document", {"doc_id": "cats.md", "start": 5, "end": 10**6},
         "characters 5-1000000 are not in 'cats.md', which has 103"),
        ("read_document", {"doc_id": "cats.md", "start": 50, "end": 10},
         "start 50 is after end 10: give start <= end"),
        ("search", {"query": "cats", "k": 0}, "k: Input should be greater than or equal to 1"),
        ("ask", {"question": "cats?", "history": [{"answer": "x"}]}, "history.0.question: Field required"),
        ("search", {"query": "cats", "filter": {"path": "nothing"}},  # (a typo for filters)
         "filter: no such argument; search takes filters, k, query"),
        ("search", {"query": "cats", "filters": {"paths": "x"}}, "filters.paths: Extra inputs"),
    ]

    async def calls(c):
        return [await c.call_tool(name, args) for name, args, _ in cases]

    with running(app_for(kb_dir)) as url:
        results = session(url, calls)
    for (name, args, want), result in zip(cases, results):
        text = error_text(result)
        assert want in text, (name, args, text)
        assert "Traceback" not in text and "\n" not in text.split(": ", 1)[-1][:200]


def test_an_unknown_prompt_is_a_wrong_argument_not_a_logged_traceback(kb_dir, caplog):
    """`prompts/get` of a prompt the server does not have: the client is told which exist
    (none) and what tools there are; the server's log stays quiet (the SDK logged a page of
    traceback for each such request, a way to flood it)."""
    import logging

    from mcp.shared.exceptions import MCPError

    async def calls(c):
        try:
            await c.get_prompt("summarise", {})
        except MCPError as err:
            return err
        return None

    with caplog.at_level(logging.INFO), running(app_for(kb_dir)) as url:
        err = session(url, calls)
    assert err is not None and err.code == -32602, err
    assert err.message.startswith("Unknown prompt: summarise; this server has none (its tools:")
    assert "search" in err.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_http_mcp_answers_what_is_no_message_in_one_line(kb_dir):
    """A JSON-RPC batch, a request without ``method``: 400 with a one-line JSON-RPC error
    carrying the request's id where it has one (the SDK's answer was pydantic's report of a
    dozen lines); a message after them is answered as usual (the body is passed on whole)."""
    head = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with running(app_for(kb_dir)) as url:
        def post(body):
            r = httpx.post(f"{url}/mcp", content=body, headers=head, timeout=60)
            return r.status_code, r.json()
        batch = post('[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]')
        no_method = post('{"jsonrpc": "2.0", "id": 7}')
        empty = post("[]")
        scalar = post('"{\\"jsonrpc\\": \\"2.0\\", \\"id\\": 5}"')  # (JSON: a string)
        fine = post('{"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": {}}')
    assert batch == (400, {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "a JSON-RPC batch (a list) is not taken; send one message "
                                   "per request"}})
    assert empty == batch
    assert no_method == (400, {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32600, "message": "not a JSON-RPC message (method: Field required)"}})
    assert scalar == (400, {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "not a JSON-RPC message (JSON, but no object); send one "
                                   "per request"}})  # (it was "not valid JSON", with id 5)
    assert fine[0] == 200 and fine[1]["id"] == 8 and fine[1]["result"]["tools"]


def test_http_mcp_is_under_the_servers_host_origin_and_key_rules(kb_dir):
    read = {"Authorization": f"Bearer {READ_KEY}"}
    with running(app_for(kb_dir, key=WRITE_KEY, read_key=READ_KEY)) as url:
        found = call(url, "search", {"query": "Which birds use tools?", "k": 1}, read)
        assert found.structured_content["passages"][0]["doc_id"] == "birds/crow.txt"
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        assert httpx.post(f"{url}/mcp", json=body).status_code == 401  # no key
        assert httpx.post(f"{url}/mcp", json=body, headers={
            "Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(f"{url}/mcp", json=body, headers={  # a page on another site
            **read, "Origin": "https://evil.example"}).status_code == 403
        assert httpx.post(f"{url}/mcp", json=body, headers={  # a rebinding page's name
            **read, "Host": "evil.example"}).status_code == 421
        # no event stream to hold open: a stateless server could never send on it
        r = httpx.get(f"{url}/mcp", headers={**read, "Accept": "text/event-stream"},
                      timeout=10)
        assert r.status_code == 405 and r.headers["allow"] == "POST", r.text
        assert httpx.get(f"{url}/mcp").status_code == 401  # (the key comes first)
        stats = httpx.get(f"{url}/v1/stats", headers=read).json()
    assert stats["requests"]["POST /mcp"]["server_errors"] == 0


def test_http_mcp_from_a_browser_needs_the_page_token(kb_dir):
    """With no key (loopback), an MCP client needs nothing, but a browser's request to /mcp,
    even from the server's own origin, must carry the page's token: a page elsewhere cannot
    drive the tools through the user's browser."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    with running(app_for(kb_dir)) as url:
        same = {**accept, "Sec-Fetch-Site": "same-origin", "Origin": url}
        r = httpx.post(f"{url}/mcp", json=body, headers=same)
        assert r.status_code == 403 and "X-RAG-Token" in r.text
        token = httpx.get(f"{url}/").text.split('name="rag-token" content="')[1].split('"')[0]
        r = httpx.post(f"{url}/mcp", json=body, headers={**same, "X-RAG-Token": token})
        assert r.status_code == 200 and "read_document" in r.text
        r = httpx.post(f"{url}/mcp", json=body, headers=accept)  # an MCP client's way
        assert r.status_code == 200 and "read_document" in r.text


@pytest.fixture(scope="module")
def real_kb(tmp_path_factory):
    """The animals indexed with the packaged embedder by `rag index` (a real `rag mcp` loads
    the embedder that built its knowledge base)."""
    base = tmp_path_factory.mktemp("mcp")
    docs = write_corpus(base / "docs", ANIMALS)
    subprocess.run([sys.executable, "-m", "rag", "index", str(docs), "--kb", str(base / "kb")],
                   check=True, capture_output=True, cwd=ROOT)
    return base / "kb"


def stdio(kb, calls, *flags):
    """Run ``calls(client)`` against `rag mcp --kb KB FLAGS` over stdio; its result."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT),
                                   args=["-m", "rag", "mcp", "--kb", str(kb), *flags])

    async def main():
        async with Client(params) as c:
            return await calls(c)

    return anyio.run(main)


def test_stdio_search_equals_rag_search(real_kb):
    async def calls(c):
        tools = [t.name for t in (await c.list_tools()).tools]
        found = await c.call_tool("search", {"query": "Which birds use tools?", "k": 3})
        missing = await c.call_tool("read_document", {"doc_id": "dog.txt"})
        return tools, found, missing

    tools, found, missing = stdio(real_kb, calls, "--reader", "none")
    out = subprocess.run([sys.executable, "-m", "rag", "search", "Which birds use tools?",
                          "--kb", str(real_kb), "-k", "3", "--json"], capture_output=True,
                         text=True, cwd=ROOT, check=True).stdout
    want = json.loads(out)["hits"]
    assert tools == ["search", "ask", "list_documents", "read_document"]
    got = found.structured_content["passages"]
    assert [(p["doc_id"], p["start"], p["end"], p["text"]) for p in got] == \
        [(h["doc_id"], h["start"], h["end"], h["text"]) for h in want]
    assert [p["score"] for p in got] == pytest.approx([h["score"] for h in want], abs=1e-5)
    assert "the closest ids: dogs.txt" in error_text(missing)


def test_stdio_answers_lines_it_cannot_read(real_kb):
    """A line that is no JSON-RPC message gets a JSON-RPC error, with the line's id where it
    has one (the SDK dropped it: a client waited on that request for ever); the next
    request is answered as usual."""
    import select

    proc = subprocess.Popen([sys.executable, "-m", "rag", "mcp", "--kb", str(real_kb),
                             "--reader", "none"], stdin=subprocess.PIPE, bufsize=0,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT)
    hello = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}}
    search = ('{"jsonrpc": "2.0", "id": %d, "method": "tools/call", "params": {"name": '
              '"search", "arguments": {"query": %s, "k": 1}}}')
    lines = [json.dumps(hello), '{"jsonrpc": "2.0", "method": "notifications/initialized"}',
             search % (1, '"caf\\ud800"'), '{"jsonrpc": "2.0", "id": 2, "meth',
             "[" * 3000 + "]" * 3000, '{"jsonrpc": "2.0", "id": 7, "method": 3}',
             '[{"jsonrpc": "2.0", "id": 8, "method": "ping"}]',
             search % (3, '"Which birds use tools?"')]
    proc.stdin.write(("\n".join(lines) + "\n").encode())
    replies = []
    try:
        for _ in range(7):  # (read before closing stdin: its end ends the session; unbuffered,
            # so that select sees every line not yet read)
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"no reply after {replies}"  # (a dropped line: no reply ever)
            replies.append(json.loads(proc.stdout.readline()))
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert [r.get("id") for r in replies] == [0, 1, None, None, 7, None, 3], replies
    assert replies[4]["error"] == {"code": -32600, "message": "not a JSON-RPC message (method: "
                                   "Input should be a valid string)"}
    assert replies[1]["error"]["code"] == -32600
    assert "params.arguments.query: a string holds a lone surrogate" in \
        replies[1]["error"]["message"]
    assert [r["error"]["code"] for r in replies[2:4]] == [-32700, -32700]
    assert replies[5]["error"] == {"code": -32600, "message": "a JSON-RPC batch (a list) is "
                                   "not taken; send one message per line"}  # (not "not JSON")
    assert "crow" in json.dumps(replies[6]["result"])


def test_stdio_refuses_a_missing_knowledge_base_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rag", "mcp", "--kb", str(tmp_path / "none")],
                          capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith("error: --kb ") and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_stdio_ask_answers_and_follows_up_with_the_projects_reader(real_kb):
    async def calls(c):
        first = await c.call_tool("ask", {"question": "Which birds use tools?"})
        told = first.structured_content
        then = await c.call_tool("ask", {"question": "What colour are they?", "history": [
            {"question": told["rewritten"] or told["question"],
             "answer": told["short"] or told["answer"]}]})
        alone = await c.call_tool("ask", {"question": "What colour are Crows?"})
        return told, then.structured_content, alone.structured_content

    first, then, alone = stdio(real_kb, calls)
    assert not first["abstained"] and "Crows" in first["answer"]
    cited = [c for c in first["citations"] if c["answer_start"] is not None]
    assert cited[0]["doc_id"] == "birds/crow.txt"
    c = cited[0]
    assert ANIMALS["birds/crow.txt"][c["answer_start"]:c["answer_end"]] == first["answer"]
    # the follow-up is read as its self-contained form, and answered from the crow's note
    assert then["rewritten"] == "What colour are Crows?" and alone["rewritten"] is None
    assert then["answer"] == "black" and not then["abstained"]
    # asked alone, the same answer: these one-line notes' anchor is the default, not their
    # self-similarity (~1.0, which made every question read as far from them)
    assert not alone["abstained"] and alone["answer"] == then["answer"]
    assert [c["doc_id"] for c in then["citations"] if c["answer_start"] is not None] == \
        ["birds/crow.txt"]
