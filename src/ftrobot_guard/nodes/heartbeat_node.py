"""Heartbeat node: the robot's signed status report to the supervising department.

Publishes ``heartbeat`` (ftrobot_msgs/Heartbeat) at ``rate_hz`` and at once on every change of
safety mode, plus ``/diagnostics``. Refuses to start unless the identity number, the robot key and
the department certificate agree (docs/design.md, § Trust model). The report itself is built without
ROS (status/heartbeat_report.py); this node copies it into the message and signs it.

``config_digest`` covers exactly the params files the node was started with (``--params-file`` in
its ROS arguments, in order: ros/ros_arguments.py), whether by ``ros2 launch``, ``ros2 run`` or
``ftrobot up``. Watched topics (e.g. 500 Hz joint states) are taken through a batched intake just
before each report, never one executor callback per message: only the newest arrival counts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ftrobot_msgs.msg import Heartbeat, LogCheckpoint, SafetyState, TopicHealth
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from ftrobot_guard.ros.batched_intake import BatchedIntake
from ftrobot_guard.ros.message_types import MessageTypeError, import_message_type, split_topic_and_type
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.ros.qos_profiles import LATCHED, SENSOR_DATA, heartbeat_publisher
from ftrobot_guard.ros.ros_arguments import node_params_files
from ftrobot_guard.safety.modes import UnknownSafetyModeError
from ftrobot_guard.status.heartbeat_report import HeartbeatReport, HeartbeatReporter, LogCheckpointView, RobotIdentity
from ftrobot_guard.status.software_digest import files_digest, installed_software_digest
from ftrobot_guard.status.topic_liveness import TopicWatch
from ftrobot_guard.trust.robot_credentials import RobotIdentityError, load_robot_credentials
from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields

_NS_PER_S = 1_000_000_000


class HeartbeatNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("heartbeat", **node_kwargs)
        self._identity_number = declare_string(
            self, "identity_number", "", "Department-issued identity number, e.g. 440304-RB-2026-000123-8", True
        )
        self._robot_name = declare_string(self, "robot_name", "", "Robot employee's filed name", True)
        self._department = declare_string(self, "department", "", "Using department (使用部门)", True)
        key_file = declare_string(self, "private_key_file", "", "Robot Ed25519 private key (PEM, mode 0600)", True)
        cert_file = declare_string(self, "certificate_file", "", "Department-issued identity certificate", True)
        ca_files = declare_string_list(
            self, "department_ca_files", [], "Department CA certificates the robot's certificate must chain to"
        )
        self._rate_hz = declare_double(self, "rate_hz", 1.0, "Heartbeat rate", 0.1, 50.0, "Hz")
        watched = declare_string_list(
            self, "watched_topics", [], "Inputs whose liveness the heartbeat reports, as 'topic:package/msg/Type'"
        )
        max_age = declare_double(
            self, "watched_max_age", 0.5, "A watched topic older than this is stale", 0.001, 3600.0, "s"
        )
        guardian = declare_string(self, "guardian_on_duty", "",
                                  "Guardian id responsible until the guard's safety_state names one", True)
        if not ca_files:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter department_ca_files is required and was not set"
            )

        try:
            self._credentials = load_robot_credentials(
                self._identity_number, key_file, cert_file, ca_files, dt.datetime.now(dt.UTC)
            )
        except RobotIdentityError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None
        if self._credentials.identity.robot_name != self._robot_name:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter robot_name {self._robot_name!r} differs from the certificate's "
                f"{self._credentials.identity.robot_name!r}"
            )
        params_files = node_params_files(self.context, node_kwargs)
        try:
            config_digest = files_digest(params_files) if params_files else ""
        except OSError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: params file: {exc}") from None

        entries = []
        for entry in watched:
            try:
                topic, type_name = split_topic_and_type(entry)
                entries.append((topic, import_message_type(type_name)))
            except MessageTypeError as exc:
                raise NodeConfigurationError(f"{self.get_name()}: parameter watched_topics: {exc}") from None
        start_s = time.monotonic()
        try:
            watch = TopicWatch([topic for topic, _ in entries], max_age, start_s)
        except ValueError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter watched_topics: {exc}") from None
        # Watched inputs are taken in one batch before each report (ros/batched_intake.py): a 500 Hz topic
        # costs no executor dispatch. Keep-last history keeps the newest arrivals, the only ones that count.
        self._intake = BatchedIntake(f"{self.get_name()}_intake", self.context, self.get_namespace())
        resolved = {
            topic: self._intake.subscribe(msg_type, topic, SENSOR_DATA, self._watched_handler(topic), raw=True)
            for topic, msg_type in entries
        }
        self._reporter = HeartbeatReporter(
            RobotIdentity(self._identity_number, self._robot_name, self._department), watch, resolved,
            installed_software_digest(), config_digest, guardian, start_s,
        )
        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._drain_now_s = start_s
        self._drain_wall_ns = time.time_ns()

        self._publisher = self.create_publisher(Heartbeat, "heartbeat", heartbeat_publisher(1.0 / self._rate_hz))
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(SafetyState, "safety_state", self._on_safety_state, LATCHED)
        self.create_subscription(LogCheckpoint, "blackbox/checkpoint", self._on_checkpoint, LATCHED)
        self._timer = self.create_timer(1.0 / self._rate_hz, self._publish, clock=self._steady)
        self.get_logger().info(
            f"heartbeat of {self._identity_number} ({self._robot_name}) at {self._rate_hz} Hz, "
            f"boot {self._reporter.boot_id[:8]}, config digest over {len(params_files)} params file(s)"
        )

    @property
    def boot_id(self) -> str:
        return self._reporter.boot_id

    def _watched_handler(self, topic: str) -> Callable[[Any, dict[str, Any]], None]:
        def on_watched(_raw: Any, info: dict[str, Any]) -> None:
            self._on_watched(topic, info)

        return on_watched

    def _on_watched(self, topic: str, info: dict[str, Any]) -> None:
        """Arrival time of a watched message on the monotonic clock, from rmw's receive time (ns, UTC)."""
        received_ns = int(info.get("received_timestamp", 0) or 0)
        lag_s = (self._drain_wall_ns - received_ns) / _NS_PER_S if received_ns > 0 else 0.0
        self._reporter.mark_received(topic, self._drain_now_s - max(0.0, lag_s))

    def _on_safety_state(self, msg: SafetyState) -> None:
        """Mode, guardian on duty and open incidents come from the guard; any change is reported at once."""
        try:
            changed = self._reporter.on_safety_mode(msg.mode)
            changed = self._reporter.on_open_incidents(int(msg.open_incidents)) or changed
            changed = self._reporter.on_guardian_on_duty(msg.guardian_on_duty) or changed
        except (UnknownSafetyModeError, ValueError) as exc:
            self.get_logger().error(f"safety_state ignored: {exc}")
            return
        if changed:
            self._publish()

    def _on_checkpoint(self, msg: LogCheckpoint) -> None:
        self._reporter.on_checkpoint(LogCheckpointView(
            sequence=int(msg.sequence), segment_id=msg.segment_id, chain_head=msg.chain_head,
            stamp_ns=int(msg.header.stamp.sec) * _NS_PER_S + int(msg.header.stamp.nanosec),
            signature=bytes(msg.signature),
        ))

    def _build_heartbeat(self) -> Heartbeat:
        self._drain_now_s = time.monotonic()
        self._drain_wall_ns = time.time_ns()
        self._intake.drain()
        report = self._reporter.next_report(self._drain_now_s)
        msg = heartbeat_message(report, self._wall.now().to_msg())
        msg.certificate = self._credentials.certificate_der
        msg.signature = sign_fields(self._credentials.private_key, HEARTBEAT_DOMAIN, message_fields(msg))
        return msg

    def _publish(self) -> None:
        msg = self._build_heartbeat()
        self._publisher.publish(msg)
        self._publish_diagnostics(msg)

    def _publish_diagnostics(self, msg: Heartbeat) -> None:
        stale = [health.topic for health in msg.watched_topics if not health.healthy]
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: heartbeat"
        status.hardware_id = self._identity_number
        if stale:
            status.level = DiagnosticStatus.WARN
            status.message = "stale inputs: " + ", ".join(stale)
        else:
            status.level = DiagnosticStatus.OK
            status.message = f"heartbeat {msg.sequence} sent, mode {msg.safety_mode_name}"
        status.values = [
            KeyValue(key="sequence", value=str(msg.sequence)),
            KeyValue(key="safety_mode", value=msg.safety_mode_name),
            KeyValue(key="guardian_on_duty", value=msg.guardian_on_duty),
            KeyValue(key="open_incidents", value=str(msg.open_incidents)),
            KeyValue(key="software_digest", value=msg.software_digest),
            KeyValue(key="config_digest", value=msg.config_digest),
        ] + [
            KeyValue(key=f"age {h.topic}", value=f"{h.age:.3f}" if h.ever_received else "never")
            for h in msg.watched_topics
        ]
        array = DiagnosticArray()
        array.header.stamp = msg.header.stamp
        array.status = [status]
        self._diagnostics.publish(array)

    def destroy_node(self) -> None:
        # Also called on a node whose __init__ failed (Kilted's rclpy does): the intake may not exist yet.
        intake: BatchedIntake | None = self.__dict__.pop("_intake", None)
        if intake is not None:
            intake.destroy()
        super().destroy_node()


