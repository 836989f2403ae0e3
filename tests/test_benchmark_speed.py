"""The local benchmark's machine-speed probes: a shape timed while the machine ran slow
gets its floor scaled by how slow, term by term, against the best the run saw; a probe
faster than the start and end ceilings raises the bandwidth every floor is built on; a
shape timed while the machine ran slow is timed again at the end of the run, and the
attempt kept is chosen by the probes, not by the contenders' times."""

from typing import Any

import pytest

from benchmarks import local
from benchmarks.local import _retimed_text, machine_speed, raise_to_probes, retime_slow
from gardenpath.measure.roofline import BandwidthPoint, Roofline

WS = 1 << 20


def _roof(copy_bytes_per_s: float) -> Roofline:
    point = BandwidthPoint(WS, copy_bytes_per_s, 1.0, int(copy_bytes_per_s), "copy", 0.0)
    return Roofline(peak_flops_per_s=1.0, peak_bytes_per_s=copy_bytes_per_s, device="cpu",
                    dtype="float32", bandwidth=[point])


def _row(mm_s: float, copy_s: float, compute_s: float, memory_s: float) -> dict:
    return {"floor": {"compute_s": compute_s, "memory_s": memory_s,
                      "bandwidth_working_set_bytes": WS},
            "probes": {"matmul": {"timing": {"median_s": mm_s}, "amount": 2.0},
                       "copy": {"timing": {"median_s": copy_s}, "amount": 10.0}}}


def test_a_slow_round_scales_each_term_of_the_floor_by_its_own_probe() -> None:
    roof = _roof(8.0)
    fast, slow_mm, slow_copy = (_row(1.0, 1.0, 1.0, 0.5), _row(2.0, 1.0, 1.0, 0.5),
                                _row(1.0, 4.0, 1.0, 0.5))
    machine_speed([fast, slow_mm, slow_copy], roof)
    assert fast["speed"] == {"matmul": 1.0, "copy": 1.0}
    assert fast["floor_then_s"] == 1.0
    assert slow_mm["speed"]["matmul"] == 0.5 and slow_mm["floor_then_s"] == 2.0
    # copy at a quarter of the best (10 B/s, above the ceiling's 8): memory term 0.5 -> 2
    assert slow_copy["speed"]["copy"] == 0.25 and slow_copy["floor_then_s"] == 2.0


def test_the_ceilings_count_as_the_best_copy_when_every_probe_was_slower() -> None:
    roof = _roof(20.0)
    row = _row(1.0, 1.0, 0.1, 1.0)
    machine_speed([row], roof)
    assert row["speed"]["copy"] == 0.5 and row["floor_then_s"] == 2.0


def test_rows_without_probes_keep_the_plain_floor() -> None:
    roof = _roof(8.0)
    row = {"floor": {"compute_s": 1.0, "memory_s": 0.5, "bandwidth_working_set_bytes": WS}}
    machine_speed([row], roof)
    assert "floor_then_s" not in row and "speed" not in row


def test_a_probe_faster_than_the_ceilings_raises_that_working_set_only() -> None:
    other = BandwidthPoint(4 * WS, 6.0, 1.0, 6, "copy", 0.0)
    roof = _roof(8.0)
    roof.bandwidth.append(other)
    slow, fast = _row(1.0, 2.0, 1.0, 0.5), _row(1.0, 0.5, 1.0, 0.5)  # copy 5 and 20 B/s
    slow["label"], fast["label"] = "slow", "fast"
    raised = raise_to_probes(roof, [slow, fast])
    assert raised == [{"working_set_bytes": WS, "ceilings_bytes_per_s": 8.0,
                       "bytes_per_s": 20.0, "shape": "fast"}]
    assert roof.bandwidth[0].bytes_per_s == 20.0 and roof.bandwidth[1] == other
    assert roof.peak_bytes_per_s == 6.0  # the largest working set's, untouched
    machine_speed([slow, fast], roof)  # the speeds then count against the raised point
    assert fast["speed"]["copy"] == 1.0 and slow["speed"]["copy"] == 0.25


