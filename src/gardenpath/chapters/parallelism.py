"""Chapter 4, machine parallelism: does spreading training out make shared weights costly?

:func:`run` trains the digits nets (convolutional and locally connected) on several
processes for real, in three regimes (data parallel, spatially partitioned, parameter
server; :mod:`gardenpath.measure.distributed`), counting every byte, and sweeps the link
between the processes with all-reduces of every power-of-two size. The link, fitted per
message-size range (:func:`gardenpath.measure.comm.fit_link`), calibrates the model of
ResNet-18 at paper scale (:mod:`gardenpath.models.partitioned`).

:func:`decide` judges the essay where its picture applies, spatial partitioning (each
worker owns its positions, so unshared weights never travel): the shared net's
communication time over the unshared net's, measured on digits and modelled for ResNet-18
on the calibrated link, each against the threshold set in the parameters cell. Byte ratios
that follow from the parameter counts (data parallel, parameter server) are facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import torch

from gardenpath import charts, claims
from gardenpath.measure import distributed
from gardenpath.measure.comm import CommRecord, Link, fit_link, sweep_sizes
from gardenpath.models import partitioned
from gardenpath.models.partitioned import REGIMES, SHARINGS
from gardenpath.verdict import (
    Decision,
    Fact,
    Interval,
    Rule,
    Test,
    bootstrap_interval,
)

CLAIM = claims.claim("parallelism")
#: The command line's net names for the sharings, and the real runs' regimes.
NET_NAMES = {"conv": "conv", "local": "lc"}
REAL_REGIMES = {"data": "data parallel", "spatial": "spatial", "server": "parameter server"}
JOBS = [(NET_NAMES[s], r) for r in REAL_REGIMES for s in SHARINGS]
SHARING_LABELS = {"conv": "conv (shared)", "local": "locally connected"}
#: The model's name for the link fitted to this machine.
FITTED = "this machine (fitted)"
#: Bootstrap draws over the sweep's rounds for the calibrated model's interval.
DRAWS = 1000


# ---------------------------------------------------------------------------- the run


def summarise_real(real: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per ``<sharing>_<regime>``: bytes all ranks send per step, by message, and times.

    Step and communication times are, per step, the slowest rank's (the server, which
    does not step, excluded).
    """
    ranks, cfg = real["ranks"], real["cfg"]
    out: dict[str, dict[str, Any]] = {}
    for i, (net, regime) in enumerate(JOBS):
        sharing = next(s for s, n in NET_NAMES.items() if n == net)
        jobs = [r["jobs"][i] for r in ranks]
        stepping = [j for j in jobs if j["step_s"]]
        ops: dict[str, float] = {}
        for j in jobs:
            for op, b in j["ops"].items():
                ops[op] = ops.get(op, 0.0) + b
        rec = {"sharing": sharing, "regime": regime,
               "sent_bytes": sum(sum(j["sent_bytes"]) / len(j["sent_bytes"]) for j in jobs),
               "ops": ops,
               "step_s": [max(v) for v in zip(*(j["step_s"] for j in stepping), strict=True)],
               "comm_s": [max(v) for v in zip(*(j["comm_s"] for j in stepping), strict=True)],
               "workers": len(stepping)}
        if regime == "spatial":
            rec.update(grad_error=max(j["grad_error"] for j in jobs),
                       grad_scale=jobs[0]["grad_scale"],
                       shared_params=jobs[0]["shared_params"],
                       params_held_max=max(j["params_held"] for j in jobs))
        else:
            rec["parameters"] = jobs[0]["parameters"]
        out[f"{sharing}_{regime}"] = rec
    gb = cfg["batch_size"] * cfg["world_size"]
    out["halo_formula"] = {"bytes": partitioned.expected_halo_bytes(
        cfg["canvas"], cfg["channels"], cfg["world_size"], gb), "global_batch": gb}
    return out


def sweep_table(real: dict[str, Any]) -> np.ndarray:
    """The link sweep as an array (round, size) of seconds; sizes in :func:`sweep_sizes`."""
    rows = real["ranks"][0]["sweep"]
    sizes = sorted({n for n, _, _ in rows})
    return np.asarray([t for _, t, _ in rows]).reshape(-1, len(sizes))


