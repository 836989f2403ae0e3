"""Dynamic weight sharing: a lateral Hebbian sleep phase that pulls filters to their mean."""

from __future__ import annotations

import pytest
import torch

from gardenpath.models.dynamic_sharing import SleepConfig, deviation, sleep_, sleep_layer_, spread
from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.local1d import LocallyConnected1d


def _layers():
    torch.manual_seed(0)
    return [LocallyConnected1d(2, 3, 3, 12, padding=1),
            LocallyConnected2d(2, 3, 3, (6, 5), padding=1)]


@pytest.mark.parametrize("i", [0, 1])
def test_sleep_keeps_the_mean_filter_and_shrinks_the_spread(i):
    layer = _layers()[i]
    mean_w = layer.weight.detach().mean(0).clone()
    mean_b = layer.bias.detach().reshape(3, -1).mean(1).clone()
    before = deviation(layer)
    sleep_layer_(layer, SleepConfig(iterations=3, lr=0.5, noise_batch=64),
                 torch.Generator().manual_seed(0))
    assert 0.01 * before < deviation(layer) < 0.4 * before  # pulled together, not averaged
    torch.testing.assert_close(layer.weight.mean(0), mean_w, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.bias.reshape(3, -1).mean(1), mean_b, rtol=0, atol=1e-6)


def test_a_long_sleep_reaches_the_hard_average():
    layer = _layers()[1]
    target = layer.weight.detach().mean(0, keepdim=True).expand_as(layer.weight).clone()
    sleep_layer_(layer, SleepConfig(iterations=60, lr=0.5, noise_batch=256),
                 torch.Generator().manual_seed(1))
    torch.testing.assert_close(layer.weight.detach(), target, rtol=0, atol=1e-4)
    assert spread(layer) < 1e-3


def test_a_shared_layer_sleeps_without_change():
    conv = torch.nn.Conv1d(2, 3, 3, padding=1)
    layer = LocallyConnected1d.from_conv(conv, 12)
    w = layer.weight.detach().clone()
    sleep_(torch.nn.Sequential(layer), SleepConfig(iterations=4),
           torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer.weight.detach(), w, rtol=0, atol=1e-6)


def test_config_checks():
    with pytest.raises(ValueError):
        SleepConfig(lr=2.5)
    with pytest.raises(ValueError):
        SleepConfig(iterations=0)
