"""Recorder node: the black box (docs/design.md, § Black box; docs/blackbox-format.md).

Subscribes to the topics named in ``topics`` as serialized messages (raw CDR bytes with their
type names, as rosbag2 does, so nothing is decoded on the hot path) and routes them by tier
(event / incident / state, see :mod:`ftrobot_guard.blackbox.recording_policy`) into the encrypted,
hash-chained log. A writer thread seals and fsyncs every ``fsync_interval_ms``; a retention thread
deletes expired segments over budget and refreshes the disk figures, so the executor only drains
messages (every 20 ms) and publishes. Publishes the latest durable checkpoint on
``blackbox/checkpoint`` (ftrobot_msgs/LogCheckpoint, latched: the heartbeat carries it to the
department) and the log's state on ``/diagnostics`` (ERROR while writes fail, entries are lost, the
budget is exceeded, or recovery found damage in the log that no power cut explains).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

from ftrobot_guard.blackbox.errors import BlackBoxError
from ftrobot_guard.blackbox.log_writer import FlushThread, LogWriter, WriterKeys, WriterPolicy
from ftrobot_guard.blackbox.recording_policy import TopicSpec, TopicSpecError, TwoTierRecorder, parse_topic_specs
from ftrobot_guard.blackbox.retention import RetentionPolicy, RetentionResult, RetentionWorker
from ftrobot_guard.ros.batched_intake import BatchedIntake, with_depth
from ftrobot_guard.ros.message_types import MessageTypeError, import_message_type
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_int,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.ros.qos_profiles import EVENTS, LATCHED, SENSOR_DATA
from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number
from ftrobot_guard.trust.keys import KeyFileError, load_private_key, load_public_key

_QOS: dict[str, QoSProfile] = {"reliable": EVENTS, "sensor": SENSOR_DATA, "latched": LATCHED}


def _log_checkpoint_type() -> Any:
    try:
        from ftrobot_msgs.msg import LogCheckpoint  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return LogCheckpoint


class RecorderNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("recorder", **node_kwargs)
        name = self.get_name()
        directory = declare_string(self, "log_directory", "", "Black-box log directory", True)
        identity = declare_string(self, "identity_number", "", "Robot identity number, e.g. 440304-RB-2026-000123-8",
                                  True)
        signing_file = declare_string(self, "signing_key_file", "", "Robot Ed25519 private key (PEM, mode 0600)", True)
        auditor_files = declare_string_list(
            self, "auditor_public_key_files", [], "X25519 public keys of the department/auditors the data keys are"
            " wrapped for")
        robot_copy_file = declare_string(self, "robot_copy_public_key_file", "",
                                         "Optional X25519 public key of the robot's own copy ('' = none)")
        cert_file = declare_string(self, "certificate_file", "", "Robot identity certificate embedded in headers")
        topic_texts = declare_string_list(self, "topics", [], "Recorded topics: 'topic|pkg/msg/Type|tier[|hz[|qos]]'")
        self._guardian_default = declare_string(self, "guardian_on_duty", "", "Guardian on duty until one is heard")
        guardian_topic = declare_string(self, "guardian_topic", "safety_state",
                                        "Topic whose 'guardian_on_duty' field names the guardian on duty ('' = off)")
        guardian_type = declare_string(self, "guardian_topic_type", "ftrobot_msgs/msg/SafetyState",
                                       "Message type of guardian_topic")
        policy = WriterPolicy(
            fsync_interval_ms=declare_int(self, "fsync_interval_ms", 100, "Bound on unsynced records", 1, 60_000),
            checkpoint_every_records=declare_int(self, "checkpoint_every_records", 1000, "Checkpoint interval",
                                                 1, 10_000_000),
            checkpoint_every_s=declare_double(self, "checkpoint_every_s", 2.0, "Checkpoint interval", 0.01, 3600.0,
                                              "s"),
            segment_max_bytes=int(declare_double(self, "segment_max_mb", 32.0, "Segment size limit", 0.01, 16384.0,
                                                 "MiB") * 2**20),
            segment_max_age_s=declare_double(self, "segment_max_age_s", 3600.0, "Segment age limit", 1.0, 604800.0,
                                             "s"),
        )
        ring_seconds = declare_double(self, "ring_seconds", 60.0, "Full-rate ring length", 1.0, 3600.0, "s")
        ring_mb = declare_double(self, "ring_max_mb", 64.0, "Full-rate ring memory bound", 1.0, 4096.0, "MiB")
        post_s = declare_double(self, "post_incident_s", 30.0, "Full-rate recording after an incident", 0.0, 3600.0,
                                "s")
        try:
            self._retention = RetentionPolicy(
                retention_days=declare_double(self, "retention_days", 183.0, "Minimum retention", 183.0, 36500.0,
                                              "days"),
                budget_bytes=int(declare_double(self, "disk_budget_gb", 96.0, "Disk budget", 0.001, 100_000.0, "GiB")
                                 * 2**30),
                warn_fraction=declare_double(self, "budget_warn_fraction", 0.8, "Warn at this budget fraction", 0.1,
                                             0.99),
            )
        except ValueError as exc:
            raise NodeConfigurationError(f"{name}: {exc}") from None
        retention_check_s = declare_double(self, "retention_check_s", 60.0, "Retention check period", 1.0, 86400.0,
                                           "s")
        try:
            parse_identity_number(identity)
        except IdentityNumberError as exc:
            raise NodeConfigurationError(f"{name}: parameter identity_number: {exc}") from None
        if not auditor_files:
            raise NodeConfigurationError(f"{name}: parameter auditor_public_key_files is required and was not set")
        if not topic_texts:
            raise NodeConfigurationError(f"{name}: parameter topics is required and was not set")
        try:
            self._specs = parse_topic_specs(topic_texts)
        except TopicSpecError as exc:
            raise NodeConfigurationError(f"{name}: parameter topics: {exc}") from None
        keys = self._load_keys(identity, signing_file, auditor_files, robot_copy_file, cert_file)
        self._identity = identity
        self._signing_key = keys.signing_key
        self._directory = Path(directory)
        types = {}
        for spec in self._specs:
            try:
                types[spec.topic] = import_message_type(spec.type_name)
            except MessageTypeError as exc:
                raise NodeConfigurationError(f"{name}: parameter topics: {spec.topic}: {exc}") from None
        self._writer = LogWriter(self._directory, keys, policy)
        try:
            outcome = self._writer.open()
        except BlackBoxError as exc:
            raise NodeConfigurationError(f"{name}: parameter log_directory: {exc}") from None
        self._damage = outcome.damage  # stays an ERROR on /diagnostics for this run: the log needs an auditor
        for line in outcome.messages:
            if line == self._damage:
                self.get_logger().error(f"black box damaged: {line}")
            else:
                self.get_logger().warning(f"black box recovery: {line}")
        self._recorder = TwoTierRecorder(self._specs, self._writer.append, ring_seconds, int(ring_mb * 2**20), post_s,
                                         backlog_sink=self._writer.append_backlog)
        self._recorder.guardian = self._guardian_default
        self.messages_received = 0
        # Recorded topics are taken in batches (ros/batched_intake.py): per-message executor dispatch
        # cost more CPU than recording. Depth 500 holds 10 s of a 50 Hz topic or 1 s at 500 Hz; a
        # drain runs every 20 ms. Records keep rmw's receive time, not the drain time.
        self.messages_failed = 0
        self._intake = BatchedIntake(f"{name}_intake", self.context, self.get_namespace(),
                                     on_error=self._on_intake_error)
        for spec in self._specs:
            self._intake.subscribe(types[spec.topic], spec.topic, with_depth(_QOS[spec.qos], 500),
                                   self._raw_callback(spec), raw=True)
        if guardian_topic:
            try:
                guardian_cls = import_message_type(guardian_type)
            except MessageTypeError as exc:
                self.get_logger().warning(f"guardian on duty not tracked: {exc}")
            else:
                self.create_subscription(guardian_cls, guardian_topic, self._on_guardian_source, EVENTS)
        checkpoint_type = _log_checkpoint_type()
        self._checkpoint_pub = (self.create_publisher(checkpoint_type, "blackbox/checkpoint", LATCHED)
                                if checkpoint_type is not None else None)
        if checkpoint_type is None:
            self.get_logger().warning("ftrobot_msgs not installed: checkpoints are not published for witnessing")
        self._checkpoint_type = checkpoint_type
        self._published_sequence = -1
        self._flusher = FlushThread(self._writer, self._on_write_error, self._publish_checkpoint)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(0.02, self._intake.drain, clock=steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=steady)
        self._retention_worker = RetentionWorker(self._directory, self._signing_key, identity, self._retention,
                                                 retention_check_s, on_deleted=self._on_retention_deleted,
                                                 on_error=self._on_retention_error)
        self._flusher.start()  # publishes each new durable checkpoint from the writer thread
        self._retention_worker.start()
        self.get_logger().info(
            f"recording {len(self._specs)} topics into {self._directory} (segment {self._writer.segment_path})")

    def _load_keys(self, identity: str, signing_file: str, auditor_files: list[str], robot_copy_file: str,
                   cert_file: str) -> WriterKeys:
        name = self.get_name()
        try:
            signing = load_private_key(signing_file, "ed25519")
            auditors = tuple(load_public_key(f, "x25519") for f in auditor_files)
            robot_copy = load_public_key(robot_copy_file, "x25519") if robot_copy_file else None
        except KeyFileError as exc:
            raise NodeConfigurationError(f"{name}: {exc}") from None
        certificate = b""
        if cert_file:
            from ftrobot_guard.trust.certificates import CertificateError, certificate_der, load_certificate

            try:
                certificate = certificate_der(load_certificate(cert_file))
            except CertificateError as exc:
                raise NodeConfigurationError(f"{name}: parameter certificate_file: {exc}") from None
        assert isinstance(signing, ed25519.Ed25519PrivateKey)
        return WriterKeys(identity, signing, tuple(a for a in auditors if isinstance(a, x25519.X25519PublicKey)),
                          robot_copy if isinstance(robot_copy, x25519.X25519PublicKey) else None, certificate)

    # --- inputs ---------------------------------------------------------------------------------
    def _raw_callback(self, spec: TopicSpec) -> Callable[[bytes, dict[str, Any]], None]:
        def callback(data: bytes, info: dict[str, Any]) -> None:
            received = info.get("received_timestamp") if isinstance(info, dict) else None
            self._on_raw(spec, data, received if isinstance(received, int) and received > 0 else time.time_ns())

        return callback

    def _on_raw(self, spec: TopicSpec, data: bytes, received_ns: int) -> None:
        self.messages_received += 1
        self._recorder.on_message(spec, bytes(data), received_ns)

    def _on_intake_error(self, topic: str, exc: Exception) -> None:
        # Never silent: counted in /diagnostics (messages_failed) and logged; recording continues.
        self.messages_failed += 1
        self.get_logger().error(f"message on {topic} NOT recorded: {type(exc).__name__}: {exc}")

    def _on_guardian_source(self, msg: Any) -> None:
        guardian = getattr(msg, "guardian_on_duty", None)
        if isinstance(guardian, str) and guardian != self._recorder.guardian:
            self._recorder.guardian = guardian

    def _on_write_error(self, exc: BlackBoxError) -> None:
        """Called by the writer thread when a new write failure starts (rclpy loggers are thread-safe)."""
        self.get_logger().error(f"black box write failed: {exc}")

    # --- outputs --------------------------------------------------------------------------------
    def _publish_checkpoint(self) -> None:
        """Called by the writer thread after each successful flush (rclpy publishers are thread-safe)."""
        cp = self._writer.latest_checkpoint
        if cp is None or self._checkpoint_pub is None or cp.sequence == self._published_sequence:
            return
        msg = self._checkpoint_type()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(cp.time_ns, 1_000_000_000)
        msg.identity_number = cp.robot_id
        msg.segment_id = cp.segment_id
        msg.sequence = cp.sequence
        msg.chain_head = cp.chain_head_hex
        msg.signature = list(cp.signature)
        self._checkpoint_pub.publish(msg)
        self._published_sequence = cp.sequence

    def _on_retention_deleted(self, result: RetentionResult) -> None:
        """Called by the retention thread."""
        self.get_logger().info(f"retention deleted {len(result.deleted)} segments older than"
                               f" {self._retention.retention_days:g} days; manifest {result.manifest}")

    def _on_retention_error(self, message: str) -> None:
        """Called by the retention thread when a new failure starts."""
        self.get_logger().error(f"retention: {message}")

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus()
        status.name = f"{self.get_fully_qualified_name()}: black box"
        status.hardware_id = self._identity
        retention = self._retention_worker.status  # figures of the retention thread: no disk I/O here
        retention_error = self._retention_worker.error
        write_error = self._flusher.write_error
        stats = self._writer.stats_snapshot()
        level = DiagnosticStatus.OK
        messages = []
        if self._damage:
            level = DiagnosticStatus.ERROR
            messages.append(f"log damaged (found on start, left as it is): {self._damage}")
        if write_error:
            level = DiagnosticStatus.ERROR
            messages.append(f"write failing: {write_error}")
        if retention_error:
            level = max(level, DiagnosticStatus.WARN)
            messages.append(f"retention check failing: {retention_error}")
        if stats.entries_lost:
            level = DiagnosticStatus.ERROR
            messages.append(f"{stats.entries_lost} entries lost (queue full)")
        if retention is not None and retention.level != "OK":
            level = max(level, DiagnosticStatus.ERROR if retention.level == "ERROR" else DiagnosticStatus.WARN)
            messages.append(retention.message)
        if self.messages_failed:
            level = max(level, DiagnosticStatus.ERROR)
            messages.append(f"{self.messages_failed} message(s) could not be recorded (see log)")
        status.level = level
        status.message = "; ".join(messages) or f"recording, {stats.entries_durable} entries on disk"
        cp = self._writer.latest_checkpoint
        values = {
            "messages_received": str(self.messages_received),
            "messages_failed": str(self.messages_failed),
            "entries_appended": str(stats.entries_appended), "entries_durable": str(stats.entries_durable),
            "entries_lost_total": str(stats.entries_lost_total + stats.entries_lost),
            "bytes_written": str(stats.bytes_written), "segment": str(self._writer.segment_path or ""),
            "checkpoint_sequence": str(cp.sequence if cp else 0),
            "incidents_frozen": str(self._recorder.incidents), "ring_entries": str(len(self._recorder.ring)),
            "guardian_on_duty": self._recorder.guardian,
            "damage": self._damage,
        }
        if retention is not None:
            values.update({f"retention_{k}": v for k, v in retention.as_dict().items()})
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray()
        array.header.stamp = self._wall.now().to_msg()
        array.status = [status]
        self._diagnostics.publish(array)

    def destroy_node(self) -> None:
        intake = getattr(self, "_intake", None)
        if intake is not None:
            intake.drain()  # what already arrived is recorded before the writer closes
            intake.destroy()
        flusher = getattr(self, "_flusher", None)
        if flusher is not None:
            flusher.stop()
        retention_worker = getattr(self, "_retention_worker", None)
        if retention_worker is not None:
            retention_worker.stop()
        writer = getattr(self, "_writer", None)
        if writer is not None:
            try:
                writer.close()
            except BlackBoxError as exc:
                self.get_logger().error(f"black box close failed: {exc}")
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.ros.single_node import run_single_node

    run_single_node(RecorderNode, args)
