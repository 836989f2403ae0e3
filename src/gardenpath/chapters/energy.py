"""Chapter 1, "Where the energy goes": movement's share of a training step's energy, modelled
through the memory hierarchy, and this device's ceilings on the page.

The claim (:data:`CLAIM`): moving data, not arithmetic, costs most of a computer's energy.
A ResNet-18 training step's counted work (MACs, element-wise ops) and word accesses at
three levels (register file, on-chip buffer, DRAM; :mod:`gardenpath.measure.hierarchy`,
under a named dataflow) are priced with two published cost tables: Horowitz's 45 nm
figures (32-bit rows as tabulated by Han et al. 2015) and Sze et al.'s Eyeriss figures
(65 nm, normalised to one MAC). Movement's share is a range: from counting DRAM only (each
tensor moved once, a lower bound) to the whole hierarchy.

Tests (one per cost table; threshold from the notebook's parameters cell): the essay is
supported when movement's share range lies at or above ``movement_share_threshold``.
The range moves with the dataflow, batch and image size, and the tables disagree on how
dear DRAM is, so each test can come out either way.

Facts beside them (they never vote): Horowitz's DRAM access over an fp32 FLOP (a ratio
within one published table), the brain's energy per synaptic event from published
estimates against this model's joules per FLOP. The measured roofline and layer times stay
on the page: time does not vote on a claim about energy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from gardenpath import claims, verdict
from gardenpath.constants import FP32_BYTES
from gardenpath.measure.energy import (
    HOROWITZ_45NM_PJ,
    MODEL_METHOD,
    PJ,
    EnergyMonitor,
    model_energy,
)
from gardenpath.measure.hierarchy import (
    COST_TABLES,
    DATAFLOWS,
    HOROWITZ,
    Accesses,
    conv_accesses,
    elementwise_accesses,
)
from gardenpath.measure.roofline import Roofline
from gardenpath.measure.timing import time_fn
from gardenpath.measure.traffic import layer_traffic

CLAIM = claims.claim("energy")

#: Element-wise cost of batch norm (training) followed by ReLU, forward + backward, per
#: element, counted by hand from the textbook formulas (PyTorch's FLOP counter does not
#: count element-wise work). Forward: mean 1, variance 3, normalise 2, scale and shift 2,
#: ReLU 1; backward: ReLU mask 1, the two parameter sums 3, the input gradient 5.
BN_RELU_FLOPS_PER_ELEMENT = 18
#: Fewest tensors of the output's size a batch norm + ReLU step reads or writes: forward
#: reads x and writes y; backward reads dy and x and writes dx.
BN_RELU_TENSORS = 5


#: Levy & Calvert, PNAS 2021: the brain's power and the cortex's split (ATP watts).
LEVY_CALVERT = {"brain_w": 20.0, "cortex_computation_w": 0.1, "cortex_communication_w": 3.5}

#: Free energy of ATP hydrolysis under cellular conditions, about 50 kJ/mol (a textbook
#: value, assumed here to turn ATP counts into joules), per molecule.
ATP_J = 50e3 / 6.02214076e23

#: Published estimates of the brain's energy per synaptic event, each with its definition.
#: ``atp_parts`` are ATP molecules per event by component; ``checked`` says where the
#: figures were read.
BRAIN_PER_EVENT: list[dict[str, Any]] = [
    {"key": "attwell_laughlin_2001", "label": "Attwell & Laughlin 2001",
     "atp_parts": {"postsynaptic Na+ extrusion": 7.0e4, "presynaptic Ca2+ extrusion": 1.2e4},
     "definition": "per vesicle of glutamate released (rodent grey matter): pumping out "
                   "the ions that enter the postsynaptic cell and the Ca2+ that triggered "
                   "release; transmitter recycling left out",
     "checked": "both parts from the paper (p. 1136) as quoted by BioNumbers 108625 and "
                "108626"},
    {"key": "lennie_2003", "label": "Lennie 2003",
     "atp_parts": {"one spike in human cortex, over 10^4 synapses": 3.84e9 / 1e4},
     "definition": "per synapse a spike reaches: the cost of one spike in human cortex, "
                   "its synaptic transmission included, over 10^4 synapses per neuron",
     "checked": "as summarised by a secondary source, not checked against the paper"},
]
#: The headline estimate (its definition, one vesicle released, is the closest to one
#: synaptic operation).
BRAIN_HEADLINE = "attwell_laughlin_2001"

#: A GPU's energy per FLOP where none was measured: NVIDIA A100 (SXM4) datasheet, 400 W
#: board power at its 19.5 TFLOP/s fp32 peak (an upper bound per FLOP at full load).
A100_J_PER_FLOP = 400.0 / 19.5e12


def brain_j_per_event() -> dict[str, float]:
    """Joules per synaptic event for each published estimate (ATP count x :data:`ATP_J`)."""
    return {e["key"]: sum(e["atp_parts"].values()) * ATP_J for e in BRAIN_PER_EVENT}


def published_numbers() -> dict[str, float]:
    """The published anchors this chapter shows, and ratios computed from them (not typed)."""
    h = HOROWITZ_45NM_PJ
    lc = LEVY_CALVERT
    return {
        "horowitz_dram_32b_pj": h["dram_32b"],
        "horowitz_dram_64b_low_pj": h["dram_64b_low"],
        "horowitz_dram_64b_high_pj": h["dram_64b_high"],
        "horowitz_fp_mult_32b_pj": h["fp_mult_32b"],
        "horowitz_fp_add_32b_pj": h["fp_add_32b"],
        "horowitz_sram_32b_pj": h["sram_32b"],
        "horowitz_register_file_32b_pj": h["register_file_32b"],
        "horowitz_dram_over_fp_mult": h["dram_32b"] / h["fp_mult_32b"],
        "horowitz_dram_over_flop": h["dram_32b"] / (HOROWITZ.mac / 2),
        "horowitz_pj_per_flop": model_energy(2, 0).energy_j / 2 / PJ,
        **{f"sze_{k}": getattr(COST_TABLES["sze"], k)
           for k in ("rf", "buffer", "dram")},
        "brain_w": lc["brain_w"],
        "brain_computation_w": lc["cortex_computation_w"],
        "brain_communication_w": lc["cortex_communication_w"],
        "brain_communication_over_computation": (
            lc["cortex_communication_w"] / lc["cortex_computation_w"]),
        "atp_j": ATP_J,
        **{f"brain_j_{k}": v for k, v in brain_j_per_event().items()},
        "a100_j_per_flop": A100_J_PER_FLOP,
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
        return FP32_BYTES * self.pj_per_byte / self.pj_per_flop

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
        weight_elems, in_elems, out_elems: tensor sizes (bn: ``out_elems`` its elements).
        out_width: width of its output rows.
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
    weight_elems: int = 0
    in_elems: int = 0
    out_elems: int = 0
    out_width: int = 1

    @property
    def intensity(self) -> float:
        """FLOPs per byte."""
        return self.flops / self.bytes

    def accesses(self, dataflow: str) -> Accesses:
        """One such layer's MACs, ops and word accesses under ``dataflow``."""
        if self.kind == "bn_relu":
            return elementwise_accesses(self.out_elems, BN_RELU_FLOPS_PER_ELEMENT,
                                        BN_RELU_TENSORS)
        passes = 2 if self.first else 3
        return conv_accesses(dataflow, self.flops / 2 / passes, self.weight_elems,
                             self.in_elems, self.out_elems, self.kernel_size,
                             self.out_width, input_grad=not self.first)


