"""Chapter 1, "Where the energy goes": this device's ceilings, energy per byte and per FLOP.

The essay (Rinkus) says most of a computer's power goes into moving data, not into
arithmetic, and contrasts that with a brain running on about 20 W. This module measures
the device's memory bandwidth over working sets (caches to main memory) and its matmul
throughput (:mod:`gardenpath.measure.roofline`), gets the energy of a byte moved and of a
FLOP (measured with NVML on NVIDIA GPUs or RAPL on CPUs that expose it, else modelled from
Horowitz's 45 nm table, :mod:`gardenpath.measure.energy`), and places the layers of a
typical network, ResNet-18's convolutions and the batch norm + ReLU after each, on the
roofline from their measured times.

Three tests decide the verdict (thresholds below, stated before any data is seen):

1. **per operand**: fetching one 32-bit operand from main memory costs at least
   :data:`OPERAND_RATIO_THRESHOLD` times the energy of one fp32 FLOP;
2. **per step**: in a ResNet-18 training step, moving the fewest bytes the layers must
   move costs at least :data:`MOVEMENT_SHARE_THRESHOLD` of the step's (arithmetic +
   movement) energy;
3. **time**: at least :data:`MEMORY_BOUND_TIME_SHARE_THRESHOLD` of the step's measured
   time is spent in layers left of the ridge point (bandwidth-bound).

"supported" when all three hold, "not supported" when the first fails, "mixed" otherwise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from gardenpath.measure.energy import (
    HOROWITZ_45NM_PJ,
    MODEL_METHOD,
    PJ,
    SZE_2017_NORMALISED,
    EnergyMonitor,
    model_energy,
)
from gardenpath.measure.roofline import Roofline
from gardenpath.measure.timing import time_fn
from gardenpath.measure.traffic import layer_traffic

#: Test 1: a 32-bit operand from DRAM must cost this many fp32 FLOPs' energy or more.
OPERAND_RATIO_THRESHOLD = 10.0
#: Test 2: data movement's share of a ResNet-18 step's energy must reach this.
MOVEMENT_SHARE_THRESHOLD = 0.5
#: Test 3: bandwidth-bound layers' share of a ResNet-18 step's measured time must reach this.
MEMORY_BOUND_TIME_SHARE_THRESHOLD = 0.5

#: Levy & Calvert, PNAS 2021 (anchors): the brain's power and the cortex's split.
BRAIN_ANCHORS: dict[str, Any] = {
    "source": (
        "W. B. Levy, V. G. Calvert, 'Communication consumes 35 times more energy than "
        "computation in the human cortex, but both costs are needed to predict synapse "
        "number', PNAS 2021"
    ),
    "brain_w": 20.0,
    "cortex_computation_w": 0.1,
    "cortex_communication_w": 3.5,
}

#: Element-wise cost of batch norm (training) followed by ReLU, forward + backward, per
#: element, counted by hand from the textbook formulas (PyTorch's FLOP counter does not
#: count element-wise work). Forward: mean 1, variance 3, normalise 2, scale and shift 2,
#: ReLU 1; backward: ReLU mask 1, the two parameter sums 3, the input gradient 5.
BN_RELU_FLOPS_PER_ELEMENT = 18
#: Fewest tensors of the output's size a batch norm + ReLU step reads or writes: forward
#: reads x and writes y; backward reads dy and x and writes dx.
BN_RELU_TENSORS = 5

BYTES_PER_OPERAND = 4  # fp32


# ----------------------------------------------------------------------------- published


def published_numbers() -> dict[str, float]:
    """The anchors this chapter compares with, and ratios computed from them (not typed).

    * ``horowitz_dram_over_fp_mult``: 32-bit DRAM access / fp32 multiply (45 nm);
    * ``horowitz_dram_over_fp32_mac``: 32-bit DRAM access / (fp32 multiply + add);
    * ``horowitz_dram_pj_per_byte``: 32-bit DRAM access / 4 bytes;
    * ``horowitz_pj_per_flop``: (fp32 add + multiply) / 2, as :func:`model_energy`;
    * ``sze_*``: Sze et al. 2017's energy per access relative to one MAC (65 nm);
    * ``brain_*``: Levy & Calvert 2021's watts and their communication/computation ratio.
    """
    h = HOROWITZ_45NM_PJ
    mac = h["fp_mult_32b"] + h["fp_add_32b"]
    brain = BRAIN_ANCHORS
    return {
        "horowitz_dram_32b_pj": h["dram_32b"],
        "horowitz_fp_mult_32b_pj": h["fp_mult_32b"],
        "horowitz_fp_add_32b_pj": h["fp_add_32b"],
        "horowitz_sram_32b_pj": h["sram_32b"],
        "horowitz_register_file_32b_pj": h["register_file_32b"],
        "horowitz_dram_over_fp_mult": h["dram_32b"] / h["fp_mult_32b"],
        "horowitz_dram_over_fp32_mac": h["dram_32b"] / mac,
        "horowitz_dram_pj_per_byte": h["dram_32b"] / BYTES_PER_OPERAND,
        "horowitz_pj_per_flop": model_energy(2, 0).energy_j / 2 / PJ,
        "sze_register_file": SZE_2017_NORMALISED["register_file"],
        "sze_pe": SZE_2017_NORMALISED["pe"],
        "sze_buffer": SZE_2017_NORMALISED["buffer"],
        "sze_dram": SZE_2017_NORMALISED["dram"],
        "brain_w": brain["brain_w"],
        "brain_computation_w": brain["cortex_computation_w"],
        "brain_communication_w": brain["cortex_communication_w"],
        "brain_communication_over_computation": (
            brain["cortex_communication_w"] / brain["cortex_computation_w"]
        ),
    }


# ----------------------------------------------------------------------------- the device


def cache_levels(device: torch.device) -> list[dict[str, Any]]:
    """Data/unified cache sizes of this device, for marking the bandwidth curve.

    CPU: ``/sys/devices/system/cpu/cpu0/cache/index*`` (per-core sizes as the kernel
    reports them); CUDA: the L2 size from the device properties. Empty when unknown.
    """
    levels: list[dict[str, Any]] = []
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        size = getattr(props, "L2_cache_size", None)
        if size:
            levels.append({"level": "L2", "size_bytes": int(size)})
        return levels
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            kind = (index / "type").read_text().strip()
            level = (index / "level").read_text().strip()
            size = _parse_size((index / "size").read_text().strip())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size:
            levels.append({"level": f"L{level}", "size_bytes": size})
    return levels


def _parse_size(text: str) -> int:
    """``"32K"`` -> 32768, ``"1024K"`` -> 1048576, ``"32M"`` -> 33554432 (bytes)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1].upper() in units:
        return int(text[:-1]) * units[text[-1].upper()]
    return int(text)


