"""Incident reports (incidents/incident_report.py): the signed mapping is the message's, and the department verifies it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.incidents.incident_report import (
    INCIDENT_DOMAIN,
    IncidentFields,
    IncidentRefusal,
    IncidentRefused,
    VerifiedIncident,
    incident_fields_mapping,
    read_incident_fields,
    sign_incident,
    time_fields,
    verify_incident,
)
from ftrobot_guard.trust.certificates import (
    CertificateVerifier,
    certificate_der,
    create_department_ca,
    issue_robot_certificate,
)
from ftrobot_guard.trust.identity import make_identity_number
from ftrobot_guard.trust.signed_fields import canonical_bytes, message_canonical_bytes, message_fields

msgs = pytest.importorskip("ftrobot_msgs.msg")

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=1)
DEPT = "Futian Data Bureau"
NUMBER = make_identity_number("440304", 2026, 123)
OTHER_NUMBER = make_identity_number("440304", 2026, 124)
CA_KEY = ed25519.Ed25519PrivateKey.generate()
CA = create_department_ca(DEPT, CA_KEY, 3650, now=T0)
ROBOT_KEY = ed25519.Ed25519PrivateKey.generate()


def issue(key: ed25519.Ed25519PrivateKey, number: Any = NUMBER, name: str = "Xiao Fu", ca: Any = CA,
          ca_key: Any = CA_KEY, start: dt.datetime = T0, days: int = 365) -> bytes:
    return certificate_der(issue_robot_certificate(ca, ca_key, key.public_key(), number, name, DEPT, start,
                                                   start + dt.timedelta(days=days)))


CERT = issue(ROBOT_KEY)


def fields(**changes: Any) -> IncidentFields:
    base = IncidentFields(
        incident_id=f"{NUMBER}/20260302T081502Z/0a1b2c3d", identity_number=str(NUMBER), robot_name="Xiao Fu",
        department=DEPT, opened_at=NOW + dt.timedelta(microseconds=250_001), severity=3,
        what_happened="SAFE_STOP from NORMAL by detector: joint_limit", source="detector",
        scope="robot Xiao Fu, Futian service hall, guiding", measures_taken="hold posture, power kept",
        guardian_on_duty="G-0001", contact="+86 755 0000 0001", mode_before=1, mode_after=3,
        anomaly_kinds=("joint_limit", "stale_input"), acknowledged=False, acknowledged_by="", acknowledged_at=None,
        certificate=CERT,
    )
    return dataclasses.replace(base, **changes)


def to_message(mapping: dict[str, Any], signature: bytes = b"") -> Any:
    """The IncidentReport message a robot node would publish for ``mapping`` (field by field)."""
    values = dict(mapping)
    header, opened, acknowledged_at = values.pop("header"), values.pop("opened_at"), values.pop("acknowledged_at")
    msg = msgs.IncidentReport(**values, signature=signature)
    msg.header.frame_id = header["frame_id"]
    msg.header.stamp.sec, msg.header.stamp.nanosec = header["stamp"]["sec"], header["stamp"]["nanosec"]
    msg.opened_at.sec, msg.opened_at.nanosec = opened["sec"], opened["nanosec"]
    msg.acknowledged_at.sec, msg.acknowledged_at.nanosec = acknowledged_at["sec"], acknowledged_at["nanosec"]
    return msg


def signed(incident: IncidentFields | None = None, key: ed25519.Ed25519PrivateKey = ROBOT_KEY,
           sent: dt.datetime = NOW) -> tuple[dict[str, Any], bytes]:
    mapping = incident_fields_mapping(incident or fields(), sent)
    return mapping, sign_incident(key, mapping)


def verifier() -> CertificateVerifier:
    return CertificateVerifier([CA])


def refusal(mapping: Any, signature: bytes, now: dt.datetime = NOW) -> IncidentRefusal:
    with pytest.raises(IncidentRefused) as caught:
        verify_incident(mapping, signature, verifier(), now)
    return caught.value.reason


@pytest.mark.clause("4.5", "6.4c")
def test_the_mapping_is_what_message_fields_gives_for_the_message() -> None:
    mapping = incident_fields_mapping(fields(), NOW)
    msg = to_message(mapping, signature=b"\x01" * 64)
    assert message_fields(msg) == mapping
    assert message_canonical_bytes(INCIDENT_DOMAIN, msg) == canonical_bytes(INCIDENT_DOMAIN, mapping)
    assert set(mapping) == set(msgs.IncidentReport.get_fields_and_field_types()) - {"signature"}


texts = st.text(max_size=30)
times = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2038, 1, 1), timezones=st.just(dt.UTC))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(texts, min_size=11, max_size=11), times, st.one_of(st.none(), times), times,
    st.lists(st.integers(0, 255), min_size=3, max_size=3), st.lists(texts, max_size=4), st.booleans(),
    st.binary(max_size=600),
)
def test_any_incident_maps_to_its_message_fields(
    strings: list[str], opened: dt.datetime, acknowledged_at: dt.datetime | None, sent: dt.datetime,
    numbers: list[int], kinds: list[str], acknowledged: bool, certificate: bytes,
) -> None:
    if acknowledged_at is not None and acknowledged_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC):
        acknowledged_at = None  # the zero time means "not acknowledged"
    incident = IncidentFields(*strings[:4], opened, numbers[0], *strings[4:10], numbers[1], numbers[2],  # type: ignore[arg-type]
                              tuple(kinds), acknowledged, strings[10], acknowledged_at, certificate)
    mapping = incident_fields_mapping(incident, sent)
    msg = to_message(mapping)
    assert message_fields(msg) == mapping
    assert canonical_bytes(INCIDENT_DOMAIN, message_fields(msg)) == canonical_bytes(INCIDENT_DOMAIN, mapping)
    assert read_incident_fields(message_fields(msg)) == (incident, sent)


def test_times_are_utc_with_microseconds_and_refused_out_of_range() -> None:
    local = dt.datetime(2026, 3, 2, 16, 15, 2, 250_001, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert time_fields(local) == time_fields(dt.datetime(2026, 3, 2, 8, 15, 2, 250_001, tzinfo=dt.UTC))
    assert time_fields(local)["nanosec"] == 250_001_000
    with pytest.raises(ValueError, match="timezone-aware"):
        time_fields(dt.datetime(2026, 3, 2))  # naive on purpose
    with pytest.raises(ValueError, match="does not fit"):
        time_fields(dt.datetime(1969, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(ValueError, match="severity"):
        incident_fields_mapping(fields(severity=256), NOW)


@pytest.mark.clause("4.5", "6.4c")
def test_a_genuine_report_verifies_at_the_department() -> None:
    mapping, signature = signed(fields(acknowledged=True, acknowledged_by="G-0002", acknowledged_at=NOW))
    received = message_fields(to_message(mapping, signature))  # as the department node hands it over
    verified = verify_incident(received, signature, verifier(), NOW)
    assert isinstance(verified, VerifiedIncident)
    assert verified.fields == fields(acknowledged=True, acknowledged_by="G-0002", acknowledged_at=NOW)
    assert verified.sent_at == NOW and str(verified.identity.identity_number) == str(NUMBER)


@pytest.mark.clause("6.4c")
@pytest.mark.parametrize("field, value", [
    ("what_happened", "nothing happened"), ("measures_taken", ""), ("severity", 1), ("mode_after", 1),
    ("anomaly_kinds", ["joint_limit"]), ("acknowledged", True), ("contact", "nobody"),
    ("opened_at", {"sec": 0, "nanosec": 0}), ("header", {"stamp": {"sec": 1, "nanosec": 0}, "frame_id": ""}),
])
def test_any_field_changed_after_signing_is_a_bad_signature(field: str, value: Any) -> None:
    mapping, signature = signed()
    assert refusal({**mapping, field: value}, signature) is IncidentRefusal.BAD_SIGNATURE


def test_signature_missing_or_wrong() -> None:
    mapping, signature = signed()
    assert refusal(mapping, b"") is IncidentRefusal.MISSING_SIGNATURE
    assert refusal(mapping, signature[:63]) is IncidentRefusal.BAD_SIGNATURE
    assert refusal(mapping, bytes(64)) is IncidentRefusal.BAD_SIGNATURE
    forged = sign_incident(ed25519.Ed25519PrivateKey.generate(), mapping)
    assert refusal(mapping, forged) is IncidentRefusal.BAD_SIGNATURE


@pytest.mark.clause("6.4c")
def test_certificates_of_another_ca_expired_or_not_a_certificate_are_refused() -> None:
    other_key = ed25519.Ed25519PrivateKey.generate()
    other_ca = create_department_ca(DEPT, other_key, 3650, now=T0)
    assert refusal(*signed(fields(certificate=issue(ROBOT_KEY, ca=other_ca, ca_key=other_key)))) is (
        IncidentRefusal.UNKNOWN_CERTIFICATE)
    assert refusal(*signed(fields(certificate=b"not a certificate"))) is IncidentRefusal.UNKNOWN_CERTIFICATE
    short_lived = issue(ROBOT_KEY, days=1)
    assert refusal(*signed(fields(certificate=short_lived)), now=T0 + dt.timedelta(days=2)) is (
        IncidentRefusal.EXPIRED_CERTIFICATE)
    assert refusal(*signed(), now=T0 - dt.timedelta(days=1)) is IncidentRefusal.EXPIRED_CERTIFICATE


@pytest.mark.clause("6.4c")
@pytest.mark.parametrize("changes", [
    {"identity_number": str(OTHER_NUMBER)}, {"robot_name": "Da Fu"}, {"department": "Another Bureau"},
    {"incident_id": f"{OTHER_NUMBER}/20260302T081502Z/0a1b2c3d"},
])
def test_a_genuine_key_claiming_another_identity_is_refused(changes: dict[str, str]) -> None:
    assert refusal(*signed(fields(**changes))) is IncidentRefusal.IDENTITY_MISMATCH


@pytest.mark.parametrize("damage", [
    lambda m: {k: v for k, v in m.items() if k != "scope"},
    lambda m: {**m, "extra": 1},
    lambda m: {**m, "severity": 300},
    lambda m: {**m, "severity": True},
    lambda m: {**m, "robot_name": b"Xiao Fu"},
    lambda m: {**m, "anomaly_kinds": [1]},
    lambda m: {**m, "acknowledged": 1},
    lambda m: {**m, "certificate": "text"},
    lambda m: {**m, "opened_at": {"sec": 1}},
    lambda m: {**m, "opened_at": {"sec": 1, "nanosec": 1_000_000_000}},
    lambda m: {**m, "opened_at": {"sec": -1, "nanosec": 0}},
    lambda m: {**m, "header": {"stamp": {"sec": 1, "nanosec": 0}}},
    lambda m: ["not", "a", "mapping"],
])
def test_malformed_reports_are_refused(damage: Any) -> None:
    mapping, signature = signed()
    assert refusal(damage(mapping), signature) is IncidentRefusal.MALFORMED