def resnet18_ops(image_size: int, batch_size: int) -> list[Op]:
    """ResNet-18's convolutions and the batch norm (+ ReLU) after each, deduplicated.

    Conv FLOPs and bytes come from :func:`gardenpath.measure.traffic.layer_traffic`
    (forward, input gradient, weight gradient; the first layer has no input gradient).
    Batch norm + ReLU: :data:`BN_RELU_FLOPS_PER_ELEMENT` FLOPs and
    :data:`BN_RELU_TENSORS` fp32 tensors per output element. Residual adds, pooling and
    the classifier are left out (little arithmetic).
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
        out = spec.out_shape
        _add(ops, key, Op(spec.name, "conv", stage, 1, flops, nbytes, spec.in_shape,
                          m.out_channels, k, s, p, first, t.params,
                          t.input_bytes // t.dtype_bytes, t.output_bytes // t.dtype_bytes,
                          out[3]))
        elems = out[0] * out[1] * out[2] * out[3]
        key = ("bn_relu", out)
        _add(ops, key, Op(f"bn after {spec.name}", "bn_relu", stage, 1,
                          BN_RELU_FLOPS_PER_ELEMENT * elems, BN_RELU_TENSORS * 4 * elems,
                          tuple(out), out[1], 0, 1, 0, out_elems=elems, out_width=out[3]))
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


# ----------------------------------------------------------------------------- the model


def step_accesses(ops: list[Op], dataflow: str) -> Accesses:
    """A whole ResNet-18 step's MACs, ops and word accesses under ``dataflow``."""
    total = Accesses()
    for op in ops:
        total = total + op.accesses(dataflow).times(op.count)
    return total