def largest_set_level(working_sets_kib: list[int], caches: list[dict[str, Any]]) -> str:
    """Where the largest working set lives: ``"main memory"`` when it exceeds every cache
    reported, else the smallest cache that holds it (then the "memory" roof is a cache's)."""
    largest = max(working_sets_kib) * 1024
    holding = [c for c in caches if c["size_bytes"] >= largest]
    if not holding:
        return "main memory"
    return min(holding, key=lambda c: c["size_bytes"])["level"] + " cache"


def measure_ceilings(
    device: torch.device,
    working_sets_kib: list[int],
    matmul_n: int,
    kernel: str,
    min_run_time_s: float,
) -> Roofline:
    """Measure bandwidth over ``working_sets_kib`` and ``matmul_n`` matmul FLOP/s (fp32)."""
    return Roofline.measure(
        device,
        sizes_bytes=[int(k) * 1024 for k in working_sets_kib],
        matmul_n=matmul_n,
        kernel=kernel,  # type: ignore[arg-type]
        min_run_time_s=min_run_time_s,
    )


# ----------------------------------------------------------------------------- energy


@dataclass
class OpEnergy:
    """Energy of one byte moved from main memory and of one fp32 FLOP on this device.

    Attributes:
        method: ``"measured: NVML"``, ``"measured: RAPL"`` or ``"modelled: Horowitz 45nm"``.
        pj_per_byte: energy per byte of a main-memory copy (read + write counted), pJ;
            measured: above idle power.
        pj_per_flop: energy per FLOP of a large fp32 matmul, pJ; measured: above idle.
        total_pj_per_byte: the same with idle power included (measured only).
        total_pj_per_flop: the same with idle power included (measured only).
        idle_w: power with the device idle, W (measured only).
        copy_w: mean power during the copy window, W (measured only).
        matmul_w: mean power during the matmul window, W (measured only).
        window_s: length of each measured window, s.
        counter: the counter read, if any.
    """

    method: str
    pj_per_byte: float
    pj_per_flop: float
    total_pj_per_byte: float | None = None
    total_pj_per_flop: float | None = None
    idle_w: float | None = None
    copy_w: float | None = None
    matmul_w: float | None = None
    window_s: float | None = None
    counter: str | None = None

    @property
    def measured(self) -> bool:
        """Whether the numbers came from a hardware counter."""
        return self.method.startswith("measured")

    @property
    def operand_ratio(self) -> float:
        """Energy of one 32-bit operand from main memory over one fp32 FLOP."""
        return BYTES_PER_OPERAND * self.pj_per_byte / self.pj_per_flop

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``operand_ratio``."""
        out = asdict(self)
        out["operand_ratio"] = self.operand_ratio
        return out


def modelled_op_energy() -> OpEnergy:
    """Horowitz 45 nm: a byte from DRAM costs 640/4 pJ, an fp32 FLOP (mult + add)/2 pJ."""
    per_byte = model_energy(0, 1).energy_j / PJ
    per_flop = model_energy(2, 0).energy_j / 2 / PJ
    return OpEnergy(method=MODEL_METHOD, pj_per_byte=per_byte, pj_per_flop=per_flop)


def _window(monitor: EnergyMonitor, name: str, fn: Callable[[], Any], calls: int) -> Any:
    monitor.begin_window(name)
    for _ in range(calls):
        fn()
    return monitor.end_window(name)


def measure_op_energy(
    device: torch.device,
    copy_bytes: int,
    matmul_n: int,
    window_s: float,
    monitor: EnergyMonitor | None = None,
) -> OpEnergy:
    """Energy per byte copied and per matmul FLOP, measured when a counter exists.

    With a counter (NVML or RAPL), three windows of about ``window_s`` seconds each:
    the device idle (``time.sleep``), a ``copy_bytes`` working-set copy repeated, and an
    ``n x n`` fp32 matmul repeated. ``pj_per_byte = (E_copy - P_idle t_copy) / bytes``,
    bytes counted as the copy's reads plus writes; ``pj_per_flop`` likewise with
    ``2 n^3`` FLOPs per matmul. Without a counter, :func:`modelled_op_energy`.
    """
    monitor = monitor or EnergyMonitor(device)
    if monitor.method == MODEL_METHOD:
        return modelled_op_energy()
    n_elems = max(1, copy_bytes // 8)  # two fp32 arrays of copy_bytes / 2
    a = torch.rand(n_elems, device=device)
    b = torch.empty_like(a)
    moved = 2 * n_elems * 4

    def copy() -> None:
        b.copy_(a)

    x = torch.rand(matmul_n, matmul_n, device=device)
    y = torch.rand(matmul_n, matmul_n, device=device)
    out = torch.empty_like(x)

    def mm() -> None:
        torch.mm(x, y, out=out)

    flops = 2 * matmul_n**3
    t_copy = time_fn(copy, device=device, min_run_time_s=0.1).median_s
    t_mm = time_fn(mm, device=device, min_run_time_s=0.1).median_s
    idle = _window(monitor, "idle", lambda: time.sleep(window_s), 1)
    n_copy = max(1, math.ceil(window_s / t_copy))
    n_mm = max(1, math.ceil(window_s / t_mm))
    e_copy = _window(monitor, "copy", copy, n_copy)
    e_mm = _window(monitor, "matmul", mm, n_mm)
    idle_w = idle.energy_j / idle.time_s
    dyn_copy = e_copy.energy_j - idle_w * e_copy.time_s
    dyn_mm = e_mm.energy_j - idle_w * e_mm.time_s
    return OpEnergy(
        method=monitor.method,
        pj_per_byte=dyn_copy / (n_copy * moved) / PJ,
        pj_per_flop=dyn_mm / (n_mm * flops) / PJ,
        total_pj_per_byte=e_copy.energy_j / (n_copy * moved) / PJ,
        total_pj_per_flop=e_mm.energy_j / (n_mm * flops) / PJ,
        idle_w=idle_w,
        copy_w=e_copy.energy_j / e_copy.time_s,
        matmul_w=e_mm.energy_j / e_mm.time_s,
        window_s=window_s,
        counter=monitor.counter,
    )


# ----------------------------------------------------------------------------- ResNet-18


@dataclass
class Op:
    """One distinct layer of a ResNet-18 training step (forward + backward).

    Attributes:
        name: the first layer with this shape (``layer2.0.conv1``, ``bn after conv1``).
        kind: ``"conv"`` or ``"bn_relu"``.
        stage: ``"conv1"``, ``"layer1"`` .. ``"layer4"``.
        count: how many layers of the step have exactly this shape.
        flops: FLOPs of one such layer's forward + backward.
        bytes: fewest bytes one such layer's forward + backward must move.
        in_shape: (B, C, H, W) of its input.
        out_channels, kernel_size, stride, padding: conv geometry (bn: channels, 0, 1, 0).
        first: whether it is the first layer (its input needs no gradient).
    """

    name: str
    kind: str
    stage: str
    count: int
    flops: int
    bytes: int
    in_shape: tuple[int, int, int, int]
    out_channels: int
    kernel_size: int
    stride: int
    padding: int
    first: bool = False

    @property
    def intensity(self) -> float:
        """FLOPs per byte."""
        return self.flops / self.bytes


def resnet18_ops(image_size: int, batch_size: int) -> list[Op]:
    """ResNet-18's convolutions and the batch norm (+ ReLU) after each, deduplicated.

    Conv FLOPs and bytes come from :func:`gardenpath.measure.traffic.layer_traffic`
    (forward, input gradient, weight gradient; the first layer has no input gradient).
    Batch norm + ReLU: :data:`BN_RELU_FLOPS_PER_ELEMENT` FLOPs and
    :data:`BN_RELU_TENSORS` fp32 tensors per output element. Residual adds, pooling and
    the classifier are left out (little arithmetic; leaving them out can only lower the
    bandwidth-bound share).
    """
    from gardenpath.models.nets import layer_specs, resnet18

    # eval(): batch norm in training mode refuses one value per channel (batch 1 at 1x1),
    # and the walk needs shapes only
    net = resnet18("conv", in_size=image_size, device="meta").eval()
    ops: dict[tuple, Op] = {}
    for spec in layer_specs(net, image_size, batch_size):
        m = spec.module
        k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
        b, c, h, _ = spec.in_shape
        first = spec.name == "conv1"
        stage = spec.name.split(".")[0]
        t = layer_traffic("conv", c, m.out_channels, k, h, b, s, p)
        flops = t.forward_flops + t.weight_grad_flops + (0 if first else t.input_grad_flops)
        nbytes = t.forward_bytes + t.weight_grad_bytes + (0 if first else t.input_grad_bytes)
        key = ("conv", spec.in_shape, m.out_channels, k, s, p, first)
        _add(ops, key, Op(spec.name, "conv", stage, 1, flops, nbytes, spec.in_shape,
                          m.out_channels, k, s, p, first))
        out = spec.out_shape
        elems = out[0] * out[1] * out[2] * out[3]
        key = ("bn_relu", out)
        _add(ops, key, Op(f"bn after {spec.name}", "bn_relu", stage, 1,
                          BN_RELU_FLOPS_PER_ELEMENT * elems, BN_RELU_TENSORS * 4 * elems,
                          tuple(out), out[1], 0, 1, 0))
    return list(ops.values())


def _add(ops: dict[tuple, Op], key: tuple, op: Op) -> None:
    if key in ops:
        ops[key].count += 1
    else:
        ops[key] = op


def _op_step(op: Op, device: torch.device, seed: int) -> Callable[[], Any]:
    """A zero-argument forward + backward of ``op`` on seeded random data."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(op.in_shape, generator=g).to(device)
    if op.kind == "conv":
        torch.manual_seed(seed)
        layer: nn.Module = nn.Conv2d(op.in_shape[1], op.out_channels, op.kernel_size,
                                     op.stride, op.padding, bias=False).to(device)
        if not op.first:
            x.requires_grad_(True)
        wrt = [layer.weight] if op.first else [x, layer.weight]

        def fwd() -> torch.Tensor:
            return layer(x)
    else:
        layer = nn.BatchNorm2d(op.in_shape[1]).to(device).train()
        x.requires_grad_(True)
        wrt = [x, layer.weight, layer.bias]

        def fwd() -> torch.Tensor:
            return F.relu(layer(x))

    grad = torch.randn(fwd().shape, generator=g).to(device)

    def step() -> None:
        torch.autograd.grad(fwd(), wrt, grad)

    return step


