"""The department monitor's logic: authenticate heartbeats, track robots, raise and clear alerts.

Pure logic, no rclpy. The monitor node hands each received ``ftrobot_msgs/Heartbeat``, serialized
as DDS delivered it (or as a message object), with its :class:`Reception` to
:meth:`FleetMonitor.on_heartbeat`, which returns a :class:`HeartbeatOutcome` (accepted, or refused
with the reason, the alerts raised or cleared, and what was read); it calls
:meth:`FleetMonitor.check` periodically (e.g. at twice the heartbeat rate) for silence and for
clearing alerts, and publishes every :class:`Alert` as a ``DepartmentAlert``.

Reading a heartbeat (:mod:`.heartbeat_reading`) gives its typed fields and the canonical bytes of
its signed fields (every field but ``signature``) in one pass over one source: the bytes that are
verified and the values that are judged are the same. A heartbeat that cannot be read (a field
missing or of the wrong type, a NaN or infinite number, a truncated buffer) is *malformed*:
refused, with a BAD_SIGNATURE alert, since no conforming signer can have signed it.

Authentication of one heartbeat, in order (the first failure decides the alert):

1. a signature is present (MISSING_SIGNATURE);
2. the certificate chains to a trusted department CA (UNKNOWN_CERTIFICATE) and is within its
   validity window, as is its CA (EXPIRED_CERTIFICATE). The chain check is cached per certificate
   bytes, so the steady state costs one Ed25519 verification per heartbeat;
3. the Ed25519 signature over the canonical encoding verifies with the certificate's key
   (BAD_SIGNATURE);
4. the heartbeat's identity number, name and department are the certificate's (IDENTITY_MISMATCH).

Only an authenticated heartbeat is *genuine*; only a genuine, fresh one is *accepted*: it updates
the robot's row, refreshes its liveness or clears SILENT. Freshness, per identity number:

* a boot session is a ``boot_id`` (random per process start); its ``sequence`` must strictly
  increase, else REPLAY. A restart is a new boot_id with the sequence starting again;
* a new boot session stamped well before the newest accepted heartbeat is a REPLAY of an old
  (forgotten) session, not a restart;
* once a newer boot session has appeared the older one has ended (a restart). If the older one
  speaks again with a stamp later than the newer session's start, or more than once (one late
  in-flight message of a dying process is tolerated), two processes hold the identity:
  DUPLICATE_IDENTITY;
* one boot session is one process with one DDS publisher. It is DUPLICATE_IDENTITY when the
  :class:`Reception` shows a second publisher: another topic, another publisher gid (reported by
  rclpy 9, Kilted, not by rclpy 7, Jazzy), or a publication sequence number that does not increase
  (rmw numbers each publisher's messages in increasing order, on every distribution here). Without
  the gid, a second publisher that takes over after the first stops with higher publication
  numbers is not seen; interleaved publishers always are.

Incident reports (:mod:`ftrobot_guard.incidents.incident_report`): the node hands each received
``ftrobot_msgs/IncidentReport`` as ``message_fields(msg)`` with ``msg.signature`` to
:meth:`FleetMonitor.on_incident`, which authenticates it (:func:`verify_incident`: certificate chain
and validity, signature, identity) and returns an :class:`IncidentOutcome`. A refused report raises
the evidence alert of its refusal (BAD_SIGNATURE for a malformed one) on the claimed robot. The
monitor keeps each robot's open incidents by incident id: a new one raises one INCIDENT alert (its
detail names the incident id); its re-publications (also with updated measures) change nothing but
the kept content; the report with ``acknowledged`` true closes it and clears that alert. Closed ids
are remembered (the latest :data:`REMEMBERED_CLOSED_INCIDENTS` per robot), so a late or duplicated
report never reopens an incident. Rows show the open incidents the department holds and the count the
robot's latest heartbeat reports.

Alerts are raised once and cleared once, per robot and kind (INCIDENT: per open incident). Evidence alerts (bad/missing
signature, certificate problems, identity mismatch, duplicate, replay) clear when no new evidence
has arrived for ``hold_s``; SILENT clears on the next genuine heartbeat; UNHEALTHY and SAFETY_MODE
follow the genuine heartbeats' content and are raised again (once) when their detail changes,
e.g. SAFE_STOP -> ESTOP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from ftrobot_guard.department.heartbeat_reading import (
    HeartbeatFormatError,
    HeartbeatView,
    read_heartbeat,
    read_serialized_heartbeat,
)
from ftrobot_guard.incidents.incident_report import IncidentRefusal, IncidentRefused, VerifiedIncident, verify_incident
from ftrobot_guard.safety.modes import SafetyMode
from ftrobot_guard.trust.certificates import (
    CertificateError,
    CertificateFailure,
    CertificateVerifier,
    RobotIdentity,
    certificate_fingerprint,
)
from ftrobot_guard.trust.signed_fields import SIGNATURE_LENGTH

NORMAL_MODE_NAME = SafetyMode.NORMAL.name
MAX_IDENTITY_KEY_LENGTH = 64
MAX_SESSIONS_PER_ROBOT = 8
MAX_OPEN_INCIDENTS_PER_ROBOT = 1024
REMEMBERED_CLOSED_INCIDENTS = 1024


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
    INCIDENT = 11


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


class Refusal(enum.Enum):
    """Why a heartbeat was not accepted; each raises (or keeps raised) the alert :attr:`alert_kind`."""

    MALFORMED = "malformed"
    MISSING_SIGNATURE = "missing signature"
    UNKNOWN_CERTIFICATE = "unknown certificate"
    EXPIRED_CERTIFICATE = "expired certificate"
    BAD_SIGNATURE = "bad signature"
    IDENTITY_MISMATCH = "identity mismatch"
    REPLAY = "replay"

    @property
    def alert_kind(self) -> AlertKind:
        return AlertKind.BAD_SIGNATURE if self is Refusal.MALFORMED else AlertKind[self.name]


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


@dataclass(frozen=True, slots=True)
class HeartbeatOutcome:
    """What :meth:`FleetMonitor.on_heartbeat` made of one heartbeat."""

    refusal: Refusal | None  # None: accepted (genuine and fresh)
    reason: str  # why it was refused; "" when accepted
    alerts: tuple[Alert, ...]  # raised or cleared by this heartbeat
    view: HeartbeatView | None = None  # what was read (None when malformed)

    @property
    def accepted(self) -> bool:
        return self.refusal is None


class IncidentChange(enum.Enum):
    """What an incident report changed at the department."""

    OPENED = "opened"  # a new open incident: an INCIDENT alert is raised
    UPDATED = "updated"  # an open incident re-published with changed content (e.g. escalated measures)
    REPEATED = "repeated"  # an open incident re-published unchanged
    CLOSED = "closed"  # the acknowledged report of an open incident: its alert is cleared
    ALREADY_CLOSED = "already closed"  # a report of an incident closed before (or never seen open)
    REFUSED = "refused"  # not authenticated; see ``refusal``


@dataclass(frozen=True, slots=True)
class IncidentOutcome:
    """What :meth:`FleetMonitor.on_incident` made of one incident report."""

    change: IncidentChange
    refusal: IncidentRefusal | None  # None: authenticated
    reason: str  # why it was refused; "" when authenticated
    alerts: tuple[Alert, ...]  # raised or cleared by this report
    incident: VerifiedIncident | None = None  # what was authenticated

    @property
    def accepted(self) -> bool:
        return self.refusal is None


class Reception(NamedTuple):
    """How a heartbeat arrived, as far as the middleware tells (each item optional)."""

    topic: str = ""
    publisher_gid: bytes = b""  # the DDS publisher's gid (rclpy >= 9 reports it; b"" when unknown)
    publication_sequence: int | None = None  # the publisher's number for this message (increases per publisher)


NOTHING_KNOWN = Reception()  # a heartbeat of unknown origin


class RobotRow(NamedTuple):
    """One robot as the department sees it (a named tuple: a thousand are made every second)."""

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
    topic: str  # where its latest accepted heartbeat arrived
    publisher_gid: str  # hex gid of that heartbeat's DDS publisher; "" when the distribution does not say
    certificate_not_after: dt.datetime | None
    open_incidents: int = 0  # incidents reported and not yet closed by an acknowledged report
    heartbeat_open_incidents: int = 0  # the count the robot's latest accepted heartbeat reports


@dataclass
class _OpenIncident:
    incident: VerifiedIncident
    alert: Alert


class _Claim(NamedTuple):
    identity_number: object
    robot_name: object
    department: object


@dataclass
class _Session:
    boot_id: str
    first_stamp_ns: int
    last_seen_s: float
    last_sequence: int
    reception: Reception
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
    latest_reception: Reception = NOTHING_KNOWN
    certificate_not_after: dt.datetime | None = None
    sessions: OrderedDict[str, _Session] = field(default_factory=OrderedDict)
    newest_boot_id: str | None = None
    max_stamp_ns: int | None = None
    alerts: dict[AlertKind, _ActiveAlert] = field(default_factory=dict)
    # The certificate of the latest accepted heartbeat, what it certifies, and when it and its CA are both valid.
    certificate: bytes = b""
    identity: RobotIdentity | None = None
    certified_number: str = ""
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    incidents: OrderedDict[str, _OpenIncident] = field(default_factory=OrderedDict)
    closed_incidents: OrderedDict[str, None] = field(default_factory=OrderedDict)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _short(text: str, limit: int = MAX_IDENTITY_KEY_LENGTH) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _second_publisher(session: Reception, heard: Reception) -> str | None:
    """Why ``heard`` cannot come from the publisher that sent ``session``'s last heartbeat (None: it can)."""
    if heard.topic and session.topic and heard.topic != session.topic:
        return f"on two topics {_short(session.topic)} and {_short(heard.topic)}"
    if heard.publisher_gid and session.publisher_gid and heard.publisher_gid != session.publisher_gid:
        return f"from two publishers (gid {session.publisher_gid.hex()} and {heard.publisher_gid.hex()})"
    if (
        heard.publication_sequence is not None
        and session.publication_sequence is not None
        and heard.publication_sequence <= session.publication_sequence
    ):
        return (
            f"from two publishers (publication number {heard.publication_sequence} after"
            f" {session.publication_sequence})"
        )
    return None


