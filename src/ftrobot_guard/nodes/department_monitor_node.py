"""Department monitor node: verifies every robot's heartbeat and raises alerts (measures 2.3, 6.4b).

Finds heartbeat topics by type (any namespace) or takes a fixed list, verifies each heartbeat
against the trusted department CA certificates, keeps its own timestamp watchdog for silence, and
publishes ``department/alerts`` (ftrobot_msgs/DepartmentAlert) and ``/diagnostics``. It also keeps
the black-box checkpoints each accepted heartbeat carried (witnessed heads) for later audits.

Heartbeats are taken in batches (:class:`~ftrobot_guard.ros.batched_intake.BatchedIntake`), serialized
as DDS delivered them: making rclpy message objects of them would cost more than judging them.
Each one, with its reception, goes to :class:`~ftrobot_guard.department.fleet_monitor.FleetMonitor`,
which reads it (:func:`~ftrobot_guard.department.heartbeat_reading.read_serialized_heartbeat`, with
rclpy's deserializer for what that refuses) and judges every one, malformed ones included. Should
the installed message types no longer have the layout that reader knows, the node takes messages
instead (slower, same verdicts). The reception carries the topic, rmw's receive time and
publication sequence number and, where rclpy reports it (rclpy 9, Kilted; not rclpy 7, Jazzy), the
publisher's gid: the evidence for "one boot session from two publishers". Per heartbeat the node
does no logging and no formatting; counts go to ``/diagnostics`` once a second. The checkpoints a batch
witnessed are written at its end with one fsync (:meth:`WitnessedHeadStore.flush`), before the node shows
them; an unwritable file keeps them queued and is logged and shown on ``/diagnostics`` (ERROR).

Incident reports (``ftrobot_msgs/IncidentReport`` on each robot's ``incidents``, found by type like the
heartbeats) are verified like heartbeats (:meth:`FleetMonitor.on_incident`): an open incident raises an
INCIDENT alert on ``department/alerts`` and shows in the table until the robot reports it acknowledged
(an officer acknowledges with ``ftrobot dept ack INCIDENT_ID``). Few and small, they are taken one by one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ftrobot_msgs.msg import DepartmentAlert, Heartbeat, IncidentReport, TopicHealth
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_msgs.msg import Header

from ftrobot_guard.blackbox.witnessed_heads import WitnessedHead, WitnessedHeadError, WitnessedHeadStore
from ftrobot_guard.department.fleet_monitor import Alert, FleetMonitor, Reception, Refusal, RobotRow
from ftrobot_guard.department.heartbeat_reading import SERIALIZED_LAYOUT, HeartbeatView
from ftrobot_guard.ros.batched_intake import BatchedIntake
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_int,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.ros.qos_profiles import EVENTS, HEARTBEAT_MONITOR, INCIDENTS
from ftrobot_guard.trust.certificates import CertificateError, load_certificates
from ftrobot_guard.trust.signed_fields import message_fields

HEARTBEAT_TYPE = "ftrobot_msgs/msg/Heartbeat"
INCIDENT_TYPE = "ftrobot_msgs/msg/IncidentReport"
DEFAULT_INTAKE_RATE_HZ = 10.0
MAX_QUEUED_S = 1.0  # a receive time further back than this (or ahead) is a wall-clock step, not queueing


# A robot's /diagnostics status goes out when it changes (level, message, name, mode, signature) and, unchanged,
# every ROBOT_STATUS_EVERY s (a third of the fleet each second): the aggregator's default stale time is 5 s.
ROBOT_STATUS_EVERY = 3


@dataclass
class _RobotStatus:
    status: DiagnosticStatus
    values: list[KeyValue]
    slot: int                          # the second (mod ROBOT_STATUS_EVERY) it is repeated in
    published: tuple[Any, ...] | None  # what it last said


def serialized_layout_matches() -> bool:
    """True when the installed Heartbeat (and the types in it) have the layout the serialized reader knows."""
    installed = {"ftrobot_msgs/Heartbeat": Heartbeat, "ftrobot_msgs/TopicHealth": TopicHealth,
                 "std_msgs/Header": Header, "builtin_interfaces/Time": Time}
    return all(installed[name].get_fields_and_field_types() == layout for name, layout in SERIALIZED_LAYOUT.items())


def _deserialize_heartbeat(data: bytes) -> Heartbeat:
    return deserialize_message(data, Heartbeat)


def _received_s(info: dict[str, Any]) -> float:
    """When rmw received a message, on the monotonic clock (the take may come up to one intake period later)."""
    now_s = time.monotonic()
    received_ns = info.get("received_timestamp") or 0  # system clock, ns
    queued_s = (time.time_ns() - received_ns) / 1e9
    return now_s - queued_s if 0.0 < queued_s <= MAX_QUEUED_S else now_s


class DepartmentMonitorNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("department_monitor", **node_kwargs)
        ca_files = declare_string_list(
            self, "trusted_ca_files", [], "Department CA certificates (files or directories)"
        )
        period = declare_double(
            self, "heartbeat_period", 1.0, "Expected heartbeat period of every robot", 0.02, 3600.0, "s"
        )
        silent_periods = declare_int(self, "silent_periods", 3, "Periods without a heartbeat before SILENT", 1, 1000)
        self._topics = declare_string_list(
            self, "heartbeat_topics", [], "Heartbeat topics to watch; empty: every topic of type Heartbeat"
        )
        discovery = declare_double(
            self, "discovery_period", 1.0, "How often to look for new heartbeat topics", 0.1, 60.0, "s"
        )
        check_rate = declare_double(self, "check_rate_hz", 4.0, "Rate of the silence watchdog", 0.1, 100.0, "Hz")
        heads_file = declare_string(
            self, "witnessed_heads_file", "",
            "JSON Lines file keeping witnessed black-box heads ('' = keep in memory only)",
        )
        if not ca_files:
            raise NodeConfigurationError(f"{self.get_name()}: parameter trusted_ca_files is required and was not set")
        try:
            cas = load_certificates(ca_files)
        except CertificateError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter trusted_ca_files: {exc}") from None
        self._monitor = FleetMonitor(cas, period_s=period, silent_periods=silent_periods,
                                     deserialize=_deserialize_heartbeat)
        self._serialized = serialized_layout_matches()
        if not self._serialized:
            self.get_logger().warning("the installed Heartbeat type differs from the layout the fast reader knows:"
                                      " taking heartbeats as messages (slower)")
        try:
            if heads_file:
                Path(heads_file).parent.mkdir(parents=True, exist_ok=True)
            self._heads = WitnessedHeadStore(Path(heads_file) if heads_file else None)
        except (OSError, WitnessedHeadError) as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter witnessed_heads_file: {exc}") from None
        if self._heads.repaired_tail:
            self.get_logger().warning(f"witnessed heads: {self._heads.repaired_tail}")
        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._alert_pub = self.create_publisher(DepartmentAlert, "department/alerts", EVENTS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        intake_rate = declare_double(
            self, "intake_rate_hz", DEFAULT_INTAKE_RATE_HZ,
            "How often queued heartbeats are taken and verified in one batch", 1.0, 1000.0, "Hz",
        )
        self._intake = BatchedIntake(f"{self.get_name()}_intake", self.context, self.get_namespace(),
                                     on_error=self._on_intake_error)
        self.heartbeats_failed = 0
        self._heads_error_logged = ""
        self.create_timer(1.0 / intake_rate, self._drain, clock=self._steady)
        self._subscribed: set[str] = set()
        self._incident_topics: set[str] = set()
        self.incidents_received = 0
        self._alert_listeners: list[Callable[[Alert], None]] = []
        self.heartbeats_received = 0
        self._last_witnessed: dict[str, tuple[str, int, str]] = {}
        self._robot_statuses: dict[str, _RobotStatus] = {}
        self._diagnostics_round = 0
        for topic in self._topics:
            self._subscribe(topic)
            incidents = topic.rsplit("/", 1)[0] + "/incidents"
            self._incident_topics.add(incidents)
            self.create_subscription(IncidentReport, incidents, self._on_incident, INCIDENTS)
        if not self._topics:
            self._discover()
            self.create_timer(discovery, self._discover, clock=self._steady)
        self.create_timer(1.0 / check_rate, self._check, clock=self._steady)
        self.create_timer(1.0, self._publish_diagnostics, clock=self._steady)
        self.get_logger().info(
            f"department monitor: {len(cas)} trusted CA(s), silence after {silent_periods} x {period} s"
        )

    # --- inputs ---------------------------------------------------------------------------------
    def _discover(self) -> None:
        for name, types in self.get_topic_names_and_types():
            if HEARTBEAT_TYPE in types and name not in self._subscribed:
                self._subscribe(name)
            if INCIDENT_TYPE in types and name not in self._incident_topics:
                self._incident_topics.add(name)
                self.create_subscription(IncidentReport, name, self._on_incident, INCIDENTS)
                self.get_logger().info(f"watching incident reports on {name}")

    def _on_incident(self, msg: IncidentReport) -> None:
        self.incidents_received += 1
        outcome = self._monitor.on_incident(message_fields(msg), bytes(msg.signature), now_s=time.monotonic())
        if not outcome.accepted:
            self.get_logger().warning(f"incident report {msg.incident_id[:100]!r} refused: {outcome.reason}",
                                      throttle_duration_sec=5.0)
        if outcome.alerts:
            self._emit(outcome.alerts)

    def open_incidents(self) -> list[Any]:
        """The verified open incidents of every robot (the table and ``ftrobot dept monitor`` show them)."""
        return list(self._monitor.open_incidents())

    def _subscribe(self, topic: str) -> None:
        heard_on: list[str] = []  # the resolved name, known once subscribed
        resolved = self._intake.subscribe(
            Heartbeat, topic, HEARTBEAT_MONITOR, lambda msg, info: self._on_heartbeat(msg, info, heard_on[0]),
            raw=self._serialized,
        )
        heard_on.append(resolved)
        self._subscribed.add(resolved)
        self.get_logger().info(f"watching heartbeats on {resolved}")

    def _on_heartbeat(self, heartbeat: bytes | Heartbeat, info: dict[str, Any], topic: str) -> None:
        self.heartbeats_received += 1
        gid = info.get("publisher_gid")  # rclpy >= 9 only
        reception = Reception(topic, gid["data"] if gid else b"", info.get("publication_sequence_number"))
        outcome = self._monitor.on_heartbeat(heartbeat, _received_s(info), reception)
        view = outcome.view
        if outcome.refusal is None and view is not None and view.log_checkpoint_sequence > 0:
            self._witness(view)
        if outcome.alerts:
            self._emit(outcome.alerts)

    def _witness(self, view: HeartbeatView) -> None:
        key = (view.log_segment_id, view.log_checkpoint_sequence, view.log_chain_head)
        if self._last_witnessed.get(view.identity_number) == key:
            return  # the same checkpoint as this robot's previous heartbeat: already witnessed
        self._last_witnessed[view.identity_number] = key
        head = WitnessedHead(
            identity_number=view.identity_number, segment_id=view.log_segment_id,
            sequence=view.log_checkpoint_sequence, chain_head=view.log_chain_head, witnessed_at_ns=time.time_ns(),
            time_ns=view.log_checkpoint_stamp_ns, signature=view.log_checkpoint_signature,
        )
        if not self._heads.witness(head) and self._heads.last_refusal:  # refused: say so
            self.get_logger().error(f"witnessed head of {view.identity_number}: {self._heads.last_refusal}")
            self._heads.last_refusal = ""

    def _drain(self) -> None:
        """Take the queued heartbeats, then write the batch's witnessed heads with one fsync."""
        try:
            self._intake.drain()
        finally:
            self._flush_heads()

    def _flush_heads(self) -> None:
        # A failed write keeps the heads queued for the next batch; logged once per distinct error (not 10 times
        # a second), shown in /diagnostics until written.
        if self._heads.flush() and not self._heads.heads_lost:
            if self._heads_error_logged:
                self.get_logger().info(f"witnessed heads written to {self._heads.path} again")
                self._heads_error_logged = ""
            return
        if self._heads.last_error != self._heads_error_logged:
            self._heads_error_logged = self._heads.last_error
            self.get_logger().error(f"witnessed heads: {self._heads.last_error}")

    def _on_intake_error(self, topic: str, exc: Exception) -> None:
        # The monitor keeps watching the fleet; the fault is counted, logged and shown in /diagnostics.
        self.heartbeats_failed += 1
        self.get_logger().error(f"heartbeat on {topic} not processed: {type(exc).__name__}: {exc}")

    def _check(self) -> None:
        self._emit(self._monitor.check(time.monotonic()))

    def destroy_node(self) -> None:
        self._intake.destroy()
        self._flush_heads()  # what the last batch witnessed
        super().destroy_node()

    # --- outputs --------------------------------------------------------------------------------
    def add_alert_listener(self, listener: Callable[[Alert], None]) -> None:
        self._alert_listeners.append(listener)

    def rows(self) -> list[RobotRow]:
        return self._monitor.rows(time.monotonic())

    @property
    def witnessed_heads(self) -> WitnessedHeadStore:
        return self._heads

    def _emit(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            msg = DepartmentAlert()
            msg.header.stamp = self._wall.now().to_msg()
            msg.kind = int(alert.kind)
            msg.kind_name = alert.kind.name
            msg.raised = alert.raised
            msg.identity_number = alert.identity_number
            msg.robot_name = alert.robot_name
            msg.detail = alert.detail
            self._alert_pub.publish(msg)
            # Two call sites: rclpy refuses one call site logging at two severities.
            if alert.raised:
                self.get_logger().warning(f"ALERT {alert.kind.name} {alert.identity_number}: {alert.detail}")
            else:
                self.get_logger().info(f"cleared {alert.kind.name} {alert.identity_number}: {alert.detail}")
            for listener in self._alert_listeners:
                listener(alert)

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self._wall.now().to_msg()
        own = DiagnosticStatus(name="department_monitor", hardware_id="department_monitor")
        refused = self._monitor.refused_counts()
        malformed = refused[Refusal.MALFORMED]
        if self.heartbeats_failed:
            own.level = DiagnosticStatus.ERROR
            own.message = f"{self.heartbeats_failed} heartbeat(s) could not be processed (see log)"
        elif self._heads.heads_lost or self._heads_error_logged:
            own.level = DiagnosticStatus.ERROR
            own.message = f"witnessed heads not written: {self._heads.last_error}"
        elif malformed:
            own.level = DiagnosticStatus.WARN
            own.message = f"{malformed} malformed heartbeat(s) refused (see department/alerts)"
        else:
            own.level = DiagnosticStatus.OK
            own.message = f"watching {len(self._subscribed)} heartbeat topic(s)"
        own.values = [KeyValue(key="heartbeats_received", value=str(self.heartbeats_received)),
                      KeyValue(key="incident_reports_received", value=str(self.incidents_received)),
                      KeyValue(key="open_incidents", value=str(len(self._monitor.open_incidents()))),
                      KeyValue(key="heartbeats_accepted", value=str(self._monitor.accepted_count)),
                      KeyValue(key="heartbeats_failed", value=str(self.heartbeats_failed)),
                      KeyValue(key="witnessed_heads_unwritten", value=str(self._heads.pending)),
                      KeyValue(key="witnessed_heads_write_failures", value=str(self._heads.write_failures)),
                      KeyValue(key="witnessed_heads_lost", value=str(self._heads.heads_lost))]
        own.values += [KeyValue(key=f"heartbeats_refused_{reason.name.lower()}", value=str(count))
                       for reason, count in refused.items()]
        array.status.append(own)
        statuses: dict[str, _RobotStatus] = {}
        self._diagnostics_round = (self._diagnostics_round + 1) % ROBOT_STATUS_EVERY
        for row in self.rows():
            # One status per robot, kept and updated in place: 1000 robots need no 5000 new messages a second.
            cached = self._robot_statuses.get(row.identity_number)
            if cached is None:
                values = [KeyValue(key=key) for key in ("robot_name", "safety_mode", "signature", "last_seen_age")]
                status = DiagnosticStatus(name=f"department_monitor: {row.identity_number}",
                                          hardware_id=row.identity_number, values=values)
                cached = _RobotStatus(status, values, len(statuses) % ROBOT_STATUS_EVERY, None)
            statuses[row.identity_number] = cached
            status, values = cached.status, cached.values
            level = DiagnosticStatus.ERROR if row.active_alerts else DiagnosticStatus.OK
            message = ", ".join(kind.name for kind in row.active_alerts) or "healthy"
            state = (level, message, row.robot_name, row.safety_mode, row.signature_state.name)
            if state == cached.published and cached.slot != self._diagnostics_round:
                continue  # unchanged: repeated every ROBOT_STATUS_EVERY s, in its turn
            cached.published = state
            status.level, status.message = level, message
            values[0].value = row.robot_name
            values[1].value = row.safety_mode
            values[2].value = row.signature_state.name
            values[3].value = "never" if row.last_seen_age_s is None else f"{row.last_seen_age_s:.1f}"
            array.status.append(status)
        self._robot_statuses = statuses
        self._diagnostics.publish(array)


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.ros.single_node import run_single_node

    run_single_node(DepartmentMonitorNode, args)
