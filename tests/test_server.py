"""`rag serve` on a real uvicorn server (fake embedder, retrieval only): the JSON API, micro-
batching, uploads and deletes through the `rag index` path, a terminal writer seen without a
restart, the API key, and bad input."""
import json
import subprocess
import sys
import threading

import httpx
import pytest

from conftest import ROOT, FakeEmbedder
from knowledge import KnowledgeBase, sync
from rag.retrieval import Retriever
from serving import app_for, running


@pytest.fixture
def kb_dir(served_kb):
    return served_kb


def test_search_and_ask_return_the_cli_objects(kb_dir):
    with running(app_for(kb_dir)) as url, KnowledgeBase.open(kb_dir,
                                                            embedder=FakeEmbedder()) as kb:
        r = httpx.post(f"{url}/v1/search", json={"query": "Which birds use tools?", "k": 3})
        assert r.status_code == 200
        want = [h.to_dict() for h in Retriever(kb).retrieve("Which birds use tools?", k=3)]
        assert r.json() == {"query": "Which birds use tools?", "retrieval": "hybrid",
                            "hits": want}
        assert want[0]["doc_id"] == "birds/crow.txt"
        r = httpx.post(f"{url}/v1/ask", json={"question": "What do cats eat?", "k": 2,
                                              "filters": {"path": "*.md"}})
        body = r.json()
        assert set(body) == {"question", "answer", "abstained", "confidence", "similarity",
                             "citations", "timings", "explanation", "kind", "note",
                             "form", "short", "context", "withheld", "rewritten",
                             "read_as"}
        assert body["citations"] and {c["doc_id"] for c in body["citations"]} == {"cats.md"}
        text = kb.document_text("cats.md")
        for c in body["citations"]:
            assert text[c["start"]:c["end"]] == c["text"]  # exact offsets
        r = httpx.post(f"{url}/v1/ask", json={"question": "What do cats eat?",
                                              "filters": {"path": "cts.md"}})
        assert r.status_code == 422 and message(r).startswith(
            "filters: no document matches path 'cts.md'; the closest ids: cats.md")
        r = httpx.post(f"{url}/v1/search", json={"query": "cats", "filters": {"where": {
            "habitat": "lake"}}})
        assert r.status_code == 422 and message(r).startswith(
            "filters: no document has metadata habitat='lake'")
        lexical = httpx.post(f"{url}/v1/search", json={"query": "salmon", "k": 1,
                                                       "retrieval": "lexical"}).json()
        assert lexical["retrieval"] == "lexical" and lexical["hits"][0]["doc_id"] == "fish.jsonl#salmon"


def test_questions_that_arrive_together_share_one_call_and_keep_their_answers(kb_dir):
    questions = {"What do cats eat?": "cats.md", "Which birds use tools?": "birds/crow.txt",
                 "Where do salmon swim?": "fish.jsonl#salmon", "Which bird sings at dawn?": "birds/robin.txt",
                 "Do dogs love walks?": "dogs.txt", "What are sharks?": "fish.jsonl#shark"}
    app = app_for(kb_dir, window_ms=300)
    results = {}

    def ask(q):
        results[q] = httpx.post(f"{url}/v1/ask", json={"question": q, "k": 1},
                                timeout=30).json()

    with running(app) as url:
        threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = httpx.get(f"{url}/v1/stats").json()
    for q, doc in questions.items():  # each request got its own answer back
        assert results[q]["question"] == q
        assert results[q]["citations"][0]["doc_id"] == doc, q
    assert max(int(n) for n in stats["batches"]) > 1  # at least one batch held several
    assert sum(int(n) * c for n, c in stats["batches"].items()) == len(questions)
    assert stats["requests"]["POST /v1/ask"]["requests"] == len(questions)
    assert stats["requests"]["POST /v1/ask"]["p50_ms"] > 0


def message(r) -> str:
    """The one-line message of an API error, checking its shape."""
    body = r.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), r.text
    assert "\n" not in body["error"]["message"] and "Traceback" not in r.text
    return body["error"]["message"]


