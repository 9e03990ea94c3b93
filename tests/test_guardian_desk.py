"""The guard's guardian desk over the real supervisor: stops are always obeyed, nothing else without a valid
signature, and what the desk says matches what the supervisor did."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrobot_guard.guardians.duty_roster import DutyRoster
from ftrobot_guard.guardians.guardian_commands import STOP_ACTIONS, GuardianAction
from ftrobot_guard.guardians.guardian_parameters import GuardianParameterError, parse_contacts, parse_role_entries
from ftrobot_guard.guardians.role_policy import DEFAULT_ROLE_POLICY
from ftrobot_guard.safety.guardian_desk import GuardianDesk
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import Supervisor, SupervisorConfig, SupervisorOutput
from guardian_testkit import WALL, Department, Guardian, verifier_for

pytestmark = pytest.mark.clause("6.3")


class SupervisedRobot:
    """The desk's target: a real supervisor (what GuardCore wraps), without the hardware."""

    def __init__(self) -> None:
        self.supervisor = Supervisor(SupervisorConfig(), 0.0)
        self.supervisor.boot_check(True, "test", 0.0)
        self.supervisor.reanchored(0.0)

    @property
    def output(self) -> SupervisorOutput:
        return self.supervisor.output

    def stop(self, now: float, mode: SafetyMode, source: str, cause: str, damp: bool = False) -> SupervisorOutput:
        return self.supervisor.stop(mode, source, cause, now, damp=damp)

    def pause(self, now: float, source: str, cause: str) -> SupervisorOutput:
        return self.supervisor.pause(source, cause, now)

    def reduce(self, now: float, source: str, cause: str) -> SupervisorOutput:
        return self.supervisor.reduce(source, cause, now)

    def resume(self, now: float, source: str, cause: str) -> SupervisorOutput:
        return self.supervisor.resume(source, cause, now)

    def reset(self, now: float, authorization: Any, cause_cleared: bool) -> SupervisorOutput:
        return self.supervisor.reset(authorization, cause_cleared, now)


DEPARTMENT = Department()
OPERATOR = DEPARTMENT.guardian("G-440304-0007", "operator")
RELIEF = DEPARTMENT.guardian("G-440304-0008", "operator")
OFFICER = DEPARTMENT.guardian("D-440304-0001", "officer")
REGISTRY = {g.guardian_id: g.der for g in (OPERATOR, RELIEF, OFFICER)}


def _desk() -> tuple[GuardianDesk, SupervisedRobot]:
    robot = SupervisedRobot()
    return GuardianDesk(robot, verifier_for(DEPARTMENT, REGISTRY), DutyRoster(None, OPERATOR.guardian_id)), robot


def _send(desk: GuardianDesk, guardian: Guardian, action: GuardianAction, now: float = 1.0, **kw: Any) -> Any:
    fields, signature = guardian.command(action, **kw)
    return desk.handle(now, WALL, fields, signature)


def test_a_valid_stop_pause_resume_reset_cycle() -> None:
    desk, robot = _desk()
    outcome = _send(desk, OPERATOR, GuardianAction.PAUSE)
    assert outcome.accepted and outcome.obeyed and robot.output.mode is SafetyMode.PAUSED
    outcome = _send(desk, OPERATOR, GuardianAction.RESUME, 2.0)
    assert outcome.obeyed and robot.output.mode is SafetyMode.NORMAL
    outcome = _send(desk, OPERATOR, GuardianAction.ESTOP, 3.0)
    assert outcome.accepted and outcome.obeyed and robot.output.mode is SafetyMode.ESTOP
    outcome = _send(desk, OPERATOR, GuardianAction.RESUME, 4.0)
    assert outcome.accepted and not outcome.obeyed and robot.output.mode is SafetyMode.ESTOP
    outcome = _send(desk, OPERATOR, GuardianAction.RESET, 5.0)
    assert outcome.obeyed and robot.output.mode is SafetyMode.NORMAL and robot.output.reanchor_required


def test_reset_is_refused_while_a_stopping_anomaly_stands() -> None:
    from ftrobot_guard.safety.response_policy import Severity
    from ftrobot_guard.safety.supervisor import AnomalyEvent

    desk, robot = _desk()
    robot.supervisor.anomaly(AnomalyEvent("tracking_error", "left_knee_joint", Severity.ERROR, True), 1.0)
    outcome = _send(desk, OPERATOR, GuardianAction.RESET, 2.0)
    assert outcome.accepted and not outcome.obeyed and outcome.refusal == "NOT_RESET"
    assert "still active" in outcome.detail and robot.output.mode is SafetyMode.SAFE_STOP


def test_handover_and_acknowledge_channel() -> None:
    desk, _robot = _desk()
    assert _send(desk, RELIEF, GuardianAction.HANDOVER, argument="somebody-else").refusal == "HANDOVER_REFUSED"
    outcome = _send(desk, RELIEF, GuardianAction.HANDOVER, argument=OPERATOR.guardian_id)
    assert outcome.obeyed and outcome.duty_changed and desk.on_duty == RELIEF.guardian_id
    assert _send(desk, OFFICER, GuardianAction.ACKNOWLEDGE, argument="x").refusal == "WRONG_CHANNEL"


