"""The engine: one thread owns the open knowledge base and the models.

Questions that arrive together are answered in one retrieval + reader call: the engine
takes everything queued, waits a small window for more, and answers the batch (micro-
batching). Each request's answer, timings and similarity come back in its own future:
nothing per request lives in shared state. Other reads (document listings, stats) run on
the same thread as ``call``s, so SQLite and the models are never shared across threads.
The engine picks up each generation a writer commits before its next read, so it never sees
a half-written state.

Example: ``answer = Engine(kb, reader).ask("Who won Super Bowl 50?").result()``.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future
from dataclasses import dataclass

MAX_BATCH = 8  # (measured: eval/bench_serve.py, eval/RESULTS.md)


@dataclass(frozen=True)
class _Job:
    kind: str  # "ask" | "search" | "call"
    key: tuple  # (kind, retrieval, k, filters): jobs with one key share a batch
    payload: object  # (question, history), the query, or a callable(kb)
    future: Future


class Engine:
    """Answers questions and searches in micro-batches on one thread; runs other reads
    (``call``) on the same thread, so SQLite and the models are never shared across
    threads. ``window_ms`` is how long a batch waits for company once a job arrives."""

    def __init__(self, kb, reader=None, retrieval: str = "hybrid", k: int | None = None,
                 window_ms: float = 2.0, max_batch: int = MAX_BATCH):
        from ..retrieval import Retriever

        Retriever(kb, retrieval)  # validate the mode now
        self.kb = kb
        self.reader = reader
        self.retrieval = retrieval
        self.k = k or getattr(getattr(reader, "config", None), "k", None) or 5
        self.window = max(0.0, window_ms) / 1000
        self.max_batch = max(1, max_batch)
        self.batch_sizes: Counter = Counter()
        self._pipelines: dict = {}
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rag-engine", daemon=True)
        self._thread.start()

    # (called from any thread)
    def ask(self, question: str, k: int | None = None, retrieval: str | None = None,
            filters=None, history=None) -> Future:
        """``history``: the conversation's earlier turns (``rag.conversation.Turn``s)."""
        return self._submit("ask", (question, list(history or ()) or None), k, retrieval,
                            filters)

    def search(self, query: str, k: int | None = None, retrieval: str | None = None,
               filters=None) -> Future:
        return self._submit("search", query, k, retrieval, filters)

    def call(self, fn) -> Future:
        """Run ``fn(kb)`` on the engine thread (after the knowledge base is refreshed)."""
        future: Future = Future()
        self._jobs.put(_Job("call", ("call",), fn, future))
        return future

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=30)

    def _submit(self, kind, text, k, retrieval, filters) -> Future:
        future: Future = Future()
        key = (kind, retrieval or self.retrieval, k or self.k, filters)
        self._jobs.put(_Job(kind, key, text, future))
        return future

    # (the engine thread)
    def _run(self) -> None:
        import torch

        # this thread's torch thread count is fixed at its first use: now, with the process's
        # (an upload embedding meanwhile sets it to 1 while it runs: knowledge.embedding)
        torch.get_num_threads()
        while True:
            job = self._jobs.get()
            if job is None:
                return
            batch = [job]
            if job.kind != "call":
                deadline = time.monotonic() + self.window
                while len(batch) < self.max_batch:
                    try:
                        nxt = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._jobs.put(None)
                        break
                    batch.append(nxt)
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        try:
            self.kb.store.refresh()  # a writer may have committed since the last batch
        except Exception as err:  # noqa: BLE001 (reported to every waiting request)
            for job in batch:
                job.future.set_exception(err)
            return
        groups: dict[tuple, list[_Job]] = defaultdict(list)
        for job in batch:
            groups[job.key if job.kind != "call" else ("call", id(job))].append(job)
        for key, jobs in groups.items():
            try:
                if jobs[0].kind == "call":
                    jobs[0].future.set_result(jobs[0].payload(self.kb))
                    continue
                kind, mode, k, filters = key
                self.batch_sizes[len(jobs)] += 1
                if kind == "ask":
                    results = self._pipeline(mode, k).ask_many(
                        [j.payload[0] for j in jobs], filters,
                        histories=[j.payload[1] for j in jobs])
                else:
                    from ..retrieval import Retriever

                    found = Retriever(self.kb, mode).search_many([j.payload for j in jobs], k,
                                                                 filters)
                    results = found.hits
                for job, result in zip(jobs, results):
                    job.future.set_result(result)
            except Exception as err:  # noqa: BLE001 (each request gets its own error)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(err)

    def _pipeline(self, mode: str, k: int):
        from ..pipeline import Pipeline
        from ..retrieval import Retriever

        if (mode, k) not in self._pipelines:
            self._pipelines[(mode, k)] = Pipeline(Retriever(self.kb, mode), self.reader, k=k)
        return self._pipelines[(mode, k)]
