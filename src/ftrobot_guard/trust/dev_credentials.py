"""Development credentials: a department CA, robot identities and guardians made on the spot (demo, tests, benches).

Real deployments get their certificates from the department (`ftrobot dept issue`); these files are
generated at run time into a directory of the caller's choosing and never committed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.certificates import (
    create_department_ca,
    issue_guardian_certificate,
    issue_robot_certificate,
    save_certificate_pem,
)
from ftrobot_guard.trust.identity import IdentityNumber
from ftrobot_guard.trust.keys import write_private_key, write_public_key


@dataclass(frozen=True)
class DepartmentFiles:
    ca_certificate: Path
    ca_key: Path
    cert: x509.Certificate
    key: ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class RobotFiles:
    identity_number: str
    robot_name: str
    department: str
    private_key: Path
    certificate: Path


def make_department(
    directory: Path, name: str = "Futian District Government Services and Data Management Bureau"
) -> DepartmentFiles:
    """A department CA key (0600) and self-signed certificate in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    cert = create_department_ca(name, key, valid_days=3650)
    key_path = write_private_key(directory / "ca.key", key)
    cert_path = save_certificate_pem(directory / "ca.pem", cert)
    return DepartmentFiles(cert_path, key_path, cert, key)


def make_robot(
    directory: Path,
    department: DepartmentFiles,
    identity_number: IdentityNumber,
    robot_name: str,
    department_name: str = "Futian District Government Services Center",
    valid_days: int = 365,
    not_before: dt.datetime | None = None,
) -> RobotFiles:
    """A robot key (0600), its public key and a certificate issued by ``department`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    start = not_before or max(dt.datetime.now(dt.UTC), department.cert.not_valid_before_utc)
    cert = issue_robot_certificate(
        department.cert,
        department.key,
        key.public_key(),
        identity_number,
        robot_name,
        department_name,
        start,
        start + dt.timedelta(days=valid_days),
    )
    key_path = write_private_key(directory / "robot.key", key)
    write_public_key(directory / "robot.pub", key.public_key())
    cert_path = save_certificate_pem(directory / "robot.pem", cert)
    return RobotFiles(str(identity_number), robot_name, department_name, key_path, cert_path)


@dataclass(frozen=True)
class GuardianFiles:
    guardian_id: str
    role: str
    private_key: Path
    certificate: Path


def make_guardian(
    key_directory: Path,
    registry_directory: Path,
    department: DepartmentFiles,
    guardian_id: str,
    name: str,
    role: str,
    department_name: str = "Futian District Government Services Center",
    valid_days: int = 365,
) -> GuardianFiles:
    """A guardian key (0600) in ``key_directory`` and its certificate, issued by ``department``, registered in
    ``registry_directory`` (the robot's ``guardian_certificates_dir``) as ``<guardian_id>.pem``."""
    key_directory.mkdir(parents=True, exist_ok=True)
    registry_directory.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    start = max(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5), department.cert.not_valid_before_utc)
    cert = issue_guardian_certificate(department.cert, department.key, key.public_key(), guardian_id, name, role,
                                      department_name, start, start + dt.timedelta(days=valid_days))
    key_path = write_private_key(key_directory / f"{guardian_id}.key", key)
    write_public_key(key_directory / f"{guardian_id}.key.pub", key.public_key())
    cert_path = save_certificate_pem(registry_directory / f"{guardian_id}.pem", cert)
    return GuardianFiles(guardian_id, role, key_path, cert_path)
