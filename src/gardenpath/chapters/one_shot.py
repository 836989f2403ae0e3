"""Chapter 7, "Learning in one shot": few-shot accuracy, and storage and retrieval time.

The essay (Rinkus) contrasts deep learning's many small weight adjustments with the
single-shot learning people show (Lake et al. 2017), and its author's model, Sparsey,
claims to store an item and retrieve the best match to an input in a fixed time, however
many items it holds. Two experiments:

1. **k-shot accuracy** on scikit-learn's 8x8 digits: k training examples per class
   (drawn several times), learnt by the Sparsey-style classifier (each example presented
   once; :class:`~gardenpath.models.rules.SparseyClassifier`), by nearest neighbour (the
   plain one-shot baseline, scikit-learn's ``KNeighborsClassifier(n_neighbors=1)``, on
   pixels and on the same binary patch code the Sparsey learner sees), and by a backprop
   network trained to convergence on the same k examples (:class:`ConvergedBackprop`).
   For each: test accuracy, presentations (examples shown, counting repeats) and weight
   updates.
2. **Time per item against items stored**: synthetic sparse binary items (``item_bits``
   long, ``item_active`` bits on) stored one by one into an
   :class:`~gardenpath.models.sdr.SDRMacrocolumn` (store = learn one item, retrieve =
   infer its code) and into an exact nearest-neighbour memory (:class:`ExactMemory`:
   store = write a row, retrieve = scan every stored row for the largest overlap). Each
   operation is timed with :func:`gardenpath.measure.timing.time_fn` at every size, and
   the SDR's exact recall of stored items is measured as the memory fills.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from gardenpath.models.rules import BackpropMLP, SparseyClassifier, TrainReport
from gardenpath.models.rules.base import Timer

#: Learners of the k-shot experiment, in the order the page lists them.
LEARNERS: dict[str, str] = {
    "sparsey": "Sparsey-style SDR (one presentation)",
    "nn_pixels": "nearest neighbour (pixels)",
    "nn_code": "nearest neighbour (Sparsey's patch code)",
    "backprop": "backprop, trained to convergence",
}

#: Operations of the storage experiment.
OPERATIONS: dict[str, str] = {
    "sdr_store": "SDR store",
    "sdr_retrieve": "SDR retrieve",
    "nn_store": "exact NN store",
    "nn_retrieve": "exact NN retrieve",
}

#: Published few-shot numbers; none is on our digits. Lake et al. 2015: Omniglot 20-way
#: one-shot classification within alphabets (error %). Rinkus: MNIST after single-trial
#: learning of 200 examples per class (accuracy %), as reported by its author.
ANCHORS: list[dict[str, Any]] = [
    {"source": "Lake et al. 2015", "learner": "people", "dataset": "Omniglot",
     "task": "20-way, 1 example per class", "error_pct": 4.5},
    {"source": "Lake et al. 2015", "learner": "Bayesian program learning",
     "dataset": "Omniglot", "task": "20-way, 1 example per class", "error_pct": 3.3},
    {"source": "Lake et al. 2015", "learner": "deep convolutional network",
     "dataset": "Omniglot", "task": "20-way, 1 example per class", "error_pct": 13.5},
    {"source": "Lake et al. 2015", "learner": "Siamese convolutional network",
     "dataset": "Omniglot", "task": "20-way, 1 example per class", "error_pct": 8.0},
    {"source": "Rinkus (reported)", "learner": "Sparsey, 2 levels",
     "dataset": "MNIST", "task": "10-way, 200 examples per class, each seen once",
     "error_pct": 9.0},
]


# ------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Settings:
    """The chapter's knobs, from the notebook's parameters cell."""

    seed: int = 0
    test_fraction: float = 0.3
    k_values: tuple[int, ...] = (1, 2, 5, 10, 20, 50)
    include_all: bool = True
    draws: int = 5
    sparsey_Q: int = 48
    sparsey_K: int = 256
    bp_hidden: int = 256
    bp_lr: float = 1e-3
    bp_loss_tol: float = 0.01
    bp_max_epochs: int = 3000
    acc_tolerance: float = 0.02
    store_sizes: tuple[int, ...] = (100, 1000, 10000, 100000)
    item_bits: int = 1024
    item_active: int = 32
    sdr_Q: int = 24
    sdr_K: int = 64
    timing_min_s: float = 0.2
    timing_rounds: int = 3
    recall_sample: int = 500
    fixed_time_tolerance: float = 2.0
    recall_floor: float = 0.9
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Settings:
        """Settings from a parameters dict (unknown keys ignored), checked for sense."""
        fields = {k: params[k] for k in cls.__dataclass_fields__ if k in params and k != "extra"}
        for key in ("k_values", "store_sizes"):
            if key in fields:
                fields[key] = tuple(sorted({int(v) for v in fields[key]}))
        s = cls(**fields)
        if not s.k_values and not s.include_all:
            raise ValueError("k_values is empty and include_all is False: nothing to learn")
        if len(s.store_sizes) < 2:
            raise ValueError("store_sizes needs at least two sizes to compare per-item times")
        if not 0 < s.item_active < s.item_bits:
            raise ValueError(f"item_active ({s.item_active}) must lie in 1..item_bits-1 "
                             f"({s.item_bits - 1})")
        return s


# ------------------------------------------------------------------------------ learners


class ConvergedBackprop(BackpropMLP):
    """Backprop (the same MLP, Adam and minibatches) trained until it has converged.

    :class:`~gardenpath.models.rules.BackpropMLP` runs a fixed number of epochs; here,
    after every epoch the cross-entropy on the whole training set is computed, and
    training stops when it is below ``loss_tol`` (or at ``max_epochs``). With k examples
    per class that is how many weight updates backprop needs to fit them.
    """

    name: ClassVar[str] = "backprop_converged"

    def __init__(self, hidden: tuple[int, ...] = (256,), lr: float = 1e-3,
                 batch_size: int = 32, loss_tol: float = 0.01, max_epochs: int = 3000,
                 num_classes: int = 10) -> None:
        super().__init__(hidden, max_epochs, lr, batch_size, num_classes)
        self.loss_tol, self.max_epochs = loss_tol, max_epochs

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        """Adam on cross-entropy until the training loss is below ``loss_tol``."""
        x, t, opt, g = self.start(X, y, seed)
        updates, epochs, loss = 0, 0, float("inf")
        with Timer() as timer:
            while epochs < self.max_epochs:
                updates += self.epoch(x, t, opt, g)
                epochs += 1
                with torch.no_grad():
                    loss = float(nn.functional.cross_entropy(self.net(x), t))
                if loss < self.loss_tol:
                    break
        return TrainReport(self.name, epochs, updates, epochs * len(x), timer.elapsed_s,
                           len(x), extra={"final_loss": loss,
                                          "converged": loss < self.loss_tol})


def fit_learner(name: str, s: Settings, x: np.ndarray, y: np.ndarray, seed: int
                ) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, Any]]:
    """Train learner ``name`` on (x, y); returns its predict function and its costs."""
    from sklearn.neighbors import KNeighborsClassifier

    n = len(x)
    if name == "sparsey":
        rule = SparseyClassifier(Q=s.sparsey_Q, K=s.sparsey_K)
        rep = rule.fit(x, y, seed=seed)
        return rule.predict, {"presentations": rep.presentations,
                              "weight_updates": rep.weight_updates, "train_time_s":
                              rep.train_time_s, "converged": True}
    if name in ("nn_pixels", "nn_code"):
        from scipy.sparse import csr_matrix

        encode = (lambda a: a) if name == "nn_pixels" else (  # sparse: ~0.2% of bits on
            lambda a: csr_matrix(SparseyClassifier(Q=1, K=1).encode(a).numpy()))
        knn = KNeighborsClassifier(n_neighbors=1, algorithm="brute")
        with Timer() as timer:
            knn.fit(encode(x), y)
        return (lambda a: knn.predict(encode(a))), {
            "presentations": n, "weight_updates": n, "train_time_s": timer.elapsed_s,
            "converged": True}
    if name == "backprop":
        bp = ConvergedBackprop(hidden=(s.bp_hidden,), lr=s.bp_lr, loss_tol=s.bp_loss_tol,
                               max_epochs=s.bp_max_epochs)
        rep = bp.fit(x, y, seed=seed)
        return bp.predict, {"presentations": rep.presentations,
                            "weight_updates": rep.weight_updates,
                            "train_time_s": rep.train_time_s,
                            "converged": bool(rep.extra["converged"]),
                            "epochs": rep.passes}
    raise ValueError(f"unknown learner {name!r}; choose from {sorted(LEARNERS)}")


def kshot(s: Settings, learners: tuple[str, ...] = tuple(LEARNERS)) -> list[dict[str, Any]]:
    """Every learner on every k and draw; one row each (k = 0 stands for the whole split).

    The split is fixed by ``seed``; draw d of k examples per class uses seed
    ``seed * 1000 + d`` (scikit-learn's test digits are the same for every row).
    """
    from gardenpath.data import k_shot, load_digits_split

    xtr, xte, ytr, yte = load_digits_split(test_fraction=s.test_fraction, seed=s.seed)
    smallest = int(np.bincount(ytr).min())
    too_big = [k for k in s.k_values if k > smallest]
    if too_big:
        raise ValueError(f"k_values {too_big} exceed the smallest class in the training "
                         f"split ({smallest} examples); use include_all for the whole split")
    ks = list(s.k_values) + ([0] if s.include_all else [])
    rows = []
    for k in ks:
        for d in range(1 if k == 0 else s.draws):
            draw_seed = s.seed * 1000 + d
            x, y = (xtr, ytr) if k == 0 else k_shot(xtr, ytr, k, seed=draw_seed)
            for name in learners:
                predict, cost = fit_learner(name, s, x, y, draw_seed)
                acc = float(np.mean(predict(xte) == yte))
                rows.append({"k": k, "per_class": len(x) / 10, "n_train": len(x), "draw": d,
                             "learner": name, "label": LEARNERS[name], "accuracy": acc,
                             **cost})
    return rows


def kshot_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (k, learner): mean, min, max accuracy over draws; mean presentations and updates."""
    out = []
    keys = list(dict.fromkeys((r["k"], r["learner"]) for r in rows))
    for k, name in keys:
        rs = [r for r in rows if r["k"] == k and r["learner"] == name]
        acc = np.array([r["accuracy"] for r in rs])
        out.append({"k": k, "k_label": "all" if k == 0 else str(k),
                    "per_class": float(np.mean([r["per_class"] for r in rs])),
                    "learner": name, "label": LEARNERS[name], "draws": len(rs),
                    "accuracy": float(acc.mean()), "accuracy_min": float(acc.min()),
                    "accuracy_max": float(acc.max()),
                    "presentations": float(np.mean([r["presentations"] for r in rs])),
                    "weight_updates": float(np.mean([r["weight_updates"] for r in rs])),
                    "all_converged": all(r["converged"] for r in rs)})
    return out


# ------------------------------------------------------------------------------ storage


def synthetic_items(start: int, count: int, bits: int, active: int, seed: int,
                    chunk: int = 4096) -> torch.Tensor:
    """Items ``start .. start+count-1`` of a seeded stream of sparse binary vectors.

    Item i has exactly ``active`` of ``bits`` positions on, chosen uniformly; it depends
    only on (seed, i // chunk) and its place in that chunk, so any range can be made
    without making the items before it. Returns (count, bits) uint8 on the CPU.
    """
    out = torch.empty(count, bits, dtype=torch.uint8)
    pos, i = 0, start
    while pos < count:
        block, offset = divmod(i, chunk)
        rng = np.random.default_rng([seed, block])
        idx = np.argpartition(rng.random((chunk, bits)), active, axis=1)[:, :active]  # (c, M)
        take = min(chunk - offset, count - pos)
        dense = np.zeros((take, bits), dtype=np.uint8)
        np.put_along_axis(dense, idx[offset:offset + take], 1, axis=1)
        out[pos:pos + take] = torch.from_numpy(dense)
        pos, i = pos + take, i + take
    return out


class ExactMemory:
    """Exact best-match memory: a preallocated table of binary items, scanned in full.

    Storing writes one row (a fixed cost). Retrieval returns the index of the stored item
    with the largest overlap with the probe (ties: the first), computed for every stored
    row from the probe's active positions: ``overlap_j = sum_{i active} table[j, i]``, N*M
    work for N items with M active bits. Indexes (inverted files, hashing) change the
    constant or trade exactness; an exact best match in the worst case still looks at
    every item.
    """

    def __init__(self, capacity: int, bits: int, device: torch.device | str = "cpu") -> None:
        self.table = torch.zeros(capacity, bits, dtype=torch.uint8, device=device)
        self.n = 0

    def store(self, items: torch.Tensor) -> None:
        """Append rows (B, bits) of 0/1."""
        b = len(items)
        self.table[self.n:self.n + b] = items.to(self.table.device, torch.uint8)
        self.n += b

    def store_at(self, slot: int, item: torch.Tensor) -> None:
        """Write one item (bits,) at ``slot`` (the same work as :meth:`store`, for timing)."""
        self.table[slot] = item

    def retrieve(self, probe: torch.Tensor) -> torch.Tensor:
        """Index (0-dim tensor) of the best-matching stored item for a probe (bits,)."""
        active = probe.nonzero().squeeze(1)  # (M,)
        overlap = self.table[:self.n].index_select(1, active).sum(1, dtype=torch.int32)  # (N,)
        return overlap.argmax()

    @property
    def state_bytes(self) -> int:
        """Bytes of stored items (grows with N)."""
        return self.n * self.table.shape[1]


def _cycle(items: list[Any]) -> Iterator[Any]:
    while True:
        yield from items


def _operation_timers(mac: Any, snapshot: torch.Tensor, mem: ExactMemory, size: int,
                      fresh: torch.Tensor, fresh_f: list[torch.Tensor],
                      probes: list[torch.Tensor], probes_f: list[torch.Tensor], spare: int,
                      dev: torch.device, min_s: float) -> dict[str, Callable[[], Any]]:
    """One zero-argument timer per operation at memory size ``size``, each a ``Timing``.

    Each timer first puts both memories in their state at ``size`` (the macrocolumn's
    weights from ``snapshot``, the table's item count), so timers of every size can be
    interleaved. Stores into the macrocolumn during timing are undone by the next load;
    the table's timed writes go to spare rows past the largest size.
    """
    from gardenpath.measure.timing import time_fn

    def load() -> None:
        mac.weights.copy_(snapshot)
        mem.n = size

    def sdr_store() -> Any:
        load()
        nxt = _cycle(fresh_f)
        return time_fn(lambda: mac.learn(next(nxt)), device=dev, min_run_time_s=min_s)

    def sdr_retrieve() -> Any:
        load()
        nxt = _cycle(probes_f)
        return time_fn(lambda: mac.infer(next(nxt)), device=dev, min_run_time_s=min_s)

    def nn_store() -> Any:
        load()
        slots = _cycle(list(range(len(fresh))))

        def write() -> None:
            j = next(slots)
            mem.store_at(spare + j, fresh[j])

        return time_fn(write, device=dev, min_run_time_s=min_s)

    def nn_retrieve() -> Any:
        load()
        nxt = _cycle(probes)
        return time_fn(lambda: mem.retrieve(next(nxt)), device=dev, min_run_time_s=min_s)

    return {"sdr_store": sdr_store, "sdr_retrieve": sdr_retrieve, "nn_store": nn_store,
            "nn_retrieve": nn_retrieve}


def best_of(timers: dict[Any, Callable[[], Any]], rounds: int) -> dict[Any, Any]:
    """Run every timer ``rounds`` times, interleaved; keep each one's lowest-median Timing.

    On a shared machine other processes only ever add time, so the lowest of several
    medians, taken at different moments, is the estimate least disturbed by them; and
    since every round visits every timer, a slow spell of the machine falls on all of
    them rather than on one memory size.
    """
    best: dict[Any, Any] = {}
    for _ in range(max(1, rounds)):
        for key, timer in timers.items():
            t = timer()
            if key not in best or t.median_s < best[key].median_s:
                best[key] = t
    return best


def storage_scaling(s: Settings, device: torch.device | str = "cpu",
                    progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Recall and per-item store and retrieve time of the SDR and the exact memory by size.

    Phase 1 stores items in order up to each size in ``store_sizes`` and, at each size,
    measures exact recall: ``recall_sample`` stored items (uniform over all stored so far)
    are retrieved; for the SDR, the fraction whose retrieved code equals the code learnt
    for them and the mean fraction of modules whose winner is right; for the exact
    memory, the fraction whose retrieved index is their own (at most 100 probes). The
    macrocolumn's weights are kept at each size.

    Phase 2 times one item's store and retrieval at every size with
    :func:`~gardenpath.measure.timing.time_fn` (adaptive repeats, ``timing_min_s``
    seconds each), in ``timing_rounds`` rounds that each visit every size and operation;
    the lowest median per (size, operation) is kept (:func:`best_of`). SDR store =
    ``learn`` of one fresh item, SDR retrieve = ``infer`` of one stored item, NN store =
    write one row, NN retrieve = scan every stored row. Timing comes after all recall
    measurements, so the recorded recall does not depend on it.
    """
    from gardenpath.models.sdr import SDRMacrocolumn

    dev = torch.device(device)
    sizes = sorted(s.store_sizes)
    pool_n = 64
    mem = ExactMemory(sizes[-1] + pool_n, s.item_bits, dev)
    mac = SDRMacrocolumn(s.item_bits, s.sdr_Q, s.sdr_K, seed=s.seed, device=dev)
    codes = torch.empty(sizes[-1], s.sdr_Q, dtype=torch.int64, device=dev)
    # fresh items for store timing: from another stream, never stored for good
    fresh = synthetic_items(0, pool_n, s.item_bits, s.item_active, s.seed + 7919).to(dev)
    fresh_f = [row.float()[None] for row in fresh]
    rng = np.random.default_rng(s.seed)
    stored, rows, chunk, timers = 0, [], 2048, {}
    for size in sizes:
        while stored < size:
            take = min(chunk, size - stored)
            items = synthetic_items(stored, take, s.item_bits, s.item_active, s.seed).to(dev)
            mem.store(items)
            codes[stored:stored + take] = mac.learn(items.float())
            stored += take
        if progress:
            progress(f"stored {stored} items")
        probe_idx = torch.as_tensor(rng.choice(size, min(s.recall_sample, size), replace=False),
                                    device=dev)
        got = torch.cat([mac.infer(mem.table[b].float())
                         for b in probe_idx.split(1024)])  # (P, Q)
        match = got == codes[probe_idx]  # (P, Q)
        nn_probe = probe_idx[:min(len(probe_idx), 100)]
        nn_ok = [int(mem.retrieve(mem.table[i])) == int(i) for i in nn_probe]
        rows.append({
            "items": size,
            "sdr_exact_recall": float(match.all(1).float().mean()),
            "sdr_module_recall": float(match.float().mean()),
            "nn_exact_recall": float(np.mean(nn_ok)),
            "sdr_weight_density": mac.weight_density(),
            "sdr_state_bytes": mac.state_bytes,
            "nn_state_bytes": size * s.item_bits // 8,
        })
        probes = [mem.table[int(i)] for i in probe_idx[:pool_n]]
        ops = _operation_timers(mac, mac.weights.clone(), mem, size, fresh, fresh_f, probes,
                                [p.float()[None] for p in probes], sizes[-1], dev,
                                s.timing_min_s)
        timers.update({(size, op): timer for op, timer in ops.items()})
    if progress:
        progress("timing")
    best = best_of(timers, s.timing_rounds)
    for row in rows:
        row["timings"] = {op: best[(row["items"], op)] for op in OPERATIONS}
    return rows


def time_ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median per-item time at the largest size over that at the smallest, per operation."""
    first, last = rows[0]["timings"], rows[-1]["timings"]
    return {op: last[op].median_s / first[op].median_s for op in OPERATIONS}


def capacity(rows: list[dict[str, Any]], floor: float) -> int | None:
    """The largest size up to which the SDR's exact recall stays at or above ``floor``."""
    best = None
    for r in rows:
        if r["sdr_exact_recall"] < floor:
            break
        best = r["items"]
    return best


# ------------------------------------------------------------------------------ verdict


def decide(summary: list[dict[str, Any]], storage: list[dict[str, Any]], s: Settings
           ) -> tuple[str, str, dict[str, Any]]:
    """The verdict on the one-shot claims, the reason, and the numbers that decide it.

    Three parts, each measured:

    * **one-shot accuracy**: at the smallest k, the single-presentation learner is within
      ``acc_tolerance`` of (or above) backprop trained to convergence on the same
      examples; its recorded number is deterministic;
    * **fixed time**: the SDR's per-item store and retrieve times at the largest size are
      at most ``fixed_time_tolerance`` times those at the smallest;
    * **capacity**: the SDR still recalls at least ``recall_floor`` of its stored items
      exactly at the largest size.

    All three hold: ``supported``; none: ``not supported``; some: ``mixed``. The fixed-time
    part rests on measured times: the ratios are kept with the measurements and only the
    pass/fail with the numbers. :func:`storage_scaling` times every size in interleaved
    rounds so that load on a shared machine does not separate them; the ratios we
    measured were within a few percent of 1, far from the tolerance, which keeps the
    pass/fail (and so the verdict) the same from run to run.
    """
    k_min = min(r["k"] for r in summary if r["k"] > 0) if any(r["k"] > 0 for r in summary) \
        else 0
    at = {r["learner"]: r for r in summary if r["k"] == k_min}
    if "sparsey" not in at or "backprop" not in at:
        raise ValueError("the verdict compares the Sparsey learner with backprop")
    sp, bp = at["sparsey"], at["backprop"]
    nn_px = at.get("nn_pixels")
    one_shot_ok = sp["accuracy"] >= bp["accuracy"] - s.acc_tolerance
    ratios = time_ratios(storage)
    fixed_ok = (ratios["sdr_store"] <= s.fixed_time_tolerance
                and ratios["sdr_retrieve"] <= s.fixed_time_tolerance)
    cap = capacity(storage, s.recall_floor)
    last = storage[-1]
    capacity_ok = last["sdr_exact_recall"] >= s.recall_floor
    held = [one_shot_ok, fixed_ok, capacity_ok]
    verdict = "supported" if all(held) else "not supported" if not any(held) else "mixed"
    numbers = {
        "k_min": k_min,
        "sparsey_acc_kmin": sp["accuracy"], "backprop_acc_kmin": bp["accuracy"],
        "nn_pixels_acc_kmin": nn_px["accuracy"] if nn_px else None,
        "nn_code_acc_kmin": at["nn_code"]["accuracy"] if "nn_code" in at else None,
        "one_shot_text": "holds" if one_shot_ok else "does not hold",
        "fixed_time_text": "holds" if fixed_ok else "does not hold",
        "capacity_text": "holds" if capacity_ok else "does not hold",
        "sparsey_updates_kmin": sp["weight_updates"],
        "backprop_updates_kmin": bp["weight_updates"],
        "backprop_presentations_kmin": bp["presentations"],
        "one_shot_holds": one_shot_ok, "fixed_time_holds": fixed_ok,
        "capacity_holds": capacity_ok,
        "capacity_items": cap if cap is not None else 0,
        "largest_items": last["items"], "smallest_items": storage[0]["items"],
        "sdr_exact_recall_largest": last["sdr_exact_recall"],
        "sdr_exact_recall_smallest": storage[0]["sdr_exact_recall"],
        "sdr_weight_density_largest": last["sdr_weight_density"],
        "nn_exact_recall_largest": last["nn_exact_recall"],
        "sdr_module_recall_largest": last["sdr_module_recall"],
        "recall_floor_pct": 100 * s.recall_floor,
        "acc_tolerance_pct": 100 * s.acc_tolerance,
        "fixed_time_tolerance": s.fixed_time_tolerance,
    }
    numbers["capacity_phrase"] = (
        f"up to {cap:,} items" if cap is not None else
        "at none of the sizes measured")
    cap_text = (f"exact recall stays at or above {s.recall_floor:.0%} up to {cap:,} items"
                if cap is not None else
                f"exact recall is below {s.recall_floor:.0%} already at {storage[0]['items']:,}")
    why = (f"with {k_min} example(s) per class the single-presentation learner reaches "
           f"{sp['accuracy']:.3f} vs {bp['accuracy']:.3f} for backprop trained to "
           f"convergence ({bp['weight_updates']:.0f} weight updates); the SDR's per-item "
           f"store and retrieve time {'stays' if fixed_ok else 'does not stay'} within "
           f"{s.fixed_time_tolerance:g}x from {storage[0]['items']:,} to {last['items']:,} "
           f"items; {cap_text}, and it is "
           f"{last['sdr_exact_recall']:.2f} at {last['items']:,}")
    return verdict, why, numbers


# ------------------------------------------------------------------------------ report


def storage_numbers(storage: list[dict[str, Any]]) -> dict[str, Any]:
    """Deterministic numbers of the storage experiment (recall, density), by flat name."""
    out: dict[str, Any] = {}
    for r in storage:
        n = r["items"]
        out[f"sdr_exact_recall_{n}"] = r["sdr_exact_recall"]
        out[f"sdr_module_recall_{n}"] = r["sdr_module_recall"]
        out[f"nn_exact_recall_{n}"] = r["nn_exact_recall"]
        out[f"sdr_weight_density_{n}"] = r["sdr_weight_density"]
    out["sdr_state_mb"] = storage[-1]["sdr_state_bytes"] / 1e6
    out["nn_state_mb_largest"] = storage[-1]["nn_state_bytes"] / 1e6
    return out


def kshot_numbers(summary: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, presentations and updates per (learner, k) by flat name (k 0 is 'all')."""
    out: dict[str, Any] = {}
    for r in summary:
        tag = f"{r['learner']}_k{r['k_label']}"
        out[f"acc_{tag}"] = r["accuracy"]
        out[f"updates_{tag}"] = r["weight_updates"]
        out[f"presentations_{tag}"] = r["presentations"]
    alls = [r for r in summary if r["k"] == 0]
    if alls:
        out["all_per_class"] = alls[0]["per_class"]
    # the largest k (the whole split when it was learnt), so the prose works for any k list
    top = max(r["per_class"] for r in summary)
    for r in summary:
        if r["per_class"] == top:
            out[f"acc_{r['learner']}_kmax"] = r["accuracy"]
            out[f"updates_{r['learner']}_kmax"] = r["weight_updates"]
            out[f"presentations_{r['learner']}_kmax"] = r["presentations"]
            out["kmax_label"] = (f"all {r['per_class']:.0f} training examples per class"
                                 if r["k"] == 0 else f"{r['k']} examples per class")
    converged = all(r["all_converged"] for r in summary if r["learner"] == "backprop")
    out["backprop_all_converged"] = converged
    out["backprop_converged_text"] = (
        "reached the loss tolerance in every run" if converged else
        "stopped at the epoch cap before reaching the loss tolerance in some runs "
        "(marked in the table)")
    return out


def storage_measurements(storage: list[dict[str, Any]]) -> dict[str, Any]:
    """Machine readings: per-item times (µs) at each size and the largest/smallest ratios."""
    out: dict[str, Any] = {}
    for r in storage:
        for op, t in r["timings"].items():
            out[f"{op}_us_{r['items']}"] = 1e6 * t.median_s
            out[f"{op}_iqr_us_{r['items']}"] = 1e6 * t.iqr_s
    for op, ratio in time_ratios(storage).items():
        out[f"{op}_ratio"] = ratio
    first, last = storage[0]["timings"], storage[-1]["timings"]
    for op in OPERATIONS:
        out[f"{op}_us_smallest"] = 1e6 * first[op].median_s
        out[f"{op}_us_largest"] = 1e6 * last[op].median_s
    return out


def kshot_chart(summary: list[dict[str, Any]]) -> Any:
    """Test accuracy against examples per class (log axis), one line per learner."""
    import altair as alt
    import pandas as pd

    df = pd.DataFrame([{"per class": r["per_class"], "k": r["k_label"], "learner": r["label"],
                        "accuracy": r["accuracy"], "lo": r["accuracy_min"],
                        "hi": r["accuracy_max"]} for r in summary])
    x = alt.X("per class:Q", scale=alt.Scale(type="log"),
              title="training examples per class (log axis; the last point is the whole split)")
    color = alt.Color("learner:N", sort=list(LEARNERS.values()), title="learner",
                      legend=alt.Legend(labelLimit=320, orient="bottom", columns=2))
    base = alt.Chart(df)
    band = base.mark_area(opacity=0.15).encode(x=x, y="lo:Q", y2="hi:Q", color=color)
    line = base.mark_line(point=True).encode(
        x=x, y=alt.Y("accuracy:Q", title="test accuracy (digits)", scale=alt.Scale(zero=False)),
        color=color, tooltip=["learner", "k", alt.Tooltip("accuracy:Q", format=".3f")])
    return (line + band).properties(title="Accuracy from k examples per class")


def updates_chart(summary: list[dict[str, Any]]) -> Any:
    """Presentations and weight updates against examples per class (log-log)."""
    import altair as alt
    import pandas as pd

    rows = []
    for r in summary:
        if r["learner"] not in ("sparsey", "backprop"):
            continue
        rows += [{"per class": r["per_class"], "learner": r["label"], "count": v, "what": w}
                 for w, v in (("examples shown", r["presentations"]),
                              ("weight updates", r["weight_updates"]))]
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("per class:Q", scale=alt.Scale(type="log"),
                title="training examples per class (log axis)"),
        y=alt.Y("count:Q", scale=alt.Scale(type="log"), title="count (log axis)"),
        color=alt.Color("learner:N", title="learner", legend=alt.Legend(labelLimit=320,
                                                                        orient="bottom")),
        strokeDash=alt.StrokeDash("what:N", title="count of"),
        tooltip=["learner", "what", alt.Tooltip("count:Q", format=",.0f")],
    ).properties(title="What learning k examples per class takes")


def timing_chart(storage: list[dict[str, Any]], device: str) -> Any:
    """Per-item time against items stored, log-log, with bars from the 25th to the 75th
    percentile of the repeats (positive, so they can be drawn on a log axis)."""
    import altair as alt
    import pandas as pd

    rows = []
    for r in storage:
        for op, t in r["timings"].items():
            q25, q75 = np.percentile(t.raw_s, [25, 75]) if len(t.raw_s) else (0, 0)
            rows.append({"items": r["items"], "operation": OPERATIONS[op],
                         "method": "SDR" if op.startswith("sdr") else "exact NN",
                         "us": 1e6 * t.median_s, "lo": 1e6 * q25, "hi": 1e6 * q75})
    df = pd.DataFrame(rows)
    x = alt.X("items:Q", scale=alt.Scale(type="log"), title="items stored (log axis)")
    color = alt.Color("operation:N", sort=list(OPERATIONS.values()), title="operation",
                      legend=alt.Legend(labelLimit=200))
    base = alt.Chart(df)
    line = base.mark_line(point=True).encode(
        x=x, y=alt.Y("us:Q", scale=alt.Scale(type="log"),
                     title=f"time per item, µs (measured, {device}; log axis)"),
        color=color, tooltip=["operation", "items", alt.Tooltip("us:Q", format=".1f")])
    bars = base.mark_rule().encode(x=x, y="lo:Q", y2="hi:Q", color=color)
    return (line + bars).properties(title="Time to store or retrieve one item")


def recall_chart(storage: list[dict[str, Any]], floor: float) -> Any:
    """Exact recall of stored items against items stored (log axis)."""
    import altair as alt
    import pandas as pd

    rows = []
    for r in storage:
        rows += [{"items": r["items"], "measure": m, "value": r[k]}
                 for m, k in (("SDR: whole code exact", "sdr_exact_recall"),
                              ("SDR: modules right", "sdr_module_recall"),
                              ("SDR: weight density", "sdr_weight_density"),
                              ("exact NN: item found", "nn_exact_recall"))]
    df = pd.DataFrame(rows)
    line = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("items:Q", scale=alt.Scale(type="log"), title="items stored (log axis)"),
        y=alt.Y("value:Q", title="fraction", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("measure:N", title="", legend=alt.Legend(labelLimit=240)),
        tooltip=["measure", "items", alt.Tooltip("value:Q", format=".3f")])
    rule = alt.Chart(pd.DataFrame({"floor": [floor]})).mark_rule(strokeDash=[4, 4]).encode(
        y="floor:Q")
    return (line + rule).properties(title="Recall of stored items as the memory fills")


def kshot_table(summary: list[dict[str, Any]]) -> Any:
    """k-shot accuracy, presentations and weight updates (a pandas Styler)."""
    import pandas as pd

    df = pd.DataFrame([{
        "per class": r["k_label"] if r["k"] else f"all ({r['per_class']:.0f})",
        "learner": r["label"], "test accuracy": r["accuracy"],
        "min-max over draws": f"{r['accuracy_min']:.3f}-{r['accuracy_max']:.3f}",
        "examples shown": r["presentations"], "weight updates": r["weight_updates"],
        "converged": "" if r["learner"] != "backprop" else (
            "yes" if r["all_converged"] else "not every draw"),
    } for r in summary])
    return df.style.hide(axis="index").format({"test accuracy": "{:.3f}",
                                               "examples shown": "{:,.0f}",
                                               "weight updates": "{:,.0f}"})


def storage_table(storage: list[dict[str, Any]]) -> Any:
    """Per size: per-item times (µs) and recall (a pandas Styler)."""
    import pandas as pd

    rows = []
    for r in storage:
        row = {"items stored": r["items"]}
        for op, label in OPERATIONS.items():
            row[f"{label} µs"] = 1e6 * r["timings"][op].median_s
        row["SDR exact recall"] = r["sdr_exact_recall"]
        row["SDR modules right"] = r["sdr_module_recall"]
        row["SDR weight density"] = r["sdr_weight_density"]
        row["exact NN recall"] = r["nn_exact_recall"]
        rows.append(row)
    fmt = {f"{label} µs": "{:,.1f}" for label in OPERATIONS.values()}
    fmt.update({"items stored": "{:,}", "SDR exact recall": "{:.3f}",
                "SDR modules right": "{:.3f}", "SDR weight density": "{:.3f}",
                "exact NN recall": "{:.3f}"})
    return pd.DataFrame(rows).style.hide(axis="index").format(fmt)


def anchor_table(summary: list[dict[str, Any]]) -> Any:
    """Published few-shot errors beside ours (on the digits), one row each."""
    import pandas as pd

    rows = [{"source": a["source"], "learner": a["learner"], "data set": a["dataset"],
             "task": a["task"], "test error %": a["error_pct"]} for a in ANCHORS]
    for r in summary:
        if r["k"] == min(x["k"] for x in summary if x["k"] > 0) or r["k"] == 0:
            task = ("10-way, 1 example per class" if r["k"] == 1 else
                    f"10-way, {r['k_label']} examples per class" if r["k"] else
                    f"10-way, all {r['per_class']:.0f} per class")
            rows.append({"source": "this chapter", "learner": r["label"],
                         "data set": "sklearn digits (8x8)", "task": task,
                         "test error %": 100 * (1 - r["accuracy"])})
    return pd.DataFrame(rows).style.hide(axis="index").format({"test error %": "{:.1f}"})


# ------------------------------------------------------------------------------ memory


def memory_estimate(params: dict[str, Any]) -> int:
    """Bytes the chapter needs at most.

    The Sparsey classifier's float32 weights (36 x 511 patch inputs x Q x K), the SDR's
    weights once per memory size plus the working copy, the exact memory's uint8 table
    (largest size x bits), the learnt codes (int64), a chunk of items as float32, and
    300 MB for the interpreter, torch and the data.
    """
    q, k = int(params.get("sparsey_Q", 48)), int(params.get("sparsey_K", 256))
    bits = int(params.get("item_bits", 1024))
    sq, sk = int(params.get("sdr_Q", 24)), int(params.get("sdr_K", 64))
    n = max(params.get("store_sizes", [100000]) or [0])
    sparsey = 2 * 36 * 511 * q * k * 4
    sdr = (len(params.get("store_sizes", [0] * 4)) + 1) * bits * sq * sk * 4
    table = (n + 64) * bits + n * sq * 8 + 2048 * bits * 4
    return int(sparsey + sdr + table + 300e6)

