"""Chapter "Learning in one shot": few-shot accuracy on real digits, and what storing and
retrieving cost as a memory fills, judged only where the memory still recalls.

1. **Few-shot on new classes** (the protocol Lake et al. 2017 compare with): a small
   convolutional net (:class:`~gardenpath.models.baselines.EmbeddingNet`) is trained by
   backprop on the MNIST digits of ``base_classes``; the other classes are new. From k
   digits per new class (several draws), four learners classify held-out digits of the new
   classes: nearest neighbour in the net's embedding; backprop trained from scratch on the
   k digits until it fits them; nearest neighbour on pixels; and the Sparsey-style
   learner, shown each digit once.
2. **Sparsey's published protocol** (Neurithmic Systems, "Preliminary MNIST Results"): 200
   digits per class, each presented once, 10 classes, on our MNIST split.
3. **Store and retrieve time against items stored**: synthetic sparse binary items stored
   in a Sparsey-style macrocolumn, an exact best-match memory and an approximate
   nearest-neighbour index (FAISS's HNSW). Exact recall is measured at each size; "fixed
   time" is judged only between sizes where the macrocolumn's exact recall is at or above
   ``recall_floor`` (within its capacity).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gardenpath import charts, claims, verdict
from gardenpath.models.baselines import (
    BinaryHNSW,
    ConvergedBackprop,
    EmbeddingNet,
    ExactMemory,
    NearestNeighbour,
    synthetic_items,
)
from gardenpath.models.rules import SparseyClassifier
from gardenpath.models.rules.sparsey import encode_patches
from gardenpath.models.sdr import SDRMacrocolumn

CLAIM = claims.claim("one_shot")

#: Learners of the few-shot experiment, in the order the page lists them.
LEARNERS: dict[str, str] = {
    "sparsey": "Sparsey-style SDR (one presentation)",
    "embedding_nn": "nearest neighbour in a net trained on other classes",
    "backprop": "backprop from scratch, trained to fit",
    "nn_pixels": "nearest neighbour on pixels",
}
#: Memories of the storage experiment.
MEMORIES: dict[str, str] = {"sdr": "SDR macrocolumn", "exact": "exact search",
                            "ann": "HNSW index (approximate)"}
OPERATIONS = ("store", "retrieve")

#: Published numbers. Lake et al. 2015: Omniglot 20-way one-shot error (%); Koch et al.
#: 2015's Siamese net on the same task; Sparsey on MNIST from its maker's web page.
ANCHORS: list[dict[str, Any]] = [
    {"source": "Lake et al. 2015", "learner": "people", "dataset": "Omniglot",
     "task": "20-way, 1 example per class", "error_pct": 4.5},
    {"source": "Lake et al. 2015", "learner": "Bayesian program learning",
     "dataset": "Omniglot", "task": "20-way, 1 example per class", "error_pct": 3.3},
    {"source": "Lake et al. 2015", "learner": "deep convolutional network",
     "dataset": "Omniglot", "task": "20-way, 1 example per class", "error_pct": 13.5},
    {"source": "Koch et al. 2015 (as Lake et al. 2015 report it)",
     "learner": "Siamese convolutional network", "dataset": "Omniglot",
     "task": "20-way, 1 example per class", "error_pct": 8.0},
    {"source": "Neurithmic Systems, Preliminary MNIST Results (web page)",
     "learner": "Sparsey, 2 levels", "dataset": "MNIST, 16x24, binarised, skeletonised",
     "task": "10-way, 200 per class, each seen once", "error_pct": 9.0},
]


# ------------------------------------------------------------------------------ data


def load(p: dict[str, Any], seed: int) -> tuple[np.ndarray, ...]:
    """The split for ``seed``: MNIST (``train_per_class`` per class) or the 8x8 digits."""
    from gardenpath import data

    if p["dataset"] == "mnist":
        return data.load_mnist5k_split(train_per_class=p["train_per_class"], seed=seed)
    if p["dataset"] == "digits":
        return data.load_digits_split(test_fraction=0.3, seed=seed)
    raise ValueError(f"dataset must be 'mnist' or 'digits', got {p['dataset']!r}")


def patch_code(x: np.ndarray, patch: int) -> np.ndarray:
    """The binary patch code the Sparsey-style learner reads (p x p patches, stride p)."""
    return encode_patches(torch.as_tensor(x), patch, stride=patch).numpy()


def sparsey(p: dict[str, Any]) -> SparseyClassifier:
    """The Sparsey-style learner on already binary inputs."""
    return SparseyClassifier(Q=p["sparsey_Q"], K=p["sparsey_K"], encoding="threshold")


# ------------------------------------------------------------------------------ few-shot


def few_shot(p: dict[str, Any]) -> dict[str, Any]:
    """Every learner on every k and draw of the new classes; one row each.

    The embedding net is trained once, on every digit of the base classes (training and
    held-out alike: only the new classes are tested); draw d of k digits per new class
    uses seed ``seed * 1000 + d``; the test digits are every held-out digit of the new
    classes.
    """
    from gardenpath.data import k_shot

    xtr, xte, ytr, yte = load(p, p["seed"])
    base = np.isin(ytr, p["base_classes"])
    new_tr, new_te = ~base, ~np.isin(yte, p["base_classes"])
    if not base.any() or not new_tr.any():
        raise ValueError("base_classes must name some, but not all, of the classes")
    net = EmbeddingNet(p["embed_channels"], p["embed_dim"], p["embed_epochs"])
    base_te = np.isin(yte, p["base_classes"])
    xb, yb = np.concatenate([xtr[base], xte[base_te]]), np.concatenate([ytr[base], yte[base_te]])
    net_report = net.fit(xb, yb, seed=p["seed"])
    xn, yn, xq, yq = xtr[new_tr], ytr[new_tr], xte[new_te], yte[new_te]
    eq, cq = net.embed(xq), patch_code(xq, p["patch"])
    rows = []
    for k in p["k_values"]:
        for d in range(p["draws"]):
            draw_seed = p["seed"] * 1000 + d
            xs, ys = k_shot(xn, yn, k, seed=draw_seed)
            preds = {"embedding_nn": NearestNeighbour().fit(net.embed(xs), ys).predict(eq),
                     "nn_pixels": NearestNeighbour().fit(xs, ys).predict(xq)}
            sp = sparsey(p)
            rep = sp.fit(patch_code(xs, p["patch"]), ys, seed=draw_seed)
            preds["sparsey"] = sp.predict(cq)
            bp = ConvergedBackprop(hidden=(p["bp_hidden"],), lr=p["bp_lr"],
                                   loss_tol=p["bp_loss_tol"], max_epochs=p["bp_max_epochs"])
            bp_rep = bp.fit(xs, ys, seed=draw_seed)
            preds["backprop"] = bp.predict(xq)
            updates = {"sparsey": rep.weight_updates, "backprop": bp_rep.weight_updates,
                       "embedding_nn": len(xs), "nn_pixels": len(xs)}
            for name in LEARNERS:
                rows.append({"k": k, "draw": d, "learner": name,
                             "accuracy": float(np.mean(preds[name] == yq)),
                             "weight_updates": updates[name],
                             "converged": bool(bp_rep.extra["converged"])
                             if name == "backprop" else True})
    return {"rows": rows, "ways": int(len(np.unique(yn))), "n_test": int(len(yq)),
            "embedding_updates": net_report.weight_updates,
            "embedding_train": int(len(xb))}


def published_protocol(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Sparsey's published protocol on our split: every training digit (``train_per_class``
    per class) presented once, 10 classes; nearest neighbour on pixels beside it. One row
    per draw, each a new split (seed + d)."""
    rows = []
    for d in range(p["draws"]):
        xtr, xte, ytr, yte = load(p, p["seed"] + d)
        sp = sparsey(p)
        rep = sp.fit(patch_code(xtr, p["patch"]), ytr, seed=p["seed"] + d)
        rows.append({"draw": d, "sparsey": sp.score(patch_code(xte, p["patch"]), yte),
                     "nn_pixels": float(np.mean(
                         NearestNeighbour().fit(xtr, ytr).predict(xte) == yte)),
                     "presentations": rep.presentations, "n_train": len(xtr),
                     "n_test": len(xte)})
    return rows


