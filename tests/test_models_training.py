"""The nets of chapter 5 and the loop that trains them."""

from __future__ import annotations

import pytest
import torch

from gardenpath.models import training as tr
from gardenpath.models.dynamic_sharing import SleepConfig, local_layers, spread


def test_mnist1d_nets_have_the_published_sizes():
    # Greydanus & Kobak's ConvBase and MLPBase print 5,210 and 15,210 parameters
    assert tr.count_parameters(tr.sequence_net("conv")) == 5210
    assert tr.count_parameters(tr.sequence_net("dense")) == 15210
    assert tr.sequence_net("conv")(torch.randn(3, 40)).shape == (3, 10)
    lc = tr.sequence_net("local")
    assert lc(torch.randn(3, 40)).shape == (3, 10)
    assert tr.count_parameters(lc) == 19 * 5 * 25 + 19 * 25 + 10 * 75 * 25 + 10 * 25 \
        + 5 * 75 * 25 + 5 * 25 + 125 * 10 + 10


@pytest.mark.parametrize("family, kw, x", [
    ("image", {"in_size": (8, 12), "channels": (2, 3)}, torch.rand(4, 1, 8, 12)),
    ("sequence", {}, torch.randn(4, 40))])
def test_dynamic_sharing_net_starts_as_the_conv_net(family, kw, x):
    conv = tr.build(family, "conv", 3, **kw)
    dws = tr.build(family, "local_dws", 3, **kw)
    assert local_layers(dws) and not local_layers(conv)
    with torch.no_grad():
        torch.testing.assert_close(dws(x), conv(x), rtol=1e-5, atol=1e-5)


def test_shift_sideways_moves_each_image_intact():
    x = torch.zeros(20, 1, 4, 10)
    x[:, :, :, 4:6] = 1.0
    out = tr.shift_sideways(x, 3, torch.Generator().manual_seed(0))
    assert torch.equal(out.sum((1, 2, 3)), x.sum((1, 2, 3)))
    cols = [int(o[0, 0].nonzero()[0]) for o in out]
    assert set(cols) <= set(range(1, 8)) and len(set(cols)) > 2


def test_training_learns_and_sleep_keeps_filters_close():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 40, generator=g)
    y = (x[:, 10:20].sum(1) > 0).long()
    cfg = tr.TrainConfig(steps=60, batch_size=50, lr=1e-2, order="sequential",
                         sleep=SleepConfig(every=5, iterations=5))
    plain, shared = tr.build("sequence", "local", 0), tr.build("sequence", "local_dws", 0)
    tr.train(plain, x, y, cfg)
    log = tr.train(shared, x, y, cfg, share=True)
    assert tr.accuracy_pct(plain, x, y) > 80.0
    assert len(log.spreads) == 12 and len(log.spreads[0]) == 3
    assert max(spread(m) for m in local_layers(shared)) < 0.1
    assert min(spread(m) for m in local_layers(plain)) > 0.5


def test_training_is_deterministic_given_the_seed():
    x, y = torch.randn(64, 40), torch.randint(0, 10, (64,))
    cfg = tr.TrainConfig(steps=5, batch_size=16, lr=1e-2)
    a, b = tr.build("sequence", "conv", 1), tr.build("sequence", "conv", 1)
    tr.train(a, x, y, cfg, seed=2)
    tr.train(b, x, y, cfg, seed=2)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


def test_config_checks():
    with pytest.raises(ValueError):
        tr.TrainConfig(steps=1, batch_size=1, lr=1.0, optimizer="rmsprop")
    with pytest.raises(ValueError):
        tr.TrainConfig(steps=1, batch_size=1, lr=1.0, order="random")
    with pytest.raises(ValueError):
        tr.train(tr.build("sequence", "local_dws", 0), torch.randn(4, 40),
                 torch.zeros(4, dtype=torch.long), tr.TrainConfig(1, 4, 0.1), share=True)
