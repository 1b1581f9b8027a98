"""What each `rag` subcommand does, given parsed arguments (the parser is in cli.py).

Each ``cmd_*`` returns the exit code; user mistakes raise KnowledgeError/UsageError, which
``cli.main`` prints as one line.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path


def open_reader(args, allow_none: bool = False):
    """The reader the flags ask for, or None for retrieval only."""
    from rag.readers import DEFAULT_READER, load_reader

    name = args.reader
    if name == "none" and allow_none:
        return None
    if name is None:
        if DEFAULT_READER is None:
            if allow_none:
                return None
            raise _usage("no reader installed yet: pass --reader NAME_OR_PATH (any Hugging Face "
                         "seq2seq checkpoint, e.g. a local flan-t5-base)")
        name = str(DEFAULT_READER)
    overrides = {}
    if args.answer_mode is not None:
        overrides["answer_mode"] = args.answer_mode
    if args.answer_form is not None:
        overrides["answer_form"] = args.answer_form
    if args.grounded is not None:
        overrides["grounded"] = args.grounded
    if args.beams is not None:
        if args.beams < 1:
            raise _usage(f"--beams must be at least 1 (got {args.beams})")
        overrides["num_beams"] = args.beams
    if args.max_new_tokens is not None:
        if args.max_new_tokens < 1:
            raise _usage(f"--max-new-tokens must be at least 1 (got {args.max_new_tokens})")
        overrides["max_new_tokens"] = args.max_new_tokens
    if args.abstain_threshold is not None or args.abstain_similarity is not None:
        overrides["abstain_rule"] = None  # thresholds given by hand replace the fitted rule
    if args.abstain_threshold is not None:
        if not 0.0 <= args.abstain_threshold <= 1.0:
            raise _usage(f"--abstain-threshold must be a confidence between 0 and 1, or 0 for "
                         f"never (got {args.abstain_threshold})")
        overrides["abstain_threshold"] = args.abstain_threshold
    if args.abstain_similarity is not None:  # given by hand: for any embedder; 0 turns it off
        if not -1.0 <= args.abstain_similarity <= 1.0:
            raise _usage(f"--abstain-similarity must be a cosine between -1 and 1, or 0 for "
                         f"never (got {args.abstain_similarity})")
        if args.abstain_similarity and getattr(args, "retrieval", "hybrid") not in (
                "dense", "hybrid"):
            raise _usage(f"--abstain-similarity needs dense or hybrid retrieval (got "
                         f"--retrieval {args.retrieval})")
        overrides["abstain_similarity"] = args.abstain_similarity or None
        overrides["similarity_embedder"] = None
    if args.precision is not None:
        overrides["precision"] = args.precision
    return load_reader(name, args.reader_kind, **overrides)


def cmd_index(args) -> int:
    import functools

    from knowledge.chunking import ChunkerSettings
    from knowledge.embedding import DEFAULT_EMBEDDER, Embedder, embedder_weights_hash
    from knowledge.store import Store, is_kb, resolve_kb_dir
    from knowledge.sync import sync

    kb_dir = resolve_kb_dir(args.kb)
    for p in args.paths:  # fail on a typo before loading anything
        if not Path(p).exists():
            raise _usage(f"path not found: {p}")
        if args.watch and not Path(p).is_dir():
            raise _usage(f"--watch keeps folders in sync; {p} is a file (give its folder, "
                         "with --include to pick files)")
    if args.batch_size is not None and args.batch_size < 1:
        raise _usage(f"--batch-size must be at least 1 (got {args.batch_size})")
    _check_parse_args(args)
    built = None
    if is_kb(kb_dir) and not args.rebuild:
        with Store.open(kb_dir) as store:
            built = store.manifest
    name = args.embedder or (built["embedder"]["name"] if built else DEFAULT_EMBEDDER)
    chunker = ChunkerSettings.from_dict(built["chunker"]) if built else ChunkerSettings()
    settings = ChunkerSettings(
        size=args.chunk_size if args.chunk_size is not None else chunker.size,
        overlap=args.chunk_overlap if args.chunk_overlap is not None else chunker.overlap,
        windows=args.windows if args.windows is not None else chunker.windows)
    settings.validate()
    identity = (dict(built["embedder"]) if built and built["embedder"]["name"] == name
                else None)
    if identity is None or identity["weights_sha256"] != embedder_weights_hash(name):
        # a new KB or another model: load it now for its dimension and token limit
        embedder = Embedder.load(name, precision=args.precision)
        identity = embedder.identity()
        loader = lambda: embedder  # noqa: E731
    else:  # (loaded when something needs embedding; --watch keeps it for the next change)
        loader = functools.cache(lambda: Embedder.load(name, precision=args.precision))
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    engine = None
    if args.ray is not None:
        from knowledge.distributed import RayIngest

        if args.ray_actors is not None and args.ray_actors < 1:
            raise _usage(f"--ray-actors must be at least 1 (got {args.ray_actors})")
        engine = RayIngest(functools.partial(Embedder.load, name, precision=args.precision),
                           address=args.ray, actors=args.ray_actors,
                           parse_timeout_s=args.parse_timeout,
                           parse_memory_mb=args.parse_memory_mb)
    from knowledge.parsing import ParsePool

    with ParsePool(timeout_s=args.parse_timeout, memory_mb=args.parse_memory_mb) as parser:
        def sync_once(recheck=(), first=True):
            return sync(
                kb_dir, [Path(p) for p in args.paths], load_embedder=loader,
                embedder_identity=identity, chunking=settings, index_kind=args.index or "auto",
                include=args.include, exclude=args.exclude, rebuild=args.rebuild and first,
                max_file_mb=args.max_file_mb, follow_symlinks=args.follow_symlinks,
                batch_size=args.batch_size, progress=progress and first, engine=engine,
                parser=parser, recheck=recheck, empty_ok=bool(args.watch))

        if args.watch:
            return _watch(args, kb_dir, sync_once, warm=loader if engine is None else None)
        _print_report(kb_dir, sync_once(), args.json)
    return 0


def _print_report(kb_dir, report, as_json: bool, when: str = "") -> None:
    """A sync's report: counts on stdout (one JSON object with ``as_json``), each skipped
    file and warning on stderr."""
    from knowledge.loaders import CONVERTIBLE

    for path, reason in report.skipped:
        _err(f"skipped {path}: {reason}")
    for path, message in report.warnings:
        _err(f"warning: {path}: {message}")
    if report.language_warning:
        _err(f"warning: {report.language_warning}")
    if as_json:
        indent = None if when else 2  # (--watch: one object a line)
        print(json.dumps({"kb": str(kb_dir), **({"time": when} if when else {}),
                          **report.to_dict()}, indent=indent, ensure_ascii=False), flush=True)
        return
    print(
        f"{when + ' ' if when else ''}"
        f"{kb_dir}: {report.added} added, {report.updated} updated, {report.removed} removed, "
        f"{report.unchanged} unchanged documents; {report.chunks_added} chunks embedded, "
        f"{report.chunks_removed} dropped; now {report.total_documents} documents, "
        f"{report.total_chunks} chunks ({report.index_kind} index) in "
        f"{report.seconds['total']:.1f} s", flush=True)
    said = []
    if report.skipped:
        said.append(f"{len(report.skipped)} files skipped (reasons above)")
    if report.unsupported:
        more = ", ..." if report.unsupported > len(report.ignored) else ""
        kinds = ", ".join(f"{n} {_one_line(k)}" for k, n in report.ignored_kinds.items())
        if len(report.ignored_kinds) < 2 and report.unsupported <= len(report.ignored):
            kinds = ""  # (one kind, every file named: the names say it)
        targets: dict[str, list[str]] = {}  # (what to save as -> the kinds to save so)
        for kind in report.ignored_kinds:
            if kind in CONVERTIBLE:
                targets.setdefault(CONVERTIBLE[kind], []).append(kind)
        hint = "".join(f"; {' '.join(names)} files are not read here: save them as {target} "
                       "to index them" for target, names in targets.items())
        said.append(f"{report.unsupported} files of unsupported types ignored"
                    f"{': ' + kinds if kinds else ''} "
                    f"({', '.join(map(_one_line, report.ignored))}{more}){hint}")
    if said:
        _out(", ".join(said))  # (a file name may hold a terminal escape)
        sys.stdout.flush()
    if report.twins and (report.added or report.updated):
        first, other = report.twins[0]
        more = f" and {len(report.twins) - 1} more" if len(report.twins) > 1 else ""
        _err(f"warning: {_one_line(first)} and {_one_line(other)}{more}: the same document in "
             "two formats, so its passages may be cited twice; --exclude '*"
             f"{Path(other).suffix}' (or the other format) keeps one")
    if report.left_out:
        _err(f"warning: {report.left_out} documents removed whose files are still there: "
             "--include/--exclude leave them out (a knowledge base keeps what its folder's "
             "filters match); index without the filters to bring them back")


STOP_GRACE_S = 20  # after Ctrl-C, `rag index --watch` exits within this, whatever it was doing


def _watch(args, kb_dir: Path, sync_once, warm=None) -> int:
    """`rag index DIR --watch`: sync now, then after each burst of changes, until Ctrl-C;
    one report a sync that changed something. ``warm()`` loads the embedder first, so that
    the first change waits for no model."""
    import os
    import signal
    import threading
    import time

    from knowledge.watch import watch

    folders = [Path(p) for p in args.paths]
    syncs = [0]

    def once(recheck):
        syncs[0] += 1
        return sync_once(recheck, first=syncs[0] == 1)

    def show(report):
        if syncs[0] == 1 or report.changed or report.skipped:
            _print_report(kb_dir, report, args.json, time.strftime("%H:%M:%S"))

    stop = threading.Event()

    def interrupt(signum, frame):
        # stop the watcher, and leave within STOP_GRACE_S whatever is running: the
        # knowledge base is safe at any instant (a sync cut short leaves it as it was)
        if not stop.is_set():
            stop.set()
            timer = threading.Timer(STOP_GRACE_S, lambda: os._exit(130))
            timer.daemon = True
            timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # (a service manager's stop: as Ctrl-C)
    signal.signal(signal.SIGINT, interrupt)
    try:
        if warm is not None:
            warm()
        _err(f"watching {', '.join(map(str, folders))} (Ctrl-C stops)")
        watch(folders, once, ignore=[kb_dir], on_sync=show, stop=stop,
              on_error=lambda message: _err(f"error: {message}"))
    except KeyboardInterrupt:
        pass
    _err("stopped watching")
    return 0


def _check_parse_args(args) -> None:
    # (written so that NaN fails too; inf would overflow a deadline or a memory limit)
    if not (0 < args.parse_timeout <= 86_400 and 64 <= args.parse_memory_mb <= 1_048_576):
        raise _usage("--parse-timeout must be 0-86400 seconds and --parse-memory-mb 64-1048576 "
                     f"(got {args.parse_timeout:g} and {args.parse_memory_mb:g})")
    if not 0 < args.max_file_mb <= 1_048_576:
        raise _usage(f"--max-file-mb must be more than 0 and at most 1048576 "
                     f"(got {args.max_file_mb:g})")


def cmd_search(args) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.store import resolve_kb_dir

    if not args.query.strip():
        raise _usage("empty query; give some text to search for")
    _check_k(args.k)
    from rag.retrieval import Filters, Retriever

    filters = Filters.parse(args.path, args.where)
    with KnowledgeBase.open(resolve_kb_dir(args.kb)) as kb:
        hits = Retriever(kb, args.retrieval).retrieve(args.query, k=args.k, filters=filters)
        empty = not kb.stats().get("chunks")
        no_match = None
        if not hits and filters and not empty:
            from rag.serve.documents import unmatched

            no_match = unmatched(kb, filters)
    if args.json:
        print(json.dumps({"query": args.query, "retrieval": args.retrieval,
                          "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return 0
    if not hits:
        why = ("the knowledge base is empty" if empty else
               f"{no_match} (--path/--where)" if no_match else
               "no passage holds a word of the query")
        _out(f"no passages found ({why})")
    for rank, h in enumerate(hits, 1):
        where = _where(h)
        page = page_text(h)
        heading = f" § {_one_line(h.heading)}" if h.heading else ""
        heading += f" ({h.kind})" if h.kind else ""
        _out(f"[{rank}] {h.score:.3f}  {where}{page}{heading}  [{h.start}:{h.end}]")
        _out("    " + " ".join(h.text.split())[:400])
    return 0


def page_text(hit) -> str:
    """" p.5 (PDF page 11)" for a hit or citation: the page as printed on it, and where a
    PDF viewer finds it when that differs; "" without a page."""
    if not hit.page:
        return ""
    label = getattr(hit, "page_label", None) or str(hit.page)
    return f" p.{label}" + (f" (PDF page {hit.page})" if label != str(hit.page) else "")


def cmd_ask(args) -> int:
    from knowledge.errors import UsageError
    from knowledge.kb import KnowledgeBase
    from knowledge.store import resolve_kb_dir
    from rag.pipeline import Pipeline
    from rag.retrieval import Filters, Retriever

    if args.question is not None and not args.question.strip():
        raise _usage("empty question; ask something")
    _check_k(args.k)
    filters = Filters.parse(args.path, args.where)
    kb_dir = resolve_kb_dir(args.kb)
    with KnowledgeBase.open(kb_dir) as kb:
        if filters:  # (filters that match nothing would read as "not found" to every question)
            from rag.serve.documents import unmatched

            why = unmatched(kb, filters)
            if why:
                raise _usage(f"{why} (--path/--where)")
        reader = open_reader(args)
        k = args.k or getattr(getattr(reader, "config", None), "k", 5)
        pipeline = Pipeline(Retriever(kb, args.retrieval), reader, k=k)
        if args.question is not None:
            show_answer(pipeline.ask(args.question, filters), args.json)
            return 0
        interactive = sys.stdin.isatty()
        if interactive:
            _err("ask a question; follow-ups may refer back (\"when did he ...?\"); /new starts "
                 "a new conversation; an empty line or Ctrl-D quits")
        history: list = []
        while True:
            try:
                if interactive:
                    try:
                        line = input("? ")
                    except EOFError:
                        break
                else:
                    line = _stdin_line()
                    if not line:
                        break
            except UnicodeDecodeError:
                error = "the line is not UTF-8 text; send questions as UTF-8"
                _err(error) if interactive else print(json.dumps({"error": error}), flush=True)
                continue
            if not line.strip():
                if interactive:
                    break
                continue
            if line.strip() == "/new":
                history = []
                if interactive:
                    _err("(new conversation)")
                continue
            if interactive:
                try:
                    answer = pipeline.ask(line.strip(), filters, history=history)
                except UsageError as err:  # (this question; the conversation goes on)
                    _err(f"error: {err}")
                    continue
                show_answer(answer, args.json)
                history.append(turn_of(answer))
                continue
            try:
                question, turns = stdin_request(line)
                answer = pipeline.ask(question, filters, history=turns)
            except (ValueError, UsageError) as err:
                print(json.dumps({"error": str(err)}), flush=True)
                continue
            print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
    return 0


def _stdin_line() -> str:
    """A line of standard input ("" at its end), decoded as UTF-8 here, so that a line of
    other bytes fails alone (UnicodeDecodeError) and the lines after it are still read."""
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.readline().decode("utf-8") if buffer is not None else sys.stdin.readline()


def turn_of(answer):
    """The turn a later follow-up sees: the question as understood and what was told."""
    from rag.conversation import Turn

    return Turn(answer.rewritten or answer.question,
                None if answer.abstained else (answer.short or answer.answer))


def stdin_request(line: str):
    """(question, history turns) from a line of stdin: plain text, or a JSON object
    ``{"question": ..., "history": [{"question", "answer"}, ...]}``."""
    from rag.conversation import Turn

    text = line.strip()
    if not text.startswith("{"):
        return text, None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a JSON object ({err.msg}); send a question per line or "
                         '{"question": ..., "history": [...]}') from None
    question = row.get("question") if isinstance(row, dict) else None
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the JSON line needs a non-empty 'question' string")
    history = row.get("history") or []
    if not isinstance(history, list):
        raise ValueError("'history' must be a list of {question, answer} objects")
    return question.strip(), [Turn.parse(t) for t in history]


def cmd_check(args) -> int:
    from dataclasses import asdict

    from knowledge.check import check
    from knowledge.store import resolve_kb_dir

    kb_dir = resolve_kb_dir(args.kb)
    report = check(kb_dir, repair=args.repair)
    after = check(kb_dir) if report.repaired else report
    if args.json:
        print(json.dumps({**asdict(report), "ok_after": after.ok}, ensure_ascii=False))
        return 0 if after.ok else 1
    for problem in report.problems:
        _out(f"problem: {problem}")
    for fix in report.repaired:
        _out(f"repaired: {fix}")
    for what in report.unrepairable:
        _out(f"cannot repair: {what}")
    if after.ok:
        c = report.checked
        print(f"{kb_dir}: consistent ({c.get('documents', 0)} documents, {c.get('chunks', 0)} "
              f"chunks, generation {after.checked.get('generation')})")
        return 0
    if not args.repair and not report.unrepairable:
        print(f"run `rag check --kb {kb_dir} --repair` to rebuild it without re-embedding")
    return 1


def cmd_serve(args) -> int:
    from knowledge.embedding import DEFAULT_EMBEDDER, Embedder
    from knowledge.kb import KnowledgeBase
    from knowledge.parsing import ParsePool
    from knowledge.store import is_kb, resolve_kb_dir
    from knowledge.sync import create_empty
    from rag.serve.app import PARSE_WORKERS, create_app
    from rag.serve.security import is_loopback
    from rag.serve.server import make_server

    key, read_key = _serve_keys(args)
    if not is_loopback(args.host) and not (key or read_key):
        raise _usage(f"--host {args.host} would share the knowledge base with the network: "
                     "give a key ($RAG_API_KEY or --api-key-file; $RAG_READ_KEY or "
                     "--read-key-file for one that may only read), or bind to 127.0.0.1")
    if not 0 < args.port < 65536:
        raise _usage(f"--port must be 1-65535 (got {args.port})")
    if args.k is not None and not 1 <= args.k <= 50:
        raise _usage(f"-k must be 1-50 (got {args.k})")
    if not (args.max_batch >= 1 and 0 <= args.batch_window_ms <= 60_000):
        raise _usage("--max-batch must be at least 1 and --batch-window-ms 0-60000")
    if not (args.max_connections >= 1 and 0 < args.header_timeout <= 3600):
        raise _usage("--max-connections must be at least 1 and --header-timeout 0-3600 seconds")
    _check_parse_args(args)
    for origin in args.cors_origin:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise _usage(f"--cors-origin {origin!r} must be an origin like https://app.example "
                         "(scheme, host and port; no path)")
    for folder in args.watch:
        if not Path(folder).is_dir():
            raise _usage(f"--watch {folder}: not a folder (it keeps folders in sync)")
    kb_dir = resolve_kb_dir(args.kb)
    embedder = None
    if not is_kb(kb_dir):
        if kb_dir.exists() and (not kb_dir.is_dir() or any(kb_dir.iterdir())):
            raise _usage(f"--kb {kb_dir} is not a knowledge base (nor a new or empty "
                         "directory); build one with `rag index PATH --kb DIR`")
        embedder = Embedder.load(DEFAULT_EMBEDDER)
        create_empty(kb_dir, embedder.identity())
        _err(f"created an empty knowledge base in {kb_dir}; upload documents on the page")
    kb = KnowledgeBase.open(kb_dir, embedder=embedder)
    parser = ParsePool(PARSE_WORKERS, args.parse_timeout, args.parse_memory_mb)
    try:
        reader = open_reader(args, allow_none=True)
        if args.retrieval != "lexical":
            kb.embedder  # noqa: B018  (load the models before the first request)
        app = create_app(kb_dir, kb, reader, retrieval=args.retrieval, k=args.k, key=key,
                         read_key=read_key, window_ms=args.batch_window_ms,
                         max_batch=args.max_batch, max_file_mb=args.max_file_mb,
                         allowed_hosts=args.allowed_host, cors_origins=args.cors_origin,
                         bind=args.host, parser=parser, watch=[Path(w) for w in args.watch],
                         log=lambda line: _err(f"rag serve: {line}"))
        host = f"[{args.host}]" if ":" in args.host else args.host
        server = make_server(app, args.host, args.port, max_connections=args.max_connections,
                             header_timeout_s=args.header_timeout, started=lambda s: print(
                                 f"rag serve: http://{host}:{args.port}/ (API docs at /docs; "
                                 "Ctrl-C stops)", flush=True))
        try:
            server.run()
        except SystemExit:
            pass
        if not server.started:
            raise _usage(f"could not listen on {args.host}:{args.port} (in use, or not an "
                         "address of this machine); choose another --port or --host")
    finally:
        parser.close()
        kb.close()
    return 0


def cmd_mcp(args) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.store import is_kb, resolve_kb_dir
    from rag.serve.mcp import serve_stdio

    if args.k is not None and not 1 <= args.k <= 50:
        raise _usage(f"-k must be 1-50 (got {args.k})")
    kb_dir = resolve_kb_dir(args.kb)
    if not is_kb(kb_dir):
        raise _usage(f"--kb {kb_dir} is not a knowledge base; build one with `rag index PATH "
                     "--kb DIR`")
    with KnowledgeBase.open(kb_dir) as kb:
        serve_stdio(kb, lambda: open_reader(args, allow_none=True), args.retrieval, args.k)
    return 0


def _serve_keys(args) -> tuple[str | None, str | None]:
    """(the key that may write, the key that may only read), from the flags and the
    environment; refused when empty, or short on a network bind."""
    from rag.serve.security import check_key

    if args.api_key is not None:
        if args.api_key_file:
            raise _usage("give --api-key or --api-key-file, not both")
        _err("warning: --api-key shows the key to every user of this machine (in `ps`); "
             "prefer $RAG_API_KEY or --api-key-file")
    keys = []
    for flag, value, file, env in (("--api-key", args.api_key, args.api_key_file, "RAG_API_KEY"),
                                   (None, None, args.read_key_file, "RAG_READ_KEY")):
        what = flag
        if file:
            what = f"the key in {file}"
            try:
                value = Path(file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as err:
                raise _usage(f"cannot read the key file {file} ({err.__class__.__name__}: "
                             f"{getattr(err, 'strerror', None) or err})") from None
        elif value is None and os.environ.get(env):
            what, value = f"${env}", os.environ[env]
        check_key(value, what or "", args.host)
        keys.append(value)
    if keys[0] and keys[0] == keys[1]:
        raise _usage("the read key and the write key must differ")
    return keys[0], keys[1]


def show_answer(answer, as_json: bool) -> None:
    from .forms import question_kind

    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if answer.rewritten:
        _out(f"(asked as: {answer.rewritten})", file=sys.stderr)
    if answer.kind == "evidence":
        _out(f"evidence (not an answer: {answer.note.split(': ')[0]}):")
        _out(f"  «{answer.answer}»" if not answer.abstained else f"  {answer.answer}")
    else:
        _out(answer.answer)
        if answer.context and answer.context != answer.answer:  # a factoid's sentence
            _out(f"  “{' '.join(answer.context.split())}”")
        elif answer.short and answer.short != answer.answer and \
                question_kind(answer.rewritten or answer.question) == "factoid":  # its span
            _out(f"  → {' '.join(answer.short.split())}")  # (a how-to's fragment would mislead)
    _out()
    if not answer.abstained:
        _out("sources:")
    elif answer.confidence is None and answer.similarity is not None:
        _out(f"closest passages (none close enough to the question: best similarity "
             f"{answer.similarity:.2f}; --abstain-similarity sets the bar):")
    else:
        _out("closest passages:")
    for i, c in enumerate(answer.citations, 1):
        page = page_text(c)
        heading = f" § {_one_line(c.heading)}" if c.heading else ""
        where = _where(c)
        att = f"attention {c.attention_score:.2f}, " if c.attention_score is not None else ""
        _out(f" [{i}] {where}{page}{heading} [{c.start}:{c.end}]  {att}retrieval "
             f"{c.retrieval_score:.3f}")
        _out(f"     {snippet(c)}")
    t = answer.timings
    _out(f"\n({', '.join(f'{k[:-3]} {v:.0f} ms' for k, v in t.items())})", file=sys.stderr)


def snippet(c, width: int = 240) -> str:
    """The passage around the answer, the answer marked with « »."""
    text = c.text
    if c.answer_start is not None:
        a, b = c.answer_start - c.start, c.answer_end - c.start
        lo = max(0, a - width // 2)
        text = text[lo:a] + "«" + text[a:b] + "»" + text[b:b + width // 2]
        return ("…" if lo else "") + " ".join(text.split())
    flat = " ".join(text.split())
    return flat[:width] + ("…" if len(flat) > width else "")


def cmd_eval(args) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.store import resolve_kb_dir
    from rag.evaluation.run import evaluate
    from rag.pipeline import Pipeline
    from rag.evaluation.qa import load_qaset, sample
    from rag.retrieval import Retriever

    _check_k(args.k)
    if not args.out.strip():
        raise _usage("--out is empty; give a folder for the results")
    kb_dir = resolve_kb_dir(args.kb)
    questions = sample(load_qaset(args.qaset, args.split), args.limit, args.seed)
    questions = asked_as(questions, args.ask, args.history)
    settings = {"qaset": str(args.qaset), "split": args.split, "limit": args.limit,
                "seed": args.seed, "kb": str(kb_dir), "n": len(questions), "ask": args.ask,
                "history": args.history}
    with KnowledgeBase.open(kb_dir) as kb:
        reader = open_reader(args, allow_none=True)
        k = args.k or getattr(getattr(reader, "config", None), "k", 5)
        if args.retrieval == "gold":
            from rag.evaluation.gold import GoldRetriever

            retriever = GoldRetriever(kb, questions)
        else:
            retriever = Retriever(kb, args.retrieval)
        pipeline = Pipeline(retriever, reader=reader, k=k)
        progress = args.progress if args.progress is not None else sys.stderr.isatty()
        summary = evaluate(pipeline, questions, Path(args.out), settings, progress=progress)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            if key != "by_type":
                print(f"{key:>28}  {'-' if value is None else value}")
        if summary.get("by_type"):
            from rag.evaluation.report import by_type_table

            print("\n".join(by_type_table(summary["by_type"])[2:]))
        print(f"results in {args.out}/ (report.md, predictions.csv, summary.json, run.json)")
    return 0


def asked_as(questions, field: str, history: bool):
    """The questions with ``field`` asked instead of ``question`` and, with ``history``
    off, their conversations' earlier turns dropped."""
    from dataclasses import replace

    out = []
    for q in questions:
        text = q.question if field == "question" else q.extra.get(field)
        if not isinstance(text, str) or not text.strip():
            raise _usage(f"--ask {field}: question {q.id} has no {field!r} text")
        extra = q.extra if history else {k: v for k, v in q.extra.items() if k != "history"}
        out.append(replace(q, question=text.strip(), extra=extra))
    return out


