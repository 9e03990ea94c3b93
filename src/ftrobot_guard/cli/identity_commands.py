"""``ftrobot id ...``, ``ftrobot keys ...`` and ``ftrobot dept ...``: identity numbers, robot keys,
the department CA and the certificates it issues.

Every handler returns an exit code: 0 on success, 2 with a one-line error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.cli.command_groups import CliError, command_group, days_argument
from ftrobot_guard.trust.certificates import (
    CertificateError,
    CertificateFailure,
    CertificateVerifier,
    certificate_fingerprint,
    create_department_ca,
    issue_guardian_certificate,
    issue_robot_certificate,
    load_certificate,
    load_certificates,
    save_certificate_pem,
)
from ftrobot_guard.trust.identity import IdentityNumberError, make_identity_number, parse_identity_number
from ftrobot_guard.trust.keys import (
    KeyFileError,
    fingerprint,
    generate_private_key,
    load_private_key,
    load_public_key,
    write_private_key,
    write_public_key,
)

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.pem"
DEFAULT_CA_DAYS = 3650
DEFAULT_CERT_DAYS = 365
MAX_DAYS = 36500
BACKDATE = dt.timedelta(minutes=5)  # tolerate robots whose clocks run slightly behind


class _CommandError(Exception):
    """A one-line, user-facing failure."""


def _fail(args: argparse.Namespace, message: str) -> int:
    command = getattr(args, "command_path", "ftrobot")
    print(f"{command}: error: {message}", file=sys.stderr)
    return 2


def _run(handler: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except (_CommandError, KeyFileError, IdentityNumberError, CertificateError) as exc:
            return _fail(args, str(exc))
        except ValueError as exc:
            return _fail(args, str(exc))
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            return _fail(args, f"{where}{exc.strerror or exc}")

    wrapped.__doc__ = handler.__doc__
    return wrapped


_days = days_argument(MAX_DAYS)


def _integer(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative whole number")
    return int(text)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# -- id ----------------------------------------------------------------------------------------


def _print_identity(number: Any) -> None:
    print(f"{number}: valid")
    print(f"  division code:   {number.division_code}")
    print("  kind:            RB (robot employee)")
    print(f"  year:            {number.year}")
    print(f"  serial:          {number.serial:06d}")
    print(f"  check character: {number.check}")


def _id_check(args: argparse.Namespace) -> int:
    _print_identity(parse_identity_number(args.number))
    return 0


def _id_make(args: argparse.Namespace) -> int:
    number = make_identity_number(args.division, args.year, args.serial)
    print(number)
    return 0


# -- keys --------------------------------------------------------------------------------------


def _public_path(private_path: Path) -> Path:
    return private_path.with_name(private_path.name + ".pub")


def _keys_init(args: argparse.Namespace) -> int:
    private_path = Path(args.out)
    public_path = _public_path(private_path)
    if not args.force:
        for path in (private_path, public_path):
            if path.exists():
                raise _CommandError(f"{path}: already exists (use --force to replace the key pair)")
    key = generate_private_key("ed25519")
    write_private_key(private_path, key, overwrite=args.force)
    write_public_key(public_path, key.public_key(), overwrite=args.force)
    print(f"private key: {private_path} (mode 0600)")
    print(f"public key:  {public_path}")
    print(f"fingerprint: {fingerprint(key.public_key())}")
    return 0


# -- dept --------------------------------------------------------------------------------------


def _dept_init(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
    for path in (key_path, cert_path):
        if path.exists():
            raise _CommandError(f"{path}: already exists (refusing to replace a department CA)")
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    key = cast(ed25519.Ed25519PrivateKey, generate_private_key("ed25519"))
    cert = create_department_ca(args.name, key, args.days, now=_now() - BACKDATE)
    write_private_key(key_path, key)
    save_certificate_pem(cert_path, cert)
    print(f"department CA {args.name!r}")
    print(f"  key:         {key_path} (mode 0600; keep it offline)")
    print(f"  certificate: {cert_path}")
    print(f"  valid until: {cert.not_valid_after_utc.isoformat()}")
    print(f"  fingerprint: {certificate_fingerprint(cert)}")
    return 0


def load_department_ca(directory_text: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    """The department CA certificate and key in a directory made by `ftrobot dept init`; CliError otherwise."""
    try:
        return _load_ca(directory_text)
    except (_CommandError, KeyFileError, CertificateError, OSError) as exc:
        raise CliError(f"--ca-dir {directory_text}: {exc}") from None


def _load_ca(directory_text: str) -> tuple[x509.Certificate, ed25519.Ed25519PrivateKey]:
    directory = Path(directory_text)
    if not directory.is_dir():
        raise _CommandError(f"{directory}: not a directory (expected a department CA made by 'ftrobot dept init')")
    key = cast(ed25519.Ed25519PrivateKey, load_private_key(directory / CA_KEY_FILE, "ed25519"))
    cert = load_certificate(directory / CA_CERT_FILE)
    if cert.public_key() != key.public_key():
        raise _CommandError(f"{directory / CA_KEY_FILE}: does not belong to {directory / CA_CERT_FILE}")
    return cert, key


def _window(ca_cert: x509.Certificate, days: int) -> tuple[dt.datetime, dt.datetime]:
    now = _now()
    not_before = max(now - BACKDATE, ca_cert.not_valid_before_utc)
    not_after = now + dt.timedelta(days=days)
    if not_after > ca_cert.not_valid_after_utc:
        raise _CommandError(
            f"--days {days} reaches {not_after.date().isoformat()}, beyond the CA's expiry"
            f" {ca_cert.not_valid_after_utc.date().isoformat()}"
        )
    return not_before, not_after


def _check_out(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise _CommandError(f"{out}: already exists (use --force to replace it)")
    return out


def _dept_issue(args: argparse.Namespace) -> int:
    number = parse_identity_number(args.id)
    out = _check_out(args)
    ca_cert, ca_key = _load_ca(args.ca_dir)
    robot_key = cast(ed25519.Ed25519PublicKey, load_public_key(args.robot_public_key, "ed25519"))
    not_before, not_after = _window(ca_cert, args.days)
    cert = issue_robot_certificate(
        ca_cert, ca_key, robot_key, number, args.name, args.department, not_before, not_after
    )
    save_certificate_pem(out, cert, overwrite=args.force)
    print(f"robot certificate {out}")
    print(f"  identity number: {number}")
    print(f"  robot name:      {args.name}")
    print(f"  department:      {args.department}")
    print(f"  key fingerprint: {fingerprint(robot_key)}")
    print(f"  valid:           {not_before.isoformat()} .. {not_after.isoformat()}")
    return 0


def _dept_issue_guardian(args: argparse.Namespace) -> int:
    out = _check_out(args)
    ca_cert, ca_key = _load_ca(args.ca_dir)
    guardian_key = cast(ed25519.Ed25519PublicKey, load_public_key(args.guardian_public_key, "ed25519"))
    not_before, not_after = _window(ca_cert, args.days)
    cert = issue_guardian_certificate(
        ca_cert, ca_key, guardian_key, args.guardian_id, args.name, args.role, args.department, not_before, not_after
    )
    save_certificate_pem(out, cert, overwrite=args.force)
    print(f"guardian certificate {out}")
    print(f"  guardian id:     {args.guardian_id}")
    print(f"  name:            {args.name}")
    print(f"  role:            {args.role}")
    print(f"  department:      {args.department}")
    print(f"  key fingerprint: {fingerprint(guardian_key)}")
    print(f"  valid:           {not_before.isoformat()} .. {not_after.isoformat()}")
    return 0


def _dept_verify(args: argparse.Namespace) -> int:
    verifier = CertificateVerifier(load_certificates(args.ca))
    path = Path(args.certificate)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _CommandError(f"{path}: cannot read: {exc.strerror}") from None
    now = dt.datetime.now(dt.UTC)
    try:
        robot = verifier.verify_robot(data, now)
    except CertificateError as exc:
        if exc.reason is not CertificateFailure.NOT_A_ROBOT_CERTIFICATE:
            raise CertificateError(exc.reason, f"{path}: {exc}") from None
    else:
        print(f"{path}: valid robot certificate")
        print(f"  identity number: {robot.identity_number}")
        print(f"  robot name:      {robot.robot_name}")
        print(f"  department:      {robot.department}")
        print(f"  key fingerprint: {fingerprint(robot.public_key)}")
        print(f"  valid until:     {robot.not_after.isoformat()}")
        return 0
    try:
        guardian = verifier.verify_guardian(data, now)
    except CertificateError as exc:
        raise CertificateError(exc.reason, f"{path}: {exc}") from None
    print(f"{path}: valid guardian certificate")
    print(f"  guardian id:     {guardian.guardian_id}")
    print(f"  name:            {guardian.guardian_name}")
    print(f"  role:            {guardian.role}")
    print(f"  department:      {guardian.department}")
    print(f"  key fingerprint: {fingerprint(guardian.public_key)}")
    print(f"  valid until:     {guardian.not_after.isoformat()}")
    return 0


# -- registration ------------------------------------------------------------------------------


def _add(group: Any, name: str, help_text: str, handler: Any, command_path: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=_run(handler), command_path=command_path)
    return parser


def _group(subparsers: Any, name: str, help_text: str) -> Any:
    return command_group(subparsers, name, help_text)


def register(subparsers: Any) -> None:
    """Add the ``id``, ``keys`` and ``dept`` command groups to the ``ftrobot`` CLI."""
    ids = _group(subparsers, "id", "robot-employee identity numbers (e.g. 440304-RB-2026-000123-8)")
    check = _add(
        ids,
        "check",
        "validate an identity number and show its parts (exit 2 if invalid)",
        _id_check,
        "ftrobot id check",
    )
    check.add_argument("number", metavar="NUMBER", help="identity number, e.g. 440304-RB-2026-000123-8")
    make = _add(
        ids,
        "make",
        "compose an identity number, computing its ISO 7064 MOD 11-2 check character",
        _id_make,
        "ftrobot id make",
    )
    make.add_argument("--division", required=True, help="6-digit GB/T 2260 division code (Futian: 440304)")
    make.add_argument("--year", required=True, type=_integer, help="year of registration, 2000..2099")
    make.add_argument("--serial", required=True, type=_integer, help="serial number, 1..999999")

    keys = _group(subparsers, "keys", "robot signing key files")
    init = _add(
        keys,
        "init",
        "create a robot Ed25519 key (mode 0600) and PATH.pub; print its fingerprint",
        _keys_init,
        "ftrobot keys init",
    )
    init.add_argument("--out", required=True, metavar="PATH", help="private key file to create")
    init.add_argument("--force", action="store_true", help="replace an existing key pair")

    dept = _group(subparsers, "dept", "department CA: create it, issue and verify identity certificates")
    dinit = _add(
        dept,
        "init",
        f"create a department CA: DIR/{CA_KEY_FILE} (mode 0600) and DIR/{CA_CERT_FILE}",
        _dept_init,
        "ftrobot dept init",
    )
    dinit.add_argument("--dir", required=True, help="directory for the CA key and certificate")
    dinit.add_argument("--name", required=True, help="department name (certificate CN and O)")
    dinit.add_argument(
        "--days", type=_days, default=DEFAULT_CA_DAYS, help=f"validity in days (default {DEFAULT_CA_DAYS})"
    )

    issue = _add(dept, "issue", "issue a robot identity certificate", _dept_issue, "ftrobot dept issue")
    issue.add_argument("--ca-dir", required=True, help="department CA directory (from 'dept init')")
    issue.add_argument("--robot-public-key", required=True, metavar="PUB", help="robot's Ed25519 public key PEM")
    issue.add_argument("--id", required=True, metavar="NUMBER", help="robot identity number")
    issue.add_argument("--name", required=True, help="robot name as filed with the department")
    issue.add_argument("--department", required=True, help="responsible department (certificate O)")
    issue.add_argument(
        "--days", type=_days, default=DEFAULT_CERT_DAYS, help=f"validity in days (default {DEFAULT_CERT_DAYS})"
    )
    issue.add_argument("--out", required=True, metavar="CERT", help="certificate PEM file to write")
    issue.add_argument("--force", action="store_true", help="replace an existing certificate file")

    guardian = _add(
        dept,
        "issue-guardian",
        "issue a guardian (监护人) certificate",
        _dept_issue_guardian,
        "ftrobot dept issue-guardian",
    )
    guardian.add_argument("--ca-dir", required=True, help="department CA directory (from 'dept init')")
    guardian.add_argument(
        "--guardian-public-key", required=True, metavar="PUB", help="guardian's Ed25519 public key PEM"
    )
    guardian.add_argument("--guardian-id", required=True, help="guardian id (letters, digits, - . : _)")
    guardian.add_argument("--name", required=True, help="guardian's name")
    guardian.add_argument("--role", required=True, help="guardian role (letters, digits, - . : _), e.g. operator")
    guardian.add_argument("--department", required=True, help="responsible department (certificate O)")
    guardian.add_argument(
        "--days", type=_days, default=DEFAULT_CERT_DAYS, help=f"validity in days (default {DEFAULT_CERT_DAYS})"
    )
    guardian.add_argument("--out", required=True, metavar="CERT", help="certificate PEM file to write")
    guardian.add_argument("--force", action="store_true", help="replace an existing certificate file")

    verify = _add(
        dept,
        "verify",
        "verify a robot or guardian certificate against trusted CA certificates",
        _dept_verify,
        "ftrobot dept verify",
    )
    verify.add_argument(
        "--ca",
        required=True,
        action="append",
        metavar="CA",
        help="trusted CA certificate file or directory (repeatable)",
    )
    verify.add_argument("certificate", metavar="CERT", help="certificate file (PEM or DER)")


__all__ = ["register"]
