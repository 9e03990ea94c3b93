"""The department's signature on an operating envelope, and loading an envelope only if it is signed.

A signature is a detached file next to the envelope (``g1.yaml.sig``), a small JSON object::

    {"format": "ftrobot-envelope-signature/1", "envelope_sha256": "<hex>", "robot_model": "unitree_g1_29dof",
     "robots": ["440304-RB-2026-000123-8"] | ["*"], "issued_at": "2026-05-01T08:00:00Z",
     "expires_at": "2026-07-30T08:00:00Z", "signer": "<SHA-256 hex of the raw Ed25519 public key>",
     "signature": "<base64 Ed25519 signature>"}

The Ed25519 signature is made with the department CA's key over
:func:`ftrobot_guard.trust.signed_fields.canonical_bytes` under the domain ``ftrobot/envelope/v1`` of
``{"envelope": <the exact file bytes>, "robot_model", "robots", "issued_at", "expires_at" (Unix seconds),
"signer"}``: the file's bytes, the robot and model binding and the validity window are all signed, and
the domain keeps the signature from being accepted as any other signed object (the CA's certificate
signatures are over DER, which never starts with the domain prefix).

:func:`load_signed_envelope` refuses an unsigned, altered, expired or not-yet-valid envelope, one signed
by an untrusted key, one bound to another robot or model, and one that does not parse; each with an
:class:`EnvelopeSignatureError` whose ``reason`` is an :class:`EnvelopeSignatureFailure`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.safety.envelope import Envelope, EnvelopeError, parse_envelope, read_envelope_bytes
from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number
from ftrobot_guard.trust.keys import raw_public_bytes
from ftrobot_guard.trust.signed_fields import SIGNATURE_LENGTH, canonical_bytes, verify_fields

ENVELOPE_SIGNATURE_DOMAIN = "ftrobot/envelope/v1"
SIGNATURE_FORMAT = "ftrobot-envelope-signature/1"
SIGNATURE_SUFFIX = ".sig"
ANY_ROBOT = "*"
MAX_SIGNATURE_FILE_BYTES = 16384
MAX_ROBOTS = 1000
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_FIELDS = ("format", "envelope_sha256", "robot_model", "robots", "issued_at", "expires_at", "signer", "signature")

DepartmentTrust = ed25519.Ed25519PublicKey | x509.Certificate | Sequence[x509.Certificate]


class EnvelopeSignatureFailure(enum.Enum):
    """Why a signed envelope was refused."""

    UNSIGNED = "unsigned"
    MALFORMED_SIGNATURE = "malformed signature"
    UNKNOWN_SIGNER = "unknown signer"
    ALTERED = "altered"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    WRONG_ROBOT = "wrong robot"
    WRONG_MODEL = "wrong model"
    INVALID_ENVELOPE = "invalid envelope"
    FILE_ERROR = "file error"


class EnvelopeSignatureError(Exception):
    """A signed envelope is refused; ``reason`` says why, the message (one line) says what exactly."""

    def __init__(self, reason: EnvelopeSignatureFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class EnvelopeSignature:
    envelope_sha256: str
    robot_model: str
    robots: tuple[str, ...]      # identity numbers, or (ANY_ROBOT,)
    issued_at: dt.datetime       # UTC, whole seconds
    expires_at: dt.datetime
    signer: str                  # SHA-256 hex of the signer's raw Ed25519 public key
    signature: bytes


@dataclass(frozen=True, eq=False)
class SignedEnvelope:
    """An envelope whose signature verified, with what the signature asserts."""

    envelope: Envelope
    signature: EnvelopeSignature
    signer_name: str             # the CA's subject, or "Ed25519 key <fingerprint>"


def signer_fingerprint(key: ed25519.Ed25519PublicKey) -> str:
    """SHA-256 hex (64 digits) of a raw Ed25519 public key."""
    return hashlib.sha256(raw_public_bytes(key)).hexdigest()


def signature_path_for(envelope_path: str | os.PathLike[str]) -> Path:
    """Where the detached signature of an envelope file lives by default (``<file>.sig``)."""
    path = Path(envelope_path)
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_seconds(value: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _signed_fields(envelope_bytes: bytes, signature: EnvelopeSignature) -> dict[str, Any]:
    return {
        "envelope": bytes(envelope_bytes),
        "robot_model": signature.robot_model,
        "robots": list(signature.robots),
        "issued_at": int(signature.issued_at.timestamp()),
        "expires_at": int(signature.expires_at.timestamp()),
        "signer": signature.signer,
    }


def _check_robots(robots: Sequence[str]) -> tuple[str, ...]:
    items = tuple(robots)
    if not items:
        raise ValueError(f"robots: give identity numbers or {ANY_ROBOT!r} for any robot of the model")
    if len(items) > MAX_ROBOTS:
        raise ValueError(f"robots: {len(items)} entries, at most {MAX_ROBOTS}")
    if ANY_ROBOT in items:
        if len(items) != 1:
            raise ValueError(f"robots: {ANY_ROBOT!r} stands alone (any robot of the model)")
        return items
    numbers = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"robots: {item!r} is not an identity number")
        numbers.append(str(parse_identity_number(item)))
    if len(set(numbers)) != len(numbers):
        raise ValueError("robots: an identity number is listed twice")
    return tuple(numbers)


def sign_envelope(
    envelope_bytes: bytes,
    key: ed25519.Ed25519PrivateKey,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    robots: Sequence[str] = (ANY_ROBOT,),
) -> EnvelopeSignature:
    """Sign an envelope file's exact bytes; the envelope must parse (an invalid one is never signed).

    Raises :class:`EnvelopeError` for an invalid envelope, :class:`ValueError` for bad arguments
    (window, robots, key) and :class:`IdentityNumberError` for a malformed robot identity number.
    """
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"the department key must be an Ed25519 private key, got {type(key).__name__}")
    envelope = parse_envelope(envelope_bytes)
    start, end = _utc_seconds(issued_at, "issued_at"), _utc_seconds(expires_at, "expires_at")
    if end <= start:
        raise ValueError(f"expires_at {_timestamp(end)} must be later than issued_at {_timestamp(start)}")
    unsigned = EnvelopeSignature(
        envelope_sha256=hashlib.sha256(envelope_bytes).hexdigest(), robot_model=envelope.robot_model,
        robots=_check_robots(robots), issued_at=start, expires_at=end,
        signer=signer_fingerprint(key.public_key()), signature=b"",
    )
    signature = key.sign(canonical_bytes(ENVELOPE_SIGNATURE_DOMAIN, _signed_fields(envelope_bytes, unsigned)))
    return dataclasses.replace(unsigned, signature=signature)


def signature_to_text(signature: EnvelopeSignature) -> str:
    """The signature file's text (JSON, one key per line, trailing newline)."""
    document = {
        "format": SIGNATURE_FORMAT,
        "envelope_sha256": signature.envelope_sha256,
        "robot_model": signature.robot_model,
        "robots": list(signature.robots),
        "issued_at": _timestamp(signature.issued_at),
        "expires_at": _timestamp(signature.expires_at),
        "signer": signature.signer,
        "signature": base64.b64encode(signature.signature).decode("ascii"),
    }
    return json.dumps(document, indent=1, ensure_ascii=True) + "\n"


