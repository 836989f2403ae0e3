"""Memory estimates of the chapters, for refusing parameters before any kernel starts.

One function per chapter, taking the chapter's resolved parameters (every name present,
so no fallback defaults here) and returning bytes. Plain arithmetic over the nets' layer
shapes: no torch and no chapter module, so that planning a run stays light. Each is the
estimate its chapter's branch gave in terms of that chapter's parameters; a test checks
that each grows with the sizes it counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gardenpath.constants import FP32_BYTES

Params = dict[str, Any]


# ----------------------------------------------------------------------------- chapters


def energy(p: Params) -> int:
    """The largest of the copy working set, the matmul's three ``n x n`` fp32 matrices and
    ResNet-18's two largest layer steps at ``image_size`` (conv1 and a layer1 conv: input,
    output, their gradients, the unfolded input, the batch norm after it), with a 2x
    margin for the allocator and the library's scratch space."""
    s, b = p["image_size"], p["batch_size"]
    h1 = (s + 6 - 7) // 2 + 1  # conv1's output side (7x7, stride 2, padding 3)
    h2 = (h1 + 2 - 3) // 2 + 1  # after the 3x3 max-pool, stride 2
    conv1 = FP32_BYTES * b * (2 * 3 * s * s + 2 * 64 * h1 * h1 + 3 * 49 * h1 * h1)
    layer1 = FP32_BYTES * b * (4 * 64 * h2 * h2 + 64 * 9 * h2 * h2)
    return 2 * max(max(p["working_sets_kib"]) * 1024, 3 * p["matmul_n"] ** 2 * FP32_BYTES,
                   conv1, layer1)


def imagenet(p: Params) -> int:
    """Upper estimate: the largest timed layer step, the strip check's whole layer1.0.conv1,
    the reduced net of the end-to-end check; with a 1.25 margin."""
    f, b, w, s = p["time_fraction"], max(p["time_batches"]), p["width"], p["in_size"]

    def lc(c_in: int, c_out: int, k: int, side_out: int, fraction: float, batch: int) -> int:
        rows = side_out if fraction >= 1 else max(1, round(side_out * fraction))
        positions, fan_in = rows * side_out, c_in * k * k
        return FP32_BYTES * (3 * positions * fan_in * c_out
                             + 2 * batch * (fan_in + c_out) * positions
                             + 3 * batch * fan_in * positions)

    a1 = (s + 4 - 11) // 4 + 1
    a3 = (a1 - 3) // 2 + 1
    c = [max(1, round(n * w / 64)) for n in (64, 192)]
    hidden, flat = 4096 * w // 64, 256 * w // 64 * 36
    layer = max(lc(3, w, 7, s // 2, f, b), lc(w, w, 3, s // 4, f, b),
                lc(3, c[0], 11, a1, f, b), lc(c[0], c[1], 5, a3, f, b),
                FP32_BYTES * (3 * (flat + 1) * hidden + 2 * b * (flat + hidden)))
    check = lc(w, w, 3, s // 4, 1.0, min(p["time_batches"]))
    e2e_params = 1_813_561_344 * (p["e2e_width"] / 64) ** 2 * (p["e2e_in_size"] / 224) ** 2
    e2e = FP32_BYTES * 3 * e2e_params + FP32_BYTES * 3 * 24 * p["e2e_width"] \
        * (p["e2e_in_size"] / 4) ** 2 * max(p["e2e_batch"], b)
    return int(1.25 * max(layer, check, e2e))


def local_learning(p: Params) -> int:
    """The data (pixels and patch code) per seed, the Sparsey learner's weights twice, the
    largest net's weights, and 400 MB for the interpreter and torch (measured peak on the
    cpu profile: 1.09 GB)."""
    n, side = (5000, 28) if p["dataset"] == "mnist" else (1797, 8)
    code = (side // p["patch"]) ** 2 * (2 ** (p["patch"] ** 2) - 1)
    data = p["num_seeds"] * n * (side * side + code) * FP32_BYTES
    sparsey = 2 * max(side * side, code) * p["sparsey_Q"] * p["sparsey_K"] * FP32_BYTES
    nets = 8 * code * max(p["hidden"], p["rbm_hidden"], p["kh_hidden"]) * FP32_BYTES
    return int(data + sparsey + nets + 400e6)


def one_shot(p: Params) -> int:
    """The stored items, the storage macrocolumns' weights per size, the approximate
    index's links, the codes, the digits and their patch code, the Sparsey classifier's
    weights, and 400 MB for the interpreter and torch."""
    sizes, bits = p["store_sizes"], p["item_bits"]
    side = 28 if p["dataset"] == "mnist" else 8
    code = (side // p["patch"]) ** 2 * (2 ** (p["patch"] ** 2) - 1)
    return int((max(sizes) + 64) * bits
               + (len(sizes) + 1) * bits * p["sdr_Q"] * p["sdr_K"] * FP32_BYTES
               + sum(sizes) * (bits // 8 + 16 * p["ann_links"])
               + max(sizes) * p["sdr_Q"] * 8 + 5000 * (side * side + code) * FP32_BYTES
               + 2 * code * p["sparsey_Q"] * p["sparsey_K"] * FP32_BYTES + 400e6)


def parallelism(p: Params) -> int:
    """Per process: the digits, the locally connected net (weights, gradients, SGD, DDP
    bucket, server copies), activations, sweep buffers and 400 MB; times ``world_size``."""
    canvas, chans, world = p["canvas"], p["channels"], p["world_size"]
    lc = acts = 0
    size, c_in = canvas, 1
    for c_out in chans:
        lc += size * size * c_out * (c_in * 9 + 1)
        acts += size * size * (c_in * 9 * 3 + c_out * 3)
        size, c_in = size // 2, c_out
    lc += c_in * size * size * 10 + 10
    per = (1797 * canvas * canvas * FP32_BYTES + 6 * lc * FP32_BYTES
           + FP32_BYTES * p["batch_size"] * world * acts * 2
           + 3 * p["sweep_max_kib"] * 1024 + 400 * 2 ** 20)
    return int(world * per)


def sharing_buys(p: Params) -> int:
    """The largest net's parameters x 4 (weights, gradients, two Adam moments), the digits,
    and the activations of a 1,000-image evaluation chunk (measured peak on the cpu
    profile: 758 MB)."""
    side = 28 if p["image_data"] == "mnist" else 8
    width, k2 = side + 2 * p["max_shift_px"], p["kernel_size"] ** 2
    c, h, w, lc = [1, *p["channels"]], side, side + 2 * p["max_shift_px"], 0
    for cin, cout in zip(c, c[1:], strict=False):
        lc += h * w * (cin * k2 * cout + cout)
        h, w = h // 2, w // 2
    lc += c[-1] * h * w * 10 + 10
    dense = side * width * p["hidden"] + p["hidden"] ** 2 + 10 * p["hidden"]
    weights = 16 * max(lc, dense, 32_610)  # 32,610: the MNIST-1D locally connected net
    data = FP32_BYTES * (5000 * 784 + (10 * p["train_per_class"]
                                       + p["shift_test_size"] * len(p["test_shifts"]))
                         * side * width)
    act = 3 * FP32_BYTES * 1000 * side * width * (k2 + 2 * p["channels"][0])
    return int(weights + data + act)


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
