"""Energy of a layer's word accesses through a memory hierarchy: register file, on-chip
buffer and DRAM, with per-access costs from published tables.

Why: counting only DRAM bytes (each tensor read or written once) leaves out the on-chip
movement every multiply-accumulate (MAC) needs, so it is a lower bound on movement's share
of the energy. This module counts accesses at three levels for a named *dataflow* (which
operand stays in the register file, after Chen et al.'s Eyeriss taxonomy as surveyed by Sze
et al. 2017) and prices them with a :class:`CostTable`. It is a model: it says what the
published tables imply for the counted accesses, nothing about a particular chip.

Counts per convolution pass of ``M`` MACs (forward, input gradient and weight gradient are
each a convolution of the same size, counted alike):

* register file (RF): every MAC reads its two operands and reads and writes its partial
  sum there: ``4 M`` accesses, whatever the dataflow;
* buffer (on-chip SRAM) <-> RF, words per MAC, with ``k`` the kernel side and ``E`` the
  output row's width:

  - ``weight_stationary``: a weight enters the RF once per pass; each MAC streams its input
    (1) and reads and writes its partial sum (2): ``3 M + |W|``;
  - ``output_stationary``: a partial sum stays in the RF until done and is written once;
    each MAC streams a weight and an input (2): ``2 M + |out|``;
  - ``row_stationary``: a PE keeps a filter row, a sliding input window and a row of
    partial sums: a weight is fetched once per output row (``1 / E``), an input once per
    ``k`` uses (``1 / k``), a partial sum read and written once per ``k`` MACs
    (``2 / k``): ``M (1/E + 3/k)``;

  no reuse between processing elements (multicast, neighbour forwarding) is counted, so
  the buffer count is the high end of what such an array needs;
* DRAM: the fewest words (every tensor of a pass read or written once: an ideal buffer).

Element-wise layers (batch norm, ReLU) have no reuse: every arithmetic op reads two words
and writes one in the RF, and each tensor element crosses the buffer and DRAM once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from gardenpath.measure.energy import HOROWITZ_45NM_PJ, PJ, SZE_2017_NORMALISED

Dataflow = Literal["weight_stationary", "output_stationary", "row_stationary"]
DATAFLOWS: tuple[str, ...] = ("weight_stationary", "output_stationary", "row_stationary")
LEVELS: tuple[str, ...] = ("rf", "buffer", "dram")
#: Register-file accesses per MAC: read weight, read input, read and write the partial sum.
RF_PER_MAC = 4
#: Register-file accesses per element-wise op: two reads, one write.
RF_PER_OP = 3


@dataclass(frozen=True)
class CostTable:
    """Energy of one MAC and of one word access at each level, in ``unit``.

    Attributes:
        name: short label for charts and prose.
        mac: one multiply-accumulate (an element-wise op costs half of it).
        rf, buffer, dram: one word read or written at that level.
        unit: ``"pJ"`` (absolute) or ``"MAC"`` (normalised to one MAC).
        source: the publication the numbers come from.
    """

    name: str
    mac: float
    rf: float
    buffer: float
    dram: float
    unit: str
    source: str

    def joules(self, value: float) -> float:
        """``value`` in this table's unit as joules (absolute tables only)."""
        if self.unit != "pJ":
            raise ValueError(f"{self.name} is normalised to one MAC, not absolute")
        return value * PJ


#: Horowitz 2014, 45 nm, 32-bit words; RF, SRAM and DRAM rows as tabulated by Han et al. 2015.
HOROWITZ = CostTable(
    "Horowitz 45 nm", mac=HOROWITZ_45NM_PJ["fp_mult_32b"] + HOROWITZ_45NM_PJ["fp_add_32b"],
    rf=HOROWITZ_45NM_PJ["register_file_32b"], buffer=HOROWITZ_45NM_PJ["sram_32b"],
    dram=HOROWITZ_45NM_PJ["dram_32b"], unit="pJ", source=HOROWITZ_45NM_PJ["source"])
