"""Memory estimates of the chapters, for refusing parameters before any kernel starts.

One function per chapter, taking the chapter's resolved parameters (every name present,
so no fallback defaults here) and returning bytes. Plain arithmetic over the nets' layer
shapes: no torch and no chapter module, so that planning a run stays light. Each one
computes what the chapter module's own ``memory_estimate`` did (a test holds them equal
on every profile).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

Params = dict[str, Any]
FP32_BYTES = 4


# ----------------------------------------------------------------------------- layer shapes


def out_side(n: int, k: int, s: int = 1, p: int = 0) -> int:
    """Output side of a convolution: ``floor((n + 2p - k) / s) + 1``."""
    out = (n + 2 * p - k) // s + 1
    if out < 1:
        raise ValueError(f"kernel {k} does not fit input {n} with padding {p}")
    return out


@dataclass(frozen=True)
class Layer:
    """One weight layer and the shapes it sees for one image.

    ``kind``: conv, local (locally connected), dense (every input to every output) or
    linear. Spatial layers take ``(c_in, h, w)`` to ``(c_out, h_out, w_out)``; a linear
    layer takes ``c_in`` features to ``c_out``.
    """

    kind: str
    c_in: int
    c_out: int
    k: int = 1
    stride: int = 1
    pad: tuple[int, int] = (0, 0)  # rows, columns
    h: int = 1
    w: int = 1
    bias: bool = True

    @property
    def h_out(self) -> int:
        return out_side(self.h, self.k, self.stride, self.pad[0]) if self.spatial else 1

    @property
    def w_out(self) -> int:
        return out_side(self.w, self.k, self.stride, self.pad[1]) if self.spatial else 1

    @property
    def spatial(self) -> bool:
        return self.kind != "linear"

    @property
    def fan_in(self) -> int:
        return self.c_in * self.k * self.k

    @property
    def positions(self) -> int:
        return self.h_out * self.w_out

    @property
    def n_in(self) -> int:
        return self.c_in * self.h * self.w

    @property
    def n_out(self) -> int:
        return self.c_out * self.positions

    @property
    def weights(self) -> int:
        if self.kind == "conv":
            return self.c_out * self.fan_in
        if self.kind == "local":
            return self.positions * self.fan_in * self.c_out
        if self.kind == "dense":
            return self.n_in * self.n_out
        return self.c_in * self.c_out

    @property
    def params(self) -> int:
        per_position = self.kind in ("local", "dense")
        return self.weights + (self.n_out if per_position else self.c_out) * self.bias


def digits_layers(sharing: str, side: int, channels: list[int], k: int = 3,
                  classes: int = 10, readout: str = "flatten") -> Iterator[Layer]:
    """:func:`gardenpath.models.nets.digits_net`: per channel entry a 'same' layer and 2x2
    pooling, then the readout (flatten or global max pooling, and a linear layer)."""
    size, c_in = side, 1
    for c_out in channels:
        yield Layer(sharing, c_in, c_out, k, 1, (k // 2, k // 2), size, size)
        size, c_in = size // 2, c_out
        if size < 1:
            raise ValueError(f"in_size {side} too small for {len(channels)} pooling stages")
    yield Layer("linear", c_in * (size * size if readout == "flatten" else 1), classes)


def resnet18_layers(sharing: str, width: int, side: int, classes: int = 1000
                    ) -> tuple[list[Layer], int]:
    """:func:`gardenpath.models.nets.resnet18`'s weight layers, and its batch-norm
    parameters (two per channel of each batch norm)."""
    layers = [Layer(sharing, 3, width, 7, 2, (3, 3), side, side, bias=False)]
    bn = 2 * width
    size = layers[0].h_out
    size = (size + 2 - 3) // 2 + 1  # max pooling 3, stride 2, padding 1
    planes_in = width
    for i, mult in enumerate((1, 2, 4, 8)):
        planes = width * mult
        for block in range(2):
            stride = 2 if i and not block else 1
            c_in = planes_in if not block else planes
            first = Layer(sharing, c_in, planes, 3, stride, (1, 1), size, size, bias=False)
            layers += [first, Layer(sharing, planes, planes, 3, 1, (1, 1), first.h_out,
                                    first.h_out, bias=False)]
            bn += 2 * 2 * planes
            if stride != 1 or c_in != planes:
                layers.append(Layer(sharing, c_in, planes, 1, stride, (0, 0), size, size,
                                    bias=False))
                bn += 2 * planes
            size = first.h_out
        planes_in = planes
    layers.append(Layer("linear", planes_in, classes))
    return layers, bn


def alexnet_layers(sharing: str, width: int, side: int, classes: int = 1000) -> list[Layer]:
    """:func:`gardenpath.models.nets.alexnet_like`'s weight layers."""
    c = [max(1, round(n * width / 64)) for n in (64, 192, 384, 256, 256)]
    plan = [(c[0], 11, 4, 2, True), (c[1], 5, 1, 2, True), (c[2], 3, 1, 1, False),
            (c[3], 3, 1, 1, False), (c[4], 3, 1, 1, True)]
    layers, size, c_in = [], side, 3
    for c_out, k, s, p, pool in plan:
        layer = Layer(sharing, c_in, c_out, k, s, (p, p), size, size)
        layers.append(layer)
        size, c_in = layer.h_out, c_out
        if pool:
            size = (size - 3) // 2 + 1
    hidden = 4096 * width // 64
    return [*layers, Layer("linear", c_in * 36, hidden), Layer("linear", hidden, hidden),
            Layer("linear", hidden, classes)]


