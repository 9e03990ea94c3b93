"""POWER_DOWN's lowering sequencer: limits and fallbacks (pure), and real lowerings of the simulated G1.

The full robustness set (noise x push direction and phase x start posture) is bench/power_down_trials.py;
here two of its hardest trials run on HumanoidSim, driven exactly as the guard node drives the hardware.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.envelope import Envelope, load_envelope
from ftrobot_guard.safety.posture_estimate import PostureEstimate
from ftrobot_guard.safety.rest_lowering import (
    G1_POSTURES,
    KeyPosture,
    Lean,
    LoweringConfig,
    LoweringStep,
    PowerDownSequencer,
)
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE: Envelope = load_envelope(ROOT / "config" / "envelope" / "g1.yaml")
JOINTS = ENVELOPE.joints
COUNT = len(JOINTS)
UPRIGHT = Lean(0.0, 0.0, 0.0, 0.0)
DT = 0.002


def standing() -> np.ndarray:
    return np.zeros(COUNT)


def planned_lean(sequencer: PowerDownSequencer) -> Lean:
    """The lean the plan expects (a robot that tracks perfectly): no lean error."""
    return Lean(sequencer._planned_pitch(), 0.0, 0.0, 0.0)


def run_ideal(sequencer: PowerDownSequencer, start: float, seconds: float, measured: np.ndarray,
              dt: float = DT) -> list[LoweringStep]:
    """Step with perfect tracking (the last target is the measured posture) and the plan's own lean."""
    steps = []
    now = start
    for _ in range(round(seconds / dt)):
        now += dt
        step = sequencer.step(now, measured, 0.0, 0.9, True, planned_lean(sequencer))
        if step.positions is not None:
            measured = step.positions
        steps.append(step)
    return steps


def lower_until_damping(sequencer: PowerDownSequencer, dt: float = 0.01) -> tuple[float, list[LoweringStep]]:
    """A perfectly tracked lowering from standing, stopped at the first DAMPING request: (time, steps)."""
    sequencer.start(0.0, standing())
    measured, now, steps = standing(), 0.0, []
    while not steps or steps[-1].phase == "lowering":
        now += dt
        steps.append(sequencer.step(now, measured, 0.0, 0.9, True, planned_lean(sequencer)))
        if steps[-1].positions is not None:
            measured = steps[-1].positions
        assert now < 100.0
    return now, steps


# -- limits (hypothesis) ----------------------------------------------------------------------------

hard_posture = st.lists(st.floats(0.0, 1.0), min_size=COUNT, max_size=COUNT).map(
    lambda u: JOINTS.hard_lower + np.array(u) * (JOINTS.hard_upper - JOINTS.hard_lower))
leans = st.builds(Lean, st.floats(-0.6, 0.6), st.floats(-0.6, 0.6), st.floats(-3.0, 3.0), st.floats(-3.0, 3.0))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(start=hard_posture, gaps=st.lists(st.floats(0.0005, 0.2), min_size=20, max_size=120),
       lean_inputs=st.lists(leans, min_size=1, max_size=8), skip=st.integers(0, 20))
def test_targets_stay_inside_the_soft_limits_and_below_the_velocity_limit(
        start: np.ndarray, gaps: list[float], lean_inputs: list[Lean], skip: int) -> None:
    config = LoweringConfig(lean_fall=1.5, lean_pause=1.5, lean_resume=1.5)   # keep streaming whatever the lean
    sequencer = PowerDownSequencer(ENVELOPE, config)
    now = 100.0
    step = sequencer.start(now, start)
    previous = step.positions
    assert previous is not None
    speed = np.minimum(JOINTS.soft_velocity, config.max_joint_speed)
    for _ in range(skip):   # jump ahead along the path (the posture measured is the last target)
        now += 1.0
        step = sequencer.step(now, previous, 0.0, 0.9, True, UPRIGHT)
        previous = step.positions if step.positions is not None else previous
    for k, gap in enumerate(gaps):
        now += gap
        step = sequencer.step(now, previous, 0.1, 0.9, True, lean_inputs[k % len(lean_inputs)])
        if step.positions is None:
            break
        targets = step.positions
        assert np.all(np.isfinite(targets))
        assert np.all(targets >= JOINTS.soft_lower) and np.all(targets <= JOINTS.soft_upper)
        implied = np.abs(targets - previous) / gap
        assert np.all(implied <= speed * (1.0 + 1e-9) + 1e-9), f"implied speed {implied.max():.3f} rad/s"
        previous = targets


