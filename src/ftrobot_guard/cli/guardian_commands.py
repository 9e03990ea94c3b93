"""`ftrobot guardian …`: a guardian (监护人) commands one robot, and `ftrobot dept ack` acknowledges an incident.

Each action signs one ``ftrobot_msgs/GuardianCommand`` with the guardian's Ed25519 key (bound to the
robot's identity number, stamped now, with a fresh nonce), publishes it on the robot's
``guardian/command``, waits for the guard's ``guardian/result`` for that nonce and for the
``safety_state`` it leads to, and prints both. Exit status: 0 the robot did what was asked, 1 it did
not (refused, or not in the expected mode by the deadline), 2 a usage or communication error.

The robot is named by ``--robot NAMESPACE`` or ``--id IDENTITY_NUMBER`` (found by its heartbeat).
``--key`` and ``--guardian-id`` default to ``$FTROBOT_GUARDIAN_KEY`` and ``$FTROBOT_GUARDIAN_ID``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.cli.command_groups import CliError, command_group
from ftrobot_guard.guardians.guardian_commands import GuardianAction, command_fields, sign_command
from ftrobot_guard.safety.modes import LATCHED_MODES, SafetyMode
from ftrobot_guard.trust.keys import (
    KeyFileError,
    fingerprint,
    generate_private_key,
    load_private_key,
    write_private_key,
    write_public_key,
)

DEFAULT_TIMEOUT_S = 10.0
_RANK = {SafetyMode.SAFE_STOP: 1, SafetyMode.POWER_DOWN: 2, SafetyMode.ESTOP: 3}


def _stopped_at_least(mode: SafetyMode) -> Callable[[SafetyMode], bool]:
    return lambda now: _RANK.get(now, 0) >= _RANK[mode]


def _running(now: SafetyMode) -> bool:
    return now in (SafetyMode.NORMAL, SafetyMode.REDUCED)


# action: (command name, help, what the robot's mode must become)
_ACTIONS: dict[GuardianAction, tuple[str, str, Callable[[SafetyMode], bool]]] = {
    GuardianAction.ESTOP: ("estop", "emergency stop (obeyed at once, even if the signature fails)",
                           _stopped_at_least(SafetyMode.ESTOP)),
    GuardianAction.SAFE_STOP: ("safe-stop", "stop and hold the posture, power kept (latched)",
                               _stopped_at_least(SafetyMode.SAFE_STOP)),
    GuardianAction.POWER_DOWN: ("power-down", "lower to rest, damp, motor power off (latched)",
                                _stopped_at_least(SafetyMode.POWER_DOWN)),
    GuardianAction.PAUSE: ("pause", "hold the posture until RESUME (not latched)",
                           lambda now: now == SafetyMode.PAUSED or now in LATCHED_MODES),
    GuardianAction.REDUCE: ("reduce", "reduced speed and effort until RESUME",
                            lambda now: now == SafetyMode.REDUCED or now in LATCHED_MODES),
    GuardianAction.RESUME: ("resume", "leave PAUSED or a requested REDUCED", _running),
    GuardianAction.RESET: ("reset", "leave a latched stop once its cause is cleared",
                           lambda now: now not in LATCHED_MODES),
}


def _env_default(name: str) -> str | None:
    value = os.environ.get(name, "")
    return value or None


def _load_guardian_key(path_text: str | None) -> ed25519.Ed25519PrivateKey:
    if not path_text:
        raise CliError("no guardian key: give --key or set FTROBOT_GUARDIAN_KEY")
    try:
        key = load_private_key(Path(path_text), "ed25519")
    except KeyFileError as exc:
        raise CliError(f"--key {path_text}: {exc}") from None
    return cast(ed25519.Ed25519PrivateKey, key)


def signed_command(key: ed25519.Ed25519PrivateKey, guardian_id: str, robot_id: str, action: GuardianAction,
                   argument: str = "", reason: str = "") -> Any:
    """A signed ``ftrobot_msgs/GuardianCommand`` message, stamped now with a fresh nonce."""
    from ftrobot_msgs.msg import GuardianCommand

    from ftrobot_guard.trust.signed_fields import message_fields

    fields = command_fields(guardian_id, robot_id, action, argument, reason, dt.datetime.now(dt.UTC))
    msg = GuardianCommand(guardian_id=fields["guardian_id"], robot_id=fields["robot_id"], action=int(action),
                          argument=fields["argument"], reason=fields["reason"])
    msg.issued_at.sec, msg.issued_at.nanosec = fields["issued_at"]["sec"], fields["issued_at"]["nanosec"]
    msg.nonce = bytes(fields["nonce"])
    msg.signature = sign_command(key, message_fields(msg))
    return msg


def _describe_state(state: Any) -> str:
    return (f"{state.mode_name} (source {state.source or '-'}; cause: {state.cause or '-'}); guardian on duty "
            f"{state.guardian_on_duty or '-'}; open incidents {state.open_incidents}")


def _address(link: Any, args: argparse.Namespace) -> Any:
    from ftrobot_guard.ros.guardian_link import LinkError, RobotAddress

    if args.robot is None and args.id is None:
        raise CliError("name the robot: --robot NAMESPACE or --id IDENTITY_NUMBER (or both)")
    if args.robot is not None and args.id is not None:
        return RobotAddress("/" + args.robot.strip("/") if args.robot.strip("/") else "", args.id)
    try:
        return link.find_robot(args.timeout, namespace=args.robot, identity_number=args.id)
    except LinkError as exc:
        raise CliError(str(exc)) from None


def _command(action: GuardianAction) -> Callable[[argparse.Namespace], int]:
    _name, _help, expected = _ACTIONS.get(action, ("handover", "", _running))

    def run(args: argparse.Namespace) -> int:
        from ftrobot_guard.ros.guardian_link import GuardianLink, LinkError

        key = _load_guardian_key(args.key)
        if not args.guardian_id:
            raise CliError("no guardian id: give --guardian-id or set FTROBOT_GUARDIAN_ID")
        with GuardianLink() as link:
            robot = _address(link, args)
            argument = getattr(args, "outgoing", "") or ""
            msg = signed_command(key, args.guardian_id, robot.identity_number, action, argument, args.reason)
            try:
                result = link.send(robot.namespace, msg, args.timeout)
            except LinkError as exc:
                raise CliError(str(exc)) from None
            if result is None:
                print(f"{action.name} to {robot.identity_number} ({robot.namespace or '/'}): no result within "
                      f"{args.timeout:g} s")
                return 1
            if result.accepted:
                verdict = "accepted" if result.obeyed else f"authenticated, NOT DONE ({result.refusal})"
            else:
                verdict = f"obeyed but not authenticated ({result.refusal})" if result.obeyed \
                    else f"REFUSED ({result.refusal})"
            print(f"{action.name} to {robot.identity_number} ({robot.namespace or '/'}): {verdict}: {result.detail}")
            if not result.obeyed:
                return 1
            if action == GuardianAction.HANDOVER:
                state = link.safety_state(robot.namespace, args.timeout,
                                          until=lambda s: s.guardian_on_duty == args.guardian_id)
            else:
                state = link.safety_state(robot.namespace, args.timeout,
                                          until=lambda s: expected(SafetyMode(s.mode)))
            if state is None:
                latest = link.safety_state(robot.namespace, 1.0)
                print(f"  safety state: not as asked within {args.timeout:g} s; now "
                      f"{_describe_state(latest) if latest is not None else 'unknown'}")
                return 1
            print(f"  safety state: {_describe_state(state)}")
            return 0

    return run


def _status(args: argparse.Namespace) -> int:
    from ftrobot_guard.ros.guardian_link import GuardianLink

    with GuardianLink() as link:
        robot = _address(link, args)
        state = link.safety_state(robot.namespace, args.timeout)
        if state is None:
            print(f"{robot.identity_number} ({robot.namespace or '/'}): no safety_state within {args.timeout:g} s")
            return 1
        print(f"{robot.identity_number} ({robot.namespace or '/'}): {_describe_state(state)}")
        if state.active_anomalies:
            print(f"  active anomalies: {', '.join(state.active_anomalies)}")
        return 0


def acknowledge_incident(args: argparse.Namespace) -> int:
    """`ftrobot guardian ack` / `ftrobot dept ack INCIDENT_ID`: a signed ACKNOWLEDGE to the robot's incident service."""
    from ftrobot_guard.ros.guardian_link import GuardianLink, LinkError

    key = _load_guardian_key(args.key)
    if not args.guardian_id:
        raise CliError("no guardian id: give --guardian-id or set FTROBOT_GUARDIAN_ID")
    identity = args.incident_id.split("/", 1)[0]
    with GuardianLink("ftrobot_officer") as link:
        try:
            robot = link.find_robot(args.timeout, namespace=args.robot, identity_number=None if args.robot
                                    else identity)
        except LinkError as exc:
            raise CliError(str(exc)) from None
        msg = signed_command(key, args.guardian_id, robot.identity_number, GuardianAction.ACKNOWLEDGE,
                             args.incident_id, args.reason)
        try:
            accepted, message = link.acknowledge(robot.namespace, msg, args.timeout)
        except LinkError as exc:
            raise CliError(str(exc)) from None
    print(f"acknowledge {args.incident_id}: {'accepted' if accepted else 'REFUSED'}: {message}")
    return 0 if accepted else 1