_FIELD_CHANGES = st.sampled_from(["guardian_id", "robot_id", "argument", "reason", "issued_at", "nonce", "signature",
                                  "key", "drop", "extra", "type"])


def _mutated(action: GuardianAction, change: str, garbage: bytes, argument: str = "") -> tuple[dict[str, Any], bytes]:
    """A command of the operator's with one thing wrong (``garbage`` never equals what it replaces)."""
    fields, signature = OPERATOR.command(action, argument=argument)
    fields = dict(fields)
    if change == "signature":
        signature = garbage if garbage != signature else garbage + b"x"
    elif change == "key":
        signature = RELIEF.command(action, nonce=fields["nonce"], argument=argument)[1]
    elif change == "drop":
        fields.pop("reason")
    elif change == "extra":
        fields["extra"] = 1
    elif change == "type":
        fields["nonce"] = "not bytes"
    elif change == "issued_at":
        fields["issued_at"] = {"sec": 1, "nanosec": 0}
    elif change == "nonce":
        fields["nonce"] = garbage if garbage != fields["nonce"] else garbage + b"x"
    else:
        value = garbage.decode("latin-1")
        fields[change] = value if value != fields[change] else value + "x"
    return fields, signature


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action=st.sampled_from(sorted(STOP_ACTIONS)), change=_FIELD_CHANGES, garbage=st.binary(min_size=1, max_size=70))
def test_every_stop_is_obeyed_whatever_is_wrong_with_it(action: GuardianAction, change: str, garbage: bytes) -> None:
    desk, robot = _desk()
    outcome = desk.handle(1.0, WALL, *_mutated(action, change, garbage))
    assert outcome.obeyed
    expected = SafetyMode.PAUSED if action is GuardianAction.PAUSE else SafetyMode[action.name]
    assert robot.output.mode is expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(action=st.sampled_from([GuardianAction.RESUME, GuardianAction.RESET, GuardianAction.REDUCE,
                               GuardianAction.HANDOVER]),
       change=_FIELD_CHANGES, garbage=st.binary(min_size=1, max_size=70))
def test_nothing_but_a_stop_acts_without_a_valid_signature(action: GuardianAction, change: str,
                                                           garbage: bytes) -> None:
    desk, robot = _desk()
    robot.supervisor.estop("estop", "button", 0.5)
    argument = OPERATOR.guardian_id if action is GuardianAction.HANDOVER else ""
    outcome = desk.handle(1.0, WALL, *_mutated(action, change, garbage, argument))
    assert not outcome.accepted and not outcome.obeyed
    assert robot.output.mode is SafetyMode.ESTOP and desk.on_duty == OPERATOR.guardian_id


def test_a_replayed_reset_leaves_the_stop_latched() -> None:
    desk, robot = _desk()
    _send(desk, OPERATOR, GuardianAction.ESTOP)
    fields, signature = OPERATOR.command(GuardianAction.RESET, nonce=os.urandom(16))
    assert desk.handle(2.0, WALL, fields, signature).obeyed
    _send(desk, OPERATOR, GuardianAction.ESTOP, 3.0)
    replay = desk.handle(4.0, WALL + dt.timedelta(seconds=2), fields, signature)
    assert replay.refusal == "REPLAYED" and robot.output.mode is SafetyMode.ESTOP


# -- parameters ------------------------------------------------------------------------------------


def test_role_entries_parse_strictly() -> None:
    policy = parse_role_entries(["operator=ESTOP, RESET", "officer=ACKNOWLEDGE"])
    assert policy.allows("operator", GuardianAction.RESET) and not policy.allows("operator", GuardianAction.PAUSE)
    assert parse_role_entries([]) == DEFAULT_ROLE_POLICY
    for bad in (["operator"], ["=ESTOP"], ["operator="], ["operator=ESTOP,,RESET"], ["operator=FLY"],
                ["a=ESTOP", "a=RESET"]):
        with pytest.raises(GuardianParameterError):
            parse_role_entries(bad)


@given(st.lists(st.text(max_size=40), max_size=6))
def test_role_entries_either_parse_or_say_why(entries: list[str]) -> None:
    try:
        policy = parse_role_entries(entries)
    except GuardianParameterError as exc:
        assert str(exc)
    else:
        assert entries == [] or set(policy.to_mapping()) == {e.partition("=")[0].strip() for e in entries}


@given(st.lists(st.text(max_size=60), max_size=6))
def test_contacts_either_parse_or_say_why(entries: list[str]) -> None:
    try:
        contacts = parse_contacts(entries)
    except GuardianParameterError as exc:
        assert str(exc)
    else:
        assert len(contacts) == len(entries)
        for guardian, contact in contacts.items():
            assert guardian and contact and "=" not in guardian


def test_contacts_example() -> None:
    assert parse_contacts(["G-1=+86 755 0000 0007 (duty phone)"]) == {"G-1": "+86 755 0000 0007 (duty phone)"}
    with pytest.raises(GuardianParameterError):
        parse_contacts(["G-1=a", "G-1=b"])
