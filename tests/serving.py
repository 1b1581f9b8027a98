"""Run a `rag serve` application on a real uvicorn server in a thread, on a free port: the
server `rag serve` runs (rag.serve.server: bounded connections). ``app_for`` builds the
application over a knowledge base made with the fake embedder (the ``served_kb`` fixture
of conftest.py)."""
import threading
import time
from contextlib import contextmanager


def app_for(kb_dir, **options):
    """The rag serve application over ``kb_dir`` (fake embedder, no reader)."""
    from conftest import FakeEmbedder
    from knowledge import KnowledgeBase
    from rag.serve.app import create_app

    kb = KnowledgeBase.open(kb_dir, embedder=FakeEmbedder())
    return create_app(kb_dir, kb, None, load_embedder=FakeEmbedder, **options)


@contextmanager
def running(app, **limits):
    """Yield the base URL of ``app`` served on 127.0.0.1; stop it afterwards. ``limits``:
    ``make_server``'s (max_connections, header_timeout_s)."""
    from rag.serve.server import make_server

    server = make_server(app, "127.0.0.1", 0, **limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
