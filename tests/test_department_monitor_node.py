"""Department monitor on real DDS: verifies heartbeats, raises SILENT and impostor alerts, keeps witnessed heads."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from credentials import heartbeat_overrides, make_fleet
from ftrobot_guard.blackbox.record_format import Checkpoint
from ftrobot_guard.blackbox.witnessed_heads import load_witnessed_heads
from ftrobot_guard.cli.main import main as ftrobot
from ftrobot_guard.fleet_monitor import AlertKind
from ftrobot_guard.keys import load_private_key
from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
from ftrobot_guard.nodes.heartbeat_node import HeartbeatNode
from ftrobot_guard.nodes.qos_profiles import EVENTS, LATCHED
from ftrobot_msgs.msg import DepartmentAlert, LogCheckpoint
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

    def has(self, kind: int, raised: bool = True) -> bool:
        with self.lock:
            return any(a.kind == kind and a.raised == raised for a in self.items)


def _monitor(context: Context, tmp_path: Path, ca: Path) -> DepartmentMonitorNode:
    return DepartmentMonitorNode(
        context=context,
        parameter_overrides=_params({
            "trusted_ca_files": [str(ca)], "heartbeat_period": 0.2, "silent_periods": 3,
            "discovery_period": 0.2, "check_rate_hz": 20.0,
            "witnessed_heads_file": str(tmp_path / "dept" / "heads.jsonl"),
        }),
    )


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

    spinner.remove(robot)
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_SILENT), 5.0, "SILENT on department/alerts")
    assert AlertKind.SILENT in monitor.rows()[0].active_alerts

    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/impostor",
        parameter_overrides=_params(heartbeat_overrides(fleet.impostor, fleet.forger, rate_hz=5.0)),
    ))
    wait_until(lambda: alerts.has(DepartmentAlert.KIND_UNKNOWN_CERTIFICATE), 10.0, "UNKNOWN_CERTIFICATE")
    time.sleep(0.5)
    row = monitor.rows()[0]
    assert AlertKind.SILENT in row.active_alerts, "a forged heartbeat must not clear SILENT"
    assert row.signature_state.value == "contested"


def test_witnessed_heads_are_kept_and_exported(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    fleet = make_fleet(tmp_path)
    monitor = spinner.add(_monitor(ros_context, tmp_path, fleet.department.ca_certificate))
    spinner.add(HeartbeatNode(
        context=ros_context, namespace="/robot1",
        parameter_overrides=_params(heartbeat_overrides(fleet.robot, fleet.department, rate_hz=5.0)),
    ))
    recorder = spinner.add(Node("fake_recorder", context=ros_context, namespace="/robot1"))
    publisher = recorder.create_publisher(LogCheckpoint, "blackbox/checkpoint", LATCHED)
    key = load_private_key(fleet.robot.private_key)
    checkpoint = Checkpoint(fleet.robot.identity_number, "ab" * 16, 42, bytes(range(32)), 1_795_000_000_123_456_789)
    checkpoint = checkpoint.signed(key)  # type: ignore[arg-type]
    msg = LogCheckpoint(identity_number=fleet.robot.identity_number, segment_id=checkpoint.segment_id,
                        sequence=42, chain_head=checkpoint.chain_head.hex(), signature=checkpoint.signature)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(checkpoint.time_ns, 1_000_000_000)
    wait_for_match(publisher)
    publisher.publish(msg)
    wait_until(lambda: monitor.witnessed_heads.heads(fleet.robot.identity_number) != [], 10.0, "a witnessed head")

    out = tmp_path / "heads.json"
    assert ftrobot(["dept", "heads", "--store", str(tmp_path / "dept" / "heads.jsonl"),
                    "--identity", fleet.robot.identity_number, "--out", str(out)]) == 0
    heads = load_witnessed_heads(out)
    assert [(h.sequence, h.chain_head, h.time_ns) for h in heads] == [(42, bytes(range(32)).hex(), checkpoint.time_ns)]
    public_key = load_private_key(fleet.robot.private_key).public_key()
    assert heads[0].signature_valid(public_key)  # type: ignore[arg-type]
