"""Shared argparse plumbing for the `ftrobot` subcommand modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable


class CliError(Exception):
    """A user-facing error: printed as one line `ftrobot: error: ...`, exit code 2."""


def command_group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The subcommands of group ``name`` (e.g. ``dept``), created on first use and shared after.

    Several modules add commands to one group (``dept init`` and ``dept monitor``), so the group's
    own sub-parsers are kept on its parser.
    """
    existing = subparsers.choices.get(name)
    if existing is not None:
        return existing._ftrobot_subcommands  # type: ignore[attr-defined, no-any-return]
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    group = parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
    parser._ftrobot_subcommands = group  # type: ignore[attr-defined]
    return group


def days_argument(max_days: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number of days in 1..``max_days``, with a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
        if not 1 <= value <= max_days:
            raise argparse.ArgumentTypeError(f"{value} days is outside 1..{max_days}")
        return value

    return parse
