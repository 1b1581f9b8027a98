"""The ``rag`` command line: subcommands, human text by default, ``--json`` for machines.

Results go to stdout; progress, warnings and errors to stderr. Exit codes: 0 ok, 1 runtime
error (or nothing could be ingested), 2 usage error. Heavy libraries load lazily so
``rag --help`` is instant.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

INDEX_EXAMPLE = """example:
  rag index corpora/squad-dev/articles.jsonl.gz --kb kb
  rag index ~/manuals --kb kb --include '*.pdf' --exclude 'drafts/*'
  rag index ~/manuals --kb kb --rebuild --chunk-size 150 --chunk-overlap 20"""

SEARCH_EXAMPLE = """example:
  rag search "Who won Super Bowl 50?" --kb kb -k 3
  rag search "oxygen discovery" --kb kb --json --retrieval lexical
  rag search "reset the pump" --kb kb --path 'manuals/*' --where lang=en"""


EVAL_EXAMPLE = """example:
  rag index corpora/squad-dev/articles.jsonl.gz --kb kb-squad
  rag eval eval/data/squad-dev-open.qa.jsonl.gz --kb kb-squad --limit 1000 --out runs/squad-hybrid
  rag eval eval/data/squad-dev-open.qa.jsonl.gz --kb kb-squad --limit 1000 --retrieval dense \\
      --out runs/squad-dense
  rag eval compare runs/squad-dense runs/squad-hybrid"""

ASK_EXAMPLE = """example:
  rag ask "Who won Super Bowl 50?" --kb kb
  rag ask "Who won Super Bowl 50?" --kb kb --reader ~/models/flan-t5-base --grounded --json
  rag ask --kb kb                      # interactive; models stay loaded
  cat questions.txt | rag ask --kb kb  # one question per line, JSON lines out"""

TRAIN_EXAMPLE = """example:
  rag index corpora/squad-dev/articles.jsonl.gz --kb kb-squad
  rag train eval/data/squad-dev-open.qa.jsonl.gz --kb kb-squad --out readers/mine \\
      --passages 5 --max-minutes 30
  rag train eval/data/squad-dev-open.qa.jsonl.gz --kb kb-squad --out readers/mine --resume
  rag ask "Who won Super Bowl 50?" --kb kb-squad --reader readers/mine"""

