"""Anomaly detectors: what the robot measures, compared with its envelope, as raise/clear edges.

Pure logic over numpy, no rclpy and no clock of its own: every call passes ``now`` (float seconds of the
guard node's clock; sim time under lock-step) and, for sensor messages, the message stamp (float
seconds). :class:`AnomalyDetectors` turns sensor messages, the command gate's forwarded commands and a
periodic :meth:`~AnomalyDetectors.check` into :class:`AnomalyReport` edges, which map 1:1 onto
``ftrobot_msgs/Anomaly`` and, through :meth:`AnomalyReport.event`, onto the supervisor's
:class:`~ftrobot_guard.safety.supervisor.AnomalyEvent`.

Edges. Each (kind, subject) is either inactive or active with one severity. A report is sent only when
that changes: raised (``active`` True), raised again with another severity (an escalation or a
de-escalation; the supervisor replaces the entry), or cleared (``active`` False, carrying the severity
it had). So a clear always follows a raise, and two consecutive raises of one (kind, subject) differ in
severity. Clearing uses hysteresis (a clear threshold below the raise threshold, held for a time), so
a value hovering at a limit does not chatter.

Time bases. Per-message detectors debounce on the message stamp (the sample time: messages taken in a
batch keep their own times); the input watchdog, tracking and clock checks use ``now``. A stamp that
goes backwards restarts that input's timers and skips its derivatives. ``now == 0.0`` means the node's
clock has no time yet (ROS sim time before the first ``/clock``): stamps are not judged, and the first
step away from 0 is no clock jump. After a clock jump the watchdogs are re-based, so they keep measuring
real elapsed time (a jump is reported once, as ``clock_jump``, not as every input going stale).

Bad input never raises: wrong lengths, unknown, missing or repeated joint names, NaN/Inf, a malformed
quaternion or a battery level in percent become an ``input_invalid`` report (subject: the input). An
unexpected error inside a detector becomes a ``detector_fault`` report (ERROR) instead of an exception.

Kinds, thresholds (defaults of :class:`DetectorConfig` and the G1 envelope), debounce, default severity,
worst-case detection delay counted from the first sample beyond the threshold (joint_states and imu at
500 Hz, odom 100 Hz, temperatures 10 Hz, battery 1 Hz, check() at 500 Hz), and the delay measured from
the fault's onset on the simulator (``bench/fault_detection.py``, sim time, seed 1):

======================== ===================================== ====================== ========= ======== ==============
kind (detector)          raised when                           debounce: raise / clear severity  worst    simulator
======================== ===================================== ====================== ========= ======== ==============
tracking_error           |q - q_ref| > 0.2 rad + 0.05 s x |dq| 0.1 s / 0.05 rad less, ERROR     0.102 s  stuck joint in
(tracking)               (q_ref: the gate's last forwarded     0.2 s                                     a reach 0.53 s
                         command; only while it forwards)
joint_speed              |dq| > posture.joint_speed warn 7,    4 ms / 0.5 rad/s less, WARNING,  6 ms     falls: ~0.3 s
(joint_motion)           limit 8 rad/s                         0.1 s                  ERROR
joint_acceleration_spike |d(dq)/dt| (dq low-passed 5 ms) >     1 sample / 0.8 x, 0.1 s WARNING  2 ms     falls
(joint_motion)           10 x envelope acceleration
effort_spike (collision) |effort| > max(soft, 0.9 x hard)      30 ms / 0.8 x, 0.2 s   ERROR     32 ms    stuck joint
                                                                                                         0.18 s, rogue
                                                                                                         publisher 0.07
encoder_jump (encoder)   position step beyond what the         1 sample / 0.5 s       ERROR     2 ms     0.5 rad spike
                         velocity explains > 0.2 rad                                                     0.002 s
encoder_noise (encoder)  mean |step residual| over 0.5 s >     0.2 s / 0.8 x, 0.5 s   WARNING   ~0.5 s   σ 0.1 rad 0.41
                         0.04 rad (σ ≈ 0.035 rad)                                                        s; σ 0.02 quiet
tilt (posture)           pelvis (IMU) tilt > posture.tilt      10 ms / 0.05 rad less, WARNING,  12 ms    push 80 N 0.45
                         warn 0.3, limit 0.5 rad               0.5 s                  ERROR              s (warn)
angular_rate (posture)   |gyro| > posture.angular_rate warn    10 ms / 0.3 rad/s      WARNING,  12 ms    trip 0.09 s
                         2, limit 3 rad/s                      less, 0.5 s            ERROR              (limit)
fall_under_way (fall)    tilt > limit and outward tilt rate >  10 ms (free fall 50    CRITICAL  12 ms    trip 0.14 s,
                         0.3 rad/s; or tilt > warn and > 1.5   ms) / 1 s without a                       push 80 N
                         rad/s; or |accel| < 3 m/s²; or odom z cause                                     0.65 s; both
                         falling faster than 0.8 m/s                                                     before "fallen"
actuator_temperature     T > actuator_temperature warn 85,     0.25 s / 3 °C less,    WARNING,  0.35 s   +20 °C/s: 3.4
(thermal)                limit 100 °C                          2 s                    ERROR              s (warn)
battery_low (battery)    charge < battery.warn 0.35            1.5 s / 0.02 more, 5 s WARNING   2.5 s    -
battery_minimum          charge < battery.minimum 0.25         1.5 s / 0.02 more, 5 s CRITICAL  2.5 s    50 kW drain
(battery)                                                                                                from 0.4: 7.2 s
input_stale              no message for input_max_age          at once / 3 messages   CRITICAL  max_age  = max_age
(stale_input)            (never received: after 5 s grace)     in time                (joint_   + 2 ms   after the last
                                                                                      states,            message
                                                                                      imu),
                                                                                      else ERROR
input_late (stale_input) now - stamp > input_max_age           2 messages / 5         as stale  1 period 2 x max_age
                                                                                                         delay: delay +
                                                                                                         2 periods
stamp_future             stamp - now > 0.05 s                  2 messages / 5         ERROR     1 period -
(stale_input)
input_invalid            NaN/Inf, wrong lengths or names,      at once / 5 valid      as stale  0        encoder NaN
(input_validation)       quaternion norm, charge not 0..1      messages                                  0.002 s
command_flood            > 1500/s joint_command, 200/s         over 0.2 s / below     ERROR     < 0.2 s  -
(command_rate)           cmd_vel, 20/s task_request            half the rate
clock_jump (clock)       now backwards, or now advanced 0.5 s  at once / 1 s (wall)   ERROR     2 ms     -
                         beyond the wall clock between checks
geofence_breach          odom position within the margin;      30 ms / 0.05 m back,   WARNING;  40 ms    -
(geofence)               outside the boundary                  1 s                    ERROR
detector_fault           a detector raised internally, or a    at once / next call    ERROR     0        -
(detector)               non-finite ``now``                    that succeeds
======================== ===================================== ====================== ========= ======== ==============

The intrusion kinds ``rogue_hw_publisher`` and ``unauthorised_publisher`` come from
:mod:`.intrusion_check` (graph based, no debounce). The guard core raises two kinds about the hardware
itself: ``hardware_stopped`` (a stop the hardware made by itself, heard on ``hw/actuation_state``: at once)
and ``hardware_unresponsive`` (a stop the guard asked for and the hardware did not confirm within
``GuardConfig.stop_unconfirmed_limit``, 1.0 s: ``guard/alive`` is withheld until it does).

Notes on the choices:

* Tilt is the pelvis IMU's up axis against world up (the measured quantity; a deliberate waist bend is
  not a fall). The tilt rate is computed from the gyro (exact kinematics), not by differencing.
* ``fall_under_way`` is answered with a protective tuck, then DAMPING (response TUCK), not a lowering:
  past the tilt limit and still rotating outward, a G1 without a stepping reflex cannot recover (on the
  simulator any push of 50 N for 0.2 s topples it; a trip passes 0.3 rad 0.13 s after onset at ~4
  rad/s). ``posture_change_expected(True)`` suspends the tilt-based raises while the guard itself lays
  the robot down (the lowering's lie-back phase).
* Effort: the soft effort of the arms is a feed-forward cap (0.6 x hard), and a legal 6 rad/s start
  already draws 0.72 x hard for ~40 ms; saturation held for 30 ms is what a collision or a seized joint
  looks like without a dynamics model.
* Tracking error scales with the measured speed (a PD lag of ~0.03 s at 6 rad/s), so only a joint that
  does not follow its reference (stuck, blocked, a rogue command, a lost command stream) trips it. It is
  checked only while the gate forwards (:meth:`~AnomalyDetectors.tracking_paused`); pausing clears it, so
  a stop caused by it can be reset once the cause is gone.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from ftrobot_guard.safety.envelope import INPUT_NAMES, Envelope
from ftrobot_guard.safety.envelope_checks import geofence_clearance
from ftrobot_guard.safety.response_policy import Severity
from ftrobot_guard.safety.supervisor import AnomalyEvent

MAX_TEXT = 200
MAX_TOPICS = 64              # distinct guard/in topics tracked for floods
MAX_LAYOUTS = 8              # distinct joint-name lists cached
TEMPERATURE_RANGE = (-60.0, 300.0)  # °C a sensor may plausibly report
TIME_TOLERANCE = 1e-6       # s: a hold of 10 ms is reached by samples 10 ms apart despite float round-off
FENCE_RECOMPUTE = 0.02       # m moved before the geofence clearance is computed again
FENCE_PERIOD = 0.05          # s, at most this often

KIND_SEVERITY: Mapping[str, Severity] = MappingProxyType({
    "tracking_error": Severity.ERROR,
    "joint_speed": Severity.ERROR,            # WARNING above posture.joint_speed.warn
    "joint_acceleration_spike": Severity.WARNING,
    "effort_spike": Severity.ERROR,
    "encoder_jump": Severity.ERROR,
    "encoder_noise": Severity.WARNING,
    "tilt": Severity.ERROR,                   # WARNING above posture.tilt.warn
    "angular_rate": Severity.ERROR,           # WARNING above posture.angular_rate.warn
    "fall_under_way": Severity.CRITICAL,
    "actuator_temperature": Severity.ERROR,   # WARNING above actuator_temperature.warn
    "battery_low": Severity.WARNING,
    "battery_minimum": Severity.CRITICAL,
    "input_stale": Severity.CRITICAL,         # ERROR for inputs outside DetectorConfig.critical_inputs
    "input_late": Severity.CRITICAL,          # as input_stale
    "input_invalid": Severity.CRITICAL,       # as input_stale
    "stamp_future": Severity.ERROR,
    "command_flood": Severity.ERROR,
    "clock_jump": Severity.ERROR,
    "geofence_breach": Severity.ERROR,        # WARNING within the margin, ERROR outside the boundary
    "detector_fault": Severity.ERROR,
    "rogue_hw_publisher": Severity.ERROR,
    "unauthorised_publisher": Severity.ERROR,
    "hardware_stopped": Severity.CRITICAL,    # ERROR for a first DAMPING (guard core, from hw/actuation_state)
    "hardware_unresponsive": Severity.CRITICAL,  # a stop asked for, unconfirmed (guard core; guard/alive withheld)
})
"""Every kind with its highest default severity (two-level kinds raise WARNING first)."""


HARDWARE_STOPPED = "hardware_stopped"
"""The hardware stopped by itself (safety/guard_core.py): a first DAMPING is held, anything more is damped."""

HARDWARE_UNRESPONSIVE = "hardware_unresponsive"
"""A stop the guard asked for went unconfirmed (safety/guard_core.py): guard/alive is withheld until it is."""


def clip_text(text: str) -> str:
    """One line of at most MAX_TEXT characters (whitespace collapsed), for text that came from a message."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


