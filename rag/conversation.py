"""Follow-up questions: a question that refers back to earlier turns, made self-contained.

"Who founded Apple?" - "Steve Jobs" - "When did he step down?" is asked as "When did Steve
Jobs step down?": a pronoun, a definite description ("the company", "that year") or an
ellipsis ("and in 2015?") is replaced by what the earlier turns named. Rules, not a model:
the rewrite is instant, deterministic and shown to the user, and a question that holds no
reference back is asked exactly as it was typed.

Example::

    resolve("When did he step down?", [Turn("Who founded Apple?", "Steve Jobs")])
    # Resolved(question="When did Steve Jobs step down?", references=("he",))
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_TURNS = 4  # earlier turns consulted (the most recent first)


@dataclass(frozen=True)
class Turn:
    """An earlier question and the answer the user was told (None: not answered)."""

    question: str
    answer: str | None = None

    @classmethod
    def parse(cls, item) -> "Turn":
        """A turn from ``{"question": ..., "answer": ...}`` (ValueError when malformed)."""
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise ValueError("each history turn is an object with a 'question' string "
                             "(and an optional 'answer' string)")
        answer = item.get("answer")
        if answer is not None and not isinstance(answer, str):
            raise ValueError("a history turn's 'answer' must be a string")
        return cls(item["question"], answer)


@dataclass(frozen=True)
class Resolved:
    """The question to read, the text to search with, and what was replaced (no
    ``search``: the question stands alone and is asked as typed)."""

    question: str
    references: tuple[str, ...] = ()
    replaced_with: tuple[str, ...] = field(default=())
    # a follow-up is searched with the conversation's latest turn beside it: what the
    # question is about is often only there ("who produced it?")
    search: str | None = None

    @property
    def followup(self) -> bool:
        return self.search is not None


_PERSON = {"he": "", "him": "", "his": "'s", "she": "", "her": "", "hers": "'s"}
_THING = {"it": "", "its": "'s"}
_GROUP = {"they": "", "them": "", "their": "'s"}
_GENERIC = ("company|firm|city|town|country|state|river|lake|mountain|island|band|group|team|"
            "club|book|novel|film|movie|album|song|show|series|game|war|battle|university|"
            "college|school|building|church|party|organization|organisation|program|programme|"
            "project|king|queen|president|emperor|author|writer|artist|singer|player|person|man|"
            "woman|place|event|period|empire|dynasty|language|species|disease|process|method|"
            "function|command|option|file|package|tool|system|device|machine|product|model|"
            "character|region|province|county|area|station|bridge|ship|aircraft|car|treaty|law|"
            "act|plan|era|century|reign|network|channel|station|court|agency|museum|stadium|"
            "name|term|word|acronym|abbreviation|title|song|track|recording|episode|season|"
            "role|part|actor|actress|fossil|report|theory|idea|invention|discovery|reaction|"
            "engine|test|attack|fire|disease|virus|boundary|scale|canal|library|team")
# "the company" points back; "the name of the river" says what it means itself
# (a lower-case noun, at most one word before it: "the University Library" is a name; not
# one said with its own name, "the band Gryphon", "the movie river of no return")
_DEFINITE = re.compile(rf"\b(?i:the|this|that|these|those)\s+(?:[a-z][\w-]*\s+)?({_GENERIC})s?\b"
                       rf"(?!\s+(?:of|for|in|on|at|from|by|with|that|which|who|where|called|"
                       rf"named|known)\b)")
_TITLED = {"song", "movie", "film", "album", "show", "band", "book", "series", "novel", "game",
           "episode", "track", "character", "company", "city", "river", "team"}
_VERBISH = re.compile(r"(is|was|are|were|did|do|does|has|had|have|can|could|will|would|'s|"
                      r"\w+ed|\w+s)$")


def _named_after(question: str, m) -> bool:
    """Whether a definite description is said with its own name after it: "the band
    Gryphon", "the movie river of no return" (a title after a noun that takes one)."""
    nxt = re.match(r"\s+([\w\"“']+)", question[m.end():])
    if not nxt:
        return False
    word = nxt.group(1)
    if word[0].isupper() or word[0].isdigit() or word[0] in "\"“'":
        return True
    return m.group(1).lower() in _TITLED and not _VERBISH.fullmatch(word.lower()) \
        and word.lower() not in _CONTENT_SKIP


