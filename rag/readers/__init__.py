"""Readers turn a question and retrieved passages into an answer with attribution.

``load_reader(name)`` picks FiD for encoder-decoder checkpoints, a prompt-based reader for
decoder-only ones. ``DEFAULT_READER`` is the project's own trained reader when installed.
"""
from pathlib import Path

from .base import NOT_FOUND, ReaderOutput, Span
from .causal import CausalReader, load_reader
from .fid import FiDReader, ReaderConfig

_SHIPPED = Path(__file__).resolve().parent.parent / "models" / "reader"
DEFAULT_READER: Path | None = _SHIPPED if (_SHIPPED / "config.json").exists() else None

__all__ = ["CausalReader", "DEFAULT_READER", "FiDReader", "NOT_FOUND", "ReaderConfig",
           "ReaderOutput", "Span", "load_reader"]
