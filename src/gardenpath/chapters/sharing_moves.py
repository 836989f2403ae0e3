"""Chapter 2, "What sharing moves": one layer, convolution against locally connected.

The essay (Rinkus) says tied parameters force massive data movement, because each shared
weight's gradient is accumulated over all spatial positions. We put the two kinds of layer
side by side with identical shapes (``torch.nn.Conv2d`` and
:class:`gardenpath.models.local.LocallyConnected2d`, stride 1, "same" zero padding
``k // 2``, no bias, ``channels`` in and out) and measure, for one training step
(forward, input gradient, weight gradient):

* FLOPs, counted by :func:`gardenpath.measure.flops.count_flops` (equal for both);
* weights, and the fewest bytes the step must move (:mod:`gardenpath.measure.traffic`);
* measured time of the step and of the weight-gradient pass alone, where the shared
  weight's sum over positions happens (:mod:`gardenpath.measure.timing`);
* peak memory of the step (:mod:`gardenpath.measure.memory`);
* energy: measured (NVML, RAPL) where a counter exists, else modelled from the counted
  FLOPs and fewest bytes with Horowitz's 45 nm table (:mod:`gardenpath.measure.energy`);
* arithmetic intensity and where each step sits on this device's measured roofline;
* how many partial products each weight's gradient sums: ``B H_out W_out`` for the
  convolution, ``B`` for the locally connected layer.

The sweep is one factor at a time around a base point (spatial side, channels, kernel,
batch), so a GPU-scale sweep stays within memory. Between workers (no run, counts only):
ring all-reduce bytes of the weight gradients under data parallelism, and all-reduce plus
halo bytes under a spatial split (:mod:`gardenpath.measure.comm`).

Verdict (rule fixed here): for each metric in ``METRICS`` (and measured energy where a
counter exists) the share of sweep points where the convolution costs more than the
locally connected layer; a metric sides with the essay when that share is at least
:data:`MAJORITY`. "supported" when every metric does, "not supported" when none does,
"mixed" otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import altair as alt
import pandas as pd
import torch
from torch import nn

from gardenpath.measure.comm import halo_exchange_bytes, ring_allreduce_bytes_per_worker
from gardenpath.measure.energy import MODEL_METHOD, EnergyMonitor, model_energy
from gardenpath.measure.flops import count_flops, local2d_flops
from gardenpath.measure.memory import peak_memory
from gardenpath.measure.roofline import Roofline
from gardenpath.measure.timing import time_fn
from gardenpath.measure.traffic import layer_traffic
from gardenpath.models.local import LocallyConnected2d

SHARINGS = ("conv", "local")
KNOBS = ("in_size", "channels", "kernel_size", "batch_size")
KNOB_LABELS = {"in_size": "spatial side (pixels)", "channels": "channels (in = out)",
               "kernel_size": "kernel side", "batch_size": "batch size"}
#: Metrics the verdict compares (conv against local at every sweep point).
METRICS = ("min_bytes", "step_time_s")
#: A metric sides with the essay when conv costs more at this share of points or more.
MAJORITY = 0.5
DTYPE_BYTES = 4


@dataclass(frozen=True)
class Point:
    """One layer configuration of the sweep (stride 1, padding ``kernel_size // 2``)."""

    in_size: int
    channels: int
    kernel_size: int
    batch_size: int

    @property
    def padding(self) -> int:
        """'same' zero padding for odd kernels."""
        return self.kernel_size // 2

    @property
    def out_size(self) -> int:
        """Output side, ``in_size + 2 padding - kernel_size + 1``."""
        return self.in_size + 2 * self.padding - self.kernel_size + 1

    @property
    def positions(self) -> int:
        """Output positions ``L = out_size ** 2``."""
        return self.out_size**2


def sweep_points(base: Point, sweeps: dict[str, list[int]]) -> tuple[list[Point],
                                                                     list[tuple[str, Point]]]:
    """One-factor-at-a-time sweep around ``base``.

    Returns the distinct points to measure (base first) and, for each knob and each of its
    values, the ``(knob, point)`` pairs the charts draw (a point may serve several knobs).
    """
    points: list[Point] = [base]
    members: list[tuple[str, Point]] = []
    for knob in KNOBS:
        for value in sorted(set(sweeps.get(knob, [])) | {getattr(base, knob)}):
            p = Point(**{**asdict(base), knob: int(value)})
            if p not in points:
                points.append(p)
            members.append((knob, p))
    return points, members


def build_layer(sharing: str, point: Point, device: torch.device, seed: int) -> nn.Module:
    """A seeded conv or locally connected layer of ``point``'s shapes, without bias."""
    torch.manual_seed(seed)
    c, k = point.channels, point.kernel_size
    if sharing == "conv":
        return nn.Conv2d(c, c, k, padding=point.padding, bias=False, device=device)
    return LocallyConnected2d(c, c, k, point.in_size, padding=point.padding, bias=False,
                              device=device)


def _inputs(point: Point, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(point.batch_size, point.channels, point.in_size, point.in_size,
                    generator=g)
    dy = torch.randn(point.batch_size, point.channels, point.out_size, point.out_size,
                     generator=g)
    return x.to(device), dy.to(device)


def steps(layer: nn.Module, x: torch.Tensor, dy: torch.Tensor
          ) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """``(step, weight_grad)``: a forward + full backward, and the weight gradient alone.

    ``step`` computes ``y = layer(x)`` and the gradients of ``x`` and the weight for the
    output gradient ``dy`` (``torch.autograd.grad``, so nothing accumulates between
    calls). ``weight_grad`` reuses one recorded forward (``retain_graph``) of an input
    that needs no gradient, so it times the weight-gradient pass only.
    """
    xg = x.detach().requires_grad_(True)

    def step() -> Any:
        return torch.autograd.grad(layer(xg), (xg, layer.weight), dy)

    y_fixed = layer(x.detach())

    def weight_grad() -> Any:
        return torch.autograd.grad(y_fixed, (layer.weight,), dy, retain_graph=True)

    return step, weight_grad


@dataclass
class Measured:
    """One layer at one sweep point: counts (deterministic) and readings (machine)."""

    sharing: str
    point: Point
    params: int
    flops: int
    flops_formula: int
    min_bytes: int
    weight_bytes: int
    activation_bytes: int
    intensity: float
    weight_grad_intensity: float
    partial_products: int
    model_energy_j: float
    step_time_s: float
    step_iqr_s: float
    weight_grad_time_s: float
    peak_bytes: int
    energy_j: float
    energy_method: str
    achieved_gflops_per_s: float
    fraction_of_roof: float
    bound: str

    def row(self) -> dict[str, Any]:
        """A flat dict for tables and charts."""
        out = asdict(self)
        out.update(out.pop("point"))
        out["positions"] = self.point.positions
        out["footprint_bytes"] = self.weight_bytes + self.peak_bytes
        return out


def measure(sharing: str, point: Point, device: torch.device, roof: Roofline,
            min_run_time_s: float, seed: int, monitor: EnergyMonitor,
            energy_window_s: float) -> Measured:
    """Count and measure one layer at one point (see the module docstring)."""
    layer = build_layer(sharing, point, device, seed)
    x, dy = _inputs(point, device, seed)
    t = layer_traffic(sharing, point.channels, point.channels, point.kernel_size,
                      point.in_size, point.batch_size, 1, point.padding, DTYPE_BYTES)
    counted = count_flops(layer, x)
    formula = local2d_flops(point.channels, point.channels, point.kernel_size,
                            point.in_size, point.batch_size, 1, point.padding).total
    step, weight_grad = steps(layer, x, dy)
    step_t = time_fn(step, device=device, min_run_time_s=min_run_time_s)
    wg_t = time_fn(weight_grad, device=device, min_run_time_s=min_run_time_s)
    peak = peak_memory(step, device)
    modelled = model_energy(counted.total, t.total_bytes)
    if monitor.method == MODEL_METHOD:
        energy_j, method = float(modelled.energy_j), MODEL_METHOD
    else:
        calls = max(1, math.ceil(energy_window_s / step_t.median_s))
        monitor.begin_window("step")
        for _ in range(calls):
            step()
        e = monitor.end_window("step")
        energy_j, method = e.energy_j / calls, e.method
    place = roof.place(counted.total, t.total_bytes, step_t.median_s)
    return Measured(
        sharing=sharing, point=point, params=t.params, flops=counted.total,
        flops_formula=formula, min_bytes=t.total_bytes, weight_bytes=t.weight_bytes,
        activation_bytes=t.input_bytes + t.output_bytes, intensity=t.intensity,
        weight_grad_intensity=t.weight_grad_intensity,
        partial_products=t.partial_products_per_weight_grad,
        model_energy_j=float(modelled.energy_j), step_time_s=step_t.median_s,
        step_iqr_s=step_t.iqr_s, weight_grad_time_s=wg_t.median_s,
        peak_bytes=peak.peak_bytes, energy_j=energy_j, energy_method=method,
        achieved_gflops_per_s=place.achieved_flops_per_s / 1e9,
        fraction_of_roof=place.fraction_of_roof, bound=place.bound,
    )


def run_sweep(points: list[Point], device: torch.device, roof: Roofline,
              min_run_time_s: float, seed: int, energy_window_s: float,
              monitor: EnergyMonitor | None = None) -> pd.DataFrame:
    """Measure both layers at every point; one row per (point, sharing)."""
    monitor = monitor or EnergyMonitor(device)
    rows = []
    for p in points:
        for sharing in SHARINGS:
            rows.append(measure(sharing, p, device, roof, min_run_time_s, seed, monitor,
                                energy_window_s).row())
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- comparisons


def paired(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point with ``<metric>_conv``, ``<metric>_local`` and ``<metric>_ratio``
    (local / conv) for the metrics worth comparing."""
    keys = list(KNOBS)
    cols = ["params", "flops", "min_bytes", "intensity", "partial_products", "step_time_s",
            "weight_grad_time_s", "peak_bytes", "footprint_bytes", "energy_j",
            "model_energy_j"]
    conv = table[table["sharing"] == "conv"].set_index(keys)[cols]
    local = table[table["sharing"] == "local"].set_index(keys)[cols]
    out = conv.join(local, lsuffix="_conv", rsuffix="_local")
    for c in cols:
        out[f"{c}_ratio"] = out[f"{c}_local"] / out[f"{c}_conv"]
    return out.reset_index()


def conv_costs_more_share(pairs: pd.DataFrame, metric: str) -> float:
    """Share of points where the convolution's ``metric`` exceeds the local layer's."""
    return float((pairs[f"{metric}_conv"] > pairs[f"{metric}_local"]).mean())


def verdict(pairs: pd.DataFrame, energy_measured: bool) -> tuple[str, dict[str, float]]:
    """The verdict and, per metric, the share of points where conv costs more."""
    metrics = list(METRICS) + (["energy_j"] if energy_measured else [])
    shares = {m: conv_costs_more_share(pairs, m) for m in metrics}
    sides = [s >= MAJORITY for s in shares.values()]
    if all(sides):
        return "supported", shares
    if not any(sides):
        return "not supported", shares
    return "mixed", shares


def explain(verdict_: str, shares: dict[str, float], pairs: pd.DataFrame) -> str:
    """One paragraph with the numbers behind the verdict (all from the run)."""
    names = {"min_bytes": "the fewest bytes a step must move",
             "step_time_s": "the measured step time", "energy_j": "the measured energy"}
    n = len(pairs)
    parts = [f"the convolution costs more in {names[m]} at {round(s * n)} of {n} points"
             for m, s in shares.items()]
    return (
        "Across the sweep, " + "; ".join(parts) + ". The locally connected layer moves "
        f"{pairs['min_bytes_ratio'].min():.1f} to {pairs['min_bytes_ratio'].max():.1f} "
        "times the bytes, and each convolution weight's gradient sums "
        f"{int((pairs['partial_products_conv'] // pairs['partial_products_local']).min()):,}"
        " or more times as many partial products as a local weight's, without extra FLOPs. "
        f"Verdict: {verdict_}."
    )


def conclusion(pairs: pd.DataFrame) -> str:
    """What this run says about not sharing on this device, from the paired points."""
    n = len(pairs)
    more = {
        "bytes": int((pairs["min_bytes_local"] > pairs["min_bytes_conv"]).sum()),
        "time": int((pairs["step_time_s_local"] > pairs["step_time_s_conv"]).sum()),
        "memory": int((pairs["footprint_bytes_local"] > pairs["footprint_bytes_conv"]).sum()),
    }
    if all(v == n for v in more.values()):
        return ("On the device measured here, not sharing cost more bytes, more time and more "
                f"memory than sharing at every one of the {n} sweep points: fetching and "
                "storing a filter per position costs more than the sum over positions that "
                "sharing requires.")
    parts = ", ".join(f"more {k} at {v}" for k, v in more.items())
    return (f"On the device measured here, not sharing cost {parts} of the {n} sweep points; "
            "at the others, sharing was the costlier choice on that measure.")


#: Names in the glued numbers that are counted (deterministic), not measured.
COUNTED_KEYS = frozenset({
    "base_in_size", "base_channels", "base_kernel_size", "base_batch_size",
    "base_positions", "base_mflops", "base_params_conv", "base_params_local",
    "base_params_ratio", "base_mb_conv", "base_mb_local", "base_bytes_ratio",
    "base_intensity_conv", "base_intensity_local", "base_partial_conv",
    "base_partial_local", "base_model_uj_conv", "base_model_uj_local",
    "flops_equal_points", "bytes_ratio_min", "bytes_ratio_max", "intensity_conv_min",
    "intensity_conv_max", "intensity_local_min", "intensity_local_max",
    "n_points",
})


def _base_row(pairs: pd.DataFrame, base: Point) -> pd.Series:
    sel = pairs[(pairs["in_size"] == base.in_size) & (pairs["channels"] == base.channels)
                & (pairs["kernel_size"] == base.kernel_size)
                & (pairs["batch_size"] == base.batch_size)]
    return sel.iloc[0]


def base_numbers(pairs: pd.DataFrame, base: Point) -> dict[str, Any]:
    """The base layer's numbers for the prose (counts first, then measurements)."""
    r = _base_row(pairs, base)
    return {
        "base_in_size": base.in_size, "base_channels": base.channels,
        "base_kernel_size": base.kernel_size, "base_batch_size": base.batch_size,
        "base_positions": base.positions,
        "base_mflops": float(r["flops_conv"]) / 1e6,
        "base_params_conv": int(r["params_conv"]), "base_params_local": int(r["params_local"]),
        "base_params_ratio": float(r["params_ratio"]),
        "base_mb_conv": float(r["min_bytes_conv"]) / 1e6,
        "base_mb_local": float(r["min_bytes_local"]) / 1e6,
        "base_bytes_ratio": float(r["min_bytes_ratio"]),
        "base_intensity_conv": float(r["intensity_conv"]),
        "base_intensity_local": float(r["intensity_local"]),
        "base_partial_conv": int(r["partial_products_conv"]),
        "base_partial_local": int(r["partial_products_local"]),
        "base_model_uj_conv": float(r["model_energy_j_conv"]) * 1e6,
        "base_model_uj_local": float(r["model_energy_j_local"]) * 1e6,
        "base_ms_conv": float(r["step_time_s_conv"]) * 1e3,
        "base_ms_local": float(r["step_time_s_local"]) * 1e3,
        "base_time_ratio": float(r["step_time_s_ratio"]),
        "base_wgrad_ms_conv": float(r["weight_grad_time_s_conv"]) * 1e3,
        "base_wgrad_ms_local": float(r["weight_grad_time_s_local"]) * 1e3,
        "base_memory_ratio": float(r["footprint_bytes_ratio"]),
        "base_uj_conv": float(r["energy_j_conv"]) * 1e6,
        "base_uj_local": float(r["energy_j_local"]) * 1e6,
    }


def sweep_numbers(pairs: pd.DataFrame, table: pd.DataFrame) -> dict[str, Any]:
    """Ranges and counts over the whole sweep for the prose."""
    conv, local = table[table["sharing"] == "conv"], table[table["sharing"] == "local"]
    above = int((table["fraction_of_roof"] > 1).sum())
    note = "" if above == 0 else (
        f"{above} measured step(s) ran faster than the roof allows: the matmul that sets "
        "the roof did not reach this device's peak, which a convolution kernel exceeded, "
        "so the compute roof is an underestimate here.")
    return {
        "flops_equal_points": int((pairs["flops_conv"] == pairs["flops_local"]).sum()),
        "bytes_ratio_min": float(pairs["min_bytes_ratio"].min()),
        "bytes_ratio_max": float(pairs["min_bytes_ratio"].max()),
        "time_ratio_min": float(pairs["step_time_s_ratio"].min()),
        "time_ratio_max": float(pairs["step_time_s_ratio"].max()),
        "memory_ratio_min": float(pairs["footprint_bytes_ratio"].min()),
        "memory_ratio_max": float(pairs["footprint_bytes_ratio"].max()),
        "energy_ratio_min": float(pairs["energy_j_ratio"].min()),
        "energy_ratio_max": float(pairs["energy_j_ratio"].max()),
        "conv_slower_points": int((pairs["step_time_s_conv"]
                                   > pairs["step_time_s_local"]).sum()),
        "conv_wgrad_slower_points": int((pairs["weight_grad_time_s_conv"]
                                         > pairs["weight_grad_time_s_local"]).sum()),
        "intensity_conv_min": float(conv["intensity"].min()),
        "intensity_conv_max": float(conv["intensity"].max()),
        "intensity_local_min": float(local["intensity"].min()),
        "intensity_local_max": float(local["intensity"].max()),
        "conv_memory_bound_points": int((conv["bound"] == "memory").sum()),
        "local_memory_bound_points": int((local["bound"] == "memory").sum()),
        "conv_fraction_median_pct": 100 * float(conv["fraction_of_roof"].median()),
        "local_fraction_median_pct": 100 * float(local["fraction_of_roof"].median()),
        "points_above_roof": above,
        "above_roof_note": note,
    }


COUNT_COLUMNS = ("sharing", "in_size", "channels", "kernel_size", "batch_size", "params",
                 "flops", "min_bytes", "intensity", "partial_products", "model_energy_j")
MEASURE_COLUMNS = ("sharing", "in_size", "channels", "kernel_size", "batch_size",
                   "step_time_s", "step_iqr_s", "weight_grad_time_s", "peak_bytes",
                   "energy_j", "energy_method", "achieved_gflops_per_s",
                   "fraction_of_roof", "bound")


def counted_points(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per point and layer, the counted (deterministic) columns."""
    return table[list(COUNT_COLUMNS)].to_dict(orient="records")


def measured_points(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per point and layer, the measured columns."""
    return table[list(MEASURE_COLUMNS)].to_dict(orient="records")


def comm_numbers(rows: pd.DataFrame) -> dict[str, float]:
    """kB per step between workers: data parallel and spatial, for both layers."""
    def total(sharing: str, split_prefix: str) -> float:
        sel = rows[(rows["sharing"] == sharing) & rows["split"].str.startswith(split_prefix)]
        return float(sel["bytes"].sum()) / 1e3

    return {"dp_conv_kb": total("conv", "data"), "dp_local_kb": total("local", "data"),
            "spatial_conv_kb": total("conv", "spatial"),
            "spatial_local_kb": total("local", "spatial")}


def workers_grid(workers: int) -> tuple[int, int]:
    """The most nearly square ``rows x cols`` factorisation of ``workers``."""
    rows = max(r for r in range(1, int(math.isqrt(workers)) + 1) if workers % r == 0)
    return rows, workers // rows


def communication(point: Point, workers: int) -> pd.DataFrame:
    """Bytes each step sends between ``workers``, for both layers, two ways of splitting.

    * data parallel: each worker has the whole layer and a slice of the batch; the
      weight gradients are all-reduced (ring: ``2 (p-1)/p |W|`` bytes sent per worker),
      reported summed over workers;
    * spatial: each worker has a tile of the feature map and the whole batch; both
      layers exchange halos (forward and backward, :func:`halo_exchange_bytes`, summed
      over workers); the convolution also all-reduces its shared weights' gradients;
      the locally connected layer's weights belong to the worker owning their positions.
    """
    p = workers
    grid = workers_grid(p)
    halo = halo_exchange_bytes(point.batch_size, point.channels, point.in_size,
                               point.kernel_size, grid, DTYPE_BYTES)
    rows = []
    for sharing in SHARINGS:
        t = layer_traffic(sharing, point.channels, point.channels, point.kernel_size,
                          point.in_size, point.batch_size, 1, point.padding, DTYPE_BYTES)
        allreduce = p * ring_allreduce_bytes_per_worker(t.weight_bytes, p)
        rows.append({"sharing": sharing, "split": "data parallel",
                     "bytes": allreduce, "part": "weight-gradient all-reduce"})
        rows.append({"sharing": sharing, "split": f"spatial ({grid[0]}x{grid[1]} tiles)",
                     "bytes": allreduce if sharing == "conv" else 0,
                     "part": "weight-gradient all-reduce"})
        rows.append({"sharing": sharing, "split": f"spatial ({grid[0]}x{grid[1]} tiles)",
                     "bytes": halo, "part": "halo exchange"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- memory


def _local_need(p: Point) -> int:
    """Bytes a locally connected step at ``p`` holds at most: weights and their gradient,
    input and output with their gradients, and, on the layer's ``bmm`` path (CUDA, or no C
    compiler), three copies of the unfolded input (``unfold``'s output, the contiguous copy
    ``bmm`` makes, and its gradient; the fused CPU kernel makes none)."""
    k2c = p.channels * p.kernel_size**2
    weights = p.positions * k2c * p.channels
    x = p.batch_size * p.channels * p.in_size**2
    y = p.batch_size * p.channels * p.positions
    cols = p.batch_size * k2c * p.positions
    return DTYPE_BYTES * (2 * weights + 2 * x + 2 * y + 3 * cols)


def memory_estimate(params: dict[str, Any]) -> int:
    """Bytes needed by the largest sweep point's locally connected step (the conv needs
    less), or the roofline measurement's arrays if larger."""
    base = Point(int(params.get("in_size", 16)), int(params.get("channels", 32)),
                 int(params.get("kernel_size", 3)), int(params.get("batch_size", 16)))
    sweeps = {k: params.get(f"sweep_{k}", []) for k in KNOBS}
    points, _ = sweep_points(base, sweeps)
    need = max(_local_need(p) for p in points)
    roofline = int(params.get("roofline_ws_mib", 0)) << 20
    mm = 3 * int(params.get("matmul_n", 0)) ** 2 * DTYPE_BYTES
    return max(need, roofline, mm)


# ----------------------------------------------------------------------------- charts


def knob_rows(pairs: pd.DataFrame, members: list[tuple[str, Point]], energy_word: str
              ) -> pd.DataFrame:
    """Long table of local/conv ratios for the one-factor sweep chart."""
    metrics = {"weights": "params_ratio", "fewest bytes": "min_bytes_ratio",
               "step time (measured)": "step_time_s_ratio",
               "weight-gradient time (measured)": "weight_grad_time_s_ratio",
               "peak memory (measured)": "footprint_bytes_ratio",
               f"energy ({energy_word})": "energy_j_ratio"}
    index = pairs.set_index(list(KNOBS))
    rows = []
    for knob, p in members:
        r = index.loc[(p.in_size, p.channels, p.kernel_size, p.batch_size)]
        for label, col in metrics.items():
            rows.append({"knob": KNOB_LABELS[knob], "value": getattr(p, knob),
                         "metric": label, "ratio": float(r[col])})
    return pd.DataFrame(rows)


def ratio_chart(rows: pd.DataFrame, title: str) -> alt.FacetChart:
    """Local / conv ratios against each knob, one panel per knob, log scale."""
    order = list(dict.fromkeys(rows["metric"]))
    base = alt.Chart()
    lines = base.mark_line(point=True).encode(
        x=alt.X("value:O", title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratio:Q", scale=alt.Scale(type="log"), title="local / conv (log)"),
        color=alt.Color("metric:N", sort=order, title=None,
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=0)),
        tooltip=["knob:N", "value:Q", "metric:N", alt.Tooltip("ratio:Q", format=".3g")])
    one = base.mark_rule(color="#888", strokeDash=[4, 4]).encode(y=alt.datum(1))
    return alt.layer(lines, one, data=rows).properties(width=230, height=170).facet(
        facet=alt.Facet("knob:N", title=None, sort=[KNOB_LABELS[k] for k in KNOBS]),
        columns=2).resolve_scale(x="independent").properties(title=title)


def tradeoff_rows(table: pd.DataFrame, members: list[tuple[str, Point]]) -> pd.DataFrame:
    """Weights and partial products per weight gradient along the spatial sweep."""
    sizes = [p for k, p in members if k == "in_size"]
    rows = []
    for p in sizes:
        for sharing in SHARINGS:
            r = table[(table["sharing"] == sharing) & (table["in_size"] == p.in_size)
                      & (table["channels"] == p.channels)
                      & (table["kernel_size"] == p.kernel_size)
                      & (table["batch_size"] == p.batch_size)].iloc[0]
            rows.append({"in_size": p.in_size, "sharing": sharing,
                         "quantity": "weights", "count": int(r["params"])})
            rows.append({"in_size": p.in_size, "sharing": sharing,
                         "quantity": "partial products per weight gradient",
                         "count": int(r["partial_products"])})
    return pd.DataFrame(rows)


def tradeoff_chart(rows: pd.DataFrame, title: str) -> alt.FacetChart:
    """What sharing trades: weights against the length of each weight gradient's sum."""
    from gardenpath.charts import SHARING_COLORS

    return alt.Chart(rows).mark_line(point=True).encode(
        x=alt.X("in_size:O", title="spatial side (pixels)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("count:Q", scale=alt.Scale(type="log"), title="count (log)"),
        color=alt.Color("sharing:N", scale=alt.Scale(
            domain=list(SHARING_COLORS)[:2], range=list(SHARING_COLORS.values())[:2])),
        tooltip=["sharing:N", "in_size:Q", "quantity:N", alt.Tooltip("count:Q", format=",")],
    ).properties(width=230, height=200).facet(
        column=alt.Column("quantity:N", title=None,
                          sort=["weights", "partial products per weight gradient"])
    ).properties(title=title)


def roofline_chart(roof: Roofline, table: pd.DataFrame, title: str) -> alt.LayerChart:
    """The device's measured roofline with every measured step placed on it."""
    from gardenpath.charts import SHARING_COLORS

    lo = min(0.1, float(table["intensity"].min()) / 2)
    hi = max(10 * roof.ridge_intensity, float(table["intensity"].max()) * 2)
    xs = [lo * (hi / lo) ** (i / 60) for i in range(61)]
    roofs = pd.DataFrame({"intensity": xs,
                          "gflops_per_s": [roof.attainable(x) / 1e9 for x in xs]})
    x = alt.X("intensity:Q", scale=alt.Scale(type="log"),
              title="arithmetic intensity, fewest bytes (FLOP per byte, log)")
    y = alt.Y("gflops_per_s:Q", scale=alt.Scale(type="log"), title="GFLOP/s (log)")
    line = alt.Chart(roofs).mark_line(color="#444").encode(x=x, y=y)
    pts = table.assign(gflops_per_s=table["achieved_gflops_per_s"])
    dots = alt.Chart(pts).mark_point(filled=True, size=60, opacity=0.8).encode(
        x=x, y=y,
        color=alt.Color("sharing:N", scale=alt.Scale(
            domain=list(SHARING_COLORS)[:2], range=list(SHARING_COLORS.values())[:2])),
        tooltip=["sharing:N", "in_size:Q", "channels:Q", "kernel_size:Q", "batch_size:Q",
                 alt.Tooltip("intensity:Q", format=".2f"),
                 alt.Tooltip("gflops_per_s:Q", format=".2f"),
                 alt.Tooltip("fraction_of_roof:Q", format=".0%"), "bound:N"])
    ridge = alt.Chart(pd.DataFrame({"intensity": [roof.ridge_intensity]})).mark_rule(
        color="#999", strokeDash=[2, 2]).encode(x=x)
    return alt.layer(line, ridge, dots).properties(title=title)


def comm_chart(rows: pd.DataFrame, title: str) -> alt.Chart:
    """Bytes between workers per step, by layer and way of splitting."""
    return alt.Chart(rows).mark_bar().encode(
        y=alt.Y("sharing:N", title=None),
        x=alt.X("sum(bytes):Q", title="bytes sent per training step, all workers"),
        color=alt.Color("part:N", title=None, legend=alt.Legend(orient="bottom")),
        row=alt.Row("split:N", title=None,
                    header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=12)),
        tooltip=["split:N", "sharing:N", "part:N", alt.Tooltip("sum(bytes):Q", format=",")],
    ).properties(width=380, height=60, title=title).resolve_scale(x="independent")
