"""The guard: command gate, anomaly detectors, supervisor and POWER_DOWN sequencer wired together, without ROS.

Data flows one way: inputs (sensor readings, commands, e-stop, guardian requests, publisher lists) →
checks (:class:`~ftrobot_guard.safety.command_gate.CommandGate`,
:class:`~ftrobot_guard.safety.anomaly_detectors.AnomalyDetectors`,
:class:`~ftrobot_guard.safety.intrusion_check.IntrusionCheck`) → decision
(:class:`~ftrobot_guard.safety.supervisor.Supervisor`) → outputs (a :class:`GuardSink`: forwarded commands,
actuation requests, anomalies, safety state) → record (the black box records every output topic).

The guard node (nodes/guard_node.py) converts messages into calls of :class:`GuardCore` and implements
:class:`GuardSink` with publishers and the hardware's ``hw/set_actuation_mode`` client. Every call runs
to completion synchronously: an ``estop`` reaches :meth:`GuardSink.request_actuation` within the same
callback, never waiting for a timer, another message or DDS.

Rules kept here:

* **BOOT** is left only when the signed envelope verified, ``joint_states`` and ``imu`` are fresh, the
  measured posture is complete and the hardware answered an actuation request. Until then, stale or late
  inputs are recorded but stop nothing (the hardware holds anyway; a driver starting after the guard is no
  fault); every other anomaly stops as always. Without a valid envelope
  the guard stays in BOOT (hardware HOLD) and says why; nothing is ever forwarded without one.
* **Re-anchoring**: when the supervisor allows motion again, the guard waits until the hardware confirms
  NORMAL, re-anchors the gate to the measured posture, then tells the supervisor (``Reanchored``).
* **Actuation**: the hardware mode asked for is the supervisor's, or the POWER_DOWN sequencer's while it
  runs. A request not confirmed within ``actuation_retry`` seconds is repeated; a refused NORMAL is
  retried (the hardware refuses it until it has heard the guard's heartbeat).
* **A stop the hardware does not confirm**: once the robot has left BOOT, a stop mode asked for (HOLD,
  DAMPING, ZERO_TORQUE, POWER_OFF) that the hardware has not confirmed (nor a more stopped one) within
  ``stop_unconfirmed_limit`` seconds raises ``hardware_unresponsive`` (CRITICAL, DAMP whatever the envelope
  says) and the guard withholds ``guard/alive`` (:attr:`GuardCore.keeps_hardware_alive`) until it is
  confirmed: a driver that cannot be reached or will not obey is stopped by its own watchdog (DAMPING), by a
  channel that does not need its request service. The guard never waits on the link for a stop.
* **POWER_DOWN**: action LOWER starts the sequencer (lower to rest through the gate's own commands, then
  DAMPING, then POWER_OFF); action TUCK (a fall under way) has it answer the fall (a protective tuck
  through the gate when falling forwards or backwards, sideways DAMPING; then DAMPING, POWER_OFF), also in
  the middle of a lowering; action DAMP aborts it to DAMPING at once.
* **The hardware's own stops** (``hw/actuation_state``, optional): a change of mode the hardware made by
  itself to a mode more stopped than the guard asks for raises ``hardware_stopped``, so the guard never
  keeps reporting NORMAL for a robot that is not. A first DAMPING (the driver's ``guard/alive`` watchdog
  after the guard stalled) or HOLD (a driver restarted in its start mode) is ERROR: SAFE_STOP, the hardware
  asked for HOLD, which catches a standing robot before it sags (left in DAMPING, it falls: 3.7 m/s). A
  second stop by itself before a guardian's RESET, or a motor power cut (ZERO_TORQUE, POWER_OFF), is
  CRITICAL: DAMP whatever the envelope says (``response_policy.FIXED_RESPONSES``): the guard agrees, then
  powers off. It clears once the hardware is where the guard asks; leaving the stop needs a RESET.
* The detectors' tracking check pauses whenever the gate forwards nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ftrobot_guard.guardians.command_authentication import AuthenticatedReset
from ftrobot_guard.hardware.actuation_modes import STOP_MODES, ActuationMode
from ftrobot_guard.safety.anomaly_detectors import (
    HARDWARE_STOPPED,
    HARDWARE_UNRESPONSIVE,
    AnomalyDetectors,
    AnomalyReport,
    DetectorConfig,
    clip_text,
)
from ftrobot_guard.safety.command_gate import (
    BaseGateDecision,
    CommandGate,
    GateConfig,
    GateMode,
    JointGateDecision,
    TaskGateDecision,
)
from ftrobot_guard.safety.envelope import Envelope
from ftrobot_guard.safety.intrusion_check import IntrusionCheck, Publisher
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.posture_estimate import PostureEstimate
from ftrobot_guard.safety.response_policy import Severity
from ftrobot_guard.safety.rest_lowering import (
    PHASE_LOWERING,
    PHASE_TUCK,
    Lean,
    LoweringConfig,
    LoweringStep,
    PowerDownSequencer,
)
from ftrobot_guard.safety.supervisor import (
    AnomalyEvent,
    StopAction,
    Supervisor,
    SupervisorConfig,
    SupervisorOutput,
)

BOOT_INPUTS = ("joint_states", "imu")
# Input anomalies that, before the self-check has passed, only keep the robot in BOOT (they are recorded,
# not escalated): a cold start where the hardware driver comes up after the guard is not a fault.
BOOT_WAITS_FOR = frozenset({"input_stale", "input_late"})
# hw/actuation_state sources (ftrobot_msgs/ActuationState): a change the guard asked for, and the driver's
# start mode (the first state a guard receives; later, a driver that restarted under it).
REQUESTED_SOURCE = "request"
START_SOURCE = "start"


class GuardSink(Protocol):
    """Where the guard's decisions go (the node: publishers and the hardware client)."""

    def forward_joint_command(self, decision: JointGateDecision) -> None: ...

    def forward_base_velocity(self, decision: BaseGateDecision) -> None: ...

    def request_actuation(self, mode: ActuationMode, reason: str) -> bool:
        """Send the request to the hardware; False when it could not be sent now (no service yet)."""
        ...

    def publish_anomaly(self, report: AnomalyReport) -> None: ...

    def publish_state(self, output: SupervisorOutput) -> None: ...

    def log(self, level: str, text: str) -> None:
        """level: "info", "warn" or "error"."""
        ...


