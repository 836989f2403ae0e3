"""Baselines the learning chapters set beside the Sparsey-style learner and memory.

* :class:`ConvergedBackprop`: the backprop MLP trained until its training loss is below a
  tolerance (how many updates backprop needs to fit k examples per class);
* :class:`NearestNeighbour`: one-neighbour classification (Euclidean), on any features;
* :class:`EmbeddingNet`: a small convolutional net trained with backprop on some classes,
  whose penultimate layer is an embedding for new classes (the few-shot protocol Lake et
  al. 2017 compare with: learn a representation on other classes, then classify new ones
  by their nearest labelled example in it);
* :class:`ExactMemory`: exact best-match search over a table of binary items;
* :class:`BinaryHNSW`: an approximate nearest-neighbour index over the same items (FAISS's
  ``IndexBinaryHNSW``, Hamming distance);
* :func:`synthetic_items`: the seeded stream of sparse binary items both memories store.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from gardenpath.models.rules import BackpropMLP, TrainReport
from gardenpath.models.rules.base import Timer, as_tensor


class ConvergedBackprop(BackpropMLP):
    """Backprop (the same MLP, Adam and minibatches) trained until it has converged.

    After every epoch the cross-entropy on the whole training set is computed, and
    training stops when it is below ``loss_tol`` (or at ``max_epochs``).
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


class NearestNeighbour:
    """One-neighbour classifier: the label of the closest stored example (Euclidean)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> NearestNeighbour:
        self.x, self.y = as_tensor(X), np.asarray(y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        d = torch.cdist(as_tensor(X), self.x)  # (n, m)
        return self.y[d.argmin(1).numpy()]


class ConvEmbedding(nn.Module):
    """Two 5x5 conv layers (ReLU, 2x2 max-pool) and a dense layer: a 28x28 image -> R^dim."""

    def __init__(self, side: int, channels: int = 16, dim: int = 64) -> None:
        super().__init__()
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * (side // 4) ** 2, dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.view(-1, 1, self.side, self.side))


class EmbeddingNet:
    """A convolutional net trained by backprop on base classes; its embedding serves new ones.

    ``fit`` trains :class:`ConvEmbedding` plus a linear classifier over the base classes
    (Adam, cross-entropy, ``num_epochs`` passes); ``embed`` returns the L2-normalised
    penultimate features, in which :class:`NearestNeighbour` classifies new classes from k
    examples each, with no further training.
    """

    def __init__(self, channels: int = 16, dim: int = 64, num_epochs: int = 10,
                 lr: float = 1e-3, batch_size: int = 64) -> None:
        self.channels, self.dim, self.num_epochs = channels, dim, num_epochs
        self.lr, self.batch_size = lr, batch_size

    def fit(self, X: np.ndarray, y: np.ndarray, *, seed: int = 0) -> TrainReport:
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        x = as_tensor(X)
        classes = np.unique(y)
        t = torch.as_tensor(np.searchsorted(classes, y), dtype=torch.int64)
        side = int(round(x.shape[1] ** 0.5))
        self.body = ConvEmbedding(side, self.channels, self.dim)
        head = nn.Linear(self.dim, len(classes))
        opt = torch.optim.Adam([*self.body.parameters(), *head.parameters()], lr=self.lr)
        updates = 0
        with Timer() as timer:
            for _ in range(self.num_epochs):
                for idx in torch.randperm(len(x), generator=g).split(self.batch_size):
                    opt.zero_grad()
                    nn.functional.cross_entropy(head(self.body(x[idx])), t[idx]).backward()
                    opt.step()
                    updates += 1
        return TrainReport("embedding_net", self.num_epochs, updates,
                           self.num_epochs * len(x), timer.elapsed_s, len(x))

    @torch.no_grad()
    def embed(self, X: np.ndarray) -> np.ndarray:
        f = torch.cat([self.body(b) for b in as_tensor(X).split(512)])
        return nn.functional.normalize(f, dim=1).numpy()


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
    work for N items with M active bits.
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
        """Bytes of stored items as bits (grows with N)."""
        return self.n * self.table.shape[1] // 8


class BinaryHNSW:
    """Approximate best match: FAISS's HNSW graph over bit-packed items, Hamming distance.

    For items with the same number of active bits, the smallest Hamming distance is the
    largest overlap, so it answers the question :class:`ExactMemory` answers, by walking a
    graph of ``links`` neighbours per item (search breadth ``ef_search``) instead of
    scanning every row: time that grows about with log N, and recall below 1.
    """

    def __init__(self, bits: int, links: int = 16, ef_construction: int = 40,
                 ef_search: int = 64) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.IndexBinaryHNSW(bits, links)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search

    @staticmethod
    def pack(items: torch.Tensor) -> np.ndarray:
        """(B, bits) 0/1 -> (B, bits/8) uint8."""
        return np.packbits(items.cpu().numpy().astype(np.uint8), axis=1)

    def store(self, items: torch.Tensor) -> None:
        """Add rows (B, bits) of 0/1 to the graph."""
        self.index.add(self.pack(items))

    def retrieve(self, probe: torch.Tensor) -> int:
        """Index of the (approximately) best-matching stored item for a probe (bits,)."""
        _, idx = self.index.search(self.pack(probe[None]), 1)
        return int(idx[0, 0])
