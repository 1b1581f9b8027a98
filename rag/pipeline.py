"""The question-answering path shared by `rag ask` and `rag eval`: retrieve, then read.

Example::

    p = Pipeline(Retriever(KnowledgeBase.open("kb")), reader=None, k=5)
    [answer] = p.ask_many(["Who won Super Bowl 50?"])
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from knowledge.types import Hit

from knowledge.language import covers, describe, dominant_script

from .abstention import AbstainRule, coverage
from .conversation import Turn, resolve
from .forms import EXCERPT, Shaped, asks, go_on, question_kind, shape
from .units import is_heading, unit_of, units
from .evidence import best_sentence
from .readers.base import NOT_FOUND, Span
from .retrieval import Filters, Retrieved, Retriever

# a follow-up's rewrite read with less confidence than this is read a second time, with
# the conversation (Pipeline.reread; chosen on the dev and first test follow-up sets)
SURE = 0.99
# a knowledge base with at least this share of technical words reads as technical
# documentation (Pipeline.technical; prose measured here at most 0.009, manuals, FAQs,
# READMEs and changelogs 0.020-0.065: eval/RESULTS.md, issue 22)
TECHNICAL_AT = 0.015
# an extractive reader's span probabilities weighed by retrieval rank: each place down the
# passage list counts this much of the place above (a retriever-reader combination, as
# BERTserini's; the reader reads the passages unordered; "fused" keeps the decoder's order;
# chosen on SQuAD, NQ, manuals dev and manuals-train: eval/RESULTS.md, issue 22)
RANK_PRIOR = 0.2
# characters of the document read past a passage whose quoted answer reaches its end, to
# finish the sentence the chunk cut or what the answer's last sentence introduces
# (Pipeline.go_on; an answer holds at most ~60 words)
GO_ON = 1500


def technical_at(config) -> float | None:
    """The technical share from which a reader with ``config`` treats a knowledge base as
    technical documentation: its ``form_gates["technical_at"]``, ``TECHNICAL_AT`` where it
    names none (None: never)."""
    return (getattr(config, "form_gates", None) or {}).get("technical_at", TECHNICAL_AT)


def reads_technical(share: float | None, config=None) -> bool:
    """Whether a knowledge base whose share of technical words is ``share`` reads as
    technical documentation to a reader with ``config`` (``reads_technical(0.029)  # True``)."""
    at = technical_at(config)
    return share is not None and at is not None and share >= at


@dataclass(frozen=True)
class Citation:
    """A passage the answer rests on, pointing at exact characters of its document."""

    doc_id: str
    source: str
    page: int | None
    start: int
    end: int
    text: str
    retrieval_score: float
    attention_score: float | None = None
    chunk_id: int | None = None
    answer_start: int | None = None  # the answer's exact characters in the document, when
    answer_end: int | None = None  # it was found in this passage
    short_start: int | None = None  # the short span inside the answer (a factoid's), and
    short_end: int | None = None
    context_start: int | None = None  # the sentence it stands in (or the answer's own)
    context_end: int | None = None
    page_label: str | None = None  # the page as a PDF viewer labels it ("iv", "17")
    heading: str = ""  # the section path ("Chapter 2 > Installing")

    def to_dict(self) -> dict:
        return {"doc_id": self.doc_id, "source": self.source, "page": self.page,
                "page_label": self.page_label, "heading": self.heading,
                "start": self.start, "end": self.end, "text": self.text,
                "retrieval_score": self.retrieval_score, "attention_score": self.attention_score,
                "chunk_id": self.chunk_id, "answer_start": self.answer_start,
                "answer_end": self.answer_end, "short_start": self.short_start,
                "short_end": self.short_end, "context_start": self.context_start,
                "context_end": self.context_end}


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: tuple[Citation, ...]
    retrieved: tuple[Hit, ...] = ()  # everything retrieved (may be deeper than k)
    timings: dict = field(default_factory=dict)  # milliseconds per stage
    confidence: float | None = None  # the reader's (None: not read)
    similarity: float | None = None  # the best dense similarity of any chunk to the question
    # span readers: where the reader placed the answer's start and end over one passage,
    # {"chunk_id", "tokens": [[start, end, p_start, p_end], ...]} (offsets in its text)
    explanation: dict | None = None
    # "answer": the reader's; "evidence": a sentence quoted from the passages, not an answer
    # (the question or passages are in a language the reader does not read; ``note`` says)
    kind: str = "answer"
    note: str | None = None
    # the answer's form (rag/forms.py): "span" (a factoid's short answer), "sentence",
    # "steps" (sentences with code or list items), "code", "generated", or None (not read)
    form: str | None = None
    short: str | None = None  # the short span, where the answer holds one
    context: str | None = None  # the sentence(s) the short span stands in (for whole
    # units or an excerpt, the answer itself)
    withheld: str | None = None  # declined: the answer the reader would have given
    # a follow-up question made self-contained from the conversation (rag/conversation.py),
    # as it was searched and read; None when the question stood alone
    rewritten: str | None = None
    # a follow-up answered from its second reading (``Pipeline.reread``): the text read
    read_as: str | None = None

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "abstained": self.abstained,
                "form": self.form, "short": self.short, "context": self.context,
                "withheld": self.withheld, "rewritten": self.rewritten, "read_as": self.read_as,
                "kind": self.kind, "note": self.note,
                "confidence": self.confidence, "similarity": self.similarity,
                "citations": [c.to_dict() for c in self.citations], "timings": self.timings,
                "explanation": self.explanation}