@dataclass(frozen=True)
class GuardConfig:
    actuation_retry: float = 0.25        # s before an unconfirmed or refused actuation request is repeated
    boot_settle: float = 0.5             # s the inputs must have been fresh before the self-check passes
    gate_report_interval: float = 1.0    # s: a lasting refusal or clamp with a new reason is reported again after this
    stop_unconfirmed_limit: float = 1.0  # s a requested stop may go unconfirmed before guard/alive is withheld
    refusal_log_interval: float = 10.0   # s: a refusal the hardware repeats is logged again, with its count, after this
    gate: GateConfig = field(default_factory=GateConfig)
    detectors: DetectorConfig = field(default_factory=DetectorConfig)
    lowering: LoweringConfig = field(default_factory=LoweringConfig)

    def __post_init__(self) -> None:
        for name in ("actuation_retry", "boot_settle", "gate_report_interval", "stop_unconfirmed_limit",
                     "refusal_log_interval"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 < value <= 60.0):
                raise ValueError(f"{name} must be in (0, 60] s, got {value!r}")


def tilt_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Angle (rad) between the body's up axis and world up, from an orientation quaternion (any norm)."""
    norm = x * x + y * y + z * z + w * w
    if not math.isfinite(norm) or norm <= 0.0:
        return math.nan
    cos_tilt = 1.0 - 2.0 * (x * x + y * y) / norm
    return math.acos(max(-1.0, min(1.0, cos_tilt)))


def _sort_of(reason: str) -> str:
    """The sort of a gate reason: its first word ("stale", "position", "non-finite", ...)."""
    return reason.split(None, 1)[0].rstrip(":") if reason else ""


@dataclass
class _Actuation:
    requested: ActuationMode | None = None
    requested_at: float = -math.inf
    sent: bool = False
    confirmed: ActuationMode | None = None
    reason: str = ""
    stop_unconfirmed_since: float | None = None   # when the stop now wanted was first left unconfirmed
    unresponsive: AnomalyReport | None = None     # the raised hardware_unresponsive, until the stop is confirmed
    refusal: tuple[str, str] | None = None        # (asked, in effect) of the refusal last logged
    refusal_logged_at: float = -math.inf
    refusals_unlogged: int = 0                    # the same refusal since that line, said in the next one
    refusals: int = 0                             # refusals in a row (until the hardware accepts a request)


