"""Department monitor logic: authentication, freshness, duplicates, silence, alert hygiene."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
import re
import types
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.department.fleet_monitor import (
    Alert,
    AlertKind,
    FleetMonitor,
    HeartbeatOutcome,
    IncidentChange,
    Reception,
    Refusal,
    SignatureState,
)
from ftrobot_guard.department.fleet_table import render_table
from ftrobot_guard.department.heartbeat_reading import HeartbeatFormatError, read_heartbeat
from ftrobot_guard.incidents.incident_report import (
    IncidentFields,
    IncidentRefusal,
    incident_fields_mapping,
    sign_incident,
)
from ftrobot_guard.trust.certificates import (
    CertificateVerifier,
    certificate_der,
    create_department_ca,
    issue_guardian_certificate,
    issue_robot_certificate,
)
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.signed_fields import HEARTBEAT_DOMAIN, message_fields, sign_fields

msgs = pytest.importorskip("ftrobot_msgs.msg")

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=1)
DEPT = "Futian Data Bureau"
CA_KEY = ed25519.Ed25519PrivateKey.generate()
CA = create_department_ca(DEPT, CA_KEY, 3650, now=T0)
ID_A = make_identity_number("440304", 2026, 123)
ID_B = make_identity_number("440304", 2026, 124)


def issue(key: ed25519.Ed25519PrivateKey, number: Any = ID_A, name: str = "Xiao Fu", days: int = 365,
          ca: Any = CA, ca_key: Any = CA_KEY, start: dt.datetime = T0) -> bytes:
    return certificate_der(
        issue_robot_certificate(ca, ca_key, key.public_key(), number, name, DEPT, start,
                                start + dt.timedelta(days=days))
    )


class FakeRobot:
    """Builds signed Heartbeat messages like the robot's heartbeat node does, and how they were heard."""

    def __init__(self, key: ed25519.Ed25519PrivateKey | None = None, cert: bytes | None = None, number: Any = ID_A,
                 name: str = "Xiao Fu", boot_id: str = "boot-1", gid: bytes = b"gid-1",
                 topic: str = "/r1/heartbeat") -> None:
        self.key = key or ed25519.Ed25519PrivateKey.generate()
        self.cert = cert if cert is not None else issue(self.key, number, name)
        self.number, self.name, self.boot_id = str(number), name, boot_id
        self.gid, self.topic = gid, topic
        self.sequence = 0
        self.published = 0

    def message(self, stamp_s: float, mode: str = "NORMAL", stale: tuple[str, ...] = (), **overrides: Any) -> Any:
        self.sequence += 1
        msg = msgs.Heartbeat(
            format_version=1, identity_number=self.number, robot_name=self.name, department=DEPT,
            boot_id=self.boot_id, sequence=self.sequence, uptime=float(self.sequence), safety_mode=1,
            safety_mode_name=mode, software_digest="ab" * 32, config_digest="cd" * 32, guardian_on_duty="G-0001",
            certificate=self.cert,
            watched_topics=[
                msgs.TopicHealth(topic=t, ever_received=True, age=0.5 if t in stale else 0.01, max_age=0.2,
                                 healthy=t not in stale)
                for t in ("joint_states", "imu")
            ],
        )
        sec = int(stamp_s)
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, int((stamp_s - sec) * 1e9)
        for name, value in overrides.items():
            setattr(msg, name, value)
        return msg

    def beat(self, stamp_s: float, signing_key: ed25519.Ed25519PrivateKey | None = None, **kwargs: Any) -> Any:
        msg = self.message(stamp_s, **kwargs)
        msg.signature = sign_fields(signing_key or self.key, HEARTBEAT_DOMAIN, message_fields(msg))
        return msg

    def heard(self) -> Reception:
        """The reception of this robot's next publication (its publisher numbers them 1, 2, ...)."""
        self.published += 1
        return Reception(self.topic, self.gid, self.published)


def hear(mon: FleetMonitor, robot: FakeRobot, msg: Any, now_s: float) -> HeartbeatOutcome:
    return mon.on_heartbeat(msg, now_s, robot.heard())


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def monitor(clock: Clock | None = None, **kwargs: Any) -> FleetMonitor:
    return FleetMonitor([CA], period_s=1.0, silent_periods=3, clock=clock or Clock(), **kwargs)


def kinds(alerts: HeartbeatOutcome | list[Alert] | tuple[Alert, ...], raised: bool = True) -> list[AlertKind]:
    items = alerts.alerts if isinstance(alerts, HeartbeatOutcome) else alerts
    return [a.kind for a in items if a.raised is raised]


def row(mon: FleetMonitor, number: Any = ID_A, now_s: float = 0.0) -> Any:
    return next(r for r in mon.rows(now_s) if r.identity_number == str(number))


