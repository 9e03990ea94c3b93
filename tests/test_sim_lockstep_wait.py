"""Lock-step waiting for the guard's heartbeat (sim/lockstep_wait.py), with a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.sim.lockstep_wait import GuardHeartbeatState, LockstepGuardWait


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def _state(seen: bool, last: float, now: float) -> GuardHeartbeatState:
    return GuardHeartbeatState(seen=seen, last_alive_s=last, sim_time_s=now)


def test_no_wait_before_the_first_heartbeat_or_within_the_lead() -> None:
    wait = LockstepGuardWait(lead_s=0.05, patience_s=1.0)
    assert not wait.must_wait(_state(False, 0.0, 10.0))
    assert not wait.must_wait(_state(True, 1.0, 1.048))
    assert wait.must_wait(_state(True, 1.0, 1.052))


def test_waits_for_a_guard_that_catches_up() -> None:
    wait = LockstepGuardWait(lead_s=0.05, patience_s=1.0)
    clock = FakeClock()
    states = iter([_state(True, 1.0, 1.06)] * 5 + [_state(True, 1.02, 1.06)])
    assert wait.wait(lambda: next(states), clock.monotonic, clock.sleep, lambda: False)
    assert clock.sleeps == 5 and clock.now < 1.0


def test_gives_up_after_its_patience_and_runs_on_until_a_newer_heartbeat() -> None:
    wait = LockstepGuardWait(lead_s=0.05, patience_s=0.3)
    clock = FakeClock()
    assert not wait.wait(lambda: _state(True, 1.0, 1.06), clock.monotonic, clock.sleep, lambda: False)
    assert clock.now == pytest.approx(0.3, abs=0.001)
    assert not wait.must_wait(_state(True, 1.0, 5.0))  # the silent guard is not waited for again
    assert wait.must_wait(_state(True, 5.0, 5.06))  # a newer heartbeat re-arms the wait


def test_a_stop_request_ends_the_wait() -> None:
    wait = LockstepGuardWait(lead_s=0.05, patience_s=100.0)
    clock = FakeClock()
    stops = iter([False, False, True])
    assert not wait.wait(lambda: _state(True, 1.0, 2.0), clock.monotonic, clock.sleep, lambda: next(stops))
    assert clock.sleeps == 2


@pytest.mark.parametrize("lead, patience", [(0.0, 1.0), (-0.1, 1.0), (math.nan, 1.0), (0.05, -1.0), (0.05, math.inf)])
def test_refuses_bad_settings(lead: float, patience: float) -> None:
    with pytest.raises(ValueError):
        LockstepGuardWait(lead, patience)


@settings(max_examples=300, deadline=None)
@given(
    lead=st.floats(0.002, 1.0),
    heartbeats=st.lists(st.booleans(), min_size=1, max_size=400),
)
def test_a_guard_that_keeps_beating_is_never_outrun_by_more_than_the_lead(lead: float, heartbeats: list[bool]) -> None:
    """Simulate 2 ms steps: whenever a step may run, sim time advances; a heartbeat (when the guard beats)
    carries the current sim time. With infinite patience the lead bound holds at every step."""
    wait = LockstepGuardWait(lead_s=lead, patience_s=1e9)
    sim_time, last, seen = 0.0, 0.0, False
    for beats in heartbeats:
        if beats:
            seen, last = True, sim_time
        if not wait.must_wait(_state(seen, last, sim_time)):
            sim_time += 0.002
        assert not seen or sim_time - last <= lead + 0.002 + 1e-9
