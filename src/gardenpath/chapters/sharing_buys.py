"""Chapter 5, *What sharing buys*: what tied weights buy besides compute, on real digits.

Three experiments, each over ``num_seeds`` seeds (its own initialisation, sample and batch
order), with the nets and the loop of :mod:`gardenpath.models.training`:

1. **Learning curve on images** (MNIST's 28x28 digits; scikit-learn's 8x8 digits in the
   smoke profile): test accuracy against training examples per class for the four wirings
   (convolutional, locally connected, locally connected with dynamic weight sharing, dense).
2. **MNIST-1D** (Greydanus & Kobak): the published MLP and CNN trained with the published
   protocol (Adam 1e-2, batch 100, 6,000 steps walking the set in order), beside a locally
   connected net of the CNN's shapes; smaller training sets get the same number of epochs.
3. **Translation**: digits on a wider blank canvas, tested at several sideways shifts, after
   training either at one place or with every example moved at random (the remedy Ott et al.
   2020 and Pogodin et al. 2021 use).

:func:`decide` turns three conv-minus-locally-connected gaps, each with its 95% interval over
seeds, into the verdict on :data:`CLAIM`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import torch

from gardenpath import claims, verdict
from gardenpath.charts import SHARING_COLORS
from gardenpath.data import k_shot, load_digits_split, load_mnist1d, load_mnist5k_split
from gardenpath.models import training as tr
from gardenpath.models.dynamic_sharing import SleepConfig, local_layers, spread

CLAIM = claims.claim("sharing_buys")
KINDS = tr.KINDS
LABELS = {"conv": "convolutional (shared)", "local": "locally connected",
          "local_dws": "locally connected + dynamic sharing", "dense": "dense (MLP)"}
COLORS = {**SHARING_COLORS, "local_dws": SHARING_COLORS["local_shared"]}
REGIMES = {"one_place": "trained at one place", "translated": "trained with translations"}
DATASETS = {"mnist": "MNIST, 28x28", "digits": "scikit-learn digits, 8x8",
            "mnist1d": "MNIST-1D", "mnist1d_shuffled": "MNIST-1D, positions shuffled"}


@dataclass(frozen=True)
class Published:
    """A published test accuracy (%) and where it comes from."""

    dataset: str
    kind: str
    accuracy_pct: float
    source: str


#: Greydanus & Kobak's MNIST-1D table (their MLP is our ``dense``, their CNN our ``conv``).
MNIST1D_PUBLISHED = (
    Published("mnist1d", "dense", 68.0, "Greydanus & Kobak (2024)"),
    Published("mnist1d", "conv", 94.0, "Greydanus & Kobak (2024)"),
    Published("mnist1d_shuffled", "dense", 68.0, "Greydanus & Kobak (2024)"),
    Published("mnist1d_shuffled", "conv", 56.0, "Greydanus & Kobak (2024)"),
)
#: Conv and locally connected accuracy (%) published on MNIST at 60,000 training images.
MNIST_PUBLISHED = (
    ("Ott et al. (2020)", "best median validation accuracy", 99.31, 99.19),
    ("Bartunov et al. (2018)", "100 - test error", 100 - 1.01, 100 - 1.17),
)


# ---------------------------------------------------------------------------- data


def to_tensor(x: np.ndarray, device: Any, shape: Sequence[int] | None = None) -> torch.Tensor:
    """A float32 (or int64 labels) array as a tensor on ``device``, reshaped if asked."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    t = t.view(*shape) if shape is not None else t
    return t.to(device)


