"""The joint-level actuation law of each mode, and the kinematic floating-base motion.

Joints are always physical: torques go through MuJoCo. Only a base velocity command (hw/cmd_vel) is
applied kinematically: the floating base is displaced by the commanded planar velocity each step, so a
standing robot slides/turns without a walking controller (there is none in this harness).
"""

from __future__ import annotations

import math

import numpy as np

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.hardware.joint_commands import BaseVelocity, JointGains


def joint_torques(
    mode: ActuationMode,
    position: np.ndarray,
    velocity: np.ndarray,
    target_position: np.ndarray,
    target_velocity: np.ndarray,
    feed_forward: np.ndarray,
    gains: JointGains,
    damping_kd: float,
    effort_limit: np.ndarray,
) -> np.ndarray:
    """Motor torques for the mode, clipped to each actuator's limit."""
    if mode in (ActuationMode.NORMAL, ActuationMode.HOLD):
        torque = gains.kp * (target_position - position) + gains.kd * (target_velocity - velocity) + feed_forward
    elif mode is ActuationMode.DAMPING:
        torque = -damping_kd * velocity
    else:  # ZERO_TORQUE, POWER_OFF
        return np.zeros_like(position)
    clipped: np.ndarray = np.clip(torque, -effort_limit, effort_limit)
    return clipped


def yaw_of(quaternion_wxyz: np.ndarray) -> float:
    w, x, y, z = (float(v) for v in quaternion_wxyz)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def base_velocity_world(quaternion_wxyz: np.ndarray, command: BaseVelocity) -> np.ndarray:
    """The commanded planar velocity (heading frame) in world coordinates: [vx, vy, 0]."""
    yaw = yaw_of(quaternion_wxyz)
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([c * command.vx - s * command.vy, s * command.vx + c * command.vy, 0.0])


def displace_base(free_qpos: np.ndarray, command: BaseVelocity, dt: float) -> None:
    """Move the floating base (qpos[0:7] of the free joint, in place) by the command over dt."""
    free_qpos[0:3] += base_velocity_world(free_qpos[3:7], command) * dt
    half = 0.5 * command.wz * dt
    turned = _quat_multiply(np.array([math.cos(half), 0.0, 0.0, math.sin(half)]), free_qpos[3:7])
    free_qpos[3:7] = turned / np.linalg.norm(turned)
