"""The command gate: what may move the robot passes here, is forwarded, clamped or refused, and says why.

:class:`CommandGate` is the stateful part of the gate between the robot's own controllers and the hardware
(``guard/in/joint_command`` → ``hw/joint_command``, ``guard/in/cmd_vel`` → ``hw/cmd_vel``,
``guard/in/task_request`` → ``guard/out/task_request``). The limit checks are the pure functions of
:mod:`.envelope_checks`; the gate adds what needs memory or context: the safety mode, the stream's anchor
(the last forwarded position of every joint), command stamps and time, service hours, the odometry pose
and counts for ``/diagnostics``. No clock, no threads, no rclpy: the node passes the time.

Rules (the first that fails gives the one-line reason; a refusal changes nothing in the gate):

* **Mode.** Motion and tasks are forwarded only while the supervisor forwards (:class:`GateMode`, from
  ``SupervisorOutput.forward_commands``); REDUCED applies the envelope's REDUCED profile (lower joint
  velocity and effort, hand speed, base speed scale).
* **Anchor.** Every joint command is checked against the anchor: per joint, the position last forwarded,
  or the measured posture the node re-anchored to (:meth:`CommandGate.reanchor`). Before the first
  re-anchoring, and after a failed one, everything is refused. A refused command leaves the anchor
  alone. When the mode stops forwarding the gate keeps its anchor; the node re-anchors to the measured
  posture before forwarding resumes (the supervisor waits for it: ``reanchor_required``).
* **Service hours.** Outside them nothing moves and no task starts (joint commands, non-zero base
  velocity, tasks). The guard's own lowering stream (:meth:`CommandGate.guard_command`) is exempt: it is
  a safety action.
* **Stamps.** ``now`` and a command's header ``stamp`` are seconds on the same clock: the node's ROS
  clock (system time, or sim time under ``use_sim_time``). Refused: a stamp that is not finite or not
  positive (an unset header), older than ``now - max_command_age`` (stale), later than
  ``now + max_future`` (from the future), or not later than the stamp of the last forwarded command
  (stamps must increase; after re-anchoring, later than the re-anchoring time).
* **Elapsed time for the step check.** A position step may not imply more than the mode's velocity limit
  over the time elapsed since the anchor; beyond it the step is shortened (clamped), beyond the rated
  velocity the command is refused (:func:`.envelope_checks.check_joint_command`). The elapsed time is::

      budget  = min(credit + (now - now_at_anchor), max_step_interval + jitter_allowance)
      elapsed = min(stamp - stamp_at_anchor, budget, max_step_interval)
      credit  = budget - elapsed            (kept when the command is forwarded)

  ``credit`` starts at ``jitter_allowance`` on re-anchoring. So the stamps give the stream's own timing
  (DDS delay and executor jitter do not shrink a step), but receive time bounds what the stamps may
  claim: over any run of forwarded commands, the sum of the elapsed times never exceeds the guard's own
  clock time since the anchor plus ``jitter_allowance``. A stream with lying stamps (advancing faster
  than real time) therefore moves no joint more than velocity limit × (real time + jitter_allowance);
  it can neither bank idle time (the budget is capped) nor replay it. ``max_step_interval`` caps one
  step: the hardware jumps its target at once, so a command after a pause moves no further than a step
  of a 20 Hz stream; a slower stream is clamped to that pace. The same cap bounds a burst: commands
  queued behind an executor stall and handed over together move the hardware's target at once, so
  together they get at most ``max_step_interval + jitter_allowance`` of motion. An honest stream of
  period P <= ``max_step_interval`` is never clamped, even at the velocity limit, as long as its stamps
  lead the guard's clock by at most ``jitter_allowance`` and its delivery delay drops by at most
  ``max_step_interval + jitter_allowance - P`` (53 ms at 500 Hz: DDS jitter of ~0.3 ms and executor
  backlogs of tens of ms pass untouched; a longer stall is clamped, the safe side).
* **Base velocity.** A zero twist is always forwarded, in every mode and without a pose: stopping is
  always allowed (the hardware resets ``cmd_vel`` to zero after 0.5 s anyway). Any other twist needs a
  forwarding mode, service hours, a fresh odometry pose (``max_pose_age``, by default the envelope's
  ``inputs.odom``) and a path that keeps the
  geofence for ``base_horizon`` s plus the pose's age (:func:`.envelope_checks.check_base_motion`:
  the hardware acts on a twist for up to 0.5 s without a new one); speed is clamped to the mode's limit,
  refused beyond the hard limit.
* **Tasks.** Forwarded only in a forwarding mode, whitelisted and not prohibited (:func:`.check_task`),
  inside service hours.
* **Bad input never crashes the gate**: anything that cannot be read is refused with its reason.

The guard's own lowering stream (POWER_DOWN) uses :meth:`CommandGate.guard_command`: all joints in model
order, checked against the hard range (refused beyond), the soft range (clamped inside) and the rated
velocity (refused beyond: a lowering plan that jumps is broken, and the sequencer falls back to
DAMPING), not against the mode or service hours. Its elapsed time is the guard clock's time since the
anchor (at most ``max_step_interval``); each forwarded lowering command becomes the anchor.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from ftrobot_guard.safety.envelope import Envelope, MotionProfile
from ftrobot_guard.safety.envelope_checks import (
    CheckResult,
    Clamp,
    Outcome,
    check_base_motion,
    check_base_velocity,
    check_joint_command,
    check_service_hours,
    check_task,
)
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import SupervisorOutput

MAX_REASON = 300   # characters of a reason (one line)


def _one_line(text: object) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 3] + "..."


def _seconds(value: object) -> float | None:
    """A finite time in seconds, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) else None


