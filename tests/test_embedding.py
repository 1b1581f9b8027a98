"""Model name resolution: local path -> packaged model -> Hugging Face cache -> clear error."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from knowledge.embedding import Embedder, PlainEncoder, resolve_model, weights_hash
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


def test_query_encoder_matches_sentence_transformers():
    """`for_queries` runs the model without sentence-transformers: same vectors, same limits."""
    texts = ["Which NFL team represented the AFC at Super Bowl 50?", "  padded  ", "x",
             "a long passage " * 200, "Ünïcödé — text", ""]
    full, plain = Embedder.load(precision="fp32"), Embedder.load(precision="fp32",
                                                                   for_queries=True)
    assert type(plain.model).__name__ == "PlainEncoder"
    assert (plain.dim, plain.max_tokens) == (full.dim, full.max_tokens)
    assert plain.count_tokens(texts[0]) == full.count_tokens(texts[0])
    np.testing.assert_allclose(plain.encode(texts, batch_size=4), full.encode(texts), atol=1e-5)
    assert plain.transformer() is plain.model.auto_model
    full, plain = Embedder.load(precision="bf16"), Embedder.load(precision="bf16",
                                                                   for_queries=True)
    cosines = (plain.encode(texts, batch_size=4) * full.encode(texts)).sum(1)
    assert cosines.min() > 0.999  # bf16 rounds differently on each side


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


def test_query_side_does_not_import_sentence_transformers(tmp_path):
    """What keeps `rag ask` starting fast: opening a KB and embedding a query leaves
    sentence-transformers (with scikit-learn and scipy) unimported."""
    from knowledge.sync import sync

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Cats sleep sixteen hours a day.")
    sync(tmp_path / "kb", [tmp_path / "docs"], embedder=Embedder.load())
    code = ("import sys; from knowledge.kb import KnowledgeBase; "
            f"kb = KnowledgeBase.open({str(tmp_path / 'kb')!r}); "
            "print(kb.search('how long do cats sleep', 1)[0].text); "
            "print(sorted({k.split('.')[0] for k in sys.modules} & {'sentence_transformers', "
            "'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines() == ["Cats sleep sixteen hours a day.", "[]"]


@pytest.mark.parametrize("change", [
    {},  # the common shape: accepted, on to loading the model
    {"modules": ["Transformer", "Pooling", "Dense", "Normalize"]},
    {"pooling": "pooling_mode_max_tokens"},
])
def test_other_model_shapes_go_through_sentence_transformers(tmp_path, change, monkeypatch):
    """A model the plain encoder would get wrong (a Dense layer, max pooling) is left to
    sentence-transformers. (Prompts are not: Embedder puts them on the texts itself.)"""
    modules = change.get("modules", ["Transformer", "Pooling", "Normalize"])
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": "" if m == "Transformer" else f"{i}_{m}",
          "type": f"sentence_transformers.models.{m}"} for i, m in enumerate(modules)]))
    (tmp_path / "sentence_bert_config.json").write_text('{"max_seq_length": 128}')
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 8, change.get("pooling", "pooling_mode_mean_tokens"): True}))
    (tmp_path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": change.get("prompts", {})}))
    if not change:
        def loading(*args, **kwargs):
            raise RuntimeError("past the shape check")

        import transformers

        monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", loading)
        with pytest.raises(RuntimeError, match="past the shape check"):
            PlainEncoder.load(tmp_path)
    else:
        assert PlainEncoder.load(tmp_path) is None


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
