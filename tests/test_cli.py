"""The `rag` command line with the real packaged embedder: output, JSON schema, exit codes."""
import json
import re
import subprocess
import sys

import pytest

from conftest import ANIMALS, ROOT, write_corpus
from rag.cli import main


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    docs = write_corpus(base / "docs", {**ANIMALS, "bin.txt": b"\x00\x01\x02", "empty.md": "",
                                        "photo.png": b"\x89PNG"})
    kb = base / "kb"
    assert main(["index", str(docs), "--kb", str(kb)]) == 0
    return docs, kb


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_index_reports_counts_and_skipped_files(tmp_path, capsys):
    docs = write_corpus(tmp_path / "docs", {**ANIMALS, "bin.txt": b"\x00\x01", "empty.md": ""})
    code, out, err = run(capsys, "index", str(docs), "--kb", str(tmp_path / "kb"))
    assert code == 0
    assert "6 added, 0 updated, 0 removed, 0 unchanged documents" in out
    assert "2 files skipped" in out
    assert f"skipped {docs / 'bin.txt'}: binary content, not text" in err
    assert f"skipped {docs / 'empty.md'}: empty file" in err
    code, out, _ = run(capsys, "index", str(docs), "--kb", str(tmp_path / "kb"), "--json")
    report = json.loads(out)
    assert (code, report["added"], report["unchanged"], report["chunks"]) == (0, 0, 6, 6)


def test_search_json_schema(indexed, capsys):
    _, kb = indexed
    code, out, _ = run(capsys, "search", "Which birds use tools?", "--kb", str(kb), "-k", "2",
                       "--json")
    assert code == 0
    result = json.loads(out)
    assert result["query"] == "Which birds use tools?"
    assert len(result["hits"]) == 2
    top = result["hits"][0]
    assert {"chunk_id", "doc_id", "source", "text", "start", "end", "score", "page",
            "title"} <= set(top)
    assert top["doc_id"] == "birds/crow.txt"
    assert top["text"] == ANIMALS["birds/crow.txt"].strip()
    assert (top["start"], top["end"]) == (0, len(top["text"]))
    assert result["hits"][0]["score"] >= result["hits"][1]["score"]


def test_search_human_output(indexed, capsys):
    _, kb = indexed
    code, out, _ = run(capsys, "search", "salmon spawning", "--kb", str(kb), "-k", "1")
    assert code == 0
    assert out.startswith("[1] ") and "fish.jsonl#salmon " in out
    assert "Salmon swim upstream to spawn." in out


def test_search_says_why_nothing_was_found_and_prints_no_control_characters(tmp_path, capsys):
    # (a terminal's colour codes in a text file are dropped when it is read; a title-setting
    # sequence is not one of them, and must not reach the terminal either)
    docs = write_corpus(tmp_path / "docs", {"a\x1b[2Jb.txt": "Cats \x1b]0;pwned\x07purr softly.",
                                            "line\nbreak.txt": "Dogs bark."})
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb")]) == 0
    capsys.readouterr()
    kb = str(tmp_path / "kb")
    code, out, _ = run(capsys, "search", "cats", "--kb", kb, "--where", "lang=xx")
    assert out == ("no passages found (no document has the metadata key 'lang'; the keys are: "
                   "(none: no document has metadata) (--path/--where))\n")
    code, out, _ = run(capsys, "search", "zebras", "--kb", kb, "--retrieval", "lexical")
    assert out == "no passages found (no passage holds a word of the query)\n"
    code, out, _ = run(capsys, "search", "cats purr", "--kb", kb)
    # (an escape sequence in a file name or a document would recolour or clear the terminal)
    assert code == 0 and "\x1b" not in out and "a\\x1b[2Jb.txt" in out
    assert "Cats \\x1b]0;pwned\\x07purr softly." in out and "line\\nbreak.txt" in out
    (docs / "evil\u202etxt.md").write_bytes(b"\x00\x01")  # (skipped: its name is printed)
    code, _, err = run(capsys, "index", str(docs), "--kb", kb)
    assert code == 0 and "evil\\u202etxt.md: binary content" in err and "\u202e" not in err


