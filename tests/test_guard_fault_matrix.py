"""The fault matrix: every fault kind of sim/inject_fault, on the simulated G1 with the guard in the loop
(sim/guarded_sim.py: the guard node's own core, fed at the simulator node's rates and ticked at the node's
control rate), gives the anomaly and the safety mode expected. The robot stands in NORMAL, its left elbow moving through the gate, when the
fault begins. Detection delays and peak impact speeds are printed by bench/fault_detection.py (part guard)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ftrobot_guard.safety.command_gate import JointGateDecision
from ftrobot_guard.safety.dev_envelope import always_open
from ftrobot_guard.safety.envelope import Envelope, parse_envelope
from ftrobot_guard.safety.guard_core import GuardConfig, GuardCore
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.safety.supervisor import StopAction
from ftrobot_guard.safety.tick_intake import DEFAULT_CONTROL_RATE_HZ
from ftrobot_guard.sim.battery_model import BatteryParameters
from ftrobot_guard.sim.guarded_sim import GuardedSim
from ftrobot_guard.sim.humanoid_sim import SimConfig

ENVELOPE = Path(__file__).resolve().parents[1] / "config" / "envelope" / "g1.yaml"
SETTLE_S = 2.0
WATCH_S = 4.0


@dataclass(frozen=True)
class Case:
    kind: str
    parameters: dict[str, Any]
    duration: float
    anomaly: str               # the anomaly kind expected among those raised (gate events aside); '' = none
    mode: SafetyMode           # the mode the guard is in at the end
    watch: float = WATCH_S
    battery: float = 0.9       # initial charge


CASES = [
    Case("push", {"force": [15.0, 0.0, 0.0]}, 0.5, "", SafetyMode.NORMAL),     # a nudge: nothing to do
    Case("push", {"force": [120.0, 0.0, 0.0]}, 0.5, "fall_under_way", SafetyMode.POWER_DOWN),
    Case("trip", {"direction": "forward"}, 0.2, "fall_under_way", SafetyMode.POWER_DOWN),
    Case("stuck_joint", {"joint": "left_elbow_joint"}, 0.0, "effort_spike", SafetyMode.SAFE_STOP),
    Case("encoder_spike", {"joint": "left_knee_joint", "offset": 0.5}, 0.0, "encoder_jump", SafetyMode.SAFE_STOP),
    Case("encoder_noise", {"stddev": 0.01}, 0.0, "", SafetyMode.NORMAL),         # what real encoders do
    Case("encoder_nan", {"joint": "left_knee_joint"}, 0.0, "input_invalid", SafetyMode.POWER_DOWN),
    Case("sensor_dropout", {"topic": "joint_states"}, 0.0, "input_stale", SafetyMode.POWER_DOWN),
    Case("sensor_dropout", {"topic": "imu"}, 0.0, "input_stale", SafetyMode.POWER_DOWN),
    Case("sensor_dropout", {"topic": "odom"}, 0.0, "input_stale", SafetyMode.SAFE_STOP),
    Case("sensor_dropout", {"topic": "actuator_temperatures"}, 0.0, "input_stale", SafetyMode.SAFE_STOP),
    Case("sensor_dropout", {"topic": "battery"}, 0.0, "input_stale", SafetyMode.SAFE_STOP),
    Case("sensor_dropout", {"topic": "hw/joint_command"}, 0.0, "tracking_error", SafetyMode.SAFE_STOP),
    # the hardware's own watchdog damps the robot; hw/actuation_state tells the guard, which agrees (DAMP)
    Case("sensor_dropout", {"topic": "guard/alive"}, 0.0, "hardware_stopped", SafetyMode.POWER_DOWN, watch=1.0),
    # the guard's actuation requests lost: nothing to notice while it asks for nothing (the stop is tested below)
    Case("sensor_dropout", {"topic": "hw/set_actuation_mode"}, 0.0, "", SafetyMode.NORMAL),
    Case("message_delay", {"topic": "joint_states", "delay": 0.2}, 0.0, "input_stale", SafetyMode.POWER_DOWN),
    Case("overheat", {"joint": "left_knee_joint", "rate": 30.0}, 0.0, "actuator_temperature", SafetyMode.SAFE_STOP),
    Case("battery_drain", {"power": 100000.0}, 0.0, "battery_minimum", SafetyMode.POWER_DOWN, battery=0.36),
    Case("rogue_publisher", {}, 0.0, "rogue_hw_publisher", SafetyMode.SAFE_STOP),
]


@pytest.fixture(scope="module")
def envelope() -> Envelope:
    return parse_envelope(always_open(ENVELOPE.read_text(encoding="utf-8")).encode("utf-8"))


def elbow_motion(t: float) -> tuple[tuple[str, ...], np.ndarray]:
    """The robot's own controller: the left elbow swinging slowly inside the envelope."""
    return ("left_elbow_joint",), np.array([1.0 + 0.3 * math.sin(1.5 * t)])