@settings(max_examples=40, deadline=None)
@given(start=hard_posture, bad=st.sampled_from([math.nan, math.inf, -math.inf]), where=st.integers(0, COUNT - 1))
def test_a_non_finite_measured_posture_falls_back_to_damping_and_never_yields_nan_targets(
        start: np.ndarray, bad: float, where: int) -> None:
    broken = start.copy()
    broken[where] = bad
    at_start = PowerDownSequencer(ENVELOPE).start(0.0, broken)
    assert at_start.actuation is ActuationMode.DAMPING and at_start.positions is None
    assert "not finite" in at_start.note and at_start.note.startswith("fallback")
    sequencer = PowerDownSequencer(ENVELOPE)
    first = sequencer.start(0.0, start)
    assert first.positions is not None and np.all(np.isfinite(first.positions))
    later = sequencer.step(0.002, broken, 0.0, 0.9, True, UPRIGHT)
    assert later.actuation is ActuationMode.DAMPING and later.positions is None
    assert "not finite" in later.note


def test_a_wrongly_sized_posture_falls_back_to_damping() -> None:
    assert PowerDownSequencer(ENVELOPE).start(0.0, np.zeros(COUNT - 1)).actuation is ActuationMode.DAMPING


# -- fallbacks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "expected"), [
    ({"inputs_fresh": False}, "inputs lost"),
    ({"battery": 0.02}, "battery 0.02 below 0.05"),
    ({"lean": Lean(0.6, 0.0, 0.0, 0.0)}, "falling"),
    ({"lean": Lean(0.0, -0.5, 0.0, 0.0)}, "falling"),
    ({"lean": Lean(math.nan, 0.0, 0.0, 0.0)}, "IMU attitude not finite"),
    ({"lean": None, "tilt": math.nan}, "tilt unknown"),
    ({"lean": None, "tilt": 0.7}, "falling"),
])
def test_each_fallback_asks_for_damping_at_once_then_power_off_after_the_settle_time(
        change: dict[str, object], expected: str) -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    sequencer.start(0.0, standing())
    run_ideal(sequencer, 0.0, 1.0, standing())
    inputs: dict[str, object] = {"inputs_fresh": True, "battery": 0.9, "lean": UPRIGHT, "tilt": 0.0} | change
    step = sequencer.step(1.002, standing(), inputs["tilt"], inputs["battery"], inputs["inputs_fresh"],  # type: ignore[arg-type]
                          inputs["lean"])  # type: ignore[arg-type]
    assert step.actuation is ActuationMode.DAMPING and step.phase == "damping" and step.positions is None
    assert step.note.startswith("fallback: ") and expected in step.note and "DAMPING at once" in step.note
    still = sequencer.step(1.002 + config.fallback_settle - 0.01, standing(), 0.0, 0.9, True, UPRIGHT)
    assert still.actuation is ActuationMode.DAMPING and not still.finished
    off = sequencer.step(1.003 + config.fallback_settle, standing(), 0.0, 0.9, True, UPRIGHT)
    assert off.actuation is ActuationMode.POWER_OFF and off.phase == "power_off" and off.finished
    done = sequencer.step(1.1 + config.fallback_settle, standing(), 0.0, 0.9, True, UPRIGHT)
    assert done.phase == "done" and done.finished and done.actuation is ActuationMode.POWER_OFF


