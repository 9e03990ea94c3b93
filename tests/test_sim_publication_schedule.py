"""Which outputs are due at a simulation step (sim/publication_schedule.py)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.sim.publication_schedule import PublicationSchedule, TopicRate

STEP_S = 0.002


def _steps(seconds: float) -> list[float]:
    return [i * STEP_S for i in range(round(seconds / STEP_S))]


def test_rates_over_one_second_of_2_ms_steps() -> None:
    schedule = PublicationSchedule({"joint_states": 500.0, "odom": 100.0, "battery": 1.0, "ground_truth": 50.0})
    counts = dict.fromkeys(schedule.topics, 0)
    for t in _steps(1.0):
        for topic in schedule.due(t):
            counts[topic] += 1
    assert counts == {"joint_states": 500, "odom": 100, "battery": 1, "ground_truth": 50}


def test_first_step_publishes_everything_in_the_given_order() -> None:
    schedule = PublicationSchedule({"b": 1.0, "a": 10.0})
    assert schedule.due(0.0) == ["b", "a"]
    assert schedule.due(STEP_S) == []


def test_a_skip_ahead_publishes_once_not_once_per_missed_period() -> None:
    rate = TopicRate(100.0)
    assert rate.due(0.0)
    assert rate.due(1.0)  # one publication for the whole gap
    assert not rate.due(1.005)
    assert rate.due(1.01)


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_refuses_a_rate_that_is_not_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        TopicRate(bad)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 500.0), seconds=st.floats(0.1, 3.0))
def test_never_faster_than_the_rate_and_never_a_period_late(rate: float, seconds: float) -> None:
    topic_rate = TopicRate(rate)
    published = [t for t in _steps(seconds) if topic_rate.due(t)]
    period = 1.0 / rate
    gaps = [b - a for a, b in itertools.pairwise(published)]
    assert all(gap >= min(period, STEP_S) - 1e-9 for gap in gaps)  # never two in one period (coarser steps aside)
    assert all(gap <= period + STEP_S + 1e-9 for gap in gaps)  # at most one step late