class GuardCore:
    """One robot's guard. ``envelope`` is None when the signed envelope was refused (``boot_failure`` says why)."""

    def __init__(self, sink: GuardSink, envelope: Envelope | None, boot_failure: str, now: float,
                 config: GuardConfig | None = None, intrusion: IntrusionCheck | None = None) -> None:
        self._sink = sink
        self._config = config or GuardConfig()
        self._envelope = envelope
        self._envelope_problem = "" if envelope is not None else (boot_failure or "no operating envelope")
        supervisor_config = SupervisorConfig.from_envelope(envelope) if envelope is not None else SupervisorConfig()
        self._supervisor = Supervisor(supervisor_config, now)
        self._gate = CommandGate(envelope, self._config.gate) if envelope is not None else None
        self._detectors = AnomalyDetectors(envelope, self._config.detectors, now) if envelope is not None else None
        self._intrusion = intrusion
        self._count = len(envelope.joints) if envelope is not None else 0
        self._index = dict(envelope.joints.index) if envelope is not None else {}
        self._measured = np.full(self._count, math.nan)
        self._posture = PostureEstimate(self._count)   # where a lowering starts: the noise averaged out
        self._last_input: dict[str, float] = {}
        self._fresh_since: float | None = None
        self._tilt = math.nan
        self._lean: Lean | None = None
        self._battery = math.nan
        self._pose: tuple[float, float, float] | None = None
        self._pose_time = -math.inf
        self._actuation = _Actuation()
        self._sequencer: PowerDownSequencer | None = None
        self._sequencer_step: LoweringStep | None = None
        self._sequencer_stepped_at = -math.inf
        self._lowering_anchored = False
        self._gate_events: dict[tuple[str, str], AnomalyReport] = {}
        self._gate_raised_at: dict[tuple[str, str], float] = {}
        self._published_anomalies: tuple[str, ...] = ()
        self._hardware_changes: int | None = None   # ActuationState.changes last taken
        self._hardware_stop: AnomalyReport | None = None  # the raised hardware_stopped, until the guard agrees
        self._hardware_trips = 0                     # stops the hardware made by itself since the robot last ran
        self._now = now
        if self._envelope_problem:
            self._sink.log("error", f"staying in BOOT: {self._envelope_problem}")
            self._supervisor.boot_check(False, self._envelope_problem, now)
        self._publish_state(self._supervisor.output)
        self._send_actuation(now)

    # ------------------------------------------------------------------ state

    @property
    def output(self) -> SupervisorOutput:
        return self._supervisor.output

    @property
    def envelope(self) -> Envelope | None:
        return self._envelope

    @property
    def gate(self) -> CommandGate | None:
        return self._gate

    @property
    def detectors(self) -> AnomalyDetectors | None:
        return self._detectors

    @property
    def hardware_mode(self) -> ActuationMode | None:
        return self._actuation.confirmed

    @property
    def keeps_hardware_alive(self) -> bool:
        """Whether ``guard/alive`` goes out: False while a stop the guard asked for is left unconfirmed
        (``hardware_unresponsive``), so that the driver's own watchdog stops the robot."""
        return self._actuation.unresponsive is None

    @property
    def lowering_phase(self) -> str:
        return self._sequencer_step.phase if self._sequencer_step is not None else ""

    # ------------------------------------------------------------------ sensor inputs

    def joint_states(self, now: float, stamp: float, names: Sequence[str], positions: Sequence[float],
                     velocities: Sequence[float], efforts: Sequence[float]) -> None:
        self._now = now
        if self._detectors is None:
            return
        self._mark("joint_states", now)
        self._take_positions(stamp, names, positions)
        self._reports(self._detectors.joint_states(now, stamp, names, positions, velocities, efforts), now)

    def earlier_joint_states(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        """A ``joint_states`` reading older than the newest one taken in the same tick (the node takes the
        sensors in a batch per tick and judges the newest): only the posture estimate learns from it, so that it
        averages every reading, not one per tick. Give them oldest first, before the newest."""
        if self._detectors is not None:
            self._take_positions(stamp, names, positions)

    def _take_positions(self, stamp: float, names: Sequence[str], positions: Sequence[float]) -> None:
        """The measured posture (model order) and its estimate, from a reading's positions (by stamp)."""
        if len(positions) != len(names):
            return
        for name, value in zip(names, positions, strict=True):
            i = self._index.get(name)
            if i is not None:
                self._measured[i] = value if math.isfinite(value) else math.nan
        self._posture.add(stamp, self._measured)

    @property
    def posture_estimate(self) -> PostureEstimate:
        """The recent joint readings a lowering starts from (read-only use: diagnostics and tests)."""
        return self._posture

    def imu(self, now: float, stamp: float, orientation_xyzw: Sequence[float], angular_velocity: Sequence[float],
            linear_acceleration: Sequence[float]) -> None:
        self._now = now
        if self._detectors is None:
            return
        self._mark("imu", now)
        if len(orientation_xyzw) == 4 and len(angular_velocity) == 3:
            self._tilt = tilt_from_quaternion(*(float(v) for v in orientation_xyzw))
            self._lean = Lean.from_imu(orientation_xyzw, angular_velocity)
        self._reports(self._detectors.imu(now, stamp, orientation_xyzw, angular_velocity, linear_acceleration), now)

    def odom(self, now: float, stamp: float, x: float, y: float, yaw: float, vx: float, vy: float, wz: float,
             z: float = math.nan) -> None:
        self._now = now
        if self._detectors is None:
            return
        self._mark("odom", now)
        if all(math.isfinite(v) for v in (x, y, yaw)):
            self._pose, self._pose_time = (x, y, yaw), now
        self._reports(self._detectors.odom(now, stamp, x, y, yaw, vx, vy, wz, z), now)

    def temperatures(self, now: float, stamp: float, names: Sequence[str], celsius: Sequence[float]) -> None:
        self._now = now
        if self._detectors is None:
            return
        self._mark("actuator_temperatures", now)
        self._reports(self._detectors.temperatures(now, stamp, names, celsius), now)

    def battery(self, now: float, stamp: float, fraction: float) -> None:
        self._now = now
        if self._detectors is None:
            return
        self._mark("battery", now)
        self._battery = fraction
        self._reports(self._detectors.battery(now, stamp, fraction), now)

    def _mark(self, name: str, now: float) -> None:
        self._last_input[name] = now

    def _inputs_fresh(self, now: float) -> bool:
        if self._envelope is None:
            return False
        for name in BOOT_INPUTS:
            seen = self._last_input.get(name)
            if seen is None or now - seen > self._envelope.input_max_age.get(name, 0.1):
                return False
        return True

    # ------------------------------------------------------------------ e-stop and guardians' entry points

    def estop(self, now: float, engaged: bool, source: str = "estop") -> None:
        """``estop`` (std_msgs/Bool): true stops at once; false releases nothing (a RESET is needed)."""
        self._now = now
        if not engaged:
            if self.output.mode == SafetyMode.ESTOP:
                self._sink.log("info", "estop released: the robot stays in ESTOP until a guardian's RESET")
            return
        self._apply(self._supervisor.estop(source, "e-stop message", now), now)

    def stop(self, now: float, mode: SafetyMode, source: str, cause: str, damp: bool = False) -> SupervisorOutput:
        self._now = now
        output = self._supervisor.stop(mode, source, cause, now, damp=damp)
        self._apply(output, now)
        return output

    def reduce(self, now: float, source: str, cause: str) -> SupervisorOutput:
        output = self._supervisor.reduce(source, cause, now)
        self._apply(output, now)
        return output

    def pause(self, now: float, source: str, cause: str) -> SupervisorOutput:
        self._now = now
        output = self._supervisor.pause(source, cause, now)
        self._apply(output, now)
        return output

    def resume(self, now: float, source: str, cause: str) -> SupervisorOutput:
        output = self._supervisor.resume(source, cause, now)
        self._apply(output, now)
        return output

    def reset(self, now: float, authorization: AuthenticatedReset, cause_cleared: bool) -> SupervisorOutput:
        """The guardians' RESET: ``authorization`` from the guardian command verifier."""
        output = self._supervisor.reset(authorization, cause_cleared, now)
        self._apply(output, now)
        return output

    # ------------------------------------------------------------------ commands

    def _gate_mode(self) -> GateMode:
        output = self.output
        return GateMode(forward=output.forward_commands, reduced=output.mode == SafetyMode.REDUCED,
                        mode_name=output.mode.name if not output.reanchor_required else f"{output.mode.name} "
                        "(re-anchoring)")

    def joint_command(self, now: float, stamp: float, names: Sequence[str], positions: Sequence[float],
                      velocities: Sequence[float], efforts: Sequence[float], local_time: dt.datetime,
                      topic: str = "guard/in/joint_command") -> JointGateDecision | None:
        self._now = now
        self._command_received(now, topic)
        if self._gate is None:
            self._sink.log("warn", f"{topic}: refused: {self._envelope_problem}")
            return None
        if self._sequencer is not None:
            self._gate_event(topic, "command_refused", f"refused: the guard is running POWER_DOWN "
                             f"({self.lowering_phase})", True)
            return None
        decision = self._gate.joint_command(now, stamp, names, positions, velocities, efforts, self._gate_mode(),
                                            local_time=local_time)
        self._after_gate(topic, decision.forwarded, decision.reason, bool(decision.clamps))
        if decision.forwarded:
            self._sink.forward_joint_command(decision)
            if self._detectors is not None:
                self._reports(self._detectors.command_forwarded(now, decision.indices, decision.positions), now)
        return decision

    def refuse_command(self, now: float, topic: str, reason: str) -> None:
        """A command the node could not even read (e.g. a trajectory with other than one point)."""
        self._now = now
        self._command_received(now, topic)
        self._gate_event(topic, "command_refused", reason, True)

    def base_velocity(self, now: float, linear: Sequence[float], angular: Sequence[float],
                      local_time: dt.datetime, topic: str = "guard/in/cmd_vel") -> BaseGateDecision | None:
        self._now = now
        self._command_received(now, topic)
        if self._gate is None:
            self._sink.log("warn", f"{topic}: refused: {self._envelope_problem}")
            return None
        decision = self._gate.base_velocity(now, linear, angular, self._gate_mode(), self._pose,
                                            now - self._pose_time, local_time)
        self._after_gate(topic, decision.forwarded, decision.reason, bool(decision.clamps))
        if decision.forwarded:
            self._sink.forward_base_velocity(decision)
        return decision

    def task_request(self, now: float, task_kind: str, local_time: dt.datetime,
                     topic: str = "guard/in/task_request") -> TaskGateDecision | None:
        self._now = now
        self._command_received(now, topic)
        if self._gate is None:
            self._sink.log("warn", f"{topic}: task {task_kind[:64]!r} refused: {self._envelope_problem}")
            return None
        decision = self._gate.task_request(now, task_kind, self._gate_mode(), local_time)
        if not decision.forwarded:
            self._publish_gate_anomaly(topic, "task_refused", decision.reason, True, value=0.0)
            self._sink.log("warn", f"{topic}: task {task_kind[:64]!r} refused: {decision.reason}")
        return decision

    def _command_received(self, now: float, topic: str) -> None:
        if self._detectors is not None:
            self._reports(self._detectors.command_received(now, topic), now)

    def _after_gate(self, topic: str, forwarded: bool, reason: str, clamped: bool) -> None:
        mode_refusal = not forwarded and not self.output.forward_commands
        if forwarded:
            self._gate_event(topic, "command_refused", "", False)
            self._gate_event(topic, "command_clamped", reason, clamped)
        elif not mode_refusal:
            self._gate_event(topic, "command_refused", reason, True)

    def _gate_event(self, topic: str, kind: str, reason: str, active: bool) -> None:
        """Raise a gate anomaly when it starts, clear it when it ends. While it lasts, a reason of another
        sort (its first word differs: "stale" after "position") is raised at once; the same sort with new
        numbers at most every ``gate_report_interval`` s (a 500 Hz stream of refusals is not 500 reports)."""
        key = (kind, topic)
        current = self._gate_events.get(key)
        if active:
            same_sort = current is not None and _sort_of(current.description) == _sort_of(reason)
            recent = self._now - self._gate_raised_at.get(key, -math.inf) < self._config.gate_report_interval
            if current is None or (current.description != reason and not (same_sort and recent)):
                self._gate_raised_at[key] = self._now
                self._publish_gate_anomaly(topic, kind, reason, True)
                self._sink.log("warn", f"{topic}: {kind.replace('_', ' ')}: {reason}")
        elif current is not None:
            self._publish_gate_anomaly(topic, kind, "", False)

    def _publish_gate_anomaly(self, topic: str, kind: str, reason: str, active: bool, value: float = 0.0) -> None:
        key = (kind, topic)
        report = AnomalyReport(detector="gate", kind=kind, severity=Severity.INFO, active=active, subject=topic,
                               value=value, limit=0.0, description=reason or f"{kind} ended")
        if active and kind != "task_refused":
            self._gate_events[key] = report
        else:
            self._gate_events.pop(key, None)
        self._sink.publish_anomaly(report)

    # ------------------------------------------------------------------ graph

    def publishers(self, now: float, topic: str, publishers: Sequence[Publisher]) -> None:
        if self._intrusion is not None:
            self._reports(self._intrusion.publishers(now, topic, publishers), now)

    # ------------------------------------------------------------------ hardware replies and periodic work

    def actuation_reply(self, now: float, requested: ActuationMode, success: bool, mode: int, message: str) -> None:
        try:
            in_effect = ActuationMode(mode)
        except ValueError:
            self._sink.log("error", f"hw/set_actuation_mode answered an unknown mode {mode!r}: {message}")
            return
        self._actuation.confirmed = in_effect
        if success:
            self._refusals_ended(requested)
        else:
            self._refused(now, requested, in_effect, message)
        self._reanchor_if_due(now)

    def _refused(self, now: float, requested: ActuationMode, in_effect: ActuationMode, message: str) -> None:
        """Log a refusal by the hardware: a new one (another mode asked for or in effect) at once, the same one
        again (it is retried every ``actuation_retry``) once per ``refusal_log_interval`` with its newest message
        and how often it came meanwhile; none goes uncounted."""
        state = self._actuation
        state.refusals += 1
        refusal = (requested.name, in_effect.name)
        if refusal == state.refusal and now - state.refusal_logged_at < self._config.refusal_log_interval:
            state.refusals_unlogged += 1
            return
        repeated = ""
        if refusal == state.refusal:
            repeated = (f" (refused {state.refusals_unlogged + 1} times in the last "
                        f"{now - state.refusal_logged_at:.1f} s, {state.refusals} in a row)")
        elif state.refusals_unlogged:
            repeated = f" (the previous refusal came {state.refusals_unlogged} more times after its last line)"
        state.refusal, state.refusal_logged_at, state.refusals_unlogged = refusal, now, 0
        self._sink.log("warn", f"hardware refused {requested.name}: {clip_text(message)} (in effect: "
                       f"{in_effect.name}); retrying every {self._config.actuation_retry:g} s{repeated}")

    def _refusals_ended(self, requested: ActuationMode) -> None:
        state = self._actuation
        if state.refusals:
            self._sink.log("info", f"the hardware accepted {requested.name} after {state.refusals} refusal(s) in a row")
        state.refusal, state.refusal_logged_at, state.refusals_unlogged, state.refusals = None, -math.inf, 0, 0

    def hardware_state(self, now: float, mode: int, source: str, reason: str, changes: int) -> None:
        """The hardware's mode as it announces it (``hw/actuation_state``, at start and on every change)."""
        self._now = now
        if changes == self._hardware_changes:
            return  # the latched copy of a change already taken
        first, self._hardware_changes = self._hardware_changes is None, changes
        source, reason = clip_text(source), clip_text(reason)   # from a message: any size, any bytes
        try:
            in_effect = ActuationMode(mode)
        except ValueError:
            self._sink.log("error", f"hw/actuation_state announced an unknown mode {mode!r} ({source}: {reason})")
            return
        if first:
            # What the hardware did before this guard started is history (a restart re-enters BOOT, which asks
            # the hardware for its mode anyway); it is said, not judged.
            if source not in (REQUESTED_SOURCE, START_SOURCE):
                self._sink.log("warn", f"the hardware is in {in_effect.name} since before this guard started "
                               f"({source}: {reason})")
            return
        if source == REQUESTED_SOURCE:
            return  # the guard's own request (its reply confirms it); a later "start" is a driver that restarted
        self._actuation.confirmed = in_effect
        wanted = self._wanted_actuation()
        if in_effect <= wanted:
            self._sink.log("info", f"hardware went to {in_effect.name} by itself ({source}: {reason}); the guard "
                           f"asks for {wanted.name} already")
            return
        if self.output.mode.forwards_motion:
            self._hardware_trips = 0  # the robot ran since the last one: a first stop again
        self._hardware_trips += 1
        held = in_effect <= ActuationMode.DAMPING and self._hardware_trips == 1   # a first HOLD or DAMPING
        severity = Severity.ERROR if held else Severity.CRITICAL
        answer = "the guard holds the robot" if held else "the guard agrees with DAMPING, then power off"
        report = AnomalyReport(
            "hardware", HARDWARE_STOPPED, severity, True, source, float(in_effect), float(wanted),
            f"the hardware went to {in_effect.name} by itself ({source}: {reason}) while the guard asked for "
            f"{wanted.name}: {answer}", now)
        self._hardware_stop = report
        self._reports([report], now)

    def _hardware_stop_agreed(self, now: float) -> None:
        """Clear ``hardware_stopped`` once the hardware is where the guard asks (or less stopped)."""
        report, confirmed = self._hardware_stop, self._actuation.confirmed
        if report is None or confirmed is None or confirmed > self._wanted_actuation():
            return
        self._hardware_stop = None
        self._clear_hardware_report(report, confirmed, now, "as the guard asks")

    def _clear_hardware_report(self, report: AnomalyReport, confirmed: ActuationMode | None, now: float,
                               note: str = "") -> None:
        """Publish the clearing of a raised hardware anomaly: value the mode in effect, limit the mode wanted."""
        in_effect = confirmed.name if confirmed is not None else "unknown"
        self._reports([AnomalyReport(report.detector, report.kind, report.severity, False, report.subject,
                                     float(confirmed) if confirmed is not None else math.nan,
                                     float(self._wanted_actuation()),
                                     f"the hardware is in {in_effect}{', ' + note if note else ''}", now)], now)

    def _stop_confirmed_check(self, now: float) -> None:
        """Raise ``hardware_unresponsive`` (and withhold ``guard/alive``) when a stop asked for stays unconfirmed
        for ``stop_unconfirmed_limit``; clear it once the hardware is in that stop or a more stopped mode."""
        state, wanted = self._actuation, self._wanted_actuation()
        confirmed = state.confirmed
        waiting = (wanted in STOP_MODES and self.output.mode != SafetyMode.BOOT
                   and (confirmed is None or confirmed < wanted))
        if not waiting:
            state.stop_unconfirmed_since = None
            report, state.unresponsive = state.unresponsive, None
            if report is not None:
                in_effect = confirmed.name if confirmed is not None else "unknown"
                self._sink.log("warn", f"the hardware confirmed {in_effect}: guard/alive goes out again")
                self._clear_hardware_report(report, confirmed, now)
            return
        if state.stop_unconfirmed_since is None:
            state.stop_unconfirmed_since = now
        waited = now - state.stop_unconfirmed_since
        if state.unresponsive is not None or waited < self._config.stop_unconfirmed_limit:
            return
        in_effect = confirmed.name if confirmed is not None else "unknown (no answer)"
        report = AnomalyReport(
            "hardware", HARDWARE_UNRESPONSIVE, Severity.CRITICAL, True, wanted.name,
            float(confirmed) if confirmed is not None else math.nan, float(wanted),
            f"the hardware has not confirmed {wanted.name} for {waited:.2f} s (in effect: {in_effect}; last "
            f"request {'sent' if state.sent else 'not sent: no service'}): guard/alive withheld, so the driver's "
            "own watchdog stops the robot", now)
        state.unresponsive = report
        self._sink.log("error", report.description)
        self._reports([report], now)

    def tick(self, now: float, wall_time: float) -> None:
        """Control-rate work: detector watchdogs, escalation, boot check, the POWER_DOWN sequence, retries."""
        self._now = now
        if self._detectors is not None:
            self._detectors.tracking_paused(not self.output.forward_commands)
            self._detectors.posture_change_expected(self._sequencer is not None)
            self._reports(self._detectors.check(now, wall_time), now)
        self._apply(self._supervisor.tick(now), now)
        self._boot_check(now)
        self._run_sequencer(now)
        self._send_actuation(now)
        self._hardware_stop_agreed(now)
        self._stop_confirmed_check(now)
        self._reanchor_if_due(now)

    def envelope_rechecked(self, now: float, problem: str) -> None:
        """The node re-verified the signed envelope (expiry); a problem stops the robot."""
        if problem and not self._envelope_problem:
            self._envelope_problem = problem
            self._sink.log("error", f"operating envelope no longer valid: {problem}")
            self._apply(self._supervisor.boot_check(False, problem, now), now)

    def _boot_check(self, now: float) -> None:
        if self.output.mode != SafetyMode.BOOT or self._supervisor.state.boot_passed or self._envelope_problem:
            return
        if not self._inputs_fresh(now) or not np.isfinite(self._measured).all():
            self._fresh_since = None
            return
        if self._fresh_since is None:
            self._fresh_since = now
        if now - self._fresh_since < self._config.boot_settle or self._actuation.confirmed is None:
            return
        self._apply(self._supervisor.boot_check(True, "signed envelope verified, joint_states and imu fresh", now),
                    now)

    def _run_sequencer(self, now: float) -> None:
        output = self.output
        if output.action not in (StopAction.LOWER, StopAction.TUCK, StopAction.DAMP) or self._envelope is None:
            if self._sequencer is not None:
                self._sequencer = None
                self._sequencer_step = None
            return
        inputs_fresh = self._inputs_fresh(now)
        phase = self._sequencer_step.phase if self._sequencer_step is not None else ""
        if self._sequencer is None:
            self._sequencer = PowerDownSequencer(self._envelope, self._config.lowering)
            self._lowering_anchored = False
            if output.action == StopAction.DAMP:
                step = self._sequencer.abort_to_damping(now, output.cause)
            elif output.action == StopAction.TUCK:
                step = self._sequencer.fall_response(now, self._measured.copy(), self._lean)
            else:
                step = self._sequencer.start(now, self._posture.estimate())
        elif output.action == StopAction.DAMP and phase in (PHASE_LOWERING, PHASE_TUCK):
            step = self._sequencer.abort_to_damping(now, output.cause)
        elif output.action == StopAction.TUCK and phase == PHASE_LOWERING:
            step = self._sequencer.fall_response(now, self._measured.copy(), self._lean)  # a fall while lowering
        else:
            if self._sequencer_step is not None and now <= self._sequencer_stepped_at:
                return  # already run at this instant (a fall decided in this tick ran it first): nothing new
            step = self._sequencer.step(now, self._measured.copy(), self._tilt, self._battery, inputs_fresh,
                                       self._lean)
        self._sequencer_stepped_at = now
        previous = self._sequencer_step
        self._sequencer_step = step
        if previous is None or previous.phase != step.phase:
            self._sink.log("warn", f"POWER_DOWN: {step.phase}: {step.note}")
        if step.positions is not None and self._actuation.confirmed == ActuationMode.NORMAL and self._gate is not None:
            if not self._lowering_anchored:
                # The gate's anchor may still be the controller's last command: anchor it where the sequencer's
                # stream starts (the measured posture, clipped into the soft range), so that the stream's steps
                # are checked against the rated velocities from there. A fall's tuck starts mid-fall, with
                # joints that may be a few centimetres of a radian beyond their soft range.
                problem = self._gate.reanchor(now, step.positions)
                if problem:
                    self._sequencer_step = self._sequencer.abort_to_damping(now, f"cannot re-anchor: {problem}")
                    return
                self._lowering_anchored = True
                return  # the first lowering target goes out at the next tick (a step needs time to elapse)
            decision = self._gate.guard_command(now, step.positions)
            if decision.forwarded:
                self._sink.forward_joint_command(decision)
            else:
                self._sink.log("error", f"POWER_DOWN lowering command refused by the gate: {decision.reason}; "
                               "DAMPING")
                self._sequencer_step = self._sequencer.abort_to_damping(now, decision.reason)

    def _wanted_actuation(self) -> ActuationMode:
        if self._sequencer_step is not None:
            return self._sequencer_step.actuation
        return self.output.actuation_request

    def _send_actuation(self, now: float) -> None:
        """Ask the hardware for the wanted mode now if it changed; repeat an unconfirmed or unsent request."""
        wanted = self._wanted_actuation()
        state = self._actuation
        if wanted == state.requested:
            settled = state.sent and state.confirmed == wanted
            if settled or now - state.requested_at < self._config.actuation_retry:
                return
        reason = f"{self.output.mode.name}: {self.output.cause}"
        if self._sequencer_step is not None:
            reason = f"POWER_DOWN {self._sequencer_step.phase}: {self._sequencer_step.note}"
        if state.confirmed != wanted:
            state.confirmed = None  # changing: unknown until the hardware answers (nothing is streamed meanwhile)
        state.requested, state.requested_at, state.reason = wanted, now, reason
        state.sent = self._sink.request_actuation(wanted, reason)

    def _reanchor_if_due(self, now: float) -> None:
        output = self.output
        if not output.reanchor_required or self._gate is None or self._actuation.confirmed != ActuationMode.NORMAL:
            return
        if not self._inputs_fresh(now) or not np.isfinite(self._measured).all():
            return
        problem = self._gate.reanchor(now, self._measured.copy())
        if problem:
            self._sink.log("warn", f"re-anchoring refused: {problem}")
            return
        self._apply(self._supervisor.reanchored(now), now)

    # ------------------------------------------------------------------ decisions

    def _reports(self, reports: Sequence[AnomalyReport], now: float) -> None:
        for report in reports:
            self._sink.publish_anomaly(report)
            if report.kind in BOOT_WAITS_FOR and not self._supervisor.state.boot_passed:
                continue  # recorded; the self-check waits for fresh inputs itself (no stop before the first start)
            event = AnomalyEvent(report.kind, report.subject, report.severity, report.active,
                                 source=f"detector:{report.detector}")
            self._apply(self._supervisor.anomaly(event, now), now)

    def _apply(self, output: SupervisorOutput, now: float) -> None:
        """Ask the hardware for its mode at once, then publish a changed state. The request goes on the wire
        before anything else is said about the change. A lowering starts at the next tick; a fall's tuck or
        DAMPING is decided now (a fall leaves no tick to spare), so the first request is already the sequencer's."""
        if output.changed and output.action in (StopAction.TUCK, StopAction.DAMP):
            self._run_sequencer(now)
        self._send_actuation(now)
        # Also the same mode with other anomalies active (a second cause of a stop, one cleared): safety_state
        # says so now, not at its next 1 Hz repeat (a guardian deciding on a RESET reads it).
        if output.changed or output.active_anomalies != self._published_anomalies:
            self._publish_state(output, log=output.changed)

    def _publish_state(self, output: SupervisorOutput, log: bool = True) -> None:
        self._published_anomalies = output.active_anomalies
        self._sink.publish_state(output)
        if not log:
            return
        level = "warn" if output.mode not in (SafetyMode.NORMAL, SafetyMode.REDUCED) else "info"
        self._sink.log(level, f"safety mode {output.mode.name} ({output.action.name}): {output.note}")
