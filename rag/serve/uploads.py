"""Uploads received while they stream, bounded before they can cost memory or disk.

Each file of a multipart upload goes to disk as its bytes arrive, hashed and counted: the
server holds a few kilobytes of it at a time, never the file. A file past the per-file limit
ends the request right there (HTTP 413, the connection closed without reading the rest);
so do a 21st file, a body that stops arriving for ``BODY_IDLE_S`` and one upload more than
``max_in_flight`` at once (HTTP 503). Files land under ``<folder>/<sha256[:16]>/<name>``,
the same relative path they get in KB_DIR/uploads, so they can be parsed where they lie
before the writer moves them there.

Example::

    receiver = Receiver(kb_dir / "uploads" / ".incoming", max_file_bytes=50 * 2**20)
    async with receiver.receive(request) as received:   # [Received, ...]
        writer.upload(received)
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from knowledge.errors import UsageError

MAX_UPLOAD_FILES = 20  # per request
MAX_UPLOADS_IN_FLIGHT = 4
BODY_IDLE_S = 30.0  # a body that stops arriving this long is cut off
FIELD = "files"


@dataclass(frozen=True)
class Received:
    """One file of an upload: where its bytes lie (``path`` None: refused, ``reason`` says
    why), its relative path ``<sha256[:16]>/<name>`` and its size."""

    name: str
    path: Path | None
    rel: str = ""
    size: int = 0
    reason: str | None = None


class UploadError(Exception):
    """The whole request is refused: an HTTP status, a one-line message and, per file, why."""

    def __init__(self, status: int, message: str, skipped: list[dict] = (),
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.skipped, self.headers = status, list(skipped), headers or {}


def safe_upload_name(name: str | None) -> str:
    """The file name an upload is stored under, or a UsageError saying why it cannot be."""
    from knowledge.loaders import SUPPORTED, is_supported

    raw = name or ""
    base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or base.startswith("."):
        raise UsageError(f"upload {raw!r}: give the file a plain name")
    if len(base.encode("utf-8", "surrogatepass")) > 200 or any(
            ord(c) < 32 or c == "\x7f" for c in base):
        raise UsageError(f"upload {raw!r}: the name is too long or holds control "
                         "characters; rename the file")
    if not is_supported(Path(base)):
        raise UsageError(f"upload {base!r}: unsupported file type; supported: {SUPPORTED}")
    return base


class Receiver:
    """Owns the folder uploads stream into and the count of uploads in flight."""

    def __init__(self, folder: Path, max_file_bytes: int, max_files: int = MAX_UPLOAD_FILES,
                 max_in_flight: int = MAX_UPLOADS_IN_FLIGHT):
        self.folder, self.max_file_bytes = Path(folder), int(max_file_bytes)
        self.max_files, self.max_in_flight = max_files, max_in_flight
        self.in_flight = 0
        shutil.rmtree(self.folder, ignore_errors=True)  # (left by a crash)

    @asynccontextmanager
    async def receive(self, request):
        """The request's files, on disk until the block ends; UploadError refuses it."""
        if self.in_flight >= self.max_in_flight:
            raise UploadError(503, f"{self.in_flight} uploads are being received; retry in "
                              "a few seconds", headers={"Retry-After": "5"})
        self.in_flight += 1
        folder = self.folder / uuid.uuid4().hex
        folder.mkdir(parents=True)
        try:
            yield await _Parts(self, folder).read(request)
        finally:
            self.in_flight -= 1
            shutil.rmtree(folder, ignore_errors=True)


class _Parts:
    """The multipart parser's callbacks for one request (python-multipart does the parsing)."""

    def __init__(self, receiver: Receiver, folder: Path):
        self.r, self.folder = receiver, folder
        self.received: list[Received] = []
        self.headers: dict[bytes, bytes] = {}
        self.field = self.value = b""
        self.name, self.file, self.hash, self.size, self.reason = "", None, None, 0, None

    async def read(self, request) -> list[Received]:
        from python_multipart.exceptions import FormParserError
        from python_multipart.multipart import MultipartParser, parse_options_header
        from starlette.requests import ClientDisconnect

        _, params = parse_options_header(request.headers.get("content-type", ""))
        if not params.get(b"boundary"):
            raise UploadError(400, "multipart/form-data without a boundary")
        parser = MultipartParser(params[b"boundary"], {
            "on_part_begin": self.begin, "on_header_field": self.header_field,
            "on_header_value": self.header_value, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_done, "on_part_data": self.data,
            "on_part_end": self.end})
        chunks = request.stream().__aiter__()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), BODY_IDLE_S)
                except StopAsyncIteration:
                    break
                except asyncio.TimeoutError:
                    raise UploadError(408, f"the upload stalled (nothing for {BODY_IDLE_S:g} "
                                      "s); nothing was stored") from None
                except ClientDisconnect:
                    raise UploadError(400, "the client went away mid-upload; nothing was "
                                      "stored") from None
                parser.write(chunk)
            parser.finalize()
        except FormParserError as err:
            raise UploadError(400, f"a malformed multipart body ({err}); nothing was "
                              "stored") from None
        finally:
            if self.file is not None:
                self.file.close()
        if not self.received:
            raise UploadError(400, f"no files in the upload (send them in the multipart "
                              f"field {FIELD!r})")
        return self.received

    def begin(self) -> None:
        self.headers, self.field, self.value = {}, b"", b""

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]
        if len(self.field) + len(self.value) > 8192:
            raise UploadError(400, "a multipart part header over 8 KB")

    def header_end(self) -> None:
        self.headers[self.field.lower()] = self.value
        self.field = self.value = b""

    def headers_done(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        raw = options.get(b"filename")
        if options.get(b"name") != FIELD.encode() or raw is None:
            raise UploadError(400, f"every part of an upload must be a file in the field "
                              f"{FIELD!r}")
        if len(self.received) >= self.r.max_files:
            raise UploadError(413, f"at most {self.r.max_files} files per upload; nothing was "
                              "stored")
        self.name = raw.decode("utf-8", "replace")
        self.size, self.reason = 0, None
        try:
            safe_upload_name(self.name)
        except UsageError as err:
            self.reason = str(err)  # (its bytes are read and dropped)
            return
        self.hash = hashlib.sha256()
        self.file = open(self.folder / f"{len(self.received)}.part", "wb")

    def data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        if self.size > self.r.max_file_bytes:
            limit = f"larger than {self.r.max_file_bytes / 2**20:g} MB, the upload limit"
            raise UploadError(413, f"{self.name}: {limit}; nothing from this upload was stored",
                              [{"file": self.name, "reason": limit}])
        if self.file is not None:
            piece = memoryview(data)[start:end]
            self.file.write(piece)
            self.hash.update(piece)

    def end(self) -> None:
        if self.file is None:
            self.received.append(Received(self.name, None, reason=self.reason))
            return
        self.file.close()
        part, self.file = Path(self.file.name), None
        rel = f"{self.hash.hexdigest()[:16]}/{safe_upload_name(self.name)}"
        path = self.folder / rel
        path.parent.mkdir(exist_ok=True)
        os.replace(part, path)  # (the same file twice in one upload: one copy)
        self.received.append(Received(self.name, path, rel, self.size))