def citation_of(hit: Hit, attention: float | None = None,
                span: tuple[int, int] | None = None, shaped: Shaped | None = None) -> Citation:
    """``span``: the answer's characters in the passage text; ``shaped`` adds its short
    span and context."""
    def at(pair):
        return (hit.start + pair[0], hit.start + pair[1]) if pair else (None, None)

    short = at(shaped.short if shaped else None)
    context = at(shaped.context if shaped else None)
    return Citation(doc_id=hit.doc_id, source=hit.source, page=hit.page,
                    page_label=hit.page_label, heading=hit.heading, start=hit.start,
                    end=hit.end, text=hit.text, retrieval_score=hit.score,
                    attention_score=attention, chunk_id=hit.chunk_id,
                    answer_start=at(span)[0], answer_end=at(span)[1],
                    short_start=short[0], short_end=short[1],
                    context_start=context[0], context_end=context[1])


def answer_span(out, passages: list[Hit], order: list[int]) -> tuple[int, tuple[int, int]] | None:
    """(passage index, (start, end) in its text) of the answer: the grounded span, else the
    first case-insensitive occurrence in the most attended passage that has one."""
    if out.abstained or not out.answer:
        return None
    if out.span is not None:
        return out.span.passage, (out.span.start, out.span.end)
    needle = out.answer.lower()
    for i in order:
        at = passages[i].text.lower().find(needle)
        if at >= 0:
            return i, (at, at + len(out.answer))
    return None


def evidence_answer(question: str, passages: list[Hit], retrieved: list[Hit], timings: dict,
                    similarity: float | None, note: str) -> Answer:
    """An Answer of kind "evidence": the best-matching sentence of the passages, cited."""
    found = best_sentence(question, passages)
    if found is None:
        return Answer(question=question, answer=NOT_FOUND, abstained=True,
                      citations=tuple(citation_of(h) for h in passages),
                      retrieved=tuple(retrieved), timings=timings, similarity=similarity,
                      kind="evidence", note=note)
    at, (start, end) = found
    order = [at] + [i for i in range(len(passages)) if i != at]
    return Answer(question=question, answer=passages[at].text[start:end], abstained=False,
                  citations=tuple(citation_of(passages[i], None, (start, end) if i == at else None)
                                  for i in order),
                  retrieved=tuple(retrieved), timings=timings, similarity=similarity,
                  kind="evidence", note=note)


def by_rank(out, passages: list[Hit], prior: float = RANK_PRIOR):
    """``out`` with its span candidates' probabilities weighed by their passage's place in
    the retrieved list (``prior`` per place down) and its answer the best of them; the
    reader's confidence, which abstention reads, unchanged. Spans of 0.5 in passage 0 and
    0.9 in passage 2 weigh 0.5 and 0.036: the first is the answer."""
    if out.abstained or out.span is None or not out.candidates or prior == 1.0:
        return out
    weighed = tuple(sorted(((p * prior ** at, at, start, end)
                            for p, at, start, end in out.candidates), key=lambda c: -c[0]))
    _, at, start, end = weighed[0]
    return replace(out, answer=passages[at].text[start:end], span=Span(at, start, end),
                   candidates=weighed)