# ------------------------------------------------------------------------------ storage


def _median_time(fn: Callable[[], Any], min_s: float) -> float:
    """Median CPU seconds per call of ``fn`` over calls filling ``min_s`` (after a warm-up).

    The clock is this thread's CPU time, not the wall clock: torch and FAISS run on one
    thread here, and on a shared machine the wall clock also counts time other processes
    hold the core.
    """
    fn()
    times, spent = [], 0.0
    while spent < min_s or len(times) < 5:
        t0 = time.thread_time()
        fn()
        dt = time.thread_time() - t0
        times.append(dt)
        spent += dt
    return float(np.median(times))


def storage(p: dict[str, Any]) -> list[dict[str, Any]]:
    """Recall and per-item store and retrieve times of the three memories at each size.

    Items are stored in order up to each size; there the SDR's exact recall (its retrieved
    code equals the code learnt, for ``recall_sample`` stored items) and the HNSW index's
    recall (it returns the item's own index) are measured, and the macrocolumn's weights
    and an HNSW index of the items so far are kept. Then ``timing_rounds`` rounds each
    visit every size and operation in turn; each round gives one median per (size,
    memory, operation), so a slow spell of a shared machine falls on all of them alike.
    Timed stores into the macrocolumn are undone by reloading its weights; the exact
    memory writes spare rows; each HNSW store adds a fresh item for good (a few per round).
    """
    sizes = sorted(p["store_sizes"])
    bits, active = p["item_bits"], p["item_active"]
    mac = SDRMacrocolumn(bits, p["sdr_Q"], p["sdr_K"], seed=p["seed"])
    mem = ExactMemory(sizes[-1] + 64, bits)
    codes = torch.empty(sizes[-1], p["sdr_Q"], dtype=torch.int64)
    fresh = synthetic_items(0, 64, bits, active, p["seed"] + 7919)
    rng = np.random.default_rng(p["seed"])
    rows, stored, snaps, anns = [], 0, {}, {}
    for size in sizes:
        items = synthetic_items(stored, size - stored, bits, active, p["seed"])
        mem.store(items)
        codes[stored:size] = mac.learn(items.float())
        stored = size
        probe = torch.as_tensor(rng.choice(size, min(p["recall_sample"], size), replace=False))
        got = torch.cat([mac.infer(mem.table[b].float()) for b in probe.split(1024)])
        ann = BinaryHNSW(bits, p["ann_links"], ef_search=p["ann_ef_search"])
        ann.store(mem.table[:size])
        anns[size], snaps[size] = ann, mac.weights.clone()
        rows.append({"items": size,
                     "sdr_recall": float((got == codes[probe]).all(1).double().mean()),
                     "sdr_module_recall": float((got == codes[probe]).float().mean()),
                     "ann_recall": float(np.mean([ann.retrieve(mem.table[int(i)]) == int(i)
                                                  for i in probe[:100]])),
                     "sdr_weight_density": mac.weight_density(),
                     "sdr_state_bytes": mac.state_bytes, "exact_state_bytes": size * bits // 8,
                     "times": {(m, op): [] for m in MEMORIES for op in OPERATIONS}})
    probes = [mem.table[i] for i in range(16)]
    next_probe, next_probe_f = itertools.cycle(probes), itertools.cycle(
        [t.float()[None] for t in probes])
    next_fresh_f = itertools.cycle([t.float()[None] for t in fresh])
    next_slot = itertools.cycle([(sizes[-1] + j, t) for j, t in enumerate(fresh)])
    min_s = p["min_run_time_s"]
    for _ in range(p["timing_rounds"]):
        for row in rows:
            size, times, ann = row["items"], row["times"], anns[row["items"]]
            mac.weights.copy_(snaps[size])
            mem.n = size
            times[("sdr", "store")].append(
                _median_time(lambda: mac.learn(next(next_fresh_f)), min_s))
            mac.weights.copy_(snaps[size])
            times[("sdr", "retrieve")].append(
                _median_time(lambda: mac.infer(next(next_probe_f)), min_s))
            times[("exact", "store")].append(
                _median_time(lambda: mem.store_at(*next(next_slot)), min_s))
            times[("exact", "retrieve")].append(
                _median_time(lambda: mem.retrieve(next(next_probe)), min_s))
            adds = []
            for j in range(4):
                t0 = time.thread_time()
                ann.store(fresh[j:j + 1])
                adds.append(time.thread_time() - t0)
            times[("ann", "store")].append(float(np.median(adds)))
            times[("ann", "retrieve")].append(
                _median_time(lambda a=ann: a.retrieve(next(next_probe)), min_s))
    return rows


