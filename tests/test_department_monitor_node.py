"""Department monitor on real DDS: verifies heartbeats, raises SILENT and impostor alerts, keeps witnessed heads."""

from __future__ import annotations

import math
import threading
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from ftrobot_msgs.msg import DepartmentAlert, Heartbeat, LogCheckpoint
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from credentials import heartbeat_overrides, make_fleet
from ftrobot_guard.blackbox.record_format import Checkpoint
from ftrobot_guard.blackbox.witnessed_heads import load_witnessed_heads
from ftrobot_guard.cli.main import main as ftrobot
from ftrobot_guard.department.fleet_monitor import AlertKind, RobotRow
from ftrobot_guard.nodes.department_monitor_node import ROBOT_STATUS_EVERY, DepartmentMonitorNode
from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
from ftrobot_guard.ros.qos_profiles import EVENTS, LATCHED, heartbeat_publisher
from ftrobot_guard.trust.certificates import certificate_der, load_certificate
from ftrobot_guard.trust.dev_credentials import RobotFiles
from ftrobot_guard.trust.keys import load_private_key
from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields
from ros_fixtures import SpinningExecutor, wait_for_match, wait_until


def _params(values: dict[str, object]) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in values.items()]


class Alerts:
    def __init__(self) -> None:
        self.items: list[DepartmentAlert] = []
        self.lock = threading.Lock()

    def __call__(self, msg: DepartmentAlert) -> None:
        with self.lock:
            self.items.append(msg)

    def has(self, kind: int, raised: bool = True, detail: str = "") -> bool:
        with self.lock:
            return any(a.kind == kind and a.raised == raised and detail in a.detail for a in self.items)