def load_images(name: str, train_per_class: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``(x_train, x_test, y_train, y_test, side)``: MNIST's 5,000 digits split with
    ``train_per_class`` per class for training, or scikit-learn's digits (smoke profile) with
    ``train_per_class`` per class drawn from their training split."""
    if name == "mnist":
        return (*load_mnist5k_split(train_per_class, seed), 28)
    if name == "digits":
        x_tr, x_te, y_tr, y_te = load_digits_split(0.3, seed)
        x_tr, y_tr = k_shot(x_tr, y_tr, train_per_class, seed)
        return x_tr, x_te, y_tr, y_te, 8
    raise ValueError(f"image_data must be 'mnist' or 'digits', got {name!r}")


def on_canvas(x: np.ndarray, side: int, margin: int, shift: int = 0) -> np.ndarray:
    """Flat square images on a canvas ``margin`` columns wider each side, moved ``shift``
    columns from the centre: (n, 1, side, side + 2 * margin)."""
    if abs(shift) > margin:
        raise ValueError(f"shift {shift} exceeds the margin {margin}")
    out = np.zeros((len(x), 1, side, side + 2 * margin), dtype=np.float32)
    out[:, 0, :, margin + shift:margin + shift + side] = x.reshape(-1, side, side)
    return out


def subset(n: int, size: int, seed: int) -> np.ndarray:
    """``size`` of ``n`` indices drawn at random (seeded): the test split is sorted by class,
    so its first digits would all be zeros and ones."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:min(size, n)])


# ---------------------------------------------------------------------------- experiments


def _sleep(params: dict[str, Any]) -> SleepConfig:
    return SleepConfig(every=params["sleep_every"], iterations=params["sleep_iterations"],
                       lr=params["sleep_lr"], noise_batch=params["sleep_noise"])


def _image_config(params: dict[str, Any], max_shift: int = 0) -> tr.TrainConfig:
    return tr.TrainConfig(steps=params["steps"], batch_size=params["batch_size"],
                          lr=params["lr"], max_shift=max_shift, sleep=_sleep(params))


def _fit(family: str, kind: str, seed: int, x: torch.Tensor, y: torch.Tensor,
         cfg: tr.TrainConfig, device: Any, **net_kw: Any) -> tuple[torch.nn.Module, float]:
    """A seeded net of ``kind`` trained on ``(x, y)``; the spread its local layers end with."""
    net = tr.build(family, kind, seed, device, **net_kw)
    tr.train(net, x, y, cfg, seed=seed, share=kind == "local_dws")
    layers = local_layers(net)
    return net, float(np.mean([spread(m) for m in layers])) if layers else float("nan")


def image_curve(params: dict[str, Any], seeds: Sequence[int], device: Any) -> pd.DataFrame:
    """Test accuracy of every wiring, training-set size and seed on the image data
    (``n_test`` column: the test digits behind each accuracy)."""
    x_tr, x_te, y_tr, y_te, side = load_images(params["image_data"],
                                               params["train_per_class"], params["seed"])
    xt, yt = to_tensor(x_te, device, (-1, 1, side, side)), to_tensor(y_te, device)
    sizes = sorted({int(k) for k in params["shots"]} | {int(params["train_per_class"])})
    net_kw = {"in_size": (side, side), "channels": tuple(params["channels"]),
              "kernel_size": params["kernel_size"], "hidden": params["hidden"]}
    rows = []
    for k in sizes:
        for s in seeds:
            xs, ys = k_shot(x_tr, y_tr, k, s)
            x, y = to_tensor(xs, device, (-1, 1, side, side)), to_tensor(ys, device)
            for kind in KINDS:
                net, sp = _fit("image", kind, s, x, y, _image_config(params), device, **net_kw)
                rows.append({"dataset": params["image_data"], "kind": kind, "per_class": k,
                             "n_train": len(ys), "n_test": len(y_te), "seed": s, "spread": sp,
                             "accuracy_pct": tr.accuracy_pct(net, xt, yt)})
    return pd.DataFrame(rows)


def mnist1d_runs(params: dict[str, Any], seeds: Sequence[int], device: Any,
                 shuffled: bool = False) -> pd.DataFrame:
    """MNIST-1D with the published protocol; smaller sets train for the same epochs."""
    x_tr, x_te, y_tr, y_te = load_mnist1d(shuffle=shuffled)
    xt, yt = to_tensor(x_te, device), to_tensor(y_te, device)
    full = len(y_tr)
    name = "mnist1d_shuffled" if shuffled else "mnist1d"
    rows = []
    for k in [*sorted({int(k) for k in params["mnist1d_shots"]}), None]:
        for s in seeds:
            xs, ys = (x_tr, y_tr) if k is None else k_shot(x_tr, y_tr, k, s)
            x, y = to_tensor(xs, device), to_tensor(ys, device)
            steps = max(1, round(params["mnist1d_steps"] * len(ys) / full))
            cfg = tr.TrainConfig(steps=steps, batch_size=params["mnist1d_batch_size"],
                                 lr=params["mnist1d_lr"], order="sequential",
                                 sleep=_sleep(params))
            for kind in params["mnist1d_kinds"]:
                net, sp = _fit("sequence", kind, s, x, y, cfg, device)
                rows.append({"dataset": name, "kind": kind,
                             "per_class": int(np.bincount(ys).min()) if k is None else k,
                             "n_train": len(ys), "seed": s, "spread": sp, "full": k is None,
                             "accuracy_pct": tr.accuracy_pct(net, xt, yt)})
    return pd.DataFrame(rows)


def translation(params: dict[str, Any], seeds: Sequence[int], device: Any) -> pd.DataFrame:
    """Accuracy at each test shift after training at one place or with translations."""
    x_tr, x_te, y_tr, y_te, side = load_images(params["image_data"],
                                               params["train_per_class"], params["seed"])
    m = int(params["max_shift_px"])
    keep = subset(len(y_te), int(params["shift_test_size"]), params["seed"])
    x_te, y_te = x_te[keep], y_te[keep]
    yt = to_tensor(y_te, device)
    tests = {int(d): to_tensor(on_canvas(x_te, side, m, int(d)), device)
             for d in params["test_shifts"]}
    x = to_tensor(on_canvas(x_tr, side, m), device)
    y = to_tensor(y_tr, device)
    net_kw = {"in_size": (side, side + 2 * m), "channels": tuple(params["channels"]),
              "kernel_size": params["kernel_size"], "hidden": params["hidden"]}
    rows = []
    for regime, shift in (("one_place", 0), ("translated", m)):
        for s in seeds:
            for kind in KINDS:
                net, _ = _fit("image", kind, s, x, y, _image_config(params, shift), device,
                              **net_kw)
                rows += [{"regime": regime, "kind": kind, "seed": s, "shift_px": d,
                          "accuracy_pct": tr.accuracy_pct(net, xd, yt)}
                         for d, xd in tests.items()]
    return pd.DataFrame(rows)


def parameter_counts(params: dict[str, Any], side: int) -> dict[str, int]:
    """Parameters of each image wiring at ``side`` and of each MNIST-1D net."""
    out = {}
    for kind in KINDS:
        net = tr.image_net(kind, (side, side), tuple(params["channels"]),
                           params["kernel_size"], hidden=params["hidden"])
        out[f"params_image_{kind}"] = tr.count_parameters(net)
        out[f"params_mnist1d_{kind}"] = tr.count_parameters(tr.sequence_net(kind))
    return out


def run(params: dict[str, Any], device: Any) -> dict[str, Any]:
    """All three experiments; frames of single runs and the timings of each part."""
    if not {"conv", "local"} <= set(params["mnist1d_kinds"]) <= set(KINDS):
        raise ValueError(f"mnist1d_kinds must hold conv and local, among {KINDS}")
    seeds = [params["seed"] + r for r in range(params["num_seeds"])]
    times, parts = {}, {}
    for name, fn in (("curve", lambda: image_curve(params, seeds, device)),
                     ("mnist1d", lambda: mnist1d_runs(params, seeds, device)),
                     ("shift", lambda: translation(params, seeds, device))):
        t0 = time.perf_counter()
        parts[name] = fn()
        times[f"{name}_s"] = time.perf_counter() - t0
    if params["mnist1d_shuffled"]:
        t0 = time.perf_counter()
        parts["mnist1d"] = pd.concat([parts["mnist1d"],
                                      mnist1d_runs(params, seeds, device, shuffled=True)],
                                     ignore_index=True)
        times["mnist1d_shuffled_s"] = time.perf_counter() - t0
    side = 28 if params["image_data"] == "mnist" else 8
    return {"curve": parts["curve"], "mnist1d": parts["mnist1d"], "shift": parts["shift"],
            "counts": parameter_counts(params, side), "times": times,
            "thresholds": {k: params[k] for k in ("max_gap_few_pp", "max_gap_mnist1d_pp",
                                                  "max_gap_shift_pp")},
            "image_data": params["image_data"], "seeds": seeds,
            "smallest_per_class": min(int(k) for k in [*params["shots"],
                                                        params["train_per_class"]])}


# ---------------------------------------------------------------------------- summaries


def paired_gap(df: pd.DataFrame, a: str = "conv", b: str = "local") -> verdict.Interval:
    """Mean over seeds of accuracy(a) - accuracy(b), paired by seed, with its t interval."""
    wide = df.pivot_table(index="seed", columns="kind", values="accuracy_pct")
    return verdict.t_interval((wide[a] - wide[b]).tolist())


def accuracy(df: pd.DataFrame, kind: str) -> verdict.Interval:
    """Mean test accuracy of ``kind`` over seeds in ``df``, with its t interval."""
    return verdict.t_interval(df.loc[df["kind"] == kind, "accuracy_pct"].tolist())


def summarise(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean and 95% t interval of ``accuracy_pct`` over seeds for each group in ``by``."""
    rows = []
    for keys, g in df.groupby(list(by), sort=False):
        iv = verdict.t_interval(g["accuracy_pct"].tolist())
        rows.append({**dict(zip(by, keys if isinstance(keys, tuple) else (keys,),
                                strict=True)),
                     "mean_pct": iv.value, "lo_pct": iv.lo, "hi_pct": iv.hi, "n": iv.n})
    return pd.DataFrame(rows)


def _smallest(curve: pd.DataFrame) -> pd.DataFrame:
    return curve[curve["per_class"] == curve["per_class"].min()]


def _mnist1d_full(m1d: pd.DataFrame, name: str = "mnist1d") -> pd.DataFrame:
    return m1d[(m1d["dataset"] == name) & m1d["full"]]


def _shifted(shift: pd.DataFrame, regime: str) -> pd.DataFrame:
    """Per seed and kind, mean accuracy over the non-zero test shifts of ``regime``."""
    moved = shift[(shift["regime"] == regime) & (shift["shift_px"] != 0)]
    return moved.groupby(["kind", "seed"], as_index=False)["accuracy_pct"].mean()


def key_numbers(result: dict[str, Any]) -> dict[str, Any]:
    """The numbers the page and the results file state, flat by name (accuracies in %)."""
    out: dict[str, Any] = {**result["counts"], "image_data": result["image_data"],
                           "num_seeds": len(result["seeds"]),
                           "smallest_per_class": result["smallest_per_class"]}
    curve, m1d = result["curve"], result["mnist1d"]
    for row in summarise(curve, ["kind", "per_class"]).itertuples():
        out[f"image_{row.kind}_k{row.per_class}_acc"] = row.mean_pct
    largest = curve["per_class"].max()
    out["largest_per_class"] = int(largest)
    for name, sub in (("few", _smallest(curve)), ("full", curve[curve["per_class"] == largest])):
        iv = paired_gap(sub)
        out[f"gap_{name}_pp"], out[f"gap_{name}_interval"] = iv.value, [iv.lo, iv.hi]
        dws = paired_gap(sub, "local_dws", "local")
        out[f"dws_minus_local_{name}_pp"] = dws.value
        out[f"dws_minus_local_{name}_interval"] = [dws.lo, dws.hi]
    for name in ("mnist1d", "mnist1d_shuffled"):
        full = _mnist1d_full(m1d, name)
        for kind, tag in (("dense", "mlp"), ("conv", "cnn"), ("local", "lc"),
                          ("local_dws", "lc_dws")):
            if kind in set(full["kind"]):
                iv = accuracy(full, kind)
                out[f"{name}_{tag}_acc"], out[f"{name}_{tag}_interval"] = iv.value, [iv.lo,
                                                                                     iv.hi]
    gap = paired_gap(_mnist1d_full(m1d))
    out["gap_mnist1d_pp"], out["gap_mnist1d_interval"] = gap.value, [gap.lo, gap.hi]
    out["mnist1d_n_train"] = int(_mnist1d_full(m1d)["n_train"].iloc[0])
    for regime in REGIMES:
        moved = _shifted(result["shift"], regime)
        iv = paired_gap(moved)
        out[f"gap_shift_{regime}_pp"], out[f"gap_shift_{regime}_interval"] = iv.value, [
            iv.lo, iv.hi]
        for kind in KINDS:
            out[f"shifted_{regime}_{kind}_acc"] = accuracy(moved, kind).value
        centre = result["shift"]
        centre = centre[(centre["regime"] == regime) & (centre["shift_px"] == 0)]
        for kind in KINDS:
            out[f"centre_{regime}_{kind}_acc"] = accuracy(centre, kind).value
    dws = curve.loc[curve["kind"] == "local_dws", "spread"]
    out["dws_spread"] = float(dws.mean())
    out["local_spread"] = float(curve.loc[curve["kind"] == "local", "spread"].mean())
    out["n_test_images"] = int(curve["n_test"].iloc[0])
    out["largest_n_train"] = int(curve.loc[curve["per_class"] == largest, "n_train"].iloc[0])
    return out


def _interval_text(n: dict[str, Any], key: str) -> str:
    lo, hi = n[f"{key}_interval"]
    return f"95% interval {lo:.1f} to {hi:.1f}"


def _listing(values: Sequence[Any], last: str = "and") -> str:
    items = [str(v) for v in values]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"


def prose_numbers(result: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Texts and parameter values the prose glues besides :func:`key_numbers`."""
    n = key_numbers(result)
    full = n["dws_minus_local_full_interval"]
    if full[1] < 0:
        dws = ("Dynamic sharing leaves the locally connected net below where it was without "
               "it on the largest set, the opposite of what Pogodin et al. find on larger "
               "images and longer training.")
        beside = "it leaves the locally connected net below where it is without sharing"
    elif full[0] > 0:
        dws = "Dynamic sharing lifts the locally connected net on the largest set."
        beside = "it lifts the locally connected net above where it is without sharing"
    else:
        dws = ("On the largest set the interval of that change holds zero: at this scale "
               "dynamic sharing neither helps nor hurts measurably.")
        beside = "it makes no difference these seeds can measure"
    shuffled = ""
    if "mnist1d_shuffled_cnn_acc" in n:
        shuffled = (f"With the positions shuffled the CNN falls to "
                    f"{n['mnist1d_shuffled_cnn_acc']:.1f}% (published: 56%) and the MLP "
                    f"reaches {n['mnist1d_shuffled_mlp_acc']:.1f}% (published: 68%); the "
                    f"locally connected net {n['mnist1d_shuffled_lc_acc']:.1f}%.")
    mnist = result["image_data"] == "mnist"
    return {
        "image_data_text": DATASETS[result["image_data"]] if mnist else
        "scikit-learn's 8x8 digits (a quick test run; the book uses MNIST)",
        "shots_text": _listing(sorted({*params["shots"], params["train_per_class"]})),
        "gap_few_text": _interval_text(n, "gap_few"),
        "gap_full_text": _interval_text(n, "gap_full"),
        "dws_few_text": _interval_text(n, "dws_minus_local_few"),
        "dws_full_text": _interval_text(n, "dws_minus_local_full"),
        "dws_verdict_text": dws, "dws_beside_text": beside,
        "gap_mnist1d_text": _interval_text(n, "gap_mnist1d"),
        "gap_shift_text": _interval_text(n, "gap_shift_translated"),
        "shuffled_text": shuffled,
        "canvas_margin_text": f"{params['max_shift_px']} pixels",
        "test_shifts_text": _listing(params["test_shifts"], "or"),
        "largest_n_train_text": f"{n['largest_n_train']:,}",
        "claim_text": CLAIM,
        "dws_spread_pct": 100 * n["dws_spread"], "local_spread_pct": 100 * n["local_spread"],
        **{k: params[k] for k in ("kernel_size", "sleep_every", "sleep_iterations", "hidden",
                                  "steps", "lr", "batch_size", "mnist1d_lr",
                                  "mnist1d_batch_size", "mnist1d_steps", "shift_test_size",
                                  "max_shift_px")},
    }


# ---------------------------------------------------------------------------- verdict


def decide(result: dict[str, Any]) -> verdict.Decision:
    """Three gaps, conv minus locally connected accuracy (points), each with its interval over
    seeds; the claim (sharing is a crutch) is supported by a gap at or below its threshold.

    - ``few examples``: on images, at the smallest training set;
    - ``MNIST-1D``: with the published protocol on the whole training set;
    - ``translation``: on shifted digits after training with translations.

    Trained at one place, a locally connected filter at a place no digit reached never
    learns: that gap is set by construction, so it is a fact beside the tests.
    """
    th = result["thresholds"]
    n = key_numbers(result)
    data = DATASETS[result["image_data"]]

    def test(name: str, quantity: str, key: str, threshold: float) -> verdict.Test:
        lo, hi = n[f"{key}_interval"]
        iv = verdict.Interval(n[f"{key}_pp"], lo, hi, len(result["seeds"]))
        return verdict.Test(name, quantity, iv, verdict.Rule("<=", threshold), "points")

    tests = [
        test("few examples", f"conv minus locally connected accuracy, {data}, "
             f"{n['smallest_per_class']} per class", "gap_few", th["max_gap_few_pp"]),
        test("MNIST-1D", "conv minus locally connected accuracy, MNIST-1D, published "
             "protocol", "gap_mnist1d", th["max_gap_mnist1d_pp"]),
        test("translation", "conv minus locally connected accuracy on shifted digits, "
             "trained with translations", "gap_shift_translated", th["max_gap_shift_pp"]),
    ]
    facts = [verdict.Fact("one place", "conv minus locally connected accuracy on shifted "
                          "digits, trained at one place",
                          round(n["gap_shift_one_place_pp"], 1), "points",
                          "measured; set by construction (unvisited places never learn)")]
    for tag, kind, pub in (("mlp", "dense", 68.0), ("cnn", "conv", 94.0), ("lc", "local", None)):
        key = f"mnist1d_{tag}_acc"
        if key in n:
            lo, hi = n[f"mnist1d_{tag}_interval"]
            src = (f"trained here, published {pub:.0f}% (Greydanus & Kobak)" if pub
                   else "trained here; no paper reports it")
            facts.append(verdict.Fact(key, f"MNIST-1D {LABELS[kind]} test accuracy, mean of "
                                      f"{len(result['seeds'])} seeds [{lo:.1f}, {hi:.1f}]",
                                      round(n[key], 1), "%", src))
    return verdict.Decision(tests, facts)


# ---------------------------------------------------------------------------- tables, charts


def mnist1d_table(result: dict[str, Any]) -> pd.DataFrame:
    """Published and measured MNIST-1D accuracies, whole training set."""
    n = key_numbers(result)
    rows = []
    for name in ("mnist1d", "mnist1d_shuffled"):
        for kind, tag in (("dense", "mlp"), ("conv", "cnn"), ("local", "lc"),
                          ("local_dws", "lc_dws")):
            key = f"{name}_{tag}_acc"
            if key not in n:
                continue
            pub = [p.accuracy_pct for p in MNIST1D_PUBLISHED
                   if p.dataset == name and p.kind == kind]
            lo, hi = n[f"{name}_{tag}_interval"]
            rows.append({"data": DATASETS[name], "net": LABELS[kind],
                         "published %": pub[0] if pub else None,
                         "measured %": n[key], "95% interval": f"{lo:.1f} to {hi:.1f}"})
    return pd.DataFrame(rows)


def anchors_table(result: dict[str, Any]) -> pd.DataFrame:
    """Published conv and locally connected accuracies on MNIST beside ours."""
    n = key_numbers(result)
    rows = [{"source": s, "training images": "60,000", "metric": metric, "conv %": c,
             "locally connected %": lc, "conv - LC (points)": c - lc}
            for s, metric, c, lc in MNIST_PUBLISHED]
    k = n["largest_per_class"]
    rows.append({"source": "this run", "training images": f"{10 * k:,}",
                 "metric": "mean test accuracy over seeds",
                 "conv %": n[f"image_conv_k{k}_acc"], "locally connected %":
                 n[f"image_local_k{k}_acc"], "conv - LC (points)": n["gap_full_pp"]})
    return pd.DataFrame(rows)


def _color() -> alt.Color:
    names = [LABELS[k] for k in KINDS]
    return alt.Color("net:N", scale=alt.Scale(domain=names, range=[COLORS[k] for k in KINDS]),
                     sort=names, legend=alt.Legend(title="net", labelLimit=320))


def curve_chart(result: dict[str, Any]) -> alt.FacetChart:
    """Accuracy against examples per class (log), mean and 95% interval, one panel per data."""
    df = pd.concat([result["curve"], result["mnist1d"]], ignore_index=True)
    summ = summarise(df, ["dataset", "kind", "per_class"])
    summ["net"] = summ["kind"].map(LABELS)
    summ["data"] = summ["dataset"].map(DATASETS)
    x = alt.X("per_class:Q", title="training examples per class (log scale)",
              scale=alt.Scale(type="log", nice=False, padding=8))
    base = alt.Chart(summ).encode(x=x, color=_color())
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean_pct:Q", title="test accuracy (%)", scale=alt.Scale(zero=False)),
        tooltip=["net:N", "per_class:Q", alt.Tooltip("mean_pct:Q", format=".1f"),
                 alt.Tooltip("lo_pct:Q", format=".1f"), alt.Tooltip("hi_pct:Q", format=".1f"),
                 "n:Q"])
    band = base.mark_errorbar().encode(y="lo_pct:Q", y2="hi_pct:Q")
    return (band + line).properties(width=240, height=240).facet(
        column=alt.Column("data:N", title=None)).resolve_scale(y="independent")


def shift_chart(result: dict[str, Any]) -> alt.FacetChart:
    """Accuracy against test shift (pixels), one panel per training regime."""
    summ = summarise(result["shift"], ["regime", "kind", "shift_px"])
    summ["net"] = summ["kind"].map(LABELS)
    summ["regime"] = summ["regime"].map(REGIMES)
    base = alt.Chart(summ).encode(
        x=alt.X("shift_px:Q", title="shift from the training place (pixels)",
                axis=alt.Axis(tickMinStep=1, format="d")), color=_color())
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean_pct:Q", title="test accuracy (%)", scale=alt.Scale(domain=[0, 100])),
        tooltip=["net:N", "shift_px:Q", alt.Tooltip("mean_pct:Q", format=".1f"),
                 alt.Tooltip("lo_pct:Q", format=".1f"), alt.Tooltip("hi_pct:Q", format=".1f")])
    band = base.mark_area(opacity=0.15).encode(y="lo_pct:Q", y2="hi_pct:Q")
    return (band + line).properties(width=240, height=240).facet(
        column=alt.Column("regime:N", title=None))
