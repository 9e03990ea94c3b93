"""Actuation modes of the hardware contract; values equal ftrobot_msgs/srv/SetActuationMode MODE_*.

| mode        | physical meaning in the simulator                                                    |
|-------------|--------------------------------------------------------------------------------------|
| NORMAL      | joint PD toward the latest accepted hw/joint_command (+ feed-forward), effort-clipped |
| HOLD        | joint PD toward the posture measured when HOLD was entered; commands ignored         |
| DAMPING     | tau = -kd_damping * qdot on every joint: no position target, a slow soft collapse    |
| ZERO_TORQUE | motors energised, commanded torque 0 (back-drivable; rotor inertia, friction remain) |
| POWER_OFF   | motor power cut: torque 0, no idle motor power, commands ignored                     |
"""

from __future__ import annotations

from enum import IntEnum


class ActuationMode(IntEnum):
    NORMAL = 0
    HOLD = 1
    DAMPING = 2
    ZERO_TORQUE = 3
    POWER_OFF = 4


# Modes that only take energy out of the robot or stop it: always accepted, from any source.
STOP_MODES = frozenset({ActuationMode.HOLD, ActuationMode.DAMPING, ActuationMode.ZERO_TORQUE, ActuationMode.POWER_OFF})


class UnknownModeError(ValueError):
    """A requested mode number does not exist."""


def parse_mode(value: object) -> ActuationMode:
    """The mode for a SetActuationMode number; UnknownModeError names the valid ones otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnknownModeError(f"actuation mode must be an integer, got {value!r}")
    try:
        return ActuationMode(value)
    except ValueError:
        valid = ", ".join(f"{m.value}={m.name}" for m in ActuationMode)
        raise UnknownModeError(f"unknown actuation mode {value}: expected one of {valid}") from None