def test_upload_get_and_delete_documents_stored_by_content_hash(kb_dir):
    import hashlib

    otters = b"Otters hold hands while they sleep in the water."
    with running(app_for(kb_dir)) as url:
        files = [("files", ("otters.txt", otters)),
                 ("files", ("../../owls.md", b"# Owls\n\nOwls hunt at night and fly silently.")),
                 ("files", ("tool.exe", b"MZ")), ("files", ("binary.txt", bytes(range(256)) * 3))]
        r = httpx.post(f"{url}/v1/documents", files=files)
        assert r.status_code == 200, r.text
        body = r.json()
        otters_id = hashlib.sha256(otters).hexdigest()[:16] + "/otters.txt"
        assert body["added"] == 2 and otters_id in body["documents"]
        assert sorted(d.split("/")[-1] for d in body["documents"]) == ["otters.txt", "owls.md"]
        reasons = {s["file"]: s["reason"] for s in body["skipped"]}  # the rest still landed
        assert set(reasons) == {"tool.exe", "binary.txt"} and "unsupported" in reasons["tool.exe"]
        stored = sorted(p.relative_to(kb_dir / "uploads").as_posix()
                        for p in (kb_dir / "uploads").rglob("*") if p.is_file())
        assert stored == sorted(body["documents"])  # nothing outside, nothing rejected kept
        listed = httpx.get(f"{url}/v1/documents", params={"limit": 3}).json()
        assert listed["total"] == 8 and len(listed["documents"]) == 3
        doc = httpx.get(f"{url}/v1/documents/{otters_id}").json()
        assert doc["text"].startswith("Otters hold hands") and doc["chunks"]
        hit = httpx.post(f"{url}/v1/search", json={"query": "otters sleep holding hands",
                                                   "k": 1}).json()["hits"][0]
        assert hit["doc_id"] == otters_id
        same = httpx.post(f"{url}/v1/documents", files=[("files", ("otters.txt", otters))])
        assert (same.json()["added"], same.json()["unchanged"]) == (0, 1)
        other = httpx.post(f"{url}/v1/documents", files=[
            ("files", ("otters.txt", b"Sea otters use stones to open shells."))]).json()
        assert other["added"] == 1 and other["documents"] != [otters_id]  # no overwrite
        assert httpx.get(f"{url}/v1/documents/{otters_id}").status_code == 200
        assert httpx.delete(f"{url}/v1/documents/{otters_id}").status_code == 200
        assert httpx.get(f"{url}/v1/documents/{otters_id}").status_code == 404
        assert message(httpx.delete(f"{url}/v1/documents/{otters_id}")).startswith("no document")
        assert not (kb_dir / "uploads" / otters_id).exists()
        hits = httpx.post(f"{url}/v1/search", json={"query": "otters", "k": 9}).json()["hits"]
        assert otters_id not in {h["doc_id"] for h in hits}
        assert httpx.get(f"{url}/v1/stats").json()["documents"] == 8
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        assert kb.store.verify() == []


def test_asks_while_documents_are_uploaded_see_committed_states_only(kb_dir):
    texts = {f"note{i}.txt": f"Note {i}: the meeting number {i} is in room {100 + i}."
             for i in range(6)}
    committed = {t for t in texts.values()}
    with running(app_for(kb_dir, window_ms=20)) as url, \
            KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        committed |= {kb.document_text(d) for d, in kb.store.conn.execute(
            "SELECT doc_id FROM documents")}
        answers, errors, stop = [], [], threading.Event()

        def asker():
            while not stop.is_set():
                r = httpx.post(f"{url}/v1/ask", json={"question": "which room is the meeting in",
                                                      "k": 3}, timeout=30)
                (answers if r.status_code == 200 else errors).append(r)

        threads = [threading.Thread(target=asker) for _ in range(4)]
        for t in threads:
            t.start()
        for name, text in texts.items():
            r = httpx.post(f"{url}/v1/documents", files=[("files", (name, text.encode()))],
                           timeout=30)
            assert r.status_code == 200, r.text
        stop.set()
        for t in threads:
            t.join()
    assert not errors and len(answers) > 8
    for r in answers:  # every cited passage is text of a committed document
        for c in r.json()["citations"]:
            assert any(c["text"] in t for t in committed), c
    assert any("room" in c["text"] for c in answers[-1].json()["citations"])