def test_probes_slower_than_the_ceilings_leave_them() -> None:
    roof = _roof(30.0)
    row = _row(1.0, 1.0, 1.0, 0.5)
    row["label"] = "any"
    assert raise_to_probes(roof, [row]) == []
    assert roof.bandwidth[0].bytes_per_s == 30.0 and roof.peak_bytes_per_s == 30.0


def _attempt(copy_s: float, ours_s: float) -> dict[str, Any]:
    row = _row(1.0, copy_s, 1.0, 0.5)
    row["label"] = "shape"
    row["contenders"] = {"ours": {"timing": {"median_s": ours_s}}}
    return row


def _shapes(*tries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any, list[int]]:
    """Each shape's first attempt, a ``run_again`` handing out its further ones in order,
    and the list of the shapes it was called for."""
    calls: list[int] = []

    def run_again(i: int) -> dict[str, Any]:
        calls.append(i)
        return tries[i][calls.count(i)]
    return [t[0] for t in tries], run_again, calls


RETIME = {"below": local.RETIME_BELOW, "max_more": local.RETIME_MAX, "when": "end of run"}


def test_a_shape_at_full_speed_is_timed_once() -> None:
    first, run_again, calls = _shapes([_attempt(1.0, 5.0), _attempt(1.0, 1.0)])
    rows = retime_slow(first, run_again, _roof(8.0))  # copy 10 B/s, above the ceiling's 8
    assert calls == [] and rows == first and "attempts" not in rows[0]


def test_a_slow_attempt_is_timed_again_and_the_probes_choose_which_is_kept() -> None:
    # attempt 1: copy at 10 of the ceiling's 40 B/s, yet ours looks fastest there (1 s)
    slow, fast = _attempt(1.0, 1.0), _attempt(0.25, 3.0)
    first, run_again, calls = _shapes([slow, fast])
    [row] = retime_slow(first, run_again, _roof(40.0))
    assert calls == [0] and row is fast
    assert [(a["kept"], a["ours_s"]) for a in row["attempts"]] == [(False, 1.0), (True, 3.0)]
    assert row["attempts"][0]["speed"]["copy"] == 0.25
    text = _retimed_text([row], RETIME)
    assert text and "shape: ours 1 s at matmul 1.00, copy 0.25; 3 s at matmul 1.00, " \
        "copy 1.00 (kept)" in text[0]
    assert "at the end of the run" in text[0]
    # results from before the end-of-run passes keep the wording of their rule
    old = _retimed_text([row], {"below": 0.8, "max_more": 2})[0]
    assert "the best the run had seen by then" in old and "end of the run" not in old


def test_a_shape_timed_early_is_judged_by_the_best_of_the_whole_run() -> None:
    # the first shape's copy (10 B/s) beat the ceiling's 8 when it ran; a later shape's
    # copy ran at 20 B/s, so the first was timed at half the machine's speed
    early, later = _attempt(1.0, 1.0), _attempt(0.5, 1.0)
    first, run_again, calls = _shapes([early, _attempt(0.5, 1.0)], [later])
    rows = retime_slow(first, run_again, _roof(8.0))
    assert calls == [0] and rows[0]["attempts"][1]["kept"] and rows[1] is later
    # the ceiling alone: 10 of 50 B/s, and no attempt gets faster
    first, run_again, calls = _shapes([_attempt(1.0, 1.0) for _ in range(1 + local.RETIME_MAX)])
    retime_slow(first, run_again, _roof(50.0))
    assert calls == [0] * local.RETIME_MAX


