"""Limit checks of the command gate: what is forwarded is always inside the envelope; NaN/Inf never passes.

``FTROBOT_LONG_PROPERTIES=1`` multiplies the generated cases (the issue's long mode: >= 1,000,000 commands
with FTROBOT_LONG_PROPERTIES=1000; CI runs the default).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.envelope import Envelope, MotionProfile, load_envelope
from ftrobot_guard.safety.envelope_checks import (
    Outcome,
    check_base_motion,
    check_base_velocity,
    check_geofence,
    check_joint_command,
    check_service_hours,
    check_task,
    geofence_clearance,
)

ROOT = Path(__file__).resolve().parents[1]
ENVELOPE: Envelope = load_envelope(ROOT / "config" / "envelope" / "g1.yaml")
JOINTS = ENVELOPE.joints
NAMES = JOINTS.names
SHANGHAI = ZoneInfo("Asia/Shanghai")
SCALE = max(1, int(os.environ.get("FTROBOT_LONG_PROPERTIES", "1")))
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


def stand() -> np.ndarray:
    return (JOINTS.soft_lower + JOINTS.soft_upper) / 2.0


# -- fixed cases ---------------------------------------------------------------------------------


def test_a_command_inside_the_envelope_is_forwarded_unchanged() -> None:
    previous = stand()
    names = ["left_elbow_joint", "right_knee_joint"]
    positions = [previous[JOINTS.index[n]] + 0.001 for n in names]
    decision = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, names, positions, [0.5, -0.5], [1.0, 2.0],
                                   previous=previous, elapsed=0.002)
    assert decision.outcome is Outcome.ACCEPTED and decision.reason == "" and decision.clamps == ()
    np.testing.assert_array_equal(decision.positions, positions)
    assert decision.names == tuple(names) and list(decision.indices) == [JOINTS.index[n] for n in names]


@pytest.mark.parametrize(("names", "positions", "velocities", "efforts", "fragment"), [
    ([], [], [], [], "no joint names"),
    (["left_elbow_joint", "left_elbow_joint"], [0.1, 0.1], [], [], "repeated joint names: left_elbow_joint"),
    (["elbow"], [0.1], [], [], "unknown joint names: 'elbow'"),
    (["left_elbow_joint"], [0.1, 0.2], [], [], "2 positions for 1 joint names"),
    (["left_elbow_joint"], [0.1], [1.0, 2.0], [], "2 velocities for 1 joint names"),
    (["left_elbow_joint"], [math.nan], [], [], "positions: NaN or Inf for left_elbow_joint"),
    (["left_elbow_joint"], [0.1], [math.inf], [], "velocities: NaN or Inf"),
    (["left_elbow_joint"], [0.1], [], [-math.inf], "effort: NaN or Inf"),
    (["left_elbow_joint"], ["x"], [], [], "not a list of numbers"),
    (["left_elbow_joint"], [3.0], [], [], "beyond its hard range"),
    (["left_elbow_joint"], [0.5], [40.0], [], "beyond its hard limit 37 rad/s"),
    (["left_wrist_yaw_joint"], [0.0], [], [5.5], "beyond its hard limit 5 N·m"),
    (["left_elbow_joint"], [1.9], [], [], "exceeds its rated 37 rad/s"),
    (["left_knee_joint"], [0.6], [], [], "exceeds its rated 20 rad/s"),  # 0.6 rad in 0.02 s: 30 rad/s
])
def test_refusals_say_why(names: list[str], positions: list[object], velocities: list[float], efforts: list[float],
                          fragment: str) -> None:
    previous = np.zeros(len(NAMES))
    previous[JOINTS.index["left_elbow_joint"]] = 0.5
    decision = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, names, positions, velocities,  # type: ignore[arg-type]
                                   efforts, previous=previous, elapsed=0.02)
    assert decision.outcome is Outcome.REFUSED and not decision.forwarded
    assert fragment in decision.reason and "\n" not in decision.reason


def test_stale_or_missing_anchor_and_time_are_refused() -> None:
    previous = stand()
    for elapsed in (0.0, -0.01, math.nan, math.inf):
        decision = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, ["left_elbow_joint"], [0.5],
                                       previous=previous, elapsed=elapsed)
        assert decision.outcome is Outcome.REFUSED and "no time elapsed" in decision.reason
    previous[JOINTS.index["left_elbow_joint"]] = math.nan
    decision = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, ["left_elbow_joint"], [0.5],
                                   previous=previous, elapsed=0.01)
    assert decision.outcome is Outcome.REFUSED and "re-anchor" in decision.reason


def test_soft_limit_step_and_effort_are_clamped_and_reported() -> None:
    previous = stand()
    knee = JOINTS.index["left_knee_joint"]
    previous[knee] = JOINTS.soft_upper[knee] - 0.001
    decision = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, ["left_knee_joint", "left_elbow_joint"],
                                   [JOINTS.hard_upper[knee], previous[JOINTS.index["left_elbow_joint"]] + 0.1],
                                   efforts=[130.0, 20.0], previous=previous, elapsed=0.01)
    assert decision.outcome is Outcome.CLAMPED and decision.forwarded
    assert decision.positions[0] == pytest.approx(JOINTS.soft_upper[knee])
    assert decision.positions[1] == pytest.approx(previous[JOINTS.index["left_elbow_joint"]] + 6.0 * 0.01)
    assert decision.efforts is not None and list(decision.efforts) == [pytest.approx(125.1), pytest.approx(15.0)]
    quantities = {(c.subject, c.quantity) for c in decision.clamps}
    assert {("left_knee_joint", "position"), ("left_elbow_joint", "step velocity"),
            ("left_knee_joint", "effort"), ("left_elbow_joint", "effort")} <= quantities
    assert "clamped to" in decision.reason and "\n" not in decision.reason


@pytest.mark.clause("5.2b")
def test_reduced_profile_limits_the_hand_speed() -> None:
    previous = stand()
    chain = ["waist_yaw_joint", "left_shoulder_pitch_joint", "left_elbow_joint"]
    elapsed = 0.01
    positions = [previous[JOINTS.index[n]] + 1.5 * elapsed for n in chain]  # 1.5 rad/s each: allowed per joint
    normal = check_joint_command(ENVELOPE, ENVELOPE.normal_profile, chain, positions, previous=previous,
                                 elapsed=elapsed)
    assert normal.outcome is Outcome.ACCEPTED
    reduced = check_joint_command(ENVELOPE, ENVELOPE.reduced_profile, chain, positions, previous=previous,
                                  elapsed=elapsed)
    assert reduced.outcome is Outcome.CLAMPED and any(c.quantity.startswith("hand speed") for c in reduced.clamps)
    arms = {c.name: c for c in ENVELOPE.reduced.hand_chains}["left_hand"]
    lever = dict(zip((NAMES[i] for i in arms.indices), arms.lever_arms, strict=True))
    bound = sum(abs(p - previous[JOINTS.index[n]]) / elapsed * lever[n] for n, p in zip(chain, reduced.positions,
                                                                                        strict=True))
    assert bound == pytest.approx(ENVELOPE.reduced.hand_speed)


def test_base_velocity() -> None:
    normal = ENVELOPE.normal_profile
    ok = check_base_velocity(ENVELOPE, normal, [0.3, 0.0, 0.0], [0.0, 0.0, 0.5])
    assert ok.outcome is Outcome.ACCEPTED and (ok.vx, ok.vy, ok.wz) == (0.3, 0.0, 0.5)
    fast = check_base_velocity(ENVELOPE, normal, [1.2, 0.9, 0.0], [0.0, 0.0, -2.0])
    assert fast.outcome is Outcome.CLAMPED and math.hypot(fast.vx, fast.vy) == pytest.approx(0.6)
    assert fast.vx / fast.vy == pytest.approx(1.2 / 0.9) and fast.wz == -1.0
    assert check_base_velocity(ENVELOPE, normal, [2.5, 0, 0], [0, 0, 0]).outcome is Outcome.REFUSED
    assert "only linear.x" in check_base_velocity(ENVELOPE, normal, [0, 0, 0.1], [0, 0, 0]).reason
    assert "NaN or Inf" in check_base_velocity(ENVELOPE, normal, [math.nan, 0, 0], [0, 0, 0]).reason
    reduced = check_base_velocity(ENVELOPE, ENVELOPE.reduced_profile, [0.5, 0, 0], [0, 0, 0])
    assert reduced.outcome is Outcome.CLAMPED and reduced.vx == pytest.approx(0.18)


@pytest.mark.clause("5.2b")
def test_geofence_cases() -> None:
    fence = ENVELOPE.geofence
    assert check_geofence(fence, 0.0, 0.0).allowed
    assert not check_geofence(fence, 9.8, 0.0).allowed                   # within the margin of the wall
    assert "outside the geofence" in check_geofence(fence, 11.0, 0.0).reason
    assert "stairwell" in check_geofence(fence, 7.5, 7.5).reason           # inside the keep-out
    assert check_geofence(fence, 5.5, 7.5).allowed                        # 0.5 m from the stairwell
    assert not check_geofence(fence, math.nan, 0.0).allowed
    assert check_base_motion(fence, 5.0, 7.5, 0.0, 1.0, 0.0, 0.5).allowed
    assert not check_base_motion(fence, 5.0, 7.5, 0.0, 1.0, 0.0, 1.0).allowed
    assert not check_base_motion(fence, 5.0, 7.5, math.pi / 2, 0.0, -1.0, 1.0).allowed  # yaw: base y is world -x
    assert check_base_motion(fence, 9.9, 0.0, 0.0, -0.5, 0.0, 0.5).allowed   # the way back in
    assert not check_base_motion(fence, 9.9, 0.0, 0.0, 0.5, 0.0, 0.5).allowed
    assert check_base_motion(fence, 50.0, 50.0, 0.0, 0.0, 0.0, 0.5).allowed  # standing still is never refused


@pytest.mark.clause("5.2a")
def test_service_hours_cases() -> None:
    hours = ENVELOPE.service_hours

    def at(*args: int) -> dt.datetime:
        return dt.datetime(*args, tzinfo=SHANGHAI)

    assert check_service_hours(hours, at(2026, 12, 7, 9, 0)).allowed             # Monday opening
    assert not check_service_hours(hours, at(2026, 12, 7, 8, 59, 59)).allowed
    assert not check_service_hours(hours, at(2026, 12, 7, 18, 0)).allowed        # closing is exclusive
    assert check_service_hours(hours, at(2026, 12, 12, 11, 59)).allowed          # Saturday morning
    assert not check_service_hours(hours, at(2026, 12, 13, 10, 0)).allowed       # Sunday
    utc = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)                           # 10:00 in Shanghai
    assert check_service_hours(hours, utc).allowed
    refused = check_service_hours(hours, dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC))
    assert "outside service hours: tue 2026-12-08 04:00 Asia/Shanghai" in refused.reason
    assert not check_service_hours(hours, dt.datetime(2026, 12, 7, 10, 0)).allowed   # naive: refused


@pytest.mark.clause("5.2a")
def test_task_cases() -> None:
    tasks = ENVELOPE.tasks
    assert check_task(tasks, "guide_visitor").allowed
    assert "may not direct or design" in check_task(tasks, "direct_robot_employee").reason
    assert "may not direct or design" in check_task(tasks, "coordinate_robots").reason
    assert "not in the envelope's task whitelist" in check_task(tasks, "dance").reason
    for bad in ("Guide", "guide\n", "", 7, None, "a" * 65):
        assert not check_task(tasks, bad).allowed


# -- properties ----------------------------------------------------------------------------------

Command = tuple[MotionProfile, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


def generate(rng: np.random.Generator, profile: MotionProfile, count: int, elapsed: float, with_velocities: bool,
             with_efforts: bool, allow_wild: bool) -> Command:
    """A joint command drawn with numpy (fast enough for the long mode).

    Positions mix uniform values around the hard range, small steps from the previous command, and the
    exact soft and hard limits and step limits (the edges where clamping and refusing meet).
    """
    idx = rng.choice(len(NAMES), size=count, replace=False)
    names = [NAMES[i] for i in idx]
    lo, hi = JOINTS.hard_lower, JOINTS.hard_upper
    edge = rng.uniform(0.0, 0.02, size=len(NAMES))
    previous_candidates = np.stack([
        rng.uniform(lo, hi), rng.uniform(JOINTS.soft_lower, JOINTS.soft_upper),
        np.where(rng.random(len(NAMES)) < 0.5, JOINTS.soft_lower + edge, JOINTS.soft_upper - edge),
        np.where(rng.random(len(NAMES)) < 0.5, lo + edge, hi - edge),
    ])
    previous = previous_candidates[rng.integers(0, 4, size=len(NAMES)), np.arange(len(NAMES))]
    rated_step, profile_step = JOINTS.hard_velocity[idx] * elapsed, profile.velocity[idx] * elapsed
    sign = rng.choice([-1.0, 1.0], size=count)
    candidates = np.stack([
        rng.uniform(lo[idx] - 0.2, hi[idx] + 0.2),
        np.clip(previous[idx] + rng.uniform(-1.0, 1.0, size=count) * profile_step, lo[idx], hi[idx]),
        np.clip(previous[idx] + sign * profile_step * rng.uniform(0.5, 3.0, size=count), lo[idx], hi[idx]),
        previous[idx] + sign * rated_step * (1.0 + rng.choice([-1e-9, 0.0, 1e-9], size=count)),
        np.where(sign > 0, JOINTS.soft_upper[idx], JOINTS.soft_lower[idx]),
        np.where(sign > 0, hi[idx], lo[idx]),
    ])
    tame = np.array([0.002, 0.6, 0.37, 0.008, 0.01, 0.01])
    weights = tame if rng.random() < 0.7 else rng.dirichlet(np.ones(len(candidates)) * 0.5)  # some wild
    positions = candidates[rng.choice(len(candidates), size=count, p=weights), np.arange(count)]
    velocities = np.zeros(0)
    if with_velocities:
        wide = rng.random() < 0.2
        velocities = np.where(rng.random(count) < (0.3 if wide else 0.01), rng.uniform(-40.0, 40.0, size=count),
                              sign * rng.uniform(0.0, 1.0, size=count) * profile.velocity[idx])
    spread = 1.2 if rng.random() < 0.2 else 1.0
    efforts = rng.uniform(-spread, spread, size=count) * JOINTS.hard_effort[idx] if with_efforts else np.zeros(0)
    if allow_wild:
        for array in (positions, velocities, efforts):
            if array.size and rng.random() < 0.5:
                array[rng.integers(0, array.size)] = rng.choice([np.nan, np.inf, -np.inf])
    return profile, names, positions, velocities, efforts, previous, elapsed


@st.composite
def commands(draw: st.DrawFn, allow_wild: bool) -> Command:
    rng = np.random.default_rng(draw(st.integers(0, 2**63 - 1), label="seed"))
    profile = draw(st.sampled_from([ENVELOPE.normal_profile, ENVELOPE.reduced_profile]))
    count = draw(st.integers(1, len(NAMES)), label="joints")
    elapsed = draw(st.one_of(st.sampled_from([1e-4, 0.002, 0.01, 0.05]), st.floats(1e-4, 0.2)), label="elapsed")
    return generate(rng, profile, count, elapsed, draw(st.booleans(), label="velocities"),
                    draw(st.booleans(), label="efforts"), allow_wild)


wild = st.one_of(st.floats(min_value=-40.0, max_value=40.0), st.floats(allow_nan=True, allow_infinity=True),
                 st.sampled_from([math.nan, math.inf]))


def _assert_inside(profile: MotionProfile, names: list[str], positions: np.ndarray, velocities: np.ndarray | None,
                   efforts: np.ndarray | None, previous: np.ndarray, elapsed: float) -> None:
    idx = np.array([JOINTS.index[n] for n in names])
    prev = previous[idx]
    assert np.all(np.isfinite(positions))
    assert np.all(positions >= JOINTS.hard_lower[idx] - 1e-6) and np.all(positions <= JOINTS.hard_upper[idx] + 1e-6)
    inside_before = (prev >= JOINTS.soft_lower[idx]) & (prev <= JOINTS.soft_upper[idx])
    assert np.all((positions[inside_before] >= JOINTS.soft_lower[idx][inside_before] - 1e-12)
                  & (positions[inside_before] <= JOINTS.soft_upper[idx][inside_before] + 1e-12))
    rates = np.abs(positions - prev) / elapsed
    assert np.all(rates <= profile.velocity[idx] * (1 + 1e-9) + 1e-9)
    if velocities is not None:
        assert np.all(np.isfinite(velocities)) and np.all(np.abs(velocities) <= profile.velocity[idx])
    if efforts is not None:
        assert np.all(np.isfinite(efforts)) and np.all(np.abs(efforts) <= profile.effort[idx])
    if profile.hand_speed is not None:
        where = {int(j): k for k, j in enumerate(idx)}
        for chain in profile.hand_chains:
            members = [(where[int(j)], r) for j, r in zip(chain.indices, chain.lever_arms, strict=True)
                       if int(j) in where]
            assert sum(rates[k] * r for k, r in members) <= profile.hand_speed * (1 + 1e-6) + 1e-9
            if velocities is not None:
                assert sum(abs(velocities[k]) * r for k, r in members) <= profile.hand_speed * (1 + 1e-6) + 1e-9


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=SLOW)
@given(commands(allow_wild=False))
def test_a_forwarded_joint_command_is_always_inside_the_envelope(command: Command) -> None:
    profile, names, positions, velocities, efforts, previous, elapsed = command
    decision = check_joint_command(ENVELOPE, profile, names, positions, velocities, efforts, previous=previous,
                                   elapsed=elapsed)
    if not decision.forwarded:
        assert decision.reason and "\n" not in decision.reason
        return
    _assert_inside(profile, names, decision.positions, decision.velocities, decision.efforts, previous, elapsed)
    assert (decision.outcome is Outcome.CLAMPED) == bool(decision.clamps)
    # what was forwarded passes again unchanged: the checks are idempotent
    idx = np.array([JOINTS.index[n] for n in names])
    if np.all((previous[idx] >= JOINTS.soft_lower[idx]) & (previous[idx] <= JOINTS.soft_upper[idx])):
        again = check_joint_command(ENVELOPE, profile, names, decision.positions,
                                    np.zeros(0) if decision.velocities is None else decision.velocities,
                                    np.zeros(0) if decision.efforts is None else decision.efforts,
                                    previous=previous, elapsed=elapsed)
        assert again.outcome is Outcome.ACCEPTED, again.reason


@settings(max_examples=1000 * SCALE, deadline=None, suppress_health_check=SLOW)
@given(commands(allow_wild=True))
def test_nan_or_inf_never_passes(command: Command) -> None:
    profile, names, positions, velocities, efforts, previous, elapsed = command
    decision = check_joint_command(ENVELOPE, profile, names, positions, velocities, efforts, previous=previous,
                                   elapsed=elapsed)
    if not all(math.isfinite(v) for v in (*positions, *velocities, *efforts)):
        assert decision.outcome is Outcome.REFUSED and "NaN or Inf" in decision.reason
    elif decision.forwarded:
        _assert_inside(profile, names, decision.positions, decision.velocities, decision.efforts, previous, elapsed)


@settings(max_examples=500 * SCALE, deadline=None)
@given(profile=st.sampled_from([ENVELOPE.normal_profile, ENVELOPE.reduced_profile]),
       linear=st.lists(wild, min_size=3, max_size=3), angular=st.lists(wild, min_size=3, max_size=3),
       planar=st.booleans())
def test_a_forwarded_base_velocity_is_inside_the_envelope(profile: MotionProfile, linear: list[float],
                                                          angular: list[float], planar: bool) -> None:
    if planar:
        linear[2], angular[0], angular[1] = 0.0, 0.0, 0.0
    decision = check_base_velocity(ENVELOPE, profile, linear, angular)
    if not all(math.isfinite(v) for v in (*linear, *angular)):
        assert decision.outcome is Outcome.REFUSED
    if decision.forwarded:
        assert math.hypot(decision.vx, decision.vy) <= profile.linear_speed * (1 + 1e-12)
        assert abs(decision.wz) <= profile.angular_speed
        assert all(math.isfinite(v) for v in (decision.vx, decision.vy, decision.wz))


def _rectangle_clearance(x: float, y: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """Signed distance to an axis-aligned rectangle's boundary: positive inside."""
    if x0 <= x <= x1 and y0 <= y <= y1:
        return min(x - x0, x1 - x, y - y0, y1 - y)
    dx, dy = max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1)
    return -math.hypot(dx, dy)