def _revoke(args: argparse.Namespace) -> int:
    """`ftrobot dept revoke-guardian`: add an entry to the department-signed revocation list (sequence + 1)."""
    from ftrobot_guard.blackbox.durable_files import replace_atomically
    from ftrobot_guard.blackbox.errors import LogWriteError
    from ftrobot_guard.cli.identity_commands import load_department_ca
    from ftrobot_guard.guardians.revocation_list import (
        RevocationEntry,
        RevocationListError,
        issue_revocation_list,
        load_revocation_list,
    )
    from ftrobot_guard.trust.certificates import CertificateError, certificate_fingerprint, load_certificate

    if not re.fullmatch(r"[A-Za-z0-9.:_-]{1,64}", args.guardian_id):
        raise CliError(f"--guardian-id {args.guardian_id[:70]!r}: a guardian id has 1-64 letters, digits, - . : _")
    ca_cert, ca_key = load_department_ca(args.ca_dir)
    path = Path(args.list)
    entries: list[RevocationEntry] = []
    sequence = 0
    if path.exists():
        try:
            current = load_revocation_list(path.read_bytes(), [ca_cert])
        except (OSError, RevocationListError) as exc:
            raise CliError(f"--list {path}: {exc}") from None
        entries, sequence = list(current.entries), current.sequence
    fingerprint_text = ""
    if args.certificate:
        try:
            fingerprint_text = certificate_fingerprint(load_certificate(Path(args.certificate)))
        except (OSError, CertificateError) as exc:
            raise CliError(f"--certificate {args.certificate}: {exc}") from None
    now = dt.datetime.now(dt.UTC)
    try:
        entry = RevocationEntry(args.guardian_id, fingerprint_text, now, args.reason)
        data = issue_revocation_list(ca_cert, ca_key, [*entries, entry], sequence + 1, now)
        replace_atomically(path, data, 0o644, "writing the revocation list")
    except (RevocationListError, ValueError, LogWriteError) as exc:
        raise CliError(str(exc)) from None
    which = f"certificate {fingerprint_text[:16]}…" if fingerprint_text else "every certificate"
    print(f"revoked {args.guardian_id} ({which}): {path}, sequence {sequence + 1}, {len(entries) + 1} entr"
          f"{'y' if not entries else 'ies'}")
    print("  robots pick it up without a restart (parameter guardian_revocation_file); copy it to each robot")
    return 0


