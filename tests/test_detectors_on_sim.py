"""The anomaly detectors on the simulated G1 (no ROS): a nominal run raises nothing, and every fault kind of
``sim/inject_fault`` that a detector can see raises the expected kind within a bounded delay from onset
(sim time). ``bench/fault_detection.py`` prints the same matrix with the delays and impact speeds.

:class:`SimFeed` feeds :class:`HumanoidSim` readings to :class:`AnomalyDetectors` the way the guard node
does: joint_states and imu at 500 Hz, odom at 100 Hz, temperatures at 10 Hz, battery at 1 Hz, check()
every 2 ms, stamps = sim time; dropped topics are not delivered and delayed ones arrive late with their
original stamps. Arm commands (inside the envelope, 100 Hz) go to the sim and to ``command_forwarded``
as the gate's forwarded stream.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ftrobot_guard.hardware.actuation_modes import ActuationMode
from ftrobot_guard.safety.anomaly_detectors import AnomalyDetectors, AnomalyReport, DetectorConfig
from ftrobot_guard.safety.envelope import Envelope, load_envelope
from ftrobot_guard.safety.intrusion_check import IntrusionCheck, Publisher
from ftrobot_guard.safety.response_policy import Severity
from ftrobot_guard.sim.battery_model import BatteryParameters
from ftrobot_guard.sim.humanoid_sim import HumanoidSim, SimConfig

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE: Envelope = load_envelope(ROOT / "config" / "envelope" / "g1.yaml")
NAMESPACE = "/futian/robot01"
RATE_STEPS = {"joint_states": 1, "imu": 1, "odom": 5, "actuator_temperatures": 50, "battery": 500}
COMMAND_STEPS = 5                                  # arm commands at 100 Hz
# slow arm motion inside the envelope: joint -> (amplitude rad, frequency Hz) of anchor + a sin²(π f t)
ARM_MOTION = {"left_shoulder_pitch_joint": (-0.6, 0.25), "left_elbow_joint": (-0.5, 0.25),
              "right_shoulder_roll_joint": (-0.4, 0.2), "right_elbow_joint": (-0.4, 0.2),
              "right_wrist_roll_joint": (0.5, 0.3)}
SETTLE = 0.5                                       # s in NORMAL before the detectors' run counts
LEAD = 0.3                                         # s from the scenario's start to the fault's onset


class SimFeed:
    """Drives a HumanoidSim and feeds its readings and the arm commands to AnomalyDetectors."""

    def __init__(self, sim: HumanoidSim, detectors: AnomalyDetectors, arm_motion: bool = True) -> None:
        self.sim, self.detectors, self.arm_motion = sim, detectors, arm_motion
        self.names = sim.joint_names
        self.anchor = sim.joint_state().position.copy()
        self.reference = self.anchor.copy()
        self.motion = [(self.names.index(name), amplitude, frequency)
                       for name, (amplitude, frequency) in ARM_MOTION.items()]
        self.ramp: tuple[int, float, float] | None = None   # (joint, rad/s, from sim time): a reach
        self.indices = np.arange(len(self.names))
        self.reports: list[AnomalyReport] = []
        self.steps = 0
        self._queue: list[tuple[float, int, Callable[[float], list[AnomalyReport]]]] = []
        self._order = itertools.count()
        self._t0 = sim.time

    def _command(self) -> None:
        sim, now = self.sim, self.sim.time
        t = now - self._t0
        for i, amplitude, frequency in self.motion:
            self.reference[i] = self.anchor[i] + amplitude * math.sin(math.pi * frequency * t) ** 2
        if self.ramp is not None:
            j, speed, start = self.ramp
            self.reference[j] = float(np.clip(self.anchor[j] + speed * max(0.0, now - start),
                                              ENVELOPE.joints.soft_lower[j], ENVELOPE.joints.soft_upper[j]))
        self.reports += self.detectors.command_received(now, f"{NAMESPACE}/guard/in/joint_command")
        sim.apply_joint_command(self.names, self.reference.tolist())
        self.reports += self.detectors.command_forwarded(now, self.indices, self.reference.copy())

    def _reading(self, topic: str, stamp: float) -> Callable[[float], list[AnomalyReport]]:
        """Take the topic's reading now; deliver it later (the detectors' call with the arrival time)."""
        sim, d = self.sim, self.detectors
        if topic == "joint_states":
            joints = sim.joint_state()
            return lambda now: d.joint_states(now, stamp, joints.names, joints.position, joints.velocity,
                                              joints.effort)
        if topic == "imu":
            imu = sim.imu()
            w, x, y, z = (float(v) for v in imu.orientation_wxyz)
            return lambda now: d.imu(now, stamp, (x, y, z, w), imu.angular_velocity, imu.linear_acceleration)
        if topic == "odom":
            odom = sim.odom()
            w, x, y, z = (float(v) for v in odom.orientation_wxyz)
            yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
            p, v, a = odom.position, odom.linear_velocity, odom.angular_velocity
            return lambda now: d.odom(now, stamp, p[0], p[1], yaw, v[0], v[1], a[2], z=p[2])
        if topic == "actuator_temperatures":
            temperatures = sim.temperatures()
            return lambda now: d.temperatures(now, stamp, self.names, temperatures)
        fraction = sim.battery().percentage
        return lambda now: d.battery(now, stamp, fraction)

    def step(self) -> None:
        sim = self.sim
        if self.arm_motion and self.steps % COMMAND_STEPS == 0:
            self._command()
        sim.step()
        self.steps += 1
        now = sim.time
        for topic, every in RATE_STEPS.items():
            if (self.steps - 1) % every or sim.topic_dropped(topic):  # every topic at the first step
                continue
            deliver = self._reading(topic, now)
            delay = sim.topic_delay(topic)
            if delay > 0.0:
                heapq.heappush(self._queue, (now + delay, next(self._order), deliver))
            else:
                self.reports += deliver(now)
        while self._queue and self._queue[0][0] <= now + 1e-9:
            self.reports += heapq.heappop(self._queue)[2](now)
        self.reports += self.detectors.check(now, now)

    def run_for(self, seconds: float) -> None:
        for _ in range(round(seconds / self.sim.timestep)):
            self.step()


def make_feed(seed: int = 1, noise: float = 0.01, arm_motion: bool = True, settle: float = SETTLE,
              config: DetectorConfig | None = None, battery_charge: float = 0.9) -> SimFeed:
    """A standing G1 in NORMAL with encoder noise, its detectors, after ``settle`` s of motion."""
    sim = HumanoidSim(SimConfig(require_guard_alive=False, seed=seed,
                                battery=BatteryParameters(initial_charge_fraction=battery_charge)))
    sim.set_actuation_mode(ActuationMode.NORMAL)
    if noise:
        sim.inject_fault("encoder_noise", 0.0, 0.0, {"stddev": noise})
    feed = SimFeed(sim, AnomalyDetectors(ENVELOPE, config or DetectorConfig(), now=sim.time), arm_motion)
    feed.run_for(settle)
    return feed


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: str
    parameters: dict[str, Any]
    duration: float                  # s, 0 = until cleared
    expect: str                      # the kind that must be raised
    subject: str | None              # its subject (None: any)
    run: float                       # s of sim time after the onset
    bound: float                     # s: largest accepted detection delay from onset (sim time)
    setup: dict[str, Any] = field(default_factory=dict)


AGES = ENVELOPE.input_max_age
SCENARIOS = (
    Scenario("push 80 N, 0.2 s", "push", {"force": [80.0, 0.0, 0.0]}, 0.2, "tilt", "", 1.0, 0.55),
    Scenario("push 80 N, 0.2 s: the fall", "push", {"force": [80.0, 0.0, 0.0]}, 0.2, "fall_under_way", "", 1.0,
             0.75),
    Scenario("trip forward", "trip", {}, 0.2, "fall_under_way", "", 0.6, 0.2),
    Scenario("trip left", "trip", {"direction": "left"}, 0.2, "fall_under_way", "", 0.8, 0.3),
    Scenario("stuck_joint during a reach", "stuck_joint", {"joint": "left_shoulder_yaw_joint"}, 0.0,
             "tracking_error", "left_shoulder_yaw_joint", 0.8, 0.6),
    Scenario("stuck_joint: the motor strains", "stuck_joint", {"joint": "left_shoulder_yaw_joint"}, 0.0,
             "effort_spike", "left_shoulder_yaw_joint", 0.5, 0.25),
    Scenario("encoder_spike 0.5 rad", "encoder_spike", {"joint": "left_knee_joint", "offset": 0.5}, 0.0,
             "encoder_jump", "left_knee_joint", 0.1, 0.0021),
    Scenario("encoder_noise 0.1 rad", "encoder_noise", {"joint": "left_elbow_joint", "stddev": 0.1}, 0.0,
             "encoder_noise", "left_elbow_joint", 1.0, 0.6),
    Scenario("encoder_nan", "encoder_nan", {"joint": "right_knee_joint"}, 0.0, "input_invalid", "joint_states",
             0.1, 0.0021),
    *(Scenario(f"sensor_dropout {topic}", "sensor_dropout", {"topic": topic}, 0.0, "input_stale", topic,
               age + RATE_STEPS[topic] * 0.002 + 0.01, age + RATE_STEPS[topic] * 0.002 + 0.0021)
      for topic, age in AGES.items()),
    *(Scenario(f"message_delay {topic} {2 * age:g} s", "message_delay", {"topic": topic, "delay": 2 * age}, 0.0,
               "input_late", topic, 2 * age + 2 * RATE_STEPS[topic] * 0.002 + 0.01,
               2 * age + 2 * RATE_STEPS[topic] * 0.002 + 0.0021)
      for topic, age in AGES.items() if topic != "battery"),   # battery (1 Hz, 6 s): in the bench only
    Scenario("overheat 20 °C/s", "overheat", {"joint": "left_knee_joint", "rate": 20.0}, 0.0,
             "actuator_temperature", "left_knee_joint", 3.8, 3.6),
    Scenario("battery_drain 50 kW", "battery_drain", {"power": 50000.0}, 0.0, "battery_minimum", "", 8.5, 8.0,
             {"battery_charge": 0.4}),
    Scenario("sensor_dropout hw/joint_command during a reach", "sensor_dropout", {"topic": "hw/joint_command"}, 0.0,
             "tracking_error", "left_shoulder_yaw_joint", 0.8, 0.6),
    Scenario("rogue_publisher (physical effect)", "rogue_publisher", {}, 0.0, "effort_spike",
             "left_shoulder_pitch_joint", 0.3, 0.15),
)


@dataclass
class Outcome:
    scenario: Scenario
    feed: SimFeed
    onset: float
    detected: AnomalyReport | None          # the first raise of the expected kind (and subject) after onset
    first_stop: AnomalyReport | None        # the first raise at ERROR or above after onset

    @property
    def delay(self) -> float:
        return self.detected.time - self.onset if self.detected else math.nan


def run_scenario(scenario: Scenario, seed: int = 1, on_detection: Callable[[SimFeed, AnomalyReport], None] | None
                 = None, after: float = 0.0) -> Outcome:
    """Run one fault; ``on_detection`` is called once with the first expected report (e.g. to act on it),
    and the run continues ``after`` s beyond the scenario's own time."""
    feed = make_feed(seed=seed, **scenario.setup)
    sim = feed.sim
    onset = sim.time + LEAD
    if scenario.fault == "stuck_joint" or "hw/joint_command" in scenario.name:
        joint = scenario.parameters.get("joint", "left_shoulder_yaw_joint")
        feed.ramp = (feed.names.index(joint), 0.5, onset)   # a reach at 0.5 rad/s from the onset
    result = sim.inject_fault(scenario.fault, LEAD, scenario.duration, scenario.parameters)
    assert result.success, result.message
    detected: AnomalyReport | None = None
    seen = 0
    for _ in range(round((LEAD + scenario.run + after) / sim.timestep)):
        feed.step()
        if detected is None:
            for report in feed.reports[seen:]:
                if (report.active and report.kind == scenario.expect and report.time >= onset - 1e-9
                        and (scenario.subject is None or report.subject == scenario.subject)):
                    detected = report
                    if on_detection is not None:
                        on_detection(feed, report)
                    break
            seen = len(feed.reports)
    first_stop = next((r for r in feed.reports if r.active and r.severity >= Severity.ERROR
                       and r.time >= onset - 1e-9), None)
    return Outcome(scenario, feed, onset, detected, first_stop)