def test_the_time_budget_ends_a_stalled_lowering_in_damping() -> None:
    config = LoweringConfig(time_budget=5.0)
    sequencer = PowerDownSequencer(ENVELOPE, config)
    sequencer.start(0.0, standing())
    leaning = Lean(0.3, 0.0, 0.0, 0.0)   # beyond lean_pause (the path pauses), below lean_fall
    steps = [sequencer.step(k * 0.002, standing(), 0.0, 0.9, True, leaning) for k in range(1, 2000)]
    assert steps[-1].phase == "lowering" and steps[-1].pace == 0.0
    assert steps[-1].progress == steps[1000].progress   # paused: the path does not advance
    step = sequencer.step(5.01, standing(), 0.0, 0.9, True, leaning)
    assert step.actuation is ActuationMode.DAMPING and "time budget 5 s exceeded" in step.note


def test_abort_to_damping_works_before_start_during_the_lowering_and_is_idempotent() -> None:
    fresh = PowerDownSequencer(ENVELOPE)
    step = fresh.abort_to_damping(3.0, "fall under way")
    assert step.actuation is ActuationMode.DAMPING and "aborted: fall under way" in step.note
    sequencer = PowerDownSequencer(ENVELOPE)
    sequencer.start(0.0, standing())
    run_ideal(sequencer, 0.0, 0.5, standing())
    step = sequencer.abort_to_damping(0.6, "supervisor DAMP")
    assert step.actuation is ActuationMode.DAMPING and step.positions is None
    again = sequencer.abort_to_damping(0.7, "again")
    assert again.actuation is ActuationMode.DAMPING and "supervisor DAMP" in again.note
    assert PowerDownSequencer(ENVELOPE).step(0.0, standing(), 0.0, 0.9, True).actuation is ActuationMode.DAMPING


def test_a_clock_that_goes_back_or_is_nan_does_not_move_the_targets() -> None:
    sequencer = PowerDownSequencer(ENVELOPE)
    sequencer.start(10.0, standing())
    steps = run_ideal(sequencer, 10.0, 1.0, standing())
    last = steps[-1].positions
    assert last is not None
    for now in (5.0, math.nan, math.inf, 10.5):
        step = sequencer.step(now, last, 0.0, 0.9, True, planned_lean(sequencer))
        assert step.positions is not None and np.array_equal(step.positions, last)


# -- the path ----------------------------------------------------------------------------------------

def test_a_tracked_lowering_passes_every_key_posture_then_damps_until_settled_and_powers_off() -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    lowered, steps = lower_until_damping(sequencer)
    assert lowered == pytest.approx(sum(p.duration for p in G1_POSTURES) + config.rest_hold, abs=0.05)
    assert [s.phase for s in steps[:-1]] == ["lowering"] * (len(steps) - 1)
    rest = steps[-2].positions
    assert rest is not None
    final = np.clip([G1_POSTURES[-1].joints.get(n, 0.0) for n in JOINTS.names], JOINTS.soft_lower, JOINTS.soft_upper)
    assert np.allclose(rest, final, atol=1e-6)
    assert steps[-1].actuation is ActuationMode.DAMPING and "lowered to rest" in steps[-1].note
    now, step = lowered, steps[-1]
    while not step.finished:   # the body lies still
        now += 0.01
        step = sequencer.step(now, rest, 0.0, 0.9, True, UPRIGHT)
    assert now - lowered == pytest.approx(config.damping_time, abs=0.02)
    assert step.actuation is ActuationMode.POWER_OFF and "settled" in step.note


def test_a_body_still_moving_is_damped_for_the_maximum_time() -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    lowered, steps = lower_until_damping(sequencer)
    rng = np.random.default_rng(1)
    step, t = steps[-1], 0.0
    while not step.finished:
        t += 0.002
        posture = 0.05 * t + rng.normal(0.0, 0.01, COUNT)   # a slow collapse, 0.05 rad/s, noisy encoders
        step = sequencer.step(lowered + t, posture, 0.0, 0.9, True, UPRIGHT)
    assert t == pytest.approx(config.damping_max, abs=0.01)


