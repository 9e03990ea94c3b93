"""The signed incident report: its fields as plain values, signing on the robot, verification at the department.

An incident report (``ftrobot_msgs/IncidentReport``) tells the department what happened when a
robot stopped on its own or was e-stopped (Futian measures 4.5, 6.4c). :class:`IncidentFields`
holds its content (every field but ``header`` and ``signature``; times as UTC datetimes).
:func:`incident_fields_mapping` turns it, with the send time, into the mapping
``ftrobot_guard.trust.signed_fields.message_fields`` gives for the IncidentReport message built from
it: the robot signs that mapping (:func:`sign_incident`, domain :data:`INCIDENT_DOMAIN`) and the
department verifies ``message_fields(received)`` with :func:`verify_incident`.

Verification, in order (the first failure is the :class:`IncidentRefusal`):

1. the mapping has exactly the report's fields, each of its type (MALFORMED);
2. a signature is present (MISSING_SIGNATURE);
3. the certificate chains to a trusted department CA (UNKNOWN_CERTIFICATE), and it and its CA are
   valid at the department's wall-clock time (EXPIRED_CERTIFICATE);
4. the Ed25519 signature over the canonical encoding verifies with the certificate's key
   (BAD_SIGNATURE);
5. identity number, robot name and department are the certificate's, and the incident id belongs to
   that identity number (IDENTITY_MISMATCH).

A zero ``acknowledged_at`` (epoch) means "not acknowledged" (:attr:`IncidentFields.acknowledged_at` None).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.certificates import CertificateError, CertificateFailure, CertificateVerifier, RobotIdentity
from ftrobot_guard.trust.signed_fields import SIGNATURE_LENGTH, canonical_bytes, sign_fields

INCIDENT_DOMAIN = "ftrobot/incident_report/v1"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_INT32_MAX = 2**31 - 1
_UINT8_MAX = 255

# The IncidentReport message's signed fields (every field but ``signature``) and their kinds.
_STRING_FIELDS = ("incident_id", "identity_number", "robot_name", "department", "what_happened", "source", "scope",
                  "measures_taken", "guardian_on_duty", "contact", "acknowledged_by")
_UINT8_FIELDS = ("severity", "mode_before", "mode_after")
_TIME_FIELDS = ("opened_at", "acknowledged_at")
SIGNED_FIELD_NAMES = frozenset(
    {"header", *_STRING_FIELDS, *_UINT8_FIELDS, *_TIME_FIELDS, "anomaly_kinds", "acknowledged", "certificate"}
)


class IncidentRefusal(enum.Enum):
    """Why the department refused an incident report."""

    MALFORMED = "malformed"
    MISSING_SIGNATURE = "missing signature"
    UNKNOWN_CERTIFICATE = "unknown certificate"
    EXPIRED_CERTIFICATE = "expired certificate"
    BAD_SIGNATURE = "bad signature"
    IDENTITY_MISMATCH = "identity mismatch"


class IncidentRefused(Exception):
    """An incident report is refused; ``reason`` says why, the message says what exactly."""

    def __init__(self, reason: IncidentRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Incident:
    """One incident as the robot's ledger keeps it: the report's content but the certificate; times in UTC."""

    incident_id: str
    identity_number: str
    robot_name: str
    department: str
    opened_at: dt.datetime
    severity: int
    what_happened: str
    source: str
    scope: str
    measures_taken: str
    guardian_on_duty: str
    contact: str
    mode_before: int
    mode_after: int
    anomaly_kinds: tuple[str, ...]
    acknowledged: bool = False
    acknowledged_by: str = ""
    acknowledged_at: dt.datetime | None = None  # None: not acknowledged (sent as the zero time)

    def report_fields(self, certificate: bytes) -> IncidentFields:
        """The fields of the IncidentReport of this incident, with the robot's ``certificate`` (DER)."""
        return IncidentFields(**dataclasses.asdict(self), certificate=bytes(certificate))


@dataclass(frozen=True)
class IncidentFields(Incident):
    """The content of one IncidentReport (all fields but ``header`` and ``signature``): an incident and the
    robot's DER identity certificate."""

    certificate: bytes = b""


@dataclass(frozen=True)
class VerifiedIncident:
    """An incident report the department has authenticated."""

    fields: IncidentFields
    sent_at: dt.datetime  # the report's header stamp (robot clock, UTC)
    identity: RobotIdentity  # what the robot's certificate asserts


