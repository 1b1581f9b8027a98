"""Model name resolution: local path -> packaged model -> Hugging Face cache -> clear error."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from knowledge.embedding import Embedder, resolve_model, weights_hash
from knowledge.plain_encoder import PlainEncoder, common_shape
from knowledge.errors import UsageError


def test_local_directory_wins(tmp_path):
    assert resolve_model(str(tmp_path)) == tmp_path


def test_packaged_model_by_short_and_hub_name():
    path = resolve_model("all-MiniLM-L6-v2")
    assert (path / "model.safetensors").is_file()
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == path


def test_unknown_name_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UsageError, match="unknown embedder 'no-such/model'.*pass a local model "
                                         "directory$"):
        resolve_model("no-such/model")
    with pytest.raises(UsageError, match="not a model directory"):
        resolve_model("./not/here")


def test_hub_cache_is_used(tmp_path):
    snap = tmp_path / "models--someone--tiny-model" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--someone--tiny-model" / "refs").mkdir()
    (tmp_path / "models--someone--tiny-model" / "refs" / "main").write_text("abc123")
    code = "from knowledge.embedding import resolve_model; print(resolve_model('someone/tiny-model'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1",
                              "PATH": "/usr/bin:/bin"})
    assert Path(out.stdout.strip()) == snap, out.stderr


def test_weights_hash_changes_with_the_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"one")
    first = weights_hash(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"two")
    assert weights_hash(tmp_path) != first


# distinct lengths, so that rag and sentence-transformers sort them into the same batches
TEXTS = ["Which NFL team represented the AFC at Super Bowl 50?", "  padded  ", "x",
         "a long passage, cut at 256 tokens " * 60, "Ünïcödé — text", "", "北京是中国的首都。",
         "emoji 🙂 and\ttabs\nand lines", "Crème brûlée, ﬁ ligatures and Ⅻ numerals",
         "short", "medium length text about the Amazon rainforest and its many rivers"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_vectors_are_sentence_transformers_own(precision):
    """rag's encoder (knowledge/bert.py, no sentence-transformers or transformers) gives
    sentence-transformers' vectors on the same texts in the same batches, in fp32 and in
    bf16 (the precision `auto` picks on this CPU): what `rag index` stores and what a query
    is compared with are one computation."""
    import torch
    from sentence_transformers import SentenceTransformer

    assert len({len(t) for t in TEXTS}) == len(TEXTS)
    emb = Embedder.load(precision=precision)
    assert type(emb.model).__name__ == "PlainEncoder"
    assert type(emb.transformer()).__name__ == "Bert"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    st = SentenceTransformer(str(resolve_model("all-MiniLM-L6-v2")), device="cpu").to(dtype)
    assert emb.transformer().dtype == dtype
    assert emb.max_tokens == st.max_seq_length - 2
    assert [emb.count_tokens(t) for t in TEXTS] == [len(st.tokenizer.tokenize(t)) for t in TEXTS]
    for batch in (4, len(TEXTS)):
        theirs = torch.nn.functional.normalize(st.encode(
            TEXTS, batch_size=batch, convert_to_tensor=True).float(), dim=-1).numpy()
        np.testing.assert_allclose(emb.encode(TEXTS, batch_size=batch), theirs, rtol=0,
                                   atol=1e-5)
        np.testing.assert_allclose(emb.encode_queries(TEXTS, batch_size=batch), theirs, rtol=0,
                                   atol=1e-5)


def test_batches_embedded_in_parallel_keep_their_order_and_values(monkeypatch):
    """Many batches go to several threads at once, one torch thread each: every text gets
    its own vector, the same as embedded alone; torch's thread count is restored, also when
    a batch fails."""
    import threading

    import torch

    texts = [("word " * (i * 7 % 60 + 1)) + f"item {i}" for i in range(50)]
    emb = Embedder.load(precision="fp32")
    alone = np.concatenate([emb.encode([t]) for t in texts])
    seen, forward = set(), emb._forward

    def spy(batch):
        seen.add((threading.current_thread().name.split("_")[0], torch.get_num_threads()))
        return forward(batch)

    monkeypatch.setattr(emb, "_forward", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # (2 workers even on a 1-core runner)
    try:
        together = emb.encode(texts, batch_size=4)
        assert torch.get_num_threads() == 2
        assert seen == {("encode", 1)}  # (in the pool, on one torch thread each)
        np.testing.assert_allclose(together, alone, atol=1e-5)

        monkeypatch.setattr(emb, "_forward", lambda batch: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            emb.encode(texts, batch_size=4)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_query_side_imports_neither_sentence_transformers_nor_transformers(tmp_path):
    """What keeps `rag ask` starting fast: opening a KB and embedding a query leaves
    sentence-transformers (with scikit-learn and scipy), transformers and torch's compiler
    unimported."""
    from knowledge.sync import sync

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Cats sleep sixteen hours a day.")
    sync(tmp_path / "kb", [tmp_path / "docs"], embedder=Embedder.load())
    code = ("import sys; from knowledge.kb import KnowledgeBase; "
            f"kb = KnowledgeBase.open({str(tmp_path / 'kb')!r}); "
            "print(kb.search('how long do cats sleep', 1)[0].text); "
            "print(sorted({k for k in sys.modules} & {'sentence_transformers', 'sklearn', "
            "'scipy', 'transformers', 'torch._dynamo'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["Cats sleep sixteen hours a day.", "[]"]


def write_st_config(path: Path, modules: list[str], max_seq_length: int, pooling: dict):
    """A sentence-transformers folder's configuration (the layout its models ship in)."""
    (path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": "" if m == "Transformer" else f"{i}_{m}",
          "type": f"sentence_transformers.models.{m}"} for i, m in enumerate(modules)]))
    (path / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": max_seq_length, "do_lower_case": False}))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))


@pytest.mark.parametrize("change", [
    {},  # the common shape: accepted, on to loading the model
    {"modules": ["Transformer", "Pooling", "Dense", "Normalize"]},
    {"pooling": "pooling_mode_max_tokens"},
    {"pool_extra": {"include_prompt": False}},  # (a prefix would be pooled over)
])
def test_other_model_shapes_go_through_sentence_transformers(tmp_path, change):
    """A model the plain encoder would get wrong (a Dense layer, max pooling, prompts left
    out of pooling) is left to sentence-transformers. (Prompts are not: Embedder puts them on the texts itself.)"""
    write_st_config(tmp_path, change.get("modules", ["Transformer", "Pooling", "Normalize"]),
                    128, {"word_embedding_dimension": 8,
                          change.get("pooling", "pooling_mode_mean_tokens"): True,
                          **change.get("pool_extra", {})})
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": change.get("prompts", {})}))
    if not change:
        assert common_shape(tmp_path) == (128, "mean", True)
    else:
        assert common_shape(tmp_path) is None
        assert PlainEncoder.load(tmp_path) is None


def test_a_model_of_another_type_runs_with_transformers_alone(tmp_path):
    """The common shape over a transformer other than BERT (a tiny DistilBERT here): the
    plain encoder runs it through transformers, with sentence-transformers' vectors."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import DistilBertConfig, DistilBertModel

    from tiny_models import minilm_tokenizer

    tok = minilm_tokenizer()
    torch.manual_seed(0)
    DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size, dim=32, hidden_dim=64,
                                     n_layers=2, n_heads=2)).save_pretrained(tmp_path / "st")
    tok.save_pretrained(tmp_path / "st")
    write_st_config(tmp_path / "st", ["Transformer", "Pooling", "Normalize"], 64,
                    {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True})
    emb = Embedder.load(str(tmp_path / "st"), precision="fp32")
    assert type(emb.model).__name__ == "PlainEncoder"
    assert type(emb.transformer()).__name__ == "DistilBertModel"
    st = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    np.testing.assert_allclose(emb.encode(TEXTS, batch_size=4),
                               st.encode(TEXTS, batch_size=4), rtol=0, atol=1e-5)


def test_prefixes_come_from_the_models_prompts_else_its_family(tmp_path):
    """E5 wants "query: "/"passage: ", BGE-zh an instruction on queries only; a model's
    own prompts win; MiniLM has none and reads English (Latin script)."""
    from knowledge.embedding import family

    assert family("intfloat/multilingual-e5-small") == (("query: ", "passage: "), ("*",))
    assert family("BAAI/bge-small-zh-v1.5")[0][1] == ""
    assert family("BAAI/bge-small-zh-v1.5")[1] == ("Hani", "Latn")
    assert family("all-MiniLM-L6-v2") == (("", ""), ("Latn",))
    assert family("my-own-model") == (("", ""), None)
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "Q: ", "document": "D: "}}))
    assert family("my-own-model", tmp_path)[0] == ("Q: ", "D: ")
