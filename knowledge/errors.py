"""Errors a user can act on. The CLI prints their message on one line, no traceback."""


class KnowledgeError(Exception):
    """A runtime problem with a clear message (exit code 1)."""

    exit_code = 1


class UsageError(KnowledgeError):
    """A bad argument or value given by the user (exit code 2)."""

    exit_code = 2


class LockedError(KnowledgeError):
    """Another process is writing to the knowledge base."""


class NothingIngested(KnowledgeError):
    """Every file of a run was skipped; ``skipped`` holds (path, reason) for each."""

    def __init__(self, message: str, skipped: list[tuple[str, str]]):
        super().__init__(message)
        self.skipped = skipped


class LoadError(Exception):
    """The file cannot be ingested; the message says why (without the file name)."""
