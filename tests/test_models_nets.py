"""Nets: ResNet-18 / AlexNet-like counts on the meta device, small digit nets, layer walking."""

import pytest
import torch
from torch import nn

from gardenpath.models.local import LocallyConnected2d
from gardenpath.models.nets import (
    Dense2d,
    alexnet_like,
    count_conv_weights,
    count_parameters,
    digits_net,
    layer_specs,
    resnet18,
    share_weights_,
)


@pytest.mark.parametrize(("sharing", "width", "expected"), [
    ("conv", 64, 11_166_912),
    ("local", 64, 1_813_561_344),
    ("conv", 32, 2_794_080),
    ("local", 32, 482_893_824),
])
def test_resnet18_convolution_weight_counts_on_meta(sharing, width, expected):
    net = resnet18(sharing, width=width, device="meta")
    assert all(p.device.type == "meta" for p in net.parameters())
    assert count_conv_weights(net) == expected


def test_conv_resnet18_total_matches_torchvision():
    # torchvision's resnet18() has 11,689,512 parameters
    assert count_parameters(resnet18("conv", device="meta")) == 11_689_512


def test_resnet18_torchvision_names_and_layer_walk():
    net = resnet18("local", device="meta")
    names = dict(net.named_modules())
    for n in ("conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.conv2", "fc"):
        assert n in names
    assert isinstance(names["layer3.0.conv2"], LocallyConnected2d)
    specs = layer_specs(net, 224, batch_size=8)
    assert len(specs) == 20  # 17 3x3/7x7 layers + 3 downsample 1x1
    assert specs[0].name == "conv1" and specs[0].in_shape == (8, 3, 224, 224)
    assert specs[0].out_shape == (8, 64, 112, 112)
    by_name = {s.name: s for s in specs}
    assert by_name["layer2.0.downsample.0"].in_shape == (8, 64, 56, 56)
    assert by_name["layer4.1.conv2"].out_shape == (8, 512, 7, 7)
    assert sum(s.weight_count for s in specs) == 1_813_561_344
    # MACs per image are the same with or without sharing: 1.81 G
    macs_local = sum(s.macs for s in specs) // 8
    macs_conv = sum(s.macs for s in layer_specs(resnet18("conv", device="meta"), 224, 8)) // 8
    assert macs_local == macs_conv == 1_813_561_344


def test_layer_spec_builds_one_real_layer_that_runs():
    net = resnet18("local", width=8, in_size=32, device="meta")
    spec = layer_specs(net, 32, batch_size=2)[5]
    layer = spec.build(device="cpu")
    assert isinstance(layer, LocallyConnected2d)
    assert layer.weight.device.type == "cpu"
    assert layer(spec.make_input()).shape == spec.out_shape


def test_resnet18_and_alexnet_run_small_and_agree_in_shape():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    for sharing in ("conv", "local"):
        assert resnet18(sharing, num_classes=7, width=8, in_size=64)(x).shape == (2, 7)
    for sharing in ("conv", "local"):
        net = alexnet_like(sharing, num_classes=5, in_size=64, width=8)
        assert net(x).shape == (2, 5)
    # at 224 and full width the feature maps are 55, 27, 13, 13, 13
    specs = layer_specs(alexnet_like("local", device="meta"), 224)
    assert [s.out_shape[-1] for s in specs] == [55, 27, 13, 13, 13]
    assert count_conv_weights(alexnet_like("conv", device="meta")) == 2_469_696 - 1_152


def test_local_resnet_with_shared_weights_equals_conv_resnet():
    torch.manual_seed(0)
    conv = resnet18("conv", num_classes=3, width=4, in_size=32).eval()
    local = resnet18("local", num_classes=3, width=4, in_size=32).eval()
    # copy every conv filter into every position, then check the nets agree
    conv_layers = dict(conv.named_modules())
    with torch.no_grad():
        for name, m in local.named_modules():
            if isinstance(m, LocallyConnected2d):
                src = conv_layers[name]
                m.weight.copy_(LocallyConnected2d.from_conv(src, m.in_size).weight)
        local.fc.load_state_dict(conv.fc.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(local(x), conv(x), rtol=1e-4, atol=1e-4)
    # share_weights_ leaves that (already shared) net unchanged
    assert share_weights_(local) == 20
    torch.testing.assert_close(local(x), conv(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("in_size", [8, 24])
def test_digits_nets_have_same_shapes_and_ordered_sizes(in_size):
    x = torch.randn(3, 1, in_size, in_size)
    nets = {s: digits_net(s, in_size=in_size, channels=(4, 8)) for s in ("conv", "local", "dense")}
    sizes = {s: count_conv_weights(n) for s, n in nets.items()}
    assert sizes["conv"] < sizes["local"] < sizes["dense"]
    assert sizes["conv"] == 4 * 9 + 8 * 4 * 9
    assert sizes["local"] == in_size ** 2 * 4 * 9 + (in_size // 2) ** 2 * 8 * 4 * 9
    for net in nets.values():
        assert net(x).shape == (3, 10)
    assert isinstance(nets["dense"][0], Dense2d)
    with pytest.raises(ValueError):
        digits_net("shared-ish")


def test_digits_net_learns_a_little():
    from gardenpath.data import load_digits_split
    torch.manual_seed(0)
    xtr, xte, ytr, yte = load_digits_split(seed=0)
    net = digits_net("local", channels=(8, 16))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.as_tensor(xtr, dtype=torch.float32).view(-1, 1, 8, 8)  # (n, 1, 8, 8)
    y = torch.as_tensor(ytr)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    xt = torch.as_tensor(xte, dtype=torch.float32).view(-1, 1, 8, 8)  # (n, 1, 8, 8)
    acc = (net(xt).argmax(1).numpy() == yte).mean()
    assert acc > 0.85


def test_layer_specs_with_linear_sees_every_weight_layer():
    net = alexnet_like("local", width=16, in_size=96, device="meta")
    specs = layer_specs(net, 96, batch_size=2, linear=True)
    assert [s.kind for s in specs] == ["local"] * 5 + ["linear"] * 3
    assert sum(s.params for s in specs) == count_parameters(net)  # AlexNet has no BN
    assert specs[0].first and not any(s.first for s in specs[1:])
    fc = specs[-1]
    assert fc.in_shape == (2, 1024) and fc.macs == 2 * 1024 * 1000
    assert fc.macs_per_image == 1024 * 1000
    layer = fc.build(device="cpu")
    assert isinstance(layer, nn.Linear) and layer(torch.zeros(fc.in_shape)).shape == (2, 1000)
    # without linear=True the walk is the spatial layers only, as before
    assert len(layer_specs(net, 96)) == 5


def test_layer_spec_key_groups_repeated_blocks():
    specs = layer_specs(resnet18("local", width=8, in_size=64, device="meta"), 64, linear=True)
    by = {s.name: s for s in specs}
    assert by["layer1.0.conv1"].key() == by["layer1.1.conv2"].key()
    assert by["layer2.0.conv1"].key() != by["layer2.0.conv2"].key()
    assert len({s.key() for s in specs}) == 12  # 20 spatial layers and fc: 12 configurations
    dense = layer_specs(digits_net("dense", channels=(2, 4)), 8, in_channels=1)
    assert [s.kind for s in dense] == ["dense", "dense"] and dense[0].params > 0
