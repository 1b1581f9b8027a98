"""OpenAI's chat-completions shape over the pipeline: the last user message is the question
(read with the earlier user/assistant pairs as its conversation), the answer comes back as
the assistant message with its sources as [n] lines, and the citations travel beside it
(and in the last chunk of a stream).

Example: ``chat_text(answer)`` -> ``"Orellana\n\nSources:\n[1] Amazon.txt: ..."``.
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schemas import MAX_K, MAX_QUESTION_CHARS, Strict

SOURCES = "\n\nSources:\n"  # (what follows it in an assistant message is not the answer)
NOT_FOUND_TEXT = "Not found in the knowledge base."


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")  # (image parts and the like are ignored)
    type: str
    text: str | None = None


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatBody(Strict):
    model: str | None = Field(None, max_length=200)
    messages: list[Message] = Field(..., min_length=1, max_length=256)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=MAX_K)


def conversation_of(body: ChatBody):
    """(question, earlier turns) of a chat: the last user message is the question; each
    earlier user message and the assistant reply after it are a turn (``Turn``), its answer
    the reply without the sources that ``chat_text`` adds. The earlier questions are made
    self-contained in order, as `rag ask` keeps them, so a follow-up of a follow-up resolves.
    ValueError says what is wrong."""
    from ..conversation import Turn, resolve

    texts = [(m.role, _text(m.content)) for m in body.messages
             if m.role in ("user", "assistant")]
    users = [i for i, (role, _) in enumerate(texts) if role == "user"]
    if not users:
        raise ValueError("messages: no user message to answer")
    question = texts[users[-1]][1].strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"messages: the question is longer than {MAX_QUESTION_CHARS} "
                         "characters")
    turns = []
    for i, (role, text) in enumerate(texts[:users[-1]]):
        if role == "user" and text.strip():
            reply = texts[i + 1][1] if texts[i + 1][0] == "assistant" else None
            asked = resolve(text.strip()[:MAX_QUESTION_CHARS], turns).question
            turns.append(Turn(asked, answer_of(reply) if reply is not None else None))
    return question, turns


def _text(content) -> str:
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(p.text or "" for p in content if p.type == "text")
    return content or ""


def answer_of(reply: str) -> str | None:
    """What an assistant message told the user: its text without the sources block, the
    quotation of an evidence answer, None for "not found" (``chat_text`` in reverse)."""
    head = reply.split(SOURCES, 1)[0].strip()
    if head.startswith("Evidence, not an answer") and "«" in head:
        head = head[head.index("«") + 1:].rstrip("»").strip()
    return None if not head or head == NOT_FOUND_TEXT else head


def completion(answer, model: str | None) -> dict:
    """The chat.completion object of an answer."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model or "rag",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": chat_text(answer)}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "citations": [c.to_dict() for c in answer.citations], "rag": answer.to_dict()}


def chunks(answer, model: str | None):
    """The server-sent events of a streamed completion, word by word, then [DONE]."""
    rid, created, text = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), chat_text(answer)

    def chunk(delta: dict, finish=None, **extra) -> str:
        return "data: " + json.dumps(
            {"id": rid, "object": "chat.completion.chunk", "created": created,
             "model": model or "rag", "choices": [{"index": 0, "delta": delta,
                                                   "finish_reason": finish}], **extra},
            ensure_ascii=False) + "\n\n"

    yield chunk({"role": "assistant", "content": ""})
    words = text.split(" ")
    for i, word in enumerate(words):
        yield chunk({"content": word + (" " if i < len(words) - 1 else "")})
    yield chunk({}, "stop", citations=[c.to_dict() for c in answer.citations])
    yield "data: [DONE]\n\n"


def chat_text(answer) -> str:
    """The assistant message: the answer, then its sources as [n] lines."""
    head = NOT_FOUND_TEXT if answer.abstained else answer.answer
    if answer.kind == "evidence" and not answer.abstained:
        head = f"Evidence, not an answer ({answer.note.split(': ')[0]}):\n«{answer.answer}»"
    lines = []
    for n, c in enumerate(answer.citations, 1):
        page = f" p.{c.page}" if c.page else ""
        quote = ""
        if c.answer_start is not None:
            a, b = c.answer_start - c.start, c.answer_end - c.start
            quote = f': "…{c.text[max(0, a - 60):b + 60].strip()}…"'
        lines.append(f"[{n}] {c.doc_id}{page}{quote}")
    return head + (SOURCES + "\n".join(lines) if lines else "")
