"""Recorder node on real rclpy/DDS (the session's own domain, localhost only): raw recording by tier,
incident freeze, guardian, diagnostics, checkpoint publication, a clean, verifiable log after
shutdown, and a damaged log found on restart that stays an ERROR until an auditor looks at it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402

from blackbox_testkit import flip_bit, make_keys, parse, segments  # noqa: E402
from ftrobot_guard.blackbox.export import ExportOutcome, iter_entries, make_filter  # noqa: E402
from ftrobot_guard.blackbox.record_format import RecordType, Tier  # noqa: E402
from ftrobot_guard.blackbox.verification import Diagnosis, Severity, verify_log  # noqa: E402
from ftrobot_guard.cli.main import main as ftrobot  # noqa: E402
from ftrobot_guard.nodes.recorder_node import RecorderNode, _log_checkpoint_type  # noqa: E402
from ftrobot_guard.ros.node_parameters import NodeConfigurationError  # noqa: E402
from ftrobot_guard.trust.keys import load_private_key  # noqa: E402
from ros_fixtures import SpinningExecutor, wait_for_match, wait_until  # noqa: E402


def _params(tmp_path: Path, **extra: object) -> tuple[list[Parameter], Path]:
    """Recorder parameters with fresh keys in ``tmp_path``, and the auditor's private key file."""
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
    return [Parameter(k, value=v) for k, v in values.items()], paths["auditor_key"]


class _DiagnosticsProbe:
    """Keeps the recorder's latest status from /diagnostics."""

    def __init__(self, node: Node) -> None:
        self.latest: Any = None
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, 10)

    def _on_array(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("recorder: black box"):
                self.latest = status

    def value(self, key: str) -> str:
        return next((kv.value for kv in self.latest.values if kv.key == key), "")


def test_records_by_tier_and_freezes_ring_on_incident(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor
) -> None:
    params, auditor_key_path = _params(tmp_path)
    node = spinner.add(RecorderNode(context=ros_context, parameter_overrides=params))
    source = spinner.add(Node("source", context=ros_context))
    probe = _DiagnosticsProbe(source)
    events = source.create_publisher(String, "events", 10)
    trigger = source.create_publisher(Bool, "trigger", 10)
    joints = source.create_publisher(JointState, "joint_states", rclpy.qos.qos_profile_sensor_data)
    for publisher in (events, trigger, joints):
        wait_for_match(publisher)
    sent_joints = 0
    for i in range(100):  # 1 s of joint states at 100 Hz (pacing, not a wait)
        joints.publish(JointState(name=["knee"], position=[float(i)]))
        sent_joints += 1
        if i == 10:
            events.publish(String(data="mode NORMAL"))
        time.sleep(0.01)
    trigger.publish(Bool(data=True))
    wait_until(lambda: node._recorder.incidents == 1, what="the incident trigger to be recorded")
    if _log_checkpoint_type() is not None:  # ftrobot_msgs built into this environment
        wait_until(lambda: node._published_sequence > 0, what="a durable checkpoint to be published")
    wait_until(lambda: probe.latest is not None and int(probe.value("entries_durable")) > 0
               and probe.value("retention_level") != "", what="diagnostics reporting entries on disk and retention")
    assert probe.latest.level == DiagnosticStatus.OK and probe.value("damage") == "", probe.latest.message
    assert probe.value("retention_level") == "OK"  # figures from the retention thread
    spinner.remove(node)  # drains what arrived, closes the log
    received = node.messages_received

    key = load_private_key(auditor_key_path, "x25519")
    outcome = ExportOutcome()
    items = list(iter_entries(tmp_path / "log", key, make_filter(None, None, None), outcome))  # type: ignore[arg-type]
    assert not outcome.problems
    assert all(i.entry.guardian == "G-0042" for i in items)
    by_topic: dict[str, list[Any]] = {}
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


@pytest.mark.clause("3.1b")
def test_flipped_byte_in_closed_segment_is_an_error_after_restart(
    tmp_path: Path, ros_context: Context, spinner: SpinningExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outside in: record, stop the recorder, flip one byte in the newest (closed) segment, start the
    recorder again, then run `ftrobot log verify`."""
    params, _auditor_key = _params(tmp_path)
    log = tmp_path / "log"
    node = spinner.add(RecorderNode(context=ros_context, parameter_overrides=params))
    source = spinner.add(Node("source", context=ros_context))
    probe = _DiagnosticsProbe(source)
    events = source.create_publisher(String, "events", 10)
    wait_for_match(events)
    for i in range(30):
        events.publish(String(data=f"event {i}"))
        time.sleep(0.01)  # pacing: several flushes, so several DATA records
    wait_until(lambda: node.messages_received == 30, what="all 30 events to be received")
    spinner.remove(node)  # the log is closed: its newest segment ends with a signed CLOSE
    assert verify_log(log).clean
    newest = segments(log)[-1]
    _prefix, records, data = parse(newest)
    assert records[-1].record_type == RecordType.CLOSE
    victim = next(r for r in records if r.record_type == RecordType.DATA)
    newest.write_bytes(flip_bit(data, victim.offset + 40, 1))
    damaged = newest.read_bytes()

    restarted = spinner.add(RecorderNode(context=ros_context, parameter_overrides=params))
    wait_until(lambda: probe.latest is not None and probe.latest.level == DiagnosticStatus.ERROR
               and probe.value("damage") != "", what="the restarted recorder to report the damage")
    assert newest.name in probe.value("damage") and "damaged" in probe.latest.message
    spinner.remove(restarted)
    assert newest.read_bytes() == damaged and not (log / "quarantine").exists()

    code = ftrobot(["log", "verify", str(log)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert not out.splitlines()[-1].startswith("result: 0 errors"), out
    report = verify_log(log)
    assert {Diagnosis.CORRUPT_RECORD, Diagnosis.RECOVERED} <= report.diagnoses(Severity.ERROR), report.render()


def test_bad_configuration_is_a_clear_error(tmp_path: Path, ros_context: Context) -> None:
    params, _ = _params(tmp_path, topics=["events|std_msgs/msg/String|sometimes"])
    with pytest.raises(NodeConfigurationError, match="tier 'sometimes'"):
        RecorderNode(context=ros_context, parameter_overrides=params)
    params, _ = _params(tmp_path / "b", identity_number="440304-RB-2026-000123-9")
    with pytest.raises(NodeConfigurationError, match="identity_number"):
        RecorderNode(context=ros_context, parameter_overrides=params)
    params, _ = _params(tmp_path / "c", topics=["x|nonexistent_pkg/msg/Foo|event"])
    with pytest.raises(NodeConfigurationError, match="not installed"):
        RecorderNode(context=ros_context, parameter_overrides=params)
