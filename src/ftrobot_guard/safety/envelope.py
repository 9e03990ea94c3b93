"""The operating envelope of a robot employee: everything it may do, parsed from YAML into immutable values.

The envelope (``config/envelope/g1.yaml``, signed by the department: :mod:`.envelope_signature`) is the
robot's preset scope of action (Futian measure 6.7a): per-joint position, velocity, acceleration and
effort limits; base speed; a geofence in ``odom``; posture, thermal, battery and input-age limits for the
anomaly detectors; service hours; the task whitelist and prohibited task kinds; the REDUCED profile; and
the supervisor's response policy. Units are SI and radians, frames follow REP-103/REP-105 (x forward,
y left, z up; ``odom`` is the world-fixed frame), temperatures in °C as ``sensor_msgs/Temperature``,
battery as a fraction 0..1 as ``sensor_msgs/BatteryState.percentage``.

Parsing is strict: unknown or missing keys, duplicate keys, YAML aliases, wrong types, NaN/Inf,
implausible magnitudes (a limit in degrees, a battery level in percent) and inconsistent pairs
(soft outside hard, warn beyond limit) are refused with an :class:`EnvelopeError` whose message is one
line naming the field: ``joints.left_knee_joint.position.soft: lower -0.1 is below the hard limit -0.0873``.

Hard and soft limits. *Hard* limits are the machine's own (joint ranges and effort limits from the
model, rated velocities from the vendor): the command gate refuses a command beyond them, because a
controller asking for that is broken. *Soft* limits lie inside and are the envelope proper: a command
between soft and hard is clamped to the soft limit and the clamp is reported.

Protective values chosen for the G1, against Unitree's own protective checks (which act as a last line
and end in damping or power loss, i.e. a fall) — ours must act earlier and end in a controlled stop:

* tilt: warn 0.30 rad, limit 0.50 rad (Unitree 1.0 rad). Standing and arm work stay below 0.1 rad,
  walking below ~0.2 rad; past 0.5 rad a G1 cannot recover by posture and the fall response must start
  while there is still height to manage, long before 1.0 rad (the simulator's "fallen").
* pelvis angular rate: warn 2.0, limit 3.0 rad/s (Unitree 6 rad/s gyro). Walking stays below ~1.5 rad/s;
  a trip passes 3 rad/s within ~0.3 s of onset, so 3 rad/s detects it half a fall earlier than 6.
* measured joint speed |dq|: warn 7, limit 8 rad/s (Unitree 10 rad/s). Commands are limited to 6 rad/s
  (soft velocity), so 8 rad/s is only reached by tracking overshoot, a collision or a runaway joint.
* actuator (winding) temperature: warn 85 °C, limit 100 °C (Unitree 120 °C winding, 85 °C casing).
  20 °C of headroom below the driver's cut-off: at the worst natural heating rate (continuous peak
  torque, 150 °C steady rise, 120 s time constant) that leaves >30 s, enough for the ~25 s lowering.
* battery: warn 0.35, minimum 0.25 (Unitree 20 %). Lowering to rest must happen on a battery that can
  still power it, with margin for the ±3–5 % error of a voltage-based charge estimate.
* input age: joint_states and imu 0.05 s, odom 0.1 s, temperatures 0.5 s, battery 3 s (Unitree: 1 s
  link loss). A balance controller blind for 1 s is already falling; the hardware's guard watchdog is
  0.1 s, so a lost sensor stream must be seen well within that.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import yaml

from ftrobot_guard.safety.response_policy import Response, ResponsePolicy, Severity
from ftrobot_guard.safety.robot_models import KNOWN_MODELS, RobotModel

FORMAT = "ftrobot-envelope/1"
MAX_ENVELOPE_BYTES = 1 << 20
ODOM_FRAME = "odom"
INPUT_NAMES = ("joint_states", "imu", "odom", "actuator_temperatures", "battery")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A robot employee may never direct or design other robot employees: these kinds are prohibited in
# every envelope, whatever the file says, and no whitelisted kind may name robots at all.
MANDATORY_PROHIBITED_TASKS = frozenset({"direct_robot_employee", "design_robot_employee"})
MAX_POLYGON_VERTICES = 256
MAX_POLYGONS = 64

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")  # joint-free names: tasks, polygons, anomaly kinds
_HHMM = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])\Z")

# Plausibility bounds: a value outside them is a unit mistake (degrees, percent, mm) or a typo.
MAX_ANGLE = 2.0 * math.pi          # rad
MAX_JOINT_VELOCITY = 100.0         # rad/s
MAX_JOINT_ACCELERATION = 10000.0   # rad/s²
MAX_EFFORT = 10000.0               # N·m
MAX_BASE_SPEED = 10.0              # m/s
MAX_BASE_ANGULAR_SPEED = 20.0      # rad/s
MAX_COORDINATE = 10000.0           # m
MAX_TEMPERATURE = 200.0            # °C


class EnvelopeError(ValueError):
    """An envelope file or text is refused; str() is one line naming the field and the problem."""


def _fail(path: str, message: str) -> EnvelopeError:
    text = f"{path}: {message}" if path else message
    return EnvelopeError(text.replace("\r", "\\r").replace("\n", "\\n"))  # always one line


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_]{1,64}\Z")


def _key_text(key: str) -> str:
    return key if _PLAIN_KEY.match(key) else repr(key[:40])


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _readonly(values: Sequence[float] | np.ndarray, dtype: Any = np.float64) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, eq=False)
class JointLimitTable:
    """Per-joint limits in model joint order; arrays are read-only."""

    names: tuple[str, ...]
    hard_lower: np.ndarray      # rad, the model's joint range
    hard_upper: np.ndarray
    soft_lower: np.ndarray      # rad, commands are clamped inside these
    soft_upper: np.ndarray
    hard_velocity: np.ndarray   # rad/s, vendor rating
    soft_velocity: np.ndarray   # rad/s, commanded velocity limit (NORMAL)
    acceleration: np.ndarray    # rad/s², commanded acceleration limit
    hard_effort: np.ndarray     # N·m, the model's actuator limit
    soft_effort: np.ndarray     # N·m, feed-forward effort limit (NORMAL)

    @functools.cached_property
    def index(self) -> Mapping[str, int]:
        return MappingProxyType({name: i for i, name in enumerate(self.names)})

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class SpeedLimit:
    hard: float   # beyond: refused
    soft: float   # beyond (up to hard): clamped


@dataclass(frozen=True)
class BaseLimits:
    linear_speed: SpeedLimit    # m/s, planar speed of the base
    angular_speed: SpeedLimit   # rad/s, yaw rate


@dataclass(frozen=True, eq=False)
class Polygon:
    name: str
    vertices: np.ndarray   # (n, 2) read-only, metres in odom


@dataclass(frozen=True)
class Geofence:
    frame: str
    margin: float                   # m the robot keeps from every boundary
    keep_in: tuple[Polygon, ...]    # the robot must be inside at least one
    keep_out: tuple[Polygon, ...]   # and outside all of these


@dataclass(frozen=True)
class WarnLimit:
    """A quantity that must stay low: above ``warn`` is a warning, above ``limit`` a violation."""

    warn: float
    limit: float


@dataclass(frozen=True)
class PostureLimits:
    tilt: WarnLimit           # rad, torso up-axis to world up
    angular_rate: WarnLimit   # rad/s, pelvis gyro magnitude
    joint_speed: WarnLimit    # rad/s, any measured joint velocity


@dataclass(frozen=True)
class BatteryLimits:
    """Fractions 0..1: below ``warn`` is a warning, below ``minimum`` a violation."""

    warn: float
    minimum: float


@dataclass(frozen=True)
class ServiceWindow:
    days: frozenset[int]    # 0 = Monday (datetime.weekday())
    open_minute: int        # minutes after local midnight, inclusive
    close_minute: int       # exclusive; 1440 = midnight at the end of the day


@dataclass(frozen=True)
class ServiceHours:
    time_zone: str
    windows: tuple[ServiceWindow, ...]
    closed_dates: frozenset[dt.date]

    @functools.cached_property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class TaskPolicy:
    allowed: frozenset[str]
    prohibited: frozenset[str]


@dataclass(frozen=True, eq=False)
class HandChain:
    """The joints that move one hand relative to the pelvis, each with a bound on its lever arm."""

    name: str
    indices: np.ndarray       # joint indices in model order (read-only)
    lever_arms: np.ndarray    # m, upper bound on the distance from each joint's axis to the hand (read-only)


@dataclass(frozen=True, eq=False)
class ReducedProfile:
    speed_scale: float               # base speeds are scaled by this; reported as SafetyState.speed_scale
    hand_speed: float                # m/s, bound on each hand's speed relative to the pelvis (ISO 10218: 0.25)
    joint_velocity: np.ndarray       # rad/s per joint in model order (read-only)
    joint_effort: np.ndarray         # N·m per joint in model order (read-only)
    hand_chains: tuple[HandChain, ...]


@dataclass(frozen=True, eq=False)
class MotionProfile:
    """The limits the command gate applies in one mode (NORMAL or REDUCED)."""

    name: str
    velocity: np.ndarray     # rad/s per joint (read-only)
    effort: np.ndarray       # N·m per joint (read-only)
    linear_speed: float      # m/s
    angular_speed: float     # rad/s
    hand_speed: float | None = None           # m/s per hand chain (REDUCED only): Σ |q̇_i| r_i ≤ hand_speed
    hand_chains: tuple[HandChain, ...] = ()


@dataclass(frozen=True, eq=False)
class Envelope:
    robot_model: str
    joints: JointLimitTable
    base: BaseLimits
    geofence: Geofence
    posture: PostureLimits
    actuator_temperature: WarnLimit
    battery: BatteryLimits
    input_max_age: Mapping[str, float]
    service_hours: ServiceHours
    tasks: TaskPolicy
    reduced: ReducedProfile
    responses: ResponsePolicy

    @functools.cached_property
    def normal_profile(self) -> MotionProfile:
        return MotionProfile("NORMAL", self.joints.soft_velocity, self.joints.soft_effort,
                             self.base.linear_speed.soft, self.base.angular_speed.soft)

    @functools.cached_property
    def reduced_profile(self) -> MotionProfile:
        scale = self.reduced.speed_scale
        return MotionProfile("REDUCED", self.reduced.joint_velocity, self.reduced.joint_effort,
                             self.base.linear_speed.soft * scale, self.base.angular_speed.soft * scale,
                             self.reduced.hand_speed, self.reduced.hand_chains)

    def profile(self, reduced: bool) -> MotionProfile:
        return self.reduced_profile if reduced else self.normal_profile


# ---------------------------------------------------------------------------------------------
# YAML: safe, no aliases, no merge keys, no duplicate keys, bounded nesting

MAX_YAML_DEPTH = 32
_EventLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~8x faster
_STANDARD_TAGS = frozenset({"tag:yaml.org,2002:" + t for t in
                            ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")})
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_RESOLVER = yaml.resolver.Resolver()


class _YamlRefused(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


def _scalar(event: Any) -> Any:
    tag = event.tag if event.tag not in (None, "!") else _RESOLVER.resolve(  # type: ignore[no-untyped-call]
        yaml.ScalarNode, event.value, event.implicit)
    if tag == "tag:yaml.org,2002:merge":
        raise _YamlRefused("merge keys (<<) are not allowed", event.start_mark)
    if tag not in _STANDARD_TAGS:
        raise _YamlRefused(f"tag {str(tag)[:40]!r} is not allowed", event.start_mark)
    return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark))


def _build_document(events: Any) -> Any:
    """Plain data from a YAML event stream, iteratively (no recursion: deep nesting cannot crash it)."""
    stack: list[tuple[Any, list[Any] | dict[Any, Any], list[Any]]] = []  # (start event, container, pending key)
    result: Any = None
    documents = 0

    def add(value: Any, mark: Any) -> None:
        nonlocal result
        if not stack:
            result = value
            return
        _, container, pending = stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif not pending:
            try:
                duplicate = value in container
            except TypeError:
                raise _YamlRefused("a mapping key must be a scalar", mark) from None
            if duplicate:
                raise _YamlRefused(f"duplicate key {_show(value)}", mark)
            pending.append(value)
        else:
            container[pending.pop()] = value

    for event in events:
        if isinstance(event, yaml.AliasEvent):
            raise _YamlRefused("aliases (*name) are not allowed", event.start_mark)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if getattr(event, "anchor", None):
                raise _YamlRefused("anchors (&name) are not allowed", event.start_mark)
            expected = "tag:yaml.org,2002:map" if isinstance(event, yaml.MappingStartEvent) else "tag:yaml.org,2002:seq"
            if event.tag not in (None, "!", expected):
                raise _YamlRefused(f"tag {str(event.tag)[:40]!r} is not allowed", event.start_mark)
            if len(stack) >= MAX_YAML_DEPTH:
                raise _YamlRefused(f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark)
            stack.append((event, {} if isinstance(event, yaml.MappingStartEvent) else [], []))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            start, container, _ = stack.pop()
            add(container, start.start_mark)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                raise _YamlRefused("anchors (&name) are not allowed", event.start_mark)
            add(_scalar(event), event.start_mark)
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _YamlRefused("more than one YAML document", event.start_mark)
    return result


def load_yaml_strict(text: str | bytes, what: str = "envelope") -> Any:
    """Parse YAML safely, refusing aliases, anchors, merge keys, custom tags, duplicate keys, several
    documents and nesting deeper than :data:`MAX_YAML_DEPTH` (one-line :class:`EnvelopeError`)."""
    if isinstance(text, bytes):
        if len(text) > MAX_ENVELOPE_BYTES:
            raise EnvelopeError(f"{what} is {len(text)} bytes, more than {MAX_ENVELOPE_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"{what} is not UTF-8 text (byte {exc.start})") from None
    if len(text) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"{what} is longer than {MAX_ENVELOPE_BYTES} characters")
    mark: Any = None
    try:
        return _build_document(yaml.parse(text, Loader=_EventLoader))
    except _YamlRefused as exc:
        problem, mark = str(exc), exc.mark
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
    except (ValueError, OverflowError, TypeError) as exc:  # a scalar the constructor cannot build
        problem = str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    raise EnvelopeError(f"{what} is not valid YAML{where}: {' '.join(str(problem).split())[:160]}")


# ---------------------------------------------------------------------------------------------
# Field readers


class _Section:
    """One mapping of the document: keys are taken one by one; leftovers are refused as unknown."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str):
                raise _fail(path, f"key {_show(key)} is not a string")
        self._value: dict[str, Any] = value
        self._path = path
        self._taken: set[str] = set()

    def child(self, key: str) -> str:
        return f"{self._path}.{_key_text(key)}" if self._path else _key_text(key)

    def take(self, key: str) -> Any:
        if key not in self._value:
            raise _fail(self._path, f"missing key '{key}'")
        self._taken.add(key)
        return self._value[key]

    def section(self, key: str) -> _Section:
        return _Section(self.take(key), self.child(key))

    def number(self, key: str, low: float, high: float, low_open: bool = False) -> float:
        return _number(self.take(key), self.child(key), low, high, low_open)

    def keys(self) -> list[str]:
        return list(self._value)

    def finish(self) -> None:
        unknown = [key for key in self._value if key not in self._taken]
        if unknown:
            raise _fail(self._path, f"unknown key {_show(unknown[0])}")


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def _number(value: object, path: str, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        hint = " (write numbers without quotes or units)" if isinstance(value, str) else ""
        raise _fail(path, f"expected a number, got {_type_name(value)} {_show(value)}{hint}")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(path, f"{number} is not a finite number")
    below = number <= low if low_open else number < low
    if below or number > high:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise _fail(path, f"{number:g} is outside {interval}{_unit_hint(path, number)}")
    return number


def _unit_hint(path: str, number: float) -> str:
    if "battery" in path and number > 1.0:
        return ": a fraction 0..1, not a percentage"
    if any(word in path for word in ("position", "tilt")) and abs(number) > MAX_ANGLE:
        return ": radians, not degrees"
    return ""


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {_type_name(value)}")
    return value


def _name(value: object, path: str, what: str = "name") -> str:
    text = _text(value, path)
    if not NAME_PATTERN.match(text):
        raise _fail(path, f"{what} {_show(text)} must be lower-case letters, digits and _ (1-64, letter first)")
    return text


def _list(value: object, path: str, max_items: int = 10000) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {_type_name(value)}")
    if len(value) > max_items:
        raise _fail(path, f"{len(value)} items, at most {max_items}")
    return value


def _interval(value: object, path: str, low: float, high: float) -> tuple[float, float]:
    items = _list(value, path)
    if len(items) != 2:
        raise _fail(path, f"expected [lower, upper], got {len(items)} values")
    lower = _number(items[0], f"{path}[0]", low, high)
    upper = _number(items[1], f"{path}[1]", low, high)
    if not lower < upper:
        raise _fail(path, f"lower {lower:g} must be below upper {upper:g}")
    return lower, upper


def _hard_soft(section: _Section, key: str, high: float, soft_low_open: bool = True) -> SpeedLimit:
    part = section.section(key)
    hard = part.number("hard", 0.0, high, low_open=True)
    soft = part.number("soft", 0.0, high, low_open=soft_low_open)
    part.finish()
    if soft > hard:
        raise _fail(part.child("soft"), f"{soft:g} is above the hard limit {hard:g}")
    return SpeedLimit(hard=hard, soft=soft)


def _warn_limit(section: _Section, key: str, high: float) -> WarnLimit:
    part = section.section(key)
    warn = part.number("warn", 0.0, high, low_open=True)
    limit = part.number("limit", 0.0, high, low_open=True)
    part.finish()
    if warn > limit:
        raise _fail(part.child("warn"), f"{warn:g} is above the limit {limit:g}")
    return WarnLimit(warn=warn, limit=limit)


# ---------------------------------------------------------------------------------------------
# Sections


def _parse_joints(section: _Section, model: RobotModel) -> JointLimitTable:
    rows: dict[str, tuple[float, ...]] = {}
    for name in section.keys():  # noqa: SIM118 - a _Section, not a dict
        path = section.child(name)
        if name not in model.rated_velocity:
            raise _fail(path, f"no joint of that name in {model.name}")
        joint = section.section(name)
        position = joint.section("position")
        hard_lo, hard_hi = _interval(position.take("hard"), position.child("hard"), -MAX_ANGLE, MAX_ANGLE)
        soft_lo, soft_hi = _interval(position.take("soft"), position.child("soft"), -MAX_ANGLE, MAX_ANGLE)
        position.finish()
        if soft_lo < hard_lo:
            raise _fail(position.child("soft"), f"lower {soft_lo:g} is below the hard limit {hard_lo:g}")
        if soft_hi > hard_hi:
            raise _fail(position.child("soft"), f"upper {soft_hi:g} is above the hard limit {hard_hi:g}")
        velocity = _hard_soft(joint, "velocity", MAX_JOINT_VELOCITY)
        acceleration = joint.number("acceleration", 0.0, MAX_JOINT_ACCELERATION, low_open=True)
        effort = _hard_soft(joint, "effort", MAX_EFFORT)
        joint.finish()
        rows[name] = (hard_lo, hard_hi, soft_lo, soft_hi, velocity.hard, velocity.soft, acceleration,
                      effort.hard, effort.soft)
    missing = [name for name in model.joint_names if name not in rows]
    if missing:
        raise _fail(section.child(missing[0]), f"missing: every joint of {model.name} needs limits")
    columns = np.array([rows[name] for name in model.joint_names], dtype=np.float64).T
    return JointLimitTable(model.joint_names, *(_readonly(column) for column in columns))


def _parse_base(section: _Section) -> BaseLimits:
    base = BaseLimits(
        linear_speed=_hard_soft(section, "linear_speed", MAX_BASE_SPEED, soft_low_open=False),
        angular_speed=_hard_soft(section, "angular_speed", MAX_BASE_ANGULAR_SPEED, soft_low_open=False),
    )
    section.finish()
    return base


def _orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    turn: np.ndarray = ((q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
                        - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0]))
    return turn