def link_from_rounds(times: np.ndarray, sizes: Sequence[int], world: int,
                     split_kib: Sequence[int]) -> Link:
    """:func:`fit_link` on the sweep rounds given (rows of ``times``)."""
    records = [CommRecord("all_reduce", n, float(t), world)
               for row in times for n, t in zip(sizes, row, strict=True)]
    return fit_link(records, [1024 * k for k in split_kib])


def median_ratio_interval(a: Sequence[float], b: Sequence[float]) -> Interval:
    """median(a) / median(b), bootstrapped: per-step times on a shared machine have a long
    tail (a step that lost the processor), which a ratio of means would follow."""
    return bootstrap_interval([list(a), list(b)],
                              lambda x, y: float(np.median(x) / np.median(y)), draws=DRAWS)


def spatial_ratio(layout: dict[str, Any], workers: int, batch: int, link: Link) -> float:
    """ResNet-18 spatially partitioned: the shared net's communication time over the
    unshared net's, per step, on ``link``."""
    t = {s: partitioned.regime_comm(layout, "spatial", s, workers, batch, link)["time_s"]
         for s in SHARINGS}
    return t["conv"] / t["local"]


def spatial_ratios(model: pd.DataFrame, link: str) -> dict[int, float]:
    """Per worker count, the shared net's partitioned communication time over the unshared
    net's, read from :func:`~gardenpath.models.partitioned.model_regimes` on ``link``."""
    rows = model[(model["regime"] == "spatial") & (model["link"] == link)]
    t = rows.pivot(index="workers", columns="sharing", values="time_s")
    return {int(w): float(t.at[w, "conv"] / t.at[w, "local"]) for w in t.index}


