"""The robot's own identity self-check at start: its number, key and department certificate must agree."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.certificates import (
    CertificateError,
    CertificateVerifier,
    RobotIdentity,
    certificate_der,
    load_certificate,
    load_certificates,
)
from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number
from ftrobot_guard.trust.keys import KeyFileError, load_private_key, raw_public_bytes


class RobotIdentityError(Exception):
    """The robot's identity number, key and certificate do not make a valid identity."""


@dataclass(frozen=True)
class RobotCredentials:
    identity: RobotIdentity
    private_key: ed25519.Ed25519PrivateKey
    certificate_der: bytes


def load_robot_credentials(
    identity_number: str,
    private_key_file: str | Path,
    certificate_file: str | Path,
    department_ca_files: list[str],
    now: dt.datetime,
) -> RobotCredentials:
    """Load and cross-check the robot's credentials; raise :class:`RobotIdentityError` with a one-line reason."""
    try:
        number = parse_identity_number(identity_number)
    except IdentityNumberError as exc:
        raise RobotIdentityError(f"identity_number: {exc}") from None
    try:
        key = load_private_key(private_key_file, "ed25519")
    except KeyFileError as exc:
        raise RobotIdentityError(f"private_key_file: {exc}") from None
    try:
        certificate = load_certificate(certificate_file)
        cas = load_certificates(department_ca_files)
        der = certificate_der(certificate)
        identity = CertificateVerifier(cas).verify_robot(der, now)
    except CertificateError as exc:
        raise RobotIdentityError(f"certificate_file {certificate_file}: {exc}") from None
    if str(identity.identity_number) != str(number):
        raise RobotIdentityError(
            f"certificate_file {certificate_file}: issued to {identity.identity_number}, not to {number}"
        )
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    if raw_public_bytes(identity.public_key) != raw_public_bytes(key.public_key()):
        raise RobotIdentityError(
            f"certificate_file {certificate_file}: certifies another key than private_key_file {private_key_file}"
        )
    return RobotCredentials(identity, key, der)