# "it" with nothing to stand for: "how long did it take", "it never rains"
_DUMMY_IT = re.compile(r"\bit(?:'s|\s+(?:take|takes|took|cost|costs|mean|means|rains?|rained|"
                       r"never|seem|seems|matter|matters|is\s+(?:said|believed|thought)))\b", re.I)
_CONTENT_SKIP = {"who", "whom", "whose", "what", "which", "when", "where", "why", "how", "is",
                 "are", "was", "were", "did", "do", "does", "the", "a", "an", "of", "in", "on",
                 "to", "for", "at", "by", "with", "and", "it", "its", "he", "she", "they",
                 "his", "her", "their", "many", "much", "did", "has", "have", "had", "can",
                 "could", "what's", "who's", "that", "this"}
# "that", "this" standing for what was just said ("in which city was that?")
_DEMONSTRATIVE = re.compile(r"\b(that|this)\b(?=\s*[?.!,]|\s*$|\s+(was|is|happened|happen|"
                            r"mean|means|do|does|did|take|took|cost|last|lasted)\b)", re.I)
_POSSESSIVE = {"his", "her", "hers", "its", "their"}
_CLAUSE = re.compile(r"\b(when|while|after|before|because|since|if|that|who|which|where|and|"
                     r"but|so|as)\b|,", re.I)
_THEN = re.compile(r"\b(that|the same) (year|time|day|decade|century|period)\b|\bback then\b", re.I)
# "the first", "the other one", "the same": a reference to what was just talked about,
# with nothing to substitute (the conversation is searched beside the question)
_ORDINAL = re.compile(r"\bthe (first|second|third|last|next|previous|other|same|latter|former|"
                      r"original|new|older|younger|oldest|youngest)( one| ones)?\b(?!\s+[a-z]{3,})",
                      re.I)
_PREPOSITION = re.compile(r"\s+(?:in|on|of|for|from|at|by|with|to|about|during|after|before|"
                          r"into|over|under|between|than)\s+", re.I)
_OPENING = re.compile(r"^\s*(?:and\s+|but\s+|so\s+)?(?:who|whom|whose|what|which|when|where|why|"
                      r"how(?:\s+(?:many|much|long|old|far|often|big))?)(?:'s|’s)?"
                      r"(?:\s+(?!(?:is|are|was|were|did|does|do)\b)\w+)?\s+"
                      r"(?:(?:is|are|was|were|did|does|do|has|have|had|can|could|will|would|"
                      r"plays?|played|sang|sings?|wrote|writes?|directed|voices?|voiced|won|"
                      r"made|makes?|invented|founded|built|scored|starred|produced|owns?|"
                      r"owned|died|became|named|called|led|ruled|discovered|designed)\b)?\s*",
                      re.I)
_ELLIPSIS = re.compile(r"^\s*(and|but|also|so)?\s*(what|how)\s+about\b", re.I)
_AND = re.compile(r"^\s*(and|but|also)\b[\s,]*", re.I)
# a question asked with "does" ends on its verb, after the subject a pronoun may stand for
_DOES = re.compile(r"^\s*(?:and\s+)?(?:what|how|why|when|where|which \w+)\s+(?:does|do|did)\s",
                   re.I)
_LAST_VERB = re.compile(r"\s+(?:do|mean|work|stand(?: for)?|return|contain|look like|need|require|"
                        r"support|use|take|cost|happen|say|show|print|produce|accept|expect)$",
                        re.I)
_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are",
       "was", "were", "did", "do", "does", "can", "could", "in", "on", "at", "and", "the", "a",
       "an", "of", "for", "to", "by", "after", "before", "during", "since", "name"}
_ENTITY = re.compile(r"\b([A-Z][\w'\-.&]*(?:\s+(?:of|the|de|von|van|and|&)?\s*[A-Z][\w'\-.&]*)*)")
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})s?\b")
_NOT_FOUND = "not found in the knowledge base"


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z']+", text.lower())