@dataclass(frozen=True)
class GateMode:
    """What the supervisor allows now, as the gate needs it."""

    forward: bool     # the supervisor allows motion now (SupervisorOutput.forward_commands)
    reduced: bool     # apply the envelope's REDUCED profile
    mode_name: str    # for reasons ("not forwarded: robot in SAFE_STOP")

    @classmethod
    def from_supervisor(cls, output: SupervisorOutput) -> GateMode:
        return cls(forward=output.forward_commands, reduced=output.mode is SafetyMode.REDUCED,
                   mode_name=output.mode.name)


@dataclass(frozen=True)
class GateConfig:
    """Timing of the gate (seconds); every value is checked in ``__post_init__`` (one-line ValueError)."""

    max_command_age: float = 0.1      # a command stamped earlier than now - this is stale: refused
    max_future: float = 0.02          # a command stamped later than now + this is from the future: refused
    max_step_interval: float = 0.05   # the elapsed time of one position step never exceeds this (20 Hz pace)
    jitter_allowance: float = 0.005   # delivery-delay variation tolerated (DDS jitter, executor backlog); also the
    #                                   most time a stream's stamps can claim beyond the guard's clock
    max_pose_age: float | None = None  # base motion needs an odometry pose at most this old (None: envelope's odom age)
    base_horizon: float = 0.5         # s of motion a twist may cause (hardware cmd_vel timeout): must keep the geofence

    def __post_init__(self) -> None:
        bounds = {"max_command_age": (0.0, 10.0), "max_future": (0.0, 1.0), "max_step_interval": (0.0, 1.0),
                  "jitter_allowance": (0.0, 0.1), "max_pose_age": (0.0, 10.0), "base_horizon": (0.0, 10.0)}
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if name == "max_pose_age" and value is None:
                continue
            seconds = _seconds(value)
            open_low = name in ("max_command_age", "max_step_interval", "max_pose_age", "base_horizon")
            if seconds is None or seconds > high or seconds < low or (open_low and seconds == low):
                interval = f"({low:g}, {high:g}]" if open_low else f"[{low:g}, {high:g}]"
                raise ValueError(f"GateConfig.{name}: {value!r} is not a number of seconds in {interval}")
            object.__setattr__(self, name, seconds)


_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False
_EMPTY_INDEX = np.zeros(0, dtype=np.int64)
_EMPTY_INDEX.flags.writeable = False


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _frozen_optional(array: np.ndarray | None) -> np.ndarray | None:
    return None if array is None else _frozen(array)


