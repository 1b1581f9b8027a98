"""E-mail (.eml, .mbox) and Jupyter notebooks (.ipynb): read as a mail client and a notebook
show them, and answered from with the shipped reader."""
import gzip
import json
import re
from email.message import EmailMessage

import pytest

from knowledge.loaders import LoadError, load_file
from knowledge.mail import unquoted


def message(subject="Backup schedule changed", sender="Ann Lee <ann@example.org>",
            body="Hi all,\n\nFrom next week the nightly backup runs at 02:30 instead of 01:00,"
                 " because the NAS scrub now takes the first hour.\n\nAnn\n",
            msg_id="<a1@example.org>", reply_to=None, html=None) -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, "ops@example.org", subject
    m["Date"], m["Message-ID"] = "Mon, 02 Oct 2023 10:00:00 +0200", msg_id
    if reply_to:
        m["In-Reply-To"] = reply_to
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    return m


def mbox(*messages) -> bytes:
    """A mailbox as mail programs write it (mboxrd: a body's "From " line escaped)."""
    out = b""
    for m in messages:
        raw = bytes(m).replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
        out += b"From ann@example.org Mon Oct  2 10:00:00 2023\n" + raw + b"\n"
    return out


def load(tmp_path, name, data: bytes):
    (tmp_path / name).write_bytes(data)
    return load_file(tmp_path / name, name)


def test_a_message_reads_as_its_subject_sender_day_and_body_headers_kept_as_metadata(tmp_path):
    m = message(html="<p>Hi all,</p><p>HTML copy</p>")
    m.add_attachment(b"Backup host: nas01\nRetention: 14 days\n", maintype="text",
                     subtype="plain", filename="backup-notes.txt")
    m.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="../../etc/a.png")
    docs, warnings = load(tmp_path, "backup.eml", bytes(m))
    assert warnings == [] and [d.doc_id for d in docs] == ["backup.eml",
                                                           "backup.eml#backup-notes.txt"]
    mail, notes = docs
    heading = "Backup schedule changed (Ann Lee, 2023-10-02)"
    assert mail.text.startswith(f"# {heading}\n\nHi all,\n\nFrom next week the nightly backup")
    assert "HTML copy" not in mail.text and "Date:" not in mail.text  # (plain part preferred)
    assert mail.sections[0].title == heading and mail.title == "Backup schedule changed"
    assert mail.metadata["from"] == "Ann Lee <ann@example.org>"
    assert mail.metadata["attachments"] == ["backup-notes.txt", "a.png"]  # (a name, no path)
    assert notes.text.strip() == "Backup host: nas01\nRetention: 14 days"
    assert (notes.source, notes.title) == ("backup.eml", "backup-notes.txt")


def test_an_html_only_message_gives_its_visible_text_and_a_bad_charset_is_said(tmp_path):
    m = EmailMessage()
    m["From"], m["Subject"] = "x@example.org", "Status"
    m.set_content("<html><body><style>p{}</style><p>The <b>VPN</b> is down.</p></body></html>",
                  subtype="html")
    [doc], _ = load(tmp_path, "s.eml", bytes(m))
    assert doc.text == "# Status (x@example.org)\n\nThe VPN is down.\n"
    raw = (b"From: y@example.org\nSubject: Odd\nContent-Type: text/plain; charset=x-bogus\n\n"
           b"Caf\xe9 opens at nine.\n")
    [doc], warnings = load(tmp_path, "o.eml", raw)
    assert "Caf\xe9 opens at nine." in doc.text and "x-bogus" in warnings[0]


def test_a_mailbox_is_one_document_per_message_replies_without_their_quotes(tmp_path):
    first = message()
    reply = message(subject="Re: Backup schedule changed", sender="Bob <bob@example.org>",
                    msg_id="<b1@example.org>", reply_to="<a1@example.org>",
                    body="Does the offsite copy move too?\n\nOn Mon, 2 Oct 2023, Ann Lee wrote:\n"
                         "> From next week the nightly backup runs at 02:30\n> Ann\n")
    orphan = message(subject="Re: older", msg_id="<c1@example.org>", reply_to="<gone@x>",
                     body="Yes.\n\nOn Sunday Carl wrote:\n> Is the NAS on?\n")
    docs, warnings = load(tmp_path, "list.mbox", mbox(first, reply, orphan))
    assert warnings == [] and [d.doc_id for d in docs] == [  # (by Message-ID: a citation
        "list.mbox#a1@example.org", "list.mbox#b1@example.org",  # stays when others go)
        "list.mbox#c1@example.org"]
    assert "From next week the nightly backup runs at 02:30" in docs[0].text  # (unescaped)
    assert docs[1].text == ("# Re: Backup schedule changed (Bob, 2023-10-02)\n\n"
                            "Does the offsite copy move too?\n")
    assert "> Is the NAS on?" in docs[2].text  # (what it quotes is not in the mailbox: kept)
    assert {d.source for d in docs} == {"list.mbox"}


