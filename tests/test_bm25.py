"""BM25 through Tantivy (knowledge/bm25.py) against a brute-force reference: the same terms,
Okapi BM25 as Lucene defines it, every document scored. Pruning (block-max WAND) must not
change the top k; document lengths kept in one byte may move scores by a few per cent."""
import math
import random
from collections import Counter

import numpy as np
import pytest

from conftest import FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, bm25, sync

K1, B = 1.2, 0.75
WORDS = [f"w{i}" for i in range(400)]


def corpus(n: int, max_len: int, seed: int = 5) -> dict[int, str]:
    """Documents of Zipf-distributed words (a few very common, most rare), ids 1..n."""
    rng = random.Random(seed)
    weights = [1 / (r + 1) for r in range(len(WORDS))]
    return {i: " ".join(rng.choices(WORDS, weights, k=rng.randint(3, max_len)))
            for i in range(1, n + 1)}


class Exact:
    """Exhaustive BM25 over ``docs`` (its statistics: N, n and lengths from ``stats_docs``,
    by default ``docs``)."""

    def __init__(self, docs: dict[int, str], stats_docs: dict[int, str] | None = None):
        toks = {i: bm25.tokens(t) for i, t in (stats_docs or docs).items()}
        self.ids, self.n = list(docs), len(toks)
        self.avgdl = sum(map(len, toks.values())) / self.n
        self.df = Counter(t for ts in toks.values() for t in set(ts))
        self.tf = {i: (Counter(toks[i]), len(toks[i])) for i in docs}

    def scores(self, query_terms: list[str]) -> dict[int, float]:
        """{id: score} of every document holding a query term."""
        idf = {t: math.log(1 + (self.n - self.df[t] + 0.5) / (self.df[t] + 0.5))
               for t in query_terms}
        out = {}
        for i in self.ids:
            tf, dl = self.tf[i]
            s = sum(idf[t] * tf[t] * (K1 + 1) / (tf[t] + K1 * (1 - B + B * dl / self.avgdl))
                    for t in query_terms if tf[t])
            if s > 0:
                out[i] = s
        return out


def top(scores: dict[int, float], k: int) -> list[tuple[float, int]]:
    return sorted(((s, i) for i, s in scores.items()), key=lambda p: (-p[0], p[1]))[:k]


def write(path, docs, base=None, delete=()):
    w = bm25.Bm25Writer(path, base)
    w.delete(list(delete))
    w.add(docs.items())
    w.commit()
    return bm25.Bm25Index(path)


def queries(n: int, seed: int = 9) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.sample(WORDS[:60], 2) + rng.sample(WORDS, rng.randint(1, 3)) for _ in range(n)]


def same_ranking(got, want, rel=1e-5) -> bool:
    """The same scores (to float32 rounding), best first, and the same ids above the last
    score (documents tied with it may be any of the tied ones)."""
    if len(got) != len(want):
        return False
    for (gs, gi), (ws, wi) in zip(got, want):
        if not math.isclose(gs, ws, rel_tol=rel):
            return False
    cut = want[-1][0]
    return {i for s, i in got if s > cut * (1 + rel)} == {i for s, i in want if s > cut * (1 + rel)}


def test_terms_are_the_index_analysis_with_stop_words_dropped():
    assert bm25.terms("Who won Super Bowl 50?") == ["won", "super", "bowl", "50"]
    assert bm25.terms("长江有多长？") == ["长江", "江有", "有多", "多长"]  # CJK as bigrams
    assert bm25.terms("Café DÉFENSE naïve") == ["cafe", "defense", "naive"]
    assert bm25.terms("the of") == ["the", "of"]  # only stop words: keep them
    assert bm25.terms("?!") == []
    assert bm25.tokens("Pump's reset_button") == ["pump", "s", "reset", "button"]


def test_top_k_equals_brute_force_bm25(tmp_path):
    """Documents of at most 40 tokens (whose lengths Tantivy keeps exactly): the pruned top
    10 and its scores equal exhaustive BM25 for every query."""
    docs = corpus(3000, 40)
    index = write(tmp_path / "lexical.1", docs)
    assert index.num_docs == len(docs)
    exact = Exact(docs)
    for q in queries(60):
        want = top(exact.scores(q), 10)
        got = index.search(q, 10)
        assert same_ranking(got, want), (q, got, want)