def time_ops(ops: list[Op], device: torch.device, min_run_time_s: float,
             seed: int) -> list[float]:
    """Median forward + backward time of one layer of each op, seconds."""
    times = []
    for op in ops:
        step = _op_step(op, device, seed)
        times.append(time_fn(step, device=device, min_run_time_s=min_run_time_s).median_s)
        del step
    return times


def op_table(ops: list[Op], times_s: list[float] | None, roof: Roofline | None) -> pd.DataFrame:
    """One row per op: counts, FLOPs, bytes, intensity, and (given times) roofline place."""
    rows = []
    for i, op in enumerate(ops):
        row: dict[str, Any] = {
            "name": op.name, "kind": op.kind, "stage": op.stage, "count": op.count,
            "flops": op.flops, "bytes": op.bytes, "intensity": op.intensity,
        }
        if times_s is not None and roof is not None:
            place = roof.place(op.flops, op.bytes, times_s[i])
            row.update({
                "time_s": times_s[i],
                "step_time_s": times_s[i] * op.count,
                "gflops_per_s": place.achieved_flops_per_s / 1e9,
                "bound": place.bound,
                "fraction_of_roof": place.fraction_of_roof,
            })
        rows.append(row)
    return pd.DataFrame(rows)


def above_roof_note(table: pd.DataFrame) -> str:
    """A sentence for layers that ran faster than the roof allows (empty when none did).

    The compute roof is a matmul's measured throughput; a convolution library can beat the
    matmul library on the same device, and then the roof understates the device's peak.
    """
    above = int((table["fraction_of_roof"] > 1).sum())
    if above == 0:
        return ""
    return (f"{above} of the distinct layers ran faster than the roof allows: the matmul "
            "that sets the compute roof did not reach this device's peak, which those "
            "convolution kernels exceeded, so the compute roof is an underestimate here.")


