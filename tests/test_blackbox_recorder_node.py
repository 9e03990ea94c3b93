"""Recorder node on real rclpy/DDS (localhost only): raw recording by tier, incident freeze, guardian,
diagnostics, checkpoint publication, and a clean, verifiable log after shutdown."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

from blackbox_testkit import make_keys  # noqa: E402
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter  # noqa: E402
from ftrobot_guard.blackbox.record_format import Tier  # noqa: E402
from ftrobot_guard.blackbox.verification import verify_log  # noqa: E402
from ftrobot_guard.nodes.node_parameters import NodeConfigurationError  # noqa: E402

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "12")


@pytest.fixture()
def context():  # type: ignore[no-untyped-def]
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=12)
    yield ctx
    rclpy.shutdown(context=ctx)


def _params(tmp_path: Path, **extra: object) -> list[Parameter]:
    keys = make_keys()
    paths = keys.save(tmp_path / "keys")
    values: dict[str, object] = {
        "log_directory": str(tmp_path / "log"),
        "identity_number": keys.robot_id,
        "signing_key_file": str(paths["robot_key"]),
        "auditor_public_key_files": [str(paths["auditor_pub"])],
        "topics": ["events|std_msgs/msg/String|event", "trigger|std_msgs/msg/Bool|incident",
                   "joint_states|sensor_msgs/msg/JointState|state|5.0|sensor"],
        "guardian_on_duty": "G-0042",
        "guardian_topic": "",
        "fsync_interval_ms": 20,
        "checkpoint_every_s": 0.05,
    }
    values.update(extra)
    params = [Parameter(k, value=v) for k, v in values.items()]
    params.append(Parameter("_auditor_key_path", value=str(paths["auditor_key"])))
    return params


def _spin(executor: SingleThreadedExecutor, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.01)


def test_records_by_tier_and_freezes_ring_on_incident(tmp_path: Path, context) -> None:  # type: ignore[no-untyped-def]
    from ftrobot_guard.nodes.recorder_node import RecorderNode

    params = _params(tmp_path)
    auditor_key_path = params.pop().value
    node = RecorderNode(context=context, parameter_overrides=params)
    source = rclpy.create_node("source", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(source)
    events = source.create_publisher(String, "events", 10)
    trigger = source.create_publisher(Bool, "trigger", 10)
    joints = source.create_publisher(JointState, "joint_states", rclpy.qos.qos_profile_sensor_data)
    deadline = time.monotonic() + 10
    while node.count_publishers("joint_states") == 0 or source.count_subscribers("events") == 0:
        _spin(executor, 0.05)
        assert time.monotonic() < deadline
    _spin(executor, 0.3)
    sent_joints = 0
    for i in range(100):  # 1 s of joint states at 100 Hz
        joints.publish(JointState(name=["knee"], position=[float(i)]))
        sent_joints += 1
        if i == 10:
            events.publish(String(data="mode NORMAL"))
        _spin(executor, 0.01)
    trigger.publish(Bool(data=True))
    _spin(executor, 0.5)
    received = node.messages_received
    checkpoint_published = node._published_sequence > 0
    node.destroy_node()
    source.destroy_node()
    executor.shutdown()

    from ftrobot_guard.keys import load_private_key

    key = load_private_key(auditor_key_path, "x25519")
    outcome = ExportOutcome()
    items = list(iter_entries(tmp_path / "log", key, make_filter(None, None, None), outcome))  # type: ignore[arg-type]
    assert not outcome.problems
    assert all(i.entry.guardian == "G-0042" for i in items)
    by_topic: dict[str, list] = {}
    for item in items:
        by_topic.setdefault(item.entry.topic.lstrip("/"), []).append(item.entry)
    assert [deserialize_message(e.data, String).data for e in by_topic["events"]] == ["mode NORMAL"]
    assert len(by_topic["trigger"]) == 1 and by_topic["trigger"][0].tier == Tier.EVENT
    joint_entries = by_topic["joint_states"]
    long_term = [e for e in joint_entries if e.tier == Tier.LONG_TERM]
    full_rate = [e for e in joint_entries if e.tier == Tier.FULL_RATE]
    assert 2 <= len(long_term) <= 12  # decimated to 5 Hz over ~1-2 s
    positions = sorted(deserialize_message(e.data, JointState).position[0] for e in joint_entries)
    assert len(positions) == len(set(positions))  # the ring dump does not repeat long-term entries
    assert len(joint_entries) == received - 2  # every received joint state is in the log after the freeze
    assert full_rate and sent_joints >= len(joint_entries) > len(long_term)
    report = verify_log(tmp_path / "log")
    assert report.clean, report.render()
    from ftrobot_guard.nodes.recorder_node import _log_checkpoint_type

    if _log_checkpoint_type() is not None:  # ftrobot_msgs built into this environment
        assert checkpoint_published


def test_bad_configuration_is_a_clear_error(tmp_path: Path, context) -> None:  # type: ignore[no-untyped-def]
    from ftrobot_guard.nodes.recorder_node import RecorderNode

    params = _params(tmp_path, topics=["events|std_msgs/msg/String|sometimes"])[:-1]
    with pytest.raises(NodeConfigurationError, match="tier 'sometimes'"):
        RecorderNode(context=context, parameter_overrides=params)
    params = _params(tmp_path / "b", identity_number="440304-RB-2026-000123-9")[:-1]
    with pytest.raises(NodeConfigurationError, match="identity_number"):
        RecorderNode(context=context, parameter_overrides=params)
    params = _params(tmp_path / "c", topics=["x|nonexistent_pkg/msg/Foo|event"])[:-1]
    with pytest.raises(NodeConfigurationError, match="not installed"):
        RecorderNode(context=context, parameter_overrides=params)
