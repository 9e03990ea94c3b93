"""Robot models an operating envelope can be written for: their joints and the vendor facts not in the model.

An envelope names its robot model (``robot_model: unitree_g1_29dof``); the parser then requires exactly
that model's joints, so an envelope can never leave a joint unchecked. Joint position ranges and effort
limits come from the MuJoCo model (:mod:`ftrobot_guard.safety.g1_envelope` writes them into the envelope);
what the model does not hold is kept here: the rated joint velocities and the arm chains from the pelvis to
each hand (used to turn a hand-speed limit into joint-velocity limits).

Unitree G1 rated joint velocities (Unitree's G1 29-DoF joint specification; not in the MJCF):
37 rad/s shoulders, elbows, wrist roll, ankles, waist roll/pitch; 32 rad/s hip pitch/yaw, waist yaw;
20 rad/s hip roll, knees; 22 rad/s wrist pitch/yaw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class RobotModel:
    """What the envelope parser and generator know about one robot model (joint order = model order)."""

    name: str
    joint_names: tuple[str, ...]
    rated_velocity: Mapping[str, float]          # rad/s, vendor rating per joint
    hand_chains: Mapping[str, tuple[str, ...]]   # hand -> joints from the pelvis outwards that move it
    leg_joints: frozenset[str]                   # joints that carry the robot's balance


_G1_JOINTS = (
    "left_hip_pitch_joint", "left_hip_roll_joint", "left_hip_yaw_joint", "left_knee_joint",
    "left_ankle_pitch_joint", "left_ankle_roll_joint",
    "right_hip_pitch_joint", "right_hip_roll_joint", "right_hip_yaw_joint", "right_knee_joint",
    "right_ankle_pitch_joint", "right_ankle_roll_joint",
    "waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint",
    "left_shoulder_pitch_joint", "left_shoulder_roll_joint", "left_shoulder_yaw_joint", "left_elbow_joint",
    "left_wrist_roll_joint", "left_wrist_pitch_joint", "left_wrist_yaw_joint",
    "right_shoulder_pitch_joint", "right_shoulder_roll_joint", "right_shoulder_yaw_joint", "right_elbow_joint",
    "right_wrist_roll_joint", "right_wrist_pitch_joint", "right_wrist_yaw_joint",
)


def _g1_rated_velocity(joint: str) -> float:
    if "hip_roll" in joint or "knee" in joint:
        return 20.0
    if "hip_pitch" in joint or "hip_yaw" in joint or joint == "waist_yaw_joint":
        return 32.0
    if "wrist_pitch" in joint or "wrist_yaw" in joint:
        return 22.0
    return 37.0  # shoulders, elbows, wrist roll, ankles, waist roll/pitch


def _g1_arm(side: str) -> tuple[str, ...]:
    parts = ("shoulder_pitch", "shoulder_roll", "shoulder_yaw", "elbow", "wrist_roll", "wrist_pitch", "wrist_yaw")
    return ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint", *(f"{side}_{part}_joint" for part in parts))


UNITREE_G1_29DOF = RobotModel(
    name="unitree_g1_29dof",
    joint_names=_G1_JOINTS,
    rated_velocity=MappingProxyType({joint: _g1_rated_velocity(joint) for joint in _G1_JOINTS}),
    hand_chains=MappingProxyType({"left_hand": _g1_arm("left"), "right_hand": _g1_arm("right")}),
    leg_joints=frozenset(joint for joint in _G1_JOINTS if "hip" in joint or "knee" in joint or "ankle" in joint),
)

KNOWN_MODELS: Mapping[str, RobotModel] = MappingProxyType({UNITREE_G1_29DOF.name: UNITREE_G1_29DOF})