def memory_bound_time_share(table: pd.DataFrame) -> float:
    """Share of the step's measured time spent in ops left of the ridge point."""
    total = float(table["step_time_s"].sum())
    mem = float(table.loc[table["bound"] == "memory", "step_time_s"].sum())
    return mem / total if total > 0 else float("nan")


def step_energy(ops: list[Op], op_energy: OpEnergy) -> dict[str, float]:
    """Energy of one ResNet-18 step's layers, split into arithmetic and data movement.

    ``arithmetic_j = sum(count * flops) * pj_per_flop``;
    ``movement_j = sum(count * bytes) * pj_per_byte`` (the fewest bytes: a lower bound on
    movement); ``movement_share = movement_j / (arithmetic_j + movement_j)``.
    """
    flops = sum(op.count * op.flops for op in ops)
    nbytes = sum(op.count * op.bytes for op in ops)
    arith = flops * op_energy.pj_per_flop * PJ
    move = nbytes * op_energy.pj_per_byte * PJ
    return {"flops": flops, "bytes": nbytes, "arithmetic_j": arith, "movement_j": move,
            "movement_share": move / (arith + move)}


def stage_energy(ops: list[Op], op_energy: OpEnergy) -> pd.DataFrame:
    """Joules by stage, layer kind and part (arithmetic or data movement), for a chart."""
    rows = []
    for op in ops:
        label = f"{op.stage} {'conv' if op.kind == 'conv' else 'BN+ReLU'}"
        rows.append({"group": label, "part": "arithmetic",
                     "energy_j": op.count * op.flops * op_energy.pj_per_flop * PJ})
        rows.append({"group": label, "part": "data movement (fewest bytes)",
                     "energy_j": op.count * op.bytes * op_energy.pj_per_byte * PJ})
    return pd.DataFrame(rows).groupby(["group", "part"], as_index=False, sort=False).sum()


