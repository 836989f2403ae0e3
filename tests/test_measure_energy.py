"""measure.energy: the Horowitz table, the model, and windows over mocked NVML and RAPL."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from gardenpath.measure import energy as me
from gardenpath.measure.energy import (
    HOROWITZ_45NM_PJ,
    MODEL_METHOD,
    SZE_2017_NORMALISED,
    EnergyMonitor,
    model_energy,
)

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_tables_hold_the_published_numbers_and_sources():
    t = HOROWITZ_45NM_PJ
    assert (t["int_add_8b"], t["int_add_32b"], t["int_mult_8b"], t["int_mult_32b"]) == (
        0.03, 0.1, 0.2, 3.1)
    assert (t["fp_add_16b"], t["fp_add_32b"], t["fp_mult_16b"], t["fp_mult_32b"]) == (
        0.4, 0.9, 1.1, 3.7)
    assert (t["register_file_32b"], t["sram_32b"], t["dram_32b"]) == (1.0, 5.0, 640.0)
    assert t["sram_read_64b_8kb"] == 10.0
    assert "Horowitz" in t["source"] and "ISSCC 2014" in t["source"] and "Han" in t["source"]
    s = SZE_2017_NORMALISED
    assert (s["register_file"], s["pe"], s["buffer"], s["dram"]) == (1.0, 2.0, 6.0, 200.0)
    assert "Sze" in s["source"]


def test_model_energy_formula():
    # one MAC (2 FLOPs) fp32 = add + mult; one 32-bit DRAM word; one 32-bit SRAM word
    e = model_energy(flops=2, dram_bytes=4, sram_bytes=4)
    assert e.energy_j == pytest.approx((0.9 + 3.7 + 640 + 5) * 1e-12)
    assert e.breakdown_j["dram"] == pytest.approx(640e-12)
    assert e.method == MODEL_METHOD and e.counter is None and not e.measured
    half = model_energy(flops=2e9, dram_bytes=0, dtype_bits=16)
    assert half.energy_j == pytest.approx(1e9 * (0.4 + 1.1) * 1e-12)
    with pytest.raises(ValueError):
        model_energy(1, 1, dtype_bits=64)


def test_data_movement_dominates_in_the_model():
    # 1 FLOP per byte from DRAM: 2.3 pJ of arithmetic against 160 pJ of movement
    e = model_energy(flops=1e6, dram_bytes=1e6)
    assert e.breakdown_j["dram"] / e.breakdown_j["arithmetic"] == pytest.approx(160 / 2.3)


class FakeNvml(types.ModuleType):
    """Stands in for pynvml: a settable total-energy counter in millijoules."""

    def __init__(self, supported: bool = True):
        super().__init__("pynvml")
        self.energy_mj = 0
        self.supported = supported
        self.handles: list[int] = []

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        self.handles.append(index)
        return ("handle", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return self.energy_mj


@pytest.fixture
def no_rapl(tmp_path):
    return str(tmp_path / "no-powercap")


def test_nvml_window_returns_the_counter_difference(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    mon = EnergyMonitor(torch.device("cuda", 0))
    assert mon.method == "measured: NVML"
    fake.energy_mj = 1_000
    mon.begin_window("step")
    fake.energy_mj = 3_500
    e = mon.end_window("step", flops=10, bytes_moved=20)
    assert e.energy_j == pytest.approx(2.5)
    assert e.measured and e.method == "measured: NVML"
    assert "nvmlDeviceGetTotalEnergyConsumption" in e.counter
    assert e.breakdown_j is None and (e.flops, e.bytes_moved) == (10, 20)
    assert e.time_s >= 0


def test_nvml_index_follows_cuda_visible_devices(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    mon = EnergyMonitor("cuda:1")
    assert fake.handles == [5]
    assert "gpu 5" in mon.counter


def test_unsupported_or_missing_nvml_falls_back_to_the_model(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(supported=False))
    mon = EnergyMonitor("cuda:0")
    assert mon.method == MODEL_METHOD
    mon.begin_window("w")
    e = mon.end_window("w", flops=2_000, bytes_moved=4_000)
    assert e.method == MODEL_METHOD
    assert e.energy_j == pytest.approx(model_energy(2_000, 4_000).energy_j)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert EnergyMonitor("cuda:0").method == MODEL_METHOD


def write_rapl(root, domain, energy_uj, max_uj=1_000_000_000):
    d = root / domain
    d.mkdir(parents=True, exist_ok=True)
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_window_sums_packages_and_handles_wraparound(tmp_path):
    write_rapl(tmp_path, "intel-rapl:0", 999_000_000)
    write_rapl(tmp_path, "intel-rapl:1", 10_000_000)
    write_rapl(tmp_path, "intel-rapl:0:0", 5)  # core subdomain: part of package 0
    (tmp_path / "intel-rapl").mkdir()  # the control-type directory itself
    mon = EnergyMonitor("cpu", rapl_root=str(tmp_path))
    assert mon.method == "measured: RAPL"
    mon.begin_window("w")
    write_rapl(tmp_path, "intel-rapl:0", 500_000)  # wrapped past 1e9
    write_rapl(tmp_path, "intel-rapl:1", 12_000_000)
    write_rapl(tmp_path, "intel-rapl:0:0", 900_000_000)
    e = mon.end_window("w")
    assert e.energy_j == pytest.approx(1.5 + 2.0)
    assert "intel-rapl:0/energy_uj" in e.counter and "intel-rapl:0:0" not in e.counter


def test_unreadable_rapl_is_not_used(tmp_path):
    write_rapl(tmp_path, "intel-rapl:0", 1)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("not a number")
    assert EnergyMonitor("cpu", rapl_root=str(tmp_path)).method == MODEL_METHOD


def test_no_counter_models_or_says_it_cannot(no_rapl):
    mon = EnergyMonitor("cpu", rapl_root=no_rapl)
    assert mon.method == MODEL_METHOD and mon.counter is None
    mon.begin_window("a")
    e = mon.end_window("a", flops=1e9, bytes_moved=1e8)
    assert e.method == MODEL_METHOD and not e.measured
    assert e.energy_j == pytest.approx(1e9 * 2.3e-12 + 1e8 * 160e-12)
    assert e.power_w is None or e.power_w > 0
    mon.begin_window("b")
    nothing = mon.end_window("b")
    assert nothing.energy_j is None and nothing.method.startswith("unavailable")


def test_window_misuse(no_rapl):
    mon = EnergyMonitor("cpu", rapl_root=no_rapl)
    mon.begin_window("x")
    with pytest.raises(ValueError, match="already open"):
        mon.begin_window("x")
    with pytest.raises(ValueError, match="no open window"):
        mon.end_window("y")
    mon.end_window("x", flops=1)
    with pytest.raises(ValueError):
        mon.end_window("x")


def test_this_machine_chooses_a_labelled_method():
    mon = EnergyMonitor("cpu")
    expected = "measured: RAPL" if me.RaplReader().available else MODEL_METHOD
    assert mon.method == expected


@pytest.mark.gpu
@requires_cuda
def test_real_nvml_measures_a_gpu_window():
    pytest.importorskip("pynvml")
    mon = EnergyMonitor("cuda")
    if mon.method != "measured: NVML":
        pytest.skip("this GPU has no NVML total-energy counter")
    a = torch.randn(8192, 8192, device="cuda")
    mon.begin_window("mm")
    for _ in range(50):
        a @ a
    e = mon.end_window("mm")
    assert e.energy_j > 0 and e.time_s > 0
    assert 1 < e.power_w < 2000