def test_a_terminal_writer_is_seen_without_a_restart_and_a_busy_lock_is_409(kb_dir, tmp_path):
    from filelock import FileLock

    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "whales.txt").write_text("Whales sing long songs under the ocean.")
    with running(app_for(kb_dir)) as url:
        before = httpx.get(f"{url}/v1/stats").json()
        sync(kb_dir, [tmp_path / "more"], embedder=FakeEmbedder(), log=lambda m: None)
        hit = httpx.post(f"{url}/v1/search", json={"query": "whales songs",
                                                   "k": 1}).json()["hits"][0]
        assert hit["doc_id"] == "whales.txt"
        after = httpx.get(f"{url}/v1/stats").json()
        assert after["generation"] == before["generation"] + 1
        assert after["documents"] == before["documents"] + 1
        kept = httpx.post(f"{url}/v1/documents", files=[("files", ("k.txt", b"kept upload"))])
        [kept_id] = kept.json()["documents"]
        with FileLock(str(kb_dir / "write.lock")):  # another `rag index` is writing
            again = httpx.post(f"{url}/v1/documents", files=[("files", ("k.txt",
                                                                        b"kept upload"))])
            assert again.status_code == 409
            r = httpx.post(f"{url}/v1/documents", files=[("files", ("x.txt", b"hello there"))])
            assert r.status_code == 409 and "locked" in message(r)
            assert httpx.delete(f"{url}/v1/documents/whales.txt").status_code == 409
        assert not any((kb_dir / "uploads").rglob("x.txt"))
        assert (kb_dir / "uploads" / kept_id).exists()  # a failed re-upload keeps the file
        assert httpx.get(f"{url}/v1/stats").json()["documents"] == after["documents"] + 1


def test_head_is_answered_where_get_is(kb_dir):
    with running(app_for(kb_dir)) as url:
        for path in ("/healthz", "/v1/stats", "/"):
            got, head = httpx.get(f"{url}{path}"), httpx.head(f"{url}{path}")
            assert head.status_code == got.status_code == 200, path
            assert head.content == b"" and head.headers["content-type"] == \
                got.headers["content-type"]
        assert httpx.head(f"{url}/v1/ask").status_code == 405  # (POST only)
        assert httpx.head(f"{url}/v1/stats", headers={"Host": "evil.example"}).status_code == 421


