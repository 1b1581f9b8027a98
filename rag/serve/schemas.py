"""The JSON bodies of the API's requests (pydantic: a wrong type or an unknown field is a 422
with the field's name, never a 500).

Example: ``AskBody(question="Who won?", k=3)``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from knowledge.types import NOT_TEXT

MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 20000  # an earlier answer sent back with a follow-up
MAX_TURNS = 50  # earlier turns a request may carry (the most recent few are used)
MAX_K = 50
MAX_OFFSET = 2**53 - 1  # (SQLite takes 64-bit offsets; a page counts in doubles)


def not_text(data) -> str | None:
    """Where in a parsed JSON value a string (a key or a value) holds a lone surrogate, as
    a dotted path ("filters.where.lang"); None where every string is text."""
    todo = [((), data)]
    while todo:  # (iterative: a deep value must not exhaust the stack)
        path, value = todo.pop()
        if isinstance(value, str):
            if NOT_TEXT.search(value):
                return ".".join(path) or "the body"
        elif isinstance(value, dict):
            for k, v in value.items():
                name = str(k).encode("utf-8", "backslashreplace").decode("utf-8")
                if isinstance(k, str) and NOT_TEXT.search(k):
                    return ".".join((*path, name))
                todo.append(((*path, name), v))
        elif isinstance(value, list):
            todo.extend(((*path, str(i)), v) for i, v in enumerate(value))
    return None


def surrogate_error(where: str) -> str:
    return (f"{where}: a string holds a lone surrogate (\\ud800-\\udfff), which is not text; "
            "send UTF-8")


class Strict(BaseModel):
    # an unknown field is a mistake: say so; and "3" is no number, "yes" no boolean
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, data):
        where = not_text(data)
        if where is not None:
            raise ValueError(surrogate_error(where))
        return data


class FilterBody(Strict):
    path: str | None = Field(None, max_length=500, description="glob on document path or id")
    where: dict[str, str] = Field(default_factory=dict, max_length=32,
                                  description="metadata equalities")


Retrieval = Literal["hybrid", "dense", "lexical"]
TEXT = r"\S"  # (something besides spaces)


class TurnBody(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS,
                          description="an earlier question (as it was understood: its "
                                      "`rewritten` form where it had one)")
    answer: str | None = Field(None, max_length=MAX_ANSWER_CHARS,
                               description="what was answered (null: not found)")


class AskBody(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, pattern=TEXT)
    k: int | None = Field(None, ge=1, le=MAX_K)
    retrieval: Retrieval | None = None
    filters: FilterBody | None = None
    history: list[TurnBody] = Field(default_factory=list, max_length=MAX_TURNS,
                                    description="the conversation's earlier turns, oldest "
                                                "first: a follow-up is read with them")


class SearchBody(Strict):
    query: str = Field(..., max_length=MAX_QUESTION_CHARS, pattern=TEXT)
    k: int = Field(5, ge=1, le=MAX_K)
    retrieval: Retrieval | None = None
    filters: FilterBody | None = None
