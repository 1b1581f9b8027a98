import numpy as np
import pytest

from knowledge.errors import UsageError
from knowledge.vector_index import IVF_FROM, IVFPQ_FROM, VectorIndex, choose_kind


def data(n, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ids = np.arange(1000, 1000 + n, dtype=np.int64)
    return ids, v


def brute_force(ids, vecs, q, k):
    scores = vecs @ q
    order = np.lexsort((ids, -scores))[:k]  # best first, ties by id
    return ids[order], scores[order]


def test_flat_matches_numpy_brute_force():
    ids, vecs = data(500)
    ix = VectorIndex.build("flat", 32, ids, vecs)
    rng = np.random.default_rng(1)
    for q in rng.standard_normal((10, 32)).astype(np.float32):
        scores, got = ix.search(q, 10)
        want_ids, want_scores = brute_force(ids, vecs, q, 10)
        assert got[0].tolist() == want_ids.tolist()
        np.testing.assert_allclose(scores[0], want_scores, rtol=1e-5, atol=1e-5)


def test_flat_remove_and_add_by_id():
    ids, vecs = data(100)
    ix = VectorIndex.build("flat", 32, ids, vecs)
    assert ix.remove(ids[:10]) == 10
    ix.add(np.array([5, 6], dtype=np.int64), vecs[:2])
    assert ix.ntotal == 92
    assert ix.ids().tolist() == [5, 6] + ids[10:].tolist()
    _, got = ix.search(vecs[0], 1)
    assert got[0, 0] == 5  # the re-added vector under its new id


def test_round_trip_through_bytes():
    ids, vecs = data(50)
    ix = VectorIndex.build("flat", 32, ids, vecs)
    back = VectorIndex.from_bytes(ix.to_bytes(), "flat")
    assert back.ids().tolist() == ids.tolist()
    assert back.search(vecs[3], 1)[1][0, 0] == ids[3]


def test_hnsw_finds_the_true_neighbours_and_refuses_removal():
    ids, vecs = data(2000)
    ix = VectorIndex.build("hnsw", 32, ids, vecs)
    back = VectorIndex.from_bytes(ix.to_bytes(), "hnsw")
    rng = np.random.default_rng(2)
    hits = 0
    for q in rng.standard_normal((20, 32)).astype(np.float32):
        want, _ = brute_force(ids, vecs, q, 10)
        hits += len(set(back.search(q, 10)[1][0]) & set(want))
    assert hits / 200 >= 0.95
    assert not ix.can_remove


def test_ivfpq_recall_ids_and_removal():
    ids, vecs = data(3000)
    ix = VectorIndex.build("ivfpq", 32, ids, vecs)
    back = VectorIndex.from_bytes(ix.to_bytes(), "ivfpq")
    assert back.ids().tolist() == ids.tolist()
    rng = np.random.default_rng(3)
    hits = 0
    for q in rng.standard_normal((20, 32)).astype(np.float32):
        want, _ = brute_force(ids, vecs, q, 10)
        hits += len(set(back.search(q, 50)[1][0]) & set(want))
    assert hits / 200 >= 0.8  # compressed: the true top-10 is mostly within the top-50
    assert back.remove(ids[:5]) == 5 and back.ntotal == 2995


def test_ivfsq8_recall_filter_and_removal():
    ids, vecs = data(3000)
    ix = VectorIndex.build("ivfsq8", 32, ids, vecs)
    assert not ix.compressed and ix.can_remove
    rng = np.random.default_rng(4)
    hits = 0
    for q in rng.standard_normal((20, 32)).astype(np.float32):
        want, _ = brute_force(ids, vecs, q, 10)
        hits += len(set(ix.search(q, 10)[1][0]) & set(want))
    assert hits / 200 >= 0.9  # 8-bit codes, a tenth of the lists probed
    allowed = ids[::7]
    got = ix.search(vecs[7], 5, allowed=allowed)[1][0]
    assert got[0] == ids[7] and set(got[got >= 0]) <= set(allowed)
    assert ix.remove(ids[:5]) == 5 and ix.ntotal == 2995


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfsq8", "ivfpq"])
def test_mmap_read_searches_like_the_loaded_index(tmp_path, kind):
    ids, vecs = data(3000)
    ix = VectorIndex.build(kind, 32, ids, vecs)
    path = tmp_path / "index.faiss"
    path.write_bytes(ix.to_bytes())
    mapped = VectorIndex.read(path, kind, mmap=True)
    q = np.random.default_rng(5).standard_normal((4, 32)).astype(np.float32)
    np.testing.assert_array_equal(mapped.search(q, 10)[1], ix.search(q, 10)[1])
    assert mapped.ntotal == 3000 and mapped.ids().tolist() == ids.tolist()
    path.unlink()  # (a writer deleting an old generation: the mapping stays valid)
    np.testing.assert_array_equal(mapped.search(q, 10)[1], ix.search(q, 10)[1])


def test_ivf_kinds_need_enough_vectors():
    ids, vecs = data(100)
    for kind in ("ivfpq", "ivfsq8"):
        with pytest.raises(UsageError, match="at least 1000 chunks"):
            VectorIndex.build(kind, 32, ids, vecs)


def test_auto_choice_by_size():
    sizes = (0, IVF_FROM - 1, IVF_FROM, IVFPQ_FROM - 1, IVFPQ_FROM, 10 * IVFPQ_FROM)
    assert [choose_kind("auto", n) for n in sizes] == \
        ["flat", "flat", "ivfsq8", "ivfsq8", "ivfpq", "ivfpq"]
    assert choose_kind("hnsw", 10) == "hnsw"
    with pytest.raises(UsageError, match="must be one of"):
        choose_kind("annoy", 10)
