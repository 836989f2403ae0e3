"""Chapter 2, "What sharing moves": one layer, convolution against locally connected, on two
machines.

The claim (:data:`CLAIM`): tied weights force a layer to move much more data than untied
ones. We put the two kinds of layer side by side with identical shapes
(``torch.nn.Conv2d`` and :class:`gardenpath.models.local.LocallyConnected2d`, stride 1,
"same" zero padding ``k // 2``, no bias, ``channels`` in and out), one factor at a time
around a base layer (spatial side, channels, kernel, batch), on two machines:

* **von Neumann** (this device): a processor fetching weights and activations from
  memory. We count FLOPs (equal for both), weights and the fewest bytes a training step
  must move (:mod:`gardenpath.measure.traffic`), and measure step time, peak memory and
  energy (measured where a counter exists, else modelled with Horowitz's 45 nm table).
* **spatial**: a 2-D mesh with a processing element per output position (or per tile of
  positions), each holding its own weights (:mod:`gardenpath.measure.mesh`); traffic in
  bytes x hops: halos for both layers, and for the convolution the shared weights'
  gradient summed across the mesh and returned every step (tree or ring).

Tests (thresholds from the notebook's parameters cell):

1. **von Neumann, time**: the convolution's measured step time over the locally
   connected layer's at the base layer, ``timing_rounds`` interleaved rounds, at or above
   ``time_ratio_threshold``;
2. **mesh, traffic**: the convolution's bytes x hops over the locally connected layer's,
   from its smallest to its largest over the sweep, at or above ``much_more_factor``.

On the von Neumann machine the fewest bytes can only side against the essay (the locally
connected layer holds a filter per position), so that comparison is a fact, not a test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import altair as alt
import pandas as pd
import torch
from torch import nn

from gardenpath import claims, verdict
from gardenpath.constants import FP32_BYTES, SHARINGS
from gardenpath.measure.energy import MODEL_METHOD, EnergyMonitor, model_energy
from gardenpath.measure.flops import count_flops, local2d_flops
from gardenpath.measure.memory import peak_memory
from gardenpath.measure.mesh import conv_over_local, mesh_traffic
from gardenpath.measure.roofline import Roofline
from gardenpath.measure.timing import time_fn
from gardenpath.measure.traffic import layer_traffic
from gardenpath.models.local import LocallyConnected2d

CLAIM = claims.claim("sharing_moves")
KNOBS = ("in_size", "channels", "kernel_size", "batch_size")
KNOB_LABELS = {"in_size": "spatial side (pixels)", "channels": "channels (in = out)",
               "kernel_size": "kernel side", "batch_size": "batch size"}


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
                      point.in_size, point.batch_size, 1, point.padding, FP32_BYTES)
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


# ----------------------------------------------------------------------------- two machines


def machine_rows(points: list[Point], tile: int, reduction: str) -> pd.DataFrame:
    """Per sweep point: both machines' traffic, conv over locally connected.

    ``vn_bytes_ratio``: fewest bytes of a step (von Neumann); ``mesh_ratio``: bytes x hops
    on the mesh (``inf`` where the locally connected layer moves nothing there: a 1 x 1
    kernel needs no halo).
    """
    rows = []
    for p in points:
        shape = (p.channels, p.channels, p.kernel_size, p.in_size, p.batch_size)
        vn = [layer_traffic(s, p.channels, p.channels, p.kernel_size, p.in_size,
                            p.batch_size, 1, p.padding, FP32_BYTES).total_bytes
              for s in SHARINGS]
        mesh = [mesh_traffic(s, *shape, tile=tile, reduction=reduction) for s in SHARINGS]
        rows.append({**asdict(p), "vn_bytes_conv": vn[0], "vn_bytes_local": vn[1],
                     "vn_bytes_ratio": vn[0] / vn[1],
                     "mesh_hops_conv": mesh[0].total, "mesh_hops_local": mesh[1].total,
                     "mesh_sync_conv": mesh[0].weight_sync,
                     "mesh_halo": mesh[1].total, "mesh_pes": mesh[0].pes,
                     "mesh_ratio": conv_over_local(*shape, tile=tile, reduction=reduction)})
    return pd.DataFrame(rows)


def mesh_range(machines: pd.DataFrame) -> tuple[float, float]:
    """Smallest and largest mesh ratio over the points where both layers move something."""
    finite = machines.loc[machines["mesh_ratio"].map(math.isfinite), "mesh_ratio"]
    return float(finite.min()), float(finite.max())


def time_rounds(base: Point, device: torch.device, rounds: int, min_run_time_s: float,
                seed: int) -> dict[str, list[float]]:
    """Median step time of each layer at ``base`` in ``rounds`` interleaved rounds, s."""
    stepper = {}
    for sharing in SHARINGS:
        layer = build_layer(sharing, base, device, seed)
        stepper[sharing] = steps(layer, *_inputs(base, device, seed))[0]
    times: dict[str, list[float]] = {s: [] for s in SHARINGS}
    for _ in range(rounds):
        for sharing in SHARINGS:
            t = time_fn(stepper[sharing], device=device, min_run_time_s=min_run_time_s)
            times[sharing].append(t.median_s)
    return times


# ----------------------------------------------------------------------------- the run


@dataclass
class Result:
    """What :func:`run` produced: the parameters, both machines' counts over the sweep and
    the base layer's timing rounds (what :func:`decide` reads), and the sweep's
    measurements for the page."""

    params: dict[str, Any]
    machines: pd.DataFrame
    base_times_s: dict[str, list[float]]
    table: pd.DataFrame | None = None
    pairs: pd.DataFrame | None = None
    members: list[tuple[str, Point]] = field(default_factory=list)
    roof: Roofline | None = None
    energy_method: str = MODEL_METHOD


def base_point(params: dict[str, Any]) -> Point:
    """The base layer of the sweep."""
    return Point(params["in_size"], params["channels"], params["kernel_size"],
                 params["batch_size"])


def run(params: dict[str, Any], device: torch.device) -> Result:
    """Count both machines over the sweep, measure the sweep and the base layer's rounds."""
    base = base_point(params)
    sweeps = {k: params[f"sweep_{k}"] for k in KNOBS}
    points, members = sweep_points(base, sweeps)
    roof = Roofline.measure(device, sizes_bytes=[params["roofline_ws_mib"] << 20],
                            matmul_n=params["matmul_n"],
                            min_run_time_s=params["min_run_time_s"])
    monitor = EnergyMonitor(device)
    table = run_sweep(points, device, roof, params["min_run_time_s"], params["seed"],
                      params["energy_window_s"], monitor)
    times = time_rounds(base, device, params["timing_rounds"], params["min_run_time_s"],
                        params["seed"])
    return Result(params=params,
                  machines=machine_rows(points, params["mesh_tile"], params["mesh_reduction"]),
                  base_times_s=times, table=table, pairs=paired(table), members=members,
                  roof=roof, energy_method=monitor.method)


