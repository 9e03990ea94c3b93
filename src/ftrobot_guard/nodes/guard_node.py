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
guardian/command               ftrobot_msgs/GuardianCommand        reliable, keep-all
hw/actuation_state             ftrobot_msgs/ActuationState         latched (optional: the hardware's own stops)
=============================  ==================================  =========================================

Out: ``hw/joint_command``, ``hw/cmd_vel`` (reliable), ``guard/out/task_request`` (reliable),
``guard/alive`` (std_msgs/Header at the control rate, best effort), ``safety_state`` (latched, on every
change and at 1 Hz), ``anomalies`` (ftrobot_msgs/Anomaly, reliable, every raise and clear), ``/diagnostics``
(gate, supervisor, each detector), ``guardian/result`` (ftrobot_msgs/GuardianCommandResult, reliable: what
became of each guardian command). Client: ``hw/set_actuation_mode``.

Every automatic SAFE_STOP or POWER_DOWN and every e-stop opens an incident
(:class:`~ftrobot_guard.incidents.incident_ledger.IncidentLedger`): a signed ``ftrobot_msgs/IncidentReport`` on
``incidents`` (reliable, transient-local), re-published until the department acknowledges it through the
``incidents/acknowledge`` service (``ftrobot_msgs/AcknowledgeIncident``, a signed guardian ACKNOWLEDGE).

Guardian commands go to :class:`~ftrobot_guard.safety.guardian_desk.GuardianDesk`: a stop is obeyed before it
is authenticated; everything else acts only when authenticated (registered certificate, not revoked, role
allowed, fresh, nonce never seen, also across a restart: the replay memory, the duty roster and open incidents
live in ``state_directory``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from ftrobot_msgs.msg import (
    ActuationState,
    Anomaly,
    GuardianCommand,
    GuardianCommandResult,
    IncidentReport,
    JointTemperatures,
    SafetyState,
    TaskRequest,
)
from ftrobot_msgs.srv import AcknowledgeIncident, SetActuationMode
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile
from rclpy.serialization import deserialize_message
from rclpy.task import Future
from sensor_msgs.msg import BatteryState, Imu, JointState
from std_msgs.msg import Bool, Header
from trajectory_msgs.msg import JointTrajectory

from ftrobot_guard.guardians.command_authentication import GuardianCommandVerifier
from ftrobot_guard.guardians.duty_roster import DutyRoster, DutyRosterError
from ftrobot_guard.guardians.guardian_commands import GuardianAction
from ftrobot_guard.guardians.guardian_parameters import GuardianParameterError, parse_contacts, parse_role_entries
from ftrobot_guard.guardians.guardian_registry import GuardianRegistry
from ftrobot_guard.guardians.replay_memory import ReplayMemory, ReplayMemoryError
from ftrobot_guard.guardians.revocation_list import RevocationList, RevocationListFile
from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.incidents.incident_ledger import AckOutcome, IncidentLedger
from ftrobot_guard.incidents.incident_report import Incident, incident_fields_mapping, sign_incident
from ftrobot_guard.ros.batched_intake import BatchedIntake
from ftrobot_guard.ros.joint_message_cdr import (
    CdrError,
    JointTrajectoryWriter,
    read_imu,
    read_joint_state,
    read_joint_trajectory,
    read_odometry,
)
from ftrobot_guard.ros.node_parameters import (
    NodeConfigurationError,
    declare_double,
    declare_string,
    declare_string_list,
)
from ftrobot_guard.ros.qos_profiles import (
    COMMANDS,
    EVENTS,
    GUARDIAN_COMMANDS,
    GUARDIAN_RESULTS,
    INCIDENTS,
    LATCHED,
    SENSOR_DATA,
)
from ftrobot_guard.safety.anomaly_detectors import AnomalyReport
from ftrobot_guard.safety.command_gate import BaseGateDecision, GateConfig, JointGateDecision
from ftrobot_guard.safety.envelope import Envelope
from ftrobot_guard.safety.envelope_signature import EnvelopeSignatureError, load_signed_envelope
from ftrobot_guard.safety.guard_core import GuardConfig, GuardCore
from ftrobot_guard.safety.guardian_desk import GuardianDesk, GuardianOutcome
from ftrobot_guard.safety.intrusion_check import AllowlistError, IntrusionCheck, Publisher, parse_allowlist
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import STOP_MEASURES, SupervisorOutput
from ftrobot_guard.safety.tick_intake import DEFAULT_CONTROL_RATE_HZ, TickIntake
from ftrobot_guard.trust.certificates import CertificateError, CertificateVerifier, load_certificates
from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number
from ftrobot_guard.trust.robot_credentials import RobotIdentityError, load_robot_credentials
from ftrobot_guard.trust.signed_fields import message_fields

_NS = 1_000_000_000
# Topics only the guard may publish on (hardware side and its own outputs), and the guard's inputs.
GUARDED_OUTPUTS = ("hw/joint_command", "hw/cmd_vel", "guard/alive", "safety_state", "guard/out/task_request",
                   "guardian/result", "incidents")
GUARD_INPUTS = ("guard/in/joint_command", "guard/in/cmd_vel", "guard/in/task_request")


SENSOR_QUEUE_DEPTH = 1       # the guard judges the newest message of each sensor topic at each tick: DDS keeps no other
JOINT_STATES_QUEUE_DEPTH = 16  # joint_states: a tick's older readings feed the posture estimate (500 Hz at 100 Hz: 5)
UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"
UNNAMED_GRACE_S = 1.0
UNAUTHENTICATED_STOP_REPORT_S = 10.0  # s between incident reports of stops by commands that failed authentication
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
        # Whether the clock runs on ROS time (use_sim_time): read once per parameter change, not per message
        # (rclpy's ros_time_is_active takes a lock and calls into C).
        self._ros_time_active = self.get_clock().ros_time_is_active
        self.add_post_set_parameters_callback(self._after_parameters_set)
        identity = declare_string(self, "identity_number", "", "Robot's department-issued identity number", True)
        envelope_file = declare_string(self, "envelope_file", "", "Operating envelope (YAML) signed by the department",
                                       True)
        signature_file = declare_string(self, "envelope_signature_file", "",
                                        "Detached signature of the envelope ('' = <envelope_file>.sig)")
        ca_files = declare_string_list(self, "department_ca_files", [],
                                       "Department CA certificates whose key signs the envelope")
        self._control_rate = declare_double(self, "control_rate_hz", DEFAULT_CONTROL_RATE_HZ,
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
        state_directory = declare_string(self, "state_directory", "/var/lib/ftrobot/guard",
                                         "Where the guard keeps what must survive a restart: guardian nonces seen, "
                                         "the duty roster, open incidents")
        guardians_dir = declare_string(self, "guardian_certificates_dir", "",
                                       "Directory of the registered guardians' certificates (re-read on change)")
        revocation_file = declare_string(self, "guardian_revocation_file", "",
                                         "Department-signed guardian revocation list (re-read on change; '' = none)")
        roles = declare_string_list(self, "guardian_roles", [],
                                    "Who may do what: 'role=ACTION,ACTION' ([] = the default policy)")
        contacts = declare_string_list(self, "guardian_contacts", [],
                                       "How to reach each guardian: 'GUARDIAN_ID=contact' (named in incidents)")
        first_on_duty = declare_string(self, "guardian_on_duty", "", "Guardian on duty until a signed handover",
                                       True)
        max_skew = declare_double(self, "guardian_max_skew", 5.0,
                                  "A guardian command issued further from now than this is stale or future-dated",
                                  0.5, 300.0, "s")
        key_file = declare_string(self, "private_key_file", "", "Robot Ed25519 private key (signs incident reports)",
                                  True)
        cert_file = declare_string(self, "certificate_file", "", "Department-issued identity certificate", True)
        scope = declare_string(self, "incident_scope", "this robot employee and the people around it at its site",
                               "The scope named in incident reports")
        republish = declare_double(self, "incident_republish_period", 5.0,
                                   "An unacknowledged incident is published again after this", 0.5, 3600.0, "s")
        refresh_period = declare_double(self, "guardian_refresh_period", 2.0,
                                        "Period of re-reading guardian certificates and the revocation list",
                                        0.1, 3600.0, "s")
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
        try:
            self._credentials = load_robot_credentials(self._identity, key_file, cert_file, ca_files,
                                                       dt.datetime.now(dt.UTC))
        except RobotIdentityError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None
        try:
            role_policy = parse_role_entries(roles)
            self._contacts = parse_contacts(contacts)
        except GuardianParameterError as exc:
            raise NodeConfigurationError(f"{self.get_name()}: {exc}") from None
        self._state_directory = Path(state_directory)
        try:
            self._state_directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not os.access(self._state_directory, os.W_OK):
                raise PermissionError(f"{self._state_directory} is not writable")
            self._replay_memory = ReplayMemory(self._state_directory / "guardian_nonces", 4.0 * max_skew)
            self._roster = DutyRoster(self._state_directory / "duty_roster.json", first_on_duty)
            robot = self._credentials.identity
            self._ledger = IncidentLedger(self._state_directory / "incidents", self._identity, robot.robot_name,
                                          robot.department, scope, lambda guardian: self._contacts.get(guardian, ""),
                                          republish)
        except (OSError, ReplayMemoryError, DutyRosterError, ValueError) as exc:
            raise NodeConfigurationError(f"{self.get_name()}: parameter state_directory: {exc}") from None
        self._registry = GuardianRegistry(guardians_dir) if guardians_dir else None
        self._revocations = RevocationListFile(revocation_file, self._trust) if revocation_file else None
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
        self._unauthenticated_reported_at = -math.inf
        self._last_action = ""
        self._incident_msgs: dict[str, tuple[Incident, IncidentReport]] = {}
        self._incident_pub = self.create_publisher(IncidentReport, "incidents", INCIDENTS, event_callbacks=quiet)
        self._unnamed: dict[bytes, float] = {}   # gid of a publisher without a node name -> when first seen
        namespace = self.get_namespace().rstrip("/")
        self._guarded = {f"{namespace}/{topic}": topic for topic in (*GUARDED_OUTPUTS, *GUARD_INPUTS)}
        intrusion = IntrusionCheck([self.get_fully_qualified_name()], allowlist, namespace=self.get_namespace())
        self._core = GuardCore(self, envelope, problem, self._now(), GuardConfig(gate=gate_config), intrusion)
        verifier = GuardianCommandVerifier(
            CertificateVerifier(self._trust), self._registry if self._registry is not None else {}, self._identity,
            role_policy, self._revocations if self._revocations is not None else RevocationList.empty(),
            self._replay_memory, max_skew)
        self._desk = GuardianDesk(self._core, verifier, self._roster)
        self._verifier = verifier
        self._guardian_problems: dict[str, str] = {}
        self._refresh_guardians()
        self._result_pub = self.create_publisher(GuardianCommandResult, "guardian/result", GUARDIAN_RESULTS,
                                                 event_callbacks=quiet)

        # Sensor inputs are taken in one batch at each control tick (ros/batched_intake.py), never one executor
        # dispatch per message: at ~0.45 ms of rclpy overhead per callback, 500 Hz joint_states and imu alone
        # took most of a core and made the guard late for its own inputs. estop and commands stay direct.
        self._intake = BatchedIntake(f"{self.get_name()}_intake", self.context, self.get_namespace(),
                                     on_error=self._on_intake_error)
        def sensor_qos(depth: int) -> QoSProfile:
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                              reliability=SENSOR_DATA.reliability, durability=SENSOR_DATA.durability)

        # Each tick takes the newest message of each topic and, of joint_states, the earlier ones for the
        # posture estimate (safety/tick_intake.py: the policy the simulator harness uses too). DDS keeps up to
        # 16 joint_states between two ticks and replaces any other topic's older message not taken yet.
        # joint_states, imu and odom are read from their CDR bytes (ros/joint_message_cdr.py); whatever that
        # reader refuses, and the other inputs, rclpy deserializes.
        self._sensors: dict[str, tuple[Any, Callable[[Any], None], Callable[[bytes], Any] | None]] = {
            "joint_states": (JointState, self._on_joint_states, read_joint_state),
            "imu": (Imu, self._on_imu, read_imu), "odom": (Odometry, self._on_odom, read_odometry),
            "actuator_temperatures": (JointTemperatures, self._on_temperatures, None),
            "battery": (BatteryState, self._on_battery, None),
        }
        self._tick_intake: TickIntake[bytes] = TickIntake(history_limit=JOINT_STATES_QUEUE_DEPTH)
        for topic, (msg_type, _handler, _reader) in self._sensors.items():
            depth = JOINT_STATES_QUEUE_DEPTH if topic == "joint_states" else SENSOR_QUEUE_DEPTH
            self._intake.subscribe(msg_type, topic, sensor_qos(depth), self._keeper(topic), raw=True)
        self.create_subscription(Bool, "estop", self._on_estop, COMMANDS,
                                 event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        # The hardware's own mode changes (its guard/alive watchdog, an empty battery): optional, a driver
        # without it (Gazebo) is known only from its hw/set_actuation_mode replies.
        self.create_subscription(ActuationState, "hw/actuation_state", self._on_actuation_state, LATCHED,
                                 event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        self.create_subscription(GuardianCommand, "guardian/command", self._on_guardian_command, GUARDIAN_COMMANDS,
                                 event_callbacks=SubscriptionEventCallbacks(use_default_callbacks=False))
        # Joint commands (up to 1 kHz) come in and go out as CDR bytes: no rclpy message objects on this path.
        self._joint_writer = JointTrajectoryWriter()
        self.create_subscription(JointTrajectory, "guard/in/joint_command", self._on_joint_command, COMMANDS,
                                 event_callbacks=self._on_new_publisher(), raw=True)
        self.create_subscription(Twist, "guard/in/cmd_vel", self._on_cmd_vel, COMMANDS,
                                 event_callbacks=self._on_new_publisher())
        self.create_subscription(TaskRequest, "guard/in/task_request", self._on_task_request, COMMANDS,
                                 event_callbacks=self._on_new_publisher())
        self.create_timer(1.0 / self._control_rate, self._on_control)
        self.create_timer(1.0 / self._state_rate, self._repeat_state)
        self.create_timer(1.0 / self._diagnostics_rate, self._publish_diagnostics)
        self.create_timer(intrusion_period, self._check_publishers)
        self.create_timer(self._recheck_period, self._recheck_envelope)
        self.create_timer(refresh_period, self._refresh_guardians)
        self.create_service(AcknowledgeIncident, "incidents/acknowledge", self._on_acknowledge)
        self.create_timer(0.5, self._publish_due_incidents)
        self.get_logger().info(
            f"guard of {self._identity}: envelope {'verified' if envelope is not None else 'REFUSED'} "
            f"({envelope_file}), control rate {self._control_rate:g} Hz, guardian on duty "
            f"{self._roster.on_duty or '(none)'}, "
            f"{len(self._registry.guardian_ids) if self._registry is not None else 0} guardian(s) registered"
        )

    # ------------------------------------------------------------------ helpers

    @property
    def core(self) -> GuardCore:
        return self._core

    def _on_new_publisher(self) -> SubscriptionEventCallbacks:
        """A graph event: a publisher matched (or left) one of the guarded topics; check who it is now."""
        return SubscriptionEventCallbacks(matched=lambda _info: self._check_publishers(), use_default_callbacks=False)

    def _after_parameters_set(self, _parameters: list[Parameter]) -> None:
        self._ros_time_active = self.get_clock().ros_time_is_active  # the TimeSource follows use_sim_time

    def _now(self) -> float:
        if self._ros_time_active:   # use_sim_time: ROS time (/clock)
            return float(self.get_clock().now().nanoseconds) * 1e-9
        return time.time()   # ROS time without a /clock is the system time; rclpy's Time objects cost ~10 µs a call

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

    def _on_actuation_state(self, msg: ActuationState) -> None:
        self._core.hardware_state(self._now(), int(msg.mode), msg.source, msg.reason, int(msg.changes))

    def _on_guardian_command(self, msg: GuardianCommand) -> None:
        outcome = self._desk.handle(self._now(), dt.datetime.now(dt.UTC), message_fields(msg), bytes(msg.signature))
        if outcome.obeyed and not outcome.accepted:
            self._raise_unauthenticated_stop(outcome)
        self._publish_result(outcome)

    def _publish_result(self, outcome: GuardianOutcome) -> None:
        result = GuardianCommandResult()
        result.header.stamp = _stamp(self._now())
        result.guardian_id = outcome.guardian_id
        result.action = outcome.action
        result.nonce = outcome.nonce
        result.accepted = outcome.accepted
        result.obeyed = outcome.obeyed
        result.refusal = outcome.refusal
        result.detail = outcome.detail
        result.mode = int(outcome.mode)
        result.mode_name = outcome.mode.name
        self._result_pub.publish(result)
        text = (f"guardian command {outcome.action} from {outcome.guardian_id}: "
                f"{'accepted' if outcome.accepted else 'refused ' + outcome.refusal}"
                f"{', obeyed' if outcome.obeyed else ''}: {outcome.detail}")
        if outcome.accepted:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        if outcome.duty_changed:
            self._state_msg.guardian_on_duty = self._roster.on_duty
            self._repeat_state()

    # ------------------------------------------------------------------ incidents

    def _on_acknowledge(self, request: AcknowledgeIncident.Request,
                        response: AcknowledgeIncident.Response) -> AcknowledgeIncident.Response:
        command = request.command
        now, wall = self._now(), dt.datetime.now(dt.UTC)
        verdict = self._verifier.check(message_fields(command), bytes(command.signature), now, wall)
        mode = self._core.output.mode
        if not verdict.accepted:
            refusal = verdict.refusal.name if verdict.refusal is not None else "REFUSED"
            outcome = GuardianOutcome(verdict.guardian_id, int(command.action), bytes(command.nonce), False, False,
                                      refusal, verdict.reason, mode)
        elif verdict.action != GuardianAction.ACKNOWLEDGE:
            outcome = GuardianOutcome(verdict.guardian_id, int(command.action), bytes(command.nonce), True, False,
                                      "WRONG_CHANNEL", "incidents/acknowledge takes ACKNOWLEDGE only", mode)
        else:
            incident_id = command.argument
            acknowledged = self._ledger.acknowledge(incident_id, verdict.guardian_id, wall)
            done = acknowledged in (AckOutcome.ACCEPTED, AckOutcome.ALREADY_ACKNOWLEDGED)
            outcome = GuardianOutcome(verdict.guardian_id, int(command.action), bytes(command.nonce), True, done,
                                      "" if done else "UNKNOWN_INCIDENT",
                                      f"incident {incident_id[:120]}: {acknowledged.value}", mode)
            if acknowledged is AckOutcome.ACCEPTED:
                self._publish_due_incidents()
                self._state_msg.open_incidents = self._ledger.open_count
                self._repeat_state()
        self._publish_result(outcome)
        response.accepted = outcome.obeyed
        response.message = outcome.detail if outcome.obeyed else f"{outcome.refusal}: {outcome.detail}"
        return response

    def _publish_due_incidents(self) -> None:
        for incident in self._ledger.due(time.monotonic()):
            cached = self._incident_msgs.get(incident.incident_id)
            if cached is None or cached[0] != incident:   # a re-publication is the same signed report, byte for byte
                cached = self._incident_msgs[incident.incident_id] = (incident, self._incident_message(incident))
            self._incident_pub.publish(cached[1])
            if incident.acknowledged:
                self._incident_msgs.pop(incident.incident_id, None)
        for problem in self._ledger.take_problems():
            self.get_logger().error(f"incidents: {problem}")

    def _incident_message(self, incident: Incident) -> IncidentReport:
        mapping = incident_fields_mapping(incident.report_fields(self._credentials.certificate_der),
                                          dt.datetime.now(dt.UTC))
        msg = IncidentReport()
        for name, value in mapping.items():
            if name == "header":
                msg.header.stamp = TimeMsg(**value["stamp"])
                msg.header.frame_id = value["frame_id"]
            elif name in ("opened_at", "acknowledged_at"):
                setattr(msg, name, TimeMsg(**value))
            else:
                setattr(msg, name, value)
        msg.signature = sign_incident(self._credentials.private_key, message_fields(msg))
        return msg

    def _open_incident(self, output: SupervisorOutput) -> None:
        """A stop opens (or adds to) an incident, kept on disk before anything else is said about it."""
        before = SafetyMode(self._state_msg.mode)
        if output.mode == before and output.action.name == self._last_action:
            return
        self._last_action = output.action.name
        self._record_incident(output, before, output.source, output.cause)

    def _record_incident(self, output: SupervisorOutput, before: SafetyMode, source: str, cause: str) -> None:
        severity = {SafetyMode.ESTOP: 3, SafetyMode.POWER_DOWN: 3, SafetyMode.SAFE_STOP: 2}.get(output.mode, 1)
        measures = STOP_MEASURES[output.action]
        try:
            incident = self._ledger.on_transition(
                dt.datetime.now(dt.UTC), int(before), int(output.mode), source, cause,
                output.active_anomalies, f"{measures} (hardware {output.actuation_request.name})",
                self._roster.on_duty, severity)
        except ValueError as exc:
            self.get_logger().error(f"incident not opened: {exc}")
            return
        if incident is not None:
            self.get_logger().warning(f"incident {incident.incident_id}: {incident.what_happened}")

    def _raise_unauthenticated_stop(self, outcome: GuardianOutcome) -> None:
        """A stop obeyed although its command failed authentication: no guardian answers for it, so it is an
        incident for the department like a stop the robot made by itself (a guardian's own SAFE_STOP is not).
        At most one report every UNAUTHENTICATED_STOP_REPORT_S: a flood of forged stops must not flood the
        incident file; the black box records every command and result."""
        now = time.monotonic()
        if now - self._unauthenticated_reported_at < UNAUTHENTICATED_STOP_REPORT_S:
            return
        self._unauthenticated_reported_at = now
        output = self._core.output
        mode = SafetyMode(output.mode)
        self._record_incident(
            output, mode, f"unauthenticated:{outcome.guardian_id[:64]}",
            f"stop by a guardian command that failed authentication ({outcome.refusal}): {outcome.detail[:200]}")
        self._publish_due_incidents()

    def _refresh_guardians(self) -> None:
        """Re-read the guardian certificates and the revocation list when they changed; say each new problem once."""
        for name, source in (("guardian certificates", self._registry), ("revocation list", self._revocations)):
            if source is None:
                continue
            problem = source.refresh()
            if problem != self._guardian_problems.get(name, ""):
                self._guardian_problems[name] = problem
                if problem:
                    self.get_logger().error(f"{name}: {problem}")
                else:
                    self.get_logger().info(f"{name}: up to date")

    def _on_joint_command(self, raw: bytes) -> None:
        now = self._now()
        try:
            msg: Any = read_joint_trajectory(raw)
        except CdrError:
            try:
                msg = deserialize_message(raw, JointTrajectory)
            except Exception as exc:  # unreadable: refused with its reason, never a crash
                self._core.refuse_command(now, "guard/in/joint_command",
                                          f"unreadable JointTrajectory ({type(exc).__name__}: {exc})")
                return
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
        if self._core.keeps_hardware_alive:  # withheld while a stop goes unconfirmed: the driver's watchdog stops
            self._alive_pub.publish(header)
        self._intake.drain()
        earlier, newest = self._tick_intake.take()
        for raw in earlier:   # oldest first, before the newest: only the posture estimate takes them
            try:
                msg = self._read(raw, JointState, read_joint_state)
                self._core.earlier_joint_states(_seconds(msg.header.stamp), msg.name, msg.position)
            except Exception as exc:  # a malformed message is reported, never fatal to the guard
                self._on_intake_error("joint_states", exc)
        for topic, raw in newest.items():
            msg_type, handler, reader = self._sensors[topic]
            try:
                handler(self._read(raw, msg_type, reader))
            except Exception as exc:  # a malformed message is reported, never fatal to the guard
                self._on_intake_error(topic, exc)
        self._core.tick(now, time.time())

    @staticmethod
    def _read(raw: bytes, msg_type: Any, reader: Callable[[bytes], Any] | None) -> Any:
        if reader is not None:
            try:
                return reader(raw)
            except CdrError:
                pass   # rclpy decides what the fast reader does not read exactly as it would
        return deserialize_message(raw, msg_type)

    def _keeper(self, topic: str) -> Callable[[Any, dict[str, Any]], None]:
        def keep(raw: Any, _info: dict[str, Any]) -> None:
            self._tick_intake.keep(topic, raw)

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
        stamp = _stamp(self._now())
        self._joint_pub.publish(self._joint_writer.write(stamp.sec, stamp.nanosec, decision.names, decision.positions,
                                                         decision.velocities, decision.efforts))

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
        self._open_incident(output)
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
        msg.guardian_on_duty = self._roster.on_duty
        msg.open_incidents = self._ledger.open_count
        self._state_msg = msg
        self._state_pub.publish(msg)
        self._publish_due_incidents()

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

    run_single_node(GuardNode, args, events=True)  # as `ftrobot up guard` runs it (ros/stacks.py)