#: Sze et al. 2017 (Eyeriss, 65 nm, 16-bit words), normalised to one MAC.
SZE = CostTable(
    "Sze et al. 65 nm", mac=SZE_2017_NORMALISED["mac"], rf=SZE_2017_NORMALISED["register_file"],
    buffer=SZE_2017_NORMALISED["buffer"], dram=SZE_2017_NORMALISED["dram"], unit="MAC",
    source=SZE_2017_NORMALISED["source"])
COST_TABLES: dict[str, CostTable] = {"horowitz": HOROWITZ, "sze": SZE}


@dataclass(frozen=True)
class Accesses:
    """Arithmetic and word accesses of some work: MACs, element-wise ops, words per level."""

    macs: float = 0.0
    ops: float = 0.0
    rf: float = 0.0
    buffer: float = 0.0
    dram: float = 0.0

    def __add__(self, other: Accesses) -> Accesses:
        return Accesses(*(getattr(self, f.name) + getattr(other, f.name)
                          for f in fields(self)))

    def times(self, k: float) -> Accesses:
        """The same work done ``k`` times."""
        return Accesses(*(getattr(self, f.name) * k for f in fields(self)))

    def energy(self, costs: CostTable) -> dict[str, float]:
        """Energy by part (``arithmetic``, ``rf``, ``buffer``, ``dram``) in ``costs.unit``."""
        return {"arithmetic": self.macs * costs.mac + self.ops * costs.mac / 2,
                "rf": self.rf * costs.rf, "buffer": self.buffer * costs.buffer,
                "dram": self.dram * costs.dram}

    def movement_share(self, costs: CostTable, levels: tuple[str, ...] = LEVELS) -> float:
        """Share of the energy spent moving words at ``levels`` (arithmetic + those levels)."""
        e = self.energy(costs)
        move = sum(e[level] for level in levels)
        return move / (move + e["arithmetic"])

    def share_range(self, costs: CostTable) -> tuple[float, float]:
        """Movement's share counting DRAM only (the low end) and the whole hierarchy."""
        return self.movement_share(costs, ("dram",)), self.movement_share(costs)


def buffer_words(dataflow: str, macs: float, kernel_side: int, out_width: int,
                 weight_words: float, out_words: float) -> float:
    """Words between buffer and register file for one pass (see the module docstring)."""
    if dataflow == "weight_stationary":
        return 3 * macs + weight_words
    if dataflow == "output_stationary":
        return 2 * macs + out_words
    if dataflow == "row_stationary":
        return macs * (1 / max(out_width, 1) + 3 / max(kernel_side, 1))
    raise ValueError(f"dataflow must be one of {DATAFLOWS}, not {dataflow!r}")


def conv_accesses(dataflow: str, macs_per_pass: float, weight_words: float,
                  in_words: float, out_words: float, kernel_side: int, out_width: int,
                  input_grad: bool = True) -> Accesses:
    """One convolution layer's training step: forward, (input gradient,) weight gradient.

    Each pass reads two of (input, weights, output) and writes the third once from DRAM.
    The stationary operand of each pass: the weights or their gradient
    (``weight_stationary``); the pass's output: ``Y``, ``dX``, ``dW``
    (``output_stationary``).
    """
    passes = [("forward", out_words), ("weight_grad", weight_words)]
    if input_grad:
        passes.append(("input_grad", in_words))
    dram_per_pass = weight_words + in_words + out_words
    total = Accesses()
    for _, produced in passes:
        total = total + Accesses(
            macs=macs_per_pass, rf=RF_PER_MAC * macs_per_pass,
            buffer=buffer_words(dataflow, macs_per_pass, kernel_side, out_width,
                                weight_words, produced),
            dram=dram_per_pass)
    return total


def elementwise_accesses(elements: float, ops_per_element: float,
                         tensors: float) -> Accesses:
    """Element-wise work: ``ops_per_element`` ops per element, ``tensors`` tensors of
    ``elements`` words each crossing the buffer and DRAM once."""
    ops = elements * ops_per_element
    words = elements * tensors
    return Accesses(ops=ops, rf=RF_PER_OP * ops, buffer=words, dram=words)