def test_ceilings_measured_during_a_pass_judge_the_next_pass_and_the_kept_attempt() -> None:
    # shape 0's copy ran at 10 B/s, the best before the passes; the ceilings measured before
    # shape 1's second attempt found 20 B/s, so shape 0 ran at half speed after all
    def tries() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ([_attempt(1.0, 1.0), _attempt(0.5, 1.0)],
                [_attempt(2.0, 1.0), _attempt(1.0, 1.0), _attempt(0.5, 1.0)])
    a, b = tries()
    first, again, calls = _shapes(a, b)
    measured = [_roof(8.0)]

    def run_again(i: int) -> dict[str, Any]:
        measured.append(_roof(20.0))
        return again(i)
    rows = retime_slow(first, run_again, lambda: measured[-1])
    assert calls == [1, 0, 1] and rows[0] is a[1] and rows[1] is b[2]
    assert rows[0]["attempts"][0]["speed"]["copy"] == 0.5
    # a fixed roof judges by the ceilings from before the passes alone
    first, again, calls = _shapes(*tries())
    retime_slow(first, again, _roof(8.0))
    assert calls == [1]


def test_each_pass_times_again_only_the_shapes_still_slow() -> None:
    # shape 0 is at full speed on its second attempt, shape 1 only on its third
    a = [_attempt(2.0, 1.0), _attempt(1.0, 1.0)]
    b = [_attempt(2.0, 1.0), _attempt(2.0, 1.0), _attempt(1.0, 1.0)]
    first, run_again, calls = _shapes(a, b)
    rows = retime_slow(first, run_again, _roof(10.0))
    assert calls == [0, 1, 1]
    assert rows[0] is a[1] and rows[1] is b[2]


@pytest.mark.parametrize("slowest_first", [True, False])
def test_a_machine_slow_throughout_stops_after_the_extra_attempts(slowest_first: bool) -> None:
    speeds = [4.0, 2.0, 3.0] if slowest_first else [2.0, 4.0, 3.0]
    attempts = [_attempt(s, 1.0) for s in speeds]
    first, run_again, calls = _shapes(attempts)
    [row] = retime_slow(first, run_again, _roof(20.0))  # every copy at or below 5 of 20 B/s
    assert calls == [0] * local.RETIME_MAX
    assert row is attempts[speeds.index(2.0)]
    assert sum(a["kept"] for a in row["attempts"]) == 1


def _cached(row: dict[str, Any], cache_s: float) -> dict[str, Any]:
    row["probes"]["cache"] = {"timing": {"median_s": cache_s}, "amount": 10.0,
                              "working_set_bytes": 4 * WS}
    return row


def test_the_cache_probe_alone_can_send_a_shape_round_again() -> None:
    roof = _roof(8.0)
    roof.bandwidth.append(BandwidthPoint(4 * WS, 40.0, 1.0, 40, "copy", 0.0))
    # matmul and the floor's copy at full speed; the cache copy at 10 of the ceiling's 40
    slow, fast = _cached(_attempt(1.0, 1.0), 1.0), _cached(_attempt(1.0, 2.0), 0.25)
    first, run_again, calls = _shapes([slow, fast])
    [row] = retime_slow(first, run_again, roof)
    assert calls == [0] and row is fast
    assert row["attempts"][0]["speed"] == {"matmul": 1.0, "copy": 1.0, "cache": 0.25}
    assert "copy 1.00, cache 0.25; 2 s at" in _retimed_text([row], {"below": 0.8,
                                                                     "max_more": 2})[0]


def test_a_fast_cache_probe_raises_its_own_working_set() -> None:
    roof = _roof(8.0)
    roof.bandwidth.append(BandwidthPoint(4 * WS, 40.0, 1.0, 40, "copy", 0.0))
    row = _cached(_row(1.0, 2.0, 1.0, 0.5), 0.2)  # copy 5 B/s, cache copy 50 B/s
    row["label"] = "any"
    assert raise_to_probes(roof, [row]) == [{"working_set_bytes": 4 * WS,
                                             "ceilings_bytes_per_s": 40.0,
                                             "bytes_per_s": 50.0, "shape": "any"}]
    assert roof.bandwidth[0].bytes_per_s == 8.0


class _Clock:
    """A clock that only the fake sleep moves, and the speeds each check returns."""

    def __init__(self, speeds: list[float]) -> None:
        self.now, self.speeds, self.slept = 0.0, speeds, []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s

    def measure(self) -> dict[str, float]:
        self.now += 1.0  # each check takes a second
        return {"matmul": 1.0, "copy 1 MiB": self.speeds.pop(0)}


