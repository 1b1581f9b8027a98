import pytest

from conftest import FakeEmbedder
from knowledge.chunking import Chunker, ChunkerSettings
from knowledge.errors import UsageError
from knowledge.types import Document, Section

count = FakeEmbedder().count_tokens


def split(text, size, overlap, **doc_kw):
    doc = Document(doc_id="d", text=text, source="d", **doc_kw)
    return Chunker(count, ChunkerSettings(size, overlap)).split(doc)


def test_offsets_point_at_the_exact_source_text():
    text = ("Alpha beta gamma. Delta epsilon zeta! Eta theta iota? " * 20).strip()
    chunks = split(text, 24, 6)
    assert len(chunks) > 3
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert count(c.text) <= 24
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end
        assert text[a.end:b.start].strip() == ""  # nothing but whitespace is left out


def test_golden_sentence_split_with_overlap():
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    assert [c.text for c in split(text, 10, 4)] == [
        "One two three. Four five six.",
        "Four five six. Seven eight nine.",
        "Seven eight nine. Ten eleven twelve.",
    ]


def test_markdown_splits_before_headings():
    text = "# A\n\nfirst part here\n\n## B\n\nsecond part here\n\n## C\n\nthird part here"
    sections = (Section(0, 1, "A"), Section(text.index("## B"), 2, "B"),
                Section(text.index("## C"), 2, "C"))
    chunks = split(text, 8, 0, sections=sections)
    assert [c.text for c in chunks] == ["# A\n\nfirst part here", "## B\n\nsecond part here",
                                        "## C\n\nthird part here"]
    assert [c.heading for c in chunks] == ["A", "A > B", "A > C"]


def test_chinese_splits_at_sentence_ends():
    text = "今天天气很好。我们去公园散步！你想一起去吗？好的；我们走吧。"
    chunks = split(text, 16, 0)
    assert [c.text for c in chunks] == ["今天天气很好。我们去公园散步！", "你想一起去吗？好的；我们走吧。"]
    for c in chunks:
        assert text[c.start:c.end] == c.text


def test_pages_follow_chunk_starts():
    text = "Page one words here.\n\nPage two words here."
    chunks = split(text, 6, 0, page_starts=(0, 22))
    assert [(c.text, c.page) for c in chunks] == [("Page one words here.", 1),
                                                   ("Page two words here.", 2)]


@pytest.mark.parametrize("size,overlap,msg", [
    (200, 200, "overlap 200 must be >= 0 and smaller"),
    (200, -1, "overlap -1"),
    (4, 0, "too small"),
])
def test_settings_are_validated(size, overlap, msg):
    with pytest.raises(UsageError, match=msg):
        ChunkerSettings(size, overlap).validate()


def test_size_must_fit_the_embedder():
    with pytest.raises(UsageError, match="exceeds the embedder's limit of 254"):
        ChunkerSettings(300, 30).validate(max_tokens=254)


@pytest.mark.parametrize("text", [
    "lorem ipsum dolor " * 12000,  # periodic: each piece occurs many times near its place
    "ERROR timeout on host 7\n" * 5000,  # a log of one repeated line
    "abcdefghij" * 20000,  # one 200 KB "word" (a tokenizer splits it into pieces)
    "中文字符测试" * 17000,  # CJK without punctuation
], ids=["periodic-words", "repeated-lines", "one-long-word", "cjk-run"])
def test_hostile_shapes_split_in_order_within_the_limit_to_the_end(text):
    text = text.strip()
    pieces = lambda t: len(TOKENISH.findall(t))  # noqa: E731  (word pieces of <= 4 chars)
    chunks = Chunker(pieces, ChunkerSettings(200, 30)).split(
        Document(doc_id="d", text=text, source="d"))
    assert len(chunks) > 10
    for c in chunks:
        assert text[c.start:c.end] == c.text and pieces(c.text) <= 200
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end and b.start <= a.end + 1
    assert chunks[0].start == 0 and chunks[-1].end == len(text)  # covered to the end


TOKENISH = __import__("re").compile(r"[\u4e00-\u9fff]|\w{1,4}|[^\w\s]")


def test_a_run_without_separators_is_cut_at_the_chunk_size():
    """5,000,000 characters without a space (base64, minified code): a WordPiece tokenizer
    reads a word over 100 characters as one unknown token, so the splitter alone kept the
    whole run as one 5 MB chunk."""
    def wordpiece_like(t):
        return sum(1 if len(w) > 100 else len(TOKENISH.findall(w)) for w in t.split())

    run = "QUJDRA+/" * 625_000
    text = "An opening sentence.\n" + run + "\nA closing sentence, after it."
    chunks = Chunker(wordpiece_like, ChunkerSettings(200, 30)).split(
        Document(doc_id="d", text=text, source="d"))
    assert [c.text for c in (chunks[0], chunks[-1])] == [
        "An opening sentence.", "A closing sentence, after it."]
    middle = chunks[1:-1]
    assert len(middle) == 5_000_000 // 200
    assert all(len(c.text) == 200 and text[c.start:c.end] == c.text for c in middle)
    assert "".join(c.text for c in middle) == run


def test_a_chunk_never_spans_a_heading_and_code_keeps_its_lines():
    """Sections from a PDF outline or HTML headings (no Markdown marks) bound chunks; a code
    block longer than a chunk is split between its lines, each line whole and indented."""
    code = "\n".join(f"    step_{i} = run (x, {i});" for i in range(12))
    text = f"Setup\n\nInstall it first.\n\nUsage\n\nType this:\n\n{code}\n\nThen stop."
    sections = (Section(0, 1, "Setup"), Section(text.index("Usage"), 1, "Usage"))
    chunks = split(text, 30, 0, sections=sections)
    assert [c.heading for c in chunks][:1] == ["Setup"] and chunks[0].text.endswith("first.")
    assert all(c.heading == "Usage" for c in chunks[1:])
    for i in range(12):
        line = f"step_{i} = run (x, {i});"
        assert any(f"\n    {line}" in "\n" + c.text or c.text.startswith(line) for c in chunks)


def test_a_title_alone_is_no_chunk():
    """A chapter's title with its first section right under it, or a title whose first
    paragraph was too long to join it, made a chunk of a few words that answered nothing and
    took a citation's place (about 30 in the manuals' knowledge bases); the title stays in
    the heading path of the chunks under it."""
    long = " ".join(f"word{i}" for i in range(40)) + "."
    text = f"3 Shell Commands\n\n3.1 Quoting\n\nQuoting removes meaning.\n\n3.2 Lists\n\n{long}"
    sections = (Section(0, 1, "Shell Commands"), Section(text.index("3.1"), 2, "Quoting"),
                Section(text.index("3.2"), 2, "Lists"))
    chunks = split(text, 30, 0, sections=sections)
    assert [c.text.split()[:2] for c in chunks][0] == ["3.1", "Quoting"]
    assert all(c.text not in ("3 Shell Commands", "3.2 Lists") for c in chunks)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    assert chunks[-1].heading == "Shell Commands > Lists" and "word39" in chunks[-1].text
    # a document that is only a title still has its chunk
    assert [c.text for c in split("3 Shell Commands", 30, 0, sections=sections[:1])] == \
        ["3 Shell Commands"]
