"""Hostile uploads to `rag serve` (real uvicorn in a thread, real parse workers, fake
embedder): an over-limit file cut off while it streams, too many files, too many uploads at
once, a stalled body, compression bombs, a file that parses for minutes while another
upload waits, a 5,000,000-character line. What each costs in memory and time is measured by
eval/bench_serve_attacks.py, not here.
"""
import socket
import threading
import time

import httpx
import pytest

import hostile_uploads as H
from knowledge.parsing import ParsePool
from serving import app_for, running

BOUNDARY = "b0undary"


@pytest.fixture
def kb_dir(served_kb):
    return served_kb


def stored(kb_dir) -> list[str]:
    """Files under KB_DIR/uploads (where uploads land, and stream into)."""
    return sorted(p.name for p in (kb_dir / "uploads").rglob("*") if p.is_file())


def multipart(name: str, size: int, sent: list, pause: float = 0):
    """(headers, body generator) of a one-file upload of ``size`` bytes, counting what the
    server took into ``sent``; the body stops for ``pause`` seconds after its first piece."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename="
            f"\"{name}\"\r\nContent-Type: text/plain\r\n\r\n").encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    piece = b"x" * 65536

    def body():
        yield head
        left = size
        while left > 0:
            chunk = piece[:left]
            yield chunk
            sent[0] += len(chunk)
            left -= len(chunk)
            if pause and sent[0] == len(chunk):
                time.sleep(pause)
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
               "Content-Length": str(len(head) + size + len(tail))}
    return headers, body()


def test_an_over_limit_file_is_cut_off_while_it_streams(kb_dir):
    """64 MB sent against a 4 MB limit: 413 once the file crosses 4 MB, the connection
    closed, the rest never read (it would be a 5.5 s, 900 MB spool otherwise)."""
    with running(app_for(kb_dir, max_file_mb=4)) as url:
        sent = [0]
        headers, body = multipart("huge.txt", 64 << 20, sent)
        r = httpx.post(f"{url}/v1/documents", content=body, headers=headers, timeout=60)
        assert r.status_code == 413, r.text
        assert r.json()["error"]["skipped"] == [
            {"file": "huge.txt", "reason": "larger than 4 MB, the upload limit"}]
        assert r.headers["connection"] == "close"
        assert sent[0] < 24 << 20, sent  # (4 MB, and what the sockets' buffers held)
        assert stored(kb_dir) == []
        assert httpx.get(f"{url}/v1/stats").json()["documents"] == 6


def test_a_21st_file_and_a_malformed_body_are_refused_and_nothing_stays(kb_dir):
    with running(app_for(kb_dir)) as url:
        files = [("files", (f"n{i}.txt", f"note {i}".encode())) for i in range(21)]
        r = httpx.post(f"{url}/v1/documents", files=files)
        assert r.status_code == 413 and "at most 20 files" in r.json()["error"]["message"]
        r = httpx.post(f"{url}/v1/documents", files={"other": ("a.txt", b"hi")})
        assert r.status_code == 400 and "field 'files'" in r.json()["error"]["message"]
        r = httpx.post(f"{url}/v1/documents", content=b"--x\r\ngarbage",
                       headers={"Content-Type": "multipart/form-data; boundary=x"})
        assert r.status_code == 400, r.text
        r = httpx.post(f"{url}/v1/documents", data={"files": "not a file"}, files={
            "files": ("a.txt", b"hi")})
        assert r.status_code == 400, r.text
        assert stored(kb_dir) == []


def test_uploads_in_flight_are_capped_and_a_stalled_body_is_cut(kb_dir, monkeypatch):
    import rag.serve.uploads as uploads

    monkeypatch.setattr(uploads, "BODY_IDLE_S", 1.0)
    with running(app_for(kb_dir, max_uploads_in_flight=1)) as url:
        sent, result = [0], {}
        headers, body = multipart("slow.txt", 4 << 20, sent, pause=4.0)

        def slow():
            result["r"] = httpx.post(f"{url}/v1/documents", content=body, headers=headers,
                                     timeout=60)

        t = threading.Thread(target=slow)
        t.start()
        while not sent[0]:
            time.sleep(0.05)
        time.sleep(0.3)
        busy = httpx.post(f"{url}/v1/documents", files=[("files", ("a.txt", b"hello"))])
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5", busy.text
        t.join(timeout=30)  # the body stalls for 4 s: cut off after BODY_IDLE_S
        r = result["r"]
        assert r.status_code == 408 and "stalled" in r.json()["error"]["message"], r.text
        ok = httpx.post(f"{url}/v1/documents", files=[("files", ("a.txt", b"hello there"))])
        assert ok.status_code == 200, ok.text  # the slot is free again
        assert stored(kb_dir) == ["a.txt"]


@pytest.mark.parametrize("name,build,why", [
    ("rows.jsonl.gz", H.jsonl_gz_bomb, "declares it inflates"),
    ("newlines.jsonl.gz", H.newlines_gz_bomb, "declares it inflates"),
    ("report.docx", H.docx_bomb, "declares it inflates"),
], ids=["600MB-jsonl.gz", "100MB-newlines.gz", "300MB-docx"])
def test_compression_bombs_are_refused_before_they_inflate(kb_dir, name, build, why):
    with running(app_for(kb_dir)) as url:
        r = httpx.post(f"{url}/v1/documents", files=[("files", (name, build()))], timeout=60)
        assert r.status_code == 400, r.text
        [skip] = r.json()["error"]["skipped"]
        assert skip["file"] == name and why in skip["reason"], skip
        assert "compression bomb" in skip["reason"]
        assert stored(kb_dir) == []


@pytest.mark.parametrize("slow", ["pdf", "html"])
def test_a_small_upload_lands_while_a_hostile_file_is_parsed(kb_dir, slow):
    """The 13 KB PDF whose 50 pages share one 2 MB content stream held the writer for 200 s
    (and a tiny upload behind it): files are now parsed, in worker processes, before the
    writer's lock. (The HTML is slow whatever the PDF extractor.)"""
    name, data = (("slow.pdf", H.shared_stream_pdf()) if slow == "pdf" else
                  ("slow.html", H.many_elements_html(300_000)))
    with ParsePool(2, timeout_s=20) as pool, \
            running(app_for(kb_dir, parser=pool)) as url:
        done = {}

        def hostile():
            done["r"] = httpx.post(f"{url}/v1/documents", files=[("files", (name, data))],
                                   timeout=300)
            done["at"] = time.monotonic()

        t = threading.Thread(target=hostile)
        t.start()
        deadline = time.monotonic() + 60
        while not pool.busy and "r" not in done and time.monotonic() < deadline:
            time.sleep(0.02)
        small = httpx.post(f"{url}/v1/documents", timeout=300,
                           files=[("files", ("small.txt", b"Otters sleep holding hands."))])
        landed = time.monotonic()
        assert small.status_code == 200 and small.json()["added"] == 1, small.text
        if "r" not in done:
            assert pool.busy  # it lands while the hostile file is still being parsed
        t.join(timeout=300)
        assert done["r"].status_code in (200, 400)
        assert "r" in done and (done["at"] > landed or slow == "pdf"), done