def _within(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    inside: np.ndarray = ((np.minimum(p[..., 0], q[..., 0]) <= r[..., 0])
                          & (r[..., 0] <= np.maximum(p[..., 0], q[..., 0]))
                          & (np.minimum(p[..., 1], q[..., 1]) <= r[..., 1])
                          & (r[..., 1] <= np.maximum(p[..., 1], q[..., 1])))
    return inside


def _polygon_problem(vertices: np.ndarray) -> str | None:
    """Why a polygon is not simple (numpy over all edge pairs), or None."""
    count = len(vertices)
    start, end = vertices, np.roll(vertices, -1, axis=0)
    direction = end - start
    zero = np.flatnonzero(np.all(direction == 0.0, axis=1))
    if zero.size:
        return f"vertices {zero[0]} and {(zero[0] + 1) % count} coincide"
    following = np.roll(direction, -1, axis=0)
    folds = np.flatnonzero((direction[:, 0] * following[:, 1] - direction[:, 1] * following[:, 0] == 0.0)
                           & (np.einsum("ij,ij->i", direction, following) < 0.0))
    if folds.size:
        return f"edges {folds[0]} and {(folds[0] + 1) % count} fold back on each other"
    p, q = start[:, None, :], end[:, None, :]
    r, t = start[None, :, :], end[None, :, :]
    o1, o2 = _orient(p, q, r), _orient(p, q, t)        # edge i against the ends of edge j
    o3, o4 = o1.T, o2.T                                # edge j against the ends of edge i
    cross = ((o1 * o2 < 0) & (o3 * o4 < 0)) | ((o1 == 0) & _within(p, q, r)) | ((o2 == 0) & _within(p, q, t)) \
        | ((o3 == 0) & _within(r, t, p)) | ((o4 == 0) & _within(r, t, q))
    i, j = np.meshgrid(np.arange(count), np.arange(count), indexing="ij")
    neighbours = (j == i) | (j == (i + 1) % count) | (i == (j + 1) % count)
    hits = np.argwhere(cross & ~neighbours & (i < j))
    if hits.size:
        return f"edges {hits[0][0]} and {hits[0][1]} cross: the polygon must be simple"
    return None


def _parse_polygon(value: object, path: str) -> Polygon:
    part = _Section(value, path)
    name = _name(part.take("name"), part.child("name"))
    points = _list(part.take("polygon"), part.child("polygon"), MAX_POLYGON_VERTICES)
    part.finish()
    if len(points) < 3:
        raise _fail(part.child("polygon"), f"{len(points)} vertices, a polygon needs at least 3")
    vertices = []
    for i, point in enumerate(points):
        where = f"{part.child('polygon')}[{i}]"
        items = _list(point, where)
        if len(items) != 2:
            raise _fail(where, f"expected [x, y], got {len(items)} values")
        vertices.append((_number(items[0], f"{where}[0]", -MAX_COORDINATE, MAX_COORDINATE),
                         _number(items[1], f"{where}[1]", -MAX_COORDINATE, MAX_COORDINATE)))
    array = np.array(vertices, dtype=np.float64)
    problem = _polygon_problem(array)
    if problem:
        raise _fail(part.child("polygon"), problem)
    following = np.roll(array, -1, axis=0)
    area = 0.5 * abs(float(np.sum(array[:, 0] * following[:, 1] - following[:, 0] * array[:, 1])))
    if area < 1e-6:
        raise _fail(part.child("polygon"), "encloses no area")
    return Polygon(name=name, vertices=_readonly(array))


def _parse_polygons(section: _Section, key: str, required: bool) -> tuple[Polygon, ...]:
    path = section.child(key)
    items = _list(section.take(key), path, MAX_POLYGONS)
    if required and not items:
        raise _fail(path, "needs at least one polygon")
    return tuple(_parse_polygon(item, f"{path}[{i}]") for i, item in enumerate(items))


def _parse_geofence(section: _Section) -> Geofence:
    frame = _text(section.take("frame"), section.child("frame"))
    if frame != ODOM_FRAME:
        raise _fail(section.child("frame"), f"{_show(frame)}: the geofence is given in '{ODOM_FRAME}'")
    margin = section.number("margin", 0.0, 10.0)
    keep_in = _parse_polygons(section, "keep_in", required=True)
    keep_out = _parse_polygons(section, "keep_out", required=False)
    section.finish()
    names = [polygon.name for polygon in (*keep_in, *keep_out)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise _fail(section.child("keep_in"), f"polygon name '{duplicates[0]}' is used twice")
    return Geofence(frame=frame, margin=margin, keep_in=keep_in, keep_out=keep_out)


def _parse_posture(section: _Section) -> PostureLimits:
    posture = PostureLimits(
        tilt=_warn_limit(section, "tilt", math.pi / 2),
        angular_rate=_warn_limit(section, "angular_rate", 50.0),
        joint_speed=_warn_limit(section, "joint_speed", MAX_JOINT_VELOCITY),
    )
    section.finish()
    return posture


def _parse_battery(section: _Section) -> BatteryLimits:
    warn = section.number("warn", 0.0, 1.0, low_open=True)
    minimum = section.number("minimum", 0.0, 1.0, low_open=True)
    section.finish()
    if minimum > warn:
        raise _fail(section.child("minimum"), f"{minimum:g} is above the warning level {warn:g}")
    if warn >= 1.0:
        raise _fail(section.child("warn"), "must be below 1 (a full battery would warn)")
    return BatteryLimits(warn=warn, minimum=minimum)


def _parse_inputs(section: _Section) -> Mapping[str, float]:
    ages = {name: section.number(name, 0.0, 60.0, low_open=True) for name in INPUT_NAMES}
    section.finish()
    return MappingProxyType(ages)


def _minute(value: object, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        raise _fail(path, f"{value} is not a time: quote it, e.g. \"08:30\" (YAML reads 08:30 as a number)")
    text = _text(value, path)
    match = _HHMM.match(text)
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise _fail(path, f"{_show(text)} is not a time \"HH:MM\" between 00:00 and 24:00")
    return int(match.group(1)) * 60 + int(match.group(2))


def _date(value: object, path: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _fail(path, "expected a date (YYYY-MM-DD), got a date and time")
    if isinstance(value, dt.date):
        return value
    text = _text(value, path)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise _fail(path, f"{_show(text)} is not a date YYYY-MM-DD")


def _parse_service_hours(section: _Section) -> ServiceHours:
    zone_name = _text(section.take("time_zone"), section.child("time_zone"))
    try:
        if not zone_name or zone_name.startswith(("/", ".")) or ".." in zone_name or "\\" in zone_name:
            raise ValueError(zone_name)
        zoneinfo.ZoneInfo(zone_name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError, OSError):
        raise _fail(section.child("time_zone"), f"unknown time zone {_show(zone_name)} (e.g. Asia/Shanghai)") from None
    windows = []
    weekly_path = section.child("weekly")
    for i, item in enumerate(_list(section.take("weekly"), weekly_path, 64)):
        window = _Section(item, f"{weekly_path}[{i}]")
        days_path = window.child("days")
        day_names = _list(window.take("days"), days_path, 7)
        if not day_names:
            raise _fail(days_path, "needs at least one day")
        days: set[int] = set()
        for j, day in enumerate(day_names):
            if not isinstance(day, str) or day not in WEEKDAYS:
                raise _fail(f"{days_path}[{j}]", f"{_show(day)} is not one of {', '.join(WEEKDAYS)}")
            if WEEKDAYS.index(day) in days:
                raise _fail(f"{days_path}[{j}]", f"'{day}' is listed twice")
            days.add(WEEKDAYS.index(day))
        open_minute = _minute(window.take("open"), window.child("open"))
        close_minute = _minute(window.take("close"), window.child("close"))
        window.finish()
        if open_minute >= close_minute:
            raise _fail(window.child("close"), "must be later than open (windows do not pass midnight)")
        windows.append(ServiceWindow(frozenset(days), open_minute, close_minute))
    closed_path = section.child("closed_dates")
    closed = [_date(item, f"{closed_path}[{i}]") for i, item in enumerate(_list(section.take("closed_dates"),
                                                                                 closed_path, 1000))]
    section.finish()
    return ServiceHours(time_zone=zone_name, windows=tuple(windows), closed_dates=frozenset(closed))


def _task_names(section: _Section, key: str) -> frozenset[str]:
    path = section.child(key)
    names: list[str] = []
    for i, item in enumerate(_list(section.take(key), path, 1000)):
        name = _name(item, f"{path}[{i}]", "task kind")
        if name in names:
            raise _fail(f"{path}[{i}]", f"'{name}' is listed twice")
        names.append(name)
    return frozenset(names)


def _parse_tasks(section: _Section) -> TaskPolicy:
    allowed = _task_names(section, "allowed")
    prohibited = _task_names(section, "prohibited")
    section.finish()
    missing = sorted(MANDATORY_PROHIBITED_TASKS - prohibited)
    if missing:
        raise _fail(section.child("prohibited"),
                    f"must list '{missing[0]}': a robot employee may not direct or design other robot employees")
    both = sorted(allowed & prohibited)
    if both:
        raise _fail(section.child("allowed"), f"'{both[0]}' is also prohibited")
    robotic = sorted(name for name in allowed if "robot" in name)
    if robotic:
        raise _fail(section.child("allowed"),
                    f"'{robotic[0]}' names robots: a robot employee may not direct or design other robot employees")
    return TaskPolicy(allowed=allowed, prohibited=prohibited)


def _parse_hand_chains(section: _Section, joints: JointLimitTable, model: RobotModel) -> tuple[HandChain, ...]:
    chains = []
    for hand in section.keys():  # noqa: SIM118 - a _Section, not a dict
        path = section.child(hand)
        expected = model.hand_chains.get(hand)
        if expected is None:
            raise _fail(path, f"no hand of that name in {model.name} (known: {', '.join(model.hand_chains)})")
        arms = section.section(hand)
        lever = {joint: _number(arms.take(joint), arms.child(joint), 0.0, 5.0, low_open=True)
                 for joint in expected}
        arms.finish()
        chains.append(HandChain(hand, _readonly([joints.index[j] for j in expected], np.int64),
                                _readonly([lever[j] for j in expected])))
    missing = [hand for hand in model.hand_chains if hand not in {chain.name for chain in chains}]
    if missing:
        raise _fail(section.child(missing[0]), "missing: every hand needs its lever arms")
    section.finish()
    return tuple(chains)


def _parse_reduced(section: _Section, joints: JointLimitTable, model: RobotModel) -> ReducedProfile:
    speed_scale = section.number("speed_scale", 0.0, 1.0, low_open=True)
    hand_speed = section.number("hand_speed", 0.0, 2.0, low_open=True)
    table = section.section("joints")
    velocity = np.array(joints.soft_velocity, dtype=np.float64)
    effort = np.array(joints.soft_effort, dtype=np.float64)
    seen: set[str] = set()
    for name in table.keys():  # noqa: SIM118 - a _Section, not a dict
        path = table.child(name)
        if name not in joints.index:
            raise _fail(path, "no joint of that name in the envelope")
        i = joints.index[name]
        row = table.section(name)
        velocity[i] = row.number("velocity", 0.0, MAX_JOINT_VELOCITY, low_open=True)
        effort[i] = row.number("effort", 0.0, MAX_EFFORT, low_open=True)
        row.finish()
        if velocity[i] > joints.soft_velocity[i]:
            raise _fail(row.child("velocity"),
                        f"{velocity[i]:g} is above the joint's NORMAL limit {joints.soft_velocity[i]:g}")
        if effort[i] > joints.soft_effort[i]:
            raise _fail(row.child("effort"),
                        f"{effort[i]:g} is above the joint's NORMAL limit {joints.soft_effort[i]:g}")
        seen.add(name)
    missing = [name for name in joints.names if name not in seen]
    if missing:
        raise _fail(table.child(missing[0]), "missing: every joint needs its REDUCED velocity and effort")
    chains = _parse_hand_chains(section.section("hand_lever_arms"), joints, model)
    section.finish()
    return ReducedProfile(speed_scale=speed_scale, hand_speed=hand_speed, joint_velocity=_readonly(velocity),
                          joint_effort=_readonly(effort), hand_chains=chains)


def _response(value: object, path: str) -> Response:
    if not isinstance(value, str) or value not in {r.value for r in Response}:
        raise _fail(path, f"{_show(value)} is not one of {', '.join(r.value for r in Response)}")
    return Response(value)


def _parse_responses(section: _Section) -> ResponsePolicy:
    escalation = section.number("safe_stop_escalation", 0.0, 3600.0, low_open=True)
    category = section.take("estop_category")
    if isinstance(category, bool) or category not in (1, 2):
        raise _fail(section.child("estop_category"), f"{_show(category)} is not a stop category 1 or 2")
    reset_max_age = section.number("reset_max_age", 0.0, 60.0, low_open=True)
    severities = section.section("severity_responses")
    by_severity = {severity: _response(severities.take(severity.name.lower()),
                                       severities.child(severity.name.lower())) for severity in Severity}
    severities.finish()
    for lower, higher in zip(list(Severity), list(Severity)[1:], strict=False):
        if by_severity[higher].rank < by_severity[lower].rank:
            raise _fail(severities.child(higher.name.lower()),
                        f"'{by_severity[higher].value}' is milder than the response to {lower.name.lower()}")
    for severity in (Severity.ERROR, Severity.CRITICAL):
        if not by_severity[severity].stops:
            raise _fail(severities.child(severity.name.lower()),
                        "must stop the robot (safe_stop, power_down, tuck or damp)")
    kinds = section.section("kind_responses")
    by_kind = {_name(kind, kinds.child(str(kind)), "anomaly kind"): _response(kinds.take(kind), kinds.child(kind))
               for kind in kinds.keys()}  # noqa: SIM118 - a _Section, not a dict
    kinds.finish()
    section.finish()
    return ResponsePolicy(
        severity_responses=MappingProxyType(by_severity), kind_responses=MappingProxyType(by_kind),
        safe_stop_escalation=escalation, estop_category=int(category), reset_max_age=reset_max_age,
    )


# ---------------------------------------------------------------------------------------------
# Entry points


def envelope_from_data(data: object) -> Envelope:
    """An :class:`Envelope` from an already parsed YAML document; :class:`EnvelopeError` otherwise."""
    top = _Section(data, "")
    version = top.take("format")
    if version != FORMAT:
        raise _fail("format", f"{_show(version)} is not '{FORMAT}'")
    model_name = _text(top.take("robot_model"), "robot_model")
    model = KNOWN_MODELS.get(model_name)
    if model is None:
        raise _fail("robot_model", f"unknown robot model {_show(model_name)} (known: {', '.join(KNOWN_MODELS)})")
    joints = _parse_joints(top.section("joints"), model)
    envelope = Envelope(
        robot_model=model_name,
        joints=joints,
        base=_parse_base(top.section("base")),
        geofence=_parse_geofence(top.section("geofence")),
        posture=_parse_posture(top.section("posture")),
        actuator_temperature=_warn_limit(top, "actuator_temperature", MAX_TEMPERATURE),
        battery=_parse_battery(top.section("battery")),
        input_max_age=_parse_inputs(top.section("inputs")),
        service_hours=_parse_service_hours(top.section("service_hours")),
        tasks=_parse_tasks(top.section("tasks")),
        reduced=_parse_reduced(top.section("reduced"), joints, model),
        responses=_parse_responses(top.section("supervisor")),
    )
    top.finish()
    return envelope


def parse_envelope(text: str | bytes) -> Envelope:
    """An :class:`Envelope` from YAML text or bytes; :class:`EnvelopeError` with a one-line reason otherwise."""
    return envelope_from_data(load_yaml_strict(text))


def read_envelope_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an envelope file (bounded in size); :class:`EnvelopeError` naming the file otherwise."""
    target = Path(path)
    try:
        with open(target, "rb") as handle:
            data = handle.read(MAX_ENVELOPE_BYTES + 1)
    except FileNotFoundError:
        raise EnvelopeError(f"{target}: no such envelope file") from None
    except IsADirectoryError:
        raise EnvelopeError(f"{target}: is a directory, not an envelope file") from None
    except OSError as exc:
        raise EnvelopeError(f"{target}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_ENVELOPE_BYTES:
        raise EnvelopeError(f"{target}: larger than {MAX_ENVELOPE_BYTES} bytes")
    return data


def load_envelope(path: str | os.PathLike[str]) -> Envelope:
    """Parse an envelope file WITHOUT checking its signature (tools and tests; a robot uses
    :func:`ftrobot_guard.safety.envelope_signature.load_signed_envelope`)."""
    data = read_envelope_bytes(path)
    try:
        return parse_envelope(data)
    except EnvelopeError as exc:
        raise EnvelopeError(f"{path}: {exc}") from None