@pytest.mark.clause("6.2e")
def test_alert_kinds_match_the_department_alert_message() -> None:
    msg = Path(__file__).resolve().parents[1] / "src" / "ftrobot_msgs" / "msg" / "DepartmentAlert.msg"
    if not msg.exists():
        pytest.skip("ftrobot_msgs not present")
    constants = dict(re.findall(r"uint8 KIND_(\w+)=(\d+)", msg.read_text()))
    assert {k: int(v) for k, v in constants.items()} == {k.name: k.value for k in AlertKind}


@pytest.mark.clause("2.3", "6.4b")
def test_genuine_heartbeats_are_accepted_raise_nothing_and_fill_the_row() -> None:
    mon, robot = monitor(), FakeRobot()
    for t in range(5):
        outcome = hear(mon, robot, robot.beat(1000.0 + t), float(t))
        assert outcome.accepted and outcome.refusal is None and outcome.alerts == ()
        assert mon.check(float(t) + 0.5) == []
    r = row(mon, now_s=4.5)
    assert (r.robot_name, r.department, r.safety_mode, r.sequence, r.boot_id) == (
        "Xiao Fu", DEPT, "NORMAL", 5, "boot-1")
    assert (r.topic, r.publisher_gid) == ("/r1/heartbeat", b"gid-1".hex())
    assert r.signature_state is SignatureState.VERIFIED
    assert r.last_seen_age_s == pytest.approx(0.5)
    assert r.active_alerts == ()
    assert r.certificate_not_after == T0 + dt.timedelta(days=365)
    assert mon.rows()[0].last_seen_age_s == pytest.approx(0.5)  # default: time of the latest check
    assert mon.accepted_count == 5 and set(mon.refused_counts().values()) == {0}


@pytest.mark.clause("6.4b")
def test_silence_is_raised_once_and_cleared_once() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0), 0.0)
    assert mon.check(3.0) == []
    raised = mon.check(3.1)
    assert kinds(raised) == [AlertKind.SILENT] and "no genuine heartbeat" in raised[0].detail
    assert mon.check(10.0) == [] and mon.check(20.0) == []
    cleared = hear(mon, robot, robot.beat(1020.0), 20.5)
    assert cleared.accepted and kinds(cleared, raised=False) == [AlertKind.SILENT]
    assert hear(mon, robot, robot.beat(1021.0), 21.5).alerts == ()


@pytest.mark.clause("5.1a")
def test_forged_heartbeat_does_not_count_as_alive() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0), 0.0)
    assert kinds(mon.check(4.0)) == [AlertKind.SILENT]
    impostor = ed25519.Ed25519PrivateKey.generate()
    forged = robot.beat(1004.0, signing_key=impostor, mode="NORMAL")
    outcome = hear(mon, robot, forged, 4.5)
    assert outcome.refusal is Refusal.BAD_SIGNATURE and not outcome.accepted and "does not verify" in outcome.reason
    assert kinds(outcome) == [AlertKind.BAD_SIGNATURE]
    assert kinds(outcome, raised=False) == []  # SILENT stays
    r = row(mon, now_s=4.5)
    assert r.sequence == 1 and r.last_seen_age_s == pytest.approx(4.5)
    assert r.signature_state is SignatureState.CONTESTED
    assert set(r.active_alerts) == {AlertKind.SILENT, AlertKind.BAD_SIGNATURE}
    # more forgeries: refused every time, alerted once (no flood)
    again = hear(mon, robot, robot.beat(1005.0, signing_key=impostor), 5.0)
    assert again.refusal is Refusal.BAD_SIGNATURE and again.alerts == ()
    assert mon.refused_counts()[Refusal.BAD_SIGNATURE] == 2


@pytest.mark.parametrize(
    "field, value",
    [("safety_mode_name", "ESTOP"), ("guardian_on_duty", "G-9999"), ("sequence", 99), ("uptime", 1.5),
     ("log_chain_head", "ab" * 32), ("config_digest", "")],
)
@pytest.mark.clause("5.1a")
def test_any_field_changed_after_signing_is_a_bad_signature(field: str, value: Any) -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.beat(1000.0)
    setattr(msg, field, value)
    outcome = hear(mon, robot, msg, 0.0)
    assert outcome.refusal is Refusal.BAD_SIGNATURE and kinds(outcome) == [AlertKind.BAD_SIGNATURE]
    assert row(mon).signature_state is SignatureState.UNVERIFIED


def test_a_changed_watched_topic_or_stamp_is_a_bad_signature() -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.beat(1000.0)
    msg.watched_topics[1].healthy = False
    assert hear(mon, robot, msg, 0.0).refusal is Refusal.BAD_SIGNATURE
    msg = robot.beat(1001.0)
    msg.header.stamp.nanosec += 1
    assert hear(mon, robot, msg, 1.0).refusal is Refusal.BAD_SIGNATURE


