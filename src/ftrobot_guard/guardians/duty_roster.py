"""Who is on duty: the guardian responsible for the robot now (clauses 2.7, 6.3).

Exactly one guardian is on duty at a time; heartbeats and black-box records name them. Duty passes by an
authenticated HANDOVER command from the incoming guardian whose argument names the guardian on duty now:
:meth:`DutyRoster.handover` accepts it only when that claim matches (a stale or mistaken handover is
refused with :class:`HandoverRefused`, so duty is never taken from someone who no longer holds it).

The roster persists in a small JSON file (``on_duty``, ``since``, ``previous``), replaced atomically on
each handover, so the guardian on duty survives a restart; the file, when present and readable, wins over
the configured ``initial_guardian``. ``path=None`` keeps the roster in memory only (tests).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

from ftrobot_guard.blackbox.durable_files import replace_atomically
from ftrobot_guard.blackbox.errors import LogWriteError

FILE_MODE = 0o644
_GUARDIAN_ID = re.compile(r"[A-Za-z0-9.:_-]{1,64}")  # what issue_guardian_certificate accepts


class HandoverRefused(Exception):
    """A handover was not accepted; str() says why (one line)."""


class DutyRosterError(Exception):
    """The roster file exists but cannot be read or is ill-formed."""


def _check_id(what: str, value: object) -> str:
    if not isinstance(value, str) or not _GUARDIAN_ID.fullmatch(value):
        raise ValueError(f"{what} {str(value)[:70]!r} is not a guardian id (1-64 letters, digits, - . : _)")
    return value


class DutyRoster:
    """The guardian on duty, persisted in ``path`` (None: in memory only)."""

    def __init__(self, path: str | os.PathLike[str] | None, initial_guardian: str) -> None:
        self._path = Path(path) if path is not None else None
        self._on_duty = _check_id("initial guardian", initial_guardian)
        self._since: dt.datetime | None = None
        self._previous = ""
        if self._path is not None:
            self._load(self._path)

    @property
    def on_duty(self) -> str:
        return self._on_duty

    @property
    def since(self) -> dt.datetime | None:
        """When the guardian on duty took over (None: the initial guardian, never handed over)."""
        return self._since

    @property
    def previous(self) -> str:
        """The guardian who handed over last ("" when none has)."""
        return self._previous

    def handover(self, incoming_guardian_id: str, outgoing_claimed: str, at: dt.datetime) -> str:
        """Pass duty to ``incoming_guardian_id`` when ``outgoing_claimed`` is on duty now; returns the new id.

        Persisted before returning; :class:`HandoverRefused` (duty unchanged) when the claim is wrong, the
        ids are ill-formed or the roster cannot be saved.
        """
        try:
            incoming = _check_id("incoming guardian", incoming_guardian_id)
        except ValueError as exc:
            raise HandoverRefused(str(exc)) from None
        if not isinstance(at, dt.datetime) or at.tzinfo is None:
            raise ValueError("at must be a timezone-aware datetime")
        if outgoing_claimed != self._on_duty:
            raise HandoverRefused(
                f"{incoming} claims to take over from {str(outgoing_claimed)[:70]!r}, but {self._on_duty} is on duty"
            )
        if incoming == self._on_duty:
            raise HandoverRefused(f"{incoming} is on duty already")
        if self._path is not None:
            record = {"on_duty": incoming, "since": at.astimezone(dt.UTC).isoformat(), "previous": self._on_duty}
            data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
            try:
                replace_atomically(self._path, data, FILE_MODE, "saving the duty roster")
            except LogWriteError as exc:
                raise HandoverRefused(f"duty roster not saved, duty unchanged: {exc}") from None
        self._previous, self._on_duty, self._since = self._on_duty, incoming, at
        return incoming

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):  # never handed over (saving will tell)
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise DutyRosterError(f"{path}: cannot read the duty roster ({' '.join(str(exc).split())})") from None
        try:
            record = json.loads(text)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            on_duty = _check_id("on_duty", record.get("on_duty"))
            since = dt.datetime.fromisoformat(str(record.get("since")))
            if since.tzinfo is None:
                raise ValueError("since has no time zone")
            previous = record.get("previous", "")
            if not isinstance(previous, str):
                raise ValueError("previous is not a string")
        except ValueError as exc:
            raise DutyRosterError(f"{path}: ill-formed duty roster ({exc})") from None
        self._on_duty, self._since, self._previous = on_duty, since, previous
