"""What the verifier trusts: the robot's public key, from a certificate, a CA, or a key file.

Without an anchor, ``log verify`` checks every signature against the key the log names itself
(which proves consistency, not authorship) and says so in its report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from ftrobot_guard.blackbox.errors import BlackBoxError
from ftrobot_guard.trust.certificates import (
    CertificateError,
    load_certificate,
    load_certificates,
    verify_robot_certificate,
)
from ftrobot_guard.trust.keys import KeyFileError, fingerprint, load_public_key


@dataclass(frozen=True)
class TrustAnchor:
    """Either a fixed robot key (``public_key``, optionally with ``robot_id``) or department CAs
    that must have certified the robot key embedded in every segment header."""

    source: str
    public_key: ed25519.Ed25519PublicKey | None = None
    robot_id: str = ""
    cas: tuple[x509.Certificate, ...] = ()

    def describe(self) -> str:
        if self.public_key is not None:
            who = f" of robot {self.robot_id}" if self.robot_id else ""
            return f"robot key {fingerprint(self.public_key)}{who} from {self.source}"
        return f"department CA from {self.source}"

    def certify(self, certificate_der: bytes, at: dt.datetime) -> tuple[ed25519.Ed25519PublicKey, str]:
        """Check a segment's embedded robot certificate against the CAs; return its key and id."""
        try:
            identity = verify_robot_certificate(certificate_der, list(self.cas), at)
        except CertificateError as exc:
            raise BlackBoxError(str(exc)) from None
        return identity.public_key, str(identity.identity_number)


def _subject_serial(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(attrs[0].value) if len(attrs) == 1 else ""


def anchor_from_robot_certificate(path: Path) -> TrustAnchor:
    try:
        cert = load_certificate(path)
    except CertificateError as exc:
        raise BlackBoxError(str(exc)) from None
    key = cert.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise BlackBoxError(f"{path}: certificate key is {type(key).__name__}, not the robot's Ed25519 key")
    return TrustAnchor(source=str(path), public_key=key, robot_id=_subject_serial(cert))


def anchor_from_ca(path: Path) -> TrustAnchor:
    try:
        cas = load_certificates(path)
    except CertificateError as exc:
        raise BlackBoxError(str(exc)) from None
    return TrustAnchor(source=str(path), cas=tuple(cas))


def anchor_from_public_key(path: Path) -> TrustAnchor:
    try:
        key = load_public_key(path, "ed25519")
    except KeyFileError as exc:
        raise BlackBoxError(str(exc)) from None
    assert isinstance(key, ed25519.Ed25519PublicKey)
    return TrustAnchor(source=str(path), public_key=key)