def within_capacity(rows: list[dict[str, Any]], floor: float) -> list[dict[str, Any]]:
    """The sizes, smallest first, up to the first whose SDR exact recall is below ``floor``."""
    out = []
    for r in rows:
        if r["sdr_recall"] < floor:
            break
        out.append(r)
    return out


# ------------------------------------------------------------------------------ run


def run(params: dict[str, Any], device: Any = None) -> dict[str, Any]:
    """The three experiments (on the CPU; ``device`` is recorded, not used)."""
    p = dict(params)
    p["k_values"] = sorted({int(k) for k in p["k_values"]})
    if len(p["store_sizes"]) < 2:
        raise ValueError("store_sizes needs at least two sizes to compare per-item times")
    if not 0 < p["item_active"] < p["item_bits"]:
        raise ValueError("item_active must lie between 1 and item_bits - 1")
    torch.manual_seed(p["seed"])
    return {"params": p, "few_shot": few_shot(p), "published": published_protocol(p),
            "storage": storage(p)}


# ------------------------------------------------------------------------------ verdict


def _nan_interval() -> verdict.Interval:
    """The interval of a quantity this run could not measure: it decides nothing."""
    return verdict.Interval(math.nan, -math.inf, math.inf, 0, "bootstrap")


def accuracy_gap(result: dict[str, Any], k: int, other: str = "embedding_nn"
                 ) -> verdict.Interval:
    """Sparsey's accuracy minus ``other``'s at k digits per class, paired by draw."""
    rows = [r for r in result["few_shot"]["rows"] if r["k"] == k]
    by = {(r["learner"], r["draw"]): r["accuracy"] for r in rows}
    draws = sorted({r["draw"] for r in rows})
    return verdict.t_interval([by[("sparsey", d)] - by[(other, d)] for d in draws])


