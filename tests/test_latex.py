"""LaTeX sources (knowledge/latex.py) read as the document reads, through pandoc in its
sandbox; what pandoc cannot read is indexed as its source, saying so."""
import shutil
import time
from pathlib import Path

import pytest

from knowledge import programs
from knowledge.loaders import load_file

needs_pandoc = pytest.mark.skipif(shutil.which("pandoc") is None, reason=(
    "pandoc is not installed (sh tests/install_programs.sh installs it)"))

PAPER = r"""\documentclass{article}
\usepackage{hyperref}
\newcommand{\tool}{\textsf{pumpctl}}
\title{Priming the \LaTeX{} pump}
\author{A. Author}
\begin{document}
\maketitle
\tableofcontents
% a comment nobody sees: SECRET-COMMENT
\section{Introduction}
The \tool{} daemon primes the pump\footnote{Only the P-100 needs priming.} within 30~s,
see~\cite{lee2020} and \cs{primepump}. It reaches 100\% flow.
\hyphenpenalty=10000 \vspace{2pt}
\subsection{Steps}
\begin{enumerate}
\item Open the vent.
\item Run \verb|pumpctl prime --force|.
\end{enumerate}
\begin{verbatim}
pumpctl status
\end{verbatim}
Flow is $q = A v$.
\input{/etc/passwd}
\end{document}
"""


def load(tmp_path: Path, text: str, name: str = "paper.tex"):
    (tmp_path / name).write_text(text)
    docs, said = load_file(tmp_path / name, name)
    return docs[0], said


@needs_pandoc
def test_a_paper_reads_as_it_is_typeset_with_its_sections_and_notes(tmp_path):
    doc, said = load(tmp_path, PAPER)
    assert said == [] and doc.title == "Priming the LaTeX pump"
    assert [s.title for s in doc.sections] == ["Introduction", "Steps"]
    text = doc.text
    assert "The pumpctl daemon primes the pump" in text and "within 30 s" in text
    assert r"\cs{primepump}" in text  # (a command pandoc does not know stays as written)
    assert "100% flow." in text and "hyphenpenalty" not in text and "vspace" not in text
    assert "1. Open the vent." in text and "2. Run pumpctl prime --force." in text
    assert "pumpctl status" in text and "Only the P-100 needs priming." in text
    assert "SECRET-COMMENT" not in text
    assert "root:" not in text  # (\input read nothing: pandoc's sandbox)


@needs_pandoc
def test_tex_pandoc_cannot_read_is_indexed_as_its_source_saying_why(tmp_path):
    doc, said = load(tmp_path, r"""\documentclass{article}
\def\DescribesFile#1 [#2 #3]{\def\filename{#1}}
\begin{document}
\section{Usage}
It reimplements the \LaTeX\ |\cite| command; % not text
do not load the cite package with it.
\end{document}
""")
    assert "do not load the cite package with it." in doc.text and "not text" not in doc.text
    assert [s.title for s in doc.sections] == ["Usage"]
    assert len(said) == 1 and said[0].startswith("indexed as its LaTeX source: pandoc could "
                                                 "not read it (")


def test_without_pandoc_a_tex_file_is_indexed_as_its_source(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    doc, said = load(tmp_path, PAPER)
    assert r"\section{Introduction}" in doc.text and "SECRET-COMMENT" not in doc.text
    assert doc.title == "Priming the LaTeX pump"
    assert said and "apt install pandoc" in said[0]


@needs_pandoc
def test_a_looping_tex_file_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(programs, "SECONDS", 3)
    t0 = time.monotonic()
    doc, said = load(tmp_path, "\\def\\a{\\a\\a}\n\\newcommand{\\b}{\\b x}\n\\a \\b text\n")
    assert time.monotonic() - t0 < 15 and said and "indexed as its LaTeX source" in said[0]
