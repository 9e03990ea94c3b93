"""Heartbeat node on real DDS: signed, sequenced, immediate on mode change, reports input liveness."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ftrobot_msgs.msg import Heartbeat, SafetyState
from rclpy.context import Context
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from credentials import heartbeat_overrides, make_fleet
from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
from ftrobot_guard.ros.node_parameters import NodeConfigurationError
from ftrobot_guard.ros.qos_profiles import LATCHED, SENSOR_DATA
from ftrobot_guard.trust.certificates import load_certificate
from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, message_fields, verify_fields
from ros_fixtures import SpinningExecutor, wait_for_match, wait_until


def _params(values: dict[str, object]) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


class Collector:
    def __init__(self) -> None:
        self.messages: list[Heartbeat] = []
        self.lock = threading.Lock()

    def __call__(self, msg: Heartbeat) -> None:
        with self.lock:
            self.messages.append(msg)

    def snapshot(self) -> list[Heartbeat]:
        with self.lock:
            return list(self.messages)


@pytest.mark.clause("2.3", "2.7", "6.4b")
def test_heartbeat_is_signed_sequenced_and_reports_inputs(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/r1",
        parameter_overrides=_params(heartbeat_overrides(
            fleet.robot, fleet.department, rate_hz=10.0, watched_max_age=0.5,
            watched_topics=["joint_states:sensor_msgs/msg/JointState"],
        )),
    ))
    probe = spinner.add(HeartbeatNode.__mro__[1]("probe", context=ros_context, namespace="/r1"))
    got = Collector()
    probe.create_subscription(Heartbeat, "heartbeat", got, 10)
    diagnostics: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    joints = probe.create_publisher(JointState, "joint_states", SENSOR_DATA)
    wait_until(lambda: len(got.snapshot()) >= 2, what="two heartbeats")

    first = got.snapshot()[0]
    public_key = load_certificate(fleet.robot.certificate).public_key()
    assert verify_fields(public_key, HEARTBEAT_DOMAIN, message_fields(first), bytes(first.signature))
    assert first.identity_number == fleet.robot.identity_number
    assert first.safety_mode_name == "BOOT"
    assert len(first.software_digest) == 64 and first.guardian_on_duty == "G-440304-0007"
    assert [h.topic for h in first.watched_topics] == ["/r1/joint_states"]
    assert not first.watched_topics[0].healthy and not first.watched_topics[0].ever_received

    wait_until(lambda: bool(diagnostics), what="heartbeat status on /diagnostics")
    stale = diagnostics[0].status[0]
    assert stale.level == DiagnosticStatus.WARN and "/r1/joint_states" in stale.message
    assert stale.hardware_id == fleet.robot.identity_number

    tampered = message_fields(first)
    tampered["safety_mode_name"] = "NORMAL"
    assert not verify_fields(public_key, HEARTBEAT_DOMAIN, tampered, bytes(first.signature))

    sequences = [m.sequence for m in got.snapshot()]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    assert len({m.boot_id for m in got.snapshot()}) == 1

    wait_for_match(joints)
    def joints_fresh() -> bool:
        joints.publish(JointState(name=["a"], position=[0.0]))
        last = got.snapshot()[-1]
        return last.watched_topics[0].healthy
    wait_until(joints_fresh, what="joint_states reported healthy")


@pytest.mark.clause("4.5", "6.4c")
def test_mode_change_sends_a_heartbeat_at_once(tmp_path: Path, ros_context: Context, spinner: SpinningExecutor) -> None:
    fleet = make_fleet(tmp_path)
    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/r2",
        parameter_overrides=_params(heartbeat_overrides(fleet.robot, fleet.department, rate_hz=0.1)),
    ))
    probe = spinner.add(HeartbeatNode.__mro__[1]("probe", context=ros_context, namespace="/r2"))
    got = Collector()
    probe.create_subscription(Heartbeat, "heartbeat", got, 10)
    state = probe.create_publisher(SafetyState, "safety_state", LATCHED)
    wait_for_match(state)
    # At 0.1 Hz the next periodic heartbeat is 10 s away: only the change can make this one.
    state.publish(SafetyState(mode=SafetyState.MODE_SAFE_STOP, mode_name="SAFE_STOP"))
    wait_until(lambda: any(m.safety_mode_name == "SAFE_STOP" for m in got.snapshot()), 5.0, "a SAFE_STOP heartbeat")


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("wrong_number", "identity_number"),
        ("world_readable_key", "permissions"),
        ("other_robot_certificate", "certifies another key"),
        ("forged_ca", "certificate_file"),
        ("missing_ca", "department_ca_files is required"),
        ("bad_rate", "rate_hz"),
        ("bad_watch", "watched_topics"),
    ],
)
@pytest.mark.clause("2.3")
def test_refuses_to_start_with_bad_identity_or_parameters(
    tmp_path: Path, ros_context: Context, fault: str, expected: str
) -> None:
    fleet = make_fleet(tmp_path)
    values = heartbeat_overrides(fleet.robot, fleet.department)
    if fault == "wrong_number":
        values["identity_number"] = "440304-RB-2026-000123-9"
    elif fault == "world_readable_key":
        os.chmod(fleet.robot.private_key, 0o644)
    elif fault == "other_robot_certificate":
        values["certificate_file"] = str(fleet.impostor.certificate)
        values["department_ca_files"] = [str(fleet.forger.ca_certificate)]
    elif fault == "forged_ca":
        values["department_ca_files"] = [str(fleet.forger.ca_certificate)]
    elif fault == "missing_ca":
        del values["department_ca_files"]
    elif fault == "bad_rate":
        values["rate_hz"] = 0.0
    elif fault == "bad_watch":
        values["watched_topics"] = ["joint_states"]
    with pytest.raises(NodeConfigurationError, match=expected):
        HeartbeatNode(context=ros_context, parameter_overrides=_params(values))
