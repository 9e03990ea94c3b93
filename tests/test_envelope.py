"""The operating envelope: the committed G1 file, strict parsing with one-line reasons, invariants under mutation."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.envelope import (
    MANDATORY_PROHIBITED_TASKS,
    Envelope,
    EnvelopeError,
    load_envelope,
    load_yaml_strict,
    parse_envelope,
)
from ftrobot_guard.safety.g1_envelope import g1_envelope_yaml, hand_lever_arms, model_mismatches
from ftrobot_guard.safety.response_policy import Response, Severity
from ftrobot_guard.safety.robot_models import UNITREE_G1_29DOF
from ftrobot_guard.sim.g1_model import G1Model, load_g1

ROOT = Path(__file__).resolve().parents[1]
G1_YAML = ROOT / "config" / "envelope" / "g1.yaml"
TEXT = G1_YAML.read_text(encoding="utf-8")
DATA = yaml.safe_load(TEXT)


@pytest.fixture(scope="module")
def g1() -> G1Model:
    return load_g1()


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


def refused(data: Any) -> str:
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(dump(data))
    return str(info.value)


# -- the committed file --------------------------------------------------------------------------


def test_committed_g1_envelope_is_the_generator_output(g1: G1Model) -> None:
    assert g1_envelope_yaml(g1) == TEXT, (
        "config/envelope/g1.yaml is not the generator's output: "
        "python -m ftrobot_guard.safety.g1_envelope config/envelope/g1.yaml")


def test_committed_g1_envelope_matches_the_model(g1: G1Model) -> None:
    envelope = load_envelope(G1_YAML)
    assert envelope.joints.names == g1.joint_names == UNITREE_G1_29DOF.joint_names
    np.testing.assert_allclose(envelope.joints.hard_lower, g1.position_lower, atol=1e-6)
    np.testing.assert_allclose(envelope.joints.hard_upper, g1.position_upper, atol=1e-6)
    np.testing.assert_allclose(envelope.joints.hard_effort, g1.effort_limit, atol=1e-6)
    assert model_mismatches(envelope, g1) == []
    # soft margins strictly inside, velocities as the issue gives them
    assert np.all(envelope.joints.soft_lower > envelope.joints.hard_lower)
    assert np.all(envelope.joints.soft_upper < envelope.joints.hard_upper)
    rated = dict(zip(envelope.joints.names, envelope.joints.hard_velocity, strict=True))
    assert rated["left_shoulder_pitch_joint"] == rated["waist_pitch_joint"] == rated["right_ankle_roll_joint"] == 37.0
    assert rated["left_hip_pitch_joint"] == rated["waist_yaw_joint"] == 32.0
    assert rated["right_hip_roll_joint"] == rated["left_knee_joint"] == 20.0
    assert rated["left_wrist_yaw_joint"] == rated["right_wrist_pitch_joint"] == 22.0


def test_model_mismatches_catch_a_wrong_hard_limit_and_a_short_lever(g1: G1Model) -> None:
    data = copy.deepcopy(DATA)
    data["joints"]["left_knee_joint"]["position"]["hard"][1] = 2.95
    data["reduced"]["hand_lever_arms"]["right_hand"]["right_elbow_joint"] = 0.1
    problems = model_mismatches(parse_envelope(dump(data)), g1)
    assert any("left_knee_joint.position.hard upper" in p for p in problems)
    assert any("right_hand.right_elbow_joint" in p and "shorter" in p for p in problems)


@pytest.mark.clause("5.2b")
def test_reduced_hand_bound_holds_on_the_model(g1: G1Model) -> None:
    """Σ r_i |q̇_i| bounds the hand's speed: check against MuJoCo's own Jacobian in random postures."""
    import mujoco

    envelope = load_envelope(G1_YAML)
    arms = hand_lever_arms(g1)
    model, data = g1.model, mujoco.MjData(g1.model)
    rng = np.random.default_rng(7)
    for _ in range(50):
        q = rng.uniform(g1.position_lower, g1.position_upper)
        data.qpos[:] = g1.stand_qpos
        data.qpos[g1.qpos_index] = q
        mujoco.mj_forward(model, data)
        for hand, chain in arms.items():
            side = hand.split("_")[0]
            body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{side}_wrist_yaw_link")
            for geom in (g for g in range(model.ngeom) if model.geom_bodyid[g] == body):
                jacp = np.zeros((3, model.nv))
                mujoco.mj_jac(model, data, jacp, None, data.geom_xpos[geom], body)
                columns = [g1.dof_index[g1.joint_index(j)] for j in chain]
                r_true = np.linalg.norm(jacp[:, columns], axis=0)  # |d p / d q_i| = distance from axis i
                lever = np.array([envelope.reduced.hand_chains[0 if side == "left" else 1].lever_arms[k]
                                  for k in range(len(chain))])
                assert np.all(r_true <= lever + 1e-9), (hand, r_true - lever)


def test_envelope_values_are_immutable() -> None:
    envelope = load_envelope(G1_YAML)
    with pytest.raises(ValueError):
        envelope.joints.soft_upper[0] = 10.0
    with pytest.raises(AttributeError):
        envelope.robot_model = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        envelope.input_max_age["imu"] = 10.0  # type: ignore[index]
    assert envelope.normal_profile.velocity is envelope.joints.soft_velocity
    assert envelope.reduced_profile.linear_speed == pytest.approx(0.6 * 0.3)


# -- one-line reasons ------------------------------------------------------------------------------


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target: Any = data
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


_DELETE = object()

CASES = [
    ("format", "ftrobot-envelope/2", "format: 'ftrobot-envelope/2' is not"),
    ("robot_model", "unitree_h1", "unknown robot model"),
    ("joints/left_knee_joint", _DELETE, "joints.left_knee_joint: missing"),
    ("joints/left_knee_joint/position/hard/0", float("nan"),
     "joints.left_knee_joint.position.hard[0]: nan is not a finite"),
    ("joints/left_knee_joint/position/hard/1", float("inf"), "is not a finite number"),
    ("joints/left_knee_joint/position/hard/1", 165.0, "radians, not degrees"),
    ("joints/left_knee_joint/position/soft/0", -0.2, "lower -0.2 is below the hard limit"),
    ("joints/left_knee_joint/position/soft", [1.0, 0.5], "lower 1 must be below upper 0.5"),
    ("joints/left_knee_joint/velocity/soft", 25.0, "25 is above the hard limit 20"),
    ("joints/left_knee_joint/velocity/soft", "6 rad/s", "write numbers without quotes or units"),
    ("joints/left_knee_joint/velocity/soft", True, "expected a number, got a boolean"),
    ("joints/left_knee_joint/acceleration", 0.0, "acceleration: 0 is outside (0, 10000]"),
    ("joints/left_knee_joint/effort/extra", 1.0, "joints.left_knee_joint.effort: unknown key 'extra'"),
    ("joints/left_knee_joint/effort/soft", _DELETE, "joints.left_knee_joint.effort: missing key 'soft'"),
    ("base/linear_speed/soft", 2.5, "above the hard limit"),
    ("geofence/frame", "map", "the geofence is given in 'odom'"),
    ("geofence/keep_in", [], "needs at least one polygon"),
    ("geofence/keep_in/0/polygon", [[0, 0], [1, 1], [1, 0], [0, 1]], "edges 0 and 2 cross"),
    ("geofence/keep_in/0/polygon", [[0, 0], [1, 1]], "a polygon needs at least 3"),
    ("geofence/keep_in/0/polygon", [[0, 0], [1, 1], [2, 2]], "fold back"),
    ("geofence/keep_in/0/polygon", [[0, 0], [1, 0], [0.5, 1e-9]], "encloses no area"),
    ("geofence/keep_in/0/polygon", [[0, 0], [1, 0], [1, 0], [0, 1]], "vertices 1 and 2 coincide"),
    ("geofence/keep_out/0/name", "service_hall", "polygon name 'service_hall' is used twice"),
    ("posture/tilt/warn", 0.9, "tilt.warn: 0.9 is above the limit 0.5"),
    ("posture/tilt/limit", 57.0, "radians, not degrees"),
    ("battery/minimum", 20, "a fraction 0..1, not a percentage"),
    ("battery/minimum", 0.5, "above the warning level"),
    ("inputs/imu", _DELETE, "inputs: missing key 'imu'"),
    ("inputs/lidar", 0.1, "inputs: unknown key 'lidar'"),
    ("service_hours/time_zone", "Mars/Olympus", "unknown time zone"),
    ("service_hours/time_zone", "../../etc/passwd", "unknown time zone"),
    ("service_hours/weekly/0/open", 510, "quote it"),
    ("service_hours/weekly/0/close", "08:00", "must be later than open"),
    ("service_hours/weekly/0/close", "25:00", "is not a time"),
    ("service_hours/weekly/0/days", ["mon", "mon"], "'mon' is listed twice"),
    ("service_hours/weekly/0/days", ["monday"], "is not one of mon"),
    ("service_hours/closed_dates", ["2026-02-30"], "is not a date"),
    ("tasks/prohibited", ["design_robot_employee"], "must list 'direct_robot_employee'"),
    ("tasks/allowed", ["guide_visitor", "direct_robot_employee"], "'direct_robot_employee' is also prohibited"),
    ("tasks/allowed", ["coordinate_robots"], "names robots"),
    ("tasks/allowed", ["Guide Visitor"], "must be lower-case"),
    ("reduced/joints/left_elbow_joint/velocity", 7.0, "above the joint's NORMAL limit"),
    ("reduced/hand_lever_arms/left_hand/left_elbow_joint", _DELETE, "left_hand: missing key 'left_elbow_joint'"),
    ("reduced/hand_lever_arms/third_hand", {}, "no hand of that name"),
    ("supervisor/estop_category", 0, "not a stop category 1 or 2"),
    ("supervisor/estop_category", True, "not a stop category 1 or 2"),
    ("supervisor/severity_responses/critical", "record", "milder than the response to error"),
    ("supervisor/severity_responses/error", "reduce", "must stop the robot"),
    ("supervisor/severity_responses/error", "explode", "is not one of record"),
    ("supervisor/kind_responses", {"Fall": "damp"}, "anomaly kind 'Fall'"),
    ("extra_section", {}, "unknown key 'extra_section'"),
]


@pytest.mark.parametrize(("path", "value", "fragment"), CASES, ids=[c[0] + ":" + repr(c[1])[:20] for c in CASES])
def test_each_malformed_field_is_refused_with_a_one_line_reason(path: str, value: Any, fragment: str) -> None:
    message = refused(_set(copy.deepcopy(DATA), path, value))
    assert fragment in message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "expected a mapping, got nothing"),
    ("- 1\n- 2\n", "expected a mapping, got a list"),
    ("format: a\nformat: b\n", "duplicate key 'format'"),
    ("a: &x [1]\nb: *x\n", "anchors (&name) are not allowed"),
    ("<<: {format: x}\n", "merge keys"),
    ("format: !!python/name:os.system x\n", "is not allowed"),
    ("format: [\n", "not valid YAML at line 2"),
    ("[" * 10000 + "]" * 10000, "nested deeper than 32 levels"),
    ("\t- bad", "not valid YAML"),
])
def test_yaml_level_problems_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        parse_envelope(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_invalid_utf8_and_oversize_are_refused() -> None:
    with pytest.raises(EnvelopeError, match="not UTF-8"):
        parse_envelope(b"format: \xff\n")
    with pytest.raises(EnvelopeError, match="more than"):
        parse_envelope(b"#" * (1 << 20) + b"\n")


def test_load_envelope_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(EnvelopeError, match="no such envelope file"):
        load_envelope(tmp_path / "missing.yaml")
    with pytest.raises(EnvelopeError, match="is a directory"):
        load_envelope(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(TEXT.replace("minimum: 0.25", "minimum: 25"))
    with pytest.raises(EnvelopeError, match=r"bad\.yaml: battery\.minimum"):
        load_envelope(bad)


def test_yaml_reader_matches_pyyaml_on_the_committed_file() -> None:
    assert load_yaml_strict(TEXT) == DATA


# -- any mutation: refused with a reason, or an envelope whose limits hold ------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


PATHS = _paths(DATA)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-10.0, max_value=10.0), st.text(max_size=12),
    st.sampled_from(["odom", "mon", "09:00", "24:00", "damp", "record", "Asia/Shanghai", "direct_robot_employee",
                     "guide_visitor", "2026-10-01"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def _assert_limits_hold(envelope: Envelope) -> None:
    j = envelope.joints
    arrays = [j.hard_lower, j.hard_upper, j.soft_lower, j.soft_upper, j.hard_velocity, j.soft_velocity,
              j.acceleration, j.hard_effort, j.soft_effort, envelope.reduced.joint_velocity,
              envelope.reduced.joint_effort]
    assert all(np.all(np.isfinite(a)) for a in arrays)
    assert np.all(j.hard_lower <= j.soft_lower) and np.all(j.soft_lower < j.soft_upper)
    assert np.all(j.soft_upper <= j.hard_upper)
    assert np.all(j.soft_velocity > 0) and np.all(j.soft_velocity <= j.hard_velocity)
    assert np.all(j.soft_effort > 0) and np.all(j.soft_effort <= j.hard_effort) and np.all(j.acceleration > 0)
    assert np.all(envelope.reduced.joint_velocity <= j.soft_velocity)
    assert np.all(envelope.reduced.joint_effort <= j.soft_effort)
    assert 0 < envelope.reduced.speed_scale <= 1 and envelope.reduced.hand_speed > 0
    assert {c.name for c in envelope.reduced.hand_chains} == set(UNITREE_G1_29DOF.hand_chains)
    for limit in (envelope.base.linear_speed, envelope.base.angular_speed):
        assert 0 <= limit.soft <= limit.hard and math.isfinite(limit.hard)
    for pair in (envelope.posture.tilt, envelope.posture.angular_rate, envelope.posture.joint_speed,
                 envelope.actuator_temperature):
        assert 0 < pair.warn <= pair.limit and math.isfinite(pair.limit)
    assert 0 < envelope.battery.minimum <= envelope.battery.warn < 1
    assert all(0 < age <= 60 for age in envelope.input_max_age.values())
    assert envelope.geofence.keep_in and envelope.geofence.frame == "odom"
    for polygon in (*envelope.geofence.keep_in, *envelope.geofence.keep_out):
        assert polygon.vertices.shape[0] >= 3 and np.all(np.isfinite(polygon.vertices))
    assert all(w.open_minute < w.close_minute <= 1440 and w.days for w in envelope.service_hours.windows)
    assert envelope.tasks.prohibited >= MANDATORY_PROHIBITED_TASKS
    assert not envelope.tasks.allowed & envelope.tasks.prohibited
    assert not any("robot" in kind for kind in envelope.tasks.allowed)
    policy = envelope.responses
    ranks = [policy.severity_responses[s].rank for s in Severity]
    assert ranks == sorted(ranks) and policy.severity_responses[Severity.ERROR].stops
    assert policy.estop_category in (1, 2) and policy.safe_stop_escalation > 0
    assert all(isinstance(r, Response) for r in policy.kind_responses.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutated_field_is_refused_with_a_reason_or_keeps_every_limit(data: st.DataObject) -> None:
    document = copy.deepcopy(DATA)
    path = data.draw(st.sampled_from(PATHS), label="path")
    action = data.draw(st.sampled_from(["replace", "delete", "add_key"]), label="action")
    parent: Any = document
    for key in path[:-1]:
        parent = parent[key]
    if action == "replace":
        parent[path[-1]] = data.draw(values, label="value")
    elif action == "delete":
        del parent[path[-1]]
    else:
        target = parent[path[-1]]
        if isinstance(target, dict):
            target[data.draw(st.text(max_size=10), label="key")] = data.draw(values, label="value")
        elif isinstance(target, list):
            target.append(data.draw(values, label="value"))
    try:
        envelope = parse_envelope(dump(document))
    except EnvelopeError as exc:
        message = str(exc)
        assert message and "\n" not in message and len(message) < 400
        return
    _assert_limits_hold(envelope)