@pytest.mark.clause("5.1a")
def test_missing_signature() -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.beat(1000.0)
    msg.signature = []
    outcome = hear(mon, robot, msg, 0.0)
    assert outcome.refusal is Refusal.MISSING_SIGNATURE and kinds(outcome) == [AlertKind.MISSING_SIGNATURE]
    assert outcome.alerts[0].identity_number == str(ID_A)


def test_signature_of_the_wrong_length_is_a_bad_signature() -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.beat(1000.0)
    msg.signature = bytes(msg.signature)[:63]
    assert hear(mon, robot, msg, 0.0).refusal is Refusal.BAD_SIGNATURE


@pytest.mark.clause("2.3")
def test_unknown_and_malformed_certificates() -> None:
    other_key = ed25519.Ed25519PrivateKey.generate()
    other_ca = create_department_ca("Rogue Bureau", other_key, 3650, now=T0)
    key = ed25519.Ed25519PrivateKey.generate()
    rogue = FakeRobot(key, issue(key, ca=other_ca, ca_key=other_key))
    mon = monitor()
    outcome = hear(mon, rogue, rogue.beat(1000.0), 0.0)
    assert outcome.refusal is Refusal.UNKNOWN_CERTIFICATE and "unknown issuer" in outcome.reason
    assert kinds(outcome) == [AlertKind.UNKNOWN_CERTIFICATE] and "unknown issuer" in outcome.alerts[0].detail
    garbage = FakeRobot(key, b"\x30\x03\x02\x01\x00", number=ID_B)
    assert kinds(hear(mon, garbage, garbage.beat(1000.0), 0.0)) == [AlertKind.UNKNOWN_CERTIFICATE]
    guardian_cert = certificate_der(
        issue_guardian_certificate(CA, CA_KEY, key.public_key(), "G-1", "Zhang", "operator", DEPT, T0,
                                   T0 + dt.timedelta(days=9))
    )
    as_robot = FakeRobot(key, guardian_cert, number=make_identity_number("440304", 2026, 125))
    outcome = hear(mon, as_robot, as_robot.beat(1000.0), 0.0)
    assert kinds(outcome) == [AlertKind.UNKNOWN_CERTIFICATE] and "not a robot certificate" in outcome.alerts[0].detail


@pytest.mark.clause("2.3")
def test_expired_and_not_yet_valid_certificates() -> None:
    clock = Clock()
    mon = monitor(clock)
    key = ed25519.Ed25519PrivateKey.generate()
    robot = FakeRobot(key, issue(key, days=2))
    assert hear(mon, robot, robot.beat(1000.0), 0.0).accepted
    clock.now = T0 + dt.timedelta(days=3)
    outcome = hear(mon, robot, robot.beat(1001.0), 1.0)
    assert outcome.refusal is Refusal.EXPIRED_CERTIFICATE
    assert kinds(outcome) == [AlertKind.EXPIRED_CERTIFICATE] and "expired" in outcome.alerts[0].detail
    assert row(mon, now_s=1.0).sequence == 1
    future_key = ed25519.Ed25519PrivateKey.generate()
    future = FakeRobot(future_key, issue(future_key, ID_B, start=T0 + dt.timedelta(days=10)), number=ID_B)
    outcome = hear(mon, future, future.beat(1000.0), 1.0)
    assert kinds(outcome) == [AlertKind.EXPIRED_CERTIFICATE] and "not yet valid" in outcome.alerts[0].detail


@pytest.mark.clause("2.3", "5.1a")
def test_identity_mismatch_with_a_genuine_key() -> None:
    mon = monitor()
    b = FakeRobot(number=ID_B, name="Xiao Shen")
    # robot B, with its own valid certificate and key, claims to be robot A
    b.number = str(ID_A)
    outcome = hear(mon, b, b.beat(1000.0), 0.0)
    assert outcome.refusal is Refusal.IDENTITY_MISMATCH and kinds(outcome) == [AlertKind.IDENTITY_MISMATCH]
    assert outcome.alerts[0].identity_number == str(ID_A) and str(ID_B) in outcome.alerts[0].detail
    b.number, b.name = str(ID_B), "Someone Else"
    assert kinds(hear(mon, b, b.beat(1001.0), 1.0)) == [AlertKind.IDENTITY_MISMATCH]


@pytest.mark.clause("5.1a")
def test_replay_of_a_genuine_heartbeat_is_refused_and_does_not_refresh_liveness() -> None:
    mon, robot = monitor(), FakeRobot()
    first = robot.beat(1000.0)
    hear(mon, robot, first, 0.0)
    hear(mon, robot, robot.beat(1001.0), 1.0)
    assert kinds(mon.check(4.5)) == [AlertKind.SILENT]
    outcome = mon.on_heartbeat(first, 5.0)
    assert outcome.refusal is Refusal.REPLAY and "sequence 1 not above 2" in outcome.reason
    assert kinds(outcome) == [AlertKind.REPLAY] and "sequence 1 not above 2" in outcome.alerts[0].detail
    assert AlertKind.SILENT in row(mon, now_s=5.0).active_alerts
    again = mon.on_heartbeat(first, 5.5)
    assert again.refusal is Refusal.REPLAY and again.alerts == ()  # raised once
    # no further evidence: cleared once after the hold time
    cleared = mon.check(9.0)
    assert kinds(cleared, raised=False) == [AlertKind.REPLAY]
    assert mon.check(20.0) == []


