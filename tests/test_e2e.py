"""End to end with the real packaged MiniLM on part of the bundled SQuAD corpus."""
import gzip
import json

import numpy as np
import torch
import pytest

from conftest import ROOT
from knowledge import KnowledgeBase, sync
from knowledge.embedding import Embedder

CORPUS = ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz"
ARTICLES = ["Super_Bowl_50", "Warsaw", "Normans", "Nikola_Tesla", "Computational_complexity_theory",
            "Teacher"]


@pytest.fixture(scope="module")
def embedder():
    return Embedder.load()


@pytest.fixture(scope="module")
def squad_kb(tmp_path_factory, embedder):
    rows = [json.loads(line) for line in gzip.open(CORPUS, "rt", encoding="utf-8")]
    assert len(rows) == 48
    base = tmp_path_factory.mktemp("squad")
    (base / "docs").mkdir()
    with gzip.open(base / "docs" / "articles.jsonl.gz", "wt", encoding="utf-8") as f:
        for row in rows:
            if row["id"] in ARTICLES:
                f.write(json.dumps(row) + "\n")
    report = sync(base / "kb", [base / "docs"], embedder=embedder, log=lambda m: None)
    return base, report


def test_real_model_ingests_and_retrieves(squad_kb, embedder):
    base, report = squad_kb
    assert (report.added, report.total_documents) == (6, 6)
    assert report.total_chunks > 100
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        assert kb.store.verify() == []
        hits = kb.search("Which NFL team represented the AFC at Super Bowl 50?", k=3)
        assert hits[0].doc_id == "articles.jsonl.gz#Super_Bowl_50"
        assert "Denver Broncos" in hits[0].text
        assert kb.document_text(hits[0].doc_id)[hits[0].start:hits[0].end] == hits[0].text
        assert kb.search("In what country is Normandy located?", k=1)[0].doc_id == "articles.jsonl.gz#Normans"
        assert kb.search("What is the capital city of Poland?", k=1)[0].doc_id == "articles.jsonl.gz#Warsaw"


def test_chunks_fit_the_model_and_faiss_matches_numpy(squad_kb, embedder):
    base, _ = squad_kb
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        texts = [r[0] for r in kb.store.conn.execute("SELECT text FROM chunks")]
        lengths = [embedder.count_tokens(t) for t in texts]
        assert max(lengths) <= 200 + 2 and min(lengths) > 0  # none truncated by the model (254)
        ids, vecs = kb.store.all_vectors()
        np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        q = embedder.encode(["Tesla's alternating current induction motor"])[0]
        scores = vecs @ q
        held = kb.store.windows(ids.tolist())
        assert held, "no chunk of several paragraphs got window vectors"
        for j, blob in enumerate(held.get(int(i)) for i in ids):
            if blob:  # a chunk of several paragraphs: the mean of its own cosine and the
                # best of its own and its windows' (knowledge/windows.py)
                best = (np.frombuffer(blob, np.float32).reshape(-1, 384) @ q).max()
                scores[j] = (scores[j] + max(scores[j], best)) / 2
        want = ids[np.lexsort((ids, -scores))[:5]].tolist()
        assert [h.chunk_id for h in kb.search_vector(q, 5)] == want


def test_reindex_unchanged_does_no_work(squad_kb, embedder):
    base, _ = squad_kb
    r = sync(base / "kb", [base / "docs"], embedder=embedder, log=lambda m: None)
    assert (r.added, r.updated, r.removed, r.unchanged, r.chunks_added) == (0, 0, 0, 6, 0)