def run_case(envelope: Envelope, case: Case) -> tuple[GuardedSim, float]:
    config = SimConfig(seed=1, battery=BatteryParameters(initial_charge_fraction=case.battery))
    loop = GuardedSim(envelope, config, controller=elbow_motion)
    loop.run_for(SETTLE_S)
    assert loop.core.output.mode == SafetyMode.NORMAL and loop.core.output.forward_commands, loop.record.logs
    outcome = loop.sim.inject_fault(case.kind, 0.0, case.duration, case.parameters)
    assert outcome.success, outcome.message
    onset = loop.sim.time
    loop.run_for(case.watch)
    return loop, onset


@pytest.mark.clause("4.5", "6.4c", "6.7b")
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.kind}-{'-'.join(str(v) for v in c.parameters.values())}")
def test_each_fault_gives_its_anomaly_and_mode(envelope: Envelope, case: Case) -> None:
    loop, onset = run_case(envelope, case)
    raised = [(t, a) for t, a in loop.record.raised() if t >= onset and a.detector != "gate"]
    if not case.anomaly:
        assert raised == [], [f"{t - onset:.3f} s {a.kind} {a.description}" for t, a in raised]
    else:
        assert raised, f"nothing raised for {case.kind}; logs: {loop.record.logs[-5:]}"
        assert case.anomaly in {a.kind for _, a in raised}, [f"{t - onset:.3f} s {a.kind}" for t, a in raised]
    assert loop.core.output.mode == case.mode, loop.core.output.note
    if case.mode.latched:
        assert not loop.core.output.forward_commands
        # a stop is a stop: nothing of the controller's stream was forwarded after it
        stopped_at = next(t for t, state in loop.record.states if t >= onset and state.mode.latched)
        assert [t for t in loop.record.controller_forwarded if t > stopped_at] == []


