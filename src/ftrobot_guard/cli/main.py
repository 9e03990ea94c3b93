"""`ftrobot`: one entry point for operators, guardians, the department and auditors."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ftrobot_guard import __version__
from ftrobot_guard.cli import (
    department_commands,
    envelope_commands,
    guardian_commands,
    identity_commands,
    log_commands,
    run_commands,
)
from ftrobot_guard.cli.command_groups import CliError

_COMMAND_MODULES = (identity_commands, department_commands, envelope_commands, guardian_commands, log_commands,
                    run_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftrobot",
        description="ftrobot_guard: identity, heartbeat, department monitor, black box and the guard stack "
        "of a humanoid robot employee.",
    )
    parser.add_argument("--version", action="version", version=f"ftrobot_guard {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        print(f"ftrobot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