class FleetMonitor:
    """Tracks every robot heard of and decides which alerts to raise and clear.

    ``now_s`` arguments are receive times on one monotonic clock (seconds); ``clock`` gives the
    UTC wall-clock time used for certificate validity. ``deserialize`` (e.g. rclpy's
    ``deserialize_message`` for Heartbeat) turns a serialized heartbeat that
    :func:`read_serialized_heartbeat` refuses into a message, which is then read as such; without
    it such a heartbeat is malformed.
    """

    def __init__(
        self,
        trusted_cas: Sequence[x509.Certificate],
        period_s: float = 1.0,
        silent_periods: int = 3,
        clock: Callable[[], dt.datetime] = _utc_now,
        hold_s: float | None = None,
        max_unverified_robots: int = 1024,
        deserialize: Callable[[bytes], Any] | None = None,
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
        self._window_ns = int(self._window_s * 1e9)
        self._verifier = CertificateVerifier(trusted_cas)
        self._ca_windows = {
            certificate_fingerprint(ca): (ca.not_valid_before_utc, ca.not_valid_after_utc) for ca in trusted_cas
        }
        self._clock = clock
        self._robots: dict[str, _Robot] = {}
        self._max_unverified = max_unverified_robots
        self._last_now_s = 0.0
        self._deserialize = deserialize
        self._unverified = 0  # robots never heard genuinely
        self._accepted = 0
        self._refused = dict.fromkeys(Refusal, 0)

    # -- alert bookkeeping -------------------------------------------------------------------

    def _raise(self, robot: _Robot, kind: AlertKind, detail: str, now_s: float, out: list[Alert]) -> None:
        active = robot.alerts.get(kind)
        if active is None or (active.alert.detail != detail and kind not in EVIDENCE_KINDS):
            alert = Alert(kind, robot.identity_number, robot.robot_name, detail, raised=True)
            robot.alerts[kind] = _ActiveAlert(alert, now_s)
            out.append(alert)
        else:
            active.last_evidence_s = now_s

    def _clear(self, robot: _Robot, kind: AlertKind, detail: str, out: list[Alert]) -> None:
        if robot.alerts.pop(kind, None) is not None:
            out.append(Alert(kind, robot.identity_number, robot.robot_name, detail, raised=False))

    # -- heartbeats ---------------------------------------------------------------------------

    def _robot_for(self, claimed: Any, now_s: float, out: list[Alert]) -> _Robot:
        """The row of the identity number ``claimed`` claims (created unverified when new)."""
        number = getattr(claimed, "identity_number", None)
        key = _short(number) if isinstance(number, str) else "<invalid>"
        robot = self._robots.get(key)
        if robot is None:
            name, department = getattr(claimed, "robot_name", None), getattr(claimed, "department", None)
            robot = _Robot(key, _short(name) if isinstance(name, str) else "",
                           _short(department) if isinstance(department, str) else "", now_s)
            self._robots[key] = robot
            self._unverified += 1
            if self._unverified > self._max_unverified:
                self._evict_unverified(out)
        robot.last_claim_s = now_s
        return robot

    def _evict_unverified(self, out: list[Alert]) -> None:
        unverified = [r for r in self._robots.values() if not r.verified and not r.incidents]
        excess = len(unverified) - self._max_unverified
        if excess <= 0:
            return
        unverified.sort(key=lambda r: r.last_claim_s)
        for robot in unverified[:excess]:
            for kind in list(robot.alerts):
                self._clear(robot, kind, "forgotten: too many unverified identities claimed", out)
            del self._robots[robot.identity_number]
            self._unverified -= 1

    def _certificate_identity(self, robot: _Robot, certificate: bytes) -> RobotIdentity:
        """What ``certificate`` certifies, now; raises :class:`CertificateError`.

        The robot's previous certificate (chain verified when it was accepted) needs only the
        validity check: the trusted CAs are fixed for the monitor's life.
        """
        now = self._clock()
        identity = robot.identity
        if (
            identity is not None
            and certificate == robot.certificate
            and robot.valid_from is not None
            and robot.valid_until is not None
            and robot.valid_from <= now <= robot.valid_until
        ):
            return identity
        return self._verifier.verify_robot(certificate, now)

    def _authenticate(self, robot: _Robot, view: HeartbeatView) -> RobotIdentity | tuple[Refusal, str]:
        if not view.signature:
            return Refusal.MISSING_SIGNATURE, "heartbeat carries no signature"
        try:
            identity = self._certificate_identity(robot, view.certificate)
        except CertificateError as exc:
            if exc.reason in (CertificateFailure.EXPIRED, CertificateFailure.NOT_YET_VALID):
                return Refusal.EXPIRED_CERTIFICATE, f"certificate {exc.reason.value}: {exc}"
            return Refusal.UNKNOWN_CERTIFICATE, f"certificate refused ({exc.reason.value}): {exc}"
        try:
            if len(view.signature) != SIGNATURE_LENGTH:
                raise InvalidSignature
            identity.public_key.verify(view.signature, view.signed_bytes)
        except InvalidSignature:
            return (
                Refusal.BAD_SIGNATURE,
                f"signature does not verify with the key of certificate {identity.certificate_fingerprint[:16]}",
            )
        certified = robot.certified_number if identity is robot.identity else str(identity.identity_number)
        if view.identity_number != certified or view.robot_name != identity.robot_name or (
            view.department != identity.department
        ):
            return (
                Refusal.IDENTITY_MISMATCH,
                f"heartbeat claims {_short(view.identity_number)!r} {_short(view.robot_name)!r}"
                f" ({_short(view.department)!r}) but its certificate is for {certified!r}"
                f" {identity.robot_name!r} ({identity.department!r})",
            )
        return identity

    def _fresh(
        self, robot: _Robot, view: HeartbeatView, reception: Reception, now_s: float, out: list[Alert]
    ) -> _Session | str:
        """The boot session a genuine heartbeat belongs to, or why it is a replay."""
        session = robot.sessions.get(view.boot_id)
        if session is None:
            if robot.max_stamp_ns is not None and view.stamp_ns < robot.max_stamp_ns - self._window_ns:
                behind = (robot.max_stamp_ns - view.stamp_ns) / 1e9
                return (
                    f"boot session {_short(view.boot_id, 40)!r} is stamped {behind:.1f} s before the newest"
                    " accepted heartbeat"
                )
            if robot.newest_boot_id is not None and robot.newest_boot_id in robot.sessions:
                previous = robot.sessions[robot.newest_boot_id]
                previous.superseded = True
                previous.heard_since_superseded = 0
            session = _Session(view.boot_id, view.stamp_ns, now_s, view.sequence, reception)
            robot.sessions[view.boot_id] = session
            robot.newest_boot_id = view.boot_id
            while len(robot.sessions) > MAX_SESSIONS_PER_ROBOT:
                robot.sessions.popitem(last=False)
            return session
        if view.sequence <= session.last_sequence:
            return (
                f"sequence {view.sequence} not above {session.last_sequence} in boot session"
                f" {_short(view.boot_id, 40)!r}"
            )
        second = _second_publisher(session.reception, reception)
        if second is not None:
            self._raise(
                robot, AlertKind.DUPLICATE_IDENTITY, f"boot session {_short(view.boot_id, 40)!r} heard {second}",
                now_s, out,
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
        session.reception = reception
        robot.sessions.move_to_end(view.boot_id)
        return session

    def _accept(
        self, robot: _Robot, view: HeartbeatView, reception: Reception, identity: RobotIdentity, session: _Session,
        now_s: float, out: list[Alert],
    ) -> None:
        if robot.last_genuine_s is not None and AlertKind.SILENT in robot.alerts:
            self._clear(robot, AlertKind.SILENT, f"heartbeat resumed after {now_s - robot.last_genuine_s:.1f} s", out)
        if not robot.verified:
            robot.verified = True
            self._unverified -= 1
        robot.last_genuine_s = now_s
        if robot.max_stamp_ns is None or view.stamp_ns > robot.max_stamp_ns:
            robot.max_stamp_ns = view.stamp_ns
        if session.superseded:
            return  # an ended (or competing) boot session keeps the robot alive but does not own its row
        robot.robot_name = identity.robot_name
        robot.department = identity.department
        robot.certificate_not_after = identity.not_after
        if identity is not robot.identity:
            ca_window = self._ca_windows.get(identity.issuer_fingerprint)
            if ca_window is not None:
                robot.identity, robot.certificate = identity, view.certificate
                robot.certified_number = str(identity.identity_number)
                robot.valid_from = max(identity.not_before, ca_window[0])
                robot.valid_until = min(identity.not_after, ca_window[1])
        robot.latest = view
        robot.latest_reception = reception
        alerts = robot.alerts
        if view.stale_topics:
            stale = ", ".join(_short(t) for t in view.stale_topics)
            self._raise(robot, AlertKind.UNHEALTHY, "stale inputs: " + stale, now_s, out)
        elif AlertKind.UNHEALTHY in alerts:
            self._clear(robot, AlertKind.UNHEALTHY, "all watched inputs healthy", out)
        if view.safety_mode_name != NORMAL_MODE_NAME:
            self._raise(robot, AlertKind.SAFETY_MODE, f"safety mode {_short(view.safety_mode_name)}", now_s, out)
        elif AlertKind.SAFETY_MODE in alerts:
            self._clear(robot, AlertKind.SAFETY_MODE, "safety mode NORMAL", out)

    def _refuse(
        self, robot: _Robot, refusal: Refusal, reason: str, now_s: float, out: list[Alert],
        view: HeartbeatView | None = None,
    ) -> HeartbeatOutcome:
        self._refused[refusal] += 1
        self._raise(robot, refusal.alert_kind, reason, now_s, out)
        return HeartbeatOutcome(refusal, reason, tuple(out), view)

    def _read(self, heartbeat: Any) -> HeartbeatView | tuple[Any, HeartbeatFormatError]:
        """The view of a heartbeat, or what it claims to be and why it cannot be read."""
        if type(heartbeat) is not bytes:
            try:
                return read_heartbeat(heartbeat)
            except HeartbeatFormatError as exc:
                return heartbeat, exc
        try:
            return read_serialized_heartbeat(heartbeat)
        except HeartbeatFormatError as exc:
            if self._deserialize is None:
                return None, exc
        try:
            # The middleware's own deserializer decides what the fast reader refused.
            message = self._deserialize(heartbeat)
        except Exception as exc:  # whatever it raises, the heartbeat cannot be read
            return None, HeartbeatFormatError(f"not a serialized Heartbeat: {exc}")
        return self._read(message)

    def on_heartbeat(self, heartbeat: Any, now_s: float, reception: Reception = NOTHING_KNOWN) -> HeartbeatOutcome:
        """Judge one heartbeat received at ``now_s``: accepted or refused, and the alerts raised or cleared.

        ``heartbeat`` is a Heartbeat message (any object with Heartbeat.msg's fields) or the message
        serialized (``bytes``, CDR). A malformed one is refused as :attr:`Refusal.MALFORMED` with a
        BAD_SIGNATURE alert.
        """
        out: list[Alert] = []
        self._last_now_s = now_s
        view = self._read(heartbeat)
        if not isinstance(view, HeartbeatView):
            claimed, exc = view
            robot = self._robot_for(claimed, now_s, out)
            return self._refuse(robot, Refusal.MALFORMED, f"malformed heartbeat: {exc}", now_s, out)
        robot = self._robot_for(view, now_s, out)
        identity = self._authenticate(robot, view)
        if isinstance(identity, tuple):
            return self._refuse(robot, identity[0], identity[1], now_s, out, view)
        session = self._fresh(robot, view, reception, now_s, out)
        if isinstance(session, str):
            return self._refuse(robot, Refusal.REPLAY, session, now_s, out, view)
        self._accept(robot, view, reception, identity, session, now_s, out)
        self._accepted += 1
        return HeartbeatOutcome(None, "", tuple(out), view)

    # -- incident reports ---------------------------------------------------------------------

    def on_incident(
        self, mapping: Mapping[str, Any], signature: bytes, wall_clock: dt.datetime | None = None,
        now_s: float | None = None,
    ) -> IncidentOutcome:
        """Judge one incident report (``message_fields(msg)``, ``msg.signature``) received at ``now_s``.

        ``wall_clock`` (default: the monitor's clock) is the UTC time its certificate must be valid
        at; ``now_s`` (default: the time of the latest heartbeat or check) the monotonic receive time.
        """
        if now_s is None:
            now_s = self._last_now_s
        self._last_now_s = now_s
        out: list[Alert] = []
        claim = _Claim(*(mapping.get(name) for name in _Claim._fields)) if isinstance(mapping, Mapping) else (
            _Claim(None, None, None))
        robot = self._robot_for(claim, now_s, out)
        try:
            verified = verify_incident(mapping, signature, self._verifier, wall_clock or self._clock())
        except IncidentRefused as exc:
            kind = AlertKind.BAD_SIGNATURE if exc.reason is IncidentRefusal.MALFORMED else AlertKind[exc.reason.name]
            reason = f"incident report refused: {exc}"
            self._raise(robot, kind, reason, now_s, out)
            return IncidentOutcome(IncidentChange.REFUSED, exc.reason, reason, tuple(out))
        fields = verified.fields
        incident_id = fields.incident_id
        held = robot.incidents.get(incident_id)
        if fields.acknowledged or incident_id in robot.closed_incidents:
            robot.closed_incidents[incident_id] = None
            robot.closed_incidents.move_to_end(incident_id)
            while len(robot.closed_incidents) > REMEMBERED_CLOSED_INCIDENTS:
                robot.closed_incidents.popitem(last=False)
            if held is None:
                return IncidentOutcome(IncidentChange.ALREADY_CLOSED, None, "", tuple(out), verified)
            del robot.incidents[incident_id]
            by = f" by {_short(fields.acknowledged_by)}" if fields.acknowledged_by else ""
            out.append(Alert(AlertKind.INCIDENT, robot.identity_number, robot.robot_name,
                             f"incident {_short(incident_id, 120)} acknowledged{by}", raised=False))
            return IncidentOutcome(IncidentChange.CLOSED, None, "", tuple(out), verified)
        if held is not None:
            change = IncidentChange.REPEATED if held.incident.fields == fields else IncidentChange.UPDATED
            held.incident = verified
            return IncidentOutcome(change, None, "", tuple(out), verified)
        if not robot.robot_name:
            robot.robot_name = verified.identity.robot_name
        alert = Alert(AlertKind.INCIDENT, robot.identity_number, robot.robot_name,
                      f"incident {_short(incident_id, 120)}: {_short(fields.what_happened, 200)}", raised=True)
        robot.incidents[incident_id] = _OpenIncident(verified, alert)
        out.append(alert)
        while len(robot.incidents) > MAX_OPEN_INCIDENTS_PER_ROBOT:
            forgotten_id, forgotten = robot.incidents.popitem(last=False)
            out.append(dataclasses.replace(forgotten.alert, raised=False,
                                           detail=f"incident {_short(forgotten_id, 120)} forgotten: too many open"))
        return IncidentOutcome(IncidentChange.OPENED, None, "", tuple(out), verified)

    def open_incidents(self, identity_number: str | None = None) -> list[VerifiedIncident]:
        """The open incidents (of one robot, or of all), oldest first."""
        robots = [self._robots[identity_number]] if identity_number in self._robots else (
            [] if identity_number is not None else list(self._robots.values()))
        found = [held.incident for robot in robots for held in robot.incidents.values()]
        return sorted(found, key=lambda v: (v.fields.opened_at, v.fields.incident_id))

    # -- counts -------------------------------------------------------------------------------

    @property
    def accepted_count(self) -> int:
        """Heartbeats accepted so far."""
        return self._accepted

    def refused_counts(self) -> dict[Refusal, int]:
        """Heartbeats refused so far, per reason (every reason present)."""
        return dict(self._refused)

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
            if robot.alerts:
                for kind, active in list(robot.alerts.items()):
                    if kind in EVIDENCE_KINDS and now_s - active.last_evidence_s > self._hold_s:
                        self._clear(robot, kind, f"no further {kind.name} evidence for {self._hold_s:.1f} s", out)
            if (not robot.verified and not robot.alerts and not robot.incidents
                    and now_s - robot.last_claim_s > self._hold_s):
                del self._robots[robot.identity_number]
                self._unverified -= 1
        return out

    # -- views --------------------------------------------------------------------------------

    def active_alerts(self) -> list[Alert]:
        """Every alert currently raised (e.g. to republish to a late-joining display)."""
        return [
            alert
            for r in self._robots.values()
            for alert in [
                *(a.alert for a in sorted(r.alerts.values(), key=lambda a: a.alert.kind)),
                *(held.alert for held in r.incidents.values()),
            ]
        ]

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
                    active_alerts=tuple(sorted({*robot.alerts, *((AlertKind.INCIDENT,) if robot.incidents else ())})),
                    boot_id=latest.boot_id if latest else "",
                    sequence=latest.sequence if latest else 0,
                    uptime_s=latest.uptime_s if latest else 0.0,
                    guardian_on_duty=latest.guardian_on_duty if latest else "",
                    topic=robot.latest_reception.topic,
                    publisher_gid=robot.latest_reception.publisher_gid.hex(),
                    certificate_not_after=robot.certificate_not_after,
                    open_incidents=len(robot.incidents),
                    heartbeat_open_incidents=latest.open_incidents if latest else 0,
                )
            )
        return result