@pytest.mark.clause("5.2b")
@settings(max_examples=500 * SCALE, deadline=None)
@given(x=st.floats(-15.0, 15.0), y=st.floats(-15.0, 15.0))
def test_geofence_clearance_matches_the_geometry(x: float, y: float) -> None:
    expected = min(_rectangle_clearance(x, y, -10, -10, 10, 10), -_rectangle_clearance(x, y, 6, 6, 9, 9))
    clearance, _ = geofence_clearance(ENVELOPE.geofence, x, y)
    assert clearance == pytest.approx(expected, abs=1e-9)
    assert check_geofence(ENVELOPE.geofence, x, y).allowed == (clearance >= ENVELOPE.geofence.margin)


def _winding_inside(vertices: list[tuple[float, float]], x: float, y: float) -> bool:
    angle = 0.0
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        a0, a1 = math.atan2(y0 - y, x0 - x), math.atan2(y1 - y, x1 - x)
        d = a1 - a0
        while d > math.pi:
            d -= 2 * math.pi
        while d < -math.pi:
            d += 2 * math.pi
        angle += d
    return abs(angle) > math.pi


@settings(max_examples=300 * SCALE, deadline=None)
@given(radii=st.lists(st.floats(0.5, 5.0), min_size=3, max_size=12), x=st.floats(-6, 6), y=st.floats(-6, 6))
def test_point_in_polygon_agrees_with_the_winding_number(radii: list[float], x: float, y: float) -> None:
    from ftrobot_guard.safety.envelope_checks import _signed_distances

    vertices = _star(radii)
    signed = float(_signed_distances(np.array(vertices), np.array([x]), np.array([y]))[0])
    assert abs(signed) == pytest.approx(_boundary_distance(vertices, x, y), abs=1e-9)
    assume(abs(signed) > 1e-6)  # on the boundary either answer is right
    assert (signed < 0) == _winding_inside(vertices, x, y)


