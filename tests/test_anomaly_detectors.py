"""Anomaly detectors on synthetic sensor streams: each kind raises where it should, clears with hysteresis,
never raises below its warning level, and bad input never raises an exception (hypothesis)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.anomaly_detectors import (
    DETECTORS,
    KIND_SEVERITY,
    AnomalyDetectors,
    AnomalyReport,
    DetectorConfig,
    DetectorStatus,
)
from ftrobot_guard.safety.envelope import INPUT_NAMES, Envelope, load_envelope
from ftrobot_guard.safety.response_policy import Severity
from ftrobot_guard.safety.supervisor import AnomalyEvent

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE: Envelope = load_envelope(ROOT / "config" / "envelope" / "g1.yaml")
NAMES = ENVELOPE.joints.names
N = len(NAMES)
POSE = np.clip(np.zeros(N), ENVELOPE.joints.soft_lower, ENVELOPE.joints.soft_upper)
UPRIGHT = (0.0, 0.0, 0.0, 1.0)
GRAVITY = (0.0, 0.0, 9.81)
DT = 0.002
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]
POSTURE = ENVELOPE.posture


def tilted(angle: float, about: str = "y") -> tuple[float, float, float, float]:
    """A quaternion (x, y, z, w) tilting the pelvis by ``angle`` about the world x or y axis."""
    s, c = math.sin(angle / 2.0), math.cos(angle / 2.0)
    return (s, 0.0, 0.0, c) if about == "x" else (0.0, s, 0.0, c)


class Stream:
    """Synthetic sensors at the simulator's rates (joint_states and imu 500 Hz, odom 100 Hz, temperatures
    10 Hz, battery 1 Hz) with check() at 500 Hz; stamps equal ``now``."""

    def __init__(self, detectors: AnomalyDetectors | None = None, t: float = 0.0) -> None:
        self.d = detectors or AnomalyDetectors(ENVELOPE, now=t)
        self.t = t
        self.k = 0
        self.reports: list[AnomalyReport] = []
        self.q = POSE.copy()
        self.dq = np.zeros(N)
        self.tau = np.ones(N)
        self.quaternion: Sequence[float] = UPRIGHT
        self.gyro: Sequence[float] = (0.0, 0.0, 0.0)
        self.accel: Sequence[float] = GRAVITY
        self.xy = (0.0, 0.0)
        self.z = math.nan
        self.temperatures = np.full(N, 40.0)
        self.battery = 0.8
        self.skip: set[str] = set()
        self.wall_offset = 0.0

    def step(self, count: int = 1) -> list[AnomalyReport]:
        new: list[AnomalyReport] = []
        for _ in range(count):
            self.t += DT
            self.k += 1
            t, d = self.t, self.d
            if "joint_states" not in self.skip:
                new += d.joint_states(t, t, NAMES, self.q, self.dq, self.tau)
            if "imu" not in self.skip:
                new += d.imu(t, t, self.quaternion, self.gyro, self.accel)
            if self.k % 5 == 0 and "odom" not in self.skip:
                new += d.odom(t, t, self.xy[0], self.xy[1], 0.0, 0.0, 0.0, 0.0, z=self.z)
            if self.k % 50 == 0 and "actuator_temperatures" not in self.skip:
                new += d.temperatures(t, t, NAMES, self.temperatures)
            if self.k % 500 == 0 and "battery" not in self.skip:
                new += d.battery(t, t, self.battery)
            new += d.check(t, t + self.wall_offset)
        self.reports += new
        return new

    def run(self, seconds: float) -> list[AnomalyReport]:
        return self.step(round(seconds / DT))


def kinds(reports: Sequence[AnomalyReport], active: bool | None = True) -> set[tuple[str, str]]:
    return {(r.kind, r.subject) for r in reports if active is None or r.active == active}


def edges_alternate(reports: Sequence[AnomalyReport]) -> None:
    """Per (kind, subject): a clear only after a raise, two raises in a row only with different severities."""
    state: dict[tuple[str, str], Severity | None] = {}
    for report in reports:
        key = (report.kind, report.subject)
        before = state.get(key)
        if report.active:
            assert before != report.severity, f"repeated raise {report}"
            state[key] = report.severity
        else:
            assert before is not None, f"clear without a raise {report}"
            assert report.severity == before
            state[key] = None


def check_report(report: AnomalyReport) -> None:
    assert report.kind in KIND_SEVERITY, report.kind
    assert report.detector in DETECTORS or report.detector == "intrusion"
    assert report.severity <= KIND_SEVERITY[report.kind]
    assert "\n" not in report.description and 0 < len(report.description) <= 200
    assert isinstance(report.value, float) and isinstance(report.limit, float)


# -- nominal ------------------------------------------------------------------------------------


def test_a_quiet_robot_raises_nothing_and_every_input_is_watched() -> None:
    stream = Stream()
    assert stream.run(10.0) == []
    assert stream.d.active() == []
    statuses = stream.d.statuses()
    assert [s.detector for s in statuses] == list(DETECTORS)
    assert all(isinstance(s, DetectorStatus) and s.level == 0 and s.message == "OK" for s in statuses)
    ages = dict(next(s for s in statuses if s.detector == "stale_input").values)
    assert set(ages) >= {f"{name} age" for name in INPUT_NAMES}


def test_reports_map_onto_the_supervisor_event() -> None:
    stream = Stream()
    stream.run(0.1)
    stream.skip.add("imu")
    report = next(r for r in stream.run(0.1) if r.kind == "input_stale")
    event = report.event()
    assert event == AnomalyEvent("input_stale", "imu", Severity.CRITICAL, True, source="detector:stale_input")


# -- joints ---------------------------------------------------------------------------------------


def test_joint_speed_warns_then_stops_and_clears_with_hysteresis() -> None:
    stream = Stream()
    stream.run(0.1)
    i = NAMES.index("left_elbow_joint")

    def speed(reports: list[AnomalyReport]) -> list[tuple[str, Severity, bool]]:
        return [(r.subject, r.severity, r.active) for r in reports if r.kind == "joint_speed"]

    stream.dq[i] = POSTURE.joint_speed.warn + 0.2   # (the sudden change itself is an acceleration spike)
    assert speed(stream.step(2)) == []               # held 4 ms before a raise
    assert speed(stream.run(0.01)) == [("left_elbow_joint", Severity.WARNING, True)]
    stream.dq[i] = POSTURE.joint_speed.limit + 0.5
    assert speed(stream.run(0.01)) == [("left_elbow_joint", Severity.ERROR, True)]
    stream.dq[i] = POSTURE.joint_speed.limit - 0.3  # below the limit, within its hysteresis: stays
    assert speed(stream.run(0.5)) == []
    stream.dq[i] = POSTURE.joint_speed.warn - 0.1  # within the warning's hysteresis: back to a warning
    assert speed(stream.run(0.2)) == [("left_elbow_joint", Severity.WARNING, True)]
    stream.dq[i] = 1.0
    assert speed(stream.run(0.2)) == [("left_elbow_joint", Severity.WARNING, False)]
    edges_alternate(stream.reports)


def test_a_legal_fast_start_is_not_a_collision_but_a_held_saturation_is() -> None:
    stream = Stream()
    i = NAMES.index("left_shoulder_pitch_joint")
    hard = ENVELOPE.joints.hard_effort[i]
    stream.tau[i] = 0.75 * hard                    # a 6 rad/s start draws ~0.72 x hard for ~40 ms
    assert stream.run(0.1) == []
    stream.tau[i] = hard
    assert stream.run(0.02) == []                  # shorter than the 30 ms hold
    stream.tau[i] = 0.5 * hard
    stream.run(0.05)
    stream.tau[i] = -hard
    raised = stream.run(0.05)
    assert kinds(raised) == {("effort_spike", "left_shoulder_pitch_joint")}
    assert raised[0].value == pytest.approx(hard) and raised[0].severity is Severity.ERROR


def test_an_acceleration_spike_warns() -> None:
    stream = Stream()
    stream.run(0.1)
    i = NAMES.index("right_elbow_joint")
    stream.dq[i] = 6.0                             # 6 rad/s in one 2 ms sample: 3000 rad/s², low-passed ~860
    assert stream.step(1) == []
    stream.dq[i] = -6.0                            # and back: ~1700 rad/s² low-passed, limit 1000
    raised = [r for r in stream.step(1) if r.kind == "joint_acceleration_spike"]
    assert [(r.subject, r.severity) for r in raised] == [("right_elbow_joint", Severity.WARNING)]
    assert raised[0].value > raised[0].limit == pytest.approx(10 * ENVELOPE.joints.acceleration[i])


def test_an_encoder_spike_is_caught_at_once_and_noise_never() -> None:
    rng = np.random.default_rng(7)
    stream = Stream()
    base = POSE.copy()
    for k in range(2500):                          # 5 s of 0.01 rad Gaussian noise on every joint
        stream.q = base + 0.01 * rng.standard_normal(N)
        assert stream.step(1) == [], k
    i = NAMES.index("left_knee_joint")
    stream.q = base.copy()
    stream.q[i] += 0.5
    raised = stream.step(1)
    assert [(r.kind, r.subject) for r in raised] == [("encoder_jump", "left_knee_joint")]
    assert raised[0].value == pytest.approx(0.5, abs=0.05)
    assert [(r.kind, r.active) for r in stream.run(0.6)] == [("encoder_jump", False)]  # 0.5 s without a jump


def test_moving_joints_do_not_look_like_jumps() -> None:
    stream = Stream()
    for k in range(1000):                          # every joint moving at 6 rad/s, reversing every 0.2 s
        speed = 6.0 if (k // 100) % 2 == 0 else -6.0
        stream.dq[:] = speed
        stream.q = stream.q + speed * DT
        stream.step(1)
    assert not [r for r in stream.reports if r.kind in ("encoder_jump", "encoder_noise")]


def test_nan_encoders_are_invalid_input_until_valid_again() -> None:
    stream = Stream()
    stream.run(0.1)
    i = NAMES.index("right_knee_joint")
    stream.q[i] = math.nan
    raised = stream.step(1)
    assert [(r.kind, r.subject, r.severity) for r in raised] == [("input_invalid", "joint_states", Severity.CRITICAL)]
    assert "right_knee_joint" in raised[0].description
    assert stream.run(1.0) == []                   # no exception, no other kind, no repeat
    stream.q[i] = POSE[i]
    cleared = stream.step(5)
    assert [(r.kind, r.active) for r in cleared] == [("input_invalid", False)]


@pytest.mark.parametrize(("names", "positions", "velocities", "efforts", "fragment"), [
    (NAMES[:-1], POSE[:-1], (), (), "missing joints: right_wrist_yaw_joint"),
    ((*NAMES, "left_hand_thumb_0_joint"), [*POSE, 0.0], (), (), "unknown joint names"),
    ((*NAMES[:-1], NAMES[0]), POSE, (), (), "repeated joint names"),
    (NAMES, POSE[:-1], (), (), "28 positions, 0 velocities, 0 efforts for 29 names"),
    (NAMES, POSE, [0.0] * 3, (), "3 velocities"),
    (NAMES, ["a"] * N, (), (), "positions"),
    (NAMES, None, None, None, "positions"),
    ([1] * N, POSE, (), (), "not a string"),
    (None, POSE, (), (), "not a list"),
])
def test_malformed_joint_states_say_why(names: Any, positions: Any, velocities: Any, efforts: Any,
                                         fragment: str) -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    reports = d.joint_states(0.01, 0.01, names, positions, velocities, efforts)
    assert [(r.kind, r.subject) for r in reports] == [("input_invalid", "joint_states")]
    assert fragment in reports[0].description


def test_joint_states_in_any_order_and_without_velocities_are_understood() -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    order = list(reversed(range(N)))
    names = [NAMES[i] for i in order]
    t = 0.0
    for _ in range(50):
        t += DT
        assert d.joint_states(t, t, names, POSE[order], [], None) == []
    moved = POSE.copy()
    moved[NAMES.index("waist_yaw_joint")] += 0.5
    t += DT
    reports = d.joint_states(t, t, names, moved[order], (), ())
    assert [(r.kind, r.subject) for r in reports] == [("encoder_jump", "waist_yaw_joint")]


def test_unknown_joints_may_be_ignored_by_configuration() -> None:
    d = AnomalyDetectors(ENVELOPE, DetectorConfig(ignore_unknown_joints=True), now=0.0)
    assert d.joint_states(0.002, 0.002, (*NAMES, "left_hand_thumb_0_joint"), [*POSE, 0.3], (), ()) == []


# -- tracking ---------------------------------------------------------------------------------------


def test_a_joint_that_does_not_follow_its_command_is_a_tracking_error() -> None:
    stream = Stream()
    i = NAMES.index("left_shoulder_yaw_joint")
    assert stream.d.command_forwarded(stream.t, np.array([i]), np.array([POSE[i] + 0.15])) == []
    assert stream.run(0.5) == []                   # 0.15 rad: inside the 0.2 rad limit
    stream.d.command_forwarded(stream.t, np.array([i]), np.array([POSE[i] + 0.3]))
    assert stream.run(0.09) == []                  # not yet held 0.1 s
    raised = stream.run(0.02)
    assert [(r.kind, r.subject, r.severity) for r in raised] == [("tracking_error", "left_shoulder_yaw_joint",
                                                                   Severity.ERROR)]
    assert raised[0].value == pytest.approx(0.3)
    # a joint moving fast may lag more: 0.2 rad + 0.05 s x 6 rad/s
    stream.dq[i] = 6.0
    assert [(r.kind, r.active, r.limit) for r in stream.run(0.3)] == [("tracking_error", False, pytest.approx(0.5))]
    stream.dq[i] = 0.0
    assert [(r.kind, r.active) for r in stream.run(0.2)] == [("tracking_error", True)]
    # the gate stops forwarding: no tracking check, and the error is cleared at the next check
    stream.d.tracking_paused(True)
    cleared = stream.step(1)
    assert [(r.kind, r.active) for r in cleared] == [("tracking_error", False)]
    assert stream.run(0.5) == []
    stream.d.tracking_paused(False)               # resumed: waits for the next forwarded command
    assert stream.run(0.5) == []


def test_malformed_forwarded_commands_are_ignored_and_counted() -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    for indices, positions in [(np.array([N]), np.array([0.0])), (np.array([0, 1]), np.array([0.0])),
                               (np.array([0.5]), np.array([0.0])), (np.array([0]), np.array([math.nan])),
                               ("x", None)]:
        assert d.command_forwarded(0.1, indices, positions) == []  # type: ignore[arg-type]
    values = dict(next(s for s in d.statuses() if s.detector == "tracking").values)
    assert values["malformed commands"] == "5" and values["commands"] == "0"


# -- posture and falls ----------------------------------------------------------------------------


def test_tilt_warns_and_stops_but_a_still_tilt_is_no_fall() -> None:
    stream = Stream()
    stream.quaternion = tilted(0.35)
    raised = stream.run(0.05)
    assert [(r.kind, r.severity) for r in raised] == [("tilt", Severity.WARNING)]
    assert raised[0].value == pytest.approx(0.35)
    stream.quaternion = tilted(0.6, "x")
    assert [(r.kind, r.severity) for r in stream.run(0.05)] == [("tilt", Severity.ERROR)]
    assert stream.run(1.0) == []                   # no rotation: no fall under way
    stream.quaternion = UPRIGHT
    assert [(r.kind, r.active) for r in stream.run(0.6)] == [("tilt", False)]
    edges_alternate(stream.reports)


@pytest.mark.parametrize(("tilt", "rate", "falls"), [
    (0.55, 0.5, True),     # past the limit, turning outward
    (0.55, -0.5, False),   # past the limit, coming back
    (0.35, 2.0, True),     # past the warning, fast
    (0.35, 1.0, False),
    (0.2, 5.0, False),     # below the warning: angular_rate's business
])
def test_a_fall_under_way_needs_tilt_and_outward_tilt_rate(tilt: float, rate: float, falls: bool) -> None:
    stream = Stream()
    stream.quaternion = tilted(tilt)               # tilted about y: turning further is a positive y rate
    stream.gyro = (0.0, rate, 0.0)
    reports = stream.run(0.05)
    assert (("fall_under_way", "") in kinds(reports)) == falls
    if falls:
        fall = next(r for r in reports if r.kind == "fall_under_way")
        assert fall.severity is Severity.CRITICAL and fall.time - DT <= 0.014


def test_the_tilt_rate_is_measured_about_any_horizontal_axis() -> None:
    for about, gyro in (("x", (0.6, 0.0, 0.0)), ("y", (0.0, 0.6, 0.0))):
        stream = Stream()
        stream.quaternion = tilted(0.55, about)
        stream.gyro = gyro
        stream.run(0.02)
        assert stream.d.statuses()[DETECTORS.index("fall")].values[2][1] == "0.600 rad/s"
        assert ("fall_under_way", "") in kinds(stream.reports)


def test_free_fall_and_a_dropping_pelvis_are_falls() -> None:
    stream = Stream()
    stream.accel = (0.0, 0.0, 1.0)
    assert stream.run(0.04) == []                  # held 50 ms
    assert kinds(stream.run(0.02)) == {("fall_under_way", "")}
    stream = Stream()
    stream.z = 0.79
    stream.run(0.1)
    for _ in range(10):
        stream.z -= 1.2 * 0.01                     # 1.2 m/s down, odom at 100 Hz
        stream.run(0.01)
    assert ("fall_under_way", "") in kinds(stream.reports)


def test_lowering_by_the_guard_suspends_tilt_raises() -> None:
    stream = Stream()
    stream.d.posture_change_expected(True)
    stream.quaternion = tilted(1.2)
    stream.gyro = (0.0, 0.5, 0.0)
    assert stream.run(0.5) == []
    stream.d.posture_change_expected(False)
    assert {"tilt", "fall_under_way"} <= {r.kind for r in stream.run(0.05)}


def test_angular_rate_warns_and_stops() -> None:
    stream = Stream()
    stream.gyro = (0.0, 0.0, POSTURE.angular_rate.limit + 0.5)   # yaw: no tilt, no fall
    raised = stream.run(0.05)
    assert [(r.kind, r.severity) for r in raised] == [("angular_rate", Severity.ERROR)]
    stream.gyro = (0.0, 0.0, 0.1)
    assert [(r.kind, r.active) for r in stream.run(0.6)] == [("angular_rate", False)]


@pytest.mark.parametrize(("quaternion", "gyro", "accel"), [
    ((0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), GRAVITY),          # no orientation
    ((0.0, 0.0, 0.0, 2.0), (0.0, 0.0, 0.0), GRAVITY),
    (UPRIGHT, (0.0, math.nan, 0.0), GRAVITY),
    (UPRIGHT, (0.0, 0.0), GRAVITY),
    (UPRIGHT, (0.0, 0.0, 0.0), ("a", 0.0, 9.8)),
    (None, None, None),
])
def test_malformed_imu_is_invalid_input(quaternion: Any, gyro: Any, accel: Any) -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    reports = d.imu(0.01, 0.01, quaternion, gyro, accel)
    assert [(r.kind, r.subject, r.severity) for r in reports] == [("input_invalid", "imu", Severity.CRITICAL)]


# -- thermal, battery, geofence ---------------------------------------------------------------------


def test_actuator_temperature_warns_then_stops_per_joint() -> None:
    stream = Stream()
    knee = NAMES.index("left_knee_joint")
    limits = ENVELOPE.actuator_temperature
    stream.temperatures[knee] = limits.warn + 1.0
    stream.run(0.2)
    assert kinds(stream.run(0.2)) == {("actuator_temperature", "left_knee_joint")}
    stream.temperatures[knee] = limits.limit + 1.0
    assert [(r.severity, r.active) for r in stream.run(0.4)] == [(Severity.ERROR, True)]
    stream.temperatures[knee] = limits.warn - 1.0  # within the 3 °C hysteresis of warn: the limit clears only
    assert [(r.severity, r.active) for r in stream.run(3.0)] == [(Severity.WARNING, True)]
    stream.temperatures[knee] = 40.0
    assert [(r.severity, r.active) for r in stream.run(3.0)] == [(Severity.WARNING, False)]
    edges_alternate(stream.reports)


def test_battery_low_warns_and_battery_minimum_powers_down() -> None:
    stream = Stream()
    stream.battery = ENVELOPE.battery.warn - 0.01
    stream.run(2.0)
    assert kinds(stream.run(1.0)) == {("battery_low", "")}
    stream.battery = ENVELOPE.battery.minimum - 0.01
    raised = stream.run(3.0)
    assert [(r.kind, r.severity) for r in raised] == [("battery_minimum", Severity.CRITICAL)]
    stream.battery = 0.9
    assert {(r.kind, r.active) for r in stream.run(7.0)} == {("battery_low", False), ("battery_minimum", False)}


@pytest.mark.parametrize("value", [55.0, -0.5, math.nan, "full", None])
def test_a_battery_level_that_is_no_fraction_is_refused(value: Any) -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    reports = d.battery(0.1, 0.1, value)
    assert [(r.kind, r.subject, r.severity) for r in reports] == [("input_invalid", "battery", Severity.ERROR)]
    if value == 55.0:
        assert "not a percentage" in reports[0].description


@pytest.mark.clause("5.2b")
def test_geofence_margin_warns_outside_stops_and_keep_out_counts() -> None:
    fence = ENVELOPE.geofence
    stream = Stream()
    stream.xy = (10.0 - fence.margin / 2, 0.0)      # inside the hall, within the margin
    raised = stream.run(0.1)
    assert [(r.kind, r.severity) for r in raised] == [("geofence_breach", Severity.WARNING)]
    stream.xy = (10.5, 0.0)                          # outside the hall
    assert [(r.kind, r.severity) for r in stream.run(0.1)] == [("geofence_breach", Severity.ERROR)]
    stream.xy = (0.0, 0.0)
    assert [(r.kind, r.active) for r in stream.run(1.2)] == [("geofence_breach", False)]
    stream.xy = (7.5, 7.5)                           # in the stairwell
    assert [(r.kind, r.severity) for r in stream.run(0.1)] == [("geofence_breach", Severity.ERROR)]


# -- inputs, stamps, commands, clock ------------------------------------------------------------------


def test_every_input_has_its_own_watchdog_and_severity() -> None:
    stream = Stream()
    stream.run(1.0)
    for name in INPUT_NAMES:
        stream.skip = {name}
        max_age = ENVELOPE.input_max_age[name]
        # one period after a message at most, plus the age limit and one check
        reports = stream.run(max_age + (1.0 if name == "battery" else 0.1) + 0.004)
        raised = [r for r in reports if r.active]
        assert [(r.kind, r.subject) for r in raised] == [("input_stale", name)], name
        severity = Severity.CRITICAL if name in ("joint_states", "imu") else Severity.ERROR
        assert raised[0].severity is severity and raised[0].limit == max_age
        stream.skip = set()
        cleared = stream.run(3.5 if name == "battery" else 0.5)
        assert [(r.kind, r.active) for r in cleared] == [("input_stale", False)], name


def test_an_input_never_received_is_stale_after_the_startup_grace() -> None:
    d = AnomalyDetectors(ENVELOPE, DetectorConfig(startup_grace=2.0), now=100.0)
    assert d.check(101.9, 0.0) == []
    assert {r.subject for r in d.check(102.01, 0.11)} == set(INPUT_NAMES) - {"battery"}  # battery: its 3 s age
    raised = d.check(103.05, 1.15)
    assert {r.subject for r in raised} == {"battery"}
    assert all(r.kind == "input_stale" and "since start" in r.description for r in raised)


def test_late_and_future_stamps() -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    quiet = [d.imu(t, t - 0.01, UPRIGHT, (0, 0, 0), GRAVITY) for t in (0.002, 0.004, 0.006)]
    assert quiet == [[], [], []]
    lag = 1.6 * ENVELOPE.input_max_age["imu"]
    assert d.imu(0.008, 0.008 - lag, UPRIGHT, (0, 0, 0), GRAVITY) == []     # one late message is tolerated
    late = d.imu(0.010, 0.010 - lag, UPRIGHT, (0, 0, 0), GRAVITY)
    assert [(r.kind, r.subject, r.severity) for r in late] == [("input_late", "imu", Severity.CRITICAL)]
    assert late[0].value == pytest.approx(lag)
    future = [r for t in (0.012, 0.014) for r in d.odom(t, t + 1.0, 0, 0, 0, 0, 0, 0)]
    assert [(r.kind, r.subject) for r in future] == [("stamp_future", "odom")]
    invalid = d.battery(0.02, math.inf, 0.9)
    assert [(r.kind, r.subject) for r in invalid] == [("input_invalid", "battery")]


def test_a_command_flood_is_detected_and_clears() -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    topic = "/futian/robot01/guard/in/joint_command"
    reports = [r for k in range(250) for r in d.command_received(k * 0.002, topic)]  # 500 Hz: fine
    assert reports == []
    jittered = [r for k in range(500) for r in d.command_received(0.5 + k * 0.001 - (k % 7) * 0.0004, topic)]
    assert jittered == []  # a 1 kHz controller with scheduling jitter is no flood
    flood = [r for k in range(400) for r in d.command_received(1.0 + k * 0.0004, topic)]  # 2500 Hz
    assert [(r.kind, r.subject, r.severity) for r in flood] == [("command_flood", topic, Severity.ERROR)]
    assert flood[0].limit == 1500.0 and flood[0].value > 1500.0
    cleared = d.check(1.5, 1.5)
    assert [(r.kind, r.active) for r in cleared if r.kind == "command_flood"] == [("command_flood", False)]
    task = "/futian/robot01/guard/in/task_request"
    burst = [r for k in range(10) for r in d.command_received(2.5 + k * 0.01, task)]
    assert [(r.kind, r.subject) for r in burst] == [("command_flood", task)]   # 20/s limit for tasks


def test_clock_jumps_are_detected_and_do_not_fake_stale_inputs() -> None:
    stream = Stream()
    stream.run(0.5)
    wall = stream.t
    # the node clock jumps 10 s ahead between two checks while 2 ms of wall time pass
    stream.t += 10.0
    jump = stream.d.check(stream.t, wall + DT)
    assert [(r.kind, r.severity) for r in jump] == [("clock_jump", Severity.ERROR)]
    assert jump[0].value == pytest.approx(10.0, abs=0.01)
    stream.wall_offset = wall + DT - stream.t          # the wall clock carries on from before the jump
    reports = stream.run(0.9)
    assert reports == []                               # no input_stale: the watchdogs measured real time
    assert [(r.kind, r.active) for r in stream.run(0.2)] == [("clock_jump", False)]   # 1 s of wall time
    back = stream.d.check(stream.t - 1.0, stream.t + stream.wall_offset + DT)
    assert [(r.kind, r.value) for r in back] == [("clock_jump", pytest.approx(-1.0, abs=0.01))]


def test_a_clock_without_time_yet_is_no_jump_and_its_stamps_are_not_judged() -> None:
    """ROS sim time reads 0 until the first /clock while the simulator already stamps with its time."""
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    for k in range(5):
        assert d.imu(0.0, 12.0 + k * DT, UPRIGHT, (0, 0, 0), GRAVITY) == []   # not "12 s in the future"
        assert d.check(0.0, k * DT) == []
    assert d.check(12.3, 5 * DT) == []                                      # the first /clock: no jump
    assert d.imu(12.302, 12.302, UPRIGHT, (0, 0, 0), GRAVITY) == []
    assert d.check(12.302, 6 * DT) == []                                    # and no stale imu
    assert [r.kind for r in d.check(20.0, 7 * DT)] == ["clock_jump"]        # a real jump still counts


def test_a_bad_time_from_the_caller_is_a_detector_fault_not_an_exception() -> None:
    d = AnomalyDetectors(ENVELOPE, now=0.0)
    reports = d.check(math.nan, 0.0)
    assert [(r.kind, r.subject, r.severity) for r in reports] == [("detector_fault", "check", Severity.ERROR)]
    assert [(r.kind, r.active) for r in d.check(0.002, 0.002)] == [("detector_fault", False)]


def test_statuses_follow_the_active_anomalies() -> None:
    stream = Stream()
    stream.quaternion = tilted(0.35)
    stream.run(0.1)
    posture = next(s for s in stream.d.statuses() if s.detector == "posture")
    assert posture.level == 1 and posture.message.startswith("tilt")
    stream.quaternion = tilted(0.6)
    stream.run(0.1)
    posture = next(s for s in stream.d.statuses() if s.detector == "posture")
    assert posture.level == 2 and dict(posture.values)["active"] == "1"


@pytest.mark.parametrize("change", [
    {"tracking_error": math.nan}, {"tracking_hold": -1.0}, {"stale_clear_messages": 0},
    {"stale_clear_messages": 1.5}, {"critical_inputs": frozenset({"lidar"})},
    {"command_rate_limits": {"guard/in/cmd_vel": 0.0}}, {"command_rate_window": 0.0},
])
def test_detector_config_refuses_nonsense(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="detector config"):
        DetectorConfig(**change)


# -- properties ---------------------------------------------------------------------------------------

_junk = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**30, 10**30), st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40),
    st.lists(st.one_of(st.none(), st.text(max_size=3), st.floats()), max_size=40),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=3),
    st.builds(lambda n, v: [v] * n, st.sampled_from([3, 4, N, N + 1]), st.floats(allow_nan=True, allow_infinity=True)),
)
_names = st.one_of(st.just(NAMES), st.lists(st.sampled_from([*NAMES, "x", ""]), max_size=31), _junk)
_call = st.one_of(
    st.tuples(st.just("joint_states"), _junk, _names, _junk, _junk, _junk),
    st.tuples(st.just("imu"), _junk, _junk, _junk, _junk),
    st.tuples(st.just("odom"), _junk, _junk, _junk, _junk, _junk, _junk, _junk, _junk),
    st.tuples(st.just("temperatures"), _junk, _names, _junk),
    st.tuples(st.just("battery"), _junk, _junk),
    st.tuples(st.just("command_forwarded"), _junk, _junk),
    st.tuples(st.just("command_received"), _junk),
    st.tuples(st.just("check"), _junk),
)


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(st.lists(_call, min_size=1, max_size=12), st.floats(0.0, 100.0))
def test_no_input_ever_raises_an_exception(calls: list[tuple[Any, ...]], start: float) -> None:
    d = AnomalyDetectors(ENVELOPE, now=start)
    reports: list[AnomalyReport] = []
    now = start
    for name, *arguments in calls:
        now += DT
        reports += getattr(d, name)(now, *arguments)
        d.tracking_paused(bool(len(reports) % 2))
        d.posture_change_expected(False)
    reports += d.check(now + 1.0, now + 1.0)
    for report in reports:
        check_report(report)
        assert report.kind != "detector_fault", report.description  # bad input is input_invalid, not a bug
    edges_alternate(reports)
    d.statuses()


_fraction = st.floats(0.0, 0.999)


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW)
@given(speed=st.lists(st.floats(0.0, 0.999), min_size=N, max_size=N), tilt=_fraction, rate=_fraction,
       temperature=_fraction, battery=_fraction, x=st.floats(-1.0, 1.0), y=st.floats(-1.0, 1.0),
       noise=st.floats(0.0, 0.01), seed=st.integers(0, 2**32 - 1))
def test_values_below_every_warning_never_raise(speed: list[float], tilt: float, rate: float, temperature: float,
                                               battery: float, x: float, y: float, noise: float, seed: int) -> None:
    """Fractions of each warning level (battery: above its warning), with encoder noise up to 0.01 rad."""
    rng = np.random.default_rng(seed)
    stream = Stream()
    stream.dq = np.array(speed) * POSTURE.joint_speed.warn * np.sign(rng.standard_normal(N))
    stream.quaternion = tilted(tilt * POSTURE.tilt.warn, "x")
    stream.gyro = tuple(rng.dirichlet(np.ones(3)) ** 0.5 * rate * POSTURE.angular_rate.warn)
    stream.temperatures = np.full(N, temperature * ENVELOPE.actuator_temperature.warn)
    stream.battery = ENVELOPE.battery.warn + (1.0 - ENVELOPE.battery.warn) * (1.0 - battery) + 1e-9
    fence = ENVELOPE.geofence
    stream.xy = (x * (10.0 - fence.margin - 0.01), y * (5.0 - fence.margin))
    q = POSE.copy()
    for _ in range(600):
        q = q + stream.dq * DT
        stream.q = q + noise * rng.standard_normal(N)
        stream.step(1)
    assert [r for r in stream.reports if r.severity > Severity.INFO] == []


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(st.lists(st.tuples(st.sampled_from(["speed", "tilt", "rate", "temperature", "battery", "fence", "gap"]),
                          st.floats(0.0, 2.0), st.integers(1, 300)), min_size=1, max_size=25))
def test_reports_alternate_raise_and_clear(steps: list[tuple[str, float, int]]) -> None:
    """Random excursions around every limit: per (kind, subject) a clear follows a raise, raises change
    severity, and active() is exactly the raises not cleared yet."""
    stream = Stream()
    for what, level, count in steps:
        stream.dq[:] = 0.0
        stream.quaternion, stream.gyro, stream.skip = UPRIGHT, (0.0, 0.0, 0.0), set()
        if what == "speed":
            stream.dq[3] = level * POSTURE.joint_speed.limit
        elif what == "tilt":
            stream.quaternion = tilted(level * POSTURE.tilt.limit)
        elif what == "rate":
            stream.gyro = (0.0, 0.0, level * POSTURE.angular_rate.limit)
        elif what == "temperature":
            stream.temperatures[5] = 25.0 + level * (ENVELOPE.actuator_temperature.limit - 25.0)
        elif what == "battery":
            stream.battery = level * ENVELOPE.battery.warn
        elif what == "fence":
            stream.xy = (level * 10.0, 0.0)
        else:
            stream.skip = {INPUT_NAMES[count % len(INPUT_NAMES)]}
        stream.step(count)
    edges_alternate(stream.reports)
    open_: dict[tuple[str, str], AnomalyReport] = {}
    for report in stream.reports:
        check_report(report)
        if report.active:
            open_[(report.kind, report.subject)] = report
        else:
            open_.pop((report.kind, report.subject), None)
    assert stream.d.active() == [open_[key] for key in sorted(open_)]


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(joint=st.integers(0, N - 1), offset=st.floats(0.5, 3.0), sign=st.sampled_from([-1.0, 1.0]),
       speed=st.floats(-6.0, 6.0), noise=st.floats(0.0, 0.01), seed=st.integers(0, 2**32 - 1))
def test_an_encoder_spike_is_always_caught_and_smooth_noisy_motion_never(
        joint: int, offset: float, sign: float, speed: float, noise: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    stream = Stream()
    q = POSE.copy()
    stream.dq[:] = speed
    for _ in range(250):
        q = q + speed * DT
        stream.q = q + noise * rng.standard_normal(N)
        stream.step(1)
    assert [r for r in stream.reports if r.kind.startswith("encoder")] == []
    q = q + speed * DT
    stream.q = q.copy()
    stream.q[joint] += sign * offset
    raised = [r for r in stream.step(1) if r.kind == "encoder_jump"]
    assert [r.subject for r in raised] == [NAMES[joint]]


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(st.sampled_from(INPUT_NAMES),
       st.lists(st.one_of(st.floats(0.0, 0.97), st.floats(1.03, 2.0)), min_size=5, max_size=40))
def test_the_watchdog_fires_exactly_when_a_gap_exceeds_the_age_limit(name: str, gaps: list[float]) -> None:
    max_age = ENVELOPE.input_max_age[name]
    d = AnomalyDetectors(ENVELOPE, DetectorConfig(startup_grace=1000.0), now=0.0)
    now, reports = 0.0, []
    call = {
        "joint_states": lambda t: d.joint_states(t, t, NAMES, POSE, (), ()),
        "imu": lambda t: d.imu(t, t, UPRIGHT, (0, 0, 0), GRAVITY),
        "odom": lambda t: d.odom(t, t, 0, 0, 0, 0, 0, 0),
        "actuator_temperatures": lambda t: d.temperatures(t, t, NAMES, np.full(N, 30.0)),
        "battery": lambda t: d.battery(t, t, 0.8),
    }[name]
    stale_expected = False
    reports += call(now)
    for fraction in gaps:
        gap = max_age * fraction
        # checks every 2 ms through the gap, then the message
        for k in range(1, int(gap / DT) + 1):
            reports += d.check(now + k * DT, now + k * DT)
        if gap / DT - int(gap / DT) > 1e-9 or int(gap / DT) == 0:
            reports += d.check(now + gap, now + gap)
        stale_expected |= gap > max_age
        now += gap
        reports += call(now)
    stale = [r for r in reports if r.kind == "input_stale" and r.active]
    assert bool(stale) == stale_expected
    edges_alternate(reports)
