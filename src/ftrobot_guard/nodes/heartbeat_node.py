"""Heartbeat node: the robot's signed status report to the supervising department.

Publishes ``heartbeat`` (ftrobot_msgs/Heartbeat) at ``rate_hz`` and at once on every change of
safety mode, plus ``/diagnostics``. Refuses to start unless the identity number, the robot key and
the department certificate agree (DESIGN.md §6).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from ftrobot_guard.message_types import MessageTypeError, import_message_type, split_topic_and_type
from ftrobot_guard.nodes.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.nodes.qos_profiles import LATCHED, SENSOR_DATA, heartbeat_publisher
from ftrobot_guard.robot_identity_check import RobotIdentityError, load_robot_credentials
from ftrobot_guard.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields
from ftrobot_guard.software_digest import files_digest, installed_software_digest
from ftrobot_guard.topic_watch import TopicWatch
from ftrobot_msgs.msg import Heartbeat, LogCheckpoint, SafetyState, TopicHealth

MODE_NAMES = {
    SafetyState.MODE_BOOT: "BOOT",
    SafetyState.MODE_NORMAL: "NORMAL",
    SafetyState.MODE_REDUCED: "REDUCED",
    SafetyState.MODE_SAFE_STOP: "SAFE_STOP",
    SafetyState.MODE_POWER_DOWN: "POWER_DOWN",
    SafetyState.MODE_ESTOP: "ESTOP",
}


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
        max_age = declare_double(self, "watched_max_age", 0.5, "A watched topic older than this is stale", 0.001, 3600.0, "s")
        self._guardian = declare_string(self, "guardian_on_duty", "", "Guardian id responsible now", True)
        config_files = declare_string_list(
            self, "config_files", [], "Parameter files in use; their digest is reported as config_digest"
        )
        if not ca_files:
            raise NodeConfigurationError(f"{self.get_name()}: parameter department_ca_files is required and was not set")

        try:
            self._credentials = load_robot_credentials(
                self._identity_number, key_file, cert_file, ca_files, dt.datetime.now(dt.timezone.utc)
            )
        except RobotIdentityError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None
        if self._credentials.identity.robot_name != self._robot_name:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter robot_name {self._robot_name!r} differs from the certificate's "
                f"{self._credentials.identity.robot_name!r}"
            )
        try:
            self._config_digest = files_digest(config_files) if config_files else ""
        except OSError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter config_files: {exc}") from None
        self._software_digest = installed_software_digest()

        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._start_s = time.monotonic()
        self._boot_id = uuid.uuid4().hex
        self._sequence = 0
        self._mode = SafetyState.MODE_BOOT
        self._mode_name = MODE_NAMES[self._mode]
        self._checkpoint: LogCheckpoint | None = None

        entries = []
        for entry in watched:
            try:
                topic, type_name = split_topic_and_type(entry)
                entries.append((topic, import_message_type(type_name)))
            except MessageTypeError as exc:
                raise NodeConfigurationError(f"{self.get_name()}: parameter watched_topics: {exc}") from None
        self._watch = TopicWatch([topic for topic, _ in entries], max_age, self._start_s)
        self._watch_subscriptions = [
            self.create_subscription(
                msg_type, topic, lambda _raw, t=topic: self._watch.mark(t, time.monotonic()), SENSOR_DATA, raw=True
            )
            for topic, msg_type in entries
        ]
        self._resolved = {topic: sub.topic_name for (topic, _), sub in zip(entries, self._watch_subscriptions)}

        self._publisher = self.create_publisher(Heartbeat, "heartbeat", heartbeat_publisher(1.0 / self._rate_hz))
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(SafetyState, "safety_state", self._on_safety_state, LATCHED)
        self.create_subscription(LogCheckpoint, "blackbox/checkpoint", self._on_checkpoint, LATCHED)
        self._timer = self.create_timer(1.0 / self._rate_hz, self._publish, clock=self._steady)
        self.get_logger().info(
            f"heartbeat of {self._identity_number} ({self._robot_name}) at {self._rate_hz} Hz, boot {self._boot_id[:8]}"
        )

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def _on_safety_state(self, msg: SafetyState) -> None:
        if msg.mode not in MODE_NAMES:
            self.get_logger().error(f"safety_state with unknown mode {msg.mode} ignored")
            return
        changed = msg.mode != self._mode
        self._mode = msg.mode
        self._mode_name = MODE_NAMES[msg.mode]
        if changed:
            self._publish()

    def _on_checkpoint(self, msg: LogCheckpoint) -> None:
        self._checkpoint = msg

    def build_heartbeat(self) -> Heartbeat:
        now_s = time.monotonic()
        self._sequence += 1
        msg = Heartbeat()
        msg.header.stamp = self._wall.now().to_msg()
        msg.header.frame_id = ""
        msg.format_version = Heartbeat.FORMAT_VERSION
        msg.identity_number = self._identity_number
        msg.robot_name = self._robot_name
        msg.department = self._department
        msg.boot_id = self._boot_id
        msg.sequence = self._sequence
        msg.uptime = now_s - self._start_s
        msg.safety_mode = self._mode
        msg.safety_mode_name = self._mode_name
        msg.watched_topics = [
            TopicHealth(
                topic=self._resolved[view.topic], ever_received=view.ever_received, age=view.age_s,
                max_age=view.max_age_s, healthy=view.healthy,
            )
            for view in self._watch.health(now_s)
        ]
        msg.software_digest = self._software_digest
        msg.config_digest = self._config_digest
        msg.guardian_on_duty = self._guardian
        if self._checkpoint is not None:
            msg.log_checkpoint_sequence = self._checkpoint.sequence
            msg.log_segment_id = self._checkpoint.segment_id
            msg.log_chain_head = self._checkpoint.chain_head
            msg.log_checkpoint_stamp = self._checkpoint.header.stamp
            msg.log_checkpoint_signature = self._checkpoint.signature
        msg.certificate = self._credentials.certificate_der
        msg.signature = sign_fields(self._credentials.private_key, HEARTBEAT_DOMAIN, message_fields(msg))
        return msg

    def _publish(self) -> None:
        msg = self.build_heartbeat()
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
            KeyValue(key="software_digest", value=msg.software_digest),
            KeyValue(key="config_digest", value=msg.config_digest),
        ] + [
            KeyValue(key=f"age {h.topic}", value=f"{h.age:.3f}" if h.ever_received else "never") for h in msg.watched_topics
        ]
        array = DiagnosticArray()
        array.header.stamp = msg.header.stamp
        array.status = [status]
        self._diagnostics.publish(array)


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.nodes.single_node import run_single_node

    run_single_node(HeartbeatNode, args)