def test_a_line_without_separators_is_split_at_the_chunk_size(kb_dir):
    """Uploads chunk as `rag index` does (test_chunking holds the 5,000,000-character case;
    here 400,000, as the fake embedder is slow on 25,000 chunks)."""
    run = "QUJDRA+/" * 50_000
    with running(app_for(kb_dir)) as url:
        r = httpx.post(f"{url}/v1/documents", timeout=300, files=[
            ("files", ("blob.txt", ("Before it.\n" + run + "\nAfter it.").encode()))])
        assert r.status_code == 200, r.text
        [doc_id] = r.json()["documents"]
        doc = httpx.get(f"{url}/v1/documents/{doc_id}", timeout=60).json()
    sizes = [c["end"] - c["start"] for c in doc["chunks"]]
    assert len(sizes) == 2 + 400_000 // 200 and max(sizes) == 200


def test_uploads_raw_socket_cut_reports_413_before_the_body_is_sent(kb_dir):
    """The refusal arrives while the client is still sending (what a browser or curl shows),
    not after the whole body: read the reply after sending only a little past the limit."""
    with running(app_for(kb_dir, max_file_mb=1)) as url:
        port = int(url.rsplit(":", 1)[1])
        headers, body = multipart("big.txt", 16 << 20, [0])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            s.sendall(f"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode() +
                      "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n")
            sent = 0
            for piece in body:
                s.sendall(piece)
                sent += len(piece)
                if sent > (1 << 20) + (256 << 10):
                    break
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