def references(question: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each word that points back: a personal pronoun ("person",
    "thing", "group"), a definite description ("definite"), or "then" (a time)."""
    found = []
    dummy = {m.start() for m in _DUMMY_IT.finditer(question)}
    for m in re.finditer(r"\b[A-Za-z]+\b", question):
        w = m.group().lower()
        kind = ("person" if w in _PERSON else "thing" if w in _THING else
                "group" if w in _GROUP else None)
        if kind and m.start() not in dummy:
            found.append((m.start(), m.end(), kind))
    found += [(m.start(), m.end(), "definite") for m in _DEFINITE.finditer(question)
              if not _named_after(question, m) and _carries(question, m)]
    found += [(m.start(), m.end(), "then") for m in _THEN.finditer(question)]
    return sorted(found)


def _carries(question: str, m) -> bool:
    """Whether a definite description carries the question ("when was the company
    founded?"), rather than being one of its many parts ("who replaced johnny carson on the
    tonight show?": a title, in a question specific enough without history)."""
    rest = question[:m.start()] + question[m.end():]
    return len([w for w in _words(rest) if w not in _CONTENT_SKIP]) <= 2


def _quoted_again(question: str, ref: tuple[int, int, str], history: list[Turn]) -> bool:
    """A pronoun inside words of a title an earlier question named ("who sings let it go
    in the end credits?" after "who sings let it go in frozen?"): the title, said again."""
    if ref[2] not in ("thing", "person", "group"):
        return False
    before, after = _words(question[:ref[0]]), _words(question[ref[1]:])
    word = question[ref[0]:ref[1]].lower()
    grams = {" ".join(g) for g in ((*before[-2:], word), (*before[-1:], word, *after[:1]),
                                   (word, *after[:2])) if len(g) == 3}
    said = [" " + " ".join(_words(w)) + " " for w in map(_work, (t.question for t in history))
            if w]
    return any(f" {g} " in text for g in grams for text in said)


def _internal(question: str, ref: tuple[int, int, str], names: list[int]) -> bool:
    """Whether a pronoun points at a name earlier in its own question: a possessive ("What
    did the Normans call their land?"), or any pronoun in a later clause ("How old was Tesla
    when he died?"); not an object of the name's own clause ("What was Kublai's relation to
    him?")."""
    word = question[ref[0]:ref[1]].lower()
    after = question[ref[1]:]
    possessive = word in _POSSESSIVE and (word != "her" or re.match(r"\s+[a-z]", after))
    subject = word in ("he", "she", "it", "they") and re.match(r"\s+[a-z]", after)
    # in a question typed in lower case, words of content before a possessive are its owner
    # ("who coached brynn cartelli to her win"), and a subject after three starts a clause
    # or a title of its own ("who sang the opening line of do they know it's christmas")
    content = [w for w in _words(question[:ref[0]]) if w not in _CONTENT_SKIP]
    if not names and ((possessive and len(content) >= 2) or (subject and len(content) >= 3)):
        return True
    before = [n for n in names if n < ref[0]]
    if not before:
        return False
    return bool(possessive) or bool(_CLAUSE.search(question, before[-1], ref[0]))


def entities(text: str) -> list[str]:
    """Names in a question or answer: runs of capitalised words (not a question's first
    word unless it is a name), years, quoted terms."""
    out = []
    for m in _ENTITY.finditer(text):
        name = re.sub(r"['’]s$", "", m.group(1).strip(" .'")).strip(" .'")
        if not name:
            continue
        first = name.split()[0].lower()
        if m.start() == 0 or text[:m.start()].rstrip().endswith(("?", ".", "!")):
            if first in _WH:  # "What ..." / "The ..." open a sentence; drop that word
                name = " ".join(name.split()[1:])
        if name and name.lower() not in _WH and len(name) > 1:
            out.append(name)
    out += [m.group(1) or m.group(2) for m in
            re.finditer(r"[\"“]([^\"”]{2,40})[\"”]|(?<!\w)'([^']{2,40})'(?!\w)", text)]
    return out


def phrases(question: str) -> list[str]:
    """The noun phrases of a question, whatever its capitals: what follows its opening
    ("who plays") cut at prepositions. ``phrases("who plays the easter bunny in santa
    clause 3?")`` -> ["the easter bunny", "santa clause 3"]."""
    body = _OPENING.sub("", question.strip().rstrip("?.! ")).strip()
    parts = [p.strip(" ,;'\"") for p in _PREPOSITION.split(body)]
    if _DOES.match(question):  # "what does the msgfmt program do?": its subject, not "... do"
        parts = [_LAST_VERB.sub("", p) for p in parts]
    pronouns = {*_PERSON, *_THING, *_GROUP}
    return [p for p in parts if len(p) > 2 and p.lower() not in _WH | pronouns]


_CREATES = (r"sings|sang|sung|wrote|writes|directed|directs|produced|created|composed|"
            r"recorded|performed|narrated|illustrated|published|developed|designed|"
            r"starred in|stars in|voices? in")
_WORK = [  # the work a question is about, whole ("who sings you can't judge a book by
    # the cover?"), which splitting at prepositions would cut apart
    re.compile(rf"^\s*(?:and\s+)?(?:who|which \w+|what \w+)\s+(?:{_CREATES})\s+(?:the\s+"
               r"(?:song|film|movie|book|show|tv show|album|play|series|novel|game)\s+)?"
               r"(.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*(?:and\s+)?(?:who|which \w+)\s+(?:plays|played|voices|voiced|portrays|"
               r"portrayed|played the role of)\s+.+?\s+in\s+(.+?)\s*[?.!]*\s*$", re.I),
    re.compile(r"^\s*(?:and\s+)?(?:when|where)\s+(?:did|was|were|is|does)\s+(.+?)\s+"
               r"(?:premiere|come out|came out|released|release|open|opened|air|aired|"
               r"published|debut|debuted)\s*[?.!]*\s*$", re.I),
]


def _work(question: str) -> str | None:
    """The title a question asks about ("who plays moriarty in sherlock holmes: a game of
    shadows?" -> "sherlock holmes: a game of shadows"), or None."""
    for pattern in _WORK:
        m = pattern.match(question)
        if m and len(m.group(1)) > 2:
            return m.group(1).strip(" ,;")
    return None


def _candidates(history: list[Turn]) -> list[tuple[str, str]]:
    """(kind, text) antecedents, most recent first: each turn's answer (a short one), the
    work it asks about, the names in its question, then its other noun phrases (questions
    typed in lower case). A work named with a pronoun ("who plays holmes's brother in
    it?") is the earlier turn's work, still the conversation's subject."""
    out = []
    works = [_work(t.question) for t in history[-MAX_TURNS:]]
    for i, w in enumerate(works):
        if w is not None and w.lower() in (*_THING, "that", "this") and i:
            works[i] = works[i - 1]
    works = [None if w is None or w.lower() in (*_THING, "that", "this") else w for w in works]
    for turn, work in zip(reversed(history[-MAX_TURNS:]), reversed(works)):
        told = (turn.answer or "").strip()
        answer = told.strip(".")
        # (an answer told as a sentence, "VRRP stands for Virtual Router Redundancy
        # Protocol.", is no one thing a pronoun refers back to: "which versions of it")
        found = told.split()
        sentence = told.endswith(".") and len(found) >= 4 and \
            any(w.isalpha() and w.islower() for w in found[1:])  # ("Martin Luther King Jr.")
        if answer and not sentence and answer.lower() != _NOT_FOUND and \
                len(answer.split()) <= 8:
            asks_who = _words(turn.question)[:1] in (["who"], ["whom"], ["whose"])
            # "Steve Jobs" is a person; "Apple" may be a company: both can answer "who";
            # "Which king...?", "What was Tesla's brother called?" ask for a person
            named_role = _asks_person(turn.question)
            asks_who = asks_who or named_role
            person = asks_who and _capitalised(answer) and (len(answer.split()) >= 2 or named_role)
            kind = ("year" if _YEAR.fullmatch(answer) else "person" if person else
                    "who" if asks_who else "answer")
            out.append((kind, answer))
        if work:
            out.append(("work", work))
        names = entities(turn.question)
        for name in names:
            out.append(("year" if _YEAR.fullmatch(name) else "name", name))
        for phrase in reversed(phrases(turn.question)):  # the last phrase is the topic
            if not any(n.lower() in phrase.lower() for n in names):
                out.append(("phrase", phrase))
    return out


def _capitalised(name: str) -> bool:
    """Every word of a name starts with a capital ("Melissa McCarthy", "Tom O'Brien")."""
    return all(w[:1].isupper() for w in name.split() if w.lower() not in ("de", "von", "van",
                                                                          "of", "the", "and"))


_NOT_OWNED = {"to", "in", "on", "at", "for", "with", "from", "by", "about", "as", "and", "or",
              "when", "after", "before", "that", "the", "a", "an", "up", "out", "off", "back",
              "into", "first", "last", "again", "most", "so", "if", "than", "then", "because"}


def _owns(after: str) -> bool:
    """Whether "her" is a possessive: a word that is not a preposition, article or the like
    follows it ("her mom"; not "who married her in 1990?")."""
    nxt = re.match(r"\s+([a-z][\w'-]*)", after)
    return bool(nxt) and nxt.group(1) not in _NOT_OWNED


_PERSON_NOUNS = {"king", "queen", "president", "emperor", "author", "writer", "artist",
                 "singer", "player", "person", "man", "woman", "actor", "actress"}
_KIN = {"brother", "sister", "father", "mother", "son", "daughter", "wife", "husband", "uncle",
        "aunt", "grandfather", "grandmother", "nephew", "niece", "cousin", "pope", "general",
        "leader", "founder", "inventor", "director", "composer", "scientist", "minister",
        "prince", "princess", "ruler", "coach", "captain", "ceo"}


def _asks_person(question: str) -> bool:
    """"Which king ...?", "What was Tesla's brother called?": a which/what question whose
    first words name a kind of person."""
    words = [w.rstrip("s") if w.endswith("s") and not w.endswith("ss") else w
             for w in _words(question)[:5]]
    return bool(words) and words[0] in ("which", "what") and any(
        w in _PERSON_NOUNS or w in _KIN for w in words[1:])


_DATELIKE = re.compile(r"^\W*\d[\d\s.,:/%-]*\w{0,3}\W*$|\b\d{1,2}\s*,?\s*(1\d{3}|20\d{2})\b")


def _pick(kind: str, candidates: list[tuple[str, str]], question: str,
          noun: str = "", taken: tuple = ()) -> str | None:
    """The antecedent a reference of ``kind`` most likely means (a definite description:
    not a person unless its noun is one, never a number)."""
    own = question.lower()
    usable = [(k, t) for k, t in candidates if t.lower() not in own and t not in taken
              and (kind == "then" or not _DATELIKE.search(t))]
    if kind == "definite":
        person = noun.lower().rstrip("s") in _PERSON_NOUNS
        usable = [(k, t) for k, t in usable if (k == "person") <= person
                  and not re.fullmatch(r"[\d.,%\s]+", t)]
    if kind == "then":
        return next((t for k, t in usable if k == "year"), None)
    # the latest answer is what the conversation is about now, where its kind fits: "Who
    # founded Apple?" "Steve Jobs" - "he" is Jobs, "its" is Apple
    titled = kind == "definite" and noun.lower().rstrip("s") in _TITLED - {"character"}
    order = {"person": ("person", "who", "name", "answer"),
             "thing": ("work", "answer", "who", "name", "phrase"),
             "definite": (("work",) if titled else ()) + ("answer", "who", "person", "name",
                                                          "phrase", "work"),
             "group": ("answer", "who", "name", "person", "phrase")}[kind]
    for want in order:
        for k, t in usable:
            if k == want:
                return t
    return None


def resolve(question: str, history: list[Turn]) -> Resolved:
    """The question made self-contained from ``history`` (oldest first), or as typed when
    it holds no reference back (or there is no history). A follow-up is also searched with
    the latest turn beside it (``search``)."""
    history = [t for t in history if t.question.strip()]
    if not history:
        return Resolved(question)
    last = history[-1]
    beside = f"{last.question} {last.answer or ''}".strip()
    rest = _AND.sub("", question)  # "and who produced it?": a question after all
    asks = bool(re.match(r"\s*(who|whom|whose|what|which|when|where|why|how|is|are|was|"
                         r"were|did|does|do|can|could|has|have|had)\b", rest, re.I))
    that = _WHEN_THAT.match(rest)  # "when was that?": the previous question's event
    if _bare(rest) or that:  # "why?", "roughly when?": the previous question, asked that way
        rewritten = _reask(f"{that.group(1)}?" if that else rest, last.question) or question
        return Resolved(rewritten, (question.strip(),), (last.question,),
                        search=f"{rewritten} {beside}")
    if _ELLIPSIS.match(question) or (not asks and (_AND.match(question) or _elliptical(rest))):
        rewritten = _complete(question, last.question)
        return Resolved(rewritten or question, (question.strip(),),
                        (last.question,) if rewritten else (),
                        search=f"{rewritten or question} {beside}")
    continuing = bool(_AND.match(question))
    named = [m.start() for m in _ENTITY.finditer(question) if entities(m.group(1))
             and m.start() > 0]
    # a pronoun after a name of its own question points at that name ("What did the
    # Normans call their land?"), not back at the conversation
    refs = [r for r in references(question) if not _internal(question, r, named)
            and not _quoted_again(question, r, history)]
    ordinal = _ORDINAL.search(question) if not named else None
    pointing = _DEMONSTRATIVE.search(question) if not refs else None
    vague = _vague(question) and not refs
    if not (refs or ordinal or continuing or pointing or vague):
        return Resolved(question)
    candidates = _candidates(history)
    out, at, used, names = [], 0, [], []
    for start, end, kind in refs:
        if start < at:
            continue
        name = _pick(kind, candidates, question, question[start:end].split()[-1],
                     tuple(names))
        if name is None:
            continue
        word = question[start:end]
        suffix = _PERSON.get(word.lower(), _THING.get(word.lower(), _GROUP.get(word.lower(), "")))
        if word.lower() == "her" and _owns(question[end:]):
            suffix = "'s"  # "who plays her mom?": her mom, not her
        if kind == "then":
            name, suffix = f"in {name}", ""
        elif kind == "definite":  # the user's words kept, the referent named beside them
            name, suffix = f"{word} {name}", ""
        elif suffix and name.endswith("s"):
            suffix = "'"  # the Visigoths' leader
        out.append(question[at:start] + name + suffix)
        at = end
        used.append(word)
        names.append(name)
    out.append(question[at:])
    rewritten = "".join(out)
    if ordinal:
        used.append(ordinal.group())
    if pointing:
        used.append(pointing.group())
    one = re.search(r"\b(the \w+) (ones?)\b", rewritten, re.I) if ordinal else None
    head = _head(last.question) if one else None
    if head:  # "when was the second one?" after "When did the 1973 oil crisis begin?"
        noun = head if one.group(2).lower() == "one" else head + "s"
        rewritten = rewritten[:one.start()] + f"{one.group(1)} {noun}" + rewritten[one.end():]
        names.append(noun)
    if not names and (vague or ordinal or pointing):
        topic = _topic(history)  # nothing to substitute: say what it is about
        if topic and topic.lower() not in rewritten.lower():
            rewritten = f"{rewritten.rstrip(' ?')} ({topic})?"
            names.append(topic)
    if continuing and not used:
        used.append(question[:len(question) - len(rest)].strip())
    return Resolved(rewritten, tuple(used), tuple(names), search=f"{rewritten} {beside}")


_WH_ONLY = re.compile(r"^\s*(?:(?:and|but|so|roughly|exactly|about|approximately|then)\s+)*"
                      r"(why|when|where|how|who|what|which)(\s+(not|exactly|then|so))?\s*[?.!]*\s*$",
                      re.I)
_LEAD = re.compile(r"^\s*(?:and\s+)?(?:who|whom|whose|what|which|when|where|why|how(?:\s+"
                   r"(?:many|much|long|old|far|often|big))?|in\s+what\s+\w+|in\s+which\s+\w+|"
                   r"what\s+\w+|which\s+\w+)\s+", re.I)


def _vague(question: str) -> bool:
    """A short question with nothing specific of its own (no name, number or quoted term,
    at most six words): "who wrote the screenplay?" needs the conversation to mean
    anything."""
    content = [w for w in _words(question) if w not in _CONTENT_SKIP]
    return 0 < len(content) <= 2 and not entities(question[1:]) and not re.search(r"\d", question)


_TOPIC_CUT = re.compile(r"\s+(?:in|on|for|from|at|during)\s+", re.I)


def _topic(history: list[Turn]) -> str | None:
    """What the conversation is about: the latest question's last name, else what follows
    its last "in/on/for" ("who plays the easter bunny in santa clause 3?" -> "santa clause
    3"), else all it asks about ("who directed fifty shades of grey?" -> "fifty shades of
    grey")."""
    for turn in reversed(history):
        work = _work(turn.question)
        if work and work.lower() not in (*_THING, "that", "this"):
            return work
        names = entities(turn.question)
        if names:
            return names[-1]
        body = _OPENING.sub("", turn.question.strip().rstrip("?.! ")).strip()
        if len(body) > 2:
            return _TOPIC_CUT.split(body)[-1].strip(" ,;")
    return None


_WHEN_THAT = re.compile(r"^\s*(when|where|why|how)\s+(?:was|is|did|does)\s+(?:that|this)"
                        r"(?:\s+happen(?:ed)?)?\s*[?.!]*\s*$", re.I)
_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "its", "their", "his", "her"}


def _head(previous: str) -> str | None:
    """What "one" stands for in "the second one": the previous question's first noun
    phrase without determiners, numbers or a trailing verb ("When did the 1973 oil crisis
    begin?" -> "oil crisis")."""
    found = phrases(previous)
    if not found:
        return None
    words = found[0].split()
    if len(words) > 1 and (re.match(r"\s*(?:when|where|why|how|what|which|who)\s+(?:did|does|do)"
                                    r"\b", previous, re.I) or words[-1].endswith(("ed", "en"))):
        words = words[:-1]  # "... begin", "... played"
    words = [w for w in words if w.lower() not in _DETERMINERS and not re.search(r"\d", w)
             and not _ORDINAL.match(f"the {w}")]
    return " ".join(words[-3:]) or None


def _bare(question: str) -> bool:
    """Only a question word: "why?", "roughly when?"."""
    return bool(_WH_ONLY.match(question))


def _reask(bare: str, previous: str) -> str | None:
    """The previous question with its question word replaced: "why?" after "How much did
    OPEC raise the price?" asks why OPEC raised it ("why did OPEC raise the price?")."""
    word = _WH_ONLY.match(bare).group(1).lower()
    if not _LEAD.match(previous):
        return None
    return _LEAD.sub(f"{word} ", previous, count=1)


def _elliptical(question: str) -> bool:
    """A fragment rather than a question: a few words without a verb-like word."""
    words = _words(question)
    asks = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is",
            "are", "was", "were", "did", "do", "does", "can", "could", "name"}
    return 0 < len(words) <= 4 and not any(w in asks for w in words[:1]) \
        and not any(w.endswith(("ed", "ing")) or w in ("is", "are", "was", "were", "do", "does",
                                                        "did", "has", "have", "had")
                    for w in words)


