"""A sparse distributed code (SDR) macrocolumn in the manner of Sparsey.

Rinkus, "A cortical sparse distributed coding model linking mini- and
macrocolumn-scale functionality", Frontiers in Neuroanatomy 2010; Rinkus,
"Sparsey: event recognition via deep hierarchical sparse distributed codes",
Frontiers in Computational Neuroscience 2014. This is our reading of the code
selection algorithm (CSA) as its author's group implements it (see
``shared/ANCHORS.md``), not their code.

A macrocolumn has Q competitive modules (CMs) of K binary units; a code is one
active unit per CM, written as Q winner indices in 0..K-1. Binary weights
``W`` (N inputs x Q*K units) start at 0. For a binary input ``x`` with ``|x|``
active bits, the CSA is::

    V_u   = (x . W[:, u]) / |x|                      normalised support, in [0, 1]
    G     = (1/Q) sum_q max_{u in CM q} V_u          familiarity, in [0, 1]
    eta   = max(0, chi (G - G_min) / (1 - G_min))    how much V is allowed to matter
    psi_u = eta / (1 + exp(-lambda V_u + phi)) + eps
    rho_u = psi_u / sum_{u' in CM q} psi_u'          per-CM choice distribution

Learning draws one winner per CM from ``rho`` and sets ``W[i, u] = 1`` for every
active input i and winner u — a single presentation stores the item. A novel
input (G below G_min) gets a uniformly random code, so unrelated items get
codes that overlap only by chance (1/K per CM); a familiar one (G near 1) gets
a code biased to the units that already respond to it, so similar inputs share
units. Retrieval takes the unit with the largest V in each CM (no noise).

Cost: learning one item and retrieving the best match for one item each take
one (N x Q*K) matrix-vector product plus O(Q*K) work, whatever the number of
items stored: the memory is the fixed-size matrix ``W``, not a list of items.
That is the fixed-time claim; the price is finite capacity, because weights
saturate as units join more codes and a wrong unit can reach V = 1.

Capacity (measured with the defaults below and seeded random items; checked
in ``tests/test_sdr.py``): with N = 512 inputs, M = 25 active (5%), Q = 24,
K = 16, every one of 100 stored items is retrieved exactly (weight density
0.21); of 150, 89% exactly (99.5% of CM winners right, density 0.28); of 200,
58% (97.8%); of 300, 4% (86%). So the capacity at these sizes is about 100
items. Weights saturate as units join more codes: after S items a unit has
joined about S/K codes, and once its density d is high a foreign unit can
cover all M active bits of an item (V = 1) and tie or beat the stored winner.
Load also raises G for unrelated inputs (a random input finds some unit with
high V in most CMs: G ~ 0.75 at 100 items), so codes crowd onto busy units:
unrelated items' codes then overlap ~17% on average (chance: 1/K = 6%).
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


class SDRMacrocolumn:
    """Q competitive modules of K binary units with binary afferent weights.

    Args:
        input_size: number of binary inputs N.
        Q: competitive modules (code size: one winner per module).
        K: units per module.
        lam, phi: slope and offset of the V-to-choice sigmoid (demo values 28, 5).
        chi, g_min: familiarity-to-eta map (demo values 2.5, 0.2).
        floor: tiny probability floor eps, so every unit stays choosable.
        threshold: an input value above it counts as active.
        seed: seeds the winner draws in learning.
    """

    def __init__(self, input_size: int, Q: int, K: int, *, lam: float = 28.0, phi: float = 5.0,
                 chi: float = 2.5, g_min: float = 0.2, floor: float = 1e-6,
                 threshold: float = 0.5, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        self.input_size, self.Q, self.K = int(input_size), int(Q), int(K)
        self.lam, self.phi, self.chi, self.g_min = lam, phi, chi, g_min
        self.floor, self.threshold = floor, threshold
        self.device = torch.device(device or "cpu")
        # binary weights stored as 0./1. float32 so the support is one matmul
        self.weights = torch.zeros(self.input_size, self.Q * self.K, device=self.device)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.items_learned = 0
        self.last_familiarity: torch.Tensor | None = None

    # ------------------------------------------------------------------ the CSA steps

    def _binary(self, x: ArrayLike) -> torch.Tensor:
        """(B, N) or (N,) input -> (B, N) float 0/1 tensor on this device."""
        t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        t = t.to(self.device).reshape(-1, self.input_size)  # (B, N)
        return (t > self.threshold).float()

    def support(self, xb: torch.Tensor) -> torch.Tensor:
        """Normalised support V (B, Q, K) of binary inputs ``xb`` (B, N)."""
        active = xb.sum(1).clamp_min(1.0)  # (B,)
        if xb.shape[1] > 1024 and float(active.mean()) < 0.05 * xb.shape[1]:
            # sparse input: summing the active inputs' rows costs O(M*Q*K), not O(N*Q*K)
            v = torch.sparse.mm(xb.to_sparse(), self.weights)  # (B, Q*K)
        else:
            v = xb @ self.weights  # (B, Q*K)
        v = v / active[:, None]  # (B, Q*K)
        return v.view(-1, self.Q, self.K)  # (B, Q, K)

    @staticmethod
    def familiarity(v: torch.Tensor) -> torch.Tensor:
        """G (B,): mean over CMs of the largest V in each CM."""
        return v.amax(-1).mean(-1)

    def choice_probabilities(self, v: torch.Tensor) -> torch.Tensor:
        """rho (B, Q, K): per-CM choice distribution from V and familiarity G."""
        g = self.familiarity(v)  # (B,)
        eta = (self.chi * (g - self.g_min) / (1.0 - self.g_min)).clamp_min(0.0)  # (B,)
        psi = eta[:, None, None] * torch.sigmoid(self.lam * v - self.phi) + self.floor
        return psi / psi.sum(-1, keepdim=True)  # (B, Q, K)

    # ------------------------------------------------------------------ public API

    def learn(self, x: ArrayLike) -> torch.Tensor:
        """Store each row of ``x`` in one presentation, in order; returns codes (B, Q) int64.

        Items are processed one after another because each stored item changes
        the weights the next one is matched against.
        """
        xb = self._binary(x)
        codes = torch.empty(len(xb), self.Q, dtype=torch.int64, device=self.device)
        fam = torch.empty(len(xb), device=self.device)
        offsets = torch.arange(self.Q, device=self.device) * self.K  # (Q,)
        for i in range(len(xb)):
            v = self.support(xb[i:i + 1])  # (1, Q, K)
            fam[i] = self.familiarity(v)[0]
            rho = self.choice_probabilities(v)[0]  # (Q, K)
            win = torch.multinomial(rho, 1, generator=self.generator).squeeze(1)  # (Q,)
            active = xb[i].nonzero().squeeze(1)  # (M,)
            self.weights[active[:, None], (offsets + win)[None, :]] = 1.0
            codes[i] = win
        self.items_learned += len(xb)
        self.last_familiarity = fam
        return codes

    def infer(self, x: ArrayLike) -> torch.Tensor:
        """Best-match retrieval: the largest-V unit in each CM; codes (B, Q) int64.

        Does not change the weights.
        """
        v = self.support(self._binary(x))  # (B, Q, K)
        self.last_familiarity = self.familiarity(v)
        return v.argmax(-1)

    def units(self, codes: torch.Tensor) -> torch.Tensor:
        """Flat unit indices q*K + winner (B, Q) of codes (B, Q)."""
        return codes + torch.arange(self.Q, device=codes.device) * self.K

    def weight_density(self) -> float:
        """Fraction of weights set to 1 (saturation: capacity falls as it grows)."""
        return float(self.weights.mean())

    @property
    def state_bytes(self) -> int:
        """Bytes of learned state if stored as bits (N*Q*K/8); fixed for the model's life."""
        return self.input_size * self.Q * self.K // 8


def code_overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Fraction of CMs in which codes ``a`` and ``b`` (..., Q) have the same winner."""
    return (a == b).float().mean(-1)
