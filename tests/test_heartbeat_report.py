"""The heartbeat report as plain values (status/heartbeat_report.py), without ROS."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.modes import SafetyMode, UnknownSafetyModeError
from ftrobot_guard.status.heartbeat_report import HeartbeatReporter, LogCheckpointView, RobotIdentity
from ftrobot_guard.status.topic_liveness import TopicWatch

IDENTITY = RobotIdentity("440304-RB-2026-000123-8", "Futian-Guide-01", "Futian District Government Services Center")


def _reporter(topics: tuple[str, ...] = ("joint_states",), start_s: float = 100.0) -> HeartbeatReporter:
    return HeartbeatReporter(
        IDENTITY, TopicWatch(list(topics), 0.5, start_s), {t: f"/r1/{t}" for t in topics},
        software_digest="ab" * 32, config_digest="cd" * 32, guardian_on_duty="G-440304-0007", start_s=start_s,
        boot_id="b" * 32,
    )


def test_first_report_carries_identity_digests_and_boot_state() -> None:
    report = _reporter().next_report(100.25)
    assert (report.identity_number, report.robot_name, report.department) == (
        IDENTITY.identity_number, IDENTITY.robot_name, IDENTITY.department,
    )
    assert report.boot_id == "b" * 32 and report.sequence == 1 and report.uptime_s == pytest.approx(0.25)
    assert (report.safety_mode, report.safety_mode_name) == (0, "BOOT")
    assert (report.software_digest, report.config_digest) == ("ab" * 32, "cd" * 32)
    assert report.guardian_on_duty == "G-440304-0007" and report.checkpoint is None
    assert report.open_incidents == 0


def test_watched_topics_by_resolved_name_stale_until_received_then_fresh() -> None:
    reporter = _reporter(("joint_states", "imu"))
    first = reporter.next_report(100.1)
    assert [h.topic for h in first.watched_topics] == ["/r1/joint_states", "/r1/imu"]
    assert first.stale_topics == ["/r1/joint_states", "/r1/imu"]
    assert not any(h.ever_received for h in first.watched_topics)
    reporter.mark_received("joint_states", 100.2)
    second = reporter.next_report(100.3)
    joint = second.watched_topics[0]
    assert joint.ever_received and joint.healthy and joint.age_s == pytest.approx(0.1) and joint.max_age_s == 0.5
    assert second.stale_topics == ["/r1/imu"]
    assert reporter.next_report(100.8).stale_topics == ["/r1/joint_states", "/r1/imu"]  # 0.6 s old: stale


def test_mode_change_is_reported_once_and_an_unknown_number_changes_nothing() -> None:
    reporter = _reporter()
    assert reporter.on_safety_mode(int(SafetyMode.SAFE_STOP))
    assert not reporter.on_safety_mode(int(SafetyMode.SAFE_STOP))
    with pytest.raises(UnknownSafetyModeError):
        reporter.on_safety_mode(99)
    report = reporter.next_report(101.0)
    assert (report.safety_mode, report.safety_mode_name) == (3, "SAFE_STOP")


@pytest.mark.clause("4.5", "6.4c")
def test_open_incident_count_is_carried_and_a_change_is_reported_once() -> None:
    reporter = _reporter()
    assert reporter.on_open_incidents(2)
    assert not reporter.on_open_incidents(2)
    assert reporter.next_report(101.0).open_incidents == 2 == reporter.open_incidents
    assert reporter.on_open_incidents(0)
    assert reporter.next_report(102.0).open_incidents == 0
    for wrong in (-1, 2**32, True, 1.0):
        with pytest.raises(ValueError):
            reporter.on_open_incidents(wrong)  # type: ignore[arg-type]
    assert reporter.open_incidents == 0


def test_latest_checkpoint_is_carried() -> None:
    reporter = _reporter()
    older = LogCheckpointView(10, "seg-1", "00" * 32, 1_700_000_000_000_000_000, b"\x01" * 64)
    newer = LogCheckpointView(20, "seg-1", "11" * 32, 1_700_000_002_500_000_000, b"\x02" * 64)
    reporter.on_checkpoint(older)
    reporter.on_checkpoint(newer)
    assert reporter.next_report(101.0).checkpoint == newer


def test_a_watched_topic_needs_a_resolved_name() -> None:
    with pytest.raises(ValueError, match="imu"):
        HeartbeatReporter(IDENTITY, TopicWatch(["imu"], 0.5, 0.0), {}, "", "", "G-1", 0.0)


def test_every_boot_gets_its_own_id() -> None:
    watch = TopicWatch([], 0.5, 0.0)
    ids = {HeartbeatReporter(IDENTITY, watch, {}, "", "", "G-1", 0.0).boot_id for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 32 for i in ids)


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=50))
def test_sequence_strictly_increases_by_one_and_uptime_never_decreases(steps: list[float]) -> None:
    reporter = _reporter(start_s=0.0)
    now = 0.0
    previous = None
    for step in steps:
        now += step
        report = reporter.next_report(now)
        if previous is not None:
            assert report.sequence == previous.sequence + 1
            assert report.uptime_s >= previous.uptime_s
        previous = report
    assert previous is not None and previous.sequence == len(steps)


def test_refuses_a_non_finite_time() -> None:
    with pytest.raises(ValueError):
        _reporter().next_report(float("nan"))


def test_the_guardian_on_duty_follows_the_guard_and_an_empty_name_keeps_it() -> None:
    reporter = HeartbeatReporter(RobotIdentity("440304-RB-2026-000123-8", "Futian-Guide-01", "Futian"),
                                 TopicWatch([], 0.5, 0.0), {}, "s" * 64, "", "G-440304-0007", 0.0)
    assert not reporter.on_guardian_on_duty("")
    assert reporter.on_guardian_on_duty("G-440304-0008")
    assert not reporter.on_guardian_on_duty("G-440304-0008")
    assert reporter.next_report(1.0).guardian_on_duty == "G-440304-0008"
    with pytest.raises(ValueError):
        reporter.on_guardian_on_duty(7)  # type: ignore[arg-type]