COMPARE_EXAMPLE = """example:
  rag eval compare runs/squad-dense runs/squad-hybrid"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Answer questions from your own documents, with sources.",
        epilog="Run `rag COMMAND --help` for examples. The knowledge base directory may also "
               "be given as $RAG_KB.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="ingest files or folders into a knowledge base",
                       description="Ingest documents (.txt .md .html .pdf .docx .jsonl "
                       ".jsonl.gz .csv) into a knowledge base; re-running updates only what "
                       "changed.", epilog=INDEX_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to index")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files matching GLOB (path or name; repeatable)")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB (repeatable)")
    p.add_argument("--embedder", default=None,
                   help="sentence-transformers model: path or name (default: the KB's own, "
                        "else all-MiniLM-L6-v2)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="chunk size in embedder tokens (default 200)")
    p.add_argument("--chunk-overlap", type=int, default=None,
                   help="overlap between chunks in tokens (default 30)")
    p.add_argument("--index", default=None, choices=["auto", "flat", "hnsw", "ivfpq"],
                   help="FAISS index kind (default auto: flat, HNSW from 200k chunks, IVF-PQ "
                        "from 5M)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="embedding precision (auto: bf16 where the CPU has it natively)")
    p.add_argument("--batch-size", type=int, default=64, help="embedding batch size")
    p.add_argument("--max-file-mb", type=float, default=200, help="skip larger files")
    p.add_argument("--rebuild", action="store_true", help="start the knowledge base over")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("search", help="find the passages most similar to a query",
                       description="Search a knowledge base: hybrid (dense + BM25, fused) by "
                       "default.", epilog=SEARCH_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    add_retrieval_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_search)
    p = sub.add_parser("ask", help="answer a question from a knowledge base, with sources",
                       description="Retrieve passages and let a reader answer, citing the "
                       "passages it used. Without QUESTION: an interactive prompt on a "
                       "terminal, or one question per line from stdin (JSON lines out).",
                       epilog=ASK_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("question", nargs="?", metavar="QUESTION")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("-k", type=int, default=None,
                   help="passages given to the reader (default: the reader's own, else 5)")
    add_reader_args(p)
    add_retrieval_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="evaluate retrieval (and a reader) on a QA set",
                       description="Run every question of a QA set through the `rag ask` path "
                       "and write predictions.csv, summary.json, report.md, plots and run.json "
                       "into --out. An interrupted run resumes. Compare two runs with "
                       "`rag eval compare RUN_A RUN_B`.", epilog=EVAL_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("qaset", metavar="QASET", help="JSONL(.gz) QA set or SQuAD-format JSON")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="where results go")
    p.add_argument("-k", type=int, default=None,
                   help="passages given to the reader (default: the reader's own, else 5)")
    add_reader_args(p, allow_none=True)
    p.add_argument("--split", default="test", choices=["test", "train", "all"],
                   help="which split of the QA set (default test)")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N questions")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit (default 0)")
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical", "gold"],
                   help="dense (FAISS), lexical (BM25), hybrid: both fused (default), or gold: "
                        "only the chunk of the gold document that holds the answer (reader "
                        "quality without retrieval errors)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="train a Fusion-in-Decoder reader on QA sets",
                       description="Train a FiD reader on the train split of QA sets whose "
                       "answers are in the paired knowledge bases (one --kb per QASET, in "
                       "order). Passages are mined with the same retrieval `rag ask` uses.",
                       epilog=TRAIN_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("qasets", nargs="+", metavar="QASET")
    p.add_argument("--kb", action="append", required=True, metavar="DIR",
                   help="knowledge base for each QASET, in the same order")
    p.add_argument("--out", required=True, metavar="READER_DIR")
    p.add_argument("--init", default="minilm",
                   help="minilm (offline warm start from the packaged MiniLM) or any HF seq2seq "
                        "checkpoint to fine-tune")
    p.add_argument("--passages", type=int, default=5, help="passages per question (k)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--decoder-layers", type=int, default=3, help="(minilm) new decoder depth")
    p.add_argument("--frozen-layers", type=int, default=4,
                   help="(minilm) lower encoder layers kept frozen")
    p.add_argument("--no-copy-head", action="store_true", help="(minilm) without the copy head")
    p.add_argument("--limit", type=int, default=None, help="train questions per QA set")
    p.add_argument("--eval-every", type=int, default=200, help="optimizer steps between evals")
    p.add_argument("--patience", type=int, default=5, help="evals without gain before stopping")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget of this run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is available")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval-compare", help=argparse.SUPPRESS, prog="rag eval compare",
                       description="Compare two evaluation runs.", epilog=COMPARE_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--limit", type=int, default=20, help="changed questions to list")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare)
    return parser


def add_reader_args(p: argparse.ArgumentParser, allow_none: bool = False) -> None:
    none = " or none (retrieval only)" if allow_none else ""
    p.add_argument("--reader", default=None, metavar="NAME_OR_PATH",
                   help=f"a Hugging Face checkpoint (seq2seq for FiD; decoder-only works too){none}"
                        "; default: the project's reader when installed")
    p.add_argument("--reader-kind", default="auto", choices=["auto", "fid", "causal"],
                   help="how to use the checkpoint (default: by its architecture)")
    p.add_argument("--grounded", action=argparse.BooleanOptionalAction, default=None,
                   help="only answer with a span found in the passages (FiD readers)")
    p.add_argument("--beams", type=int, default=None, help="beam search width (default greedy)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="longest answer, in tokens")
    p.add_argument("--abstain-threshold", type=float, default=None,
                   help="answer 'not found' below this reader confidence (0-1)")


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
    if args.abstain_threshold is not None:
        overrides["abstain_threshold"] = args.abstain_threshold
    return load_reader(name, args.reader_kind, **overrides)


def add_retrieval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical"],
                   help="dense (FAISS), lexical (BM25) or hybrid: both fused (default)")
    p.add_argument("--path", default=None, metavar="GLOB",
                   help="only documents whose path or id matches GLOB")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only documents whose metadata KEY equals VALUE (repeatable)")


def cmd_index(args) -> int:
    from knowledge.chunking import ChunkerSettings
    from knowledge.embedding import DEFAULT_EMBEDDER, Embedder, resolve_model, weights_hash
    from knowledge.store import Store, is_kb, resolve_kb_dir
    from knowledge.sync import sync

    kb_dir = resolve_kb_dir(args.kb)
    for p in args.paths:  # fail on a typo before loading anything
        if not Path(p).exists():
            raise _usage(f"path not found: {p}")
    if args.batch_size < 1:
        raise _usage(f"--batch-size must be at least 1 (got {args.batch_size})")
    built = None
    if is_kb(kb_dir) and not args.rebuild:
        with Store.open(kb_dir) as store:
            built = store.manifest
    name = args.embedder or (built["embedder"]["name"] if built else DEFAULT_EMBEDDER)
    chunker = built["chunker"] if built else {"size": 200, "overlap": 30}
    settings = ChunkerSettings(
        size=args.chunk_size if args.chunk_size is not None else chunker["size"],
        overlap=args.chunk_overlap if args.chunk_overlap is not None else chunker["overlap"])
    settings.validate()
    model_dir = resolve_model(name)
    identity = (dict(built["embedder"]) if built and built["embedder"]["name"] == name
                else None)
    if identity is None or identity["weights_sha256"] != weights_hash(model_dir):
        # a new KB or another model: load it now for its dimension and token limit
        embedder = Embedder.load(name, precision=args.precision)
        identity = embedder.identity()
        loader = lambda: embedder  # noqa: E731
    else:
        loader = lambda: Embedder.load(name, precision=args.precision)  # noqa: E731
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    report = sync(
        kb_dir, [Path(p) for p in args.paths], load_embedder=loader, embedder_identity=identity,
        chunking=settings, index_kind=args.index or "auto", include=args.include,
        exclude=args.exclude, rebuild=args.rebuild, max_file_mb=args.max_file_mb,
        batch_size=args.batch_size, progress=progress)
    for path, reason in report.skipped:
        _err(f"skipped {path}: {reason}")
    for path, message in report.warnings:
        _err(f"warning: {path}: {message}")
    if args.json:
        print(json.dumps({"kb": str(kb_dir), **report.to_dict()}, indent=2))
    else:
        print(
            f"{kb_dir}: {report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged documents; {report.chunks_added} chunks embedded, "
            f"{report.chunks_removed} dropped; now {report.total_documents} documents, "
            f"{report.total_chunks} chunks ({report.index_kind} index) in "
            f"{report.seconds['total']:.1f} s")
        if report.skipped or report.unsupported:
            print(f"{len(report.skipped)} files skipped (reasons above), "
                  f"{report.unsupported} files of unsupported types ignored")
    return 0


def cmd_search(args) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.store import resolve_kb_dir

    if not args.query.strip():
        raise _usage("empty query; give some text to search for")
    if args.k < 1:
        raise _usage(f"-k must be at least 1 (got {args.k})")
    from rag.retrieval import Filters, Retriever

    filters = Filters.parse(args.path, args.where)
    with KnowledgeBase.open(resolve_kb_dir(args.kb)) as kb:
        hits = Retriever(kb, args.retrieval).retrieve(args.query, k=args.k, filters=filters)
    if args.json:
        print(json.dumps({"query": args.query, "retrieval": args.retrieval,
                          "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return 0
    if not hits:
        print("no passages found (the knowledge base is empty)")
    for rank, h in enumerate(hits, 1):
        where = h.doc_id if h.source == h.doc_id else f"{h.doc_id} ({h.source})"
        page = f" p.{h.page}" if h.page else ""
        heading = f" § {h.heading}" if h.heading else ""
        print(f"[{rank}] {h.score:.3f}  {where}{page}{heading}  [{h.start}:{h.end}]")
        print("    " + " ".join(h.text.split())[:400])
    return 0


def cmd_ask(args) -> int:
    from knowledge.kb import KnowledgeBase
    from knowledge.store import resolve_kb_dir
    from rag.pipeline import Pipeline
    from rag.retrieval import Filters, Retriever

    if args.question is not None and not args.question.strip():
        raise _usage("empty question; ask something")
    if args.k is not None and args.k < 1:
        raise _usage(f"-k must be at least 1 (got {args.k})")
    filters = Filters.parse(args.path, args.where)
    kb_dir = resolve_kb_dir(args.kb)
    with KnowledgeBase.open(kb_dir) as kb:
        reader = open_reader(args)
        k = args.k or getattr(getattr(reader, "config", None), "k", 5)
        pipeline = Pipeline(Retriever(kb, args.retrieval), reader, k=k)
        if args.question is not None:
            show_answer(pipeline.ask(args.question, filters), args.json)
            return 0
        interactive = sys.stdin.isatty()
        if interactive:
            _err("ask a question (empty line or Ctrl-D to quit)")
        while True:
            if interactive:
                try:
                    line = input("? ")
                except EOFError:
                    break
            else:
                line = sys.stdin.readline()
                if not line:
                    break
            if not line.strip():
                if interactive:
                    break
                continue
            answer = pipeline.ask(line.strip(), filters)
            if interactive:
                show_answer(answer, args.json)
            else:
                print(json.dumps(answer.to_dict(), ensure_ascii=False), flush=True)
    return 0


def show_answer(answer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    print(answer.answer)
    print()
    print("sources:" if not answer.abstained else "closest passages:")
    for i, c in enumerate(answer.citations, 1):
        page = f" p.{c.page}" if c.page else ""
        where = c.doc_id if c.source == c.doc_id else f"{c.doc_id} ({c.source})"
        att = f"attention {c.attention_score:.2f}, " if c.attention_score is not None else ""
        print(f" [{i}] {where}{page} [{c.start}:{c.end}]  {att}retrieval {c.retrieval_score:.3f}")
        print(f"     {snippet(c)}")
    t = answer.timings
    print(f"\n({', '.join(f'{k[:-3]} {v:.0f} ms' for k, v in t.items())})", file=sys.stderr)


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
    from rag.evaluate import evaluate
    from rag.pipeline import Pipeline
    from rag.qa import load_qaset, sample
    from rag.retrieval import Retriever

    if args.k is not None and args.k < 1:
        raise _usage(f"-k must be at least 1 (got {args.k})")
    kb_dir = resolve_kb_dir(args.kb)
    questions = sample(load_qaset(args.qaset, args.split), args.limit, args.seed)
    settings = {"qaset": str(args.qaset), "split": args.split, "limit": args.limit,
                "seed": args.seed, "kb": str(kb_dir), "n": len(questions)}
    with KnowledgeBase.open(kb_dir) as kb:
        reader = open_reader(args, allow_none=True)
        k = args.k or getattr(getattr(reader, "config", None), "k", 5)
        if args.retrieval == "gold":
            from rag.retrieval import GoldRetriever

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
            print(f"{key:>28}  {'-' if value is None else value}")
        print(f"results in {args.out}/ (report.md, predictions.csv, summary.json, run.json)")
    return 0


def cmd_train(args) -> int:
    from rag.train_reader import check_out_dir, train_reader

    if len(args.kb) != len(args.qasets):
        raise _usage(f"give one --kb per QASET ({len(args.qasets)} QA sets, {len(args.kb)} --kb)")
    for name in ("passages", "batch_size", "accumulate", "eval_every", "patience"):
        if getattr(args, name) < 1:
            raise _usage(f"--{name.replace('_', '-')} must be at least 1")
    if args.epochs <= 0 or args.lr <= 0:
        raise _usage("--epochs and --lr must be positive")
    out = Path(args.out)
    check_out_dir(out, args.resume)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    card = train_reader(
        list(zip(args.qasets, args.kb)), out, init=args.init, k=args.passages,
        decoder_layers=args.decoder_layers, frozen_layers=args.frozen_layers,
        copy_head=not args.no_copy_head, limit=args.limit, resume=args.resume,
        settings={"epochs": args.epochs, "batch_size": args.batch_size,
                  "accumulate": args.accumulate, "lr": args.lr, "eval_every": args.eval_every,
                  "patience": args.patience, "max_minutes": args.max_minutes, "seed": args.seed,
                  "bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                  "device": args.device,
                  "progress": progress})
    print(f"reader saved in {out}: {card['stopped']} after {card['steps']} steps; dev EM "
          f"{card['dev']['em']:.1f} F1 {card['dev']['f1']:.1f}; abstain below confidence "
          f"{card['abstain_threshold']}")
    return 0


def cmd_compare(args) -> int:
    from rag.report import compare

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
        print(f"- {row['question']}\n    A: {row['a']}\n    B: {row['b']}")
    return 0


def _usage(message: str):
    from knowledge.errors import UsageError

    return UsageError(message)


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "compare"]:
        argv = ["eval-compare", *argv[2:]]
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _quiet_libraries()
    from knowledge.errors import KnowledgeError

    try:
        return args.func(args)
    except KnowledgeError as err:
        _err(f"error: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        _err("interrupted; the knowledge base is unchanged by the unfinished run")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug, not a user mistake: one line, details on request
        if os.environ.get("RAG_DEBUG"):
            raise
        _err(f"error: unexpected {err.__class__.__name__}: {err} (set RAG_DEBUG=1 for the "
             "traceback and please report it)")
        return 1
