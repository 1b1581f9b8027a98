"""Programs that render a document for its loader (mandoc for manual pages, pandoc for
LaTeX), each run in an empty folder of its own, without the user's environment, in a
process group of its own, within a time, memory and output bound.

Example: ``html = run_bounded(["mandoc", "-T", "html"], data, "mandoc").decode()``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading

from .errors import LoadError

SECONDS = 30
MEMORY = 1 << 30  # bytes of address space
OUTPUT_BOUND = 64 * 2**20  # bytes of output


class ProgramFailed(LoadError):
    """The program ran and exited non-zero: ``said`` is the first line it wrote to stderr."""

    def __init__(self, message: str, said: str):
        super().__init__(message)
        self.said = said


def run_bounded(argv: list[str], data: bytes, name: str, files: dict[str, bytes] | None = None,
                check: bool = True, seconds: int = SECONDS, memory: int = MEMORY) -> bytes:
    """What ``argv`` writes to stdout given ``data`` on stdin; ``files`` are written into its
    (otherwise empty) folder first, and "{dir}" in ``argv`` names that folder. LoadError
    past the bounds; ProgramFailed when it exits non-zero and ``check``."""

    def limit() -> None:  # (in the child, before the program starts)
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))

    with tempfile.TemporaryDirectory() as empty:
        for file, content in (files or {}).items():
            with open(os.path.join(empty, file), "wb") as f:
                f.write(content)
        proc = subprocess.Popen(
            [a.replace("{dir}", empty) for a in argv], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=empty,
            env={"PATH": os.defpath, "LC_ALL": "C.UTF-8", "HOME": empty},
            start_new_session=True, preexec_fn=limit if os.name == "posix" else None)

        def stop() -> None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # (the program and anything it started)
            except (ProcessLookupError, PermissionError):
                pass

        def feed() -> None:
            try:
                proc.stdin.write(data)
                proc.stdin.close()
            except OSError:  # (it stopped reading: stopped below, or done)
                pass

        errors: list[bytes] = []

        def drain() -> None:  # (stderr kept to its first 4 kB, read to its end)
            while block := proc.stderr.read(65536):
                if sum(map(len, errors)) < 4096:
                    errors.append(block)

        threading.Thread(target=feed, daemon=True).start()
        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        timer = threading.Timer(seconds, stop)
        timer.start()
        chunks, size = [], 0
        try:
            while block := proc.stdout.read(65536):
                size += len(block)
                if size > OUTPUT_BOUND:
                    raise LoadError(f"{name} wrote more than {OUTPUT_BOUND // 2**20} MB for "
                                    "this file; not read")
                chunks.append(block)
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:  # (not after it was reaped: its id may be another's)
                stop()
                proc.wait()
            proc.stdout.close()
            reader.join(5)
    if proc.returncode < 0:
        raise LoadError(f"{name} was stopped (signal {-proc.returncode}: past {seconds} s or "
                        f"{memory >> 20} MB) on this file; not read")
    if proc.returncode > 0 and check:
        lines = [ln for ln in b"".join(errors).decode("utf-8", "replace").splitlines()
                 if ln.strip() and not ln.startswith("[WARNING]") and not ln.startswith("  ")]
        said = " ".join(" ".join(lines[:2]).replace('""', "").split())[:200]
        raise ProgramFailed(f"{name} could not read it ({said or f'exit {proc.returncode}'})",
                            said)
    return b"".join(chunks)