def test_noisy_encoders_of_a_still_body_count_as_settled() -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    lowered, steps = lower_until_damping(sequencer)
    rng = np.random.default_rng(2)
    step, t = steps[-1], 0.0
    while not step.finished:
        t += 0.002
        step = sequencer.step(lowered + t, rng.normal(0.0, 0.01, COUNT), 0.0, 0.9, True, UPRIGHT)
    assert t < config.damping_time + 2.0 * config.settle_window


def test_stale_inputs_during_the_final_damping_wait_the_maximum_time() -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    lowered, steps = lower_until_damping(sequencer)
    step, t = steps[-1], 0.0
    while not step.finished:   # a frozen, stale posture must not pass for a settled body
        t += 0.01
        step = sequencer.step(lowered + t, standing(), 0.0, 0.9, False, UPRIGHT)
    assert t == pytest.approx(config.damping_max, abs=0.02)


def test_a_crouched_robot_joins_the_path_where_it_is_and_is_not_stood_up() -> None:
    sequencer = PowerDownSequencer(ENVELOPE)
    deep = next(p for p in G1_POSTURES if p.name == "squat_deep")
    step = sequencer.start(0.0, np.array([deep.joints.get(n, 0.0) for n in JOINTS.names]))
    assert "from 'squat_deep'" in step.note


def test_the_balance_feedback_leans_the_body_against_the_measured_lean() -> None:
    ankle = JOINTS.index["left_ankle_pitch_joint"]
    knee_left, knee_right = JOINTS.index["left_knee_joint"], JOINTS.index["right_knee_joint"]
    targets = {}
    for name, lean in (("upright", UPRIGHT), ("forward", Lean(0.08, 0.0, 0.0, 0.0)), ("left", Lean(0.0, -0.08, 0, 0))):
        sequencer = PowerDownSequencer(ENVELOPE)
        sequencer.start(0.0, standing())
        targets[name] = sequencer.step(0.05, standing(), 0.0, 0.9, True, lean).positions
    assert targets["forward"][ankle] > targets["upright"][ankle]     # leaning forward: the ankles push back
    assert targets["left"][knee_left] < targets["left"][knee_right]  # leaning left: the left leg extends


def test_a_fall_forwards_is_answered_by_a_tuck_then_damping_and_a_sideways_fall_by_damping_at_once() -> None:
    config = LoweringConfig()
    sequencer = PowerDownSequencer(ENVELOPE, config)
    step = sequencer.fall_response(1.0, standing(), Lean(0.4, 0.05, 3.5, 0.5))
    assert step.phase == "tuck" and step.actuation is ActuationMode.NORMAL and "forwards" in step.note
    tuck = np.clip([config.tuck.joints.get(n, 0.0) for n in JOINTS.names], JOINTS.soft_lower, JOINTS.soft_upper)
    previous, now = step.positions, 1.0
    while step.phase == "tuck":
        now += DT
        step = sequencer.step(now, standing(), 0.5, 0.9, True, Lean(0.6, 0.0, 4.0, 0.0))
        if step.positions is not None:
            assert previous is not None
            assert np.all(np.abs(step.positions - previous) <= JOINTS.soft_velocity * DT + 1e-9)
            assert np.all(step.positions >= JOINTS.soft_lower) and np.all(step.positions <= JOINTS.soft_upper)
            previous = step.positions
    assert now - 1.0 == pytest.approx(config.tuck.duration, abs=2 * DT)
    assert np.allclose(previous, tuck)   # reached at the soft velocity limit well within the tuck time
    assert step.actuation is ActuationMode.DAMPING and "tucked" in step.note
    sideways = PowerDownSequencer(ENVELOPE).fall_response(1.0, standing(), Lean(0.05, 0.4, 0.5, -3.5))
    assert sideways.actuation is ActuationMode.DAMPING and "sideways" in sideways.note
    blind = PowerDownSequencer(ENVELOPE).fall_response(1.0, standing(), None)
    assert blind.actuation is ActuationMode.DAMPING and blind.positions is None


