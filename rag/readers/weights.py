"""How the project's reader stores its weights and reads them back (torch and safetensors only).

A reader directory holds only its trained tensors, matrices as int8 with one fp32 scale per
row (half the bytes of bf16), optionally with a low-rank bf16 correction of their rounding
error (a fine-tune's change is often smaller than a row's int8 step: int8 alone rounds it
away), and the rest as saved; the frozen ones are the base model's, named in ``from_base``
(reader parameter -> base parameter). ``read_weights`` reads the
tensors a caller needs and no others, each cast once to the dtype it will run in;
``share_parameters`` then points the frozen ones at the embedder's copy of the base.

Example: ``read_weights(Path("rag/models/reader"), "all-MiniLM-L6-v2", from_base,
lambda name: name.startswith("encoder."), torch.bfloat16)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import nn

from knowledge.errors import UsageError

SCALE = ":int8-row-scale"  # key suffix of an int8 matrix's per-row scales
LOW_A, LOW_B = ":int8-lowrank-a", ":int8-lowrank-b"  # its rounding error ~ a @ b
PARTS = (SCALE, LOW_A, LOW_B)


def quantize_int8(tensors: dict, rank: int = 0) -> dict:
    """Matrices as int8 with one fp32 scale per row (absmax / 127), the rest as they are:
    half the bytes of bf16, for storage only (``dequantize`` restores bf16 at load). With
    ``rank``, each matrix also keeps the best rank-``rank`` approximation of its rounding
    error (two bf16 factors, ``rank * (rows + columns)`` values)."""
    out = {}
    for name, t in tensors.items():
        if t.ndim == 2 and t.numel() >= 4096 and t.is_floating_point():
            scale = t.float().abs().amax(1, keepdim=True).clamp(min=1e-12) / 127
            q = (t.float() / scale).round().clamp(-127, 127)
            out[name] = q.to(torch.int8)
            out[name + SCALE] = scale.contiguous()
            if rank > 0:
                u, s, vh = torch.linalg.svd(t.float() - q * scale, full_matrices=False)
                out[name + LOW_A] = (u[:, :rank] * s[:rank]).to(torch.bfloat16).contiguous()
                out[name + LOW_B] = vh[:rank].to(torch.bfloat16).contiguous()
        else:
            out[name] = t
    return out


def dequantize(state: dict) -> dict:
    """The inverse of ``quantize_int8`` (bf16 matrices); other tensors pass through."""
    out = {}
    for name, t in state.items():
        if name.endswith(PARTS):
            continue
        scale = state.get(name + SCALE)
        if scale is None:
            out[name] = t
            continue
        w = t * scale  # (in fp32)
        if name + LOW_A in state:
            w = w + state[name + LOW_A].float() @ state[name + LOW_B].float()
        out[name] = w.to(torch.bfloat16)
    return out


def read_weights(model_dir: Path, base_model: str, from_base: dict,
                 wanted: Callable[[str], bool], dtype: torch.dtype,
                 known: dict | None = None) -> dict:
    """{parameter name: tensor in ``dtype``} for every wanted parameter of the reader in
    ``model_dir``: trained ones from its file (int8 restored to bf16 first, as at training
    time), frozen ones from the base model's file, only those named. ``known`` tensors (by
    parameter name) are taken as they are instead of being read."""
    from safetensors import safe_open

    known = known or {}
    out = {n: t for n, t in known.items() if wanted(n)}
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
        for name in names:
            if name.endswith(PARTS) or name in out or not wanted(name):
                continue
            t = f.get_tensor(name)
            if name + SCALE in names:
                t = dequantize({name: t, **{name + p: f.get_tensor(name + p)
                                            for p in PARTS if name + p in names}})[name]
            out[name] = t.to(dtype)
    frozen = {n: b for n, b in from_base.items() if wanted(n) and n not in out}
    if frozen:
        from knowledge.embedding import resolve_model

        with safe_open(str(resolve_model(base_model) / "model.safetensors"), framework="pt") as f:
            have = set(f.keys())
            for name, base_name in frozen.items():
                if base_name not in have:
                    raise UsageError(f"reader {model_dir}: base model {base_model!r} lacks "
                                     f"{base_name}; install the base it was trained on")
                out[name] = f.get_tensor(base_name).to(dtype)
    return out


def share_parameters(model: nn.Module, from_base: dict, base: nn.Module) -> int:
    """Point ``model``'s frozen parameters at ``base``'s, a loaded copy of the same base
    model (the embedder's), so that the process holds those weights once; names of
    ``from_base`` that ``model`` lacks (a span encoder has no decoder) are left out. Shares
    all or nothing: 0 when any name, shape or dtype differs. How many were shared."""
    theirs, mine = dict(base.named_parameters()), dict(model.named_parameters())
    pairs = []
    for name, base_name in from_base.items():
        if name not in mine:
            continue
        other = theirs.get(base_name)
        if other is None or other.shape != mine[name].shape or other.dtype != mine[name].dtype:
            return 0
        pairs.append((name, other))
    for name, other in pairs:
        owner, _, leaf = name.rpartition(".")
        setattr(model.get_submodule(owner), leaf, other)
    return len(pairs)