def _malformed(message: str) -> EnvelopeSignatureError:
    return EnvelopeSignatureError(EnvelopeSignatureFailure.MALFORMED_SIGNATURE, message)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _malformed(f"signature: duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise _malformed(f"signature: {name} is not allowed")


def _parse_time(document: dict[str, Any], key: str) -> dt.datetime:
    value = document[key]
    if not isinstance(value, str) or not _TIMESTAMP.match(value):
        raise _malformed(f"signature: {key} must be a UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise _malformed(f"signature: {key} {value!r} is not a valid time") from None


def parse_signature(data: bytes | str) -> EnvelopeSignature:
    """An :class:`EnvelopeSignature` from a signature file's content (strict); MALFORMED_SIGNATURE otherwise."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_SIGNATURE_FILE_BYTES:
        raise _malformed(f"signature: {len(raw)} bytes, more than {MAX_SIGNATURE_FILE_BYTES}")
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                              parse_constant=_refuse_constant)
    except EnvelopeSignatureError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _malformed(f"signature: not a JSON object ({' '.join(str(exc).split())[:100]})") from None
    if not isinstance(document, dict):
        raise _malformed("signature: not a JSON object")
    unknown = sorted(set(document) - set(_FIELDS))
    missing = [key for key in _FIELDS if key not in document]
    if unknown:
        raise _malformed(f"signature: unknown key {unknown[0][:40]!r}")
    if missing:
        raise _malformed(f"signature: missing key {missing[0]!r}")
    if document["format"] != SIGNATURE_FORMAT:
        raise _malformed(f"signature: format is not {SIGNATURE_FORMAT!r}")
    for key in ("envelope_sha256", "signer"):
        if not isinstance(document[key], str) or not _HEX64.match(document[key]):
            raise _malformed(f"signature: {key} must be 64 lower-case hex digits")
    if not isinstance(document["robot_model"], str) or not 0 < len(document["robot_model"]) <= 64:
        raise _malformed("signature: robot_model must be a non-empty string")
    robots = document["robots"]
    if not isinstance(robots, list) or not all(isinstance(r, str) for r in robots):
        raise _malformed("signature: robots must be a list of identity numbers or [\"*\"]")
    try:
        checked = _check_robots(robots)
    except (ValueError, IdentityNumberError) as exc:
        raise _malformed(f"signature: {exc}") from None
    if checked != tuple(robots):
        raise _malformed("signature: robots are not in canonical form")
    try:
        signature = base64.b64decode(document["signature"], validate=True) \
            if isinstance(document["signature"], str) else b""
    except (binascii.Error, ValueError):
        signature = b""
    if len(signature) != SIGNATURE_LENGTH:
        raise _malformed(f"signature: signature must be {SIGNATURE_LENGTH} bytes in base64")
    issued, expires = _parse_time(document, "issued_at"), _parse_time(document, "expires_at")
    if expires <= issued:
        raise _malformed("signature: expires_at is not later than issued_at")
    return EnvelopeSignature(
        envelope_sha256=document["envelope_sha256"], robot_model=document["robot_model"], robots=checked,
        issued_at=issued, expires_at=expires, signer=document["signer"], signature=signature,
    )


@dataclass(frozen=True)
class _TrustedKey:
    key: ed25519.Ed25519PublicKey
    name: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None


def _trusted_keys(trust: DepartmentTrust) -> list[_TrustedKey]:
    if isinstance(trust, ed25519.Ed25519PublicKey):
        return [_TrustedKey(trust, f"Ed25519 key {signer_fingerprint(trust)[:16]}", None, None)]
    certificates = [trust] if isinstance(trust, x509.Certificate) else list(trust)
    keys = []
    for certificate in certificates:
        if not isinstance(certificate, x509.Certificate):
            raise ValueError(f"department trust must be an Ed25519 public key or CA certificates, "
                             f"got {type(certificate).__name__}")
        try:
            ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        key = certificate.public_key()
        if ca and isinstance(key, ed25519.Ed25519PublicKey):
            keys.append(_TrustedKey(key, certificate.subject.rfc4514_string(), certificate.not_valid_before_utc,
                                    certificate.not_valid_after_utc))
    if not keys:
        raise ValueError("no Ed25519 department CA among the trusted certificates")
    return keys


def verify_signed_envelope(
    envelope_bytes: bytes,
    signature: EnvelopeSignature,
    trust: DepartmentTrust,
    now: dt.datetime,
    robot_id: str | None = None,
    robot_model: str | None = None,
) -> SignedEnvelope:
    """Check ``signature`` over ``envelope_bytes`` at ``now``, then parse the envelope.

    ``robot_id`` (the robot's identity number) and ``robot_model``, when given, must be covered by the
    signature's binding. Raises :class:`EnvelopeSignatureError`.
    """
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    failure = EnvelopeSignatureFailure
    candidates = [trusted for trusted in _trusted_keys(trust) if signer_fingerprint(trusted.key) == signature.signer]
    if not candidates:
        raise EnvelopeSignatureError(failure.UNKNOWN_SIGNER,
                                     f"signed by key {signature.signer[:16]}, not a trusted department key")
    if hashlib.sha256(envelope_bytes).hexdigest() != signature.envelope_sha256:
        raise EnvelopeSignatureError(failure.ALTERED, "the envelope's bytes differ from the signed ones (altered)")
    fields = _signed_fields(envelope_bytes, signature)
    trusted = next((c for c in candidates
                    if verify_fields(c.key, ENVELOPE_SIGNATURE_DOMAIN, fields, signature.signature)), None)
    if trusted is None:
        raise EnvelopeSignatureError(failure.ALTERED, "the signature does not verify (envelope or signature altered)")
    if now < signature.issued_at:
        raise EnvelopeSignatureError(failure.NOT_YET_VALID, f"signature not valid before "
                                     f"{_timestamp(signature.issued_at)} (now {_timestamp(now)})")
    if now > signature.expires_at:
        raise EnvelopeSignatureError(failure.EXPIRED, f"signature expired at {_timestamp(signature.expires_at)}"
                                     f" (now {_timestamp(now)})")
    if trusted.not_before is not None and now < trusted.not_before:
        raise EnvelopeSignatureError(failure.NOT_YET_VALID, f"department CA {trusted.name} not valid before "
                                     f"{_timestamp(trusted.not_before)}")
    if trusted.not_after is not None and now > trusted.not_after:
        raise EnvelopeSignatureError(failure.EXPIRED, f"department CA {trusted.name} expired at "
                                     f"{_timestamp(trusted.not_after)}")
    if robot_id is not None and signature.robots != (ANY_ROBOT,) and robot_id not in signature.robots:
        raise EnvelopeSignatureError(failure.WRONG_ROBOT, f"signed for {', '.join(signature.robots[:3])}"
                                     f"{' ...' if len(signature.robots) > 3 else ''}, not for robot {robot_id}")
    if robot_model is not None and signature.robot_model != robot_model:
        raise EnvelopeSignatureError(failure.WRONG_MODEL,
                                     f"signed for model {signature.robot_model}, this robot is a {robot_model}")
    try:
        envelope = parse_envelope(envelope_bytes)
    except EnvelopeError as exc:
        raise EnvelopeSignatureError(failure.INVALID_ENVELOPE, f"signed but invalid: {exc}") from None
    if envelope.robot_model != signature.robot_model:
        raise EnvelopeSignatureError(failure.WRONG_MODEL, f"envelope is for {envelope.robot_model}, the signature "
                                     f"for {signature.robot_model}")
    return SignedEnvelope(envelope=envelope, signature=signature, signer_name=trusted.name)


def read_signature_file(path: str | os.PathLike[str]) -> EnvelopeSignature:
    """Read and parse a signature file; UNSIGNED when it does not exist."""
    target = Path(path)
    try:
        with open(target, "rb") as handle:
            data = handle.read(MAX_SIGNATURE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise EnvelopeSignatureError(EnvelopeSignatureFailure.UNSIGNED,
                                     f"{target}: no signature file (unsigned)") from None
    except OSError as exc:
        raise EnvelopeSignatureError(EnvelopeSignatureFailure.FILE_ERROR,
                                     f"{target}: cannot read: {exc.strerror}") from None
    try:
        return parse_signature(data)
    except EnvelopeSignatureError as exc:
        raise EnvelopeSignatureError(exc.reason, f"{target}: {exc}") from None


def load_signed_envelope(
    path: str | os.PathLike[str],
    trust: DepartmentTrust,
    now: dt.datetime,
    robot_id: str | None = None,
    robot_model: str | None = None,
    signature_path: str | os.PathLike[str] | None = None,
) -> SignedEnvelope:
    """The envelope at ``path`` if its detached signature (default ``<path>.sig``) verifies at ``now``.

    Raises :class:`EnvelopeSignatureError` (reason UNSIGNED, MALFORMED_SIGNATURE, UNKNOWN_SIGNER,
    ALTERED, EXPIRED, NOT_YET_VALID, WRONG_ROBOT, WRONG_MODEL, INVALID_ENVELOPE or FILE_ERROR) with a
    one-line message naming the file.
    """
    try:
        data = read_envelope_bytes(path)
    except EnvelopeError as exc:
        raise EnvelopeSignatureError(EnvelopeSignatureFailure.FILE_ERROR, str(exc)) from None
    signature = read_signature_file(signature_path if signature_path is not None else signature_path_for(path))
    try:
        return verify_signed_envelope(data, signature, trust, now, robot_id=robot_id, robot_model=robot_model)
    except EnvelopeSignatureError as exc:
        raise EnvelopeSignatureError(exc.reason, f"{path}: {exc}") from None


def write_signature_file(path: str | os.PathLike[str], signature: EnvelopeSignature, overwrite: bool = False) -> Path:
    """Write a signature file atomically (mode 0644); refuse to replace one unless ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target}: already exists (use --force to replace it)")
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "x", encoding="ascii") as handle:
            handle.write(signature_to_text(signature))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
