"""Checks of commands against the operating envelope: clamp what may be clamped, refuse the rest, say why.

Pure functions over an :class:`~ftrobot_guard.safety.envelope.Envelope` for the command gate (numpy,
no state of their own: the gate keeps the last forwarded command and passes it in).

Joint commands (:func:`check_joint_command`), in this order; the first refusal wins:

1. names: known, not repeated, not empty; arrays one value per name (velocities and efforts optional);
   every value a finite number. Otherwise refused.
2. position beyond the hard range, velocity target or feed-forward effort beyond the hard limit:
   refused (a controller asking for what the machine cannot do is broken). Beyond the soft limit (and
   within the hard one): clamped to the soft limit / the mode's limit.
3. position step since the last forwarded command (or the measured posture it was re-anchored to):
   a step implying more than the joint's hard (rated) velocity is refused; more than the mode's
   velocity limit is shortened to what the limit allows in the elapsed time.
4. REDUCED only: each hand chain's motion is scaled so that ``Σ |q̇_i| r_i ≤ hand_speed`` (steps and
   velocity targets alike; r_i from ``reduced.hand_lever_arms``).

What the checks guarantee (hypothesis tests in tests/test_envelope_checks.py): nothing non-finite is
forwarded; forwarded positions are inside the hard range, and inside the soft range whenever the
previous command was; forwarded velocities, efforts and implied step velocities are within the mode's
limits; in REDUCED every hand chain's bound is within hand_speed.

Base velocity (:func:`check_base_velocity`): planar, finite; speed and yaw rate clamped to the mode's
limit, refused beyond the hard limit. Geofence (:func:`check_geofence`, :func:`check_base_motion`),
service hours (:func:`check_service_hours`) and tasks (:func:`check_task`) answer allowed or not with
the reason.

The envelope's acceleration limits are not applied to commands here: a position stream's implied
acceleration jumps whenever a motion starts from rest, so it is a detector's quantity (measured
acceleration spikes), not a command gate's.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftrobot_guard.safety.envelope import (
    MANDATORY_PROHIBITED_TASKS,
    NAME_PATTERN,
    WEEKDAYS,
    Envelope,
    Geofence,
    MotionProfile,
    ServiceHours,
    TaskPolicy,
)

POSITION_TOLERANCE = 1e-6       # rad beyond a hard limit still counted as on it (float round-off)
PLANAR_TOLERANCE = 1e-9         # non-planar base velocity components must be this close to zero
VELOCITY_TOLERANCE = 1e-9       # relative round-off allowed on implied velocities (prev + step - prev != step)
MAX_NAMES = 256


class Outcome(enum.Enum):
    ACCEPTED = "accepted"   # forwarded as given
    CLAMPED = "clamped"     # forwarded after clamping (see the clamps)
    REFUSED = "refused"     # not forwarded

    @property
    def forwarded(self) -> bool:
        return self is not Outcome.REFUSED


@dataclass(frozen=True)
class Clamp:
    """One value changed to stay inside the envelope (SI units)."""

    subject: str        # joint name, "base" or a hand chain
    quantity: str       # position, velocity, effort, step velocity, hand speed, planar speed, yaw rate
    requested: float
    limit: float

    def describe(self) -> str:
        return f"{self.subject} {self.quantity} {self.requested:.4g} clamped to {self.limit:.4g}"


def _summary(clamps: Sequence[Clamp]) -> str:
    if not clamps:
        return ""
    more = f" (+{len(clamps) - 3} more)" if len(clamps) > 3 else ""
    return "; ".join(clamp.describe() for clamp in clamps[:3]) + more


@dataclass(frozen=True, eq=False)
class JointCommandDecision:
    """What the gate may forward for a joint command (arrays in the command's name order)."""

    outcome: Outcome
    reason: str                  # refusal reason, or the clamps in one line; "" when accepted as given
    names: tuple[str, ...]
    indices: np.ndarray          # model joint index of each name
    positions: np.ndarray        # rad
    velocities: np.ndarray | None  # rad/s, None when the command gave none
    efforts: np.ndarray | None     # N·m feed-forward, None when the command gave none
    clamps: tuple[Clamp, ...]

    @property
    def forwarded(self) -> bool:
        return self.outcome.forwarded


_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False
_EMPTY_INDEX = np.zeros(0, dtype=np.int64)
_EMPTY_INDEX.flags.writeable = False


def _refuse(reason: str, names: Sequence[str] = ()) -> JointCommandDecision:
    return JointCommandDecision(Outcome.REFUSED, reason, tuple(names), _EMPTY_INDEX, _EMPTY, None, None, ())


def _finite(values: object, what: str, names: Sequence[str]) -> np.ndarray | str:
    try:
        array = np.array(values, dtype=np.float64)  # a copy: the caller's array is never changed
    except (TypeError, ValueError, OverflowError):
        return f"{what}: not a list of numbers"
    if array.ndim != 1:
        return f"{what}: not a flat list of numbers"
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        return f"{what}: NaN or Inf for {', '.join(names[i] for i in bad[:5] if i < len(names))}"
    return array


@dataclass(frozen=True, eq=False)
class _Layout:
    """The limits of one (profile, joint-name list) sliced once: streams repeat their name list."""

    names: tuple[str, ...]
    idx: np.ndarray
    hard_lo: np.ndarray
    hard_hi: np.ndarray
    soft_lo: np.ndarray
    soft_hi: np.ndarray
    hard_velocity: np.ndarray
    hard_effort: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    chain_names: tuple[str, ...]
    levers: np.ndarray | None     # (chains, joints) lever arms, 0 where a joint is not in the chain
    in_chain: np.ndarray | None   # levers > 0


MAX_LAYOUTS = 256
_LAYOUTS: dict[tuple[int, int, tuple[str, ...]], tuple[Envelope, MotionProfile, _Layout]] = {}


def _layout(envelope: Envelope, profile: MotionProfile, joint_names: Sequence[str]) -> _Layout | str:
    try:
        names = tuple(joint_names)
        key = (id(envelope), id(profile), names)
        cached = _LAYOUTS.get(key)
    except TypeError:  # an unhashable name
        return "joint names must be strings"
    if cached is not None and cached[0] is envelope and cached[1] is profile:
        return cached[2]
    if not names:
        return "no joint names"
    if len(names) > MAX_NAMES:
        return f"{len(names)} joint names, more than {MAX_NAMES}"
    index = envelope.joints.index
    unknown = [name for name in names if not isinstance(name, str) or name not in index]
    if unknown:
        return f"unknown joint names: {', '.join(repr(str(n)[:40]) for n in unknown[:5])}"
    if len(set(names)) != len(names):
        seen: set[str] = set()
        repeated = sorted({name for name in names if name in seen or seen.add(name)})  # type: ignore[func-returns-value]
        return f"repeated joint names: {', '.join(repeated[:5])}"
    idx = np.fromiter((index[name] for name in names), dtype=np.int64, count=len(names))
    joints = envelope.joints
    levers = None
    if profile.hand_speed is not None and profile.hand_chains:
        levers = np.zeros((len(profile.hand_chains), len(names)))
        where = {int(model_index): k for k, model_index in enumerate(idx)}
        for c, chain in enumerate(profile.hand_chains):
            for j, r in zip(chain.indices, chain.lever_arms, strict=True):
                if int(j) in where:
                    levers[c, where[int(j)]] = r
    layout = _Layout(
        names, idx, joints.hard_lower[idx], joints.hard_upper[idx], joints.soft_lower[idx], joints.soft_upper[idx],
        joints.hard_velocity[idx], joints.hard_effort[idx], profile.velocity[idx], profile.effort[idx],
        tuple(chain.name for chain in profile.hand_chains), levers, None if levers is None else levers > 0.0,
    )
    if len(_LAYOUTS) >= MAX_LAYOUTS:
        _LAYOUTS.clear()
    _LAYOUTS[key] = (envelope, profile, layout)  # the objects are kept, so their ids cannot be reused
    return layout


def _first(mask: np.ndarray) -> int | None:
    if not mask.any():
        return None
    return int(np.argmax(mask))


def _clamp_magnitude(values: np.ndarray, limit: np.ndarray, names: Sequence[str], quantity: str,
                     clamps: list[Clamp]) -> np.ndarray:
    over = np.abs(values) > limit
    if not over.any():
        return values
    for i in np.flatnonzero(over):
        clamps.append(Clamp(names[int(i)], quantity, float(values[i]), float(limit[i])))
    clipped: np.ndarray = np.clip(values, -limit, limit)
    return clipped


def _hand_scale(layout: _Layout, rates: np.ndarray, hand_speed: float, quantity: str,
                clamps: list[Clamp]) -> np.ndarray | None:
    """Per-joint factors that bring every hand chain's Σ r_i |q̇_i| to hand_speed (None: nothing to scale)."""
    assert layout.levers is not None and layout.in_chain is not None
    bounds = layout.levers @ rates
    over = bounds > hand_speed * (1.0 + VELOCITY_TOLERANCE)
    if not over.any():
        return None
    factors = np.where(over, hand_speed / np.where(over, bounds, 1.0), 1.0)
    for c in np.flatnonzero(over):
        clamps.append(Clamp(layout.chain_names[int(c)], quantity, float(bounds[c]), hand_speed))
    scale: np.ndarray = np.where(layout.in_chain, factors[:, None], 1.0).min(axis=0)
    return scale


def check_joint_command(
    envelope: Envelope,
    profile: MotionProfile,
    joint_names: Sequence[str],
    positions: Sequence[float] | np.ndarray,
    velocities: Sequence[float] | np.ndarray = (),
    efforts: Sequence[float] | np.ndarray = (),
    *,
    previous: np.ndarray,
    elapsed: float,
) -> JointCommandDecision:
    """Clamp or refuse a joint command (``trajectory_msgs/JointTrajectory`` first point) for ``profile``.

    ``previous`` holds, for every joint in model order, the position last forwarded (or the measured
    posture the stream was re-anchored to); ``elapsed`` is the time in s since then (> 0).
    """
    layout = _layout(envelope, profile, joint_names)
    if isinstance(layout, str):
        return _refuse(layout)
    names = layout.names
    count = len(names)
    if len(positions) != count:
        return _refuse(f"{len(positions)} positions for {count} joint names", names)
    for field, values in (("velocities", velocities), ("effort", efforts)):
        if len(values) not in (0, count):
            return _refuse(f"{len(values)} {field} for {count} joint names (give none or one per joint)", names)
    pos = _finite(positions, "positions", names)
    vel = _finite(velocities, "velocities", names) if len(velocities) else None
    eff = _finite(efforts, "effort", names) if len(efforts) else None
    for array in (pos, vel, eff):
        if isinstance(array, str):
            return _refuse(array, names)
    assert isinstance(pos, np.ndarray)
    if not (isinstance(elapsed, (int, float)) and math.isfinite(elapsed) and elapsed > 0.0):
        return _refuse(f"no time elapsed since the last forwarded command ({elapsed!r} s)", names)
    full_previous = np.asarray(previous, dtype=np.float64)
    if full_previous.shape != (len(envelope.joints),):
        raise ValueError(f"previous must hold {len(envelope.joints)} positions in model order, "
                         f"got shape {full_previous.shape}")
    prev = full_previous[layout.idx]
    i = _first(~np.isfinite(prev))
    if i is not None:
        return _refuse(f"no anchor for {names[i]}: re-anchor to the measured posture first", names)

    # hard limits: refuse
    i = _first((pos < layout.hard_lo - POSITION_TOLERANCE) | (pos > layout.hard_hi + POSITION_TOLERANCE))
    if i is not None:
        return _refuse(f"position {pos[i]:.4f} rad for {names[i]} is beyond its hard range "
                       f"[{layout.hard_lo[i]:.4f}, {layout.hard_hi[i]:.4f}]", names)
    if vel is not None:
        assert isinstance(vel, np.ndarray)
        i = _first(np.abs(vel) > layout.hard_velocity)
        if i is not None:
            return _refuse(f"velocity {vel[i]:.3f} rad/s for {names[i]} is beyond its hard limit "
                           f"{layout.hard_velocity[i]:g} rad/s", names)
    if eff is not None:
        assert isinstance(eff, np.ndarray)
        i = _first(np.abs(eff) > layout.hard_effort)
        if i is not None:
            return _refuse(f"feed-forward effort {eff[i]:.2f} N·m for {names[i]} is beyond its hard limit "
                           f"{layout.hard_effort[i]:g} N·m", names)
    step = pos - prev
    i = _first(np.abs(step) > layout.hard_velocity * elapsed * (1.0 + VELOCITY_TOLERANCE))
    if i is not None:
        return _refuse(f"position step {step[i]:+.4f} rad for {names[i]} in {elapsed:.4g} s exceeds its "
                       f"rated {layout.hard_velocity[i]:g} rad/s", names)

    # soft limits: clamp
    clamps: list[Clamp] = []
    outside = (pos < layout.soft_lo) | (pos > layout.soft_hi)
    if outside.any():
        clamped = np.clip(pos, layout.soft_lo, layout.soft_hi)
        for k in np.flatnonzero(outside):
            clamps.append(Clamp(names[int(k)], "position", float(pos[k]), float(clamped[k])))
        pos = clamped
        step = pos - prev
    if vel is not None:
        vel = _clamp_magnitude(vel, layout.velocity, names, "velocity", clamps)
    if eff is not None:
        eff = _clamp_magnitude(eff, layout.effort, names, "effort", clamps)
    allowed = layout.velocity * elapsed
    too_far = np.abs(step) > allowed * (1.0 + VELOCITY_TOLERANCE)
    stepped = bool(too_far.any())
    if stepped:
        for k in np.flatnonzero(too_far):
            clamps.append(Clamp(names[int(k)], "step velocity", float(abs(step[k]) / elapsed),
                                float(layout.velocity[k])))
        step = np.clip(step, -allowed, allowed)
    if layout.levers is not None and profile.hand_speed is not None:
        scale = _hand_scale(layout, np.abs(step) / elapsed, profile.hand_speed, "hand speed (steps)", clamps)
        if scale is not None:
            step, stepped = step * scale, True
        if vel is not None:
            scale = _hand_scale(layout, np.abs(vel), profile.hand_speed, "hand speed (velocity targets)", clamps)
            if scale is not None:
                vel = vel * scale
    if stepped:
        # prev + (target - prev) can land one ulp beyond the soft limit: keep it on the limit (or at prev)
        pos = np.clip(prev + step, np.minimum(prev, layout.soft_lo), np.maximum(prev, layout.soft_hi))
    if clamps:
        return JointCommandDecision(Outcome.CLAMPED, _summary(clamps), names, layout.idx, pos, vel, eff,
                                    tuple(clamps))
    return JointCommandDecision(Outcome.ACCEPTED, "", names, layout.idx, pos, vel, eff, ())


# ---------------------------------------------------------------------------------------------
# Base velocity


@dataclass(frozen=True)
class BaseVelocityDecision:
    outcome: Outcome
    reason: str
    vx: float = 0.0     # m/s forward
    vy: float = 0.0     # m/s left
    wz: float = 0.0     # rad/s yaw rate
    clamps: tuple[Clamp, ...] = ()

    @property
    def forwarded(self) -> bool:
        return self.outcome.forwarded


def check_base_velocity(envelope: Envelope, profile: MotionProfile, linear: Sequence[float],
                        angular: Sequence[float]) -> BaseVelocityDecision:
    """Clamp or refuse a ``geometry_msgs/Twist`` (linear x, y, z; angular x, y, z) for ``profile``."""
    values = _finite(list(linear) + list(angular), "base velocity", ("linear.x", "linear.y", "linear.z",
                                                                      "angular.x", "angular.y", "angular.z"))
    if isinstance(values, str):
        return BaseVelocityDecision(Outcome.REFUSED, values)
    if values.size != 6:
        return BaseVelocityDecision(Outcome.REFUSED, f"base velocity: {values.size} components, expected 3 + 3")
    vx, vy, vz, wx, wy, wz = (float(v) for v in values)
    if any(abs(v) > PLANAR_TOLERANCE for v in (vz, wx, wy)):
        return BaseVelocityDecision(Outcome.REFUSED, "base velocity: only linear.x, linear.y and angular.z may move "
                                    "the base (the others must be 0)")
    speed = math.hypot(vx, vy)
    base = envelope.base
    if speed > base.linear_speed.hard:
        return BaseVelocityDecision(Outcome.REFUSED, f"base velocity: planar speed {speed:.3f} m/s is beyond the "
                                    f"hard limit {base.linear_speed.hard:g} m/s")
    if abs(wz) > base.angular_speed.hard:
        return BaseVelocityDecision(Outcome.REFUSED, f"base velocity: yaw rate {wz:.3f} rad/s is beyond the hard "
                                    f"limit {base.angular_speed.hard:g} rad/s")
    clamps = []
    if speed > profile.linear_speed:
        factor = profile.linear_speed / speed
        vx, vy = vx * factor, vy * factor
        clamps.append(Clamp("base", "planar speed", speed, profile.linear_speed))
    if abs(wz) > profile.angular_speed:
        clamps.append(Clamp("base", "yaw rate", wz, math.copysign(profile.angular_speed, wz)))
        wz = math.copysign(profile.angular_speed, wz)
    outcome = Outcome.CLAMPED if clamps else Outcome.ACCEPTED
    return BaseVelocityDecision(outcome, _summary(clamps), vx, vy, wz, tuple(clamps))


# ---------------------------------------------------------------------------------------------
# Geofence, service hours, tasks


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: str   # why not (or a short confirmation when allowed)


def _signed_distances(vertices: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Distance of each point (xs[k], ys[k]) to the polygon's boundary, negative for a point inside it
    (even-odd ray casting), for all points and edges at once (numpy, shape (points, edges))."""
    xi, yi = vertices[:, 0], vertices[:, 1]
    xj, yj = np.concatenate((xi[-1:], xi[:-1])), np.concatenate((yi[-1:], yi[:-1]))  # edges j -> i: crossings
    px, py = xs[:, None], ys[:, None]
    straddles = (yi > py) != (yj > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing_x = (xj - xi) * (py - yi) / (yj - yi) + xi
    inside = np.count_nonzero(straddles & (px < crossing_x), axis=1) % 2 == 1
    bx, by = np.concatenate((xi[1:], xi[:1])), np.concatenate((yi[1:], yi[:1]))      # edges i -> i+1: distances
    abx, aby = bx - xi, by - yi
    apx, apy = px - xi, py - yi
    t = np.clip((apx * abx + apy * aby) / (abx * abx + aby * aby), 0.0, 1.0)
    distance = np.min(np.hypot(xi + abx * t - px, yi + aby * t - py), axis=1)
    signed: np.ndarray = np.where(inside, -distance, distance)
    return signed


def geofence_clearances(geofence: Geofence, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """:func:`geofence_clearance` for many points at once (one numpy pass per polygon): the signed
    clearances and, for each point, the polygon that decides it."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    keep_in = np.array([-_signed_distances(p.vertices, xs, ys) for p in geofence.keep_in])
    deciding = np.argmax(keep_in, axis=0)               # the first polygon with the largest clearance
    clearance = keep_in[deciding, np.arange(xs.size)]
    names = [geofence.keep_in[int(k)].name for k in deciding]
    for polygon in geofence.keep_out:
        signed = _signed_distances(polygon.vertices, xs, ys)
        closer = signed < clearance
        clearance = np.where(closer, signed, clearance)
        names = [polygon.name if c else n for c, n in zip(closer.tolist(), names, strict=True)]
    return clearance, names


def geofence_clearance(geofence: Geofence, x: float, y: float) -> tuple[float, str]:
    """Signed clearance (m) of a point: distance to the nearest boundary it must not cross, negative when
    it is outside every keep-in polygon or inside a keep-out polygon; with the polygon that decides."""
    clearance, names = geofence_clearances(geofence, np.array([x], dtype=float), np.array([y], dtype=float))
    return float(clearance[0]), names[0]


def check_geofence(geofence: Geofence, x: float, y: float) -> CheckResult:
    """Whether a position in ``odom`` keeps the geofence's margin from every boundary."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return CheckResult(False, f"position ({x}, {y}) is not finite")
    clearance, name = geofence_clearance(geofence, x, y)
    if clearance >= geofence.margin:
        return CheckResult(True, f"{clearance:.2f} m from {name}")
    where = "outside the geofence" if clearance < 0 else f"within {geofence.margin:g} m of the geofence"
    return CheckResult(False, f"position ({x:.2f}, {y:.2f}) in {geofence.frame} is {where} ({name}, clearance "
                              f"{clearance:.2f} m)")


def check_base_motion(geofence: Geofence, x: float, y: float, yaw: float, vx: float, vy: float,
                      horizon: float, samples: int = 8) -> CheckResult:
    """Whether moving at (vx, vy) in the base frame for ``horizon`` s keeps the geofence.

    Allowed when every point of the path (sampled) keeps the margin, or when the robot is already too
    close or outside and the motion strictly increases its clearance (the way back in).
    """
    values = (x, y, yaw, vx, vy, horizon)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or horizon < 0.0:
        return CheckResult(False, "position, heading, velocity or horizon is not finite")
    if vx == 0.0 and vy == 0.0:
        return CheckResult(True, "no planar motion")
    dx = (math.cos(yaw) * vx - math.sin(yaw) * vy) * horizon
    dy = (math.sin(yaw) * vx + math.cos(yaw) * vy) * horizon
    fractions = np.concatenate(([0.0], np.linspace(1.0 / samples, 1.0, samples)))  # now, then along the path
    clearances, names = geofence_clearances(geofence, x + dx * fractions, y + dy * fractions)
    now_clearance, end_clearance = float(clearances[0]), float(clearances[-1])
    first_worst = 1 + int(np.argmin(clearances[1:]))
    worst, worst_name = float(clearances[first_worst]), names[first_worst]
    if worst >= geofence.margin:
        return CheckResult(True, f"path keeps {worst:.2f} m from {worst_name}")
    if now_clearance < geofence.margin and end_clearance > now_clearance and worst >= now_clearance:
        return CheckResult(True, f"moving back inside the geofence ({now_clearance:.2f} -> {end_clearance:.2f} m)")
    return CheckResult(False, f"motion would bring the robot within {geofence.margin:g} m of the geofence "
                              f"({worst_name}, clearance {worst:.2f} m in {horizon:g} s)")


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def describe_service_hours(hours: ServiceHours) -> str:
    """One line: ``mon,tue,wed,thu,fri 09:00-18:00; sat 09:00-12:00 (Asia/Shanghai)``."""
    parts = [f"{','.join(WEEKDAYS[d] for d in sorted(w.days))} {_clock(w.open_minute)}-{_clock(w.close_minute)}"
             for w in hours.windows]
    return f"{'; '.join(parts) or 'never'} ({hours.time_zone})"


def check_service_hours(hours: ServiceHours, now: dt.datetime) -> CheckResult:
    """Whether ``now`` (timezone-aware) falls in the service hours, in their time zone."""
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        return CheckResult(False, "the time is not a timezone-aware datetime")
    local = now.astimezone(hours.zone)
    label = f"{WEEKDAYS[local.weekday()]} {local:%Y-%m-%d %H:%M} {hours.time_zone}"
    if local.date() in hours.closed_dates:
        return CheckResult(False, f"outside service hours: {label} is a closed date")
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    for window in hours.windows:
        if local.weekday() in window.days and window.open_minute * 60 <= seconds < window.close_minute * 60:
            return CheckResult(True, f"{label} is within service hours")
    return CheckResult(False, f"outside service hours: {label} (open {describe_service_hours(hours)})")


def check_task(tasks: TaskPolicy, task_kind: object) -> CheckResult:
    """Whether a task kind may be forwarded: well-formed, not prohibited, whitelisted."""
    if not isinstance(task_kind, str) or not NAME_PATTERN.match(task_kind):
        shown = repr(task_kind)[:40]
        return CheckResult(False, f"task kind {shown} is malformed (lower-case letters, digits and _)")
    if task_kind in MANDATORY_PROHIBITED_TASKS or "robot" in task_kind:
        return CheckResult(False, f"task kind '{task_kind}' is prohibited: a robot employee may not direct or "
                                  "design other robot employees")
    if task_kind in tasks.prohibited:
        return CheckResult(False, f"task kind '{task_kind}' is prohibited by the envelope")
    if task_kind not in tasks.allowed:
        return CheckResult(False, f"task kind '{task_kind}' is not in the envelope's task whitelist")
    return CheckResult(True, f"task kind '{task_kind}' is whitelisted")