def scale_reading(ratios: dict[int, float], layout: dict[str, Any], link: Link, p: int,
                  batch: int) -> dict[str, Any]:
    """Where the decided point sits: the spatial ratio beyond the grid and at other batches.

    ``ratios`` are :func:`spatial_ratios` at ``batch``. Beyond
    :func:`~gardenpath.models.partitioned.spatial_max` workers, partitioned groups are
    data parallel, so each group's copy of the unshared filters is all-reduced across
    groups: ``crossover`` is the fewest workers at which the shared net's communication
    falls below the unshared net's (None if it never does). Halos grow with the images
    and gradients do not, so the ratio also moves with ``batch``: ``quarter`` and
    ``fourfold`` are the ratio at ``p`` workers with a quarter and four times the batch.
    """
    below = [w for w in sorted(ratios) if ratios[w] < 1.0]
    top = max(ratios)
    return {"crossover": below[0] if below else None, "workers_max": top,
            "ratio_at_max": ratios[top],
            "quarter_batch": max(1, batch // 4), "fourfold_batch": 4 * batch,
            "quarter": spatial_ratio(layout, p, max(1, batch // 4), link),
            "fourfold": spatial_ratio(layout, p, 4 * batch, link)}


def calibrated_interval(times: np.ndarray, sizes: Sequence[int], world: int,
                        split_kib: Sequence[int], quantity: Any) -> Interval:
    """``quantity(link)`` on the fitted link, with a bootstrap interval over sweep rounds."""
    def stat(idx: np.ndarray) -> float:
        return quantity(link_from_rounds(times[idx.astype(int)], sizes, world, split_kib))

    return bootstrap_interval([float(i) for i in range(len(times))], stat, draws=DRAWS)


def run(params: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The real runs, the link fit and the calibrated model of ResNet-18."""
    cfg = {k: params[k] for k in distributed.CONFIG_KEYS}
    sizes = sweep_sizes(params["sweep_max_kib"] * 1024)
    launched = distributed.launch(cfg, device, JOBS, sizes)
    layout = partitioned.resnet_layout(params["model_width"], params["model_in_size"])
    real = distributed.gather(launched)
    summary = summarise_real(real)
    times, world, split = sweep_table(real), params["world_size"], params["link_ranges_kib"]
    link = link_from_rounds(times, sizes, world, split)
    links = {FITTED: link,
             "datacenter (assumed)": Link.single(params["link_latency_us"] * 1e-6,
                                                 1.0 / (params["link_bandwidth_gbs"] * 1e9))}
    model = partitioned.model_regimes(
        layout, partitioned.power_of_two_workers(params["model_workers_max"]),
        params["model_batch"], links)
    p, batch = params["decide_workers"], params["model_batch"]
    conv, local = summary["conv_spatial"]["comm_s"], summary["local_spatial"]["comm_s"]
    intervals = {
        "measured": median_ratio_interval(conv, local),
        "modelled": calibrated_interval(times, sizes, world, split,
                                        lambda lk: spatial_ratio(layout, p, batch, lk)),
    }
    return {"params": params, "backend": real["cfg"]["backend"],
            "rank_device": real["ranks"][0]["device"], "summary": summary,
            "sweep_sizes": sizes, "sweep_times": times.tolist(), "link": link, "links": links,
            "layout": layout, "model": model, "intervals": intervals,
            "facts": paper_facts(layout, p, batch, summary)}


def paper_facts(layout: dict[str, Any], p: int, batch: int,
                summary: dict[str, Any]) -> dict[str, float]:
    """Byte ratios fixed by the parameter counts and shapes: they never vote."""
    link = Link.single(0.0, 1.0)  # bytes only: the time on a link of 1 s per byte
    sent = {(r, s): partitioned.regime_comm(layout, r, s, p, batch, link)["sent_bytes"]
            for r in REGIMES for s in SHARINGS}
    best = {s: min(sent[(r, s)] for r in REGIMES) for s in SHARINGS}
    return {
        "server_lc_over_conv": sent[("parameter server", "local")]
        / sent[("parameter server", "conv")],
        "dp_lc_over_conv": sent[("data parallel", "local")] / sent[("data parallel", "conv")],
        "cheapest_conv_over_lc": best["conv"] / best["local"],
        "digits_spatial_conv_over_lc": summary["conv_spatial"]["sent_bytes"]
        / summary["local_spatial"]["sent_bytes"],
    }


# ---------------------------------------------------------------------------- the verdict


def decide(result: dict[str, Any]) -> Decision:
    """Two tests of the shared net's extra communication where unshared weights stay home.

    Both are the shared net's communication time over the unshared net's, spatially
    partitioned, judged against ``ratio_threshold``: measured per step on digits (an
    interval over the timed steps), and modelled for ResNet-18 at ``decide_workers`` on
    the link fitted to this machine (an interval over the sweep's rounds). Byte ratios
    fixed by the architecture are facts.
    """
    p = result["params"]
    rule = Rule(">=", p["ratio_threshold"])
    iv = result["intervals"]
    f = result["facts"]
    tests = [
        Test("measured on digits",
             f"median communication time per step, shared over unshared net, spatially "
             f"partitioned over {p['world_size']} processes", iv["measured"], rule, "x"),
        Test("ResNet-18 at paper scale",
             f"modelled communication time per step, shared over unshared ResNet-18, "
             f"spatially partitioned over {p['decide_workers']} workers on the link fitted "
             f"to this machine", iv["modelled"], rule, "x"),
    ]
    w = p["decide_workers"]
    facts = [
        Fact("parameter server", "ResNet-18 bytes per step per worker, locally connected "
             "over convolutional", f["server_lc_over_conv"], "x",
             "parameter counts (push and pull every parameter)"),
        Fact("data parallel", f"ResNet-18 bytes per worker and step at {w} workers, locally "
             f"connected over convolutional", f["dp_lc_over_conv"], "x",
             "parameter counts (ring all-reduce of every gradient)"),
        Fact("cheapest regime", f"ResNet-18 bytes per worker and step at {w} workers, each "
             f"net in its cheapest regime, convolutional over locally connected",
             f["cheapest_conv_over_lc"], "x", "layer shapes and model batch"),
        Fact("digits, spatial", "bytes per step of the real spatial run, convolutional over "
             "locally connected", f["digits_spatial_conv_over_lc"], "x", "counted"),
    ]
    return Decision(tests, facts)


def numbers(result: dict[str, Any]) -> dict[str, Any]:
    """Counts and model bytes: the same on every rerun with the same parameters."""
    s, layout, f = result["summary"], result["layout"], result["facts"]
    out: dict[str, Any] = {**f, "halo_bytes_formula": s["halo_formula"]["bytes"],
                           "global_batch": s["halo_formula"]["global_batch"],
                           "spatial_max": partitioned.spatial_max(layout)}
    for sharing in SHARINGS:
        for regime in REAL_REGIMES:
            out[f"{sharing}_{regime}_sent_bytes"] = round(s[f"{sharing}_{regime}"]["sent_bytes"])
        sp = s[f"{sharing}_spatial"]
        out[f"{sharing}_parameters"] = s[f"{sharing}_data"]["parameters"]
        out[f"{sharing}_spatial_halo_bytes"] = round(
            sum(b for op, b in sp["ops"].items() if op.startswith("halo")))
        out[f"{sharing}_spatial_shared_params"] = sp["shared_params"]
        out[f"{sharing}_spatial_params_held_max"] = sp["params_held_max"]
        out[f"{sharing}_halo_matches_formula"] = (
            out[f"{sharing}_spatial_halo_bytes"] == s["halo_formula"]["bytes"])
        out[f"{sharing}_spatial_matches_single_process"] = bool(
            sp["grad_error"] <= 1e-4 * max(1.0, sp["grad_scale"]))
        out[f"{sharing}_resnet_spatial"] = layout[f"{sharing}_spatial"]
    out["conv_spatial_shared_sent_bytes"] = round(
        s["conv_spatial"]["ops"].get("shared_grad_all_reduce", 0.0))
    for key, r in _at_decide_workers(result, result["links"]["datacenter (assumed)"]):
        out[f"model_{key}_sent_mb"] = r["sent_bytes"] / 1e6
    out["resnet_bn_params"], out["resnet_fc_params"] = layout["bn_params"], layout["fc_params"]
    return out


def _at_decide_workers(result: dict[str, Any], link: Link) -> list[tuple[str, dict]]:
    """``(<regime>_<sharing>, regime_comm(...))`` for ResNet-18 at ``decide_workers``."""
    p = result["params"]
    keys = {"data parallel": "data", "spatial": "spatial", "parameter server": "server"}
    return [(f"{keys[r]}_{s}", partitioned.regime_comm(result["layout"], r, s,
                                                      p["decide_workers"], p["model_batch"],
                                                      link))
            for r in REGIMES for s in SHARINGS]


def measurements(result: dict[str, Any]) -> dict[str, Any]:
    """Readings of this machine: times, the fitted link and what it models."""
    s, link = result["summary"], result["link"]
    small, top = link.ranges[0][1], link.ranges[-1][1]
    out: dict[str, Any] = {
        "link_fit_rms_over_latency": link.rms_over_latency,
        "latency_us": small.alpha_s * 1e6, "latency_rms_us": small.rms_residual_s * 1e6,
        "bandwidth_gbs": top.bandwidth_bytes_per_s / 1e9,
        "bandwidth_rel_rms": link.relative_rms[-1], "link_ranges": len(link.ranges),
        "link_rel_rms_max": max(link.relative_rms),
    }
    for key, rec in s.items():
        if "step_s" in rec:
            out[f"{key}_step_ms"] = 1e3 * float(np.median(rec["step_s"]))
            out[f"{key}_comm_ms"] = 1e3 * float(np.median(rec["comm_s"]))
    for name, iv in result["intervals"].items():
        out[f"{name}_ratio"], out[f"{name}_ratio_lo"], out[f"{name}_ratio_hi"] = \
            iv.value, iv.lo, iv.hi
    for key, r in _at_decide_workers(result, link):
        out[f"model_{key}_here_ms"] = 1e3 * r["time_s"]
    return out


# ---------------------------------------------------------------------------- tables, charts


def real_table(result: dict[str, Any]) -> pd.DataFrame:
    """Bytes sent per step by all processes together, by regime, net and kind of message."""
    s = result["summary"]
    rows = []
    for regime, label in REAL_REGIMES.items():
        for sharing in SHARINGS:
            rec = s[f"{sharing}_{regime}"]
            kinds = _message_kinds(rec["ops"])
            rows.append({"regime": label, "layers": SHARING_LABELS[sharing],
                         **{k: f"{v:,.0f}" for k, v in kinds.items()},
                         "total bytes sent": f"{rec['sent_bytes']:,.0f}",
                         "step (ms, median)": round(1e3 * float(np.median(rec["step_s"])), 2)})
    return pd.DataFrame(rows).fillna("0").set_index(["regime", "layers"])


KINDS = {"ddp_bucket_all_reduce": "gradient all-reduce",
         "shared_grad_all_reduce": "gradient all-reduce", "halo_forward": "halos",
         "halo_backward": "halos", "logits_all_reduce": "partial logits",
         "worker_push": "gradient push", "server_pull_send": "parameter pull"}


def _message_kinds(ops: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for op, b in ops.items():
        out[KINDS.get(op, op)] = out.get(KINDS.get(op, op), 0.0) + b
    return out


def _color() -> alt.Color:
    labels = [SHARING_LABELS[k] for k in SHARINGS]
    return alt.Color("layers:N", title="layers",
                     scale=alt.Scale(domain=labels,
                                     range=[charts.SHARING_COLORS[k] for k in SHARINGS]))


def chart_real(result: dict[str, Any]) -> alt.Chart:
    """Stacked bars: bytes sent per step in the real runs, by kind of message."""
    s = result["summary"]
    rows = [{"run": f"{label}, {SHARING_LABELS[sharing]}", "message": kind, "KB": b / 1e3}
            for regime, label in REAL_REGIMES.items() for sharing in SHARINGS
            for kind, b in _message_kinds(s[f"{sharing}_{regime}"]["ops"]).items()]
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("run:N", sort=list(dict.fromkeys(df["run"])), title=None,
                axis=alt.Axis(labelLimit=280)),
        x=alt.X("KB:Q", title="kilobytes sent per training step, all processes"),
        color=alt.Color("message:N", title="message",
                        scale=alt.Scale(range=charts.PALETTE[2:])),
        order=alt.Order("message:N"),
        tooltip=["run", "message", alt.Tooltip("KB:Q", format=",.1f")],
    ).properties(height=200, title="Bytes each training step sends (measured)")


def chart_sweep(result: dict[str, Any]) -> alt.LayerChart:
    """All-reduce time against size: every round's points and the fit per size range."""
    sizes, times = result["sweep_sizes"], np.asarray(result["sweep_times"])
    world, link = result["params"]["world_size"], result["link"]
    pts = pd.DataFrame([{"bytes": n, "ms": 1e3 * t} for row in times
                        for n, t in zip(sizes, row, strict=True)])
    grid = np.geomspace(min(sizes), max(sizes), 80)
    line = pd.DataFrame({"bytes": grid, "ms": [1e3 * link.allreduce_s(n, world)
                                               for n in grid]})
    x = alt.X("bytes:Q", scale=alt.Scale(type="log"), title="bytes all-reduced (log scale)")
    y = alt.Y("ms:Q", scale=alt.Scale(type="log"), title="milliseconds (log scale)")
    dots = alt.Chart(pts).mark_point(filled=True, opacity=0.4, color=charts.PALETTE[0]).encode(
        x=x, y=y, tooltip=[alt.Tooltip("bytes:Q", format=","),
                           alt.Tooltip("ms:Q", format=".3f")])
    fit = alt.Chart(line).mark_line(color=charts.PALETTE[1]).encode(x=x, y=y)
    return (dots + fit).properties(title=f"All-reduce across {world} processes: every "
                                         f"round and the fit per size range")


def chart_model(result: dict[str, Any], value: str) -> alt.Chart:
    """Modelled ResNet-18 communication per worker and step against the worker count."""
    df = result["model"].copy()
    df["layers"] = df["sharing"].map(SHARING_LABELS)
    df["series"] = df["regime"] + ", " + df["layers"]
    if value == "bytes":
        df = df[df["link"] == "datacenter (assumed)"].copy()
        df["y"] = df["sent_bytes"] / 1e6
        title, y_title = "Bytes sent per step for each worker (modelled)", "MB (log scale)"
        detail = "series:N"
    else:
        df["y"] = df["time_s"] * 1e3
        title, y_title = "Communication time per step (modelled)", "ms (log scale)"
        df["line"] = df["series"] + ", " + df["link"]
        detail = "line:N"
    enc = {"x": alt.X("workers:Q", scale=alt.Scale(type="log", base=2), title="workers"),
           "y": alt.Y("y:Q", scale=alt.Scale(type="log"), title=y_title),
           "color": _color(), "detail": detail,
           "strokeDash": alt.StrokeDash("regime:N", title="regime"),
           "tooltip": ["regime", "layers", "workers", "spatial_ways", "data_groups", "link",
                       alt.Tooltip("y:Q", format=",.3f", title=y_title.split(" ")[0])]}
    if value != "bytes":
        enc["shape"] = alt.Shape("link:N", title="link")
    return alt.Chart(df).mark_line(point=True).encode(**enc).properties(title=title)


# ---------------------------------------------------------------------------- prose pieces


def setup_values(result: dict[str, Any]) -> dict[str, Any]:
    """Parameters and run facts, flat, for ``{glue:text}``."""
    p, sizes = result["params"], result["sweep_sizes"]
    return {"channels_text": " and ".join(str(c) for c in p["channels"]),
            "backend": result["backend"], "sweep_min_bytes": min(sizes),
            "sweep_max_bytes": max(sizes), "sweep_sizes_count": len(sizes),
            "link_split_text": ", ".join(f"{k:,} KiB" for k in p["link_ranges_kib"]),
            "workers_in_server_run": p["world_size"] - 1}


def prose(result: dict[str, Any]) -> dict[str, str]:
    """Sentences that depend on the run, glued as Markdown."""
    p, n = result["params"], numbers(result)
    if result["backend"] == "nccl":
        backend = (f"The {p['world_size']} processes used NCCL, one GPU each "
                   f"({result['rank_device']} for the first).")
    else:
        backend = (f"The {p['world_size']} processes ran on the CPU and talked through "
                   f"gloo over the loopback interface, with {p['threads']} torch thread(s) "
                   f"each (0: torch's default).")
    ok = all(n[f"{k}_spatial_matches_single_process"] for k in SHARINGS)
    check = ("Before timing, one partitioned step's gradients were compared with the same "
             "step of the whole net on one process: they "
             + ("agree." if ok else "do NOT agree."))
    halo_ok = all(n[f"{k}_halo_matches_formula"] for k in SHARINGS)
    halo = ("The halo bytes counted on the wire " + ("equal" if halo_ok else "differ from")
            + f" the formula's {n['halo_bytes_formula']:,} per step (forward and backward "
            "for the second layer, forward only for the first, whose input needs no "
            "gradient).")
    link = result["link"]
    fit = (f"The fit resolves the latency: its misfit is "
           f"{link.rms_over_latency:.2f} of it." if link.rms_over_latency < 1 else
           f"The fit does NOT resolve the latency: its misfit is "
           f"{link.rms_over_latency:.2f} times it.")
    return {"backend_sentence": backend, "check_sentence": check, "halo_sentence": halo,
            "fit_sentence": fit, "scale_sentence": _scale_sentence(result)}


def _scale_sentence(result: dict[str, Any]) -> str:
    """How far the decided point carries: more workers than the grid, other batches."""
    p = result["params"]
    r = scale_reading(spatial_ratios(result["model"], FITTED), result["layout"],
                      result["link"], p["decide_workers"], p["model_batch"])
    smax = partitioned.spatial_max(result["layout"])
    if r["crossover"] is None:
        beyond = (f"Up to {r['workers_max']:,} workers the shared net's communication stays "
                  f"the heavier on this machine's link ({r['ratio_at_max']:.2f} times the "
                  f"unshared net's at {r['workers_max']:,}).")
    else:
        beyond = (f"This does not carry to many workers: beyond {smax} workers the "
                  f"partitioned groups are data parallel, each group holds a copy of its "
                  f"positions' unshared filters and all-reduces their gradients with the "
                  f"other groups, and from {r['crossover']:,} workers on the shared net's "
                  f"communication is the lighter on this machine's link "
                  f"({r['ratio_at_max']:.2f} times the unshared net's at "
                  f"{r['workers_max']:,}), against the claim.")
    batch = (f"The ratio also depends on the batch, since halos grow with the images and "
             f"gradients do not: at {p['decide_workers']} workers it is "
             f"{r['quarter']:.2f} with {r['quarter_batch']:,} images per step and "
             f"{r['fourfold']:.2f} with {r['fourfold_batch']:,}.")
    return f"{beyond} {batch}"