# ----------------------------------------------------------------------------- verdict


def verdict(operand_ratio: float, movement_share: float,
            memory_bound_share: float) -> tuple[str, dict[str, bool]]:
    """The chapter's verdict from its three tests (see the module docstring)."""
    tests = {
        "per_operand": operand_ratio >= OPERAND_RATIO_THRESHOLD,
        "per_step_energy": movement_share >= MOVEMENT_SHARE_THRESHOLD,
        "per_step_time": memory_bound_share >= MEMORY_BOUND_TIME_SHARE_THRESHOLD,
    }
    if not tests["per_operand"]:
        return "not supported", tests
    if all(tests.values()):
        return "supported", tests
    return "mixed", tests


def explain(verdict_: str, tests: dict[str, bool], op_energy: OpEnergy,
            movement_share: float, memory_bound_share: float) -> str:
    """One paragraph giving the numbers behind the verdict (all from the run)."""
    how = "measured" if op_energy.measured else "modelled from Horowitz's 45 nm table"

    def mark(ok: bool) -> str:
        return "holds" if ok else "fails"

    return (
        f"Energy here is {how}. Per operand: one 32-bit operand from main memory costs "
        f"{op_energy.operand_ratio:.0f} times the energy of an fp32 FLOP (threshold "
        f"{OPERAND_RATIO_THRESHOLD:.0f}; {mark(tests['per_operand'])}). Per step: moving the "
        f"fewest bytes takes {100 * movement_share:.0f}% of a ResNet-18 step's energy "
        f"(threshold {100 * MOVEMENT_SHARE_THRESHOLD:.0f}%; "
        f"{mark(tests['per_step_energy'])}). Time: bandwidth-bound layers take "
        f"{100 * memory_bound_share:.0f}% of the step's measured time (threshold "
        f"{100 * MEMORY_BOUND_TIME_SHARE_THRESHOLD:.0f}%; {mark(tests['per_step_time'])}). "
        f"Verdict: {verdict_}."
    )