def test_a_signature_or_list_footer_goes_a_mislabelled_charset_is_detected_and_said(tmp_path):
    signed = message(body="Use Caddy for the certificates.\n\nBob\n-- \nhomelab-users mailing "
                          "list\nhttps://lists.example.org/homelab\n")
    footed = message(msg_id="<f@x>", body="Use Caddy.\n______________________________\n"
                                          "homelab mailing list\nhomelab@example.org\n")
    same = message(msg_id="<a1@example.org>", body="Copy one.\n")  # (an id used twice)
    digits = message(msg_id="<2>", body="Numbered.\n")  # ("#2" is the second message's place)
    del digits["Message-ID"]
    digits["Message-ID"] = "<2>"
    docs, _ = load(tmp_path, "s.mbox", mbox(signed, footed, same, digits, signed))
    assert [d.doc_id for d in docs] == ["s.mbox#a1@example.org", "s.mbox#f@x",
                                        "s.mbox#a1@example.org~3", "s.mbox#4"]  # (the same
    # message saved twice: once)
    assert docs[0].text.endswith("certificates.\n\nBob\n") and "mailing" not in docs[1].text
    raw = (b"From: y@example.org\nSubject: Address\nContent-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: 8bit\n\nWir wohnen in der Hauptstra\xdfe 5, "
           b"gleich neben der B\xe4ckerei am Markt.\n")
    [doc], warnings = load(tmp_path, "latin.eml", raw)
    assert "Hauptstra\xdfe 5" in doc.text and "does not fit" in warnings[0]


def test_unquoted_keeps_what_the_reply_says():
    body = ("I agree.\n\nOn Tue, Ann wrote:\n> old\n> text\n\nAnd one more thing.\n\n"
            "-----Original Message-----\nFrom: Ann\nold again\n")
    assert unquoted(body) == "I agree.\n\nAnd one more thing.\n"
    assert unquoted("He wrote: fine.\nNo quote here.") == "He wrote: fine.\nNo quote here."


@pytest.mark.parametrize("name, data, said", [
    ("n.eml", b"just some text\nwith no headers at all\n", "not an e-mail message"),
    ("n.mbox", b"Hello\nFrom me\n", "not a mailbox"),
    ("n.ipynb", b'{"cells": ', "not a Jupyter notebook (not valid JSON)"),
    ("n.ipynb", b'{"a": 1}', "not a Jupyter notebook (no cells)"),
    ("n.ipynb", b"[" * 100_000 + b"]" * 100_000, "not a Jupyter notebook"),
    ("n.ipynb", b'{"cells": [], "metadata": {}, "nbformat": 4}', "no text"),
])
def test_what_is_not_a_mail_or_a_notebook_is_said(tmp_path, name, data, said):
    with pytest.raises(LoadError, match=re.escape(said)):
        load(tmp_path, name, data)


def test_a_mailbox_split_only_on_from_lines_with_a_date_and_attachments_nest_boundedly(tmp_path):
    body = "Notes\n\nFrom the top of the rack, count three.\n"  # (an unescaped "From ")
    docs, _ = load(tmp_path, "m.mbox", b"From a@b Mon Oct  2 10:00:00 2023\n" +
                   bytes(message(body=body)).replace(b"\r\n", b"\n"))
    assert len(docs) == 1 and "From the top of the rack" in docs[0].text
    inner = message(subject="inner", body="The deepest secret is 42.\n")
    for depth in range(6):  # a message forwarded in a message forwarded in ...
        outer = message(subject=f"fwd {depth}", body=f"level {depth}\n")
        outer.add_attachment(inner)
        inner = outer
    docs, _ = load(tmp_path, "deep.eml", bytes(inner))
    assert [d.title for d in docs] == ["fwd 5", "fwd 4", "fwd 3"]  # (MAX_DEPTH: named only)


NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5,
    "metadata": {"language_info": {"name": "python"}},
    "cells": [
        {"cell_type": "markdown", "metadata": {},
         "source": ["# Sales analysis\n", "\n", "We load the 2023 sales from `sales.csv`."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1,
         "source": "print(df.total.sum())",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1540\n"]}]},
        {"cell_type": "code", "metadata": {}, "execution_count": 2, "source": "df['x']",
         "outputs": [{"output_type": "error", "ename": "KeyError", "evalue": "'x'",
                      "traceback": ["\x1b[0;31m----\x1b[0m", "long traceback"]}]},
        {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": "plot()",
         "outputs": [{"output_type": "display_data", "metadata": {},
                      "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure>"]}},
                     {"output_type": "stream", "name": "stdout",
                      "text": "".join(f"row {i}\n" for i in range(100))}]},
        {"cell_type": "markdown", "metadata": {},
         "source": "## Why February is higher\n\nFebruary holds the licence renewals."},
    ],
}


def test_a_notebook_reads_as_markdown_with_code_and_text_outputs(tmp_path):
    [doc], _ = load(tmp_path, "sales.ipynb", json.dumps(NOTEBOOK).encode())
    assert doc.title == "Sales analysis"
    assert [s.title for s in doc.sections] == ["Sales analysis", "Why February is higher"]
    assert "```python\nprint(df.total.sum())\n```\n\n```\n1540\n```" in doc.text
    assert "KeyError: 'x'" in doc.text and "traceback" not in doc.text  # (the error alone)
    assert "iVBOR" not in doc.text and "<Figure>" in doc.text
    assert "row 59\n... (40 more lines)" in doc.text and "row 60" not in doc.text
    open_fence = {"nbformat": 4, "metadata": {}, "cells": [
        {"cell_type": "markdown", "source": "Try:\n```python\nx = 1"},
        {"cell_type": "markdown", "source": "## Later\n\nText."}]}
    [doc], _ = load(tmp_path, "open.ipynb", json.dumps(open_fence).encode())
    assert [s.title for s in doc.sections] == ["Later"]  # (a cell's open fence ends with it)
    v3 = {"nbformat": 3, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "heading", "level": 2, "source": "Old style"},
        {"cell_type": "code", "input": "1 + 1", "outputs": [{"output_type": "pyout",
                                                               "text": ["2"]}]}]}]}
    [doc], _ = load(tmp_path, "old.ipynb", json.dumps(v3).encode())
    assert doc.text == "## Old style\n\n```\n1 + 1\n```\n\n```\n2\n```\n"


