"""Nets with and without weight sharing, and helpers to count and time them layer by layer.

Every builder takes ``sharing``:

- ``"conv"``: ordinary convolutions (one filter shared by all positions);
- ``"local"``: :class:`~gardenpath.models.local.LocallyConnected2d`, the same
  shapes with a separate filter at each output position;
- ``"dense"`` (small nets only): :class:`Dense2d`, a fully connected layer with the
  same input and output activation shapes (every output sees the whole input).

Nets:

- :func:`digits_net` — a small net for 8x8 digits or digits on a larger canvas
  (chapter 5): two 3x3 layers, each followed by ReLU and 2x2 max pooling, then a
  linear readout.
- :func:`resnet18` — He, Zhang, Ren & Sun, "Deep residual learning for image
  recognition", CVPR 2016, in torchvision's layout (module names ``conv1``,
  ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc`` ...). At 224x224
  its convolution weights number 11,166,912; locally connected, 1,813,561,344.
- :func:`alexnet_like` — Krizhevsky, Sutskever & Hinton, NeurIPS 2012, in
  torchvision's single-tower layout (``features``, ``avgpool``, ``classifier``).

All builders accept ``device="meta"``: parameters then have shapes but no
storage, so a 1.8-billion-parameter locally connected ResNet-18 can be counted
(:func:`count_conv_weights`) and walked layer by layer (:func:`layer_specs`) on a
laptop; :meth:`LayerSpec.build` then materialises one layer at a time for timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call

from gardenpath.models.local import IntPair, LocallyConnected2d, _pair, conv_out_size

Sharing = Literal["conv", "local", "dense"]
Device = torch.device | str | None


class Dense2d(nn.Module):
    """Fully connected layer between image-shaped activations of a conv layer's shapes.

    Maps (B, C, H, W) to (B, out, H_out, W_out) with one weight per
    (input unit, output unit) pair: the no-locality, no-sharing baseline.
    """

    def __init__(self, in_channels: int, out_channels: int, in_size: IntPair,
                 out_size: IntPair, bias: bool = True, device: Device = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = _pair(in_size), _pair(out_size)
        n_in = in_channels * self.in_size[0] * self.in_size[1]
        n_out = out_channels * self.out_size[0] * self.out_size[1]
        self.linear = nn.Linear(n_in, n_out, bias=bias, device=device, dtype=dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The (out*H_out*W_out, C*H*W) weight matrix."""
        return self.linear.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x.flatten(1))  # (B, out*H_out*W_out)
        return y.view(x.shape[0], self.out_channels, *self.out_size)  # (B, out, H_out, W_out)


SPATIAL_TYPES = (nn.Conv2d, LocallyConnected2d, Dense2d)


def spatial_layer(sharing: Sharing, in_channels: int, out_channels: int, kernel_size: int,
                  in_size: IntPair, stride: int = 1, padding: int = 0, bias: bool = True,
                  device: Device = None, dtype: torch.dtype | None = None) -> nn.Module:
    """One conv, locally connected or dense layer with the given shapes."""
    kw = {"device": device, "dtype": dtype}
    if sharing == "conv":
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias, **kw)
    if sharing == "local":
        return LocallyConnected2d(in_channels, out_channels, kernel_size, in_size, stride,
                                  padding, bias=bias, **kw)
    if sharing == "dense":
        out_size = conv_out_size(in_size, kernel_size, stride, padding)
        return Dense2d(in_channels, out_channels, in_size, out_size, bias=bias, **kw)
    raise ValueError(f"sharing must be 'conv', 'local' or 'dense', got {sharing!r}")


# ---------------------------------------------------------------------------- small nets


