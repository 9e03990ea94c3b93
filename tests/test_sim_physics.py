"""Physics of the simulated G1 through the pure HumanoidSim API (no ROS): modes, commands, watchdog."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftrobot_guard.hardware.actuation_modes import ActuationMode as Mode
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

UNGUARDED = SimConfig(require_guard_alive=False)


def first_time_below(sim: HumanoidSim, height: float) -> float | None:
    r = sim.recorder
    return next((t for t, h in zip(r.times, r.pelvis_height, strict=True) if h < height), None)


def test_stand_holds_30_s_in_normal_with_configured_gains() -> None:
    sim = HumanoidSim(UNGUARDED)
    assert sim.set_actuation_mode(Mode.NORMAL).success
    sim.run_for(30.0)
    assert sim.time == pytest.approx(30.0)
    assert min(sim.recorder.pelvis_height) > 0.75
    assert max(sim.recorder.tilt) < 0.1
    assert sim.recorder.first_fall_time is None
    assert not sim.ground_truth().fallen


@pytest.mark.clause("6.4c")
def test_power_off_drops_pelvis_below_0_4_m_within_2_s() -> None:
    sim = HumanoidSim(UNGUARDED)
    assert sim.set_actuation_mode(Mode.POWER_OFF).success
    sim.run_for(2.0)
    t = first_time_below(sim, 0.4)
    assert t is not None and t <= 2.0
    assert np.all(sim.joint_state().effort == 0.0)


@pytest.mark.clause("6.7c")
def test_damping_falls_measurably_slower_and_softer_than_power_off() -> None:
    results = {}
    for mode in (Mode.POWER_OFF, Mode.DAMPING):
        sim = HumanoidSim(UNGUARDED)
        sim.set_actuation_mode(mode)
        sim.run_for(4.0)
        results[mode] = (first_time_below(sim, 0.4), sim.recorder.peak_impact_speed)
    (t_off, impact_off), (t_damp, impact_damp) = results[Mode.POWER_OFF], results[Mode.DAMPING]
    print(f"time to 0.4 m: POWER_OFF {t_off:.2f} s, DAMPING {t_damp:.2f} s; "
          f"peak impact {impact_off:.2f} vs {impact_damp:.2f} m/s")
    assert t_off is not None and t_damp is not None
    assert t_damp > 1.5 * t_off
    assert impact_damp < impact_off


def test_sliding_along_the_floor_is_not_an_impact() -> None:
    """The peak impact speed counts strikes (approach speed at contact onset), not a body dragged along."""
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.DAMPING)
    sim.run_for(5.0)   # collapsed, lying still
    struck = sim.ground_truth().peak_impact_speed
    assert 0.3 < struck < 2.0 and sim.peak_impact is not None and sim.peak_impact.time < 5.0
    sim.inject_fault("push", 0.0, 1.5, {"force": [400, 0, 0], "body": "pelvis"})
    speeds: list[float] = []
    sim.run_for(2.0, lambda s: speeds.append(float(np.linalg.norm(s.data.qvel[0:3]))))
    assert max(speeds) > 2.0   # dragged along the floor faster than it struck it
    assert sim.ground_truth().peak_impact_speed == pytest.approx(struck, abs=0.1)


def test_damping_torque_opposes_joint_velocity() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.DAMPING)
    sim.run_for(1.0)
    state = sim.joint_state()
    moving = np.abs(state.velocity) > 0.05
    assert moving.any()
    expected = np.clip(-sim.config.damping_kd * state.velocity, -sim.g1.effort_limit, sim.g1.effort_limit)
    # effort is the torque applied in the last step (velocity read after it): same sign where moving
    assert np.all(np.sign(state.effort[moving]) == np.sign(expected[moving]))


def test_zero_torque_applies_no_torque_and_the_robot_falls() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.ZERO_TORQUE)
    sim.run_for(2.0)
    assert np.all(sim.joint_state().effort == 0.0)
    assert sim.ground_truth().fallen


def test_normal_tracks_a_joint_command_and_hold_keeps_the_posture_at_entry() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.NORMAL)
    assert sim.apply_joint_command(["left_elbow_joint"], [1.2]).success
    sim.run_for(1.0)
    i = sim.joint_names.index("left_elbow_joint")
    assert sim.joint_state().position[i] == pytest.approx(1.2, abs=0.05)
    assert sim.set_actuation_mode(Mode.HOLD).success
    refused = sim.apply_joint_command(["left_elbow_joint"], [0.0])
    assert not refused.success and "HOLD" in refused.message
    sim.run_for(1.0)
    assert sim.joint_state().position[i] == pytest.approx(1.2, abs=0.05)


def test_entering_normal_reanchors_targets_to_the_measured_posture() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.NORMAL)
    sim.apply_joint_command(["left_elbow_joint"], [1.2])
    sim.run_for(1.0)
    sim.set_actuation_mode(Mode.HOLD)
    sim.set_actuation_mode(Mode.NORMAL)
    sim.apply_joint_command(["right_elbow_joint"], [1.0])  # the old left-elbow target must not come back
    sim.run_for(0.5)
    i = sim.joint_names.index("left_elbow_joint")
    assert sim.joint_state().position[i] == pytest.approx(1.2, abs=0.05)


@pytest.mark.clause("5.2c")
def test_efforts_are_clipped_to_the_model_limits() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.NORMAL)
    i = sim.joint_names.index("left_wrist_pitch_joint")
    assert sim.apply_joint_command(["left_wrist_pitch_joint"], [1.5], efforts=[4.9]).success
    sim.step()
    effort = sim.joint_state().effort
    assert abs(effort[i]) == pytest.approx(sim.g1.effort_limit[i])  # 5 N·m limit, demand far above
    assert np.all(np.abs(effort) <= sim.g1.effort_limit + 1e-9)


@pytest.mark.clause("5.2c", "6.4c", "6.7c")
def test_without_a_guard_normal_is_refused_and_stop_modes_accepted() -> None:
    sim = HumanoidSim(SimConfig())  # require_guard_alive=True by default
    assert sim.mode is Mode.HOLD
    outcome = sim.set_actuation_mode(Mode.NORMAL)
    assert not outcome.success and "guard/alive" in outcome.message
    for mode in (Mode.DAMPING, Mode.ZERO_TORQUE, Mode.POWER_OFF, Mode.HOLD):
        assert sim.set_actuation_mode(mode).success


@pytest.mark.clause("6.7c")
def test_guard_alive_timeout_triggers_damping_within_the_timeout() -> None:
    sim = HumanoidSim(SimConfig(guard_alive_timeout=0.1))
    sim.guard_alive()
    assert sim.set_actuation_mode(Mode.NORMAL).success
    sim.run_for(1.0, on_step=lambda s: s.guard_alive())
    assert sim.mode is Mode.NORMAL
    last_alive = sim.last_guard_alive_time
    sim.run_for(0.5)
    assert sim.mode is Mode.DAMPING
    change = sim.recorder.mode_changes[-1]
    assert change.source == "guard_alive_timeout"
    assert 0.1 < change.time - last_alive <= 0.1 + 2 * sim.timestep
    refused = sim.set_actuation_mode(Mode.NORMAL)
    assert not refused.success  # no driving until the guard is back
    sim.guard_alive()
    assert sim.mode is Mode.DAMPING  # latched: the guard must ask
    assert sim.set_actuation_mode(Mode.NORMAL).success


@pytest.mark.clause("6.7c")
def test_watchdog_leaves_power_off_and_zero_torque_alone() -> None:
    for mode in (Mode.POWER_OFF, Mode.ZERO_TORQUE):
        sim = HumanoidSim(SimConfig())
        sim.guard_alive()
        sim.set_actuation_mode(mode)
        sim.run_for(0.3)
        assert sim.mode is mode


def test_unknown_mode_is_refused_with_the_valid_ones_named() -> None:
    sim = HumanoidSim(UNGUARDED)
    for bad in (5, -1, 255, "NORMAL", 1.0, None, True):
        outcome = sim.set_actuation_mode(bad)
        assert not outcome.success
        assert sim.mode is Mode.HOLD
    assert "0=NORMAL" in sim.set_actuation_mode(7).message


def test_base_velocity_moves_the_floating_base_kinematically_and_times_out() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.NORMAL)
    assert sim.set_base_velocity((0.3, 0.0, 0.0), (0.0, 0.0, 0.0)).success
    sim.run_for(0.3)
    assert sim.odom().linear_velocity[0] == pytest.approx(0.3, abs=0.05)
    sim.run_for(0.6)  # cmd_vel_timeout 0.5 s: stops after 0.5 s of sim time
    x = sim.odom().position[0]
    assert x == pytest.approx(0.3 * 0.5, abs=0.03)
    assert not sim.ground_truth().fallen
    assert not sim.set_base_velocity((2.0, 0.0, 0.0), (0.0, 0.0, 0.0)).success
    assert not sim.set_base_velocity((0.1, 0.0, 0.1), (0.0, 0.0, 0.0)).success
    assert not sim.set_base_velocity((math.nan, 0.0, 0.0), (0.0, 0.0, 0.0)).success


def test_yaw_command_turns_the_robot() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.set_actuation_mode(Mode.NORMAL)
    sim.set_base_velocity((0.0, 0.0, 0.0), (0.0, 0.0, 0.5))
    sim.run_for(0.4)
    w, _x, _y, z = sim.odom().orientation_wxyz
    assert 2.0 * math.atan2(z, w) == pytest.approx(0.2, abs=0.02)
    assert sim.imu().angular_velocity[2] == pytest.approx(0.5, abs=0.05)


def test_imu_reports_gravity_and_odom_the_standing_pose() -> None:
    sim = HumanoidSim(UNGUARDED)
    sim.run_for(0.2)
    imu = sim.imu()
    assert np.linalg.norm(imu.linear_acceleration) == pytest.approx(9.81, abs=0.3)
    assert np.linalg.norm(imu.orientation_wxyz) == pytest.approx(1.0)
    assert sim.odom().position[2] == pytest.approx(0.79, abs=0.02)


def test_lock_step_runs_are_reproducible() -> None:
    def scenario() -> tuple[np.ndarray, np.ndarray]:
        sim = HumanoidSim(SimConfig(require_guard_alive=False, seed=7))
        sim.set_actuation_mode(Mode.NORMAL)
        sim.inject_fault("push", 0.2, 0.1, {"force": [60, 30, 0]})
        sim.inject_fault("encoder_noise", 0.0, 0.0, {"stddev": 0.01})
        positions, readings = [], []
        for k in range(600):
            if k % 50 == 0:
                sim.apply_joint_command(["left_elbow_joint"], [0.3 + 0.001 * k])
            sim.step()
            positions.append(sim.data.qpos.copy())
            readings.append(sim.joint_state().position)
        return np.array(positions), np.array(readings)

    a, b = scenario(), scenario()
    assert np.array_equal(a[0], b[0])
    assert np.array_equal(a[1], b[1])