def time_ratio(result: dict[str, Any], num: tuple[Any, ...], den: tuple[Any, ...]
               ) -> verdict.Interval:
    """Ratio of mean per-item times (over timing rounds): ``num`` and ``den`` are
    (size position within capacity: 0 first, -1 last; memory; operation)."""
    p = result["params"]
    cap = within_capacity(result["storage"], p["recall_floor"])
    if len(cap) < 2:
        return _nan_interval()
    a, b = cap[num[0]]["times"][num[1:]], cap[den[0]]["times"][den[1:]]
    return verdict.ratio_interval(a, b)


def decide(result: dict[str, Any]) -> verdict.Decision:
    """Four tests, each with its threshold from the parameters cell:

    * ``one_shot``: at the smallest k, Sparsey's accuracy minus that of nearest neighbour
      in the embedding learnt on other classes is at least ``-tolerance``;
    * ``fixed_store`` / ``fixed_retrieve``: the SDR's per-item time at the largest size
      within capacity over that at the smallest is at most ``fixed_time_tolerance``;
    * ``sdr_vs_search``: at the largest size within capacity, SDR retrieval takes at most
      ``speed_ratio_max`` times exact search's.

    With fewer than two sizes within capacity the time tests cannot be measured and stay
    inconclusive.
    """
    p = result["params"]
    k = min(p["k_values"])
    tol = p["fixed_time_tolerance"]
    tests = [
        verdict.Test("one_shot", f"Sparsey's accuracy minus nearest neighbour in the "
                     f"learnt embedding, {k} per class", accuracy_gap(result, k),
                     verdict.Rule(">=", -p["tolerance"])),
        verdict.Test("fixed_store", "SDR store time, largest over smallest size within "
                     "capacity", time_ratio(result, (-1, "sdr", "store"), (0, "sdr", "store")),
                     verdict.Rule("<=", tol), "x"),
        verdict.Test("fixed_retrieve", "SDR retrieve time, largest over smallest size "
                     "within capacity", time_ratio(result, (-1, "sdr", "retrieve"),
                                                   (0, "sdr", "retrieve")),
                     verdict.Rule("<=", tol), "x"),
        verdict.Test("sdr_vs_search", "SDR retrieve time over exact search's, largest size "
                     "within capacity", time_ratio(result, (-1, "sdr", "retrieve"),
                                                   (-1, "exact", "retrieve")),
                     verdict.Rule("<=", p["speed_ratio_max"]), "x"),
    ]
    cap = within_capacity(result["storage"], p["recall_floor"])
    facts = [verdict.Fact("capacity", f"largest size measured with SDR exact recall ≥ "
                          f"{p['recall_floor']:g}", cap[-1]["items"] if cap else 0, "items",
                          "measured at the sizes in store_sizes"),
             verdict.Fact("sdr_updates", "weight updates for one digit (Sparsey)", 1, "",
                          "the learner's construction")]
    return verdict.Decision(tests, facts)


