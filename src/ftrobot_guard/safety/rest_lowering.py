"""POWER_DOWN without dropping the robot: lower it to rest through the gate, then DAMPING, then POWER_OFF.

Cutting motor power on a standing humanoid makes it fall (the simulated G1 strikes the floor at 3.9 m/s;
DAMPING at once, 1.2 m/s). :class:`PowerDownSequencer` is driven by the guard at its control rate while
the supervisor's action is LOWER. It streams joint targets (the hardware in NORMAL, every target through
the command gate) that bring the robot down to lying on its back, then asks for DAMPING until the body
has settled, then for POWER_OFF. Pure: numpy, no ROS, no simulator.

The lowering, for the Unitree G1 (the defaults of :class:`LoweringConfig`, about 48 s):

1. **A path through key postures**, each chosen so that the robot is statically safe in it. On the feet
   (``stand``: arms down first, raised arms put the centre of mass towards the toes; ``ready``; five
   squat postures; ``squat_deep``, knees 2.75 rad): with the feet flat, the hip pitch is solved on the
   model for the centre of mass 3.5 cm ahead of the ankles, the middle of the G1's 17 cm foot
   (``bench/power_down_trials.py --derive``). ``sit``: the ankles straighten; the centre of mass passes
   behind the heels only when the pelvis is within about 6 mm of the floor, so the robot sits down
   rather than falls back. ``scoot_1``, ``scoot_2``, ``long_sit``: the legs go out along the floor, knee
   and hip together so that the heels stay on the floor (a leg that lifts tips the seated robot onto its
   back). ``recline``, ``lie``: the hips let the torso down backwards, the arms pointing at the feet, the
   legs as counterweight. ``rest``: flat on the back, arms along the body. A seat is not a rest posture:
   limp, a seated G1 creeps under DAMPING and topples after some seconds; lying flat, nothing is held up.
2. **Minimum-jerk segments in joint space** between key postures (zero velocity and acceleration at each),
   no faster than ``max_joint_speed`` and the envelope's soft velocity, inside its soft position limits.
   The first segment starts at the measured posture (clamped into the soft limits) and lasts at least
   what ``first_segment_speed`` allows; a robot already crouched joins the path at the nearest posture on
   the feet instead of being stood up.
3. **Balance feedback from the IMU while on the feet.** The drivers' joint PD (kp 300 N·m/rad in the
   simulator) is compliant: under PD alone a standing G1 topples under a steady 15 N push at the chest,
   its joints giving until the centre of pressure reaches the toes. The sequencer compares the pelvis
   pitch and roll from the IMU with those the plan implies (feet flat: pitch = −(ankle + knee + hip
   pitch)) and leans the body back against the error and its rate: pitch through both ankles (ankle
   strategy); roll through the ankle rolls and a leg-length difference (the lower side's knee extends,
   the other flexes: in a squat a lateral lean is one leg giving way). The feedback fades out during
   ``sit``.
   **Early pushes on straight legs** (the centre of pressure has 1.1 cm to spare behind the standing G1
   under a 15 N push at the chest): a backward pelvis pitch rate beyond ``reflex_rate`` steps both ankles
   forward by ``reflex_step`` (re-stepped while it lasts, fading with ``reflex_decay``; standing also at the
   start, where a push cannot be told from the start's jolt). Arms that start raised come down at
   ``arm_segment_speed`` straight to the next posture after ``stand``, the ankles leaning back by the arms'
   reach in front of the body (``arm_counterbalance``) and the knees a little flexed (``arm_knee``); meanwhile
   the lean rate is fed back harder (``arm_rate_gain``: the arms' swing rocks the body).
4. **Pacing by the measured lean.** While on the feet, a lean error beyond ``lean_pause`` stops the path
   (targets hold, the balance feedback keeps working) until it is back below ``lean_resume``; the pace
   ramps, so targets stay smooth.
5. **Encoders anchor, the IMU steers.** Measured joint positions anchor the start (the guard passes the
   posture estimated from the last 0.1 s of readings, ``safety/posture_estimate.py``: one reading's noise
   turned into a jolt that decided whether a push at the start tipped the robot), detect broken readings
   and tell when the body has settled in DAMPING (low-passed: 0.01 rad of encoder noise does not count
   as motion); the targets themselves are open loop in the joints, so encoder noise never enters them.

Fallbacks, DAMPING at once and POWER_OFF after ``fallback_settle`` s: inputs not fresh, a non-finite or
wrongly sized measured posture, a non-finite IMU attitude (or tilt without one), battery below
``min_battery``, a lean error beyond ``lean_fall`` while on the feet (falling), the time budget exceeded,
:meth:`abort_to_damping` (the supervisor's DAMP). After a complete lowering: ``rest_hold`` s more of
streaming, then DAMPING for at least ``damping_time`` s until no joint moved more than ``settle_change``
within ``settle_window`` (at most ``damping_max`` s; stale inputs never count as settled), then POWER_OFF.

A fall already under way is answered by :meth:`fall_response`: forwards or backwards a protective tuck
streamed for ``tuck.duration`` s, then DAMPING; sideways DAMPING at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.envelope import Envelope

_V = TypeVar("_V")
LEG_SIDES = ("left", "right")
PHASE_LOWERING = "lowering"
PHASE_DAMPING = "damping"
PHASE_POWER_OFF = "power_off"
PHASE_DONE = "done"
PHASE_TUCK = "tuck"
MINIMUM_JERK_PEAK = 1.875   # peak of d/dτ (10τ³ − 15τ⁴ + 6τ⁵): peak speed = 1.875 · distance / duration
POSITION_EPSILON = 1e-9     # rad kept inside the soft limits (float round-off)
MAX_DT = 0.1                # s: a longer gap between calls advances the plan by this much only
SETTLE_FILTER = 0.2         # s, time constant of the low-pass on measured positions (encoder noise)
SETTLE_MARKS = 4            # snapshots of the low-passed posture per settle window


def _frozen(values: Mapping[str, _V]) -> Mapping[str, _V]:
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class KeyPosture:
    """One posture of the path: joint targets by name (rad); joints not named are 0."""

    name: str
    duration: float                    # s, minimum-jerk segment from the previous posture at full pace
    joints: Mapping[str, float]
    balance: float = 1.0               # weight of the ankle balance feedback on arrival (0: seated)

    def __post_init__(self) -> None:
        object.__setattr__(self, "joints", _frozen(self.joints))
        if not (math.isfinite(self.duration) and 0.0 < self.duration <= 60.0):
            raise ValueError(f"key posture {self.name}: duration must be in (0, 60] s")
        if not (math.isfinite(self.balance) and 0.0 <= self.balance <= 1.0):
            raise ValueError(f"key posture {self.name}: balance must be in [0, 1]")
        for joint, value in self.joints.items():
            if not math.isfinite(value) or abs(value) > 2.0 * math.pi:
                raise ValueError(f"key posture {self.name}: {joint} = {value!r} is not an angle in rad")


def _g1_posture(name: str, duration: float, ankle: float, knee: float, hip: float, waist: float,
                shoulder: float, balance: float = 1.0, elbow: float = 1.28) -> KeyPosture:
    """A left/right symmetric G1 posture in the sagittal plane (elbow 1.28 as in the stand pose: arms straight)."""
    joints = {"waist_pitch_joint": waist}
    for side in LEG_SIDES:
        joints |= {f"{side}_hip_pitch_joint": hip, f"{side}_knee_joint": knee, f"{side}_ankle_pitch_joint": ankle,
                   f"{side}_shoulder_pitch_joint": shoulder, f"{side}_elbow_joint": elbow}
    joints |= {"left_shoulder_roll_joint": 0.2, "right_shoulder_roll_joint": -0.2}
    return KeyPosture(name, duration, joints, balance)


# On the feet (balance 1): derived by `bench/power_down_trials.py --derive` on the MuJoCo G1 (feet flat;
# hip pitch solved for the centre of mass 0.035 m ahead of the ankles; ankle, waist and shoulders
# scheduled with the knee). Seated and lying: chosen and checked in the simulator (same bench).
#                        name         s    ankle   knee    hip     waist  shoulder
G1_POSTURES = (
    # Arms down first (raised arms put the centre of mass towards the toes), then lean the body forward
    # until the centre of mass is over the middle of the feet.
    _g1_posture("stand",       1.0,  0.000, 0.00,  0.000,  0.00,  0.20),
    _g1_posture("ready",       1.5, -0.045, 0.00,  0.000,  0.00,  0.20),
    _g1_posture("squat_1",     2.5, -0.250, 0.50, -0.167,  0.05, -0.65),
    _g1_posture("squat_2",     2.5, -0.500, 1.00, -0.273,  0.11, -1.50),
    _g1_posture("squat_3",     2.5, -0.550, 1.50, -1.126,  0.16, -1.50),
    _g1_posture("squat_4",     2.5, -0.550, 2.00, -1.952,  0.22, -1.50),
    _g1_posture("squat_5",     2.5, -0.550, 2.40, -2.286,  0.26, -1.50),
    _g1_posture("squat_deep",  2.5, -0.550, 2.75, -2.344,  0.30, -1.50),
    # The ankles straighten: the centre of mass passes behind the heels only with the pelvis within ~6 mm
    # of the floor (derived), so the robot sits down; the balance feedback fades out.
    _g1_posture("sit",         4.0, -0.100, 2.75, -2.340,  0.45, -1.50, balance=0.0),
    # Legs out along the floor: knee and hip together keep the heels on the floor (solved on the model:
    # hip -2.18/-1.86/-1.44 puts the feet's lowest point level with the pelvis's, pitched back 0.31 rad as
    # it sits; 0.02-0.03 rad more flexion presses the heels lightly), so the feet slide forward instead of
    # lifting (a lifted leg tips the seated robot onto its back).
    _g1_posture("scoot_1",     4.0,  0.450, 2.00, -2.200,  0.35, -1.50, balance=0.0),
    _g1_posture("scoot_2",     4.0,  0.450, 1.20, -1.880,  0.35, -1.50, balance=0.0),
    _g1_posture("long_sit",    4.0,  0.450, 0.30, -1.470,  0.30, -1.50, balance=0.0),
    # Recline: the hips let the torso down backwards, the arms kept pointing at the feet (horizontal):
    # with the legs as counterweight the back is put down, not dropped.
    _g1_posture("recline",     5.0,  0.400, 0.10, -0.900,  0.15, -0.90, balance=0.0),
    _g1_posture("lie",         5.0,  0.400, 0.10, -0.300,  0.00, -0.30, balance=0.0),
    # Rest: flat on the back, arms along the body on the floor. Limp (DAMPING, POWER_OFF) it stays put:
    # no limb is held up, no joint can fall onto its stop.
    _g1_posture("rest",        4.0,  0.300, 0.10,  0.000,  0.00,  0.00, balance=0.0),
)


# A fall under way forwards or backwards: crouch (hips and knees flexed, the torso bent forward) and hold the
# forearms in front of the head, so the body comes down lower and the pelvis and arms meet the floor before
# the head. Sideways a crouch does not help (measured): DAMPING instead.
G1_TUCK = _g1_posture("tuck", 1.5, -0.400, 2.20, -1.600, 0.40, -1.20, balance=0.0, elbow=1.8)


@dataclass(frozen=True)
class LoweringConfig:
    """How POWER_DOWN lowers the robot; defaults for the Unitree G1 (see the module docstring)."""

    postures: tuple[KeyPosture, ...] = G1_POSTURES
    time_budget: float = 60.0          # s from start to the rest posture (nominal 43 s); beyond: DAMPING
    first_segment_speed: float = 3.0   # rad/s, peak speed from the measured posture to the first key posture
    max_joint_speed: float = 3.0       # rad/s, cap on every streamed target's speed (and the soft limit)
    rest_hold: float = 1.0             # s of streaming the rest posture before DAMPING (motion settles)
    tuck: KeyPosture = G1_TUCK         # fall_response: streamed at the soft velocity limit for tuck.duration s
    damping_time: float = 2.0          # s at least in DAMPING after a complete lowering ...
    damping_max: float = 15.0          # s at most; POWER_OFF once the posture has settled in between
    settle_change: float = 0.02        # rad: settled when no joint moved more than this within settle_window
    settle_window: float = 1.0         # s
    fallback_settle: float = 5.0       # s in DAMPING after a fallback (the body collapses and settles), then POWER_OFF
    min_battery: float = 0.05          # fraction: below it the lowering may not finish -> DAMPING at once
    lean_pause: float = 0.10           # rad of lean error: the path pauses
    lean_resume: float = 0.05          # rad: and resumes below this
    lean_fall: float = 0.45            # rad of lean error: falling -> DAMPING at once
    pace_ramp: float = 1.0             # 1/s, how fast the pace goes between paused (0) and full (1)
    balance_gain: float = 1.0          # rad of ankle offset per rad of lean error
    balance_rate_gain: float = 0.1     # rad per rad/s of lean rate
    balance_limit: float = 0.25        # rad, largest pitch or roll correction
    leg_length_gain: float = 1.0       # rad of knee difference per rad of roll correction
    reflex_rate: float = 0.05          # rad/s of backward pelvis pitch rate (gyro), straight legs: push reflex (0: off)
    reflex_step: float = 0.0255        # rad of ankle lean forward (into the push), stepped at the reflex ...
    reflex_decay: float = 2.0          # s, ... and fading with this time constant (the lean feedback takes over)
    reflex_knee: float = 0.3           # rad: armed only while the plan's knees are below this (straight legs)
    reflex_at_start: bool = True       # step at the start too (a push there cannot be told from the start's jolt)
    arm_counterbalance: float = 0.0725  # rad of ankle lean back per unit of arm reach (mean sin of shoulder pitch)
    arm_deadband: float = 0.25         # reach beyond the first key posture's at the start: arms raised (0: always)
    arm_ramp: float = 0.5              # s over which the counterbalance comes in from the start
    arm_knee: float = 0.1              # rad of knee flexion per unit of reach meanwhile (hip and ankle take half
                                       # each: pelvis pitch kept), off the knee's stop under the arms' load
    arm_skip: str = "stand"            # key posture skipped when the arms start raised (straight to the next)
    arm_segment_speed: float = 1.0     # rad/s, first_segment_speed when the arms start raised (slower swing)
    arm_rate_gain: float = 0.2         # balance_rate_gain meanwhile: the arms' swing rocks the body, damped faster
    joint_names: Mapping[str, str] = field(default_factory=lambda: _frozen({
        "left_ankle_pitch": "left_ankle_pitch_joint", "right_ankle_pitch": "right_ankle_pitch_joint",
        "left_ankle_roll": "left_ankle_roll_joint", "right_ankle_roll": "right_ankle_roll_joint",
        "left_knee": "left_knee_joint", "right_knee": "right_knee_joint",
        "left_hip_pitch": "left_hip_pitch_joint", "right_hip_pitch": "right_hip_pitch_joint",
    }))

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", _frozen(self.joint_names))
        if not self.postures:
            raise ValueError("lowering: at least one key posture is needed")
        ranges = {
            "time_budget": (1.0, 600.0), "first_segment_speed": (0.01, 10.0), "max_joint_speed": (0.01, 10.0),
            "rest_hold": (0.0, 60.0), "damping_time": (0.0, 60.0), "damping_max": (0.0, 120.0),
            "settle_change": (0.001, 1.0), "settle_window": (0.1, 10.0), "fallback_settle": (0.0, 60.0),
            "min_battery": (0.0, 1.0), "lean_pause": (0.0, 1.5), "lean_resume": (0.0, 1.5), "lean_fall": (0.0, 1.5),
            "pace_ramp": (0.01, 100.0), "balance_gain": (0.0, 10.0), "balance_rate_gain": (0.0, 10.0),
            "balance_limit": (0.0, 1.0), "leg_length_gain": (0.0, 10.0),
            "reflex_rate": (0.0, 10.0), "reflex_step": (0.0, 0.2), "reflex_decay": (0.01, 100.0),
            "reflex_knee": (0.0, 3.0), "arm_counterbalance": (0.0, 0.5),
            "arm_deadband": (0.0, 2.0),
            "arm_ramp": (0.01, 10.0), "arm_knee": (0.0, 0.5), "arm_segment_speed": (0.01, 10.0),
            "arm_rate_gain": (0.0, 10.0),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"lowering: {name} must be within [{low}, {high}], got {value!r}")
        if self.damping_max < self.damping_time:
            raise ValueError("lowering: damping_max must not be below damping_time")
        if not any(p.balance >= 1.0 for p in self.postures):
            raise ValueError("lowering: at least one key posture must be on the feet (balance 1)")
        if not self.lean_resume <= self.lean_pause <= self.lean_fall:
            raise ValueError("lowering: lean_resume <= lean_pause <= lean_fall is required")
        missing = {"left_ankle_pitch", "right_ankle_pitch", "left_ankle_roll", "right_ankle_roll", "left_knee",
                   "right_knee", "left_hip_pitch", "right_hip_pitch"} - set(self.joint_names)
        if missing:
            raise ValueError(f"lowering: joint_names lacks {sorted(missing)}")


@dataclass(frozen=True)
class Lean:
    """The pelvis's attitude from the IMU: pitch (+ leaning forward), roll (+ leaning right), and rates."""

    pitch: float         # rad, rotation about the world-fixed heading frame's y axis
    roll: float          # rad, about x
    pitch_rate: float    # rad/s (gyro y)
    roll_rate: float     # rad/s (gyro x)

    @classmethod
    def from_imu(cls, orientation_xyzw: Sequence[float], angular_velocity: Sequence[float]) -> Lean:
        """From a sensor_msgs/Imu orientation (x, y, z, w; any norm) and its angular velocity (body frame).

        Non-finite or zero quaternions give a Lean of NaN (the sequencer then falls back to DAMPING)."""
        x, y, z, w = (float(v) for v in orientation_xyzw)
        norm = x * x + y * y + z * z + w * w
        rates = [float(v) for v in angular_velocity] if len(angular_velocity) == 3 else [math.nan] * 3
        if not math.isfinite(norm) or norm <= 0.0:
            return cls(math.nan, math.nan, rates[1], rates[0])
        s = 2.0 / norm
        # The body's up axis in world coordinates (third column of the rotation matrix).
        up_x, up_y, up_z = s * (x * z + w * y), s * (y * z - w * x), 1.0 - s * (x * x + y * y)
        # Pitch: the up axis leaning towards +x of the heading frame; roll: towards -y (leaning right).
        yaw = math.atan2(s * (x * y + w * z), 1.0 - s * (y * y + z * z))
        forward = math.cos(yaw) * up_x + math.sin(yaw) * up_y
        left = -math.sin(yaw) * up_x + math.cos(yaw) * up_y
        return cls(math.atan2(forward, up_z), math.atan2(-left, up_z), rates[1], rates[0])

    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.pitch, self.roll, self.pitch_rate, self.roll_rate))


