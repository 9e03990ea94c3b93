"""Department CA, robot and guardian certificates: issuing, verifying, refusing, files."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrobot_guard.trust.certificates import (
    ROBOT_EMPLOYEE_EKU,
    CertificateError,
    CertificateFailure,
    CertificateVerifier,
    certificate_der,
    certificate_pem,
    create_department_ca,
    issue_guardian_certificate,
    issue_robot_certificate,
    load_certificate,
    load_certificates,
    save_certificate_pem,
    verify_guardian_certificate,
    verify_robot_certificate,
)
from ftrobot_guard.trust.identity import make_identity_number

T0 = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=dt.UTC)
NUMBER = make_identity_number("440304", 2026, 123)

CA_KEY = ed25519.Ed25519PrivateKey.generate()
CA = create_department_ca("Futian Data Bureau", CA_KEY, 3650, now=T0)
ROBOT_KEY = ed25519.Ed25519PrivateKey.generate()


def robot_cert(
    not_before: dt.datetime = T0, not_after: dt.datetime = T0 + dt.timedelta(days=365), **overrides: object
) -> x509.Certificate:
    args: dict[str, object] = {
        "ca_cert": CA,
        "ca_key": CA_KEY,
        "robot_public_key": ROBOT_KEY.public_key(),
        "identity_number": NUMBER,
        "robot_name": "Xiao Fu",
        "department": "Futian Data Bureau",
        "not_before": not_before,
        "not_after": not_after,
    }
    args.update(overrides)
    return issue_robot_certificate(**args)  # type: ignore[arg-type]


def reason_of(data: bytes, now: dt.datetime = T0 + dt.timedelta(days=1), cas: list[x509.Certificate] | None = None) -> CertificateFailure:
    with pytest.raises(CertificateError) as info:
        verify_robot_certificate(data, cas if cas is not None else [CA], now)
    assert str(info.value) and "\n" not in str(info.value)
    return info.value.reason


def test_robot_certificate_round_trip_pem_and_der() -> None:
    cert = robot_cert()
    for data in (certificate_pem(cert), certificate_der(cert)):
        identity = verify_robot_certificate(data, [CA], T0 + dt.timedelta(days=1))
        assert identity.identity_number == NUMBER
        assert identity.robot_name == "Xiao Fu"
        assert identity.department == "Futian Data Bureau"
        assert identity.public_key == ROBOT_KEY.public_key()
        assert identity.not_after == T0 + dt.timedelta(days=365)
        assert len(identity.certificate_fingerprint) == 64
        assert identity.issuer_fingerprint != identity.certificate_fingerprint


@pytest.mark.clause("2.3")
def test_certificate_contents() -> None:
    cert = robot_cert()
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == str(NUMBER)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ROBOT_EMPLOYEE_EKU in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert CA.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert CA.subject == CA.issuer


def test_garbage_and_empty_are_malformed() -> None:
    assert reason_of(b"") is CertificateFailure.MALFORMED
    assert reason_of(b"not a certificate") is CertificateFailure.MALFORMED
    assert reason_of(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is CertificateFailure.MALFORMED
    assert reason_of(b"\x30" * 20000) is CertificateFailure.MALFORMED


@pytest.mark.clause("2.3")
def test_other_department_is_unknown_issuer() -> None:
    other_key = ed25519.Ed25519PrivateKey.generate()
    other = create_department_ca("Nanshan Data Bureau", other_key, 3650, now=T0)
    cert = issue_robot_certificate(
        other, other_key, ROBOT_KEY.public_key(), NUMBER, "Xiao Fu", "Nanshan", T0, T0 + dt.timedelta(days=30)
    )
    assert reason_of(certificate_der(cert)) is CertificateFailure.UNKNOWN_ISSUER
    assert reason_of(certificate_der(robot_cert()), cas=[]) is CertificateFailure.UNKNOWN_ISSUER


@pytest.mark.clause("2.3", "5.1a")
def test_impostor_ca_with_the_same_name_is_a_bad_signature() -> None:
    impostor_key = ed25519.Ed25519PrivateKey.generate()
    impostor = create_department_ca("Futian Data Bureau", impostor_key, 3650, now=T0)
    cert = issue_robot_certificate(
        impostor, impostor_key, ROBOT_KEY.public_key(), NUMBER, "Xiao Fu", "Futian Data Bureau", T0,
        T0 + dt.timedelta(days=30),
    )
    assert reason_of(certificate_der(cert)) is CertificateFailure.BAD_SIGNATURE
    # trusting both: the genuine CA's key is tried too, still refused; the impostor verifies its own
    assert reason_of(certificate_der(cert), cas=[CA]) is CertificateFailure.BAD_SIGNATURE
    assert verify_robot_certificate(certificate_der(cert), [CA, impostor], T0).robot_name == "Xiao Fu"


@pytest.mark.clause("2.3")
def test_validity_window_and_ca_expiry() -> None:
    cert = certificate_der(robot_cert(T0, T0 + dt.timedelta(days=10)))
    assert reason_of(cert, now=T0 - dt.timedelta(seconds=1)) is CertificateFailure.NOT_YET_VALID
    assert reason_of(cert, now=T0 + dt.timedelta(days=10, seconds=1)) is CertificateFailure.EXPIRED
    short_key = ed25519.Ed25519PrivateKey.generate()
    short_ca = create_department_ca("Short CA", short_key, 1, now=T0)
    # issue_robot_certificate refuses to outlive its CA; a hand-made certificate shows the CA check
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name())
        .issuer_name(short_ca.subject)
        .public_key(ROBOT_KEY.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0)
        .not_valid_after(T0 + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ROBOT_EMPLOYEE_EKU]), critical=True)
        .sign(short_key, algorithm=None)
    )
    assert verify_robot_certificate(certificate_der(leaf), [short_ca], T0 + dt.timedelta(hours=23)).robot_name
    with pytest.raises(CertificateError, match="issuing CA expired") as info:
        verify_robot_certificate(certificate_der(leaf), [short_ca], T0 + dt.timedelta(days=1, minutes=1))
    assert info.value.reason is CertificateFailure.EXPIRED


def test_issuing_beyond_the_ca_window_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the CA"):
        robot_cert(T0, T0 + dt.timedelta(days=4000))
    with pytest.raises(ValueError, match="later than"):
        robot_cert(T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        robot_cert(T0.replace(tzinfo=None), T0 + dt.timedelta(days=1))


def test_issuer_refuses_a_key_that_does_not_match_the_ca() -> None:
    with pytest.raises(ValueError, match="does not match"):
        robot_cert(ca_key=ed25519.Ed25519PrivateKey.generate())


@pytest.mark.parametrize(
    ("field", "value"), [("robot_name", ""), ("robot_name", "x" * 65), ("department", " padded"), ("robot_name", "a\nb")]
)
def test_issuer_refuses_bad_names(field: str, value: str) -> None:
    with pytest.raises(ValueError):
        robot_cert(**{field: value})


def _leaf(subject: x509.Name, public_key: object, eku: x509.ObjectIdentifier | None = ROBOT_EMPLOYEE_EKU) -> bytes:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(CA.subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(T0)
        .not_valid_after(T0 + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=True)
    return certificate_der(builder.sign(CA_KEY, algorithm=None))


def _name(serial: str = str(NUMBER), cn: str | None = "Xiao Fu") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.SERIAL_NUMBER, serial)]
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Futian"))
    return x509.Name(attributes)


@pytest.mark.clause("2.3")
def test_bad_identity_in_a_ca_signed_certificate() -> None:
    assert reason_of(_leaf(_name(serial="440304-RB-2026-000123-7"), ROBOT_KEY.public_key())) is CertificateFailure.BAD_IDENTITY
    assert reason_of(_leaf(_name(cn=None), ROBOT_KEY.public_key())) is CertificateFailure.BAD_IDENTITY


def test_wrong_key_type() -> None:
    data = _leaf(_name(), x25519.X25519PrivateKey.generate().public_key())
    assert reason_of(data) is CertificateFailure.WRONG_KEY_TYPE


@pytest.mark.clause("2.3")
def test_not_a_robot_certificate() -> None:
    assert reason_of(_leaf(_name(), ROBOT_KEY.public_key(), eku=None)) is CertificateFailure.NOT_A_ROBOT_CERTIFICATE
    assert reason_of(certificate_der(CA)) is CertificateFailure.NOT_A_ROBOT_CERTIFICATE
    guardian = issue_guardian_certificate(
        CA, CA_KEY, ROBOT_KEY.public_key(), "G-0001", "Zhang San", "operator", "Futian", T0, T0 + dt.timedelta(days=30)
    )
    assert reason_of(certificate_der(guardian)) is CertificateFailure.NOT_A_ROBOT_CERTIFICATE


@pytest.mark.clause("2.7", "6.1c")
def test_guardian_certificate_round_trip_and_kind_check() -> None:
    guardian = issue_guardian_certificate(
        CA, CA_KEY, ROBOT_KEY.public_key(), "G-0001", "Zhang San", "operator", "Futian", T0, T0 + dt.timedelta(days=30)
    )
    identity = verify_guardian_certificate(certificate_pem(guardian), [CA], T0 + dt.timedelta(days=1))
    assert (identity.guardian_id, identity.guardian_name, identity.role, identity.department) == (
        "G-0001", "Zhang San", "operator", "Futian",
    )
    with pytest.raises(CertificateError) as info:
        verify_guardian_certificate(certificate_der(robot_cert()), [CA], T0 + dt.timedelta(days=1))
    assert info.value.reason is CertificateFailure.NOT_A_GUARDIAN_CERTIFICATE
    with pytest.raises(ValueError, match="role"):
        issue_guardian_certificate(
            CA, CA_KEY, ROBOT_KEY.public_key(), "G-0001", "Zhang San", "op erator", "Futian", T0, T0 + dt.timedelta(days=3)
        )


def test_verifier_caches_the_chain_but_rechecks_time(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = CertificateVerifier([CA])
    calls: list[bytes] = []
    original = CertificateVerifier._robot_identity

    def counting(self: CertificateVerifier, data: bytes):  # type: ignore[no-untyped-def]
        calls.append(data)
        return original(self, data)

    monkeypatch.setattr(CertificateVerifier, "_robot_identity", counting)
    data = certificate_der(robot_cert(T0, T0 + dt.timedelta(days=2)))
    for _ in range(5):
        verifier.verify_robot(data, T0 + dt.timedelta(days=1))
    with pytest.raises(CertificateError) as info:
        verifier.verify_robot(data, T0 + dt.timedelta(days=3))
    assert info.value.reason is CertificateFailure.EXPIRED
    for _ in range(3):
        with pytest.raises(CertificateError):
            verifier.verify_robot(b"garbage", T0)
    assert len(calls) == 2


def test_verifier_refuses_a_non_ca_trust_anchor() -> None:
    with pytest.raises(CertificateError) as info:
        CertificateVerifier([robot_cert()])
    assert info.value.reason is CertificateFailure.UNKNOWN_ISSUER


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_robot_certificate(certificate_der(robot_cert()), [CA], T0.replace(tzinfo=None))


def test_files(tmp_path: Path) -> None:
    cert = robot_cert()
    path = save_certificate_pem(tmp_path / "robot.pem", cert)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert load_certificate(path) == cert
    with pytest.raises(CertificateError, match="already exists"):
        save_certificate_pem(path, cert)
    save_certificate_pem(path, cert, overwrite=True)
    (tmp_path / "ca.crt").write_bytes(certificate_der(CA))
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_certificates(tmp_path) == [CA, cert]
    assert load_certificates([path, tmp_path / "ca.crt"]) == [cert, CA]
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(certificate_pem(CA) + certificate_pem(cert))
    assert load_certificates(bundle) == [CA, cert]
    with pytest.raises(CertificateError, match="2 certificates"):
        load_certificate(bundle)

    missing = tmp_path / "missing.pem"
    with pytest.raises(CertificateError, match=f"{missing}: no such certificate file") as info:
        load_certificate(missing)
    assert info.value.reason is CertificateFailure.FILE_ERROR
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertificateError, match=str(garbage)) as info:
        load_certificates([garbage])
    assert info.value.reason is CertificateFailure.MALFORMED
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(CertificateError, match="holds no"):
        load_certificates(empty_dir)


@settings(max_examples=30, deadline=None)
@given(
    start_offset_h=st.integers(-1000, 1000),
    length_h=st.integers(1, 2000),
    probe_offset_h=st.integers(-3000, 3000),
)
def test_validity_window_property(start_offset_h: int, length_h: int, probe_offset_h: int) -> None:
    base = T0 + dt.timedelta(days=100)
    start = base + dt.timedelta(hours=start_offset_h)
    end = start + dt.timedelta(hours=length_h)
    cert = certificate_der(robot_cert(start, end))
    now = base + dt.timedelta(hours=probe_offset_h, minutes=30)
    if start <= now <= end:
        assert verify_robot_certificate(cert, [CA], now).identity_number == NUMBER
    else:
        expected = CertificateFailure.NOT_YET_VALID if now < start else CertificateFailure.EXPIRED
        assert reason_of(cert, now=now) is expected


GOOD_DER = certificate_der(robot_cert())


@settings(max_examples=30, deadline=None)
@given(position=st.integers(0, len(GOOD_DER) - 1), xor=st.integers(1, 255))
@pytest.mark.clause("2.3", "5.1a")
def test_tampered_bytes_never_verify(position: int, xor: int) -> None:
    tampered = bytearray(GOOD_DER)
    tampered[position] ^= xor
    with pytest.raises(CertificateError):
        verify_robot_certificate(bytes(tampered), [CA], T0 + dt.timedelta(days=1))


def test_noncanonical_signature_encoding_is_refused() -> None:
    # A nonzero "unused bits" count in the signature BIT STRING leaves the signature value unchanged
    # for a lenient parser; the bytes differ from what the CA signed and must not verify.
    for _ in range(8):
        der = bytearray(certificate_der(robot_cert()))
        assert der[-67:-64] == b"\x03\x41\x00"
        der[-65] = 1
        assert reason_of(bytes(der)) is CertificateFailure.MALFORMED


def test_chinese_names_round_trip() -> None:
    cert = robot_cert(robot_name="小福", department="福田区政务服务数据管理局")
    identity = verify_robot_certificate(certificate_der(cert), [CA], T0 + dt.timedelta(days=1))
    assert (identity.robot_name, identity.department) == ("小福", "福田区政务服务数据管理局")