# ------------------------------------------------------------------------------ numbers


def few_shot_summary(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (k, learner): accuracy with its 95% t interval over draws, mean updates."""
    rows = result["few_shot"]["rows"]
    out = []
    for k, name in dict.fromkeys((r["k"], r["learner"]) for r in rows):
        rs = [r for r in rows if r["k"] == k and r["learner"] == name]
        iv = verdict.t_interval([r["accuracy"] for r in rs])
        out.append({"k": k, "learner": name, "label": LEARNERS[name], "accuracy": iv.value,
                    "lo": iv.lo, "hi": iv.hi, "draws": len(rs),
                    "weight_updates": float(np.mean([r["weight_updates"] for r in rs])),
                    "all_converged": all(r["converged"] for r in rs)})
    return out


def numbers(result: dict[str, Any]) -> dict[str, Any]:
    """Every computed number the page quotes, by flat name."""
    p, fs = result["params"], result["few_shot"]
    out: dict[str, Any] = {"k_min": min(p["k_values"]), "ways": fs["ways"],
                           "fs_n_test": fs["n_test"], "draws": p["draws"],
                           "embedding_train": fs["embedding_train"],
                           "embedding_updates": fs["embedding_updates"],
                           "recall_floor_pct": 100 * p["recall_floor"],
                           "item_bits": p["item_bits"], "item_active": p["item_active"]}
    for r in few_shot_summary(result):
        tag = f"{r['learner']}_k{r['k']}"
        out.update({f"acc_{tag}": r["accuracy"], f"acc_lo_{tag}": r["lo"],
                    f"acc_hi_{tag}": r["hi"], f"updates_{tag}": r["weight_updates"]})
    pub = result["published"]
    for key in ("sparsey", "nn_pixels"):
        iv = verdict.t_interval([r[key] for r in pub])
        out.update({f"published_{key}": iv.value, f"published_{key}_lo": iv.lo,
                    f"published_{key}_hi": iv.hi})
    out.update(published_n_train=pub[0]["n_train"], published_n_test=pub[0]["n_test"],
               anchor_sparsey_acc=100 - ANCHORS[4]["error_pct"],
               **{f"anchor_error_pct_{i}": a["error_pct"] for i, a in enumerate(ANCHORS)})
    st = result["storage"]
    cap = within_capacity(st, p["recall_floor"])
    out.update(capacity_items=cap[-1]["items"] if cap else 0,
               smallest_items=st[0]["items"], largest_items=st[-1]["items"],
               sizes_within=len(cap))
    for r in st:
        out[f"sdr_recall_{r['items']}"] = r["sdr_recall"]
        out[f"ann_recall_{r['items']}"] = r["ann_recall"]
    out["sdr_recall_largest"] = st[-1]["sdr_recall"]
    out["sdr_recall_smallest"] = st[0]["sdr_recall"]
    out["ann_recall_cap"] = cap[-1]["ann_recall"] if cap else math.nan
    return out


def measurements(result: dict[str, Any]) -> dict[str, Any]:
    """Machine readings: mean per-item times (µs) per size, memory and operation."""
    out: dict[str, Any] = {}
    for r in result["storage"]:
        for (m, op), ts in r["times"].items():
            out[f"{m}_{op}_us_{r['items']}"] = 1e6 * float(np.mean(ts))
    cap = within_capacity(result["storage"], result["params"]["recall_floor"])
    if cap:
        for (m, op), ts in cap[-1]["times"].items():
            out[f"{m}_{op}_us_cap"] = 1e6 * float(np.mean(ts))
        for (m, op), ts in cap[0]["times"].items():
            out[f"{m}_{op}_us_first"] = 1e6 * float(np.mean(ts))
    return out


# ------------------------------------------------------------------------------ tables


def few_shot_table(result: dict[str, Any]) -> Any:
    """Few-shot accuracy per k and learner, with intervals and weight updates."""
    import pandas as pd

    df = pd.DataFrame([{
        "per class": r["k"], "learner": r["label"], "test accuracy": r["accuracy"],
        "95% interval": f"{r['lo']:.3f}-{r['hi']:.3f}", "weight updates": r["weight_updates"],
        "fit": "" if r["learner"] != "backprop" else (
            "yes" if r["all_converged"] else "not every draw")}
        for r in few_shot_summary(result)])
    return df.style.hide(axis="index").format({"test accuracy": "{:.3f}",
                                               "weight updates": "{:,.0f}"})


def storage_table(result: dict[str, Any]) -> Any:
    """Per size: recall, and mean per-item times (µs) of each memory and operation."""
    import pandas as pd

    floor = result["params"]["recall_floor"]
    rows = []
    for r in result["storage"]:
        row = {"items stored": r["items"], "within capacity":
               "yes" if r["sdr_recall"] >= floor else "no",
               "SDR exact recall": r["sdr_recall"], "HNSW recall": r["ann_recall"]}
        for m, label in MEMORIES.items():
            for op in OPERATIONS:
                row[f"{label} {op} µs"] = 1e6 * float(np.mean(r["times"][(m, op)]))
        rows.append(row)
    fmt: dict[str, str] = {c: "{:,.1f}" for c in rows[0] if c.endswith("µs")}
    fmt.update({"items stored": "{:,}", "SDR exact recall": "{:.3f}",
                "HNSW recall": "{:.3f}"})
    return pd.DataFrame(rows).style.hide(axis="index").format(fmt)


def anchor_table(result: dict[str, Any]) -> Any:
    """Published few-shot and Sparsey numbers beside ours."""
    import pandas as pd

    rows = [{"source": a["source"], "learner": a["learner"], "data": a["dataset"],
             "task": a["task"], "test error %": a["error_pct"]} for a in ANCHORS]
    n = numbers(result)
    rows.append({"source": "this chapter", "learner": LEARNERS["sparsey"],
                 "data": "MNIST 28x28, 2x2 patch code", "task":
                 f"10-way, {n['published_n_train'] // 10} per class, each seen once",
                 "test error %": 100 * (1 - n["published_sparsey"])})
    k = n["k_min"]
    for name in ("embedding_nn", "sparsey"):
        rows.append({"source": "this chapter", "learner": LEARNERS[name],
                     "data": "MNIST 28x28, new classes",
                     "task": f"{n['ways']}-way, {k} per class",
                     "test error %": 100 * (1 - n[f"acc_{name}_k{k}"])})
    return pd.DataFrame(rows).style.hide(axis="index").format({"test error %": "{:.1f}"})


# ------------------------------------------------------------------------------ charts


def few_shot_chart(result: dict[str, Any]) -> Any:
    """Accuracy on the new classes against digits per class, 95% intervals."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame(few_shot_summary(result))
    x = alt.X("k:Q", scale=alt.Scale(type="log"), title="digits per new class (log axis)")
    color = alt.Color("label:N", sort=list(LEARNERS.values()), title="learner",
                      scale=charts.color_scale(list(LEARNERS), LEARNERS),
                      legend=alt.Legend(labelLimit=320, orient="bottom", columns=1))
    base = alt.Chart(df)
    return (base.mark_line(point=True).encode(
        x=x, y=alt.Y("accuracy:Q", title="test accuracy, new classes",
                     scale=alt.Scale(zero=False)), color=color,
        tooltip=["label", "k", alt.Tooltip("accuracy:Q", format=".3f")])
        + base.mark_rule().encode(x=x, y="lo:Q", y2="hi:Q", color=color)).properties(
        title="Accuracy from k digits of each new class")


def timing_chart(result: dict[str, Any]) -> Any:
    """Per-item time against items stored (log-log), within capacity marked."""
    import altair as alt
    import pandas as pd

    floor = result["params"]["recall_floor"]
    rows = []
    for r in result["storage"]:
        for (m, op), ts in r["times"].items():
            rows.append({"items": r["items"], "memory": MEMORIES[m], "operation": op,
                         "us": 1e6 * float(np.mean(ts)),
                         "SDR recall": "within capacity" if r["sdr_recall"] >= floor
                         else "past capacity"})
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("items:Q", scale=alt.Scale(type="log"), title="items stored (log axis)"),
        y=alt.Y("us:Q", scale=alt.Scale(type="log"), title="time per item, µs (log axis)"),
        color=alt.Color("memory:N", sort=list(MEMORIES.values()), title="memory"),
        strokeDash=alt.StrokeDash("operation:N", title="operation"),
        shape=alt.Shape("SDR recall:N", title="SDR"),
        tooltip=["memory", "operation", "items", alt.Tooltip("us:Q", format=".1f")],
    ).properties(title="Time to store or retrieve one item")
