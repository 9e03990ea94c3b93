"""Department CA and identity certificates (X.509, Ed25519).

The department (区政务服务数据管理局) runs a self-signed Ed25519 CA per department. It issues:

* robot identity certificates: subject SERIAL_NUMBER = identity number, COMMON_NAME = robot name,
  ORGANIZATION_NAME = department; extended key usage :data:`ROBOT_EMPLOYEE_EKU`; not a CA;
* guardian certificates: subject SERIAL_NUMBER = guardian id, COMMON_NAME = guardian name,
  ORGANIZATION_NAME = department, ORGANIZATIONAL_UNIT_NAME = role; extended key usage
  :data:`GUARDIAN_EKU`; not a CA.

Both EKU OIDs live under the ``2.25`` arc (UUID-derived OIDs, ITU-T X.667), which needs no
registration. Verification checks the issuer against a set of trusted CA certificates and the
CA's Ed25519 signature over the TBS bytes *before* trusting any content, then the key type,
the certificate kind, the subject and the validity window of both certificate and CA.
Every failure is a :class:`CertificateError` with a :class:`CertificateFailure` reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from ftrobot_guard.trust.identity import IdentityNumber, IdentityNumberError, parse_identity_number

ROBOT_EMPLOYEE_EKU = x509.ObjectIdentifier("2.25.216402316931412866377553532478101318471")
GUARDIAN_EKU = x509.ObjectIdentifier("2.25.216402316931412866377553532478101318472")

MAX_NAME_LENGTH = 64  # X.520 upper bound for CN, O, OU
_ED25519_SIGNATURE_BIT_STRING = b"\x03\x41\x00"  # BIT STRING, 65 bytes, 0 unused bits
MAX_CERTIFICATE_BYTES = 16384  # far above a real identity certificate (~500 bytes); bounds the cache
CERTIFICATE_SUFFIXES = (".pem", ".crt", ".cer", ".der")


class CertificateFailure(enum.Enum):
    """Why a certificate was refused."""

    MALFORMED = "malformed"
    UNKNOWN_ISSUER = "unknown issuer"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    BAD_IDENTITY = "bad identity"
    WRONG_KEY_TYPE = "wrong key type"
    NOT_A_ROBOT_CERTIFICATE = "not a robot certificate"
    NOT_A_GUARDIAN_CERTIFICATE = "not a guardian certificate"
    FILE_ERROR = "file error"  # certificate file missing, unreadable or not writable


class CertificateError(Exception):
    """A certificate is refused; ``reason`` says why, the message says what exactly."""

    def __init__(self, reason: CertificateFailure, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class RobotIdentity:
    """What a verified robot certificate asserts."""

    identity_number: IdentityNumber
    robot_name: str
    department: str
    public_key: ed25519.Ed25519PublicKey
    not_before: dt.datetime
    not_after: dt.datetime
    issuer_fingerprint: str
    certificate_fingerprint: str


@dataclass(frozen=True)
class GuardianIdentity:
    """What a verified guardian certificate asserts."""

    guardian_id: str
    guardian_name: str
    department: str
    role: str
    public_key: ed25519.Ed25519PublicKey
    not_before: dt.datetime
    not_after: dt.datetime
    issuer_fingerprint: str
    certificate_fingerprint: str


_IdentityT = TypeVar("_IdentityT", RobotIdentity, GuardianIdentity)


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 hex of the certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _check_text(what: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} {value!r} is longer than {MAX_NAME_LENGTH} characters")
    if value != value.strip() or not value.isprintable():
        raise ValueError(f"{what} {value!r} has surrounding whitespace or control characters")
    return value


def _check_printable_id(what: str, value: str) -> str:
    _check_text(what, value)
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.:_")
    if any(ch not in allowed for ch in value):
        raise ValueError(f"{what} {value!r} may contain only letters, digits and - . : _")
    return value


def _check_window(not_before: dt.datetime, not_after: dt.datetime) -> None:
    for what, value in (("not_before", not_before), ("not_after", not_after)):
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"{what} must be a timezone-aware datetime")
    if not_after <= not_before:
        raise ValueError(f"not_after {not_after.isoformat()} must be later than not_before {not_before.isoformat()}")


def _require_ed25519_private(what: str, key: object) -> ed25519.Ed25519PrivateKey:
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ValueError(f"{what} must be an Ed25519 private key, got {type(key).__name__}")
    return key


def _require_ed25519_public(what: str, key: object) -> ed25519.Ed25519PublicKey:
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ValueError(f"{what} must be an Ed25519 public key, got {type(key).__name__}")
    return key


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def create_department_ca(
    name: str, key: ed25519.Ed25519PrivateKey, valid_days: int, now: dt.datetime | None = None
) -> x509.Certificate:
    """Self-signed department CA certificate (CN = O = ``name``) valid ``valid_days`` from ``now``."""
    _check_text("department name", name)
    _require_ed25519_private("department CA key", key)
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1:
        raise ValueError(f"valid_days must be a positive integer, got {valid_days!r}")
    start = now if now is not None else _utc_now()
    end = start + dt.timedelta(days=valid_days)
    _check_window(start, end)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)]
    )
    public_key = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    return builder.sign(key, algorithm=None)


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: ed25519.Ed25519PrivateKey,
    public_key: ed25519.Ed25519PublicKey,
    subject: x509.Name,
    eku: x509.ObjectIdentifier,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    _require_ed25519_private("CA key", ca_key)
    _require_ed25519_public("subject public key", public_key)
    _check_window(not_before, not_after)
    ca_public = ca_key.public_key()
    if ca_cert.public_key() != ca_public:
        raise ValueError("CA key does not match the CA certificate's public key")
    if not_before < ca_cert.not_valid_before_utc or not_after > ca_cert.not_valid_after_utc:
        raise ValueError(
            f"validity {not_before.isoformat()}..{not_after.isoformat()} exceeds the CA's"
            f" {ca_cert.not_valid_before_utc.isoformat()}..{ca_cert.not_valid_after_utc.isoformat()}"
        )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
    )
    return builder.sign(ca_key, algorithm=None)


def issue_robot_certificate(
    ca_cert: x509.Certificate,
    ca_key: ed25519.Ed25519PrivateKey,
    robot_public_key: ed25519.Ed25519PublicKey,
    identity_number: IdentityNumber,
    robot_name: str,
    department: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Identity certificate binding ``robot_public_key`` to ``identity_number`` and ``robot_name``."""
    if not isinstance(identity_number, IdentityNumber):
        raise ValueError(f"identity_number must be an IdentityNumber, got {type(identity_number).__name__}")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, str(identity_number)),
            x509.NameAttribute(NameOID.COMMON_NAME, _check_text("robot name", robot_name)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _check_text("department", department)),
        ]
    )
    return _issue_leaf(ca_cert, ca_key, robot_public_key, subject, ROBOT_EMPLOYEE_EKU, not_before, not_after)


