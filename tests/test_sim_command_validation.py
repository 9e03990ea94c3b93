"""Bad commands and gains are refused as a whole with a clear reason; a valid command is applied exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.hardware.actuation_modes import ActuationMode as Mode
from ftrobot_guard.hardware.joint_commands import (
    CommandRefused,
    JointLimits,
    validate_base_velocity,
    validate_gains,
    validate_joint_command,
)
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

NAMES = ("hip_joint", "knee_joint", "ankle_joint")
LIMITS = JointLimits(NAMES, np.array([-1.0, 0.0, -0.5]), np.array([1.0, 2.5, 0.5]), np.array([88.0, 139.0, 50.0]), 30.0)


@pytest.mark.parametrize(
    ("names", "positions", "velocities", "efforts", "reason"),
    [
        ([], [], [], [], "no joint names"),
        (["tail_joint"], [0.0], [], [], "unknown joint names: 'tail_joint'"),
        (["knee_joint", "knee_joint"], [0.1, 0.2], [], [], "duplicate joint names: knee_joint"),
        (["knee_joint"], [0.1, 0.2], [], [], "2 positions for 1 joint names"),
        (["knee_joint"], [0.1], [0.0, 0.0], [], "2 velocities"),
        (["knee_joint"], [0.1], [], [1.0, 2.0], "2 effort"),
        (["knee_joint"], [math.nan], [], [], "NaN or Inf for knee_joint"),
        (["knee_joint"], [0.1], [math.inf], [], "velocities: NaN or Inf"),
        (["hip_joint", "knee_joint"], [0.0, 0.1], [], [0.0, -math.inf], "effort: NaN or Inf for knee_joint"),
        (["knee_joint"], [3.0], [], [], "outside its range"),
        (["knee_joint"], [1.0], [31.0], [], "exceeds 30.0 rad/s"),
        (["ankle_joint"], [0.0], [], [51.0], "exceeds its limit 50.0"),
    ],
)
@pytest.mark.clause("5.2c")
def test_bad_joint_commands_are_refused_with_the_reason(names, positions, velocities, efforts, reason) -> None:
    with pytest.raises(CommandRefused, match=reason.replace("(", r"\(")):
        validate_joint_command(LIMITS, names, positions, velocities, efforts)


@pytest.mark.parametrize(
    ("kp", "kd", "reason"),
    [
        ([300.0], [math.nan], "kd: NaN or Inf"),
        ([math.inf], [8.0], "kp: NaN or Inf"),
        ([-1.0], [8.0], r"kp: values must be within \[0, 2000.0\]"),
        ([300.0], [500.0], r"kd: values must be within \[0, 200.0\]"),
        ([300.0, 300.0], [8.0], "kp: 2 values, expected 1"),
        ([], [8.0], "kp: 0 values"),
    ],
)
def test_bad_gains_are_refused(kp, kd, reason) -> None:
    with pytest.raises(CommandRefused, match=reason):
        validate_gains(kp, kd, 3)


def test_one_gain_applies_to_every_joint() -> None:
    gains = validate_gains([300.0], [8.0], 3)
    assert gains.kp.tolist() == [300.0] * 3 and gains.kd.tolist() == [8.0] * 3


def test_sim_config_with_bad_gains_does_not_start() -> None:
    with pytest.raises(ValueError, match="kp"):
        HumanoidSim(SimConfig(kp=(math.nan,)))


@pytest.mark.clause("5.2c")
def test_base_velocity_checks() -> None:
    assert validate_base_velocity((0.2, -0.1, 0.0), (0.0, 0.0, 0.3), 1.0, 1.5).wz == 0.3
    for linear, angular, reason in [
        ((math.nan, 0, 0), (0, 0, 0), "NaN"),
        ((0, 0, 0.1), (0, 0, 0), "only linear.x"),
        ((0.9, 0.9, 0), (0, 0, 0), "planar speed"),
        ((0, 0, 0), (0, 0, 2.0), "yaw rate"),
    ]:
        with pytest.raises(CommandRefused, match=reason):
            validate_base_velocity(linear, angular, 1.0, 1.5)


floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(
    names=st.lists(st.sampled_from((*NAMES, "tail_joint", "")), max_size=5),
    positions=st.lists(floats, max_size=5),
    velocities=st.lists(floats, max_size=5),
    efforts=st.lists(floats, max_size=5),
)
@pytest.mark.clause("5.2c")
def test_validated_commands_are_always_complete_finite_and_within_limits(names, positions, velocities, efforts) -> None:
    try:
        command = validate_joint_command(LIMITS, names, positions, velocities, efforts)
    except CommandRefused as exc:
        assert str(exc)
        return
    assert len(command.indices) == len(names) == len(command.positions)
    assert len(command.positions) == len(command.velocities) == len(command.efforts)
    assert len(set(command.indices.tolist())) == len(names)
    assert np.isfinite(command.positions).all() and np.isfinite(command.velocities).all()
    assert np.isfinite(command.efforts).all()
    assert np.all(command.positions >= LIMITS.position_lower[command.indices] - 1e-6)
    assert np.all(command.positions <= LIMITS.position_upper[command.indices] + 1e-6)
    assert np.all(np.abs(command.efforts) <= LIMITS.effort_limit[command.indices])


@pytest.fixture(scope="module")
def normal_sim() -> HumanoidSim:
    sim = HumanoidSim(SimConfig(require_guard_alive=False))
    sim.set_actuation_mode(Mode.NORMAL)
    return sim


@settings(max_examples=60, deadline=None)
@given(bad=st.sampled_from(["nan", "inf", "range", "unknown", "length"]), where=st.integers(0, 28))
@pytest.mark.clause("5.2c")
def test_a_command_with_one_bad_joint_changes_no_target(normal_sim: HumanoidSim, bad: str, where: int) -> None:
    sim = normal_sim
    names = list(sim.joint_names)
    positions = list(np.clip(sim.g1.stand_qpos[7:] + 0.05, sim.g1.position_lower, sim.g1.position_upper))
    if bad == "nan":
        positions[where] = math.nan
    elif bad == "inf":
        positions[where] = -math.inf
    elif bad == "range":
        positions[where] = float(sim.g1.position_upper[where]) + 0.1
    elif bad == "unknown":
        names[where] = "tail_joint"
    else:
        positions = positions[:where]
    before = sim._command.target_position.copy()
    outcome = sim.apply_joint_command(names, positions)
    assert not outcome.success and "refused" in outcome.message
    assert np.array_equal(sim._command.target_position, before)
