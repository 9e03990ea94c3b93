"""The message_delay fault's queue (sim/delay_queue.py): nothing early, nothing lost, earliest first."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.sim.delay_queue import DelayQueue


def test_items_wait_until_due_and_leave_once() -> None:
    queue: DelayQueue[str] = DelayQueue()
    queue.put(0.05, "joint_states@0")
    queue.put(0.052, "joint_states@2ms")
    assert queue.pop_due(0.049) == []
    assert queue.pop_due(0.05) == ["joint_states@0"]
    assert queue.pop_due(0.06) == ["joint_states@2ms"]
    assert queue.pop_due(1.0) == [] and len(queue) == 0


def test_a_short_delay_is_not_held_behind_a_long_one() -> None:
    queue: DelayQueue[str] = DelayQueue()
    queue.put(0.5, "imu, delayed 0.5 s")
    queue.put(0.01, "odom, delayed 0.01 s")
    assert queue.pop_due(0.01) == ["odom, delayed 0.01 s"]


def test_due_within_float_rounding_of_the_step_counts_as_due() -> None:
    queue: DelayQueue[int] = DelayQueue()
    due = sum([0.002] * 25)  # 0.05000000000000001 or so
    queue.put(due, 1)
    assert queue.pop_due(0.05) == [1]


def test_refuses_a_non_finite_due_time() -> None:
    queue: DelayQueue[int] = DelayQueue()
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            queue.put(bad, 1)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(st.floats(0.0, 10.0), st.integers()), max_size=60),
    checks=st.lists(st.floats(0.0, 12.0), max_size=20),
)
def test_nothing_early_nothing_lost_in_due_order_fifo_on_ties(
    items: list[tuple[float, int]], checks: list[float]
) -> None:
    queue: DelayQueue[tuple[int, float, int]] = DelayQueue()
    for index, (due, value) in enumerate(items):
        queue.put(due, (index, due, value))
    released: list[tuple[int, float, int]] = []
    for now in [*sorted(checks), 12.0]:
        batch = queue.pop_due(now)
        assert all(due <= now + 1e-9 for _, due, _ in batch)
        released += batch
    assert sorted(released) == [(i, due, value) for i, (due, value) in enumerate(items)]
    keys = [(due, index) for index, due, _ in released]
    assert keys == sorted(keys)
