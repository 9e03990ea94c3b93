"""Topic liveness: healthy exactly when a message arrived no longer than max_age ago."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.status.topic_liveness import TopicWatch

times = st.floats(0.0, 1e6, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(max_age=st.floats(1e-3, 1e3), received=times, elapsed=st.floats(0.0, 1e4))
@pytest.mark.clause("6.4b")
def test_healthy_iff_fresh(max_age: float, received: float, elapsed: float) -> None:
    watch = TopicWatch(["a", "b"], max_age, start_s=0.0)
    watch.mark("a", received)
    now = received + elapsed
    health = {h.topic: h for h in watch.health(now)}
    assert health["a"].ever_received and health["a"].healthy == (health["a"].age_s <= max_age)
    assert math.isclose(health["a"].age_s, elapsed, rel_tol=1e-9, abs_tol=1e-6) or health["a"].age_s >= 0.0
    assert not health["b"].ever_received and not health["b"].healthy
    assert not watch.all_healthy(now)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_rejects_bad_max_age(bad: float) -> None:
    with pytest.raises(ValueError):
        TopicWatch(["a"], bad, 0.0)


def test_rejects_duplicates_and_unknown_topics() -> None:
    with pytest.raises(ValueError):
        TopicWatch(["a", "a"], 1.0, 0.0)
    watch = TopicWatch(["a"], 1.0, 0.0)
    with pytest.raises(KeyError):
        watch.mark("b", 1.0)


def test_clock_going_backwards_never_gives_negative_age() -> None:
    watch = TopicWatch(["a"], 1.0, 0.0)
    watch.mark("a", 10.0)
    assert watch.health(5.0)[0].age_s == 0.0