def test_the_wait_ends_at_the_first_check_with_every_probe_quiet() -> None:
    c = _Clock([0.5, 0.79, 0.8, 0.3])
    rec = local.wait_for_quiet(c.measure, max_s=300, poll_s=20, sleep=c.sleep,
                               clock=lambda: c.now)
    assert rec == {"waited_s": 43.0, "checks": 3, "quiet": True,
                   "speeds": {"matmul": 1.0, "copy 1 MiB": 0.8}}
    assert c.slept == [20, 20] and c.speeds == [0.3]


def test_the_wait_gives_up_before_its_limit_on_a_machine_slow_throughout() -> None:
    c = _Clock([0.5] * 10)
    rec = local.wait_for_quiet(c.measure, max_s=65, poll_s=20, sleep=c.sleep,
                               clock=lambda: c.now)
    # checks end at 1, 22, 43 and 64 s; one more sleep would end past 65 s
    assert (rec["checks"], rec["waited_s"], rec["quiet"]) == (4, 64.0, False)
    assert local.wait_for_quiet(lambda: {}, sleep=c.sleep)["quiet"]  # nothing to probe


def test_each_pass_first_settles_on_the_shapes_it_will_time_again() -> None:
    a = [_attempt(2.0, 1.0), _attempt(1.0, 1.0)]
    b = [_attempt(2.0, 1.0), _attempt(2.0, 1.0), _attempt(1.0, 1.0)]
    fast = _attempt(1.0, 1.0)
    first, run_again, calls = _shapes(a, b, [fast])
    settled: list[list[dict[str, Any]]] = []
    retime_slow(first, run_again, _roof(10.0),
                lambda rows, best_mm, best_copy: settled.append(rows))
    assert settled == [[a[0], b[0]], [b[1]]] and calls == [0, 1, 1]
    # nothing slow: no wait
    retime_slow([fast], lambda i: fast, _roof(10.0), lambda *a: settled.append([]))
    assert len(settled) == 2


def test_the_paragraph_says_how_long_each_pass_waited() -> None:
    slow, fast = _attempt(1.0, 1.0), _attempt(0.25, 3.0)
    first, run_again, _ = _shapes([slow, fast])
    [row] = retime_slow(first, run_again, _roof(40.0))
    waits = [{"waited_s": 41.2, "checks": 3, "quiet": True, "speeds": {"matmul": 0.9}},
             {"waited_s": 300.0, "checks": 15, "quiet": False, "speeds": {"matmul": 0.5}}]
    text = _retimed_text([row], {**RETIME, "quiet_wait_s": 300, "quiet_poll_s": 20,
                                 "waits": waits})[0]
    assert text.endswith("timed every 20 s until each ran at 0.8 of the run's best or 300 s "
                         "had passed: pass 1 after 41 s, the machine at matmul 0.90; pass 2 "
                         "after 300 s, still slow: matmul 0.50.")
    assert "timed every" not in _retimed_text([row], RETIME)[0]
    # --quick: one look before each pass, no wait
    text = _retimed_text([row], {**RETIME, "quiet_wait_s": 0, "quiet_poll_s": 20,
                                 "waits": waits[1:]})[0]
    assert text.endswith("were timed once, without waiting for a quiet machine: pass 1 at "
                         "matmul 0.50.")


def test_the_probes_measure_the_machine_now_against_the_runs_best() -> None:
    import torch

    row = _cached(_attempt(1.0, 1.0), 1.0)
    row["probes"]["copy"]["working_set_bytes"] = WS
    speeds = local.probe_speeds([row, row], 1e15, {WS: 1e15, 4 * WS: 1e15},
                                torch.device("cpu"))
    assert list(speeds) == ["matmul", "copy 1 MiB", "copy 4 MiB"]
    assert all(0 < v < 1e-2 for v in speeds.values())  # nothing here copies at 1 PB/s
