"""Baselines beside the Sparsey-style learner and memory (models.baselines)."""

import numpy as np
import torch

from gardenpath.models import baselines as bl


def test_synthetic_items_have_exactly_the_active_bits_and_any_range_matches():
    whole = bl.synthetic_items(0, 50, 64, 5, seed=3, chunk=16)
    assert whole.shape == (50, 64) and whole.dtype == torch.uint8
    assert (whole.sum(1) == 5).all()
    # a range that starts inside one chunk and ends in another equals the same rows
    torch.testing.assert_close(bl.synthetic_items(13, 20, 64, 5, seed=3, chunk=16),
                               whole[13:33])
    assert not torch.equal(bl.synthetic_items(0, 50, 64, 5, seed=4, chunk=16), whole)


def test_exact_memory_returns_the_best_overlap():
    items = bl.synthetic_items(0, 40, 128, 10, seed=0)
    mem = bl.ExactMemory(48, 128)
    mem.store(items)
    assert mem.n == 40 and mem.state_bytes == 40 * 128 // 8
    for i in (0, 17, 39):
        assert int(mem.retrieve(items[i])) == i
    # move 3 of item 5's 10 bits: it is still the nearest stored item
    probe = items[5].clone()
    on, off = probe.nonzero().squeeze(1), (probe == 0).nonzero().squeeze(1)
    probe[on[:3]], probe[off[:3]] = 0, 1
    overlaps = (items.int() * probe.int()).sum(1)
    assert int(mem.retrieve(probe)) == int(overlaps.argmax()) == 5
    mem.store_at(45, items[0])  # a timing write past the end does not store an item
    assert mem.n == 40


def test_hnsw_index_finds_stored_items_by_hamming_distance():
    items = bl.synthetic_items(0, 200, 256, 16, seed=1)
    ann = bl.BinaryHNSW(256, links=8, ef_search=32)
    ann.store(items)
    found = [ann.retrieve(items[i]) == i for i in range(0, 200, 10)]
    assert np.mean(found) >= 0.9
    assert bl.BinaryHNSW.pack(items[:2]).shape == (2, 32)


def test_converged_backprop_stops_at_the_loss_tolerance():
    rng = np.random.default_rng(0)
    x = rng.random((20, 16)).astype(np.float32)
    y = np.arange(20) % 10
    bp = bl.ConvergedBackprop(hidden=(32,), lr=1e-2, loss_tol=0.05, max_epochs=2000)
    rep = bp.fit(x, y, seed=0)
    assert rep.extra["converged"] and rep.extra["final_loss"] < 0.05
    assert 1 < rep.passes < 2000 and rep.weight_updates == rep.passes  # 20 < batch of 32
    assert (bp.predict(x) == y).all()
    capped = bl.ConvergedBackprop(hidden=(32,), loss_tol=1e-9, max_epochs=3).fit(x, y)
    assert not capped.extra["converged"] and capped.passes == 3


def test_nearest_neighbour_takes_the_closest_label():
    x = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    nn = bl.NearestNeighbour().fit(x, np.array([3, 7]))
    assert list(nn.predict(np.array([[0.1, 0.2], [0.9, 0.8]], dtype=np.float32))) == [3, 7]


def test_embedding_net_learns_base_classes_and_embeds_on_the_unit_sphere():
    from gardenpath.data import load_digits_split

    xtr, xte, ytr, yte = load_digits_split(seed=0)
    base = ytr < 5
    net = bl.EmbeddingNet(channels=4, dim=16, num_epochs=3)
    rep = net.fit(xtr[base], ytr[base], seed=0)
    assert rep.weight_updates == 3 * int(np.ceil(base.sum() / 64))
    e = net.embed(xte)
    assert e.shape == (len(xte), 16)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # new classes (5-9) from 5 examples each: nearest neighbour in the embedding beats chance
    new_tr, new_te = ytr >= 5, yte >= 5
    from gardenpath.data import k_shot

    xs, ys = k_shot(xtr[new_tr], ytr[new_tr], 5, seed=0)
    acc = np.mean(bl.NearestNeighbour().fit(net.embed(xs), ys).predict(e[new_te])
                  == yte[new_te])
    assert acc > 0.4  # chance is 0.2