def digits_net(sharing: Sharing = "conv", in_size: int = 8, channels: Sequence[int] = (16, 32),
               num_classes: int = 10, kernel_size: int = 3, device: Device = None,
               dtype: torch.dtype | None = None) -> nn.Sequential:
    """Small net for one-channel digit images of side ``in_size`` (8, or a canvas such as 24).

    Per entry of ``channels``: a ``kernel_size`` layer with 'same' padding, ReLU,
    2x2 max pooling; then flatten and a linear readout. Input (B, 1, in_size,
    in_size). The conv, local and dense versions have identical activation shapes;
    only the connectivity (and so the parameter count) differs. Dense weights grow
    as in_size**4: at in_size 24 with (16, 32) channels they number about 16 M.
    """
    layers: list[nn.Module] = []
    size, c_in = in_size, 1
    for c_out in channels:
        layers += [spatial_layer(sharing, c_in, c_out, kernel_size, size, 1, kernel_size // 2,
                                 device=device, dtype=dtype),
                   nn.ReLU(), nn.MaxPool2d(2)]
        size, c_in = size // 2, c_out
        if size < 1:
            raise ValueError(f"in_size {in_size} too small for {len(channels)} pooling stages")
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, num_classes, device=device,
                                       dtype=dtype)]
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 layers and a shortcut), torchvision's names."""

    def __init__(self, sharing: Sharing, in_planes: int, planes: int, stride: int,
                 in_size: int, device: Device = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.conv1 = spatial_layer(sharing, in_planes, planes, 3, in_size, stride, 1, False, **kw)
        mid = conv_out_size(in_size, 3, stride, 1)[0]
        self.bn1 = nn.BatchNorm2d(planes, **kw)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = spatial_layer(sharing, planes, planes, 3, mid, 1, 1, False, **kw)
        self.bn2 = nn.BatchNorm2d(planes, **kw)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                spatial_layer(sharing, in_planes, planes, 1, in_size, stride, 0, False, **kw),
                nn.BatchNorm2d(planes, **kw))
        self.out_size = mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) with conv or locally connected layers."""

    def __init__(self, sharing: Sharing = "conv", num_classes: int = 1000, width: int = 64,
                 in_size: int = 224, device: Device = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if sharing not in ("conv", "local"):
            raise ValueError(f"resnet18 supports sharing 'conv' or 'local', got {sharing!r}")
        kw = {"device": device, "dtype": dtype}
        self.sharing, self.in_size = sharing, in_size
        self.conv1 = spatial_layer(sharing, 3, width, 7, in_size, 2, 3, False, **kw)
        size = conv_out_size(in_size, 7, 2, 3)[0]
        self.bn1 = nn.BatchNorm2d(width, **kw)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        size = (size + 2 - 3) // 2 + 1
        planes_in = width
        for i, mult in enumerate((1, 2, 4, 8)):
            planes, stride = width * mult, 1 if i == 0 else 2
            b0 = BasicBlock(sharing, planes_in, planes, stride, size, **kw)
            b1 = BasicBlock(sharing, planes, planes, 1, b0.out_size, **kw)
            setattr(self, f"layer{i + 1}", nn.Sequential(b0, b1))
            size, planes_in = b1.out_size, planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes_in, num_classes, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


def resnet18(sharing: Sharing = "conv", num_classes: int = 1000, width: int = 64,
             in_size: int = 224, device: Device = None,
             dtype: torch.dtype | None = None) -> ResNet18:
    """ResNet-18 in torchvision's layout; ``width`` is the first stage's channels (64)."""
    return ResNet18(sharing, num_classes, width, in_size, device, dtype)


# ---------------------------------------------------------------------------- AlexNet


class AlexNetLike(nn.Module):
    """AlexNet (Krizhevsky et al. 2012) with conv or locally connected feature layers."""

    def __init__(self, sharing: Sharing = "conv", num_classes: int = 1000, in_size: int = 224,
                 width: int = 64, dropout: float = 0.5, device: Device = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if sharing not in ("conv", "local"):
            raise ValueError(f"alexnet_like supports sharing 'conv' or 'local', got {sharing!r}")
        kw = {"device": device, "dtype": dtype}
        c = [max(1, round(n * width / 64)) for n in (64, 192, 384, 256, 256)]
        feats: list[nn.Module] = []
        size, c_in = in_size, 3
        plan = [(c[0], 11, 4, 2, True), (c[1], 5, 1, 2, True), (c[2], 3, 1, 1, False),
                (c[3], 3, 1, 1, False), (c[4], 3, 1, 1, True)]
        for c_out, k, s, p, pool in plan:
            feats += [spatial_layer(sharing, c_in, c_out, k, size, s, p, **kw),
                      nn.ReLU(inplace=True)]
            size, c_in = conv_out_size(size, k, s, p)[0], c_out
            if pool:
                feats.append(nn.MaxPool2d(kernel_size=3, stride=2))
                size = (size - 3) // 2 + 1
        self.features = nn.Sequential(*feats)
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        hidden = 4096 * width // 64
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c_in * 36, hidden, **kw), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, hidden, **kw), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.avgpool(self.features(x)), 1)  # (B, C*6*6)
        return self.classifier(x)


def alexnet_like(sharing: Sharing = "conv", num_classes: int = 1000, in_size: int = 224,
                 width: int = 64, dropout: float = 0.5, device: Device = None,
                 dtype: torch.dtype | None = None) -> AlexNetLike:
    """AlexNet in torchvision's layout; channels (64, 192, 384, 256, 256) scaled by width/64.

    At in_size 224 the feature maps are 55, 27, 13, 13, 13 (before pooling).
    """
    return AlexNetLike(sharing, num_classes, in_size, width, dropout, device, dtype)


# ---------------------------------------------------------------------------- counting, walking


def spatial_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv, locally connected and dense-2d layers of ``net``, in definition order."""
    return [(n, m) for n, m in net.named_modules() if isinstance(m, SPATIAL_TYPES)]


