"""Tiny randomly initialised readers for plumbing tests, with the packaged MiniLM's
WordPiece tokenizer (no download needed)."""
from __future__ import annotations

from pathlib import Path

from knowledge.embedding import resolve_model


def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model("all-MiniLM-L6-v2"))


def tiny_t5(path: Path, seed: int = 0, d_model: int = 32) -> Path:
    """A 2-layer T5 with a BERT tokenizer, saved as safetensors at ``path``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = minilm_tokenizer()
    torch.manual_seed(seed)
    config = T5Config(vocab_size=tok.vocab_size, d_model=d_model, d_ff=2 * d_model, d_kv=16,
                      num_layers=2, num_decoder_layers=2, num_heads=2,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                      decoder_start_token_id=tok.pad_token_id)
    model = T5ForConditionalGeneration(config)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def tiny_gpt2(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = minilm_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=2,
                        n_positions=1024, bos_token_id=tok.cls_token_id,
                        eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    GPT2LMHeadModel(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path
