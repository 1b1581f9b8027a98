"""Writes from the server (uploads, deletes), through exactly the code and lock of `rag index`.

An upload's files are parsed where they were received, in the parse pool's bounded worker
processes, before any lock is taken: a file that parses for minutes holds up no other
upload. Then, one writer at a time in this process (and the knowledge base's write lock
across processes), they move into KB_DIR/uploads and are indexed in one transaction.

Example: ``Writer(kb_dir, engine, max_file_mb=50, parser=ParsePool()).delete("a1b2/x.txt")``.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from knowledge.errors import NothingIngested

from .documents import documents_of

UPLOADS = "uploads"  # uploaded files live in KB_DIR/uploads/, indexed from there


class UploadRejected(Exception):
    """No file of an upload could be taken; ``skipped`` says why, per file."""

    def __init__(self, skipped: list[dict]):
        super().__init__("; ".join(f"{s['file']}: {s['reason']}" for s in skipped)
                         or "no files in the upload")
        self.skipped = skipped


class Writer:
    """Uploads and deletes, serialised in this process; across processes the knowledge
    base's write lock keeps one writer (a busy lock is a LockedError, HTTP 409)."""

    def __init__(self, kb_dir: Path, engine, max_file_mb: float, parser, load_embedder=None):
        self.kb_dir = Path(kb_dir)
        self._load_embedder = load_embedder
        self.engine, self.parser = engine, parser
        self.max_bytes = int(max_file_mb * 1024 * 1024)
        self.uploads = self.kb_dir.resolve() / UPLOADS
        self._lock = threading.Lock()
        self._embedder = None

    def embedder(self):
        """The writer's own copy of the knowledge base's embedder (loaded at the first
        upload): tokenizers must not be shared across threads, and the engine's is busy."""
        if self._embedder is None:
            from knowledge.embedding import Embedder

            name = self.engine.kb.manifest["embedder"]["name"]
            self._embedder = (self._load_embedder or (lambda: Embedder.load(name)))()
        return self._embedder

    def upload(self, received: list) -> dict:
        """Index received files (``uploads.Received``) in one transaction. Each is stored
        under KB_DIR/uploads by its content hash (``<sha256[:16]>/<its plain name>``: never a
        path the client chose, never over another file); its document id is that path. A
        file that cannot be taken (name, type, content) is reported with its reason, and the
        rest land."""
        skipped = [{"file": r.name, "reason": r.reason} for r in received if r.path is None]
        files = {r.rel: r for r in received if r.path is not None}  # (twice: once)
        if not files:
            raise UploadRejected(skipped)
        items = [(str(r.path.parent.parent), rel, None) for rel, r in files.items()]
        parsed = {(str(self.uploads), rel): p for (_, rel, _), p in
                  zip(items, self.parser.parse(items, self.max_bytes))}
        with self._lock:
            report, failed = self._index(files, parsed, skipped)
        if report is None:
            raise UploadRejected(skipped)
        kept = [rel for rel in files if self.uploads / rel not in failed]
        docs = self.engine.call(lambda kb: documents_of(kb, self.uploads, kept)).result()
        return {"added": report.added, "updated": report.updated,
                "unchanged": report.unchanged, "documents": docs, "skipped": skipped,
                "warnings": [{"file": Path(p).name, "warning": w} for p, w in report.warnings],
                "total_documents": report.total_documents, "total_chunks": report.total_chunks}

    def _index(self, files: dict, parsed: dict, skipped: list):
        """Move the files into KB_DIR/uploads and index them (holding the writer's lock):
        (report or None when nothing landed, the paths that failed)."""
        from knowledge.sync import sync

        paths, created = [], []
        for rel, r in files.items():
            path = self.uploads / rel
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(r.path, path)
                created.append(path)  # (only these are removed again if they fail)
            paths.append(path)
        try:
            report = sync(self.kb_dir, paths, root=self.uploads, parsed=parsed,
                          **self._settings())
            failed = {Path(p) for p, _ in report.skipped}
        except NothingIngested as err:
            report, failed = None, set(paths)
            skipped += [{"file": Path(p).name, "reason": r} for p, r in err.skipped]
        except BaseException:
            self._forget(created)
            raise
        if report is not None:
            skipped += [{"file": Path(p).name, "reason": r} for p, r in report.skipped]
        self._forget([p for p in created if p in failed])
        return report, failed

    def _settings(self) -> dict:
        """What every sync of the server passes: the knowledge base's own embedder and
        chunking, the upload size limit, the parse pool."""
        from knowledge.chunking import ChunkerSettings

        built = self.engine.kb.manifest
        return {"load_embedder": self.embedder, "embedder_identity": dict(built["embedder"]),
                "chunking": ChunkerSettings.from_dict(built["chunker"]),
                "max_file_mb": self.max_bytes / 2**20, "parser": self.parser,
                "log": lambda m: None}

    def follow(self, folders: list[Path], stop, log) -> None:
        """`rag serve --watch`: keep the knowledge base in step with ``folders`` until
        ``stop`` is set (``knowledge.watch``), one writer at a time with uploads and deletes;
        ``log(line)`` hears each sync that changed something, and each error."""
        from knowledge.sync import sync
        from knowledge.watch import watch

        def once(recheck):
            with self._lock:
                return sync(self.kb_dir, folders, recheck=recheck, empty_ok=True,
                            **self._settings())

        def show(report):
            if report.changed or report.skipped:
                log(f"synced {', '.join(map(str, folders))}: {report.added} added, "
                    f"{report.updated} updated, {report.removed} removed"
                    + (f", {len(report.skipped)} skipped" if report.skipped else ""))

        self.embedder()  # (now: the first change then waits for no model)
        watch(folders, once, ignore=[self.kb_dir], stop=stop, on_sync=show,
              on_error=lambda message: log(f"error: {message}"))

    def _forget(self, paths: list[Path]) -> None:
        """Remove stored uploads that did not land (and their folders, when empty)."""
        for path in paths:
            path.unlink(missing_ok=True)
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def delete(self, doc_id: str) -> dict:
        from knowledge.sync import delete_documents

        with self._lock:
            emptied = delete_documents(self.kb_dir, [doc_id])
            # an uploaded file goes with its document
            self._forget([p for p in map(Path, emptied)
                          if p.parent.parent == self.uploads])
        return {"deleted": doc_id}