def test_mail_and_notebooks_are_indexed_and_answered_from(tmp_path, capsys):
    """The shipped reader over a folder of a saved message, a mailbox and a notebook: the
    answer is the message's sentence, not its header lines (which were once what a "when"
    question got), cited with its subject and sender."""
    from knowledge import sync
    from knowledge.embedding import Embedder
    from rag.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backup.eml").write_bytes(bytes(message()))
    reply = message(subject="Re: Backup schedule changed", sender="Bob <bob@example.org>",
                    msg_id="<b1@example.org>", reply_to="<a1@example.org>",
                    body="The offsite copy to the cloud bucket stays at 04:00.\n\n"
                         "Ann Lee wrote:\n> the nightly backup runs at 02:30\n")
    ask = message(subject="restic vs borg?", sender="Pete <pete@example.org>",
                  msg_id="<r1@example.org>", body="Which one for offsite backups to B2?\n")
    answer = message(subject="Re: restic vs borg?", sender="Ingrid <ingrid@example.org>",
                     msg_id="<r2@example.org>", reply_to="<r1@example.org>",
                     body="restic talks to B2 and S3 natively; borg needs an SSH target. For B2 "
                          "go with restic.\n")
    (docs / "ops.mbox").write_bytes(mbox(message(msg_id="<a1@example.org>"), reply, ask, answer))
    (docs / "sales.ipynb").write_text(json.dumps(NOTEBOOK))
    report = sync(tmp_path / "kb", [docs], embedder=Embedder.load(), log=lambda m: None)
    assert report.added == 6
    assert main(["ask", "When does the nightly backup run now?", "--kb", str(tmp_path / "kb"),
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert not got["abstained"] and "02:30" in got["answer"]
    assert "Date:" not in got["answer"] and "Backup schedule changed" not in got["answer"]
    assert got["citations"][0]["doc_id"] in ("backup.eml", "ops.mbox#a1@example.org")
    assert main(["ask", "When is the offsite copy made?", "--kb", str(tmp_path / "kb"),
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert "04:00" in got["answer"] and got["citations"][0]["doc_id"] == "ops.mbox#b1@example.org"
    # the asker's message is the passage most like the question, and every span the reader
    # likes is in its question or its heading: read again without it, the reply answers
    assert main(["ask", "Should I use restic or borg for backups to B2?", "--kb",
                 str(tmp_path / "kb"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert "go with restic" in got["answer"] and "Which one" not in got["answer"]
    assert got["citations"][0]["doc_id"] == "ops.mbox#r2@example.org"


def test_a_reading_whose_every_span_is_the_askers_question_is_read_again_without_it(
        tmp_path, fake_embedder):
    """Pipeline.past_askers, with a reader that likes the asker's message (the passage most
    like the question): every span it offers there is in the message's question or heading,
    so the pipeline reads again without it and answers from the reply; a reader whose
    second reading declines leaves the first answer as it was."""
    from knowledge import KnowledgeBase, sync
    from rag.pipeline import Pipeline
    from rag.readers import ReaderConfig, ReaderOutput
    from rag.readers.base import ReadBatch, Reader, Span
    from rag.retrieval import Retriever

    docs = tmp_path / "docs"
    docs.mkdir()
    ask = message(subject="restic vs borg?", sender="Pete <pete@example.org>",
                  msg_id="<r1@x>", body="Which one for offsite backups to B2?\n")
    answer = message(subject="Re: restic vs borg?", sender="Ingrid <ingrid@example.org>",
                     msg_id="<r2@x>", reply_to="<r1@x>", body="For B2 go with restic.\n")
    (docs / "list.mbox").write_bytes(mbox(ask, answer))
    sync(tmp_path / "kb", [docs], embedder=fake_embedder, log=lambda m: None)

    class Leaning(Reader):  # spans in the passage that asks, where there is one
        has_span_head = True

        def __init__(self, second=True):
            self.config, self.read, self.second = ReaderConfig(answer_mode="extractive"), [], second

        def read_batch(self, questions, passages, **_):
            outs = []
            for ps in passages:
                self.read.append([p.doc_id for p in ps])
                at = next((i for i, p in enumerate(ps) if "Which one" in p.text), None)
                if at is None:
                    at = 0
                    s = ps[0].text.index("go with restic")
                    spans = ((0.9, 0, s, s + 14),)
                    outs.append(ReaderOutput("go with restic", 0.9, None, not self.second,
                                             Span(0, s, s + 14), candidates=spans))
                    continue
                t = ps[at].text
                q, h = t.index("offsite backups"), t.index("restic vs borg")
                spans = ((0.5, at, q, q + 15), (0.3, at, h, h + 14))
                outs.append(ReaderOutput("offsite backups", 0.8, None, False,
                                         Span(at, q, q + 15), candidates=spans))
            return ReadBatch(outs)

    question = "Should I use restic or borg for backups to B2?"
    with KnowledgeBase.open(tmp_path / "kb", embedder=fake_embedder) as kb:
        reader = Leaning()
        [got] = Pipeline(Retriever(kb, "lexical"), reader, k=2).ask_many([question])
        assert len(reader.read) == 2 and "list.mbox#r1@x" not in reader.read[1]
        assert "go with restic" in got.answer and got.citations[0].doc_id == "list.mbox#r2@x"
        reader = Leaning(second=False)  # (the second reading declines: the first stands)
        [got] = Pipeline(Retriever(kb, "lexical"), reader, k=2).ask_many([question])
        assert len(reader.read) == 2 and got.citations[0].doc_id == "list.mbox#r1@x"



def test_mail_as_mail_programs_and_attackers_write_it(tmp_path):
    """From a review: a mailbox saved with CRLF was one message; an empty plain part hid the
    HTML one and the mail vanished silently; Apple Mail's text, image, text lost the later
    text; a body's "From 9:00 ... 2024" line split a message; a line of underscores over an
    agenda was taken for a list footer; four "notes.txt" shared one id; a deeply nested
    message failed its whole mailbox with a traceback; attachments ignored --max-file-mb."""
    crlf = mbox(message(msg_id="<c1@x>"), message(msg_id="<c2@x>"), message(msg_id="<c3@x>"))
    docs, _ = load(tmp_path, "w.mbox", crlf.replace(b"\n", b"\r\n"))
    assert [d.doc_id for d in docs] == ["w.mbox#c1@x", "w.mbox#c2@x", "w.mbox#c3@x"]
    assert all("MIME-Version" not in d.text for d in docs)
    m = EmailMessage()
    m["From"], m["Subject"] = "a@x", "\u202eevil\x1b[2J subject"
    m.set_content("  \n")
    m.add_alternative("<p>The real text.</p>", subtype="html")
    [doc], _ = load(tmp_path, "e.eml", bytes(m))
    assert doc.text == "# evil[2J subject (a@x)\n\nThe real text.\n"
    assert doc.title == "evil[2J subject" and doc.metadata["from"] == "a@x"
    m = EmailMessage()
    m["From"], m["Subject"] = "a@x", "Split"
    m.set_content("First part.")
    m.make_mixed()
    for extra in (None, "Second part.", "Third part."):
        if extra is None:
            m.attach(EmailMessage())
            m.get_payload()[-1].set_content(b"\x89PNG", maintype="image", subtype="png",
                                            disposition="inline")
        else:
            part = EmailMessage()
            part.set_content(extra)
            m.attach(part)
    [doc], _ = load(tmp_path, "s.eml", bytes(m))
    assert "First part." in doc.text and "Second part." in doc.text and "Third part." in doc.text
    with pytest.raises(LoadError, match="no text"):
        load(tmp_path, "empty.eml", b"From: a@x\nSubject: nothing\n\n   \n")
    body = "Plan:\n\nFrom 9:00 to 17:00 on 3 May 2024 the NAS is down.\n\nAnn\n"
    docs, _ = load(tmp_path, "f.mbox", b"From a@b Mon Oct  2 10:00:00 2023\n" +
                   bytes(message(body=body)).replace(b"\r\n", b"\n"))
    assert len(docs) == 1 and "From 9:00 to 17:00" in docs[0].text
    agenda = "Hi team, agenda below.\n______________________\nMeeting: Tuesday 10:00 in room 4\n"
    [doc], _ = load(tmp_path, "a.eml", bytes(message(body=agenda)))
    assert "Meeting: Tuesday 10:00 in room 4" in doc.text
    m = message(body="Notes attached.\n")
    for n in range(3):
        m.add_attachment(f"note {n}\n".encode(), maintype="text", subtype="plain",
                         filename="notes.txt")
    m.add_attachment(b"Shared: the agenda.\n", maintype="text", subtype="markdown",
                     filename="agenda")  # (no suffix: read by its type)
    docs, _ = load(tmp_path, "n.eml", bytes(m))
    assert [d.doc_id for d in docs] == ["n.eml", "n.eml#notes.txt", "n.eml#notes.txt~2",
                                        "n.eml#notes.txt~3", "n.eml#agenda"]
    deep = b"From: a@x\nSubject: deep\nMIME-Version: 1.0\n" + b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i)
        for i in range(20_000)) + b"Content-Type: text/plain\n\ninner text\n"
    with pytest.raises(LoadError, match="nested too deeply"):
        load(tmp_path, "deep.eml", deep)
    docs, warnings = load(tmp_path, "d.mbox", mbox(message(msg_id="<ok@x>")) +
                          b"From a@b Mon Oct  2 10:00:00 2023\n" + deep)
    assert [d.doc_id for d in docs] == ["d.mbox#ok@x"] and "nested too deeply" in warnings[0]
    m = message(body="Logs attached.\n")
    for n in range(3):  # (each 1.2 MB once inflated; the file's bound is 2 MB for all)
        m.add_attachment(gzip.compress(b"log line\n" * 140_000), maintype="application",
                         subtype="gzip", filename=f"log{n}.txt.gz")
    (tmp_path / "logs.eml").write_bytes(bytes(m))
    docs, warnings = load_file(tmp_path / "logs.eml", "logs.eml", max_bytes=2 * 2**20)
    assert len(docs) == 2 and len(warnings) == 2
    assert all("once decompressed" in w for w in warnings)