@dataclass(frozen=True)
class AnomalyReport:
    """One edge: raised (``active``) or cleared; fields as ``ftrobot_msgs/Anomaly``."""

    detector: str             # "tracking", "posture", "stale_input", ...
    kind: str                 # stable machine kind (KIND_SEVERITY)
    severity: Severity
    active: bool
    subject: str              # joint, input, topic, node or ""
    value: float              # SI measured value
    limit: float              # SI limit it was compared with
    description: str          # one line, with numbers and units
    time: float = math.nan    # s, the ``now`` of the call that decided the edge

    def event(self) -> AnomalyEvent:
        """The supervisor's event for this edge."""
        return AnomalyEvent(self.kind, self.subject, self.severity, self.active, source=f"detector:{self.detector}")


@dataclass(frozen=True)
class DetectorStatus:
    """One detector's health for ``/diagnostics`` (levels of ``diagnostic_msgs/DiagnosticStatus``)."""

    detector: str
    level: int                # 0 OK, 1 WARN, 2 ERROR
    message: str
    values: tuple[tuple[str, str], ...]


DETECTORS = ("tracking", "joint_motion", "collision", "encoder", "posture", "fall", "thermal", "battery",
             "stale_input", "input_validation", "command_rate", "clock", "geofence", "detector")


def _default_rate_limits() -> Mapping[str, float]:
    # joint_command: 1.5x the fastest controller the gate is built for (1 kHz), whose stream counted over
    # 0.2 s comes to ~1005/s with ordinary scheduling jitter (bench/gate_latency.py)
    return MappingProxyType({"guard/in/joint_command": 1500.0, "guard/in/cmd_vel": 200.0,
                             "guard/in/task_request": 20.0})


@dataclass(frozen=True)
class DetectorConfig:
    """Thresholds and debounce times that are not in the envelope (seconds, radians, SI)."""

    startup_grace: float = 5.0                # s before a never-received input counts as stale
    critical_inputs: frozenset[str] = frozenset({"joint_states", "imu"})  # stale/late/invalid → CRITICAL
    stale_clear_messages: int = 3             # messages in time before input_stale clears
    stamp_future_tolerance: float = 0.05      # s a stamp may be ahead of now (lock-step clock arrival order)
    stamp_debounce_messages: int = 2          # late / future messages in a row before a raise
    stamp_clear_messages: int = 5             # good messages in a row before a clear (also input_invalid)
    ignore_unknown_joints: bool = False       # joint_states / temperatures may name joints beyond the envelope
    tracking_error: float = 0.2               # rad
    tracking_lag: float = 0.05                # s: allowed lag, the limit grows by this x |measured dq|
    tracking_hold: float = 0.1
    tracking_hysteresis: float = 0.05         # rad
    tracking_clear_hold: float = 0.2
    joint_speed_hold: float = 0.004
    joint_speed_hysteresis: float = 0.5       # rad/s
    joint_speed_clear_hold: float = 0.1
    acceleration_spike_factor: float = 10.0   # x envelope acceleration (a command cap, not a measured limit)
    acceleration_filter: float = 0.005        # s, time constant of the velocity low-pass before differencing
    acceleration_clear_hold: float = 0.1
    effort_spike_fraction: float = 0.9        # x hard effort (or the soft effort if higher)
    effort_hold: float = 0.03
    effort_clear_hold: float = 0.2
    encoder_jump: float = 0.2                 # rad beyond what the measured velocity explains
    encoder_max_gap: float = 0.05             # s between samples beyond which no jump is judged
    encoder_noise_limit: float = 0.04         # rad, mean |residual| (Gaussian noise: 0.8 x its σ x √2)
    encoder_noise_window: float = 0.5         # s, time constant of that mean
    encoder_noise_hold: float = 0.2
    encoder_clear_hold: float = 0.5           # s without a jump before encoder_jump clears
    tilt_hold: float = 0.01
    tilt_hysteresis: float = 0.05             # rad
    angular_rate_hold: float = 0.01
    angular_rate_hysteresis: float = 0.3      # rad/s
    posture_clear_hold: float = 0.5
    fall_tilt_rate: float = 0.3               # rad/s outward beyond the tilt limit
    fall_fast_tilt_rate: float = 1.5          # rad/s outward beyond the tilt warning
    fall_free_fall_accel: float = 3.0         # m/s² specific force below which the body is falling freely
    fall_free_fall_hold: float = 0.05
    fall_drop_speed: float = 0.8              # m/s downward pelvis speed (odom z, when given)
    fall_hold: float = 0.01
    fall_clear_hold: float = 1.0
    quaternion_norm_tolerance: float = 0.1
    temperature_hold: float = 0.25
    temperature_hysteresis: float = 3.0       # °C
    temperature_clear_hold: float = 2.0
    battery_hold: float = 1.5
    battery_hysteresis: float = 0.02          # fraction
    battery_clear_hold: float = 5.0
    geofence_hold: float = 0.03
    geofence_hysteresis: float = 0.05         # m
    geofence_clear_hold: float = 1.0
    command_rate_limits: Mapping[str, float] = field(default_factory=_default_rate_limits)  # topic suffix → msgs/s
    default_command_rate_limit: float = 1500.0
    command_rate_window: float = 0.2
    clock_jump_tolerance: float = 0.5         # s now may advance beyond the wall clock between two checks
    clock_clear_hold: float = 1.0             # s (wall) without a jump before clock_jump clears

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.type == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"detector config {item.name}: {value!r} is not a whole number >= 1")
            elif item.type == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))
                                           or not math.isfinite(value) or value < 0.0):
                raise ValueError(f"detector config {item.name}: {value!r} is not a finite number >= 0")
        for name in ("command_rate_window", "tracking_lag", "acceleration_filter", "encoder_noise_window",
                     "default_command_rate_limit", "encoder_jump", "encoder_max_gap"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"detector config {name}: must be above 0")
        unknown = sorted(set(self.critical_inputs) - set(INPUT_NAMES))
        if unknown:
            raise ValueError(f"detector config critical_inputs: unknown input {unknown[0]!r}")
        for topic, rate in self.command_rate_limits.items():
            if not isinstance(topic, str) or not topic or not (isinstance(rate, (int, float)) and math.isfinite(rate)
                                                               and rate > 0.0):
                raise ValueError(f"detector config command_rate_limits: {topic!r}: {rate!r} is not a rate > 0")


