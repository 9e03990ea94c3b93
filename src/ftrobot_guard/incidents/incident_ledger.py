"""The robot's incident ledger: which safety transitions open an incident, kept on disk until acknowledged.

:meth:`IncidentLedger.on_transition` is told every safety-mode transition. A *stop episode* is the
time the robot spends in the stop modes SAFE_STOP, POWER_DOWN and ESTOP, from its entry out of any
other mode (BOOT, NORMAL, REDUCED, PAUSED) to its leaving them. A transition *qualifies* when it is

* an automatic entry into SAFE_STOP or POWER_DOWN (source not ``"guardian:<id>"``), or
* any entry into ESTOP (e-stop device, guardian, supervisor).

One incident per stop episode: the first qualifying transition of an episode opens an incident; a
further qualifying transition within the same episode (an escalation SAFE_STOP -> POWER_DOWN, an
e-stop while stopped) appends to the ``measures_taken`` of that episode's incident (raising its
severity to the higher one and adding its anomalies) while it is open; once that incident is
acknowledged, a further qualifying transition opens a new one. Guardian-commanded SAFE_STOP and
POWER_DOWN open nothing (the guardian already knows), but an e-stop after them does.

Durability: with a ``directory``, each unacknowledged incident is one JSON file there, written
atomically (a new file fsynced, then renamed over, directory fsynced) before
:meth:`~IncidentLedger.on_transition` returns; the ledger loads them at construction, so a restart
keeps them. A file that cannot be read is renamed ``*.corrupt`` (kept for inspection) and reported
in :attr:`~IncidentLedger.problems`, never silently dropped. A failed write is reported there too;
the incident is then kept (and published) from memory.

Acknowledgement is exactly-once: :meth:`~IncidentLedger.acknowledge` accepts an open incident once,
rewrites its file as acknowledged and records its id in ``acknowledged.json`` (the latest
:data:`REMEMBERED_ACKNOWLEDGEMENTS`), so a repeated acknowledgement, also after a restart, is
ALREADY_ACKNOWLEDGED. An acknowledged incident is published once more (``acknowledged`` true) by
:meth:`~IncidentLedger.due`, and its file removed then (a restart before that publishes it then).

Publication (:meth:`~IncidentLedger.due`): an open incident at once when opened, changed or loaded,
then every ``republish_period`` seconds (monotonic clock) until it is acknowledged. Pure logic; no rclpy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftrobot_guard.blackbox.durable_files import replace_atomically
from ftrobot_guard.blackbox.errors import LogWriteError
from ftrobot_guard.incidents.incident_report import Incident
from ftrobot_guard.safety.modes import SafetyMode

STOP_MODES = frozenset({SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN, SafetyMode.ESTOP})
GUARDIAN_SOURCE_PREFIX = "guardian:"
DEFAULT_REPUBLISH_PERIOD_S = 5.0
REMEMBERED_ACKNOWLEDGEMENTS = 1024
ACKNOWLEDGED_FILE = "acknowledged.json"
FILE_FORMAT = 1
_INCIDENT_FILE = re.compile(r"^incident-\d{8}T\d{6}Z-[0-9a-f]{8}\.json$")


class AckOutcome(enum.Enum):
    """What an acknowledgement did."""

    ACCEPTED = "accepted"  # the incident was open; now acknowledged
    ALREADY_ACKNOWLEDGED = "already acknowledged"  # acknowledged before (also before a restart)
    UNKNOWN = "unknown"  # no such incident of this robot


def _utc(when: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {when!r}")
    return when.astimezone(dt.UTC)


def _mode(number: int, what: str) -> SafetyMode:
    if isinstance(number, bool) or not isinstance(number, int):
        raise ValueError(f"{what} must be a safety mode number, got {number!r}")
    try:
        return SafetyMode(number)
    except ValueError:
        raise ValueError(f"{what} {number!r} is no safety mode") from None


def qualifies(mode_after: int, source: str) -> bool:
    """True when entering ``mode_after`` requested by ``source`` calls for an incident report."""
    if mode_after == SafetyMode.ESTOP:
        return True
    return mode_after in (SafetyMode.SAFE_STOP, SafetyMode.POWER_DOWN) and not source.startswith(
        GUARDIAN_SOURCE_PREFIX
    )


# -- the file format ------------------------------------------------------------------------------


def _to_json(incident: Incident) -> bytes:
    record: dict[str, Any] = dataclasses.asdict(incident)
    record["opened_at"] = incident.opened_at.isoformat()
    record["acknowledged_at"] = None if incident.acknowledged_at is None else incident.acknowledged_at.isoformat()
    record["anomaly_kinds"] = list(incident.anomaly_kinds)
    return (json.dumps({"format": FILE_FORMAT, "incident": record}, sort_keys=True, indent=1) + "\n").encode()


_TEXTS = ("incident_id", "identity_number", "robot_name", "department", "what_happened", "source", "scope",
          "measures_taken", "guardian_on_duty", "contact", "acknowledged_by")


def _read_time(value: object, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not a time")
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"{what} has no time zone")
    return when.astimezone(dt.UTC)


def _from_json(data: bytes) -> Incident:
    document = json.loads(data.decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
        raise ValueError(f"not an incident file of format {FILE_FORMAT}")
    record = document.get("incident")
    names = {f.name for f in dataclasses.fields(Incident)}
    if not isinstance(record, dict) or set(record) != names:
        raise ValueError("the incident record lacks fields or has others")
    for name in _TEXTS:
        if not isinstance(record[name], str):
            raise ValueError(f"{name} is not a string")
    for name in ("severity", "mode_before", "mode_after"):
        if type(record[name]) is not int or not 0 <= record[name] <= 255:
            raise ValueError(f"{name} is not an integer 0..255")
    kinds = record["anomaly_kinds"]
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ValueError("anomaly_kinds is not a list of strings")
    if type(record["acknowledged"]) is not bool:
        raise ValueError("acknowledged is not a boolean")
    acknowledged_at = record["acknowledged_at"]
    return Incident(**{
        **record,
        "opened_at": _read_time(record["opened_at"], "opened_at"),
        "anomaly_kinds": tuple(kinds),
        "acknowledged_at": None if acknowledged_at is None else _read_time(acknowledged_at, "acknowledged_at"),
    })


def _file_name(incident_id: str) -> str:
    _, opened, random_part = incident_id.rsplit("/", 2)
    return f"incident-{opened}-{random_part}.json"


@dataclass
class _Entry:
    incident: Incident
    next_due_s: float | None = None  # None: due at once


class IncidentLedger:
    """The incidents of one robot: opened by safety transitions, kept until acknowledged, due for publication.

    ``directory`` None keeps them in memory only (tests, a robot without a state directory).
    ``contact_of(guardian_id)`` gives how to reach a guardian (a phone number, a duty desk).
    """

    def __init__(
        self,
        directory: Path | None,
        identity_number: str,
        robot_name: str,
        department: str,
        scope: str,
        contact_of: Callable[[str], str],
        republish_period: float = DEFAULT_REPUBLISH_PERIOD_S,
    ) -> None:
        for what, text in (("identity_number", identity_number), ("robot_name", robot_name),
                           ("department", department), ("scope", scope)):
            if not isinstance(text, str):
                raise ValueError(f"{what} must be a string")
        if not identity_number or "/" in identity_number:
            raise ValueError(f"identity_number {identity_number!r} must be non-empty and hold no '/'")
        if not (isinstance(republish_period, (int, float)) and math.isfinite(republish_period)
                and republish_period > 0):
            raise ValueError(f"republish_period must be a positive finite number, got {republish_period!r}")
        self._directory = Path(directory) if directory is not None else None
        self._identity_number = identity_number
        self._robot_name = robot_name
        self._department = department
        self._scope = scope
        self._contact_of = contact_of
        self._period = float(republish_period)
        self._open: dict[str, _Entry] = {}
        self._final: dict[str, Incident] = {}  # acknowledged, their last publication not handed out yet
        self._acknowledged: OrderedDict[str, None] = OrderedDict()
        self._episode_incident: str | None = None  # the incident of the current stop episode
        self._problems: list[str] = []
        self._reported = 0
        if self._directory is not None:
            self._load(self._directory)

    # -- properties -----------------------------------------------------------------------------

    @property
    def open_count(self) -> int:
        """Incidents not acknowledged yet."""
        return len(self._open)

    @property
    def open_incidents(self) -> list[Incident]:
        """The incidents not acknowledged yet, oldest first."""
        return sorted((e.incident for e in self._open.values()), key=lambda i: (i.opened_at, i.incident_id))

    @property
    def problems(self) -> list[str]:
        """Every storage problem so far (corrupt files set aside, failed writes), one line each."""
        return list(self._problems)

    def take_problems(self) -> list[str]:
        """The problems reported since the last call (for the node to log once)."""
        new = self._problems[self._reported:]
        self._reported = len(self._problems)
        return new

    def is_acknowledged(self, incident_id: str) -> bool:
        return incident_id in self._acknowledged

    # -- transitions ----------------------------------------------------------------------------

    def on_transition(
        self,
        when: dt.datetime,
        mode_before: int,
        mode_after: int,
        source: str,
        cause: str,
        anomalies: Sequence[str],
        measures: str,
        guardian_on_duty: str,
        severity: int,
    ) -> Incident | None:
        """Take one safety transition at wall-clock ``when``; the incident it opened or updated, else None.

        The incident is on disk when this returns (unless a write failed: see :attr:`problems`).
        """
        when = _utc(when, "when")
        before, after = _mode(mode_before, "mode_before"), _mode(mode_after, "mode_after")
        if not isinstance(source, str) or not isinstance(cause, str) or not isinstance(measures, str):
            raise ValueError("source, cause and measures must be strings")
        if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 255:
            raise ValueError(f"severity must be an integer 0..255, got {severity!r}")
        kinds = tuple(str(kind) for kind in anomalies)
        if after not in STOP_MODES or before not in STOP_MODES:
            self._episode_incident = None  # an episode ended, or a new one begins
        if after not in STOP_MODES or not qualifies(after, source):
            return None
        current = self._open.get(self._episode_incident or "")
        if current is not None:
            return self._escalate(current, when, after, source, cause, kinds, measures, severity)
        incident = Incident(
            incident_id=self._new_id(when),
            identity_number=self._identity_number,
            robot_name=self._robot_name,
            department=self._department,
            opened_at=when,
            severity=severity,
            what_happened=f"{after.name} from {before.name} by {source}: {cause}",
            source=source,
            scope=self._scope,
            measures_taken=measures,
            guardian_on_duty=guardian_on_duty,
            contact=self._contact(guardian_on_duty),
            mode_before=int(before),
            mode_after=int(after),
            anomaly_kinds=kinds,
        )
        self._store(incident)
        self._open[incident.incident_id] = _Entry(incident)
        self._episode_incident = incident.incident_id
        return incident

    def _escalate(
        self, entry: _Entry, when: dt.datetime, after: SafetyMode, source: str, cause: str, kinds: tuple[str, ...],
        measures: str, severity: int,
    ) -> Incident:
        old = entry.incident
        step = f"{when.strftime('%H:%M:%SZ')} {after.name} by {source}: {cause}" + (f"; {measures}" if measures else "")
        incident = dataclasses.replace(
            old,
            measures_taken=f"{old.measures_taken} | then {step}" if old.measures_taken else f"then {step}",
            severity=max(old.severity, severity),
            anomaly_kinds=old.anomaly_kinds + tuple(k for k in dict.fromkeys(kinds) if k not in old.anomaly_kinds),
        )
        self._store(incident)
        entry.incident, entry.next_due_s = incident, None
        return incident

    def _new_id(self, when: dt.datetime) -> str:
        while True:
            incident_id = f"{self._identity_number}/{when.strftime('%Y%m%dT%H%M%SZ')}/{secrets.token_hex(4)}"
            if incident_id not in self._open and incident_id not in self._acknowledged and (
                incident_id not in self._final
            ):
                return incident_id

    def _contact(self, guardian_id: str) -> str:
        try:
            contact = self._contact_of(guardian_id)
        except Exception as exc:  # a contact directory problem must not cost the incident
            self._problems.append(f"no contact for guardian {guardian_id!r}: {exc}")
            return ""
        return contact if isinstance(contact, str) else str(contact)

    # -- acknowledgement ------------------------------------------------------------------------

    def acknowledge(self, incident_id: str, guardian_id: str, at: dt.datetime) -> AckOutcome:
        """The department's guardian ``guardian_id`` acknowledged ``incident_id`` at ``at`` (exactly once)."""
        at = _utc(at, "at")
        if incident_id in self._acknowledged:
            return AckOutcome.ALREADY_ACKNOWLEDGED
        entry = self._open.get(incident_id)
        if entry is None:
            return AckOutcome.UNKNOWN
        incident = dataclasses.replace(entry.incident, acknowledged=True, acknowledged_by=guardian_id,
                                       acknowledged_at=at)
        self._store(incident)
        self._remember_acknowledged(incident_id)
        del self._open[incident_id]
        self._final[incident_id] = incident
        return AckOutcome.ACCEPTED

    def _remember_acknowledged(self, incident_id: str) -> None:
        self._acknowledged[incident_id] = None
        self._acknowledged.move_to_end(incident_id)
        while len(self._acknowledged) > REMEMBERED_ACKNOWLEDGEMENTS:
            self._acknowledged.popitem(last=False)
        self._save_acknowledged()

    def _save_acknowledged(self) -> None:
        if self._directory is not None:
            document = {"format": FILE_FORMAT, "acknowledged": list(self._acknowledged)}
            self._write(self._directory / ACKNOWLEDGED_FILE, (json.dumps(document, indent=0) + "\n").encode())

    # -- publication ----------------------------------------------------------------------------

    def due(self, now_monotonic: float) -> list[Incident]:
        """What to (re)publish now, oldest first: open incidents due, and each acknowledged one once."""
        out: list[Incident] = []
        for entry in self._open.values():
            if entry.next_due_s is None or now_monotonic >= entry.next_due_s:
                entry.next_due_s = now_monotonic + self._period
                out.append(entry.incident)
        for incident_id, incident in list(self._final.items()):
            out.append(incident)
            del self._final[incident_id]
            self._remove(incident_id)
        out.sort(key=lambda i: (i.opened_at, i.incident_id))
        return out

    # -- storage --------------------------------------------------------------------------------

    def _store(self, incident: Incident) -> None:
        if self._directory is not None:
            self._write(self._directory / _file_name(incident.incident_id), _to_json(incident))

    def _write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` by ``data`` atomically and durably; a failure is reported in :attr:`problems`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, data, 0o600, "writing an incident file")
        except (OSError, LogWriteError) as exc:
            self._problems.append(f"{path}: not written ({exc}); kept in memory only")

    def _remove(self, incident_id: str) -> None:
        if self._directory is None:
            return
        path = self._directory / _file_name(incident_id)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            self._problems.append(f"{path}: acknowledged incident file not removed ({exc.strerror})")

    def _set_aside(self, path: Path, why: str) -> None:
        corrupt = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, corrupt)
            self._problems.append(f"{path}: unreadable ({why}); kept as {corrupt.name}")
        except OSError as exc:
            self._problems.append(f"{path}: unreadable ({why}); could not be set aside ({exc.strerror})")

    def _load(self, directory: Path) -> None:
        if not directory.is_dir():
            return
        acknowledged_path = directory / ACKNOWLEDGED_FILE
        if acknowledged_path.exists():
            try:
                document = json.loads(acknowledged_path.read_bytes().decode("utf-8"))
                ids = document["acknowledged"] if isinstance(document, dict) else None
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    raise ValueError("no list of incident ids")
                for incident_id in ids[-REMEMBERED_ACKNOWLEDGEMENTS:]:
                    self._acknowledged[incident_id] = None
            except (OSError, ValueError, KeyError) as exc:
                self._set_aside(acknowledged_path, str(exc))
        missing_acknowledgements = False
        for path in sorted(directory.iterdir()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # an interrupted write: the file it was to replace is intact
                continue
            if not _INCIDENT_FILE.match(path.name):
                continue
            try:
                incident = _from_json(path.read_bytes())
                if incident.identity_number != self._identity_number:
                    raise ValueError(f"incident of identity {incident.identity_number!r}")
                if _file_name(incident.incident_id) != path.name:
                    raise ValueError(f"holds incident {incident.incident_id!r}")
            except (OSError, ValueError, TypeError) as exc:
                self._set_aside(path, str(exc))
                continue
            if incident.acknowledged:
                self._final[incident.incident_id] = incident  # its last publication was not handed out
                if incident.incident_id not in self._acknowledged:
                    self._acknowledged[incident.incident_id] = None
                    missing_acknowledgements = True
            elif incident.incident_id in self._acknowledged:
                # acknowledged, but its file not rewritten as such: publish it once more as acknowledged
                self._problems.append(f"{path}: incident {incident.incident_id} was acknowledged already")
                self._final[incident.incident_id] = dataclasses.replace(incident, acknowledged=True)
            else:
                self._open[incident.incident_id] = _Entry(incident)
        if missing_acknowledgements:
            self._save_acknowledged()
