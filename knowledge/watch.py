"""Folders kept in sync: watch them, and bring the knowledge base in step after each burst.

The watcher (watchfiles: inotify, FSEvents, ReadDirectoryChangesW) only decides *when*. Each
burst of changes, grouped until the folders are quiet for ``quiet_ms`` (or ``max_wait_ms``
has passed since its first change), triggers one sync of the whole folders: the code, lock
and single transaction of `rag index`, which compares the folders with the knowledge base.
So whatever order their events arrive in, editors' atomic saves (write aside, rename over),
renames and deletes come out as the folder stands, and a burst of writes is one
transaction. The files the events named are re-read even when their size and time look
unchanged (two writes within one tick of the file system's clock). Changes made while a
sync runs are kept by the watcher and make the next burst. The first sync, once the watcher
is running, picks up what changed while nothing watched, as `rag index` does.

Example::

    stop = threading.Event()
    watch([Path("docs")], lambda recheck: sync(kb, [Path("docs")], recheck=recheck, ...),
          ignore=[kb], stop=stop)
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Collection

from .errors import KnowledgeError, LockedError
from .loaders import is_supported

QUIET_MS = 300  # a burst ends when the folders have been quiet this long
MAX_WAIT_MS = 2000  # ... or this long after its first change (a long burst: several syncs)
RETRY_S = 0.5  # another writer holds the lock: try again after this


def relevant(roots: list[Path], ignore: Collection[Path] = ()):
    """The watch filter: changes to files a sync would read (supported, not hidden, not
    under an ignored folder such as the knowledge base itself), and deletions or new
    folders (a deleted or renamed folder takes its files along)."""
    import watchfiles

    default = watchfiles.DefaultFilter()  # (.git, __pycache__, editors' swap and backup files)
    roots = [r.resolve() for r in roots]
    ignored = [p.resolve() for p in ignore]

    def keep(change, path: str) -> bool:
        if not default(change, path):
            return False
        p = Path(path)
        p = p.parent.resolve() / p.name
        if any(p == i or p.is_relative_to(i) for i in ignored):
            return False
        root = next((r for r in roots if p.is_relative_to(r)), None)
        if root is None or any(part.startswith(".") for part in p.relative_to(root).parts):
            return False
        return (change == watchfiles.Change.deleted or is_supported(p) or p.is_dir())

    return keep


def watch(folders: list[Path], sync_once: Callable[[set[str]], object], *,
          ignore: Collection[Path] = (), stop=None, on_sync: Callable = lambda report: None,
          on_error: Callable[[str], None] = lambda message: None,
          quiet_ms: int = QUIET_MS, max_wait_ms: int = MAX_WAIT_MS) -> None:
    """Keep the knowledge base in step with ``folders`` until ``stop`` (a threading.Event)
    is set or the process is interrupted. ``sync_once(recheck)`` runs one sync (``recheck``:
    absolute paths to re-read whatever their size and time) and returns its report, passed
    to ``on_sync``; a sync that fails is reported to ``on_error`` in one line and the next
    change tries again (a busy write lock is retried until it is free)."""
    import watchfiles

    for folder in folders:
        if not folder.is_dir():
            raise KnowledgeError(f"{folder} is not a folder; --watch keeps folders in sync")
    while True:
        # a folder moved away, or replaced by another of its name, is no longer the one the
        # system watches: watching starts again on the folder the name holds now
        held = _identities(folders)
        first = True
        # (an empty set every rust_timeout when idle: the first one says the watcher runs,
        # so the first sync cannot miss a change made while it reads)
        for changes in watchfiles.watch(*folders, watch_filter=relevant(folders, ignore),
                                        debounce=max_wait_ms, step=quiet_ms, stop_event=stop,
                                        rust_timeout=1000, yield_on_timeout=True,
                                        raise_interrupt=False):
            if _identities(folders) != held:
                break
            if not changes and not first:
                continue
            first = False
            recheck = {str(Path(p).parent.resolve() / Path(p).name) for _, p in changes}
            report = _sync_until_done(sync_once, recheck, stop, on_error)
            if report is not None:
                on_sync(report)
        else:
            return  # (stopped)
        gone = [str(f) for f, i in zip(folders, _identities(folders)) if i is None]
        if gone:
            on_error(f"{', '.join(gone)} is gone; its documents stay, and watching goes on "
                     "when it is back")
        while not all(f.is_dir() for f in folders):
            if stop is not None and stop.wait(RETRY_S):
                return
            if stop is None:
                time.sleep(RETRY_S)


def _identities(folders: list[Path]) -> list[tuple[int, int] | None]:
    """Each folder's (device, inode), None where none is there now."""
    out = []
    for f in folders:
        try:
            st = f.stat()
            out.append((st.st_dev, st.st_ino) if f.is_dir() else None)
        except OSError:
            out.append(None)
    return out


def _sync_until_done(sync_once, recheck: set[str], stop, on_error):
    """One sync, retried while another writer holds the lock; None if it failed."""
    while True:
        try:
            return sync_once(recheck)
        except LockedError:
            if stop is not None and stop.wait(RETRY_S):
                return None
            if stop is None:
                time.sleep(RETRY_S)
        except KnowledgeError as err:  # (every file unreadable, say: the knowledge base stays)
            on_error(str(err))
            return None