def test_long_documents_agree_with_exact_lengths_on_the_top_10(tmp_path):
    """Past 40 tokens a length is kept to within a few per cent (one byte), so scores move
    slightly: the top 10 still agrees with exact BM25 on at least 95 % of results."""
    docs = corpus(3000, 150, seed=6)
    index = write(tmp_path / "lexical.1", docs)
    agree = total = 0
    reference = Exact(docs)
    for q in queries(60, seed=10):
        exact = reference.scores(q)
        want = top(exact, 10)
        got = index.search(q, 10)
        tenth = want[-1][0]
        agree += sum(exact[i] >= tenth * (1 - 1e-6) for _, i in got)  # (a tie counts)
        total += len(want)
        for s, i in got:
            assert s == pytest.approx(exact[i], rel=0.05)
    assert agree / total >= 0.95, agree / total


def test_allowed_ids_restrict_the_results_not_the_statistics(tmp_path):
    docs = corpus(2000, 40, seed=7)
    index = write(tmp_path / "lexical.1", docs)
    allowed = np.array(sorted(random.Random(1).sample(sorted(docs), 300)), dtype=np.int64)
    exact = Exact({i: t for i, t in docs.items() if i in set(allowed.tolist())}, docs)
    for q in queries(30, seed=11):
        want = top(exact.scores(q), 10)
        assert same_ranking(index.search(q, 10, allowed), want), q
    assert index.search(queries(1)[0], 10, np.zeros(0, np.int64)) == []


def test_a_new_generation_leaves_the_committed_one_untouched(tmp_path):
    """Generation 2 is built on generation 1's files (hard links) with deletes and adds;
    generation 1 still answers exactly as before, and 2 holds exactly its own ids."""
    docs = corpus(1500, 40, seed=8)
    one = write(tmp_path / "lexical.1", docs)
    qs = queries(20, seed=12)
    before = [one.search(q, 10) for q in qs]
    gone = list(range(1, 1501, 3))
    added = {i + 5000: t for i, t in corpus(400, 40, seed=13).items()}
    two = write(tmp_path / "lexical.2", added, base=tmp_path / "lexical.1", delete=gone)
    assert [bm25.Bm25Index(tmp_path / "lexical.1").search(q, 10) for q in qs] == before
    live = {i: t for i, t in docs.items() if i not in set(gone)} | added
    assert two.ids().tolist() == sorted(live)
    exact = Exact(live)
    for q in qs:
        got = {i for _, i in two.search(q, 50)}
        assert got and not got & set(gone)
        # (deleted documents still count in N and n until their segment is merged)
        assert got <= set(exact.scores(q))


def test_the_knowledge_base_searches_its_generation_and_follows_writers(tmp_path):
    """Through `rag index`: BM25 of the KB equals brute force over its chunk texts; a reader
    follows a writer's commit to the next directory; the old one is removed."""
    docs = {f"d{i}.txt": t for i, t in corpus(60, 30, seed=14).items()}
    folder = write_corpus(tmp_path / "docs", docs)
    kb = tmp_path / "kb"
    sync(kb, [folder], embedder=FakeEmbedder(), log=lambda m: None)
    reader = KnowledgeBase.open(kb, embedder=FakeEmbedder())
    texts = dict(reader.store.conn.execute("SELECT id, text FROM chunks"))
    q = "w1 w7 w30"
    want = top(Exact(texts).scores(bm25.terms(q)), 5)
    assert same_ranking(reader.lexical_ids(q, 5), want)
    first = sorted(p.name for p in kb.glob("lexical.*"))
    (folder / "d1.txt").unlink()
    (folder / "new.txt").write_text("w1 w1 w7 w30 w30 w30")
    sync(kb, [folder], embedder=FakeEmbedder(), log=lambda m: None)
    with reader.snapshot():
        got = reader.lexical_ids(q, 5)
        assert reader.fetch(got)[0].doc_id == "new.txt"
    assert sorted(p.name for p in kb.glob("lexical.*")) != first
    assert len(list(kb.glob("lexical.*"))) == 1
    assert reader.store.verify() == []
    reader.close()
