"""Guard node: the command gate, the anomaly detectors and the safety supervisor of one robot, in one node.

A thin adapter around :class:`~ftrobot_guard.safety.guard_core.GuardCore`: it turns messages into calls
and the core's decisions into messages. Run it in its own process with a single-threaded executor
(``ftrobot up guard``, or the guard process of ``ftrobot up robot`` / ``robot.launch.py``): nothing else
competes with its control-rate timer, and a dead guard is noticed by the hardware's own watchdog.

Topics (relative to the robot's namespace; docs/design.md, § Topics and QoS):

=============================  ==================================  =========================================
in                             type                                QoS
=============================  ==================================  =========================================
joint_states, imu, odom,       sensor_msgs/JointState, Imu,        sensor data
actuator_temperatures, battery nav_msgs/Odometry, JointTemperatures,
                               sensor_msgs/BatteryState
guard/in/joint_command         trajectory_msgs/JointTrajectory     reliable (one point, as the hardware takes)
guard/in/cmd_vel               geometry_msgs/Twist                 reliable
guard/in/task_request          ftrobot_msgs/TaskRequest            reliable
estop                          std_msgs/Bool (true = stop)         reliable
=============================  ==================================  =========================================

Out: ``hw/joint_command``, ``hw/cmd_vel`` (reliable), ``guard/out/task_request`` (reliable),
``guard/alive`` (std_msgs/Header at the control rate, best effort), ``safety_state`` (latched, on every
change and at 1 Hz), ``anomalies`` (ftrobot_msgs/Anomaly, reliable, every raise and clear), ``/diagnostics``
(gate, supervisor, each detector). Client: ``hw/set_actuation_mode``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ftrobot_msgs.msg import Anomaly, JointTemperatures, SafetyState, TaskRequest
from ftrobot_msgs.srv import SetActuationMode
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.task import Future
from sensor_msgs.msg import BatteryState, Imu, JointState
from std_msgs.msg import Bool, Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.ros.batched_intake import BatchedIntake, with_depth
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.ros.qos_profiles import COMMANDS, EVENTS, LATCHED, SENSOR_DATA
from ftrobot_guard.safety.anomaly_detectors import AnomalyReport
from ftrobot_guard.safety.command_gate import BaseGateDecision, GateConfig, JointGateDecision
from ftrobot_guard.safety.envelope import Envelope
from ftrobot_guard.safety.envelope_signature import EnvelopeSignatureError, load_signed_envelope
from ftrobot_guard.safety.guard_core import GuardConfig, GuardCore
from ftrobot_guard.safety.intrusion_check import AllowlistError, IntrusionCheck, Publisher, parse_allowlist
from ftrobot_guard.safety.supervisor import SupervisorOutput
from ftrobot_guard.trust.certificates import CertificateError, load_certificates
from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number

_NS = 1_000_000_000
# Topics only the guard may publish on (hardware side and its own outputs), and the guard's inputs.
GUARDED_OUTPUTS = ("hw/joint_command", "hw/cmd_vel", "guard/alive", "safety_state", "guard/out/task_request")
GUARD_INPUTS = ("guard/in/joint_command", "guard/in/cmd_vel", "guard/in/task_request")


SENSOR_QUEUE_DEPTH = 50      # messages per sensor topic between two drains (0.1 s of 500 Hz joint_states)
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"
UNNAMED_GRACE_S = 1.0
_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR}


def _seconds(stamp: TimeMsg) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def _stamp(seconds: float) -> TimeMsg:
    ns = max(0, round(seconds * _NS))
    return TimeMsg(sec=ns // _NS, nanosec=ns % _NS)


def _yaw(x: float, y: float, z: float, w: float) -> float:
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class GuardNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("guard", **node_kwargs)
        identity = declare_string(self, "identity_number", "", "Robot's department-issued identity number", True)
        envelope_file = declare_string(self, "envelope_file", "", "Operating envelope (YAML) signed by the department",
                                       True)
        signature_file = declare_string(self, "envelope_signature_file", "",
                                        "Detached signature of the envelope ('' = <envelope_file>.sig)")
        ca_files = declare_string_list(self, "department_ca_files", [],
                                       "Department CA certificates whose key signs the envelope")
        self._control_rate = declare_double(self, "control_rate_hz", 100.0,
                                            "Rate of guard/alive, of the sensor intake and the watchdogs", 50.0,
                                            2000.0, "Hz")
        self._state_rate = declare_double(self, "state_rate_hz", 1.0, "Rate safety_state is repeated at", 0.1, 50.0,
                                          "Hz")
        self._diagnostics_rate = declare_double(self, "diagnostics_rate_hz", 1.0, "/diagnostics rate", 0.1, 10.0, "Hz")
        intrusion_period = declare_double(self, "intrusion_check_period", 0.2,
                                          "Period of the publisher check on guarded topics", 0.01, 10.0, "s")
        self._recheck_period = declare_double(self, "envelope_recheck_period", 60.0,
                                              "Period of the envelope signature re-check (expiry)", 1.0, 86400.0, "s")
        max_age = declare_double(self, "max_command_age", 0.1, "A command stamped earlier than this is stale",
                                 0.001, 5.0, "s")
        max_future = declare_double(self, "max_command_future", 0.02, "A command stamped later than this is refused",
                                    0.0, 1.0, "s")
        allowed = declare_string_list(self, "input_publishers", [],
                                      "Nodes allowed to publish the guard's inputs: 'guard/in/<topic>=<node pattern>'")
        if not ca_files:
            raise NodeConfigurationError(
                f"{self.get_name()}: parameter department_ca_files is required and was not set")
        try:
            self._identity = str(parse_identity_number(identity))
        except IdentityNumberError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter identity_number: {exc}") from None
        try:
            allowlist = parse_allowlist(allowed)
        except AllowlistError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter input_publishers: {exc}") from None
        try:
            self._trust = load_certificates(ca_files)
        except CertificateError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter department_ca_files: {exc}") from None
        self._envelope_file = envelope_file
        self._signature_file = signature_file or None
        envelope, problem = self._load_envelope()
        try:
            gate_config = GateConfig(max_command_age=max_age, max_future=max_future)
        except ValueError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None

        self._wall = Clock(clock_type=ClockType.SYSTEM_TIME)
        # No QoS event handlers on the guard's publishers: each is one more waitable that the executor
        # rebuilds its wait set with at every callback (measured: the wait-set build was half the guard's CPU).
        quiet = PublisherEventCallbacks(use_default_callbacks=False)
        self._anomaly_pub = self.create_publisher(Anomaly, "anomalies", EVENTS, event_callbacks=quiet)
        self._state_pub = self.create_publisher(SafetyState, "safety_state", LATCHED, event_callbacks=quiet)
        self._alive_pub = self.create_publisher(Header, "guard/alive", SENSOR_DATA, event_callbacks=quiet)
        self._joint_pub = self.create_publisher(JointTrajectory, "hw/joint_command", COMMANDS, event_callbacks=quiet)
        self._cmd_vel_pub = self.create_publisher(Twist, "hw/cmd_vel", COMMANDS, event_callbacks=quiet)
        self._task_pub = self.create_publisher(TaskRequest, "guard/out/task_request", COMMANDS, event_callbacks=quiet)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10, event_callbacks=quiet)
        self._hardware = self.create_client(SetActuationMode, "hw/set_actuation_mode")
        self._state_msg = SafetyState()
        self._unnamed: dict[bytes, float] = {}   # gid of a publisher without a node name -> when first seen
        namespace = self.get_namespace().rstrip("/")
        self._guarded = {f"{namespace}/{topic}": topic for topic in (*GUARDED_OUTPUTS, *GUARD_INPUTS)}
        intrusion = IntrusionCheck([self.get_fully_qualified_name()], allowlist, namespace=self.get_namespace())
        self._core = GuardCore(self, envelope, problem, self._now(), GuardConfig(gate=gate_config), intrusion)

        # Sensor inputs are taken in one batch at each control tick (ros/batched_intake.py), never one executor
        # dispatch per message: at ~0.45 ms of rclpy overhead per callback, 500 Hz joint_states and imu alone
        # took most of a core and made the guard late for its own inputs. estop and commands stay direct.
        self._intake = BatchedIntake(f"{self.get_name()}_intake", self.context, self.get_namespace(),
                                     on_error=self._on_intake_error)
        sensor_qos = with_depth(SENSOR_DATA, SENSOR_QUEUE_DEPTH)
        # Each tick takes every queued message (raw bytes, cheap) and reads only the newest of each topic:
        # its age is what the watchdogs judge, and a fault that lasts shows in the newest message too.
        self._sensors: dict[str, tuple[Any, Callable[[Any], None]]] = {
            "joint_states": (JointState, self._on_joint_states), "imu": (Imu, self._on_imu),
            "odom": (Odometry, self._on_odom), "actuator_temperatures": (JointTemperatures, self._on_temperatures),
            "battery": (BatteryState, self._on_battery),
        }
        self._newest: dict[str, bytes] = {}
        for topic, (msg_type, _handler) in self._sensors.items():
            self._intake.subscribe(msg_type, topic, sensor_qos, self._keeper(topic), raw=True)
        self.create_subscription(Bool, "estop", self._on_estop, COMMANDS,
                                 event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        self.create_subscription(JointTrajectory, "guard/in/joint_command", self._on_joint_command, COMMANDS,
                                 event_callbacks=self._on_new_publisher())
        self.create_subscription(Twist, "guard/in/cmd_vel", self._on_cmd_vel, COMMANDS,
                                 event_callbacks=self._on_new_publisher())
        self.create_subscription(TaskRequest, "guard/in/task_request", self._on_task_request, COMMANDS,
                                 event_callbacks=self._on_new_publisher())
        self.create_timer(1.0 / self._control_rate, self._on_control)
        self.create_timer(1.0 / self._state_rate, self._repeat_state)
        self.create_timer(1.0 / self._diagnostics_rate, self._publish_diagnostics)
        self.create_timer(intrusion_period, self._check_publishers)
        self.create_timer(self._recheck_period, self._recheck_envelope)
        self.get_logger().info(
            f"guard of {self._identity}: envelope {'verified' if envelope is not None else 'REFUSED'} "
            f"({envelope_file}), control rate {self._control_rate:g} Hz"
        )

    # ------------------------------------------------------------------ helpers

    @property
    def core(self) -> GuardCore:
        return self._core

    def _on_new_publisher(self) -> SubscriptionEventCallbacks:
        """A graph event: a publisher matched (or left) one of the guarded topics; check who it is now."""
        return SubscriptionEventCallbacks(matched=lambda _info: self._check_publishers(), use_default_callbacks=False)

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _load_envelope(self) -> tuple[Envelope | None, str]:
        try:
            signed = load_signed_envelope(self._envelope_file, self._trust, dt.datetime.now(dt.UTC),
                                          robot_id=self._identity, signature_path=self._signature_file)
        except EnvelopeSignatureError as exc:
            return None, f"envelope refused ({exc.reason.name}): {exc}"
        return signed.envelope, ""

    def _recheck_envelope(self) -> None:
        _envelope, problem = self._load_envelope()
        self._core.envelope_rechecked(self._now(), problem)

    # ------------------------------------------------------------------ inputs

    def _on_joint_states(self, msg: JointState) -> None:
        self._core.joint_states(self._now(), _seconds(msg.header.stamp), msg.name, msg.position, msg.velocity,
                                msg.effort)

    def _on_imu(self, msg: Imu) -> None:
        o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
        self._core.imu(self._now(), _seconds(msg.header.stamp), (o.x, o.y, o.z, o.w), (w.x, w.y, w.z),
                       (a.x, a.y, a.z))

    def _on_odom(self, msg: Odometry) -> None:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        v, w = msg.twist.twist.linear, msg.twist.twist.angular
        self._core.odom(self._now(), _seconds(msg.header.stamp), p.x, p.y, _yaw(q.x, q.y, q.z, q.w), v.x, v.y, w.z,
                        p.z)

    def _on_temperatures(self, msg: JointTemperatures) -> None:
        self._core.temperatures(self._now(), _seconds(msg.header.stamp), msg.name, msg.temperature)

    def _on_battery(self, msg: BatteryState) -> None:
        self._core.battery(self._now(), _seconds(msg.header.stamp), float(msg.percentage))

    def _on_estop(self, msg: Bool) -> None:
        self._core.estop(self._now(), bool(msg.data))

    def _on_joint_command(self, msg: JointTrajectory) -> None:
        now = self._now()
        points = msg.points
        if len(points) != 1:
            self._core.refuse_command(now, "guard/in/joint_command",
                                      f"{len(points)} trajectory points: the hardware takes exactly one")
            return
        point = points[0]
        self._core.joint_command(now, _seconds(msg.header.stamp), msg.joint_names, point.positions, point.velocities,
                                 point.effort, local_time=self._local_time())

    def _on_cmd_vel(self, msg: Twist) -> None:
        self._core.base_velocity(self._now(), (msg.linear.x, msg.linear.y, msg.linear.z),
                                 (msg.angular.x, msg.angular.y, msg.angular.z), self._local_time())

    def _on_task_request(self, msg: TaskRequest) -> None:
        decision = self._core.task_request(self._now(), msg.task_kind, self._local_time())
        if decision is not None and decision.forwarded:
            self._task_pub.publish(msg)

    def _local_time(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def _check_publishers(self) -> None:
        """Who publishes on the guarded topics. A publisher the graph cannot name yet (its node's discovery
        data not arrived: ``_NODE_NAME_UNKNOWN_``) is given ``UNNAMED_GRACE_S`` to be named, then judged."""
        now = time.monotonic()
        unnamed_now: dict[bytes, float] = {}
        for full, _topic in self._guarded.items():
            publishers = []
            for info in self.get_publishers_info_by_topic(full):
                if info.node_name == UNKNOWN_NODE_NAME:
                    gid = bytes(info.endpoint_gid)
                    first = unnamed_now[gid] = self._unnamed.get(gid, now)
                    if now - first < UNNAMED_GRACE_S:
                        continue
                publishers.append(Publisher(info.node_name, info.node_namespace))
            self._core.publishers(self._now(), full, publishers)
        self._unnamed = unnamed_now

    def _on_control(self) -> None:
        now = self._now()
        header = Header()
        header.stamp = _stamp(now)
        header.frame_id = ""
        self._alive_pub.publish(header)
        self._intake.drain()
        newest, self._newest = self._newest, {}
        for topic, raw in newest.items():
            msg_type, handler = self._sensors[topic]
            try:
                handler(deserialize_message(raw, msg_type))
            except Exception as exc:  # a malformed message is reported, never fatal to the guard
                self._on_intake_error(topic, exc)
        self._core.tick(now, time.time())

    def _keeper(self, topic: str) -> Callable[[Any, dict[str, Any]], None]:
        def keep(raw: Any, _info: dict[str, Any]) -> None:
            self._newest[topic] = raw

        return keep

    def _on_intake_error(self, topic: str, error: Exception) -> None:
        self.get_logger().error(f"{topic}: message not handled: {type(error).__name__}: {error}",
                                throttle_duration_sec=1.0)

    def destroy_node(self) -> None:
        # Also called on a node whose __init__ failed (Kilted's rclpy does): the intake may not exist yet.
        intake: BatchedIntake | None = self.__dict__.pop("_intake", None)
        if intake is not None:
            intake.destroy()
        super().destroy_node()

    # ------------------------------------------------------------------ GuardSink

    def forward_joint_command(self, decision: JointGateDecision) -> None:
        msg = JointTrajectory()
        msg.header.stamp = _stamp(self._now())
        msg.joint_names = list(decision.names)
        point = JointTrajectoryPoint()
        point.positions = decision.positions.tolist()
        if decision.velocities is not None:
            point.velocities = decision.velocities.tolist()
        if decision.efforts is not None:
            point.effort = decision.efforts.tolist()
        msg.points = [point]
        self._joint_pub.publish(msg)

    def forward_base_velocity(self, decision: BaseGateDecision) -> None:
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = float(decision.vx), float(decision.vy), float(decision.wz)
        self._cmd_vel_pub.publish(msg)

    def request_actuation(self, mode: ActuationMode, reason: str) -> bool:
        if not self._hardware.service_is_ready():
            return False
        request = SetActuationMode.Request(mode=int(mode), reason=reason[:200])
        future = self._hardware.call_async(request)
        future.add_done_callback(lambda done: self._on_actuation_reply(mode, done))
        return True

    def _on_actuation_reply(self, mode: ActuationMode, future: Future) -> None:
        reply = future.result()
        if reply is None:
            return
        self._core.actuation_reply(self._now(), mode, bool(reply.success), int(reply.mode), reply.message)

    def publish_anomaly(self, report: AnomalyReport) -> None:
        msg = Anomaly()
        msg.header.stamp = _stamp(self._now())
        msg.detector = report.detector
        msg.kind = report.kind
        msg.severity = int(report.severity)
        msg.active = report.active
        msg.subject = report.subject
        msg.value = float(report.value) if math.isfinite(report.value) else math.nan
        msg.limit = float(report.limit)
        msg.description = report.description[:300]
        self._anomaly_pub.publish(msg)
        if report.active and int(report.severity) >= 1:
            self.get_logger().warning(f"anomaly {report.kind} ({report.subject}): {report.description}")

    def publish_state(self, output: SupervisorOutput) -> None:
        msg = SafetyState()
        msg.header.stamp = _stamp(self._now())
        msg.mode = int(output.mode)
        msg.mode_name = output.mode.name
        msg.cause = output.cause
        msg.source = output.source
        msg.since = _stamp(output.since)
        msg.speed_scale = float(output.speed_scale)
        msg.latched = output.latched
        msg.active_anomalies = list(output.active_anomalies)
        msg.transition_count = int(output.transition_count)
        self._state_msg = msg
        self._state_pub.publish(msg)

    def log(self, level: str, text: str) -> None:
        logger = self.get_logger()
        if level == "error":
            logger.error(text)
        elif level == "warn":
            logger.warning(text)
        else:
            logger.info(text)

    def _repeat_state(self) -> None:
        self._state_msg.header.stamp = _stamp(self._now())
        self._state_pub.publish(self._state_msg)

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        name = self.get_fully_qualified_name()
        output = self._core.output
        statuses = []
        supervisor = DiagnosticStatus(name=f"{name}: supervisor", hardware_id=self._identity)
        stopped = output.mode.latched
        supervisor.level = DiagnosticStatus.ERROR if stopped else (
            DiagnosticStatus.WARN if not output.forward_commands else DiagnosticStatus.OK)
        supervisor.message = f"{output.mode.name}: {output.cause}"
        supervisor.values = [
            KeyValue(key="mode", value=output.mode.name), KeyValue(key="action", value=output.action.name),
            KeyValue(key="source", value=output.source), KeyValue(key="forwarding", value=str(output.forward_commands)),
            KeyValue(key="hardware_mode",
                     value=self._core.hardware_mode.name if self._core.hardware_mode is not None else "unknown"),
            KeyValue(key="lowering_phase", value=self._core.lowering_phase or "-"),
            KeyValue(key="active_anomalies", value=", ".join(output.active_anomalies) or "-"),
        ]
        statuses.append(supervisor)
        gate = self._core.gate
        gate_status = DiagnosticStatus(name=f"{name}: gate", hardware_id=self._identity)
        if gate is None:
            gate_status.level = DiagnosticStatus.ERROR
            gate_status.message = "no verified operating envelope: nothing is forwarded"
        else:
            stats = gate.statistics()
            gate_status.level = DiagnosticStatus.OK
            gate_status.message = f"last refusal: {stats.last_refusal}" if stats.last_refusal else "no refusal"
            gate_status.values = [KeyValue(key="anchored", value=str(gate.anchored))] + [
                KeyValue(key=f"{name} {what}", value=str(getattr(counts, what)))
                for name, counts in stats.inputs() for what in ("accepted", "clamped", "refused")
            ]
        statuses.append(gate_status)
        detectors = self._core.detectors
        if detectors is not None:
            for status in detectors.statuses():
                statuses.append(DiagnosticStatus(
                    name=f"{name}: detector {status.detector}", hardware_id=self._identity,
                    level=_LEVELS.get(status.level, DiagnosticStatus.ERROR),
                    message=status.message, values=[KeyValue(key=k, value=v) for k, v in status.values]))
        array = DiagnosticArray()
        array.header.stamp = _stamp(self._now())
        array.status = statuses
        self._diagnostics_pub.publish(array)


def main(args: list[str] | None = None) -> None:
    from ftrobot_guard.ros.single_node import run_single_node

    run_single_node(GuardNode, args)