def test_shipped_default_reader_answers_with_citations(squad_kb, embedder, capsys):
    from rag.cli import main
    from rag.readers import DEFAULT_READER

    assert DEFAULT_READER is not None and (DEFAULT_READER / "rag_reader.json").exists()
    base, _ = squad_kb
    code = main(["ask", "Which NFL team represented the AFC at Super Bowl 50?", "--kb",
                 str(base / "kb"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["answer"]
    own_k = json.loads((DEFAULT_READER / "rag_reader.json").read_text())["k"]
    assert len(result["citations"]) == own_k  # the reader's own k
    assert "articles.jsonl.gz#Super_Bowl_50" in {c["doc_id"] for c in result["citations"]}
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        for c in result["citations"]:
            text = kb.document_text(c["doc_id"])
            assert text[c["start"]:c["end"]] == c["text"]
            if c["answer_start"] is not None:
                assert text[c["answer_start"]:c["answer_end"]].lower() == result["answer"].lower()


def test_shipped_reader_abstains_when_the_kb_cannot_answer(squad_kb, capsys):
    """A question nothing in the knowledge base is about is declined (by the reader's rule
    over confidence, similarity and coverage; or by the similarity guard, or by the reader's
    no-answer option after reading); one it is about is answered; with both thresholds
    given as 0 by hand (which replaces the rule) the reader answers anything."""
    from rag.cli import main
    from rag.readers import DEFAULT_READER, NOT_FOUND

    config = json.loads((DEFAULT_READER / "rag_reader.json").read_text())
    floor, threshold = config["abstain_similarity"], config["abstain_threshold"]
    assert floor is not None or threshold is not None
    base, _ = squad_kb
    answers = {}
    for q in ["How long should sourdough bread proof before baking?",
              "Which NFL team represented the AFC at Super Bowl 50?"]:
        assert main(["ask", q, "--kb", str(base / "kb"), "--json"]) == 0
        answers[q] = json.loads(capsys.readouterr().out)
    off, on = answers.values()
    assert off["abstained"] and off["answer"] == NOT_FOUND and len(off["citations"]) > 0
    if config.get("abstain_rule"):  # read, and the rule weighed it as not answerable
        from rag.abstention import AbstainRule, coverage

        from knowledge.kb import KnowledgeBase

        rule = AbstainRule.from_dict(config["abstain_rule"])
        with KnowledgeBase.open(base / "kb") as kb:  # a relative rule reads the KB's anchor
            anchor = kb.similarity_anchor() if rule.relative else None
        for (q, got), declined in zip(answers.items(), [True, False]):
            cov = coverage(q, [type("P", (), {"text": c["text"]}) for c in got["citations"]])
            assert rule.declines(got["confidence"], got["similarity"], cov, anchor) == declined
    elif off["confidence"] is None:  # declined before reading
        assert off["similarity"] < floor
    else:  # read, and the reader found no answer in the passages
        assert off["confidence"] < threshold
    assert not on["abstained"] and on["answer"] != NOT_FOUND
    assert main(["ask", "How long should sourdough bread proof before baking?", "--kb",
                 str(base / "kb"), "--json", "--abstain-similarity", "0",
                 "--abstain-threshold", "0"]) == 0
    assert not json.loads(capsys.readouterr().out)["abstained"]  # 0: never


MANUAL = {
    "frob.md": "# Configuration\n\nThe frob tool reads its settings from ~/.frobrc at start-up. "
               "Each line of ~/.frobrc holds one option, such as --colour=auto or --jobs=4. "
               "To build with four jobs at once, type:\n\n    $ frob build --jobs=4\n\n"
               "The cache lives in /var/cache/frob/ and is removed by frob clean --all.\n",
    "net.md": "# Networking\n\nfrob fetches sources over HTTPS from the mirror named in "
              "FROB_MIRROR (default https://mirror.example.org/frob/). Set FROB_PROXY=host:port "
              "to go through a proxy; frob --offline never opens a connection.\n",
}


def test_on_a_manual_a_factoid_is_answered_with_its_excerpt_the_span_marked(
        squad_kb, embedder, tmp_path, capsys):
    """Where the knowledge base reads as technical documentation (its share of paths,
    options and calls, knowledge/profile.py), `auto` answers a factoid with the excerpt of
    whole units it stands in (rag/forms.py ``EXCERPT``) and keeps the short span in
    ``short``; over encyclopedia text the answer is the short span, as before;
    ``--answer-form short`` gives the span anywhere."""
    from conftest import write_corpus
    from rag.cli import main

    sync(tmp_path / "kb", [write_corpus(tmp_path / "docs", MANUAL)], embedder=embedder,
         log=lambda m: None)
    base, _ = squad_kb
    with KnowledgeBase.open(tmp_path / "kb", embedder=embedder) as kb:
        assert kb.technical_share() >= 0.015
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        assert kb.technical_share() < 0.015
    question = "Which file does frob read its settings from?"
    for form in ([], ["--answer-form", "short"]):
        assert main(["ask", question, "--kb", str(tmp_path / "kb"), "--json", *form]) == 0
        got = json.loads(capsys.readouterr().out)
        assert not got["abstained"] and "~/.frobrc" in got["short"]
        if form:
            assert got["answer"] == got["short"] and got["form"] == "span"
        else:  # the excerpt around the span: whole units, "# Configuration" left out
            body = MANUAL["frob.md"].split("\n\n", 1)[1].strip()
            assert got["answer"] == body and got["form"] == "steps"
    assert main(["ask", question, "--kb", str(tmp_path / "kb")]) == 0
    lines = capsys.readouterr().out.splitlines()  # the excerpt as it stands, its span marked
    assert lines[0] == "The frob tool reads its settings from ~/.frobrc at start-up. Each line " \
                       "of ~/.frobrc holds one option, such as --colour=auto or --jobs=4. To " \
                       "build with four jobs at once, type:"
    assert lines[2] == "    $ frob build --jobs=4"
    marked = next(line for line in lines if line.startswith("  → "))
    assert "~/.frobrc" in marked
    assert main(["ask", "How do I build with four jobs at once?", "--kb",
                 str(tmp_path / "kb")]) == 0  # a how-to's excerpt, no fragment beside it
    out = capsys.readouterr().out
    assert "frob build --jobs=4" in out and "  → " not in out
    assert main(["ask", "Which NFL team represented the AFC at Super Bowl 50?", "--kb",
                 str(base / "kb"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["form"] == "span" and got["answer"] == got["short"]


def test_a_threshold_given_by_hand_replaces_the_rule_and_keeps_the_floor():
    from rag.cli import build_parser
    from rag.commands import open_reader
    from rag.readers import DEFAULT_READER

    config = json.loads((DEFAULT_READER / "rag_reader.json").read_text())
    reader = open_reader(build_parser().parse_args(["ask", "q", "--abstain-threshold", "0.5"]))
    assert reader.config.abstain_rule is None and reader.config.abstain_threshold == 0.5
    assert reader.config.abstain_similarity == config["abstain_similarity"]
    reader = open_reader(build_parser().parse_args(["ask", "q"]))
    assert reader.config.abstain_rule == config["abstain_rule"]


def test_shipped_reader_answers_test_split_questions(squad_kb, capsys):
    """Questions on an article of SQuAD-dev-open's test split (never trained on) are
    answered with the right span, each a quotation of its cited passage."""
    from rag.cli import main

    base, _ = squad_kb
    cases = {"Who was the Norse leader?": "Rollo",
             "From which countries did the Norse originate?": "Norway",
             "Who did Rollo sign the treaty of Saint-Clair-sur-Epte with?": "Charles III",
             "In what year was Roger II made king?": "1130"}
    right = 0
    for q, want in cases.items():
        assert main(["ask", q, "--kb", str(base / "kb"), "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        right += want.lower() in got["answer"].lower()
        cited = [c for c in got["citations"] if c["answer_start"] is not None]
        if not got["abstained"]:
            assert cited, got
    assert right >= 3, right


def test_reader_and_embedder_hold_the_shared_minilm_once(squad_kb, embedder):
    from rag.pipeline import Pipeline
    from rag.readers import DEFAULT_READER, load_reader
    from rag.retrieval import Retriever

    base, _ = squad_kb
    reader = load_reader(str(DEFAULT_READER), precision=embedder.precision)
    question = "Where did Super Bowl 50 take place?"
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        alone = Pipeline(Retriever(kb, "lexical"), reader).ask(question)  # lexical: no sharing
        mine = reader.model.encoder.embeddings.word_embeddings.weight
        assert mine is not embedder.transformer().embeddings.word_embeddings.weight
        Pipeline(Retriever(kb, "hybrid"), reader)
        params = dict(embedder.transformer().named_parameters())
        for name, base_name in reader.config.from_base.items():
            assert reader.model.get_parameter(name) is params[base_name], name
        head = reader.model.decoder.cls.predictions.decoder.weight
        assert head is params["embeddings.word_embeddings.weight"]  # still tied
        again = Pipeline(Retriever(kb, "lexical"), reader).ask(question)
    assert (again.answer, again.confidence) == (alone.answer, alone.confidence)


def test_extractive_reading_needs_no_decoder_and_reads_as_transformers_would(squad_kb,
                                                                              embedder):
    """The shipped reader answers extractively with its span encoder (plain torch, the
    embedder's embedding tables) and never builds its decoder; the whole model, built when
    asked for, holds the same tensors and computes the same states and span logits."""
    from rag.pipeline import Pipeline
    from rag.readers import DEFAULT_READER, load_reader
    from rag.readers import spans as sp
    from rag.retrieval import Retriever

    base, _ = squad_kb
    reader = load_reader(str(DEFAULT_READER), precision=embedder.precision)
    question = "Which NFL team represented the AFC at Super Bowl 50?"
    with KnowledgeBase.open(base / "kb", embedder=embedder) as kb:
        pipeline = Pipeline(Retriever(kb, "hybrid"), reader, k=3)
        answer = pipeline.ask(question)
        assert "Denver Broncos" in answer.answer
        assert reader._model is None and reader._tokenizer is None  # no decoder, no transformers
        assert not any(n.startswith("decoder.") for n, _ in reader.span_encoder.named_parameters())
        params = dict(embedder.transformer().named_parameters())
        for name, base_name in reader.config.from_base.items():
            if name.startswith("encoder."):
                assert reader.span_encoder.get_parameter(name) is params[base_name], name

        whole, passages = reader.model, [list(answer.retrieved[:3])]  # built now
        assert whole.span.weight.data_ptr() == reader.span_encoder.span.weight.data_ptr()
        fmt, limit = reader.config.input_format, reader.config.max_passage_tokens
        enc = sp.encode_inputs(reader.tokenizer, fmt, [question], passages, limit)
        ours = sp.encode_inputs(reader.span_encoder.tokenizer, fmt, [question], passages, limit)
        assert all(torch.equal(ours[k], enc[k]) for k in ("input_ids", "attention_mask", "char"))
        with torch.inference_mode():
            theirs = whole.get_encoder()(input_ids=enc["input_ids"],
                                         attention_mask=enc["attention_mask"]).last_hidden_state
            mine = reader.span_encoder.states(enc["input_ids"], enc["attention_mask"])
            assert torch.equal(mine, theirs)
            assert all(torch.equal(a, b) for a, b in zip(reader.span_encoder.span_logits(mine),
                                                           whole.span_logits(theirs)))
        assert pipeline.ask(question).answer == answer.answer


def test_ask_imports_only_what_it_uses(squad_kb):
    """A one-shot `rag ask` (the shipped reader, extractive) loads neither transformers nor
    sentence-transformers, scikit-learn, scipy or torch's compiler: seconds of start-up."""
    import subprocess
    import sys

    base, _ = squad_kb
    heavy = ["sentence_transformers", "sklearn", "scipy", "transformers", "torch._dynamo",
             "sympy", "pandas"]
    code = ("import json, sys; from rag.cli import main; "
            f"sys.argv = ['rag', 'ask', 'Who won Super Bowl 50?', '--kb', {str(base / 'kb')!r}, "
            "'--json']; code = main(); "
            f"print(json.dumps([code, sorted(set({heavy!r}) & set(sys.modules))]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [0, []]
    assert json.loads("\n".join(out.stdout.splitlines()[:-1]))["answer"]