# ----------------------------------------------------------------------------- chapters


def energy(p: Params) -> int:
    """The largest of the copy working set, the matmul's three ``n x n`` fp32 matrices and
    the largest ResNet-18 layer's tensors (input, output, their gradients, the unfolded
    input), with a 2x margin for the allocator and the library's scratch space."""
    ws = max(p["working_sets_kib"]) * 1024
    mm = 3 * p["matmul_n"] ** 2 * FP32_BYTES
    b = p["batch_size"]
    layers = 0
    try:
        convs, _ = resnet18_layers("conv", 64, p["image_size"])
    except ValueError:
        convs = []
    for la in convs[:-1]:
        x, y = b * la.n_in * FP32_BYTES, b * la.n_out * FP32_BYTES
        cols = b * la.fan_in * la.positions * FP32_BYTES
        bn = 4 * y  # the batch norm after it: input and output, and their gradients
        layers = max(layers, 2 * x + 2 * y + cols, bn)
    return 2 * max(ws, mm, layers)


def imagenet(p: Params) -> int:
    """The largest layer step (the timed strip of it) at the timed width and largest batch,
    or a whole-net step where it fits ``whole_net_budget_gb``."""
    batch, need = max(p["time_batches"]), 0
    for sharing in ("conv", "local"):
        res, bn = resnet18_layers(sharing, p["time_width"], p["in_size"])
        for layers, extra in ((res, bn), (alexnet_layers(sharing, p["time_width"],
                                                         p["in_size"]), 0)):
            need = max(need, *(layer_step_bytes(strip(la, p["time_fraction"]), batch)
                               for la in layers))
            params = sum(la.params for la in layers) + extra
            act = sum(layer_step_bytes(la, min(p["time_batches"])) - FP32_BYTES * 3 * la.params
                      for la in layers)
            whole = FP32_BYTES * 3 * params + 2 * act
            if whole <= p["whole_net_budget_gb"] * 1e9:
                need = max(need, whole)
    return int(need)


def layer_step_bytes(la: Layer, batch: int) -> int:
    """Bytes one layer's training step holds: weights, gradient and momentum; input, output
    and their gradients; the unfolded input (three copies for a locally connected layer's
    ``bmm`` path, one im2col workspace for a convolution)."""
    unfold = 0
    if la.kind in ("conv", "local"):
        unfold = (3 if la.kind == "local" else 1) * batch * la.fan_in * la.positions
    return FP32_BYTES * (3 * la.params + 2 * batch * la.n_in + 2 * batch * la.n_out + unfold)


def strip(la: Layer, fraction: float) -> Layer:
    """The layer cut to an interior strip of about ``fraction`` of its output rows (the
    imagenet chapter times such strips); linear layers and ``fraction >= 1`` unchanged."""
    if not la.spatial or fraction >= 1:
        return la
    rows = max(1, round(la.h_out * fraction))
    if rows >= la.h_out:
        return la
    return replace(la, h=(rows - 1) * la.stride + la.k, pad=(0, la.pad[1]))