# ---------------------------------------------------------------------------------------------
# Debounce helpers


class _Hold:
    """Raise when a value has stayed above its threshold for ``raise_hold`` s; clear when it has stayed below
    its clear threshold for ``clear_hold`` s. Vectorised over n subjects; NaN neither raises nor clears."""

    __slots__ = ("_above_since", "_below_since", "active", "any_active", "clear_hold", "raise_hold", "timing")

    def __init__(self, n: int, raise_hold: float, clear_hold: float) -> None:
        self.active = np.zeros(n, dtype=bool)
        self.any_active = False
        self.raise_hold = raise_hold
        self.clear_hold = clear_hold
        self._above_since = np.full(n, np.nan)
        self._below_since = np.full(n, np.nan)
        self.timing = False   # a raise timer is running

    def update(self, t: float, values: np.ndarray, raise_above: np.ndarray | float,
               clear_below: np.ndarray | float) -> np.ndarray | None:
        """The subjects whose state changed (a bool mask), or None when none did."""
        above = values > raise_above
        any_above = bool(np.count_nonzero(above))
        if not any_above and not self.any_active:
            if self.timing:
                self._above_since.fill(np.nan)
                self.timing = False
            return None
        since = self._above_since
        since[~above] = np.nan
        since[above & np.isnan(since)] = t
        self.timing = any_above
        with np.errstate(invalid="ignore"):
            changed = above & ~self.active & (t - since >= self.raise_hold - TIME_TOLERANCE)
            if self.any_active:
                below = values < clear_below
                held = self._below_since
                held[~below] = np.nan
                held[below & np.isnan(held)] = t
                changed |= self.active & below & (t - held >= self.clear_hold - TIME_TOLERANCE)
        if np.count_nonzero(changed) == 0:
            return None
        self.active ^= changed
        self._below_since[changed] = np.nan
        self.any_active = bool(np.count_nonzero(self.active))
        return changed

    def clear_with(self, upper: _Hold, changed: np.ndarray | None, values: np.ndarray, clear_below: float) -> None:
        """Where ``upper`` (the limit above this warning) just cleared and the value is also below this hold's
        clear threshold, clear this one too: no de-escalation to a warning the value is already below."""
        if changed is None or not self.any_active:
            return
        drop = changed & ~upper.active & self.active & (values < clear_below)
        if np.count_nonzero(drop):
            self.active &= ~drop
            self._above_since[drop] = np.nan
            self._below_since[drop] = np.nan
            self.any_active = bool(np.count_nonzero(self.active))

    def restart(self) -> None:
        """Forget running timers (time went backwards); the active state stays."""
        self._above_since.fill(np.nan)
        self._below_since.fill(np.nan)
        self.timing = False

    def reset(self) -> None:
        self.restart()
        self.active[:] = False
        self.any_active = False


class _ScalarHold:
    """:class:`_Hold` for one subject, on plain floats."""

    __slots__ = ("_above_since", "_below_since", "active", "clear_hold", "raise_hold")

    def __init__(self, raise_hold: float, clear_hold: float) -> None:
        self.active = False
        self.raise_hold = raise_hold
        self.clear_hold = clear_hold
        self._above_since = math.nan
        self._below_since = math.nan

    def update(self, t: float, value: float, raise_above: float, clear_below: float) -> bool:
        """True when the state changed."""
        if value > raise_above:
            if self._above_since != self._above_since:  # NaN
                self._above_since = t
            self._below_since = math.nan
            if not self.active and t - self._above_since >= self.raise_hold - TIME_TOLERANCE:
                self.active = True
                return True
            return False
        self._above_since = math.nan
        if self.active and value < clear_below:
            if self._below_since != self._below_since:
                self._below_since = t
            if t - self._below_since >= self.clear_hold - TIME_TOLERANCE:
                self.active = False
                self._below_since = math.nan
                return True
        else:
            self._below_since = math.nan
        return False

    def clear_with(self, upper: _ScalarHold, changed: bool, value: float, clear_below: float) -> None:
        """As :meth:`_Hold.clear_with`, for one subject."""
        if changed and not upper.active and self.active and value < clear_below:
            self.active = False
            self.restart()

    def restart(self) -> None:
        self._above_since = math.nan
        self._below_since = math.nan


class _Counter:
    """Raise after ``raise_after`` bad messages in a row; clear after ``clear_after`` good ones in a row."""

    __slots__ = ("active", "bad", "clear_after", "good", "raise_after")

    def __init__(self, raise_after: int, clear_after: int) -> None:
        self.active = False
        self.bad = 0
        self.good = 0
        self.raise_after = raise_after
        self.clear_after = clear_after

    def update(self, bad: bool) -> bool:
        """True when the state changed."""
        if bad:
            self.bad += 1
            self.good = 0
            if not self.active and self.bad >= self.raise_after:
                self.active = True
                return True
            return False
        self.bad = 0
        self.good += 1
        if self.active and self.good >= self.clear_after:
            self.active = False
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Per-input state


@dataclass
class _Input:
    name: str
    max_age: float
    severity: Severity
    last_receipt: float = math.nan     # now of the last message
    last_sample: float = math.nan      # stamp of the last message with a valid stamp
    count: int = 0
    stale: bool = False
    fresh_run: int = 0                 # messages in time since the input went stale
    late: _Counter = field(default_factory=lambda: _Counter(2, 5))
    future: _Counter = field(default_factory=lambda: _Counter(2, 5))
    invalid: _Counter = field(default_factory=lambda: _Counter(1, 5))
    invalid_reason: str = ""


@dataclass(frozen=True, eq=False)
class _Layout:
    """Where each envelope joint is in a message's arrays (a cached name list)."""

    order: np.ndarray | None     # message index of each envelope joint; None when the message is in model order
    size: int                    # number of names in the message


