"""The department monitor's logic: authenticate heartbeats, track robots, raise and clear alerts.

Pure logic, no rclpy. The monitor node converts each ``ftrobot_msgs/Heartbeat`` into its signed
field mapping (:func:`ftrobot_guard.signed_fields.message_fields`), builds a :class:`HeartbeatView`
(:func:`heartbeat_view_from_fields`) and calls :meth:`FleetMonitor.on_heartbeat`; it calls
:meth:`FleetMonitor.check` periodically (e.g. at twice the heartbeat rate) for silence and for
clearing alerts, and publishes every returned :class:`Alert` as a ``DepartmentAlert``.

Authentication of one heartbeat, in order (the first failure decides the alert):

1. a signature is present (MISSING_SIGNATURE);
2. the certificate chains to a trusted department CA (UNKNOWN_CERTIFICATE) and is within its
   validity window, as is its CA (EXPIRED_CERTIFICATE). The chain check is cached per certificate
   bytes, so the steady state costs one Ed25519 verification per heartbeat;
3. the view's fields are exactly the signed fields, and the Ed25519 signature over their
   canonical encoding verifies with the certificate's key (BAD_SIGNATURE);
4. the heartbeat's identity number, name and department are the certificate's (IDENTITY_MISMATCH).

Only an authenticated heartbeat is *genuine*; only a genuine, fresh one updates the robot's row,
refreshes its liveness or clears SILENT. Freshness, per identity number:

* a boot session is a ``boot_id`` (random per process start); its ``sequence`` must strictly
  increase, else REPLAY. A restart is a new boot_id with the sequence starting again;
* a new boot session stamped well before the newest accepted heartbeat is a REPLAY of an old
  (forgotten) session, not a restart;
* once a newer boot session has appeared the older one has ended (a restart). If the older one
  speaks again with a stamp later than the newer session's start, or more than once (one late
  in-flight message of a dying process is tolerated), two processes hold the identity:
  DUPLICATE_IDENTITY. So is one boot session heard from two DDS publishers within the window.

Alerts are raised once and cleared once, per robot and kind. Evidence alerts (bad/missing
signature, certificate problems, identity mismatch, duplicate, replay) clear when no new evidence
has arrived for ``hold_s``; SILENT clears on the next genuine heartbeat; UNHEALTHY and SAFETY_MODE
follow the genuine heartbeats' content and are raised again (once) when their detail changes,
e.g. SAFE_STOP -> ESTOP.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from .certificates import CertificateError, CertificateFailure, CertificateVerifier, RobotIdentity
from .signed_fields import HEARTBEAT_DOMAIN, verify_fields
from .topic_watch import TopicHealthView

NORMAL_MODE_NAME = "NORMAL"
MAX_IDENTITY_KEY_LENGTH = 64
MAX_SESSIONS_PER_ROBOT = 8


class AlertKind(enum.IntEnum):
    """Alert kinds; values equal ftrobot_msgs/DepartmentAlert KIND_* constants."""

    SILENT = 1
    BAD_SIGNATURE = 2
    MISSING_SIGNATURE = 3
    UNKNOWN_CERTIFICATE = 4
    EXPIRED_CERTIFICATE = 5
    IDENTITY_MISMATCH = 6
    DUPLICATE_IDENTITY = 7
    REPLAY = 8
    UNHEALTHY = 9
    SAFETY_MODE = 10


EVIDENCE_KINDS = frozenset(
    {
        AlertKind.BAD_SIGNATURE,
        AlertKind.MISSING_SIGNATURE,
        AlertKind.UNKNOWN_CERTIFICATE,
        AlertKind.EXPIRED_CERTIFICATE,
        AlertKind.IDENTITY_MISMATCH,
        AlertKind.DUPLICATE_IDENTITY,
        AlertKind.REPLAY,
    }
)


class SignatureState(enum.Enum):
    """Trust summary of a robot row."""

    VERIFIED = "verified"  # genuine heartbeats and no active security alert
    CONTESTED = "contested"  # genuine heartbeats, but forged/replayed/duplicate ones too
    UNVERIFIED = "unverified"  # never a genuine heartbeat for this identity number


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    identity_number: str
    robot_name: str
    detail: str
    raised: bool


@dataclass(frozen=True)
class HeartbeatView:
    """One received heartbeat; ``signed_fields`` is the message minus ``signature``."""

    identity_number: str
    robot_name: str
    department: str
    boot_id: str
    sequence: int
    stamp_ns: int
    uptime_s: float
    safety_mode_name: str
    watched_topics: tuple[TopicHealthView, ...]
    guardian_on_duty: str
    software_digest: str
    config_digest: str
    certificate: bytes
    signature: bytes
    signed_fields: Mapping[str, Any]
    sender: str = ""  # DDS publisher gid (hex) when known


@dataclass(frozen=True)
class RobotRow:
    identity_number: str
    robot_name: str
    department: str
    safety_mode: str
    last_seen_age_s: float | None  # since the last genuine heartbeat; None if never
    signature_state: SignatureState
    active_alerts: tuple[AlertKind, ...]
    boot_id: str
    sequence: int
    uptime_s: float
    guardian_on_duty: str
    sender: str
    certificate_not_after: dt.datetime | None


class HeartbeatFormatError(ValueError):
    """The signed fields of a heartbeat lack a field or hold a wrong type."""


def _get(fields: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in fields:
        raise HeartbeatFormatError(f"heartbeat field {name!r} is missing")
    value = fields[name]
    if isinstance(value, bool) and kind is not bool:
        raise HeartbeatFormatError(f"heartbeat field {name!r} must be {kind}, got bool")
    if not isinstance(value, kind):
        raise HeartbeatFormatError(f"heartbeat field {name!r} has type {type(value).__name__}")
    return value


def _float(fields: Mapping[str, Any], name: str) -> float:
    value = float(_get(fields, name, (int, float)))
    if not math.isfinite(value):
        raise HeartbeatFormatError(f"heartbeat field {name!r} is not finite")
    return value


def _topic(entry: Any, index: int) -> TopicHealthView:
    if not isinstance(entry, Mapping):
        raise HeartbeatFormatError(f"heartbeat field watched_topics[{index}] is not a mapping")
    try:
        return TopicHealthView(
            topic=_get(entry, "topic", str),
            ever_received=_get(entry, "ever_received", bool),
            age_s=_float(entry, "age"),
            max_age_s=_float(entry, "max_age"),
            healthy=_get(entry, "healthy", bool),
        )
    except HeartbeatFormatError as exc:
        raise HeartbeatFormatError(f"watched_topics[{index}]: {exc}") from None


def _certificate_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)) and all(type(b) is int and 0 <= b <= 255 for b in value):
        return bytes(value)
    raise HeartbeatFormatError(f"heartbeat field 'certificate' has type {type(value).__name__}")


def heartbeat_view_from_fields(fields: Mapping[str, Any], signature: bytes, sender: str = "") -> HeartbeatView:
    """Build a view from a heartbeat's signed field mapping (Heartbeat.msg field names).

    Raises :class:`HeartbeatFormatError` when a field is missing or of the wrong type.
    """
    if not isinstance(fields, Mapping):
        raise HeartbeatFormatError("heartbeat fields must be a mapping")
    header = _get(fields, "header", Mapping)
    stamp = header.get("stamp")
    if not isinstance(stamp, Mapping):
        raise HeartbeatFormatError("heartbeat field 'header.stamp' is missing")
    sec = _get(stamp, "sec", int)
    nanosec = _get(stamp, "nanosec", int)
    topics = _get(fields, "watched_topics", (list, tuple))
    sequence = _get(fields, "sequence", int)
    if sequence < 0:
        raise HeartbeatFormatError("heartbeat field 'sequence' is negative")
    return HeartbeatView(
        identity_number=_get(fields, "identity_number", str),
        robot_name=_get(fields, "robot_name", str),
        department=_get(fields, "department", str),
        boot_id=_get(fields, "boot_id", str),
        sequence=sequence,
        stamp_ns=sec * 1_000_000_000 + nanosec,
        uptime_s=_float(fields, "uptime"),
        safety_mode_name=_get(fields, "safety_mode_name", str),
        watched_topics=tuple(_topic(entry, i) for i, entry in enumerate(topics)),
        guardian_on_duty=_get(fields, "guardian_on_duty", str),
        software_digest=_get(fields, "software_digest", str),
        config_digest=_get(fields, "config_digest", str),
        certificate=_certificate_bytes(_get(fields, "certificate", object)),
        signature=bytes(signature),
        signed_fields=fields,
        sender=sender,
    )


def _mismatched_field(view: HeartbeatView) -> str | None:
    """Name of the first view field that differs from the signed fields (None when all agree)."""
    try:
        signed = heartbeat_view_from_fields(view.signed_fields, view.signature, view.sender)
    except HeartbeatFormatError as exc:
        return str(exc)
    for name in (
        "identity_number",
        "robot_name",
        "department",
        "boot_id",
        "sequence",
        "stamp_ns",
        "uptime_s",
        "safety_mode_name",
        "watched_topics",
        "guardian_on_duty",
        "software_digest",
        "config_digest",
        "certificate",
    ):
        if getattr(view, name) != getattr(signed, name):
            return f"view field {name!r} differs from the signed fields"
    return None


@dataclass
class _Session:
    boot_id: str
    first_stamp_ns: int
    last_seen_s: float
    last_sequence: int
    sender: str
    sender_seen_s: float
    superseded: bool = False
    heard_since_superseded: int = 0


@dataclass
class _ActiveAlert:
    alert: Alert
    last_evidence_s: float


@dataclass
class _Robot:
    identity_number: str
    robot_name: str
    department: str
    last_claim_s: float
    verified: bool = False
    last_genuine_s: float | None = None
    latest: HeartbeatView | None = None
    certificate_not_after: dt.datetime | None = None
    sessions: OrderedDict[str, _Session] = field(default_factory=OrderedDict)
    newest_boot_id: str | None = None
    max_stamp_ns: int | None = None
    alerts: dict[AlertKind, _ActiveAlert] = field(default_factory=dict)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _short(text: str, limit: int = MAX_IDENTITY_KEY_LENGTH) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FleetMonitor:
    """Tracks every robot heard of and decides which alerts to raise and clear.

    ``now_s`` arguments are receive times on one monotonic clock (seconds); ``clock`` gives the
    UTC wall-clock time used for certificate validity.
    """

    def __init__(
        self,
        trusted_cas: Sequence[x509.Certificate],
        period_s: float = 1.0,
        silent_periods: int = 3,
        clock: Callable[[], dt.datetime] = _utc_now,
        hold_s: float | None = None,
        max_unverified_robots: int = 1024,
    ) -> None:
        if not (isinstance(period_s, (int, float)) and math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be a positive finite number, got {period_s!r}")
        if isinstance(silent_periods, bool) or not isinstance(silent_periods, int) or silent_periods < 1:
            raise ValueError(f"silent_periods must be an integer >= 1, got {silent_periods!r}")
        self._window_s = float(period_s) * silent_periods
        if hold_s is None:
            hold_s = self._window_s
        if not (isinstance(hold_s, (int, float)) and math.isfinite(hold_s) and hold_s > 0):
            raise ValueError(f"hold_s must be a positive finite number, got {hold_s!r}")
        if max_unverified_robots < 1:
            raise ValueError("max_unverified_robots must be positive")
        self._hold_s = float(hold_s)
        self._verifier = CertificateVerifier(trusted_cas)
        self._clock = clock
        self._robots: dict[str, _Robot] = {}
        self._max_unverified = max_unverified_robots
        self._last_now_s = 0.0
        self._last_accepted: HeartbeatView | None = None

    @property
    def silence_window_s(self) -> float:
        return self._window_s

    # -- alert bookkeeping -------------------------------------------------------------------

    def _raise(self, robot: _Robot, kind: AlertKind, detail: str, now_s: float, out: list[Alert]) -> None:
        active = robot.alerts.get(kind)
        if active is None or active.alert.detail != detail and kind not in EVIDENCE_KINDS:
            alert = Alert(kind, robot.identity_number, robot.robot_name, detail, raised=True)
            robot.alerts[kind] = _ActiveAlert(alert, now_s)
            out.append(alert)
        else:
            active.last_evidence_s = now_s

    def _clear(self, robot: _Robot, kind: AlertKind, detail: str, out: list[Alert]) -> None:
        if robot.alerts.pop(kind, None) is not None:
            out.append(Alert(kind, robot.identity_number, robot.robot_name, detail, raised=False))

    # -- heartbeats ---------------------------------------------------------------------------

    def _robot_for(self, view: HeartbeatView, now_s: float, out: list[Alert]) -> _Robot:
        key = _short(view.identity_number) if isinstance(view.identity_number, str) else "<invalid>"
        robot = self._robots.get(key)
        if robot is None:
            name = _short(view.robot_name) if isinstance(view.robot_name, str) else ""
            department = _short(view.department) if isinstance(view.department, str) else ""
            robot = _Robot(key, name, department, now_s)
            self._robots[key] = robot
            self._evict_unverified(out)
        robot.last_claim_s = now_s
        return robot

    def _evict_unverified(self, out: list[Alert]) -> None:
        unverified = [r for r in self._robots.values() if not r.verified]
        excess = len(unverified) - self._max_unverified
        if excess <= 0:
            return
        unverified.sort(key=lambda r: r.last_claim_s)
        for robot in unverified[:excess]:
            for kind in list(robot.alerts):
                self._clear(robot, kind, "forgotten: too many unverified identities claimed", out)
            del self._robots[robot.identity_number]

    def _authenticate(self, view: HeartbeatView) -> RobotIdentity | tuple[AlertKind, str]:
        if not view.signature:
            return AlertKind.MISSING_SIGNATURE, "heartbeat carries no signature"
        try:
            identity = self._verifier.verify_robot(view.certificate, self._clock())
        except CertificateError as exc:
            if exc.reason in (CertificateFailure.EXPIRED, CertificateFailure.NOT_YET_VALID):
                return AlertKind.EXPIRED_CERTIFICATE, f"certificate {exc.reason.value}: {exc}"
            return AlertKind.UNKNOWN_CERTIFICATE, f"certificate refused ({exc.reason.value}): {exc}"
        mismatch = _mismatched_field(view)
        if mismatch is not None:
            return AlertKind.BAD_SIGNATURE, f"malformed heartbeat: {mismatch}"
        if not verify_fields(identity.public_key, HEARTBEAT_DOMAIN, view.signed_fields, view.signature):
            return (
                AlertKind.BAD_SIGNATURE,
                f"signature does not verify with the key of certificate {identity.certificate_fingerprint[:16]}",
            )
        certified = str(identity.identity_number)
        if (view.identity_number, view.robot_name, view.department) != (
            certified,
            identity.robot_name,
            identity.department,
        ):
            return (
                AlertKind.IDENTITY_MISMATCH,
                f"heartbeat claims {_short(view.identity_number)!r} {_short(view.robot_name)!r}"
                f" ({_short(view.department)!r}) but its certificate is for {certified!r}"
                f" {identity.robot_name!r} ({identity.department!r})",
            )
        return identity

    def _fresh(self, robot: _Robot, view: HeartbeatView, now_s: float, out: list[Alert]) -> _Session | None:
        """The boot session a genuine heartbeat belongs to, or None when it is a replay."""
        window_ns = int(self._window_s * 1e9)
        session = robot.sessions.get(view.boot_id)
        if session is None:
            if robot.max_stamp_ns is not None and view.stamp_ns < robot.max_stamp_ns - window_ns:
                behind = (robot.max_stamp_ns - view.stamp_ns) / 1e9
                self._raise(
                    robot,
                    AlertKind.REPLAY,
                    f"boot session {_short(view.boot_id, 40)!r} is stamped {behind:.1f} s before the newest"
                    " accepted heartbeat",
                    now_s,
                    out,
                )
                return None
            if robot.newest_boot_id is not None and robot.newest_boot_id in robot.sessions:
                previous = robot.sessions[robot.newest_boot_id]
                previous.superseded = True
                previous.heard_since_superseded = 0
            session = _Session(view.boot_id, view.stamp_ns, now_s, view.sequence, view.sender, now_s)
            robot.sessions[view.boot_id] = session
            robot.newest_boot_id = view.boot_id
            while len(robot.sessions) > MAX_SESSIONS_PER_ROBOT:
                robot.sessions.popitem(last=False)
            return session
        if view.sequence <= session.last_sequence:
            self._raise(
                robot,
                AlertKind.REPLAY,
                f"sequence {view.sequence} not above {session.last_sequence} in boot session"
                f" {_short(view.boot_id, 40)!r}",
                now_s,
                out,
            )
            return None
        if view.sender and session.sender and view.sender != session.sender:
            if now_s - session.sender_seen_s <= self._window_s:
                self._raise(
                    robot,
                    AlertKind.DUPLICATE_IDENTITY,
                    f"boot session {_short(view.boot_id, 40)!r} heard from two publishers"
                    f" {_short(session.sender, 40)} and {_short(view.sender, 40)}",
                    now_s,
                    out,
                )
        if session.superseded:
            session.heard_since_superseded += 1
            newest = robot.sessions.get(robot.newest_boot_id or "")
            if newest is not None and (
                view.stamp_ns > newest.first_stamp_ns or session.heard_since_superseded > 1
            ):
                self._raise(
                    robot,
                    AlertKind.DUPLICATE_IDENTITY,
                    f"two processes hold this identity: boot sessions {_short(session.boot_id, 40)!r}"
                    f" and {_short(newest.boot_id, 40)!r} both send heartbeats",
                    now_s,
                    out,
                )
        session.last_sequence = view.sequence
        session.last_seen_s = now_s
        if view.sender:
            session.sender = view.sender
            session.sender_seen_s = now_s
        robot.sessions.move_to_end(view.boot_id)
        return session

    def _accept(
        self, robot: _Robot, view: HeartbeatView, identity: RobotIdentity, session: _Session, now_s: float,
        out: list[Alert],
    ) -> None:
        if robot.last_genuine_s is not None and AlertKind.SILENT in robot.alerts:
            self._clear(robot, AlertKind.SILENT, f"heartbeat resumed after {now_s - robot.last_genuine_s:.1f} s", out)
        self._last_accepted = view
        robot.verified = True
        robot.last_genuine_s = now_s
        robot.max_stamp_ns = view.stamp_ns if robot.max_stamp_ns is None else max(robot.max_stamp_ns, view.stamp_ns)
        if session.superseded:
            return  # an ended (or competing) boot session keeps the robot alive but does not own its row
        robot.robot_name = identity.robot_name
        robot.department = identity.department
        robot.certificate_not_after = identity.not_after
        robot.latest = view
        stale = [t.topic for t in view.watched_topics if not t.healthy]
        if stale:
            self._raise(robot, AlertKind.UNHEALTHY, "stale inputs: " + ", ".join(_short(t) for t in stale), now_s, out)
        else:
            self._clear(robot, AlertKind.UNHEALTHY, "all watched inputs healthy", out)
        if view.safety_mode_name != NORMAL_MODE_NAME:
            self._raise(robot, AlertKind.SAFETY_MODE, f"safety mode {_short(view.safety_mode_name)}", now_s, out)
        else:
            self._clear(robot, AlertKind.SAFETY_MODE, "safety mode NORMAL", out)

    def on_heartbeat(self, view: HeartbeatView, now_s: float) -> list[Alert]:
        """Process one received heartbeat at receive time ``now_s``; return alerts raised or cleared."""
        out: list[Alert] = []
        self._last_now_s = now_s
        self._last_accepted = None
        robot = self._robot_for(view, now_s, out)
        outcome = self._authenticate(view)
        if isinstance(outcome, tuple):
            kind, detail = outcome
            self._raise(robot, kind, detail, now_s, out)
            return out
        session = self._fresh(robot, view, now_s, out)
        if session is not None:
            self._accept(robot, view, outcome, session, now_s, out)
        return out

    def accepted(self, view: HeartbeatView) -> bool:
        """True when ``view`` was the latest heartbeat given to :meth:`on_heartbeat` and it was
        accepted as genuine and fresh (authenticated, not a replay). E.g. to witness the black-box
        checkpoint it carries only then."""
        return view is self._last_accepted

    def on_heartbeat_fields(
        self, fields: Mapping[str, Any], signature: bytes, sender: str, now_s: float
    ) -> list[Alert]:
        """Like :meth:`on_heartbeat` from a signed field mapping; a malformed one is a BAD_SIGNATURE."""
        try:
            view = heartbeat_view_from_fields(fields, signature, sender)
        except HeartbeatFormatError as exc:
            claimed = fields.get("identity_number") if isinstance(fields, Mapping) else None
            name = fields.get("robot_name") if isinstance(fields, Mapping) else None
            key = _short(claimed) if isinstance(claimed, str) else "<invalid>"
            out: list[Alert] = []
            robot = self._robots.get(key)
            if robot is None:
                robot = _Robot(key, _short(name) if isinstance(name, str) else "", "", now_s)
                self._robots[key] = robot
                self._evict_unverified(out)
            robot.last_claim_s = now_s
            self._raise(robot, AlertKind.BAD_SIGNATURE, f"malformed heartbeat: {exc}", now_s, out)
            return out
        return self.on_heartbeat(view, now_s)

    # -- time ---------------------------------------------------------------------------------

    def check(self, now_s: float) -> list[Alert]:
        """Raise SILENT for robots not heard genuinely within the window; clear stale evidence alerts."""
        out: list[Alert] = []
        self._last_now_s = now_s
        for robot in list(self._robots.values()):
            if robot.last_genuine_s is not None and AlertKind.SILENT not in robot.alerts:
                age = now_s - robot.last_genuine_s
                if age > self._window_s:
                    self._raise(
                        robot,
                        AlertKind.SILENT,
                        f"no genuine heartbeat for {age:.1f} s (limit {self._window_s:.1f} s)",
                        now_s,
                        out,
                    )
            for kind, active in list(robot.alerts.items()):
                if kind in EVIDENCE_KINDS and now_s - active.last_evidence_s > self._hold_s:
                    self._clear(robot, kind, f"no further {kind.name} evidence for {self._hold_s:.1f} s", out)
            if not robot.verified and not robot.alerts and now_s - robot.last_claim_s > self._hold_s:
                del self._robots[robot.identity_number]
        return out

    # -- views --------------------------------------------------------------------------------

    def active_alerts(self) -> list[Alert]:
        """Every alert currently raised (e.g. to republish to a late-joining display)."""
        return [a.alert for r in self._robots.values() for a in sorted(r.alerts.values(), key=lambda a: a.alert.kind)]

    def rows(self, now_s: float | None = None) -> list[RobotRow]:
        """One row per identity number heard of, sorted by identity number.

        Ages are taken at ``now_s``, by default the time of the latest heartbeat or check.
        """
        if now_s is None:
            now_s = self._last_now_s
        result: list[RobotRow] = []
        for key in sorted(self._robots):
            robot = self._robots[key]
            latest = robot.latest
            if not robot.verified:
                state = SignatureState.UNVERIFIED
            elif any(kind in EVIDENCE_KINDS for kind in robot.alerts):
                state = SignatureState.CONTESTED
            else:
                state = SignatureState.VERIFIED
            result.append(
                RobotRow(
                    identity_number=robot.identity_number,
                    robot_name=robot.robot_name,
                    department=robot.department,
                    safety_mode=latest.safety_mode_name if latest else "",
                    last_seen_age_s=None if robot.last_genuine_s is None else max(0.0, now_s - robot.last_genuine_s),
                    signature_state=state,
                    active_alerts=tuple(sorted(robot.alerts)),
                    boot_id=latest.boot_id if latest else "",
                    sequence=latest.sequence if latest else 0,
                    uptime_s=latest.uptime_s if latest else 0.0,
                    guardian_on_duty=latest.guardian_on_duty if latest else "",
                    sender=latest.sender if latest else "",
                    certificate_not_after=robot.certificate_not_after,
                )
            )
        return result