def energy_note(op_energy: OpEnergy) -> str:
    """A short sentence with this run's energy readings (or why there are none)."""
    if not op_energy.measured:
        return ("no energy counter is readable on this device (no NVIDIA GPU with NVML, "
                "no RAPL files), so the figures below are modelled")
    return (
        f"counter {op_energy.counter}, windows of {op_energy.window_s:.1f} s; the device drew "
        f"{op_energy.idle_w:.0f} W idle, {op_energy.copy_w:.0f} W copying and "
        f"{op_energy.matmul_w:.0f} W in the matmul; with idle power included a byte cost "
        f"{op_energy.total_pj_per_byte:.3g} pJ and a FLOP {op_energy.total_pj_per_flop:.3g} pJ"
    )


# ----------------------------------------------------------------------------- memory


def memory_estimate(params: dict[str, Any]) -> int:
    """Bytes the chapter needs at most: the largest of the copy working set, the matmul's
    three ``n x n`` fp32 matrices, and the largest ResNet-18 layer's tensors (input,
    output, their gradients, the unfolded input a convolution may build), with a 2x
    margin for the allocator and the library's scratch space."""
    ws = max(params.get("working_sets_kib", [0]) or [0]) * 1024
    n = int(params.get("matmul_n", 0))
    mm = 3 * n * n * 4
    layers = 0
    image, batch = int(params.get("image_size", 224)), int(params.get("batch_size", 1))
    try:
        for op in resnet18_ops(image, batch):
            b, c, h, w = op.in_shape
            x = b * c * h * w * 4
            oh = (h + 2 * op.padding - max(op.kernel_size, 1)) // op.stride + 1
            y = b * op.out_channels * oh * oh * 4
            cols = b * c * op.kernel_size**2 * oh * oh * 4
            layers = max(layers, 2 * x + 2 * y + cols)
    except ValueError:
        pass
    return 2 * max(ws, mm, layers)