def test_the_harness_ticks_the_guard_at_its_control_rate_with_the_newest_readings(envelope: Envelope) -> None:
    """As the guard node: the core ticks at control_rate_hz (100 Hz), not at every 2 ms physics step; at each
    tick it judges the newest joint_states and imu reading, and the earlier ones of the tick (500 Hz: four)
    go only to the posture estimate. The controller's commands are taken as they come (100 Hz here)."""
    loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    core = loop.core
    calls: dict[str, int] = {"tick": 0, "joint_states": 0, "earlier_joint_states": 0, "imu": 0, "joint_command": 0}

    def counted(name: str) -> None:
        original = getattr(core, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        setattr(core, name, call)

    for name in calls:
        counted(name)
    loop.run_for(1.0)
    assert loop.core.output.mode == SafetyMode.NORMAL, loop.core.output.note
    rate = DEFAULT_CONTROL_RATE_HZ
    assert abs(calls["tick"] - rate) <= 1, calls
    assert abs(calls["joint_states"] - rate) <= 1 and abs(calls["imu"] - rate) <= 1, calls
    assert abs(calls["earlier_joint_states"] - (500 - rate)) <= 2, calls
    assert abs(calls["joint_command"] - 100) <= 1, calls
    with pytest.raises(ValueError, match="control_rate_hz must be > 0"):
        GuardedSim(envelope, SimConfig(seed=1), control_rate_hz=0.0)


class TargetRecordingSim(GuardedSim):
    """GuardedSim that keeps every forwarded joint command: (sim time, truth positions then, targets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.targets: list[tuple[float, np.ndarray, np.ndarray]] = []
        super().__init__(*args, **kwargs)

    def forward_joint_command(self, decision: JointGateDecision) -> None:
        sim = self.sim
        truth = sim.data.qpos[sim.g1.qpos_index].copy()
        order = [sim.joint_names.index(name) for name in decision.names]
        self.targets.append((sim.time, truth[order], decision.positions.copy()))
        super().forward_joint_command(decision)


def test_the_lowering_starts_from_the_posture_with_the_encoder_noise_averaged_out(envelope: Envelope) -> None:
    """POWER_DOWN under 0.01 rad of encoder noise: the lowering's first targets are the measured posture
    estimated from the last 0.1 s of joint_states (safety/posture_estimate.py), not one noisy reading, whose
    noise the driver's PD turned into a jolt (a standing G1 pushed at the start of the lowering fell or not
    with the noise of that one reading, bench/power_down_trials.py). Checked on the arm joints, where the
    lowering adds no balance offset: one reading is 0.01 rad off RMS, the estimate about 0.003."""
    loop = TargetRecordingSim(envelope, SimConfig(seed=3), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    assert loop.core.output.mode == SafetyMode.NORMAL and loop.core.output.forward_commands, loop.record.logs
    assert loop.sim.inject_fault("encoder_noise", 0.0, 0.0, {"joint": "all", "stddev": 0.01}).success
    loop.run_for(0.3)
    stopped_at = loop.sim.time
    loop.core.stop(stopped_at, SafetyMode.POWER_DOWN, "test", "lowering under encoder noise")
    assert loop.run_until(lambda _loop: any(t >= stopped_at for t, _, _ in loop.targets), 0.1)
    _, truth, first = next(target for target in loop.targets if target[0] >= stopped_at)
    names = loop.sim.joint_names
    arms = [i for i, name in enumerate(names) if any(part in name for part in ("shoulder", "elbow", "wrist"))]
    assert len(arms) == 14
    error = float(np.sqrt(np.mean(np.square(first[arms] - truth[arms]))))
    assert error < 0.005, f"first lowering targets {error:.4f} rad RMS off the arms' true posture"
    assert loop.core.lowering_phase == "lowering"


def test_estop_stops_within_one_cycle_and_stays_stopped(envelope: Envelope) -> None:
    loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    loop.core.estop(loop.sim.time, True)
    # same call: the stop is decided and the hardware asked for HOLD before anything else happens
    assert loop.core.output.mode == SafetyMode.ESTOP and not loop.core.output.forward_commands
    assert loop.record.actuation_requests[-1][1].name == "HOLD"
    assert loop.sim.mode.name == "HOLD"
    loop.core.estop(loop.sim.time, False)   # a released button is not a RESET
    loop.run_for(1.0)
    assert loop.core.output.mode == SafetyMode.ESTOP
    stopped_at = next(t for t, state in loop.record.states if state.mode == SafetyMode.ESTOP)
    assert [t for t in loop.record.controller_forwarded if t > stopped_at] == []
    assert loop.core.lowering_phase == "lowering"   # ESTOP is stop category 1: lowered to rest, then power off


@pytest.mark.clause("6.7c")
def test_a_trip_forwards_is_answered_by_a_tuck_that_hurts_less_than_damping(envelope: Envelope) -> None:
    """The committed envelope answers a fall under way with a tuck: the guard's own joint commands while the
    robot falls, then DAMPING. In the same trip (the simulator is deterministic), DAMPING at once strikes
    the floor harder (bench/power_down_trials.py --guard-falls has every direction and force)."""
    trip = Case("trip", {"direction": "forward"}, 0.2, "fall_under_way", SafetyMode.POWER_DOWN)
    tucked, onset = run_case(envelope, trip)
    output = tucked.core.output
    assert (output.mode, output.action) == (SafetyMode.POWER_DOWN, StopAction.TUCK), output.note
    own_commands = tucked.record.forwarded - len(tucked.record.controller_forwarded)
    assert own_commands >= 100, own_commands          # 1.5 s of tuck at the guard's tick
    requests = [(mode.name, reason) for t, mode, reason in tucked.record.actuation_requests if t >= onset]
    # (a SAFE_STOP for the angular rate may come first: HOLD, then NORMAL again for the tuck's stream)
    assert requests[-1][0] == "DAMPING" and "tucked for 1.5 s" in requests[-1][1], requests
    assert "DAMPING" not in [mode for mode, _ in requests[:-1]], requests
    assert not [text for _t, level, text in tucked.record.logs if level == "error"], tucked.record.logs

    text = always_open(ENVELOPE.read_text(encoding="utf-8"))
    damping = parse_envelope(text.replace("fall_under_way: tuck", "fall_under_way: damp").encode("utf-8"))
    damped, _ = run_case(damping, trip)
    assert damped.core.output.action == StopAction.DAMP
    assert tucked.sim.peak_impact is not None and damped.sim.peak_impact is not None
    assert tucked.sim.peak_impact.speed < damped.sim.peak_impact.speed, (tucked.sim.peak_impact, damped.sim.peak_impact)


@pytest.mark.clause("6.7b")
def test_a_second_cause_of_a_stop_is_published_at_once_not_at_the_next_repeat(envelope: Envelope) -> None:
    """safety_state goes out when the active anomalies change, also without a change of mode: a guardian
    deciding on a RESET sees every cause that still holds."""
    loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    assert loop.sim.inject_fault("overheat", 0.0, 0.0, {"joint": "left_knee_joint", "rate": 30.0}).success
    loop.run_for(WATCH_S)
    assert loop.core.output.mode == SafetyMode.SAFE_STOP, loop.core.output.note
    published = len(loop.record.states)
    assert loop.sim.inject_fault("encoder_spike", 0.0, 0.0, {"joint": "left_elbow_joint", "offset": 0.5}).success
    loop.run_for(0.1)
    assert loop.core.output.mode == SafetyMode.SAFE_STOP
    assert "encoder_jump" in loop.core.output.active_anomalies
    newest = loop.record.states[-1][1]
    assert len(loop.record.states) > published and "encoder_jump" in newest.active_anomalies, newest
    assert "actuator_temperature" in newest.active_anomalies and newest.mode == SafetyMode.SAFE_STOP


@pytest.mark.clause("4.5", "6.7b")
def test_the_guard_learns_of_a_stop_the_hardware_made_by_itself_holds_the_robot_and_damps_a_second(
        envelope: Envelope) -> None:
    """hw/actuation_state: the hardware's watchdog damps the robot (the guard stalled for 0.2 s). The guard does
    not go on reporting NORMAL or forwarding: it stops (SAFE_STOP) and asks for HOLD, which catches the robot
    before it sags (left in DAMPING it falls: the same stall with a DAMP answer strikes the floor). A second
    stop by the hardware before a guardian's RESET is damped (POWER_DOWN, DAMP): nothing is re-energised."""
    def stall(loop: GuardedSim, seconds: float) -> None:
        end = loop.sim.time + seconds
        while loop.sim.time < end:   # a stalled guard: the hardware steps, the guard neither ticks nor beats
            loop.sim.step()

    loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    assert loop.core.output.mode == SafetyMode.NORMAL
    assert [a for _, a in loop.record.raised("hardware_stopped")] == []   # the guard's own requests are no fault
    stall(loop, 0.2)
    assert loop.sim.mode.name == "DAMPING"
    loop.run_for(0.01)
    (raised_at, report), = loop.record.raised("hardware_stopped")
    assert report.subject == "guard_alive_timeout" and report.severity.name == "ERROR", report
    output = loop.core.output
    assert (output.mode, output.action, output.forward_commands) == (SafetyMode.SAFE_STOP, StopAction.HOLD, False)
    assert "hardware_stopped" in output.cause
    loop.run_for(WATCH_S)
    assert loop.sim.mode.name == "HOLD" and not loop.sim.ground_truth().fallen, loop.sim.ground_truth()
    assert loop.sim.peak_impact is None
    assert [t for t in loop.record.controller_forwarded if t >= raised_at] == []
    assert [m.name for t, m, _ in loop.record.actuation_requests if t >= raised_at] == ["HOLD"]
    cleared = [a for _, a in loop.record.anomalies if a.kind == "hardware_stopped" and not a.active]
    assert cleared, "cleared once the hardware holds, as the guard asks"
    assert loop.core.output.mode == SafetyMode.SAFE_STOP   # latched

    stall(loop, 0.2)   # again, before any RESET: the hardware's verdict stands
    loop.run_for(0.01)
    assert [a.severity.name for _, a in loop.record.raised("hardware_stopped")] == ["ERROR", "CRITICAL"]
    output = loop.core.output
    assert (output.mode, output.action) == (SafetyMode.POWER_DOWN, StopAction.DAMP), output.note
    loop.run_for(WATCH_S)
    assert "NORMAL" not in [m.name for t, m, _ in loop.record.actuation_requests if t >= raised_at]