@dataclass(frozen=True, eq=False)
class JointGateDecision:
    """What happened to one joint command; arrays in the command's name order, read-only."""

    forwarded: bool
    outcome: Outcome
    reason: str                    # one line: the refusal or the clamps (joint, quantity, value, limit); "" if accepted
    names: tuple[str, ...]
    positions: np.ndarray          # rad, what is forwarded (empty when refused)
    velocities: np.ndarray | None  # rad/s, None when the command gave none
    efforts: np.ndarray | None     # N·m feed-forward, None when the command gave none
    indices: np.ndarray            # model-order joint index of each name (for the tracking detector)
    clamps: tuple[Clamp, ...]
    elapsed: float = 0.0           # s, the time the step check allowed (0 when refused before it)


@dataclass(frozen=True)
class BaseGateDecision:
    forwarded: bool
    outcome: Outcome
    reason: str
    vx: float = 0.0     # m/s forward (base frame)
    vy: float = 0.0     # m/s left
    wz: float = 0.0     # rad/s yaw rate
    clamps: tuple[Clamp, ...] = ()


@dataclass(frozen=True)
class TaskGateDecision:
    forwarded: bool
    reason: str
    task_kind: str


@dataclass(frozen=True)
class InputStatistics:
    accepted: int = 0       # forwarded as given
    clamped: int = 0        # forwarded after clamping
    refused: int = 0
    last_refusal: str = ""  # the latest refusal's reason

    @property
    def forwarded(self) -> int:
        return self.accepted + self.clamped


@dataclass(frozen=True)
class GateStatistics:
    """Counts since the gate started, per input (for ``/diagnostics``)."""

    joint_command: InputStatistics = field(default_factory=InputStatistics)
    guard_command: InputStatistics = field(default_factory=InputStatistics)
    base_velocity: InputStatistics = field(default_factory=InputStatistics)
    task_request: InputStatistics = field(default_factory=InputStatistics)
    last_refusal: str = ""  # the latest refusal of any input, prefixed with the input's name

    def inputs(self) -> Iterator[tuple[str, InputStatistics]]:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, InputStatistics):
                yield item.name, value


class _Counter:
    __slots__ = ("accepted", "clamped", "last_refusal", "refused")

    def __init__(self) -> None:
        self.accepted = self.clamped = self.refused = 0
        self.last_refusal = ""

    def snapshot(self) -> InputStatistics:
        return InputStatistics(self.accepted, self.clamped, self.refused, self.last_refusal)


def _refused_joint(reason: str, names: object = ()) -> JointGateDecision:
    shown = tuple(str(name)[:64] for name in names[:256]) if isinstance(names, (list, tuple)) else ()
    return JointGateDecision(False, Outcome.REFUSED, _one_line(reason), shown, _EMPTY, None, None, _EMPTY_INDEX, ())


def _refused_base(reason: str) -> BaseGateDecision:
    return BaseGateDecision(False, Outcome.REFUSED, _one_line(reason))


