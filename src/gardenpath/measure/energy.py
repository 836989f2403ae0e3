"""Energy: measured where the hardware has a counter, modelled from published costs otherwise.

The essay says moving data, not arithmetic, dominates a computer's energy. We measure
energy wherever a counter exists and label every result with how it was obtained:

* NVIDIA GPUs (Volta and newer): NVML's total-energy counter
  (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the driver loaded), read
  through ``nvidia-ml-py`` (``pynvml``), after synchronising the GPU so the window
  covers the work queued inside it;
* CPUs with readable RAPL (``/sys/class/powercap/intel-rapl:N/energy_uj``; AMD Zen
  exposes the same interface): package energy in microjoules, with wrap-around
  handled via ``max_energy_range_uj``;
* otherwise, modelled: counted FLOPs and bytes times Horowitz's 45 nm costs
  (:data:`HOROWITZ_45NM_PJ`), labelled ``"modelled: Horowitz 45nm"``.

The API follows zeus's measurement windows: :meth:`EnergyMonitor.begin_window` and
:meth:`EnergyMonitor.end_window` by name, returning an :class:`Energy` whose fields
carry their units.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch

#: Energy per operation or access in picojoules, 45 nm, 0.9 V. One table, one source.
#: Keys ``*_8b`` etc. give operand width; memory rows are per access of the stated width.
HOROWITZ_45NM_PJ: dict[str, Any] = {
    "source": (
        "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
        "ISSCC 2014, 45 nm. The 32-bit register file, SRAM and DRAM rows are as "
        "tabulated by Han, Pool, Tran, Dally, 'Learning both weights and connections "
        "for efficient neural networks', NeurIPS 2015, Fig. 1."
    ),
    "int_add_8b": 0.03,
    "int_add_32b": 0.1,
    "int_mult_8b": 0.2,
    "int_mult_32b": 3.1,
    "fp_add_16b": 0.4,
    "fp_add_32b": 0.9,
    "fp_mult_16b": 1.1,
    "fp_mult_32b": 3.7,
    "register_file_32b": 1.0,
    "sram_read_64b_8kb": 10.0,
    "sram_32b": 5.0,
    "dram_64b_low": 1300.0,
    "dram_64b_high": 2600.0,
    "dram_32b": 640.0,
}

#: Sze et al. 2017 energy per access normalised to one MAC (65 nm, from Eyeriss).
SZE_2017_NORMALISED: dict[str, Any] = {
    "source": (
        "V. Sze, Y.-H. Chen, T.-J. Yang, J. Emer, 'Efficient Processing of Deep Neural "
        "Networks: A Tutorial and Survey', Proc. IEEE 2017 (from Chen et al., Eyeriss, "
        "ISCA 2016), 65 nm; energy per access relative to one MAC"
    ),
    "mac": 1.0,
    "register_file": 1.0,
    "pe": 2.0,
    "buffer": 6.0,
    "dram": 200.0,
}

MODEL_METHOD = "modelled: Horowitz 45nm"
NVML_METHOD = "measured: NVML"
RAPL_METHOD = "measured: RAPL"
PJ = 1e-12


@dataclass
class Energy:
    """Energy of one window.

    Attributes:
        energy_j: joules, or ``None`` when there was neither a counter nor counts to model.
        time_s: wall time of the window, seconds.
        method: ``"measured: NVML"``, ``"measured: RAPL"`` or ``"modelled: Horowitz 45nm"``
            (or ``"unavailable: ..."``).
        counter: the counter read (e.g. ``"nvmlDeviceGetTotalEnergyConsumption[gpu 0]"``,
            RAPL domain paths), ``None`` when modelled.
        breakdown_j: modelled joules per component (arithmetic, SRAM, DRAM); ``None``
            for measurements.
        flops: FLOPs given to the window, if any.
        bytes_moved: DRAM bytes given to the window, if any.
    """

    energy_j: float | None
    time_s: float
    method: str
    counter: str | None = None
    breakdown_j: dict[str, float] | None = None
    flops: int | None = None
    bytes_moved: int | None = None

    @property
    def power_w(self) -> float | None:
        """Mean power over the window, watts."""
        if self.energy_j is None or self.time_s <= 0:
            return None
        return self.energy_j / self.time_s

    @property
    def measured(self) -> bool:
        """Whether the energy came from a hardware counter."""
        return self.method.startswith("measured")


def _arith_keys(dtype_bits: int) -> tuple[str, str]:
    if dtype_bits == 32:
        return "fp_add_32b", "fp_mult_32b"
    if dtype_bits == 16:
        return "fp_add_16b", "fp_mult_16b"
    if dtype_bits == 8:
        return "int_add_8b", "int_mult_8b"
    raise ValueError("dtype_bits must be 32 (fp32), 16 (fp16) or 8 (int8)")


def model_energy(
    flops: float,
    dram_bytes: float,
    sram_bytes: float = 0,
    dtype_bits: int = 32,
    time_s: float = 0.0,
) -> Energy:
    """Energy of ``flops`` and the given memory traffic, from Horowitz's 45 nm costs.

    Formulas (energies in pJ from :data:`HOROWITZ_45NM_PJ`):

    * arithmetic: ``flops / 2 * (mult + add)`` — a FLOP pair is one multiply-accumulate;
      fp32 gives 2.3 pJ/FLOP, fp16 0.75, int8 0.115;
    * DRAM: ``dram_bytes / 4 * 640`` pJ (160 pJ/byte, 32-bit accesses);
    * SRAM: ``sram_bytes / 4 * 5`` pJ (1.25 pJ/byte, 32-bit reads).

    Args:
        flops: floating-point (or integer, for 8 bits) operations, 2 per MAC.
        dram_bytes: bytes moved to or from main memory.
        sram_bytes: bytes moved to or from on-chip SRAM.
        dtype_bits: operand width selecting the arithmetic rows (32, 16 float; 8 int).
        time_s: the window's wall time to store alongside, seconds.

    Returns:
        An :class:`Energy` with ``method="modelled: Horowitz 45nm"`` and its breakdown.
    """
    add, mult = _arith_keys(dtype_bits)
    table = HOROWITZ_45NM_PJ
    parts = {
        "arithmetic": flops / 2 * (table[add] + table[mult]) * PJ,
        "sram": sram_bytes / 4 * table["sram_32b"] * PJ,
        "dram": dram_bytes / 4 * table["dram_32b"] * PJ,
    }
    return Energy(
        energy_j=sum(parts.values()),
        time_s=time_s,
        method=MODEL_METHOD,
        counter=None,
        breakdown_j=parts,
        flops=int(flops),
        bytes_moved=int(dram_bytes),
    )


class RaplReader:
    """Package energy from Linux powercap RAPL, in joules, handling counter wrap-around.

    Only top-level package domains (``intel-rapl:N``) are summed; their subdomains
    (``intel-rapl:N:M``: cores, uncore, DRAM) are parts of, or beside, the package and
    would double count.
    """

    def __init__(self, root: str = "/sys/class/powercap") -> None:
        self.domains = sorted(
            d
            for d in glob.glob(os.path.join(root, "intel-rapl:*"))
            if os.path.basename(d).count(":") == 1 and d.rsplit(":", 1)[-1].isdigit()
        )
        self.ranges_uj = [self._read_int(d, "max_energy_range_uj") for d in self.domains]

    @staticmethod
    def _read_int(domain: str, name: str) -> int | None:
        try:
            with open(os.path.join(domain, name)) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            return None

    @property
    def available(self) -> bool:
        """Whether at least one package domain's ``energy_uj`` is readable."""
        return bool(self.domains) and all(
            self._read_int(d, "energy_uj") is not None for d in self.domains
        )

    def read_uj(self) -> list[int]:
        """Each domain's raw ``energy_uj`` counter."""
        return [self._read_int(d, "energy_uj") or 0 for d in self.domains]

    def delta_j(self, start_uj: list[int], end_uj: list[int]) -> float:
        """Joules between two readings; a counter that went down wrapped once."""
        total = 0
        for a, b, rng in zip(start_uj, end_uj, self.ranges_uj, strict=True):
            diff = b - a
            if diff < 0:
                diff += rng if rng else 2**32
            total += diff
        return total / 1e6

    @property
    def counter(self) -> str:
        """The energy files read."""
        return ",".join(os.path.join(d, "energy_uj") for d in self.domains)


