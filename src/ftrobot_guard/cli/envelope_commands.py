"""``ftrobot envelope check|sign|show``: the operating envelope and the department's signature on it.

Every handler returns an exit code: 0 on success, 2 with a one-line error on stderr otherwise.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.cli.command_groups import command_group, days_argument
from ftrobot_guard.safety.envelope import Envelope, EnvelopeError, load_envelope, read_envelope_bytes
from ftrobot_guard.safety.envelope_checks import describe_service_hours
from ftrobot_guard.safety.envelope_signature import (
    ANY_ROBOT,
    DepartmentTrust,
    EnvelopeSignature,
    EnvelopeSignatureError,
    EnvelopeSignatureFailure,
    load_signed_envelope,
    read_signature_file,
    sign_envelope,
    signature_path_for,
    write_signature_file,
)
from ftrobot_guard.trust.certificates import CertificateError, load_certificates
from ftrobot_guard.trust.identity import IdentityNumberError
from ftrobot_guard.trust.keys import KeyFileError, fingerprint, load_private_key, load_public_key

MAX_DAYS = 3650
BACKDATE = dt.timedelta(minutes=5)  # tolerate robots whose clocks run slightly behind


class _CommandError(Exception):
    """A one-line, user-facing failure."""


def _run(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except (_CommandError, EnvelopeError, EnvelopeSignatureError, CertificateError, KeyFileError,
                IdentityNumberError, ValueError) as exc:
            message = " ".join(str(exc).split())
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            message = f"{where}{exc.strerror or exc}"
        print(f"{args.command_path}: error: {message}", file=sys.stderr)
        return 2

    wrapped.__doc__ = handler.__doc__
    return wrapped


_days = days_argument(MAX_DAYS)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _trust(args: argparse.Namespace) -> DepartmentTrust | None:
    if args.ca and args.key:
        raise _CommandError("give --ca or --key, not both")
    if args.ca:
        return load_certificates(args.ca)
    if args.key:
        return cast(ed25519.Ed25519PublicKey, load_public_key(args.key, "ed25519"))
    return None


def _signature_line(signature: EnvelopeSignature) -> str:
    robots = "any robot" if signature.robots == (ANY_ROBOT,) else ", ".join(signature.robots)
    return (f"for {signature.robot_model}, {robots}; valid {signature.issued_at.isoformat()} .. "
            f"{signature.expires_at.isoformat()}; signer {signature.signer[:16]}")


def _against_model(envelope: Envelope, path: str) -> None:
    from ftrobot_guard.safety.g1_envelope import model_mismatches  # loads MuJoCo: only when asked
    from ftrobot_guard.sim.g1_model import ModelLoadError, load_g1

    try:
        problems = model_mismatches(envelope, load_g1())
    except ModelLoadError as exc:
        raise _CommandError(f"--against-model: {exc}") from None
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _CommandError(f"{path}: disagrees with the model: {problems[0]}{more}")


def _check(args: argparse.Namespace) -> int:
    trust = _trust(args)
    if trust is None:
        if args.sig or args.robot:
            raise _CommandError("--sig and --robot need --ca or --key to verify the signature against")
        envelope = load_envelope(args.file)
        if args.against_model:
            _against_model(envelope, args.file)
        print(f"{args.file}: valid envelope for {envelope.robot_model} (signature NOT checked: give --ca)")
        return 0
    signed = load_signed_envelope(args.file, trust, _now(), robot_id=args.robot, signature_path=args.sig)
    if args.against_model:
        _against_model(signed.envelope, args.file)
    print(f"{args.file}: valid envelope, signed by {signed.signer_name}")
    print(f"  {_signature_line(signed.signature)}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else signature_path_for(args.file)
    if out.exists() and not args.force:
        raise _CommandError(f"{out}: already exists (use --force to replace it)")
    key = load_private_key(args.key, "ed25519")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    now = _now()
    issued, expires = now - BACKDATE, now + dt.timedelta(days=args.valid_days)
    if args.ca:
        ca = _department_ca(args.ca, key)
        issued = max(issued, ca.not_valid_before_utc)
        if expires > ca.not_valid_after_utc:
            raise _CommandError(f"--valid-days {args.valid_days} reaches {expires.date().isoformat()}, beyond the "
                                f"CA's expiry {ca.not_valid_after_utc.date().isoformat()}")
    data = read_envelope_bytes(args.file)
    try:
        signature = sign_envelope(data, key, issued, expires, robots=args.robot or [ANY_ROBOT])
    except EnvelopeError as exc:
        raise _CommandError(f"{args.file}: not signed, the envelope is invalid: {exc}") from None
    write_signature_file(out, signature, overwrite=args.force)
    print(f"signature {out}")
    print(f"  envelope:    {args.file} (sha256 {signature.envelope_sha256[:16]}...)")
    print(f"  {_signature_line(signature)}")
    print(f"  signer key:  {fingerprint(key.public_key())}")
    return 0


def _department_ca(path: str, key: ed25519.Ed25519PrivateKey) -> x509.Certificate:
    certificates = load_certificates(path)
    for certificate in certificates:
        if certificate.public_key() == key.public_key():
            return certificate
    raise _CommandError(f"--key does not belong to the CA certificate {path}")


def _show(args: argparse.Namespace) -> int:
    envelope = load_envelope(args.file)
    joints = envelope.joints
    print(f"{args.file}: envelope for {envelope.robot_model} ({len(joints)} joints; SI units, radians)")
    print(f"  {'joint':<28} {'position hard':<17} {'position soft':<17} {'velocity':>12} {'accel':>6} "
          f"{'effort':>13} {'REDUCED v/effort':>16}")
    print(f"  {'':<28} {'rad':<17} {'rad':<17} {'hard/soft rad/s':>12} {'rad/s2':>6} {'hard/soft N·m':>13} "
          f"{'rad/s, N·m':>16}")
    reduced = envelope.reduced
    for i, name in enumerate(joints.names):
        row = (f"  {name:<28} [{joints.hard_lower[i]:+.4f},{joints.hard_upper[i]:+.4f}] "
               f"[{joints.soft_lower[i]:+.4f},{joints.soft_upper[i]:+.4f}] "
               f"{joints.hard_velocity[i]:>6g}/{joints.soft_velocity[i]:<5g} {joints.acceleration[i]:>6g} "
               f"{joints.hard_effort[i]:>6g}/{joints.soft_effort[i]:<6g} "
               f"{reduced.joint_velocity[i]:>7g}/{reduced.joint_effort[i]:g}")
        print(row)
    base = envelope.base
    print(f"  base: planar speed {base.linear_speed.soft:g} m/s (hard {base.linear_speed.hard:g}), "
          f"yaw rate {base.angular_speed.soft:g} rad/s (hard {base.angular_speed.hard:g})")
    fence = envelope.geofence
    keep_in = ", ".join(f"{p.name} ({len(p.vertices)} vertices)" for p in fence.keep_in)
    keep_out = ", ".join(f"{p.name} ({len(p.vertices)} vertices)" for p in fence.keep_out) or "none"
    print(f"  geofence ({fence.frame}, margin {fence.margin:g} m): keep in {keep_in}; keep out {keep_out}")
    posture = envelope.posture
    print(f"  posture: tilt {posture.tilt.warn:g}/{posture.tilt.limit:g} rad, angular rate "
          f"{posture.angular_rate.warn:g}/{posture.angular_rate.limit:g} rad/s, joint speed "
          f"{posture.joint_speed.warn:g}/{posture.joint_speed.limit:g} rad/s (warn/limit)")
    print(f"  actuator temperature: warn {envelope.actuator_temperature.warn:g} degC, "
          f"limit {envelope.actuator_temperature.limit:g} degC")
    print(f"  battery: warn {envelope.battery.warn:g}, minimum {envelope.battery.minimum:g} (fraction)")
    print("  input max age: " + ", ".join(f"{k} {v:g} s" for k, v in envelope.input_max_age.items()))
    hours = envelope.service_hours
    closed = ", ".join(sorted(d.isoformat() for d in hours.closed_dates)) or "none"
    print(f"  service hours: {describe_service_hours(hours)}; closed dates: {closed}")
    print(f"  tasks allowed: {', '.join(sorted(envelope.tasks.allowed)) or 'none'}")
    print(f"  tasks prohibited: {', '.join(sorted(envelope.tasks.prohibited))}")
    print(f"  REDUCED: speed scale {reduced.speed_scale:g}, hand speed {reduced.hand_speed:g} m/s "
          f"({', '.join(chain.name for chain in reduced.hand_chains)})")
    policy = envelope.responses
    severities = ", ".join(f"{s.name.lower()} -> {r.value}" for s, r in policy.severity_responses.items())
    kinds = ", ".join(f"{k} -> {r.value}" for k, r in sorted(policy.kind_responses.items())) or "none"
    print(f"  supervisor: {severities}; kinds: {kinds}; SAFE_STOP escalates after {policy.safe_stop_escalation:g} s; "
          f"ESTOP category {policy.estop_category}; RESET max age {policy.reset_max_age:g} s")
    sig_path = Path(args.sig) if args.sig else signature_path_for(args.file)
    try:
        signature = read_signature_file(sig_path)
    except EnvelopeSignatureError as exc:
        if exc.reason is EnvelopeSignatureFailure.UNSIGNED:
            print(f"  signature: none ({sig_path} does not exist): a robot refuses this envelope")
            return 0
        raise
    print(f"  signature: {sig_path} (NOT verified; use 'ftrobot envelope check --ca'): {_signature_line(signature)}")
    return 0


def _add(group: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int],
         command_path: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = group.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=_run(handler), command_path=command_path)
    return parser


def register(subparsers: Any) -> None:
    """Add the ``envelope`` command group to the ``ftrobot`` CLI."""
    group = command_group(subparsers, "envelope", "the operating envelope (config/envelope/*.yaml) and its signature")
    check = _add(group, "check", "validate an envelope; with --ca (or --key) also its department signature",
                 _check, "ftrobot envelope check")
    check.add_argument("file", metavar="FILE", help="envelope YAML file")
    check.add_argument("--sig", metavar="SIG", help="detached signature (default FILE.sig)")
    check.add_argument("--ca", action="append", metavar="CA",
                       help="trusted department CA certificate file or directory (repeatable)")
    check.add_argument("--key", metavar="PUB", help="trusted department Ed25519 public key (instead of --ca)")
    check.add_argument("--robot", metavar="ID", help="this robot's identity number: the signature must cover it")
    check.add_argument("--against-model", action="store_true",
                       help="also compare the hard limits and lever arms with the MuJoCo model")

    sign = _add(group, "sign", "sign an envelope with the department key (writes FILE.sig)", _sign,
                "ftrobot envelope sign")
    sign.add_argument("file", metavar="FILE", help="envelope YAML file (must be valid)")
    sign.add_argument("--key", required=True, metavar="DEPT_KEY", help="department CA private key (mode 0600)")
    sign.add_argument("--valid-days", required=True, type=_days, metavar="N", help=f"validity, 1..{MAX_DAYS} days")
    sign.add_argument("--robot", action="append", metavar="ID",
                      help="bind to this robot identity number (repeatable; default: any robot of the model)")
    sign.add_argument("--ca", metavar="CA", help="the department CA certificate: checks the key and the expiry")
    sign.add_argument("--out", metavar="SIG", help="signature file to write (default FILE.sig)")
    sign.add_argument("--force", action="store_true", help="replace an existing signature file")

    show = _add(group, "show", "print an envelope's limits (and its signature's claims, unverified)", _show,
                "ftrobot envelope show")
    show.add_argument("file", metavar="FILE", help="envelope YAML file")
    show.add_argument("--sig", metavar="SIG", help="detached signature (default FILE.sig)")


__all__ = ["register"]
