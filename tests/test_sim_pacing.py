"""Real-time pacing of the physics loop and the real-time-factor window (sim/pacing.py), without ROS."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.sim.pacing import RealTimeFactorWindow, RealTimePacer

STEP_S = 0.002


def test_on_time_steps_sleep_the_rest_of_their_period() -> None:
    pacer = RealTimePacer(STEP_S, 1.0, start_s=100.0)
    assert pacer.after_step(100.0005) == pytest.approx(0.0015)
    assert pacer.after_step(100.0025) == pytest.approx(0.0015)
    assert pacer.overruns == 0


def test_real_time_factor_scales_the_period() -> None:
    assert RealTimePacer(STEP_S, 2.0, 0.0).period_s == pytest.approx(0.001)
    assert RealTimePacer(STEP_S, 0.5, 0.0).period_s == pytest.approx(0.004)


def test_a_short_lag_is_caught_up_without_sleeping_a_long_one_resets_the_schedule() -> None:
    pacer = RealTimePacer(STEP_S, 1.0, start_s=0.0, resync_after_s=0.25)
    assert pacer.after_step(0.1) == 0.0  # 98 ms late: catch up
    assert pacer.overruns == 0
    assert pacer.after_step(1.0) == 0.0  # ~1 s late: no burst, start again from now
    assert pacer.overruns == 1
    assert pacer.after_step(1.0005) == pytest.approx(0.0015)


@settings(max_examples=200, deadline=None)
@given(
    rtf=st.floats(0.01, 100.0),
    resync=st.floats(0.01, 1.0),
    step_costs=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=50),
)
def test_never_a_negative_sleep_and_never_a_catch_up_burst_longer_than_the_resync_bound(
    rtf: float, resync: float, step_costs: list[float]
) -> None:
    pacer = RealTimePacer(STEP_S, rtf, start_s=0.0, resync_after_s=resync)
    now = 0.0
    for cost in step_costs:  # steps taking any time, the machine stalling now and then
        now += cost
        sleep = pacer.after_step(now)
        assert 0.0 <= sleep <= pacer.period_s + 1e-12
        now += sleep
    burst = 0  # then steps that cost nothing: how many run back to back before the first sleep
    while pacer.after_step(now) == 0.0:
        burst += 1
        assert burst <= math.ceil(resync / pacer.period_s) + 1


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_refuses_non_positive_or_non_finite_settings(bad: float) -> None:
    with pytest.raises(ValueError):
        RealTimePacer(bad, 1.0, 0.0)
    with pytest.raises(ValueError):
        RealTimePacer(STEP_S, bad, 0.0)
    with pytest.raises(ValueError):
        RealTimePacer(STEP_S, 1.0, 0.0, resync_after_s=bad)


def test_factor_is_nan_until_two_samples_in_wall_time() -> None:
    window = RealTimeFactorWindow(size=4)
    assert math.isnan(window.factor)
    assert math.isnan(window.add(1.0, 0.0))
    assert math.isnan(window.add(1.0, 0.002))  # same wall time: no rate yet
    assert window.add(1.004, 0.004) == pytest.approx(1.0)


def test_factor_covers_only_the_last_samples() -> None:
    window = RealTimeFactorWindow(size=3)
    for wall, sim in ((0.0, 0.0), (1.0, 0.1), (2.0, 2.1), (3.0, 4.1)):
        window.add(wall, sim)
    assert window.factor == pytest.approx(2.0)  # (4.1 - 0.1) / (3 - 1): the first sample dropped out


@settings(max_examples=200, deadline=None)
@given(ratio=st.floats(0.01, 100.0), walls=st.lists(st.floats(1e-4, 1.0), min_size=2, max_size=50))
def test_a_constant_pace_is_measured_as_that_factor(ratio: float, walls: list[float]) -> None:
    window = RealTimeFactorWindow(size=10)
    wall = 0.0
    for step in walls:
        wall += step
        window.add(wall, wall * ratio)
    assert window.factor == pytest.approx(ratio, rel=1e-6)


def test_window_needs_two_samples() -> None:
    with pytest.raises(ValueError):
        RealTimeFactorWindow(size=1)
