"""The department's signature on an envelope: a robot loads only an unaltered, current envelope signed for it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrobot_guard.safety.envelope import EnvelopeError
from ftrobot_guard.safety.envelope_signature import (
    ANY_ROBOT,
    ENVELOPE_SIGNATURE_DOMAIN,
    EnvelopeSignatureError,
    EnvelopeSignatureFailure,
    load_signed_envelope,
    parse_signature,
    sign_envelope,
    signature_path_for,
    signature_to_text,
    signer_fingerprint,
    verify_signed_envelope,
    write_signature_file,
)
from ftrobot_guard.trust.certificates import create_department_ca
from ftrobot_guard.trust.signed_fields import canonical_bytes

ROOT = Path(__file__).resolve().parents[1]
G1_YAML = ROOT / "config" / "envelope" / "g1.yaml"
G1_BYTES = G1_YAML.read_bytes()
ROBOT = "440304-RB-2026-000123-8"
OTHER_ROBOT = "440304-RB-2026-000124-6"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
Failure = EnvelopeSignatureFailure


class Department(NamedTuple):
    key: ed25519.Ed25519PrivateKey
    cert: x509.Certificate


def _department(name: str) -> Department:
    key = ed25519.Ed25519PrivateKey.generate()  # generated per test session, never committed
    return Department(key, create_department_ca(name, key, valid_days=3650, now=NOW - dt.timedelta(days=1)))


@pytest.fixture(scope="module")
def department() -> Department:
    return _department("Futian District Government Services and Data Management Bureau")


@pytest.fixture(scope="module")
def forger() -> Department:
    return _department("Not The Department")


def signed_copy(directory: Path, key: ed25519.Ed25519PrivateKey, data: bytes = G1_BYTES,
                robots: tuple[str, ...] = (ANY_ROBOT,), days: float = 30.0, start: dt.datetime = NOW) -> Path:
    path = directory / "g1.yaml"
    path.write_bytes(data)
    signature = sign_envelope(data, key, start - dt.timedelta(minutes=5), start + dt.timedelta(days=days), robots)
    write_signature_file(signature_path_for(path), signature, overwrite=True)
    return path


def refusal(path: Path, trust: object, now: dt.datetime = NOW, **kwargs: object) -> EnvelopeSignatureError:
    with pytest.raises(EnvelopeSignatureError) as info:
        load_signed_envelope(path, trust, now, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    return info.value


def test_committed_envelope_directory_holds_no_signature_or_key() -> None:
    names = sorted(p.name for p in G1_YAML.parent.iterdir())
    assert names == ["g1.yaml"], names


def test_signed_envelope_loads_with_the_ca_or_the_key(tmp_path: Path, department: Department) -> None:
    path = signed_copy(tmp_path, department.key, robots=(ROBOT,))
    signed = load_signed_envelope(path, department.cert, NOW, robot_id=ROBOT, robot_model="unitree_g1_29dof")
    assert signed.envelope.robot_model == "unitree_g1_29dof" and len(signed.envelope.joints) == 29
    assert signed.signature.robots == (ROBOT,) and "Futian" in signed.signer_name
    assert load_signed_envelope(path, [department.cert], NOW).envelope.robot_model == "unitree_g1_29dof"
    assert load_signed_envelope(path, department.key.public_key(), NOW).signature.signer == \
        signer_fingerprint(department.key.public_key())


def test_unsigned_envelope_is_refused(tmp_path: Path, department: Department) -> None:
    path = tmp_path / "g1.yaml"
    path.write_bytes(G1_BYTES)
    assert refusal(path, department.cert).reason is Failure.UNSIGNED


@pytest.mark.parametrize("change", [
    lambda b: b.replace(b"minimum: 0.25", b"minimum: 0.15"),   # a real relaxation
    lambda b: b + b"\n",                                       # only whitespace: the bytes are what is signed
    lambda b: b.replace(b"soft: 0.6}", b"soft: 1.6}", 1),
])
def test_altered_envelope_is_refused(tmp_path: Path, department: Department, change: object) -> None:
    path = signed_copy(tmp_path, department.key)
    path.write_bytes(change(G1_BYTES))  # type: ignore[operator]
    error = refusal(path, department.cert)
    assert error.reason is Failure.ALTERED and "altered" in str(error)


@pytest.mark.parametrize(("key", "value"), [
    ("expires_at", "2099-01-01T00:00:00Z"),
    ("issued_at", "2000-01-01T00:00:00Z"),
    ("robots", [ROBOT]),
    ("robot_model", "unitree_g1_29dof_v2"),
])
def test_altered_signature_claims_are_refused(tmp_path: Path, department: Department, key: str,
                                              value: object) -> None:
    path = signed_copy(tmp_path, department.key)
    sig_path = signature_path_for(path)
    document = json.loads(sig_path.read_text())
    document[key] = value
    sig_path.write_text(json.dumps(document))
    assert refusal(path, department.cert, robot_id=ROBOT).reason is Failure.ALTERED


def test_altered_envelope_with_a_matching_hash_is_still_refused(tmp_path: Path, department: Department) -> None:
    path = signed_copy(tmp_path, department.key)
    altered = G1_BYTES.replace(b"limit: 0.5}", b"limit: 1.0}")
    path.write_bytes(altered)
    sig_path = signature_path_for(path)
    document = json.loads(sig_path.read_text())
    document["envelope_sha256"] = hashlib.sha256(altered).hexdigest()
    sig_path.write_text(json.dumps(document))
    assert refusal(path, department.cert).reason is Failure.ALTERED


def test_expired_and_not_yet_valid_are_refused(tmp_path: Path, department: Department) -> None:
    path = signed_copy(tmp_path, department.key, days=10)
    assert refusal(path, department.cert, now=NOW + dt.timedelta(days=11)).reason is Failure.EXPIRED
    assert refusal(path, department.cert, now=NOW - dt.timedelta(hours=1)).reason is Failure.NOT_YET_VALID
    assert load_signed_envelope(path, department.cert, NOW + dt.timedelta(days=9)).envelope is not None


def test_expired_department_ca_is_refused(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    ca = create_department_ca("Short-lived Department", key, valid_days=1, now=NOW - dt.timedelta(hours=1))
    path = signed_copy(tmp_path, key, days=30)
    error = refusal(path, ca, now=NOW + dt.timedelta(days=2))
    assert error.reason is Failure.EXPIRED and "department CA" in str(error)


def test_signature_by_another_department_is_refused(tmp_path: Path, department: Department,
                                                    forger: Department) -> None:
    path = signed_copy(tmp_path, forger.key)
    assert refusal(path, department.cert).reason is Failure.UNKNOWN_SIGNER
    # claiming the real department's key does not help: the signature does not verify with it
    sig_path = signature_path_for(path)
    document = json.loads(sig_path.read_text())
    document["signer"] = signer_fingerprint(department.key.public_key())
    sig_path.write_text(json.dumps(document))
    assert refusal(path, department.cert).reason is Failure.ALTERED


def test_envelope_bound_to_another_robot_is_refused(tmp_path: Path, department: Department) -> None:
    path = signed_copy(tmp_path, department.key, robots=(ROBOT,))
    assert refusal(path, department.cert, robot_id=OTHER_ROBOT).reason is Failure.WRONG_ROBOT
    assert refusal(path, department.cert, robot_model="unitree_h1").reason is Failure.WRONG_MODEL
    any_robot = signed_copy(tmp_path, department.key)
    assert load_signed_envelope(any_robot, department.cert, NOW, robot_id=OTHER_ROBOT).envelope is not None


def test_the_signature_is_over_the_documented_message(tmp_path: Path, department: Department) -> None:
    """A signature made from the module docstring's description verifies; another domain does not."""
    issued, expires = NOW - dt.timedelta(minutes=1), NOW + dt.timedelta(days=1)
    fields = {"envelope": G1_BYTES, "robot_model": "unitree_g1_29dof", "robots": [ROBOT],
              "issued_at": int(issued.timestamp()), "expires_at": int(expires.timestamp()),
              "signer": signer_fingerprint(department.key.public_key())}

    def document(domain: str) -> str:
        return json.dumps({
            "format": "ftrobot-envelope-signature/1", "envelope_sha256": hashlib.sha256(G1_BYTES).hexdigest(),
            "robot_model": "unitree_g1_29dof", "robots": [ROBOT], "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "signer": fields["signer"],
            "signature": base64.b64encode(department.key.sign(canonical_bytes(domain, fields))).decode()})

    good = parse_signature(document(ENVELOPE_SIGNATURE_DOMAIN))
    assert verify_signed_envelope(G1_BYTES, good, department.cert, NOW, robot_id=ROBOT).envelope is not None
    other_domain = parse_signature(document("ftrobot/heartbeat/v1"))
    with pytest.raises(EnvelopeSignatureError) as info:
        verify_signed_envelope(G1_BYTES, other_domain, department.cert, NOW)
    assert info.value.reason is Failure.ALTERED