def test_a_watchdog_stop_left_in_damping_drops_the_robot(envelope: Envelope) -> None:
    """Why the first hardware stop is held, not damped: the same 0.2 s stall answered with DAMP (an envelope
    may choose it: kind_responses {hardware_stopped: damp}) lets the standing robot fall."""
    text = always_open(ENVELOPE.read_text(encoding="utf-8"))
    damping = parse_envelope(text.replace("kind_responses: {", "kind_responses: {hardware_stopped: damp, ")
                             .encode("utf-8"))
    loop = GuardedSim(damping, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    end = loop.sim.time + 0.2
    while loop.sim.time < end:
        loop.sim.step()
    loop.run_for(WATCH_S)
    assert (loop.core.output.mode, loop.core.output.action) == (SafetyMode.POWER_DOWN, StopAction.DAMP)
    assert loop.sim.ground_truth().fallen and loop.sim.peak_impact is not None
    assert loop.sim.peak_impact.speed > 1.0, loop.sim.peak_impact


def test_the_hardware_state_is_judged_once_per_change_and_its_first_copy_is_history(envelope: Envelope) -> None:
    loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
    loop.run_for(SETTLE_S)
    core, now = loop.core, loop.sim.time
    changes = len(loop.sim.recorder.mode_changes)
    core.hardware_state(now, 2, "guard_alive_timeout", "a latched copy", changes)   # the count already taken
    core.hardware_state(now, 2, "request", "the guard's own request", changes + 1)
    assert core.output.mode == SafetyMode.NORMAL and loop.record.raised("hardware_stopped") == []
    core.hardware_state(now, 7, "battery_empty", "no such mode\n" + "x" * 100_000, changes + 2)
    assert core.output.mode == SafetyMode.NORMAL
    assert any(level == "error" and "unknown mode 7" in text for _, level, text in loop.record.logs)
    assert all(len(text) < 1000 and "\n" not in text for _, _, text in loop.record.logs)   # one clipped line
    # the driver restarted under a running guard: it is in its start mode (HOLD), not the NORMAL the guard asked for
    core.hardware_state(now, 1, "start", "driver started", 0)
    assert (core.output.mode, core.output.action) == (SafetyMode.SAFE_STOP, StopAction.HOLD)
    assert [a.subject for _, a in loop.record.raised("hardware_stopped")] == ["start"]

    # A guard started after the hardware's watchdog tripped: that trip is history (a restart re-enters BOOT);
    # the next trip, while this guard holds the robot in BOOT, is not.
    sink = GuardedSim(envelope, SimConfig(seed=1))
    restarted = GuardCore(sink, envelope, "", 0.0)
    restarted.hardware_state(0.0, 2, "guard_alive_timeout", "before this guard", 4)
    assert restarted.output.mode == SafetyMode.BOOT and sink.record.raised("hardware_stopped") == []
    assert any("since before this guard started" in text for _, _, text in sink.record.logs), sink.record.logs
    restarted.hardware_state(0.1, 2, "guard_alive_timeout", "again", 5)
    assert (restarted.output.mode, restarted.output.action) == (SafetyMode.SAFE_STOP, StopAction.HOLD)
    restarted.hardware_state(0.2, 4, "battery_empty", "motor power cut", 6)   # beyond DAMPING: never held
    assert (restarted.output.mode, restarted.output.action) == (SafetyMode.POWER_DOWN, StopAction.DAMP)


@pytest.mark.clause("4.5", "6.7b")
def test_a_stop_the_hardware_does_not_confirm_is_left_to_its_watchdog(envelope: Envelope) -> None:
    """The guard's actuation requests are lost (sensor_dropout on hw/set_actuation_mode) when it stops the robot:
    the hardware never confirms HOLD. After stop_unconfirmed_limit the guard raises hardware_unresponsive
    (CRITICAL, DAMP) and withholds guard/alive, so the driver's own watchdog damps the robot; once the hardware
    says it is in DAMPING (hw/actuation_state) guard/alive goes out again. With the link up, the same stop is
    confirmed at once and nothing of this happens."""
    limit = GuardConfig().stop_unconfirmed_limit

    def stopped_with(link_up: bool) -> tuple[GuardedSim, float, list[float]]:
        """A SAFE_STOP of the standing robot: (the loop, when, the sim times guard/alive was withheld at)."""
        loop = GuardedSim(envelope, SimConfig(seed=1), controller=elbow_motion)
        loop.run_for(SETTLE_S)
        if not link_up:
            assert loop.sim.inject_fault("sensor_dropout", 0.0, 0.0, {"topic": "hw/set_actuation_mode"}).success
        stopped_at = loop.sim.time
        loop.core.stop(stopped_at, SafetyMode.SAFE_STOP, "guardian:test", "a guardian's SAFE_STOP")
        withheld: list[float] = []
        loop.run_for(limit + 0.5, lambda g: None if g.core.keeps_hardware_alive else withheld.append(g.sim.time))
        return loop, stopped_at, withheld

    for link_up in (True, False):
        loop, stopped_at, withheld = stopped_with(link_up)
        raised = loop.record.raised("hardware_unresponsive")
        if link_up:
            assert (raised, withheld, loop.sim.mode.name) == ([], [], "HOLD")
            assert loop.core.output.mode == SafetyMode.SAFE_STOP
            continue
        (raised_at, report), = raised
        assert report.severity.name == "CRITICAL" and report.subject == "HOLD", report
        tick = 1.0 / DEFAULT_CONTROL_RATE_HZ   # the guard judges it at its control tick
        assert limit <= raised_at - stopped_at <= limit + 2 * tick, raised_at - stopped_at
        assert "NORMAL" in report.description   # what the hardware is in instead
        assert withheld and withheld[0] - raised_at <= tick
        # the driver's watchdog (90 ms) damped the robot by itself; the guard heard it and agrees (DAMP)
        damped = [c for c in loop.sim.recorder.mode_changes if c.time > stopped_at]
        assert [(c.mode.name, c.source) for c in damped][:1] == [("DAMPING", "guard_alive_timeout")], damped
        assert damped[0].time - raised_at <= loop.sim.config.guard_alive_timeout + 0.01
        assert (loop.core.output.mode, loop.core.output.action) == (SafetyMode.POWER_DOWN, StopAction.DAMP)
        assert loop.core.keeps_hardware_alive and loop.sim.mode.name == "DAMPING"
        assert [a for _, a in loop.record.anomalies if a.kind == "hardware_unresponsive" and not a.active]
        assert [t for t in loop.record.controller_forwarded if t > stopped_at] == []


def test_a_refusal_the_hardware_repeats_is_logged_with_its_count_not_at_every_retry(envelope: Envelope) -> None:
    """The driver refuses NORMAL while it hears no guard/alive (dropped for the first 11 s): the guard retries every
    actuation_retry (0.25 s), ~40 times. Its log says the refusal at once, then again once per refusal_log_interval
    with how often it came meanwhile, and when NORMAL is accepted, after how many refusals: every refusal counted,
    no line per retry."""
    config = GuardConfig()
    loop = GuardedSim(envelope, SimConfig(seed=1), config)
    dropped_s = 11.0
    assert loop.sim.inject_fault("sensor_dropout", 0.0, dropped_s, {"topic": "guard/alive"}).success
    assert loop.run_until(lambda g: g.core.hardware_mode is not None and g.core.hardware_mode.name == "NORMAL",
                          dropped_s + 2.0)
    asked = [t for t, mode, _reason in loop.record.actuation_requests if mode.name == "NORMAL"]
    refused = [t for t in asked if t <= dropped_s + 1e-6]   # at the instant the dropout ends it still holds
    assert len(refused) >= 35, asked   # ~ (11 s - boot) / 0.25 s
    lines = [(t, text) for t, _level, text in loop.record.logs if text.startswith("hardware refused NORMAL")]
    assert len(lines) == 2, lines
    (first_at, first), (second_at, second) = lines
    assert "no guard/alive" in first and "retrying every 0.25 s" in first and "times" not in first
    assert config.refusal_log_interval <= second_at - first_at <= config.refusal_log_interval + config.actuation_retry
    reply = loop.sim.timestep   # a reply comes a step after its request
    so_far = sum(1 for t in refused if t + reply <= second_at + 1e-9)   # the first line's refusal included
    assert f"(refused {so_far - 1} times in the last 10." in second and f", {so_far} in a row)" in second, \
        (second, so_far)
    accepted = [text for _t, _level, text in loop.record.logs if text.startswith("the hardware accepted NORMAL")]
    assert accepted == [f"the hardware accepted NORMAL after {len(refused)} refusal(s) in a row"], (accepted, refused)
    assert loop.core.output.mode == SafetyMode.NORMAL