# ----------------------------------------------------------------------------- charts


def bandwidth_chart(roof: Roofline, caches: list[dict[str, Any]], title: str) -> alt.Chart:
    """Achieved bandwidth against working set, cache sizes marked."""
    df = pd.DataFrame([
        {"working_set_kib": p.working_set_bytes / 1024, "gb_per_s": p.bytes_per_s / 1e9,
         "kernel": p.kernel, "time_us": p.time_s * 1e6}
        for p in roof.bandwidth
    ])
    x = alt.X("working_set_kib:Q", scale=alt.Scale(type="log", base=2),
              title="working set (KiB, log scale)")
    line = alt.Chart(df).mark_line(point=True).encode(
        x=x, y=alt.Y("gb_per_s:Q", title="achieved bandwidth (GB/s)"),
        tooltip=[alt.Tooltip("working_set_kib:Q", format=",.0f"),
                 alt.Tooltip("gb_per_s:Q", format=".1f"), "kernel:N",
                 alt.Tooltip("time_us:Q", format=".1f")])
    layers: list[alt.Chart] = [line]
    if caches:
        cdf = pd.DataFrame([{"working_set_kib": c["size_bytes"] / 1024,
                             "label": f"{c['level']} {c['size_bytes'] // 1024:,} KiB"}
                            for c in caches])
        rules = alt.Chart(cdf).mark_rule(strokeDash=[4, 4], color="#888").encode(x=x)
        text = alt.Chart(cdf).mark_text(align="left", dx=3, dy=-4, color="#555",
                                        baseline="top").encode(
            x=x, y=alt.value(4), text="label:N")
        layers += [rules, text]
    return alt.layer(*layers).properties(title=title)


def roofline_chart(roof: Roofline, table: pd.DataFrame, title: str,
                   memory_label: str = "main memory") -> alt.LayerChart:
    """The measured roofline with ResNet-18's layers placed from their measured times;
    ``memory_label`` names where the memory roof's working set lived."""
    lo = min(0.1, float(table["intensity"].min()) / 2)
    hi = max(10 * roof.ridge_intensity, float(table["intensity"].max()) * 2)
    xs = [lo * (hi / lo) ** (i / 60) for i in range(61)]
    fastest = max(p.bytes_per_s for p in roof.bandwidth)
    roofs = pd.DataFrame(
        [{"intensity": x, "gflops_per_s": roof.attainable(x) / 1e9,
          "roof": memory_label} for x in xs]
        + [{"intensity": x, "gflops_per_s": roof.attainable(x, fastest) / 1e9,
            "roof": "fastest measured (cache)"} for x in xs]
    )
    x = alt.X("intensity:Q", scale=alt.Scale(type="log"),
              title="arithmetic intensity (FLOP per byte, log scale)")
    y = alt.Y("gflops_per_s:Q", scale=alt.Scale(type="log"),
              title="GFLOP/s (log scale)")
    lines = alt.Chart(roofs).mark_line(color="#444").encode(
        x=x, y=y, strokeDash=alt.StrokeDash("roof:N", title="roof",
                                            sort=[memory_label]))
    ridge = alt.Chart(pd.DataFrame({"intensity": [roof.ridge_intensity]})).mark_rule(
        color="#999", strokeDash=[2, 2]).encode(x=x)
    kind = alt.Color("kind:N", title="layer",
                     scale=alt.Scale(domain=["conv", "bn_relu"],
                                     range=["#1f5f8b", "#d1495b"]))
    pts = alt.Chart(table).mark_point(filled=True, size=70).encode(
        x=x, y=y, color=kind, shape=alt.Shape("bound:N", title="bound"),
        tooltip=["name:N", "count:Q", alt.Tooltip("intensity:Q", format=".2f"),
                 alt.Tooltip("gflops_per_s:Q", format=".2f"), "bound:N",
                 alt.Tooltip("fraction_of_roof:Q", format=".0%"),
                 alt.Tooltip("time_s:Q", format=".2e")])
    return alt.layer(lines, ridge, pts).resolve_scale(color="independent",
                                                      strokeDash="independent").properties(
        title=title)