def count_conv_weights(net: nn.Module) -> int:
    """Number of weights (biases excluded) in the net's conv / locally connected / dense-2d layers.

    Works on the meta device: ``numel`` needs shapes only.
    """
    return sum(m.weight.numel() for _, m in spatial_layers(net))


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of every kind (weights, biases, batch-norm affine, readout)."""
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def share_weights_(net: nn.Module) -> int:
    """Dynamic weight sharing on every locally connected layer; returns how many were shared."""
    layers = [m for m in net.modules() if isinstance(m, LocallyConnected2d)]
    for m in layers:
        m.share_weights_()
    return len(layers)


def layer_kind(module: nn.Module) -> str:
    """'conv', 'local' or 'dense' for a spatial layer."""
    if isinstance(module, LocallyConnected2d):
        return "local"
    if isinstance(module, Dense2d):
        return "dense"
    if isinstance(module, nn.Conv2d):
        return "conv"
    raise TypeError(f"not a spatial layer: {type(module).__name__}")


@dataclass
class LayerSpec:
    """One weight layer of a net, with the shapes it sees for a given batch.

    Attributes:
        name: dotted module name in the net (``layer2.0.conv1``).
        kind: 'conv', 'local', 'dense' or 'linear' (linear only with ``linear=True``).
        module: the layer itself (possibly on the meta device).
        in_shape, out_shape: (B, C, H, W) of its input and output ((B, F) for linear).
        weight_count: its weights (no bias).
        macs: multiply-accumulates of one forward pass over the batch:
            B * out_channels * H_out * W_out * fan_in (fan_in = C*kh*kw, or C*H*W for dense;
            B * in_features * out_features for linear).
        params: weights plus bias.
        first: whether its input is the net's input (training needs no input gradient).
    """

    name: str
    kind: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight_count: int
    macs: int
    params: int = 0
    first: bool = False

    @property
    def macs_per_image(self) -> int:
        """Forward multiply-accumulates for one image."""
        return self.macs // self.in_shape[0]

    def key(self) -> tuple:
        """What makes two layers time alike: kind, per-image shapes, geometry, bias, first."""
        m = self.module
        geometry = tuple(getattr(m, a, None) for a in ("kernel_size", "stride", "padding"))
        return (self.kind, self.in_shape[1:], self.out_shape[1:], geometry,
                _bias(m) is not None, self.first)

    def build(self, device: Device = None, dtype: torch.dtype | None = None,
              seed: int = 0) -> nn.Module:
        """A fresh, randomly initialised layer of the same configuration on ``device``."""
        torch.manual_seed(seed)
        m = self.module
        kw = {"device": device, "dtype": dtype}
        if isinstance(m, nn.Linear):
            return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None, **kw)
        if isinstance(m, LocallyConnected2d):
            return LocallyConnected2d(m.in_channels, m.out_channels, m.kernel_size, m.in_size,
                                      m.stride, m.padding, m.bias is not None, **kw)
        if isinstance(m, Dense2d):
            return Dense2d(m.in_channels, m.out_channels, m.in_size, m.out_size,
                           m.linear.bias is not None, **kw)
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         dilation=m.dilation, groups=m.groups, bias=m.bias is not None, **kw)

    def make_input(self, device: Device = None, dtype: torch.dtype | None = None,
                   seed: int = 0) -> torch.Tensor:
        """A seeded random input of ``in_shape``."""
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.in_shape, generator=g, dtype=dtype or torch.float32)
        return x.to(device) if device is not None else x


def _bias(module: nn.Module) -> torch.Tensor | None:
    return module.linear.bias if isinstance(module, Dense2d) else module.bias


def layer_specs(net: nn.Module, in_size: int | tuple[int, int], batch_size: int = 1,
                in_channels: int = 3, linear: bool = False) -> list[LayerSpec]:
    """Walk ``net`` on the meta device and return each weight layer with its shapes.

    The spatial layers (conv, locally connected, dense-2d), and with ``linear=True`` the
    ``nn.Linear`` layers outside them too (a readout, AlexNet's classifier). Runs one
    forward pass with meta copies of the parameters and buffers
    (``torch.func.functional_call``), so nothing is computed or allocated, even for a net
    whose real parameters exist on another device; the net itself is left untouched.
    Layers are returned in execution order; the first one is marked ``first``.
    """
    h, w = _pair(in_size)
    found: list[LayerSpec] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
            x = args[0]
            if isinstance(module, nn.Linear):
                kind, fan_in = "linear", module.in_features
            elif isinstance(module, Dense2d):
                kind, fan_in = "dense", x[0].numel()
            elif isinstance(module, LocallyConnected2d):
                kind, fan_in = "local", module.fan_in
            else:
                kind, fan_in = layer_kind(module), module.weight[0].numel()
            params = sum(p.numel() for p in module.parameters())
            found.append(LayerSpec(name, kind, module, tuple(x.shape), tuple(out.shape),
                                   module.weight.numel(), out.numel() * fan_in, params,
                                   first=not found))
        return record

    targets = spatial_layers(net)
    if linear:
        inside = tuple(n + "." for n, _ in targets)
        targets = [(n, m) for n, m in net.named_modules()
                   if isinstance(m, (*SPATIAL_TYPES, nn.Linear)) and not n.startswith(inside)]
    handles = [m.register_forward_hook(hook(n)) for n, m in targets]
    meta = {n: torch.empty_like(t, device="meta")
            for n, t in [*net.named_parameters(), *net.named_buffers()]}
    was_training = net.training
    net.eval()  # batch norm in training mode refuses batch 1 at a 1x1 stage
    try:
        with torch.no_grad():
            functional_call(net, meta, (torch.empty(batch_size, in_channels, h, w,
                                                    device="meta"),))
    finally:
        net.train(was_training)
        for hd in handles:
            hd.remove()
    return found
