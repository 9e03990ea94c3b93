"""Each fault injector produces its effect (pure HumanoidSim API), and fault requests are parsed strictly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.hardware.actuation_modes import ActuationMode as Mode
from ftrobot_guard.sim.faults import FaultKind, FaultRequestError, FaultTargets, parse_parameters, parse_timing
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

UNGUARDED = SimConfig(require_guard_alive=False)
KNEE = "left_knee_joint"


def normal_sim(**config: object) -> HumanoidSim:
    sim = HumanoidSim(SimConfig(**{"require_guard_alive": False, **config}))  # type: ignore[arg-type]
    assert sim.set_actuation_mode(Mode.NORMAL).success
    return sim


def index(sim: HumanoidSim, joint: str) -> int:
    return sim.joint_names.index(joint)


def test_push_on_the_torso_tilts_the_robot_only_while_active() -> None:
    sim = normal_sim()
    outcome = sim.inject_fault("push", 0.5, 0.2, '{"force": [150, 0, 0]}')
    assert outcome.success and outcome.fault_id == "f1"
    sim.run_for(0.5)
    assert sim.recorder.tilt[-1] < 0.02
    sim.run_for(0.1)
    assert "f1:push" in sim.ground_truth().active_faults
    sim.run_for(0.3)
    assert sim.ground_truth().active_faults == ()
    assert max(sim.recorder.tilt) > 0.1


def test_trip_makes_the_robot_fall_and_is_recorded() -> None:
    sim = normal_sim()
    sim.inject_fault("trip", 0.2, 0.2, {"direction": "forward"})
    sim.run_for(2.0)
    assert sim.recorder.first_fall_time is not None and sim.recorder.first_fall_time > 0.2
    assert sim.recorder.peak_impact_speed > 1.0
    assert sim.summary()["faults"][0]["kind"] == "trip"


def test_stuck_joint_does_not_follow_commands_until_cleared() -> None:
    sim = normal_sim()
    elbow = index(sim, "left_elbow_joint")
    start = float(sim.joint_state().position[elbow])
    sim.inject_fault("stuck_joint", 0.0, 0.0, {"joint": "left_elbow_joint"})
    sim.apply_joint_command(["left_elbow_joint"], [1.5])
    sim.run_for(0.5)
    assert sim.joint_state().position[elbow] == pytest.approx(start, abs=0.01)
    assert abs(sim.joint_state().effort[elbow]) == pytest.approx(sim.g1.effort_limit[elbow])  # motor strains
    assert sim.inject_fault("clear", parameters={"fault_id": "f1"}).success
    sim.run_for(0.5)
    assert sim.joint_state().position[elbow] == pytest.approx(1.5, abs=0.05)


def test_encoder_spike_offsets_the_reading_not_the_joint() -> None:
    sim = normal_sim()
    knee = index(sim, KNEE)
    sim.inject_fault("encoder_spike", 0.0, 0.01, {"joint": KNEE, "offset": 0.7})
    sim.step()
    true_position = float(sim.data.qpos[sim.g1.qpos_index[knee]])
    reading = sim.joint_state().position
    assert reading[knee] == pytest.approx(true_position + 0.7)
    others = np.delete(np.arange(len(reading)), knee)
    assert np.array_equal(reading[others], sim.data.qpos[sim.g1.qpos_index][others])
    sim.run_for(0.02)
    assert sim.joint_state().position[knee] == pytest.approx(float(sim.data.qpos[sim.g1.qpos_index[knee]]))


def test_encoder_noise_has_the_requested_spread() -> None:
    sim = normal_sim(seed=3)
    sim.inject_fault("encoder_noise", 0.0, 0.0, {"stddev": 0.05})
    sim.step()
    true = sim.data.qpos[sim.g1.qpos_index]
    errors = np.array([sim.joint_state().position - true for _ in range(200)])
    assert errors.std() == pytest.approx(0.05, rel=0.1)


def test_encoder_nan_reports_nan_for_that_joint_only() -> None:
    sim = normal_sim()
    sim.inject_fault("encoder_nan", 0.0, 0.0, {"joint": KNEE})
    sim.step()
    state = sim.joint_state()
    assert math.isnan(state.position[index(sim, KNEE)]) and math.isnan(state.velocity[index(sim, KNEE)])
    assert np.isfinite(np.delete(state.position, index(sim, KNEE))).all()
    assert not sim.ground_truth().fallen  # the robot itself is unaffected


def test_sensor_dropout_and_message_delay_are_reported_for_their_window() -> None:
    sim = normal_sim()
    sim.inject_fault("sensor_dropout", 0.1, 0.2, {"topic": "imu"})
    sim.inject_fault("message_delay", 0.0, 0.0, {"topic": "odom", "delay": 0.08})
    assert not sim.topic_dropped("imu")
    sim.run_for(0.15)
    assert sim.topic_dropped("imu") and not sim.topic_dropped("joint_states")
    assert sim.topic_delay("odom") == pytest.approx(0.08) and sim.topic_delay("imu") == 0.0
    sim.run_for(0.2)
    assert not sim.topic_dropped("imu")


def test_delayed_joint_command_is_applied_after_the_delay() -> None:
    sim = normal_sim()
    elbow = index(sim, "left_elbow_joint")
    sim.inject_fault("message_delay", 0.0, 0.0, {"topic": "hw/joint_command", "delay": 0.3})
    assert "delayed" in sim.apply_joint_command(["left_elbow_joint"], [1.2]).message
    start = float(sim.joint_state().position[elbow])
    sim.run_for(0.28)
    assert sim.joint_state().position[elbow] == pytest.approx(start, abs=0.01)
    sim.run_for(0.7)
    assert sim.joint_state().position[elbow] == pytest.approx(1.2, abs=0.05)


@pytest.mark.clause("6.7c")
def test_dropped_guard_alive_triggers_the_watchdog() -> None:
    sim = HumanoidSim(SimConfig())
    sim.guard_alive()
    sim.set_actuation_mode(Mode.NORMAL)
    sim.inject_fault("sensor_dropout", 0.5, 0.0, {"topic": "guard/alive"})
    sim.run_for(1.0, on_step=lambda s: s.guard_alive())
    assert sim.mode is Mode.DAMPING
    latency = next(lat for lat in sim.recorder.latencies(sim.faults) if lat.mode == "DAMPING")
    assert latency.source == "guard_alive_timeout"
    timeout = sim.config.guard_alive_timeout
    assert timeout == 0.09   # the default: a guard killed anywhere in its 10 ms alive period is damped within 0.1 s
    assert timeout - 1e-9 <= latency.latency <= timeout + 3 * sim.timestep


def test_overheat_raises_that_actuators_temperature() -> None:
    sim = normal_sim()
    sim.inject_fault("overheat", 0.0, 0.0, {"joint": KNEE, "rate": 5.0})
    sim.run_for(4.0)
    temperatures = sim.temperatures()
    others = np.delete(temperatures, index(sim, KNEE))
    assert temperatures[index(sim, KNEE)] - others.max() > 15.0


def test_battery_drain_empties_faster_and_an_empty_battery_cuts_power() -> None:
    base, drained = normal_sim(), normal_sim()
    drained.inject_fault("battery_drain", 0.0, 0.0, {"power": 20000.0})
    base.run_for(1.0)
    drained.run_for(1.0)
    assert drained.battery().charge_ah < base.battery().charge_ah - 0.05
    assert drained.battery().current < base.battery().current < 0.0
    from ftrobot_guard.sim.battery_model import BatteryParameters

    nearly_empty = normal_sim(battery=BatteryParameters(initial_charge_fraction=0.0001))
    nearly_empty.inject_fault("battery_drain", 0.0, 0.0, {"power": 20000.0})
    nearly_empty.run_for(0.5)
    assert nearly_empty.mode is Mode.POWER_OFF
    assert nearly_empty.recorder.mode_changes[-1].source == "battery_empty"


def test_rogue_publisher_drives_a_joint_in_normal_or_hands_commands_to_the_node() -> None:
    sim = normal_sim()
    joint = index(sim, "left_shoulder_pitch_joint")
    start = float(sim.joint_state().position[joint])
    sim.inject_fault("rogue_publisher", 0.0, 0.5, {"offset": 0.4, "rate_hz": 20})
    sim.run_for(0.5)
    assert sim.joint_state().position[joint] > start + 0.5  # it keeps pushing from the measured pose
    node_side = HumanoidSim(SimConfig(require_guard_alive=False, apply_rogue_commands=False))
    node_side.inject_fault("rogue_publisher", 0.0, 0.5, {"rate_hz": 20})
    node_side.run_for(0.5)
    commands = node_side.take_rogue_commands()
    assert len(commands) == 10 and len(commands[0].names) == 29
    assert node_side.take_rogue_commands() == []


def test_clear_without_id_ends_every_fault_and_unknown_id_is_refused() -> None:
    sim = normal_sim()
    sim.inject_fault("overheat", 0.0, 0.0, {"joint": KNEE})
    sim.inject_fault("sensor_dropout", 0.0, 0.0, {"topic": "odom"})
    sim.step()
    assert len(sim.active_faults()) == 2
    assert sim.inject_fault("clear").success
    assert sim.active_faults() == [] and len(sim.faults) == 2
    assert not sim.inject_fault("clear", parameters={"fault_id": "f99"}).success


@pytest.mark.parametrize(
    ("kind", "onset", "duration", "parameters", "reason"),
    [
        ("explode", 0, 0, "", "unknown fault kind"),
        ("push", 0, 0, "", "force is required"),
        ("push", 0, 0, '{"force": [1, 2]}', "list of 3"),
        ("push", 0, 0, '{"force": [.nan, 0, 0]}', "NaN"),
        ("push", 0, 0, '{"force": [1, 0, 0], "body": "wing"}', "body"),
        ("push", 0, 0, '{"force": [1, 0, 0], "colour": 1}', "unknown parameter"),
        ("stuck_joint", 0, 0, '{"joint": "tail_joint"}', "joint"),
        ("overheat", 0, 0, '{"joint": "left_knee_joint", "rate": -1}', "outside"),
        ("message_delay", 0, 0, '{"topic": "/tf"}', "topic"),
        ("encoder_spike", 0, 0, '{"joint": "left_knee_joint", "offset": true}', "expected a number"),
        ("push", -1, 0, '{"force": [1, 0, 0]}', "onset"),
        ("push", 0, math.inf, '{"force": [1, 0, 0]}', "duration"),
        ("push", 0, 0, "[1, 2, 3]", "must be an object"),
        ("push", 0, 0, "{force: [", "not valid YAML"),
    ],
)
def test_bad_fault_requests_are_refused_with_a_reason(
    kind: str, onset: float, duration: float, parameters: str, reason: str
) -> None:
    sim = HumanoidSim(UNGUARDED)
    outcome = sim.inject_fault(kind, onset, duration, parameters)
    assert not outcome.success
    assert reason in outcome.message
    assert sim.faults == []


TARGETS = FaultTargets(joints=("a_joint", "b_joint"), bodies=("torso_link",))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(list(FaultKind)), parameters=st.dictionaries(st.sampled_from(
    ["force", "body", "joint", "offset", "stddev", "topic", "delay", "rate", "power", "rate_hz", "direction",
     "fault_id", "x"]
), json_values, max_size=4))
def test_fault_parameter_parsing_accepts_only_typed_finite_values(kind: FaultKind, parameters: dict) -> None:
    try:
        parsed = parse_parameters(kind, parameters, TARGETS)
    except FaultRequestError as exc:
        assert str(exc)
        return
    for value in parsed.values():
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, tuple):
            assert all(math.isfinite(v) for v in value)


@settings(max_examples=200, deadline=None)
@given(onset=st.floats(allow_nan=True) | st.integers() | st.booleans(), duration=st.floats(allow_nan=True))
def test_fault_timing_is_finite_and_non_negative_or_refused(onset: object, duration: float) -> None:
    try:
        start, length = parse_timing(onset, duration)
    except FaultRequestError:
        return
    assert math.isfinite(start) and math.isfinite(length) and start >= 0 and length >= 0
