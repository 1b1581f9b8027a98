"""A model's ``tokenizer.json`` run by the ``tokenizers`` library, without transformers.

transformers' fast tokenizers are this same Rust tokenizer behind a large Python class that
imports transformers; the query path needs two of its calls: a padded, truncated batch as
tensors (with character offsets for the span reader) and ``tokenize``. They take
transformers' argument names, so the code that calls them runs with either tokenizer, and
give the same ids, masks, offsets and tokens (tests/test_bert.py).

Each truncation length gets its own copy of the tokenizer, set up once and never changed
afterwards: changing a tokenizer's settings while another thread encodes with it fails in
the library ("Already borrowed"), and the embedder encodes from several threads.

Example: ``FastTokenizer.load(model_dir)(["hello"], max_length=256, truncation=True,
padding=True, return_tensors="pt")["input_ids"]``.
"""
from __future__ import annotations

import threading
from pathlib import Path


class FastTokenizer:
    """Owns one file's ``tokenizers.Tokenizer`` copies: one per truncation length, and a
    plain one for ``tokenize``. The first copy is the one parsed at load (a query needs
    one: parsing a tokenizer.json takes 20-50 ms); later ones are parsed when first used."""

    padding_side = "right"

    def __init__(self, tokenizer, path: Path, pad_token: str = "[PAD]"):
        self.pad_token_id = tokenizer.token_to_id(pad_token)
        if self.pad_token_id is None:
            raise ValueError(f"tokenizer has no padding token {pad_token!r}")
        self.pad_token = pad_token
        self._path = path
        self._spare = tokenizer  # (parsed, not yet given its settings)
        self._copies: dict = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: Path) -> "FastTokenizer | None":
        """The tokenizer in ``model_dir``, or None when it has no tokenizer.json or one with
        a padding token other than BERT's (the caller then loads transformers')."""
        from tokenizers import Tokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.is_file():
            return None
        try:
            return cls(Tokenizer.from_file(str(path)), path)
        except Exception:  # (the library raises a bare Exception for a file it cannot read)
            return None

    def _copy(self, max_length: int | None, pad: bool):
        """The copy that truncates to ``max_length`` (None: never) and pads to the longest
        (``pad``), set up once; a saved tokenizer.json can carry the settings of the last
        call it was saved after, so each starts from none."""
        key = (max_length, pad)
        with self._lock:
            tok = self._copies.get(key)
            if tok is None:
                from tokenizers import Tokenizer

                tok, self._spare = self._spare or Tokenizer.from_file(str(self._path)), None
                tok.no_truncation()
                tok.no_padding()
                if max_length is not None:
                    tok.enable_truncation(max_length)
                if pad:
                    tok.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token)
                self._copies[key] = tok
            return tok

    def __call__(self, texts, max_length: int | None = None, truncation: bool = False,
                 padding=False, return_offsets_mapping: bool = False,
                 return_tensors: str | None = None, add_special_tokens: bool = True) -> dict:
        """transformers' call for the case used here: a list of texts, padded to the
        longest, as tensors."""
        if (isinstance(texts, str) or return_tensors != "pt" or padding not in (True, "longest")
                or not add_special_tokens):
            raise ValueError("FastTokenizer encodes a list of texts as padded tensors only")
        import torch

        encs = self._copy(max_length if truncation else None, True).encode_batch(list(texts))
        out = {"input_ids": torch.tensor([e.ids for e in encs], dtype=torch.long),
               "attention_mask": torch.tensor([e.attention_mask for e in encs],
                                              dtype=torch.long)}
        if return_offsets_mapping:
            out["offset_mapping"] = torch.tensor([e.offsets for e in encs], dtype=torch.long)
        return out

    def tokenize(self, text: str) -> list[str]:
        return self._copy(None, False).encode(text, add_special_tokens=False).tokens