def test_where_matches_one_of_a_notes_tags(tmp_path, capsys):
    docs = write_corpus(tmp_path / "docs", {
        "a.md": "---\ntags: [homelab, incident]\n---\nThe disk failed on Sunday.\n",
        "b.md": "---\ntags: homelab\n---\nThe disk was replaced on Monday.\n"})
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb")]) == 0
    capsys.readouterr()
    kb = str(tmp_path / "kb")
    for tag, found in (("incident", ["a.md"]), ("homelab", ["a.md", "b.md"])):
        code, out, _ = run(capsys, "search", "disk", "--kb", kb, "--where", f"tags={tag}",
                           "--json")
        assert code == 0 and sorted(h["doc_id"] for h in json.loads(out)["hits"]) == found
    code, out, _ = run(capsys, "search", "disk", "--kb", kb, "--where", "tags=x")
    assert "its values include: 'homelab', 'incident'" in out  # (a list's items, each)


def test_a_file_given_twice_or_inside_a_folder_given_is_one_document(tmp_path, capsys):
    docs = write_corpus(tmp_path / "docs", {"a.txt": "Cats sleep.", "sub/b.txt": "Owls hunt."})
    code, out, _ = run(capsys, "index", str(docs), str(docs / "sub" / "b.txt"), str(docs),
                       "--kb", str(tmp_path / "kb"), "--json")
    report = json.loads(out)  # (b.txt was indexed twice, as "b.txt" and "sub/b.txt")
    assert code == 0 and (report["added"], report["documents"]) == (2, 2), report


def test_index_names_a_link_to_a_device(tmp_path, capsys):
    (tmp_path / "zero.txt").symlink_to("/dev/zero")
    code, _, err = run(capsys, "index", str(tmp_path / "zero.txt"), "--kb", str(tmp_path / "kb"))
    assert code == 2 and err.strip() == (f"error: {tmp_path / 'zero.txt'}: not a regular file or "
                                         "folder (a link to /dev/zero); give files or folders to "
                                         "index")


def test_kb_from_environment(indexed, capsys, monkeypatch):
    _, kb = indexed
    monkeypatch.setenv("RAG_KB", str(kb))
    code, out, _ = run(capsys, "search", "dogs", "-k", "1")
    assert code == 0 and "dogs.txt" in out


@pytest.mark.parametrize("argv,code,message", [
    (["index", "{tmp}/missing", "--kb", "{tmp}/kb"], 2, "error: path not found: {tmp}/missing"),
    (["index", "{tmp}/emptydir", "--kb", "{tmp}/kb"], 1, "error: nothing to index in"),
    (["index", "{docs}", "--kb", "{docs}"], 2, "is a non-empty directory that is not a knowledge base"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--embedder", "no-such-model"], 2,
     "error: unknown embedder 'no-such-model'"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--chunk-size", "100", "--chunk-overlap", "100"], 2,
     "error: chunk overlap 100 must be >= 0 and smaller than the chunk size 100"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--windows", "-1"], 2,
     "error: window size -1 must be 0 (no window vectors) or a number of words, e.g. 24"),
    (["index", "{docs}", "--kb", "{kb}", "--windows", "0"], 2,
     "was built with chunk size/overlap/windows 200/30/24, not 200/30/0; keep those settings or pass --rebuild"),
    (["index", "{docs}", "--kb", "{kb}", "--chunk-size", "120"], 2,
     "was built with chunk size/overlap/windows 200/30/24, not 120/30/24; keep those settings or pass --rebuild"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--parse-timeout", "inf"], 2,
     "error: --parse-timeout must be 0-86400 seconds and --parse-memory-mb 64-1048576"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--parse-memory-mb", "nan"], 2,
     "error: --parse-timeout must be 0-86400 seconds and --parse-memory-mb 64-1048576"),
    (["index", "{docs}", "--kb", "{tmp}/kb2", "--max-file-mb", "-1"], 2,
     "error: --max-file-mb must be more than 0"),
    (["search", "cats", "--kb", "{docs}"], 1, "is not a knowledge base"),
    (["search", "cats", "--kb", "{tmp}/nothing"], 1, "does not exist"),
    (["search", "  ", "--kb", "{kb}"], 2, "error: empty query"),
    (["search", "cats", "--kb", "{kb}", "-k", "0"], 2, "error: -k must be 1-10000 (got 0)"),
    (["search", "cats", "--kb", "{kb}", "-k", "2147483648"], 2, "error: -k must be 1-10000"),
    (["ask", "cats", "--kb", "{kb}", "-k", "99999999999"], 2, "error: -k must be 1-10000"),
    (["search", "caf\udce9", "--kb", "{kb}"], 2,
     "error: the question holds bytes that are not UTF-8"),
    (["search", "cats"], 2, "error: no knowledge base given; pass --kb DIR or set RAG_KB"),
    (["eval", "{tmp}/qa.jsonl", "--kb", "{kb}", "--out", " "], 2,
     "error: --out is empty; give a folder for the results"),
])
def test_bad_input_one_line_errors(indexed, tmp_path, capsys, monkeypatch, argv, code, message):
    docs, kb = indexed
    monkeypatch.delenv("RAG_KB", raising=False)
    (tmp_path / "emptydir").mkdir()
    fill = {"tmp": str(tmp_path), "docs": str(docs), "kb": str(kb)}
    got, out, err = run(capsys, *[a.format(**fill) for a in argv])
    assert got == code
    assert message.format(**fill) in err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert out == ""