def test_restart_is_not_a_duplicate_or_a_replay() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    first = FakeRobot(key, boot_id="boot-1", gid=b"gid-1")
    for t in range(3):
        hear(mon, first, first.beat(1000.0 + t), float(t))
    late = first.beat(1003.0)  # sent just before the crash, delivered after the new process's first
    second = FakeRobot(key, first.cert, boot_id="boot-2", gid=b"gid-2")  # a new process: new publisher, numbers from 1
    out = list(hear(mon, second, second.beat(1005.0), 5.0).alerts)
    out += hear(mon, first, late, 5.1).alerts
    for t in range(6, 12):
        out += hear(mon, second, second.beat(1000.0 + t), float(t)).alerts
        out += mon.check(t + 0.5)
    assert out == []
    r = row(mon, now_s=11.0)
    assert (r.boot_id, r.sequence, r.publisher_gid) == ("boot-2", 7, b"gid-2".hex())


@pytest.mark.clause("2.3", "5.1a")
def test_clone_interleaving_with_the_original_is_a_duplicate() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    original = FakeRobot(key, boot_id="boot-1", gid=b"gid-1")
    clone = FakeRobot(key, original.cert, boot_id="boot-2", gid=b"gid-2")
    out: list[Alert] = []
    for t in range(3):
        out += hear(mon, original, original.beat(1000.0 + t), float(t)).alerts
    for t in range(3, 8):
        out += hear(mon, clone, clone.beat(1000.0 + t), float(t)).alerts
        out += hear(mon, original, original.beat(1000.2 + t), t + 0.2).alerts
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY]
    assert "boot-1" in out[0].detail and "boot-2" in out[0].detail
    assert row(mon, now_s=8.0).signature_state is SignatureState.CONTESTED
    # the clone stops: the alert clears once after the hold time
    later: list[Alert] = []
    for t in range(8, 14):
        later += hear(mon, clone, clone.beat(1000.0 + t), float(t)).alerts
        later += mon.check(t + 0.5)
    assert kinds(later, raised=False) == [AlertKind.DUPLICATE_IDENTITY] and kinds(later) == []


def test_old_session_speaking_twice_after_a_restart_is_a_duplicate_even_with_skewed_clocks() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    original = FakeRobot(key, boot_id="boot-1", gid=b"gid-1")
    hear(mon, original, original.beat(1000.0), 0.0)
    ahead = FakeRobot(key, original.cert, boot_id="boot-2", gid=b"gid-2")
    assert hear(mon, ahead, ahead.beat(5000.0), 1.0).alerts == ()
    assert hear(mon, original, original.beat(1001.0), 1.1).alerts == ()  # tolerated once (in flight)
    assert kinds(hear(mon, original, original.beat(1002.0), 2.0)) == [AlertKind.DUPLICATE_IDENTITY]


def _one_session_two_publishers(first: Reception, second: Reception, then_first: Reception) -> list[Alert]:
    mon, robot = monitor(), FakeRobot()
    out = list(mon.on_heartbeat(robot.beat(1000.0), 0.0, first).alerts)
    out += mon.on_heartbeat(robot.beat(1001.0), 1.0, second).alerts
    out += mon.on_heartbeat(robot.beat(1002.0), 2.0, then_first).alerts
    return out


def test_one_boot_session_from_two_publisher_gids_is_a_duplicate() -> None:
    out = _one_session_two_publishers(Reception("/r1/heartbeat", b"gid-1", 7), Reception("/r1/heartbeat", b"gid-2", 9),
                                      Reception("/r1/heartbeat", b"gid-1", 8))
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY] and b"gid-2".hex() in out[0].detail


def test_one_boot_session_on_two_topics_is_a_duplicate() -> None:
    out = _one_session_two_publishers(Reception("/r1/heartbeat"), Reception("/r2/heartbeat"),
                                      Reception("/r1/heartbeat"))
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY] and "/r2/heartbeat" in out[0].detail


def test_without_gids_interleaved_publishers_show_in_their_publication_numbers() -> None:
    # rclpy 7 (Jazzy) reports no gid; each publisher numbers its own messages from 1
    out = _one_session_two_publishers(Reception("/r1/heartbeat", b"", 5), Reception("/r1/heartbeat", b"", 1),
                                      Reception("/r1/heartbeat", b"", 6))
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY] and "publication number 1 after 5" in out[0].detail
    out = _one_session_two_publishers(Reception("/r1/heartbeat", b"", 5), Reception("/r1/heartbeat", b"", 40),
                                      Reception("/r1/heartbeat", b"", 6))
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY] and "publication number 6 after 40" in out[0].detail