def _complete(fragment: str, previous: str) -> str | None:
    """The previous question with the fragment's new element swapped in: "and in 2015?"
    after "How many people lived there in 2010?" asks about 2015; "and mother nature?" after
    "who plays the easter bunny in santa clause 3?" asks who plays mother nature in it."""
    body = _AND.sub("", re.sub(_ELLIPSIS, "", fragment)).strip(" ?.,")
    body = re.sub(r"^(in|for|of|at|on|about)\s+", "", body, flags=re.I)
    if not body or len(body.split()) > 8:
        return None
    year = _YEAR.search(body)
    if year and _YEAR.search(previous):
        return _YEAR.sub(year.group(1), previous, count=1)
    new = entities(body)
    old = entities(previous)
    if new and old:  # the name it replaces: one sharing a word with it, else the last
        shared = [o for o in old if set(_words(o)) & set(_words(new[0]))]
        return _swap(previous, (shared or old)[-1], new[0])
    focus = phrases(previous)
    if focus:  # the phrase the previous question asked about, as a whole
        swapped = _swap(previous, focus[0], body)
        if swapped != previous:
            return swapped
    return None


def _swap(text: str, old: str, new: str) -> str:
    """``old`` (whole words) replaced by ``new`` once, without doubling an article."""
    m = re.search(rf"(?<!\w){re.escape(old)}(?!\w)", text)
    if m is None:
        return text
    start = m.start()
    if re.match(r"(the|a|an)\s", new, re.I) and re.search(r"\b(the|a|an)\s+$", text[:start], re.I):
        start = re.search(r"\b(the|a|an)\s+$", text[:start], re.I).start()
    return text[:start] + new + text[m.end():]
