"""Chapter 1, "Where the energy goes": its smoke run's results and the module's arithmetic."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch
import yaml

from gardenpath.chapters import energy as ch
from gardenpath.measure.energy import MODEL_METHOD, Energy
from gardenpath.params import notebook_parameters
from gardenpath.results import VERDICTS

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


# ----------------------------------------------------------------------------- the smoke run


def test_smoke_results_record_numbers_and_a_verdict(smoke_tree):
    from conftest import smoke_results

    data = smoke_results(smoke_tree, "energy")
    assert data["verdict"] in VERDICTS
    nums, meas = data["numbers"], data["measurements"]
    # published ratios computed from the table, not typed
    assert nums["horowitz_dram_over_fp_mult"] == pytest.approx(640 / 3.7)
    assert nums["sze_dram"] == 200
    assert nums["brain_communication_over_computation"] == pytest.approx(35)
    assert nums["step_flops"] > 0 and nums["step_bytes"] > 0
    assert nums["layers_total"] == 40  # 20 convolutions, each followed by a batch norm
    # the verdict follows from the recorded tests by the chapter's rule
    tests = meas["tests"]
    assert tests["per_operand"] == (meas["operand_ratio"] >= ch.OPERAND_RATIO_THRESHOLD)
    assert tests["per_step_time"] == (
        meas["memory_bound_time_share"] >= ch.MEMORY_BOUND_TIME_SHARE_THRESHOLD)
    expected, _ = ch.verdict(meas["operand_ratio"], meas["step_movement_share"],
                             meas["memory_bound_time_share"])
    assert data["verdict"] == expected
    assert data["why"].endswith(f"Verdict: {data['verdict']}.")
    # machine readings are kept apart from the numbers
    assert meas["peak_gflops_per_s"] > 0 and meas["main_memory_gb_per_s"] > 0
    assert "ridge_flop_per_byte" not in nums
    method = meas["energy"]["method"]
    if not torch.cuda.is_available() and method == MODEL_METHOD:
        assert meas["operand_ratio"] == pytest.approx(nums["model_operand_ratio"])


def test_smoke_page_has_the_four_figures(smoke_tree):
    figs = smoke_tree / ".gardenpath" / "out" / "smoke" / "energy_files"
    names = {p.name for p in figs.glob("*.svg")}
    assert {"energy-bandwidth.svg", "energy-roofline.svg", "energy-ladder.svg",
            "energy-step.svg"} <= names


# ----------------------------------------------------------------------------- units


def test_published_ratios_come_from_the_tables():
    pub = ch.published_numbers()
    assert pub["horowitz_dram_over_fp_mult"] == pytest.approx(172.97, abs=0.01)
    assert pub["horowitz_dram_over_fp32_mac"] == pytest.approx(640 / 4.6)
    assert pub["horowitz_dram_pj_per_byte"] == 160
    assert pub["horowitz_pj_per_flop"] == pytest.approx(2.3)
    assert pub["brain_communication_over_computation"] == pytest.approx(35.0)


def test_modelled_energy_per_byte_and_flop():
    e = ch.modelled_op_energy()
    assert not e.measured
    assert e.pj_per_byte == pytest.approx(160.0)
    assert e.pj_per_flop == pytest.approx(2.3)
    # one 32-bit operand from DRAM against one fp32 FLOP: 640 / 2.3
    assert e.operand_ratio == pytest.approx(640 / 2.3)


class FakeMonitor:
    """A 'measured' counter whose power is fixed per window name (W)."""

    method = "measured: NVML"
    counter = "fake counter"

    def __init__(self, watts: dict[str, float]):
        self.watts, self.open = watts, {}

    def begin_window(self, name: str) -> None:
        self.open[name] = time.perf_counter()

    def end_window(self, name: str, **_) -> Energy:
        t = time.perf_counter() - self.open.pop(name)
        return Energy(energy_j=self.watts[name] * t, time_s=t, method=self.method)


def test_measured_energy_subtracts_idle_power():
    mon = FakeMonitor({"idle": 50.0, "copy": 150.0, "matmul": 250.0})
    e = ch.measure_op_energy(torch.device("cpu"), 1 << 20, 64, 0.05, monitor=mon)
    assert e.measured and e.counter == "fake counter"
    assert e.idle_w == pytest.approx(50.0)
    assert e.copy_w == pytest.approx(150.0)
    assert e.matmul_w == pytest.approx(250.0)
    # total / above-idle = P / (P - P_idle), whatever the window lengths were
    assert e.total_pj_per_byte / e.pj_per_byte == pytest.approx(150 / 100)
    assert e.total_pj_per_flop / e.pj_per_flop == pytest.approx(250 / 200)
    assert "50 W idle" in ch.energy_note(e)


def test_without_a_counter_the_energy_is_modelled():
    class NoCounter:
        method = MODEL_METHOD

    e = ch.measure_op_energy(torch.device("cpu"), 1 << 20, 64, 0.05, monitor=NoCounter())
    assert e.method == MODEL_METHOD
    assert "modelled" in ch.energy_note(e)


def test_resnet18_ops_match_the_published_macs():
    ops = ch.resnet18_ops(224, 1)
    convs = [op for op in ops if op.kind == "conv"]
    assert sum(op.count for op in convs) == 20
    assert sum(op.count for op in ops if op.kind == "bn_relu") == 20
    # forward MACs: the first layer's step is forward + weight gradient (2 passes), the
    # others add the input gradient (3 passes); ANCHORS: 1.81 G MACs per image
    fwd_macs = sum(op.count * op.flops / (2 if op.first else 3) / 2 for op in convs)
    assert fwd_macs == pytest.approx(1.814e9, rel=2e-3)
    bn = next(op for op in ops if op.kind == "bn_relu")
    assert bn.intensity == pytest.approx(ch.BN_RELU_FLOPS_PER_ELEMENT / 20)


def test_step_energy_by_hand():
    op = ch.Op("x", "conv", "layer1", 2, flops=1000, bytes=100, in_shape=(1, 1, 4, 4),
               out_channels=1, kernel_size=3, stride=1, padding=1)
    e = ch.step_energy([op], ch.modelled_op_energy())
    assert e["arithmetic_j"] == pytest.approx(2 * 1000 * 2.3e-12)
    assert e["movement_j"] == pytest.approx(2 * 100 * 160e-12)
    assert e["movement_share"] == pytest.approx(32000 / (32000 + 4600))


@pytest.mark.parametrize("ratio,share,time_share,expected", [
    (278.0, 0.9, 0.6, "supported"),
    (278.0, 0.4, 0.6, "mixed"),
    (278.0, 0.4, 0.1, "mixed"),
    (5.0, 0.9, 0.9, "not supported"),
])
def test_verdict_rule(ratio, share, time_share, expected):
    assert ch.verdict(ratio, share, time_share)[0] == expected


def test_largest_set_level():
    caches = [{"level": "L1", "size_bytes": 32 << 10}, {"level": "L3", "size_bytes": 32 << 20}]
    assert ch.largest_set_level([16, 262144], caches) == "main memory"
    assert ch.largest_set_level([16, 16384], caches) == "L3 cache"
    assert ch.largest_set_level([16], []) == "main memory"


def test_parse_cache_size():
    assert ch._parse_size("32K") == 32768
    assert ch._parse_size("32M") == 32 << 20
    assert ch._parse_size("512") == 512


def test_memory_estimate_covers_the_largest_array():
    cpu = yaml.safe_load((REPO / "params" / "cpu.yaml").read_text())["energy"]
    assert ch.memory_estimate(cpu) >= 2 * max(cpu["working_sets_kib"]) * 1024
    bigger = dict(cpu, matmul_n=16384)
    assert ch.memory_estimate(bigger) >= 2 * 3 * 16384**2 * 4


def test_notebook_defaults_equal_the_cpu_profile():
    declared = notebook_parameters(REPO / "notebooks" / "energy.py")
    cpu = yaml.safe_load((REPO / "params" / "cpu.yaml").read_text())["energy"]
    for name, value in cpu.items():
        assert declared[name].default == value, name
    assert declared["device"].constraint.startswith("choices")
    assert not math.isnan(ch.OPERAND_RATIO_THRESHOLD)


def test_above_roof_note_counts_layers_past_the_roof():
    import pandas as pd

    assert ch.above_roof_note(pd.DataFrame({"fraction_of_roof": [0.5, 0.9]})) == ""
    note = ch.above_roof_note(pd.DataFrame({"fraction_of_roof": [0.5, 1.2, 1.1]}))
    assert note.startswith("2 of the distinct layers")
