"""Jupyter notebooks (``.ipynb``) as the notebook shows them: Markdown cells as written,
code cells as fenced code in the notebook's language, each followed by its text output
(a printed line, a table's plain text, "ValueError: ..." for an error); images and widgets
leave nothing. The result is read as Markdown (its headings are the sections).

Example: ``text = notebook_markdown(data, "analysis.ipynb")``.
"""
from __future__ import annotations

import json
import re

from .errors import LoadError

MAX_OUTPUT_LINES = 60  # of one output: a loop's thousand printed lines are not the notebook


def notebook_markdown(data: bytes, rel: str) -> str:
    """The notebook's cells as Markdown (nbformat 4, and 3's worksheets)."""
    try:
        nb = json.loads(data)
    except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        raise LoadError("not a Jupyter notebook (not valid JSON); re-save it from Jupyter") \
            from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        raise LoadError("not a Jupyter notebook (no cells); re-save it from Jupyter")
    cells = nb.get("cells")
    if cells is None:  # (nbformat 3: cells in worksheets)
        cells = [c for w in nb["worksheets"] if isinstance(w, dict)
                 for c in (w.get("cells") if isinstance(w.get("cells"), list) else [])]
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    language = _language(meta)
    parts = []
    for cell in cells:
        if isinstance(cell, dict):
            parts.extend(_cell(cell, language))
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


def _language(meta: dict) -> str:
    for key in ("language_info", "kernelspec"):
        info = meta.get(key)
        name = info.get("name" if key == "language_info" else "language") \
            if isinstance(info, dict) else None
        if isinstance(name, str) and re.fullmatch(r"[\w+#.-]{1,30}", name):
            return name
    return ""


def _text(value) -> str:
    """A notebook string: one string or a list of lines."""
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _cell(cell: dict, language: str) -> list[str]:
    kind = cell.get("cell_type")
    source = _text(cell.get("source", cell.get("input"))).strip("\n")
    if kind == "markdown":
        return [_closed(source)]
    if kind == "heading":  # (nbformat 3)
        level = cell.get("level") if isinstance(cell.get("level"), int) else 1
        return ["#" * min(max(level, 1), 6) + " " + " ".join(source.split())]
    if kind != "code":
        return [source] if kind == "raw" else []
    parts = [_fenced(source, language)] if source.strip() else []
    outputs = cell.get("outputs")
    for out in outputs if isinstance(outputs, list) else []:
        if isinstance(out, dict):
            text = _output(out)
            if text.strip():
                parts.append(_fenced(text, ""))
    return parts


def _output(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "error" or kind == "pyerr":  # the error, not its traceback
        return f"{_text(out.get('ename'))}: {_text(out.get('evalue'))}".strip(": ")
    if kind == "stream":
        text = _text(out.get("text"))
    else:  # execute_result, display_data (nbformat 3: pyout, "text" at the top)
        data = out.get("data") if isinstance(out.get("data"), dict) else out
        text = _text(data.get("text/plain", data.get("text")))
    lines = text.strip("\n").split("\n")
    if len(lines) > MAX_OUTPUT_LINES:
        more = len(lines) - MAX_OUTPUT_LINES
        lines = lines[:MAX_OUTPUT_LINES] + [f"... ({more} more lines)"]
    return "\n".join(lines)


def _closed(markdown: str) -> str:
    """A Markdown cell whose code fence is left open, closed at the cell's end (Jupyter
    renders each cell alone: the fence does not run on into the cells after it)."""
    from .markdown import fenced_ranges

    ranges = fenced_ranges(markdown)
    if not ranges or ranges[-1][1] < len(markdown):
        return markdown
    opener = markdown[ranges[-1][0]:].split("\n", 1)[0].strip()
    fence = opener[:len(opener) - len(opener.lstrip(opener[0]))]
    last = markdown.rstrip().rsplit("\n", 1)[-1].strip()
    closed = last != opener and last.startswith(fence) and not last.strip(fence[0])
    return markdown if closed else f"{markdown}\n{fence}"


def _fenced(text: str, language: str) -> str:
    """``text`` in a Markdown code fence longer than any backtick run inside it."""
    runs = re.findall(r"`{3,}", text)
    fence = "`" * max([3] + [len(r) + 1 for r in runs])
    return f"{fence}{language}\n{text}\n{fence}"