# ----------------------------------------------------------------------------- verdict


def decide(result: Result) -> verdict.Decision:
    """Two tests (von Neumann time at the base layer, mesh traffic over the sweep); the
    von Neumann bytes and the weight counts as facts."""
    p, m = result.params, result.machines
    times = result.base_times_s
    where = f"{p['mesh_reduction']} reduction, {p['mesh_tile']}x{p['mesh_tile']} positions a PE"
    tests = [
        verdict.Test("von Neumann step time",
                     "conv / locally connected step time at the base layer (measured)",
                     verdict.ratio_interval(times["conv"], times["local"]),
                     verdict.Rule(">=", float(p["time_ratio_threshold"]))),
        verdict.Test("mesh traffic",
                     f"conv / locally connected bytes x hops on the mesh over the sweep "
                     f"({where})",
                     verdict.span(*mesh_range(m), value=base_mesh_ratio(result)),
                     verdict.Rule(">=", float(p["much_more_factor"]))),
    ]
    base = base_point(p)
    facts = [
        verdict.Fact("von Neumann fewest bytes",
                     "largest conv / locally connected fewest bytes over the sweep",
                     float(m["vn_bytes_ratio"].max()), "x",
                     "counted: below 1 by construction, a filter per position"),
        verdict.Fact("weights", "locally connected / conv weights at the base layer",
                     base.positions, "x", "architecture: one filter per output position"),
        verdict.Fact("partial products", "products summed into one weight's gradient, "
                     "conv / locally connected", base.positions, "x",
                     "architecture: a shared weight sums over every position"),
    ]
    return verdict.Decision(tests, facts)