def test_one_publisher_with_gaps_in_its_numbers_is_not_a_duplicate() -> None:
    # best effort: messages lost in between, never reordered
    out = _one_session_two_publishers(Reception("/r1/heartbeat", b"g", 5), Reception("/r1/heartbeat", b"g", 9),
                                      Reception("/r1/heartbeat", b"g", 30))
    assert out == []
    assert _one_session_two_publishers(Reception(), Reception(), Reception()) == []  # nothing known: nothing claimed


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"", b"g1", b"g2"]), st.integers(1, 50)), min_size=1, max_size=12))
def test_duplicate_publishers_property(heard: list[tuple[bytes, int]]) -> None:
    """DUPLICATE_IDENTITY exactly when consecutive receptions cannot come from one publisher."""
    mon, robot = monitor(), FakeRobot()
    out: list[Alert] = []
    for index, (gid, number) in enumerate(heard):
        heard_as = Reception("/r1/heartbeat", gid, number)
        out += mon.on_heartbeat(robot.beat(1000.0 + index), float(index), heard_as).alerts
    pairs = list(itertools.pairwise(heard))
    two = any((a[0] and b[0] and a[0] != b[0]) or b[1] <= a[1] for a, b in pairs)
    assert (AlertKind.DUPLICATE_IDENTITY in kinds(out)) == two


def test_replay_of_a_forgotten_old_session_is_not_a_restart() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    old = FakeRobot(key, boot_id="boot-old")
    recorded = [old.beat(900.0 + t) for t in range(3)]
    current = FakeRobot(key, old.cert, boot_id="boot-new")
    hear(mon, current, current.beat(1000.0), 0.0)
    outcome = hear(mon, old, recorded[0], 0.5)
    assert outcome.refusal is Refusal.REPLAY and kinds(outcome) == [AlertKind.REPLAY] and "stamped" in outcome.reason
    assert row(mon, now_s=0.5).boot_id == "boot-new"


@pytest.mark.clause("4.5", "6.4b")
def test_unhealthy_and_safety_mode_follow_genuine_content() -> None:
    mon, robot = monitor(), FakeRobot()
    out = hear(mon, robot, robot.beat(1000.0, mode="SAFE_STOP", stale=("imu",)), 0.0)
    assert out.accepted and sorted(kinds(out)) == [AlertKind.UNHEALTHY, AlertKind.SAFETY_MODE]
    assert any("imu" in a.detail for a in out.alerts) and any("SAFE_STOP" in a.detail for a in out.alerts)
    assert hear(mon, robot, robot.beat(1001.0, mode="SAFE_STOP", stale=("imu",)), 1.0).alerts == ()
    out = hear(mon, robot, robot.beat(1002.0, mode="ESTOP", stale=("imu",)), 2.0)
    assert kinds(out) == [AlertKind.SAFETY_MODE] and "ESTOP" in out.alerts[0].detail
    out = hear(mon, robot, robot.beat(1003.0), 3.0)
    assert sorted(kinds(out, raised=False)) == [AlertKind.UNHEALTHY, AlertKind.SAFETY_MODE] and kinds(out) == []


@pytest.mark.clause("5.1a")
def test_forged_mode_does_not_raise_state_alerts() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0), 0.0)
    forged = robot.beat(1001.0, signing_key=ed25519.Ed25519PrivateKey.generate(), mode="ESTOP")
    assert kinds(hear(mon, robot, forged, 1.0)) == [AlertKind.BAD_SIGNATURE]
    assert row(mon, now_s=1.0).safety_mode == "NORMAL"


def test_certificate_chain_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    original = CertificateVerifier._robot_identity

    def counting(self: CertificateVerifier, data: bytes) -> Any:
        calls.append(data)
        return original(self, data)

    monkeypatch.setattr(CertificateVerifier, "_robot_identity", counting)
    mon, robot = monitor(), FakeRobot()
    for t in range(10):
        assert hear(mon, robot, robot.beat(1000.0 + t), float(t)).accepted
    assert len(calls) == 1


@pytest.mark.parametrize("field, value, says", [
    ("uptime", math.nan, "not a finite number"),
    ("uptime", math.inf, "not a finite number"),
    ("identity_number", "\ud800", "UTF-8"),
])
def test_malformed_heartbeat_is_refused_with_a_bad_signature_alert(field: str, value: Any, says: str) -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.message(1000.0, signature=b"\x00" * 64)
    setattr(msg, field, value)
    outcome = hear(mon, robot, msg, 0.0)
    assert outcome.refusal is Refusal.MALFORMED and says in outcome.reason
    assert kinds(outcome) == [AlertKind.BAD_SIGNATURE] and "malformed heartbeat" in outcome.alerts[0].detail
    assert mon.refused_counts()[Refusal.MALFORMED] == 1
    assert hear(mon, robot, robot.beat(1001.0), 1.0).accepted