def cmd_train(args) -> int:
    from rag.training.reader import check_out_dir, recalibrate, train_reader

    if len(args.kb) != len(args.qasets):
        raise _usage(f"give one --kb per QASET ({len(args.qasets)} QA sets, {len(args.kb)} --kb)")
    if args.calibrate_only:
        card = recalibrate(list(zip(args.qasets, args.kb)), Path(args.out), seed=args.seed,
                           dev_limit=args.dev_limit, device=args.device)
        _print_calibration(args.out, card)
        return 0
    if args.max_steps is not None and args.max_steps < 1:
        raise _usage(f"--max-steps must be at least 1 (got {args.max_steps})")
    if args.start_step < 0 or (args.start_step and (args.init == "minilm" or args.resume)):
        raise _usage("--start-step N continues a reader given by --init (not minilm) at step "
                     "N of its schedule, and not with --resume")
    if args.lora is not None and args.lora < 1:
        raise _usage(f"--lora must be a rank of at least 1 (got {args.lora})")
    if args.unanswerable_every < 0:
        raise _usage("--unanswerable-every must be 0 (never) or more")
    for name in ("passages", "batch_size", "accumulate", "eval_every", "patience", "dev_limit"):
        if getattr(args, name) < 1:
            raise _usage(f"--{name.replace('_', '-')} must be at least 1")
    if args.epochs <= 0 or args.lr <= 0:
        raise _usage("--epochs and --lr must be positive")
    if args.nproc < 1 or args.batch_size % args.nproc:
        raise _usage(f"--nproc {args.nproc}: give at least 1, dividing --batch-size "
                     f"{args.batch_size} (each process takes an equal share of a batch)")
    out = Path(args.out)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:  # (under torchrun, rank 0 alone creates the directory)
        check_out_dir(out, args.resume)
    if args.nproc > 1 and "WORLD_SIZE" not in os.environ:
        from rag.training.distributed import launch

        return launch(_without_nproc(args.argv), args.nproc)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    card = train_reader(
        list(zip(args.qasets, args.kb)), out, init=args.init, k=args.passages,
        decoder_layers=args.decoder_layers, frozen_layers=args.frozen_layers,
        copy_head=not args.no_copy_head, span_head=not args.no_span_head,
        unanswerable_every=args.unanswerable_every, dev_limit=args.dev_limit, lora=args.lora,
        limit=args.limit, resume=args.resume,
        settings={"epochs": args.epochs, "batch_size": args.batch_size,
                  "accumulate": args.accumulate, "lr": args.lr, "eval_every": args.eval_every,
                  "patience": args.patience, "max_minutes": args.max_minutes, "seed": args.seed,
                  "max_steps": args.max_steps, "start_step": args.start_step,
                  "bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                  "device": args.device,
                  "progress": progress})
    if rank != 0:
        return 0
    print(f"reader saved in {out}: {card['stopped']} after {card['steps']} steps"
          f"{' in %d processes' % card['processes'] if card['processes'] > 1 else ''}")
    _print_calibration(out, card)
    return 0


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _print_calibration(out, card: dict) -> None:
    print(f"{out}: dev EM {card['dev']['em']:.1f} F1 {card['dev']['f1']:.1f}")
    for what, key, stats in (("confidence", "abstain_threshold", "abstention"),
                             ("similarity to the knowledge base", "abstain_similarity",
                              "abstention_similarity")):
        a = card.get(stats) or {}
        if card.get(key) is None:
            print(f"  never abstains on {what}: it does not separate answerable from "
                  f"unanswerable dev questions (gain {a.get('best_gain', '-')})")
        else:
            print(f"  abstains below {what} {card[key]}: answers "
                  f"{a.get('answered_answerable', '-')}% of answerable and "
                  f"{a.get('answered_unanswerable', '-')}% of unanswerable dev questions")
    rule = card.get("abstain_rule")
    if rule:
        shares = ", ".join(f"{k} {v['declined']}%" for k, v in
                           card["abstention_rule"]["declined % of dev"].items())
        print(f"  abstains by its rule instead, where it applies ({rule}): declines {shares}")