# -- inputs and config ---------------------------------------------------------------------------------

@given(pitch=st.floats(-1.2, 1.2), roll=st.floats(-1.2, 1.2), yaw=st.floats(-3.1, 3.1))
def test_lean_from_an_imu_quaternion_is_pitch_and_roll_in_the_heading_frame(pitch: float, roll: float,
                                                                            yaw: float) -> None:
    import mujoco  # after ftrobot_guard.sim (it chooses the OpenGL backend before mujoco's first import)

    wxyz = np.zeros(4)
    mujoco.mju_euler2Quat(wxyz, np.array([roll, pitch, yaw]), "XYZ")   # extrinsic: roll, then pitch, then yaw
    w, x, y, z = wxyz
    lean = Lean.from_imu((x, y, z, w), (0.1, 0.2, 0.3))
    assert lean.pitch == pytest.approx(pitch, abs=1e-9)
    assert lean.roll == pytest.approx(math.atan2(math.sin(roll), math.cos(pitch) * math.cos(roll)), abs=1e-9)
    assert (lean.pitch_rate, lean.roll_rate) == (0.2, 0.1)


def test_lean_of_a_pure_pitch_or_roll_and_of_a_broken_quaternion() -> None:
    half = 0.15
    assert Lean.from_imu((0.0, math.sin(half), 0.0, math.cos(half)), (0, 0, 0)).pitch == pytest.approx(0.3)
    assert Lean.from_imu((math.sin(half), 0.0, 0.0, math.cos(half)), (0, 0, 0)).roll == pytest.approx(0.3)
    assert not Lean.from_imu((0.0, 0.0, 0.0, 0.0), (0, 0, 0)).finite()
    assert not Lean.from_imu((math.nan, 0.0, 0.0, 1.0), (0, 0, 0)).finite()


@pytest.mark.parametrize("change", [
    {"time_budget": 0.0}, {"min_battery": 1.5}, {"lean_pause": 0.5, "lean_fall": 0.4}, {"damping_max": 1.0},
    {"max_joint_speed": math.nan}, {"postures": ()}, {"balance_gain": True},
    {"postures": (KeyPosture("only_seated", 1.0, {}, balance=0.0),)},
])
def test_bad_lowering_config_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="lowering"):
        LoweringConfig(**change)  # type: ignore[arg-type]


def test_a_posture_naming_an_unknown_joint_is_refused() -> None:
    config = LoweringConfig(postures=(KeyPosture("stand", 1.0, {"tail_joint": 0.1}),))
    with pytest.raises(ValueError, match="tail_joint"):
        PowerDownSequencer(ENVELOPE, config)


# -- real lowerings on the simulator ---------------------------------------------------------------------

# the guard node's control rate on a robot: its tick, at which it runs the lowering
CONTROL_RATE_HZ = float(yaml.safe_load((ROOT / "config" / "robot.yaml").read_text(encoding="utf-8"))
                        ["/**/guard"]["ros__parameters"]["control_rate_hz"])
ARMS_RAISED = {"left_shoulder_pitch_joint": -2.4, "right_shoulder_pitch_joint": -2.4,
               "left_elbow_joint": 0.3, "right_elbow_joint": 0.3}


