"""Run a `rag serve` application on a real uvicorn server in a thread, on a free port: the
server `rag serve` runs (rag.serve.server: bounded connections)."""
import threading
import time
from contextlib import contextmanager


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