def _vector(values: Any, size: int) -> np.ndarray | None:
    """A float64 copy of a flat list of ``size`` numbers, or None when it is not one."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if array.ndim != 1 or array.size != size:
        return None
    return array


def _number(value: object) -> float:
    """A float, NaN when the value is no finite real number."""
    if isinstance(value, bool):
        return math.nan
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return number


def _names_text(names: Sequence[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# The detectors


class AnomalyDetectors:
    """All detectors of one robot, fed by the guard node; every method returns the edges it decided."""

    def __init__(self, envelope: Envelope, config: DetectorConfig = DetectorConfig(), now: float = 0.0) -> None:
        self.envelope = envelope
        self.config = config
        c = config
        joints = envelope.joints
        self._names = joints.names
        n = len(joints)
        self._n = n
        self._start = now if math.isfinite(now) else 0.0
        self._active: dict[tuple[str, str], AnomalyReport] = {}
        self._out: list[AnomalyReport] = []
        self._pending: list[AnomalyReport] = []
        self._faulty: set[str] = set()         # entry points whose last call failed
        self._raised: dict[str, int] = dict.fromkeys(DETECTORS, 0)
        self._layouts: dict[tuple[str, ...], _Layout | str] = {}
        self._temperature_layouts: dict[tuple[str, ...], _Layout | str] = {}
        self._inputs = {name: _Input(name, float(envelope.input_max_age[name]),
                                     Severity.CRITICAL if name in c.critical_inputs else Severity.ERROR,
                                     late=_Counter(c.stamp_debounce_messages, c.stamp_clear_messages),
                                     future=_Counter(c.stamp_debounce_messages, c.stamp_clear_messages),
                                     invalid=_Counter(1, c.stamp_clear_messages))
                        for name in INPUT_NAMES}

        # joint limits (model order)
        posture = envelope.posture
        self._speed_warn, self._speed_limit = posture.joint_speed.warn, posture.joint_speed.limit
        self._accel_limit = np.asarray(joints.acceleration, dtype=np.float64) * c.acceleration_spike_factor
        self._effort_limit = np.maximum(np.asarray(joints.soft_effort, dtype=np.float64),
                                        np.asarray(joints.hard_effort, dtype=np.float64) * c.effort_spike_fraction)

        # joint_states state
        self._speed_warn_hold = _Hold(n, c.joint_speed_hold, c.joint_speed_clear_hold)
        self._speed_limit_hold = _Hold(n, c.joint_speed_hold, c.joint_speed_clear_hold)
        self._speed_level = np.zeros(n, dtype=np.int8)
        self._accel_hold = _Hold(n, 0.0, c.acceleration_clear_hold)
        self._effort_hold = _Hold(n, c.effort_hold, c.effort_clear_hold)
        self._jump_hold = _Hold(n, 0.0, c.encoder_clear_hold)
        self._noise_hold = _Hold(n, c.encoder_noise_hold, c.encoder_clear_hold)
        self._tracking_hold = _Hold(n, c.tracking_hold, c.tracking_clear_hold)
        self._joint_holds = (self._speed_warn_hold, self._speed_limit_hold, self._accel_hold, self._effort_hold,
                             self._jump_hold, self._noise_hold)
        self._samples = (np.full((3, n), np.nan), np.full((3, n), np.nan))  # positions, velocities, efforts
        self._flip = 0                         # index of the buffer the next message goes into
        self._rows = np.full((5, n), np.nan)   # speed, acceleration, |effort|, encoder residual, mean residual
        self._rows[4] = 0.0
        self._raise_at = np.vstack([np.full(n, self._speed_warn), self._accel_limit, self._effort_limit,
                                    np.full(n, c.encoder_jump), np.full(n, c.encoder_noise_limit)])
        self._above = np.zeros((5, n), dtype=bool)
        self._scratch = np.zeros(n)
        self._hard_velocity = np.asarray(joints.hard_velocity, dtype=np.float64)
        self._speed = np.zeros(n)              # |dq|, 0 where unknown (tracking limit)
        self._sample_time = math.nan           # stamp of the last joint_states
        self._dq_filtered = np.full(n, np.nan)
        self._filter_valid = False

        # tracking
        self._reference = np.full(n, np.nan)
        self._referenced = False              # some reference is set
        self._checked_index = b""
        self._paused = False
        self._tracking_error = np.full(n, np.nan)
        self._forwarded = 0
        self._forwarded_refused = 0

        # posture and fall
        self._tilt_warn = _ScalarHold(c.tilt_hold, c.posture_clear_hold)
        self._tilt_limit = _ScalarHold(c.tilt_hold, c.posture_clear_hold)
        self._rate_warn = _ScalarHold(c.angular_rate_hold, c.posture_clear_hold)
        self._rate_limit = _ScalarHold(c.angular_rate_hold, c.posture_clear_hold)
        self._fall_tilt = _ScalarHold(c.fall_hold, c.fall_clear_hold)
        self._free_fall = _ScalarHold(c.fall_free_fall_hold, c.fall_clear_hold)
        self._drop = _ScalarHold(c.fall_hold, c.fall_clear_hold)
        self._posture_expected = False
        self._tilt = math.nan
        self._tilt_rate = math.nan
        self._rate = math.nan
        self._specific_force = math.nan

        # thermal, battery, odom
        self._temp_warn = _Hold(n, c.temperature_hold, c.temperature_clear_hold)
        self._temp_limit = _Hold(n, c.temperature_hold, c.temperature_clear_hold)
        self._temp_level = np.zeros(n, dtype=np.int8)
        self._temperatures = np.full(n, np.nan)
        self._battery_low = _ScalarHold(c.battery_hold, c.battery_clear_hold)
        self._battery_minimum = _ScalarHold(c.battery_hold, c.battery_clear_hold)
        self._battery = math.nan
        self._fence_warn = _ScalarHold(c.geofence_hold, c.geofence_clear_hold)
        self._fence_limit = _ScalarHold(c.geofence_hold, c.geofence_clear_hold)
        self._clearance = math.nan
        self._fence_exact = math.nan
        self._fence_at = (math.nan, math.nan)
        self._fence_time = -math.inf
        self._fence_name = ""
        self._z = math.nan
        self._z_time = math.nan
        self._drop_speed = math.nan

        # commands and clock
        self._commands: dict[str, deque[float]] = {}
        self._floods: set[str] = set()
        self._dropped_topics = 0
        self._last_now = math.nan
        self._last_wall = math.nan
        self._last_jump_wall = math.nan
        self._last_drift = 0.0

    # ------------------------------------------------------------------ edges

    def _edge(self, now: float, detector: str, kind: str, subject: str, severity: Severity | None, value: float,
              limit: float, description: str) -> None:
        """Record a raise (severity given) or a clear (None) of (kind, subject), only when its state changes."""
        key = (kind, subject)
        current = self._active.get(key)
        if severity is None:
            if current is None:
                return
            del self._active[key]
            report = AnomalyReport(detector, kind, current.severity, False, subject, float(value), float(limit),
                                   clip_text(description), now)
        else:
            if current is not None and current.severity == severity:
                return
            report = AnomalyReport(detector, kind, severity, True, subject, float(value), float(limit),
                                   clip_text(description), now)
            self._active[key] = report
            self._raised[detector] = self._raised.get(detector, 0) + 1
        self._out.append(report)

    def _run(self, what: str, now: object, body: Callable[[float], None]) -> list[AnomalyReport]:
        """Run one entry point: never raises; an internal error becomes a detector_fault report."""
        self._out = []
        time_now = _number(now)
        if not math.isfinite(time_now):
            time_now = self._last_now if math.isfinite(self._last_now) else self._start
            self._faulty.add(what)
            self._edge(time_now, "detector", "detector_fault", what, Severity.ERROR, math.nan, math.nan,
                       f"{what}: the caller's time {now!r} is not a finite number")
            return self._take()
        try:
            body(time_now)
        except Exception as exc:  # a detector bug must stop the robot, not kill the guard node
            self._faulty.add(what)
            self._edge(time_now, "detector", "detector_fault", what, Severity.ERROR, math.nan, math.nan,
                       f"{what}: internal error {type(exc).__name__}: {exc}")
        else:
            if what in self._faulty:
                self._faulty.discard(what)
                self._edge(time_now, "detector", "detector_fault", what, None, 0.0, 0.0, f"{what}: working again")
        return self._take()

    def _take(self) -> list[AnomalyReport]:
        out, self._out = self._out, []
        return out

    # ------------------------------------------------------------------ inputs in general

    def _receive(self, name: str, now: float, stamp: object) -> float | None:
        """Book a message's arrival and check its stamp; the sample time, or None when the stamp is unusable."""
        state = self._inputs[name]
        if math.isfinite(state.last_receipt) and now - state.last_receipt <= state.max_age:
            state.fresh_run += 1
        else:
            state.fresh_run = 1
        state.last_receipt = now
        state.count += 1
        t = _number(stamp)
        if not math.isfinite(t):
            self._invalid(name, now, f"stamp {stamp!r} is not a finite time")
            return None
        c = self.config
        if now == 0.0:   # the node's clock has no time yet (ROS sim time before the first /clock): no stamp checks
            state.last_sample = t
            return t
        ahead = t - now
        if state.future.update(ahead > c.stamp_future_tolerance):
            self._edge(now, "stale_input", "stamp_future", name, Severity.ERROR if state.future.active else None,
                       ahead, c.stamp_future_tolerance,
                       f"{name} stamps are {ahead:.3f} s ahead of this clock (tolerance {c.stamp_future_tolerance:g} s)"
                       if state.future.active else f"{name} stamps no longer ahead of this clock ({ahead:+.3f} s)")
        age = now - t
        if state.late.update(age > state.max_age):
            self._edge(now, "stale_input", "input_late", name, state.severity if state.late.active else None,
                       age, state.max_age,
                       f"{name} arrives {age:.3f} s after its stamp (limit {state.max_age:g} s)"
                       if state.late.active else f"{name} on time again ({age:.3f} s old)")
        if math.isfinite(state.last_sample) and t < state.last_sample:
            self._restart_timers(name)
        state.last_sample = t
        return t

    def _invalid(self, name: str, now: float, reason: str, value: float = 1.0) -> None:
        state = self._inputs[name]
        state.invalid_reason = reason
        if state.invalid.update(True):
            self._edge(now, "input_validation", "input_invalid", name, state.severity, value, 0.0,
                       f"{name}: {reason}")

    def _valid(self, name: str, now: float) -> None:
        state = self._inputs[name]
        if state.invalid.update(False):
            self._edge(now, "input_validation", "input_invalid", name, None, 0.0, 0.0,
                       f"{name}: valid again for {state.invalid.good} messages (was: {state.invalid_reason})")

    def _restart_timers(self, name: str) -> None:
        if name == "joint_states":
            for hold in self._joint_holds:
                hold.restart()
            self._filter_valid = False
        elif name == "imu":
            for scalar in (self._tilt_warn, self._tilt_limit, self._rate_warn, self._rate_limit, self._fall_tilt,
                           self._free_fall):
                scalar.restart()
        elif name == "odom":
            for scalar in (self._fence_warn, self._fence_limit, self._drop):
                scalar.restart()
            self._z = math.nan
        elif name == "actuator_temperatures":
            self._temp_warn.restart()
            self._temp_limit.restart()
        else:
            self._battery_low.restart()
            self._battery_minimum.restart()

    def _layout(self, cache: dict[tuple[str, ...], _Layout | str], names: Sequence[str]) -> _Layout | str:
        try:
            key = tuple(names)
        except TypeError:
            return "joint names are not a list"
        layout = cache.get(key)
        if layout is not None:
            return layout
        layout = _Layout(None, len(key)) if key == self._names else self._new_layout(key)
        if len(cache) >= MAX_LAYOUTS:
            cache.clear()
        cache[key] = layout
        return layout

    def _named_message(self, name: str, now: float, stamp: object, cache: dict[tuple[str, ...], _Layout | str],
                       names: Sequence[str]) -> tuple[float, _Layout] | None:
        """Book a message with joint names; its sample time and layout, or None when it cannot be read."""
        t = self._receive(name, now, stamp)
        if t is None:
            return None
        layout = self._layout(cache, names)
        if isinstance(layout, str):
            self._invalid(name, now, layout)
            return None
        return t, layout

    def _new_layout(self, key: tuple[str, ...]) -> _Layout | str:
        if not all(isinstance(name, str) for name in key):
            return "a joint name is not a string"
        index = self.envelope.joints.index
        repeated: list[str] = []
        positions: dict[str, int] = {}
        for i, name in enumerate(key):
            if name in positions:
                repeated.append(name)
            positions[name] = i
        if repeated:
            return f"repeated joint names: {_names_text(sorted(set(repeated)))}"
        unknown = [repr(name[:40]) for name in key if name not in index]
        if unknown and not self.config.ignore_unknown_joints:
            return f"unknown joint names: {_names_text(unknown)}"
        missing = [name for name in self._names if name not in positions]
        if missing:
            return f"missing joints: {_names_text(missing)}"
        return _Layout(np.array([positions[name] for name in self._names], dtype=np.intp), len(key))

    # ------------------------------------------------------------------ joint_states

    def joint_states(self, now: float, stamp: float, names: Sequence[str], positions: Any, velocities: Any,
                     efforts: Any) -> list[AnomalyReport]:
        """A ``sensor_msgs/JointState``: speed, acceleration, effort and encoder checks (tracking: check())."""
        return self._run("joint_states", now, lambda t: self._joint_states(t, stamp, names, positions, velocities,
                                                                             efforts))

    def _load(self, layout: _Layout, row: np.ndarray, values: Any) -> bool:
        """Copy one array of a message into ``row`` (model order); False when it is not ``layout.size`` numbers."""
        try:
            if layout.order is None:
                if _length(values) != layout.size:
                    return False
                row[:] = values
            else:
                array = _vector(values, layout.size)
                if array is None:
                    return False
                row[:] = array[layout.order]
        except (TypeError, ValueError, OverflowError):
            return False
        return True

    def _joint_states(self, now: float, stamp: object, names: Sequence[str], positions: Any, velocities: Any,
                      efforts: Any) -> None:
        started = self._named_message("joint_states", now, stamp, self._layouts, names)
        if started is None:
            return
        t, layout = started
        # two (3, n) buffers, this message's and the previous one's: positions, velocities, efforts
        current, previous = self._samples[self._flip], self._samples[1 - self._flip]
        has_velocity, has_effort = _given(velocities), _given(efforts)
        if not (self._load(layout, current[0], positions)
                and (not has_velocity or self._load(layout, current[1], velocities))
                and (not has_effort or self._load(layout, current[2], efforts))):
            self._invalid("joint_states", now, f"{_length(positions)} positions, {_length(velocities)} velocities, "
                                               f"{_length(efforts)} efforts for {layout.size} names (velocities and "
                                               "efforts: none or one per name)")
            return
        if not has_velocity:
            current[1].fill(np.nan)
        if not has_effort:
            current[2].fill(np.nan)
        self._flip = 1 - self._flip
        q, dq, tau = current[0], current[1], current[2]
        given = current if has_velocity and has_effort else current[[0] + [1] * has_velocity + [2] * has_effort]
        flat = given.ravel()
        if not math.isfinite(float(flat.dot(flat))):  # NaN, Inf (or absurdly large values)
            finite = np.isfinite(given).all(axis=0) & (np.abs(given) < 1e150).all(axis=0)
            bad = [self._names[i] for i in np.flatnonzero(~finite)]
            self._invalid("joint_states", now, f"NaN, Inf or absurd value for {_names_text(bad)}", float(len(bad)))
            self._filter_valid = False
        else:
            self._valid("joint_states", now)

        c = self.config
        dt = t - self._sample_time  # NaN before the first sample
        self._sample_time = t
        gap_ok = 0.0 < dt <= c.encoder_max_gap
        rows = self._rows   # speed, acceleration, |effort|, encoder residual, mean residual
        np.abs(dq, out=rows[0])
        np.abs(tau, out=rows[2])
        if gap_ok:
            # acceleration: difference of the low-passed velocity
            filtered = self._dq_filtered
            step = self._scratch
            np.subtract(dq, filtered, out=step)
            step *= dt / (c.acceleration_filter + dt)
            filtered += step
            np.abs(step, out=rows[1])
            rows[1] /= dt
            if not self._filter_valid:
                np.copyto(filtered, dq)
                rows[1].fill(np.nan)
                self._filter_valid = True
            # encoders: a position step the measured velocity cannot explain
            residual = rows[3]
            np.subtract(q, previous[0], out=residual)
            if has_velocity:
                np.add(dq, previous[1], out=step)
                step *= 0.5 * dt
                residual -= step
                np.abs(residual, out=residual)
            else:
                np.abs(residual, out=residual)
                residual -= self._hard_velocity * dt
            np.fmax(residual, 0.0, out=residual)  # NaN (no previous position) counts as no jump
            np.subtract(residual, rows[4], out=step)
            step *= min(1.0, dt / c.encoder_noise_window)
            rows[4] += step
        else:
            np.copyto(self._dq_filtered, dq)
            self._filter_valid = bool(has_velocity)
            rows[1].fill(np.nan)
            rows[3].fill(np.nan)
        np.greater(rows, self._raise_at, out=self._above)
        if np.count_nonzero(self._above) == 0 and not any(h.any_active or h.timing for h in self._joint_holds):
            return  # nothing near a limit: the usual case
        self._joint_limits(now, t, dt, rows)

    def _joint_limits(self, now: float, t: float, dt: float, rows: np.ndarray) -> None:
        c = self.config
        speed, accel, effort, residual, mean = rows
        warn_clear = self._speed_warn - c.joint_speed_hysteresis
        warn = self._speed_warn_hold.update(t, speed, self._speed_warn, warn_clear)
        limit = self._speed_limit_hold.update(t, speed, self._speed_limit, self._speed_limit - c.joint_speed_hysteresis)
        self._speed_warn_hold.clear_with(self._speed_limit_hold, limit, speed, warn_clear)
        if warn is not None or limit is not None:
            self._speed_edges(now, speed)
        changed = self._accel_hold.update(t, accel, self._accel_limit, 0.8 * self._accel_limit)
        for i in _indices(changed):
            self._joint_edge(now, "joint_motion", "joint_acceleration_spike", i, self._accel_hold.active[i],
                             Severity.WARNING, float(accel[i]), float(self._accel_limit[i]), "rad/s²",
                             "acceleration (5 ms low-pass)")
        changed = self._effort_hold.update(t, effort, self._effort_limit, 0.8 * self._effort_limit)
        for i in _indices(changed):
            self._joint_edge(now, "collision", "effort_spike", i, self._effort_hold.active[i], Severity.ERROR,
                             float(effort[i]), float(self._effort_limit[i]), "N·m", "effort")
        changed = self._jump_hold.update(t, residual, c.encoder_jump, c.encoder_jump)
        for i in _indices(changed):
            active = bool(self._jump_hold.active[i])
            self._joint_edge(now, "encoder", "encoder_jump", i, active, Severity.ERROR, float(residual[i]),
                             c.encoder_jump, "rad", "position jump",
                             f"{self._names[i]} position jumped {residual[i]:.3f} rad more than its velocity explains "
                             f"in {dt * 1000:.1f} ms (limit {c.encoder_jump:g} rad)" if active else None)
        noise = c.encoder_noise_limit
        changed = self._noise_hold.update(t, mean, noise, 0.8 * noise)
        for i in _indices(changed):
            self._joint_edge(now, "encoder", "encoder_noise", i, self._noise_hold.active[i], Severity.WARNING,
                             float(mean[i]), noise, "rad", f"mean encoder residual ({c.encoder_noise_window:g} s)")

    def _joint_edge(self, now: float, detector: str, kind: str, i: int, active: bool | np.bool_, severity: Severity,
                    value: float, limit: float, unit: str, what: str, text: str | None = None) -> None:
        name = self._names[i]
        if active:
            description = text or f"{name} {what} {value:.4g} {unit} above {limit:.4g} {unit}"
            self._edge(now, detector, kind, name, severity, value, limit, description)
        else:
            self._edge(now, detector, kind, name, None, value, limit, f"{name} {what} back to {value:.4g} {unit}")

    def _speed_edges(self, now: float, speed: np.ndarray) -> None:
        level = np.where(self._speed_limit_hold.active, 2, self._speed_warn_hold.active).astype(np.int8)
        for i in np.flatnonzero(level != self._speed_level):
            name, value = self._names[i], float(speed[i])
            if level[i] == 0:
                self._edge(now, "joint_motion", "joint_speed", name, None, value, self._speed_warn,
                           f"{name} speed back to {value:.3g} rad/s")
            else:
                limit = self._speed_limit if level[i] == 2 else self._speed_warn
                severity = Severity.ERROR if level[i] == 2 else Severity.WARNING
                word = "limit" if level[i] == 2 else "warning level"
                self._edge(now, "joint_motion", "joint_speed", name, severity, value, limit,
                           f"{name} measured speed {value:.3g} rad/s above the {word} {limit:g} rad/s")
        self._speed_level = level

    # ------------------------------------------------------------------ imu

    def imu(self, now: float, stamp: float, orientation_xyzw: Any, angular_velocity: Any,
            linear_acceleration: Any) -> list[AnomalyReport]:
        """A ``sensor_msgs/Imu`` (pelvis): tilt, angular rate, falls."""
        return self._run("imu", now, lambda t: self._imu(t, stamp, orientation_xyzw, angular_velocity,
                                                         linear_acceleration))

    def _imu(self, now: float, stamp: object, orientation: Any, angular_velocity: Any, acceleration: Any) -> None:
        t = self._receive("imu", now, stamp)
        if t is None:
            return
        values = _imu_values(orientation, angular_velocity, acceleration)
        if values is None:
            self._invalid("imu", now, "orientation needs 4 numbers, angular velocity and acceleration 3 each")
            return
        x, y, z, w, wx, wy, wz, ax, ay, az = values
        if not math.isfinite(x + y + z + w + wx + wy + wz + ax + ay + az):
            self._invalid("imu", now, "NaN or Inf in orientation, angular velocity or acceleration")
            return
        c = self.config
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        if abs(norm - 1.0) > c.quaternion_norm_tolerance:
            self._invalid("imu", now, f"orientation quaternion has norm {norm:.3f}, not 1", norm)
            return
        self._valid("imu", now)
        x, y, z, w = x / norm, y / norm, z / norm, w / norm
        r22 = 1.0 - 2.0 * (x * x + y * y)
        tilt = math.acos(max(-1.0, min(1.0, r22)))
        bx, by = 2.0 * (x * z + y * w), 2.0 * (y * z - x * w)   # body up axis in the world (x, y)
        world_x = (1.0 - 2.0 * (y * y + z * z)) * wx + 2.0 * (x * y - z * w) * wy + bx * wz
        world_y = 2.0 * (x * y + z * w) * wx + (1.0 - 2.0 * (x * x + z * z)) * wy + by * wz
        sine = math.sin(tilt)
        tilt_rate = -(world_x * by - world_y * bx) / sine if sine > 1e-3 else 0.0
        rate = math.sqrt(wx * wx + wy * wy + wz * wz)
        force = math.sqrt(ax * ax + ay * ay + az * az)
        self._tilt, self._tilt_rate, self._rate, self._specific_force = tilt, tilt_rate, rate, force

        limits = self.envelope.posture
        raise_tilt = math.inf if self._posture_expected else 0.0
        warn_clear = limits.tilt.warn - c.tilt_hysteresis
        warn_changed = self._tilt_warn.update(t, tilt, limits.tilt.warn + raise_tilt, warn_clear)
        limit_changed = self._tilt_limit.update(t, tilt, limits.tilt.limit + raise_tilt,
                                                limits.tilt.limit - c.tilt_hysteresis)
        self._tilt_warn.clear_with(self._tilt_limit, limit_changed, tilt, warn_clear)
        if warn_changed or limit_changed:
            self._two_level(now, "posture", "tilt", self._tilt_warn.active, self._tilt_limit.active, tilt,
                            limits.tilt.warn, limits.tilt.limit, "rad", "pelvis tilt")
        warn_clear = limits.angular_rate.warn - c.angular_rate_hysteresis
        warn_changed = self._rate_warn.update(t, rate, limits.angular_rate.warn, warn_clear)
        limit_changed = self._rate_limit.update(t, rate, limits.angular_rate.limit,
                                                limits.angular_rate.limit - c.angular_rate_hysteresis)
        self._rate_warn.clear_with(self._rate_limit, limit_changed, rate, warn_clear)
        if warn_changed or limit_changed:
            self._two_level(now, "posture", "angular_rate", self._rate_warn.active, self._rate_limit.active, rate,
                            limits.angular_rate.warn, limits.angular_rate.limit, "rad/s", "pelvis angular rate")

        # a fall under way: past the tilt limit and still turning outward, or fast past the warning
        falling = (tilt > limits.tilt.limit and tilt_rate > c.fall_tilt_rate) or (
            tilt > limits.tilt.warn and tilt_rate > c.fall_fast_tilt_rate)
        if self._posture_expected:
            falling = False
        changed = self._fall_tilt.update(t, 1.0 if falling else 0.0, 0.5, 0.5)
        changed |= self._free_fall.update(t, -force, -c.fall_free_fall_accel, -c.fall_free_fall_accel)
        if changed:
            self._fall_edge(now)

    def _two_level(self, now: float, detector: str, kind: str, warn: bool, limit: bool, value: float,
                   warn_at: float, limit_at: float, unit: str, what: str, subject: str = "") -> None:
        if limit:
            self._edge(now, detector, kind, subject, Severity.ERROR, value, limit_at,
                       f"{what} {value:.3g} {unit} above the limit {limit_at:g} {unit}")
        elif warn:
            self._edge(now, detector, kind, subject, Severity.WARNING, value, warn_at,
                       f"{what} {value:.3g} {unit} above the warning level {warn_at:g} {unit}")
        else:
            self._edge(now, detector, kind, subject, None, value, warn_at, f"{what} back to {value:.3g} {unit}")

    def _fall_edge(self, now: float) -> None:
        c = self.config
        tilt_limit = self.envelope.posture.tilt.limit
        if self._fall_tilt.active:
            self._edge(now, "fall", "fall_under_way", "", Severity.CRITICAL, self._tilt, tilt_limit,
                       f"falling: pelvis tilt {self._tilt:.3f} rad turning outward at {self._tilt_rate:.2f} rad/s "
                       f"(limit {tilt_limit:g} rad, {c.fall_tilt_rate:g} rad/s; {c.fall_fast_tilt_rate:g} rad/s past "
                       f"{self.envelope.posture.tilt.warn:g} rad)")
        elif self._free_fall.active:
            self._edge(now, "fall", "fall_under_way", "", Severity.CRITICAL, self._specific_force,
                       c.fall_free_fall_accel, f"falling freely: specific force {self._specific_force:.2f} m/s² "
                       f"below {c.fall_free_fall_accel:g} m/s² for {c.fall_free_fall_hold:g} s")
        elif self._drop.active:
            self._edge(now, "fall", "fall_under_way", "", Severity.CRITICAL, self._drop_speed, c.fall_drop_speed,
                       f"falling: pelvis dropping at {self._drop_speed:.2f} m/s (limit {c.fall_drop_speed:g} m/s)")
        else:
            self._edge(now, "fall", "fall_under_way", "", None, self._tilt, tilt_limit,
                       f"no fall for {c.fall_clear_hold:g} s (tilt {self._tilt:.3f} rad)")

    def posture_change_expected(self, expected: bool) -> None:
        """The guard itself is changing the posture (lowering to rest): no tilt raises while True."""
        self._posture_expected = bool(expected)

    # ------------------------------------------------------------------ odom

    def odom(self, now: float, stamp: float, x: float, y: float, yaw: float, vx: float, vy: float, wz: float,
             z: float = math.nan) -> list[AnomalyReport]:
        """A ``nav_msgs/Odometry``: the geofence; ``z`` (pose height in odom, optional) for a falling pelvis."""
        return self._run("odom", now, lambda t: self._odom(t, stamp, (x, y, yaw, vx, vy, wz), z))

    def _odom(self, now: float, stamp: object, planar: tuple[object, ...], height: object) -> None:
        t = self._receive("odom", now, stamp)
        if t is None:
            return
        values = [_number(v) for v in planar]
        z = _number(height) if height is not None else math.nan
        if not all(math.isfinite(v) for v in values) or (height is not None and math.isinf(z)):
            self._invalid("odom", now, "NaN or Inf in position, heading or velocity")
            return
        self._valid("odom", now)
        x, y = values[0], values[1]
        c = self.config
        fence = self.envelope.geofence
        # The clearance changes by at most the distance moved: between exact computations (after 2 cm, at most
        # every 50 ms: a fall moves the pelvis fast and the computation costs ~0.2 ms) use that lower bound.
        moved = math.hypot(x - self._fence_at[0], y - self._fence_at[1])
        if not (moved <= FENCE_RECOMPUTE or t - self._fence_time < FENCE_PERIOD):
            self._fence_exact, self._fence_name = geofence_clearance(fence, x, y)
            self._fence_at, self._fence_time, moved = (x, y), t, 0.0
        clearance = self._clearance = self._fence_exact - moved
        name = self._fence_name
        warn_clear = -(fence.margin + c.geofence_hysteresis)
        warn_changed = self._fence_warn.update(t, -clearance, -fence.margin, warn_clear)
        limit_changed = self._fence_limit.update(t, -clearance, 0.0, -c.geofence_hysteresis)
        self._fence_warn.clear_with(self._fence_limit, limit_changed, -clearance, warn_clear)
        if warn_changed or limit_changed:
            where = f"({x:.2f}, {y:.2f}) m in {fence.frame}"
            if self._fence_limit.active:
                self._edge(now, "geofence", "geofence_breach", "", Severity.ERROR, clearance, 0.0,
                           f"position {where} is outside the geofence ({name}, {-clearance:.2f} m beyond)")
            elif self._fence_warn.active:
                self._edge(now, "geofence", "geofence_breach", "", Severity.WARNING, clearance, fence.margin,
                           f"position {where} is {clearance:.2f} m from {name}, inside the {fence.margin:g} m margin")
            else:
                self._edge(now, "geofence", "geofence_breach", "", None, clearance, fence.margin,
                           f"position {where} keeps {clearance:.2f} m from {name} again")
        if math.isfinite(z):
            if math.isfinite(self._z) and 0.0 < t - self._z_time <= 0.1:
                self._drop_speed = -(z - self._z) / (t - self._z_time)
                if self._drop.update(t, self._drop_speed, c.fall_drop_speed, c.fall_drop_speed):
                    self._fall_edge(now)
            self._z, self._z_time = z, t

    # ------------------------------------------------------------------ temperatures and battery

    def temperatures(self, now: float, stamp: float, names: Sequence[str], celsius: Any) -> list[AnomalyReport]:
        """``ftrobot_msgs/JointTemperatures``: actuator temperature warn / limit per joint."""
        return self._run("actuator_temperatures", now, lambda t: self._temperatures_(t, stamp, names, celsius))

    def _temperatures_(self, now: float, stamp: object, names: Sequence[str], celsius: Any) -> None:
        started = self._named_message("actuator_temperatures", now, stamp, self._temperature_layouts, names)
        if started is None:
            return
        t, layout = started
        values = _vector(celsius, layout.size)
        if values is None:
            self._invalid("actuator_temperatures", now, f"{_length(celsius)} temperatures for {layout.size} names")
            return
        if layout.order is not None:
            values = values[layout.order]
        low, high = TEMPERATURE_RANGE
        bad = ~((values >= low) & (values <= high))
        if bad.any():
            shown = [self._names[i] for i in np.flatnonzero(bad)]
            self._invalid("actuator_temperatures", now, f"NaN, Inf or implausible temperature (outside [{low:g}, "
                                                        f"{high:g}] °C) for {_names_text(shown)}", float(len(shown)))
            values = np.where(bad, np.nan, values)
        else:
            self._valid("actuator_temperatures", now)
        self._temperatures = values
        c = self.config
        limits = self.envelope.actuator_temperature
        warn_clear = limits.warn - c.temperature_hysteresis
        warn = self._temp_warn.update(t, values, limits.warn, warn_clear)
        limit = self._temp_limit.update(t, values, limits.limit, limits.limit - c.temperature_hysteresis)
        self._temp_warn.clear_with(self._temp_limit, limit, values, warn_clear)
        if warn is None and limit is None:
            return
        level = np.where(self._temp_limit.active, 2, np.where(self._temp_warn.active, 1, 0)).astype(np.int8)
        for i in np.flatnonzero(level != self._temp_level):
            self._two_level(now, "thermal", "actuator_temperature", bool(level[i] == 1), bool(level[i] == 2),
                            float(values[i]), limits.warn, limits.limit, "°C", f"{self._names[i]} temperature",
                            self._names[i])
        self._temp_level = level

    def battery(self, now: float, stamp: float, fraction: float) -> list[AnomalyReport]:
        """``sensor_msgs/BatteryState.percentage`` (a fraction 0..1)."""
        return self._run("battery", now, lambda t: self._battery_(t, stamp, fraction))

    def _battery_(self, now: float, stamp: object, fraction: object) -> None:
        t = self._receive("battery", now, stamp)
        if t is None:
            return
        value = _number(fraction)
        if not (math.isfinite(value) and -0.01 <= value <= 1.01):
            hint = ": a fraction 0..1, not a percentage" if math.isfinite(value) and 1.01 < value <= 100.0 else ""
            self._invalid("battery", now, f"charge {fraction!r} is not a fraction 0..1{hint}")
            return
        self._valid("battery", now)
        self._battery = value
        c = self.config
        limits = self.envelope.battery
        if self._battery_low.update(t, -value, -limits.warn, -(limits.warn + c.battery_hysteresis)):
            active = self._battery_low.active
            self._edge(now, "battery", "battery_low", "", Severity.WARNING if active else None, value, limits.warn,
                       f"battery at {value:.1%}, below the warning level {limits.warn:.0%}" if active
                       else f"battery at {value:.1%}, above the warning level again")
        if self._battery_minimum.update(t, -value, -limits.minimum, -(limits.minimum + c.battery_hysteresis)):
            active = self._battery_minimum.active
            self._edge(now, "battery", "battery_minimum", "", Severity.CRITICAL if active else None, value,
                       limits.minimum, f"battery at {value:.1%}, below the minimum {limits.minimum:.0%}: power down "
                       "while it can still lower the robot" if active else f"battery at {value:.1%}, above the minimum")

    # ------------------------------------------------------------------ commands

    def command_forwarded(self, now: float, indices: np.ndarray, positions: np.ndarray) -> list[AnomalyReport]:
        """The gate forwarded a joint command: model-order ``indices`` now track ``positions`` (rad)."""
        return self._run("command_forwarded", now, lambda t: self._command_forwarded(indices, positions))

    def _command_forwarded(self, indices: Any, positions: Any) -> None:
        try:
            index = np.asarray(indices)
            target = np.asarray(positions, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            self._forwarded_refused += 1
            return
        if index.ndim != 1 or index.dtype.kind not in "iu":
            self._forwarded_refused += 1
            return
        key = index.dtype.str.encode() + index.tobytes()
        if key != self._checked_index:   # streams repeat their joint list: check each list once
            if index.size and (index.min() < 0 or index.max() >= self._n):
                self._forwarded_refused += 1
                return
            self._checked_index = key
        if target.shape != index.shape or not math.isfinite(float(target.dot(target))):
            self._forwarded_refused += 1
            return
        self._reference[index] = target
        self._forwarded += 1
        self._referenced = True

    def tracking_paused(self, paused: bool) -> None:
        """The gate stopped (True) or resumed (False) forwarding. Pausing forgets the references and clears
        tracking errors (reported at the next check()); resuming waits for the next forwarded command."""
        paused = bool(paused)
        if paused == self._paused:
            return
        self._paused = paused
        self._reference.fill(np.nan)
        self._referenced = False
        self._tracking_error.fill(np.nan)
        self._out, kept = [], self._out
        when = self._last_now if math.isfinite(self._last_now) else self._start
        for i in np.flatnonzero(self._tracking_hold.active):
            self._edge(when, "tracking", "tracking_error", self._names[i], None, 0.0,
                       self.config.tracking_error, f"{self._names[i]} tracking no longer checked: the gate "
                       f"{'stopped forwarding' if paused else 'resumed'}")
        self._pending.extend(self._out)
        self._out = kept
        self._tracking_hold.reset()

    def command_received(self, now: float, topic: str) -> list[AnomalyReport]:
        """A message arrived on a ``guard/in/*`` topic (any, accepted or not): flood detection."""
        return self._run("command_received", now, lambda t: self._command_received(t, topic))

    def _flood_limit(self, topic: str) -> float:
        for suffix, rate in self.config.command_rate_limits.items():
            if topic == suffix or topic.endswith("/" + suffix):
                return float(rate)
        return self.config.default_command_rate_limit

    def _command_received(self, now: float, name: object) -> None:
        topic = name if isinstance(name, str) else repr(name)[:80]
        times = self._commands.get(topic)
        if times is None:
            if len(self._commands) >= MAX_TOPICS:
                self._dropped_topics += 1
                return
            window = self.config.command_rate_window
            times = deque(maxlen=max(2, math.ceil(self._flood_limit(topic) * window * 2.0)))
            self._commands[topic] = times
        times.append(now)
        self._flood_check(now, topic, times)

    def _flood_check(self, now: float, topic: str, times: deque[float]) -> None:
        window = self.config.command_rate_window
        while times and (now - times[0] > window or times[0] > now):
            times.popleft()
        limit = self._flood_limit(topic)
        rate = len(times) / window
        if topic not in self._floods and rate > limit:
            self._floods.add(topic)
            self._edge(now, "command_rate", "command_flood", topic, Severity.ERROR, rate, limit,
                       f"{topic}: {rate:.0f} messages/s over {window:g} s, limit {limit:g}/s")
        elif topic in self._floods and rate < 0.5 * limit:
            self._floods.discard(topic)
            self._edge(now, "command_rate", "command_flood", topic, None, rate, limit,
                       f"{topic}: {rate:.0f} messages/s, below half the limit {limit:g}/s")

    # ------------------------------------------------------------------ periodic

    def check(self, now: float, wall_time: float) -> list[AnomalyReport]:
        """At the control rate: clock jumps, the input watchdogs, tracking, flood clears.

        ``wall_time`` is a monotonic wall clock (``time.monotonic()``) in seconds.
        """
        return self._run("check", now, lambda t: self._check(t, wall_time))

    def _check(self, now: float, wall_time: object) -> None:
        self._out.extend(self._pending)
        self._pending.clear()
        self._clock(now, _number(wall_time))
        for state in self._inputs.values():
            self._watchdog(now, state)
        self._tracking(now)
        for topic in list(self._floods):
            self._flood_check(now, topic, self._commands[topic])

    def _clock(self, now: float, wall: float) -> None:
        c = self.config
        if not math.isfinite(wall):
            return
        last_now, last_wall = self._last_now, self._last_wall
        self._last_now, self._last_wall = now, wall
        if not math.isfinite(last_now) or not math.isfinite(last_wall):
            return
        advanced, elapsed = now - last_now, wall - last_wall
        drift = advanced - max(elapsed, 0.0)
        self._last_drift = drift
        if advanced < 0.0 or drift > c.clock_jump_tolerance:
            if last_now != 0.0:   # 0: the clock had no time yet (ROS sim time before the first /clock)
                self._last_jump_wall = wall
                what = (f"the clock went back {-advanced:.3f} s" if advanced < 0.0 else
                        f"the clock jumped {advanced:.3f} s ahead in {max(elapsed, 0.0):.3f} s of wall time")
                self._edge(now, "clock", "clock_jump", "", Severity.ERROR, advanced, c.clock_jump_tolerance,
                           f"{what} (tolerance {c.clock_jump_tolerance:g} s)")
            # keep the watchdogs measuring real elapsed time across the jump
            shift = drift
            self._start += shift
            for state in self._inputs.values():
                state.last_receipt += shift
            for times in self._commands.values():
                for k in range(len(times)):
                    times[k] += shift
        elif ("clock_jump", "") in self._active and wall - self._last_jump_wall >= c.clock_clear_hold:
            self._edge(now, "clock", "clock_jump", "", None, advanced, c.clock_jump_tolerance,
                       f"no clock jump for {c.clock_clear_hold:g} s")

    def _watchdog(self, now: float, state: _Input) -> None:
        if math.isfinite(state.last_receipt):
            age = now - state.last_receipt
            stale = age > state.max_age
        else:
            age = now - self._start
            stale = age > max(self.config.startup_grace, state.max_age)
        if stale and not state.stale:
            state.stale = True
            state.fresh_run = 0
            text = (f"no {state.name} for {age:.3f} s (limit {state.max_age:g} s)" if state.count
                    else f"no {state.name} received in {age:.3f} s since start")
            self._edge(now, "stale_input", "input_stale", state.name, state.severity, age, state.max_age, text)
        elif state.stale and not stale and state.fresh_run >= self.config.stale_clear_messages:
            state.stale = False
            self._edge(now, "stale_input", "input_stale", state.name, None, age, state.max_age,
                       f"{state.name} arriving again ({state.fresh_run} messages in time)")

    def _tracking(self, now: float) -> None:
        if self._paused or not self._referenced or self._inputs["joint_states"].stale:
            return
        c = self.config
        error = np.abs(self._samples[1 - self._flip][0] - self._reference)
        self._tracking_error = error
        np.fmax(self._rows[0], 0.0, out=self._speed)  # |dq| with NaN as 0
        limit = c.tracking_error + c.tracking_lag * self._speed
        changed = self._tracking_hold.update(now, error, limit, limit - c.tracking_hysteresis)
        if changed is None:
            return
        for i in np.flatnonzero(changed):
            name = self._names[i]
            if self._tracking_hold.active[i]:
                self._edge(now, "tracking", "tracking_error", name, Severity.ERROR, float(error[i]), float(limit[i]),
                           f"{name} is {error[i]:.3f} rad from its commanded {self._reference[i]:.3f} rad for "
                           f"{c.tracking_hold:g} s (limit {limit[i]:.3f} rad at {self._speed[i]:.2f} rad/s)")
            else:
                self._edge(now, "tracking", "tracking_error", name, None, float(error[i]), float(limit[i]),
                           f"{name} follows its command again ({error[i]:.3f} rad)")

    # ------------------------------------------------------------------ state

    def active(self) -> list[AnomalyReport]:
        """The raise report of every active (kind, subject), sorted by kind and subject."""
        return [self._active[key] for key in sorted(self._active)]

    def statuses(self) -> list[DetectorStatus]:
        """One status per detector for ``/diagnostics``."""
        by_detector: dict[str, list[AnomalyReport]] = {name: [] for name in DETECTORS}
        for report in self.active():
            by_detector.setdefault(report.detector, []).append(report)
        values = self._status_values()
        statuses = []
        for detector, reports in by_detector.items():
            worst = max((r.severity for r in reports), default=Severity.INFO)
            level = 0 if worst == Severity.INFO else 1 if worst == Severity.WARNING else 2
            if reports:
                first = reports[0]
                more = f" (+{len(reports) - 1} more)" if len(reports) > 1 else ""
                message = clip_text(f"{first.kind} {first.subject}: {first.description}{more}".replace("  ", " "))
            else:
                message = "OK"
            pairs = (("active", str(len(reports))), ("raised", str(self._raised.get(detector, 0))),
                     *values.get(detector, ()))
            statuses.append(DetectorStatus(detector, level, message, pairs))
        return statuses

    def _status_values(self) -> dict[str, tuple[tuple[str, str], ...]]:
        def worst(array: np.ndarray, unit: str) -> tuple[str, str]:
            if not np.isfinite(array).any():
                return ("max", "n/a")
            i = int(np.nanargmax(array))
            return ("max", f"{array[i]:.4g} {unit} ({self._names[i]})")

        ages = []
        for name, state in self._inputs.items():
            age = self._last_now - state.last_receipt if math.isfinite(state.last_receipt) else math.inf
            ages.append((f"{name} age", f"{age:.3f} s (limit {state.max_age:g} s)" if math.isfinite(age)
                         else "never received"))
        return {
            "tracking": (worst(self._tracking_error, "rad"), ("paused", str(self._paused)),
                         ("commands", str(self._forwarded)), ("malformed commands", str(self._forwarded_refused))),
            "joint_motion": (worst(self._rows[0], "rad/s"),),
            "collision": (worst(self._rows[2] / self._effort_limit, "x limit"),),
            "encoder": (worst(self._rows[4], "rad mean residual"),),
            "posture": (("tilt", f"{self._tilt:.3f} rad"), ("angular rate", f"{self._rate:.3f} rad/s")),
            "fall": (("tilt rate", f"{self._tilt_rate:.3f} rad/s"),
                     ("specific force", f"{self._specific_force:.2f} m/s²"),
                     ("posture change expected", str(self._posture_expected))),
            "thermal": (worst(self._temperatures, "°C"),),
            "battery": (("charge", f"{self._battery:.3f}"),),
            "stale_input": tuple(ages),
            "input_validation": tuple((name, state.invalid_reason or "valid") for name, state in self._inputs.items()
                                      if state.invalid.active),
            "command_rate": tuple((topic, f"{len(times) / self.config.command_rate_window:.0f}/s")
                                  for topic, times in sorted(self._commands.items())[:8]),
            "clock": (("last drift", f"{self._last_drift:.4f} s"),),
            "geofence": (("clearance", f"{self._clearance:.2f} m ({self._fence_name})"),),
        }


def _length(values: Any) -> int:
    try:
        return len(values)
    except TypeError:
        return -1


def _indices(mask: np.ndarray | None) -> list[int]:
    return [] if mask is None else [int(i) for i in np.flatnonzero(mask)]


def _given(values: Any) -> bool:
    """Whether an optional array was given (JointState leaves velocity and effort empty when unknown)."""
    return values is not None and _length(values) != 0


def _imu_values(orientation: Any, angular_velocity: Any, acceleration: Any) -> tuple[float, ...] | None:
    """The 10 numbers of an IMU message (NaN for what is no number), or None when the lengths are wrong."""
    try:
        if (len(orientation), len(angular_velocity), len(acceleration)) != (4, 3, 3):
            return None
        values = (*orientation, *angular_velocity, *acceleration)
    except TypeError:
        return None
    if all(isinstance(v, float) for v in values):  # numpy float64 too; never a bool or a string
        return values
    return tuple(_number(v) for v in values)
