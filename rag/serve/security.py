"""Who may talk to `rag serve`: trusted Host names, same-origin browsers, API keys.

Loopback is no boundary against the user's own browser: any page it shows can send "simple"
requests (form posts, no-cors fetches) to 127.0.0.1, and a DNS-rebinding page reaches it
under a foreign Host name. So, on every request, before any work:

1. **Host**: only 127.0.0.1, localhost, [::1] and the bound address on the bound port, the
   names given with ``--allowed-host``, and (on a wildcard bind) IP addresses on the bound
   port are served; anything else is 421. A rebinding page's requests carry its own name.
2. **Origin / Sec-Fetch-Site**: a browser request from another origin (or another site) is
   403 unless ``--cors-origin`` named that origin; only a top-level navigation to a page
   (a link to the server) is let through.
3. **Proof on the API**: a browser request to /v1/ (or any API prefix) must also carry what
   no simple cross-site request can: the page's per-process token (``X-RAG-Token``, in the
   page's HTML, which other origins cannot read) or an API key header. Clients that are
   not browsers (curl, the OpenAI SDK, an MCP client) send neither Origin nor Sec-Fetch-*
   and need only the key, if the server has one.
4. **Keys**: a read key may ask, search and read; a write key may also upload and delete
   (routes that write declare ``Depends(require_write)``). Compared in constant time.

Every response carries a Content-Security-Policy (scripts from this server only, no
framing), ``nosniff``, ``no-referrer`` and, from the API, ``no-store``.

Example: ``app = Guard(app, Access(port_keys...))`` (create_app wires it).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections import Counter
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
API_PREFIXES = ("/v1/", "/mcp")  # what a browser may only call with proof
PUBLIC = ("/", "/healthz")  # served without a key (the page asks for it)
PUBLIC_PREFIXES = ("/static/",)
PAGES = ("/", "/docs")  # a top-level navigation from elsewhere may open these
TOKEN_HEADER = "x-rag-token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-resource-policy", b"same-origin")]
MIN_KEY_CHARS = 16  # on a network bind


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_key(key: str | None, what: str, bind: str) -> None:
    """Refuse an empty key, one a header cannot carry as it is, and a short one on a network
    bind (a UsageError says why): ``check_key(os.environ["RAG_API_KEY"], "$RAG_API_KEY",
    "0.0.0.0")``."""
    from knowledge.errors import UsageError

    if key is None:
        return
    if not key.strip():
        raise UsageError(f"{what} is empty; give a key of at least {MIN_KEY_CHARS} characters "
                         "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())')")
    if not all(33 <= ord(c) < 127 for c in key):  # (what a header carries as it is)
        raise UsageError(f"{what} holds spaces, control or non-ASCII characters; use "
                         "letters, digits and punctuation")
    if len(key) < MIN_KEY_CHARS and not is_loopback(bind):
        raise UsageError(f"{what} has {len(key)} characters; a server on {bind} needs at least "
                         f"{MIN_KEY_CHARS} (e.g. python3 -c 'import secrets; "
                         "print(secrets.token_urlsafe())')")


@dataclass(frozen=True)
class Access:
    """The rules of one server: keys (``write`` may do everything, ``read`` may not upload
    or delete), the Host names besides loopback, opted-in origins, the bind address and the
    page's token."""

    write: str | None = None
    read: str | None = None
    hosts: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    bind: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def keyed(self) -> bool:
        return bool(self.write or self.read)

    def level(self, given: str) -> str | None:
        """"write", "read" or None for the key ``given`` (constant time, both compared)."""
        w = bool(self.write) and hmac.compare_digest(given.encode(), self.write.encode())
        r = bool(self.read) and hmac.compare_digest(given.encode(), self.read.encode())
        return "write" if w else "read" if r else None

    def host_ok(self, host: str, port: int | None) -> bool:
        """Whether a request with this Host header is for this server."""
        host = host.lower()
        if host.startswith("["):
            name, _, given = host.partition("]")
            name, given = name + "]", given[1:] if given.startswith(":") else ""
        else:
            name, _, given = host.partition(":")
        if host in self.hosts or name in self.hosts:  # (a name given alone: on any port)
            return True
        if (int(given) if given.isdigit() else 80 if not given else None) != port:
            return False
        if name in LOOPBACK_NAMES or name.strip("[]") == self.bind.lower().strip("[]"):
            return True  # (and the address or name it was bound to: 127.0.0.2, a LAN address)
        try:  # on a wildcard bind, any IP address: no DNS name a rebinding page could own
            return self.bind in ("0.0.0.0", "::") and bool(ipaddress.ip_address(name.strip("[]")))
        except ValueError:
            return False