def test_usage_errors_from_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["index"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["search", "q", "--kb", "x", "-k", "many"])
    assert exc.value.code == 2


def test_index_names_what_it_ignores_and_warns_when_filters_remove_documents(tmp_path,
                                                                            capsys):
    """A user's trial: "10 files of unsupported types ignored" named none of them, and a run
    with --include removed 76 of 77 documents without a word (the knowledge base keeps what
    the filters match: that stays, and is now said)."""
    docs = write_corpus(tmp_path / "docs", {**ANIMALS, "photo.png": b"\x89PNG",
                                            "x\x1b[2Jy.bin": b"\x00"})
    kb = str(tmp_path / "kb")
    code, out, err = run(capsys, "index", str(docs), "--kb", kb)
    assert code == 0 and "2 files of unsupported types ignored: 1 .bin, 1 .png (photo.png, " \
        "x\\x1b[2Jy.bin)" in out and "convert" not in out
    assert "files skipped" not in out  # (none were: nothing "above" to point at)
    code, out, err = run(capsys, "index", str(docs), "--kb", kb, "--include", "crow.txt")
    assert code == 0 and "0 added, 0 updated, 5 removed, 1 unchanged" in out
    assert "warning: 5 documents removed whose files are still there: --include/--exclude " \
           "leave them out" in err
    (docs / "dogs.txt").unlink()
    code, out, err = run(capsys, "index", str(docs), "--kb", kb, "--json")
    report = json.loads(out)
    assert report["added"] == 4 and report["left_out"] == 0 and "warning" not in err


def test_index_says_which_documents_it_cannot_read_and_how_to_get_them_read(tmp_path, capsys):
    """A user's trial: a folder of books, slides and LaTeX papers got "38 files of unsupported
    types ignored" and five names; the kinds are counted, and a document kind not read here
    comes with what to do."""
    docs = write_corpus(tmp_path / "docs", {**ANIMALS, "paper.rtf": "{\\rtf1 Crows}",
                                            "notes.doc": "x", "old.xls": "x", "style.css": "p {}",
                                            **{f"img{i}.png": "x" for i in range(6)}})
    code, out, err = run(capsys, "index", str(docs), "--kb", str(tmp_path / "kb"))
    assert code == 0 and "10 files of unsupported types ignored: 6 .png, 1 .css, 1 .doc, " \
        "1 .rtf, 1 .xls (img0.png, " in out
    assert "; .doc .rtf files are not read here: save them as .docx or .odt to index them; " \
        ".xls files are not read here: save them as .xlsx or .ods to index them" in out


def test_index_warns_of_one_document_in_two_formats(tmp_path, capsys):
    """A user's trial: git's manual ships every page as AsciiDoc .txt and as .html; indexed
    both, each passage came twice in a question's citations, and nothing said so."""
    docs = write_corpus(tmp_path / "docs", {"git-gc.txt": "Git gc cleans up.\n",
                                            "git-gc.html": "<p>Git gc cleans up.</p>",
                                            "sub/git-gc.md": "# gc\n\nOther folder.\n",
                                            "README": "x\n", "README.Debian": "y\n"})
    kb = str(tmp_path / "kb")
    code, out, err = run(capsys, "index", str(docs), "--kb", kb)
    assert code == 0 and err.count("warning:") == 1
    assert (f"warning: {docs / 'git-gc.html'} and {docs / 'git-gc.txt'}: the same document in "
            "two formats, so its passages may be cited twice; --exclude '*.txt'") in err
    code, out, err = run(capsys, "index", str(docs), "--kb", kb, "--json")
    assert code == 0 and "warning" not in err  # (said when they come in, not on every run)
    assert json.loads(out)["twins"] == [[str(docs / "git-gc.html"), str(docs / "git-gc.txt")]]


