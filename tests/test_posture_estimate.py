"""The posture a lowering starts from: encoder noise averaged out without lagging a moving joint (pure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftrobot_guard.safety.posture_estimate import PostureEstimate

RATE_HZ = 500.0


def feed(estimate: PostureEstimate, start: float, seconds: float, positions_at: object) -> float:
    """Readings at 500 Hz from ``start`` for ``seconds``; ``positions_at(t)`` gives each; returns the last time."""
    assert callable(positions_at)
    t = start
    for i in range(round(seconds * RATE_HZ)):
        t = start + i / RATE_HZ
        estimate.add(t, np.asarray(positions_at(t), dtype=np.float64))
    return t


def test_still_joints_get_the_noise_averaged_out() -> None:
    """0.01 rad of encoder noise on 29 still joints: one reading is off by 0.01 rad RMS; the estimate from the
    last 0.1 s (50 readings) by about 2 / sqrt(50) of that."""
    rng = np.random.default_rng(7)
    truth = np.linspace(-1.0, 1.0, 29)
    errors = []
    for trial in range(200):
        estimate = PostureEstimate(29)
        feed(estimate, 10.0 * trial, 0.5, lambda _t: truth + rng.normal(0.0, 0.01, 29))
        errors.append(estimate.estimate() - truth)
    rms = float(np.sqrt(np.mean(np.square(errors))))
    assert 0.002 < rms < 0.0035, rms   # 2 / sqrt(50) x 0.01 = 0.0028; a single reading would give 0.01


def test_a_joint_moving_at_constant_speed_is_not_lagged() -> None:
    """A mean over 0.1 s would lag a joint at 1 rad/s by 0.05 rad; the line through the readings does not."""
    estimate = PostureEstimate(2)
    last = feed(estimate, 3.0, 0.4, lambda t: [0.2 + 1.0 * (t - 3.0), -0.5])
    assert estimate.estimate() == pytest.approx([0.2 + 1.0 * (last - 3.0), -0.5], abs=1e-9)


def test_only_the_window_counts() -> None:
    """A joint that jumped 0.08 s ago (a new command): older readings do not pull the estimate back."""
    estimate = PostureEstimate(1, window=0.05)
    last = feed(estimate, 0.0, 1.0, lambda t: [0.0 if t < 0.92 else 0.3])
    assert last > 0.92 + 0.05
    assert estimate.estimate()[0] == pytest.approx(0.3)


def test_before_any_reading_nothing_is_known_and_few_readings_give_the_newest() -> None:
    estimate = PostureEstimate(3)
    assert np.all(np.isnan(estimate.estimate()))
    estimate.add(1.0, np.array([0.1, 0.2, 0.3]))
    estimate.add(1.002, np.array([0.4, 0.5, 0.6]))
    assert estimate.estimate().tolist() == [0.4, 0.5, 0.6]


def test_a_broken_reading_in_the_window_leaves_that_joint_at_its_newest_reading() -> None:
    """A NaN in the window: that joint is not estimated (its newest reading, which the sequencer checks);
    a NaN newest reading stays NaN, so a broken encoder is never averaged into a number."""
    def second(t: float) -> float:
        return 0.2 + 0.01 * math.sin(900.0 * t)   # noisy

    estimate = PostureEstimate(2)
    last = feed(estimate, 0.0, 0.1, lambda t: [0.1, math.nan if abs(t - 0.05) < 1e-6 else second(t)])
    out = estimate.estimate()
    assert out[0] == pytest.approx(0.1)
    assert out[1] == second(last)
    estimate.add(0.2, np.array([0.1, math.nan]))
    assert math.isnan(estimate.estimate()[1])


def test_a_clock_going_back_starts_again() -> None:
    estimate = PostureEstimate(1)
    feed(estimate, 100.0, 0.2, lambda _t: [1.0])
    estimate.add(5.0, np.array([2.0]))   # e.g. sim time restarted
    assert estimate.estimate()[0] == 2.0
    estimate.add(math.nan, np.array([3.0]))   # a non-finite time is not a reading
    assert estimate.estimate()[0] == 2.0


def test_a_reading_of_the_wrong_size_is_refused_with_a_reason() -> None:
    estimate = PostureEstimate(3)
    with pytest.raises(ValueError, match="3 positions expected"):
        estimate.add(0.0, np.zeros(4))
    assert np.all(np.isnan(estimate.estimate()))


@pytest.mark.parametrize(("count", "window", "capacity"), [(-1, 0.1, 256), (3, 0.0, 256), (3, math.nan, 256),
                                                           (3, 11.0, 256), (3, 0.1, 2)])
def test_bad_settings_are_refused(count: int, window: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="posture estimate"):
        PostureEstimate(count, window, capacity)


@given(
    intercept=st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=8),
    slope=st.floats(-5.0, 5.0),
    jitter=st.lists(st.floats(0.0, 0.0015), min_size=3, max_size=120),
)
def test_readings_on_a_line_are_reproduced_exactly_whatever_the_timing(
        intercept: list[float], slope: float, jitter: list[float]) -> None:
    """Readings exactly on a line (any speed, any intervals, more readings than the buffer holds too): the
    estimate is the line at the newest reading, finite, within float round-off."""
    estimate = PostureEstimate(len(intercept), window=0.1, capacity=64)
    base = np.array(intercept)
    t = 0.0
    for gap in jitter:
        t += 0.0005 + gap
        estimate.add(t, base + slope * t)
    result = estimate.estimate()
    assert np.all(np.isfinite(result))
    assert result == pytest.approx(base + slope * t, abs=1e-6)