def share_table(ops: list[Op]) -> pd.DataFrame:
    """Movement's share range (DRAM only, whole hierarchy) per cost table and dataflow."""
    rows = []
    for key, costs in COST_TABLES.items():
        for flow in DATAFLOWS:
            low, high = step_accesses(ops, flow).share_range(costs)
            rows.append({"cost_table": key, "table_name": costs.name, "dataflow": flow,
                         "low": low, "high": high})
    return pd.DataFrame(rows)


def stage_energy(ops: list[Op], dataflow: str) -> pd.DataFrame:
    """Joules by stage, layer kind and part (arithmetic, DRAM, buffer, register file),
    modelled with Horowitz's 45 nm table under ``dataflow``, for a chart."""
    names = {"arithmetic": "arithmetic", "dram": "DRAM", "buffer": "on-chip buffer",
             "rf": "register file"}
    rows = []
    for op in ops:
        label = f"{op.stage} {'conv' if op.kind == 'conv' else 'BN+ReLU'}"
        for part, pj in op.accesses(dataflow).times(op.count).energy(HOROWITZ).items():
            rows.append({"group": label, "part": names[part], "energy_j": HOROWITZ.joules(pj)})
    return pd.DataFrame(rows).groupby(["group", "part"], as_index=False, sort=False).sum()


def _range(shares: pd.DataFrame, table: str, dataflow: str) -> tuple[float, float]:
    row = shares[(shares["cost_table"] == table) & (shares["dataflow"] == dataflow)].iloc[0]
    return float(row["low"]), float(row["high"])


# ----------------------------------------------------------------------------- the run


@dataclass
class Result:
    """What :func:`run` produced: the parameters, the modelled share ranges and the
    comparison numbers (what :func:`decide` reads), and the measurements for the page."""

    params: dict[str, Any]
    shares: pd.DataFrame
    numbers: dict[str, Any]
    measurements: dict[str, Any] = field(default_factory=dict)
    device_name: str = ""
    roof: Roofline | None = None
    caches: list[dict[str, Any]] = field(default_factory=list)
    op_energy: OpEnergy | None = None
    ops: list[Op] = field(default_factory=list)
    table: pd.DataFrame | None = None


def gpu_j_per_flop(op_energy: OpEnergy, device: torch.device) -> tuple[float, str]:
    """A GPU's joules per FLOP: measured with NVML on this GPU (the matmul's energy, idle
    power included) when the run has one, else the A100 datasheet figure."""
    if device.type == "cuda" and op_energy.measured and op_energy.total_pj_per_flop:
        return op_energy.total_pj_per_flop * PJ, f"measured on this GPU ({op_energy.method})"
    return A100_J_PER_FLOP, "published: NVIDIA A100 datasheet, 400 W at 19.5 TFLOP/s fp32"


def comparison_numbers(ops: list[Op], dataflow: str) -> dict[str, float]:
    """The key numbers of the model: share ranges, J per FLOP, the brain comparison."""
    acc = step_accesses(ops, dataflow)
    flops = 2 * acc.macs + acc.ops
    parts = acc.energy(HOROWITZ)
    low, high = acc.share_range(HOROWITZ)
    sze_low, sze_high = acc.share_range(COST_TABLES["sze"])
    machine = HOROWITZ.joules(sum(parts.values())) / flops
    machine_low = HOROWITZ.joules(parts["arithmetic"] + parts["dram"]) / flops
    brain = brain_j_per_event()[BRAIN_HEADLINE]
    return {
        "movement_share_low": low, "movement_share_high": high,
        "sze_movement_share_low": sze_low, "sze_movement_share_high": sze_high,
        "step_flops": flops, "step_macs": acc.macs,
        "step_dram_bytes": acc.dram * FP32_BYTES,
        **{f"step_{part}_j": HOROWITZ.joules(pj) for part, pj in parts.items()},
        "step_energy_j": HOROWITZ.joules(sum(parts.values())),
        "machine_j_per_flop": machine, "machine_j_per_flop_dram_only": machine_low,
        "brain_j_per_synaptic_event": brain,
        "machine_flop_over_brain_event": machine / brain,
        "buffer_per_mac": acc.buffer / max(acc.macs, 1),
    }


