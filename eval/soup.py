"""Average the trained weights of several training checkpoints (or reader directories) of
one run into a reader directory: a "model soup" / stochastic weight average, which often
reads better than any single point of a noisy curve.

    .venv/bin/python eval/soup.py --like runs/reader --out runs/reader-soup \
        runs/snaps/state-5500.safetensors runs/snaps/state-5750.safetensors ...

``--like`` gives the reader directory whose config, tokenizer and calibration are copied
(the trained parameter names must match). Checkpoint files hold ``model/NAME`` tensors
(rag train's checkpoints); reader directories hold ``NAME`` in model.safetensors.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from rag.readers.weights import dequantize, quantize_int8


def trained(path: Path) -> dict:
    if path.is_dir():
        return dequantize(load_file(str(path / "model.safetensors")))
    return {k[len("model/"):]: v for k, v in load_file(str(path)).items()
            if k.startswith("model/")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("points", nargs="+", type=Path)
    ap.add_argument("--like", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--int8", action="store_true",
                    help="store matrices as int8 with per-row scales (half the size)")
    ap.add_argument("--rank", type=int, default=0,
                    help="with --int8: keep a rank-R correction of each matrix's rounding "
                         "error (a small fine-tune's change, which int8 alone rounds away)")
    args = ap.parse_args()
    like = dequantize(load_file(str(args.like / "model.safetensors")))
    total = None
    for p in args.points:
        t = trained(p)
        if set(t) != set(like):
            raise SystemExit(f"{p}: its trained parameters differ from {args.like}'s")
        total = {k: v.float() for k, v in t.items()} if total is None else \
            {k: total[k] + t[k].float() for k in total}
    soup = {k: (v / len(args.points)).to(like[k].dtype).contiguous() for k, v in total.items()}
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(args.like, args.out, ignore=shutil.ignore_patterns("checkpoint"))
    stored = quantize_int8(soup, args.rank) if args.int8 else soup
    save_file(stored, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    print(f"{args.out}: the mean of {len(args.points)} points")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