def test_malformed_watched_topic_and_its_claimed_identity() -> None:
    mon, robot = monitor(), FakeRobot()
    msg = robot.message(1000.0, signature=b"\x00" * 64)
    msg.watched_topics[0].age = math.nan
    outcome = hear(mon, robot, msg, 0.0)
    assert outcome.refusal is Refusal.MALFORMED and "watched_topics[0].age" in outcome.reason
    assert outcome.alerts[0].identity_number == str(ID_A)


def test_an_object_lacking_heartbeat_fields_is_malformed() -> None:
    mon, robot = monitor(), FakeRobot()
    beat = robot.beat(1000.0)
    fields = {name: getattr(beat, name) for name in msgs.Heartbeat.get_fields_and_field_types()}
    del fields["boot_id"]
    outcome = mon.on_heartbeat(types.SimpleNamespace(**fields), 0.0)
    assert outcome.refusal is Refusal.MALFORMED and kinds(outcome) == [AlertKind.BAD_SIGNATURE]
    assert outcome.alerts[0].identity_number == str(ID_A)
    assert mon.on_heartbeat(None, 0.1).refusal is Refusal.MALFORMED
    assert row(mon, "<invalid>", 0.1).signature_state is SignatureState.UNVERIFIED


def test_read_heartbeat_gives_the_signed_bytes_and_the_typed_fields() -> None:
    robot = FakeRobot()
    msg = robot.beat(1000.5, stale=("imu",))
    view = read_heartbeat(msg)
    assert (view.identity_number, view.sequence, view.stamp_ns, view.stale_topics) == (
        str(ID_A), 1, 1000_500_000_000, ("imu",))
    robot.key.public_key().verify(view.signature, view.signed_bytes)
    assert view.certificate == robot.cert
    with pytest.raises(HeartbeatFormatError, match="not a ROS message"):
        read_heartbeat(types.SimpleNamespace(identity_number=str(ID_A)))


def test_claims_for_many_unknown_identities_are_bounded() -> None:
    mon = monitor(max_unverified_robots=5)
    robot = FakeRobot()
    for serial in range(1, 21):
        robot.number = str(make_identity_number("440304", 2026, serial))
        msg = robot.message(1000.0, signature=b"")
        assert hear(mon, robot, msg, float(serial)).refusal is Refusal.MISSING_SIGNATURE
    assert len(mon.rows(21.0)) == 5
    assert len(mon.active_alerts()) == 5


def test_unverified_claims_are_forgotten_after_their_alerts_clear() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.message(1000.0, signature=b""), 0.0)
    assert [r.signature_state for r in mon.rows(0.0)] == [SignatureState.UNVERIFIED]
    assert kinds(mon.check(4.0), raised=False) == [AlertKind.MISSING_SIGNATURE]
    mon.check(8.0)
    assert mon.rows(8.0) == []


@pytest.mark.parametrize("kwargs", [{"period_s": 0.0}, {"period_s": float("nan")}, {"silent_periods": 0},
                                    {"hold_s": -1.0}])
def test_bad_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FleetMonitor([CA], **kwargs)


def test_outcome_tells_genuine_fresh_heartbeats_apart() -> None:
    mon, robot = monitor(), FakeRobot()
    first = robot.beat(1000.0)
    assert hear(mon, robot, first, 0.0).accepted
    assert not hear(mon, robot, first, 0.5).accepted  # replay
    forged = robot.beat(1001.0, signing_key=ed25519.Ed25519PrivateKey.generate())
    assert not hear(mon, robot, forged, 1.0).accepted
    assert hear(mon, robot, robot.beat(1002.0), 2.0).accepted
    assert mon.accepted_count == 2
    assert {k: v for k, v in mon.refused_counts().items() if v} == {Refusal.REPLAY: 1, Refusal.BAD_SIGNATURE: 1}


def test_every_refusal_raises_its_alert_kind() -> None:
    assert {r: r.alert_kind for r in Refusal} == {
        Refusal.MALFORMED: AlertKind.BAD_SIGNATURE, Refusal.MISSING_SIGNATURE: AlertKind.MISSING_SIGNATURE,
        Refusal.UNKNOWN_CERTIFICATE: AlertKind.UNKNOWN_CERTIFICATE,
        Refusal.EXPIRED_CERTIFICATE: AlertKind.EXPIRED_CERTIFICATE, Refusal.BAD_SIGNATURE: AlertKind.BAD_SIGNATURE,
        Refusal.IDENTITY_MISMATCH: AlertKind.IDENTITY_MISMATCH, Refusal.REPLAY: AlertKind.REPLAY,
    }


