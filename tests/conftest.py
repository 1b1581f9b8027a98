"""Shared fixtures: a deterministic fake embedder and small document folders."""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TOKEN = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]|\w+|[^\w\s]", re.UNICODE)  # CJK: 1 char each


class FakeEmbedder:
    """Bag of hashed tokens: similar texts get similar vectors; fast and deterministic."""

    name = "fake-hash-64"

    def __init__(self, dim: int = 64, max_tokens: int = 254):
        self.dim = dim
        self.max_tokens = max_tokens
        self.calls = 0

    def identity(self) -> dict:
        return {"name": self.name, "weights_sha256": "f" * 64, "dim": self.dim,
                "max_tokens": self.max_tokens}

    def count_tokens(self, text: str) -> int:
        return len(TOKEN.findall(text))

    def _token_vec(self, tok: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(tok.lower().encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            v = sum((self._token_vec(tok) for tok in TOKEN.findall(t)), np.zeros(self.dim))
            out[i] = v / (np.linalg.norm(v) or 1.0)
        return out

    encode_queries = encode


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


def kind_at(doc, words: str, length: int | None = None) -> str:
    """The region kind ("toc", "index" or "") of ``doc``'s text where ``words`` first
    stand, over ``length`` characters (their own length by default)."""
    at = doc.text.index(words)
    return doc.kind_of(at, at + (len(words) if length is None else length))


def write_corpus(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root


ANIMALS = {
    "cats.md": "# Cats\n\nCats are small carnivorous mammals kept as pets.\n\n## Food\n\n"
               "Cats eat fish and meat twice a day.\n",
    "dogs.txt": "Dogs are loyal animals. Dogs love long walks in the park.\n",
    "birds/robin.txt": "The robin is a bird that sings at dawn in spring.\n",
    "birds/crow.txt": "Crows are clever black birds that use tools.\n",
    "fish.jsonl": '{"id": "salmon", "title": "Salmon", "text": "Salmon swim upstream to spawn.", '
                  '"habitat": "river"}\n'
                  '{"id": "shark", "title": "Shark", "text": "Sharks are fish with cartilage '
                  'skeletons.", "habitat": "sea"}\n',
}


@pytest.fixture
def animals(tmp_path) -> Path:
    return write_corpus(tmp_path / "animals", ANIMALS)


@pytest.fixture
def served_kb(animals, tmp_path) -> Path:
    """A knowledge base of the animals, made with the fake embedder (for `rag serve` tests)."""
    from knowledge import sync

    sync(tmp_path / "kb", [animals], embedder=FakeEmbedder(), log=lambda m: None)
    return tmp_path / "kb"


CAPITALS = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
            ("Kenya", "Nairobi"), ("Peru", "Lima"), ("Egypt", "Cairo"), ("Chile", "Santiago")]
# reader training settings that finish in seconds on the capitals fixture
FAST_TRAINING = {"batch_size": 4, "max_passage_tokens": 48, "bf16": "off", "progress": False,
                 "lr": 1e-3, "warmup": 0.1}


def capitals_fixture(base: Path) -> tuple[Path, Path]:
    """A knowledge base of eight one-sentence country documents (fake embedder) under
    ``base / "kb"`` and a train-split QA set asking for each capital: (base, QA set path)."""
    import json

    from knowledge import sync

    docs = {f"{c}.txt": f"{c} is a country. The capital of {c} is {city}." for c, city in CAPITALS}
    write_corpus(base / "docs", docs)
    sync(base / "kb", [base / "docs"], embedder=FakeEmbedder(), log=lambda m: None)
    qa = base / "qa.jsonl"
    qa.write_text("".join(json.dumps({"id": c, "question": f"What is the capital of {c}?",
                                      "answers": [city], "gold_ids": [f"{c}.txt"],
                                      "split": "train"}) + "\n" for c, city in CAPITALS))
    return base, qa