def _star(radii: list[float], centre: tuple[float, float] = (0.0, 0.0)) -> list[tuple[float, float]]:
    angles = np.linspace(0.0, 2 * math.pi, len(radii), endpoint=False)
    return [(centre[0] + r * math.cos(a), centre[1] + r * math.sin(a)) for r, a in zip(radii, angles, strict=True)]


def _boundary_distance(vertices: list[tuple[float, float]], x: float, y: float) -> float:
    """Distance from a point to a closed polygon's edges, one segment at a time in plain Python."""
    best = math.inf
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        length2 = (x1 - x0) ** 2 + (y1 - y0) ** 2
        t = 0.0 if length2 == 0 else min(1.0, max(0.0, ((x - x0) * (x1 - x0) + (y - y0) * (y1 - y0)) / length2))
        best = min(best, math.hypot(x0 + t * (x1 - x0) - x, y0 + t * (y1 - y0) - y))
    return best


@settings(max_examples=200 * SCALE, deadline=None)
@given(inner=st.lists(st.floats(0.5, 3.0), min_size=3, max_size=9), outer=st.lists(st.floats(6.0, 12.0), min_size=3,
       max_size=9), hole=st.tuples(st.floats(-4, 4), st.floats(-4, 4)),
       points=st.lists(st.tuples(st.floats(-15, 15), st.floats(-15, 15)), min_size=1, max_size=12))