def ladder_table(op_energy: OpEnergy) -> pd.DataFrame:
    """Energy of one access relative to one fp32 MAC: Horowitz, Sze, this device."""
    h = HOROWITZ_45NM_PJ
    mac = h["fp_mult_32b"] + h["fp_add_32b"]
    ours = "this device, " + ("measured" if op_energy.measured else "modelled (Horowitz)")
    hsrc, ssrc = "Horowitz 2014, 45 nm (published)", "Sze et al. 2017, 65 nm (published)"
    rows = [
        (hsrc, "multiply-accumulate", mac), (hsrc, "register file", h["register_file_32b"]),
        (hsrc, "SRAM (on chip)", h["sram_32b"]), (hsrc, "DRAM (main memory)", h["dram_32b"]),
    ]
    rel = [(src, what, pj / mac, pj) for src, what, pj in rows]
    s = SZE_2017_NORMALISED
    rel += [(ssrc, "multiply-accumulate", s["mac"], None),
            (ssrc, "register file", s["register_file"], None),
            (ssrc, "neighbouring PE", s["pe"], None),
            (ssrc, "SRAM (on chip)", s["buffer"], None),
            (ssrc, "DRAM (main memory)", s["dram"], None)]
    our_mac = 2 * op_energy.pj_per_flop
    our_word = BYTES_PER_OPERAND * op_energy.pj_per_byte
    rel += [(ours, "multiply-accumulate", 1.0, our_mac),
            (ours, "DRAM (main memory)", our_word / our_mac, our_word)]
    return pd.DataFrame(rel, columns=["source", "access", "relative_to_mac", "pj"])


def ladder_chart(op_energy: OpEnergy, title: str) -> alt.Chart:
    """Dots of energy per 32-bit access relative to one MAC, log scale, by source."""
    df = ladder_table(op_energy)
    order = ["multiply-accumulate", "register file", "neighbouring PE", "SRAM (on chip)",
             "DRAM (main memory)"]
    return alt.Chart(df).mark_point(filled=True, size=110, opacity=0.9).encode(
        y=alt.Y("access:N", sort=order, title=None),
        x=alt.X("relative_to_mac:Q", scale=alt.Scale(type="log"),
                title="energy of one access / energy of one multiply-accumulate (log)"),
        color=alt.Color("source:N", title="source",
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=0)),
        shape=alt.Shape("source:N", title="source"),
        tooltip=["source:N", "access:N", alt.Tooltip("relative_to_mac:Q", format=".3g"),
                 alt.Tooltip("pj:Q", format=".3g", title="pJ")],
    ).properties(title=title)


def stage_chart(stages: pd.DataFrame, title: str) -> alt.Chart:
    """Stacked bars: a ResNet-18 step's energy by stage and layer kind, split by part."""
    return alt.Chart(stages).mark_bar().encode(
        y=alt.Y("group:N", sort=None, title=None),
        x=alt.X("energy_j:Q", title="energy per training step (J)", stack="zero"),
        color=alt.Color("part:N", title=None,
                        legend=alt.Legend(orient="bottom", labelLimit=0)),
        tooltip=["group:N", "part:N", alt.Tooltip("energy_j:Q", format=".3g")],
    ).properties(title=title)