def _base_machines(result: Result) -> pd.Series:
    """Both machines' counts at the base layer."""
    b = base_point(result.params)
    return result.machines.set_index(list(KNOBS)).loc[
        (b.in_size, b.channels, b.kernel_size, b.batch_size)]


def base_mesh_ratio(result: Result) -> float:
    """The mesh ratio at the base layer (the value the mesh test's range is shown around)."""
    return float(_base_machines(result)["mesh_ratio"])


def machine_numbers(result: Result) -> dict[str, Any]:
    """The key numbers of the two machines, for the results file and the prose."""
    m = result.machines
    lo, hi = mesh_range(m)
    base = base_point(result.params)
    b = _base_machines(result)
    shape = (base.channels, base.channels, base.kernel_size, base.in_size, base.batch_size)
    other = "ring" if result.params["mesh_reduction"] == "tree" else "tree"
    return {
        "mesh_conv_over_lc_min": lo, "mesh_conv_over_lc_max": hi,
        "mesh_silent_points": int((~m["mesh_ratio"].map(math.isfinite)).sum()),
        "mesh_conv_over_lc_base": base_mesh_ratio(result),
        "mesh_conv_over_lc_base_other": conv_over_local(
            *shape, tile=result.params["mesh_tile"], reduction=other),
        "mesh_other_reduction": other,
        "mesh_pes_base": int(b["mesh_pes"]),
        "mesh_halo_mb_hops_base": float(b["mesh_halo"]) / 1e6,
        "mesh_sync_mb_hops_base": float(b["mesh_sync_conv"]) / 1e6,
        "vn_conv_over_lc_bytes_min": float(m["vn_bytes_ratio"].min()),
        "vn_conv_over_lc_bytes_max": float(m["vn_bytes_ratio"].max()),
        "mesh_points_past_factor": int((m["mesh_ratio"].map(math.isfinite)
                                        & (m["mesh_ratio"]
                                           >= result.params["much_more_factor"])).sum()),
        "n_points": len(m),
    }


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


def machines_chart_rows(machines: pd.DataFrame, members: list[tuple[str, Point]]
                        ) -> pd.DataFrame:
    """Long table of conv / locally connected traffic on both machines, per knob value."""
    index = machines.set_index(list(KNOBS))
    rows = []
    for knob, p in members:
        r = index.loc[(p.in_size, p.channels, p.kernel_size, p.batch_size)]
        for label, col in (("von Neumann: fewest bytes", "vn_bytes_ratio"),
                           ("mesh: bytes x hops", "mesh_ratio")):
            if math.isfinite(float(r[col])):
                rows.append({"knob": KNOB_LABELS[knob], "value": getattr(p, knob),
                             "machine": label, "ratio": float(r[col])})
    return pd.DataFrame(rows)


def machines_chart(rows: pd.DataFrame, factor: float, title: str) -> alt.FacetChart:
    """Conv over locally connected on both machines against each knob, log scale, with the
    parity line (solid) and the 'much more' factor (dashed)."""
    lines = alt.Chart().mark_line(point=True).encode(
        x=alt.X("value:O", title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("ratio:Q", scale=alt.Scale(type="log"),
                title="conv / locally connected (log)"),
        color=alt.Color("machine:N", title=None,
                        legend=alt.Legend(orient="bottom", labelLimit=0)),
        tooltip=["knob:N", "value:Q", "machine:N", alt.Tooltip("ratio:Q", format=".3g")])
    one = alt.Chart().mark_rule(color="#888").encode(y=alt.datum(1))
    much = alt.Chart().mark_rule(color="#888", strokeDash=[4, 4]).encode(y=alt.datum(factor))
    return alt.layer(lines, one, much, data=rows).properties(width=230, height=170).facet(
        facet=alt.Facet("knob:N", title=None, sort=[KNOB_LABELS[k] for k in KNOBS]),
        columns=2).resolve_scale(x="independent").properties(title=title)