def run(params: dict[str, Any], device: torch.device) -> Result:
    """Measure the ceilings and the layers' times (for the page), model the step's energy."""
    torch.manual_seed(params["seed"])
    ws = params["working_sets_kib"]
    roof = measure_ceilings(device, ws, params["matmul_n"], params["bandwidth_kernel"],
                            params["min_run_time_s"])
    op_energy = measure_op_energy(device, max(ws) * 1024, params["matmul_n"],
                                  params["energy_window_s"])
    ops = resnet18_ops(params["image_size"], params["batch_size"])
    table = op_table(ops, time_ops(ops, device, params["min_run_time_s"], params["seed"]),
                     roof)
    numbers = comparison_numbers(ops, params["dataflow"])
    gpu, gpu_source = gpu_j_per_flop(op_energy, device)
    numbers["gpu_j_per_flop_source"] = gpu_source
    fastest = max(p.bytes_per_s for p in roof.bandwidth)
    measurements = {
        "gpu_j_per_flop": gpu,
        "main_memory_gb_per_s": roof.peak_bytes_per_s / 1e9,
        "fastest_gb_per_s": fastest / 1e9,
        "cache_over_memory": fastest / roof.peak_bytes_per_s,
        "peak_gflops_per_s": roof.peak_flops_per_s / 1e9,
        "ridge_flop_per_byte": roof.ridge_intensity,
        "memory_bound_time_share": memory_bound_time_share(table),
        "step_time_s": float(table["step_time_s"].sum()),
        "energy": op_energy.as_dict(),
    }
    from gardenpath.measure.device import describe

    info = describe(device)
    return Result(params=params, shares=share_table(ops), numbers=numbers,
                  measurements=measurements,
                  device_name=f"{info.get('name') or device.type} ({device})", roof=roof,
                  caches=cache_levels(device), op_energy=op_energy, ops=ops, table=table)


# ----------------------------------------------------------------------------- verdict


def decide(result: Result) -> verdict.Decision:
    """One test per cost table on movement's share range; the comparisons as facts."""
    flow = result.params["dataflow"]
    rule = verdict.Rule(">=", float(result.params["movement_share_threshold"]))
    tests = [
        verdict.Test(f"movement share, {COST_TABLES[key].name}",
                     f"movement's share of a ResNet-18 step's energy ({COST_TABLES[key].name}, "
                     f"DRAM only to whole hierarchy, {flow.replace('_', '-')})",
                     verdict.span(*_range(result.shares, key, flow)), rule)
        for key in ("horowitz", "sze")]
    pub = published_numbers()
    n = result.numbers
    facts = [
        verdict.Fact("DRAM access against a FLOP", "32-bit DRAM access / fp32 FLOP",
                     pub["horowitz_dram_over_flop"], "x",
                     "Horowitz 2014, 45 nm, as tabulated by Han et al. 2015"),
        verdict.Fact("brain per synaptic event", "energy per vesicle released",
                     n["brain_j_per_synaptic_event"] * 1e15, "fJ",
                     f"Attwell & Laughlin 2001, ATP at {ATP_J * 1e20:.1f}e-20 J"),
        verdict.Fact("machine per FLOP", "modelled energy per FLOP of the step",
                     n["machine_j_per_flop"] * 1e12, "pJ",
                     "modelled with Horowitz's 45 nm table, whole hierarchy"),
        verdict.Fact("machine FLOP over brain event", "J per FLOP / J per synaptic event",
                     n["machine_flop_over_brain_event"], "x",
                     "both from published tables: a comparison, not a measurement"),
    ]
    return verdict.Decision(tests, facts)


