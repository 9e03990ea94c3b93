"""Authentication of guardian commands, and the authenticated RESET: the only key that opens a latched stop.

:class:`GuardianCommandVerifier` checks a signed ``ftrobot_msgs/GuardianCommand`` (as the field mapping of
:func:`ftrobot_guard.trust.signed_fields.message_fields`, signature apart) and returns a
:class:`GuardianVerdict`: accepted, or refused with one :class:`Refusal` kind and a one-line reason. It never
raises on what the command holds. The checks, cheapest first, and the signature before the nonce is
remembered (so that nobody without the guardian's key can use up a nonce):

1. MALFORMED: exactly the seven fields, each of its type (an action 1..9, a 16-byte nonce);
2. WRONG_ROBOT: addressed to this robot's identity number;
3. UNKNOWN_GUARDIAN: the guardian is registered on this robot (the guardian registry);
4. CERTIFICATE_INVALID: the certificate is a guardian certificate of a trusted department CA, valid now
   (the chain is verified once per certificate and cached, the validity window every time);
5. REVOKED: not on the department's revocation list;
6. STALE / FUTURE: ``issued_at`` within ``max_skew`` of the robot's wall clock;
7. FORGED: the Ed25519 signature over the fields (domain ``ftrobot/guardian_command/v1``) verifies;
8. REPLAYED: the nonce was never accepted before, also before a restart (:mod:`.replay_memory`);
9. ROLE_NOT_ALLOWED: the certificate's role is authorized for the action (:mod:`.role_policy`);
10. REPLAY_MEMORY_FAILED: the nonce is remembered durably before the command is accepted.

Stops (ESTOP, SAFE_STOP, POWER_DOWN, PAUSE) are obeyed by the guard before and whatever this says; the
verdict then only records whether the stop was authenticated.

Leaving SAFE_STOP, POWER_DOWN or ESTOP needs an accepted RESET: its verdict carries an
:class:`AuthenticatedReset`, which the supervisor demands. An :class:`AuthenticatedReset` cannot be built
except by the verifier after every check has passed: its constructor demands a module-private seal, the
class cannot be subclassed, copied or changed, and the verifier classes cannot be subclassed either. An
unauthenticated RESET therefore cannot be expressed by mistake; forging one needs deliberate use of a
private name.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from ftrobot_guard.guardians.guardian_commands import (
    COMMAND_FIELD_NAMES,
    GUARDIAN_COMMAND_DOMAIN,
    NONCE_LENGTH,
    GuardianAction,
    action_of,
)
from ftrobot_guard.guardians.guardian_registry import GuardianRegistry
from ftrobot_guard.guardians.replay_memory import ReplayMemory, ReplayMemoryError
from ftrobot_guard.guardians.revocation_list import RevocationList
from ftrobot_guard.guardians.role_policy import RolePolicy
from ftrobot_guard.trust.certificates import CertificateError, CertificateVerifier, GuardianIdentity
from ftrobot_guard.trust.signed_fields import verify_fields

__all__ = [
    "GUARDIAN_COMMAND_DOMAIN",
    "MAX_TEXT_LENGTH",
    "NONCE_LENGTH",
    "AuthenticatedReset",
    "GuardianCommandVerifier",
    "GuardianVerdict",
    "Refusal",
]

MAX_TEXT_LENGTH = 4096  # guardian_id, robot_id, argument, reason: far above any real value
_CLIP = 40

_SEAL = object()


class Refusal(enum.Enum):
    """Why a guardian command was refused."""

    MALFORMED = "malformed"
    WRONG_ROBOT = "wrong robot"
    UNKNOWN_GUARDIAN = "unknown guardian"
    CERTIFICATE_INVALID = "certificate invalid"
    REVOKED = "revoked"
    FORGED = "forged"
    STALE = "stale"
    FUTURE = "future"
    REPLAYED = "replayed"
    ROLE_NOT_ALLOWED = "role not allowed"
    REPLAY_MEMORY_FAILED = "replay memory failed"


class AuthenticatedReset:
    """A guardian RESET that passed authentication at ``authenticated_at`` (supervisor clock, s)."""

    __slots__ = ("_authenticated_at", "_guardian_id", "_role")
    _guardian_id: str
    _role: str
    _authenticated_at: float

    def __init__(self, guardian_id: str, role: str, authenticated_at: float, *, seal: object) -> None:
        if seal is not _SEAL:
            raise TypeError("an AuthenticatedReset is made only by GuardianCommandVerifier.check()")
        object.__setattr__(self, "_guardian_id", guardian_id)
        object.__setattr__(self, "_role", role)
        object.__setattr__(self, "_authenticated_at", float(authenticated_at))

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("AuthenticatedReset cannot be subclassed")

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("an AuthenticatedReset cannot be changed")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("an AuthenticatedReset cannot be changed")

    def __reduce__(self) -> NoReturn:
        raise TypeError("an AuthenticatedReset cannot be copied or pickled")

    @property
    def guardian_id(self) -> str:
        return self._guardian_id

    @property
    def role(self) -> str:
        return self._role

    @property
    def authenticated_at(self) -> float:
        return self._authenticated_at

    def __repr__(self) -> str:
        return f"AuthenticatedReset(guardian_id={self.guardian_id!r}, authenticated_at={self.authenticated_at})"


@dataclass(frozen=True)
class GuardianVerdict:
    """The outcome of one guardian command.

    ``guardian_id`` is the claimed id (clipped, "" when unreadable), ``role`` the certificate's ("" before
    the certificate was verified), ``action`` None when unreadable. ``authorization`` is set only for an
    accepted RESET. ``reason`` is one line, for the log and the guardian.
    """

    accepted: bool
    action: GuardianAction | None
    guardian_id: str
    role: str
    refusal: Refusal | None
    reason: str
    authorization: AuthenticatedReset | None = None


class _Refused(Exception):
    def __init__(self, refusal: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.refusal = refusal


def _clip(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = "".join(ch if ch.isprintable() else "?" for ch in text[: _CLIP + 1])
    return text if len(text) <= _CLIP else text[:_CLIP] + "…"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _malformed(message: str) -> NoReturn:
    raise _Refused(Refusal.MALFORMED, message)


def _issued_at(value: object) -> dt.datetime:
    if not isinstance(value, Mapping) or set(value) != {"sec", "nanosec"}:
        _malformed("issued_at must be a builtin_interfaces/Time {sec, nanosec}")
    sec, nanosec = value["sec"], value["nanosec"]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (sec, nanosec)) or not 0 <= nanosec < 10**9:
        _malformed("issued_at must hold whole seconds and nanoseconds")
    try:
        return dt.datetime.fromtimestamp(sec, tz=dt.UTC) + dt.timedelta(microseconds=nanosec // 1000)
    except (OverflowError, OSError, ValueError):
        _malformed("issued_at is out of range")


@dataclass(frozen=True)
class _Command:
    guardian_id: str
    robot_id: str
    action: GuardianAction
    issued_at: dt.datetime
    nonce: bytes


def _structure(fields: object, signature: object) -> _Command:
    if not isinstance(fields, Mapping) or set(fields) != COMMAND_FIELD_NAMES:
        _malformed(f"a guardian command has exactly the fields {', '.join(sorted(COMMAND_FIELD_NAMES))}")
    for name in ("guardian_id", "robot_id", "argument", "reason"):
        value = fields[name]
        if not isinstance(value, str):
            _malformed(f"{name} must be a string")
        if len(value) > MAX_TEXT_LENGTH:
            _malformed(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
    action = action_of(fields["action"])
    if action is None:
        _malformed(f"action {_clip(fields['action'])} is not a guardian action (1..{max(GuardianAction)})")
    nonce = fields["nonce"]
    if not isinstance(nonce, (bytes, bytearray, memoryview)) or len(nonce) != NONCE_LENGTH:
        _malformed(f"nonce must be {NONCE_LENGTH} bytes")
    if not isinstance(signature, (bytes, bytearray, memoryview)):
        _malformed("signature must be bytes")
    issued = _issued_at(fields["issued_at"])
    return _Command(fields["guardian_id"], fields["robot_id"], action, issued, bytes(nonce))


RevocationSource = RevocationList | Callable[[], RevocationList]
CertificateSource = GuardianRegistry | Mapping[str, bytes]


class GuardianCommandVerifier:
    """Turns a signed guardian command into a :class:`GuardianVerdict` (see the module doc for the checks).

    ``registry``: the robot's :class:`~.guardian_registry.GuardianRegistry` or a mapping guardian id ->
    certificate bytes; ``revocations``: a :class:`~.revocation_list.RevocationList` or a callable returning
    the one in force (e.g. a :class:`~.revocation_list.RevocationListFile`); ``replay_memory``: its horizon
    must be at least ``2 * max_skew`` seconds.
    """

    def __init__(
        self,
        certificate_verifier: CertificateVerifier,
        registry: CertificateSource,
        robot_id: str,
        role_policy: RolePolicy,
        revocations: RevocationSource,
        replay_memory: ReplayMemory,
        max_skew: float = 5.0,
    ) -> None:
        if not isinstance(certificate_verifier, CertificateVerifier):
            raise ValueError("certificate_verifier must be a CertificateVerifier")
        if not isinstance(registry, (GuardianRegistry, Mapping)):
            raise ValueError("registry must be a GuardianRegistry or a mapping of guardian id to certificate")
        if not isinstance(robot_id, str) or not robot_id:
            raise ValueError("robot_id must be the robot's identity number")
        if not isinstance(role_policy, RolePolicy):
            raise ValueError("role_policy must be a RolePolicy")
        if not (isinstance(revocations, RevocationList) or callable(revocations)):
            raise ValueError("revocations must be a RevocationList or a callable returning one")
        if not isinstance(replay_memory, ReplayMemory):
            raise ValueError("replay_memory must be a ReplayMemory")
        if isinstance(max_skew, bool) or not (
            isinstance(max_skew, (int, float)) and math.isfinite(max_skew) and max_skew > 0
        ):
            raise ValueError("max_skew must be a positive number of seconds")
        if replay_memory.horizon_s < 2 * max_skew:
            raise ValueError(f"the replay memory's horizon ({replay_memory.horizon_s:g} s) must be at least twice "
                             f"max_skew ({max_skew:g} s)")
        self._verifier = certificate_verifier
        self._registry = registry
        self._robot_id = robot_id
        self._policy = role_policy
        self._revocations = revocations
        self._memory = replay_memory
        self._max_skew = dt.timedelta(seconds=float(max_skew))

    def __init_subclass__(cls, **kwargs: Any) -> NoReturn:
        raise TypeError("GuardianCommandVerifier cannot be subclassed")

    @property
    def robot_id(self) -> str:
        return self._robot_id

    @property
    def max_skew(self) -> float:
        return self._max_skew.total_seconds()

    def check(
        self, fields: Mapping[str, Any], signature: bytes, now: float, wall_clock: dt.datetime
    ) -> GuardianVerdict:
        """The verdict on one command. ``fields``: the command without ``signature``; ``now``: the supervisor's
        clock (s), stamped on an :class:`AuthenticatedReset`; ``wall_clock``: UTC now (certificates, freshness).

        Raises only for the caller's own mistakes (``wall_clock`` not timezone-aware, ``now`` not finite).
        """
        if not isinstance(wall_clock, dt.datetime) or wall_clock.tzinfo is None:
            raise ValueError("wall_clock must be a timezone-aware datetime")
        if isinstance(now, bool) or not isinstance(now, (int, float)) or not math.isfinite(now):
            raise ValueError("now must be a finite number of seconds")
        claimed = ""
        action: GuardianAction | None = None
        role = ""
        try:
            if isinstance(fields, Mapping):
                claimed = _clip(fields.get("guardian_id", ""))
                action = action_of(fields.get("action"))
            command = _structure(fields, signature)
            identity = self._authenticate(command, fields, signature, wall_clock)
            role = identity.role
            if not self._policy.allows(identity.role, command.action):
                raise _Refused(Refusal.ROLE_NOT_ALLOWED,
                               f"guardian {command.guardian_id}: role {_clip(identity.role)} may not "
                               f"{command.action.name}")
            try:
                self._memory.remember(command.nonce, command.issued_at, wall_clock)
            except (ReplayMemoryError, OSError, ValueError) as exc:
                raise _Refused(Refusal.REPLAY_MEMORY_FAILED,
                               f"the nonce could not be remembered, so the command is refused: {exc}") from None
        except _Refused as refused:
            return GuardianVerdict(False, action, claimed, role, refused.refusal, _one_line(str(refused)))
        except Exception as exc:  # hostile input reaching a library in an unforeseen way: refuse, never raise
            return GuardianVerdict(False, action, claimed, role, Refusal.MALFORMED,
                                   _one_line(f"the command could not be checked ({type(exc).__name__}: {exc})"))
        authorization = (AuthenticatedReset(command.guardian_id, identity.role, now, seal=_SEAL)
                         if command.action is GuardianAction.RESET else None)
        return GuardianVerdict(True, command.action, command.guardian_id, identity.role, None,
                               f"{command.action.name} by guardian {command.guardian_id} ({identity.role}) accepted",
                               authorization)

    def _certificate_of(self, guardian_id: str) -> bytes | None:
        if isinstance(self._registry, GuardianRegistry):
            return self._registry.certificate_of(guardian_id)
        certificate = self._registry.get(guardian_id)
        return certificate if isinstance(certificate, (bytes, bytearray, memoryview)) else None

    def _current_revocations(self) -> RevocationList:
        source = self._revocations
        current = source if isinstance(source, RevocationList) else source()
        if not isinstance(current, RevocationList):
            raise TypeError("the revocation source returned no RevocationList")
        return current

    def _authenticate(self, command: _Command, fields: Mapping[str, Any], signature: bytes,
                      wall_clock: dt.datetime) -> GuardianIdentity:
        """Checks 2-8 of the module doc; the verified identity, or :class:`_Refused`."""
        guardian_id = command.guardian_id
        if command.robot_id != self._robot_id:
            raise _Refused(Refusal.WRONG_ROBOT,
                           f"addressed to robot {_clip(command.robot_id)}, not to {self._robot_id}")
        certificate = self._certificate_of(guardian_id)
        if certificate is None:
            raise _Refused(Refusal.UNKNOWN_GUARDIAN, f"guardian {_clip(guardian_id)} is not registered on this robot")
        try:
            identity = self._verifier.verify_guardian(bytes(certificate), wall_clock)
        except CertificateError as exc:
            raise _Refused(Refusal.CERTIFICATE_INVALID, f"guardian {guardian_id}: certificate refused: {exc}") from None
        if identity.guardian_id != guardian_id:
            raise _Refused(Refusal.CERTIFICATE_INVALID, f"the certificate registered for {guardian_id} is issued to "
                                                        f"{_clip(identity.guardian_id)}")
        entry = self._current_revocations().is_revoked(guardian_id, identity.certificate_fingerprint)
        if entry is not None:
            raise _Refused(Refusal.REVOKED, f"guardian {guardian_id} is revoked since {entry.revoked_at.isoformat()}: "
                                            f"{_clip(entry.reason)}")
        skew = self._max_skew.total_seconds()
        if wall_clock - command.issued_at > self._max_skew:
            raise _Refused(Refusal.STALE, f"issued at {command.issued_at.isoformat()}, more than {skew:g} s from "
                                          f"now ({wall_clock.isoformat()}): stale")
        if command.issued_at - wall_clock > self._max_skew:
            raise _Refused(Refusal.FUTURE, f"issued at {command.issued_at.isoformat()}, more than {skew:g} s from "
                                           f"now ({wall_clock.isoformat()}): in the future")
        if not verify_fields(identity.public_key, GUARDIAN_COMMAND_DOMAIN, fields, bytes(signature)):
            raise _Refused(Refusal.FORGED, f"guardian {guardian_id}: the signature does not verify")
        if self._memory.seen(command.nonce):
            raise _Refused(Refusal.REPLAYED, f"guardian {guardian_id}: nonce seen before: a replayed command")
        return identity