def test_bad_requests_get_4xx_json_errors_and_change_nothing(kb_dir):
    with running(app_for(kb_dir, max_file_mb=0.001)) as url:
        before = httpx.get(f"{url}/v1/stats").json()
        for body in ({"question": "   "}, {"question": "x", "k": 0}, {"question": "x", "k": 99},
                     {"question": "x" * 5000}, {"question": "x", "retrieval": "magic"}, {},
                     {"question": 3}, {"question": "x", "colour": "red"},
                     {"question": "x", "filters": {"path": "*", "nope": 1}},
                     {"question": "\u0000"}, {"question": "\u200b\u200b"},
                     {"question": "x", "k": "3"}, {"question": "x", "k": True}):
            r = httpx.post(f"{url}/v1/ask", json=body)
            assert r.status_code in (400, 422), body
            message(r)
        r = httpx.post(f"{url}/v1/search", json={"query": ""})  # (as the CLI says it, not
        assert message(r) == "query: empty; send some text"  # "should match pattern '\S'")
        for path, raw, field in (  # JSON's "\ud800" is no text: each a 422 naming its field
                ("/v1/search", '{"query": "x", "filters": {"where": {"lang": "\\ud800"}}}',
                 "filters.where.lang"),
                ("/v1/ask", '{"question": "x", "filters": {"where": {"\\udc80": "en"}}}',
                 "filters.where.\\udc80"),
                ("/v1/chat/completions",
                 '{"messages": [{"role": "user", "content": "what is \\ud800"}]}',
                 "messages.0.content"),
                ("/v1/chat/completions", '{"messages": [{"role": "user", "content": '
                 '[{"type": "text", "text": "\\udfff"}]}], "stream": true}',
                 "messages.0.content.0.text")):
            r = httpx.post(f"{url}{path}", content=raw.encode(),
                           headers={"content-type": "application/json"})
            assert r.status_code == 422 and field in message(r), (path, r.text)
        for route, query in (("/v1/page", "doc=x&n=9223372036854775808"),
                             ("/v1/page.png", "doc=x&n=99999999999999999999"),
                             ("/v1/page", "doc=x&n=1&start=99999999999999999999&end=1")):
            r = httpx.get(f"{url}{route}?{query}")
            assert r.status_code == 422, (route, query, r.text)
            message(r)
        for content, kind, status in ((b"{not json", "application/json", 422),
                                      (b"question=x", "text/plain", 415),
                                      (b"x" * 300_000, "application/json", 413)):
            r = httpx.post(f"{url}/v1/ask", content=content, headers={"content-type": kind})
            assert r.status_code == status, (kind, r.text)
            message(r)
        import socket  # a body of unknown length is refused before it is read

        host, port = url.rsplit("/", 1)[-1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() +
                         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\n{\"a\":\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 411")
        for name, data, status in (("tool.exe", b"MZ", 400), (".hidden.txt", b"hi", 400),
                                   ("big.txt", b"x" * 5000, 413), ("n" * 300 + ".txt", b"hi", 400),
                                   ("binary.txt", bytes(range(256)) * 3, 400)):
            r = httpx.post(f"{url}/v1/documents", files=[("files", (name, data))])
            assert r.status_code == status, (name, r.text)
            assert r.json()["error"]["skipped"][0]["file"] in (name, "")
            message(r)
        assert httpx.post(f"{url}/v1/documents", json={"path": "/etc/passwd"}).status_code == 415
        assert not [p for p in (kb_dir / "uploads").rglob("*") if p.is_file()]
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": [
            {"role": "system", "content": "be brief"}]})
        assert r.status_code == 400 and "user" in message(r)
        assert httpx.get(f"{url}/v1/documents/nope").status_code == 404
        assert httpx.get(f"{url}/v1/nothing-here").status_code == 404
        message(httpx.get(f"{url}/v1/nothing-here"))
        assert httpx.get(f"{url}/v1/stats").json()["documents"] == before["documents"]


