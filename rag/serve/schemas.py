"""The JSON bodies of the API's requests (pydantic: a wrong type or an unknown field is a 422
with the field's name, never a 500).

Example: ``AskBody(question="Who won?", k=3)``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUESTION_CHARS = 2000
MAX_K = 50
MAX_OFFSET = 2**53 - 1  # (SQLite takes 64-bit offsets; a page counts in doubles)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown field is a mistake: say so


class FilterBody(Strict):
    path: str | None = Field(None, max_length=500, description="glob on document path or id")
    where: dict[str, str] = Field(default_factory=dict, max_length=32,
                                  description="metadata equalities")


Retrieval = Literal["hybrid", "dense", "lexical"]
TEXT = r"\S"  # (something besides spaces)


class AskBody(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, pattern=TEXT)
    k: int | None = Field(None, ge=1, le=MAX_K)
    retrieval: Retrieval | None = None
    filters: FilterBody | None = None


class SearchBody(Strict):
    query: str = Field(..., max_length=MAX_QUESTION_CHARS, pattern=TEXT)
    k: int = Field(5, ge=1, le=MAX_K)
    retrieval: Retrieval | None = None
    filters: FilterBody | None = None