def require_write(request: Request) -> None:
    """A route dependency: the request's key may write (uploads, deletes)."""
    if request.scope.get("state", {}).get("access") != "write":
        raise HTTPException(403, "this key may only read; uploads and deletes need the "
                                 "write key")


class Guard:
    """ASGI middleware applying ``Access`` to every HTTP request (see the module's text),
    counting what it refuses by status in ``refused``."""

    def __init__(self, app, access: Access, error, refused: Counter):
        self.app, self.access, self.error, self.refused = app, access, error, refused

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal, level = self.judge(scope)
        if refusal is not None:
            status, message, extra = refusal
            self.refused[status] += 1  # (shown in /v1/stats)
            return await self.error(status, message, **extra)(scope, receive,
                                                              _secured(send, scope))
        scope.setdefault("state", {})["access"] = level
        await self.app(scope, receive, _secured(send, scope))

    def judge(self, scope) -> tuple[tuple | None, str | None]:
        """(status, message, response extras) to refuse with, or None; and the access level."""
        a, h = self.access, _headers(scope)
        path, method = scope["path"], scope["method"]
        host, origin, site = h.get("host", ""), h.get("origin"), h.get("sec-fetch-site")
        if not a.host_ok(host, (scope.get("server") or (None, None))[1]):
            return (421, f"this server does not answer to the name {host!r} (it does to "
                         "127.0.0.1, localhost, [::1] and the address it is bound to, on its "
                         "port, and to names given with --allowed-host)", {}), None
        opted_in = origin is not None and origin in a.origins
        if origin is not None and not opted_in and origin != f"{scope['scheme']}://{host}":
            return (403, f"a request from the web page at {origin} was refused (start rag "
                         "serve with --cors-origin ORIGIN to allow one)", {}), None
        navigation = (method in ("GET", "HEAD") and h.get("sec-fetch-mode") == "navigate"
                      and h.get("sec-fetch-dest", "document") == "document" and path in PAGES)
        if site in ("cross-site", "same-site") and not opted_in and not navigation:
            return (403, "a request from another site was refused (start rag serve with "
                         "--cors-origin ORIGIN to allow one)", {}), None
        if method == "OPTIONS" and "access-control-request-method" in h:
            return None, None  # a preflight of an opted-in origin: the CORS middleware's
        given = _key(h)
        level = a.level(given) if given else None
        typed = site == "none" and method in ("GET", "HEAD")  # (the address bar, a bookmark)
        token = hmac.compare_digest(h.get(TOKEN_HEADER, "").encode(), a.token.encode())
        if (origin is not None or site is not None) and path.startswith(API_PREFIXES) and \
                not (opted_in or typed or token or level):
            return (403, "a browser request to the API must carry the page's X-RAG-Token "
                         "header (or an API key)", {}), None
        if not a.keyed:
            return None, "write"  # (no key: bound to loopback, checked at start)
        if path in PUBLIC or path.startswith(PUBLIC_PREFIXES) or level is not None:
            return None, level
        return (401, "missing or wrong API key: send 'Authorization: Bearer KEY'",
                {"headers": {"WWW-Authenticate": "Bearer"}}), None


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _key(h: dict[str, str]) -> str:
    auth = h.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else h.get("x-api-key", "")


def _secured(send, scope):
    """``send`` adding the security headers to the response (and no-store on the API)."""
    extra = HEADERS + ([(b"cache-control", b"no-store")]
                       if scope["path"].startswith(API_PREFIXES) else [])

    async def wrapped(message):
        if message["type"] == "http.response.start":
            names = {k.lower() for k, _ in message.get("headers", [])}
            message = {**message, "headers": [*message.get("headers", []),
                                              *[(k, v) for k, v in extra if k not in names]]}
        await send(message)

    return wrapped

