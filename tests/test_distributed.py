"""Data-parallel training (rag/training/distributed.py): two CPU processes under torchrun, gloo,
DistributedDataParallel, train exactly as one process does with the same global batch, and
only rank 0 writes."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import capitals_fixture

ROOT = Path(__file__).resolve().parents[1]
WORKER = str(Path(__file__).with_name("ddp_worker.py"))


def _run(cmd, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _losses(out: Path) -> list[float]:
    return [float(r["loss"]) for r in csv.DictReader(open(out / "curves.csv"))]


def _trained(out: Path) -> dict:
    from safetensors.torch import load_file

    state = load_file(str(out / "checkpoint" / "state.safetensors"))
    return {k: v for k, v in state.items() if k.startswith("model/")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base, _ = capitals_fixture(tmp_path_factory.mktemp("ddp"))
    _run([sys.executable, WORKER, str(base), str(base / "one")])
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
          "2", WORKER, str(base), str(base / "two")])
    return base / "one", base / "two"


def test_two_processes_train_as_one_with_the_same_global_batch(runs):
    one, two = runs
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) >= 3
    assert a[-1] != a[0]  # (it trained)
    torch.testing.assert_close(torch.tensor(b), torch.tensor(a), rtol=2e-3, atol=1e-4)
    wa, wb = _trained(one), _trained(two)
    assert wa.keys() == wb.keys() and wa
    # a softmax does not change when every logit moves by the same amount, so the span
    # head's bias and attention key biases get no gradient but rounding noise, which AdamW
    # scales up to lr-sized steps; every other trained weight must agree
    noise = [n for n in wa if n.endswith(("span.bias", "key.bias"))]
    assert noise and len(noise) < len(wa) // 4
    for name in sorted(set(wa) - set(noise)):
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-3, atol=1e-5, msg=name)


def test_each_process_reads_its_half_of_every_batch(runs):
    one, two = runs
    seen = lambda p: p.read_text().splitlines()  # noqa: E731
    whole = seen(one.parent / "one.seen.0")
    halves = [seen(two.parent / f"two.seen.{r}") for r in (0, 1)]
    assert len(halves[0]) == len(halves[1]) == len(whole) // 2 > 0
    assert sorted(halves[0] + halves[1]) == sorted(whole)


def test_only_rank_zero_writes(runs):
    one, two = runs
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())
    card = json.loads((two / "training_card.json").read_text())
    assert card["processes"] == 2
    assert json.loads((one / "training_card.json").read_text())["processes"] == 1


@pytest.mark.slow
def test_rag_train_nproc_runs_under_torchrun(tmp_path):
    """The command line: `rag train --nproc 2` (the packaged MiniLM, a real knowledge base)
    launches two processes and leaves one calibrated reader."""
    from conftest import CAPITALS, write_corpus

    write_corpus(tmp_path / "docs", {f"{c}.txt": f"{c} is a country. The capital of {c} is "
                                     f"{city}." for c, city in CAPITALS})
    (tmp_path / "qa.jsonl").write_text("".join(
        json.dumps({"id": c, "question": f"What is the capital of {c}?", "answers": [city],
                    "gold_ids": [f"{c}.txt"], "split": "train"}) + "\n" for c, city in CAPITALS))
    rag = [sys.executable, "-m", "rag"]
    _run([*rag, "index", str(tmp_path / "docs"), "--kb", str(tmp_path / "kb")])
    bad = subprocess.run([*rag, "train", str(tmp_path / "qa.jsonl"), "--kb", str(tmp_path / "kb"),
                          "--out", str(tmp_path / "bad"), "--nproc", "3", "--batch-size", "4"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "--nproc 3" in bad.stderr and not (tmp_path / "bad").exists()
    done = _run([*rag, "train", str(tmp_path / "qa.jsonl"), "--kb", str(tmp_path / "kb"),
                 "--out", str(tmp_path / "r"), "--nproc", "2", "--batch-size", "4",
                 "--passages", "2", "--frozen-layers", "5", "--decoder-layers", "1",
                 "--epochs", "1", "--eval-every", "100", "--bf16", "off", "--no-progress"])
    assert done.stdout.count("reader saved in") == 1 and "in 2 processes" in done.stdout
    card = json.loads((tmp_path / "r" / "training_card.json").read_text())
    assert card["processes"] == 2 and "abstention" in card
    assert (tmp_path / "r" / "model.safetensors").exists()