def test_clearances_of_many_points_are_those_of_each_point_by_plain_geometry(
        inner: list[float], outer: list[float], hole: tuple[float, float],
        points: list[tuple[float, float]]) -> None:
    from ftrobot_guard.safety.envelope import Geofence, Polygon
    from ftrobot_guard.safety.envelope_checks import geofence_clearances

    keep_in, keep_out = _star(outer), _star(inner, hole)
    fence = Geofence("odom", 0.5, (Polygon("hall", np.array(keep_in)),), (Polygon("desk", np.array(keep_out)),))
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    clearances, names = geofence_clearances(fence, xs, ys)
    for (x, y), clearance, name in zip(points, clearances.tolist(), names, strict=True):
        inside_hall = _winding_inside(keep_in, x, y)
        inside_desk = _winding_inside(keep_out, x, y)
        to_hall = _boundary_distance(keep_in, x, y) * (1 if inside_hall else -1)
        to_desk = _boundary_distance(keep_out, x, y) * (-1 if inside_desk else 1)
        assume(min(abs(to_hall), abs(to_desk)) > 1e-6)  # on a boundary either side is right
        assert clearance == pytest.approx(min(to_hall, to_desk), abs=1e-9)
        assert name == ("desk" if to_desk < to_hall else "hall")
        assert geofence_clearance(fence, x, y) == (pytest.approx(clearance, abs=1e-12), name)


