"""Write the Unitree G1's operating envelope from its MuJoCo model, and check an envelope against the model.

``config/envelope/g1.yaml`` is the output of :func:`g1_envelope_yaml`, committed (unsigned: the
department signs the copy it deploys, ``ftrobot envelope sign``). Regenerate it with::

    python -m ftrobot_guard.safety.g1_envelope config/envelope/g1.yaml

What comes from the model: each joint's hard position range (``jnt_range``) and hard effort limit
(``actuatorfrcrange``), and the lever arms that turn the REDUCED hand speed into joint-velocity limits.
What comes from the vendor: the rated joint velocities (:mod:`.robot_models`). Everything else is a
protective choice of this project, stated with its reason in the generated file's comments and in
:mod:`.envelope`.

REDUCED hand speed. For a chain of revolute joints from the pelvis to a hand, the hand's speed relative
to the pelvis is at most ``Σ |q̇_i| r_i``, with ``r_i`` an upper bound on the distance from joint i's axis
to any point of the hand. ``r_i`` is bounded posture-independently: the distance between consecutive
joint anchors is fixed (each anchor is fixed in its parent's body), so ``r_i = Σ_{k≥i} |a_{k+1} − a_k| +
r_hand``, where ``r_hand`` bounds the hand's geoms (bounding spheres) around the last anchor. Capping
The envelope stores the ``r_i`` (rounded up); the command gate scales an arm's motion in REDUCED so that
``Σ |q̇_i| r_i ≤ v_hand`` (:mod:`.envelope_checks`), which keeps the hand at or below ``v_hand`` in every
posture while letting a single joint move as fast as its lever arm allows.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ftrobot_guard.safety.envelope import FORMAT, Envelope
from ftrobot_guard.safety.robot_models import UNITREE_G1_29DOF, RobotModel
from ftrobot_guard.sim.g1_model import G1Model, load_g1

SOFT_POSITION_MARGIN = 0.05        # rad inside each hard joint limit
COMMAND_SPEED_CAP = 6.0            # rad/s, largest commanded joint velocity in NORMAL
LEG_ACCELERATION = 200.0           # rad/s², legs take ground impacts
UPPER_BODY_ACCELERATION = 100.0    # rad/s², waist and arms
LEG_WAIST_EFFORT_SHARE = 0.9       # of the hard effort limit, feed-forward in NORMAL
ARM_EFFORT_SHARE = 0.6
REDUCED_EFFORT_SHARE = 0.5         # of the NORMAL (soft) effort for waist and arms in REDUCED
REDUCED_SPEED_SCALE = 0.3
REDUCED_HAND_SPEED = 0.25          # m/s, ISO 10218-1 reduced speed


def _mujoco() -> Any:
    import mujoco  # the sim package already depends on it; imported here so that envelope.py does not

    return mujoco


def hand_lever_arms(g1: G1Model, model: RobotModel = UNITREE_G1_29DOF) -> dict[str, dict[str, float]]:
    """Per hand chain, an upper bound (m) on the distance from each joint's axis to any point of the hand."""
    mujoco = _mujoco()
    m = g1.model
    data = mujoco.MjData(m)
    data.qpos[:] = g1.stand_qpos
    mujoco.mj_forward(m, data)
    result: dict[str, dict[str, float]] = {}
    for hand, chain in model.hand_chains.items():
        joint_ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name) for name in chain]
        anchors = np.array([data.xanchor[j] for j in joint_ids])
        last_body = int(m.jnt_bodyid[joint_ids[-1]])
        hand_bodies = {b for b in range(m.nbody) if _in_subtree(m, b, last_body)}
        geoms = [g for g in range(m.ngeom) if int(m.geom_bodyid[g]) in hand_bodies]
        r_hand = max(float(np.linalg.norm(data.geom_xpos[g] - anchors[-1]) + m.geom_rbound[g]) for g in geoms)
        segments = np.linalg.norm(np.diff(anchors, axis=0), axis=1)
        tail = np.concatenate([np.cumsum(segments[::-1])[::-1], [0.0]])
        result[hand] = {name: float(tail[i] + r_hand) for i, name in enumerate(chain)}
    return result


