"""Reading and parsing files in worker processes with a time and a memory limit.

A parser handed a hostile file can loop for minutes (a PDF whose pages share one huge
content stream) or allocate gigabytes (a decompression bomb); in C code neither can be
interrupted from Python. So files are parsed in a small pool of worker processes, each
started with a memory limit (``RLIMIT_DATA``: its heap and anonymous mappings) and killed
when one file takes longer than the time limit. The file that hit a limit is reported with
the reason and the rest land. Workers live as long as the pool (a process per file would
cost ~0.4 s of start-up each); one that ran out of memory or was killed is replaced.

Documents come back as JSON, never pickle: a worker that a file managed to subvert can
send nothing but data.

Example::

    with ParsePool(workers=2, timeout_s=60, memory_mb=512) as pool:
        [parsed] = pool.parse([("/docs", "a.pdf", None)], max_bytes=50 * 2**20)
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .loaders import LoadError, load_file, read_regular
from .types import Document

PARSE_SECONDS = 120.0  # a file whose parse takes longer is skipped (a parser trap)
PARSE_MEMORY_MB = 1024  # a worker's heap limit
MAX_WORKERS = 4
STARTUP_SECONDS = 60.0
RECYCLE_RSS_MB = 512  # a worker left this large by one file is replaced
OCR_PAGE_SECONDS = 30.0  # each page a file has read by OCR adds this to its time limit (a
# page takes 1-5 s; ``ocr.MAX_PAGES`` bounds how many)


@dataclass
class Parsed:
    """A changed file read and parsed: its bytes' hash, its documents and warnings, or why it
    could not be read or parsed (``error``). ``touched``: the bytes are the stored ones.
    ``stat``: (size, mtime_ns) of the file as it was read."""

    sha: str | None = None
    docs: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    error: str | None = None
    touched: bool = False
    stat: tuple | None = None

    def to_json(self) -> dict:
        return {**asdict(self), "docs": [asdict(d) for d in self.docs]}

    @classmethod
    def from_json(cls, d: dict) -> "Parsed":
        return cls(**{**d, "docs": [Document.from_dict(x) for x in d["docs"]],
                      "stat": tuple(d["stat"]) if d.get("stat") else None})


def read_and_parse(path: Path, rel: str, max_bytes: float, stored_sha: str | None) -> Parsed:
    """Read (bounded) and parse one file, here; no parse when its bytes hash to
    ``stored_sha``. Pure: it touches no knowledge base, so it runs anywhere."""
    try:
        st = os.stat(path)
        data = read_regular(path, max_bytes)
    except LoadError as err:
        return Parsed(error=str(err))
    except OSError as err:
        return Parsed(error=f"cannot read ({err.strerror})")
    stat = (st.st_size, st.st_mtime_ns)
    sha = hashlib.sha256(data).hexdigest()
    if sha == stored_sha:
        return Parsed(sha, touched=True, stat=stat)
    try:
        docs, warnings = load_file(path, rel, data, max_bytes)
    except LoadError as err:
        return Parsed(sha, error=str(err), stat=stat)
    except MemoryError:
        return Parsed(sha, error=_out_of_memory(), stat=stat)
    except Exception as err:  # a parser bug on one odd file must not stop the whole run
        return Parsed(sha, error=f"could not be parsed ({err.__class__.__name__}: {err})",
                      stat=stat)
    return Parsed(sha, docs, warnings, stat=stat)


_OOM = "ran out of memory"
_TOO_SLOW = ("took longer than {:g} s to parse{}; skipped: a pathological file? "
             "--parse-timeout SECONDS gives it longer")


def _out_of_memory() -> str:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_DATA)[0]
    limit = "" if soft == resource.RLIM_INFINITY else f" (the limit: {soft / 2**20:g} MB)"
    return f"{_OOM} while parsing{limit}; skipped: --parse-memory-mb MB gives it more"


class InProcess:
    """Parses in the calling process, unbounded: for tests that patch a loader, and for
    callers already inside a sandbox. Same interface as ParsePool."""

    def parse(self, items: list[tuple[str, str, str | None]], max_bytes: float) -> list:
        return [read_and_parse(Path(root) / rel, rel, max_bytes, sha) for root, rel, sha in items]

    def draw(self, path: Path, page: int, max_pixels: int, timeout_s: float) -> bytes:
        from .pdf import draw_page

        return draw_page(Path(path).read_bytes(), page, max_pixels)

    def close(self) -> None:
        pass


class Busy(Exception):
    """Every worker was busy (parsing files) for as long as the caller would wait."""


class ParsePool:
    """Up to ``workers`` parse processes (started when needed, kept for the next file),
    shared by every thread that calls ``parse``."""

    def __init__(self, workers: int | None = None, timeout_s: float = PARSE_SECONDS,
                 memory_mb: float = PARSE_MEMORY_MB):
        self.max_workers = max(1, workers or min(MAX_WORKERS, os.cpu_count() or 1))
        self.timeout_s, self.memory_mb = timeout_s, memory_mb
        self._idle: list[_Worker] = []
        self._started = 0
        self._cv = threading.Condition()
        self._closed = False

    def __enter__(self) -> "ParsePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def busy(self) -> int:
        """Workers parsing a file now."""
        with self._cv:
            return self._started - len(self._idle)

    def parse(self, items: list[tuple[str, str, str | None]], max_bytes: float) -> list:
        """``Parsed`` per (root, relative path, stored sha256), in order, parsed in parallel
        by the workers."""
        jobs = [{"path": str(Path(root) / rel), "rel": rel, "max_bytes": max_bytes,
                 "sha": sha} for root, rel, sha in items]
        if len(jobs) <= 1:
            return [self._run(j) for j in jobs]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(jobs), self.max_workers)) as ex:
            return list(ex.map(self._run, jobs))

    def draw(self, path: Path, page: int, max_pixels: int, timeout_s: float) -> bytes:
        """PNG bytes of a PDF page (``pdf.draw_page``), drawn by a worker within
        ``timeout_s`` and its memory limit: TimeoutError past it; LoadError for a PDF that
        cannot be read or drawn, IndexError for a page it does not have."""
        import base64

        try:  # (a worker busy with a file for up to its parse limit is not waited for long)
            worker = self._acquire(wait_s=timeout_s)
        except (TimeoutError, _Died, RuntimeError) as err:  # (RuntimeError: the pool closed)
            raise Busy(str(err) or "every parse worker is busy") from None
        try:
            reply = worker.ask({"kind": "draw", "path": str(path), "page": page,
                                "max_pixels": max_pixels, "timeout_s": timeout_s}, timeout_s)
        except BaseException as err:
            worker.stop()
            self._release(None)
            if isinstance(err, TimeoutError):
                raise
            if isinstance(err, (_Died, ValueError, TypeError, KeyError)):
                raise LoadError(f"the page could not be drawn ({err})") from None
            raise
        self._release(worker)
        if reply.get("missing"):
            raise IndexError(page)
        if "png" not in reply:
            raise LoadError(str(reply.get("error") or "the page could not be drawn"))
        return base64.b64decode(reply["png"])

    def close(self) -> None:
        with self._cv:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cv.notify_all()
        for w in idle:
            w.stop()

    def _run(self, job: dict) -> Parsed:
        worker = self._acquire()
        try:
            parsed = Parsed.from_json(worker.ask({**job, "timeout_s": self.timeout_s},
                                                 self.timeout_s))
        except TimeoutError:
            error = _TOO_SLOW.format(self.timeout_s, f" (plus {OCR_PAGE_SECONDS:g} s a page "
                                     "read by OCR)" if str(job.get("rel", "")).lower().endswith(
                                         ".pdf") else "")
        except _Died as err:
            error = str(err)
        except (ValueError, TypeError, KeyError, AttributeError):
            error = "the parser process answered with something else than a result; skipped"
        except BaseException:
            worker.stop()
            self._release(None)
            raise
        else:
            if (parsed.error or "").startswith(_OOM):
                worker.stop()  # (its heap is spent: the next file deserves a fresh one)
                worker = None
            self._release(worker)
            return parsed
        worker.stop()
        self._release(None)
        return Parsed(error=error)

    def _acquire(self, wait_s: float | None = None) -> "_Worker":
        """An idle worker, or a new one; ``wait_s``: TimeoutError when none is free by then."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        with self._cv:
            while not self._idle and self._started >= self.max_workers and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError
                self._cv.wait(left)
            if self._closed:
                raise RuntimeError("the parse pool is closed")
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker(self.memory_mb)
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: "_Worker | None") -> None:
        big = min(RECYCLE_RSS_MB, self.memory_mb / 2)
        if worker is not None and (worker.rss_mb() > big or self._closed):
            worker.stop()
            worker = None
        with self._cv:
            if worker is None:
                self._started -= 1
            else:
                self._idle.append(worker)
            self._cv.notify()