def test_a_signed_but_invalid_envelope_is_refused(department: Department) -> None:
    bad = G1_BYTES.replace(b"minimum: 0.25", b"minimum: 25")
    with pytest.raises(EnvelopeError):
        sign_envelope(bad, department.key, NOW, NOW + dt.timedelta(days=1))   # never signed by the tool ...
    issued, expires = NOW - dt.timedelta(minutes=1), NOW + dt.timedelta(days=1)
    fields = {"envelope": bad, "robot_model": "unitree_g1_29dof", "robots": [ANY_ROBOT],
              "issued_at": int(issued.timestamp()), "expires_at": int(expires.timestamp()),
              "signer": signer_fingerprint(department.key.public_key())}
    text = json.dumps({"format": "ftrobot-envelope-signature/1", "envelope_sha256": hashlib.sha256(bad).hexdigest(),
                       "robot_model": "unitree_g1_29dof", "robots": [ANY_ROBOT],
                       "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "signer": fields["signer"],
                       "signature": base64.b64encode(department.key.sign(
                           canonical_bytes(ENVELOPE_SIGNATURE_DOMAIN, fields))).decode()})
    with pytest.raises(EnvelopeSignatureError) as info:   # ... and refused if someone signed it by hand
        verify_signed_envelope(bad, parse_signature(text), department.cert, NOW)
    assert info.value.reason is Failure.INVALID_ENVELOPE and "battery.minimum" in str(info.value)