def _in_subtree(m: object, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = int(m.body_parentid[body])  # type: ignore[attr-defined]
    return root == 0


def _f(value: float) -> str:
    return repr(round(float(value), 6))


def _joint_rows(g1: G1Model, model: RobotModel) -> list[str]:
    rows = []
    for i, name in enumerate(g1.joint_names):
        lower, upper = float(g1.position_lower[i]), float(g1.position_upper[i])
        hard_v = model.rated_velocity[name]
        leg = name in model.leg_joints
        share = LEG_WAIST_EFFORT_SHARE if leg or name.startswith("waist") else ARM_EFFORT_SHARE
        effort = float(g1.effort_limit[i])
        rows.append(
            f"  {name}:\n"
            f"    position: {{hard: [{_f(lower)}, {_f(upper)}], "
            f"soft: [{_f(lower + SOFT_POSITION_MARGIN)}, {_f(upper - SOFT_POSITION_MARGIN)}]}}\n"
            f"    velocity: {{hard: {_f(hard_v)}, soft: {_f(min(hard_v, COMMAND_SPEED_CAP))}}}\n"
            f"    acceleration: {_f(LEG_ACCELERATION if leg else UPPER_BODY_ACCELERATION)}\n"
            f"    effort: {{hard: {_f(effort)}, soft: {_f(effort * share)}}}"
        )
    return rows


def _reduced_rows(g1: G1Model, model: RobotModel) -> list[str]:
    rows = []
    for i, name in enumerate(g1.joint_names):
        leg = name in model.leg_joints
        share = LEG_WAIST_EFFORT_SHARE if leg or name.startswith("waist") else ARM_EFFORT_SHARE
        soft_v = min(model.rated_velocity[name], COMMAND_SPEED_CAP)
        soft_e = round(float(g1.effort_limit[i]) * share, 6)
        velocity = soft_v if leg else soft_v * REDUCED_SPEED_SCALE
        effort = soft_e if leg else soft_e * REDUCED_EFFORT_SHARE
        rows.append(f"    {name}: {{velocity: {_f(velocity)}, effort: {_f(effort)}}}")
    return rows


def _lever_rows(g1: G1Model, model: RobotModel) -> list[str]:
    rows = []
    for hand, arms in hand_lever_arms(g1, model).items():
        rows.append(f"    {hand}:")
        # rounded up to the millimetre: a longer lever arm only makes the bound safer
        rows.extend(f"      {joint}: {_f(math.ceil(r * 1000.0) / 1000.0)}" for joint, r in arms.items())
    return rows


_HEADER = """\
# Operating envelope of a Unitree G1 (29 DoF) robot employee -- GENERATED, do not edit by hand:
#   python -m ftrobot_guard.safety.g1_envelope config/envelope/g1.yaml
# (ftrobot_guard/safety/g1_envelope.py; a test checks this file against the MuJoCo model).
# This committed copy is UNSIGNED. The department adapts it to the site (geofence, service hours, tasks),
# then signs it: `ftrobot envelope sign g1.yaml --key ca.key --valid-days 90` writes g1.yaml.sig; a robot
# refuses to leave BOOT with an unsigned, altered, expired or not-yet-valid envelope.
#
# Units: SI and radians; frames per REP-103/REP-105 (x forward, y left, z up; odom is world-fixed);
# temperatures in degC (sensor_msgs/Temperature); battery as a fraction 0..1 (BatteryState.percentage).
# Hard limits are the machine's: a command beyond them is refused. Soft limits lie inside: a command
# between soft and hard is clamped to soft, and the clamp is reported.
"""


def g1_envelope_yaml(g1: G1Model | None = None, model: RobotModel = UNITREE_G1_29DOF) -> str:
    """The text of ``config/envelope/g1.yaml`` for this G1 model."""
    g1 = g1 or load_g1()
    if tuple(g1.joint_names) != model.joint_names:
        raise ValueError(f"the MuJoCo model's joints differ from {model.name}'s")
    parts = [
        _HEADER,
        f"format: {FORMAT}",
        f"robot_model: {model.name}",
        "",
        "# Per joint, in model order. position.hard: the model's jnt_range; soft: 0.05 rad inside (commands",
        "# are clamped there, so a tracking overshoot does not reach the mechanical stop).",
        "# velocity.hard: Unitree's rated speed (37/32/20/22 rad/s); soft: 6 rad/s, the commanded cap, below",
        "# the measured-speed warning (7 rad/s) so that legitimate commands never trip the detector.",
        "# acceleration: commanded cap; legs 200 rad/s^2 (ground impacts), waist and arms 100 rad/s^2.",
        "# effort.hard: the model's actuatorfrcrange; soft (feed-forward cap): legs and waist 0.9 x hard",
        "# (balance needs the torque), arms 0.6 x hard (15 N·m at a shoulder, ~30 N at the hand).",
        "joints:",
        *_joint_rows(g1, model),
        "",
        "# Base velocity command (hw/cmd_vel): planar speed and yaw rate. hard: the G1's top walking speed",
        "# (2 m/s); soft 0.6 m/s: below a slow pedestrian's pace in a public hall.",
        "base:",
        "  linear_speed: {hard: 2.0, soft: 0.6}",
        "  angular_speed: {hard: 3.0, soft: 1.0}",
        "",
        "# Where the robot may be, in odom (metres). It must stay inside a keep_in polygon and outside every",
        "# keep_out polygon by `margin` (0.35 m: the G1's half width, 0.23 m, plus the odometry drift",
        "# tolerated between relocalisations). The department sets these for the site.",
        "geofence:",
        "  frame: odom",
        "  margin: 0.35",
        "  keep_in:",
        "    - name: service_hall",
        "      polygon: [[-10.0, -10.0], [10.0, -10.0], [10.0, 10.0], [-10.0, 10.0]]",
        "  keep_out:",
        "    - name: stairwell",
        "      polygon: [[6.0, 6.0], [9.0, 6.0], [9.0, 9.0], [6.0, 9.0]]",
        "",
        "# Limits of the measured state, for the anomaly detectors. Unitree's own protective checks act as a",
        "# last line and end in damping or power loss (a fall); ours act first and end in a controlled stop:",
        "# tilt 0.5 rad (Unitree 1.0): past 0.5 rad a G1 cannot recover by posture, and the fall response must",
        "#   start while there is height left to manage; standing and arm work stay below 0.1 rad.",
        "# angular_rate 3 rad/s (Unitree gyro 6): walking stays below ~1.5 rad/s; a trip passes 3 rad/s about",
        "#   0.3 s after onset, half a fall before 6 rad/s would.",
        "# joint_speed 8 rad/s (Unitree |dq| 10): commands are capped at 6 rad/s, so 8 is only reached by",
        "#   overshoot, a collision or a runaway joint.",
        "posture:",
        "  tilt: {warn: 0.3, limit: 0.5}",
        "  angular_rate: {warn: 2.0, limit: 3.0}",
        "  joint_speed: {warn: 7.0, limit: 8.0}",
        "",
        "# Motor winding temperature, degC (Unitree: 120 winding, 85 casing). 20 degC below the driver's",
        "# cut-off leaves > 30 s at the worst natural heating rate (continuous peak torque) for the ~25 s lowering.",
        "actuator_temperature: {warn: 85.0, limit: 100.0}",
        "",
        "# State of charge, fraction (Unitree 20 %). Lowering to rest must run on a battery that can still",
        "# power it, with margin for the 3-5 % error of a voltage-based charge estimate.",
        "battery: {warn: 0.35, minimum: 0.25}",
        "",
        "# Largest age (s) of each input before it counts as lost (Unitree: 1 s link loss). A balance",
        "# controller blind for 1 s is already falling. joint_states and imu: 0.1 s, the hardware's own guard",
        "# watchdog (measured: a 500 Hz stream through a loaded 2-core computer has 50-70 ms gaps, and 0.05 s",
        "# stopped a healthy robot); odom 0.2 s (100 Hz).",
        "inputs:",
        "  joint_states: 0.1",
        "  imu: 0.1",
        "  odom: 0.2",
        "  actuator_temperatures: 0.5",
        "  battery: 3.0",
        "",
        "# Service hours, local time (example hours: the department sets the hall's own). Outside them no",
        "# motion and no task is forwarded. closed_dates: public holidays, YYYY-MM-DD.",
        "service_hours:",
        "  time_zone: Asia/Shanghai",
        "  weekly:",
        '    - {days: [mon, tue, wed, thu, fri], open: "09:00", close: "18:00"}',
        '    - {days: [sat], open: "09:00", close: "12:00"}',
        "  closed_dates: []",
        "",
        "# Task kinds (ftrobot_msgs/TaskRequest.task_kind). Only `allowed` kinds are forwarded; `prohibited`",
        "# kinds are refused and recorded. A robot employee may not direct or design other robot employees:",
        "# direct_robot_employee and design_robot_employee must always be prohibited, and no allowed kind may",
        "# name robots.",
        "tasks:",
        "  allowed: [guide_visitor, answer_question, issue_queue_ticket, fetch_form, deliver_document, return_to_dock]",
        "  prohibited: [direct_robot_employee, design_robot_employee, program_robot_employee,",
        "               supervise_robot_employee, assign_robot_employee_task, modify_robot_employee]",
        "",
        "# REDUCED (near people, minor anomaly, guardian request). speed_scale scales the base speeds, and",
        "# the waist and arm joints' velocities (joints: speed_scale x NORMAL; feed-forward effort halved).",
        f"# Each hand moves at most hand_speed ({REDUCED_HAND_SPEED} m/s, ISO 10218-1 reduced speed) relative to the",
        "# pelvis: the gate scales the arm's motion so that sum(|dq_i| * r_i) <= hand_speed, with r_i the",
        "# hand_lever_arms below, upper bounds (m) from the model on the distance from joint i's axis to any",
        "# point of the hand, valid in every posture. Leg joints keep their NORMAL limits: they carry the",
        "# balance, and slowing them risks the fall that REDUCED is meant to avoid.",
        "reduced:",
        f"  speed_scale: {_f(REDUCED_SPEED_SCALE)}",
        f"  hand_speed: {_f(REDUCED_HAND_SPEED)}",
        "  joints:",
        *_reduced_rows(g1, model),
        "  hand_lever_arms:",
        *_lever_rows(g1, model),
        "",
        "# Supervisor (ftrobot_msgs/Anomaly severities -> responses: record, reduce, safe_stop, power_down,",
        "# tuck, damp). A kind's own response may only be stricter than its severity's. A SAFE_STOP (or an ESTOP of",
        "# category 2) not RESET within safe_stop_escalation seconds is lowered (POWER_DOWN). A RESET is",
        "# accepted only if authenticated less than reset_max_age seconds before.",
        "# fall_under_way: tuck -- once a fall is under way there is no height left to lower from: falling",
        "# forwards or backwards, a protective tuck for 1.5 s, then DAMPING; sideways DAMPING at once. Of the",
        "# responses bench/power_down_trials.py --falls compares in the same trips (a power cut, DAMPING, holding",
        "# stiff, the tuck) it hurts least.",
        "supervisor:",
        "  safe_stop_escalation: 30.0",
        "  estop_category: 1",
        "  reset_max_age: 2.0",
        "  severity_responses: {info: record, warning: reduce, error: safe_stop, critical: power_down}",
        "  kind_responses: {fall_under_way: tuck}",
        "",
    ]
    return "\n".join(parts)


def model_mismatches(envelope: Envelope, g1: G1Model, model: RobotModel = UNITREE_G1_29DOF,
                     tolerance: float = 1e-6) -> list[str]:
    """Where an envelope disagrees with the model (one line each; empty when it agrees).

    Hard limits must equal the model's (within ``tolerance``), rated velocities the vendor's, and the
    REDUCED hand lever arms must be at least the model's bounds (so the hand-speed bound holds).
    """
    problems: list[str] = []
    if envelope.robot_model != model.name:
        return [f"robot_model {envelope.robot_model!r} is not {model.name!r}"]
    table = envelope.joints
    checks: Sequence[tuple[str, np.ndarray, np.ndarray]] = (
        ("position.hard lower", table.hard_lower, g1.position_lower),
        ("position.hard upper", table.hard_upper, g1.position_upper),
        ("effort.hard", table.hard_effort, g1.effort_limit),
        ("velocity.hard", table.hard_velocity, np.array([model.rated_velocity[n] for n in table.names])),
    )
    for what, ours, theirs in checks:
        for i in np.flatnonzero(np.abs(ours - theirs) > tolerance):
            problems.append(f"joints.{table.names[i]}.{what}: {ours[i]:g}, the model says {theirs[i]:g}")
    chains = {chain.name: chain for chain in envelope.reduced.hand_chains}
    for hand, arms in hand_lever_arms(g1, model).items():
        chain = chains.get(hand)
        if chain is None:
            problems.append(f"reduced.hand_lever_arms: {hand} is missing")
            continue
        for joint, r in arms.items():
            lever = float(chain.lever_arms[[table.names[i] for i in chain.indices].index(joint)])
            if lever < r - tolerance:
                problems.append(f"reduced.hand_lever_arms.{hand}.{joint}: {lever:g} m is shorter than the "
                                f"model's bound {r:.4f} m (the hand could exceed hand_speed)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated envelope to the given path (or stdout)."""
    args = list(sys.argv[1:] if argv is None else argv)
    text = g1_envelope_yaml()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