def time_fields(when: dt.datetime) -> dict[str, int]:
    """``builtin_interfaces/Time`` as ``message_fields`` gives it, of a timezone-aware datetime (µs resolution)."""
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise ValueError(f"time must be a timezone-aware datetime, got {when!r}")
    delta = when - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    if not 0 <= seconds <= _INT32_MAX:
        raise ValueError(f"time {when.isoformat()} does not fit builtin_interfaces/Time")
    return {"sec": seconds, "nanosec": delta.microseconds * 1000}


def time_from_fields(value: Mapping[str, Any]) -> dt.datetime:
    """The UTC datetime of a ``builtin_interfaces/Time`` mapping (nanoseconds truncated to µs)."""
    sec, nanosec = value["sec"], value["nanosec"]
    return _EPOCH + dt.timedelta(seconds=sec, microseconds=nanosec // 1000)


def _check_text(name: str, value: object) -> str:
    if type(value) is not str:
        raise ValueError(f"incident field {name!r} must be a string, got {type(value).__name__}")
    return value


def _check_uint8(name: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= _UINT8_MAX:
        raise ValueError(f"incident field {name!r} must be an integer 0..255, got {value!r}")
    return value


def incident_fields_mapping(fields: IncidentFields, header_stamp: dt.datetime) -> dict[str, Any]:
    """The mapping ``message_fields(msg)`` gives for the IncidentReport ``msg`` made of ``fields`` sent at
    ``header_stamp`` (header ``frame_id`` empty). Raises ValueError for a value the message cannot hold."""
    for name in _STRING_FIELDS:
        _check_text(name, getattr(fields, name))
    for name in _UINT8_FIELDS:
        _check_uint8(name, getattr(fields, name))
    if type(fields.acknowledged) is not bool:
        raise ValueError("incident field 'acknowledged' must be a bool")
    kinds = list(fields.anomaly_kinds)
    for index, kind in enumerate(kinds):
        _check_text(f"anomaly_kinds[{index}]", kind)
    if not isinstance(fields.certificate, (bytes, bytearray, memoryview)):
        raise ValueError("incident field 'certificate' must be bytes")
    acknowledged_at = fields.acknowledged_at
    return {
        "header": {"stamp": time_fields(header_stamp), "frame_id": ""},
        "incident_id": fields.incident_id,
        "identity_number": fields.identity_number,
        "robot_name": fields.robot_name,
        "department": fields.department,
        "opened_at": time_fields(fields.opened_at),
        "severity": fields.severity,
        "what_happened": fields.what_happened,
        "source": fields.source,
        "scope": fields.scope,
        "measures_taken": fields.measures_taken,
        "guardian_on_duty": fields.guardian_on_duty,
        "contact": fields.contact,
        "mode_before": fields.mode_before,
        "mode_after": fields.mode_after,
        "anomaly_kinds": kinds,
        "acknowledged": fields.acknowledged,
        "acknowledged_by": fields.acknowledged_by,
        "acknowledged_at": time_fields(acknowledged_at if acknowledged_at is not None else _EPOCH),
        "certificate": bytes(fields.certificate),
    }


def sign_incident(private_key: ed25519.Ed25519PrivateKey, mapping: Mapping[str, Any]) -> bytes:
    """The robot's Ed25519 signature (64 bytes) over ``mapping`` (from :func:`incident_fields_mapping`)."""
    return sign_fields(private_key, INCIDENT_DOMAIN, mapping)


# -- the department's side -------------------------------------------------------------------------


def _malformed(message: str) -> IncidentRefused:
    return IncidentRefused(IncidentRefusal.MALFORMED, f"malformed incident report: {message}")


def _read_time(mapping: Mapping[str, Any], name: str) -> dt.datetime:
    value = mapping[name]
    if not isinstance(value, Mapping) or set(value) != {"sec", "nanosec"}:
        raise _malformed(f"field {name!r} is not a time")
    sec, nanosec = value["sec"], value["nanosec"]
    if type(sec) is not int or type(nanosec) is not int or not 0 <= nanosec < 1_000_000_000:
        raise _malformed(f"field {name!r} is not a time")
    if sec < 0:
        raise _malformed(f"field {name!r} is before 1970")
    return time_from_fields(value)


def read_incident_fields(mapping: Mapping[str, Any]) -> tuple[IncidentFields, dt.datetime]:
    """The fields and the header stamp of a received report's mapping; IncidentRefused(MALFORMED) otherwise."""
    if not isinstance(mapping, Mapping):
        raise _malformed(f"not a mapping but {type(mapping).__name__}")
    keys = set(mapping)
    if keys != SIGNED_FIELD_NAMES:
        missing, extra = sorted(SIGNED_FIELD_NAMES - keys, key=str), sorted(keys - SIGNED_FIELD_NAMES, key=str)
        raise _malformed(f"fields missing {missing}, unexpected {extra}")
    header = mapping["header"]
    if not isinstance(header, Mapping) or set(header) != {"stamp", "frame_id"} or type(header["frame_id"]) is not str:
        raise _malformed("field 'header' is not a std_msgs/Header")
    sent_at = _read_time(header, "stamp")
    try:
        texts = [_check_text(name, mapping[name]) for name in _STRING_FIELDS]
        numbers = [_check_uint8(name, mapping[name]) for name in _UINT8_FIELDS]
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    kinds = mapping["anomaly_kinds"]
    if not isinstance(kinds, (list, tuple)) or any(type(kind) is not str for kind in kinds):
        raise _malformed("field 'anomaly_kinds' is not a list of strings")
    acknowledged = mapping["acknowledged"]
    if type(acknowledged) is not bool:
        raise _malformed("field 'acknowledged' is not a boolean")
    certificate = mapping["certificate"]
    if not isinstance(certificate, (bytes, bytearray, memoryview)):
        raise _malformed("field 'certificate' is not bytes")
    acknowledged_at = _read_time(mapping, "acknowledged_at")
    (incident_id, identity_number, robot_name, department, what_happened, source, scope, measures_taken,
     guardian_on_duty, contact, acknowledged_by) = texts
    severity, mode_before, mode_after = numbers
    fields = IncidentFields(
        incident_id=incident_id, identity_number=identity_number, robot_name=robot_name, department=department,
        opened_at=_read_time(mapping, "opened_at"), severity=severity, what_happened=what_happened, source=source,
        scope=scope, measures_taken=measures_taken, guardian_on_duty=guardian_on_duty, contact=contact,
        mode_before=mode_before, mode_after=mode_after, anomaly_kinds=tuple(kinds), acknowledged=acknowledged,
        acknowledged_by=acknowledged_by, acknowledged_at=None if acknowledged_at == _EPOCH else acknowledged_at,
        certificate=bytes(certificate),
    )
    return fields, sent_at


def verify_incident(
    mapping: Mapping[str, Any], signature: bytes, certificate_verifier: CertificateVerifier, wall_clock: dt.datetime
) -> VerifiedIncident:
    """Authenticate a received incident report (``message_fields(msg)`` and ``msg.signature``) at ``wall_clock``.

    Raises :class:`IncidentRefused` with the first failure of the checks listed in the module doc.
    """
    fields, sent_at = read_incident_fields(mapping)
    if not isinstance(signature, (bytes, bytearray, memoryview)) or len(signature) == 0:
        raise IncidentRefused(IncidentRefusal.MISSING_SIGNATURE, "incident report carries no signature")
    try:
        identity = certificate_verifier.verify_robot(fields.certificate, wall_clock)
    except CertificateError as exc:
        if exc.reason in (CertificateFailure.EXPIRED, CertificateFailure.NOT_YET_VALID):
            raise IncidentRefused(
                IncidentRefusal.EXPIRED_CERTIFICATE, f"certificate {exc.reason.value}: {exc}"
            ) from None
        raise IncidentRefused(
            IncidentRefusal.UNKNOWN_CERTIFICATE, f"certificate refused ({exc.reason.value}): {exc}"
        ) from None
    try:
        if len(signature) != SIGNATURE_LENGTH:
            raise InvalidSignature
        identity.public_key.verify(bytes(signature), canonical_bytes(INCIDENT_DOMAIN, mapping))
    except (InvalidSignature, ValueError):
        raise IncidentRefused(
            IncidentRefusal.BAD_SIGNATURE,
            f"signature does not verify with the key of certificate {identity.certificate_fingerprint[:16]}",
        ) from None
    certified = str(identity.identity_number)
    if (fields.identity_number, fields.robot_name, fields.department) != (
        certified, identity.robot_name, identity.department
    ):
        raise IncidentRefused(
            IncidentRefusal.IDENTITY_MISMATCH,
            f"incident report claims {fields.identity_number[:64]!r} {fields.robot_name[:64]!r}"
            f" ({fields.department[:64]!r}) but its certificate is for {certified!r} {identity.robot_name!r}"
            f" ({identity.department!r})",
        )
    if not fields.incident_id.startswith(certified + "/"):
        raise IncidentRefused(
            IncidentRefusal.IDENTITY_MISMATCH,
            f"incident id {fields.incident_id[:80]!r} is not one of identity number {certified!r}",
        )
    return VerifiedIncident(fields, sent_at, identity)