class MonitorDiagnostics:
    """The department monitor's own counters, as last published on /diagnostics."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "department_monitor":
                with self.lock:
                    self.values = {kv.key: kv.value for kv in status.values}

    def count(self, key: str) -> int:
        with self.lock:
            return int(self.values.get(key, "0"))


def _monitor(context: Context, tmp_path: Path, ca: Path) -> DepartmentMonitorNode:
    return DepartmentMonitorNode(
        context=context,
        parameter_overrides=_params({
            "trusted_ca_files": [str(ca)], "heartbeat_period": 0.2, "silent_periods": 3,
            "discovery_period": 0.2, "check_rate_hz": 20.0,
            "witnessed_heads_file": str(tmp_path / "dept" / "heads.jsonl"),
        }),
    )


@pytest.mark.clause("5.1a", "6.4b")
def test_genuine_robot_then_silence_then_impostor(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    monitor = spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    probe = spinner.add(Node("probe", context=ros_context))
    alerts = Alerts()
    probe.create_subscription(DepartmentAlert, "department/alerts", alerts, EVENTS)
    diagnostics: list[DiagnosticArray] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    counters = MonitorDiagnostics()
    probe.create_subscription(DiagnosticArray, "/diagnostics", counters, 10)
    robot = spinner.add(HeartbeatNode(
        context=ros_context, namespace="/robot1",
        parameter_overrides=_params(heartbeat_overrides(fleet.robot, fleet.department, rate_hz=5.0)),
    ))

    def verified() -> bool:
        rows = monitor.rows()
        return len(rows) == 1 and rows[0].signature_state.value == "verified" and rows[0].last_seen_age_s is not None

    wait_until(verified, 15.0, "the robot verified by the monitor")
    assert monitor.rows()[0].identity_number == fleet.robot.identity_number
    assert not alerts.has(DepartmentAlert.KIND_SILENT)

    def robot_on_diagnostics() -> bool:
        return any(status.name == f"department_monitor: {fleet.robot.identity_number}"
                   and status.hardware_id == fleet.robot.identity_number
                   for array in list(diagnostics) for status in array.status)

    wait_until(robot_on_diagnostics, 5.0, "the robot's status on /diagnostics")

    def monitor_arrays() -> list[DiagnosticArray]:  # the monitor's own, one a second (the robot publishes too)
        return [a for a in list(diagnostics) if any(s.name == "department_monitor" for s in a.status)]

    def robot_statuses() -> list[tuple[int, str]]:  # (monitor array index, message) of this robot's statuses
        return [(index, status.message) for index, array in enumerate(monitor_arrays()) for status in array.status
                if status.name == f"department_monitor: {fleet.robot.identity_number}"]

    # unchanged, it is repeated every ROBOT_STATUS_EVERY arrays (seconds), not in every one
    first = len(monitor_arrays())
    wait_until(lambda: len(monitor_arrays()) >= first + 2 * ROBOT_STATUS_EVERY, 10.0,
               "six more /diagnostics arrays from the monitor")
    repeats = [index for index, message in robot_statuses() if first <= index < first + 2 * ROBOT_STATUS_EVERY]
    assert len(repeats) == 2 and repeats[1] - repeats[0] == ROBOT_STATUS_EVERY, repeats

    spinner.remove(robot)
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_SILENT), 5.0, "SILENT on department/alerts")
    assert AlertKind.SILENT in monitor.rows()[0].active_alerts
    # changed, it goes out in the next array
    raised = len(monitor_arrays())
    wait_until(lambda: any("SILENT" in message and index <= raised for index, message in robot_statuses()), 3.0,
               "SILENT in the robot's status in the next /diagnostics array")

    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/impostor",
        parameter_overrides=_params(heartbeat_overrides(fleet.impostor, fleet.forger, rate_hz=5.0)),
    ))
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_UNKNOWN_CERTIFICATE), 10.0, "UNKNOWN_CERTIFICATE")
    wait_until(lambda: counters.count("heartbeats_refused_unknown_certificate") >= 3, 10.0,
               "three forged heartbeats refused (on /diagnostics)")
    row = monitor.rows()[0]
    assert AlertKind.SILENT in row.active_alerts, "a forged heartbeat must not clear SILENT"
    assert row.signature_state.value == "contested"


def _publish_checkpoint(spinner: SpinningExecutor, context: Context, robot: RobotFiles) -> Checkpoint:
    """A signed black-box checkpoint of ``robot``, published as its recorder does (latched)."""
    recorder = spinner.add(Node("fake_recorder", context=context, namespace="/robot1"))
    publisher = recorder.create_publisher(LogCheckpoint, "blackbox/checkpoint", LATCHED)
    key = load_private_key(robot.private_key)
    checkpoint = Checkpoint(robot.identity_number, "ab" * 16, 42, bytes(range(32)), 1_795_000_000_123_456_789)
    checkpoint = checkpoint.signed(key)  # type: ignore[arg-type]
    msg = LogCheckpoint(identity_number=robot.identity_number, segment_id=checkpoint.segment_id,
                        sequence=42, chain_head=checkpoint.chain_head.hex(), signature=checkpoint.signature)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(checkpoint.time_ns, 1_000_000_000)
    wait_for_match(publisher)
    publisher.publish(msg)
    return checkpoint


@pytest.mark.clause("8.2")
def test_witnessed_heads_are_kept_and_exported(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    monitor = spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/robot1",
        parameter_overrides=_params(heartbeat_overrides(fleet.robot, fleet.department, rate_hz=5.0)),
    ))
    checkpoint = _publish_checkpoint(spinner, ros_context, fleet.robot)
    wait_until(lambda: monitor.witnessed_heads.heads(fleet.robot.identity_number) != [], 10.0, "a witnessed head")

    out = tmp_path / "heads.json"
    assert ftrobot(["dept", "heads", "--store", str(tmp_path / "dept" / "heads.jsonl"),
                    "--identity", fleet.robot.identity_number, "--out", str(out)]) == 0
    heads = load_witnessed_heads(out)
    assert [(h.sequence, h.chain_head, h.time_ns) for h in heads] == [(42, bytes(range(32)).hex(), checkpoint.time_ns)]
    public_key = load_private_key(fleet.robot.private_key).public_key()
    assert heads[0].signature_valid(public_key)  # type: ignore[arg-type]


@pytest.mark.clause("8.2")
def test_unwritable_witnessed_heads_file_is_reported_and_the_head_written_later(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    monitor = spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    store = tmp_path / "dept" / "heads.jsonl"
    store.unlink()
    store.mkdir()  # the monitor can no longer append to its witnessed_heads_file
    probe = spinner.add(Node("probe", context=ros_context))
    statuses: list[tuple[bytes, str]] = []
    counters = MonitorDiagnostics()

    def on_diagnostics(msg: DiagnosticArray) -> None:
        counters(msg)
        statuses.extend((s.level, s.message)
                        for s in msg.status if s.name == "department_monitor")

    probe.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/robot1",
        parameter_overrides=_params(heartbeat_overrides(fleet.robot, fleet.department, rate_hz=5.0)),
    ))
    _publish_checkpoint(spinner, ros_context, fleet.robot)
    wait_until(lambda: counters.count("witnessed_heads_unwritten") == 1
               and counters.count("witnessed_heads_write_failures") >= 1, 10.0, "the unwritten head on /diagnostics")
    assert any(level == DiagnosticStatus.ERROR and "witnessed heads not written" in message
               for level, message in list(statuses))
    assert monitor.witnessed_heads.heads() == []  # not reported as witnessed while it is not on disk

    store.rmdir()
    wait_until(lambda: monitor.witnessed_heads.heads(fleet.robot.identity_number) != [], 10.0, "the head written")
    assert [(h.sequence, h.chain_head) for h in load_witnessed_heads(store)] == [(42, bytes(range(32)).hex())]
    wait_until(lambda: counters.count("witnessed_heads_unwritten") == 0, 5.0, "nothing unwritten on /diagnostics")


class OneBootSession:
    """Heartbeats of one boot session, signed as the heartbeat node signs them."""

    def __init__(self, robot: RobotFiles) -> None:
        self.robot = robot
        self.key = load_private_key(robot.private_key)
        self.certificate = certificate_der(load_certificate(robot.certificate))
        self.boot_id = uuid.uuid4().hex
        self.sequence = 0

    def next_heartbeat(self) -> Heartbeat:
        self.sequence += 1
        msg = Heartbeat(format_version=Heartbeat.FORMAT_VERSION, identity_number=self.robot.identity_number,
                        robot_name=self.robot.robot_name, department=self.robot.department, boot_id=self.boot_id,
                        sequence=self.sequence, uptime=float(self.sequence), safety_mode_name="NORMAL",
                        safety_mode=1, guardian_on_duty="G-440304-0007", certificate=self.certificate)
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        msg.signature = sign_fields(self.key, HEARTBEAT_DOMAIN, message_fields(msg))  # type: ignore[arg-type]
        return msg


def _robot_row(monitor: DepartmentMonitorNode) -> RobotRow | None:
    rows = monitor.rows()
    return rows[0] if len(rows) == 1 else None


def test_one_boot_session_from_two_publishers_is_a_duplicate(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    """Two real DDS publishers send one boot session's heartbeats: the monitor tells them apart (gid on rclpy 9,
    publication numbers on rclpy 7)."""
    fleet = make_fleet(tmp_path)
    monitor = spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    probe = spinner.add(Node("probe", context=ros_context))
    alerts = Alerts()
    probe.create_subscription(DepartmentAlert, "department/alerts", alerts, EVENTS)
    session = OneBootSession(fleet.robot)
    first = spinner.add(Node("publisher_a", context=ros_context, namespace="/robot1"))
    second = spinner.add(Node("publisher_b", context=ros_context, namespace="/robot1"))
    pub_a = first.create_publisher(Heartbeat, "heartbeat", heartbeat_publisher(0.2))
    pub_b = second.create_publisher(Heartbeat, "heartbeat", heartbeat_publisher(0.2))
    wait_for_match(pub_a)
    wait_for_match(pub_b)
    for _ in range(3):
        pub_a.publish(session.next_heartbeat())

        def accepted(sequence: int) -> bool:
            row = _robot_row(monitor)
            return row is not None and row.sequence == sequence

    wait_until(lambda: accepted(3), 10.0, "three heartbeats from one publisher accepted")
    row = _robot_row(monitor)
    assert row is not None and row.active_alerts == () and row.signature_state.value == "verified"
    gids = {info.node_name: bytes(info.endpoint_gid).hex() for info in probe.get_publishers_info_by_topic(
        "/robot1/heartbeat")}
    if int(version("rclpy").split(".")[0]) >= 9:  # Kilted: rclpy reports the publisher's gid
        assert row.publisher_gid == gids["publisher_a"] != gids["publisher_b"]
    else:  # Jazzy: it does not; publication numbers are the evidence
        assert row.publisher_gid == ""

    pub_b.publish(session.next_heartbeat())
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_DUPLICATE_IDENTITY, detail="from two publishers"), 10.0,
               "DUPLICATE_IDENTITY for one boot session from two publishers")
    assert AlertKind.DUPLICATE_IDENTITY in monitor.rows()[0].active_alerts


def test_malformed_heartbeat_is_an_alert_and_counted(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    probe = spinner.add(Node("probe", context=ros_context))
    alerts = Alerts()
    probe.create_subscription(DepartmentAlert, "department/alerts", alerts, EVENTS)
    counters = MonitorDiagnostics()
    probe.create_subscription(DiagnosticArray, "/diagnostics", counters, 10)
    publisher = probe.create_publisher(Heartbeat, "/robot1/heartbeat", heartbeat_publisher(0.2))
    wait_for_match(publisher)
    publisher.publish(Heartbeat(identity_number=fleet.robot.identity_number, uptime=math.nan, signature=b"\x00" * 64))
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_BAD_SIGNATURE, detail="malformed heartbeat"), 10.0,
               "BAD_SIGNATURE for a malformed heartbeat")
    wait_until(lambda: counters.count("heartbeats_refused_malformed") == 1, 5.0, "the malformed heartbeat counted")
    assert counters.count("heartbeats_failed") == 0 and counters.count("heartbeats_accepted") == 0
