"""Auditor commands: `ftrobot log verify|export|stat|keygen` and `ftrobot decommission`.

Exit codes: 0 clean / done, 1 problems found in the log (or records that failed to decrypt),
2 usage, key or I/O error (one line on stderr, never a traceback)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ftrobot_guard.cli.command_groups import CliError, command_group

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import x25519

    from ftrobot_guard.blackbox.export import MessageDecoder

EXIT_OK = 0
EXIT_PROBLEMS = 1


class ProgressBar:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._label = label
        self._enabled = self._stream.isatty()
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        fraction = min(1.0, done / total) if total else 1.0
        width = 30
        filled = int(fraction * width)
        self._stream.write(f"\r{self._label} [{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%}"
                           f" {done / 2**20:.1f}/{total / 2**20:.1f} MiB")
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    log = command_group(subparsers, "log", "black box: verify, export and inspect encrypted logs")
    verify = log.add_parser(
        "verify", help="check integrity, order and completeness of a log (no decryption key needed)",
        description="Checks every segment header, record, hash chain link and signed checkpoint, and, with"
        " --heads, the chain heads the department witnessed. Exit 0: clean; 1: problems found; 2: usage or"
        " I/O error.")
    verify.add_argument("directory", type=Path, metavar="DIR", help="log directory")
    verify.add_argument("--heads", type=Path, metavar="FILE", help="witnessed heads (from `ftrobot dept heads`)")
    trust = verify.add_mutually_exclusive_group()
    trust.add_argument("--ca", type=Path, metavar="CERT", help="department CA: check the certificate in each segment")
    trust.add_argument("--robot-cert", type=Path, metavar="CERT", help="the robot's identity certificate")
    trust.add_argument("--robot-pub", type=Path, metavar="PEM", help="the robot's Ed25519 public key")
    verify.add_argument("--json", action="store_true", help="print the findings as JSON instead of text")
    verify.set_defaults(func=_verify)

    export = log.add_parser(
        "export", help="decrypt a log with the auditor key to JSON Lines",
        description="Decrypts every record the key opens and writes one JSON object per entry. ROS messages"
        " are decoded when their type is installed, otherwise exported as base64 CDR with a note.")
    export.add_argument("directory", type=Path, metavar="DIR", help="log directory")
    export.add_argument("--key", type=Path, required=True, metavar="AUDITOR_KEY",
                        help="X25519 private key of the auditor/department (or the robot's own copy)")
    export.add_argument("--since", metavar="ISO", help="only entries at or after this time (UTC if no zone)")
    export.add_argument("--until", metavar="ISO", help="only entries at or before this time")
    export.add_argument("--topic", action="append", default=[], metavar="T", help="only this topic (repeatable)")
    export.add_argument("--out", type=Path, metavar="FILE", help="output file (default: standard output)")
    export.add_argument("--raw", action="store_true", help="do not decode messages (base64 CDR)")
    export.set_defaults(func=_export)

    stat = log.add_parser("stat", help="segments, records, time span, size, rate and retention of a log",
                          description="Summarises a log without the decryption key.")
    stat.add_argument("directory", type=Path, metavar="DIR", help="log directory")
    stat.add_argument("--budget", default="16GiB", help="disk budget to assess (default 16GiB)")
    stat.add_argument("--retention-days", type=float, default=183.0, help="retention period (default 183)")
    stat.add_argument("--json", action="store_true", help="print as JSON")
    stat.set_defaults(func=_stat)

    keygen = log.add_parser(
        "keygen", help="create the department's X25519 log key pair (private key mode 0600)",
        description="Creates DIR/NAME.key (X25519 private key, PKCS#8 PEM, mode 0600: it decrypts every black"
        " box wrapped for it; keep it with the department) and DIR/NAME.pub.pem (give it to each robot: recorder"
        " parameter auditor_public_key_files). Never replaces an existing key.")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory for the key pair")
    keygen.add_argument("--name", default="log_x25519", help="file name stem (default: log_x25519)")
    keygen.set_defaults(func=_keygen)

    decom = subparsers.add_parser(
        "decommission", help="archive a robot's log for the department, then crypto-shred the robot's keys",
        description="Exports the log (segments as they are, already encrypted for the department, plus a"
        " signed manifest) to an archive, checks the archive, then destroys the robot's copies of the data"
        " keys and the given robot key files, and proves the robot can no longer decrypt. Irreversible.")
    decom.add_argument("directory", type=Path, metavar="DIR", help="log directory")
    decom.add_argument("--robot-key", type=Path, action="append", required=True, metavar="PEM",
                       help="robot private key file to destroy (Ed25519 signing key required; X25519 key too)")
    decom.add_argument("--auditor-pub", type=Path, required=True, metavar="PEM",
                       help="department/auditor X25519 public key every segment must be wrapped for")
    decom.add_argument("--archive", type=Path, required=True, metavar="OUT", help="archive file to create (tar)")
    decom.add_argument("--dry-run", action="store_true", help="write and check the archive, shred nothing")
    decom.set_defaults(func=_decommission)


def _blackbox_call(action: Callable[[], int]) -> int:
    from ftrobot_guard.blackbox.errors import BlackBoxError

    try:
        return action()
    except BlackBoxError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}") from None


def _anchor(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ftrobot_guard.blackbox import trust_anchor

    if args.ca is not None:
        return trust_anchor.anchor_from_ca(args.ca)
    if args.robot_cert is not None:
        return trust_anchor.anchor_from_robot_certificate(args.robot_cert)
    if args.robot_pub is not None:
        return trust_anchor.anchor_from_public_key(args.robot_pub)
    return None


def _verify(args: argparse.Namespace) -> int:
    from ftrobot_guard.blackbox.verification import verify_log
    from ftrobot_guard.blackbox.witnessed_heads import load_witnessed_heads

    def run() -> int:
        if not args.directory.is_dir():
            raise CliError(f"{args.directory}: no such log directory")
        anchor = _anchor(args)
        heads = load_witnessed_heads(args.heads) if args.heads is not None else None
        bar = ProgressBar("verify")
        try:
            report = verify_log(args.directory, anchor=anchor, heads=heads, progress=bar)
        finally:
            bar.close()
        if args.json:
            print(json.dumps({
                "directory": str(report.directory), "robot_id": report.robot_id,
                "robot_key": report.robot_key_fingerprint, "trust": report.trust,
                "segments": len(report.segments), "heads_checked": report.heads_checked,
                "heads_confirmed": report.heads_confirmed, "clean": report.clean,
                "findings": [{"severity": f.severity.name, "diagnosis": f.diagnosis.value, "message": f.message,
                              "segment": f.segment, "segment_index": f.segment_index, "sequence": f.sequence,
                              "offset": f.offset} for f in report.findings],
            }, indent=1))
        else:
            print(report.render())
        return report.exit_code

    return _blackbox_call(run)


def _export(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import x25519

    from ftrobot_guard.blackbox.export import parse_time
    from ftrobot_guard.ros.message_types import CdrMessageDecoder
    from ftrobot_guard.trust.keys import KeyFileError, load_private_key

    def run() -> int:
        if not args.directory.is_dir():
            raise CliError(f"{args.directory}: no such log directory")
        try:
            since = parse_time(args.since, "--since") if args.since else None
            until = parse_time(args.until, "--until") if args.until else None
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if since is not None and until is not None and until < since:
            raise CliError("--until is before --since")
        try:
            key = load_private_key(args.key, "x25519")
        except KeyFileError as exc:
            raise CliError(f"--key {exc}") from None
        assert isinstance(key, x25519.X25519PrivateKey)
        decoder = None if args.raw else CdrMessageDecoder()
        with contextlib.ExitStack() as stack:
            out: TextIO = sys.stdout
            if args.out is not None:
                try:
                    out = stack.enter_context(open(args.out, "x", encoding="utf-8"))
                except FileExistsError:
                    raise CliError(f"--out {args.out}: already exists") from None
                except OSError as exc:
                    raise CliError(f"--out {args.out}: {exc.strerror}") from None
            return _write_export(args, key, decoder, since, until, out)

    return _blackbox_call(run)


def _write_export(
    args: argparse.Namespace,
    key: x25519.X25519PrivateKey,
    decoder: MessageDecoder | None,
    since: int | None,
    until: int | None,
    out: TextIO,
) -> int:
    from ftrobot_guard.blackbox.export import ExportOutcome, entry_to_json, iter_entries, make_filter

    outcome = ExportOutcome()
    bar = ProgressBar("export")
    try:
        for item in iter_entries(args.directory, key, make_filter(since, until, args.topic), outcome, bar):
            out.write(json.dumps(entry_to_json(item, decoder), ensure_ascii=False) + "\n")
    except BrokenPipeError:  # the reader (e.g. `head`) stopped reading: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        bar.close()
    for problem in outcome.problems:
        print(f"ftrobot: warning: {problem}", file=sys.stderr)
    print(f"exported {outcome.entries} entries from {outcome.segments_opened}/{outcome.segments_total} segments",
          file=sys.stderr)
    return EXIT_PROBLEMS if outcome.problems else EXIT_OK


def _stat(args: argparse.Namespace) -> int:
    from ftrobot_guard.blackbox.retention import RetentionPolicy, parse_size
    from ftrobot_guard.blackbox.statistics import log_statistics

    def run() -> int:
        if not args.directory.is_dir():
            raise CliError(f"{args.directory}: no such log directory")
        try:
            policy = RetentionPolicy(retention_days=args.retention_days, budget_bytes=parse_size(args.budget))
        except ValueError as exc:
            raise CliError(f"--budget/--retention-days: {exc}") from None
        bar = ProgressBar("stat")
        try:
            stats = log_statistics(args.directory, bar)
        finally:
            bar.close()
        now = time.time_ns()
        print(json.dumps(stats.as_dict(policy, now), indent=1) if args.json else stats.render(policy, now))
        return EXIT_OK

    return _blackbox_call(run)


def _keygen(args: argparse.Namespace) -> int:
    from ftrobot_guard.trust.keys import (
        KeyFileError,
        fingerprint,
        generate_private_key,
        write_private_key,
        write_public_key,
    )

    name: str = args.name
    if not name or "/" in name or name.startswith(".") or not name.isprintable():
        raise CliError(f"--name {name!r}: expected a plain file name stem like log_x25519")
    directory: Path = args.out
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub.pem"
    if directory.exists() and not directory.is_dir():
        raise CliError(f"--out {directory}: not a directory")
    for path in (private_path, public_path):
        if path.exists():
            raise CliError(f"{path}: already exists (refusing to replace a log key: what was wrapped for it"
                           " could no longer be read)")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = generate_private_key("x25519")
        write_private_key(private_path, key)
        write_public_key(public_path, key.public_key())
    except KeyFileError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"--out {directory}: {exc.strerror or exc}") from None
    print(f"private key: {private_path} (mode 0600; decrypts every black box wrapped for it: keep it with the"
          " department)")
    print(f"public key:  {public_path} (for each robot's recorder: auditor_public_key_files)")
    print(f"fingerprint: {fingerprint(key.public_key())}")
    return EXIT_OK


def _decommission(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import x25519

    from ftrobot_guard.blackbox.decommission import decommission
    from ftrobot_guard.trust.keys import KeyFileError, load_public_key

    def run() -> int:
        if not args.directory.is_dir():
            raise CliError(f"{args.directory}: no such log directory")
        try:
            auditor = load_public_key(args.auditor_pub, "x25519")
        except KeyFileError as exc:
            raise CliError(f"--auditor-pub {exc}") from None
        assert isinstance(auditor, x25519.X25519PublicKey)
        report = decommission(args.directory, list(args.robot_key), auditor, args.archive, dry_run=args.dry_run)
        print(report.render())
        if args.dry_run:
            return EXIT_OK
        return EXIT_PROBLEMS if report.robot_can_decrypt else EXIT_OK

    return _blackbox_call(run)