def heartbeat_message(report: HeartbeatReport, stamp: TimeMsg) -> Heartbeat:
    """The report's fields in a message stamped ``stamp``; certificate and signature are left to the caller."""
    msg = Heartbeat()
    msg.header.stamp = stamp
    msg.header.frame_id = ""
    msg.format_version = Heartbeat.FORMAT_VERSION
    msg.identity_number = report.identity_number
    msg.robot_name = report.robot_name
    msg.department = report.department
    msg.boot_id = report.boot_id
    msg.sequence = report.sequence
    msg.uptime = report.uptime_s
    msg.safety_mode = report.safety_mode
    msg.safety_mode_name = report.safety_mode_name
    msg.watched_topics = [
        TopicHealth(topic=h.topic, ever_received=h.ever_received, age=h.age_s, max_age=h.max_age_s, healthy=h.healthy)
        for h in report.watched_topics
    ]
    msg.software_digest = report.software_digest
    msg.config_digest = report.config_digest
    msg.guardian_on_duty = report.guardian_on_duty
    msg.open_incidents = report.open_incidents
    if report.checkpoint is not None:
        checkpoint = report.checkpoint
        msg.log_checkpoint_sequence = checkpoint.sequence
        msg.log_segment_id = checkpoint.segment_id
        msg.log_chain_head = checkpoint.chain_head
        msg.log_checkpoint_stamp = TimeMsg(
            sec=checkpoint.stamp_ns // _NS_PER_S, nanosec=checkpoint.stamp_ns % _NS_PER_S
        )
        msg.log_checkpoint_signature = checkpoint.signature
    return msg


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.ros.single_node import run_single_node

    run_single_node(HeartbeatNode, args)