@pytest.mark.clause("5.2a")
@settings(max_examples=300 * SCALE, deadline=None)
@given(moment=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2040, 1, 1),
                           timezones=st.just(dt.UTC)))
def test_service_hours_follow_shanghai_local_time(moment: dt.datetime) -> None:
    local = moment.astimezone(SHANGHAI)
    minute = local.hour * 60 + local.minute
    weekday = local.weekday()
    expected = (weekday < 5 and 9 * 60 <= minute < 18 * 60) or (weekday == 5 and 9 * 60 <= minute < 12 * 60)
    assert check_service_hours(ENVELOPE.service_hours, moment).allowed == expected


@pytest.mark.clause("5.2a")
@settings(max_examples=300 * SCALE, deadline=None)
@given(kind=st.one_of(st.text(max_size=20),
                     st.sampled_from(sorted(ENVELOPE.tasks.allowed | ENVELOPE.tasks.prohibited))))
def test_only_whitelisted_task_kinds_pass(kind: str) -> None:
    assert check_task(ENVELOPE.tasks, kind).allowed == (kind in ENVELOPE.tasks.allowed)


@pytest.mark.skipif(SCALE < 1000, reason="long mode: FTROBOT_LONG_PROPERTIES=1000 (>= 1,000,000 commands)")
@pytest.mark.timeout(0)  # ~15-20 min on one core
def test_long_mode_a_million_generated_commands_never_leave_the_envelope() -> None:
    rng = np.random.default_rng(int.from_bytes(os.urandom(8), "little"))
    forwarded = refused = 0
    for _ in range(1000 * SCALE):
        profile = ENVELOPE.reduced_profile if rng.random() < 0.5 else ENVELOPE.normal_profile
        elapsed = float(rng.choice([1e-4, 0.002, 0.01, 0.05, rng.uniform(1e-4, 0.2)]))
        command = generate(rng, profile, int(rng.integers(1, len(NAMES) + 1)), elapsed, bool(rng.random() < 0.5),
                           bool(rng.random() < 0.5), bool(rng.random() < 0.2))
        profile, names, positions, velocities, efforts, previous, elapsed = command
        decision = check_joint_command(ENVELOPE, profile, names, positions, velocities, efforts, previous=previous,
                                       elapsed=elapsed)
        if decision.forwarded:
            assert np.all(np.isfinite(positions)) and np.all(np.isfinite(velocities)) and np.all(np.isfinite(efforts))
            _assert_inside(profile, names, decision.positions, decision.velocities, decision.efforts, previous, elapsed)
            forwarded += 1
        else:
            refused += 1
    print(f"{forwarded + refused} commands: {forwarded} forwarded (inside the envelope), {refused} refused")
    assert forwarded > 0.3 * (forwarded + refused)   # the generator exercises the clamps, not only refusals