# -- tests ----------------------------------------------------------------------------------------


@pytest.mark.clause("6.7b")
def test_nominal_standing_with_arm_motion_and_encoder_noise_raises_nothing() -> None:
    """20 s of standing with slow arm motion inside the envelope and 0.01 rad encoder noise: no report above
    INFO (and none at all)."""
    feed = make_feed(seed=3, noise=0.01, settle=0.0)
    feed.run_for(20.0)
    assert [r for r in feed.reports if r.severity > Severity.INFO] == []
    assert feed.reports == [] and feed.detectors.active() == []
    assert feed.sim.ground_truth().fallen is False
    tracking = dict(next(s for s in feed.detectors.statuses() if s.detector == "tracking").values)
    assert int(tracking["commands"]) == 2000                           # the reference was really checked


@pytest.mark.clause("6.7b")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_each_fault_raises_its_anomaly_in_time(scenario: Scenario) -> None:
    outcome = run_scenario(scenario)
    feed = outcome.feed
    before = [r for r in feed.reports if r.time < outcome.onset - 1e-9]
    assert before == [], "reports before the fault's onset"
    assert outcome.detected is not None, (
        f"{scenario.expect} not raised; got {[(r.kind, r.subject, r.active) for r in feed.reports][:12]}")
    assert 0.0 <= outcome.delay <= scenario.bound, f"detected after {outcome.delay:.3f} s"
    ground_truth = feed.sim.recorder
    if scenario.expect == "fall_under_way":
        # detected while the robot is still falling: before the pelvis is down or the torso past 1 rad
        assert ground_truth.first_fall_time is not None and outcome.detected.time < ground_truth.first_fall_time
        assert outcome.detected.severity is Severity.CRITICAL
    # every report of the run keeps the edge rules
    state: dict[tuple[str, str], Severity | None] = {}
    for report in feed.reports:
        key = (report.kind, report.subject)
        assert (state.get(key) is not None) if not report.active else state.get(key) != report.severity
        state[key] = report.severity if report.active else None


def test_the_rogue_publisher_is_seen_in_the_graph() -> None:
    """The simulator's rogue node publishes on hw/joint_command beside the guard: what the guard node passes
    from ``get_publishers_info_by_topic`` to the intrusion check."""
    check = IntrusionCheck([f"{NAMESPACE}/ftrobot_guard"], {}, namespace=NAMESPACE)
    graph = [Publisher("ftrobot_guard", NAMESPACE), Publisher("rogue_controller", NAMESPACE)]
    reports = check.publishers(1.0, f"{NAMESPACE}/hw/joint_command", graph)
    assert [(r.kind, r.severity) for r in reports] == [("rogue_hw_publisher", Severity.ERROR)]