def local_learning(p: Params) -> int:
    """The Sparsey learner's float32 weights (36 x 511 inputs x Q x K) twice, the
    Krotov-Hopfield layer, and 300 MB for the interpreter, torch and the data."""
    q, k = p["sparsey_Q"], p["sparsey_K"]
    sparsey = 36 * 511 * q * k * FP32_BYTES if "sparsey" in p["rules"] else 0
    kh = p["kh_hidden"] * 64 * 8 * 4
    return int(2 * sparsey + kh + 300e6)


def one_shot(p: Params) -> int:
    """The Sparsey classifier's weights, the storage macrocolumn's weights per memory size,
    the exact memory's table, the learnt codes, and 300 MB for the interpreter."""
    q, k, bits = p["sparsey_Q"], p["sparsey_K"], p["item_bits"]
    sq, sk = p["sdr_Q"], p["sdr_K"]
    n = max(p["store_sizes"])
    sparsey = 2 * 36 * 511 * q * k * 4
    sdr = (len(p["store_sizes"]) + 1) * bits * sq * sk * 4
    table = (n + 64) * bits + n * sq * 8 + 2048 * bits * 4
    return int(sparsey + sdr + table + 300e6)


def parallelism(p: Params) -> int:
    """Per process: the digits on their canvas, the local net's parameters with gradients
    and optimizer state, the activations of the largest batch, the sweep's buffers and
    400 MB for the interpreter; times ``world_size``."""
    canvas, channels = p["canvas"], p["channels"]
    data = 1797 * canvas * canvas * 4
    n = sum(la.params for la in digits_layers("local", canvas, channels))
    acts, size, c_in = 0, canvas, 1
    for c_out in channels:
        acts += size * size * (c_in * 9 * 3 + c_out * 3)
        size, c_in = size // 2, c_out
    gb = p["batch_size"] * p["world_size"]
    per = data + 4 * n * 4 + 4 * gb * acts * 2 + p["sweep_max_kib"] * 1024 * 2 + 400 * 2**20
    return int(p["world_size"] * per)


def sharing_buys(p: Params) -> int:
    """The largest net (one is alive at a time): parameters x 4 (weights, gradients, two
    Adam moments), plus activations for the larger of a batch and the test split."""
    channels, canvas = p["channels"], p["canvas"]
    batch = max(p["batch_size"], 540)
    worst = 0
    for kind in ("conv", "local", "local_shared", "dense"):
        sharing = "local" if kind == "local_shared" else kind
        for size, readouts in ((8, ["flatten"]), (canvas, p["readouts"])):
            for readout in readouts:
                n_params = sum(la.params for la in digits_layers(sharing, size, channels,
                                                                 readout=readout))
                act = sum(batch * (la.fan_in if kind != "dense" else la.c_in) * la.h * la.w
                          + batch * la.n_out
                          for la in digits_layers(sharing, size, channels) if la.spatial)
                worst = max(worst, 16 * n_params + 3 * 4 * act)
    data = 4 * 1797 * (canvas * canvas + 8 * 8) * 2
    return int(worst + data)


def sharing_moves(p: Params) -> int:
    """The largest sweep point's locally connected step (weights, input, output and their
    gradients, three copies of the unfolded input), or the roofline's arrays if larger."""
    base = {"in_size": p["in_size"], "channels": p["channels"],
            "kernel_size": p["kernel_size"], "batch_size": p["batch_size"]}
    points = [base] + [{**base, knob: v} for knob in base for v in p[f"sweep_{knob}"]]
    need = 0
    for pt in points:
        c, k, b = pt["channels"], pt["kernel_size"], pt["batch_size"]
        side = pt["in_size"] + 2 * (k // 2) - k + 1
        positions, k2c = side**2, c * k * k
        weights = positions * k2c * c
        x, y = b * c * pt["in_size"] ** 2, b * c * positions
        need = max(need, FP32_BYTES * (2 * weights + 2 * x + 2 * y + 3 * b * k2c * positions))
    return max(need, p["roofline_ws_mib"] << 20, 3 * p["matmul_n"] ** 2 * FP32_BYTES)


#: chapter -> its estimate; a chapter not listed is not checked.
ESTIMATES: dict[str, Callable[[Params], int]] = {
    "energy": energy,
    "imagenet": imagenet,
    "local_learning": local_learning,
    "one_shot": one_shot,
    "parallelism": parallelism,
    "sharing_buys": sharing_buys,
    "sharing_moves": sharing_moves,
}