def test_a_known_certificate_still_expires_with_its_ca() -> None:
    clock = Clock()
    short_ca = create_department_ca(DEPT, CA_KEY, 10, now=T0)  # CA's key and name, trusted until T0 + 10 days
    mon = FleetMonitor([short_ca], period_s=1.0, silent_periods=3, clock=clock)
    robot = FakeRobot()  # its certificate (issued by CA) is valid for 365 days
    assert hear(mon, robot, robot.beat(1000.0), 0.0).accepted
    clock.now = T0 + dt.timedelta(days=9)
    assert hear(mon, robot, robot.beat(1001.0), 1.0).accepted
    clock.now = T0 + dt.timedelta(days=11)
    outcome = hear(mon, robot, robot.beat(1002.0), 2.0)
    assert outcome.refusal is Refusal.EXPIRED_CERTIFICATE and "issuing CA expired" in outcome.reason
    clock.now = T0 - dt.timedelta(days=1)
    outcome = hear(mon, robot, robot.beat(1003.0), 3.0)
    assert outcome.refusal is Refusal.EXPIRED_CERTIFICATE and "not valid before" in outcome.reason


def test_a_robot_renewing_its_certificate_is_verified_against_the_new_one() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    robot = FakeRobot(key, issue(key, days=30))
    assert hear(mon, robot, robot.beat(1000.0), 0.0).accepted
    robot.cert = issue(key, days=400)
    assert hear(mon, robot, robot.beat(1001.0), 1.0).accepted
    assert row(mon, now_s=1.0).certificate_not_after == T0 + dt.timedelta(days=400)
    robot.cert = issue(ed25519.Ed25519PrivateKey.generate(), days=400)  # a certificate for another key
    assert hear(mon, robot, robot.beat(1002.0), 2.0).refusal is Refusal.BAD_SIGNATURE


def test_genuine_robots_do_not_count_against_the_unverified_limit() -> None:
    mon = monitor(max_unverified_robots=2)
    genuine = [FakeRobot(number=make_identity_number("440304", 2026, serial)) for serial in (1, 2, 3)]
    for robot in genuine:
        assert hear(mon, robot, robot.beat(1000.0), 0.0).accepted
    claimer = FakeRobot()
    for serial in range(10, 14):
        claimer.number = str(make_identity_number("440304", 2026, serial))
        hear(mon, claimer, claimer.message(1000.0, signature=b""), float(serial))
    states = [r.signature_state for r in mon.rows(14.0)]
    assert states.count(SignatureState.VERIFIED) == 3 and states.count(SignatureState.UNVERIFIED) == 2


# -- incident reports ------------------------------------------------------------------------------


def incident_report(robot: FakeRobot, serial: int = 1, acknowledged: bool = False, measures: str = "hold posture",
                    key: ed25519.Ed25519PrivateKey | None = None, **changes: Any) -> tuple[dict[str, Any], bytes]:
    """The mapping (``message_fields`` of the IncidentReport message) and signature the robot would publish."""
    fields = IncidentFields(
        incident_id=f"{robot.number}/20260302T081502Z/{serial:08x}", identity_number=robot.number,
        robot_name=robot.name, department=DEPT, opened_at=NOW, severity=3,
        what_happened="SAFE_STOP from NORMAL by detector: joint_limit", source="detector", scope="service hall",
        measures_taken=measures, guardian_on_duty="G-0001", contact="+86 755 0000 0001", mode_before=1,
        mode_after=3, anomaly_kinds=("joint_limit",), acknowledged=acknowledged,
        acknowledged_by="G-0002" if acknowledged else "", acknowledged_at=NOW if acknowledged else None,
        certificate=robot.cert,
    )
    mapping = incident_fields_mapping(dataclasses.replace(fields, **changes), NOW)
    return mapping, sign_incident(key or robot.key, mapping)


@pytest.mark.clause("4.5", "6.4c")
def test_an_incident_raises_one_alert_until_its_acknowledged_report_clears_it() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0, mode="SAFE_STOP", open_incidents=1), 0.0)
    opened = mon.on_incident(*incident_report(robot), now_s=0.5)
    assert opened.accepted and opened.change is IncidentChange.OPENED and kinds(opened.alerts) == [AlertKind.INCIDENT]
    assert f"{robot.number}/20260302T081502Z/00000001" in opened.alerts[0].detail
    assert "SAFE_STOP from NORMAL" in opened.alerts[0].detail
    assert opened.incident is not None and opened.incident.fields.measures_taken == "hold posture"
    r = row(mon, now_s=0.5)
    assert (r.open_incidents, r.heartbeat_open_incidents) == (1, 1) and AlertKind.INCIDENT in r.active_alerts
    assert [a.kind for a in mon.active_alerts()].count(AlertKind.INCIDENT) == 1
    repeated = mon.on_incident(*incident_report(robot), now_s=5.5)
    assert repeated.change is IncidentChange.REPEATED and repeated.alerts == ()
    updated = mon.on_incident(*incident_report(robot, measures="hold posture | then POWER_DOWN"), now_s=6.0)
    assert updated.change is IncidentChange.UPDATED and updated.alerts == ()
    assert [v.fields.measures_taken for v in mon.open_incidents(robot.number)] == ["hold posture | then POWER_DOWN"]
    closed = mon.on_incident(*incident_report(robot, acknowledged=True), now_s=7.0)
    assert closed.change is IncidentChange.CLOSED and kinds(closed.alerts, raised=False) == [AlertKind.INCIDENT]
    assert "acknowledged by G-0002" in closed.alerts[0].detail
    assert row(mon, now_s=7.0).open_incidents == 0 and mon.open_incidents() == []
    assert AlertKind.INCIDENT not in row(mon, now_s=7.0).active_alerts
    for late in (incident_report(robot, acknowledged=True), incident_report(robot)):  # duplicates, late copies
        again = mon.on_incident(*late, now_s=8.0)
        assert again.change is IncidentChange.ALREADY_CLOSED and again.alerts == ()
    assert mon.open_incidents() == [] and not any(a.kind is AlertKind.INCIDENT for a in mon.active_alerts())