def _keys(args: argparse.Namespace) -> int:
    private_path = Path(args.out)
    public_path = private_path.with_name(private_path.name + ".pub")
    if not args.force:
        for path in (private_path, public_path):
            if path.exists():
                raise CliError(f"{path}: already exists (use --force to replace the key pair)")
    key = generate_private_key("ed25519")
    try:
        write_private_key(private_path, key, overwrite=args.force)
        write_public_key(public_path, key.public_key(), overwrite=args.force)
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    print(f"guardian private key: {private_path} (mode 0600)")
    print(f"guardian public key:  {public_path} (give it to the department: ftrobot dept issue-guardian)")
    print(f"fingerprint:          {fingerprint(key.public_key())}")
    return 0


def _robot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", metavar="NAMESPACE", help="the robot's ROS namespace, e.g. /futian/robot01")
    parser.add_argument("--id", metavar="NUMBER", help="the robot's identity number (with --robot: no look-up "
                        "by heartbeat)")


def add_signer_arguments(parser: argparse.ArgumentParser, robot: bool = True) -> None:
    """--key, --guardian-id, --reason, --timeout (and --robot/--id when ``robot``)."""
    if robot:
        _robot_arguments(parser)
    parser.add_argument("--key", default=_env_default("FTROBOT_GUARDIAN_KEY"),
                        help="guardian Ed25519 private key (default $FTROBOT_GUARDIAN_KEY)")
    parser.add_argument("--guardian-id", default=_env_default("FTROBOT_GUARDIAN_ID"),
                        help="guardian id of the certificate (default $FTROBOT_GUARDIAN_ID)")
    parser.add_argument("--reason", default="", help="free text, recorded in the robot's black box")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"deadline for each wait (default {DEFAULT_TIMEOUT_S:g} s)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = command_group(subparsers, "guardian", "guardian (监护人) commands to one robot, signed with the "
                          "guardian's key")
    keys = group.add_parser("keys", help="create a guardian Ed25519 key pair (PATH, PATH.pub)")
    keys.add_argument("--out", required=True, metavar="PATH", help="private key file to create (mode 0600)")
    keys.add_argument("--force", action="store_true", help="replace an existing key pair")
    keys.set_defaults(func=_keys)
    for action, (name, help_text, _expected) in _ACTIONS.items():
        parser = group.add_parser(name, help=help_text, description=f"{help_text}. {__doc__.splitlines()[0]}")
        add_signer_arguments(parser)
        parser.set_defaults(func=_command(action))
    handover = group.add_parser("handover", help="take duty from the guardian on duty (signed by the incoming one)")
    add_signer_arguments(handover)
    handover.add_argument("--from", dest="outgoing", required=True, metavar="GUARDIAN_ID",
                          help="the guardian on duty now")
    handover.set_defaults(func=_command(GuardianAction.HANDOVER))
    ack = group.add_parser("ack", help="acknowledge an incident (officer role)")
    ack.add_argument("incident_id", metavar="INCIDENT_ID")
    ack.add_argument("--robot", metavar="NAMESPACE", help="the robot's namespace (default: found by the identity "
                     "number the incident id starts with)")
    add_signer_arguments(ack, robot=False)
    ack.set_defaults(func=acknowledge_incident)
    dept = command_group(subparsers, "dept", "department tools: CA, certificates, fleet monitor, witnessed heads")
    dept_ack = dept.add_parser("ack", help="acknowledge a robot's incident report (signed by an officer's key)",
                               description="Signs an ACKNOWLEDGE for INCIDENT_ID with an officer's guardian key and "
                               "calls the robot's incidents/acknowledge service; the robot is found by the identity "
                               "number the incident id starts with.")
    dept_ack.add_argument("incident_id", metavar="INCIDENT_ID")
    dept_ack.add_argument("--robot", metavar="NAMESPACE", help="the robot's namespace (default: found by heartbeat)")
    add_signer_arguments(dept_ack, robot=False)
    dept_ack.set_defaults(func=acknowledge_incident)
    revoke = dept.add_parser("revoke-guardian", help="revoke a guardian in the department-signed revocation list")
    revoke.add_argument("--ca-dir", required=True, help="department CA directory (from 'dept init')")
    revoke.add_argument("--list", required=True, metavar="FILE", help="revocation list file (created if missing)")
    revoke.add_argument("--guardian-id", required=True, help="the guardian to revoke")
    revoke.add_argument("--certificate", metavar="CERT", help="revoke only this certificate (default: every one)")
    revoke.add_argument("--reason", required=True, help="why (recorded in the list)")
    revoke.set_defaults(func=_revoke)
    status = group.add_parser("status", help="the robot's safety state, guardian on duty and open incidents")
    _robot_arguments(status)
    status.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S")
    status.set_defaults(func=_status)