def something_new(out, passages: list[Hit], told: list[str]):
    """A follow-up's span answer that repeats what the conversation already told (the
    previous answer is in the same passages, and the reader likes it) replaced by the best
    candidate that does not."""
    from .evaluation.metrics import normalize_answer

    said = {normalize_answer(t) for t in told if normalize_answer(t)}
    if not said or out.abstained or out.span is None or not out.candidates:
        return out

    def repeats(text: str) -> bool:
        n = normalize_answer(text)
        return bool(n) and any(n in s or s in n for s in said)

    if not repeats(out.answer):
        return out
    for k, (_, at, start, end) in enumerate(out.candidates):
        text = passages[at].text[start:end]
        if not repeats(text):
            rest = out.candidates[:k] + out.candidates[k + 1:]
            return replace(out, answer=text, span=Span(at, start, end),
                           candidates=(out.candidates[k],) + rest)
    return out


def no_answer(hit: Hit, cut: list, start: int, end: int) -> bool:
    """The span ``start:end`` of a passage stands in a question (``forms.asks``) or in a
    heading line of its section path."""
    i = unit_of(cut, start, end)
    return asks(hit.text, cut, start, end) or (
        i is not None and is_heading(hit.text, cut[i], hit.heading or ""))


class Pipeline:
    """Owns a retriever, an optional reader and k; answers batches of questions."""

    def __init__(self, retriever: Retriever, reader=None, k: int = 5):
        self.retriever = retriever
        self.reader = reader
        self.k = k
        if reader is not None and getattr(retriever, "mode", "") in ("dense", "hybrid"):
            reader.share_base_weights(retriever.kb.embedder)  # loaded anyway: hold it once

    def settings(self) -> dict:
        return {"k": self.k, "retrieval": self.retriever.settings(),
                "reader": self.reader.identity() if self.reader is not None else None,
                "rank_prior": RANK_PRIOR}

    def ask(self, question: str, filters: Filters | None = None,
            history: list[Turn] | None = None) -> Answer:
        return self.ask_many([question], filters, histories=[history])[0]

    def ask_many(self, questions: list[str], filters: Filters | None = None,
                 depth: int | None = None,
                 histories: list[list[Turn] | None] | None = None,
                 search: list[str] | None = None,
                 avoid: list[list[str]] | None = None,
                 retrieved: Retrieved | None = None, asked_back: bool = False) -> list[Answer]:
        """Answers in order; ``depth`` retrieves deeper than k (for recall@20) without
        changing what the reader sees (the same top k). ``histories``: each question's
        earlier turns in its conversation: a follow-up is read as its self-contained rewrite
        (``Answer.rewritten``) and searched with the latest turn beside it. ``search``: the
        texts to retrieve with, when not the questions; ``avoid``: answers already given in
        each question's conversation (a follow-up asks for something new); ``retrieved``: what
        was already retrieved for them (a second reading), searched again otherwise;
        ``asked_back``: this is the reading without the passages that only asked the question
        (``past_askers``). Timings are per question."""
        resolved = [resolve(q, h) if h else None
                    for q, h in zip(questions, histories or [None] * len(questions))]
        if any(r is not None and r.followup for r in resolved):
            asked = [r.question if r is not None else q for q, r in zip(questions, resolved)]
            search = [r.search if r is not None and r.followup else q
                      for q, r in zip(questions, resolved)]
            told = [[t.answer for t in h if t.answer] if r is not None and r.followup else []
                    for h, r in zip(histories, resolved)]
            answers = self.ask_many(asked, filters, depth, search=search, avoid=told)
            answers = self.reread(answers, questions, histories, resolved, told)
            return [replace(a, question=q, rewritten=a.question if a.question != q else None)
                    for q, a in zip(questions, answers)]
        n = max(len(questions), 1)
        t0 = time.perf_counter()
        found = retrieved or self.retriever.search_many(search or questions,
                                                        max(self.k, depth or 0), filters)
        hits, sims = found.hits, found.similarity
        timings = {"retrieval_ms": (time.perf_counter() - t0) * 1000 / n,
                   **{k: v / n for k, v in found.timings.items()}}
        if self.reader is None:
            return [Answer(question=q, answer="", abstained=False,
                           citations=tuple(citation_of(h) for h in hs[:self.k]),
                           retrieved=tuple(hs), timings=timings, similarity=s)
                    for q, hs, s in zip(questions, hits, sims)]
        unread = {i: why for i, why in ((i, self.unreadable(q, hs[:self.k]))
                                        for i, (q, hs) in enumerate(zip(questions, hits))) if why}
        rule = self.abstain_rule()
        floor = None if rule else self.similarity_floor()
        read = [i for i, s in enumerate(sims) if i not in unread
                and (floor is None or s is None or s >= floor)]
        t1 = time.perf_counter()
        outputs = {}
        if read:
            args = ([questions[i] for i in read], [hits[i][:self.k] for i in read])
            batch = (self.reader.read_batch(*args, threshold=False) if rule
                     else self.reader.read_batch(*args))
            outputs = {i: out if rule is None else self.decide(rule, questions[i],
                                                                hits[i][:self.k], sims[i], out)
                       for i, out in zip(read, batch.outputs)}
            if getattr(self.reader.config, "answer_mode", "extractive") == "extractive":
                outputs = {i: by_rank(out, hits[i][:self.k]) for i, out in outputs.items()}
            if avoid:
                outputs = {i: something_new(out, hits[i][:self.k], avoid[i])
                           for i, out in outputs.items()}
            timings.update({k: v / n for k, v in batch.timings.items()})
        timings["reader_ms"] = (time.perf_counter() - t1) * 1000 / n
        answers = []
        for row, (q, hs, sim) in enumerate(zip(questions, hits, sims)):
            passages = hs[:self.k]
            out = outputs.get(row)
            if row in unread:
                answers.append(evidence_answer(q, passages, hs, dict(timings), sim, unread[row]))
                continue
            if out is None:  # nothing in the knowledge base is close to the question
                answers.append(Answer(
                    question=q, answer=NOT_FOUND, abstained=True,
                    citations=tuple(citation_of(h) for h in passages), retrieved=tuple(hs),
                    timings=dict(timings), similarity=sim))
                continue
            att = out.attention or [None] * len(passages)
            order = sorted(range(len(passages)), key=lambda i: -(att[i] or 0.0))
            found = answer_span(out, passages, order)
            shaped = self.shape(q, passages, out)
            fields = {"form": "generated" if out.span is None or not out.candidates
                      else "span", "short": None, "context": None} if not out.abstained else {}
            answer_text = out.answer
            if shaped is not None:
                passages, shaped = self.go_on(passages, *shaped)
                at, sh = shaped
                text = passages[at].text
                found = at, (sh.start, sh.end)
                answer_text = text[sh.start:sh.end]
                fields = {"form": sh.form, "context": text[sh.context[0]:sh.context[1]],
                          "short": text[sh.short[0]:sh.short[1]] if sh.short else None}
            if found:  # the source quoted first, the others by the reader's attention
                order = [found[0]] + [i for i in order if i != found[0]]
            explanation = None
            # the heat over the answer's passage (a declined one: the reader's best)
            at = found[0] if found else out.candidates[0][1] if out.candidates else None
            if out.heat and at in out.heat:
                explanation = {"chunk_id": passages[at].chunk_id,
                               "tokens": [list(t) for t in out.heat[at]]}
            answers.append(Answer(
                question=q, answer=answer_text, abstained=out.abstained,
                citations=tuple(citation_of(passages[i], att[i],
                                            found[1] if found and found[0] == i else None,
                                            shaped[1] if shaped and shaped[0] == i else None)
                                for i in order),
                retrieved=tuple(hs), confidence=out.confidence, timings=dict(timings),
                similarity=sim, explanation=explanation, withheld=out.withheld, **fields))
        if not asked_back:
            answers = self.past_askers(answers, questions, outputs, hits, sims, filters, avoid)
        return answers

    def past_askers(self, answers: list[Answer], questions: list[str], outputs: dict, hits,
                    sims, filters, avoid) -> list[Answer]:
        """A question whose every candidate span lies in a passage's own question or heading
        ("Which one for offsite backups to B2?" under "restic vs borg?": the asker's message in
        a thread, which the reader finds most like the question) is read again without those
        passages, from the next ones; the second reading answers where it does not decline (a
        question is no answer)."""
        again, rest = [], []
        for row, out in outputs.items():
            passages = hits[row][:self.k]
            spans = out.candidates if not out.abstained and out.span is not None else ()
            cut: dict = {}
            spans = [sp for sp in spans if sp[1] < len(passages)]
            if not spans or not all(  # (stops at the first span that may answer)
                    no_answer(passages[at], cut.setdefault(at, units(passages[at].text)), s, e)
                    for _, at, s, e in spans):
                continue
            asking = {passages[at].chunk_id for _, at, _, _ in spans}
            if len(hits[row]) > len(asking):
                again.append(row)
                rest.append([h for h in hits[row] if h.chunk_id not in asking])
        if not again:
            return answers
        second = self.ask_many([questions[i] for i in again], filters,
                               avoid=[avoid[i] for i in again] if avoid else None,
                               retrieved=Retrieved(rest, [sims[i] for i in again]),
                               asked_back=True)
        out = list(answers)
        for i, b in zip(again, second):
            if not b.abstained:
                timings = {k: answers[i].timings.get(k, 0.0) + b.timings.get(k, 0.0)
                           for k in {*answers[i].timings, *b.timings}}
                out[i] = replace(b, timings=timings)
        return out

    def reread(self, answers: list[Answer], questions: list[str], histories, resolved,
               told: list[list[str]]) -> list[Answer]:
        """A follow-up whose rewrite the reader is unsure of (below ``SURE``, or declined) is
        read a second time as typed with the previous turn beside it ("who plays her as a
        kid? who plays jane in jane the virgin? Gina Rodriguez"), from the same passages; the
        more confident reading answers (``Answer.read_as`` says when it was the second). A
        rewrite can name the wrong antecedent, or be worded so the reader misreads it; the
        conversation itself is the other evidence of what was meant."""
        def sureness(a: Answer) -> float:
            return -1.0 if a.abstained else (a.confidence or 0.0)

        again = [i for i, (a, r) in enumerate(zip(answers, resolved))
                 if r is not None and r.followup and a.kind == "answer"
                 and self.reader is not None and sureness(a) < SURE]
        if not again:
            return answers
        forms = []
        for i in again:
            last = histories[i][-1]
            forms.append(" ".join(x for x in (questions[i].strip(), last.question.strip(),
                                              (last.answer or "").strip()) if x))
        second = self.ask_many(forms, avoid=[told[i] for i in again], retrieved=Retrieved(
            [list(answers[i].retrieved) for i in again], [answers[i].similarity for i in again]))
        out = list(answers)
        for i, b in zip(again, second):
            a = answers[i]
            timings = {k: a.timings.get(k, 0.0) + b.timings.get(k, 0.0)
                       for k in {*a.timings, *b.timings}}
            if sureness(b) > sureness(a):
                out[i] = replace(b, question=a.question, read_as=b.question, timings=timings)
            else:
                out[i] = replace(a, timings=timings)
        return out

    def shape(self, question: str, passages: list[Hit], out) -> tuple[int, Shaped] | None:
        """(passage index, the answer's form in it) for a span reader's answer: the short
        span for a factoid, whole sentences, list items or code lines for other questions,
        and over technical documentation an excerpt of them for every question
        (``answer_form`` in the reader's config, ``technical``; rag/forms.py). None: not a
        span answer."""
        if out.abstained:
            return None
        config = self.reader.config
        form = getattr(config, "answer_form", "auto")
        kind = question_kind(question)
        gates = getattr(config, "form_gates", None) or {}
        gate = (gates.get("factoid_below", 0.0) if kind == "factoid"
                else gates.get("other_above", float("inf")))
        technical = form != "short" and self.technical()
        short = form == "short" or (form == "auto" and out.confidence >= gate
                                    and not technical)
        spans = out.candidates
        if not spans:  # a generated answer: shaped where it occurs in a passage
            order = sorted(range(len(passages)), key=lambda i: -((out.attention or [0] *
                                                                   len(passages))[i] or 0))
            found = answer_span(out, passages, order)
            if found is None or short:
                return None
            spans = [(1.0, found[0], *found[1])]
        return shape([h.text for h in passages], spans, kind, short,
                     EXCERPT if technical else 0, headings=[h.heading for h in passages])

    def go_on(self, passages: list[Hit], at: int,
              sh: Shaped) -> tuple[list[Hit], tuple[int, Shaped]]:
        """The passages and (passage index, the answer's form), the answer's passage run on
        into the document's following text (``GO_ON`` characters read, not the whole
        document) where the quote reaches the passage's end and the document goes on with
        the sentence the chunk cut or with what the quote's last sentence introduces
        (``forms.go_on``): still exact characters of the document, cited with that passage
        (its ``end`` and ``text`` run on too). A short span is never run on."""
        hit = passages[at]
        kb = getattr(self.retriever, "kb", None)
        if sh.form == "span" or kb is None or hit.text[sh.end:].strip():
            return passages, (at, sh)
        read = kb.text_after(hit.doc_id, hit.start, len(hit.text) + GO_ON)
        if not read.startswith(hit.text) or not read[len(hit.text):].strip():
            return passages, (at, sh)  # (the document's end, or changed since it was searched)
        longer = go_on(read, sh, hit.heading)
        if longer.end <= len(hit.text):  # (as it was, or a last label dropped)
            return passages, (at, longer)
        passages = list(passages)
        passages[at] = replace(hit, text=read[:longer.end], end=hit.start + longer.end)
        return passages, (at, longer)

    def technical(self) -> bool:
        """Whether this knowledge base reads as technical documentation (manuals, FAQs,
        READMEs: knowledge/profile.py), where ``auto`` answers every question with an
        excerpt of whole units (``forms.EXCERPT`` words), a factoid's short span marked in it
        (there the span alone, or the reader's one best sentence, is the neighbouring phrase
        too often: eval/RESULTS.md, issue 22); the abstention rule's floor applies there too.
        From the reader's ``technical_at`` share of technical words on."""
        kb = getattr(self.retriever, "kb", None)  # (a sharded retriever has none: prose)
        if technical_at(self.reader.config) is None or kb is None:
            return False
        return reads_technical(kb.technical_share(), self.reader.config)

    def unreadable(self, question: str, passages: list[Hit]) -> str | None:
        """Why the reader cannot read this question or its top passage (a language it was
        not trained on, by script), or None when it can."""
        scripts = self.reader.scripts()
        for what, text in (("question", question),
                           ("passages", passages[0].text if passages else "")):
            script = dominant_script(text)
            if not covers(scripts, script):
                return (f"the {what} {'is' if what == 'question' else 'are'} in "
                        f"{describe(script)}, which the reader was not trained on (it reads "
                        f"{' and '.join(describe(s) for s in scripts)} script): quoted is "
                        "the passage sentence that best matches the question, not an answer")
        return None

    def abstain_rule(self) -> AbstainRule | None:
        """The span reader's abstention rule, where it applies: fitted for this knowledge
        base's embedder (its similarities), dense, hybrid or gold retrieval (each reports the
        question's best dense similarity), a reader with a span head (whose confidence, its
        best span against its no-answer option, it was fitted on: every answer mode reports
        that one)."""
        config = getattr(self.reader, "config", None)
        rule = AbstainRule.from_dict(getattr(config, "abstain_rule", None))
        kb = getattr(self.retriever, "kb", None)
        if (rule is None or kb is None or not getattr(self.reader, "has_span_head", False)
                or getattr(self.retriever, "mode", "") not in ("dense", "hybrid", "gold")
                or config.similarity_embedder != kb.manifest["embedder"]["weights_sha256"]):
            return None
        return rule

    def decide(self, rule: AbstainRule | None, question: str, passages: list[Hit],
               similarity: float | None, out):
        """``out`` as read without a threshold, declined where the rule says so (its floor
        on technical documentation included), or, with no rule or no similarity to weigh,
        where the reader's own threshold does."""
        if out.abstained:
            return out
        if rule is None or similarity is None:
            threshold = self.reader.config.abstain_threshold
            declined = threshold is not None and out.confidence < threshold
        else:
            anchor = self.retriever.kb.similarity_anchor() if rule.relative else None
            technical = rule.floor is not None and self.technical()
            declined = rule.declines(out.confidence, similarity, coverage(question, passages),
                                     anchor, technical)
        return replace(out, answer=NOT_FOUND, abstained=True, span=None,
                       withheld=out.answer) if declined else out

    def similarity_floor(self) -> float | None:
        """The reader's abstention similarity, where it applies to this knowledge base (it
        was chosen for this embedder, or for any)."""
        config = getattr(self.reader, "config", None)
        floor = getattr(config, "abstain_similarity", None)
        made_for = getattr(config, "similarity_embedder", None)
        kb = getattr(self.retriever, "kb", None)
        if floor is None or kb is None:
            return None
        if made_for and made_for != kb.manifest["embedder"]["weights_sha256"]:
            return None
        return floor