def _nvml_index(torch_index: int) -> int:
    """NVML device index of a torch CUDA index, honouring integer CUDA_VISIBLE_DEVICES."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible:
        ids = [v.strip() for v in visible.split(",")]
        if all(v.isdigit() for v in ids) and torch_index < len(ids):
            return int(ids[torch_index])
    return torch_index


@dataclass
class _Window:
    t0: float
    start: Any
    extra: dict[str, Any] = field(default_factory=dict)


class EnergyMonitor:
    """Named measurement windows returning :class:`Energy`, measured or modelled.

    The counter is chosen once, at construction: NVML for a CUDA device when
    ``pynvml`` imports and the device supports the total-energy counter; RAPL for the
    CPU when its files are readable; else the Horowitz model, which needs the window's
    ``flops`` and ``bytes_moved``. ``method`` says which.

    Example::

        mon = EnergyMonitor("cpu")
        mon.begin_window("step")
        step()
        e = mon.end_window("step", flops=count.total, bytes_moved=traffic.total_bytes)
    """

    def __init__(
        self, device: torch.device | str | None = None, rapl_root: str = "/sys/class/powercap"
    ) -> None:
        """Pick the counter for ``device`` (``None``: CUDA if available, else CPU)."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self._windows: dict[str, _Window] = {}
        self._nvml: Any = None
        self._handle: Any = None
        self._rapl: RaplReader | None = None
        self.counter: str | None = None
        self.method = MODEL_METHOD
        if self.device.type == "cuda":
            self._init_nvml()
        else:
            rapl = RaplReader(rapl_root)
            if rapl.available:
                self._rapl = rapl
                self.method, self.counter = RAPL_METHOD, rapl.counter

    def _init_nvml(self) -> None:
        try:
            import pynvml
        except ImportError:
            return
        index = self.device.index if self.device.index is not None else 0
        try:
            pynvml.nvmlInit()
            nvml_index = _nvml_index(index)
            handle = pynvml.nvmlDeviceGetHandleByIndex(nvml_index)
            pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # raises if unsupported
        except Exception:  # NVMLError_NotSupported, no driver, ...: fall back to the model
            return
        self._nvml, self._handle = pynvml, handle
        self.method = NVML_METHOD
        self.counter = f"nvmlDeviceGetTotalEnergyConsumption[gpu {nvml_index}]"

    def _sync(self) -> None:
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.synchronize(self.device)

    def _read(self) -> Any:
        if self._nvml is not None:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))  # mJ
        if self._rapl is not None:
            return self._rapl.read_uj()
        return None

    def begin_window(self, name: str) -> None:
        """Open window ``name``: synchronise the GPU, then read the counter and clock."""
        if name in self._windows:
            raise ValueError(f"window {name!r} is already open")
        self._sync()
        self._windows[name] = _Window(t0=time.perf_counter(), start=self._read())

    def end_window(
        self,
        name: str,
        flops: int | None = None,
        bytes_moved: int | None = None,
        sram_bytes: int = 0,
        dtype_bits: int = 32,
    ) -> Energy:
        """Close window ``name`` and return its energy.

        Args:
            name: the name given to :meth:`begin_window`.
            flops: FLOPs done in the window (used by the model; stored either way).
            bytes_moved: DRAM bytes moved in the window (model; stored either way).
            sram_bytes: on-chip bytes moved (model only).
            dtype_bits: operand width for the model's arithmetic costs.

        Returns:
            Measured energy (counter difference) when a counter exists; else the
            Horowitz model of ``flops`` and ``bytes_moved``; else ``energy_j=None``.
        """
        try:
            window = self._windows.pop(name)
        except KeyError:
            raise ValueError(f"no open window named {name!r}") from None
        self._sync()
        end = self._read()
        elapsed = time.perf_counter() - window.t0
        if self._nvml is not None:
            energy = (end - window.start) / 1e3
        elif self._rapl is not None:
            energy = self._rapl.delta_j(window.start, end)
        elif flops is None and bytes_moved is None:
            return Energy(
                energy_j=None,
                time_s=elapsed,
                method="unavailable: no energy counter and no FLOPs or bytes to model",
            )
        else:
            e = model_energy(flops or 0, bytes_moved or 0, sram_bytes, dtype_bits, elapsed)
            e.flops, e.bytes_moved = flops, bytes_moved
            return e
        return Energy(
            energy_j=energy,
            time_s=elapsed,
            method=self.method,
            counter=self.counter,
            flops=flops,
            bytes_moved=bytes_moved,
        )