@dataclass(frozen=True)
class LoweringStep:
    actuation: ActuationMode        # hardware mode to be in now (NORMAL while streaming, then DAMPING, then POWER_OFF)
    positions: np.ndarray | None    # model-order joint targets to forward now (soft limits, velocity-limited) or None
    phase: str                      # "lowering", "damping", "power_off", "done"
    finished: bool                  # POWER_OFF has been asked for: nothing more will change
    note: str                       # one line: why this phase
    progress: float = 0.0           # 0..1 along the path (key postures passed, fraction of the current one)
    pace: float = 0.0               # 0 paused .. 1 full speed
    lean_error: float = math.nan    # rad, measured lean against the plan's


@dataclass
class _Segment:
    start: np.ndarray
    end: np.ndarray
    duration: float
    balance_from: float
    balance_to: float
    name: str


def _minimum_jerk(tau: float) -> float:
    t = min(1.0, max(0.0, tau))
    return t * t * t * (10.0 + t * (-15.0 + 6.0 * t))


class PowerDownSequencer:
    """Lower to rest, then DAMPING, then POWER_OFF; every call returns what to do now (module docstring)."""

    def __init__(self, envelope: Envelope, config: LoweringConfig = LoweringConfig()) -> None:
        joints = envelope.joints
        self._config = config
        self._count = len(joints)
        self._lower = np.asarray(joints.soft_lower, dtype=np.float64) + POSITION_EPSILON
        self._upper = np.asarray(joints.soft_upper, dtype=np.float64) - POSITION_EPSILON
        self._speed = np.minimum(np.asarray(joints.soft_velocity, dtype=np.float64), config.max_joint_speed)
        index = joints.index
        unknown = sorted({j for p in config.postures for j in p.joints if j not in index}
                         | {j for j in config.joint_names.values() if j not in index})
        if unknown:
            raise ValueError(f"lowering: joints not in the envelope: {', '.join(unknown[:5])}")
        self._postures = []
        unknown_tuck = sorted(j for j in config.tuck.joints if j not in index)
        if unknown_tuck:
            raise ValueError(f"lowering: tuck joints not in the envelope: {', '.join(unknown_tuck[:5])}")
        for posture in (*config.postures, config.tuck):
            q = np.zeros(self._count)
            for name, value in posture.joints.items():
                q[index[name]] = value
            self._postures.append(np.clip(q, self._lower, self._upper))
        self._tuck = self._postures.pop()
        self._soft_speed = np.asarray(joints.soft_velocity, dtype=np.float64)
        self._j = {key: index[name] for key, name in config.joint_names.items()}
        self._phase = ""
        self._note = ""
        self._started_at = math.nan
        self._phase_since = math.nan
        self._now_seen = math.nan      # latest time seen (a clock going backwards is held here)
        self._last_advance = math.nan  # time of the last plan advance (dt)
        self._segments: list[_Segment] = []
        self._segment = 0
        self._tau = 0.0
        self._pace = 1.0
        self._paused = False
        self._target: np.ndarray | None = None
        self._plan = np.zeros(self._count)
        self._balance = 0.0
        self._rest_since = math.nan
        self._lean_error = math.nan
        self._after_success = False
        self._damping_min = 0.0        # s in DAMPING before POWER_OFF may follow
        self._damping_max = 0.0        # s in DAMPING after which POWER_OFF follows in any case
        self._smoothed: np.ndarray | None = None       # low-passed measured posture (settle detection)
        self._smoothed_at = math.nan
        self._settle_marks: list[tuple[float, np.ndarray]] = []
        self._shoulders = {side: index[f"{side}_shoulder_pitch_joint"] for side in LEG_SIDES}
        self._arm_lean = 0.0           # rad, mean ankle offset of the arm counterbalance (part of the planned pitch)
        self._arms_raised = False      # raised arms at the start: counterbalanced first segment
        self._reflex = 0.0             # rad, current ankle pitch offset of the push reflex
        self._reflexed = False         # fired already in this lowering (re-stepped only on straight legs standing)

    # ------------------------------------------------------------------ public
    @property
    def phase(self) -> str:
        return self._phase

    def start(self, now: float, measured_positions: np.ndarray) -> LoweringStep:
        """Begin the lowering from the measured posture (model order); a broken reading -> DAMPING at once."""
        now = self._clock(now)
        self._started_at = self._last_advance = now
        measured = self._measured(measured_positions)
        if measured is None:
            return self._fallback(now, "measured posture not finite or wrong size")
        anchor = np.clip(measured, self._lower, self._upper)
        entry = self._entry_posture(anchor)
        self._arms_raised = False
        if self._config.arm_counterbalance > 0.0:
            self._arms_raised = self._arm_reach(self._postures[entry], anchor) > self._config.arm_deadband
        skip = self._config.arm_skip if self._arms_raised else ""
        self._segments = self._plan_segments(anchor, entry, skip, self._arms_raised)
        self._segment, self._tau, self._pace, self._paused = 0, 0.0, 1.0, False
        self._plan = anchor.copy()
        self._target = anchor.copy()
        self._balance = self._segments[0].balance_from
        self._phase, self._phase_since = PHASE_LOWERING, now
        name = self._config.postures[entry].name
        self._note = f"lowering to rest through {len(self._segments)} key postures from '{name}'"
        return self._lowering_step()

    def step(self, now: float, measured_positions: np.ndarray, tilt: float, battery_fraction: float,
             inputs_fresh: bool, lean: Lean | None = None) -> LoweringStep:
        """One control cycle. ``tilt``: pelvis tilt (rad) from the IMU; ``lean``: the IMU attitude
        (:meth:`Lean.from_imu`) for the balance feedback, pacing and fall check (without it the plan runs
        open loop, paced and checked on ``tilt``)."""
        now = self._clock(now)
        if self._phase == "":
            return self._fallback(now, "step before start")
        if self._phase in (PHASE_POWER_OFF, PHASE_DONE):
            self._phase = PHASE_DONE
            return LoweringStep(ActuationMode.POWER_OFF, None, PHASE_DONE, True, self._note, 1.0, 0.0)
        if self._phase == PHASE_DAMPING:
            return self._damping(now, measured_positions, inputs_fresh)
        if self._phase == PHASE_TUCK:
            return self._advance_tuck(now)
        reason = self._fallback_reason(now, measured_positions, tilt, battery_fraction, inputs_fresh, lean)
        if reason:
            return self._fallback(now, reason)
        return self._advance(now, tilt, lean)

    def abort_to_damping(self, now: float, reason: str) -> LoweringStep:
        """DAMPING at once (a fall under way, the supervisor's DAMP); POWER_OFF after ``fallback_settle``.

        Works before :meth:`start` too; once in DAMPING or POWER_OFF it changes nothing."""
        now = self._clock(now)
        if self._phase in (PHASE_POWER_OFF, PHASE_DONE):
            return LoweringStep(ActuationMode.POWER_OFF, None, PHASE_DONE, True, self._note, 1.0, 0.0)
        if self._phase == PHASE_DAMPING:
            return LoweringStep(ActuationMode.DAMPING, None, PHASE_DAMPING, False, self._note, self._progress(), 0.0)
        return self._fallback(now, f"aborted: {' '.join(str(reason).split())[:160]}")

    def fall_response(self, now: float, measured_positions: np.ndarray, lean: Lean | None) -> LoweringStep:
        """A fall already under way: forwards or backwards (pitch rate dominating), stream the tuck posture at
        the soft velocity limit for ``tuck.duration`` s, then DAMPING; sideways, or without a usable IMU or
        posture, DAMPING at once. POWER_OFF follows after ``fallback_settle`` s of DAMPING.

        Measured on the simulated G1 (bench/power_down_trials.py --falls, trips of 250, 170 and 120 N in four
        directions): the worst peak impact is 4-20 % below DAMPING at once (6.73/3.93/3.58 m/s against
        7.04/4.94/4.48), the mean 8-13 % below; a power cut or holding stiff is worse than either."""
        now = self._clock(now)
        if self._phase in (PHASE_POWER_OFF, PHASE_DONE, PHASE_DAMPING, PHASE_TUCK):
            return self.abort_to_damping(now, "fall under way") if self._phase != PHASE_TUCK else self._tuck_step()
        measured = self._measured(measured_positions)
        if measured is None or lean is None or not lean.finite():
            return self._fallback(now, "fall under way (no usable posture or IMU for a tuck)")
        if abs(lean.pitch_rate) < abs(lean.roll_rate):
            return self._fallback(now, "fall under way sideways")
        self._target = np.clip(measured, self._lower, self._upper)
        self._phase, self._phase_since, self._last_advance = PHASE_TUCK, now, now
        if not math.isfinite(self._started_at):
            self._started_at = now
        direction = "forwards" if lean.pitch_rate > 0.0 else "backwards"
        self._note = f"fall under way {direction}: tuck, then DAMPING"
        return self._tuck_step()

    def _tuck_step(self) -> LoweringStep:
        assert self._target is not None
        return LoweringStep(ActuationMode.NORMAL, self._target.copy(), PHASE_TUCK, False, self._note, 0.0, 1.0)

    def _advance_tuck(self, now: float) -> LoweringStep:
        if now - self._phase_since >= self._config.tuck.duration:
            return self._fallback(now, f"tucked for {self._config.tuck.duration:g} s")
        assert self._target is not None
        limit = self._soft_speed * min(MAX_DT, now - self._last_advance)
        self._last_advance = now
        self._target = np.clip(self._target + np.clip(self._tuck - self._target, -limit, limit),
                               self._lower, self._upper)
        return self._tuck_step()

    # ------------------------------------------------------------------ planning
    def _measured(self, values: np.ndarray) -> np.ndarray | None:
        try:
            measured = np.asarray(values, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return None
        if measured.size != self._count or not np.all(np.isfinite(measured)):
            return None
        return measured

    def _entry_posture(self, anchor: np.ndarray) -> int:
        """Index of the key posture to join: among the postures on the feet, the nearest on the sagittal
        leg joints (a crouched robot is not stood up again). Ties go to the earlier posture."""
        legs = [self._j[k] for k in ("left_ankle_pitch", "right_ankle_pitch", "left_knee", "right_knee",
                                     "left_hip_pitch", "right_hip_pitch")]
        candidates = [i for i, p in enumerate(self._config.postures) if p.balance >= 1.0]
        distances = [float(np.max(np.abs(self._postures[i][legs] - anchor[legs]))) for i in candidates]
        return candidates[int(np.argmin(distances))]

    def _plan_segments(self, anchor: np.ndarray, entry: int, skip: str = "",
                       arms_raised: bool = False) -> list[_Segment]:
        config = self._config
        segments: list[_Segment] = []
        previous, balance = anchor, config.postures[entry].balance
        for i in range(entry, len(self._postures)):
            target, posture = self._postures[i], config.postures[i]
            if posture.name == skip and i + 1 < len(self._postures):
                continue
            duration = max(posture.duration, MINIMUM_JERK_PEAK * float(np.max(np.abs(target - previous) / self._speed)))
            if not segments:
                speed = config.arm_segment_speed if arms_raised else config.first_segment_speed
                duration = max(duration, MINIMUM_JERK_PEAK * float(np.max(np.abs(target - previous))) / speed)
            segments.append(_Segment(previous, target, duration, balance, posture.balance, posture.name))
            previous, balance = target, posture.balance
        return segments

    # ------------------------------------------------------------------ stepping
    def _clock(self, now: float) -> float:
        """A non-finite or backward time is taken as the last one seen (no time passes)."""
        seen = self._now_seen
        if isinstance(now, (int, float)) and math.isfinite(now) and not (math.isfinite(seen) and now < seen):
            self._now_seen = float(now)
        elif not math.isfinite(seen):
            self._now_seen = 0.0
        return self._now_seen

    @property
    def _on_feet(self) -> bool:
        """The feet carry the robot: lean checks and pacing apply (until half-way into the seat)."""
        return self._balance >= 0.5

    def _fallback_reason(self, now: float, measured_positions: np.ndarray, tilt: float, battery: float,
                         inputs_fresh: bool, lean: Lean | None) -> str:
        config = self._config
        if inputs_fresh is not True:
            return "inputs lost (joint_states or imu not fresh)"
        if self._measured(measured_positions) is None:
            return "measured posture not finite or wrong size"
        if lean is not None and not lean.finite():
            return "IMU attitude not finite"
        if lean is None and not (isinstance(tilt, (int, float)) and math.isfinite(tilt)):
            return "tilt unknown"
        if isinstance(battery, (int, float)) and math.isfinite(battery) and battery < config.min_battery:
            return f"battery {battery:.2f} below {config.min_battery:.2f}"
        if now - self._started_at > config.time_budget:
            return f"time budget {config.time_budget:g} s exceeded"
        error = self._lean_error_of(tilt, lean)
        if self._on_feet and error > config.lean_fall:
            return f"falling: lean error {error:.2f} rad beyond {config.lean_fall:g} rad"
        return ""

    def _planned_pitch(self) -> float:
        """Pelvis pitch the plan implies with the feet flat: −(ankle + knee + hip pitch), legs averaged."""
        q, j = self._plan, self._j
        return -0.5 * float(sum(q[j[f"{s}_{k}"]] for s in LEG_SIDES for k in ("ankle_pitch", "knee", "hip_pitch"))) \
            - self._arm_lean

    def _lean_error_of(self, tilt: float, lean: Lean | None) -> float:
        pitch = self._planned_pitch()
        if lean is not None:
            return math.hypot(lean.pitch - pitch, lean.roll)
        return abs(float(tilt) - abs(pitch))

    def _advance(self, now: float, tilt: float, lean: Lean | None) -> LoweringStep:
        config = self._config
        dt = min(MAX_DT, now - self._last_advance)
        self._last_advance = now
        error = self._lean_error_of(tilt, lean)
        self._lean_error = error
        self._push_reflex(dt, lean)
        if self._on_feet and error > config.lean_pause:
            self._paused = True
        elif error < config.lean_resume or not self._on_feet:
            self._paused = False
        wanted = 0.0 if self._paused else 1.0
        self._pace += float(np.clip(wanted - self._pace, -config.pace_ramp * dt, config.pace_ramp * dt))
        arrived = self._segment >= len(self._segments)
        if not arrived:
            segment = self._segments[self._segment]
            self._tau += self._pace * dt / segment.duration
            if self._tau >= 1.0:
                leftover = (self._tau - 1.0) * segment.duration   # s of this step that belong to the next segment
                self._segment += 1
                if self._segment >= len(self._segments):
                    self._tau, self._rest_since = 1.0, now
                    self._note = f"rest posture '{segment.name}' reached"
                else:
                    segment = self._segments[self._segment]
                    self._tau = min(1.0, leftover / segment.duration)
            s = _minimum_jerk(self._tau)
            self._plan = segment.start + (segment.end - segment.start) * s
            self._balance = segment.balance_from + (segment.balance_to - segment.balance_from) * s
        elif now - self._rest_since >= config.rest_hold:
            self._after_success = True
            self._damping_min, self._damping_max = config.damping_time, config.damping_max
            self._phase, self._phase_since = PHASE_DAMPING, now
            self._smoothed, self._settle_marks = None, []
            self._note = "lowered to rest: DAMPING until the body has settled, then POWER_OFF"
            return LoweringStep(ActuationMode.DAMPING, None, PHASE_DAMPING, False, self._note, 1.0, 0.0, error)
        arms = self._arm_offset(now)   # first: the balance feedback's reference includes its lean
        desired = np.clip(self._plan + arms + self._balance_offset(lean), self._lower, self._upper)
        assert self._target is not None
        limit = self._speed * dt
        self._target = np.clip(self._target + np.clip(desired - self._target, -limit, limit), self._lower, self._upper)
        return self._lowering_step()

    def _push_reflex(self, dt: float, lean: Lean | None) -> None:
        """A push from the front on straight legs: the pelvis starts to pitch backwards (gyro) well before the
        lean shows, and standing the G1 has 1.1 cm of centre of pressure to spare behind it (module docstring).
        Step both ankles forward by the joints' static deflection under a 15 N push at the chest (0.0255 rad),
        re-stepped while the backward pitch rate lasts (once only with raised arms, whose descent rocks the
        pelvis), fading while the lean feedback takes over. Standing, also once at the start: the start's own
        jolt (the first targets are the measured posture, noise-averaged by the guard but not exact) cannot be
        told from a push. Backwards only: a push from behind on straight legs is held by the lean feedback."""
        config = self._config
        if self._reflex != 0.0:
            self._reflex *= math.exp(-dt / config.reflex_decay)
        if config.reflex_rate <= 0.0 or lean is None or not self._on_feet:
            return
        if config.reflex_at_start and not self._reflexed and not self._arms_raised:
            self._reflex, self._reflexed = -config.reflex_step, True
            return
        knees = 0.5 * (self._plan[self._j["left_knee"]] + self._plan[self._j["right_knee"]])
        if knees >= config.reflex_knee or (self._arms_raised and self._reflexed):
            return   # raised arms coming down rock the pelvis: once only there (re-stepping leans too far)
        if lean.pitch_rate < -config.reflex_rate:
            if not self._reflexed:
                self._note += "; push reflex (pitching backwards on straight legs)"
            self._reflex, self._reflexed = -config.reflex_step, True   # (re)stepped while it lasts

    def _arm_reach(self, end: np.ndarray, posture: np.ndarray) -> float:
        """How far the arms of ``posture`` reach in front of the body beyond those of ``end``: the mean, over
        both sides, of the difference of the sines of shoulder pitch (raised arms: shoulder pitch negative)."""
        return sum(0.5 * (math.sin(end[self._shoulders[side]]) - math.sin(posture[self._shoulders[side]]))
                   for side in LEG_SIDES)

    @property
    def _arms_coming_down(self) -> bool:
        """Raised arms at the start, still on their way down (the first segment, on the feet)."""
        return self._arms_raised and self._segment == 0 and bool(self._segments) and self._balance > 0.0

    def _arm_offset(self, now: float) -> np.ndarray:
        """Raised arms at the start (reach beyond ``arm_deadband``), first segment only: hold the centre of mass
        where the segment's end puts it. The arms coming down pass in front of the body (centre of mass
        towards the toes, then back): the ankles lean back by their reach beyond the end's, and take the
        end's ankle pitch (the forward lean) at once rather than at the end; ramped in over ``arm_ramp``."""
        offset = np.zeros(self._count)
        config = self._config
        self._arm_lean = 0.0
        if not self._arms_coming_down:
            return offset
        end = self._segments[0].end
        reach = self._arm_reach(end, self._plan)
        ramp = _minimum_jerk((now - self._started_at) / config.arm_ramp)
        for side in LEG_SIDES:
            a = self._j[f"{side}_ankle_pitch"]
            knee = self._balance * ramp * config.arm_knee * max(0.0, reach)
            offset[a] = self._balance * ramp * (end[a] - self._plan[a] + config.arm_counterbalance * reach) - 0.5 * knee
            offset[self._j[f"{side}_knee"]] = knee
            offset[self._j[f"{side}_hip_pitch"]] = -0.5 * knee
        self._arm_lean = 0.5 * float(sum(offset[self._j[f"{side}_{k}"]] for side in LEG_SIDES
                                         for k in ("ankle_pitch", "knee", "hip_pitch")))
        return offset

    def _balance_offset(self, lean: Lean | None) -> np.ndarray:
        """Joint offsets that lean the body back against a measured lean error.

        Pitch: both ankles (ankle strategy). Roll: the ankle rolls, and a leg-length difference (the
        lower side's knee extends, the other flexes, hip and ankle pitch taking half each so the pelvis
        and the feet keep their pitch): with bent knees a lateral lean is one leg giving way."""
        offset = np.zeros(self._count)
        if lean is None or self._balance <= 0.0:
            return offset
        config, j = self._config, self._j
        limit = config.balance_limit
        rate_gain = config.arm_rate_gain if self._arms_coming_down else config.balance_rate_gain
        pitch = float(np.clip(self._balance * (config.balance_gain * (lean.pitch - self._planned_pitch())
                                                 + rate_gain * lean.pitch_rate), -limit, limit))
        roll = float(np.clip(self._balance * (config.balance_gain * lean.roll
                                                + rate_gain * lean.roll_rate), -limit, limit))
        for side, sign in zip(LEG_SIDES, (1.0, -1.0), strict=True):
            knee = sign * config.leg_length_gain * roll   # leaning left (roll < 0): the left knee extends
            offset[j[f"{side}_knee"]] = knee
            offset[j[f"{side}_hip_pitch"]] = -0.5 * knee
            offset[j[f"{side}_ankle_pitch"]] = pitch - 0.5 * knee + self._reflex
            offset[j[f"{side}_ankle_roll"]] = roll
        return offset

    def _damping(self, now: float, measured_positions: np.ndarray, inputs_fresh: bool) -> LoweringStep:
        """DAMPING until POWER_OFF: after a fallback a fixed time; after a lowering, once settled."""
        elapsed = now - self._phase_since
        settled = False
        if self._after_success:
            measured = self._measured(measured_positions) if inputs_fresh is True else None
            settled = measured is not None and self._settled(now, measured)
            if measured is None:
                self._smoothed, self._settle_marks = None, []
        if elapsed >= self._damping_max or (elapsed >= self._damping_min and settled):
            why = "settled" if settled and elapsed < self._damping_max else f"{elapsed:.1f} s"
            self._phase, self._phase_since = PHASE_POWER_OFF, now
            self._note = f"POWER_OFF after DAMPING ({why}); {self._note}"
            return LoweringStep(ActuationMode.POWER_OFF, None, PHASE_POWER_OFF, True, self._note, 1.0, 0.0)
        return LoweringStep(ActuationMode.DAMPING, None, PHASE_DAMPING, False, self._note, self._progress(), 0.0,
                            self._lean_error)

    def _settled(self, now: float, measured: np.ndarray) -> bool:
        """No joint of the low-passed measured posture moved more than settle_change within settle_window."""
        config = self._config
        if self._smoothed is None:
            self._smoothed, self._smoothed_at = measured.copy(), now
            self._settle_marks = [(now, measured.copy())]
            return False
        alpha = min(1.0, (now - self._smoothed_at) / SETTLE_FILTER)
        self._smoothed += alpha * (measured - self._smoothed)
        self._smoothed_at = now
        window = config.settle_window
        if now - self._settle_marks[-1][0] >= window / SETTLE_MARKS:
            self._settle_marks.append((now, self._smoothed.copy()))
        while len(self._settle_marks) > 1 and now - self._settle_marks[1][0] >= window:
            self._settle_marks.pop(0)
        oldest_time, oldest = self._settle_marks[0]
        if now - oldest_time < window:
            return False
        return bool(np.max(np.abs(self._smoothed - oldest)) <= config.settle_change)

    def _progress(self) -> float:
        if not self._segments:
            return 0.0
        return min(1.0, (self._segment + self._tau) / len(self._segments))

    def _lowering_step(self) -> LoweringStep:
        assert self._target is not None
        return LoweringStep(ActuationMode.NORMAL, self._target.copy(), PHASE_LOWERING, False, self._note,
                            self._progress(), self._pace, self._lean_error)

    def _fallback(self, now: float, reason: str) -> LoweringStep:
        self._after_success = False
        self._damping_min = self._damping_max = self._config.fallback_settle
        self._phase, self._phase_since = PHASE_DAMPING, now
        if not math.isfinite(self._started_at):
            self._started_at = now
        self._note = f"fallback: {reason} -> DAMPING at once"
        return LoweringStep(ActuationMode.DAMPING, None, PHASE_DAMPING, False, self._note, self._progress(), 0.0,
                            self._lean_error)
