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


@needs_pandoc
def test_what_pandoc_does_not_know_is_read_not_dropped(tmp_path):
    """A second review: pandoc leaves out, as raw TeX, an environment it does not know (a
    Beamer frame, tcolorbox: a talk read as its titles), a command with two arguments or an
    option, the abstract (metadata to pandoc), and shows a citation as nothing."""
    doc, said = load(tmp_path, r"""\documentclass{article}
\usepackage{tcolorbox}
\begin{document}
\begin{abstract}We show that pumps fail after 400 hours.\end{abstract}
\section{Intro}
\begin{tcolorbox}[title=Warning]Never open the valve under pressure.\end{tcolorbox}
As \cite[p.~5]{lee2020} and \citep[see][]{kim} found, a \newterm{widget}{a small device}
fails; \vspace{2pt}\hyphenpenalty=100
\end{document}
""")
    assert said == [] and [s.title for s in doc.sections] == ["Abstract", "Intro"]
    assert doc.text.startswith("Abstract\n\nWe show that pumps fail after 400 hours.")
    assert "Never open the valve under pressure." in doc.text
    assert r"As [lee2020, p. 5] and [see kim] found, a \newterm{widget}{a small device}" \
           in doc.text
    assert "vspace" not in doc.text and "hyphenpenalty" not in doc.text


@needs_pandoc
def test_an_example_document_in_verbatim_is_neither_the_body_nor_the_title(tmp_path, monkeypatch):
    """A chapter of a class's guide (no preamble) quoting a minimal document: its
    "\\begin{document}" was taken for the body ("Hello"), its \\title for the title."""
    from knowledge import latex

    chapter = r"""\chapter{Installing the widget}
Torque the four bolts to 12 Nm. A minimal document looks like this:
\begin{verbatim}
\documentclass{widget}
\title{Example Title}
\begin{document}
Hello
\end{document}
\end{verbatim}
\def\DescribesFile#1 [#2]{#1}
\section{Troubleshooting}
If the LED blinks red, replace fuse F2.
"""
    doc, said = load(tmp_path, chapter, "widget-guide.tex")
    assert "Torque the four bolts to 12 Nm." in doc.text and "replace fuse F2" in doc.text
    assert doc.title == "widget-guide" and "Troubleshooting" in [s.title for s in doc.sections]
    assert "Example Title" not in [s.title for s in doc.sections]
    monkeypatch.setattr(latex, "MAX_PANDOC_BYTES", 100)
    doc, said = load(tmp_path, chapter, "big.tex")
    assert "replace fuse F2" in doc.text and said and "larger than" in said[0]
