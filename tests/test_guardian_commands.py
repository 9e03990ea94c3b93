"""Guardian command actions and signed fields match ftrobot_msgs/GuardianCommand; stops read without raising."""

from __future__ import annotations

import datetime as dt

import pytest
from ftrobot_msgs.msg import GuardianCommand
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.guardians.guardian_commands import (
    GUARDIAN_COMMAND_DOMAIN,
    NONCE_LENGTH,
    STOP_ACTIONS,
    GuardianAction,
    command_fields,
    sign_command,
    stop_action_of,
)
from ftrobot_guard.trust.signed_fields import message_fields, verify_fields
from guardian_testkit import ROBOT, WALL, Department

pytestmark = pytest.mark.clause("6.3")

GUARDIAN = Department().guardian("G-440304-0007")


def test_actions_are_the_message_constants() -> None:
    constants = {name.removeprefix("ACTION_"): getattr(GuardianCommand, name)
                 for name in dir(GuardianCommand) if name.startswith("ACTION_")}
    assert constants == {action.name: action.value for action in GuardianAction}
    assert {a.name for a in STOP_ACTIONS} == {"ESTOP", "SAFE_STOP", "POWER_DOWN", "PAUSE"}


def test_command_fields_are_the_message_fields_and_signatures_agree_both_ways() -> None:
    issued = WALL + dt.timedelta(microseconds=250_001)
    fields = command_fields(GUARDIAN.guardian_id, ROBOT, GuardianAction.HANDOVER, "G-440304-0001", "shift change",
                            issued, bytes(range(16)))
    message = GuardianCommand(guardian_id=GUARDIAN.guardian_id, robot_id=ROBOT, action=9, argument="G-440304-0001",
                              reason="shift change")
    message.issued_at.sec, message.issued_at.nanosec = int(WALL.timestamp()), 250_001_000
    message.nonce = list(range(16))
    assert message_fields(message) == fields
    message.signature = list(sign_command(GUARDIAN.key, fields))
    assert verify_fields(GUARDIAN.key.public_key(), GUARDIAN_COMMAND_DOMAIN, message_fields(message),
                         bytes(message.signature))
    assert not verify_fields(GUARDIAN.key.public_key(), "ftrobot/heartbeat/v1", fields, bytes(message.signature))


def test_nonces_are_random_and_checked() -> None:
    first = command_fields("G-1", ROBOT, GuardianAction.ESTOP, "", "", WALL)["nonce"]
    second = command_fields("G-1", ROBOT, GuardianAction.ESTOP, "", "", WALL)["nonce"]
    assert len(first) == NONCE_LENGTH and first != second
    with pytest.raises(ValueError, match="16 bytes"):
        command_fields("G-1", ROBOT, GuardianAction.ESTOP, "", "", WALL, b"short")
    with pytest.raises(ValueError):
        command_fields("G-1", ROBOT, 10, "", "", WALL)
    with pytest.raises(ValueError, match="timezone"):
        command_fields("G-1", ROBOT, GuardianAction.ESTOP, "", "", WALL.replace(tzinfo=None))


@pytest.mark.parametrize(("raw", "expected"), [
    (1, GuardianAction.ESTOP), (2, GuardianAction.SAFE_STOP), (3, GuardianAction.POWER_DOWN),
    (5, GuardianAction.PAUSE), (GuardianAction.ESTOP, GuardianAction.ESTOP),
    (4, None), (6, None), (7, None), (8, None), (9, None), (0, None), (10, None), (True, None), (1.0, None),
    ("1", None), (None, None), (b"\x01", None), (2**80, None), (-1, None),
])
def test_stop_action_of(raw: object, expected: GuardianAction | None) -> None:
    assert stop_action_of(raw) is expected


class _Hostile(int):
    def __index__(self) -> int:
        raise RuntimeError("boom")

    def __int__(self) -> int:
        raise RuntimeError("boom")

    def __hash__(self) -> int:
        raise RuntimeError("boom")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("boom")


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
                     st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                     st.builds(_Hostile, st.integers(0, 10))))
def test_stop_action_of_never_raises_and_only_names_stops(raw: object) -> None:
    action = stop_action_of(raw)
    assert action is None or action in STOP_ACTIONS
