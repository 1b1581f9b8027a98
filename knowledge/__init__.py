"""Ingestion: files -> Documents -> Chunks -> vectors -> a knowledge base on disk.

Example: ``from knowledge import KnowledgeBase; KnowledgeBase.open("kb").search("q", 5)``.
"""
from .chunking import Chunker, ChunkerSettings
from .errors import KnowledgeError, LockedError, UsageError
from .kb import KnowledgeBase
from .sync import SyncReport, sync
from .types import Chunk, Document, Hit, Section

__all__ = [
    "Chunk", "Chunker", "ChunkerSettings", "Document", "Hit", "KnowledgeBase",
    "KnowledgeError", "LockedError", "Section", "SyncReport", "UsageError", "sync",
]
