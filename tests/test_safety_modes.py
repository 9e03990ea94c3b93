"""Safety modes come from one place and agree with ftrobot_msgs/SafetyState."""

from __future__ import annotations

import pytest
from ftrobot_msgs.msg import SafetyState
from hypothesis import example, given
from hypothesis import strategies as st

from ftrobot_guard.safety.modes import SafetyMode, UnknownSafetyModeError, mode_from_name, mode_from_number


@pytest.mark.clause("6.2e")
def test_mode_numbers_match_the_message_constants() -> None:
    constants = {name.removeprefix("MODE_"): getattr(SafetyState, name) for name in dir(SafetyState) if name.startswith("MODE_")}
    assert constants == {mode.name: mode.value for mode in SafetyMode}


def test_latched_modes_are_the_stops() -> None:
    assert {m for m in SafetyMode if m.latched} == {SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN, SafetyMode.ESTOP}
    assert {m for m in SafetyMode if m.forwards_motion} == {SafetyMode.NORMAL, SafetyMode.REDUCED}
    assert SafetyMode.SAFE_STOP.stop_category == 2
    assert SafetyMode.POWER_DOWN.stop_category == 1
    assert SafetyMode.NORMAL.stop_category is None


@given(st.integers(min_value=-(2**70), max_value=2**70))
@example(-1).via("the edge below BOOT")
@example(5).via("ESTOP")
@example(6).via("PAUSED, the newest mode")
@example(7).via("the edge above it")
def test_mode_from_number_accepts_exactly_the_known_numbers(number: int) -> None:
    if 0 <= number <= 6:   # BOOT ... ESTOP, PAUSED (the ftrobot_msgs/SafetyState numbers)
        assert mode_from_number(number).value == number
    else:
        with pytest.raises(UnknownSafetyModeError):
            mode_from_number(number)


@given(st.text(max_size=30))
def test_mode_from_name_accepts_exactly_the_known_names(name: str) -> None:
    if name in SafetyMode.__members__:
        assert mode_from_name(name).name == name
    else:
        with pytest.raises(UnknownSafetyModeError):
            mode_from_name(name)
