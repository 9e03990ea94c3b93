"""Department monitor logic: authentication, freshness, duplicates, silence, alert hygiene."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.certificates import (
    CertificateVerifier,
    certificate_der,
    create_department_ca,
    issue_guardian_certificate,
    issue_robot_certificate,
)
from ftrobot_guard.fleet_monitor import (
    Alert,
    AlertKind,
    FleetMonitor,
    HeartbeatFormatError,
    HeartbeatView,
    SignatureState,
    heartbeat_view_from_fields,
)
from ftrobot_guard.identity import make_identity_number
from ftrobot_guard.signed_fields import HEARTBEAT_DOMAIN, sign_fields

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
NOW = T0 + dt.timedelta(days=1)
DEPT = "Futian Data Bureau"
CA_KEY = ed25519.Ed25519PrivateKey.generate()
CA = create_department_ca(DEPT, CA_KEY, 3650, now=T0)
ID_A = make_identity_number("440304", 2026, 123)
ID_B = make_identity_number("440304", 2026, 124)


def issue(key: ed25519.Ed25519PrivateKey, number: Any = ID_A, name: str = "Xiao Fu", days: int = 365,
          ca: Any = CA, ca_key: Any = CA_KEY, start: dt.datetime = T0) -> bytes:
    return certificate_der(
        issue_robot_certificate(ca, ca_key, key.public_key(), number, name, DEPT, start, start + dt.timedelta(days=days))
    )


class FakeRobot:
    """Builds signed heartbeats like the robot's heartbeat node would."""

    def __init__(self, key: ed25519.Ed25519PrivateKey | None = None, cert: bytes | None = None, number: Any = ID_A,
                 name: str = "Xiao Fu", boot_id: str = "boot-1", sender: str = "gid-1") -> None:
        self.key = key or ed25519.Ed25519PrivateKey.generate()
        self.cert = cert if cert is not None else issue(self.key, number, name)
        self.number, self.name, self.boot_id, self.sender = str(number), name, boot_id, sender
        self.sequence = 0

    def fields(self, stamp_s: float, mode: str = "NORMAL", stale: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
        self.sequence += 1
        sec = int(stamp_s)
        fields: dict[str, Any] = {
            "header": {"stamp": {"sec": sec, "nanosec": int((stamp_s - sec) * 1e9)}, "frame_id": ""},
            "format_version": 1,
            "identity_number": self.number,
            "robot_name": self.name,
            "department": DEPT,
            "boot_id": self.boot_id,
            "sequence": self.sequence,
            "uptime": float(self.sequence),
            "safety_mode": 1,
            "safety_mode_name": mode,
            "watched_topics": [
                {"topic": t, "ever_received": True, "age": 0.5 if t in stale else 0.01, "max_age": 0.2,
                 "healthy": t not in stale}
                for t in ("joint_states", "imu")
            ],
            "software_digest": "ab" * 32,
            "config_digest": "cd" * 32,
            "guardian_on_duty": "G-0001",
            "log_checkpoint_sequence": 0,
            "log_segment_id": "",
            "log_chain_head": "",
            "certificate": self.cert,
        }
        fields.update(overrides)
        return fields

    def beat(self, stamp_s: float, signing_key: ed25519.Ed25519PrivateKey | None = None, **kwargs: Any) -> HeartbeatView:
        fields = self.fields(stamp_s, **kwargs)
        signature = sign_fields(signing_key or self.key, HEARTBEAT_DOMAIN, fields)
        return heartbeat_view_from_fields(fields, signature, self.sender)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def monitor(clock: Clock | None = None, **kwargs: Any) -> FleetMonitor:
    return FleetMonitor([CA], period_s=1.0, silent_periods=3, clock=clock or Clock(), **kwargs)


def kinds(alerts: list[Alert], raised: bool = True) -> list[AlertKind]:
    return [a.kind for a in alerts if a.raised is raised]


def row(mon: FleetMonitor, number: Any = ID_A, now_s: float = 0.0) -> Any:
    return next(r for r in mon.rows(now_s) if r.identity_number == str(number))


def test_alert_kinds_match_the_department_alert_message() -> None:
    msg = Path(__file__).resolve().parents[1] / "src" / "ftrobot_msgs" / "msg" / "DepartmentAlert.msg"
    if not msg.exists():
        pytest.skip("ftrobot_msgs not present")
    constants = dict(re.findall(r"uint8 KIND_(\w+)=(\d+)", msg.read_text()))
    assert {k: int(v) for k, v in constants.items()} == {k.name: k.value for k in AlertKind}


def test_genuine_heartbeats_raise_nothing_and_fill_the_row() -> None:
    mon, robot = monitor(), FakeRobot()
    for t in range(5):
        assert mon.on_heartbeat(robot.beat(1000.0 + t), now_s=float(t)) == []
        assert mon.check(float(t) + 0.5) == []
    r = row(mon, now_s=4.5)
    assert (r.robot_name, r.department, r.safety_mode, r.sequence, r.boot_id) == ("Xiao Fu", DEPT, "NORMAL", 5, "boot-1")
    assert r.signature_state is SignatureState.VERIFIED
    assert r.last_seen_age_s == pytest.approx(0.5)
    assert r.active_alerts == ()
    assert r.certificate_not_after == T0 + dt.timedelta(days=365)
    assert mon.rows()[0].last_seen_age_s == pytest.approx(0.5)  # default: time of the latest check


def test_silence_is_raised_once_and_cleared_once() -> None:
    mon, robot = monitor(), FakeRobot()
    mon.on_heartbeat(robot.beat(1000.0), now_s=0.0)
    assert mon.check(3.0) == []
    raised = mon.check(3.1)
    assert kinds(raised) == [AlertKind.SILENT] and "no genuine heartbeat" in raised[0].detail
    assert mon.check(10.0) == [] and mon.check(20.0) == []
    cleared = mon.on_heartbeat(robot.beat(1020.0), now_s=20.5)
    assert kinds(cleared, raised=False) == [AlertKind.SILENT]
    assert mon.on_heartbeat(robot.beat(1021.0), now_s=21.5) == []


def test_forged_heartbeat_does_not_count_as_alive() -> None:
    mon, robot = monitor(), FakeRobot()
    mon.on_heartbeat(robot.beat(1000.0), now_s=0.0)
    assert kinds(mon.check(4.0)) == [AlertKind.SILENT]
    impostor = ed25519.Ed25519PrivateKey.generate()
    forged = robot.beat(1004.0, signing_key=impostor, mode="NORMAL")
    alerts = mon.on_heartbeat(forged, now_s=4.5)
    assert kinds(alerts) == [AlertKind.BAD_SIGNATURE]
    assert kinds(alerts, raised=False) == []  # SILENT stays
    r = row(mon, now_s=4.5)
    assert r.sequence == 1 and r.last_seen_age_s == pytest.approx(4.5)
    assert r.signature_state is SignatureState.CONTESTED
    assert set(r.active_alerts) == {AlertKind.SILENT, AlertKind.BAD_SIGNATURE}
    # more forgeries: no flood
    assert mon.on_heartbeat(robot.beat(1005.0, signing_key=impostor), now_s=5.0) == []


def test_view_that_differs_from_its_signed_fields_is_refused() -> None:
    mon, robot = monitor(), FakeRobot()
    genuine = robot.beat(1000.0)
    tampered = dataclasses.replace(genuine, safety_mode_name="ESTOP")
    alerts = mon.on_heartbeat(tampered, now_s=0.0)
    assert kinds(alerts) == [AlertKind.BAD_SIGNATURE] and "safety_mode_name" in alerts[0].detail
    assert row(mon).signature_state is SignatureState.UNVERIFIED


def test_signed_field_tampering_is_a_bad_signature() -> None:
    mon, robot = monitor(), FakeRobot()
    genuine = robot.beat(1000.0)
    fields = dict(genuine.signed_fields)
    fields["guardian_on_duty"] = "G-9999"
    view = heartbeat_view_from_fields(fields, genuine.signature, genuine.sender)
    assert kinds(mon.on_heartbeat(view, now_s=0.0)) == [AlertKind.BAD_SIGNATURE]


def test_missing_signature() -> None:
    mon, robot = monitor(), FakeRobot()
    view = dataclasses.replace(robot.beat(1000.0), signature=b"")
    alerts = mon.on_heartbeat(view, now_s=0.0)
    assert kinds(alerts) == [AlertKind.MISSING_SIGNATURE]
    assert alerts[0].identity_number == str(ID_A)


def test_unknown_and_malformed_certificates() -> None:
    other_key = ed25519.Ed25519PrivateKey.generate()
    other_ca = create_department_ca("Rogue Bureau", other_key, 3650, now=T0)
    key = ed25519.Ed25519PrivateKey.generate()
    rogue = FakeRobot(key, issue(key, ca=other_ca, ca_key=other_key))
    mon = monitor()
    alerts = mon.on_heartbeat(rogue.beat(1000.0), now_s=0.0)
    assert kinds(alerts) == [AlertKind.UNKNOWN_CERTIFICATE] and "unknown issuer" in alerts[0].detail
    garbage = FakeRobot(key, b"\x30\x03\x02\x01\x00", number=ID_B)
    assert kinds(mon.on_heartbeat(garbage.beat(1000.0), now_s=0.0)) == [AlertKind.UNKNOWN_CERTIFICATE]
    guardian_cert = certificate_der(
        issue_guardian_certificate(CA, CA_KEY, key.public_key(), "G-1", "Zhang", "operator", DEPT, T0,
                                   T0 + dt.timedelta(days=9))
    )
    as_robot = FakeRobot(key, guardian_cert, number=make_identity_number("440304", 2026, 125))
    alerts = mon.on_heartbeat(as_robot.beat(1000.0), now_s=0.0)
    assert kinds(alerts) == [AlertKind.UNKNOWN_CERTIFICATE] and "not a robot certificate" in alerts[0].detail


def test_expired_and_not_yet_valid_certificates() -> None:
    clock = Clock()
    mon = monitor(clock)
    key = ed25519.Ed25519PrivateKey.generate()
    robot = FakeRobot(key, issue(key, days=2))
    assert mon.on_heartbeat(robot.beat(1000.0), now_s=0.0) == []
    clock.now = T0 + dt.timedelta(days=3)
    alerts = mon.on_heartbeat(robot.beat(1001.0), now_s=1.0)
    assert kinds(alerts) == [AlertKind.EXPIRED_CERTIFICATE] and "expired" in alerts[0].detail
    assert row(mon, now_s=1.0).sequence == 1
    future_key = ed25519.Ed25519PrivateKey.generate()
    future = FakeRobot(future_key, issue(future_key, ID_B, start=T0 + dt.timedelta(days=10)), number=ID_B)
    alerts = mon.on_heartbeat(future.beat(1000.0), now_s=1.0)
    assert kinds(alerts) == [AlertKind.EXPIRED_CERTIFICATE] and "not yet valid" in alerts[0].detail


def test_identity_mismatch_with_a_genuine_key() -> None:
    mon = monitor()
    b = FakeRobot(number=ID_B, name="Xiao Shen")
    # robot B, with its own valid certificate and key, claims to be robot A
    b.number = str(ID_A)
    alerts = mon.on_heartbeat(b.beat(1000.0), now_s=0.0)
    assert kinds(alerts) == [AlertKind.IDENTITY_MISMATCH]
    assert alerts[0].identity_number == str(ID_A) and str(ID_B) in alerts[0].detail
    b.number, b.name = str(ID_B), "Someone Else"
    assert kinds(mon.on_heartbeat(b.beat(1001.0), now_s=1.0)) == [AlertKind.IDENTITY_MISMATCH]


def test_replay_of_a_genuine_heartbeat_is_refused_and_does_not_refresh_liveness() -> None:
    mon, robot = monitor(), FakeRobot()
    first = robot.beat(1000.0)
    mon.on_heartbeat(first, now_s=0.0)
    mon.on_heartbeat(robot.beat(1001.0), now_s=1.0)
    assert kinds(mon.check(4.5)) == [AlertKind.SILENT]
    alerts = mon.on_heartbeat(first, now_s=5.0)
    assert kinds(alerts) == [AlertKind.REPLAY] and "sequence 1 not above 2" in alerts[0].detail
    assert AlertKind.SILENT in row(mon, now_s=5.0).active_alerts
    assert mon.on_heartbeat(first, now_s=5.5) == []  # raised once
    # no further evidence: cleared once after the hold time
    cleared = mon.check(9.0)
    assert kinds(cleared, raised=False) == [AlertKind.REPLAY]
    assert mon.check(20.0) == []


def test_restart_is_not_a_duplicate_or_a_replay() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    first = FakeRobot(key, boot_id="boot-1", sender="gid-1")
    for t in range(3):
        mon.on_heartbeat(first.beat(1000.0 + t), now_s=float(t))
    late = first.beat(1003.0)  # sent just before the crash, delivered after the new process's first
    second = FakeRobot(key, first.cert, boot_id="boot-2", sender="gid-2")
    out = mon.on_heartbeat(second.beat(1005.0), now_s=5.0)
    out += mon.on_heartbeat(late, now_s=5.1)
    for t in range(6, 12):
        out += mon.on_heartbeat(second.beat(1000.0 + t), now_s=float(t))
        out += mon.check(t + 0.5)
    assert out == []
    r = row(mon, now_s=11.0)
    assert (r.boot_id, r.sequence, r.sender) == ("boot-2", 7, "gid-2")


def test_clone_interleaving_with_the_original_is_a_duplicate() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    original = FakeRobot(key, boot_id="boot-1", sender="gid-1")
    clone = FakeRobot(key, original.cert, boot_id="boot-2", sender="gid-2")
    out: list[Alert] = []
    for t in range(3):
        out += mon.on_heartbeat(original.beat(1000.0 + t), now_s=float(t))
    for t in range(3, 8):
        out += mon.on_heartbeat(clone.beat(1000.0 + t), now_s=float(t))
        out += mon.on_heartbeat(original.beat(1000.2 + t), now_s=t + 0.2)
    assert kinds(out) == [AlertKind.DUPLICATE_IDENTITY]
    assert "boot-1" in out[0].detail and "boot-2" in out[0].detail
    assert row(mon, now_s=8.0).signature_state is SignatureState.CONTESTED
    # the clone stops: the alert clears once after the hold time
    later: list[Alert] = []
    for t in range(8, 14):
        later += mon.on_heartbeat(clone.beat(1000.0 + t), now_s=float(t))
        later += mon.check(t + 0.5)
    assert kinds(later, raised=False) == [AlertKind.DUPLICATE_IDENTITY] and kinds(later) == []


def test_old_session_speaking_twice_after_a_restart_is_a_duplicate_even_with_skewed_clocks() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    original = FakeRobot(key, boot_id="boot-1", sender="gid-1")
    mon.on_heartbeat(original.beat(1000.0), now_s=0.0)
    ahead = FakeRobot(key, original.cert, boot_id="boot-2", sender="gid-2")
    assert mon.on_heartbeat(ahead.beat(5000.0), now_s=1.0) == []
    assert mon.on_heartbeat(original.beat(1001.0), now_s=1.1) == []  # tolerated once (in flight)
    assert kinds(mon.on_heartbeat(original.beat(1002.0), now_s=2.0)) == [AlertKind.DUPLICATE_IDENTITY]


def test_one_boot_session_from_two_publishers_is_a_duplicate() -> None:
    mon, robot = monitor(), FakeRobot(sender="gid-1")
    mon.on_heartbeat(robot.beat(1000.0), now_s=0.0)
    robot.sender = "gid-2"
    assert kinds(mon.on_heartbeat(robot.beat(1001.0), now_s=1.0)) == [AlertKind.DUPLICATE_IDENTITY]


def test_replay_of_a_forgotten_old_session_is_not_a_restart() -> None:
    mon, key = monitor(), ed25519.Ed25519PrivateKey.generate()
    old = FakeRobot(key, boot_id="boot-old")
    recorded = [old.beat(900.0 + t) for t in range(3)]
    current = FakeRobot(key, old.cert, boot_id="boot-new")
    mon.on_heartbeat(current.beat(1000.0), now_s=0.0)
    alerts = mon.on_heartbeat(recorded[0], now_s=0.5)
    assert kinds(alerts) == [AlertKind.REPLAY] and "stamped" in alerts[0].detail
    assert row(mon, now_s=0.5).boot_id == "boot-new"


def test_unhealthy_and_safety_mode_follow_genuine_content() -> None:
    mon, robot = monitor(), FakeRobot()
    out = mon.on_heartbeat(robot.beat(1000.0, mode="SAFE_STOP", stale=("imu",)), now_s=0.0)
    assert sorted(kinds(out)) == [AlertKind.UNHEALTHY, AlertKind.SAFETY_MODE]
    assert any("imu" in a.detail for a in out) and any("SAFE_STOP" in a.detail for a in out)
    assert mon.on_heartbeat(robot.beat(1001.0, mode="SAFE_STOP", stale=("imu",)), now_s=1.0) == []
    out = mon.on_heartbeat(robot.beat(1002.0, mode="ESTOP", stale=("imu",)), now_s=2.0)
    assert kinds(out) == [AlertKind.SAFETY_MODE] and "ESTOP" in out[0].detail
    out = mon.on_heartbeat(robot.beat(1003.0), now_s=3.0)
    assert sorted(kinds(out, raised=False)) == [AlertKind.UNHEALTHY, AlertKind.SAFETY_MODE] and kinds(out) == []


def test_forged_mode_does_not_raise_state_alerts() -> None:
    mon, robot = monitor(), FakeRobot()
    mon.on_heartbeat(robot.beat(1000.0), now_s=0.0)
    forged = robot.beat(1001.0, signing_key=ed25519.Ed25519PrivateKey.generate(), mode="ESTOP")
    assert kinds(mon.on_heartbeat(forged, now_s=1.0)) == [AlertKind.BAD_SIGNATURE]
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
        mon.on_heartbeat(robot.beat(1000.0 + t), now_s=float(t))
    assert len(calls) == 1


def test_malformed_fields() -> None:
    mon, robot = monitor(), FakeRobot()
    fields = robot.fields(1000.0)
    del fields["boot_id"]
    alerts = mon.on_heartbeat_fields(fields, b"\x00" * 64, "gid-1", now_s=0.0)
    assert kinds(alerts) == [AlertKind.BAD_SIGNATURE] and "boot_id" in alerts[0].detail
    assert alerts[0].identity_number == str(ID_A)
    with pytest.raises(HeartbeatFormatError, match="sequence"):
        heartbeat_view_from_fields({**robot.fields(1.0), "sequence": True}, b"", "")
    with pytest.raises(HeartbeatFormatError, match="uptime"):
        heartbeat_view_from_fields({**robot.fields(1.0), "uptime": float("nan")}, b"", "")
    with pytest.raises(HeartbeatFormatError, match=r"watched_topics\[0\]"):
        heartbeat_view_from_fields({**robot.fields(1.0), "watched_topics": [{"topic": "x"}]}, b"", "")
    good = robot.fields(1001.0)
    assert mon.on_heartbeat_fields(good, sign_fields(robot.key, HEARTBEAT_DOMAIN, good), "gid-1", 1.0) == []


def test_claims_for_many_unknown_identities_are_bounded() -> None:
    mon = monitor(max_unverified_robots=5)
    robot = FakeRobot()
    for serial in range(1, 21):
        number = str(make_identity_number("440304", 2026, serial))
        view = dataclasses.replace(robot.beat(1000.0), identity_number=number, signature=b"")
        mon.on_heartbeat(view, now_s=float(serial))
    assert len(mon.rows(21.0)) == 5
    assert len(mon.active_alerts()) == 5


def test_unverified_claims_are_forgotten_after_their_alerts_clear() -> None:
    mon, robot = monitor(), FakeRobot()
    mon.on_heartbeat(dataclasses.replace(robot.beat(1000.0), signature=b""), now_s=0.0)
    assert [r.signature_state for r in mon.rows(0.0)] == [SignatureState.UNVERIFIED]
    assert kinds(mon.check(4.0), raised=False) == [AlertKind.MISSING_SIGNATURE]
    mon.check(8.0)
    assert mon.rows(8.0) == []


@pytest.mark.parametrize("kwargs", [{"period_s": 0.0}, {"period_s": float("nan")}, {"silent_periods": 0},
                                    {"hold_s": -1.0}])
def test_bad_parameters_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FleetMonitor([CA], **kwargs)


def test_accepted_tells_genuine_fresh_heartbeats_apart() -> None:
    mon, robot = monitor(), FakeRobot()
    first = robot.beat(1000.0)
    mon.on_heartbeat(first, now_s=0.0)
    assert mon.accepted(first)
    mon.on_heartbeat(first, now_s=0.5)  # replay
    assert not mon.accepted(first)
    forged = robot.beat(1001.0, signing_key=ed25519.Ed25519PrivateKey.generate())
    mon.on_heartbeat(forged, now_s=1.0)
    assert not mon.accepted(forged)
    second = robot.beat(1002.0)
    mon.on_heartbeat(second, now_s=2.0)
    assert mon.accepted(second) and not mon.accepted(first)