def energy_note(op_energy: OpEnergy) -> str:
    """A short sentence with this run's energy readings (or why there are none)."""
    if not op_energy.measured:
        return ("no energy counter is readable on this device (no NVIDIA GPU with NVML, "
                "no RAPL files), so nothing here is measured energy")
    return (
        f"counter {op_energy.counter}, windows of {op_energy.window_s:.1f} s; the device drew "
        f"{op_energy.idle_w:.0f} W idle, {op_energy.copy_w:.0f} W copying and "
        f"{op_energy.matmul_w:.0f} W in the matmul; with idle power included a byte copied "
        f"took {op_energy.total_pj_per_byte:.3g} pJ and a FLOP "
        f"{op_energy.total_pj_per_flop:.3g} pJ"
    )


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


def share_chart(shares: pd.DataFrame, threshold: float, chosen: str,
                title: str) -> alt.LayerChart:
    """Movement's share range per dataflow and cost table, against the threshold."""
    df = shares.assign(flow=shares["dataflow"].str.replace("_", "-"),
                       chosen=shares["dataflow"].eq(chosen).map(
                           {True: "the test's dataflow", False: "other dataflows"}))
    y = alt.Y("flow:N", title=None)
    x = alt.X("low:Q", scale=alt.Scale(domain=[0, 1]),
              title="movement's share of the step's energy (DRAM only to whole hierarchy)",
              axis=alt.Axis(format="%"))
    bars = alt.Chart().mark_rule(strokeWidth=6).encode(
        x=x, x2="high:Q", y=y,
        opacity=alt.Opacity("chosen:N", title=None, scale=alt.Scale(
            domain=["the test's dataflow", "other dataflows"], range=[1.0, 0.4])),
        tooltip=["table_name:N", "flow:N", alt.Tooltip("low:Q", format=".1%"),
                 alt.Tooltip("high:Q", format=".1%")])
    rule = alt.Chart().mark_rule(color="#888", strokeDash=[4, 4]).encode(
        x=alt.datum(threshold))
    return alt.layer(bars, rule, data=df).properties(width=420, height=90).facet(
        row=alt.Row("table_name:N", title=None,
                    header=alt.Header(labelAngle=0, labelAlign="left"))
    ).properties(title=title)


def stage_chart(stages: pd.DataFrame, title: str) -> alt.Chart:
    """Stacked bars: a ResNet-18 step's modelled energy by stage and layer kind, by part."""
    order = ["arithmetic", "register file", "on-chip buffer", "DRAM"]
    return alt.Chart(stages).mark_bar().encode(
        y=alt.Y("group:N", sort=None, title=None),
        x=alt.X("energy_j:Q", title="modelled energy per training step (J)", stack="zero"),
        color=alt.Color("part:N", title=None, sort=order,
                        legend=alt.Legend(orient="bottom", labelLimit=0)),
        order=alt.Order("part_order:Q"),
        tooltip=["group:N", "part:N", alt.Tooltip("energy_j:Q", format=".3g")],
    ).transform_calculate(
        part_order=f"indexof({order!r}, datum.part)"
    ).properties(title=title)


def per_event_rows(numbers: dict[str, Any], gpu_j: float, gpu_source: str) -> pd.DataFrame:
    """Joules per synaptic event (published) and per FLOP (modelled, and a GPU's)."""
    per_event = brain_j_per_event()
    rows = [{"what": f"brain, per synaptic event ({e['label']})",
             "joules": per_event[e["key"]], "kind": "brain (published)"}
            for e in BRAIN_PER_EVENT]
    rows += [{"what": "machine, per FLOP, DRAM only (modelled)",
              "joules": numbers["machine_j_per_flop_dram_only"], "kind": "machine (modelled)"},
             {"what": "machine, per FLOP, whole hierarchy (modelled)",
              "joules": numbers["machine_j_per_flop"], "kind": "machine (modelled)"},
             {"what": f"GPU, per FLOP ({gpu_source.split(':')[0]})", "joules": gpu_j,
              "kind": "GPU"}]
    return pd.DataFrame(rows)


def per_event_chart(rows: pd.DataFrame, title: str) -> alt.Chart:
    """Dots on a log axis: joules per synaptic event against joules per FLOP."""
    return alt.Chart(rows).mark_point(filled=True, size=110).encode(
        y=alt.Y("what:N", sort=None, title=None, axis=alt.Axis(labelLimit=0)),
        x=alt.X("joules:Q", scale=alt.Scale(type="log"), title="joules (log scale)"),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["what:N", alt.Tooltip("joules:Q", format=".3g")],
    ).properties(title=title)
