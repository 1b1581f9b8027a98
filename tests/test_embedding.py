"""Model name resolution: local path -> packaged model -> Hugging Face cache -> clear error."""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from knowledge.embedding import resolve_model, weights_hash
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
