"""`ftrobot dept monitor` (live fleet table) and `ftrobot dept heads` (export witnessed black-box heads)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from ftrobot_guard.cli.command_groups import CliError, command_group
from ftrobot_guard.ros.package_share import package_share


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dept = command_group(subparsers, "dept", "department tools: CA, certificates, fleet monitor, witnessed heads")
    monitor = dept.add_parser(
        "monitor",
        help="watch every robot's heartbeat in a live table, with alerts",
        description="Runs the department monitor node in this process and shows a live table of robots "
        "(identity, name, mode, last seen, signature state, alerts). Alerts are also published on "
        "department/alerts. Stop with Ctrl-C.",
    )
    monitor.add_argument(
        "--params",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="ROS 2 params file for the department_monitor node (default: installed department.yaml)",
    )
    monitor.add_argument(
        "--ca",
        type=Path,
        action="append",
        default=[],
        metavar="CERT",
        help="trusted department CA certificate (repeatable); overrides trusted_ca_files",
    )
    monitor.add_argument(
        "--duration", type=float, default=0.0, metavar="S", help="stop after S seconds (0: run until Ctrl-C)"
    )
    monitor.add_argument("--interval", type=float, default=1.0, metavar="S", help="table refresh interval")
    monitor.add_argument(
        "--until-verified",
        type=int,
        default=0,
        metavar="N",
        help="stop with exit 0 once N robots are shown verified; with --duration, exit 1 if they are not by then",
    )
    monitor.set_defaults(func=_monitor)

    heads = dept.add_parser(
        "heads",
        help="export the black-box heads the department witnessed, for `ftrobot log verify --heads`",
        description="Reads the monitor's witnessed_heads_file and writes one robot's heads file.",
    )
    heads.add_argument("--store", type=Path, required=True, help="the monitor's witnessed_heads_file")
    heads.add_argument("--identity", required=True, help="the robot's identity number")
    heads.add_argument("--out", type=Path, required=True, help="heads file to write")
    heads.set_defaults(func=_heads)


def _monitor(args: argparse.Namespace) -> int:
    from ftrobot_guard.department.fleet_monitor import SignatureState
    from ftrobot_guard.department.fleet_table import render_alert, render_table
    from ftrobot_guard.nodes.department_monitor_node import DepartmentMonitorNode
    from ftrobot_guard.ros.stack_runner import StackError, StackRunner

    if args.interval <= 0 or not args.interval < 3600:
        raise CliError(f"--interval {args.interval}: expected a positive number of seconds")
    if args.duration < 0:
        raise CliError(f"--duration {args.duration}: expected zero or a positive number of seconds")
    if args.until_verified < 0:
        raise CliError(f"--until-verified {args.until_verified}: expected zero or a positive number of robots")
    params = list(args.params) or [package_share() / "config" / "department.yaml"]
    for path in params:
        if not path.is_file():
            raise CliError(f"--params {path}: no such file")
    overrides: dict[str, object] = {}
    if args.ca:
        for cert in args.ca:
            if not cert.is_file():
                raise CliError(f"--ca {cert}: no such file")
        overrides["trusted_ca_files"] = [str(c.resolve()) for c in args.ca]
    runner = StackRunner("department", params, per_node_overrides={"department_monitor": overrides})
    try:
        runner.start()
    except StackError as exc:
        raise CliError(str(exc)) from None
    node = runner.nodes[0]
    assert isinstance(node, DepartmentMonitorNode)
    alerts: list[str] = []
    lock = threading.Lock()

    def _on_alert(alert: object) -> None:
        with lock:
            alerts.append(render_alert(alert))  # type: ignore[arg-type]

    node.add_alert_listener(_on_alert)
    spinner = threading.Thread(target=runner.spin, daemon=True)
    spinner.start()
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    live = sys.stdout.isatty()
    end = time.monotonic() + args.duration if args.duration else float("inf")
    last_table = ""
    verified = 0
    try:
        while not stop.is_set() and time.monotonic() < end:
            rows = node.rows()
            verified = sum(1 for row in rows if row.signature_state is SignatureState.VERIFIED)
            table = render_table(rows)
            with lock:
                new_alerts, alerts[:] = list(alerts), []
            if live:
                sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S ") + "ftrobot department monitor\n\n")
                sys.stdout.write(table + "\n\n" + "\n".join(new_alerts) + "\n")
            else:
                for line in new_alerts:
                    print(line)
                if table != last_table:
                    print(table + "\n")
            last_table = table
            sys.stdout.flush()
            if args.until_verified and verified >= args.until_verified:
                return 0
            stop.wait(args.interval)
    finally:
        runner.request_stop()
        spinner.join(timeout=5.0)
        runner.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.until_verified and not stop.is_set():
        print(
            f"ftrobot dept monitor: {verified} of {args.until_verified} robots verified within {args.duration:g} s",
            file=sys.stderr,
        )
        return 1
    return 0


def _heads(args: argparse.Namespace) -> int:
    from ftrobot_guard.blackbox.witnessed_heads import WitnessedHeadError, export_heads
    from ftrobot_guard.trust.identity import IdentityNumberError, parse_identity_number

    try:
        parse_identity_number(args.identity)
    except IdentityNumberError as exc:
        raise CliError(f"--identity: {exc}") from None
    try:
        text = export_heads(args.store, args.identity)
        args.out.write_text(text, encoding="utf-8")
    except WitnessedHeadError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"--out {args.out}: {exc.strerror}") from None
    print(f"witnessed heads of {args.identity} written to {args.out}")
    return 0
