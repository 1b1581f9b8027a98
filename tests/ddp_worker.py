"""One training process of tests/test_distributed.py: trains the capitals fixture's reader
for a few steps, with dropout off so that runs are comparable step for step.

    python tests/ddp_worker.py BASE OUT               # one process, the whole batch
    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py BASE OUT
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from conftest import FAST_TRAINING, FakeEmbedder  # noqa: E402
from knowledge import KnowledgeBase  # noqa: E402
from rag.training import loop  # noqa: E402
from rag.training import reader as tr  # noqa: E402


def without_dropout(*args, **kwargs):
    model, tokenizer, base = BUILD(*args, **kwargs)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout_prob"):
            m.dropout_prob = 0.0
    return model, tokenizer, base


BUILD, tr.init_model = tr.init_model, without_dropout
SEEN = []  # the questions this process's batches held
CALL, loop.Batcher.__call__ = loop.Batcher.__call__, lambda self, b: SEEN.extend(
    e.question for e in b) or CALL(self, b)

if __name__ == "__main__":
    base, out = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    with KnowledgeBase.open(base / "kb", embedder=FakeEmbedder()) as kb:
        tr.train_reader([(str(base / "qa.jsonl"), kb)], out, k=2, decoder_layers=1,
                        frozen_layers=5, dev_fraction=0.25, unanswerable_every=0,
                        settings={**FAST_TRAINING, "epochs": 2, "eval_every": 2, "lr": 3e-4},
                        log=lambda m: None)
    rank = os.environ.get("RANK", "0")
    (out.parent / f"{out.name}.seen.{rank}").write_text("\n".join(SEEN))
