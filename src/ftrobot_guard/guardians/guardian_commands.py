"""The guardian command: its actions, its signed fields, and which actions are stops.

A guardian (监护人) commands a robot with an ``ftrobot_msgs/GuardianCommand``: guardian id, the robot's
identity number, an action (:class:`GuardianAction`, the message's ``ACTION_*`` constants), an argument
(incident id for ACKNOWLEDGE, the outgoing guardian for HANDOVER), a free-text reason, the UTC issue time
and a 16-byte random nonce, signed with the guardian's Ed25519 key over
:func:`~ftrobot_guard.trust.signed_fields.canonical_bytes` of those fields under
:data:`GUARDIAN_COMMAND_DOMAIN`.

The field mapping is exactly what :func:`~ftrobot_guard.trust.signed_fields.message_fields` makes of the
message (``issued_at`` as ``{"sec", "nanosec"}``, ``nonce`` as bytes), so a command built here with
:func:`command_fields` and :func:`sign_command` verifies on the robot and vice versa.

The :data:`STOP_ACTIONS` (ESTOP, SAFE_STOP, POWER_DOWN, PAUSE) are obeyed before, and whatever the outcome
of, authentication: stopping a robot wrongly is safe, not stopping it is not. :func:`stop_action_of` reads
the action of a raw, unverified message for that purpose and never raises.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from ftrobot_guard.trust.signed_fields import sign_fields

GUARDIAN_COMMAND_DOMAIN = "ftrobot/guardian_command/v1"
NONCE_LENGTH = 16
COMMAND_FIELD_NAMES = frozenset({"guardian_id", "robot_id", "action", "argument", "reason", "issued_at", "nonce"})


class GuardianAction(enum.IntEnum):
    """A guardian command's action; the values are ``ftrobot_msgs/GuardianCommand.ACTION_*``."""

    ESTOP = 1
    SAFE_STOP = 2
    POWER_DOWN = 3
    REDUCE = 4
    PAUSE = 5
    RESUME = 6
    RESET = 7
    ACKNOWLEDGE = 8
    HANDOVER = 9


STOP_ACTIONS: frozenset[GuardianAction] = frozenset(
    {GuardianAction.ESTOP, GuardianAction.SAFE_STOP, GuardianAction.POWER_DOWN, GuardianAction.PAUSE}
)


def issued_at_fields(issued_at: dt.datetime) -> dict[str, int]:
    """``builtin_interfaces/Time`` fields (``sec``, ``nanosec``) of a timezone-aware datetime."""
    if not isinstance(issued_at, dt.datetime) or issued_at.tzinfo is None:
        raise ValueError("issued_at must be a timezone-aware datetime")
    delta = issued_at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    total_us = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    if total_us < 0:
        raise ValueError("issued_at must not be before 1970")
    sec, micro = divmod(total_us, 1_000_000)
    return {"sec": sec, "nanosec": micro * 1000}


def command_fields(
    guardian_id: str,
    robot_id: str,
    action: GuardianAction | int,
    argument: str,
    reason: str,
    issued_at: dt.datetime,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """The signed fields of a guardian command (no signature); a random nonce when ``nonce`` is None."""
    for what, value in (("guardian_id", guardian_id), ("robot_id", robot_id), ("argument", argument),
                        ("reason", reason)):
        if not isinstance(value, str):
            raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    chosen = GuardianAction(action)
    raw_nonce = os.urandom(NONCE_LENGTH) if nonce is None else bytes(nonce)
    if len(raw_nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} bytes, got {len(raw_nonce)}")
    return {
        "guardian_id": guardian_id,
        "robot_id": robot_id,
        "action": int(chosen),
        "argument": argument,
        "reason": reason,
        "issued_at": issued_at_fields(issued_at),
        "nonce": raw_nonce,
    }


def sign_command(private_key: ed25519.Ed25519PrivateKey, fields: dict[str, Any]) -> bytes:
    """The guardian's Ed25519 signature (64 bytes) over ``fields`` under :data:`GUARDIAN_COMMAND_DOMAIN`."""
    return sign_fields(private_key, GUARDIAN_COMMAND_DOMAIN, fields)


def action_of(raw_action: object) -> GuardianAction | None:
    """The :class:`GuardianAction` of a raw ``action`` value (an int 1..9, not a bool), else None."""
    if isinstance(raw_action, bool) or not isinstance(raw_action, int):
        return None
    try:
        return GuardianAction(int(raw_action))
    except (ValueError, TypeError, OverflowError):
        return None


def stop_action_of(raw_action: object) -> GuardianAction | None:
    """The stop a raw, unverified command asks for (one of :data:`STOP_ACTIONS`), else None. Never raises."""
    try:
        action = action_of(raw_action)
    except Exception:
        return None
    return action if action in STOP_ACTIONS else None