class _Died(Exception):
    """The worker process ended while parsing (a crash, or killed on running out of memory)."""


class _Worker:
    """One parse process: a JSON line in (the job), a JSON line out (the Parsed)."""

    def __init__(self, memory_mb: float):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1"),  # (ocr.py)
               "MKL_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
                   [str(Path(__file__).resolve().parents[1]),
                    *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.memory_mb = memory_mb
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from knowledge.parsing import _serve; _serve({memory_mb!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self._buf = bytearray()
        try:  # started (imports done, limits set) before any file's clock starts
            self._reply(STARTUP_SECONDS)
        except (TimeoutError, _Died):
            self.stop()
            raise

    def ask(self, job: dict, timeout_s: float) -> dict:
        try:
            self.proc.stdin.write(json.dumps(job).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            raise _Died(self._death()) from None
        return self._reply(timeout_s)

    def _reply(self, timeout_s: float) -> dict:
        """The job's reply within ``timeout_s``, plus ``OCR_PAGE_SECONDS`` for each page the
        worker says it is about to read by OCR (``{"ocr_page": 1}`` lines before the reply,
        at most ``ocr.MAX_PAGES``)."""
        from .ocr import MAX_PAGES

        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        pages = 0
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[:end + 1]
                reply = json.loads(line.decode("utf-8", "surrogatepass"))
                if isinstance(reply, dict) and list(reply) == ["ocr_page"]:
                    if pages < MAX_PAGES:
                        pages += 1
                        deadline += OCR_PAGE_SECONDS
                    continue
                return reply
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            piece = os.read(fd, 1 << 20)
            if not piece:
                raise _Died(self._death())
            self._buf += piece

    def _death(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            return (f"the parser process died on it (signal {-code}: out of memory (the "
                    f"limit: {self.memory_mb:g} MB), or a crash); skipped")
        return f"the parser process died on it (exit status {code}); skipped"

    def rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


def _serve(memory_mb: float) -> None:
    """A worker's loop: limits first, then one job per line on stdin until it closes."""
    import resource

    limit = int(memory_mb * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    threading.Thread(target=_orphaned, args=(os.getppid(),), daemon=True).start()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints cannot corrupt the replies
    out.write(b"{}\n")  # ready
    out.flush()
    from . import ocr

    def on_page() -> None:  # (a page to OCR: the pool gives the file more time, and so does
        # the CPU limit below)
        soft = resource.getrlimit(resource.RLIMIT_CPU)[0]
        if soft != resource.RLIM_INFINITY:
            resource.setrlimit(resource.RLIMIT_CPU, (soft + int(OCR_PAGE_SECONDS),
                                                     resource.RLIM_INFINITY))
        out.write(b'{"ocr_page": 1}\n')
        out.flush()
    ocr.on_page = on_page
    for line in sys.stdin.buffer:
        job = json.loads(line)
        # a parse stuck in C code (which a parent kill normally ends) dies by itself too,
        # even with the parent gone: the CPU limit counts from here
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = int(used.ru_utime + used.ru_stime + job.get("timeout_s", PARSE_SECONDS)) + 5
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, resource.RLIM_INFINITY))
        try:
            if job.get("kind") == "draw":
                reply = json.dumps(_draw(job))
            else:
                parsed = read_and_parse(Path(job["path"]), job["rel"], job["max_bytes"],
                                        job["sha"])
                reply = json.dumps(parsed.to_json(), ensure_ascii=False, default=str)
        except MemoryError:  # (even the reply did not fit)
            reply = json.dumps(Parsed(error=_out_of_memory()).to_json())
        out.write(reply.encode("utf-8", "surrogatepass") + b"\n")
        out.flush()


def _draw(job: dict) -> dict:
    """(a worker's) A page drawn: {"png": base64}, {"missing": true} or {"error": why}."""
    import base64

    from .pdf import draw_page

    try:
        png = draw_page(Path(job["path"]).read_bytes(), job["page"], job["max_pixels"])
    except IndexError:
        return {"missing": True}
    except (LoadError, OSError) as err:
        return {"error": str(err)}
    except MemoryError:
        return {"error": _out_of_memory()}
    except Exception as err:  # noqa: BLE001 (a PDFium failure on a hostile page)
        return {"error": f"PDFium could not draw it ({err.__class__.__name__})"}
    return {"png": base64.b64encode(png).decode("ascii")}


def _orphaned(parent: int) -> None:
    """(a worker's thread) End the worker when its parent is gone."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)