def lower_in_sim(push: tuple[float, float, float], onset: float, arms_raised: bool) -> tuple[HumanoidSim, float, str]:
    """The guard node's loop at its control rate (100 Hz, config/robot.yaml; the simulator steps at 500 Hz and
    holds the last target in between): the newest joint_states (with 0.01 rad encoder noise) and imu in, targets
    and actuation modes out; a 15 N push on the torso for 3 s from `onset`. Returns the sim, the largest truth
    excursion beyond a hard joint limit, and the sequencer's last note."""
    import mujoco

    sim = HumanoidSim(SimConfig(require_guard_alive=False, seed=1))
    if arms_raised:
        for name, value in ARMS_RAISED.items():
            sim.data.qpos[sim.g1.qpos_index[sim.g1.joint_index(name)]] = value
        mujoco.mj_forward(sim.model, sim.data)
    sim.set_actuation_mode(ActuationMode.NORMAL)
    sim.run_for(0.5, lambda s: s.guard_alive())
    sim.inject_fault("encoder_noise", 0.0, 0.0, {"joint": "all", "stddev": 0.01})
    posture = PostureEstimate(len(sim.joint_names))   # as GuardCore: every 500 Hz reading of the last 0.1 s

    def read(s: HumanoidSim) -> None:
        s.guard_alive()
        posture.add(s.time, s.joint_state().position)

    sim.run_for(0.1, read)
    sim.inject_fault("push", onset, 3.0, {"force": list(push)})
    sequencer = PowerDownSequencer(ENVELOPE)
    step = sequencer.start(sim.time, posture.estimate())
    worst = -math.inf
    while not step.finished and sim.time < 120.0:
        if step.actuation is not sim.mode:
            assert sim.set_actuation_mode(step.actuation).success
        if step.positions is not None and sim.mode is ActuationMode.NORMAL:
            assert sim.apply_joint_command(sim.joint_names, step.positions.tolist()).success
        for _ in range(round(1.0 / (CONTROL_RATE_HZ * sim.timestep))):
            sim.guard_alive()
            sim.step()
            q = sim.data.qpos[sim.g1.qpos_index]
            worst = max(worst, float(np.max(np.maximum(q - sim.g1.position_upper, sim.g1.position_lower - q))))
        imu = sim.imu()
        w, x, y, z = imu.orientation_wxyz
        tilt = math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (x * x + y * y))))
        step = sequencer.step(sim.time, sim.joint_state().position, tilt, sim.battery().percentage, True,
                              Lean.from_imu((x, y, z, w), imu.angular_velocity))
    assert sim.set_actuation_mode(step.actuation).success
    sim.run_for(1.0)   # limp after POWER_OFF
    return sim, worst, step.note


@pytest.mark.clause("6.7c")
@pytest.mark.clause("6.4c")
@pytest.mark.parametrize(("push", "onset", "arms_raised"), [
    ((15.0, 0.0, 0.0), 1.0, True),      # pushed towards the toes while the raised arms come down
    ((0.0, 15.0, 0.0), 10.0, False),    # pushed sideways in the squat
    # the early pushes on straight legs that tipped the robot over its feet before the push reflex and the arm
    # counterbalance (3.9 and 5.3 m/s at this seed; docs/design.md "Known gap")
    ((-15.0, 0.0, 0.0), 0.0, False),    # pushed towards the heels from the start, standing
    ((15.0, 0.0, 0.0), 0.3, True),      # pushed towards the toes as the raised arms start to come down
    # the hardest: towards the heels as the raised arms start to come down (fell at every seed when started from
    # the true posture before the stronger lean-rate feedback meanwhile; docs/design.md "Early pushes")
    ((-15.0, 0.0, 0.0), 0.0, True),
], ids=["forward-at-1s-arms-raised", "left-in-the-squat", "backward-at-0s-standing", "forward-at-0.3s-arms-raised",
        "backward-at-0s-arms-raised"])
def test_power_down_lowers_the_g1_to_rest_softly_despite_encoder_noise_and_a_push(
        push: tuple[float, float, float], onset: float, arms_raised: bool) -> None:
    sim, worst, note = lower_in_sim(push, onset, arms_raised)
    truth = sim.ground_truth()
    print(f"peak impact {truth.peak_impact_speed:.3f} m/s ({sim.peak_impact}), hard-limit excursion "
          f"{1000 * worst:.2f} mrad, {note}")
    assert "fallback" not in note and "settled" in note
    assert truth.mode is ActuationMode.POWER_OFF
    assert truth.peak_impact_speed <= 0.7
    assert worst <= 0.0, f"a joint went {1000 * worst:.2f} mrad beyond its hard limit"
    assert truth.pelvis_height < 0.15 and truth.tilt > 1.3   # lying on the back