def test_every_subcommand_help_has_an_example(capsys):
    for cmd in ("index", "search"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        assert f"example:\n  rag {cmd} " in capsys.readouterr().out


def test_the_command_list_names_no_hidden_command_and_ask_says_what_question_is(capsys):
    """`eval-compare` (reached as `rag eval compare`) was listed as "==SUPPRESS==" (argparse
    prints a subparser's suppressed help), and `rag ask --help` left QUESTION unexplained."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "SUPPRESS" not in out and "eval-compare" not in out and "  ask " in out
    with pytest.raises(SystemExit):
        main(["ask", "--help"])
    assert re.search(r"QUESTION +the question", capsys.readouterr().out)


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from rag.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'faiss', 'transformers', 'sentence_transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in readme.splitlines() if "pytest" in line and "pip" in line)
    assert command.strip() in ci


def test_eval_and_compare_commands(indexed, tmp_path, capsys):
    _, kb = indexed
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        '{"id": "1", "question": "Which birds use tools?", "answers": ["crows"], '
        '"gold_ids": ["birds/crow.txt"]}\n'
        '{"id": "2", "question": "What do cats eat?", "answers": ["fish and meat"], '
        '"gold_ids": ["cats.md"]}\n')
    code, out, _ = run(capsys, "eval", str(qa), "--kb", str(kb), "--out", str(tmp_path / "a"),
                       "-k", "1", "--json", "--reader", "none")
    summary = json.loads(out)
    assert code == 0 and summary["n"] == 2 and summary["recall@1"] == 100.0
    assert summary["exact_match"] is None  # retrieval only
    code, out, _ = run(capsys, "eval", str(qa), "--kb", str(kb), "--out", str(tmp_path / "b"),
                       "-k", "1", "--retrieval", "lexical", "--reader", "none")
    assert code == 0 and "recall@1" in out
    code, out, _ = run(capsys, "eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 0 and "recall@1" in out and "questions changed outcome" in out
    qa.write_text('{"id": "1", "question": "q", "answers": ["a"]}\nbroken\n')
    code, out, err = run(capsys, "eval", str(qa), "--kb", str(kb), "--out", str(tmp_path / "c"))
    assert code == 2 and err.strip() == f"error: {qa}:2: not valid JSON; each line must be one " \
                                        "JSON object"
    code, _, err = run(capsys, "eval", "compare", str(tmp_path / "a"), str(tmp_path / "zz"))
    assert code == 2 and "is not a finished evaluation run" in err


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory):
    from tiny_models import tiny_t5

    return str(tiny_t5(tmp_path_factory.mktemp("reader")))


def test_ask_json_schema(indexed, tiny_reader, capsys):
    _, kb = indexed
    code, out, _ = run(capsys, "ask", "Which birds use tools?", "--kb", str(kb), "--reader",
                       tiny_reader, "-k", "3", "--json", "--max-new-tokens", "4")
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"question", "answer", "abstained", "confidence", "similarity",
                           "citations", "timings", "explanation", "kind", "note", "form",
                           "short", "context", "withheld", "rewritten", "read_as"}
    assert result["form"] in ("generated", "sentence", "steps", "code", None)
    assert result["explanation"] is None  # (a generative reader: no span head)
    assert (result["kind"], result["note"]) == ("answer", None)
    assert result["question"] == "Which birds use tools?"
    assert len(result["citations"]) == 3
    c = result["citations"][0]
    assert {"doc_id", "source", "page", "start", "end", "text", "retrieval_score",
            "attention_score", "answer_start", "answer_end", "short_start", "short_end",
            "context_start", "context_end"} <= set(c)
    scores = [c["attention_score"] for c in result["citations"]]
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1, abs=1e-3)
    assert {"retrieval_ms", "embed_ms", "search_ms", "reader_ms", "encode_ms",
            "decode_ms"} <= set(result["timings"])


def test_ask_grounded_points_at_the_span(indexed, tiny_reader, capsys):
    docs, kb = indexed
    code, out, _ = run(capsys, "ask", "What do cats eat?", "--kb", str(kb), "--reader",
                       tiny_reader, "--grounded", "--json", "--max-new-tokens", "3")
    result = json.loads(out)
    cited = [c for c in result["citations"] if c["answer_start"] is not None]
    assert code == 0 and len(cited) == 1
    c = cited[0]
    source = ANIMALS.get(c["doc_id"])
    if source is not None:  # a file document: offsets index its text
        assert source[c["answer_start"]:c["answer_end"]].lower() == result["answer"].lower()


def test_ask_reads_stdin_as_json_lines(indexed, tiny_reader, capsys, monkeypatch):
    import io

    _, kb = indexed
    monkeypatch.setattr("sys.stdin", io.StringIO("Which birds use tools?\n\nWhat do cats eat?\n"))
    code, out, _ = run(capsys, "ask", "--kb", str(kb), "--reader", tiny_reader,
                       "--max-new-tokens", "2")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["question"] for r in lines] == ["Which birds use tools?",
                                                            "What do cats eat?"]


def test_ask_stdin_lines_that_are_not_text_fail_alone(indexed, tiny_reader, capsys,
                                                      monkeypatch):
    import io

    _, kb = indexed
    lines = (b"Which birds use tools?\ncaf\xe9 au lait\n"
             b'{"question": "caf\\ud800?"}\nWhat do cats eat?\n')
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines), encoding="utf-8"))
    code, out, _ = run(capsys, "ask", "--kb", str(kb), "--reader", tiny_reader,
                       "--max-new-tokens", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 4
    assert rows[0]["question"] == "Which birds use tools?"
    assert rows[1] == {"error": "the line is not UTF-8 text; send questions as UTF-8"}
    assert "not UTF-8 text" in rows[2]["error"]
    assert rows[3]["question"] == "What do cats eat?"


def test_ask_human_output(indexed, tiny_reader, capsys):
    _, kb = indexed
    code, out, err = run(capsys, "ask", "Which birds use tools?", "--kb", str(kb), "--reader",
                         tiny_reader, "--max-new-tokens", "2", "-k", "2")
    assert code == 0
    assert "\nsources:\n [1] " in out and " [2] " in out and "retrieval " in out
    assert "ms" in err
    code, out, _ = run(capsys, "ask", "Which birds use tools?", "--kb", str(kb), "--reader",
                       tiny_reader, "-k", "2", "--abstain-similarity", "0.999")
    assert code == 0 and out.startswith("not found in the knowledge base\n")
    assert "closest passages (none close enough to the question: best similarity 0." in out
    assert " [2] " in out


def test_ask_bad_input(indexed, tiny_reader, tmp_path, capsys):
    _, kb = indexed
    from transformers import BertConfig, BertModel

    bert = tmp_path / "bert"
    BertModel(BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=1, intermediate_size=16)).save_pretrained(bert)
    capsys.readouterr()  # (what saving it printed: transformers' progress bar)
    cases = [
        (["ask", " ", "--kb", str(kb), "--reader", tiny_reader], 2, "error: empty question"),
        (["ask", "q", "--kb", str(tmp_path / "none"), "--reader", tiny_reader], 1,
         "does not exist"),
        (["ask", "q", "--kb", str(kb), "--reader", str(bert)], 2,
         "is not a seq2seq model nor a causal language model"),
        (["ask", "q", "--kb", str(kb), "--reader", str(tmp_path / "missing")], 2,
         "is not a model directory"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--beams", "0"], 2,
         "--beams must be at least 1"),
        # (a filter that matches nothing answered "not found" to every question: a user's trial)
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--path", "brids/*"], 2,
         "no document matches path 'brids/*'; the closest ids: birds/"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--where", "habitat=lake"], 2,
         "no document has metadata habitat='lake'"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--abstain-similarity", "1.5"],
         2, "--abstain-similarity must be a cosine between -1 and 1"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--abstain-threshold", "nan"],
         2, "--abstain-threshold must be a confidence between 0 and 1"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--abstain-similarity", "0.5",
          "--retrieval", "lexical"], 2, "--abstain-similarity needs dense or hybrid retrieval"),
        (["ask", "q", "--kb", str(kb), "--reader", tiny_reader, "--answer-mode", "extractive"],
         2, "has no span head; use --answer-mode generative"),
        (["train", "qa.jsonl", "--kb", str(kb), "--out", str(tmp_path / "r"), "--lora", "0"],
         2, "--lora must be a rank of at least 1"),
        (["train", "qa.jsonl", "--kb", str(kb), "--out", str(tmp_path / "r"),
          "--max-steps", "0"], 2, "--max-steps must be at least 1"),
    ]
    for argv, code, message in cases:
        got, out, err = run(capsys, *argv)
        assert (got, out) == (code, ""), argv
        assert message in err and len(err.strip().splitlines()) == 1, err
