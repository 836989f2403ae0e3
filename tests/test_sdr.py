"""SDRMacrocolumn (Sparsey-style code selection): one-shot storage, exact retrieval below
capacity, similar inputs -> overlapping codes, unrelated inputs -> low overlap, fixed state."""

import pytest
import torch

from gardenpath.models.sdr import SDRMacrocolumn, code_overlap

N, M, Q, K = 512, 25, 24, 16  # 5% active inputs; documented capacity: 100 items exactly


def random_items(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, N)
    for i in range(n):
        x[i, torch.randperm(N, generator=g)[:M]] = 1.0
    return x


def move_bits(x: torch.Tensor, frac: float, seed: int) -> torch.Tensor:
    """Move ``frac`` of each item's active bits to inactive positions."""
    g = torch.Generator().manual_seed(seed)
    y = x.clone()
    for i in range(len(x)):
        on, off = x[i].nonzero().squeeze(1), (x[i] == 0).nonzero().squeeze(1)
        k = round(frac * len(on))
        y[i, on[torch.randperm(len(on), generator=g)[:k]]] = 0.0
        y[i, off[torch.randperm(len(off), generator=g)[:k]]] = 1.0
    return y


@pytest.fixture(scope="module")
def stored():
    mac = SDRMacrocolumn(N, Q, K, seed=1)
    x = random_items(100, seed=0)
    codes = mac.learn(x)
    return mac, x, codes


def test_codes_have_one_winner_per_module(stored):
    mac, x, codes = stored
    assert codes.shape == (100, Q) and codes.dtype == torch.int64
    assert codes.min() >= 0 and codes.max() < K
    assert mac.items_learned == 100


def test_every_stored_item_retrieves_its_own_code_exactly_below_capacity(stored):
    mac, x, codes = stored
    assert torch.equal(mac.infer(x), codes)


def test_ten_percent_moved_bits_keep_at_least_80_percent_of_the_code(stored):
    mac, x, codes = stored
    overlap = code_overlap(mac.infer(move_bits(x, 0.1, seed=5)), codes)
    assert overlap.min() >= 0.8


def test_unrelated_items_get_low_overlap(stored):
    mac, x, codes = stored
    novel = mac.infer(random_items(50, seed=99))
    pair = code_overlap(novel[:, None, :], codes[None, :, :])  # (50, 100)
    assert pair.mean() < 0.3  # chance is 1/K = 0.0625; crowding raises it with load
    assert pair.max() < 0.8  # never as close as a 10%-perturbed stored item
    stored_pairs = code_overlap(codes[:, None, :], codes[None, :, :])  # (100, 100)
    off_diag = stored_pairs[~torch.eye(100, dtype=torch.bool)]
    assert off_diag.mean() < 0.25


def test_novel_inputs_get_random_codes_when_empty():
    mac = SDRMacrocolumn(N, Q, K, seed=3)
    x = random_items(1, seed=4)
    v = mac.support(mac._binary(x))
    assert float(mac.familiarity(v)) == 0.0
    rho = mac.choice_probabilities(v)
    torch.testing.assert_close(rho, torch.full_like(rho, 1.0 / K))  # eta = 0: uniform


def test_learning_takes_one_presentation_and_sets_binary_weights():
    mac = SDRMacrocolumn(N, Q, K, seed=3)
    x = random_items(1, seed=4)
    code = mac.learn(x)
    assert set(mac.weights.unique().tolist()) == {0.0, 1.0}
    assert int(mac.weights.sum()) == M * Q  # active inputs x winners
    assert torch.equal(mac.infer(x), code)
    v = mac.support(mac._binary(x))
    assert float(mac.familiarity(v)) == 1.0  # now fully familiar


def test_familiar_inputs_bias_choice_to_their_code():
    mac = SDRMacrocolumn(N, Q, K, seed=3)
    x = random_items(1, seed=4)
    code = mac.learn(x)
    rho = mac.choice_probabilities(mac.support(mac._binary(move_bits(x, 0.1, 1))))[0]
    p_own = rho.gather(1, code.t()).squeeze(1)  # (Q,)
    assert p_own.min() > 0.8  # vs 1/K for a novel input


def test_state_is_fixed_size_whatever_is_stored():
    mac = SDRMacrocolumn(N, Q, K, seed=0)
    shape, nbytes = mac.weights.shape, mac.state_bytes
    mac.learn(random_items(30, seed=1))
    assert mac.weights.shape == shape == (N, Q * K) and mac.state_bytes == nbytes
    assert 0 < mac.weight_density() < 1