def test_sign_refuses_bad_arguments(department: Department) -> None:
    with pytest.raises(ValueError, match="later than"):
        sign_envelope(G1_BYTES, department.key, NOW, NOW)
    with pytest.raises(ValueError, match="stands alone"):
        sign_envelope(G1_BYTES, department.key, NOW, NOW + dt.timedelta(days=1), robots=[ANY_ROBOT, ROBOT])
    with pytest.raises(ValueError):
        sign_envelope(G1_BYTES, department.key, NOW, NOW + dt.timedelta(days=1), robots=["440304-RB-2026-000123-7"])
    with pytest.raises(ValueError, match="Ed25519 private key"):
        sign_envelope(G1_BYTES, department.key.public_key(), NOW, NOW + dt.timedelta(days=1))  # type: ignore[arg-type]


def test_signature_text_round_trips(department: Department) -> None:
    signature = sign_envelope(G1_BYTES, department.key, NOW, NOW + dt.timedelta(days=3), robots=[ROBOT, OTHER_ROBOT])
    assert parse_signature(signature_to_text(signature)) == signature


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "not a JSON object"),
    ("[]", "not a JSON object"),
    ('{"format": "x"}', "missing key 'envelope_sha256'"),
    ('{"a": 1, "a": 2}', "duplicate key"),
    ('{"x": NaN}', "NaN is not allowed"),
])
def test_malformed_signature_files_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(EnvelopeSignatureError) as info:
        parse_signature(text)
    assert info.value.reason is Failure.MALFORMED_SIGNATURE and fragment in str(info.value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_mutation_of_signature_or_envelope_verifies(department: Department, data: st.DataObject) -> None:
    """Any change to the signature file's text or to the envelope's bytes is refused, never a crash."""
    signature = sign_envelope(G1_BYTES, department.key, NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=1),
                              robots=[ROBOT])
    text = signature_to_text(signature).encode()
    envelope = G1_BYTES
    if data.draw(st.booleans(), label="mutate the signature file"):
        position = data.draw(st.integers(0, len(text) - 1), label="position")
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != text[position]), label="byte")
        text = text[:position] + bytes([byte]) + text[position + 1:]
    else:
        position = data.draw(st.integers(0, len(envelope) - 1), label="position")
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != envelope[position]), label="byte")
        envelope = envelope[:position] + bytes([byte]) + envelope[position + 1:]
    try:
        verify_signed_envelope(envelope, parse_signature(text), department.cert, NOW, robot_id=ROBOT)
    except EnvelopeSignatureError as exc:
        assert "\n" not in str(exc)
    else:
        # the only accepted change: JSON whitespace or an equivalent escape in the signature file's text
        assert envelope == G1_BYTES and parse_signature(text) == signature
