"""Checks of everything that can move the robot: joint commands, PD gains, base velocity.

Each check returns a complete, valid value or raises ``CommandRefused`` with one clear reason. Nothing
is ever applied partly: a command with one bad joint is refused as a whole.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KP_MAX = 2000.0  # N·m/rad
KD_MAX = 200.0  # N·m·s/rad
POSITION_TOLERANCE = 1e-6  # rad outside a joint's range still accepted (float round-off)


class CommandRefused(ValueError):
    """A command or gain set was refused; str() is the reason."""


@dataclass(frozen=True)
class JointLimits:
    names: tuple[str, ...]
    position_lower: np.ndarray
    position_upper: np.ndarray
    effort_limit: np.ndarray
    velocity_limit: float

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


@dataclass(frozen=True)
class JointCommand:
    """A validated command for a subset of the joints (indices into the model's joint order)."""

    indices: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray  # zeros where none were given
    efforts: np.ndarray  # feed-forward N·m, zeros where none were given


@dataclass(frozen=True)
class JointGains:
    kp: np.ndarray
    kd: np.ndarray


@dataclass(frozen=True)
class BaseVelocity:
    vx: float  # m/s, forward in the pelvis heading frame
    vy: float  # m/s, left
    wz: float  # rad/s, yaw rate


def _finite_array(values: Sequence[float], what: str, names: Sequence[str]) -> np.ndarray:
    try:
        array = np.asarray(list(values), dtype=np.float64)
    except (TypeError, ValueError):
        raise CommandRefused(f"{what}: not a list of numbers") from None
    bad = [names[i] if i < len(names) else str(i) for i in map(int, np.flatnonzero(~np.isfinite(array)))]
    if bad:
        raise CommandRefused(f"{what}: NaN or Inf for {', '.join(bad)}")
    return array


def validate_joint_command(
    limits: JointLimits,
    joint_names: Sequence[str],
    positions: Sequence[float],
    velocities: Sequence[float] = (),
    efforts: Sequence[float] = (),
) -> JointCommand:
    """A JointCommand, or CommandRefused naming the first problem found."""
    names = list(joint_names)
    if not names:
        raise CommandRefused("no joint names")
    index = limits.index
    unknown = [name for name in names if name not in index]
    if unknown:
        raise CommandRefused(f"unknown joint names: {', '.join(repr(n) for n in unknown[:5])}")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise CommandRefused(f"duplicate joint names: {', '.join(duplicates)}")
    count = len(names)
    if len(positions) != count:
        raise CommandRefused(f"{len(positions)} positions for {count} joint names")
    for field, values in (("velocities", velocities), ("effort", efforts)):
        if len(values) not in (0, count):
            raise CommandRefused(f"{len(values)} {field} for {count} joint names (give none or one per joint)")
    indices = np.array([index[name] for name in names], dtype=np.int64)
    pos = _finite_array(positions, "positions", names)
    vel = _finite_array(velocities, "velocities", names) if len(velocities) else np.zeros(count)
    eff = _finite_array(efforts, "effort", names) if len(efforts) else np.zeros(count)
    lower = limits.position_lower[indices] - POSITION_TOLERANCE
    upper = limits.position_upper[indices] + POSITION_TOLERANCE
    outside = np.flatnonzero((pos < lower) | (pos > upper))
    if outside.size:
        i = int(outside[0])
        raise CommandRefused(
            f"position {pos[i]:.4f} rad for {names[i]} is outside its range "
            f"[{limits.position_lower[indices[i]]:.4f}, {limits.position_upper[indices[i]]:.4f}]"
        )
    too_fast = np.flatnonzero(np.abs(vel) > limits.velocity_limit)
    if too_fast.size:
        i = int(too_fast[0])
        raise CommandRefused(f"velocity {vel[i]:.3f} rad/s for {names[i]} exceeds {limits.velocity_limit} rad/s")
    too_strong = np.flatnonzero(np.abs(eff) > limits.effort_limit[indices])
    if too_strong.size:
        i = int(too_strong[0])
        limit = limits.effort_limit[indices[i]]
        raise CommandRefused(f"feed-forward effort {eff[i]:.2f} N·m for {names[i]} exceeds its limit {limit:.1f}")
    return JointCommand(indices=indices, positions=pos, velocities=vel, efforts=eff)


def _gain_array(values: Sequence[float], what: str, joint_count: int, high: float) -> np.ndarray:
    if len(values) not in (1, joint_count):
        raise CommandRefused(f"{what}: {len(values)} values, expected 1 (all joints) or {joint_count}")
    array = _finite_array(values, what, [])
    if np.any(array < 0.0) or np.any(array > high):
        raise CommandRefused(f"{what}: values must be within [0, {high}]")
    return np.broadcast_to(array, (joint_count,)).copy() if array.size == 1 else array


def validate_gains(kp: Sequence[float], kd: Sequence[float], joint_count: int) -> JointGains:
    """Per-joint PD gains from one value for all joints or one per joint, finite and in range."""
    return JointGains(kp=_gain_array(kp, "kp", joint_count, KP_MAX), kd=_gain_array(kd, "kd", joint_count, KD_MAX))


def validate_base_velocity(
    linear: Sequence[float], angular: Sequence[float], max_linear: float, max_angular: float
) -> BaseVelocity:
    """A planar base velocity (vx, vy, wz); other components must be zero."""
    values = list(linear) + list(angular)
    if len(values) != 6 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise CommandRefused("base velocity: NaN, Inf or missing components")
    vx, vy, vz, wx, wy, wz = (float(v) for v in values)
    if any(abs(v) > 1e-9 for v in (vz, wx, wy)):
        raise CommandRefused("base velocity: only linear.x, linear.y and angular.z are supported (others must be 0)")
    if math.hypot(vx, vy) > max_linear:
        raise CommandRefused(f"base velocity: planar speed {math.hypot(vx, vy):.3f} m/s exceeds {max_linear} m/s")
    if abs(wz) > max_angular:
        raise CommandRefused(f"base velocity: yaw rate {wz:.3f} rad/s exceeds {max_angular} rad/s")
    return BaseVelocity(vx=vx, vy=vy, wz=wz)