def test_chat_completions_in_openai_shape_with_citations_and_streaming(kb_dir):
    with running(app_for(kb_dir)) as url:
        msgs = [{"role": "system", "content": "You answer from documents."},
                {"role": "user", "content": [{"type": "text", "text": "Which birds use tools?"}]}]
        body = httpx.post(f"{url}/v1/chat/completions", json={"messages": msgs, "k": 2}).json()
        assert body["object"] == "chat.completion"
        message = body["choices"][0]["message"]
        assert message["role"] == "assistant" and "[1] birds/crow.txt" in message["content"]
        assert body["citations"][0]["doc_id"] == "birds/crow.txt"
        with httpx.stream("POST", f"{url}/v1/chat/completions",
                          json={"messages": msgs, "k": 2, "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[len("data: "):]) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == message["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["citations"][0]["doc_id"] == "birds/crow.txt"


def test_follow_ups_over_ask_and_chat_completions_read_the_conversation(kb_dir):
    """/v1/ask takes the earlier turns as ``history``; /v1/chat/completions takes them from
    the earlier messages (the assistant's text without its sources); both answer a follow-up
    as its self-contained form, and a question that stands alone as it was typed."""
    turn = {"question": "Which black birds are clever?", "answer": "Crows"}
    with running(app_for(kb_dir)) as url:
        def ask(question, history=()):
            r = httpx.post(f"{url}/v1/ask", json={"question": question, "k": 2,
                                                  "history": list(history)})
            assert r.status_code == 200, r.text
            return r.json()

        followup = ask("What do they use?", [turn])
        alone = ask("What do Crows use?")
        standing = ask("Which birds use tools?", [turn])
        first = httpx.post(f"{url}/v1/chat/completions", json={"k": 2, "messages": [
            {"role": "user", "content": "Which black birds are clever?"}]}).json()
        reply = first["choices"][0]["message"]["content"]
        assert "\n\nSources:\n[1] " in reply
        chat = httpx.post(f"{url}/v1/chat/completions", json={"k": 2, "messages": [
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": "Which black birds are clever?"},
            {"role": "assistant", "content": "Crows" + reply[reply.index("\n\nSources:"):]},
            {"role": "user", "content": [{"type": "text", "text": "What do they use?"}]}]}).json()
        bad = httpx.post(f"{url}/v1/ask", json={"question": "q", "history": [{"answer": "a"}]})
        long = httpx.post(f"{url}/v1/ask", json={"question": "q", "history": [
            {"question": "x" * 3000}]})
    assert followup["rewritten"] == "What do Crows use?" and alone["rewritten"] is None
    assert followup["question"] == "What do they use?"
    assert followup["citations"][0]["doc_id"] == alone["citations"][0]["doc_id"] == \
        "birds/crow.txt"
    assert standing["rewritten"] is None  # a question that stands alone: as typed
    assert standing["citations"] == ask_alone(kb_dir, "Which birds use tools?")
    assert chat["rag"]["rewritten"] == "What do Crows use?"
    assert chat["citations"][0]["doc_id"] == "birds/crow.txt"
    assert bad.status_code == 422 and "history.0.question" in message(bad)
    assert long.status_code == 422 and "history.0.question" in message(long)


def ask_alone(kb_dir, question):
    with running(app_for(kb_dir)) as url:
        return httpx.post(f"{url}/v1/ask", json={"question": question, "k": 2}).json()[
            "citations"]


def test_chat_history_is_each_user_message_made_self_contained_in_order():
    from rag.conversation import Turn
    from rag.serve.chat import ChatBody, conversation_of

    body = ChatBody(messages=[
        {"role": "user", "content": "Who founded Apple?"},
        {"role": "assistant", "content": "Steve Jobs\n\nSources:\n[1] apple.txt: \"…\""},
        {"role": "user", "content": "Where was he born?"},
        {"role": "assistant", "content": "Not found in the knowledge base.\n\nSources:\n[1] x"},
        {"role": "tool", "content": "ignored"},
        {"role": "user", "content": "When did he die?"}])
    question, turns = conversation_of(body)
    assert question == "When did he die?"
    assert turns == [Turn("Who founded Apple?", "Steve Jobs"),
                     Turn("Where was Steve Jobs born?", None)]
    with pytest.raises(ValueError, match="no user message"):
        conversation_of(ChatBody(messages=[{"role": "system", "content": "x"}]))


def test_an_api_key_guards_the_api_and_the_docs_describe_it(kb_dir):
    with running(app_for(kb_dir, key="s3cret")) as url:
        assert httpx.post(f"{url}/v1/search", json={"query": "cats"}).status_code == 401
        assert httpx.get(f"{url}/openapi.json").status_code == 401
        assert httpx.post(f"{url}/v1/search", json={"query": "cats"},
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.post(f"{url}/v1/search", json={"query": "cats"},
                        headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["hits"]
        assert httpx.get(f"{url}/healthz").json() == {"ok": True, "auth": True}
        page = httpx.get(f"{url}/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        assert httpx.get(f"{url}/static/app.js").status_code == 200
        key = {"X-API-Key": "s3cret"}
        docs = httpx.get(f"{url}/docs", headers=key)
        assert docs.status_code == 200 and "/docs-assets/swagger-ui-bundle.js" in docs.text  # served here, not from a CDN
        assert "cdn" not in docs.text.lower()
        assert httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js", headers=key).status_code == 200
        paths = httpx.get(f"{url}/openapi.json", headers=key).json()["paths"]
        for path in ("/v1/ask", "/v1/search", "/v1/chat/completions", "/v1/documents",
                     "/v1/documents/{doc_id}", "/v1/stats", "/healthz"):
            assert path in paths, path


def test_serve_refuses_the_network_without_a_key(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rag", "serve", "--kb", str(tmp_path / "kb"),
                        "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--api-key" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "kb").exists()