@pytest.mark.clause("6.4c")
def test_each_open_incident_has_its_own_alert_and_the_table_counts_them() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0, open_incidents=3), 0.0)
    for serial in (1, 2):
        assert kinds(mon.on_incident(*incident_report(robot, serial), now_s=1.0).alerts) == [AlertKind.INCIDENT]
    assert [a.kind for a in mon.active_alerts()].count(AlertKind.INCIDENT) == 2
    r = row(mon, now_s=1.0)
    assert (r.open_incidents, r.heartbeat_open_incidents) == (2, 3)
    table = render_table(mon.rows(1.0))
    assert "INCIDENTS" in table.splitlines()[0] and "2 (robot: 3)" in table
    closed = mon.on_incident(*incident_report(robot, 1, acknowledged=True), now_s=2.0)
    assert kinds(closed.alerts, raised=False) == [AlertKind.INCIDENT] and row(mon, now_s=2.0).open_incidents == 1
    assert AlertKind.INCIDENT in row(mon, now_s=2.0).active_alerts
    hear(mon, robot, robot.beat(1003.0, open_incidents=1), 3.0)
    assert "INCIDENTS" in render_table(mon.rows(3.0)) and "(robot:" not in render_table(mon.rows(3.0))


@pytest.mark.clause("5.1a", "6.4c")
def test_forged_or_malformed_incident_reports_open_nothing_and_raise_evidence_alerts() -> None:
    mon, robot = monitor(), FakeRobot()
    hear(mon, robot, robot.beat(1000.0), 0.0)
    forged = mon.on_incident(*incident_report(robot, key=ed25519.Ed25519PrivateKey.generate()), now_s=1.0)
    assert forged.change is IncidentChange.REFUSED and forged.refusal is IncidentRefusal.BAD_SIGNATURE
    assert kinds(forged.alerts) == [AlertKind.BAD_SIGNATURE] and "incident report" in forged.reason
    mapping, signature = incident_report(robot)
    malformed = mon.on_incident({**mapping, "severity": "high"}, signature, now_s=1.5)
    assert malformed.refusal is IncidentRefusal.MALFORMED and malformed.alerts == ()  # BAD_SIGNATURE already raised
    claimed = mon.on_incident(*incident_report(robot, robot_name="Da Fu"), now_s=2.0)
    assert claimed.refusal is IncidentRefusal.IDENTITY_MISMATCH and kinds(claimed.alerts) == [AlertKind.IDENTITY_MISMATCH]
    unknown = mon.on_incident(mapping, b"", now_s=2.5)
    assert unknown.refusal is IncidentRefusal.MISSING_SIGNATURE
    assert mon.open_incidents() == [] and row(mon, now_s=2.5).open_incidents == 0
    assert AlertKind.INCIDENT not in row(mon, now_s=2.5).active_alerts
    expired = mon.on_incident(*incident_report(robot), wall_clock=T0 + dt.timedelta(days=400), now_s=3.0)
    assert expired.refusal is IncidentRefusal.EXPIRED_CERTIFICATE


def test_a_genuine_incident_of_a_robot_not_heard_yet_is_kept_until_acknowledged() -> None:
    mon, robot = monitor(), FakeRobot()
    mapping, signature = incident_report(robot)
    msg = msgs.IncidentReport(signature=signature)
    for name, value in mapping.items():
        if name not in ("header", "opened_at", "acknowledged_at"):
            setattr(msg, name, value)
    msg.header.stamp.sec = mapping["header"]["stamp"]["sec"]
    msg.opened_at.sec, msg.opened_at.nanosec = mapping["opened_at"]["sec"], mapping["opened_at"]["nanosec"]
    assert mon.on_incident(message_fields(msg), bytes(msg.signature), now_s=0.0).change is IncidentChange.OPENED
    assert mon.check(100.0) == [] and row(mon, now_s=100.0).open_incidents == 1  # not forgotten as unverified
    assert row(mon, now_s=100.0).robot_name == "Xiao Fu"
