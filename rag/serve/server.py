"""The HTTP server under `rag serve`: uvicorn, with its connections bounded.

uvicorn reads request headers and bodies for as long as a client cares to send them, and
keeps every connection it accepts. Here a connection must finish each request's headers within
``header_timeout_s`` of its first byte (or of connecting), and a body must not stop arriving
for ``body_idle_s`` nor, past that long, arrive slower than ``MIN_BODY_RATE`` on average (while
the server is ready to read it: a byte every 29 s is no upload), or the connection is answered
408 and closed; past ``max_connections`` open at once a new connection is answered 503 and
closed.

Example: ``make_server(app, "127.0.0.1", 8000).run()``.
"""
from __future__ import annotations

import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_CONNECTIONS = 200
HEADER_TIMEOUT_S = 10.0
BODY_IDLE_S = 30.0  # (as an upload's: rag/serve/uploads.py)
MIN_BODY_RATE = 1024  # bytes/s on average, judged once a body has taken BODY_IDLE_S (a 1 GB
# upload over 10 Mbit/s sends 1,200 times that)


def _raw(status: str, code: str, message: str, extra: str = "") -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"x-content-type-options: nosniff\r\n{extra}connection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a header-read timeout and a cap on open connections."""

    max_connections = MAX_CONNECTIONS
    header_timeout_s = HEADER_TIMEOUT_S
    body_idle_s = BODY_IDLE_S

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._timer = None
        self._body_timer = None
        self._body_began = None  # (loop time of a body's first wait)
        self._body_bytes = 0
        self._full = len(self.connections) > self.max_connections
        if not self._full:
            self._arm()

    def data_received(self, data: bytes) -> None:
        if self._full:  # answered once its request begins (a reply before it may be lost)
            self.transport.write(_raw("503 Service Unavailable", "unavailable",
                                      f"the server holds {self.max_connections} connections, "
                                      "its limit; retry in a moment", "retry-after: 1\r\n"))
            self.transport.close()
            return
        self._body_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # (between requests, or amid one's headers)
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watch_body()

    def connection_lost(self, exc) -> None:
        for timer in (self._timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def _watch_body(self) -> None:
        """(Re)start the body's idle timer while a request's body is due, stop it after; a
        body arriving too slowly on average is cut off here."""
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            if self._body_began is None or self.flow.read_paused:  # (the rate is judged over
                # the time since the server last held back reading, not over its pauses)
                self._body_began, self._body_bytes = self.loop.time(), 0
            elapsed = self.loop.time() - self._body_began
            if elapsed > self.body_idle_s and self._body_bytes < MIN_BODY_RATE * elapsed:
                return self._cut_off(f"arrived slower than {MIN_BODY_RATE} bytes/s")
            self._body_timer = self.loop.call_later(self.body_idle_s, self._body_expired)
        else:
            self._body_began = None

    def _body_expired(self) -> None:
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        if self.flow.read_paused:  # (the server is not reading: not idle)
            self._body_began, self._body_bytes = self.loop.time(), 0
            self._body_timer = self.loop.call_later(self.body_idle_s, self._body_expired)
            return
        self._cut_off(f"stopped arriving for {self.body_idle_s:g} s")

    def _cut_off(self, why: str) -> None:
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_raw("408 Request Timeout", "timeout",
                                      f"the request body {why}"))
        self.transport.close()

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = self.loop.call_later(self.header_timeout_s, self._expired)

    def _expired(self) -> None:
        self._timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_raw("408 Request Timeout", "timeout",
                                          "the request headers took longer than "
                                          f"{self.header_timeout_s:g} s"))
            self.transport.close()


def make_server(app, host: str, port: int, *, max_connections: int = MAX_CONNECTIONS,
                header_timeout_s: float = HEADER_TIMEOUT_S, body_idle_s: float = BODY_IDLE_S,
                started=None) -> uvicorn.Server:
    """A uvicorn server for ``app`` with bounded connections; ``started(server)`` is called
    once it listens."""
    protocol = type("Bounded", (BoundedH11,), {"max_connections": max_connections,
                                                "header_timeout_s": header_timeout_s,
                                                "body_idle_s": body_idle_s})

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started and started is not None:
                started(self)

    return Server(uvicorn.Config(app, host=host, port=port, http=protocol,
                                 log_level="critical", access_log=False,
                                 h11_max_incomplete_event_size=16 * 1024))