class CommandGate:
    """Forward, clamp or refuse the robot's commands against a (signed, loaded) envelope.

    Not thread-safe: one node calls it from one executor (the safety core's single process).
    """

    def __init__(self, envelope: Envelope, config: GateConfig | None = None) -> None:
        self._envelope = envelope
        self._config = config if config is not None else GateConfig()
        pose_age = self._config.max_pose_age
        self._max_pose_age = envelope.input_max_age["odom"] if pose_age is None else pose_age
        joints = envelope.joints
        self._lowering_profile = MotionProfile("LOWERING", joints.hard_velocity, joints.soft_effort, 0.0, 0.0)
        self._anchor: np.ndarray | None = None   # model order, rad
        self._anchor_stamp = -math.inf           # stamp of the last forwarded command (or re-anchoring time)
        self._anchor_time = -math.inf            # guard clock when it was forwarded (or re-anchored)
        self._credit = 0.0                       # s of receive time not yet spent on steps
        self._hours_cache: tuple[float, float, CheckResult] | None = None
        self._counters = {name: _Counter() for name in ("joint_command", "guard_command", "base_velocity",
                                                         "task_request")}
        self._last_refusal = ""

    # -- state ---------------------------------------------------------------------------------

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def config(self) -> GateConfig:
        return self._config

    @property
    def anchored(self) -> bool:
        return self._anchor is not None

    @property
    def anchor_positions(self) -> np.ndarray | None:
        """A copy of the anchor (model order, rad): what the hardware was last told to hold; None if un-anchored."""
        return None if self._anchor is None else self._anchor.copy()

    @property
    def anchor_stamp(self) -> float:
        """Stamp of the last forwarded command (or the re-anchoring time); a new command must be later."""
        return self._anchor_stamp

    def reanchor(self, now: float, measured_positions: Sequence[float] | np.ndarray) -> str | None:
        """Anchor the stream to the measured posture (model order). None when done; otherwise the reason,
        and the gate is un-anchored (refusing every joint command) until a re-anchoring succeeds."""
        self._anchor = None
        count = len(self._envelope.joints)
        t = _seconds(now)
        if t is None:
            return _one_line(f"re-anchoring refused: clock time {now!r} is not a finite number")
        try:
            measured = np.array(measured_positions, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return "re-anchoring refused: measured positions are not a list of numbers"
        if measured.shape != (count,):
            return f"re-anchoring refused: {count} measured positions needed in model order, got shape {measured.shape}"
        bad = np.flatnonzero(~np.isfinite(measured))
        if bad.size:
            names = ", ".join(self._envelope.joints.names[int(i)] for i in bad[:5])
            return f"re-anchoring refused: measured position NaN or Inf for {names}"
        self._anchor = measured
        self._anchor_stamp = t
        self._anchor_time = t
        self._credit = self._config.jitter_allowance
        return None

    def statistics(self) -> GateStatistics:
        c = self._counters
        return GateStatistics(c["joint_command"].snapshot(), c["guard_command"].snapshot(),
                              c["base_velocity"].snapshot(), c["task_request"].snapshot(), self._last_refusal)

    def _count(self, which: str, outcome: Outcome, reason: str) -> None:
        counter = self._counters[which]
        if outcome is Outcome.ACCEPTED:
            counter.accepted += 1
        elif outcome is Outcome.CLAMPED:
            counter.clamped += 1
        else:
            counter.refused += 1
            counter.last_refusal = reason
            self._last_refusal = f"{which}: {reason}"

    # -- service hours ---------------------------------------------------------------------------

    def _service_hours(self, local_time: object) -> CheckResult:
        """check_service_hours, cached for the current minute (its answer changes only on whole minutes)."""
        if not (isinstance(local_time, dt.datetime) and local_time.tzinfo is not None):
            return check_service_hours(self._envelope.service_hours, local_time)  # type: ignore[arg-type]
        timestamp = local_time.timestamp()
        cached = self._hours_cache
        if cached is not None and cached[0] <= timestamp < cached[1]:
            return cached[2]
        hours = self._envelope.service_hours
        result = check_service_hours(hours, local_time)
        offset = local_time.astimezone(hours.zone).utcoffset()
        if offset is not None and offset.total_seconds() % 60 == 0:  # local minutes start on UTC minutes
            start = math.floor(timestamp / 60.0) * 60.0
            self._hours_cache = (start, start + 60.0, result)
        return result

    # -- joint commands --------------------------------------------------------------------------

    def joint_command(self, now: float, stamp: float, names: Sequence[str],
                      positions: Sequence[float] | np.ndarray,
                      velocities: Sequence[float] | np.ndarray | None,
                      efforts: Sequence[float] | np.ndarray | None,
                      mode: GateMode, local_time: dt.datetime) -> JointGateDecision:
        """Forward, clamp or refuse a joint command (``JointTrajectory``: joint names and its first point).

        ``now``: the guard's clock when the command is handled; ``stamp``: the command's header stamp, on
        the same clock; ``local_time``: the wall clock (timezone-aware) for the service hours.
        """
        try:
            decision = self._joint_command(now, stamp, names, positions, velocities, efforts, mode, local_time)
        except Exception as exc:  # bad input of any shape is refused, never a crash
            decision = _refused_joint(f"malformed joint command ({type(exc).__name__}: {exc})")
        self._count("joint_command", decision.outcome, decision.reason)
        return decision

    def _joint_command(self, now: float, stamp: float, names: Sequence[str],
                       positions: Sequence[float] | np.ndarray,
                       velocities: Sequence[float] | np.ndarray | None,
                       efforts: Sequence[float] | np.ndarray | None,
                       mode: GateMode, local_time: dt.datetime) -> JointGateDecision:
        config = self._config
        if not mode.forward:
            return _refused_joint(f"not forwarded: robot in {mode.mode_name}", names)
        if self._anchor is None:
            return _refused_joint("not forwarded: not anchored (re-anchor to the measured posture first)", names)
        t = _seconds(now)
        if t is None:
            return _refused_joint(f"not forwarded: clock time {now!r} is not a finite number", names)
        hours = self._service_hours(local_time)
        if not hours.allowed:
            return _refused_joint(f"not forwarded: {hours.reason}", names)
        s = _seconds(stamp)
        if s is None or s <= 0.0:
            return _refused_joint(f"header stamp {stamp!r} is unset or not a finite time", names)
        if s < t - config.max_command_age:
            return _refused_joint(f"stale: header stamp is {t - s:.4f} s old (limit {config.max_command_age:g} s)",
                                  names)
        if s > t + config.max_future:
            return _refused_joint(f"future: header stamp is {s - t:.4f} s ahead of the guard's clock "
                                  f"(limit {config.max_future:g} s)", names)
        if s <= self._anchor_stamp:
            return _refused_joint(f"header stamp {s:.6f} is not later than the last forwarded command's or the "
                                  f"re-anchoring ({self._anchor_stamp:.6f}): stamps must increase", names)
        budget = min(self._credit + max(0.0, t - self._anchor_time),
                     config.max_step_interval + config.jitter_allowance)
        elapsed = min(s - self._anchor_stamp, budget, config.max_step_interval)
        if not elapsed > 0.0:
            return _refused_joint("no guard clock time left for a step: the stamps claim more time than passed on "
                                  "the guard's clock (commands stamped ahead, or released together after a stall)",
                                  names)
        checked = check_joint_command(
            self._envelope, self._envelope.profile(mode.reduced), names, positions,
            () if velocities is None else velocities, () if efforts is None else efforts,
            previous=self._anchor, elapsed=elapsed)
        if not checked.forwarded:
            return _refused_joint(checked.reason, names)
        self._anchor[checked.indices] = checked.positions
        self._anchor_stamp = s
        self._anchor_time = t
        self._credit = budget - elapsed
        return JointGateDecision(True, checked.outcome, _one_line(checked.reason), checked.names,
                                 _frozen(checked.positions), _frozen_optional(checked.velocities),
                                 _frozen_optional(checked.efforts), checked.indices, checked.clamps, elapsed)

    def guard_command(self, now: float, positions: Sequence[float] | np.ndarray) -> JointGateDecision:
        """The guard's own lowering stream (POWER_DOWN): all joints in model order, exempt from mode and
        service hours; hard range and rated velocity refuse, soft range clamps; forwarded = the new anchor."""
        try:
            decision = self._guard_command(now, positions)
        except Exception as exc:  # never a crash
            decision = _refused_joint(f"malformed lowering command ({type(exc).__name__}: {exc})")
        self._count("guard_command", decision.outcome, decision.reason)
        return decision

    def _guard_command(self, now: float, positions: Sequence[float] | np.ndarray) -> JointGateDecision:
        names = self._envelope.joints.names
        if self._anchor is None:
            return _refused_joint("lowering command not forwarded: not anchored (re-anchor to the measured "
                                  "posture first)", names)
        t = _seconds(now)
        if t is None:
            return _refused_joint(f"lowering command not forwarded: clock time {now!r} is not a finite number", names)
        if len(positions) != len(names):
            return _refused_joint(f"lowering command: {len(positions)} positions, expected {len(names)} in model "
                                  "order", names)
        elapsed = min(t - self._anchor_time, self._config.max_step_interval)
        if not elapsed > 0.0:
            return _refused_joint("lowering command: no time elapsed since the last forwarded command", names)
        checked = check_joint_command(self._envelope, self._lowering_profile, names, positions,
                                      previous=self._anchor, elapsed=elapsed)
        if not checked.forwarded:
            return _refused_joint(f"lowering command: {checked.reason}", names)
        self._anchor[checked.indices] = checked.positions
        self._anchor_stamp = max(self._anchor_stamp, t)
        self._anchor_time = t
        self._credit = 0.0
        return JointGateDecision(True, checked.outcome, _one_line(checked.reason), checked.names,
                                 _frozen(checked.positions), None, None, checked.indices, checked.clamps, elapsed)

    # -- base velocity ---------------------------------------------------------------------------

    def base_velocity(self, now: float, linear: Sequence[float], angular: Sequence[float], mode: GateMode,
                      pose: tuple[float, float, float] | None, pose_age: float,
                      local_time: dt.datetime) -> BaseGateDecision:
        """Forward, clamp or refuse a ``geometry_msgs/Twist``. ``pose``: (x, y, yaw) in odom from the latest
        odometry, ``pose_age``: its age in s on the guard's clock."""
        try:
            decision = self._base_velocity(linear, angular, mode, pose, pose_age, local_time)
        except Exception as exc:  # never a crash
            decision = _refused_base(f"malformed base velocity ({type(exc).__name__}: {exc})")
        self._count("base_velocity", decision.outcome, decision.reason)
        return decision

    def _base_velocity(self, linear: Sequence[float], angular: Sequence[float], mode: GateMode,
                       pose: tuple[float, float, float] | None, pose_age: float,
                       local_time: dt.datetime) -> BaseGateDecision:
        components = [*linear, *angular]
        if len(components) == 6 and all(isinstance(v, (int, float)) and v == 0.0 for v in components):
            return BaseGateDecision(True, Outcome.ACCEPTED, "")  # stopping is always allowed
        if not mode.forward:
            return _refused_base(f"not forwarded: robot in {mode.mode_name}")
        hours = self._service_hours(local_time)
        if not hours.allowed:
            return _refused_base(f"not forwarded: {hours.reason}")
        checked = check_base_velocity(self._envelope, self._envelope.profile(mode.reduced), linear, angular)
        if not checked.forwarded:
            return _refused_base(checked.reason)
        if pose is None:
            return _refused_base("base motion refused: no odometry pose yet")
        age = _seconds(pose_age)
        if age is None or not -self._config.max_future <= age <= self._max_pose_age:
            return _refused_base(f"base motion refused: odometry pose age {pose_age!r} s is not within "
                                 f"[0, {self._max_pose_age:g}] s")
        x, y, yaw = (float(v) for v in pose)
        motion = check_base_motion(self._envelope.geofence, x, y, yaw, checked.vx, checked.vy,
                                   self._config.base_horizon + max(age, 0.0))
        if not motion.allowed:
            return _refused_base(f"base motion refused: {motion.reason}")
        return BaseGateDecision(True, checked.outcome, _one_line(checked.reason), checked.vx, checked.vy, checked.wz,
                                checked.clamps)

    # -- tasks -------------------------------------------------------------------------------------

    def task_request(self, now: float, task_kind: str, mode: GateMode, local_time: dt.datetime) -> TaskGateDecision:
        """Forward a task request only in a forwarding mode, whitelisted, not prohibited, inside service hours."""
        shown = task_kind[:64] if isinstance(task_kind, str) else ""
        try:
            if not mode.forward:
                decision = TaskGateDecision(False, _one_line(f"not forwarded: robot in {mode.mode_name}"), shown)
            else:
                task = check_task(self._envelope.tasks, task_kind)
                hours = self._service_hours(local_time) if task.allowed else task
                if not task.allowed:
                    decision = TaskGateDecision(False, _one_line(task.reason), shown)
                elif not hours.allowed:
                    decision = TaskGateDecision(False, _one_line(f"not forwarded: {hours.reason}"), shown)
                else:
                    decision = TaskGateDecision(True, "", shown)
        except Exception as exc:  # never a crash
            decision = TaskGateDecision(False, _one_line(f"malformed task request ({type(exc).__name__}: {exc})"),
                                        shown)
        self._count("task_request", Outcome.ACCEPTED if decision.forwarded else Outcome.REFUSED, decision.reason)
        return decision
