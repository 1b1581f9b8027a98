"""`rag index --ray`: Ray Data parses, chunks and embeds (an actor pool holding the packaged
MiniLM), one process writes. Indexed with and without Ray, a folder gives the same chunks
and, within float tolerance, the same vectors, on a first run and on an incremental one."""
import functools
import sqlite3

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'rag-fid[ray]')")

from conftest import ANIMALS, write_corpus  # noqa: E402
from knowledge.embedding import Embedder  # noqa: E402
from knowledge.sync import sync  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from knowledge.distributed import RayIngest

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield RayIngest(functools.partial(Embedder.load, "all-MiniLM-L6-v2", precision="fp32"))
    ray.shutdown()


@pytest.fixture(scope="module")
def embedder():
    return Embedder.load("all-MiniLM-L6-v2", precision="fp32")


def _rows(kb):
    with sqlite3.connect(kb / "kb.sqlite") as c:
        return c.execute(
            'SELECT d.doc_id, c.ord, c.text, c.start, c."end", c.page, c.heading, c.vector, '
            "c.windows "
            "FROM chunks c JOIN documents d ON c.document_id = d.id "
            "ORDER BY d.doc_id, c.ord").fetchall()


def _same(a, b):
    ra, rb = _rows(a), _rows(b)
    assert len(ra) == len(rb) > 0
    for x, y in zip(ra, rb):
        assert x[:7] == y[:7]
        np.testing.assert_allclose(np.frombuffer(x[7], np.float32),
                                   np.frombuffer(y[7], np.float32), atol=1e-5)
        assert (x[8] is None) == (y[8] is None)  # window vectors (knowledge/windows.py)
        if x[8] is not None:
            np.testing.assert_allclose(np.frombuffer(x[8], np.float32),
                                       np.frombuffer(y[8], np.float32), atol=1e-5)
    assert any(x[8] is not None for x in ra), "no chunk of several windows was indexed"


def _docs():
    table = "".join(f'{{"id": "{i}", "title": "row {i}", "text": "Row {i} says {w}."}}\n'
                    for i, w in enumerate(["alpha", "beta", "gamma", "delta"] * 5))
    return {**ANIMALS, "table.jsonl": table, "broken.pdf": b"%PDF-1.4 not really",
            "long.txt": "\n\n".join(f"Paragraph {i}: " + "words of text " * 60
                                    for i in range(12)),
            "steps.txt": "\n\n".join(f"Step {i}: turn the valve {i} times and wait for the "
                                       "gauge to settle before the next step." for i in range(8))}


def test_ray_and_local_give_the_same_knowledge_base(tmp_path, engine, embedder):
    docs = write_corpus(tmp_path / "docs", _docs())
    local = sync(tmp_path / "local", [docs], embedder=embedder, log=lambda m: None)
    far = sync(tmp_path / "ray", [docs], embedder=embedder, engine=engine, log=lambda m: None)
    assert far.to_dict()["documents"] == local.to_dict()["documents"] > 20
    assert [s[1] for s in far.skipped] == [s[1] for s in local.skipped] and far.skipped
    assert far.chunks_added == local.chunks_added
    _same(tmp_path / "local", tmp_path / "ray")

    # an incremental run: one file changed, one removed, a row edited
    (docs / "long.txt").write_text("A new text about otters and rivers. " * 40)
    (docs / "cats.md").unlink()
    (docs / "table.jsonl").write_text((docs / "table.jsonl").read_text().replace(
        "Row 3 says delta", "Row 3 says epsilon"))
    local = sync(tmp_path / "local", [docs], embedder=embedder, log=lambda m: None)
    far = sync(tmp_path / "ray", [docs], embedder=embedder, engine=engine, log=lambda m: None)
    for r in (local, far):
        assert (r.updated, r.removed) == (2, 1), r.to_dict()
    assert far.chunks_added == local.chunks_added
    _same(tmp_path / "local", tmp_path / "ray")