def cmd_compare(args) -> int:
    from rag.evaluation.report import compare

    result = compare(Path(args.run_a), Path(args.run_b), args.limit)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{'metric':>28}  {'A':>10}  {'B':>10}  {'B-A':>8}")
    for row in result["summary"]:
        fmt = lambda v: "-" if v is None else str(v)  # noqa: E731
        print(f"{row['metric']:>28}  {fmt(row['a']):>10}  {fmt(row['b']):>10}  "
              f"{fmt(row['delta']):>8}")
    print(f"\n{result['n_changed']} of {result['n_common']} questions changed outcome"
          + (f" (first {len(result['changed'])}):" if result["changed"] else "."))
    for row in result["changed"]:
        _out(f"- {row['question']}\n    A: {row['a']}\n    B: {row['b']}")
    return 0

def _where(hit) -> str:
    """A hit's document as shown: its id, with the file it came from where the id does not
    say (a row ``file#id`` or a file's own path says it already)."""
    if hit.source == hit.doc_id or hit.doc_id.startswith(hit.source + "#"):
        return _one_line(hit.doc_id)
    return _one_line(f"{hit.doc_id} ({hit.source})")


# controls but \t and \n, and the marks that reorder what follows them on screen
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _out(text: str = "", file=None) -> None:
    """Print for a terminal: a control character a document or a file name may hold (an
    escape sequence that recolours or rewrites the terminal, a right-to-left override that
    disguises "evil\\u202etxt.md") is shown as ``\\xNN`` / ``\\uNNNN``."""
    print(CONTROL.sub(_escaped, text), file=file or sys.stdout)


def _escaped(m) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def _one_line(text: str) -> str:
    """A name shown inside a line (a file name may hold a line break or a tab)."""
    return text.replace("\n", "\\n").replace("\t", "\\t")


def _check_k(k: int | None) -> None:
    from rag.retrieval import MAX_K

    if k is not None and not 1 <= k <= MAX_K:
        raise _usage(f"-k must be 1-{MAX_K} (got {k})")


def _usage(message: str):
    from knowledge.errors import UsageError

    return UsageError(message)


def _err(message: str) -> None:
    _out(message, file=sys.stderr)  # (a file name in it may hold a terminal escape)