def issue_guardian_certificate(
    ca_cert: x509.Certificate,
    ca_key: ed25519.Ed25519PrivateKey,
    guardian_public_key: ed25519.Ed25519PublicKey,
    guardian_id: str,
    guardian_name: str,
    role: str,
    department: str,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """Guardian (监护人) certificate binding ``guardian_public_key`` to ``guardian_id`` and ``role``."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, _check_printable_id("guardian id", guardian_id)),
            x509.NameAttribute(NameOID.COMMON_NAME, _check_text("guardian name", guardian_name)),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _check_text("department", department)),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _check_printable_id("role", role)),
        ]
    )
    return _issue_leaf(ca_cert, ca_key, guardian_public_key, subject, GUARDIAN_EKU, not_before, not_after)


# ---------------------------------------------------------------------------------------------
# Verification


def parse_certificate(data: bytes) -> x509.Certificate:
    """Parse one PEM or DER certificate; CertificateError(MALFORMED) otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CertificateError(CertificateFailure.MALFORMED, f"certificate must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    if not raw:
        raise CertificateError(CertificateFailure.MALFORMED, "certificate is empty")
    if len(raw) > MAX_CERTIFICATE_BYTES:
        raise CertificateError(
            CertificateFailure.MALFORMED, f"certificate is {len(raw)} bytes, more than {MAX_CERTIFICATE_BYTES}"
        )
    try:
        with warnings.catch_warnings():
            # e.g. a non-positive serial number: accepted with a deprecation warning, refused here
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            if raw.lstrip().startswith(b"-----BEGIN"):
                cert = x509.load_pem_x509_certificate(raw)
            else:
                cert = x509.load_der_x509_certificate(raw)
            # parsing is lazy: touch every part now so that later accesses cannot fail
            _ = (cert.issuer, cert.subject, cert.not_valid_before_utc, cert.not_valid_after_utc)
            _ = (cert.signature_algorithm_oid, cert.signature, cert.tbs_certificate_bytes, list(cert.extensions))
            return cert
    except Exception as exc:
        raise CertificateError(CertificateFailure.MALFORMED, f"certificate is not valid PEM/DER X.509: {exc}") from None


def _single_attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier, what: str) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    if len(values) != 1:
        raise CertificateError(
            CertificateFailure.BAD_IDENTITY, f"certificate subject must have exactly one {what}, found {len(values)}"
        )
    value = values[0].value
    if not isinstance(value, str) or not value:
        raise CertificateError(CertificateFailure.BAD_IDENTITY, f"certificate subject {what} is empty")
    return value


def _check_ca_certificate(ca: x509.Certificate) -> ed25519.Ed25519PublicKey:
    key = ca.public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise CertificateError(
            CertificateFailure.WRONG_KEY_TYPE,
            f"trusted CA {ca.subject.rfc4514_string()} has a {type(key).__name__}, expected Ed25519",
        )
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertificateError(
            CertificateFailure.UNKNOWN_ISSUER, f"trusted certificate {ca.subject.rfc4514_string()} is not a CA"
        )
    return key


@dataclass(frozen=True)
class _TrustedCa:
    certificate: x509.Certificate
    public_key: ed25519.Ed25519PublicKey
    fingerprint: str


@dataclass(frozen=True)
class _VerifiedLeaf:
    certificate: x509.Certificate
    ca: _TrustedCa
    public_key: ed25519.Ed25519PublicKey
    fingerprint: str


def _extended_key_usages(cert: x509.Certificate) -> frozenset[x509.ObjectIdentifier]:
    try:
        return frozenset(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return frozenset()


class CertificateVerifier:
    """Verifies robot and guardian certificates against trusted department CAs.

    The chain check (parse, issuer, CA signature, key type, kind, subject) is cached per
    certificate bytes (bounded LRU, successes and failures alike); the validity window is
    checked against ``now`` on every call, so a cached certificate still expires on time.
    """

    def __init__(self, trusted_cas: Sequence[x509.Certificate], cache_size: int = 4096) -> None:
        self._cas: list[_TrustedCa] = []
        for ca in trusted_cas:
            if not isinstance(ca, x509.Certificate):
                raise ValueError(f"trusted CA must be an x509.Certificate, got {type(ca).__name__}")
            key = _check_ca_certificate(ca)
            self._cas.append(_TrustedCa(ca, key, certificate_fingerprint(ca)))
        if cache_size < 1:
            raise ValueError("cache_size must be positive")
        self._cache_size = cache_size
        self._robot_cache: OrderedDict[bytes, RobotIdentity | CertificateError] = OrderedDict()
        self._guardian_cache: OrderedDict[bytes, GuardianIdentity | CertificateError] = OrderedDict()

    @property
    def trusted_cas(self) -> tuple[x509.Certificate, ...]:
        return tuple(ca.certificate for ca in self._cas)

    def _verify_chain(self, data: bytes) -> _VerifiedLeaf:
        cert = parse_certificate(data)
        candidates = [ca for ca in self._cas if ca.certificate.subject == cert.issuer]
        if not candidates:
            raise CertificateError(
                CertificateFailure.UNKNOWN_ISSUER,
                f"issuer {cert.issuer.rfc4514_string()!r} is not a trusted department CA",
            )
        if cert.signature_algorithm_oid != SignatureAlgorithmOID.ED25519:
            raise CertificateError(
                CertificateFailure.BAD_SIGNATURE,
                f"certificate signature algorithm {cert.signature_algorithm_oid.dotted_string} is not Ed25519",
            )
        der = cert.public_bytes(serialization.Encoding.DER)
        if len(cert.signature) != 64 or der[-67:] != _ED25519_SIGNATURE_BIT_STRING + cert.signature:
            # e.g. nonzero "unused bits" in the signature BIT STRING: same signature, different bytes
            raise CertificateError(
                CertificateFailure.MALFORMED, "certificate signature is not a canonical 64-byte Ed25519 BIT STRING"
            )
        issuer: _TrustedCa | None = None
        for ca in candidates:
            try:
                ca.public_key.verify(cert.signature, cert.tbs_certificate_bytes)
            except InvalidSignature:
                continue
            issuer = ca
            break
        if issuer is None:
            raise CertificateError(
                CertificateFailure.BAD_SIGNATURE,
                f"signature does not verify with the key of CA {cert.issuer.rfc4514_string()!r}",
            )
        try:
            key = cert.public_key()
        except (UnsupportedAlgorithm, ValueError) as exc:
            raise CertificateError(CertificateFailure.WRONG_KEY_TYPE, f"certificate key is not usable: {exc}") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise CertificateError(
                CertificateFailure.WRONG_KEY_TYPE, f"certificate key is {type(key).__name__}, expected Ed25519"
            )
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        except ValueError as exc:
            raise CertificateError(
                CertificateFailure.MALFORMED, f"certificate extensions are malformed: {exc}"
            ) from None
        if constraints is not None and constraints.ca:
            raise CertificateError(CertificateFailure.NOT_A_ROBOT_CERTIFICATE, "certificate is a CA certificate")
        return _VerifiedLeaf(cert, issuer, key, hashlib.sha256(der).hexdigest())

    def _verified_leaf_for(
        self, data: bytes, usage: x509.ObjectIdentifier, failure: CertificateFailure, role: str
    ) -> _VerifiedLeaf:
        """The verified chain's leaf, which must carry the extended key usage of ``role``."""
        leaf = self._verify_chain(data)
        try:
            usages = _extended_key_usages(leaf.certificate)
        except ValueError as exc:
            raise CertificateError(
                CertificateFailure.MALFORMED, f"certificate extensions are malformed: {exc}"
            ) from None
        if usage not in usages:
            raise CertificateError(failure, f"certificate lacks the {role} extended key usage {usage.dotted_string}")
        return leaf

    def _robot_identity(self, data: bytes) -> RobotIdentity:
        leaf = self._verified_leaf_for(
            data, ROBOT_EMPLOYEE_EKU, CertificateFailure.NOT_A_ROBOT_CERTIFICATE, "robot-employee"
        )
        cert = leaf.certificate
        number_text = _single_attribute(cert, NameOID.SERIAL_NUMBER, "serialNumber (identity number)")
        try:
            number = parse_identity_number(number_text)
        except IdentityNumberError as exc:
            raise CertificateError(CertificateFailure.BAD_IDENTITY, f"certificate identity number: {exc}") from None
        return RobotIdentity(
            identity_number=number,
            robot_name=_single_attribute(cert, NameOID.COMMON_NAME, "commonName (robot name)"),
            department=_single_attribute(cert, NameOID.ORGANIZATION_NAME, "organizationName (department)"),
            public_key=leaf.public_key,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            issuer_fingerprint=leaf.ca.fingerprint,
            certificate_fingerprint=leaf.fingerprint,
        )

    def _guardian_identity(self, data: bytes) -> GuardianIdentity:
        leaf = self._verified_leaf_for(data, GUARDIAN_EKU, CertificateFailure.NOT_A_GUARDIAN_CERTIFICATE, "guardian")
        cert = leaf.certificate
        return GuardianIdentity(
            guardian_id=_single_attribute(cert, NameOID.SERIAL_NUMBER, "serialNumber (guardian id)"),
            guardian_name=_single_attribute(cert, NameOID.COMMON_NAME, "commonName (guardian name)"),
            department=_single_attribute(cert, NameOID.ORGANIZATION_NAME, "organizationName (department)"),
            role=_single_attribute(cert, NameOID.ORGANIZATIONAL_UNIT_NAME, "organizationalUnitName (role)"),
            public_key=leaf.public_key,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            issuer_fingerprint=leaf.ca.fingerprint,
            certificate_fingerprint=leaf.fingerprint,
        )

    def _issuer_of(self, fingerprint: str) -> x509.Certificate:
        for ca in self._cas:
            if ca.fingerprint == fingerprint:
                return ca.certificate
        raise CertificateError(CertificateFailure.UNKNOWN_ISSUER, "issuing CA is no longer trusted")

    def verify_robot(self, data: bytes, now: dt.datetime) -> RobotIdentity:
        """Verified identity of a robot certificate (PEM or DER) at time ``now``."""
        return self._verify_cached(self._robot_cache, self._robot_identity, data, now)

    def verify_guardian(self, data: bytes, now: dt.datetime) -> GuardianIdentity:
        """Verified identity of a guardian certificate (PEM or DER) at time ``now``."""
        return self._verify_cached(self._guardian_cache, self._guardian_identity, data, now)

    def _verify_cached(
        self, cache: Any, identify: Callable[[Any], _IdentityT], data: bytes, now: dt.datetime
    ) -> _IdentityT:
        """The chain is checked once per certificate (bytes-keyed LRU); the validity window at every call."""
        key = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        cached = cache.get(key) if isinstance(key, bytes) else None
        if cached is None:
            try:
                cached = identify(key)
            except CertificateError as exc:
                cached = exc
            except (ValueError, TypeError) as exc:  # a lazily parsed part of the certificate
                cached = CertificateError(CertificateFailure.MALFORMED, f"certificate is malformed: {exc}")
            if isinstance(key, bytes) and len(key) <= MAX_CERTIFICATE_BYTES:
                self._remember(cache, key, cached)
        else:
            cache.move_to_end(key)
        if isinstance(cached, CertificateError):
            raise CertificateError(cached.reason, str(cached))
        self._check_time_cached(cached.not_before, cached.not_after, cached.issuer_fingerprint, now)
        return cached  # type: ignore[no-any-return]

    def _check_time_cached(
        self, not_before: dt.datetime, not_after: dt.datetime, issuer_fingerprint: str, now: dt.datetime
    ) -> None:
        if not isinstance(now, dt.datetime) or now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        ca = self._issuer_of(issuer_fingerprint)
        for what, start, end in (
            ("certificate", not_before, not_after),
            ("issuing CA", ca.not_valid_before_utc, ca.not_valid_after_utc),
        ):
            if now < start:
                raise CertificateError(
                    CertificateFailure.NOT_YET_VALID,
                    f"{what} not valid before {start.isoformat()} (now {now.isoformat()})",
                )
            if now > end:
                raise CertificateError(
                    CertificateFailure.EXPIRED, f"{what} expired at {end.isoformat()} (now {now.isoformat()})"
                )

    def _remember(self, cache: OrderedDict, key: bytes, value: object) -> None:  # type: ignore[type-arg]
        cache[key] = value
        if len(cache) > self._cache_size:
            cache.popitem(last=False)


def verify_robot_certificate(
    cert_pem_or_der: bytes, trusted_cas: Sequence[x509.Certificate], now: dt.datetime
) -> RobotIdentity:
    """Verify a robot identity certificate against ``trusted_cas`` at ``now`` (uncached)."""
    return CertificateVerifier(trusted_cas, cache_size=1).verify_robot(cert_pem_or_der, now)


def verify_guardian_certificate(
    cert_pem_or_der: bytes, trusted_cas: Sequence[x509.Certificate], now: dt.datetime
) -> GuardianIdentity:
    """Verify a guardian certificate against ``trusted_cas`` at ``now`` (uncached)."""
    return CertificateVerifier(trusted_cas, cache_size=1).verify_guardian(cert_pem_or_der, now)


# ---------------------------------------------------------------------------------------------
# Files

PathLike = Union[str, "os.PathLike[str]"]


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(CertificateFailure.FILE_ERROR, f"{path}: no such certificate file") from None
    except IsADirectoryError:
        raise CertificateError(
            CertificateFailure.FILE_ERROR, f"{path}: is a directory, not a certificate file"
        ) from None
    except OSError as exc:
        raise CertificateError(CertificateFailure.FILE_ERROR, f"{path}: cannot read: {exc.strerror}") from None


def _parse_file(path: Path, data: bytes) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        elif data:
            certs = [x509.load_der_x509_certificate(data)]
        else:
            certs = []
    except ValueError as exc:
        raise CertificateError(
            CertificateFailure.MALFORMED, f"{path}: not a PEM/DER X.509 certificate ({exc})"
        ) from None
    if not certs:
        raise CertificateError(CertificateFailure.MALFORMED, f"{path}: contains no certificate")
    return certs


def load_certificate(path: PathLike) -> x509.Certificate:
    """Load exactly one certificate (PEM or DER) from ``path``."""
    target = Path(path)
    certs = _parse_file(target, _read_file(target))
    if len(certs) != 1:
        raise CertificateError(
            CertificateFailure.MALFORMED, f"{target}: contains {len(certs)} certificates, expected 1"
        )
    return certs[0]


def load_certificates(paths: PathLike | Iterable[PathLike]) -> list[x509.Certificate]:
    """Load certificates from files and/or directories (every *.pem/*.crt/*.cer/*.der inside, sorted).

    A PEM file may hold several certificates. An empty result is an error.
    """
    items: list[PathLike] = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        target = Path(item)
        if target.is_dir():
            found = sorted(p for p in target.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES and p.is_file())
            if not found:
                raise CertificateError(
                    CertificateFailure.FILE_ERROR,
                    f"{target}: directory holds no {'/'.join(CERTIFICATE_SUFFIXES)} files",
                )
            files.extend(found)
        else:
            files.append(target)
    if not files:
        raise CertificateError(CertificateFailure.FILE_ERROR, "no certificate files given")
    result: list[x509.Certificate] = []
    for file in files:
        result.extend(_parse_file(file, _read_file(file)))
    return result


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def save_certificate_pem(path: PathLike, cert: x509.Certificate, overwrite: bool = False) -> Path:
    """Write ``cert`` as PEM (mode 0644) atomically; refuse to replace an existing file unless ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise CertificateError(CertificateFailure.FILE_ERROR, f"{target}: already exists (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(certificate_pem(cert))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CertificateError(CertificateFailure.FILE_ERROR, f"{target}: cannot write: {exc.strerror}") from None
    return target
