"""measure.hierarchy: access counts per dataflow against hand-computed cases, and shares."""

from __future__ import annotations

import pytest

from gardenpath.measure.hierarchy import (
    HOROWITZ,
    SZE,
    Accesses,
    conv_accesses,
    elementwise_accesses,
)

# 1 channel in and out, 3x3 kernel on a 4x4 input, batch 1: a 2x2 output (row width E = 2).
# MACs per pass 4 positions x 9 taps = 36; |W| = 9, |X| = 16, |Y| = 4 words.
SMALL = dict(macs_per_pass=36, weight_words=9, in_words=16, out_words=4, kernel_side=3,
             out_width=2)


def test_register_file_and_dram_counts_do_not_depend_on_the_dataflow():
    for flow in ("weight_stationary", "output_stationary", "row_stationary"):
        a = conv_accesses(flow, **SMALL)
        assert a.macs == 3 * 36
        assert a.rf == 4 * 36 * 3 == 432  # 2 operand reads + partial sum read and write
        assert a.dram == (9 + 16 + 4) * 3 == 87  # each pass: every tensor once


def test_buffer_counts_by_hand():
    # weight-stationary: per pass 36 inputs + 72 partial-sum reads/writes + 9 weight fills
    assert conv_accesses("weight_stationary", **SMALL).buffer == 3 * (3 * 36 + 9) == 351
    # output-stationary: per pass 36 weights + 36 inputs, plus the pass's output written once:
    # forward Y (4), weight gradient dW (9), input gradient dX (16)
    assert conv_accesses("output_stationary", **SMALL).buffer == 3 * 72 + 4 + 9 + 16 == 245
    # row-stationary: 36 (1/E + 3/k) = 36 (1/2 + 1) = 54 per pass
    assert conv_accesses("row_stationary", **SMALL).buffer == pytest.approx(3 * 54)
    with pytest.raises(ValueError):
        conv_accesses("input_stationary", **SMALL)


def test_first_layer_has_no_input_gradient_pass():
    a = conv_accesses("row_stationary", **SMALL, input_grad=False)
    assert a.macs == 2 * 36 and a.dram == 2 * 29


def test_elementwise_counts():
    a = elementwise_accesses(elements=10, ops_per_element=18, tensors=5)
    assert (a.macs, a.ops, a.rf, a.buffer, a.dram) == (0, 180, 540, 50, 50)


def test_shares_by_hand_with_horowitz_costs():
    a = Accesses(macs=10, rf=40, buffer=10, dram=1)
    e = a.energy(HOROWITZ)
    assert e == pytest.approx({"arithmetic": 46.0, "rf": 40.0, "buffer": 50.0, "dram": 640.0})
    low, high = a.share_range(HOROWITZ)
    assert low == pytest.approx(640 / 686)
    assert high == pytest.approx(730 / 776)
    assert low < high
    # an element-wise op costs half a MAC
    assert Accesses(ops=2).energy(SZE)["arithmetic"] == pytest.approx(1.0)


def test_sum_and_scaling():
    a = Accesses(macs=1, rf=4, dram=2)
    assert a + a == a.times(2) == Accesses(macs=2, rf=8, dram=4)


def test_absolute_joules_only_from_an_absolute_table():
    assert HOROWITZ.joules(640) == pytest.approx(640e-12)
    with pytest.raises(ValueError):
        SZE.joules(1)
